//! Helpers shared by the resize, blur and degrade tests (on top of `common`).
#![allow(dead_code, missing_docs)]

use kdsr_core::Planar;

use crate::common::{Npy, pipeline};

/// Reads a `vectors-pipeline/*.npy` file (f32, f64 or u8) into f64 values. (Like `common::npy`,
/// but matches the dtype without the quotes npyz's `descr()` puts around it.)
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

/// An HWC `.npy` image as a [`Planar`], each value cast to f32 and then divided by `divisor` in
/// f32 (`u8.astype(f32) / 255` for [0, 1] data, `1.0` to keep the stored values).
pub fn image(name: &str, divisor: f32) -> Planar {
    let a = npy(name);
    assert_eq!(a.shape.len(), 3, "{name} is not HWC");
    let hwc: Vec<f32> = a.data.iter().map(|v| *v as f32 / divisor).collect();
    Planar::from_hwc(a.shape[2], a.shape[0], a.shape[1], &hwc).expect("image shape")
}

/// Compares the 8-bit quantisation `clamp(round_half_even(pre · to_255), 0, 255)` of the float
/// pre-quantisation image `pre` with `want` (same shape, integer values 0..255): every value must
/// agree, except for ±1 where `pre · to_255` lies within 1e-3 of a .5 boundary, and there may be
/// at most `max_near_ties` of those. Returns the number of (near-tie) mismatches.
pub fn assert_u8_planar(
    pre: &Planar,
    to_255: f32,
    want: &Planar,
    label: &str,
    max_near_ties: usize,
) -> usize {
    assert_eq!(pre.shape(), want.shape(), "{label}: shape");
    let mut mismatches = 0;
    for (i, (p, w)) in pre.data().iter().zip(want.data()).enumerate() {
        let v32 = *p * to_255;
        let q = v32.round_ties_even().clamp(0.0, 255.0);
        if q != *w {
            let v = f64::from(v32);
            let dist = (v - v.floor() - 0.5).abs();
            assert!(
                (q - w).abs() == 1.0 && dist < 1e-3,
                "{label}[{i}]: got {q} (pre-quant {v}), want {w}"
            );
            mismatches += 1;
        }
    }
    eprintln!("{label}: {mismatches} near-tie mismatches (allowed {max_near_ties})");
    assert!(
        mismatches <= max_near_ties,
        "{label}: {mismatches} near-tie mismatches > {max_near_ties}"
    );
    mismatches
}

/// [`assert_u8_planar`] against the HWC u8 fixture `name`.
pub fn assert_u8(pre: &Planar, to_255: f32, name: &str, max_near_ties: usize) -> usize {
    assert_u8_planar(pre, to_255, &image(name, 1.0), name, max_near_ties)
}

/// Largest absolute difference between `got` and the HWC fixture `name` (values kept as stored).
pub fn max_err_vs(got: &Planar, name: &str) -> f64 {
    let want = image(name, 1.0);
    assert_eq!(got.shape(), want.shape(), "{name}: shape");
    crate::common::max_abs_diff(got.data(), want.data())
}

/// Asserts `got` equals the HWC f32 fixture `name` within `tol`; prints and returns the error.
pub fn assert_close(got: &Planar, name: &str, tol: f64) -> f64 {
    let err = max_err_vs(got, name);
    eprintln!("{name}: max abs error {err:.3e} (tolerance {tol:.0e})");
    assert!(err <= tol, "{name}: max abs error {err:e} > {tol:e}");
    err
}
