//! The morphometry records: what each continuous code of a run controls, measured on its generated digits
//! (`<run>/morphometry.json`, written by the run from its trained generator with `ssinfogan_morphometry`), and the
//! real test digits' morphometry beside an experiment's runs (`<results>/<experiment>/real-morphometry.json`), the
//! yardstick of both.
//!
//! For each continuous code the run generates lines of images: along a line only that code moves (over the sweep
//! values, [−2, 2]); the noise, the other codes and the class code are drawn once per line. Per morphometric the
//! record keeps Spearman's ρ between the code and the morphometric along each line (its mean and spread over the
//! lines), the mutual information between code value and morphometric over all lines, and the morphometric's mean
//! and spread at each sweep value (the figure's curve and band).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::run_dir::{read_bytes, write_atomically, RunFileError, MORPHOMETRY, REAL_MORPHOMETRY};

/// The grid of quantiles a distribution is kept on (probabilities (i + ½) / 100).
pub const QUANTILES: usize = 100;

/// One morphometric's distribution over a set of digits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Distribution {
    pub name: String,
    pub mean: f64,
    pub sd: f64,
    /// At the probabilities (i + ½) / [`QUANTILES`]: the 5% and 95% points are entries 4.5 and 94.5, and the
    /// Wasserstein distance of two distributions is the mean distance of their quantiles.
    pub quantiles: Vec<f64>,
}

impl Distribution {
    /// The range holding the middle 90% of the digits.
    pub fn middle_90(&self) -> (f64, f64) {
        let q = &self.quantiles;
        ((q[4] + q[5]) / 2.0, (q[94] + q[95]) / 2.0)
    }
}

/// The real digits' morphometry: the yardstick of what a code's sweep covers and of how the generated digits are
/// distributed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RealMorphometry {
    /// The data it was measured on (its `content_sha256`, as the runs record it) and where it came from.
    pub data_sha256: String,
    pub origin: String,
    pub digits: usize,
    /// Digits with a measurable shape (the others, blank, are left out).
    pub measured: usize,
    /// Per morphometric over all test digits, then per class.
    pub all: Vec<Distribution>,
    pub classes: Vec<Vec<Distribution>>,
}

pub fn write_real_morphometry(dir: &Path, record: &RealMorphometry) -> Result<PathBuf, RunFileError> {
    let path = dir.join(REAL_MORPHOMETRY);
    let json = serde_json::to_vec(record).map_err(|e| RunFileError::io(&path, e))?;
    write_atomically(&path, &json).map_err(|e| RunFileError::io(&path, e))?;
    Ok(path)
}

pub fn read_real_morphometry(dir: &Path) -> Result<Option<RealMorphometry>, RunFileError> {
    let path = dir.join(REAL_MORPHOMETRY);
    let Some(bytes) = read_bytes(&path)? else { return Ok(None) };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| RunFileError::io(&path, format!("{e} (delete it: the report measures the test split again)")))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MorphometryRecord {
    /// The values each code takes along a line.
    pub sweep_values: Vec<f32>,
    /// Lines per code (noise draws × class code values).
    pub lines: usize,
    pub codes: Vec<CodeMorphometry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CodeMorphometry {
    /// `c1`, `c2`, …: the continuous code swept.
    pub code: String,
    /// Lines whose every image had a measurable digit (the others are left out of ρ and the mutual information).
    pub measured_lines: usize,
    pub morphometrics: Vec<MorphometricEffect>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MorphometricEffect {
    /// One of `ssinfogan_morphometry::NAMES`.
    pub name: String,
    /// Spearman's ρ along a line, mean and standard deviation over the lines (a line along which the morphometric
    /// does not change at all counts as ρ = 0).
    pub spearman_mean: f64,
    pub spearman_sd: f64,
    /// I(code value; morphometric) in nats over all lines, the morphometric cut into as many equal-count bins as
    /// the code has values; and divided by ln(values), the code's entropy (1: the morphometric tells the value).
    pub mutual_information: f64,
    pub normalised_mutual_information: f64,
    /// Mean and standard deviation over the lines at each sweep value.
    pub mean_along_sweep: Vec<f64>,
    pub sd_along_sweep: Vec<f64>,
}

pub fn write_morphometry(run_root: &Path, record: &MorphometryRecord) -> Result<PathBuf, RunFileError> {
    let path = run_root.join(MORPHOMETRY);
    let json = serde_json::to_vec_pretty(record).map_err(|e| RunFileError::io(&path, e))?;
    write_atomically(&path, &json).map_err(|e| RunFileError::io(&path, e))?;
    Ok(path)
}

/// The run's `morphometry.json`; `None` when the run has not written one (a run of colour images, or one
/// completed before runs measured it).
pub fn read_morphometry(run_root: &Path) -> Result<Option<MorphometryRecord>, RunFileError> {
    let path = run_root.join(MORPHOMETRY);
    let Some(bytes) = read_bytes(&path)? else { return Ok(None) };
    serde_json::from_slice(&bytes).map(Some).map_err(|e| {
        let fix = "delete it and run the report with the run's checkpoint present to write it again";
        RunFileError::io(&path, format!("{e}: not a morphometry record ({fix})"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(slant: f64) -> MorphometryRecord {
        let effect = |name: &str, rho: f64, nmi: f64| MorphometricEffect {
            name: name.into(),
            spearman_mean: rho,
            spearman_sd: 0.1,
            mutual_information: nmi * 2.0,
            normalised_mutual_information: nmi,
            mean_along_sweep: vec![0.0; 9],
            sd_along_sweep: vec![0.0; 9],
        };
        MorphometryRecord {
            sweep_values: vec![-2.0, 2.0],
            lines: 10,
            codes: vec![CodeMorphometry {
                code: "c1".into(),
                measured_lines: 10,
                morphometrics: vec![effect("thickness", 0.1, 0.05), effect("slant", slant, 0.6)],
            }],
        }
    }

    #[test]
    fn a_record_reads_back_as_written() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_morphometry(dir.path()).unwrap(), None);
        write_morphometry(dir.path(), &record(-0.9)).unwrap();
        assert_eq!(read_morphometry(dir.path()).unwrap(), Some(record(-0.9)));
        std::fs::write(dir.path().join(MORPHOMETRY), "{").unwrap();
        let err = read_morphometry(dir.path()).unwrap_err().to_string();
        assert!(err.contains(MORPHOMETRY) && err.contains("delete it"), "{err}");
    }
}
