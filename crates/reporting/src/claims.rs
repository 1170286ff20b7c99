//! `REPORT.md`: the data and protocol at the top, then each of the paper's five claims with the measurement that
//! tests it, the criterion, our numbers and the verdict, then the table, the figures and any failed runs.
//! Verdicts compare ss-InfoGAN at its fewest labels with the variant trained without labels (InfoGAN, same code).
//! With one seed there is no spread, and the report says that a verdict rests on one run.

use std::fmt::Write as _;

use crate::tables::{fmt_stat, GroupRow, Stat, Tables, CONVERGENCE_THRESHOLDS};
use crate::{ReportError, ReportInputs, Written};

/// Claim 1's criterion: at most this C_err with code k read as class k.
pub const CONTROL_THRESHOLD: f64 = 0.10;
/// Claim 4's criteria: a continuous sweep keeps the class in this fraction of a row, and changes the image by at
/// least this mean absolute pixel difference between its ends.
pub const STABILITY_THRESHOLD: f64 = 0.9;
pub const EFFECT_THRESHOLD: f64 = 0.02;

#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Held,
    NotHeld,
    NotMeasured(String),
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verdict::Held => write!(f, "**held**"),
            Verdict::NotHeld => write!(f, "**not held**"),
            Verdict::NotMeasured(why) => write!(f, "**not measured** ({why})"),
        }
    }
}

/// A claim, what tests it and what came out.
pub struct ClaimResult {
    pub claim: &'static str,
    pub measurement: String,
    pub verdict: Verdict,
}

fn mean(row: &GroupRow, metric: &str) -> Option<f64> {
    row.finals.get(metric).map(|s| s.mean)
}

/// "a < b", and by more than the larger seed spread when both have one.
fn clearly_less(a: Stat, b: Stat) -> bool {
    a.mean < b.mean && (a.mean - b.mean).abs() > a.std.unwrap_or(0.0).max(b.std.unwrap_or(0.0))
}

/// The five claims of PAPER.md, judged on `tables` (and the sweep grids of `inputs`).
pub fn judge(tables: &Tables, inputs: &ReportInputs) -> Vec<ClaimResult> {
    let baseline = tables.rows.iter().find(|r| r.n_labelled == 0 && r.completed > 0);
    let fewest = tables.rows.iter().filter(|r| r.n_labelled > 0 && r.completed > 0).min_by_key(|r| r.n_labelled);
    let missing = |what: &str| Verdict::NotMeasured(format!("no completed {what} run"));
    let mut results = Vec::new();

    // 1. Control: code k ⇒ class k.
    results.push(match (fewest, baseline) {
        (Some(ss), base) => {
            let identity = ss.finals.get("c_err_identity").copied();
            let mut text = format!(
                "C_err with code k read as class k (identity mapping), {}: {}; criterion ≤ {CONTROL_THRESHOLD:.2}.",
                ss.group,
                fmt_stat(identity, 3)
            );
            for row in tables.rows.iter().filter(|r| r.n_labelled > ss.n_labelled && r.completed > 0) {
                let _ = write!(text, " {}: {}.", row.group, fmt_stat(row.finals.get("c_err_identity").copied(), 3));
            }
            if let Some(base) = base {
                let _ = write!(
                    text,
                    " {} for comparison: identity {}, Hungarian {} (without labels its code values come in no \
                     particular order).",
                    base.group,
                    fmt_stat(base.finals.get("c_err_identity").copied(), 3),
                    fmt_stat(base.finals.get("c_err_hungarian").copied(), 3)
                );
            }
            let verdict = match identity {
                Some(s) if s.mean <= CONTROL_THRESHOLD => Verdict::Held,
                Some(_) => Verdict::NotHeld,
                None => Verdict::NotMeasured("no evaluation in the runs' metrics".into()),
            };
            ClaimResult {
                claim: "the semi-supervised code controls the labelled factor (code k ⇒ class k) with few labels",
                measurement: text,
                verdict,
            }
        }
        (None, _) => ClaimResult {
            claim: "the semi-supervised code controls the labelled factor (code k ⇒ class k) with few labels",
            measurement: String::new(),
            verdict: missing("semi-supervised"),
        },
    });

    // 2. Sample quality.
    let claim = "sample quality is higher than fully unsupervised InfoGAN";
    results.push(match (fewest, baseline) {
        (Some(ss), Some(base)) => {
            let (a, b) = (ss.finals.get("frechet_distance").copied(), base.finals.get("frechet_distance").copied());
            let measurement = format!(
                "Fréchet distance between real test images and fakes in the evaluation classifier's features (lower \
                 is better): {} {}, {} {}. Classifier confidence on fakes: {} {}, {} {}. Criterion: lower Fréchet \
                 distance, by more than the seed spread.",
                ss.group,
                fmt_stat(a, 2),
                base.group,
                fmt_stat(b, 2),
                ss.group,
                fmt_stat(ss.finals.get("classifier_confidence").copied(), 3),
                base.group,
                fmt_stat(base.finals.get("classifier_confidence").copied(), 3)
            );
            let verdict = match (a, b) {
                (Some(a), Some(b)) if clearly_less(a, b) => Verdict::Held,
                (Some(_), Some(_)) => Verdict::NotHeld,
                _ => Verdict::NotMeasured("no Fréchet distance in the runs' metrics".into()),
            };
            ClaimResult { claim, measurement, verdict }
        }
        _ => ClaimResult { claim, measurement: String::new(), verdict: missing("InfoGAN and ss-InfoGAN") },
    });

    // 3. Convergence.
    let claim = "a few labels speed up convergence";
    results.push(match (fewest, baseline) {
        (Some(ss), Some(base)) => {
            let describe = |row: &GroupRow, t: usize| match Stat::of(&row.convergence[t]) {
                Some(s) => format!("{} iterations ({}/{} seeds)", fmt_stat(Some(s), 0), s.n, row.completed),
                None => "not reached".into(),
            };
            let mut measurement = String::from("First evaluated iteration with C_err (Hungarian mapping) ≤ ");
            for (t, threshold) in CONVERGENCE_THRESHOLDS.iter().enumerate() {
                let _ = write!(
                    measurement,
                    "{:.0}%: {} {}, {} {}; ",
                    threshold * 100.0,
                    ss.group,
                    describe(ss, t),
                    base.group,
                    describe(base, t)
                );
            }
            measurement.push_str("criterion: ss-InfoGAN reaches 10% earlier than InfoGAN, or InfoGAN never does.");
            let ss_iters = Stat::of(&ss.convergence[0]);
            let base_iters = Stat::of(&base.convergence[0]);
            let verdict = match (ss_iters, base_iters) {
                (Some(a), Some(b)) if a.mean < b.mean && a.n == ss.completed => Verdict::Held,
                (Some(a), None) if a.n == ss.completed => Verdict::Held,
                _ => Verdict::NotHeld,
            };
            ClaimResult { claim, measurement, verdict }
        }
        _ => ClaimResult { claim, measurement: String::new(), verdict: missing("InfoGAN and ss-InfoGAN") },
    });

    // 4. Unsupervised codes still disentangle.
    let claim = "the unsupervised codes still disentangle (continuous codes vary smoothly, e.g. rotation, width)";
    let ss_grids: Vec<_> = match fewest {
        Some(ss) => inputs.grids.iter().filter(|g| g.group() == ss.group).collect(),
        None => Vec::new(),
    };
    results.push(if ss_grids.is_empty() {
        ClaimResult { claim, measurement: String::new(), verdict: Verdict::NotMeasured("no sweep grids".into()) }
    } else {
        let mut measurement = format!(
            "Sweeping each continuous code from {:.0} to {:.0} with everything else fixed ({}): ",
            ss_grids[0].values.first().copied().unwrap_or(0.0),
            ss_grids[0].values.last().copied().unwrap_or(0.0),
            ss_grids[0].group()
        );
        for g in &ss_grids {
            let _ = write!(
                measurement,
                "c{}: class kept in {:.1}% of each row, mean pixel change end to end {:.3}; ",
                g.continuous + 1,
                100.0 * g.class_stability,
                g.effect
            );
        }
        if let Some(base) = baseline {
            for g in inputs.grids.iter().filter(|g| g.group() == base.group) {
                let _ = write!(
                    measurement,
                    "{} c{}: {:.1}%, {:.3}; ",
                    base.group,
                    g.continuous + 1,
                    100.0 * g.class_stability,
                    g.effect
                );
            }
        }
        let _ = write!(
            measurement,
            "criterion: every continuous code keeps the class in ≥ {:.0}% of a row and changes the image by ≥ \
             {EFFECT_THRESHOLD}. What each code does (rotation, width) is for the eye: see the sample figures.",
            100.0 * STABILITY_THRESHOLD
        );
        let held = ss_grids.iter().all(|g| g.class_stability >= STABILITY_THRESHOLD && g.effect >= EFFECT_THRESHOLD);
        ClaimResult { claim, measurement, verdict: if held { Verdict::Held } else { Verdict::NotHeld } }
    });

    // 5. Mutual information with the real label semantics.
    let claim = "semi-supervision increases the mutual information between synthetic and real data";
    results.push(match (fewest, baseline) {
        (Some(ss), Some(base)) => {
            let measurement = format!(
                "I(code; class the evaluation classifier sees) / ln K: {} {}, {} {}. I(Q_ss prediction; true label) \
                 on the real test split, nats: {} {}, {} {}. Criterion: both higher with labels.",
                ss.group,
                fmt_stat(ss.finals.get("mi_code_class_normalised").copied(), 3),
                base.group,
                fmt_stat(base.finals.get("mi_code_class_normalised").copied(), 3),
                ss.group,
                fmt_stat(ss.finals.get("mi_q_ss_label").copied(), 3),
                base.group,
                fmt_stat(base.finals.get("mi_q_ss_label").copied(), 3)
            );
            let verdict = match (
                mean(ss, "mi_code_class_normalised"),
                mean(base, "mi_code_class_normalised"),
                mean(ss, "mi_q_ss_label"),
                mean(base, "mi_q_ss_label"),
            ) {
                (Some(a), Some(b), Some(c), Some(d)) if a > b && c > d => Verdict::Held,
                (Some(_), Some(_), Some(_), Some(_)) => Verdict::NotHeld,
                _ => Verdict::NotMeasured("no mutual-information metrics in the runs".into()),
            };
            ClaimResult { claim, measurement, verdict }
        }
        _ => ClaimResult { claim, measurement: String::new(), verdict: missing("InfoGAN and ss-InfoGAN") },
    });
    results
}

/// Writes `REPORT.md` and returns the claims as judged there.
pub fn write_report_md(
    tables: &Tables,
    inputs: &ReportInputs,
    written: &mut Written,
) -> Result<Vec<ClaimResult>, ReportError> {
    let mut md = String::new();
    let d = &inputs.data;
    let _ = writeln!(md, "# {}: ss-InfoGAN against InfoGAN\n", inputs.experiment);
    let _ = writeln!(
        md,
        "**Data:** {} — {} training and {} test images.{}\n",
        d.origin,
        d.train_size,
        d.test_size,
        if d.full_dataset {
            ""
        } else {
            " **A subset of the published dataset, not the full one: numbers are not comparable with the paper's.**"
        }
    );
    if let Some(note) = &d.note {
        let _ = writeln!(md, "_{note}_\n");
    }
    let seeds: std::collections::BTreeSet<u64> = inputs.runs.iter().map(|r| r.seed).collect();
    let _ = writeln!(
        md,
        "**Protocol:** {}{}; seeds {}. Every metric is computed from the final checkpoint of each run, then averaged \
         over seeds (mean ± sample std).{}\n",
        inputs.profile.as_ref().map(|p| format!("profile `{p}`, ")).unwrap_or_default(),
        inputs.schedule,
        seeds.iter().map(u64::to_string).collect::<Vec<_>>().join(", "),
        if seeds.len() < 2 { " **One seed: no spread is known, so each verdict rests on a single run.**" } else { "" }
    );
    match inputs.classifier_accuracy {
        Some(a) => {
            let _ = writeln!(md, "**Evaluation classifier:** {:.2}% accuracy on the real test split.\n", 100.0 * a);
        }
        None => md.push_str("**Evaluation classifier:** no record found.\n\n"),
    }
    let (completed, failed, unfinished) =
        tables.rows.iter().fold((0, 0, 0), |(c, f, u), r| (c + r.completed, f + r.failed.len(), u + r.incomplete));
    let _ = writeln!(md, "**Runs:** {completed} completed, {failed} failed, {unfinished} not finished.\n");
    for s in &inputs.skipped {
        let _ = writeln!(md, "- Skipped: {} with {} labels — {}.", s.variant, s.n_labelled, s.reason);
    }
    if !inputs.skipped.is_empty() {
        md.push('\n');
    }

    if let Some(baseline) = &inputs.baseline {
        let _ = writeln!(
            md,
            "## Ablations (`tables/ablations.csv`, `tables/ablations.md`)\n\nEach row changes one setting of \
             `{baseline}`; cells are mean ± std over seeds and (Δ) the difference of the means to `{baseline}` at \
             the same label count.\n"
        );
        md.push_str(&crate::tables::ablations_markdown(tables, baseline));
        md.push('\n');
    }
    md.push_str("## The paper's claims\n\n| # | claim | verdict |\n|---|---|---|\n");
    let claims = judge(tables, inputs);
    for (i, c) in claims.iter().enumerate() {
        let _ = writeln!(md, "| {} | {} | {} |", i + 1, c.claim, c.verdict);
    }
    md.push('\n');
    for (i, c) in claims.iter().enumerate() {
        let _ = writeln!(md, "### {}. {}\n", i + 1, c.claim);
        if !c.measurement.is_empty() {
            let _ = writeln!(md, "{}\n", c.measurement);
        }
        let _ = writeln!(md, "Verdict: {}\n", c.verdict);
    }

    md.push_str("## Results (`tables/main.csv`, `tables/main.md`)\n\n");
    md.push_str(&crate::tables::markdown(tables, inputs));
    md.push_str(
        "\nQ_err(real) is read under the identity mapping with labels and the Hungarian mapping without. Iterations \
         to a C_err level use the Hungarian mapping, averaged over the seeds that reached it.\n\n",
    );

    md.push_str("## Figures (`figures/`)\n\n");
    for (file, what) in [
        (
            "convergence",
            "C_err (Hungarian mapping) against iteration, one curve per label amount, seed spread as a band",
        ),
        ("c-err-identity", "C_err with code k read as class k against iteration"),
        ("c-err-vs-labels", "final C_err against the number of labels"),
        ("mutual-information", "normalised I(code; classifier's class) against iteration"),
        ("frechet-distance", "Fréchet distance against iteration"),
        ("losses", "training losses against iteration"),
    ] {
        if inputs.results_dir.join("figures").join(format!("{file}.png")).is_file()
            || written.files.iter().any(|f| f.ends_with(format!("figures/{file}.png")))
        {
            let _ = writeln!(md, "- `{file}.png` / `.svg`: {what}.");
        }
    }
    let mut codes: Vec<usize> = inputs.grids.iter().map(|g| g.continuous).collect();
    codes.dedup();
    for code in codes {
        let order: Vec<String> = inputs.grids.iter().filter(|g| g.continuous == code).map(|g| g.group()).collect();
        let _ = writeln!(
            md,
            "- `samples-c{}.png`: rows = code value 0–9, columns = continuous code c{} swept, everything else fixed; \
             panels left to right: {}.",
            code + 1,
            code + 1,
            order.join(", ")
        );
    }
    let failures: Vec<String> =
        tables.rows.iter().flat_map(|r| r.failed.iter().map(move |f| format!("- {}, {f}", r.group))).collect();
    if !failures.is_empty() {
        let _ = writeln!(md, "\n## Failed runs (not averaged in)\n\n{}", failures.join("\n"));
    }
    crate::write_file(&inputs.results_dir.join("REPORT.md"), md.as_bytes(), written)?;
    Ok(claims)
}
