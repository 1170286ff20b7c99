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

/// No number depends on how many threads the kernels use: every sum is split the same way whatever the pool.
#[test]
fn one_two_and_three_threads_give_the_same_bytes() {
    let mut outputs = Vec::new();
    for threads in ["1", "2", "3"] {
        let root = fixture();
        let out = Command::new(env!("CARGO_BIN_EXE_ssinfogan"))
            .current_dir(root.path())
            .args(&train_args("ss-infogan", "20", "8")[..])
            .env("HF_HUB_OFFLINE", "1")
            .env("RAYON_NUM_THREADS", threads)
            .output()
            .unwrap();
        assert!(out.status.success(), "{threads} threads: {}", String::from_utf8_lossy(&out.stderr));
        let dir = run_dir(root.path(), "ss-infogan-n20-s8");
        let read = |file: &str| std::fs::read(dir.join(file)).unwrap();
        outputs.push((threads, read("metrics.csv"), read("samples.safetensors"), read("final-samples.safetensors")));
    }
    for (threads, metrics, samples, finals) in &outputs[1..] {
        assert!(metrics == &outputs[0].1, "metrics.csv with {threads} threads differs from 1 thread's");
        assert!(samples == &outputs[0].2, "samples.safetensors with {threads} threads differs from 1 thread's");
        assert!(finals == &outputs[0].3, "final-samples.safetensors with {threads} threads differs");
    }
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

    // While a live process trains the run, `eval` may not overwrite the samples the run will write at its end.
    let samples = std::fs::read(dir.join("samples.safetensors")).unwrap();
    std::fs::write(dir.join("run.lock"), format!("{} {}", std::process::id(), host.trim())).unwrap();
    let mut args = train_args("ss-infogan", "20", "1");
    args[0] = "eval".into();
    let out = run(root.path(), &args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("is being trained by another process"), "{stderr}");
    assert_eq!(std::fs::read(dir.join("samples.safetensors")).unwrap(), samples);
}

/// A lock left by an array task of another Slurm job (on another node, so its process cannot be checked here) is
/// respected while the scheduler lists that job, and taken over once it says the job ended (e.g. killed for its
/// memory). `squeue` is a stub on PATH here.
#[test]
fn a_lock_of_an_ended_slurm_job_is_taken_over() {
    let root = fixture();
    let dir = run_dir(root.path(), "ss-infogan-n20-s1");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("run.lock"), "4242 node-17 slurm-job=999 slurm-start=0").unwrap();
    let stub = |state: &str| {
        let bin = root.path().join(format!("bin-{}", state.to_lowercase()));
        std::fs::create_dir_all(&bin).unwrap();
        let script = bin.join("squeue");
        std::fs::write(&script, format!("#!/bin/sh\necho {state}\n")).unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default())
    };
    let train = |path: &str| {
        Command::new(env!("CARGO_BIN_EXE_ssinfogan"))
            .current_dir(root.path())
            .args(&train_args("ss-infogan", "20", "1")[..])
            .env("HF_HUB_OFFLINE", "1")
            .env("PATH", path)
            .output()
            .unwrap()
    };
    let out = train(&stub("RUNNING"));
    assert!(!out.status.success(), "a running job's lock was taken");
    assert!(String::from_utf8_lossy(&out.stderr).contains("is held by process 4242 node-17"));
    let out = train(&stub("OUT_OF_MEMORY"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(dir.join("summary.json").is_file() && !dir.join("run.lock").exists());
}

/// SIGTERM (Slurm's time limit, `scancel`) stops a run between two iterations: the process exits with 128 + 15,
/// after its last write, its lock released and no summary written; the run resumes to the bytes of a run never
/// stopped. Without the handler the signal would kill the process and leave its lock behind.
#[test]
fn sigterm_stops_a_run_cleanly_and_it_resumes_to_the_same_bytes() {
    let long = |root: &Path| {
        let file = root.join("long.toml");
        std::fs::write(
            &file,
            format!(
                "extends = {:?}\n[schedule]\nbatch_size = 16\nepochs = 12\niterations_per_epoch = 5\n\
                 [evaluation]\nsamples_per_code = 20\neval_every = 1\n\
                 classifier = {{ epochs = 1, batch_size = 16, learning_rate = 1e-3 }}\n",
                experiment()
            ),
        )
        .unwrap();
        let mut args = train_args("ss-infogan", "20", "1");
        args[2] = file.display().to_string();
        args.truncate(args.len() - 2); // no profile: the file's own schedule
        args
    };
    let (stopped, reference) = (fixture(), fixture());
    let out = run(reference.path(), &long(reference.path()));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let args = long(stopped.path());
    let child = Command::new(env!("CARGO_BIN_EXE_ssinfogan"))
        .current_dir(stopped.path())
        .args(&args)
        .env("HF_HUB_OFFLINE", "1")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let dir = stopped.path().join("results/mnist/runs/ss-infogan-n20-s1");
    let started = std::time::Instant::now();
    while !dir.join("checkpoint/latest").exists() {
        assert!(started.elapsed().as_secs() < 300, "no checkpoint after 300 s");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // SAFETY: kill(2) with the pid of a child this test spawned and has not waited for.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let out = child.wait_with_output().unwrap();
    let (status, stderr) = (out.status, String::from_utf8_lossy(&out.stderr));
    assert_eq!(status.code(), Some(128 + libc::SIGTERM), "{status:?}: {stderr}");
    assert!(stderr.contains("stopped by signal 15"), "{stderr}");
    assert!(!dir.join("run.lock").exists(), "the lock was not released");
    assert!(!dir.join("summary.json").exists(), "a stopped run is not ended");

    let out = run(stopped.path(), &args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let reference_dir = reference.path().join("results/mnist/runs/ss-infogan-n20-s1");
    for file in ["metrics.csv", "losses.csv", "samples.safetensors", "summary.json"] {
        assert!(std::fs::read(dir.join(file)).unwrap() == std::fs::read(reference_dir.join(file)).unwrap(), "{file}");
    }
}

/// Four processes that find the classifier cache empty at once each train the (deterministic) classifier and
/// write it through a temporary name of their own: all succeed and leave one whole set of files.
#[test]
fn concurrent_cache_misses_of_the_classifier_all_succeed() {
    let root = fixture();
    let children: Vec<std::process::Child> = (0..4)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_ssinfogan"))
                .current_dir(root.path())
                .args(["classifier", "--experiment", &experiment(), "--profile", "smoke"])
                .env("HF_HUB_OFFLINE", "1")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let printed: Vec<String> = children
        .into_iter()
        .map(|child| {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8_lossy(&out.stdout).into_owned()
        })
        .collect();
    assert!(printed.iter().all(|p| p == &printed[0]), "{printed:?}");
    let dir = root.path().join("results/mnist-smoke/classifier");
    let mut names: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(names, ["classifier.json", "classifier.safetensors"]);
    // The weights load: another process finds them whole.
    let out = ssinfogan(root.path(), &["classifier", "--experiment", &experiment(), "--profile", "smoke"]);
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout) == printed[0]);
}

#[test]
#[cfg_attr(not(debug_assertions), ignore = "the fault hooks exist in debug builds only")]
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
#[cfg_attr(not(debug_assertions), ignore = "the fault hooks exist in debug builds only")]
fn a_run_aborted_at_a_checkpoint_resumes_to_the_same_bytes() {
    let reference = fixture();
    let out = run(reference.path(), &train_args("ss-infogan", "20", "2"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let read = |dir: &Path, f: &str| std::fs::read(dir.join(f)).unwrap();
    let reference_dir = run_dir(reference.path(), "ss-infogan-n20-s2");

    // The third: checkpoint 2 completed and named by `latest`, then its generator cut in half (a disk that lost a
    // flushed write); the resume falls back to checkpoint 1, which was kept until now, and says so.
    for (fault, resumes_after) in [
        ("abort-after-checkpoint:1", "epoch 1"),
        ("abort-in-checkpoint:2", "epoch 1"),
        ("truncate-after-checkpoint:2", "epoch 1"),
    ] {
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
        // What a writer killed between writing a temporary and renaming it leaves: gone after the resume.
        std::fs::write(dir.join(".metrics.csv.4242-0.tmp"), "iteration,epoch,metric,value\n").unwrap();
        std::fs::write(dir.join("checkpoint").join(".latest.4242-1.tmp"), "epoch-0009").unwrap();
        let out = run(root.path(), &train_args("ss-infogan", "20", "2"));
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{fault}: {log}");
        assert!(log.contains(&format!("after {resumes_after}")), "{fault}: did not resume from a checkpoint:\n{log}");
        if fault.starts_with("truncate") {
            assert!(log.contains("cannot resume from") && log.contains("epoch-0002"), "{fault}: no warning:\n{log}");
        }
        assert_eq!(read(&dir, "metrics.csv"), read(&reference_dir, "metrics.csv"), "{fault}");
        assert_eq!(read(&dir, "losses.csv"), read(&reference_dir, "losses.csv"), "{fault}");
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
#[cfg_attr(not(debug_assertions), ignore = "the fault hooks exist in debug builds only")]
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
    assert!(stderr.contains("holds a run with a different config (loss.lambda_ss differ)"), "{stderr}");
    assert_eq!(std::fs::read(run_dir(root.path(), "ss-infogan-n20-s4").join("metrics.csv")).unwrap(), before);
}

/// An evaluation that fails marks the run failed (with the error, and how to resume it), instead of leaving it
/// interrupted to be retried by every later sweep.
#[test]
#[cfg_attr(not(debug_assertions), ignore = "the fault hooks exist in debug builds only")]
fn a_failing_evaluation_fails_the_run() {
    let root = fixture();
    let out = Command::new(env!("CARGO_BIN_EXE_ssinfogan"))
        .current_dir(root.path())
        .args(&train_args("ss-infogan", "20", "1")[..])
        .env("HF_HUB_OFFLINE", "1")
        .env("SSINFOGAN_FAULT", "fail-evaluation:2")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let dir = run_dir(root.path(), "ss-infogan-n20-s1");
    let summary = std::fs::read_to_string(dir.join("summary.json")).unwrap();
    assert!(
        summary.contains("\"failed\"") && summary.contains("injected evaluation failure after epoch 2"),
        "{summary}"
    );
    let plan = ssinfogan(root.path(), &["plan", "--json", "--experiment", &experiment(), "--profile", "smoke"]);
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    let status =
        plan["runs"].as_array().unwrap().iter().find(|r| r["dir"].as_str().unwrap().ends_with("ss-infogan-n20-s1"));
    assert_eq!(status.unwrap()["status"], "failed", "{plan}");
    let out = run(root.path(), &train_args("ss-infogan", "20", "1"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("delete its summary.json to resume it"), "{stderr}");
}

/// A completed run whose experiment file changed since is stale: `plan` says which keys changed, `train` refuses
/// to call it complete, and `report` refuses to put it in a table under the new config.
#[test]
fn a_completed_run_under_an_edited_experiment_is_stale_everywhere() {
    let root = fixture();
    let out = run(root.path(), &train_args("infogan", "0", "1"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let changed = root.path().join("changed.toml");
    let sweep = "[sweep]\nseeds = [1]\nruns = [{ variant = \"infogan\" }]\n";
    std::fs::write(&changed, format!("extends = {:?}\n[loss]\nlambda_ss = 1.0\n{sweep}", experiment())).unwrap();
    let changed = changed.display().to_string();

    let out = ssinfogan(root.path(), &["plan", "--json", "--experiment", &changed, "--profile", "smoke"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let run0 = &plan["runs"][0];
    assert_eq!((run0["status"].as_str(), run0["stale_keys"][0].as_str()), (Some("stale"), Some("loss.lambda_ss")));
    let out = ssinfogan(root.path(), &["plan", "--experiment", &changed, "--profile", "smoke"]);
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.contains("stale") && printed.contains("changed since: loss.lambda_ss"), "{printed}");

    let mut args = train_args("infogan", "0", "1");
    args[2] = changed.clone();
    let out = run(root.path(), &args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("loss.lambda_ss changed since") && stderr.contains("--results"), "{stderr}");

    let out = ssinfogan(root.path(), &["report", "--experiment", &changed, "--profile", "smoke"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("infogan-n0-s1 (loss.lambda_ss)"), "{stderr}");
    // Under the file it was trained with, the run is complete and reported.
    let out = ssinfogan(root.path(), &["report", "--experiment", &experiment(), "--profile", "smoke"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
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
