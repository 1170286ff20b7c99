//! The Fréchet distance between two sets of feature vectors, each summarised by a Gaussian (the FID formula):
//! `d² = |μ₁ − μ₂|² + tr(Σ₁ + Σ₂ − 2 (Σ₁^½ Σ₂ Σ₁^½)^½)`.
//!
//! Both square roots are taken through symmetric eigendecompositions (`nalgebra`), which stay real and stable
//! for positive semi-definite matrices, instead of a general matrix square root of the non-symmetric Σ₁Σ₂.

use nalgebra::{DMatrix, DVector, SymmetricEigen};

/// Fréchet distance of two sets of features (rows are samples, columns features).
pub fn frechet_distance(a: &DMatrix<f64>, b: &DMatrix<f64>) -> f64 {
    let (mean_a, cov_a) = moments(a);
    let (mean_b, cov_b) = moments(b);
    frechet_distance_from_moments(&mean_a, &cov_a, &mean_b, &cov_b)
}

/// Mean and unbiased covariance of the rows of `x`.
pub fn moments(x: &DMatrix<f64>) -> (DVector<f64>, DMatrix<f64>) {
    let n = x.nrows() as f64;
    let mean = x.row_mean().transpose();
    let centred = DMatrix::from_fn(x.nrows(), x.ncols(), |r, c| x[(r, c)] - mean[c]);
    let cov = centred.transpose() * &centred / (n - 1.0).max(1.0);
    (mean, cov)
}

/// The Fréchet distance of N(μ₁, Σ₁) and N(μ₂, Σ₂).
///
/// ```
/// use nalgebra::{DMatrix, DVector};
/// // Diagonal covariances: the distance is |Δμ|² + Σ (σ₁ − σ₂)².
/// let d = ssinfogan_metrics::frechet_distance_from_moments(
///     &DVector::from_vec(vec![0.0, 0.0]), &DMatrix::from_diagonal(&DVector::from_vec(vec![4.0, 1.0])),
///     &DVector::from_vec(vec![1.0, 0.0]), &DMatrix::from_diagonal(&DVector::from_vec(vec![1.0, 4.0])));
/// assert!((d - 3.0).abs() < 1e-9);
/// ```
pub fn frechet_distance_from_moments(
    mean_a: &DVector<f64>,
    cov_a: &DMatrix<f64>,
    mean_b: &DVector<f64>,
    cov_b: &DMatrix<f64>,
) -> f64 {
    let sqrt_a = psd_sqrt(cov_a);
    let inner = &sqrt_a * cov_b * &sqrt_a;
    let inner = (&inner + inner.transpose()) * 0.5; // symmetric up to rounding; make it exactly so
    let trace_sqrt: f64 = SymmetricEigen::new(inner).eigenvalues.iter().map(|&l| l.max(0.0).sqrt()).sum();
    (mean_a - mean_b).norm_squared() + cov_a.trace() + cov_b.trace() - 2.0 * trace_sqrt
}

/// The square root of a symmetric positive semi-definite matrix (negative rounding noise clipped to 0).
fn psd_sqrt(m: &DMatrix<f64>) -> DMatrix<f64> {
    let eigen = SymmetricEigen::new((m + m.transpose()) * 0.5);
    let roots = eigen.eigenvalues.map(|l| l.max(0.0).sqrt());
    &eigen.eigenvectors * DMatrix::from_diagonal(&roots) * eigen.eigenvectors.transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_is_at_distance_zero_from_itself() {
        let x = DMatrix::from_fn(50, 3, |r, c| ((r * 7 + c * 3) % 11) as f64 + 0.1 * c as f64);
        assert!(frechet_distance(&x, &x).abs() < 1e-9);
    }

    #[test]
    fn a_non_diagonal_case_matches_the_closed_form() {
        // Σ₁ = I, Σ₂ = [[2, 1], [1, 2]] (eigenvalues 3 and 1): d = tr(I) + tr(Σ₂) − 2(√3 + 1) = 4 − 2√3.
        let zero = DVector::zeros(2);
        let cov_b = DMatrix::from_row_slice(2, 2, &[2.0, 1.0, 1.0, 2.0]);
        let d = frechet_distance_from_moments(&zero, &DMatrix::identity(2, 2), &zero, &cov_b);
        assert!((d - (4.0 - 2.0 * 3f64.sqrt())).abs() < 1e-12, "{d}");
    }

    #[test]
    fn sample_moments_are_the_textbook_ones() {
        let x = DMatrix::from_row_slice(4, 2, &[1.0, 2.0, 3.0, 2.0, 5.0, 6.0, 7.0, 6.0]);
        let (mean, cov) = moments(&x);
        assert_eq!(mean, DVector::from_vec(vec![4.0, 4.0]));
        // Deviations (−3, −2), (−1, −2), (1, 2), (3, 2): Σ = [[20, 16], [16, 16]] / 3.
        assert!((cov - DMatrix::from_row_slice(2, 2, &[20.0, 16.0, 16.0, 16.0]) / 3.0).norm() < 1e-12);
    }
}
