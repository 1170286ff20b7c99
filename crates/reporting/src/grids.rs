//! Sample grids: rows = semi-supervised code value, columns = one continuous code swept (the paper's qualitative
//! figure). One PNG per run and continuous code under `runs/<run>/samples/`, and per continuous code one figure
//! with every (variant, labels) side by side, titled, under `figures/`.

use std::path::Path;

use plotters::prelude::*;

use crate::error::ReportError;
use crate::font::{ensure_font, FONT};
use crate::inputs::ReportInputs;
use crate::pixels::{png_bytes, tile};
use crate::written::{write_file, Written};
use ssinfogan_plan::share::GridImage;

/// Pixels between panels and around the figure, and the height of the title band.
const GAP: u32 = 16;
const TITLE: u32 = 34;

/// Encodes an RGB buffer as PNG and writes it atomically.
pub(crate) fn write_png(
    path: &Path,
    width: u32,
    height: u32,
    rgb: Vec<u8>,
    written: &mut Written,
) -> Result<(), ReportError> {
    let png = png_bytes(width, height, rgb).map_err(|e| ReportError::Input(format!("{}: {e}", path.display())))?;
    write_file(path, &png, written)
}

/// The grid as an RGB image, each generated image scaled by `scale` (nearest neighbour).
pub fn grid_pixels(grid: &GridImage, scale: u32) -> Result<(u32, u32, Vec<u8>), ReportError> {
    tile(&grid.pixels, grid.rows, grid.values.len(), (grid.channels, grid.height, grid.width), scale)
        .map_err(|why| ReportError::Input(format!("grid of {}: {why}", crate::inputs::grid_group(grid))))
}

pub fn write_all(inputs: &ReportInputs, written: &mut Written) -> Result<(), ReportError> {
    for grid in &inputs.grids {
        let Some(run) = inputs
            .runs
            .iter()
            .find(|r| r.variant == grid.variant && r.n_labelled == grid.n_labelled && r.seed == grid.seed)
        else {
            continue;
        };
        let (w, h, rgb) = grid_pixels(grid, 1)?;
        write_png(&run.dir.join("samples").join(format!("sweep-c{}.png", grid.continuous + 1)), w, h, rgb, written)?;
    }
    let mut codes: Vec<usize> = inputs.grids.iter().map(|g| g.continuous).collect();
    codes.sort_unstable();
    codes.dedup();
    for code in codes {
        let panels: Vec<&GridImage> = inputs.grids.iter().filter(|g| g.continuous == code).collect();
        side_by_side(&panels, &inputs.results_dir.join("figures").join(format!("samples-c{}.png", code + 1)), written)?;
    }
    Ok(())
}

/// The panels next to each other on white, each under its title.
fn side_by_side(panels: &[&GridImage], path: &Path, written: &mut Written) -> Result<(), ReportError> {
    ensure_font()?;
    let scale = if panels.len() <= 3 { 2 } else { 1 };
    let images: Vec<(u32, u32, Vec<u8>)> = panels.iter().map(|g| grid_pixels(g, scale)).collect::<Result<_, _>>()?;
    let width = GAP + images.iter().map(|(w, _, _)| w + GAP).sum::<u32>();
    let height = TITLE + images.iter().map(|(_, h, _)| *h).max().unwrap_or(0) + GAP + 24;
    let mut rgb = vec![255u8; (width * height * 3) as usize];
    let mut left = GAP;
    for (w, h, pixels) in &images {
        for y in 0..*h {
            let from = (y * w * 3) as usize;
            let to = (((TITLE + y) * width + left) * 3) as usize;
            rgb[to..to + (w * 3) as usize].copy_from_slice(&pixels[from..from + (w * 3) as usize]);
        }
        left += w + GAP;
    }
    {
        let plot_error =
            |e: &dyn std::fmt::Display| ReportError::Plot { path: path.to_path_buf(), message: e.to_string() };
        let root = BitMapBackend::with_buffer(&mut rgb, (width, height)).into_drawing_area();
        let mut left = GAP as i32;
        for (panel, (w, h, _)) in panels.iter().zip(&images) {
            root.draw(&Text::new(crate::inputs::grid_group(panel), (left, 8), (FONT, 18).into_font()))
                .map_err(|e| plot_error(&e))?;
            let values = &panel.values;
            let caption = format!(
                "rows: code 0–{}; columns: c{} from {:.0} to {:.0}",
                panel.rows - 1,
                panel.continuous + 1,
                values.first().copied().unwrap_or(0.0),
                values.last().copied().unwrap_or(0.0)
            );
            root.draw(&Text::new(caption, (left, (TITLE + h + 6) as i32), (FONT, 13).into_font()))
                .map_err(|e| plot_error(&e))?;
            left += (*w + GAP) as i32;
        }
        root.present().map_err(|e| plot_error(&e))?;
    }
    write_png(path, width, height, rgb, written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(pixels: Vec<f32>) -> GridImage {
        GridImage {
            variant: "ss-infogan".into(),
            n_labelled: 132,
            seed: 1,
            continuous: 0,
            values: vec![-2.0, 2.0],
            rows: 1,
            channels: 1,
            height: 1,
            width: 2,
            pixels,
            class_stability: 1.0,
            effect: 0.5,
        }
    }

    #[test]
    fn grid_pixels_lay_images_out_by_column_and_scale_them() {
        // Two 1×2 images side by side: [0, 1] then [0.5, 0].
        let (w, h, rgb) = grid_pixels(&grid(vec![0.0, 1.0, 0.5, 0.0]), 2).unwrap();
        assert_eq!((w, h), (8, 2));
        let gray: Vec<u8> = rgb.chunks(3).map(|p| p[0]).collect();
        assert_eq!(&gray[..8], &[0, 0, 255, 255, 128, 128, 0, 0]);
        assert_eq!(&gray[8..], &gray[..8]);
    }

    #[test]
    fn a_grid_with_the_wrong_number_of_pixels_is_refused() {
        assert!(grid_pixels(&grid(vec![0.0; 3]), 1).is_err());
    }
}
