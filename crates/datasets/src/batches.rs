//! Batches of labelled and unlabelled images, and the biased coin that picks between them.
//!
//! The official code draws, at every iteration, a labelled batch with probability `1 − p` and an unlabelled
//! batch with probability `p`. With growth enabled (the default when there are labels), `p` is 0 in the first
//! epoch and grows by a fixed step (0.1) after each epoch until it reaches the unlabelled fraction of the train
//! split (0.99 for 600 of 60,000), so early epochs see mostly labelled data. Without labels every batch is
//! unlabelled. We compute `p` as `min(step · epoch, fraction)` rather than by repeated addition, so that
//! `p` is exact to the last bit at every epoch and does not depend on how many epochs came before.

use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};

/// Whether an iteration trains on a labelled or an unlabelled real batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BatchKind {
    Labelled,
    Unlabelled,
}

/// The probability of an unlabelled batch at each epoch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BatchSchedule {
    /// The unlabelled fraction of the train split: the probability `p` grows up to it.
    pub unlabelled_fraction: f64,
    /// Growth of `p` per epoch; `None` holds `p` at `unlabelled_fraction` from the start.
    pub growth_per_epoch: Option<f64>,
}

impl BatchSchedule {
    /// The schedule of the official code for `n_labelled` of `n_train` images: growth 0.1 per epoch.
    ///
    /// ```
    /// use ssinfogan_datasets::BatchSchedule;
    /// let s = BatchSchedule::new(600, 60_000, Some(0.1))?;
    /// assert_eq!(s.unlabelled_probability(0), 0.0);
    /// assert_eq!(s.unlabelled_probability(3), 0.30000000000000004); // 3 × 0.1 in f64
    /// assert_eq!(s.unlabelled_probability(20), 0.99);
    /// # Ok::<(), ssinfogan_datasets::DataError>(())
    /// ```
    pub fn new(n_labelled: usize, n_train: usize, growth_per_epoch: Option<f64>) -> Result<Self> {
        if n_train == 0 || n_labelled > n_train {
            return Err(DataError::Invalid(format!(
                "n_labelled = {n_labelled} must be at most the train split's {n_train} images"
            )));
        }
        if let Some(g) = growth_per_epoch {
            if !(g > 0.0 && g <= 1.0) {
                return Err(DataError::Invalid(format!(
                    "the unlabelled-probability growth per epoch is {g}; it must be in (0, 1] (official: 0.1)"
                )));
            }
        }
        Ok(Self { unlabelled_fraction: 1.0 - n_labelled as f64 / n_train as f64, growth_per_epoch })
    }

    /// `p`, the probability of an unlabelled batch during `epoch` (counted from 0).
    pub fn unlabelled_probability(&self, epoch: usize) -> f64 {
        match self.growth_per_epoch {
            // Without labels there is nothing to grow from: every batch is unlabelled (as the official code).
            Some(growth) if self.unlabelled_fraction < 1.0 => (growth * epoch as f64).min(self.unlabelled_fraction),
            _ => self.unlabelled_fraction,
        }
    }

    /// Tosses the biased coin for one iteration of `epoch`.
    pub fn draw(&self, epoch: usize, rng: &mut impl Rng) -> BatchKind {
        let p = self.unlabelled_probability(epoch);
        // `random::<f64>()` is uniform on [0, 1): p = 0 never and p = 1 always gives an unlabelled batch.
        if rng.random::<f64>() < p {
            BatchKind::Unlabelled
        } else {
            BatchKind::Labelled
        }
    }
}

/// An endless stream of batches of indices from a fixed index set, reshuffled at every pass.
///
/// A batch that reaches the end of a pass is completed from the next, reshuffled pass, so every batch has
/// exactly `batch_size` indices, and every index appears once per pass. A set smaller than the batch (132
/// labelled images, batch 128, is fine; 100 labelled images is not) repeats indices within a batch.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BatchSampler {
    order: Vec<usize>,
    position: usize,
    batch_size: usize,
    passes: u64,
    rng: ChaCha8Rng,
}

impl BatchSampler {
    pub fn new(indices: Vec<usize>, batch_size: usize, mut rng: ChaCha8Rng) -> Result<Self> {
        if batch_size == 0 {
            return Err(DataError::Invalid("batch size 0: a batch needs at least one image".to_string()));
        }
        if indices.is_empty() {
            return Err(DataError::Invalid("cannot draw batches from an empty set of images".to_string()));
        }
        let mut order = indices;
        order.shuffle(&mut rng);
        Ok(Self { order, position: 0, batch_size, passes: 0, rng })
    }

    /// The next `batch_size` indices.
    pub fn next_batch(&mut self) -> Vec<usize> {
        let mut batch = Vec::with_capacity(self.batch_size);
        while batch.len() < self.batch_size {
            if self.position == self.order.len() {
                self.order.shuffle(&mut self.rng);
                self.position = 0;
                self.passes += 1;
            }
            let take = (self.batch_size - batch.len()).min(self.order.len() - self.position);
            batch.extend_from_slice(&self.order[self.position..self.position + take]);
            self.position += take;
        }
        batch
    }

    /// How many full passes over the set have been completed.
    pub fn passes(&self) -> u64 {
        self.passes
    }
}

/// The real batches of a run: the coin of [`BatchSchedule`] picks labelled or unlabelled, and the matching
/// [`BatchSampler`] gives the indices. Either set may be empty (no labels: plain InfoGAN; all labels), and the
/// schedule then never picks it.
///
/// It serialises whole (samplers, their positions, every stream's state), so a checkpoint can resume the
/// exact sequence of batches.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RealBatches {
    sets: Sets,
    schedule: BatchSchedule,
    coin: ChaCha8Rng,
}

/// Which index sets exist; at least one does, by construction.
// There is one `Sets` per training run, never a collection of them, so the size gap between `Both` and the
// one-set variants costs a few hundred bytes once; boxing would only add an indirection to every batch.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Serialize, Deserialize)]
enum Sets {
    Both { labelled: BatchSampler, unlabelled: BatchSampler },
    LabelledOnly(BatchSampler),
    UnlabelledOnly(BatchSampler),
}

impl RealBatches {
    /// `labelled_rng`, `unlabelled_rng` and `coin` are three separate named streams, so changing how often
    /// one is drawn from leaves the others' numbers as they were.
    pub fn new(
        subset: &crate::labelled::LabelledSubset,
        batch_size: usize,
        growth_per_epoch: Option<f64>,
        labelled_rng: ChaCha8Rng,
        unlabelled_rng: ChaCha8Rng,
        coin: ChaCha8Rng,
    ) -> Result<Self> {
        let (n_labelled, n_train) = (subset.labelled.len(), subset.labelled.len() + subset.unlabelled.len());
        let schedule = BatchSchedule::new(n_labelled, n_train, growth_per_epoch)?;
        let labelled = || BatchSampler::new(subset.labelled.clone(), batch_size, labelled_rng.clone());
        let unlabelled = || BatchSampler::new(subset.unlabelled.clone(), batch_size, unlabelled_rng.clone());
        let sets = match (subset.labelled.is_empty(), subset.unlabelled.is_empty()) {
            (false, false) => Sets::Both { labelled: labelled()?, unlabelled: unlabelled()? },
            (false, true) => Sets::LabelledOnly(labelled()?),
            (true, false) => Sets::UnlabelledOnly(unlabelled()?),
            (true, true) => return Err(DataError::Invalid("the train split is empty".to_string())),
        };
        Ok(Self { sets, schedule, coin })
    }

    pub fn schedule(&self) -> &BatchSchedule {
        &self.schedule
    }

    /// The kind and train-split indices of the next batch during `epoch` (counted from 0).
    ///
    /// ```
    /// use ssinfogan_core::RngStreams;
    /// use ssinfogan_datasets::{BatchKind, LabelledSubset, RealBatches};
    /// let labels: Vec<u8> = (0..100).map(|i| (i % 10) as u8).collect();
    /// let s = RngStreams::new(1);
    /// let subset = LabelledSubset::choose(&labels, 10, 20, false, &mut s.stream("labelled-subset"))?;
    /// let mut batches = RealBatches::new(&subset, 8, Some(0.1), s.stream("labelled"), s.stream("unlabelled"), s.stream("coin"))?;
    /// let (kind, indices) = batches.next(0);
    /// assert_eq!(kind, BatchKind::Labelled); // p = 0 in the first epoch
    /// assert!(indices.iter().all(|i| subset.labelled.contains(i)));
    /// # Ok::<(), ssinfogan_datasets::DataError>(())
    /// ```
    pub fn next(&mut self, epoch: usize) -> (BatchKind, Vec<usize>) {
        // With one set only, p is 0 (no unlabelled images) or 1 (no labels): the coin is still tossed, so the
        // coin stream advances the same way whatever the label count.
        let kind = self.schedule.draw(epoch, &mut self.coin);
        match (&mut self.sets, kind) {
            (Sets::Both { labelled, .. }, BatchKind::Labelled) => (kind, labelled.next_batch()),
            (Sets::Both { unlabelled, .. }, BatchKind::Unlabelled) => (kind, unlabelled.next_batch()),
            (Sets::LabelledOnly(labelled), _) => (BatchKind::Labelled, labelled.next_batch()),
            (Sets::UnlabelledOnly(unlabelled), _) => (BatchKind::Unlabelled, unlabelled.next_batch()),
        }
    }
}
