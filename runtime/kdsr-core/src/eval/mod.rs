//! The evaluation protocol, shared by every backend that can run a network (the trainer's tch
//! model, the runtime's tract graphs): LR made on the fly from HR images (cropped to a multiple of
//! the scale) with the classic pipeline, SR by the caller's network, PSNR/SSIM on Y after 8-bit
//! quantisation, next to MATLAB-bicubic upscaling of the same LR. Suites: Gaussian8 (isotropic σ
//! set, the paper's Table 1), the anisotropic kernels × noise grid (Table 2) and `camera`
//! (blur + sensor noise, JPEG, and both: one random draw per image, [`camera_cases`]).

pub mod paper;

use std::path::{Path, PathBuf};

use rand::SeedableRng;
use serde::Serialize;

use crate::metrics::{MetricVariant, evaluate_pair};
use crate::pipeline::camera::CameraDegradation;
use crate::pipeline::degrade::{ClassicDegradation, Downsample};
use crate::pipeline::kernels::{
    ANISO_TEST_KERNELS, GAUSSIAN8_X2_SIGMAS, GAUSSIAN8_X4_SIGMAS, KERNEL_SIZE,
    anisotropic_gaussian_deg, isotropic_gaussian,
};
use crate::pipeline::resize::{BicubicVariant, imresize};
use crate::{Error, Planar, Result};

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
    /// Label, e.g. `iso σ=2.6` or `k3 (3.5,1.5,30°) n=10`.
    pub label: String,
    /// The degradation.
    pub degradation: CaseDegradation,
}

/// The degradation of an [`EvalCase`]: a fixed classic one, or a camera distribution drawn
/// once per image.
#[derive(Clone, Debug)]
pub enum CaseDegradation {
    /// Fixed kernel and noise level (Gaussian8, the anisotropic grid).
    Classic(ClassicDegradation),
    /// Parameters drawn per image from the `(case, image)` generator.
    Camera(CameraDegradation),
}

impl CaseDegradation {
    /// The LR image of `hr`, every random draw from `rng`.
    pub fn apply<R: rand::Rng + ?Sized>(&self, hr: &Planar, rng: &mut R) -> Result<Planar> {
        match self {
            Self::Classic(d) => d.apply(hr, rng),
            Self::Camera(d) => Ok(d.apply(hr, rng)?.0),
        }
    }
}

/// The `camera` suite at `scale`: blur λ ~ U(0.5, 3) + noise level ~ U(5, 20) (Gaussian or
/// shot noise, half each); JPEG quality ~ U(30, 95) alone; and all three. One draw per image.
pub fn camera_cases(scale: u32) -> Result<Vec<EvalCase>> {
    let blur = Some((0.5, 3.0));
    let noise = Some((5.0, 20.0));
    let jpeg = Some((30, 95));
    let case = |label: &str, blur, noise, jpeg| -> Result<EvalCase> {
        let d = CameraDegradation {
            scale,
            blur,
            noise,
            poisson_prob: 0.5,
            jpeg,
        };
        d.validate()?;
        Ok(EvalCase {
            label: label.into(),
            degradation: CaseDegradation::Camera(d),
        })
    };
    Ok(vec![
        case("blur λ 0.5–3 + noise 5–20", blur, noise, None)?,
        case("JPEG q 30–95", None, None, jpeg)?,
        case("blur + noise + JPEG", blur, noise, jpeg)?,
    ])
}

/// The Gaussian8 cases for a scale (×4: σ 1.8…3.2; ×2: 0.9…1.6), or only `sigmas` when given.
pub fn gaussian8(scale: u32, sigmas: &[f64]) -> Result<Vec<EvalCase>> {
    let list: Vec<f64> = if !sigmas.is_empty() {
        sigmas.to_vec()
    } else {
        match scale {
            4 => GAUSSIAN8_X4_SIGMAS.to_vec(),
            2 => GAUSSIAN8_X2_SIGMAS.to_vec(),
            s => {
                return Err(Error::InvalidParameter {
                    name: "scale",
                    value: f64::from(s),
                    expected: "Gaussian8 is defined for x2 and x4; give explicit sigma values",
                });
            }
        }
    };
    list.iter()
        .map(|s| {
            Ok(EvalCase {
                label: format!("iso σ={s:.1}"),
                degradation: CaseDegradation::Classic(ClassicDegradation::new(
                    isotropic_gaussian(KERNEL_SIZE, *s)?,
                    scale,
                    0.0,
                    Downsample::Bicubic,
                )?),
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
                degradation: CaseDegradation::Classic(ClassicDegradation::new(
                    anisotropic_gaussian_deg(KERNEL_SIZE, *l1, *l2, *th)?,
                    scale,
                    *n,
                    Downsample::Bicubic,
                )?),
            });
        }
    }
    Ok(out)
}

/// Loads up to `max` images (sorted by name) from a folder, cropped to a multiple of `scale`.
/// Gray images are replicated to RGB; an unreadable file is an error naming it.
pub fn load_folder(dir: &Path, scale: u32, max: usize) -> Result<Vec<EvalImage>> {
    let mut paths = crate::io::list_images(dir)?;
    paths.truncate(max);
    if paths.is_empty() {
        return Err(Error::Image {
            path: dir.to_path_buf(),
            message: format!(
                "no test images ({}) in this folder",
                crate::io::IMAGE_EXTENSIONS.join(", ")
            ),
        });
    }
    paths
        .iter()
        .map(|p| {
            let img = crate::io::load_image(p)?;
            Ok(EvalImage {
                name: p
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                hr: to_rgb(&img.rgb)?.crop_to_multiple(scale as usize)?,
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
            Planar::new(3, p.height(), p.width(), d)
        }
        c => Err(Error::InvalidParameter {
            name: "channels",
            value: c as f64,
            expected: "a gray or RGB image",
        }),
    }
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
    /// Per case, in case order: images whose PSNR is above bicubic's, and the smallest margin
    /// (PSNR − bicubic PSNR, dB) over the case's images.
    pub above_bicubic: Vec<(usize, f64)>,
}

fn mean(v: impl Iterator<Item = f64>) -> f64 {
    let (s, n) = v.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    if n == 0 { f64::NAN } else { s / n as f64 }
}

/// The noise generator of one (case, image): reproducible, and the same for every backend.
pub fn case_rng(seed: u64, case_index: usize, image_index: usize) -> rand::rngs::StdRng {
    rand::rngs::StdRng::seed_from_u64(seed ^ ((case_index as u64) << 32) ^ image_index as u64)
}

/// Evaluates a network on every (case, image). `sr(lr, hr)` runs the network (a teacher's IDE
/// may use `hr`; a student ignores it) and returns the SR image at `scale`× the LR size; its
/// error type only has to absorb this crate's errors. Noise draws come from [`case_rng`], so two
/// backends evaluated with one seed see bit-identical LR images.
pub fn evaluate_with<E, F>(
    images: &[EvalImage],
    cases: &[EvalCase],
    scale: u32,
    metric: MetricVariant,
    seed: u64,
    mut sr: F,
) -> std::result::Result<Report, E>
where
    E: From<Error>,
    F: FnMut(&Planar, &Planar) -> std::result::Result<Planar, E>,
{
    let mut rows = Vec::new();
    for (ci, case) in cases.iter().enumerate() {
        for (ii, img) in images.iter().enumerate() {
            let mut rng = case_rng(seed, ci, ii);
            let lr = case.degradation.apply(&img.hr, &mut rng)?;
            let out = sr(&lr, &img.hr)?;
            let m = evaluate_pair(&out, &img.hr, scale as usize, metric)?;
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
    let above_bicubic = cases
        .iter()
        .map(|c| {
            let margins = rows
                .iter()
                .filter(|r| r.case == c.label)
                .map(|r| r.psnr - r.bicubic_psnr);
            margins.fold((0, f64::INFINITY), |(n, worst), m| {
                (n + usize::from(m > 0.0), worst.min(m))
            })
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
        above_bicubic,
    })
}

impl Report {
    /// A markdown table: one row per case plus the mean; the last columns count the images
    /// above bicubic and give the worst per-image margin.
    pub fn to_markdown(&self, title: &str) -> String {
        let mut s = format!(
            "### {title}\n\nMetric: `{}` (Y channel, 8-bit, border = scale).\n\n| case | PSNR | SSIM | bicubic PSNR | bicubic SSIM | images above bicubic | worst margin (dB) |\n|---|---|---|---|---|---|---|\n",
            self.metric
        );
        let n = |c: &str| self.rows.iter().filter(|r| r.case == c).count();
        for ((c, p, ss, bp, bs), (above, worst)) in self.per_case.iter().zip(&self.above_bicubic) {
            s += &format!(
                "| {c} | {p:.2} | {ss:.4} | {bp:.2} | {bs:.4} | {above}/{} | {worst:+.2} |\n",
                n(c)
            );
        }
        let (p, ss, bp, bs) = self.mean;
        let above: usize = self.above_bicubic.iter().map(|a| a.0).sum();
        let worst = self
            .above_bicubic
            .iter()
            .map(|a| a.1)
            .fold(f64::INFINITY, f64::min);
        s += &format!(
            "| **mean** | **{p:.2}** | **{ss:.4}** | {bp:.2} | {bs:.4} | {above}/{} | {worst:+.2} |\n",
            self.rows.len()
        );
        s
    }
}

/// A test suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Suite {
    /// Isotropic Gaussian8 (the paper's Table 1).
    Gaussian8,
    /// 9 anisotropic kernels × noise levels (the paper's Table 2).
    AnisoNoise,
    /// Camera-like inputs: blur + noise, JPEG, both ([`camera_cases`]).
    Camera,
}

impl Suite {
    /// The suite's name on command lines and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Suite::Gaussian8 => "gaussian8",
            Suite::AnisoNoise => "aniso-noise",
            Suite::Camera => "camera",
        }
    }

    /// Parses `gaussian8` or `aniso-noise` (a clap `value_parser`).
    pub fn parse(s: &str) -> std::result::Result<Self, String> {
        match s {
            "gaussian8" => Ok(Suite::Gaussian8),
            "aniso-noise" => Ok(Suite::AnisoNoise),
            "camera" => Ok(Suite::Camera),
            _ => Err(format!(
                "unknown suite `{s}`; known suites: gaussian8, aniso-noise, camera"
            )),
        }
    }
}

/// What to evaluate: folders × suites, and the protocol's parameters. With the `clap` feature it
/// is the argument group of `trainer eval` and `kdsr-edge eval`.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
pub struct Protocol {
    /// Folders of HR test images (e.g. Set5 Set14 B100); one table per folder and suite.
    #[cfg_attr(feature = "clap", arg(long, required = true, num_args = 1..))]
    pub data: Vec<PathBuf>,
    /// Suites to run: `gaussian8`, `aniso-noise`, `camera`.
    #[cfg_attr(
        feature = "clap",
        arg(long, value_parser = Suite::parse, num_args = 1.., default_values = ["gaussian8"])
    )]
    pub suite: Vec<Suite>,
    /// Only these Gaussian8 σ values (default: the standard eight).
    #[cfg_attr(feature = "clap", arg(long, num_args = 1.., value_delimiter = ','))]
    pub sigmas: Vec<f64>,
    /// Noise levels of the anisotropic grid (0..255 units).
    #[cfg_attr(
        feature = "clap",
        arg(long, num_args = 1.., value_delimiter = ',', default_values = ["0", "10", "20"])
    )]
    pub noise: Vec<f32>,
    /// Metric implementation: `kdsr-official` or `basicsr`.
    #[cfg_attr(feature = "clap", arg(long, default_value = "kdsr-official"))]
    pub metric: MetricVariant,
    /// At most this many images per folder (default: all).
    #[cfg_attr(
        feature = "clap",
        arg(long, default_value_t = usize::MAX, hide_default_value = true)
    )]
    pub max_images: usize,
    /// Seed of the noise draws.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 0))]
    pub seed: u64,
}

/// Runs every (folder, suite) of `run` with [`evaluate_with`] for a network of `scale` and
/// returns the markdown sections (with the paper's Table 1 rows beside a full Gaussian8 run, our
/// row labelled `label`) and one JSON value per section. Progress goes to stderr, one line per
/// section.
pub fn run_suites<E, F>(
    run: &Protocol,
    scale: u32,
    label: &str,
    mut sr: F,
) -> std::result::Result<(String, Vec<serde_json::Value>), E>
where
    E: From<Error>,
    F: FnMut(&Planar, &Planar) -> std::result::Result<Planar, E>,
{
    let mut md = String::new();
    let mut js = Vec::new();
    for dir in &run.data {
        let images = load_folder(dir, scale, run.max_images)?;
        let set = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for suite in &run.suite {
            let cases = match suite {
                Suite::Gaussian8 => gaussian8(scale, &run.sigmas)?,
                Suite::AnisoNoise => aniso_grid(scale, &run.noise)?,
                Suite::Camera => camera_cases(scale)?,
            };
            let r = evaluate_with(&images, &cases, scale, run.metric, run.seed, &mut sr)?;
            let name = suite.name();
            md += &r.to_markdown(&format!("{set} — {name} ({} images)", images.len()));
            if *suite == Suite::Gaussian8 && run.sigmas.is_empty() {
                md +=
                    &paper::table1_markdown(&set, label, r.mean.0, r.mean.1, (r.mean.2, r.mean.3));
            }
            md += "\n";
            eprintln!(
                "{set} {name}: PSNR {:.2} / SSIM {:.4} (bicubic {:.2})",
                r.mean.0, r.mean.1, r.mean.2
            );
            js.push(
                serde_json::json!({"set": set, "suite": name, "images": images.len(), "report": r}),
            );
        }
    }
    Ok((md, js))
}
