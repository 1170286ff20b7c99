//! Checkpoints: everything a run needs to continue exactly where it stopped.
//!
//! `checkpoint/epoch-NNNN/` holds `generator.safetensors` and `discriminator.safetensors` (every variable,
//! BatchNorm running statistics included), `optimiser.safetensors` (both Adams' moments) and `state.json`
//! (epochs done, Adam step counts, the latent stream and the real-batch stream with all their positions).
//! `checkpoint/latest` names the newest complete one; it is written atomically after every file of the directory
//! is on disk (each fsynced, then the directory), so a run killed while checkpointing resumes from the previous
//! one. The previous checkpoint is kept until the next one is complete: should the newest be damaged after all
//! (a disk that lied about a flush), [`candidates`] offers the one before it. Older directories are removed, but
//! for the newest `[training.checkpoints] keep_last` (default 2) and, where a metric is monitored, the best one so
//! far, which `checkpoint/best.json` names ([`BestCheckpoint`]). [`choose`] finds the one a command asks for
//! (`--checkpoint latest|best|epoch-NNNN`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use ssinfogan_core::run_dir::write_atomically;
use ssinfogan_datasets::RealBatches;

use crate::adam::Adam;
use crate::config::Mode;
use crate::error::TrainError;

/// `checkpoint/best.json`: the checkpoint at which the monitored metric was best so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BestCheckpoint {
    /// The directory under `checkpoint/`, e.g. `epoch-0031`.
    pub checkpoint: String,
    pub epochs_done: usize,
    pub metric: String,
    pub mode: Mode,
    pub value: f64,
}

const BEST: &str = "best.json";

/// The directory of the checkpoint after `epochs_done` epochs: `epoch-0031`.
pub fn name(epochs_done: usize) -> String {
    format!("epoch-{epochs_done:04}")
}

/// The best checkpoint `dir` records, if any.
pub fn best(dir: &Path) -> Result<Option<BestCheckpoint>, TrainError> {
    let path = dir.join(BEST);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(TrainError::Io { path, source: e }),
    };
    serde_json::from_slice(&bytes).map(Some).map_err(|e| TrainError::Checkpoint {
        path,
        problem: format!("{e}: not a record of the best checkpoint (delete it; the next better epoch writes it again)"),
    })
}

/// Forgets the best checkpoint: a run resumed from before it trains those epochs again, and measures them anew.
pub fn forget_best(dir: &Path) -> Result<(), TrainError> {
    let path = dir.join(BEST);
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(TrainError::Io { path, source: e }),
        _ => Ok(()),
    }
}

/// The checkpoint directories (`epoch-NNNN`) in `dir`, oldest first: complete or not.
fn epoch_dirs(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("epoch-")))
        .collect();
    dirs.sort();
    Ok(dirs)
}

/// Which checkpoint of a run a command takes: `latest`, `best` or a directory name such as `epoch-0031`.
pub fn choose(dir: &Path, which: &str) -> Result<PathBuf, TrainError> {
    let missing = |problem: String| TrainError::Checkpoint { path: dir.to_path_buf(), problem };
    let kept = || -> String {
        let names: Vec<String> = epoch_dirs(dir)
            .unwrap_or_default()
            .iter()
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        if names.is_empty() {
            "none".into()
        } else {
            names.join(", ")
        }
    };
    let path = match which {
        "latest" => latest(dir)?.ok_or_else(|| missing("the run has no checkpoint yet".into()))?,
        "best" => {
            let record = best(dir)?.ok_or_else(|| {
                missing(
                    "no best checkpoint is recorded: the run's config monitors no metric \
                     ([training.checkpoints] monitor = \"c_err_hungarian\", say), or no epoch has measured it yet"
                        .into(),
                )
            })?;
            dir.join(record.checkpoint)
        }
        name if name.starts_with("epoch-") && !name.contains(['/', '\\']) => dir.join(name),
        other => {
            return Err(missing(format!(
                "`{other}` names no checkpoint: use latest, best or one of the kept directories ({})",
                kept()
            )))
        }
    };
    if !path.join("state.json").is_file() {
        return Err(TrainError::Checkpoint {
            path,
            problem: format!("not a complete checkpoint; the run keeps {}", kept()),
        });
    }
    Ok(path)
}

/// The non-tensor state of a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainingState {
    pub epochs_done: usize,
    pub generator_steps: u64,
    pub discriminator_steps: u64,
    pub latent_rng: ChaCha8Rng,
    pub real_batches: RealBatches,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::Io { path: path.to_path_buf(), source }
}

fn tensors(path: &Path) -> impl Fn(candle_core::Error) -> TrainError + '_ {
    move |source| TrainError::Checkpoint { path: path.to_path_buf(), problem: source.to_string() }
}

/// Which checkpoints [`save`] keeps besides the one it writes.
#[derive(Debug, Clone, Default)]
pub struct Keep {
    /// The newest this many stay, the new one among them (at least 1).
    pub last: usize,
    /// The new record of the best checkpoint, written once the new one is complete; `None`: `best.json` stays.
    pub new_best: Option<BestCheckpoint>,
}

/// Writes a checkpoint of `epochs_done` epochs into `dir`, points `latest` at it (and `best.json`, where
/// `keep.new_best` says so), then removes the checkpoints `keep` does not keep.
#[allow(clippy::too_many_arguments)]
pub fn save(
    dir: &Path,
    state: &TrainingState,
    generator: &VarMap,
    discriminator: &VarMap,
    adam_g: &Adam,
    adam_d: &Adam,
    keep: &Keep,
    abort_midway: bool,
) -> Result<(), TrainError> {
    let name = name(state.epochs_done);
    let target = dir.join(&name);
    if target.exists() {
        std::fs::remove_dir_all(&target).map_err(io(&target))?;
    }
    std::fs::create_dir_all(&target).map_err(io(&target))?;
    let path = target.join("generator.safetensors");
    generator.save(&path).map_err(tensors(&path))?;
    let path = target.join("discriminator.safetensors");
    discriminator.save(&path).map_err(tensors(&path))?;
    if abort_midway {
        // The test hook of `CheckpointFault::InCheckpoint`: dies with half a checkpoint on disk.
        std::process::abort();
    }
    let optimiser = target.join("optimiser.safetensors");
    let path = optimiser.clone();
    let mut moments: HashMap<String, Tensor> = HashMap::new();
    moments.extend(adam_g.state().map_err(tensors(&path))?.into_iter().map(|(k, v)| (format!("generator.{k}"), v)));
    moments.extend(adam_d.state().map_err(tensors(&path))?.into_iter().map(|(k, v)| (format!("discriminator.{k}"), v)));
    candle_core::safetensors::save(&moments, &path).map_err(tensors(&path))?;
    // The libraries write these files themselves: flushed here, before anything names the checkpoint.
    for file in ["generator.safetensors", "discriminator.safetensors", "optimiser.safetensors"] {
        let path = target.join(file);
        std::fs::File::open(&path).and_then(|f| f.sync_all()).map_err(io(&path))?;
    }
    let path = target.join("state.json");
    let json =
        serde_json::to_vec(state).map_err(|e| TrainError::Checkpoint { path: path.clone(), problem: e.to_string() })?;
    write_atomically(&path, &json).map_err(io(&path))?;
    std::fs::File::open(&target).and_then(|d| d.sync_all()).map_err(io(&target))?;
    let latest = dir.join("latest");
    write_atomically(&latest, name.as_bytes()).map_err(io(&latest))?;
    if let Some(record) = &keep.new_best {
        let path = dir.join(BEST);
        let json = serde_json::to_vec_pretty(record)
            .map_err(|e| TrainError::Checkpoint { path: path.clone(), problem: e.to_string() })?;
        write_atomically(&path, &json).map_err(io(&path))?;
    }
    // Only now may older checkpoints go: the newest `keep.last` stay (by default this one and the one before it,
    // the fallback should this one be found damaged), and the best.
    let best = match best(dir) {
        Ok(record) => record.map(|r| dir.join(r.checkpoint)),
        Err(e) => {
            tracing::warn!("{e}");
            None
        }
    };
    let mut older = epoch_dirs(dir).map_err(io(dir))?;
    older.retain(|p| *p != target);
    older.truncate(older.len().saturating_sub(keep.last.max(1) - 1));
    for path in older.into_iter().filter(|p| Some(p) != best.as_ref()) {
        std::fs::remove_dir_all(&path).map_err(io(&path))?;
    }
    Ok(())
}

/// The newest complete checkpoint in `dir`, if any.
pub fn latest(dir: &Path) -> Result<Option<PathBuf>, TrainError> {
    let pointer = dir.join("latest");
    if !pointer.exists() {
        return Ok(None);
    }
    let name = std::fs::read_to_string(&pointer).map_err(io(&pointer))?;
    let path = dir.join(name.trim());
    if !path.join("state.json").is_file() {
        return Err(TrainError::Checkpoint {
            path,
            problem: "`latest` points at an incomplete checkpoint; delete the checkpoint directory to start over"
                .into(),
        });
    }
    Ok(Some(path))
}

/// The checkpoints a run can resume from, best first: the one `latest` names, then the other complete ones (with
/// their `state.json`), newest first. A resume that cannot load the first falls back to the next, and says so.
pub fn candidates(dir: &Path) -> Result<Vec<PathBuf>, TrainError> {
    let mut found = Vec::new();
    match latest(dir) {
        Ok(Some(latest)) => found.push(latest),
        Ok(None) => {}
        Err(e) => tracing::warn!("{e}; trying the checkpoints before it"),
    }
    let others: Vec<PathBuf> = epoch_dirs(dir)
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p.join("state.json").is_file() && !found.contains(p))
        .collect();
    found.extend(others.into_iter().rev());
    Ok(found)
}

/// Loads a checkpoint written by [`save`] into the variables and optimisers, returning its state.
pub fn load(
    path: &Path,
    generator: &mut VarMap,
    discriminator: &mut VarMap,
    adam_g: &mut Adam,
    adam_d: &mut Adam,
    device: &Device,
) -> Result<TrainingState, TrainError> {
    let file = path.join("state.json");
    let bytes = std::fs::read(&file).map_err(io(&file))?;
    let state: TrainingState = serde_json::from_slice(&bytes)
        .map_err(|e| TrainError::Checkpoint { path: file.clone(), problem: e.to_string() })?;
    let file = path.join("generator.safetensors");
    generator.load(&file).map_err(tensors(&file))?;
    let file = path.join("discriminator.safetensors");
    discriminator.load(&file).map_err(tensors(&file))?;
    let file = path.join("optimiser.safetensors");
    let moments = candle_core::safetensors::load(&file, device).map_err(tensors(&file))?;
    let part = |prefix: &str| -> HashMap<String, Tensor> {
        moments.iter().filter_map(|(k, v)| k.strip_prefix(prefix).map(|k| (k.to_string(), v.clone()))).collect()
    };
    adam_g.load_state(&part("generator."), state.generator_steps).map_err(tensors(&file))?;
    adam_d.load_state(&part("discriminator."), state.discriminator_steps).map_err(tensors(&file))?;
    Ok(state)
}
