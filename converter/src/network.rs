//! [`Network`]: a student config with its checked weights and their hash — what every graph is
//! built from.

use std::path::Path;

use kdsr_core::spec::checkpoint::{Checkpoint, Weights, check_layout, load_weights, weights_hash};
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
        let weights_hash = weights_hash(&weights);
        Ok(Self {
            config,
            weights,
            weights_hash,
        })
    }

    /// Loads `weights` (safetensors, official keys) for `config`, or for the `NAME.json` beside
    /// the weights when `config` is `None`. The config is checked before the weights are read.
    pub fn load(config: Option<KdsrConfig>, weights: &Path) -> Result<Self> {
        let config = match config {
            Some(c) => c,
            None => KdsrConfig::from_file(&kdsr_core::spec::checkpoint::config_path_for(weights))?,
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
