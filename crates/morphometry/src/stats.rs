//! What a latent code controls, from the morphometrics of images generated along a sweep of that code: the rank
//! correlation along each line of the sweep, and the mutual information between the code's value and each
//! morphometric over all lines.

/// Spearman's rank correlation of `x` and `y` (ties take their mean rank); `None` when either is constant.
pub fn spearman(x: &[f64], y: &[f64]) -> Option<f64> {
    assert_eq!(x.len(), y.len());
    let (rx, ry) = (ranks(x), ranks(y));
    let n = x.len() as f64;
    let (mx, my) = (rx.iter().sum::<f64>() / n, ry.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in rx.iter().zip(&ry) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx) * (a - mx);
        syy += (b - my) * (b - my);
    }
    (sxx > 0.0 && syy > 0.0).then(|| sxy / (sxx * syy).sqrt())
}

/// Ranks 1..n of `values`, ties at their mean rank.
fn ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start;
        while end + 1 < order.len() && values[order[end + 1]] == values[order[start]] {
            end += 1;
        }
        let rank = (start + end) as f64 / 2.0 + 1.0;
        for &i in &order[start..=end] {
            ranks[i] = rank;
        }
        start = end + 1;
    }
    ranks
}

/// The mutual information (nats) between a discrete `code` (values `0..levels`) and a continuous `value`, the
/// latter cut into `bins` bins of equal count (its quantiles over all samples), by the plug-in estimate.
pub fn binned_mutual_information(code: &[usize], value: &[f64], levels: usize, bins: usize) -> f64 {
    assert_eq!(code.len(), value.len());
    let n = code.len();
    if n == 0 || bins == 0 {
        return 0.0;
    }
    let ranked = ranks(value);
    let mut joint = vec![0.0; levels * bins];
    for (&c, r) in code.iter().zip(&ranked) {
        // Mean ranks 1..n to bins 0..bins − 1, tied values into one bin.
        let bin = (((r - 1.0) / n as f64) * bins as f64).floor().min((bins - 1) as f64) as usize;
        joint[c * bins + bin] += 1.0 / n as f64;
    }
    let mut by_code = vec![0.0; levels];
    let mut by_bin = vec![0.0; bins];
    for c in 0..levels {
        for b in 0..bins {
            by_code[c] += joint[c * bins + b];
            by_bin[b] += joint[c * bins + b];
        }
    }
    let mut information = 0.0;
    for c in 0..levels {
        for b in 0..bins {
            let p = joint[c * bins + b];
            if p > 0.0 {
                information += p * (p / (by_code[c] * by_bin[b])).ln();
            }
        }
    }
    information
}

/// `count` quantiles of `values` at the probabilities (i + ½) / count, linearly interpolated between order
/// statistics: a distribution summarised on a fixed grid, so that two summaries compare point by point.
pub fn quantiles(values: &[f64], count: usize) -> Vec<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if sorted.is_empty() {
        return Vec::new();
    }
    sorted.sort_by(f64::total_cmp);
    let last = (sorted.len() - 1) as f64;
    (0..count)
        .map(|i| {
            let at = (i as f64 + 0.5) / count as f64 * last;
            let (low, high) = (at.floor() as usize, at.ceil() as usize);
            sorted[low] + (sorted[high] - sorted[low]) * (at - low as f64)
        })
        .collect()
}

/// The Wasserstein-1 (earth mover's) distance of two distributions given as quantiles on the same grid
/// ([`quantiles`]): the mean distance between matching quantiles. `None` when either is empty or they differ in
/// length.
pub fn quantile_distance(a: &[f64], b: &[f64]) -> Option<f64> {
    (!a.is_empty() && a.len() == b.len())
        .then(|| a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f64>() / a.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_and_their_distance_measure_a_shift() {
        let values: Vec<f64> = (0..101).map(f64::from).collect();
        let q = quantiles(&values, 4);
        assert_eq!(q, [12.5, 37.5, 62.5, 87.5]);
        let shifted: Vec<f64> = values.iter().map(|v| v + 3.0).collect();
        assert!((quantile_distance(&q, &quantiles(&shifted, 4)).unwrap() - 3.0).abs() < 1e-12);
        assert_eq!(quantile_distance(&q, &[]), None);
        assert!(quantiles(&[], 4).is_empty());
    }

    #[test]
    fn spearman_is_one_for_any_increasing_relation_and_handles_ties() {
        let x = [-2.0, -1.0, 0.0, 1.0, 2.0];
        assert_eq!(spearman(&x, &[1.0, 4.0, 9.0, 16.0, 100.0]), Some(1.0));
        assert_eq!(spearman(&x, &[5.0, 4.0, 3.0, 2.0, 1.0]), Some(-1.0));
        assert_eq!(spearman(&x, &[1.0; 5]), None);
        // Ties: ranks 1.5, 1.5, 3, 4, 5 against 1..5.
        let r = spearman(&x, &[0.0, 0.0, 1.0, 2.0, 3.0]).unwrap();
        assert!((r - 0.974_679_434_480_896).abs() < 1e-12, "{r}");
        assert_eq!(ranks(&[3.0, 1.0, 3.0, 2.0]), [3.5, 1.0, 3.5, 2.0]);
    }

    #[test]
    fn mutual_information_is_the_codes_entropy_when_the_value_determines_it_and_zero_when_independent() {
        // Three code levels, the value a function of the code: I = H(code) = ln 3.
        let code: Vec<usize> = (0..300).map(|i| i % 3).collect();
        let determined: Vec<f64> = code.iter().map(|&c| c as f64 * 10.0).collect();
        let mi = binned_mutual_information(&code, &determined, 3, 3);
        assert!((mi - 3f64.ln()).abs() < 1e-12, "{mi}");
        // The value cycles through 3 bins independently of the code (period 9 against period 3 per bin).
        let independent: Vec<f64> = (0..900).map(|i| ((i / 3) % 3) as f64).collect();
        let code: Vec<usize> = (0..900).map(|i| i % 3).collect();
        assert!(binned_mutual_information(&code, &independent, 3, 3).abs() < 1e-12);
    }
}
