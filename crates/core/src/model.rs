//! What the training loop needs from the networks, as traits: the loop drives any generator and any
//! discriminator with Q heads, and the networks crate (or a replacement crate) provides them.

use candle_core::{Result, Tensor};

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
    fn generate(&self, input: &Tensor, train: bool) -> Result<Tensor>;
}

/// D and the Q heads on a shared body.
pub trait Discriminator {
    fn discriminate(&self, images: &Tensor, train: bool) -> Result<DiscriminatorOutput>;
}

thread_local! {
    static PARAMETERS_FROZEN: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with the networks' parameters frozen, as `requires_grad_(False)` freezes a PyTorch module: the
/// layers of `ssinfogan-networks` then take their weights as constants, so a backward pass through them computes
/// the gradients of their inputs and none of theirs. The G step runs D this way: it needs the gradient through
/// D to the fakes, and D's own gradients there would be discarded. (Another crate's networks that ignore the
/// flag are still correct, only slower.)
pub fn with_frozen_parameters<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            PARAMETERS_FROZEN.with(|frozen| frozen.set(self.0));
        }
    }
    let _restore = Restore(PARAMETERS_FROZEN.with(|frozen| frozen.replace(true)));
    f()
}

/// Whether the calling thread is inside [`with_frozen_parameters`].
pub fn parameters_frozen() -> bool {
    PARAMETERS_FROZEN.with(|frozen| frozen.get())
}
