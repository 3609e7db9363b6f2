//! `trainer forward`: reads `lr` (and `hr` for a teacher) from a safetensors file, writes `sr`,
//! `D` and `D_prime`. This is how anyone checks parity with another implementation.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use kdsr_core::spec::{KdsrConfig, Role};
use tch::{Kind, Tensor};

use crate::device::parse_device;
use crate::model::Model;

/// Arguments of `trainer forward`.
#[derive(Debug, Args)]
pub struct ForwardArgs {
    /// Preset name (`student-m`, `teacher-edge`, …) or a `.json`/`.toml` config file.
    #[arg(long)]
    pub config: String,
    /// Weights (safetensors, official key names).
    #[arg(long)]
    pub weights: PathBuf,
    /// Input safetensors with `lr` [B,3,h,w] float32 (and `hr` [B,3,sh,sw] for a teacher).
    #[arg(long)]
    pub input: PathBuf,
    /// Output safetensors: `sr`, `D`, `D_prime`.
    #[arg(long)]
    pub out: PathBuf,
    /// `auto`, `cpu`, `cuda` or `cuda:N`.
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

/// Runs the command.
pub fn run(a: &ForwardArgs) -> Result<()> {
    let cfg = KdsrConfig::resolve(&a.config)?;
    let device = parse_device(&a.device)?;
    let model = Model::load(&cfg, &a.weights, device)?;
    let inputs: HashMap<String, Tensor> = Tensor::read_safetensors(&a.input)
        .with_context(|| format!("reading {}", a.input.display()))?
        .into_iter()
        .collect();
    let get = |name: &str| -> Result<Tensor> {
        let t = inputs
            .get(name)
            .with_context(|| format!("{}: no tensor `{name}`", a.input.display()))?;
        if t.kind() != Kind::Float {
            bail!(
                "{}: `{name}` is {:?}, expected float32",
                a.input.display(),
                t.kind()
            );
        }
        Ok(t.to_device(device))
    };
    let lr = get("lr")?;
    let s = lr.size();
    if s.len() != 4 || s[1] != 3 {
        bail!(
            "{}: `lr` has shape {s:?}, expected [B,3,h,w]",
            a.input.display()
        );
    }
    let hr = match cfg.role {
        Role::Teacher => {
            let hr = get("hr")?;
            let want = [
                s[0],
                3,
                s[2] * i64::from(cfg.scale),
                s[3] * i64::from(cfg.scale),
            ];
            if hr.size() != want {
                bail!(
                    "{}: `hr` has shape {:?}, expected {want:?}",
                    a.input.display(),
                    hr.size()
                );
            }
            Some(hr)
        }
        Role::Student => None,
    };
    let out = tch::no_grad(|| model.net.forward(&lr, hr.as_ref()))?;
    let tensors = [
        ("sr", out.sr.to_device(tch::Device::Cpu)),
        ("D", out.d.to_device(tch::Device::Cpu)),
        ("D_prime", out.d_prime.to_device(tch::Device::Cpu)),
    ];
    let tmp = a.out.with_extension("safetensors.tmp");
    Tensor::write_safetensors(&tensors, &tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &a.out).with_context(|| format!("writing {}", a.out.display()))?;
    Ok(())
}
