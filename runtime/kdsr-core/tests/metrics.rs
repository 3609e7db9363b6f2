//! Metrics against the BasicSR and official KDSR/DASR reference values
//! (`vectors-pipeline/metrics.json`, the `ycbcr_*` vectors and `vectors/degradation_and_metrics`).

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use common::{image, npy, pipeline, st_image};
use kdsr_core::metrics::{MetricVariant, evaluate_pair, psnr, rgb_to_y, rgb_to_y_u8, ssim};
use kdsr_core::{Error, Planar};
use proptest::prelude::*;

const BASICSR_PSNR_TOL: f64 = 1e-5;
const BASICSR_SSIM_TOL: f64 = 1e-6;
const KDSR_PSNR_TOL: f64 = 1e-4;
const KDSR_SSIM_TOL: f64 = 1e-6;

use MetricVariant::{BasicSr, Kdsr};

fn metrics_json() -> serde_json::Value {
    let path = pipeline("metrics.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("metrics.json")
}

/// A reference value: a number, or `"inf"`.
fn reference(json: &serde_json::Value, pair: &str, key: &str) -> f64 {
    match &json[pair][key] {
        serde_json::Value::Number(n) => n.as_f64().expect("f64"),
        serde_json::Value::String(s) if s == "inf" => f64::INFINITY,
        other => panic!("{pair}.{key}: not a number: {other}"),
    }
}

/// An 8-bit HWC `.npy` image as a [0, 1] [`Planar`] (`f32(k) / 255`).
fn img(name: &str) -> Planar {
    image(name, 255.0)
}

/// The pairs of metrics.json: (key, second image). The first image is always `in_img_u8`.
fn pairs() -> Vec<(&'static str, Planar)> {
    vec![
        ("bicubic_down4_up4", img("imresize_img_down4_u8_up4_u8.npy")),
        ("noisy_sigma10", img("noisy_sigma10_u8.npy")),
        ("identical", img("in_img_u8.npy")),
    ]
}

/// Swaps channels 0 and 2 (RGB ↔ BGR).
fn swap_rb(img: &Planar) -> Planar {
    let mut out = img.clone();
    let n = img.height() * img.width();
    out.data_mut()[..n].copy_from_slice(img.plane(2));
    out.data_mut()[2 * n..].copy_from_slice(img.plane(0));
    out
}

fn check(label: &str, got: f64, want: f64, tol: f64) {
    if want.is_infinite() {
        assert_eq!(got, want, "{label}: got {got}, want {want}");
        println!("{label}: got {got}, want {want}, exact");
        return;
    }
    let d = (got - want).abs();
    println!("{label}: got {got:.12}, want {want:.12}, |Δ| = {d:.3e} (tol {tol:e})");
    assert!(
        d <= tol,
        "{label}: got {got}, want {want}, |Δ| = {d:e} > {tol:e}"
    );
}

#[test]
fn eight_bit_values_survive_the_0_255_round_trip() {
    // The metrics take f32(v · 255) as the 0..255 value; for 8-bit data k/255 it must be exact.
    for k in 0..=255u8 {
        let v = f32::from(k) / 255.0;
        assert_eq!(v * 255.0, f32::from(k), "k = {k}");
    }
}

#[test]
fn basicsr_metrics_match_metrics_json() {
    let json = metrics_json();
    let a = img("in_img_u8.npy");
    for (pair, b) in pairs() {
        for (x, y, order) in [(&a, &b, "a,b"), (&b, &a, "b,a")] {
            let l = |k: &str| format!("{pair}.{k} ({order})");
            check(
                &l("psnr_y_crop4"),
                psnr(x, y, 4, true, BasicSr).unwrap(),
                reference(&json, pair, "psnr_y_crop4"),
                BASICSR_PSNR_TOL,
            );
            check(
                &l("ssim_y_crop4"),
                ssim(x, y, 4, true, BasicSr).unwrap(),
                reference(&json, pair, "ssim_y_crop4"),
                BASICSR_SSIM_TOL,
            );
            check(
                &l("psnr_rgb_crop4"),
                psnr(x, y, 4, false, BasicSr).unwrap(),
                reference(&json, pair, "psnr_rgb_crop4"),
                BASICSR_PSNR_TOL,
            );
            check(
                &l("ssim_rgb_crop4"),
                ssim(x, y, 4, false, BasicSr).unwrap(),
                reference(&json, pair, "ssim_rgb_crop4"),
                BASICSR_SSIM_TOL,
            );
        }
    }
}

#[test]
fn channel_order_matters_bgr_swapped_data_gives_the_wrong_usage_number() {
    let json = metrics_json();
    let a = img("in_img_u8.npy");
    for (pair, b) in pairs() {
        // BasicSR fed RGB arrays as if they were BGR == our RGB code fed channel-swapped data.
        let wrong = psnr(&swap_rb(&a), &swap_rb(&b), 4, true, BasicSr).unwrap();
        check(
            &format!("{pair}.psnr_y_crop4_rgb_passed_as_bgr"),
            wrong,
            reference(&json, pair, "psnr_y_crop4_rgb_passed_as_bgr"),
            BASICSR_PSNR_TOL,
        );
        if pair != "identical" {
            let right = reference(&json, pair, "psnr_y_crop4");
            assert!(
                (wrong - right).abs() > 1e-3,
                "{pair}: swapping channels should change the Y PSNR ({wrong} vs {right})"
            );
        }
    }
}

#[test]
fn kdsr_metrics_match_metrics_json() {
    let json = metrics_json();
    let hr = img("in_img_u8.npy");
    for (pair, sr) in pairs() {
        let p = psnr(&sr, &hr, 4, true, Kdsr).unwrap();
        let s = ssim(&sr, &hr, 4, true, Kdsr).unwrap();
        if pair == "identical" {
            // The official code raises (log10 of 0); documented choice: +inf.
            assert_eq!(p, f64::INFINITY);
        } else {
            check(
                &format!("{pair}.dasr_calc_psnr_benchmark_scale4"),
                p,
                reference(&json, pair, "dasr_calc_psnr_benchmark_scale4"),
                KDSR_PSNR_TOL,
            );
            check(
                &format!("{pair}.kdsr_calc_psnr_benchmark_scale4"),
                p,
                reference(&json, pair, "kdsr_calc_psnr_benchmark_scale4"),
                KDSR_PSNR_TOL,
            );
            // PSNR is symmetric in the official code too.
            assert_eq!(p, psnr(&hr, &sr, 4, true, Kdsr).unwrap());
        }
        check(
            &format!("{pair}.dasr_calc_ssim_benchmark_scale4"),
            s,
            reference(&json, pair, "dasr_calc_ssim_benchmark_scale4"),
            KDSR_SSIM_TOL,
        );
    }
}

#[test]
fn evaluate_pair_reproduces_both_benchmark_protocols() {
    let json = metrics_json();
    let hr = img("in_img_u8.npy");
    for (pair, sr) in pairs() {
        let b = evaluate_pair(&sr, &hr, 4, BasicSr).unwrap();
        assert_eq!(b.variant, BasicSr);
        check(
            &format!("evaluate_pair basicsr {pair} psnr"),
            b.psnr,
            reference(&json, pair, "psnr_y_crop4"),
            BASICSR_PSNR_TOL,
        );
        check(
            &format!("evaluate_pair basicsr {pair} ssim"),
            b.ssim,
            reference(&json, pair, "ssim_y_crop4"),
            BASICSR_SSIM_TOL,
        );
        let k = evaluate_pair(&sr, &hr, 4, Kdsr).unwrap();
        assert_eq!(k.variant, Kdsr);
        if pair == "identical" {
            assert_eq!(k.psnr, f64::INFINITY);
        } else {
            check(
                &format!("evaluate_pair kdsr {pair} psnr"),
                k.psnr,
                reference(&json, pair, "kdsr_calc_psnr_benchmark_scale4"),
                KDSR_PSNR_TOL,
            );
        }
        check(
            &format!("evaluate_pair kdsr {pair} ssim"),
            k.ssim,
            reference(&json, pair, "dasr_calc_ssim_benchmark_scale4"),
            KDSR_SSIM_TOL,
        );
    }
}

#[test]
fn y_channel_matches_rgb2ycbcr_vectors() {
    let a = img("in_img_u8.npy");

    let want_u8 = npy("ycbcr_y_img_u8.npy");
    assert_eq!(want_u8.shape, vec![120, 96]);
    let got_u8 = rgb_to_y_u8(&a).unwrap();
    let mismatches = got_u8
        .iter()
        .zip(&want_u8.data)
        .filter(|(g, w)| f64::from(**g) != **w)
        .count();
    println!(
        "ycbcr_y_img_u8: {mismatches} mismatches of {}",
        got_u8.len()
    );
    assert_eq!(mismatches, 0);

    let y = rgb_to_y(&a).unwrap();
    assert_eq!(y.shape(), [1, 120, 96]);
    let want_f32 = npy("ycbcr_y_img_f32.npy");
    let d = y
        .data()
        .iter()
        .zip(&want_f32.data)
        .map(|(g, w)| (f64::from(*g) - w).abs())
        .fold(0.0, f64::max);
    println!("ycbcr_y_img_f32: max |Δ| = {d:e}");
    assert!(d <= 1e-6, "{d}");

    // The plane the BasicSR metrics see: f32(Y) · 255 in f32.
    let want_metric = npy("ycbcr_y_metric_img_f32.npy");
    let d = y
        .data()
        .iter()
        .zip(&want_metric.data)
        .map(|(g, w)| (f64::from(*g * 255.0) - w).abs())
        .fold(0.0, f64::max);
    println!("ycbcr_y_metric_img_f32: max |Δ| = {d:e}");
    assert!(d <= 1e-4, "{d}");

    // Range: [16/255, 235/255] for [0, 1] input.
    let extremes = Planar::new(3, 1, 2, vec![0.0, 1.0, 0.0, 1.0, 0.0, 1.0]).unwrap();
    let y = rgb_to_y(&extremes).unwrap();
    assert!((f64::from(y.data()[0]) - 16.0 / 255.0).abs() < 1e-7);
    assert!((f64::from(y.data()[1]) - 235.0 / 255.0).abs() < 1e-6);
    assert_eq!(rgb_to_y_u8(&extremes).unwrap(), vec![16, 235]);
}

#[test]
fn kdsr_official_metric_vectors_match_the_manifest() {
    let path = common::vectors("degradation_and_metrics_manifest.json");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("manifest")).expect("json");
    let get = |k: &str| {
        manifest[k]
            .as_f64()
            .unwrap_or_else(|| panic!("manifest {k}"))
    };
    let hr = st_image("degradation_and_metrics.safetensors", "metric.hr");
    let sr = st_image("degradation_and_metrics.safetensors", "metric.sr");
    assert_eq!(sr.shape(), [3, 40, 40]);

    // Are the stored images already 8-bit? (Then quantising changes nothing.)
    let off_grid = |p: &Planar| {
        p.data()
            .iter()
            .filter(|v| ((**v * 255.0).round() - **v * 255.0).abs() > 1e-3)
            .count()
    };
    println!("metric.sr off the 8-bit grid: {}", off_grid(&sr));
    println!("metric.hr off the 8-bit grid: {}", off_grid(&hr));

    let y4 = get("psnr_stage4_utility.calc_psnr(benchmark=True, scale=4)");
    let teacher = get("psnr_stage3_utility3.calc_psnr(scale=4)");
    let rgb10 = get("psnr_stage4_utility.calc_psnr(benchmark=False, scale=4)");
    let ssim4 = get("ssim_utility.calc_ssim(x255, scale=4, benchmark=True)");

    let p = psnr(&sr, &hr, 4, true, Kdsr).unwrap();
    check("metric psnr Y border 4", p, y4, KDSR_PSNR_TOL);
    check(
        "metric psnr Y border 4 (teacher path)",
        p,
        teacher,
        KDSR_PSNR_TOL,
    );
    check(
        "metric psnr RGB border 10",
        psnr(&sr, &hr, 4 + 6, false, Kdsr).unwrap(),
        rgb10,
        KDSR_PSNR_TOL,
    );
    check(
        "metric ssim Y border 4",
        ssim(&sr, &hr, 4, true, Kdsr).unwrap(),
        ssim4,
        KDSR_SSIM_TOL,
    );

    let m = evaluate_pair(&sr, &hr, 4, Kdsr).unwrap();
    check("metric evaluate_pair psnr", m.psnr, y4, KDSR_PSNR_TOL);
    check("metric evaluate_pair ssim", m.ssim, ssim4, KDSR_SSIM_TOL);
    // For information: BasicSR on the same pair.
    let b = evaluate_pair(&sr, &hr, 4, BasicSr).unwrap();
    println!("metric pair, basicsr: psnr {} ssim {}", b.psnr, b.ssim);
}

#[test]
fn gray_images_are_measured_as_replicated_rgb() {
    let a = img("in_img_u8.npy");
    let b = img("noisy_sigma10_u8.npy");
    let gray = |p: &Planar| Planar::new(1, p.height(), p.width(), p.plane(1).to_vec()).unwrap();
    let rep = |p: &Planar| {
        let g = p.plane(1);
        Planar::new(3, p.height(), p.width(), [g, g, g].concat()).unwrap()
    };
    let (ga, gb) = (gray(&a), gray(&b));
    let (ra, rb) = (rep(&a), rep(&b));
    for v in [BasicSr, Kdsr] {
        assert_eq!(
            psnr(&ga, &gb, 4, true, v).unwrap(),
            psnr(&ra, &rb, 4, true, v).unwrap()
        );
        assert_eq!(
            ssim(&ga, &gb, 4, true, v).unwrap(),
            ssim(&ra, &rb, 4, true, v).unwrap()
        );
        // Without the Y channel a gray image is its one channel.
        let p1 = psnr(&ga, &gb, 4, false, v).unwrap();
        let p3 = psnr(&ra, &rb, 4, false, v).unwrap();
        assert!((p1 - p3).abs() < 1e-9, "{v}: {p1} vs {p3}");
    }
    let y = rgb_to_y(&Planar::new(1, 1, 1, vec![0.5]).unwrap()).unwrap();
    assert!((f64::from(y.data()[0]) - (16.0 + 219.0 * 0.5) / 255.0).abs() < 1e-6);
}

#[test]
fn variant_names() {
    assert_eq!(BasicSr.to_string(), "basicsr");
    assert_eq!(Kdsr.to_string(), "kdsr-official");
    assert_eq!("basicsr".parse::<MetricVariant>().unwrap(), BasicSr);
    assert_eq!("kdsr-official".parse::<MetricVariant>().unwrap(), Kdsr);
    assert!("psnr".parse::<MetricVariant>().is_err());
    assert_eq!(serde_json::to_string(&Kdsr).unwrap(), "\"kdsr-official\"");
}

#[test]
fn errors_are_typed() {
    let a = Planar::filled(3, 20, 20, 0.5).unwrap();
    let b = Planar::filled(3, 20, 21, 0.5).unwrap();
    for v in [BasicSr, Kdsr] {
        assert!(matches!(
            psnr(&a, &b, 0, true, v),
            Err(Error::ShapeMismatch { .. })
        ));
        assert!(matches!(
            ssim(&a, &b, 0, true, v),
            Err(Error::ShapeMismatch { .. })
        ));
        // PSNR needs one pixel after the border, SSIM an 11×11 window.
        assert!(psnr(&a, &a, 9, true, v).is_ok());
        assert!(matches!(
            psnr(&a, &a, 10, true, v),
            Err(Error::TooSmall { .. })
        ));
        assert!(ssim(&a, &a, 4, true, v).is_ok());
        assert!(matches!(
            psnr(&a, &a, usize::MAX, true, v),
            Err(Error::TooSmall { .. })
        ));
        assert!(matches!(
            ssim(&a, &a, 5, true, v),
            Err(Error::TooSmall { .. })
        ));
        let mut nan = a.clone();
        nan.data_mut()[7] = f32::NAN;
        assert!(matches!(
            psnr(&nan, &a, 0, true, v),
            Err(Error::NonFinite { index: 7, .. })
        ));
        assert!(matches!(
            ssim(&a, &nan, 0, true, v),
            Err(Error::NonFinite { .. })
        ));
        let two = Planar::filled(2, 20, 20, 0.5).unwrap();
        assert!(matches!(
            psnr(&two, &two, 0, true, v),
            Err(Error::InvalidParameter { .. })
        ));
        assert!(matches!(
            evaluate_pair(&a, &a, 0, v),
            Err(Error::InvalidParameter { .. })
        ));
        assert!(matches!(
            evaluate_pair(&a, &b, 4, v),
            Err(Error::ShapeMismatch { .. })
        ));
    }
    assert!(matches!(
        rgb_to_y(&Planar::filled(4, 2, 2, 0.0).unwrap()),
        Err(Error::InvalidParameter { .. })
    ));
}

#[test]
fn kdsr_ssim_rounds_only_its_first_argument() {
    let hr = img("in_img_u8.npy");
    // Off-grid SR values: the KDSR variant rounds sr·255 and so ignores a sub-level offset…
    let sr_off = hr.map(|v| (v + 0.3 / 255.0).min(1.0));
    let s_sr_first = ssim(&sr_off, &hr, 4, true, Kdsr).unwrap();
    assert_eq!(s_sr_first, 1.0);
    // …but not when the off-grid image is the second argument.
    let s_swapped = ssim(&hr, &sr_off, 4, true, Kdsr).unwrap();
    assert!(s_swapped < 1.0, "{s_swapped}");
    // BasicSR rounds neither.
    assert!(ssim(&sr_off, &hr, 4, true, BasicSr).unwrap() < 1.0);
}

fn image_strategy(c: usize, h: usize, w: usize) -> impl Strategy<Value = Planar> {
    prop::collection::vec(0.0f32..=1.0, c * h * w)
        .prop_map(move |d| Planar::new(c, h, w, d).expect("shape"))
}

fn variant_strategy() -> impl Strategy<Value = MetricVariant> {
    prop_oneof![Just(BasicSr), Just(Kdsr)]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 48,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn psnr_is_symmetric(
        a in image_strategy(3, 16, 18),
        b in image_strategy(3, 16, 18),
        y in any::<bool>(),
        border in 0usize..4,
        v in variant_strategy(),
    ) {
        let p1 = psnr(&a, &b, border, y, v).unwrap();
        let p2 = psnr(&b, &a, border, y, v).unwrap();
        prop_assert_eq!(p1, p2);
    }

    #[test]
    fn ssim_of_identical_images_is_one(
        a in image_strategy(3, 16, 18),
        y in any::<bool>(),
        v in variant_strategy(),
    ) {
        // Quantised, so that KDSR's rounding of the first argument is a no-op.
        let a = a.map(kdsr_core::pipeline::quantize);
        let s = ssim(&a, &a, 2, y, v).unwrap();
        prop_assert!((s - 1.0).abs() < 1e-12, "{}", s);
        prop_assert_eq!(psnr(&a, &a, 2, y, v).unwrap(), f64::INFINITY);
    }

    #[test]
    fn ssim_is_at_most_one(
        a in image_strategy(3, 16, 18),
        b in image_strategy(3, 16, 18),
        y in any::<bool>(),
        v in variant_strategy(),
    ) {
        let s = ssim(&a, &b, 0, y, v).unwrap();
        prop_assert!(s <= 1.0 + 1e-12, "{}", s);
        prop_assert!(s >= -1.0 - 1e-12, "{}", s);
    }

    #[test]
    fn psnr_decreases_as_noise_increases(
        a in image_strategy(3, 16, 18),
        noise in prop::collection::vec(-1.0f32..1.0, 3 * 16 * 18),
        y in any::<bool>(),
        v in variant_strategy(),
    ) {
        let mut last = f64::INFINITY;
        for sigma in [0.01f32, 0.03, 0.1, 0.3] {
            let mut b = a.clone();
            for (x, n) in b.data_mut().iter_mut().zip(&noise) {
                *x = (*x + sigma * n).clamp(0.0, 1.0);
            }
            let p = psnr(&b, &a, 1, y, v).unwrap();
            prop_assert!(p <= last + 1e-9, "sigma {}: {} > {}", sigma, p, last);
            last = p;
        }
    }
}
