//! `trainer train`: teacher (stage 1), then student (stage 2), from an experiment preset or TOML.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, ValueEnum};

use crate::config::TrainConfig;
use crate::train::{Stage, TrainOptions, run_stage};

/// Which stages to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Stages {
    /// Teacher only.
    Teacher,
    /// Student only (needs a trained teacher).
    Student,
    /// Teacher, then student.
    Both,
}

/// Arguments of `trainer train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Experiment preset (`paper-iso`, `paper-aniso-noise`, `cpu-edge`, `smoke`) or a TOML file.
    #[arg(long)]
    pub config: String,
    /// Override a config value: `--set data.batch_size=16` (repeatable).
    #[arg(long = "set", value_name = "SECTION.KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Run directory; stages write into `OUT/teacher` and `OUT/student`.
    #[arg(long)]
    pub out: PathBuf,
    /// Stages to run.
    #[arg(long, value_enum, default_value = "both")]
    pub stage: Stages,
    /// Continue each stage from its `last.state.safetensors` when present.
    #[arg(long)]
    pub resume: bool,
    /// Teacher weights for the student stage (default `OUT/teacher/final.safetensors`).
    #[arg(long)]
    pub teacher: Option<PathBuf>,
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

/// Runs the command; prints one JSON line per finished stage on stdout.
pub fn run(a: &TrainArgs) -> Result<()> {
    let cfg = TrainConfig::resolve(&a.config, &a.overrides)?;
    let opts = TrainOptions {
        out_dir: a.out.clone(),
        resume: a.resume,
        teacher_weights: a.teacher.clone(),
        quiet: a.quiet,
        stop_after: a.stop_after,
        log_every: Some(a.log_every),
    };
    let stages: &[Stage] = match a.stage {
        Stages::Teacher => &[Stage::Teacher],
        Stages::Student => &[Stage::Student],
        Stages::Both => &[Stage::Teacher, Stage::Student],
    };
    for s in stages {
        let r = run_stage(&cfg, *s, &opts)?;
        println!("{}", serde_json::to_string(&r)?);
        if r.iterations < stage_total(&cfg, *s) {
            // Interrupted on purpose (--stop-after): later stages wait for this one.
            break;
        }
    }
    Ok(())
}

fn stage_total(cfg: &TrainConfig, s: Stage) -> u64 {
    match s {
        Stage::Teacher => cfg.teacher.iterations,
        Stage::Student => cfg.student.stage.iterations,
    }
}
