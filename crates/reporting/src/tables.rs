//! The numbers of a report: every completed run's `metrics.csv` in one long polars frame (read and written with
//! polars' CSV support; the grouping is a few loops over at most a few hundred thousand rows, without polars' lazy
//! engine and the cloud and async stack it brings), the final evaluation of each run, the mean ± std over seeds
//! per (variant, labels), the convergence measure, and the curves the figures draw. Failed and unfinished runs are
//! counted, never averaged in.

use std::collections::BTreeMap;
use std::sync::Arc;

use polars::prelude::*;

use crate::significance::Difference;
use crate::{ReportError, ReportInputs, RunState, Written};

/// The evaluation metrics of the final table, in column order (names as in `metrics.csv`).
pub const FINAL_METRICS: [&str; 12] = [
    "c_err_identity",
    "c_err_greedy",
    "c_err_hungarian",
    "q_err_real_identity",
    "q_err_real_hungarian",
    "q_err_fake",
    "mi_lower_bound_ss",
    "mi_code_class",
    "mi_code_class_normalised",
    "mi_q_ss_label",
    "frechet_distance",
    "classifier_confidence",
];

/// The convergence measure: first evaluated iteration with C_err (Hungarian mapping, so that InfoGAN's
/// unordered code is judged fairly) at or below each threshold.
pub const CONVERGENCE_METRIC: &str = "c_err_hungarian";
pub const CONVERGENCE_THRESHOLDS: [f64; 2] = [0.10, 0.05];

/// Mean and sample standard deviation over seeds (`std` is `None` with one seed).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stat {
    pub mean: f64,
    pub std: Option<f64>,
    pub n: usize,
}

impl Stat {
    pub fn of(values: &[f64]) -> Option<Stat> {
        if values.is_empty() {
            return None;
        }
        let n = values.len();
        let mean = values.iter().sum::<f64>() / n as f64;
        let std = (n > 1).then(|| (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt());
        Some(Stat { mean, std, n })
    }
}

/// One table row: a variant at a label count.
#[derive(Debug, Clone)]
pub struct GroupRow {
    pub group: String,
    pub variant: String,
    pub n_labelled: usize,
    pub completed: usize,
    pub failed: Vec<String>,
    pub incomplete: usize,
    /// Final evaluation metrics over the completed seeds.
    pub finals: BTreeMap<String, Stat>,
    /// Per threshold of `CONVERGENCE_THRESHOLDS`: the iterations of the seeds that reached it.
    pub convergence: Vec<Vec<f64>>,
}

/// A curve over iterations, mean and spread (min, max) over seeds.
#[derive(Debug, Clone)]
pub struct Curve {
    pub group: String,
    pub iteration: Vec<f64>,
    pub mean: Vec<f64>,
    pub low: Vec<f64>,
    pub high: Vec<f64>,
}

#[derive(Debug, Clone)]
pub struct Tables {
    pub rows: Vec<GroupRow>,
    /// Per metric name, one curve per group (groups without that metric are absent).
    pub curves: BTreeMap<String, Vec<Curve>>,
    /// Every metric's last evaluated value in every completed run (`tables/final.csv`), in row, seed, metric order.
    pub finals_long: Vec<RunValue>,
    /// Every logged value of every completed run (`tables/curves.csv`), in run order, then as logged.
    pub curves_long: Vec<RunValue>,
}

/// One value of one run: `row` indexes `Tables::rows`.
#[derive(Debug, Clone, PartialEq)]
pub struct RunValue {
    pub row: usize,
    pub seed: u64,
    /// The evaluation's iteration (curves); none for a final value.
    pub iteration: Option<i64>,
    pub metric: String,
    pub value: f64,
}

impl Tables {
    pub fn row(&self, group: &str) -> Option<&GroupRow> {
        self.rows.iter().find(|r| r.group == group)
    }
}

/// Metrics drawn as curves over iterations.
pub const CURVE_METRICS: [&str; 12] = [
    "c_err_hungarian",
    "c_err_identity",
    "mi_code_class_normalised",
    "mi_lower_bound_ss",
    "mi_q_ss_label",
    "frechet_distance",
    "d_real",
    "d_fake",
    "g_adv",
    "q_ss_fake",
    "q_us",
    "q_ss_real",
];

/// Every completed run's metrics in one frame: iteration, epoch, metric, value, group, seed.
pub fn load_metrics(inputs: &ReportInputs) -> Result<Option<DataFrame>, ReportError> {
    let overwrite = Arc::new(Schema::from_iter([
        Field::new("iteration".into(), DataType::Int64),
        Field::new("epoch".into(), DataType::Int64),
        Field::new("metric".into(), DataType::String),
        Field::new("value".into(), DataType::Float64),
    ]));
    let mut frames = Vec::new();
    for run in inputs.runs.iter().filter(|r| r.state == RunState::Completed) {
        let path = run.dir.join("metrics.csv");
        if !path.is_file() {
            return Err(ReportError::Input(format!(
                "{} is marked completed but has no metrics.csv; delete the run directory to train it again",
                run.dir.display()
            )));
        }
        let frame = CsvReadOptions::default()
            .with_has_header(true)
            .with_schema_overwrite(Some(overwrite.clone()))
            .try_into_reader_with_file_path(Some(path.clone()))
            .and_then(|reader| reader.finish())
            .map_err(|e| ReportError::io(&path, format!("not a metrics table (iteration,epoch,metric,value): {e}")))?;
        let height = frame.height();
        let mut frame = frame;
        frame.with_column(Column::new("group".into(), vec![run.group(); height]))?;
        frame.with_column(Column::new("seed".into(), vec![run.seed as i64; height]))?;
        frames.push(frame);
    }
    let mut frames = frames.into_iter();
    let Some(mut long) = frames.next() else { return Ok(None) };
    for frame in frames {
        long.vstack_mut(&frame)?;
    }
    Ok(Some(long))
}

/// The long frame as columns, in the order the runs logged them.
struct Long {
    groups: Vec<String>,
    seeds: Vec<Option<f64>>,
    iterations: Vec<Option<f64>>,
    metrics: Vec<String>,
    values: Vec<Option<f64>>,
}

impl Long {
    fn of(frame: &DataFrame) -> Result<Long, ReportError> {
        Ok(Long {
            groups: strings(frame, "group")?,
            seeds: floats(frame, "seed")?,
            iterations: floats(frame, "iteration")?,
            metrics: strings(frame, "metric")?,
            values: floats(frame, "value")?,
        })
    }

    fn len(&self) -> usize {
        self.groups.len()
    }
}

/// Keys in the order of their first row, each with its rows in order (what a stable group-by sees).
fn group_rows<K: std::hash::Hash + Eq + Clone>(
    rows: impl Iterator<Item = usize>,
    key: impl Fn(usize) -> K,
) -> Vec<(K, Vec<usize>)> {
    let mut groups: Vec<(K, Vec<usize>)> = Vec::new();
    let mut index: std::collections::HashMap<K, usize> = std::collections::HashMap::new();
    for i in rows {
        let k = key(i);
        match index.get(&k) {
            Some(&g) => groups[g].1.push(i),
            None => {
                index.insert(k.clone(), groups.len());
                groups.push((k, vec![i]));
            }
        }
    }
    groups
}

pub fn build(inputs: &ReportInputs) -> Result<Tables, ReportError> {
    let mut rows: Vec<GroupRow> = Vec::new();
    for run in &inputs.runs {
        let group = run.group();
        let index = match rows.iter().position(|r| r.group == group) {
            Some(i) => i,
            None => {
                rows.push(GroupRow {
                    group: group.clone(),
                    variant: run.variant.clone(),
                    n_labelled: run.n_labelled,
                    completed: 0,
                    failed: Vec::new(),
                    incomplete: 0,
                    finals: BTreeMap::new(),
                    convergence: vec![Vec::new(); CONVERGENCE_THRESHOLDS.len()],
                });
                rows.len() - 1
            }
        };
        match &run.state {
            RunState::Completed => rows[index].completed += 1,
            RunState::Failed(why) => rows[index].failed.push(format!("seed {}: {why}", run.seed)),
            RunState::Incomplete => rows[index].incomplete += 1,
        }
    }
    let mut curves = BTreeMap::new();
    let Some(long) = load_metrics(inputs)? else {
        return Ok(Tables { rows, curves, finals_long: Vec::new(), curves_long: Vec::new() });
    };
    let long = Long::of(&long)?;
    let row_of = |i: usize| rows.iter().position(|r| r.group == long.groups[i]);
    let curves_long: Vec<RunValue> = (0..long.len())
        .filter_map(|i| {
            Some(RunValue {
                row: row_of(i)?,
                seed: long.seeds[i]? as u64,
                iteration: Some(long.iterations[i]? as i64),
                metric: long.metrics[i].clone(),
                value: long.values[i]?,
            })
        })
        .collect();

    // The last evaluated value of each metric in each run, then mean ± std over seeds (in run order).
    let mut by_iteration: Vec<usize> = (0..long.len()).collect();
    by_iteration
        .sort_by(|&a, &b| long.iterations[a].unwrap_or(f64::NAN).total_cmp(&long.iterations[b].unwrap_or(f64::NAN)));
    let finals: Vec<((String, u64, String), Option<f64>)> = group_rows(by_iteration.into_iter(), |i| {
        (long.groups[i].clone(), long.seeds[i].unwrap_or_default() as u64, long.metrics[i].clone())
    })
    .into_iter()
    .map(|(key, rows)| (key, rows.last().and_then(|&i| long.values[i])))
    .collect();
    let mut finals_long: Vec<RunValue> = finals
        .iter()
        .filter_map(|((group, seed, metric), value)| {
            Some(RunValue {
                row: rows.iter().position(|r| &r.group == group)?,
                seed: *seed,
                iteration: None,
                metric: metric.clone(),
                value: (*value)?,
            })
        })
        .collect();
    finals_long.sort_by(|a, b| (a.row, a.seed, &a.metric).cmp(&(b.row, b.seed, &b.metric)));
    for row in &mut rows {
        for metric in FINAL_METRICS {
            let per_seed: Vec<f64> =
                finals.iter().filter(|((g, _, m), _)| *g == row.group && m == metric).filter_map(|(_, v)| *v).collect();
            if let Some(stat) = Stat::of(&per_seed) {
                row.finals.insert(metric.to_string(), stat);
            }
        }
    }

    // Convergence: the first evaluated iteration at or below each threshold, per run.
    for (t, threshold) in CONVERGENCE_THRESHOLDS.iter().enumerate() {
        let reached = group_rows(
            (0..long.len())
                .filter(|&i| long.metrics[i] == CONVERGENCE_METRIC && long.values[i].is_some_and(|v| v <= *threshold)),
            |i| (long.groups[i].clone(), long.seeds[i].unwrap_or_default() as u64),
        );
        for row in &mut rows {
            row.convergence[t] = reached
                .iter()
                .filter(|((group, _), _)| *group == row.group)
                .filter_map(|(_, seen)| seen.iter().filter_map(|&i| long.iterations[i]).reduce(f64::min))
                .collect();
        }
    }

    // Curves: mean and seed spread per iteration.
    for metric in CURVE_METRICS {
        let mut per_group = Vec::new();
        for row in &rows {
            let points = group_rows(
                (0..long.len()).filter(|&i| long.metrics[i] == metric && long.groups[i] == row.group),
                |i| long.iterations[i].unwrap_or(f64::NAN).to_bits(),
            );
            if points.is_empty() {
                continue;
            }
            let mut curve = Curve {
                group: row.group.clone(),
                iteration: Vec::new(),
                mean: Vec::new(),
                low: Vec::new(),
                high: Vec::new(),
            };
            let mut points: Vec<(f64, Vec<f64>)> = points
                .into_iter()
                .map(|(bits, seen)| (f64::from_bits(bits), seen.iter().filter_map(|&i| long.values[i]).collect()))
                .collect();
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            for (iteration, values) in points {
                let n = values.len().max(1) as f64;
                curve.iteration.push(iteration);
                curve.mean.push(if values.is_empty() { f64::NAN } else { values.iter().sum::<f64>() / n });
                curve.low.push(values.iter().copied().reduce(f64::min).unwrap_or(f64::NAN));
                curve.high.push(values.iter().copied().reduce(f64::max).unwrap_or(f64::NAN));
            }
            per_group.push(curve);
        }
        if !per_group.is_empty() {
            curves.insert(metric.to_string(), per_group);
        }
    }
    Ok(Tables { rows, curves, finals_long, curves_long })
}

fn strings(frame: &DataFrame, name: &str) -> Result<Vec<String>, ReportError> {
    Ok(frame.column(name)?.str()?.iter().map(|s| s.unwrap_or_default().to_string()).collect())
}

fn floats(frame: &DataFrame, name: &str) -> Result<Vec<Option<f64>>, ReportError> {
    Ok(frame.column(name)?.cast(&DataType::Float64)?.f64()?.iter().collect())
}

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
    crate::write_file(&dir.join("main.csv"), &csv, written)?;
    crate::write_file(&dir.join("main.md"), markdown(tables, inputs).as_bytes(), written)?;
    crate::write_file(&dir.join("main.tex"), crate::latex::main_table(tables, inputs).as_bytes(), written)?;
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
    crate::write_file(&dir.join("final.csv"), finals.as_bytes(), written)?;
    crate::write_file(&dir.join("curves.csv"), curves.as_bytes(), written)
}

/// A CSV field, quoted where it holds a comma, a quote or a line break.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
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
        let q_err = if row.n_labelled > 0 { "q_err_real_identity" } else { "q_err_real_hungarian" };
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
            f("c_err_identity", 3),
            f("c_err_greedy", 3),
            f("c_err_hungarian", 3),
            f(q_err, 3),
            f("mi_lower_bound_ss", 3),
            f("mi_code_class_normalised", 3),
            f("mi_q_ss_label", 3),
            f("frechet_distance", 2),
            f("classifier_confidence", 3),
            convergence[0].clone(),
            convergence[1].clone(),
        ];
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    out
}

/// The convergence column of the ablation table: iterations to the first of `CONVERGENCE_THRESHOLDS` (10%).
const ABLATION_CONVERGENCE: &str = "iterations_to_c_err_10";

/// The columns of the ablation table: (metric key, heading, digits). [`ABLATION_CONVERGENCE`] is the convergence
/// statistic, the rest are final metrics.
pub const ABLATION_COLUMNS: [(&str, &str, usize); 7] = [
    ("c_err_identity", "C_err identity", 3),
    ("c_err_hungarian", "C_err Hungarian", 3),
    ("q_err_real_identity", "Q_err(real)", 3),
    ("mi_lower_bound_ss", "MI bound (nats)", 3),
    ("mi_code_class_normalised", "I(code; C) norm.", 3),
    ("frechet_distance", "Fréchet", 2),
    ("iterations_to_c_err_10", "iters to C_err ≤ 10%", 0),
];

/// A row's statistic for an ablation column.
pub fn ablation_stat(row: &GroupRow, metric: &str) -> Option<Stat> {
    if metric == ABLATION_CONVERGENCE {
        Stat::of(&row.convergence[0])
    } else {
        row.finals.get(metric).copied()
    }
}

/// The baseline row an ablation row is compared with: the baseline variant at the same label count.
pub fn baseline_row<'a>(tables: &'a Tables, baseline: &str, row: &GroupRow) -> Option<&'a GroupRow> {
    tables.rows.iter().find(|r| r.variant == baseline && r.n_labelled == row.n_labelled)
}

/// `row` minus the baseline, with its confidence interval over seeds. Iterations to convergence are averaged over
/// the seeds that converged, so they are compared only when every completed seed of both rows did: a row whose
/// slow seed never got there must not look fast.
pub fn ablation_difference(row: &GroupRow, reference: Option<&GroupRow>, metric: &str) -> Option<Difference> {
    let reference = reference?;
    let (stat, base) = (ablation_stat(row, metric)?, ablation_stat(reference, metric)?);
    if metric == ABLATION_CONVERGENCE && (stat.n < row.completed || base.n < reference.completed) {
        return None;
    }
    Some(Difference::of(stat, base))
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
    for (metric, _, _) in ABLATION_COLUMNS {
        let stats: Vec<Option<Stat>> = rows.iter().map(|r| ablation_stat(r, metric)).collect();
        let differences: Vec<Option<Difference>> =
            rows.iter().map(|r| ablation_difference(r, baseline_row(tables, baseline, r), metric)).collect();
        push_mean_and_std(&mut columns, metric, &stats);
        if metric == ABLATION_CONVERGENCE {
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
    crate::write_file(&inputs.results_dir.join("tables").join("ablations.csv"), &csv, written)?;
    let md = ablations_markdown(tables, baseline);
    let dir = inputs.results_dir.join("tables");
    crate::write_file(&dir.join("ablations.md"), md.as_bytes(), written)?;
    let tex = crate::latex::ablations_table(tables, inputs, baseline);
    crate::write_file(&dir.join("ablations.tex"), tex.as_bytes(), written)
}

/// The Markdown ablation table: `mean ± std (Δ to the baseline, its 95% CI over seeds)` per metric, the baseline's
/// row first.
pub fn ablations_markdown(tables: &Tables, baseline: &str) -> String {
    let mut out = String::from("| ablation | labels | seeds |");
    for (_, heading, _) in ABLATION_COLUMNS {
        out.push_str(&format!(" {heading} |"));
    }
    out.push_str(&format!("\n|{}\n", "---|".repeat(3 + ABLATION_COLUMNS.len())));
    let mut rows: Vec<&GroupRow> = tables.rows.iter().filter(|r| r.variant == baseline).collect();
    rows.extend(tables.rows.iter().filter(|r| r.variant != baseline));
    for row in rows {
        let reference = baseline_row(tables, baseline, row);
        let mut cells = vec![row.variant.clone(), row.n_labelled.to_string(), row.completed.to_string()];
        for (metric, _, digits) in ABLATION_COLUMNS {
            let stat = ablation_stat(row, metric);
            let mut cell = match stat {
                None if metric == ABLATION_CONVERGENCE && row.completed > 0 => "not reached".to_string(),
                stat => fmt_stat(stat, digits),
            };
            if metric == ABLATION_CONVERGENCE {
                if let Some(s) = stat {
                    cell.push_str(&format!(" ({}/{} seeds)", s.n, row.completed));
                }
            }
            if row.variant != baseline {
                if let Some(difference) = ablation_difference(row, reference, metric) {
                    cell.push_str(&format!(" ({})", difference.describe(digits)));
                }
            }
            cells.push(cell);
        }
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    out
}

/// `0.074 ± 0.010`, `0.074` with one seed, `–` without a value.
pub fn fmt_stat(stat: Option<Stat>, digits: usize) -> String {
    match stat {
        None => "–".into(),
        Some(Stat { mean, std: None, .. }) => format!("{mean:.digits$}"),
        Some(Stat { mean, std: Some(std), .. }) => format!("{mean:.digits$} ± {std:.digits$}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_is_the_sample_mean_and_standard_deviation() {
        let s = Stat::of(&[1.0, 2.0, 3.0]).unwrap();
        assert_eq!((s.mean, s.std, s.n), (2.0, Some(1.0), 3));
        assert_eq!(Stat::of(&[0.5]).unwrap().std, None);
        assert!(Stat::of(&[]).is_none());
    }

    #[test]
    fn the_ablation_convergence_column_is_the_first_threshold() {
        let name = format!("iterations_to_c_err_{}", (CONVERGENCE_THRESHOLDS[0] * 100.0).round());
        assert_eq!(name, ABLATION_CONVERGENCE);
    }

    #[test]
    fn stats_format_with_and_without_spread() {
        assert_eq!(fmt_stat(Stat::of(&[0.1, 0.3]), 2), "0.20 ± 0.14");
        assert_eq!(fmt_stat(Stat::of(&[0.1]), 3), "0.100");
        assert_eq!(fmt_stat(None, 3), "–");
    }
}
