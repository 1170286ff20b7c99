//! The numbers of a report: every completed run's `metrics.csv` in one long polars frame (read and written with
//! polars' CSV support; the grouping is a few loops over at most a few hundred thousand rows, without polars' lazy
//! engine and the cloud and async stack it brings), the final evaluation of each run, the mean ± std over seeds
//! per (variant, labels), the convergence measure, and the curves the figures draw. Failed and unfinished runs are
//! counted, never averaged in.

use std::collections::BTreeMap;

use polars::prelude::*;
use ssinfogan_plan::long_csv;
use ssinfogan_plan::metric;
use ssinfogan_plan::run_dir::RunDir;

use crate::error::ReportError;
use crate::inputs::{ReportInputs, RunInfo, RunState};

/// The evaluation metrics of the final table, in column order (names as in `metrics.csv`).
pub const FINAL_METRICS: [&str; 14] = [
    metric::C_ERR_IDENTITY,
    metric::C_ERR_GREEDY,
    metric::C_ERR_HUNGARIAN,
    metric::Q_ERR_REAL_IDENTITY,
    metric::Q_ERR_REAL_HUNGARIAN,
    metric::Q_ERR_FAKE,
    metric::MI_LOWER_BOUND_SS,
    metric::MI_CODE_CLASS,
    metric::MI_CODE_CLASS_NORMALISED,
    metric::MI_Q_SS_LABEL,
    metric::FRECHET_DISTANCE,
    metric::CLASSIFIER_CONFIDENCE,
    metric::C_ERR_OFFICIAL,
    metric::Q_ERR_REAL_OFFICIAL,
];

/// The convergence measure: first evaluated iteration with C_err (Hungarian mapping, so that InfoGAN's
/// unordered code is judged fairly) at or below each threshold.
pub const CONVERGENCE_METRIC: &str = metric::C_ERR_HUNGARIAN;
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
    /// With `include_running`: per metric, one curve per unfinished run that has logged it (its `group` names
    /// the run), drawn dashed and in no table.
    pub running: BTreeMap<String, Vec<Curve>>,
    /// Those runs, `<group>, seed <seed>`, with the last iteration their metrics.csv has.
    pub running_runs: Vec<(String, i64)>,
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
    metric::C_ERR_HUNGARIAN,
    metric::C_ERR_IDENTITY,
    metric::MI_CODE_CLASS_NORMALISED,
    metric::MI_LOWER_BOUND_SS,
    metric::MI_Q_SS_LABEL,
    metric::FRECHET_DISTANCE,
    metric::D_REAL,
    metric::D_FAKE,
    metric::G_ADV,
    metric::Q_SS_FAKE,
    metric::Q_US,
    metric::Q_SS_REAL,
];

/// One run's metrics.csv (read by `ssinfogan_plan::long_csv`, its one reader) as a frame: iteration, epoch,
/// metric, value, group, seed.
fn run_metrics(run: &RunInfo) -> Result<DataFrame, ReportError> {
    let path = RunDir::at(&run.dir).metrics();
    let rows = long_csv::read(&path)
        .map_err(|e| ReportError::Input(e.to_string()))?
        .ok_or_else(|| ReportError::io(&path, "no such file"))?;
    let height = rows.len();
    let frame = DataFrame::new(
        height,
        vec![
            Column::new("iteration".into(), rows.iter().map(|r| r.iteration as i64).collect::<Vec<_>>()),
            Column::new("epoch".into(), rows.iter().map(|r| r.epoch as i64).collect::<Vec<_>>()),
            Column::new("metric".into(), rows.iter().map(|r| r.metric.as_str()).collect::<Vec<_>>()),
            Column::new("value".into(), rows.iter().map(|r| r.value).collect::<Vec<_>>()),
            Column::new("group".into(), vec![run.group(); height]),
            Column::new("seed".into(), vec![run.seed as i64; height]),
        ],
    )?;
    Ok(frame)
}

/// Every completed run's metrics in one frame: iteration, epoch, metric, value, group, seed.
pub fn load_metrics(inputs: &ReportInputs) -> Result<Option<DataFrame>, ReportError> {
    let mut frames = Vec::new();
    for run in inputs.runs.iter().filter(|r| r.state == RunState::Completed) {
        if !RunDir::at(&run.dir).metrics().is_file() {
            return Err(ReportError::Input(format!(
                "{} is marked completed but has no metrics.csv; delete the run directory to train it again",
                run.dir.display()
            )));
        }
        frames.push(run_metrics(run)?);
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
    let (running, running_runs) = if inputs.include_running { running_curves(inputs)? } else { Default::default() };
    let Some(long) = load_metrics(inputs)? else {
        return Ok(Tables { rows, curves, finals_long: Vec::new(), curves_long: Vec::new(), running, running_runs });
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
    Ok(Tables { rows, curves, finals_long, curves_long, running, running_runs })
}

/// What REPORT.md and index.html say of the unfinished runs the figures draw.
pub fn running_note(runs: &[(String, i64)]) -> String {
    let listed: Vec<String> = runs.iter().map(|(run, iteration)| format!("{run} (at iteration {iteration})")).collect();
    format!(
        "**Unfinished runs, drawn dashed in the figures and left out of every table** (`--include-running`): {}.",
        listed.join(", ")
    )
}

/// The unfinished runs that have logged an epoch: per metric, one curve per run (no spread), and each run with
/// its last logged iteration.
#[allow(clippy::type_complexity)]
fn running_curves(inputs: &ReportInputs) -> Result<(BTreeMap<String, Vec<Curve>>, Vec<(String, i64)>), ReportError> {
    let mut curves: BTreeMap<String, Vec<Curve>> = BTreeMap::new();
    let mut runs = Vec::new();
    for run in inputs.runs.iter().filter(|r| r.state == RunState::Incomplete && RunDir::at(&r.dir).metrics().is_file())
    {
        let long = Long::of(&run_metrics(run)?)?;
        let Some(last) = long.iterations.iter().flatten().copied().reduce(f64::max) else { continue };
        let name = format!("{}, seed {}", run.group(), run.seed);
        runs.push((name.clone(), last as i64));
        for metric in CURVE_METRICS {
            let points: Vec<(f64, f64)> = (0..long.len())
                .filter(|&i| long.metrics[i] == metric)
                .filter_map(|i| Some((long.iterations[i]?, long.values[i]?)))
                .collect();
            if points.is_empty() {
                continue;
            }
            let values: Vec<f64> = points.iter().map(|p| p.1).collect();
            curves.entry(metric.to_string()).or_default().push(Curve {
                group: name.clone(),
                iteration: points.iter().map(|p| p.0).collect(),
                mean: values.clone(),
                low: values.clone(),
                high: values,
            });
        }
    }
    Ok((curves, runs))
}

fn strings(frame: &DataFrame, name: &str) -> Result<Vec<String>, ReportError> {
    Ok(frame.column(name)?.str()?.iter().map(|s| s.unwrap_or_default().to_string()).collect())
}

fn floats(frame: &DataFrame, name: &str) -> Result<Vec<Option<f64>>, ReportError> {
    Ok(frame.column(name)?.cast(&DataType::Float64)?.f64()?.iter().collect())
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
    fn stats_format_with_and_without_spread() {
        assert_eq!(fmt_stat(Stat::of(&[0.1, 0.3]), 2), "0.20 ± 0.14");
        assert_eq!(fmt_stat(Stat::of(&[0.1]), 3), "0.100");
        assert_eq!(fmt_stat(None, 3), "–");
    }
}
