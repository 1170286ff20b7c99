//! IDX parsing: round trips, and every kind of damage a download can suffer.

mod common;

use common::{gzip, idx_pair, image_bytes, SIDE};
use ssinfogan_datasets::idx;

fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn error_of(result: Result<impl std::fmt::Debug, ssinfogan_datasets::DataError>) -> String {
    result.expect_err("the damaged file must be rejected").to_string()
}

#[test]
fn raw_and_gzip_files_read_the_same_images_and_labels() {
    let dir = tempfile::tempdir().unwrap();
    let (images, labels) = idx_pair(12);
    let raw = idx::read_images(&write(&dir, "train-images-idx3-ubyte", &images)).unwrap();
    let gz = idx::read_images(&write(&dir, "train-images-idx3-ubyte.gz", &gzip(&images))).unwrap();
    assert_eq!(raw, gz);
    assert_eq!((raw.count, raw.rows, raw.cols), (12, SIDE, SIDE));
    assert_eq!(&raw.pixels[5 * SIDE * SIDE..6 * SIDE * SIDE], image_bytes(5).as_slice());
    let labels = idx::read_labels(&write(&dir, "labels.gz", &gzip(&labels))).unwrap();
    assert_eq!(labels, vec![0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]);
}

#[test]
fn wrong_magic_number_is_rejected_with_the_file_name() {
    let dir = tempfile::tempdir().unwrap();
    let (mut images, _) = idx_pair(2);
    images[2] = 0x0d; // float type code instead of unsigned byte
    let path = write(&dir, "bad-magic-idx3-ubyte", &images);
    let message = error_of(idx::read_images(&path));
    assert!(message.contains("bad-magic-idx3-ubyte"), "{message}");
    assert!(message.contains("magic number 0x00000d03, expected 0x00000803"), "{message}");
}

#[test]
fn truncated_data_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let (images, _) = idx_pair(3);
    let path = write(&dir, "short", &images[..images.len() - 10]);
    let message = error_of(idx::read_images(&path));
    assert!(
        message.contains("truncated: the header announces 3 images of 28×28 (2352 bytes of data) but only 2342"),
        "{message}"
    );
}

#[test]
fn a_header_cut_short_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let (images, _) = idx_pair(3);
    assert!(error_of(idx::read_images(&write(&dir, "a", &images[..2]))).contains("too short for an IDX header"));
    assert!(error_of(idx::read_images(&write(&dir, "b", &images[..9]))).contains("truncated inside the IDX header"));
}

#[test]
fn trailing_bytes_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let (_, mut labels) = idx_pair(4);
    labels.extend_from_slice(&[1, 2, 3]);
    let message = error_of(idx::read_labels(&write(&dir, "long", &labels)));
    assert!(message.contains("3 unexpected bytes after the 4 labels"), "{message}");
}

#[test]
fn swapped_image_and_label_files_are_recognised() {
    let dir = tempfile::tempdir().unwrap();
    let (images, labels) = idx_pair(4);
    let message = error_of(idx::read_images(&write(&dir, "labels", &labels)));
    assert!(message.contains("has 1 dimensions where an image file (idx3) has 3"), "{message}");
    let message = error_of(idx::read_labels(&write(&dir, "images", &images)));
    assert!(message.contains("swapped"), "{message}");
}

#[test]
fn corrupt_gzip_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let (images, _) = idx_pair(4);
    let mut compressed = gzip(&images);
    let cut = compressed.len() / 2;
    compressed.truncate(cut);
    let path = write(&dir, "cut.gz", &compressed);
    let message = error_of(idx::read_images(&path));
    assert!(message.contains("cut.gz") && message.contains("corrupt gzip stream"), "{message}");
}
