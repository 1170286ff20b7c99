//! A group's morphometry over its seeds, in tables and words: what claim 4's verdict and `tables/morphometry.*`
//! say of the records `morphometry` owns.

use std::fmt::Write as _;

use crate::aggregate::Stat;
use crate::morphometry::{controls, describe_run, disentangled, GroupMorphometry, RealMorphometry, CONTROL_THRESHOLD};
use crate::significance::mean_interval;

/// Per morphometric, over a group's seeds: the strongest |ρ| any code of the run has with it (mean and 95%
/// interval over seeds), and in how many seeds it is some code's top morphometric.
pub struct MorphometricSummary {
    pub name: String,
    pub strongest: Stat,
    pub top_of_a_code: usize,
}

pub fn summarise(group: &GroupMorphometry) -> Vec<MorphometricSummary> {
    let Some(first) = group.records.first() else { return Vec::new() };
    let names: Vec<String> =
        first.codes.first().map(|c| c.morphometrics.iter().map(|m| m.name.clone()).collect()).unwrap_or_default();
    names
        .into_iter()
        .filter_map(|name| {
            let strongest: Vec<f64> = group
                .records
                .iter()
                .map(|r| {
                    r.codes
                        .iter()
                        .flat_map(|c| c.morphometrics.iter().filter(|m| m.name == name))
                        .map(|m| m.spearman_mean.abs())
                        .fold(0.0, f64::max)
                })
                .collect();
            let top_of_a_code = group
                .records
                .iter()
                .filter(|r| controls(r).iter().any(|c| c.top.as_ref().is_some_and(|t| t.0 == name)))
                .count();
            Some(MorphometricSummary { name, strongest: Stat::of(&strongest)?, top_of_a_code })
        })
        .collect()
}

fn format_strongest(s: &Stat) -> String {
    match mean_interval(*s) {
        Some(half) => format!("{:.2} ± {:.2}", s.mean, half),
        None => format!("{:.2}", s.mean),
    }
}

/// A group's morphometry in words: what each seed's codes move, and the strongest control of slant and thickness.
pub fn describe(group: &GroupMorphometry) -> String {
    let runs: Vec<String> =
        group.seeds.iter().zip(&group.records).map(|(seed, r)| describe_run(*seed, &controls(r))).collect();
    let distinct = group.records.iter().filter(|r| disentangled(&controls(r))).count();
    format!("{}; distinct in {distinct} of {} seeds", runs.join("; "), group.records.len())
}

/// `tables/morphometry.csv`: everything the records hold per (group, seed, code, morphometric); and
/// `tables/morphometry.md`: per group, each morphometric's strongest control over seeds and the generated digits'
/// distance from the real ones; each seed's codes; and the real test digits' ranges, the yardstick of a sweep.
pub fn tables(groups: &[GroupMorphometry], real: Option<&RealMorphometry>) -> (String, String) {
    let mut csv = String::from(
        "group,seed,code,morphometric,spearman_mean,spearman_sd,mutual_information,normalised_mutual_information\n",
    );
    let mut md = String::from(
        "| group | morphometric | strongest \\|ρ\\| of a code (mean ± 95% CI over seeds) | seeds where a code moves it most \
         | generated against real digits: Wasserstein / real sd | the same per class (code k against class k) |\n\
         |---|---|---|---|---|---|\n",
    );
    for group in groups {
        for (seed, record) in group.seeds.iter().zip(&group.records) {
            for code in &record.codes {
                for m in &code.morphometrics {
                    let _ = writeln!(
                        csv,
                        "\"{}\",{seed},{},{},{},{},{},{}",
                        group.group,
                        code.code,
                        m.name,
                        m.spearman_mean,
                        m.spearman_sd,
                        m.mutual_information,
                        m.normalised_mutual_information
                    );
                }
            }
        }
        for (i, s) in summarise(group).iter().enumerate() {
            let over_seeds = |per_seed: &[Vec<f64>]| {
                let values: Vec<f64> = per_seed.iter().filter_map(|d| d.get(i).copied()).collect();
                Stat::of(&values).map(|d| format_strongest(&d)).unwrap_or_else(|| "–".into())
            };
            let (distance, by_class) = (over_seeds(&group.distance_to_real), over_seeds(&group.class_distance_to_real));
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} of {} | {distance} | {by_class} |",
                group.group,
                s.name,
                format_strongest(&s.strongest),
                s.top_of_a_code,
                s.strongest.n
            );
        }
    }
    md.push_str("\nWhat each seed's codes move most (|ρ| ≥ ");
    let _ = write!(
        md,
        "{CONTROL_THRESHOLD} and a different morphometric per code: distinct; gap: how much more the code's most \
         informative morphometric tells of its value than the next, in normalised mutual information):\n\n"
    );
    for group in groups {
        let _ = writeln!(md, "- {}: {}", group.group, describe(group));
    }
    if let Some(real) = real {
        let _ = write!(
            md,
            "\nThe real test digits ({}, {} of {} measurable): mean, and the range of the middle 90%\n\n| digits |",
            real.origin, real.measured, real.digits
        );
        for d in &real.all {
            let _ = write!(md, " {} |", d.name);
        }
        md.push_str("\n|---|");
        md.push_str(&"---|".repeat(real.all.len()));
        md.push('\n');
        let rows = std::iter::once(("all".to_string(), &real.all))
            .chain(real.classes.iter().enumerate().map(|(k, c)| (format!("class {k}"), c)));
        for (label, distributions) in rows {
            let _ = write!(md, "| {label} |");
            for d in distributions {
                let (low, high) = d.middle_90();
                let _ = write!(md, " {:.2} ({:.2} – {:.2}) |", d.mean, low, high);
            }
            md.push('\n');
        }
        md.push_str("\nHow far each seed's codes move their top morphometric from one end of the sweep to the other, ");
        md.push_str("against the real digits' middle 90%:\n\n");
        for group in groups {
            let reach: Vec<String> = group
                .seeds
                .iter()
                .zip(&group.records)
                .flat_map(|(seed, record)| {
                    record.codes.iter().filter_map(move |code| {
                        let top = code
                            .morphometrics
                            .iter()
                            .max_by(|a, b| a.spearman_mean.abs().total_cmp(&b.spearman_mean.abs()))?;
                        let real = real.all.iter().find(|d| d.name == top.name)?;
                        let (low, high) = real.middle_90();
                        let moved = top.mean_along_sweep.last()? - top.mean_along_sweep.first()?;
                        Some(format!(
                            "seed {seed} {} {} by {moved:+.2} ({:.0}% of {:.2})",
                            code.code,
                            top.name,
                            100.0 * moved.abs() / (high - low),
                            high - low
                        ))
                    })
                })
                .collect();
            let _ = writeln!(md, "- {}: {}", group.group, reach.join("; "));
        }
    }
    (csv, md)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::morphometry::tests::effect;
    use crate::morphometry::{CodeMorphometry, MorphometryRecord};

    #[test]
    fn runs_are_compared_by_what_their_codes_control_whatever_the_code_or_sign() {
        let with_codes = |c1: (&str, f64), c2: (&str, f64)| {
            let code = |name: &str, (top, rho): (&str, f64)| CodeMorphometry {
                code: name.into(),
                measured_lines: 10,
                morphometrics: ["thickness", "slant", "width"]
                    .iter()
                    .map(|m| if *m == top { effect(m, rho, 0.3) } else { effect(m, 0.2, 0.1) })
                    .collect(),
            };
            MorphometryRecord { sweep_values: vec![-2.0, 2.0], lines: 10, codes: vec![code("c1", c1), code("c2", c2)] }
        };
        // Seed 1: c1 slant, c2 thickness; seed 2 the other way round and with the opposite sign; seed 3: both
        // codes move slant.
        let records = vec![
            with_codes(("slant", 0.9), ("thickness", 0.8)),
            with_codes(("thickness", -0.85), ("slant", -0.95)),
            with_codes(("slant", 0.9), ("slant", 0.75)),
        ];
        let distinct: Vec<bool> = records.iter().map(|r| disentangled(&controls(r))).collect();
        assert_eq!(distinct, [true, true, false]);
        assert!(!disentangled(&controls(&with_codes(("slant", 0.9), ("thickness", 0.5)))), "|ρ| 0.5 is not control");
        let group = GroupMorphometry {
            variant: "v".into(),
            n_labelled: 1,
            group: "g".into(),
            seeds: vec![1, 2, 3],
            records,
            distance_to_real: vec![vec![0.5; 3]; 3],
            class_distance_to_real: Vec::new(),
        };
        let summary = summarise(&group);
        let slant = summary.iter().find(|s| s.name == "slant").unwrap();
        assert!((slant.strongest.mean - (0.9 + 0.95 + 0.9) / 3.0).abs() < 1e-12);
        assert_eq!(slant.top_of_a_code, 3);
        assert_eq!(summary.iter().find(|s| s.name == "thickness").unwrap().top_of_a_code, 2);
        let (csv, md) = tables(&[group], None);
        assert_eq!(csv.lines().count(), 1 + 3 * 2 * 3);
        assert!(md.contains("| 0.50 ± 0.00 | – |"), "the distance to the real digits: {md}");
        assert!(md.contains("| g | slant | 0.92 ± "), "{md}");
        assert!(
            md.contains("seed 2: c1 thickness (ρ = -0.85, gap 0.20), c2 slant (ρ = -0.95, gap 0.20) (distinct)"),
            "{md}"
        );
        assert!(md.contains("distinct in 2 of 3 seeds"), "{md}");
    }
}
