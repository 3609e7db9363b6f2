//! Building an export's graphs: the float32 graphs of [`crate::onnx`] for the options' target
//! (resolving a folded export's IDR first), then their reduced-precision forms from
//! [`crate::quantize`].

use kdsr_core::Planar;
use kdsr_core::idr::Idr;
use tract_onnx::pb::ModelProto;

use super::options::{ExportOptions, Target, ValidOptions};
use crate::error::Result;
use crate::graph::{GraphKind, Precision};
use crate::idr_source;
use crate::network::Network;
use crate::onnx::{self, Built};
use crate::quantize as quant;

/// The folded IDR and its `kdsr.idr_source` description.
#[derive(Clone, Debug)]
pub struct FoldedIdr {
    /// The IDR.
    pub idr: Idr,
    /// `idr:…`, `image:…` or `calib:…`.
    pub source: String,
}

/// Validates `opts` ([`ExportOptions::validate`]) and builds their graphs: resolves the IDR of a
/// folded export; quantizes the graphs to `opts.precision` (loading the calibration images of an
/// int8 export).
pub fn build(net: &Network, opts: &ExportOptions) -> Result<(Vec<Built>, Option<FoldedIdr>)> {
    let opts = opts.validate()?;
    let crops = match (&opts.quantize.calib, opts.precision) {
        (Some(c), Precision::Int8) => Some(c.crops(net.config.scale)?),
        _ => None,
    };
    build_valid(net, &opts, crops.as_deref())
}

/// [`build`] with the calibration crops already loaded (required for int8).
pub fn build_with(
    net: &Network,
    opts: &ExportOptions,
    crops: Option<&[Planar]>,
) -> Result<(Vec<Built>, Option<FoldedIdr>)> {
    build_valid(net, &opts.validate()?, crops)
}

/// The graphs of validated options, with the calibration crops already loaded (required for
/// int8).
pub fn build_valid(
    net: &Network,
    opts: &ValidOptions,
    crops: Option<&[Planar]>,
) -> Result<(Vec<Built>, Option<FoldedIdr>)> {
    let (float, folded) = build_float(net, opts)?;
    if opts.precision == Precision::F32 {
        return Ok((float, folded));
    }
    let models: Vec<&ModelProto> = float.iter().map(|b| &b.model).collect();
    quant::check_exclusions(&models, &opts.quantize.exclude)?;
    let batch = opts.batch();
    let out = float
        .into_iter()
        .map(|f| quant::quantize_graph(net, f, opts.precision, &opts.quantize, crops, batch))
        .collect::<Result<Vec<_>>>()?;
    Ok((out, folded))
}

/// The float32 graphs of the options' target, and the folded IDR.
fn build_float(net: &Network, opts: &ValidOptions) -> Result<(Vec<Built>, Option<FoldedIdr>)> {
    let mut folded_idr = None;
    let models = match opts.target() {
        Target::Dynamic => vec![(GraphKind::Dynamic, onnx::dynamic(net)?)],
        Target::Split => vec![
            (GraphKind::Ide, onnx::ide_graph(net)?),
            (GraphKind::Sr, onnx::sr_graph(net)?),
        ],
        Target::Batched(batch) => vec![(GraphKind::Batched, onnx::batched(net, *batch)?)],
        Target::Folded(src) => {
            let mut idr = idr_source::resolve(net, src, opts.force)?;
            let source = src.describe();
            idr.source.clone_from(&source);
            let m = onnx::folded(net, &idr, &source)?;
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
