//! `ssinfogan train` end to end on a small IDX fixture with the `smoke` profile of experiments/mnist.toml,
//! and the errors a bad config gets before any training starts.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{ssinfogan, write_idx_dir};

fn experiment() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments/mnist.toml")
}

/// 40 train and 20 test images in 10 classes, into `root/data/mnist`.
fn write_fixture(root: &Path) {
    write_idx_dir(&root.join("data/mnist"), 40, 20);
}

fn train(root: &Path, experiment: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["train", "--experiment", experiment.to_str().unwrap(), "--seed", "1"];
    args.extend_from_slice(extra);
    ssinfogan(root, &args)
}

#[test]
fn a_smoke_run_writes_its_directory_and_is_not_trained_twice() {
    let root = tempfile::tempdir().unwrap();
    write_fixture(root.path());
    let out = train(root.path(), &experiment(), &["--variant", "ss-infogan", "--labels", "20", "--profile", "smoke"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    let run = root.path().join("results/mnist-smoke/runs/ss-infogan-n20-s1");
    let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    for expected in [
        "n_labelled = 20",
        "batch_size = 16",
        "seed = 1",
        "candle_version = \"0.11",
        "cpu_products = \"",
        "origin = \"IDX files in",
        "labelled_per_class = [",
    ] {
        assert!(config.contains(expected), "config.toml lacks `{expected}`:\n{config}");
    }
    let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert!(metrics.lines().any(|l| l.starts_with("10,1,g_adv,")), "{metrics}");
    // The smoke profile evaluates after every epoch, into metrics.csv.
    assert!(metrics.lines().any(|l| l.starts_with("5,0,c_err_hungarian,")), "{metrics}");
    assert!(metrics.lines().any(|l| l.starts_with("10,1,frechet_distance,")), "{metrics}");
    assert!(std::fs::read_to_string(run.join("summary.json")).unwrap().contains("\"completed\""));

    // Training ends with the run's samples (20 per code value in the smoke profile).
    let trained_samples =
        candle_core::safetensors::load(run.join("samples.safetensors"), &candle_core::Device::Cpu).unwrap();
    assert_eq!(trained_samples["images"].dims(), &[200, 1, 28, 28]);

    let evaluated = ssinfogan(
        root.path(),
        &[
            "eval",
            "--experiment",
            experiment().to_str().unwrap(),
            "--seed",
            "1",
            "--variant",
            "ss-infogan",
            "--labels",
            "20",
            "--profile",
            "smoke",
        ],
    );
    assert!(evaluated.status.success(), "{}", String::from_utf8_lossy(&evaluated.stderr));
    let evaluation = std::fs::read_to_string(run.join("evaluation.csv")).unwrap();
    for metric in [
        "c_err_identity",
        "c_err_greedy",
        "c_err_hungarian",
        "q_err_real_identity",
        "q_err_real_hungarian",
        "q_err_fake",
        "mi_lower_bound_ss",
        "mi_code_class",
        "mi_code_class_normalised",
        "mi_q_ss_label",
        "frechet_distance",
        "classifier_confidence",
    ] {
        assert!(
            evaluation.lines().any(|l| l.starts_with(&format!("10,1,{metric},"))),
            "{metric} missing:\n{evaluation}"
        );
    }
    let samples = candle_core::safetensors::load(run.join("samples.safetensors"), &candle_core::Device::Cpu).unwrap();
    assert_eq!(samples["images"].dims(), &[200, 1, 28, 28]); // 20 per code value × 10
    assert_eq!(samples["codes"].dtype(), candle_core::DType::I64);
    assert_eq!(samples["codes"].to_vec1::<i64>().unwrap()[20..22], [1, 1]);
    assert!(root.path().join("results/mnist-smoke/classifier/classifier.json").is_file());
    let out = root.path().join("exported.safetensors");
    let sampled = ssinfogan(
        root.path(),
        &["sample", "--run", run.to_str().unwrap(), "--out", out.to_str().unwrap(), "--per-code", "3"],
    );
    assert!(sampled.status.success(), "{}", String::from_utf8_lossy(&sampled.stderr));
    let exported = candle_core::safetensors::load(&out, &candle_core::Device::Cpu).unwrap();
    assert_eq!(exported["images"].dims(), &[30, 1, 28, 28]);
    assert_eq!(exported["codes"].to_vec1::<i64>().unwrap()[..4], [0, 0, 0, 1]);

    // timing.csv: every part of every epoch, and an epoch's wall time no less than its parts.
    let timing = std::fs::read_to_string(run.join("timing.csv")).unwrap();
    for epoch in ["5,0", "10,1"] {
        let seconds = |part: &str| -> f64 {
            let prefix = format!("{epoch},{part},");
            let line = timing.lines().find(|l| l.starts_with(&prefix)).unwrap_or_else(|| panic!("{prefix}\n{timing}"));
            line[prefix.len()..].parse().unwrap()
        };
        for part in ["evaluation_generation_seconds", "evaluation_classifier_seconds", "progress_grid_seconds"] {
            assert!(seconds(part) >= 0.0);
        }
        let parts = seconds("training_seconds") + seconds("evaluation_seconds") + seconds("checkpoint_seconds");
        assert!(seconds("wall_seconds") >= parts, "{timing}");
    }

    let again = train(root.path(), &experiment(), &["--variant", "ss-infogan", "--labels", "20", "--profile", "smoke"]);
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("is complete; nothing to do"));
    assert_eq!(std::fs::read_to_string(run.join("metrics.csv")).unwrap(), metrics);
}

#[test]
fn more_labels_than_images_is_refused_before_training() {
    let root = tempfile::tempdir().unwrap();
    write_fixture(root.path());
    let out = train(root.path(), &experiment(), &["--variant", "ss-infogan", "--labels", "41", "--profile", "smoke"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("data.n_labelled: n_labelled = 41 is larger than the train split (40 images)"), "{stderr}");
    assert!(!root.path().join("results/mnist-smoke/runs/ss-infogan-n41-s1/metrics.csv").exists());
}

/// The evaluations before the last use the first `interim_samples_per_code` images of each code value; the last
/// one, and the run's samples, all of them.
#[test]
fn interim_evaluations_are_smaller_and_the_last_is_whole() {
    let root = tempfile::tempdir().unwrap();
    write_fixture(root.path());
    let path = root.path().join("interim.toml");
    let toml = std::fs::read_to_string(experiment()).unwrap().replace(
        "evaluation = { samples_per_code = 20, eval_every = 1,",
        "evaluation = { samples_per_code = 20, interim_samples_per_code = 5, eval_every = 1,",
    );
    assert!(toml.contains("interim_samples_per_code = 5"), "the smoke profile's evaluation line changed");
    std::fs::write(&path, toml).unwrap();
    let out = train(root.path(), &path, &["--variant", "ss-infogan", "--labels", "20", "--profile", "smoke"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let run = root.path().join("results/mnist-smoke/runs/ss-infogan-n20-s1");
    let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert!(metrics.contains("\n5,0,evaluated_samples,50\n"), "{metrics}");
    assert!(metrics.contains("\n10,1,evaluated_samples,200\n"), "{metrics}");
    let samples = candle_core::safetensors::load(run.join("samples.safetensors"), &candle_core::Device::Cpu).unwrap();
    assert_eq!(samples["images"].dims(), &[200, 1, 28, 28]);
}

fn config_error(edit: impl Fn(String) -> String, variant: &str) -> String {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("bad.toml");
    std::fs::write(&path, edit(std::fs::read_to_string(experiment()).unwrap())).unwrap();
    let out = train(root.path(), &path, &["--variant", variant]);
    assert_eq!(out.status.code(), Some(1));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn config_errors_name_the_file_and_the_key() {
    let unknown = config_error(|t| t.replace("lambda_us = 0.8", "lambda_us = 0.8\nlambda_uss = 1.0"), "ss-infogan");
    assert!(unknown.contains("bad.toml (variant `ss-infogan`): key `loss.lambda_uss`: unknown field `lambda_uss`, expected one of `lambda_ss`, `lambda_us`, `continuous`"), "{unknown}");
    let wrong_type = config_error(|t| t.replace("batch_size = 128", "batch_size = \"big\""), "infogan");
    assert!(wrong_type.contains("key `schedule.batch_size`: invalid type: string \"big\""), "{wrong_type}");
    let variant = config_error(|t| t, "ss_infogan");
    assert!(
        variant.contains("no variant `ss_infogan` in [variants]; the file defines: infogan, ss-infogan"),
        "{variant}"
    );
    let size = config_error(|t| t.replace("size = 10", "size = 9"), "infogan");
    assert!(size.contains("code `digit` has 9 values but the label `class` of mnist has 10"), "{size}");
    let rate = config_error(|t| t.replacen("learning_rate = 1e-4", "learning_rate = -1e-4", 1), "infogan");
    assert!(rate.contains("optimiser.discriminator: learning_rate must be > 0"), "{rate}");
    let batch = config_error(|t| t.replace("batch_size = 128", "batch_size = 0"), "infogan");
    assert!(batch.contains("schedule: batch_size, epochs and iterations_per_epoch must be at least 1"), "{batch}");
    let dataset = config_error(|t| t.replace("dataset = \"mnist\"", "dataset = \"svhm\""), "infogan");
    assert!(dataset.contains("key `experiment.dataset`: unknown variant `svhm`, expected one of `mnist`"), "{dataset}");
    let network = config_error(|t| t.replace("dataset = \"mnist\"", "dataset = \"svhn\""), "infogan");
    assert!(network.contains("network.kind = \"mnist\" makes 28×28×1 images but svhn has 32×32×3"), "{network}");
}

#[test]
fn a_sweep_naming_an_unknown_variant_is_refused_with_the_known_ones() {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("bad.toml");
    let text = std::fs::read_to_string(experiment())
        .unwrap()
        .replace("{ variant = \"infogan\" },\n", "{ variant = \"infogan-x\" },\n");
    std::fs::write(&path, text).unwrap();
    let out = ssinfogan(root.path(), &["plan", "--experiment", path.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "sweep names variant `infogan-x`, which the file does not define; it defines: infogan, ss-infogan"
        ),
        "{stderr}"
    );
}
