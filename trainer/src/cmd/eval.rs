//! `trainer eval`: Gaussian8 and the anisotropic + noise grid over folders of HR images → a
//! markdown table and a JSON report.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use kdsr_core::eval::{Protocol, run_suites};
use kdsr_core::spec::KdsrConfig;
use kdsr_core::spec::checkpoint::write_atomic;
use serde_json::json;

use crate::device::parse_device;
use crate::eval::super_resolve;
use crate::model::Model;

/// Arguments of `trainer eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Network preset or config file (default: the `.json` beside the weights).
    #[arg(long)]
    pub config: Option<String>,
    /// Weights (safetensors, official keys).
    #[arg(long)]
    pub weights: PathBuf,
    /// Test sets, suites, metric and seed.
    #[command(flatten)]
    pub protocol: Protocol,
    /// Output prefix: writes PREFIX.md and PREFIX.json.
    #[arg(long)]
    pub out: PathBuf,
    /// `auto`, `cpu`, `cuda`, `cuda:N`.
    #[arg(long, default_value = "auto")]
    pub device: String,
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
    let (body, js) = run_suites(&a.protocol, cfg.scale, &cfg.preset, |lr, hr| -> Result<_> {
        super_resolve(&model.net, lr, hr, device)
    })?;
    md += &body;
    write_atomic(&a.out.with_extension("md"), md.as_bytes())?;
    write_atomic(
        &a.out.with_extension("json"),
        serde_json::to_string_pretty(&json!({"weights": a.weights, "config": cfg, "results": js}))?
            .as_bytes(),
    )?;
    Ok(())
}
