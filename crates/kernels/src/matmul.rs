//! Row-major f32 matrix products through the `gemm` crate, on views whose strides read a transposed operand in
//! place, either writing the destination without reading it or adding onto it (a bias already written there, a
//! gradient's running sum).

use std::mem::MaybeUninit;

use gemm::Parallelism;

use crate::transpose::{transpose, Edit};
use crate::unwritten::{written_part, Unwritten};

/// The instruction set of the CPU matrix products, as `gemm` picks its kernels when it first runs:
/// `"avx512f"` where the CPU has AVX-512F (the workspace enables gemm's `x86-v4` kernels), `"fma"` (AVX2 + FMA)
/// elsewhere on x86-64, `"neon"` on aarch64, `"scalar"` otherwise. The kernels block and order a product's sums
/// differently, so a run's numbers agree to the last bit only between machines that give the same answer here
/// (and the same cache sizes, from which `gemm` chooses its blocks); a run records it.
pub fn product_instruction_set() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return "avx512f";
        }
        if std::arch::is_x86_feature_detected!("fma") {
            return "fma";
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        if std::arch::is_aarch64_feature_detected!("neon") {
            return "neon";
        }
    }
    "scalar"
}

/// A read-only matrix view: element (i, j) is `data[i·row_stride + j·col_stride]`.
///
/// Invariant: every element's offset is inside `data` ([`MatRef::in_bounds`]): `gemm` reads the operands
/// through raw pointers. [`MatRef::new`] checks it, and transposition and sub-ranges keep it (checked again
/// in debug builds).
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
        Self { data, rows, cols, row_stride: cols, col_stride: 1 }.checked()
    }

    /// The values behind the view (row-major for a view made by [`MatRef::new`]).
    pub(super) fn data(&self) -> &'a [f32] {
        self.data
    }

    /// The transpose, read in place.
    pub(super) fn t(self) -> Self {
        Self { rows: self.cols, cols: self.rows, row_stride: self.col_stride, col_stride: self.row_stride, ..self }
            .checked()
    }

    /// Columns `start..end`, read in place.
    fn columns(self, start: usize, end: usize) -> Self {
        assert!(start <= end && end <= self.cols, "columns {start}..{end} of {}", self.cols);
        let data = if end > start { &self.data[start * self.col_stride..] } else { &[] };
        Self { data, cols: end - start, ..self }.checked()
    }

    /// Rows `start..end`, read in place.
    fn rows_range(self, start: usize, end: usize) -> Self {
        assert!(start <= end && end <= self.rows, "rows {start}..{end} of {}", self.rows);
        let data = if end > start { &self.data[start * self.row_stride..] } else { &[] };
        Self { data, rows: end - start, ..self }.checked()
    }

    /// Whether the last element, and so every element, lies inside `data`.
    fn in_bounds(&self) -> bool {
        self.rows == 0
            || self.cols == 0
            || (self.rows - 1) * self.row_stride + (self.cols - 1) * self.col_stride < self.data.len()
    }

    /// The view, its bounds checked in debug builds.
    fn checked(self) -> Self {
        debug_assert!(self.in_bounds(), "a {}×{} view of {} values", self.rows, self.cols, self.data.len());
        self
    }
}

/// Where a product goes.
enum Destination<'d> {
    /// Values the product writes without reading them: `dst = a · b`.
    Write(&'d mut [MaybeUninit<f32>]),
    /// Values the product adds onto: `dst += a · b`.
    Add(&'d mut [f32]),
}

/// `a · b` as a new row-major `a.rows × b.cols` matrix, on the rayon pool.
pub(super) fn product(a: MatRef, b: MatRef) -> Vec<f32> {
    // The product writes every value without reading any, so the destination is not zero-filled first: for
    // the convolutions' column matrices that fill would be a pass over tens of megabytes.
    let (mut values, mut scratch) = (Vec::new(), Vec::new());
    let mut out = Unwritten::new(&mut values, a.rows * b.cols);
    let mut second_half = Unwritten::new(&mut scratch, second_half_len(a, b));
    pool_product(Destination::Write(out.values()), a, b, second_half.values());
    // SAFETY: `pool_product` writes every value of a `Write` destination.
    unsafe { out.assume_written() };
    values
}

/// `dst += a · b`, `dst` row-major `a.rows × b.cols` (e.g. a bias written there first), on the rayon pool.
pub(super) fn accumulate(dst: &mut [f32], a: MatRef, b: MatRef) {
    let mut scratch = Vec::new();
    let mut second_half = Unwritten::new(&mut scratch, second_half_len(a, b));
    pool_product(Destination::Add(dst), a, b, second_half.values());
}

/// `a · b` into `scratch`, its values replaced (no new allocation once it has the room), on the calling thread:
/// one block of a batch, the blocks run in parallel, so that the product is used while it is in cache.
pub(super) fn product_in_thread<'s>(scratch: &'s mut Vec<f32>, a: MatRef, b: MatRef) -> &'s [f32] {
    let mut out = Unwritten::new(scratch, a.rows * b.cols);
    gemm_to(Destination::Write(out.values()), a, b, 1);
    // SAFETY: `gemm_to` writes every value of a `Write` destination.
    unsafe { out.assume_written() }
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

/// The `cols × rows` transpose of the row-major `rows × cols` matrix `values`, in parallel over blocks of its
/// rows: each block reads one cache line of every source row and writes its own rows.
pub(super) fn transposed(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    use rayon::prelude::*;
    /// Source columns (rows of the transpose) a task moves: one 64-byte line of each source row.
    const LINE: usize = 16;
    assert_eq!(values.len(), rows * cols, "a {rows}×{cols} matrix needs {} values", rows * cols);
    let mut out = Vec::new();
    let mut room = Unwritten::new(&mut out, values.len());
    if rows > 0 {
        room.values().par_chunks_mut(LINE * rows).enumerate().for_each(|(block, out)| {
            let first = block * LINE;
            let n = out.len() / rows;
            transpose(&values[first..], cols, (rows, n), Edit::Copy, out, rows);
        });
    }
    // SAFETY: each block writes every value of its rows (each source row's `n` values), and the blocks cover the
    // transpose.
    unsafe { room.assume_written() };
    out
}

/// Where a product whose inner dimension is long beside its output is split in two, `k / 2`; `None` for
/// any other product.
///
/// Such a product (the 6272→1024 layer's forward pass, the kernel gradients of the 64→128 convolutions: 128 ×
/// 1024 outputs, 6272 terms each at batch 128) runs as two halves of the inner dimension computed side by side
/// by halves of the pool and then added: `gemm` splits a product across threads along the output only, which
/// leaves threads short of work on this shape. The halves depend on the shape alone, so the result does not
/// depend on the number of threads.
fn inner_split(m: usize, k: usize, n: usize) -> Option<usize> {
    (k >= 2 * m.max(n) && m * n * k >= 1 << 25).then_some(k / 2)
}

/// The room [`pool_product`] needs for its second half: `a.rows × b.cols` values for a split product, else none.
fn second_half_len(a: MatRef, b: MatRef) -> usize {
    let (m, n) = (a.rows, b.cols);
    inner_split(m, a.cols, n).map_or(0, |_| m * n)
}

/// `a · b` into `dst` on the rayon pool, and `dst`'s values, every one written. A split product ([`inner_split`])
/// writes its second half into `second_half` (room for m·n values, written before they are read), then adds it
/// onto the first.
fn pool_product<'d>(dst: Destination<'d>, a: MatRef, b: MatRef, second_half: &mut [MaybeUninit<f32>]) -> &'d mut [f32] {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    let threads = rayon::current_num_threads();
    let Some(half) = inner_split(m, k, n) else {
        return gemm_to(dst, a, b, threads);
    };
    assert_eq!(b.rows, k, "inner dimensions differ: {m}×{k} · {}×{n}", b.rows);
    // The pool's threads between the halves (an odd one to the first).
    let (first_threads, second_threads) = (threads.div_ceil(2), (threads / 2).max(1));
    let (first, second) = rayon::join(
        || gemm_to(dst, a.columns(0, half), b.rows_range(0, half), first_threads),
        || gemm_to(Destination::Write(second_half), a.columns(half, k), b.rows_range(half, k), second_threads),
    );
    first.iter_mut().zip(&*second).for_each(|(d, s)| *d += s);
    first
}

/// `a · b` into `dst` through `gemm` on `threads` threads of the rayon pool (1: the calling thread), and
/// `dst`'s values, every one written.
fn gemm_to<'d>(mut dst: Destination<'d>, a: MatRef, b: MatRef, threads: usize) -> &'d mut [f32] {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(b.rows, k, "inner dimensions differ: {m}×{k} · {}×{n}", b.rows);
    let (pointer, len, read_dst) = match &mut dst {
        Destination::Write(values) => (values.as_mut_ptr().cast::<f32>(), values.len(), false),
        Destination::Add(values) => (values.as_mut_ptr(), values.len(), true),
    };
    assert_eq!(len, m * n, "the destination of a {m}×{n} product has {len} values");
    if len > 0 && k > 0 {
        let parallelism = if threads > 1 { Parallelism::Rayon(threads) } else { Parallelism::None };
        // SAFETY: `pointer` addresses the m·n values of `dst`, an exclusive borrow that overlaps neither operand,
        // row-major (column stride 1, row stride n); gemm reads it only with `read_dst`, which is set for
        // `Add`, whose values are initialised. gemm 0.19 (pinned in the workspace) writes every destination value
        // without reading any when `read_dst` is false (the tests hand it NaNs there). The operands' elements
        // lie inside their data (`MatRef`'s invariant), and both are m×k · k×n (asserted above).
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                pointer,
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
    }
    match dst {
        Destination::Add(values) => values,
        Destination::Write(values) => {
            if k == 0 {
                // An empty sum.
                values.fill(MaybeUninit::new(0.0));
            }
            // SAFETY: gemm wrote every value (`read_dst` false, k > 0), or the fill did (k = 0), or there is none.
            unsafe { written_part(values) }
        }
    }
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

    /// Operands of small integers and halves, whose products' sums are exact in f32 in any order: the results
    /// compare equal to the triple loop's.
    fn operands((m, k, n): (usize, usize, usize)) -> (Vec<f32>, Vec<f32>) {
        ((0..m * k).map(|i| (i % 11) as f32 - 5.0).collect(), (0..k * n).map(|i| (i % 7) as f32 * 0.5 - 1.0).collect())
    }

    /// NaNs where a product gets uninitialised memory in production: a `gemm` that read a destination it was
    /// told not to read would leave NaNs in the result.
    fn nans(len: usize) -> Vec<MaybeUninit<f32>> {
        vec![MaybeUninit::new(f32::NAN); len]
    }

    #[test]
    fn products_of_transposed_views_and_accumulation_match_the_triple_loop() {
        let (m, k, n) = (5, 7, 3);
        let (a, b) = operands((m, k, n));
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
        assert_eq!(inner_split(m, k, n), Some(k / 2), "the split path");
        let (a, b) = operands((m, k, n));
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

    #[test]
    fn products_never_read_the_destination_they_overwrite() {
        // The shapes reach each of gemm's paths: its general kernels (small and larger outputs), the
        // matrix-vector ones (one row, one column), the one for an inner dimension of at most 2, threads of the
        // pool, the split into halves ([`inner_split`]) and the empty sum.
        for (m, k, n) in
            [(5, 7, 3), (33, 40, 29), (1, 7, 5), (5, 7, 1), (6, 2, 4), (96, 64, 80), (16, 32769, 64), (2, 0, 2)]
        {
            let (a, b) = operands((m, k, n));
            let expected = reference(&a, &b, (m, k, n));
            let added: Vec<f32> = expected.iter().map(|v| v + 2.0).collect();
            let (a_t, b_t) = (transpose(&a, m, k), transpose(&b, k, n));
            for (lhs, rhs) in [
                (MatRef::new(&a, m, k), MatRef::new(&b, k, n)),
                (MatRef::new(&a_t, k, m).t(), MatRef::new(&b_t, n, k).t()),
            ] {
                let shape = format!("{m}×{k}·{k}×{n}");
                let second_len = second_half_len(lhs, rhs);
                // `product`: its destination and, when split, its second half.
                let mut dst = nans(m * n);
                let written = pool_product(Destination::Write(&mut dst), lhs, rhs, &mut nans(second_len));
                assert_eq!(written, expected.as_slice(), "product {shape}");
                // `accumulate`: its second half when split.
                let mut sum = vec![2.0; m * n];
                pool_product(Destination::Add(&mut sum), lhs, rhs, &mut nans(second_len));
                assert_eq!(sum, added, "accumulate {shape}");
                // `product_in_thread`: one thread, its destination; and through the scratch vector it reuses,
                // NaNs in the capacity it overwrites (in a debug build `Unwritten` puts its own NaNs there).
                assert_eq!(gemm_to(Destination::Write(&mut nans(m * n)), lhs, rhs, 1), expected.as_slice(), "{shape}");
                let mut scratch = vec![f32::NAN; m * n];
                scratch.clear();
                assert_eq!(product_in_thread(&mut scratch, lhs, rhs), expected.as_slice(), "in thread {shape}");
            }
        }
    }

    #[test]
    fn transposed_matches_the_index_swap() {
        // Row lengths below, at and past a task's line of 16, and with a partial last line; an empty matrix.
        for (rows, cols) in [(1, 1), (3, 5), (7, 16), (5, 33), (128, 1024), (0, 4), (4, 0)] {
            let values: Vec<f32> = (0..rows * cols).map(|i| i as f32).collect();
            assert_eq!(transposed(&values, rows, cols), transpose(&values, rows, cols), "{rows}×{cols}");
        }
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "a 4×3 view of 10 values")]
    fn a_view_past_its_data_fails_in_a_debug_build() {
        // Only the constructors can make a view; a view whose strides reach past its data is caught where it is
        // made (here by hand, as a future constructor with a wrong stride would).
        let data = [0f32; 12];
        MatRef { data: &data[..10], rows: 4, cols: 3, row_stride: 3, col_stride: 1 }.checked();
    }
}
