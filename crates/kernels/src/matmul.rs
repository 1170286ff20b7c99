//! Row-major f32 matrix products through the `gemm` crate, on views whose strides read a transposed operand in
//! place, optionally accumulating into the destination (a bias already written there).

use gemm::Parallelism;
use rayon::prelude::*;

/// A read-only matrix view: element (i, j) is `data[i·row_stride + j·col_stride]`.
#[derive(Debug, Clone, Copy)]
pub(super) struct MatRef<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> MatRef<'a> {
    /// The row-major `rows × cols` matrix stored in `data`.
    pub(super) fn new(data: &'a [f32], rows: usize, cols: usize) -> Self {
        assert_eq!(data.len(), rows * cols, "a {rows}×{cols} matrix needs {} values", rows * cols);
        Self { data, rows, cols, row_stride: cols, col_stride: 1 }
    }

    /// The values behind the view (row-major for a view made by [`MatRef::new`]).
    pub(super) fn data(&self) -> &'a [f32] {
        self.data
    }

    /// The transpose, read in place.
    pub(super) fn t(self) -> Self {
        Self { rows: self.cols, cols: self.rows, row_stride: self.col_stride, col_stride: self.row_stride, ..self }
    }

    /// Columns `start..end`, read in place.
    fn columns(self, start: usize, end: usize) -> Self {
        assert!(start <= end && end <= self.cols, "columns {start}..{end} of {}", self.cols);
        let data = if end > start { &self.data[start * self.col_stride..] } else { &[] };
        Self { data, cols: end - start, ..self }
    }

    /// Rows `start..end`, read in place.
    fn rows_range(self, start: usize, end: usize) -> Self {
        assert!(start <= end && end <= self.rows, "rows {start}..{end} of {}", self.rows);
        let data = if end > start { &self.data[start * self.row_stride..] } else { &[] };
        Self { data, rows: end - start, ..self }
    }
}

/// `a · b` as a new row-major `a.rows × b.cols` matrix, on the rayon pool.
pub(super) fn product(a: MatRef, b: MatRef) -> Vec<f32> {
    let len = a.rows * b.cols;
    assert_eq!(b.rows, a.cols, "inner dimensions differ: {}×{} · {}×{}", a.rows, a.cols, b.rows, b.cols);
    if len == 0 || a.cols == 0 {
        return vec![0.0; len];
    }
    // The product writes every element without reading any (no accumulation), so the destination is not
    // zero-filled first: for the convolutions' column matrices that fill was a pass over tens of megabytes.
    let mut dst = Vec::with_capacity(len);
    // SAFETY: `dst` has room for `len` values, which the product writes without reading (`read_dst` false,
    // k > 0); only then does the length cover them.
    unsafe {
        product_raw(dst.as_mut_ptr(), a, b, false);
        dst.set_len(len);
    }
    dst
}

/// `dst += a · b`, `dst` row-major `a.rows × b.cols` (e.g. a bias written there first), on the rayon pool.
pub(super) fn accumulate(dst: &mut [f32], a: MatRef, b: MatRef) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(b.rows, k, "inner dimensions differ: {m}×{k} · {}×{n}", b.rows);
    assert_eq!(dst.len(), m * n, "the destination of a {m}×{n} product has {} values", dst.len());
    if dst.is_empty() || k == 0 {
        return;
    }
    // SAFETY: `dst` holds the m×n initialised values the product reads and writes.
    unsafe { product_raw(dst.as_mut_ptr(), a, b, true) }
}

/// `dst = a · b` (`dst += a · b` with `read_dst`) on the rayon pool, for m, n, k > 0 and matching shapes.
///
/// A product whose inner dimension is long beside its output (the 6272→1024 layer's forward pass, the kernel
/// gradients of the 64→128 convolutions: 128 × 1024 outputs, 6272 terms each at batch 128) is split into two
/// halves of the inner dimension, computed side by side by halves of the pool and then added: `gemm` splits a
/// product across threads along the output only, and on this shape ran at about 155 GFLOP/s on two cores,
/// against about 170 as two half products. The halves depend on the shape alone, so the result does not depend
/// on the number of threads.
///
/// # Safety
/// As [`gemm_raw`].
unsafe fn product_raw(dst: *mut f32, a: MatRef, b: MatRef, read_dst: bool) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    if k < 2 * m.max(n) || m * n * k < 1 << 25 {
        // SAFETY: the caller's contract.
        return unsafe { gemm_raw(dst, a, b, read_dst, rayon::current_num_threads()) };
    }
    let half = k / 2;
    let (a1, a2) = (a.columns(0, half), a.columns(half, k));
    let (b1, b2) = (b.rows_range(0, half), b.rows_range(half, k));
    // The pool's threads between the halves (an odd one to the first).
    let threads = rayon::current_num_threads();
    let (first_threads, second_threads) = (threads.div_ceil(2), (threads / 2).max(1));
    let mut second: Vec<f32> = Vec::with_capacity(m * n);
    // The destination as an address, to move into the first half's closure (it is only written there).
    let first = dst as usize;
    rayon::join(
        // SAFETY: `dst` as the caller's contract; the second half writes only into `second`, which has room for
        // the m·n values it writes without reading.
        || unsafe { gemm_raw(first as *mut f32, a1, b1, read_dst, first_threads) },
        || unsafe { gemm_raw(second.as_mut_ptr(), a2, b2, false, second_threads) },
    );
    // SAFETY: the second half wrote all m·n values of `second`, and `dst` holds m·n values (the caller's
    // contract), written by the first half.
    unsafe {
        second.set_len(m * n);
        std::slice::from_raw_parts_mut(dst, m * n).iter_mut().zip(&second).for_each(|(d, s)| *d += s);
    }
}

/// `dst = a · b` (`dst += a · b` with `read_dst`) on the calling thread: one block of a batch, the blocks
/// run in parallel, so that the product is used while it is in cache.
pub(super) fn product_in_thread(dst: &mut [f32], a: MatRef, b: MatRef, read_dst: bool) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(b.rows, k, "inner dimensions differ: {m}×{k} · {}×{n}", b.rows);
    assert_eq!(dst.len(), m * n, "the destination of a {m}×{n} product has {} values", dst.len());
    if dst.is_empty() {
        return;
    }
    if k == 0 {
        if !read_dst {
            dst.fill(0.0);
        }
        return;
    }
    // SAFETY: `dst` holds the m×n initialised values the product writes (and reads, with `read_dst`).
    unsafe { gemm_raw(dst.as_mut_ptr(), a, b, read_dst, 1) }
}

/// The gradient `a · b` for a parameter's running sum (see `parameter_grad`): accumulated onto `sum`, or a new
/// matrix when there is none yet.
pub(super) fn product_onto(sum: Option<&mut [f32]>, a: MatRef, b: MatRef) -> Option<Vec<f32>> {
    match sum {
        Some(sum) => {
            accumulate(sum, a, b);
            None
        }
        None => Some(product(a, b)),
    }
}

/// `dst = a · b` (`dst += a · b` with `read_dst`) through `gemm`, for m, n, k > 0 and matching shapes, on
/// `threads` threads of the rayon pool (1: the calling thread).
///
/// # Safety
/// `dst` must be valid for writes of `a.rows · b.cols` values (and reads, with `read_dst`), and not overlap
/// the operands. The operands' lengths were checked for their shapes and strides when they were made
/// ([`MatRef::new`]; transposition and sub-ranges keep offsets inside the same set).
unsafe fn gemm_raw(dst: *mut f32, a: MatRef, b: MatRef, read_dst: bool, threads: usize) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    let parallelism = if threads > 1 { Parallelism::Rayon(threads) } else { Parallelism::None };
    gemm::gemm(
        m,
        n,
        k,
        dst,
        1,
        n as isize,
        read_dst,
        a.data.as_ptr(),
        a.col_stride as isize,
        a.row_stride as isize,
        b.data.as_ptr(),
        b.col_stride as isize,
        b.row_stride as isize,
        1.0,
        1.0,
        false,
        false,
        false,
        parallelism,
    );
}

/// Σ over the rows (the batch) of every column of the row-major `rows × cols` matrix `data`, in f64, in
/// parallel over columns in blocks (each block reads its columns row by row).
pub(super) fn column_sums(data: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    const BLOCK: usize = 256;
    assert_eq!(data.len(), rows * cols, "column sums of {} values as a {rows}×{cols} matrix", data.len());
    let mut sums = vec![0f32; cols];
    sums.par_chunks_mut(BLOCK).enumerate().for_each(|(block, out)| {
        let start = block * BLOCK;
        let mut acc = vec![0f64; out.len()];
        for r in 0..rows {
            for (a, v) in acc.iter_mut().zip(&data[r * cols + start..][..out.len()]) {
                *a += f64::from(*v);
            }
        }
        out.iter_mut().zip(acc).for_each(|(o, a)| *o = a as f32);
    });
    sums
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The textbook triple loop.
    fn reference(a: &[f32], b: &[f32], (m, k, n): (usize, usize, usize)) -> Vec<f32> {
        (0..m).flat_map(|i| (0..n).map(move |j| (0..k).map(|l| a[i * k + l] * b[l * n + j]).sum())).collect()
    }

    fn transpose(x: &[f32], rows: usize, cols: usize) -> Vec<f32> {
        (0..cols).flat_map(|j| (0..rows).map(move |i| x[i * cols + j])).collect()
    }

    #[test]
    fn products_of_transposed_views_and_accumulation_match_the_triple_loop() {
        let (m, k, n) = (5, 7, 3);
        let a: Vec<f32> = (0..m * k).map(|i| (i % 11) as f32 - 5.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i % 7) as f32 * 0.5 - 1.0).collect();
        let expected = reference(&a, &b, (m, k, n));
        let (a_t, b_t) = (transpose(&a, m, k), transpose(&b, k, n));
        for (lhs, rhs) in [
            (MatRef::new(&a, m, k), MatRef::new(&b, k, n)),
            (MatRef::new(&a_t, k, m).t(), MatRef::new(&b, k, n)),
            (MatRef::new(&a, m, k), MatRef::new(&b_t, n, k).t()),
            (MatRef::new(&a_t, k, m).t(), MatRef::new(&b_t, n, k).t()),
        ] {
            assert_eq!(product(lhs, rhs), expected);
            // Accumulating onto a bias-like start value adds it exactly (small integers and halves).
            let mut dst = vec![2.0; m * n];
            accumulate(&mut dst, lhs, rhs);
            assert_eq!(dst, expected.iter().map(|v| v + 2.0).collect::<Vec<_>>());
        }
        // A long inner dimension (odd, so the halves differ) beside a small output: split in two halves.
        let (m, k, n) = (16, 32769, 64);
        assert!(k >= 2 * m.max(n) && m * n * k >= 1 << 25, "the split path");
        let a: Vec<f32> = (0..m * k).map(|i| (i % 11) as f32 - 5.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i % 7) as f32 * 0.5 - 1.0).collect();
        let expected = reference(&a, &b, (m, k, n));
        let b_t = transpose(&b, k, n);
        for rhs in [MatRef::new(&b, k, n), MatRef::new(&b_t, n, k).t()] {
            assert_eq!(product(MatRef::new(&a, m, k), rhs), expected);
            let mut dst = vec![2.0; m * n];
            accumulate(&mut dst, MatRef::new(&a, m, k), rhs);
            assert_eq!(dst, expected.iter().map(|v| v + 2.0).collect::<Vec<_>>());
        }
        assert_eq!(product(MatRef::new(&[], 2, 0), MatRef::new(&[], 0, 2)), vec![0.0; 4]);
        let mut empty_inner = vec![1.0; 4];
        accumulate(&mut empty_inner, MatRef::new(&[], 2, 0), MatRef::new(&[], 0, 2));
        assert_eq!(empty_inner, vec![1.0; 4]);
    }
}
