//! The three real-world stages: KDSRNet_T (L1) → KDSRNet_S (L1 + KD, `G` initialised from the
//! teacher) → KDSR_S-GAN (L1 + perceptual + GAN + KD, initialised from KDSRNet_S), each with an
//! EMA of G (0.999), on batches degraded on the device by [`RealDegrader`].
//!
//! A stage writes into `OUT/<stage>/` (`net-teacher`, `net-student`, `gan-student`):
//! - `train.toml` (the resolved config), `metrics.jsonl` (losses every `log_every` iterations,
//!   validation scores);
//! - `iter_NNNNNNN.safetensors` (+ `.json`): periodic G weights under official keys (the last
//!   `keep_last` kept); `final.*` (G) and `final_ema.*` (the EMA of G — what the next stage and
//!   users load, as BasicSR's `params_ema`); `best.*` (highest validation PSNR of the EMA
//!   weights); for the GAN stage `final_net_d.safetensors` (the discriminator at BasicSR names,
//!   spectral-norm `weight_u` / `weight_v` included);
//! - `last.state.safetensors`: G, the EMA, G's Adam, D and D's Adam (with the spectral-norm
//!   vectors), the training-pair pool and the iteration, written atomically, for exact resume.
//!
//! # One iteration
//! The batch of iteration `i` comes from [`Loader`] (crops of `data.hr_patch`); libtorch's
//! generator is seeded with `mix(seed, 2, i)` and a CPU generator with `mix(seed, 3, i)` draws
//! the [`DegradePlan`] and the pool shuffle, so a resumed run equals an uninterrupted one. After
//! the degradation and the paired crop, the (LQ, GT) pair goes through the pool (when enabled),
//! then `gt_usm = USM(gt)` gives the sharpened targets ([`UsmSection`]).
//!
//! GAN stage, as `RealESRGANModel.optimize_parameters` plus KD: the G step with D frozen
//! (`l1_weight·L1 + perceptual_weight·Perc + gan_weight·BCE(D(sr), 1) + kd_weight·KD`), then the
//! D step on `BCE(D(gan_gt), 1)` and `BCE(D(sr.detach()), 0)`, each backpropagated separately;
//! D stays in training mode, so each of its three forwards runs one power iteration.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use kdsr_core::metrics::MetricVariant;
use kdsr_core::spec::checkpoint::{
    Checkpoint, Tensor as CoreTensor, Weights, load_weights, weights_to_bytes, write_atomic,
};
use kdsr_core::spec::{KdsrConfig, Role};
use rand::{Rng, RngExt, SeedableRng};
use serde::Serialize;
use serde_json::json;
use tch::{Device, Kind, Reduction, Tensor};

use super::config::{GanTrainConfig, UsmSection};
use super::degrade::{DegradePlan, RealDegrader};
use super::discriminator::UNetDiscriminator;
use super::eval::{Pair, evaluate_pairs, load_pairs, synth_pairs};
use super::lpips::Lpips;
use super::vgg::{PerceptualLoss, Vgg19, read_safetensors};
use crate::config::StageSection;
use crate::data::{Dataset, Loader};
use crate::device::{device_name, parse_device};
use crate::loss::{KdLoss, kd_loss, l1};
use crate::model::{Model, load_into, weights_of};
use crate::optim::{Adam, Ema, step_lr};
use crate::train::mix;

/// One of the three real-world stages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum GanStage {
    /// KDSRNet_T: the teacher, L1.
    NetTeacher,
    /// KDSRNet_S: the student, L1 + KD.
    NetStudent,
    /// KDSR_S-GAN: the student, L1 + perceptual + GAN + KD.
    GanStudent,
}

impl GanStage {
    /// All three, in training order.
    pub const ALL: [Self; 3] = [Self::NetTeacher, Self::NetStudent, Self::GanStudent];

    /// Folder name under the run directory.
    pub fn name(self) -> &'static str {
        match self {
            Self::NetTeacher => "net-teacher",
            Self::NetStudent => "net-student",
            Self::GanStudent => "gan-student",
        }
    }

    /// Its optimisation settings.
    pub fn settings(self, cfg: &GanTrainConfig) -> &StageSection {
        match self {
            Self::NetTeacher => &cfg.net_teacher,
            Self::NetStudent => &cfg.net_student.stage,
            Self::GanStudent => &cfg.gan.g,
        }
    }
}

/// Options of one stage run that are not part of the experiment config.
#[derive(Clone, Debug, Default)]
pub struct GanTrainOptions {
    /// Run directory (the stage writes into `out_dir/<stage>/`).
    pub out_dir: PathBuf,
    /// Continue from `last.state.safetensors` when present.
    pub resume: bool,
    /// VGG19 weights (torchvision names) for the perceptual loss; required by the GAN stage.
    pub vgg: Option<PathBuf>,
    /// LPIPS-Alex weights for validation (optional).
    pub lpips: Option<PathBuf>,
    /// Teacher weights for the student stages (default `OUT/net-teacher/final_ema.safetensors`).
    pub teacher_weights: Option<PathBuf>,
    /// Initial weights of the GAN stage (default `OUT/net-student/final_ema.safetensors`).
    pub init_weights: Option<PathBuf>,
    /// No progress bar, no log lines on stderr.
    pub quiet: bool,
    /// Stop after this many iterations in this invocation (writing the resume state).
    pub stop_after: Option<u64>,
    /// Log every this many iterations (default 10).
    pub log_every: Option<u64>,
}

/// What a stage run produced.
#[derive(Clone, Debug, Serialize)]
pub struct GanStageResult {
    /// The stage.
    pub stage: GanStage,
    /// Iterations completed in total.
    pub iterations: u64,
    /// Iterations run by this invocation.
    pub ran: u64,
    /// Generator loss of the last iteration.
    pub last_loss: f64,
    /// Best validation PSNR (EMA weights), if validation ran.
    pub best_psnr: Option<f64>,
    /// Iterations per second of this invocation (training steps only).
    pub it_per_s: f64,
    /// Final weights (`final_ema` when the stage keeps an EMA), or the state file when stopped
    /// early.
    pub weights: PathBuf,
    /// Device used.
    pub device: String,
}

/// Real-ESRGAN's training-pair pool (`_dequeue_and_enqueue`): while filling, batches pass
/// through and are stored; once full, the pool is shuffled, its first `b` pairs are returned and
/// replaced by the incoming batch.
#[derive(Debug)]
pub struct PairPool {
    size: usize,
    lq: Option<Tensor>,
    gt: Option<Tensor>,
    ptr: usize,
}

impl PairPool {
    /// A pool of `size` pairs (0: disabled).
    pub fn new(size: usize) -> Self {
        Self {
            size,
            lq: None,
            gt: None,
            ptr: 0,
        }
    }

    /// Exchanges a batch (see the type docs); the shuffle is drawn from `rng`.
    pub fn exchange<R: Rng + ?Sized>(
        &mut self,
        lq: Tensor,
        gt: Tensor,
        rng: &mut R,
    ) -> Result<(Tensor, Tensor)> {
        if self.size == 0 {
            return Ok((lq, gt));
        }
        let b = lq.size()[0] as usize;
        if self.size % b != 0 {
            bail!("pool size {} is not a multiple of the batch {b}", self.size);
        }
        let q = self.size as i64;
        let pool_lq = self.lq.get_or_insert_with(|| {
            let mut s = lq.size();
            s[0] = q;
            Tensor::zeros(s.as_slice(), (Kind::Float, lq.device()))
        });
        let pool_gt = self.gt.get_or_insert_with(|| {
            let mut s = gt.size();
            s[0] = q;
            Tensor::zeros(s.as_slice(), (Kind::Float, gt.device()))
        });
        let bi = b as i64;
        if self.ptr == self.size {
            let mut perm: Vec<i64> = (0..q).collect();
            for i in (1..perm.len()).rev() {
                let j = rng.random_range(0..=i);
                perm.swap(i, j);
            }
            let idx = Tensor::from_slice(&perm).to_device(pool_lq.device());
            *pool_lq = pool_lq.index_select(0, &idx);
            *pool_gt = pool_gt.index_select(0, &idx);
            let out_lq = pool_lq.narrow(0, 0, bi).copy();
            let out_gt = pool_gt.narrow(0, 0, bi).copy();
            pool_lq.narrow(0, 0, bi).copy_(&lq);
            pool_gt.narrow(0, 0, bi).copy_(&gt);
            Ok((out_lq, out_gt))
        } else {
            let p = self.ptr as i64;
            pool_lq.narrow(0, p, bi).copy_(&lq);
            pool_gt.narrow(0, p, bi).copy_(&gt);
            self.ptr += b;
            Ok((lq, gt))
        }
    }
}

/// The losses of one iteration (detached scalars).
#[derive(Debug)]
pub struct StepLosses {
    /// Total generator loss.
    pub total: Tensor,
    /// L1 (weighted as in the total).
    pub l1: Tensor,
    /// KD loss (student stages).
    pub kd: Option<Tensor>,
    /// Perceptual loss (GAN stage).
    pub perceptual: Option<Tensor>,
    /// Generator GAN loss (GAN stage).
    pub gan_g: Option<Tensor>,
    /// Discriminator loss on real images.
    pub d_real: Option<Tensor>,
    /// Discriminator loss on SR images.
    pub d_fake: Option<Tensor>,
    /// G's learning rate of this iteration.
    pub lr_g: f64,
}

impl StepLosses {
    /// The values as a JSON object.
    pub fn to_json(&self) -> serde_json::Value {
        let v = |t: &Tensor| t.double_value(&[]);
        let mut o = json!({"loss": v(&self.total), "l1": v(&self.l1), "lr": self.lr_g});
        for (k, t) in [
            ("kd", &self.kd),
            ("perceptual", &self.perceptual),
            ("gan_g", &self.gan_g),
            ("d_real", &self.d_real),
            ("d_fake", &self.d_fake),
        ] {
            if let Some(t) = t {
                o[k] = json!(v(t));
            }
        }
        o
    }
}

/// Everything one stage trains with; [`StageRunner::step`] is one iteration.
#[derive(Debug)]
pub struct StageRunner {
    /// The experiment.
    pub cfg: GanTrainConfig,
    /// The stage.
    pub stage: GanStage,
    /// Training device.
    pub device: Device,
    /// The network being trained.
    pub model: Model,
    /// The frozen teacher (student stages).
    pub teacher: Option<Model>,
    /// The discriminator (GAN stage).
    pub disc: Option<UNetDiscriminator>,
    percep: Option<PerceptualLoss>,
    adam_g: Adam,
    adam_d: Option<Adam>,
    params_g: Vec<(String, Tensor)>,
    params_d: Vec<(String, Tensor)>,
    /// EMA of G.
    pub ema: Option<Ema>,
    degrader: RealDegrader,
    pool: PairPool,
    /// Iterations completed.
    pub iter: u64,
    /// Best validation PSNR so far.
    pub best: Option<f64>,
}

fn named_trainables(m: &Model) -> Vec<(String, Tensor)> {
    let mut v: Vec<(String, Tensor)> =
        m.vs.variables()
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn to_core(t: &Tensor) -> Result<CoreTensor> {
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

fn bce(logits: &Tensor, real: bool) -> Tensor {
    let target = if real {
        logits.ones_like()
    } else {
        logits.zeros_like()
    };
    logits.binary_cross_entropy_with_logits(
        &target,
        None::<Tensor>,
        None::<Tensor>,
        Reduction::Mean,
    )
}

/// Sets `requires_grad` on every parameter (BasicSR freezes D during the G step).
fn set_requires_grad(params: &[(String, Tensor)], on: bool) {
    for (_, p) in params {
        let _ = p.set_requires_grad(on);
    }
}

fn load_model(cfg: &KdsrConfig, path: &Path, what: &str, device: Device) -> Result<Model> {
    Model::load(cfg, path, device).with_context(|| {
        format!(
            "loading the {what} {} (train the earlier stage first, or pass its weights)",
            path.display()
        )
    })
}

impl StageRunner {
    /// Builds the networks, losses and optimisers of `stage` (loading the teacher, the initial
    /// weights and the VGG as the stage needs them; see [`GanTrainOptions`]).
    pub fn new(cfg: &GanTrainConfig, stage: GanStage, opts: &GanTrainOptions) -> Result<Self> {
        let device = parse_device(&cfg.run.device)?;
        if cfg.run.threads > 0 {
            tch::set_num_threads(cfg.run.threads as i32);
        }
        let seed = cfg.run.seed;
        let scfg = cfg.student_model()?;
        let tcfg = cfg.teacher_model()?;
        let model_cfg = if stage == GanStage::NetTeacher {
            tcfg.clone()
        } else {
            scfg.clone()
        };
        tch::manual_seed(mix(seed, 1, 0) as i64);
        let mut model = Model::new(&model_cfg, device);
        let teacher = if stage == GanStage::NetTeacher {
            None
        } else {
            let path = opts.teacher_weights.clone().unwrap_or_else(|| {
                opts.out_dir
                    .join(GanStage::NetTeacher.name())
                    .join("final_ema.safetensors")
            });
            let mut t = load_model(&tcfg, &path, "teacher", device)?;
            t.vs.freeze();
            Some(t)
        };
        match (stage, &teacher) {
            (GanStage::NetStudent, Some(t)) if cfg.net_student.init_from_teacher => {
                load_into(&mut model.vs, &scfg, &weights_of(&t.vs)?, true)?;
            }
            (GanStage::GanStudent, _) => {
                let path = opts.init_weights.clone().unwrap_or_else(|| {
                    opts.out_dir
                        .join(GanStage::NetStudent.name())
                        .join("final_ema.safetensors")
                });
                let w = load_weights(&scfg, &path).with_context(|| {
                    format!(
                        "loading the KDSRNet_S weights {} that the GAN stage starts from",
                        path.display()
                    )
                })?;
                load_into(&mut model.vs, &scfg, &w, false)?;
            }
            _ => {}
        }
        if let Some(w) = &stage.settings(cfg).pretrain {
            crate::train::load_pretrain(&mut model, w, stage.name())?;
        }
        let (disc, percep) = if stage == GanStage::GanStudent {
            let g = &cfg.gan;
            tch::manual_seed(mix(seed, 1, 1) as i64);
            let d = UNetDiscriminator::new(g.d.num_feat, g.d.skip, device);
            let p = if g.perceptual_weight != 0.0 {
                let path = opts.vgg.as_ref().context(
                    "the GAN stage needs VGG19 weights for its perceptual loss: pass --vgg \
                     vgg19.safetensors (torchvision names; the module docs of \
                     kdsr_trainer::realworld::vgg show the one-line conversion), or set \
                     gan.perceptual_weight=0",
                )?;
                let vgg = Vgg19::load(path, device)
                    .with_context(|| format!("loading VGG19 weights {}", path.display()))?;
                Some(PerceptualLoss::new(vgg, g.layer_weights))
            } else {
                None
            };
            (Some(d), p)
        } else {
            (None, None)
        };
        let st = stage.settings(cfg);
        let params_g = named_trainables(&model);
        let adam_g = Adam::new(
            params_g
                .iter()
                .map(|(n, t)| (n.clone(), t.shallow_clone()))
                .collect(),
            st.beta1,
            st.beta2,
            st.eps,
        );
        let ema = st.ema.map(|d| Ema::new(&params_g, d));
        let params_d = disc.as_ref().map(|d| d.trainables()).unwrap_or_default();
        let adam_d = disc.as_ref().map(|_| {
            let d = &cfg.gan.d;
            Adam::new(
                params_d
                    .iter()
                    .map(|(n, t)| (n.clone(), t.shallow_clone()))
                    .collect(),
                d.beta1,
                d.beta2,
                d.eps,
            )
        });
        Ok(Self {
            cfg: cfg.clone(),
            stage,
            device,
            degrader: RealDegrader::new(&cfg.degradation, model_cfg.scale, device)?,
            model,
            teacher,
            disc,
            percep,
            adam_g,
            adam_d,
            params_g,
            params_d,
            ema,
            pool: PairPool::new(cfg.pairs.pool_size),
            iter: 0,
            best: None,
        })
    }

    /// The training pair of iteration `it` from an HR batch `[B,3,P,P]` (any device): degraded,
    /// cropped and passed through the pool. Returns (LQ, GT).
    pub fn make_pair(&mut self, hr: &Tensor, it: u64) -> Result<(Tensor, Tensor)> {
        let seed = self.cfg.run.seed;
        let scale = self.model.net.cfg.scale;
        let hr = hr.to_kind(Kind::Float).to_device(self.device);
        let s = hr.size();
        tch::manual_seed(mix(seed, 2, it) as i64);
        let mut rng = rand::rngs::StdRng::seed_from_u64(mix(seed, 3, it));
        let plan = DegradePlan::draw(
            &self.cfg.degradation,
            s[0] as usize,
            (s[2] as usize, s[3] as usize),
            Some(self.cfg.pairs.gt_size),
            scale,
            &mut rng,
        )?;
        let d = tch::no_grad(|| self.degrader.degrade(&hr, &plan, self.cfg.usm.degrade))?;
        self.pool.exchange(d.lq, d.gt, &mut rng)
    }

    /// G's and D's learning rates at iteration `it` (0-based).
    pub fn learning_rates(&self, it: u64) -> (f64, f64) {
        let st = self.stage.settings(&self.cfg);
        let d = &self.cfg.gan.d;
        (
            step_lr(st.lr, st.gamma, st.decay_every, it),
            step_lr(d.lr, d.gamma, d.decay_every, it),
        )
    }

    /// One training iteration on the HR batch of iteration `it`.
    pub fn step(&mut self, hr: &Tensor, it: u64) -> Result<StepLosses> {
        let (lq, gt) = self.make_pair(hr, it)?;
        let u: &UsmSection = &self.cfg.usm;
        let gt_usm = if u.l1 || u.perceptual || u.gan || u.teacher {
            tch::no_grad(|| self.degrader.usm().apply(&gt))?
        } else {
            gt.shallow_clone()
        };
        let pick = |sharp: bool| {
            if sharp {
                gt_usm.shallow_clone()
            } else {
                gt.shallow_clone()
            }
        };
        let (l1_gt, percep_gt, gan_gt, teacher_hr) =
            (pick(u.l1), pick(u.perceptual), pick(u.gan), pick(u.teacher));
        let (lr_g, lr_d) = self.learning_rates(it);
        let (kd_kind, tau, kd_weight, l1_weight) = match self.stage {
            GanStage::NetTeacher => (KdLoss::Kl, 1.0, 0.0, 1.0),
            GanStage::NetStudent => {
                let s = &self.cfg.net_student;
                (s.kd, s.tau, s.kd_weight, 1.0)
            }
            GanStage::GanStudent => {
                let g = &self.cfg.gan;
                (g.kd, g.tau, g.kd_weight, g.l1_weight)
            }
        };

        // Generator step.
        set_requires_grad(&self.params_d, false);
        self.adam_g.zero_grad();
        let hr_in = (self.model.net.cfg.role == Role::Teacher).then_some(&teacher_hr);
        let out = self.model.net.forward(&lq, hr_in)?;
        let l1v = l1(&out.sr, &l1_gt) * l1_weight;
        let kd = match &self.teacher {
            Some(t) => {
                let tout = tch::no_grad(|| t.net.forward(&lq, Some(&teacher_hr)))?;
                Some(kd_loss(kd_kind, &out.d_prime, &tout.d_prime, tau) * kd_weight)
            }
            None => None,
        };
        let perceptual = self
            .percep
            .as_ref()
            .map(|p| p.forward(&out.sr, &percep_gt) * self.cfg.gan.perceptual_weight);
        let gan_g = match &self.disc {
            Some(d) => Some(bce(&d.forward(&out.sr)?, true) * self.cfg.gan.gan_weight),
            None => None,
        };
        let total = [&kd, &perceptual, &gan_g]
            .into_iter()
            .flatten()
            .fold(l1v.shallow_clone(), |acc, t| acc + t);
        total.backward();
        self.adam_g.step(lr_g);
        set_requires_grad(&self.params_d, true);

        // Discriminator step.
        let (d_real, d_fake) = match (&self.disc, self.adam_d.as_mut()) {
            (Some(d), Some(adam_d)) => {
                adam_d.zero_grad();
                let real = bce(&d.forward(&gan_gt)?, true);
                real.backward();
                let fake = bce(&d.forward(&out.sr.detach())?, false);
                fake.backward();
                adam_d.step(lr_d);
                (Some(real.detach()), Some(fake.detach()))
            }
            _ => (None, None),
        };
        if let Some(e) = self.ema.as_mut() {
            e.update(&self.params_g);
        }
        self.iter = it + 1;
        Ok(StepLosses {
            total: total.detach(),
            l1: l1v.detach(),
            kd: kd.map(|t| t.detach()),
            perceptual: perceptual.map(|t| t.detach()),
            gan_g: gan_g.map(|t| t.detach()),
            d_real,
            d_fake,
            lr_g,
        })
    }

    /// The EMA weights of G (or its live weights without EMA), official keys.
    pub fn ema_weights(&self) -> Result<Weights> {
        let mut w = weights_of(&self.model.vs)?;
        if let Some(e) = &self.ema {
            for (k, t) in &e.shadow {
                w.insert(k.clone(), to_core(t)?);
            }
        }
        Ok(w)
    }

    /// The live weights of G, official keys.
    pub fn weights(&self) -> Result<Weights> {
        weights_of(&self.model.vs)
    }

    /// Writes the resume state atomically (see the [module docs](self)).
    pub fn save_state(&self, path: &Path) -> Result<()> {
        let mut w = Weights::new();
        for (k, t) in weights_of(&self.model.vs)? {
            w.insert(format!("model.{k}"), t);
        }
        let (adam, step) = self.adam_g.state();
        for (k, t) in adam {
            w.insert(k, to_core(&t)?);
        }
        if let Some(e) = &self.ema {
            for (k, t) in &e.shadow {
                w.insert(format!("ema.{k}"), to_core(t)?);
            }
        }
        let mut d_step = 0;
        if let (Some(d), Some(ad)) = (&self.disc, &self.adam_d) {
            for (k, t) in d.weights()? {
                w.insert(format!("d.model.{k}"), t);
            }
            let (s, st) = ad.state();
            for (k, t) in s {
                w.insert(format!("d.{k}"), to_core(&t)?);
            }
            d_step = st;
        }
        if let (Some(lq), Some(gt)) = (&self.pool.lq, &self.pool.gt) {
            w.insert("pool.lq".into(), to_core(lq)?);
            w.insert("pool.gt".into(), to_core(gt)?);
        }
        let meta = HashMap::from([
            ("stage".to_owned(), self.stage.name().to_owned()),
            ("iter".to_owned(), self.iter.to_string()),
            ("adam_step".to_owned(), step.to_string()),
            ("d_adam_step".to_owned(), d_step.to_string()),
            ("pool_ptr".to_owned(), self.pool.ptr.to_string()),
            (
                "best_psnr".to_owned(),
                self.best.map(|b| b.to_string()).unwrap_or_default(),
            ),
            ("preset".to_owned(), self.model.net.cfg.preset.clone()),
        ]);
        write_atomic(path, &weights_to_bytes(&w, Some(meta))?)?;
        Ok(())
    }

    /// Restores [`StageRunner::save_state`].
    pub fn load_state(&mut self, path: &Path) -> Result<()> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes)
            .with_context(|| format!("{}: not a safetensors file", path.display()))?;
        let meta = meta.metadata().clone().unwrap_or_default();
        let get = |k: &str| {
            meta.get(k)
                .with_context(|| format!("{}: no `{k}` in metadata", path.display()))
        };
        if get("stage")? != self.stage.name() {
            bail!(
                "{} is the state of stage {}, not {}",
                path.display(),
                get("stage")?,
                self.stage.name()
            );
        }
        let t = read_safetensors(path)?;
        let w: Weights = t
            .iter()
            .filter_map(|(k, v)| k.strip_prefix("model.").map(|n| (n.to_owned(), v)))
            .map(|(n, v)| Ok((n, to_core(v)?)))
            .collect::<Result<_>>()?;
        let cfg = self.model.net.cfg.clone();
        load_into(&mut self.model.vs, &cfg, &w, false)?;
        self.adam_g.load_state(&t, get("adam_step")?.parse()?)?;
        if let Some(e) = self.ema.as_mut() {
            tch::no_grad(|| -> Result<()> {
                for (k, s) in e.shadow.iter_mut() {
                    let src = t
                        .get(&format!("ema.{k}"))
                        .with_context(|| format!("resume state lacks `ema.{k}`"))?;
                    s.copy_(&src.to_device(self.device));
                }
                Ok(())
            })?;
        }
        if let (Some(d), Some(ad)) = (self.disc.as_mut(), self.adam_d.as_mut()) {
            let dm: HashMap<String, Tensor> = t
                .iter()
                .filter_map(|(k, v)| {
                    k.strip_prefix("d.model.")
                        .map(|n| (n.to_owned(), v.shallow_clone()))
                })
                .collect();
            d.load(&dm, &path.display().to_string())?;
            let da: HashMap<String, Tensor> = t
                .iter()
                .filter_map(|(k, v)| {
                    k.strip_prefix("d.")
                        .map(|n| (n.to_owned(), v.shallow_clone()))
                })
                .collect();
            ad.load_state(&da, get("d_adam_step")?.parse()?)?;
        }
        self.pool.ptr = get("pool_ptr")?.parse()?;
        if let (Some(lq), Some(gt)) = (t.get("pool.lq"), t.get("pool.gt")) {
            self.pool.lq = Some(lq.to_device(self.device));
            self.pool.gt = Some(gt.to_device(self.device));
        }
        self.iter = get("iter")?.parse()?;
        self.best = get("best_psnr")?.parse().ok();
        Ok(())
    }

    /// Validates the EMA weights (or the live ones without EMA) on `pairs`.
    pub fn validate(
        &self,
        pairs: &[Pair],
        lpips: Option<&Lpips>,
    ) -> Result<super::eval::PairReport> {
        let cfg = self.model.net.cfg.clone();
        let mut m = Model::new(&cfg, self.device);
        load_into(&mut m.vs, &cfg, &self.ema_weights()?, false)?;
        evaluate_pairs(&m.net, pairs, self.device, MetricVariant::BasicSr, lpips)
    }
}

fn save_weights(cfg: &KdsrConfig, weights: Weights, path: &Path) -> Result<()> {
    Checkpoint {
        config: cfg.clone(),
        weights,
    }
    .save(path)
    .with_context(|| format!("saving {}", path.display()))
}

/// Keeps the newest `keep` periodic checkpoints (`iter_*.safetensors` and their `.json`).
fn prune(dir: &Path, keep: usize) -> Result<()> {
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

/// The validation pairs the config asks for (none when `val_every` is 0 or no HR folder).
fn validation_pairs(cfg: &GanTrainConfig, scale: u32, device: Device) -> Result<Vec<Pair>> {
    let r = &cfg.run;
    match (&r.val_hr_dir, &r.val_lr_dir, r.val_every) {
        (Some(hr), Some(lr), n) if n > 0 => load_pairs(lr, hr, scale, r.val_images),
        (Some(hr), None, n) if n > 0 => {
            synth_pairs(hr, &cfg.degradation, scale, r.val_images, r.seed, device)
        }
        _ => Ok(Vec::new()),
    }
}

/// Runs one stage as configured (resuming when asked and a state exists).
pub fn run_gan_stage(
    cfg: &GanTrainConfig,
    stage: GanStage,
    opts: &GanTrainOptions,
) -> Result<GanStageResult> {
    let dir = opts.out_dir.join(stage.name());
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    write_atomic(&dir.join("train.toml"), cfg.to_toml()?.as_bytes())?;
    let mut runner = StageRunner::new(cfg, stage, opts)?;
    let device = runner.device;
    let model_cfg = runner.model.net.cfg.clone();
    let state_path = dir.join("last.state.safetensors");
    if opts.resume && state_path.exists() {
        runner.load_state(&state_path)?;
    }
    let start = runner.iter;
    let lpips = match &opts.lpips {
        Some(p) => Some(Lpips::load(p, device)?),
        None => None,
    };
    let val = validation_pairs(cfg, model_cfg.scale, device)?;
    let mut logger = std::fs::OpenOptions::new()
        .create(true)
        .append(start > 0)
        .write(true)
        .truncate(start == 0)
        .open(dir.join("metrics.jsonl"))
        .with_context(|| format!("opening {}", dir.join("metrics.jsonl").display()))?;
    let (dataset, report) =
        Dataset::open(&cfg.data.train_dirs, cfg.data.hr_patch, cfg.data.cache_mib)?;
    if !opts.quiet && (!report.skipped_unreadable.is_empty() || report.skipped_small > 0) {
        eprintln!("data: {report}");
    }
    let total = stage.settings(cfg).iterations;
    let end = opts.stop_after.map_or(total, |n| (start + n).min(total));
    let seed = cfg.run.seed;
    let mut loader = Loader::start(
        Arc::new(dataset),
        cfg.data.batch_size,
        cfg.data.hr_patch,
        mix(seed, 4, 0),
        start,
        cfg.data.workers,
        cfg.data.prefetch,
    );
    let bar = if !opts.quiet && std::io::stderr().is_terminal() {
        let b = indicatif::ProgressBar::new(total);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{prefix} {bar:30} {pos}/{len} {per_sec} eta {eta} {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b.set_prefix(stage.name());
        b.set_position(start);
        Some(b)
    } else {
        None
    };
    let log_every = opts.log_every.unwrap_or(10).max(1);
    let t0 = Instant::now();
    let mut train_secs = 0.0;
    let mut last_loss = f64::NAN;
    for it in start..end {
        let batch = loader.next()?;
        if batch.iter != it {
            bail!(
                "data loader delivered iteration {} where {it} was due",
                batch.iter
            );
        }
        let ts = Instant::now();
        let losses = runner.step(&batch.hr, it)?;
        last_loss = losses.total.double_value(&[]);
        if !last_loss.is_finite() {
            bail!("{} loss became {last_loss} at iteration {it}", stage.name());
        }
        train_secs += ts.elapsed().as_secs_f64();
        let done = it + 1;
        if let Some(b) = &bar {
            b.set_position(done);
            b.set_message(format!("loss {last_loss:.4}"));
        }
        if done % log_every == 0 || done == end {
            let mut rec = losses.to_json();
            rec["stage"] = json!(stage.name());
            rec["iter"] = json!(done);
            rec["it_per_s"] = json!((done - start) as f64 / train_secs.max(1e-9));
            rec["elapsed_s"] = json!(t0.elapsed().as_secs_f64());
            writeln!(logger, "{rec}")?;
        }
        if !val.is_empty() && (done % cfg.run.val_every == 0 || done == total) {
            let r = runner.validate(&val, lpips.as_ref())?;
            writeln!(
                logger,
                "{}",
                json!({"stage": stage.name(), "iter": done, "val_psnr": r.psnr,
                       "val_ssim": r.ssim, "val_lpips": r.lpips, "metric": r.metric})
            )?;
            if runner.best.is_none_or(|b| r.psnr > b) {
                runner.best = Some(r.psnr);
                save_weights(
                    &model_cfg,
                    runner.ema_weights()?,
                    &dir.join("best.safetensors"),
                )?;
            }
            let msg = format!(
                "{} iter {done}: val PSNR {:.2} dB, SSIM {:.4}{}",
                stage.name(),
                r.psnr,
                r.ssim,
                r.lpips.map_or(String::new(), |l| format!(", LPIPS {l:.4}"))
            );
            if let Some(b) = &bar {
                b.println(msg);
            } else if !opts.quiet {
                eprintln!("{msg}");
            }
        }
        if done % cfg.run.save_every == 0 {
            let p = dir.join(format!("iter_{done:07}.safetensors"));
            save_weights(&model_cfg, runner.weights()?, &p)?;
            prune(&dir, cfg.run.keep_last)?;
        }
        if done % cfg.run.save_every == 0 || done == end {
            runner.save_state(&state_path)?;
        }
    }
    drop(loader);
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let done = end.max(start);
    let weights_path = if done >= total {
        save_weights(
            &model_cfg,
            runner.weights()?,
            &dir.join("final.safetensors"),
        )?;
        let ema_path = dir.join("final_ema.safetensors");
        save_weights(&model_cfg, runner.ema_weights()?, &ema_path)?;
        if let Some(d) = &runner.disc {
            let meta = HashMap::from([("format".to_owned(), "UNetDiscriminatorSN".to_owned())]);
            write_atomic(
                &dir.join("final_net_d.safetensors"),
                &weights_to_bytes(&d.weights()?, Some(meta))?,
            )?;
        }
        ema_path
    } else {
        state_path.clone()
    };
    let ran = done - start;
    Ok(GanStageResult {
        stage,
        iterations: done,
        ran,
        last_loss,
        best_psnr: runner.best,
        it_per_s: if train_secs > 0.0 {
            ran as f64 / train_secs
        } else {
            0.0
        },
        weights: weights_path,
        device: device_name(device),
    })
}
