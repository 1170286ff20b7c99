//! `ssinfogan export`: a trained generator leaves the project with its latent layout, example latents and the
//! images this build makes from them, and a model card; `python/ssinfogan_generator.py` (numpy and
//! safetensors only) makes the same images from the same latents.

mod common;

use std::path::{Path, PathBuf};

use common::{ssinfogan, write_idx_dir};

/// Trains the smoke profile's 20-label run on a fixture and exports it into `<root>/export`.
fn trained_and_exported(root: &Path) -> PathBuf {
    write_idx_dir(&root.join("data/mnist"), 40, 20);
    let experiment = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments/mnist.toml").display().to_string();
    let args =
        ["train", "--experiment", &experiment, "--variant", "ss-infogan", "--labels", "20", "--profile", "smoke"];
    let out = ssinfogan(root, &args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = ssinfogan(root, &["export", "results/mnist-smoke/runs/ss-infogan-n20-s1", "--out", "export"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    root.join("export")
}

#[test]
fn an_export_holds_weights_latent_layout_examples_and_a_model_card() {
    let root = tempfile::tempdir().unwrap();
    let export = trained_and_exported(root.path());
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(export.join("config.json")).unwrap()).unwrap();
    assert_eq!((config["format"].as_str(), config["version"].as_u64()), (Some("ssinfogan-generator"), Some(1)));
    assert_eq!(config["network"]["kind"], "mnist");
    assert_eq!(config["input_size"], 10 + 2 + 62);
    // The generator's input in order: the digit one-hot, two uniform codes, the noise.
    let blocks: Vec<(String, String, u64, u64)> = config["latent"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            let text = |k: &str| b[k].as_str().unwrap().to_string();
            (text("name"), text("kind"), b["offset"].as_u64().unwrap(), b["size"].as_u64().unwrap())
        })
        .collect();
    let expected = [
        ("digit", "categorical", 0, 10),
        ("c1", "continuous", 10, 1),
        ("c2", "continuous", 11, 1),
        ("noise", "noise", 12, 62),
    ];
    let expected: Vec<(String, String, u64, u64)> =
        expected.iter().map(|&(n, k, o, s)| (n.to_string(), k.to_string(), o, s)).collect();
    assert_eq!(blocks, expected);
    assert_eq!(config["run"]["labels"], 20);

    let examples =
        candle_core::safetensors::load(export.join("examples.safetensors"), &candle_core::Device::Cpu).unwrap();
    assert_eq!(examples["latents"].dims(), [20, 74]);
    assert_eq!(examples["images"].dims(), [20, 1, 28, 28]);
    let model = candle_core::safetensors::load(export.join("model.safetensors"), &candle_core::Device::Cpu).unwrap();
    for name in ["fc1.weight", "bn1.running_mean", "bn1.running_var", "deconv1.weight", "deconv2.bias"] {
        assert!(model.contains_key(name), "{name} missing from model.safetensors");
    }
    let card = std::fs::read_to_string(export.join("README.md")).unwrap();
    assert!(card.contains("20 labelled training images") && card.contains("Generator.load"), "{card}");
    // Exporting twice writes the same weights and examples: nothing but the run decides them.
    let again = ssinfogan(root.path(), &["export", "results/mnist-smoke/runs/ss-infogan-n20-s1", "--out", "again"]);
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    for file in ["model.safetensors", "examples.safetensors"] {
        assert!(
            std::fs::read(export.join(file)).unwrap() == std::fs::read(root.path().join("again").join(file)).unwrap()
        );
    }
}

/// The Python loader, on numpy and safetensors from PyPI (the interpreter `SSINFOGAN_PYTHON` names), makes the
/// exporting build's example images from the same latents within 1e-5, and samples images of a chosen code.
#[test]
#[ignore = "needs Python with numpy and safetensors (CI: SSINFOGAN_PYTHON)"]
fn the_python_loader_makes_the_images_this_build_makes() {
    let root = tempfile::tempdir().unwrap();
    let export = trained_and_exported(root.path());
    let python = std::env::var("SSINFOGAN_PYTHON").unwrap_or_else(|_| "python3".into());
    let loader = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../python");
    let script = "import sys\nfrom ssinfogan_generator import Generator\n\
                  g = Generator.load(sys.argv[1])\n\
                  images = g.sample(n=5, code=3, seed=0)\n\
                  assert images.shape == (5, 1, 28, 28) and images.min() >= 0 and images.max() <= 1, images.shape\n\
                  print(repr(g.check()))\n";
    let out = std::process::Command::new(&python)
        .env("PYTHONPATH", &loader)
        .args(["-c", script, &export.display().to_string()])
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {python}: {e} (set SSINFOGAN_PYTHON to a Python with numpy and safetensors)")
        });
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let difference: f64 = String::from_utf8(out.stdout).unwrap().trim().parse().unwrap();
    assert!(difference < 1e-5, "the Python loader's images differ from this build's by up to {difference}");
}

/// `[training.checkpoints]`: with a monitored metric the best checkpoint is kept beside the newest two, and
/// `eval`, `sample` and `export` take any kept one with `--checkpoint`; one the run no longer keeps is refused
/// with the list of those it does.
#[test]
fn eval_sample_and_export_take_the_best_or_a_kept_checkpoint() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    write_idx_dir(&root.join("data/mnist"), 40, 20);
    let experiment = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments/mnist.toml").display().to_string();
    let run_args = [
        "--experiment",
        &experiment,
        "--variant",
        "ss-infogan",
        "--labels",
        "20",
        "--profile",
        "smoke",
        "--set",
        "training.checkpoints.monitor=c_err_hungarian",
    ];
    let out = ssinfogan(root, &[&["train"][..], &run_args].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The setting sends the run to an experiment of its own (`mnist-smoke-set-…`).
    let experiments: Vec<PathBuf> =
        std::fs::read_dir(root.join("results")).unwrap().map(|e| e.unwrap().path()).collect();
    let [experiment_dir] = experiments.as_slice() else { panic!("{experiments:?}") };
    assert!(experiment_dir.to_string_lossy().contains("mnist-smoke-set-"), "{experiment_dir:?}");
    let run = experiment_dir.join("runs/ss-infogan-n20-s1");
    let best: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("checkpoint/best.json")).unwrap()).unwrap();
    assert_eq!((best["metric"].as_str(), best["mode"].as_str()), (Some("c_err_hungarian"), Some("min")));
    let best_name = best["checkpoint"].as_str().unwrap().to_string();
    assert!(run.join("checkpoint").join(&best_name).join("state.json").is_file());
    let run_arg = run.display().to_string();

    for which in ["epoch-0001", "best"] {
        let out = ssinfogan(
            root,
            &["sample", "--run", &run_arg, "--checkpoint", which, "--out", "s.safetensors", "--per-code", "2"],
        );
        assert!(out.status.success(), "{which}: {}", String::from_utf8_lossy(&out.stderr));
        let expected = if which == "best" { best_name.as_str() } else { which };
        assert!(String::from_utf8_lossy(&out.stdout).contains(expected), "{}", String::from_utf8_lossy(&out.stdout));
    }
    let out = ssinfogan(root, &["sample", "--run", &run_arg, "--checkpoint", "epoch-0009", "--out", "s.safetensors"]);
    let error = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && error.contains("epoch-0001, epoch-0002"), "{error}");

    // `eval` of another checkpoint than the latest leaves the run's own evaluation files alone.
    let out = ssinfogan(root, &[&["eval"][..], &run_args, &["--checkpoint", "epoch-0001"]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let evaluation = std::fs::read_to_string(run.join("evaluation-epoch-0001.csv")).unwrap();
    assert!(evaluation.starts_with("iteration,epoch,metric,value\n5,0,c_err_identity,"), "{evaluation}");
    assert!(run.join("samples-epoch-0001.safetensors").is_file() && !run.join("evaluation.csv").exists());

    let out = ssinfogan(root, &["export", &run_arg, "--checkpoint", "epoch-0001", "--out", "export"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let card = std::fs::read_to_string(root.join("export/README.md")).unwrap();
    assert!(card.contains("checkpoint `epoch-0001`") && card.contains("not of the exported one"), "{card}");
}
