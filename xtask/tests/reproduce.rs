//! `cargo xtask reproduce`, the README's first command: on this machine, `--slurm` against a real Slurm, and
//! `--emit slurm` without one.
//!
//! The tests marked `ignore` need a running Slurm whose nodes see this machine's files (`scripts/slurm-local.sh
//! start` makes one on this host; `.ci/run` does that, runs them with `--ignored`, and stops it). All of them run
//! the `ssinfogan` binary of this target directory (`cargo build -p ssinfogan-cli`; `cargo test --workspace` builds
//! it) on a small IDX fixture, offline.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The `ssinfogan` binary beside this test's xtask binary.
fn ssinfogan_binary() -> PathBuf {
    let xtask = PathBuf::from(env!("CARGO_BIN_EXE_xtask"));
    let binary = xtask.with_file_name(format!("ssinfogan{}", std::env::consts::EXE_SUFFIX));
    assert!(binary.is_file(), "{} is missing: build it first with `cargo build -p ssinfogan-cli`", binary.display());
    binary
}

fn xtask(root: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
    command
        .current_dir(root)
        .env("SSINFOGAN_BINARY", ssinfogan_binary())
        .env("HF_HUB_OFFLINE", "1")
        .env("HF_HOME", root.join("hf"))
        .env("NO_COLOR", "1");
    command
}

/// `cargo xtask reproduce <toml> <flags…>` on the fixture under `root`: its data in `root/data`, its results into
/// `root/results`.
fn reproduce(root: &Path, toml: &Path, flags: &[&str]) -> Command {
    let mut command = xtask(root);
    command.arg("reproduce").arg(toml).args(flags);
    command.arg("--results").arg(root.join("results")).arg("--data-root").arg(root.join("data"));
    command
}

/// An IDX file: the magic (unsigned bytes, `dims` dimensions), each dimension big-endian, then the bytes.
fn idx(dims: &[u32], bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        out.extend(d.to_be_bytes());
    }
    out.extend(bytes);
    out
}

/// MNIST in its real IDX layout: `n` images per split of 10 classes, class k a bright bar at rows 2k+4..2k+6.
fn write_mnist(dir: &Path, n_train: u32, n_test: u32) {
    std::fs::create_dir_all(dir).unwrap();
    for (prefix, n) in [("train", n_train), ("t10k", n_test)] {
        let n_us = n as usize;
        let pixels: Vec<u8> = (0..n_us * 784)
            .map(|i| if (i % 784) / 28 == 2 * (i / 784 % 10) + 4 { 230 } else { (i % 7) as u8 })
            .collect();
        let labels: Vec<u8> = (0..n_us).map(|i| (i % 10) as u8).collect();
        std::fs::write(dir.join(format!("{prefix}-images-idx3-ubyte")), idx(&[n, 28, 28], &pixels)).unwrap();
        std::fs::write(dir.join(format!("{prefix}-labels-idx1-ubyte")), idx(&[n], &labels)).unwrap();
    }
}

/// An experiment of its own on top of experiments/mnist.toml: `epochs` short epochs per run, the given runs.
fn write_experiment(root: &Path, name: &str, epochs: usize, runs: &str) -> PathBuf {
    let path = root.join(format!("{name}.toml"));
    let text = format!(
        "extends = {mnist:?}\n\
         [experiment]\nname = {name:?}\n\
         [schedule]\nbatch_size = 16\nepochs = {epochs}\niterations_per_epoch = 5\n\
         [evaluation]\nsamples_per_code = 20\neval_every = 1\n\
         classifier = {{ epochs = 1, batch_size = 16, learning_rate = 1e-3 }}\n\
         [cluster]\ncpus_per_task = 1\nmemory = \"1G\"\ntime = \"10\"\n\
         [sweep]\nseeds = [1]\nruns = [{runs}]\n",
        mnist = workspace().join("experiments/mnist.toml").display().to_string(),
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < timeout, "waited {timeout:?} for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn slurm(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(out.status.success(), "{program} {}: {}", args.join(" "), text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The array's task states as squeue lists them, e.g. `{0: "RUNNING"}`.
fn queued(job: &str) -> Vec<(usize, String)> {
    let out = Command::new("squeue").args(["-h", "-r", "-j", job, "-o", "%K %T"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(' ').map(|(k, s)| (k.parse().unwrap(), s.to_string())))
        .collect()
}

fn array_record(results: &Path, name: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(results.join(name).join("slurm/array.json")).unwrap()).unwrap()
}

fn args_of(record: &serde_json::Value, task: usize) -> Vec<String> {
    record["tasks"][task]["train_args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect()
}

/// Reads a child's stderr to the end on a thread, so that it never blocks on a full pipe.
fn collect_stderr(child: &mut Child) -> std::thread::JoinHandle<String> {
    let mut stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        let mut s = String::new();
        stderr.read_to_string(&mut s).unwrap();
        s
    })
}

#[test]
fn reproduce_trains_the_sweep_side_by_side_writes_the_report_and_then_has_nothing_left() {
    let root = tempfile::tempdir().unwrap();
    let results = root.path().join("results");
    write_mnist(&root.path().join("data/mnist"), 40, 20);
    let toml = write_experiment(
        root.path(),
        "local",
        2,
        r#"{ variant = "infogan" }, { variant = "ss-infogan", labels = [20, 50] }"#,
    );
    let out = reproduce(root.path(), &toml, &["--jobs", "2"]).output().unwrap();
    let printed = text(&out);
    assert!(out.status.success(), "{printed}");
    // The label count the 40 training images cannot serve is set aside, not trained.
    assert!(
        printed.contains("skipped: ss-infogan with 50 labels (more labels than the 40 training images"),
        "{printed}"
    );
    for run in ["infogan-n0-s1", "ss-infogan-n20-s1"] {
        let summary = std::fs::read_to_string(results.join("local/runs").join(run).join("summary.json")).unwrap();
        assert!(summary.contains("\"completed\""), "{run}: {summary}");
        // Side by side, each run's output goes to its own log instead of the terminal.
        assert!(results.join("local/runs").join(run).join("train.log").is_file(), "{run}: no train.log");
    }
    assert!(!results.join("local/runs/ss-infogan-n50-s1").exists());
    let report = std::fs::read_to_string(results.join("local/REPORT.md")).unwrap();
    assert!(report.contains("ss-infogan (20 labels)"), "{report}");
    // Again: every run is completed, so nothing trains and the report is written anew.
    let again = reproduce(root.path(), &toml, &[]).output().unwrap();
    assert!(again.status.success() && text(&again).contains("nothing to train"), "{}", text(&again));
}

#[test]
fn emit_writes_the_script_of_the_pending_runs_and_its_tasks_train_them() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let results = root.path().join("results");
    write_mnist(&data.join("mnist"), 40, 20);
    let toml = write_experiment(
        root.path(),
        "emitted",
        2,
        r#"{ variant = "infogan" }, { variant = "ss-infogan", labels = [20] }"#,
    );
    let out = reproduce(root.path(), &toml, &["--emit", "slurm", "--mem", "700M", "--time", "20"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let script_path = results.join("emitted/slurm/sweep.sbatch");
    let script = std::fs::read_to_string(&script_path).unwrap();
    // The file's cluster.cpus_per_task, and the flags over its memory and time.
    for line in ["#SBATCH --array=0-1\n", "#SBATCH --cpus-per-task=1\n", "#SBATCH --mem=700M\n", "#SBATCH --time=20\n"]
    {
        assert!(script.contains(line), "{line:?} missing:\n{script}");
    }
    assert!(!results.join("emitted/slurm/array.json").exists(), "--emit submits nothing");
    // The tasks, run as Slurm runs them, train exactly their runs; a task beyond the array is refused.
    for task in ["1", "0"] {
        let out = Command::new("bash")
            .arg(&script_path)
            .env("SLURM_ARRAY_TASK_ID", task)
            .env("HF_HUB_OFFLINE", "1")
            .env("HF_HOME", root.path().join("hf"))
            .output()
            .unwrap();
        assert!(out.status.success(), "task {task}: {}", text(&out));
    }
    for run in ["infogan-n0-s1", "ss-infogan-n20-s1"] {
        let summary = std::fs::read_to_string(results.join("emitted/runs").join(run).join("summary.json")).unwrap();
        assert!(summary.contains("\"completed\""), "{run}: {summary}");
    }
    let beyond = Command::new("bash").arg(&script_path).env("SLURM_ARRAY_TASK_ID", "2").output().unwrap();
    assert_eq!(beyond.status.code(), Some(2));
    // With every run completed there is nothing left to write.
    let out = reproduce(root.path(), &toml, &["--emit", "slurm"]).output().unwrap();
    assert!(out.status.success() && text(&out).contains("nothing to submit"), "{}", text(&out));
}

#[test]
#[ignore = "needs a running Slurm: scripts/slurm-local.sh start, then cargo test -p xtask -- --ignored"]
fn resources_no_node_has_are_refused_before_anything_is_submitted() {
    let root = tempfile::tempdir().unwrap();
    let (data, results) = (root.path().join("data"), root.path().join("results"));
    write_mnist(&data.join("mnist"), 40, 20);
    let toml = write_experiment(root.path(), "too-big", 2, r#"{ variant = "infogan" }"#);
    let cpus: u32 =
        slurm("sinfo", &["-h", "-N", "-o", "%c"]).lines().filter_map(|l| l.trim().parse().ok()).max().unwrap();
    let out = reproduce(root.path(), &toml, &["--slurm", "--cpus-per-task", &(cpus + 1).to_string()]).output().unwrap();
    let printed = text(&out);
    assert!(!out.status.success(), "{printed}");
    assert!(
        printed.contains(&format!("asks for {} CPUs", cpus + 1)) && printed.contains(&format!("has {cpus}")),
        "{printed}"
    );
    assert!(!results.join("too-big/slurm/array.json").exists(), "{printed}");
    // No job of this experiment's name reached the queue (other tests may submit theirs meanwhile).
    assert_eq!(slurm("squeue", &["-h", "-n", "ssinfogan-too-big", "-o", "%i"]), "", "nothing may be submitted");
}

/// The whole cluster path: submit, Ctrl-C while following (the tasks go on), a second invocation that attaches
/// instead of submitting, one task cancelled mid-run and requeued (it resumes from its checkpoint and ends
/// byte-identical to the same run uninterrupted), one task that fails (named, with its log), and the report.
#[test]
#[ignore = "needs a running Slurm: scripts/slurm-local.sh start, then cargo test -p xtask -- --ignored"]
fn an_array_is_submitted_once_followed_requeued_and_reported() {
    let root = tempfile::tempdir().unwrap();
    let (data, results) = (root.path().join("data"), root.path().join("results"));
    write_mnist(&data.join("mnist"), 60, 20);
    let name = "on-slurm";
    let toml = write_experiment(
        root.path(),
        name,
        14,
        r#"{ variant = "infogan" }, { variant = "ss-infogan", labels = [20, 30] }"#,
    );
    // The 30-label run's directory holds another config already: its task is refused at start and fails.
    let refused = results.join(name).join("runs/ss-infogan-n30-s1");
    std::fs::create_dir_all(&refused).unwrap();
    std::fs::write(refused.join("config.toml"), "[experiment]\nname = \"something else\"\n").unwrap();

    let on_slurm = || {
        let mut command = reproduce(root.path(), &toml, &["--slurm", "--poll-seconds", "0.5"]);
        command.stdout(Stdio::null()).stderr(Stdio::piped());
        command
    };
    let mut first = on_slurm().spawn().unwrap();
    let first_err = collect_stderr(&mut first);
    let record_path = results.join(name).join("slurm/array.json");
    wait_for("the array to be submitted", Duration::from_secs(300), || record_path.exists());
    let record = array_record(&results, name);
    let job = record["job_id"].as_str().unwrap().to_string();
    let tasks: Vec<&str> = record["tasks"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(tasks, ["infogan-n0-s1", "ss-infogan-n20-s1", "ss-infogan-n30-s1"]);
    let script = std::fs::read_to_string(results.join(name).join("slurm/sweep.sbatch")).unwrap();
    assert!(script.contains("#SBATCH --cpus-per-task=1\n") && script.contains("#SBATCH --requeue\n"), "{script}");

    // Ctrl-C stops the following, not the array.
    let interrupt = Command::new("kill").args(["-INT", &first.id().to_string()]).status().unwrap();
    assert!(interrupt.success());
    let status = first.wait().unwrap();
    let printed = first_err.join().unwrap();
    assert_eq!(status.code(), Some(130), "{printed}");
    assert!(printed.contains(&format!("stopped following array {job}")) && printed.contains("--slurm"), "{printed}");
    assert!(!queued(&job).is_empty(), "the tasks must go on after Ctrl-C:\n{printed}");

    // Task 0 is cancelled once it has a checkpoint, then requeued.
    let run0 = results.join(name).join("runs/infogan-n0-s1");
    // `latest` names the newest complete checkpoint; it is written last.
    let has_checkpoint = || run0.join("checkpoint/latest").is_file();
    wait_for("task 0's first checkpoint", Duration::from_secs(300), has_checkpoint);
    assert!(!run0.join("summary.json").exists(), "task 0 ended before it could be cancelled: lengthen its run");
    slurm("scancel", &[&format!("{job}_0")]);
    // Gone from the queue, COMPLETING included: a task that is still completing cannot be requeued.
    wait_for("task 0 to end", Duration::from_secs(60), || !queued(&job).iter().any(|(k, _)| *k == 0));
    slurm("scontrol", &["requeue", &format!("{job}_0")]);
    assert!(queued(&job).iter().any(|(k, _)| *k == 0), "task 0 must be queued again");

    // A second invocation attaches to the array in flight and submits nothing.
    let jobs_before: Vec<String> = slurm("squeue", &["-h", "-o", "%F"]).lines().map(str::to_string).collect();
    let second = on_slurm().output().unwrap();
    let printed = text(&second);
    assert!(printed.contains(&format!("array {job} (3 run(s), submitted earlier) is still in flight")), "{printed}");
    assert_eq!(array_record(&results, name)["job_id"], job.as_str(), "{printed}");
    let jobs_after = slurm("squeue", &["-h", "-o", "%F"]);
    assert!(jobs_after.lines().all(|j| jobs_before.iter().any(|b| b == j)), "a second array was submitted:\n{printed}");
    assert!(printed.contains("[3/3] report"), "{printed}");

    // The refused task is named with the tail of its log; the others completed and are in the report.
    assert!(!second.status.success(), "{printed}");
    assert!(
        printed.contains(&format!("FAILED ss-infogan-n30-s1 (array task {job}_2): ended without finishing")),
        "{printed}"
    );
    assert!(printed.contains("holds a run with a different config"), "{printed}");
    assert!(printed.contains("1 of 3 run(s)"), "{printed}");
    for run in ["infogan-n0-s1", "ss-infogan-n20-s1"] {
        let summary = std::fs::read_to_string(results.join(name).join("runs").join(run).join("summary.json")).unwrap();
        assert!(summary.contains("\"completed\""), "{run}: {summary}");
    }
    let report = std::fs::read_to_string(results.join(name).join("REPORT.md")).unwrap();
    assert!(report.contains("2 completed"), "{report}");

    // Task 0 really started twice and resumed from a checkpoint…
    let log = std::fs::read_to_string(results.join(name).join(format!("slurm/{job}_0.log"))).unwrap();
    assert!(log.contains("start 1)") && log.contains("start 2)"), "{log}");
    assert!(log.contains("resuming") && log.contains("after epoch"), "{log}");
    // …and ends byte-identical to the same run trained without interruption.
    let reference = root.path().join("reference");
    let mut args = vec!["train".to_string()];
    args.extend(args_of(&record, 0));
    let at = args.iter().position(|a| a == "--results").unwrap();
    args[at + 1] = reference.display().to_string();
    let out = Command::new(ssinfogan_binary())
        .current_dir(workspace())
        .args(&args)
        .env("HF_HUB_OFFLINE", "1")
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    for file in ["metrics.csv", "samples.safetensors"] {
        let requeued = std::fs::read(run0.join(file)).unwrap();
        let uninterrupted = std::fs::read(reference.join(name).join("runs/infogan-n0-s1").join(file)).unwrap();
        assert!(requeued == uninterrupted, "{file} of the requeued run differs from the uninterrupted one");
    }
}
