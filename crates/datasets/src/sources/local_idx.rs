//! A directory of the four MNIST-style IDX files, raw or `.gz`: a user's own copy (`data/mnist/`,
//! `--data-dir`) or the directory a Debian package installs them in (Fashion-MNIST's `dataset-fashion-mnist`;
//! where it lies is in [`ssinfogan_dataset_packages`]).

use std::path::{Path, PathBuf};

use ssinfogan_core::ImageSpec;

use crate::error::{DataError, Result};
use crate::idx;
use crate::source_kind::SourceKind;
use crate::split::Split;

/// The four files' base names, as LeCun and Zalando publish them.
pub const FILE_NAMES: [&str; 4] =
    ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"];

/// Finds `name` or `name.gz` in `dir`.
fn find(dir: &Path, name: &str) -> Option<PathBuf> {
    [dir.join(name), dir.join(format!("{name}.gz"))].into_iter().find(|p| p.is_file())
}

/// Reads train and test splits from `dir`. A missing directory, or one without any of the four files, is
/// `Unavailable`; a directory with only some of them is an error that lists the missing ones.
pub fn load(dir: &Path, source: SourceKind, image: ImageSpec) -> Result<(Split, Split)> {
    if !dir.is_dir() {
        return Err(DataError::unavailable(source, format!("no directory {}", dir.display())));
    }
    let found: Vec<Option<PathBuf>> = FILE_NAMES.iter().map(|n| find(dir, n)).collect();
    let missing: Vec<&str> = FILE_NAMES.iter().zip(&found).filter(|(_, f)| f.is_none()).map(|(n, _)| *n).collect();
    if missing.len() == FILE_NAMES.len() {
        return Err(DataError::unavailable(
            source,
            format!("{} holds none of the IDX files {} (raw or .gz)", dir.display(), FILE_NAMES.join(", ")),
        ));
    }
    if !missing.is_empty() {
        return Err(DataError::bad_file(
            dir,
            format!(
                "incomplete IDX directory: missing {} (raw or .gz); add them or remove the directory",
                missing.join(", ")
            ),
        ));
    }
    let paths: Vec<PathBuf> = found.into_iter().flatten().collect();
    let train = read_split(&paths[0], &paths[1], image)?;
    let test = read_split(&paths[2], &paths[3], image)?;
    Ok((train, test))
}

fn read_split(images_path: &Path, labels_path: &Path, image: ImageSpec) -> Result<Split> {
    let images = idx::read_images(images_path)?;
    if image.channels != 1 || (images.rows, images.cols) != (image.height, image.width) {
        return Err(DataError::bad_file(
            images_path,
            format!("images are {}×{}, this dataset's are {image}", images.rows, images.cols),
        ));
    }
    let labels = idx::read_labels(labels_path)?;
    if labels.len() != images.count {
        return Err(DataError::bad_file(
            labels_path,
            format!(
                "{} labels for the {} images of {}: the files belong to different sets; fetch both again",
                labels.len(),
                images.count,
                images_path.display()
            ),
        ));
    }
    let images = images.pixels.iter().map(|&p| f32::from(p) / 255.0).collect();
    Ok(Split { images, labels })
}
