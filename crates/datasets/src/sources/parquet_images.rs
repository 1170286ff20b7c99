//! Parquet files in the Hugging Face `datasets` image layout: a column `image` holding a struct
//! `{bytes: binary (an encoded PNG/JPEG), path: string}` and an integer column `label`. This is what the Hub's
//! `refs/convert/parquet` branch serves for MNIST, Fashion-MNIST, SVHN and CIFAR-10.

use std::path::Path;

use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::{Field, Row};
use ssinfogan_core::ImageSpec;

use crate::dataset::Split;
use crate::error::{DataError, Result};

/// Reads every row of `path` into a split, decoding each image and checking it has the shape `image`.
/// `image_column` and `label_column` name the columns (`"image"`, `"label"` on the Hub).
pub fn read(path: &Path, image_column: &str, label_column: &str, image: ImageSpec) -> Result<Split> {
    let file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let not_parquet = |e: parquet::errors::ParquetError| {
        DataError::bad_file(path, format!("not a readable parquet file ({e}); delete it so it is downloaded again"))
    };
    let reader = SerializedFileReader::new(file).map_err(not_parquet)?;
    let expected_rows = reader.metadata().file_metadata().num_rows().max(0) as usize;
    let mut split =
        Split { images: Vec::with_capacity(expected_rows * image.pixels()), labels: Vec::with_capacity(expected_rows) };
    for (row_index, row) in reader.get_row_iter(None).map_err(not_parquet)?.enumerate() {
        let row = row.map_err(not_parquet)?;
        let at = |problem: String| DataError::bad_file(path, format!("row {row_index}: {problem}"));
        let encoded = image_bytes(&row, image_column).map_err(at)?;
        let label = label(&row, label_column).map_err(at)?;
        decode_into(encoded, image, &mut split.images).map_err(at)?;
        split.labels.push(label);
    }
    Ok(split)
}

fn column<'a>(row: &'a Row, name: &str) -> Result<&'a Field, String> {
    row.get_column_iter().find(|(n, _)| n.as_str() == name).map(|(_, f)| f).ok_or_else(|| {
        let names: Vec<&str> = row.get_column_iter().map(|(n, _)| n.as_str()).collect();
        format!("no column `{name}` (columns: {})", names.join(", "))
    })
}

fn image_bytes<'a>(row: &'a Row, name: &str) -> Result<&'a [u8], String> {
    match column(row, name)? {
        Field::Group(inner) => match column(inner, "bytes")? {
            Field::Bytes(b) => Ok(b.data()),
            other => Err(format!("`{name}.bytes` is {other:?}, expected encoded image bytes")),
        },
        Field::Bytes(b) => Ok(b.data()),
        other => Err(format!("`{name}` is {other:?}, expected a struct {{bytes, path}}")),
    }
}

fn label(row: &Row, name: &str) -> Result<u8, String> {
    let value = match column(row, name)? {
        Field::Long(v) => *v,
        Field::Int(v) => i64::from(*v),
        Field::Short(v) => i64::from(*v),
        Field::Byte(v) => i64::from(*v),
        Field::UInt(v) => i64::from(*v),
        Field::ULong(v) => i64::try_from(*v).unwrap_or(i64::MAX),
        other => return Err(format!("`{name}` is {other:?}, expected an integer class label")),
    };
    u8::try_from(value).map_err(|_| format!("label {value} is not a class index 0..=255"))
}

/// Decodes one PNG/JPEG and appends it, NCHW, as f32 in [0, 1].
fn decode_into(encoded: &[u8], spec: ImageSpec, out: &mut Vec<f32>) -> Result<(), String> {
    let decoded = image::load_from_memory(encoded).map_err(|e| format!("cannot decode the image: {e}"))?;
    if (decoded.height() as usize, decoded.width() as usize) != (spec.height, spec.width) {
        return Err(format!("image is {}×{}, this dataset's are {spec}", decoded.height(), decoded.width()));
    }
    match spec.channels {
        1 => out.extend(decoded.to_luma8().as_raw().iter().map(|&p| f32::from(p) / 255.0)),
        3 => {
            let rgb = decoded.to_rgb8();
            // HWC bytes to CHW planes.
            for channel in 0..3 {
                out.extend(rgb.as_raw().chunks_exact(3).map(|px| f32::from(px[channel]) / 255.0));
            }
        }
        c => return Err(format!("{c}-channel images are not supported")),
    }
    Ok(())
}
