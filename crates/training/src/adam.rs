//! Adam as Torch's `optim.adam` computes it (the official code's optimiser), with its state owned here so
//! checkpoints can hold it: candle's `AdamW` keeps its moments private, and its default weight decay of 0.01
//! is not the official setting.
//!
//! Step t, gradient g: m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²;
//! θ ← θ − lr·√(1−β2ᵗ)/(1−β1ᵗ) · m / (√v + ε).

use std::collections::HashMap;

use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, Var};
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdamConfig {
    pub learning_rate: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
}

pub struct Adam {
    config: AdamConfig,
    /// Trainable variables in name order, with their first and second moments.
    params: Vec<(String, Var, Tensor, Tensor)>,
    steps: u64,
}

/// BatchNorm running statistics live in the variable map but are not trained.
fn is_trainable(name: &str) -> bool {
    !(name.ends_with("running_mean") || name.ends_with("running_var"))
}

impl Adam {
    /// An optimiser over every trainable variable of `varmap`, moments at zero.
    pub fn new(varmap: &VarMap, config: AdamConfig) -> Result<Self> {
        let data = varmap.data().lock().map_err(|_| candle_core::Error::Msg("variable map lock poisoned".into()))?;
        let mut params: Vec<(String, Var, Tensor, Tensor)> = data
            .iter()
            .filter(|(name, _)| is_trainable(name))
            .map(|(name, var)| {
                let zeros = var.zeros_like()?;
                Ok((name.clone(), var.clone(), zeros.clone(), zeros))
            })
            .collect::<Result<_>>()?;
        params.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(Self { config, params, steps: 0 })
    }

    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// One update from `grads`; variables without a gradient are left as they are.
    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        self.steps += 1;
        let AdamConfig { learning_rate, beta1, beta2, eps } = self.config;
        let t = self.steps as i32;
        let step_size = learning_rate * (1.0 - beta2.powi(t)).sqrt() / (1.0 - beta1.powi(t));
        for (_, var, m, v) in &mut self.params {
            let Some(g) = grads.get(var.as_tensor()) else { continue };
            let g = g.detach();
            *m = ((&*m * beta1)? + (&g * (1.0 - beta1))?)?;
            *v = ((&*v * beta2)? + (g.sqr()? * (1.0 - beta2))?)?;
            let update = (&*m / (v.sqrt()? + eps)?)?;
            var.set(&(var.as_tensor().detach() - (update * step_size)?)?)?;
        }
        Ok(())
    }

    /// The moments, named `m.<variable>` and `v.<variable>`, for a checkpoint.
    pub fn state(&self) -> HashMap<String, Tensor> {
        self.params
            .iter()
            .flat_map(|(name, _, m, v)| [(format!("m.{name}"), m.clone()), (format!("v.{name}"), v.clone())])
            .collect()
    }

    /// Restores moments and the step count saved by [`state`](Self::state) and [`steps`](Self::steps).
    pub fn load_state(&mut self, state: &HashMap<String, Tensor>, steps: u64) -> Result<()> {
        for (name, var, m, v) in &mut self.params {
            let get = |key: String| {
                state.get(&key).cloned().ok_or_else(|| candle_core::Error::Msg(format!("checkpoint lacks `{key}`")))
            };
            *m = get(format!("m.{name}"))?.to_device(var.device())?;
            *v = get(format!("v.{name}"))?.to_device(var.device())?;
        }
        self.steps = steps;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    #[test]
    fn two_steps_match_torch_optim_adam() {
        // Reference, computed by hand from the formulas above with lr 0.1, β 0.5/0.999, ε 1e-8,
        // θ0 = 1 and the gradient of θ² (2θ):
        //   t=1: g=2, m=1, v=0.004, step=0.1·√0.001/0.5, θ1 = 1 − 0.2·√0.001·1/(√0.004+1e-8) = 0.9
        //   t=2: g=1.8, m=1.4, v=0.0072396, θ2 = θ1 − 0.1·√(1−0.999²)/(1−0.25)·1.4/(√0.0072396+1e-8)
        let varmap = VarMap::new();
        let theta = varmap.get(1, "theta", candle_nn::Init::Const(1.0), DType::F32, &Device::Cpu).unwrap();
        let config = AdamConfig { learning_rate: 0.1, beta1: 0.5, beta2: 0.999, eps: 1e-8 };
        let mut adam = Adam::new(&varmap, config).unwrap();
        let mut expected = 1.0f64;
        let (mut m, mut v) = (0.0f64, 0.0f64);
        for t in 1..=2 {
            let grads = theta.sqr().unwrap().sum_all().unwrap().backward().unwrap();
            adam.step(&grads).unwrap();
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
}
