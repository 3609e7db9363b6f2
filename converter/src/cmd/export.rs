//! `converter export`: a student checkpoint → ONNX graph(s), verified with tract, with a report.

use std::path::PathBuf;

use kdsr_core::spec::KdsrConfig;
use kdsr_core::spec::checkpoint::write_atomic;

use crate::error::{ConvertError, Result};
use crate::export::{ExportOptions, TestInput, export_valid};
use crate::graph::{ExportKind, Precision};
use crate::idr_source::IdrSource;
use crate::network::Network;
use crate::quantize::calibrate::DEFAULT_PERCENTILE;
use crate::quantize::{CalibMethod, CalibOptions, KernelQuant, QuantizeOptions};
use kdsr_core::io::ImageSize;

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
    /// Precision: f32; int8 (static QDQ: int8 per-channel weights, uint8 activations calibrated
    /// on --calib-data); int8-weights (weights only, ~4x smaller); f16 (float16 weights).
    #[arg(long, visible_alias = "precision", value_enum, default_value_t = Precision::F32)]
    pub quantize: Precision,
    /// Calibration images (used as LR inputs, center-cropped to --calib-size): required for
    /// --quantize int8; with int8-weights or f16 only used to report the PSNR on real images.
    #[arg(long, value_name = "DIR")]
    pub calib_data: Option<PathBuf>,
    /// How activation ranges are taken from the calibration values.
    #[arg(long, value_enum, default_value_t = CalibMethod::Percentile)]
    pub calib_method: CalibMethod,
    /// Percentile of --calib-method percentile (the central P % of the values are kept).
    #[arg(long, default_value_t = DEFAULT_PERCENTILE)]
    pub calib_percentile: f64,
    /// Largest center crop of each calibration image, WxH.
    #[arg(long, value_name = "WxH", default_value = "64x64")]
    pub calib_size: ImageSize,
    /// Use only the first N calibration images (by name).
    #[arg(long, value_name = "N")]
    pub calib_images: Option<usize>,
    /// Treat the --calib-data images as HR and calibrate on LR synthesised from them with the
    /// classic degradation (isotropic Gaussian blur, σ spread over 0.2–4.0, bicubic ↓scale,
    /// 8-bit) — what a classic model sees. Recommended with HR folders such as data/T91.
    #[arg(long)]
    pub calib_degrade: bool,
    /// Leave this node float32 (repeatable; e.g. G.head.0, G.tail.1).
    #[arg(long, value_name = "NODE_NAME")]
    pub exclude: Vec<String>,
    /// Kernel path of the dynamic depthwise convs (kernel MLPs and computed kernels) under int8:
    /// float, weights (MLP weights int8), full (also QDQ on D and the kernels).
    #[arg(long, value_enum, default_value_t = KernelQuant::Weights)]
    pub quantize_kernels: KernelQuant,
    /// 7-bit int8 weights ([-64, 64]), as onnxruntime's quantizer's reduce_range: for graphs
    /// that onnxruntime or OpenVINO will run on x86-64 CPUs without VNNI (AVX2-only Intel, AMD
    /// before Zen 4), whose u8×s8 kernels saturate with full-range weights. Not needed for
    /// kdsr-edge (tract) or ARM.
    #[arg(long)]
    pub reduce_range: bool,
    /// LR size of the verification input, WxH.
    #[arg(long, value_name = "WxH", default_value = "32x32")]
    pub test_size: ImageSize,
    /// Verify on the top-left crop of this image instead of the synthetic test image.
    #[arg(long)]
    pub test_image: Option<PathBuf>,
    /// Relative tolerance of the verification (default: by precision, 1e-4 for f32, 5e-3 for
    /// f16; none for int8, checked by PSNR).
    #[arg(long)]
    pub tolerance: Option<f64>,
    /// PSNR floor (dB vs the float32 reference) of a quantized export (default: 30 for int8, 40
    /// for int8-weights).
    #[arg(long, value_name = "DB")]
    pub min_psnr: Option<f64>,
    /// LR size to time tract at, WxH.
    #[arg(long, value_name = "WxH", default_value = "64x64")]
    pub bench_size: ImageSize,
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
        let (h, w) = self.test_size.hw();
        ExportOptions {
            kind: self.graph,
            batch: self.batch,
            precision: self.quantize,
            quantize: QuantizeOptions {
                calib: self.calib_data.as_ref().map(|d| CalibOptions {
                    dir: d.clone(),
                    method: self.calib_method,
                    percentile: self.calib_percentile,
                    crop: self.calib_size.hw(),
                    max_images: self.calib_images,
                    degrade: self.calib_degrade,
                }),
                exclude: self.exclude.clone(),
                kernels: self.quantize_kernels,
                reduce_range: self.reduce_range,
            },
            idr,
            force: self.force,
            test_input: match &self.test_image {
                Some(p) => TestInput::Crop(p.clone(), h, w),
                None => TestInput::Synthetic(h, w),
            },
            tolerance: self.tolerance,
            min_psnr: self.min_psnr,
            bench_size: (!self.no_bench).then_some(self.bench_size.hw()),
            bench_iters: self.bench_iters,
        }
    }
}

/// Runs the export; returns the report (text, or JSON with `--json`).
pub fn run(a: &ExportArgs) -> Result<String> {
    let opts = a.options().validate()?;
    let config = a.config.as_deref().map(KdsrConfig::resolve).transpose()?;
    let net = Network::load(config, &a.weights)?;
    let out_dir = match a.out.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    for f in kdsr_core::fsutil::remove_stale_temps(&out_dir) {
        eprintln!(
            "note: removed {}, a temporary file left by an interrupted run",
            f.display()
        );
    }
    let report = export_valid(&net, &opts, &a.out)?;
    let json = serde_json::to_string_pretty(&report)
        .map_err(|e| ConvertError::Graph(format!("serialising the report: {e}")))?;
    if let Some(p) = &a.report {
        write_atomic(p, format!("{json}\n").as_bytes())?;
    }
    Ok(if a.json { json } else { report.to_text() })
}
