//! The process set-up that makes training fast on a CPU, as the `ssinfogan` binary makes it, for a program of
//! one's own that trains with these crates:
//!
//! ```no_run
//! fn main() -> anyhow::Result<()> {
//!     ssinfogan_experiment::runtime::restore_environment(); // first, before any thread starts
//!     ssinfogan_experiment::runtime::heap_in_huge_pages(); // optional: starts the program again once
//!     ssinfogan_experiment::runtime::tune();
//!     ssinfogan_experiment::runtime::on_the_compute_pool(|| {
//!         // train, evaluate…
//!         Ok(())
//!     })
//! }
//! ```
//!
//! None of it changes a number the training computes; each makes the same steps take less time.

/// glibc's tunables variable, and our note of what it held before [`heap_in_huge_pages`] added to it.
const TUNABLES: &str = "GLIBC_TUNABLES";
const TUNABLES_BEFORE: &str = "SSINFOGAN_GLIBC_TUNABLES_BEFORE";
const HUGETLB: &str = "glibc.malloc.hugetlb";

/// Set by [`restore_environment`] in a process [`heap_in_huge_pages`] started again, which must not start
/// itself again.
static RESTARTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Gives the environment back the `GLIBC_TUNABLES` it had before [`heap_in_huge_pages`] started the process
/// again: glibc has read it by now, and the programs this one runs (`git`, `npm`, Python) start with the user's
/// settings, not ours. Call it first thing in `main`, before any thread starts (setting the environment is not
/// thread-safe); without a restart it does nothing.
pub fn restore_environment() {
    if let Some(before) = std::env::var_os(TUNABLES_BEFORE) {
        if before.is_empty() {
            std::env::remove_var(TUNABLES);
        } else {
            std::env::set_var(TUNABLES, before);
        }
        std::env::remove_var(TUNABLES_BEFORE);
        RESTARTED.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The set-up that needs no restart: freed buffers kept for reuse, and candle's idle threads parked. Call it
/// before any thread starts.
pub fn tune() {
    keep_freed_buffers();
    park_candles_idle_threads();
}

/// Runs `command` on a thread of rayon's pool (RAYON_NUM_THREADS threads, as the kernels use) and waits for it.
/// The matrix products and CPU kernels split their work over that pool; called from a worker, the caller is one
/// of the threads that does the work, so a command uses RAYON_NUM_THREADS threads in all. Called from `main`,
/// the pool's threads would spin waiting for the next op while `main` ran the serial parts between ops, three
/// threads on two cores. The workers get `main`'s 8 MiB stack.
pub fn on_the_compute_pool<R: Send>(command: impl FnOnce() -> R + Send) -> R {
    if let Err(e) = rayon::ThreadPoolBuilder::new().stack_size(8 << 20).build_global() {
        tracing::debug!("rayon's pool was already built: {e}");
    }
    rayon::scope(|_| command())
}

/// candle runs its element-wise CPU ops (among them the gradient sums of every backward pass) on a pool of its
/// own, whose RAYON_NUM_THREADS − 1 threads spin for 25,000 pauses after each op before they sleep. Between
/// candle's ops run ours, on rayon's pool of RAYON_NUM_THREADS threads, and a spinning candle thread takes a
/// core from them: on two cores, an op of ours right after one of candle's (a BatchNorm backward pass after a
/// gradient sum) shares its second core with a spinning thread and can take twice its time. With a short spin
/// the thread sleeps at once; a user's own CANDLE_BARRIER_POOL_SPIN_LIMIT is kept.
fn park_candles_idle_threads() {
    const SPIN_LIMIT: &str = "CANDLE_BARRIER_POOL_SPIN_LIMIT";
    if std::env::var_os(SPIN_LIMIT).is_none() {
        std::env::set_var(SPIN_LIMIT, "50");
    }
}

/// A training step allocates and frees hundreds of tensor buffers of up to tens of megabytes. glibc serves each
/// one above its mmap threshold with a fresh `mmap` and returns it with `munmap`: page faults, zeroing and TLB
/// shootdowns, about a third of a batch-64 step on two cores (`perf`). Keeping freed memory in the heap lets the
/// next step reuse it; the heap then stays at the step's peak, which it reaches anyway.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_freed_buffers() {
    // SAFETY: mallopt only changes glibc's allocation thresholds; called before any thread starts, and glibc
    // serialises it with allocations.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, i32::MAX);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
        libc::mallopt(libc::M_TOP_PAD, 256 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_buffers() {}

/// The heap in transparent huge pages (2 MiB) where the kernel grants them on request (`madvise` mode, Debian's
/// and Ubuntu's default): a step streams hundreds of megabytes through its buffers (the 25 MB weights, their
/// gradients and Adam moments, the convolutions' patch rows), and with 4 KiB pages every 4 KiB is a TLB entry.
/// glibc asks for huge pages for its heap with the tunable `glibc.malloc.hugetlb=1` (glibc 2.35 on; older ones
/// ignore it), which it reads only when the process starts, so this starts the program again once with it set:
/// fewer TLB misses make a step a few percent faster. The numbers computed are the same (where the memory lies
/// changes no arithmetic). A GLIBC_TUNABLES that already names `glibc.malloc.hugetlb` is the user's choice and
/// kept (`=0`: none), as is a kernel whose huge pages are `never`. Worth it only for work that trains or
/// evaluates: the binary calls it after parsing its arguments (never for `--help`), and the restarted process
/// calls [`restore_environment`] so that the programs it runs do not inherit the setting.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn heap_in_huge_pages() {
    use std::os::unix::process::CommandExt;
    let tunables = std::env::var(TUNABLES).unwrap_or_default();
    // The user's choice, or this process was started again already.
    let restarted = RESTARTED.load(std::sync::atomic::Ordering::Relaxed) || std::env::var_os(TUNABLES_BEFORE).is_some();
    if tunables.contains(HUGETLB) || restarted {
        return;
    }
    let mode = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").unwrap_or_default();
    if !mode.contains("[madvise]") && !mode.contains("[always]") {
        return;
    }
    let Ok(exe) = std::env::current_exe() else { return };
    let mut args = std::env::args_os();
    let mut command = std::process::Command::new(exe);
    if let Some(arg0) = args.next() {
        command.arg0(arg0);
    }
    let ours = if tunables.is_empty() { format!("{HUGETLB}=1") } else { format!("{tunables}:{HUGETLB}=1") };
    // `exec` returns only if it failed (the binary gone from its path, say): then this process goes on as it is.
    let _failed = command.args(args).env(TUNABLES, ours).env(TUNABLES_BEFORE, &tunables).exec();
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn heap_in_huge_pages() {}
