//! What a sweep left running overnight must survive, each on the smoke profile and a small IDX fixture:
//! a second process on the same run, a diverging run among healthy ones, an abort at a checkpoint (after one, and
//! in the middle of writing one), a results directory that cannot be written, and the refusals to resume under
//! another config or to evaluate on other data. And the same seed must give the same bytes.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{ssinfogan, write_idx_dir};

fn experiment() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments/mnist.toml").display().to_string()
}

fn fixture() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    write_idx_dir(&root.path().join("data/mnist"), 40, 20);
    root
}

fn train_args(variant: &str, labels: &str, seed: &str) -> Vec<String> {
    [
        "train",
        "--experiment",
        &experiment(),
        "--variant",
        variant,
        "--labels",
        labels,
        "--seed",
        seed,
        "--profile",
        "smoke",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn run(root: &Path, args: &[String]) -> std::process::Output {
    ssinfogan(root, &args.iter().map(String::as_str).collect::<Vec<_>>())
}

fn run_dir(root: &Path, name: &str) -> PathBuf {
    root.join("results/mnist-smoke/runs").join(name)
}

#[test]
fn the_same_seed_gives_byte_identical_metrics() {
    let (a, b) = (fixture(), fixture());
    for root in [&a, &b] {
        let out = run(root.path(), &train_args("ss-infogan", "20", "3"));
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let read = |root: &Path| std::fs::read(run_dir(root, "ss-infogan-n20-s3").join("metrics.csv")).unwrap();
    let (first, second) = (read(a.path()), read(b.path()));
    assert!(first.len() > 1000);
    assert_eq!(first, second);
}

#[test]
fn a_run_held_by_a_live_process_is_not_trained_twice() {
    let root = fixture();
    let dir = run_dir(root.path(), "ss-infogan-n20-s1");
    std::fs::create_dir_all(&dir).unwrap();
    // This test process is alive and on this host: the lock is not stale.
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_else(|_| "localhost".into());
    std::fs::write(dir.join("run.lock"), format!("{} {}", std::process::id(), host.trim())).unwrap();
    let plan = ssinfogan(root.path(), &["plan", "--json", "--experiment", &experiment(), "--profile", "smoke"]);
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    assert_eq!(plan["runs"][1]["status"], "running");
    let out = run(root.path(), &train_args("ss-infogan", "20", "1"));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("run.lock is held by process"), "{stderr}");
    assert!(!dir.join("metrics.csv").exists());

    // A lock whose process is gone (killed with SIGKILL) is taken over.
    std::fs::write(dir.join("run.lock"), format!("4294967294 {}", host.trim())).unwrap();
    let out = run(root.path(), &train_args("ss-infogan", "20", "1"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!dir.join("run.lock").exists());
}

#[test]
fn a_diverging_run_fails_alone_and_the_report_marks_it_failed() {
    let root = fixture();
    let mut bad = Command::new(env!("CARGO_BIN_EXE_ssinfogan"));
    bad.current_dir(root.path()).args(&train_args("infogan", "0", "1")[..]).env("HF_HUB_OFFLINE", "1");
    let out = bad.env("SSINFOGAN_INJECT_NAN_AT", "3").output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("iteration 3"), "{stderr}");
    let good = run(root.path(), &train_args("ss-infogan", "20", "1"));
    assert!(good.status.success(), "{}", String::from_utf8_lossy(&good.stderr));

    let plan = ssinfogan(root.path(), &["plan", "--json", "--experiment", &experiment(), "--profile", "smoke"]);
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    let states: Vec<&str> = plan["runs"].as_array().unwrap().iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(states, ["failed", "completed"]);
    let report = ssinfogan(root.path(), &["report", "--experiment", &experiment(), "--profile", "smoke"]);
    assert!(report.status.success(), "{}", String::from_utf8_lossy(&report.stderr));
    let text = std::fs::read_to_string(root.path().join("results/mnist-smoke/REPORT.md")).unwrap();
    assert!(text.contains("1 completed, 1 failed"), "{text}");
    assert!(text.contains("## Failed runs"), "{text}");
    let table = std::fs::read_to_string(root.path().join("results/mnist-smoke/tables/main.md")).unwrap();
    assert!(table.contains("| infogan | 0 (0.00%) | 0 (1 failed, 0 unfinished) |"), "{table}");
}

/// A run that dies at a checkpoint (`SSINFOGAN_FAULT`: abort right after checkpoint 1 is complete, or while
/// checkpoint 2 is half written) resumes from the last complete one and ends with the bytes of a run never
/// interrupted. The fault points are fixed, so every run of this test tests the same two things.
#[test]
fn a_run_aborted_at_a_checkpoint_resumes_to_the_same_bytes() {
    let reference = fixture();
    let out = run(reference.path(), &train_args("ss-infogan", "20", "2"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let read = |dir: &Path, f: &str| std::fs::read(dir.join(f)).unwrap();
    let reference_dir = run_dir(reference.path(), "ss-infogan-n20-s2");

    for (fault, resumes_after) in [("abort-after-checkpoint:1", "epoch 1"), ("abort-in-checkpoint:2", "epoch 1")] {
        let root = fixture();
        let aborted = Command::new(env!("CARGO_BIN_EXE_ssinfogan"))
            .current_dir(root.path())
            .args(&train_args("ss-infogan", "20", "2")[..])
            .env("HF_HUB_OFFLINE", "1")
            .env("SSINFOGAN_FAULT", fault)
            .output()
            .unwrap();
        assert!(!aborted.status.success(), "{fault}: the run did not abort");
        let dir = run_dir(root.path(), "ss-infogan-n20-s2");
        assert!(!dir.join("summary.json").exists() && dir.join("run.lock").exists(), "{fault}: not an aborted run");
        let out = run(root.path(), &train_args("ss-infogan", "20", "2"));
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{fault}: {log}");
        assert!(log.contains(&format!("after {resumes_after}")), "{fault}: did not resume from a checkpoint:\n{log}");
        assert_eq!(read(&dir, "metrics.csv"), read(&reference_dir, "metrics.csv"), "{fault}");
        assert_eq!(read(&dir, "summary.json"), read(&reference_dir, "summary.json"), "{fault}");
        assert_eq!(read(&dir, "samples.safetensors"), read(&reference_dir, "samples.safetensors"), "{fault}");
        // No temporary file is left behind, nor a lock.
        for entry in walk(&dir) {
            let name = entry.file_name().unwrap().to_string_lossy().into_owned();
            assert!(!name.ends_with(".tmp") && name != "run.lock", "{fault}: left behind: {}", entry.display());
        }
    }
    let bad = Command::new(env!("CARGO_BIN_EXE_ssinfogan"))
        .current_dir(reference.path())
        .args(&train_args("infogan", "0", "9")[..])
        .env("SSINFOGAN_FAULT", "abort-sometime")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&bad.stderr).contains("SSINFOGAN_FAULT: `abort-sometime` is not a fault"));
}

/// A run directory trained under one config is not resumed under another: the run would mix two experiments.
#[test]
fn resuming_with_a_changed_config_is_refused() {
    let root = fixture();
    // A run interrupted after its first epoch.
    let aborted = Command::new(env!("CARGO_BIN_EXE_ssinfogan"))
        .current_dir(root.path())
        .args(&train_args("ss-infogan", "20", "4")[..])
        .env("HF_HUB_OFFLINE", "1")
        .env("SSINFOGAN_FAULT", "abort-after-checkpoint:1")
        .output()
        .unwrap();
    assert!(!aborted.status.success());
    // The same run (variant, labels, seed, results directory) from an experiment file that changes λ_ss.
    let changed = root.path().join("changed.toml");
    std::fs::write(&changed, format!("extends = {:?}\n[loss]\nlambda_ss = 8.0\n", experiment())).unwrap();
    let mut args = train_args("ss-infogan", "20", "4");
    args[2] = changed.display().to_string();
    let before = std::fs::read(run_dir(root.path(), "ss-infogan-n20-s4").join("metrics.csv")).unwrap();
    let out = run(root.path(), &args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("holds a run with a different config"), "{stderr}");
    assert_eq!(std::fs::read(run_dir(root.path(), "ss-infogan-n20-s4").join("metrics.csv")).unwrap(), before);
}

/// A run is evaluated only on the data it was trained on: other data would give numbers of another experiment.
#[test]
fn evaluating_on_other_data_is_refused() {
    let root = fixture();
    let out = run(root.path(), &train_args("infogan", "0", "5"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The same file names, other digits.
    write_idx_dir(&root.path().join("data/mnist"), 41, 20);
    let mut args = train_args("infogan", "0", "5");
    args[0] = "eval".into();
    let out = run(root.path(), &args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("is not the data") && stderr.contains("was trained on"), "{stderr}");
}

#[test]
fn an_unwritable_results_directory_is_a_clear_error() {
    let root = fixture();
    // A file where the results directory should be: nothing can be created below it, even as root.
    std::fs::write(root.path().join("results"), "not a directory").unwrap();
    let out = run(root.path(), &train_args("ss-infogan", "20", "1"));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("results/mnist-smoke/runs/ss-infogan-n20-s1"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(std::fs::read_to_string(root.path().join("results")).unwrap(), "not a directory");
}

#[test]
fn a_full_disk_is_a_clear_error_and_corrupts_nothing() {
    use std::os::unix::process::CommandExt;
    let reference = fixture();
    let out = run(reference.path(), &train_args("ss-infogan", "20", "1"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let root = fixture();
    let mut full = Command::new(env!("CARGO_BIN_EXE_ssinfogan"));
    full.current_dir(root.path()).args(&train_args("ss-infogan", "20", "1")[..]).env("HF_HUB_OFFLINE", "1");
    // No file may grow past 256 KiB: the checkpoints (megabytes) hit the limit as on a full disk.
    // SAFETY: the closure runs in the forked child before `exec`, where only async-signal-safe functions may be
    // called: `signal` and `setrlimit` are, reading errno is, and nothing is allocated or locked.
    unsafe {
        full.pre_exec(|| {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let limit = libc::rlimit { rlim_cur: 256 << 10, rlim_max: 256 << 10 };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = full.output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("File too large") && stderr.contains("results/mnist-smoke/"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let dir = run_dir(root.path(), "ss-infogan-n20-s1");
    assert!(
        !dir.join("summary.json").exists()
            || !std::fs::read_to_string(dir.join("summary.json")).unwrap().contains("completed")
    );

    // With space again, the same command finishes the run as if nothing had happened.
    let out = run(root.path(), &train_args("ss-infogan", "20", "1"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let reference_dir = run_dir(reference.path(), "ss-infogan-n20-s1");
    assert_eq!(
        std::fs::read(dir.join("metrics.csv")).unwrap(),
        std::fs::read(reference_dir.join("metrics.csv")).unwrap()
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}
