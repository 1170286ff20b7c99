//! One line of `ssinfogan bench` (and of `bench/reference_torch.py`, which prints the same shape): the timing of
//! the training iteration at one batch size, as JSON. The binary writes it, `cargo xtask bench` reads it.

use serde::{Deserialize, Serialize};

/// The timing of one batch size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    pub implementation: String,
    pub batch_size: usize,
    pub threads: usize,
    /// Timed iterations (absent from older lines and from PyTorch's: 0).
    #[serde(default)]
    pub iterations: usize,
    pub median_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
    /// On the CPU, ssinfogan's matrix-product instruction set (`avx512f`, `fma`, …); absent from PyTorch's.
    #[serde(default)]
    pub cpu_products: Option<String>,
}

/// The median of a non-empty list, in any order (the mean of the middle two for an even count).
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        0.5 * (sorted[mid - 1] + sorted[mid])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_sorts_and_averages_the_middle_two() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        let line =
            r#"{"implementation":"pytorch","batch_size":64,"threads":2,"median_ms":1.5,"min_ms":1.0,"max_ms":2.0}"#;
        let timing: Timing = serde_json::from_str(line).unwrap();
        assert_eq!((timing.iterations, timing.cpu_products), (0, None));
    }
}
