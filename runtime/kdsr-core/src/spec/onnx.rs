//! The ONNX graph contract between the converter (which writes the graphs) and the runtime
//! (which loads them), defined once: the graph kinds and their input/output names, the split
//! pair's file names, the precisions, and the `metadata_props` every graph carries
//! ([`GraphMeta::to_props`] for the converter, [`GraphMeta::from_props`] for the runtime).

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// Value of `kdsr.format` in every graph's metadata.
pub const FORMAT_VERSION: &str = "1";

/// What one ONNX file computes (the `kdsr.graph` metadata value).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GraphKind {
    /// `lr` `[1,3,h,w]` → `sr` `[1,3,s·h,s·w]`, `D` `[1,C]`: IDE and SR network in one graph, the
    /// depthwise kernels computed from `D` inside the graph.
    Dynamic,
    /// `lr` `[1,3,h,w]` → `D` `[1,C]`, `D_prime` `[1,4C]`: the IDE alone.
    Ide,
    /// `lr` `[1,3,h,w]`, `D` `[1,C]` → `sr`: the SR network alone, kernels computed from the given `D`.
    Sr,
    /// `lr` → `sr` with constant depthwise kernels folded from one IDR; no IDE.
    Folded,
    /// The dynamic graph at a fixed batch B: `lr` `[B,3,h,w]` → `sr` `[B,3,s·h,s·w]`, `D` `[B,C]`,
    /// with per-sample kernels.
    Batched,
}

impl GraphKind {
    /// Parses a `kdsr.graph` value.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "dynamic" => GraphKind::Dynamic,
            "ide" => GraphKind::Ide,
            "sr" => GraphKind::Sr,
            "folded" => GraphKind::Folded,
            "batched" => GraphKind::Batched,
            _ => return None,
        })
    }

    /// The metadata / report name (`dynamic`, `ide`, `sr`, `folded`, `batched`).
    pub fn as_str(self) -> &'static str {
        match self {
            GraphKind::Dynamic => "dynamic",
            GraphKind::Ide => "ide",
            GraphKind::Sr => "sr",
            GraphKind::Folded => "folded",
            GraphKind::Batched => "batched",
        }
    }
}

/// Input and output names of the graphs.
pub mod names {
    /// The LR image `[B,3,h,w]`, float32 RGB in [0,1]: the input of every graph.
    pub const LR: &str = "lr";
    /// The ×s image `[B,3,s·h,s·w]` (unclamped).
    pub const SR: &str = "sr";
    /// The IDR `D` `[B,C]`: an output of the dynamic, batched and IDE graphs, an input of SR.
    pub const D: &str = "D";
    /// `D′` `[B,4C]` (the distilled representation): an output of the IDE graph.
    pub const D_PRIME: &str = "D_prime";
}

impl GraphKind {
    /// The graph's input and output names, in order.
    pub fn io(self) -> (&'static [&'static str], &'static [&'static str]) {
        use names::{D, D_PRIME, LR, SR};
        match self {
            GraphKind::Dynamic | GraphKind::Batched => (&[LR], &[SR, D]),
            GraphKind::Ide => (&[LR], &[D, D_PRIME]),
            GraphKind::Sr => (&[LR, D], &[SR]),
            GraphKind::Folded => (&[LR], &[SR]),
        }
    }
}

/// File name ending of a split pair's IDE graph: `PREFIX-ide.onnx`.
pub const SPLIT_IDE_SUFFIX: &str = "-ide.onnx";
/// File name ending of a split pair's SR graph: `PREFIX-sr.onnx`.
pub const SPLIT_SR_SUFFIX: &str = "-sr.onnx";

/// `path` with `suffix` appended to its last component (`a/b` + `-sr.onnx` = `a/b-sr.onnx`).
pub fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// The files of the split pair with prefix `prefix`: `(PREFIX-ide.onnx, PREFIX-sr.onnx)`.
pub fn split_paths(prefix: &Path) -> (PathBuf, PathBuf) {
    (
        suffixed(prefix, SPLIT_IDE_SUFFIX),
        suffixed(prefix, SPLIT_SR_SUFFIX),
    )
}

/// The prefix of a split pair's file (`P-ide.onnx` or `P-sr.onnx` → `P`), `None` for any other
/// name.
pub fn split_prefix(file: &Path) -> Option<PathBuf> {
    let s = file.to_str()?;
    [SPLIT_IDE_SUFFIX, SPLIT_SR_SUFFIX]
        .iter()
        .find_map(|suffix| s.strip_suffix(suffix))
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
}

/// How the weights (and, for [`Precision::Int8`], the activations) of a graph are stored (the
/// `kdsr.precision` metadata value, `converter export --quantize`).
///
/// The converter's graph builders always write float32 graphs and its quantizer rewrites them,
/// as onnxruntime's `quantize_static` rewrites a float32 model: [`Precision::F16`] and
/// [`Precision::Int8Weights`] change only how weights are stored (every graph still computes in
/// float32), [`Precision::Int8`] also puts calibrated QuantizeLinear/DequantizeLinear pairs on the
/// activations (QDQ format).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum Precision {
    /// float32 weights and activations.
    #[default]
    F32,
    /// float16 weights (initializers of type float16, each read through a `Cast` to float32);
    /// computes in float32.
    F16,
    /// Weights-only int8: every Conv and Gemm weight stored as per-channel symmetric int8 and read
    /// through a `DequantizeLinear` (axis 0); biases and activations stay float32.
    Int8Weights,
    /// Static int8 QDQ: per-channel symmetric int8 weights, int32 biases, uint8 asymmetric
    /// activations with calibrated ranges (QuantizeLinear → DequantizeLinear pairs).
    Int8,
}

/// Default PSNR floor (dB vs float32) of [`Precision::Int8Weights`] exports.
pub const INT8_WEIGHTS_MIN_PSNR: f64 = 40.0;
/// Default PSNR floor (dB vs float32) of [`Precision::Int8`] exports.
pub const INT8_MIN_PSNR: f64 = 30.0;

impl Precision {
    /// Every precision, in the order of [`Precision::as_str`]'s documentation.
    pub const ALL: [Precision; 4] = [
        Precision::F32,
        Precision::F16,
        Precision::Int8Weights,
        Precision::Int8,
    ];

    /// The metadata / report / CLI name (`f32`, `f16`, `int8-weights`, `int8`).
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F16 => "f16",
            Precision::Int8Weights => "int8-weights",
            Precision::Int8 => "int8",
        }
    }

    /// Parses a `kdsr.precision` value.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// The largest accepted difference between tract's output and the float32 reference forward,
    /// relative to the reference's largest magnitude (at least 1): the converter's export fails
    /// above it. `None` for the int8 precisions, which are checked by
    /// [`Precision::default_min_psnr`].
    ///
    /// f16: the weights are rounded to 11 significant bits (relative error ≤ 2⁻¹¹ ≈ 4.9e-4 each);
    /// the measured output difference of the tiny and edge students is below 1e-3 relative.
    pub fn default_tolerance(self) -> Option<f64> {
        match self {
            Precision::F32 => Some(1e-4),
            Precision::F16 => Some(5e-3),
            Precision::Int8Weights | Precision::Int8 => None,
        }
    }

    /// The lowest accepted PSNR (dB) of tract's image output `sr` against the float32 reference
    /// forward (peak 1), on the test input and on every real image evaluated; vector outputs
    /// (`D`, `D_prime`) are held to a margin less (the converter's `VECTOR_PSNR_MARGIN`). `None`
    /// for f32 and f16 (checked by [`Precision::default_tolerance`]). The converter README has
    /// the measurements behind the floors.
    pub fn default_min_psnr(self) -> Option<f64> {
        match self {
            Precision::F32 | Precision::F16 => None,
            Precision::Int8Weights => Some(INT8_WEIGHTS_MIN_PSNR),
            Precision::Int8 => Some(INT8_MIN_PSNR),
        }
    }

    /// Whether the graph stores anything at less than float32.
    pub fn is_reduced(self) -> bool {
        self != Precision::F32
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything a graph's `kdsr.*` metadata say about it: what the converter writes
/// ([`GraphMeta::to_props`]) and the runtime reads back ([`GraphMeta::from_props`]).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct GraphMeta {
    /// `kdsr.graph`.
    pub kind: GraphKind,
    /// `kdsr.preset`.
    pub preset: String,
    /// `kdsr.scale`.
    pub scale: u32,
    /// `kdsr.n_feats` (C, the length of `D`).
    pub n_feats: usize,
    /// `kdsr.n_blocks` (N; absent from graphs of other writers).
    pub n_blocks: Option<usize>,
    /// `kdsr.n_resblocks` (R; the same).
    pub n_resblocks: Option<usize>,
    /// `kdsr.precision` (`f32` when absent).
    pub precision: Precision,
    /// `kdsr.weights_hash` of the weights the graph was made from.
    pub weights_hash: String,
    /// Batched graphs: `kdsr.batch`.
    pub batch: Option<usize>,
    /// Folded graphs: `kdsr.idr_source`.
    pub idr_source: Option<String>,
    /// Folded graphs: `kdsr.idr_images`.
    pub idr_images: Option<usize>,
}

impl GraphMeta {
    /// The metadata of a `kind` graph of `cfg`'s network made from weights `weights_hash`.
    pub fn new(
        kind: GraphKind,
        cfg: &super::KdsrConfig,
        precision: Precision,
        weights_hash: &str,
    ) -> Self {
        GraphMeta {
            kind,
            preset: cfg.preset.clone(),
            scale: cfg.scale,
            n_feats: cfg.n_feats,
            n_blocks: Some(cfg.n_blocks),
            n_resblocks: Some(cfg.n_resblocks),
            precision,
            weights_hash: weights_hash.to_owned(),
            batch: None,
            idr_source: None,
            idr_images: None,
        }
    }

    /// The `metadata_props` entries, in writing order.
    pub fn to_props(&self) -> Vec<(String, String)> {
        let mut p = vec![
            (keys::FORMAT, FORMAT_VERSION.to_owned()),
            (keys::PRESET, self.preset.clone()),
            (keys::SCALE, self.scale.to_string()),
            (keys::N_FEATS, self.n_feats.to_string()),
        ];
        if let Some(n) = self.n_blocks {
            p.push((keys::N_BLOCKS, n.to_string()));
        }
        if let Some(r) = self.n_resblocks {
            p.push((keys::N_RESBLOCKS, r.to_string()));
        }
        p.push((keys::GRAPH, self.kind.as_str().to_owned()));
        p.push((keys::PRECISION, self.precision.as_str().to_owned()));
        p.push((keys::WEIGHTS_HASH, self.weights_hash.clone()));
        if let Some(b) = self.batch {
            p.push((keys::BATCH, b.to_string()));
        }
        if let Some(src) = &self.idr_source {
            p.push((keys::IDR_SOURCE, src.clone()));
        }
        if let Some(n) = self.idr_images {
            p.push((keys::IDR_IMAGES, n.to_string()));
        }
        p.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
    }

    /// Reads and checks `metadata_props` entries: format [`FORMAT_VERSION`], a known graph kind
    /// and precision, scale 2/3/4, C > 0 and a non-empty weights hash must all be there. Other
    /// keys are ignored. Errors: what is wrong, in words, for the caller to name the file.
    pub fn from_props<'a>(
        props: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, String> {
        let props: HashMap<&str, &str> = props.into_iter().collect();
        let get = |k: &str| -> Result<&str, String> {
            props.get(k).copied().ok_or_else(|| {
                format!(
                    "metadata_props lack `{k}`: not a graph written by kdsr-converter (re-export \
                     it with `converter export`)"
                )
            })
        };
        let format = get(keys::FORMAT)?;
        if format != FORMAT_VERSION {
            return Err(format!(
                "graph format `{format}`, this reader reads format `{FORMAT_VERSION}`; \
                 re-export the model with a matching converter"
            ));
        }
        let kind_s = get(keys::GRAPH)?;
        let kind = GraphKind::parse(kind_s).ok_or_else(|| {
            format!("unknown graph kind `{kind_s}` (expected dynamic, ide, sr, folded or batched)")
        })?;
        let parse = |k: &str, v: &str| -> Result<usize, String> {
            v.parse::<usize>()
                .map_err(|_| format!("`{k}` = `{v}` is not a number"))
        };
        let num = |k: &str| -> Result<usize, String> { parse(k, get(k)?) };
        let opt_num = |k: &str| -> Result<Option<usize>, String> {
            props.get(k).map(|v| parse(k, v)).transpose()
        };
        let scale = num(keys::SCALE)?;
        if !(2..=4).contains(&scale) {
            return Err(format!(
                "`{}` = {scale}: KDSR defines scales 2, 3 and 4",
                keys::SCALE
            ));
        }
        let n_feats = num(keys::N_FEATS)?;
        if n_feats == 0 {
            return Err(format!("`{}` = 0", keys::N_FEATS));
        }
        let precision = match props.get(keys::PRECISION) {
            None => Precision::F32,
            Some(v) => Precision::parse(v).ok_or_else(|| {
                format!(
                    "`{}` = `{v}` is not a precision (f32, f16, int8-weights, int8)",
                    keys::PRECISION
                )
            })?,
        };
        let weights_hash = get(keys::WEIGHTS_HASH)?;
        if weights_hash.is_empty() {
            return Err(format!("`{}` is empty", keys::WEIGHTS_HASH));
        }
        Ok(GraphMeta {
            kind,
            preset: get(keys::PRESET)?.to_owned(),
            scale: scale as u32,
            n_feats,
            n_blocks: opt_num(keys::N_BLOCKS)?,
            n_resblocks: opt_num(keys::N_RESBLOCKS)?,
            precision,
            weights_hash: weights_hash.to_owned(),
            batch: opt_num(keys::BATCH)?,
            idr_source: props.get(keys::IDR_SOURCE).map(|s| (*s).to_owned()),
            idr_images: opt_num(keys::IDR_IMAGES)?,
        })
    }
}

impl fmt::Display for GraphKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Metadata keys (`metadata_props`), in the order they are written.
pub mod keys {
    /// Graph format version, [`super::FORMAT_VERSION`].
    pub const FORMAT: &str = "kdsr.format";
    /// The config's preset name.
    pub const PRESET: &str = "kdsr.preset";
    /// Upscaling factor.
    pub const SCALE: &str = "kdsr.scale";
    /// `C`, the length of `D`.
    pub const N_FEATS: &str = "kdsr.n_feats";
    /// `N`, number of IDR-DCRB blocks.
    pub const N_BLOCKS: &str = "kdsr.n_blocks";
    /// `R`, number of IDE residual blocks.
    pub const N_RESBLOCKS: &str = "kdsr.n_resblocks";
    /// [`super::GraphKind::as_str`].
    pub const GRAPH: &str = "kdsr.graph";
    /// [`super::Precision::as_str`].
    pub const PRECISION: &str = "kdsr.precision";
    /// `kdsr_core::spec::checkpoint::weights_hash` of the weights the graph was made from.
    pub const WEIGHTS_HASH: &str = "kdsr.weights_hash";
    /// Batched graphs: the fixed batch size.
    pub const BATCH: &str = "kdsr.batch";
    /// Folded graphs: where the folded IDR came from (`idr:FILE`, `image:FILE`, `calib:DIR`).
    pub const IDR_SOURCE: &str = "kdsr.idr_source";
    /// Folded graphs: how many images the folded IDR averages.
    pub const IDR_IMAGES: &str = "kdsr.idr_images";
    /// int8: the activation type (`uint8-asymmetric`).
    pub const QUANT_ACTIVATIONS: &str = "kdsr.quant_activations";
    /// int8: how the activation ranges were calibrated (method, crops, folder).
    pub const QUANT_CALIBRATION: &str = "kdsr.quant_calibration";
    /// int8, int8-weights: the kernel-path handling (`float`, `weights`, `full`).
    pub const QUANT_KERNELS: &str = "kdsr.quant_kernels";
    /// int8, int8-weights: the weight range, `int8-symmetric` ([-127, 127]) or
    /// `int8-symmetric-reduced` ([-64, 64], onnxruntime's `reduce_range`).
    pub const QUANT_WEIGHTS: &str = "kdsr.quant_weights";
    /// Reduced precisions: the nodes left float32, comma-separated (absent when none).
    pub const QUANT_EXCLUDE: &str = "kdsr.quant_exclude";
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::KdsrConfig;

    #[test]
    fn metadata_round_trips_for_every_kind_and_precision() {
        let cfg = KdsrConfig::preset("student-edge").unwrap_or_else(|e| panic!("{e}"));
        for kind in [
            GraphKind::Dynamic,
            GraphKind::Ide,
            GraphKind::Sr,
            GraphKind::Folded,
            GraphKind::Batched,
        ] {
            for precision in Precision::ALL {
                let mut m = GraphMeta::new(kind, &cfg, precision, "48b70ce246daa8f9");
                if kind == GraphKind::Batched {
                    m.batch = Some(2);
                }
                if kind == GraphKind::Folded {
                    m.idr_source = Some("calib:photos".into());
                    m.idr_images = Some(12);
                }
                let p = m.to_props();
                let back = GraphMeta::from_props(p.iter().map(|(k, v)| (k.as_str(), v.as_str())));
                assert_eq!(back.as_ref(), Ok(&m), "{kind} {precision}");
                assert_eq!(Precision::parse(precision.as_str()), Some(precision));
            }
        }
    }

    #[test]
    fn bad_metadata_is_refused_with_the_reason() {
        let cfg = KdsrConfig::preset("student-tiny").unwrap_or_else(|e| panic!("{e}"));
        let good = GraphMeta::new(GraphKind::Sr, &cfg, Precision::Int8, "abc").to_props();
        let with = |key: &str, value: Option<&str>| {
            let mut p: Vec<(String, String)> =
                good.iter().filter(|(k, _)| k != key).cloned().collect();
            if let Some(v) = value {
                p.push((key.to_owned(), v.to_owned()));
            }
            GraphMeta::from_props(p.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .err()
                .unwrap_or_default()
        };
        for (key, value, says) in [
            (keys::FORMAT, Some("2"), "format `2`"),
            (keys::GRAPH, Some("ide2"), "unknown graph kind"),
            (keys::SCALE, Some("8"), "scales 2, 3 and 4"),
            (keys::N_FEATS, Some("0"), "= 0"),
            (keys::N_FEATS, Some("x"), "not a number"),
            (keys::PRECISION, Some("int4"), "not a precision"),
            (keys::WEIGHTS_HASH, Some(""), "is empty"),
            (keys::WEIGHTS_HASH, None, "lack `kdsr.weights_hash`"),
        ] {
            let e = with(key, value);
            assert!(e.contains(says), "{key}={value:?}: {e:?}");
        }
        // A graph without `kdsr.precision` (older writers) is float32.
        let mut p = good.clone();
        p.retain(|(k, _)| k != keys::PRECISION);
        let m = GraphMeta::from_props(p.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        assert_eq!(m.map(|m| m.precision), Ok(Precision::F32));
    }

    #[test]
    fn split_names_and_io() {
        let (ide, sr) = split_paths(Path::new("models/edge/x"));
        assert_eq!(ide, PathBuf::from("models/edge/x-ide.onnx"));
        assert_eq!(sr, PathBuf::from("models/edge/x-sr.onnx"));
        assert_eq!(split_prefix(&sr), Some(PathBuf::from("models/edge/x")));
        assert_eq!(split_prefix(Path::new("x.onnx")), None);
        assert_eq!(split_prefix(Path::new("-sr.onnx")), None);
        assert_eq!(
            GraphKind::Sr.io(),
            (&[names::LR, names::D][..], &[names::SR][..])
        );
        assert_eq!(GraphKind::Ide.io().1, &[names::D, names::D_PRIME]);
    }
}
