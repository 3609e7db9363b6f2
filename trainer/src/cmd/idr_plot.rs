//! `trainer idr-plot`: the paper's Fig. 6 at our scale — the IDRs (`D`) of a teacher and a
//! student for crops of a test set degraded with several blur σ, projected on their first two
//! principal components and drawn as PNG scatter plots (plotters), with numbers that say how
//! well the IDR separates the σ: the share of its variance that lies between the σ groups (η²)
//! and the leave-one-out nearest-centroid accuracy of σ from `D`.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use kdsr_core::eval::load_folder;
use kdsr_core::metrics::MetricVariant;
use kdsr_core::pipeline::degrade::{ClassicDegradation, Downsample};
use kdsr_core::pipeline::kernels::{KERNEL_SIZE, isotropic_gaussian};
use kdsr_core::spec::KdsrConfig;
use kdsr_core::spec::checkpoint::write_atomic;
use plotters::prelude::*;
use serde::Serialize;
use tch::{Device, Kind, Tensor};

use crate::device::parse_device;
use crate::eval::planar_to_tensor;
use crate::model::Model;

/// Arguments of `trainer idr-plot`.
#[derive(Debug, Args)]
pub struct IdrPlotArgs {
    /// Teacher weights (config from the `.json` beside them).
    #[arg(long, required_unless_present = "student")]
    pub teacher: Option<PathBuf>,
    /// Student weights (config from the `.json` beside them).
    #[arg(long)]
    pub student: Option<PathBuf>,
    /// Folder of HR test images.
    #[arg(long, default_value = "data/B100")]
    pub data: PathBuf,
    /// Blur σ values (isotropic Gaussian, HR pixels).
    #[arg(long, value_delimiter = ',', default_values = ["1.2", "2.4", "3.6"])]
    pub sigmas: Vec<f64>,
    /// Group by noise instead of blur: these Gaussian noise levels (0..255 units), all at the
    /// isotropic blur `--noise-blur` (`--sigmas` is then ignored).
    #[arg(long, value_delimiter = ',')]
    pub noise_levels: Vec<f64>,
    /// The blur σ of the `--noise-levels` groups.
    #[arg(long, default_value_t = 2.0)]
    pub noise_blur: f64,
    /// Images used (the first by name).
    #[arg(long, default_value_t = 40)]
    pub max_images: usize,
    /// Side of the HR centre crop of each image.
    #[arg(long, default_value_t = 192)]
    pub crop: usize,
    /// Output prefix: writes PREFIX.png and PREFIX.json.
    #[arg(long)]
    pub out: PathBuf,
    /// `auto`, `cpu`, `cuda`, `cuda:N`.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// HR images for the IDR swap test (every image, whole).
    #[arg(long, default_value = "data/Set14")]
    pub swap_data: PathBuf,
    /// The two blur σ of the swap test: each image's LR at one σ is upscaled with its own `D`
    /// and with the `D` estimated from its LR at the other σ.
    #[arg(long, value_delimiter = ',', num_args = 2, default_values = ["1.8", "3.2"])]
    pub swap_sigmas: Vec<f64>,
    /// Skip the swap test.
    #[arg(long)]
    pub no_swap: bool,
}

/// The IDR swap test of one network: how much PSNR-Y the SR network loses when it is given the
/// `D` of the same image degraded with the other σ.
#[derive(Debug, Serialize)]
pub struct Swap {
    /// Which network.
    pub network: String,
    /// The two σ.
    pub sigmas: [f64; 2],
    /// Mean PSNR-Y (official KDSR metric) with each LR's own `D`.
    pub psnr_own: f64,
    /// Mean PSNR-Y with the swapped `D`.
    pub psnr_swapped: f64,
    /// `psnr_own − psnr_swapped` (dB): what `D` is worth to the SR network.
    pub cost_db: f64,
    /// Image × direction pairs measured.
    pub pairs: usize,
}

/// Runs the swap test of `net` over `images` for the σ pair `sigmas`.
pub fn swap_test(
    name: &str,
    net: &crate::model::BlindSr,
    images: &[kdsr_core::eval::EvalImage],
    sigmas: [f64; 2],
    device: Device,
) -> Result<Swap> {
    let scale = net.cfg.scale;
    let degs = sigmas
        .iter()
        .map(|s| {
            Ok(ClassicDegradation::new(
                isotropic_gaussian(KERNEL_SIZE, *s)?,
                scale,
                0.0,
                Downsample::Bicubic,
            )?)
        })
        .collect::<Result<Vec<_>>>()?;
    let (mut own, mut swapped, mut n) = (0.0, 0.0, 0usize);
    for img in images {
        let hr = &img.hr;
        let hr_t = planar_to_tensor(hr, device);
        let lrs = degs
            .iter()
            .map(|d| Ok(planar_to_tensor(&d.apply_with_noise(hr, None)?, device)))
            .collect::<Result<Vec<_>>>()?;
        let ds = lrs
            .iter()
            .map(|lr| tch::no_grad(|| Ok(net.e.forward(&net.ide_input(lr, Some(&hr_t))?).0)))
            .collect::<Result<Vec<_>>>()?;
        for a in 0..2 {
            let score =
                |d: &Tensor| -> Result<f64> {
                    let sr = tch::no_grad(|| net.g.forward(&lrs[a], d));
                    let sr = crate::eval::tensor_to_planar(&sr)?;
                    Ok(kdsr_core::metrics::evaluate_pair(
                        &sr,
                        hr,
                        scale as usize,
                        MetricVariant::Kdsr,
                    )?
                    .psnr)
                };
            own += score(&ds[a])?;
            swapped += score(&ds[1 - a])?;
            n += 1;
        }
    }
    if n == 0 {
        bail!("swap test: no images");
    }
    let (own, swapped) = (own / n as f64, swapped / n as f64);
    Ok(Swap {
        network: name.to_owned(),
        sigmas,
        psnr_own: own,
        psnr_swapped: swapped,
        cost_db: own - swapped,
        pairs: n,
    })
}

/// One network's IDRs, projected.
#[derive(Debug, Serialize)]
pub struct Projection {
    /// Which network.
    pub network: String,
    /// Share of the variance on PC1 and PC2.
    pub explained: [f64; 2],
    /// Between-σ share of the total variance of `D` (η², 0..1).
    pub eta_squared: f64,
    /// Leave-one-out nearest-centroid accuracy of σ from `D` (chance = 1 / #σ).
    pub loo_accuracy: f64,
    /// `(σ index, pc1, pc2)` per crop.
    pub points: Vec<(usize, f64, f64)>,
}

const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// PCA, η² and the leave-one-out nearest-centroid accuracy of `x` `[n, C]` with `labels`.
pub fn project(network: &str, x: &Tensor, labels: &[usize], groups: usize) -> Result<Projection> {
    let x = x.to_kind(Kind::Double).to_device(Device::Cpu);
    let centred = &x - x.mean_dim(0, true, Kind::Double);
    let (_, s, v) = centred.f_svd(true, true)?;
    let var: Vec<f64> = Vec::try_from(s.square())?;
    let total: f64 = var.iter().sum();
    let pcs: Vec<Vec<f64>> = Vec::try_from(centred.matmul(&v.narrow(1, 0, 2)))?;
    let rows: Vec<Vec<f64>> = Vec::try_from(&x)?;
    let c = rows.first().map_or(0, Vec::len);
    let mut sums = vec![vec![0.0; c]; groups];
    let mut counts = vec![0usize; groups];
    for (r, &l) in rows.iter().zip(labels) {
        counts[l] += 1;
        sums[l].iter_mut().zip(r).for_each(|(s, v)| *s += v);
    }
    let mean_all: Vec<f64> = (0..c)
        .map(|j| rows.iter().map(|r| r[j]).sum::<f64>() / rows.len() as f64)
        .collect();
    let between: f64 = (0..groups)
        .map(|g| {
            let m: Vec<f64> = sums[g].iter().map(|s| s / counts[g] as f64).collect();
            counts[g] as f64
                * m.iter()
                    .zip(&mean_all)
                    .map(|(a, b)| (a - b).powi(2))
                    .sum::<f64>()
        })
        .sum();
    let mut correct = 0;
    for (r, &l) in rows.iter().zip(labels) {
        let best = (0..groups)
            .map(|g| {
                // The centroid of g without this point when it belongs to g.
                let n = counts[g] as f64 - f64::from(u8::from(g == l));
                let d: f64 = (0..c)
                    .map(|j| {
                        let m = (sums[g][j] - if g == l { r[j] } else { 0.0 }) / n.max(1.0);
                        (r[j] - m).powi(2)
                    })
                    .sum();
                (g, d)
            })
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map_or(0, |(g, _)| g);
        correct += usize::from(best == l);
    }
    Ok(Projection {
        network: network.to_owned(),
        explained: [var[0] / total, var.get(1).copied().unwrap_or(0.0) / total],
        eta_squared: between / total,
        loo_accuracy: correct as f64 / rows.len() as f64,
        points: labels
            .iter()
            .zip(&pcs)
            .map(|(&l, p)| (l, p[0], p[1]))
            .collect(),
    })
}

/// Draws the projections side by side (no text: plotters is built without fonts; the JSON and
/// the caption name the colours).
pub fn draw(path: &std::path::Path, panels: &[Projection]) -> Result<()> {
    let (w, h) = (500 * panels.len() as u32, 500);
    let root = BitMapBackend::new(path, (w, h)).into_drawing_area();
    root.fill(&WHITE)?;
    for (area, p) in root.split_evenly((1, panels.len())).iter().zip(panels) {
        let area = area.margin(20, 20, 20, 20);
        // One scale on both axes (a square panel), so PC2 looks as small as it is.
        let range = |f: fn(&(usize, f64, f64)) -> f64| {
            p.points
                .iter()
                .map(f)
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                    (a.min(v), b.max(v))
                })
        };
        let ((x0, x1), (y0, y1)) = (range(|p| p.1), range(|p| p.2));
        let half = ((x1 - x0).max(y1 - y0) * 0.55).max(1e-9);
        let (cx, cy) = ((x0 + x1) / 2.0, (y0 + y1) / 2.0);
        let span = |c: f64| (c - half)..(c + half);
        let mut chart = ChartBuilder::on(&area).build_cartesian_2d(span(cx), span(cy))?;
        chart.plotting_area().fill(&RGBColor(250, 250, 250))?;
        chart.draw_series(
            p.points
                .iter()
                .map(|&(l, x, y)| Circle::new((x, y), 4, COLORS[l % COLORS.len()].filled())),
        )?;
        area.draw(&Rectangle::new([(0, 0), (459, 459)], BLACK.stroke_width(1)))?;
    }
    root.present()?;
    Ok(())
}

/// The groups of `idr-plot`: (label, degradation) per blur σ, or per noise level when
/// `--noise-levels` is given.
fn groups(a: &IdrPlotArgs, scale: u32) -> Result<Vec<(String, ClassicDegradation)>> {
    let by_noise = !a.noise_levels.is_empty();
    let n = if by_noise {
        a.noise_levels.len()
    } else {
        a.sigmas.len()
    };
    if n == 0 || n > COLORS.len() {
        bail!(
            "--sigmas / --noise-levels: give 1 to {} values",
            COLORS.len()
        );
    }
    (0..n)
        .map(|i| {
            let (sigma, noise, label) = if by_noise {
                let l = a.noise_levels[i];
                (a.noise_blur, l, format!("noise {l}"))
            } else {
                (a.sigmas[i], 0.0, format!("σ {}", a.sigmas[i]))
            };
            let deg = ClassicDegradation::new(
                isotropic_gaussian(KERNEL_SIZE, sigma)?,
                scale,
                noise as f32,
                Downsample::Bicubic,
            )?;
            Ok((label, deg))
        })
        .collect()
}

/// Runs the command.
pub fn run(a: &IdrPlotArgs) -> Result<()> {
    let device = parse_device(&a.device)?;
    let load = |w: &PathBuf| -> Result<Model> {
        let cfg = KdsrConfig::from_file(&w.with_extension("json"))
            .with_context(|| format!("no config beside {}", w.display()))?;
        Model::load(&cfg, w, device)
    };
    let mut nets = Vec::new();
    for (name, w) in [("teacher", &a.teacher), ("student", &a.student)] {
        if let Some(w) = w {
            nets.push((name, load(w)?));
        }
    }
    let scale = nets[0].1.net.cfg.scale;
    let groups = groups(a, scale)?;
    let images = load_folder(&a.data, scale, a.max_images)?;
    let mut labels = Vec::new();
    let mut ds: Vec<Vec<Tensor>> = nets.iter().map(|_| Vec::new()).collect();
    for (k, (_, deg)) in groups.iter().enumerate() {
        for (i, img) in images.iter().enumerate() {
            let (h, w) = (img.hr.height().min(a.crop), img.hr.width().min(a.crop));
            let hr = img
                .hr
                .crop((img.hr.height() - h) / 2, (img.hr.width() - w) / 2, h, w)?
                .crop_to_multiple(scale as usize)?;
            let lr = deg.apply(&hr, &mut kdsr_core::eval::case_rng(0, k, i))?;
            let (lr_t, hr_t) = (planar_to_tensor(&lr, device), planar_to_tensor(&hr, device));
            for ((_, m), out) in nets.iter().zip(ds.iter_mut()) {
                let net = &m.net;
                out.push(tch::no_grad(|| -> Result<Tensor> {
                    Ok(net.e.forward(&net.ide_input(&lr_t, Some(&hr_t))?).0)
                })?);
            }
            labels.push(k);
        }
    }
    let g = groups.len();
    let panels = nets
        .iter()
        .zip(&ds)
        .map(|((name, _), d)| project(name, &Tensor::cat(d, 0), &labels, g))
        .collect::<Result<Vec<_>>>()?;
    let mut swaps = Vec::new();
    if !a.no_swap {
        let swap_images = load_folder(&a.swap_data, scale, usize::MAX)?;
        for (name, m) in &nets {
            swaps.push(swap_test(
                name,
                &m.net,
                &swap_images,
                [a.swap_sigmas[0], a.swap_sigmas[1]],
                device,
            )?);
        }
    }
    let png = a.out.with_extension("png");
    let tmp = a.out.with_extension("tmp.png");
    draw(&tmp, &panels)?;
    std::fs::rename(&tmp, &png).with_context(|| format!("writing {}", png.display()))?;
    let colours: Vec<String> = COLORS
        .iter()
        .zip(&groups)
        .map(|(c, (label, _))| format!("{label}: #{:02x}{:02x}{:02x}", c.0, c.1, c.2))
        .collect();
    let report = serde_json::json!({
        "command": std::env::args().skip(1).collect::<Vec<_>>().join(" "),
        "data": a.data, "images": images.len(), "crop": a.crop, "sigmas": a.sigmas,
        "noise_levels": a.noise_levels, "noise_blur": a.noise_blur,
        "colours": colours, "panels": panels, "swap": swaps,
    });
    write_atomic(
        &a.out.with_extension("json"),
        serde_json::to_string_pretty(&report)?.as_bytes(),
    )?;
    for p in &panels {
        eprintln!(
            "{}: PC1 {:.1} %, PC2 {:.1} %, η² {:.3}, {} from D (leave-one-out nearest centroid) {:.1} %",
            p.network,
            100.0 * p.explained[0],
            100.0 * p.explained[1],
            p.eta_squared,
            if a.noise_levels.is_empty() {
                "σ"
            } else {
                "noise level"
            },
            100.0 * p.loo_accuracy
        );
    }
    for w in &swaps {
        eprintln!(
            "{}: IDR swap σ {} ↔ {} on {}: {:.3} dB with its own D, {:.3} dB swapped, cost {:.3} dB",
            w.network,
            w.sigmas[0],
            w.sigmas[1],
            a.swap_data.display(),
            w.psnr_own,
            w.psnr_swapped,
            w.cost_db
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a panic is the failure report
    use super::*;

    /// Three σ groups: separated along one axis (`sep`) plus per-sample content noise on
    /// another, in 4 dimensions.
    fn groups(sep: f64) -> (Tensor, Vec<usize>) {
        let mut rows = Vec::new();
        let mut labels = Vec::new();
        for g in 0..3 {
            for i in 0..10 {
                let content = (i as f64 * 0.37).sin();
                rows.extend_from_slice(&[sep * g as f64, content, 0.1 * content, 0.0]);
                labels.push(g);
            }
        }
        (Tensor::from_slice(&rows).reshape([30, 4]), labels)
    }

    #[test]
    fn separated_groups_score_high_and_collapsed_ones_low() {
        let (x, l) = groups(5.0);
        let p = project("sep", &x, &l, 3).unwrap();
        assert_eq!(p.loo_accuracy, 1.0);
        assert!(p.eta_squared > 0.9, "{}", p.eta_squared);
        assert!((p.explained[0] + p.explained[1] - 1.0).abs() < 1e-9);
        let (x, l) = groups(0.0);
        let p = project("collapsed", &x, &l, 3).unwrap();
        assert!(p.eta_squared < 1e-12, "{}", p.eta_squared);
        assert!(p.loo_accuracy < 0.5, "{}", p.loo_accuracy);
        let dir = tempfile::tempdir().unwrap();
        let png = dir.path().join("p.png");
        draw(&png, &[p]).unwrap();
        let img = image::open(&png).unwrap();
        assert_eq!((img.width(), img.height()), (500, 500));
    }
}
