//! Where the workspace is, and how xtask runs cargo and the `ssinfogan` binary.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

/// Set once from -q: builds run with cargo's `--quiet`.
pub(crate) static QUIET: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

/// The workspace root: xtask lives one directory below it.
pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
}

/// Builds the release `ssinfogan` binary with the running cargo and returns its path, or takes the one
/// `SSINFOGAN_BINARY` names (built elsewhere, e.g. on a cluster's login node, or by the tests). With `cuda`, the binary
/// has the `cuda` feature and is built under `<target>/cuda/`: it needs the NVIDIA driver (`libcuda.so.1`) even
/// to start, so it never replaces the CPU binary.
pub(crate) fn build_ssinfogan(cuda: bool) -> anyhow::Result<PathBuf> {
    if let Some(binary) = std::env::var_os("SSINFOGAN_BINARY").filter(|b| !b.is_empty()) {
        let binary = PathBuf::from(binary);
        if !binary.is_file() {
            bail!("SSINFOGAN_BINARY is {}, which is not a file; unset it to build ssinfogan here", binary.display());
        }
        eprintln!("using {} (SSINFOGAN_BINARY), not building", binary.display());
        return Ok(binary);
    }
    let root = workspace_root();
    let mut target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
    if cuda {
        let nvcc = Command::new("nvcc").arg("--version").output();
        if !nvcc.is_ok_and(|o| o.status.success()) {
            bail!(
                "the cuda build needs nvcc and the CUDA headers and libraries: `eval \"$(scripts/cuda-env.sh)\"` \
                 installs them from PyPI into target/cuda-env and sets PATH, CUDA_ROOT, LIBRARY_PATH and \
                 CUDA_COMPUTE_CAP (see README, CUDA)"
            );
        }
        target = target.join("cuda");
    }
    eprintln!("building ssinfogan (release{})…", if cuda { ", cuda" } else { "" });
    let mut command = cargo();
    command.current_dir(&root).args(["build", "--release", "--package", "ssinfogan-cli", "--bin", "ssinfogan"]);
    // Cargo's own progress, unless asked to be quiet: a first build takes minutes.
    if QUIET.get().copied().unwrap_or(false) {
        command.arg("--quiet");
    }
    if cuda {
        command.args(["--features", "cuda"]).arg("--target-dir").arg(&target);
    }
    let status = command.status().context("cannot run cargo")?;
    if !status.success() {
        bail!("building ssinfogan failed ({status})");
    }
    Ok(target.join("release").join(format!("ssinfogan{}", std::env::consts::EXE_SUFFIX)))
}

/// The running cargo, without the variables `cargo run` set for xtask itself: build scripts that watch one
/// (ring's watches `CARGO_MANIFEST_DIR`) would otherwise see a change and rebuild half the dependency tree each
/// time a build alternates between `cargo build` and `cargo xtask`.
pub(crate) fn cargo() -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        let set_by_cargo_run = name.starts_with("CARGO_PKG_")
            || matches!(
                name,
                "CARGO_MANIFEST_DIR"
                    | "CARGO_MANIFEST_PATH"
                    | "CARGO_CRATE_NAME"
                    | "CARGO_BIN_NAME"
                    | "CARGO_PRIMARY_PACKAGE"
            );
        if set_by_cargo_run {
            command.env_remove(name);
        }
    }
    command
}

/// Runs `ssinfogan` with `args` in the workspace root, failing on a non-zero exit.
pub(crate) fn run_ssinfogan(binary: &Path, args: &[String]) -> anyhow::Result<()> {
    let status = Command::new(binary)
        .current_dir(workspace_root())
        .args(args)
        .status()
        .with_context(|| format!("cannot run {}", binary.display()))?;
    if !status.success() {
        bail!("`ssinfogan {}` failed ({status})", args.join(" "));
    }
    Ok(())
}
