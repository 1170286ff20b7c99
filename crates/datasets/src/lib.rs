//! Datasets for ss-InfoGAN experiments: validated loaders, where the data came from, the labelled subset and
//! the labelled/unlabelled batch schedule of Spurr et al. (2017, §4 and the official code).
//!
//! Datasets: MNIST and Fashion-MNIST (28×28 grey), SVHN cropped digits, CIFAR-10 and CelebA (32×32 RGB; for
//! CelebA the label is one binary attribute named in [`SourceRequest::label`], e.g. `Smiling`). The
//! [`catalog`] lists each one's sources.
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
pub mod provenance;
pub mod sources;

pub use batches::{BatchKind, BatchSampler, BatchSchedule, RealBatches};
pub use catalog::{load, DatasetName, SourceKind, SourceRequest, CLASS_LABEL};
pub use dataset::{Dataset, Split};
pub use error::{DataError, Result};
pub use labelled::LabelledSubset;
pub use provenance::Provenance;
