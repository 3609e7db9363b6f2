//! Reflect-padded blur (DASR/KDSR `BatchBlur`, Real-ESRGAN `filter2D`) against the reference
//! vectors, and the separable fast path against the direct filter.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use kdsr_core::pipeline::blur::{
    blur_reflect, blur_separable, correlate_valid, filter2d, reflect_pad, separable_factors,
};
use kdsr_core::pipeline::kernels::Kernel;
use kdsr_core::{Error, Planar};
use proptest::prelude::*;

use common::{assert_close, image, max_abs_diff, max_err_vs, npy_kernel, st_image, st_kernel};

#[test]
fn reflect_pad_does_not_repeat_the_edge() {
    // One channel, 3x4: values 0..12.
    let img = Planar::new(1, 3, 4, (0..12).map(|v| v as f32).collect()).expect("img");
    let p = reflect_pad(&img, 2).expect("pad");
    assert_eq!(p.shape(), [1, 7, 8]);
    // Row -2 → row 2, row -1 → row 1; columns -2,-1 → 2,1 and 4,5 → 2,1.
    let row = |y: usize| -> Vec<f32> { (0..8).map(|x| p.at(0, y, x)).collect() };
    assert_eq!(row(0), [10., 9., 8., 9., 10., 11., 10., 9.]);
    assert_eq!(row(1), [6., 5., 4., 5., 6., 7., 6., 5.]);
    assert_eq!(row(2), [2., 1., 0., 1., 2., 3., 2., 1.]);
    assert_eq!(row(6), [2., 1., 0., 1., 2., 3., 2., 1.]);
    assert_eq!(reflect_pad(&img, 0).expect("pad 0"), img);
}

#[test]
fn blur_iso26_matches_dasr_on_0_255_data() {
    let img = image("in_img_u8.npy", 1.0);
    let k = npy_kernel("k_dasr_iso21_f32.npy", 4);
    let out = blur_reflect(&img, &k).expect("blur");
    assert_close(&out, "classic_iso2.6_hr_blur_f32.npy", 1e-3);
    assert_eq!(filter2d(&img, &k).expect("filter2d"), out);
    // The same through the explicit steps.
    let manual = correlate_valid(&reflect_pad(&img, 10).expect("pad"), &k).expect("corr");
    assert_eq!(manual, out);
}

#[test]
fn blur_iso26_matches_kdsr_on_0_1_data() {
    let file = "degradation_and_metrics.safetensors";
    let hr = st_image(file, "hr");
    let k = st_kernel("kernel.iso_gaussian8", 4);
    let want = st_image(file, "blur_iso2.6_hr");
    let out = blur_reflect(&hr, &k).expect("blur");
    let err = max_abs_diff(out.data(), want.data());
    eprintln!("blur_iso2.6_hr: max abs error {err:.3e} (tolerance 1e-6)");
    assert!(err <= 1e-6, "blur_iso2.6_hr: {err:e}");
}

#[test]
fn separable_path_close_to_direct_on_the_gaussian() {
    // The f32 isotropic kernel is rank 1 to rounding; its factors give the fast path.
    let k = npy_kernel("k_dasr_iso21_f32.npy", 4);
    let (kx, ky) = separable_factors(&k, 1e-7).expect("isotropic Gaussian is separable");
    assert_eq!((kx.len(), ky.len()), (21, 21));
    let img = image("in_img_u8.npy", 255.0);
    let direct = blur_reflect(&img, &k).expect("direct");
    let sep = blur_separable(&img, &kx, &ky).expect("separable");
    let err = max_abs_diff(direct.data(), sep.data());
    eprintln!("separable vs direct, sigma 2.6, [0,1] data: max abs diff {err:.3e}");
    assert!(err <= 2e-6, "{err:e}");
    // Also against the reference blur (0..255 units).
    let img255 = image("in_img_u8.npy", 1.0);
    let sep255 = blur_separable(&img255, &kx, &ky).expect("separable");
    let err = max_err_vs(&sep255, "classic_iso2.6_hr_blur_f32.npy");
    eprintln!("separable vs classic_iso2.6_hr_blur_f32 (0..255): max abs error {err:.3e}");
    assert!(err <= 1e-3, "{err:e}");
    // The anisotropic kernel is not separable.
    let aniso = npy_kernel("k_dasr_aniso21_f32.npy", 2);
    assert!(separable_factors(&aniso, 1e-6).is_none());
}

#[test]
fn errors_do_not_panic() {
    let img = Planar::filled(3, 10, 12, 0.5).expect("img");
    let k21 = Kernel::new(21, vec![1.0 / 441.0; 441]).expect("k");
    // Pad 10 needs at least 11 pixels each way.
    assert!(matches!(
        blur_reflect(&img, &k21),
        Err(Error::TooSmall { min_height: 11, .. })
    ));
    assert!(matches!(reflect_pad(&img, 10), Err(Error::TooSmall { .. })));
    assert!(matches!(reflect_pad(&img, 12), Err(Error::TooSmall { .. })));
    assert!(reflect_pad(&img, 9).is_ok());
    assert!(matches!(
        correlate_valid(&img, &k21),
        Err(Error::TooSmall { .. })
    ));
    let taps = [0.25f32, 0.5, 0.25];
    assert!(blur_separable(&img, &[0.5, 0.5], &taps).is_err());
    assert!(blur_separable(&img, &taps, &[]).is_err());
    assert!(blur_separable(&img, &taps, &[f32::NAN, 1.0, 0.0]).is_err());
    let long = vec![1.0 / 21.0; 21];
    assert!(matches!(
        blur_separable(&img, &taps, &long),
        Err(Error::TooSmall { .. })
    ));
    assert!(blur_separable(&img, &long, &taps).is_ok());
    assert!(blur_separable(&Planar::filled(1, 11, 3, 1.0).expect("img"), &taps, &long).is_ok());
}

#[test]
fn identity_and_constant() {
    let mut w = vec![0.0; 9];
    w[4] = 1.0;
    let id = Kernel::new(3, w).expect("k");
    let img = Planar::new(2, 4, 5, (0..40).map(|v| v as f32 * 0.1).collect()).expect("img");
    assert_eq!(blur_reflect(&img, &id).expect("blur"), img);
    let k = npy_kernel("k_dasr_aniso21_f32.npy", 2);
    let c = Planar::filled(3, 25, 30, 0.7).expect("c");
    let out = blur_reflect(&c, &k).expect("blur");
    assert!(out.data().iter().all(|v| (v - 0.7).abs() < 1e-6));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, failure_persistence: None, ..ProptestConfig::default() })]

    /// For an outer-product kernel the separable path equals the direct 2-D correlation.
    #[test]
    fn separable_equals_direct_for_outer_products(
        (kx, ky) in (1usize..6).prop_flat_map(|m| (
            proptest::collection::vec(-0.5f32..1.0, m),
            proptest::collection::vec(-0.5f32..1.0, m),
        )),
        h in 5usize..20,
        w in 5usize..20,
        seed in any::<u64>(),
    ) {
        // Odd lengths 1, 3, 5, 7, 9 (asymmetric taps: the direction of correlation matters).
        let make_odd = |v: &[f32]| -> Vec<f32> {
            let mut t = v.to_vec();
            t.extend(v.iter().skip(1).map(|x| 0.5 - x));
            t
        };
        let (kx, ky) = (make_odd(&kx), make_odd(&ky));
        let n = kx.len();
        let mut weights = Vec::with_capacity(n * n);
        for a in &ky {
            for b in &kx {
                weights.push(a * b);
            }
        }
        let kernel = Kernel::new(n, weights).expect("kernel");
        let mut state = seed | 1;
        let data: Vec<f32> = (0..3 * h * w)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 40) as f32 / (1u64 << 24) as f32
            })
            .collect();
        let img = Planar::new(3, h, w, data).expect("img");
        let direct = blur_reflect(&img, &kernel).expect("direct");
        let sep = blur_separable(&img, &kx, &ky).expect("separable");
        let err = max_abs_diff(direct.data(), sep.data());
        prop_assert!(err <= 1e-5, "{}", err);
    }
}
