//! Adam as Torch's `optim.adam` computes it (the official code's optimiser), with its state owned here so
//! checkpoints can hold it: candle's `AdamW` keeps its moments private, and its default weight decay of 0.01
//! is not the official setting.
//!
//! Step t, gradient g: m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²;
//! θ ← θ − lr·√(1−β2ᵗ)/(1−β1ᵗ) · m / (√v + ε).
//!
//! On the CPU the whole update is one pass over θ, g, m and v in place ([`FusedAdam`], a candle in-place op):
//! written as tensor ops it allocates seven temporaries per parameter and walks memory eight times, which made
//! the optimiser steps of the two 6.4M-weight layers the largest single cost of an iteration. Elsewhere (CUDA),
//! and with [`Ops::Candle`], the moments are tensors and the update is candle's own ops.
//!
//! A variable that the loss depends on but that received no gradient is an error, not a skipped update: its
//! gradient went somewhere the optimiser does not look.

use std::cell::RefCell;
use std::collections::HashMap;

use candle_core::{CpuStorage, DType, Device, InplaceOp2, Layout, Result, Tensor, Var};
use candle_nn::VarMap;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use ssinfogan_kernels::{Gradients, Ops};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdamConfig {
    pub learning_rate: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
}

/// First and second moments of one variable.
enum Moments {
    /// Host buffers, updated in place with the variable by [`FusedAdam`] (f32 variables on the CPU).
    Host { m: Vec<f32>, v: Vec<f32> },
    /// Tensors on the variable's device, updated with candle's ops.
    Tensors { m: Tensor, v: Tensor },
}

pub struct Adam {
    config: AdamConfig,
    /// Trainable variables in name order, with their moments.
    params: Vec<(String, Var, Moments)>,
    steps: u64,
}

/// BatchNorm running statistics live in the variable map but are not trained.
fn is_trainable(name: &str) -> bool {
    !(name.ends_with("running_mean") || name.ends_with("running_var"))
}

fn zero_moments(var: &Var, ops: Ops) -> Result<Moments> {
    Ok(if ops == Ops::Fast && matches!(var.device(), Device::Cpu) && var.dtype() == DType::F32 {
        let n = var.elem_count();
        Moments::Host { m: vec![0.0; n], v: vec![0.0; n] }
    } else {
        let zeros = var.zeros_like()?;
        Moments::Tensors { m: zeros.clone(), v: zeros }
    })
}

impl Adam {
    /// An optimiser over every trainable variable of `varmap`, moments at zero. With [`Ops::Fast`] the f32
    /// variables on the CPU take the fused update; with [`Ops::Candle`] every variable takes candle's tensor
    /// ops, the reference path.
    pub fn new(varmap: &VarMap, config: AdamConfig, ops: Ops) -> Result<Self> {
        let data = varmap.data().lock().map_err(|_| candle_core::Error::Msg("variable map lock poisoned".into()))?;
        let mut params: Vec<(String, Var, Moments)> = data
            .iter()
            .filter(|(name, _)| is_trainable(name))
            .map(|(name, var)| Ok((name.clone(), var.clone(), zero_moments(var, ops)?)))
            .collect::<Result<_>>()?;
        params.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(Self { config, params, steps: 0 })
    }

    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// One update from `grads` (of `ssinfogan_kernels::backward`). A variable the loss does not depend on (a head
    /// the step's losses leave out, as `Q_ss` on an unlabelled batch) has no gradient and is left as it is, its
    /// moments too. A variable the loss depends on but without a gradient is an error naming it, and nothing is
    /// updated.
    pub fn step(&mut self, grads: &Gradients) -> Result<()> {
        for (name, var, _) in &self.params {
            if grads.get(var.as_tensor()).is_none() && grads.reaches(var.as_tensor()) {
                candle_core::bail!(
                    "Adam: the loss depends on `{name}` but the backward pass gave it no gradient (were its layers' \
                     gradient sums passed to `backward`?); no variable was updated"
                );
            }
        }
        self.steps += 1;
        let AdamConfig { learning_rate, beta1, beta2, eps } = self.config;
        let t = self.steps as i32;
        let step_size = learning_rate * (1.0 - beta2.powi(t)).sqrt() / (1.0 - beta1.powi(t));
        for (_, var, moments) in &mut self.params {
            let Some(g) = grads.get(var.as_tensor()) else { continue };
            match moments {
                Moments::Host { m, v } => {
                    let op = FusedAdam {
                        moments: RefCell::new((m.as_mut_slice(), v.as_mut_slice())),
                        beta1: beta1 as f32,
                        one_minus_beta1: (1.0 - beta1) as f32,
                        beta2: beta2 as f32,
                        one_minus_beta2: (1.0 - beta2) as f32,
                        eps: eps as f32,
                        step_size: step_size as f32,
                    };
                    var.as_tensor().inplace_op2(&g.contiguous()?, &op)?;
                }
                Moments::Tensors { m, v } => {
                    let g = g.detach();
                    *m = ((&*m * beta1)? + (&g * (1.0 - beta1))?)?;
                    *v = ((&*v * beta2)? + (g.sqr()? * (1.0 - beta2))?)?;
                    let update = (&*m / (v.sqrt()? + eps)?)?;
                    var.set(&(var.as_tensor().detach() - (update * step_size)?)?)?;
                }
            }
        }
        Ok(())
    }

    /// The moments, named `m.<variable>` and `v.<variable>`, for a checkpoint.
    pub fn state(&self) -> Result<HashMap<String, Tensor>> {
        let mut state = HashMap::with_capacity(2 * self.params.len());
        for (name, var, moments) in &self.params {
            let (m, v) = match moments {
                Moments::Host { m, v } => (
                    Tensor::from_slice(m, var.shape(), &Device::Cpu)?,
                    Tensor::from_slice(v, var.shape(), &Device::Cpu)?,
                ),
                Moments::Tensors { m, v } => (m.clone(), v.clone()),
            };
            state.insert(format!("m.{name}"), m);
            state.insert(format!("v.{name}"), v);
        }
        Ok(state)
    }

    /// Restores moments and the step count saved by [`state`](Self::state) and [`steps`](Self::steps).
    pub fn load_state(&mut self, state: &HashMap<String, Tensor>, steps: u64) -> Result<()> {
        for (name, var, moments) in &mut self.params {
            let get = |key: String| {
                let tensor =
                    state.get(&key).ok_or_else(|| candle_core::Error::Msg(format!("checkpoint lacks `{key}`")))?;
                if tensor.shape() != var.shape() {
                    candle_core::bail!(
                        "checkpoint's `{key}` has shape {:?}, the variable {:?}",
                        tensor.shape(),
                        var.shape()
                    );
                }
                Ok::<_, candle_core::Error>(tensor)
            };
            let (m, v) = (get(format!("m.{name}"))?, get(format!("v.{name}"))?);
            *moments = match moments {
                Moments::Host { .. } => Moments::Host {
                    m: m.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?,
                    v: v.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?,
                },
                Moments::Tensors { .. } => {
                    let restore = |t: &Tensor| t.to_dtype(var.dtype())?.to_device(var.device());
                    Moments::Tensors { m: restore(m)?, v: restore(v)? }
                }
            };
        }
        self.steps = steps;
        Ok(())
    }
}

/// The Adam update of one f32 variable in one pass: θ (the op's destination), its gradient (the source) and
/// its moments (borrowed host buffers), each element read and written once.
pub struct FusedAdam<'a> {
    pub moments: RefCell<(&'a mut [f32], &'a mut [f32])>,
    pub beta1: f32,
    /// 1 − β1 and 1 − β2 taken in f64: 1 − 0.999f32 is 0.00100005, an error that shows after a few steps.
    pub one_minus_beta1: f32,
    pub beta2: f32,
    pub one_minus_beta2: f32,
    pub eps: f32,
    /// lr·√(1−β2ᵗ)/(1−β1ᵗ).
    pub step_size: f32,
}

impl InplaceOp2 for FusedAdam<'_> {
    fn name(&self) -> &'static str {
        "fused-adam"
    }

    fn cpu_fwd(&self, theta: &mut CpuStorage, l1: &Layout, grad: &CpuStorage, l2: &Layout) -> Result<()> {
        let (CpuStorage::F32(theta), CpuStorage::F32(grad)) = (theta, grad) else {
            candle_core::bail!("fused-adam: only f32 variables and gradients");
        };
        let (Some((t0, t1)), Some((g0, g1))) = (l1.contiguous_offsets(), l2.contiguous_offsets()) else {
            candle_core::bail!("fused-adam: the variable and its gradient must be contiguous");
        };
        let (theta, grad) = (&mut theta[t0..t1], &grad[g0..g1]);
        let mut moments = self.moments.borrow_mut();
        let (m, v) = &mut *moments;
        if theta.len() != grad.len() || m.len() != theta.len() || v.len() != theta.len() {
            candle_core::bail!(
                "fused-adam: {} weights, {} gradients, {} and {} moments",
                theta.len(),
                grad.len(),
                m.len(),
                v.len()
            );
        }
        let (b1, c1, b2, c2) = (self.beta1, self.one_minus_beta1, self.beta2, self.one_minus_beta2);
        let (eps, step) = (self.eps, self.step_size);
        // In parallel over blocks: one pass over four arrays of up to 6.4 million values is bound by memory
        // bandwidth, which one core does not saturate. Each value's update is independent of the others.
        const BLOCK: usize = 1 << 16;
        theta
            .par_chunks_mut(BLOCK)
            .zip(grad.par_chunks(BLOCK))
            .zip(m.par_chunks_mut(BLOCK))
            .zip(v.par_chunks_mut(BLOCK))
            .for_each(|(((theta, grad), m), v)| {
                for (((theta, &g), m), v) in theta.iter_mut().zip(grad).zip(m.iter_mut()).zip(v.iter_mut()) {
                    *m = b1 * *m + c1 * g;
                    *v = b2 * *v + c2 * g * g;
                    *theta -= step * *m / (v.sqrt() + eps);
                }
            });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use ssinfogan_kernels::{backward, GradientSums, Pass};

    /// candle's backward pass of `loss`, nothing summed in place.
    fn gradients(loss: &Tensor) -> Gradients {
        backward(loss, &GradientSums::default()).unwrap()
    }

    #[test]
    fn two_steps_match_torch_optim_adam() {
        // Reference, computed by hand from the formulas above with lr 0.1, β 0.5/0.999, ε 1e-8,
        // θ0 = 1 and the gradient of θ² (2θ):
        //   t=1: g=2, m=1, v=0.004, step=0.1·√0.001/0.5, θ1 = 1 − 0.2·√0.001·1/(√0.004+1e-8) = 0.9
        //   t=2: g=1.8, m=1.4, v=0.0072396, θ2 = θ1 − 0.1·√(1−0.999²)/(1−0.25)·1.4/(√0.0072396+1e-8)
        let varmap = VarMap::new();
        let theta = varmap.get(1, "theta", candle_nn::Init::Const(1.0), DType::F32, &Device::Cpu).unwrap();
        let config = AdamConfig { learning_rate: 0.1, beta1: 0.5, beta2: 0.999, eps: 1e-8 };
        let mut adam = Adam::new(&varmap, config, Ops::Fast).unwrap();
        let mut expected = 1.0f64;
        let (mut m, mut v) = (0.0f64, 0.0f64);
        for t in 1..=2 {
            adam.step(&gradients(&theta.sqr().unwrap().sum_all().unwrap())).unwrap();
            let g = 2.0 * expected;
            m = 0.5 * m + 0.5 * g;
            v = 0.999 * v + 0.001 * g * g;
            expected -= 0.1 * (1.0 - 0.999f64.powi(t)).sqrt() / (1.0 - 0.5f64.powi(t)) * m / (v.sqrt() + 1e-8);
            let got = theta.to_vec1::<f32>().unwrap()[0];
            assert!((f64::from(got) - expected).abs() < 1e-6, "step {t}: {got} vs {expected}");
            if t == 1 {
                assert!((got - 0.9).abs() < 1e-6, "the first step moves θ by lr: {got}");
            }
        }
    }

    #[test]
    fn the_fused_cpu_update_matches_the_tensor_update() {
        // f32 variables on the CPU take the fused path, f64 ones candle's tensor ops: same formula, so after
        // ten steps of the same gradients (odd shapes, signs and sizes) the weights agree to f32 precision.
        let config = AdamConfig { learning_rate: 1e-2, beta1: 0.5, beta2: 0.999, eps: 1e-8 };
        let (mut fused_map, mut reference_map) = (VarMap::new(), VarMap::new());
        // The last is two and a half of the parallel update's blocks.
        let shapes: [&[usize]; 4] = [&[1], &[7, 3], &[2, 5, 3], &[5, 1 << 15]];
        let mut pairs = Vec::new();
        for (k, shape) in shapes.iter().enumerate() {
            let n: usize = shape.iter().product();
            let init: Vec<f64> = (0..n).map(|i| ((i * 37 + k * 11) % 17) as f64 / 8.0 - 1.0).collect();
            let name = format!("w{k}");
            let a = fused_map.get(*shape, &name, candle_nn::Init::Const(0.0), DType::F32, &Device::Cpu).unwrap();
            let b = reference_map.get(*shape, &name, candle_nn::Init::Const(0.0), DType::F64, &Device::Cpu).unwrap();
            let init = Tensor::from_vec(init, *shape, &Device::Cpu).unwrap();
            fused_map.set_one(&name, init.to_dtype(DType::F32).unwrap()).unwrap();
            reference_map.set_one(&name, &init).unwrap();
            pairs.push((a, b));
        }
        let (mut fused, mut reference) =
            (Adam::new(&fused_map, config, Ops::Fast).unwrap(), Adam::new(&reference_map, config, Ops::Fast).unwrap());
        for step in 0..10 {
            // Loss Σ w³·c with a step-dependent c: gradients of both signs and changing size.
            let c = 1.0 + step as f64 / 3.0;
            let loss = |vars: Vec<&Tensor>| {
                let mut total = vars[0].powf(3.0).unwrap().sum_all().unwrap();
                for v in &vars[1..] {
                    total = (total + v.powf(3.0).unwrap().sum_all().unwrap()).unwrap();
                }
                (total * c).unwrap()
            };
            fused.step(&gradients(&loss(pairs.iter().map(|(a, _)| a).collect()))).unwrap();
            reference.step(&gradients(&loss(pairs.iter().map(|(_, b)| b).collect()))).unwrap();
        }
        for (a, b) in &pairs {
            let a: Vec<f32> = a.flatten_all().unwrap().to_vec1().unwrap();
            let b: Vec<f64> = b.flatten_all().unwrap().to_vec1().unwrap();
            for (x, y) in a.iter().zip(&b) {
                assert!((f64::from(*x) - y).abs() < 1e-5, "fused {x} vs tensor ops {y}");
            }
        }
        // Moments survive a checkpoint round trip on both paths, and move between them.
        let state = fused.state().unwrap();
        let v = |state: &HashMap<String, Tensor>| state["v.w1"].to_dtype(DType::F32).unwrap().to_vec2::<f32>().unwrap();
        let mut restored = Adam::new(&fused_map, config, Ops::Fast).unwrap();
        restored.load_state(&state, fused.steps()).unwrap();
        assert_eq!(v(&restored.state().unwrap()), v(&state));
        let mut as_tensors = Adam::new(&fused_map, config, Ops::Candle).unwrap();
        as_tensors.load_state(&state, fused.steps()).unwrap();
        assert_eq!(v(&as_tensors.state().unwrap()), v(&state));
        let reference_state = reference.state().unwrap();
        let mut restored = Adam::new(&reference_map, config, Ops::Fast).unwrap();
        restored.load_state(&reference_state, reference.steps()).unwrap();
        assert_eq!(restored.state().unwrap()["v.w1"].dtype(), DType::F64);
    }

    #[test]
    fn a_variable_the_loss_depends_on_without_a_gradient_is_an_error_naming_it() {
        let config = AdamConfig { learning_rate: 0.1, beta1: 0.5, beta2: 0.999, eps: 1e-8 };
        let varmap = VarMap::new();
        let init = candle_nn::Init::Const(0.5);
        let weight = varmap.get((2, 3), "layer.weight", init, DType::F32, &Device::Cpu).unwrap();
        let unused = varmap.get(4, "unused_head.weight", init, DType::F32, &Device::Cpu).unwrap();
        let layer = candle_nn::Linear::new(weight.clone(), None);
        let x = Tensor::ones((5, 3), DType::F32, &Device::Cpu).unwrap();
        let mut adam = Adam::new(&varmap, config, Ops::Fast).unwrap();
        let values = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();

        // The layer sums its weight's gradient into sums that the backward pass is not given: the gradient
        // never reaches the store the optimiser reads.
        let sums = std::sync::Arc::new(GradientSums::default());
        let pass = Pass::training(Ops::Fast).summing_into(&sums);
        let loss = ssinfogan_networks::ops::linear(&layer, &x, &pass).unwrap().sum_all().unwrap();
        let lost = backward(&loss, &GradientSums::default()).unwrap();
        let error = adam.step(&lost).unwrap_err().to_string();
        assert!(error.contains("`layer.weight`") && error.contains("no gradient"), "{error}");
        assert_eq!(values(&weight), vec![0.5; 6], "nothing is updated");
        assert_eq!(adam.steps(), 0);

        // Those sums still hold that gradient: a later backward pass refuses them rather than mixing it in.
        let loss = ssinfogan_networks::ops::linear(&layer, &x, &pass).unwrap().sum_all().unwrap();
        assert!(backward(&loss, &sums).unwrap_err().to_string().contains("already hold gradients"));

        // Given its sums, the weight trains; the head the loss does not depend on has no gradient and is not an
        // error (as `Q_ss` in the D step of an unlabelled batch).
        let sums = std::sync::Arc::new(GradientSums::default());
        let pass = Pass::training(Ops::Fast).summing_into(&sums);
        let loss = ssinfogan_networks::ops::linear(&layer, &x, &pass).unwrap().sum_all().unwrap();
        adam.step(&backward(&loss, &sums).unwrap()).unwrap();
        assert!(values(&weight).iter().all(|&w| (w - 0.4).abs() < 1e-6), "the first step moves by lr");
        assert_eq!(values(&unused), vec![0.5; 4]);
    }
}
