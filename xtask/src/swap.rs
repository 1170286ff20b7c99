//! `cargo xtask check-swap <crate>`: proves that a drop-in crate still replaces the one it stands in for. It
//! copies the workspace's tracked files to `target/swap-check/<crate>/`, applies the one-line swap of the
//! workspace `Cargo.toml` there (the same line the README shows), and in one `cargo test` compiles the `ssinfogan`
//! binary's code with it (its unit-test target: every crate that uses the component, compiled against the
//! drop-in's API) and runs the tests that exercise the swapped component through its users. One command, because cargo resolves the dependencies'
//! features per selection of packages: a second command with other packages builds candle and the rest again. The
//! working tree is never edited, so an interrupted check leaves nothing behind.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context};

/// A swap: the workspace dependency it replaces, the line that replaces it, and what must build and pass.
struct Swap {
    name: &'static str,
    dependency: &'static str,
    line: &'static str,
    /// `cargo test` arguments run in the swapped copy.
    test: &'static [&'static str],
}

const SWAPS: &[Swap] = &[Swap {
    name: "losses-lsgan",
    dependency: "ssinfogan-losses",
    line: r#"ssinfogan-losses = { path = "crates/losses-lsgan", package = "ssinfogan-losses-lsgan" }"#,
    // The binary (its unit tests: the experiment's config, training and evaluation all compile against the
    // drop-in's API), the training loop calling the swapped loss (determinism, resume and Q_ss learning must all
    // still hold), and the drop-in's own tests.
    test: &[
        "--package",
        "ssinfogan-cli",
        "--package",
        "ssinfogan-training",
        "--package",
        "ssinfogan-losses-lsgan",
        "--lib",
        "--bin",
        "ssinfogan",
        "--test",
        "train",
        "--test",
        "drop_in",
    ],
}];

#[derive(clap::Args)]
pub struct Args {
    /// The drop-in crate to check (losses-lsgan).
    #[arg(value_parser = SWAPS.iter().map(|s| s.name).collect::<Vec<_>>())]
    name: String,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let swap = SWAPS.iter().find(|s| s.name == args.name).expect("clap checked the name");
    let root = crate::workspace::workspace_root();
    // Absolute: cargo runs in the copy, where a relative target directory would mean a fresh one.
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), |t| root.join(t));
    let copy = target.join("swap-check").join(swap.name);
    if copy.exists() {
        std::fs::remove_dir_all(&copy).with_context(|| format!("cannot clear {}", copy.display()))?;
    }
    copy_tracked_files(&root, &copy)?;

    let manifest = copy.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).with_context(|| format!("cannot read {}", manifest.display()))?;
    let prefix = format!("{} = ", swap.dependency);
    let lines: Vec<&str> = text.lines().collect();
    let Some(at) = lines.iter().position(|l| l.starts_with(&prefix)) else {
        bail!("the workspace Cargo.toml has no `{prefix}…` line to swap");
    };
    let swapped: Vec<&str> = lines.iter().enumerate().map(|(i, l)| if i == at { swap.line } else { *l }).collect();
    std::fs::write(&manifest, swapped.join("\n") + "\n")
        .with_context(|| format!("cannot write {}", manifest.display()))?;
    eprintln!("swapped in {}:\n  {}", manifest.display(), swap.line);

    // The same target directory: registry crates built for the same features are reused. The copy's own crates
    // are built under the names of the working tree's (cargo names a path package by its place in its
    // workspace), so the next build of the working tree compiles those again.
    let status = crate::workspace::cargo()
        .current_dir(&copy)
        .env("CARGO_TARGET_DIR", &target)
        .arg("test")
        .args(swap.test)
        .status()
        .context("cannot run cargo")?;
    if !status.success() {
        bail!("with `{}` swapped in, `cargo test {}` failed ({status})", swap.name, swap.test.join(" "));
    }
    eprintln!("{}: the swapped workspace builds and its tests pass", swap.name);
    Ok(())
}

/// Copies the files git tracks (and untracked ones it does not ignore) from `root` to `to`.
fn copy_tracked_files(root: &Path, to: &Path) -> anyhow::Result<()> {
    let output = Command::new("git")
        .current_dir(root)
        .args(["ls-files", "-z", "--cached", "--others", "--exclude-standard"])
        .output()
        .context("cannot run git: the swap check copies the files git tracks")?;
    if !output.status.success() {
        bail!("`git ls-files` failed in {}: {}", root.display(), String::from_utf8_lossy(&output.stderr));
    }
    for name in output.stdout.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let name = std::str::from_utf8(name).context("a tracked file name is not UTF-8")?;
        let (from, dest) = (root.join(name), to.join(name));
        if !from.is_file() {
            continue; // deleted in the working tree
        }
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::copy(&from, &dest).with_context(|| format!("cannot copy {} to {}", from.display(), dest.display()))?;
    }
    Ok(())
}
