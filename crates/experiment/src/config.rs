//! The experiment TOML: a base, `[variants.<name>]` overlays (what differs between the methods compared) and
//! `[profiles.<name>]` overlays (how long and how large a run is), resolved into one typed config, with the
//! command line's `--set key.path=value` overrides last. Every table denies unknown keys, and every error names
//! the file and the key.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use sha2::Digest;
use ssinfogan_core::{metric, ImageSpec, LatentSpec};
use ssinfogan_datasets::{DatasetName, SourceKind};
use ssinfogan_losses::LossConfig;
use ssinfogan_networks::NetworkConfig;
use ssinfogan_training::{OptimiserConfig, ScheduleConfig, TrainingConfig};

/// `[cluster]`, resolved here and carried in the plan.
pub use ssinfogan_plan::Cluster;

/// A fully resolved experiment config: what one run is made of.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig {
    pub experiment: ExperimentSection,
    pub data: DataSection,
    pub latent: LatentSpec,
    pub network: NetworkConfig,
    pub loss: LossConfig,
    pub optimiser: OptimiserConfig,
    pub schedule: ScheduleConfig,
    /// How the steps are computed (`ops`); absent: the defaults, and left out of a run's `config.toml`.
    #[serde(default, skip_serializing_if = "TrainingConfig::is_default")]
    pub training: TrainingConfig,
    pub evaluation: EvaluationConfig,
}

impl ExperimentConfig {
    /// The config as TOML, as a run's `config.toml` writes it (without the `[run]` record).
    pub fn to_toml(&self) -> anyhow::Result<String> {
        toml::to_string_pretty(self).context("cannot write the resolved config as TOML")
    }
}

/// How runs are evaluated; it does not change training, so a run can be evaluated under a newer protocol.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvaluationConfig {
    /// Generated images per value of the semi-supervised code (C_err, Fréchet distance, samples.safetensors) at
    /// the final evaluation and in `ssinfogan eval`.
    pub samples_per_code: usize,
    /// Fewer for the evaluations before the last: the first this many (at most `samples_per_code`) of each code
    /// value's fixed latents. The standard error of an error rate p over K·n images is √(p(1−p)/(K·n)). Absent:
    /// `samples_per_code` at every evaluation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interim_samples_per_code: Option<usize>,
    /// Evaluate during training every this many epochs, into metrics.csv; absent: only `ssinfogan eval`.
    pub eval_every: Option<usize>,
    pub classifier: ssinfogan_metrics::ClassifierConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentSection {
    /// Names the results directory: `results/<name>/`.
    pub name: String,
    pub dataset: DatasetName,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSection {
    /// One source only; absent: the dataset's sources in order.
    pub source: Option<SourceKind>,
    /// Labelled training images (0: plain InfoGAN).
    pub n_labelled: usize,
    /// Same number of labelled images per class (official code: false).
    pub balanced: bool,
}

/// What is laid over an experiment file, in this order: its profiles, each over the last, then single settings
/// (the command line's `--profile quick,cpu4` and `--set loss.lambda_ss=1`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overlays {
    /// `[profiles.<name>]` tables of the file, applied in this order.
    pub profiles: Vec<String>,
    /// `key.path=value` settings, applied last. The value is read as TOML (`1`, `2.5`, `true`, `[1, 2]`,
    /// `"text"`); a value that is not TOML is taken as a string (`data.source=npm`). `sweep.…` and `cluster.…`
    /// set the sweep and the cluster table; every other key sets the runs' config, and then the results go to a
    /// directory of their own (see [`Experiment::config`]).
    pub overrides: Vec<String>,
}

impl Overlays {
    /// One profile, or none.
    pub fn profile(profile: Option<&str>) -> Self {
        Self { profiles: profile.map(|p| vec![p.to_string()]).unwrap_or_default(), overrides: Vec::new() }
    }

    /// The profiles as a run's `config.toml` records them: their names joined by commas (`quick,cpu4`).
    pub fn profile_list(&self) -> Option<String> {
        (!self.profiles.is_empty()).then(|| self.profiles.join(","))
    }

    /// In words, for messages: `profile quick, set loss.lambda_ss=1`; empty without overlays.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(profiles) = self.profile_list() {
            parts.push(format!("profile {profiles}"));
        }
        parts.extend(self.overrides.iter().map(|o| format!("set {o}")));
        parts.join(", ")
    }
}

/// One `--set key.path=value`, read.
#[derive(Debug, Clone, PartialEq)]
struct Override {
    /// As given, for messages.
    text: String,
    path: Vec<String>,
    value: toml::Value,
}

impl Override {
    fn parse(text: &str) -> anyhow::Result<Self> {
        let Some((key, value)) = text.split_once('=') else {
            bail!("--set {text:?}: expected KEY=VALUE with the TOML keys joined by dots, e.g. --set loss.lambda_ss=1");
        };
        let path: Vec<String> = key.trim().split('.').map(|k| k.trim().to_string()).collect();
        if path.iter().any(String::is_empty) {
            bail!(
                "--set {text:?}: `{key}` is not a key path; join the TOML keys with dots, e.g. --set loss.lambda_ss=1"
            );
        }
        if matches!(path[0].as_str(), "variants" | "profiles" | "extends") || path.len() == 1 {
            bail!(
                "--set {text:?}: `{key}` cannot be set on the command line: set one key inside a table \
                 (e.g. loss.lambda_ss, sweep.seeds); choose variants with --variant and profiles with --profile"
            );
        }
        let value = value.trim();
        // TOML where it reads as TOML, else the text itself: `data.source=npm` needs no quotes.
        let value = match toml::from_str::<toml::Table>(&format!("value = {value}")) {
            Ok(mut table) => table.remove("value").expect("the table has the key it was parsed with"),
            Err(_) => toml::Value::String(value.to_string()),
        };
        Ok(Self { text: text.to_string(), path, value })
    }

    fn key(&self) -> String {
        self.path.join(".")
    }

    /// Whether it sets the sweep or the cluster table rather than the runs' config.
    fn outside_the_runs(&self) -> bool {
        matches!(self.path[0].as_str(), "sweep" | "cluster")
    }

    /// Sets the value at `path` of `table`, creating the tables on the way.
    fn apply(&self, table: &mut toml::Table, path: &[String]) -> anyhow::Result<()> {
        let (last, parents) = path.split_last().expect("a key path has at least one key");
        let mut current = table;
        for (depth, key) in parents.iter().enumerate() {
            let entry = current.entry(key.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
            current = match entry {
                toml::Value::Table(table) => table,
                other => {
                    bail!("--set {}: `{}` is a {}, not a table", self.text, path[..=depth].join("."), other.type_str())
                }
            };
        }
        current.insert(last.clone(), self.value.clone());
        Ok(())
    }

    /// The value as a directory name takes it: a string as it is, anything else as TOML writes it.
    fn value_text(&self) -> String {
        match &self.value {
            toml::Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }
}

/// What settings of the runs' config add to the experiment's name, so that runs they change never share a
/// directory with runs they do not: `set-loss.lambda_ss-1` (keys sorted, each key's last setting), or, where
/// that would not be a plain directory name or would pass 60 characters, `set-` and 8 hexadecimal digits of the
/// settings' SHA-256. A run's `config.toml` records the settings themselves.
fn overrides_suffix(overrides: &[&Override]) -> String {
    let settings: std::collections::BTreeMap<String, String> =
        overrides.iter().map(|o| (o.key(), o.value_text())).collect();
    let readable: Vec<String> = settings.iter().map(|(k, v)| format!("{k}-{v}")).collect();
    let readable = readable.join("-");
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if readable.len() <= 60 && readable.chars().all(plain) {
        return format!("set-{readable}");
    }
    let canonical: String = settings.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    let digest = sha2::Sha256::digest(canonical.as_bytes());
    format!("set-{}", digest[..4].iter().map(|b| format!("{b:02x}")).collect::<String>())
}

/// Appends `-<suffix>` to `experiment.name` of a config table.
fn append_to_name(table: &mut toml::Table, suffix: &str) {
    if let Some(toml::Value::Table(experiment)) = table.get_mut("experiment") {
        if let Some(toml::Value::String(name)) = experiment.get_mut("name") {
            *name = format!("{name}-{suffix}");
        }
    }
}

/// An experiment file read once, with the overlays of one invocation: every variant's config, the sweep and the
/// cluster table come from it without reading the file or what it extends again.
#[derive(Debug, Clone)]
pub struct Experiment {
    path: PathBuf,
    overlays: Overlays,
    /// The file over what it extends, without its variants, profiles, sweep and cluster tables.
    base: toml::Table,
    variants: toml::Table,
    /// The chosen profiles' tables, in order.
    profiles: Vec<(String, toml::Table)>,
    sweep: Option<toml::Value>,
    cluster: Option<toml::Value>,
    overrides: Vec<Override>,
}

impl Experiment {
    /// Reads `path` and what it `extends`, and checks the overlays: every profile must exist, every `--set` must
    /// read as KEY=VALUE. Whether a setting fits the schema is checked where it is used ([`Experiment::config`],
    /// [`Experiment::sweep`], [`Experiment::cluster`]), with the same errors as the file's own keys.
    pub fn open(path: impl Into<PathBuf>, overlays: &Overlays) -> anyhow::Result<Self> {
        let path = path.into();
        let mut base = read(&path)?;
        let variants = take_table(&mut base, "variants", &path)?;
        let defined = take_table(&mut base, "profiles", &path)?;
        // The sweep says which runs an experiment has, and the cluster table what a cluster gives each run;
        // neither is part of any one run's config.
        let sweep = base.remove("sweep");
        let cluster = base.remove("cluster");
        let mut profiles: Vec<(String, toml::Table)> = Vec::new();
        for name in &overlays.profiles {
            path_component(&path, "profile", name)?;
            if profiles.iter().any(|(seen, _)| seen == name) {
                bail!("{}: profile `{name}` is named twice", path.display());
            }
            match defined.get(name) {
                Some(toml::Value::Table(table)) => profiles.push((name.clone(), table.clone())),
                Some(_) => bail!("{}: `profiles.{name}` must be a table", path.display()),
                None => {
                    let names: Vec<&str> = defined.keys().map(String::as_str).collect();
                    bail!(
                        "{}: no profile `{name}` in [profiles]; the file defines: {}",
                        path.display(),
                        names.join(", ")
                    )
                }
            }
        }
        let overrides = overlays.overrides.iter().map(|o| Override::parse(o)).collect::<anyhow::Result<_>>()?;
        Ok(Self { path, overlays: overlays.clone(), base, variants, profiles, sweep, cluster, overrides })
    }

    /// The experiment file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn overlays(&self) -> &Overlays {
        &self.overlays
    }

    /// The variants the file defines (with what it extends).
    pub fn variants(&self) -> Vec<String> {
        self.variants.keys().cloned().collect()
    }

    /// The config of `variant`: base ← variant ← each profile ← the settings of the runs' config.
    ///
    /// Each profile keeps its results apart (`results/<name>-<profile>/`) unless it names its own directory; the
    /// settings add [`overrides_suffix`] unless one of them sets `experiment.name`.
    pub fn config(&self, variant: &str) -> anyhow::Result<ExperimentConfig> {
        let path = &self.path;
        path_component(path, "variant", variant)?;
        let mut table = self.base.clone();
        match self.variants.get(variant) {
            Some(toml::Value::Table(overlay)) => merge(&mut table, overlay.clone()),
            Some(_) => bail!("{}: `variants.{variant}` must be a table", path.display()),
            None => {
                let names: Vec<&str> = self.variants.keys().map(String::as_str).collect();
                bail!(
                    "{}: no variant `{variant}` in [variants]; the file defines: {}",
                    path.display(),
                    names.join(", ")
                )
            }
        }
        for (name, overlay) in &self.profiles {
            let mut overlay = overlay.clone();
            overlay.remove("sweep");
            overlay.remove("cluster");
            let named = overlay.get("experiment").and_then(|e| e.get("name")).is_some();
            merge(&mut table, overlay);
            if !named {
                append_to_name(&mut table, name);
            }
        }
        let settings: Vec<&Override> = self.overrides.iter().filter(|o| !o.outside_the_runs()).collect();
        for setting in &settings {
            setting.apply(&mut table, &setting.path)?;
        }
        if !settings.is_empty() && !settings.iter().any(|o| o.path == ["experiment", "name"]) {
            append_to_name(&mut table, &overrides_suffix(&settings));
        }
        let config: ExperimentConfig = serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
            let key = e.path().to_string();
            anyhow::anyhow!(
                "{} (variant `{variant}`): key `{key}`{}: {}",
                path.display(),
                set_by(&settings, &key),
                e.inner()
            )
        })?;
        path_component(path, "experiment.name", &config.experiment.name)?;
        validate(&config).with_context(|| format!("{} (variant `{variant}`)", path.display()))?;
        Ok(config)
    }

    /// `[sweep]`, overlaid by each profile's `sweep` table and the `sweep.…` settings; every variant it names
    /// must exist.
    pub fn sweep(&self) -> anyhow::Result<Sweep> {
        let path = &self.path;
        let sweep = match &self.sweep {
            Some(toml::Value::Table(table)) => table.clone(),
            Some(_) => bail!("{}: `sweep` must be a table", path.display()),
            None => bail!(
                "{} has no [sweep] table; add one, e.g. `[sweep]` with `seeds = [1]` and \
                 `runs = [{{ variant = \"ss-infogan\", labels = [132] }}]`",
                path.display()
            ),
        };
        let sweep: Sweep = self.overlaid("sweep", sweep)?;
        if sweep.seeds.is_empty() || sweep.runs.is_empty() {
            bail!("{}: `sweep.seeds` and `sweep.runs` must each name at least one", path.display());
        }
        if let Some(baseline) = &sweep.baseline {
            if !sweep.runs.iter().any(|r| &r.variant == baseline) {
                bail!("{}: `sweep.baseline` is `{baseline}`, which no entry of `sweep.runs` runs", path.display());
            }
        }
        for entry in &sweep.runs {
            if !self.variants.contains_key(&entry.variant) {
                let names: Vec<&str> = self.variants.keys().map(String::as_str).collect();
                bail!(
                    "{}: sweep names variant `{}`, which the file does not define; it defines: {}",
                    path.display(),
                    entry.variant,
                    names.join(", ")
                );
            }
        }
        Ok(sweep)
    }

    /// `[cluster]` (inherited through `extends`), overlaid by each profile's `cluster` table and the
    /// `cluster.…` settings.
    pub fn cluster(&self) -> anyhow::Result<Cluster> {
        let path = &self.path;
        let cluster = match &self.cluster {
            Some(toml::Value::Table(table)) => table.clone(),
            Some(_) => bail!("{}: `cluster` must be a table", path.display()),
            None => toml::Table::new(),
        };
        let cluster: Cluster = self.overlaid("cluster", cluster)?;
        if cluster.cpus_per_task == Some(0) {
            bail!("{}: `cluster.cpus_per_task` must be at least 1", path.display());
        }
        Ok(cluster)
    }

    /// The file's table `table_name` (`sweep`, `cluster`), overlaid by each profile's table of that name and the
    /// `<table_name>.…` settings, typed; errors name the key and the setting that wrote it.
    fn overlaid<T: serde::de::DeserializeOwned>(&self, table_name: &str, mut table: toml::Table) -> anyhow::Result<T> {
        let path = &self.path;
        for (name, profile) in &self.profiles {
            match profile.get(table_name) {
                Some(toml::Value::Table(over)) => merge(&mut table, over.clone()),
                Some(_) => bail!("{}: `profiles.{name}.{table_name}` must be a table", path.display()),
                None => {}
            }
        }
        let settings: Vec<&Override> = self.overrides.iter().filter(|o| o.path[0] == table_name).collect();
        for setting in &settings {
            setting.apply(&mut table, &setting.path[1..])?;
        }
        serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
            let key = format!("{table_name}.{}", e.path());
            anyhow::anyhow!("{}: key `{key}`{}: {}", path.display(), set_by(&settings, &key), e.inner())
        })
    }
}

/// ` (from --set …)` when the key of an error is one a setting wrote (or lies inside or above it).
fn set_by(settings: &[&Override], key: &str) -> String {
    let hit = settings.iter().rev().find(|o| {
        let set = o.key();
        key == set || key.starts_with(&format!("{set}.")) || set.starts_with(&format!("{key}."))
    });
    hit.map(|o| format!(" (from --set {})", o.text)).unwrap_or_default()
}

/// Reads `path` and resolves `variant` and, if given, `profile`: base ← variant ← profile. For several
/// variants of one file, [`Experiment::open`] reads it once.
pub fn load(path: &Path, variant: &str, profile: Option<&str>) -> anyhow::Result<ExperimentConfig> {
    Experiment::open(path, &Overlays::profile(profile))?.config(variant)
}

/// Experiment, variant and profile names become directory names (`results/<experiment>/runs/<variant>-n…`) and
/// Slurm job names: each must be one plain path component — letters, digits, `-`, `_` and `.`, not starting with
/// `.` — so that no name can leave the results directory, hide a run, or break the job script.
fn path_component(path: &Path, what: &str, name: &str) -> anyhow::Result<()> {
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if name.is_empty() || name.len() > 100 || name.starts_with('.') || !name.chars().all(plain) {
        bail!(
            "{}: {what} {name:?} cannot name a directory: use 1 to 100 letters, digits, `-`, `_` or `.` (not first), \
             e.g. \"{}\"",
            path.display(),
            name.chars().map(|c| if plain(c) { c } else { '-' }).collect::<String>().trim_start_matches('.')
        );
    }
    Ok(())
}

/// `[sweep]`: the runs of an experiment, each variant at its label counts, times every seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sweep {
    /// For an ablation study: the variant every other one is compared with (`tables/ablations.md`).
    pub baseline: Option<String>,
    pub seeds: Vec<u64>,
    pub runs: Vec<SweepEntry>,
}

/// One variant of a sweep; without `labels` it runs at its own `data.n_labelled`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepEntry {
    pub variant: String,
    pub labels: Option<Vec<usize>>,
}

/// `[sweep]` of `path` with `profile`: see [`Experiment::sweep`].
pub fn load_sweep(path: &Path, profile: Option<&str>) -> anyhow::Result<Sweep> {
    Experiment::open(path, &Overlays::profile(profile))?.sweep()
}

/// `[cluster]` of `path` with `profile`: see [`Experiment::cluster`].
pub fn load_cluster(path: &Path, profile: Option<&str>) -> anyhow::Result<Cluster> {
    Experiment::open(path, &Overlays::profile(profile))?.cluster()
}

/// Reads an experiment file and, if it has `extends = "<file>"` (relative to its own directory), the file it
/// extends first: this file overlays that one table by table (variants and profiles included), so an ablation
/// file states only what it changes. `[sweep]` and the profiles' `sweep` tables are not inherited.
fn read(path: &Path) -> anyhow::Result<toml::Table> {
    let mut chain = vec![path.to_path_buf()];
    let mut table = parse(path)?;
    while let Some(parent) = table.remove("extends") {
        let current = chain.last().expect("the chain starts with `path`").clone();
        let toml::Value::String(parent) = parent else {
            bail!("{}: `extends` must be a file name, e.g. extends = \"mnist.toml\"", current.display());
        };
        let parent = current.parent().unwrap_or(Path::new(".")).join(parent);
        // Compared as canonical paths: `x.toml`, `./x.toml` and `../dir/x.toml` are one file.
        let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        if chain.iter().any(|seen| canonical(seen) == canonical(&parent)) {
            bail!("{}: `extends` goes round in a circle through {}", path.display(), parent.display());
        }
        let mut base = parse(&parent).with_context(|| format!("{} extends it", current.display()))?;
        // The runs are what make an experiment: its sweeps are its own, never inherited; nor are the results
        // directories its profiles name (they become `<this experiment>-<profile>`).
        base.remove("sweep");
        if let Some(toml::Value::Table(profiles)) = base.get_mut("profiles") {
            for (_, profile) in profiles.iter_mut() {
                if let toml::Value::Table(profile) = profile {
                    profile.remove("sweep");
                    if let Some(toml::Value::Table(experiment)) = profile.get_mut("experiment") {
                        experiment.remove("name");
                    }
                }
            }
        }
        let next = base.remove("extends");
        merge(&mut base, table);
        if let Some(next) = next {
            base.insert("extends".into(), next);
        }
        chain.push(parent);
        table = base;
    }
    Ok(table)
}

fn parse(path: &Path) -> anyhow::Result<toml::Table> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("{} is not valid TOML", path.display()))
}

fn take_table(base: &mut toml::Table, key: &str, path: &Path) -> anyhow::Result<toml::Table> {
    match base.remove(key) {
        Some(toml::Value::Table(t)) => Ok(t),
        Some(_) => bail!("{}: `{key}` must be a table of tables", path.display()),
        None => Ok(toml::Table::new()),
    }
}

/// Overlays `over` on `base`: tables merge key by key, anything else is replaced.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// The checks serde cannot make.
// `!(x > 0.0)` on purpose: it also rejects NaN, which `x <= 0.0` lets through.
#[allow(clippy::neg_cmp_op_on_partial_ord)]
fn validate(config: &ExperimentConfig) -> anyhow::Result<()> {
    let e = &config.evaluation;
    if e.interim_samples_per_code == Some(0) {
        bail!("evaluation: interim_samples_per_code must be at least 1 (or absent: every evaluation uses samples_per_code)");
    }
    if e.samples_per_code == 0
        || e.eval_every == Some(0)
        || e.classifier.epochs == 0
        || e.classifier.batch_size == 0
        || !(e.classifier.learning_rate > 0.0)
    {
        bail!("evaluation: samples_per_code, eval_every, classifier.epochs and classifier.batch_size must be at least 1, classifier.learning_rate > 0");
    }
    config.training.validate().map_err(anyhow::Error::msg)?;
    if let Some((monitor, _)) = config.training.checkpoints.best() {
        if e.eval_every.is_none() && !metric::TRAINING_LOSSES.contains(&monitor) {
            bail!(
                "training.checkpoints.monitor = \"{monitor}\" is an evaluation metric, and this config evaluates \
                 only after training (evaluation.eval_every is absent): set evaluation.eval_every, or monitor a loss"
            );
        }
    }
    let s = &config.schedule;
    if s.batch_size == 0 || s.epochs == 0 || s.iterations_per_epoch == 0 {
        bail!("schedule: batch_size, epochs and iterations_per_epoch must be at least 1");
    }
    if s.batch_size == 1 {
        bail!(
            "schedule: batch_size = 1 leaves the BatchNorm layers after fully connected ones one value per feature \
             (no batch variance: their running variance becomes NaN); use at least 2"
        );
    }
    for (name, adam) in [("discriminator", &config.optimiser.discriminator), ("generator", &config.optimiser.generator)]
    {
        if !(adam.learning_rate > 0.0) || !(0.0..1.0).contains(&adam.beta1) || !(0.0..1.0).contains(&adam.beta2) {
            bail!(
                "optimiser.{name}: learning_rate must be > 0 and beta1, beta2 in [0, 1) (got {}, {}, {})",
                adam.learning_rate,
                adam.beta1,
                adam.beta2
            );
        }
    }
    let dataset = config.experiment.dataset;
    if config.network.image() != dataset.image() {
        bail!(
            "network.kind = \"{}\" makes {} images but {dataset} has {}: use kind = \"{}\"",
            config.network.kind(),
            config.network.image(),
            dataset.image(),
            if dataset.image() == ImageSpec::MNIST { "mnist" } else { "colour-32" }
        );
    }
    let classes = dataset.num_classes();
    match config.latent.semi_supervised.as_slice() {
        [code] => {
            dataset.check_label(&code.label).map_err(|e| anyhow::anyhow!("latent.semi_supervised: label: {e}"))?;
            if code.size != classes {
                bail!(
                    "latent.semi_supervised: code `{}` has {} values but the label `{}` of {dataset} has {classes}",
                    code.name,
                    code.size,
                    code.label
                );
            }
            Ok(())
        }
        codes => bail!("latent.semi_supervised: exactly one code is supported, found {}", codes.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn experiments() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments")
    }

    /// Every leaf `a.b.c = value` of a config, for comparing two.
    fn leaves(value: &toml::Value, prefix: &str, out: &mut Vec<(String, toml::Value)>) {
        match value {
            toml::Value::Table(t) => t.iter().for_each(|(k, v)| leaves(v, &format!("{prefix}{k}."), out)),
            other => out.push((prefix.trim_end_matches('.').to_string(), other.clone())),
        }
    }

    fn differences(a: &ExperimentConfig, b: &ExperimentConfig) -> Vec<String> {
        let (mut la, mut lb) = (Vec::new(), Vec::new());
        leaves(&toml::Value::try_from(a).unwrap(), "", &mut la);
        leaves(&toml::Value::try_from(b).unwrap(), "", &mut lb);
        let mut keys: Vec<String> = la.iter().chain(&lb).map(|(k, _)| k.clone()).collect();
        keys.sort();
        keys.dedup();
        let get = |l: &[(String, toml::Value)], k: &str| l.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
        keys.into_iter().filter(|k| get(&la, k) != get(&lb, k)).collect()
    }

    #[test]
    fn every_ablation_differs_from_the_baseline_in_one_setting() {
        let path = experiments().join("mnist-ablations.toml");
        let sweep = load_sweep(&path, Some("quick")).unwrap();
        let baseline_name = sweep.baseline.clone().unwrap();
        for profile in [None, Some("quick")] {
            let baseline = load(&path, &baseline_name, profile).unwrap();
            // Inherited from mnist.toml: the official hyperparameters.
            assert_eq!((baseline.data.n_labelled, baseline.loss.lambda_ss), (132, 2.0));
            assert_eq!(baseline.schedule.unlabelled_probability_growth, Some(0.1));
            let expected = [
                ("gaussian-nll", "loss.continuous"),
                ("lambda-ss-0.5", "loss.lambda_ss"),
                ("lambda-ss-8", "loss.lambda_ss"),
                ("balanced", "data.balanced"),
                ("no-growth", "schedule.unlabelled_probability_growth"),
                ("q-ss-on-fakes", "loss.q_ss_on_fakes"),
            ];
            for (variant, key) in expected {
                let config = load(&path, variant, profile).unwrap();
                assert_eq!(differences(&baseline, &config), vec![key.to_string()], "{variant} ({profile:?})");
            }
        }
        assert_eq!(sweep.runs.len(), 7);
        assert_eq!(sweep.seeds, vec![1, 2]);
        let quick = load(&path, "baseline", Some("quick")).unwrap();
        assert_eq!(quick.experiment.name, "mnist-ablations-quick");
        assert_eq!(load(&path, "baseline", None).unwrap().experiment.name, "mnist-ablations");
    }

    #[test]
    fn cluster_resources_come_from_the_file_its_profile_and_what_it_extends() {
        let mnist = experiments().join("mnist.toml");
        let full = load_cluster(&mnist, None).unwrap();
        assert_eq!(
            (full.cpus_per_task, full.memory.as_deref(), full.time.as_deref()),
            (Some(4), Some("2G"), Some("4:00:00"))
        );
        let smoke = load_cluster(&mnist, Some("smoke")).unwrap();
        assert_eq!(
            (smoke.cpus_per_task, smoke.memory.as_deref(), smoke.time.as_deref()),
            (Some(1), Some("1G"), Some("10"))
        );
        // Inherited through `extends`, profile overlays included.
        assert_eq!(load_cluster(&experiments().join("svhn.toml"), Some("quick")).unwrap().cpus_per_task, Some(2));

        let dir = std::env::temp_dir().join(format!("ssinfogan-cluster-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let own = dir.join("own.toml");
        let text = format!(
            "extends = {:?}\n[cluster]\nmemory = \"3G\"\n[profiles.big]\ncluster = {{ cpus_per_task = 16 }}\n",
            mnist.display().to_string()
        );
        std::fs::write(&own, text).unwrap();
        let big = load_cluster(&own, Some("big")).unwrap();
        assert_eq!(
            (big.cpus_per_task, big.memory.as_deref(), big.time.as_deref()),
            (Some(16), Some("3G"), Some("4:00:00"))
        );
        // The cluster table is no part of a run's config: the runs load as before.
        assert_eq!(load(&own, "ss-infogan", Some("big")).unwrap().experiment.name, "mnist-big");
        std::fs::write(&own, format!("extends = {:?}\n[cluster]\ncpus = 2\n", mnist.display().to_string())).unwrap();
        let error = load_cluster(&own, None).unwrap_err().to_string();
        assert!(error.contains("own.toml") && error.contains("cluster.cpus"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn every_experiment_file_resolves_every_run_of_every_profile() {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(experiments()).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let table = read(&path).unwrap();
                let profiles: Vec<String> = match table.get("profiles") {
                    Some(toml::Value::Table(p)) => p.keys().cloned().collect(),
                    _ => Vec::new(),
                };
                for profile in std::iter::once(None).chain(profiles.iter().map(|p| Some(p.as_str()))) {
                    let sweep = load_sweep(&path, profile).unwrap();
                    for entry in &sweep.runs {
                        let config = load(&path, &entry.variant, profile).unwrap();
                        let expected = match profile {
                            Some(p) => format!("{}-{p}", load(&path, &entry.variant, None).unwrap().experiment.name),
                            None => path.file_stem().unwrap().to_string_lossy().into_owned(),
                        };
                        assert_eq!(config.experiment.name, expected, "{} {profile:?}", path.display());
                    }
                }
                names.push(path.file_stem().unwrap().to_string_lossy().into_owned());
            }
        }
        names.sort();
        assert_eq!(names, ["celeba", "cifar10", "fashion-mnist", "mnist", "mnist-ablations", "svhn"]);
    }

    #[test]
    fn names_that_cannot_be_one_directory_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for (name, variant) in
            [("../escape", "v"), ("two words", "v"), ("line\nbreak", "v"), ("ok", "a/b"), ("ok", "..")]
        {
            let file = dir.path().join("e.toml");
            let base =
                std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments/mnist.toml"))
                    .unwrap()
                    .replace("name = \"mnist\"", &format!("name = {name:?}"))
                    .replace("[variants.infogan]", &format!("[variants.{variant:?}]"));
            std::fs::write(&file, base).unwrap();
            let error = format!("{:#}", load(&file, variant, None).unwrap_err());
            assert!(error.contains("cannot name a directory") && error.contains("e.toml"), "{name} {variant}: {error}");
        }
        let fashion = load(&experiments().join("fashion-mnist.toml"), "ss-infogan", Some("quick")).unwrap();
        assert_eq!(fashion.experiment.dataset, DatasetName::FashionMnist);
        assert_eq!(fashion.schedule.batch_size, 64);
        for (file, dataset, input) in [
            ("svhn.toml", DatasetName::Svhn, 10 + 30 + 4 + 124),
            ("cifar10.toml", DatasetName::Cifar10, 10 + 4 + 128),
            ("celeba.toml", DatasetName::CelebA, 2 + 100 + 128),
        ] {
            let config = load(&experiments().join(file), "ss-infogan", None).unwrap();
            assert_eq!(config.experiment.dataset, dataset);
            assert_eq!(config.network.kind(), "colour-32", "{file}");
            assert_eq!(config.latent.input_dim(), input, "{file}");
        }
        // A CelebA profile chooses another attribute, into its own results directory (and classifier).
        let male = load(&experiments().join("celeba.toml"), "ss-infogan", Some("male")).unwrap();
        assert_eq!(male.latent.semi_supervised[0].label, "Male");
        assert_eq!(male.experiment.name, "celeba-male");
    }

    #[test]
    fn networks_labels_and_code_sizes_must_fit_the_dataset() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(experiments().join("mnist.toml"), dir.path().join("mnist.toml")).unwrap();
        std::fs::copy(experiments().join("celeba.toml"), dir.path().join("celeba.toml")).unwrap();
        let child = dir.path().join("child.toml");
        let error_of = |text: &str| {
            std::fs::write(&child, text).unwrap();
            format!("{:#}", load(&child, "ss-infogan", None).unwrap_err())
        };
        let error = error_of("extends = \"mnist.toml\"\n[experiment]\nname = \"x\"\ndataset = \"svhn\"\n");
        assert!(error.contains("makes 28×28×1 images but svhn has 32×32×3: use kind = \"colour-32\""), "{error}");
        let error = error_of(
            "extends = \"celeba.toml\"\n[latent]\nsemi_supervised = [{ name = \"s\", size = 2, label = \"Smile\" }]\n",
        );
        assert!(error.contains("celeba has no attribute `Smile`") && error.contains("Smiling"), "{error}");
        let error = error_of(
            "extends = \"celeba.toml\"\n[latent]\nsemi_supervised = [{ name = \"s\", size = 3, label = \"Male\" }]\n",
        );
        assert!(error.contains("has 3 values but the label `Male` of celeba has 2"), "{error}");
        let error = error_of("extends = \"mnist.toml\"\n[latent]\nsemi_supervised = [{ name = \"d\", size = 10, label = \"Smiling\" }]\n");
        assert!(error.contains("has only the label `class`"), "{error}");
        let error = error_of("extends = \"mnist.toml\"\n[schedule]\nbatch_size = 1\n");
        assert!(error.contains("batch_size = 1") && error.contains("use at least 2"), "{error}");
    }

    #[test]
    fn the_extended_file_s_sweeps_are_not_inherited() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(experiments().join("mnist.toml"), dir.path().join("mnist.toml")).unwrap();
        let child = dir.path().join("child.toml");
        std::fs::write(&child, "extends = \"mnist.toml\"\n[experiment]\nname = \"child\"\n").unwrap();
        // The parent's variants are there, its sweep is not.
        assert_eq!(load(&child, "infogan", Some("quick")).unwrap().experiment.name, "child-quick");
        let error = load_sweep(&child, None).unwrap_err().to_string();
        assert!(error.contains("has no [sweep] table"), "{error}");
        std::fs::write(
            &child,
            format!("extends = \"../{}/child.toml\"\n", dir.path().file_name().unwrap().to_string_lossy()),
        )
        .unwrap();
        let error = format!("{:#}", load(&child, "infogan", None).unwrap_err());
        assert!(error.contains("goes round in a circle"), "{error}");
    }

    fn with(profiles: &[&str], overrides: &[&str]) -> Overlays {
        Overlays {
            profiles: profiles.iter().map(|p| p.to_string()).collect(),
            overrides: overrides.iter().map(|o| o.to_string()).collect(),
        }
    }

    #[test]
    fn settings_change_one_key_and_send_the_runs_to_a_directory_of_their_own() {
        let mnist = experiments().join("mnist.toml");
        let quick = Experiment::open(&mnist, &with(&["quick"], &[])).unwrap().config("ss-infogan").unwrap();
        let set = Experiment::open(&mnist, &with(&["quick"], &["loss.lambda_ss=1"])).unwrap();
        let changed = set.config("ss-infogan").unwrap();
        assert_eq!((quick.loss.lambda_ss, changed.loss.lambda_ss), (2.0, 1.0));
        assert_eq!(differences(&quick, &changed), ["experiment.name", "loss.lambda_ss"]);
        assert_eq!(changed.experiment.name, "mnist-quick-set-loss.lambda_ss-1");
        // Every variant of the sweep goes to the same directory, whether or not the setting changes it.
        assert_eq!(set.config("infogan").unwrap().experiment.name, changed.experiment.name);
        // A bare word is a string; TOML values keep their type; the last setting of a key wins.
        let source =
            Experiment::open(&mnist, &with(&[], &["data.source=npm", "schedule.epochs=7", "schedule.epochs=9"]))
                .unwrap()
                .config("infogan")
                .unwrap();
        assert_eq!((source.data.source, source.schedule.epochs), (Some(SourceKind::Npm), 9));
        assert_eq!(source.experiment.name, "mnist-set-data.source-npm-schedule.epochs-9");
        // Naming the directory is the researcher's choice to make.
        let named = Experiment::open(&mnist, &with(&[], &["experiment.name=mine", "loss.lambda_ss=4"])).unwrap();
        assert_eq!(named.config("ss-infogan").unwrap().experiment.name, "mine");
        // Settings that cannot be read back from a name are named by their hash, the same in any order.
        let long = [
            "evaluation.classifier.learning_rate=0.0005",
            "optimiser.generator.learning_rate=0.0004",
            "loss.lambda_ss=3",
        ];
        let a = Experiment::open(&mnist, &with(&[], &long)).unwrap().config("ss-infogan").unwrap().experiment.name;
        let mut reversed = long;
        reversed.reverse();
        let b = Experiment::open(&mnist, &with(&[], &reversed)).unwrap().config("ss-infogan").unwrap().experiment.name;
        assert_eq!(a, b);
        assert!(a.len() == "mnist-set-".len() + 8 && a.starts_with("mnist-set-"), "{a}");
        let spaced = Experiment::open(&mnist, &with(&[], &["data.source=a b"])).unwrap();
        let error = format!("{:#}", spaced.config("infogan").unwrap_err());
        assert!(error.contains("data.source") && error.contains("(from --set data.source=a b)"), "{error}");
    }

    #[test]
    fn settings_of_the_sweep_and_the_cluster_leave_the_runs_where_they_are() {
        let mnist = experiments().join("mnist.toml");
        let set =
            Experiment::open(&mnist, &with(&["quick"], &["sweep.seeds=[4, 5]", "cluster.cpus_per_task=3"])).unwrap();
        assert_eq!(set.sweep().unwrap().seeds, [4, 5]);
        assert_eq!(set.sweep().unwrap().runs.len(), 2, "the quick profile's runs");
        let cluster = set.cluster().unwrap();
        assert_eq!((cluster.cpus_per_task, cluster.memory.as_deref()), (Some(3), Some("1G")));
        assert_eq!(set.config("ss-infogan").unwrap().experiment.name, "mnist-quick");
    }

    #[test]
    fn a_setting_is_checked_as_the_file_s_own_key_would_be() {
        let mnist = experiments().join("mnist.toml");
        let error_of = |setting: &str| {
            let opened = Experiment::open(&mnist, &with(&[], &[setting]));
            format!("{:#}", opened.and_then(|e| e.config("ss-infogan").and(e.sweep().map(|_| ()))).unwrap_err())
        };
        let error = error_of("loss.lamda_ss=1");
        assert!(error.contains("mnist.toml") && error.contains("unknown field `lamda_ss`"), "{error}");
        assert!(error.contains("(from --set loss.lamda_ss=1)"), "{error}");
        let error = error_of("schedule.epochs=many");
        assert!(error.contains("key `schedule.epochs` (from --set schedule.epochs=many)"), "{error}");
        assert!(error.contains("invalid type: string \"many\""), "{error}");
        let error = error_of("sweep.seeds=1");
        assert!(error.contains("key `sweep.seeds` (from --set sweep.seeds=1)"), "{error}");
        let error = error_of("schedule.batch_size=1");
        assert!(error.contains("use at least 2"), "{error}");
        let error = error_of("loss.lambda_ss.x=1");
        assert!(error.contains("`loss.lambda_ss` is a float, not a table"), "{error}");
        for (setting, message) in [
            ("loss.lambda_ss", "expected KEY=VALUE"),
            ("loss..x=1", "is not a key path"),
            ("loss=1", "cannot be set on the command line"),
            ("variants.infogan.data.n_labelled=5", "cannot be set on the command line"),
        ] {
            let error = error_of(setting);
            assert!(error.contains(message) && error.contains(setting), "{setting}: {error}");
        }
    }

    /// `[training.checkpoints]` is checked with the rest of the config: a metric metrics.csv does not have is
    /// refused before anything trains.
    #[test]
    fn a_checkpoint_policy_is_checked_with_the_config() {
        let path = experiments().join("mnist.toml");
        let config = |setting: &str| Experiment::open(&path, &with(&[], &[setting])).unwrap().config("ss-infogan");
        let kept = config("training.checkpoints.monitor=frechet_distance").unwrap();
        assert_eq!(kept.training.checkpoints.best(), Some(("frechet_distance", ssinfogan_training::Mode::Min)));
        let error = format!("{:#}", config("training.checkpoints.monitor=fid").unwrap_err());
        assert!(error.contains("`fid`") || error.contains("\"fid\""), "{error}");
        assert!(error.contains("not a metric of metrics.csv"), "{error}");
    }

    #[test]
    fn profiles_compose_in_order() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(experiments().join("mnist.toml"), dir.path().join("mnist.toml")).unwrap();
        let child = dir.path().join("child.toml");
        let text = "extends = \"mnist.toml\"\n[experiment]\nname = \"child\"\n\
                    [profiles.long]\nschedule = { epochs = 30 }\ncluster = { time = \"8:00:00\" }\n\
                    [profiles.named]\nexperiment = { name = \"mine\" }\n";
        std::fs::write(&child, text).unwrap();
        let both = Experiment::open(&child, &with(&["quick", "long"], &[])).unwrap();
        let config = both.config("ss-infogan").unwrap();
        assert_eq!(
            (config.schedule.batch_size, config.schedule.epochs, config.schedule.iterations_per_epoch),
            (64, 30, 100)
        );
        assert_eq!(config.experiment.name, "child-quick-long");
        let cluster = both.cluster().unwrap();
        assert_eq!((cluster.cpus_per_task, cluster.time.as_deref()), (Some(2), Some("8:00:00")));
        // The later profile wins where both set a key.
        let reversed = Experiment::open(&child, &with(&["long", "quick"], &[])).unwrap().config("infogan").unwrap();
        assert_eq!((reversed.schedule.epochs, reversed.experiment.name.as_str()), (15, "child-long-quick"));
        // A profile that names its directory sets the name; the ones after it add theirs.
        let named = Experiment::open(&child, &with(&["named", "long"], &[])).unwrap().config("infogan").unwrap();
        assert_eq!(named.experiment.name, "mine-long");
        for (profiles, message) in
            [(&["quick", "quick"][..], "named twice"), (&["quick", "fast"][..], "no profile `fast` in [profiles]")]
        {
            let error = format!("{:#}", Experiment::open(&child, &with(profiles, &[])).unwrap_err());
            assert!(error.contains(message) && error.contains("child.toml"), "{error}");
        }
    }
}
