//! `--device auto|cpu|cuda:N` parsing.

use anyhow::{Result, bail};
use tch::Device;

/// Parses a device name: `auto` (CUDA 0 when available, else CPU), `cpu`, `cuda` or `cuda:N`.
pub fn parse_device(s: &str) -> Result<Device> {
    let d = match s {
        "auto" => Device::cuda_if_available(),
        "cpu" => Device::Cpu,
        "cuda" => Device::Cuda(0),
        _ => match s.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(n)) => Device::Cuda(n),
            _ => bail!("unknown device `{s}`: use auto, cpu, cuda or cuda:N"),
        },
    };
    if let Device::Cuda(n) = d {
        let count = tch::Cuda::device_count() as usize;
        if n >= count {
            bail!("device cuda:{n} requested but {count} CUDA device(s) are available");
        }
    }
    Ok(d)
}

/// Short name of a device for logs.
pub fn device_name(d: Device) -> String {
    match d {
        Device::Cpu => "cpu".into(),
        Device::Cuda(n) => format!("cuda:{n}"),
        other => format!("{other:?}"),
    }
}
