//! `converter export`: a student checkpoint → ONNX graph(s), verified with tract, with a report.

use std::path::PathBuf;

use kdsr_core::spec::KdsrConfig;
use kdsr_core::spec::checkpoint::write_atomic;

use super::parse_size;
use crate::error::{ConvertError, Result};
use crate::export::{ExportOptions, TestInput, export};
use crate::graph::{ExportKind, Precision};
use crate::idr_source::IdrSource;
use crate::network::Network;

/// Arguments of `converter export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Preset name (student-m, student-edge, student-tiny, …) or a .json/.toml config file;
    /// default: NAME.json beside the weights.
    #[arg(long)]
    pub config: Option<String>,
    /// Weights: NAME.safetensors with the official state_dict keys.
    #[arg(long)]
    pub weights: PathBuf,
    /// Output ONNX file. A split export writes OUT-ide.onnx and OUT-sr.onnx (OUT = this path
    /// without .onnx).
    #[arg(long)]
    pub out: PathBuf,
    /// Graph kind.
    #[arg(long, value_enum, default_value_t = ExportKind::Dynamic)]
    pub graph: ExportKind,
    /// Fixed batch size of a batched graph.
    #[arg(long)]
    pub batch: Option<usize>,
    /// Folded graph: fold this .idr file.
    #[arg(long, conflicts_with_all = ["image", "calib"])]
    pub idr: Option<PathBuf>,
    /// Folded graph: fold the IDR of this image (the IDE run in tract).
    #[arg(long, conflicts_with = "calib")]
    pub image: Option<PathBuf>,
    /// Folded graph: fold the mean IDR of the images in this folder.
    #[arg(long)]
    pub calib: Option<PathBuf>,
    /// Fold an .idr file made by other weights.
    #[arg(long)]
    pub force: bool,
    /// Weight precision.
    #[arg(long, value_enum, default_value_t = Precision::F32)]
    pub precision: Precision,
    /// LR size of the verification input, HxW.
    #[arg(long, default_value = "32x32", value_parser = parse_size)]
    pub test_size: (usize, usize),
    /// Verify on the top-left crop of this image instead of the synthetic test image.
    #[arg(long)]
    pub test_image: Option<PathBuf>,
    /// Relative tolerance of the verification (default: by precision, 1e-4 for f32).
    #[arg(long)]
    pub tolerance: Option<f64>,
    /// LR size to time tract at, HxW.
    #[arg(long, default_value = "64x64", value_parser = parse_size)]
    pub bench_size: (usize, usize),
    /// Timed runs (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub bench_iters: usize,
    /// Skip the timing.
    #[arg(long)]
    pub no_bench: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Also write the JSON report to this file (atomically).
    #[arg(long)]
    pub report: Option<PathBuf>,
}

impl ExportArgs {
    /// The library options these arguments ask for.
    pub fn options(&self) -> ExportOptions {
        let idr = match (&self.idr, &self.image, &self.calib) {
            (Some(p), _, _) => Some(IdrSource::File(p.clone())),
            (_, Some(p), _) => Some(IdrSource::Image(p.clone())),
            (_, _, Some(p)) => Some(IdrSource::Calib(p.clone())),
            _ => None,
        };
        let (h, w) = self.test_size;
        ExportOptions {
            kind: self.graph,
            batch: self.batch,
            precision: self.precision,
            idr,
            force: self.force,
            test_input: match &self.test_image {
                Some(p) => TestInput::Crop(p.clone(), h, w),
                None => TestInput::Synthetic(h, w),
            },
            tolerance: self.tolerance,
            bench_size: (!self.no_bench).then_some(self.bench_size),
            bench_iters: self.bench_iters,
        }
    }
}

/// Runs the export; returns the report (text, or JSON with `--json`).
pub fn run(a: &ExportArgs) -> Result<String> {
    let opts = a.options();
    opts.validate()?;
    let config = a.config.as_deref().map(KdsrConfig::resolve).transpose()?;
    let net = Network::load(config, &a.weights)?;
    let report = export(&net, &opts, &a.out)?;
    let json = serde_json::to_string_pretty(&report)
        .map_err(|e| ConvertError::Graph(format!("serialising the report: {e}")))?;
    if let Some(p) = &a.report {
        write_atomic(p, format!("{json}\n").as_bytes())?;
    }
    Ok(if a.json { json } else { report.to_text() })
}
