//! ONNX graph construction (opset 17), one file per layer kind:
//! [`proto`] (reading and writing the protobuf types: files, tensors, nodes, metadata),
//! [`builder`] (the graph writer and its naming), [`layers`] (conv, LeakyReLU, linear, add,
//! reshape), [`ide`] (KD-IDE), [`dcrb`] (IDR-DCRB with dynamic, batched or folded kernels),
//! [`upsampler`] (conv + DepthToSpace), [`sr`] (the SR network `G`). This module assembles them
//! into the five graph kinds of [`GraphKind`], always float32 (reduced precisions are rewrites of
//! these graphs in [`crate::quantize`]), and wraps a built graph with its encoding ([`Built`]).
//!
//! # Contract
//! | kind | inputs | outputs |
//! |---|---|---|
//! | dynamic | `lr` `[1,3,h,w]` | `sr` `[1,3,s·h,s·w]`, `D` `[1,C]` |
//! | ide | `lr` `[1,3,h,w]` | `D` `[1,C]`, `D_prime` `[1,4C]` |
//! | sr | `lr` `[1,3,h,w]`, `D` `[1,C]` | `sr` `[1,3,s·h,s·w]` |
//! | folded | `lr` `[1,3,h,w]` | `sr` `[1,3,s·h,s·w]` |
//! | batched | `lr` `[B,3,h,w]` | `sr` `[B,3,s·h,s·w]`, `D` `[B,C]` |
//!
//! `h`, `w` are symbolic (`dim_param` `h`, `w`; outputs `s*h`, `s*w`), `B` is fixed. `lr` is RGB
//! in [0, 1]; `sr` is not clamped.

pub mod builder;
pub mod dcrb;
pub mod ide;
pub mod layers;
pub mod proto;
pub mod sr;
pub mod upsampler;

use kdsr_core::idr::Idr;
use tract_onnx::pb::ModelProto;

use crate::error::{ConvertError, Result};
use crate::fold;
use crate::graph::{GraphKind, GraphMeta, Precision};
use crate::network::Network;
use builder::{Dim, GraphBuilder};
use dcrb::Kernels;

pub use kdsr_core::spec::onnx::names::{D, D_PRIME, LR};
pub use proto::{decode, encode, metadata, read};

/// A built graph with its encoding.
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
            bytes: encode(&model),
            model,
            float: None,
        }
    }
}

fn lr_dims(batch: usize) -> Vec<Dim> {
    vec![
        Dim::Fixed(batch),
        Dim::Fixed(3),
        Dim::sym("h"),
        Dim::sym("w"),
    ]
}

fn sr_dims(net: &Network, batch: usize) -> Vec<Dim> {
    let s = net.config.scale;
    vec![
        Dim::Fixed(batch),
        Dim::Fixed(3),
        Dim::sym(format!("{s}*h")),
        Dim::sym(format!("{s}*w")),
    ]
}

fn meta(net: &Network, kind: GraphKind) -> GraphMeta {
    GraphMeta::new(kind, &net.config, Precision::F32, &net.weights_hash)
}

/// IDE + SR network at batch `batch` (`None`: the batch-1 dynamic graph).
fn ide_and_sr(net: &Network, batch: Option<usize>) -> Result<ModelProto> {
    let (cfg, w) = (&net.config, &net.weights);
    let bn = batch.unwrap_or(1);
    let kind = if batch.is_some() {
        GraphKind::Batched
    } else {
        GraphKind::Dynamic
    };
    let mut b = GraphBuilder::new(&format!("kdsr-{}-{kind}", cfg.preset));
    let lr = b.input(LR, &lr_dims(bn))?;
    let ide = ide::ide(&mut b, cfg, w, &lr)?;
    let kernels = Kernels::Dynamic { d: &ide.d, batch };
    sr::sr_network(&mut b, cfg, w, &lr, &kernels)?;
    b.output(sr::SR, &sr_dims(net, bn))?;
    b.output(&ide.d, &[Dim::Fixed(bn), Dim::Fixed(cfg.n_feats)])?;
    let mut m = meta(net, kind);
    m.batch = batch;
    b.finish(&m.to_props())
}

/// The dynamic graph: `lr` → `sr`, `D`, kernels computed in the graph.
pub fn dynamic(net: &Network) -> Result<ModelProto> {
    ide_and_sr(net, None)
}

/// The fixed-batch dynamic graph: `lr` `[B,3,h,w]` → `sr`, `D` `[B,C]`, per-sample kernels.
pub fn batched(net: &Network, batch: usize) -> Result<ModelProto> {
    if batch == 0 {
        return Err(ConvertError::Options(
            "--batch must be at least 1".to_owned(),
        ));
    }
    ide_and_sr(net, Some(batch))
}

/// The IDE graph of a split export: `lr` → `D`, `D_prime`.
pub fn ide_graph(net: &Network) -> Result<ModelProto> {
    let cfg = &net.config;
    let mut b = GraphBuilder::new(&format!("kdsr-{}-ide", cfg.preset));
    let lr = b.input(LR, &lr_dims(1))?;
    let v = ide::ide(&mut b, cfg, &net.weights, &lr)?;
    b.output(&v.d, &[Dim::Fixed(1), Dim::Fixed(cfg.n_feats)])?;
    b.output(&v.d_prime, &[Dim::Fixed(1), Dim::Fixed(4 * cfg.n_feats)])?;
    b.finish(&meta(net, GraphKind::Ide).to_props())
}

/// The SR graph of a split export: `lr`, `D` `[1,C]` → `sr`.
pub fn sr_graph(net: &Network) -> Result<ModelProto> {
    let cfg = &net.config;
    let mut b = GraphBuilder::new(&format!("kdsr-{}-sr", cfg.preset));
    let lr = b.input(LR, &lr_dims(1))?;
    let d = b.input(D, &[Dim::Fixed(1), Dim::Fixed(cfg.n_feats)])?;
    let kernels = Kernels::Dynamic { d: &d, batch: None };
    sr::sr_network(&mut b, cfg, &net.weights, &lr, &kernels)?;
    b.output(sr::SR, &sr_dims(net, 1))?;
    b.finish(&meta(net, GraphKind::Sr).to_props())
}

/// The folded graph: `lr` → `sr` with the kernels of `idr.d` as constants (no IDE).
/// `source` is recorded as `kdsr.idr_source`, `idr.images` as `kdsr.idr_images`.
pub fn folded(net: &Network, idr: &Idr, source: &str) -> Result<ModelProto> {
    let cfg = &net.config;
    if idr.d.len() != cfg.n_feats {
        return Err(ConvertError::IdrLength {
            source_name: source.to_owned(),
            found: idr.d.len(),
            expected: cfg.n_feats,
        });
    }
    let k = fold::kernels(cfg, &net.weights, &idr.d)?;
    let mut b = GraphBuilder::new(&format!("kdsr-{}-folded", cfg.preset));
    let lr = b.input(LR, &lr_dims(1))?;
    sr::sr_network(&mut b, cfg, &net.weights, &lr, &Kernels::Folded(&k))?;
    b.output(sr::SR, &sr_dims(net, 1))?;
    let mut m = meta(net, GraphKind::Folded);
    m.idr_source = Some(source.to_owned());
    m.idr_images = Some(idr.images);
    b.finish(&m.to_props())
}
