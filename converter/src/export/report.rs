//! The export report: what was written and how well each graph matched the reference forward
//! ([`Report`], [`GraphReport`]; `--json` prints it as JSON), its MAC counts ([`graph_macs`]),
//! and for a reduced precision the [`QuantReport`] against the float32 graph ([`quant_report`]).

use std::collections::BTreeMap;
use std::path::PathBuf;

use kdsr_core::Planar;
use kdsr_core::spec::layout::Module;
use kdsr_core::spec::macs::Counting;
use serde::Serialize;

use super::build::FoldedIdr;
use super::options::ValidOptions;
use crate::error::{ConvertError, Result};
use crate::graph::{ExportKind, GraphKind, Precision};
use crate::network::Network;
use crate::onnx::Built;
use crate::quantize::{
    self as quant,
    report::{CalibReport, EVAL_IMAGES, QuantReport, RealImagesReport, TRACT_INT8_NOTE},
};

/// LR size the report's MAC counts are given at (the paper's 180×320).
pub const MACS_SIZE: (usize, usize) = (180, 320);

/// What the report says about one written graph.
#[derive(Clone, Debug, Serialize)]
pub struct GraphReport {
    /// Graph kind.
    pub graph: GraphKind,
    /// The file written.
    pub file: PathBuf,
    /// Its size in bytes.
    pub file_bytes: usize,
    /// Float parameters stored in the graph.
    pub params: usize,
    /// Multiply-accumulates for one LR 180×320 input (all ops; batched: the whole batch).
    pub macs_320x180: u64,
    /// The verification input.
    pub test_input: String,
    /// Input shapes of the verification run.
    pub test_shapes: BTreeMap<String, Vec<usize>>,
    /// Max abs difference between tract and the reference forward, per output.
    pub max_abs_diff: BTreeMap<String, f64>,
    /// Absolute tolerance applied (relative tolerance × max(1, largest reference magnitude));
    /// `None` for the int8 precisions (checked by PSNR).
    pub tolerance: Option<f64>,
    /// tract load + optimize time at the test size, ms.
    pub tract_load_ms: f64,
    /// LR size (`[height, width]`) of the timing, if timed.
    pub bench_size: Option<[usize; 2]>,
    /// Median tract latency at `bench_size`, ms, one thread.
    pub latency_ms: Option<f64>,
    /// Reduced precisions: size, accuracy and speed against the float32 graph
    /// ([`crate::quantize::report`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quantization: Option<QuantReport>,
}

/// The IDR a folded export used.
#[derive(Clone, Debug, Serialize)]
pub struct IdrReport {
    /// `kdsr.idr_source`.
    pub source: String,
    /// Images averaged.
    pub images: usize,
    /// The weights hash the IDR records.
    pub weights_hash: String,
}

/// The export report (`--json` prints it as JSON).
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Preset name.
    pub preset: String,
    /// C, N, R and the scale.
    pub n_feats: usize,
    /// N.
    pub n_blocks: usize,
    /// R.
    pub n_resblocks: usize,
    /// Scale.
    pub scale: u32,
    /// Weights hash.
    pub weights_hash: String,
    /// Weight precision.
    pub precision: Precision,
    /// What was asked for.
    pub export: ExportKind,
    /// Batch size of a batched export.
    pub batch: Option<usize>,
    /// The folded IDR.
    pub idr: Option<IdrReport>,
    /// tract threads used for the timings.
    pub threads: usize,
    /// One entry per file.
    pub graphs: Vec<GraphReport>,
}

impl Report {
    /// The report of an export of `net` with `opts` that wrote `graphs` (and folded `folded`).
    pub fn new(
        net: &Network,
        opts: &ValidOptions,
        folded: Option<FoldedIdr>,
        graphs: Vec<GraphReport>,
    ) -> Self {
        let cfg = &net.config;
        Self {
            preset: cfg.preset.clone(),
            n_feats: cfg.n_feats,
            n_blocks: cfg.n_blocks,
            n_resblocks: cfg.n_resblocks,
            scale: cfg.scale,
            weights_hash: net.weights_hash.clone(),
            precision: opts.precision,
            export: opts.kind,
            batch: opts.batch,
            idr: folded.map(|f| IdrReport {
                source: f.source,
                images: f.idr.images,
                weights_hash: f.idr.weights_hash,
            }),
            threads: 1,
            graphs,
        }
    }

    /// The human-readable report.
    pub fn to_text(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{} (C {}, N {}, R {}, x{}), weights {}, {}",
            self.preset,
            self.n_feats,
            self.n_blocks,
            self.n_resblocks,
            self.scale,
            self.weights_hash,
            self.precision
        );
        if let Some(i) = &self.idr {
            let _ = writeln!(
                s,
                "folded IDR: {} ({} image(s), weights {})",
                i.source, i.images, i.weights_hash
            );
        }
        for g in &self.graphs {
            let _ = writeln!(s, "{} graph → {}", g.graph, g.file.display());
            let _ = writeln!(
                s,
                "  {} bytes, {} parameters, {:.3} GMACs at LR 320x180",
                g.file_bytes,
                g.params,
                g.macs_320x180 as f64 / 1e9
            );
            let diffs: Vec<String> = g
                .max_abs_diff
                .iter()
                .map(|(k, v)| format!("{k} {v:.2e}"))
                .collect();
            let tol = g
                .tolerance
                .map_or_else(String::new, |t| format!(" (tolerance {t:.1e})"));
            let _ = writeln!(
                s,
                "  tract vs reference forward ({}): max |Δ| {}{tol}",
                g.test_input,
                diffs.join(", "),
            );
            if let Some(q) = &g.quantization {
                s.push_str(&q.to_text());
            }
            match (g.bench_size, g.latency_ms) {
                (Some([h, w]), Some(ms)) => {
                    let _ = writeln!(
                        s,
                        "  tract: load+optimize {:.0} ms; latency {ms:.2} ms at LR {w}x{h} ({} thread)",
                        g.tract_load_ms, self.threads
                    );
                }
                _ => {
                    let _ = writeln!(s, "  tract: load+optimize {:.0} ms", g.tract_load_ms);
                }
            }
        }
        s
    }
}

/// MACs of one graph kind at LR `h × w` (all ops).
pub fn graph_macs(net: &Network, kind: GraphKind, batch: usize, h: usize, w: usize) -> u64 {
    let cfg = &net.config;
    let all = cfg.macs(h, w, Counting::All);
    let sr = cfg.sr_macs(h, w, Counting::All);
    match kind {
        GraphKind::Dynamic => all,
        GraphKind::Batched => all * batch as u64,
        GraphKind::Ide => all - sr,
        GraphKind::Sr => sr,
        GraphKind::Folded => {
            let mlp: u64 = cfg
                .layer_macs(h, w)
                .iter()
                .filter(|l| matches!(l.module, Module::Block { ddc_mlp: true, .. }))
                .map(|l| l.macs)
                .sum();
            sr - mlp
        }
    }
}

/// The [`QuantReport`] of `built` (a reduced-precision graph with its float32 original): size
/// ratio, `psnr_db` (its verification on the test input), PSNR on the first [`EVAL_IMAGES`] of
/// `crops` (checked against the floor), calibration, exclusions and `float_latency_ms`.
pub fn quant_report(
    net: &Network,
    built: &Built,
    opts: &ValidOptions,
    psnr_db: &BTreeMap<String, f64>,
    crops: Option<&[Planar]>,
    float_latency_ms: Option<f64>,
) -> Result<QuantReport> {
    let float = built
        .float
        .as_ref()
        .ok_or_else(|| ConvertError::Graph("no float32 graph to compare with".into()))?;
    let n = opts.samples(built.kind);
    let min_psnr = opts.limits().min_psnr;
    let q = &opts.quantize;
    let real = match (crops, &q.calib) {
        (Some(c), Some(co)) => {
            let take = &c[..c.len().min(EVAL_IMAGES)];
            let (mean, low) = quant::report::evaluate_real(net, built, take, n, min_psnr)?;
            Some(RealImagesReport {
                source: format!(
                    "the first {} calibration crop(s) of {}",
                    take.len(),
                    co.dir.display()
                ),
                images: take.len(),
                mean_psnr_db: mean,
                min_psnr_db: low,
            })
        }
        _ => None,
    };
    let calibration = match (&q.calib, crops) {
        (Some(c), Some(x)) if opts.precision == Precision::Int8 => Some(CalibReport {
            dir: c.dir.clone(),
            method: c.describe_method(),
            images: x.len(),
            crop: [c.crop.0, c.crop.1],
        }),
        _ => None,
    };
    Ok(QuantReport {
        float_file_bytes: float.len(),
        size_ratio: built.bytes.len() as f64 / float.len().max(1) as f64,
        psnr_db: psnr_db.clone(),
        real_images: real,
        min_psnr_db: min_psnr,
        float_latency_ms,
        calibration,
        exclude: q.exclude.clone(),
        kernels: matches!(opts.precision, Precision::Int8 | Precision::Int8Weights)
            .then_some(q.kernels),
        note: TRACT_INT8_NOTE.to_owned(),
    })
}
