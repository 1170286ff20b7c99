//! The MNIST networks of the official ss-InfoGAN code, which are InfoGAN's (Chen et al. 2016, table 1):
//!
//! - G: FC(→1024)+BN+ReLU → FC(→128·7·7)+BN+ReLU → ConvT(128→64, 4, s2, p1)+BN+ReLU → ConvT(64→1, 4, s2, p1)
//!   → sigmoid;
//! - D body: Conv(1→64, 4, s2, p1)+LReLU → Conv(64→128, 4, s2, p1)+BN+LReLU → FC(6272→1024)+BN+LReLU;
//! - heads on the 1024 body features: D = FC(1) (logits; the sigmoid lives in the loss), Q_ss = FC(Σ code
//!   sizes), Q_us = FC(128)+BN+LReLU → FC(width of the unsupervised likelihood).

use candle_core::{Result, Tensor};
use candle_nn::{
    batch_norm, conv2d, conv_transpose2d, linear, BatchNorm, Conv2d, Conv2dConfig, ConvTranspose2d,
    ConvTranspose2dConfig, Linear, VarBuilder,
};
use ssinfogan_core::LatentSpec;
use ssinfogan_kernels::{
    self as ops, Activation, ConvParams, Discriminator, DiscriminatorOutput, Generator, Pass, Sequence,
};

use crate::layers::LayerConfig;

pub(crate) const UPSAMPLE: ConvTranspose2dConfig =
    ConvTranspose2dConfig { padding: 1, output_padding: 0, stride: 2, dilation: 1 };
pub(crate) const DOWNSAMPLE: Conv2dConfig =
    Conv2dConfig { padding: 1, stride: 2, dilation: 1, groups: 1, cudnn_fwd_algo: None };

/// Stride 2, padding 1 (4×4 kernels): each transposed convolution doubles the side.
pub(crate) const UP: ConvParams = ConvParams { stride: UPSAMPLE.stride, padding: UPSAMPLE.padding };
/// Stride 2, padding 1 (4×4 kernels): each convolution halves the side.
pub(crate) const DOWN: ConvParams = ConvParams { stride: DOWNSAMPLE.stride, padding: DOWNSAMPLE.padding };

pub struct MnistGenerator {
    fc1: Linear,
    bn1: BatchNorm,
    fc2: Linear,
    bn2: BatchNorm,
    deconv1: ConvTranspose2d,
    bn3: BatchNorm,
    deconv2: ConvTranspose2d,
}

impl MnistGenerator {
    pub fn new(latent: &LatentSpec, config: &LayerConfig, vb: VarBuilder) -> Result<Self> {
        let bn = config.batch_norm();
        Ok(Self {
            fc1: linear(latent.input_dim(), 1024, vb.pp("fc1"))?,
            bn1: batch_norm(1024, bn, vb.pp("bn1"))?,
            fc2: linear(1024, 128 * 7 * 7, vb.pp("fc2"))?,
            bn2: batch_norm(128 * 7 * 7, bn, vb.pp("bn2"))?,
            deconv1: conv_transpose2d(128, 64, 4, UPSAMPLE, vb.pp("deconv1"))?,
            bn3: batch_norm(64, bn, vb.pp("bn3"))?,
            deconv2: conv_transpose2d(64, 1, 4, UPSAMPLE, vb.pp("deconv2"))?,
        })
    }
}

impl Generator for MnistGenerator {
    fn generate(&self, input: &Tensor, pass: &Pass) -> Result<Tensor> {
        let batch = input.dim(0)?;
        let logits = Sequence::new(input, pass)
            .linear(&self.fc1)?
            .batch_norm(&self.bn1, Activation::Relu)? // (b, 1024)
            .linear(&self.fc2)?
            .batch_norm(&self.bn2, Activation::Relu)? // (b, 6272)
            .reshape((batch, 128, 7, 7))?
            .conv_transpose2d(&self.deconv1, UP)?
            .batch_norm(&self.bn3, Activation::Relu)? // (b, 64, 14, 14)
            .conv_transpose2d(&self.deconv2, UP)? // (b, 1, 28, 28)
            .finish()?;
        candle_nn::ops::sigmoid(&logits)
    }
}

pub struct MnistDiscriminator {
    conv1: Conv2d,
    conv2: Conv2d,
    bn2: BatchNorm,
    fc: Linear,
    bn_fc: BatchNorm,
    d_head: Linear,
    q_ss_head: Linear,
    q_us_head: Option<(Linear, BatchNorm, Linear)>,
    slope: f64,
}

impl MnistDiscriminator {
    /// `q_us_width` is the width of the `Q_us` output, which the information loss decides (e.g. one mean per
    /// continuous code, or a mean and a log standard deviation); 0 builds no `Q_us` head.
    pub fn new(latent: &LatentSpec, q_us_width: usize, config: &LayerConfig, vb: VarBuilder) -> Result<Self> {
        let bn = config.batch_norm();
        let q_us_head = if q_us_width > 0 {
            let vb = vb.pp("q_us");
            Some((
                linear(1024, 128, vb.pp("fc1"))?,
                batch_norm(128, bn, vb.pp("bn"))?,
                linear(128, q_us_width, vb.pp("fc2"))?,
            ))
        } else {
            None
        };
        Ok(Self {
            conv1: conv2d(1, 64, 4, DOWNSAMPLE, vb.pp("conv1"))?,
            conv2: conv2d(64, 128, 4, DOWNSAMPLE, vb.pp("conv2"))?,
            bn2: batch_norm(128, bn, vb.pp("bn2"))?,
            fc: linear(128 * 7 * 7, 1024, vb.pp("fc"))?,
            bn_fc: batch_norm(1024, bn, vb.pp("bn_fc"))?,
            d_head: linear(1024, 1, vb.pp("d_head"))?,
            q_ss_head: linear(1024, latent.semi_supervised_dim(), vb.pp("q_ss_head"))?,
            q_us_head,
            slope: config.leaky_relu_slope,
        })
    }

    /// BatchNorm then leaky ReLU, one op.
    fn bn_leaky(&self, bn: &BatchNorm, x: &Tensor, pass: &Pass) -> Result<Tensor> {
        ops::batch_norm_activation(bn, x, Activation::LeakyRelu(self.slope), pass)
    }
}

impl Discriminator for MnistDiscriminator {
    fn discriminate(&self, images: &Tensor, pass: &Pass) -> Result<DiscriminatorOutput> {
        let leaky = Activation::LeakyRelu(self.slope);
        let body = Sequence::new(images, pass)
            .conv2d(&self.conv1, DOWN, leaky)? // (b, 64, 14, 14)
            .conv2d(&self.conv2, DOWN, Activation::Identity)?
            .batch_norm(&self.bn2, leaky)? // (b, 128, 7, 7)
            .linear(&self.fc)?
            .batch_norm(&self.bn_fc, leaky)? // (b, 1024)
            .finish()?;
        let q_us = match &self.q_us_head {
            Some((fc1, bn, fc2)) => {
                let h = self.bn_leaky(bn, &ops::linear(fc1, &body, pass)?, pass)?; // (b, 128)
                Some(ops::linear(fc2, &h, pass)?) // (b, q_us_width)
            }
            None => None,
        };
        Ok(DiscriminatorOutput {
            d_logits: ops::linear(&self.d_head, &body, pass)?,
            q_ss_logits: ops::linear(&self.q_ss_head, &body, pass)?,
            q_us,
        })
    }
}
