//! CIFAR-10's binary version (`cifar-10-binary.tar.gz` from <https://www.cs.toronto.edu/~kriz/cifar.html>):
//! `data_batch_1.bin` … `data_batch_5.bin` (train) and `test_batch.bin`, in `data/cifar10/` itself or in the
//! `cifar-10-batches-bin/` directory the tarball unpacks to.
//!
//! Each file is a run of 3,073-byte records: one label byte 0–9, then the 32×32 image as 1,024 red, 1,024
//! green and 1,024 blue bytes, each plane row-major. That is already the CHW layout of a
//! [`Split`], so the bytes are only scaled, never transposed. The official files hold
//! 10,000 records each; any whole number of records is accepted, so a subset is read as a subset.

use std::path::{Path, PathBuf};

use crate::error::{DataError, Result};
use crate::source_kind::SourceKind;
use crate::split::Split;

/// The directory `cifar-10-binary.tar.gz` unpacks to.
pub const BATCHES_DIR: &str = "cifar-10-batches-bin";
pub const TRAIN_FILES: [&str; 5] =
    ["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"];
pub const TEST_FILE: &str = "test_batch.bin";
/// The directory the Python version (`cifar-10-python.tar.gz`) unpacks to; it holds pickles, not records.
const PYTHON_BATCHES_DIR: &str = "cifar-10-batches-py";

const IMAGE_BYTES: usize = 3 * 32 * 32;
/// One label byte, then the image.
pub const RECORD_BYTES: usize = 1 + IMAGE_BYTES;
const CLASSES: u8 = 10;

/// Reads train and test splits from `dir` or `dir/cifar-10-batches-bin`. A missing directory, or one without
/// any of the six files, is `Unavailable`; some but not all of them is an error that lists the missing ones.
pub fn load(dir: &Path) -> Result<(Split, Split)> {
    if !dir.is_dir() {
        return Err(DataError::unavailable(SourceKind::Local, format!("no directory {}", dir.display())));
    }
    let all_files: Vec<&str> = TRAIN_FILES.iter().copied().chain([TEST_FILE]).collect();
    let present = |d: &Path| all_files.iter().filter(|f| d.join(f).is_file()).count();
    let Some(root) = [dir.to_path_buf(), dir.join(BATCHES_DIR)].into_iter().find(|d| present(d) > 0) else {
        if dir.join(PYTHON_BATCHES_DIR).is_dir() {
            return Err(DataError::bad_file(
                dir.join(PYTHON_BATCHES_DIR),
                "this is CIFAR-10's Python (pickle) version; this loader reads the binary version: unpack \
                 cifar-10-binary.tar.gz into the same directory",
            ));
        }
        return Err(DataError::unavailable(
            SourceKind::Local,
            format!(
                "{} holds none of the CIFAR-10 binary files {} (nor {BATCHES_DIR}/)",
                dir.display(),
                all_files.join(", ")
            ),
        ));
    };
    let missing: Vec<&str> = all_files.iter().copied().filter(|f| !root.join(f).is_file()).collect();
    if !missing.is_empty() {
        return Err(DataError::bad_file(
            &root,
            format!(
                "incomplete CIFAR-10 binary directory: missing {}; unpack cifar-10-binary.tar.gz again",
                missing.join(", ")
            ),
        ));
    }
    let train_paths: Vec<PathBuf> = TRAIN_FILES.iter().map(|f| root.join(f)).collect();
    let mut train = Split { images: Vec::new(), labels: Vec::new() };
    for path in &train_paths {
        read_batch_into(path, &mut train)?;
    }
    let mut test = Split { images: Vec::new(), labels: Vec::new() };
    read_batch_into(&root.join(TEST_FILE), &mut test)?;
    Ok((train, test))
}

/// Appends the records of one batch file to `split`.
pub fn read_batch_into(path: &Path, split: &mut Split) -> Result<()> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    let (records, left_over) = (bytes.len() / RECORD_BYTES, bytes.len() % RECORD_BYTES);
    if bytes.is_empty() || left_over != 0 {
        return Err(DataError::bad_file(
            path,
            format!(
                "{} bytes are not a whole number of {RECORD_BYTES}-byte records (1 label + {IMAGE_BYTES} pixels): \
                 {records} records and {left_over} bytes left over; the file is truncated or not a CIFAR-10 \
                 batch, download cifar-10-binary.tar.gz again",
                bytes.len()
            ),
        ));
    }
    split.images.reserve(records * IMAGE_BYTES);
    split.labels.reserve(records);
    for (index, record) in bytes.chunks_exact(RECORD_BYTES).enumerate() {
        let label = record[0];
        if label >= CLASSES {
            return Err(DataError::bad_file(
                path,
                format!(
                    "record {index} has label {label}, but CIFAR-10's are 0–9; is this CIFAR-100's binary \
                     version (2 label bytes per record)? Use cifar-10-binary.tar.gz"
                ),
            ));
        }
        split.labels.push(label);
        split.images.extend(record[1..].iter().map(|&p| f32::from(p) / 255.0));
    }
    Ok(())
}
