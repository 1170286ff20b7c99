//! A run's share of the report, and the types its files carry: what the report would otherwise compute from the
//! run's weights, written by the run when it completes, so that a report needs the run records only (no
//! checkpoint, no device) and a record small enough to commit carries everything a reader sees.
//!
//! Three files in the run directory, each a safetensors file of 8-bit images with its description in the header's
//! metadata (readable by any safetensors library, no code of ours needed):
//! - `sweeps.safetensors`: per continuous code `c<k>` the sweep grid (rows = semi-supervised code value, columns =
//!   the code swept), with the swept values, the class stability and the effect size;
//! - `explorer.safetensors`: the latent explorer's sheet (`images`) and the codes it moves;
//! - `final-samples.safetensors`: `images` u8 (N, C, H, W) and `codes` i64 (N,), the first
//!   [`FINAL_SAMPLES_PER_CODE`] images of each code value of the final evaluation: exactly the images the official
//!   protocol's C_err classifies, so that an outside classifier can judge them from this file alone.
//!
//! Pixels are stored as `round(clamp(v, 0, 1) · 255)`, the quantisation every picture of the report applies, so the
//! grids and the explorer drawn from a record are the pictures drawn from the weights, byte for byte.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};

use crate::run_dir::{read_bytes, write_atomically, RunFileError, EXPLORER, FINAL_SAMPLES, SWEEPS};

/// Images per code value in `final-samples.safetensors`: the official code's evaluation batch (128 per value).
pub const FINAL_SAMPLES_PER_CODE: usize = 128;

/// What `sweeps.safetensors` says of one grid (tensor `c<k>`), besides its pixels.
#[derive(Debug, Serialize, Deserialize)]
struct GridMeta {
    continuous: usize,
    values: Vec<f32>,
    rows: usize,
    class_stability: f64,
    effect: f64,
}

impl GridMeta {
    fn of(grid: &GridImage) -> Self {
        Self {
            continuous: grid.continuous,
            values: grid.values.clone(),
            rows: grid.rows,
            class_stability: grid.class_stability,
            effect: grid.effect,
        }
    }
}

/// What `explorer.safetensors` says of its sheet, besides its pixels.
#[derive(Debug, Serialize, Deserialize)]
struct SheetMeta {
    code_name: String,
    code_values: usize,
    noise_samples: usize,
    axes: Vec<TraversalAxis>,
}

/// A pixel in [0, 1] as the 8-bit value every picture of the report draws.
pub fn to_u8(value: f32) -> u8 {
    (value.clamp(0.0, 1.0) * 255.0).round() as u8
}

fn from_u8(pixels: &[u8]) -> Vec<f32> {
    pixels.iter().map(|&p| f32::from(p) / 255.0).collect()
}

fn bad(path: &Path, why: impl std::fmt::Display) -> RunFileError {
    RunFileError::DamagedShare { path: path.to_path_buf(), why: why.to_string() }
}

/// Serialises `tensors` (name, shape, bytes) with `metadata` and writes them atomically to `path`.
fn write_tensors(
    path: &Path,
    tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)>,
    metadata: HashMap<String, String>,
) -> Result<(), RunFileError> {
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .map(|(name, dtype, shape, bytes)| {
            TensorView::new(*dtype, shape.clone(), bytes).map(|v| (name.clone(), v)).map_err(|e| bad(path, e))
        })
        .collect::<Result<_, _>>()?;
    let bytes = safetensors::serialize(views, Some(metadata)).map_err(|e| bad(path, e))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| RunFileError::io(dir, e))?;
    }
    write_atomically(path, &bytes).map_err(|e| RunFileError::io(path, e))
}

/// A u8 tensor of the file: its shape and bytes.
fn u8_tensor<'a>(file: &'a SafeTensors, name: &str, path: &Path) -> Result<(Vec<usize>, &'a [u8]), RunFileError> {
    let view = file.tensor(name).map_err(|e| bad(path, e))?;
    if view.dtype() != Dtype::U8 || view.shape().len() != 4 {
        return Err(bad(
            path,
            format!("tensor `{name}` is {:?} {:?}, not u8 (N, C, H, W)", view.dtype(), view.shape()),
        ));
    }
    Ok((view.shape().to_vec(), view.data()))
}

fn metadata_of(bytes: &[u8], path: &Path) -> Result<HashMap<String, String>, RunFileError> {
    let (_, metadata) = SafeTensors::read_metadata(bytes).map_err(|e| bad(path, e))?;
    Ok(metadata.metadata().clone().unwrap_or_default())
}

/// Writes the run's sweep grids (all of one run) into `<run>/sweeps.safetensors`.
pub fn write_sweeps(run_root: &Path, grids: &[GridImage]) -> Result<PathBuf, RunFileError> {
    let path = run_root.join(SWEEPS);
    let mut tensors = Vec::new();
    let mut described = Vec::new();
    for grid in grids {
        let name = format!("c{}", grid.continuous + 1);
        let meta = GridMeta::of(grid);
        described.push((name.clone(), meta));
        let shape = vec![grid.rows * grid.values.len(), grid.channels, grid.height, grid.width];
        tensors.push((name, Dtype::U8, shape, grid.pixels.iter().map(|&v| to_u8(v)).collect()));
    }
    // One metadata entry holding every grid, in order: safetensors writes its metadata map in the map's (random)
    // iteration order, so one entry per grid made the same run's file differ from process to process.
    let grids_json = serde_json::to_string(&described).map_err(|e| bad(&path, e))?;
    write_tensors(&path, tensors, HashMap::from([(GRIDS_KEY.to_string(), grids_json)]))?;
    Ok(path)
}

/// The metadata entry of `sweeps.safetensors` that describes its grids: `[[name, GridMeta], …]`. Files written
/// before it have one entry per grid, named as its tensor; both are read.
const GRIDS_KEY: &str = "grids";

/// The sweep grids `<run>/sweeps.safetensors` holds, labelled with the run's (variant, labels, seed); `None` when
/// the run has not written them.
pub fn read_sweeps(
    run_root: &Path,
    variant: &str,
    n_labelled: usize,
    seed: u64,
) -> Result<Option<Vec<GridImage>>, RunFileError> {
    let path = run_root.join(SWEEPS);
    let Some(bytes) = read_bytes(&path)? else { return Ok(None) };
    let file = SafeTensors::deserialize(&bytes).map_err(|e| bad(&path, e))?;
    let metadata = metadata_of(&bytes, &path)?;
    let described: Vec<(String, GridMeta)> = match metadata.get(GRIDS_KEY) {
        Some(json) => serde_json::from_str(json).map_err(|e| bad(&path, e))?,
        None => {
            let mut names: Vec<&String> = metadata.keys().collect();
            names.sort_by_key(|n| (n.len(), n.to_string()));
            names
                .into_iter()
                .map(|name| Ok((name.clone(), serde_json::from_str(&metadata[name]).map_err(|e| bad(&path, e))?)))
                .collect::<Result<_, RunFileError>>()?
        }
    };
    let mut grids = Vec::new();
    for (name, meta) in described {
        let name = name.as_str();
        let (shape, pixels) = u8_tensor(&file, name, &path)?;
        if shape[0] != meta.rows * meta.values.len() {
            return Err(bad(
                &path,
                format!("`{name}` has {} images for {} × {}", shape[0], meta.rows, meta.values.len()),
            ));
        }
        grids.push(GridImage {
            variant: variant.to_string(),
            n_labelled,
            seed,
            continuous: meta.continuous,
            values: meta.values,
            rows: meta.rows,
            channels: shape[1],
            height: shape[2],
            width: shape[3],
            pixels: from_u8(pixels),
            class_stability: meta.class_stability,
            effect: meta.effect,
        });
    }
    Ok(Some(grids))
}

/// Writes the run's explorer sheet into `<run>/explorer.safetensors`.
pub fn write_explorer(run_root: &Path, sheet: &TraversalSheet) -> Result<PathBuf, RunFileError> {
    let path = run_root.join(EXPLORER);
    let meta = SheetMeta {
        code_name: sheet.code_name.clone(),
        code_values: sheet.code_values,
        noise_samples: sheet.noise_samples,
        axes: sheet.axes.clone(),
    };
    let images = sheet.noise_samples * sheet.code_values * sheet.columns();
    let shape = vec![images, sheet.channels, sheet.height, sheet.width];
    let metadata = HashMap::from([("sheet".to_string(), serde_json::to_string(&meta).map_err(|e| bad(&path, e))?)]);
    let pixels = sheet.pixels.iter().map(|&v| to_u8(v)).collect();
    write_tensors(&path, vec![("images".into(), Dtype::U8, shape, pixels)], metadata)?;
    Ok(path)
}

/// The explorer sheet `<run>/explorer.safetensors` holds; `None` when the run has not written it.
pub fn read_explorer(
    run_root: &Path,
    variant: &str,
    n_labelled: usize,
    seed: u64,
) -> Result<Option<TraversalSheet>, RunFileError> {
    let path = run_root.join(EXPLORER);
    let Some(bytes) = read_bytes(&path)? else { return Ok(None) };
    let file = SafeTensors::deserialize(&bytes).map_err(|e| bad(&path, e))?;
    let metadata = metadata_of(&bytes, &path)?;
    let meta = metadata.get("sheet").ok_or_else(|| bad(&path, "no `sheet` in the header's metadata"))?;
    let meta: SheetMeta = serde_json::from_str(meta).map_err(|e| bad(&path, e))?;
    let (shape, pixels) = u8_tensor(&file, "images", &path)?;
    let sheet = TraversalSheet {
        variant: variant.to_string(),
        n_labelled,
        seed,
        code_name: meta.code_name,
        code_values: meta.code_values,
        noise_samples: meta.noise_samples,
        axes: meta.axes,
        channels: shape[1],
        height: shape[2],
        width: shape[3],
        pixels: from_u8(pixels),
    };
    if shape[0] != sheet.noise_samples * sheet.code_values * sheet.columns() {
        return Err(bad(&path, format!("{} images for the sheet its header describes", shape[0])));
    }
    Ok(Some(sheet))
}

/// Writes `<run>/final-samples.safetensors`: `images` u8 (N, C, H, W) from `pixels` (values in [0, 1], row-major)
/// and `codes` i64 (N,), the semi-supervised code value that made each image.
pub fn write_final_samples(
    run_root: &Path,
    pixels: &[f32],
    (c, h, w): (usize, usize, usize),
    codes: &[i64],
) -> Result<PathBuf, RunFileError> {
    let path = run_root.join(FINAL_SAMPLES);
    let n = codes.len();
    if pixels.len() != n * c * h * w {
        return Err(bad(&path, format!("{} values for {n} images of {c}×{h}×{w}", pixels.len())));
    }
    let metadata = HashMap::from([(
        "description".to_string(),
        "images: generated images as 8-bit values (value / 255 is the generator's output in [0, 1]); codes: the \
         semi-supervised code value that made each image"
            .to_string(),
    )]);
    let codes_bytes: Vec<u8> = codes.iter().flat_map(|c| c.to_le_bytes()).collect();
    let tensors = vec![
        ("images".to_string(), Dtype::U8, vec![n, c, h, w], pixels.iter().map(|&v| to_u8(v)).collect()),
        ("codes".to_string(), Dtype::I64, vec![n], codes_bytes),
    ];
    write_tensors(&path, tensors, metadata)?;
    Ok(path)
}

/// The 8-bit final samples of `<run>/final-samples.safetensors`: their bytes (N, C, H, W), (C, H, W) and the code
/// value of each; `None` when the run has not written them.
pub fn read_final_samples(run_root: &Path) -> Result<Option<FinalSamples>, RunFileError> {
    let path = run_root.join(FINAL_SAMPLES);
    let Some(bytes) = read_bytes(&path)? else { return Ok(None) };
    let file = SafeTensors::deserialize(&bytes).map_err(|e| bad(&path, e))?;
    let (shape, pixels) = u8_tensor(&file, "images", &path)?;
    let codes = file.tensor("codes").map_err(|e| bad(&path, e))?;
    if codes.dtype() != Dtype::I64 || codes.shape() != [shape[0]] {
        return Err(bad(
            &path,
            format!("tensor `codes` is {:?} {:?}, not i64 ({},)", codes.dtype(), codes.shape(), shape[0]),
        ));
    }
    let codes = codes.data().chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes"))).collect();
    Ok(Some(FinalSamples { pixels: pixels.to_vec(), image: (shape[1], shape[2], shape[3]), codes }))
}

/// What `final-samples.safetensors` holds.
pub struct FinalSamples {
    pub pixels: Vec<u8>,
    /// (channels, height, width).
    pub image: (usize, usize, usize),
    pub codes: Vec<i64>,
}

/// One continuous code's sweep grid as pixels: `rows` semi-supervised code values × `values.len()` columns of
/// (channels, height, width) images in [0, 1], row-major.
#[derive(Debug, Clone)]
pub struct GridImage {
    pub variant: String,
    pub n_labelled: usize,
    pub seed: u64,
    /// Which continuous code (0-based) the columns sweep.
    pub continuous: usize,
    pub values: Vec<f32>,
    pub rows: usize,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub pixels: Vec<f32>,
    pub class_stability: f64,
    pub effect: f64,
}

/// One code the latent explorer moves: a continuous code over `values`, or an unsupervised categorical code over
/// its `values.len()` values. `explorer.safetensors` describes its axes as this struct's JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraversalAxis {
    /// `c1`, `c2`, … for continuous codes, `u1`, `u2`, … for unsupervised categorical ones.
    pub name: String,
    pub continuous: bool,
    pub values: Vec<f32>,
    /// Per noise sample, the step at which this code sits while another one moves: the step whose value is 0 (the
    /// middle of the sweep) for a continuous code, the drawn value for a categorical one.
    pub base: Vec<usize>,
}

/// The latent explorer's images of one (variant, labels): `noise_samples · code_values` rows of `Σ axis steps`
/// columns of (channels, height, width) images in [0, 1], row-major; row z · code_values + c.
#[derive(Debug, Clone)]
pub struct TraversalSheet {
    pub variant: String,
    pub n_labelled: usize,
    pub seed: u64,
    /// The semi-supervised code's name in the experiment (`digit`), its URL key.
    pub code_name: String,
    pub code_values: usize,
    pub noise_samples: usize,
    pub axes: Vec<TraversalAxis>,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub pixels: Vec<f32>,
}

impl TraversalSheet {
    /// `ss-infogan-n132`: the explorer page's name for it (`#run=`).
    pub fn id(&self) -> String {
        format!("{}-n{}", self.variant, self.n_labelled)
    }

    /// Images per row: every axis's steps one after another.
    pub fn columns(&self) -> usize {
        self.axes.iter().map(|a| a.values.len()).sum::<usize>().max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(continuous: usize) -> GridImage {
        let (rows, columns, c, h, w) = (2, 3, 1, 2, 2);
        GridImage {
            variant: "ss-infogan".into(),
            n_labelled: 132,
            seed: 2,
            continuous,
            values: vec![-2.0, 0.0, 2.0],
            rows,
            channels: c,
            height: h,
            width: w,
            pixels: (0..rows * columns * c * h * w).map(|i| i as f32 / 23.0).collect(),
            class_stability: 0.1 + continuous as f64,
            effect: 0.3,
        }
    }

    #[test]
    fn sweeps_read_back_as_the_pictures_they_draw() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_sweeps(dir.path(), "ss-infogan", 132, 2).unwrap().is_none());
        let grids: Vec<GridImage> = (0..11).map(grid).collect();
        write_sweeps(dir.path(), &grids).unwrap();
        let read = read_sweeps(dir.path(), "ss-infogan", 132, 2).unwrap().unwrap();
        assert_eq!(read.len(), 11);
        for (a, b) in grids.iter().zip(&read) {
            assert_eq!(
                (a.continuous, &a.values, a.rows, a.class_stability, a.effect),
                (b.continuous, &b.values, b.rows, b.class_stability, b.effect)
            );
            // The same 8-bit pixels: the record's quantisation is the picture's.
            assert_eq!(
                a.pixels.iter().map(|&v| to_u8(v)).collect::<Vec<_>>(),
                b.pixels.iter().map(|&v| to_u8(v)).collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn a_sweeps_file_is_the_same_bytes_every_time_and_the_older_layout_still_reads() {
        let dir = tempfile::tempdir().unwrap();
        let grids: Vec<GridImage> = (0..4).map(grid).collect();
        let path = write_sweeps(dir.path(), &grids).unwrap();
        let first = std::fs::read(&path).unwrap();
        // Every map of the process hashes with other keys: ten writes would order a map's entries differently.
        for _ in 0..10 {
            write_sweeps(dir.path(), &grids).unwrap();
            assert!(std::fs::read(&path).unwrap() == first, "the same grids wrote different bytes");
        }
        // The layout of the runs recorded before: one metadata entry per grid.
        let mut metadata = HashMap::new();
        let mut tensors = Vec::new();
        for g in &grids {
            let name = format!("c{}", g.continuous + 1);
            let meta = GridMeta::of(g);
            metadata.insert(name.clone(), serde_json::to_string(&meta).unwrap());
            let shape = vec![g.rows * g.values.len(), g.channels, g.height, g.width];
            tensors.push((name, Dtype::U8, shape, g.pixels.iter().map(|&v| to_u8(v)).collect()));
        }
        write_tensors(&path, tensors, metadata).unwrap();
        let read = read_sweeps(dir.path(), "ss-infogan", 132, 2).unwrap().unwrap();
        assert_eq!(read.iter().map(|g| g.continuous).collect::<Vec<_>>(), [0, 1, 2, 3]);
        assert_eq!(read[3].pixels, from_u8(&grids[3].pixels.iter().map(|&v| to_u8(v)).collect::<Vec<_>>()));
    }

    #[test]
    fn an_explorer_sheet_reads_back_and_a_damaged_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let sheet = TraversalSheet {
            variant: "infogan".into(),
            n_labelled: 0,
            seed: 1,
            code_name: "digit".into(),
            code_values: 2,
            noise_samples: 1,
            axes: vec![TraversalAxis { name: "c1".into(), continuous: true, values: vec![-1.0, 1.0], base: vec![1] }],
            channels: 1,
            height: 2,
            width: 2,
            pixels: (0..16).map(|i| i as f32 / 15.0).collect(),
        };
        write_explorer(dir.path(), &sheet).unwrap();
        let read = read_explorer(dir.path(), "infogan", 0, 1).unwrap().unwrap();
        assert_eq!(read.axes, sheet.axes);
        assert_eq!(read.pixels, from_u8(&sheet.pixels.iter().map(|&v| to_u8(v)).collect::<Vec<_>>()));
        std::fs::write(dir.path().join(EXPLORER), b"not a safetensors file").unwrap();
        let error = read_explorer(dir.path(), "infogan", 0, 1).unwrap_err().to_string();
        assert!(error.contains(EXPLORER) && error.contains("delete the file"), "{error}");
    }

    #[test]
    fn final_samples_hold_8_bit_images_and_their_codes() {
        let dir = tempfile::tempdir().unwrap();
        let pixels = [0.0, 0.5, 1.0, 2.0, -1.0, 0.25, 0.75, 0.1];
        let path = write_final_samples(dir.path(), &pixels, (1, 2, 2), &[3, 7]).unwrap();
        let bytes = std::fs::read(path).unwrap();
        let file = SafeTensors::deserialize(&bytes).unwrap();
        let images = file.tensor("images").unwrap();
        assert_eq!((images.dtype(), images.shape()), (Dtype::U8, &[2usize, 1, 2, 2][..]));
        assert_eq!(images.data(), &[0, 128, 255, 255, 0, 64, 191, 26]);
        let codes = file.tensor("codes").unwrap();
        assert_eq!(codes.dtype(), Dtype::I64);
        assert_eq!(codes.data(), [3i64.to_le_bytes(), 7i64.to_le_bytes()].concat());
        assert!(write_final_samples(dir.path(), &pixels, (1, 2, 2), &[3]).is_err());
    }
}
