//! A local copy of a Hub parquet conversion: `train/*.parquet` and `test/*.parquet` under the dataset's
//! directory (`data/svhn/`), or under its config subdirectory (`data/svhn/cropped_digits/`), which is what
//! `huggingface-cli download ufldl-stanford/svhn --repo-type dataset --revision refs/convert/parquet
//! --include 'cropped_digits/train/*' --include 'cropped_digits/test/*' --local-dir data/svhn` leaves.

use std::path::{Path, PathBuf};

use crate::error::{DataError, Result};
use crate::source_kind::SourceKind;
use crate::sources::hub::HubFiles;
use crate::sources::parquet_images::ParquetLayout;
use crate::split::Split;

const SPLITS: [&str; 2] = ["train", "test"];

/// Reads train and test splits from the parquet shards under `dir` (or `dir/<config>`). A missing directory, or
/// one without either split directory, is `Unavailable`; one with only one split, or a split directory with no
/// parquet file, is an error that says which is missing.
pub fn load(dir: &Path, config: &str, layout: &ParquetLayout<'_>) -> Result<(Split, Split)> {
    crate::sources::hub::load(&shards(dir, config)?, layout)
}

/// The shards of both splits, each split's in name order (`0000.parquet`, `0001.parquet`, ...).
pub fn shards(dir: &Path, config: &str) -> Result<HubFiles> {
    if !dir.is_dir() {
        return Err(DataError::unavailable(SourceKind::Local, format!("no directory {}", dir.display())));
    }
    let has_splits = |d: &Path| SPLITS.iter().any(|s| d.join(s).is_dir());
    let root = [dir.to_path_buf(), dir.join(config)].into_iter().find(|d| has_splits(d)).ok_or_else(|| {
        DataError::unavailable(
            SourceKind::Local,
            format!("{} holds no train/ or test/ directory of parquet files (nor {config}/train/)", dir.display()),
        )
    })?;
    let mut found = Vec::with_capacity(SPLITS.len());
    for split in SPLITS {
        let split_dir = root.join(split);
        if !split_dir.is_dir() {
            return Err(DataError::bad_file(
                &root,
                format!("has no {split}/ directory of parquet files; add it, or remove the directory"),
            ));
        }
        let entries = std::fs::read_dir(&split_dir).map_err(|e| DataError::io(&split_dir, e))?;
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "parquet") && p.is_file())
            .collect();
        if paths.is_empty() {
            return Err(DataError::bad_file(&split_dir, "holds no .parquet file; copy the split's shards here"));
        }
        paths.sort();
        found.push(paths);
    }
    let test = found.pop().unwrap_or_default();
    let train = found.pop().unwrap_or_default();
    Ok(HubFiles { train, test })
}
