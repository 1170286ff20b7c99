//! One split of a dataset as every source yields it: images in [0, 1] and their labels.

/// One split: `len()` images stored contiguously NCHW as f32 in [0, 1], and one label per image.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    pub images: Vec<f32>,
    pub labels: Vec<u8>,
}

impl Split {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// How many images of each class `0..num_classes` this split holds.
    pub fn class_counts(&self, num_classes: usize) -> Vec<usize> {
        let mut counts = vec![0; num_classes];
        for &label in &self.labels {
            counts[usize::from(label)] += 1;
        }
        counts
    }
}
