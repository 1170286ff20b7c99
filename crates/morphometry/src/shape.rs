//! The measures of a digit's outline: its medial axis's length, its second moments (slant) and its sheared
//! bounding box (width and height), as Morpho-MNIST defines them.

/// The length of a one-pixel-wide axis: each pair of 8-neighbours on it counted once, 1 apart along a row or
/// column, √2 apart along a diagonal.
pub fn axis_length(axis: &[bool], rows: usize, cols: usize) -> f64 {
    let at = |r: usize, c: i64| c >= 0 && (c as usize) < cols && r < rows && axis[r * cols + c as usize];
    let mut length = 0.0;
    for r in 0..rows {
        for c in 0..cols {
            if !axis[r * cols + c] {
                continue;
            }
            let c = c as i64;
            // Right, and the three below: every pair once.
            length += f64::from(u8::from(at(r, c + 1))) + f64::from(u8::from(at(r + 1, c)));
            length += std::f64::consts::SQRT_2 * f64::from(u8::from(at(r + 1, c - 1)) + u8::from(at(r + 1, c + 1)));
        }
    }
    length
}

/// The intensity-weighted centroid and central second moments of an image (x along columns, y down rows).
pub struct Moments {
    pub centroid_y: f64,
    u11: f64,
    u02: f64,
}

impl Moments {
    /// `None` for an image without ink, or whose ink lies in one row (no vertical extent to shear).
    pub fn of(image: &[f64], rows: usize, cols: usize) -> Option<Self> {
        let (mut m00, mut mx, mut my, mut mxy, mut myy) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for r in 0..rows {
            for c in 0..cols {
                let (v, x, y) = (image[r * cols + c], c as f64, r as f64);
                m00 += v;
                mx += x * v;
                my += y * v;
                mxy += x * y * v;
                myy += y * y * v;
            }
        }
        if m00 <= 0.0 {
            return None;
        }
        let (cx, cy) = (mx / m00, my / m00);
        let moments = Self { centroid_y: cy, u11: mxy / m00 - cx * cy, u02: myy / m00 - cy * cy };
        (moments.u02 > 0.0).then_some(moments)
    }

    /// How far x moves per row down the image along the ink's principal lean: μ11 / μ02.
    pub fn horizontal_shear(&self) -> f64 {
        self.u11 / self.u02
    }
}

/// Width and height of the parallelogram, sheared along the ink's lean, that leaves `fraction` of the ink outside
/// (half on each side, in each direction), in the image's pixels.
pub fn bounding_parallelogram(image: &[f64], rows: usize, cols: usize, moments: &Moments, fraction: f64) -> (f64, f64) {
    let total: f64 = image.iter().sum();
    let shear = moments.horizontal_shear();
    // Horizontal: the share of ink left of the sheared line through x = t, for t = 0, 1, …, cols − 1. A pixel
    // counts for every t above its sheared position v = x + ½ − shear · (y − centroid): from ⌊v⌋ + 1 on.
    let mut left = vec![0.0; cols];
    for r in 0..rows {
        let offset = 0.5 - shear * (r as f64 - moments.centroid_y);
        for c in 0..cols {
            let from = (c as f64 + offset).floor() + 1.0;
            if from < cols as f64 {
                left[from.max(0.0) as usize] += image[r * cols + c];
            }
        }
    }
    let horizontal = cumulative_share(&left, total);
    // Vertical: the share of ink above row t.
    let mut above = vec![0.0; rows];
    for r in 0..rows.saturating_sub(1) {
        above[r + 1] = image[r * cols..(r + 1) * cols].iter().sum();
    }
    let vertical = cumulative_share(&above, total);
    let half = fraction / 2.0;
    let (start, end) = (interpolate(half, &horizontal), interpolate(1.0 - half, &horizontal));
    let (top, bottom) = (interpolate(half, &vertical), interpolate(1.0 - half, &vertical));
    (end - start, bottom - top)
}

/// Running sums of `counts` as shares of `total`.
fn cumulative_share(counts: &[f64], total: f64) -> Vec<f64> {
    let mut sum = 0.0;
    counts
        .iter()
        .map(|c| {
            sum += c;
            sum / total
        })
        .collect()
}

/// The position t (an index, interpolated linearly) where the non-decreasing `cdf` reaches `share`: between the
/// last index whose value is at most `share` and the next; clamped to the ends (NumPy's `interp`).
fn interpolate(share: f64, cdf: &[f64]) -> f64 {
    let n = cdf.len();
    if share < cdf[0] {
        return 0.0;
    }
    let below = cdf.partition_point(|&v| v <= share); // cdf[below - 1] <= share < cdf[below]
    if below >= n {
        return (n - 1) as f64;
    }
    let j = below - 1;
    j as f64 + (share - cdf[j]) / (cdf[j + 1] - cdf[j])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolation_follows_numpys_interp() {
        let cdf = [0.0, 0.0, 0.25, 0.25, 0.75, 1.0];
        assert_eq!(interpolate(0.0, &cdf), 1.0); // the last index still at 0
        assert_eq!(interpolate(0.125, &cdf), 1.5);
        assert_eq!(interpolate(0.5, &cdf), 3.5);
        assert_eq!(interpolate(1.0, &cdf), 5.0);
        assert_eq!(interpolate(-1.0, &cdf), 0.0);
    }

    #[test]
    fn an_axis_length_counts_each_step_once() {
        // An L: 3 along a row (2 steps), then 2 steps down a diagonal.
        let mut axis = vec![false; 25];
        for p in [0, 1, 2, 8, 14] {
            axis[p] = true;
        }
        assert!((axis_length(&axis, 5, 5) - (2.0 + 2.0 * std::f64::consts::SQRT_2)).abs() < 1e-12);
    }
}
