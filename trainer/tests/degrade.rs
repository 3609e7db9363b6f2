//! The device degradation against the CPU reference pipeline (`kdsr_core::pipeline::degrade`)
//! on the same kernel and noise draws: prequantised LR within 1e-5, 8-bit LR equal except at
//! values within 1e-4 of a rounding boundary.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use kdsr_core::Planar;
use kdsr_core::pipeline::degrade::{ClassicDegradation, Downsample};
use kdsr_core::pipeline::kernels::{anisotropic_gaussian_deg, isotropic_gaussian};
use kdsr_trainer::classic::config::{DegradationSection, KernelKind};
use kdsr_trainer::classic::degrade::Degrader;
use kdsr_trainer::ops::{add_noise, add_shot_noise, bicubic_down, blur, quantize};
use rand::SeedableRng;
use tch::{Device, Tensor};

fn fixture_image() -> Planar {
    let p = kdsr_test_support::pipeline("in_img.png");
    kdsr_core::io::load_image(&p).unwrap().rgb
}

fn to_tensor(p: &Planar) -> Tensor {
    let [c, h, w] = p.shape();
    Tensor::from_slice(p.data()).reshape([1, c as i64, h as i64, w as i64])
}

fn to_vec(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(t.flatten(0, -1)).unwrap()
}

fn cfg(kernel: KernelKind, noise_max: f64, per_sample: bool) -> DegradationSection {
    DegradationSection {
        kernel,
        sigma_min: 0.2,
        sigma_max: 4.0,
        noise_max,
        per_sample,
        poisson_prob: 0.0,
        jpeg: None,
        jpeg_prob: 1.0,
        blur_prob: 1.0,
        noise_prob: 1.0,
    }
}

/// Counts 8-bit mismatches, failing on any that is not at a near-tie of the CPU prequant value.
fn compare_u8(dev: &[f32], cpu: &[f32], cpu_prequant: &[f32]) -> usize {
    let mut ties = 0;
    for i in 0..dev.len() {
        let (a, b) = ((dev[i] * 255.0).round(), (cpu[i] * 255.0).round());
        if a != b {
            let frac = (cpu_prequant[i] * 255.0).fract().abs();
            assert!(
                (frac - 0.5).abs() < 1e-4 && (a - b).abs() == 1.0,
                "index {i}: {a} vs {b} (pre {})",
                cpu_prequant[i] * 255.0
            );
            ties += 1;
        }
    }
    ties
}

#[test]
fn matches_cpu_pipeline_iso_and_aniso() {
    let hr = fixture_image();
    for k in [
        isotropic_gaussian(21, 2.6).unwrap(),
        anisotropic_gaussian_deg(21, 3.5, 1.5, 30.0).unwrap(),
    ] {
        let cpu = ClassicDegradation::new(k.clone(), 4, 0.0, Downsample::Bicubic).unwrap();
        let cpu_pre = cpu.prequant(&hr).unwrap();
        let cpu_lr = cpu.apply_with_noise(&hr, None).unwrap();
        let dev = Degrader::new(&cfg(KernelKind::Iso, 0.0, false), 4, Device::Cpu);
        let pre = dev
            .prequant(&to_tensor(&hr), std::slice::from_ref(&k))
            .unwrap();
        assert_eq!(pre.size(), vec![1, 3, 30, 24]);
        let pre_v = to_vec(&pre);
        let d = pre_v
            .iter()
            .zip(cpu_pre.data())
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(d <= 1e-5, "prequant max |Δ| {d:e}");
        compare_u8(&to_vec(&quantize(&pre)), cpu_lr.data(), cpu_pre.data());
    }
}

#[test]
fn matches_the_official_lr_fixture() {
    let hr = fixture_image();
    let npy = kdsr_test_support::pipeline("classic_iso2.6_x4_lr.png");
    let want = kdsr_core::io::load_image(&npy).unwrap().rgb;
    let k = isotropic_gaussian(21, 2.6).unwrap();
    let dev = Degrader::new(&cfg(KernelKind::Iso, 0.0, false), 4, Device::Cpu);
    let pre = dev.prequant(&to_tensor(&hr), &[k]).unwrap();
    let got = to_vec(&quantize(&pre));
    let mism = got
        .iter()
        .zip(want.data())
        .filter(|(a, b)| ((*a * 255.0).round() - (*b * 255.0).round()).abs() > 0.0)
        .count();
    // The reference README lists 4 near-ties in this file; a float32 port may differ only there.
    assert!(mism <= 4, "{mism} mismatches");
}

#[test]
fn noise_matches_cpu_with_the_same_draws() {
    let hr = fixture_image();
    let k = isotropic_gaussian(21, 2.6).unwrap();
    let cpu = ClassicDegradation::new(k.clone(), 4, 10.0, Downsample::Bicubic).unwrap();
    let draws_t = Tensor::randn([1, 3, 30, 24], (tch::Kind::Float, Device::Cpu));
    let draws = Planar::new(3, 30, 24, to_vec(&draws_t)).unwrap();
    let cpu_lr = cpu.apply_with_noise(&hr, Some(&draws)).unwrap();
    let cpu_noisy = kdsr_core::pipeline::noise::add_classic_noise_with(
        &cpu.prequant(&hr).unwrap(),
        &draws,
        10.0,
    )
    .unwrap();
    let dev = Degrader::new(&cfg(KernelKind::Iso, 0.0, false), 4, Device::Cpu);
    let pre = dev.prequant(&to_tensor(&hr), &[k]).unwrap();
    let noisy = add_noise(&pre, &draws_t, &[10.0]);
    let d = to_vec(&noisy)
        .iter()
        .zip(cpu_noisy.data())
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(d <= 1e-5, "noisy max |Δ| {d:e}");
    compare_u8(&to_vec(&quantize(&noisy)), cpu_lr.data(), cpu_noisy.data());
}

#[test]
fn per_sample_kernels_equal_separate_runs() {
    let hr = fixture_image();
    let x = Tensor::cat(&[to_tensor(&hr), to_tensor(&hr).flip([3])], 0);
    let ks = [
        isotropic_gaussian(21, 1.0).unwrap(),
        anisotropic_gaussian_deg(21, 4.0, 1.5, 120.0).unwrap(),
    ];
    let both = blur(&x, &ks, Device::Cpu).unwrap();
    for i in 0..2 {
        let one = blur(
            &x.narrow(0, i, 1),
            &ks[i as usize..i as usize + 1],
            Device::Cpu,
        )
        .unwrap();
        let d = (both.narrow(0, i, 1) - one).abs().max().double_value(&[]);
        assert!(d < 1e-6, "sample {i}: {d:e}");
    }
    assert!(
        blur(
            &x,
            &[ks[0].clone(), ks[1].clone(), ks[0].clone()],
            Device::Cpu
        )
        .is_err()
    );
    // Downsampling keeps the batch and floors odd sizes as the official module does.
    let y = bicubic_down(&x.narrow(2, 0, 119), 4).unwrap();
    assert_eq!(y.size(), vec![2, 3, 29, 24]);
}

#[test]
fn random_draws_follow_the_config() {
    let hr = Tensor::rand([4, 3, 64, 64], (tch::Kind::Float, Device::Cpu));
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let d = Degrader::new(&cfg(KernelKind::Aniso, 25.0, true), 4, Device::Cpu);
    let (lr, draw) = d.degrade(&hr, &mut rng).unwrap();
    assert_eq!(lr.size(), vec![4, 3, 16, 16]);
    assert_eq!(draw.kernels.len(), 4);
    assert!(draw.kernels.iter().all(|(a, b, t)| (0.2..4.0).contains(a)
        && (0.2..4.0).contains(b)
        && (0.0..std::f64::consts::PI).contains(t)));
    assert!(draw.noise.iter().all(|n| (0.0..25.0).contains(n)));
    // Quantised to 8 bits and inside [0, 1].
    let v = to_vec(&lr);
    assert!(
        v.iter()
            .all(|x| (0.0..=1.0).contains(x) && ((x * 255.0) - (x * 255.0).round()).abs() < 1e-4)
    );
    let d1 = Degrader::new(&cfg(KernelKind::Iso, 0.0, false), 4, Device::Cpu);
    let (_, draw) = d1.degrade(&hr, &mut rng).unwrap();
    assert_eq!(draw.kernels.len(), 1);
    assert_eq!(draw.noise, vec![0.0]);
}

/// Paired draws (`idr.consistency_weight`): sample i + B/2 repeats sample i's kernel and noise
/// level (not its noise values, not its crop), and the regression targets are the normalised
/// blur and noise level of each sample.
#[test]
fn paired_draws_share_the_degradation_and_give_normalised_targets() {
    let c = cfg(KernelKind::Aniso, 20.0, true);
    let hr = Tensor::rand([4, 3, 64, 64], (tch::Kind::Float, Device::Cpu));
    // The same HR in both halves: the pairs then differ only by their noise values.
    let hr = Tensor::cat(&[hr.narrow(0, 0, 2), hr.narrow(0, 0, 2)], 0);
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let d = Degrader::new(&c, 4, Device::Cpu).paired(true);
    let (lr, draw) = d.degrade(&hr, &mut rng).unwrap();
    assert_eq!(draw.kernels.len(), 4);
    assert_eq!(draw.kernels[0], draw.kernels[2]);
    assert_eq!(draw.kernels[1], draw.kernels[3]);
    assert_ne!(draw.kernels[0], draw.kernels[1]);
    assert_eq!(draw.noise[0], draw.noise[2]);
    assert!(
        to_vec(&(lr.narrow(0, 0, 2) - lr.narrow(0, 2, 2)).abs())
            .iter()
            .any(|v| *v > 0.0)
    );
    let t = draw.targets(4, &c);
    assert_eq!(t.len(), 8);
    for i in 0..4 {
        let (l1, l2, _) = draw.kernels[i];
        assert!((f64::from(t[2 * i]) - ((l1 + l2) / 2.0 - 0.2) / 3.8).abs() < 1e-6);
        assert!((f64::from(t[2 * i + 1]) - draw.noise[i] / 20.0).abs() < 1e-6);
    }
    // An odd batch cannot be paired.
    let odd = Tensor::rand([3, 3, 64, 64], (tch::Kind::Float, Device::Cpu));
    assert!(d.degrade(&odd, &mut rng).is_err());
}

#[test]
fn device_shot_noise_follows_the_cpu_definition() {
    tch::manual_seed(5);
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    for (x, level) in [(0.5f32, 10.0), (0.125, 20.0), (0.9, 5.0)] {
        let t = Tensor::full(
            [2, 3, 96, 96],
            f64::from(x),
            (tch::Kind::Float, Device::Cpu),
        );
        let dev = to_vec(&add_shot_noise(&t, &[level, level]));
        let cpu = kdsr_core::pipeline::camera::add_shot_noise(
            &Planar::filled(3, 192, 96, x).unwrap(),
            level,
            &mut rng,
        )
        .unwrap();
        let want = level / 255.0 * (f64::from(x) / 0.5).sqrt();
        for (name, v) in [("device", &dev[..]), ("cpu", cpu.data())] {
            let n = v.len() as f64;
            let m = v.iter().map(|a| f64::from(*a)).sum::<f64>() / n;
            let s = (v.iter().map(|a| (f64::from(*a) - m).powi(2)).sum::<f64>() / n).sqrt();
            assert!((m - f64::from(x)).abs() < 0.003, "{name} x {x}: mean {m}");
            assert!(
                (s / want - 1.0).abs() < 0.03,
                "{name} x {x} level {level}: std {s} want {want}"
            );
        }
    }
    // Level 0 leaves a sample unchanged; the other sample of the batch still gets noise.
    let t = Tensor::full([2, 3, 16, 16], 0.5, (tch::Kind::Float, Device::Cpu));
    let out = add_shot_noise(&t, &[0.0, 10.0]);
    assert_eq!(to_vec(&out.narrow(0, 0, 1)), vec![0.5; 3 * 16 * 16]);
    assert!(to_vec(&out.narrow(0, 1, 1)).iter().any(|v| *v != 0.5));
}

/// DiffJPEG (training) against the `image` crate's encoder (evaluation) on the same 8-bit image:
/// the same standard tables and quality scaling, different chroma subsampling (4:2:0 vs 4:2:2)
/// and rounding, so close but not equal.
#[test]
fn diff_jpeg_is_close_to_the_real_codec() {
    let p = kdsr_test_support::repo("data/Set14/zebra.png");
    let img = kdsr_core::io::load_image(&p).unwrap().rgb;
    let img = img
        .crop(100, 100, 128, 160)
        .unwrap()
        .map(kdsr_core::pipeline::quantize);
    let codec = kdsr_trainer::jpeg::DiffJpeg::new(Device::Cpu);
    let psnr = |a: &[f32], b: &[f32]| {
        let mse = a
            .iter()
            .zip(b)
            .map(|(x, y)| f64::from(x - y).powi(2))
            .sum::<f64>()
            / a.len() as f64;
        -10.0 * mse.log10()
    };
    for q in [95u8, 75, 50, 30] {
        let real = kdsr_core::pipeline::camera::jpeg_roundtrip(&img, q).unwrap();
        let diff = quantize(&codec.apply(&to_tensor(&img), &[f64::from(q)]).unwrap());
        let (to_real, to_orig) = (
            psnr(&to_vec(&diff), real.data()),
            psnr(real.data(), img.data()),
        );
        let diff_orig = psnr(&to_vec(&diff), img.data());
        eprintln!(
            "q {q}: DiffJPEG↔real {to_real:.2}, real↔original {to_orig:.2}, DiffJPEG↔original {diff_orig:.2}"
        );
        // The same loss of quality: DiffJPEG is as far from the original as the real codec.
        assert!(
            (diff_orig - to_orig).abs() < 1.5 && to_real > to_orig - 3.0,
            "q {q}: DiffJPEG↔real {to_real:.2} dB, real↔original {to_orig:.2} dB, DiffJPEG↔original {diff_orig:.2} dB"
        );
    }
}

#[test]
fn camera_draws_mix_noise_kinds_and_jpeg_per_sample() {
    let mut c = cfg(KernelKind::Aniso, 20.0, true);
    c.poisson_prob = 0.5;
    c.jpeg = Some([30.0, 95.0]);
    c.jpeg_prob = 0.75;
    let d = Degrader::new(&c, 4, Device::Cpu).paired(true);
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let (mut shots, mut jpegs, mut n) = (0, 0, 0);
    for _ in 0..30 {
        let hr = Tensor::rand([8, 3, 64, 64], (tch::Kind::Float, Device::Cpu));
        let (lr, draw) = d.degrade(&hr, &mut rng).unwrap();
        assert_eq!(lr.size(), [8, 3, 16, 16]);
        assert!(
            to_vec(&lr)
                .iter()
                .all(|v| (v * 255.0 - (v * 255.0).round()).abs() < 1e-4)
        );
        assert_eq!((draw.shot.len(), draw.jpeg.len()), (8, 8));
        assert_eq!(draw.jpeg[0], draw.jpeg[4]);
        assert_eq!(draw.shot[1], draw.shot[5]);
        shots += draw.shot[..4].iter().filter(|s| **s).count();
        jpegs += draw.jpeg[..4].iter().filter(|q| q.is_some()).count();
        n += 4;
        assert!(
            draw.jpeg
                .iter()
                .flatten()
                .all(|q| (30.0..=95.0).contains(q))
        );
        let t = draw.targets(8, &c);
        assert_eq!(t.len(), 24);
        for i in 0..8 {
            let want = draw.jpeg[i].map_or(0.0, |q| (100.0 - q) / 70.0);
            assert!((f64::from(t[3 * i + 2]) - want).abs() < 1e-6);
        }
        assert!(t.iter().all(|v| (0.0..=1.0).contains(v)));
    }
    // 120 draws each: p 0.5 and 0.75, within ±4.5 σ.
    assert!(
        (38..=82).contains(&shots),
        "{shots} shot-noise draws of {n}"
    );
    assert!((69..=111).contains(&jpegs), "{jpegs} JPEG draws of {n}");
    // JPEG off in the config: nothing drawn, the classic sequence of draws (kernels, levels).
    let plain = cfg(KernelKind::Aniso, 20.0, true);
    let (_, draw) = Degrader::new(&plain, 4, Device::Cpu)
        .degrade(
            &Tensor::rand([2, 3, 64, 64], (tch::Kind::Float, Device::Cpu)),
            &mut rng,
        )
        .unwrap();
    assert!(draw.jpeg.iter().all(Option::is_none) && draw.shot.iter().all(|s| !s));
}

#[test]
fn sharp_and_clean_samples_follow_blur_prob_and_noise_prob() {
    // Never blurred, never noisy: the LR is the quantised bicubic ↓4 of the HR, its blur target 0.
    let mut c = cfg(KernelKind::Aniso, 20.0, true);
    c.blur_prob = 0.0;
    c.noise_prob = 0.0;
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let hr = Tensor::rand([4, 3, 64, 64], (tch::Kind::Float, Device::Cpu));
    let (lr, draw) = Degrader::new(&c, 4, Device::Cpu)
        .degrade(&hr, &mut rng)
        .unwrap();
    let want = quantize(&bicubic_down(&hr, 4).unwrap());
    let d = (&lr - &want).abs().max().double_value(&[]);
    assert!(d < 1e-6, "max |Δ| {d}");
    assert!(draw.kernels.iter().all(|k| *k == (0.0, 0.0, 0.0)));
    assert!(draw.noise.iter().all(|l| *l == 0.0));
    assert!(draw.targets(4, &c).iter().all(|t| *t == 0.0));
    // p 0.7 and 0.6 over 400 samples: within ±4.5 σ (σ ≈ 9.2 and 9.8).
    c.blur_prob = 0.7;
    c.noise_prob = 0.6;
    let d = Degrader::new(&c, 4, Device::Cpu);
    let (mut blurred, mut noisy) = (0, 0);
    for _ in 0..50 {
        let hr = Tensor::rand([8, 3, 32, 32], (tch::Kind::Float, Device::Cpu));
        let (_, draw) = d.degrade(&hr, &mut rng).unwrap();
        blurred += draw.kernels.iter().filter(|k| k.0 > 0.0).count();
        noisy += draw.noise.iter().filter(|l| **l > 0.0).count();
        let t = draw.targets(8, &c);
        assert!(t.iter().all(|v| (0.0..=1.0).contains(v)));
    }
    assert!((239..=321).contains(&blurred), "{blurred} of 400 blurred");
    assert!((196..=284).contains(&noisy), "{noisy} of 400 noisy");
}
