//! Evaluation: the experiment's classifier (trained once per experiment and data, cached under
//! `results/<experiment>/classifier/`), the hook that evaluates a run during training, and the evaluation of a
//! run's latest checkpoint that `ssinfogan eval` prints.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use serde::{Deserialize, Serialize};
use ssinfogan_core::run_dir::{write_atomically, RunDir};
use ssinfogan_core::{metric, Ops, RngStreams};
use ssinfogan_datasets::Dataset;
use ssinfogan_metrics::{
    accuracy, evaluate, train_classifier, Classifier, ClassifierConfig, Evaluation, EvaluationInputs, RealFeatures,
};

use crate::assemble::{chosen_checkpoint, latest_checkpoint, load_dataset, trained_networks};
use crate::config::ExperimentConfig;
use crate::records::RunRecord;
use crate::share::{write_final_samples_u8, write_morphometry_record, write_report_share};
use crate::spec::RunSpec;

/// What `classifier.json` records: the cache key (data and training config) and the test accuracy.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct ClassifierRecord {
    version: u32,
    data_sha256: String,
    config: ClassifierConfig,
    test_accuracy: f64,
}

/// The evaluation of a run's checkpoint.
pub struct CheckpointEvaluation {
    pub run_dir: RunDir,
    /// The checkpoint evaluated, e.g. `.../checkpoint/epoch-0050`.
    pub checkpoint: PathBuf,
    /// Where the metrics went: `evaluation.csv` for the latest checkpoint, `evaluation-<checkpoint>.csv` for
    /// another one, beside `samples.safetensors` or `samples-<checkpoint>.safetensors`.
    pub files: Vec<PathBuf>,
    /// The training iteration the checkpoint was written at.
    pub iteration: usize,
    pub evaluation: Evaluation,
}

/// Evaluates the checkpoint `which` (`latest`, `best`, `epoch-NNNN`) of the run `spec` names with every metric,
/// on the data it was trained on, and writes `evaluation.csv` and `samples.safetensors` into its directory (for a
/// checkpoint other than the latest: `evaluation-<checkpoint>.csv` and `samples-<checkpoint>.safetensors`, so
/// that the run's own files always describe its latest state).
pub fn evaluate_checkpoint(spec: &RunSpec, which: &str) -> anyhow::Result<CheckpointEvaluation> {
    let (config, run_dir) = spec.resolve()?;
    if ssinfogan_core::run_dir::RunLock::is_held(&run_dir) {
        bail!(
            "{} is being trained by another process (see its run.lock): its final samples.safetensors is the run's \
             to write. Evaluate it when it ends, or write samples of its latest checkpoint elsewhere with \
             `ssinfogan sample --run {} --out FILE`",
            run_dir.root().display(),
            run_dir.root().display()
        );
    }
    let latest = latest_checkpoint(&run_dir).context("train it first")?;
    let checkpoint = chosen_checkpoint(&run_dir, which)?;
    // Only the data's record: the evaluation protocol may have changed since the run was trained.
    let recorded = RunRecord::read(run_dir.root())?;
    let dataset = load_dataset(&config, &spec.data_root)?;
    let recorded_hash = &recorded.data.content_sha256;
    if &dataset.provenance.content_sha256 != recorded_hash {
        bail!(
            "the data found now ({}, sha256 {}) is not the data {} was trained on (sha256 {recorded_hash})",
            dataset.provenance.origin,
            &dataset.provenance.content_sha256[..16],
            run_dir.root().display()
        );
    }
    let device = spec.open_device()?;
    let hook = EvaluationHook::prepare(&config, &dataset, &spec.results, 1, spec.seed, &device)?;
    let networks = trained_networks(&config, &checkpoint, &device)?;
    let evaluation = hook.evaluate(networks.generator.as_ref(), networks.discriminator.as_ref())?;

    let epochs = checkpoint.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_prefix("epoch-")).unwrap_or("0");
    let epochs: usize = epochs.parse().unwrap_or(0);
    let iteration = epochs * config.schedule.iterations_per_epoch;
    let csv = ssinfogan_plan::long_csv::format(iteration as u64, epochs.saturating_sub(1), &evaluation.metrics, true);
    let suffix = match checkpoint.file_name() {
        Some(name) if checkpoint != latest => format!("-{}", name.to_string_lossy()),
        _ => String::new(),
    };
    let path = run_dir.evaluation(&suffix);
    write_atomically(&path, csv.as_bytes()).with_context(|| format!("cannot write {}", path.display()))?;
    let samples = run_dir.samples(&suffix);
    write_samples(&samples, &evaluation.samples, &evaluation.sample_codes)?;
    Ok(CheckpointEvaluation { run_dir, checkpoint, files: vec![path, samples], iteration, evaluation })
}

/// The experiment's cached evaluation classifier as the report needs it: its test accuracy (`classifier.json`) and
/// the sha256 of its weights, the judge every run records. Reads no weights into a network and needs no device.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedClassifier {
    pub test_accuracy: f64,
    pub sha256: String,
}

/// The classifier cached under `<results>/<experiment>/classifier/`, or `None` when there is none.
pub fn recorded_classifier(results: &Path, experiment: &str) -> anyhow::Result<Option<RecordedClassifier>> {
    let dir = results.join(experiment).join("classifier");
    let record_path = dir.join("classifier.json");
    let Ok(bytes) = std::fs::read(&record_path) else { return Ok(None) };
    let record: ClassifierRecord = serde_json::from_slice(&bytes).with_context(|| {
        format!("{} is not a classifier record; delete {} to train it anew", record_path.display(), dir.display())
    })?;
    let weights = dir.join("classifier.safetensors");
    Ok(Some(RecordedClassifier { test_accuracy: record.test_accuracy, sha256: file_sha256(&weights)? }))
}

/// The sha256 of a file's bytes, in hex.
fn file_sha256(path: &Path) -> anyhow::Result<String> {
    use sha2::Digest;
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(sha2::Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect())
}

/// Loads the cached classifier when it was trained on the same data with the same config, else trains and
/// caches a new one.
fn classifier(
    dir: &Path,
    dataset: &Dataset,
    config: &ClassifierConfig,
    test_images: &Tensor,
    test_labels: &Tensor,
    device: &Device,
) -> anyhow::Result<(Classifier, ClassifierRecord)> {
    let weights = dir.join("classifier.safetensors");
    let record_path = dir.join("classifier.json");
    if let Ok(bytes) = std::fs::read(&record_path) {
        if let Ok(record) = serde_json::from_slice::<ClassifierRecord>(&bytes) {
            if record.version == ssinfogan_metrics::CLASSIFIER_VERSION
                && record.data_sha256 == dataset.provenance.content_sha256
                && &record.config == config
                && weights.is_file()
            {
                let mut vars = VarMap::new();
                let classifier = Classifier::new(
                    dataset.image,
                    dataset.num_classes,
                    VarBuilder::from_varmap(&vars, DType::F32, device),
                )?;
                vars.load(&weights).with_context(|| format!("cannot load {}", weights.display()))?;
                return Ok((classifier, record));
            }
        }
    }
    tracing::info!("training the evaluation classifier on {} images", dataset.train.len());
    let all: Vec<usize> = (0..dataset.train.len()).collect();
    let images = dataset.images(&dataset.train, &all, device)?;
    let labels = dataset.labels(&dataset.train, &all, device)?;
    // The classifier's streams depend on nothing of a run, so every run of an experiment shares it.
    let streams = RngStreams::new(0);
    let (classifier, vars) = train_classifier(
        &images,
        &labels,
        dataset.num_classes,
        config,
        &mut streams.stream("classifier-init"),
        &mut streams.stream("classifier-batches"),
        device,
        // The classifier is the experiment's, shared by its runs whatever their `ops`, and cached by data and
        // config: trained one way.
        Ops::Fast,
    )?;
    let record = ClassifierRecord {
        version: ssinfogan_metrics::CLASSIFIER_VERSION,
        data_sha256: dataset.provenance.content_sha256.clone(),
        config: config.clone(),
        test_accuracy: accuracy(&classifier, test_images, test_labels, Ops::Fast)?,
    };
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // Through a temporary name of this process and a rename: runs started side by side on an empty cache each
    // train the same classifier (deterministically) and must not write into one file at once.
    let tmp = ssinfogan_core::run_dir::temporary_path(&weights);
    vars.save(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
    ssinfogan_core::run_dir::commit(&tmp, &weights).with_context(|| format!("cannot write {}", weights.display()))?;
    let json = serde_json::to_vec_pretty(&record)?;
    write_atomically(&record_path, &json).with_context(|| format!("cannot write {}", record_path.display()))?;
    Ok((classifier, record))
}

/// `samples.safetensors`: `images` f32 (N, C, H, W) in [0, 1] and `codes` i64 (N,), the semi-supervised code
/// value that made each image.
pub fn write_samples(path: &Path, images: &Tensor, codes: &[i64]) -> anyhow::Result<()> {
    let n = codes.len();
    let tensors: HashMap<String, Tensor> = HashMap::from([
        ("images".to_string(), images.to_device(&Device::Cpu)?),
        ("codes".to_string(), Tensor::from_slice(codes, n, &Device::Cpu)?),
    ]);
    let tmp = ssinfogan_core::run_dir::temporary_path(path);
    candle_core::safetensors::save(&tensors, &tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
    ssinfogan_core::run_dir::commit(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

/// One evaluation setup (classifier, test split, fixed noise) for `eval`, and as a training hook: every `every`
/// epochs, all metrics into `metrics.csv`, from the same fixed noise and codes each time (a fresh `evaluation`
/// stream of the run seed).
pub struct EvaluationHook<'a> {
    classifier: Classifier,
    classifier_accuracy: f64,
    /// The sha256 of the classifier's weights file: the judge each run records.
    classifier_sha256: String,
    latent: &'a ssinfogan_core::LatentSpec,
    test_images: Tensor,
    test_labels: Tensor,
    /// Summarised at the first evaluation: `report` and `classifier` prepare a hook and never evaluate.
    real_features: std::cell::OnceCell<RealFeatures>,
    samples_per_code: usize,
    interim_samples_per_code: usize,
    every: usize,
    seed: u64,
    device: &'a Device,
    /// Which implementation runs the networks and the classifier: the run's `[training] ops`.
    ops: Ops,
    /// Where each evaluation draws its training-progress grid, and the iterations per epoch that name the frames.
    progress: Option<Progress>,
    /// Wall seconds of the parts of the last `after_epoch`.
    seconds: Vec<(&'static str, f64)>,
    /// The evaluation after the last epoch, kept so that `after_training` writes its samples instead of
    /// evaluating the same networks again.
    last: Option<Evaluation>,
    epochs: usize,
}

/// The training-progress pictures of a run: a grid per evaluation, an animation at the end.
struct Progress {
    dir: PathBuf,
    iterations_per_epoch: u64,
    total_iterations: u64,
    /// Time spent drawing them, so that the run can say what they cost.
    spent: std::time::Duration,
    frames: usize,
}

/// Noise samples (columns) of a progress grid.
const PROGRESS_COLUMNS: usize = 10;

impl<'a> EvaluationHook<'a> {
    /// The test split on `device` and the experiment's classifier, from the cache under
    /// `results/<experiment>/classifier/` or trained now.
    pub fn prepare(
        config: &'a ExperimentConfig,
        dataset: &Dataset,
        results: &Path,
        every: usize,
        seed: u64,
        device: &'a Device,
    ) -> anyhow::Result<Self> {
        let all: Vec<usize> = (0..dataset.test.len()).collect();
        let test_images = dataset.images(&dataset.test, &all, device)?;
        let test_labels = dataset.labels(&dataset.test, &all, device)?;
        let classifier_dir = results.join(&config.experiment.name).join("classifier");
        let (classifier, record) =
            classifier(&classifier_dir, dataset, &config.evaluation.classifier, &test_images, &test_labels, device)?;
        tracing::info!(
            "evaluation classifier: test accuracy {:.4} ({})",
            record.test_accuracy,
            classifier_dir.display()
        );
        let classifier_sha256 = file_sha256(&classifier_dir.join("classifier.safetensors"))?;
        Ok(Self {
            classifier,
            classifier_accuracy: record.test_accuracy,
            classifier_sha256,
            latent: &config.latent,
            test_images,
            test_labels,
            real_features: std::cell::OnceCell::new(),
            samples_per_code: config.evaluation.samples_per_code,
            interim_samples_per_code: config
                .evaluation
                .interim_samples_per_code
                .map_or(config.evaluation.samples_per_code, |n| n.min(config.evaluation.samples_per_code)),
            every,
            seed,
            device,
            ops: config.training.ops,
            progress: None,
            seconds: Vec::new(),
            last: None,
            epochs: config.schedule.epochs,
        })
    }

    /// During training: also draw a progress grid at each evaluation into `run_root/samples/progress/` (the same
    /// latents each time, from the run seed's `progress-grid` stream), and animate them at the end.
    pub fn with_progress(mut self, run_root: &Path, iterations_per_epoch: usize, total_iterations: u64) -> Self {
        self.progress = Some(Progress {
            dir: run_root.join("samples").join("progress"),
            iterations_per_epoch: iterations_per_epoch as u64,
            total_iterations,
            spent: std::time::Duration::ZERO,
            frames: 0,
        });
        self
    }

    fn draw_progress(
        &mut self,
        epoch: usize,
        generator: &dyn ssinfogan_core::Generator,
    ) -> Result<(), ssinfogan_training::TrainError> {
        let Some(progress) = self.progress.as_mut() else { return Ok(()) };
        let started = std::time::Instant::now();
        let hook = ssinfogan_training::TrainError::Hook;
        let mut rng = RngStreams::new(self.seed).stream("progress-grid");
        let (rows, images) = ssinfogan_metrics::sweep::progress_grid(
            generator,
            self.latent,
            PROGRESS_COLUMNS,
            &mut rng,
            self.device,
            self.ops,
        )
        .map_err(|e| hook(e.to_string()))?;
        let (_, c, h, w) = images.dims4().map_err(|e| hook(e.to_string()))?;
        let pixels: Vec<f32> = images.flatten_all().and_then(|t| t.to_vec1()).map_err(|e| hook(e.to_string()))?;
        let iteration = (epoch as u64 + 1) * progress.iterations_per_epoch;
        ssinfogan_reporting::progress::write_frame(
            &progress.dir,
            iteration,
            &pixels,
            rows,
            PROGRESS_COLUMNS,
            (c, h, w),
        )
        .map_err(|e| hook(e.to_string()))?;
        progress.spent += started.elapsed();
        progress.frames += 1;
        Ok(())
    }

    /// The evaluation classifier C.
    pub fn classifier(&self) -> &Classifier {
        &self.classifier
    }

    /// Which implementation runs the networks and the classifier in this evaluation.
    pub fn ops(&self) -> Ops {
        self.ops
    }

    /// The sha256 of the evaluation classifier's weights file.
    pub fn classifier_sha256(&self) -> &str {
        &self.classifier_sha256
    }

    /// The evaluation classifier's accuracy on the real test split.
    pub fn classifier_accuracy(&self) -> f64 {
        self.classifier_accuracy
    }

    /// The full evaluation: `samples_per_code` images per code value.
    pub fn evaluate(
        &self,
        generator: &dyn ssinfogan_core::Generator,
        discriminator: &dyn ssinfogan_core::Discriminator,
    ) -> Result<Evaluation, ssinfogan_training::TrainError> {
        self.evaluate_on(generator, discriminator, self.samples_per_code, true)
    }

    /// An evaluation on the first `per_code` of each code value's fixed latents.
    fn evaluate_on(
        &self,
        generator: &dyn ssinfogan_core::Generator,
        discriminator: &dyn ssinfogan_core::Discriminator,
        per_code: usize,
        official: bool,
    ) -> Result<Evaluation, ssinfogan_training::TrainError> {
        let real_features = match self.real_features.get() {
            Some(real) => real,
            None => {
                let real = RealFeatures::new(&self.classifier, &self.test_images, self.ops)
                    .map_err(|e| ssinfogan_training::TrainError::Hook(e.to_string()))?;
                self.real_features.get_or_init(|| real)
            }
        };
        let inputs = EvaluationInputs {
            generator,
            discriminator,
            classifier: &self.classifier,
            latent: self.latent,
            test_images: &self.test_images,
            test_labels: &self.test_labels,
            real_features,
            samples_per_code: per_code,
            drawn_per_code: self.samples_per_code,
            official,
            device: self.device,
            ops: self.ops,
        };
        evaluate(&inputs, &mut RngStreams::new(self.seed).stream("evaluation"))
            .map_err(|e| ssinfogan_training::TrainError::Hook(e.to_string()))
    }
}

impl ssinfogan_training::EpochHook for EvaluationHook<'_> {
    fn after_epoch(
        &mut self,
        epoch: usize,
        generator: &dyn ssinfogan_core::Generator,
        discriminator: &dyn ssinfogan_core::Discriminator,
    ) -> Result<Vec<(&'static str, f64)>, ssinfogan_training::TrainError> {
        self.seconds.clear();
        if !(epoch + 1).is_multiple_of(self.every) {
            return Ok(Vec::new());
        }
        let last = epoch + 1 == self.epochs;
        let per_code = if last { self.samples_per_code } else { self.interim_samples_per_code };
        let evaluation = self.evaluate_on(generator, discriminator, per_code, last)?;
        let metrics = evaluation.metrics.clone();
        self.seconds.extend(evaluation.seconds.iter().copied());
        if last {
            self.last = Some(evaluation);
        }
        // A picture is not worth a run: a frame that cannot be drawn or written is reported and skipped.
        let started = std::time::Instant::now();
        if let Err(e) = self.draw_progress(epoch, generator) {
            tracing::warn!("training progress grid after epoch {}: {e}", epoch + 1);
        }
        self.seconds.push((metric::seconds::PROGRESS_GRID, started.elapsed().as_secs_f64()));
        Ok(metrics)
    }

    fn seconds(&mut self) -> Vec<(&'static str, f64)> {
        std::mem::take(&mut self.seconds)
    }

    /// The run's `samples.safetensors`, from the same fixed noise and codes as every evaluation.
    fn after_training(
        &mut self,
        run_root: &Path,
        generator: &dyn ssinfogan_core::Generator,
        discriminator: &dyn ssinfogan_core::Discriminator,
    ) -> Result<(), ssinfogan_training::TrainError> {
        // The networks have not changed since the last epoch's evaluation (when there was one in this process).
        let evaluation = match self.last.take() {
            Some(evaluation) => evaluation,
            None => self.evaluate(generator, discriminator)?,
        };
        let hook = |e: anyhow::Error| ssinfogan_training::TrainError::Hook(format!("{e:#}"));
        write_samples(&RunDir::at(run_root).samples(""), &evaluation.samples, &evaluation.sample_codes)
            .map_err(hook)?;
        // The run's share of the report, so that the report reads records only.
        write_final_samples_u8(run_root, &evaluation.samples, &evaluation.sample_codes, self.samples_per_code)
            .map_err(hook)?;
        write_report_share(run_root, self.seed, generator, &self.classifier, self.latent, self.device, self.ops)
            .map_err(hook)?;
        let started = std::time::Instant::now();
        let draws = crate::share::morphometry_draws(self.samples_per_code);
        if write_morphometry_record(run_root, self.seed, generator, self.latent, draws, self.device, self.ops)
            .map_err(hook)?
        {
            tracing::info!("morphometry of the continuous codes in {:.1} s", started.elapsed().as_secs_f64());
        }
        if let Some(progress) = &mut self.progress {
            let started = std::time::Instant::now();
            let out = progress.dir.with_extension("gif");
            let frames =
                match ssinfogan_reporting::progress::write_animation(&progress.dir, &out, progress.total_iterations) {
                    Ok(frames) => frames,
                    Err(e) => {
                        tracing::warn!("training progress animation: {e}");
                        0
                    }
                };
            progress.spent += started.elapsed();
            tracing::info!(
                "training progress: {frames} grids and {} ({} drawn here in {:.2} s in all)",
                out.display(),
                progress.frames,
                progress.spent.as_secs_f64()
            );
        }
        Ok(())
    }
}
