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
