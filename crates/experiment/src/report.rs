//! The report of an experiment: its tables, figures, sample grids, explorer page and REPORT.md, from the records of
//! the runs its `[sweep]` lists. A completed run's record carries its share of the report (sweep grids, explorer
//! sheet: see `ssinfogan_plan::share`), so the report needs neither checkpoints nor a device; a run
//! completed before runs wrote that share has it written here once, from its checkpoint. It never trains.

use std::path::Path;

use anyhow::{bail, Context};
use ssinfogan_core::run_dir::RunDir;
use ssinfogan_plan::morphometry::{
    read_morphometry, read_real_morphometry, write_real_morphometry, Distribution, RealMorphometry, QUANTILES,
};
use ssinfogan_plan::run_dir::MORPHOMETRY;
use ssinfogan_plan::share::{read_explorer, read_final_samples, read_sweeps};
use ssinfogan_reporting::morphometry::GroupMorphometry;
use ssinfogan_reporting::{group_name, DataSummary, ReportInputs, RunInfo, RunState, Written};

use crate::assemble::{latest_checkpoint, load_dataset, trained_generator};
use crate::classifier::ClassifierCache;
use crate::config::{self, Experiment};
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

/// How a report is made beyond which experiment it covers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportOptions {
    /// Draw the unfinished runs' curves too, dashed and in no table (`report --include-running`), to watch a
    /// sweep while it trains.
    pub include_running: bool,
}

/// Writes the report of the experiment `spec` names into `results/<experiment>/`.
pub fn write_report(spec: &ExperimentSpec, options: &ReportOptions) -> anyhow::Result<Report> {
    let experiment = spec.open()?;
    let sweep = experiment.sweep()?;
    let first = experiment.config(&sweep.runs[0].variant)?;
    // The data as the runs recorded it; loaded only when no run has started yet.
    let provenance = match plan::recorded_provenance(&experiment, &spec.results)? {
        Some(provenance) => provenance,
        None => load_dataset(&first, &spec.data_root)?.provenance,
    };
    let plan = plan::build_for(&experiment, &spec.results, &provenance)?;
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
    let classifier = ClassifierCache::of(&spec.results, &first.experiment.name).recorded()?;
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
                write_share_from_checkpoint(spec, &experiment, run)?;
                read_share(run)?.with_context(|| format!("{}: its report share was not written", run.dir.display()))?
            }
        };
        grids.extend(sweeps);
        traversals.push(sheet);
    }

    // What each continuous code controls, from every completed seed's record.
    let mut morphometry: Vec<GroupMorphometry> = Vec::new();
    for run in &completed {
        let record = match read_morphometry(&run.dir)? {
            Some(record) => record,
            None => match write_morphometry_from_checkpoint(spec, &experiment, run)? {
                true => read_morphometry(&run.dir)?
                    .with_context(|| format!("{}: its morphometry was not written", run.dir.display()))?,
                false => continue,
            },
        };
        let group = group_name(&run.variant, run.n_labelled);
        match morphometry.iter_mut().find(|m| m.group == group) {
            Some(m) => {
                m.seeds.push(run.seed);
                m.records.push(record);
            }
            None => morphometry.push(GroupMorphometry {
                variant: run.variant.clone(),
                n_labelled: run.n_labelled,
                group,
                seeds: vec![run.seed],
                records: vec![record],
                distance_to_real: Vec::new(),
                class_distance_to_real: Vec::new(),
            }),
        }
    }
    let real_morphometry = match morphometry.is_empty() {
        true => None,
        false => real_morphometry(spec, &first, &provenance.content_sha256, &plan.results_dir)?,
    };
    if let Some(real) = &real_morphometry {
        for group in &mut morphometry {
            for seed in group.seeds.clone() {
                let Some(run) =
                    completed.iter().find(|r| group_name(&r.variant, r.n_labelled) == group.group && r.seed == seed)
                else {
                    continue;
                };
                if let Some((pooled, by_class)) = distance_to_real(&run.dir, real)? {
                    group.distance_to_real.push(pooled);
                    if group.n_labelled > 0 {
                        group.class_distance_to_real.push(by_class);
                    }
                }
            }
        }
    }

    let s = &first.schedule;
    let inputs = ReportInputs {
        experiment: plan.experiment.clone(),
        results_dir: plan.results_dir.clone(),
        profile: spec.overlays.profile_list(),
        overrides: spec.overlays.overrides.clone(),
        include_running: options.include_running,
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
        skipped: plan.skipped.clone(),
        grids,
        baseline: sweep.baseline,
        traversals,
        morphometry,
        real_morphometry,
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
            ssinfogan_plan::run_dir::SWEEPS,
            ssinfogan_plan::run_dir::EXPLORER
        ),
    })
}

/// The share of the report a run completed before runs wrote it, written now from its latest checkpoint, as the
/// run would have written it (the same streams, classifier and ops).
fn write_share_from_checkpoint(spec: &ExperimentSpec, experiment: &Experiment, run: &RunInfo) -> anyhow::Result<()> {
    let run_dir = RunDir::at(&run.dir);
    let checkpoint = latest_checkpoint(&run_dir).with_context(|| {
        format!(
            "{} completed without its share of the report ({} and {}) and has no checkpoint to write it from: \
             train it again (delete the directory) or leave it out of the sweep",
            run.dir.display(),
            ssinfogan_plan::run_dir::SWEEPS,
            ssinfogan_plan::run_dir::EXPLORER
        )
    })?;
    tracing::info!("{}: writing its share of the report from {}", run.dir.display(), checkpoint.display());
    let mut config = experiment.config(&run.variant)?;
    config.data.n_labelled = run.n_labelled;
    let dataset = load_dataset(&config, &spec.data_root)?;
    let device = spec.device.open().with_context(|| format!("cannot open device {}", spec.device))?;
    let cached =
        ClassifierCache::of(&spec.results, &config.experiment.name).load_or_train(&config, &dataset, &device)?;
    let generator = trained_generator(&config.network, &config.latent, &checkpoint, &device)?;
    crate::share::write_report_share(
        &run.dir,
        run.seed,
        generator.as_ref(),
        &cached.classifier,
        &config.latent,
        &device,
        config.training.ops,
    )
}

/// The morphometry of a run completed before runs recorded it, written now from its latest checkpoint with the
/// run's own stream, as the run would have written it; `false` (with a warning) when the run has no checkpoint
/// left or its images are not digits to measure.
fn write_morphometry_from_checkpoint(
    spec: &ExperimentSpec,
    experiment: &Experiment,
    run: &RunInfo,
) -> anyhow::Result<bool> {
    let Some(checkpoint) = ssinfogan_training::checkpoint::latest(&RunDir::at(&run.dir).checkpoint())? else {
        tracing::warn!(
            "{} has no {MORPHOMETRY} and no checkpoint to measure it from: left out of the morphometry",
            run.dir.display()
        );
        return Ok(false);
    };
    tracing::info!("{}: measuring the morphometry of its codes from {}", run.dir.display(), checkpoint.display());
    let mut config = experiment.config(&run.variant)?;
    config.data.n_labelled = run.n_labelled;
    let device = spec.device.open().with_context(|| format!("cannot open device {}", spec.device))?;
    let generator = trained_generator(&config.network, &config.latent, &checkpoint, &device)?;
    crate::share::write_morphometry_record(
        &run.dir,
        run.seed,
        generator.as_ref(),
        &config.latent,
        crate::share::morphometry_draws(config.evaluation.samples_per_code),
        &device,
        config.training.ops,
    )
}

/// The real test digits' morphometry, from `<results>/<experiment>/real-morphometry.json` where it was measured on
/// the runs' data; measured (and written) now where the data is at hand; `None`, with a warning, where it is not,
/// or where the images are not 28 × 28 digits.
fn real_morphometry(
    spec: &ExperimentSpec,
    config: &config::ExperimentConfig,
    data_sha256: &str,
    dir: &Path,
) -> anyhow::Result<Option<RealMorphometry>> {
    if let Some(real) = read_real_morphometry(dir)? {
        if real.data_sha256 == data_sha256 {
            return Ok(Some(real));
        }
        tracing::warn!("{}: measured on other data than the runs', measuring again", dir.display());
    }
    let dataset = match load_dataset(config, &spec.data_root) {
        Ok(dataset) if dataset.provenance.content_sha256 == data_sha256 => dataset,
        Ok(_) | Err(_) => {
            tracing::warn!("the runs' data is not at hand: no real digits to compare the morphometry with");
            return Ok(None);
        }
    };
    let image = dataset.image;
    if (image.channels, image.height, image.width) != (1, 28, 28) {
        return Ok(None);
    }
    let measured: Vec<(u8, [f64; 6])> =
        ssinfogan_morphometry::measure_all(&ssinfogan_morphometry::to_bytes(&dataset.test.images), 28, 28)
            .into_iter()
            .zip(&dataset.test.labels)
            .filter_map(|(m, &label)| m.map(|m| (label, m.values())))
            .collect();
    let all: Vec<[f64; 6]> = measured.iter().map(|(_, v)| *v).collect();
    let real = RealMorphometry {
        data_sha256: data_sha256.to_string(),
        origin: format!("{}, test split", dataset.provenance.origin),
        digits: dataset.test.len(),
        measured: measured.len(),
        all: distributions(&all),
        classes: (0..dataset.num_classes)
            .map(|k| {
                let of_class: Vec<[f64; 6]> =
                    measured.iter().filter(|(label, _)| usize::from(*label) == k).map(|(_, v)| *v).collect();
                distributions(&of_class)
            })
            .collect(),
    };
    write_real_morphometry(dir, &real)?;
    Ok(Some(real))
}

/// Each morphometric's distribution over `measured` digits.
fn distributions(measured: &[[f64; 6]]) -> Vec<Distribution> {
    ssinfogan_morphometry::NAMES
        .iter()
        .enumerate()
        .map(|(m, name)| {
            let values: Vec<f64> = measured.iter().map(|v| v[m]).collect();
            let (mean, sd) = if values.is_empty() { (0.0, 0.0) } else { crate::share::mean_sd(&values) };
            Distribution {
                name: (*name).to_string(),
                mean,
                sd,
                quantiles: ssinfogan_morphometry::quantiles(&values, QUANTILES),
            }
        })
        .collect()
}

/// Per morphometric, the Wasserstein distance of a run's final samples from the real test digits over the real
/// digits' standard deviation: over all digits, and per class (code value k against class k, averaged over the
/// classes); `None` for a run without 28 × 28 final samples.
fn distance_to_real(run_dir: &Path, real: &RealMorphometry) -> anyhow::Result<Option<(Vec<f64>, Vec<f64>)>> {
    let Some(samples) = read_final_samples(run_dir)? else { return Ok(None) };
    if samples.image != (1, 28, 28) {
        return Ok(None);
    }
    let measured: Vec<(i64, [f64; 6])> = ssinfogan_morphometry::measure_all(&samples.pixels, 28, 28)
        .into_iter()
        .zip(&samples.codes)
        .filter_map(|(m, &code)| m.map(|m| (code, m.values())))
        .collect();
    let distance = |generated: &[[f64; 6]], real: &[Distribution]| -> Vec<f64> {
        distributions(generated)
            .iter()
            .zip(real)
            .map(|(generated, real)| {
                ssinfogan_morphometry::quantile_distance(&generated.quantiles, &real.quantiles)
                    .map_or(f64::NAN, |d| d / real.sd)
            })
            .collect()
    };
    let all: Vec<[f64; 6]> = measured.iter().map(|(_, v)| *v).collect();
    let per_class: Vec<Vec<f64>> = real
        .classes
        .iter()
        .enumerate()
        .filter_map(|(k, class)| {
            let of_code: Vec<[f64; 6]> =
                measured.iter().filter(|(code, _)| *code == k as i64).map(|(_, v)| *v).collect();
            (!of_code.is_empty()).then(|| distance(&of_code, class))
        })
        .collect();
    let by_class = (0..ssinfogan_morphometry::NAMES.len())
        .map(|m| per_class.iter().map(|d| d[m]).sum::<f64>() / per_class.len().max(1) as f64)
        .collect();
    Ok(Some((distance(&all, &real.all), by_class)))
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
