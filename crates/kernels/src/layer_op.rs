//! The op of one layer with its inputs ([`LayerOp`]), ready to run as an autograd node of its own or as a step
//! of a [`Sequence`](crate::sequence::Sequence).

use candle_core::{CustomOp3, Result, Tensor};

/// An op of this crate that can be a step of a [`Sequence`](crate::sequence::Sequence).
pub(crate) trait StepOp: CustomOp3 + Send + Sync + 'static {
    /// Sets whether the backward pass computes the input's gradient. A step's input is a tensor without a
    /// graph, so the op cannot read that off it; the sequence knows.
    fn set_input_grad(&mut self, _needed: bool) {}
}

/// What runs after a layer's forward pass (BatchNorm's update of its running statistics).
type AfterForward = Box<dyn FnOnce() -> Result<()>>;

/// A layer's op with its three inputs (the layer's input, its weight and its bias), ready to run.
pub(crate) struct LayerOp<C> {
    pub(crate) x: Tensor,
    pub(crate) weight: Tensor,
    pub(crate) bias: Tensor,
    pub(crate) op: C,
    pub(crate) after: Option<AfterForward>,
}

impl<C: StepOp> LayerOp<C> {
    pub(crate) fn new(x: Tensor, weight: Tensor, bias: Tensor, op: C) -> Self {
        Self { x, weight, bias, op, after: None }
    }

    /// The same op, with `after` to run once its forward pass has run.
    pub(crate) fn then(self, after: impl FnOnce() -> Result<()> + 'static) -> Self {
        Self { after: Some(Box::new(after)), ..self }
    }

    /// The layer as its own autograd node.
    pub(crate) fn node(self) -> Result<Tensor> {
        let y = self.x.apply_op3(&self.weight, &self.bias, self.op)?;
        self.after.map_or(Ok(()), |after| after())?;
        Ok(y)
    }
}
