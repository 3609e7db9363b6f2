//! What both experiment configs share: the `[data]` section, a stage's optimisation
//! (`StageSection`), and one way to resolve a config — a preset name or a TOML file, then
//! `--set section.key=value` overrides ([`apply_override`], one allow-list), then validation
//! ([`Experiment::resolve`]). The
//! classic config is [`crate::classic::config::TrainConfig`], the real-world one
//! [`crate::realworld::config::RealWorldConfig`]; the resolved config is saved next to every
//! checkpoint (`train.toml`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Keys an override may set although the resolved tree lacks them: optional fields that are
/// absent from a TOML file, or skipped when serialising a preset because they are unset. One
/// list for both pipelines (a key that the pipeline's config does not have is still refused, by
/// its `deny_unknown_fields`, when the tree is read back).
pub const OPTIONAL_KEYS: &[&str] = &[
    "ema",
    "pretrain",
    "block_conv",
    "val_dir",
    "val_hr_dir",
    "val_lr_dir",
];

/// `[data]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSection {
    /// Folders of HR training images (relative paths resolve against the config file's folder
    /// when it is a file, else the working directory).
    pub train_dirs: Vec<PathBuf>,
    /// HR crop size; the LR patch is `hr_patch / scale` (official: 256 → 64).
    pub hr_patch: usize,
    /// Images per batch (official: 64 over 4 GPUs).
    pub batch_size: usize,
    /// Decoding / cropping threads.
    pub workers: usize,
    /// Batches prepared ahead (bounded queue).
    pub prefetch: usize,
    /// Keep decoded images in memory when their total size is under this many MiB.
    pub cache_mib: usize,
}

/// One stage's optimisation (Adam + step decay, iteration-based).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageSection {
    /// Iterations.
    pub iterations: u64,
    /// Initial learning rate.
    pub lr: f64,
    /// Multiply the lr by `gamma` every `decay_every` iterations.
    pub decay_every: u64,
    /// Decay factor (official 0.5).
    pub gamma: f64,
    /// Adam β1 (official 0.9).
    pub beta1: f64,
    /// Adam β2 (official code 0.999; the paper says 0.99).
    pub beta2: f64,
    /// Adam ε.
    pub eps: f64,
    /// EMA decay of the weights (e.g. 0.999), or none.
    #[serde(default)]
    pub ema: Option<f64>,
    /// Start the stage from these weights (a checkpoint of this stage's network, official key
    /// names) instead of the fresh (or teacher-G) initialisation, with a fresh optimiser and lr
    /// schedule: BasicSR's `pretrain_network_g`, to fine-tune or to train on past a run whose
    /// optimiser state is gone. Ignored when resuming (the state holds the weights).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pretrain: Option<PathBuf>,
}

impl StageSection {
    /// Checks the optimisation values of the stage called `name` in errors.
    pub fn check(&self, name: &str) -> Result<()> {
        ensure!(
            self.lr.is_finite()
                && self.lr > 0.0
                && self.decay_every > 0
                && (0.0..1.0).contains(&self.beta1)
                && (0.0..1.0).contains(&self.beta2),
            "{name}: lr must be > 0, decay_every > 0 and betas in [0, 1)"
        );
        if let Some(e) = self.ema {
            ensure!(
                (0.0..1.0).contains(&e),
                "{name}.ema must be in [0, 1), got {e}"
            );
        }
        Ok(())
    }
}

/// A named experiment preset: its name and its constructor.
pub type Preset<E> = (&'static str, fn() -> E);

/// An experiment config: the classic [`TrainConfig`](crate::classic::config::TrainConfig) or
/// the [`RealWorldConfig`](crate::realworld::config::RealWorldConfig).
pub trait Experiment: Serialize + DeserializeOwned + 'static {
    /// The pipeline, in errors (`classic`, `real-world`).
    const KIND: &'static str;
    /// The named presets.
    const PRESETS: &'static [Preset<Self>];
    /// The folders that resolve against a config file's folder when relative.
    fn paths_mut(&mut self) -> Vec<&mut PathBuf>;
    /// Checks the values that would otherwise fail deep inside training.
    fn validate(&self) -> Result<()>;
    /// The stage schedule's run settings.
    fn schedule(&self, iterations: u64) -> Schedule<'_>;

    /// A preset by name.
    fn preset(name: &str) -> Result<Self> {
        match Self::PRESETS.iter().find(|(n, _)| *n == name) {
            Some((_, make)) => Ok(make()),
            None => bail!(
                "unknown {} experiment preset `{name}`; known: {}",
                Self::KIND,
                Self::PRESETS
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// A preset name or a TOML file, then `section.key=value` overrides (values parsed as TOML,
    /// falling back to a string), then validation. Relative paths in a file resolve against
    /// the file's folder.
    fn resolve(preset_or_file: &str, overrides: &[String]) -> Result<Self> {
        let path = Path::new(preset_or_file);
        let (mut value, base) = if path.extension().is_some_and(|e| e == "toml") {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading experiment config {}", path.display()))?;
            let v: toml::Value =
                toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
            (v, path.parent().map(Path::to_path_buf))
        } else {
            (toml::Value::try_from(Self::preset(preset_or_file)?)?, None)
        };
        for o in overrides {
            apply_override(&mut value, o)?;
        }
        let mut cfg: Self = value
            .try_into()
            .with_context(|| format!("experiment config {preset_or_file}"))?;
        if let Some(base) = base {
            for d in cfg.paths_mut() {
                if d.is_relative() {
                    *d = base.join(&*d);
                }
            }
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// The resolved config as TOML (saved next to checkpoints).
    fn to_toml(&self) -> Result<String> {
        Ok(toml::to_string_pretty(self)?)
    }
}

/// A stage's schedule, from its experiment config.
#[derive(Clone, Copy, Debug)]
pub struct Schedule<'a> {
    /// Iterations of the stage.
    pub iterations: u64,
    /// The experiment's seed.
    pub seed: u64,
    /// Training images, crop, batch, loader threads.
    pub data: &'a DataSection,
    /// Validate every this many iterations (0: never).
    pub val_every: u64,
    /// Save a checkpoint every this many iterations.
    pub save_every: u64,
    /// Periodic checkpoints kept.
    pub keep_last: usize,
}

/// Applies one `a.b.c=value` override to a TOML tree: the key must exist, or be one of
/// [`OPTIONAL_KEYS`].
pub fn apply_override(root: &mut toml::Value, o: &str) -> Result<()> {
    let (key, raw) = o
        .split_once('=')
        .with_context(|| format!("override `{o}`: expected section.key=value"))?;
    let value: toml::Value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()));
    let parts: Vec<&str> = key.split('.').collect();
    let mut cur = root;
    for (i, p) in parts.iter().enumerate() {
        let table = cur.as_table_mut().with_context(|| {
            format!(
                "override `{o}`: `{}` is not a section",
                parts[..i].join(".")
            )
        })?;
        if i + 1 == parts.len() {
            if !table.contains_key(*p) && !OPTIONAL_KEYS.contains(p) {
                bail!("override `{o}`: unknown key `{key}`");
            }
            table.insert((*p).to_owned(), value);
            return Ok(());
        }
        cur = table
            .get_mut(*p)
            .with_context(|| format!("override `{o}`: unknown section `{p}`"))?;
    }
    Ok(())
}
