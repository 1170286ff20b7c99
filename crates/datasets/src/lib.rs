//! Datasets for ss-InfoGAN experiments: validated loaders, where the data came from, the labelled subset and
//! the labelled/unlabelled batch schedule of Spurr et al. (2017, §4 and the official code).
//!
//! Datasets: MNIST and Fashion-MNIST (28×28 grey), SVHN cropped digits, CIFAR-10 and CelebA (32×32 RGB; for
//! CelebA the label is one binary attribute named in [`SourceRequest::label`], e.g. `Smiling`). The
//! [`catalog`] holds one descriptor per dataset: its images, label, sources and where each lies.
//!
//! ```no_run
//! use ssinfogan_datasets::{load, DatasetName, SourceRequest};
//! let dataset = load(DatasetName::Mnist, &SourceRequest::automatic("data"))?;
//! println!("{}", dataset.provenance.summary_line());
//! # Ok::<(), ssinfogan_datasets::DataError>(())
//! ```

pub mod batches;
pub mod catalog;
pub mod dataset;
pub mod error;
pub mod idx;
pub mod labelled;
pub mod loading;
pub mod provenance;
pub mod source_kind;
pub mod sources;
pub mod split;

pub use batches::{BatchKind, BatchSampler, BatchSchedule, RealBatches};
pub use catalog::{DatasetDescriptor, DatasetName, CLASS_LABEL};
pub use dataset::Dataset;
pub use error::{DataError, Result};
pub use labelled::LabelledSubset;
pub use loading::{load, SourceRequest};
pub use provenance::Provenance;
pub use source_kind::SourceKind;
pub use split::Split;
