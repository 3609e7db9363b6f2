//! [`Network`]: a student config with its checked weights and their hash — what every graph is
//! built from.

use std::path::Path;

use kdsr_core::spec::checkpoint::{
    Checkpoint, Tensor, Weights, check_layout, load_weights, weights_hash,
};
use kdsr_core::spec::{KdsrConfig, Role};

use crate::error::{ConvertError, Result};

/// A student network ready to export.
#[derive(Clone, Debug)]
pub struct Network {
    /// The config (always a student).
    pub config: KdsrConfig,
    /// The weights, checked against `config` (every official key and shape).
    pub weights: Weights,
    /// `kdsr_core::spec::checkpoint::weights_hash` of `weights`.
    pub weights_hash: String,
}

impl Network {
    /// Fails with [`ConvertError::TeacherConfig`] for a teacher config (its IDE needs the HR
    /// image) and with the config's own error for an invalid one.
    pub fn check_config(config: &KdsrConfig) -> Result<()> {
        config.validate()?;
        if config.role == Role::Teacher {
            return Err(ConvertError::TeacherConfig {
                preset: config.preset.clone(),
                student: config.clone().with_role(Role::Student).preset,
            });
        }
        if !config.block_conv.is_idr_ddc() {
            return Err(ConvertError::PlainBlocks(config.preset.clone()));
        }
        // A known preset name must carry that preset's sizes: the graphs' `kdsr.preset` is
        // what the runtime shows and falls back on, and it must not describe other sizes.
        if let Ok(named) = KdsrConfig::preset(&config.preset) {
            let sizes = |c: &KdsrConfig| (c.n_feats, c.n_blocks, c.n_resblocks, c.role, c.family);
            if sizes(&named) != sizes(config) {
                return Err(ConvertError::PresetMismatch {
                    preset: config.preset.clone(),
                    named: describe(&named),
                    found: describe(config),
                });
            }
        }
        Ok(())
    }

    /// Wraps weights, checking the config (student only) and every tensor's key and shape.
    pub fn new(config: KdsrConfig, weights: Weights) -> Result<Self> {
        Self::check_config(&config)?;
        check_layout(
            &config,
            "<weights>",
            weights
                .iter()
                .map(|(k, t)| (k.as_str(), t.shape.as_slice(), "F32")),
            false,
        )?;
        for (key, t) in &weights {
            if let Some((index, v)) = t.data.iter().enumerate().find(|(_, v)| !v.is_finite()) {
                return Err(ConvertError::NonFiniteWeight {
                    key: key.clone(),
                    index,
                    value: *v,
                    count: t.data.iter().filter(|v| !v.is_finite()).count(),
                });
            }
        }
        let weights_hash = weights_hash(&weights);
        Ok(Self {
            config,
            weights,
            weights_hash,
        })
    }

    /// Loads `weights` (safetensors, official keys) for `config`; when `config` is `None`, for
    /// the `NAME.json` beside the weights, or else the config the trainer stored in the weights'
    /// metadata (`kdsr.config`). The config is checked before the weights are read.
    ///
    /// Errors: [`ConvertError::NoConfig`] when there is neither; [`ConvertError::PresetMismatch`]
    /// for a known preset name with other sizes; [`ConvertError::NonFiniteWeight`] naming a
    /// tensor with NaN or infinity; the weights' own errors.
    pub fn load(config: Option<KdsrConfig>, weights: &Path) -> Result<Self> {
        let config = match config {
            Some(c) => c,
            None => {
                let sidecar = kdsr_core::spec::checkpoint::config_path_for(weights);
                if sidecar.exists() {
                    KdsrConfig::from_file(&sidecar)?
                } else if !weights.is_file() {
                    return Err(ConvertError::Io {
                        path: weights.to_path_buf(),
                        source: std::io::Error::new(
                            std::io::ErrorKind::NotFound,
                            "no such weights file",
                        ),
                    });
                } else {
                    match kdsr_core::spec::checkpoint::embedded_config(weights)? {
                        Some(c) => c,
                        None => {
                            return Err(ConvertError::NoConfig {
                                weights: weights.to_path_buf(),
                                sidecar,
                            });
                        }
                    }
                }
            }
        };
        Self::check_config(&config)?;
        let w = load_weights(&config, weights)?;
        Self::new(config, w)
    }

    /// From a loaded checkpoint.
    pub fn from_checkpoint(ck: Checkpoint) -> Result<Self> {
        Self::new(ck.config, ck.weights)
    }
}

/// The official tensor `key` of `weights`, or [`ConvertError::MissingWeight`] naming it.
pub fn tensor<'w>(weights: &'w Weights, key: &str) -> Result<&'w Tensor> {
    weights
        .get(key)
        .ok_or_else(|| ConvertError::MissingWeight(key.to_owned()))
}

fn describe(c: &KdsrConfig) -> String {
    format!(
        "C {}, N {}, R {}, {:?} {:?}",
        c.n_feats, c.n_blocks, c.n_resblocks, c.family, c.role
    )
}
