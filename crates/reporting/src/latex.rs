//! `tables/main.tex` and `tables/ablations.tex`: the tables as a paper sets them, with booktabs rules (the only
//! package they need), mean ± std over the completed seeds with the seed count in its own column, label counts as
//! count and percentage, the best value of each column in bold, and a caption that says all of this.

use std::fmt::Write as _;

use ssinfogan_core::metric;

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

/// The main table's columns: (statistic, heading, digits, better).
const MAIN_COLUMNS: [(&str, &str, usize, Better); 7] = [
    (metric::C_ERR_IDENTITY, r"$C_\mathrm{err}$ (identity)", 3, Better::Lower),
    (metric::C_ERR_HUNGARIAN, r"$C_\mathrm{err}$ (Hungarian)", 3, Better::Lower),
    (Q_ERR_REAL, r"$Q_\mathrm{err}$ (real)", 3, Better::Lower),
    (metric::MI_CODE_CLASS_NORMALISED, r"$I(c; \hat{y}) / \ln K$", 3, Better::Higher),
    (metric::MI_Q_SS_LABEL, r"$I(Q_\mathrm{ss}; y)$", 3, Better::Higher),
    (metric::FRECHET_DISTANCE, r"Fr\'echet", 2, Better::Lower),
    (ablations::CONVERGENCE, r"Iter.\ to $C_\mathrm{err} \le 10\%$", 0, Better::Lower),
];

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
    MAIN_COLUMNS.iter().find(|(k, ..)| *k == key).map(|(.., b)| *b).unwrap_or(if key.starts_with("mi_") {
        Better::Higher
    } else {
        Better::Lower
    })
}

/// The best mean of a column over the rows that have one.
fn best(stats: &[Option<Stat>], direction: Better) -> Option<f64> {
    let means = stats.iter().flatten().map(|s| s.mean);
    match direction {
        Better::Lower => means.min_by(f64::total_cmp),
        Better::Higher => means.max_by(f64::total_cmp),
    }
}

/// `0.071 $\pm$ 0.010`, bold where it is the column's best, `--` without a value.
fn cell(stat: Option<Stat>, digits: usize, best: Option<f64>) -> String {
    let Some(s) = stat else { return "--".into() };
    let text = match s.std {
        Some(std) => format!("{:.digits$} $\\pm$ {std:.digits$}", s.mean),
        None => format!("{:.digits$}", s.mean),
    };
    if best == Some(s.mean) {
        format!("\\textbf{{{text}}}")
    } else {
        text
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

/// `tables/main.tex`.
pub fn main_table(tables: &Tables, inputs: &ReportInputs) -> String {
    let rows: Vec<&GroupRow> = tables.rows.iter().filter(|r| r.completed > 0).collect();
    let mut tex = String::from(
        "% Written by `ssinfogan report` from tables/main.csv; needs \\usepackage{booktabs}.\n\\begin{table}[t]\n  \\centering\n",
    );
    let _ = writeln!(
        tex,
        "  \\caption{{{}: final evaluation, mean $\\pm$ sample standard deviation over {} ($n$: completed seeds). \
         Labels: labelled training images, count and share of the {} of the train split. Bold: the best value of a \
         column (lowest error, Fr\\'echet distance and iterations; highest mutual information). Iterations to \
         $C_\\mathrm{{err}} \\le {:.0}\\%$ (Hungarian mapping) only where every seed got there.}}",
        escape(&inputs.experiment),
        seeds_note(&rows),
        inputs.data.train_size,
        CONVERGENCE_THRESHOLDS[0] * 100.0
    );
    let _ = writeln!(tex, "  \\label{{{}}}", label(&inputs.experiment, "main"));
    let _ = writeln!(tex, "  \\begin{{tabular}}{{lrr{}}}\n    \\toprule", "c".repeat(MAIN_COLUMNS.len()));
    let headings: Vec<&str> = MAIN_COLUMNS.iter().map(|(_, h, ..)| *h).collect();
    let _ = writeln!(tex, "    Variant & Labels & $n$ & {} \\\\\n    \\midrule", headings.join(" & "));
    let columns: Vec<(Vec<Option<Stat>>, Option<f64>)> = MAIN_COLUMNS
        .iter()
        .map(|(key, _, _, direction)| {
            let stats: Vec<Option<Stat>> = rows.iter().map(|r| main_stat(r, key)).collect();
            let best = best(&stats, *direction);
            (stats, best)
        })
        .collect();
    for (i, row) in rows.iter().enumerate() {
        let mut cells =
            vec![escape(&row.variant), labels(row.n_labelled, inputs.data.train_size), row.completed.to_string()];
        for ((_, _, digits, _), (stats, best)) in MAIN_COLUMNS.iter().zip(&columns) {
            cells.push(cell(stats[i], *digits, *best));
        }
        let _ = writeln!(tex, "    {} \\\\", cells.join(" & "));
    }
    tex.push_str("    \\bottomrule\n  \\end{tabular}\n\\end{table}\n");
    tex
}

/// `($+0.070^{\dagger}$)`: the difference to the baseline, marked where its 95% interval excludes 0.
fn delta(difference: Option<Difference>, digits: usize) -> String {
    match difference {
        Some(d) => format!(
            " \\scriptsize($\\Delta\\,{:+.digits$}{}$)",
            d.delta,
            if d.within_noise() { "" } else { "^{\\dagger}" }
        ),
        None => String::new(),
    }
}

/// `tables/ablations.tex`: the baseline first, every other row with its difference to it.
pub fn ablations_table(tables: &Tables, inputs: &ReportInputs, baseline: &str) -> String {
    let mut rows: Vec<&GroupRow> = tables.rows.iter().filter(|r| r.variant == baseline && r.completed > 0).collect();
    rows.extend(tables.rows.iter().filter(|r| r.variant != baseline && r.completed > 0));
    let mut tex = String::from(
        "% Written by `ssinfogan report` from tables/ablations.csv; needs \\usepackage{booktabs}.\n\\begin{table}[t]\n  \\centering\n",
    );
    let _ = writeln!(
        tex,
        "  \\caption{{{}: each row changes one setting of \\texttt{{{}}}. Mean $\\pm$ sample standard deviation over \
         {} ($n$: completed seeds); $\\Delta$: difference of the means to \\texttt{{{}}} at the same label count, \
         $^{{\\dagger}}$ where its 95\\% confidence interval (Welch's $t$) excludes 0, i.e.\\ beyond the seed noise. \
         Bold: the best value of a column.}}",
        escape(&inputs.experiment),
        escape(baseline),
        seeds_note(&rows),
        escape(baseline)
    );
    let _ = writeln!(tex, "  \\label{{{}}}", label(&inputs.experiment, "ablations"));
    let _ = writeln!(tex, "  \\begin{{tabular}}{{lrr{}}}\n    \\toprule", "c".repeat(ablations::COLUMNS.len()));
    let headings: Vec<String> = ablations::COLUMNS
        .iter()
        .map(|(key, heading, _)| {
            let key = if *key == metric::Q_ERR_REAL_IDENTITY { Q_ERR_REAL } else { key };
            MAIN_COLUMNS
                .iter()
                .find(|(k, ..)| *k == key)
                .map(|(_, h, ..)| h.to_string())
                .unwrap_or_else(|| escape(heading))
        })
        .collect();
    let _ = writeln!(tex, "    Ablation & Labels & $n$ & {} \\\\\n    \\midrule", headings.join(" & "));
    let columns: Vec<(Vec<Option<Stat>>, Option<f64>)> = ablations::COLUMNS
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
        let mut cells =
            vec![escape(&row.variant), labels(row.n_labelled, inputs.data.train_size), row.completed.to_string()];
        let reference = baseline_row(tables, baseline, row);
        for ((key, _, digits), (stats, best)) in ablations::COLUMNS.iter().zip(&columns) {
            let mut text = cell(stats[i], *digits, *best);
            if row.variant != baseline {
                text.push_str(&delta(ablations::difference(row, reference, key), *digits));
            }
            cells.push(text);
        }
        let _ = writeln!(tex, "    {} \\\\", cells.join(" & "));
        if row.variant == baseline && rows.len() > 1 {
            tex.push_str("    \\midrule\n");
        }
    }
    tex.push_str("    \\bottomrule\n  \\end{tabular}\n\\end{table}\n");
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
        assert_eq!(cell(s(0.1), 3, Some(0.1)), r"\textbf{0.100 $\pm$ 0.010}");
        assert_eq!(cell(s(0.2), 2, Some(0.1)), r"0.20 $\pm$ 0.01");
        assert_eq!(cell(None, 2, Some(0.1)), "--");
        assert_eq!(better(metric::FRECHET_DISTANCE), Better::Lower);
        assert_eq!(better(metric::MI_LOWER_BOUND_SS), Better::Higher);
    }
}
