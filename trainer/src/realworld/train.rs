//! The three real-world stages: KDSRNet_T (L1) → KDSRNet_S (L1 + KD, `G` initialised from the
//! teacher) → KDSR_S-GAN (L1 + perceptual + GAN + KD, initialised from KDSRNet_S), each with an
//! EMA of G (0.999), on batches degraded on the device by [`RealDegrader`]. [`RealWorldStep`] is
//! one stage's [`Step`]; [`run_stage`] runs it with the [stage driver](crate::driver).
//!
//! A stage writes into `OUT/<stage>/` (`net-teacher`, `net-student`, `gan-student`) what the
//! driver writes, with these finals: `final.*` (G) and `final_ema.*` (the EMA of G — what the
//! next stage and users load, as BasicSR's `params_ema`); `best.*` holds the EMA weights of the
//! highest validation PSNR; the GAN stage adds `final_net_d.safetensors` (the discriminator at
//! BasicSR names, spectral-norm `weight_u` / `weight_v` included). Its resume state adds D, D's
//! Adam (with the spectral-norm vectors) and the training-pair pool to G's.
//!
//! # One iteration
//! The batch of iteration `i` comes from the driver's loader (crops of `data.hr_patch`);
//! libtorch's generator is seeded with `mix(seed, 2, i)` and a CPU generator with
//! `mix(seed, 3, i)` draws the [`DegradePlan`] and the pool shuffle, so a resumed run equals an
//! uninterrupted one. After the degradation and the paired crop, the (LQ, GT) pair goes through
//! the pool (when enabled), then `gt_usm = USM(gt)` gives the sharpened targets ([`UsmSection`]).
//!
//! GAN stage, as `RealESRGANModel.optimize_parameters` plus KD: the G step with D frozen
//! (`l1_weight·L1 + perceptual_weight·Perc + gan_weight·BCE(D(sr), 1) + kd_weight·KD`), then the
//! D step on `BCE(D(gan_gt), 1)` and `BCE(D(sr.detach()), 0)`, each backpropagated separately;
//! D stays in training mode, so each of its three forwards runs one power iteration.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use kdsr_core::metrics::MetricVariant;
use kdsr_core::spec::checkpoint::{Weights, load_weights, weights_to_bytes, write_atomic};
use kdsr_core::spec::{KdsrConfig, Role};
use rand::{Rng, RngExt};
use serde::Serialize;
use serde_json::json;
use tch::{Device, Kind, Reduction, Tensor};

use super::config::{RealWorldConfig, UsmSection};
use super::degrade::{DegradePlan, RealDegrader};
use super::discriminator::UNetDiscriminator;
use super::eval::{Pair, evaluate_pairs, load_pairs, synth_pairs};
use super::lpips::Lpips;
use super::vgg::{PerceptualLoss, Vgg19};
use crate::checkpoint::{Progress, ResumeState, StateFile, save_weights, weights_of};
use crate::config::StageSection;
use crate::device::parse_device;
use crate::driver::{
    StageResult, Step, StepLosses, TrainOptions, Trainee, Validation, init_process, iteration_rng,
    mix,
};
use crate::loss::{KdLoss, kd_loss, l1};
use crate::model::{Model, load_into};
use crate::optim::{Adam, step_lr};

/// One of the three real-world stages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Stage {
    /// KDSRNet_T: the teacher, L1.
    #[serde(rename = "net-teacher")]
    Teacher,
    /// KDSRNet_S: the student, L1 + KD.
    #[serde(rename = "net-student")]
    Student,
    /// KDSR_S-GAN: the student fine-tuned with L1 + perceptual + GAN + KD.
    #[serde(rename = "gan-student")]
    GanStudent,
}

impl Stage {
    /// All three, in training order.
    pub const ALL: [Self; 3] = [Self::Teacher, Self::Student, Self::GanStudent];

    /// Folder name under the run directory (the official names of the three networks).
    pub fn name(self) -> &'static str {
        match self {
            Self::Teacher => "net-teacher",
            Self::Student => "net-student",
            Self::GanStudent => "gan-student",
        }
    }

    /// Its optimisation settings (of G).
    pub fn settings(self, cfg: &RealWorldConfig) -> &StageSection {
        match self {
            Self::Teacher => &cfg.net_teacher,
            Self::Student => &cfg.net_student.stage,
            Self::GanStudent => &cfg.gan.g,
        }
    }

    /// KD distance, temperature, KD weight and L1 weight.
    fn loss_weights(self, cfg: &RealWorldConfig) -> (KdLoss, f64, f64, f64) {
        match self {
            Self::Teacher => (KdLoss::Kl, 1.0, 0.0, 1.0),
            Self::Student => {
                let s = &cfg.net_student;
                (s.kd, s.tau, s.kd_weight, 1.0)
            }
            Self::GanStudent => {
                let g = &cfg.gan;
                (g.kd, g.tau, g.kd_weight, g.l1_weight)
            }
        }
    }
}

/// Runs one stage as configured (resuming when asked and a state exists).
pub fn run_stage(cfg: &RealWorldConfig, stage: Stage, opts: &TrainOptions) -> Result<StageResult> {
    let iterations = stage.settings(cfg).iterations;
    crate::driver::run_stage(cfg, stage.name(), iterations, opts, || {
        let mut step = RealWorldStep::new(cfg, stage, opts)?;
        step.load_validation(opts)?;
        Ok(step)
    })
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

/// The discriminator of the GAN stage with its optimiser.
#[derive(Debug)]
struct Critic {
    net: UNetDiscriminator,
    params: Vec<(String, Tensor)>,
    adam: Adam,
}

/// Everything one stage trains with; [`RealWorldStep::step`] is one iteration.
#[derive(Debug)]
pub struct RealWorldStep {
    /// The experiment.
    pub cfg: RealWorldConfig,
    /// The stage.
    pub stage: Stage,
    /// Training device.
    pub device: Device,
    /// The network being trained (G), its Adam and EMA.
    pub g: Trainee,
    /// The frozen teacher (student stages).
    pub teacher: Option<Model>,
    critic: Option<Critic>,
    percep: Option<PerceptualLoss>,
    degrader: RealDegrader,
    pool: PairPool,
    val: Vec<Pair>,
    lpips: Option<Lpips>,
}

/// BCE with logits against all-real (1) or all-fake (0) targets.
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

/// Loads a network that an earlier stage wrote.
fn load_model(cfg: &KdsrConfig, path: &Path, what: &str, device: Device) -> Result<Model> {
    Model::load(cfg, path, device).with_context(|| {
        format!(
            "loading the {what} {} (train the earlier stage first, or pass its weights)",
            path.display()
        )
    })
}

impl RealWorldStep {
    /// Builds the networks, losses and optimisers of `stage` (loading the teacher, the initial
    /// weights and the VGG as the stage needs them; see [`TrainOptions`]).
    pub fn new(cfg: &RealWorldConfig, stage: Stage, opts: &TrainOptions) -> Result<Self> {
        let device = parse_device(&cfg.run.device)?;
        init_process(cfg.run.threads, false);
        let seed = cfg.run.seed;
        let model_cfg = match stage {
            Stage::Teacher => cfg.teacher_model()?,
            _ => cfg.student_model()?,
        };
        tch::manual_seed(mix(seed, 1, 0) as i64);
        let mut model = Model::new(&model_cfg, device);
        let teacher = match stage {
            Stage::Teacher => None,
            _ => Some(load_teacher(cfg, opts, device)?),
        };
        match (stage, &teacher) {
            (Stage::Student, Some(t)) if cfg.net_student.init_from_teacher => {
                load_into(&mut model.vs, &model_cfg, &weights_of(&t.vs)?, true)?;
            }
            (Stage::GanStudent, _) => {
                let path = opts.init_weights.clone().unwrap_or_else(|| {
                    opts.out_dir
                        .join(Stage::Student.name())
                        .join("final_ema.safetensors")
                });
                let w = load_weights(&model_cfg, &path).with_context(|| {
                    format!(
                        "loading the KDSRNet_S weights {} that the GAN stage starts from",
                        path.display()
                    )
                })?;
                load_into(&mut model.vs, &model_cfg, &w, false)?;
            }
            _ => {}
        }
        let st = stage.settings(cfg);
        if let Some(w) = &st.pretrain {
            model.load_pretrain(w, stage.name())?;
        }
        let (critic, percep) = if stage == Stage::GanStudent {
            (
                Some(Critic::new(cfg, device)),
                perceptual_loss(cfg, opts, device)?,
            )
        } else {
            (None, None)
        };
        Ok(Self {
            cfg: cfg.clone(),
            stage,
            device,
            degrader: RealDegrader::new(&cfg.degradation, model_cfg.scale, device)?,
            g: Trainee::new(model, st),
            teacher,
            critic,
            percep,
            pool: PairPool::new(cfg.pairs.pool_size),
            val: Vec::new(),
            lpips: None,
        })
    }

    /// Loads the validation pairs the config asks for and the LPIPS weights, when given.
    pub fn load_validation(&mut self, opts: &TrainOptions) -> Result<()> {
        self.lpips = match &opts.lpips {
            Some(p) => Some(Lpips::load(p, self.device)?),
            None => None,
        };
        self.val = validation_pairs(&self.cfg, self.g.model.net.cfg.scale, self.device)?;
        Ok(())
    }

    /// The discriminator (GAN stage).
    pub fn disc(&self) -> Option<&UNetDiscriminator> {
        self.critic.as_ref().map(|c| &c.net)
    }

    /// The training pair of iteration `it` from an HR batch `[B,3,P,P]` (any device): degraded,
    /// cropped and passed through the pool. Returns (LQ, GT).
    pub fn make_pair(&mut self, hr: &Tensor, it: u64) -> Result<(Tensor, Tensor)> {
        let scale = self.g.model.net.cfg.scale;
        let hr = hr.to_kind(Kind::Float).to_device(self.device);
        let s = hr.size();
        let mut rng = iteration_rng(self.cfg.run.seed, it);
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

    /// The targets of an iteration from its GT: (L1, perceptual, GAN-real, teacher-HR), each
    /// the GT or its USM-sharpened copy as `[usm]` says.
    fn targets(&self, gt: &Tensor) -> Result<[Tensor; 4]> {
        let u: &UsmSection = &self.cfg.usm;
        let gt_usm = if u.l1 || u.perceptual || u.gan || u.teacher {
            tch::no_grad(|| self.degrader.usm().apply(gt))?
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
        Ok([pick(u.l1), pick(u.perceptual), pick(u.gan), pick(u.teacher)])
    }

    /// The generator step with D frozen at learning rate `lr`; returns the SR batch and the
    /// losses (detached).
    fn generator_step(
        &mut self,
        lq: &Tensor,
        targets: &[Tensor; 4],
        lr: f64,
    ) -> Result<(Tensor, StepLosses)> {
        let [l1_gt, percep_gt, _, teacher_hr] = targets;
        let (kd_kind, tau, kd_weight, l1_weight) = self.stage.loss_weights(&self.cfg);
        if let Some(c) = &self.critic {
            set_requires_grad(&c.params, false);
        }
        self.g.adam.zero_grad();
        let net = &self.g.model.net;
        let hr_in = (net.cfg.role == Role::Teacher).then_some(teacher_hr);
        let out = net.forward(lq, hr_in)?;
        let mut terms = vec![("l1", l1(&out.sr, l1_gt) * l1_weight)];
        if let Some(t) = &self.teacher {
            let tout = tch::no_grad(|| t.net.forward(lq, Some(teacher_hr)))?;
            let kd = kd_loss(kd_kind, &out.d_prime, &tout.d_prime, tau) * kd_weight;
            terms.push(("kd", kd));
        }
        if let Some(p) = &self.percep {
            let w = self.cfg.gan.perceptual_weight;
            terms.push(("perceptual", p.forward(&out.sr, percep_gt) * w));
        }
        if let Some(c) = &self.critic {
            let w = self.cfg.gan.gan_weight;
            terms.push(("gan_g", bce(&c.net.forward(&out.sr)?, true) * w));
        }
        let total = terms
            .iter()
            .skip(1)
            .fold(terms[0].1.shallow_clone(), |acc, (_, t)| acc + t);
        total.backward();
        self.g.update(lr);
        if let Some(c) = &self.critic {
            set_requires_grad(&c.params, true);
        }
        let terms = terms.into_iter().map(|(n, t)| (n, t.detach())).collect();
        let total = total.detach();
        Ok((out.sr, StepLosses { total, lr, terms }))
    }
}

impl Critic {
    /// The discriminator of `[gan.d]` (seeded with `mix(seed, 1, 1)`) and its Adam.
    fn new(cfg: &RealWorldConfig, device: Device) -> Self {
        let d = &cfg.gan.d;
        tch::manual_seed(mix(cfg.run.seed, 1, 1) as i64);
        let net = UNetDiscriminator::new(d.num_feat, d.skip, device);
        let params = net.trainables();
        let adam = Adam::over(&params, d.beta1, d.beta2, d.eps);
        Self { net, params, adam }
    }

    /// The discriminator step: `BCE(D(real), 1)` and `BCE(D(sr), 0)`, each backpropagated
    /// separately; returns both (detached).
    fn step(&mut self, real: &Tensor, sr: &Tensor, lr: f64) -> Result<(Tensor, Tensor)> {
        self.adam.zero_grad();
        let r = bce(&self.net.forward(real)?, true);
        r.backward();
        let f = bce(&self.net.forward(&sr.detach())?, false);
        f.backward();
        self.adam.step(lr);
        Ok((r.detach(), f.detach()))
    }
}

/// The frozen teacher of the student stages.
fn load_teacher(cfg: &RealWorldConfig, opts: &TrainOptions, device: Device) -> Result<Model> {
    let path = opts.teacher_weights.clone().unwrap_or_else(|| {
        opts.out_dir
            .join(Stage::Teacher.name())
            .join("final_ema.safetensors")
    });
    let mut t = load_model(&cfg.teacher_model()?, &path, "teacher", device)?;
    t.vs.freeze();
    Ok(t)
}

/// The GAN stage's perceptual loss (none when its weight is 0).
fn perceptual_loss(
    cfg: &RealWorldConfig,
    opts: &TrainOptions,
    device: Device,
) -> Result<Option<PerceptualLoss>> {
    let g = &cfg.gan;
    if g.perceptual_weight == 0.0 {
        return Ok(None);
    }
    let path = opts.vgg.as_ref().context(
        "the GAN stage needs VGG19 weights for its perceptual loss: pass --vgg \
         vgg19.safetensors (torchvision names; the module docs of \
         kdsr_trainer::realworld::vgg show the one-line conversion), or set \
         gan.perceptual_weight=0",
    )?;
    let vgg = Vgg19::load(path, device)
        .with_context(|| format!("loading VGG19 weights {}", path.display()))?;
    Ok(Some(PerceptualLoss::new(vgg, g.layer_weights)))
}

impl Step for RealWorldStep {
    fn stage(&self) -> &'static str {
        self.stage.name()
    }

    fn model(&self) -> &Model {
        &self.g.model
    }

    /// One training iteration on the HR batch of iteration `it`: the G step (with G's EMA
    /// update), then, in the GAN stage, the D step.
    fn step(&mut self, hr: &Tensor, it: u64) -> Result<StepLosses> {
        let (lq, gt) = self.make_pair(hr, it)?;
        let targets = self.targets(&gt)?;
        let (lr_g, lr_d) = self.learning_rates(it);
        let (sr, mut losses) = self.generator_step(&lq, &targets, lr_g)?;
        if let Some(c) = self.critic.as_mut() {
            let (real, fake) = c.step(&targets[2], &sr, lr_d)?;
            losses.terms.extend([("d_real", real), ("d_fake", fake)]);
        }
        Ok(losses)
    }

    /// PSNR / SSIM (and LPIPS with its weights) of the EMA weights (the live ones without EMA).
    fn validate(&self) -> Result<Option<Validation>> {
        if self.val.is_empty() {
            return Ok(None);
        }
        let cfg = self.g.model.net.cfg.clone();
        let mut m = Model::new(&cfg, self.device);
        load_into(&mut m.vs, &cfg, &self.validated_weights()?, false)?;
        let r = evaluate_pairs(
            &m.net,
            &self.val,
            self.device,
            MetricVariant::BasicSr,
            self.lpips.as_ref(),
        )?;
        Ok(Some(Validation {
            psnr: r.psnr,
            record: json!({"val_psnr": r.psnr, "val_ssim": r.ssim, "val_lpips": r.lpips,
                           "metric": r.metric}),
            summary: format!(
                "val PSNR {:.2} dB, SSIM {:.4}{}",
                r.psnr,
                r.ssim,
                r.lpips.map_or(String::new(), |l| format!(", LPIPS {l:.4}"))
            ),
        }))
    }

    /// The EMA weights of G (its live weights without EMA), official keys.
    fn validated_weights(&self) -> Result<Weights> {
        self.g.ema_weights()
    }

    /// G's state plus D (`d.model.*`), D's Adam (`d.adam.*`, meta `d_adam_step`) and the pool
    /// (`pool.lq`, `pool.gt`, meta `pool_ptr`).
    fn state(&self, at: Progress) -> Result<StateFile> {
        let mut s = self.g.state(self.stage(), at)?;
        let mut d_step = 0;
        if let Some(c) = &self.critic {
            s.put_weights("d.model.", c.net.weights()?);
            let (adam, step) = c.adam.state();
            s.put("d.", &adam)?;
            d_step = step;
        }
        if let (Some(lq), Some(gt)) = (&self.pool.lq, &self.pool.gt) {
            s.put(
                "pool.",
                &[
                    ("lq".into(), lq.shallow_clone()),
                    ("gt".into(), gt.shallow_clone()),
                ],
            )?;
        }
        s.meta.insert("d_adam_step".into(), d_step.to_string());
        s.meta.insert("pool_ptr".into(), self.pool.ptr.to_string());
        Ok(s)
    }

    fn restore(&mut self, state: &ResumeState) -> Result<()> {
        self.g.restore(state)?;
        if let Some(c) = self.critic.as_mut() {
            c.net
                .load(&state.with_prefix("d.model."), "the resume state")?;
            c.adam
                .load_state(&state.with_prefix("d."), state.parse("d_adam_step")?)?;
        }
        self.pool.ptr = state.parse("pool_ptr")?;
        if let (Some(lq), Some(gt)) = (state.tensors.get("pool.lq"), state.tensors.get("pool.gt")) {
            self.pool.lq = Some(lq.to_device(self.device));
            self.pool.gt = Some(gt.to_device(self.device));
        }
        Ok(())
    }

    /// `final.*` (G), `final_ema.*` (what the next stage loads) and, for the GAN stage,
    /// `final_net_d.safetensors`.
    fn save_final(&self, dir: &Path) -> Result<PathBuf> {
        let cfg = &self.g.model.net.cfg;
        save_weights(
            cfg,
            self.g.model.official_weights()?,
            &dir.join("final.safetensors"),
        )?;
        let ema_path = dir.join("final_ema.safetensors");
        save_weights(cfg, self.validated_weights()?, &ema_path)?;
        if let Some(d) = self.disc() {
            let meta = HashMap::from([("format".to_owned(), "UNetDiscriminatorSN".to_owned())]);
            write_atomic(
                &dir.join("final_net_d.safetensors"),
                &weights_to_bytes(&d.weights()?, Some(meta))?,
            )?;
        }
        Ok(ema_path)
    }
}

/// The validation pairs the config asks for (none when `val_every` is 0 or no HR folder).
fn validation_pairs(cfg: &RealWorldConfig, scale: u32, device: Device) -> Result<Vec<Pair>> {
    let r = &cfg.run;
    match (&r.val_hr_dir, &r.val_lr_dir, r.val_every) {
        (Some(hr), Some(lr), n) if n > 0 => load_pairs(lr, hr, scale, r.val_images),
        (Some(hr), None, n) if n > 0 => {
            synth_pairs(hr, &cfg.degradation, scale, r.val_images, r.seed, device)
        }
        _ => Ok(Vec::new()),
    }
}
