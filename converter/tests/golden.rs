//! Golden dumps of every graph kind for the official small student (`tests/golden/*.txt`), and of
//! its dynamic graph at int8 (QDQ, with fixed activation ranges: calibrated ranges depend on float
//! summation order), int8-weights and f16: metadata, input/output shapes, initializers with
//! shapes and content hashes, nodes in order with attributes and tract-inferred output shapes. Any change to a graph fails here; review the diff
//! and regenerate with `KDSR_UPDATE_GOLDEN=1 cargo test -p kdsr-converter --test golden`.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::{io, net, sample};
use kdsr_converter::inspect::{dump, dump_bytes, node_shapes};
use kdsr_converter::quantize::rewrite::{calibration_tensors, insert_qdq, store_weights};
use kdsr_converter::quantize::{KernelQuant, QuantizeOptions, Range};
use kdsr_converter::{Precision, onnx};
use kdsr_core::idr::Idr;
use tract_onnx::pb::ModelProto;

fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.txt"))
}

fn graphs() -> Vec<(&'static str, ModelProto)> {
    let net = net();
    let io = io();
    let idr = Idr {
        d: sample(&io["student.D"], 0).data,
        d_prime: sample(&io["student.D_prime"], 0).data,
        weights_hash: net.weights_hash.clone(),
        images: 1,
        source: "small_io sample 0".into(),
    };
    vec![
        ("dynamic", onnx::dynamic(&net).unwrap()),
        ("ide", onnx::ide_graph(&net).unwrap()),
        ("sr", onnx::sr_graph(&net).unwrap()),
        (
            "folded",
            onnx::folded(&net, &idr, "idr:small_io-sample0.idr").unwrap(),
        ),
        ("batched", onnx::batched(&net, 2).unwrap()),
        (
            "dynamic-int8",
            int8_fixed_ranges(&onnx::dynamic(&net).unwrap()),
        ),
        (
            "dynamic-int8-weights",
            stored(&onnx::dynamic(&net).unwrap(), Precision::Int8Weights),
        ),
        (
            "dynamic-f16",
            stored(&onnx::dynamic(&net).unwrap(), Precision::F16),
        ),
    ]
}

/// `m` with its weights stored at `p` (f16 or int8-weights), no exclusions.
fn stored(m: &ModelProto, p: Precision) -> ModelProto {
    store_weights(m, p, &QuantizeOptions::default()).unwrap()
}

/// The int8 QDQ form of `m` with the range [0, 1] on graph inputs and [-1, 1] everywhere else.
fn int8_fixed_ranges(m: &ModelProto) -> ModelProto {
    let k = KernelQuant::Weights;
    let inputs: Vec<&str> = m
        .graph
        .as_ref()
        .unwrap()
        .input
        .iter()
        .map(|i| i.name.as_str())
        .collect();
    let ranges: BTreeMap<String, Range> = calibration_tensors(m, &[], k)
        .unwrap()
        .into_iter()
        .map(|t| {
            let min = if inputs.contains(&t.as_str()) {
                0.0
            } else {
                -1.0
            };
            (t, Range { min, max: 1.0 })
        })
        .collect();
    insert_qdq(
        m,
        &ranges,
        &QuantizeOptions {
            kernels: k,
            ..QuantizeOptions::default()
        },
        &[],
    )
    .unwrap()
}

fn first_difference(a: &str, b: &str) -> String {
    for (i, (x, y)) in a.lines().zip(b.lines()).enumerate() {
        if x != y {
            return format!("line {}:\n  golden: {x}\n  now:    {y}", i + 1);
        }
    }
    format!(
        "one is a prefix of the other ({} vs {} lines)",
        a.lines().count(),
        b.lines().count()
    )
}

#[test]
fn graph_dumps_match_golden_files() {
    let update = std::env::var_os("KDSR_UPDATE_GOLDEN").is_some_and(|v| v == "1");
    let mut failures = Vec::new();
    for (name, m) in graphs() {
        let bytes = onnx::encode(&m);
        let text = dump_bytes(&bytes, &PathBuf::from(name)).unwrap();
        assert!(
            !text.contains("shapes unavailable"),
            "{name}: tract could not infer shapes:\n{text}"
        );
        let path = golden_path(name);
        if update {
            std::fs::write(&path, &text).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; create it with KDSR_UPDATE_GOLDEN=1",
                path.display()
            )
        });
        if want != text {
            failures.push(format!(
                "{}: {}",
                path.display(),
                first_difference(&want, &text)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "graphs differ from the golden dumps (if intended, regenerate with \
         KDSR_UPDATE_GOLDEN=1 and review the diff):\n{}",
        failures.join("\n")
    );
}

#[test]
fn dump_changes_with_any_graph_change() {
    let (_, m) = graphs().remove(0);
    let shapes = node_shapes(&onnx::encode(&m)).unwrap();
    let base = dump(&m, Some(&shapes));
    // An attribute.
    let mut a = m.clone();
    let g = a.graph.as_mut().unwrap();
    let n = g
        .node
        .iter_mut()
        .find(|n| n.op_type == "LeakyRelu")
        .unwrap();
    n.attribute[0].f = 0.2;
    assert_ne!(dump(&a, Some(&shapes)), base);
    // A weight value.
    let mut b = m.clone();
    b.graph.as_mut().unwrap().initializer[0].raw_data[0] ^= 1;
    assert_ne!(dump(&b, Some(&shapes)), base);
    // The node order.
    let mut c = m.clone();
    c.graph.as_mut().unwrap().node.swap(1, 2);
    assert_ne!(dump(&c, Some(&shapes)), base);
    // A shape.
    let mut s2 = shapes.clone();
    s2.insert("sr".into(), "[1,3,2*h,2*w]".into());
    assert_ne!(dump(&m, Some(&s2)), base);
}

#[test]
fn graphs_are_deterministic() {
    let a: Vec<Vec<u8>> = graphs().iter().map(|(_, m)| onnx::encode(m)).collect();
    let b: Vec<Vec<u8>> = graphs().iter().map(|(_, m)| onnx::encode(m)).collect();
    assert_eq!(a, b);
}
