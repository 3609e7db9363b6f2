//! The classic two stages: stage 1 trains the teacher with L1; stage 2 trains the student with
//! L1 + KD against the frozen teacher, its `G` initialised from the teacher's `G` (optionally
//! with a KD-only phase first). [`ClassicStep`] is one stage's [`Step`]; [`run_stage`] runs it
//! with the [stage driver](crate::driver), which writes the stage folder `OUT/teacher` or
//! `OUT/student`.
//!
//! Every random draw of iteration `i` (crops, flips, kernels, noise) comes from generators
//! seeded with `(seed, i)`, so a resumed run continues exactly as an uninterrupted one.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use kdsr_core::metrics::MetricVariant;
use kdsr_core::spec::checkpoint::Weights;
use serde::Serialize;
use serde_json::json;
use tch::{Device, Tensor};

use super::config::TrainConfig;
use super::degrade::{Degrader, Draw, regress_channels};
use crate::checkpoint::{Progress, ResumeState, StateFile, save_weights, weights_of};
use crate::config::StageSection;
use crate::device::parse_device;
use crate::driver::{
    StageResult, Step, StepLosses, TrainOptions, Trainee, Validation, init_process, iteration_rng,
    mix,
};
use crate::eval::{EvalCase, EvalImage, evaluate, gaussian8, load_folder};
use crate::loss::{consistency_loss, kd_loss, l1, regress_loss};
use crate::model::{Model, load_into};
use crate::optim::step_lr;

/// Which stage to train.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Stage 1: teacher, L1.
    Teacher,
    /// Stage 2: student, L1 + KD.
    Student,
}

impl Stage {
    /// Folder name under the run directory.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Teacher => "teacher",
            Stage::Student => "student",
        }
    }

    /// Its optimisation settings.
    pub fn settings(self, cfg: &TrainConfig) -> &StageSection {
        match self {
            Stage::Teacher => &cfg.teacher,
            Stage::Student => &cfg.student.stage,
        }
    }
}

/// Runs one stage as configured (resuming when asked and a state exists).
pub fn run_stage(cfg: &TrainConfig, stage: Stage, opts: &TrainOptions) -> Result<StageResult> {
    init_process(cfg.run.threads, cfg.run.tune_malloc);
    let iterations = stage.settings(cfg).iterations;
    crate::driver::run_stage(cfg, stage.name(), iterations, opts, || {
        ClassicStep::new(cfg, stage, opts)
    })
}

/// One classic stage: the network with its optimiser and EMA, the frozen teacher (student
/// stage), the degradation and the Gaussian8 validation set.
#[derive(Debug)]
pub struct ClassicStep {
    cfg: TrainConfig,
    stage: Stage,
    device: Device,
    /// The network being trained, its Adam and EMA.
    pub trainee: Trainee,
    /// The frozen teacher (student stage).
    pub teacher: Option<Model>,
    degrader: Degrader,
    val: Vec<EvalImage>,
    val_cases: Vec<EvalCase>,
}

impl ClassicStep {
    /// Builds the stage's networks (loading the teacher for the student stage and the stage's
    /// `pretrain` weights when set), optimiser, degradation and validation images.
    pub fn new(cfg: &TrainConfig, stage: Stage, opts: &TrainOptions) -> Result<Self> {
        let device = parse_device(&cfg.run.device)?;
        let (model_cfg, st) = match stage {
            Stage::Teacher => (cfg.teacher_model()?, &cfg.teacher),
            Stage::Student => (cfg.student_model()?, &cfg.student.stage),
        };
        tch::manual_seed(mix(cfg.run.seed, 1, 0) as i64);
        let mut model = Model::new(&model_cfg, device);
        let teacher = if stage == Stage::Student {
            let path = opts
                .teacher_weights
                .clone()
                .unwrap_or_else(|| opts.out_dir.join("teacher").join("final.safetensors"));
            Some(attach_teacher(cfg, &mut model, &path, device)?)
        } else {
            None
        };
        if let Some(w) = &st.pretrain {
            model.load_pretrain(w, stage.name())?;
        }
        // Loaded weights are converted; a fresh IDE starts from the default init in the
        // preconditioned space. A resumed state holds the variables as trained.
        model
            .net
            .e
            .set_precondition(cfg.idr.precondition, st.pretrain.is_some());
        let scale = model_cfg.scale;
        let val: Vec<EvalImage> = match (&cfg.run.val_dir, cfg.run.val_every) {
            (Some(d), n) if n > 0 => load_folder(d, scale, cfg.run.val_images)?,
            _ => Vec::new(),
        };
        let val_cases = if val.is_empty() {
            Vec::new()
        } else {
            gaussian8(scale, &cfg.run.val_sigmas)?
        };
        let degrader =
            Degrader::new(&cfg.degradation, scale, device).paired(cfg.idr.consistency_weight > 0.0);
        Ok(Self {
            cfg: cfg.clone(),
            stage,
            device,
            trainee: Trainee::new(model, st),
            teacher,
            degrader,
            val,
            val_cases,
        })
    }

    /// The loss to minimise with its logged terms and learning rate, and the trained network's
    /// `D`, for the degraded batch `lr_img` of `hr` at iteration `it` (before the `[idr]` terms).
    fn losses(&self, lr_img: &Tensor, hr: &Tensor, it: u64) -> Result<(StepLosses, Tensor)> {
        let st = self.stage.settings(&self.cfg);
        let Some(t) = &self.teacher else {
            let out = self.trainee.model.net.forward(lr_img, Some(hr))?;
            let l = l1(&out.sr, hr);
            let lr = step_lr(st.lr, st.gamma, st.decay_every, it);
            return Ok((losses(l.shallow_clone(), lr, vec![("l1", l)]), out.d));
        };
        let tout = tch::no_grad(|| t.net.forward(lr_img, Some(hr)))?;
        let s = &self.cfg.student;
        if it < s.encoder_iterations {
            // The KD-only phase: the IDE alone, with its own schedule.
            let net = &self.trainee.model.net;
            let (d, dp) = net.e.forward(&net.ide_input(lr_img, None)?);
            let kd = kd_loss(s.kd, &dp, &tout.d_prime, s.tau);
            let lr = s.encoder_lr * 0.1f64.powi((it / s.encoder_decay_every.max(1)) as i32);
            let total = &kd * s.kd_weight;
            Ok((
                losses(total, lr, vec![("l1", kd.zeros_like()), ("kd", kd)]),
                d,
            ))
        } else {
            let out = self.trainee.model.net.forward(lr_img, None)?;
            let l = l1(&out.sr, hr);
            let kd = kd_loss(s.kd, &out.d_prime, &tout.d_prime, s.tau);
            let lr = step_lr(st.lr, st.gamma, st.decay_every, it - s.encoder_iterations);
            let total = &l + &kd * s.kd_weight;
            Ok((losses(total, lr, vec![("l1", l), ("kd", kd)]), out.d))
        }
    }
}

impl Step for ClassicStep {
    fn stage(&self) -> &'static str {
        self.stage.name()
    }

    fn model(&self) -> &Model {
        &self.trainee.model
    }

    fn step(&mut self, hr: &Tensor, it: u64) -> Result<StepLosses> {
        let hr = hr.to_device(self.device);
        let mut rng = iteration_rng(self.cfg.run.seed, it);
        let (lr_img, draw) = self.degrader.degrade(&hr, &mut rng)?;
        let (mut losses, d) = self.losses(&lr_img, &hr, it)?;
        let (total, aux) = add_idr_losses(&self.cfg, losses.total, &d, &draw)?;
        losses.total = total;
        losses.terms.extend(aux);
        self.trainee.adam.zero_grad();
        losses.total.backward();
        self.trainee.update(losses.lr);
        Ok(losses)
    }

    fn validate(&self) -> Result<Option<Validation>> {
        if self.val.is_empty() {
            return Ok(None);
        }
        let r = evaluate(
            &self.trainee.model.net,
            &self.val,
            &self.val_cases,
            self.device,
            MetricVariant::Kdsr,
            self.cfg.run.seed,
        )?;
        Ok(Some(Validation {
            psnr: r.mean.0,
            record: json!({"val_psnr": r.mean.0, "val_ssim": r.mean.1,
                           "val_bicubic_psnr": r.mean.2, "metric": r.metric}),
            summary: format!("val PSNR {:.2} dB (bicubic {:.2})", r.mean.0, r.mean.2),
        }))
    }

    fn validated_weights(&self) -> Result<Weights> {
        self.trainee.model.official_weights()
    }

    fn state(&self, at: Progress) -> Result<StateFile> {
        self.trainee.state(self.stage(), at)
    }

    fn restore(&mut self, state: &ResumeState) -> Result<()> {
        self.trainee.restore(state)
    }

    /// `final.*` and, with an EMA, `final_ema.*`; the next stage loads `final.*`.
    fn save_final(&self, dir: &Path) -> Result<PathBuf> {
        let model = &self.trainee.model;
        let p = dir.join("final.safetensors");
        save_weights(&model.net.cfg, model.official_weights()?, &p)?;
        if self.trainee.ema.is_some() {
            let w = self.trainee.ema_weights()?;
            save_weights(&model.net.cfg, w, &dir.join("final_ema.safetensors"))?;
        }
        Ok(p)
    }
}

fn losses(total: Tensor, lr: f64, terms: Vec<(&'static str, Tensor)>) -> StepLosses {
    StepLosses { total, lr, terms }
}

/// Adds the `[idr]` losses that are on to `loss`, for the trained network's `D` `[B,C]` and the
/// batch's degradation `draw`; returns the total and the added terms (unweighted) by log name.
fn add_idr_losses(
    cfg: &TrainConfig,
    loss: Tensor,
    d: &Tensor,
    draw: &Draw,
) -> Result<(Tensor, Vec<(&'static str, Tensor)>)> {
    // (name, unweighted loss, weight); summed out of place at the end (an in-place add would also
    // change the L1 tensor the caller logs, which a teacher's loss is).
    let mut terms: Vec<(&'static str, Tensor, f64)> = Vec::new();
    let idr = &cfg.idr;
    if idr.regress_weight > 0.0 {
        let b = d.size()[0];
        let k = regress_channels(&cfg.degradation) as i64;
        if k > d.size()[1] {
            bail!(
                "idr.regress_weight: D has {} channels, {k} needed",
                d.size()[1]
            );
        }
        let t = Tensor::from_slice(&draw.targets(b as usize, &cfg.degradation))
            .reshape([b, k])
            .to_device(d.device());
        terms.push(("idr_regress", regress_loss(d, &t), idr.regress_weight));
    }
    if idr.consistency_weight > 0.0 {
        terms.push((
            "idr_consistency",
            consistency_loss(d),
            idr.consistency_weight,
        ));
    }
    let total = terms.iter().fold(loss, |acc, (_, t, w)| acc + t * *w);
    Ok((total, terms.into_iter().map(|(n, t, _)| (n, t)).collect()))
}

/// Loads the frozen teacher for the student stage and, when the config asks for it (the official
/// default), copies exactly the teacher's `G.*` weights into the student (a plain-conv ablation
/// student: all of them but `da_conv1`); the student's IDE keeps its own initialisation (the
/// teacher's `E.*` keys do not match `E_st.*`).
pub fn attach_teacher(
    cfg: &TrainConfig,
    student: &mut Model,
    teacher: &Path,
    device: Device,
) -> Result<Model> {
    let tcfg = cfg.teacher_model()?;
    let mut t = Model::load(&tcfg, teacher, device)
        .with_context(|| format!("loading the teacher {}", teacher.display()))?;
    t.vs.freeze();
    if cfg.student.init_from_teacher {
        let scfg = student.net.cfg.clone();
        // The student's own weights with every `G` tensor the teacher has in their place: all of
        // `G` for an IDR-DDC student; a plain-conv student keeps its fresh `da_conv1`.
        let mut w = weights_of(&student.vs)?;
        for (k, v) in weights_of(&t.vs)? {
            if k.starts_with("G.") && w.contains_key(&k) {
                w.insert(k, v);
            }
        }
        load_into(&mut student.vs, &scfg, &w, true)?;
    }
    Ok(t)
}
