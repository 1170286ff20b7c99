//! What a researcher does around a run from the command line: profiles and `--set` settings laid over the
//! experiment file (printed by `ssinfogan config`, recorded in the run, sent to a directory of their own), and
//! the files to watch a run by (`losses.csv`, TensorBoard's event files, read back by TensorBoard itself).

mod common;

use std::path::{Path, PathBuf};

use common::{ssinfogan, write_idx_dir};

fn experiment() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments/mnist.toml").display().to_string()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Trains the smoke profile's 20-label run with `settings` on a fixture in `root`; returns its directory.
fn train_with(root: &Path, settings: &[&str]) -> PathBuf {
    write_idx_dir(&root.join("data/mnist"), 40, 20);
    let experiment = experiment();
    let mut args = vec!["train", "--experiment", experiment.as_str()];
    args.extend(["--variant", "ss-infogan", "--labels", "20", "--profile", "smoke"]);
    for setting in settings {
        args.extend(["--set", setting]);
    }
    let out = ssinfogan(root, &args);
    assert!(out.status.success(), "{}", stderr(&out));
    let results = root.join("results");
    let experiments: Vec<PathBuf> = std::fs::read_dir(&results).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(experiments.len(), 1, "{experiments:?}");
    experiments[0].join("runs/ss-infogan-n20-s1")
}

#[test]
fn config_prints_what_profiles_and_settings_resolve_to() {
    let root = tempfile::tempdir().unwrap();
    let args = ["config", "--experiment", &experiment(), "--profile", "smoke", "--set", "loss.lambda_ss=0.5"];
    let out = ssinfogan(root.path(), &args);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    // Both variants of the smoke sweep, each under a comment naming it and the overlays.
    assert!(text.contains("variant infogan, profile smoke, set loss.lambda_ss=0.5\n"), "{text}");
    assert!(text.contains("variant ss-infogan, profile smoke, set loss.lambda_ss=0.5\n"), "{text}");
    assert_eq!(text.matches("lambda_ss = 0.5").count(), 2, "{text}");
    assert_eq!(text.matches("name = \"mnist-smoke-set-loss.lambda_ss-0.5\"").count(), 2, "{text}");
    assert!(text.contains("batch_size = 16"), "the smoke profile's schedule: {text}");

    let out = ssinfogan(root.path(), &["config", "--experiment", &experiment(), "--set", "loss.lamda_ss=1"]);
    assert!(!out.status.success());
    let error = stderr(&out);
    assert!(error.contains("unknown field `lamda_ss`") && error.contains("(from --set loss.lamda_ss=1)"), "{error}");
}

#[test]
fn a_setting_is_recorded_and_its_run_lives_apart_with_a_loss_log() {
    let root = tempfile::tempdir().unwrap();
    let dir = train_with(root.path(), &["training.losses_every=2"]);
    assert!(dir.starts_with(root.path().join("results/mnist-smoke-set-training.losses_every-2")), "{}", dir.display());
    let config = std::fs::read_to_string(dir.join("config.toml")).unwrap();
    assert!(
        config.contains("losses_every = 2") && config.contains("overrides = [\"training.losses_every=2\"]"),
        "{config}"
    );
    // Two epochs of five iterations, a row of means every two and at each epoch's end.
    let losses = std::fs::read_to_string(dir.join("losses.csv")).unwrap();
    let iterations: Vec<&str> = losses
        .lines()
        .skip(1)
        .filter(|l| l.split(',').nth(2) == Some("d_real"))
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(iterations, ["2", "4", "5", "7", "9", "10"], "{losses}");
    let events: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("events.out.tfevents."))
        .collect();
    assert_eq!(events.len(), 1, "{events:?}");
}

/// TensorBoard's own reader (the `tensorboard` package from PyPI, in the interpreter `SSINFOGAN_PYTHON` names)
/// finds every row of `losses.csv` as `train/<loss>` and of `metrics.csv` as `epoch/<metric>`, at its iteration,
/// with its value as a 32-bit float.
#[test]
#[ignore = "needs Python with tensorboard (CI: SSINFOGAN_PYTHON)"]
fn tensorboard_reads_the_event_files() {
    let root = tempfile::tempdir().unwrap();
    let dir = train_with(root.path(), &[]);
    let python = std::env::var("SSINFOGAN_PYTHON").unwrap_or_else(|_| "python3".into());
    // JSON has no NaN or infinity: those come as the text Python writes for them.
    let script = "import json, math, sys\n\
                  from tensorboard.backend.event_processing.event_accumulator import EventAccumulator\n\
                  events = EventAccumulator(sys.argv[1], size_guidance={'scalars': 0})\n\
                  events.Reload()\n\
                  value = lambda v: v if math.isfinite(v) else repr(v)\n\
                  print(json.dumps({tag: [[e.step, value(e.value)] for e in events.Scalars(tag)] \
                  for tag in events.Tags()['scalars']}))\n";
    let out = std::process::Command::new(&python)
        .args(["-c", script, &dir.display().to_string()])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e} (set SSINFOGAN_PYTHON to a Python with tensorboard)"));
    assert!(out.status.success(), "{}", stderr(&out));
    let read: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut compared = 0;
    for (file, prefix) in [("losses.csv", "train"), ("metrics.csv", "epoch")] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split(',').collect();
            let (step, tag, value) = (fields[0].parse::<u64>().unwrap(), format!("{prefix}/{}", fields[2]), fields[3]);
            let value = value.parse::<f64>().unwrap() as f32;
            let points = read[&tag].as_array().unwrap_or_else(|| panic!("TensorBoard has no {tag}: {read}"));
            let same = |p: &serde_json::Value| match value.is_finite() {
                true => p.as_f64().map(|v| v as f32) == Some(value),
                false => {
                    p.as_str()
                        == Some(if value.is_nan() {
                            "nan"
                        } else if value > 0.0 {
                            "inf"
                        } else {
                            "-inf"
                        })
                }
            };
            let found = points.iter().any(|p| p[0].as_u64() == Some(step) && same(&p[1]));
            assert!(found, "{tag} at {step} = {value} not among {points:?}");
            compared += 1;
        }
    }
    assert!(compared > 50, "only {compared} values compared");
}
