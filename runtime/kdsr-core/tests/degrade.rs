//! The classic DASR/KDSR LR synthesis (blur → bicubic ↓ or s-fold → noise → quantise) against
//! `vectors-pipeline/` §4 (DASR, 0..255 data) and `vectors/degradation_and_metrics` (KDSR, [0, 1]).
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use kdsr_core::pipeline::degrade::{ClassicDegradation, Downsample};
use kdsr_core::pipeline::kernels::Kernel;
use kdsr_core::pipeline::resize::{BicubicVariant, bicubic_up, imresize};
use kdsr_core::pipeline::{blur::blur_reflect, quantize};
use kdsr_core::{Error, Planar};
use rand::SeedableRng;
use rand::rngs::StdRng;

use common::{
    DEGRADATION_ST as ST, assert_close, assert_u8, assert_u8_planar, image, npy, npy_kernel,
    st_image, st_kernel,
};

fn iso26() -> Kernel {
    let sigmas = npy("k_iso_sigmas_f64.npy");
    assert_eq!(sigmas.data[4], 2.6);
    npy_kernel("k_dasr_iso21_f32.npy", 4)
}

fn aniso_35_15_30() -> Kernel {
    let params = npy("k_aniso_params_l1_l2_thetadeg_f64.npy");
    assert_eq!(&params.data[6..9], &[3.5, 1.5, 30.0]);
    npy_kernel("k_dasr_aniso21_f32.npy", 2)
}

/// DASR's convention: 0..255 data.
fn dasr(kernel: Kernel, noise: f32, mode: Downsample) -> ClassicDegradation {
    ClassicDegradation::new(kernel, 4, noise, mode)
        .and_then(|d| d.with_rgb_range(255.0))
        .expect("degradation")
}

fn hr255() -> Planar {
    image("in_img_u8.npy", 1.0)
}

#[test]
fn dasr_iso26_bicubic() {
    let d = dasr(iso26(), 0.0, Downsample::Bicubic);
    let hr = hr255();
    let pre = d.prequant(&hr).expect("prequant");
    assert_close(&pre, "classic_iso2.6_x4_lr_prequant_f32.npy", 5e-4);
    let lr = d.apply_with_noise(&hr, None).expect("lr");
    assert_eq!(lr, pre.map(|v| v.clamp(0.0, 255.0).round_ties_even()));
    assert_u8(&pre, 1.0, "classic_iso2.6_x4_lr_u8.npy", 4);
    assert_u8(&lr, 1.0, "classic_iso2.6_x4_lr_u8.npy", 0);

    // With BasicSR's mirrored imresize instead, the border LR pixels change (26 of them).
    let blurred = blur_reflect(&hr, d.kernel()).expect("blur");
    let matlab = imresize(&blurred, 0.25, BicubicVariant::Matlab).expect("matlab");
    let want = image("classic_iso2.6_x4_lr_u8.npy", 1.0);
    let differing = matlab
        .data()
        .iter()
        .zip(want.data())
        .filter(|(m, w)| m.round_ties_even() != **w)
        .count();
    eprintln!("Matlab-variant LR differs from the reference in {differing} values");
    assert!(differing > 10);
}

#[test]
fn dasr_iso26_sfold() {
    let d = dasr(iso26(), 0.0, Downsample::SFold);
    let hr = hr255();
    let pre = d.prequant(&hr).expect("prequant");
    assert_eq!(pre.shape(), [3, 30, 24]);
    // s-fold keeps pixel (4i, 4j) of the blurred image.
    let blurred = image("classic_iso2.6_hr_blur_f32.npy", 1.0);
    assert!((pre.at(1, 3, 5) - blurred.at(1, 12, 20)).abs() < 1e-3);
    assert_u8(&pre, 1.0, "classic_iso2.6_x4_sfold_lr_u8.npy", 7);
    let lr = d.apply_with_noise(&hr, None).expect("lr");
    assert_u8(&lr, 1.0, "classic_iso2.6_x4_sfold_lr_u8.npy", 0);
}

#[test]
fn dasr_aniso_35_15_30() {
    let d = dasr(aniso_35_15_30(), 0.0, Downsample::Bicubic);
    let hr = hr255();
    let pre = d.prequant(&hr).expect("prequant");
    assert_u8(&pre, 1.0, "classic_aniso3.5_1.5_30_x4_lr_u8.npy", 6);
}

#[test]
fn dasr_iso26_noise10() {
    let d = dasr(iso26(), 10.0, Downsample::Bicubic);
    let hr = hr255();
    let draws = image("classic_noise10_std_normal_f32.npy", 1.0);
    let pre = d.prequant(&hr).expect("prequant");
    let noisy = Planar::new(
        3,
        30,
        24,
        pre.data()
            .iter()
            .zip(draws.data())
            .map(|(p, n)| p + n * 10.0)
            .collect(),
    )
    .expect("noisy");
    assert_u8(&noisy, 1.0, "classic_iso2.6_noise10_x4_lr_u8.npy", 5);
    let lr = d.apply_with_noise(&hr, Some(&draws)).expect("lr");
    assert_u8(&lr, 1.0, "classic_iso2.6_noise10_x4_lr_u8.npy", 0);
    assert_eq!(lr, noisy.map(|v| v.round_ties_even().clamp(0.0, 255.0)));
}

/// KDSR's convention ([0, 1] data, `rgb_range = 1`) gives the same LR on this input.
#[test]
fn kdsr_convention_on_the_dasr_vectors() {
    let hr = image("in_img_u8.npy", 255.0);
    let draws = image("classic_noise10_std_normal_f32.npy", 1.0);
    for (kernel, noise, mode, name, near) in [
        (
            iso26(),
            0.0,
            Downsample::Bicubic,
            "classic_iso2.6_x4_lr_u8.npy",
            4,
        ),
        (
            iso26(),
            0.0,
            Downsample::SFold,
            "classic_iso2.6_x4_sfold_lr_u8.npy",
            7,
        ),
        (
            aniso_35_15_30(),
            0.0,
            Downsample::Bicubic,
            "classic_aniso3.5_1.5_30_x4_lr_u8.npy",
            6,
        ),
        (
            iso26(),
            10.0,
            Downsample::Bicubic,
            "classic_iso2.6_noise10_x4_lr_u8.npy",
            5,
        ),
    ] {
        let d = ClassicDegradation::new(kernel, 4, noise, mode).expect("degradation");
        assert_eq!(d.rgb_range(), 1.0);
        let lr = d.apply_with_noise(&hr, Some(&draws)).expect("lr");
        let mut pre = d.prequant(&hr).expect("prequant");
        if noise > 0.0 {
            let sigma = (f64::from(noise) / 255.0) as f32;
            for (p, n) in pre.data_mut().iter_mut().zip(draws.data()) {
                *p += n * sigma;
            }
        }
        assert_eq!(lr, pre.map(quantize));
        assert_u8(&pre, 255.0, name, near);
    }
}

/// The official KDSR `SRMDPreprocessing` outputs in `degradation_and_metrics.safetensors`.
#[test]
fn kdsr_srmd_lr_and_hr_blured() {
    let hr = st_image(ST, "hr");
    for (kernel, prefix) in [
        (st_kernel("kernel.iso_gaussian8", 4), "srmd.iso2.6"),
        (st_kernel("kernel.aniso", 0), "srmd.aniso_3.5_1.5_30"),
    ] {
        let d = ClassicDegradation::new(kernel, 4, 0.0, Downsample::Bicubic).expect("degradation");
        let pre = d.prequant(&hr).expect("prequant");
        let want_lr = st_image(ST, &format!("{prefix}.lr")).map(|v| (v * 255.0).round());
        assert_u8_planar(&pre, 255.0, &want_lr, &format!("{prefix}.lr"), 1);

        // `hr_blured` is the official bicubic ×4 of the LR *before* quantisation, quantised.
        let (lr, up) = d.apply_with_upsampled(&hr, None).expect("pair");
        assert_eq!(lr, d.apply_with_noise(&hr, None).expect("lr"));
        let up_pre = bicubic_up(&pre, 4).expect("up");
        assert_eq!(up, up_pre.map(quantize));
        let want_up = st_image(ST, &format!("{prefix}.hr_blured")).map(|v| (v * 255.0).round());
        assert_u8_planar(&up_pre, 255.0, &want_up, &format!("{prefix}.hr_blured"), 2);
        assert_u8_planar(
            &up,
            255.0,
            &want_up,
            &format!("{prefix}.hr_blured (quantised)"),
            0,
        );
        // Upsampling the quantised LR instead does not reproduce it.
        let from_quantised = bicubic_up(&lr, 4).expect("up q").map(quantize);
        let differing = from_quantised
            .data()
            .iter()
            .zip(up.data())
            .filter(|(a, b)| a != b)
            .count();
        eprintln!("{prefix}.hr_blured: upsampling the quantised LR changes {differing} values");
        assert!(differing > 0);
    }
}

#[test]
fn random_noise_is_seeded_and_sized() {
    let hr = image("in_img_u8.npy", 255.0);
    let d = ClassicDegradation::new(iso26(), 4, 10.0, Downsample::Bicubic).expect("degradation");
    let a = d.apply(&hr, &mut StdRng::seed_from_u64(7)).expect("a");
    let b = d.apply(&hr, &mut StdRng::seed_from_u64(7)).expect("b");
    let c = d.apply(&hr, &mut StdRng::seed_from_u64(8)).expect("c");
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_eq!(a.shape(), [3, 30, 24]);
    assert!(a.data().iter().all(|v| (0.0..=1.0).contains(v)));
    // The residual against the noise-free LR has σ ≈ 10/255 (quantisation adds ~0.3/255).
    let clean = d.prequant(&hr).expect("prequant");
    let n = a.data().len() as f64;
    let res: Vec<f64> = a
        .data()
        .iter()
        .zip(clean.data())
        .map(|(x, y)| f64::from(x - y) * 255.0)
        .collect();
    let mean = res.iter().sum::<f64>() / n;
    let std = (res.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / n).sqrt();
    eprintln!("random noise: mean {mean:.3}, std {std:.3} (0..255 units)");
    assert!(
        mean.abs() < 1.0 && (9.0..11.0).contains(&std),
        "{mean} {std}"
    );
    // Noise level 0 draws nothing and matches the deterministic path.
    let d0 = ClassicDegradation::new(iso26(), 4, 0.0, Downsample::Bicubic).expect("d0");
    assert_eq!(
        d0.apply(&hr, &mut StdRng::seed_from_u64(1)).expect("apply"),
        d0.apply_with_noise(&hr, None).expect("no noise")
    );
}

#[test]
fn non_multiple_sizes() {
    let hr = Planar::filled(3, 50, 47, 0.25).expect("hr");
    let bic = ClassicDegradation::new(iso26(), 4, 0.0, Downsample::Bicubic).expect("bic");
    let lr = bic.apply_with_noise(&hr, None).expect("floor");
    assert_eq!(lr.shape(), [3, 12, 11]);
    assert!(lr.data().iter().all(|v| *v == quantize(0.25)));
    let sfold = ClassicDegradation::new(iso26(), 4, 0.0, Downsample::SFold).expect("sfold");
    assert!(matches!(
        sfold.prequant(&hr),
        Err(Error::ShapeMismatch { .. })
    ));
    let cropped = hr.crop_to_multiple(4).expect("crop");
    assert_eq!(sfold.prequant(&cropped).expect("ok").shape(), [3, 12, 11]);
    // Scales 2 and 3.
    for s in [2u32, 3] {
        let d = ClassicDegradation::new(iso26(), s, 0.0, Downsample::Bicubic).expect("d");
        let hr = Planar::filled(1, 36, 24, 0.5).expect("hr");
        let s = s as usize;
        assert_eq!(d.prequant(&hr).expect("lr").shape(), [1, 36 / s, 24 / s]);
        let (_, up) = d.apply_with_upsampled(&hr, None).expect("up");
        assert_eq!(up.shape(), [1, 36, 24]);
    }
}

#[test]
fn errors_do_not_panic() {
    let k = iso26();
    for s in [0u32, 1, 5, 8] {
        assert!(matches!(
            ClassicDegradation::new(k.clone(), s, 0.0, Downsample::Bicubic),
            Err(Error::UnsupportedScale { .. })
        ));
    }
    for n in [-1.0, f32::NAN, f32::INFINITY] {
        assert!(matches!(
            ClassicDegradation::new(k.clone(), 4, n, Downsample::Bicubic),
            Err(Error::InvalidParameter { .. })
        ));
    }
    let d = ClassicDegradation::new(k.clone(), 4, 10.0, Downsample::Bicubic).expect("d");
    for r in [0.0, -1.0, f32::NAN] {
        assert!(d.clone().with_rgb_range(r).is_err());
    }
    let hr = Planar::filled(3, 48, 48, 0.5).expect("hr");
    assert!(matches!(
        d.apply_with_noise(&hr, None),
        Err(Error::InvalidParameter { .. })
    ));
    let wrong = Planar::filled(3, 11, 12, 0.0).expect("draws");
    assert!(matches!(
        d.apply_with_noise(&hr, Some(&wrong)),
        Err(Error::ShapeMismatch { .. })
    ));
    // Too small for the 21×21 kernel's reflect padding.
    let small = Planar::filled(3, 10, 40, 0.5).expect("small");
    assert!(matches!(d.prequant(&small), Err(Error::TooSmall { .. })));
}
