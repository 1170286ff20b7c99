//! One evaluation of a generator and its Q heads: every metric of docs/method.md "How a run is measured",
//! from fixed noise and codes (the caller's stream), with all networks in inference mode so that evaluating
//! never changes a BatchNorm statistic of the run.

use std::time::Instant;

use candle_core::{DType, Device, Result, Tensor, D};
use candle_nn::ops::softmax;
use nalgebra::{DMatrix, DVector};
use rand::Rng;
use ssinfogan_core::{metric, LatentSpec};
use ssinfogan_kernels::{Discriminator, Generator, Ops, Pass};

use crate::classifier::Classifier;
use crate::frechet::{frechet_distance_from_moments, moments};
use crate::information::{mutual_information, mutual_information_lower_bound};
use crate::mapping::{error_under, greedy_mapping, hungarian_mapping, ConfusionMatrix};
use crate::official::{official_c_err, official_q_err_real};

pub struct EvaluationInputs<'a> {
    pub generator: &'a dyn Generator,
    pub discriminator: &'a dyn Discriminator,
    pub classifier: &'a Classifier,
    pub latent: &'a LatentSpec,
    /// Real test images (N, C, H, W) in [0, 1] and their labels (N,) u32.
    pub test_images: &'a Tensor,
    pub test_labels: &'a Tensor,
    /// The classifier's features of `test_images`, summarised once per run: they do not change between
    /// evaluations.
    pub real_features: &'a RealFeatures,
    /// Generated images per value of the semi-supervised code: the first `samples_per_code` of the
    /// `drawn_per_code` latents drawn for each code value, so that a smaller (interim) evaluation sees a subset
    /// of the images of a full one from the same stream.
    pub samples_per_code: usize,
    pub drawn_per_code: usize,
    /// Also measure C_err and Q_err(real) as the official code does ([`crate::official`]): at the final evaluation
    /// of a run, and when a checkpoint is evaluated on its own.
    pub official: bool,
    pub device: &'a Device,
    /// Which implementation runs the networks and the classifier (the run's `[training] ops`).
    pub ops: Ops,
}

/// The metrics, and the generated images with the code values that made them (for `samples.safetensors`).
pub struct Evaluation {
    pub metrics: Vec<(&'static str, f64)>,
    pub samples: Tensor,
    pub sample_codes: Vec<i64>,
    /// Wall seconds of each part, named as in `timing.csv`: generation, the classifier on the fakes, the Q head
    /// on fakes and real images, the Fréchet distance.
    pub seconds: Vec<(&'static str, f64)>,
}

/// The Gaussian summary (mean and covariance) of the classifier's features of the real test images: the real
/// side of the Fréchet distance, computed once per run instead of once per evaluation.
pub struct RealFeatures {
    mean: DVector<f64>,
    covariance: DMatrix<f64>,
}

impl RealFeatures {
    pub fn new(classifier: &Classifier, test_images: &Tensor, ops: Ops) -> Result<Self> {
        let (_, features) = classifier.predict(test_images, CHUNK, ops)?;
        let (mean, covariance) = moments(&to_matrix(&features)?);
        Ok(Self { mean, covariance })
    }
}

const CHUNK: usize = 250;

/// `per_code` generated images for every value of the (first) semi-supervised code, in code order, with
/// the code value of each: the sample set of every evaluation and of `samples.safetensors`. Drawn in chunks of
/// 250 from `rng`, with the generator in inference mode.
pub fn generate_per_code(
    generator: &dyn Generator,
    latent: &LatentSpec,
    per_code: usize,
    rng: &mut impl Rng,
    device: &Device,
    ops: Ops,
) -> Result<(Tensor, Vec<i64>)> {
    generate_first_per_code(generator, latent, per_code, per_code, rng, device, ops)
}

/// The first `used` images per code value of what [`generate_per_code`] draws with `drawn` per code: the same
/// latents are drawn from `rng` (cheap, on the host), only the first `used` of each code value are generated.
pub fn generate_first_per_code(
    generator: &dyn Generator,
    latent: &LatentSpec,
    used: usize,
    drawn: usize,
    rng: &mut impl Rng,
    device: &Device,
    ops: Ops,
) -> Result<(Tensor, Vec<i64>)> {
    let code =
        latent.semi_supervised.first().ok_or_else(|| candle_core::Error::Msg("no semi-supervised code".into()))?;
    if used == 0 || used > drawn {
        candle_core::bail!("cannot generate {used} of {drawn} images per code value");
    }
    let (mut images, mut codes) = (Vec::new(), Vec::new());
    for value in 0..code.size as u32 {
        let (mut left, mut generated) = (drawn, 0);
        while left > 0 {
            let n = left.min(CHUNK);
            let draw = latent.sample_with(n, vec![vec![value; n]], rng);
            left -= n;
            let take = n.min(used - generated);
            if take == 0 {
                continue; // drawn only to keep the stream where the full set leaves it
            }
            let input = draw.generator_input(latent, device)?.narrow(0, 0, take)?;
            // Detached: a generated image must not keep the forward pass's graph (every intermediate activation)
            // alive, or memory grows by megabytes per image.
            images.push(generator.generate(&input, &Pass::inference(ops))?.detach());
            codes.extend(std::iter::repeat_n(i64::from(value), take));
            generated += take;
        }
    }
    Ok((Tensor::cat(&images, 0)?, codes)) // (K·used, C, H, W)
}

/// Every metric of one evaluation. The networks run in inference passes, as constants
/// ([`Pass::inference`]): the fast CPU paths then build no autograd graph and keep none of their inputs, and
/// nothing here takes a gradient.
pub fn evaluate(inputs: &EvaluationInputs, rng: &mut impl Rng) -> Result<Evaluation> {
    let mut clock = Clock::default();
    let (samples, codes) = generate_first_per_code(
        inputs.generator,
        inputs.latent,
        inputs.samples_per_code,
        inputs.drawn_per_code,
        rng,
        inputs.device,
        inputs.ops,
    )?;
    clock.lap(metric::seconds::EVALUATION_GENERATION);
    let k = inputs.latent.semi_supervised[0].size; // present: generate_per_code checked it
    let code_tensor = Tensor::from_iter(codes.iter().map(|&c| c as u32), inputs.device)?;

    // The independent classifier on the fakes: C_err, plug-in MI, confidence, features.
    let (logits, fake_features) = inputs.classifier.predict(&samples, CHUNK, inputs.ops)?;
    let probabilities = softmax(&logits, D::Minus1)?;
    let predicted: Vec<u32> = probabilities.argmax(D::Minus1)?.to_vec1()?;
    let confidence = f64::from(probabilities.max(D::Minus1)?.mean_all()?.to_scalar::<f32>()?);
    let classes = logits.dim(1)?;
    let mut confusion = ConfusionMatrix::new(k, classes);
    for (&c, &p) in codes.iter().zip(&predicted) {
        confusion.add(c as usize, p as usize);
    }
    let probability_rows: Vec<Vec<f32>> = probabilities.to_dtype(DType::F32)?.to_vec2()?;
    let mean_probabilities = mean_rows_by_code(&probability_rows, &codes, k);
    let identity: Vec<usize> = (0..k).collect();
    clock.lap(metric::seconds::EVALUATION_CLASSIFIER);

    // Q_ss on the fakes: its error against the generating code and InfoGAN's lower bound on I(c; G(z, c)).
    let q_fake_logits = q_ss(inputs.discriminator, &samples, inputs.ops)?;
    let q_fake_pred: Vec<u32> = q_fake_logits.argmax(D::Minus1)?.to_vec1()?;
    let q_err_fake =
        codes.iter().zip(&q_fake_pred).filter(|(&c, &p)| c as u32 != p).count() as f64 / codes.len() as f64;
    let q_fake_ce = f64::from(candle_nn::loss::cross_entropy(&q_fake_logits, &code_tensor)?.to_scalar::<f32>()?);

    // Q_ss on real test images, against their labels.
    let q_real_logits = q_ss(inputs.discriminator, inputs.test_images, inputs.ops)?;
    let q_real_pred: Vec<u32> = q_real_logits.argmax(D::Minus1)?.to_vec1()?;
    let labels: Vec<u32> = inputs.test_labels.to_vec1()?;
    let mut q_confusion = ConfusionMatrix::new(k, classes);
    for (&p, &l) in q_real_pred.iter().zip(&labels) {
        q_confusion.add(p as usize, l as usize);
    }
    clock.lap(metric::seconds::EVALUATION_Q);

    // Fréchet distance in the classifier's feature space, real test images against the fakes.
    let (fake_mean, fake_covariance) = moments(&to_matrix(&fake_features)?);
    let real = inputs.real_features;
    let frechet = frechet_distance_from_moments(&real.mean, &real.covariance, &fake_mean, &fake_covariance)
        .ok_or_else(|| {
            candle_core::Error::Msg(format!(
                "no Fréchet distance: the classifier's features of the generated images hold NaN or infinite values \
                 (or their eigendecomposition did not converge in {} iterations)",
                crate::frechet::MAX_EIGEN_ITERATIONS
            ))
        })?;
    clock.lap(metric::seconds::EVALUATION_FRECHET);

    let ln_k = (k as f64).ln();
    let mi_code_class = mutual_information(&confusion.counts);
    let mut metrics = vec![
        (metric::C_ERR_IDENTITY, error_under(&confusion, &identity)),
        (metric::C_ERR_GREEDY, error_under(&confusion, &greedy_mapping(&mean_probabilities))),
        (metric::C_ERR_HUNGARIAN, error_under(&confusion, &hungarian_mapping(&confusion))),
        (metric::Q_ERR_REAL_IDENTITY, error_under(&q_confusion, &identity)),
        (metric::Q_ERR_REAL_HUNGARIAN, error_under(&q_confusion, &hungarian_mapping(&q_confusion))),
        (metric::Q_ERR_FAKE, q_err_fake),
        (metric::MI_LOWER_BOUND_SS, mutual_information_lower_bound(ln_k, q_fake_ce)),
        (metric::MI_CODE_CLASS, mi_code_class),
        (metric::MI_CODE_CLASS_NORMALISED, mi_code_class / ln_k),
        (metric::MI_Q_SS_LABEL, mutual_information(&q_confusion.counts)),
        (metric::FRECHET_DISTANCE, frechet),
        (metric::CLASSIFIER_CONFIDENCE, confidence),
        // The precision of everything above: the report gives C_err's standard error at this count.
        (metric::EVALUATED_SAMPLES, codes.len() as f64),
    ];
    // The official protocol's numbers, at the final evaluation only: every earlier row stays as it was.
    if inputs.official {
        let q_real_rows: Vec<Vec<f32>> = q_real_logits.to_dtype(DType::F32)?.to_vec2()?;
        metrics.extend([
            (metric::C_ERR_OFFICIAL, official_c_err(&probability_rows, &predicted, inputs.samples_per_code)),
            (metric::Q_ERR_REAL_OFFICIAL, official_q_err_real(&q_real_rows, &q_real_pred, &labels, classes)),
        ]);
    }
    Ok(Evaluation { metrics, samples, sample_codes: codes, seconds: clock.laps })
}

/// Wall seconds between named points of an evaluation.
struct Clock {
    last: Instant,
    laps: Vec<(&'static str, f64)>,
}

impl Default for Clock {
    fn default() -> Self {
        Self { last: Instant::now(), laps: Vec::new() }
    }
}

impl Clock {
    fn lap(&mut self, name: &'static str) {
        let now = Instant::now();
        self.laps.push((name, (now - self.last).as_secs_f64()));
        self.last = now;
    }
}

/// `Q_ss` logits of `images`, in chunks, in inference mode.
fn q_ss(discriminator: &dyn Discriminator, images: &Tensor, ops: Ops) -> Result<Tensor> {
    let pass = Pass::inference(ops);
    let n = images.dim(0)?;
    let mut logits = Vec::new();
    for start in (0..n).step_by(CHUNK) {
        let batch = images.narrow(0, start, CHUNK.min(n - start))?;
        logits.push(discriminator.discriminate(&batch, &pass)?.q_ss_logits.detach());
    }
    Tensor::cat(&logits, 0)
}

/// Mean of the rows of `probabilities` per code value: the (code × class) matrix the greedy mapping reads.
fn mean_rows_by_code(rows: &[Vec<f32>], codes: &[i64], k: usize) -> Vec<Vec<f64>> {
    let classes = rows.first().map_or(0, Vec::len);
    let mut sums = vec![vec![0.0f64; classes]; k];
    let mut counts = vec![0usize; k];
    for (row, &c) in rows.iter().zip(codes) {
        counts[c as usize] += 1;
        for (s, &p) in sums[c as usize].iter_mut().zip(row) {
            *s += f64::from(p);
        }
    }
    sums.into_iter().zip(counts).map(|(row, n)| row.into_iter().map(|s| s / n.max(1) as f64).collect()).collect()
}

fn to_matrix(features: &Tensor) -> Result<DMatrix<f64>> {
    let (n, d) = features.dims2()?;
    let values: Vec<f32> = features.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
    Ok(DMatrix::from_row_iterator(n, d, values.into_iter().map(f64::from)))
}
