//! Bad inputs fail with errors that name the item at fault: missing or mis-shaped tensors, an
//! unknown preset, a teacher config, a calibration folder without images, an IDR of the wrong
//! length or from other weights (unless forced), options that do not fit together. None of them
//! leaves an output file.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use std::path::Path;

use common::{net, weights_path};
use kdsr_converter::export::{ExportOptions, export};
use kdsr_converter::idr_source::{IdrSource, resolve};
use kdsr_converter::{ConvertError, ExportKind, Network};
use kdsr_core::idr::Idr;
use kdsr_core::spec::KdsrConfig;
use kdsr_core::spec::checkpoint::{Tensor, Weights, load_weights, weights_to_bytes};

fn official() -> Weights {
    load_weights(&KdsrConfig::student_tiny(), &weights_path()).unwrap()
}

fn save(w: &Weights, path: &Path) {
    std::fs::write(path, weights_to_bytes(w, None).unwrap()).unwrap();
}

fn dir_is_empty_but(dir: &Path, keep: &[&str]) -> bool {
    std::fs::read_dir(dir).unwrap().all(|e| {
        let n = e.unwrap().file_name();
        keep.iter().any(|k| n == *k)
    })
}

fn folded(src: IdrSource, force: bool) -> ExportOptions {
    ExportOptions {
        kind: ExportKind::Folded,
        idr: Some(src),
        force,
        bench_size: None,
        ..ExportOptions::default()
    }
}

fn idr(d_len: usize, hash: &str) -> Idr {
    Idr {
        d: vec![0.01; d_len],
        d_prime: vec![0.01; 4 * d_len],
        weights_hash: hash.to_owned(),
        images: 1,
        source: "test".into(),
    }
}

#[test]
fn missing_tensor_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = official();
    w.remove("G.body.0.body.1.da_conv1.kernel.2.weight");
    let p = dir.path().join("w.safetensors");
    save(&w, &p);
    let e = Network::load(Some(KdsrConfig::student_tiny()), &p).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, ConvertError::Core(_)), "{e:?}");
    assert!(
        msg.contains("G.body.0.body.1.da_conv1.kernel.2.weight") && msg.contains("[144, 16]"),
        "{msg}"
    );
}

#[test]
fn misshaped_tensor_is_named_with_both_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = official();
    w.insert(
        "G.tail.1.weight".into(),
        Tensor::new(vec![3, 16, 1, 1], vec![0.0; 48]).unwrap(),
    );
    let p = dir.path().join("w.safetensors");
    save(&w, &p);
    let msg = Network::load(Some(KdsrConfig::student_tiny()), &p)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("G.tail.1.weight")
            && msg.contains("[3, 16, 1, 1]")
            && msg.contains("[3, 16, 3, 3]"),
        "{msg}"
    );
    // In-memory weights are checked too.
    let e = Network::new(KdsrConfig::student_tiny(), w).unwrap_err();
    assert!(e.to_string().contains("G.tail.1.weight"), "{e}");
}

#[test]
fn unknown_preset_lists_the_known_ones() {
    let msg = KdsrConfig::resolve("student-xl").unwrap_err().to_string();
    assert!(
        msg.contains("student-xl") && msg.contains("student-edge"),
        "{msg}"
    );
}

#[test]
fn plain_conv_ablation_is_refused_by_name() {
    let cfg = KdsrConfig {
        block_conv: kdsr_core::spec::BlockConv::Plain,
        ..KdsrConfig::student_tiny()
    };
    let e = Network::load(Some(cfg), &weights_path()).unwrap_err();
    assert!(matches!(e, ConvertError::PlainBlocks(_)), "{e:?}");
    assert!(e.to_string().contains("plain"), "{e}");
    assert_eq!(e.exit_code(), 3);
}

#[test]
fn teacher_config_is_refused_by_name() {
    let e = Network::load(Some(KdsrConfig::teacher_tiny()), &weights_path()).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, ConvertError::TeacherConfig { .. }), "{e:?}");
    assert!(
        msg.contains("teacher-tiny") && msg.contains("student-tiny"),
        "{msg}"
    );
    assert_eq!(e.exit_code(), 3);
}

#[test]
fn empty_calibration_folder_is_an_error() {
    let net = net();
    let dir = tempfile::tempdir().unwrap();
    let calib = dir.path().join("calib");
    std::fs::create_dir(&calib).unwrap();
    std::fs::write(calib.join("notes.txt"), "not an image").unwrap();
    let out = dir.path().join("m.onnx");
    let e = export(&net, &folded(IdrSource::Calib(calib.clone()), false), &out).unwrap_err();
    assert!(matches!(e, ConvertError::EmptyCalibration { .. }), "{e:?}");
    assert!(e.to_string().contains("calib"), "{e}");
    assert!(!out.exists());
    assert!(dir_is_empty_but(dir.path(), &["calib"]));
}

#[test]
fn idr_of_wrong_length_is_an_error_even_forced() {
    let net = net();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.idr");
    idr(8, &net.weights_hash).save(&p).unwrap();
    for force in [false, true] {
        let e = resolve(&net, &IdrSource::File(p.clone()), force).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, ConvertError::IdrLength { .. }), "{e:?}");
        assert!(
            msg.contains("x.idr") && msg.contains('8') && msg.contains("16"),
            "{msg}"
        );
    }
    let out = dir.path().join("m.onnx");
    assert!(export(&net, &folded(IdrSource::File(p), true), &out).is_err());
    assert!(!out.exists());
}

#[test]
fn idr_from_other_weights_needs_force() {
    let net = net();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("other.idr");
    idr(16, "0123456789abcdef").save(&p).unwrap();
    let out = dir.path().join("m.onnx");
    let e = export(&net, &folded(IdrSource::File(p.clone()), false), &out).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, ConvertError::IdrHash { .. }), "{e:?}");
    assert!(
        msg.contains("0123456789abcdef")
            && msg.contains(&net.weights_hash)
            && msg.contains("--force"),
        "{msg}"
    );
    assert!(!out.exists());
    let r = export(&net, &folded(IdrSource::File(p), true), &out).unwrap();
    assert!(out.exists());
    assert_eq!(r.idr.unwrap().weights_hash, "0123456789abcdef");
}

#[test]
fn options_that_do_not_fit_are_refused() {
    let net = net();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.onnx");
    let cases = [
        (
            ExportOptions {
                kind: ExportKind::Folded,
                ..ExportOptions::default()
            },
            "--graph folded needs an IDR",
        ),
        (
            ExportOptions {
                kind: ExportKind::Batched,
                ..ExportOptions::default()
            },
            "--batch",
        ),
        (
            ExportOptions {
                kind: ExportKind::Batched,
                batch: Some(0),
                ..ExportOptions::default()
            },
            "at least 1",
        ),
        (
            ExportOptions {
                batch: Some(2),
                ..ExportOptions::default()
            },
            "--batch applies only",
        ),
        (
            ExportOptions {
                idr: Some(IdrSource::File("x.idr".into())),
                ..ExportOptions::default()
            },
            "apply only to --graph folded",
        ),
    ];
    for (opts, want) in cases {
        let e = export(&net, &opts, &out).unwrap_err();
        assert!(matches!(e, ConvertError::Options(_)), "{e:?}");
        assert!(e.to_string().contains(want), "{e} does not mention {want}");
    }
    assert!(dir_is_empty_but(dir.path(), &[]));
}

#[test]
fn missing_output_folder_fails_before_any_work() {
    let net = net();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("no/such/dir/m.onnx");
    let e = export(&net, &ExportOptions::default(), &out).unwrap_err();
    assert!(matches!(e, ConvertError::Io { .. }), "{e:?}");
    assert!(e.to_string().contains("no/such/dir"), "{e}");
}

#[test]
fn verification_failure_writes_nothing() {
    let net = net();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.onnx");
    // A zero tolerance cannot be met by a float32 graph whose summation order differs.
    let opts = ExportOptions {
        tolerance: Some(0.0),
        bench_size: None,
        ..ExportOptions::default()
    };
    let e = export(&net, &opts, &out).unwrap_err();
    assert!(matches!(e, ConvertError::Verification { .. }), "{e:?}");
    assert_eq!(e.exit_code(), 4);
    assert!(dir_is_empty_but(dir.path(), &[]));
}
