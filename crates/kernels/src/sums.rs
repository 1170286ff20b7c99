//! Per-channel sums over batch and space, in f64: the layers' bias gradients, BatchNorm's statistics and the
//! sums of its backward pass. One function adds them all up, each caller in its own fixed order.

use candle_core::Layout;
use rayon::prelude::*;

use crate::vectorised::{self, VectorLoop};

/// A (batch, channels, spatial) layout: `n` items of `c` channels of `s` values each. With `s` = 1 it is a
/// row-major `n × c` matrix (rows of a product, a 1-D BatchNorm's input).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dims {
    pub(crate) n: usize,
    pub(crate) c: usize,
    pub(crate) s: usize,
}

impl Dims {
    /// A contiguous NC… tensor's layout as (batch, channels, product of the rest).
    pub(crate) fn of(layout: &Layout) -> Self {
        let dims = layout.shape().dims();
        Self { n: dims[0], c: dims[1], s: dims[2..].iter().product() }
    }

    pub(crate) fn len(self) -> usize {
        self.n * self.c * self.s
    }

    /// Channels per parallel task, each channel's sum inside one task (so the result does not depend on the
    /// number of threads): about four tasks per thread, but one for a matrix's columns (s = 1), whose pass goes
    /// row after row with a running sum per column of the block, and a block of a row is then a long vector op
    /// rather than a cache line of it (about a third less time for two sums down 128 columns of 6272 rows).
    fn channel_block(self) -> usize {
        let tasks_per_thread = if self.s == 1 { 1 } else { 4 };
        self.c.div_ceil(tasks_per_thread * rayon::current_num_threads()).max(1)
    }
}

/// Lanes of [`Order::Lanes`]: independent accumulators, so that the f64 sums vectorise instead of waiting on
/// one another (a single running sum is one dependent add per value).
const LANES: usize = 8;

/// Where `Iterator::sum` over f64 starts: −0.0, the value that leaves every first term as it is.
const ITERATOR_SUM_START: f64 = -0.0;

/// The order in which the values of a channel are added up. Each is fixed by the layout alone, never by the
/// number of threads; each caller keeps the order it has always used, so that its results stay the same to
/// the bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    /// One running sum from +0.0, value after value in memory order (item after item, each item's run in
    /// order). With `s` = 1 (the columns of a matrix) it runs along the rows, a block of channels at a time.
    Sequential,
    /// Each item's run summed first, then the items' sums in batch order, both as `Iterator::sum` adds (from
    /// −0.0).
    RunsThenBatch,
    /// [`LANES`] running sums from +0.0 along the runs, item after item: lane l takes values l, l + LANES, … of
    /// each run's whole groups of LANES, then the run's remaining values from lane 0 on; the lanes are added
    /// at the end as `Iterator::sum` adds. With `s` = 1 this is [`Order::Sequential`]'s pass along the rows.
    Lanes,
}

/// `K` sums per channel over batch and space of `term(the inputs' values at one position, the channel's
/// constants)`, in f64, in parallel over blocks of channels. Each input has the layout `dims`; each of
/// `constants` holds one value per channel.
pub(crate) fn channel_sums<const I: usize, const P: usize, const K: usize>(
    inputs: [&[f32]; I],
    constants: [&[f32]; P],
    dims: Dims,
    order: Order,
    term: impl Fn([f32; I], [f32; P]) -> [f64; K] + Sync,
) -> Vec<[f64; K]> {
    for input in inputs {
        assert_eq!(input.len(), dims.len(), "channel sums of {} values as {dims:?}", input.len());
    }
    let mut sums = vec![[0f64; K]; dims.c];
    let block = dims.channel_block();
    sums.par_chunks_mut(block).enumerate().for_each(|(i, sums)| {
        let block = BlockSums { inputs, constants, dims, order, first: i * block, count: sums.len(), term: &term };
        sums.copy_from_slice(&vectorised::run(block));
    });
    sums
}

/// The sums of [`channel_sums`] of channels `first..first + count`, as one loop for [`vectorised::run`].
struct BlockSums<'a, T, const I: usize, const P: usize, const K: usize> {
    inputs: [&'a [f32]; I],
    constants: [&'a [f32]; P],
    dims: Dims,
    order: Order,
    first: usize,
    count: usize,
    term: &'a T,
}

impl<T, const I: usize, const P: usize, const K: usize> VectorLoop for BlockSums<'_, T, I, P, K>
where
    T: Fn([f32; I], [f32; P]) -> [f64; K],
{
    type Output = Vec<[f64; K]>;

    #[inline(always)]
    fn run(self) -> Vec<[f64; K]> {
        let Self { inputs, constants, dims, order, first, count, term } = self;
        let Dims { n, c, s } = dims;
        let constants = constants.map(|k| &k[first..first + count]);
        // The run of channel `first + j` in item `batch`.
        let runs = |batch: usize, j: usize| inputs.map(|input| &input[(batch * c + first + j) * s..][..s]);
        let add = |acc: &mut [f64; K], t: [f64; K]| acc.iter_mut().zip(t).for_each(|(a, t)| *a += t);
        match order {
            Order::Sequential | Order::Lanes if s == 1 => {
                // A row holds one value of every channel: a row of the block at a time, along memory.
                let mut acc = vec![[0f64; K]; count];
                for row in 0..n {
                    let values = inputs.map(|input| &input[row * c + first..][..count]);
                    for (j, acc) in acc.iter_mut().enumerate() {
                        add(acc, term(values.map(|v| v[j]), constants.map(|k| k[j])));
                    }
                }
                acc
            }
            // With runs of several values (s > 1), every order works through the block's channels item after
            // item, each channel's sum carried from one item to the next: the block's part of an item is one
            // stretch of memory, which the prefetcher follows. Channel after channel instead, each item's run
            // (a few hundred bytes, tens of kilobytes from the last) is a fresh start for it, and the pass waited
            // on memory: three to four times as long as the element-wise pass over the same data. Each channel's
            // terms are added in the same order either way.
            Order::Sequential => {
                let mut sums = vec![[0f64; K]; count];
                for batch in 0..n {
                    for (j, sum) in sums.iter_mut().enumerate() {
                        let (runs, k) = (runs(batch, j), constants.map(|k| k[j]));
                        (0..s).for_each(|i| add(sum, term(runs.map(|r| r[i]), k)));
                    }
                }
                sums
            }
            Order::RunsThenBatch => {
                let mut sums = vec![[ITERATOR_SUM_START; K]; count];
                for batch in 0..n {
                    for (j, sum) in sums.iter_mut().enumerate() {
                        let (runs, k) = (runs(batch, j), constants.map(|k| k[j]));
                        let mut run = [ITERATOR_SUM_START; K];
                        (0..s).for_each(|i| add(&mut run, term(runs.map(|r| r[i]), k)));
                        add(sum, run);
                    }
                }
                sums
            }
            Order::Lanes => {
                let mut lanes = vec![[[0f64; LANES]; K]; count];
                let whole = s / LANES * LANES;
                for batch in 0..n {
                    for (j, lanes) in lanes.iter_mut().enumerate() {
                        let (runs, k) = (runs(batch, j), constants.map(|k| k[j]));
                        // The lanes in locals for the run, a whole group's terms made before they are added:
                        // the compiler then keeps the lanes in vector registers and computes the group's terms
                        // side by side (updated in place through the array, each add waited on a load and a
                        // store, and the stats took about three times as long).
                        let mut acc = *lanes;
                        for start in (0..whole).step_by(LANES) {
                            let group: [&[f32; LANES]; I] =
                                runs.map(|r| r[start..start + LANES].try_into().expect("a whole group"));
                            let mut terms = [[0f64; LANES]; K];
                            for lane in 0..LANES {
                                let t = term(group.map(|r| r[lane]), k);
                                (0..K).for_each(|sum| terms[sum][lane] = t[sum]);
                            }
                            for (acc, terms) in acc.iter_mut().zip(&terms) {
                                (0..LANES).for_each(|lane| acc[lane] += terms[lane]);
                            }
                        }
                        for (lane, i) in (whole..s).enumerate() {
                            let t = term(runs.map(|r| r[i]), k);
                            (0..K).for_each(|sum| acc[sum][lane] += t[sum]);
                        }
                        *lanes = acc;
                    }
                }
                lanes.iter().map(|lanes| lanes.map(|lanes| lanes.iter().sum())).collect()
            }
        }
    }
}

/// Σ over batch and space of every channel of `x` (layout `dims`), in f64 in `order`.
pub(crate) fn channel_totals(x: &[f32], dims: Dims, order: Order) -> Vec<f64> {
    channel_sums([x], [], dims, order, |[v], []| [f64::from(v)]).into_iter().map(|[sum]| sum).collect()
}

/// The bias gradient of a layer: the [`channel_totals`] of its output's gradient `grad`, as f32.
pub(crate) fn bias_gradient(grad: &[f32], dims: Dims, order: Order) -> Vec<f32> {
    channel_totals(grad, dims, order).into_iter().map(|sum| sum as f32).collect()
}

/// [`bias_gradient`] of gradient rows: Σ over the rows of every column of the row-major `rows × cols` matrix
/// `data`, in order ([`Order::Sequential`]).
pub(crate) fn column_sums(data: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    bias_gradient(data, Dims { n: rows, c: cols, s: 1 }, Order::Sequential)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values with long mantissas of mixed sign and magnitude, whose f64 sums differ from one order to the
    /// next; every seventh a negative zero.
    fn values(len: usize, seed: u64) -> Vec<f32> {
        let mut state = seed;
        (0..len)
            .map(|i| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let v = ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 10f32.powi((i % 7) as i32 - 3);
                if i % 7 == 6 {
                    -0.0
                } else {
                    v
                }
            })
            .collect()
    }

    fn bits(sums: &[[f64; 1]]) -> Vec<u64> {
        sums.iter().map(|[s]| s.to_bits()).collect()
    }

    /// Each order adds up exactly as the loops that define it: the reductions it replaces.
    #[test]
    fn every_order_adds_in_the_order_it_names() {
        for (n, c, s) in [(5, 3, 1), (4, 37, 5), (3, 9, 19), (2, 4, 8), (1, 2, 0), (0, 3, 4), (7, 70, 1)] {
            let dims = Dims { n, c, s };
            let x = values(dims.len(), (n * 100 + c * 10 + s) as u64);
            let at = |b: usize, ch: usize, i: usize| f64::from(x[(b * c + ch) * s + i]);
            let sum = |order| bits(&channel_sums([&x], [], dims, order, |[v], []| [f64::from(v)]));
            // One running sum from +0.0 (the columns of a matrix: `column_sums` when s = 1).
            let sequential: Vec<[f64; 1]> = (0..c)
                .map(|ch| {
                    let mut acc = 0f64;
                    (0..n).for_each(|b| (0..s).for_each(|i| acc += at(b, ch, i)));
                    [acc]
                })
                .collect();
            assert_eq!(sum(Order::Sequential), bits(&sequential), "sequential {dims:?}");
            // Iterator sums of the runs, then of the items (a transposed convolution's bias gradient).
            let runs: Vec<[f64; 1]> =
                (0..c).map(|ch| [(0..n).map(|b| (0..s).map(|i| at(b, ch, i)).sum::<f64>()).sum()]).collect();
            assert_eq!(sum(Order::RunsThenBatch), bits(&runs), "runs then batch {dims:?}");
            // Lanes along the runs, added at the end (BatchNorm's sums); the pass along the rows for s = 1.
            let lanes: Vec<[f64; 1]> = (0..c)
                .map(|ch| {
                    let mut lanes = [0f64; LANES];
                    for b in 0..n {
                        let whole = s / LANES * LANES;
                        (0..whole).for_each(|i| lanes[i % LANES] += at(b, ch, i));
                        (whole..s).enumerate().for_each(|(lane, i)| lanes[lane] += at(b, ch, i));
                    }
                    [if s == 1 { sequential[ch][0] } else { lanes.iter().sum() }]
                })
                .collect();
            assert_eq!(sum(Order::Lanes), bits(&lanes), "lanes {dims:?}");
            let as_f32: Vec<f32> = runs.iter().map(|[s]| *s as f32).collect();
            assert_eq!(bias_gradient(&x, dims, Order::RunsThenBatch), as_f32);
        }
        // `Iterator::sum` starts where `RunsThenBatch` does (the sum of nothing is its start), and the orders
        // differ even with s = 1 where that start shows: a channel of negative zeros.
        assert_eq!(std::iter::empty::<f64>().sum::<f64>().to_bits(), ITERATOR_SUM_START.to_bits());
        let zeros = [-0.0f32; 6];
        let dims = Dims { n: 2, c: 3, s: 1 };
        let sign = |order| bias_gradient(&zeros, dims, order).iter().map(|v| v.is_sign_negative()).collect::<Vec<_>>();
        assert_eq!((sign(Order::Sequential), sign(Order::RunsThenBatch)), (vec![false; 3], vec![true; 3]));
    }

    /// Every instruction set the CPU has gives the same sums to the bit, in every order, with runs and rows
    /// of whole lane groups, remainders and fewer values than a group.
    #[test]
    fn every_instruction_set_adds_to_the_same_bits() {
        for (n, c, s) in [(5, 3, 1), (4, 37, 5), (3, 9, 19), (2, 4, 8), (3, 70, 49), (1, 2, 0), (6, 33, 1)] {
            let dims = Dims { n, c, s };
            let (x, g) = (values(dims.len(), (n * c + s) as u64), values(dims.len(), 7));
            let mean: Vec<f32> = (0..c).map(|ch| ch as f32 * 0.25 - 1.0).collect();
            let scale: Vec<f32> = (0..c).map(|ch| 0.75 + ch as f32 * 0.125).collect();
            let shift: Vec<f32> = (0..c).map(|ch| ch as f32 * 0.0625 - 0.5).collect();
            // BatchNorm's backward term: an f32 multiply and add (which a fused multiply-add would round once),
            // a comparison, f32 and f64 products.
            let term = |[x, g]: [f32; 2], [m, scale, shift]: [f32; 3]| {
                let centred = x - m;
                let g = f64::from(g * if centred * scale + shift > 0.0 { 1.0 } else { 0.2 });
                [g * f64::from(centred), g]
            };
            for order in [Order::Sequential, Order::RunsThenBatch, Order::Lanes] {
                let constants = [&mean[..], &scale[..], &shift[..]];
                let block = || BlockSums { inputs: [&x, &g], constants, dims, order, first: 0, count: c, term: &term };
                let paths = crate::vectorised::every_path(block);
                let bits = |sums: &Vec<[f64; 2]>| sums.iter().map(|s| s.map(f64::to_bits)).collect::<Vec<_>>();
                for (name, sums) in &paths {
                    assert_eq!(bits(sums), bits(&paths[0].1), "{name} against {} for {dims:?}, {order:?}", paths[0].0);
                }
                assert_eq!(bits(&channel_sums([&x, &g], constants, dims, order, term)), bits(&paths[0].1));
            }
        }
    }

    #[test]
    fn several_inputs_constants_and_sums_per_channel() {
        // BatchNorm's backward sums: two inputs, one constant per channel, two sums, each in lanes.
        let dims = Dims { n: 3, c: 4, s: 10 };
        let (x, g) = (values(dims.len(), 1), values(dims.len(), 2));
        let mean = [0.5f32, -0.25, 0.0, 2.0];
        let term = |[x, g]: [f32; 2], [m]: [f32; 1]| [f64::from(g) * f64::from(x - m), f64::from(g)];
        let sums = channel_sums([&x, &g], [&mean], dims, Order::Lanes, term);
        for (ch, sums) in sums.into_iter().enumerate() {
            let mut lanes = [[0f64; LANES]; 2];
            for b in 0..dims.n {
                let run = (b * dims.c + ch) * dims.s;
                for i in 0..dims.s {
                    // 10 values a run: lanes 0–7, then lanes 0 and 1.
                    let t = term([x[run + i], g[run + i]], [mean[ch]]);
                    (0..2).for_each(|k| lanes[k][i % LANES] += t[k]);
                }
            }
            let expected = lanes.map(|lanes| lanes.iter().sum::<f64>().to_bits());
            assert_eq!(sums.map(f64::to_bits), expected, "channel {ch}");
        }
    }
}
