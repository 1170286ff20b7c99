//! The IDX format of LeCun's MNIST files (and Fashion-MNIST's), raw or gzip-compressed.
//!
//! We parse IDX ourselves rather than through `candle_datasets::vision::mnist::load_dir`: that reads only raw
//! files under fixed names, does not check the header against the file length, and its errors do not name the
//! file. Here every check a corrupt download can fail (gzip stream, magic number, dimensions, exact length) is
//! made, and the error names the file and the fix.

use std::io::Read;
use std::path::Path;

use crate::error::{DataError, Result};

/// Images of an IDX3 file: `count` images of `rows`×`cols` bytes, row-major, 0 = background.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxImages {
    pub count: usize,
    pub rows: usize,
    pub cols: usize,
    pub pixels: Vec<u8>,
}

/// IDX type code of unsigned bytes, the only one MNIST-style files use.
const UNSIGNED_BYTE: u8 = 0x08;

/// Reads an IDX3 image file (`…-images-idx3-ubyte`, optionally `.gz`).
pub fn read_images(path: &Path) -> Result<IdxImages> {
    let bytes = read_maybe_gzip(path)?;
    let (dims, data) = parse(path, &bytes, 3)?;
    Ok(IdxImages { count: dims[0], rows: dims[1], cols: dims[2], pixels: data.to_vec() })
}

/// Reads an IDX1 label file (`…-labels-idx1-ubyte`, optionally `.gz`).
pub fn read_labels(path: &Path) -> Result<Vec<u8>> {
    let bytes = read_maybe_gzip(path)?;
    let (_, data) = parse(path, &bytes, 1)?;
    Ok(data.to_vec())
}

/// Reads a file, decompressing it when it starts with the gzip magic bytes (whatever its name says).
pub(crate) fn read_maybe_gzip(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity(raw.len() * 4);
        flate2::read::GzDecoder::new(raw.as_slice()).read_to_end(&mut out).map_err(|e| {
            DataError::bad_file(
                path,
                format!("corrupt gzip stream ({e}); the download is damaged: fetch the file again"),
            )
        })?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Checks the header (two zero bytes, type code, dimension count, dimensions) and the exact data length.
fn parse<'a>(path: &Path, bytes: &'a [u8], expected_dims: usize) -> Result<(Vec<usize>, &'a [u8])> {
    let refetch = "fetch the file again";
    if bytes.len() < 4 {
        return Err(DataError::bad_file(
            path,
            format!("{} bytes is too short for an IDX header; {refetch}", bytes.len()),
        ));
    }
    if bytes[0] != 0 || bytes[1] != 0 || bytes[2] != UNSIGNED_BYTE {
        return Err(DataError::bad_file(
            path,
            format!(
                "not an IDX file of unsigned bytes: magic number {:#010x}, expected {:#010x}; {refetch}",
                u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]),
                (u32::from(UNSIGNED_BYTE) << 8) | expected_dims as u32,
            ),
        ));
    }
    let ndims = usize::from(bytes[3]);
    if ndims != expected_dims {
        let kind = if expected_dims == 3 { "an image file (idx3)" } else { "a label file (idx1)" };
        return Err(DataError::bad_file(
            path,
            format!("has {ndims} dimensions where {kind} has {expected_dims}: are the image and label files swapped?"),
        ));
    }
    let header_len = 4 + 4 * ndims;
    if bytes.len() < header_len {
        return Err(DataError::bad_file(path, format!("truncated inside the IDX header; {refetch}")));
    }
    let dims: Vec<usize> =
        bytes[4..header_len].chunks_exact(4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize).collect();
    let expected: usize = dims.iter().product();
    let data = &bytes[header_len..];
    if data.len() < expected {
        return Err(DataError::bad_file(
            path,
            format!(
                "truncated: the header announces {} ({expected} bytes of data) but only {} bytes follow; {refetch}",
                describe(&dims),
                data.len()
            ),
        ));
    }
    if data.len() > expected {
        return Err(DataError::bad_file(
            path,
            format!(
                "{} unexpected bytes after the {} the header announces; the file is corrupt: {refetch}",
                data.len() - expected,
                describe(&dims)
            ),
        ));
    }
    Ok((dims, data))
}

fn describe(dims: &[usize]) -> String {
    match dims {
        [n] => format!("{n} labels"),
        [n, r, c] => format!("{n} images of {r}×{c}"),
        _ => format!("dimensions {dims:?}"),
    }
}

/// Serialises images (or, with `rows = cols = None`, labels) as an IDX file. Used by tests and by anyone
/// who wants to hand our data to another tool.
pub fn encode(count: usize, image_size: Option<(usize, usize)>, data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, UNSIGNED_BYTE, if image_size.is_some() { 3 } else { 1 }];
    out.extend_from_slice(&(count as u32).to_be_bytes());
    if let Some((rows, cols)) = image_size {
        out.extend_from_slice(&(rows as u32).to_be_bytes());
        out.extend_from_slice(&(cols as u32).to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}
