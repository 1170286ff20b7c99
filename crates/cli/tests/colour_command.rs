//! The 32×32 colour path end to end through the binary, on fixtures in the datasets' real formats: a CIFAR-10
//! smoke run with its report and colour sample grid, a CelebA smoke run whose code follows the attribute the
//! profile names, and the message a missing dataset gets.

mod common;

use std::path::{Path, PathBuf};

use common::ssinfogan;

fn experiment(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../experiments/{name}.toml")).display().to_string()
}

/// The CIFAR-10 binary version: `data_batch_1..5.bin` with `per_batch` records each and `test_batch.bin` with
/// `n_test`; a record is a label byte and 1024 R, 1024 G, 1024 B bytes. Class k is a colour of its own.
fn write_cifar_batches(dir: &Path, per_batch: usize, n_test: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let record = |i: usize| {
        let class = (i % 10) as u8;
        let mut bytes = vec![class];
        for channel in 0..3u8 {
            bytes.extend(
                (0..1024).map(|p| class.wrapping_mul(23).wrapping_add(channel * 80).wrapping_add((p % 9) as u8)),
            );
        }
        bytes
    };
    for batch in 1..=5 {
        let bytes: Vec<u8> = (0..per_batch).flat_map(|i| record(i + batch)).collect();
        std::fs::write(dir.join(format!("data_batch_{batch}.bin")), bytes).unwrap();
    }
    std::fs::write(dir.join("test_batch.bin"), (0..n_test).flat_map(record).collect::<Vec<u8>>()).unwrap();
}

fn train(root: &Path, experiment: &str, profile: &str, labels: &str) -> std::process::Output {
    let args =
        ["train", "--experiment", experiment, "--profile", profile, "--variant", "ss-infogan", "--labels", labels];
    ssinfogan(root, &args)
}

#[test]
fn a_cifar10_smoke_run_trains_the_colour_networks_and_reports_colour_grids() {
    let root = tempfile::tempdir().unwrap();
    write_cifar_batches(&root.path().join("data/cifar10/cifar-10-batches-bin"), 8, 20);
    let out = train(root.path(), &experiment("cifar10"), "smoke", "20");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let run = root.path().join("results/cifar10-smoke/runs/ss-infogan-n20-s1");
    let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(config.contains("kind = \"colour-32\""), "{config}");
    assert!(config.contains("train_size = 40"), "{config}");
    let samples = candle_core::safetensors::load(run.join("samples.safetensors"), &candle_core::Device::Cpu).unwrap();
    assert_eq!(samples["images"].dims(), &[200, 3, 32, 32]); // 20 per code value × 10, RGB
    let classifier: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root.path().join("results/cifar10-smoke/classifier/classifier.json")).unwrap(),
    )
    .unwrap();
    assert!((0.0..=1.0).contains(&classifier["test_accuracy"].as_f64().unwrap()), "{classifier}");

    let report = ssinfogan(root.path(), &["report", "--experiment", &experiment("cifar10"), "--profile", "smoke"]);
    assert!(report.status.success(), "{}", String::from_utf8_lossy(&report.stderr));
    let grid = image::open(run.join("samples/sweep-c1.png")).unwrap().to_rgb8();
    // Rows = the 10 code values, columns = the continuous code swept, each a 32×32 image.
    assert_eq!(grid.height(), 10 * 32);
    assert!(grid.pixels().any(|p| p[0] != p[1] || p[1] != p[2]), "the grid has no colour");
    assert!(root.path().join("results/cifar10-smoke/tables/main.md").is_file());
}

/// `n` aligned-face JPEGs of 178×218 (CelebA's size), left half dark and right half light, and the attribute
/// list with Smiling = 1 for even faces and Male = 1 for faces divisible by 3, with CelebA's ragged spacing.
fn write_celeba(dir: &Path, n: usize) -> PathBuf {
    let images = dir.join("img_align_celeba");
    std::fs::create_dir_all(&images).unwrap();
    let names = ssinfogan_datasets::sources::celeba::ATTRIBUTES;
    let mut attributes = format!("{n}\n{}\n", names.join(" "));
    for i in 1..=n {
        let face = image::RgbImage::from_fn(178, 218, |x, _| {
            if x < 89 {
                image::Rgb([40, (i * 9 % 200) as u8, 60])
            } else {
                image::Rgb([220, 200, 180])
            }
        });
        face.save(images.join(format!("{i:06}.jpg"))).unwrap();
        let values: Vec<&str> = names
            .iter()
            .map(|&name| match name {
                "Smiling" if i % 2 == 0 => " 1",
                "Male" if i % 3 == 0 => " 1",
                _ => "-1",
            })
            .collect();
        attributes.push_str(&format!("{i:06}.jpg {}\n", values.join(" ")));
    }
    std::fs::write(dir.join("list_attr_celeba.txt"), attributes).unwrap();
    // Without the official partition's 202,599 faces, a partition file puts the last 10 in test.
    let partition: String = (1..=n).map(|i| format!("{i:06}.jpg {}\n", if i > n - 10 { 2 } else { 0 })).collect();
    std::fs::write(dir.join("list_eval_partition.txt"), partition).unwrap();
    dir.to_path_buf()
}

#[test]
fn a_celeba_smoke_run_follows_smiling_and_the_data_command_reads_any_attribute() {
    let root = tempfile::tempdir().unwrap();
    write_celeba(&root.path().join("data/celeba"), 40);
    let out = train(root.path(), &experiment("celeba"), "smoke", "20");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let run = root.path().join("results/celeba-smoke/runs/ss-infogan-n20-s1");
    let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(config.contains("label = \"Smiling\""), "{config}");
    assert!(config.contains("train_size = 30"), "{config}");
    let samples = candle_core::safetensors::load(run.join("samples.safetensors"), &candle_core::Device::Cpu).unwrap();
    assert_eq!(samples["images"].dims(), &[40, 3, 32, 32]); // 20 per value of the 2-way code

    // `data` reads the same files for any attribute named (the `male` profile's, here).
    let male = ssinfogan(root.path(), &["data", "celeba", "--label", "Male"]);
    assert!(male.status.success(), "{}", String::from_utf8_lossy(&male.stderr));
    assert!(String::from_utf8_lossy(&male.stdout).contains("label Male"), "{}", String::from_utf8_lossy(&male.stdout));
    // From the experiment: the `male` profile's attribute.
    let celeba = experiment("celeba");
    let profile = ssinfogan(root.path(), &["data", "celeba", "--experiment", &celeba, "--profile", "male"]);
    assert!(profile.status.success(), "{}", String::from_utf8_lossy(&profile.stderr));
    assert!(String::from_utf8_lossy(&profile.stdout).contains("label Male"));
    let wrong = ssinfogan(root.path(), &["data", "celeba", "--label", "smiling"]);
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("no attribute `smiling`"));
}

#[test]
fn a_missing_colour_dataset_says_where_to_get_it() {
    let root = tempfile::tempdir().unwrap();
    for (dataset, fix) in
        [("svhn", "ufldl-stanford/svhn"), ("cifar10", "cifar-10-binary.tar.gz"), ("celeba", "img_align_celeba")]
    {
        let out = ssinfogan(root.path(), &["data", dataset]);
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(&format!("no source of {dataset} worked")) && stderr.contains(fix), "{stderr}");
    }
}
