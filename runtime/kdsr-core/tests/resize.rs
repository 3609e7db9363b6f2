//! MATLAB-style bicubic resizing (BasicSR `imresize` and the DASR/KDSR `bicubic` module) against
//! the reference vectors of `vectors-pipeline/` §1 and `vectors/degradation_and_metrics`.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use kdsr_core::pipeline::resize::{
    BicubicVariant, bicubic_down, bicubic_up, imresize, output_len, resize_weights,
};
use kdsr_core::{Error, Planar};
use proptest::prelude::*;

use common::{assert_close, image, max_abs_diff, npy, st_image};

/// q8 of a [0, 1] image against a u8 fixture.
fn assert_u8(got: &Planar, name: &str, max_near_ties: usize) -> usize {
    common::assert_u8(got, 255.0, name, max_near_ties)
}

fn det() -> Planar {
    image("in_det48x40_f64.npy", 1.0)
}

#[test]
fn weights_and_indices_match_basicsr() {
    for (in_len, scale, w_name, i_name) in [
        (
            48,
            0.25,
            "imresize_weights_in48_down4_f32.npy",
            "imresize_indices_in48_down4_f64.npy",
        ),
        (
            12,
            4.0,
            "imresize_weights_in12_up4_f32.npy",
            "imresize_indices_in12_up4_f64.npy",
        ),
        (
            120,
            1.0 / 3.0,
            "imresize_weights_in120_down3_f32.npy",
            "imresize_indices_in120_down3_f64.npy",
        ),
    ] {
        let (w, idx, taps) =
            resize_weights(in_len, scale, BicubicVariant::Matlab).expect("weights");
        let want_w = npy(w_name);
        let want_i = npy(i_name);
        assert_eq!(want_w.shape, [w.len() / taps, taps], "{w_name}: shape");
        assert_eq!(want_i.shape, want_w.shape, "{i_name}: shape");
        let want_w32: Vec<f32> = want_w.data.iter().map(|v| *v as f32).collect();
        let err = max_abs_diff(&w, &want_w32);
        eprintln!("{w_name}: max abs error {err:.3e}");
        assert!(err <= 1e-7, "{w_name}: {err:e}");
        let idx_f: Vec<f64> = idx.iter().map(|v| *v as f64).collect();
        assert_eq!(idx_f, want_i.data, "{i_name}");
    }
}

#[test]
fn official_weights_replicate_and_drop_first_row_zeros() {
    // 1/3: u is an integer in every row, so the columns at d·scale = ±2 (0 and 12), the last
    // one (13) and the ones at d·scale = ±1 (3 and 9; cubic(±1) = 0) are zero in every row.
    // BasicSR trims only the end columns (keeping 12 taps, the last all zero); DASR drops every
    // column that is zero in the first row.
    let (w_m, _, taps_m) = resize_weights(120, 1.0 / 3.0, BicubicVariant::Matlab).expect("matlab");
    let (w_o, idx_o, taps_o) =
        resize_weights(120, 1.0 / 3.0, BicubicVariant::Official).expect("official");
    assert_eq!((taps_m, taps_o), (12, 9));
    for (rm, ro) in w_m.chunks_exact(taps_m).zip(w_o.chunks_exact(taps_o)) {
        let nonzero: Vec<f32> = rm.iter().copied().filter(|v| *v != 0.0).collect();
        assert_eq!(nonzero, ro);
        assert_eq!(rm[11], 0.0);
    }
    // Replicated borders: indices clamped to the image.
    let (_, idx, taps) = resize_weights(48, 0.25, BicubicVariant::Official).expect("official");
    assert_eq!(taps, 16);
    assert_eq!(&idx[..8], &[0, 0, 0, 0, 0, 0, 0, 1]);
    assert!(idx_o.iter().all(|i| *i < 120));
}

#[test]
fn imresize_det_matches_basicsr() {
    let det = det();
    let down = imresize(&det, 0.25, BicubicVariant::Matlab).expect("down");
    assert_close(&down, "imresize_det_down4_f32.npy", 2e-6);
    let up = imresize(&det, 4.0, BicubicVariant::Matlab).expect("up");
    assert_close(&up, "imresize_det_up4_f32.npy", 2e-6);
    let down_up = imresize(&down, 4.0, BicubicVariant::Matlab).expect("down up");
    assert_close(&down_up, "imresize_det_down4_up4_f32.npy", 2e-6);
}

#[test]
fn imresize_img_matches_basicsr_f32_and_u8() {
    let img = image("in_img_u8.npy", 255.0);
    for (scale, stem, near) in [
        (0.5, "imresize_img_down2", 10),
        (1.0 / 3.0, "imresize_img_down3", 3),
        (0.25, "imresize_img_down4", 5),
    ] {
        let out = imresize(&img, scale, BicubicVariant::Matlab).expect("resize");
        assert_close(&out, &format!("{stem}_f32.npy"), 2e-6);
        assert_u8(&out, &format!("{stem}_u8.npy"), near);
    }
    let lr = image("imresize_img_down4_u8.npy", 255.0);
    let up = imresize(&lr, 4.0, BicubicVariant::Matlab).expect("up");
    assert_close(&up, "imresize_img_down4_u8_up4_f32.npy", 2e-6);
    assert_u8(&up, "imresize_img_down4_u8_up4_u8.npy", 58);
}

#[test]
fn official_bicubic_matches_dasr_module() {
    let det = det();
    let out = imresize(&det, 0.25, BicubicVariant::Official).expect("det");
    assert_close(&out, "dasr_bicubic_det_down4_f32.npy", 2e-6);
    assert_eq!(bicubic_down(&det, 4).expect("bicubic_down"), out);

    let img255 = image("in_img_u8.npy", 1.0);
    let out = imresize(&img255, 0.25, BicubicVariant::Official).expect("img");
    assert_close(&out, "dasr_bicubic_img_down4_f32.npy", 5e-4);
}

#[test]
fn official_bicubic_matches_kdsr_safetensors() {
    let file = "degradation_and_metrics.safetensors";
    let hr = st_image(file, "hr");
    let want_down = st_image(file, "bicubic_down_x4_noquant");
    let down = bicubic_down(&hr, 4).expect("down");
    let err = max_abs_diff(down.data(), want_down.data());
    eprintln!("bicubic_down_x4_noquant: max abs error {err:.3e}");
    assert!(err <= 1e-6, "bicubic_down_x4_noquant: {err:e}");
    // The Matlab variant differs at the borders, so the fixture really is the official module.
    let matlab = imresize(&hr, 0.25, BicubicVariant::Matlab).expect("matlab");
    assert!(max_abs_diff(matlab.data(), want_down.data()) > 1e-4);

    // ×4 of the fixture's own LR tensor.
    let want_up = st_image(file, "bicubic_up_x4_of_that_noquant");
    let up = bicubic_up(&want_down, 4).expect("up");
    let err = max_abs_diff(up.data(), want_up.data());
    eprintln!("bicubic_up_x4_of_that_noquant: max abs error {err:.3e}");
    assert!(err <= 1e-6, "bicubic_up_x4_of_that_noquant: {err:e}");
    let matlab = imresize(&want_down, 4.0, BicubicVariant::Matlab).expect("matlab up");
    assert!(max_abs_diff(matlab.data(), want_up.data()) > 1e-4);
}

#[test]
fn output_sizes_follow_ceil_and_floor() {
    assert_eq!(
        output_len(10, 0.25, BicubicVariant::Matlab).expect("len"),
        3
    );
    assert_eq!(
        output_len(10, 0.25, BicubicVariant::Official).expect("len"),
        2
    );
    assert_eq!(
        output_len(120, 1.0 / 3.0, BicubicVariant::Official).expect("len"),
        40
    );
    let img = Planar::filled(1, 10, 7, 0.5).expect("img");
    let m = imresize(&img, 0.5, BicubicVariant::Matlab).expect("m");
    assert_eq!(m.shape(), [1, 5, 4]);
    let o = imresize(&img, 0.5, BicubicVariant::Official).expect("o");
    assert_eq!(o.shape(), [1, 5, 3]);
}

#[test]
fn errors_do_not_panic() {
    let img = Planar::filled(3, 8, 8, 0.5).expect("img");
    for v in [BicubicVariant::Matlab, BicubicVariant::Official] {
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert!(
                matches!(imresize(&img, bad, v), Err(Error::InvalidParameter { .. })),
                "{v:?} scale {bad}"
            );
            assert!(resize_weights(8, bad, v).is_err());
        }
        assert!(resize_weights(0, 0.5, v).is_err());
        assert!(imresize(&img, 1e-300, v).is_err());
        assert!(imresize(&img, 1e300, v).is_err());
    }
    // Floor size 0.
    let tiny = Planar::filled(1, 3, 3, 0.5).expect("tiny");
    assert!(matches!(
        imresize(&tiny, 0.25, BicubicVariant::Official),
        Err(Error::TooSmall { .. })
    ));
    assert!(matches!(
        bicubic_down(&img, 5),
        Err(Error::UnsupportedScale { scale: 5 })
    ));
    assert!(matches!(
        bicubic_up(&img, 1),
        Err(Error::UnsupportedScale { scale: 1 })
    ));
}

#[test]
fn tiny_images_mirror_and_replicate_safely() {
    // Kernels wider than the image: the indices stay in range, the constant is preserved.
    for v in [BicubicVariant::Matlab, BicubicVariant::Official] {
        for (len, scale) in [(1, 4.0), (2, 0.5), (1, 1.0), (3, 0.25), (5, 1.0 / 3.0)] {
            if let Ok((w, idx, taps)) = resize_weights(len, scale, v) {
                assert!(idx.iter().all(|i| *i < len));
                for row in w.chunks_exact(taps) {
                    let s: f32 = row.iter().sum();
                    assert!((s - 1.0).abs() < 1e-6, "{v:?} {len} {scale}: {s}");
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

    /// Every row of weights sums to 1, so a constant image stays constant. For the official
    /// variant this holds for the scales the references use it with (1/s and s): at other
    /// downscaling factors its "drop the columns that are zero in the first row" rule can drop
    /// taps that are non-zero in later rows, exactly as the torch module does.
    #[test]
    fn constant_images_stay_constant(
        value in -1.0f32..2.0,
        h in 4usize..40,
        w in 4usize..40,
        scale_i in 0usize..8,
        official in any::<bool>(),
    ) {
        let scales = [0.25, 1.0 / 3.0, 0.5, 2.0, 3.0, 4.0, 0.6, 1.5];
        let scale = scales[if official { scale_i % 6 } else { scale_i }];
        let variant = if official { BicubicVariant::Official } else { BicubicVariant::Matlab };
        let img = Planar::filled(2, h, w, value).expect("img");
        let out = imresize(&img, scale, variant).expect("resize");
        for v in out.data() {
            prop_assert!((v - value).abs() <= 1e-6 * value.abs().max(1.0), "{} vs {}", v, value);
        }
    }
}
