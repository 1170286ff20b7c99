//! The report of an experiment: its tables, figures, sample grids, explorer page and REPORT.md, from the records of
//! the runs its `[sweep]` lists. A completed run's record carries its share of the report (sweep grids, explorer
//! sheet: see `ssinfogan_reporting::run_share`), so the report needs neither checkpoints nor a device; a run
//! completed before runs wrote that share has it written here once, from its checkpoint. It never trains.

use std::path::Path;

use anyhow::{bail, Context};
use ssinfogan_core::run_dir::RunDir;
use ssinfogan_reporting::run_share::{read_explorer, read_sweeps};
use ssinfogan_reporting::{DataSummary, ReportInputs, RunInfo, RunState, SkippedInfo, Written};

use crate::assemble::{latest_checkpoint, load_dataset, trained_generator};
use crate::config;
use crate::evaluation::{recorded_classifier, EvaluationHook};
use crate::plan::{self, ExperimentSpec, RunStatus};
use crate::records::{read_summary, RunRecord};

/// What [`write_report`] wrote.
pub struct Report {
    /// `results/<experiment>/`.
    pub results_dir: std::path::PathBuf,
    /// Whether the sweep names a baseline variant (then `tables/ablations.md` compares every other one with it).
    pub has_baseline: bool,
    pub written: Written,
}

/// Writes the report of the experiment `spec` names into `results/<experiment>/`.
pub fn write_report(spec: &ExperimentSpec) -> anyhow::Result<Report> {
    let profile = spec.profile.as_deref();
    let sweep = config::load_sweep(&spec.experiment, profile)?;
    let first = config::load(&spec.experiment, &sweep.runs[0].variant, profile)?;
    // The data as the runs recorded it; loaded only when no run has started yet.
    let provenance = match plan::recorded_provenance(&spec.experiment, profile, &spec.results)? {
        Some(provenance) => provenance,
        None => load_dataset(&first, &spec.data_root)?.provenance,
    };
    let plan = plan::build_for(&spec.experiment, profile, &spec.device, &spec.results, &spec.data_root, &provenance)?;
    let stale: Vec<String> = plan
        .runs
        .iter()
        .filter(|r| r.status == RunStatus::Stale)
        .map(|r| format!("{} ({})", r.dir.display(), r.stale_keys.join(", ")))
        .collect();
    if !stale.is_empty() {
        bail!(
            "{} completed run(s) were trained with another config than {} now gives them, and would be reported as \
             this config's: {}. Delete them to train them again, or report the new config from its own results \
             directory (--results)",
            stale.len(),
            spec.experiment.display(),
            stale.join("; ")
        );
    }
    let mut runs = Vec::new();
    for run in &plan.runs {
        let state = match run.status {
            RunStatus::Completed => RunState::Completed,
            RunStatus::Failed => RunState::Failed(failure(&RunDir::at(&run.dir))?),
            RunStatus::Pending | RunStatus::Interrupted | RunStatus::Running | RunStatus::Stale => RunState::Incomplete,
        };
        runs.push(RunInfo {
            variant: run.variant.clone(),
            n_labelled: run.n_labelled,
            seed: run.seed,
            dir: run.dir.clone(),
            state,
            instruction_set: match run.status {
                RunStatus::Pending => None,
                _ => RunRecord::read(&run.dir).ok().and_then(|r| r.cpu_products),
            },
        });
    }
    let completed: Vec<&RunInfo> = runs.iter().filter(|r| r.state == RunState::Completed).collect();
    let classifier = recorded_classifier(&spec.results, &first.experiment.name)?;
    one_judge(&completed, classifier.as_ref().map(|c| c.sha256.as_str()))?;

    // One sweep grid per continuous code and one explorer sheet for each (variant, labels), from its first
    // completed seed.
    let mut grids = Vec::new();
    let mut traversals = Vec::new();
    let mut done: Vec<(String, usize)> = Vec::new();
    for run in &completed {
        let key = (run.variant.clone(), run.n_labelled);
        if done.contains(&key) {
            continue;
        }
        done.push(key);
        let (sweeps, sheet) = match read_share(run)? {
            Some(share) => share,
            None => {
                write_share_from_checkpoint(spec, run)?;
                read_share(run)?.with_context(|| format!("{}: its report share was not written", run.dir.display()))?
            }
        };
        grids.extend(sweeps);
        traversals.push(sheet);
    }

    let s = &first.schedule;
    let inputs = ReportInputs {
        experiment: plan.experiment.clone(),
        results_dir: plan.results_dir.clone(),
        profile: spec.profile.clone(),
        data: DataSummary {
            origin: provenance.origin.clone(),
            train_size: provenance.train_size,
            test_size: provenance.test_size,
            full_dataset: provenance.full_dataset,
            note: provenance.note.clone(),
        },
        classifier_accuracy: classifier.map(|c| c.test_accuracy),
        schedule: format!(
            "batch {}, {} epochs × {} iterations ({} iterations)",
            s.batch_size,
            s.epochs,
            s.iterations_per_epoch,
            s.total_iterations()
        ),
        runs,
        skipped: plan
            .skipped
            .iter()
            .map(|s| SkippedInfo { variant: s.variant.clone(), n_labelled: s.n_labelled, reason: s.reason.clone() })
            .collect(),
        grids,
        baseline: sweep.baseline,
        traversals,
    };
    let written = ssinfogan_reporting::write_report(&inputs)?;
    Ok(Report { results_dir: plan.results_dir, has_baseline: inputs.baseline.is_some(), written })
}

/// A completed run's sweep grids and explorer sheet, as its record holds them; `None` when it holds neither.
fn read_share(
    run: &RunInfo,
) -> anyhow::Result<Option<(Vec<ssinfogan_reporting::GridImage>, ssinfogan_reporting::TraversalSheet)>> {
    let sweeps = read_sweeps(&run.dir, &run.variant, run.n_labelled, run.seed)?;
    let sheet = read_explorer(&run.dir, &run.variant, run.n_labelled, run.seed)?;
    Ok(match (sweeps, sheet) {
        (Some(sweeps), Some(sheet)) => Some((sweeps, sheet)),
        (None, None) => None,
        _ => bail!(
            "{} holds only one of {} and {}: delete the other and run the report again with the run's checkpoint \
             present",
            run.dir.display(),
            ssinfogan_reporting::run_share::SWEEPS_FILE,
            ssinfogan_reporting::run_share::EXPLORER_FILE
        ),
    })
}

/// The share of the report a run completed before runs wrote it, written now from its latest checkpoint, as the
/// run would have written it (the same streams, classifier and ops).
fn write_share_from_checkpoint(spec: &ExperimentSpec, run: &RunInfo) -> anyhow::Result<()> {
    let run_dir = RunDir::at(&run.dir);
    let checkpoint = latest_checkpoint(&run_dir).with_context(|| {
        format!(
            "{} completed without its share of the report ({} and {}) and has no checkpoint to write it from: \
             train it again (delete the directory) or leave it out of the sweep",
            run.dir.display(),
            ssinfogan_reporting::run_share::SWEEPS_FILE,
            ssinfogan_reporting::run_share::EXPLORER_FILE
        )
    })?;
    tracing::info!("{}: writing its share of the report from {}", run.dir.display(), checkpoint.display());
    let mut config = config::load(&spec.experiment, &run.variant, spec.profile.as_deref())?;
    config.data.n_labelled = run.n_labelled;
    let dataset = load_dataset(&config, &spec.data_root)?;
    let device = spec.device.open().with_context(|| format!("cannot open device {}", spec.device))?;
    let hook = EvaluationHook::prepare(&config, &dataset, &spec.results, 1, run.seed, &device)?;
    let generator = trained_generator(&config.network, &config.latent, &checkpoint, &device)?;
    crate::share::write_report_share(
        &run.dir,
        run.seed,
        generator.as_ref(),
        hook.classifier(),
        &config.latent,
        &device,
        config.training.ops,
    )
}

/// Refuses runs judged by different evaluation classifiers (or by another classifier than the one cached for the
/// experiment, whose accuracy the report gives): their C_err and Fréchet distances are not on one scale.
fn one_judge(completed: &[&RunInfo], cached: Option<&str>) -> anyhow::Result<()> {
    let mut judged: Vec<(String, &Path)> = Vec::new();
    let mut data: Vec<(String, &Path)> = Vec::new();
    for run in completed {
        let record = RunRecord::read(&run.dir)?;
        if let Some(hash) = record.classifier_sha256 {
            judged.push((hash, &run.dir));
        }
        data.push((record.data.content_sha256, &run.dir));
    }
    // Runs that found different data (no `data.source` pinned, another machine) answer different questions.
    if let Some((hash, dir)) = data.first() {
        if let Some((other, other_dir)) = data.iter().find(|(h, _)| h != hash) {
            bail!(
                "runs trained on different data cannot share a table: {} on data sha256 {hash}, {} on sha256 {other}; \
                 pin `data.source` in the experiment and train the runs of one of them again, or report them from \
                 separate results directories",
                dir.display(),
                other_dir.display()
            );
        }
    }
    if let Some((hash, dir)) = judged.first() {
        if let Some((other, other_dir)) = judged.iter().find(|(h, _)| h != hash) {
            bail!(
                "runs judged by different evaluation classifiers cannot share a table: {} by classifier sha256 {hash}, \
                 {} by sha256 {other}; train the runs of one of them again with the other's classifier/ in place, or \
                 report them from separate results directories",
                dir.display(),
                other_dir.display()
            );
        }
        if let Some(cached) = cached.filter(|c| c != hash) {
            bail!(
                "the runs were judged by evaluation classifier sha256 {hash} ({} and the others), but the \
                 experiment's classifier/ now holds sha256 {cached}: put back the classifier that judged them",
                dir.display()
            );
        }
    }
    Ok(())
}

/// The error a failed run's `summary.json` records.
fn failure(dir: &RunDir) -> anyhow::Result<String> {
    Ok(read_summary(dir)?.and_then(|s| s.error).unwrap_or_else(|| "failed (no error recorded)".into()))
}
