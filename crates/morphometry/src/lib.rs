//! Morpho-MNIST's morphometrics of a digit image (Castro et al., "Morpho-MNIST: Quantitative Assessment and
//! Diagnostics for Representation Learning", JMLR 2019): what a digit looks like in six numbers, computable from
//! any image, so that what a latent code controls can be measured instead of eyeballed in a sample grid.
//!
//! The published procedure, step by step ([`measure`]):
//! 1. upsample the 28 × 28 image [`SCALE`] = 4 times (cubic B-spline, then a Gaussian of σ = 4/3) and store it
//!    as 8-bit again;
//! 2. binarise at half way between its darkest and brightest pixel;
//! 3. area: the binary shape's pixels; length: the medial axis's length (neighbours along it 1 apart, diagonal
//!    ones √2); thickness: twice the mean distance from the medial axis to the background;
//! 4. slant: the shear of the upsampled image's second moments, `atan(−μ11 / μ02)` (positive leans right);
//!    width and height: of the sheared bounding box holding all but [`BOUND_FRACTION`] of the ink.
//!
//! Lengths are in pixels of the original image, area in its square pixels, slant in radians.
//!
//! The reference is Morpho-MNIST's Python code on scikit-image; `bench/morphometry_reference.py` computes it and
//! `tests/reference.rs` holds ours to it on real digits. One choice differs: scikit-image's medial axis breaks
//! ties between equally placed pixels at random, ours in raster order, so ours repeats exactly.

mod medial_axis;
mod shape;
mod stats;
mod upscale;

use rayon::prelude::*;

pub use medial_axis::{distance_transform, medial_axis};
pub use stats::{binned_mutual_information, quantile_distance, quantiles, spearman};

/// The upsampling factor of the measurement.
pub const SCALE: usize = 4;
/// The fraction of the ink left outside the width and height's bounding box (half on each side).
pub const BOUND_FRACTION: f64 = 0.02;

/// The morphometrics' names, in the order of [`Morphometry::values`] and of Morpho-MNIST's tables.
pub const NAMES: [&str; 6] = ["area", "length", "thickness", "slant", "width", "height"];

/// The six morphometrics of one digit image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Morphometry {
    /// Pixels of the binarised shape (original pixels², fractional from the upsampling).
    pub area: f64,
    /// Length of the stroke's medial axis (original pixels).
    pub length: f64,
    /// Mean stroke thickness: twice the mean distance from the axis to the background (original pixels).
    pub thickness: f64,
    /// Slant in radians, positive when the digit leans right (its top to the right of its bottom).
    pub slant: f64,
    /// Width and height of the slanted bounding box (original pixels).
    pub width: f64,
    pub height: f64,
}

impl Morphometry {
    /// The values in the order of [`NAMES`].
    pub fn values(&self) -> [f64; 6] {
        [self.area, self.length, self.thickness, self.slant, self.width, self.height]
    }
}

/// The morphometrics of one grayscale image (`rows × cols` bytes, row-major, ink bright), or `None` for an image
/// with nothing to measure: blank (every pixel alike), or whose shape leaves no medial axis.
pub fn measure(image: &[u8], rows: usize, cols: usize) -> Option<Morphometry> {
    assert_eq!(image.len(), rows * cols, "an image of {rows} × {cols} pixels has {} bytes", rows * cols);
    let unit: Vec<f64> = image.iter().map(|&v| f64::from(v) / 255.0).collect();
    // Stored as 8-bit again (truncated), as Morpho-MNIST measures its upsampled image.
    let hires: Vec<f64> = upscale::expand(&unit, rows, cols, SCALE).into_iter().map(|v| (255.0 * v).trunc()).collect();
    let (rows, cols) = (rows * SCALE, cols * SCALE);
    let (low, high) = hires.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &v| (l.min(v), h.max(v)));
    if high <= low {
        return None;
    }
    let threshold = low + (high - low) * 0.5;
    let binary: Vec<bool> = hires.iter().map(|&v| v >= threshold).collect();
    let (skeleton, distance) = medial_axis(&binary, rows, cols);
    let on_axis: Vec<f64> = (0..rows * cols).filter(|&p| skeleton[p]).map(|p| distance[p]).collect();
    if on_axis.is_empty() || on_axis.iter().any(|d| !d.is_finite()) {
        return None;
    }
    let scale = SCALE as f64;
    let thickness = 2.0 * on_axis.iter().sum::<f64>() / on_axis.len() as f64 / scale;
    let area = binary.iter().filter(|&&b| b).count() as f64 / (scale * scale);
    let length = shape::axis_length(&skeleton, rows, cols) / scale;
    let moments = shape::Moments::of(&hires, rows, cols)?;
    let (width, height) = shape::bounding_parallelogram(&hires, rows, cols, &moments, BOUND_FRACTION);
    Some(Morphometry {
        area,
        length,
        thickness,
        slant: (-moments.horizontal_shear()).atan(),
        width: width / scale,
        height: height / scale,
    })
}

/// The morphometrics of `images` (`n × rows × cols` bytes), in parallel over images.
pub fn measure_all(images: &[u8], rows: usize, cols: usize) -> Vec<Option<Morphometry>> {
    images.par_chunks_exact(rows * cols).map(|image| measure(image, rows, cols)).collect()
}

/// A 28 × 28 byte image from values in [0, 1], quantised as every picture of the report is (`round(255 v)`).
pub fn to_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pen stroke of `thickness` pixels (a capsule: every point within thickness / 2 of a segment), 16 pixels
    /// tall from row 6 to row 22 through the centre (14, 14), leaning by `shear` (x moves `shear` per row up),
    /// antialiased by 4 × 4 supersampling. Its medial axis is the segment itself.
    fn stroke(thickness: f64, shear: f64) -> Vec<u8> {
        let (top, bottom) = ((14.0 + 8.0 * shear, 6.0), (14.0 - 8.0 * shear, 22.0));
        let (dx, dy) = (bottom.0 - top.0, bottom.1 - top.1);
        let mut image = vec![0u8; 28 * 28];
        for (p, pixel) in image.iter_mut().enumerate() {
            let mut covered = 0;
            for sub in 0..16 {
                let (y, x) = (
                    (p / 28) as f64 + (sub / 4) as f64 / 4.0 + 0.125,
                    (p % 28) as f64 + (sub % 4) as f64 / 4.0 + 0.125,
                );
                let along = (((x - top.0) * dx + (y - top.1) * dy) / (dx * dx + dy * dy)).clamp(0.0, 1.0);
                let (ex, ey) = (x - top.0 - along * dx, y - top.1 - along * dy);
                covered += u8::from((ex * ex + ey * ey).sqrt() <= thickness / 2.0);
            }
            *pixel = (255.0 * f64::from(covered) / 16.0).round() as u8;
        }
        image
    }

    #[test]
    fn a_strokes_thickness_length_and_size_are_measured() {
        for thickness in [2.0, 3.0, 4.0, 6.0] {
            let m = measure(&stroke(thickness, 0.0), 28, 28).unwrap();
            let area = 16.0 * thickness + std::f64::consts::PI * thickness * thickness / 4.0;
            assert!((m.thickness - thickness).abs() < 0.1 * thickness, "thickness {thickness}: {m:?}");
            assert!((m.area - area).abs() < 0.05 * area, "area {area}: {m:?}");
            // The discrete axis reaches into the round ends and steps diagonally where the stroke's centre falls
            // between two pixels: 17.4 to 18.6 here, never the segment's 16 exactly.
            assert!(m.length > 16.0 && m.length < 19.0, "length 16: {m:?}");
            // Width and height hold 98% of the ink of the upsampled, blurred image: its blur widens the stroke
            // by 0.7 to 1.5 pixels (measured), the 2% left out shortens it by up to 0.7.
            assert!(m.width > thickness && m.width < thickness + 1.6, "width {thickness}: {m:?}");
            assert!(m.height > 15.0 + thickness && m.height < 16.0 + thickness, "height {}: {m:?}", 16.0 + thickness);
            // All but 2% of the ink: a little less than the stroke's full extent.

            assert!(m.slant.abs() < 0.01, "an upright stroke has no slant: {m:?}");
        }
    }

    #[test]
    fn a_strokes_slant_is_its_shear_angle() {
        for shear in [-0.4, -0.2, 0.2, 0.4] {
            let m = measure(&stroke(3.0, shear), 28, 28).unwrap();
            let expected = f64::atan(shear);
            assert!((m.slant - expected).abs() < 0.03, "shear {shear}: slant {} against {expected}", m.slant);
        }
    }

    #[test]
    fn thicker_and_more_slanted_strokes_measure_so() {
        let thin = measure(&stroke(2.0, 0.3), 28, 28).unwrap();
        let thick = measure(&stroke(5.0, 0.3), 28, 28).unwrap();
        assert!(thick.thickness > thin.thickness + 2.0 && thick.area > thin.area);
        assert!((thick.slant - thin.slant).abs() < 0.05, "thickness does not move slant: {thin:?} {thick:?}");
    }

    #[test]
    fn a_blank_image_has_no_morphometry() {
        assert_eq!(measure(&[0; 784], 28, 28), None);
        assert_eq!(measure(&[255; 784], 28, 28), None);
    }

    #[test]
    fn many_images_are_measured_as_one_each() {
        let images: Vec<u8> = [stroke(2.0, 0.1), stroke(4.0, -0.2)].concat();
        let all = measure_all(&images, 28, 28);
        assert_eq!(all, vec![measure(&stroke(2.0, 0.1), 28, 28), measure(&stroke(4.0, -0.2), 28, 28)]);
    }
}
