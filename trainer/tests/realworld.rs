//! Real-world KDSR on the CPU at tiny sizes: every stage of the second-order degradation (USM,
//! resize semantics, batched Gaussian / Poisson noise, DiffJPEG, the documented probabilities),
//! the VGG19 / LPIPS weight loaders, the spectral-norm discriminator, one GAN step, exact resume
//! of the GAN stage, and a short edge-size run whose L1 goes down.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;
use common::{repo, train_dir};

use std::collections::HashMap;
use std::path::Path;

use kdsr_core::Planar;
use kdsr_core::metrics::MetricVariant;
use kdsr_core::pipeline::blur::filter2d;
use kdsr_core::pipeline::kernels::BlurKernel;
use kdsr_core::spec::checkpoint::{Tensor as CoreTensor, Weights, weights_to_bytes};
use kdsr_trainer::checkpoint::weights_of;
use kdsr_trainer::config::Experiment;
use kdsr_trainer::driver::{Step, TrainOptions};
use kdsr_trainer::eval::{planar_to_tensor, tensor_to_planar};
use kdsr_trainer::jpeg::{DiffJpeg, dct_matrix};
use kdsr_trainer::model::Model;
use kdsr_trainer::realworld::config::RealWorldConfig;
use kdsr_trainer::realworld::degrade::{
    DegradePlan, FinalOrder, NoiseKind, RealDegradation, RealDegrader, ResizeKind, ResizeMode,
    gaussian_noise, poisson_noise, resize_by_factor, resize_to,
};
use kdsr_trainer::realworld::discriminator::UNetDiscriminator;
use kdsr_trainer::realworld::eval::{evaluate_pairs, load_pairs, synth_pairs};
use kdsr_trainer::realworld::lpips::Lpips;
use kdsr_trainer::realworld::train::{RealWorldStep, Stage, run_stage};
use kdsr_trainer::realworld::usm::{UsmSharpener, gaussian_1d, usm_kernel};
use kdsr_trainer::realworld::vgg::{PERCEPTUAL_WEIGHTS, PerceptualLoss, VGG19_CONVS, Vgg19};
use rand::SeedableRng;
use tch::{Device, Kind, Tensor};

/// libtorch's generator and thread count are process-global: tests that draw from it or train
/// take this lock so that a parallel test cannot interleave its draws.
static TORCH: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn torch_lock() -> std::sync::MutexGuard<'static, ()> {
    TORCH.lock().unwrap_or_else(|e| e.into_inner())
}

/// A `[1,3,h,w]` crop of T91 `t1.png` (197×176).
fn photo(h: usize, w: usize) -> Tensor {
    let img = kdsr_core::io::load_image(repo("data/T91/t1.png")).unwrap();
    let crop = img.rgb.crop(20, 30, h, w).unwrap();
    planar_to_tensor(&crop, Device::Cpu)
}

fn max_abs(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

fn mse(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).square().mean(Kind::Float).double_value(&[])
}

/// Asserts that `hits` out of `n` is within 4σ of probability `p`.
fn assert_rate(what: &str, hits: usize, n: usize, p: f64) {
    let sigma = (p * (1.0 - p) / n as f64).sqrt();
    let rate = hits as f64 / n as f64;
    assert!(
        (rate - p).abs() <= 4.0 * sigma + 1e-12,
        "{what}: {hits}/{n} = {rate:.4}, expected {p} ± {:.4}",
        4.0 * sigma
    );
}

// ---------------------------------------------------------------------------------------------
// USM.

#[test]
fn usm_kernel_is_opencvs_gaussian_sigma_8() {
    let g = gaussian_1d(51);
    assert!((g.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    // σ = 0.3·((51 − 1)/2 − 1) + 0.8 = 8: neighbouring taps at the centre differ by exp(−1/128).
    assert!((g[26] / g[25] - (-1.0f64 / 128.0).exp()).abs() < 1e-12);
    let k = usm_kernel(51).unwrap();
    assert_eq!(k.size(), 51);
    assert!((k.sum() - 1.0).abs() < 1e-5);
    assert_eq!(k.at(3, 10), k.at(10, 3));
}

#[test]
fn usm_matches_the_direct_formula() {
    let img = photo(32, 30);
    let usm = UsmSharpener::new().unwrap();
    let got = usm.apply(&img).unwrap();
    // Direct: blur, residual, mask, soft mask, sharp, blend, on the CPU with kdsr-core's filter2D.
    let p = tensor_to_planar(&img).unwrap();
    let blur = filter2d(&p, usm.kernel()).unwrap();
    let residual: Vec<f32> = p
        .data()
        .iter()
        .zip(blur.data())
        .map(|(a, b)| a - b)
        .collect();
    let mask: Vec<f32> = residual
        .iter()
        .map(|r| if r.abs() * 255.0 > 10.0 { 1.0 } else { 0.0 })
        .collect();
    let mask = Planar::new(3, 32, 30, mask).unwrap();
    let soft = filter2d(&mask, usm.kernel()).unwrap();
    let want: Vec<f32> = p
        .data()
        .iter()
        .zip(&residual)
        .zip(soft.data())
        .map(|((x, r), s)| {
            let sharp = (x + 0.5 * r).clamp(0.0, 1.0);
            s * sharp + (1.0 - s) * x
        })
        .collect();
    let want = planar_to_tensor(&Planar::new(3, 32, 30, want).unwrap(), Device::Cpu);
    assert!(max_abs(&got, &want) < 1e-5, "{}", max_abs(&got, &want));
    // It sharpens: the output differs from the input where there are edges.
    assert!(max_abs(&got, &img) > 1e-3);
}

// ---------------------------------------------------------------------------------------------
// JPEG.

#[test]
fn dct_matrix_is_orthonormal() {
    let a = dct_matrix();
    for i in 0..8 {
        for j in 0..8 {
            let d: f32 = (0..8).map(|k| a[i][k] * a[j][k]).sum();
            let want = if i == j { 1.0 } else { 0.0 };
            assert!((d - want).abs() < 1e-6, "({i},{j}) {d}");
        }
    }
}

#[test]
fn jpeg_of_a_constant_image_is_constant() {
    let jpeg = DiffJpeg::new(Device::Cpu);
    let c = Tensor::from_slice(&[0.3f32, 0.55, 0.8]).reshape([1, 3, 1, 1]);
    let x = c.expand([1, 3, 32, 48], false).contiguous();
    for q in [30.0, 60.0, 95.0] {
        let y = jpeg.apply(&x, &[q]).unwrap();
        assert_eq!(y.size(), vec![1, 3, 32, 48]);
        let spread = (y.amax([2i64, 3].as_slice(), false) - y.amin([2i64, 3].as_slice(), false))
            .max()
            .double_value(&[]);
        assert!(spread < 1e-5, "q {q}: not constant ({spread})");
        assert!(max_abs(&y, &x) < 4.0 / 255.0, "q {q}: {}", max_abs(&y, &x));
    }
    // Sizes that are not multiples of 16 are padded and cropped back.
    let y = jpeg.apply(&photo(21, 35), &[50.0]).unwrap();
    assert_eq!(y.size(), vec![1, 3, 21, 35]);
}

#[test]
fn jpeg_quality_100_is_near_identity_and_low_quality_changes_more() {
    let jpeg = DiffJpeg::new(Device::Cpu);
    let x = photo(64, 64);
    let e100 = mse(&jpeg.apply(&x, &[100.0]).unwrap(), &x);
    let e90 = mse(&jpeg.apply(&x, &[90.0]).unwrap(), &x);
    let e50 = mse(&jpeg.apply(&x, &[50.0]).unwrap(), &x);
    let e30 = mse(&jpeg.apply(&x, &[30.0]).unwrap(), &x);
    let psnr100 = -10.0 * e100.log10();
    assert!(psnr100 > 35.0, "q100 PSNR {psnr100:.2} dB");
    assert!(
        e100 < e90 && e90 < e50 && e50 < e30,
        "{e100} {e90} {e50} {e30}"
    );
    // Outputs stay in [0, 1].
    let y = jpeg.apply(&x, &[30.0]).unwrap();
    assert!(y.min().double_value(&[]) >= 0.0 && y.max().double_value(&[]) <= 1.0);
    // Per-sample qualities equal one call per sample.
    let xb = Tensor::cat(&[&x, &x.flip([3])], 0);
    let yb = jpeg.apply(&xb, &[35.0, 85.0]).unwrap();
    let y0 = jpeg.apply(&x, &[35.0]).unwrap();
    let y1 = jpeg.apply(&x.flip([3]), &[85.0]).unwrap();
    assert!(max_abs(&yb.narrow(0, 0, 1), &y0) < 1e-5);
    assert!(max_abs(&yb.narrow(0, 1, 1), &y1) < 1e-5);
    assert!(jpeg.apply(&x, &[0.0]).is_err());
    assert!(jpeg.apply(&xb, &[30.0, 40.0, 50.0]).is_err());
}

// ---------------------------------------------------------------------------------------------
// Resize, noise.

#[test]
fn resize_uses_scale_factor_or_size_semantics() {
    // A ramp along the width: value = column index.
    let w = 10;
    let ramp = Tensor::arange(w, (Kind::Float, Device::Cpu))
        .reshape([1, 1, 1, w])
        .expand([1, 3, 4, w], false)
        .contiguous();
    let s = 0.75;
    let by_factor = resize_by_factor(&ramp, s, ResizeMode::Bilinear).unwrap();
    assert_eq!(by_factor.size(), vec![1, 3, 3, 7]);
    let by_size = resize_to(&ramp, 3, 7, ResizeMode::Bilinear).unwrap();
    for i in 0..7i64 {
        let src_f = ((i as f64 + 0.5) / s - 0.5).clamp(0.0, (w - 1) as f64);
        let src_s = ((i as f64 + 0.5) * w as f64 / 7.0 - 0.5).clamp(0.0, (w - 1) as f64);
        let a = by_factor.double_value(&[0, 0, 0, i]);
        let b = by_size.double_value(&[0, 0, 0, i]);
        assert!(
            (a - src_f).abs() < 1e-5,
            "scale_factor: col {i}: {a} vs {src_f}"
        );
        assert!((b - src_s).abs() < 1e-5, "size: col {i}: {b} vs {src_s}");
    }
    // Bicubic keeps a linear ramp linear away from the borders; area is the bin mean.
    let bic = resize_by_factor(&ramp, 0.5, ResizeMode::Bicubic).unwrap();
    assert!((bic.double_value(&[0, 0, 0, 2]) - 4.5).abs() < 1e-5);
    let area = resize_by_factor(&ramp, 0.5, ResizeMode::Area).unwrap();
    assert_eq!(area.size(), vec![1, 3, 2, 5]);
    assert!((area.double_value(&[0, 1, 1, 3]) - 6.5).abs() < 1e-6);
    // Upscaling: ⌊h·s⌋.
    let up = resize_by_factor(&ramp, 1.37, ResizeMode::Bicubic).unwrap();
    assert_eq!(up.size(), vec![1, 3, 5, 13]);
}

#[test]
fn gaussian_gray_noise_is_one_pattern_shared_by_the_batch() {
    let _g = torch_lock();
    tch::manual_seed(11);
    let x = Tensor::zeros([3, 3, 64, 64], (Kind::Float, Device::Cpu));
    let sig = [10.0, 20.0, 30.0];
    let n = gaussian_noise(&x, &sig, &[true, false, true]).unwrap();
    let ch = |b: i64, c: i64| n.get(b).get(c);
    // Gray samples: identical channels, the same pattern scaled by σ.
    assert!(max_abs(&ch(0, 0), &ch(0, 2)) == 0.0);
    assert!(max_abs(&(ch(0, 1) / 10.0), &(ch(2, 1) / 30.0)) < 1e-6);
    // Colour sample: independent channels.
    assert!(max_abs(&ch(1, 0), &ch(1, 1)) > 0.1);
    for (b, s) in sig.iter().enumerate() {
        let std = n.get(b as i64).std(true).double_value(&[]) * 255.0;
        assert!(
            (std / s - 1.0).abs() < 0.08,
            "sample {b}: std {std} vs σ {s}"
        );
    }
}

#[test]
fn poisson_noise_variance_scales_with_intensity() {
    let _g = torch_lock();
    tch::manual_seed(12);
    // Left half 0.2, right half 0.8: two levels, so vals = 2 and var = img·scale²/vals.
    let left = Tensor::full([1, 3, 64, 32], 0.2, (Kind::Float, Device::Cpu));
    let right = Tensor::full([1, 3, 64, 32], 0.8, (Kind::Float, Device::Cpu));
    let x = Tensor::cat(&[left, right], 3);
    let scale = 1.5;
    let n = poisson_noise(&x, &[scale], &[false]).unwrap();
    let var_l = n.narrow(3, 0, 32).var(true).double_value(&[]);
    let var_r = n.narrow(3, 32, 32).var(true).double_value(&[]);
    let lv = |v: f64| (v * 255.0).round() / 255.0;
    let (want_l, want_r) = (lv(0.2) * scale * scale / 2.0, lv(0.8) * scale * scale / 2.0);
    assert!((var_l / want_l - 1.0).abs() < 0.1, "{var_l} vs {want_l}");
    assert!((var_r / want_r - 1.0).abs() < 0.1, "{var_r} vs {want_r}");
    assert!((var_r / var_l - 4.0).abs() < 0.5);
    assert!(n.mean(Kind::Float).double_value(&[]).abs() < 0.02);
    // Gray: the channels of a gray sample carry the same noise.
    let g = poisson_noise(&photo(32, 32), &[1.0], &[true]).unwrap();
    assert_eq!(max_abs(&g.get(0).get(0), &g.get(0).get(2)), 0.0);
    assert!(g.abs().max().double_value(&[]) > 0.0);
}

// ---------------------------------------------------------------------------------------------
// The plan's probabilities and the whole pipeline.

#[test]
fn plan_frequencies_match_the_spec() {
    let cfg = RealDegradation::default();
    let n = 2000;
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let mut up = [0usize; 2];
    let mut down = [0usize; 2];
    let mut keep = [0usize; 2];
    let (mut gauss, mut gray, mut gray_n) = ([0usize; 2], 0usize, 0usize);
    let (mut sinc1, mut final_sinc, mut blur2, mut resize_first) = (0, 0, 0, 0);
    let mut modes = [0usize; 3];
    for _ in 0..n {
        let p = DegradePlan::draw(&cfg, 2, (96, 96), Some(64), 4, &mut rng).unwrap();
        for (st, (r, range)) in [
            (p.resize1, cfg.resize_range),
            (p.resize2, cfg.resize_range2),
        ]
        .into_iter()
        .enumerate()
        {
            match r.kind {
                ResizeKind::Up => {
                    up[st] += 1;
                    assert!((1.0..=range.1).contains(&r.scale));
                }
                ResizeKind::Down => {
                    down[st] += 1;
                    assert!((range.0..=1.0).contains(&r.scale));
                }
                ResizeKind::Keep => {
                    keep[st] += 1;
                    assert_eq!(r.scale, 1.0);
                }
            }
        }
        for (st, nd) in [&p.noise1, &p.noise2].into_iter().enumerate() {
            let (lo, hi) = match (st, nd.kind) {
                (0, NoiseKind::Gaussian) => cfg.noise_range,
                (0, NoiseKind::Poisson) => cfg.poisson_scale_range,
                (_, NoiseKind::Gaussian) => cfg.noise_range2,
                (_, NoiseKind::Poisson) => cfg.poisson_scale_range2,
            };
            assert!(nd.level.iter().all(|l| (lo..=hi).contains(l)));
            gauss[st] += usize::from(nd.kind == NoiseKind::Gaussian);
            gray += nd.gray.iter().filter(|g| **g).count();
            gray_n += nd.gray.len();
        }
        sinc1 += p
            .kernel1
            .iter()
            .filter(|(k, _)| matches!(k, BlurKernel::Sinc { .. }))
            .count();
        final_sinc += p.final_sinc.iter().filter(|f| **f).count();
        blur2 += usize::from(p.second_blur);
        resize_first += usize::from(p.order == FinalOrder::ResizeThenJpeg);
        modes[ResizeMode::ALL
            .iter()
            .position(|m| *m == p.final_mode)
            .unwrap()] += 1;
        assert!(
            p.jpeg1
                .iter()
                .chain(&p.jpeg2)
                .all(|q| (30.0..=95.0).contains(q))
        );
        assert!(
            p.kernels1
                .iter()
                .chain(&p.kernels2)
                .chain(&p.sinc)
                .all(|k| k.size() == 21)
        );
        let (t, l, s) = p.crop.unwrap();
        assert!(s == 16 && (0..=8).contains(&t) && (0..=8).contains(&l));
    }
    for (st, probs) in [cfg.resize_prob, cfg.resize_prob2].iter().enumerate() {
        assert_rate(&format!("stage {} up", st + 1), up[st], n, probs[0]);
        assert_rate(&format!("stage {} down", st + 1), down[st], n, probs[1]);
        assert_rate(&format!("stage {} keep", st + 1), keep[st], n, probs[2]);
    }
    assert_rate("stage 1 gaussian", gauss[0], n, 0.5);
    assert_rate("stage 2 gaussian", gauss[1], n, 0.5);
    assert_rate("gray noise", gray, gray_n, 0.4);
    assert_rate("kernel1 sinc", sinc1, 2 * n, 0.1);
    assert_rate("final sinc", final_sinc, 2 * n, 0.8);
    assert_rate("second blur", blur2, n, 0.8);
    assert_rate("resize-then-JPEG order", resize_first, n, 0.5);
    for m in modes {
        assert_rate("final resize mode", m, n, 1.0 / 3.0);
    }
}

#[test]
fn degradation_shapes_ranges_and_paired_crop() {
    let _g = torch_lock();
    let cfg = RealDegradation::default();
    let deg = RealDegrader::new(&cfg, 4, Device::Cpu).unwrap();
    let gt = Tensor::cat(&[photo(96, 96), photo(96, 96).flip([2])], 0);
    let mut orders = std::collections::HashSet::new();
    for seed in 0..8u64 {
        tch::manual_seed(seed as i64);
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let plan = DegradePlan::draw(&cfg, 2, (96, 96), Some(64), 4, &mut rng).unwrap();
        orders.insert(format!("{:?}", plan.order));
        let d = deg.degrade(&gt, &plan, true).unwrap();
        assert_eq!(d.lq.size(), vec![2, 3, 16, 16]);
        assert_eq!(d.gt.size(), vec![2, 3, 64, 64]);
        let lq = &d.lq;
        assert!(lq.min().double_value(&[]) >= 0.0 && lq.max().double_value(&[]) <= 1.0);
        // 8-bit levels.
        let lv = lq * 255.0;
        assert!(max_abs(&lv, &lv.round()) < 1e-4);
        // The GT crop is the part of the input the LQ crop came from.
        let (t, l, _) = plan.crop.unwrap();
        let want = gt.narrow(2, 4 * t, 64).narrow(3, 4 * l, 64);
        assert_eq!(max_abs(&d.gt, &want), 0.0);
        // The LQ is degraded, not a copy of a downscaled GT.
        let bic = resize_to(&want, 16, 16, ResizeMode::Area).unwrap();
        assert!(max_abs(lq, &bic) > 1.0 / 255.0);
    }
    assert_eq!(orders.len(), 2, "both final orders seen over 8 seeds");
    // Too small for the 21×21 kernels after a 0.15 downscale: a clear error.
    assert!(cfg.validate(64, 4).is_err());
    assert!(cfg.validate(96, 4).is_ok());
}

// ---------------------------------------------------------------------------------------------
// Weight loaders.

fn random_weights(shapes: &[(String, Vec<usize>)], seed: i64, std: f64) -> Weights {
    tch::manual_seed(seed);
    let mut w = Weights::new();
    for (k, s) in shapes {
        let dims: Vec<i64> = s.iter().map(|d| *d as i64).collect();
        let t = Tensor::randn(dims.as_slice(), (Kind::Float, Device::Cpu)) * std;
        let data = Vec::<f32>::try_from(t.flatten(0, -1)).unwrap();
        w.insert(k.clone(), CoreTensor::new(s.clone(), data).unwrap());
    }
    w
}

fn vgg_shapes() -> Vec<(String, Vec<usize>)> {
    VGG19_CONVS
        .iter()
        .flat_map(|(i, cin, cout)| {
            let (cin, cout) = (*cin as usize, *cout as usize);
            [
                (format!("features.{i}.weight"), vec![cout, cin, 3, 3]),
                (format!("features.{i}.bias"), vec![cout]),
            ]
        })
        .collect()
}

/// A randomly initialised VGG19 file with torchvision's key names (He-like scale).
fn write_vgg(path: &Path) {
    let w = random_weights(&vgg_shapes(), 21, 0.03);
    std::fs::write(path, weights_to_bytes(&w, None).unwrap()).unwrap();
}

#[test]
fn vgg_loader_checks_names_and_shapes() {
    let _g = torch_lock();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("vgg19.safetensors");
    write_vgg(&path);
    let vgg = Vgg19::load(&path, Device::Cpu).unwrap();
    let x = photo(32, 32);
    let f = vgg.features(&x, &[2, 7, 16, 25, 34]);
    let shapes: Vec<Vec<i64>> = f.iter().map(Tensor::size).collect();
    assert_eq!(
        shapes,
        vec![
            vec![1, 64, 32, 32],
            vec![1, 128, 16, 16],
            vec![1, 256, 8, 8],
            vec![1, 512, 4, 4],
            vec![1, 512, 2, 2]
        ]
    );
    // Pre-ReLU taps carry negative values.
    assert!(f[2].min().double_value(&[]) < 0.0);
    let loss = PerceptualLoss::new(vgg, PERCEPTUAL_WEIGHTS);
    assert_eq!(loss.forward(&x, &x).double_value(&[]), 0.0);
    let sr = photo(32, 32).flip([3]).set_requires_grad(true);
    let l = loss.forward(&sr, &x);
    assert!(l.double_value(&[]) > 0.0);
    l.backward();
    assert!(sr.grad().abs().sum(Kind::Float).double_value(&[]) > 0.0);

    // A missing tensor, then a mis-shaped one: the error names the key.
    let zeros: HashMap<String, Tensor> = vgg_shapes()
        .into_iter()
        .map(|(k, s)| {
            let d: Vec<i64> = s.iter().map(|v| *v as i64).collect();
            (k, Tensor::zeros(d.as_slice(), (Kind::Float, Device::Cpu)))
        })
        .collect();
    let mut missing: HashMap<String, Tensor> = zeros
        .iter()
        .map(|(k, v)| (k.clone(), v.shallow_clone()))
        .collect();
    missing.remove("features.34.weight");
    let e = format!(
        "{:#}",
        Vgg19::from_tensors(&missing, "v.st", Device::Cpu).unwrap_err()
    );
    assert!(
        e.contains("features.34.weight") && e.contains("missing"),
        "{e}"
    );
    let mut bad = zeros;
    bad.insert(
        "features.7.bias".into(),
        Tensor::zeros([64], (Kind::Float, Device::Cpu)),
    );
    let e = format!(
        "{:#}",
        Vgg19::from_tensors(&bad, "v.st", Device::Cpu).unwrap_err()
    );
    assert!(
        e.contains("features.7.bias") && e.contains("[64]") && e.contains("[128]"),
        "{e}"
    );
}

#[test]
fn lpips_loader_and_distance() {
    let _g = torch_lock();
    let tmp = tempfile::tempdir().unwrap();
    let alex = [
        ("net.slice1.0", 3, 64, 11),
        ("net.slice2.3", 64, 192, 5),
        ("net.slice3.6", 192, 384, 3),
        ("net.slice4.8", 384, 256, 3),
        ("net.slice5.10", 256, 256, 3),
    ];
    let mut shapes = Vec::new();
    for (l, (n, cin, cout, k)) in alex.iter().enumerate() {
        shapes.push((format!("{n}.weight"), vec![*cout, *cin, *k, *k]));
        shapes.push((format!("{n}.bias"), vec![*cout]));
        shapes.push((format!("lin{l}.model.1.weight"), vec![1, *cout, 1, 1]));
    }
    let mut w = random_weights(&shapes, 3, 0.05);
    for l in 0..5 {
        let t = w.get_mut(&format!("lin{l}.model.1.weight")).unwrap();
        t.data.iter_mut().for_each(|v| *v = v.abs());
    }
    let path = tmp.path().join("lpips.safetensors");
    std::fs::write(&path, weights_to_bytes(&w, None).unwrap()).unwrap();
    let lp = Lpips::load(&path, Device::Cpu).unwrap();
    let x = photo(64, 64);
    assert!(lp.distance(&x, &x).double_value(&[0]).abs() < 1e-7);
    let near = lp.distance(&x, &(&x * 0.95 + 0.02)).double_value(&[0]);
    let far = lp.distance(&x, &x.flip([2])).double_value(&[0]);
    assert!(near > 0.0 && far > near, "{near} {far}");
    w.remove("lin3.model.1.weight");
    std::fs::write(&path, weights_to_bytes(&w, None).unwrap()).unwrap();
    let e = format!("{:#}", Lpips::load(&path, Device::Cpu).unwrap_err());
    assert!(e.contains("lin3.model.1.weight"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// Discriminator.

#[test]
fn discriminator_spectral_norm_and_state() {
    let _g = torch_lock();
    tch::manual_seed(4);
    let mut d = UNetDiscriminator::new(8, true, Device::Cpu);
    let x = photo(32, 32);
    let names: Vec<String> = d.weights().unwrap().keys().cloned().collect();
    for k in [
        "conv0.weight",
        "conv0.bias",
        "conv1.weight_orig",
        "conv1.weight_u",
        "conv1.weight_v",
        "conv8.weight_orig",
        "conv9.weight",
        "conv9.bias",
    ] {
        assert!(names.iter().any(|n| n == k), "{k} not in {names:?}");
    }
    assert_eq!(d.trainables().len(), 2 + 8 + 2);
    let u0 = d.weights().unwrap()["conv3.weight_u"].data.clone();
    d.training = false;
    let y = d.forward(&x).unwrap();
    assert_eq!(y.size(), vec![1, 1, 32, 32]);
    assert_eq!(
        d.weights().unwrap()["conv3.weight_u"].data,
        u0,
        "eval mode keeps u"
    );
    d.training = true;
    for _ in 0..60 {
        let _ = tch::no_grad(|| d.forward(&x).unwrap());
    }
    let w = d.weights().unwrap();
    assert_ne!(w["conv3.weight_u"].data, u0, "training mode updates u");
    // After many power iterations uᵀWv is W's largest singular value.
    let t = |k: &str| Tensor::from_slice(&w[k].data);
    let wm = t("conv3.weight_orig").reshape([w["conv3.weight_orig"].shape[0] as i64, -1]);
    let sigma = t("conv3.weight_u")
        .dot(&wm.mv(&t("conv3.weight_v")))
        .double_value(&[]);
    let (_, sv, _) = wm.svd(true, false);
    let top = sv.double_value(&[0]);
    assert!((sigma / top - 1.0).abs() < 1e-3, "{sigma} vs {top}");
    // Round trip through the state tensors.
    let mut d2 = UNetDiscriminator::new(8, true, Device::Cpu);
    let map: HashMap<String, Tensor> = w
        .iter()
        .map(|(k, v)| {
            let s: Vec<i64> = v.shape.iter().map(|x| *x as i64).collect();
            (k.clone(), Tensor::from_slice(&v.data).reshape(s.as_slice()))
        })
        .collect();
    d2.load(&map, "mem").unwrap();
    assert_eq!(d2.weights().unwrap(), w);
    assert!(d.forward(&photo(30, 32)).is_err());
}

// ---------------------------------------------------------------------------------------------
// Training.

fn smoke(dir: &Path, iters: u64) -> RealWorldConfig {
    let mut c = RealWorldConfig::smoke_gan();
    c.data.train_dirs = vec![train_dir(dir, 6)];
    c.run.val_hr_dir = None;
    c.run.val_every = 0;
    c.run.threads = 1;
    for s in [&mut c.net_teacher, &mut c.net_student.stage, &mut c.gan.g] {
        s.iterations = iters;
    }
    c
}

/// Random teacher and KDSRNet_S checkpoints and a random VGG for the GAN stage.
fn gan_inputs(cfg: &RealWorldConfig, dir: &Path) -> TrainOptions {
    tch::manual_seed(9);
    let t = dir.join("teacher.safetensors");
    Model::new(&cfg.teacher_model().unwrap(), Device::Cpu)
        .save(&t)
        .unwrap();
    let s = dir.join("student.safetensors");
    Model::new(&cfg.student_model().unwrap(), Device::Cpu)
        .save(&s)
        .unwrap();
    let v = dir.join("vgg19.safetensors");
    write_vgg(&v);
    TrainOptions {
        vgg: Some(v),
        teacher_weights: Some(t),
        init_weights: Some(s),
        quiet: true,
        log_every: Some(1),
        ..Default::default()
    }
}

#[test]
fn one_gan_step_updates_g_and_d_but_not_the_teacher() {
    let _g = torch_lock();
    let tmp = tempfile::tempdir().unwrap();
    let cfg = smoke(tmp.path(), 4);
    let opts = gan_inputs(&cfg, tmp.path());
    // The GAN stage refuses to start without VGG weights.
    let e = RealWorldStep::new(
        &cfg,
        Stage::GanStudent,
        &TrainOptions {
            vgg: None,
            ..opts.clone()
        },
    )
    .unwrap_err();
    assert!(format!("{e:#}").contains("--vgg"), "{e:#}");
    let mut r = RealWorldStep::new(&cfg, Stage::GanStudent, &opts).unwrap();
    let g0 = weights_of(&r.g.model.vs).unwrap();
    let t0 = weights_of(&r.teacher.as_ref().unwrap().vs).unwrap();
    let d0 = r.disc().unwrap().weights().unwrap();
    let hr = Tensor::cat(&[photo(96, 96), photo(96, 96).flip([3])], 0);
    let l = r.step(&hr, 0).unwrap();
    assert!(l.total.double_value(&[]).is_finite());
    for k in ["l1", "kd", "perceptual", "gan_g", "d_real", "d_fake"] {
        assert!(l.term(k).unwrap().double_value(&[]).is_finite(), "{k}");
    }
    let g1 = weights_of(&r.g.model.vs).unwrap();
    let t1 = weights_of(&r.teacher.as_ref().unwrap().vs).unwrap();
    let d1 = r.disc().unwrap().weights().unwrap();
    assert_eq!(t0, t1, "the teacher changed");
    for k in ["G.head.0.weight", "G.tail.1.bias", "E_st.mlp.0.weight"] {
        assert_ne!(g0[k], g1[k], "{k} not updated");
    }
    assert_eq!(g0["G.sub_mean.bias"], g1["G.sub_mean.bias"]);
    for k in [
        "conv0.weight",
        "conv4.weight_orig",
        "conv9.bias",
        "conv2.weight_u",
    ] {
        assert_ne!(d0[k], d1[k], "{k} not updated");
    }
    // The EMA moved by 1/1000 of the step.
    let e = r.validated_weights().unwrap();
    let k = "G.head.0.weight";
    let (a, b, c) = (&g0[k].data, &g1[k].data, &e[k].data);
    let i = (0..a.len())
        .max_by(|x, y| (b[*x] - a[*x]).abs().total_cmp(&(b[*y] - a[*y]).abs()))
        .unwrap();
    assert!(((c[i] - a[i]) / (b[i] - a[i]) - 0.001).abs() < 1e-4);
}

fn logged(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v.get("loss").is_some())
        .map(|mut v| {
            let o = v.as_object_mut().unwrap();
            o.remove("it_per_s");
            o.remove("elapsed_s");
            v
        })
        .collect()
}

#[test]
fn gan_stage_resume_equals_an_uninterrupted_run() {
    let _g = torch_lock();
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = smoke(tmp.path(), 6);
    cfg.pairs.pool_size = 4; // full after 2 iterations, then exchanges
    cfg.run.save_every = 100;
    let base = gan_inputs(&cfg, tmp.path());
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let run = |out: &Path, stop: Option<u64>, resume: bool| {
        run_stage(
            &cfg,
            Stage::GanStudent,
            &TrainOptions {
                out_dir: out.to_path_buf(),
                stop_after: stop,
                resume,
                ..base.clone()
            },
        )
        .unwrap()
    };
    let ra = run(&a, None, false);
    assert_eq!((ra.iterations, ra.ran), (6, 6));
    let rb = run(&b, Some(4), false);
    assert_eq!((rb.iterations, rb.ran), (4, 4));
    assert!(!b.join("gan-student/final_ema.safetensors").exists());
    let rb = run(&b, None, true);
    assert_eq!((rb.iterations, rb.ran), (6, 2));
    let la = logged(&a.join("gan-student/metrics.jsonl"));
    assert_eq!(la.len(), 6);
    assert_eq!(la, logged(&b.join("gan-student/metrics.jsonl")));
    for f in [
        "final.safetensors",
        "final_ema.safetensors",
        "final_net_d.safetensors",
    ] {
        let x = std::fs::read(a.join("gan-student").join(f)).unwrap();
        let y = std::fs::read(b.join("gan-student").join(f)).unwrap();
        assert!(x == y, "{f} differs");
    }
    assert!(a.join("gan-student/final_ema.json").exists());
    assert!(a.join("gan-student/train.toml").exists());
}

#[test]
fn edge_size_l1_goes_down_on_the_cpu() {
    let _g = torch_lock();
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = smoke(tmp.path(), 30);
    cfg.model.preset = "student-edge-rw".into();
    cfg.data.train_dirs = vec![train_dir(tmp.path(), 2)];
    cfg.data.batch_size = 4;
    cfg.net_teacher.lr = 1e-3;
    cfg.run.threads = 0;
    cfg.run.save_every = 1000;
    cfg.validate().unwrap();
    let out = tmp.path().join("run");
    let r = run_stage(
        &cfg,
        Stage::Teacher,
        &TrainOptions {
            out_dir: out.clone(),
            quiet: true,
            log_every: Some(1),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(r.iterations, 30);
    let l1: Vec<f64> = logged(&out.join("net-teacher/metrics.jsonl"))
        .iter()
        .map(|v| v["l1"].as_f64().unwrap())
        .collect();
    let head = l1[..5].iter().sum::<f64>() / 5.0;
    let tail = l1[25..].iter().sum::<f64>() / 5.0;
    eprintln!(
        "edge net-teacher L1: first 5 {head:.4}, last 5 {tail:.4}; {:.1} it/s",
        r.it_per_s
    );
    assert!(tail < 0.8 * head, "L1 {head:.4} → {tail:.4}");
    let m = Model::load(
        &cfg.teacher_model().unwrap(),
        &out.join("net-teacher/final_ema.safetensors"),
        Device::Cpu,
    )
    .unwrap();
    assert_eq!(m.net.cfg.n_feats, 32);
}

// ---------------------------------------------------------------------------------------------
// Config and evaluation.

#[test]
fn config_presets_round_trip_through_toml_and_overrides() {
    let tmp = tempfile::tempdir().unwrap();
    for name in ["paper-gan", "edge-gan", "smoke-gan"] {
        let c = RealWorldConfig::preset(name).unwrap();
        c.validate().unwrap();
        let p = tmp.path().join(format!("{name}.toml"));
        std::fs::write(&p, c.to_toml().unwrap()).unwrap();
        let mut back = RealWorldConfig::resolve(p.to_str().unwrap(), &[]).unwrap();
        // Relative paths resolve against the file's folder.
        back.data.train_dirs = c.data.train_dirs.clone();
        back.run.val_hr_dir = c.run.val_hr_dir.clone();
        assert_eq!(back, c, "{name}");
    }
    let paper = RealWorldConfig::paper_gan();
    assert_eq!(paper.student_model().unwrap(), {
        let mut k = kdsr_core::spec::KdsrConfig::student_gan();
        k.family = kdsr_core::spec::Family::RealWorld;
        k
    });
    assert_eq!(paper.teacher_model().unwrap().ide_in_channels(), 51);
    let c = RealWorldConfig::resolve(
        "edge-gan",
        &[
            "gan.d.num_feat=16".into(),
            "degradation.jpeg_range=[40.0, 90.0]".into(),
            "run.device=cpu".into(),
        ],
    )
    .unwrap();
    assert_eq!(c.gan.d.num_feat, 16);
    assert_eq!(c.degradation.jpeg_range, (40.0, 90.0));
    assert_eq!(c.student_model().unwrap().n_feats, 32);
    for bad in [
        "gan.d.nope=1",
        "pairs.gt_size=100",
        "pairs.pool_size=6",
        "data.hr_patch=64",
    ] {
        assert!(
            RealWorldConfig::resolve("edge-gan", &[bad.into()]).is_err(),
            "{bad} accepted"
        );
    }
}

#[test]
fn validation_pairs_are_reproducible_and_scored() {
    let _g = torch_lock();
    let tmp = tempfile::tempdir().unwrap();
    let hr_dir = tmp.path().join("hr");
    std::fs::create_dir_all(&hr_dir).unwrap();
    for n in ["bird.png", "butterfly.png"] {
        std::fs::copy(repo("data/Set5").join(n), hr_dir.join(n)).unwrap();
    }
    let cfg = RealDegradation::default();
    let a = synth_pairs(&hr_dir, &cfg, 4, 2, 3, Device::Cpu).unwrap();
    let b = synth_pairs(&hr_dir, &cfg, 4, 2, 3, Device::Cpu).unwrap();
    assert_eq!(a.len(), 2);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.lr.data(), y.lr.data(), "{}", x.name);
        assert_eq!(x.hr.height(), 4 * x.lr.height());
    }
    // The same pairs from folders (LR named `NAMEx4.png`).
    let lr_dir = tmp.path().join("lr");
    std::fs::create_dir_all(&lr_dir).unwrap();
    for p in &a {
        kdsr_core::io::save_image(
            lr_dir.join(format!("{}x4.png", p.name)),
            &p.lr,
            None,
            kdsr_core::io::BitDepth::Eight,
        )
        .unwrap();
    }
    let c = load_pairs(&lr_dir, &hr_dir, 4, 10).unwrap();
    assert_eq!(c.len(), 2);
    assert_eq!(c[0].lr.data(), a[0].lr.data());
    tch::manual_seed(0);
    let m = Model::new(
        &RealWorldConfig::smoke_gan().student_model().unwrap(),
        Device::Cpu,
    );
    let r = evaluate_pairs(&m.net, &c, Device::Cpu, MetricVariant::BasicSr, None).unwrap();
    assert_eq!(r.rows.len(), 2);
    assert!(r.psnr.is_finite() && r.ssim.is_finite() && r.lpips.is_none());
    assert!(r.to_markdown("t").contains("| **mean** |"));
    std::fs::remove_file(lr_dir.join("birdx4.png")).unwrap();
    let e = format!("{:#}", load_pairs(&lr_dir, &hr_dir, 4, 10).unwrap_err());
    assert!(e.contains("bird"), "{e}");
}
