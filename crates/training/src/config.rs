//! The training hyperparameters of an experiment: the `[optimiser]`, `[schedule]` and `[training]` tables of its
//! TOML.

use serde::{Deserialize, Serialize};
use ssinfogan_core::Ops;

use crate::adam::AdamConfig;

/// `[training]`: how the steps are computed, as opposed to what they compute.
///
/// ```toml
/// [training]
/// ops = "candle"   # or "fast" (the default)
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingConfig {
    /// Which implementation runs the layers and the Adam update of the training steps and of the evaluation:
    /// `"fast"` (default), the CPU kernels of `ssinfogan-kernels` and the fused Adam update for f32 on the CPU
    /// (candle's ops on any other device), or `"candle"`, candle's own ops everywhere, the path a CUDA device
    /// runs. The two round differently, so the same seed gives close but not identical numbers.
    #[serde(default)]
    pub ops: Ops,
    /// `losses.csv` gets the mean of each loss over every this many iterations of an epoch (and over the rest at
    /// the epoch's end), to watch a run between the epochs of `metrics.csv`; 0: no `losses.csv`. Default 10.
    #[serde(default = "TrainingConfig::default_losses_every")]
    pub losses_every: usize,
    /// TensorBoard event files in the run directory (`tensorboard --logdir results/`): the rows of `losses.csv`
    /// as `train/<loss>` and those of `metrics.csv` as `epoch/<metric>`. Default true.
    #[serde(default = "TrainingConfig::default_tensorboard")]
    pub tensorboard: bool,
}

impl Default for TrainingConfig {
    fn default() -> Self {
        Self { ops: Ops::default(), losses_every: Self::default_losses_every(), tensorboard: true }
    }
}

impl TrainingConfig {
    fn default_losses_every() -> usize {
        10
    }

    fn default_tensorboard() -> bool {
        true
    }

    /// Whether this is the default (`ops = "fast"`, `losses_every = 10`, `tensorboard = true`): a resolved config leaves the table out then, so that runs
    /// recorded before the table existed read as the same config.
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// Two Adam optimisers, as the official code: D and the Q heads at lr 1e-4, G at lr 1e-3, β1 0.5, ε 1e-8.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimiserConfig {
    pub discriminator: AdamConfig,
    pub generator: AdamConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    pub batch_size: usize,
    /// The official code's "epochs" are fixed blocks of updates, not passes over the data.
    pub epochs: usize,
    pub iterations_per_epoch: usize,
    /// Growth per epoch of the probability of an unlabelled batch (official: 0.1); `"none"` (or absent): no
    /// growth, the probability is the unlabelled fraction from the first iteration.
    #[serde(default, with = "growth")]
    pub unlabelled_probability_growth: Option<f64>,
}

/// `unlabelled_probability_growth` is a number or the string `"none"`: an overlay can switch growth off, which
/// it could not do by leaving the key out (overlays only add and replace keys).
mod growth {
    use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum Value {
        PerEpoch(f64),
        Word(String),
    }

    pub fn serialize<S: Serializer>(growth: &Option<f64>, serializer: S) -> Result<S::Ok, S::Error> {
        match growth {
            Some(g) => Value::PerEpoch(*g),
            None => Value::Word("none".into()),
        }
        .serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<f64>, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::PerEpoch(g) => Ok(Some(g)),
            Value::Word(w) if w == "none" => Ok(None),
            Value::Word(w) => Err(de::Error::custom(format!(
                "`{w}` is neither a growth per epoch (e.g. 0.1, the official value) nor \"none\""
            ))),
        }
    }
}

impl ScheduleConfig {
    pub fn total_iterations(&self) -> u64 {
        (self.epochs * self.iterations_per_epoch) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(growth: &str) -> Result<ScheduleConfig, toml::de::Error> {
        toml::from_str(&format!(
            "batch_size = 64\nepochs = 2\niterations_per_epoch = 10\nunlabelled_probability_growth = {growth}"
        ))
    }

    #[test]
    fn ops_default_to_the_fast_path_and_unknown_ones_are_errors() {
        assert_eq!(toml::from_str::<TrainingConfig>("").unwrap().ops, Ops::Fast);
        assert_eq!(toml::from_str::<TrainingConfig>("ops = \"candle\"").unwrap().ops, Ops::Candle);
        let written = toml::to_string(&TrainingConfig { ops: Ops::Candle, ..TrainingConfig::default() }).unwrap();
        assert_eq!(written.trim(), "ops = \"candle\"\nlosses_every = 10\ntensorboard = true");
        assert_eq!(toml::from_str::<TrainingConfig>("losses_every = 0").unwrap().losses_every, 0);
        let error = toml::from_str::<TrainingConfig>("ops = \"gpu\"").unwrap_err().to_string();
        assert!(error.contains("unknown variant `gpu`") && error.contains("`candle`"), "{error}");
    }

    #[test]
    fn growth_is_a_number_or_none_and_round_trips() {
        assert_eq!(schedule("0.1").unwrap().unlabelled_probability_growth, Some(0.1));
        let off = schedule("\"none\"").unwrap();
        assert_eq!(off.unlabelled_probability_growth, None);
        let written = toml::to_string(&off).unwrap();
        assert!(written.contains("unlabelled_probability_growth = \"none\""), "{written}");
        assert_eq!(toml::from_str::<ScheduleConfig>(&written).unwrap(), off);
        let error = schedule("\"off\"").unwrap_err().to_string();
        assert!(error.contains("`off` is neither"), "{error}");
    }
}
