//! Model loading refuses what it cannot trust, naming the file: missing or non-ONNX files,
//! metadata of another format, kind, scale or width, split pairs from different exports, batched
//! graphs, and IDRs made by other weights. Graphs exported from the official tiny student weights
//! (random init, not a trained model) and then edited.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use std::path::{Path, PathBuf};

use common::{in_planar, models, scratch};
use kdsr_converter::ExportKind;
use kdsr_core::idr::Idr;
use kdsr_runtime::{Error, ErrorClass, Options, Upscaler};
use prost::Message;
use tract_onnx::pb::ModelProto;

fn load_err(path: &Path) -> Error {
    let e = Upscaler::load(path, Options::default()).unwrap_err();
    eprintln!("{e}");
    e
}

/// Copies `src` to `dst` with metadata key `key` set to `value` (`None`: removed).
fn edited(src: &Path, dst: &Path, key: &str, value: Option<&str>) {
    let mut m = ModelProto::decode(std::fs::read(src).unwrap().as_slice()).unwrap();
    m.metadata_props.retain(|p| p.key != key);
    if let Some(v) = value {
        m.metadata_props
            .push(tract_onnx::pb::StringStringEntryProto {
                key: key.to_owned(),
                value: v.to_owned(),
            });
    }
    std::fs::write(dst, m.encode_to_vec()).unwrap();
}

/// A split pair in a scratch folder whose SR file has `key` edited.
fn pair_with_sr_edit(name: &str, key: &str, value: Option<&str>) -> (PathBuf, PathBuf) {
    let m = models();
    let d = scratch(name);
    std::fs::copy(m.dir.join("tiny-ide.onnx"), d.join("p-ide.onnx")).unwrap();
    let sr = d.join("p-sr.onnx");
    edited(&m.dir.join("tiny-sr.onnx"), &sr, key, value);
    (d.join("p"), sr)
}

fn assert_names(e: &Error, file: &Path, words: &[&str]) {
    let s = e.to_string();
    assert!(
        s.contains(&file.display().to_string()),
        "error does not name {}: {s}",
        file.display()
    );
    for w in words {
        assert!(s.contains(w), "error lacks `{w}`: {s}");
    }
    assert_eq!(e.class(), ErrorClass::Model);
}

#[test]
fn missing_and_unreadable_models_are_refused_naming_the_file() {
    let d = scratch("unreadable-model");
    let missing = d.join("nothing");
    assert_names(&load_err(&missing), &missing, &["no model here"]);
    let junk = d.join("junk.onnx");
    std::fs::write(&junk, b"this is not a protobuf \xff\xff\xff").unwrap();
    assert_names(&load_err(&junk), &junk, &["ONNX"]);
    let empty_dir = scratch("empty-model-dir");
    assert_names(
        &load_err(&empty_dir),
        &empty_dir,
        &["no model in this folder"],
    );
}

#[test]
fn graphs_without_kdsr_metadata_or_of_another_format_are_refused() {
    let m = models();
    let d = scratch("format-meta");
    let f = d.join("no-meta.onnx");
    edited(&m.dynamic, &f, "kdsr.format", None);
    assert_names(&load_err(&f), &f, &["kdsr.format"]);
    let f = d.join("format2.onnx");
    edited(&m.dynamic, &f, "kdsr.format", Some("2"));
    assert_names(&load_err(&f), &f, &["format `2`"]);
    let f = d.join("scale5.onnx");
    edited(&m.dynamic, &f, "kdsr.scale", Some("5"));
    assert_names(&load_err(&f), &f, &["scale"]);
    let f = d.join("kind.onnx");
    edited(&m.dynamic, &f, "kdsr.graph", Some("sr"));
    assert_names(&load_err(&f), &f, &["`sr` graph"]);
    let f = d.join("nfeats.onnx");
    edited(&m.dir.join("tiny-sr.onnx"), &f, "kdsr.n_feats", Some("32"));
    let d2 = scratch("nfeats-pair");
    std::fs::copy(&f, d2.join("q-sr.onnx")).unwrap();
    std::fs::copy(m.dir.join("tiny-ide.onnx"), d2.join("q-ide.onnx")).unwrap();
    assert_names(
        &load_err(&d2.join("q")),
        &d2.join("q-sr.onnx"),
        &["[1, 32]"],
    );
}

#[test]
fn split_pairs_from_different_exports_are_refused() {
    let (prefix, sr) =
        pair_with_sr_edit("pair-hash", "kdsr.weights_hash", Some("0123456789abcdef"));
    assert_names(
        &load_err(&prefix),
        &sr,
        &["weights hash", "different exports"],
    );
    let (prefix, sr) = pair_with_sr_edit("pair-preset", "kdsr.preset", Some("student-edge"));
    assert_names(&load_err(&prefix), &sr, &["preset"]);
    // The IDE file in the SR slot.
    let m = models();
    let d = scratch("pair-swapped");
    std::fs::copy(m.dir.join("tiny-ide.onnx"), d.join("s-ide.onnx")).unwrap();
    std::fs::copy(m.dir.join("tiny-ide.onnx"), d.join("s-sr.onnx")).unwrap();
    assert_names(
        &load_err(&d.join("s")),
        &d.join("s-sr.onnx"),
        &["`ide` graph"],
    );
    // One half of a pair passed alone under another name.
    let lone = d.join("lone.onnx");
    std::fs::copy(m.dir.join("tiny-sr.onnx"), &lone).unwrap();
    assert_names(&load_err(&lone), &lone, &["split pair"]);
}

#[test]
fn batched_graphs_are_refused() {
    let d = scratch("batched");
    let f = d.join("b.onnx");
    let net = kdsr_converter::Network::load(
        Some(kdsr_core::spec::KdsrConfig::student_tiny()),
        &common::tiny_weights(),
    )
    .unwrap();
    let opts = kdsr_converter::export::ExportOptions {
        kind: ExportKind::Batched,
        batch: Some(2),
        bench_size: None,
        ..Default::default()
    };
    let (built, _) = kdsr_converter::export::build(&net, &opts).unwrap();
    std::fs::write(&f, &built[0].bytes).unwrap();
    assert_names(&load_err(&f), &f, &["batched"]);
}

#[test]
fn an_idr_from_other_weights_or_width_is_refused() {
    let m = models();
    let up = Upscaler::load(&m.split, Options::default()).unwrap();
    let other = Idr {
        weights_hash: "0123456789abcdef".into(),
        source: "other.idr".into(),
        ..m.folded_idr.clone()
    };
    let e = up.upscale_with_idr(&in_planar(), &other).unwrap_err();
    assert!(matches!(e, Error::ModelData { .. }), "{e}");
    assert!(e.to_string().contains("other.idr"), "{e}");
    assert!(e.to_string().contains("0123456789abcdef"), "{e}");
    let short = Idr {
        d: vec![0.0; 8],
        d_prime: vec![0.0; 32],
        source: "short.idr".into(),
        ..m.folded_idr.clone()
    };
    let e = up.upscale_with_idr(&in_planar(), &short).unwrap_err();
    assert!(e.to_string().contains("C = 8"), "{e}");
}
