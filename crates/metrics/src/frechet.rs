//! The Fréchet distance between two sets of feature vectors, each summarised by a Gaussian (the FID formula):
//! `d² = |μ₁ − μ₂|² + tr(Σ₁ + Σ₂ − 2 (Σ₁^½ Σ₂ Σ₁^½)^½)`.
//!
//! Both square roots are taken through symmetric eigendecompositions (`nalgebra`), which stay real and stable
//! for positive semi-definite matrices, instead of a general matrix square root of the non-symmetric Σ₁Σ₂.

use nalgebra::{DMatrix, DVector, SymmetricEigen};

/// The most QR sweeps an eigendecomposition may take. A symmetric matrix of the classifier's 128 features converges
/// in a few hundred; a matrix with a NaN never does (no comparison with NaN ever says "converged"), and without a
/// cap the evaluation would hang instead of failing.
pub const MAX_EIGEN_ITERATIONS: usize = 100_000;

/// Fréchet distance of two sets of features (rows are samples, columns features); `None` when an eigendecomposition
/// does not converge (non-finite features).
pub fn frechet_distance(a: &DMatrix<f64>, b: &DMatrix<f64>) -> Option<f64> {
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

/// The Fréchet distance of N(μ₁, Σ₁) and N(μ₂, Σ₂); `None` for moments with a NaN or an infinity, or when an
/// eigendecomposition does not converge within [`MAX_EIGEN_ITERATIONS`].
///
/// ```
/// use nalgebra::{DMatrix, DVector};
/// // Diagonal covariances: the distance is |Δμ|² + Σ (σ₁ − σ₂)².
/// let d = ssinfogan_metrics::frechet_distance_from_moments(
///     &DVector::from_vec(vec![0.0, 0.0]), &DMatrix::from_diagonal(&DVector::from_vec(vec![4.0, 1.0])),
///     &DVector::from_vec(vec![1.0, 0.0]), &DMatrix::from_diagonal(&DVector::from_vec(vec![1.0, 4.0])));
/// assert!((d.unwrap() - 3.0).abs() < 1e-9);
/// ```
pub fn frechet_distance_from_moments(
    mean_a: &DVector<f64>,
    cov_a: &DMatrix<f64>,
    mean_b: &DVector<f64>,
    cov_b: &DMatrix<f64>,
) -> Option<f64> {
    // A NaN can pass through an eigendecomposition as a plausible number: refused here, not measured.
    let finite = |m: &DMatrix<f64>| m.iter().all(|v| v.is_finite());
    if !(finite(cov_a) && finite(cov_b) && mean_a.iter().chain(mean_b.iter()).all(|v| v.is_finite())) {
        return None;
    }
    let sqrt_a = psd_sqrt(cov_a)?;
    let inner = &sqrt_a * cov_b * &sqrt_a;
    let inner = (&inner + inner.transpose()) * 0.5; // symmetric up to rounding; make it exactly so
    let trace_sqrt: f64 = eigen(inner)?.eigenvalues.iter().map(|&l| l.max(0.0).sqrt()).sum();
    Some((mean_a - mean_b).norm_squared() + cov_a.trace() + cov_b.trace() - 2.0 * trace_sqrt)
}

/// The symmetric eigendecomposition, capped at [`MAX_EIGEN_ITERATIONS`] (the same arithmetic as
/// `SymmetricEigen::new`, which has no cap).
fn eigen(m: DMatrix<f64>) -> Option<SymmetricEigen<f64, nalgebra::Dyn>> {
    SymmetricEigen::try_new(m, f64::EPSILON, MAX_EIGEN_ITERATIONS)
}

/// The square root of a symmetric positive semi-definite matrix (negative rounding noise clipped to 0).
fn psd_sqrt(m: &DMatrix<f64>) -> Option<DMatrix<f64>> {
    let eigen = eigen((m + m.transpose()) * 0.5)?;
    let roots = eigen.eigenvalues.map(|l| l.max(0.0).sqrt());
    Some(&eigen.eigenvectors * DMatrix::from_diagonal(&roots) * eigen.eigenvectors.transpose())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_is_at_distance_zero_from_itself() {
        let x = DMatrix::from_fn(50, 3, |r, c| ((r * 7 + c * 3) % 11) as f64 + 0.1 * c as f64);
        assert!(frechet_distance(&x, &x).unwrap().abs() < 1e-9);
    }

    #[test]
    fn a_non_diagonal_case_matches_the_closed_form() {
        // Σ₁ = I, Σ₂ = [[2, 1], [1, 2]] (eigenvalues 3 and 1): d = tr(I) + tr(Σ₂) − 2(√3 + 1) = 4 − 2√3.
        let zero = DVector::zeros(2);
        let cov_b = DMatrix::from_row_slice(2, 2, &[2.0, 1.0, 1.0, 2.0]);
        let d = frechet_distance_from_moments(&zero, &DMatrix::identity(2, 2), &zero, &cov_b).unwrap();
        assert!((d - (4.0 - 2.0 * 3f64.sqrt())).abs() < 1e-12, "{d}");
    }

    #[test]
    fn a_covariance_with_a_nan_is_reported_not_hung_on() {
        let zero = DVector::zeros(3);
        let mut cov = DMatrix::from_row_slice(3, 3, &[2.0, 1.0, 0.0, 1.0, 2.0, 0.5, 0.0, 0.5, 2.0]);
        cov[(0, 1)] = f64::NAN;
        cov[(1, 0)] = f64::NAN;
        assert_eq!(frechet_distance_from_moments(&zero, &cov, &zero, &DMatrix::identity(3, 3)), None);
        let mut mean = DVector::zeros(3);
        mean[2] = f64::INFINITY;
        assert_eq!(
            frechet_distance_from_moments(&mean, &DMatrix::identity(3, 3), &zero, &DMatrix::identity(3, 3)),
            None
        );
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
