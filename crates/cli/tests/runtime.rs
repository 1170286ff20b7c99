//! The process set-up of `ssinfogan_experiment::runtime` as the binary makes it: a command that trains starts
//! itself again once with glibc's huge-page tunable (where the kernel grants huge pages on request), and the
//! programs it runs get the user's environment back, not that tunable.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::write_idx_dir;

/// Trains the smoke profile's 20-label run with a fake `git` first on PATH (`train` runs `git rev-parse HEAD`
/// for the record). The fake records its own GLIBC_TUNABLES, our variable, and whether its parent — the
/// training process — was started with the huge-page tunable. Returns that record and the run's config.toml.
fn train_with_fake_git(root: &Path, seed: &str, tunables: Option<&str>) -> (String, String) {
    let bin = root.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let git = bin.join("git");
    let script = "#!/bin/sh\n\
                  parent=$(tr '\\0' '\\n' < /proc/$PPID/environ | grep -c '^GLIBC_TUNABLES=.*glibc.malloc.hugetlb=1')\n\
                  printf '%s|%s|%s' \"${GLIBC_TUNABLES-unset}\" \"${SSINFOGAN_GLIBC_TUNABLES_BEFORE-unset}\" \
                  \"$parent\" > \"$FAKE_GIT_RECORD\"\n\
                  echo 0123456789abcdef\n";
    std::fs::write(&git, script).unwrap();
    std::fs::set_permissions(&git, std::fs::Permissions::from_mode(0o755)).unwrap();
    let record = root.join(format!("git-{seed}.txt"));
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let experiment = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments/mnist.toml");
    let mut command = Command::new(env!("CARGO_BIN_EXE_ssinfogan"));
    command
        .current_dir(root)
        .args(["train", "--experiment", &experiment.display().to_string(), "--variant", "ss-infogan"])
        .args(["--labels", "20", "--profile", "smoke", "--seed", seed])
        .env("HF_HUB_OFFLINE", "1")
        .env("PATH", path)
        .env("FAKE_GIT_RECORD", &record)
        .env_remove("SSINFOGAN_GLIBC_TUNABLES_BEFORE");
    match tunables {
        Some(t) => command.env("GLIBC_TUNABLES", t),
        None => command.env_remove("GLIBC_TUNABLES"),
    };
    let out = command.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let config =
        std::fs::read_to_string(root.join(format!("results/mnist-smoke/runs/ss-infogan-n20-s{seed}/config.toml")));
    (std::fs::read_to_string(&record).unwrap(), config.unwrap())
}

#[test]
fn the_programs_a_run_starts_get_the_user_s_environment_back() {
    let root = tempfile::tempdir().unwrap();
    write_idx_dir(&root.path().join("data/mnist"), 40, 20);
    let mode = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").unwrap_or_default();
    let restarted = if mode.contains("[madvise]") || mode.contains("[always]") { "1" } else { "0" };

    let (record, config) = train_with_fake_git(root.path(), "1", None);
    assert!(config.contains("git_revision = \"0123456789abcdef\""), "the fake git did not run:\n{config}");
    // Started again with the tunable where the kernel grants huge pages; `git` sees neither it nor our note.
    assert_eq!(record, format!("unset|unset|{restarted}"), "(GLIBC_TUNABLES|our note|parent restarted)");

    // A user's own tunables reach the programs as they were. (Whether the process was started again cannot be
    // read here: glibc rewrites a GLIBC_TUNABLES of several settings in the process image /proc shows.)
    let (record, _) = train_with_fake_git(root.path(), "2", Some("glibc.malloc.check=0"));
    assert!(record.starts_with("glibc.malloc.check=0|unset|"), "{record}");
    // A user who chose the huge-page setting keeps it, and the process is not started again for it.
    let (record, _) = train_with_fake_git(root.path(), "3", Some("glibc.malloc.hugetlb=0"));
    assert_eq!(record, "glibc.malloc.hugetlb=0|unset|0");
}
