//! Code-to-class mappings and the classification error under each.
//!
//! For each value k of the semi-supervised code, N images are generated and classified; the counts form a
//! (code value × class) matrix. **Identity**: code k must be class k (the real test of control, the claim of
//! ss-InfoGAN). **Greedy**: the official code repeatedly takes the largest remaining entry of the matrix of mean
//! predicted probabilities and maps that code to that class, one to one. **Hungarian**: the one-to-one mapping
//! that maximises the number of correctly classified images (Kuhn–Munkres, from `pathfinding`).

use pathfinding::prelude::{kuhn_munkres, Matrix};

/// Counts of (code value, class) pairs: `counts[code][class]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfusionMatrix {
    pub counts: Vec<Vec<u64>>,
}

impl ConfusionMatrix {
    /// An empty matrix of `codes` rows and `classes` columns.
    pub fn new(codes: usize, classes: usize) -> Self {
        Self { counts: vec![vec![0; classes]; codes] }
    }

    pub fn add(&mut self, code: usize, class: usize) {
        self.counts[code][class] += 1;
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().flatten().sum()
    }

    /// Counts as probabilities, each row summing to 1 (rows without samples stay 0).
    pub fn row_frequencies(&self) -> Vec<Vec<f64>> {
        self.counts
            .iter()
            .map(|row| {
                let n: u64 = row.iter().sum();
                row.iter().map(|&c| if n == 0 { 0.0 } else { c as f64 / n as f64 }).collect()
            })
            .collect()
    }
}

/// The 0–1 error when code `k` is read as class `mapping[k]`.
///
/// ```
/// use ssinfogan_metrics::{error_under, ConfusionMatrix};
/// let m = ConfusionMatrix { counts: vec![vec![9, 1], vec![2, 8]] };
/// assert_eq!(error_under(&m, &[0, 1]), 0.15);
/// ```
pub fn error_under(matrix: &ConfusionMatrix, mapping: &[usize]) -> f64 {
    let correct: u64 = matrix.counts.iter().zip(mapping).map(|(row, &class)| row[class]).sum();
    let total = matrix.total();
    (total - correct) as f64 / total as f64
}

/// The official greedy one-to-one mapping on a (code × class) score matrix, e.g. mean predicted
/// probabilities: take the largest remaining score, map its code to its class, remove both, repeat. Ties go to
/// the lower code, then the lower class. Needs at least as many classes as codes.
pub fn greedy_mapping(scores: &[Vec<f64>]) -> Vec<usize> {
    let codes = scores.len();
    let classes = scores.first().map_or(0, Vec::len);
    let mut mapping = vec![usize::MAX; codes];
    let mut class_taken = vec![false; classes];
    for _ in 0..codes.min(classes) {
        let mut best: Option<(usize, usize)> = None;
        for (code, row) in scores.iter().enumerate() {
            if mapping[code] != usize::MAX {
                continue;
            }
            for (class, &score) in row.iter().enumerate() {
                if !class_taken[class] && best.is_none_or(|(c, k)| score > scores[c][k]) {
                    best = Some((code, class));
                }
            }
        }
        if let Some((code, class)) = best {
            mapping[code] = class;
            class_taken[class] = true;
        }
    }
    mapping
}

/// The one-to-one mapping that maximises the number of images classified as their mapped class.
/// Needs at least as many classes as codes.
pub fn hungarian_mapping(matrix: &ConfusionMatrix) -> Vec<usize> {
    let rows = matrix.counts.len();
    let columns = matrix.counts.first().map_or(0, Vec::len);
    let weights = Matrix::from_fn(rows, columns, |(r, c)| matrix.counts[r][c] as i64);
    kuhn_munkres(&weights).1
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A perfect code whose value k always makes class (k + 1) mod 10.
    fn permuted_perfect_code() -> ConfusionMatrix {
        let mut m = ConfusionMatrix::new(10, 10);
        for code in 0..10 {
            for _ in 0..100 {
                m.add(code, (code + 1) % 10);
            }
        }
        m
    }

    #[test]
    fn a_permuted_perfect_code_is_wrong_under_identity_and_right_under_the_mappings() {
        let m = permuted_perfect_code();
        let identity: Vec<usize> = (0..10).collect();
        assert_eq!(error_under(&m, &identity), 1.0);
        let hungarian = hungarian_mapping(&m);
        assert_eq!(hungarian, (0..10).map(|k| (k + 1) % 10).collect::<Vec<_>>());
        assert_eq!(error_under(&m, &hungarian), 0.0);
        assert_eq!(error_under(&m, &greedy_mapping(&m.row_frequencies())), 0.0);
    }

    #[test]
    fn a_mostly_right_code_has_the_expected_identity_error() {
        // Each code value makes its own class 10% of the time and class (k + 1) the other 90%.
        let mut m = ConfusionMatrix::new(10, 10);
        for code in 0..10 {
            m.counts[code][code] = 10;
            m.counts[code][(code + 1) % 10] = 90;
        }
        assert!((error_under(&m, &(0..10).collect::<Vec<_>>()) - 0.9).abs() < 1e-12);
        assert!((error_under(&m, &hungarian_mapping(&m)) - 0.1).abs() < 1e-12);
    }

    #[test]
    fn greedy_and_hungarian_differ_where_the_largest_entry_misleads() {
        // Greedy takes (0, 0) = 60 first and must then map code 1 to class 1 (10): 70 correct of 200.
        // Hungarian maps 0→1, 1→0: 55 + 50 = 105 correct.
        let m = ConfusionMatrix { counts: vec![vec![60, 55], vec![50, 10]] };
        let greedy =
            greedy_mapping(&m.counts.iter().map(|r| r.iter().map(|&c| c as f64).collect()).collect::<Vec<_>>());
        assert_eq!(greedy, vec![0, 1]);
        assert_eq!(hungarian_mapping(&m), vec![1, 0]);
        assert!((error_under(&m, &greedy) - (1.0 - 70.0 / 175.0)).abs() < 1e-12);
        assert!((error_under(&m, &[1, 0]) - (1.0 - 105.0 / 175.0)).abs() < 1e-12);
    }
}
