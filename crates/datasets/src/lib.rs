//! Datasets for ss-InfoGAN experiments: validated loaders, where the data came from, the labelled subset and
//! the labelled/unlabelled batch schedule of Spurr et al. (2017, §4 and the official code).
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
pub use catalog::{load, DatasetName, SourceKind, SourceRequest};
pub use dataset::{Dataset, Split};
pub use error::{DataError, Result};
pub use labelled::LabelledSubset;
pub use provenance::Provenance;
