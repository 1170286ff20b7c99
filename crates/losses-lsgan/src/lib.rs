//! The losses of ss-InfoGAN with one change: the adversarial loss is LSGAN's least squares (Mao et al. 2017,
//! "Least Squares Generative Adversarial Networks", eq. 2 with a = 0, b = c = 1) instead of binary
//! cross-entropy. Everything else is `ssinfogan-losses`' own, so this crate has its public API exactly and
//! replaces it with one line of the workspace `Cargo.toml`:
//!
//! ```toml
//! ssinfogan-losses = { path = "crates/losses-lsgan", package = "ssinfogan-losses-lsgan" }
//! ```
//!
//! The discriminator's `d_logits` are then read as LSGAN's unbounded scores (no sigmoid anywhere).

use candle_core::{Result, Tensor};

// An item defined here shadows the glob: `adversarial_loss` is this crate's, the rest is re-exported.
pub use ssinfogan_losses::*;

/// Least-squares adversarial loss: `mean((D(x) − target)²) / 2`, with target 1 for real images in the D step
/// and for fakes in the G step, 0 for fakes in the D step.
pub fn adversarial_loss(d_logits: &Tensor, target: f64) -> Result<Tensor> {
    (d_logits - target)?.sqr()?.mean_all()? * 0.5
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn least_squares_against_the_target() {
        let scores = Tensor::new(&[[0.5f32], [-1.0], [2.0]], &Device::Cpu).unwrap();
        let value = |t: f64| adversarial_loss(&scores, t).unwrap().to_scalar::<f32>().unwrap();
        // ((0.5-1)² + (-1-1)² + (2-1)²) / 3 / 2 = (0.25 + 4 + 1) / 6 = 0.875
        assert!((value(1.0) - 0.875).abs() < 1e-6);
        // (0.25 + 1 + 4) / 6 = 0.875 as well; at 0.5 it is (0 + 2.25 + 2.25) / 6 = 0.75
        assert!((value(0.0) - 0.875).abs() < 1e-6);
        assert!((value(0.5) - 0.75).abs() < 1e-6);
    }

    #[test]
    fn the_rest_of_the_api_is_the_original_crate() {
        // The swap must not change anything but the adversarial loss.
        let logits = Tensor::new(&[[0.3f32, -0.2], [1.5, 0.1]], &Device::Cpu).unwrap();
        let ours = bce_with_logits(&logits, 1.0).unwrap().to_scalar::<f32>().unwrap();
        let original = ssinfogan_losses::bce_with_logits(&logits, 1.0).unwrap().to_scalar::<f32>().unwrap();
        assert_eq!(ours, original);
        assert_eq!(ContinuousLoss::GaussianNll.outputs_per_code(), 2);
        let lsgan = adversarial_loss(&logits, 1.0).unwrap().to_scalar::<f32>().unwrap();
        let gan = ssinfogan_losses::adversarial_loss(&logits, 1.0).unwrap().to_scalar::<f32>().unwrap();
        assert_ne!(lsgan, gan);
    }
}
