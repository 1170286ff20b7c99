//! The committed reference reproduction (`reference/mnist/`): its report, rebuilt from its run records alone (no
//! checkpoint, no data, no device), is the report committed beside them, byte for byte.

mod common;

use std::path::{Path, PathBuf};

use common::ssinfogan;

/// What a run leaves that the reference does not keep (`.gitignore`), and what the report writes.
fn kept_record(relative: &str) -> bool {
    let ignored =
        ["/checkpoint/", "/samples/progress/", "progress.gif", "samples.safetensors", "run.lock", "train.log", ".tmp"];
    !ignored.iter().any(|i| relative.contains(i) && !relative.ends_with("final-samples.safetensors"))
        && !is_report(relative)
}

fn is_report(relative: &str) -> bool {
    ["tables/", "figures/", "REPORT.md", "index.html"].iter().any(|p| relative.starts_with(p))
        || relative.contains("/samples/sweep-")
}

/// Every file under `dir`, relative to it, in a fixed order.
fn files(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(at) = dirs.pop() {
        for entry in std::fs::read_dir(&at).unwrap_or_else(|e| panic!("cannot read {}: {e}", at.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                found.push(path.strip_prefix(dir).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    found.sort();
    found
}

/// The files of `dir` that git tracks, relative to it: what a fresh clone holds, whatever else this machine has
/// there (a run the sweep is training or has just completed). Without git (an unpacked source archive), every
/// file under `dir`.
fn committed_files(dir: &Path) -> Vec<String> {
    let listed = std::process::Command::new("git").arg("-C").arg(dir).args(["ls-files", "-z", "."]).output();
    match listed {
        Ok(out) if out.status.success() && !out.stdout.is_empty() => {
            let mut found: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .split('\0')
                .filter(|f| !f.is_empty() && dir.join(f).is_file())
                .map(str::to_string)
                .collect();
            found.sort();
            found
        }
        _ => files(dir),
    }
}

#[test]
fn the_reference_report_is_rebuilt_from_its_records_alone() {
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let reference = workspace.join("reference/mnist");
    let committed = committed_files(&reference);
    assert!(
        committed.iter().any(|f| f.ends_with("summary.json")),
        "{} holds no completed run: the reference reproduction is missing",
        reference.display()
    );

    let root = tempfile::tempdir().unwrap();
    let copy = root.path().join("reference/mnist");
    for file in committed.iter().filter(|f| kept_record(f)) {
        let to = copy.join(file);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(reference.join(file), &to).unwrap();
    }
    let experiment = workspace.join("experiments/mnist.toml").display().to_string();
    // No data directory and no checkpoint in the copy: the report must come from the records.
    let out = ssinfogan(root.path(), &["report", "--experiment", &experiment, "--results", "reference"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let rebuilt: Vec<String> = files(&copy).into_iter().filter(|f| is_report(f)).collect();
    let expected: Vec<String> = committed.iter().filter(|f| is_report(f)).cloned().collect();
    assert_eq!(rebuilt, expected, "the report's files differ from those committed in {}", reference.display());
    for file in &expected {
        let (a, b) = (std::fs::read(reference.join(file)).unwrap(), std::fs::read(copy.join(file)).unwrap());
        assert!(
            a == b,
            "{file} rebuilt from the records differs from the committed one: rebuild the reference report with \
             `cargo xtask report mnist --results reference` and commit it"
        );
    }
}

/// The README's results table is the reference's `tables/main-ci95.md`, and its claims' verdicts REPORT.md's, as
/// committed.
#[test]
fn the_readme_shows_the_reference_table() {
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(workspace.join("README.md")).unwrap();
    let table = std::fs::read_to_string(workspace.join("reference/mnist/tables/main-ci95.md")).unwrap();
    let (_, rest) = readme.split_once("<!-- main-ci95 -->\n").expect("README.md has no <!-- main-ci95 --> block");
    let (shown, _) = rest.split_once("<!-- /main-ci95 -->").expect("README.md has no <!-- /main-ci95 --> end");
    assert!(
        shown == table,
        "README.md's results table is not reference/mnist/tables/main-ci95.md: run scripts/reference-commit.sh"
    );
    // And the claims' verdicts are REPORT.md's.
    let report = std::fs::read_to_string(workspace.join("reference/mnist/REPORT.md")).unwrap();
    let (_, rest) = report.split_once("## The paper's claims\n\n").expect("REPORT.md has no claims");
    let (claims, _) = rest.split_once("\n\n").unwrap();
    let (_, rest) = readme.split_once("<!-- claims -->\n").expect("README.md has no <!-- claims --> block");
    let (shown, _) = rest.split_once("<!-- /claims -->").expect("README.md has no <!-- /claims --> end");
    assert!(shown == format!("{claims}\n"), "README.md's claims are not REPORT.md's: run scripts/reference-commit.sh");
}
