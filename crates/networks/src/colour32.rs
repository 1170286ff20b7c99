//! The 32×32 colour networks of InfoGAN (Chen et al. 2016, appendix C, the SVHN and CelebA table), which
//! ss-InfoGAN uses for SVHN, CIFAR-10 and CelebA:
//!
//! - G: FC(→2·2·448)+BN+ReLU → ConvT(448→256)+BN+ReLU → ConvT(256→128)+ReLU → ConvT(128→64)+ReLU →
//!   ConvT(64→3) → tanh; every ConvT 4×4, stride 2, padding 1 (2 → 4 → 8 → 16 → 32);
//! - D body: Conv(3→64)+LReLU → Conv(64→128)+BN+LReLU → Conv(128→256)+BN+LReLU, each 4×4, stride 2, padding 1
//!   (32 → 16 → 8 → 4), flattened to 4096 features;
//! - heads: D = FC(4096→1) (logits); Q = FC(4096→128)+BN+LReLU shared by Q_ss = FC(128→Σ code sizes) and
//!   Q_us = FC(128→width of the unsupervised likelihood), InfoGAN's "FC 128-BN-lRELU-FC output" for Q.
//!
//! Images everywhere in this project are in [0, 1], so G's tanh is mapped to (tanh + 1) / 2: equivalent to
//! training on data scaled to [-1, 1] up to a reparametrisation of G's output and D's first layer (at the same
//! N(0, 0.02) initialisation, D's first layer sees inputs at half the scale).

use candle_core::{Result, Tensor};
use candle_nn::{batch_norm, conv2d, conv_transpose2d, linear, BatchNorm, Conv2d, ConvTranspose2d, Linear, VarBuilder};
use ssinfogan_core::LatentSpec;
use ssinfogan_kernels::{self as ops, Activation, Discriminator, DiscriminatorOutput, Generator, Pass, Sequence};

use crate::layers::LayerConfig;
use crate::mnist::{DOWN, DOWNSAMPLE, UP, UPSAMPLE};

/// Channels of G's first feature map, 2×2 (InfoGAN's 448).
const G_CHANNELS: usize = 448;
/// Width of D's flattened body: 256 channels of 4×4.
const BODY: usize = 256 * 4 * 4;
/// Width of the hidden layer the Q heads share.
const Q_HIDDEN: usize = 128;

pub struct Colour32Generator {
    fc: Linear,
    bn_fc: BatchNorm,
    deconv1: ConvTranspose2d,
    bn1: BatchNorm,
    deconv2: ConvTranspose2d,
    deconv3: ConvTranspose2d,
    deconv4: ConvTranspose2d,
}

impl Colour32Generator {
    pub fn new(latent: &LatentSpec, config: &LayerConfig, vb: VarBuilder) -> Result<Self> {
        let bn = config.batch_norm();
        Ok(Self {
            fc: linear(latent.input_dim(), G_CHANNELS * 2 * 2, vb.pp("fc"))?,
            bn_fc: batch_norm(G_CHANNELS * 2 * 2, bn, vb.pp("bn_fc"))?,
            deconv1: conv_transpose2d(G_CHANNELS, 256, 4, UPSAMPLE, vb.pp("deconv1"))?,
            bn1: batch_norm(256, bn, vb.pp("bn1"))?,
            deconv2: conv_transpose2d(256, 128, 4, UPSAMPLE, vb.pp("deconv2"))?,
            deconv3: conv_transpose2d(128, 64, 4, UPSAMPLE, vb.pp("deconv3"))?,
            deconv4: conv_transpose2d(64, 3, 4, UPSAMPLE, vb.pp("deconv4"))?,
        })
    }
}

impl Generator for Colour32Generator {
    fn generate(&self, input: &Tensor, pass: &Pass) -> Result<Tensor> {
        let batch = input.dim(0)?;
        let x = Sequence::new(input, pass)
            .linear(&self.fc)?
            .batch_norm(&self.bn_fc, Activation::Relu)? // (b, 1792)
            .reshape((batch, G_CHANNELS, 2, 2))?
            .conv_transpose2d(&self.deconv1, UP)?
            .batch_norm(&self.bn1, Activation::Relu)? // (b, 256, 4, 4)
            .conv_transpose2d(&self.deconv2, UP)?
            .then(Tensor::relu)? // (b, 128, 8, 8)
            .conv_transpose2d(&self.deconv3, UP)?
            .then(Tensor::relu)? // (b, 64, 16, 16)
            .conv_transpose2d(&self.deconv4, UP)?
            .finish()?;
        (x.tanh()? + 1.0)? * 0.5 // (b, 3, 32, 32) in [0, 1]
    }
}

pub struct Colour32Discriminator {
    conv1: Conv2d,
    conv2: Conv2d,
    bn2: BatchNorm,
    conv3: Conv2d,
    bn3: BatchNorm,
    d_head: Linear,
    q_hidden: (Linear, BatchNorm),
    q_ss_head: Linear,
    q_us_head: Option<Linear>,
    slope: f64,
}

impl Colour32Discriminator {
    /// `q_us_width` is the width of the `Q_us` output, which the information loss decides; 0 builds no `Q_us`.
    pub fn new(latent: &LatentSpec, q_us_width: usize, config: &LayerConfig, vb: VarBuilder) -> Result<Self> {
        let bn = config.batch_norm();
        let q_us_head = if q_us_width > 0 { Some(linear(Q_HIDDEN, q_us_width, vb.pp("q_us_head"))?) } else { None };
        Ok(Self {
            conv1: conv2d(3, 64, 4, DOWNSAMPLE, vb.pp("conv1"))?,
            conv2: conv2d(64, 128, 4, DOWNSAMPLE, vb.pp("conv2"))?,
            bn2: batch_norm(128, bn, vb.pp("bn2"))?,
            conv3: conv2d(128, 256, 4, DOWNSAMPLE, vb.pp("conv3"))?,
            bn3: batch_norm(256, bn, vb.pp("bn3"))?,
            d_head: linear(BODY, 1, vb.pp("d_head"))?,
            q_hidden: (linear(BODY, Q_HIDDEN, vb.pp("q").pp("fc"))?, batch_norm(Q_HIDDEN, bn, vb.pp("q").pp("bn"))?),
            q_ss_head: linear(Q_HIDDEN, latent.semi_supervised_dim(), vb.pp("q_ss_head"))?,
            q_us_head,
            slope: config.leaky_relu_slope,
        })
    }

    /// BatchNorm then leaky ReLU, one op.
    fn bn_leaky(&self, bn: &BatchNorm, x: &Tensor, pass: &Pass) -> Result<Tensor> {
        ops::batch_norm_activation(bn, x, Activation::LeakyRelu(self.slope), pass)
    }
}

impl Discriminator for Colour32Discriminator {
    fn discriminate(&self, images: &Tensor, pass: &Pass) -> Result<DiscriminatorOutput> {
        let leaky = Activation::LeakyRelu(self.slope);
        let body = Sequence::new(images, pass)
            .conv2d(&self.conv1, DOWN, leaky)? // (b, 64, 16, 16)
            .conv2d(&self.conv2, DOWN, Activation::Identity)?
            .batch_norm(&self.bn2, leaky)? // (b, 128, 8, 8)
            .conv2d(&self.conv3, DOWN, Activation::Identity)?
            .batch_norm(&self.bn3, leaky)? // (b, 256, 4, 4), read as (b, BODY)
            .finish()?;
        let (q_fc, q_bn) = &self.q_hidden;
        let q = self.bn_leaky(q_bn, &ops::linear(q_fc, &body, pass)?, pass)?; // (b, 128)
        Ok(DiscriminatorOutput {
            d_logits: ops::linear(&self.d_head, &body, pass)?,
            q_ss_logits: ops::linear(&self.q_ss_head, &q, pass)?,
            q_us: self.q_us_head.as_ref().map(|head| ops::linear(head, &q, pass)).transpose()?,
        })
    }
}
