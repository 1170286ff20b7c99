//! The one transpose of the kernels: the layout changes between a convolution's channels × positions images
//! and its products' positions × channels rows (with an activation or a bias on the way), and the linear
//! layers' transposed products.
//!
//! It works in 16 × 16 tiles. Where the CPU has AVX-512F, a tile is sixteen 64-byte loads, a transpose in
//! registers and sixteen 64-byte stores; elsewhere, and on the edges of a matrix whose sides are not multiples of
//! 16, each value is moved on its own. Both do the same arithmetic on each value (an IEEE multiply, add or
//! comparison), so the result is the same to the bit on every path.

use std::mem::MaybeUninit;

/// The side of a tile: one 64-byte cache line of f32 values.
const TILE: usize = 16;

/// What happens to each value on its way through [`transpose`].
#[derive(Clone, Copy)]
pub(crate) enum Edit<'a> {
    /// Copied as it is.
    Copy,
    /// Multiplied by `slope` where `signs` (laid out as the source) is ≤ 0: an activation's derivative, read off
    /// its output, whose sign is its input's.
    Slope { signs: &'a [f32], slope: f32 },
    /// `shifts[j]` added to the values of source column j, then values ≤ 0 multiplied by `slope`: a bias, then
    /// an activation (slope 1 for none).
    ShiftSlope { shifts: &'a [f32], slope: f32 },
}

impl Edit<'_> {
    /// The edit of source value (i, j), one value at a time.
    #[inline(always)]
    fn value(&self, v: f32, src_stride: usize, i: usize, j: usize) -> f32 {
        match *self {
            Edit::Copy => v,
            Edit::Slope { signs, slope } => {
                if signs[i * src_stride + j] <= 0.0 {
                    v * slope
                } else {
                    v
                }
            }
            Edit::ShiftSlope { shifts, slope } => {
                let v = v + shifts[j];
                if v > 0.0 {
                    v
                } else {
                    v * slope
                }
            }
        }
    }
}

/// `dst[j·dst_stride + i] = edit(src[i·src_stride + j])` for every i < `rows`, j < `cols`: the `rows × cols`
/// matrix at the start of `src` (row stride `src_stride`) written transposed at the start of `dst` (row stride
/// `dst_stride`). Every one of those `cols × rows` values of `dst` is written; no other.
pub(crate) fn transpose(
    src: &[f32],
    src_stride: usize,
    (rows, cols): (usize, usize),
    edit: Edit,
    dst: &mut [MaybeUninit<f32>],
    dst_stride: usize,
) {
    if rows == 0 || cols == 0 {
        return;
    }
    // Every element addressed below, tile or single value, lies inside these bounds (computed without wrapping,
    // so that no stride can make them small).
    let end = |lines: usize, stride: usize, last: usize| (lines - 1).checked_mul(stride)?.checked_add(last);
    let (Some(src_end), Some(dst_end)) = (end(rows, src_stride, cols), end(cols, dst_stride, rows)) else {
        panic!("{rows}×{cols} with strides {src_stride}, {dst_stride} overflows");
    };
    assert!(cols <= src_stride && rows <= dst_stride, "{rows}×{cols} with strides {src_stride}, {dst_stride}");
    assert!(
        src.len() >= src_end && dst.len() >= dst_end,
        "{rows}×{cols}: {} source, {} destination",
        src.len(),
        dst.len()
    );
    match edit {
        Edit::Slope { signs, .. } => assert!(signs.len() >= src_end, "{} signs for {src_end} values", signs.len()),
        Edit::ShiftSlope { shifts, .. } => assert!(shifts.len() >= cols, "{} shifts for {cols} columns", shifts.len()),
        Edit::Copy => {}
    }
    #[cfg(target_arch = "x86_64")]
    if rows >= TILE && cols >= TILE && std::arch::is_x86_feature_detected!("avx512f") {
        let (full_rows, full_cols) = (rows - rows % TILE, cols - cols % TILE);
        for i in (0..full_rows).step_by(TILE) {
            for j in (0..full_cols).step_by(TILE) {
                // SAFETY: AVX-512F is present (checked above). The tile's source rows i..i+16, columns j..j+16 lie
                // inside `src` (and `signs`), its destination rows j..j+16, columns i..i+16 inside `dst`, and
                // `shifts` has columns j..j+16: i + 16 ≤ rows and j + 16 ≤ cols, within the bounds asserted above.
                unsafe { avx512::tile(src, src_stride, i, j, edit, dst, dst_stride) };
            }
        }
        one_by_one(src, src_stride, (0..full_rows, full_cols..cols), edit, dst, dst_stride);
        one_by_one(src, src_stride, (full_rows..rows, 0..cols), edit, dst, dst_stride);
        return;
    }
    one_by_one(src, src_stride, (0..rows, 0..cols), edit, dst, dst_stride);
}

/// [`transpose`] of the source rows and columns given, a value at a time, in bands of 16 source columns (16
/// destination rows), each source row's part of a band one 64-byte line.
fn one_by_one(
    src: &[f32],
    src_stride: usize,
    (rows, cols): (std::ops::Range<usize>, std::ops::Range<usize>),
    edit: Edit,
    dst: &mut [MaybeUninit<f32>],
    dst_stride: usize,
) {
    for first in cols.clone().step_by(TILE) {
        for i in rows.clone() {
            for j in first..(first + TILE).min(cols.end) {
                dst[j * dst_stride + i].write(edit.value(src[i * src_stride + j], src_stride, i, j));
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;
    use std::mem::MaybeUninit;

    use super::{Edit, TILE};

    /// The 16 × 16 tile of [`super::transpose`] at source row `i`, column `j`.
    ///
    /// # Safety
    /// The CPU has AVX-512F. Source rows i..i+16, columns j..j+16 lie inside `src` (and the signs of an
    /// [`Edit::Slope`]); destination rows j..j+16, columns i..i+16 inside `dst`; an [`Edit::ShiftSlope`] has
    /// shifts j..j+16.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn tile(
        src: &[f32],
        src_stride: usize,
        i: usize,
        j: usize,
        edit: Edit,
        dst: &mut [MaybeUninit<f32>],
        dst_stride: usize,
    ) {
        let zero = _mm512_setzero_ps();
        let mut rows = [zero; TILE];
        for (r, row) in rows.iter_mut().enumerate() {
            let at = (i + r) * src_stride + j;
            // SAFETY: values at..at+16 of source row i+r lie inside `src` (this function's contract).
            *row = unsafe { _mm512_loadu_ps(src.as_ptr().add(at)) };
            if let Edit::Slope { signs, slope } = edit {
                // SAFETY: the signs are laid out as the source (this function's contract).
                let sign = unsafe { _mm512_loadu_ps(signs.as_ptr().add(at)) };
                // v·slope where the sign is ≤ 0 (ordered: a NaN sign keeps v), as `Edit::value`.
                let at_most_zero = _mm512_cmp_ps_mask::<_CMP_LE_OQ>(sign, zero);
                *row = _mm512_mask_mul_ps(*row, at_most_zero, *row, _mm512_set1_ps(slope));
            }
        }
        let columns = transpose16(rows);
        for (c, mut column) in columns.into_iter().enumerate() {
            if let Edit::ShiftSlope { shifts, slope } = edit {
                // v + shift, then v·slope where that is not > 0 (a NaN too), as `Edit::value`.
                column = _mm512_add_ps(column, _mm512_set1_ps(shifts[j + c]));
                let positive = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(column, zero);
                column = _mm512_mask_blend_ps(positive, _mm512_mul_ps(column, _mm512_set1_ps(slope)), column);
            }
            // SAFETY: values i..i+16 of destination row j+c lie inside `dst` (this function's contract).
            unsafe { _mm512_storeu_ps(dst.as_mut_ptr().add((j + c) * dst_stride + i).cast::<f32>(), column) };
        }
    }

    /// The transpose of 16 rows of 16 values: element c of row r becomes element r of row c. Pairs of rows are
    /// interleaved within each 128-bit lane, then pairs of pairs, then the lanes are gathered across registers.
    #[target_feature(enable = "avx512f")]
    fn transpose16(r: [__m512; TILE]) -> [__m512; TILE] {
        // t[2k], t[2k+1]: rows 2k and 2k+1 interleaved, low and high halves of each lane.
        let mut t = [_mm512_setzero_ps(); TILE];
        for k in 0..TILE / 2 {
            t[2 * k] = _mm512_unpacklo_ps(r[2 * k], r[2 * k + 1]);
            t[2 * k + 1] = _mm512_unpackhi_ps(r[2 * k], r[2 * k + 1]);
        }
        // u[4g+q], lane l: column 4l+q of rows 4g..4g+4.
        let mut u = [_mm512_setzero_ps(); TILE];
        let pd = _mm512_castps_pd;
        for g in 0..4 {
            let (a, b, c, d) = (pd(t[4 * g]), pd(t[4 * g + 1]), pd(t[4 * g + 2]), pd(t[4 * g + 3]));
            u[4 * g] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
            u[4 * g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
            u[4 * g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
            u[4 * g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
        }
        // Lanes gathered: 0x88 takes lanes 0 and 2 of each operand, 0xDD lanes 1 and 3.
        let mut out = [_mm512_setzero_ps(); TILE];
        for q in 0..4 {
            let low_even = _mm512_shuffle_f32x4::<0x88>(u[q], u[4 + q]);
            let low_odd = _mm512_shuffle_f32x4::<0xDD>(u[q], u[4 + q]);
            let high_even = _mm512_shuffle_f32x4::<0x88>(u[8 + q], u[12 + q]);
            let high_odd = _mm512_shuffle_f32x4::<0xDD>(u[8 + q], u[12 + q]);
            out[q] = _mm512_shuffle_f32x4::<0x88>(low_even, high_even);
            out[8 + q] = _mm512_shuffle_f32x4::<0xDD>(low_even, high_even);
            out[4 + q] = _mm512_shuffle_f32x4::<0x88>(low_odd, high_odd);
            out[12 + q] = _mm512_shuffle_f32x4::<0xDD>(low_odd, high_odd);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values with long mantissas of both signs, zeros of both signs and a NaN.
    fn values(len: usize, seed: u32) -> Vec<f32> {
        let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..len)
            .map(|i| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                match i % 97 {
                    13 => 0.0,
                    29 => -0.0,
                    61 => f32::NAN,
                    _ => (state as f32 / u32::MAX as f32 - 0.5) * 3.7,
                }
            })
            .collect()
    }

    fn bits(values: &[f32]) -> Vec<u32> {
        values.iter().map(|v| v.to_bits()).collect()
    }

    /// Every edit, on shapes with full tiles, partial edges on either side and none, inside larger strides,
    /// against the index swap done value by value. The destination's values outside the matrix keep their marks.
    #[test]
    fn tiles_and_edges_match_the_index_swap_to_the_bit() {
        for (rows, cols) in [(16, 16), (64, 196), (196, 64), (49, 128), (128, 49), (33, 17), (5, 40), (1, 1), (0, 3)] {
            let (src_stride, dst_stride) = (cols + 3, rows + 5);
            // The source ends with the matrix's last value, so that the bounds are exactly what it needs.
            let src_len = if rows == 0 { 0 } else { (rows - 1) * src_stride + cols };
            let src = values(src_len, 1);
            let signs = values(src_len, 2);
            let shifts = values(cols, 3);
            for edit in [
                Edit::Copy,
                Edit::Slope { signs: &signs, slope: 0.01 },
                Edit::ShiftSlope { shifts: &shifts, slope: 0.2 },
                Edit::ShiftSlope { shifts: &shifts, slope: 1.0 },
            ] {
                let mark = f32::from_bits(0x7f80_0bad);
                let mut dst = vec![MaybeUninit::new(mark); cols.max(1) * dst_stride];
                transpose(&src, src_stride, (rows, cols), edit, &mut dst, dst_stride);
                // SAFETY: every value was initialised with the mark.
                let dst: Vec<f32> = dst.iter().map(|v| unsafe { v.assume_init() }).collect();
                let mut expected = vec![mark; cols.max(1) * dst_stride];
                for i in 0..rows {
                    for j in 0..cols {
                        let v = src[i * src_stride + j];
                        expected[j * dst_stride + i] = match edit {
                            Edit::Copy => v,
                            Edit::Slope { signs, slope } if signs[i * src_stride + j] <= 0.0 => v * slope,
                            Edit::Slope { .. } => v,
                            Edit::ShiftSlope { shifts, slope } => {
                                let v = v + shifts[j];
                                if v > 0.0 {
                                    v
                                } else {
                                    v * slope
                                }
                            }
                        };
                    }
                }
                assert_eq!(bits(&dst), bits(&expected), "{rows}×{cols}");
            }
        }
    }
}
