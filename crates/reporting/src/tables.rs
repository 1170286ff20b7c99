//! `tables/`: the main table as CSV (one column per statistic, machine-readable), Markdown (mean ± std) and LaTeX,
//! every run's final and logged values in long form (`final.csv`, `curves.csv`), and for an ablation study the
//! ablation table in the same three forms.

use polars::prelude::*;
use ssinfogan_plan::metric;

use crate::ablations::{self, baseline_row};
use crate::aggregate::{fmt_stat, GroupRow, Stat, Tables, CONVERGENCE_THRESHOLDS, FINAL_METRICS};
use crate::error::ReportError;
use crate::inputs::ReportInputs;
use crate::latex;
use crate::significance::Difference;
use crate::written::{write_file, Written};

/// The columns `<name>_mean` and `<name>_std` (empty where a row has no value or a single seed).
fn push_mean_and_std(columns: &mut Vec<Column>, name: &str, stats: &[Option<Stat>]) {
    columns
        .push(Column::new(format!("{name}_mean").into(), stats.iter().map(|s| s.map(|s| s.mean)).collect::<Vec<_>>()));
    columns.push(Column::new(
        format!("{name}_std").into(),
        stats.iter().map(|s| s.and_then(|s| s.std)).collect::<Vec<_>>(),
    ));
}

/// `tables/main.csv` (one column per statistic, machine-readable) and `tables/main.md` (mean ± std).
pub fn write(tables: &Tables, inputs: &ReportInputs, written: &mut Written) -> Result<(), ReportError> {
    let rows = &tables.rows;
    let mut columns: Vec<Column> = vec![
        Column::new("variant".into(), rows.iter().map(|r| r.variant.clone()).collect::<Vec<_>>()),
        Column::new("n_labelled".into(), rows.iter().map(|r| r.n_labelled as u64).collect::<Vec<_>>()),
        Column::new(
            "label_fraction".into(),
            rows.iter().map(|r| r.n_labelled as f64 / inputs.data.train_size.max(1) as f64).collect::<Vec<_>>(),
        ),
        Column::new("seeds_completed".into(), rows.iter().map(|r| r.completed as u64).collect::<Vec<_>>()),
        Column::new("seeds_failed".into(), rows.iter().map(|r| r.failed.len() as u64).collect::<Vec<_>>()),
        Column::new("seeds_incomplete".into(), rows.iter().map(|r| r.incomplete as u64).collect::<Vec<_>>()),
    ];
    for metric in FINAL_METRICS {
        let stats: Vec<Option<Stat>> = rows.iter().map(|r| r.finals.get(metric).copied()).collect();
        push_mean_and_std(&mut columns, metric, &stats);
    }
    for (t, threshold) in CONVERGENCE_THRESHOLDS.iter().enumerate() {
        let name = format!("iterations_to_c_err_{}", (threshold * 100.0).round());
        let stats: Vec<Option<Stat>> = rows.iter().map(|r| Stat::of(&r.convergence[t])).collect();
        push_mean_and_std(&mut columns, &name, &stats);
        columns.push(Column::new(
            format!("{name}_reached").into(),
            rows.iter().map(|r| r.convergence[t].len() as u64).collect::<Vec<_>>(),
        ));
    }
    let mut frame = DataFrame::new(rows.len(), columns)?;
    let mut csv = Vec::new();
    CsvWriter::new(&mut csv).include_header(true).finish(&mut frame)?;
    let dir = inputs.results_dir.join("tables");
    write_file(&dir.join("main.csv"), &csv, written)?;
    write_file(&dir.join("main.md"), markdown(tables, inputs).as_bytes(), written)?;
    write_file(&dir.join("main-ci95.md"), interval_markdown(tables, inputs).as_bytes(), written)?;
    write_file(&dir.join("main.tex"), latex::main_table(tables, inputs, false).as_bytes(), written)?;
    write_file(&dir.join("main-wide.tex"), latex::main_table(tables, inputs, true).as_bytes(), written)?;
    if !inputs.morphometry.is_empty() {
        let (csv, md) = crate::morphometry_summary::tables(&inputs.morphometry, inputs.real_morphometry.as_ref());
        write_file(&dir.join("morphometry.csv"), csv.as_bytes(), written)?;
        write_file(&dir.join("morphometry.md"), md.as_bytes(), written)?;
    }
    write_long(tables, inputs, written)
}

/// `tables/final.csv` (variant, n_labelled, seed, metric, value: every metric's last evaluated value per run) and
/// `tables/curves.csv` (iteration, variant, n_labelled, seed, metric, value: everything every run logged), long
/// form, for analyses of one's own.
fn write_long(tables: &Tables, inputs: &ReportInputs, written: &mut Written) -> Result<(), ReportError> {
    let mut finals = String::from("variant,n_labelled,seed,metric,value\n");
    for v in &tables.finals_long {
        let row = &tables.rows[v.row];
        finals.push_str(&format!(
            "{},{},{},{},{}\n",
            csv_field(&row.variant),
            row.n_labelled,
            v.seed,
            csv_field(&v.metric),
            v.value
        ));
    }
    let mut curves = String::from("iteration,variant,n_labelled,seed,metric,value\n");
    for v in &tables.curves_long {
        let row = &tables.rows[v.row];
        curves.push_str(&format!(
            "{},{},{},{},{},{}\n",
            v.iteration.unwrap_or_default(),
            csv_field(&row.variant),
            row.n_labelled,
            v.seed,
            csv_field(&v.metric),
            v.value
        ));
    }
    let dir = inputs.results_dir.join("tables");
    write_file(&dir.join("final.csv"), finals.as_bytes(), written)?;
    write_file(&dir.join("curves.csv"), curves.as_bytes(), written)
}

/// A CSV field, quoted where it holds a comma, a quote or a line break.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// The headline numbers as a paper's results table: per (variant, labels), the mean over the completed seeds ± the
/// half-width of its 95% confidence interval (Student's t, n − 1 degrees of freedom; the mean alone with one seed),
/// our C_err under the three mappings and Q_err(real) beside the official code's protocol.
pub fn interval_markdown(tables: &Tables, inputs: &ReportInputs) -> String {
    let header = [
        "variant",
        "labels",
        "seeds",
        "C_err identity",
        "C_err greedy",
        "C_err Hungarian",
        "Q_err(real)",
        "C_err (official protocol)",
        "Q_err(real) (official protocol)",
        "Fréchet",
    ];
    let mut out = format!("| {} |\n|{}\n", header.join(" | "), "---|".repeat(header.len()));
    for row in &tables.rows {
        let f = |metric: &str, digits: usize| match row.finals.get(metric).copied() {
            None => "–".to_string(),
            Some(s) => match crate::significance::mean_interval(s) {
                Some(half) => format!("{:.digits$} ± {half:.digits$}", s.mean),
                None => format!("{:.digits$}", s.mean),
            },
        };
        let q_err = if row.n_labelled > 0 { metric::Q_ERR_REAL_IDENTITY } else { metric::Q_ERR_REAL_HUNGARIAN };
        let cells = [
            row.variant.clone(),
            format!(
                "{} ({:.2}%)",
                row.n_labelled,
                100.0 * row.n_labelled as f64 / inputs.data.train_size.max(1) as f64
            ),
            if row.failed.is_empty() && row.incomplete == 0 {
                row.completed.to_string()
            } else {
                format!("{} of {}", row.completed, row.completed + row.failed.len() + row.incomplete)
            },
            f(metric::C_ERR_IDENTITY, 3),
            f(metric::C_ERR_GREEDY, 3),
            f(metric::C_ERR_HUNGARIAN, 3),
            f(q_err, 3),
            f(metric::C_ERR_OFFICIAL, 3),
            f(metric::Q_ERR_REAL_OFFICIAL, 3),
            f(metric::FRECHET_DISTANCE, 2),
        ];
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    out
}

/// The Markdown table: one row per (variant, labels), mean ± std over the completed seeds.
pub fn markdown(tables: &Tables, inputs: &ReportInputs) -> String {
    let header = [
        "variant",
        "labels",
        "seeds",
        "C_err identity",
        "C_err greedy",
        "C_err Hungarian",
        "Q_err(real)",
        "C_err official",
        "Q_err(real) official",
        "MI bound (nats)",
        "I(code; C) norm.",
        "I(Q_ss; label)",
        "Fréchet",
        "C confidence",
        "iters to C_err ≤ 10%",
        "iters to C_err ≤ 5%",
    ];
    let mut out = format!("| {} |\n|{}\n", header.join(" | "), "---|".repeat(header.len()));
    for row in &tables.rows {
        let f = |metric: &str, digits: usize| fmt_stat(row.finals.get(metric).copied(), digits);
        let q_err = if row.n_labelled > 0 { metric::Q_ERR_REAL_IDENTITY } else { metric::Q_ERR_REAL_HUNGARIAN };
        let seeds = if row.failed.is_empty() && row.incomplete == 0 {
            format!("{}", row.completed)
        } else {
            format!("{} ({} failed, {} unfinished)", row.completed, row.failed.len(), row.incomplete)
        };
        let convergence: Vec<String> = (0..CONVERGENCE_THRESHOLDS.len())
            .map(|t| match Stat::of(&row.convergence[t]) {
                None if row.completed > 0 => "not reached".to_string(),
                None => "–".to_string(),
                Some(s) => format!("{} ({}/{} seeds)", fmt_stat(Some(s), 0), s.n, row.completed),
            })
            .collect();
        let cells = [
            row.variant.clone(),
            format!(
                "{} ({:.2}%)",
                row.n_labelled,
                100.0 * row.n_labelled as f64 / inputs.data.train_size.max(1) as f64
            ),
            seeds,
            f(metric::C_ERR_IDENTITY, 3),
            f(metric::C_ERR_GREEDY, 3),
            f(metric::C_ERR_HUNGARIAN, 3),
            f(q_err, 3),
            f(metric::C_ERR_OFFICIAL, 3),
            f(metric::Q_ERR_REAL_OFFICIAL, 3),
            f(metric::MI_LOWER_BOUND_SS, 3),
            f(metric::MI_CODE_CLASS_NORMALISED, 3),
            f(metric::MI_Q_SS_LABEL, 3),
            f(metric::FRECHET_DISTANCE, 2),
            f(metric::CLASSIFIER_CONFIDENCE, 3),
            convergence[0].clone(),
            convergence[1].clone(),
        ];
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    out
}

/// `tables/ablations.csv` (per metric: mean, std over seeds, mean minus the baseline's mean with its 95% Welch
/// interval and whether that holds 0), `tables/ablations.md` (`mean ± std (Δ, CI)`) and `tables/ablations.tex`,
/// one row per ablation, the baseline first.
pub fn write_ablations(
    tables: &Tables,
    inputs: &ReportInputs,
    baseline: &str,
    written: &mut Written,
) -> Result<(), ReportError> {
    let mut rows: Vec<&GroupRow> = tables.rows.iter().filter(|r| r.variant == baseline).collect();
    rows.extend(tables.rows.iter().filter(|r| r.variant != baseline));
    let mut columns: Vec<Column> = vec![
        Column::new("ablation".into(), rows.iter().map(|r| r.variant.clone()).collect::<Vec<_>>()),
        Column::new("n_labelled".into(), rows.iter().map(|r| r.n_labelled as u64).collect::<Vec<_>>()),
        Column::new("seeds_completed".into(), rows.iter().map(|r| r.completed as u64).collect::<Vec<_>>()),
    ];
    for (metric, _, _) in ablations::COLUMNS {
        let stats: Vec<Option<Stat>> = rows.iter().map(|r| ablations::stat(r, metric)).collect();
        let differences: Vec<Option<Difference>> =
            rows.iter().map(|r| ablations::difference(r, baseline_row(tables, baseline, r), metric)).collect();
        push_mean_and_std(&mut columns, metric, &stats);
        if metric == ablations::CONVERGENCE {
            let reached: Vec<u64> = rows.iter().map(|r| r.convergence[0].len() as u64).collect();
            columns.push(Column::new(format!("{metric}_reached").into(), reached));
        }
        let deltas: Vec<Option<f64>> = differences.iter().map(|d| d.map(|d| d.delta)).collect();
        columns.push(Column::new(format!("{metric}_delta").into(), deltas));
        let low: Vec<Option<f64>> = differences.iter().map(|d| d.and_then(|d| d.ci).map(|c| c.0)).collect();
        columns.push(Column::new(format!("{metric}_delta_ci95_low").into(), low));
        let high: Vec<Option<f64>> = differences.iter().map(|d| d.and_then(|d| d.ci).map(|c| c.1)).collect();
        columns.push(Column::new(format!("{metric}_delta_ci95_high").into(), high));
        let noise: Vec<Option<bool>> = differences.iter().map(|d| d.map(|d| d.within_noise())).collect();
        columns.push(Column::new(format!("{metric}_delta_within_seed_noise").into(), noise));
    }
    let mut frame = DataFrame::new(rows.len(), columns)?;
    let mut csv = Vec::new();
    CsvWriter::new(&mut csv).include_header(true).finish(&mut frame)?;
    write_file(&inputs.results_dir.join("tables").join("ablations.csv"), &csv, written)?;
    let md = ablations::markdown(tables, baseline);
    let dir = inputs.results_dir.join("tables");
    write_file(&dir.join("ablations.md"), md.as_bytes(), written)?;
    let tex = latex::ablations_table(tables, inputs, baseline, false);
    write_file(&dir.join("ablations.tex"), tex.as_bytes(), written)?;
    let tex = latex::ablations_table(tables, inputs, baseline, true);
    write_file(&dir.join("ablations-wide.tex"), tex.as_bytes(), written)
}
