//! `trainer train-realworld` (alias `train-gan`): the real-world stages KDSRNet_T → KDSRNet_S →
//! KDSR_S-GAN, and `trainer eval-realworld` (alias `eval-real`): PSNR / SSIM (and LPIPS) of
//! weights on real-world validation pairs.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::{Args, ValueEnum};
use kdsr_core::metrics::MetricVariant;
use kdsr_core::spec::checkpoint::write_atomic;
use serde_json::json;

use super::{NetworkArgs, RunArgs, run_stages};
use crate::config::Experiment;
use crate::device::parse_device;
use crate::driver::TrainOptions;
use crate::model::Model;
use crate::realworld::config::RealWorldConfig;
use crate::realworld::degrade::RealDegradation;
use crate::realworld::eval::{evaluate_pairs, load_pairs, synth_pairs};
use crate::realworld::lpips::Lpips;
use crate::realworld::train::{Stage, run_stage};

/// Which stages to run (the values are the stages' folder names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Stages {
    /// KDSRNet_T (L1).
    #[value(name = "net-teacher")]
    Teacher,
    /// KDSRNet_S (L1 + KD; needs the trained teacher).
    #[value(name = "net-student")]
    Student,
    /// KDSR_S-GAN (L1 + perceptual + GAN + KD; needs the teacher, KDSRNet_S and --vgg).
    GanStudent,
    /// All three in order.
    All,
}

/// Arguments of `trainer train-realworld`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Experiment preset (`paper-gan`, `edge-gan`, `smoke-gan`) or a TOML file.
    #[arg(long)]
    pub config: String,
    /// Stages to run.
    #[arg(long, value_enum, default_value = "all")]
    pub stage: Stages,
    /// Run directory; stages write into `OUT/net-teacher`, `OUT/net-student`, `OUT/gan-student`.
    #[arg(long)]
    pub out: PathBuf,
    /// VGG19 weights for the perceptual loss (safetensors, torchvision `features.{i}.weight`
    /// names); required by the GAN stage.
    #[arg(long)]
    pub vgg: Option<PathBuf>,
    /// LPIPS-Alex weights (safetensors, `lpips` package names) to add LPIPS to validation.
    #[arg(long)]
    pub lpips_weights: Option<PathBuf>,
    /// Teacher weights for the student stages (default `OUT/net-teacher/final_ema.safetensors`).
    #[arg(long)]
    pub teacher: Option<PathBuf>,
    /// Initial weights of the GAN stage (default `OUT/net-student/final_ema.safetensors`).
    #[arg(long)]
    pub init: Option<PathBuf>,
    /// Overrides, resume, stop, logging.
    #[command(flatten)]
    pub run: RunArgs,
}

/// Runs `train-realworld`; prints one JSON line per finished stage on stdout.
pub fn run(a: &TrainArgs) -> Result<()> {
    let cfg = RealWorldConfig::resolve(&a.config, &a.run.overrides)?;
    let stages: &[Stage] = match a.stage {
        Stages::Teacher => &[Stage::Teacher],
        Stages::Student => &[Stage::Student],
        Stages::GanStudent => &[Stage::GanStudent],
        Stages::All => &Stage::ALL,
    };
    if stages.contains(&Stage::GanStudent) && a.vgg.is_none() && cfg.gan.perceptual_weight != 0.0 {
        bail!(
            "the GAN stage needs VGG19 weights for its perceptual loss: pass --vgg FILE (see the \
             docs of kdsr_trainer::realworld::vgg for the one-line conversion from torchvision)"
        );
    }
    let opts = TrainOptions {
        vgg: a.vgg.clone(),
        lpips: a.lpips_weights.clone(),
        teacher_weights: a.teacher.clone(),
        init_weights: a.init.clone(),
        ..a.run.options(&a.out)
    };
    run_stages(
        stages,
        |s| run_stage(&cfg, s, &opts),
        |s| s.settings(&cfg).iterations,
    )
}

/// Arguments of `trainer eval-realworld`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The weights and their config.
    #[command(flatten)]
    pub net: NetworkArgs,
    /// HR images.
    #[arg(long)]
    pub hr: PathBuf,
    /// LR images with the HR file stems (or `STEMx4`); without it, LR images are synthesised
    /// from the HR images with the training degradation at `--seed`.
    #[arg(long)]
    pub lr: Option<PathBuf>,
    /// LPIPS-Alex weights (safetensors, `lpips` package names); LPIPS is skipped without them.
    #[arg(long)]
    pub lpips_weights: Option<PathBuf>,
    /// Require LPIPS (fail instead of skipping it when no weights are given).
    #[arg(long)]
    pub lpips: bool,
    /// Metric implementation.
    #[arg(long, default_value = "basicsr")]
    pub metric: MetricVariant,
    /// At most this many images.
    #[arg(long, default_value_t = usize::MAX)]
    pub max_images: usize,
    /// Output prefix: writes PREFIX.md and PREFIX.json.
    #[arg(long)]
    pub out: PathBuf,
    /// `auto`, `cpu`, `cuda`, `cuda:N`.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Seed of the synthesised degradations.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Runs `eval-realworld`.
pub fn run_eval(a: &EvalArgs) -> Result<()> {
    if a.lpips && a.lpips_weights.is_none() {
        bail!("LPIPS needs --lpips-weights (see the docs of kdsr_trainer::realworld::lpips)");
    }
    let cfg = a.net.network_config()?;
    let device = parse_device(&a.device)?;
    let model = Model::load(&cfg, &a.net.weights, device)?;
    let lpips = match &a.lpips_weights {
        Some(p) => Some(Lpips::load(p, device)?),
        None => None,
    };
    let pairs = match &a.lr {
        Some(lr) => load_pairs(lr, &a.hr, cfg.scale, a.max_images)?,
        None => synth_pairs(
            &a.hr,
            &RealDegradation::default(),
            cfg.scale,
            a.max_images,
            a.seed,
            device,
        )?,
    };
    let r = evaluate_pairs(&model.net, &pairs, device, a.metric, lpips.as_ref())?;
    let set =
        a.hr.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
    let source = if a.lr.is_some() {
        "given LR images".to_owned()
    } else {
        format!(
            "LR synthesised with the Real-ESRGAN degradation, seed {}",
            a.seed
        )
    };
    let md = format!(
        "# Real-world evaluation of `{}` ({}, x{})\n\n{source}.\n\n{}",
        a.net.weights.display(),
        cfg.preset,
        cfg.scale,
        r.to_markdown(&format!("{set} ({} images)", pairs.len()))
    );
    write_atomic(&a.out.with_extension("md"), md.as_bytes())?;
    write_atomic(
        &a.out.with_extension("json"),
        serde_json::to_string_pretty(&json!({"weights": a.net.weights, "config": cfg, "set": set, "source": source, "report": r}))?
            .as_bytes(),
    )?;
    eprintln!(
        "{set}: PSNR {:.2} / SSIM {:.4}{}",
        r.psnr,
        r.ssim,
        r.lpips
            .map_or(" (no LPIPS weights given)".to_owned(), |l| format!(
                " / LPIPS {l:.4}"
            ))
    );
    Ok(())
}
