//! Writes every graph kind, with the inputs it was verified on and the outputs tract produced,
//! for `converter/tests/ort_check.py` (onnxruntime must agree with tract within 1e-4). The folder
//! is `$KDSR_ORT_DIR`, default `target/ort-check` at the workspace root; per graph NAME:
//! `NAME.onnx`, `NAME.inputs.safetensors` (tensors named after the graph inputs) and
//! `NAME.tract.safetensors` (tensors named after the graph outputs).
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{io, net, planar, random_weights, sample};
use kdsr_converter::export::{Built, test_image, verify};
use kdsr_converter::verify::Value;
use kdsr_converter::{GraphKind, Network, Precision, onnx};
use kdsr_core::idr::Idr;
use kdsr_core::spec::KdsrConfig;
use kdsr_core::spec::checkpoint::{Tensor, weights_to_bytes};

fn out_dir() -> PathBuf {
    std::env::var_os("KDSR_ORT_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/ort-check"),
        PathBuf::from,
    )
}

fn save(path: &Path, values: &[(String, Value)]) {
    let w: BTreeMap<String, Tensor> = values
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                Tensor::new(v.shape.clone(), v.data.clone()).unwrap(),
            )
        })
        .collect();
    std::fs::write(path, weights_to_bytes(&w, None).unwrap()).unwrap();
}

fn write_case(
    dir: &Path,
    name: &str,
    net: &Network,
    kind: GraphKind,
    model: tract_onnx::pb::ModelProto,
    images: &[kdsr_core::Planar],
    idr: Option<&Idr>,
) {
    let built = Built {
        kind,
        bytes: onnx::encode(&model),
        model,
    };
    let v = verify(net, &built, images, idr, 1e-4).unwrap();
    std::fs::write(dir.join(format!("{name}.onnx")), &built.bytes).unwrap();
    save(&dir.join(format!("{name}.inputs.safetensors")), &v.inputs);
    save(&dir.join(format!("{name}.tract.safetensors")), &v.tract);
    eprintln!("{name}: tract vs reference {:?}", v.max_abs_diff);
}

#[test]
fn write_ort_check_cases() {
    let dir = out_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let (net, io) = (net(), io());
    let p = Precision::F32;
    let lr0 = vec![planar(&io["lr"], 0)];
    let both = vec![planar(&io["lr"], 0), planar(&io["lr"], 1)];
    let idr = Idr {
        d: sample(&io["student.D"], 1).data,
        d_prime: sample(&io["student.D_prime"], 1).data,
        weights_hash: net.weights_hash.clone(),
        images: 1,
        source: "small_io sample 1".into(),
    };
    write_case(
        &dir,
        "tiny-dynamic",
        &net,
        GraphKind::Dynamic,
        onnx::dynamic(&net, p).unwrap(),
        &lr0,
        None,
    );
    write_case(
        &dir,
        "tiny-ide",
        &net,
        GraphKind::Ide,
        onnx::ide_graph(&net, p).unwrap(),
        &lr0,
        None,
    );
    write_case(
        &dir,
        "tiny-sr",
        &net,
        GraphKind::Sr,
        onnx::sr_graph(&net, p).unwrap(),
        &lr0,
        None,
    );
    write_case(
        &dir,
        "tiny-folded",
        &net,
        GraphKind::Folded,
        onnx::folded(&net, &idr, "test", p).unwrap(),
        &lr0,
        Some(&idr),
    );
    write_case(
        &dir,
        "tiny-batched",
        &net,
        GraphKind::Batched,
        onnx::batched(&net, 2, p).unwrap(),
        &both,
        None,
    );

    // The edge preset's sizes (random weights) at a non-square size.
    let cfg = KdsrConfig::student_edge();
    let edge = Network::new(cfg.clone(), random_weights(&cfg, 42)).unwrap();
    let img = vec![test_image(20, 28, 3).unwrap()];
    write_case(
        &dir,
        "edge-dynamic",
        &edge,
        GraphKind::Dynamic,
        onnx::dynamic(&edge, p).unwrap(),
        &img,
        None,
    );
    let cfg3 = KdsrConfig::student_tiny().with_scale(3).unwrap();
    let x3 = Network::new(cfg3.clone(), random_weights(&cfg3, 3)).unwrap();
    write_case(
        &dir,
        "tiny-x3-dynamic",
        &x3,
        GraphKind::Dynamic,
        onnx::dynamic(&x3, p).unwrap(),
        &img,
        None,
    );
    eprintln!("ort check cases written to {}", dir.display());
}
