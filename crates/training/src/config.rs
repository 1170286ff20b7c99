//! The training hyperparameters of an experiment: the `[optimiser]`, `[schedule]` and `[training]` tables of its
//! TOML.

use serde::{Deserialize, Serialize};
use ssinfogan_core::metric;
use ssinfogan_kernels::Ops;

use crate::adam::AdamConfig;

/// `[training]`: how the steps are computed, as opposed to what they compute.
///
/// ```toml
/// [training]
/// ops = "candle"   # or "fast" (the default)
///
/// [training.checkpoints]
/// keep_last = 2                  # the newest two (the default)
/// monitor = "c_err_hungarian"    # and the best by this metric of metrics.csv
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    /// Which checkpoints the run keeps (`[training.checkpoints]`); absent: the newest two.
    #[serde(default, skip_serializing_if = "CheckpointPolicy::is_default")]
    pub checkpoints: CheckpointPolicy,
}

impl Default for TrainingConfig {
    fn default() -> Self {
        Self {
            ops: Ops::default(),
            losses_every: Self::default_losses_every(),
            tensorboard: true,
            checkpoints: CheckpointPolicy::default(),
        }
    }
}

impl TrainingConfig {
    fn default_losses_every() -> usize {
        10
    }

    fn default_tensorboard() -> bool {
        true
    }

    /// Whether this is the default (`ops = "fast"`, `losses_every = 10`, `tensorboard = true`, the newest two
    /// checkpoints): a resolved config leaves the table out then, so that runs recorded before the table existed
    /// read as the same config.
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// The checks serde cannot make; the message names the key and the fix.
    pub fn validate(&self) -> Result<(), String> {
        self.checkpoints.validate()
    }
}

/// Which way a monitored metric improves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Lower is better (errors, losses, the Fréchet distance).
    Min,
    /// Higher is better (mutual information, accuracies).
    Max,
}

impl Mode {
    /// Whether `value` is better than `best`.
    pub fn improves(self, value: f64, best: f64) -> bool {
        match self {
            Mode::Min => value < best,
            Mode::Max => value > best,
        }
    }
}

/// `[training.checkpoints]`: the checkpoints a run keeps, as PyTorch Lightning's `ModelCheckpoint` names them.
/// Every epoch writes one; the newest `keep_last` stay, and with `monitor` also the best so far by that metric
/// of `metrics.csv` (`checkpoint/best.json` names it). `ssinfogan eval`, `sample` and `export` take any of them
/// with `--checkpoint latest|best|epoch-NNNN`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointPolicy {
    /// The newest this many checkpoints stay (default 2: the one before the newest is the fallback should the
    /// newest be found damaged on resume).
    #[serde(default = "CheckpointPolicy::default_keep_last")]
    pub keep_last: usize,
    /// A metric of `metrics.csv` (e.g. `"c_err_hungarian"`): the checkpoint where it was best is kept too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor: Option<String>,
    /// `"min"` or `"max"`: which way `monitor` improves; absent: the way the metric does
    /// (`ssinfogan_core::metric::higher_is_better`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
}

impl Default for CheckpointPolicy {
    fn default() -> Self {
        Self { keep_last: Self::default_keep_last(), monitor: None, mode: None }
    }
}

impl CheckpointPolicy {
    fn default_keep_last() -> usize {
        2
    }

    fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// The monitored metric and the way it improves, if the policy keeps a best checkpoint.
    pub fn best(&self) -> Option<(&str, Mode)> {
        let metric = self.monitor.as_deref()?;
        let mode = self.mode.unwrap_or(if metric::higher_is_better(metric) { Mode::Max } else { Mode::Min });
        Some((metric, mode))
    }

    fn validate(&self) -> Result<(), String> {
        if self.keep_last == 0 {
            return Err("training.checkpoints.keep_last = 0 would keep no checkpoint to resume from or evaluate; \
                        use at least 1 (2, the default, keeps a fallback should the newest be damaged)"
                .into());
        }
        match self.monitor.as_deref() {
            None if self.mode.is_some() => {
                Err("training.checkpoints.mode is set without monitor: name the metric it applies to".into())
            }
            Some(name) if name == metric::C_ERR_OFFICIAL || name == metric::Q_ERR_REAL_OFFICIAL => Err(format!(
                "training.checkpoints.monitor = \"{name}\" is measured at the final evaluation only, never between \
                 epochs; monitor `{}` or `{}` instead",
                metric::C_ERR_GREEDY,
                metric::Q_ERR_REAL_IDENTITY
            )),
            Some(name) if !metric::METRICS.contains(&name) => Err(format!(
                "training.checkpoints.monitor = \"{name}\" is not a metric of metrics.csv; one of: {}",
                metric::METRICS.join(", ")
            )),
            _ => Ok(()),
        }
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
    fn checkpoint_policies_are_checked_and_the_default_is_written_as_nothing() {
        let policy = |text: &str| toml::from_str::<TrainingConfig>(text).unwrap();
        let default = policy("");
        assert_eq!(default.checkpoints.keep_last, 2);
        assert!(default.is_default() && default.validate().is_ok());
        assert!(!toml::to_string(&default).unwrap().contains("checkpoints"));
        let best = policy("[checkpoints]\nmonitor = \"mi_code_class_normalised\"");
        assert_eq!(best.checkpoints.best(), Some(("mi_code_class_normalised", Mode::Max)));
        let best = policy("[checkpoints]\nmonitor = \"c_err_hungarian\"\nkeep_last = 5");
        assert_eq!(best.checkpoints.best(), Some(("c_err_hungarian", Mode::Min)));
        let written = toml::to_string(&best).unwrap();
        assert_eq!(toml::from_str::<TrainingConfig>(&written).unwrap(), best, "{written}");
        for (text, message) in [
            ("keep_last = 0", "keep no checkpoint"),
            ("monitor = \"c_err\"", "not a metric of metrics.csv"),
            ("mode = \"max\"", "without monitor"),
            ("monitor = \"c_err_official\"", "final evaluation only"),
        ] {
            let error = policy(&format!("[checkpoints]\n{text}")).validate().unwrap_err();
            assert!(error.contains(message), "{text}: {error}");
        }
        let error = toml::from_str::<TrainingConfig>("[checkpoints]\nmode = \"lowest\"").unwrap_err().to_string();
        assert!(error.contains("unknown variant `lowest`"), "{error}");
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
