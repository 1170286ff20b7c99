//! BatchNorm in training mode as one CPU op forward and one backward (candle's takes about ten tensor ops).

use std::sync::{Arc, OnceLock};

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::{contiguous_f32, fast_path};

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
}
