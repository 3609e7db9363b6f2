//! Two-stage KDSR training: stage 1 trains the teacher with L1; stage 2 trains the student with
//! L1 + KD against the frozen teacher, its `G` initialised from the teacher's `G`.
//!
//! A stage writes into `OUT/<stage>/`:
//! - `train.toml`: the resolved experiment config;
//! - `metrics.jsonl`: one JSON object per logged iteration and per validation;
//! - `iter_NNNNNNN.safetensors` (+ `.json`): periodic weights under official keys, the last
//!   `keep_last` kept; `best.*` (highest validation PSNR) and `final.*`; `*_ema.*` with EMA;
//! - `last.state.safetensors`: weights, Adam moments, EMA and the iteration in one file, for
//!   exact resume. Every file is written to a temporary name and renamed.
//!
//! Every random draw of iteration `i` (crops, flips, kernels, noise) comes from generators
//! seeded with `(seed, i)`, so a resumed run continues exactly as an uninterrupted one.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use kdsr_core::metrics::MetricVariant;
use kdsr_core::spec::KdsrConfig;
use kdsr_core::spec::checkpoint::{
    Checkpoint, Tensor as CoreTensor, Weights, weights_to_bytes, write_atomic,
};
use rand::SeedableRng;
use serde::Serialize;
use serde_json::json;
use tch::{Device, Kind, Tensor};

use crate::config::TrainConfig;
use crate::data::{Dataset, Loader};
use crate::degrade::{Degrader, Draw, regress_channels};
use crate::device::{device_name, parse_device};
use crate::eval::{EvalImage, evaluate, gaussian8, load_folder};
use crate::loss::{consistency_loss, kd_loss, l1, regress_loss};
use crate::model::{Model, load_into, weights_of};
use crate::optim::{Adam, Ema, step_lr};

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
}

/// Options of one stage run that are not part of the experiment config.
#[derive(Clone, Debug, Default)]
pub struct TrainOptions {
    /// Run directory (the stage writes into `out_dir/<stage>/`).
    pub out_dir: PathBuf,
    /// Continue from `last.state.safetensors` when present.
    pub resume: bool,
    /// Teacher weights for the student stage (default: `out_dir/teacher/final.safetensors`).
    pub teacher_weights: Option<PathBuf>,
    /// No progress bar, no log lines on stderr.
    pub quiet: bool,
    /// Stop after this many iterations in this invocation (writing the resume state), as if
    /// interrupted. For tests and for time-boxed CPU runs.
    pub stop_after: Option<u64>,
    /// Log every this many iterations (default 10).
    pub log_every: Option<u64>,
}

/// What a stage run produced.
#[derive(Clone, Debug, Serialize)]
pub struct StageResult {
    /// The stage.
    pub stage: Stage,
    /// Iterations completed in total (including earlier runs that were resumed).
    pub iterations: u64,
    /// Iterations run by this invocation.
    pub ran: u64,
    /// Loss of the last iteration.
    pub last_loss: f64,
    /// Best validation PSNR, if validation ran.
    pub best_psnr: Option<f64>,
    /// Iterations per second of this invocation (training steps only).
    pub it_per_s: f64,
    /// Final (or latest) weights.
    pub weights: PathBuf,
    /// Device used.
    pub device: String,
}

/// A splitmix64 mix of a seed, a stream id and an iteration.
pub fn mix(seed: u64, stream: u64, iter: u64) -> u64 {
    let mut z = seed
        ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ iter.wrapping_mul(0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

struct Logger {
    file: std::fs::File,
}

impl Logger {
    fn open(path: &Path, append: bool) -> Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(append)
            .write(true)
            .truncate(!append)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        Ok(Self { file })
    }
    fn log(&mut self, v: &serde_json::Value) -> Result<()> {
        writeln!(self.file, "{v}")?;
        Ok(())
    }
}

fn tensor_to_core(t: &Tensor) -> Result<CoreTensor> {
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

/// Saves weights (`name` → tensor) as an official-layout checkpoint.
fn save_weights(cfg: &KdsrConfig, weights: Weights, path: &Path) -> Result<()> {
    Checkpoint {
        config: cfg.clone(),
        weights,
    }
    .save(path)
    .with_context(|| format!("saving {}", path.display()))
}

struct State<'a> {
    model: &'a Model,
    adam: &'a Adam,
    ema: Option<&'a Ema>,
    iter: u64,
    best: Option<f64>,
}

fn save_state(path: &Path, s: &State) -> Result<()> {
    let mut w = Weights::new();
    for (k, t) in weights_of(&s.model.vs)? {
        w.insert(format!("model.{k}"), t);
    }
    let (adam, step) = s.adam.state();
    for (k, t) in adam {
        w.insert(k, tensor_to_core(&t)?);
    }
    if let Some(e) = s.ema {
        for (k, t) in &e.shadow {
            w.insert(format!("ema.{k}"), tensor_to_core(t)?);
        }
    }
    let meta = HashMap::from([
        ("iter".to_owned(), s.iter.to_string()),
        ("adam_step".to_owned(), step.to_string()),
        (
            "best_psnr".to_owned(),
            s.best.map(|b| b.to_string()).unwrap_or_default(),
        ),
        ("preset".to_owned(), s.model.net.cfg.preset.clone()),
    ]);
    write_atomic(path, &weights_to_bytes(&w, Some(meta))?)?;
    Ok(())
}

struct Loaded {
    tensors: HashMap<String, Tensor>,
    iter: u64,
    adam_step: i64,
    best: Option<f64>,
}

fn load_state(path: &Path) -> Result<Loaded> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes)
        .with_context(|| format!("{}: not a safetensors file", path.display()))?;
    let meta = meta.metadata().clone().unwrap_or_default();
    let get = |k: &str| {
        meta.get(k)
            .with_context(|| format!("{}: no `{k}` in metadata", path.display()))
    };
    let st = safetensors::SafeTensors::deserialize(&bytes)?;
    let mut tensors = HashMap::new();
    for (k, v) in st.tensors() {
        let data: Vec<f32> = v
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let shape: Vec<i64> = v.shape().iter().map(|d| *d as i64).collect();
        tensors.insert(k, Tensor::from_slice(&data).reshape(&shape));
    }
    Ok(Loaded {
        tensors,
        iter: get("iter")?.parse()?,
        adam_step: get("adam_step")?.parse()?,
        best: get("best_psnr")?.parse().ok(),
    })
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

/// Runs one stage as configured.
pub fn run_stage(cfg: &TrainConfig, stage: Stage, opts: &TrainOptions) -> Result<StageResult> {
    let device = parse_device(&cfg.run.device)?;
    if cfg.run.threads > 0 {
        tch::set_num_threads(cfg.run.threads as i32);
    }
    if cfg.run.tune_malloc {
        crate::alloc::tune_host_malloc();
    }
    let seed = cfg.run.seed;
    let dir = opts.out_dir.join(stage.name());
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    // Temporary files of a run killed mid-write (`.NAME.kdsr-tmp.PID.…`, writer gone, quiet for
    // a minute): the checkpoints themselves are only ever renamed into place, whole.
    for p in kdsr_core::fsutil::remove_stale_temps(&dir) {
        if !opts.quiet {
            eprintln!("removed {} (left by an interrupted run)", p.display());
        }
    }
    write_atomic(&dir.join("train.toml"), cfg.to_toml()?.as_bytes())?;

    let (model_cfg, st) = match stage {
        Stage::Teacher => (cfg.teacher_model()?, &cfg.teacher),
        Stage::Student => (cfg.student_model()?, &cfg.student.stage),
    };
    tch::manual_seed(mix(seed, 1, 0) as i64);
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
        load_pretrain(&mut model, w, stage.name())?;
    }
    // Loaded weights are converted; a fresh IDE starts from the default init in the
    // preconditioned space. A resumed state holds the variables as trained.
    model
        .net
        .e
        .set_precondition(cfg.idr.precondition, st.pretrain.is_some());

    let params = named_trainables(&model);
    let mut adam = Adam::new(
        params
            .iter()
            .map(|(n, t)| (n.clone(), t.shallow_clone()))
            .collect(),
        st.beta1,
        st.beta2,
        st.eps,
    );
    let mut ema = st.ema.map(|d| Ema::new(&params, d));
    let state_path = dir.join("last.state.safetensors");
    let mut start = 0u64;
    let mut best: Option<f64> = None;
    if opts.resume && state_path.exists() {
        let s = load_state(&state_path)?;
        let w: Weights = s
            .tensors
            .iter()
            .filter_map(|(k, t)| k.strip_prefix("model.").map(|n| (n.to_owned(), t)))
            .map(|(n, t)| Ok((n, tensor_to_core(t)?)))
            .collect::<Result<_>>()?;
        load_into(&mut model.vs, &model_cfg, &w, false)?;
        adam.load_state(&s.tensors, s.adam_step)?;
        if let Some(e) = ema.as_mut() {
            tch::no_grad(|| -> Result<()> {
                for (k, t) in e.shadow.iter_mut() {
                    let src = s
                        .tensors
                        .get(&format!("ema.{k}"))
                        .with_context(|| format!("resume state lacks `ema.{k}`"))?;
                    t.copy_(&src.to_device(device));
                }
                Ok(())
            })?;
        }
        start = s.iter;
        best = s.best;
    }
    let mut logger = Logger::open(&dir.join("metrics.jsonl"), start > 0)?;

    let scale = model_cfg.scale;
    let (dataset, report) =
        Dataset::open(&cfg.data.train_dirs, cfg.data.hr_patch, cfg.data.cache_mib)?;
    if !opts.quiet && (!report.skipped_unreadable.is_empty() || report.skipped_small > 0) {
        eprintln!(
            "data: {} images used, {} unreadable and {} smaller than {} px skipped",
            report.used,
            report.skipped_unreadable.len(),
            report.skipped_small,
            cfg.data.hr_patch
        );
    }
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
    let total = st.iterations;
    let end = opts.stop_after.map_or(total, |n| (start + n).min(total));
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
        let hr = batch.hr.to_device(device);
        tch::manual_seed(mix(seed, 2, it) as i64);
        let mut rng = rand::rngs::StdRng::seed_from_u64(mix(seed, 3, it));
        let (lr_img, draw) = degrader.degrade(&hr, &mut rng)?;
        let (loss, l1v, kdv, lr_now, d) = match (&teacher, stage) {
            (None, _) => {
                let out = model.net.forward(&lr_img, Some(&hr))?;
                let l = l1(&out.sr, &hr);
                (
                    l.shallow_clone(),
                    l,
                    None,
                    step_lr(st.lr, st.gamma, st.decay_every, it),
                    out.d,
                )
            }
            (Some(t), _) => {
                let tout = tch::no_grad(|| t.net.forward(&lr_img, Some(&hr)))?;
                let s = &cfg.student;
                if it < s.encoder_iterations {
                    let (d, dp) = model.net.e.forward(&model.net.ide_input(&lr_img, None)?);
                    let kd = kd_loss(s.kd, &dp, &tout.d_prime, s.tau);
                    let lr_e =
                        s.encoder_lr * 0.1f64.powi((it / s.encoder_decay_every.max(1)) as i32);
                    (&kd * s.kd_weight, kd.zeros_like(), Some(kd), lr_e, d)
                } else {
                    let out = model.net.forward(&lr_img, None)?;
                    let l = l1(&out.sr, &hr);
                    let kd = kd_loss(s.kd, &out.d_prime, &tout.d_prime, s.tau);
                    let it2 = it - s.encoder_iterations;
                    (
                        &l + &kd * s.kd_weight,
                        l,
                        Some(kd),
                        step_lr(st.lr, st.gamma, st.decay_every, it2),
                        out.d,
                    )
                }
            }
        };
        let (loss, aux) = add_idr_losses(cfg, loss, &d, &draw)?;
        adam.zero_grad();
        loss.backward();
        adam.step(lr_now);
        if let Some(e) = ema.as_mut() {
            e.update(&params);
        }
        last_loss = loss.double_value(&[]);
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
            let mut rec = json!({
                "stage": stage.name(), "iter": done, "loss": last_loss,
                "l1": l1v.double_value(&[]), "lr": lr_now,
                "it_per_s": (done - start) as f64 / train_secs.max(1e-9),
                "elapsed_s": t0.elapsed().as_secs_f64(),
            });
            if let Some(k) = &kdv {
                rec["kd"] = json!(k.double_value(&[]));
            }
            for (name, v) in &aux {
                rec[*name] = json!(v.double_value(&[]));
            }
            logger.log(&rec)?;
        }
        if !val.is_empty() && (done % cfg.run.val_every == 0 || done == total) {
            let r = evaluate(
                &model.net,
                &val,
                &val_cases,
                device,
                MetricVariant::Kdsr,
                seed,
            )?;
            logger.log(&json!({"stage": stage.name(), "iter": done, "val_psnr": r.mean.0, "val_ssim": r.mean.1, "val_bicubic_psnr": r.mean.2, "metric": r.metric}))?;
            if best.is_none_or(|b| r.mean.0 > b) {
                best = Some(r.mean.0);
                save_weights(
                    &model_cfg,
                    model.official_weights()?,
                    &dir.join("best.safetensors"),
                )?;
            }
            if let Some(b) = &bar {
                b.println(format!(
                    "iter {done}: val PSNR {:.2} dB (bicubic {:.2})",
                    r.mean.0, r.mean.2
                ));
            } else if !opts.quiet {
                eprintln!(
                    "{} iter {done}: loss {last_loss:.4}, val PSNR {:.2} dB (bicubic {:.2})",
                    stage.name(),
                    r.mean.0,
                    r.mean.2
                );
            }
        }
        if done % cfg.run.save_every == 0 || done == end {
            if done % cfg.run.save_every == 0 {
                let p = dir.join(format!("iter_{done:07}.safetensors"));
                save_weights(&model_cfg, model.official_weights()?, &p)?;
                prune(&dir, cfg.run.keep_last)?;
            }
            save_state(
                &state_path,
                &State {
                    model: &model,
                    adam: &adam,
                    ema: ema.as_ref(),
                    iter: done,
                    best,
                },
            )?;
        }
    }
    drop(loader);
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let done = end.max(start);
    let weights_path = if done >= total {
        let p = dir.join("final.safetensors");
        save_weights(&model_cfg, model.official_weights()?, &p)?;
        if let Some(e) = &ema {
            let w = e
                .shadow
                .iter()
                .map(|(k, t)| Ok((k.clone(), tensor_to_core(t)?)))
                .collect::<Result<Weights>>()?;
            let mut all = weights_of(&model.vs)?;
            all.extend(w);
            model.fold_official(&mut all)?;
            save_weights(&model_cfg, all, &dir.join("final_ema.safetensors"))?;
        }
        p
    } else {
        state_path.clone()
    };
    let ran = done - start;
    Ok(StageResult {
        stage,
        iterations: done,
        ran,
        last_loss,
        best_psnr: best,
        it_per_s: if train_secs > 0.0 {
            ran as f64 / train_secs
        } else {
            0.0
        },
        weights: weights_path,
        device: device_name(device),
    })
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

/// Loads a stage's `pretrain` weights (checked against the model's config) into `model`.
pub fn load_pretrain(model: &mut Model, weights: &Path, stage: &str) -> Result<()> {
    let cfg = model.net.cfg.clone();
    let context = || format!("{stage}.pretrain {}", weights.display());
    let w = kdsr_core::spec::checkpoint::load_weights(&cfg, weights).with_context(context)?;
    load_into(&mut model.vs, &cfg, &w, false).with_context(context)
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
