//! `ssinfogan data` end to end: the line it prints, the record it writes, the errors a user sees.

mod common;

use common::{ssinfogan, write_idx_dir};

#[test]
fn data_prints_one_line_and_records_the_source() {
    let root = tempfile::tempdir().unwrap();
    write_idx_dir(&root.path().join("data/fashion-mnist"), 20, 10);
    let out = ssinfogan(root.path(), &["data", "fashion-mnist"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.starts_with("fashion-mnist: IDX files in "), "{stdout}");
    assert!(stdout.contains("train 20, test 10 (28×28×1 images) — SUBSET, not the full dataset"), "{stdout}");
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.path().join("data/fashion-mnist.source.json")).unwrap())
            .unwrap();
    assert_eq!(record["source"], "local");
    assert_eq!(record["train_size"], 20);
    assert_eq!(record["full_dataset"], false);
    assert_eq!(record["content_sha256"].as_str().unwrap().len(), 64);
}

#[test]
fn data_errors_name_the_problem_and_exit_non_zero() {
    let root = tempfile::tempdir().unwrap();
    let out = ssinfogan(root.path(), &["data", "mnist", "--source", "local"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("error: cannot obtain mnist: local: no directory data/mnist"), "{stderr}");

    let out = ssinfogan(root.path(), &["data", "fashion-mnist", "--source", "npm"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("fashion-mnist has no `npm` source: choose one of local, debian, hub"), "{stderr}");

    let out = ssinfogan(root.path(), &["data", "cifar"]);
    assert_eq!(out.status.code(), Some(2), "clap rejects an unknown dataset");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown dataset `cifar`: choose one of mnist, fashion-mnist")
    );
}
