//! Where a run keeps its files, with stable names so that `reproduce` can skip finished runs and resume
//! interrupted ones. Every file name is spelled here once; the crates that write and read the files ask
//! [`RunDir`] for their paths:
//!
//! ```text
//! results/<experiment>/runs/<variant>-n<labels>-s<seed>/
//!   config.toml        fully resolved config + git revision, candle version, device, data source
//!   metrics.csv        long format (`long_csv`): iteration,epoch,metric,value, a block per epoch
//!   losses.csv         the same, every `[training] losses_every` iterations
//!   timing.csv         the same, the seconds of each epoch's parts
//!   checkpoint/        networks, optimiser moments, random-stream states (safetensors + JSON)
//!   sweeps.safetensors, explorer.safetensors, final-samples.safetensors, morphometry.json
//!                      the run's share of the report, written when it completes
//!   samples.safetensors, evaluation.csv
//!                      the final evaluation's images; `ssinfogan eval`'s metrics
//!   summary.json       written last, atomically: its presence means the run ended (`summary`)
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The identity of one run within an experiment.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RunId {
    pub variant: String,
    pub n_labelled: usize,
    pub seed: u64,
}

impl RunId {
    /// `ss-infogan-n132-s1`.
    pub fn name(&self) -> String {
        format!("{}-n{}-s{}", self.variant, self.n_labelled, self.seed)
    }
}

/// The paths of one run's directory.
///
/// ```
/// use ssinfogan_plan::run_dir::{RunDir, RunId};
/// let id = RunId { variant: "ss-infogan".into(), n_labelled: 132, seed: 1 };
/// let run = RunDir::new("results", "mnist", &id);
/// assert!(run.summary().ends_with("results/mnist/runs/ss-infogan-n132-s1/summary.json"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    root: PathBuf,
}

impl RunDir {
    pub fn new(results: impl AsRef<Path>, experiment: &str, id: &RunId) -> Self {
        Self { root: results.as_ref().join(experiment).join("runs").join(id.name()) }
    }

    /// The run directory at `root` (e.g. one a plan lists, or one given on the command line).
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn config(&self) -> PathBuf {
        self.root.join(CONFIG)
    }
    pub fn metrics(&self) -> PathBuf {
        self.root.join(METRICS)
    }
    /// The losses every `[training] losses_every` iterations, for watching a run as it trains.
    pub fn losses(&self) -> PathBuf {
        self.root.join(LOSSES)
    }
    /// The wall seconds of each epoch's parts, kept apart so that `metrics.csv` is the same for a seed.
    pub fn timing(&self) -> PathBuf {
        self.root.join(TIMING)
    }
    pub fn checkpoint(&self) -> PathBuf {
        self.root.join(CHECKPOINT)
    }
    pub fn summary(&self) -> PathBuf {
        self.root.join(SUMMARY)
    }
    /// Held while a process trains the run: `pid host`, removed when it ends.
    pub fn lock(&self) -> PathBuf {
        self.root.join(LOCK)
    }
    /// The generated images of an evaluation: the final one's, or with a `suffix` (`-epoch-0031`) those of
    /// `ssinfogan eval --checkpoint` another checkpoint.
    pub fn samples(&self, suffix: &str) -> PathBuf {
        self.root.join(format!("samples{suffix}.safetensors"))
    }
    /// `ssinfogan eval`'s metrics, with the same suffix as [`RunDir::samples`].
    pub fn evaluation(&self, suffix: &str) -> PathBuf {
        self.root.join(format!("evaluation{suffix}.csv"))
    }
    /// The continuous-code sweep grids of the run's share of the report.
    pub fn sweeps(&self) -> PathBuf {
        self.root.join(SWEEPS)
    }
    /// The latent explorer's sheet of the run's share of the report.
    pub fn explorer(&self) -> PathBuf {
        self.root.join(EXPLORER)
    }
    /// The final evaluation's first images per code value as 8-bit values.
    pub fn final_samples(&self) -> PathBuf {
        self.root.join(FINAL_SAMPLES)
    }
    /// The morphometry of the continuous codes' sweeps.
    pub fn morphometry(&self) -> PathBuf {
        self.root.join(MORPHOMETRY)
    }
    /// The run's output when `cargo xtask reproduce` trains it beside others.
    pub fn train_log(&self) -> PathBuf {
        self.root.join(TRAIN_LOG)
    }
}

/// The file names of a run directory.
pub const CONFIG: &str = "config.toml";
pub const METRICS: &str = "metrics.csv";
pub const LOSSES: &str = "losses.csv";
pub const TIMING: &str = "timing.csv";
pub const CHECKPOINT: &str = "checkpoint";
pub const SUMMARY: &str = "summary.json";
pub const LOCK: &str = "run.lock";
pub const SWEEPS: &str = "sweeps.safetensors";
pub const EXPLORER: &str = "explorer.safetensors";
pub const FINAL_SAMPLES: &str = "final-samples.safetensors";
pub const MORPHOMETRY: &str = "morphometry.json";
/// The real test digits' morphometry, beside an experiment's runs (`<results>/<experiment>/`), not in a run.
pub const REAL_MORPHOMETRY: &str = "real-morphometry.json";
pub const TRAIN_LOG: &str = "train.log";

/// Removes the temporary files `write_atomically` leaves when a process dies between writing and renaming
/// (`.<name>.tmp`, in `dir` and below). Only call it while holding the run's lock.
pub fn remove_temporaries(dir: &Path) -> std::io::Result<usize> {
    let mut removed = 0;
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type()?.is_dir() {
            removed += remove_temporaries(&entry.path())?;
        } else if name.starts_with('.') && name.ends_with(".tmp") {
            std::fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Why a run's lock could not be taken.
#[derive(Debug)]
pub enum LockError {
    /// Another live process trains this run.
    Held {
        path: PathBuf,
        owner: String,
    },
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
}

impl std::fmt::Display for LockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LockError::Held { path, owner } => write!(
                f,
                "{} is held by process {owner}, which is training this run; if no such process exists any more \
                 (e.g. it ran on another machine that went down), delete that file",
                path.display()
            ),
            LockError::Io { path, error } => write!(f, "cannot create the run lock {}: {error}", path.display()),
        }
    }
}

impl std::error::Error for LockError {}

/// An exclusive claim on a run directory, so that two sweeps sharing a results directory never train the same
/// run at once. Created with `create_new` (atomic on local and NFSv3+ file systems), released on drop. A lock
/// left by a process of this host that no longer exists (killed with SIGKILL, machine rebooted) is stale and
/// taken over; one from another host is respected, since its process cannot be checked from here.
#[derive(Debug)]
pub struct RunLock {
    path: PathBuf,
    /// The line this process wrote: the lock is still ours while the file holds it.
    owner: String,
}

/// Locks are written under a name of their own first; a counter keeps two threads of one process apart (and
/// `remove_temporaries` removes what a killed process left of one).
static LOCK_ATTEMPTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How long a lock that names no owner (empty or cut short) may be a writer's, still writing, before it counts as
/// left by a crash. This version never leaves one (a lock appears whole or not at all); older ones could.
const UNNAMED_LOCK_GRACE: Duration = Duration::from_secs(30);

impl RunLock {
    /// Takes `run`'s lock, or says who holds it. The lock appears whole or not at all: its line is written to a file
    /// of this process's own and hard-linked to `run.lock`, which fails when `run.lock` exists (as `create_new`
    /// does). A stale lock is taken over under an exclusive lock on `.run.lock.takeover` (flock): the taker reads
    /// the lock again there, removes it only if it is still the one judged stale, and links its own; of processes
    /// that found one stale lock at once, exactly one gets it.
    pub fn acquire(run: &RunDir) -> Result<RunLock, LockError> {
        let path = run.lock();
        let io = |error| LockError::Io { path: path.clone(), error };
        std::fs::create_dir_all(run.root()).map_err(io)?;
        let attempt = LOCK_ATTEMPTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mine = run.root().join(format!(".run.lock.{}-{attempt}.tmp", std::process::id()));
        let result = Self::take(&path, &mine, &run.root().join(".run.lock.takeover"));
        let _ = std::fs::remove_file(&mine);
        result
    }

    fn take(path: &Path, mine: &Path, guard: &Path) -> Result<RunLock, LockError> {
        let io = |error| LockError::Io { path: path.to_path_buf(), error };
        let mut file = std::fs::File::create(mine).map_err(io)?;
        let line = owner_line();
        file.write_all(line.as_bytes()).and_then(|_| file.sync_all()).map_err(io)?;
        drop(file);
        let link = || match std::fs::hard_link(mine, path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(io(e)),
        };
        let held = |owner: String| LockError::Held { path: path.to_path_buf(), owner: owner.trim().to_string() };
        for _ in 0..4 {
            if link()? {
                return Ok(RunLock { path: path.to_path_buf(), owner: line });
            }
            let owner = match std::fs::read_to_string(path) {
                Ok(owner) => owner,
                // Released between the link and the read: try again.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io(e)),
            };
            if !lock_is_stale(path, &owner) {
                return Err(held(owner));
            }
            let guard = std::fs::File::options().create(true).truncate(false).write(true).open(guard).map_err(io)?;
            guard.lock().map_err(io)?;
            // Under the guard: still the lock judged stale? Then it goes, and ours takes its place.
            match std::fs::read_to_string(path) {
                Ok(now) if now == owner => {
                    tracing_free_warn(&format!("taking over the stale run lock {} ({})", path.display(), owner.trim()));
                    match std::fs::remove_file(path) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => return Err(io(e)),
                    }
                    let taken = link()?;
                    drop(guard);
                    if taken {
                        return Ok(RunLock { path: path.to_path_buf(), owner: line });
                    }
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(e)),
            }
        }
        Err(held(std::fs::read_to_string(path).unwrap_or_default()))
    }

    /// Whether a live process holds `run`'s lock (what `plan` reports as `running`).
    pub fn is_held(run: &RunDir) -> bool {
        match std::fs::read_to_string(run.lock()) {
            Ok(owner) => !lock_is_stale(&run.lock(), &owner),
            Err(_) => false,
        }
    }
}

impl RunLock {
    /// Whether `run.lock` still holds this process's line: false once another process judged it stale and took
    /// it over (this one was presumed dead: a lost node, a job the scheduler no longer knows). Checked before every
    /// checkpoint and before the summary, so that two processes never write one run.
    pub fn is_ours(&self) -> bool {
        std::fs::read_to_string(&self.path).is_ok_and(|now| now == self.owner)
    }

    /// Who holds the lock now, when it is not this process.
    pub fn holder(&self) -> Option<String> {
        std::fs::read_to_string(&self.path).ok().filter(|now| *now != self.owner).map(|now| now.trim().to_string())
    }
}

impl Drop for RunLock {
    /// Removes the lock, unless another process has taken it over: that one's lock stays.
    fn drop(&mut self) {
        if self.is_ours() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// What a lock holds: `<pid> <host>`, and inside a Slurm job ` slurm-job=<id> slurm-start=<restart count>`.
fn owner_line() -> String {
    let mut line = format!("{} {}", std::process::id(), host_name());
    if let Some(job) = slurm_job() {
        line.push_str(&format!(" slurm-job={} slurm-start={}", job.id, job.start));
    }
    line
}

/// A Slurm job (an array task has a job id of its own) and how often Slurm has restarted it (requeues).
#[derive(Debug, Clone, PartialEq)]
struct SlurmJob {
    id: String,
    start: u32,
}

/// The Slurm job this process runs in, if any.
fn slurm_job() -> Option<SlurmJob> {
    let id = std::env::var("SLURM_JOB_ID").ok().filter(|id| !id.is_empty())?;
    let start = std::env::var("SLURM_RESTART_COUNT").ok().and_then(|c| c.parse().ok()).unwrap_or(0);
    Some(SlurmJob { id, start })
}

/// A lock is stale when it names this host and a process id that is not running here, or when an earlier start
/// of the Slurm job this process belongs to took it: Slurm runs a job once at a time, so a requeued array task (the
/// same job id, a higher restart count, on whichever node) finds its own lock from before and may take it over,
/// even from another host whose process cannot be checked from here. Two processes of one start of a job (two
/// runs side by side in one allocation) respect each other's locks.
fn is_stale(owner: &str) -> bool {
    is_stale_in(owner, slurm_job().as_ref(), slurm_job_ended)
}

/// `is_stale` for the lock file at `path`: one that names no owner counts as stale only once it is older than
/// [`UNNAMED_LOCK_GRACE`], since its writer may still be writing it.
fn lock_is_stale(path: &Path, owner: &str) -> bool {
    if !names_an_owner(owner) {
        let age = std::fs::metadata(path).and_then(|m| m.modified()).ok().and_then(|t| t.elapsed().ok());
        return age.is_none_or(|age| age >= UNNAMED_LOCK_GRACE);
    }
    is_stale(owner)
}

fn names_an_owner(owner: &str) -> bool {
    let mut parts = owner.split_whitespace();
    parts.next().is_some_and(|p| p.parse::<u32>().is_ok()) && parts.next().is_some()
}

/// `is_stale` as seen from inside the Slurm job `ours` (None: outside Slurm).
/// `ended` asks the scheduler whether a job has ended ([`slurm_job_ended`]; a stub in tests).
fn is_stale_in(owner: &str, ours: Option<&SlurmJob>, ended: impl Fn(&str) -> Option<bool>) -> bool {
    let mut parts = owner.split_whitespace();
    let (Some(pid), Some(host)) = (parts.next().and_then(|p| p.parse::<u32>().ok()), parts.next()) else {
        // Unreadable or half-written by a process killed while writing it: no live owner can be named.
        return true;
    };
    if host == host_name() {
        return !process_alive(pid);
    }
    let rest: Vec<&str> = parts.collect();
    let field = |key: &str| rest.iter().find_map(|p| p.strip_prefix(key));
    let theirs = field("slurm-job=").map(|id| SlurmJob {
        id: id.to_string(),
        start: field("slurm-start=").and_then(|s| s.parse().ok()).unwrap_or(0),
    });
    match (theirs, ours) {
        (Some(theirs), Some(ours)) if theirs.id == ours.id => theirs.start < ours.start,
        // Another job (or this host is outside Slurm): stale when the scheduler says that job has ended, e.g. an
        // array task killed for its memory, whose lock would otherwise hold its run "running" forever.
        (Some(theirs), _) => ended(&theirs.id) == Some(true),
        (None, _) => false,
    }
}

/// The job states after which a Slurm job runs no more (`squeue`/`sacct` `%T`/`State`).
const ENDED_STATES: [&str; 10] = [
    "BOOT_FAIL",
    "CANCELLED",
    "COMPLETED",
    "DEADLINE",
    "FAILED",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "PREEMPTED",
    "REVOKED",
    "TIMEOUT",
];

/// Whether the Slurm job `id` has ended, as the scheduler says: `squeue` (a job it no longer lists, or lists in an
/// ended state, has ended), else `sacct`; `None` when neither can tell (no Slurm here), and then a lock is respected.
fn slurm_job_ended(id: &str) -> Option<bool> {
    let ended = |state: &str| {
        let state = state.split_whitespace().next().unwrap_or("");
        ENDED_STATES.iter().any(|s| state.starts_with(s))
    };
    let run = |program: &str, args: &[&str]| std::process::Command::new(program).args(args).output().ok();
    // Every partition and state: a job in a hidden partition, or one that ended minutes ago, is still listed.
    if let Some(out) = run("squeue", &["--noheader", "--all", "--states=all", "--jobs", id, "--format", "%T"]) {
        let text = String::from_utf8_lossy(&out.stdout);
        let state = text.lines().map(str::trim).find(|l| !l.is_empty());
        if out.status.success() {
            if let Some(state) = state {
                return Some(ended(state));
            }
            // Not listed (another user's job under PrivateData, a federation): sacct may know.
        } else if String::from_utf8_lossy(&out.stderr).contains("Invalid job id") {
            // squeue forgets a job some minutes after it ends and then calls its id invalid.
            return Some(true);
        }
    }
    let out = run("sacct", &["--noheader", "--allocations", "--jobs", id, "--format", "State"])?;
    let text = String::from_utf8_lossy(&out.stdout);
    let state = text.lines().map(str::trim).find(|l| !l.is_empty())?;
    out.status.success().then(|| ended(state))
}

fn process_alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new(&format!("/proc/{pid}")).exists()
    } else {
        std::process::Command::new("kill")
            .args(["-0", &pid.to_string()])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

/// `plan` has no logging dependency; the message goes to stderr.
fn tracing_free_warn(message: &str) {
    eprintln!("warning: {message}");
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename, flushing to disk
/// first: a reader (or a crash) sees the old file or the new one, never half of one.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = temporary_path(path);
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    // Flushed through this handle, so that an error the kernel reports only at the flush reaches the caller.
    file.sync_all()?;
    drop(file);
    rename_durably(&tmp, path)
}

/// The temporary name of `path` for a writer that cannot hand over bytes (a library that writes a file itself):
/// `.<name>.<pid>-<n>.tmp` beside it, unique to this process and call, so that two writers of one file (runs
/// side by side filling the classifier cache) never write into each other's temporary; [`remove_temporaries`]
/// removes such names when a run resumes. Write it whole, then [`commit`] it.
pub fn temporary_path(path: &Path) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    dir.join(format!(".{name}.{}-{n}.tmp", std::process::id()))
}

/// Makes the fully written `tmp` the file `path`: its data flushed to disk, renamed over `path`, and the directory
/// flushed too, so that after a power loss the new file is there under its name (a rename lives in the directory).
pub fn commit(tmp: &Path, path: &Path) -> std::io::Result<()> {
    std::fs::File::open(tmp)?.sync_all()?;
    rename_durably(tmp, path)
}

/// Renames the flushed `tmp` over `path` and flushes the directory, which holds the rename.
fn rename_durably(tmp: &Path, path: &Path) -> std::io::Result<()> {
    std::fs::rename(tmp, path)?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)?.sync_all()
}

/// A run file that cannot be read or written, or that does not hold what it should.
#[derive(Debug, thiserror::Error)]
pub enum RunFileError {
    #[error("{path}: {message}")]
    Io { path: PathBuf, message: String },
    /// A file of the run's share of the report (`share`) that does not hold what its header says.
    #[error(
        "{path}: {why}; the run's share of the report is damaged: delete the file and run `ssinfogan report` again \
         with the run's checkpoint present to write it anew"
    )]
    DamagedShare { path: PathBuf, why: String },
}

impl RunFileError {
    pub(crate) fn io(path: &Path, e: impl std::fmt::Display) -> Self {
        Self::Io { path: path.to_path_buf(), message: e.to_string() }
    }
}

/// The file's bytes, or `None` when it is not there (a record the run has not written).
pub(crate) fn read_bytes(path: &Path) -> Result<Option<Vec<u8>>, RunFileError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(RunFileError::io(path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_lock_excludes_a_second_holder_and_is_released_on_drop() {
        let dir = tempfile_dir("lock");
        let run = RunDir::new(&dir, "mnist", &RunId { variant: "ss-infogan".into(), n_labelled: 132, seed: 1 });
        let lock = RunLock::acquire(&run).unwrap();
        assert!(RunLock::is_held(&run));
        assert!(matches!(RunLock::acquire(&run), Err(LockError::Held { .. })));
        drop(lock);
        assert!(!run.lock().exists());
        assert!(RunLock::acquire(&run).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_lock_of_a_dead_process_is_stale_and_taken_over() {
        let dir = tempfile_dir("stale");
        let run = RunDir::new(&dir, "mnist", &RunId { variant: "infogan".into(), n_labelled: 0, seed: 2 });
        std::fs::create_dir_all(run.root()).unwrap();
        // Process ids are below 2^22 on Linux: this one cannot be running.
        std::fs::write(run.lock(), format!("4294967294 {}", host_name())).unwrap();
        assert!(!RunLock::is_held(&run));
        let lock = RunLock::acquire(&run).unwrap();
        assert_eq!(std::fs::read_to_string(run.lock()).unwrap(), owner_line());
        drop(lock);
        // Another host's lock is respected.
        std::fs::write(run.lock(), "1 some-other-host").unwrap();
        assert!(RunLock::is_held(&run));
        assert!(matches!(RunLock::acquire(&run), Err(LockError::Held { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_requeued_slurm_job_takes_over_its_own_lock_from_any_host_and_no_other_job_does() {
        let job = |id: &str, start| SlurmJob { id: id.into(), start };
        // What the scheduler says of job 901: still running, or ended.
        let running = |id: &str| Some(id != "901");
        let ended = |_: &str| Some(true);
        let theirs = "4242 node-17 slurm-job=901 slurm-start=0";
        // The same job started again (a requeued array task) on another node: its earlier start is gone.
        assert!(is_stale_in(theirs, Some(&job("901", 1)), running));
        // The same start of that job (two runs side by side in one allocation), another job, or a process outside
        // Slurm must respect another host's lock.
        assert!(!is_stale_in(theirs, Some(&job("901", 0)), running));
        assert!(!is_stale_in(theirs, Some(&job("902", 3)), running));
        assert!(!is_stale_in(theirs, None, running));
        assert!(!is_stale_in("4242 node-17", Some(&job("901", 1)), ended));
        // On this host the process decides, whatever the job: this one is alive, that pid cannot be.
        let here = host_name();
        assert!(!is_stale_in(
            &format!("{} {here} slurm-job=901 slurm-start=0", std::process::id()),
            Some(&job("901", 1)),
            ended
        ));
        assert!(is_stale_in(&format!("4294967294 {here} slurm-job=901 slurm-start=0"), Some(&job("901", 0)), running));
    }

    #[test]
    fn another_jobs_lock_is_taken_over_once_the_scheduler_says_that_job_ended() {
        let theirs = "4242 node-17 slurm-job=901 slurm-start=0";
        // From outside Slurm or from another job: the scheduler decides (an array task killed for its memory).
        assert!(is_stale_in(theirs, None, |id| Some(id == "901")));
        assert!(is_stale_in(theirs, Some(&SlurmJob { id: "902".into(), start: 0 }), |_| Some(true)));
        assert!(!is_stale_in(theirs, None, |_| Some(false)));
        // No scheduler to ask: respected.
        assert!(!is_stale_in(theirs, None, |_| None));
    }

    #[test]
    fn a_lock_taken_over_by_another_process_is_not_removed_by_the_first() {
        let dir = tempfile_dir("takeover");
        let run = RunDir::new(&dir, "mnist", &RunId { variant: "ss-infogan".into(), n_labelled: 132, seed: 1 });
        let lock = RunLock::acquire(&run).unwrap();
        assert!(lock.is_ours() && lock.holder().is_none());
        std::fs::write(run.lock(), "4242 node-17 slurm-job=7 slurm-start=1").unwrap();
        assert!(!lock.is_ours());
        assert_eq!(lock.holder().as_deref(), Some("4242 node-17 slurm-job=7 slurm-start=1"));
        drop(lock);
        assert_eq!(std::fs::read_to_string(run.lock()).unwrap(), "4242 node-17 slurm-job=7 slurm-start=1");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn of_processes_that_find_one_stale_lock_exactly_one_takes_it() {
        let dir = tempfile_dir("race");
        let run = RunDir::new(&dir, "mnist", &RunId { variant: "infogan".into(), n_labelled: 0, seed: 3 });
        std::fs::create_dir_all(run.root()).unwrap();
        for round in 0..40 {
            std::fs::write(run.lock(), format!("4294967294 {}", host_name())).unwrap();
            let barrier = std::sync::Barrier::new(4);
            let won: Vec<bool> = std::thread::scope(|scope| {
                let handles: Vec<_> = (0..4)
                    .map(|_| {
                        scope.spawn(|| {
                            barrier.wait();
                            // Held on to until every contender has tried.
                            RunLock::acquire(&run).map(std::mem::forget).is_ok()
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            assert_eq!(won.iter().filter(|w| **w).count(), 1, "round {round}: {won:?}");
            std::fs::remove_file(run.lock()).unwrap();
            // Nothing of the contest is left behind but the lock itself and the takeover guard.
            let left: Vec<String> = std::fs::read_dir(run.root())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            assert_eq!(left, [".run.lock.takeover"], "round {round}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_lock_that_names_no_owner_is_respected_while_its_writer_may_still_be_writing() {
        let dir = tempfile_dir("unnamed");
        let run = RunDir::new(&dir, "mnist", &RunId { variant: "infogan".into(), n_labelled: 0, seed: 4 });
        std::fs::create_dir_all(run.root()).unwrap();
        std::fs::write(run.lock(), "").unwrap();
        assert!(RunLock::is_held(&run));
        assert!(matches!(RunLock::acquire(&run), Err(LockError::Held { .. })));
        // Left long ago by a crash: taken over.
        let old = std::time::SystemTime::now() - UNNAMED_LOCK_GRACE - Duration::from_secs(1);
        std::fs::File::options().write(true).open(run.lock()).unwrap().set_modified(old).unwrap();
        assert!(!RunLock::is_held(&run));
        let lock = RunLock::acquire(&run).unwrap();
        assert_eq!(std::fs::read_to_string(run.lock()).unwrap(), owner_line());
        drop(lock);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn tempfile_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ssinfogan-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn atomic_write_replaces_whole_files_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("ssinfogan-atomic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("summary.json");
        write_atomically(&path, b"first").unwrap();
        write_atomically(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
