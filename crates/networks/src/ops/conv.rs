//! Convolution and transposed convolution (square kernel, dilation 1, one group: what the networks use), each
//! one autograd node whose forward and backward passes are matrix products between im2row/row2im shuffles.

use std::mem::MaybeUninit;
use std::sync::OnceLock;

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::matmul::{column_sums, product, product_onto, MatRef};
use super::{
    add_to_sum, bias_or_zeros, contiguous_f32, fast_path, parameter, parameter_grad, with_values, written, Activation,
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
    // Another device or dtype, or a non-square kernel: candle's op.
    let Some(negative_slope) = activation.negative_slope().filter(|_| fast_path(x, weight) && kernel_w == kernel)
    else {
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
    x.contiguous()?.apply_op3(
        &parameter(weight).contiguous()?,
        &bias,
        Conv2d { geometry, c_out, negative_slope, rows: OnceLock::new() },
    )
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
    if !fast_path(x, weight) || kernel_w != kernel {
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
    let op = ConvTranspose2d { geometry, c_in, input: OnceLock::new() };
    x.contiguous()?.apply_op3(&parameter(weight).contiguous()?, &bias, op)
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
        self.batch * self.channels * self.height * self.width
    }

    /// The image side zero-padded on every edge: (height + 2·padding, width + 2·padding). A patch's rows
    /// lie inside it: (grid − 1)·stride + kernel ≤ size + 2·padding.
    fn padded(&self) -> (usize, usize) {
        (self.height + 2 * self.padding, self.width + 2 * self.padding)
    }

    /// The transpose of im2col, one row per patch position: (batch·grid_h·grid_w) × (channels·kernel²), each
    /// row in the kernel's (c, ky, kx) order. In parallel over the batch: each item's rows are one contiguous
    /// block, copied from a zero-padded copy of its image (tens of kilobytes, in cache), `kernel` values at a
    /// time. (im2col's rows read every item of the batch, one strided run of each.)
    fn im2row(&self, image: &[f32]) -> Vec<f32> {
        let (positions, row_len) = self.rows_shape();
        assert_eq!(image.len(), self.image_len(), "im2row: an image of {} values for {self:?}", image.len());
        let item = self.channels * self.height * self.width;
        let block = self.grid_h * self.grid_w * row_len;
        // Each batch item's block of grid_h·grid_w rows of row_len values is written by `patches`, which writes
        // every run of every row.
        written(positions * row_len, |rows| {
            if block > 0 {
                rows.par_chunks_mut(block).enumerate().for_each(|(b, out)| {
                    let padded = self.pad(&image[b * item..(b + 1) * item]);
                    // A literal kernel size makes each run a fixed-size copy.
                    match self.kernel {
                        3 => self.patches(3, &padded, out),
                        4 => self.patches(4, &padded, out),
                        5 => self.patches(5, &padded, out),
                        kernel => self.patches(kernel, &padded, out),
                    }
                });
            }
        })
    }

    /// The adjoint of [`Geometry::im2row`]: every row's values added back onto the pixels they were copied
    /// from, plus `bias[c]` on channel c if given. In parallel over the batch, each item's sums in one thread
    /// in a fixed order (the result does not depend on the number of threads), into a zero-padded copy in cache
    /// whose inside is the item's image.
    fn row2im(&self, rows: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
        let (positions, row_len) = self.rows_shape();
        assert_eq!(rows.len(), positions * row_len, "row2im: {} values for {self:?}", rows.len());
        let item = self.channels * self.height * self.width;
        let block = self.grid_h * self.grid_w * row_len;
        let (hp, wp) = self.padded();
        let mut image = vec![0f32; self.image_len()];
        if item == 0 {
            return image;
        }
        image.par_chunks_mut(item).enumerate().for_each(|(b, out)| {
            let mut padded = vec![0f32; self.channels * hp * wp];
            let rows = &rows[b * block..(b + 1) * block];
            match self.kernel {
                3 => self.add_patches(3, rows, &mut padded),
                4 => self.add_patches(4, rows, &mut padded),
                5 => self.add_patches(5, rows, &mut padded),
                kernel => self.add_patches(kernel, rows, &mut padded),
            }
            let (height, width) = (self.height, self.width);
            for (i, line) in out.chunks_exact_mut(width).enumerate() {
                let (c, y) = (i / height, i % height);
                let (inside, shift) = (&padded[self.inside_start(c, y)..][..width], bias.map_or(0.0, |b| b[c]));
                line.iter_mut().zip(inside).for_each(|(out, v)| *out = v + shift);
            }
        });
        image
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

/// (batch·spatial) × channels rows (what a product with [`Geometry::im2row`]'s rows gives) → (batch, channels,
/// spatial), adding `bias[c]` (if given) to channel c and multiplying values ≤ 0 by `negative_slope` (an
/// activation; 1 for none) on the way. In parallel over the batch, each item a transpose of a block in cache.
fn rows_to_channels(
    x: &[f32],
    batch: usize,
    spatial: usize,
    channels: usize,
    bias: Option<&[f32]>,
    negative_slope: f32,
) -> Vec<f32> {
    let item = spatial * channels;
    assert_eq!(x.len(), batch * item, "{} values as {batch} items of {spatial}×{channels}", x.len());
    // Every item's channels·spatial values are written (each channel's run zips `spatial` values of x, one
    // every `channels` from c).
    written(x.len(), |out| {
        if item > 0 {
            out.par_chunks_mut(item).enumerate().for_each(|(b, out)| {
                let x = &x[b * item..(b + 1) * item];
                for (c, out) in out.chunks_exact_mut(spatial).enumerate() {
                    let shift = bias.map_or(0.0, |bias| bias[c]);
                    for (out, x) in out.iter_mut().zip(x[c..].iter().step_by(channels)) {
                        let v = x + shift;
                        out.write(if v > 0.0 { v } else { v * negative_slope });
                    }
                }
            });
        }
    })
}

/// The inverse of [`rows_to_channels`] for a gradient: (batch, channels, spatial) → (batch·spatial) × channels,
/// with values multiplied by `negative_slope` where `output` (the activation's output, whose sign its input's
/// is) is ≤ 0 (`output` `None`: no activation). In parallel over the batch.
fn channels_to_rows(
    grad: &[f32],
    output: Option<&[f32]>,
    negative_slope: f32,
    batch: usize,
    channels: usize,
    spatial: usize,
) -> Vec<f32> {
    let item = spatial * channels;
    let mut out = vec![0f32; grad.len()];
    if item == 0 || batch == 0 {
        return out;
    }
    out.par_chunks_mut(item).enumerate().for_each(|(b, out)| {
        let grad = &grad[b * item..(b + 1) * item];
        for (c, grad) in grad.chunks_exact(spatial).enumerate() {
            let targets = out[c..].iter_mut().step_by(channels);
            match output {
                Some(y) => {
                    let y = &y[b * item + c * spatial..][..spatial];
                    for ((out, g), y) in targets.zip(grad).zip(y) {
                        *out = if *y > 0.0 { *g } else { g * negative_slope };
                    }
                }
                None => targets.zip(grad).for_each(|(out, g)| *out = *g),
            }
        }
    });
    out
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
struct Conv2d {
    geometry: Geometry,
    c_out: usize,
    /// The activation's factor for values ≤ 0 (1: none).
    negative_slope: f32,
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
        let rows = g.im2row(x);
        let product = product(MatRef::new(&rows, positions, row_len), MatRef::new(w, c_out, row_len).t());
        let y = rows_to_channels(&product, g.batch, g.grid_h * g.grid_w, c_out, Some(bias), self.negative_slope);
        let _ = self.rows.set(rows);
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
        let rows = self.rows.get().ok_or_else(|| no_saved("conv2d"))?;
        let (positions, row_len) = g.rows_shape();
        let grid = g.grid_h * g.grid_w;
        // ∂L/∂Y as rows (batch·grid) × c_out, before the activation: its derivative read off the output, which
        // keeps the sign.
        let slope = self.negative_slope;
        let grad_y = with_values(&grad.contiguous()?, "conv2d", |grad| match slope {
            1.0 => Ok(channels_to_rows(grad, None, 1.0, g.batch, c_out, grid)),
            _ => with_values(y, "conv2d", |y| Ok(channels_to_rows(grad, Some(y), slope, g.batch, c_out, grid))),
        })?;
        let grad_bias = parameter_grad(bias, |sum| add_to_sum(sum, column_sums(&grad_y, positions, c_out)))?;
        let grad_y = MatRef::new(&grad_y, positions, c_out);
        // ∂L/∂W = ∂L/∂Yᵀ · im2row(x), unless the kernel is frozen.
        let grad_w = parameter_grad(w, |sum| product_onto(sum, grad_y.t(), MatRef::new(rows, positions, row_len)))?;
        // ∂L/∂x = row2im(∂L/∂Y · W), only where x needs one (not the images).
        let grad_x = if x.track_op() {
            let grad_rows = with_values(w, "conv2d", |w| Ok(product(grad_y, MatRef::new(w, c_out, row_len))))?;
            Some(Tensor::from_vec(g.row2im(&grad_rows, None), x.shape(), x.device())?)
        } else {
            None
        };
        Ok((grad_x, grad_w, grad_bias))
    }
}

/// (x, kernel, bias) → `row2im(x · W) + b`, laid out (batch, c_out, height, width): x as rows (batch·grid) ×
/// c_in, each row's product with the kernel (c_in × c_out·k²) one patch of the output.
struct ConvTranspose2d {
    /// The output is the image side; the input is the patch grid.
    geometry: Geometry,
    c_in: usize,
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
        let input = channels_to_rows(x, None, 1.0, g.batch, c_in, g.grid_h * g.grid_w);
        let rows = product(MatRef::new(&input, positions, c_in), MatRef::new(w, c_in, row_len));
        let y = g.row2im(&rows, Some(bias));
        let _ = self.input.set(input);
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
        let input = self.input.get().ok_or_else(|| no_saved(name))?;
        let (positions, row_len) = g.rows_shape();
        let (grad_rows, grad_bias) = with_values(&grad.contiguous()?, name, |grad| {
            let spatial = g.height * g.width;
            let sums = parameter_grad(bias, |sum| add_to_sum(sum, channel_sums(grad, g.batch, g.channels, spatial)))?;
            Ok((g.im2row(grad), sums))
        })?;
        let grad_rows = MatRef::new(&grad_rows, positions, row_len);
        // ∂L/∂W = xᵀ · im2row(∂L/∂Y), unless the kernel is frozen.
        let grad_w = parameter_grad(w, |sum| product_onto(sum, MatRef::new(input, positions, c_in).t(), grad_rows))?;
        // ∂L/∂x = im2row(∂L/∂Y) · Wᵀ, back in (batch, c_in, grid) order.
        let grad_x = if x.track_op() {
            let grad_input = with_values(w, name, |w| Ok(product(grad_rows, MatRef::new(w, c_in, row_len).t())))?;
            let grad_x = rows_to_channels(&grad_input, g.batch, g.grid_h * g.grid_w, c_in, None, 1.0);
            Some(Tensor::from_vec(grad_x, x.shape(), x.device())?)
        } else {
            None
        };
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
        // Kernel sizes with their own copy loops (3, 4, 5) and one without (2).
        check_convolution(false, (2, 3, 11, 11), 4, 5, ConvParams { stride: 2, padding: 2 });
        check_convolution(false, (1, 2, 6, 6), 3, 2, same);
        check_convolution(true, (3, 128, 7, 7), 64, 4, down);
        check_convolution(true, (2, 64, 14, 14), 1, 4, down);
        check_convolution(true, (1, 3, 5, 4), 7, 3, same);
        check_convolution(true, (2, 5, 3, 6), 3, 4, down);
        check_convolution(true, (2, 3, 4, 4), 2, 5, ConvParams { stride: 2, padding: 2 });
        check_convolution(true, (1, 2, 5, 5), 3, 2, same);
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
