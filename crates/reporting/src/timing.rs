//! Where a run's time went, from its `timing.csv` (long format, one row per part per epoch): training
//! iterations, evaluation (and its parts) and checkpoints, summed over the epochs. `tables/timing.csv` and the
//! protocol section of `REPORT.md` show it per run.

use std::fmt::Write as _;
use std::path::Path;

use ssinfogan_plan::long_csv;
use ssinfogan_plan::metric::seconds;
use ssinfogan_plan::run_dir::RunDir;

use crate::error::ReportError;
use crate::inputs::{ReportInputs, RunState};
use crate::written::{write_file, Written};

/// The parts of an epoch `timing.csv` records, in table order, with their column titles. The evaluation's own
/// parts follow its total; an epoch's wall time is the sum of training, evaluation and checkpoint (and a little
/// bookkeeping).
pub const PARTS: [(&str, &str); 9] = [
    (seconds::TRAINING, "training"),
    (seconds::EVALUATION, "evaluation"),
    (seconds::EVALUATION_GENERATION, "generation"),
    (seconds::EVALUATION_CLASSIFIER, "classifier"),
    (seconds::EVALUATION_Q, "Q_ss"),
    (seconds::EVALUATION_FRECHET, "Fréchet"),
    (seconds::PROGRESS_GRID, "progress grid"),
    (seconds::CHECKPOINT, "checkpoint"),
    (seconds::WALL, "wall"),
];

/// Seconds per part of one run, summed over its epochs (`None` where the file has no row of that part: a run
/// trained before the part was recorded).
#[derive(Debug, Clone, PartialEq)]
pub struct RunTime {
    pub run: String,
    /// The instruction set of the run's matrix products, where recorded.
    pub instruction_set: Option<String>,
    pub seconds: [Option<f64>; PARTS.len()],
}

impl RunTime {
    /// Seconds of `part` (a name of [`PARTS`]), when recorded.
    pub fn part(&self, part: &str) -> Option<f64> {
        self.seconds[PARTS.iter().position(|(name, _)| *name == part)?]
    }

    /// The share of the wall time spent evaluating, when both are known.
    pub fn evaluation_share(&self) -> Option<f64> {
        Some(self.part(seconds::EVALUATION)? / self.part(seconds::WALL)?).filter(|s| s.is_finite())
    }
}

/// Sums `timing.csv` by part. A row that does not parse is an error naming the file and the line.
pub fn read_run_time(run: &str, path: &Path) -> Result<RunTime, ReportError> {
    let rows = long_csv::read(path)
        .map_err(|e| ReportError::Input(e.to_string()))?
        .ok_or_else(|| ReportError::io(path, "no such file"))?;
    let mut seconds = [None; PARTS.len()];
    for row in rows {
        if let Some(i) = PARTS.iter().position(|(part, _)| *part == row.metric) {
            *seconds[i].get_or_insert(0.0) += row.value;
        }
    }
    Ok(RunTime { run: run.to_string(), instruction_set: None, seconds })
}

/// The completed runs' time budgets, in run order; runs without a `timing.csv` are left out.
pub fn run_times(inputs: &ReportInputs) -> Result<Vec<RunTime>, ReportError> {
    let mut times = Vec::new();
    for run in inputs.runs.iter().filter(|r| r.state == RunState::Completed) {
        let path = RunDir::at(&run.dir).timing();
        if path.is_file() {
            let name =
                run.dir.file_name().map_or_else(|| run.dir.display().to_string(), |n| n.to_string_lossy().into());
            times.push(RunTime { instruction_set: run.instruction_set.clone(), ..read_run_time(&name, &path)? });
        }
    }
    Ok(times)
}

/// `tables/timing.csv`: a row per run, a column per part, in seconds (empty where not recorded).
pub fn write_csv(times: &[RunTime], results_dir: &Path, written: &mut Written) -> Result<(), ReportError> {
    let mut csv = String::from("run,instruction_set");
    for (part, _) in PARTS {
        let _ = write!(csv, ",{part}");
    }
    csv.push('\n');
    for t in times {
        let _ = write!(csv, "{},{}", t.run, t.instruction_set.as_deref().unwrap_or_default());
        for s in t.seconds {
            let _ = write!(csv, ",{}", s.map(|s| format!("{s:.3}")).unwrap_or_default());
        }
        csv.push('\n');
    }
    write_file(&results_dir.join("tables").join("timing.csv"), csv.as_bytes(), written)
}

/// The Markdown table of `REPORT.md`: minutes per part, the evaluation's share of the wall time.
pub fn markdown(times: &[RunTime]) -> String {
    let mut md = String::from("| run | instruction set |");
    for (_, title) in PARTS {
        let _ = write!(md, " {title} |");
    }
    md.push_str(" evaluation share |\n|---|---|");
    md.push_str(&"---:|".repeat(PARTS.len() + 1));
    md.push('\n');
    for t in times {
        let _ = write!(md, "| {} | {} |", t.run, t.instruction_set.as_deref().unwrap_or("–"));
        for s in t.seconds {
            let _ = write!(md, " {} |", s.map(|s| format!("{:.1}", s / 60.0)).unwrap_or_else(|| "–".into()));
        }
        let _ = writeln!(
            md,
            " {} |",
            t.evaluation_share().map(|s| format!("{:.0}%", 100.0 * s)).unwrap_or_else(|| "–".into())
        );
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_summed_over_epochs_and_unknown_rows_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("timing.csv");
        std::fs::write(
            &path,
            "iteration,epoch,metric,value\n100,0,training_seconds,10\n100,0,evaluation_seconds,2.5\n\
             100,0,something_new,99\n100,0,wall_seconds,13\n200,1,training_seconds,11\n200,1,evaluation_seconds,\
             1.5\n200,1,wall_seconds,13\n",
        )
        .unwrap();
        let t = read_run_time("r", &path).unwrap();
        assert_eq!(t.part("training_seconds"), Some(21.0));
        assert_eq!(t.part("evaluation_seconds"), Some(4.0));
        assert_eq!(t.part("checkpoint_seconds"), None, "no checkpoint rows");
        assert_eq!(t.part("wall_seconds"), Some(26.0));
        assert_eq!(t.evaluation_share(), Some(4.0 / 26.0));
        let md = markdown(&[t]);
        assert!(md.contains("| r | – | 0.3 | 0.1 |"), "{md}");
        assert!(md.ends_with(" 15% |\n"), "{md}");
    }

    #[test]
    fn a_malformed_row_names_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("timing.csv");
        std::fs::write(&path, "iteration,epoch,metric,value\n100,0,wall_seconds,abc\n").unwrap();
        let e = read_run_time("r", &path).unwrap_err().to_string();
        assert!(e.contains("timing.csv") && e.contains("line 2") && e.contains("abc"), "{e}");
    }
}
