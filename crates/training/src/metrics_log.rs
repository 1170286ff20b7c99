//! `metrics.csv`: one row per (iteration, metric), appended after every epoch, in long format so that any
//! number of metrics can be added without changing readers. Only numbers that the seed determines go here, so
//! two runs with the same seed on the same device write byte-identical files; wall times go to `timing.csv`.

use std::io::Write;
use std::path::Path;

pub const HEADER: &str = "iteration,epoch,metric,value";

/// Appends `rows` (metric, value) for `iteration`/`epoch`, creating the file with its header if needed.
/// Values are written with Rust's shortest round-trip formatting: exact, and identical for identical numbers.
pub fn append(path: &Path, header: &str, iteration: u64, epoch: usize, rows: &[(&str, f64)]) -> std::io::Result<()> {
    append_unsynced(path, header, iteration, epoch, rows)?.sync_data()
}

/// [`append`] without waiting for the disk: for `losses.csv`, written many times an epoch and rebuilt on resume
/// from the checkpoint's epoch (rows a crash loses are rows of an epoch that is trained again).
pub fn append_unsynced(
    path: &Path,
    header: &str,
    iteration: u64,
    epoch: usize,
    rows: &[(&str, f64)],
) -> std::io::Result<std::fs::File> {
    let new = !path.exists();
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    let mut text = String::new();
    if new {
        text.push_str(header);
        text.push('\n');
    }
    for (metric, value) in rows {
        text.push_str(&format!("{iteration},{epoch},{metric},{value}\n"));
    }
    file.write_all(text.as_bytes())?;
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
    ssinfogan_core::run_dir::write_atomically(path, kept.as_bytes())
}
