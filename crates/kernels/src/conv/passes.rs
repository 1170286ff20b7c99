//! The passes that a convolution and a transposed convolution share. The two are each other's adjoint: the
//! forward pass of one is the input gradient of the other, so each pass is written once here and used by both
//! ops.
//!
//! - im2row, an image's patch rows, and its adjoint row2im, which adds patch rows back onto an image
//!   ([`Geometry`]);
//! - the layout changes between an image's channels × positions and a product's positions × channels rows
//!   ([`rows_to_channels`], [`channels_to_rows`]; the latter also over the whole batch in parallel);
//! - the work through the batch in blocks of items on one thread each, so that what one step writes the next
//!   reads from the core's cache ([`item_blocks`]): the patch rows, their product with the kernel and the
//!   layout change to channels ([`Geometry::im2row_product`]: a convolution's forward pass, a transposed
//!   convolution's input gradient), or a product of rows with the kernel summed back into images
//!   ([`Geometry::row2im_product`]: a transposed convolution's forward pass, a convolution's input gradient).

use std::mem::MaybeUninit;

use rayon::prelude::*;

use crate::matmul::{product_in_thread, MatRef};
use crate::sums::Dims;
use crate::transpose::{transpose, Edit};
use crate::unwritten::{written_part, Unwritten};

/// A convolution's two sides: the image (batch, channels, height, width) and the grid of patch positions
/// (grid_h × grid_w), with the kernel, stride and zero padding between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Geometry {
    pub(super) batch: usize,
    pub(super) channels: usize,
    pub(super) height: usize,
    pub(super) width: usize,
    pub(super) kernel: usize,
    pub(super) stride: usize,
    pub(super) padding: usize,
    pub(super) grid_h: usize,
    pub(super) grid_w: usize,
}

impl Geometry {
    pub(super) fn image_len(&self) -> usize {
        self.batch * self.item_len()
    }

    /// The image side zero-padded on every edge: (height + 2·padding, width + 2·padding). A patch's rows
    /// lie inside it: (grid − 1)·stride + kernel ≤ size + 2·padding.
    fn padded(&self) -> (usize, usize) {
        (self.height + 2 * self.padding, self.width + 2 * self.padding)
    }

    /// The patch rows of consecutive items, each item's the transpose of its im2col: grid_h·grid_w rows of
    /// channels·kernel² values, each in the kernel's (c, ky, kx) order, copied from a zero-padded copy of the
    /// item's image (tens of kilobytes, in cache), `kernel` values at a time. `images` holds the items, `out`
    /// their rows, in order; every value of `out` is written.
    fn im2row(&self, images: &[f32], out: &mut [MaybeUninit<f32>]) {
        let (image, item_rows) = (self.item_len(), self.item_rows());
        if item_rows == 0 {
            return;
        }
        assert_eq!(out.len() % item_rows, 0, "{} patch row values, {item_rows} an item", out.len());
        // One zero-padded copy for the block's items: each item's image overwrites the inside, the border stays
        // zero.
        let (hp, wp) = self.padded();
        let mut padded = vec![0f32; self.channels * hp * wp];
        for (i, out) in out.chunks_exact_mut(item_rows).enumerate() {
            self.pad_into(&images[i * image..][..image], &mut padded);
            // A literal kernel size makes each line of a window one fixed-size array copy, rather than a copy per
            // value (separate writes of `MaybeUninit` values are not merged: one scalar move each).
            match self.kernel {
                3 => self.copy_windows(3, &padded, out, copy_run::<3>),
                4 => self.copy_windows(4, &padded, out, copy_run::<4>),
                5 => self.copy_windows(5, &padded, out, copy_run::<5>),
                kernel => self.copy_windows(kernel, &padded, out, |line, values| {
                    line.iter_mut().zip(values).for_each(|(v, x)| _ = v.write(*x));
                }),
            }
        }
    }

    /// [`Geometry::im2row`] of one item: `out` its patch rows, `padded` its zero-padded image, each line of a
    /// window copied by `copy_line(line of the rows, the padded image from the line's first value)`.
    #[inline(always)]
    fn copy_windows(
        &self,
        kernel: usize,
        padded: &[f32],
        out: &mut [MaybeUninit<f32>],
        copy_line: impl Fn(&mut [MaybeUninit<f32>], &[f32]),
    ) {
        let (wp, span) = (self.padded().1, self.window_span(kernel));
        self.windows(kernel, |start, at| {
            let window = &padded[start..][..span];
            for (ky, line) in out[at..][..kernel * kernel].chunks_exact_mut(kernel).enumerate() {
                copy_line(line, &window[ky * wp..]);
            }
        });
    }

    /// The sums of [`Geometry::row2im`] for one item: its patch rows `rows` added onto its zero-padded image
    /// `padded` in the order of [`Geometry::windows`], each line of a window by `add_line(the padded image from
    /// the line's first value, line of the rows)`.
    #[inline(always)]
    fn add_windows(&self, kernel: usize, rows: &[f32], padded: &mut [f32], add_line: impl Fn(&mut [f32], &[f32])) {
        let (wp, span) = (self.padded().1, self.window_span(kernel));
        self.windows(kernel, |start, at| {
            let window = &mut padded[start..][..span];
            for (ky, line) in rows[at..][..kernel * kernel].chunks_exact(kernel).enumerate() {
                add_line(&mut window[ky * wp..], line);
            }
        });
    }

    /// The adjoint of [`Geometry::im2row`]: every value of an item's patch rows added back onto the pixel it
    /// was copied from, plus `bias[c]` on channel c if given, summed in a fixed order into a zero-padded copy in
    /// cache whose inside is the item's image. `rows` holds consecutive items' patch rows, `out` their images,
    /// in order; every value of `out` is written.
    fn row2im(&self, rows: &[f32], out: &mut [MaybeUninit<f32>], bias: Option<&[f32]>) {
        let (image, item_rows) = (self.item_len(), self.item_rows());
        if image == 0 {
            return;
        }
        assert_eq!(out.len() % image, 0, "{} image values, {image} an item", out.len());
        let ((hp, wp), (height, width)) = (self.padded(), (self.height, self.width));
        // One zero-padded image for the block's items, zeroed again for each.
        let mut padded = vec![0f32; self.channels * hp * wp];
        for (i, out) in out.chunks_exact_mut(image).enumerate() {
            let rows = &rows[i * item_rows..][..item_rows];
            padded.fill(0.0);
            // Each line of a window added as one fixed-size array: the kernel's literal size makes it a vector add.
            match self.kernel {
                3 => self.add_windows(3, rows, &mut padded, add_run::<3>),
                4 => self.add_windows(4, rows, &mut padded, add_run::<4>),
                5 => self.add_windows(5, rows, &mut padded, add_run::<5>),
                kernel => self.add_windows(kernel, rows, &mut padded, |padded, line| {
                    padded.iter_mut().zip(line).for_each(|(p, v)| *p += v);
                }),
            }
            for (j, line) in out.chunks_exact_mut(width).enumerate() {
                let (c, y) = (j / height, j % height);
                let (inside, shift) = (&padded[self.inside_start(c, y)..][..width], bias.map_or(0.0, |b| b[c]));
                line.iter_mut().zip(inside).for_each(|(out, v)| {
                    out.write(v + shift);
                });
            }
        }
    }

    /// The image side as the layout of a per-channel sum (a bias gradient).
    pub(super) fn image_dims(&self) -> Dims {
        Dims { n: self.batch, c: self.channels, s: self.height * self.width }
    }

    /// The values of one item of the image side.
    pub(super) fn item_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    pub(super) fn rows_shape(&self) -> (usize, usize) {
        (self.batch * self.grid_h * self.grid_w, self.channels * self.kernel * self.kernel)
    }

    /// The patch row values of one item.
    fn item_rows(&self) -> usize {
        self.grid_h * self.grid_w * self.rows_shape().1
    }

    /// Where line y of channel c of the image starts in its zero-padded copy.
    fn inside_start(&self, c: usize, y: usize) -> usize {
        let (hp, wp) = self.padded();
        (c * hp + y + self.padding) * wp + self.padding
    }

    /// Every channel's `kernel` × `kernel` window of one item's patch rows, in order (position after position,
    /// channel after channel): `each(start, at)` with the window's first value at `start` in the zero-padded
    /// image and its values at `at` in the item's rows, line after line in the kernel's (ky, kx) order. The
    /// window of channel c at position (gy, gx) starts at padded row gy·stride of channel c, column gx·stride,
    /// and spans [`Geometry::window_span`] values. Its callers cut it from the padded image once and check each
    /// of its lines against that short slice rather than the whole image (in cache, about a fifth less time for
    /// the discriminator's 64-channel im2row than with each line checked against the image).
    #[inline(always)]
    fn windows(&self, kernel: usize, mut each: impl FnMut(usize, usize)) {
        debug_assert!(kernel > 0, "a window of an empty kernel");
        let (hp, wp) = self.padded();
        let mut at = 0;
        for gy in 0..self.grid_h {
            for gx in 0..self.grid_w {
                let origin = gy * self.stride * wp + gx * self.stride;
                for c in 0..self.channels {
                    each(c * hp * wp + origin, at);
                    at += kernel * kernel;
                }
            }
        }
    }

    /// The values of the zero-padded image from a `kernel` × `kernel` window's first to its last: kernel − 1
    /// whole padded lines and `kernel` values. The ops only make geometries with a kernel of at least 1.
    fn window_span(&self, kernel: usize) -> usize {
        (kernel - 1) * self.padded().1 + kernel
    }

    /// One batch item's image (channels, height, width) copied inside the zero border of `padding` of `padded`
    /// (whose border is zero; the copy writes only the inside).
    fn pad_into(&self, image: &[f32], padded: &mut [f32]) {
        if self.width > 0 {
            for (i, line) in image.chunks_exact(self.width).enumerate() {
                let (c, y) = (i / self.height, i % self.height);
                let start = self.inside_start(c, y);
                padded[start..start + self.width].copy_from_slice(line);
            }
        }
    }

    /// A convolution's forward pass, or a transposed convolution's input gradient, through the batch in blocks of
    /// items (one thread each, `bytes_per_item` of data per item, see [`item_blocks`]): each block's patch rows
    /// of `images` (im2row), into its part of `kept` when given (rows kept for a kernel gradient), else into
    /// the thread's scratch; then, with `then`, their product with its kernel, each item's laid out as channels
    /// × positions in `out` ([`rows_to_channels`]). Every value of `out` (`then`'s channels × positions
    /// per item; none without `then`) and of `kept` is written.
    pub(super) fn im2row_product(
        &self,
        images: &[f32],
        then: Option<ToChannels>,
        out: &mut [MaybeUninit<f32>],
        kept: Option<&mut [MaybeUninit<f32>]>,
        bytes_per_item: usize,
    ) {
        let (grid, (_, row_len)) = (self.grid_h * self.grid_w, self.rows_shape());
        let (image, item_rows) = (self.item_len(), self.item_rows());
        let out_item = then.map_or(0, |then| then.channels * grid);
        let blocks = item_blocks(self.batch, bytes_per_item, out, out_item, kept, item_rows);
        blocks.into_par_iter().for_each_init(Scratch::default, |Scratch { rows, product }, b| {
            let images = &images[b.first * image..][..b.items * image];
            let fill = |out: &mut [MaybeUninit<f32>]| self.im2row(images, out);
            // SAFETY: `im2row` writes every value of the block's rows.
            let rows = unsafe { kept_or_scratch(b.kept, rows, b.items * item_rows, fill) };
            if let Some(ToChannels { kernel, channels, bias, negative_slope }) = then {
                let product = product_in_thread(product, MatRef::new(rows, b.items * grid, row_len), kernel);
                rows_to_channels(product, b.out, grid, channels, bias, negative_slope);
            }
        });
    }

    /// A transposed convolution's forward pass, or a convolution's input gradient, for one block of items:
    /// `rows` (each item's positions × channels, item after item) times `kernel` (channels × patch row) into the
    /// thread's `product`, each item's product summed back into its image in `out` (row2im, plus `bias`). Every
    /// value of `out` is written.
    pub(super) fn row2im_product(
        &self,
        rows: MatRef,
        kernel: MatRef,
        bias: Option<&[f32]>,
        product: &mut Vec<f32>,
        out: &mut [MaybeUninit<f32>],
    ) {
        self.row2im(product_in_thread(product, rows, kernel), out, bias);
    }
}

/// `dst[..K] = src[..K]` as one array.
#[inline(always)]
fn copy_run<const K: usize>(dst: &mut [MaybeUninit<f32>], src: &[f32]) {
    let (dst, src): (&mut [MaybeUninit<f32>; K], &[f32; K]) =
        ((&mut dst[..K]).try_into().expect("K values"), src[..K].try_into().expect("K values"));
    *dst = src.map(MaybeUninit::new);
}

/// `dst[..K] += src[..K]`, through a local array: a fixed-size run that the compiler turns into one vector add.
#[inline(always)]
fn add_run<const K: usize>(dst: &mut [f32], src: &[f32]) {
    let (dst, src) = (&mut dst[..K], &src[..K]);
    let mut sum = [0f32; K];
    for k in 0..K {
        sum[k] = dst[k] + src[k];
    }
    dst.copy_from_slice(&sum);
}

/// What follows a block's patch rows in [`Geometry::im2row_product`]: their product with `kernel` (patch row ×
/// `channels`), laid out per item as channels × positions with `bias` added and `negative_slope` applied.
#[derive(Clone, Copy)]
pub(super) struct ToChannels<'a> {
    pub(super) kernel: MatRef<'a>,
    pub(super) channels: usize,
    pub(super) bias: Option<&'a [f32]>,
    pub(super) negative_slope: f32,
}

/// Consecutive items' spatial × channels rows (a block of a product with patch rows) → each item's channels ×
/// spatial, adding `bias[c]` (if given) to channel c and multiplying values ≤ 0 by `negative_slope` (an
/// activation; 1 for none) on the way. `x` holds the items' rows, `out` their images, in order; every value of
/// `out` is written.
pub(super) fn rows_to_channels(
    x: &[f32],
    out: &mut [MaybeUninit<f32>],
    spatial: usize,
    channels: usize,
    bias: Option<&[f32]>,
    negative_slope: f32,
) {
    let item = spatial * channels;
    assert_eq!(x.len(), out.len(), "{} row values for {} outputs", x.len(), out.len());
    if item == 0 {
        return;
    }
    assert_eq!(out.len() % item, 0, "{} values, {item} an item", out.len());
    // No bias adds zeros, as a bias of zeros would: the same arithmetic either way.
    let zeros;
    let shifts = match bias {
        Some(bias) => bias,
        None => {
            zeros = vec![0f32; channels];
            &zeros
        }
    };
    let edit = Edit::ShiftSlope { shifts, slope: negative_slope };
    for (x, out) in x.chunks_exact(item).zip(out.chunks_exact_mut(item)) {
        transpose(x, channels, (spatial, channels), edit, out, spatial);
    }
}

/// The inverse of [`rows_to_channels`]: consecutive items' channels × spatial → spatial × channels, with values
/// multiplied by `negative_slope` where `output` (an activation's output, whose sign its input's is) is ≤ 0
/// (`output` `None`: no activation). `x` (and `output`) hold the items' images, `out` their rows, in order;
/// every value of `out` is written.
pub(super) fn channels_to_rows(
    x: &[f32],
    output: Option<&[f32]>,
    negative_slope: f32,
    out: &mut [MaybeUninit<f32>],
    channels: usize,
    spatial: usize,
) {
    let item = spatial * channels;
    assert_eq!(x.len(), out.len(), "{} image values for {} outputs", x.len(), out.len());
    if item == 0 {
        return;
    }
    assert_eq!(out.len() % item, 0, "{} values, {item} an item", out.len());
    for (i, out) in out.chunks_exact_mut(item).enumerate() {
        let x = &x[i * item..][..item];
        let edit = match output {
            Some(y) => Edit::Slope { signs: &y[i * item..][..item], slope: negative_slope },
            None => Edit::Copy,
        };
        transpose(x, spatial, (channels, spatial), edit, out, channels);
    }
}

/// [`channels_to_rows`] over the whole batch, an item per parallel task: (batch, channels, spatial) →
/// (batch·spatial) × channels.
pub(super) fn channels_to_rows_in_parallel(
    x: &[f32],
    output: Option<&[f32]>,
    negative_slope: f32,
    batch: usize,
    channels: usize,
    spatial: usize,
) -> Vec<f32> {
    let item = spatial * channels;
    assert_eq!(x.len(), batch * item, "{} values as {batch} items of {channels}×{spatial}", x.len());
    let mut rows = Vec::new();
    let mut out = Unwritten::new(&mut rows, x.len());
    if item > 0 {
        out.values().par_chunks_mut(item).enumerate().for_each(|(b, out)| {
            let at = b * item..(b + 1) * item;
            let (x, output) = (&x[at.clone()], output.map(|y| &y[at]));
            channels_to_rows(x, output, negative_slope, out, channels, spatial)
        });
    }
    // SAFETY: `channels_to_rows` wrote every value of each item's rows, and the items cover `out`.
    unsafe { out.assume_written() };
    rows
}

/// About what a block of [`item_blocks`] work holds: a core's L2 cache (1 MB on many current x86 cores).
pub(super) const BLOCK_BYTES: usize = 1 << 20;

/// A block of batch items that one thread works through while its data is in cache: the first item, the
/// number of items, and the block's parts of an output and of the patch or input rows kept for the kernel
/// gradient (`None` when the kernel takes none: the thread's scratch buffer instead).
pub(super) struct ItemBlock<'a> {
    pub(super) first: usize,
    pub(super) items: usize,
    pub(super) out: &'a mut [MaybeUninit<f32>],
    pub(super) kept: Option<&'a mut [MaybeUninit<f32>]>,
}

/// The batch in blocks of items for [`ItemBlock`] work, each block's data (`bytes_per_item` per item) about
/// what a core's cache holds beside the operands, and `out` (`out_item` values per item) and `kept`
/// (`kept_item` per item) cut to match.
pub(super) fn item_blocks<'a>(
    batch: usize,
    bytes_per_item: usize,
    mut out: &'a mut [MaybeUninit<f32>],
    out_item: usize,
    mut kept: Option<&'a mut [MaybeUninit<f32>]>,
    kept_item: usize,
) -> Vec<ItemBlock<'a>> {
    let per_block = (BLOCK_BYTES / bytes_per_item.max(1)).max(1);
    assert_eq!(out.len(), batch * out_item, "{} output values for {batch} items of {out_item}", out.len());
    if let Some(kept) = &kept {
        assert_eq!(kept.len(), batch * kept_item, "{} kept values for {batch} items of {kept_item}", kept.len());
    }
    let mut blocks = Vec::with_capacity(batch.div_ceil(per_block));
    for first in (0..batch).step_by(per_block) {
        let items = per_block.min(batch - first);
        let (block_out, rest) = std::mem::take(&mut out).split_at_mut(items * out_item);
        out = rest;
        let block_kept = match kept.take() {
            Some(all) => {
                let (block, rest) = all.split_at_mut(items * kept_item);
                kept = Some(rest);
                Some(block)
            }
            None => None,
        };
        blocks.push(ItemBlock { first, items, out: block_out, kept: block_kept });
    }
    blocks
}

/// A worker's buffers for [`ItemBlock`] work, reused from block to block within one of rayon's jobs.
#[derive(Default)]
pub(super) struct Scratch {
    pub(super) rows: Vec<f32>,
    pub(super) product: Vec<f32>,
}

/// A block's rows, written by `fill` into its part of the kept rows if it has one, else into the thread's
/// `scratch` (`len` values), and read back.
///
/// # Safety
/// `fill` writes every value of the slice it is given.
pub(super) unsafe fn kept_or_scratch<'a>(
    kept: Option<&'a mut [MaybeUninit<f32>]>,
    scratch: &'a mut Vec<f32>,
    len: usize,
    fill: impl FnOnce(&mut [MaybeUninit<f32>]),
) -> &'a [f32] {
    match kept {
        Some(kept) => {
            fill(kept);
            // SAFETY: `fill` wrote every value of `kept` (this function's contract).
            unsafe { written_part(kept) }
        }
        None => {
            let mut room = Unwritten::new(scratch, len);
            fill(room.values());
            // SAFETY: `fill` wrote every value of the room (this function's contract).
            unsafe { room.assume_written() }
        }
    }
}
