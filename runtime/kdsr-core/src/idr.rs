//! The IDR file (`.idr`): a degradation estimate to reuse — per image, or averaged over a camera's
//! frames for the folded graphs. Safetensors with `D` `[C]` and `D_prime` `[4C]` (float32) and
//! metadata: format version, the weights hash of the model that produced it, the number of images
//! averaged and, optionally, a free-form source description.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use crate::error::{Error, Result};
use crate::spec::checkpoint::{Tensor, weights_from_bytes_unchecked, weights_to_bytes};

/// Format version written into every IDR file.
pub const IDR_FORMAT: &str = "kdsr-idr-1";

/// The largest magnitude accepted in an IDR's `D` and `D'` ([`Idr::check_values`]). The IDE's
/// outputs are activations of a few linear layers on images in [0, 1], of order 1–10; a value
/// beyond this is not an estimate any model made, and in the SR network it overflows float32
/// (an all-black or NaN image).
pub const IDR_MAX_ABS: f32 = 1.0e4;

/// Why an IDR cannot drive a model ([`Idr::check_for`]); each caller words the error for its
/// users (the converter's `ConvertError`, the runtime's `Error::ModelData`).
#[derive(Clone, Debug, PartialEq)]
pub enum IdrMismatch {
    /// `D` has another length than the model's C.
    Length {
        /// The length of `D`.
        found: usize,
        /// The model's C.
        expected: usize,
    },
    /// A value of `D` or `D'` is not finite or out of range ([`Idr::check_values`]'s message).
    Values(String),
    /// No `weights_hash` is recorded, so the IDR cannot be shown to come from the model.
    NoHash,
    /// It was made by other weights.
    Hash {
        /// The IDR's `weights_hash`.
        idr: String,
        /// The model's.
        model: String,
    },
}

/// A degradation representation.
#[derive(Clone, Debug, PartialEq)]
pub struct Idr {
    /// `D` (length C): what the SR network consumes.
    pub d: Vec<f32>,
    /// `D'` (length 4C): the vector the KD loss compares; used to name the nearest degradation.
    pub d_prime: Vec<f32>,
    /// [`crate::spec::checkpoint::weights_hash`] of the producing model.
    pub weights_hash: String,
    /// Number of images averaged (1 for a single image).
    pub images: usize,
    /// Where it came from (file or folder), informational.
    pub source: String,
}

impl Idr {
    /// Mean of several IDRs from the same model (a camera's frames). Errors on an empty list or
    /// on IDRs from different models or of different lengths.
    pub fn mean(items: &[Idr], source: &str) -> Result<Idr> {
        let first = items.first().ok_or_else(|| Error::Config {
            source_name: source.to_owned(),
            message: "no IDR to average".to_owned(),
        })?;
        let mut d = vec![0f64; first.d.len()];
        let mut dp = vec![0f64; first.d_prime.len()];
        let mut images = 0;
        for it in items {
            if it.weights_hash != first.weights_hash
                || it.d.len() != d.len()
                || it.d_prime.len() != dp.len()
            {
                return Err(Error::Config {
                    source_name: it.source.clone(),
                    message: format!(
                        "IDR from model {} (C={}) cannot be averaged with one from model {} (C={})",
                        it.weights_hash,
                        it.d.len(),
                        first.weights_hash,
                        first.d.len()
                    ),
                });
            }
            for (a, v) in d.iter_mut().zip(&it.d) {
                *a += f64::from(*v) * it.images as f64;
            }
            for (a, v) in dp.iter_mut().zip(&it.d_prime) {
                *a += f64::from(*v) * it.images as f64;
            }
            images += it.images;
        }
        let n = images.max(1) as f64;
        Ok(Idr {
            d: d.iter().map(|v| (v / n) as f32).collect(),
            d_prime: dp.iter().map(|v| (v / n) as f32).collect(),
            weights_hash: first.weights_hash.clone(),
            images,
            source: source.to_owned(),
        })
    }

    /// Checks that every value of `D` and `D'` is finite and at most [`IDR_MAX_ABS`] in
    /// magnitude; the message names the vector, the first bad index and value.
    pub fn check_values(&self) -> std::result::Result<(), String> {
        for (name, v) in [("D", &self.d), ("D_prime", &self.d_prime)] {
            if let Some((i, x)) = v
                .iter()
                .enumerate()
                .find(|(_, x)| !x.is_finite() || x.abs() > IDR_MAX_ABS)
            {
                return Err(format!(
                    "`{name}`[{i}] = {x:e}: {}; an IDR from a model's IDE holds finite values \
                     of order 1-10 (limit {IDR_MAX_ABS:e}), so this file is damaged or forged",
                    if x.is_finite() {
                        "out of range"
                    } else {
                        "not a finite number"
                    }
                ));
            }
        }
        Ok(())
    }

    /// The one check of whether this IDR can drive a model of C `n_feats` made from weights
    /// `weights_hash`, for the converter (folding) and the runtime (`--idr`) alike: `D` has
    /// length C, its values are sane ([`Idr::check_values`]), and it records the model's weights
    /// hash: present and equal, unless `ignore_hash` (the converter's `--force`).
    pub fn check_for(
        &self,
        n_feats: usize,
        weights_hash: &str,
        ignore_hash: bool,
    ) -> std::result::Result<(), IdrMismatch> {
        if self.d.len() != n_feats {
            return Err(IdrMismatch::Length {
                found: self.d.len(),
                expected: n_feats,
            });
        }
        self.check_values().map_err(IdrMismatch::Values)?;
        if ignore_hash {
            return Ok(());
        }
        if self.weights_hash.is_empty() {
            return Err(IdrMismatch::NoHash);
        }
        if self.weights_hash != weights_hash {
            return Err(IdrMismatch::Hash {
                idr: self.weights_hash.clone(),
                model: weights_hash.to_owned(),
            });
        }
        Ok(())
    }

    /// Serialises to safetensors bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut w = BTreeMap::new();
        w.insert(
            "D".to_owned(),
            Tensor::new(vec![self.d.len()], self.d.clone())?,
        );
        w.insert(
            "D_prime".to_owned(),
            Tensor::new(vec![self.d_prime.len()], self.d_prime.clone())?,
        );
        let meta = HashMap::from([
            ("format".to_owned(), IDR_FORMAT.to_owned()),
            ("weights_hash".to_owned(), self.weights_hash.clone()),
            ("images".to_owned(), self.images.to_string()),
            ("source".to_owned(), self.source.clone()),
        ]);
        weights_to_bytes(&w, Some(meta))
    }

    /// Writes the file atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        crate::fsutil::write_atomic(path, &self.to_bytes()?)
    }

    /// Parses safetensors bytes; `file` names the source in errors.
    pub fn from_bytes(bytes: &[u8], file: &str) -> Result<Idr> {
        let bad = |message: String| Error::Safetensors {
            file: file.to_owned(),
            message,
        };
        let (_, header) =
            safetensors::SafeTensors::read_metadata(bytes).map_err(|e| bad(e.to_string()))?;
        let meta = header.metadata().clone().unwrap_or_default();
        if meta.get("format").map(String::as_str) != Some(IDR_FORMAT) {
            return Err(bad(format!(
                "not an IDR file (format metadata must be `{IDR_FORMAT}`)"
            )));
        }
        let w = weights_from_bytes_unchecked(bytes, file)?;
        let get = |k: &str| -> Result<Vec<f32>> {
            let t = w
                .get(k)
                .ok_or_else(|| bad(format!("missing tensor `{k}`")))?;
            if t.shape.len() != 1 {
                return Err(bad(format!(
                    "tensor `{k}` has shape {:?}, expected one dimension",
                    t.shape
                )));
            }
            Ok(t.data.clone())
        };
        let (d, d_prime) = (get("D")?, get("D_prime")?);
        if d_prime.len() != 4 * d.len() {
            return Err(bad(format!(
                "`D_prime` has {} values, expected 4 × {} (`D`)",
                d_prime.len(),
                d.len()
            )));
        }
        Ok(Idr {
            d,
            d_prime,
            weights_hash: meta.get("weights_hash").cloned().unwrap_or_default(),
            images: meta.get("images").and_then(|v| v.parse().ok()).unwrap_or(1),
            source: meta.get("source").cloned().unwrap_or_default(),
        })
    }

    /// Reads an IDR file.
    pub fn load(path: &Path) -> Result<Idr> {
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_bytes(&bytes, &path.display().to_string())
    }
}
