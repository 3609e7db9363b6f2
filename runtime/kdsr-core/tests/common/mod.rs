//! Fixture loading shared by the integration tests. Fixtures live in the workspace's
//! `tests/fixtures/` (see its README for provenance).
#![allow(dead_code, missing_docs)]

use std::path::PathBuf;

use kdsr_core::Planar;

/// Path of a file under `tests/fixtures/`.
pub fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(rel)
}

/// Path of a file in `tests/fixtures/reference/vectors-pipeline/`.
pub fn pipeline(name: &str) -> PathBuf {
    fixture("reference/vectors-pipeline").join(name)
}

/// Path of a file in `tests/fixtures/reference/vectors/`.
pub fn vectors(name: &str) -> PathBuf {
    fixture("reference/vectors").join(name)
}

/// An `.npy` array: its shape and its values converted to f64.
pub struct Npy {
    pub shape: Vec<usize>,
    pub data: Vec<f64>,
}

/// Reads a `vectors-pipeline/*.npy` file of dtype f32, f64 or u8 into f64 values.
pub fn npy(name: &str) -> Npy {
    let path = pipeline(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let arr = npyz::NpyFile::new(&bytes[..]).expect("npy header");
    let shape: Vec<usize> = arr.shape().iter().map(|d| *d as usize).collect();
    let descr = arr.dtype().descr();
    let data: Vec<f64> = match descr.trim_matches('\'') {
        "<f4" => arr
            .into_vec::<f32>()
            .expect("f32 data")
            .into_iter()
            .map(f64::from)
            .collect(),
        "<f8" => arr.into_vec::<f64>().expect("f64 data"),
        "|u1" => arr
            .into_vec::<u8>()
            .expect("u8 data")
            .into_iter()
            .map(f64::from)
            .collect(),
        other => panic!("{name}: unsupported dtype {other}"),
    };
    Npy { shape, data }
}

/// Reads an HWC `.npy` image (H, W, C) into a [`Planar`] of f32 values, multiplied by `scale`
/// (use `1.0 / 255.0` for u8 images that should be in [0, 1]).
pub fn npy_image(name: &str, scale: f64) -> Planar {
    let a = npy(name);
    assert_eq!(a.shape.len(), 3, "{name} is not HWC");
    let hwc: Vec<f32> = a.data.iter().map(|v| (v * scale) as f32).collect();
    Planar::from_hwc(a.shape[2], a.shape[0], a.shape[1], &hwc).expect("image shape")
}

/// A float32 tensor from a safetensors fixture file in `vectors/`: (shape, values).
pub fn st_tensor(file: &str, key: &str) -> (Vec<usize>, Vec<f32>) {
    let path = vectors(file);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("safetensors");
    let t = st
        .tensor(key)
        .unwrap_or_else(|e| panic!("{file}: {key}: {e}"));
    assert_eq!(t.dtype(), safetensors::Dtype::F32, "{key} dtype");
    let data = t
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    (t.shape().to_vec(), data)
}

/// An NCHW tensor with N = 1 as a [`Planar`].
pub fn st_image(file: &str, key: &str) -> Planar {
    let (shape, data) = st_tensor(file, key);
    assert_eq!(shape.len(), 4, "{key}: {shape:?}");
    assert_eq!(shape[0], 1, "{key}: batch {shape:?}");
    Planar::new(shape[1], shape[2], shape[3], data).expect("image")
}

/// Largest absolute difference between two equally long slices.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    a.iter()
        .zip(b)
        .map(|(x, y)| (f64::from(*x) - f64::from(*y)).abs())
        .fold(0.0, f64::max)
}
