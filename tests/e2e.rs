//! End to end, as a user runs kdsr: train a tiny teacher then a student on this repo's T91 images
//! with the trainer library (the code `trainer train` runs), export the student as the split
//! IDE + SR ONNX pair with the converter library (verified in tract), upscale an LR image made
//! from a held-aside Set5 image with the real `kdsr-edge upscale` binary, and check that its
//! output beats MATLAB-bicubic ×4 of the same LR on PSNR (Y, border 4, the official KDSR metric).
//!
//! One test in its own binary: libtorch's generator is process-global, and nothing else here
//! draws from it. Needs libtorch (`source scripts/env.sh`) and `kdsr-edge` built into the same
//! target folder (`cargo test --workspace` does both; see `tests/README.md`).
#![allow(clippy::unwrap_used)] // a test: a panic is the failure report

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use kdsr_converter::export::{ExportOptions, export};
use kdsr_converter::{ExportKind, Network};
use kdsr_core::eval::to_rgb;
use kdsr_core::io::{BitDepth, load_image, save_image};
use kdsr_core::metrics::{MetricVariant, evaluate_pair};
use kdsr_core::pipeline::degrade::{ClassicDegradation, Downsample};
use kdsr_core::pipeline::kernels::{KERNEL_SIZE, isotropic_gaussian};
use kdsr_core::pipeline::quantize;
use kdsr_core::pipeline::resize::{BicubicVariant, imresize};
use kdsr_runtime::{Options, Upscaler};
use kdsr_test_support::{max_abs, repo};
use kdsr_trainer::classic::config::TrainConfig;
use kdsr_trainer::classic::train::{Stage, run_stage};
use kdsr_trainer::config::Experiment;
use kdsr_trainer::driver::TrainOptions;

/// Scale of every preset used here.
const SCALE: u32 = 4;
/// Blur of the held-aside test LR (isotropic Gaussian, inside the training range 0.2–4.0).
const TEST_SIGMA: f64 = 2.0;
/// The SR output must beat bicubic by more than this many dB. Measured with this config: +1.90 dB
/// (31.67 vs 29.77 dB, the same on every run); with all libtorch threads +1.96 dB (seed 0),
/// +1.85 dB (seed 1), +2.03 dB (seed 2).
const MARGIN_DB: f64 = 1.0;

/// `target/<profile>/kdsr-edge`: the test executable is `target/<profile>/deps/e2e-HASH`, and
/// cargo puts the package binaries one folder up (what `assert_cmd`'s `cargo_bin` does).
/// `KDSR_EDGE` overrides the path.
fn kdsr_edge() -> PathBuf {
    let bin = match std::env::var_os("KDSR_EDGE") {
        Some(p) => PathBuf::from(p),
        None => {
            let exe = std::env::current_exe().unwrap();
            let dir = exe
                .parent()
                .and_then(Path::parent)
                .expect("the test executable lies in target/<profile>/deps");
            dir.join(format!("kdsr-edge{}", std::env::consts::EXE_SUFFIX))
        }
    };
    assert!(
        bin.is_file(),
        "{} not found: build the CLI into the same target folder first \
         (`cargo build -p kdsr-runtime`, or run the whole workspace with `cargo test --workspace`), \
         or point KDSR_EDGE at a kdsr-edge binary",
        bin.display()
    );
    bin
}

/// The experiment: the `smoke` preset (student-tiny, CPU) with `--set`-style overrides, as
/// `trainer train --config smoke --set …` resolves it: training on all of T91, no validation.
/// Sizes measured to beat bicubic clearly in well under a minute of training on 2 cores (see
/// `tests/README.md`).
fn config() -> TrainConfig {
    let t91 = repo("data/T91");
    let overrides = [
        format!("data.train_dirs=[{:?}]", t91.display().to_string()),
        "data.hr_patch=96".into(),
        "data.batch_size=4".into(),
        "data.workers=1".into(),
        // 600 iterations at 2e-3, halved every 200, so that the last iterate has settled: at a
        // constant 1e-3, 1000 iterations ended 0.9 dB below 600.
        "teacher.iterations=600".into(),
        "teacher.lr=2e-3".into(),
        "teacher.decay_every=200".into(),
        "student.iterations=600".into(),
        "student.lr=2e-3".into(),
        "student.decay_every=200".into(),
        "run.val_every=0".into(),
        "run.save_every=1000".into(),
        // One libtorch thread: 2.5x faster than all cores on the shared 2-core build machine, and
        // the same float reductions whatever the core count.
        "run.threads=1".into(),
        "run.seed=0".into(),
        "run.device=\"cpu\"".into(),
    ];
    TrainConfig::resolve("smoke", &overrides).unwrap()
}

#[test]
fn tiny_teacher_student_export_upscale_beats_bicubic() {
    let t_all = Instant::now();
    let edge = kdsr_edge();
    let tmp = tempfile::tempdir().unwrap();
    let tmp = tmp.path();

    // 1. Train: teacher (L1), then student (L1 + KD, G from the teacher), as `trainer train`.
    let cfg = config();
    let run = tmp.join("run");
    let opts = TrainOptions {
        out_dir: run.clone(),
        quiet: true,
        ..Default::default()
    };
    let t = Instant::now();
    let teacher = run_stage(&cfg, Stage::Teacher, &opts).unwrap();
    eprintln!(
        "teacher: {} iterations, loss {:.4}, {:.1} it/s, {:.1} s",
        teacher.iterations,
        teacher.last_loss,
        teacher.it_per_s,
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let student = run_stage(&cfg, Stage::Student, &opts).unwrap();
    eprintln!(
        "student: {} iterations, loss {:.4}, {:.1} it/s, {:.1} s",
        student.iterations,
        student.last_loss,
        student.it_per_s,
        t.elapsed().as_secs_f64()
    );
    assert_eq!(student.weights, run.join("student/final.safetensors"));

    // 2. Export the student as the split pair (config from the NAME.json the trainer wrote
    //    beside the weights); `export` verifies each graph in tract before writing it.
    let t = Instant::now();
    let net = Network::load(None, &student.weights).unwrap();
    assert_eq!(net.config.preset, "student-tiny");
    let prefix = tmp.join("model").join("student");
    std::fs::create_dir_all(prefix.parent().unwrap()).unwrap();
    let report = export(
        &net,
        &ExportOptions {
            kind: ExportKind::Split,
            bench_size: None,
            ..Default::default()
        },
        &prefix.with_extension("onnx"),
    )
    .unwrap();
    for g in &report.graphs {
        eprintln!(
            "exported {} ({} bytes), tract vs reference max |Δ| {:?}",
            g.file.display(),
            g.file_bytes,
            g.max_abs_diff
        );
    }
    let ide = tmp.join("model/student-ide.onnx");
    let sr = tmp.join("model/student-sr.onnx");
    assert!(ide.is_file() && sr.is_file(), "split pair not written");
    eprintln!("export: {:.1} s", t.elapsed().as_secs_f64());

    // 3. The held-aside image (Set5 is never trained on; T91 is the training set), degraded with
    //    the classic pipeline: isotropic Gaussian blur σ = 2.0, official bicubic ↓4, 8 bits.
    let hr = to_rgb(&load_image(repo("data/Set5/baby.png")).unwrap().rgb)
        .unwrap()
        .crop_to_multiple(SCALE as usize)
        .unwrap();
    let degradation = ClassicDegradation::new(
        isotropic_gaussian(KERNEL_SIZE, TEST_SIGMA).unwrap(),
        SCALE,
        0.0,
        Downsample::Bicubic,
    )
    .unwrap();
    let lr = degradation.apply_with_noise(&hr, None).unwrap();
    let lr_png = tmp.join("baby-lr.png");
    save_image(&lr_png, &lr, None, BitDepth::Eight).unwrap();

    // 4. The real CLI.
    let t = Instant::now();
    let out_png = tmp.join("baby-x4.png");
    let out = Command::new(&edge)
        .arg("upscale")
        .arg("-i")
        .arg(&lr_png)
        .arg("-o")
        .arg(&out_png)
        .arg("-m")
        .arg(&prefix)
        .arg("--quiet")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} upscale failed ({}):\n{}{}",
        edge.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("kdsr-edge upscale: {:.1} s", t.elapsed().as_secs_f64());
    let sr_img = load_image(&out_png).unwrap();
    assert_eq!(sr_img.bit_depth, BitDepth::Eight);
    let sr_img = sr_img.rgb;
    assert_eq!(
        sr_img.shape(),
        hr.shape(),
        "output is not ×{SCALE} of the LR"
    );

    // The file is what the library computes from the same model (8-bit rounding apart).
    let up = Upscaler::load(&prefix, Options::default()).unwrap();
    let lib = up.upscale(&lr).unwrap().map(quantize);
    assert_eq!(sr_img.shape(), lib.shape());
    let d = max_abs(sr_img.data(), lib.data());
    assert!(
        d <= 1.0 / 255.0 + 1e-6,
        "CLI output differs from Upscaler's by {d}"
    );

    // 5. PSNR on Y, border 4, both quantised to 8 bits (the benchmark evaluation).
    let metric = MetricVariant::Kdsr;
    let psnr_sr = evaluate_pair(&sr_img, &hr, SCALE as usize, metric)
        .unwrap()
        .psnr;
    let bicubic = imresize(&lr, f64::from(SCALE), BicubicVariant::Matlab).unwrap();
    let psnr_bic = evaluate_pair(&bicubic, &hr, SCALE as usize, metric)
        .unwrap()
        .psnr;
    eprintln!(
        "baby σ={TEST_SIGMA} ×{SCALE} ({metric}, Y, border {SCALE}): kdsr-edge {psnr_sr:.3} dB, \
         bicubic {psnr_bic:.3} dB, gain {:.3} dB (required > {MARGIN_DB}); total {:.1} s",
        psnr_sr - psnr_bic,
        t_all.elapsed().as_secs_f64()
    );
    assert!(
        psnr_sr > psnr_bic + MARGIN_DB,
        "kdsr-edge {psnr_sr:.3} dB does not beat bicubic {psnr_bic:.3} dB by {MARGIN_DB} dB"
    );
}
