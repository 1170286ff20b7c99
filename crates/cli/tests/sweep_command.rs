//! The sweep of an experiment end to end on a small IDX fixture with the `smoke` profile: `ssinfogan plan`
//! lists the runs (and sets aside a label count the data cannot serve), `ssinfogan train` with each listed run's
//! variant, labels and seed trains it, and `ssinfogan report` writes the tables, figures, grids and REPORT.md — twice, identically.

mod common;

use std::path::{Path, PathBuf};

use common::{ssinfogan, write_idx_dir};

fn experiment() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments/mnist.toml").display().to_string()
}

fn plan(root: &Path) -> serde_json::Value {
    let out = ssinfogan(root, &["plan", "--json", "--experiment", &experiment(), "--profile", "smoke"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn plan_train_and_report_a_smoke_sweep() {
    let root = tempfile::tempdir().unwrap();
    // 40 training images: the smoke sweep's 50-label run cannot be served and is skipped.
    write_idx_dir(&root.path().join("data/mnist"), 40, 20);
    let before = plan(root.path());
    assert_eq!(before["experiment"], "mnist-smoke");
    let runs = before["runs"].as_array().unwrap();
    let names: Vec<&str> = runs.iter().map(|r| r["dir"].as_str().unwrap()).collect();
    assert_eq!(names, ["results/mnist-smoke/runs/infogan-n0-s1", "results/mnist-smoke/runs/ss-infogan-n20-s1"]);
    assert!(runs.iter().all(|r| r["status"] == "pending"));
    assert_eq!(before["skipped"][0]["n_labelled"], 50);

    for run in runs {
        // The plan's arguments and the run's own variant, labels and seed.
        let (labels, seed) = (run["n_labelled"].to_string(), run["seed"].to_string());
        let experiment = experiment();
        let args = ["train", "--experiment", &experiment, "--profile", "smoke", "--variant"];
        let args = [&args[..], &[run["variant"].as_str().unwrap(), "--labels", &labels, "--seed", &seed]].concat();
        let out = ssinfogan(root.path(), &args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    assert!(plan(root.path())["runs"].as_array().unwrap().iter().all(|r| r["status"] == "completed"));

    let report = |root: &Path| {
        let out = ssinfogan(root, &["report", "--experiment", &experiment(), "--profile", "smoke"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let printed = report(root.path());
    assert!(printed.contains("REPORT.md"), "{printed}");
    let results: PathBuf = root.path().join("results/mnist-smoke");
    let text = std::fs::read_to_string(results.join("REPORT.md")).unwrap();
    assert!(text.contains("Skipped: ss-infogan with 50 labels"), "{text}");
    assert!(text.contains("2 completed, 0 failed"), "{text}");
    let table = std::fs::read_to_string(results.join("tables/main.md")).unwrap();
    assert_eq!(table.lines().count(), 4, "{table}"); // header, rule, two rows
    for figure in ["convergence.png", "convergence.svg", "losses.png", "samples-c1.png", "samples-c2.png"] {
        assert!(results.join("figures").join(figure).is_file(), "{figure}");
    }
    // A second report from the same runs writes the same tables: nothing in it depends on when it ran.
    let first_csv = std::fs::read(results.join("tables/main.csv")).unwrap();
    report(root.path());
    assert_eq!(std::fs::read(results.join("tables/main.csv")).unwrap(), first_csv);

    // Each completed run carries its share of the report and the classifier that judged it.
    let runs_dir = results.join("runs");
    for run in ["infogan-n0-s1", "ss-infogan-n20-s1"] {
        for file in ["sweeps.safetensors", "explorer.safetensors", "final-samples.safetensors"] {
            assert!(runs_dir.join(run).join(file).is_file(), "{run}/{file}");
        }
        let config = std::fs::read_to_string(runs_dir.join(run).join("config.toml")).unwrap();
        assert!(config.contains("classifier_sha256 = \""), "{config}");
        let metrics = std::fs::read_to_string(runs_dir.join(run).join("metrics.csv")).unwrap();
        // The official protocol's numbers at the final evaluation only (the smoke profile evaluates each epoch).
        assert_eq!(metrics.matches("c_err_official").count(), 1, "{metrics}");
        assert_eq!(metrics.matches("q_err_real_official").count(), 1, "{metrics}");
    }

    // The report reads records only: without checkpoints, f32 samples or data it writes the same files.
    let before = report_files(&results);
    for run in ["infogan-n0-s1", "ss-infogan-n20-s1"] {
        std::fs::remove_dir_all(runs_dir.join(run).join("checkpoint")).unwrap();
        std::fs::remove_file(runs_dir.join(run).join("samples.safetensors")).unwrap();
    }
    std::fs::remove_dir_all(root.path().join("data")).unwrap();
    report(root.path());
    assert_eq!(report_files(&results), before);

    // Runs judged by different classifiers are refused, naming both hashes and both runs.
    let config = runs_dir.join("infogan-n0-s1/config.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let at = text.find("classifier_sha256 = \"").unwrap() + "classifier_sha256 = \"".len();
    let judge = text[at..at + 64].to_string();
    std::fs::write(&config, text.replace(&judge, &"0".repeat(64))).unwrap();
    let out = ssinfogan(root.path(), &["report", "--experiment", &experiment(), "--profile", "smoke"]);
    assert!(!out.status.success());
    let error = String::from_utf8_lossy(&out.stderr);
    for part in [judge.clone(), "0".repeat(64), "infogan-n0-s1".into(), "ss-infogan-n20-s1".into()] {
        assert!(error.contains(&part), "`{part}` not in: {error}");
    }
}

/// Every file of a report (tables, figures, REPORT.md, index.html, the runs' grids) and its bytes.
fn report_files(results: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut dirs = vec![results.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                let relative = path.strip_prefix(results).unwrap().to_path_buf();
                let text = relative.to_string_lossy();
                let report = ["tables/", "figures/", "REPORT.md", "index.html"].iter().any(|p| text.starts_with(p))
                    || text.contains("/samples/sweep-");
                if report {
                    files.push((relative, std::fs::read(&path).unwrap()));
                }
            }
        }
    }
    files.sort();
    files
}
