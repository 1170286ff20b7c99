//! Parquet files in the Hugging Face `datasets` image layout: an image column holding a struct
//! `{bytes: binary (an encoded PNG/JPEG), path: string}` and a label column. This is what the Hub's
//! `refs/convert/parquet` branch serves for MNIST, Fashion-MNIST, SVHN (`image`, `label`), CIFAR-10 (`img`,
//! `label`) and CelebA (`image` and one boolean column per attribute).

use std::path::{Path, PathBuf};

use parquet::data_type::ByteArray;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;
use ssinfogan_core::ImageSpec;

use crate::error::{DataError, Result};
use crate::sources::image_fit::{self, Fit};
use crate::split::Split;

/// What the label column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelColumn {
    /// An integer class index below `classes`. `hint`, if any, is added to the error for one that is not.
    Class { classes: usize, hint: Option<&'static str> },
    /// A binary attribute: a boolean (true → 1, false → 0), or an integer 1 → 1 and 0 or -1 → 0 (the ±1 of
    /// CelebA's list_attr_celeba.txt, which some conversions keep).
    Attribute,
}

/// Which columns to read and how to turn them into a split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParquetLayout<'a> {
    pub image_column: &'a str,
    pub label_column: &'a str,
    pub label: LabelColumn,
    pub image: ImageSpec,
    pub fit: Fit,
}

impl<'a> ParquetLayout<'a> {
    /// The Hub's layout for a classification dataset: images of exactly `image`'s size, integer class labels.
    ///
    /// ```
    /// use ssinfogan_datasets::sources::parquet_images::ParquetLayout;
    /// let mnist = ParquetLayout::classes("image", "label", ssinfogan_core::ImageSpec::MNIST, 10);
    /// assert_eq!(mnist.image_column, "image");
    /// ```
    pub fn classes(image_column: &'a str, label_column: &'a str, image: ImageSpec, classes: usize) -> Self {
        Self { image_column, label_column, label: LabelColumn::Class { classes, hint: None }, image, fit: Fit::Exact }
    }
}

/// Reads the shards of one split, in order, into a split.
pub fn read_split(paths: &[PathBuf], layout: &ParquetLayout<'_>) -> Result<Split> {
    let mut split = Split { images: Vec::new(), labels: Vec::new() };
    for path in paths {
        let shard = read(path, layout)?;
        split.images.extend(shard.images);
        split.labels.extend(shard.labels);
    }
    Ok(split)
}

/// Reads every row of `path` into a split, decoding each image and fitting it to `layout.image`.
pub fn read(path: &Path, layout: &ParquetLayout<'_>) -> Result<Split> {
    let file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let not_parquet = |e: parquet::errors::ParquetError| {
        DataError::bad_file(path, format!("not a readable parquet file ({e}); delete it so it is downloaded again"))
    };
    let reader = SerializedFileReader::new(file).map_err(not_parquet)?;
    let expected_rows = reader.metadata().file_metadata().num_rows().max(0) as usize;
    // The encoded images are gathered first (they share the file's buffers) and decoded afterwards in parallel.
    let mut encoded: Vec<(usize, ByteArray)> = Vec::with_capacity(expected_rows);
    let mut labels = Vec::with_capacity(expected_rows);
    for (row_index, row) in reader.get_row_iter(None).map_err(not_parquet)?.enumerate() {
        let at = |problem: String| DataError::bad_file(path, format!("row {row_index}: {problem}"));
        let columns = row.map_err(not_parquet)?.into_columns();
        encoded.push((row_index, image_bytes(&columns, layout.image_column).map_err(at)?));
        labels.push(label(&columns, layout.label_column, layout.label).map_err(at)?);
    }
    let what = path.display().to_string();
    let images = image_fit::decode_in_parallel(&encoded, layout.image, &what, |(row_index, bytes), slot| {
        image_fit::decode_into(bytes.data(), layout.image, layout.fit, slot)
            .map_err(|problem| DataError::bad_file(path, format!("row {row_index}: {problem}")))
    })?;
    Ok(Split { images, labels })
}

fn column<'a>(columns: &'a [(String, Field)], name: &str) -> Result<&'a Field, String> {
    columns.iter().find(|(n, _)| n.as_str() == name).map(|(_, f)| f).ok_or_else(|| {
        let names: Vec<&str> = columns.iter().map(|(n, _)| n.as_str()).collect();
        format!("no column `{name}` (columns: {})", names.join(", "))
    })
}

fn image_bytes(columns: &[(String, Field)], name: &str) -> Result<ByteArray, String> {
    match column(columns, name)? {
        Field::Group(inner) => match inner.get_column_iter().find(|(n, _)| n.as_str() == "bytes") {
            Some((_, Field::Bytes(b))) => Ok(b.clone()),
            Some((_, other)) => Err(format!("`{name}.bytes` is {other:?}, expected encoded image bytes")),
            None => Err(format!("`{name}` has no field `bytes`; expected a struct {{bytes, path}}")),
        },
        Field::Bytes(b) => Ok(b.clone()),
        other => Err(format!("`{name}` is {other:?}, expected a struct {{bytes, path}}")),
    }
}

fn label(columns: &[(String, Field)], name: &str, kind: LabelColumn) -> Result<u8, String> {
    let field = column(columns, name)?;
    let value = match field {
        Field::Bool(b) if kind == LabelColumn::Attribute => return Ok(u8::from(*b)),
        Field::Long(v) => *v,
        Field::Int(v) => i64::from(*v),
        Field::Short(v) => i64::from(*v),
        Field::Byte(v) => i64::from(*v),
        Field::UByte(v) => i64::from(*v),
        Field::UShort(v) => i64::from(*v),
        Field::UInt(v) => i64::from(*v),
        Field::ULong(v) => i64::try_from(*v).unwrap_or(i64::MAX),
        other => {
            let expected = match kind {
                LabelColumn::Class { .. } => "an integer class label",
                LabelColumn::Attribute => "a boolean attribute (or an integer 1, 0 or -1)",
            };
            return Err(format!("`{name}` is {other:?}, expected {expected}"));
        }
    };
    match kind {
        LabelColumn::Attribute => match value {
            1 => Ok(1),
            0 | -1 => Ok(0),
            v => Err(format!("attribute `{name}` is {v}; a binary attribute is true/false, 1/0 or 1/-1")),
        },
        LabelColumn::Class { classes, hint } => match usize::try_from(value) {
            Ok(class) if class < classes => {
                u8::try_from(class).map_err(|_| format!("label {value} does not fit a byte"))
            }
            _ => Err(format!(
                "label {value} is outside the {classes} classes 0..{}{}",
                classes - 1,
                hint.map(|h| format!("; {h}")).unwrap_or_default()
            )),
        },
    }
}
