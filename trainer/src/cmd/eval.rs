//! `trainer eval`: Gaussian8 and the anisotropic + noise grid over folders of HR images → a
//! markdown table and a JSON report.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use kdsr_core::metrics::MetricVariant;
use kdsr_core::spec::KdsrConfig;
use kdsr_core::spec::checkpoint::write_atomic;
use serde_json::json;

use crate::device::parse_device;
use crate::eval::{aniso_grid, evaluate, gaussian8, load_folder};
use crate::model::Model;

/// Test suites.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Suite {
    /// Isotropic Gaussian8 (paper Table 1).
    Gaussian8,
    /// 9 anisotropic kernels × noise levels (paper Table 2).
    AnisoNoise,
}

/// Arguments of `trainer eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Network preset or config file (default: the `.json` beside the weights).
    #[arg(long)]
    pub config: Option<String>,
    /// Weights (safetensors, official keys).
    #[arg(long)]
    pub weights: PathBuf,
    /// Folders of HR test images (e.g. Set5 Set14 B100); one table per folder.
    #[arg(long, required = true, num_args = 1..)]
    pub data: Vec<PathBuf>,
    /// Suites to run.
    #[arg(long, value_enum, num_args = 1.., default_values = ["gaussian8"])]
    pub suite: Vec<Suite>,
    /// Only these Gaussian8 σ values.
    #[arg(long, num_args = 1.., value_delimiter = ',')]
    pub sigmas: Vec<f64>,
    /// Noise levels of the anisotropic grid (0..255 units).
    #[arg(long, num_args = 1.., value_delimiter = ',', default_values = ["0", "10", "20"])]
    pub noise: Vec<f32>,
    /// Metric implementation.
    #[arg(long, default_value = "kdsr-official")]
    pub metric: MetricVariant,
    /// At most this many images per folder.
    #[arg(long, default_value_t = usize::MAX)]
    pub max_images: usize,
    /// Output prefix: writes PREFIX.md and PREFIX.json.
    #[arg(long)]
    pub out: PathBuf,
    /// `auto`, `cpu`, `cuda`, `cuda:N`.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Seed of the noise draws.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Runs the command.
pub fn run(a: &EvalArgs) -> Result<()> {
    let cfg = match &a.config {
        Some(c) => KdsrConfig::resolve(c)?,
        None => KdsrConfig::from_file(&a.weights.with_extension("json")).with_context(|| {
            format!(
                "no --config given and no config beside {}",
                a.weights.display()
            )
        })?,
    };
    let device = parse_device(&a.device)?;
    let model = Model::load(&cfg, &a.weights, device)?;
    let mut md = format!(
        "# Evaluation of `{}` ({}, x{})\n\nCommand: `trainer eval {}`\n\n",
        a.weights.display(),
        cfg.preset,
        cfg.scale,
        std::env::args().skip(2).collect::<Vec<_>>().join(" ")
    );
    let mut js = Vec::new();
    for dir in &a.data {
        let images = load_folder(dir, cfg.scale, a.max_images)?;
        let set = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for suite in &a.suite {
            let (name, cases) = match suite {
                Suite::Gaussian8 => ("gaussian8", gaussian8(cfg.scale, &a.sigmas)?),
                Suite::AnisoNoise => ("aniso-noise", aniso_grid(cfg.scale, &a.noise)?),
            };
            let r = evaluate(&model.net, &images, &cases, device, a.metric, a.seed)?;
            md += &r.to_markdown(&format!("{set} — {name} ({} images)", images.len()));
            if *suite == Suite::Gaussian8 && a.sigmas.is_empty() {
                md += &crate::paper::table1_markdown(
                    &set,
                    &cfg.preset,
                    r.mean.0,
                    r.mean.1,
                    (r.mean.2, r.mean.3),
                );
            }
            md += "\n";
            js.push(json!({"set": set, "suite": name, "images": images.len(), "report": r}));
            eprintln!(
                "{set} {name}: PSNR {:.2} / SSIM {:.4} (bicubic {:.2})",
                r.mean.0, r.mean.1, r.mean.2
            );
        }
    }
    write_atomic(&a.out.with_extension("md"), md.as_bytes())?;
    write_atomic(
        &a.out.with_extension("json"),
        serde_json::to_string_pretty(&json!({"weights": a.weights, "config": cfg, "results": js}))?
            .as_bytes(),
    )?;
    Ok(())
}
