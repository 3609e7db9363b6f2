//! Export: build the graphs, load each back with tract and compare it with the reference
//! forward on a test input, time it, and only then write the files (atomically) — a failed export
//! leaves no output file. The [`Report`] says what was written and how well it matched.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kdsr_core::Planar;
use kdsr_core::idr::Idr;
use kdsr_core::spec::checkpoint::write_atomic;
use kdsr_core::spec::layout::Module;
use kdsr_core::spec::macs::Counting;
use serde::Serialize;
use tract_onnx::pb::ModelProto;

use crate::error::{ConvertError, Result};
use crate::graph::{ExportKind, GraphKind, Precision, output_floor};
use crate::idr_source::{self, IdeRunner, IdrSource};
use crate::network::Network;
use crate::quantize::report::{QuantReport, quant_report};
use crate::quantize::{self as quant, QuantizeOptions};
use crate::reference;
use crate::verify::{Plan, Value, max_abs_diff, psnr, psnr_peak};
use crate::{inspect, onnx};

/// LR size the report's MAC counts are given at (the paper's 180×320).
pub const MACS_SIZE: (usize, usize) = (180, 320);

/// The LR image the exported graphs are verified on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TestInput {
    /// [`test_image`]s of this size (`height`, `width`); sample `b` of a batch uses seed `b`.
    Synthetic(usize, usize),
    /// The top-left `height × width` crop of an image file (sample 0; further batch samples are
    /// synthetic).
    Crop(PathBuf, usize, usize),
}

impl TestInput {
    /// Height and width.
    pub fn size(&self) -> (usize, usize) {
        match self {
            TestInput::Synthetic(h, w) | TestInput::Crop(_, h, w) => (*h, *w),
        }
    }

    /// The `batch` LR images `[3, H, W]`.
    pub fn images(&self, batch: usize) -> Result<Vec<Planar>> {
        let (h, w) = self.size();
        (0..batch.max(1))
            .map(|b| match self {
                TestInput::Crop(p, ..) if b == 0 => {
                    let img = idr_source::load_rgb(p)?;
                    img.crop(0, 0, h, w).map_err(|_| ConvertError::Image {
                        path: p.clone(),
                        message: format!(
                            "{}x{} is smaller than the test size {h}x{w} (choose --test-size)",
                            img.height(),
                            img.width()
                        ),
                    })
                }
                _ => test_image(h, w, b as u32),
            })
            .collect()
    }

    fn describe(&self) -> String {
        match self {
            TestInput::Synthetic(h, w) => format!("synthetic {h}x{w}"),
            TestInput::Crop(p, h, w) => format!("{h}x{w} crop of {}", p.display()),
        }
    }
}

/// A deterministic 8-bit-valued RGB test image (`k/255`): smooth colour gradients and waves plus
/// a hash-based texture, different for every `seed`.
pub fn test_image(h: usize, w: usize, seed: u32) -> Result<Planar> {
    let mut data = Vec::with_capacity(3 * h * w);
    let s = seed as f32;
    for c in 0..3u32 {
        for y in 0..h {
            for x in 0..w {
                let (xf, yf, cf) = (x as f32, y as f32, c as f32);
                let wave = (0.37 * xf + 1.3 * cf + s).sin() * (0.23 * yf - 0.7 * s + cf).cos();
                let ramp = (xf + yf) / (h + w).max(1) as f32;
                let mut k = (x as u32)
                    .wrapping_mul(73_856_093)
                    .wrapping_add((y as u32).wrapping_mul(19_349_663))
                    .wrapping_add(c.wrapping_mul(83_492_791))
                    .wrapping_add(seed.wrapping_mul(2_654_435_761));
                k ^= k >> 13;
                k = k.wrapping_mul(0x5bd1_e995);
                k ^= k >> 15;
                let noise = (k & 0xffff) as f32 / 65535.0 - 0.5;
                let v = 0.45 + 0.25 * wave + 0.2 * (ramp - 0.5) + 0.15 * noise;
                data.push((v.clamp(0.0, 1.0) * 255.0).round() / 255.0);
            }
        }
    }
    Ok(Planar::new(3, h, w, data)?)
}

/// Everything `export` needs besides the network and the output path.
#[derive(Clone, Debug)]
pub struct ExportOptions {
    /// Which graph(s) to write.
    pub kind: ExportKind,
    /// Batch size, for [`ExportKind::Batched`] only.
    pub batch: Option<usize>,
    /// Weight (and activation) precision.
    pub precision: Precision,
    /// Calibration, exclusions and kernel-path handling of a reduced precision.
    pub quantize: QuantizeOptions,
    /// IDR source, for [`ExportKind::Folded`] only.
    pub idr: Option<IdrSource>,
    /// Fold an IDR file made by other weights.
    pub force: bool,
    /// The verification input.
    pub test_input: TestInput,
    /// Relative tolerance of the verification (`None`: [`Precision::default_tolerance`]).
    pub tolerance: Option<f64>,
    /// PSNR floor (dB vs float32) of the verification (`None`: [`Precision::default_min_psnr`]).
    pub min_psnr: Option<f64>,
    /// LR size (`height`, `width`) to time tract at; `None` skips timing.
    pub bench_size: Option<(usize, usize)>,
    /// Timed runs (median reported).
    pub bench_iters: usize,
}

impl Default for ExportOptions {
    fn default() -> Self {
        Self {
            kind: ExportKind::Dynamic,
            batch: None,
            precision: Precision::F32,
            quantize: QuantizeOptions::default(),
            idr: None,
            force: false,
            test_input: TestInput::Synthetic(32, 32),
            tolerance: None,
            min_psnr: None,
            bench_size: Some((64, 64)),
            bench_iters: 5,
        }
    }
}

impl ExportOptions {
    /// Checks the options fit together (before any work is done).
    pub fn validate(&self) -> Result<()> {
        let opt = |m: &str| Err(ConvertError::Options(m.to_owned()));
        match (self.kind, self.batch) {
            (ExportKind::Batched, None) => return opt("--graph batched needs --batch B"),
            (ExportKind::Batched, Some(0)) => return opt("--batch must be at least 1"),
            (ExportKind::Batched, Some(_)) | (_, None) => {}
            (_, Some(_)) => return opt("--batch applies only to --graph batched"),
        }
        match (self.kind, &self.idr) {
            (ExportKind::Folded, None) => {
                return opt("--graph folded needs an IDR: --idr FILE, --image FILE or --calib DIR");
            }
            (ExportKind::Folded, Some(_)) | (_, None) => {}
            (_, Some(_)) => {
                return opt("--idr, --image and --calib apply only to --graph folded");
            }
        }
        let (h, w) = self.test_input.size();
        if h == 0 || w == 0 || self.bench_size.is_some_and(|(h, w)| h == 0 || w == 0) {
            return opt("test and bench sizes must be at least 1x1");
        }
        if self.tolerance.is_some_and(|t| !(t.is_finite() && t >= 0.0)) {
            return opt("--tolerance must be a finite number >= 0");
        }
        if self.min_psnr.is_some_and(|t| !t.is_finite()) {
            return opt("--min-psnr must be a finite number of dB");
        }
        let q = &self.quantize;
        if self.precision == Precision::F32 && (q.calib.is_some() || !q.exclude.is_empty()) {
            return opt(
                "--calib-data and --exclude apply only with --quantize int8, int8-weights or f16",
            );
        }
        if self.precision == Precision::Int8 {
            if self.kind == ExportKind::Batched {
                return opt(
                    "--quantize int8 supports --graph dynamic, split and folded, not batched (a \
                     throughput graph for tract, where int8 QDQ runs slower than f32); export the \
                     batched graph with --quantize int8-weights or f16",
                );
            }
            if q.calib.is_none() {
                return opt("--quantize int8 needs calibration images: --calib-data DIR");
            }
        }
        if let Some(c) = &q.calib {
            c.validate()?;
        }
        Ok(())
    }

    /// The verification limits: the options' own, else the precision's defaults.
    pub fn limits(&self) -> Limits {
        Limits {
            rel_tol: self
                .tolerance
                .or_else(|| self.precision.default_tolerance()),
            min_psnr: self.min_psnr.or_else(|| self.precision.default_min_psnr()),
        }
    }
}

/// What a graph must satisfy against the float32 reference forward.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Limits {
    /// Max abs difference, relative to max(1, largest reference magnitude).
    pub rel_tol: Option<f64>,
    /// PSNR floor in dB of the image output ([`psnr_peak`]); vector outputs get
    /// [`crate::graph::VECTOR_PSNR_MARGIN`] dB less.
    pub min_psnr: Option<f64>,
}

impl Limits {
    /// A relative tolerance only (the float32 check).
    pub fn rel(t: f64) -> Self {
        Self {
            rel_tol: Some(t),
            min_psnr: None,
        }
    }
}

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

/// A built graph.
#[derive(Clone, Debug)]
pub struct Built {
    /// Its kind.
    pub kind: GraphKind,
    /// The model.
    pub model: ModelProto,
    /// Its encoding.
    pub bytes: Vec<u8>,
    /// For a reduced precision, the encoding of the float32 graph it was made from.
    pub float: Option<Vec<u8>>,
}

impl Built {
    /// Wraps a model (no float32 original).
    pub fn new(kind: GraphKind, model: ModelProto) -> Self {
        Self {
            kind,
            bytes: onnx::encode(&model),
            model,
            float: None,
        }
    }
}

/// The folded IDR and its `kdsr.idr_source` description.
#[derive(Clone, Debug)]
pub struct FoldedIdr {
    /// The IDR.
    pub idr: Idr,
    /// `idr:…`, `image:…` or `calib:…`.
    pub source: String,
}

/// Builds the graphs of `opts.kind` (after [`ExportOptions::validate`]); resolves the IDR of a
/// folded export; quantizes them to `opts.precision` (loading the calibration images of an int8
/// export).
pub fn build(net: &Network, opts: &ExportOptions) -> Result<(Vec<Built>, Option<FoldedIdr>)> {
    opts.validate()?;
    let crops = match (&opts.quantize.calib, opts.precision) {
        (Some(c), Precision::Int8) => Some(c.crops(net.config.scale)?),
        _ => None,
    };
    build_with(net, opts, crops.as_deref())
}

/// The float32 graphs of `opts.kind`, and the folded IDR.
fn build_float(net: &Network, opts: &ExportOptions) -> Result<(Vec<Built>, Option<FoldedIdr>)> {
    let p = Precision::F32;
    let mut folded_idr = None;
    let models = match opts.kind {
        ExportKind::Dynamic => vec![(GraphKind::Dynamic, onnx::dynamic(net, p)?)],
        ExportKind::Split => vec![
            (GraphKind::Ide, onnx::ide_graph(net, p)?),
            (GraphKind::Sr, onnx::sr_graph(net, p)?),
        ],
        ExportKind::Batched => vec![(
            GraphKind::Batched,
            onnx::batched(net, opts.batch.unwrap_or(1), p)?,
        )],
        ExportKind::Folded => {
            let src = opts
                .idr
                .as_ref()
                .ok_or_else(|| ConvertError::Options("folded export without an IDR".into()))?;
            let mut idr = idr_source::resolve(net, src, opts.force)?;
            let source = src.describe();
            idr.source.clone_from(&source);
            let m = onnx::folded(net, &idr, &source, p)?;
            folded_idr = Some(FoldedIdr { idr, source });
            vec![(GraphKind::Folded, m)]
        }
    };
    let built = models
        .into_iter()
        .map(|(kind, model)| Built::new(kind, model))
        .collect();
    Ok((built, folded_idr))
}

/// The graph inputs of `kind` for each LR image: `lr` (batched: the image `batch` times), and
/// for the SR graph `D` from the float32 IDE run in tract.
pub fn feeds(
    net: &Network,
    kind: GraphKind,
    images: &[Planar],
    batch: usize,
) -> Result<Vec<Vec<Value>>> {
    let mut ide = match kind {
        GraphKind::Sr => Some(IdeRunner::new(net)?),
        _ => None,
    };
    images
        .iter()
        .map(|img| {
            let [c, h, w] = img.shape();
            let n = if kind == GraphKind::Batched { batch } else { 1 };
            let lr = Value::new(vec![n, c, h, w], img.data().repeat(n))?;
            let mut f = vec![lr];
            if let Some(r) = ide.as_mut() {
                let d = r.run(img, "calibration")?.d;
                f.push(Value::new(vec![1, d.len()], d)?);
            }
            Ok(f)
        })
        .collect()
}

/// [`build`] with the calibration crops already loaded (required for int8).
pub fn build_with(
    net: &Network,
    opts: &ExportOptions,
    crops: Option<&[Planar]>,
) -> Result<(Vec<Built>, Option<FoldedIdr>)> {
    opts.validate()?;
    let (float, folded) = build_float(net, opts)?;
    if opts.precision == Precision::F32 {
        return Ok((float, folded));
    }
    let models: Vec<&ModelProto> = float.iter().map(|b| &b.model).collect();
    quant::check_exclusions(&models, &opts.quantize.exclude)?;
    let batch = opts.batch.unwrap_or(1);
    let out = float
        .into_iter()
        .map(|f| quant::quantize_graph(net, f, opts.precision, &opts.quantize, crops, batch))
        .collect::<Result<Vec<_>>>()?;
    Ok((out, folded))
}

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
    pub macs_180x320: u64,
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
                "  {} bytes, {} parameters, {:.3} GMACs at LR 180x320",
                g.file_bytes,
                g.params,
                g.macs_180x320 as f64 / 1e9
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
                        "  tract: load+optimize {:.0} ms; latency {ms:.2} ms at LR {h}x{w} ({} thread)",
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

/// Values by graph input or output name, in graph order.
pub type Named = Vec<(String, Value)>;

/// Inputs and reference outputs of one graph kind on `images` (one per batch sample).
fn reference_case(
    net: &Network,
    kind: GraphKind,
    images: &[Planar],
    folded: Option<&Idr>,
) -> Result<(Named, Named)> {
    let c = net.config.n_feats;
    let first = images
        .first()
        .ok_or_else(|| ConvertError::Graph("no test image".into()))?;
    let [_, h, w] = first.shape();
    let b = images.len();
    let lr = Value::new(
        vec![b, 3, h, w],
        images.iter().flat_map(|i| i.data().to_vec()).collect(),
    )?;
    let cat = |planes: Vec<Planar>| -> Result<Value> {
        let [ch, sh, sw] = planes
            .first()
            .map(Planar::shape)
            .ok_or_else(|| ConvertError::Graph("empty batch".into()))?;
        Value::new(
            vec![planes.len(), ch, sh, sw],
            planes.into_iter().flat_map(Planar::into_data).collect(),
        )
    };
    let vecs = |v: Vec<Vec<f32>>, n: usize| Value::new(vec![v.len(), n], v.concat());
    let fwd = || -> Result<Vec<reference::Forward>> {
        images.iter().map(|i| reference::forward(net, i)).collect()
    };
    let lr_in = (onnx::LR.to_owned(), lr);
    Ok(match kind {
        GraphKind::Dynamic | GraphKind::Batched => {
            let f = fwd()?;
            let d = vecs(f.iter().map(|f| f.ide.d.clone()).collect(), c)?;
            let sr = cat(f.into_iter().map(|f| f.sr).collect())?;
            (
                vec![lr_in],
                vec![(onnx::sr::SR.to_owned(), sr), (onnx::D.to_owned(), d)],
            )
        }
        GraphKind::Ide => {
            let ide = reference::ide(net, first)?;
            (
                vec![lr_in],
                vec![
                    (onnx::D.to_owned(), vecs(vec![ide.d], c)?),
                    (onnx::D_PRIME.to_owned(), vecs(vec![ide.d_prime], 4 * c)?),
                ],
            )
        }
        GraphKind::Sr => {
            let ide = reference::ide(net, first)?;
            let sr = reference::sr(net, first, &ide.d)?;
            (
                vec![lr_in, (onnx::D.to_owned(), vecs(vec![ide.d], c)?)],
                vec![(onnx::sr::SR.to_owned(), cat(vec![sr])?)],
            )
        }
        GraphKind::Folded => {
            let idr = folded.ok_or_else(|| ConvertError::Graph("folded without IDR".into()))?;
            let sr = reference::sr(net, first, &idr.d)?;
            (vec![lr_in], vec![(onnx::sr::SR.to_owned(), cat(vec![sr])?)])
        }
    })
}

/// The result of verifying one graph with tract.
#[derive(Clone, Debug)]
pub struct Verified {
    /// Named inputs fed to tract.
    pub inputs: Named,
    /// Named outputs tract produced.
    pub tract: Named,
    /// Named reference outputs.
    pub reference: Named,
    /// Max abs difference per output.
    pub max_abs_diff: BTreeMap<String, f64>,
    /// PSNR (dB) per output against the reference ([`psnr_peak`]).
    pub psnr_db: BTreeMap<String, f64>,
    /// Absolute tolerance applied, if any.
    pub tolerance: Option<f64>,
    /// Load + optimize time, ms.
    pub load_ms: f64,
}

/// Loads `built` with tract at the test input's shapes, runs it and compares it with the
/// reference forward: fails with [`ConvertError::Verification`] when an output differs by more
/// than `limits.rel_tol` × max(1, largest reference magnitude), and with [`ConvertError::Psnr`]
/// when its PSNR is below `limits.min_psnr`.
pub fn verify(
    net: &Network,
    built: &Built,
    images: &[Planar],
    folded: Option<&Idr>,
    limits: Limits,
) -> Result<Verified> {
    let (inputs, reference) = reference_case(net, built.kind, images, folded)?;
    let shapes: Vec<Vec<usize>> = inputs.iter().map(|(_, v)| v.shape.clone()).collect();
    let plan = Plan::new(&built.bytes, &shapes)?;
    let values: Vec<Value> = inputs.iter().map(|(_, v)| v.clone()).collect();
    let out = plan.run(&values)?;
    if out.len() != reference.len() {
        return Err(ConvertError::Graph(format!(
            "{} graph returned {} outputs, expected {}",
            built.kind,
            out.len(),
            reference.len()
        )));
    }
    let mut diffs = BTreeMap::new();
    let mut psnrs = BTreeMap::new();
    let scale = reference
        .iter()
        .flat_map(|(_, v)| v.data.iter())
        .fold(1f64, |m, x| m.max(f64::from(x.abs())));
    let tolerance = limits.rel_tol.map(|t| t * scale);
    let mut tract = Vec::new();
    for ((name, want), got) in reference.iter().zip(out) {
        let (d, p) = if got.shape == want.shape {
            (
                max_abs_diff(&got.data, &want.data),
                psnr(&got.data, &want.data, psnr_peak(name, &want.data)),
            )
        } else {
            (f64::INFINITY, 0.0)
        };
        if let Some(tol) = tolerance {
            if d.is_nan() || d > tol {
                return Err(ConvertError::Verification {
                    graph: built.kind.to_string(),
                    output: name.clone(),
                    diff: d,
                    tolerance: tol,
                });
            }
        }
        if let Some(floor) = limits.min_psnr.map(|f| output_floor(name, f)) {
            if p.is_nan() || p < floor {
                return Err(ConvertError::Psnr {
                    graph: built.kind.to_string(),
                    output: name.clone(),
                    input: "the test input".into(),
                    psnr: p,
                    floor,
                });
            }
        }
        diffs.insert(name.clone(), d);
        psnrs.insert(name.clone(), p);
        tract.push((name.clone(), got));
    }
    Ok(Verified {
        inputs,
        tract,
        reference,
        max_abs_diff: diffs,
        psnr_db: psnrs,
        tolerance,
        load_ms: plan.load_s * 1e3,
    })
}

/// Median tract latency (ms) of `built` at LR `h × w`.
pub fn bench(
    net: &Network,
    built: &Built,
    batch: usize,
    h: usize,
    w: usize,
    iters: usize,
) -> Result<f64> {
    bench_bytes(net, built.kind, &built.bytes, batch, h, w, iters)
}

/// Median tract latency (ms) of the graph `bytes` of `kind` at LR `h × w`.
pub fn bench_bytes(
    net: &Network,
    kind: GraphKind,
    bytes: &[u8],
    batch: usize,
    h: usize,
    w: usize,
    iters: usize,
) -> Result<f64> {
    let imgs = (0..batch.max(1))
        .map(|b| test_image(h, w, b as u32))
        .collect::<Result<Vec<_>>>()?;
    let lr = Value::new(
        vec![imgs.len(), 3, h, w],
        imgs.iter().flat_map(|i| i.data().to_vec()).collect(),
    )?;
    let mut inputs = vec![lr];
    if kind == GraphKind::Sr {
        inputs.push(Value::new(
            vec![1, net.config.n_feats],
            vec![0.05; net.config.n_feats],
        )?);
    }
    let shapes: Vec<Vec<usize>> = inputs.iter().map(|v| v.shape.clone()).collect();
    Plan::new(bytes, &shapes)?.time_ms(&inputs, iters)
}

/// Builds, verifies, times and writes the export; returns the report. Nothing is written unless
/// every graph verified; the files are written atomically, and if writing one of a split pair
/// fails the other is removed.
pub fn export(net: &Network, opts: &ExportOptions, out: &Path) -> Result<Report> {
    opts.validate()?;
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
    let (built, folded) = build_with(net, opts, crops.as_deref())?;
    let batch = opts.batch.unwrap_or(1);
    let limits = opts.limits();
    let mut reports = Vec::new();
    for (b, (_, path)) in built.iter().zip(&paths) {
        let n = if b.kind == GraphKind::Batched {
            batch
        } else {
            1
        };
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
            macs_180x320: graph_macs(net, b.kind, n, MACS_SIZE.0, MACS_SIZE.1),
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
    let cfg = &net.config;
    Ok(Report {
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
        graphs: reports,
    })
}
