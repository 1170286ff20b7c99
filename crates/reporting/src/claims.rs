//! `REPORT.md`: the data and protocol at the top, then each of the paper's five claims with the measurement that
//! tests it, the criterion, our numbers and the verdict, then the table, the figures and any failed runs.
//! Verdicts compare ss-InfoGAN at its fewest labels with the variant trained without labels (InfoGAN, same code):
//! a comparison holds only where the 95% confidence interval of the difference over seeds (Welch's t) lies on the
//! claimed side of 0, and is "within seed noise" where it contains 0 or a side has fewer than two seeds.

use std::fmt::Write as _;

use ssinfogan_plan::metric;

use crate::aggregate::{fmt_stat, GroupRow, Stat, Tables, CONVERGENCE_THRESHOLDS};
use crate::error::ReportError;
use crate::inputs::ReportInputs;
use crate::significance::Difference;
pub use crate::verdict::{ClaimResult, Verdict};
use crate::written::{write_file, Written};
use crate::{ablations, morphometry, morphometry_summary, significance, tables, timing};

/// Claim 1's criterion: at most this C_err with code k read as class k.
pub const CONTROL_THRESHOLD: f64 = 0.10;
/// Claim 4's criteria: a continuous sweep keeps the class in this fraction of a row, and changes the image by at
/// least this mean absolute pixel difference between its ends.
pub const STABILITY_THRESHOLD: f64 = 0.9;
pub const EFFECT_THRESHOLD: f64 = 0.02;

/// `a − b` of a final metric, if both rows have it.
fn difference(a: &GroupRow, b: &GroupRow, metric: &str) -> Option<Difference> {
    Some(Difference::of(*a.finals.get(metric)?, *b.finals.get(metric)?))
}

/// The verdict on "a is lower than b" (or higher, with `lower = false`).
fn compare(d: Difference, lower: bool) -> Verdict {
    match (d.within_noise(), lower, d.clearly_negative()) {
        (true, ..) => Verdict::WithinNoise,
        (false, true, true) | (false, false, false) => Verdict::Held,
        _ => Verdict::NotHeld,
    }
}

/// The five claims of docs/method.md, judged on `tables` (and the sweep grids of `inputs`).
pub fn judge(tables: &Tables, inputs: &ReportInputs) -> Vec<ClaimResult> {
    let baseline = tables.rows.iter().find(|r| r.n_labelled == 0 && r.completed > 0);
    let fewest = tables.rows.iter().filter(|r| r.n_labelled > 0 && r.completed > 0).min_by_key(|r| r.n_labelled);
    let missing = |what: &str| Verdict::NotMeasured(format!("no completed {what} run"));
    let mut results = Vec::new();

    // 1. Control: code k ⇒ class k.
    results.push(match (fewest, baseline) {
        (Some(ss), base) => {
            let identity = ss.finals.get(metric::C_ERR_IDENTITY).copied();
            let mut text = format!(
                "C_err with code k read as class k (identity mapping), {}: {}; criterion ≤ {CONTROL_THRESHOLD:.2}.",
                ss.group,
                fmt_stat(identity, 3)
            );
            for row in tables.rows.iter().filter(|r| r.n_labelled > ss.n_labelled && r.completed > 0) {
                let _ =
                    write!(text, " {}: {}.", row.group, fmt_stat(row.finals.get(metric::C_ERR_IDENTITY).copied(), 3));
            }
            if let Some(base) = base {
                let _ = write!(
                    text,
                    " {} for comparison: identity {}, Hungarian {} (without labels its code values come in no \
                     particular order).",
                    base.group,
                    fmt_stat(base.finals.get(metric::C_ERR_IDENTITY).copied(), 3),
                    fmt_stat(base.finals.get(metric::C_ERR_HUNGARIAN).copied(), 3)
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
            let (a, b) =
                (ss.finals.get(metric::FRECHET_DISTANCE).copied(), base.finals.get(metric::FRECHET_DISTANCE).copied());
            let measurement = format!(
                "Fréchet distance between real test images and fakes in the evaluation classifier's features (lower \
                 is better): {} {}, {} {}: {}. Classifier confidence on fakes: {} {}, {} {}. Criterion: a lower \
                 Fréchet distance, its 95% interval (Welch's t over seeds) below 0.",
                ss.group,
                fmt_stat(a, 2),
                base.group,
                fmt_stat(b, 2),
                difference(ss, base, metric::FRECHET_DISTANCE).map(|d| d.describe(2)).unwrap_or_else(|| "–".into()),
                ss.group,
                fmt_stat(ss.finals.get(metric::CLASSIFIER_CONFIDENCE).copied(), 3),
                base.group,
                fmt_stat(base.finals.get(metric::CLASSIFIER_CONFIDENCE).copied(), 3)
            );
            let verdict = match (a, b) {
                (Some(a), Some(b)) => compare(Difference::of(a, b), true),
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
            let ss_iters = Stat::of(&ss.convergence[0]);
            let base_iters = Stat::of(&base.convergence[0]);
            let verdict = match (ss_iters, base_iters) {
                (Some(a), Some(b)) if a.n == ss.completed && b.n == base.completed => {
                    let d = Difference::of(a, b);
                    let _ = write!(measurement, "to 10%: {}; ", d.describe(0));
                    compare(d, true)
                }
                (Some(a), Some(_)) if a.n == ss.completed => Verdict::Held,
                (Some(a), None) if a.n == ss.completed => Verdict::Held,
                _ => Verdict::NotHeld,
            };
            measurement.push_str(
                "criterion: every ss-InfoGAN seed reaches 10%, and earlier than InfoGAN (its 95% interval below 0 \
                 where every InfoGAN seed reached it too), or not every InfoGAN seed does.",
            );
            ClaimResult { claim, measurement, verdict }
        }
        _ => ClaimResult { claim, measurement: String::new(), verdict: missing("InfoGAN and ss-InfoGAN") },
    });

    // 4. Unsupervised codes still disentangle.
    let claim = "the unsupervised codes still disentangle (continuous codes vary smoothly, e.g. rotation, width)";
    let ss_grids: Vec<_> = match fewest {
        Some(ss) => inputs.grids.iter().filter(|g| crate::inputs::grid_group(g) == ss.group).collect(),
        None => Vec::new(),
    };
    results.push(if ss_grids.is_empty() {
        ClaimResult { claim, measurement: String::new(), verdict: Verdict::NotMeasured("no sweep grids".into()) }
    } else {
        let mut measurement = format!(
            "Sweeping each continuous code from {:.0} to {:.0} with everything else fixed ({}): ",
            ss_grids[0].values.first().copied().unwrap_or(0.0),
            ss_grids[0].values.last().copied().unwrap_or(0.0),
            crate::inputs::grid_group(ss_grids[0])
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
            for g in inputs.grids.iter().filter(|g| crate::inputs::grid_group(g) == base.group) {
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
        let class_kept = ss_grids.iter().all(|g| g.class_stability >= STABILITY_THRESHOLD);
        let ss_morphometry = fewest.and_then(|ss| inputs.morphometry.iter().find(|m| m.group == ss.group));
        match ss_morphometry {
            Some(ss) => {
                // What each code controls, measured on the generated digits (Morpho-MNIST's morphometrics).
                let _ = write!(
                    measurement,
                    "measured on the digits of {} lines per code (tables/morphometry.md, figures/morphometry-*.png): \
                     {}: {}",
                    ss.records[0].lines,
                    ss.group,
                    morphometry_summary::describe(ss)
                );
                if let Some(base) = baseline.and_then(|b| inputs.morphometry.iter().find(|m| m.group == b.group)) {
                    let _ = write!(measurement, "; {}: {}", base.group, morphometry_summary::describe(base));
                }
                let _ = write!(
                    measurement,
                    ". Criterion: in every seed, every continuous code keeps the class in ≥ {:.0}% of a sweep row \
                     (the first seed's grid) and moves its own morphometric (|ρ| ≥ {} along its lines, a different \
                     one per code). Which code comes to mean what, and its sign, is each run's own.",
                    100.0 * STABILITY_THRESHOLD,
                    morphometry::CONTROL_THRESHOLD
                );
                let held =
                    class_kept && ss.records.iter().all(|r| morphometry::disentangled(&morphometry::controls(r)));
                ClaimResult { claim, measurement, verdict: if held { Verdict::Held } else { Verdict::NotHeld } }
            }
            None => {
                let _ = write!(
                    measurement,
                    "criterion: every continuous code keeps the class in ≥ {:.0}% of a row and changes the image by \
                     ≥ {EFFECT_THRESHOLD}. What each code does (rotation, width) is for the eye: see the sample \
                     figures (no morphometry recorded).",
                    100.0 * STABILITY_THRESHOLD
                );
                let held = class_kept && ss_grids.iter().all(|g| g.effect >= EFFECT_THRESHOLD);
                ClaimResult { claim, measurement, verdict: if held { Verdict::Held } else { Verdict::NotHeld } }
            }
        }
    });

    // 5. Mutual information with the real label semantics.
    let claim = "semi-supervision increases the mutual information between synthetic and real data";
    results.push(match (fewest, baseline) {
        (Some(ss), Some(base)) => {
            let measurement = format!(
                "I(code; class the evaluation classifier sees) / ln K: {} {}, {} {}: {}. I(Q_ss prediction; true \
                 label) on the real test split, nats: {} {}, {} {}: {}. Criterion: both higher with labels, each 95% \
                 interval (Welch's t over seeds) above 0.",
                ss.group,
                fmt_stat(ss.finals.get(metric::MI_CODE_CLASS_NORMALISED).copied(), 3),
                base.group,
                fmt_stat(base.finals.get(metric::MI_CODE_CLASS_NORMALISED).copied(), 3),
                difference(ss, base, metric::MI_CODE_CLASS_NORMALISED)
                    .map(|d| d.describe(3))
                    .unwrap_or_else(|| "–".into()),
                ss.group,
                fmt_stat(ss.finals.get(metric::MI_Q_SS_LABEL).copied(), 3),
                base.group,
                fmt_stat(base.finals.get(metric::MI_Q_SS_LABEL).copied(), 3),
                difference(ss, base, metric::MI_Q_SS_LABEL).map(|d| d.describe(3)).unwrap_or_else(|| "–".into()),
            );
            let verdict = match (
                difference(ss, base, metric::MI_CODE_CLASS_NORMALISED),
                difference(ss, base, metric::MI_Q_SS_LABEL),
            ) {
                (Some(a), Some(b)) => match (compare(a, false), compare(b, false)) {
                    (Verdict::Held, Verdict::Held) => Verdict::Held,
                    (Verdict::NotHeld, _) | (_, Verdict::NotHeld) => Verdict::NotHeld,
                    _ => Verdict::WithinNoise,
                },
                _ => Verdict::NotMeasured("no mutual-information metrics in the runs".into()),
            };
            ClaimResult { claim, measurement, verdict }
        }
        _ => ClaimResult { claim, measurement: String::new(), verdict: missing("InfoGAN and ss-InfoGAN") },
    });
    results
}

/// Every ss-InfoGAN row against the row without labels: the difference of each final metric with its 95%
/// interval over seeds.
fn comparisons(tables: &Tables, md: &mut String) {
    let Some(base) = tables.rows.iter().find(|r| r.n_labelled == 0 && r.completed > 0) else { return };
    let labelled: Vec<&GroupRow> = tables.rows.iter().filter(|r| r.n_labelled > 0 && r.completed > 0).collect();
    if labelled.is_empty() {
        return;
    }
    // C_err under the identity mapping is left out: without labels the code's values come in no particular order,
    // so a difference to InfoGAN there says nothing.
    let columns = [
        (metric::C_ERR_HUNGARIAN, "C_err Hungarian", 3),
        (metric::MI_CODE_CLASS_NORMALISED, "I(code; C) norm.", 3),
        (metric::MI_Q_SS_LABEL, "I(Q_ss; label)", 3),
        (metric::FRECHET_DISTANCE, "Fréchet", 2),
    ];
    let _ = writeln!(
        md,
        "## ss-InfoGAN against {}\n\nThe difference of the means (row minus {}) with its 95% confidence interval \
         over seeds (Welch's t); \"within seed noise\" where the interval contains 0 or a side has fewer than two \
         seeds.\n",
        base.group, base.group
    );
    let _ = writeln!(md, "| row | {} |\n|---|{}", columns.map(|c| c.1).join(" | "), "---|".repeat(columns.len()));
    for row in labelled {
        let cells: Vec<String> = columns
            .iter()
            .map(|(metric, _, digits)| {
                difference(row, base, metric).map(|d| d.describe(*digits)).unwrap_or_else(|| "–".into())
            })
            .collect();
        let _ = writeln!(md, "| {} | {} |", row.group, cells.join(" | "));
    }
    md.push('\n');
}

/// The figures, shown where they were written, each with a caption that says what its lines, bands and bars are.
fn figures(tables: &Tables, inputs: &ReportInputs, written: &Written, md: &mut String) {
    let seeds: Vec<usize> = tables.rows.iter().filter(|r| r.completed > 0).map(|r| r.completed).collect();
    let (fewest, most) = (seeds.iter().min().copied().unwrap_or(0), seeds.iter().max().copied().unwrap_or(0));
    let over = if fewest == most { format!("{most}") } else { format!("{fewest}–{most}") };
    let band = if most > 1 {
        format!("line: mean over the completed seeds ({over} per curve); band: the seeds' minimum to maximum")
    } else {
        "one seed per curve: no band".to_string()
    };
    let bars = if most > 1 {
        format!("markers: mean over the completed seeds ({over} per point); bars: ±1 sample standard deviation")
    } else {
        "one seed per point: no bars".to_string()
    };
    let exists =
        |file: &str| inputs.results_dir.join(file).is_file() || written.files.iter().any(|f| f.ends_with(file));
    md.push_str(
        "## Figures (`figures/`)\n\nPNG for the screen; for a paper, each figure also as PDF (font embedded) and SVG \
         (text as outlines), 3.5 in wide (the panels of losses and morphometry 7 in), untitled, fonts of 8.5 pt, \
         each curve with its own dash pattern and marker.\n\n",
    );
    for (file, what, spread) in [
        ("convergence", "C_err (Hungarian mapping) against iteration, one curve per variant and label count", &band),
        ("c-err-identity", "C_err with code k read as class k against iteration", &band),
        (
            "c-err-vs-labels",
            "final C_err (identity and Hungarian mappings) against the number of labels; variants without labels as \
             horizontal lines",
            &bars,
        ),
        ("mutual-information", "normalised I(code; class the evaluation classifier sees) against iteration", &band),
        ("frechet-distance", "Fréchet distance to the real test split against iteration", &band),
        ("losses", "training losses (epoch means) against iteration", &band),
    ] {
        let png = format!("figures/{file}.png");
        if exists(&png) {
            let _ = writeln!(md, "![{what}]({png})\n\n*{what}; {spread}. For a paper: `figures/{file}.pdf`.*\n");
        }
    }
    let mut codes: Vec<usize> = inputs.grids.iter().map(|g| g.continuous).collect();
    codes.sort_unstable();
    codes.dedup();
    for code in codes {
        let panels: Vec<String> = inputs
            .grids
            .iter()
            .filter(|g| g.continuous == code)
            .map(|g| format!("{} (seed {})", crate::inputs::grid_group(g), g.seed))
            .collect();
        let png = format!("figures/samples-c{}.png", code + 1);
        if exists(&png) {
            let _ = writeln!(
                md,
                "![continuous code c{} swept]({png})\n\n*Rows: the semi-supervised code's values; columns: continuous \
                 code c{} swept, every other input fixed; one seed per panel, left to right: {}.*\n",
                code + 1,
                code + 1,
                panels.join(", ")
            );
        }
    }
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
        "**Protocol:** {}{}{}; seeds {}. Every metric is computed from the final checkpoint of each run, then averaged \
         over seeds (mean ± sample std); differences carry a 95% confidence interval over seeds (Welch's t).{}\n",
        inputs.profile.as_ref().map(|p| format!("profile `{p}`, ")).unwrap_or_default(),
        inputs.overrides.iter().map(|o| format!("`--set {o}`, ")).collect::<String>(),
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
    md.push_str(&significance::sampling_error_markdown(tables));
    let times = timing::run_times(inputs)?;
    if !times.is_empty() {
        timing::write_csv(&times, &inputs.results_dir, written)?;
        let _ = writeln!(
            md,
            "**Where each run's time went** (minutes, summed over its epochs; `tables/timing.csv` in seconds): the \
             training iterations, the evaluations (their generation, evaluation classifier, Q_ss head, Fréchet \
             distance and progress grid) and the checkpoints.\n\n{}",
            timing::markdown(&times)
        );
    }
    let (completed, failed, unfinished) =
        tables.rows.iter().fold((0, 0, 0), |(c, f, u), r| (c + r.completed, f + r.failed.len(), u + r.incomplete));
    let _ = writeln!(md, "**Runs:** {completed} completed, {failed} failed, {unfinished} not finished.\n");
    if !tables.running_runs.is_empty() {
        let _ = writeln!(md, "{}\n", crate::aggregate::running_note(&tables.running_runs));
    }
    for s in &inputs.skipped {
        let _ = writeln!(md, "- Skipped: {} with {} labels — {}.", s.variant, s.n_labelled, s.reason);
    }
    if !inputs.skipped.is_empty() {
        md.push('\n');
    }

    if let Some(baseline) = &inputs.baseline {
        let _ = writeln!(
            md,
            "## Ablations (`tables/ablations.csv`, `tables/ablations.md`, `tables/ablations.tex`)\n\nEach row \
             changes one setting of `{baseline}`; cells are mean ± std over seeds and (Δ) the difference of the means \
             to `{baseline}` at the same label count with its 95% confidence interval (Welch's t over seeds), \
             \"within seed noise\" where the interval contains 0 or a side has fewer than two seeds.\n"
        );
        md.push_str(&ablations::markdown(tables, baseline));
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

    comparisons(tables, &mut md);
    md.push_str(
        "## Results (`tables/main.csv`, `tables/main.md`, `tables/main.tex`; per seed: `tables/final.csv`, every \
         evaluation: `tables/curves.csv`)\n\n",
    );
    md.push_str(&tables::markdown(tables, inputs));
    md.push_str(
        "\nQ_err(real) is read under the identity mapping with labels and the Hungarian mapping without. Iterations \
         to a C_err level use the Hungarian mapping, averaged over the seeds that reached it.\n\n",
    );
    md.push_str(
        "The headline numbers as mean ± the half-width of their 95% confidence interval over seeds (Student's t; \
         `tables/main-ci95.md`), with C_err and Q_err(real) also measured as the official code measures them (128 \
         images per code value, greedy mapping; the first 128 test images of each class, Q_ss greedy-mapped: \
         docs/method.md):\n\n",
    );
    md.push_str(&tables::interval_markdown(tables, inputs));
    md.push('\n');

    figures(tables, inputs, written, &mut md);
    let failures: Vec<String> =
        tables.rows.iter().flat_map(|r| r.failed.iter().map(move |f| format!("- {}, {f}", r.group))).collect();
    if !failures.is_empty() {
        let _ = writeln!(md, "\n## Failed runs (not averaged in)\n\n{}", failures.join("\n"));
    }
    write_file(&inputs.results_dir.join("REPORT.md"), md.as_bytes(), written)?;
    Ok(claims)
}
