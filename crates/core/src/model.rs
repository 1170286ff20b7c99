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

/// A parameter's gradient summed in place by the layers during [`backward`]: the parameter and its values.
type ParameterGradients = std::collections::HashMap<candle_core::TensorId, (Tensor, Vec<f32>)>;

thread_local! {
    static PARAMETER_GRADIENTS: std::cell::RefCell<Option<ParameterGradients>> =
        const { std::cell::RefCell::new(None) };
}

/// `loss.backward()`, with the parameters' gradients summed in place by the layers that support it (those of
/// `ssinfogan-networks` on the CPU): the same gradient store, cheaper.
///
/// Candle sums every gradient that flows back to a tensor as `zeros_like(tensor) + gradient`, a fill and an add
/// over the whole tensor, and one more add for each further use. For the 6.4-million-value weights of the
/// 6272→1024 layers, used twice in the D step (real and fake images), that is about 100 MB of memory traffic
/// per gradient. Here a layer writes its parameter's first gradient as the store's value and accumulates the
/// next one into it (a matrix product that adds to its destination), and the sums go into the store at the
/// end, added to any gradient candle computed for the same parameter.
pub fn backward(loss: &Tensor) -> Result<candle_core::backprop::GradStore> {
    struct Restore(Option<ParameterGradients>);
    impl Drop for Restore {
        fn drop(&mut self) {
            PARAMETER_GRADIENTS.with(|sums| *sums.borrow_mut() = self.0.take());
        }
    }
    let restore = Restore(PARAMETER_GRADIENTS.with(|sums| sums.borrow_mut().replace(Default::default())));
    let grads = loss.backward();
    let sums = PARAMETER_GRADIENTS.with(|sums| sums.borrow_mut().take()).unwrap_or_default();
    drop(restore);
    let mut grads = grads?;
    for (parameter, values) in sums.into_values() {
        let mut grad = Tensor::from_vec(values, parameter.shape(), parameter.device())?;
        if let Some(candles) = grads.remove(&parameter) {
            grad = (grad + candles)?;
        }
        grads.insert(&parameter, grad);
    }
    Ok(grads)
}

/// Whether the calling thread is inside [`backward`], where [`add_parameter_gradient`] takes the layers'
/// parameter gradients.
pub fn summing_parameter_gradients() -> bool {
    PARAMETER_GRADIENTS.with(|sums| sums.borrow().is_some())
}

/// Inside [`backward`], adds a parameter's gradient to its running sum and returns `true`: `compute(None)`
/// returns the first gradient of `parameter` (its values in order), `compute(Some(sum))` adds a further one to
/// `sum` in place. Outside, returns `false` without calling `compute` (the layer returns its gradient to candle).
pub fn add_parameter_gradient(
    parameter: &Tensor,
    compute: impl FnOnce(Option<&mut [f32]>) -> Option<Vec<f32>>,
) -> Result<bool> {
    PARAMETER_GRADIENTS.with(|sums| {
        let mut sums = sums.borrow_mut();
        let Some(sums) = sums.as_mut() else { return Ok(false) };
        match sums.entry(parameter.id()) {
            std::collections::hash_map::Entry::Occupied(mut entry) => {
                let _ = compute(Some(&mut entry.get_mut().1));
            }
            std::collections::hash_map::Entry::Vacant(entry) => {
                let values = compute(None)
                    .ok_or_else(|| candle_core::Error::Msg("a parameter's first gradient was not computed".into()))?;
                if values.len() != parameter.elem_count() {
                    candle_core::bail!(
                        "{} gradient values for a parameter of shape {:?}",
                        values.len(),
                        parameter.shape()
                    );
                }
                entry.insert((parameter.clone(), values));
            }
        }
        Ok(true)
    })
}
