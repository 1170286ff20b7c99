//! SVHN, CIFAR-10 and CelebA on fixtures in their real formats: parquet shards in the Hub layout (locally and
//! in a fake Hub cache), CIFAR-10's binary batches, CelebA's JPEGs with its attribute and partition lists.
//! Each test checks exact labels and pixels at known places, so a transposed plane or a wrong crop fails.

mod common;

use std::path::Path;

use candle_core::Device;
use common::{colour_hwc, colour_value, face_jpeg, hub_snapshot, png_rgb, write_image_parquet, ColumnValues};
use ssinfogan_datasets::sources::celeba::ATTRIBUTES;
use ssinfogan_datasets::sources::hub::HubSettings;
use ssinfogan_datasets::{load, DataError, Dataset, DatasetName, Provenance, SourceKind, SourceRequest};

/// A request confined to `root` (data under `root/data`, Hub cache under `root/hub`, no network).
fn request(root: &Path, label: &str) -> SourceRequest {
    SourceRequest {
        source: None,
        data_dir: None,
        data_root: root.join("data"),
        hub: HubSettings { endpoint: "http://127.0.0.1:1".into(), cache_dir: root.join("hub"), offline: true },
        debian_dir: Some(root.join("no-debian-package")),
        label: label.into(),
    }
}

fn from_source(root: &Path, source: SourceKind, label: &str) -> SourceRequest {
    SourceRequest { source: Some(source), ..request(root, label) }
}

fn load_err(dataset: DatasetName, request: &SourceRequest) -> String {
    load(dataset, request).expect_err("loading must fail").to_string()
}

/// The `(train, test)` shards of colour fixtures: images `first..first + n` with labels `index % 10`.
fn colour_shard(path: &Path, image_column: &str, first: usize, n: usize, label_of: impl Fn(usize) -> i64) {
    let images: Vec<Vec<u8>> = (first..first + n).map(|i| png_rgb(&colour_hwc(i), 32, 32)).collect();
    let labels: Vec<i64> = (first..first + n).map(label_of).collect();
    write_image_parquet(path, image_column, &images, &[("label", ColumnValues::Int64(labels))]);
}

/// Checks train image `i` of `dataset` is fixture colour image `fixture`, at three places, through the batch
/// tensor (so the NCHW shape is checked too).
fn assert_colour_image(dataset: &Dataset, i: usize, fixture: usize) {
    let batch = dataset.images(&dataset.train, &[i], &Device::Cpu).unwrap();
    assert_eq!(batch.dims(), &[1, 3, 32, 32]);
    let values = batch.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    for (c, y, x) in [(0, 0, 0), (1, 5, 7), (2, 31, 30)] {
        assert_eq!(values[c * 1024 + y * 32 + x], colour_value(fixture, c, y, x), "channel {c} at ({y}, {x})");
    }
}

#[test]
#[cfg_attr(not(feature = "hub"), ignore = "reads or probes the Hub, which this build leaves out")]
fn svhn_reads_a_local_copy_of_the_hub_parquet_and_the_hub_cache_alike() {
    let root = tempfile::tempdir().unwrap();
    // Two train shards, as `huggingface-cli download ... --local-dir data/svhn` leaves them.
    let local = root.path().join("data/svhn/cropped_digits");
    colour_shard(&local.join("train/0000.parquet"), "image", 0, 4, |i| (i % 10) as i64);
    colour_shard(&local.join("train/0001.parquet"), "image", 4, 3, |i| (i % 10) as i64);
    colour_shard(&local.join("test/0000.parquet"), "image", 100, 2, |i| (i % 10) as i64);
    let dataset = load(DatasetName::Svhn, &request(root.path(), "class")).unwrap();
    assert_eq!(dataset.provenance.source, SourceKind::Local);
    assert_eq!((dataset.train.len(), dataset.test.len()), (7, 2));
    assert_eq!(dataset.train.labels, vec![0, 1, 2, 3, 4, 5, 6]);
    assert_eq!(dataset.test.labels, vec![0, 1]);
    assert_colour_image(&dataset, 0, 0);
    assert_colour_image(&dataset, 5, 5);
    assert!(!dataset.provenance.full_dataset);
    assert!(dataset.provenance.origin.starts_with("parquet files (Hub layout) in"), "{}", dataset.provenance.origin);

    // The same shards in the Hub cache give the same data.
    let snapshot = hub_snapshot(&root.path().join("hub"), "ufldl-stanford/svhn");
    for shard in ["train/0000.parquet", "train/0001.parquet", "test/0000.parquet"] {
        let to = snapshot.join("cropped_digits").join(shard);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(local.join(shard), to).unwrap();
    }
    let hub = load(DatasetName::Svhn, &from_source(root.path(), SourceKind::Hub, "class")).unwrap();
    assert_eq!(hub.provenance.origin, "Hugging Face Hub ufldl-stanford/svhn (refs/convert/parquet)");
    assert_eq!(hub.provenance.content_sha256, dataset.provenance.content_sha256);
}

#[test]
fn svhn_label_10_is_refused_as_the_original_zero() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("data/svhn");
    colour_shard(&dir.join("train/0000.parquet"), "image", 0, 3, |i| if i == 2 { 10 } else { 1 });
    colour_shard(&dir.join("test/0000.parquet"), "image", 3, 2, |_| 1);
    let message = load_err(DatasetName::Svhn, &request(root.path(), "class"));
    assert!(message.contains("train/0000.parquet: row 2: label 10 is outside the 10 classes 0..9"), "{message}");
    assert!(message.contains("10 is how the original SVHN .mat files label the digit 0"), "{message}");
}

#[test]
fn svhn_without_a_test_directory_says_so_and_an_empty_one_is_absent() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("data/svhn");
    std::fs::create_dir_all(&dir).unwrap();
    let error = load(DatasetName::Svhn, &from_source(root.path(), SourceKind::Local, "class")).unwrap_err();
    assert!(error.is_unavailable(), "{error}");
    colour_shard(&dir.join("train/0000.parquet"), "image", 0, 2, |_| 1);
    let message = load_err(DatasetName::Svhn, &request(root.path(), "class"));
    assert!(message.contains("has no test/ directory of parquet files"), "{message}");
}

/// A CIFAR-10 record: the label, then 1,024 red, 1,024 green and 1,024 blue bytes.
fn cifar_record(label: u8, seed: usize) -> Vec<u8> {
    let mut record = vec![label];
    record.extend((0..3072).map(|j| ((seed * 13 + j * 7) % 256) as u8));
    record
}

/// Writes the six batch files into `dir`, `per_file` records each; record `r` of file `f` (test is file 5)
/// has label `(3f + r) % 10` and seed `100f + r`.
fn write_cifar_batches(dir: &Path, per_file: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let names = ["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"];
    for (f, name) in names.iter().chain(&["test_batch.bin"]).enumerate() {
        let bytes: Vec<u8> = (0..per_file).flat_map(|r| cifar_record(((3 * f + r) % 10) as u8, 100 * f + r)).collect();
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

#[test]
fn cifar_binary_batches_are_read_in_order_and_land_chw() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("data/cifar10/cifar-10-batches-bin");
    write_cifar_batches(&dir, 3);
    // Mark the second train image: red 11, green 22, blue 33 at row 1, column 2 (byte 1 + c·1024 + 1·32 + 2).
    let mut batch = std::fs::read(dir.join("data_batch_1.bin")).unwrap();
    for (c, value) in [11u8, 22, 33].into_iter().enumerate() {
        batch[3073 + 1 + c * 1024 + 34] = value;
    }
    std::fs::write(dir.join("data_batch_1.bin"), batch).unwrap();

    let dataset = load(DatasetName::Cifar10, &request(root.path(), "class")).unwrap();
    assert_eq!((dataset.train.len(), dataset.test.len()), (15, 3));
    assert_eq!(dataset.train.labels, vec![0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 3, 4]);
    assert_eq!(dataset.test.labels, vec![5, 6, 7]);
    let values = dataset.images(&dataset.train, &[1], &Device::Cpu).unwrap();
    assert_eq!(values.dims(), &[1, 3, 32, 32]);
    let values = values.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_eq!([values[34], values[1024 + 34], values[2048 + 34]], [11.0 / 255.0, 22.0 / 255.0, 33.0 / 255.0]);
    // Elsewhere the bytes pass through unchanged: train image 7 is file 2's record 1 (seed 201).
    let expected = f32::from(cifar_record(0, 201)[1 + 2048 + 31 * 32 + 5]) / 255.0;
    assert_eq!(dataset.train.images[7 * 3072 + 2048 + 31 * 32 + 5], expected);
    assert!(dataset.provenance.origin.starts_with("CIFAR-10 binary batches in"));

    // The files may also lie directly in data/cifar10/.
    let flat = root.path().join("flat");
    write_cifar_batches(&flat, 3);
    let flat = load(DatasetName::Cifar10, &SourceRequest { data_dir: Some(flat), ..request(root.path(), "class") });
    assert_eq!(flat.unwrap().train.len(), 15);
}

#[test]
fn cifar_binary_errors_name_the_file_and_the_fix() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("data/cifar10");
    let error = load(DatasetName::Cifar10, &from_source(root.path(), SourceKind::Local, "class")).unwrap_err();
    assert!(error.is_unavailable() && error.to_string().contains("no directory"), "{error}");

    write_cifar_batches(&dir, 3);
    let bytes = std::fs::read(dir.join("data_batch_3.bin")).unwrap();
    std::fs::write(dir.join("data_batch_3.bin"), &bytes[..bytes.len() - 100]).unwrap();
    let message = load_err(DatasetName::Cifar10, &request(root.path(), "class"));
    assert!(message.contains("data_batch_3.bin: 9119 bytes are not a whole number of 3073-byte records"), "{message}");
    assert!(message.contains("2 records and 2973 bytes left over"), "{message}");

    write_cifar_batches(&dir, 3);
    let mut bytes = std::fs::read(dir.join("test_batch.bin")).unwrap();
    bytes[3073] = 11;
    std::fs::write(dir.join("test_batch.bin"), bytes).unwrap();
    let message = load_err(DatasetName::Cifar10, &request(root.path(), "class"));
    assert!(message.contains("test_batch.bin: record 1 has label 11, but CIFAR-10's are 0–9"), "{message}");

    std::fs::remove_file(dir.join("test_batch.bin")).unwrap();
    let message = load_err(DatasetName::Cifar10, &request(root.path(), "class"));
    assert!(message.contains("incomplete CIFAR-10 binary directory: missing test_batch.bin;"), "{message}");
}

#[test]
#[cfg_attr(not(feature = "hub"), ignore = "reads or probes the Hub, which this build leaves out")]
fn cifar_parquet_from_the_hub_reads_the_img_column() {
    let root = tempfile::tempdir().unwrap();
    let snapshot = hub_snapshot(&root.path().join("hub"), "uoft-cs/cifar10");
    colour_shard(&snapshot.join("plain_text/train/0000.parquet"), "img", 0, 5, |i| (9 - i % 10) as i64);
    colour_shard(&snapshot.join("plain_text/test/0000.parquet"), "img", 50, 2, |i| (i % 10) as i64);
    let dataset = load(DatasetName::Cifar10, &request(root.path(), "class")).unwrap();
    assert_eq!(dataset.provenance.source, SourceKind::Hub);
    assert_eq!(dataset.train.labels, vec![9, 8, 7, 6, 5]);
    assert_eq!(dataset.test.labels, vec![0, 1]);
    assert_colour_image(&dataset, 3, 3);

    // A file whose image column is `image` is not CIFAR-10's conversion: the error lists the columns.
    colour_shard(&snapshot.join("plain_text/test/0000.parquet"), "image", 50, 2, |_| 0);
    let message = load_err(DatasetName::Cifar10, &request(root.path(), "class"));
    assert!(message.contains("test/0000.parquet: row 0: no column `img` (columns: image, label)"), "{message}");
}

/// The attribute values of fixture face `number`: attribute `a` is present when `(number + a)` is odd, except
/// Smiling (column 31), which is `smiling`.
fn attribute_values(number: usize, smiling: bool) -> Vec<&'static str> {
    (0..40)
        .map(|a| match a {
            31 if smiling => "1",
            31 => "-1",
            _ if (number + a) % 2 == 1 => "1",
            _ => "-1",
        })
        .collect()
}

/// Fixture faces: (file number, partition by number, Smiling). 162771 is a validation face and gets no
/// JPEG: it must not be read.
const FACES: [(usize, bool); 5] = [(1, true), (2, false), (162_771, true), (182_638, false), (202_599, true)];

/// Writes `data/celeba/` with the faces of [`FACES`]: a JPEG each (blue level 40 + the face's index), and an
/// attribute list spaced as the real one is (runs of spaces, a trailing space on the names line).
fn write_celeba(dir: &Path) {
    std::fs::create_dir_all(dir.join("img_align_celeba")).unwrap();
    let mut text = format!("{}\n{} \n", FACES.len(), ATTRIBUTES.join(" "));
    for (k, &(number, smiling)) in FACES.iter().enumerate() {
        let name = format!("{number:06}.jpg");
        if number != 162_771 {
            std::fs::write(dir.join("img_align_celeba").join(&name), face_jpeg(40 + k as u8)).unwrap();
        }
        let values: Vec<String> = attribute_values(number, smiling).iter().map(|v| format!("{v:>2}")).collect();
        text += &format!("{name} {}\n", values.join("  "));
    }
    std::fs::write(dir.join("list_attr_celeba.txt"), text).unwrap();
}

/// The 32×32 face's value at (channel, y, x), 0–255.
fn face_level(dataset: &Dataset, test: bool, i: usize, channel: usize, y: usize, x: usize) -> f32 {
    let split = if test { &dataset.test } else { &dataset.train };
    split.images[i * 3072 + channel * 1024 + y * 32 + x] * 255.0
}

/// Where output pixel `o` of the 108-pixel crop starting at `start` samples from: the crop is shrunk by
/// 108/32 = 3.375, output pixel centres fall at (o + 0.5)·3.375 − 0.5 in the crop, and a linear ramp averaged
/// with symmetric weights keeps its centre value.
fn ramp_at(start: f32, o: usize) -> f32 {
    start + (o as f32 + 0.5) * 3.375 - 0.5
}

fn assert_near(actual: f32, expected: f32, what: &str) {
    // JPEG at quality 95 with 4:2:0 chroma changes a smooth ramp by a few levels at most.
    assert!((actual - expected).abs() <= 4.0, "{what}: {actual} is not within 4 of {expected}");
}

#[test]
fn celeba_local_faces_are_cropped_resized_and_labelled_by_the_chosen_attribute() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("data/celeba");
    write_celeba(&dir);

    // Without list_eval_partition.txt the partition follows the file number.
    let dataset = load(DatasetName::CelebA, &request(root.path(), "Smiling")).unwrap();
    assert_eq!(dataset.image, ssinfogan_core::ImageSpec::COLOUR_32);
    assert_eq!(dataset.num_classes, 2);
    assert_eq!(dataset.train.labels, vec![1, 0]);
    assert_eq!(dataset.test.labels, vec![0, 1]);
    // The 108×108 crop of a 178×218 face starts at column 35, row 55: red (the column) and green (the row)
    // say where each output pixel came from. Without the crop, red at column 4 would be about 24, not 50.
    for (o, what) in [(4, "column 4"), (27, "column 27")] {
        assert_near(face_level(&dataset, false, 0, 0, 16, o), ramp_at(35.0, o), &format!("red at {what}"));
        assert_near(face_level(&dataset, false, 0, 1, o, 16), ramp_at(55.0, o), &format!("green at row {o}"));
    }
    // Blue tells the faces apart: test face 1 is FACES[4], blue 44.
    assert_near(face_level(&dataset, true, 1, 2, 10, 10), 44.0, "blue of 202599.jpg");
    assert_eq!(dataset.provenance.label, "Smiling");
    assert!(dataset.provenance.summary_line().starts_with("celeba (label Smiling): CelebA aligned JPEGs"));

    // Another attribute, another label: 5_o_Clock_Shadow (column 0) is present for odd file numbers.
    let shadow = load(DatasetName::CelebA, &request(root.path(), "5_o_Clock_Shadow")).unwrap();
    assert_eq!(shadow.train.labels, vec![1, 0]);
    assert_eq!(shadow.test.labels, vec![0, 1]);
    assert_eq!(shadow.train.images, dataset.train.images);

    // With list_eval_partition.txt, the file decides: 000002.jpg moves to test.
    std::fs::write(
        dir.join("list_eval_partition.txt"),
        "000001.jpg 0\n000002.jpg 2\n162771.jpg 1\n182638.jpg 2\n202599.jpg 2\n",
    )
    .unwrap();
    let dataset = load(DatasetName::CelebA, &request(root.path(), "Smiling")).unwrap();
    assert_eq!(dataset.train.labels, vec![1]);
    assert_eq!(dataset.test.labels, vec![0, 0, 1]);
    assert_near(face_level(&dataset, true, 0, 2, 10, 10), 41.0, "blue of 000002.jpg");
}

#[test]
fn celeba_labels_must_be_attributes_and_other_datasets_have_only_class() {
    let root = tempfile::tempdir().unwrap();
    write_celeba(&root.path().join("data/celeba"));
    let message = load_err(DatasetName::CelebA, &request(root.path(), "Smile"));
    assert!(message.starts_with("celeba has no attribute `Smile`: choose one of 5_o_Clock_Shadow, Arched_Eyebrows"));
    assert!(message.contains("Wearing_Necktie, Young (spelled as in list_attr_celeba.txt)"), "{message}");
    let message = load_err(DatasetName::CelebA, &request(root.path(), "class"));
    assert!(
        message.contains("celeba has no class label: name one of its 40 binary attributes as the label, e.g. Smiling")
    );
    let message = load_err(DatasetName::Svhn, &request(root.path(), "Smiling"));
    assert_eq!(message, "svhn has only the label `class` (its 10 classes), not `Smiling`");
    assert!(matches!(load(DatasetName::Mnist, &request(root.path(), "Male")), Err(DataError::Invalid(_))));
}

#[test]
fn celeba_attribute_list_errors_name_the_line_and_the_value() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("data/celeba");
    write_celeba(&dir);
    let path = dir.join("list_attr_celeba.txt");
    let good = std::fs::read_to_string(&path).unwrap();

    // Line 4 is 000002.jpg; its Smiling value -1 becomes 2.
    let mut lines: Vec<String> = good.lines().map(String::from).collect();
    let mut values: Vec<&str> = lines[3].split_whitespace().collect();
    values[32] = "2";
    lines[3] = values.join(" ");
    std::fs::write(&path, lines.join("\n")).unwrap();
    let message = load_err(DatasetName::CelebA, &request(root.path(), "Male"));
    assert!(
        message.contains("list_attr_celeba.txt: line 4: `000002.jpg` has value `2` for Smiling; values are 1 or -1")
    );

    std::fs::write(&path, good.replacen("5\n", "6\n", 1)).unwrap();
    let message = load_err(DatasetName::CelebA, &request(root.path(), "Male"));
    assert!(message.contains("line 1 says 6 images but 5 rows follow"), "{message}");

    std::fs::write(&path, &good).unwrap();
    std::fs::remove_file(dir.join("img_align_celeba/182638.jpg")).unwrap();
    let message = load_err(DatasetName::CelebA, &request(root.path(), "Male"));
    assert!(message.contains("182638.jpg: listed in list_attr_celeba.txt line 6 but missing"), "{message}");

    std::fs::remove_file(&path).unwrap();
    let message = load_err(DatasetName::CelebA, &request(root.path(), "Male"));
    assert!(message.contains("incomplete CelebA directory: missing list_attr_celeba.txt"), "{message}");
    std::fs::remove_dir_all(&dir).unwrap();
    let message = load_err(DatasetName::CelebA, &request(root.path(), "Male"));
    assert!(message.starts_with("no source of celeba worked:"), "{message}");
    assert!(message.contains("img_align_celeba.zip, list_attr_celeba.txt and list_eval_partition.txt"), "{message}");
}

#[test]
#[cfg_attr(not(feature = "hub"), ignore = "reads or probes the Hub, which this build leaves out")]
fn celeba_parquet_from_the_hub_reads_a_boolean_attribute_and_crops_the_faces() {
    let root = tempfile::tempdir().unwrap();
    let snapshot = hub_snapshot(&root.path().join("hub"), "flwrlabs/celeba");
    for (split, blues, smiling) in
        [("train", vec![10u8, 11, 12], vec![true, false, true]), ("test", vec![20], vec![false])]
    {
        let faces: Vec<Vec<u8>> = blues.iter().map(|&b| face_jpeg(b)).collect();
        let n = faces.len();
        let male: Vec<bool> = smiling.iter().map(|s| !s).collect();
        write_image_parquet(
            &snapshot.join(format!("img_align+identity+attr/{split}/0000.parquet")),
            "image",
            &faces,
            &[
                ("celeb_id", ColumnValues::Int64(vec![7; n])),
                ("5_o_Clock_Shadow", ColumnValues::Bool(vec![false; n])),
                ("Male", ColumnValues::Bool(male)),
                ("Smiling", ColumnValues::Bool(smiling)),
            ],
        );
    }
    let dataset = load(DatasetName::CelebA, &request(root.path(), "Smiling")).unwrap();
    assert_eq!(dataset.provenance.source, SourceKind::Hub);
    assert_eq!(dataset.train.labels, vec![1, 0, 1]);
    assert_eq!(dataset.test.labels, vec![0]);
    assert_near(face_level(&dataset, false, 0, 0, 16, 4), ramp_at(35.0, 4), "red at column 4");
    assert_near(face_level(&dataset, false, 2, 1, 27, 16), ramp_at(55.0, 27), "green at row 27");
    assert_near(face_level(&dataset, true, 0, 2, 5, 5), 20.0, "blue of the test face");
    let male = load(DatasetName::CelebA, &request(root.path(), "Male")).unwrap();
    assert_eq!(male.train.labels, vec![0, 1, 0]);
    // An attribute the file lacks is named with the columns it has.
    let message = load_err(DatasetName::CelebA, &request(root.path(), "Young"));
    assert!(message.contains("no column `Young` (columns: image, celeb_id, 5_o_Clock_Shadow, Male, Smiling)"));
}

#[test]
fn a_record_without_a_label_field_reads_as_class() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("data/cifar10");
    write_cifar_batches(&dir, 1);
    let dataset = load(DatasetName::Cifar10, &request(root.path(), "class")).unwrap();
    assert!(!dataset.provenance.summary_line().contains("label"));
    let path = dataset.provenance.write(&root.path().join("data")).unwrap();
    let mut json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(json["label"], "class");
    assert_eq!(json["dataset"], "cifar10");
    json.as_object_mut().unwrap().remove("label");
    std::fs::write(&path, json.to_string()).unwrap();
    assert_eq!(Provenance::read(&path).unwrap(), dataset.provenance);
}
