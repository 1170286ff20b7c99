//! The sweep of an experiment end to end on a small IDX fixture with the `smoke` profile: `ssinfogan plan`
//! lists the runs (and sets aside a label count the data cannot serve), each listed `train` command trains its
//! run, and `ssinfogan report` writes the tables, figures, grids and REPORT.md — twice, identically.

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
        let mut args = vec!["train".to_string()];
        args.extend(run["train_args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
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
}
