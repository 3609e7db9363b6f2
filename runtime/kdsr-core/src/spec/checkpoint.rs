//! Official-layout checkpoints: `NAME.safetensors` (float32, official `state_dict` keys) plus
//! `NAME.json` (the resolved [`KdsrConfig`]). Loading checks every key and shape against the spec
//! and names the tensor and both shapes when one is wrong or missing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors};

use super::KdsrConfig;
use crate::error::{Error, Result};

/// Re-exported from [`crate::fsutil`], where it lives (shared with [`crate::io`]).
pub use crate::fsutil::write_atomic;

/// One float32 tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    /// Shape.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub data: Vec<f32>,
}

impl Tensor {
    /// Wraps values; fails if they do not fill the shape.
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Result<Self> {
        if shape.iter().product::<usize>() != data.len() {
            return Err(Error::BadLength {
                what: "tensor",
                len: data.len(),
                shape,
            });
        }
        Ok(Self { shape, data })
    }
}

/// A set of named float32 tensors (a state dict).
pub type Weights = BTreeMap<String, Tensor>;

/// Checks that `found` (key → shape and dtype name) holds exactly the tensors `cfg` specifies.
/// `file` labels the source in error messages. With `only_sr`, only the `G.*` tensors are
/// required and IDE tensors are ignored (a student initialised from a teacher's `G`).
pub fn check_layout<'a>(
    cfg: &KdsrConfig,
    file: &str,
    found: impl IntoIterator<Item = (&'a str, &'a [usize], &'a str)>,
    only_sr: bool,
) -> Result<()> {
    let found: BTreeMap<&str, (&[usize], &str)> =
        found.into_iter().map(|(k, s, d)| (k, (s, d))).collect();
    let spec = cfg.tensors();
    for t in spec.iter().filter(|t| !only_sr || t.module.in_sr_network()) {
        match found.get(t.key.as_str()) {
            None => {
                return Err(Error::MissingTensor {
                    file: file.to_owned(),
                    key: t.key.clone(),
                    expected: t.shape.clone(),
                });
            }
            Some((shape, dtype)) => {
                if *shape != t.shape.as_slice() {
                    return Err(Error::TensorShape {
                        file: file.to_owned(),
                        key: t.key.clone(),
                        found: shape.to_vec(),
                        expected: t.shape.clone(),
                    });
                }
                if *dtype != "F32" {
                    return Err(Error::TensorDtype {
                        file: file.to_owned(),
                        key: t.key.clone(),
                        dtype: (*dtype).to_owned(),
                    });
                }
            }
        }
    }
    if !only_sr {
        if let Some(extra) = found.keys().find(|k| !spec.iter().any(|t| t.key == **k)) {
            return Err(Error::UnexpectedTensor {
                file: file.to_owned(),
                key: (*extra).to_owned(),
                preset: describe(cfg),
            });
        }
    }
    Ok(())
}

fn describe(cfg: &KdsrConfig) -> String {
    format!(
        "{} (C={}, N={}, R={}, x{}, {:?})",
        cfg.preset, cfg.n_feats, cfg.n_blocks, cfg.n_resblocks, cfg.scale, cfg.role
    )
}

fn st_error(file: &str, e: impl std::fmt::Display) -> Error {
    Error::Safetensors {
        file: file.to_owned(),
        message: e.to_string(),
    }
}

/// Parses safetensors bytes, checks them against `cfg` (see [`check_layout`]) and returns the
/// float32 tensors (all of them, or only `G.*` with `only_sr`).
pub fn weights_from_bytes(
    cfg: &KdsrConfig,
    file: &str,
    bytes: &[u8],
    only_sr: bool,
) -> Result<Weights> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| st_error(file, e))?;
    let views = st.tensors();
    let dtypes: Vec<String> = views
        .iter()
        .map(|(_, v)| format!("{:?}", v.dtype()))
        .collect();
    check_layout(
        cfg,
        file,
        views
            .iter()
            .zip(&dtypes)
            .map(|((k, v), d)| (k.as_str(), v.shape(), d.as_str())),
        only_sr,
    )?;
    let mut out = Weights::new();
    for (key, view) in views {
        if only_sr && !key.starts_with("G.") {
            continue;
        }
        let t = f32_tensor(file, &key, &view)?;
        out.insert(key, t);
    }
    Ok(out)
}

/// One float32 safetensors view as a [`Tensor`]; another dtype is [`Error::TensorDtype`].
fn f32_tensor(file: &str, key: &str, view: &safetensors::tensor::TensorView) -> Result<Tensor> {
    if view.dtype() != Dtype::F32 {
        return Err(Error::TensorDtype {
            file: file.to_owned(),
            key: key.to_owned(),
            dtype: format!("{:?}", view.dtype()),
        });
    }
    let data = view
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    Tensor::new(view.shape().to_vec(), data)
}

/// A stable hash of a set of weights: SHA-256 over every tensor in key order (key, shape and
/// little-endian values), as lowercase hex, first 16 characters. It identifies the weights an ONNX
/// graph or an IDR file was made from, whatever file they were read from.
pub fn weights_hash(weights: &Weights) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for (k, t) in weights {
        h.update((k.len() as u64).to_le_bytes());
        h.update(k.as_bytes());
        h.update((t.shape.len() as u64).to_le_bytes());
        for d in &t.shape {
            h.update((*d as u64).to_le_bytes());
        }
        for v in &t.data {
            h.update(v.to_le_bytes());
        }
    }
    h.finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Parses safetensors bytes into float32 tensors without checking them against a spec (for files
/// that are not network checkpoints, e.g. IDR files). Non-float32 tensors are an error.
pub fn weights_from_bytes_unchecked(bytes: &[u8], file: &str) -> Result<Weights> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| st_error(file, e))?;
    let mut out = Weights::new();
    for (key, view) in st.tensors() {
        let t = f32_tensor(file, &key, &view)?;
        out.insert(key, t);
    }
    Ok(out)
}

/// Reads and checks a safetensors weights file against `cfg`.
pub fn load_weights(cfg: &KdsrConfig, path: &Path) -> Result<Weights> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })?;
    weights_from_bytes(cfg, &path.display().to_string(), &bytes, false)
}

/// Serialises tensors to safetensors bytes (float32, little-endian) with optional metadata.
pub fn weights_to_bytes(
    weights: &Weights,
    metadata: Option<std::collections::HashMap<String, String>>,
) -> Result<Vec<u8>> {
    let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = weights
        .iter()
        .map(|(k, t)| {
            let b = t.data.iter().flat_map(|v| v.to_le_bytes()).collect();
            (k.clone(), b, t.shape.clone())
        })
        .collect();
    let views = bytes
        .iter()
        .map(|(k, b, s)| {
            safetensors::tensor::TensorView::new(Dtype::F32, s.clone(), b)
                .map(|v| (k.clone(), v))
                .map_err(|e| st_error(k, e))
        })
        .collect::<Result<Vec<_>>>()?;
    safetensors::serialize(views, metadata).map_err(|e| st_error("<memory>", e))
}

/// A checkpoint: config and checked weights.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    /// The resolved config (from `NAME.json`).
    pub config: KdsrConfig,
    /// The weights (from `NAME.safetensors`), checked against `config`.
    pub weights: Weights,
}

/// The config path that belongs to a weights path: `NAME.safetensors` → `NAME.json`.
pub fn config_path_for(weights: &Path) -> PathBuf {
    weights.with_extension("json")
}

/// The config [`Checkpoint::save`] stores in the safetensors metadata (`kdsr.config`) of the
/// weights file at `weights`, `None` when the file has none. Errors: the file cannot be read
/// ([`Error::Io`]), is not safetensors ([`Error::Safetensors`]), or holds an invalid config
/// ([`Error::Config`]).
pub fn embedded_config(weights: &Path) -> Result<Option<KdsrConfig>> {
    let bytes = std::fs::read(weights).map_err(|source| Error::Io {
        path: weights.to_path_buf(),
        source,
    })?;
    let file = weights.display().to_string();
    let (_, header) = SafeTensors::read_metadata(&bytes).map_err(|e| st_error(&file, e))?;
    match header
        .metadata()
        .as_ref()
        .and_then(|m| m.get("kdsr.config"))
    {
        None => Ok(None),
        Some(text) => {
            KdsrConfig::from_str_as(text, "json", &format!("{file} (kdsr.config)")).map(Some)
        }
    }
}

impl Checkpoint {
    /// Loads `NAME.safetensors` with the config in `NAME.json` beside it, or with `config` when
    /// given (a preset or another file).
    pub fn load(weights_path: &Path, config: Option<KdsrConfig>) -> Result<Self> {
        let config = match config {
            Some(c) => c,
            None => KdsrConfig::from_file(&config_path_for(weights_path))?,
        };
        let weights = load_weights(&config, weights_path)?;
        Ok(Self { config, weights })
    }

    /// Writes `NAME.json`, then `NAME.safetensors`, each atomically. The config is also stored in
    /// the safetensors metadata under `kdsr.config`.
    pub fn save(&self, weights_path: &Path) -> Result<()> {
        check_layout(
            &self.config,
            "<checkpoint being saved>",
            self.weights
                .iter()
                .map(|(k, t)| (k.as_str(), t.shape.as_slice(), "F32")),
            false,
        )?;
        let meta = std::collections::HashMap::from([(
            "kdsr.config".to_owned(),
            serde_json::to_string(&self.config).unwrap_or_default(),
        )]);
        // The config first: a weights file then always has its config beside it, also when
        // the process is killed between the two writes (an orphan config is harmless).
        write_atomic(
            &config_path_for(weights_path),
            self.config.to_json().as_bytes(),
        )?;
        write_atomic(weights_path, &weights_to_bytes(&self.weights, Some(meta))?)
    }
}
