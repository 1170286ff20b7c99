//! Mutual-information estimates, in nats.
//!
//! InfoGAN's variational lower bound `L_I = H(c) − CE(Q(c | G(z, c)), c)` for a code, and the plug-in
//! estimate `I(X; Y) = Σ p(x, y) ln(p(x, y) / (p(x) p(y)))` from a table of joint counts: between the code value
//! and the class the evaluation classifier sees in the image (the paper's "mutual information between synthetic
//! and real data"), or between `Q_ss`'s prediction and the true label of real images.

/// Entropy in nats of a distribution given by non-negative weights.
///
/// ```
/// let h = ssinfogan_metrics::entropy(&[1.0; 10]);
/// assert!((h - 10f64.ln()).abs() < 1e-12);
/// ```
pub fn entropy(weights: &[f64]) -> f64 {
    let total: f64 = weights.iter().sum();
    weights.iter().filter(|&&w| w > 0.0).map(|&w| -(w / total) * (w / total).ln()).sum()
}

/// InfoGAN's lower bound: `H(c) − CE`, with `code_entropy` the entropy of the code's prior (ln K for a
/// uniform K-way code) and `cross_entropy` the mean cross-entropy of Q's prediction on fakes.
pub fn mutual_information_lower_bound(code_entropy: f64, cross_entropy: f64) -> f64 {
    code_entropy - cross_entropy
}

/// Plug-in mutual information of a joint count table `counts[x][y]`.
pub fn mutual_information(counts: &[Vec<u64>]) -> f64 {
    let total: f64 = counts.iter().flatten().map(|&c| c as f64).sum();
    if total == 0.0 {
        return 0.0;
    }
    let rows: Vec<f64> = counts.iter().map(|r| r.iter().map(|&c| c as f64).sum()).collect();
    let columns = counts.first().map_or(0, Vec::len);
    let cols: Vec<f64> = (0..columns).map(|y| counts.iter().map(|r| r[y] as f64).sum()).collect();
    let mut mi = 0.0;
    for (x, row) in counts.iter().enumerate() {
        for (y, &c) in row.iter().enumerate() {
            if c > 0 {
                let p = c as f64 / total;
                mi += p * (p * total * total / (rows[x] * cols[y])).ln();
            }
        }
    }
    mi
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn independent_variables_share_no_information() {
        let counts = vec![vec![25u64, 25, 50]; 4];
        assert!(mutual_information(&counts).abs() < 1e-12);
    }

    #[test]
    fn a_bijection_shares_ln_k() {
        let mut counts = vec![vec![0u64; 10]; 10];
        for k in 0..10 {
            counts[k][(k * 3) % 10] = 100;
        }
        assert!((mutual_information(&counts) - 10f64.ln()).abs() < 1e-12);
    }

    #[test]
    fn a_known_two_by_two_table() {
        // p = [[0.4, 0.1], [0.1, 0.4]], marginals 0.5: I = 2·0.4·ln(1.6) + 2·0.1·ln(0.4)
        let expected = 0.8 * 1.6f64.ln() + 0.2 * 0.4f64.ln();
        assert!((mutual_information(&[vec![40, 10], vec![10, 40]]) - expected).abs() < 1e-12);
        assert!((mutual_information_lower_bound(10f64.ln(), 0.3) - (10f64.ln() - 0.3)).abs() < 1e-15);
    }
}
