//! CPU kernels for the layers where candle's CPU path is slow, used transparently: on other devices (CUDA) and
//! dtypes, and in a pass that asks for candle's ops ([`Ops::Candle`]), each function is candle's own op.
//!
//! Every layer function takes a [`Pass`]: which implementation runs, BatchNorm's mode, and whether the
//! parameters are constants or have their gradients summed in place ([`Parameters`], [`backward`]).
//!
//! Each layer is one autograd node with a hand-written backward pass. Candle's backward pass accumulates every
//! node's gradient as `zeros + gradient` (a fill and an add over the whole tensor), and a layer built from
//! tensor ops (matmul, transpose, reshape, broadcast bias add) is five to eight nodes, each with that fill and
//! add, and a bias gradient that is a strided reduction.
//!
//! - [`linear`] and the convolutions ([`conv2d`], [`conv_transpose2d`]): the bias is added in the pass that
//!   writes the output, and forward and backward are matrix products through the `gemm` crate (the one candle's
//!   CPU matmul calls) on views that read transposed operands in place (`matmul`). A convolution is
//!   `im2row(x) · Wᵀ` (one row of patch values per output position), a transposed convolution `row2im(x · W)`;
//!   im2row and row2im are each other's adjoint, so each appears in the other's backward pass, and both work one
//!   batch item at a time on a zero-padded copy in cache. The gradient of an input that needs none (the images,
//!   a detached fake) is not computed. In a [`Parameters::Summed`] pass the variables' gradients are summed in
//!   place (`parameter_grad`, [`GradientSums`]) instead of by candle.
//! - [`batch_norm`] in training mode (with the activation after it): statistics, normalisation, scale, shift
//!   and activation in one op, vectorised passes along memory.
//! - [`leaky_relu`]: `candle_nn::ops::leaky_relu` is `max(x, 0) + min(x, 0)·slope`, five tensors forward and two
//!   masked comparisons backward; here one pass each way.

mod batch_norm;
mod conv;
mod linear;
mod matmul;
mod pass;
mod sums;
mod unwritten;

pub use batch_norm::{batch_norm, batch_norm_activation};
pub use conv::{conv2d, conv2d_activation, conv_transpose2d, ConvParams};
pub use linear::linear;
pub use pass::{backward, GradientSums, Gradients, Ops, Parameters, Pass};

use candle_core::{CpuStorage, CustomOp1, CustomOp2, DType, Layout, Result, Shape, Tensor};

/// Whether `pass` runs this crate's kernel for a layer of `weight` on `x`: f32 on the CPU, unless it asks for
/// candle's ops.
fn fast_path(x: &Tensor, weight: &Tensor, pass: &Pass) -> bool {
    pass.ops == Ops::Fast && x.device().is_cpu() && x.dtype() == DType::F32 && weight.dtype() == DType::F32
}

/// The activation after a layer, applied in the layer's own op where it can be.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Activation {
    Identity,
    Relu,
    /// Leaky ReLU with this slope for negative inputs.
    LeakyRelu(f64),
}

impl Activation {
    /// candle's op (or [`leaky_relu`] with `ops`) for the unfused path.
    pub(crate) fn apply(self, x: Tensor, ops: Ops) -> Result<Tensor> {
        match self {
            Self::Identity => Ok(x),
            Self::Relu => x.relu(),
            Self::LeakyRelu(slope) => leaky_relu(&x, slope, ops),
        }
    }

    /// The factor of values ≤ 0 in the fused op (its value and its derivative there). Both activations keep
    /// the sign of their input (with ReLU's 0 for x ≤ 0), so the backward pass reads the derivative off the
    /// output. `None` for a slope ≤ 0, which does not: that activation runs as its own op.
    pub(crate) fn negative_slope(self) -> Option<f32> {
        match self {
            Self::Identity => Some(1.0),
            Self::Relu => Some(0.0),
            Self::LeakyRelu(slope) if slope > 0.0 => Some(slope as f32),
            Self::LeakyRelu(_) => None,
        }
    }
}

/// Leaky ReLU, `x` for x > 0 and `slope·x` otherwise (PyTorch's gradient convention at 0: `slope`); with
/// [`Ops::Candle`], or off the CPU, `candle_nn::ops::leaky_relu`.
pub fn leaky_relu(x: &Tensor, slope: f64, ops: Ops) -> Result<Tensor> {
    if ops == Ops::Fast && x.device().is_cpu() && x.dtype() == DType::F32 {
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

/// Calls `f` with the values of a contiguous f32 CPU tensor (the backward passes read their saved inputs and
/// the incoming gradient this way).
fn with_values<R>(t: &Tensor, op: &str, f: impl FnOnce(&[f32]) -> Result<R>) -> Result<R> {
    let (storage, layout) = t.storage_and_layout();
    f(read_f32(&storage, layout, op)?)
}

/// A layer's parameter as its op's input: a constant (no gradient) in a pass with frozen parameters.
fn parameter(t: &Tensor, pass: &Pass) -> Tensor {
    if pass.parameters_frozen() {
        t.detach()
    } else {
        t.clone()
    }
}

/// The bias as the op's third input: the layer's, or zeros for a layer without one.
fn bias_or_zeros(bias: Option<&Tensor>, channels: usize, like: &Tensor, op: &str, pass: &Pass) -> Result<Tensor> {
    match bias {
        Some(bias) if bias.elem_count() == channels && bias.dtype() == DType::F32 => {
            parameter(bias, pass).flatten_all()?.contiguous()
        }
        Some(bias) => candle_core::bail!("{op}: a bias of shape {:?} for {channels} output channels", bias.shape()),
        None => Tensor::zeros(channels, DType::F32, like.device()),
    }
}

/// A parameter's gradient for candle's backward pass; `None` for a frozen parameter (one that does not track
/// gradients), whose gradient is not computed. With the `sums` of a [`Parameters::Summed`] pass (the op's,
/// captured at its forward pass) and a parameter that is a variable itself, the gradient goes into the
/// variable's running sum there, `compute(None)` writing the first one and `compute(Some(sum))` adding a
/// further one in place, and candle gets `None`. Otherwise candle gets `compute(None)` as a tensor: a parameter
/// that reached the op as another tensor (reshaped, transposed, copied) passes it back to its variable through
/// candle's backward pass.
fn parameter_grad(
    sums: Option<&GradientSums>,
    parameter: &Tensor,
    compute: impl FnOnce(Option<&mut [f32]>) -> Option<Vec<f32>>,
) -> Result<Option<Tensor>> {
    if !parameter.track_op() {
        return Ok(None);
    }
    if let Some(sums) = sums.filter(|_| parameter.is_variable()) {
        sums.add(parameter, compute)?;
        return Ok(None);
    }
    let values =
        compute(None).ok_or_else(|| candle_core::Error::Msg("a parameter gradient was not computed".into()))?;
    Tensor::from_vec(values, parameter.shape(), parameter.device()).map(Some)
}

/// A gradient's `values` for [`parameter_grad`]: added to the running `sum`, or returned as the first one.
fn add_to_sum(sum: Option<&mut [f32]>, values: Vec<f32>) -> Option<Vec<f32>> {
    match sum {
        Some(sum) => {
            // The same parameter's gradient, so the same length: a mismatch is a bug in the op, never truncated.
            assert_eq!(sum.len(), values.len(), "a further gradient of another length than the parameter's first");
            sum.iter_mut().zip(&values).for_each(|(s, v)| *s += v);
            None
        }
        None => Some(values),
    }
}

/// The values of a contiguous f32 CPU tensor's storage (from `Tensor::storage_and_layout`).
fn read_f32<'a>(storage: &'a candle_core::Storage, layout: &Layout, op: &str) -> Result<&'a [f32]> {
    let candle_core::Storage::Cpu(cpu) = storage else { candle_core::bail!("{op}: CPU tensors only") };
    contiguous_f32(cpu, layout, op)
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
            let ours = leaky_relu(x.as_tensor(), 0.01, Ops::Fast).unwrap();
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
}
