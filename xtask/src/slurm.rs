//! The Slurm path of `cargo xtask reproduce`: the runs a sweep still needs as one job array (one task per run),
//! the resources each task asks for checked against what `sinfo` reports before anything is submitted, the array
//! followed to its end (`squeue`, then `scontrol`/`sacct` for how a task ended), and what a later invocation needs
//! to attach to an array in flight instead of submitting a second one (`<results>/<experiment>/slurm/array.json`).
//!
//! Every number is still computed by `ssinfogan train` inside the tasks; a requeued task resumes its run from the
//! latest checkpoint, as a local run does.

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use ssinfogan_plan::{Cluster, RunSummary};

/// The scheduler flags of `reproduce --slurm` and `--emit slurm`; each overrides the file's `[cluster]` key.
#[derive(clap::Args, Debug, Default, Clone)]
pub struct Flags {
    /// Slurm partition (default: the cluster's default partition).
    #[arg(long)]
    pub partition: Option<String>,
    /// Slurm account to charge.
    #[arg(long)]
    pub account: Option<String>,
    /// Wall-clock limit per run, e.g. 90 (minutes), 2:00:00, 1-12:00:00 (default: `cluster.time` of the
    /// experiment file or its profile).
    #[arg(long)]
    pub time: Option<String>,
    /// CPU cores per run (default: `cluster.cpus_per_task`, else 1); the run's threads follow it.
    #[arg(long)]
    pub cpus_per_task: Option<u32>,
    /// Memory per run, e.g. 4G or 3500M (default: `cluster.memory`).
    #[arg(long)]
    pub mem: Option<String>,
    /// Seconds between two looks at the array while following it.
    #[arg(long, default_value_t = 5.0)]
    pub poll_seconds: f64,
}

/// What each array task asks the scheduler for.
#[derive(Debug, Clone, PartialEq)]
pub struct Resources {
    pub partition: Option<String>,
    pub account: Option<String>,
    pub cpus_per_task: u32,
    /// As written (`4G`), and in megabytes for the check against the nodes.
    pub memory: Option<(String, u64)>,
    /// As written (`2:00:00`), and in seconds for the check against the partition's limit.
    pub time: Option<(String, u64)>,
    pub gpu: bool,
}

impl Resources {
    /// Flags over the file's `[cluster]`; `origin` names the file (and profile) in errors.
    pub fn resolve(file: &Cluster, flags: &Flags, gpu: bool, origin: &str) -> anyhow::Result<Resources> {
        let cpus_per_task = flags.cpus_per_task.or(file.cpus_per_task).unwrap_or(1);
        if cpus_per_task == 0 {
            bail!("--cpus-per-task must be at least 1");
        }
        let memory = match (&flags.mem, &file.memory) {
            (Some(m), _) => Some((m.clone(), memory_mb(m).context("--mem")?)),
            (None, Some(m)) => Some((m.clone(), memory_mb(m).with_context(|| format!("cluster.memory of {origin}"))?)),
            (None, None) => None,
        };
        let time = match (&flags.time, &file.time) {
            (Some(t), _) => Some((t.clone(), time_seconds(t).context("--time")?)),
            (None, Some(t)) => Some((t.clone(), time_seconds(t).with_context(|| format!("cluster.time of {origin}"))?)),
            (None, None) => None,
        };
        Ok(Resources {
            partition: flags.partition.clone(),
            account: flags.account.clone(),
            cpus_per_task,
            memory,
            time,
            gpu,
        })
    }
}

/// A Slurm memory size (`4G`, `3500M`, `1T`, or a bare number of megabytes) in megabytes.
pub fn memory_mb(text: &str) -> anyhow::Result<u64> {
    let t = text.trim();
    let (number, factor) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let factor = match c.to_ascii_uppercase() {
                'K' => return parse_count(&t[..i], text).map(|kb| kb.div_ceil(1024)),
                'M' => 1,
                'G' => 1024,
                'T' => 1024 * 1024,
                _ => bail!("`{text}` is not a memory size: use K, M, G or T, e.g. 4G or 3500M"),
            };
            (&t[..i], factor)
        }
        _ => (t, 1),
    };
    Ok(parse_count(number, text)? * factor)
}

fn parse_count(number: &str, text: &str) -> anyhow::Result<u64> {
    number
        .parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .with_context(|| format!("`{text}` is not a memory size: a whole number with K, M, G or T, e.g. 4G or 3500M"))
}

/// A Slurm time (`minutes`, `minutes:seconds`, `hours:minutes:seconds`, `days-hours`, `days-hours:minutes`,
/// `days-hours:minutes:seconds`) in seconds; `infinite`/`UNLIMITED` is `u64::MAX`.
pub fn time_seconds(text: &str) -> anyhow::Result<u64> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("infinite") || t.eq_ignore_ascii_case("unlimited") {
        return Ok(u64::MAX);
    }
    let bad = || anyhow::anyhow!("`{text}` is not a Slurm time: e.g. 90 (minutes), 2:30:00 or 1-12:00:00");
    let number = |s: &str| s.parse::<u64>().map_err(|_| bad());
    let (days, rest) = match t.split_once('-') {
        Some((d, rest)) => (Some(number(d)?), rest),
        None => (None, t),
    };
    let parts: Vec<u64> = rest.split(':').map(number).collect::<Result<_, _>>()?;
    let seconds = match (days, parts.as_slice()) {
        (None, [m]) => m * 60,
        (None, [m, s]) => m * 60 + s,
        (None, [h, m, s]) => h * 3600 + m * 60 + s,
        (Some(d), [h]) => d * 86400 + h * 3600,
        (Some(d), [h, m]) => d * 86400 + h * 3600 + m * 60,
        (Some(d), [h, m, s]) => d * 86400 + h * 3600 + m * 60 + s,
        _ => return Err(bad()),
    };
    if seconds == 0 {
        bail!("`{text}` is no time at all: give each run at least a minute");
    }
    Ok(seconds)
}

/// One run of the array: task i trains `tasks[i]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// `variant-n<labels>-s<seed>`.
    pub name: String,
    /// The run directory (relative to the workspace root unless absolute).
    pub dir: PathBuf,
    pub train_args: Vec<String>,
}

/// A job array as submitted: what a later `reproduce --slurm` reads to attach to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Array {
    pub job_id: String,
    pub job_name: String,
    pub script: PathBuf,
    pub submitted_unix: u64,
    pub tasks: Vec<Task>,
}

/// The job script: array task i runs `ssinfogan train` for `tasks[i]` in `workdir`, with the resources asked,
/// requeueable, logging to `<logs>/<array id>_<task>.log` (appended across restarts).
pub fn script(
    job_name: &str,
    tasks: &[Task],
    resources: &Resources,
    binary: &Path,
    workdir: &Path,
    logs: &Path,
) -> anyhow::Result<String> {
    let quote = |s: &str| format!("'{}'", s.replace('\'', "'\\''"));
    // sbatch reads a directive's value up to the first blank unless it is double-quoted, and expands `%` patterns
    // in file names: a space or a `%` in the results path must not cut the log path short or rename it.
    let directive = |value: &str| -> anyhow::Result<String> {
        // An older sbatch ends a directive at `#` even inside quotes.
        if value.contains(['"', '\\', '\n', '\r', '#']) {
            anyhow::bail!(
                "{value:?} cannot be written into a Slurm job script (a double quote, backslash, `#` or line break); \
                 choose a results directory without one"
            );
        }
        Ok(format!("\"{value}\""))
    };
    let mut s = String::from("#!/bin/bash\n");
    s.push_str(&format!("#SBATCH --job-name={}\n", directive(job_name)?));
    s.push_str(&format!("#SBATCH --array=0-{}\n", tasks.len().saturating_sub(1)));
    s.push_str(&format!("#SBATCH --cpus-per-task={}\n", resources.cpus_per_task));
    if let Some((memory, _)) = &resources.memory {
        s.push_str(&format!("#SBATCH --mem={memory}\n"));
    }
    if let Some((time, _)) = &resources.time {
        s.push_str(&format!("#SBATCH --time={time}\n"));
    }
    if let Some(partition) = &resources.partition {
        s.push_str(&format!("#SBATCH --partition={partition}\n"));
    }
    if let Some(account) = &resources.account {
        s.push_str(&format!("#SBATCH --account={account}\n"));
    }
    if resources.gpu {
        s.push_str("#SBATCH --gres=gpu:1\n");
    }
    s.push_str("#SBATCH --requeue\n#SBATCH --open-mode=append\n");
    let log = format!("{}/%A_%a.log", logs.display().to_string().replace('%', "%%"));
    s.push_str(&format!("#SBATCH --output={}\n", directive(&log)?));
    s.push_str(&format!(
        "# {count} run(s), one array task each, written by `cargo xtask reproduce` (--slurm submits and follows it;\n\
         # --emit slurm only writes it). A requeued or resubmitted task resumes its run from the latest checkpoint;\n\
         # a completed run exits at once; run.lock keeps two tasks from training one run.\n\
         set -euo pipefail\n\
         SSINFOGAN=${{SSINFOGAN:-{binary}}}\n\
         cd {workdir}\n\
         # The run's threads: the cores Slurm gave the task.\n\
         export RAYON_NUM_THREADS=\"${{SLURM_CPUS_PER_TASK:-1}}\"\n\
         case \"${{SLURM_ARRAY_TASK_ID:?set by sbatch --array}}\" in\n",
        count = tasks.len(),
        binary = quote(&binary.display().to_string()),
        workdir = quote(&workdir.display().to_string()),
    ));
    for (i, task) in tasks.iter().enumerate() {
        let args: Vec<String> = task.train_args.iter().map(|a| quote(a)).collect();
        s.push_str(&format!("  {i}) run={} args=({}) ;;\n", quote(&task.name), args.join(" ")));
    }
    s.push_str(
        "  *) echo \"no run for array task $SLURM_ARRAY_TASK_ID\" >&2; exit 2 ;;\nesac\n\
         echo \"array task $SLURM_ARRAY_TASK_ID (job ${SLURM_JOB_ID:-?}, start $((${SLURM_RESTART_COUNT:-0} + 1))) \
         on $(hostname): $run\" >&2\n\
         exec \"$SSINFOGAN\" train \"${args[@]}\"\n",
    );
    Ok(s)
}

/// What `sinfo` says of a partition: its name, whether it is up, its time limit, and per node the CPUs, memory (MB)
/// and generic resources.
#[derive(Debug, Clone, PartialEq)]
pub struct Partition {
    pub name: String,
    pub up: bool,
    pub time_limit: String,
    pub nodes: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub name: String,
    pub cpus: u32,
    pub memory_mb: u64,
    pub gres: String,
}

/// The partitions `sinfo` reports (one line per node and partition), the default one first.
pub fn partitions() -> anyhow::Result<Vec<Partition>> {
    let out = slurm_command("sinfo", &["-h", "-N", "-o", "%P|%a|%l|%N|%c|%m|%G"])?;
    Ok(parse_sinfo(&out))
}

pub fn parse_sinfo(text: &str) -> Vec<Partition> {
    let mut partitions: Vec<(bool, Partition)> = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split('|').map(str::trim).collect();
        let [name, avail, limit, node, cpus, memory, gres] = f.as_slice() else { continue };
        let default = name.ends_with('*');
        let name = name.trim_end_matches('*').to_string();
        let node = Node {
            name: node.to_string(),
            cpus: cpus.trim_end_matches('+').parse().unwrap_or(0),
            memory_mb: memory.trim_end_matches('+').parse().unwrap_or(0),
            gres: gres.to_string(),
        };
        match partitions.iter_mut().find(|(_, p)| p.name == name) {
            Some((_, p)) => p.nodes.push(node),
            None => partitions.push((
                default,
                Partition { name, up: *avail == "up", time_limit: limit.to_string(), nodes: vec![node] },
            )),
        }
    }
    partitions.sort_by_key(|(default, _)| !default);
    partitions.into_iter().map(|(_, p)| p).collect()
}

/// Refuses resources no node of the partition can give (a task that asks for them would pend forever, reason
/// `PartitionConfig` or `Resources`), naming the key and what the partition has.
pub fn check(resources: &Resources, partitions: &[Partition], origin: &str) -> anyhow::Result<String> {
    let names = || partitions.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", ");
    let partition = match &resources.partition {
        Some(name) => partitions
            .iter()
            .find(|p| &p.name == name)
            .with_context(|| format!("Slurm has no partition `{name}` (--partition); it has: {}", names()))?,
        None => partitions.first().context("sinfo lists no partition: is this a Slurm cluster?")?,
    };
    if !partition.up {
        bail!("partition `{}` is not up (sinfo); choose another with --partition ({})", partition.name, names());
    }
    // One node must hold all of a task at once: CPUs, memory and a GPU on different nodes would pend forever too.
    let fits = |n: &Node| {
        n.cpus >= resources.cpus_per_task
            && resources.memory.as_ref().is_none_or(|(_, mb)| n.memory_mb >= *mb)
            && (!resources.gpu || n.gres.contains("gpu"))
    };
    if !partition.nodes.iter().any(fits) {
        let most_cpus = partition.nodes.iter().map(|n| n.cpus).max().unwrap_or(0);
        let most_memory = partition.nodes.iter().map(|n| n.memory_mb).max().unwrap_or(0);
        let nodes: Vec<String> =
            partition.nodes.iter().map(|n| format!("{} {} CPUs {}M {}", n.name, n.cpus, n.memory_mb, n.gres)).collect();
        if resources.cpus_per_task > most_cpus {
            bail!(
                "each run asks for {} CPUs (--cpus-per-task, or cluster.cpus_per_task of {origin}) but the largest \
                 node of partition `{}` has {most_cpus} (sinfo): the array would pend forever; ask for at most \
                 {most_cpus}",
                resources.cpus_per_task,
                partition.name
            );
        }
        if let Some((memory, mb)) = &resources.memory {
            if *mb > most_memory {
                bail!(
                    "each run asks for {memory} of memory (--mem, or cluster.memory of {origin}) but the largest node \
                     of partition `{}` has {most_memory}M (sinfo); ask for at most {most_memory}M",
                    partition.name
                );
            }
        }
        if resources.gpu && !partition.nodes.iter().any(|n| n.gres.contains("gpu")) {
            bail!(
                "--cuda asks each run for a GPU (--gres=gpu:1) but no node of partition `{}` has one (sinfo: {}); \
                 choose a GPU partition with --partition",
                partition.name,
                nodes.join(", ")
            );
        }
        bail!(
            "no single node of partition `{}` has {} CPUs{}{} for one run (sinfo: {}); ask for less or choose \
             another partition",
            partition.name,
            resources.cpus_per_task,
            resources.memory.as_ref().map(|(m, _)| format!(", {m}")).unwrap_or_default(),
            if resources.gpu { " and a GPU" } else { "" },
            nodes.join(", ")
        );
    }
    if let Some((time, seconds)) = &resources.time {
        if let Ok(limit) = time_seconds(&partition.time_limit) {
            if *seconds > limit {
                bail!(
                    "each run asks for {time} (--time, or cluster.time of {origin}) but partition `{}` allows {} \
                     (sinfo); ask for less or choose another partition",
                    partition.name,
                    partition.time_limit
                );
            }
        }
    }
    Ok(partition.name.clone())
}

/// A Slurm client command in a process group of its own: Ctrl-C at the terminal reaches the whole foreground
/// group, and must stop the following, not kill an `sbatch` whose job the controller has already taken.
fn slurm(program: &str) -> Command {
    let mut command = Command::new(program);
    command.process_group(0);
    command
}

/// `sbatch --parsable <script>`: the array's job id.
pub fn submit(script: &Path) -> anyhow::Result<String> {
    let out = slurm_command("sbatch", &["--parsable", &script.display().to_string()])?;
    // `--parsable` prints `<job id>[;<cluster>]`.
    let id = out.trim().split(';').next().unwrap_or_default().to_string();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        bail!("sbatch printed `{}`, not a job id", out.trim());
    }
    Ok(id)
}

/// The tasks of `array` Slurm still has queued or running, by task index (`PENDING (Resources)`, `RUNNING`, …);
/// empty once every task has ended (or Slurm has forgotten the job).
pub fn queued_tasks(array: &Array) -> anyhow::Result<BTreeMap<usize, String>> {
    let output = slurm("squeue")
        .args(["-h", "-r", "-j", &array.job_id, "-o", "%K|%T|%j|%r"])
        .output()
        .context("cannot run squeue: is this a Slurm login node (slurm-client installed, SLURM_CONF set)?")?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        // A job that ended more than MinJobAge ago is unknown to the controller: nothing of it is in flight.
        if stderr.contains("Invalid job id") {
            return Ok(BTreeMap::new());
        }
        bail!("squeue -j {} failed ({}): {}", array.job_id, output.status, stderr.trim());
    }
    let mut tasks = BTreeMap::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let mut f = line.trim().split('|');
        let (Some(task), Some(state), Some(name)) = (f.next(), f.next(), f.next()) else { continue };
        // The same id may name another job after the controller's state was reset.
        if name != array.job_name {
            continue;
        }
        let state = match f.next() {
            Some(reason) if state == "PENDING" && !matches!(reason, "" | "None") => format!("PENDING ({reason})"),
            _ => state.to_string(),
        };
        if let Ok(task) = task.parse() {
            tasks.insert(task, state);
        }
    }
    Ok(tasks)
}

/// How Slurm says each task of `array` ended (`COMPLETED 0:0`, `CANCELLED 0:15`, `FAILED 1:0`, …), from
/// `scontrol` while the controller still holds the job, else from `sacct` where accounting runs.
pub fn ended_states(array: &Array) -> BTreeMap<usize, String> {
    let mut states = BTreeMap::new();
    if let Ok(out) = slurm("scontrol").args(["-o", "show", "job", &array.job_id]).output() {
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let field = |key: &str| line.split_whitespace().find_map(|f| f.strip_prefix(key)).map(str::to_string);
            if field("JobName=").as_deref() != Some(array.job_name.as_str()) {
                continue;
            }
            if let (Some(task), Some(state)) = (field("ArrayTaskId="), field("JobState=")) {
                if let Ok(task) = task.parse() {
                    states.insert(task, format!("{state} {}", field("ExitCode=").unwrap_or_default()));
                }
            }
        }
    }
    if states.is_empty() {
        if let Ok(out) =
            slurm("sacct").args(["-n", "-P", "-X", "-j", &array.job_id, "-o", "JobID,State,ExitCode"]).output()
        {
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                let f: Vec<&str> = line.split('|').collect();
                if let [id, state, code] = f.as_slice() {
                    if let Some(Ok(task)) = id.split_once('_').map(|(_, t)| t.parse()) {
                        states.insert(task, format!("{state} {code}"));
                    }
                }
            }
        }
    }
    states
}

/// A run's state from its directory, as far as following the array needs it.
#[derive(Debug, Clone, PartialEq)]
pub enum RunEnd {
    Completed,
    /// `summary.json` says failed, with the error it records.
    Failed(String),
    /// No `summary.json`.
    Unfinished,
}

pub fn run_end(dir: &Path) -> RunEnd {
    // A summary being written is replaced whole (write and rename): one that cannot be read yet is unfinished.
    match RunSummary::read(dir).ok().flatten() {
        Some(s) if s.completed() => RunEnd::Completed,
        Some(s) => RunEnd::Failed(s.error.unwrap_or_else(|| s.status.to_string())),
        None => RunEnd::Unfinished,
    }
}

/// Ctrl-C caught rather than fatal, from just before an array is submitted: it then stops the following (the
/// array is on the cluster and its record on disk), never half of a submission.
pub struct CtrlC {
    pressed: Arc<AtomicBool>,
    handler: signal_hook::SigId,
}

impl CtrlC {
    pub fn catch() -> anyhow::Result<CtrlC> {
        let pressed = Arc::new(AtomicBool::new(false));
        let handler = signal_hook::flag::register(signal_hook::consts::SIGINT, Arc::clone(&pressed))
            .context("cannot install the Ctrl-C handler")?;
        Ok(CtrlC { pressed, handler })
    }

    fn pressed(&self) -> bool {
        self.pressed.load(Ordering::Relaxed)
    }
}

impl Drop for CtrlC {
    fn drop(&mut self) {
        signal_hook::low_level::unregister(self.handler);
    }
}

/// Follows `array` until Slurm holds none of its tasks, with a bar of runs done / failed / running / waiting (a
/// line per change where stderr is not a terminal). Returns `false` if Ctrl-C stopped the following (the tasks
/// go on).
pub fn follow(array: &Array, root: &Path, poll: Duration, ctrl_c: &CtrlC) -> anyhow::Result<bool> {
    let bar = indicatif::ProgressBar::new(array.tasks.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("  {elapsed_precise} [{bar:30}] {pos}/{len} runs ended: {msg}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    let started = Instant::now();
    let mut last = String::new();
    let result = loop {
        if ctrl_c.pressed() {
            break Ok(false);
        }
        // The controller may not answer for a moment (restarting, busy): a few tries before giving up.
        let mut tries = 0;
        let queued = loop {
            match queued_tasks(array) {
                Ok(q) => break Ok(q),
                Err(e) if tries >= 4 || ctrl_c.pressed() => break Err(e),
                Err(_) => {
                    tries += 1;
                    std::thread::sleep(Duration::from_secs(2));
                }
            }
        };
        let queued = match queued {
            Ok(q) => q,
            Err(_) if ctrl_c.pressed() => break Ok(false),
            Err(e) => break Err(e),
        };
        let (mut done, mut failed, mut running, mut waiting) = (0, 0, 0, 0);
        let mut reasons: Vec<&str> = Vec::new();
        for (i, task) in array.tasks.iter().enumerate() {
            match (queued.get(&i).map(String::as_str), run_end(&root.join(&task.dir))) {
                // A task that is still queued after its run ended (its process exiting) counts as ended.
                (_, RunEnd::Completed) => done += 1,
                (_, RunEnd::Failed(_)) => failed += 1,
                (Some("RUNNING" | "COMPLETING"), RunEnd::Unfinished) => running += 1,
                (Some(state), RunEnd::Unfinished) => {
                    waiting += 1;
                    // Why Slurm holds it back (Resources, Priority, BeginTime after a requeue, JobHeldAdmin, …).
                    if let Some(reason) = state.strip_prefix("PENDING (").and_then(|r| r.strip_suffix(')')) {
                        if !reasons.contains(&reason) {
                            reasons.push(reason);
                        }
                    }
                }
                // Ended without a summary: counted as failed; the end says how.
                (None, RunEnd::Unfinished) => failed += 1,
            }
        }
        let why = if reasons.is_empty() { String::new() } else { format!(" ({})", reasons.join(", ")) };
        let message = format!("{done} done, {failed} failed, {running} running, {waiting} waiting{why}");
        bar.set_position((done + failed) as u64);
        bar.set_message(message.clone());
        if bar.is_hidden() && message != last {
            eprintln!("  array {} after {}s: {message}", array.job_id, started.elapsed().as_secs());
        }
        last = message;
        if queued.is_empty() {
            break Ok(true);
        }
        let until = Instant::now() + poll;
        while Instant::now() < until && !ctrl_c.pressed() {
            std::thread::sleep(Duration::from_millis(100).min(poll));
        }
        if ctrl_c.pressed() {
            break Ok(false);
        }
    };
    bar.finish_and_clear();
    result
}

/// The runs of an ended array that did not complete, each with how it ended and the tail of its log.
pub fn failures(array: &Array, root: &Path, logs: &Path) -> Vec<String> {
    let states = ended_states(array);
    let mut failures = Vec::new();
    for (i, task) in array.tasks.iter().enumerate() {
        let why = match run_end(&root.join(&task.dir)) {
            RunEnd::Completed => continue,
            RunEnd::Failed(error) => format!("failed: {error}"),
            RunEnd::Unfinished => match states.get(&i) {
                Some(state) => format!("ended without finishing (Slurm: {state})"),
                None => "ended without finishing".to_string(),
            },
        };
        let log = logs.join(format!("{}_{i}.log", array.job_id));
        failures.push(format!("{} (array task {}_{i}): {why}\n{}", task.name, array.job_id, tail(&log, 15)));
    }
    failures
}

/// The last `n` lines of a log, indented, or why there are none.
pub fn tail(path: &Path, n: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<&str> = text.lines().collect();
            let from = lines.len().saturating_sub(n);
            let mut out = format!("    last lines of {}:", path.display());
            for line in &lines[from..] {
                // Progress bars redraw with carriage returns; the last state of the line is what was seen.
                out.push_str("\n    | ");
                out.push_str(line.rsplit('\r').next().unwrap_or(line));
            }
            out
        }
        Err(e) => format!("    (no log at {}: {e})", path.display()),
    }
}

/// `<results>/<experiment>/slurm/array.json`, if a submission left one.
pub fn read_array(path: &Path) -> anyhow::Result<Option<Array>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).with_context(|| {
            format!("{} is not a record of a job array; delete it if no array of this experiment runs", path.display())
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Writes through a temporary file and a rename, both flushed (`ssinfogan_plan::run_dir::write_atomically`), so
/// that a reader sees the old file or the new one; creates the directory first.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    ssinfogan_plan::run_dir::write_atomically(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

fn slurm_command(program: &str, args: &[&str]) -> anyhow::Result<String> {
    let output = slurm(program).args(args).output().with_context(|| {
        format!("cannot run {program}: the Slurm client commands must be on PATH (Debian: slurm-client; to try it on one machine: scripts/slurm-local.sh start)")
    })?;
    if !output.status.success() {
        bail!(
            "`{program} {}` failed ({}): {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes_read_as_slurm_writes_them() {
        assert_eq!(memory_mb("4G").unwrap(), 4096);
        assert_eq!(memory_mb("3500M").unwrap(), 3500);
        assert_eq!(memory_mb("3500").unwrap(), 3500);
        assert_eq!(memory_mb("2048K").unwrap(), 2);
        assert_eq!(memory_mb("1t").unwrap(), 1024 * 1024);
        for bad in ["", "4X", "G", "-1G", "0", "1.5G"] {
            assert!(memory_mb(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn times_read_in_every_slurm_form() {
        assert_eq!(time_seconds("90").unwrap(), 90 * 60);
        assert_eq!(time_seconds("10:30").unwrap(), 10 * 60 + 30);
        assert_eq!(time_seconds("2:00:00").unwrap(), 7200);
        assert_eq!(time_seconds("1-12").unwrap(), 86400 + 12 * 3600);
        assert_eq!(time_seconds("1-0:30").unwrap(), 86400 + 1800);
        assert_eq!(time_seconds("2-00:00:01").unwrap(), 2 * 86400 + 1);
        assert_eq!(time_seconds("infinite").unwrap(), u64::MAX);
        for bad in ["", "1:2:3:4", "a", "1-", "0", "1-2:3:4:5"] {
            assert!(time_seconds(bad).is_err(), "{bad}");
        }
    }

    const SINFO: &str = "gpu|up|1-00:00:00|g1|64|512000|gpu:h100:4\n\
                         cpu*|up|2:00:00|c1|2|24105|(null)\n\
                         cpu*|up|2:00:00|c2|4+|8000|(null)\n\
                         down|down|infinite|d1|128|1000000|(null)\n";

    fn resources(cpus: u32, memory: Option<&str>, time: Option<&str>, gpu: bool) -> Resources {
        let flags = Flags {
            cpus_per_task: Some(cpus),
            mem: memory.map(Into::into),
            time: time.map(Into::into),
            ..Flags::default()
        };
        Resources::resolve(&Cluster::default(), &flags, gpu, "test.toml").unwrap()
    }

    #[test]
    fn sinfo_lines_become_partitions_with_the_default_first() {
        let partitions = parse_sinfo(SINFO);
        let names: Vec<&str> = partitions.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["cpu", "gpu", "down"]);
        assert_eq!(partitions[0].nodes.iter().map(|n| n.cpus).collect::<Vec<_>>(), [2, 4]);
        assert!(!partitions[2].up);
    }

    #[test]
    fn resources_no_node_can_give_are_refused_before_submitting() {
        let p = parse_sinfo(SINFO);
        assert_eq!(check(&resources(4, Some("8000M"), Some("1:00:00"), false), &p, "x").unwrap(), "cpu");
        // The report that started this: 4 CPUs per task on a partition of 2-CPU nodes pends forever.
        let only_small = parse_sinfo("local*|up|infinite|vm|2|24105|(null)\n");
        let error = check(&resources(4, None, None, false), &only_small, "experiments/mnist.toml").unwrap_err();
        assert!(error.to_string().contains("asks for 4 CPUs") && error.to_string().contains("has 2"), "{error}");
        assert!(check(&resources(1, Some("30G"), None, false), &p, "x").unwrap_err().to_string().contains("24105M"));
        assert!(check(&resources(1, None, Some("3:00:00"), false), &p, "x")
            .unwrap_err()
            .to_string()
            .contains("2:00:00"));
        assert!(check(&resources(1, None, None, true), &p, "x").unwrap_err().to_string().contains("--gres=gpu:1"));
        let mut on_gpu = resources(8, Some("100G"), Some("12:00:00"), true);
        on_gpu.partition = Some("gpu".into());
        assert_eq!(check(&on_gpu, &p, "x").unwrap(), "gpu");
        on_gpu.partition = Some("down".into());
        assert!(check(&on_gpu, &p, "x").unwrap_err().to_string().contains("not up"));
        on_gpu.partition = Some("nope".into());
        assert!(check(&on_gpu, &p, "x").unwrap_err().to_string().contains("cpu, gpu, down"));
    }

    #[test]
    fn flags_override_the_file_and_bad_values_name_their_source() {
        let file = Cluster { cpus_per_task: Some(2), memory: Some("2G".into()), time: Some("30".into()) };
        let r = Resources::resolve(&file, &Flags::default(), false, "f.toml").unwrap();
        assert_eq!((r.cpus_per_task, r.memory.unwrap().1, r.time.unwrap().1), (2, 2048, 1800));
        let flags = Flags { cpus_per_task: Some(1), mem: Some("500M".into()), ..Flags::default() };
        let r = Resources::resolve(&file, &flags, false, "f.toml").unwrap();
        assert_eq!((r.cpus_per_task, r.memory.unwrap().1), (1, 500));
        let bad = Cluster { memory: Some("2 gigs".into()), ..Cluster::default() };
        let error = Resources::resolve(&bad, &Flags::default(), false, "f.toml").unwrap_err();
        assert!(format!("{error:#}").contains("cluster.memory of f.toml"), "{error:#}");
    }

    #[test]
    fn the_script_maps_each_task_to_one_run_and_asks_for_the_resources() {
        let tasks: Vec<Task> = ["infogan-n0-s1", "ss-infogan-n20-s1"]
            .iter()
            .map(|name| Task {
                name: name.to_string(),
                dir: PathBuf::from("results/x/runs").join(name),
                train_args: vec![
                    "--variant".into(),
                    name.split("-n").next().unwrap().into(),
                    "--note".into(),
                    "it's".into(),
                ],
            })
            .collect();
        let mut r = resources(2, Some("2G"), Some("1:00:00"), true);
        r.partition = Some("gpu".into());
        r.account = Some("lab".into());
        let s =
            script("ssinfogan-x", &tasks, &r, Path::new("/opt/ssinfogan"), Path::new("/w d"), Path::new("/r 5%/slurm"))
                .unwrap();
        for line in [
            "#SBATCH --array=0-1\n",
            "#SBATCH --cpus-per-task=2\n",
            "#SBATCH --mem=2G\n",
            "#SBATCH --time=1:00:00\n",
            "#SBATCH --partition=gpu\n",
            "#SBATCH --account=lab\n",
            "#SBATCH --gres=gpu:1\n",
            "#SBATCH --requeue\n",
            "#SBATCH --job-name=\"ssinfogan-x\"\n",
            "#SBATCH --output=\"/r 5%%/slurm/%A_%a.log\"\n",
            "cd '/w d'\n",
            "  1) run='ss-infogan-n20-s1' args=('--variant' 'ss-infogan' '--note' 'it'\\''s') ;;\n",
        ] {
            assert!(s.contains(line), "{line:?} missing from\n{s}");
        }
        assert!(!resources(1, None, None, false).gpu);
        let plain = script(
            "j",
            &tasks[..1],
            &resources(1, None, None, false),
            Path::new("b"),
            Path::new("/w"),
            Path::new("/l"),
        )
        .unwrap();
        assert!(
            plain.contains("#SBATCH --array=0-0\n") && !plain.contains("--mem") && !plain.contains("--gres"),
            "{plain}"
        );
        let bad =
            script("j", &tasks, &resources(1, None, None, false), Path::new("b"), Path::new("/w"), Path::new("/l\"x"));
        assert!(bad.unwrap_err().to_string().contains("cannot be written into a Slurm job script"));
    }
}
