//! Export: build the graphs, load each back with tract and compare it with the reference
//! forward on a test input, time it, and only then write the files (atomically) — a failed export
//! leaves no output file. The [`Report`] says what was written and how well it matched.
//!
//! One idea a file, each using only those before it:
//! - [`options`]: [`ExportOptions`] and, validated once, [`ValidOptions`];
//! - [`build`](mod@build): the float32 graphs, then their reduced-precision forms;
//! - [`check`]: the test input (synthetic [`test_image`]s or an image crop), verification
//!   against the reference forward ([`verify`]) and tract timing ([`bench()`]);
//! - [`report`](mod@report): the [`Report`], MAC counts and the quantization section;
//! - this module: [`export`], which runs them in order and writes the files.

pub mod build;
pub mod check;
pub mod options;
pub mod report;

use std::path::{Path, PathBuf};

use kdsr_core::spec::checkpoint::write_atomic;

pub use build::{FoldedIdr, build, build_valid, build_with};
pub use check::{Named, Verified, bench, bench_bytes, test_image, verify};
pub use options::{ExportOptions, Limits, Target, TestInput, ValidOptions};
pub use report::{GraphReport, IdrReport, MACS_SIZE, Report, graph_macs, quant_report};

use crate::error::{ConvertError, Result};
use crate::graph::{ExportKind, GraphKind};
use crate::inspect;
use crate::network::Network;
pub use crate::onnx::Built;

/// The files one export writes: `out` itself, or for a split export `OUT-ide.onnx` and
/// `OUT-sr.onnx` (`OUT` = `out` without its `.onnx` extension).
pub fn output_paths(kind: ExportKind, out: &Path) -> Vec<(GraphKind, PathBuf)> {
    let single = |k| vec![(k, out.to_path_buf())];
    match kind {
        ExportKind::Dynamic => single(GraphKind::Dynamic),
        ExportKind::Folded => single(GraphKind::Folded),
        ExportKind::Batched => single(GraphKind::Batched),
        ExportKind::Split => {
            let stem = match out.extension().and_then(|e| e.to_str()) {
                Some(e) if e.eq_ignore_ascii_case("onnx") => out.with_extension(""),
                _ => out.to_path_buf(),
            };
            let (ide, sr) = kdsr_core::spec::onnx::split_paths(&stem);
            vec![(GraphKind::Ide, ide), (GraphKind::Sr, sr)]
        }
    }
}

/// Builds, verifies, times and writes the export; returns the report. Nothing is written unless
/// every graph verified; the files are written atomically, and if writing one of a split pair
/// fails the other is removed.
///
/// Validates `opts` first ([`ExportOptions::validate`]); [`export_valid`] takes options already
/// validated.
pub fn export(net: &Network, opts: &ExportOptions, out: &Path) -> Result<Report> {
    export_valid(net, &opts.validate()?, out)
}

/// [`export`] with validated options.
pub fn export_valid(net: &Network, opts: &ValidOptions, out: &Path) -> Result<Report> {
    let paths = output_paths(opts.kind, out);
    for (_, p) in &paths {
        if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.is_dir() {
                return Err(ConvertError::Io {
                    path: p.clone(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "the output folder does not exist",
                    ),
                });
            }
        }
    }
    let crops = opts
        .quantize
        .calib
        .as_ref()
        .filter(|_| opts.precision.is_reduced())
        .map(|c| c.crops(net.config.scale))
        .transpose()?;
    let (built, folded) = build_valid(net, opts, crops.as_deref())?;
    let limits = opts.limits();
    let mut reports = Vec::new();
    for (b, (_, path)) in built.iter().zip(&paths) {
        let n = opts.samples(b.kind);
        let images = opts.test_input.images(n)?;
        let v = verify(net, b, &images, folded.as_ref().map(|f| &f.idr), limits)?;
        let latency = match opts.bench_size {
            Some((h, w)) => Some(bench(net, b, n, h, w, opts.bench_iters)?),
            None => None,
        };
        let quantization = match &b.float {
            Some(float) => {
                let float_latency = match opts.bench_size {
                    Some((h, w)) => {
                        Some(bench_bytes(net, b.kind, float, n, h, w, opts.bench_iters)?)
                    }
                    None => None,
                };
                Some(quant_report(
                    net,
                    b,
                    opts,
                    &v.psnr_db,
                    crops.as_deref(),
                    float_latency,
                )?)
            }
            None => None,
        };
        reports.push(GraphReport {
            graph: b.kind,
            file: path.clone(),
            file_bytes: b.bytes.len(),
            params: inspect::param_count(&b.model),
            macs_320x180: graph_macs(net, b.kind, n, MACS_SIZE.0, MACS_SIZE.1),
            test_input: format!("{} x{n}", opts.test_input.describe()),
            test_shapes: v
                .inputs
                .iter()
                .map(|(k, x)| (k.clone(), x.shape.clone()))
                .collect(),
            max_abs_diff: v.max_abs_diff,
            tolerance: v.tolerance,
            tract_load_ms: v.load_ms,
            bench_size: opts.bench_size.map(|(h, w)| [h, w]),
            latency_ms: latency,
            quantization,
        });
    }
    let mut written: Vec<&Path> = Vec::new();
    for (b, (_, path)) in built.iter().zip(&paths) {
        if let Err(e) = write_atomic(path, &b.bytes) {
            for p in written {
                let _ = std::fs::remove_file(p);
            }
            return Err(e.into());
        }
        written.push(path);
    }
    Ok(Report::new(net, opts, folded, reports))
}
