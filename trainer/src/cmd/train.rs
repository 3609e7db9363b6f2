//! `trainer train`: the classic teacher (stage 1), then student (stage 2), from an experiment
//! preset or TOML.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, ValueEnum};

use super::{RunArgs, run_stages};
use crate::classic::config::TrainConfig;
use crate::classic::train::{Stage, run_stage};
use crate::config::Experiment;
use crate::driver::TrainOptions;

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
    /// Experiment preset (`paper-iso`, `paper-aniso-noise`, `cpu-edge`, `cpu-edge-blind`,
    /// `cpu-edge-camera`, `smoke`) or a TOML file.
    #[arg(long)]
    pub config: String,
    /// Run directory; stages write into `OUT/teacher` and `OUT/student`.
    #[arg(long)]
    pub out: PathBuf,
    /// Stages to run.
    #[arg(long, value_enum, default_value = "both")]
    pub stage: Stages,
    /// Teacher weights for the student stage (default `OUT/teacher/final.safetensors`).
    #[arg(long)]
    pub teacher: Option<PathBuf>,
    /// Overrides, resume, stop, logging.
    #[command(flatten)]
    pub run: RunArgs,
}

/// Runs the command; prints one JSON line per finished stage on stdout.
pub fn run(a: &TrainArgs) -> Result<()> {
    let cfg = TrainConfig::resolve(&a.config, &a.run.overrides)?;
    let opts = TrainOptions {
        teacher_weights: a.teacher.clone(),
        ..a.run.options(&a.out)
    };
    let stages: &[Stage] = match a.stage {
        Stages::Teacher => &[Stage::Teacher],
        Stages::Student => &[Stage::Student],
        Stages::Both => &[Stage::Teacher, Stage::Student],
    };
    run_stages(
        stages,
        |s| run_stage(&cfg, s, &opts),
        |s| s.settings(&cfg).iterations,
    )
}
