//! Weight initialisation of the official code (DCGAN's): convolution and linear weights N(0, σ), BatchNorm
//! scales N(1, σ), biases 0, running means 0 and variances 1, with σ = 0.02.
//!
//! candle fills new variables from its own unseeded generator, so after building a network we overwrite every
//! variable from a seeded host stream, in the sorted order of the variable names: the same seed gives the same
//! weights on every machine and device. BatchNorm modules are recognised by the `bn` prefix of their name
//! (`bn1.weight`, `q_us.bn.weight`), a convention every network of the workspace follows.

use candle_core::{Result, Tensor};
use candle_nn::VarMap;
use rand::Rng;
use rand_distr::{Distribution, Normal};

/// Overwrites every variable of `varmap` as described in the module documentation.
pub fn initialise(varmap: &VarMap, std: f64, rng: &mut impl Rng) -> Result<()> {
    let data = varmap.data().lock().map_err(|_| candle_core::Error::Msg("variable map lock poisoned".into()))?;
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    let weights = Normal::new(0.0, std).map_err(|e| candle_core::Error::Msg(format!("init std {std}: {e}")))?;
    for name in names {
        let var = &data[name];
        let n = var.elem_count();
        let mut parts = name.rsplit('.');
        let leaf = parts.next().unwrap_or_default();
        let is_batch_norm = parts.next().is_some_and(|module| module.starts_with("bn"));
        let values: Vec<f32> = match leaf {
            "running_mean" | "bias" => vec![0.0; n],
            "running_var" => vec![1.0; n],
            "weight" if is_batch_norm => (0..n).map(|_| 1.0 + weights.sample(rng) as f32).collect(),
            _ => (0..n).map(|_| weights.sample(rng) as f32).collect(),
        };
        var.set(&Tensor::from_vec(values, var.shape(), var.device())?)?;
    }
    Ok(())
}
