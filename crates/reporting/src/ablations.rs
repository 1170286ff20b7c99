//! An ablation study's numbers: every row against the baseline variant at the same label count, per column of
//! the ablation table (final metrics and the iterations to the first convergence threshold), as the difference of
//! the means with its confidence interval over seeds; and the Markdown table of them.

use ssinfogan_plan::metric;

use crate::aggregate::{fmt_stat, GroupRow, Stat, Tables};
use crate::significance::Difference;

/// The convergence column of the ablation table: iterations to the first of `CONVERGENCE_THRESHOLDS` (10%).
pub const CONVERGENCE: &str = "iterations_to_c_err_10";

/// The columns of the ablation table: (metric key, heading, digits). [`CONVERGENCE`] is the convergence
/// statistic, the rest are final metrics.
pub const COLUMNS: [(&str, &str, usize); 7] = [
    (metric::C_ERR_IDENTITY, "C_err identity", 3),
    (metric::C_ERR_HUNGARIAN, "C_err Hungarian", 3),
    (metric::Q_ERR_REAL_IDENTITY, "Q_err(real)", 3),
    (metric::MI_LOWER_BOUND_SS, "MI bound (nats)", 3),
    (metric::MI_CODE_CLASS_NORMALISED, "I(code; C) norm.", 3),
    (metric::FRECHET_DISTANCE, "Fréchet", 2),
    (CONVERGENCE, "iters to C_err ≤ 10%", 0),
];

/// A row's statistic for an ablation column.
pub fn stat(row: &GroupRow, metric: &str) -> Option<Stat> {
    if metric == CONVERGENCE {
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
pub fn difference(row: &GroupRow, reference: Option<&GroupRow>, metric: &str) -> Option<Difference> {
    let reference = reference?;
    let (value, base) = (stat(row, metric)?, stat(reference, metric)?);
    if metric == CONVERGENCE && (value.n < row.completed || base.n < reference.completed) {
        return None;
    }
    Some(Difference::of(value, base))
}

/// The Markdown ablation table: `mean ± std (Δ to the baseline, its 95% CI over seeds)` per metric, the baseline's
/// row first.
pub fn markdown(tables: &Tables, baseline: &str) -> String {
    let mut out = String::from("| ablation | labels | seeds |");
    for (_, heading, _) in COLUMNS {
        out.push_str(&format!(" {heading} |"));
    }
    out.push_str(&format!("\n|{}\n", "---|".repeat(3 + COLUMNS.len())));
    let mut rows: Vec<&GroupRow> = tables.rows.iter().filter(|r| r.variant == baseline).collect();
    rows.extend(tables.rows.iter().filter(|r| r.variant != baseline));
    for row in rows {
        let reference = baseline_row(tables, baseline, row);
        let mut cells = vec![row.variant.clone(), row.n_labelled.to_string(), row.completed.to_string()];
        for (metric, _, digits) in COLUMNS {
            let value = stat(row, metric);
            let mut cell = match value {
                None if metric == CONVERGENCE && row.completed > 0 => "not reached".to_string(),
                value => fmt_stat(value, digits),
            };
            if metric == CONVERGENCE {
                if let Some(s) = value {
                    cell.push_str(&format!(" ({}/{} seeds)", s.n, row.completed));
                }
            }
            if row.variant != baseline {
                if let Some(difference) = difference(row, reference, metric) {
                    cell.push_str(&format!(" ({})", difference.describe(digits)));
                }
            }
            cells.push(cell);
        }
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::CONVERGENCE_THRESHOLDS;

    #[test]
    fn the_convergence_column_is_the_first_threshold() {
        let name = format!("iterations_to_c_err_{}", (CONVERGENCE_THRESHOLDS[0] * 100.0).round());
        assert_eq!(name, CONVERGENCE);
    }
}
