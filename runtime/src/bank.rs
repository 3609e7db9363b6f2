//! The degradation bank (`PREFIX.bank`): `D'` vectors of known classic degradations, to name the
//! degradation nearest to an image's IDR (`kdsr-edge inspect-degradation`).
//!
//! # Building ([`build_bank`], `kdsr-edge make-bank`)
//! Each HR sample image is cropped to a multiple of the scale (and to its centre
//! [`BANK_HR_CROP`]² pixels), degraded with the classic pipeline
//! ([`ClassicDegradation`]: isotropic Gaussian blur of σ, the official bicubic ×1/s, Gaussian
//! noise of the given level in 0..255 units, 8-bit quantisation; noise seeded, so the bank is
//! reproducible), and its IDR is estimated; the `D'` of all images are averaged per (σ, noise).
//! Default grid: σ ∈ [`DEFAULT_SIGMAS`] × noise ∈ [`DEFAULT_NOISE`].
//!
//! # Matching ([`Bank::nearest`])
//! Entries are ranked by the KD loss the IDE was trained with: `KL(p_bank ‖ p_image)` with
//! `p = softmax(D' / τ)`, τ = [`KD_TEMPERATURE`] (0.15).
//!
//! # File
//! safetensors: `D_prime` `[K, 4C]`, `sigma` `[K]`, `noise` `[K]` (float32); metadata `format`
//! = [`BANK_FORMAT`], `weights_hash`, `images`, `source`.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use kdsr_core::Planar;
use kdsr_core::pipeline::degrade::{ClassicDegradation, Downsample};
use kdsr_core::pipeline::kernels::{KERNEL_SIZE, isotropic_gaussian};
use kdsr_core::spec::KD_TEMPERATURE;
use kdsr_core::spec::checkpoint::{Tensor, weights_from_bytes_unchecked, weights_to_bytes};
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::error::{Error, Result};
use crate::upscaler::Upscaler;

/// Format tag of bank files.
pub const BANK_FORMAT: &str = "kdsr-bank-1";
/// Default blur σ grid (HR pixels): sharp to very blurred, covering the Gaussian8 ×4 set.
pub const DEFAULT_SIGMAS: [f32; 10] = [0.2, 0.6, 1.0, 1.4, 1.8, 2.2, 2.6, 3.0, 3.4, 4.0];
/// Default noise levels (σ in 0..255 units).
pub const DEFAULT_NOISE: [f32; 4] = [0.0, 5.0, 10.0, 20.0];
/// HR side of the centre crop each sample image is reduced to before degrading.
pub const BANK_HR_CROP: usize = 256;

/// One known degradation.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct BankEntry {
    /// Isotropic Gaussian blur σ (HR pixels).
    pub sigma: f32,
    /// Gaussian noise σ in 0..255 units.
    pub noise: f32,
    /// Mean `D'` over the sample images.
    #[serde(skip)]
    pub d_prime: Vec<f32>,
}

/// A degradation bank.
#[derive(Clone, Debug, PartialEq)]
pub struct Bank {
    /// Weights hash of the model whose IDE produced the entries.
    pub weights_hash: String,
    /// Sample images averaged per entry.
    pub images: usize,
    /// Where the sample images came from.
    pub source: String,
    /// Entries.
    pub entries: Vec<BankEntry>,
}

/// A bank entry and its distance to an IDR.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Match {
    /// The entry.
    #[serde(flatten)]
    pub entry: BankEntry,
    /// `KL(p_bank ‖ p_image)` (see the [module docs](self)).
    pub distance: f64,
}

fn softmax(v: &[f32]) -> Vec<f64> {
    let t = KD_TEMPERATURE;
    let m = v
        .iter()
        .fold(f64::NEG_INFINITY, |a, x| a.max(f64::from(*x) / t));
    let e: Vec<f64> = v.iter().map(|x| (f64::from(*x) / t - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.into_iter().map(|x| x / s).collect()
}

impl Bank {
    /// The `k` entries nearest to `d_prime`, nearest first.
    pub fn nearest(&self, d_prime: &[f32], k: usize) -> Vec<Match> {
        let q = softmax(d_prime);
        let mut out: Vec<Match> = self
            .entries
            .iter()
            .filter(|e| e.d_prime.len() == d_prime.len())
            .map(|e| {
                let p = softmax(&e.d_prime);
                let distance = p
                    .iter()
                    .zip(&q)
                    .filter(|(p, _)| **p > 0.0)
                    .map(|(p, q)| p * (p.ln() - q.max(1e-300).ln()))
                    .sum();
                Match {
                    entry: e.clone(),
                    distance,
                }
            })
            .collect();
        out.sort_by(|a, b| a.distance.total_cmp(&b.distance));
        out.truncate(k);
        out
    }

    /// Serialises to safetensors bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let k = self.entries.len();
        let len = self.entries.first().map_or(0, |e| e.d_prime.len());
        let mut w = BTreeMap::new();
        w.insert(
            "D_prime".to_owned(),
            Tensor::new(
                vec![k, len],
                self.entries
                    .iter()
                    .flat_map(|e| e.d_prime.clone())
                    .collect(),
            )?,
        );
        w.insert(
            "sigma".to_owned(),
            Tensor::new(vec![k], self.entries.iter().map(|e| e.sigma).collect())?,
        );
        w.insert(
            "noise".to_owned(),
            Tensor::new(vec![k], self.entries.iter().map(|e| e.noise).collect())?,
        );
        let meta = HashMap::from([
            ("format".to_owned(), BANK_FORMAT.to_owned()),
            ("weights_hash".to_owned(), self.weights_hash.clone()),
            ("images".to_owned(), self.images.to_string()),
            ("source".to_owned(), self.source.clone()),
        ]);
        Ok(weights_to_bytes(&w, Some(meta))?)
    }

    /// Writes the bank atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        kdsr_core::fsutil::write_atomic(path, &self.to_bytes()?).map_err(|e| Error::Output {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    /// Reads a bank file and checks that the model with `weights_hash` built it. Errors:
    /// [`Error::ModelData`] naming `path` (unreadable, not a bank, other weights).
    pub fn load_for(path: &Path, weights_hash: &str) -> Result<Bank> {
        let b = Bank::load(path)?;
        if b.weights_hash != weights_hash {
            return Err(Error::ModelData {
                path: path.to_path_buf(),
                message: format!(
                    "bank built by the model with weights {}, this model has weights \
                     {weights_hash}; rebuild it with `kdsr-edge make-bank`",
                    b.weights_hash
                ),
            });
        }
        Ok(b)
    }

    /// Reads a bank file. Errors: [`Error::ModelData`] naming `path`.
    pub fn load(path: &Path) -> Result<Bank> {
        let bad = |message: String| Error::ModelData {
            path: path.to_path_buf(),
            message,
        };
        let bytes = std::fs::read(path).map_err(|e| bad(format!("cannot read: {e}")))?;
        Self::from_bytes(&bytes, path)
    }

    /// [`Bank::load`] for the bytes of a bank file held in memory; `path` labels errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Bank> {
        let bad = |message: String| Error::ModelData {
            path: path.to_path_buf(),
            message,
        };
        let (_, header) = safetensors::SafeTensors::read_metadata(bytes)
            .map_err(|e| bad(format!("not a safetensors file: {e}")))?;
        let meta = header.metadata().clone().unwrap_or_default();
        if meta.get("format").map(String::as_str) != Some(BANK_FORMAT) {
            return Err(bad(format!(
                "not a degradation bank (format metadata must be `{BANK_FORMAT}`)"
            )));
        }
        let w = weights_from_bytes_unchecked(bytes, &path.display().to_string())
            .map_err(|e| bad(e.to_string()))?;
        let get = |k: &str| w.get(k).ok_or_else(|| bad(format!("missing tensor `{k}`")));
        let (dp, sigma, noise) = (get("D_prime")?, get("sigma")?, get("noise")?);
        let k = sigma.data.len();
        if dp.shape.len() != 2 || dp.shape[0] != k || noise.data.len() != k {
            return Err(bad(format!(
                "inconsistent shapes: D_prime {:?}, sigma [{k}], noise [{}]",
                dp.shape,
                noise.data.len()
            )));
        }
        let len = dp.shape[1];
        let entries = (0..k)
            .map(|i| BankEntry {
                sigma: sigma.data[i],
                noise: noise.data[i],
                d_prime: dp.data[i * len..(i + 1) * len].to_vec(),
            })
            .collect();
        Ok(Bank {
            weights_hash: meta.get("weights_hash").cloned().unwrap_or_default(),
            images: meta.get("images").and_then(|v| v.parse().ok()).unwrap_or(0),
            source: meta.get("source").cloned().unwrap_or_default(),
            entries,
        })
    }
}

/// Builds a bank for `upscaler` (split graphs) from HR sample images (3-channel, [0, 1]); see the
/// [module docs](self). `progress(done, total)` is called after every (σ, noise) entry.
pub fn build_bank(
    upscaler: &Upscaler,
    hr_images: &[Planar],
    sigmas: &[f32],
    noise_levels: &[f32],
    source: &str,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Bank> {
    if hr_images.is_empty() {
        return Err(Error::Usage(
            "no sample images to build the bank from".into(),
        ));
    }
    let scale = upscaler.info().scale;
    let s = scale as usize;
    let crops: Vec<Planar> = hr_images
        .iter()
        .map(|img| {
            let side_h = img.height().min(BANK_HR_CROP) / s * s;
            let side_w = img.width().min(BANK_HR_CROP) / s * s;
            img.crop(
                (img.height() - side_h) / 2,
                (img.width() - side_w) / 2,
                side_h,
                side_w,
            )
        })
        .collect::<kdsr_core::Result<_>>()?;
    let total = sigmas.len() * noise_levels.len();
    let mut entries = Vec::with_capacity(total);
    for (si, &sigma) in sigmas.iter().enumerate() {
        let kernel = isotropic_gaussian(KERNEL_SIZE, f64::from(sigma))?;
        for (ni, &noise) in noise_levels.iter().enumerate() {
            let deg = ClassicDegradation::new(kernel.clone(), scale, noise, Downsample::Bicubic)?;
            let mut rng = StdRng::seed_from_u64(0x6b64_7372 + (si * 100 + ni) as u64);
            let mut sum: Vec<f64> = Vec::new();
            for hr in &crops {
                let lr = deg.apply(hr, &mut rng)?;
                let idr = upscaler.estimate_idr(&lr)?;
                if sum.is_empty() {
                    sum = vec![0.0; idr.d_prime.len()];
                }
                for (a, v) in sum.iter_mut().zip(&idr.d_prime) {
                    *a += f64::from(*v);
                }
            }
            let n = crops.len() as f64;
            entries.push(BankEntry {
                sigma,
                noise,
                d_prime: sum.iter().map(|v| (v / n) as f32).collect(),
            });
            progress(entries.len(), total);
        }
    }
    Ok(Bank {
        weights_hash: upscaler.info().weights_hash.clone(),
        images: crops.len(),
        source: source.to_owned(),
        entries,
    })
}
