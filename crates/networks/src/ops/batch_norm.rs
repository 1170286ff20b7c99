//! BatchNorm in training mode, with the activation that follows it, as one CPU op forward and one backward
//! (candle's BatchNorm takes about ten tensor ops, and each activation is one more node).

use std::sync::{Arc, OnceLock};

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::{contiguous_f32, fast_path, parameter, parameter_grad, read_f32, Activation};

/// BatchNorm of `x` (batch, channels, …) through candle's module `bn`, as `bn.forward_t(x, train)`.
pub fn batch_norm(bn: &candle_nn::BatchNorm, x: &Tensor, train: bool) -> Result<Tensor> {
    batch_norm_activation(bn, x, train, Activation::Identity)
}

/// BatchNorm of `x` (batch, channels, …) through candle's module `bn`, then `activation`. In training mode on
/// the CPU one op: the batch statistics, then normalisation, scale, shift and activation in one pass; backward,
/// the two per-channel sums and the input gradient, with the activation's derivative read off the output. The
/// running statistics are updated as candle updates them (momentum, unbiased variance). Otherwise, and without
/// an affine part, candle's BatchNorm and the activation as its own op.
pub fn batch_norm_activation(
    bn: &candle_nn::BatchNorm,
    x: &Tensor,
    train: bool,
    activation: Activation,
) -> Result<Tensor> {
    use candle_core::ModuleT;
    let unfused = || activation.apply(bn.forward_t(x, train)?);
    let Some((weight, bias)) = bn.weight_and_bias() else { return unfused() };
    if !train || !fast_path(x, weight) || x.rank() < 2 || x.dim(1)? != weight.elem_count() {
        return unfused();
    }
    let Some(negative_slope) = activation.negative_slope() else {
        return activation.apply(batch_norm(bn, x, train)?);
    };
    let saved = Arc::new(OnceLock::new());
    let op = BatchNormTrain { eps: bn.eps(), negative_slope, saved: saved.clone() };
    let y = x.contiguous()?.apply_op3(&parameter(weight), &parameter(bias), op)?;
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

/// Channels per parallel task of the per-channel reductions: a block is a contiguous run of every row of x
/// (batch, channels, spatial), so a 1-D BatchNorm (spatial 1) reads its rows in order instead of one channel at
/// a stride of the row.
fn channel_block(c: usize, s: usize) -> usize {
    (4096 / s.max(1)).clamp(1, c.max(1))
}

/// A 1-D BatchNorm's (batch, features) values as (1, features, batch), with that view: each feature one
/// contiguous run, so the per-channel loops run along memory (and vectorise) instead of visiting one value per
/// feature at a row's stride. `None` for a BatchNorm with spatial values (or a batch of 1), whose runs already are.
fn feature_major(x: &[f32], (n, c, s): (usize, usize, usize)) -> Option<(Vec<f32>, (usize, usize, usize))> {
    (s == 1 && n > 1).then(|| (transpose(x, n, c), (1, c, n)))
}

/// The row-major `rows × cols` matrix `x` transposed, in parallel over the output's rows.
fn transpose(x: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0f32; x.len()];
    if rows > 0 {
        out.par_chunks_mut(rows).enumerate().for_each(|(j, out)| {
            for (out, x) in out.iter_mut().zip(x[j..].iter().step_by(cols)) {
                *out = *x;
            }
        });
    }
    out
}

/// Per-channel sums over batch and space of `term(channel, run of x, run of each other input)`, in f64, in
/// parallel over blocks of channels; a channel's runs (its `spatial` values in one batch item) come in batch
/// order. Each input has x's (batch, channels, spatial) layout.
fn channel_reduce<const K: usize, const I: usize>(
    inputs: [&[f32]; I],
    (n, c, s): (usize, usize, usize),
    term: impl Fn(usize, [&[f32]; I]) -> [f64; K] + Sync,
) -> Vec<[f64; K]> {
    let block = channel_block(c, s);
    let mut sums = vec![[0f64; K]; c];
    if sums.is_empty() {
        return sums;
    }
    sums.par_chunks_mut(block).enumerate().for_each(|(i, sums)| {
        let first = i * block;
        for b in 0..n {
            // This block's values in batch item b, one run of `s` per channel.
            let start = (b * c + first) * s;
            let rows = inputs.map(|input| &input[start..start + sums.len() * s]);
            for (j, sum) in sums.iter_mut().enumerate() {
                let t = term(first + j, rows.map(|row| &row[j * s..(j + 1) * s]));
                for k in 0..K {
                    sum[k] += t[k];
                }
            }
        }
    });
    sums
}

/// Mean and biased variance of every channel of `x` (batch, channels, spatial), from one pass of f64 sums of
/// the values and their squares.
fn channel_statistics(x: &[f32], (n, c, s): (usize, usize, usize)) -> Statistics {
    let count = (n * s) as f64;
    let sums = channel_reduce([x], (n, c, s), |_, [run]| {
        run.iter().fold([0f64; 2], |[sum, squares], &v| [sum + f64::from(v), squares + f64::from(v) * f64::from(v)])
    });
    let (mean, var) = sums
        .iter()
        .map(|[sum, squares]| {
            let mean = sum / count;
            (mean as f32, (squares / count - mean * mean).max(0.0) as f32)
        })
        .unzip();
    Statistics { mean, var, count: n * s }
}

/// `f(channel, output run, input runs)` for every channel's run of x's (batch, channels, spatial) layout, in
/// parallel over the batch.
fn map_channels<const I: usize>(
    out: &mut [f32],
    inputs: [&[f32]; I],
    (c, s): (usize, usize),
    f: impl Fn(usize, &mut [f32], [&[f32]; I]) + Sync,
) {
    if out.is_empty() || s == 0 {
        return;
    }
    out.par_chunks_mut(c * s).enumerate().for_each(|(b, out)| {
        let rows = inputs.map(|input| &input[b * c * s..(b + 1) * c * s]);
        for (ch, run) in out.chunks_exact_mut(s).enumerate() {
            f(ch, run, rows.map(|row| &row[ch * s..(ch + 1) * s]));
        }
    });
}

/// Per channel, the factor scale/√(var + eps) that multiplies x − mean: the same f32 values forward and backward,
/// where the sign of the pre-activation is recomputed from x.
fn scales(stats: &Statistics, weight: &[f32], eps: f64) -> Vec<f32> {
    stats.var.iter().zip(weight).map(|(v, w)| w / (f64::from(*v) + eps).sqrt() as f32).collect()
}

/// Training-mode BatchNorm and activation: (x, scale, shift) → act(scale·(x − mean)/√(var + eps) + shift),
/// where act keeps positive values and multiplies the others by `negative_slope` (1 is no activation, 0 ReLU).
struct BatchNormTrain {
    eps: f64,
    negative_slope: f32,
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
        let view = channel_view(l1);
        let x_t = feature_major(x, view);
        let (x, (n, c, s)) = x_t.as_ref().map_or((x, view), |(x, view)| (x.as_slice(), *view));
        let stats = channel_statistics(x, (n, c, s));
        let scale = scales(&stats, weight, self.eps);
        let negative_slope = self.negative_slope;
        let mut y = vec![0f32; x.len()];
        map_channels(&mut y, [x], (c, s), |ch, y, [x]| {
            let (mean, scale, shift) = (stats.mean[ch], scale[ch], bias[ch]);
            for (y, x) in y.iter_mut().zip(x) {
                let v = (x - mean) * scale + shift;
                *y = if v > 0.0 { v } else { v * negative_slope };
            }
        });
        let y = if x_t.is_some() { transpose(&y, c, s) } else { y };
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
        let view = channel_view(x_layout);
        let (xs_t, gs_t) = (feature_major(xs, view), feature_major(gs, view));
        let (xs, (n, c, s)) = xs_t.as_ref().map_or((xs, view), |(x, view)| (x.as_slice(), *view));
        let gs = gs_t.as_ref().map_or(gs, |(g, _)| g.as_slice());
        let (negative_slope, scale) = (self.negative_slope, scales(stats, ws, self.eps));
        // The gradient before the activation, whose derivative is 1 where the pre-activation is > 0.
        let pre = move |g: f32, x: f32, ch: usize| {
            let v = (x - stats.mean[ch]) * scale[ch] + shift[ch];
            g * if v > 0.0 { 1.0 } else { negative_slope }
        };
        let istd: Vec<f64> = stats.var.iter().map(|v| 1.0 / (f64::from(*v) + self.eps).sqrt()).collect();
        // Σ∂L/∂z·x̂ (the scale's gradient) and Σ∂L/∂z (the shift's), per channel.
        let sums = channel_reduce([xs, gs], (n, c, s), |ch, [x, g]| {
            let mean = stats.mean[ch];
            let [dot, sum] = x.iter().zip(g).fold([0f64; 2], |[dot, sum], (x, g)| {
                let g = f64::from(pre(*g, *x, ch));
                [dot + g * f64::from(x - mean), sum + g]
            });
            [dot * istd[ch], sum]
        });
        // ∂L/∂x = a·∂L/∂z + b·(x − mean) + d per channel, the coefficients in f64.
        let count = (n * s) as f64;
        let coefficients: Vec<[f32; 3]> = (0..c)
            .map(|ch| {
                let factor = f64::from(ws[ch]) * istd[ch] / count;
                let [dot, sum] = sums[ch];
                [(factor * count) as f32, (-factor * istd[ch] * dot) as f32, (-factor * sum) as f32]
            })
            .collect();
        let mut grad_x = vec![0f32; xs.len()];
        map_channels(&mut grad_x, [xs, gs], (c, s), |ch, out, [x, g]| {
            let ([a, b, d], mean) = (coefficients[ch], stats.mean[ch]);
            for (out, (x, g)) in out.iter_mut().zip(x.iter().zip(g)) {
                *out = a * pre(*g, *x, ch) + b * (x - mean) + d;
            }
        });
        let grad_x = if xs_t.is_some() { transpose(&grad_x, c, s) } else { grad_x };
        let grad_scale: Vec<f32> = sums.iter().map(|[dot, _]| *dot as f32).collect();
        let grad_shift: Vec<f32> = sums.iter().map(|[_, sum]| *sum as f32).collect();
        let device = weight.device();
        let frozen = !weight.track_op();
        Ok((
            Some(Tensor::from_vec(grad_x, x.shape(), device)?),
            parameter_grad(weight, (!frozen).then_some(grad_scale))?,
            parameter_grad(bias, (!frozen).then_some(grad_shift))?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
        let shapes = [vec![5, 7], vec![3, 4, 5, 5], vec![1, 3, 2, 3], vec![2, 9, 1, 1]];
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
            let ours = batch_norm_activation(&ours_bn, x.as_tensor(), true, activation).unwrap();
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
                    flat(&batch_norm(&ours_bn, x.as_tensor(), false).unwrap()),
                    flat(&theirs_bn.forward_t(x.as_tensor(), false).unwrap()),
                    "inference",
                );
            }
        }
    }
}
