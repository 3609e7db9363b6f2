//! The kinds of graph the converter writes, the numeric precision they are stored at, and the
//! `metadata_props` every graph carries.

use std::fmt;

use kdsr_core::spec::KdsrConfig;

pub use kdsr_core::spec::onnx::{FORMAT_VERSION, GraphKind, keys};

/// What `converter export --graph` asks for: one file, or two for [`ExportKind::Split`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportKind {
    /// One [`GraphKind::Dynamic`] file.
    Dynamic,
    /// A [`GraphKind::Ide`] and a [`GraphKind::Sr`] file (`OUT-ide.onnx`, `OUT-sr.onnx`).
    Split,
    /// One [`GraphKind::Folded`] file (needs an IDR source).
    Folded,
    /// One [`GraphKind::Batched`] file (needs a batch size).
    Batched,
}

/// How the weights (and, for [`Precision::Int8`], the activations) of a graph are stored (the
/// `kdsr.precision` metadata value, `converter export --quantize`).
///
/// The graph builders always write float32 graphs; [`crate::quantize`] rewrites them, as
/// onnxruntime's `quantize_static` rewrites a float32 model: [`Precision::F16`] and
/// [`Precision::Int8Weights`] change only how weights are stored (every graph still computes in
/// float32), [`Precision::Int8`] also puts calibrated QuantizeLinear/DequantizeLinear pairs on the
/// activations (QDQ format).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
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

impl Precision {
    /// The metadata / report / CLI name (`f32`, `f16`, `int8-weights`, `int8`).
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F16 => "f16",
            Precision::Int8Weights => "int8-weights",
            Precision::Int8 => "int8",
        }
    }

    /// The largest accepted difference between tract's output and the float32 reference forward,
    /// relative to the reference's largest magnitude (at least 1): the export fails above it.
    /// `None` for the int8 precisions, which are checked by [`Precision::default_min_psnr`].
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
    /// (`D`, `D_prime`; peak = their largest magnitude) are held to [`VECTOR_PSNR_MARGIN`] dB
    /// less. `None` for f32 and f16 (checked by [`Precision::default_tolerance`]). See the
    /// converter README for the measurements behind the floors.
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

/// How much lower (dB) the PSNR floor of a vector output (`D`, `D_prime`) is than the image
/// floor: on a flat image every pixel of the IDE's last feature maps carries the same rounding
/// error, which the global average pooling then keeps instead of averaging out (measured with
/// int8: `D` 30.1 dB where `sr` was 49.1 dB, on a flat 64×64 crop).
pub const VECTOR_PSNR_MARGIN: f64 = 10.0;

/// The PSNR floor of output `output` given the image floor `floor` (see [`VECTOR_PSNR_MARGIN`]).
pub fn output_floor(output: &str, floor: f64) -> f64 {
    if output == crate::onnx::sr::SR {
        floor
    } else {
        floor - VECTOR_PSNR_MARGIN
    }
}

/// Default PSNR floor (dB vs float32) of [`Precision::Int8Weights`] exports.
pub const INT8_WEIGHTS_MIN_PSNR: f64 = 40.0;
/// Default PSNR floor (dB vs float32) of [`Precision::Int8`] exports.
pub const INT8_MIN_PSNR: f64 = 30.0;

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything a graph's `metadata_props` say about it.
#[derive(Clone, Debug, PartialEq)]
pub struct GraphMeta {
    /// The graph kind.
    pub kind: GraphKind,
    /// Weight precision.
    pub precision: Precision,
    /// Weights hash of the source weights.
    pub weights_hash: String,
    /// Batched graphs: B.
    pub batch: Option<usize>,
    /// Folded graphs: `(source description, images averaged)`.
    pub idr: Option<(String, usize)>,
}

impl GraphMeta {
    /// The `metadata_props` entries for a graph of `cfg`, in writing order.
    pub fn props(&self, cfg: &KdsrConfig) -> Vec<(String, String)> {
        let mut p = vec![
            (keys::FORMAT, FORMAT_VERSION.to_owned()),
            (keys::PRESET, cfg.preset.clone()),
            (keys::SCALE, cfg.scale.to_string()),
            (keys::N_FEATS, cfg.n_feats.to_string()),
            (keys::N_BLOCKS, cfg.n_blocks.to_string()),
            (keys::N_RESBLOCKS, cfg.n_resblocks.to_string()),
            (keys::GRAPH, self.kind.as_str().to_owned()),
            (keys::PRECISION, self.precision.as_str().to_owned()),
            (keys::WEIGHTS_HASH, self.weights_hash.clone()),
        ];
        if let Some(b) = self.batch {
            p.push((keys::BATCH, b.to_string()));
        }
        if let Some((src, n)) = &self.idr {
            p.push((keys::IDR_SOURCE, src.clone()));
            p.push((keys::IDR_IMAGES, n.to_string()));
        }
        p.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
    }
}
