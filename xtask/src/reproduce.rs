//! `cargo xtask reproduce <experiment>`: the project's main job. It builds `ssinfogan`, obtains the data, asks
//! `ssinfogan plan` for the runs of the experiment's `[sweep]`, trains those not yet completed (resuming the
//! interrupted ones, optionally several side by side), then has `ssinfogan report` write the tables, figures,
//! sample grids and REPORT.md. With everything trained, a second invocation only rebuilds the report.

use std::collections::VecDeque;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{bail, Context};
use serde::Deserialize;

#[derive(clap::Args)]
pub struct Args {
    /// The experiment: experiments/<experiment>.toml (mnist, mnist-ablations, fashion-mnist, svhn, cifar10, celeba).
    experiment: String,
    /// The `quick` profile of the TOML: a few runs sized for a 2-core CPU (same as `--profile quick`).
    #[arg(long, conflicts_with = "profile")]
    quick: bool,
    /// A `[profiles.<name>]` of the TOML.
    #[arg(long)]
    profile: Option<String>,
    /// Runs trained side by side; each gets an equal share of the CPU threads and logs to <run>/train.log.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    jobs: u16,
    /// Build with the `cuda` feature and train on `cuda:0`.
    #[arg(long)]
    cuda: bool,
    /// Train nothing here: write a cluster job script for the runs (`slurm`: one array task per run) into
    /// results/<experiment>/slurm/ and say how to submit it.
    #[arg(long, value_parser = ["slurm"])]
    emit: Option<String>,
    #[arg(long, default_value = "results")]
    results: PathBuf,
    #[arg(long, default_value = "data")]
    data_root: PathBuf,
}

/// What `ssinfogan plan --json` prints (the fields xtask needs).
#[derive(Deserialize)]
struct Plan {
    results_dir: PathBuf,
    runs: Vec<PlannedRun>,
    skipped: Vec<Skipped>,
}

#[derive(Deserialize)]
struct PlannedRun {
    dir: PathBuf,
    status: String,
    train_args: Vec<String>,
}

#[derive(Deserialize)]
struct Skipped {
    variant: String,
    n_labelled: usize,
    reason: String,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let root = crate::workspace_root();
    let toml = root.join("experiments").join(format!("{}.toml", args.experiment));
    if !toml.is_file() {
        let known: Vec<String> = std::fs::read_dir(root.join("experiments"))
            .map(|entries| {
                entries.filter_map(|e| e.ok()?.path().file_stem().map(|s| s.to_string_lossy().into_owned())).collect()
            })
            .unwrap_or_default();
        bail!("no experiment `{}` ({} does not exist); known: {}", args.experiment, toml.display(), known.join(", "));
    }
    let profile = if args.quick { Some("quick".to_string()) } else { args.profile.clone() };
    let binary = crate::build_ssinfogan(args.cuda)?;
    let experiment_arg = format!("experiments/{}.toml", args.experiment);
    let mut common = vec![
        "--experiment".to_string(),
        experiment_arg,
        "--results".into(),
        args.results.display().to_string(),
        "--data-root".into(),
        args.data_root.display().to_string(),
    ];
    if let Some(profile) = &profile {
        common.extend(["--profile".to_string(), profile.clone()]);
    }

    eprintln!("[1/3] data");
    let dataset = dataset_of(&toml)?;
    // With the experiment, so that the data is read with its label (a CelebA profile's attribute).
    let mut data_args = vec!["--data-root".to_string(), args.data_root.display().to_string()];
    data_args.extend(["--experiment".to_string(), format!("experiments/{}.toml", args.experiment)]);
    if let Some(profile) = &profile {
        data_args.extend(["--profile".to_string(), profile.clone()]);
    }
    crate::data::obtain(&binary, &dataset, &data_args)?;

    // The evaluation classifier first, so that runs side by side (or a cluster's array tasks) share it instead of
    // each training one.
    let mut classifier_args = vec!["classifier".to_string()];
    classifier_args.extend(common.iter().cloned());
    crate::run_ssinfogan(&binary, &classifier_args)?;

    if let Some(engine) = &args.emit {
        let mut emit_args = vec!["plan".to_string(), "--emit".into(), engine.clone()];
        emit_args.extend(common.iter().cloned());
        if args.cuda {
            emit_args.extend(["--device".to_string(), "cuda:0".into()]);
        }
        crate::run_ssinfogan(&binary, &emit_args)?;
        let profile_flag = profile.as_ref().map(|p| format!(" --profile {p}")).unwrap_or_default();
        eprintln!(
            "submit with `sbatch {}/{}/slurm/sweep.sbatch` from {} (the binary must be reachable from the nodes); \
             when the array is done: `cargo xtask report {}{profile_flag}`",
            args.results.display(),
            experiment_name(&binary, &common)?,
            crate::workspace_root().display(),
            args.experiment
        );
        return Ok(());
    }
    let mut plan_args = vec!["plan".to_string(), "--json".into()];
    plan_args.extend(common.iter().cloned());
    if args.cuda {
        plan_args.extend(["--device".to_string(), "cuda:0".into()]);
    }
    let plan = read_plan(&binary, &plan_args)?;
    let count = |status: &str| plan.runs.iter().filter(|r| r.status == status).count();
    eprintln!(
        "[2/3] runs: {} in {} — {} completed, {} failed, {} running elsewhere, {} interrupted, {} pending; {} label \
         counts skipped",
        plan.runs.len(),
        plan.results_dir.display(),
        count("completed"),
        count("failed"),
        count("running"),
        count("interrupted"),
        count("pending"),
        plan.skipped.len()
    );
    for skipped in &plan.skipped {
        eprintln!("  skipped: {} with {} labels ({})", skipped.variant, skipped.n_labelled, skipped.reason);
    }
    for failed in plan.runs.iter().filter(|r| r.status == "failed") {
        eprintln!(
            "  failed earlier, not retried: {} (see its summary.json; delete the directory to train it again)",
            failed.dir.display()
        );
    }
    for running in plan.runs.iter().filter(|r| r.status == "running") {
        eprintln!("  being trained by another process, skipped here: {}", running.dir.display());
    }
    let todo: VecDeque<&PlannedRun> =
        plan.runs.iter().filter(|r| r.status == "pending" || r.status == "interrupted").collect();
    let failures = train_all(&binary, todo, args.jobs as usize)?;

    eprintln!("[3/3] report");
    let mut report_args = vec!["report".to_string()];
    report_args.extend(common);
    crate::run_ssinfogan(&binary, &report_args)?;
    if !failures.is_empty() {
        bail!("{} run(s) failed and are marked as failed in the report:\n  {}", failures.len(), failures.join("\n  "));
    }
    Ok(())
}

/// The results directory name of the experiment (profiles may rename it), from `ssinfogan plan --json`.
fn experiment_name(binary: &Path, common: &[String]) -> anyhow::Result<String> {
    let mut plan_args = vec!["plan".to_string(), "--json".into()];
    plan_args.extend(common.iter().cloned());
    let plan = read_plan(binary, &plan_args)?;
    Ok(plan.results_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default())
}

/// `cargo xtask report <experiment>`: rebuilds the report from the runs on disk (e.g. after a cluster sweep).
#[derive(clap::Args)]
pub struct ReportArgs {
    /// The experiment: experiments/<experiment>.toml.
    experiment: String,
    /// The `quick` profile (same as `--profile quick`).
    #[arg(long, conflicts_with = "profile")]
    quick: bool,
    #[arg(long)]
    profile: Option<String>,
    #[arg(long, default_value = "results")]
    results: PathBuf,
    #[arg(long, default_value = "data")]
    data_root: PathBuf,
}

pub fn report(args: &ReportArgs) -> anyhow::Result<()> {
    let binary = crate::build_ssinfogan(false)?;
    let mut report_args = vec![
        "report".to_string(),
        "--experiment".into(),
        format!("experiments/{}.toml", args.experiment),
        "--results".into(),
        args.results.display().to_string(),
        "--data-root".into(),
        args.data_root.display().to_string(),
    ];
    let profile = if args.quick { Some("quick".to_string()) } else { args.profile.clone() };
    if let Some(profile) = profile {
        report_args.extend(["--profile".to_string(), profile]);
    }
    crate::run_ssinfogan(&binary, &report_args)
}

/// The `[experiment] dataset` of a TOML, read as text so that xtask needs no config types.
/// `[experiment] dataset` of an experiment file, or of the file it `extends` (the binary resolves the rest; this is
/// needed before it can run, to fetch the data).
fn dataset_of(toml: &Path) -> anyhow::Result<String> {
    dataset_along(toml, 0)
}

fn dataset_along(toml: &Path, depth: usize) -> anyhow::Result<String> {
    if depth > 16 {
        bail!("{}: `extends` goes round in a circle", toml.display());
    }
    let text = std::fs::read_to_string(toml).with_context(|| format!("cannot read {}", toml.display()))?;
    let table: toml::Table = toml::from_str(&text).with_context(|| format!("{} is not valid TOML", toml.display()))?;
    let dataset = table.get("experiment").and_then(|e| e.get("dataset")).and_then(|d| d.as_str());
    match (dataset, table.get("extends").and_then(|e| e.as_str())) {
        (Some(dataset), _) => Ok(dataset.to_string()),
        (None, Some(parent)) => dataset_along(&toml.parent().unwrap_or(Path::new(".")).join(parent), depth + 1),
        _ => bail!("{}: no `dataset = \"…\"` in [experiment], and it extends no other file", toml.display()),
    }
}

fn read_plan(binary: &Path, args: &[String]) -> anyhow::Result<Plan> {
    let output = Command::new(binary)
        .current_dir(crate::workspace_root())
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot run {}", binary.display()))?;
    if !output.status.success() {
        bail!("`ssinfogan {}` failed ({})", args.join(" "), output.status);
    }
    serde_json::from_slice(&output.stdout).context("`ssinfogan plan --json` printed something that is not a plan")
}

/// Trains every run of `todo` with `jobs` workers; returns the runs that failed, with why. A failure does not
/// stop the other runs: the sweep finishes and the report marks it.
fn train_all(binary: &Path, todo: VecDeque<&PlannedRun>, jobs: usize) -> anyhow::Result<Vec<String>> {
    let total = todo.len();
    if total == 0 {
        eprintln!("  nothing to train");
        return Ok(Vec::new());
    }
    let jobs = jobs.min(total);
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let threads = (cores / jobs).max(1);
    let queue = Mutex::new(todo.into_iter().enumerate().collect::<VecDeque<_>>());
    let failures = Mutex::new(Vec::new());
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| loop {
                let Some((index, run)) = queue.lock().unwrap().pop_front() else { break };
                let begun = Instant::now();
                let name = run.dir.display();
                eprintln!("  [{}/{total}] training {name}", index + 1);
                match train_one(binary, run, jobs, threads) {
                    Ok(()) => eprintln!("  [{}/{total}] done {name} in {}", index + 1, minutes(begun)),
                    Err(e) => {
                        eprintln!("  [{}/{total}] FAILED {name}: {e:#}", index + 1);
                        failures.lock().unwrap().push(format!("{name}: {e:#}"));
                    }
                }
            });
        }
    });
    eprintln!("  {total} run(s) in {}", minutes(started));
    Ok(failures.into_inner().unwrap())
}

/// One `ssinfogan train`; side by side, its output goes to `<run>/train.log` so that progress bars do not mix.
fn train_one(binary: &Path, run: &PlannedRun, jobs: usize, threads: usize) -> anyhow::Result<()> {
    let root = crate::workspace_root();
    let mut command = Command::new(binary);
    command.current_dir(&root).arg("train").args(&run.train_args);
    if jobs > 1 {
        command.env("RAYON_NUM_THREADS", threads.to_string());
        let dir = root.join(&run.dir);
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let log_path = dir.join("train.log");
        let log = File::options()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("cannot open {}", log_path.display()))?;
        command.stdout(log.try_clone()?).stderr(log);
        eprintln!("      log: {}", log_path.display());
    }
    let status = command.status().with_context(|| format!("cannot run {}", binary.display()))?;
    if !status.success() {
        let hint = if jobs > 1 { format!(" (see {}/train.log)", run.dir.display()) } else { String::new() };
        bail!("`ssinfogan train` exited with {status}{hint}");
    }
    Ok(())
}

fn minutes(since: Instant) -> String {
    let s = since.elapsed().as_secs();
    format!("{}m{:02}s", s / 60, s % 60)
}
