//! The losses of ss-InfoGAN (Spurr et al. 2017, §3, and the official code): binary cross-entropy for the
//! discriminator on real and fake images and the non-saturating generator loss ([`adversarial_loss`]);
//! cross-entropy for categorical codes, which is both the semi-supervised loss on labelled real images and
//! the information loss on fakes ([`semi_supervised_loss`]); the unsupervised information loss, with mean
//! squared error or a Gaussian log-likelihood for continuous codes ([`ContinuousLoss`]); and their λ weights
//! from the experiment config ([`LossConfig`]).

use candle_core::{Result, Tensor, D};
use serde::{Deserialize, Serialize};
use ssinfogan_core::{LatentBatch, LatentSpec};

/// The λ weights and the continuous-code likelihood; the experiment TOML's `[loss]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LossConfig {
    /// Weight of the semi-supervised loss, in the D/Q step and the G step (official: 2).
    pub lambda_ss: f64,
    /// Weight of the unsupervised information loss, in the D/Q step and the G step (official: 0.8).
    pub lambda_us: f64,
    pub continuous: ContinuousLoss,
    /// Also train `Q_ss` in the D/Q step on fakes, `λ_ss · CE(Q_ss(G(z,c)), c_ss)`, when there are labels (an
    /// ablation; the official code does this only with no labels at all, where it is always on).
    #[serde(default, skip_serializing_if = "is_false")]
    pub q_ss_on_fakes: bool,
}

fn is_false(value: &bool) -> bool {
    !value
}

/// How `Q_us` models a continuous code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ContinuousLoss {
    /// Mean squared error of a predicted mean: a fixed-variance Gaussian log-likelihood (official code).
    Mse,
    /// Negative log-likelihood of a Gaussian whose mean and log standard deviation `Q_us` predicts.
    GaussianNll,
}

impl ContinuousLoss {
    /// Outputs `Q_us` needs per continuous code.
    pub fn outputs_per_code(&self) -> usize {
        match self {
            Self::Mse => 1,
            Self::GaussianNll => 2,
        }
    }

    /// The loss of predictions `q` (batch, outputs_per_code · n) for codes `target` (batch, n), averaged
    /// over batch and codes.
    pub fn loss(&self, q: &Tensor, target: &Tensor) -> Result<Tensor> {
        let n = target.dim(1)?;
        match self {
            Self::Mse => candle_nn::loss::mse(q, target),
            Self::GaussianNll => {
                let mean = q.narrow(1, 0, n)?;
                let log_std = q.narrow(1, n, n)?;
                let z = ((target - mean)? * log_std.neg()?.exp()?)?;
                let per_element = (log_std + (z.sqr()? * 0.5)?)?;
                per_element.mean_all()? + 0.5 * (2.0 * std::f64::consts::PI).ln()
            }
        }
    }
}

/// Width of the `Q_us` output for `latent` under `continuous`: categorical logits, then continuous parameters.
pub fn q_us_width(latent: &LatentSpec, continuous: ContinuousLoss) -> usize {
    latent.unsupervised_categorical.iter().sum::<usize>() + continuous.outputs_per_code() * latent.continuous
}

/// The adversarial loss of discriminator outputs `d_logits` against a constant `target`: 1 for real images
/// in the D step and for fakes in the G step (the non-saturating generator loss), 0 for fakes in the D step.
/// Here the standard GAN's binary cross-entropy on logits ([`bce_with_logits`]); the training loop calls only
/// this, so a crate with the same API and another adversarial loss (e.g. `ssinfogan-losses-lsgan`) swaps in.
pub fn adversarial_loss(d_logits: &Tensor, target: f64) -> Result<Tensor> {
    bce_with_logits(d_logits, target)
}

/// Mean binary cross-entropy between `sigmoid(logits)` and a constant `target` (1 real, 0 fake), in the
/// stable form `max(x, 0) − x·t + ln(1 + e^−|x|)`.
pub fn bce_with_logits(logits: &Tensor, target: f64) -> Result<Tensor> {
    let softplus_of_minus_abs = (logits.abs()?.neg()?.exp()? + 1.0)?.log()?;
    ((logits.relu()? - (logits * target)?)? + softplus_of_minus_abs)?.mean_all()
}

/// Mean cross-entropy of `logits` (batch, K) against class indices `targets` (batch,) of dtype u32.
pub fn cross_entropy(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    candle_nn::loss::cross_entropy(logits, targets)
}

/// The semi-supervised (or `Q_ss` information) loss: the sum over semi-supervised codes of the
/// cross-entropy of that code's slice of `q_ss_logits` against `targets[k]`.
pub fn semi_supervised_loss(latent: &LatentSpec, q_ss_logits: &Tensor, targets: &[Tensor]) -> Result<Tensor> {
    let mut offset = 0;
    let mut total: Option<Tensor> = None;
    for (code, target) in latent.semi_supervised.iter().zip(targets) {
        let loss = cross_entropy(&q_ss_logits.narrow(D::Minus1, offset, code.size)?, target)?;
        total = Some(match total {
            Some(t) => (t + loss)?,
            None => loss,
        });
        offset += code.size;
    }
    total.ok_or_else(|| candle_core::Error::Msg("the latent spec has no semi-supervised code".into()))
}

/// The unsupervised information loss on fakes made from `codes`: cross-entropy per unsupervised categorical
/// code plus the continuous loss. `None` when there is no unsupervised code.
pub fn unsupervised_loss(
    latent: &LatentSpec,
    continuous: ContinuousLoss,
    q_us: Option<&Tensor>,
    codes: &LatentBatch,
) -> Result<Option<Tensor>> {
    let Some(q_us) = q_us else { return Ok(None) };
    let device = q_us.device();
    let mut offset = 0;
    let mut total: Option<Tensor> = None;
    let mut add = |loss: Tensor| -> Result<()> {
        total = Some(match total.take() {
            Some(t) => (t + loss)?,
            None => loss,
        });
        Ok(())
    };
    for (k, &size) in latent.unsupervised_categorical.iter().enumerate() {
        add(cross_entropy(&q_us.narrow(1, offset, size)?, &codes.unsupervised_target(k, device)?)?)?;
        offset += size;
    }
    if latent.continuous > 0 {
        let width = continuous.outputs_per_code() * latent.continuous;
        let target = codes.continuous_target(latent.continuous, device)?;
        add(continuous.loss(&q_us.narrow(1, offset, width)?, &target)?)?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn scalar(t: Tensor) -> f32 {
        t.to_scalar::<f32>().unwrap()
    }

    #[test]
    fn bce_matches_the_softplus_reference() {
        // Reference (Python): sp = lambda x: math.log1p(math.exp(x)); xs = [0, 2, -1]
        //   target 1: sum(sp(-x) for x in xs) / 3 = 0.7111122930403803
        //   target 0: sum(sp(x) for x in xs) / 3  = 1.0444456263737136
        let logits = Tensor::new(&[[0f32], [2.0], [-1.0]], &Device::Cpu).unwrap();
        assert!((scalar(bce_with_logits(&logits, 1.0).unwrap()) - 0.711_112_3).abs() < 1e-6);
        assert!((scalar(bce_with_logits(&logits, 0.0).unwrap()) - 1.044_445_6).abs() < 1e-6);
    }

    #[test]
    fn bce_is_finite_for_extreme_logits() {
        let logits = Tensor::new(&[[-200f32], [200.0]], &Device::Cpu).unwrap();
        // −200 with target 1 costs 200 nats, +200 costs nothing: mean 100.
        assert_eq!(scalar(bce_with_logits(&logits, 1.0).unwrap()), 100.0);
    }

    #[test]
    fn cross_entropy_matches_log_sum_exp() {
        // Reference: lse = lambda r: math.log(sum(math.exp(v) for v in r))
        //   ((lse([1,2,3]) - 3) + (lse([0,0,0]) - 0)) / 2 = 0.753109126556245
        let logits = Tensor::new(&[[1f32, 2., 3.], [0., 0., 0.]], &Device::Cpu).unwrap();
        let targets = Tensor::new(&[2u32, 1], &Device::Cpu).unwrap();
        assert!((scalar(cross_entropy(&logits, &targets).unwrap()) - 0.753_109_1).abs() < 1e-6);
    }

    #[test]
    fn continuous_losses_match_their_formulas() {
        // Reference: mean [0.5, -0.5], log std [0, ln 2], target [1, 0]
        //   MSE = ((1-0.5)^2 + (0+0.5)^2) / 2 = 0.25
        //   NLL = mean(s + 0.5 ((t-m)/e^s)^2) + 0.5 ln(2π) = 1.3436371234846454
        let target = Tensor::new(&[[1f32, 0.]], &Device::Cpu).unwrap();
        let mean = Tensor::new(&[[0.5f32, -0.5]], &Device::Cpu).unwrap();
        assert_eq!(scalar(ContinuousLoss::Mse.loss(&mean, &target).unwrap()), 0.25);
        let q = Tensor::new(&[[0.5f32, -0.5, 0.0, std::f32::consts::LN_2]], &Device::Cpu).unwrap();
        assert!((scalar(ContinuousLoss::GaussianNll.loss(&q, &target).unwrap()) - 1.343_637_1).abs() < 1e-6);
    }

    #[test]
    fn unsupervised_loss_sums_categorical_and_continuous_parts() {
        use ssinfogan_core::SemiSupervisedCode;
        let latent = LatentSpec {
            semi_supervised: vec![SemiSupervisedCode { name: "digit".into(), size: 3, label: "class".into() }],
            unsupervised_categorical: vec![3],
            continuous: 2,
            noise: 1,
        };
        let codes = LatentBatch {
            batch: 2,
            semi_supervised: vec![vec![0, 0]],
            unsupervised_categorical: vec![vec![2, 1]],
            continuous: vec![1.0, 0.0, 1.0, 0.0],
            noise: vec![0.0, 0.0],
        };
        // Categorical part: the cross-entropy reference above (0.753109…); continuous part: MSE 0.25.
        let q_us = Tensor::new(&[[1f32, 2., 3., 0.5, -0.5], [0., 0., 0., 0.5, -0.5]], &Device::Cpu).unwrap();
        let loss = unsupervised_loss(&latent, ContinuousLoss::Mse, Some(&q_us), &codes).unwrap().unwrap();
        assert!((scalar(loss) - (0.753_109_1 + 0.25)).abs() < 1e-6);
        assert_eq!(q_us_width(&latent, ContinuousLoss::GaussianNll), 7);
    }
}
