//! Convolution and transposed convolution (square kernel, dilation 1, one group: what the networks use), each
//! one autograd node whose forward and backward passes are matrix products between im2row/row2im shuffles.

use std::mem::MaybeUninit;
use std::sync::OnceLock;

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::matmul::{column_sums, product_in_thread, product_onto, MatRef};
use super::{
    add_to_sum, bias_or_zeros, contiguous_f32, fast_path, filled, parameter, parameter_grad, rewritten, with_values,
    written, Activation,
};

/// Stride and padding of a square-kernel convolution (dilation 1, one group: what the networks use).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvParams {
    pub stride: usize,
    pub padding: usize,
}

/// candle's path: its op, then the bias broadcast over the batch and the image.
fn add_bias(y: Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    match bias {
        Some(bias) => y.broadcast_add(&bias.reshape((1, bias.elem_count(), 1, 1))?),
        None => Ok(y),
    }
}

/// 2-D convolution of `x` (batch, c_in, h, w) with `weight` (c_out, c_in, k, k) and an optional `bias` (c_out),
/// as `candle_nn::Conv2d` computes it.
pub fn conv2d(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>, params: ConvParams) -> Result<Tensor> {
    conv2d_activation(x, weight, bias, params, Activation::Identity)
}

/// [`conv2d`] then `activation`, in the same op on the CPU (the activation's derivative read off the output).
pub fn conv2d_activation(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    params: ConvParams,
    activation: Activation,
) -> Result<Tensor> {
    let ConvParams { stride, padding } = params;
    let (Ok(x_dims), Ok(w_dims)) = (x.dims4(), weight.dims4()) else {
        candle_core::bail!("conv2d: input {:?} and kernel {:?} must be 4-D", x.shape(), weight.shape());
    };
    let ((_, c_in, height, width), (_, k_in, kernel, kernel_w)) = (x_dims, w_dims);
    if k_in != c_in || stride == 0 || height.min(width) + 2 * padding < kernel.max(kernel_w) {
        candle_core::bail!("conv2d: input {:?} does not fit kernel {:?} ({params:?})", x.shape(), weight.shape());
    }
    // Another device or dtype, a non-square or empty kernel: candle's op.
    let fast = fast_path(x, weight) && kernel_w == kernel && weight.elem_count() > 0 && x.elem_count() > 0;
    let Some(negative_slope) = activation.negative_slope().filter(|_| fast) else {
        return activation.apply(add_bias(x.conv2d(weight, padding, stride, 1, 1)?, bias)?);
    };
    let (batch, c_out) = (x_dims.0, w_dims.0);
    let geometry = Geometry {
        batch,
        channels: c_in,
        height,
        width,
        kernel,
        stride,
        padding,
        grid_h: (height + 2 * padding - kernel) / stride + 1,
        grid_w: (width + 2 * padding - kernel) / stride + 1,
    };
    let bias = bias_or_zeros(bias, c_out, x, "conv2d")?;
    let weight = parameter(weight).contiguous()?;
    // The patch rows are kept for the kernel's gradient, if it takes one.
    let op = Conv2d { geometry, c_out, negative_slope, keep_rows: weight.track_op(), rows: OnceLock::new() };
    x.contiguous()?.apply_op3(&weight, &bias, op)
}

/// Transposed 2-D convolution of `x` (batch, c_in, h, w) with `weight` (c_in, c_out, k, k) and an optional
/// `bias` (c_out), output padding 0, as `candle_nn::ConvTranspose2d` computes it: the adjoint of [`conv2d`].
pub fn conv_transpose2d(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>, params: ConvParams) -> Result<Tensor> {
    let ConvParams { stride, padding } = params;
    let (Ok(x_dims), Ok(w_dims)) = (x.dims4(), weight.dims4()) else {
        candle_core::bail!("conv_transpose2d: input {:?} and kernel {:?} must be 4-D", x.shape(), weight.shape());
    };
    let ((_, c_in, height, width), (k_in, _, kernel, kernel_w)) = (x_dims, w_dims);
    if k_in != c_in || stride == 0 || height.min(width) == 0 || kernel.min(kernel_w) <= 2 * padding {
        let (x, w) = (x.shape(), weight.shape());
        candle_core::bail!("conv_transpose2d: input {x:?} does not fit kernel {w:?} ({params:?})");
    }
    if !fast_path(x, weight) || kernel_w != kernel || weight.elem_count() == 0 {
        return add_bias(x.conv_transpose2d(weight, padding, 0, stride, 1)?, bias);
    }
    let (batch, c_out) = (x_dims.0, w_dims.1);
    // The output is the image side of a convolution whose patch grid is the input.
    let geometry = Geometry {
        batch,
        channels: c_out,
        height: (height - 1) * stride + kernel - 2 * padding,
        width: (width - 1) * stride + kernel - 2 * padding,
        kernel,
        stride,
        padding,
        grid_h: height,
        grid_w: width,
    };
    let bias = bias_or_zeros(bias, c_out, x, "conv_transpose2d")?;
    let weight = parameter(weight).contiguous()?;
    let op = ConvTranspose2d { geometry, c_in, keep_input: weight.track_op(), input: OnceLock::new() };
    x.contiguous()?.apply_op3(&weight, &bias, op)
}

/// A convolution's two sides: the image (batch, channels, height, width) and the grid of patch positions
/// (grid_h × grid_w), with the kernel, stride and zero padding between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Geometry {
    batch: usize,
    channels: usize,
    height: usize,
    width: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    grid_h: usize,
    grid_w: usize,
}

impl Geometry {
    fn image_len(&self) -> usize {
        self.batch * self.item_len()
    }

    /// The image side zero-padded on every edge: (height + 2·padding, width + 2·padding). A patch's rows
    /// lie inside it: (grid − 1)·stride + kernel ≤ size + 2·padding.
    fn padded(&self) -> (usize, usize) {
        (self.height + 2 * self.padding, self.width + 2 * self.padding)
    }

    /// One batch item's patch rows, the transpose of its im2col: grid_h·grid_w rows of channels·kernel² values,
    /// each in the kernel's (c, ky, kx) order, copied from a zero-padded copy of the item's image (tens of
    /// kilobytes, in cache), `kernel` values at a time. Every value of `out` is written.
    fn im2row_item(&self, image: &[f32], out: &mut [MaybeUninit<f32>]) {
        let padded = self.pad(image);
        // A literal kernel size makes each run a fixed-size copy.
        match self.kernel {
            3 => self.patches(3, &padded, out),
            4 => self.patches(4, &padded, out),
            5 => self.patches(5, &padded, out),
            kernel => self.patches(kernel, &padded, out),
        }
    }

    /// [`Geometry::im2row_item`] for consecutive items: `images` holds them, `out` their rows in order.
    fn im2row_items(&self, images: &[f32], out: &mut [MaybeUninit<f32>]) {
        let (item, rows) = (self.item_len(), self.grid_h * self.grid_w * self.rows_shape().1);
        for (i, out) in out.chunks_exact_mut(rows).enumerate() {
            self.im2row_item(&images[i * item..][..item], out);
        }
    }

    /// The adjoint of [`Geometry::im2row_item`]: every value of one item's patch `rows` added back onto the
    /// pixel it was copied from, plus `bias[c]` on channel c if given, summed in a fixed order into a
    /// zero-padded copy in cache whose inside is the item's image. Every value of `out` is written.
    fn row2im_item(&self, rows: &[f32], out: &mut [MaybeUninit<f32>], bias: Option<&[f32]>) {
        let (hp, wp) = self.padded();
        let mut padded = vec![0f32; self.channels * hp * wp];
        match self.kernel {
            3 => self.add_patches(3, rows, &mut padded),
            4 => self.add_patches(4, rows, &mut padded),
            5 => self.add_patches(5, rows, &mut padded),
            kernel => self.add_patches(kernel, rows, &mut padded),
        }
        let (height, width) = (self.height, self.width);
        if width == 0 {
            return;
        }
        for (i, line) in out.chunks_exact_mut(width).enumerate() {
            let (c, y) = (i / height, i % height);
            let (inside, shift) = (&padded[self.inside_start(c, y)..][..width], bias.map_or(0.0, |b| b[c]));
            line.iter_mut().zip(inside).for_each(|(out, v)| {
                out.write(v + shift);
            });
        }
    }

    /// The values of one item of the image side.
    fn item_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    fn rows_shape(&self) -> (usize, usize) {
        (self.batch * self.grid_h * self.grid_w, self.channels * self.kernel * self.kernel)
    }

    /// Where line y of channel c of the image starts in its zero-padded copy.
    fn inside_start(&self, c: usize, y: usize) -> usize {
        let (hp, wp) = self.padded();
        (c * hp + y + self.padding) * wp + self.padding
    }

    /// Where run `run` = (c, ky) of the patch row at `position` = (gy, gx) starts in the zero-padded image: padded
    /// row gy·stride + ky of channel c, from column gx·stride on.
    #[inline(always)]
    fn run_start(&self, kernel: usize, position: usize, run: usize) -> usize {
        let (hp, wp) = self.padded();
        let (gy, gx, c, ky) = (position / self.grid_w, position % self.grid_w, run / kernel, run % kernel);
        (c * hp + gy * self.stride + ky) * wp + gx * self.stride
    }

    /// One batch item's image (channels, height, width) inside a zero border of `padding`.
    fn pad(&self, image: &[f32]) -> Vec<f32> {
        let (hp, wp) = self.padded();
        let mut padded = vec![0f32; self.channels * hp * wp];
        if self.width > 0 {
            for (i, line) in image.chunks_exact(self.width).enumerate() {
                let (c, y) = (i / self.height, i % self.height);
                let start = self.inside_start(c, y);
                padded[start..start + self.width].copy_from_slice(line);
            }
        }
        padded
    }

    /// Writes one item's patch rows from its `padded` image, each run the `kernel` values from its
    /// [`Geometry::run_start`].
    #[inline(always)]
    fn patches(&self, kernel: usize, padded: &[f32], out: &mut [MaybeUninit<f32>]) {
        let row_len = self.channels * kernel * kernel;
        for (position, row) in out.chunks_exact_mut(row_len).enumerate() {
            for (run, values) in row.chunks_exact_mut(kernel).enumerate() {
                let start = self.run_start(kernel, position, run);
                for (v, x) in values.iter_mut().zip(&padded[start..start + kernel]) {
                    v.write(*x);
                }
            }
        }
    }

    /// [`Geometry::patches`] backwards: adds each run of one item's `rows` onto the `padded` image.
    #[inline(always)]
    fn add_patches(&self, kernel: usize, rows: &[f32], padded: &mut [f32]) {
        let row_len = self.channels * kernel * kernel;
        for (position, row) in rows.chunks_exact(row_len).enumerate() {
            for (run, values) in row.chunks_exact(kernel).enumerate() {
                let start = self.run_start(kernel, position, run);
                for (p, v) in padded[start..start + kernel].iter_mut().zip(values) {
                    *p += *v;
                }
            }
        }
    }
}

/// Channels a layout change moves together: one 64-byte cache line of a row.
const CHANNEL_BLOCK: usize = 16;

/// One batch item's spatial × channels rows (a block of a product with patch rows) → channels × spatial,
/// adding `bias[c]` (if given) to channel c and multiplying values ≤ 0 by `negative_slope` (an activation; 1
/// for none) on the way. Every value of `out` is written.
fn rows_to_channels_item(
    x: &[f32],
    out: &mut [MaybeUninit<f32>],
    spatial: usize,
    channels: usize,
    bias: Option<&[f32]>,
    negative_slope: f32,
) {
    // A block of channels at a time, one position after another: each row's run of the block's channels is
    // one cache line, and the block's output lines are written in order.
    for first in (0..channels).step_by(CHANNEL_BLOCK) {
        let n = CHANNEL_BLOCK.min(channels - first);
        let shifts: Vec<f32> = (first..first + n).map(|c| bias.map_or(0.0, |bias| bias[c])).collect();
        let lines = &mut out[first * spatial..(first + n) * spatial];
        for (p, row) in x.chunks_exact(channels).enumerate() {
            for (j, (v, shift)) in row[first..first + n].iter().zip(&shifts).enumerate() {
                let v = v + shift;
                lines[j * spatial + p].write(if v > 0.0 { v } else { v * negative_slope });
            }
        }
    }
}

/// The inverse of [`rows_to_channels_item`] for one item: channels × spatial → spatial × channels, with
/// values multiplied by `negative_slope` where `output` (an activation's output, whose sign its input's is) is
/// ≤ 0 (`output` `None`: no activation). Every value of `out` is written.
fn channels_to_rows_item(
    x: &[f32],
    output: Option<&[f32]>,
    negative_slope: f32,
    out: &mut [MaybeUninit<f32>],
    channels: usize,
    spatial: usize,
) {
    // As in `rows_to_channels_item`: a block of channel lines read in order, each output row's run of the
    // block written at once.
    for first in (0..channels).step_by(CHANNEL_BLOCK) {
        let n = CHANNEL_BLOCK.min(channels - first);
        let lines = &x[first * spatial..(first + n) * spatial];
        let signs = output.map(|y| &y[first * spatial..(first + n) * spatial]);
        for (p, row) in out.chunks_exact_mut(channels).enumerate() {
            for (j, out) in row[first..first + n].iter_mut().enumerate() {
                let v = lines[j * spatial + p];
                out.write(match signs {
                    Some(y) if y[j * spatial + p] <= 0.0 => v * negative_slope,
                    _ => v,
                });
            }
        }
    }
}

/// [`channels_to_rows_item`] over the batch, in parallel: (batch, channels, spatial) → (batch·spatial) ×
/// channels.
fn channels_to_rows(
    x: &[f32],
    output: Option<&[f32]>,
    negative_slope: f32,
    batch: usize,
    channels: usize,
    spatial: usize,
) -> Vec<f32> {
    let item = spatial * channels;
    assert_eq!(x.len(), batch * item, "{} values as {batch} items of {channels}×{spatial}", x.len());
    // Every item's values are written by `channels_to_rows_item`.
    written(x.len(), |out| {
        if item > 0 {
            out.par_chunks_mut(item).enumerate().for_each(|(b, out)| {
                let output = output.map(|y| &y[b * item..(b + 1) * item]);
                channels_to_rows_item(&x[b * item..(b + 1) * item], output, negative_slope, out, channels, spatial)
            });
        }
    })
}

/// About what a block of [`item_blocks`] work holds: a core's L2 cache (1 MB on the machines measured).
const BLOCK_BYTES: usize = 1 << 20;

/// A block of batch items that one thread works through while its data is in cache: the first item, the
/// number of items, and the block's parts of an output and of the patch or input rows kept for the kernel
/// gradient (`None` when the kernel takes none: the thread's scratch buffer instead).
struct ItemBlock<'a> {
    first: usize,
    items: usize,
    out: &'a mut [MaybeUninit<f32>],
    kept: Option<&'a mut [MaybeUninit<f32>]>,
}

/// The batch in blocks of items for [`ItemBlock`] work, each block's data (`bytes_per_item` per item) about
/// what a core's cache holds beside the operands, and `out` (`out_item` values per item) and `kept`
/// (`kept_item` per item) cut to match.
fn item_blocks<'a>(
    batch: usize,
    bytes_per_item: usize,
    mut out: &'a mut [MaybeUninit<f32>],
    out_item: usize,
    mut kept: Option<&'a mut [MaybeUninit<f32>]>,
    kept_item: usize,
) -> Vec<ItemBlock<'a>> {
    let per_block = (BLOCK_BYTES / bytes_per_item.max(1)).max(1);
    assert_eq!(out.len(), batch * out_item, "{} output values for {batch} items of {out_item}", out.len());
    if let Some(kept) = &kept {
        assert_eq!(kept.len(), batch * kept_item, "{} kept values for {batch} items of {kept_item}", kept.len());
    }
    let mut blocks = Vec::with_capacity(batch.div_ceil(per_block));
    for first in (0..batch).step_by(per_block) {
        let items = per_block.min(batch - first);
        let (block_out, rest) = std::mem::take(&mut out).split_at_mut(items * out_item);
        out = rest;
        let block_kept = match kept.take() {
            Some(all) => {
                let (block, rest) = all.split_at_mut(items * kept_item);
                kept = Some(rest);
                Some(block)
            }
            None => None,
        };
        blocks.push(ItemBlock { first, items, out: block_out, kept: block_kept });
    }
    blocks
}

/// A worker's buffers for [`ItemBlock`] work, reused from block to block within one of rayon's jobs.
#[derive(Default)]
struct Scratch {
    rows: Vec<f32>,
    product: Vec<f32>,
}

/// A block's rows written by `fill`: into its part of the kept rows if it has one (see [`room`]), else into the
/// thread's `scratch` buffer (`len` values). `fill` must write every value.
fn kept_or_scratch<'a>(
    kept: Option<&'a mut [MaybeUninit<f32>]>,
    scratch: &'a mut Vec<f32>,
    len: usize,
    fill: impl FnOnce(&mut [MaybeUninit<f32>]),
) -> &'a [f32] {
    match kept {
        Some(kept) => filled(kept, fill),
        None => rewritten(scratch, len, fill),
    }
}

/// `kept`'s room for `len` values when `keep` (for [`item_blocks`]); set its length once they are written.
fn room(kept: &mut Vec<f32>, keep: bool, len: usize) -> Option<&mut [MaybeUninit<f32>]> {
    keep.then(|| {
        kept.reserve(len);
        &mut kept.spare_capacity_mut()[..len]
    })
}

/// Σ over batch and space of every channel of `x` (batch, channels, spatial): the bias gradient. Summed in f64,
/// in parallel over channels.
fn channel_sums(x: &[f32], batch: usize, channels: usize, spatial: usize) -> Vec<f32> {
    (0..channels)
        .into_par_iter()
        .map(|c| {
            let sum: f64 = (0..batch)
                .map(|b| x[(b * channels + c) * spatial..][..spatial].iter().map(|&v| f64::from(v)).sum::<f64>())
                .sum();
            sum as f32
        })
        .collect()
}

fn no_saved(op: &str) -> candle_core::Error {
    candle_core::Error::Msg(format!("{op}: backward pass without a forward pass"))
}

/// (x, kernel, bias) → `im2row(x) · Wᵀ + b`, laid out (batch, c_out, grid_h, grid_w).
///
/// The product runs in this orientation, (batch·grid) × (c_in·k²) rows times the kernel, rather than as
/// `W · im2col(x)`: the `gemm` crate is faster with the long side as the output's rows (measured at the
/// discriminator's 64→128 convolution, batch 128: about 195 GFLOP/s against 165 on two cores), and im2row and
/// its adjoint work one batch item at a time in cache.
///
/// The forward pass, the input gradient and a small kernel's whole backward pass work through the batch in
/// blocks of items (about a megabyte of data each, [`item_blocks`]), each block's layout changes and product on
/// one thread one after the other, so that what one step writes the next reads from the core's cache. Made whole, the intermediate arrays are tens of megabytes each (the
/// product of the gradient with the kernel is 25 MB for the discriminator's 64→128 convolution at batch 128),
/// and every pass over them went to memory: in the training step at batch 128, the four convolution passes
/// took ~143 ms one whole array after another and ~133 ms in blocks; the step 284 → 263 ms.
struct Conv2d {
    geometry: Geometry,
    c_out: usize,
    /// The activation's factor for values ≤ 0 (1: none).
    negative_slope: f32,
    /// Whether the forward pass keeps im2row(x) for the kernel gradient (not for a frozen kernel).
    keep_rows: bool,
    /// im2row(x), for the kernel gradient.
    rows: OnceLock<Vec<f32>>,
}

impl CustomOp3 for Conv2d {
    fn name(&self) -> &'static str {
        "conv2d"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (g, c_out) = (self.geometry, self.c_out);
        let (x, w, bias) =
            (contiguous_f32(s1, l1, "conv2d")?, contiguous_f32(s2, l2, "conv2d")?, contiguous_f32(s3, l3, "conv2d")?);
        let (positions, row_len) = g.rows_shape();
        if x.len() != g.image_len() || w.len() != c_out * row_len || bias.len() != c_out {
            candle_core::bail!(
                "conv2d: {} inputs, {} kernel values, {} biases for {g:?}",
                x.len(),
                w.len(),
                bias.len()
            );
        }
        let (grid, image) = (g.grid_h * g.grid_w, g.item_len());
        let (block, out_item) = (grid * row_len, c_out * grid);
        let w = MatRef::new(w, c_out, row_len).t();
        let mut rows = Vec::new();
        // Each block of items on one thread: its patch rows, their product with the kernel and its transpose
        // into the output, while the rows and the product are in cache. `item_blocks` covers the output and
        // the kept rows; each block writes all of its part of both (`im2row_item`, `rows_to_channels_item`).
        let y = written(g.batch * out_item, |out| {
            let kept = room(&mut rows, self.keep_rows, positions * row_len);
            let blocks = item_blocks(g.batch, (block + out_item) * 4, out, out_item, kept, block);
            blocks.into_par_iter().for_each_init(Scratch::default, |Scratch { rows, product }, b| {
                let images = &x[b.first * image..][..b.items * image];
                let rows = kept_or_scratch(b.kept, rows, b.items * block, |out| g.im2row_items(images, out));
                product.resize(b.items * out_item, 0.0);
                product_in_thread(product, MatRef::new(rows, b.items * grid, row_len), w, false);
                for (out, product) in b.out.chunks_exact_mut(out_item).zip(product.chunks_exact(out_item)) {
                    rows_to_channels_item(product, out, grid, c_out, Some(bias), self.negative_slope);
                }
            });
        });
        if self.keep_rows {
            // SAFETY: the blocks above wrote every one of the kept rows' values.
            unsafe { rows.set_len(positions * row_len) };
            let _ = self.rows.set(rows);
        }
        Ok((CpuStorage::F32(y), (g.batch, c_out, g.grid_h, g.grid_w).into()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        bias: &Tensor,
        y: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (g, c_out) = (self.geometry, self.c_out);
        let (positions, row_len) = g.rows_shape();
        let grid = g.grid_h * g.grid_w;
        // The rows of the forward pass, unless the kernel is frozen (then it kept none).
        let rows = match self.rows.get() {
            Some(rows) => Some(rows),
            None if !w.track_op() => None,
            None => return Err(no_saved("conv2d")),
        };
        // A kernel of at most an eighth of a block (128 KB: D's first convolution, 4 KB) is summed per block:
        // the blocks' shares cost less than the whole-batch gradient rows would. (D's second, 512 KB, is not.)
        if c_out * row_len * 4 * 8 <= BLOCK_BYTES {
            return self.small_kernel_bwd(x, w, bias, y, &grad.contiguous()?, rows);
        }
        // ∂L/∂Y as rows (batch·grid) × c_out, before the activation: its derivative read off the output, which
        // keeps the sign.
        let slope = self.negative_slope;
        let grad_y = with_values(&grad.contiguous()?, "conv2d", |grad| match slope {
            1.0 => Ok(channels_to_rows(grad, None, 1.0, g.batch, c_out, grid)),
            _ => with_values(y, "conv2d", |y| Ok(channels_to_rows(grad, Some(y), slope, g.batch, c_out, grid))),
        })?;
        let grad_bias = parameter_grad(bias, |sum| add_to_sum(sum, column_sums(&grad_y, positions, c_out)))?;
        let grad_y = MatRef::new(&grad_y, positions, c_out);
        // ∂L/∂W = ∂L/∂Yᵀ · im2row(x), unless the kernel is frozen (then the forward pass kept no rows).
        let grad_w = match rows {
            Some(rows) => {
                parameter_grad(w, |sum| product_onto(sum, grad_y.t(), MatRef::new(rows, positions, row_len)))?
            }
            None => None,
        };
        // ∂L/∂x = row2im(∂L/∂Y · W), only where x needs one (not the images): in blocks of items, each block's
        // product (the largest array of the step if made whole: 25 MB for the discriminator's second
        // convolution at batch 128) summed into its images on one thread while it is in cache.
        let grad_x = if x.track_op() {
            let (grid, image) = (grid, g.item_len());
            let grad_x = with_values(w, "conv2d", |w| {
                let w = MatRef::new(w, c_out, row_len);
                let grad_y = grad_y.data();
                // Each block writes each of its images (`row2im_item`).
                Ok(written(g.image_len(), |out| {
                    let blocks = item_blocks(g.batch, (grid * row_len + image) * 4, out, image, None, 0);
                    blocks.into_par_iter().for_each_init(Vec::new, |product, b| {
                        let lhs = MatRef::new(
                            &grad_y[b.first * grid * c_out..][..b.items * grid * c_out],
                            b.items * grid,
                            c_out,
                        );
                        product.resize(b.items * grid * row_len, 0.0);
                        product_in_thread(product, lhs, w, false);
                        for (out, rows) in b.out.chunks_exact_mut(image).zip(product.chunks_exact(grid * row_len)) {
                            g.row2im_item(rows, out, None);
                        }
                    });
                }))
            })?;
            Some(Tensor::from_vec(grad_x, x.shape(), x.device())?)
        } else {
            None
        };
        Ok((grad_x, grad_w, grad_bias))
    }
}

impl Conv2d {
    /// The backward pass of a convolution with a small kernel (the discriminator's first: 64 × 16 values) all in
    /// blocks of items: each block's ∂L/∂Y rows are made in cache and give the block's shares of the kernel and
    /// bias gradients and its part of ∂L/∂x, and the shares are added up in block order (a kernel-sized sum per
    /// block, cheap for a small kernel). The rows, 6.4 MB for that convolution at batch 128, never go to memory.
    fn small_kernel_bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        bias: &Tensor,
        y: &Tensor,
        grad: &Tensor,
        rows: Option<&Vec<f32>>,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (g, c_out, slope) = (self.geometry, self.c_out, self.negative_slope);
        let (_, row_len) = g.rows_shape();
        let (grid, image) = (g.grid_h * g.grid_w, g.item_len());
        let need_x = x.track_op();
        let (out_item, grad_item) = (if need_x { image } else { 0 }, c_out * grid);
        // The same blocks whether x takes a gradient or not, so that the kernel's shares add up in the same order.
        let bytes_per_item = (2 * grad_item + grid * row_len + image) * 4;
        let mut shares: Vec<(Vec<f64>, Option<Vec<f32>>)> = Vec::new();
        let grad_x = with_values(grad, "conv2d", |grad| {
            with_values(y, "conv2d", |y| {
                with_values(w, "conv2d", |w| {
                    let w = MatRef::new(w, c_out, row_len);
                    // Each block writes each of its images of ∂L/∂x (`row2im_item`), if x takes one.
                    Ok(written(g.batch * out_item, |out| {
                        let blocks = item_blocks(g.batch, bytes_per_item, out, out_item, None, 0);
                        shares = blocks
                            .into_par_iter()
                            .map_init(Scratch::default, |Scratch { rows: grad_rows, product }, b| {
                                let span = b.first * grad_item..(b.first + b.items) * grad_item;
                                let (grad, y) = (&grad[span.clone()], &y[span]);
                                // ∂L/∂Y as rows, before the activation (its derivative read off the output).
                                let grad_rows = rewritten(grad_rows, b.items * grad_item, |out| {
                                    for (i, out) in out.chunks_exact_mut(grad_item).enumerate() {
                                        let at = i * grad_item..(i + 1) * grad_item;
                                        let output = (slope != 1.0).then(|| &y[at.clone()]);
                                        channels_to_rows_item(&grad[at], output, slope, out, c_out, grid);
                                    }
                                });
                                let m = b.items * grid;
                                let grad_rows = MatRef::new(grad_rows, m, c_out);
                                let bias_share = column_sums_f64(grad_rows.data(), m, c_out);
                                let kernel_share = rows.map(|rows| {
                                    let mut share = vec![0f32; c_out * row_len];
                                    let rows =
                                        MatRef::new(&rows[b.first * grid * row_len..][..m * row_len], m, row_len);
                                    product_in_thread(&mut share, grad_rows.t(), rows, false);
                                    share
                                });
                                if need_x {
                                    product.resize(m * row_len, 0.0);
                                    product_in_thread(product, grad_rows, w, false);
                                    for (out, rows) in
                                        b.out.chunks_exact_mut(image).zip(product.chunks_exact(grid * row_len))
                                    {
                                        g.row2im_item(rows, out, None);
                                    }
                                }
                                (bias_share, kernel_share)
                            })
                            .collect();
                    }))
                })
            })
        })?;
        let grad_bias = parameter_grad(bias, |sum| {
            let mut total = vec![0f64; c_out];
            for (share, _) in &shares {
                total.iter_mut().zip(share).for_each(|(t, s)| *t += s);
            }
            add_to_sum(sum, total.into_iter().map(|t| t as f32).collect())
        })?;
        let grad_w = match rows {
            Some(_) => parameter_grad(w, |sum| {
                let mut total = vec![0f32; c_out * row_len];
                for share in shares.iter().filter_map(|(_, share)| share.as_ref()) {
                    total.iter_mut().zip(share).for_each(|(t, s)| *t += s);
                }
                add_to_sum(sum, total)
            })?,
            None => None,
        };
        let grad_x = if need_x { Some(Tensor::from_vec(grad_x, x.shape(), x.device())?) } else { None };
        Ok((grad_x, grad_w, grad_bias))
    }
}

/// Σ over the rows of every column of the row-major `rows × cols` matrix `data`, in f64, on this thread.
fn column_sums_f64(data: &[f32], rows: usize, cols: usize) -> Vec<f64> {
    let mut sums = vec![0f64; cols];
    for row in data.chunks_exact(cols).take(rows) {
        sums.iter_mut().zip(row).for_each(|(s, v)| *s += f64::from(*v));
    }
    sums
}

/// (x, kernel, bias) → `row2im(x · W) + b`, laid out (batch, c_out, height, width): x as rows (batch·grid) ×
/// c_in, each row's product with the kernel (c_in × c_out·k²) one patch of the output. In blocks of items, as
/// [`Conv2d`].
struct ConvTranspose2d {
    /// The output is the image side; the input is the patch grid.
    geometry: Geometry,
    c_in: usize,
    /// Whether the forward pass keeps x as rows for the kernel gradient (not for a frozen kernel).
    keep_input: bool,
    /// x as rows (batch·grid) × c_in, for the kernel gradient.
    input: OnceLock<Vec<f32>>,
}

impl CustomOp3 for ConvTranspose2d {
    fn name(&self) -> &'static str {
        "conv-transpose2d"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (g, c_in) = (self.geometry, self.c_in);
        let name = self.name();
        let (x, w, bias) =
            (contiguous_f32(s1, l1, name)?, contiguous_f32(s2, l2, name)?, contiguous_f32(s3, l3, name)?);
        let (positions, row_len) = g.rows_shape();
        if x.len() != c_in * positions || w.len() != c_in * row_len || bias.len() != g.channels {
            candle_core::bail!(
                "{name}: {} inputs, {} kernel values, {} biases for {g:?}",
                x.len(),
                w.len(),
                bias.len()
            );
        }
        let (grid, image) = (g.grid_h * g.grid_w, g.item_len());
        let (input_item, block) = (c_in * grid, grid * row_len);
        let w = MatRef::new(w, c_in, row_len);
        let mut input = Vec::new();
        // Each block of items on one thread: its input as rows, their product with the kernel and its sum into
        // the output images, while the product is in cache. `item_blocks` covers the output and the kept input
        // rows; each block writes all of its part of both (`channels_to_rows_item`, `row2im_item`).
        let y = written(g.image_len(), |out| {
            let kept = room(&mut input, self.keep_input, positions * c_in);
            let blocks = item_blocks(g.batch, (block + input_item + image) * 4, out, image, kept, input_item);
            blocks.into_par_iter().for_each_init(Scratch::default, |Scratch { rows, product }, b| {
                let as_rows = |out: &mut [MaybeUninit<f32>]| {
                    for (i, out) in out.chunks_exact_mut(input_item).enumerate() {
                        let item = &x[(b.first + i) * input_item..][..input_item];
                        channels_to_rows_item(item, None, 1.0, out, c_in, grid);
                    }
                };
                let input = kept_or_scratch(b.kept, rows, b.items * input_item, as_rows);
                product.resize(b.items * block, 0.0);
                product_in_thread(product, MatRef::new(input, b.items * grid, c_in), w, false);
                for (out, rows) in b.out.chunks_exact_mut(image).zip(product.chunks_exact(block)) {
                    g.row2im_item(rows, out, Some(bias));
                }
            });
        });
        if self.keep_input {
            // SAFETY: the blocks above wrote every one of the kept input rows' values.
            unsafe { input.set_len(positions * c_in) };
            let _ = self.input.set(input);
        }
        Ok((CpuStorage::F32(y), (g.batch, g.channels, g.height, g.width).into()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        bias: &Tensor,
        _y: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (g, c_in) = (self.geometry, self.c_in);
        let name = self.name();
        let (positions, row_len) = g.rows_shape();
        let (grid, image) = (g.grid_h * g.grid_w, g.item_len());
        let (input_item, block) = (c_in * grid, grid * row_len);
        let (keep_rows, need_x) = (w.track_op(), x.track_op());
        let mut grad_rows = Vec::new();
        // Each block of items on one thread: im2row(∂L/∂Y), kept for the kernel gradient if it takes one, and
        // ∂L/∂x = im2row(∂L/∂Y) · Wᵀ back in (batch, c_in, grid) order while the rows are in cache (if x needs
        // a gradient). Each block writes all of its part of the kept rows (`im2row_item`) and of ∂L/∂x
        // (`rows_to_channels_item`).
        let out_item = if need_x { input_item } else { 0 };
        // Nothing but the bias takes a gradient: no patch rows to make.
        let patch_rows = keep_rows || need_x;
        let (grad_x, grad_bias) = with_values(&grad.contiguous()?, name, |grad| {
            let grad_bias = parameter_grad(bias, |sum| {
                add_to_sum(sum, channel_sums(grad, g.batch, g.channels, g.height * g.width))
            })?;
            let grad_x = with_values(w, name, |w| {
                let w_t = MatRef::new(w, c_in, row_len).t();
                Ok(written(g.batch * out_item, |out| {
                    if !patch_rows {
                        return;
                    }
                    let kept = room(&mut grad_rows, keep_rows, positions * row_len);
                    let blocks = item_blocks(g.batch, (block + out_item + image) * 4, out, out_item, kept, block);
                    blocks.into_par_iter().for_each_init(Scratch::default, |Scratch { rows, product }, b| {
                        let images = &grad[b.first * image..][..b.items * image];
                        let rows = kept_or_scratch(b.kept, rows, b.items * block, |out| g.im2row_items(images, out));
                        if need_x {
                            product.resize(b.items * input_item, 0.0);
                            product_in_thread(product, MatRef::new(rows, b.items * grid, row_len), w_t, false);
                            for (out, product) in
                                b.out.chunks_exact_mut(input_item).zip(product.chunks_exact(input_item))
                            {
                                rows_to_channels_item(product, out, grid, c_in, None, 1.0);
                            }
                        }
                    });
                }))
            })?;
            Ok((grad_x, grad_bias))
        })?;
        // ∂L/∂W = xᵀ · im2row(∂L/∂Y), unless the kernel is frozen.
        let grad_w = if keep_rows {
            // SAFETY: the blocks above wrote every one of the kept rows' values.
            unsafe { grad_rows.set_len(positions * row_len) };
            let input = self.input.get().ok_or_else(|| no_saved(name))?;
            let grad_rows = MatRef::new(&grad_rows, positions, row_len);
            parameter_grad(w, |sum| product_onto(sum, MatRef::new(input, positions, c_in).t(), grad_rows))?
        } else {
            None
        };
        let grad_x = if need_x { Some(Tensor::from_vec(grad_x, x.shape(), x.device())?) } else { None };
        Ok((grad_x, grad_w, grad_bias))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device, Var};

    /// Values and gradients (input, kernel, bias) of a fast convolution against candle's, on odd shapes.
    fn check_convolution(
        transposed: bool,
        x_shape: (usize, usize, usize, usize),
        c_out: usize,
        k: usize,
        p: ConvParams,
    ) {
        let (b, c_in, h, w) = x_shape;
        let n = b * c_in * h * w;
        let values = |n: usize, seed: usize| -> Vec<f32> {
            (0..n).map(|i| (((i * 7919 + seed * 104729) % 1000) as f32 / 500.0 - 1.0) * 0.5).collect()
        };
        let x = Var::from_vec(values(n, 1), (b, c_in, h, w), &Device::Cpu).unwrap();
        let w_shape = if transposed { (c_in, c_out, k, k) } else { (c_out, c_in, k, k) };
        let weight = Var::from_vec(values(c_in * c_out * k * k, 2), w_shape, &Device::Cpu).unwrap();
        let bias = Var::from_vec(values(c_out, 3), c_out, &Device::Cpu).unwrap();
        let ours = if transposed {
            conv_transpose2d(x.as_tensor(), weight.as_tensor(), Some(bias.as_tensor()), p)
        } else {
            conv2d(x.as_tensor(), weight.as_tensor(), Some(bias.as_tensor()), p)
        }
        .unwrap();
        let theirs = if transposed {
            x.as_tensor().conv_transpose2d(weight.as_tensor(), p.padding, 0, p.stride, 1)
        } else {
            x.as_tensor().conv2d(weight.as_tensor(), p.padding, p.stride, 1, 1)
        }
        .unwrap()
        .broadcast_add(&bias.as_tensor().reshape((1, c_out, 1, 1)).unwrap())
        .unwrap();
        assert_eq!(ours.dims(), theirs.dims(), "{x_shape:?} transposed {transposed}");
        let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let close = |a: Vec<f32>, b: Vec<f32>, what: &str| {
            for (i, (a, b)) in a.iter().zip(&b).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-4 * (1.0 + b.abs()),
                    "{what} [{i}]: {a} vs {b} ({x_shape:?}, {transposed})"
                );
            }
        };
        close(flat(&ours), flat(&theirs), "values");
        // A weighted sum makes every output position's gradient different.
        let weights = Tensor::from_vec(values(ours.elem_count(), 4), ours.dims(), &Device::Cpu).unwrap();
        let grads = |y: &Tensor| (y * &weights).unwrap().sum_all().unwrap().backward().unwrap();
        let (g_ours, g_theirs) = (grads(&ours), grads(&theirs));
        for (var, what) in [(&x, "input gradient"), (&weight, "kernel gradient"), (&bias, "bias gradient")] {
            close(flat(g_ours.get(var.as_tensor()).unwrap()), flat(g_theirs.get(var.as_tensor()).unwrap()), what);
        }
        // An input that needs no gradient (the images) gets none; the kernel's is unchanged.
        let images = x.as_tensor().detach();
        let ours = if transposed {
            conv_transpose2d(&images, weight.as_tensor(), Some(bias.as_tensor()), p)
        } else {
            conv2d(&images, weight.as_tensor(), Some(bias.as_tensor()), p)
        }
        .unwrap();
        let store = grads(&ours);
        assert!(store.get(&images).is_none(), "a gradient for a constant input ({x_shape:?}, {transposed})");
        let kernel = weight.as_tensor();
        close(flat(store.get(kernel).unwrap()), flat(g_theirs.get(kernel).unwrap()), "kernel gradient, constant input");
        // A frozen kernel (the forward pass keeps no rows for it) gets none; the input's is unchanged.
        let ours = ssinfogan_core::with_frozen_parameters(|| {
            if transposed {
                conv_transpose2d(x.as_tensor(), weight.as_tensor(), Some(bias.as_tensor()), p)
            } else {
                conv2d(x.as_tensor(), weight.as_tensor(), Some(bias.as_tensor()), p)
            }
        })
        .unwrap();
        close(flat(&ours), flat(&theirs), "values, frozen kernel");
        let store = grads(&ours);
        assert!(store.get(kernel).is_none(), "a gradient for a frozen kernel ({x_shape:?}, {transposed})");
        let input = x.as_tensor();
        close(flat(store.get(input).unwrap()), flat(g_theirs.get(input).unwrap()), "input gradient, frozen kernel");
    }

    #[test]
    fn convolutions_match_candle_in_values_and_gradients() {
        let down = ConvParams { stride: 2, padding: 1 };
        let same = ConvParams { stride: 1, padding: 0 };
        // The networks' shapes (smaller batch), then batch 1, non-square images, channel counts not multiples of 8.
        check_convolution(false, (3, 1, 28, 28), 64, 4, down);
        check_convolution(false, (2, 64, 14, 14), 128, 4, down);
        check_convolution(false, (1, 3, 9, 6), 5, 3, same);
        // (Height and width with different parity under stride 2 are not compared: candle's own conv2d backward
        // takes the output padding of the width from the height and fails on them.)
        check_convolution(false, (2, 5, 8, 10), 3, 4, down);
        // More channels than one block of a layout change and not a multiple of it (20 × 7·7).
        check_convolution(false, (2, 12, 9, 9), 20, 3, same);
        check_convolution(true, (2, 20, 7, 7), 12, 3, same);
        // Kernel sizes with their own copy loops (3, 4, 5) and one without (2).
        check_convolution(false, (2, 3, 11, 11), 4, 5, ConvParams { stride: 2, padding: 2 });
        check_convolution(false, (1, 2, 6, 6), 3, 2, same);
        // The evaluation classifier's "same" 5×5 convolutions (padding 2, stride 1).
        let padded = ConvParams { stride: 1, padding: 2 };
        check_convolution(false, (2, 1, 28, 28), 32, 5, padded);
        check_convolution(false, (2, 32, 14, 14), 64, 5, padded);
        // Items large enough that a thread's block of work holds two of them, so a batch of 3 is two blocks
        // (a small kernel, whose backward pass adds up shares of the kernel gradient per block), and a larger
        // kernel with one item per block.
        check_convolution(false, (3, 32, 20, 20), 6, 3, same);
        check_convolution(false, (3, 32, 40, 40), 80, 4, down);
        check_convolution(true, (3, 128, 7, 7), 64, 4, down);
        check_convolution(true, (2, 64, 14, 14), 1, 4, down);
        check_convolution(true, (1, 3, 5, 4), 7, 3, same);
        check_convolution(true, (2, 5, 3, 6), 3, 4, down);
        check_convolution(true, (2, 3, 4, 4), 2, 5, ConvParams { stride: 2, padding: 2 });
        check_convolution(true, (1, 2, 5, 5), 3, 2, same);
        check_convolution(true, (3, 64, 24, 24), 8, 4, down);
    }

    #[test]
    fn a_convolution_with_its_activation_matches_candle_in_values_and_gradients() {
        let down = ConvParams { stride: 2, padding: 1 };
        for (x_shape, c_out, activation) in [
            ((3, 1, 28, 28), 64, Activation::LeakyRelu(0.01)),
            ((2, 5, 8, 10), 3, Activation::LeakyRelu(0.2)),
            ((1, 3, 9, 9), 7, Activation::Relu),
        ] {
            let (b, c_in, h, w) = x_shape;
            let values = |n: usize, seed: usize| -> Vec<f32> {
                (0..n).map(|i| (((i * 7919 + seed * 104729) % 1000) as f32 / 500.0 - 1.0) * 0.5).collect()
            };
            let x = Var::from_vec(values(b * c_in * h * w, 1), x_shape, &Device::Cpu).unwrap();
            let weight = Var::from_vec(values(c_out * c_in * 16, 2), (c_out, c_in, 4, 4), &Device::Cpu).unwrap();
            let bias = Var::from_vec(values(c_out, 3), c_out, &Device::Cpu).unwrap();
            let ours =
                conv2d_activation(x.as_tensor(), weight.as_tensor(), Some(bias.as_tensor()), down, activation).unwrap();
            let theirs = x
                .as_tensor()
                .conv2d(weight.as_tensor(), 1, 2, 1, 1)
                .unwrap()
                .broadcast_add(&bias.as_tensor().reshape((1, c_out, 1, 1)).unwrap())
                .unwrap();
            let theirs = match activation {
                Activation::LeakyRelu(slope) => candle_nn::ops::leaky_relu(&theirs, slope).unwrap(),
                _ => theirs.relu().unwrap(),
            };
            let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let close = |a: Vec<f32>, b: Vec<f32>, what: &str| {
                assert_eq!(a.len(), b.len(), "{what}");
                for (i, (a, b)) in a.iter().zip(&b).enumerate() {
                    assert!(
                        (a - b).abs() <= 1e-4 * (1.0 + b.abs()),
                        "{what} [{i}] ({x_shape:?}, {activation:?}): {a} vs {b}"
                    );
                }
            };
            close(flat(&ours), flat(&theirs), "values");
            let weights = Tensor::from_vec(values(ours.elem_count(), 4), ours.dims(), &Device::Cpu).unwrap();
            let grads = |y: &Tensor| (y * &weights).unwrap().sum_all().unwrap().backward().unwrap();
            let (g_ours, g_theirs) = (grads(&ours), grads(&theirs));
            for (var, what) in [(&x, "input gradient"), (&weight, "kernel gradient"), (&bias, "bias gradient")] {
                close(flat(g_ours.get(var.as_tensor()).unwrap()), flat(g_theirs.get(var.as_tensor()).unwrap()), what);
            }
        }
    }

    #[test]
    fn other_kernels_go_to_candle_and_impossible_shapes_are_errors() {
        // A non-square kernel goes to candle's op; an input smaller than the kernel is an error, not a panic.
        let x = Tensor::ones((1, 2, 5, 6), DType::F32, &Device::Cpu).unwrap();
        let w = Tensor::ones((3, 2, 3, 2), DType::F32, &Device::Cpu).unwrap();
        let p = ConvParams { stride: 1, padding: 0 };
        let ours = conv2d(&x, &w, None, p).unwrap();
        assert_eq!(ours.dims(), &[1, 3, 3, 5]);
        assert_eq!(ours.flatten_all().unwrap().to_vec1::<f32>().unwrap(), vec![12.0; 45]);
        let big = Tensor::ones((3, 2, 7, 7), DType::F32, &Device::Cpu).unwrap();
        assert!(conv2d(&x, &big, None, p).is_err());
        let tiny = Tensor::ones((1, 2, 1, 1), DType::F32, &Device::Cpu).unwrap();
        let up = conv_transpose2d(&tiny, &Tensor::ones((2, 3, 1, 1), DType::F32, &Device::Cpu).unwrap(), None, p);
        assert_eq!(up.unwrap().dims(), &[1, 3, 1, 1]);
    }
}
