//! How one forward pass runs its layers: which implementation of the ops ([`Ops`]), BatchNorm's mode, and what
//! becomes of the parameters' gradients ([`Parameters`]). Every layer function of this crate takes a [`Pass`];
//! nothing is read from thread-local or process-wide state.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, TensorId};

/// Which implementation runs the layers.
///
/// ```
/// use ssinfogan_kernels::Ops;
/// assert_eq!("candle".parse::<Ops>().unwrap(), Ops::Candle);
/// assert_eq!(Ops::default().to_string(), "fast");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(rename_all = "kebab-case"))]
pub enum Ops {
    /// The CPU kernels of this crate for f32 tensors on the CPU (one-node layers with GEMM products, fused
    /// BatchNorm and activation), candle's own ops elsewhere (CUDA, other dtypes).
    #[default]
    Fast,
    /// candle's own ops everywhere: the path a CUDA device runs, and the reference the fast kernels are timed
    /// and checked against on the CPU.
    Candle,
}

impl std::str::FromStr for Ops {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Self, String> {
        match text.trim() {
            "fast" => Ok(Self::Fast),
            "candle" => Ok(Self::Candle),
            other => Err(format!("unknown ops `{other}`: use `fast` (this crate's CPU kernels) or `candle`")),
        }
    }
}

impl std::fmt::Display for Ops {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Fast => "fast",
            Self::Candle => "candle",
        })
    }
}

/// What a forward pass does with its layers' parameters.
#[derive(Debug, Clone)]
pub enum Parameters {
    /// Variables that take gradients through candle's backward pass (`loss.backward()`).
    Trainable,
    /// Constants, as `requires_grad_(False)` freezes a PyTorch module: the fast kernels take the weights
    /// detached, so a backward pass through them computes the gradients of their inputs and none of theirs,
    /// and keeps nothing for them. (candle's ops compute every gradient; frozen or not, the numbers are the
    /// same.)
    Frozen,
    /// Variables whose gradients the fast kernels add up in place in these sums during the backward pass,
    /// which [`backward`] then merges into candle's gradient store.
    Summed(Arc<GradientSums>),
}

/// The context of one forward pass through the layers of this crate.
///
/// ```
/// use std::sync::Arc;
/// use ssinfogan_kernels::{GradientSums, Ops, Pass};
/// let sums = Arc::new(GradientSums::default());
/// // The D step of a GAN: batch statistics, parameter gradients summed in place.
/// let d_step = Pass::training(Ops::Fast).summing_into(&sums);
/// // The G step's pass through D: batch statistics, D's parameters constant.
/// let through_d = Pass::training(Ops::Fast).frozen();
/// // Evaluation: running statistics, constants.
/// let evaluation = Pass::inference(Ops::Candle);
/// assert!(d_step.train && through_d.train && !evaluation.train);
/// ```
#[derive(Debug, Clone)]
pub struct Pass {
    pub ops: Ops,
    /// BatchNorm normalises with the batch statistics and updates its running ones (training mode), or uses
    /// the running ones (inference mode), as candle's `ModuleT::forward_t(x, train)`.
    pub train: bool,
    pub parameters: Parameters,
}

impl Pass {
    /// Training mode, trainable parameters with their gradients through candle's backward pass.
    pub fn training(ops: Ops) -> Self {
        Self { ops, train: true, parameters: Parameters::Trainable }
    }

    /// Inference mode with the parameters as constants: nothing of the pass is kept for a backward pass.
    pub fn inference(ops: Ops) -> Self {
        Self { ops, train: false, parameters: Parameters::Frozen }
    }

    /// The same pass with the parameters as constants ([`Parameters::Frozen`]).
    pub fn frozen(self) -> Self {
        Self { parameters: Parameters::Frozen, ..self }
    }

    /// The same pass with the parameters' gradients summed in place into `sums` ([`Parameters::Summed`]);
    /// [`backward`] with the same `sums` collects them.
    pub fn summing_into(self, sums: &Arc<GradientSums>) -> Self {
        Self { parameters: Parameters::Summed(sums.clone()), ..self }
    }

    /// Whether the parameters are constants.
    pub fn parameters_frozen(&self) -> bool {
        matches!(self.parameters, Parameters::Frozen)
    }

    /// The sums an op of this pass adds its variables' gradients to, if any.
    pub(crate) fn sums(&self) -> Option<Arc<GradientSums>> {
        match &self.parameters {
            Parameters::Summed(sums) => Some(sums.clone()),
            Parameters::Trainable | Parameters::Frozen => None,
        }
    }
}

/// The running sums of variables' gradients, written by the fast kernels' backward passes of a
/// [`Parameters::Summed`] pass and collected by [`backward`].
///
/// Candle sums every gradient that flows back to a tensor as `zeros_like(tensor) + gradient`, a fill and an add
/// over the whole tensor, and one more add for each further use. For the 6.4-million-value weights of a
/// 6272→1024 layer used twice in one loss (a GAN's D step: real and fake images), that is about 100 MB of memory
/// traffic per gradient. Here a layer writes a variable's first gradient as its sum and accumulates the next one
/// into it (a matrix product that adds to its destination).
///
/// Only a variable itself is summed here, keyed by its tensor id, which is what an optimiser looks up: a
/// parameter that reaches an op as another tensor (reshaped, transposed, made contiguous) gets its gradient
/// through candle's backward pass, which carries it back to the variable.
#[derive(Default)]
pub struct GradientSums {
    sums: Mutex<Sums>,
    /// The variables of each [`Sequence`](crate::Sequence) node, by the node's id: candle's graph shows only one
    /// of them, and [`backward`] counts the others as reached where the loss reaches the node.
    sequences: Mutex<HashMap<TensorId, Vec<Tensor>>>,
}

/// Each variable's running sum, by the variable's id: the variable and its gradient's values.
type Sums = HashMap<TensorId, (Tensor, Vec<f32>)>;

impl std::fmt::Debug for GradientSums {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let held = self.sums.lock().map(|sums| sums.len()).unwrap_or(0);
        f.debug_struct("GradientSums").field("variables", &held).finish()
    }
}

impl GradientSums {
    /// Whether no gradient is held: true before a backward pass through the ops that write here, and again once
    /// [`backward`] has moved the sums into its gradient store.
    pub fn is_empty(&self) -> bool {
        self.sums.lock().is_ok_and(|sums| sums.is_empty())
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Sums>> {
        locked(&self.sums)
    }

    /// Notes that the loss depends on `variables` wherever it depends on `node`, a sequence whose graph shows
    /// candle none of them (or one).
    pub(crate) fn reached_through(&self, node: &Tensor, variables: Vec<Tensor>) -> Result<()> {
        locked(&self.sequences)?.insert(node.id(), variables);
        Ok(())
    }

    /// Adds a variable's gradient to its running sum: `compute(None)` returns the first gradient of `variable`
    /// (its values in order), `compute(Some(sum))` adds a further one to `sum` in place.
    pub(crate) fn add(
        &self,
        variable: &Tensor,
        compute: impl FnOnce(Option<&mut [f32]>) -> Option<Vec<f32>>,
    ) -> Result<()> {
        let mut sums = self.lock()?;
        match sums.entry(variable.id()) {
            std::collections::hash_map::Entry::Occupied(mut entry) => {
                let _ = compute(Some(&mut entry.get_mut().1));
            }
            std::collections::hash_map::Entry::Vacant(entry) => {
                let values = compute(None)
                    .ok_or_else(|| candle_core::Error::Msg("a parameter's first gradient was not computed".into()))?;
                if values.len() != variable.elem_count() {
                    candle_core::bail!(
                        "{} gradient values for a parameter of shape {:?}",
                        values.len(),
                        variable.shape()
                    );
                }
                entry.insert((variable.clone(), values));
            }
        }
        Ok(())
    }
}

/// One of the sums' mutexes, locked.
fn locked<T>(mutex: &Mutex<T>) -> Result<std::sync::MutexGuard<'_, T>> {
    mutex.lock().map_err(|_| candle_core::Error::Msg("gradient sums: lock poisoned".into()))
}

/// The gradients of one backward pass, and which variables the loss depends on.
pub struct Gradients {
    store: GradStore,
    reached: HashSet<TensorId>,
}

impl std::fmt::Debug for Gradients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gradients").field("variables_reached", &self.reached.len()).finish_non_exhaustive()
    }
}

impl Gradients {
    /// The gradient of `tensor`, if the pass computed one.
    pub fn get(&self, tensor: &Tensor) -> Option<&Tensor> {
        self.store.get(tensor)
    }

    /// Whether the loss depends on `variable` through tensors that track gradients: then its gradient must be
    /// in [`get`](Self::get). (A variable it does not depend on, or only through a frozen pass, has none.)
    pub fn reaches(&self, variable: &Tensor) -> bool {
        self.reached.contains(&variable.id())
    }

    /// candle's gradient store.
    pub fn into_store(self) -> GradStore {
        self.store
    }
}

/// `loss.backward()`, with the gradients that the ops of [`Parameters::Summed`] passes summed into `sums`
/// merged in: each added to any gradient candle computed for the same variable, then `sums` is empty again.
///
/// ```
/// use candle_core::{Device, Var};
/// use ssinfogan_kernels::{backward, GradientSums};
/// let w = Var::new(&[1f32, 2.0], &Device::Cpu).unwrap();
/// let loss = w.as_tensor().sqr().unwrap().sum_all().unwrap();
/// let grads = backward(&loss, &GradientSums::default()).unwrap();
/// assert_eq!(grads.get(w.as_tensor()).unwrap().to_vec1::<f32>().unwrap(), [2.0, 4.0]);
/// assert!(grads.reaches(w.as_tensor()));
/// ```
pub fn backward(loss: &Tensor, sums: &GradientSums) -> Result<Gradients> {
    if !sums.lock()?.is_empty() {
        candle_core::bail!(
            "gradient sums already hold gradients of another backward pass: use one `GradientSums` per backward pass"
        );
    }
    let sequences = std::mem::take(&mut *locked(&sums.sequences)?);
    let nodes = loss.sorted_nodes();
    let in_sequences = nodes.iter().filter_map(|node| sequences.get(&node.id())).flatten();
    let variables = nodes.iter().copied().filter(|node| node.is_variable());
    let reached = variables.chain(in_sequences).map(Tensor::id).collect();
    let store = loss.backward();
    let summed = std::mem::take(&mut *sums.lock()?);
    let mut store = store?;
    for (variable, values) in summed.into_values() {
        let mut grad = Tensor::from_vec(values, variable.shape(), variable.device())?;
        if let Some(candles) = store.remove(&variable) {
            grad = (grad + candles)?;
        }
        store.insert(&variable, grad);
    }
    Ok(Gradients { store, reached })
}
