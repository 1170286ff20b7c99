//! The official code's evaluation protocol (github.com/spurra/ss-infogan, `helper_functions.lua`), measured beside
//! ours so that our numbers can be set against the paper's on its own terms:
//! - **C_err**: one batch of 128 generated images per code value; the greedy one-to-one mapping of code values to
//!   classes on the mean classifier output per code value; the error of each code value under it, averaged over the
//!   code values (`test_signal`);
//! - **Q_err(real)**: the first 128 test images of each class, in the test split's order; the greedy mapping of true
//!   classes to Q_ss outputs on the mean Q_ss logits per class; each class's error, averaged over the classes
//!   (`evaluate_infoHead_real`).
//!
//! Where we differ from the Lua (docs/method.md, "The official code's protocol"): our networks run in inference
//! mode (the official D stays in training mode, with batch statistics), and a mapped row or column is removed from
//! the greedy search (the official code overwrites it with −1, which a logit below −1 can still beat).

use crate::mapping::greedy_mapping;

/// The official code's evaluation batch: images per code value, and test images per class.
pub const OFFICIAL_BATCH: usize = 128;

/// The official C_err of images given in code order, `per_code` per code value (of `scores.len() / per_code`
/// values): the first `min(per_code, 128)` of each value, greedy-mapped on their mean `scores` (the classifier's
/// probabilities), each value's error averaged. `predicted` is the classifier's class of each image.
pub fn official_c_err(scores: &[Vec<f32>], predicted: &[u32], per_code: usize) -> f64 {
    let used = per_code.min(OFFICIAL_BATCH);
    let rows: Vec<Vec<usize>> = (0..scores.len() / per_code.max(1))
        .map(|value| (value * per_code..value * per_code + used).collect())
        .collect();
    mapped_error(&rows, scores, predicted)
}

/// The official Q_err(real): per class the first 128 test images with that label (in the split's order), the
/// greedy mapping of classes to Q_ss outputs on their mean `logits`, each class's error averaged. `predicted` is
/// Q_ss's output of each test image; classes without a test image are left out.
pub fn official_q_err_real(logits: &[Vec<f32>], predicted: &[u32], labels: &[u32], classes: usize) -> f64 {
    let mut rows: Vec<Vec<usize>> = vec![Vec::new(); classes];
    for (i, &label) in labels.iter().enumerate() {
        let row = &mut rows[label as usize];
        if row.len() < OFFICIAL_BATCH {
            row.push(i);
        }
    }
    rows.retain(|r| !r.is_empty());
    mapped_error(&rows, logits, predicted)
}

/// Rows of images (index lists): the greedy mapping on each row's mean score, then the mean over rows of the
/// fraction of a row's images whose prediction is not its mapped column.
fn mapped_error(rows: &[Vec<usize>], scores: &[Vec<f32>], predicted: &[u32]) -> f64 {
    let columns = scores.first().map_or(0, Vec::len);
    let means: Vec<Vec<f64>> = rows
        .iter()
        .map(|row| {
            let mut sum = vec![0.0f64; columns];
            for &i in row {
                for (s, &v) in sum.iter_mut().zip(&scores[i]) {
                    *s += f64::from(v);
                }
            }
            sum.into_iter().map(|s| s / row.len() as f64).collect()
        })
        .collect();
    let mapping = greedy_mapping(&means);
    let errors: Vec<f64> = rows
        .iter()
        .zip(&mapping)
        .map(|(row, &column)| {
            row.iter().filter(|&&i| predicted[i] as usize != column).count() as f64 / row.len() as f64
        })
        .collect();
    errors.iter().sum::<f64>() / errors.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One-hot scores of the classes in `predicted`.
    fn one_hot(predicted: &[u32], classes: usize) -> Vec<Vec<f32>> {
        predicted.iter().map(|&p| (0..classes).map(|c| f32::from(c == p as usize)).collect()).collect()
    }

    #[test]
    fn c_err_uses_the_first_128_of_each_code_value_and_averages_over_values() {
        // 200 images per value; value 0 makes class 1 (then class 0 after its first 128), value 1 class 0.
        let mut predicted = vec![1u32; 128];
        predicted.extend(vec![0u32; 72]);
        predicted.extend(vec![0u32; 200]);
        let scores = one_hot(&predicted, 2);
        // The mapping (0→1, 1→0) is read from the first 128 only: no error at all, though 72 later images differ.
        assert_eq!(official_c_err(&scores, &predicted, 200), 0.0);
        // With 10 images per value, value 0's are all class 1, value 1 half class 1: 0→1, 1→0, errors 0 and 0.5.
        let predicted = [vec![1u32; 10], vec![1u32; 5], vec![0u32; 5]].concat();
        assert_eq!(official_c_err(&one_hot(&predicted, 2), &predicted, 10), 0.25);
    }

    #[test]
    fn q_err_real_takes_128_per_class_in_order_and_balances_classes() {
        // 300 of class 0 (all right), 10 of class 1 (all wrong): balanced, the error is (0 + 1) / 2 even though
        // 10 of 138 images are wrong; the 172 images of class 0 after its first 128 do not count.
        let labels = [vec![0u32; 300], vec![1u32; 10]].concat();
        let predicted = [vec![0u32; 300], vec![0u32; 10]].concat();
        let logits = one_hot(&predicted, 3);
        // Class 1's mean logits favour output 0, but output 0 is class 0's: class 1 maps to output 1 or 2, and
        // its images (all output 0) are all wrong.
        assert_eq!(official_q_err_real(&logits, &predicted, &labels, 3), 0.5);
    }
}
