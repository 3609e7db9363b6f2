//! Evaluation on real-world validation pairs: PSNR / SSIM (BasicSR metrics, Y channel, border =
//! scale, after 8-bit quantisation, via [`kdsr_core::metrics::evaluate_pair`]) and LPIPS when its
//! weights are given ([`Lpips`]).
//!
//! Pairs come either from two folders (LR images matched to the HR images by file stem, also
//! `NAMEx4`), as the AIM19 / NTIRE2020 validation sets are distributed, or are synthesised once
//! from HR images with the training degradation at a fixed seed ([`synth_pairs`]; the
//! degradation starts from the plain HR image, not the sharpened one).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use kdsr_core::Planar;
use kdsr_core::metrics::{MetricVariant, evaluate_pair};
use rand::SeedableRng;
use serde::Serialize;
use tch::Device;

use super::degrade::{DegradePlan, RealDegradation, RealDegrader};
use super::lpips::Lpips;
use crate::driver::mix;
use crate::eval::{load_folder, planar_to_tensor, tensor_to_planar, to_rgb};
use crate::model::BlindSr;

/// One validation pair.
#[derive(Clone, Debug)]
pub struct Pair {
    /// File stem of the HR image.
    pub name: String,
    /// LR image, RGB [0, 1].
    pub lr: Planar,
    /// HR image, exactly `scale` times the LR size.
    pub hr: Planar,
}

fn find_lr(dir: &Path, stem: &str, scale: u32) -> Option<PathBuf> {
    let names = [stem.to_owned(), format!("{stem}x{scale}")];
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_stem()
                .and_then(|s| s.to_str())
                .is_some_and(|s| names.iter().any(|n| n == s))
        })
        .collect();
    found.sort();
    found.into_iter().next()
}

/// Up to `max` pairs: the HR images of `hr_dir` (sorted) with the LR image of the same stem (or
/// `STEMx4`) in `lr_dir`. The HR image is cropped (top-left) to `scale ×` the LR size; an HR
/// image smaller than that, or a missing LR image, is an error naming it.
pub fn load_pairs(lr_dir: &Path, hr_dir: &Path, scale: u32, max: usize) -> Result<Vec<Pair>> {
    let hrs = load_folder(hr_dir, scale, max)?;
    hrs.into_iter()
        .map(|img| {
            let p = find_lr(lr_dir, &img.name, scale).with_context(|| {
                format!(
                    "no LR image for `{}` in {} (tried {0}.* and {0}x{scale}.*)",
                    img.name,
                    lr_dir.display()
                )
            })?;
            let lr = to_rgb(&kdsr_core::io::load_image(&p)?.rgb)?;
            let s = scale as usize;
            let (h, w) = (lr.height() * s, lr.width() * s);
            ensure!(
                img.hr.height() >= h && img.hr.width() >= w,
                "HR `{}` ({}x{}) is smaller than ×{scale} its LR {} ({}x{})",
                img.name,
                img.hr.width(),
                img.hr.height(),
                p.display(),
                lr.width(),
                lr.height()
            );
            Ok(Pair {
                name: img.name,
                hr: img.hr.crop(0, 0, h, w)?,
                lr,
            })
        })
        .collect()
}

/// Up to `max` pairs synthesised from the HR images of `hr_dir`: image `i` is degraded with a
/// plan drawn from a generator seeded with `mix(seed, 6, i)` and noise from libtorch's generator
/// seeded with `mix(seed, 7, i)` (this reseeds libtorch's global generator).
pub fn synth_pairs(
    hr_dir: &Path,
    cfg: &RealDegradation,
    scale: u32,
    max: usize,
    seed: u64,
    device: Device,
) -> Result<Vec<Pair>> {
    let hrs = load_folder(hr_dir, scale, max)?;
    let degrader = RealDegrader::new(cfg, scale, device)?;
    hrs.into_iter()
        .enumerate()
        .map(|(i, img)| {
            let mut rng = rand::rngs::StdRng::seed_from_u64(mix(seed, 6, i as u64));
            tch::manual_seed(mix(seed, 7, i as u64) as i64);
            let plan = DegradePlan::draw(
                cfg,
                1,
                (img.hr.height(), img.hr.width()),
                None,
                scale,
                &mut rng,
            )?;
            let hr_t = planar_to_tensor(&img.hr, device);
            let d = tch::no_grad(|| degrader.degrade(&hr_t, &plan, false))
                .with_context(|| format!("synthesising the LR of validation image {}", img.name))?;
            Ok(Pair {
                name: img.name,
                lr: tensor_to_planar(&d.lq)?,
                hr: img.hr,
            })
        })
        .collect()
}

/// Scores of one pair.
#[derive(Clone, Debug, Serialize)]
pub struct PairRow {
    /// Image name.
    pub image: String,
    /// PSNR (dB).
    pub psnr: f64,
    /// SSIM.
    pub ssim: f64,
    /// LPIPS when weights were given.
    pub lpips: Option<f64>,
}

/// Scores over a set of pairs.
#[derive(Clone, Debug, Serialize)]
pub struct PairReport {
    /// Which PSNR / SSIM implementation.
    pub metric: MetricVariant,
    /// Per image.
    pub rows: Vec<PairRow>,
    /// Mean PSNR.
    pub psnr: f64,
    /// Mean SSIM.
    pub ssim: f64,
    /// Mean LPIPS (when weights were given).
    pub lpips: Option<f64>,
}

/// Runs `net` on every pair (teachers see the HR image) and scores the SR output.
pub fn evaluate_pairs(
    net: &BlindSr,
    pairs: &[Pair],
    device: Device,
    metric: MetricVariant,
    lpips: Option<&Lpips>,
) -> Result<PairReport> {
    if pairs.is_empty() {
        bail!("no validation pairs");
    }
    let scale = net.cfg.scale as usize;
    let mut rows = Vec::with_capacity(pairs.len());
    for p in pairs {
        let lr = planar_to_tensor(&p.lr, device);
        let hr = planar_to_tensor(&p.hr, device);
        let sr = tch::no_grad(|| net.forward(&lr, Some(&hr)))?.sr;
        let m = evaluate_pair(&tensor_to_planar(&sr)?, &p.hr, scale, metric)
            .with_context(|| format!("scoring {}", p.name))?;
        let lp = lpips.map(|l| l.distance(&sr.clamp(0.0, 1.0), &hr).double_value(&[0]));
        rows.push(PairRow {
            image: p.name.clone(),
            psnr: m.psnr,
            ssim: m.ssim,
            lpips: lp,
        });
    }
    let n = rows.len() as f64;
    let mean = |f: &dyn Fn(&PairRow) -> f64| rows.iter().map(f).sum::<f64>() / n;
    let psnr = mean(&|r| r.psnr);
    let ssim = mean(&|r| r.ssim);
    let lpips_mean = lpips.map(|_| mean(&|r| r.lpips.unwrap_or(f64::NAN)));
    Ok(PairReport {
        metric,
        rows,
        psnr,
        ssim,
        lpips: lpips_mean,
    })
}

impl PairReport {
    /// A markdown table: one row per image plus the mean.
    pub fn to_markdown(&self, title: &str) -> String {
        let lp = |v: Option<f64>| v.map_or("–".to_owned(), |x| format!("{x:.4}"));
        let mut s = format!(
            "### {title}\n\nMetric: `{}` (Y channel, 8-bit, border = scale); LPIPS-Alex v0.1.\n\n| image | PSNR | SSIM | LPIPS |\n|---|---|---|---|\n",
            self.metric
        );
        for r in &self.rows {
            s += &format!(
                "| {} | {:.2} | {:.4} | {} |\n",
                r.image,
                r.psnr,
                r.ssim,
                lp(r.lpips)
            );
        }
        s += &format!(
            "| **mean** | **{:.2}** | **{:.4}** | **{}** |\n",
            self.psnr,
            self.ssim,
            lp(self.lpips)
        );
        s
    }
}
