//! What the training loop needs from the networks, as traits: the loop drives any generator and any
//! discriminator with Q heads, and the networks crate (or a replacement crate) provides them.
//!
//! They live beside the layers because each call takes the [`Pass`] it runs in: which implementation of the
//! layers (the fast CPU kernels or candle's ops), BatchNorm's mode, and whether the parameters are constants (the
//! G step's pass through D) or have their gradients summed in place
//! ([`GradientSums`](crate::pass::GradientSums), collected by [`backward`](crate::pass::backward)).

use candle_core::{Result, Tensor};

use crate::pass::Pass;

/// The discriminator's outputs for one batch of images.
#[derive(Debug, Clone)]
pub struct DiscriminatorOutput {
    /// Real/fake logits, (batch, 1): D(x) = sigmoid of these.
    pub d_logits: Tensor,
    /// `Q_ss` logits, (batch, Σ semi-supervised code sizes).
    pub q_ss_logits: Tensor,
    /// `Q_us` outputs, (batch, width of the unsupervised codes' likelihood parameters); `None` when the
    /// latent spec has no unsupervised code.
    pub q_us: Option<Tensor>,
}

/// G(z, c): latent input (batch, input_dim) to images (batch, C, H, W).
pub trait Generator {
    fn generate(&self, input: &Tensor, pass: &Pass) -> Result<Tensor>;
}

/// D and the Q heads on a shared body.
pub trait Discriminator {
    fn discriminate(&self, images: &Tensor, pass: &Pass) -> Result<DiscriminatorOutput>;
}
