//! The camera degradation (`pipeline::camera`): shot-noise statistics, the JPEG round trip
//! through the `image` codec, the per-image draws, and the `camera` evaluation suite's
//! above-bicubic counts.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use kdsr_core::Planar;
use kdsr_core::eval::{CaseDegradation, EvalImage, camera_cases, evaluate_with};
use kdsr_core::metrics::{MetricVariant, evaluate_pair};
use kdsr_core::pipeline::camera::{CameraDegradation, add_shot_noise, jpeg_roundtrip};
use kdsr_core::pipeline::resize::{BicubicVariant, imresize};
use rand::SeedableRng;
use rand::rngs::StdRng;

fn mean_std(v: &[f32]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().map(|x| f64::from(*x)).sum::<f64>() / n;
    let var = v.iter().map(|x| (f64::from(*x) - m).powi(2)).sum::<f64>() / n;
    (m, var.sqrt())
}

/// A smooth colour image with some edges, [0, 1].
fn test_image(h: usize, w: usize) -> Planar {
    let mut d = Vec::with_capacity(3 * h * w);
    for c in 0..3 {
        for y in 0..h {
            for x in 0..w {
                let fx = x as f32 / w as f32;
                let fy = y as f32 / h as f32;
                let edge = if (x / 16 + y / 16) % 2 == 0 { 0.2 } else { 0.0 };
                d.push((0.2 + 0.5 * fx * (c as f32 + 1.0) / 3.0 + 0.2 * fy + edge).min(1.0));
            }
        }
    }
    Planar::new(3, h, w, d).unwrap()
}

#[test]
fn shot_noise_has_the_level_at_mid_grey_and_scales_with_the_square_root_of_intensity() {
    let mut rng = StdRng::seed_from_u64(1);
    for (x, level) in [(0.5f32, 10.0), (0.5, 20.0), (0.125, 20.0), (0.9, 5.0)] {
        let img = Planar::filled(3, 128, 128, x).unwrap();
        let noisy = add_shot_noise(&img, level, &mut rng).unwrap();
        let (m, s) = mean_std(noisy.data());
        let want = level / 255.0 * (f64::from(x) / 0.5).sqrt();
        // 49,152 samples: the std estimate is within ~1 %; the Poisson discreteness adds < 1 %.
        assert!(
            (m - f64::from(x)).abs() < 0.003,
            "x {x} level {level}: mean {m}"
        );
        assert!(
            (s / want - 1.0).abs() < 0.03,
            "x {x} level {level}: std {s} want {want}"
        );
    }
    let img = test_image(32, 32);
    assert_eq!(add_shot_noise(&img, 0.0, &mut rng).unwrap(), img);
    assert!(add_shot_noise(&img, -1.0, &mut rng).is_err());
    assert!(add_shot_noise(&img, f64::NAN, &mut rng).is_err());
}

#[test]
fn jpeg_round_trip_loses_more_at_lower_quality_and_keeps_the_size() {
    let img = test_image(48, 40).map(kdsr_core::pipeline::quantize);
    let psnr = |q: u8| {
        let out = jpeg_roundtrip(&img, q).unwrap();
        assert_eq!(out.shape(), img.shape());
        // Channel-mean PSNR over RGB, no border: only the ordering matters here.
        let mse = out
            .data()
            .iter()
            .zip(img.data())
            .map(|(a, b)| f64::from(a - b).powi(2))
            .sum::<f64>()
            / img.data().len() as f64;
        -10.0 * mse.log10()
    };
    let (p30, p95) = (psnr(30), psnr(95));
    assert!(p95 > 35.0, "q95 PSNR {p95}");
    assert!(p30 < p95 - 3.0, "q30 {p30} vs q95 {p95}");
    assert!(p30 > 20.0, "q30 PSNR {p30}: not a JPEG round trip");
    let gray = Planar::filled(1, 16, 16, 0.5).unwrap();
    assert_eq!(jpeg_roundtrip(&gray, 50).unwrap().shape(), [1, 16, 16]);
    assert!(jpeg_roundtrip(&img, 0).is_err());
    assert!(jpeg_roundtrip(&img, 101).is_err());
    assert!(jpeg_roundtrip(&Planar::filled(2, 8, 8, 0.5).unwrap(), 50).is_err());
}

#[test]
fn camera_draws_stay_in_their_ranges_and_are_reproducible() {
    let d = CameraDegradation {
        scale: 4,
        blur: Some((0.5, 3.0)),
        noise: Some((5.0, 20.0)),
        poisson_prob: 0.5,
        jpeg: Some((30, 95)),
    };
    d.validate().unwrap();
    let mut rng = StdRng::seed_from_u64(7);
    let mut shots = 0;
    for _ in 0..400 {
        let k = d.draw(&mut rng);
        let (l1, l2, th) = k.blur.unwrap();
        assert!((0.5..=3.0).contains(&l1) && (0.5..=3.0).contains(&l2));
        assert!((0.0..=std::f64::consts::PI).contains(&th));
        let (n, shot) = k.noise.unwrap();
        assert!((5.0..=20.0).contains(&n));
        shots += usize::from(shot);
        assert!((30..=95).contains(&k.jpeg.unwrap()));
    }
    assert!(
        (150..=250).contains(&shots),
        "{shots} shot-noise draws of 400 at p 0.5"
    );
    let hr = test_image(64, 64);
    let a = d.apply(&hr, &mut StdRng::seed_from_u64(3)).unwrap();
    let b = d.apply(&hr, &mut StdRng::seed_from_u64(3)).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.0.shape(), [3, 16, 16]);
    // 8-bit values.
    assert!(
        a.0.data()
            .iter()
            .all(|v| (v * 255.0 - (v * 255.0).round()).abs() < 1e-4)
    );
    for bad in [
        CameraDegradation {
            scale: 5,
            ..d.clone()
        },
        CameraDegradation {
            blur: Some((0.0, 1.0)),
            ..d.clone()
        },
        CameraDegradation {
            noise: Some((10.0, 5.0)),
            ..d.clone()
        },
        CameraDegradation {
            poisson_prob: 1.5,
            ..d.clone()
        },
        CameraDegradation {
            jpeg: Some((0, 90)),
            ..d.clone()
        },
    ] {
        assert!(bad.validate().is_err(), "{bad:?}");
    }
}

#[test]
fn camera_suite_counts_images_above_bicubic() {
    let cases = camera_cases(4).unwrap();
    assert_eq!(cases.len(), 3);
    assert!(
        cases
            .iter()
            .all(|c| matches!(c.degradation, CaseDegradation::Camera(_)))
    );
    let images: Vec<EvalImage> = (0..3)
        .map(|i| EvalImage {
            name: format!("im{i}"),
            hr: test_image(64 + 16 * i, 64),
        })
        .collect();
    let bicubic = |lr: &Planar, _: &Planar| imresize(lr, 4.0, BicubicVariant::Matlab);
    let r =
        evaluate_with::<kdsr_core::Error, _>(&images, &cases, 4, MetricVariant::Kdsr, 0, bicubic)
            .unwrap();
    // The "network" is bicubic itself: never above it, the worst margin exactly 0.
    assert_eq!(r.above_bicubic, vec![(0, 0.0); 3]);
    // An oracle that returns HR is above bicubic on every image.
    let oracle = |_: &Planar, hr: &Planar| Ok::<_, kdsr_core::Error>(hr.clone());
    let r = evaluate_with(&images, &cases, 4, MetricVariant::Kdsr, 0, oracle).unwrap();
    assert!(
        r.above_bicubic
            .iter()
            .all(|(n, worst)| *n == 3 && *worst > 0.0)
    );
    let md = r.to_markdown("t");
    assert!(
        md.contains("| 3/3 |") && md.contains("| **mean** |"),
        "{md}"
    );
    // The LR really is degraded: bicubic of it is far from HR.
    let lr = cases[2]
        .degradation
        .apply(&images[0].hr, &mut StdRng::seed_from_u64(0))
        .unwrap();
    let up = imresize(&lr, 4.0, BicubicVariant::Matlab).unwrap();
    assert!(
        evaluate_pair(&up, &images[0].hr, 4, MetricVariant::Kdsr)
            .unwrap()
            .psnr
            < 40.0
    );
}
