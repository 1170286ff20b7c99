//! The names of the numbers a run records: the `metric` column of `metrics.csv` and `timing.csv` (long format,
//! `iteration,epoch,metric,value`). The crates that write a row (`training`, `metrics`) and the one that reads it
//! back (`reporting`) both name it through these constants, so a renamed metric is a compile error in every reader
//! instead of a column that silently stays empty. The strings are the file format: changing one changes every
//! `metrics.csv` written from then on, and older runs no longer match.
//!
//! What each evaluation metric measures is in docs/method.md, "How a run is measured".

// The evaluation (`ssinfogan_metrics::evaluate`), once per epoch, in the order it writes them.

/// C_err with code value k read as class k: the test of control.
pub const C_ERR_IDENTITY: &str = "c_err_identity";
/// C_err under the greedy one-to-one mapping of code values to classes (the official code's).
pub const C_ERR_GREEDY: &str = "c_err_greedy";
/// C_err under the optimal (Hungarian) one-to-one mapping of code values to classes.
pub const C_ERR_HUNGARIAN: &str = "c_err_hungarian";
/// Q_ss as a classifier of the real test split, prediction k read as class k.
pub const Q_ERR_REAL_IDENTITY: &str = "q_err_real_identity";
/// Q_ss as a classifier of the real test split under the Hungarian mapping.
pub const Q_ERR_REAL_HUNGARIAN: &str = "q_err_real_hungarian";
/// Q_ss on generated images against the semi-supervised code that made them.
pub const Q_ERR_FAKE: &str = "q_err_fake";
/// InfoGAN's lower bound H(c) − CE(Q_ss(G(z, c)), c) on I(c; G(z, c)), in nats.
pub const MI_LOWER_BOUND_SS: &str = "mi_lower_bound_ss";
/// The plug-in I(code; class the evaluation classifier sees), in nats.
pub const MI_CODE_CLASS: &str = "mi_code_class";
/// [`MI_CODE_CLASS`] divided by ln K.
pub const MI_CODE_CLASS_NORMALISED: &str = "mi_code_class_normalised";
/// The plug-in I(Q_ss prediction; true label) on the real test split, in nats.
pub const MI_Q_SS_LABEL: &str = "mi_q_ss_label";
/// The Fréchet distance between real test images and generated ones in the evaluation classifier's features.
pub const FRECHET_DISTANCE: &str = "frechet_distance";
/// The evaluation classifier's mean confidence on generated images.
pub const CLASSIFIER_CONFIDENCE: &str = "classifier_confidence";
/// How many generated images the evaluation classified: the precision of everything above.
pub const EVALUATED_SAMPLES: &str = "evaluated_samples";
/// C_err as the official code measures it (at the final evaluation only): 128 images per code value, the greedy
/// mapping, each code value's error averaged (`ssinfogan_metrics::official`).
pub const C_ERR_OFFICIAL: &str = "c_err_official";
/// Q_err(real) as the official code measures it (at the final evaluation only): the first 128 test images of each
/// class, Q_ss greedy-mapped, each class's error averaged.
pub const Q_ERR_REAL_OFFICIAL: &str = "q_err_real_official";

// The training losses (`ssinfogan_training`), epoch means of every iteration that computed them.

/// The discriminator's adversarial loss on real images.
pub const D_REAL: &str = "d_real";
/// The discriminator's adversarial loss on generated images.
pub const D_FAKE: &str = "d_fake";
/// The generator's (non-saturating) adversarial loss.
pub const G_ADV: &str = "g_adv";
/// The semi-supervised information loss of Q_ss on generated images, in the generator step.
pub const Q_SS_FAKE: &str = "q_ss_fake";
/// The unsupervised information loss of Q_us on generated images.
pub const Q_US: &str = "q_us";
/// The semi-supervised loss of Q_ss on labelled real images.
pub const Q_SS_REAL: &str = "q_ss_real";
/// Q_ss's accuracy on the labelled real images of a batch.
pub const Q_SS_REAL_ACCURACY: &str = "q_ss_real_accuracy";

// The schedule of real batches (`ssinfogan_training`), per epoch.

/// Labelled real batches drawn in the epoch.
pub const LABELLED_BATCHES: &str = "labelled_batches";
/// Unlabelled real batches drawn in the epoch.
pub const UNLABELLED_BATCHES: &str = "unlabelled_batches";
/// The probability of an unlabelled batch in the epoch.
pub const UNLABELLED_PROBABILITY: &str = "unlabelled_probability";

/// Every name of `metrics.csv` above, for checks that range over them all.
pub const METRICS: [&str; 25] = [
    C_ERR_IDENTITY,
    C_ERR_GREEDY,
    C_ERR_HUNGARIAN,
    Q_ERR_REAL_IDENTITY,
    Q_ERR_REAL_HUNGARIAN,
    Q_ERR_FAKE,
    MI_LOWER_BOUND_SS,
    MI_CODE_CLASS,
    MI_CODE_CLASS_NORMALISED,
    MI_Q_SS_LABEL,
    FRECHET_DISTANCE,
    CLASSIFIER_CONFIDENCE,
    EVALUATED_SAMPLES,
    C_ERR_OFFICIAL,
    Q_ERR_REAL_OFFICIAL,
    D_REAL,
    D_FAKE,
    G_ADV,
    Q_SS_FAKE,
    Q_US,
    Q_SS_REAL,
    Q_SS_REAL_ACCURACY,
    LABELLED_BATCHES,
    UNLABELLED_BATCHES,
    UNLABELLED_PROBABILITY,
];

/// The training losses (and Q_ss's accuracy on labelled batches): in `metrics.csv` after every epoch, whether or
/// not the run evaluates.
pub const TRAINING_LOSSES: [&str; 7] = [D_REAL, D_FAKE, G_ADV, Q_SS_FAKE, Q_US, Q_SS_REAL, Q_SS_REAL_ACCURACY];

/// Whether a metric improves upwards: the mutual informations, accuracies and confidences; errors, losses and
/// distances improve downwards.
pub fn higher_is_better(name: &str) -> bool {
    name.starts_with("mi_") || matches!(name, Q_SS_REAL_ACCURACY | CLASSIFIER_CONFIDENCE)
}

/// The parts of an epoch's wall time, the `metric` column of `timing.csv`, in seconds.
pub mod seconds {
    /// The epoch's training iterations.
    pub const TRAINING: &str = "training_seconds";
    /// The whole evaluation after the epoch; the four parts below and the progress grid are within it.
    pub const EVALUATION: &str = "evaluation_seconds";
    /// Generating the evaluation's images.
    pub const EVALUATION_GENERATION: &str = "evaluation_generation_seconds";
    /// The evaluation classifier on the generated images.
    pub const EVALUATION_CLASSIFIER: &str = "evaluation_classifier_seconds";
    /// The Q_ss head on generated and real images.
    pub const EVALUATION_Q: &str = "evaluation_q_seconds";
    /// The Fréchet distance.
    pub const EVALUATION_FRECHET: &str = "evaluation_frechet_seconds";
    /// The progress grid drawn at the evaluation.
    pub const PROGRESS_GRID: &str = "progress_grid_seconds";
    /// Writing the epoch's checkpoint.
    pub const CHECKPOINT: &str = "checkpoint_seconds";
    /// The epoch from start to end.
    pub const WALL: &str = "wall_seconds";

    /// Every name of `timing.csv` above.
    pub const PARTS: [&str; 9] = [
        TRAINING,
        EVALUATION,
        EVALUATION_GENERATION,
        EVALUATION_CLASSIFIER,
        EVALUATION_Q,
        EVALUATION_FRECHET,
        PROGRESS_GRID,
        CHECKPOINT,
        WALL,
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names are written unquoted into a CSV column and looked up by equality: each must be a distinct
    /// lower-case identifier, or two metrics would share a column or a row would split into extra fields.
    fn check(names: &[&str]) {
        for (i, name) in names.iter().enumerate() {
            assert!(
                !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "`{name}` is not a lower-case identifier"
            );
            assert!(!names[..i].contains(name), "`{name}` names two metrics");
        }
    }

    #[test]
    fn metric_names_are_distinct_csv_safe_identifiers() {
        check(&METRICS);
        check(&seconds::PARTS);
        // A timing part in metrics.csv (or the reverse) would be read as the other file's number.
        assert!(METRICS.iter().all(|m| !seconds::PARTS.contains(m)));
    }
}
