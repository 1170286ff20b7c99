//! The report of an experiment: its tables, figures, sample grids, explorer page and REPORT.md, from the runs its
//! `[sweep]` lists. It reads what the runs wrote and generates the continuous-code sweeps from each
//! (variant, labels)'s first completed seed; it never trains.

use anyhow::Context;
use ssinfogan_core::run_dir::RunDir;
use ssinfogan_core::RngStreams;
use ssinfogan_metrics::{continuous_sweeps, sweep_values};
use ssinfogan_reporting::{
    Axis, DataSummary, GridImage, ReportInputs, RunInfo, RunState, SkippedInfo, TraversalSheet, Written,
};

use crate::assemble::{latest_checkpoint, trained_generator};
use crate::config;
use crate::evaluation::EvaluationHook;
use crate::plan::{self, ExperimentSpec, RunStatus};
use crate::records::read_summary;

/// The continuous codes are swept over [−2, 2], twice their training range, as in the paper's figures.
const SWEEP: (f32, f32, usize) = (-2.0, 2.0, 9);
/// Noise samples the explorer page steps through per (variant, labels).
const EXPLORER_NOISE_SAMPLES: usize = 4;

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
    let args = spec;
    let profile = args.profile.as_deref();
    let (first, dataset) = plan::first_variant(&args.experiment, profile, &args.data_root)?;
    let plan = plan::build_for(&args.experiment, profile, &args.device, &args.results, &args.data_root, &dataset)?;
    let mut runs = Vec::new();
    for run in &plan.runs {
        let state = match run.status {
            RunStatus::Completed => RunState::Completed,
            RunStatus::Failed => RunState::Failed(failure(&RunDir::at(&run.dir))?),
            RunStatus::Pending | RunStatus::Interrupted | RunStatus::Running => RunState::Incomplete,
        };
        runs.push(RunInfo {
            variant: run.variant.clone(),
            n_labelled: run.n_labelled,
            seed: run.seed,
            dir: run.dir.clone(),
            state,
        });
    }

    let device = args.device.open().with_context(|| format!("cannot open device {}", args.device))?;
    // The classifier and test split are the experiment's, shared by every variant: prepared once.
    let has_completed = runs.iter().any(|r| r.state == RunState::Completed);
    let hook = if has_completed {
        Some(EvaluationHook::prepare(&first, &dataset, &args.results, 1, 1, &device)?)
    } else {
        None
    };

    // One sweep grid per continuous code for each (variant, labels), from its first completed seed.
    let mut grids = Vec::new();
    let mut traversals = Vec::new();
    let classifier_accuracy = hook.as_ref().map(EvaluationHook::classifier_accuracy);
    let mut done: Vec<(String, usize)> = Vec::new();
    for run in runs.iter().filter(|r| r.state == RunState::Completed) {
        let key = (run.variant.clone(), run.n_labelled);
        if done.contains(&key) {
            continue;
        }
        done.push(key);
        let mut config = config::load(&args.experiment, &run.variant, profile)?;
        config.data.n_labelled = run.n_labelled;
        let hook = hook.as_ref().context("a completed run implies a prepared classifier")?;
        let checkpoint = latest_checkpoint(&RunDir::at(&run.dir))?;
        let generator = trained_generator(&config.network, &config.latent, &checkpoint, &device)?;
        let values = sweep_values(SWEEP.0, SWEEP.1, SWEEP.2);
        let mut rng = RngStreams::new(run.seed).stream("sweep-grid");
        for grid in continuous_sweeps(
            generator.as_ref(),
            hook.classifier(),
            &config.latent,
            &values,
            &mut rng,
            &device,
            config.training.ops,
        )? {
            let (_, channels, height, width) = grid.images.dims4()?;
            grids.push(GridImage {
                variant: run.variant.clone(),
                n_labelled: run.n_labelled,
                seed: run.seed,
                continuous: grid.continuous,
                values: grid.values,
                rows: grid.rows,
                channels,
                height,
                width,
                pixels: grid.images.flatten_all()?.to_vec1()?,
                class_stability: grid.class_stability,
                effect: grid.effect,
            });
        }
        // The explorer's sheet, from latents of its own stream: the sweeps above are unchanged by it.
        let mut rng = RngStreams::new(run.seed).stream("explorer");
        let sheet = ssinfogan_metrics::sweep::traversal(
            generator.as_ref(),
            &config.latent,
            EXPLORER_NOISE_SAMPLES,
            &values,
            &mut rng,
            &device,
            config.training.ops,
        )?;
        let (_, channels, height, width) = sheet.images.dims4()?;
        traversals.push(TraversalSheet {
            variant: run.variant.clone(),
            n_labelled: run.n_labelled,
            seed: run.seed,
            code_name: config.latent.semi_supervised.first().map(|c| c.name.clone()).unwrap_or_else(|| "code".into()),
            code_values: sheet.code_values,
            noise_samples: sheet.noise_samples,
            axes: sheet
                .axes
                .iter()
                .map(|a| Axis {
                    name: a.name.clone(),
                    continuous: a.continuous,
                    values: a.values.clone(),
                    base: a.base.clone(),
                })
                .collect(),
            channels,
            height,
            width,
            pixels: sheet.images.flatten_all()?.to_vec1()?,
        });
    }

    let s = &first.schedule;
    let inputs = ReportInputs {
        experiment: plan.experiment.clone(),
        results_dir: plan.results_dir.clone(),
        profile: args.profile.clone(),
        data: DataSummary {
            origin: dataset.provenance.origin.clone(),
            train_size: dataset.provenance.train_size,
            test_size: dataset.provenance.test_size,
            full_dataset: dataset.provenance.full_dataset,
            note: dataset.provenance.note.clone(),
        },
        classifier_accuracy,
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
        baseline: config::load_sweep(&args.experiment, profile)?.baseline,
        traversals,
    };
    let written = ssinfogan_reporting::write_report(&inputs)?;
    Ok(Report { results_dir: plan.results_dir, has_baseline: inputs.baseline.is_some(), written })
}

/// The error a failed run's `summary.json` records.
fn failure(dir: &RunDir) -> anyhow::Result<String> {
    Ok(read_summary(dir)?.and_then(|s| s.error).unwrap_or_else(|| "failed (no error recorded)".into()))
}
