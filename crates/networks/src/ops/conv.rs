//! Convolution and transposed convolution (square kernel, dilation 1, one group: what the networks use), each
//! one autograd node whose forward and backward passes are matrix products between im2col/col2im shuffles.

use std::ops::Range;
use std::sync::OnceLock;

use candle_core::{CpuStorage, CustomOp3, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::matmul::{product, product_onto, MatRef};
use super::{add_to_sum, contiguous_f32, fast_path, parameter, parameter_grad, with_values, Activation};

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

/// The bias as the op's third input: the layer's, or zeros for a layer without one.
fn bias_or_zeros(bias: Option<&Tensor>, channels: usize, like: &Tensor, op: &str) -> Result<Tensor> {
    match bias {
        Some(bias) if bias.elem_count() == channels && bias.dtype() == DType::F32 => {
            parameter(bias).flatten_all()?.contiguous()
        }
        Some(bias) => candle_core::bail!("{op}: a bias of shape {:?} for {channels} output channels", bias.shape()),
        None => Tensor::zeros(channels, DType::F32, like.device()),
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
        Conv2d { geometry, c_out, negative_slope, cols: OnceLock::new() },
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

    fn cols_shape(&self) -> (usize, usize) {
        (self.channels * self.kernel * self.kernel, self.batch * self.grid_h * self.grid_w)
    }

    /// The grid positions g (of `grid`) whose tap at kernel offset `k` lands inside an image side of `size`:
    /// 0 ≤ g·stride + k − padding < size.
    fn valid(&self, grid: usize, size: usize, k: usize) -> Range<usize> {
        let (stride, padding) = (self.stride, self.padding);
        let start = if k >= padding { 0 } else { (padding - k).div_ceil(stride) };
        let end = if size + padding > k { (size + padding - k).div_ceil(stride).min(grid) } else { 0 };
        start..end.max(start)
    }

    /// Calls `f(image index, column, n)` for every run of kernel tap (c, ky, kx) along one grid row of image `b`:
    /// the `n` columns of its row from `column` on (counted within the row) read the image from `image index`
    /// on, in steps of the stride. Columns over the padding are in no run (they stay zero). The runs come in
    /// grid-row order, so sums over them keep the order of a plain loop.
    #[inline]
    fn for_each_run(&self, (c, ky, kx): (usize, usize, usize), b: usize, mut f: impl FnMut(usize, usize, usize)) {
        let Geometry { channels, height, width, stride, padding, grid_h, grid_w, .. } = *self;
        let xs = self.valid(grid_w, width, kx);
        if xs.is_empty() {
            return;
        }
        for gy in self.valid(grid_h, height, ky) {
            let iy = gy * stride + ky - padding;
            let image = ((b * channels + c) * height + iy) * width + xs.start * stride + kx - padding;
            f(image, (b * grid_h + gy) * grid_w + xs.start, xs.len());
        }
    }

    /// In parallel over the rows of the columns (one kernel tap of one channel each). Every value is written
    /// once, the padding's as zeros, so the matrix is not zero-filled first (tens of megabytes for a layer).
    fn im2col(&self, image: &[f32]) -> Vec<f32> {
        let Geometry { channels, height, width, kernel, stride, padding, grid_h, grid_w, .. } = *self;
        let (rows, columns) = self.cols_shape();
        assert_eq!(image.len(), self.image_len(), "im2col: an image of {} values for {self:?}", image.len());
        let mut cols = Vec::with_capacity(rows * columns);
        if columns > 0 {
            cols.spare_capacity_mut()[..rows * columns].par_chunks_mut(columns).enumerate().for_each(|(row, out)| {
                let (c, ky, kx) = (row / (kernel * kernel), row / kernel % kernel, row % kernel);
                let (xs, ys) = (self.valid(grid_w, width, kx), self.valid(grid_h, height, ky));
                // One segment of grid_w columns per (batch item, grid row).
                for (segment_index, segment) in out.chunks_exact_mut(grid_w).enumerate() {
                    let (b, gy) = (segment_index / grid_h, segment_index % grid_h);
                    if xs.is_empty() || !ys.contains(&gy) {
                        segment.iter_mut().for_each(|v| _ = v.write(0.0));
                        continue;
                    }
                    let iy = gy * stride + ky - padding;
                    let start = ((b * channels + c) * height + iy) * width + xs.start * stride + kx - padding;
                    let taps = &image[start..=start + (xs.len() - 1) * stride];
                    segment[..xs.start].iter_mut().for_each(|v| _ = v.write(0.0));
                    for (v, x) in segment[xs.clone()].iter_mut().zip(taps.iter().step_by(stride)) {
                        v.write(*x);
                    }
                    segment[xs.end..].iter_mut().for_each(|v| _ = v.write(0.0));
                }
            });
        }
        // SAFETY: the loop above wrote each of the rows·columns values: every segment of every row is zeroed
        // or split into [0, xs.start) zeros, xs from `taps` (whose len()-1 steps of the stride end at its last
        // value, so the zip covers all of xs) and [xs.end, grid_w) zeros.
        unsafe { cols.set_len(rows * columns) };
        cols
    }

    /// In parallel over the batch: each image owns a contiguous block of the output (and the sums into one
    /// pixel stay in one thread, in the same order as a serial loop, so the result does not depend on threads).
    fn col2im(&self, cols: &[f32]) -> Vec<f32> {
        let mut image = vec![0f32; self.image_len()];
        let block = self.channels * self.height * self.width;
        if block == 0 {
            return image;
        }
        let (kernel, stride, columns) = (self.kernel, self.stride, self.cols_shape().1);
        image.par_chunks_mut(block).enumerate().for_each(|(b, out)| {
            for row in 0..self.channels * kernel * kernel {
                let tap = (row / (kernel * kernel), row / kernel % kernel, row % kernel);
                let cols = &cols[row * columns..(row + 1) * columns];
                self.for_each_run(tap, b, |i, j, n| {
                    for (out, col) in out[i - b * block..].iter_mut().step_by(stride).zip(&cols[j..j + n]) {
                        *out += *col;
                    }
                });
            }
        });
        image
    }
}

/// `x` (batch, channels, spatial) → (channels, batch·spatial): the layout whose rows a matrix product over the
/// batch reads. In parallel over channels.
fn channel_major(x: &[f32], batch: usize, channels: usize, spatial: usize) -> Vec<f32> {
    let mut out = vec![0f32; x.len()];
    if out.is_empty() {
        return out;
    }
    out.par_chunks_mut(batch * spatial).enumerate().for_each(|(c, out)| {
        for (b, out) in out.chunks_mut(spatial).enumerate() {
            let start = (b * channels + c) * spatial;
            out.copy_from_slice(&x[start..start + spatial]);
        }
    });
    out
}

/// The inverse of [`channel_major`], adding `bias[c]` to channel c and multiplying values ≤ 0 by
/// `negative_slope` (an activation; 1 for none) on the way. In parallel over the batch.
fn batch_major(
    x: &[f32],
    channels: usize,
    batch: usize,
    spatial: usize,
    bias: Option<&[f32]>,
    negative_slope: f32,
) -> Vec<f32> {
    let mut out = vec![0f32; x.len()];
    if out.is_empty() {
        return out;
    }
    out.par_chunks_mut(channels * spatial).enumerate().for_each(|(b, out)| {
        for (c, out) in out.chunks_mut(spatial).enumerate() {
            let start = (c * batch + b) * spatial;
            let shift = bias.map_or(0.0, |bias| bias[c]);
            for (out, x) in out.iter_mut().zip(&x[start..start + spatial]) {
                let v = x + shift;
                *out = if v > 0.0 { v } else { v * negative_slope };
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

/// (x, kernel, bias) → `W · im2col(x) + b`, laid out (batch, c_out, grid_h, grid_w).
struct Conv2d {
    geometry: Geometry,
    c_out: usize,
    /// The activation's factor for values ≤ 0 (1: none).
    negative_slope: f32,
    /// im2col(x), for the kernel gradient.
    cols: OnceLock<Vec<f32>>,
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
        let (rows, columns) = g.cols_shape();
        if x.len() != g.image_len() || w.len() != c_out * rows || bias.len() != c_out {
            candle_core::bail!(
                "conv2d: {} inputs, {} kernel values, {} biases for {g:?}",
                x.len(),
                w.len(),
                bias.len()
            );
        }
        let cols = g.im2col(x);
        let product = product(MatRef::new(w, c_out, rows), MatRef::new(&cols, rows, columns));
        let y = batch_major(&product, c_out, g.batch, g.grid_h * g.grid_w, Some(bias), self.negative_slope);
        let _ = self.cols.set(cols);
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
        let cols = self.cols.get().ok_or_else(|| no_saved("conv2d"))?;
        let (rows, columns) = g.cols_shape();
        let grid = g.grid_h * g.grid_w;
        // The gradient before the activation: its derivative is read off the output, which keeps the sign.
        let grad = match self.negative_slope {
            1.0 => grad.contiguous()?,
            slope => {
                let masked = with_values(&grad.contiguous()?, "conv2d", |grad| {
                    with_values(y, "conv2d", |y| {
                        Ok(grad.iter().zip(y).map(|(g, y)| if *y > 0.0 { *g } else { g * slope }).collect::<Vec<_>>())
                    })
                })?;
                Tensor::from_vec(masked, grad.shape(), grad.device())?
            }
        };
        let (grad_y, grad_bias) = with_values(&grad, "conv2d", |grad| {
            let sums = parameter_grad(bias, |sum| add_to_sum(sum, channel_sums(grad, g.batch, c_out, grid)))?;
            Ok((channel_major(grad, g.batch, c_out, grid), sums))
        })?;
        let grad_y = MatRef::new(&grad_y, c_out, columns);
        // ∂L/∂W = ∂L/∂Y · im2col(x)ᵀ, unless the kernel is frozen.
        let grad_w = parameter_grad(w, |sum| product_onto(sum, grad_y, MatRef::new(cols, rows, columns).t()))?;
        // ∂L/∂x = col2im(Wᵀ · ∂L/∂Y), only where x needs one (not the images).
        let grad_x = if x.track_op() {
            let grad_cols = with_values(w, "conv2d", |w| Ok(product(MatRef::new(w, c_out, rows).t(), grad_y)))?;
            Some(Tensor::from_vec(g.col2im(&grad_cols), x.shape(), x.device())?)
        } else {
            None
        };
        Ok((grad_x, grad_w, grad_bias))
    }
}

/// (x, kernel, bias) → `col2im(Wᵀ · x) + b`, laid out (batch, c_out, height, width).
struct ConvTranspose2d {
    /// The output is the image side; the input is the patch grid.
    geometry: Geometry,
    c_in: usize,
    /// x as (c_in, batch·grid), for the kernel gradient.
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
        let (rows, columns) = g.cols_shape();
        if x.len() != c_in * columns || w.len() != c_in * rows || bias.len() != g.channels {
            candle_core::bail!(
                "{name}: {} inputs, {} kernel values, {} biases for {g:?}",
                x.len(),
                w.len(),
                bias.len()
            );
        }
        let input = channel_major(x, g.batch, c_in, g.grid_h * g.grid_w);
        let cols = product(MatRef::new(w, c_in, rows).t(), MatRef::new(&input, c_in, columns));
        let mut y = g.col2im(&cols);
        let plane = g.height * g.width;
        if plane > 0 {
            y.par_chunks_mut(plane).enumerate().for_each(|(i, plane)| {
                let shift = bias[i % g.channels];
                plane.iter_mut().for_each(|v| *v += shift);
            });
        }
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
        let (rows, columns) = g.cols_shape();
        let (grad_cols, grad_bias) = with_values(&grad.contiguous()?, name, |grad| {
            let spatial = g.height * g.width;
            let sums = parameter_grad(bias, |sum| add_to_sum(sum, channel_sums(grad, g.batch, g.channels, spatial)))?;
            Ok((g.im2col(grad), sums))
        })?;
        let grad_cols = MatRef::new(&grad_cols, rows, columns);
        // ∂L/∂W = x · im2col(∂L/∂Y)ᵀ, unless the kernel is frozen.
        let grad_w = parameter_grad(w, |sum| product_onto(sum, MatRef::new(input, c_in, columns), grad_cols.t()))?;
        // ∂L/∂x = W · im2col(∂L/∂Y), back in (batch, c_in, grid) order.
        let grad_x = if x.track_op() {
            let grad_input = with_values(w, name, |w| Ok(product(MatRef::new(w, c_in, rows), grad_cols)))?;
            let grad_x = batch_major(&grad_input, c_in, g.batch, g.grid_h * g.grid_w, None, 1.0);
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
    use candle_core::{Device, Var};

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
        check_convolution(true, (3, 128, 7, 7), 64, 4, down);
        check_convolution(true, (2, 64, 14, 14), 1, 4, down);
        check_convolution(true, (1, 3, 5, 4), 7, 3, same);
        check_convolution(true, (2, 5, 3, 6), 3, 4, down);
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
