//! Noise arithmetic against the reference vectors (`vectors-pipeline` §2 noisy image, §3 Poisson,
//! §4 classic noise step), the RNG versions' statistics, and errors.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use kdsr_core::pipeline::noise::{
    GRAY_WEIGHTS, add_classic_noise, add_classic_noise_random_level, add_classic_noise_with,
    add_gaussian_noise, add_gaussian_noise_with, add_poisson_noise, add_poisson_noise_with,
    poisson_rates, poisson_vals, to_gray,
};
use kdsr_core::pipeline::quantize_u8;
use kdsr_core::{Error, Planar};
use rand::SeedableRng;
use rand::rngs::StdRng;

use common::{image, max_abs_diff, npy};

/// `in_img_u8 / 255` as f32 (numpy `img_u8 / 255` then `astype(float32)`, the same value).
fn in_img() -> Planar {
    image("in_img_u8.npy", 255.0)
}

fn assert_err<T: std::fmt::Debug>(r: kdsr_core::Result<T>, want: &str, what: &str) {
    let ok = match &r {
        Err(Error::InvalidParameter { .. }) => want == "invalid",
        Err(Error::ShapeMismatch { .. }) => want == "shape",
        Err(Error::NonFinite { .. }) => want == "nonfinite",
        _ => false,
    };
    assert!(ok, "{what}: expected {want}, got {r:?}");
}

fn mean_std(v: impl Iterator<Item = f64>) -> (f64, f64) {
    let v: Vec<f64> = v.collect();
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n;
    (m, var.sqrt())
}

/// A 3×h×w test image with every 8-bit level 0..=255 present at least once.
fn ramp(h: usize, w: usize) -> Planar {
    let data = (0..3 * h * w)
        .map(|i| ((i * 7 + i / 13) % 256) as f32 / 255.0)
        .collect();
    Planar::new(3, h, w, data).unwrap()
}

// ---------------------------------------------------------------- reference vectors

#[test]
fn gaussian_sigma10_matches_reference_exactly() {
    let img = in_img();
    let draws = image("gauss_noise_std_normal_f32.npy", 1.0);
    let out = add_gaussian_noise_with(&img, &draws, 10.0, true, true).unwrap();
    let want = image("noisy_sigma10_f32.npy", 1.0);
    assert_eq!(out.shape(), want.shape());
    let mut sign_diffs = 0;
    for (i, (a, b)) in out.data().iter().zip(want.data()).enumerate() {
        assert_eq!(a, b, "value {i}: {a} vs {b}");
        if a.to_bits() != b.to_bits() {
            sign_diffs += 1;
        }
    }
    assert_eq!(sign_diffs, 0, "−0.0 / +0.0 differences");
    assert!(
        out.data()
            .iter()
            .any(|v| v.to_bits() == (-0.0f32).to_bits())
    );

    let u8s = image("noisy_sigma10_u8.npy", 1.0);
    for (a, b) in out.data().iter().zip(u8s.data()) {
        assert_eq!(f32::from(quantize_u8(*a)), *b);
    }
    eprintln!("noisy_sigma10_f32 / _u8: exact");
}

#[test]
fn poisson_scale2_matches_reference() {
    let img = in_img();
    assert_eq!(poisson_vals(&img).unwrap(), 256.0);
    let counts = image("poisson_counts_f64.npy", 1.0);
    let out = add_poisson_noise_with(&img, &counts, 2.0, true, false).unwrap();
    let want = image("poisson_scale2_out_f32.npy", 1.0);
    let e = max_abs_diff(out.data(), want.data());
    eprintln!("poisson_scale2_out_f32: max abs error {e:e}");
    assert!(e <= 1e-7, "{e:e}");
    // The rates the counts were drawn from: img_r · 256.
    let (shape, rates) = poisson_rates(&img, false).unwrap();
    assert_eq!(shape, img.shape());
    for (r, x) in rates.iter().zip(img.data()) {
        // numpy: f32 level (k/255 in f32) times the f64 `vals`.
        assert_eq!(*r, f64::from(f32::from(quantize_u8(*x)) / 255.0) * 256.0);
    }
}

#[test]
fn classic_noise_step_matches_reference() {
    // §4: LR (0..255 before quantisation) + 10·draws, then q8. In [0, 1] units here.
    let pre = image("classic_iso2.6_x4_lr_prequant_f32.npy", 255.0);
    let pre255 = npy("classic_iso2.6_x4_lr_prequant_f32.npy");
    let draws = image("classic_noise10_std_normal_f32.npy", 1.0);
    let draws_hwc = npy("classic_noise10_std_normal_f32.npy");
    let want = npy("classic_iso2.6_noise10_x4_lr_u8.npy");
    let noisy = add_classic_noise_with(&pre, &draws, 10.0).unwrap();
    let got_hwc = noisy.to_hwc();
    let mut off = 0;
    for i in 0..got_hwc.len() {
        let q = f64::from(quantize_u8(got_hwc[i]));
        if q != want.data[i] {
            // Only ±1 at a near-tie (within 1e-3 of .5 in 0..255 units) is acceptable.
            let exact = pre255.data[i] + 10.0 * draws_hwc.data[i];
            let tie = ((exact - exact.floor()) - 0.5).abs() < 1e-3;
            assert!(
                tie && (q - want.data[i]).abs() == 1.0,
                "value {i}: {q} vs {}",
                want.data[i]
            );
            off += 1;
        }
    }
    eprintln!("classic_iso2.6_noise10_x4_lr_u8: {off} near-tie differences");
    // No clipping or rounding in the noise step itself.
    assert!(noisy.data().iter().any(|v| *v < 0.0 || *v > 1.0));
    let d = max_abs_diff(noisy.data(), pre.data());
    assert!(d > 0.05, "noise too small: {d}");
}

// ---------------------------------------------------------------- arithmetic details

#[test]
fn gaussian_clip_and_round_modes() {
    let img = Planar::new(1, 1, 4, vec![0.0, 0.5, 0.99, 0.2]).unwrap();
    let draws = Planar::new(1, 1, 4, vec![-1.0, 0.3, 2.0, 0.0]).unwrap();
    let noise: Vec<f32> = draws.data().iter().map(|n| n * 20.0 / 255.0).collect();
    let raw: Vec<f32> = img.data().iter().zip(&noise).map(|(a, b)| a + b).collect();
    let none = add_gaussian_noise_with(&img, &draws, 20.0, false, false).unwrap();
    assert_eq!(none.data(), raw.as_slice());
    let clip = add_gaussian_noise_with(&img, &draws, 20.0, true, false).unwrap();
    let want: Vec<f32> = raw.iter().map(|v| v.clamp(0.0, 1.0)).collect();
    assert_eq!(clip.data(), want.as_slice());
    let round = add_gaussian_noise_with(&img, &draws, 20.0, false, true).unwrap();
    let want: Vec<f32> = raw
        .iter()
        .map(|v| (v * 255.0).round_ties_even() / 255.0)
        .collect();
    assert_eq!(round.data(), want.as_slice());
    assert!(round.data()[0] < 0.0 && round.data()[2] > 1.0);
    // σ = 0 leaves the image unchanged.
    let zero = add_gaussian_noise_with(&img, &draws, 0.0, false, false).unwrap();
    assert_eq!(zero, img);
}

#[test]
fn gray_draws_are_broadcast() {
    let img = ramp(8, 6);
    let plane = Planar::new(1, 8, 6, (0..48).map(|i| (i as f32 - 24.0) / 10.0).collect()).unwrap();
    let out = add_gaussian_noise_with(&img, &plane, 15.0, false, false).unwrap();
    for c in 0..3 {
        for (i, (o, x)) in out.plane(c).iter().zip(img.plane(c)).enumerate() {
            assert_eq!(*o, x + plane.data()[i] * 15.0 / 255.0, "c={c} i={i}");
        }
    }
}

#[test]
fn poisson_vals_rule() {
    let cases: [(Vec<f32>, f64); 5] = [
        (vec![0.5; 4], 1.0),
        (vec![0.0, 1.0, 0.0, 1.0], 2.0),
        (vec![0.0, 0.5, 1.0, 1.0], 4.0),
        // −0.0 and values that round to level 0 are one level; 1.2 clips to 255.
        (vec![-0.0, 0.0, 0.001, 1.2], 2.0),
        (vec![0.1, 0.2, 0.3, 0.4, 0.5], 8.0),
    ];
    for (data, want) in cases {
        let n = data.len();
        let img = Planar::new(1, 1, n, data.clone()).unwrap();
        assert_eq!(poisson_vals(&img).unwrap(), want, "{data:?}");
    }
    assert_eq!(poisson_vals(&ramp(16, 16)).unwrap(), 256.0);
}

#[test]
fn poisson_noise_arithmetic() {
    // counts == rates exactly (integer rates): zero noise before clipping.
    let img = Planar::new(1, 1, 2, vec![0.0, 1.0]).unwrap();
    assert_eq!(poisson_vals(&img).unwrap(), 2.0);
    let counts = Planar::new(1, 1, 2, vec![0.0, 2.0]).unwrap();
    let out = add_poisson_noise_with(&img, &counts, 3.0, false, false).unwrap();
    assert_eq!(out.data(), img.data());
    // noise = (counts/vals − img_r)·scale, added to the unrounded image.
    let img = Planar::new(1, 1, 2, vec![0.0012, 0.999]).unwrap();
    let counts = Planar::new(1, 1, 2, vec![1.0, 1.0]).unwrap();
    let out = add_poisson_noise_with(&img, &counts, 0.5, false, false).unwrap();
    let r1 = 1.0f32; // 0.999 rounds to level 255
    assert_eq!(out.data()[0], 0.0012 + (0.5f32 - 0.0) * 0.5);
    assert_eq!(out.data()[1], 0.999 + (0.5f32 - r1) * 0.5);
    let clipped = add_poisson_noise_with(&img, &counts, 5.0, true, false).unwrap();
    assert_eq!(clipped.data(), &[1.0, 0.0]);
}

#[test]
fn poisson_gray_uses_luma_and_broadcasts() {
    let px = Planar::new(3, 1, 1, vec![1.0, 0.0, 0.0]).unwrap();
    assert_eq!(to_gray(&px).unwrap().data(), &[GRAY_WEIGHTS[0]]);
    let px = Planar::new(3, 1, 1, vec![0.2, 0.4, 0.8]).unwrap();
    let g = 0.2989f32 * 0.2 + 0.587 * 0.4 + 0.114 * 0.8;
    assert_eq!(to_gray(&px).unwrap().data(), &[g]);

    let img = ramp(10, 12);
    let gray = to_gray(&img).unwrap();
    let (shape, rates) = poisson_rates(&img, true).unwrap();
    assert_eq!(shape, [1, 10, 12]);
    let vals = poisson_vals(&gray).unwrap();
    let counts = Planar::new(
        1,
        10,
        12,
        rates.iter().map(|r| (r + 0.7).floor() as f32).collect(),
    )
    .unwrap();
    let out = add_poisson_noise_with(&img, &counts, 1.5, false, false).unwrap();
    for i in 0..120 {
        let gr = f32::from(quantize_u8(gray.data()[i])) / 255.0;
        let noise = ((f64::from(counts.data()[i]) / vals) as f32 - gr) * 1.5;
        for c in 0..3 {
            assert_eq!(out.plane(c)[i], img.plane(c)[i] + noise, "c={c} i={i}");
        }
    }
}

// ---------------------------------------------------------------- RNG versions

#[test]
fn gaussian_rng_statistics() {
    let img = Planar::filled(3, 64, 64, 0.5).unwrap();
    let mut rng = StdRng::seed_from_u64(5);
    let out = add_gaussian_noise(&img, &mut rng, 10.0, false, false, false).unwrap();
    let (m, s) = mean_std(out.data().iter().map(|v| f64::from(*v) - 0.5));
    assert!(
        m.abs() < 4.0 * (10.0 / 255.0) / (12288f64).sqrt(),
        "mean {m}"
    );
    assert!((s * 255.0 - 10.0).abs() < 0.3, "std {}", s * 255.0);
    // Colour noise: channels differ.
    assert_ne!(out.plane(0), out.plane(1));
    // Gray noise: the same plane in every channel.
    let out = add_gaussian_noise(&img, &mut rng, 10.0, true, false, false).unwrap();
    assert_eq!(out.plane(0), out.plane(1));
    assert_eq!(out.plane(1), out.plane(2));
    let (_, s) = mean_std(out.plane(0).iter().map(|v| f64::from(*v) - 0.5));
    assert!((s * 255.0 - 10.0).abs() < 0.5, "gray std {}", s * 255.0);
    // clip keeps [0, 1].
    let out = add_gaussian_noise(&img, &mut rng, 200.0, false, true, false).unwrap();
    assert!(out.data().iter().all(|v| (0.0..=1.0).contains(v)));
    assert!(out.data().contains(&0.0) && out.data().contains(&1.0));
}

#[test]
fn poisson_rng_statistics() {
    let img = ramp(64, 64);
    let mut rng = StdRng::seed_from_u64(9);
    let scale = 2.0;
    let out = add_poisson_noise(&img, &mut rng, scale, false, false, false).unwrap();
    let noise: Vec<f64> = out
        .data()
        .iter()
        .zip(img.data())
        .map(|(o, x)| f64::from(o - x))
        .collect();
    let n = noise.len() as f64;
    // Var(count/vals) = img_r/vals; the noise is scaled by `scale`.
    let expected_var =
        img.data().iter().map(|x| f64::from(*x)).sum::<f64>() / n / 256.0 * scale * scale;
    let (m, s) = mean_std(noise.iter().copied());
    assert!(m.abs() < 4.0 * expected_var.sqrt() / n.sqrt(), "mean {m}");
    assert!(
        (s * s / expected_var - 1.0).abs() < 0.05,
        "var {} vs {expected_var}",
        s * s
    );
    // Level 0 never gets noise (rate 0).
    for (o, x) in out.data().iter().zip(img.data()) {
        if *x == 0.0 {
            assert_eq!(*o, 0.0);
        }
    }
    let out = add_poisson_noise(&img, &mut rng, scale, true, false, false).unwrap();
    let d0: Vec<f32> = out
        .plane(0)
        .iter()
        .zip(img.plane(0))
        .map(|(o, x)| o - x)
        .collect();
    let d2: Vec<f32> = out
        .plane(2)
        .iter()
        .zip(img.plane(2))
        .map(|(o, x)| o - x)
        .collect();
    let spread = d0
        .iter()
        .zip(&d2)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(
        spread < 1e-6,
        "gray noise differs across channels: {spread}"
    );
    assert!(d0.iter().any(|v| v.abs() > 0.01));
}

#[test]
fn classic_rng_versions() {
    let lr = Planar::filled(3, 32, 32, 0.5).unwrap();
    let mut rng = StdRng::seed_from_u64(2);
    let out = add_classic_noise(&lr, &mut rng, 10.0).unwrap();
    let (m, s) = mean_std(out.data().iter().map(|v| f64::from(*v) - 0.5));
    assert!(m.abs() < 0.003, "mean {m}");
    assert!((s * 255.0 - 10.0).abs() < 0.5, "std {}", s * 255.0);
    let mut levels = Vec::new();
    for _ in 0..200 {
        let (noisy, level) = add_classic_noise_random_level(&lr, &mut rng, 30.0).unwrap();
        assert!((0.0..30.0).contains(&level));
        assert_eq!(noisy.shape(), lr.shape());
        levels.push(level);
    }
    let (m, _) = mean_std(levels.into_iter());
    assert!((m - 15.0).abs() < 2.5, "mean level {m}");
    assert_eq!(add_classic_noise(&lr, &mut rng, 0.0).unwrap(), lr);
}

// ---------------------------------------------------------------- errors

#[test]
fn invalid_inputs_are_errors() {
    let img = Planar::filled(3, 4, 4, 0.5).unwrap();
    let d = Planar::filled(3, 4, 4, 0.1).unwrap();
    let wrong = [
        Planar::filled(3, 4, 5, 0.0).unwrap(),
        Planar::filled(2, 4, 4, 0.0).unwrap(),
        Planar::filled(1, 5, 4, 0.0).unwrap(),
    ];
    for w in &wrong {
        assert_err(
            add_gaussian_noise_with(&img, w, 10.0, true, false),
            "shape",
            "gauss shape",
        );
        assert_err(
            add_poisson_noise_with(&img, w, 1.0, true, false),
            "shape",
            "poisson shape",
        );
        assert_err(
            add_classic_noise_with(&img, w, 10.0),
            "shape",
            "classic shape",
        );
    }
    // The classic step has no gray broadcast.
    let plane = Planar::filled(1, 4, 4, 0.0).unwrap();
    assert_err(
        add_classic_noise_with(&img, &plane, 10.0),
        "shape",
        "classic gray",
    );

    let mut rng = StdRng::seed_from_u64(0);
    for s in [-1.0, f64::NAN, f64::INFINITY] {
        assert_err(
            add_gaussian_noise_with(&img, &d, s, true, false),
            "invalid",
            "σ",
        );
        assert_err(
            add_gaussian_noise(&img, &mut rng, s, false, true, false),
            "invalid",
            "σ rng",
        );
        assert_err(
            add_poisson_noise_with(&img, &d, s, true, false),
            "invalid",
            "scale",
        );
        assert_err(
            add_poisson_noise(&img, &mut rng, s, true, true, false),
            "invalid",
            "scale rng",
        );
        assert_err(add_classic_noise_with(&img, &d, s), "invalid", "level");
        assert_err(add_classic_noise(&img, &mut rng, s), "invalid", "level rng");
        assert_err(
            add_classic_noise_random_level(&img, &mut rng, s),
            "invalid",
            "max level",
        );
    }

    let mut bad = img.clone();
    bad.data_mut()[5] = f32::NAN;
    assert_err(
        add_gaussian_noise_with(&bad, &d, 10.0, true, false),
        "nonfinite",
        "img NaN",
    );
    assert_err(
        add_gaussian_noise_with(&img, &bad, 10.0, true, false),
        "nonfinite",
        "draw NaN",
    );
    assert_err(
        add_poisson_noise_with(&bad, &d, 1.0, true, false),
        "nonfinite",
        "poisson img",
    );
    assert_err(
        add_poisson_noise_with(&img, &bad, 1.0, true, false),
        "nonfinite",
        "counts",
    );
    assert_err(
        add_poisson_noise(&bad, &mut rng, 1.0, false, true, false),
        "nonfinite",
        "rng",
    );
    assert_err(
        add_classic_noise_with(&bad, &d, 10.0),
        "nonfinite",
        "classic lr",
    );
    assert_err(
        add_classic_noise_with(&img, &bad, 10.0),
        "nonfinite",
        "classic draws",
    );
    assert_err(poisson_vals(&bad), "nonfinite", "vals");

    let two = Planar::filled(2, 4, 4, 0.5).unwrap();
    assert_err(to_gray(&two), "invalid", "gray of 2 channels");
    assert_err(
        add_poisson_noise(&two, &mut rng, 1.0, true, true, false),
        "invalid",
        "gray 2ch",
    );
}
