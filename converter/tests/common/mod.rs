//! Shared test helpers: the official small vectors (C 16, N 2, R 2, ×4, batch 2) and the tiny
//! student built from them.
#![allow(dead_code, unused_imports)] // each test binary uses its own subset

use std::path::PathBuf;

use kdsr_converter::Network;
use kdsr_converter::verify::Value;
use kdsr_core::Planar;
use kdsr_core::spec::KdsrConfig;
use kdsr_core::spec::checkpoint::{Tensor, Weights, weights_from_bytes_unchecked};

pub use kdsr_test_support::{check, max_abs, vectors};

/// The official student weights.
pub fn weights_path() -> PathBuf {
    vectors("small_student_weights.safetensors")
}

/// The tiny student with the official weights.
pub fn net() -> Network {
    Network::load(Some(KdsrConfig::student_tiny()), &weights_path()).unwrap()
}

/// The tensors of `small_io.safetensors`.
pub fn io() -> Weights {
    let p = vectors("small_io.safetensors");
    weights_from_bytes_unchecked(&std::fs::read(&p).unwrap(), &p.display().to_string()).unwrap()
}

/// Sample `b` of a tensor whose first dim is the batch, as a [`Value`] with batch 1.
pub fn sample(t: &Tensor, b: usize) -> Value {
    let n: usize = t.shape[1..].iter().product();
    let mut shape = t.shape.clone();
    shape[0] = 1;
    Value::new(shape, t.data[b * n..(b + 1) * n].to_vec()).unwrap()
}

/// Sample `b` of an image tensor `[B, C, H, W]` as a [`Planar`].
pub fn planar(t: &Tensor, b: usize) -> Planar {
    let v = sample(t, b);
    Planar::new(v.shape[1], v.shape[2], v.shape[3], v.data).unwrap()
}

/// Deterministic pseudo-random weights for any config (uniform in ±1/sqrt(fan_in), with the
/// official identity / ±mean MeanShifts), for configs without official vectors.
pub fn random_weights(cfg: &KdsrConfig, seed: u64) -> Weights {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    };
    let mut w = Weights::new();
    for t in cfg.tensors() {
        let n = t.numel();
        let data = match t.key.as_str() {
            "G.sub_mean.weight" | "G.add_mean.weight" => {
                (0..9).map(|i| if i % 4 == 0 { 1.0 } else { 0.0 }).collect()
            }
            "G.sub_mean.bias" => kdsr_core::spec::RGB_MEAN.iter().map(|m| -m).collect(),
            "G.add_mean.bias" => kdsr_core::spec::RGB_MEAN.to_vec(),
            _ => {
                let fan_in: usize = t.shape[1..].iter().product::<usize>().max(1);
                let fan_in = if t.shape.len() == 1 { 16 } else { fan_in };
                let bound = 1.0 / (fan_in as f32).sqrt();
                (0..n).map(|_| next() * bound).collect()
            }
        };
        w.insert(t.key.clone(), Tensor::new(t.shape.clone(), data).unwrap());
    }
    w
}

/// The workspace's `data/` folder.
pub fn data(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../data")
        .join(rel)
}

/// The calibration folder of the quantization tests: T91 (the first [`CALIB_IMAGES`] images by
/// name are used).
pub fn calib_dir() -> PathBuf {
    data("T91")
}

/// Calibration images used by the quantization tests.
pub const CALIB_IMAGES: usize = 4;

/// The calibration options of the quantization tests: the first [`CALIB_IMAGES`] images of T91,
/// 48×48 center crops, percentile 99.999.
pub fn calib_options() -> kdsr_converter::quantize::CalibOptions {
    let mut c = kdsr_converter::quantize::CalibOptions::new(calib_dir());
    c.max_images = Some(CALIB_IMAGES);
    c.crop = (48, 48);
    c
}

/// The crops of [`calib_options`].
pub fn calib_crops() -> Vec<Planar> {
    calib_options().crops(4).unwrap()
}

/// The center `h × w` crop of Set5 `baby.png` (a real LR test image, not used for calibration).
pub fn baby_crop(h: usize, w: usize) -> Planar {
    let img = kdsr_converter::idr_source::load_rgb(&data("Set5/baby.png")).unwrap();
    kdsr_converter::quantize::calibrate::center_crop(&img, (h, w)).unwrap()
}
