//! Evaluation as the official code does it: LR made on the fly from HR images (cropped to a
//! multiple of the scale) with the classic pipeline on the CPU, SR by the network, PSNR/SSIM on Y
//! after 8-bit quantisation. Gaussian8 (isotropic σ set) and the anisotropic + noise grid.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use kdsr_core::Planar;
use kdsr_core::metrics::{MetricVariant, evaluate_pair};
use kdsr_core::pipeline::degrade::{ClassicDegradation, Downsample};
use kdsr_core::pipeline::kernels::{
    ANISO_TEST_KERNELS, GAUSSIAN8_X2_SIGMAS, GAUSSIAN8_X4_SIGMAS, KERNEL_SIZE,
    anisotropic_gaussian_deg, isotropic_gaussian,
};
use kdsr_core::pipeline::resize::{BicubicVariant, imresize};
use rand::SeedableRng;
use serde::Serialize;
use tch::{Device, Tensor};

use crate::model::BlindSr;

/// One HR test image, cropped to a multiple of the scale.
#[derive(Clone, Debug)]
pub struct EvalImage {
    /// File stem.
    pub name: String,
    /// HR pixels, RGB [0,1].
    pub hr: Planar,
}

/// One test degradation.
#[derive(Clone, Debug)]
pub struct EvalCase {
    /// Label, e.g. `iso σ=2.6` or `aniso (3.5,1.5,30°) n=10`.
    pub label: String,
    /// The degradation.
    pub degradation: ClassicDegradation,
}

/// The Gaussian8 cases for a scale (×4: σ 1.8…3.2; ×2: 0.9…1.6), or only `sigmas` when given.
pub fn gaussian8(scale: u32, sigmas: &[f64]) -> Result<Vec<EvalCase>> {
    let list: Vec<f64> = if !sigmas.is_empty() {
        sigmas.to_vec()
    } else {
        match scale {
            4 => GAUSSIAN8_X4_SIGMAS.to_vec(),
            2 => GAUSSIAN8_X2_SIGMAS.to_vec(),
            s => bail!("Gaussian8 is defined for ×2 and ×4; give explicit σ values for ×{s}"),
        }
    };
    list.iter()
        .map(|s| {
            Ok(EvalCase {
                label: format!("iso σ={s:.1}"),
                degradation: ClassicDegradation::new(
                    isotropic_gaussian(KERNEL_SIZE, *s)?,
                    scale,
                    0.0,
                    Downsample::Bicubic,
                )?,
            })
        })
        .collect()
}

/// The 9 anisotropic test kernels × the given noise levels (0..255 units).
pub fn aniso_grid(scale: u32, noise_levels: &[f32]) -> Result<Vec<EvalCase>> {
    let mut out = Vec::new();
    for n in noise_levels {
        for (i, (l1, l2, th)) in ANISO_TEST_KERNELS.iter().enumerate() {
            out.push(EvalCase {
                label: format!("k{} ({l1},{l2},{th}°) n={n}", i + 1),
                degradation: ClassicDegradation::new(
                    anisotropic_gaussian_deg(KERNEL_SIZE, *l1, *l2, *th)?,
                    scale,
                    *n,
                    Downsample::Bicubic,
                )?,
            });
        }
    }
    Ok(out)
}

/// Loads up to `max` images (sorted by name) from a folder, cropped to a multiple of `scale`.
/// Gray images are replicated to RGB; an unreadable file is an error naming it.
pub fn load_folder(dir: &Path, scale: u32, max: usize) -> Result<Vec<EvalImage>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading test folder {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                matches!(
                    e.to_ascii_lowercase().as_str(),
                    "png" | "jpg" | "jpeg" | "bmp" | "tif" | "tiff" | "webp"
                )
            })
        })
        .collect();
    paths.sort();
    paths.truncate(max);
    if paths.is_empty() {
        bail!("no images in {}", dir.display());
    }
    paths
        .iter()
        .map(|p| {
            let img = kdsr_core::io::load_image(p)?;
            let rgb = to_rgb(&img.rgb)?;
            Ok(EvalImage {
                name: p
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                hr: rgb.crop_to_multiple(scale as usize)?,
            })
        })
        .collect()
}

/// Gray → RGB by replication; RGB unchanged.
pub fn to_rgb(p: &Planar) -> Result<Planar> {
    match p.channels() {
        3 => Ok(p.clone()),
        1 => {
            let mut d = Vec::with_capacity(p.data().len() * 3);
            for _ in 0..3 {
                d.extend_from_slice(p.data());
            }
            Ok(Planar::new(3, p.height(), p.width(), d)?)
        }
        c => bail!("{c}-channel image: expected gray or RGB"),
    }
}

/// A `[1,C,H,W]` tensor from a planar image.
pub fn planar_to_tensor(p: &Planar, device: Device) -> Tensor {
    let [c, h, w] = p.shape();
    Tensor::from_slice(p.data())
        .reshape([1, c as i64, h as i64, w as i64])
        .to_device(device)
}

/// A planar image from a `[1,C,H,W]` tensor.
pub fn tensor_to_planar(t: &Tensor) -> Result<Planar> {
    let s = t.size();
    let data = Vec::<f32>::try_from(t.to_device(Device::Cpu).contiguous().flatten(0, -1))?;
    Ok(Planar::new(
        s[1] as usize,
        s[2] as usize,
        s[3] as usize,
        data,
    )?)
}

/// PSNR/SSIM of one (case, image).
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// Case label.
    pub case: String,
    /// Image name.
    pub image: String,
    /// Network PSNR (dB).
    pub psnr: f64,
    /// Network SSIM.
    pub ssim: f64,
    /// Bicubic-interpolation PSNR of the same LR.
    pub bicubic_psnr: f64,
    /// Bicubic SSIM.
    pub bicubic_ssim: f64,
}

/// Per-case means and the overall mean.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Which metric implementation produced the numbers.
    pub metric: MetricVariant,
    /// Every (case, image).
    pub rows: Vec<Row>,
    /// `(case, mean PSNR, mean SSIM, bicubic PSNR, bicubic SSIM)` in case order.
    pub per_case: Vec<(String, f64, f64, f64, f64)>,
    /// Mean over all rows: PSNR, SSIM, bicubic PSNR, bicubic SSIM.
    pub mean: (f64, f64, f64, f64),
}

fn mean(v: impl Iterator<Item = f64>) -> f64 {
    let (s, n) = v.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    if n == 0 { f64::NAN } else { s / n as f64 }
}

/// Evaluates `net` on every (case, image). Noise draws come from a generator seeded with `seed`
/// per (case, image), so results are reproducible. Teachers get the HR image as IDE input.
pub fn evaluate(
    net: &BlindSr,
    images: &[EvalImage],
    cases: &[EvalCase],
    device: Device,
    metric: MetricVariant,
    seed: u64,
) -> Result<Report> {
    let scale = net.cfg.scale;
    let mut rows = Vec::new();
    for (ci, case) in cases.iter().enumerate() {
        for (ii, img) in images.iter().enumerate() {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ ((ci as u64) << 32) ^ ii as u64);
            let lr = case.degradation.apply(&img.hr, &mut rng)?;
            let lr_t = planar_to_tensor(&lr, device);
            let hr_t = planar_to_tensor(&img.hr, device);
            let out = tch::no_grad(|| net.forward(&lr_t, Some(&hr_t)))?;
            let sr = tensor_to_planar(&out.sr)?;
            let m = evaluate_pair(&sr, &img.hr, scale as usize, metric)?;
            let bic = imresize(&lr, f64::from(scale), BicubicVariant::Matlab)?;
            let b = evaluate_pair(&bic, &img.hr, scale as usize, metric)?;
            rows.push(Row {
                case: case.label.clone(),
                image: img.name.clone(),
                psnr: m.psnr,
                ssim: m.ssim,
                bicubic_psnr: b.psnr,
                bicubic_ssim: b.ssim,
            });
        }
    }
    let per_case = cases
        .iter()
        .map(|c| {
            let r = || rows.iter().filter(|r| r.case == c.label);
            (
                c.label.clone(),
                mean(r().map(|r| r.psnr)),
                mean(r().map(|r| r.ssim)),
                mean(r().map(|r| r.bicubic_psnr)),
                mean(r().map(|r| r.bicubic_ssim)),
            )
        })
        .collect();
    let mean_all = (
        mean(rows.iter().map(|r| r.psnr)),
        mean(rows.iter().map(|r| r.ssim)),
        mean(rows.iter().map(|r| r.bicubic_psnr)),
        mean(rows.iter().map(|r| r.bicubic_ssim)),
    );
    Ok(Report {
        metric,
        rows,
        per_case,
        mean: mean_all,
    })
}

impl Report {
    /// A markdown table: one row per case plus the mean.
    pub fn to_markdown(&self, title: &str) -> String {
        let mut s = format!(
            "### {title}\n\nMetric: `{}` (Y channel, 8-bit, border = scale).\n\n| case | PSNR | SSIM | bicubic PSNR | bicubic SSIM |\n|---|---|---|---|---|\n",
            self.metric
        );
        for (c, p, ss, bp, bs) in &self.per_case {
            s += &format!("| {c} | {p:.2} | {ss:.4} | {bp:.2} | {bs:.4} |\n");
        }
        let (p, ss, bp, bs) = self.mean;
        s += &format!("| **mean** | **{p:.2}** | **{ss:.4}** | {bp:.2} | {bs:.4} |\n");
        s
    }
}
