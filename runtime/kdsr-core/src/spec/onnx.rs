//! The ONNX graph contract between the converter (which writes the graphs) and the runtime
//! (which loads them): the graph kinds and the `metadata_props` keys every graph carries.

use std::fmt;

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
    /// Reduced precisions: the nodes left float32, comma-separated (absent when none).
    pub const QUANT_EXCLUDE: &str = "kdsr.quant_exclude";
}
