//! The stage driver both pipelines train with: one loop over iterations that feeds the
//! [`Step`] of a stage (classic teacher / student, real-world teacher / student / GAN student)
//! the HR batch of each iteration and does everything around it — the stage folder, resume,
//! the data loader, progress, `metrics.jsonl`, validation and `best.*`, periodic checkpoints
//! (pruned to the last `keep_last`), the resume state and the final checkpoints.
//!
//! A stage writes into `OUT/<stage>/`:
//! - `train.toml`: the resolved experiment config;
//! - `metrics.jsonl`: one JSON object per logged iteration (`stage`, `iter`, `loss`, `lr`, each
//!   loss term, `it_per_s`, `elapsed_s`) and per validation (`val_psnr`, …);
//! - `iter_NNNNNNN.safetensors` (+ `.json`): periodic weights under official keys, the last
//!   `keep_last` kept; `best.*` (highest validation PSNR) and the step's final checkpoints;
//! - `last.state.safetensors`: everything exact resume needs (see [`crate::checkpoint`]).
//!   Every file is written to a temporary name and renamed.
//!
//! Every random draw of iteration `i` comes from generators seeded with `(seed, i)`
//! ([`iteration_rng`]) and the loader's crops from `(seed, i)` as well, so a resumed run
//! continues exactly as an uninterrupted one.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use kdsr_core::spec::checkpoint::{Weights, write_atomic};
use rand::SeedableRng;
use serde::Serialize;
use serde_json::json;
use tch::Tensor;

use crate::checkpoint::{
    Progress, ResumeState, STATE_FILE, StateFile, copy_checked, named_trainables, prune,
    save_weights, to_core, weights_of,
};
use crate::config::{Experiment, Schedule, StageSection};
use crate::data::{Dataset, Loader};
use crate::device::device_name;
use crate::model::Model;
use crate::optim::{Adam, Ema};

/// Options of one stage run that are not part of the experiment config.
#[derive(Clone, Debug, Default)]
pub struct TrainOptions {
    /// Run directory (the stage writes into `out_dir/<stage>/`).
    pub out_dir: PathBuf,
    /// Continue from `last.state.safetensors` when present.
    pub resume: bool,
    /// Teacher weights for the student stages (default: the teacher stage's output in
    /// `out_dir`: classic `teacher/final.safetensors`, real-world
    /// `net-teacher/final_ema.safetensors`).
    pub teacher_weights: Option<PathBuf>,
    /// Real-world GAN stage: its initial weights (default
    /// `OUT/net-student/final_ema.safetensors`).
    pub init_weights: Option<PathBuf>,
    /// Real-world GAN stage: VGG19 weights (torchvision names) for the perceptual loss.
    pub vgg: Option<PathBuf>,
    /// Real-world stages: LPIPS-Alex weights for validation (optional).
    pub lpips: Option<PathBuf>,
    /// No progress bar, no log lines on stderr.
    pub quiet: bool,
    /// Stop after this many iterations in this invocation (writing the resume state), as if
    /// interrupted. For tests and for time-boxed CPU runs.
    pub stop_after: Option<u64>,
    /// Log every this many iterations (default 10).
    pub log_every: Option<u64>,
}

/// What a stage run produced (printed as one JSON line by the `train` commands).
#[derive(Clone, Debug, Serialize)]
pub struct StageResult {
    /// The stage (its folder name).
    pub stage: String,
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
    /// The weights the next stage (or a user) loads, or the resume state when stopped early.
    pub weights: PathBuf,
    /// Device used.
    pub device: String,
}

/// The losses of one iteration.
#[derive(Debug)]
pub struct StepLosses {
    /// The total loss that was minimised (of the trained network; the GAN stage's generator).
    pub total: Tensor,
    /// The learning rate of this iteration (the trained network's).
    pub lr: f64,
    /// The logged terms by name (`l1`, `kd`, `perceptual`, `gan_g`, `d_real`, `d_fake`,
    /// `idr_regress`, …), read only on logged iterations.
    pub terms: Vec<(&'static str, Tensor)>,
}

impl StepLosses {
    /// The term called `name`.
    pub fn term(&self, name: &str) -> Option<&Tensor> {
        self.terms.iter().find(|(n, _)| *n == name).map(|(_, t)| t)
    }

    /// `loss`, `lr` and the terms as a JSON object.
    pub fn to_json(&self) -> serde_json::Value {
        let mut o = json!({"loss": self.total.double_value(&[]), "lr": self.lr});
        for (k, t) in &self.terms {
            o[*k] = json!(t.double_value(&[]));
        }
        o
    }
}

/// The outcome of one validation.
#[derive(Debug)]
pub struct Validation {
    /// Mean PSNR (the score `best.*` keeps the highest of).
    pub psnr: f64,
    /// The `metrics.jsonl` fields (`val_psnr`, …; the driver adds `stage` and `iter`).
    pub record: serde_json::Value,
    /// One line for the user (`val PSNR … dB, …`).
    pub summary: String,
}

/// One stage's training as the driver sees it. A step owns the networks, losses, optimisers and
/// validation data of its stage; the driver owns the loop, the files and the schedule.
pub trait Step {
    /// The stage's name: its folder under the run directory and its label in logs.
    fn stage(&self) -> &'static str;
    /// The trained network (checkpoints are written from it, under its config).
    fn model(&self) -> &Model;
    /// One training iteration on the HR batch `[B,3,P,P]` of iteration `it` (0-based, any
    /// device).
    fn step(&mut self, hr: &Tensor, it: u64) -> Result<StepLosses>;
    /// Scores the current weights on the stage's validation set; `None` without one.
    fn validate(&self) -> Result<Option<Validation>>;
    /// The weights that `best.*` keeps when a validation improves on the best.
    fn validated_weights(&self) -> Result<Weights>;
    /// The resume state at `at` (see [`crate::checkpoint`]).
    fn state(&self, at: Progress) -> Result<StateFile>;
    /// Restores [`Step::state`].
    fn restore(&mut self, state: &ResumeState) -> Result<()>;
    /// Writes the checkpoints of a finished stage into `dir`; returns the weights the next stage
    /// loads.
    fn save_final(&self, dir: &Path) -> Result<PathBuf>;
}

/// The trained network with what trains it: its trainable variables (sorted by name), Adam and
/// the EMA of the stage's settings. Both pipelines' steps hold one.
#[derive(Debug)]
pub struct Trainee {
    /// The network.
    pub model: Model,
    /// Its trainable variables, sorted by name.
    pub params: Vec<(String, Tensor)>,
    /// The optimiser.
    pub adam: Adam,
    /// The EMA of the weights, when the stage keeps one.
    pub ema: Option<Ema>,
}

impl Trainee {
    /// Adam with `st`'s betas and ε over `model`'s trainable variables, and `st`'s EMA.
    pub fn new(model: Model, st: &StageSection) -> Self {
        let params = named_trainables(&model.vs);
        let adam = Adam::over(&params, st.beta1, st.beta2, st.eps);
        let ema = st.ema.map(|d| Ema::new(&params, d));
        Self {
            model,
            params,
            adam,
            ema,
        }
    }

    /// One optimiser update at learning rate `lr` (gradients already computed), then the EMA.
    pub fn update(&mut self, lr: f64) {
        self.adam.step(lr);
        if let Some(e) = self.ema.as_mut() {
            e.update(&self.params);
        }
    }

    /// The EMA weights (the live ones without an EMA), in the official parameterisation.
    pub fn ema_weights(&self) -> Result<Weights> {
        let mut w = weights_of(&self.model.vs)?;
        if let Some(e) = &self.ema {
            for (k, t) in &e.shadow {
                w.insert(k.clone(), to_core(t)?);
            }
        }
        self.model.fold_official(&mut w)?;
        Ok(w)
    }

    /// The resume state of stage `stage` at `at`: `model.*`, `adam.*` (meta `adam_step`) and
    /// `ema.*`.
    pub fn state(&self, stage: &str, at: Progress) -> Result<StateFile> {
        let mut s = StateFile::new(stage, at, &self.model.net.cfg.preset);
        s.put_weights("model.", weights_of(&self.model.vs)?);
        let (adam, step) = self.adam.state();
        s.put("", &adam)?;
        s.meta.insert("adam_step".into(), step.to_string());
        if let Some(e) = &self.ema {
            s.put("ema.", &e.shadow)?;
        }
        Ok(s)
    }

    /// Restores [`Trainee::state`].
    pub fn restore(&mut self, s: &ResumeState) -> Result<()> {
        let w: Weights = s
            .with_prefix("model.")
            .iter()
            .map(|(n, t)| Ok((n.clone(), to_core(t)?)))
            .collect::<Result<_>>()?;
        let cfg = self.model.net.cfg.clone();
        crate::model::load_into(&mut self.model.vs, &cfg, &w, false)?;
        self.adam.load_state(&s.tensors, s.parse("adam_step")?)?;
        if let Some(e) = self.ema.as_mut() {
            for (k, t) in e.shadow.iter_mut() {
                copy_checked(t, &s.tensors, &format!("ema.{k}"), "resume state")?;
            }
        }
        Ok(())
    }
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

/// Seeds libtorch's generator for iteration `it` (`mix(seed, 2, it)`) and returns the CPU
/// generator of its other draws (`mix(seed, 3, it)`).
pub fn iteration_rng(seed: u64, it: u64) -> rand::rngs::StdRng {
    tch::manual_seed(mix(seed, 2, it) as i64);
    rand::rngs::StdRng::seed_from_u64(mix(seed, 3, it))
}

/// Sets libtorch's CPU threads (0: its default) and, when asked, glibc's allocator for training
/// (see [`crate::alloc`]).
pub fn init_process(threads: usize, tune_malloc: bool) {
    if threads > 0 {
        tch::set_num_threads(threads as i32);
    }
    if tune_malloc {
        crate::alloc::tune_host_malloc();
    }
}

/// Trains stage `stage` of experiment `cfg` for `iterations`: makes the stage folder (see
/// [`stage_dir`]), builds the step with `make` and [`run`]s it.
pub fn run_stage<E: Experiment, S: Step>(
    cfg: &E,
    stage: &str,
    iterations: u64,
    opts: &TrainOptions,
    make: impl FnOnce() -> Result<S>,
) -> Result<StageResult> {
    let dir = stage_dir(opts, stage, &cfg.to_toml()?)?;
    let mut step = make()?;
    run(&mut step, &cfg.schedule(iterations), &dir, opts)
}

/// Creates `OUT/<stage>/`, removes temporary files that interrupted runs left there and writes
/// the resolved config (`train.toml`); returns the folder.
pub fn stage_dir(opts: &TrainOptions, stage: &str, config_toml: &str) -> Result<PathBuf> {
    let dir = opts.out_dir.join(stage);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    // Temporary files of a run killed mid-write (`.NAME.kdsr-tmp.PID.…`, writer gone, quiet for
    // a minute): the checkpoints themselves are only ever renamed into place, whole.
    for p in kdsr_core::fsutil::remove_stale_temps(&dir) {
        if !opts.quiet {
            eprintln!("removed {} (left by an interrupted run)", p.display());
        }
    }
    write_atomic(&dir.join("train.toml"), config_toml.as_bytes())?;
    Ok(dir)
}

/// Runs `step` in `dir` (made by [`stage_dir`]) on `schedule`, resuming when asked and a state
/// exists.
pub fn run<S: Step>(
    step: &mut S,
    schedule: &Schedule,
    dir: &Path,
    opts: &TrainOptions,
) -> Result<StageResult> {
    let state_path = dir.join(STATE_FILE);
    let mut at = Progress::default();
    if opts.resume && state_path.exists() {
        let s = ResumeState::read(&state_path, step.stage())?;
        step.restore(&s)?;
        at = s.progress()?;
    }
    let start = at.iter;
    let mut logger = Logger::open(&dir.join("metrics.jsonl"), start > 0)?;
    let mut loader = start_loader(schedule, start, opts.quiet)?;
    let total = schedule.iterations;
    let end = opts.stop_after.map_or(total, |n| (start + n).min(total));
    let bar = progress_bar(step.stage(), total, start, opts.quiet);
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
        let losses = step.step(&batch.hr, it)?;
        last_loss = losses.total.double_value(&[]);
        if !last_loss.is_finite() {
            bail!("{} loss became {last_loss} at iteration {it}", step.stage());
        }
        train_secs += ts.elapsed().as_secs_f64();
        let done = it + 1;
        if let Some(b) = &bar {
            b.set_position(done);
            b.set_message(format!("loss {last_loss:.4}"));
        }
        if done % log_every == 0 || done == end {
            let mut rec = losses.to_json();
            rec["stage"] = json!(step.stage());
            rec["iter"] = json!(done);
            rec["it_per_s"] = json!((done - start) as f64 / train_secs.max(1e-9));
            rec["elapsed_s"] = json!(t0.elapsed().as_secs_f64());
            logger.log(&rec)?;
        }
        drop(losses);
        if schedule.val_every > 0 && (done % schedule.val_every == 0 || done == total) {
            let note = |msg: String| match &bar {
                Some(b) => b.println(msg),
                None if !opts.quiet => eprintln!("{msg}"),
                None => {}
            };
            validate(step, dir, done, &mut at, &mut logger, note)?;
        }
        if done % schedule.save_every == 0 || done == end {
            if done % schedule.save_every == 0 {
                let p = dir.join(format!("iter_{done:07}.safetensors"));
                let m = step.model();
                save_weights(&m.net.cfg, m.official_weights()?, &p)?;
                prune(dir, schedule.keep_last)?;
            }
            at.iter = done;
            step.state(at)?.write(&state_path)?;
        }
    }
    drop(loader);
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let done = end.max(start);
    let weights = if done >= total {
        step.save_final(dir)?
    } else {
        state_path
    };
    let ran = done - start;
    Ok(StageResult {
        stage: step.stage().to_owned(),
        iterations: done,
        ran,
        last_loss,
        best_psnr: at.best,
        it_per_s: if train_secs > 0.0 {
            ran as f64 / train_secs
        } else {
            0.0
        },
        weights,
        device: device_name(step.model().vs.device()),
    })
}

/// Validates after iteration `done`: logs the scores, keeps `best.*` and tells the user.
fn validate<S: Step>(
    step: &S,
    dir: &Path,
    done: u64,
    at: &mut Progress,
    logger: &mut Logger,
    note: impl Fn(String),
) -> Result<()> {
    let Some(v) = step.validate()? else {
        return Ok(());
    };
    let mut rec = v.record;
    rec["stage"] = json!(step.stage());
    rec["iter"] = json!(done);
    logger.log(&rec)?;
    if at.best.is_none_or(|b| v.psnr > b) {
        at.best = Some(v.psnr);
        save_weights(
            &step.model().net.cfg,
            step.validated_weights()?,
            &dir.join("best.safetensors"),
        )?;
    }
    note(format!("{} iter {done}: {}", step.stage(), v.summary));
    Ok(())
}

/// Opens the training images and starts the loader at iteration `start`.
fn start_loader(schedule: &Schedule, start: u64, quiet: bool) -> Result<Loader> {
    let d = schedule.data;
    let (dataset, report) = Dataset::open(&d.train_dirs, d.hr_patch, d.cache_mib)?;
    if !quiet && (!report.skipped_unreadable.is_empty() || report.skipped_small > 0) {
        eprintln!("data: {report}");
    }
    Ok(Loader::start(
        Arc::new(dataset),
        d.batch_size,
        d.hr_patch,
        mix(schedule.seed, 4, 0),
        start,
        d.workers,
        d.prefetch,
    ))
}

/// A progress bar on a terminal (none when quiet or not a terminal).
fn progress_bar(
    stage: &'static str,
    total: u64,
    start: u64,
    quiet: bool,
) -> Option<indicatif::ProgressBar> {
    if quiet || !std::io::stderr().is_terminal() {
        return None;
    }
    let b = indicatif::ProgressBar::new(total);
    b.set_style(
        indicatif::ProgressStyle::with_template(
            "{prefix} {bar:30} {pos}/{len} {per_sec} eta {eta} {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    b.set_prefix(stage);
    b.set_position(start);
    Some(b)
}

/// `metrics.jsonl`: one JSON object a line.
struct Logger {
    file: std::fs::File,
}

impl Logger {
    /// Opens `path`, appending when resuming and truncating otherwise.
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
