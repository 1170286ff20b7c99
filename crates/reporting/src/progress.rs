//! Training progress as pictures: at each evaluation one grid from the same fixed latents
//! (`runs/<run>/samples/progress/iter-NNNNNN.png`, rows = the semi-supervised code's values), and at the end of
//! the run one animated GIF of them (`samples/progress.gif`) with a bar along its bottom edge showing how far
//! training had come. ss-InfoGAN's rows settle on their classes early; InfoGAN's wander.

use std::path::{Path, PathBuf};

use image::codecs::gif::{GifEncoder, Repeat};
use image::{Delay, Frame, Rgba, RgbaImage};

use crate::error::ReportError;
use crate::pixels::{png_bytes, tile};

/// Each generated image is drawn this many pixels per pixel.
const SCALE: u32 = 2;
/// Milliseconds per frame, and for the last one (the trained model), which the loop holds.
const FRAME_MS: u32 = 250;
const LAST_FRAME_MS: u32 = 2000;
/// Height of the progress bar under each frame of the animation.
const BAR: u32 = 4;

/// `iter-000100.png`.
pub fn frame_name(iteration: u64) -> String {
    format!("iter-{iteration:06}.png")
}

/// Writes one progress grid (rows × columns images of (C, H, W) values in [0, 1]) as `dir/iter-NNNNNN.png`.
pub fn write_frame(
    dir: &Path,
    iteration: u64,
    pixels: &[f32],
    rows: usize,
    columns: usize,
    shape: (usize, usize, usize),
) -> Result<PathBuf, ReportError> {
    let path = dir.join(frame_name(iteration));
    let (width, height, rgb) = tile(pixels, rows, columns, shape, SCALE).map_err(|e| ReportError::io(&path, e))?;
    let png = png_bytes(width, height, rgb).map_err(|e| ReportError::io(&path, e))?;
    std::fs::create_dir_all(dir).map_err(|e| ReportError::io(dir, e))?;
    ssinfogan_plan::run_dir::write_atomically(&path, &png).map_err(|e| ReportError::io(&path, e))?;
    Ok(path)
}

/// The frames of `dir` in iteration order, with their iterations.
pub fn frames(dir: &Path) -> Result<Vec<(u64, PathBuf)>, ReportError> {
    let mut frames = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(frames),
        Err(e) => return Err(ReportError::io(dir, e)),
    };
    for entry in entries {
        let path = entry.map_err(|e| ReportError::io(dir, e))?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if let Some(iteration) = name.strip_prefix("iter-").and_then(|n| n.strip_suffix(".png")) {
            if let Ok(iteration) = iteration.parse() {
                frames.push((iteration, path));
            }
        }
    }
    frames.sort();
    Ok(frames)
}

/// Animates the frames of `dir` into `out` (a looping GIF); each frame gets a bar at the bottom filled to its
/// iteration over `total_iterations`. Returns the number of frames (none: no file).
pub fn write_animation(dir: &Path, out: &Path, total_iterations: u64) -> Result<usize, ReportError> {
    let frames = frames(dir)?;
    if frames.is_empty() {
        return Ok(0);
    }
    let mut gif = Vec::new();
    {
        let mut encoder = GifEncoder::new_with_speed(&mut gif, 10);
        encoder.set_repeat(Repeat::Infinite).map_err(|e| ReportError::io(out, e))?;
        for (i, (iteration, path)) in frames.iter().enumerate() {
            let grid = image::open(path).map_err(|e| ReportError::io(path, e))?.to_rgba8();
            let (width, height) = grid.dimensions();
            let mut canvas = RgbaImage::from_pixel(width, height + BAR, Rgba([255, 255, 255, 255]));
            image::imageops::replace(&mut canvas, &grid, 0, 0);
            let filled = ((*iteration as f64 / total_iterations.max(1) as f64).min(1.0) * width as f64).round() as u32;
            for x in 0..filled {
                for y in height..height + BAR {
                    canvas.put_pixel(x, y, Rgba([220, 80, 30, 255]));
                }
            }
            let ms = if i + 1 == frames.len() { LAST_FRAME_MS } else { FRAME_MS };
            let frame = Frame::from_parts(canvas, 0, 0, Delay::from_numer_denom_ms(ms, 1));
            encoder.encode_frame(frame).map_err(|e| ReportError::io(out, e))?;
        }
    }
    ssinfogan_plan::run_dir::write_atomically(out, &gif).map_err(|e| ReportError::io(out, e))?;
    Ok(frames.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_become_a_looping_animation_in_iteration_order() {
        let dir = std::env::temp_dir().join(format!("ssinfogan-progress-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        // Two rows of three 2×2 grey images; each frame one shade, written out of order.
        for (iteration, shade) in [(200u64, 0.5f32), (100, 0.0), (300, 1.0)] {
            write_frame(&dir, iteration, &[shade; 2 * 3 * 4], 2, 3, (1, 2, 2)).unwrap();
        }
        std::fs::write(dir.join("notes.txt"), "not a frame").unwrap();
        let listed: Vec<u64> = frames(&dir).unwrap().iter().map(|(i, _)| *i).collect();
        assert_eq!(listed, [100, 200, 300]);
        let out = dir.join("progress.gif");
        assert_eq!(write_animation(&dir, &out, 300).unwrap(), 3);
        let decoder =
            image::codecs::gif::GifDecoder::new(std::io::BufReader::new(std::fs::File::open(&out).unwrap())).unwrap();
        let decoded: Vec<Frame> = image::AnimationDecoder::into_frames(decoder).collect::<Result<_, _>>().unwrap();
        assert_eq!(decoded.len(), 3);
        let (width, height) = (3 * 2 * SCALE, 2 * 2 * SCALE);
        for (frame, (shade, bar)) in decoded.iter().zip([(0u8, 1u32), (128, 2), (255, 3)]) {
            let image = frame.buffer();
            assert_eq!(image.dimensions(), (width, height + BAR));
            // A GIF's palette is quantised: greys within a few levels.
            assert!(
                image.get_pixel(1, 1).0[..3].iter().all(|&v| v.abs_diff(shade) <= 3),
                "{:?}",
                image.get_pixel(1, 1)
            );
            // The bar is filled to a third, two thirds, all of the width.
            let filled = (0..width).filter(|&x| image.get_pixel(x, height + 1).0[..3] != [255, 255, 255]).count();
            assert_eq!(filled as u32, (width * bar + 1) / 3);
        }
        assert_eq!(decoded[2].delay().numer_denom_ms(), (LAST_FRAME_MS, 1));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
