//! CPU kernels for the layers where candle's CPU path is slow, used transparently: on other devices (CUDA) and
//! dtypes, and in a pass that asks for candle's ops ([`Ops::Candle`]), each function is candle's own op.
//!
//! Every layer function takes a [`Pass`]: which implementation runs, BatchNorm's mode, and whether the
//! parameters are constants or have their gradients summed in place ([`Parameters`], [`backward`]). So do the
//! traits the training loop drives a generator and a discriminator through ([`Generator`], [`Discriminator`]),
//! which is why they live here.
//!
//! Each layer is one autograd node with a hand-written backward pass. Candle's backward pass accumulates every
//! node's gradient as `zeros + gradient` (a fill and an add over the whole tensor), and a layer built from
//! tensor ops (matmul, transpose, reshape, broadcast bias add) is five to eight nodes, each with that fill and
//! add, and a bias gradient that is a strided reduction.
//!
//! - [`linear`] and the convolutions ([`conv2d`], [`conv_transpose2d`]): the bias is added in the pass that
//!   writes the output, and forward and backward are matrix products through the `gemm` crate (the one candle's
//!   CPU matmul calls) on views that read transposed operands in place (`matmul`). A convolution is
//!   `im2row(x) · Wᵀ` (one row of patch values per output position), a transposed convolution `row2im(x · W)`;
//!   im2row and row2im are each other's adjoint, so each appears in the other's backward pass, and both work one
//!   batch item at a time on a zero-padded copy in cache. The gradient of an input that needs none (the images,
//!   a detached fake) is not computed. In a [`Parameters::Summed`] pass the variables' gradients are summed in
//!   place (`parameter_grad`, [`GradientSums`]) instead of by candle.
//! - [`batch_norm`] in training mode (with the activation after it): statistics, normalisation, scale, shift
//!   and activation in one op, vectorised passes along memory.
//! - [`leaky_relu`]: `candle_nn::ops::leaky_relu` is `max(x, 0) + min(x, 0)·slope`, five tensors forward and two
//!   masked comparisons backward; here one pass each way.
//! - [`Sequence`]: the layers of a network body one after another as one autograd node, where the parameters'
//!   gradients are summed in place or not taken: each layer's input gradient goes straight to the backward pass
//!   of the layer before it, without candle's fill and add between them.

mod activation;
mod batch_norm;
mod conv;
mod layer_op;
mod linear;
mod matmul;
mod model;
mod pass;
mod sequence;
mod sums;
mod tensors;
mod transpose;
mod unwritten;
mod vectorised;

pub use activation::{leaky_relu, Activation};
pub use batch_norm::{batch_norm, batch_norm_activation};
pub use conv::{conv2d, conv2d_activation, conv_transpose2d, ConvParams};
pub use linear::linear;
pub use matmul::product_instruction_set;
pub use model::{Discriminator, DiscriminatorOutput, Generator};
pub use pass::{backward, GradientSums, Gradients, Ops, Parameters, Pass};
pub use sequence::Sequence;
