//! `cargo xtask reproduce <experiment>`: the project's main job. It builds `ssinfogan`, obtains the data, asks
//! `ssinfogan plan` for the runs of the experiment's `[sweep]`, trains those not yet completed (resuming the
//! interrupted ones, optionally several side by side, or as a Slurm job array with `--slurm`), then has
//! `ssinfogan report` write the tables, figures, sample grids and REPORT.md. With everything trained, a second
//! invocation only rebuilds the report.

use std::collections::VecDeque;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use ssinfogan_plan::{Plan, PlannedRun, RunStatus};

use crate::slurm;

#[derive(clap::Args)]
pub struct Args {
    /// The experiment: experiments/<experiment>.toml (mnist, mnist-ablations, fashion-mnist, svhn, cifar10, celeba),
    /// or the path of an experiment file of your own (`….toml`).
    experiment: String,
    #[command(flatten)]
    overlays: OverlayFlags,
    /// Runs trained side by side; each gets an equal share of the CPU threads and logs to <run>/train.log, and the
    /// terminal shows one bar for the sweep (runs done / failed / running, iterations, ETA). Default: chosen from
    /// the machine's cores and memory: a sweep of at most two runs per core all at once, a larger one a run per
    /// core, one thread each, as many as the memory holds (README, Reproduce).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    jobs: Option<u16>,
    /// Let the data step install a system package the dataset comes in (Fashion-MNIST: Debian's
    /// dataset-fashion-mnist, with apt-get as root); without it, it says what to run.
    #[arg(long)]
    install: bool,
    /// Build with the `cuda` feature and train on `cuda:0`.
    #[arg(long)]
    cuda: bool,
    /// Train on a Slurm cluster: data and the evaluation classifier here, then the pending and interrupted runs
    /// as one job array (one task per run, requeueable), followed to its end; then the report. Run it again to
    /// attach to an array in flight (Ctrl-C stops following, not the tasks).
    #[arg(long, conflicts_with_all = ["emit", "jobs"])]
    slurm: bool,
    /// Train nothing and submit nothing: write the job script `--slurm` would submit (`slurm`: one array task per
    /// pending or interrupted run) into results/<experiment>/slurm/sweep.sbatch and say how to submit it.
    #[arg(long, value_parser = ["slurm"])]
    emit: Option<String>,
    /// Train only these runs of the sweep, in this order: comma-separated patterns of run names
    /// (`<variant>-n<labels>-s<seed>`; `*` any text, `?` one character), e.g. `infogan-*,ss-infogan-n132-*`. A
    /// session can chip at a long sweep this way; the report still covers the whole sweep, and the runs left are
    /// listed at the end.
    #[arg(long, value_delimiter = ',', conflicts_with_all = ["slurm", "emit"])]
    runs: Vec<String>,
    #[command(flatten)]
    cluster: slurm::Flags,
    /// Where runs, tables and the report go (results/<experiment>/), relative to the workspace root.
    #[arg(long, default_value = "results")]
    results: PathBuf,
    /// Where datasets are found or downloaded to, relative to the workspace root.
    #[arg(long, default_value = "data")]
    data_root: PathBuf,
}

/// The profiles and settings laid over the experiment file, handed to `ssinfogan` as they are: the binary reads
/// and checks them.
#[derive(clap::Args, Default, Clone)]
pub struct OverlayFlags {
    /// The `quick` profile of the TOML: a few runs sized for a 2-core CPU (same as `--profile quick`).
    #[arg(long, conflicts_with = "profiles")]
    quick: bool,
    /// `[profiles.<name>]` of the TOML, each over the last: `--profile quick,cpu4` or the flag repeated.
    #[arg(long = "profile", value_name = "NAME", value_delimiter = ',')]
    profiles: Vec<String>,
    /// One setting over the file and its profiles, e.g. `--set loss.lambda_ss=1`; repeat it for more (the runs'
    /// settings send the results to a directory of their own: `ssinfogan train --help`).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

impl OverlayFlags {
    fn profiles(&self) -> Vec<String> {
        if self.quick {
            vec!["quick".to_string()]
        } else {
            self.profiles.clone()
        }
    }

    /// As arguments of `ssinfogan`.
    fn args(&self) -> Vec<String> {
        let mut args = Vec::new();
        let profiles = self.profiles();
        if !profiles.is_empty() {
            args.extend(["--profile".to_string(), profiles.join(",")]);
        }
        for setting in &self.overrides {
            args.extend(["--set".to_string(), setting.clone()]);
        }
        args
    }

    /// As they are typed again after `cargo xtask … <experiment>`, with a leading space; empty without any.
    fn shell(&self) -> String {
        self.args().iter().map(|a| format!(" {}", shell_word(a))).collect()
    }

    /// ` (profile quick, set loss.lambda_ss=1)`, or nothing.
    fn describe(&self) -> String {
        let mut parts = Vec::new();
        let profiles = self.profiles();
        if !profiles.is_empty() {
            parts.push(format!("profile {}", profiles.join(",")));
        }
        parts.extend(self.overrides.iter().map(|o| format!("set {o}")));
        if parts.is_empty() {
            String::new()
        } else {
            format!(" ({})", parts.join(", "))
        }
    }
}

/// `word` as a POSIX shell reads it back: as it is when plain, else in single quotes.
fn shell_word(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_.,/=:+@%".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let toml = experiment_file(&args.experiment)?;
    let binary = crate::workspace::build_ssinfogan(args.cuda)?;
    let experiment_arg = toml.display().to_string();
    let mut common = vec![
        "--experiment".to_string(),
        experiment_arg.clone(),
        "--results".into(),
        args.results.display().to_string(),
        "--data-root".into(),
        args.data_root.display().to_string(),
    ];
    common.extend(args.overlays.args());

    let mut stages = Stages::default();
    eprintln!("[1/3] data");
    let dataset = dataset_of(&binary, &experiment_arg, &args.overlays.args())?;
    // With the experiment, so that the data is read with its label (a CelebA profile's attribute).
    let mut data_args = vec!["--data-root".to_string(), args.data_root.display().to_string()];
    data_args.extend(["--experiment".to_string(), experiment_arg.clone()]);
    data_args.extend(args.overlays.args());
    crate::data::obtain(&binary, &dataset, &data_args, args.install)?;
    stages.lap("data");

    // The evaluation classifier first, so that runs side by side (or a cluster's array tasks) share it instead of
    // each training one.
    let mut classifier_args = vec!["classifier".to_string()];
    classifier_args.extend(common.iter().cloned());
    crate::workspace::run_ssinfogan(&binary, &classifier_args)?;
    stages.lap("classifier");

    // What the plan and every run of it are made with; a run adds its variant, labels and seed (`train_args`).
    let mut sweep_args = common.clone();
    if args.cuda {
        sweep_args.extend(["--device".to_string(), "cuda:0".into()]);
    }
    let mut plan_args = vec!["plan".to_string(), "--json".into()];
    plan_args.extend(sweep_args.iter().cloned());
    let plan = read_plan(&binary, &plan_args)?;
    if args.slurm || args.emit.is_some() {
        let origin = format!("{experiment_arg}{}", args.overlays.describe());
        return on_slurm(args, &binary, &common, &sweep_args, &plan_args, plan, &origin);
    }
    print_plan(&plan);
    refuse_stale(&plan)?;
    let todo = selected(&plan, &args.runs)?;
    let jobs = match args.jobs {
        Some(jobs) => jobs as usize,
        None => {
            let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
            let per_run = plan.cluster.memory.as_deref().map(slurm::memory_mb).transpose()?;
            let jobs = automatic_jobs(todo.len(), cores, available_memory_mb(), per_run);
            if todo.len() > 1 {
                eprintln!(
                    "  {jobs} run(s) side by side on {cores} core(s), {} thread(s) each (--jobs to choose)",
                    (cores / jobs).max(1)
                );
            }
            jobs
        }
    };
    let failures = train_all(&binary, &sweep_args, todo, jobs)?;
    stages.lap("runs");
    print_remaining(&read_plan(&binary, &plan_args)?);

    eprintln!("[3/3] report");
    let mut report_args = vec!["report".to_string()];
    report_args.extend(common);
    crate::workspace::run_ssinfogan(&binary, &report_args)?;
    stages.lap("report");
    eprintln!("{stages}");
    if !failures.is_empty() {
        bail!("{} run(s) failed and are marked as failed in the report:\n  {}", failures.len(), failures.join("\n  "));
    }
    Ok(())
}

/// The runs to train: every pending or interrupted one in sweep order, or with `patterns` those whose names match,
/// in the order of the patterns (a run matching several comes at the first).
fn selected<'p>(plan: &'p Plan, patterns: &[String]) -> anyhow::Result<VecDeque<&'p PlannedRun>> {
    if patterns.is_empty() {
        return Ok(plan.to_train().collect());
    }
    let mut todo = VecDeque::new();
    for text in patterns {
        let pattern = glob::Pattern::new(text).with_context(|| {
            format!("--runs: `{text}` is not a pattern of run names (`*` any text, `?` one character)")
        })?;
        let matching: Vec<&PlannedRun> = plan.runs.iter().filter(|r| pattern.matches(&run_name(r))).collect();
        if matching.is_empty() {
            let names: Vec<String> = plan.runs.iter().map(run_name).collect();
            bail!("--runs: `{text}` matches no run of the sweep; its runs are {}", names.join(", "));
        }
        for run in matching {
            if run.status.to_train() && !todo.iter().any(|r: &&PlannedRun| r.dir == run.dir) {
                todo.push_back(run);
            }
        }
    }
    Ok(todo)
}

/// Stale runs would make the report refuse the whole results directory at the end: said before anything trains.
fn refuse_stale(plan: &Plan) -> anyhow::Result<()> {
    let stale = plan.count(RunStatus::Stale);
    if stale > 0 {
        bail!(
            "{stale} completed run(s) in {} were trained with another config than the experiment file now gives them \
             (listed above): delete them to train them again, or give this config its own directory with --results",
            plan.results_dir.display()
        );
    }
    Ok(())
}

/// `<variant>-n<labels>-s<seed>`: a run's directory name.
fn run_name(run: &PlannedRun) -> String {
    run.dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// What is left of the sweep after this invocation, so that the next session knows where to start.
fn print_remaining(plan: &Plan) {
    let left: Vec<&PlannedRun> = plan.runs.iter().filter(|r| r.status != RunStatus::Completed).collect();
    if left.is_empty() {
        eprintln!("  all {} run(s) of the sweep are completed", plan.runs.len());
        return;
    }
    eprintln!("  {} of {} run(s) of the sweep are not completed:", left.len(), plan.runs.len());
    for run in left {
        eprintln!("    {} ({})", run_name(run), run.status);
    }
}

/// The runs' states as the plan gives them, and what is skipped and why.
fn print_plan(plan: &Plan) {
    let count = |status| plan.count(status);
    eprintln!(
        "[2/3] runs: {} in {} — {} completed, {} stale, {} failed, {} running elsewhere, {} interrupted, {} pending; \
         {} label counts skipped",
        plan.runs.len(),
        plan.results_dir.display(),
        count(RunStatus::Completed),
        count(RunStatus::Stale),
        count(RunStatus::Failed),
        count(RunStatus::Running),
        count(RunStatus::Interrupted),
        count(RunStatus::Pending),
        plan.skipped.len()
    );
    for skipped in &plan.skipped {
        eprintln!("  skipped: {} with {} labels ({})", skipped.variant, skipped.n_labelled, skipped.reason);
    }
    for failed in plan.runs.iter().filter(|r| r.status == RunStatus::Failed) {
        eprintln!(
            "  failed earlier, not retried: {} (see its summary.json; delete the directory to train it again)",
            failed.dir.display()
        );
    }
    for stale in plan.runs.iter().filter(|r| r.status == RunStatus::Stale) {
        eprintln!(
            "  stale, not retrained and not reported: {} was trained with another config ({} changed since); delete \
             the directory to train it again, or give this config its own --results directory",
            stale.dir.display(),
            stale.stale_keys.join(", ")
        );
    }
    for running in plan.runs.iter().filter(|r| r.status == RunStatus::Running) {
        eprintln!("  being trained by another process, skipped here: {}", running.dir.display());
    }
}

/// The Slurm path: attach to this experiment's array if one is in flight; otherwise write the job script for the
/// pending and interrupted runs and (unless `--emit`) check its resources against `sinfo`, submit it, follow it
/// and write the report.
fn on_slurm(
    args: &Args,
    binary: &Path,
    common: &[String],
    sweep_args: &[String],
    plan_args: &[String],
    plan: Plan,
    origin: &str,
) -> anyhow::Result<()> {
    let root = crate::workspace::workspace_root();
    let slurm_dir = root.join(&plan.results_dir).join("slurm");
    let record = slurm_dir.join("array.json");
    let profile_flag = args.overlays.shell();
    let again = format!("cargo xtask reproduce {}{profile_flag} --slurm", args.experiment);
    let poll = Duration::try_from_secs_f64(args.cluster.poll_seconds)
        .ok()
        .filter(|d| !d.is_zero())
        .context("--poll-seconds must be a positive number")?;
    if args.slurm {
        if let Some(array) = slurm::read_array(&record)? {
            let queued = slurm::queued_tasks(&array)?;
            if !queued.is_empty() {
                eprintln!(
                    "[2/3] array {} ({} run(s), submitted earlier) is still in flight: following it; nothing is \
                     submitted",
                    array.job_id,
                    array.tasks.len()
                );
                let ctrl_c = slurm::CtrlC::catch()?;
                return follow_and_report(&array, binary, common, &slurm_dir, poll, &again, &ctrl_c);
            }
        }
    }
    print_plan(&plan);
    let tasks: Vec<slurm::Task> = plan
        .runs
        .iter()
        .filter(|r| r.status.to_train())
        .map(|r| slurm::Task {
            name: r.dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            dir: r.dir.clone(),
            train_args: train_args(sweep_args, r),
        })
        .collect();
    let report_args = || {
        let mut report = vec!["report".to_string()];
        report.extend(common.iter().cloned());
        report
    };
    if tasks.is_empty() {
        eprintln!("  nothing to submit: no run is pending or interrupted");
        if args.emit.is_none() {
            eprintln!("[3/3] report");
            crate::workspace::run_ssinfogan(binary, &report_args())?;
        }
        return Ok(());
    }
    let resources = slurm::Resources::resolve(&plan.cluster, &args.cluster, args.cuda, origin)?;
    let job_name = format!("ssinfogan-{}", plan.experiment);
    let script_path = slurm_dir.join("sweep.sbatch");
    let binary = std::fs::canonicalize(binary).with_context(|| format!("cannot find {}", binary.display()))?;
    let text = slurm::script(&job_name, &tasks, &resources, &binary, &root, &slurm_dir)?;
    slurm::write_atomically(&script_path, text.as_bytes())?;
    if args.emit.is_some() {
        // Where this host is a cluster's login node, a script no node can run is refused now rather than left to
        // pend; elsewhere it is written for a cluster this host cannot see.
        match slurm::partitions() {
            Ok(partitions) => {
                slurm::check(&resources, &partitions, origin)?;
            }
            Err(_) => eprintln!("  (no Slurm reachable from here: the resources asked were not checked against sinfo)"),
        }
        eprintln!(
            "{}: a Slurm job array of {} run(s). Submit it with `sbatch {}` (the binary {} and {} must be reachable \
             from the nodes), or let `{again}` submit and follow it; when the array is done: \
             `cargo xtask report {}{profile_flag}`",
            script_path.display(),
            tasks.len(),
            script_path.display(),
            binary.display(),
            root.display(),
            args.experiment
        );
        return Ok(());
    }
    let partition = slurm::check(&resources, &slurm::partitions()?, origin)?;
    // The plan again, just before submitting: a run that another process started meanwhile is not submitted twice
    // (its lock would make the twin task fail at once, but the report would count it).
    let fresh = read_plan(binary.as_path(), plan_args)?;
    let still: Vec<&PathBuf> = fresh.runs.iter().filter(|r| r.status.to_train()).map(|r| &r.dir).collect();
    if tasks.iter().any(|t| !still.contains(&&t.dir)) {
        bail!("the runs' states changed while the array was being prepared (another sweep?); run `{again}` again");
    }
    let ctrl_c = slurm::CtrlC::catch()?;
    let job_id = slurm::submit(&script_path)?;
    let array = slurm::Array {
        job_id,
        job_name,
        script: script_path,
        submitted_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default(),
        tasks,
    };
    slurm::write_atomically(&record, serde_json::to_string_pretty(&array)?.as_bytes())?;
    eprintln!(
        "  submitted array {} to partition {partition}: {} task(s), each --cpus-per-task={}{}{}; logs: \
         {}/{}_<task>.log",
        array.job_id,
        array.tasks.len(),
        resources.cpus_per_task,
        resources.memory.as_ref().map(|(m, _)| format!(" --mem={m}")).unwrap_or_default(),
        resources.time.as_ref().map(|(t, _)| format!(" --time={t}")).unwrap_or_default(),
        slurm_dir.display(),
        array.job_id
    );
    follow_and_report(&array, &binary, common, &slurm_dir, poll, &again, &ctrl_c)
}

/// Follows an array to its end, names each run that did not complete with the tail of its log, and writes the
/// report from every run that did.
fn follow_and_report(
    array: &slurm::Array,
    binary: &Path,
    common: &[String],
    slurm_dir: &Path,
    poll: Duration,
    again: &str,
    ctrl_c: &slurm::CtrlC,
) -> anyhow::Result<()> {
    let root = crate::workspace::workspace_root();
    eprintln!("  following array {} (Ctrl-C stops following; the tasks keep running)", array.job_id);
    if !slurm::follow(array, &root, poll, ctrl_c)? {
        eprintln!(
            "stopped following array {}; its tasks keep running on the cluster. Follow it again (and write the \
             report when it ends) with: {again}",
            array.job_id
        );
        std::process::exit(130);
    }
    let failures = slurm::failures(array, &root, slurm_dir);
    for failure in &failures {
        eprintln!("  FAILED {failure}");
    }
    eprintln!("[3/3] report");
    let mut report_args = vec!["report".to_string()];
    report_args.extend(common.iter().cloned());
    crate::workspace::run_ssinfogan(binary, &report_args)?;
    if !failures.is_empty() {
        bail!(
            "{} of {} run(s) of array {} did not complete (see above; the report counts them). `{again}` submits the \
             interrupted ones again; a failed run is retried once its directory is deleted",
            failures.len(),
            array.tasks.len(),
            array.job_id
        );
    }
    eprintln!("  array {}: all {} run(s) completed", array.job_id, array.tasks.len());
    Ok(())
}

/// `experiments/<name>.toml` for a name, or the file itself for a path ending in `.toml` (made absolute: the binary
/// runs in the workspace root).
fn experiment_file(experiment: &str) -> anyhow::Result<PathBuf> {
    let root = crate::workspace::workspace_root();
    if experiment.ends_with(".toml") {
        let path = std::fs::canonicalize(experiment)
            .with_context(|| format!("cannot find the experiment file {experiment}"))?;
        return Ok(path);
    }
    let toml = root.join("experiments").join(format!("{experiment}.toml"));
    if !toml.is_file() {
        let known: Vec<String> = std::fs::read_dir(root.join("experiments"))
            .map(|entries| {
                entries
                    .filter_map(|e| {
                        let path = e.ok()?.path();
                        let stem = path.file_stem()?.to_string_lossy().into_owned();
                        (path.extension()? == "toml").then_some(stem)
                    })
                    .collect()
            })
            .unwrap_or_default();
        bail!(
            "no experiment `{experiment}` ({} does not exist); known: {}; or give the path of a .toml file",
            toml.display(),
            known.join(", ")
        );
    }
    Ok(PathBuf::from("experiments").join(format!("{experiment}.toml")))
}

/// `cargo xtask report <experiment>`: rebuilds the report from the runs on disk (e.g. after a cluster sweep).
#[derive(clap::Args)]
pub struct ReportArgs {
    /// The experiment: experiments/<experiment>.toml, or the path of an experiment file (`….toml`).
    experiment: String,
    #[command(flatten)]
    overlays: OverlayFlags,
    /// Draw the runs still training too (dashed in the figures, in no table): to watch a sweep as it goes.
    #[arg(long)]
    include_running: bool,
    /// Where the runs are: <results>/<experiment>/, relative to the workspace root.
    #[arg(long, default_value = "results")]
    results: PathBuf,
    /// Where datasets are found, relative to the workspace root.
    #[arg(long, default_value = "data")]
    data_root: PathBuf,
}

pub fn report(args: &ReportArgs) -> anyhow::Result<()> {
    let binary = crate::workspace::build_ssinfogan(false)?;
    let mut report_args = vec![
        "report".to_string(),
        "--experiment".into(),
        experiment_file(&args.experiment)?.display().to_string(),
        "--results".into(),
        args.results.display().to_string(),
        "--data-root".into(),
        args.data_root.display().to_string(),
    ];
    report_args.extend(args.overlays.args());
    if args.include_running {
        report_args.push("--include-running".into());
    }
    crate::workspace::run_ssinfogan(&binary, &report_args)
}

/// The dataset of an experiment (profiles and settings applied), as the binary resolves it: the first line of
/// `ssinfogan config --json`.
fn dataset_of(binary: &Path, experiment: &str, overlays: &[String]) -> anyhow::Result<String> {
    let mut args = vec!["config".to_string(), "--json".into(), "--experiment".into(), experiment.to_string()];
    args.extend(overlays.iter().cloned());
    let output = Command::new(binary)
        .current_dir(crate::workspace::workspace_root())
        .args(&args)
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot run {}", binary.display()))?;
    if !output.status.success() {
        bail!("`ssinfogan {}` failed ({})", args.join(" "), output.status);
    }
    let first = output.stdout.split(|&b| b == b'\n').next().unwrap_or_default();
    let variant: ssinfogan_plan::VariantConfig =
        serde_json::from_slice(first).context("`ssinfogan config --json` printed something that is not a config")?;
    Ok(variant.config.experiment.dataset)
}

fn read_plan(binary: &Path, args: &[String]) -> anyhow::Result<Plan> {
    let output = Command::new(binary)
        .current_dir(crate::workspace::workspace_root())
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot run {}", binary.display()))?;
    if !output.status.success() {
        bail!("`ssinfogan {}` failed ({})", args.join(" "), output.status);
    }
    serde_json::from_slice(&output.stdout).context("`ssinfogan plan --json` printed something that is not a plan")
}

/// The arguments of `ssinfogan train` for `run`: the sweep's (experiment, profiles, settings, results, data,
/// device; those the plan was made with) and the run's own variant, label count and seed.
fn train_args(sweep_args: &[String], run: &PlannedRun) -> Vec<String> {
    let mut args = sweep_args.to_vec();
    args.extend(["--variant".to_string(), run.variant.clone()]);
    args.extend(["--labels".to_string(), run.n_labelled.to_string()]);
    args.extend(["--seed".to_string(), run.seed.to_string()]);
    args
}

/// Trains every run of `todo` with `jobs` workers; returns the runs that failed, with why. A failure does not
/// stop the other runs: the sweep finishes and the report marks it.
fn train_all(
    binary: &Path,
    sweep_args: &[String],
    todo: VecDeque<&PlannedRun>,
    jobs: usize,
) -> anyhow::Result<Vec<String>> {
    let total = todo.len();
    if total == 0 {
        eprintln!("  nothing to train");
        return Ok(Vec::new());
    }
    let jobs = jobs.min(total);
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let threads = (cores / jobs).max(1);
    // Each run's directory and the iterations of its schedule.
    let dirs: Vec<(PathBuf, u64)> =
        todo.iter().map(|r| (crate::workspace::workspace_root().join(&r.dir), r.iterations)).collect();
    let queue = Mutex::new(todo.into_iter().enumerate().collect::<VecDeque<_>>());
    let failures = Mutex::new(Vec::new());
    let (done, running) = (Mutex::new(0usize), Mutex::new(0usize));
    let started = Instant::now();
    // Side by side, each run's own output goes to its train.log; the terminal shows one bar for the sweep:
    // iterations trained (from each run's timing.csv) against the schedule (from its config.toml).
    let bar = (jobs > 1).then(|| {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "  {elapsed_precise} [{bar:30}] {pos}/{len} iterations, ETA {eta}: {msg}",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        bar
    });
    let say = |line: String| match &bar {
        Some(bar) if !bar.is_hidden() => bar.println(line),
        _ => eprintln!("{line}"),
    };
    let finished = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        if let Some(bar) = &bar {
            let (dirs, done, running, failures, finished) = (&dirs, &done, &running, &failures, &finished);
            scope.spawn(move || {
                while !finished.load(std::sync::atomic::Ordering::Relaxed) {
                    let (trained, planned) =
                        dirs.iter().map(|(d, n)| (run_trained(d), *n)).fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
                    bar.set_length(planned.max(trained));
                    bar.set_position(trained);
                    let d = *done.lock().unwrap();
                    let f = failures.lock().unwrap().len();
                    let r = *running.lock().unwrap();
                    let waiting = total.saturating_sub(d + f + r);
                    bar.set_message(format!("runs {d} done, {f} failed, {r} running, {waiting} waiting"));
                    std::thread::sleep(std::time::Duration::from_millis(500));
                }
            });
        }
        let workers: Vec<_> = (0..jobs)
            .map(|_| {
                scope.spawn(|| loop {
                    let Some((index, run)) = queue.lock().unwrap().pop_front() else { break };
                    let begun = Instant::now();
                    let name = run.dir.display();
                    *running.lock().unwrap() += 1;
                    say(format!("  [{}/{total}] training {name}", index + 1));
                    let result = train_one(binary, sweep_args, run, jobs, threads);
                    *running.lock().unwrap() -= 1;
                    match result {
                        Ok(()) => {
                            *done.lock().unwrap() += 1;
                            say(format!("  [{}/{total}] done {name} in {}", index + 1, minutes(begun)));
                        }
                        Err(e) => {
                            say(format!("  [{}/{total}] FAILED {name}: {e:#}", index + 1));
                            failures.lock().unwrap().push(format!("{name}: {e:#}"));
                        }
                    }
                })
            })
            .collect();
        for worker in workers {
            let _ = worker.join();
        }
        finished.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    eprintln!("  {total} run(s) in {}", minutes(started));
    Ok(failures.into_inner().unwrap())
}

/// How many runs to train side by side when `--jobs` is not given. A training iteration does not use two
/// threads twice as well as one: measured with `ssinfogan bench` at batch 64 on two cores, one run on two threads
/// does 4.7 iterations/s, two runs side by side on one thread each 6.2 in all, three 6.2 (two runs on two
/// threads each 5.3). So a run per core on one thread each, and a sweep small enough for one round (at most
/// two runs per core) all at once, so that no run is left to finish alone on one thread; never more runs than
/// the memory holds (`[cluster] memory` per run, against the memory available now).
fn automatic_jobs(runs: usize, cores: usize, available_mb: Option<u64>, per_run_mb: Option<u64>) -> usize {
    let cores = cores.max(1);
    let jobs = if runs <= 2 * cores { runs } else { cores };
    let fit = match (available_mb, per_run_mb) {
        (Some(available), Some(per_run)) if per_run > 0 => (available / per_run) as usize,
        _ => usize::MAX,
    };
    jobs.min(fit).max(1)
}

/// `MemAvailable` of /proc/meminfo, in MB; none where there is no such file.
fn available_memory_mb() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024 / 1_000_000)
}

/// Iterations a run has trained (the last row of its timing.csv); zero for a run not begun or a file that cannot
/// be read (the run's own process reports that).
fn run_trained(dir: &Path) -> u64 {
    let timing = ssinfogan_plan::run_dir::RunDir::at(dir).timing();
    match ssinfogan_plan::long_csv::read(&timing) {
        Ok(Some(rows)) => rows.last().map_or(0, |r| r.iteration),
        _ => 0,
    }
}

/// One `ssinfogan train`; side by side, its output goes to `<run>/train.log` so that progress bars do not mix.
fn train_one(
    binary: &Path,
    sweep_args: &[String],
    run: &PlannedRun,
    jobs: usize,
    threads: usize,
) -> anyhow::Result<()> {
    let root = crate::workspace::workspace_root();
    let mut command = Command::new(binary);
    command.current_dir(&root).arg("train").args(train_args(sweep_args, run));
    if jobs > 1 {
        command.env("RAYON_NUM_THREADS", threads.to_string());
        let dir = root.join(&run.dir);
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let log_path = ssinfogan_plan::run_dir::RunDir::at(&dir).train_log();
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
    clock(since.elapsed())
}

fn clock(elapsed: Duration) -> String {
    let s = elapsed.as_secs();
    format!("{}m{:02}s", s / 60, s % 60)
}

/// Wall time of each stage of a reproduction, printed at its end (the build before it is cargo's to time).
struct Stages {
    last: Instant,
    started: Instant,
    laps: Vec<(&'static str, Duration)>,
}

impl Default for Stages {
    fn default() -> Self {
        let now = Instant::now();
        Self { last: now, started: now, laps: Vec::new() }
    }
}

impl Stages {
    fn lap(&mut self, stage: &'static str) {
        let now = Instant::now();
        self.laps.push((stage, now - self.last));
        self.last = now;
    }
}

impl std::fmt::Display for Stages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let laps: Vec<String> = self.laps.iter().map(|(stage, d)| format!("{stage} {}", clock(*d))).collect();
        write!(f, "stages: {}; {} in all", laps.join(", "), clock(self.last - self.started))
    }
}

#[cfg(test)]
mod tests {
    use super::{automatic_jobs, selected, OverlayFlags};
    use ssinfogan_plan::{Cluster, Plan, PlannedRun, RunStatus};

    #[test]
    fn profiles_and_settings_reach_ssinfogan_and_the_printed_commands_as_given() {
        let flags = OverlayFlags {
            quick: false,
            profiles: vec!["quick".into(), "cpu4".into()],
            overrides: vec!["loss.lambda_ss=1".into(), "sweep.seeds=[1, 2]".into(), "data.source=it's".into()],
        };
        assert_eq!(
            flags.args(),
            [
                "--profile",
                "quick,cpu4",
                "--set",
                "loss.lambda_ss=1",
                "--set",
                "sweep.seeds=[1, 2]",
                "--set",
                "data.source=it's"
            ]
        );
        // What a shell reads back as the same words.
        assert_eq!(
            flags.shell(),
            " --profile quick,cpu4 --set loss.lambda_ss=1 --set 'sweep.seeds=[1, 2]' --set 'data.source=it'\\''s'"
        );
        assert_eq!(
            flags.describe(),
            " (profile quick,cpu4, set loss.lambda_ss=1, set sweep.seeds=[1, 2], set data.source=it's)"
        );
        let quick = OverlayFlags { quick: true, ..OverlayFlags::default() };
        assert_eq!(
            (quick.args(), quick.describe()),
            (vec!["--profile".to_string(), "quick".into()], " (profile quick)".into())
        );
        assert_eq!(OverlayFlags::default().shell(), "");
    }

    fn plan() -> Plan {
        let run = |variant: &str, n_labelled: usize, seed: u64, status| PlannedRun {
            variant: variant.into(),
            n_labelled,
            seed,
            dir: format!("results/mnist/runs/{variant}-n{n_labelled}-s{seed}").into(),
            status,
            stale_keys: Vec::new(),
            iterations: 5000,
        };
        Plan {
            experiment: "mnist".into(),
            results_dir: "results/mnist".into(),
            train_size: 8000,
            full_dataset: false,
            data_origin: "test".into(),
            runs: vec![
                run("infogan", 0, 1, RunStatus::Completed),
                run("infogan", 0, 2, RunStatus::Interrupted),
                run("ss-infogan", 132, 1, RunStatus::Pending),
                run("ss-infogan", 132, 2, RunStatus::Running),
                run("ss-infogan", 600, 1, RunStatus::Pending),
                run("ss-infogan", 600, 2, RunStatus::Failed),
            ],
            skipped: Vec::new(),
            cluster: Cluster::default(),
        }
    }

    fn names(plan: &Plan, patterns: &[&str]) -> Vec<String> {
        let patterns: Vec<String> = patterns.iter().map(|p| p.to_string()).collect();
        selected(plan, &patterns).unwrap().iter().map(|r| r.dir.file_name().unwrap().to_string_lossy().into()).collect()
    }

    #[test]
    fn runs_are_taken_in_the_order_of_the_patterns_and_only_those_to_train() {
        let plan = plan();
        assert_eq!(names(&plan, &[]), ["infogan-n0-s2", "ss-infogan-n132-s1", "ss-infogan-n600-s1"]);
        assert_eq!(
            names(&plan, &["ss-infogan-n600-*", "infogan-*", "*-s1"]),
            ["ss-infogan-n600-s1", "infogan-n0-s2", "ss-infogan-n132-s1"]
        );
        assert_eq!(names(&plan, &["*-n132-s?"]), ["ss-infogan-n132-s1"]);
        let error = selected(&plan, &["ss-infogan-n300-*".to_string()]).unwrap_err().to_string();
        assert!(error.contains("matches no run") && error.contains("ss-infogan-n600-s2"), "{error}");
    }

    #[test]
    fn a_small_sweep_runs_at_once_a_large_one_a_run_per_core_within_memory() {
        assert_eq!(automatic_jobs(1, 2, None, None), 1);
        assert_eq!(automatic_jobs(3, 2, Some(20_000), Some(1_000)), 3, "the quick sweep on two cores");
        assert_eq!(automatic_jobs(4, 2, None, None), 4);
        assert_eq!(automatic_jobs(18, 2, None, None), 2, "the full sweep: a run per core");
        assert_eq!(automatic_jobs(18, 16, None, None), 18);
        assert_eq!(automatic_jobs(3, 2, Some(2_500), Some(1_000)), 2, "memory for two");
        assert_eq!(automatic_jobs(3, 2, Some(500), Some(1_000)), 1, "never none");
        assert_eq!(automatic_jobs(0, 2, None, None), 1);
    }
}
