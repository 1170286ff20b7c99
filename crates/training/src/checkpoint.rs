//! Checkpoints: everything a run needs to continue exactly where it stopped.
//!
//! `checkpoint/epoch-NNNN/` holds `generator.safetensors` and `discriminator.safetensors` (every variable,
//! BatchNorm running statistics included), `optimiser.safetensors` (both Adams' moments) and `state.json`
//! (epochs done, Adam step counts, the latent stream and the real-batch stream with all their positions).
//! `checkpoint/latest` names the newest complete one; it is written atomically after every file of the directory
//! is on disk (each fsynced, then the directory), so a run killed while checkpointing resumes from the previous
//! one. The previous checkpoint is kept until the next one is complete: should the newest be damaged after all
//! (a disk that lied about a flush), [`candidates`] offers the one before it. Older directories are removed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use ssinfogan_core::run_dir::write_atomically;
use ssinfogan_datasets::RealBatches;

use crate::adam::Adam;
use crate::error::TrainError;

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

/// Writes a checkpoint of `epochs_done` epochs into `dir` and points `latest` at it.
pub fn save(
    dir: &Path,
    state: &TrainingState,
    generator: &VarMap,
    discriminator: &VarMap,
    adam_g: &Adam,
    adam_d: &Adam,
    abort_midway: bool,
) -> Result<(), TrainError> {
    let name = format!("epoch-{:04}", state.epochs_done);
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
    // Only now may older checkpoints go: this one and the newest before it stay, the fallback should this one be
    // found damaged.
    let mut older: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("epoch-")) && *p != target)
        .collect();
    older.sort();
    older.pop();
    for path in older {
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
    let mut others: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("epoch-")))
            .filter(|p| p.join("state.json").is_file() && !found.contains(p))
            .collect(),
        Err(_) => Vec::new(),
    };
    others.sort();
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
