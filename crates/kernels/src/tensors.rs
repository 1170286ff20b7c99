//! Reading f32 CPU tensors, and the parameters and parameter gradients of a layer's op.

use candle_core::{CpuStorage, DType, Layout, Result, Tensor};

use crate::pass::{GradientSums, Ops, Pass};

/// Whether `pass` runs this crate's kernel for a layer of `weight` on `x`: f32 on the CPU, unless it asks for
/// candle's ops.
pub(crate) fn fast_path(x: &Tensor, weight: &Tensor, pass: &Pass) -> bool {
    pass.ops == Ops::Fast && x.device().is_cpu() && x.dtype() == DType::F32 && weight.dtype() == DType::F32
}

/// The values of a contiguous f32 CPU storage.
pub(crate) fn contiguous_f32<'a>(storage: &'a CpuStorage, layout: &Layout, op: &str) -> Result<&'a [f32]> {
    let CpuStorage::F32(data) = storage else { candle_core::bail!("{op}: f32 only") };
    let Some((start, end)) = layout.contiguous_offsets() else { candle_core::bail!("{op}: contiguous input only") };
    Ok(&data[start..end])
}

/// Calls `f` with the values of a contiguous f32 CPU tensor (the backward passes read their saved inputs and
/// the incoming gradient this way).
pub(crate) fn with_values<R>(t: &Tensor, op: &str, f: impl FnOnce(&[f32]) -> Result<R>) -> Result<R> {
    let (storage, layout) = t.storage_and_layout();
    f(read_f32(&storage, layout, op)?)
}

/// A layer's parameter as its op's input: a constant (no gradient) in a pass with frozen parameters.
pub(crate) fn parameter(t: &Tensor, pass: &Pass) -> Tensor {
    if pass.parameters_frozen() {
        t.detach()
    } else {
        t.clone()
    }
}

/// The bias as the op's third input: the layer's, or zeros for a layer without one.
pub(crate) fn bias_or_zeros(
    bias: Option<&Tensor>,
    channels: usize,
    like: &Tensor,
    op: &str,
    pass: &Pass,
) -> Result<Tensor> {
    match bias {
        Some(bias) if bias.elem_count() == channels && bias.dtype() == DType::F32 => {
            parameter(bias, pass).flatten_all()?.contiguous()
        }
        Some(bias) => candle_core::bail!("{op}: a bias of shape {:?} for {channels} output channels", bias.shape()),
        None => Tensor::zeros(channels, DType::F32, like.device()),
    }
}

/// A parameter's gradient for candle's backward pass; `None` for a frozen parameter (one that does not track
/// gradients), whose gradient is not computed. With the `sums` of a
/// [`Parameters::Summed`](crate::pass::Parameters::Summed) pass (the op's, captured at its forward pass) and a
/// parameter that is a variable itself, the gradient goes into the variable's running sum there, `compute(None)`
/// writing the first one and `compute(Some(sum))` adding a further one in place, and candle gets `None`.
/// Otherwise candle gets `compute(None)` as a tensor: a parameter that reached the op as another tensor
/// (reshaped, transposed, copied) passes it back to its variable through candle's backward pass.
pub(crate) fn parameter_grad(
    sums: Option<&GradientSums>,
    parameter: &Tensor,
    compute: impl FnOnce(Option<&mut [f32]>) -> Option<Vec<f32>>,
) -> Result<Option<Tensor>> {
    if !parameter.track_op() {
        return Ok(None);
    }
    if let Some(sums) = sums.filter(|_| parameter.is_variable()) {
        sums.add(parameter, compute)?;
        return Ok(None);
    }
    let values =
        compute(None).ok_or_else(|| candle_core::Error::Msg("a parameter gradient was not computed".into()))?;
    Tensor::from_vec(values, parameter.shape(), parameter.device()).map(Some)
}

/// A gradient's `values` for [`parameter_grad`]: added to the running `sum`, or returned as the first one.
pub(crate) fn add_to_sum(sum: Option<&mut [f32]>, values: Vec<f32>) -> Option<Vec<f32>> {
    match sum {
        Some(sum) => {
            // The same parameter's gradient, so the same length: a mismatch is a bug in the op, never truncated.
            assert_eq!(sum.len(), values.len(), "a further gradient of another length than the parameter's first");
            sum.iter_mut().zip(&values).for_each(|(s, v)| *s += v);
            None
        }
        None => Some(values),
    }
}

/// The values of a contiguous f32 CPU tensor's storage (from `Tensor::storage_and_layout`).
pub(crate) fn read_f32<'a>(storage: &'a candle_core::Storage, layout: &Layout, op: &str) -> Result<&'a [f32]> {
    let candle_core::Storage::Cpu(cpu) = storage else { candle_core::bail!("{op}: CPU tensors only") };
    contiguous_f32(cpu, layout, op)
}
