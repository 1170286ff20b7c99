//! The independent evaluation classifier C: a small CNN trained on the real, fully labelled training split.
//! C_err classifies generated images with it, and its penultimate features are the space of the Fréchet
//! distance (the usual MNIST substitute for FID's Inception features).
//!
//! Conv(C→32, 5, p2)+ReLU+MaxPool2 → Conv(32→64, 5, p2)+ReLU+MaxPool2 → FC(64·H/4·W/4→128)+ReLU (features) →
//! FC(classes): for MNIST-like data FC(3136→128), for 32×32 colour FC(4096→128). CelebA gets one per attribute
//! (two classes). Training is deterministic: weights from a seeded host stream, batches from another.

use candle_core::{DType, Device, Result, Tensor, D};
use candle_nn::{conv2d, linear, Conv2d, Conv2dConfig, Linear, Optimizer, VarBuilder, VarMap};
use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};
use ssinfogan_core::ImageSpec;
use ssinfogan_kernels::{Activation, ConvParams, Ops, Pass};

/// How the classifier is trained; part of its cache key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifierConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
}

pub struct Classifier {
    conv1: Conv2d,
    conv2: Conv2d,
    fc1: Linear,
    fc2: Linear,
}

/// Changes whenever the architecture, initialisation or training procedure changes, so cached classifiers of an
/// older procedure are retrained.
pub const CLASSIFIER_VERSION: u32 = 3;

/// Width of the feature space: the penultimate layer.
pub const FEATURES: usize = 128;

impl Classifier {
    /// A classifier of `image`-shaped inputs into `num_classes`; both sides must be multiples of 4 (two 2×2
    /// poolings).
    pub fn new(image: ImageSpec, num_classes: usize, vb: VarBuilder) -> Result<Self> {
        if !image.height.is_multiple_of(4) || !image.width.is_multiple_of(4) {
            candle_core::bail!("the evaluation classifier needs image sides divisible by 4, got {image}");
        }
        let same = Conv2dConfig { padding: 2, ..Default::default() };
        Ok(Self {
            conv1: conv2d(image.channels, 32, 5, same, vb.pp("conv1"))?,
            conv2: conv2d(32, 64, 5, same, vb.pp("conv2"))?,
            fc1: linear(64 * (image.height / 4) * (image.width / 4), FEATURES, vb.pp("fc1"))?,
            fc2: linear(FEATURES, num_classes, vb.pp("fc2"))?,
        })
    }

    /// Penultimate features, (batch, 128), of images (batch, C, H, W) in [0, 1]. Through the CPU fast paths of
    /// `ssinfogan-kernels` (candle's ops elsewhere, or as `pass` asks): convolution and ReLU in one op, linear
    /// layers as one product.
    pub fn features(&self, images: &Tensor, pass: &Pass) -> Result<Tensor> {
        let same = ConvParams { stride: 1, padding: 2 };
        let conv = |layer: &Conv2d, x: &Tensor| {
            ssinfogan_kernels::conv2d_activation(x, layer.weight(), layer.bias(), same, Activation::Relu, pass)
        };
        let x = conv(&self.conv1, images)?.max_pool2d(2)?; // (b, 32, H/2, W/2)
        let x = conv(&self.conv2, &x)?.max_pool2d(2)?; // (b, 64, H/4, W/4)
        ssinfogan_kernels::linear(&self.fc1, &x.flatten_from(1)?, pass)?.relu() // (b, 128)
    }

    /// Class logits, (batch, classes).
    pub fn logits(&self, images: &Tensor, pass: &Pass) -> Result<Tensor> {
        ssinfogan_kernels::linear(&self.fc2, &self.features(images, pass)?, pass)
    }

    /// Logits and features of `images`, in chunks of `chunk` to bound memory, with the weights as constants.
    pub fn predict(&self, images: &Tensor, chunk: usize, ops: Ops) -> Result<(Tensor, Tensor)> {
        let pass = Pass::inference(ops);
        let n = images.dim(0)?;
        let (mut logits, mut features) = (Vec::new(), Vec::new());
        for start in (0..n).step_by(chunk.max(1)) {
            let batch = images.narrow(0, start, chunk.min(n - start))?;
            // Detached, so that the results do not hold every chunk's forward graph.
            let f = self.features(&batch, &pass)?.detach();
            logits.push(ssinfogan_kernels::linear(&self.fc2, &f, &pass)?.detach());
            features.push(f);
        }
        Ok((Tensor::cat(&logits, 0)?, Tensor::cat(&features, 0)?))
    }
}

/// Trains a classifier on `images` (N, C, H, W) with `labels` (N,) u32 and returns it with its variables.
/// `init_rng` draws the initial weights, `batch_rng` the batch order; `ops` runs the layers.
#[allow(clippy::too_many_arguments)]
pub fn train_classifier(
    images: &Tensor,
    labels: &Tensor,
    num_classes: usize,
    config: &ClassifierConfig,
    init_rng: &mut impl Rng,
    batch_rng: &mut impl Rng,
    device: &Device,
    ops: Ops,
) -> Result<(Classifier, VarMap)> {
    let vars = VarMap::new();
    let (_, channels, height, width) = images.dims4()?;
    let image = ImageSpec { channels, height, width };
    let classifier = Classifier::new(image, num_classes, VarBuilder::from_varmap(&vars, DType::F32, device))?;
    // Unit normal draws from the seeded stream, then He scaling √(2 / fan-in) for the ReLU layers (√(1 / fan-in)
    // for the output): the GAN init (σ 0.02 everywhere) leaves the first convolution nearly silent.
    ssinfogan_core::initialise(&vars, 1.0, init_rng)?;
    for (name, var) in
        vars.data().lock().map_err(|_| candle_core::Error::Msg("variable map lock poisoned".into()))?.iter()
    {
        if name.ends_with(".weight") {
            let fan_in: usize = var.dims()[1..].iter().product();
            let gain = if name.starts_with("fc2") { 1.0 } else { 2.0 };
            var.set(&(var.as_tensor() * (gain / fan_in as f64).sqrt())?)?;
        }
    }
    let params = candle_nn::ParamsAdamW { lr: config.learning_rate, weight_decay: 0.0, ..Default::default() };
    let mut optimiser = candle_nn::AdamW::new(vars.all_vars(), params)?;
    let n = images.dim(0)?;
    let mut order: Vec<u32> = (0..n as u32).collect();
    for _ in 0..config.epochs {
        order.shuffle(batch_rng);
        for batch in order.chunks(config.batch_size) {
            let index = Tensor::from_slice(batch, batch.len(), device)?;
            let x = images.index_select(&index, 0)?;
            let y = labels.index_select(&index, 0)?;
            let loss = candle_nn::loss::cross_entropy(&classifier.logits(&x, &Pass::training(ops))?, &y)?;
            optimiser.backward_step(&loss)?;
        }
    }
    Ok((classifier, vars))
}

/// Fraction of `images` whose predicted class equals `labels`.
pub fn accuracy(classifier: &Classifier, images: &Tensor, labels: &Tensor, ops: Ops) -> Result<f64> {
    let (logits, _) = classifier.predict(images, 500, ops)?;
    let correct = logits.argmax(D::Minus1)?.eq(labels)?.to_dtype(DType::F32)?.sum_all()?.to_scalar::<f32>()?;
    Ok(f64::from(correct) / images.dim(0)? as f64)
}
