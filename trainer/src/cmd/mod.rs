//! One module per `trainer` subcommand (`realworld`: `train-realworld` and `eval-realworld`),
//! and what the commands share.

pub mod eval;
pub mod forward;
pub mod idr_plot;
pub mod realworld;
pub mod train;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use kdsr_core::spec::KdsrConfig;

use crate::driver::{StageResult, TrainOptions};

/// The options of a training run that both `train` commands take.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Override a config value: `--set data.batch_size=16` (repeatable).
    #[arg(long = "set", value_name = "SECTION.KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Continue each stage from its `last.state.safetensors` when present.
    #[arg(long)]
    pub resume: bool,
    /// Stop each stage after this many iterations in this invocation (resume later).
    #[arg(long)]
    pub stop_after: Option<u64>,
    /// Log every N iterations to `metrics.jsonl`.
    #[arg(long, default_value_t = 10)]
    pub log_every: u64,
    /// No progress output.
    #[arg(short, long)]
    pub quiet: bool,
}

impl RunArgs {
    /// The stage options for run directory `out` (the pipeline's own inputs left unset).
    pub fn options(&self, out: &Path) -> TrainOptions {
        TrainOptions {
            out_dir: out.to_path_buf(),
            resume: self.resume,
            quiet: self.quiet,
            stop_after: self.stop_after,
            log_every: Some(self.log_every),
            ..TrainOptions::default()
        }
    }
}

/// Runs `stages` in order, printing one JSON line per stage on stdout; stops after a stage that
/// did not finish (interrupted on purpose with `--stop-after`: later stages wait for it).
pub fn run_stages<S: Copy>(
    stages: &[S],
    mut run: impl FnMut(S) -> Result<StageResult>,
    iterations: impl Fn(S) -> u64,
) -> Result<()> {
    for s in stages {
        let r = run(*s)?;
        println!("{}", serde_json::to_string(&r)?);
        if r.iterations < iterations(*s) {
            break;
        }
    }
    Ok(())
}

/// The weights a command evaluates, and their network config.
#[derive(Debug, Args)]
pub struct NetworkArgs {
    /// Network preset or config file (default: the `.json` beside the weights).
    #[arg(long)]
    pub config: Option<String>,
    /// Weights (safetensors, official keys).
    #[arg(long)]
    pub weights: PathBuf,
}

impl NetworkArgs {
    /// The network config of `--config` (a preset or file), else the `.json` beside the
    /// weights.
    pub fn network_config(&self) -> Result<KdsrConfig> {
        match &self.config {
            Some(c) => Ok(KdsrConfig::resolve(c)?),
            None => {
                let beside = self.weights.with_extension("json");
                KdsrConfig::from_file(&beside).with_context(|| {
                    format!(
                        "no --config given and no config beside {}",
                        self.weights.display()
                    )
                })
            }
        }
    }
}
