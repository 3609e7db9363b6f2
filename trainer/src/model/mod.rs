//! KDSR networks in tch, built from [`KdsrConfig`] with the official `state_dict` key names, so
//! official checkpoints (converted to safetensors) load directly.
//!
//! - [`layers`]: conv / linear / LeakyReLU helpers with PyTorch's default initialisation.
//! - [`ide`]: the KD-IDE (`E` / `E_st`).
//! - [`ddc`]: IDR-DDC, the per-sample dynamic depthwise conv.
//! - [`dcrb`]: the IDR-DCRB block.
//! - [`upsampler`]: conv + PixelShuffle stages.
//! - [`sr`]: the SR network `G`.

pub mod dcrb;
pub mod ddc;
pub mod ide;
pub mod layers;
pub mod sr;
pub mod upsampler;

use anyhow::{Context, Result};
use kdsr_core::spec::checkpoint::{Weights, check_layout};
use kdsr_core::spec::{KdsrConfig, Role};
use std::path::Path;
use tch::{Device, Tensor, nn};

use crate::checkpoint::{from_core, save_weights, to_core, weights_of};

/// Outputs of one forward pass.
#[derive(Debug)]
pub struct Output {
    /// SR image `[B,3,sH,sW]`, unclamped.
    pub sr: Tensor,
    /// IDR `D` `[B,C]`.
    pub d: Tensor,
    /// `D'` `[B,4C]` (the KD target).
    pub d_prime: Tensor,
}

/// A whole KDSR network (`BlindSR`): SR network `G` and a teacher (`E`) or student (`E_st`) IDE.
#[derive(Debug)]
pub struct BlindSr {
    /// The config it was built from.
    pub cfg: KdsrConfig,
    /// SR network.
    pub g: sr::SrNet,
    /// Degradation estimator.
    pub e: ide::Ide,
}

impl BlindSr {
    /// Builds the network under `root` of a VarStore (keys `G.*`, `E.*`/`E_st.*`).
    pub fn new(root: &nn::Path, cfg: &KdsrConfig) -> Self {
        Self {
            cfg: cfg.clone(),
            g: sr::SrNet::new(&(root / "G"), cfg),
            e: ide::Ide::new(&(root / cfg.role.ide_prefix()), cfg),
        }
    }

    /// The IDE input for this role: `lr` for a student, `concat(lr, PixelUnshuffle_s(hr))` for a
    /// teacher (which therefore needs `hr`).
    pub fn ide_input(&self, lr: &Tensor, hr: Option<&Tensor>) -> Result<Tensor> {
        match self.cfg.role {
            Role::Student => Ok(lr.shallow_clone()),
            Role::Teacher => {
                let hr = hr.context("a teacher needs the HR image (`hr`) as IDE input")?;
                let s = i64::from(self.cfg.scale);
                Ok(Tensor::cat(&[lr, &hr.pixel_unshuffle(s)], 1))
            }
        }
    }

    /// Full forward: `D, D' = IDE(input)`, `sr = G(lr, D)`.
    ///
    /// # Shapes
    /// `lr` `[B,3,h,w]`, `hr` `[B,3,sh,sw]` (teachers only).
    pub fn forward(&self, lr: &Tensor, hr: Option<&Tensor>) -> Result<Output> {
        let (d, d_prime) = self.e.forward(&self.ide_input(lr, hr)?);
        let sr = self.g.forward(lr, &d);
        Ok(Output { sr, d, d_prime })
    }
}

/// Copies checked official-layout weights into a VarStore's variables. With `only_sr`, only the
/// `G.*` tensors are copied (student initialisation from a teacher).
pub fn load_into(
    vs: &mut nn::VarStore,
    cfg: &KdsrConfig,
    weights: &Weights,
    only_sr: bool,
) -> Result<()> {
    check_layout(
        cfg,
        "<weights>",
        weights
            .iter()
            .map(|(k, t)| (k.as_str(), t.shape.as_slice(), "F32")),
        only_sr,
    )?;
    let device = vs.device();
    let vars = vs.variables();
    tch::no_grad(|| -> Result<()> {
        for (name, var) in vars {
            if only_sr && !name.starts_with("G.") {
                continue;
            }
            let t = weights
                .get(&name)
                .with_context(|| format!("missing tensor `{name}`"))?;
            let src = from_core(t).to_device(device);
            let mut var = var;
            var.copy_(&src);
        }
        Ok(())
    })
}

/// A network with its VarStore.
#[derive(Debug)]
pub struct Model {
    /// Holds every variable under official names.
    pub vs: nn::VarStore,
    /// The network.
    pub net: BlindSr,
}

impl Model {
    /// A freshly initialised network on `device` (PyTorch default initialisation).
    pub fn new(cfg: &KdsrConfig, device: Device) -> Self {
        let vs = nn::VarStore::new(device);
        let net = BlindSr::new(&vs.root(), cfg);
        Self { vs, net }
    }

    /// Loads a checked safetensors file (official key names) for `cfg`.
    pub fn load(cfg: &KdsrConfig, weights: &Path, device: Device) -> Result<Self> {
        let w = kdsr_core::spec::checkpoint::load_weights(cfg, weights)?;
        let mut m = Self::new(cfg, device);
        load_into(&mut m.vs, cfg, &w, false)?;
        Ok(m)
    }

    /// Loads a stage's `pretrain` weights (checked against the model's config); `stage` labels
    /// errors.
    pub fn load_pretrain(&mut self, weights: &Path, stage: &str) -> Result<()> {
        let cfg = self.net.cfg.clone();
        let context = || format!("{stage}.pretrain {}", weights.display());
        let w = kdsr_core::spec::checkpoint::load_weights(&cfg, weights).with_context(context)?;
        load_into(&mut self.vs, &cfg, &w, false).with_context(context)
    }

    /// The network's weights in the official layout and parameterisation: the variables, with
    /// a preconditioned IDE's first conv folded back (see [`ide::Precondition`]).
    pub fn official_weights(&self) -> Result<Weights> {
        let mut w = weights_of(&self.vs)?;
        self.fold_official(&mut w)?;
        Ok(w)
    }

    /// Folds a preconditioned IDE's first conv in `w` (variables of this model, e.g. an EMA
    /// copy) back to the official parameterisation; nothing to do otherwise.
    pub fn fold_official(&self, w: &mut Weights) -> Result<()> {
        if !self.net.e.preconditioned() {
            return Ok(());
        }
        let p = format!("{}.E.0", self.net.cfg.role.ide_prefix());
        let get = |k: &str| -> Result<Tensor> {
            let t = w.get(k).with_context(|| format!("missing tensor `{k}`"))?;
            Ok(from_core(t))
        };
        let (wk, bk) = (format!("{p}.weight"), format!("{p}.bias"));
        let (ws, bs) = (get(&wk)?, get(&bk)?);
        let pre = ide::Precondition::for_input(ws.size()[1] as usize, Device::Cpu);
        let (wo, bo) = tch::no_grad(|| pre.fold(&ws, &bs));
        for (k, t) in [(wk, wo), (bk, bo)] {
            w.insert(k, to_core(&t)?);
        }
        Ok(())
    }

    /// Saves `NAME.safetensors` + `NAME.json` atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        save_weights(&self.net.cfg, self.official_weights()?, path)
    }
}
