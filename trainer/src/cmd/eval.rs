//! `trainer eval`: Gaussian8 and the anisotropic + noise grid over folders of HR images → a
//! markdown table and a JSON report.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use kdsr_core::eval::{Protocol, run_suites};
use kdsr_core::spec::checkpoint::write_atomic;
use serde_json::json;

use super::NetworkArgs;
use crate::device::parse_device;
use crate::eval::super_resolve;
use crate::model::Model;

/// Arguments of `trainer eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The weights and their config.
    #[command(flatten)]
    pub net: NetworkArgs,
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
    let cfg = a.net.network_config()?;
    let device = parse_device(&a.device)?;
    let model = Model::load(&cfg, &a.net.weights, device)?;
    let mut md = format!(
        "# Evaluation of `{}` ({}, x{})\n\nCommand: `trainer eval {}`\n\n",
        a.net.weights.display(),
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
        serde_json::to_string_pretty(
            &json!({"weights": a.net.weights, "config": cfg, "results": js}),
        )?
        .as_bytes(),
    )?;
    Ok(())
}
