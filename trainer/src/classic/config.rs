//! The classic experiment config (`trainer train --config PRESET|FILE`): named presets, TOML
//! files and `--set section.key=value` overrides (resolved by [`Experiment::resolve`]); the
//! resolved config is saved next to every checkpoint (`train.toml`).

use std::path::PathBuf;

use anyhow::{Result, bail};
use kdsr_core::spec::{BlockConv, KD_TEMPERATURE, KdsrConfig};
use serde::{Deserialize, Serialize};

use crate::config::{DataSection, Experiment, Preset, Schedule, StageSection};
use crate::loss::KdLoss;

/// A whole two-stage experiment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Model sizes: the student preset (or config file); the teacher has the same sizes.
    pub model: ModelSection,
    /// Training data.
    pub data: DataSection,
    /// Degradation of the training pairs.
    pub degradation: DegradationSection,
    /// Stage 1: the teacher, L1 only.
    pub teacher: StageSection,
    /// Stage 2: the student, L1 + KD, G initialised from the teacher's G.
    pub student: StudentSection,
    /// Validation, logging, checkpoints, seed.
    pub run: RunSection,
    /// Additions that are not in the paper and make the IDR encode the degradation (all off in
    /// the paper presets; see [`IdrSection`]).
    #[serde(default)]
    pub idr: IdrSection,
}

/// `[idr]`: training signals for the IDE that the paper does not have. The paper recipe at CPU
/// scale gives a teacher whose `D` carries no blur σ (η² 0.000 over σ 1.2 / 2.4 / 3.6, see
/// `models/edge/README.md`); these make `D` a degradation code. Both apply in the stage being
/// trained (teacher or student) and are off (0) in every paper preset.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdrSection {
    /// Weight of the degradation-regression loss: L1 between the first channels of `D` and the
    /// sample's normalised degradation — `D[0]` the blur ((mean λ − sigma_min) / (sigma_max −
    /// sigma_min), σ for isotropic kernels) and, when `noise_max > 0`, `D[1]` the noise level /
    /// noise_max. No extra parameters: the channels are read as they are, so `D` itself names the
    /// degradation. 0: off (paper).
    pub regress_weight: f64,
    /// Weight of the degradation-consistency loss: every batch is made of pairs that share one
    /// degradation (sample i and i + B/2: same kernel and noise level, different crops and noise
    /// draws), and L1 pulls the two `D`s together, so that `D` varies with the degradation and not
    /// with the image content. Needs `degradation.per_sample` and an even batch. 0: off (paper).
    pub consistency_weight: f64,
    /// Precondition the IDE's first conv during training (an exact reparameterisation; the saved
    /// checkpoints are official): a teacher's conv sees its HR sub-pixels relative to their LR
    /// pixel (`[LR, unshuffle(HR) − LR]`), a student's `(LR − 0.45) / 0.05`. Without it the IDE
    /// does not learn σ in a CPU-length run even when σ is all it is trained on.
    pub precondition: bool,
}

impl IdrSection {
    /// Whether any of the additions is on.
    pub fn any(&self) -> bool {
        self.regress_weight > 0.0 || self.consistency_weight > 0.0 || self.precondition
    }
}

/// `[model]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// Student preset name or config file (`student-edge`, `student-m`, …).
    pub preset: String,
    /// The student's block conv: `idr-ddc` (KDSR) or `plain` (the Table 4 "w/o IDR-DDC"
    /// ablation: G never sees the IDR). The teacher is always IDR-DDC; a plain student takes
    /// from it every `G` tensor it shares (all but `da_conv1`).
    #[serde(default, skip_serializing_if = "BlockConv::is_idr_ddc")]
    pub block_conv: BlockConv,
}

/// Training degradation: the kernel family and noise, drawn as the official code does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DegradationSection {
    /// `iso` (σ ~ U(sigma_min, sigma_max)) or `aniso` (λ1, λ2 ~ U(sigma_min, sigma_max), θ ~ U(0, π)).
    pub kernel: KernelKind,
    /// Lower bound of σ / λ (official 0.2).
    pub sigma_min: f64,
    /// Upper bound of σ / λ (official 4.0).
    pub sigma_max: f64,
    /// Noise level upper bound in 0..255 units: level ~ U(0,1)·noise_max (official aniso: 25; iso: 0).
    pub noise_max: f64,
    /// One kernel per batch (official) or one per sample.
    pub per_sample: bool,
    /// Probability that a sample's noise is shot (Poisson) noise instead of Gaussian: its level
    /// is then the noise σ at mid-grey (0.5), the variance proportional to the intensity, as a
    /// camera sensor's (`kdsr_core::pipeline::noise::add_shot_noise`). 0: Gaussian only (paper).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub poisson_prob: f64,
    /// JPEG quality range `[lo, hi]` (quality ~ U(lo, hi)), applied after the noise and 8-bit
    /// quantisation with DiffJPEG (Real-ESRGAN's differentiable JPEG; evaluation uses a real
    /// encoder). None: no compression (paper).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jpeg: Option<[f64; 2]>,
    /// Probability that a sample is JPEG-compressed when `jpeg` is set (1 when absent).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub jpeg_prob: f64,
    /// Probability that a sample is blurred (1 when absent, the paper). A sample that is not is
    /// bicubic-downsampled from the sharp HR, as the `camera` suite's JPEG-only case; its
    /// regression target is that of λ = σ_min. Not in the paper: a camera frame is often sharp.
    #[serde(default = "one")]
    pub blur_prob: f64,
    /// Probability that a sample gets noise when `noise_max > 0` (1 when absent, the paper);
    /// the others have noise level 0. Not in the paper: a camera frame at base ISO is clean
    /// before its JPEG.
    #[serde(default = "one")]
    pub noise_prob: f64,
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

fn one() -> f64 {
    1.0
}

fn is_one(x: &f64) -> bool {
    *x == 1.0
}

/// Kernel family for training.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KernelKind {
    /// Isotropic Gaussian.
    Iso,
    /// Anisotropic Gaussian.
    Aniso,
}

/// `[student]`: a stage plus the KD settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StudentSection {
    /// Optimisation.
    #[serde(flatten)]
    pub stage: StageSection,
    /// KD distance (official `kl`).
    pub kd: KdLoss,
    /// Softmax temperature τ (official 0.15).
    pub tau: f64,
    /// Weight of the KD loss (official 1.0; 0 trains the student without KD).
    pub kd_weight: f64,
    /// Iterations at the start that train only the KD loss (official aniso: 100 epochs), with
    /// their own lr schedule.
    pub encoder_iterations: u64,
    /// lr of the KD-only phase (official 2e-4).
    pub encoder_lr: f64,
    /// Decay interval of the KD-only phase (official 60 epochs, ×0.1).
    pub encoder_decay_every: u64,
    /// Initialise the student's G from the teacher's G (official: yes).
    pub init_from_teacher: bool,
}

/// `[run]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSection {
    /// Seed for weights, crops, kernels and noise; a run is a function of (config, seed).
    pub seed: u64,
    /// Validate every this many iterations (0: never).
    pub val_every: u64,
    /// HR images for validation (Gaussian8 ×scale, PSNR/SSIM on Y).
    pub val_dir: Option<PathBuf>,
    /// At most this many validation images.
    pub val_images: usize,
    /// Which σ of the Gaussian8 set to validate on (all 8 when empty).
    pub val_sigmas: Vec<f64>,
    /// Save a checkpoint every this many iterations.
    pub save_every: u64,
    /// Keep the last K periodic checkpoints (plus `best` and `last`).
    pub keep_last: usize,
    /// `auto`, `cpu`, `cuda`, `cuda:N`.
    pub device: String,
    /// libtorch intra-op threads on CPU (0: libtorch's default).
    pub threads: usize,
    /// Let glibc keep freed host memory for reuse instead of unmapping it after every step
    /// (see [`crate::alloc`]): about 1.4× faster CPU training, the peak heap kept until exit.
    #[serde(default = "default_true")]
    pub tune_malloc: bool,
}

fn default_true() -> bool {
    true
}

/// Named experiment presets.
pub const PRESETS: &[Preset<TrainConfig>] = &[
    ("paper-iso", TrainConfig::paper_iso),
    ("paper-aniso-noise", TrainConfig::paper_aniso_noise),
    ("cpu-edge", TrainConfig::cpu_edge),
    ("cpu-edge-blind", TrainConfig::cpu_edge_blind),
    ("cpu-edge-camera", TrainConfig::cpu_edge_camera),
    ("smoke", TrainConfig::smoke),
];

/// Iterations per official "epoch": 64·1000 // 3450 × 3450 / 64, rounded up (971).
pub const OFFICIAL_ITERS_PER_EPOCH: u64 = 971;

impl TrainConfig {
    /// The paper's isotropic setting at the official sizes and schedule (KDSR_S-M, 4-GPU batch 64).
    pub fn paper_iso() -> Self {
        let e = OFFICIAL_ITERS_PER_EPOCH;
        let stage = |epochs: u64, decay: u64| StageSection {
            iterations: epochs * e,
            lr: 1e-4,
            decay_every: decay * e,
            gamma: 0.5,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            ema: None,
            pretrain: None,
        };
        Self {
            model: ModelSection {
                preset: "student-m".into(),
                block_conv: BlockConv::IdrDdc,
            },
            data: DataSection {
                train_dirs: vec!["data/DF2K".into()],
                hr_patch: 256,
                batch_size: 64,
                workers: 8,
                prefetch: 4,
                cache_mib: 16384,
            },
            degradation: DegradationSection {
                kernel: KernelKind::Iso,
                sigma_min: 0.2,
                sigma_max: 4.0,
                noise_max: 0.0,
                per_sample: false,
                poisson_prob: 0.0,
                jpeg: None,
                jpeg_prob: 1.0,
                blur_prob: 1.0,
                noise_prob: 1.0,
            },
            teacher: stage(500, 125),
            student: StudentSection {
                stage: stage(600, 150),
                kd: KdLoss::Kl,
                tau: KD_TEMPERATURE,
                kd_weight: 1.0,
                encoder_iterations: 0,
                encoder_lr: 2e-4,
                encoder_decay_every: 60 * e,
                init_from_teacher: true,
            },
            run: RunSection {
                seed: 0,
                val_every: 5 * e,
                val_dir: Some("data/Set5".into()),
                val_images: 5,
                val_sigmas: vec![],
                save_every: 5 * e,
                keep_last: 3,
                device: "auto".into(),
                threads: 0,
                tune_malloc: true,
            },
            idr: IdrSection::default(),
        }
    }

    /// The paper's anisotropic + noise setting: aniso kernels, noise U(0,25), and a 100-epoch
    /// KD-only phase for the student before 400 epochs of L1 + KD.
    pub fn paper_aniso_noise() -> Self {
        let e = OFFICIAL_ITERS_PER_EPOCH;
        let mut c = Self::paper_iso();
        c.degradation.kernel = KernelKind::Aniso;
        c.degradation.noise_max = 25.0;
        c.student.encoder_iterations = 100 * e;
        c.student.stage.iterations = 500 * e;
        c.student.stage.decay_every = 125 * e;
        c
    }

    /// The edge preset trained on this repo's data on a CPU: T91 + BSD200, HR 192 → LR 48,
    /// batch 8.
    pub fn cpu_edge() -> Self {
        let mut c = Self::paper_iso();
        c.model.preset = "student-edge".into();
        c.data = DataSection {
            train_dirs: vec!["data/T91".into(), "data/BSD200".into()],
            hr_patch: 192,
            batch_size: 8,
            workers: 2,
            prefetch: 4,
            cache_mib: 1024,
        };
        for s in [&mut c.teacher, &mut c.student.stage] {
            s.iterations = 20_000;
            s.decay_every = 8_000;
            s.lr = 2e-4;
        }
        c.run.val_every = 1000;
        c.run.save_every = 1000;
        c.run.val_images = 5;
        c.run.val_sigmas = vec![1.8, 2.6, 3.2];
        c.run.device = "auto".into();
        c
    }

    /// `cpu-edge` with a degradation-aware IDR: one degradation per sample pair, the IDE's first
    /// conv preconditioned, the first channel of `D` regressed on the blur σ and the two `D`s of
    /// a pair pulled together (the
    /// `[idr]` additions, not in the paper; `models/edge/README.md` measures each).
    pub fn cpu_edge_blind() -> Self {
        let mut c = Self::cpu_edge();
        c.degradation.per_sample = true;
        c.idr = IdrSection {
            regress_weight: 1.0,
            consistency_weight: 1.0,
            precondition: true,
        };
        c
    }

    /// `cpu-edge-blind` on the degradations of a camera frame (issue 12): anisotropic Gaussian
    /// blur (λ ∈ [0.2, 4]), Gaussian or shot noise up to σ 20/255 (half each), and JPEG quality
    /// 30–95 on 3 samples in 4; `D[0..3]` regressed on blur, noise level and JPEG strength.
    pub fn cpu_edge_camera() -> Self {
        let mut c = Self::cpu_edge_blind();
        c.degradation.kernel = KernelKind::Aniso;
        c.degradation.noise_max = 20.0;
        c.degradation.poisson_prob = 0.5;
        c.degradation.jpeg = Some([30.0, 95.0]);
        c.degradation.jpeg_prob = 0.75;
        c
    }

    /// A few iterations of the tiny network, for tests and smoke runs.
    pub fn smoke() -> Self {
        let mut c = Self::cpu_edge();
        c.model.preset = "student-tiny".into();
        c.data.hr_patch = 64;
        c.data.batch_size = 2;
        c.data.workers = 1;
        c.data.prefetch = 2;
        for s in [&mut c.teacher, &mut c.student.stage] {
            s.iterations = 4;
            s.decay_every = 1000;
        }
        c.run.val_every = 2;
        c.run.save_every = 2;
        c.run.keep_last = 1;
        c.run.val_images = 1;
        c.run.val_sigmas = vec![2.6];
        c.run.device = "cpu".into();
        c
    }

    /// The student network config.
    pub fn student_model(&self) -> Result<KdsrConfig> {
        let mut m = KdsrConfig::resolve(&self.model.preset)?;
        m.block_conv = self.model.block_conv;
        Ok(m.with_role(kdsr_core::spec::Role::Student))
    }

    /// The teacher network config (same sizes).
    pub fn teacher_model(&self) -> Result<KdsrConfig> {
        let mut m = self
            .student_model()?
            .with_role(kdsr_core::spec::Role::Teacher);
        m.block_conv = BlockConv::IdrDdc;
        Ok(m)
    }
}

impl Experiment for TrainConfig {
    const KIND: &'static str = "classic";
    const PRESETS: &'static [Preset<Self>] = PRESETS;

    fn schedule(&self, iterations: u64) -> Schedule<'_> {
        Schedule {
            iterations,
            seed: self.run.seed,
            data: &self.data,
            val_every: self.run.val_every,
            save_every: self.run.save_every,
            keep_last: self.run.keep_last,
        }
    }

    fn paths_mut(&mut self) -> Vec<&mut PathBuf> {
        self.data
            .train_dirs
            .iter_mut()
            .chain(self.run.val_dir.iter_mut())
            .collect()
    }

    /// Checks the values that would otherwise fail deep inside training.
    fn validate(&self) -> Result<()> {
        let m = self.student_model()?;
        let s = m.scale as usize;
        if self.data.hr_patch == 0 || self.data.hr_patch % s != 0 {
            bail!(
                "data.hr_patch = {} must be a positive multiple of the scale {s}",
                self.data.hr_patch
            );
        }
        if self.data.batch_size == 0 || self.data.workers == 0 || self.data.prefetch == 0 {
            bail!("data.batch_size, data.workers and data.prefetch must be > 0");
        }
        if !(self.degradation.sigma_min > 0.0
            && self.degradation.sigma_max >= self.degradation.sigma_min)
        {
            bail!(
                "degradation: need 0 < sigma_min ≤ sigma_max, got {} and {}",
                self.degradation.sigma_min,
                self.degradation.sigma_max
            );
        }
        let d = &self.degradation;
        for (name, p) in [
            ("poisson_prob", d.poisson_prob),
            ("jpeg_prob", d.jpeg_prob),
            ("blur_prob", d.blur_prob),
            ("noise_prob", d.noise_prob),
        ] {
            if !(0.0..=1.0).contains(&p) {
                bail!("degradation.{name} must be in [0, 1], got {p}");
            }
        }
        if let Some([lo, hi]) = d.jpeg
            && !(lo >= 1.0 && lo <= hi && hi <= 100.0)
        {
            bail!("degradation.jpeg: need 1 ≤ lo ≤ hi ≤ 100, got [{lo}, {hi}]");
        }
        if self.degradation.noise_max < 0.0 {
            bail!("degradation.noise_max must be ≥ 0");
        }
        self.teacher.check("teacher")?;
        self.student.stage.check("student")?;
        if self.student.tau.is_nan() || self.student.tau <= 0.0 {
            bail!("student.tau must be > 0");
        }
        if self.run.keep_last == 0 {
            bail!("run.keep_last must be ≥ 1");
        }
        for (name, w) in [
            ("idr.regress_weight", self.idr.regress_weight),
            ("idr.consistency_weight", self.idr.consistency_weight),
        ] {
            if !(w.is_finite() && w >= 0.0) {
                bail!("{name} must be a finite number ≥ 0, got {w}");
            }
        }
        if self.idr.consistency_weight > 0.0
            && (!self.degradation.per_sample || self.data.batch_size % 2 != 0)
        {
            bail!(
                "idr.consistency_weight > 0 needs degradation.per_sample = true and an even \
                 data.batch_size (pairs i, i + B/2 share a degradation); got per_sample = {} and \
                 batch_size = {}",
                self.degradation.per_sample,
                self.data.batch_size
            );
        }
        Ok(())
    }
}
