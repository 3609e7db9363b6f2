//! IDR files and the weights hash.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use kdsr_core::idr::Idr;
use kdsr_core::spec::KdsrConfig;
use kdsr_core::spec::checkpoint::{Tensor, weights_from_bytes, weights_hash};

fn idr(d: f32, images: usize) -> Idr {
    Idr {
        d: vec![d; 4],
        d_prime: vec![2.0 * d; 16],
        weights_hash: "abc".into(),
        images,
        source: "x".into(),
    }
}

#[test]
fn round_trip_and_mean() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("cam.idr");
    let a = idr(1.0, 1);
    a.save(&p).unwrap();
    assert_eq!(Idr::load(&p).unwrap(), a);
    // A weighted mean: 1 image at 1.0 and 3 images at 3.0 → 2.5.
    let m = Idr::mean(&[idr(1.0, 1), idr(3.0, 3)], "cam").unwrap();
    assert_eq!(m.images, 4);
    assert!(m.d.iter().all(|v| (*v - 2.5).abs() < 1e-6));
    assert!(m.d_prime.iter().all(|v| (*v - 5.0).abs() < 1e-6));
    let mut other = idr(1.0, 1);
    other.weights_hash = "def".into();
    assert!(
        Idr::mean(&[idr(1.0, 1), other], "cam")
            .unwrap_err()
            .to_string()
            .contains("def")
    );
    assert!(Idr::mean(&[], "cam").is_err());
}

#[test]
fn bad_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("weights.safetensors");
    std::fs::copy(common::vectors("small_student_weights.safetensors"), &p).unwrap();
    let e = Idr::load(&p).unwrap_err().to_string();
    assert!(
        e.contains("weights.safetensors") && e.contains("not an IDR file"),
        "{e}"
    );
    let e = Idr::load(&dir.path().join("missing.idr"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing.idr"), "{e}");
    let mut bad = idr(1.0, 1);
    bad.d_prime.pop();
    let e = Idr::from_bytes(&bad.to_bytes().unwrap(), "bad.idr")
        .unwrap_err()
        .to_string();
    assert!(e.contains("D_prime"), "{e}");
}

#[test]
fn weights_hash_identifies_the_weights() {
    let bytes = std::fs::read(common::vectors("small_student_weights.safetensors")).unwrap();
    let w = weights_from_bytes(&KdsrConfig::student_tiny(), "s", &bytes, false).unwrap();
    let h = weights_hash(&w);
    assert_eq!(h.len(), 16);
    assert_eq!(h, weights_hash(&w.clone()));
    let mut w2 = w.clone();
    let t = w2.get_mut("G.tail.1.bias").unwrap();
    t.data[0] += 1e-6;
    assert_ne!(weights_hash(&w2), h);
    let mut w3 = w.clone();
    let t = w3.remove("G.tail.1.bias").unwrap();
    w3.insert(
        "G.tail.1.bias".into(),
        Tensor::new(vec![1, 3], t.data).unwrap(),
    );
    assert_ne!(weights_hash(&w3), h, "shape is part of the hash");
}
