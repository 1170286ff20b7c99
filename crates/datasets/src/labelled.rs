//! The labelled subset: the few real images whose labels ss-InfoGAN may use.
//!
//! The official code permutes the train split with a generator of its own and takes the permutation's tail
//! as the labelled images and the rest as unlabelled, with no class balancing. We do the same with a seeded
//! host stream; `balanced = true` is an ablation that takes the same number of images from every class.

use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};

/// Disjoint labelled and unlabelled index sets of a train split, with the labelled images' class counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelledSubset {
    /// Indices into the train split whose labels are used, ascending.
    pub labelled: Vec<usize>,
    /// The remaining indices, ascending.
    pub unlabelled: Vec<usize>,
    /// How many labelled images each class has.
    pub per_class: Vec<usize>,
}

impl LabelledSubset {
    /// Chooses exactly `n_labelled` of the images with labels `labels` (0 is allowed: plain InfoGAN).
    ///
    /// ```
    /// use rand::SeedableRng;
    /// use ssinfogan_datasets::LabelledSubset;
    /// let labels: Vec<u8> = (0..100).map(|i| (i % 10) as u8).collect();
    /// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    /// let subset = LabelledSubset::choose(&labels, 10, 20, true, &mut rng)?;
    /// assert_eq!(subset.per_class, vec![2; 10]);
    /// assert_eq!(subset.unlabelled.len(), 80);
    /// # Ok::<(), ssinfogan_datasets::DataError>(())
    /// ```
    pub fn choose(
        labels: &[u8],
        num_classes: usize,
        n_labelled: usize,
        balanced: bool,
        rng: &mut impl Rng,
    ) -> Result<Self> {
        if n_labelled > labels.len() {
            return Err(DataError::Invalid(format!(
                "n_labelled = {n_labelled} is larger than the train split ({} images): choose at most {}",
                labels.len(),
                labels.len()
            )));
        }
        let mut permutation: Vec<usize> = (0..labels.len()).collect();
        permutation.shuffle(rng);
        let mut labelled = if balanced {
            take_balanced(labels, num_classes, n_labelled, &permutation)?
        } else {
            permutation[labels.len() - n_labelled..].to_vec()
        };
        labelled.sort_unstable();
        let mut is_labelled = vec![false; labels.len()];
        for &i in &labelled {
            is_labelled[i] = true;
        }
        let unlabelled = (0..labels.len()).filter(|&i| !is_labelled[i]).collect();
        let mut per_class = vec![0; num_classes];
        for &i in &labelled {
            per_class[usize::from(labels[i])] += 1;
        }
        Ok(Self { labelled, unlabelled, per_class })
    }
}

/// `n / K` images per class (the first `n mod K` classes one more), in the order of `permutation`.
fn take_balanced(labels: &[u8], num_classes: usize, n_labelled: usize, permutation: &[usize]) -> Result<Vec<usize>> {
    let quota: Vec<usize> =
        (0..num_classes).map(|c| n_labelled / num_classes + usize::from(c < n_labelled % num_classes)).collect();
    let mut taken = vec![0; num_classes];
    let mut labelled = Vec::with_capacity(n_labelled);
    for &i in permutation {
        let class = usize::from(labels[i]);
        if taken[class] < quota[class] {
            taken[class] += 1;
            labelled.push(i);
        }
    }
    if let Some(class) = (0..num_classes).find(|&c| taken[c] < quota[c]) {
        return Err(DataError::Invalid(format!(
            "a balanced labelled subset of {n_labelled} needs {} images of class {class}, the train split has {}: \
             lower n_labelled or set balanced = false",
            quota[class], taken[class]
        )));
    }
    Ok(labelled)
}
