//! Quantization of the float32 graphs, the feature set of onnxruntime's `quantize_static`:
//!
//! | [`crate::Precision`] | weights | biases | activations | needs |
//! |---|---|---|---|---|
//! | `int8` | int8, per channel (axis 0), symmetric ([-127, 127]; [-64, 64] with `reduce_range`) | int32, scale = input · weight scale | uint8, asymmetric, calibrated | `--calib-data` |
//! | `int8-weights` | int8, per channel, symmetric | float32 | float32 | — |
//! | `f16` | float16 + `Cast` | float16 + `Cast` | float32 | — |
//!
//! - [`params`]: the numbers (scales, zero points, rounding);
//! - [`calibrate`]: calibration images → crops → activation ranges (minmax or percentile);
//! - [`rewrite`]: the graph rewrites (QDQ pairs, int8 / f16 weight storage);
//! - [`report`]: what an export reports about a quantized graph;
//! - [`quantize_graph`]: one float32 graph → its quantized form (what `export::build` calls).
//!
//! The graph builders of [`crate::onnx`] write float32 only; every reduced precision is made
//! here.
//!
//! Everything runs on the float32 `ModelProto` the builders write, so every graph kind is
//! quantized the same way and the float32 graph stays the reference.

pub mod calibrate;
pub mod options;
pub mod params;
pub mod report;
pub mod rewrite;

use std::collections::BTreeSet;

use kdsr_core::Planar;
use tract_onnx::pb::ModelProto;

pub use calibrate::{CalibMethod, CalibOptions, Range};
pub use options::{KernelQuant, QuantizeOptions, RECOMMENDED_EXCLUDE};

use crate::error::{ConvertError, Result};
use crate::graph::{Precision, keys};
use crate::idr_source::feeds;
use crate::network::Network;
use crate::onnx::Built;
use crate::onnx::proto::props;

/// `kdsr.quant_*` metadata of a graph quantized to `precision` with `q` on `crops` images.
fn quant_metadata(
    precision: Precision,
    q: &QuantizeOptions,
    crops: usize,
) -> Vec<(String, String)> {
    let mut m = Vec::new();
    if precision == Precision::Int8 {
        m.push((
            keys::QUANT_ACTIVATIONS.to_owned(),
            "uint8-asymmetric".to_owned(),
        ));
        if let Some(c) = &q.calib {
            m.push((
                keys::QUANT_CALIBRATION.to_owned(),
                format!(
                    "{}, {crops} crops (at most {}x{}) of {}",
                    c.describe_method(),
                    c.crop.1,
                    c.crop.0,
                    c.dir.display()
                ),
            ));
        }
    }
    if matches!(precision, Precision::Int8 | Precision::Int8Weights) {
        let k = match q.kernels {
            KernelQuant::Float => "float",
            KernelQuant::Weights => "weights",
            KernelQuant::Full => "full",
        };
        m.push((keys::QUANT_KERNELS.to_owned(), k.to_owned()));
        m.push((
            keys::QUANT_WEIGHTS.to_owned(),
            q.weight_range_name().to_owned(),
        ));
    }
    if !q.exclude.is_empty() {
        m.push((keys::QUANT_EXCLUDE.to_owned(), q.exclude.join(",")));
    }
    m
}

/// Quantizes one float32 graph to `precision` with the settings `q` (int8: its activations
/// calibrated on `crops`, fed as [`feeds`] of the graph's kind at `batch`). The result keeps the
/// float32 encoding in [`Built::float`]. Exclusions are not checked here
/// ([`check_exclusions`]).
pub fn quantize_graph(
    net: &Network,
    float: Built,
    precision: Precision,
    q: &QuantizeOptions,
    crops: Option<&[Planar]>,
    batch: usize,
) -> Result<Built> {
    let meta = quant_metadata(precision, q, crops.map_or(0, <[Planar]>::len));
    let model = match precision {
        Precision::Int8 => {
            let (crops, c) = match (crops, &q.calib) {
                (Some(x), Some(c)) if !x.is_empty() => (x, c),
                _ => {
                    return Err(ConvertError::Options(
                        "--quantize int8 needs calibration images: --calib-data DIR".into(),
                    ));
                }
            };
            let tensors = rewrite::calibration_tensors(&float.model, &q.exclude, q.kernels)?;
            let feeds = feeds(net, float.kind, crops, batch)?;
            let ranges =
                calibrate::calibrate(&float.model, &tensors, &feeds, c.method, c.percentile)?;
            rewrite::insert_qdq(&float.model, &ranges, q, &meta)?
        }
        p => {
            let mut m = rewrite::store_weights(&float.model, p, q)?;
            m.metadata_props.extend(props(&meta));
            m
        }
    };
    let mut b = Built::new(float.kind, model);
    b.float = Some(float.bytes);
    Ok(b)
}

/// Every node name of `models`.
pub fn node_names(models: &[&ModelProto]) -> BTreeSet<String> {
    models
        .iter()
        .filter_map(|m| m.graph.as_ref())
        .flat_map(|g| g.node.iter().map(|n| n.name.clone()))
        .collect()
}

/// Fails when a name of `exclude` is no node of any of `models`, listing the closest names.
pub fn check_exclusions(models: &[&ModelProto], exclude: &[String]) -> Result<()> {
    let names = node_names(models);
    for e in exclude {
        if !names.contains(e) {
            let close = close_names(e, &names, 5);
            return Err(ConvertError::Options(format!(
                "--exclude {e}: no node of that name in the graph; closest node names: {}",
                if close.is_empty() {
                    "(none)".to_owned()
                } else {
                    close.join(", ")
                }
            )));
        }
    }
    Ok(())
}

/// Up to `n` of `names` closest to `name` (edit distance, ties by name).
pub fn close_names(name: &str, names: &BTreeSet<String>, n: usize) -> Vec<String> {
    let mut scored: Vec<(usize, &String)> =
        names.iter().map(|c| (edit_distance(name, c), c)).collect();
    scored.sort();
    scored.into_iter().take(n).map(|(_, c)| c.clone()).collect()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_names_rank_by_edit_distance() {
        let names: BTreeSet<String> = ["G.head.0", "G.tail.1", "G.tail.0.0", "G.body.1"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        assert_eq!(close_names("G.head.O", &names, 2)[0], "G.head.0");
        assert_eq!(close_names("G.tail.2", &names, 1), ["G.tail.1"]);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
