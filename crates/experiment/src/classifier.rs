//! The experiment's evaluation classifier C, the judge of every run's C_err: trained once per experiment and data,
//! and cached under `<results>/<experiment>/classifier/` (`classifier.safetensors`, its weights, and
//! `classifier.json`, what it was trained on and its test accuracy), so that every run of the experiment, and
//! runs started side by side, are judged by the same weights. Each run records the weights' sha256.

use std::path::{Path, PathBuf};

use anyhow::Context;
use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use serde::{Deserialize, Serialize};
use ssinfogan_core::run_dir::{commit, temporary_path, write_atomically};
use ssinfogan_core::RngStreams;
use ssinfogan_datasets::Dataset;
use ssinfogan_kernels::Ops;
use ssinfogan_metrics::{accuracy, train_classifier, Classifier, ClassifierConfig};

use crate::config::ExperimentConfig;
use crate::plan::{first_variant, ExperimentSpec};

/// What `classifier.json` records: the cache key (data and training config) and the test accuracy.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct ClassifierRecord {
    version: u32,
    data_sha256: String,
    config: ClassifierConfig,
    test_accuracy: f64,
}

/// The cached classifier of one experiment: `<results>/<experiment>/classifier/`.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassifierCache {
    dir: PathBuf,
}

/// What the cache records of its classifier, as a report needs it: no weights read into a network, no device.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedClassifier {
    pub test_accuracy: f64,
    /// The sha256 of `classifier.safetensors`: the judge every run records.
    pub sha256: String,
}

/// The classifier itself, loaded or trained.
pub struct CachedClassifier {
    pub classifier: Classifier,
    pub test_accuracy: f64,
    /// The sha256 of `classifier.safetensors`.
    pub sha256: String,
}

impl ClassifierCache {
    /// The cache of the experiment `experiment` (its name, e.g. `mnist-quick`) under `results`.
    pub fn of(results: &Path, experiment: &str) -> Self {
        Self { dir: results.join(experiment).join("classifier") }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn weights(&self) -> PathBuf {
        self.dir.join("classifier.safetensors")
    }

    fn record(&self) -> PathBuf {
        self.dir.join("classifier.json")
    }

    /// The cached classifier's test accuracy and weights' sha256, or `None` when there is none.
    pub fn recorded(&self) -> anyhow::Result<Option<RecordedClassifier>> {
        let record_path = self.record();
        let Ok(bytes) = std::fs::read(&record_path) else { return Ok(None) };
        let record: ClassifierRecord = serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "{} is not a classifier record; delete {} to train it anew",
                record_path.display(),
                self.dir.display()
            )
        })?;
        Ok(Some(RecordedClassifier { test_accuracy: record.test_accuracy, sha256: file_sha256(&self.weights())? }))
    }

    /// The cached classifier when it was trained on the same data with the same config (`config.evaluation
    /// .classifier`), else one trained now on the train split and cached.
    pub fn load_or_train(
        &self,
        config: &ExperimentConfig,
        dataset: &Dataset,
        device: &Device,
    ) -> anyhow::Result<CachedClassifier> {
        let classifier_config = &config.evaluation.classifier;
        let (weights, record_path) = (self.weights(), self.record());
        if let Ok(bytes) = std::fs::read(&record_path) {
            if let Ok(record) = serde_json::from_slice::<ClassifierRecord>(&bytes) {
                if record.version == ssinfogan_metrics::CLASSIFIER_VERSION
                    && record.data_sha256 == dataset.provenance.content_sha256
                    && &record.config == classifier_config
                    && weights.is_file()
                {
                    let mut vars = VarMap::new();
                    let classifier = Classifier::new(
                        dataset.image,
                        dataset.num_classes,
                        VarBuilder::from_varmap(&vars, DType::F32, device),
                    )?;
                    vars.load(&weights).with_context(|| format!("cannot load {}", weights.display()))?;
                    return self.found(classifier, record.test_accuracy);
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
            classifier_config,
            &mut streams.stream("classifier-init"),
            &mut streams.stream("classifier-batches"),
            device,
            // The classifier is the experiment's, shared by its runs whatever their `ops`, and cached by data and
            // config: trained one way.
            Ops::Fast,
        )?;
        let test: Vec<usize> = (0..dataset.test.len()).collect();
        let (test_images, test_labels) =
            (dataset.images(&dataset.test, &test, device)?, dataset.labels(&dataset.test, &test, device)?);
        let record = ClassifierRecord {
            version: ssinfogan_metrics::CLASSIFIER_VERSION,
            data_sha256: dataset.provenance.content_sha256.clone(),
            config: classifier_config.clone(),
            test_accuracy: accuracy(&classifier, &test_images, &test_labels, Ops::Fast)?,
        };
        std::fs::create_dir_all(&self.dir).with_context(|| format!("cannot create {}", self.dir.display()))?;
        // Through a temporary name of this process and a rename: runs started side by side on an empty cache each
        // train the same classifier (deterministically) and must not write into one file at once.
        let tmp = temporary_path(&weights);
        vars.save(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
        commit(&tmp, &weights).with_context(|| format!("cannot write {}", weights.display()))?;
        let json = serde_json::to_vec_pretty(&record)?;
        write_atomically(&record_path, &json).with_context(|| format!("cannot write {}", record_path.display()))?;
        self.found(classifier, record.test_accuracy)
    }

    /// The classifier with its accuracy and weights' sha256, said in the log.
    fn found(&self, classifier: Classifier, test_accuracy: f64) -> anyhow::Result<CachedClassifier> {
        tracing::info!("evaluation classifier: test accuracy {test_accuracy:.4} ({})", self.dir.display());
        Ok(CachedClassifier { classifier, test_accuracy, sha256: file_sha256(&self.weights())? })
    }
}

/// Trains the experiment's evaluation classifier once (or finds it in the cache), so that runs started side by
/// side afterwards share it instead of each training one. Returns the experiment's name and the classifier's
/// test accuracy.
pub fn prepare(spec: &ExperimentSpec) -> anyhow::Result<(String, f64)> {
    let (config, dataset) = first_variant(&spec.open()?, &spec.data_root)?;
    let device = spec.device.open().with_context(|| format!("cannot open device {}", spec.device))?;
    let cached =
        ClassifierCache::of(&spec.results, &config.experiment.name).load_or_train(&config, &dataset, &device)?;
    Ok((config.experiment.name.clone(), cached.test_accuracy))
}

/// The sha256 of a file's bytes, in hex.
fn file_sha256(path: &Path) -> anyhow::Result<String> {
    use sha2::Digest;
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(sha2::Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect())
}
