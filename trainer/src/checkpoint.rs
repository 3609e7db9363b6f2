//! The files a training stage writes and reads, for both pipelines: tensor conversion between
//! tch and the official layout ([`to_core`], [`from_core`], [`weights_of`]), the trainable
//! variables of a VarStore ([`named_trainables`]), official checkpoints ([`save_weights`]),
//! the periodic ones ([`prune`]), raw safetensors files ([`read_safetensors`],
//! [`copy_checked`]) and the resume state ([`StateFile`], [`ResumeState`]).
//!
//! # The resume state
//! `last.state.safetensors` ([`STATE_FILE`]) holds, under these names:
//! - `model.NAME`: the trained network's variables as trained (a preconditioned IDE unfolded);
//! - `adam.m.NAME`, `adam.v.NAME`: its Adam moments; `ema.NAME`: its EMA, when kept (these
//!   three are [`crate::driver::Trainee`]'s);
//! - whatever the stage adds (the real-world GAN stage: `d.model.*`, `d.adam.*`, `pool.*`);
//!
//! and the metadata `stage`, `iter`, `best_psnr` (empty when none), `preset` and `adam_step`,
//! plus the stage's own keys. It is written to a temporary name and renamed (`write_atomic`), so a
//! `kill -9` leaves either the old state or the new one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use kdsr_core::spec::KdsrConfig;
use kdsr_core::spec::checkpoint::{
    Checkpoint, Tensor as CoreTensor, Weights, weights_to_bytes, write_atomic,
};
use tch::{Device, Kind, Tensor, nn};

/// The resume state's file name in a stage folder.
pub const STATE_FILE: &str = "last.state.safetensors";

/// A tensor as a float32 CPU tensor of the official layout.
pub fn to_core(t: &Tensor) -> Result<CoreTensor> {
    let t = t
        .detach()
        .to_device(Device::Cpu)
        .to_kind(Kind::Float)
        .contiguous();
    let shape = t.size().iter().map(|d| *d as usize).collect();
    Ok(CoreTensor::new(
        shape,
        Vec::<f32>::try_from(t.flatten(0, -1))?,
    )?)
}

/// An official-layout tensor as a CPU tch tensor.
pub fn from_core(t: &CoreTensor) -> Tensor {
    let shape: Vec<i64> = t.shape.iter().map(|d| *d as i64).collect();
    Tensor::from_slice(&t.data).reshape(&shape)
}

/// Reads a VarStore's variables back as official-layout weights (float32, CPU).
pub fn weights_of(vs: &nn::VarStore) -> Result<Weights> {
    vs.variables()
        .into_iter()
        .map(|(name, var)| Ok((name, to_core(&var)?)))
        .collect()
}

/// A VarStore's trainable variables, sorted by name (the optimiser's and the EMA's order).
pub fn named_trainables(vs: &nn::VarStore) -> Vec<(String, Tensor)> {
    let mut v: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .filter(|(_, t)| t.requires_grad())
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// Saves weights (`name` → tensor) as an official-layout checkpoint (`.safetensors` + `.json`,
/// atomically).
pub fn save_weights(cfg: &KdsrConfig, weights: Weights, path: &Path) -> Result<()> {
    Checkpoint {
        config: cfg.clone(),
        weights,
    }
    .save(path)
    .with_context(|| format!("saving {}", path.display()))
}

/// Keeps the newest `keep` periodic checkpoints (`iter_*.safetensors` and their `.json`).
pub fn prune(dir: &Path, keep: usize) -> Result<()> {
    let mut its: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("iter_") && n.ends_with(".safetensors"))
        })
        .collect();
    its.sort();
    let n = its.len().saturating_sub(keep);
    for p in its.into_iter().take(n) {
        std::fs::remove_file(&p)?;
        let _ = std::fs::remove_file(p.with_extension("json"));
    }
    Ok(())
}

/// Reads every float32 tensor of a safetensors file into CPU tensors.
pub fn read_safetensors(path: &Path) -> Result<HashMap<String, Tensor>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    read_safetensors_bytes(&bytes, path)
}

fn read_safetensors_bytes(bytes: &[u8], path: &Path) -> Result<HashMap<String, Tensor>> {
    let st = safetensors::SafeTensors::deserialize(bytes)
        .with_context(|| format!("{}: not a safetensors file", path.display()))?;
    let mut out = HashMap::new();
    for (k, v) in st.tensors() {
        if v.dtype() != safetensors::Dtype::F32 {
            bail!(
                "{}: tensor `{k}` is {:?}, expected F32",
                path.display(),
                v.dtype()
            );
        }
        let data: Vec<f32> = v
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let shape: Vec<i64> = v.shape().iter().map(|d| *d as i64).collect();
        out.insert(k, Tensor::from_slice(&data).reshape(&shape));
    }
    Ok(out)
}

/// Copies `tensors[key]` into `dst` (converted to `dst`'s device, float32), without recording
/// gradients; a missing tensor or another shape is an error naming `what` and `key`.
pub fn copy_checked(
    dst: &mut Tensor,
    tensors: &HashMap<String, Tensor>,
    key: &str,
    what: &str,
) -> Result<()> {
    let src = tensors
        .get(key)
        .with_context(|| format!("{what} lacks `{key}`"))?;
    if src.size() != dst.size() {
        bail!(
            "{what}: `{key}` has shape {:?}, expected {:?}",
            src.size(),
            dst.size()
        );
    }
    let src = src.to_kind(Kind::Float).to_device(dst.device());
    tch::no_grad(|| dst.copy_(&src));
    Ok(())
}

/// Where a stage stands: iterations completed and the best validation PSNR so far.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Progress {
    /// Iterations completed.
    pub iter: u64,
    /// Best validation PSNR, if validation ran.
    pub best: Option<f64>,
}

/// A resume state being assembled (see the [module docs](self)).
#[derive(Debug, Default)]
pub struct StateFile {
    /// Tensors by name.
    pub tensors: Weights,
    /// Metadata.
    pub meta: HashMap<String, String>,
}

impl StateFile {
    /// The state of stage `stage` at `at`, of a network of preset `preset`, with no tensors yet.
    pub fn new(stage: &str, at: Progress, preset: &str) -> Self {
        let mut s = Self::default();
        for (k, v) in [
            ("stage", stage.to_owned()),
            ("iter", at.iter.to_string()),
            (
                "best_psnr",
                at.best.map(|b| b.to_string()).unwrap_or_default(),
            ),
            ("preset", preset.to_owned()),
        ] {
            s.meta.insert(k.to_owned(), v);
        }
        s
    }

    /// Adds tensors under `PREFIXname`.
    pub fn put<'a>(
        &mut self,
        prefix: &str,
        tensors: impl IntoIterator<Item = &'a (String, Tensor)>,
    ) -> Result<()> {
        for (k, t) in tensors {
            self.tensors.insert(format!("{prefix}{k}"), to_core(t)?);
        }
        Ok(())
    }

    /// Adds official-layout weights under `PREFIXname`.
    pub fn put_weights(&mut self, prefix: &str, weights: Weights) {
        for (k, t) in weights {
            self.tensors.insert(format!("{prefix}{k}"), t);
        }
    }

    /// Writes the state atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        write_atomic(
            path,
            &weights_to_bytes(&self.tensors, Some(self.meta.clone()))?,
        )?;
        Ok(())
    }
}

/// A resume state read back.
#[derive(Debug)]
pub struct ResumeState {
    /// Tensors by name (CPU).
    pub tensors: HashMap<String, Tensor>,
    meta: HashMap<String, String>,
    path: PathBuf,
}

impl ResumeState {
    /// Reads `path`; checks that it is the state of `stage` (states written before the `stage`
    /// key existed pass).
    pub fn read(path: &Path, stage: &str) -> Result<Self> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes)
            .with_context(|| format!("{}: not a safetensors file", path.display()))?;
        let meta = meta.metadata().clone().unwrap_or_default();
        let s = Self {
            tensors: read_safetensors_bytes(&bytes, path)?,
            meta,
            path: path.to_path_buf(),
        };
        if let Some(other) = s.meta.get("stage")
            && other != stage
        {
            bail!(
                "{} is the state of stage {other}, not {stage}",
                path.display()
            );
        }
        Ok(s)
    }

    /// A metadata value.
    pub fn meta(&self, key: &str) -> Result<&str> {
        self.meta
            .get(key)
            .map(String::as_str)
            .with_context(|| format!("{}: no `{key}` in metadata", self.path.display()))
    }

    /// A metadata value parsed.
    pub fn parse<T: std::str::FromStr>(&self, key: &str) -> Result<T>
    where
        T::Err: std::error::Error + Send + Sync + 'static,
    {
        self.meta(key)?
            .parse()
            .with_context(|| format!("{}: metadata `{key}`", self.path.display()))
    }

    /// Iterations completed and the best validation PSNR.
    pub fn progress(&self) -> Result<Progress> {
        Ok(Progress {
            iter: self.parse("iter")?,
            best: self.meta("best_psnr")?.parse().ok(),
        })
    }

    /// The tensors under `PREFIX` with the prefix stripped.
    pub fn with_prefix(&self, prefix: &str) -> HashMap<String, Tensor> {
        self.tensors
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix(prefix)
                    .map(|n| (n.to_owned(), v.shallow_clone()))
            })
            .collect()
    }
}
