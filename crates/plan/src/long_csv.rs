//! The long CSV of a run: `iteration,epoch,metric,value`, one row per (iteration, metric), so that any number of
//! metrics can be added without changing readers. `metrics.csv`, `losses.csv`, `timing.csv` and
//! `evaluation.csv` are written and read here only. Values are written with Rust's shortest round-trip
//! formatting: exact, and identical for identical numbers, so two runs with the same seed on the same device
//! write byte-identical `metrics.csv` files (wall times go to `timing.csv`).

use std::io::Write;
use std::path::{Path, PathBuf};

pub const HEADER: &str = "iteration,epoch,metric,value";

/// One row of a long CSV.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The training iteration the row was measured after (1-based: an epoch's last iteration).
    pub iteration: u64,
    /// The epoch (0-based).
    pub epoch: usize,
    pub metric: String,
    pub value: f64,
}

/// A long CSV that cannot be read: the file, the line (1-based) and what is wrong with it.
#[derive(Debug)]
pub enum LongCsvError {
    Read(PathBuf, std::io::Error),
    Invalid { path: PathBuf, line: usize, problem: String },
}

impl std::fmt::Display for LongCsvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Read(path, e) => write!(f, "cannot read {}: {e}", path.display()),
            Self::Invalid { path, line, problem } => write!(
                f,
                "{} line {line}: {problem} (expected `{HEADER}`); the file is the run's own record: delete the \
                 run directory to train it again",
                path.display()
            ),
        }
    }
}

impl std::error::Error for LongCsvError {}

/// The rows of `rows` (metric, value) for `iteration`/`epoch` as text, with the header when `header`.
pub fn format(iteration: u64, epoch: usize, rows: &[(&str, f64)], header: bool) -> String {
    let mut text = String::new();
    if header {
        text.push_str(HEADER);
        text.push('\n');
    }
    for (metric, value) in rows {
        text.push_str(&format!("{iteration},{epoch},{metric},{value}\n"));
    }
    text
}

/// Appends `rows` (metric, value) for `iteration`/`epoch`, creating the file with its header if needed, and
/// waits for the disk.
pub fn append(path: &Path, iteration: u64, epoch: usize, rows: &[(&str, f64)]) -> std::io::Result<()> {
    append_unsynced(path, iteration, epoch, rows)?.sync_data()
}

/// [`append`] without waiting for the disk: for `losses.csv`, written many times an epoch and rebuilt on resume
/// from the checkpoint's epoch (rows a crash loses are rows of an epoch that is trained again).
pub fn append_unsynced(
    path: &Path,
    iteration: u64,
    epoch: usize,
    rows: &[(&str, f64)],
) -> std::io::Result<std::fs::File> {
    let new = !path.exists();
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    file.write_all(format(iteration, epoch, rows, new).as_bytes())?;
    Ok(file)
}

/// Keeps only the rows of epochs before `epochs_done`: on resume, rows written after the checkpoint that is
/// being resumed (a run killed between the two writes) are dropped, so no epoch appears twice.
pub fn truncate_to(path: &Path, epochs_done: usize) -> std::io::Result<()> {
    if !path.exists() {
        return Ok(());
    }
    let text = std::fs::read_to_string(path)?;
    let mut kept = String::with_capacity(text.len());
    for (i, line) in text.lines().enumerate() {
        let keep =
            i == 0 || line.split(',').nth(1).and_then(|e| e.parse::<usize>().ok()).is_some_and(|e| e < epochs_done);
        if keep {
            kept.push_str(line);
            kept.push('\n');
        }
    }
    crate::run_dir::write_atomically(path, kept.as_bytes())
}

/// Every row of the long CSV at `path`; `Ok(None)` when there is no such file. A line that is not a row is an
/// error naming the file and the line.
pub fn read(path: &Path) -> Result<Option<Vec<Row>>, LongCsvError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(LongCsvError::Read(path.to_path_buf(), e)),
    };
    let invalid =
        |line: usize, problem: String| LongCsvError::Invalid { path: path.to_path_buf(), line: line + 1, problem };
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, HEADER)) => {}
        Some((i, other)) => return Err(invalid(i, format!("the header is `{other}`"))),
        None => return Ok(Some(Vec::new())),
    }
    let mut rows = Vec::new();
    for (i, line) in lines {
        let fields: Vec<&str> = line.split(',').collect();
        let [iteration, epoch, metric, value] = fields.as_slice() else {
            return Err(invalid(i, format!("`{line}` has {} fields, not 4", fields.len())));
        };
        let number = |what: &str, text: &str| invalid(i, format!("{what} `{text}` is not a number"));
        rows.push(Row {
            iteration: iteration.parse().map_err(|_| number("the iteration", iteration))?,
            epoch: epoch.parse().map_err(|_| number("the epoch", epoch))?,
            metric: metric.to_string(),
            value: value.parse().map_err(|_| number("the value", value))?,
        });
    }
    Ok(Some(rows))
}

/// The rows of the last epoch in `rows`, as (metric, value).
pub fn last_epoch(rows: &[Row]) -> Vec<(String, f64)> {
    let Some(last) = rows.iter().map(|r| r.epoch).max() else { return Vec::new() };
    rows.iter().filter(|r| r.epoch == last).map(|r| (r.metric.clone(), r.value)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_written_exactly_read_back_and_cut_back_to_an_epoch() {
        let dir = std::env::temp_dir().join(format!("ssinfogan-long-csv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("metrics.csv");
        let _ = std::fs::remove_file(&path);
        assert!(read(&path).unwrap().is_none());
        append(&path, 100, 0, &[("d_real", 0.1), ("c_err_hungarian", 1.0 / 3.0)]).unwrap();
        append(&path, 200, 1, &[("d_real", 0.2)]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "iteration,epoch,metric,value\n100,0,d_real,0.1\n100,0,c_err_hungarian,0.3333333333333333\n200,1,d_real,0.2\n"
        );
        let rows = read(&path).unwrap().unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[1].value, 1.0 / 3.0, "the shortest round-trip form reads back exactly");
        assert_eq!(last_epoch(&rows), vec![("d_real".to_string(), 0.2)]);
        truncate_to(&path, 1).unwrap();
        assert_eq!(read(&path).unwrap().unwrap().len(), 2);

        std::fs::write(&path, "iteration,epoch,metric,value\n100,0,d_real\n").unwrap();
        let error = read(&path).unwrap_err().to_string();
        assert!(error.contains("metrics.csv line 2: `100,0,d_real` has 3 fields"), "{error}");
        std::fs::write(&path, "iteration,epoch,metric,value\n100,zero,d_real,1\n").unwrap();
        let error = read(&path).unwrap_err().to_string();
        assert!(error.contains("line 2: the epoch `zero` is not a number"), "{error}");
        std::fs::write(&path, "step,metric\n").unwrap();
        assert!(read(&path).unwrap_err().to_string().contains("line 1: the header is `step,metric`"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
