//! CPU kernels for the ops where candle's CPU path is slow, used transparently: on other devices (CUDA) and
//! dtypes each function is candle's own op.
//!
//! - `candle_nn::ops::leaky_relu` is `max(x, 0) + min(x, 0)·slope`: five tensors forward and two masked
//!   comparisons backward. The discriminator applies it to every activation of the real and the fake batch, so
//!   it cost more than the convolution it follows. Here it is one pass forward and one pass backward.
//! - Convolutions: candle's CPU transposed convolution is a direct loop, and both convolutions' backward passes
//!   go through it or through a convolution whose "kernel" is the whole gradient image. Here a convolution is
//!   `W · im2col(x)` and a transposed convolution `col2im(Wᵀ · x)`: one large matrix product each (candle's
//!   matmul, the `gemm` crate, multi-threaded) between two index shuffles. [`Im2Col`] and [`Col2Im`] are each
//!   other's adjoint, so each is the other's backward pass, and candle's autodiff differentiates the products:
//!   every gradient is a matrix product too.

use std::ops::Range;
use std::sync::{Arc, OnceLock};

use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;
use ssinfogan_core::cpu_fast_paths;

/// Stride and padding of a square-kernel convolution (dilation 1, one group: what the networks use).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvParams {
    pub stride: usize,
    pub padding: usize,
}

fn fast_path(x: &Tensor, weight: &Tensor) -> bool {
    x.device().is_cpu() && x.dtype() == DType::F32 && weight.dtype() == DType::F32 && cpu_fast_paths()
}

fn add_bias(y: Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    match bias {
        Some(bias) => y.broadcast_add(&bias.reshape((1, bias.elem_count(), 1, 1))?),
        None => Ok(y),
    }
}

/// 2-D convolution of `x` (batch, c_in, h, w) with `weight` (c_out, c_in, k, k) and an optional `bias` (c_out),
/// as `candle_nn::Conv2d` computes it.
pub fn conv2d(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>, params: ConvParams) -> Result<Tensor> {
    let ConvParams { stride, padding } = params;
    let (Ok(x_dims), Ok(w_dims)) = (x.dims4(), weight.dims4()) else {
        candle_core::bail!("conv2d: input {:?} and kernel {:?} must be 4-D", x.shape(), weight.shape());
    };
    let ((_, c_in, height, width), (_, k_in, kernel, kernel_w)) = (x_dims, w_dims);
    if k_in != c_in || stride == 0 || height.min(width) + 2 * padding < kernel.max(kernel_w) {
        candle_core::bail!("conv2d: input {:?} does not fit kernel {:?} ({params:?})", x.shape(), weight.shape());
    }
    // Another device or dtype, or a non-square kernel: candle's op.
    if !fast_path(x, weight) || kernel_w != kernel {
        return add_bias(x.conv2d(weight, padding, stride, 1, 1)?, bias);
    }
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
    let cols = x.contiguous()?.apply_op1(Im2Col(geometry))?; // (c_in·k·k, batch·grid)
    let y = weight.reshape((c_out, c_in * kernel * kernel))?.matmul(&cols)?; // (c_out, batch·grid)
    let y = y.reshape((c_out, batch, geometry.grid_h, geometry.grid_w))?.transpose(0, 1)?;
    add_bias(y, bias)
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
    let x = x.transpose(0, 1)?.reshape((c_in, batch * height * width))?; // (c_in, batch·grid)
    let cols = weight.reshape((c_in, c_out * kernel * kernel))?.t()?.matmul(&x)?; // (c_out·k·k, batch·grid)
    add_bias(cols.contiguous()?.apply_op1(Col2Im(geometry))?, bias)
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

    /// Calls `f(image index, column index)` for every patch element of the `channels` × `batches` block that
    /// falls inside the image; column entries over the padding are zero and visited by no one.
    #[inline]
    fn for_each(&self, channels: Range<usize>, batches: Range<usize>, mut f: impl FnMut(usize, usize)) {
        let Geometry { batch, channels: n_channels, height, width, kernel, stride, padding, grid_h, grid_w } = *self;
        let columns = batch * grid_h * grid_w;
        for c in channels {
            for ky in 0..kernel {
                for kx in 0..kernel {
                    let row = ((c * kernel + ky) * kernel + kx) * columns;
                    for b in batches.clone() {
                        let image = (b * n_channels + c) * height * width;
                        for gy in 0..grid_h {
                            let Some(iy) = (gy * stride + ky).checked_sub(padding).filter(|&y| y < height) else {
                                continue;
                            };
                            let col = row + (b * grid_h + gy) * grid_w;
                            for gx in 0..grid_w {
                                if let Some(ix) = (gx * stride + kx).checked_sub(padding).filter(|&x| x < width) {
                                    f(image + iy * width + ix, col + gx);
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// In parallel over channels: each channel owns a contiguous band of k·k rows of the columns.
    fn im2col(&self, image: &[f32]) -> Vec<f32> {
        let (rows, columns) = self.cols_shape();
        let mut cols = vec![0f32; rows * columns];
        let band = self.kernel * self.kernel * columns;
        if band == 0 {
            return cols; // an empty batch or kernel: nothing to copy (and rayon refuses chunks of 0)
        }
        cols.par_chunks_mut(band).enumerate().for_each(|(c, out)| {
            let offset = c * band;
            self.for_each(c..c + 1, 0..self.batch, |i, j| out[j - offset] = image[i]);
        });
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
        image.par_chunks_mut(block).enumerate().for_each(|(b, out)| {
            let offset = b * block;
            self.for_each(0..self.channels, b..b + 1, |i, j| out[i - offset] += cols[j]);
        });
        image
    }
}

/// Image (batch, channels, height, width) → columns (channels·k·k, batch·grid_h·grid_w).
struct Im2Col(Geometry);

impl CustomOp1 for Im2Col {
    fn name(&self) -> &'static str {
        "im2col"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let image = contiguous_f32(storage, layout, self.name())?;
        if image.len() != self.0.image_len() {
            candle_core::bail!("im2col: {} values for {:?}", image.len(), self.0);
        }
        Ok((CpuStorage::F32(self.0.im2col(image)), self.0.cols_shape().into()))
    }

    fn bwd(&self, _image: &Tensor, _cols: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(grad.contiguous()?.apply_op1_no_bwd(&Col2Im(self.0))?))
    }
}

/// Columns (channels·k·k, batch·grid_h·grid_w) → image (batch, channels, height, width), overlaps summed.
struct Col2Im(Geometry);

impl CustomOp1 for Col2Im {
    fn name(&self) -> &'static str {
        "col2im"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let cols = contiguous_f32(storage, layout, self.name())?;
        let (rows, columns) = self.0.cols_shape();
        if cols.len() != rows * columns {
            candle_core::bail!("col2im: {} values for {:?}", cols.len(), self.0);
        }
        let g = self.0;
        Ok((CpuStorage::F32(g.col2im(cols)), (g.batch, g.channels, g.height, g.width).into()))
    }

    fn bwd(&self, _cols: &Tensor, _image: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(grad.contiguous()?.apply_op1_no_bwd(&Im2Col(self.0))?))
    }
}

/// BatchNorm of `x` (batch, channels, …) through candle's module `bn`: in training mode on the CPU, one op
/// that normalises with the batch statistics and applies the scale and shift in two passes (candle's takes about
/// ten tensor ops), with a backward pass of three (statistics, the two per-channel sums, the input gradient);
/// the running statistics are updated as candle updates them (momentum, unbiased variance). Otherwise, and
/// without an affine part, candle's own.
pub fn batch_norm(bn: &candle_nn::BatchNorm, x: &Tensor, train: bool) -> Result<Tensor> {
    use candle_core::ModuleT;
    let Some((weight, bias)) = bn.weight_and_bias() else { return bn.forward_t(x, train) };
    if !train || !fast_path(x, weight) || x.rank() < 2 || x.dim(1)? != weight.elem_count() {
        return bn.forward_t(x, train);
    }
    let saved = Arc::new(OnceLock::new());
    let op = BatchNormTrain { eps: bn.eps(), saved: saved.clone() };
    let y = x.contiguous()?.apply_op3(weight, bias, op)?;
    let stats: &Statistics = saved.get().ok_or_else(|| candle_core::Error::Msg("batch norm: no statistics".into()))?;
    let momentum = bn.momentum() as f32;
    let count = stats.count as f32;
    let update = |running: &Tensor, batch: &[f32], unbias: f32| -> Result<()> {
        let old: Vec<f32> = running.to_vec1()?;
        let new: Vec<f32> = old.iter().zip(batch).map(|(r, b)| (1.0 - momentum) * r + momentum * unbias * b).collect();
        candle_core::Var::from_tensor(running)?.set(&Tensor::from_vec(new, old.len(), running.device())?)
    };
    update(bn.running_mean(), &stats.mean, 1.0)?;
    update(bn.running_var(), &stats.var, count / (count - 1.0))?;
    Ok(y)
}

/// Per-channel batch statistics of one forward pass: mean and biased variance over `count` values each.
struct Statistics {
    mean: Vec<f32>,
    var: Vec<f32>,
    count: usize,
}

/// The (batch, channels, spatial) view of a contiguous NC… layout.
fn channel_view(layout: &Layout) -> (usize, usize, usize) {
    let dims = layout.shape().dims();
    (dims[0], dims[1], dims[2..].iter().product())
}

/// Mean and biased variance of every channel of `x` (batch, channels, spatial), two passes per channel (the
/// variance around the mean, as candle computes it), in parallel over channels.
fn channel_statistics(x: &[f32], (n, c, s): (usize, usize, usize)) -> Statistics {
    let count = n * s;
    let (mean, var): (Vec<f32>, Vec<f32>) = (0..c)
        .into_par_iter()
        .map(|ch| {
            let values = || (0..n).flat_map(move |b| &x[(b * c + ch) * s..(b * c + ch + 1) * s]);
            let mean = values().map(|&v| f64::from(v)).sum::<f64>() / count as f64;
            let var = values().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / count as f64;
            (mean as f32, var as f32)
        })
        .unzip();
    Statistics { mean, var, count }
}

/// Training-mode BatchNorm: (x, scale, shift) → scale·(x − mean)/√(var + eps) + shift.
struct BatchNormTrain {
    eps: f64,
    /// The statistics of the forward pass, for the running averages and the backward pass.
    saved: Arc<OnceLock<Statistics>>,
}

impl CustomOp3 for BatchNormTrain {
    fn name(&self) -> &'static str {
        "batch-norm-train"
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
        let x = contiguous_f32(s1, l1, self.name())?;
        let (weight, bias) = (contiguous_f32(s2, l2, self.name())?, contiguous_f32(s3, l3, self.name())?);
        let (n, c, s) = channel_view(l1);
        let stats = channel_statistics(x, (n, c, s));
        let scale: Vec<f32> =
            stats.var.iter().zip(weight).map(|(v, w)| w / (f64::from(*v) + self.eps).sqrt() as f32).collect();
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(c * s).zip(x.par_chunks(c * s)).for_each(|(y, x)| {
            for ch in 0..c {
                let (mean, scale, shift) = (stats.mean[ch], scale[ch], bias[ch]);
                for (y, x) in y[ch * s..(ch + 1) * s].iter_mut().zip(&x[ch * s..(ch + 1) * s]) {
                    *y = (x - mean) * scale + shift;
                }
            }
        });
        let _ = self.saved.set(stats);
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        weight: &Tensor,
        _bias: &Tensor,
        _y: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let stats = self.saved.get().ok_or_else(|| candle_core::Error::Msg("batch norm: no statistics".into()))?;
        let op = BatchNormGrad { eps: self.eps, stats, sums: OnceLock::new() };
        let grad_x = x.contiguous()?.apply_op3_no_bwd(&grad.contiguous()?, weight, &op)?;
        let (grad_scale, grad_shift): &(Vec<f32>, Vec<f32>) =
            op.sums.get().ok_or_else(|| candle_core::Error::Msg("batch norm: no gradient sums".into()))?;
        let channels = grad_scale.len();
        Ok((
            Some(grad_x),
            Some(Tensor::from_vec(grad_scale.clone(), channels, weight.device())?),
            Some(Tensor::from_vec(grad_shift.clone(), channels, weight.device())?),
        ))
    }
}

/// (x, ∂L/∂y, scale) → ∂L/∂x = scale·istd/M · (M·∂L/∂y − Σ∂L/∂y − x̂·Σ∂L/∂y·x̂), and the two sums, which are
/// the gradients of the shift and the scale, kept in `sums`.
struct BatchNormGrad<'a> {
    eps: f64,
    /// The forward pass's mean and variance.
    stats: &'a Statistics,
    sums: OnceLock<(Vec<f32>, Vec<f32>)>,
}

impl CustomOp3 for BatchNormGrad<'_> {
    fn name(&self) -> &'static str {
        "batch-norm-grad"
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
        let (x, grad) = (contiguous_f32(s1, l1, self.name())?, contiguous_f32(s2, l2, self.name())?);
        let weight = contiguous_f32(s3, l3, self.name())?;
        if grad.len() != x.len() {
            candle_core::bail!("{}: {} gradients for {} inputs", self.name(), grad.len(), x.len());
        }
        let (n, c, s) = channel_view(l1);
        let istd: Vec<f64> = self.stats.var.iter().map(|v| 1.0 / (f64::from(*v) + self.eps).sqrt()).collect();
        // Σ∂L/∂y·x̂ (the scale's gradient) and Σ∂L/∂y (the shift's), per channel.
        let (grad_scale, grad_shift): (Vec<f32>, Vec<f32>) = (0..c)
            .into_par_iter()
            .map(|ch| {
                let (mean, istd) = (f64::from(self.stats.mean[ch]), istd[ch]);
                let (mut dot, mut sum) = (0f64, 0f64);
                for b in 0..n {
                    let block = (b * c + ch) * s..(b * c + ch + 1) * s;
                    for (x, g) in x[block.clone()].iter().zip(&grad[block]) {
                        dot += f64::from(*g) * (f64::from(*x) - mean) * istd;
                        sum += f64::from(*g);
                    }
                }
                (dot as f32, sum as f32)
            })
            .unzip();
        let count = (n * s) as f64;
        let mut grad_x = vec![0f32; x.len()];
        grad_x.par_chunks_mut(c * s).enumerate().for_each(|(b, out)| {
            for ch in 0..c {
                let (mean, istd) = (f64::from(self.stats.mean[ch]), istd[ch]);
                let factor = f64::from(weight[ch]) * istd / count;
                let (dot, sum) = (f64::from(grad_scale[ch]), f64::from(grad_shift[ch]));
                let block = (b * c + ch) * s..(b * c + ch + 1) * s;
                for ((out, x), g) in out[ch * s..(ch + 1) * s].iter_mut().zip(&x[block.clone()]).zip(&grad[block]) {
                    let normalised = (f64::from(*x) - mean) * istd;
                    *out = (factor * (count * f64::from(*g) - sum - normalised * dot)) as f32;
                }
            }
        });
        let _ = self.sums.set((grad_scale, grad_shift));
        Ok((CpuStorage::F32(grad_x), l1.shape().clone()))
    }
}

/// Leaky ReLU, `x` for x > 0 and `slope·x` otherwise (PyTorch's gradient convention at 0: `slope`).
pub fn leaky_relu(x: &Tensor, slope: f64) -> Result<Tensor> {
    if x.device().is_cpu() && x.dtype() == DType::F32 && cpu_fast_paths() {
        x.contiguous()?.apply_op1(LeakyRelu { slope: slope as f32 })
    } else {
        candle_nn::ops::leaky_relu(x, slope)
    }
}

fn contiguous_f32<'a>(storage: &'a CpuStorage, layout: &Layout, op: &str) -> Result<&'a [f32]> {
    let CpuStorage::F32(data) = storage else { candle_core::bail!("{op}: f32 only") };
    let Some((start, end)) = layout.contiguous_offsets() else { candle_core::bail!("{op}: contiguous input only") };
    Ok(&data[start..end])
}

struct LeakyRelu {
    slope: f32,
}

impl CustomOp1 for LeakyRelu {
    fn name(&self) -> &'static str {
        "leaky-relu"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous_f32(storage, layout, self.name())?;
        let slope = self.slope;
        let y: Vec<f32> = x.iter().map(|&x| if x > 0.0 { x } else { x * slope }).collect();
        Ok((CpuStorage::F32(y), layout.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _y: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(grad.contiguous()?.apply_op2_no_bwd(x, &LeakyReluGrad { slope: self.slope })?))
    }
}

/// `grad · (1 if x > 0 else slope)`: the backward pass of [`LeakyRelu`] without a mask tensor.
struct LeakyReluGrad {
    slope: f32,
}

impl CustomOp2 for LeakyReluGrad {
    fn name(&self) -> &'static str {
        "leaky-relu-grad"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (grad, x) = (contiguous_f32(s1, l1, self.name())?, contiguous_f32(s2, l2, self.name())?);
        if grad.len() != x.len() {
            candle_core::bail!("{}: {} gradients for {} inputs", self.name(), grad.len(), x.len());
        }
        let slope = self.slope;
        let dx: Vec<f32> = grad.iter().zip(x).map(|(&g, &x)| if x > 0.0 { g } else { g * slope }).collect();
        Ok((CpuStorage::F32(dx), l1.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn leaky_relu_matches_candle_in_values_and_gradients() {
        // Odd shapes: batch 1, non-square, channel counts that are not multiples of 8; no exact zeros (where
        // the two ops' subgradients may differ by convention).
        for shape in [vec![1, 3, 5, 7], vec![2, 13], vec![3, 1, 1, 1]] {
            let n: usize = shape.iter().product();
            let values: Vec<f32> = (0..n).map(|i| ((i * 29 % 23) as f32 - 11.5) / 3.0).collect();
            let x = Var::from_vec(values, shape.as_slice(), &Device::Cpu).unwrap();
            let weights = Tensor::arange(0f32, n as f32, &Device::Cpu).unwrap().reshape(shape.as_slice()).unwrap();
            let ours = leaky_relu(x.as_tensor(), 0.01).unwrap();
            let theirs = candle_nn::ops::leaky_relu(x.as_tensor(), 0.01).unwrap();
            let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert_eq!(flat(&ours), flat(&theirs), "values, shape {shape:?}");
            let grad = |y: &Tensor| {
                let loss = (y * &weights).unwrap().sum_all().unwrap();
                flat(loss.backward().unwrap().get(x.as_tensor()).unwrap())
            };
            assert_eq!(grad(&ours), grad(&theirs), "gradients, shape {shape:?}");
        }
    }

    #[test]
    fn batch_norm_matches_candle_in_values_running_statistics_and_gradients() {
        use candle_core::{DType, ModuleT};
        use candle_nn::{VarBuilder, VarMap};
        // 1-D (the generator's FC layers) and 2-D BatchNorm; a batch of 1 with one spatial value per channel has
        // no variance and is left out, as it is for candle.
        for shape in [vec![5, 7], vec![3, 4, 5, 5], vec![1, 3, 2, 3], vec![2, 9, 1, 1]] {
            let channels = shape[1];
            let n: usize = shape.iter().product();
            let build = || {
                let vars = VarMap::new();
                let config = candle_nn::BatchNormConfig { eps: 1e-5, remove_mean: true, affine: true, momentum: 0.1 };
                let bn =
                    candle_nn::batch_norm(channels, config, VarBuilder::from_varmap(&vars, DType::F32, &Device::Cpu))
                        .unwrap();
                for (name, var) in vars.data().lock().unwrap().iter() {
                    let values: Vec<f32> = (0..channels)
                        .map(|i| match name.as_str() {
                            "weight" => 1.0 + 0.1 * i as f32,
                            "bias" => 0.05 * i as f32 - 0.2,
                            "running_mean" => 0.01 * i as f32,
                            _ => 1.0 + 0.02 * i as f32,
                        })
                        .collect();
                    var.set(&Tensor::from_vec(values, channels, &Device::Cpu).unwrap()).unwrap();
                }
                (vars, bn)
            };
            let (ours_vars, ours_bn) = build();
            let (theirs_vars, theirs_bn) = build();
            let values: Vec<f32> = (0..n).map(|i| ((i * 37 % 29) as f32 - 14.0) / 4.0 + (i % 3) as f32).collect();
            let x = Var::from_vec(values, shape.as_slice(), &Device::Cpu).unwrap();
            let weights: Vec<f32> = (0..n).map(|i| ((i * 13 % 17) as f32 - 8.0) / 5.0).collect();
            let weights = Tensor::from_vec(weights, shape.as_slice(), &Device::Cpu).unwrap();
            let ours = batch_norm(&ours_bn, x.as_tensor(), true).unwrap();
            let theirs = theirs_bn.forward_t(x.as_tensor(), true).unwrap();
            let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let close = |a: Vec<f32>, b: Vec<f32>, what: &str| {
                assert_eq!(a.len(), b.len());
                for (i, (a, b)) in a.iter().zip(&b).enumerate() {
                    assert!((a - b).abs() <= 1e-4 * (1.0 + b.abs()), "{what} [{i}], shape {shape:?}: {a} vs {b}");
                }
            };
            close(flat(&ours), flat(&theirs), "values");
            close(flat(ours_bn.running_mean()), flat(theirs_bn.running_mean()), "running mean");
            close(flat(ours_bn.running_var()), flat(theirs_bn.running_var()), "running variance");
            let grads = |y: &Tensor, vars: &VarMap| {
                let store = (y * &weights).unwrap().sum_all().unwrap().backward().unwrap();
                let data = vars.data().lock().unwrap();
                [
                    flat(store.get(x.as_tensor()).unwrap()),
                    flat(store.get(data["weight"].as_tensor()).unwrap()),
                    flat(store.get(data["bias"].as_tensor()).unwrap()),
                ]
            };
            let (ours_grads, theirs_grads) = (grads(&ours, &ours_vars), grads(&theirs, &theirs_vars));
            for ((a, b), what) in ours_grads.into_iter().zip(theirs_grads).zip(["input", "scale", "shift"]) {
                close(a, b, &format!("{what} gradient"));
            }
            // Inference mode is candle's own: the running statistics.
            close(
                flat(&batch_norm(&ours_bn, x.as_tensor(), false).unwrap()),
                flat(&theirs_bn.forward_t(x.as_tensor(), false).unwrap()),
                "inference",
            );
        }
    }

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
