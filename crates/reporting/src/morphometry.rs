//! What each continuous code controls, measured: a run's `morphometry.json` (written by the run from its trained
//! generator, see `ssinfogan_morphometry`), and the report's table of it over seeds, on which claim 4 rests.
//!
//! For each continuous code the run generates lines of images: along a line only that code moves (over the sweep
//! values, [−2, 2]); the noise, the other codes and the class code are drawn once per line. Per morphometric the
//! record keeps Spearman's ρ between the code and the morphometric along each line (its mean and spread over the
//! lines), the mutual information between code value and morphometric over all lines, and the morphometric's mean
//! and spread at each sweep value (the figure's curve and band). The tables and words over seeds are
//! `morphometry_summary`'s.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::ReportError;
use crate::written::read_bytes;

/// A run's morphometry of its continuous codes.
pub const MORPHOMETRY_FILE: &str = ssinfogan_plan::run_dir::MORPHOMETRY;

/// The morphometry of the real test split, beside the experiment's runs (`<results>/<experiment>/`).
pub const REAL_MORPHOMETRY_FILE: &str = "real-morphometry.json";

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

pub fn write_real_morphometry(dir: &Path, record: &RealMorphometry) -> Result<PathBuf, ReportError> {
    let path = dir.join(REAL_MORPHOMETRY_FILE);
    let json = serde_json::to_vec(record).map_err(|e| ReportError::io(&path, e))?;
    ssinfogan_core::run_dir::write_atomically(&path, &json).map_err(|e| ReportError::io(&path, e))?;
    Ok(path)
}

pub fn read_real_morphometry(dir: &Path) -> Result<Option<RealMorphometry>, ReportError> {
    let path = dir.join(REAL_MORPHOMETRY_FILE);
    let Some(bytes) = read_bytes(&path)? else { return Ok(None) };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| ReportError::io(&path, format!("{e} (delete it: the report measures the test split again)")))
}

/// A code "controls" a morphometric when the mean |ρ| along its lines reaches this (a strong monotone relation).
pub const CONTROL_THRESHOLD: f64 = 0.7;

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

pub fn write_morphometry(run_root: &Path, record: &MorphometryRecord) -> Result<PathBuf, ReportError> {
    let path = run_root.join(MORPHOMETRY_FILE);
    let json = serde_json::to_vec_pretty(record).map_err(|e| ReportError::io(&path, e))?;
    ssinfogan_core::run_dir::write_atomically(&path, &json).map_err(|e| ReportError::io(&path, e))?;
    Ok(path)
}

/// The run's `morphometry.json`; `None` when the run has not written one (a run of colour images, or one
/// completed before runs measured it).
pub fn read_morphometry(run_root: &Path) -> Result<Option<MorphometryRecord>, ReportError> {
    let path = run_root.join(MORPHOMETRY_FILE);
    let Some(bytes) = read_bytes(&path)? else { return Ok(None) };
    serde_json::from_slice(&bytes).map(Some).map_err(|e| {
        ReportError::io(&path, format!("{e}: not a morphometry record (delete it and run the report with the run's checkpoint present to write it again)"))
    })
}

/// One (variant, labels) group's morphometry, a record per completed seed.
#[derive(Debug, Clone)]
pub struct GroupMorphometry {
    pub variant: String,
    pub n_labelled: usize,
    /// `ss-infogan (132 labels)`.
    pub group: String,
    pub seeds: Vec<u64>,
    pub records: Vec<MorphometryRecord>,
    /// Per seed, per morphometric: the Wasserstein distance of the run's final samples from the real test digits,
    /// over the real digits' standard deviation (0: the same distribution); empty without the real morphometry.
    pub distance_to_real: Vec<Vec<f64>>,
    /// The same per class, code value k's samples against the real digits of class k, averaged over the classes
    /// (each over its own real standard deviation): for variants with labels only, whose code k means class k.
    pub class_distance_to_real: Vec<Vec<f64>>,
}

/// What one code of one run moves most, and next most, by |ρ|: (morphometric, ρ).
#[derive(Debug, Clone, PartialEq)]
pub struct Control {
    pub code: String,
    pub top: Option<(String, f64)>,
    pub next: Option<(String, f64)>,
    /// A MIG-style gap: how much more of the code's value its most informative morphometric tells than the next
    /// one (difference of their normalised mutual information; 0 when it has fewer than two).
    pub gap: f64,
}

/// Per code of a run, its strongest and second strongest morphometric. Which code comes to mean what, and in
/// which direction, is the run's own (InfoGAN's codes are exchangeable and symmetric): runs are compared by what
/// their codes control, never code by code.
pub fn controls(record: &MorphometryRecord) -> Vec<Control> {
    record
        .codes
        .iter()
        .map(|code| {
            let mut by_rho: Vec<&MorphometricEffect> = code.morphometrics.iter().collect();
            by_rho.sort_by(|a, b| b.spearman_mean.abs().total_cmp(&a.spearman_mean.abs()));
            let pick = |i: usize| by_rho.get(i).map(|m| (m.name.clone(), m.spearman_mean));
            let mut information: Vec<f64> =
                code.morphometrics.iter().map(|m| m.normalised_mutual_information).collect();
            information.sort_by(|a, b| b.total_cmp(a));
            let gap = match information.as_slice() {
                [first, second, ..] => first - second,
                _ => 0.0,
            };
            Control { code: code.code.clone(), top: pick(0), next: pick(1), gap }
        })
        .collect()
}

/// A run's codes disentangle when each moves its top morphometric strongly (|ρ| ≥ [`CONTROL_THRESHOLD`]) and
/// no two share their top morphometric.
pub fn disentangled(controls: &[Control]) -> bool {
    let tops: Vec<&(String, f64)> = controls.iter().filter_map(|c| c.top.as_ref()).collect();
    let distinct = tops.iter().enumerate().all(|(i, a)| tops[i + 1..].iter().all(|b| b.0 != a.0));
    !tops.is_empty() && tops.len() == controls.len() && tops.iter().all(|t| t.1.abs() >= CONTROL_THRESHOLD) && distinct
}

/// "seed 1: c1 slant (ρ = 0.91, gap 0.05), c2 area (ρ = 0.96, gap 0.02) (distinct)".
pub fn describe_run(seed: u64, controls: &[Control]) -> String {
    let codes: Vec<String> = controls
        .iter()
        .map(|c| match &c.top {
            Some((name, rho)) => format!("{} {name} (ρ = {rho:.2}, gap {:.2})", c.code, c.gap),
            None => format!("{} unmeasured", c.code),
        })
        .collect();
    let verdict = if disentangled(controls) { "distinct" } else { "not distinct" };
    format!("seed {seed}: {} ({verdict})", codes.join(", "))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A morphometric's record with the given ρ and normalised mutual information (also the summary's tests').
    pub(crate) fn effect(name: &str, rho: f64, nmi: f64) -> MorphometricEffect {
        MorphometricEffect {
            name: name.into(),
            spearman_mean: rho,
            spearman_sd: 0.1,
            mutual_information: nmi * 2.0,
            normalised_mutual_information: nmi,
            mean_along_sweep: vec![0.0; 9],
            sd_along_sweep: vec![0.0; 9],
        }
    }

    fn record(slant: f64) -> MorphometryRecord {
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
        std::fs::write(dir.path().join(MORPHOMETRY_FILE), "{").unwrap();
        let err = read_morphometry(dir.path()).unwrap_err().to_string();
        assert!(err.contains(MORPHOMETRY_FILE) && err.contains("delete it"), "{err}");
    }
}
