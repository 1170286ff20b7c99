//! `ssinfogan report`: the tables, figures, sample grids and REPORT.md of an experiment, from the runs its
//! `[sweep]` lists. It reads what the runs wrote and generates the continuous-code sweeps from each
//! (variant, labels)'s first completed seed; it never trains.

use anyhow::Context;
use ssinfogan_core::run_dir::{RunDir, RunId};
use ssinfogan_core::RngStreams;
use ssinfogan_metrics::{continuous_sweeps, sweep_values};
use ssinfogan_reporting::{Axis, DataSummary, GridImage, ReportInputs, RunInfo, RunState, SkippedInfo, TraversalSheet};
use ssinfogan_training::RunSummary;

use crate::config;
use crate::eval::EvaluationHook;
use crate::plan::{self, ExperimentArgs, RunStatus};
use crate::train::build_networks;

/// The continuous codes are swept over [−2, 2], twice their training range, as in the paper's figures.
const SWEEP: (f32, f32, usize) = (-2.0, 2.0, 9);
/// Noise samples the explorer page steps through per (variant, labels).
const EXPLORER_NOISE_SAMPLES: usize = 4;

pub fn run(args: ExperimentArgs) -> anyhow::Result<()> {
    let profile = args.profile.as_deref();
    let (first, dataset) = plan::first_variant(&args.experiment, profile, &args.data_root)?;
    let plan = plan::build_for(&args.experiment, profile, &args.device, &args.results, &args.data_root, &dataset)?;
    let mut runs = Vec::new();
    for run in &plan.runs {
        let state = match run.status {
            RunStatus::Completed => RunState::Completed,
            RunStatus::Failed => RunState::Failed(failure(&run.dir.join("summary.json"))),
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
        let id = RunId { variant: run.variant.clone(), n_labelled: run.n_labelled, seed: run.seed };
        let run_dir = RunDir::new(&args.results, &config.experiment.name, &id);
        let checkpoint = ssinfogan_training::checkpoint::latest(&run_dir.checkpoint())?
            .with_context(|| format!("{} is complete but has no checkpoint", run_dir.root().display()))?;
        let networks = build_networks(&config, &RngStreams::new(run.seed), &device)?;
        let mut generator_vars = networks.generator_vars;
        generator_vars.load(checkpoint.join("generator.safetensors"))?;
        let values = sweep_values(SWEEP.0, SWEEP.1, SWEEP.2);
        let mut rng = RngStreams::new(run.seed).stream("sweep-grid");
        for grid in continuous_sweeps(
            networks.generator.as_ref(),
            hook.classifier(),
            &config.latent,
            &values,
            &mut rng,
            &device,
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
            networks.generator.as_ref(),
            &config.latent,
            EXPLORER_NOISE_SAMPLES,
            &values,
            &mut rng,
            &device,
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
    println!("{}: {} files written", plan.results_dir.join("REPORT.md").display(), written.files.len());
    println!("{}: tables, figures and the latent explorer in one page", plan.results_dir.join("index.html").display());
    if inputs.baseline.is_some() {
        println!("{}", plan.results_dir.join("tables").join("ablations.md").display());
    }
    for claim in &written.claims {
        println!("  {:<12} {}", claim.verdict.to_string().replace("**", ""), claim.claim);
    }
    Ok(())
}

/// The error a failed run's `summary.json` records.
fn failure(path: &std::path::Path) -> String {
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice::<RunSummary>(&b).ok())
        .and_then(|s| s.error)
        .unwrap_or_else(|| "failed (no error recorded)".into())
}
