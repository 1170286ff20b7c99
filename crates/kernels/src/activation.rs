//! The activation after a layer, and leaky ReLU as one op each way.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, DType, Layout, Result, Shape, Tensor};

use crate::pass::Ops;
use crate::tensors::contiguous_f32;

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
