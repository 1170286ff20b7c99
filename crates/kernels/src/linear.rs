//! A fully connected layer, `x · Wᵀ + b`, as one autograd node.

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp3, Layout, Module, Result, Shape, Tensor};

use crate::layer_op::{LayerOp, StepOp};
use crate::matmul::{accumulate, product, product_onto, transposed, MatRef};
use crate::pass::{GradientSums, Pass};
use crate::sums::column_sums;
use crate::tensors::{add_to_sum, bias_or_zeros, contiguous_f32, fast_path, parameter, parameter_grad, with_values};

/// `layer` applied to `x` (batch, inputs), as `candle_nn::Linear::forward` computes it; another device or
/// dtype, or [`Ops::Candle`](crate::Ops::Candle), goes to candle's. `x` may also be (batch, …), as a convolution
/// leaves it: it is read as (batch, product of the rest), without a reshape node whose gradient the backward
/// pass would accumulate.
///
/// ```
/// use candle_core::{DType, Device, Tensor};
/// use ssinfogan_kernels::{linear, Ops, Pass};
/// let vars = candle_nn::VarMap::new();
/// let vb = candle_nn::VarBuilder::from_varmap(&vars, DType::F32, &Device::Cpu);
/// let layer = candle_nn::linear(6, 3, vb).unwrap();
/// let x = Tensor::ones((2, 6), DType::F32, &Device::Cpu).unwrap();
/// assert_eq!(linear(&layer, &x, &Pass::training(Ops::Fast)).unwrap().dims(), &[2, 3]);
/// ```
pub fn linear(layer: &candle_nn::Linear, x: &Tensor, pass: &Pass) -> Result<Tensor> {
    match linear_op(layer, x, pass)? {
        Some(op) => op.node(),
        None if x.rank() > 2 && !fast_path(x, layer.weight(), pass) => layer.forward(&x.flatten_from(1)?),
        None => layer.forward(x),
    }
}

/// The op of [`linear`] with its inputs, or `None` where candle's layer computes it.
pub(crate) fn linear_op(layer: &candle_nn::Linear, x: &Tensor, pass: &Pass) -> Result<Option<LayerOp<Linear>>> {
    let weight = layer.weight();
    if !fast_path(x, weight, pass) || x.rank() < 2 || weight.rank() != 2 {
        return Ok(None);
    }
    let (batch, inputs) = (x.dim(0)?, x.dims()[1..].iter().product::<usize>());
    let (outputs, weight_inputs) = weight.dims2()?;
    if weight_inputs != inputs {
        candle_core::bail!("linear: input {:?} for a weight of shape {:?}", x.shape(), weight.shape());
    }
    let bias = bias_or_zeros(layer.bias(), outputs, x, "linear", pass)?;
    let op = Linear { batch, inputs, outputs, input_grad: x.track_op(), sums: pass.sums() };
    Ok(Some(LayerOp::new(x.contiguous()?, parameter(weight, pass).contiguous()?, bias, op)))
}

pub(crate) struct Linear {
    batch: usize,
    inputs: usize,
    outputs: usize,
    /// Whether the backward pass computes the input's gradient.
    input_grad: bool,
    /// Where the backward pass sums the variables' gradients, if the forward pass was asked to.
    sums: Option<Arc<GradientSums>>,
}

impl CustomOp3 for Linear {
    fn name(&self) -> &'static str {
        "linear"
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
        let Linear { batch, inputs, outputs, .. } = *self;
        let (x, w, bias) =
            (contiguous_f32(s1, l1, "linear")?, contiguous_f32(s2, l2, "linear")?, contiguous_f32(s3, l3, "linear")?);
        if x.len() != batch * inputs || w.len() != outputs * inputs || bias.len() != outputs {
            candle_core::bail!("linear: {} inputs, {} weights, {} biases", x.len(), w.len(), bias.len());
        }
        let (x, w) = (MatRef::new(x, batch, inputs), MatRef::new(w, outputs, inputs));
        if outputs <= batch {
            // Every row starts as the bias; the product accumulates onto it.
            let mut y: Vec<f32> = bias.iter().copied().cycle().take(batch * outputs).collect();
            accumulate(&mut y, x, w.t());
            return Ok((CpuStorage::F32(y), (batch, outputs).into()));
        }
        // A weight larger than the batch (the 6272→1024 and 1024→6272 layers: 25 MB beside 3 MB of inputs at batch
        // 128): yᵀ = W · xᵀ, then transposed. Both operands run along the inner dimension, and `gemm` gathers the
        // left-hand one of its product (the weight here, the inputs in y = x · Wᵀ) value by value, across the
        // cache lines of its rows, so this orientation packs the batch's rows instead of the weight's: 1.3–1.6×
        // the product rate on these shapes. Each output is the same sum in the same order (the bias, then the
        // inner dimension's blocks, whose length `gemm` chooses from the inner dimension alone), so y is the same
        // to the bit.
        let mut y_t: Vec<f32> = bias.iter().flat_map(|&b| std::iter::repeat_n(b, batch)).collect();
        accumulate(&mut y_t, w, x.t());
        Ok((CpuStorage::F32(transposed(&y_t, outputs, batch)), (batch, outputs).into()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        bias: &Tensor,
        _y: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let Linear { batch, inputs, outputs, .. } = *self;
        let sums = self.sums.as_deref();
        let grad = grad.contiguous()?;
        let device = w.device();
        with_values(&grad, "linear", |grad_y| {
            let grad_y = MatRef::new(grad_y, batch, outputs);
            // ∂L/∂W = ∂L/∂Yᵀ · x, unless the weight is frozen.
            let grad_w = with_values(x, "linear", |x| {
                parameter_grad(sums, w, |sum| product_onto(sum, grad_y.t(), MatRef::new(x, batch, inputs)))
            })?;
            // ∂L/∂x = ∂L/∂Y · W, only where x needs one. For a layer that narrows (6272→1024), as its batch is
            // narrower still, computed as ∂L/∂xᵀ = Wᵀ · ∂L/∂Yᵀ and transposed: `gemm` runs this orientation at
            // 1.7× the rate at batch 64 (1.07× at 128) on the 6272→1024 layer, and each value is the same sum
            // in the same order (as in the forward pass).
            let grad_x = if self.input_grad {
                let grad_x = with_values(w, "linear", |w| {
                    let w = MatRef::new(w, outputs, inputs);
                    Ok(if batch < outputs && outputs < inputs {
                        transposed(&product(w.t(), grad_y.t()), inputs, batch)
                    } else {
                        product(grad_y, w)
                    })
                })?;
                Some(Tensor::from_vec(grad_x, x.shape(), device)?)
            } else {
                None
            };
            let grad_bias =
                parameter_grad(sums, bias, |sum| add_to_sum(sum, column_sums(grad_y.data(), batch, outputs)))?;
            Ok((grad_x, grad_w, grad_bias))
        })
    }
}

impl StepOp for Linear {
    fn set_input_grad(&mut self, needed: bool) {
        self.input_grad = needed;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device, Var};
    use candle_nn::VarBuilder;

    /// The layer's products in their other orientation give every value to the bit, which is what lets the
    /// layer pick the faster one: the forward pass against `x·Wᵀ` onto the bias, the input gradient against
    /// `∂L/∂Y·W`. Long mantissas of both signs, so that any change in the order of the sums would show; the
    /// networks' widths at the batches where the other orientation is taken, the inner split included.
    #[test]
    fn both_orientations_give_the_same_bits() {
        let values = |n: usize, seed: u64| -> Vec<f32> {
            let mut state = seed;
            (0..n)
                .map(|_| {
                    state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.37
                })
                .collect()
        };
        let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        for (batch, inputs, outputs) in [(64, 6272, 1024), (128, 6272, 1024), (64, 1024, 6272), (3, 37, 20)] {
            let (x, w, bias) = (values(batch * inputs, 1), values(outputs * inputs, 2), values(outputs, 3));
            let op = Linear { batch, inputs, outputs, input_grad: true, sums: None };
            let (CpuStorage::F32(y), _) = op
                .cpu_fwd(
                    &CpuStorage::F32(x.clone()),
                    &Layout::contiguous((batch, inputs)),
                    &CpuStorage::F32(w.clone()),
                    &Layout::contiguous((outputs, inputs)),
                    &CpuStorage::F32(bias.clone()),
                    &Layout::contiguous(outputs),
                )
                .unwrap()
            else {
                panic!("f32 in, f32 out")
            };
            let (x, w) = (MatRef::new(&x, batch, inputs), MatRef::new(&w, outputs, inputs));
            let mut direct: Vec<f32> = bias.iter().copied().cycle().take(batch * outputs).collect();
            accumulate(&mut direct, x, w.t());
            assert_eq!(bits(&y), bits(&direct), "forward ({batch}, {inputs}, {outputs})");
            let grad_y = values(batch * outputs, 4);
            let grad_y = MatRef::new(&grad_y, batch, outputs);
            let flipped = transposed(&product(w.t(), grad_y.t()), inputs, batch);
            assert_eq!(bits(&flipped), bits(&product(grad_y, w)), "input gradient ({batch}, {inputs}, {outputs})");
        }
    }

    #[test]
    fn linear_matches_candle_in_values_and_gradients() {
        // The networks' widths (smaller batch) and odd ones: batch 1, widths not multiples of 8, one output.
        for (batch, inputs, outputs) in [(3, 6272, 1024), (1, 7, 5), (5, 13, 1), (2, 1, 3)] {
            let values = |n: usize, seed: usize| -> Vec<f32> {
                (0..n).map(|i| (((i * 7919 + seed * 104729) % 1000) as f32 / 500.0 - 1.0) * 0.5).collect()
            };
            let vars = candle_nn::VarMap::new();
            let layer =
                candle_nn::linear(inputs, outputs, VarBuilder::from_varmap(&vars, DType::F32, &Device::Cpu)).unwrap();
            let x = Var::from_vec(values(batch * inputs, 1), (batch, inputs), &Device::Cpu).unwrap();
            let pass = Pass::training(crate::pass::Ops::Fast);
            let ours = linear(&layer, x.as_tensor(), &pass).unwrap();
            let theirs = layer.forward(x.as_tensor()).unwrap();
            let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let close = |a: Vec<f32>, b: Vec<f32>, what: &str| {
                assert_eq!(a.len(), b.len(), "{what}");
                for (i, (a, b)) in a.iter().zip(&b).enumerate() {
                    assert!(
                        (a - b).abs() <= 1e-4 * (1.0 + b.abs()),
                        "{what} [{i}] ({batch}, {inputs}, {outputs}): {a} vs {b}"
                    );
                }
            };
            close(flat(&ours), flat(&theirs), "values");
            let weights = Tensor::from_vec(values(batch * outputs, 4), (batch, outputs), &Device::Cpu).unwrap();
            let grads = |y: &Tensor| (y * &weights).unwrap().sum_all().unwrap().backward().unwrap();
            let (g_ours, g_theirs) = (grads(&ours), grads(&theirs));
            let (weight, bias) = (layer.weight(), layer.bias().unwrap());
            for (t, what) in [(x.as_tensor(), "input"), (weight, "weight"), (bias, "bias")] {
                close(flat(g_ours.get(t).unwrap()), flat(g_theirs.get(t).unwrap()), what);
            }
            // A (batch, …) input is read as (batch, product of the rest): the same values and gradients, the
            // input's gradient in the input's shape.
            let image = Var::from_vec(values(batch * inputs, 1), (batch, 1, 1, inputs), &Device::Cpu).unwrap();
            let from_image = linear(&layer, image.as_tensor(), &pass).unwrap();
            close(flat(&from_image), flat(&theirs), "values of a 4-D input");
            let store = (from_image * &weights).unwrap().sum_all().unwrap().backward().unwrap();
            let image_grad = store.get(image.as_tensor()).unwrap();
            assert_eq!(image_grad.dims(), &[batch, 1, 1, inputs]);
            close(flat(image_grad), flat(g_theirs.get(x.as_tensor()).unwrap()), "gradient of a 4-D input");
            // An input that needs no gradient gets none; the layer's parameters still do.
            let constant = x.as_tensor().detach();
            let store =
                (linear(&layer, &constant, &pass).unwrap() * &weights).unwrap().sum_all().unwrap().backward().unwrap();
            assert!(store.get(&constant).is_none());
            close(flat(store.get(weight).unwrap()), flat(g_theirs.get(weight).unwrap()), "weight, constant input");
        }
    }
}
