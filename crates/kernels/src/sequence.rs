//! Layers one after another as one autograd node ([`Sequence`]), each layer's op ([`LayerOp`]) run as a step.
//!
//! Candle's backward pass sums the gradient of every tensor between two nodes as `zeros_like(tensor) +
//! gradient`: an allocation, a fill and an add over the whole activation, for each layer. A sequence runs its
//! layers without a graph and hands each layer's input gradient straight to the backward pass of the layer
//! before it, so only its input and its output meet candle's backward pass.

use candle_core::{CpuStorage, CustomOp2, CustomOp3, DType, Layout, Result, Shape, Tensor};

use crate::activation::Activation;
use crate::batch_norm::{batch_norm_activation, batch_norm_op};
use crate::conv::{conv2d_activation, conv2d_op, conv_transpose2d, conv_transpose2d_op, ConvParams};
use crate::layer_op::{LayerOp, StepOp};
use crate::linear::{linear, linear_op};
use crate::pass::{Ops, Parameters, Pass};
use crate::tensors::with_values;

impl<C: StepOp> LayerOp<C> {
    /// Whether candle's backward pass needs nothing of this layer but its input's gradient: each parameter is
    /// a constant or a variable whose gradient the op sums in place ([`Parameters::Summed`]). (A parameter that
    /// reached the op as another tensor gets its gradient through candle's backward pass.)
    fn fits_a_sequence(&self, pass: &Pass) -> bool {
        let summed = matches!(pass.parameters, Parameters::Summed(_));
        [&self.weight, &self.bias].iter().all(|p| !p.track_op() || (summed && p.is_variable()))
    }

    /// Runs the layer without a graph as a step of a sequence, whose input takes a gradient where
    /// `input_grad` says so.
    fn step(mut self, input_grad: bool) -> Result<(Tensor, Step)> {
        self.op.set_input_grad(input_grad);
        let y = self.x.apply_op3_no_bwd(&self.weight, &self.bias, &self.op)?;
        self.after.map_or(Ok(()), |after| after())?;
        let layer = Layer { op: Box::new(self.op), x: self.x, weight: self.weight, bias: self.bias, y: y.clone() };
        Ok((y, Step::Layer(layer)))
    }
}

/// A step's op with its inputs and output, for its backward pass.
struct Layer {
    op: Box<dyn CustomOp3 + Send + Sync>,
    x: Tensor,
    weight: Tensor,
    bias: Tensor,
    y: Tensor,
}

enum Step {
    Layer(Layer),
    /// A reshape, from this shape.
    Reshape(Shape),
}

/// Layers applied one after another, each as [`linear`], [`conv2d_activation`],
/// [`conv_transpose2d`] and [`batch_norm_activation`]
/// apply it; on the CPU, where the parameters' gradients are summed in place or not taken (a frozen pass whose
/// input takes a gradient), as one autograd node. Elsewhere (candle's ops, [`Parameters::Trainable`], a frozen
/// pass on an input without a graph, as in evaluation) each layer is what its function makes of it, and so is a
/// layer that runs through candle's op (an activation that does not fuse, inference-mode BatchNorm) or a
/// [`then`](Self::then): these split the sequence into nodes around them. The values and gradients are the same
/// either way, to the bit but for the sign of a zero gradient: candle's `zeros + gradient` between two nodes
/// makes a −0 a +0, which a sequence hands on as it is.
///
/// ```
/// use std::sync::Arc;
/// use candle_core::{DType, Device, Tensor};
/// use ssinfogan_kernels::{backward, Activation, GradientSums, Ops, Pass, Sequence};
/// let vars = candle_nn::VarMap::new();
/// let vb = candle_nn::VarBuilder::from_varmap(&vars, DType::F32, &Device::Cpu);
/// let (fc, bn) = (candle_nn::linear(6, 4, vb.pp("fc")).unwrap(), candle_nn::batch_norm(4, 1e-5, vb.pp("bn")).unwrap());
/// let sums = Arc::new(GradientSums::default());
/// let pass = Pass::training(Ops::Fast).summing_into(&sums);
/// let x = Tensor::arange(0f32, 18.0, &Device::Cpu).unwrap().reshape((3, 6)).unwrap().sin().unwrap();
/// let y = Sequence::new(&x, &pass).linear(&fc).unwrap().batch_norm(&bn, Activation::Relu).unwrap().finish().unwrap();
/// let grads = backward(&y.sum_all().unwrap(), &sums).unwrap();
/// assert_eq!(grads.get(fc.weight()).unwrap().dims(), &[4, 6]);
/// ```
pub struct Sequence<'p> {
    pass: &'p Pass,
    /// The tensor the next node starts from, with its graph.
    input: Tensor,
    /// The last layer's output: without a graph while steps are recorded, else the same as `input`.
    current: Tensor,
    /// The layers run since `input`, to become one node; `None` where each layer is its own node.
    steps: Option<Vec<Step>>,
}

impl<'p> Sequence<'p> {
    /// A sequence that starts from `x`, its layers run in `pass`.
    pub fn new(x: &Tensor, pass: &'p Pass) -> Self {
        let mut sequence = Self { pass, input: x.clone(), current: x.clone(), steps: None };
        sequence.start_from(x.clone());
        sequence
    }

    /// The next layers start from `x`: as steps to become one node where this pass allows, else as nodes.
    fn start_from(&mut self, x: Tensor) {
        let pass = self.pass;
        let on_cpu = pass.ops == Ops::Fast && x.device().is_cpu() && x.dtype() == DType::F32;
        // A frozen pass on a tensor without a graph (evaluation) has no backward pass to spare: its layers
        // make no nodes either way.
        let one_node = on_cpu
            && match pass.parameters {
                Parameters::Summed(_) => true,
                Parameters::Frozen => x.track_op(),
                Parameters::Trainable => false,
            };
        self.current = if one_node { x.detach() } else { x.clone() };
        self.input = x;
        self.steps = one_node.then(Vec::new);
    }

    /// Adds the layer that `op` describes (if this crate's kernel runs it), or else `each` applied as its own
    /// node(s) to the output so far.
    fn layer<C: StepOp>(
        mut self,
        op: impl FnOnce(&Tensor) -> Result<Option<LayerOp<C>>>,
        each: impl FnOnce(&Tensor) -> Result<Tensor>,
    ) -> Result<Self> {
        let Some(steps) = self.steps.as_ref() else {
            self.current = each(&self.current)?;
            return Ok(self);
        };
        // A layer after another takes its input's gradient; the first, where the sequence's input takes one.
        let input_grad = steps.iter().any(|step| matches!(step, Step::Layer(_))) || self.input.track_op();
        match op(&self.current)? {
            Some(op) if op.fits_a_sequence(self.pass) => {
                let (y, step) = op.step(input_grad)?;
                self.current = y;
                self.steps.get_or_insert_with(Vec::new).push(step);
                Ok(self)
            }
            _ => self.then(each),
        }
    }

    /// `layer` as [`linear`] applies it.
    pub fn linear(self, layer: &candle_nn::Linear) -> Result<Self> {
        let pass = self.pass;
        self.layer(|x| linear_op(layer, x, pass), |x| linear(layer, x, pass))
    }

    /// `layer` then `activation`, as [`conv2d_activation`] applies them.
    pub fn conv2d(self, layer: &candle_nn::Conv2d, params: ConvParams, activation: Activation) -> Result<Self> {
        let (pass, weight, bias) = (self.pass, layer.weight(), layer.bias());
        self.layer(
            |x| conv2d_op(x, weight, bias, params, activation, pass),
            |x| conv2d_activation(x, weight, bias, params, activation, pass),
        )
    }

    /// `layer` as [`conv_transpose2d`] applies it.
    pub fn conv_transpose2d(self, layer: &candle_nn::ConvTranspose2d, params: ConvParams) -> Result<Self> {
        let (pass, weight, bias) = (self.pass, layer.weight(), layer.bias());
        self.layer(
            |x| conv_transpose2d_op(x, weight, bias, params, pass),
            |x| conv_transpose2d(x, weight, bias, params, pass),
        )
    }

    /// `bn` then `activation`, as [`batch_norm_activation`] applies them.
    pub fn batch_norm(self, bn: &candle_nn::BatchNorm, activation: Activation) -> Result<Self> {
        let pass = self.pass;
        self.layer(|x| batch_norm_op(bn, x, activation, pass), |x| batch_norm_activation(bn, x, activation, pass))
    }

    /// The output so far reshaped to `shape`.
    pub fn reshape<S: Into<Shape>>(mut self, shape: S) -> Result<Self> {
        let from = self.current.shape().clone();
        self.current = self.current.reshape(shape)?;
        if let Some(steps) = self.steps.as_mut() {
            steps.push(Step::Reshape(from));
        }
        Ok(self)
    }

    /// `f` (tensor ops of candle's, with their own nodes) applied to the output so far; the layers after it
    /// start a new node.
    pub fn then(mut self, f: impl FnOnce(&Tensor) -> Result<Tensor>) -> Result<Self> {
        let x = self.made_node()?;
        let y = f(&x)?;
        self.start_from(y);
        Ok(self)
    }

    /// The output of the last layer, with its graph.
    pub fn finish(mut self) -> Result<Tensor> {
        self.made_node()
    }

    /// The output so far with its graph: the recorded steps made one node (none if there are none).
    fn made_node(&mut self) -> Result<Tensor> {
        let steps = match self.steps.take() {
            // Each layer its own node: the output has its graph.
            None => return Ok(self.current.clone()),
            // Nothing recorded since `input` (the first layer or a `then` ahead): `current` is `input` without
            // its graph, and `input` is the output.
            Some(steps) if steps.is_empty() => {
                self.steps = Some(steps);
                return Ok(self.input.clone());
            }
            Some(steps) => steps,
        };
        let input_grad = self.input.track_op();
        let tracked: Vec<Tensor> = steps
            .iter()
            .filter_map(|step| match step {
                Step::Layer(layer) => Some([&layer.weight, &layer.bias]),
                Step::Reshape(_) => None,
            })
            .flatten()
            .filter(|p| p.track_op())
            .cloned()
            .collect();
        // The node's second input is a parameter that takes a gradient (the first one), so that candle's
        // backward pass reaches the node where the input takes none (the real images of a D step); or the input
        // itself where no parameter takes one (a frozen pass).
        let output = self.current.clone();
        let anchor = match tracked.first() {
            Some(anchor) => anchor.clone(),
            None if input_grad => self.input.clone(),
            // Nothing takes a gradient: the output as it is.
            None => return Ok(output),
        };
        // The variables whose gradients the steps sum in place, for `backward` to count as reached wherever
        // the loss reaches the node: candle's graph shows only the anchor.
        let variables = tracked.into_iter().filter(Tensor::is_variable).collect();
        let node = self.input.apply_op2(&anchor, SequenceNode { steps, output, input_grad })?;
        if let Parameters::Summed(sums) = &self.pass.parameters {
            sums.reached_through(&node, variables)?;
        }
        self.start_from(node.clone());
        Ok(node)
    }
}

/// The recorded steps as one autograd node: (input, anchor) → output. Its forward pass hands over the output
/// the steps computed; its backward pass runs theirs in reverse order.
struct SequenceNode {
    steps: Vec<Step>,
    output: Tensor,
    input_grad: bool,
}

impl CustomOp2 for SequenceNode {
    fn name(&self) -> &'static str {
        "sequence"
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout, _: &CpuStorage, _: &Layout) -> Result<(CpuStorage, Shape)> {
        let values = with_values(&self.output, self.name(), |values| Ok(values.to_vec()))?;
        Ok((CpuStorage::F32(values), self.output.shape().clone()))
    }

    fn bwd(&self, _: &Tensor, _: &Tensor, _: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let first_layer = self.steps.iter().position(|step| matches!(step, Step::Layer(_)));
        let mut grad = grad.clone();
        for (i, step) in self.steps.iter().enumerate().rev() {
            grad = match step {
                Step::Reshape(from) => grad.reshape(from)?,
                Step::Layer(Layer { op, x, weight, bias, y }) => {
                    let (grad_x, grad_weight, grad_bias) = op.bwd(x, weight, bias, y, &grad)?;
                    if grad_weight.is_some() || grad_bias.is_some() {
                        // `fits_a_sequence` admits no layer whose parameters' gradients go to candle.
                        candle_core::bail!("sequence: {} handed back a parameter gradient", op.name());
                    }
                    match grad_x {
                        Some(grad_x) => grad_x,
                        None if Some(i) == first_layer && !self.input_grad => return Ok((None, None)),
                        None => candle_core::bail!("sequence: {} computed no input gradient", op.name()),
                    }
                }
            };
        }
        Ok((self.input_grad.then_some(grad), None))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use candle_core::{Device, Var};
    use candle_nn::{BatchNorm, Conv2d, ConvTranspose2d, Linear, VarBuilder, VarMap};

    use super::*;
    use crate::pass::{backward, GradientSums};

    const DOWN: ConvParams = ConvParams { stride: 2, padding: 1 };

    /// A discriminator-like and a generator-like stack of every kind of step, on a small batch.
    struct Layers {
        vars: VarMap,
        conv1: Conv2d,
        conv2: Conv2d,
        bn2: BatchNorm,
        fc: Linear,
        bn_fc: BatchNorm,
        deconv: ConvTranspose2d,
        bn3: BatchNorm,
    }

    impl Layers {
        fn new() -> Self {
            let vars = VarMap::new();
            let vb = VarBuilder::from_varmap(&vars, DType::F32, &Device::Cpu);
            let conv = candle_nn::Conv2dConfig { padding: 1, stride: 2, ..Default::default() };
            let up = candle_nn::ConvTranspose2dConfig { padding: 1, stride: 2, ..Default::default() };
            let layers = Self {
                conv1: candle_nn::conv2d(3, 4, 4, conv, vb.pp("conv1")).unwrap(),
                conv2: candle_nn::conv2d(4, 6, 4, conv, vb.pp("conv2")).unwrap(),
                bn2: candle_nn::batch_norm(6, 1e-5, vb.pp("bn2")).unwrap(),
                fc: candle_nn::linear(24, 20, vb.pp("fc")).unwrap(),
                bn_fc: candle_nn::batch_norm(20, 1e-5, vb.pp("bn_fc")).unwrap(),
                deconv: candle_nn::conv_transpose2d(5, 2, 4, up, vb.pp("deconv")).unwrap(),
                bn3: candle_nn::batch_norm(2, 1e-5, vb.pp("bn3")).unwrap(),
                vars,
            };
            // Values with long mantissas of both signs, the same for every build of the layers.
            for (i, (_, var)) in layers.sorted_vars().into_iter().enumerate() {
                let n = var.elem_count();
                let values: Vec<f32> = (0..n).map(|j| ((j * 7 + i * 13) as f32 * 0.37).sin() * 0.3).collect();
                var.set(&Tensor::from_vec(values, var.shape(), &Device::Cpu).unwrap()).unwrap();
            }
            layers
        }

        fn sorted_vars(&self) -> Vec<(String, Var)> {
            let mut vars: Vec<_> =
                self.vars.data().lock().unwrap().iter().map(|(n, v)| (n.clone(), v.clone())).collect();
            vars.sort_by(|a, b| a.0.cmp(&b.0));
            vars
        }

        /// conv+leaky → conv → BN+leaky → (reshape) → linear → BN+ReLU → reshape → transposed conv → BN, with
        /// the `detour`'s candle ops and unfused activations.
        fn sequence(&self, x: &Tensor, pass: &Pass, detour: Detour) -> Result<Tensor> {
            let (first, leaky) = detour.activations();
            let batch = x.dim(0)?;
            let s = Sequence::new(x, pass);
            let s = if detour == Detour::Edges { s.then(|x| x * 1.5)? } else { s };
            let s = s
                .conv2d(&self.conv1, DOWN, first)?
                .conv2d(&self.conv2, DOWN, Activation::Identity)?
                .batch_norm(&self.bn2, leaky)?
                .linear(&self.fc)?
                .batch_norm(&self.bn_fc, Activation::Relu)?
                .reshape((batch, 5, 2, 2))?;
            let s = if detour == Detour::Middle { s.then(|x| x * 1.5)? } else { s };
            let s = s.conv_transpose2d(&self.deconv, DOWN)?.batch_norm(&self.bn3, Activation::Identity)?;
            if detour == Detour::Edges {
                s.then(|x| x * 0.5)?.finish()
            } else {
                s.finish()
            }
        }

        /// The same layers, each its own node.
        fn each(&self, x: &Tensor, pass: &Pass, detour: Detour) -> Result<Tensor> {
            let (first, leaky) = detour.activations();
            let x = if detour == Detour::Edges { (x * 1.5)? } else { x.clone() };
            let (w, b) = (|c: &Conv2d| c.weight().clone(), |c: &Conv2d| c.bias().cloned());
            let x = conv2d_activation(&x, &w(&self.conv1), b(&self.conv1).as_ref(), DOWN, first, pass)?;
            let x = crate::conv::conv2d(&x, &w(&self.conv2), b(&self.conv2).as_ref(), DOWN, pass)?;
            let x = batch_norm_activation(&self.bn2, &x, leaky, pass)?;
            let x = batch_norm_activation(&self.bn_fc, &linear(&self.fc, &x, pass)?, Activation::Relu, pass)?;
            let x = x.reshape((x.dim(0)?, 5, 2, 2))?;
            let x = if detour == Detour::Middle { (x * 1.5)? } else { x };
            let (dw, db) = (self.deconv.weight(), self.deconv.bias());
            let x = crate::batch_norm::batch_norm(&self.bn3, &conv_transpose2d(&x, dw, db, DOWN, pass)?, pass)?;
            if detour == Detour::Edges {
                x * 0.5
            } else {
                Ok(x)
            }
        }
    }

    /// What splits a sequence into several nodes: nothing; a candle op in the middle and an activation that
    /// does not fuse (candle's op) on the first BatchNorm; or a candle op first and last, and an activation
    /// that does not fuse on the first layer.
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Detour {
        None,
        Middle,
        Edges,
    }

    impl Detour {
        /// The activations of the first convolution and of the first BatchNorm.
        fn activations(self) -> (Activation, Activation) {
            let (fused, unfused) = (Activation::LeakyRelu(0.2), Activation::LeakyRelu(-0.5));
            match self {
                Self::None => (fused, fused),
                Self::Middle => (fused, unfused),
                Self::Edges => (unfused, fused),
            }
        }
    }

    fn images(track: bool) -> Tensor {
        let x = Tensor::arange(0f32, 2.0 * 3.0 * 64.0, &Device::Cpu).unwrap().reshape((2, 3, 8, 8)).unwrap();
        let x = (x * 0.61).unwrap().cos().unwrap();
        if track {
            Var::from_tensor(&x).unwrap().into_inner()
        } else {
            x
        }
    }

    fn bits(t: &Tensor) -> Vec<u32> {
        t.flatten_all().unwrap().to_vec1::<f32>().unwrap().iter().map(|v| v.to_bits()).collect()
    }

    /// The bits of a gradient, −0 read as +0: candle's `zeros + gradient` between two nodes makes a −0 of a
    /// gradient +0, a sequence hands it on as it is, and a zero's sign then reaches the sign of other zero
    /// gradients (never a value that is not zero, nor the Adam update of a zero gradient: its moments start at +0).
    fn gradient_bits(t: &Tensor) -> Vec<u32> {
        bits(t).into_iter().map(|b| if b == (-0f32).to_bits() { 0 } else { b }).collect()
    }

    /// The output, the input's gradient (if it takes one) and every parameter's gradient and running
    /// statistics, as bits, after a forward pass in `pass` (`summed` into fresh sums or frozen) and a
    /// backward pass of a loss that weights every output differently.
    fn outcome(layers: &Layers, track_input: bool, frozen: bool, one_node: bool, detour: Detour) -> Vec<Vec<u32>> {
        let sums = Arc::new(GradientSums::default());
        let pass = Pass::training(Ops::Fast);
        let pass = if frozen { pass.frozen() } else { pass.summing_into(&sums) };
        let x = images(track_input);
        let y = if one_node { layers.sequence(&x, &pass, detour) } else { layers.each(&x, &pass, detour) }.unwrap();
        let weights = (Tensor::arange(0f32, y.elem_count() as f32, &Device::Cpu).unwrap() * 0.3).unwrap().sin();
        let loss = (y.flatten_all().unwrap() * weights.unwrap()).unwrap().sum_all().unwrap();
        let grads = backward(&loss, &sums).unwrap();
        let mut outcome = vec![bits(&y)];
        outcome.push(grads.get(&x).map(gradient_bits).unwrap_or_default());
        for (name, var) in layers.sorted_vars() {
            let got = grads.get(var.as_tensor());
            if name.contains("running") {
                assert!(got.is_none(), "{name}: a gradient");
                outcome.push(bits(var.as_tensor()));
            } else if frozen {
                // None, but for a layer that runs through candle's op (its variables are not detached there).
                outcome.push(got.map(gradient_bits).unwrap_or_default());
            } else {
                assert!(grads.reaches(var.as_tensor()), "{name}: not counted as reached");
                outcome.push(gradient_bits(got.unwrap_or_else(|| panic!("{name}: no gradient"))));
            }
        }
        outcome
    }

    #[test]
    fn a_sequence_gives_the_values_and_gradients_of_its_layers_each_a_node_to_the_bit() {
        // D step on real images (input without a graph, parameters summed), D step on fakes kept with their graph,
        // G step through a frozen D (input gradient only); each whole, and split by candle ops and unfused
        // activations in the middle and at both ends.
        for (track_input, frozen) in [(false, false), (true, false), (true, true)] {
            for detour in [Detour::None, Detour::Middle, Detour::Edges] {
                let (each, once) = (Layers::new(), Layers::new());
                let expected = outcome(&each, track_input, frozen, false, detour);
                let got = outcome(&once, track_input, frozen, true, detour);
                assert_eq!(got.len(), expected.len());
                for (i, (got, expected)) in got.iter().zip(&expected).enumerate() {
                    assert!(
                        !expected.is_empty() || (i == 1 && !track_input) || (frozen && i >= 2),
                        "outcome {i} is empty"
                    );
                    let first = got.iter().zip(expected).position(|(a, b)| a != b);
                    let show = |v: &[u32]| first.map(|j| f32::from_bits(v[j]));
                    assert!(
                        first.is_none(),
                        "outcome {i} (input {track_input}, frozen {frozen}, {detour:?}) at {first:?}: {:?} against {:?}",
                        show(got),
                        show(expected)
                    );
                }
            }
        }
    }

    #[test]
    fn a_sequence_is_one_node_where_the_pass_allows_and_its_layers_elsewhere() {
        let layers = Layers::new();
        let sums = Arc::new(GradientSums::default());
        let nodes = |y: &Tensor| y.sorted_nodes().len();
        // Summed: the node, and its anchor (the first parameter that takes a gradient).
        let summed = Pass::training(Ops::Fast).summing_into(&sums);
        assert_eq!(nodes(&layers.sequence(&images(false), &summed, Detour::None).unwrap()), 2);
        // The input takes a gradient, the parameters none: the node and its input (twice an argument).
        let frozen = Pass::training(Ops::Fast).frozen();
        assert_eq!(nodes(&layers.sequence(&images(true), &frozen, Detour::None).unwrap()), 2);
        // Split by the candle op and the unfused activation: more nodes, fewer than a node per layer.
        let split = nodes(&layers.sequence(&images(false), &summed, Detour::Middle).unwrap());
        let each = nodes(&layers.each(&images(false), &summed, Detour::Middle).unwrap());
        assert!(2 < split && split < each, "{split} nodes split, {each} each its own");
        // Trainable parameters go to candle's backward pass: every layer is its own node.
        let trainable = Pass::training(Ops::Fast);
        let (one, each) = (
            layers.sequence(&images(false), &trainable, Detour::None),
            layers.each(&images(false), &trainable, Detour::None),
        );
        assert_eq!(nodes(&one.unwrap()), nodes(&each.unwrap()));
        // Inference: each layer is what its function makes of it.
        let inference = Pass::inference(Ops::Fast);
        let (one, each) = (
            layers.sequence(&images(false), &inference, Detour::None),
            layers.each(&images(false), &inference, Detour::None),
        );
        assert_eq!(nodes(&one.unwrap()), nodes(&each.unwrap()));
    }
}
