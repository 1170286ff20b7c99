//! Shared by the command tests: running the binary offline, and an IDX fixture directory.

use std::path::Path;
use std::process::{Command, Output};

use ssinfogan_datasets::idx::encode;

/// Runs `ssinfogan` in `root`, with the Hub kept off the network whatever the machine can reach.
// Not every test binary runs the command this way (runtime.rs sets its own environment).
#[allow(dead_code)]
pub fn ssinfogan(root: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ssinfogan"))
        .current_dir(root)
        .args(args)
        .env("HF_HUB_OFFLINE", "1")
        .env("HF_HOME", root.join("hf"))
        .output()
        .unwrap()
}

/// The four IDX files of `n_train`/`n_test` images in 10 classes; class k has a bright bar at rows 2k+4..2k+6.
// Each test binary compiles this module; not every one writes IDX files.
#[allow(dead_code)]
pub fn write_idx_dir(dir: &Path, n_train: usize, n_test: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for (prefix, n) in [("train", n_train), ("t10k", n_test)] {
        let pixels: Vec<u8> =
            (0..n * 784).map(|i| if (i % 784) / 28 == 2 * (i / 784 % 10) + 4 { 230 } else { (i % 7) as u8 }).collect();
        let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
        std::fs::write(dir.join(format!("{prefix}-images-idx3-ubyte")), encode(n, Some((28, 28)), &pixels)).unwrap();
        std::fs::write(dir.join(format!("{prefix}-labels-idx1-ubyte")), encode(n, None, &labels)).unwrap();
    }
}
