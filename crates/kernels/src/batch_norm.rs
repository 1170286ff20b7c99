//! BatchNorm in training mode, with the activation that follows it, as one CPU op forward and one backward
//! (candle's BatchNorm takes about ten tensor ops, and each activation is one more node).

use std::mem::MaybeUninit;
use std::sync::{Arc, OnceLock};

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use crate::activation::Activation;
use crate::layer_op::{LayerOp, StepOp};
use crate::pass::{GradientSums, Pass};
use crate::sums::{channel_sums, Dims, Order};
use crate::tensors::{add_to_sum, contiguous_f32, fast_path, parameter, parameter_grad, read_f32};
use crate::unwritten::Unwritten;

/// BatchNorm of `x` (batch, channels, …) through candle's module `bn`, as `bn.forward_t(x, pass.train)`.
///
/// ```
/// use candle_core::{DType, Device, Tensor};
/// use ssinfogan_kernels::{batch_norm, Ops, Pass};
/// let vars = candle_nn::VarMap::new();
/// let vb = candle_nn::VarBuilder::from_varmap(&vars, DType::F32, &Device::Cpu);
/// let bn = candle_nn::batch_norm(3, candle_nn::BatchNormConfig::default(), vb).unwrap();
/// let x = Tensor::arange(0f32, 12.0, &Device::Cpu).unwrap().reshape((4, 3)).unwrap();
/// let y = batch_norm(&bn, &x, &Pass::training(Ops::Fast)).unwrap(); // (4, 3), each column mean 0
/// assert!(y.sum(0).unwrap().abs().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap() < 1e-5);
/// ```
pub fn batch_norm(bn: &candle_nn::BatchNorm, x: &Tensor, pass: &Pass) -> Result<Tensor> {
    batch_norm_activation(bn, x, Activation::Identity, pass)
}

/// BatchNorm of `x` (batch, channels, …) through candle's module `bn`, then `activation`. In training mode on
/// the CPU one op: the batch statistics, then normalisation, scale, shift and activation in one pass; backward,
/// the two per-channel sums and the input gradient, with the activation's derivative from the sign of the
/// pre-activation, recomputed from x. The running statistics are updated as candle updates them (momentum,
/// unbiased variance). Otherwise (inference mode, [`Ops::Candle`](crate::Ops::Candle), another device or
/// dtype), and without an affine part, candle's BatchNorm and the activation as its own op.
pub fn batch_norm_activation(
    bn: &candle_nn::BatchNorm,
    x: &Tensor,
    activation: Activation,
    pass: &Pass,
) -> Result<Tensor> {
    use candle_core::ModuleT;
    match batch_norm_op(bn, x, activation, pass)? {
        Some(op) => op.node(),
        None if activation.negative_slope().is_none() && fused_path(bn, x, pass)? => {
            activation.apply(batch_norm(bn, x, pass)?, pass.ops)
        }
        None => activation.apply(bn.forward_t(x, pass.train)?, pass.ops),
    }
}

/// Whether the training-mode op of this crate normalises `x` for `bn` in `pass`.
fn fused_path(bn: &candle_nn::BatchNorm, x: &Tensor, pass: &Pass) -> Result<bool> {
    let Some((weight, _)) = bn.weight_and_bias() else { return Ok(false) };
    Ok(pass.train && fast_path(x, weight, pass) && x.rank() >= 2 && x.dim(1)? == weight.elem_count())
}

/// The op of [`batch_norm_activation`] with its inputs, the update of `bn`'s running statistics to follow its
/// forward pass; `None` where candle's BatchNorm computes it, or where the activation runs as its own op.
pub(crate) fn batch_norm_op(
    bn: &candle_nn::BatchNorm,
    x: &Tensor,
    activation: Activation,
    pass: &Pass,
) -> Result<Option<LayerOp<BatchNormTrain>>> {
    let (Some((weight, bias)), Some(negative_slope)) = (bn.weight_and_bias(), activation.negative_slope()) else {
        return Ok(None);
    };
    if !fused_path(bn, x, pass)? {
        return Ok(None);
    }
    let saved = Arc::new(OnceLock::new());
    let op = BatchNormTrain { eps: bn.eps(), negative_slope, saved: saved.clone(), sums: pass.sums() };
    let (running_mean, running_var) = (bn.running_mean().clone(), bn.running_var().clone());
    let momentum = bn.momentum() as f32;
    let update_running = move || -> Result<()> {
        let stats: &Statistics =
            saved.get().ok_or_else(|| candle_core::Error::Msg("batch norm: no statistics".into()))?;
        let count = stats.count as f32;
        let update = |running: &Tensor, batch: &[f32], unbias: f32| -> Result<()> {
            let old: Vec<f32> = running.to_vec1()?;
            let new: Vec<f32> =
                old.iter().zip(batch).map(|(r, b)| (1.0 - momentum) * r + momentum * unbias * b).collect();
            candle_core::Var::from_tensor(running)?.set(&Tensor::from_vec(new, old.len(), running.device())?)
        };
        update(&running_mean, &stats.mean, 1.0)?;
        update(&running_var, &stats.var, count / (count - 1.0))
    };
    let op = LayerOp::new(x.contiguous()?, parameter(weight, pass), parameter(bias, pass), op);
    Ok(Some(op.then(update_running)))
}

/// Per-channel batch statistics of one forward pass: mean and biased variance over `count` values each.
struct Statistics {
    mean: Vec<f32>,
    var: Vec<f32>,
    count: usize,
}

/// `out[i] = f(inputs at i, the constants of i's channel)` over x's layout, in parallel over the batch; every
/// value of `out` is written (it need not be initialised).
fn map_elements<const I: usize, const P: usize>(
    out: &mut [MaybeUninit<f32>],
    inputs: [&[f32]; I],
    constants: [&[f32]; P],
    dims: Dims,
    f: impl Fn([f32; I], [f32; P]) -> f32 + Sync,
) {
    let Dims { c, s, .. } = dims;
    if out.is_empty() {
        return;
    }
    assert_eq!(out.len(), dims.len(), "batch norm: {} outputs for {dims:?}", out.len());
    let constants = constants.map(|k| &k[..c]);
    out.par_chunks_mut(c * s).enumerate().for_each(|(batch, out)| {
        let item = inputs.map(|input| &input[batch * c * s..][..c * s]);
        if s == 1 {
            // One value of every channel: the constants run along the row with the values.
            for (tile, out) in out.chunks_mut(TILE).enumerate() {
                let range = tile * TILE..tile * TILE + out.len();
                let (values, constants) = (item.map(|v| &v[range.clone()]), constants.map(|k| &k[range.clone()]));
                write_tile(out, |i| f(values.map(|v| v[i]), constants.map(|k| k[i])));
            }
            return;
        }
        for (ch, out) in out.chunks_exact_mut(s).enumerate() {
            let (run, k) = (item.map(|v| &v[ch * s..][..s]), constants.map(|k| k[ch]));
            for (tile, out) in out.chunks_mut(TILE).enumerate() {
                let values = run.map(|v| &v[tile * TILE..tile * TILE + out.len()]);
                write_tile(out, |i| f(values.map(|v| v[i]), k));
            }
        }
    });
}

/// Values per tile of [`write_tile`].
const TILE: usize = 64;

/// `out[i] = value(i)` for the `out.len() ≤ TILE` values of `out`, computed into a buffer on the stack first:
/// the loop that computes them then cannot overlap its inputs, so it is vectorised without run-time overlap
/// checks (with many inputs and constants it otherwise is not), and the copy out is a short memcpy.
#[inline(always)]
fn write_tile(out: &mut [MaybeUninit<f32>], value: impl Fn(usize) -> f32) {
    let mut tile = [0f32; TILE];
    let tile = &mut tile[..out.len()];
    for (i, v) in tile.iter_mut().enumerate() {
        *v = value(i);
    }
    for (out, v) in out.iter_mut().zip(tile.iter()) {
        out.write(*v);
    }
}

/// Mean and biased variance of every channel, from one pass of f64 sums of the values and their squares.
fn channel_statistics(x: &[f32], dims: Dims) -> Statistics {
    let count = (dims.n * dims.s) as f64;
    let sums = channel_sums([x], [], dims, Order::Lanes, |[v], []| [f64::from(v), f64::from(v) * f64::from(v)]);
    let (mean, var) = sums
        .iter()
        .map(|[sum, squares]| {
            let mean = sum / count;
            (mean as f32, (squares / count - mean * mean).max(0.0) as f32)
        })
        .unzip();
    Statistics { mean, var, count: dims.n * dims.s }
}

/// Per channel, the factor scale/√(var + eps) that multiplies x − mean: the same f32 values forward and backward,
/// where the sign of the pre-activation is recomputed from x.
fn scales(stats: &Statistics, weight: &[f32], eps: f64) -> Vec<f32> {
    stats.var.iter().zip(weight).map(|(v, w)| w / (f64::from(*v) + eps).sqrt() as f32).collect()
}

/// The activation's factor at pre-activation `v`: 1 above 0, `negative_slope` otherwise.
#[inline(always)]
fn slope_at(v: f32, negative_slope: f32) -> f32 {
    if v > 0.0 {
        1.0
    } else {
        negative_slope
    }
}

/// Training-mode BatchNorm and activation: (x, scale, shift) → act(scale·(x − mean)/√(var + eps) + shift),
/// where act keeps positive values and multiplies the others by `negative_slope` (1 is no activation, 0 ReLU).
pub(crate) struct BatchNormTrain {
    eps: f64,
    negative_slope: f32,
    /// The statistics of the forward pass, for the running averages and the backward pass.
    saved: Arc<OnceLock<Statistics>>,
    /// Where the backward pass sums the variables' gradients, if the forward pass was asked to.
    sums: Option<Arc<GradientSums>>,
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
        let (weight, shift) = (contiguous_f32(s2, l2, self.name())?, contiguous_f32(s3, l3, self.name())?);
        let dims = Dims::of(l1);
        let stats = channel_statistics(x, dims);
        let scale = scales(&stats, weight, self.eps);
        let negative_slope = self.negative_slope;
        let mut y = Vec::new();
        let mut out = Unwritten::new(&mut y, x.len());
        map_elements(out.values(), [x], [&stats.mean, &scale, shift], dims, |[x], [mean, scale, shift]| {
            let v = (x - mean) * scale + shift;
            v * slope_at(v, negative_slope)
        });
        // SAFETY: `map_elements` writes every value of `out`.
        unsafe { out.assume_written() };
        let _ = self.saved.set(stats);
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    /// ∂L/∂z = ∂L/∂y · act′ (from the sign of the pre-activation, recomputed from x exactly as forward), then
    /// ∂L/∂x = scale·istd/M · (M·∂L/∂z − Σ∂L/∂z − x̂·Σ∂L/∂z·x̂); the two sums are the gradients of the shift and the
    /// scale.
    fn bwd(
        &self,
        x: &Tensor,
        weight: &Tensor,
        bias: &Tensor,
        _y: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let name = self.name();
        let stats = self.saved.get().ok_or_else(|| candle_core::Error::Msg("batch norm: no statistics".into()))?;
        let (x, grad) = (x.contiguous()?, grad.contiguous()?);
        let (x_storage, x_layout) = x.storage_and_layout();
        let (grad_storage, grad_layout) = grad.storage_and_layout();
        let (w_storage, w_layout) = weight.storage_and_layout();
        let (b_storage, b_layout) = bias.storage_and_layout();
        let (xs, gs) = (read_f32(&x_storage, x_layout, name)?, read_f32(&grad_storage, grad_layout, name)?);
        let (ws, shift) = (read_f32(&w_storage, w_layout, name)?, read_f32(&b_storage, b_layout, name)?);
        if gs.len() != xs.len() {
            candle_core::bail!("{name}: {} gradients for {} inputs", gs.len(), xs.len());
        }
        let dims = Dims::of(x_layout);
        let (negative_slope, scale) = (self.negative_slope, scales(stats, ws, self.eps));
        // Σ∂L/∂z·(x − mean) and Σ∂L/∂z (the shift's gradient), per channel, where ∂L/∂z = ∂L/∂y · act′.
        let constants: [&[f32]; 3] = [&stats.mean, &scale, shift];
        let sums = channel_sums([xs, gs], constants, dims, Order::Lanes, |[x, g], [mean, scale, shift]| {
            let centred = x - mean;
            let g = f64::from(g * slope_at(centred * scale + shift, negative_slope));
            [g * f64::from(centred), g]
        });
        let istd: Vec<f64> = stats.var.iter().map(|v| 1.0 / (f64::from(*v) + self.eps).sqrt()).collect();
        // ∂L/∂x = a·∂L/∂z + b·(x − mean) + d per channel, the coefficients in f64.
        let count = (dims.n * dims.s) as f64;
        let [mut a, mut b, mut d] = [vec![0f32; dims.c], vec![0f32; dims.c], vec![0f32; dims.c]];
        for ch in 0..dims.c {
            let factor = f64::from(ws[ch]) * istd[ch] / count;
            let [dot, sum] = sums[ch];
            (a[ch], b[ch], d[ch]) =
                ((factor * count) as f32, (-factor * istd[ch] * istd[ch] * dot) as f32, (-factor * sum) as f32);
        }
        let mut grad_x = Vec::new();
        let mut out = Unwritten::new(&mut grad_x, xs.len());
        map_elements(
            out.values(),
            [xs, gs],
            [&stats.mean, &scale, shift, &a, &b, &d],
            dims,
            |[x, g], [mean, scale, shift, a, b, d]| {
                let centred = x - mean;
                a * g * slope_at(centred * scale + shift, negative_slope) + b * centred + d
            },
        );
        // SAFETY: `map_elements` writes every value of `out`.
        unsafe { out.assume_written() };
        let grad_scale: Vec<f32> = sums.iter().zip(&istd).map(|([dot, _], istd)| (dot * istd) as f32).collect();
        let grad_shift: Vec<f32> = sums.iter().map(|[_, sum]| *sum as f32).collect();
        Ok((
            Some(Tensor::from_vec(grad_x, x.shape(), weight.device())?),
            parameter_grad(self.sums.as_deref(), weight, |sum| add_to_sum(sum, grad_scale))?,
            parameter_grad(self.sums.as_deref(), bias, |sum| add_to_sum(sum, grad_shift))?,
        ))
    }
}

/// Its backward pass computes the input's gradient in any case (every BatchNorm of the networks follows a layer).
impl StepOp for BatchNormTrain {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pass::Ops;
    use candle_core::{Device, Var};

    #[test]
    fn batch_norm_matches_candle_in_values_running_statistics_and_gradients() {
        use candle_core::{DType, ModuleT};
        use candle_nn::{VarBuilder, VarMap};
        // 1-D (the generator's FC layers) and 2-D BatchNorm; a batch of 1 with one spatial value per channel has
        // no variance and is left out, as it is for candle.
        // Each activation against candle's BatchNorm followed by candle's activation; slope -0.5 is not fused.
        let activations = [
            Activation::Identity,
            Activation::Relu,
            Activation::LeakyRelu(0.01),
            Activation::LeakyRelu(0.2),
            Activation::LeakyRelu(-0.5),
        ];
        // Rows and runs longer than a tile of the element-wise passes (64, here with a partial last tile), runs
        // with and without a remainder after the sums' lanes (8), more channels than one task's block.
        let shapes = [
            vec![5, 7],
            vec![4, 150],
            vec![3, 4, 5, 5],
            vec![2, 3, 9, 10],
            vec![1, 3, 2, 3],
            vec![2, 9, 1, 1],
            vec![2, 37, 4, 4],
        ];
        for (shape, activation) in shapes.iter().flat_map(|s| activations.iter().map(move |a| (s.clone(), *a))) {
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
            let ours = batch_norm_activation(&ours_bn, x.as_tensor(), activation, &Pass::training(Ops::Fast)).unwrap();
            let theirs = theirs_bn.forward_t(x.as_tensor(), true).unwrap();
            let theirs = match activation {
                Activation::Identity => theirs,
                Activation::Relu => theirs.relu().unwrap(),
                Activation::LeakyRelu(slope) => candle_nn::ops::leaky_relu(&theirs, slope).unwrap(),
            };
            let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let close = |a: Vec<f32>, b: Vec<f32>, what: &str| {
                assert_eq!(a.len(), b.len());
                for (i, (a, b)) in a.iter().zip(&b).enumerate() {
                    assert!(
                        (a - b).abs() <= 1e-4 * (1.0 + b.abs()),
                        "{what} [{i}], shape {shape:?}, {activation:?}: {a} vs {b}"
                    );
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
            if activation == Activation::Identity {
                close(
                    flat(&batch_norm(&ours_bn, x.as_tensor(), &Pass::inference(Ops::Fast)).unwrap()),
                    flat(&theirs_bn.forward_t(x.as_tensor(), false).unwrap()),
                    "inference",
                );
            }
        }
    }
}
