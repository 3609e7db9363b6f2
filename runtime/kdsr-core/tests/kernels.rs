//! Blur kernels against the reference vectors (`vectors-pipeline` §3 and the `kernel.*` tensors of
//! `vectors/degradation_and_metrics.safetensors`), their invariants, errors and Real-ESRGAN's
//! random kernel sampling.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use std::f64::consts::PI;

use kdsr_core::Error;
use kdsr_core::pipeline::kernels::{
    ANISO_TEST_KERNELS, BlurKernel, DASR_DEFAULT_ANISO, GAUSSIAN8_X2_SIGMAS, GAUSSIAN8_X4_SIGMAS,
    KERNEL_SIZE, Kernel, MixedKernelConfig, anisotropic_gaussian, anisotropic_gaussian_deg,
    bivariate_gaussian, bivariate_generalized_gaussian, bivariate_plateau, circular_lowpass_kernel,
    final_sinc, isotropic_gaussian, random_mixed_kernel, sample_mixed_kernel,
};
use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;

use common::{max_abs_diff, npy, st_tensor};

/// Largest |kernel − reference| where the reference is f64 data (compared in f64, so values far
/// below the f32 range count as their true size).
fn max_err(k: &Kernel, reference: &[f64]) -> f64 {
    assert_eq!(k.weights().len(), reference.len(), "kernel size");
    k.weights()
        .iter()
        .zip(reference)
        .map(|(a, b)| (f64::from(*a) - b).abs())
        .fold(0.0, f64::max)
}

/// The `i`-th `n x n` kernel of an `[N, n, n]` fixture.
fn slice(data: &[f64], i: usize, n: usize) -> &[f64] {
    &data[i * n * n..(i + 1) * n * n]
}

/// Checks a stack of kernels against a fixture; returns the max error over the stack.
fn check_stack(file: &str, kernels: &[Kernel], tol: f64) -> f64 {
    let r = npy(file);
    assert_eq!(r.shape, vec![kernels.len(), 21, 21], "{file} shape");
    let mut worst: f64 = 0.0;
    for (i, k) in kernels.iter().enumerate() {
        let e = max_err(k, slice(&r.data, i, 21));
        assert!(e <= tol, "{file}[{i}]: max abs error {e:e} > {tol:e}");
        worst = worst.max(e);
    }
    eprintln!("{file}: max abs error {worst:e}");
    worst
}

fn iso_sigmas() -> Vec<f64> {
    let s = npy("k_iso_sigmas_f64.npy");
    assert_eq!(s.shape, vec![10]);
    s.data
}

fn aniso_params() -> Vec<[f64; 3]> {
    let p = npy("k_aniso_params_l1_l2_thetadeg_f64.npy");
    assert_eq!(p.shape, vec![10, 3]);
    p.data.chunks_exact(3).map(|r| [r[0], r[1], r[2]]).collect()
}

fn transpose(k: &Kernel) -> Vec<f32> {
    let n = k.size();
    (0..n * n).map(|i| k.at(i % n, i / n)).collect()
}

fn assert_invalid<T: std::fmt::Debug>(r: kdsr_core::Result<T>, what: &str) {
    match r {
        Err(Error::InvalidParameter { .. }) => {}
        other => panic!("{what}: expected InvalidParameter, got {other:?}"),
    }
}

// ---------------------------------------------------------------- reference vectors

#[test]
fn dasr_isotropic_matches_reference() {
    let ks: Vec<Kernel> = iso_sigmas()
        .iter()
        .map(|s| isotropic_gaussian(21, *s).unwrap())
        .collect();
    check_stack("k_dasr_iso21_f32.npy", &ks, 1e-7);
}

#[test]
fn dasr_anisotropic_degrees_matches_reference() {
    let ks: Vec<Kernel> = aniso_params()
        .iter()
        .map(|[l1, l2, t]| anisotropic_gaussian_deg(21, *l1, *l2, *t).unwrap())
        .collect();
    check_stack("k_dasr_aniso21_f32.npy", &ks, 1e-7);
}

#[test]
fn dasr_anisotropic_radians_matches_reference() {
    let ks: Vec<Kernel> = aniso_params()
        .iter()
        .map(|[l1, l2, t]| anisotropic_gaussian(21, *l1, *l2, t.to_radians()).unwrap())
        .collect();
    check_stack("k_dasr_aniso21_f32.npy", &ks, 1e-7);
}

#[test]
fn basicsr_isotropic_matches_reference() {
    let ks: Vec<Kernel> = iso_sigmas()
        .iter()
        .map(|s| bivariate_gaussian(21, *s, *s, 0.0, true).unwrap())
        .collect();
    check_stack("k_bsr_iso21_f64.npy", &ks, 1e-7);
}

#[test]
fn basicsr_anisotropic_matches_reference() {
    let ks: Vec<Kernel> = aniso_params()
        .iter()
        .map(|[l1, l2, t]| bivariate_gaussian(21, *l1, *l2, t * PI / 180.0, false).unwrap())
        .collect();
    check_stack("k_bsr_aniso21_f64.npy", &ks, 1e-7);

    let p = npy("k_bsr_aniso21_extra_params_sx_sy_thetarad_f64.npy");
    assert_eq!(p.shape, vec![3, 3]);
    let ks: Vec<Kernel> = p
        .data
        .chunks_exact(3)
        .map(|r| bivariate_gaussian(21, r[0], r[1], r[2], false).unwrap())
        .collect();
    check_stack("k_bsr_aniso21_extra_f64.npy", &ks, 1e-7);
}

/// The two parameter rows of the generalized / plateau fixtures.
const SHAPED_ROWS: [(f64, f64, f64, bool); 2] =
    [(2.0, 2.0, 0.0, true), (2.5, 1.2, PI / 6.0, false)];

#[test]
fn basicsr_generalized_gaussian_matches_reference() {
    for (beta, file) in [
        (0.5, "k_bsr_generalized21_beta0.5_f64.npy"),
        (4.0, "k_bsr_generalized21_beta4_f64.npy"),
    ] {
        let ks: Vec<Kernel> = SHAPED_ROWS
            .iter()
            .map(|(sx, sy, t, iso)| bivariate_generalized_gaussian(21, *sx, *sy, *t, beta, *iso))
            .collect::<Result<_, _>>()
            .unwrap();
        check_stack(file, &ks, 1e-7);
    }
}

#[test]
fn basicsr_plateau_matches_reference() {
    for (beta, file) in [
        (1.0, "k_bsr_plateau21_beta1_f64.npy"),
        (2.0, "k_bsr_plateau21_beta2_f64.npy"),
    ] {
        let ks: Vec<Kernel> = SHAPED_ROWS
            .iter()
            .map(|(sx, sy, t, iso)| bivariate_plateau(21, *sx, *sy, *t, beta, *iso))
            .collect::<Result<_, _>>()
            .unwrap();
        check_stack(file, &ks, 1e-7);
    }
}

#[test]
fn circular_lowpass_matches_reference() {
    for (cutoff, size, pad, file, n) in [
        (PI / 3.0, 21, None, "k_bsr_sinc21_cutoff_pi3_f64.npy", 21),
        (PI / 2.0, 7, None, "k_bsr_sinc7_cutoff_pi2_f64.npy", 7),
        (
            PI / 2.0,
            7,
            Some(21),
            "k_bsr_sinc7_cutoff_pi2_pad21_f64.npy",
            21,
        ),
    ] {
        let r = npy(file);
        assert_eq!(r.shape, vec![n, n], "{file}");
        let k = circular_lowpass_kernel(cutoff, size, pad).unwrap();
        assert_eq!(k.size(), n);
        let e = max_err(&k, &r.data);
        eprintln!("{file}: max abs error {e:e}");
        assert!(e <= 1e-7, "{file}: {e:e}");
    }
}

#[test]
fn kdsr_safetensors_kernels_match() {
    let (shape, iso) = st_tensor(
        "degradation_and_metrics.safetensors",
        "kernel.iso_gaussian8",
    );
    assert_eq!(shape, vec![8, 21, 21]);
    let mut worst: f64 = 0.0;
    for (i, s) in GAUSSIAN8_X4_SIGMAS.iter().enumerate() {
        let k = isotropic_gaussian(21, *s).unwrap();
        let e = max_abs_diff(k.weights(), &iso[i * 441..(i + 1) * 441]);
        worst = worst.max(e);
        assert!(e <= 1e-7, "iso σ={s}: {e:e}");
    }
    eprintln!("kernel.iso_gaussian8: max abs error {worst:e}");

    // (2.0, 0.5, 0) is the third entry here, not (2.0, 0.2, 0) as in ANISO_TEST_KERNELS.
    let (shape, aniso) = st_tensor("degradation_and_metrics.safetensors", "kernel.aniso");
    assert_eq!(shape, vec![3, 21, 21]);
    let mut worst: f64 = 0.0;
    for (i, (l1, l2, t)) in [(3.5, 1.5, 30.0), (4.0, 1.5, 120.0), (2.0, 0.5, 0.0)]
        .iter()
        .enumerate()
    {
        let k = anisotropic_gaussian_deg(21, *l1, *l2, *t).unwrap();
        let e = max_abs_diff(k.weights(), &aniso[i * 441..(i + 1) * 441]);
        worst = worst.max(e);
        assert!(e <= 1e-7, "aniso ({l1}, {l2}, {t}): {e:e}");
    }
    eprintln!("kernel.aniso: max abs error {worst:e}");
}

#[test]
fn constants_match_reference_lists() {
    let s = iso_sigmas();
    assert_eq!(&s[..8], &GAUSSIAN8_X4_SIGMAS[..]);
    for (i, v) in GAUSSIAN8_X2_SIGMAS.iter().enumerate() {
        assert!(
            (v - (0.9 + 0.1 * i as f64)).abs() < 1e-12,
            "x2 σ[{i}] = {v}"
        );
    }
    let p = aniso_params();
    for (row, (l1, l2, t)) in p.iter().zip(ANISO_TEST_KERNELS.iter()) {
        assert_eq!(row, &[*l1, *l2, *t]);
    }
    let (l1, l2, t) = DASR_DEFAULT_ANISO;
    assert_eq!(p[9], [l1, l2, t]);
    assert_eq!(KERNEL_SIZE, 21);
}

#[test]
fn classic_blur_kernel_is_gaussian8_entry_4() {
    // §4 step 2: the σ = 2.6 kernel of the classic pipeline is k_dasr_iso21_f32[4].
    let r = npy("k_dasr_iso21_f32.npy");
    let k = BlurKernel::gaussian8_x4()[4].build(KERNEL_SIZE).unwrap();
    assert_eq!(k, isotropic_gaussian(21, 2.6).unwrap());
    let e = max_err(&k, slice(&r.data, 4, 21));
    assert!(e <= 1e-8, "{e:e}");
}

// ---------------------------------------------------------------- conventions and invariants

#[test]
fn x_is_the_column_offset() {
    // sx > sy at θ = 0: wider along x, i.e. along the row (columns vary fastest).
    for k in [
        bivariate_gaussian(21, 3.0, 1.0, 0.0, false).unwrap(),
        anisotropic_gaussian_deg(21, 3.0, 1.0, 0.0).unwrap(),
    ] {
        let c = 10;
        assert!(
            k.at(c, c + 3) > 10.0 * k.at(c + 3, c),
            "{:?}",
            k.at(c, c + 3)
        );
    }
    // Rotating by 90° swaps the axes: the kernel is transposed.
    let a = bivariate_gaussian(21, 3.0, 1.0, 0.0, false).unwrap();
    let b = bivariate_gaussian(21, 3.0, 1.0, PI / 2.0, false).unwrap();
    assert!(max_abs_diff(&transpose(&a), b.weights()) < 1e-7);
    // θ = 30°: the long axis points down-right (x and y grow together, y downwards).
    let k = anisotropic_gaussian_deg(21, 3.5, 1.5, 30.0).unwrap();
    assert!(
        k.at(12, 13) > k.at(8, 13),
        "{} vs {}",
        k.at(12, 13),
        k.at(8, 13)
    );
}

#[test]
fn blur_kernel_enum_builds_and_round_trips() {
    let cases = [
        (
            BlurKernel::Iso { sigma: 2.6 },
            isotropic_gaussian(21, 2.6).unwrap(),
        ),
        (
            BlurKernel::Aniso {
                lambda1: 3.5,
                lambda2: 1.5,
                theta_deg: 30.0,
            },
            anisotropic_gaussian_deg(21, 3.5, 1.5, 30.0).unwrap(),
        ),
        (
            BlurKernel::Gaussian {
                sigma_x: 2.0,
                sigma_y: 1.0,
                theta: 0.3,
                isotropic: false,
            },
            bivariate_gaussian(21, 2.0, 1.0, 0.3, false).unwrap(),
        ),
        (
            BlurKernel::GeneralizedGaussian {
                sigma_x: 2.0,
                sigma_y: 1.0,
                theta: 0.3,
                beta: 0.7,
                isotropic: false,
            },
            bivariate_generalized_gaussian(21, 2.0, 1.0, 0.3, 0.7, false).unwrap(),
        ),
        (
            BlurKernel::Plateau {
                sigma_x: 2.0,
                sigma_y: 1.0,
                theta: 0.3,
                beta: 1.5,
                isotropic: true,
            },
            bivariate_plateau(21, 2.0, 1.0, 0.3, 1.5, true).unwrap(),
        ),
        (
            BlurKernel::Sinc { cutoff: 1.0 },
            circular_lowpass_kernel(1.0, 21, None).unwrap(),
        ),
        (BlurKernel::Identity, Kernel::identity(21).unwrap()),
    ];
    for (choice, expected) in cases {
        assert_eq!(choice.build(21).unwrap(), expected, "{choice:?}");
        let json = serde_json::to_string(&choice).unwrap();
        let back: BlurKernel = serde_json::from_str(&json).unwrap();
        assert_eq!(back, choice, "{json}");
    }
    let json = serde_json::to_string(&BlurKernel::Iso { sigma: 2.6 }).unwrap();
    assert_eq!(json, r#"{"type":"iso","sigma":2.6}"#);
    assert_eq!(BlurKernel::aniso_test_set().len(), 9);
    assert_eq!(
        BlurKernel::gaussian8_x2()[0],
        BlurKernel::Iso { sigma: 0.9 }
    );
}

#[test]
fn identity_and_padding() {
    let id = Kernel::identity(21).unwrap();
    assert_eq!(id.at(10, 10), 1.0);
    assert_eq!(id.sum(), 1.0);
    let k = circular_lowpass_kernel(PI / 2.0, 7, None).unwrap();
    let p = k.pad_to(21).unwrap();
    assert_eq!(p.size(), 21);
    for i in 0..21 {
        for j in 0..21 {
            let inside = (7..14).contains(&i) && (7..14).contains(&j);
            let want = if inside { k.at(i - 7, j - 7) } else { 0.0 };
            assert_eq!(p.at(i, j), want, "({i}, {j})");
        }
    }
    // Smaller or equal target: unchanged. Even target: error.
    assert_eq!(p.pad_to(7).unwrap(), p);
    assert_eq!(k.pad_to(7).unwrap(), k);
    assert_invalid(k.pad_to(22), "pad_to 22");
    // circular_lowpass_kernel with pad_to smaller than the size does not pad.
    assert_eq!(circular_lowpass_kernel(PI / 2.0, 7, Some(5)).unwrap(), k);
}

fn point_symmetric(k: &Kernel) -> bool {
    let n = k.size();
    (0..n).all(|i| (0..n).all(|j| k.at(i, j) == k.at(n - 1 - i, n - 1 - j)))
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 48,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn kernels_sum_to_one_and_are_point_symmetric(
        half in 1usize..=12,
        sx in 0.2f64..5.0,
        sy in 0.2f64..5.0,
        theta in -3.2f64..3.2,
        beta in 0.3f64..4.0,
        cutoff in 0.5f64..3.1,
    ) {
        let n = 2 * half + 1;
        let ks = [
            isotropic_gaussian(n, sx).unwrap(),
            anisotropic_gaussian(n, sx, sy, theta).unwrap(),
            bivariate_gaussian(n, sx, sy, theta, false).unwrap(),
            bivariate_generalized_gaussian(n, sx, sy, theta, beta, false).unwrap(),
            bivariate_plateau(n, sx, sy, theta, beta, false).unwrap(),
            circular_lowpass_kernel(cutoff, n, None).unwrap(),
        ];
        for (i, k) in ks.iter().enumerate() {
            prop_assert_eq!(k.size(), n);
            prop_assert!((k.sum() - 1.0).abs() <= 1e-6, "kernel {} sums to {}", i, k.sum());
            prop_assert!(point_symmetric(k), "kernel {} is not point-symmetric", i);
        }
    }

    #[test]
    fn isotropic_families_agree(sigma in 0.2f64..5.0, theta in -3.2f64..3.2) {
        let dasr = isotropic_gaussian(21, sigma).unwrap();
        let bsr = bivariate_gaussian(21, sigma, 99.0, theta, true).unwrap();
        // DASR computes in f32: at small σ the peak nears 1 and f32 rounding of exp() reaches a
        // few ulps (~6e-8 each), so the bound is 4 ulps of the peak rather than the fixture's 1e-7.
        let e = max_abs_diff(dasr.weights(), bsr.weights());
        prop_assert!(e <= 4.0 * f64::from(f32::EPSILON), "dasr vs basicsr iso: {:e}", e);
        // λ1 == λ2: the anisotropic kernel is isotropic whatever θ.
        // (Both DASR functions compute in f32, along different paths: a few f32 ulps apart.)
        let aniso = anisotropic_gaussian(21, sigma, sigma, theta).unwrap();
        let e = max_abs_diff(dasr.weights(), aniso.weights());
        prop_assert!(e <= 2e-7, "iso vs aniso(λ, λ): {:e}", e);
        let bsr_aniso = bivariate_gaussian(21, sigma, sigma, theta, false).unwrap();
        prop_assert!(max_abs_diff(bsr.weights(), bsr_aniso.weights()) <= 1e-7);
        // β = 1 generalized Gaussian is the Gaussian.
        let g1 = bivariate_generalized_gaussian(21, sigma, sigma, 0.0, 1.0, true).unwrap();
        prop_assert!(max_abs_diff(bsr.weights(), g1.weights()) <= 1e-7);
        // Degrees and radians agree.
        let deg = anisotropic_gaussian_deg(21, sigma, 1.3, theta.to_degrees()).unwrap();
        let rad = anisotropic_gaussian(21, sigma, 1.3, theta).unwrap();
        prop_assert!(max_abs_diff(deg.weights(), rad.weights()) <= 1e-6);
    }
}

// ---------------------------------------------------------------- errors

#[test]
fn invalid_parameters_are_errors() {
    for s in [0.0, -1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        assert_invalid(isotropic_gaussian(21, s), &format!("iso σ={s}"));
        assert_invalid(
            anisotropic_gaussian(21, s, 1.0, 0.0),
            &format!("aniso λ1={s}"),
        );
        assert_invalid(
            anisotropic_gaussian_deg(21, 1.0, s, 0.0),
            &format!("aniso λ2={s}"),
        );
        assert_invalid(
            bivariate_gaussian(21, s, 1.0, 0.0, true),
            &format!("bsr sx={s}"),
        );
        assert_invalid(
            bivariate_gaussian(21, 1.0, s, 0.0, false),
            &format!("bsr sy={s}"),
        );
        assert_invalid(
            bivariate_generalized_gaussian(21, 1.0, 1.0, 0.0, s, false),
            &format!("β={s}"),
        );
        assert_invalid(
            bivariate_plateau(21, 1.0, 1.0, 0.0, s, true),
            &format!("β={s}"),
        );
        assert_invalid(circular_lowpass_kernel(s, 21, None), &format!("cutoff={s}"));
    }
    for n in [0, 2, 20] {
        assert_invalid(isotropic_gaussian(n, 1.0), &format!("iso size {n}"));
        assert_invalid(
            anisotropic_gaussian(n, 1.0, 2.0, 0.0),
            &format!("aniso size {n}"),
        );
        assert_invalid(
            bivariate_gaussian(n, 1.0, 1.0, 0.0, true),
            &format!("bsr size {n}"),
        );
        assert_invalid(
            bivariate_generalized_gaussian(n, 1.0, 1.0, 0.0, 1.0, true),
            &format!("gen size {n}"),
        );
        assert_invalid(
            bivariate_plateau(n, 1.0, 1.0, 0.0, 1.0, true),
            &format!("plat size {n}"),
        );
        assert_invalid(
            circular_lowpass_kernel(1.0, n, None),
            &format!("sinc size {n}"),
        );
        assert_invalid(Kernel::identity(n), &format!("identity size {n}"));
    }
    // σ and λ that are positive in f64 but 0 or ∞ once cast to f32, as DASR computes.
    for s in [1e-50, 1e300] {
        assert_invalid(isotropic_gaussian(21, s), &format!("iso σ={s}"));
        assert_invalid(
            anisotropic_gaussian(21, s, 1.0, 0.0),
            &format!("aniso λ1={s}"),
        );
    }
    assert_invalid(anisotropic_gaussian(21, 1.0, 2.0, f64::NAN), "θ NaN");
    assert_invalid(
        anisotropic_gaussian_deg(21, 1.0, 2.0, f64::INFINITY),
        "θ° inf",
    );
    assert_invalid(
        bivariate_gaussian(21, 1.0, 2.0, f64::NAN, false),
        "bsr θ NaN",
    );
    assert_invalid(circular_lowpass_kernel(1.0, 7, Some(20)), "pad_to 20");
    assert_invalid(circular_lowpass_kernel(1.0, 7, Some(0)), "pad_to 0");
    assert_invalid(BlurKernel::Iso { sigma: 0.0 }.build(21), "enum σ=0");
    assert_invalid(BlurKernel::Iso { sigma: 1.0 }.build(4), "enum size 4");
    assert_invalid(final_sinc(&mut StdRng::seed_from_u64(0), 1.5), "prob 1.5");
    assert_invalid(
        final_sinc(&mut StdRng::seed_from_u64(0), f64::NAN),
        "prob NaN",
    );
    // Isotropic BasicSR kernels ignore σy and θ, so bad values there are fine.
    assert!(bivariate_gaussian(21, 1.0, -1.0, f64::NAN, true).is_ok());
}

#[test]
fn invalid_mixed_configs_are_errors() {
    let mut rng = StdRng::seed_from_u64(1);
    let bad = [
        MixedKernelConfig {
            sizes: vec![],
            ..MixedKernelConfig::realesrgan_first()
        },
        MixedKernelConfig {
            sizes: vec![7, 8],
            ..MixedKernelConfig::realesrgan_first()
        },
        MixedKernelConfig {
            sinc_prob: -0.1,
            ..MixedKernelConfig::realesrgan_first()
        },
        MixedKernelConfig {
            kernel_prob: vec![1.0],
            ..MixedKernelConfig::realesrgan_first()
        },
        MixedKernelConfig {
            kernel_prob: vec![0.0; 6],
            ..MixedKernelConfig::realesrgan_first()
        },
        MixedKernelConfig {
            sigma_range: (0.0, 3.0),
            ..MixedKernelConfig::realesrgan_first()
        },
        MixedKernelConfig {
            sigma_range: (3.0, 0.2),
            ..MixedKernelConfig::realesrgan_first()
        },
        MixedKernelConfig {
            betap_range: (1.5, 2.0),
            ..MixedKernelConfig::realesrgan_first()
        },
        MixedKernelConfig {
            pad_to: 20,
            ..MixedKernelConfig::realesrgan_first()
        },
    ];
    for cfg in bad {
        assert!(random_mixed_kernel(&mut rng, &cfg).is_err(), "{cfg:?}");
    }
}

// ---------------------------------------------------------------- random sampling

/// Four standard deviations of a binomial frequency.
fn four_sigma(p: f64, n: usize) -> f64 {
    4.0 * (p * (1.0 - p) / n as f64).sqrt()
}

#[test]
fn random_mixed_kernels_follow_realesrgan_rules() {
    const N: usize = 2000;
    for (seed, cfg) in [
        (7u64, MixedKernelConfig::realesrgan_first()),
        (8u64, MixedKernelConfig::realesrgan_second()),
    ] {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut sinc = 0usize;
        let mut sizes = [0usize; 22];
        let mut gauss_iso = 0usize;
        let mut plateau = 0usize;
        let mut plateau_beta1 = 0usize;
        for _ in 0..N {
            let (choice, size) = sample_mixed_kernel(&mut rng, &cfg).unwrap();
            assert!(size % 2 == 1 && (7..=21).contains(&size), "size {size}");
            sizes[size] += 1;
            match choice {
                BlurKernel::Sinc { cutoff } => {
                    sinc += 1;
                    let lo = if size < 13 { PI / 3.0 } else { PI / 5.0 };
                    assert!((lo..PI).contains(&cutoff), "ωc {cutoff} for size {size}");
                }
                BlurKernel::Gaussian {
                    sigma_x,
                    sigma_y,
                    theta,
                    isotropic,
                } => {
                    let r = cfg.sigma_range;
                    assert!((r.0..r.1).contains(&sigma_x));
                    if isotropic {
                        gauss_iso += 1;
                        assert_eq!((sigma_y, theta), (sigma_x, 0.0));
                    } else {
                        assert!((r.0..r.1).contains(&sigma_y));
                        assert!((-PI..PI).contains(&theta));
                    }
                }
                BlurKernel::GeneralizedGaussian { beta, .. } => {
                    assert!((0.5..4.0).contains(&beta), "βg {beta}");
                }
                BlurKernel::Plateau { beta, .. } => {
                    plateau += 1;
                    assert!((1.0..2.0).contains(&beta), "βp {beta}");
                    if beta == 1.0 {
                        plateau_beta1 += 1;
                    }
                }
                other => panic!("unexpected kernel {other:?}"),
            }
            // Built and padded: 21×21, sum 1.
            let k = choice.build(size).unwrap().pad_to(cfg.pad_to).unwrap();
            assert_eq!(k.size(), 21);
            assert!((k.sum() - 1.0).abs() <= 1e-6, "sum {}", k.sum());
        }
        let f = sinc as f64 / N as f64;
        assert!((f - 0.1).abs() <= four_sigma(0.1, N), "sinc frequency {f}");
        let f = gauss_iso as f64 / N as f64;
        let p = 0.9 * 0.45;
        assert!((f - p).abs() <= four_sigma(p, N), "iso frequency {f}");
        let p = 0.9 * 0.15;
        let f = plateau as f64 / N as f64;
        assert!((f - p).abs() <= four_sigma(p, N), "plateau frequency {f}");
        // β = U(1, 1) = exactly 1 in half of the plateau draws.
        let f = plateau_beta1 as f64 / plateau as f64;
        assert!(
            (f - 0.5).abs() <= four_sigma(0.5, plateau),
            "βp = 1 frequency {f}"
        );
        for s in (7..=21).step_by(2) {
            let f = sizes[s] as f64 / N as f64;
            assert!((f - 0.125).abs() <= four_sigma(0.125, N), "size {s}: {f}");
        }
    }
}

#[test]
fn random_mixed_kernel_is_padded_and_normalised() {
    let mut rng = StdRng::seed_from_u64(11);
    let cfg = MixedKernelConfig::realesrgan_first();
    let mut small_support = 0;
    for _ in 0..500 {
        let k = random_mixed_kernel(&mut rng, &cfg).unwrap();
        assert_eq!(k.size(), 21);
        assert!((k.sum() - 1.0).abs() <= 1e-6);
        // A size-7 kernel padded to 21 is zero outside the centre 7×7.
        if (0..21).all(|j| k.at(0, j) == 0.0 && k.at(j, 0) == 0.0) {
            small_support += 1;
        }
    }
    assert!(small_support > 0, "no padded kernel seen");
}

#[test]
fn final_sinc_identity_frequency() {
    const N: usize = 2000;
    let mut rng = StdRng::seed_from_u64(3);
    let id = Kernel::identity(21).unwrap();
    let mut identity = 0usize;
    for _ in 0..N {
        let k = final_sinc(&mut rng, 0.8).unwrap();
        assert_eq!(k.size(), 21);
        assert!((k.sum() - 1.0).abs() <= 1e-6);
        if k == id {
            identity += 1;
        } else {
            // A sinc kernel has negative lobes or at least spreads out of the centre.
            assert!(k.at(10, 10) < 1.0);
        }
    }
    let f = identity as f64 / N as f64;
    assert!(
        (f - 0.2).abs() <= four_sigma(0.2, N),
        "identity frequency {f}"
    );
    // p = 0 and p = 1 are deterministic.
    assert_eq!(final_sinc(&mut rng, 0.0).unwrap(), id);
    assert_ne!(final_sinc(&mut rng, 1.0).unwrap(), id);
}
