//! How ss-InfoGAN runs are measured (Spurr et al. 2017, §4; docs/method.md "How a run is measured"):
//! C_err under the identity, greedy (official) and Hungarian code-to-class mappings ([`mapping`]), the
//! mutual-information estimates in nats ([`information`]), and the Fréchet distance between feature sets
//! ([`frechet`]) — pure functions of counts, probabilities and features — and the evaluation classifier
//! ([`classifier`]) and one whole evaluation of a generator with its Q heads ([`evaluate`]).

pub mod classifier;
pub mod evaluate;
pub mod frechet;
pub mod information;
pub mod mapping;
pub mod official;
pub mod sweep;

pub use classifier::{accuracy, train_classifier, Classifier, ClassifierConfig, CLASSIFIER_VERSION};
pub use evaluate::{evaluate, generate_first_per_code, generate_per_code, Evaluation, EvaluationInputs, RealFeatures};
pub use frechet::{frechet_distance, frechet_distance_from_moments};
pub use information::{entropy, mutual_information, mutual_information_lower_bound};
pub use mapping::{error_under, greedy_mapping, hungarian_mapping, ConfusionMatrix};
pub use official::{official_c_err, official_q_err_real, OFFICIAL_BATCH};
pub use sweep::{continuous_sweeps, sweep_values, SweepGrid};
