//! The kinds of graph the converter writes, the numeric precision they are stored at, and the
//! `metadata_props` every graph carries.

use std::fmt;

use kdsr_core::spec::KdsrConfig;

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

/// How the weights of a graph are stored (the `kdsr.precision` metadata value).
///
/// Only float32 exists today. A reduced precision is added as a new variant: its storage goes in
/// [`crate::onnx::builder::GraphBuilder::weight`] (the one place every weight passes through),
/// its verification tolerance in [`Precision::default_tolerance`], and its name in
/// [`Precision::as_str`]; the metadata, the report and the CLI pick it up from there.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Precision {
    /// float32 weights and activations.
    #[default]
    F32,
}

impl Precision {
    /// The metadata / report name (`f32`).
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
        }
    }

    /// The largest accepted difference between tract's output and the float32 reference forward,
    /// relative to the reference's largest magnitude (at least 1): the export fails above it.
    pub fn default_tolerance(self) -> f64 {
        match self {
            Precision::F32 => 1e-4,
        }
    }
}

impl fmt::Display for Precision {
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
