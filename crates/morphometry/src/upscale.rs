//! Morpho-MNIST's upsampling: a cubic B-spline interpolation to `scale` times the size, clipped to the input's
//! range, then a Gaussian blur of σ = scale / 3 (the pyramid expansion of Burt & Adelson, as scikit-image's
//! `pyramid_expand(…, order=3)` computes it). Measuring on the smoother, larger image makes thickness and length
//! sub-pixel quantities instead of counts of 28×28 pixels.

/// The cubic B-spline's pole: the prefilter that turns samples into interpolating spline coefficients.
const POLE: f64 = -0.267_949_192_431_122_7; // √3 − 2

/// Gaussian taps reach 4σ (rounded to a whole pixel), as scipy's `gaussian_filter` truncates.
const TRUNCATE: f64 = 4.0;

/// `image` (rows × cols, values in [0, 1]) upsampled `scale` times and blurred, in [0, 1].
pub fn expand(image: &[f64], rows: usize, cols: usize, scale: usize) -> Vec<f64> {
    let (out_rows, out_cols) = (rows * scale, cols * scale);
    // Separable: spline coefficients along rows, then along columns.
    let mut coefficients = image.to_vec();
    for r in 0..rows {
        prefilter(&mut coefficients[r * cols..(r + 1) * cols]);
    }
    let mut column = vec![0.0; rows];
    for c in 0..cols {
        for r in 0..rows {
            column[r] = coefficients[r * cols + c];
        }
        prefilter(&mut column);
        for r in 0..rows {
            coefficients[r * cols + c] = column[r];
        }
    }
    // Output pixel o samples the input at (o + ½) / scale − ½: pixel areas, not corners, are aligned.
    let taps = |n: usize, size: usize| -> Vec<([usize; 4], [f64; 4])> {
        (0..n)
            .map(|o| {
                let x = (o as f64 + 0.5) / scale as f64 - 0.5;
                let base = x.floor();
                let weights = bspline_weights(x - base);
                let index = |k: i64| mirror(base as i64 - 1 + k, size);
                ([index(0), index(1), index(2), index(3)], weights)
            })
            .collect()
    };
    let (row_taps, col_taps) = (taps(out_rows, rows), taps(out_cols, cols));
    let (low, high) = image.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &v| (l.min(v), h.max(v)));
    let mut resized = vec![0.0; out_rows * out_cols];
    for (orow, (ri, rw)) in row_taps.iter().enumerate() {
        for (ocol, (ci, cw)) in col_taps.iter().enumerate() {
            let mut sum = 0.0;
            for a in 0..4 {
                let mut along = 0.0;
                for b in 0..4 {
                    along += cw[b] * coefficients[ri[a] * cols + ci[b]];
                }
                sum += rw[a] * along;
            }
            // Higher-order interpolation overshoots at edges; the expansion keeps the input's range.
            resized[orow * out_cols + ocol] = sum.clamp(low, high);
        }
    }
    gaussian_blur(&mut resized, out_rows, out_cols, scale as f64 / 3.0);
    resized
}

/// Index `k` of a signal of `n` samples extended by mirroring about its end samples (…, x2, x1 | x0, x1, …).
fn mirror(k: i64, n: usize) -> usize {
    let n = n as i64;
    if n == 1 {
        return 0;
    }
    let period = 2 * (n - 1);
    let k = k.rem_euclid(period);
    (if k < n { k } else { period - k }) as usize
}

/// The cubic B-spline's weights of the four coefficients around a point at fraction `t` past the second.
fn bspline_weights(t: f64) -> [f64; 4] {
    let u = 1.0 - t;
    [
        u * u * u / 6.0,
        (4.0 - 6.0 * t * t + 3.0 * t * t * t) / 6.0,
        (1.0 + 3.0 * t + 3.0 * t * t - 3.0 * t * t * t) / 6.0,
        t * t * t / 6.0,
    ]
}

/// Samples to cubic B-spline coefficients in place (Unser's recursive filter), for a mirror-extended signal:
/// a causal and an anti-causal first-order pass with the pole, started from their exact mirror-boundary values.
fn prefilter(signal: &mut [f64]) {
    let n = signal.len();
    if n < 2 {
        return;
    }
    let z = POLE;
    let gain = (1.0 - z) * (1.0 - 1.0 / z);
    for v in signal.iter_mut() {
        *v *= gain;
    }
    // Causal start: the infinite sum over the mirrored signal, which has period 2(n − 1), in closed form.
    let z_n1 = z.powi(n as i32 - 1);
    let mut first = signal[0] + z_n1 * signal[n - 1];
    let mut z_k = z;
    for k in 1..n - 1 {
        first += z_k * (signal[k] + z_n1 * signal[n - 1 - k]);
        z_k *= z;
    }
    signal[0] = first / (1.0 - z_n1 * z_n1);
    for k in 1..n {
        signal[k] += z * signal[k - 1];
    }
    signal[n - 1] = (z * signal[n - 2] + signal[n - 1]) * z / (z * z - 1.0);
    for k in (0..n - 1).rev() {
        signal[k] = z * (signal[k + 1] - signal[k]);
    }
}

/// A separable Gaussian blur of standard deviation `sigma`, the image extended by reflection about its edges
/// (…, x1, x0 | x0, x1, …), rows then columns.
fn gaussian_blur(image: &mut [f64], rows: usize, cols: usize, sigma: f64) {
    let radius = (TRUNCATE * sigma + 0.5) as i64;
    let mut kernel: Vec<f64> = (-radius..=radius).map(|x| (-0.5 * (x * x) as f64 / (sigma * sigma)).exp()).collect();
    let total: f64 = kernel.iter().sum();
    kernel.iter_mut().for_each(|k| *k /= total);
    let reflect = |k: i64, n: usize| -> usize {
        let n = n as i64;
        let k = k.rem_euclid(2 * n);
        (if k < n { k } else { 2 * n - 1 - k }) as usize
    };
    let r = radius as usize;
    let blur = |line: &[f64], out: &mut [f64]| {
        let n = line.len();
        for (i, o) in out.iter_mut().enumerate() {
            *o = if i >= r && i + r < n {
                // Inside: the taps are a plain window of the line.
                kernel.iter().zip(&line[i - r..=i + r]).map(|(w, v)| w * v).sum()
            } else {
                kernel.iter().enumerate().map(|(t, w)| w * line[reflect(i as i64 + t as i64 - radius, n)]).sum()
            };
        }
    };
    // Along axis 0 (down the columns) first, then along the rows, as scipy filters axis by axis.
    let (mut line, mut out) = (vec![0.0; rows], vec![0.0; rows]);
    for c in 0..cols {
        for r in 0..rows {
            line[r] = image[r * cols + c];
        }
        blur(&line, &mut out);
        for r in 0..rows {
            image[r * cols + c] = out[r];
        }
    }
    let mut out = vec![0.0; cols];
    for r in 0..rows {
        blur(&image[r * cols..(r + 1) * cols], &mut out);
        image[r * cols..(r + 1) * cols].copy_from_slice(&out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spline_interpolates_its_samples() {
        // Coefficients from the prefilter, evaluated at the sample positions, give the samples back.
        let samples = [0.0, 0.2, 0.9, 1.0, 0.4, 0.0, 0.3];
        let mut c = samples.to_vec();
        prefilter(&mut c);
        for (i, &s) in samples.iter().enumerate() {
            let w = bspline_weights(0.0);
            let v: f64 = (0..4).map(|k| w[k] * c[mirror(i as i64 - 1 + k as i64, samples.len())]).sum();
            assert!((v - s).abs() < 1e-12, "sample {i}: {v} against {s}");
        }
    }

    #[test]
    fn a_constant_image_stays_constant_and_the_blur_keeps_the_mass() {
        let flat = expand(&[0.5; 12], 3, 4, 4);
        assert_eq!(flat.len(), 12 * 16);
        assert!(flat.iter().all(|v| (v - 0.5).abs() < 1e-12));
        let mut spike = vec![0.0; 21 * 21];
        spike[10 * 21 + 10] = 1.0;
        gaussian_blur(&mut spike, 21, 21, 4.0 / 3.0);
        assert!((spike.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(spike[10 * 21 + 10] > spike[10 * 21 + 11] && spike[10 * 21 + 11] > spike[10 * 21 + 12]);
    }

    #[test]
    fn extensions_mirror_and_reflect_about_the_ends() {
        let mirrored: Vec<usize> = (-3..8).map(|k| mirror(k, 5)).collect();
        assert_eq!(mirrored, [3, 2, 1, 0, 1, 2, 3, 4, 3, 2, 1]);
    }
}
