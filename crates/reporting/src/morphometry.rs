//! What each continuous code controls, measured: the report's reading of the runs' morphometry records
//! (`ssinfogan_plan::morphometry`, written by each run from its trained generator), and the table of it over seeds
//! on which claim 4 rests. The tables and words over seeds are `morphometry_summary`'s.

pub use ssinfogan_plan::morphometry::{
    CodeMorphometry, Distribution, MorphometricEffect, MorphometryRecord, RealMorphometry, QUANTILES,
};

/// A code "controls" a morphometric when the mean |ρ| along its lines reaches this (a strong monotone relation).
pub const CONTROL_THRESHOLD: f64 = 0.7;

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
}
