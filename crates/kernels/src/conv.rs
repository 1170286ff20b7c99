//! Convolution and transposed convolution (square kernel, dilation 1, one group: what the networks use), each
//! one autograd node whose forward and backward passes are matrix products between im2row/row2im shuffles.

mod passes;

use std::mem::MaybeUninit;
use std::sync::{Arc, OnceLock};

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use self::passes::{
    channels_to_rows, channels_to_rows_in_parallel, item_blocks, kept_or_scratch, Geometry, Scratch, ToChannels,
    BLOCK_BYTES,
};
use crate::activation::Activation;
use crate::layer_op::{LayerOp, StepOp};
use crate::matmul::{product_in_thread, product_onto, transposed, MatRef};
use crate::pass::{GradientSums, Pass};
use crate::sums::{bias_gradient, channel_totals, column_sums, Dims, Order};
use crate::tensors::{add_to_sum, bias_or_zeros, contiguous_f32, fast_path, parameter, parameter_grad, with_values};
use crate::unwritten::Unwritten;

/// Stride and padding of a square-kernel convolution (dilation 1, one group: what the networks use).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvParams {
    pub stride: usize,
    pub padding: usize,
}

/// candle's path: its op, then the bias broadcast over the batch and the image.
fn add_bias(y: Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    match bias {
        Some(bias) => y.broadcast_add(&bias.reshape((1, bias.elem_count(), 1, 1))?),
        None => Ok(y),
    }
}

/// 2-D convolution of `x` (batch, c_in, h, w) with `weight` (c_out, c_in, k, k) and an optional `bias` (c_out),
/// as `candle_nn::Conv2d` computes it.
///
/// ```
/// use candle_core::{DType, Device, Tensor};
/// use ssinfogan_kernels::{conv2d, ConvParams, Ops, Pass};
/// let x = Tensor::ones((2, 1, 28, 28), DType::F32, &Device::Cpu).unwrap();
/// let kernel = Tensor::ones((64, 1, 4, 4), DType::F32, &Device::Cpu).unwrap();
/// let down = ConvParams { stride: 2, padding: 1 };
/// let y = conv2d(&x, &kernel, None, down, &Pass::inference(Ops::Fast)).unwrap();
/// assert_eq!(y.dims(), &[2, 64, 14, 14]);
/// ```
pub fn conv2d(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>, params: ConvParams, pass: &Pass) -> Result<Tensor> {
    conv2d_activation(x, weight, bias, params, Activation::Identity, pass)
}

/// [`conv2d`] then `activation`, in the same op on the CPU (the activation's derivative read off the output).
pub fn conv2d_activation(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    params: ConvParams,
    activation: Activation,
    pass: &Pass,
) -> Result<Tensor> {
    match conv2d_op(x, weight, bias, params, activation, pass)? {
        Some(op) => op.node(),
        None => {
            let ConvParams { stride, padding } = params;
            activation.apply(add_bias(x.conv2d(weight, padding, stride, 1, 1)?, bias)?, pass.ops)
        }
    }
}

/// The op of [`conv2d_activation`] with its inputs, or `None` where candle's op computes it (another device or
/// dtype, a non-square or empty kernel, an activation that does not fuse).
pub(crate) fn conv2d_op(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    params: ConvParams,
    activation: Activation,
    pass: &Pass,
) -> Result<Option<LayerOp<Conv2d>>> {
    let ConvParams { stride, padding } = params;
    let (Ok(x_dims), Ok(w_dims)) = (x.dims4(), weight.dims4()) else {
        candle_core::bail!("conv2d: input {:?} and kernel {:?} must be 4-D", x.shape(), weight.shape());
    };
    let ((_, c_in, height, width), (_, k_in, kernel, kernel_w)) = (x_dims, w_dims);
    if k_in != c_in || stride == 0 || height.min(width) + 2 * padding < kernel.max(kernel_w) {
        candle_core::bail!("conv2d: input {:?} does not fit kernel {:?} ({params:?})", x.shape(), weight.shape());
    }
    let fast = fast_path(x, weight, pass) && kernel_w == kernel && weight.elem_count() > 0 && x.elem_count() > 0;
    let Some(negative_slope) = activation.negative_slope().filter(|_| fast) else {
        return Ok(None);
    };
    let (batch, c_out) = (x_dims.0, w_dims.0);
    let geometry = Geometry {
        batch,
        channels: c_in,
        height,
        width,
        kernel,
        stride,
        padding,
        grid_h: (height + 2 * padding - kernel) / stride + 1,
        grid_w: (width + 2 * padding - kernel) / stride + 1,
    };
    let bias = bias_or_zeros(bias, c_out, x, "conv2d", pass)?;
    let weight = parameter(weight, pass).contiguous()?;
    // The patch rows are kept for the kernel's gradient, if it takes one.
    let keep_rows = weight.track_op();
    let input_grad = x.track_op();
    let op =
        Conv2d { geometry, c_out, negative_slope, keep_rows, input_grad, rows: OnceLock::new(), sums: pass.sums() };
    Ok(Some(LayerOp::new(x.contiguous()?, weight, bias, op)))
}

/// Transposed 2-D convolution of `x` (batch, c_in, h, w) with `weight` (c_in, c_out, k, k) and an optional
/// `bias` (c_out), output padding 0, as `candle_nn::ConvTranspose2d` computes it: the adjoint of [`conv2d`].
pub fn conv_transpose2d(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    params: ConvParams,
    pass: &Pass,
) -> Result<Tensor> {
    match conv_transpose2d_op(x, weight, bias, params, pass)? {
        Some(op) => op.node(),
        None => {
            let ConvParams { stride, padding } = params;
            add_bias(x.conv_transpose2d(weight, padding, 0, stride, 1)?, bias)
        }
    }
}

/// The op of [`conv_transpose2d`] with its inputs, or `None` where candle's op computes it (another device or
/// dtype, a non-square or empty kernel).
pub(crate) fn conv_transpose2d_op(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    params: ConvParams,
    pass: &Pass,
) -> Result<Option<LayerOp<ConvTranspose2d>>> {
    let ConvParams { stride, padding } = params;
    let (Ok(x_dims), Ok(w_dims)) = (x.dims4(), weight.dims4()) else {
        candle_core::bail!("conv_transpose2d: input {:?} and kernel {:?} must be 4-D", x.shape(), weight.shape());
    };
    let ((_, c_in, height, width), (k_in, _, kernel, kernel_w)) = (x_dims, w_dims);
    if k_in != c_in || stride == 0 || height.min(width) == 0 || kernel.min(kernel_w) <= 2 * padding {
        let (x, w) = (x.shape(), weight.shape());
        candle_core::bail!("conv_transpose2d: input {x:?} does not fit kernel {w:?} ({params:?})");
    }
    if !fast_path(x, weight, pass) || kernel_w != kernel || weight.elem_count() == 0 {
        return Ok(None);
    }
    let (batch, c_out) = (x_dims.0, w_dims.1);
    // The output is the image side of a convolution whose patch grid is the input.
    let geometry = Geometry {
        batch,
        channels: c_out,
        height: (height - 1) * stride + kernel - 2 * padding,
        width: (width - 1) * stride + kernel - 2 * padding,
        kernel,
        stride,
        padding,
        grid_h: height,
        grid_w: width,
    };
    let bias = bias_or_zeros(bias, c_out, x, "conv_transpose2d", pass)?;
    let weight = parameter(weight, pass).contiguous()?;
    let keep_input = weight.track_op();
    let input_grad = x.track_op();
    let op = ConvTranspose2d { geometry, c_in, keep_input, input_grad, input: OnceLock::new(), sums: pass.sums() };
    Ok(Some(LayerOp::new(x.contiguous()?, weight, bias, op)))
}

fn no_saved(op: &str) -> candle_core::Error {
    candle_core::Error::Msg(format!("{op}: backward pass without a forward pass"))
}

/// (x, kernel, bias) → `im2row(x) · Wᵀ + b`, laid out (batch, c_out, grid_h, grid_w).
///
/// The product runs in this orientation, (batch·grid) × (c_in·k²) rows times the kernel, rather than as
/// `W · im2col(x)`: the `gemm` crate is faster with the long side as the output's rows, and im2row and its
/// adjoint work one batch item at a time in cache.
///
/// The forward pass, the input gradient and a small kernel's whole backward pass work through the batch in
/// blocks of items (about a megabyte of data each, [`item_blocks`]), each block's layout changes and product on
/// one thread one after the other, so that what one step writes the next reads from the core's cache. Made
/// whole, the intermediate arrays are tens of megabytes each (the product of the gradient with the kernel is
/// 25 MB for the discriminator's 64→128 convolution at batch 128), and every pass over them goes to memory.
pub(crate) struct Conv2d {
    geometry: Geometry,
    c_out: usize,
    /// The activation's factor for values ≤ 0 (1: none).
    negative_slope: f32,
    /// Whether the forward pass keeps im2row(x) for the kernel gradient (not for a frozen kernel).
    keep_rows: bool,
    /// Whether the backward pass computes the input's gradient (not for the images).
    input_grad: bool,
    /// im2row(x), for the kernel gradient.
    rows: OnceLock<Vec<f32>>,
    /// Where the backward pass sums the variables' gradients, if the forward pass was asked to.
    sums: Option<Arc<GradientSums>>,
}

impl CustomOp3 for Conv2d {
    fn name(&self) -> &'static str {
        "conv2d"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (g, c_out) = (self.geometry, self.c_out);
        let (x, w, bias) =
            (contiguous_f32(s1, l1, "conv2d")?, contiguous_f32(s2, l2, "conv2d")?, contiguous_f32(s3, l3, "conv2d")?);
        let (positions, row_len) = g.rows_shape();
        if x.len() != g.image_len() || w.len() != c_out * row_len || bias.len() != c_out {
            candle_core::bail!(
                "conv2d: {} inputs, {} kernel values, {} biases for {g:?}",
                x.len(),
                w.len(),
                bias.len()
            );
        }
        let grid = g.grid_h * g.grid_w;
        let (block, out_item) = (grid * row_len, c_out * grid);
        let mut rows = Vec::new();
        let mut kept = self.keep_rows.then(|| Unwritten::new(&mut rows, positions * row_len));
        let mut y = Vec::new();
        let mut out = Unwritten::new(&mut y, g.batch * out_item);
        // Each block of items on one thread: its patch rows, their product with the kernel and its transpose
        // into the output, while the rows and the product are in cache.
        // The kernel as patch row × c_out, transposed once here: `gemm` runs the block products 20–30% faster on
        // a right-hand operand whose rows are contiguous than through a transposed view. The bits are the same
        // wherever a product has more than 256 outputs in more than one row and column (every block of the
        // networks' layers): `gemm` 0.19 sums smaller products whose operands suit it as dot products, and single
        // rows as matrix-vector products, each in an order of its own.
        let kernel_rows = transposed(w, c_out, row_len);
        let kernel = MatRef::new(&kernel_rows, row_len, c_out);
        let then = ToChannels { kernel, channels: c_out, bias: Some(bias), negative_slope: self.negative_slope };
        let bytes_per_item = (block + out_item) * 4;
        g.im2row_product(x, Some(then), out.values(), kept.as_mut().map(Unwritten::values), bytes_per_item);
        // SAFETY: `im2row_product` writes every value of the output and of the kept rows.
        unsafe { out.assume_written() };
        if let Some(kept) = kept {
            // SAFETY: `im2row_product` wrote every value of the kept rows (each block all of its part).
            unsafe { kept.assume_written() };
            let _ = self.rows.set(rows);
        }
        Ok((CpuStorage::F32(y), (g.batch, c_out, g.grid_h, g.grid_w).into()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        bias: &Tensor,
        y: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (g, c_out) = (self.geometry, self.c_out);
        let (positions, row_len) = g.rows_shape();
        let grid = g.grid_h * g.grid_w;
        // The rows of the forward pass, unless the kernel is frozen (then it kept none).
        let rows = match self.rows.get() {
            Some(rows) => Some(rows),
            None if !w.track_op() => None,
            None => return Err(no_saved("conv2d")),
        };
        // A kernel of at most an eighth of a block (128 KB: D's first convolution, 4 KB) is summed per block:
        // the blocks' shares cost less than the whole-batch gradient rows would. (D's second, 512 KB, is not.)
        if c_out * row_len * 4 * 8 <= BLOCK_BYTES {
            return self.small_kernel_bwd(x, w, bias, y, &grad.contiguous()?, rows);
        }
        // ∂L/∂Y as rows (batch·grid) × c_out, before the activation: its derivative read off the output, which
        // keeps the sign.
        let slope = self.negative_slope;
        let grad_y = with_values(&grad.contiguous()?, "conv2d", |grad| match slope {
            1.0 => Ok(channels_to_rows_in_parallel(grad, None, 1.0, g.batch, c_out, grid)),
            _ => with_values(y, "conv2d", |y| {
                Ok(channels_to_rows_in_parallel(grad, Some(y), slope, g.batch, c_out, grid))
            }),
        })?;
        let sums = self.sums.as_deref();
        let grad_bias = parameter_grad(sums, bias, |sum| add_to_sum(sum, column_sums(&grad_y, positions, c_out)))?;
        let grad_y = MatRef::new(&grad_y, positions, c_out);
        // ∂L/∂W = ∂L/∂Yᵀ · im2row(x), unless the kernel is frozen (then the forward pass kept no rows).
        let grad_w = match rows {
            Some(rows) => {
                parameter_grad(sums, w, |sum| product_onto(sum, grad_y.t(), MatRef::new(rows, positions, row_len)))?
            }
            None => None,
        };
        // ∂L/∂x = row2im(∂L/∂Y · W), only where x needs one (not the images): in blocks of items, each block's
        // product (the largest array of the step if made whole: 25 MB for the discriminator's second
        // convolution at batch 128) summed into its images on one thread while it is in cache.
        let grad_x = if self.input_grad {
            let image = g.item_len();
            let grad_x = with_values(w, "conv2d", |w| {
                let w = MatRef::new(w, c_out, row_len);
                let grad_y = grad_y.data();
                let mut grad_x = Vec::new();
                let mut out = Unwritten::new(&mut grad_x, g.image_len());
                let blocks = item_blocks(g.batch, (grid * row_len + image) * 4, out.values(), image, None, 0);
                blocks.into_par_iter().for_each_init(Vec::new, |product, b| {
                    let item_rows = grid * c_out;
                    let rows = &grad_y[b.first * item_rows..][..b.items * item_rows];
                    g.row2im_product(MatRef::new(rows, b.items * grid, c_out), w, None, product, b.out);
                });
                // SAFETY: `row2im_product` writes every value of each block's images, and the blocks cover `out`.
                unsafe { out.assume_written() };
                Ok(grad_x)
            })?;
            Some(Tensor::from_vec(grad_x, x.shape(), x.device())?)
        } else {
            None
        };
        Ok((grad_x, grad_w, grad_bias))
    }
}

impl Conv2d {
    /// The backward pass of a convolution with a small kernel (the discriminator's first: 64 × 16 values) all in
    /// blocks of items: each block's ∂L/∂Y rows are made in cache and give the block's shares of the kernel and
    /// bias gradients and its part of ∂L/∂x, and the shares are added up in block order (a kernel-sized sum per
    /// block, cheap for a small kernel). The rows, 6.4 MB for that convolution at batch 128, never go to memory.
    fn small_kernel_bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        bias: &Tensor,
        y: &Tensor,
        grad: &Tensor,
        rows: Option<&Vec<f32>>,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (g, c_out, slope) = (self.geometry, self.c_out, self.negative_slope);
        let (_, row_len) = g.rows_shape();
        let (grid, image) = (g.grid_h * g.grid_w, g.item_len());
        let need_x = self.input_grad;
        let (out_item, grad_item) = (if need_x { image } else { 0 }, c_out * grid);
        // The same blocks whether x takes a gradient or not, so that the kernel's shares add up in the same order.
        let bytes_per_item = (2 * grad_item + grid * row_len + image) * 4;
        let mut shares: Vec<(Vec<f64>, Option<Vec<f32>>)> = Vec::new();
        let grad_x = with_values(grad, "conv2d", |grad| {
            with_values(y, "conv2d", |y| {
                with_values(w, "conv2d", |w| {
                    let w = MatRef::new(w, c_out, row_len);
                    let mut grad_x = Vec::new();
                    let mut out = Unwritten::new(&mut grad_x, g.batch * out_item);
                    let blocks = item_blocks(g.batch, bytes_per_item, out.values(), out_item, None, 0);
                    shares = blocks
                        .into_par_iter()
                        .map_init(Scratch::default, |Scratch { rows: grad_rows, product }, b| {
                            let span = b.first * grad_item..(b.first + b.items) * grad_item;
                            let (grad, y) = (&grad[span.clone()], &y[span]);
                            // ∂L/∂Y as rows, before the activation (its derivative read off the output).
                            let mut room = Unwritten::new(grad_rows, b.items * grad_item);
                            let output = (slope != 1.0).then_some(y);
                            channels_to_rows(grad, output, slope, room.values(), c_out, grid);
                            // SAFETY: `channels_to_rows` writes every value of the block's rows.
                            let grad_rows = unsafe { room.assume_written() };
                            let m = b.items * grid;
                            let grad_rows = MatRef::new(grad_rows, m, c_out);
                            let dims = Dims { n: m, c: c_out, s: 1 };
                            let bias_share = channel_totals(grad_rows.data(), dims, Order::Sequential);
                            let kernel_share = rows.map(|rows| {
                                let mut share = Vec::new();
                                let rows = MatRef::new(&rows[b.first * grid * row_len..][..m * row_len], m, row_len);
                                product_in_thread(&mut share, grad_rows.t(), rows);
                                share
                            });
                            if need_x {
                                g.row2im_product(grad_rows, w, None, product, b.out);
                            }
                            (bias_share, kernel_share)
                        })
                        .collect();
                    // SAFETY: `row2im_product` writes every value of each block's images, and the blocks cover
                    // `out` (which is empty when x takes no gradient).
                    unsafe { out.assume_written() };
                    Ok(grad_x)
                })
            })
        })?;
        let sums = self.sums.as_deref();
        let grad_bias = parameter_grad(sums, bias, |sum| {
            let mut total = vec![0f64; c_out];
            for (share, _) in &shares {
                total.iter_mut().zip(share).for_each(|(t, s)| *t += s);
            }
            add_to_sum(sum, total.into_iter().map(|t| t as f32).collect())
        })?;
        let grad_w = match rows {
            Some(_) => parameter_grad(sums, w, |sum| {
                let mut total = vec![0f32; c_out * row_len];
                for share in shares.iter().filter_map(|(_, share)| share.as_ref()) {
                    total.iter_mut().zip(share).for_each(|(t, s)| *t += s);
                }
                add_to_sum(sum, total)
            })?,
            None => None,
        };
        let grad_x = if need_x { Some(Tensor::from_vec(grad_x, x.shape(), x.device())?) } else { None };
        Ok((grad_x, grad_w, grad_bias))
    }
}

/// (x, kernel, bias) → `row2im(x · W) + b`, laid out (batch, c_out, height, width): x as rows (batch·grid) ×
/// c_in, each row's product with the kernel (c_in × c_out·k²) one patch of the output. In blocks of items, as
/// [`Conv2d`].
pub(crate) struct ConvTranspose2d {
    /// The output is the image side; the input is the patch grid.
    geometry: Geometry,
    c_in: usize,
    /// Whether the forward pass keeps x as rows for the kernel gradient (not for a frozen kernel).
    keep_input: bool,
    /// Whether the backward pass computes the input's gradient.
    input_grad: bool,
    /// x as rows (batch·grid) × c_in, for the kernel gradient.
    input: OnceLock<Vec<f32>>,
    /// Where the backward pass sums the variables' gradients, if the forward pass was asked to.
    sums: Option<Arc<GradientSums>>,
}

impl CustomOp3 for ConvTranspose2d {
    fn name(&self) -> &'static str {
        "conv-transpose2d"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (g, c_in) = (self.geometry, self.c_in);
        let name = self.name();
        let (x, w, bias) =
            (contiguous_f32(s1, l1, name)?, contiguous_f32(s2, l2, name)?, contiguous_f32(s3, l3, name)?);
        let (positions, row_len) = g.rows_shape();
        if x.len() != c_in * positions || w.len() != c_in * row_len || bias.len() != g.channels {
            candle_core::bail!(
                "{name}: {} inputs, {} kernel values, {} biases for {g:?}",
                x.len(),
                w.len(),
                bias.len()
            );
        }
        let (grid, image) = (g.grid_h * g.grid_w, g.item_len());
        let (input_item, block) = (c_in * grid, grid * row_len);
        let w = MatRef::new(w, c_in, row_len);
        let mut input = Vec::new();
        let mut kept = self.keep_input.then(|| Unwritten::new(&mut input, positions * c_in));
        let mut y = Vec::new();
        let mut out = Unwritten::new(&mut y, g.image_len());
        // Each block of items on one thread: its input as rows, their product with the kernel and its sum into
        // the output images, while the product is in cache.
        let kept_part = kept.as_mut().map(Unwritten::values);
        let blocks = item_blocks(g.batch, (block + input_item + image) * 4, out.values(), image, kept_part, input_item);
        blocks.into_par_iter().for_each_init(Scratch::default, |Scratch { rows, product }, b| {
            let items = &x[b.first * input_item..][..b.items * input_item];
            let as_rows = |out: &mut [MaybeUninit<f32>]| channels_to_rows(items, None, 1.0, out, c_in, grid);
            // SAFETY: `channels_to_rows` writes every value of the block's rows.
            let input = unsafe { kept_or_scratch(b.kept, rows, b.items * input_item, as_rows) };
            g.row2im_product(MatRef::new(input, b.items * grid, c_in), w, Some(bias), product, b.out);
        });
        // SAFETY: every block wrote all of its part of the output (`row2im_product`) and of the kept input rows
        // (`channels_to_rows`), and the blocks cover both.
        unsafe { out.assume_written() };
        if let Some(kept) = kept {
            // SAFETY: every block wrote all of its part of the kept input rows (`channels_to_rows`).
            unsafe { kept.assume_written() };
            let _ = self.input.set(input);
        }
        Ok((CpuStorage::F32(y), (g.batch, g.channels, g.height, g.width).into()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        bias: &Tensor,
        _y: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (g, c_in) = (self.geometry, self.c_in);
        let name = self.name();
        let (positions, row_len) = g.rows_shape();
        let (grid, image) = (g.grid_h * g.grid_w, g.item_len());
        let (input_item, block) = (c_in * grid, grid * row_len);
        let (keep_rows, need_x) = (w.track_op(), self.input_grad);
        let mut grad_rows = Vec::new();
        let mut kept = keep_rows.then(|| Unwritten::new(&mut grad_rows, positions * row_len));
        // Each block of items on one thread: im2row(∂L/∂Y), kept for the kernel gradient if it takes one, and
        // ∂L/∂x = im2row(∂L/∂Y) · Wᵀ back in (batch, c_in, grid) order while the rows are in cache (if x needs
        // a gradient): a convolution's forward pass.
        let out_item = if need_x { input_item } else { 0 };
        // Nothing but the bias takes a gradient: no patch rows to make.
        let patch_rows = keep_rows || need_x;
        let (grad_x, grad_bias) = with_values(&grad.contiguous()?, name, |grad| {
            let grad_bias = parameter_grad(self.sums.as_deref(), bias, |sum| {
                add_to_sum(sum, bias_gradient(grad, g.image_dims(), Order::RunsThenBatch))
            })?;
            let grad_x = with_values(w, name, |w| {
                // The kernel transposed once, as in `Conv2d`'s forward pass, which this is.
                let kernel_rows = need_x.then(|| transposed(w, c_in, row_len));
                let then = kernel_rows.as_deref().map(|rows| ToChannels {
                    kernel: MatRef::new(rows, row_len, c_in),
                    channels: c_in,
                    bias: None,
                    negative_slope: 1.0,
                });
                let mut grad_x = Vec::new();
                let mut out = Unwritten::new(&mut grad_x, g.batch * out_item);
                if patch_rows {
                    let kept = kept.as_mut().map(Unwritten::values);
                    g.im2row_product(grad, then, out.values(), kept, (block + out_item + image) * 4);
                }
                // SAFETY: `im2row_product` writes every value of the output (none when x takes no gradient).
                unsafe { out.assume_written() };
                Ok(grad_x)
            })?;
            Ok((grad_x, grad_bias))
        })?;
        // ∂L/∂W = xᵀ · im2row(∂L/∂Y), unless the kernel is frozen.
        let grad_w = if let Some(kept) = kept {
            // SAFETY: `im2row_product` above wrote every one of the kept rows' values.
            let grad_rows = unsafe { kept.assume_written() };
            let input = self.input.get().ok_or_else(|| no_saved(name))?;
            let grad_rows = MatRef::new(grad_rows, positions, row_len);
            let sums = self.sums.as_deref();
            parameter_grad(sums, w, |sum| product_onto(sum, MatRef::new(input, positions, c_in).t(), grad_rows))?
        } else {
            None
        };
        let grad_x = if need_x { Some(Tensor::from_vec(grad_x, x.shape(), x.device())?) } else { None };
        Ok((grad_x, grad_w, grad_bias))
    }
}

impl StepOp for Conv2d {
    fn set_input_grad(&mut self, needed: bool) {
        self.input_grad = needed;
    }
}

impl StepOp for ConvTranspose2d {
    fn set_input_grad(&mut self, needed: bool) {
        self.input_grad = needed;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pass::Ops;
    use candle_core::{DType, Device, Var};

    /// Values and gradients (input, kernel, bias) of a fast convolution against candle's, on odd shapes.
    fn check_convolution(
        transposed: bool,
        x_shape: (usize, usize, usize, usize),
        c_out: usize,
        k: usize,
        p: ConvParams,
    ) {
        let (b, c_in, h, w) = x_shape;
        let n = b * c_in * h * w;
        let values = |n: usize, seed: usize| -> Vec<f32> {
            (0..n).map(|i| (((i * 7919 + seed * 104729) % 1000) as f32 / 500.0 - 1.0) * 0.5).collect()
        };
        let x = Var::from_vec(values(n, 1), (b, c_in, h, w), &Device::Cpu).unwrap();
        let w_shape = if transposed { (c_in, c_out, k, k) } else { (c_out, c_in, k, k) };
        let weight = Var::from_vec(values(c_in * c_out * k * k, 2), w_shape, &Device::Cpu).unwrap();
        let bias = Var::from_vec(values(c_out, 3), c_out, &Device::Cpu).unwrap();
        let pass = Pass::training(Ops::Fast);
        let ours = if transposed {
            conv_transpose2d(x.as_tensor(), weight.as_tensor(), Some(bias.as_tensor()), p, &pass)
        } else {
            conv2d(x.as_tensor(), weight.as_tensor(), Some(bias.as_tensor()), p, &pass)
        }
        .unwrap();
        let theirs = if transposed {
            x.as_tensor().conv_transpose2d(weight.as_tensor(), p.padding, 0, p.stride, 1)
        } else {
            x.as_tensor().conv2d(weight.as_tensor(), p.padding, p.stride, 1, 1)
        }
        .unwrap()
        .broadcast_add(&bias.as_tensor().reshape((1, c_out, 1, 1)).unwrap())
        .unwrap();
        assert_eq!(ours.dims(), theirs.dims(), "{x_shape:?} transposed {transposed}");
        let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let close = |a: Vec<f32>, b: Vec<f32>, what: &str| {
            for (i, (a, b)) in a.iter().zip(&b).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-4 * (1.0 + b.abs()),
                    "{what} [{i}]: {a} vs {b} ({x_shape:?}, {transposed})"
                );
            }
        };
        close(flat(&ours), flat(&theirs), "values");
        // A weighted sum makes every output position's gradient different.
        let weights = Tensor::from_vec(values(ours.elem_count(), 4), ours.dims(), &Device::Cpu).unwrap();
        let grads = |y: &Tensor| (y * &weights).unwrap().sum_all().unwrap().backward().unwrap();
        let (g_ours, g_theirs) = (grads(&ours), grads(&theirs));
        for (var, what) in [(&x, "input gradient"), (&weight, "kernel gradient"), (&bias, "bias gradient")] {
            close(flat(g_ours.get(var.as_tensor()).unwrap()), flat(g_theirs.get(var.as_tensor()).unwrap()), what);
        }
        // An input that needs no gradient (the images) gets none; the kernel's is unchanged.
        let images = x.as_tensor().detach();
        let ours = if transposed {
            conv_transpose2d(&images, weight.as_tensor(), Some(bias.as_tensor()), p, &pass)
        } else {
            conv2d(&images, weight.as_tensor(), Some(bias.as_tensor()), p, &pass)
        }
        .unwrap();
        let store = grads(&ours);
        assert!(store.get(&images).is_none(), "a gradient for a constant input ({x_shape:?}, {transposed})");
        let kernel = weight.as_tensor();
        close(flat(store.get(kernel).unwrap()), flat(g_theirs.get(kernel).unwrap()), "kernel gradient, constant input");
        // A frozen kernel (the forward pass keeps no rows for it) gets none; the input's is unchanged.
        let frozen = Pass::training(Ops::Fast).frozen();
        let ours = if transposed {
            conv_transpose2d(x.as_tensor(), weight.as_tensor(), Some(bias.as_tensor()), p, &frozen)
        } else {
            conv2d(x.as_tensor(), weight.as_tensor(), Some(bias.as_tensor()), p, &frozen)
        }
        .unwrap();
        close(flat(&ours), flat(&theirs), "values, frozen kernel");
        let store = grads(&ours);
        assert!(store.get(kernel).is_none(), "a gradient for a frozen kernel ({x_shape:?}, {transposed})");
        let input = x.as_tensor();
        close(flat(store.get(input).unwrap()), flat(g_theirs.get(input).unwrap()), "input gradient, frozen kernel");
    }

    #[test]
    fn convolutions_match_candle_in_values_and_gradients() {
        let down = ConvParams { stride: 2, padding: 1 };
        let same = ConvParams { stride: 1, padding: 0 };
        // The networks' shapes (smaller batch), then batch 1, non-square images, channel counts not multiples of 8.
        check_convolution(false, (3, 1, 28, 28), 64, 4, down);
        check_convolution(false, (2, 64, 14, 14), 128, 4, down);
        check_convolution(false, (1, 3, 9, 6), 5, 3, same);
        // (Height and width with different parity under stride 2 are not compared: candle's own conv2d backward
        // takes the output padding of the width from the height and fails on them.)
        check_convolution(false, (2, 5, 8, 10), 3, 4, down);
        // More channels than one block of a layout change and not a multiple of it (20 × 7·7).
        check_convolution(false, (2, 12, 9, 9), 20, 3, same);
        check_convolution(true, (2, 20, 7, 7), 12, 3, same);
        // Kernel sizes with their own copy loops (3, 4, 5) and one without (2).
        check_convolution(false, (2, 3, 11, 11), 4, 5, ConvParams { stride: 2, padding: 2 });
        check_convolution(false, (1, 2, 6, 6), 3, 2, same);
        // The evaluation classifier's "same" 5×5 convolutions (padding 2, stride 1).
        let padded = ConvParams { stride: 1, padding: 2 };
        check_convolution(false, (2, 1, 28, 28), 32, 5, padded);
        check_convolution(false, (2, 32, 14, 14), 64, 5, padded);
        // Items large enough that a thread's block of work holds two of them, so a batch of 3 is two blocks
        // (a small kernel, whose backward pass adds up shares of the kernel gradient per block), and a larger
        // kernel with one item per block.
        check_convolution(false, (3, 32, 20, 20), 6, 3, same);
        check_convolution(false, (3, 32, 40, 40), 80, 4, down);
        check_convolution(true, (3, 128, 7, 7), 64, 4, down);
        check_convolution(true, (2, 64, 14, 14), 1, 4, down);
        check_convolution(true, (1, 3, 5, 4), 7, 3, same);
        check_convolution(true, (2, 5, 3, 6), 3, 4, down);
        check_convolution(true, (2, 3, 4, 4), 2, 5, ConvParams { stride: 2, padding: 2 });
        check_convolution(true, (1, 2, 5, 5), 3, 2, same);
        check_convolution(true, (3, 64, 24, 24), 8, 4, down);
    }

    #[test]
    fn a_convolution_with_its_activation_matches_candle_in_values_and_gradients() {
        let down = ConvParams { stride: 2, padding: 1 };
        for (x_shape, c_out, activation) in [
            ((3, 1, 28, 28), 64, Activation::LeakyRelu(0.01)),
            ((2, 5, 8, 10), 3, Activation::LeakyRelu(0.2)),
            ((1, 3, 9, 9), 7, Activation::Relu),
        ] {
            let (b, c_in, h, w) = x_shape;
            let values = |n: usize, seed: usize| -> Vec<f32> {
                (0..n).map(|i| (((i * 7919 + seed * 104729) % 1000) as f32 / 500.0 - 1.0) * 0.5).collect()
            };
            let x = Var::from_vec(values(b * c_in * h * w, 1), x_shape, &Device::Cpu).unwrap();
            let weight = Var::from_vec(values(c_out * c_in * 16, 2), (c_out, c_in, 4, 4), &Device::Cpu).unwrap();
            let bias = Var::from_vec(values(c_out, 3), c_out, &Device::Cpu).unwrap();
            let (x_t, w_t, b_t) = (x.as_tensor(), weight.as_tensor(), Some(bias.as_tensor()));
            let ours = conv2d_activation(x_t, w_t, b_t, down, activation, &Pass::training(Ops::Fast)).unwrap();
            let theirs = x
                .as_tensor()
                .conv2d(weight.as_tensor(), 1, 2, 1, 1)
                .unwrap()
                .broadcast_add(&bias.as_tensor().reshape((1, c_out, 1, 1)).unwrap())
                .unwrap();
            let theirs = match activation {
                Activation::LeakyRelu(slope) => candle_nn::ops::leaky_relu(&theirs, slope).unwrap(),
                _ => theirs.relu().unwrap(),
            };
            let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let close = |a: Vec<f32>, b: Vec<f32>, what: &str| {
                assert_eq!(a.len(), b.len(), "{what}");
                for (i, (a, b)) in a.iter().zip(&b).enumerate() {
                    assert!(
                        (a - b).abs() <= 1e-4 * (1.0 + b.abs()),
                        "{what} [{i}] ({x_shape:?}, {activation:?}): {a} vs {b}"
                    );
                }
            };
            close(flat(&ours), flat(&theirs), "values");
            let weights = Tensor::from_vec(values(ours.elem_count(), 4), ours.dims(), &Device::Cpu).unwrap();
            let grads = |y: &Tensor| (y * &weights).unwrap().sum_all().unwrap().backward().unwrap();
            let (g_ours, g_theirs) = (grads(&ours), grads(&theirs));
            for (var, what) in [(&x, "input gradient"), (&weight, "kernel gradient"), (&bias, "bias gradient")] {
                close(flat(g_ours.get(var.as_tensor()).unwrap()), flat(g_theirs.get(var.as_tensor()).unwrap()), what);
            }
        }
    }

    #[test]
    fn other_kernels_go_to_candle_and_impossible_shapes_are_errors() {
        // A non-square kernel goes to candle's op; an input smaller than the kernel is an error, not a panic.
        let x = Tensor::ones((1, 2, 5, 6), DType::F32, &Device::Cpu).unwrap();
        let w = Tensor::ones((3, 2, 3, 2), DType::F32, &Device::Cpu).unwrap();
        let p = ConvParams { stride: 1, padding: 0 };
        let pass = Pass::training(Ops::Fast);
        let ours = conv2d(&x, &w, None, p, &pass).unwrap();
        assert_eq!(ours.dims(), &[1, 3, 3, 5]);
        assert_eq!(ours.flatten_all().unwrap().to_vec1::<f32>().unwrap(), vec![12.0; 45]);
        let big = Tensor::ones((3, 2, 7, 7), DType::F32, &Device::Cpu).unwrap();
        assert!(conv2d(&x, &big, None, p, &pass).is_err());
        let tiny = Tensor::ones((1, 2, 1, 1), DType::F32, &Device::Cpu).unwrap();
        let kernel = Tensor::ones((2, 3, 1, 1), DType::F32, &Device::Cpu).unwrap();
        let up = conv_transpose2d(&tiny, &kernel, None, p, &pass);
        assert_eq!(up.unwrap().dims(), &[1, 3, 1, 1]);
    }
}
