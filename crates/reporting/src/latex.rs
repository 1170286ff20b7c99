//! `tables/main.tex` and `tables/ablations.tex`: the tables as a paper sets them, with booktabs rules (the only
//! package they need), mean ± std over the completed seeds with the seed count in its own column, the best value
//! of each column in bold, and a caption that says all of this. Each comes in two forms: `main.tex` fits a
//! one-column article's text width (the columns a reader compares first, std as a subscript, in `\small`),
//! `main-wide.tex` is a `table*` across both columns of a two-column article with every column (in
//! `\footnotesize`), label counts as count and percentage. `tests/page.rs` sets both in `pdflatex` and fails on
//! an overfull box.

use std::fmt::Write as _;

use ssinfogan_plan::metric;

use crate::ablations::{self, baseline_row};
use crate::aggregate::{GroupRow, Stat, Tables, CONVERGENCE_THRESHOLDS};
use crate::inputs::ReportInputs;
use crate::significance::Difference;

/// Which way a column improves.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Better {
    Lower,
    Higher,
}

/// The main table's Q_err column: Q_ss's error on the real test split, read under the identity mapping with labels
/// and the Hungarian mapping without, as in `tables/main.md`.
const Q_ERR_REAL: &str = "q_err";

/// A main-table statistic of a row. Iterations to convergence count only where every completed seed converged.
fn main_stat(row: &GroupRow, key: &str) -> Option<Stat> {
    match key {
        Q_ERR_REAL => {
            let metric = if row.n_labelled > 0 { metric::Q_ERR_REAL_IDENTITY } else { metric::Q_ERR_REAL_HUNGARIAN };
            row.finals.get(metric).copied()
        }
        ablations::CONVERGENCE => Stat::of(&row.convergence[0]).filter(|s| s.n == row.completed),
        metric => row.finals.get(metric).copied(),
    }
}

fn better(key: &str) -> Better {
    if metric::higher_is_better(key) {
        Better::Higher
    } else {
        Better::Lower
    }
}

/// The best mean of a column over the rows that have one.
fn best(stats: &[Option<Stat>], direction: Better) -> Option<f64> {
    let means = stats.iter().flatten().map(|s| s.mean);
    match direction {
        Better::Lower => means.min_by(f64::total_cmp),
        Better::Higher => means.max_by(f64::total_cmp),
    }
}

/// Text set in LaTeX as written: its special characters escaped.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str(r"\textbackslash{}"),
            '&' | '%' | '$' | '#' | '_' | '{' | '}' => {
                out.push('\\');
                out.push(c);
            }
            '~' => out.push_str(r"\textasciitilde{}"),
            '^' => out.push_str(r"\textasciicircum{}"),
            _ => out.push(c),
        }
    }
    out
}

/// `132 (0.22\%)`.
fn labels(n: usize, train_size: usize) -> String {
    format!("{n} ({:.2}\\%)", 100.0 * n as f64 / train_size.max(1) as f64)
}

/// A label for `\ref`: the experiment name with anything but letters, digits and dashes made a dash.
fn label(experiment: &str, table: &str) -> String {
    let name: String =
        experiment.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' }).collect();
    format!("tab:{name}-{table}")
}

fn seeds_note(rows: &[&GroupRow]) -> String {
    let counts: std::collections::BTreeSet<usize> = rows.iter().map(|r| r.completed).collect();
    match counts.iter().collect::<Vec<_>>().as_slice() {
        [n] => format!("{n} seed{}", if **n == 1 { "" } else { "s" }),
        _ => "the seeds in the column $n$".into(),
    }
}

/// `0.035$_{\pm 0.028}$`, the mean bold where it is the column's best: std as a subscript keeps a column narrow.
fn compact_cell(stat: Option<Stat>, digits: usize, best: Option<f64>) -> String {
    let Some(s) = stat else { return "--".into() };
    let mean = format!("{:.digits$}", s.mean);
    let mean = if best == Some(s.mean) { format!("\\textbf{{{mean}}}") } else { mean };
    match s.std {
        Some(std) => format!("{mean}$_{{\\pm {std:.digits$}}}$"),
        None => mean,
    }
}

/// A metric column: (statistic, heading over a group of neighbours with the same one, heading, digits).
type MetricColumn = (&'static str, &'static str, &'static str, usize);

const C_ERR: &str = r"$C_\mathrm{err}$";

/// The one-column main table: the columns a reader compares first.
const MAIN_NARROW: [MetricColumn; 4] = [
    (metric::C_ERR_IDENTITY, C_ERR, "identity", 3),
    (metric::C_ERR_HUNGARIAN, C_ERR, "Hungarian", 3),
    (Q_ERR_REAL, r"$Q_\mathrm{err}$", "(real)", 3),
    (metric::FRECHET_DISTANCE, "", r"Fr\'echet", 2),
];

/// The `table*` main table: every column.
const MAIN_WIDE: [MetricColumn; 7] = [
    (metric::C_ERR_IDENTITY, C_ERR, "identity", 3),
    (metric::C_ERR_HUNGARIAN, C_ERR, "Hungarian", 3),
    (Q_ERR_REAL, r"$Q_\mathrm{err}$", "(real)", 3),
    (metric::MI_CODE_CLASS_NORMALISED, r"$I(c; \hat{y})$", r"$/ \ln K$", 3),
    (metric::MI_Q_SS_LABEL, r"$I(Q_\mathrm{ss}; y)$", "(nats)", 3),
    (metric::FRECHET_DISTANCE, "", r"Fr\'echet", 2),
    (ablations::CONVERGENCE, r"Iter.\ to", r"$C_\mathrm{err} {\le} 10\%$", 0),
];

/// The one-column ablation table: C_err and Q_err with their differences to the baseline.
const ABLATIONS_NARROW: [MetricColumn; 3] = [
    (metric::C_ERR_IDENTITY, C_ERR, "identity", 3),
    (metric::C_ERR_HUNGARIAN, C_ERR, "Hungarian", 3),
    (metric::Q_ERR_REAL_IDENTITY, r"$Q_\mathrm{err}$", "(real)", 3),
];

/// The `table*` ablation table: the columns of `ablations::COLUMNS`.
const ABLATIONS_WIDE: [MetricColumn; 7] = [
    (metric::C_ERR_IDENTITY, C_ERR, "identity", 3),
    (metric::C_ERR_HUNGARIAN, C_ERR, "Hungarian", 3),
    (metric::Q_ERR_REAL_IDENTITY, r"$Q_\mathrm{err}$", "(real)", 3),
    (metric::MI_LOWER_BOUND_SS, r"$I$ bound", "(nats)", 3),
    (metric::MI_CODE_CLASS_NORMALISED, r"$I(c; \hat{y})$", r"$/ \ln K$", 3),
    (metric::FRECHET_DISTANCE, "", r"Fr\'echet", 2),
    (ablations::CONVERGENCE, r"Iter.\ to", r"$C_\mathrm{err} {\le} 10\%$", 0),
];

/// The two heading rows: the group headings (over a `\cmidrule` where a group spans several columns), then the
/// leading columns' names and the metrics' own headings.
fn headings(leading: &[&str], metrics: &[MetricColumn]) -> String {
    let mut top: Vec<String> = vec![String::new(); leading.len()];
    let mut rules = Vec::new();
    let mut i = 0;
    while i < metrics.len() {
        let group = metrics[i].1;
        let span = if group.is_empty() { 1 } else { metrics[i..].iter().take_while(|c| c.1 == group).count() };
        if span > 1 {
            top.push(format!("\\multicolumn{{{span}}}{{c}}{{{group}}}"));
            rules.push(format!("\\cmidrule(lr){{{}-{}}}", leading.len() + i + 1, leading.len() + i + span));
        } else {
            top.push(group.to_string());
        }
        i += span;
    }
    let bottom: Vec<&str> = leading.iter().copied().chain(metrics.iter().map(|c| c.2)).collect();
    let rules = if rules.is_empty() { String::new() } else { format!(" {}", rules.join(" ")) };
    format!("    {} \\\\{rules}\n    {} \\\\\n    \\midrule\n", top.join(" & "), bottom.join(" & "))
}

/// Which width a table takes: one column (`table`, `\small`), or both columns of a two-column article (`table*`).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Width {
    Column,
    Page,
}

impl Width {
    fn environment(self) -> &'static str {
        match self {
            Width::Column => "table",
            Width::Page => "table*",
        }
    }

    /// The opening lines: the comment, the float, and the font size and column spacing that make it fit.
    fn opening(self, source: &str, other: &str) -> String {
        let (what, spacing) = match self {
            Width::Column => ("fits a one-column article's text width; every column", "3pt"),
            Width::Page => ("spans both columns of a two-column article; a one-column article's width", "3pt"),
        };
        format!(
            "% Written by `ssinfogan report` from tables/{source}; needs \\usepackage{{booktabs}}. This table {what}: \
             {other}.\n\\begin{{{}}}[t]\n  \\centering\n  \\{}\n  \\setlength{{\\tabcolsep}}{{{spacing}}}\n",
            self.environment(),
            match self {
                Width::Column => "small",
                Width::Page => "footnotesize",
            }
        )
    }

    fn closing(self) -> String {
        format!("    \\bottomrule\n  \\end{{tabular}}\n\\end{{{}}}\n", self.environment())
    }
}

/// `tables/main.tex` (one column) or `tables/main-wide.tex` (`table*`, every column).
pub fn main_table(tables: &Tables, inputs: &ReportInputs, wide: bool) -> String {
    let width = if wide { Width::Page } else { Width::Column };
    let metrics: &[MetricColumn] = if width == Width::Page { &MAIN_WIDE } else { &MAIN_NARROW };
    let rows: Vec<&GroupRow> = tables.rows.iter().filter(|r| r.completed > 0).collect();
    let mut tex = width.opening("main.csv", if width == Width::Page { "main.tex" } else { "main-wide.tex" });
    let _ = writeln!(
        tex,
        "  \\caption{{{}: final evaluation, mean$_{{\\pm \\mathrm{{std}}}}$ over {} ($n$: completed seeds; std: the \
         sample standard deviation). Labels: labelled training images of the {} of the train split{}. \
         $C_\\mathrm{{err}}$ with code $k$ read as class $k$ (identity) and under the best one-to-one mapping of codes \
         to classes (Hungarian); $Q_\\mathrm{{err}}$: $Q_\\mathrm{{ss}}$ as a classifier of the real test split. Bold: \
         the best value of a column{}.}}",
        escape(&inputs.experiment),
        seeds_note(&rows),
        inputs.data.train_size,
        if width == Width::Page { " (count and share)" } else { "" },
        if width == Width::Page {
            format!(
                " (lowest error, Fr\\'echet distance and iterations; highest mutual information). Iterations to \
                 $C_\\mathrm{{err}} \\le {:.0}\\%$ (Hungarian mapping) only where every seed got there",
                CONVERGENCE_THRESHOLDS[0] * 100.0
            )
        } else {
            String::new()
        }
    );
    let name = if width == Width::Page { "main-wide" } else { "main" };
    let _ = writeln!(tex, "  \\label{{{}}}", label(&inputs.experiment, name));
    let _ = writeln!(tex, "  \\begin{{tabular}}{{lrr{}}}\n    \\toprule", "c".repeat(metrics.len()));
    tex.push_str(&headings(&["Variant", "Labels", "$n$"], metrics));
    let columns: Vec<(Vec<Option<Stat>>, Option<f64>)> = metrics
        .iter()
        .map(|(key, ..)| {
            let stats: Vec<Option<Stat>> = rows.iter().map(|r| main_stat(r, key)).collect();
            let best = best(&stats, better(key));
            (stats, best)
        })
        .collect();
    for (i, row) in rows.iter().enumerate() {
        let labels = match width {
            Width::Page => labels(row.n_labelled, inputs.data.train_size),
            Width::Column => row.n_labelled.to_string(),
        };
        let mut cells = vec![escape(&row.variant), labels, row.completed.to_string()];
        for ((_, _, _, digits), (stats, best)) in metrics.iter().zip(&columns) {
            cells.push(compact_cell(stats[i], *digits, *best));
        }
        let _ = writeln!(tex, "    {} \\\\", cells.join(" & "));
    }
    tex.push_str(&width.closing());
    tex
}

/// `{\scriptsize $+0.070^{\dagger}$}`: the difference to the baseline, marked where its 95% interval excludes 0.
/// In one column's width the heading says Δ and the cells give the number alone.
fn delta(difference: Option<Difference>, digits: usize, symbol: bool) -> String {
    match difference {
        Some(d) => format!(
            "{{\\scriptsize${}{:+.digits$}{}$}}",
            if symbol { "\\Delta\\," } else { "" },
            d.delta,
            if d.within_noise() { "" } else { "^{\\dagger}" }
        ),
        None => String::new(),
    }
}

/// `tables/ablations.tex` (one column: C_err and Q_err) or `tables/ablations-wide.tex` (`table*`, every
/// column): the baseline first, every other row with its difference to it.
pub fn ablations_table(tables: &Tables, inputs: &ReportInputs, baseline: &str, wide: bool) -> String {
    let width = if wide { Width::Page } else { Width::Column };
    let metrics: &[MetricColumn] = if wide { &ABLATIONS_WIDE } else { &ABLATIONS_NARROW };
    let mut rows: Vec<&GroupRow> = tables.rows.iter().filter(|r| r.variant == baseline && r.completed > 0).collect();
    rows.extend(tables.rows.iter().filter(|r| r.variant != baseline && r.completed > 0));
    let mut tex = width.opening("ablations.csv", if wide { "ablations.tex" } else { "ablations-wide.tex" });
    let _ = writeln!(
        tex,
        "  \\caption{{{}: each row changes one setting of \\texttt{{{}}}. Mean$_{{\\pm \\mathrm{{std}}}}$ over {} ($n$: \
         completed seeds; std: the sample standard deviation); {}: difference of the means to \\texttt{{{}}} at \
         the same label count, $^{{\\dagger}}$ where its 95\\% confidence interval (Welch's $t$) excludes 0, i.e.\\ \
         beyond the seed noise. Bold: the best value of a column.}}",
        escape(&inputs.experiment),
        escape(baseline),
        seeds_note(&rows),
        if wide { "$\\Delta$" } else { "in small type" },
        escape(baseline)
    );
    let name = if wide { "ablations-wide" } else { "ablations" };
    let _ = writeln!(tex, "  \\label{{{}}}", label(&inputs.experiment, name));
    let _ = writeln!(tex, "  \\begin{{tabular}}{{lrr{}}}\n    \\toprule", "c".repeat(metrics.len()));
    tex.push_str(&headings(&["Ablation", "Labels", "$n$"], metrics));
    let columns: Vec<(Vec<Option<Stat>>, Option<f64>)> = metrics
        .iter()
        .map(|(key, ..)| {
            // Iterations to convergence only where every seed converged, as in the main table.
            let stats: Vec<Option<Stat>> = rows
                .iter()
                .map(|r| ablations::stat(r, key).filter(|s| *key != ablations::CONVERGENCE || s.n == r.completed))
                .collect();
            let best = best(&stats, better(key));
            (stats, best)
        })
        .collect();
    for (i, row) in rows.iter().enumerate() {
        let mut cells = vec![escape(&row.variant), row.n_labelled.to_string(), row.completed.to_string()];
        let reference = baseline_row(tables, baseline, row);
        for ((key, _, _, digits), (stats, best)) in metrics.iter().zip(&columns) {
            let text = compact_cell(stats[i], *digits, *best);
            let difference = delta(ablations::difference(row, reference, key), *digits, wide);
            // The difference under the value: a column as narrow as the main table's.
            cells.push(if row.variant == baseline || difference.is_empty() {
                text
            } else {
                format!("\\begin{{tabular}}[t]{{@{{}}c@{{}}}}{text}\\\\{difference}\\end{{tabular}}")
            });
        }
        let _ = writeln!(tex, "    {} \\\\", cells.join(" & "));
        if row.variant == baseline && rows.len() > 1 {
            tex.push_str("    \\midrule\n");
        }
    }
    tex.push_str(&width.closing());
    tex
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_characters_are_escaped() {
        assert_eq!(
            escape("lambda_ss 50% & #1 {x} ~^\\"),
            r"lambda\_ss 50\% \& \#1 \{x\} \textasciitilde{}\textasciicircum{}\textbackslash{}"
        );
    }

    #[test]
    fn the_best_of_a_column_follows_its_direction_and_is_bold() {
        let s = |mean| Some(Stat { mean, std: Some(0.01), n: 2 });
        let stats = [s(0.2), None, s(0.1), s(0.3)];
        assert_eq!(best(&stats, Better::Lower), Some(0.1));
        assert_eq!(best(&stats, Better::Higher), Some(0.3));
        assert_eq!(compact_cell(s(0.1), 3, Some(0.1)), r"\textbf{0.100}$_{\pm 0.010}$");
        assert_eq!(compact_cell(s(0.2), 2, Some(0.1)), r"0.20$_{\pm 0.01}$");
        assert_eq!(compact_cell(None, 2, Some(0.1)), "--");
        assert_eq!(better(metric::FRECHET_DISTANCE), Better::Lower);
        assert_eq!(better(metric::MI_LOWER_BOUND_SS), Better::Higher);
    }
}
