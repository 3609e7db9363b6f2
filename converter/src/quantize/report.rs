//! The report of a reduced-precision export: its size, its PSNR against the float32 graph on
//! the test input and on real images, its calibration, and its speed beside the float32 graph's
//! — with the plain statement that tract 0.23.9 runs int8 no faster than f32. The export fills
//! it in (`crate::export::report::quant_report`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use kdsr_core::Planar;
use serde::Serialize;

use super::options::KernelQuant;
use crate::error::{ConvertError, Result};
use crate::graph::output_floor;
use crate::idr_source::feeds;
use crate::network::Network;
use crate::onnx::Built;
use crate::verify::{Plan, psnr, psnr_peak};

/// At most this many calibration crops are used to report a reduced-precision graph's PSNR on
/// real images.
pub const EVAL_IMAGES: usize = 8;

/// What the report says about tract and reduced precision.
pub const TRACT_INT8_NOTE: &str = "tract 0.23.9 runs int8 no faster than f32: QDQ convs run in \
float32 (plus the Quantize/Dequantize ops) and int8 or f16 weights are converted to float32 at \
load; reduced precision buys file size here, and speed only on runtimes with int8 kernels \
(onnxruntime, TensorRT, NPUs)";

/// A reduced-precision graph against its float32 original.
#[derive(Clone, Debug, Serialize)]
pub struct QuantReport {
    /// Size of the float32 graph, bytes.
    pub float_file_bytes: usize,
    /// `file_bytes / float_file_bytes`.
    pub size_ratio: f64,
    /// PSNR (dB) of tract's output against the float32 reference forward on the test input, per
    /// output (`sr`: peak 1; vectors: peak = their largest magnitude).
    pub psnr_db: BTreeMap<String, f64>,
    /// The same on real images (calibration crops), if any were given.
    pub real_images: Option<RealImagesReport>,
    /// The PSNR floor applied to `sr`, dB (vectors:
    /// [`crate::graph::VECTOR_PSNR_MARGIN`] dB less).
    pub min_psnr_db: Option<f64>,
    /// Median tract latency of the float32 graph at the same size, ms.
    pub float_latency_ms: Option<f64>,
    /// The activation calibration (int8).
    pub calibration: Option<CalibReport>,
    /// Nodes left float32.
    pub exclude: Vec<String>,
    /// Kernel-path handling (int8, int8-weights).
    pub kernels: Option<KernelQuant>,
    /// [`TRACT_INT8_NOTE`].
    pub note: String,
}

/// PSNR of a reduced-precision graph against the float32 graph (both in tract) on real images.
#[derive(Clone, Debug, Serialize)]
pub struct RealImagesReport {
    /// Where the images came from.
    pub source: String,
    /// Images evaluated.
    pub images: usize,
    /// Mean PSNR per output, dB.
    pub mean_psnr_db: BTreeMap<String, f64>,
    /// Lowest PSNR per output, dB.
    pub min_psnr_db: BTreeMap<String, f64>,
}

/// How an int8 graph's activations were calibrated.
#[derive(Clone, Debug, Serialize)]
pub struct CalibReport {
    /// The folder.
    pub dir: PathBuf,
    /// `minmax` or `percentile P`.
    pub method: String,
    /// Crops measured.
    pub images: usize,
    /// Largest crop, `[height, width]`.
    pub crop: [usize; 2],
}

fn db_list(m: &BTreeMap<String, f64>) -> String {
    m.iter()
        .map(|(k, v)| format!("{k} {v:.2} dB"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl QuantReport {
    /// The report's lines (two-space indented), for the text report.
    pub fn to_text(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(
            &mut s,
            "  {:.3}x the float32 file ({} bytes)",
            self.size_ratio, self.float_file_bytes
        );
        let vectors = self
            .psnr_db
            .keys()
            .any(|k| k != kdsr_core::spec::onnx::names::SR);
        let floor = self.min_psnr_db.map_or_else(String::new, |f| {
            if vectors {
                let v = f - crate::graph::VECTOR_PSNR_MARGIN;
                format!(" (floor {f:.1} dB; vectors {v:.1} dB)")
            } else {
                format!(" (floor {f:.1} dB)")
            }
        });
        let _ = writeln!(
            &mut s,
            "  PSNR vs float32 on the test input: {}{floor}",
            db_list(&self.psnr_db)
        );
        if let Some(r) = &self.real_images {
            let _ = writeln!(
                &mut s,
                "  PSNR vs float32 on {} real image(s) ({}): mean {}; lowest {}",
                r.images,
                r.source,
                db_list(&r.mean_psnr_db),
                db_list(&r.min_psnr_db)
            );
        }
        if let Some(c) = &self.calibration {
            let _ = writeln!(
                &mut s,
                "  calibration: {} over {} crop(s) (at most {}x{}) of {}",
                c.method,
                c.images,
                c.crop[1],
                c.crop[0],
                c.dir.display()
            );
        }
        if !self.exclude.is_empty() {
            let _ = writeln!(&mut s, "  left float32: {}", self.exclude.join(", "));
        }
        if let Some(ms) = self.float_latency_ms {
            let _ = writeln!(&mut s, "  float32 graph latency for comparison: {ms:.2} ms");
        }
        let _ = writeln!(&mut s, "  note: {}", self.note);
        s
    }
}

/// PSNR of a reduced-precision graph against its float32 original (both run in tract) on real
/// LR `images`, per output: `(mean, lowest)`. Fails with [`ConvertError::Psnr`] below `floor`.
pub fn evaluate_real(
    net: &Network,
    built: &Built,
    images: &[Planar],
    batch: usize,
    floor: Option<f64>,
) -> Result<(BTreeMap<String, f64>, BTreeMap<String, f64>)> {
    let float = built
        .float
        .as_ref()
        .ok_or_else(|| ConvertError::Graph("no float32 graph to compare with".into()))?;
    let names: Vec<String> = built
        .model
        .graph
        .as_ref()
        .map(|g| g.output.iter().map(|o| o.name.clone()).collect())
        .unwrap_or_default();
    let mut plans: BTreeMap<Vec<Vec<usize>>, (Plan, Plan)> = BTreeMap::new();
    let mut sum: BTreeMap<String, f64> = BTreeMap::new();
    let mut low: BTreeMap<String, f64> = BTreeMap::new();
    let fs = feeds(net, built.kind, images, batch)?;
    for f in &fs {
        let shapes: Vec<Vec<usize>> = f.iter().map(|v| v.shape.clone()).collect();
        if !plans.contains_key(&shapes) {
            let pair = (
                Plan::new(float, &shapes)?,
                Plan::new(&built.bytes, &shapes)?,
            );
            plans.insert(shapes.clone(), pair);
        }
        let (pf, pq) = plans
            .get(&shapes)
            .ok_or_else(|| ConvertError::Graph("evaluation plan missing".into()))?;
        let (want, got) = (pf.run(f)?, pq.run(f)?);
        for ((name, w), g) in names.iter().zip(&want).zip(&got) {
            let p = psnr(&g.data, &w.data, psnr_peak(name, &w.data));
            if let Some(floor) = floor.map(|f| output_floor(name, f)) {
                if p.is_nan() || p < floor {
                    return Err(ConvertError::Psnr {
                        graph: built.kind.to_string(),
                        output: name.clone(),
                        input: "a real image (calibration crop)".into(),
                        psnr: p,
                        floor,
                    });
                }
            }
            *sum.entry(name.clone()).or_default() += p;
            let l = low.entry(name.clone()).or_insert(f64::INFINITY);
            *l = l.min(p);
        }
    }
    let n = fs.len().max(1) as f64;
    Ok((sum.into_iter().map(|(k, v)| (k, v / n)).collect(), low))
}
