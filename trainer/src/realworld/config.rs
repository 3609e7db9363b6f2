//! The real-world experiment config (`trainer train-realworld --config PRESET|FILE`): presets,
//! TOML files and `--set section.key=value` overrides (resolved by [`Experiment::resolve`]); the resolved config
//! is saved next to every checkpoint (`train.toml`).
//!
//! Presets:
//! - `paper-gan`: KDSR_S-GAN at the paper's size (C 128, N 42, R 6) and the official schedules in
//!   iterations (§7 of the architecture notes): KDSRNet_T 1000K iterations at lr 1e-4; KDSRNet_S
//!   1000K at 2e-4 halved at 600K; KDSR_S-GAN 400K at 1e-4 for G and D; Adam(0.9, 0.99); EMA
//!   0.999; batch 36 (9 per GPU × 4), 400 px crops degraded and cropped to GT 256 / LQ 64; a
//!   180-pair training pool; DF2K + OST in `data/DF2K`, `data/OST`.
//! - `edge-gan`: the edge sizes (C 32, N 8, R 3) as a real-world network (`student-edge-rw`),
//!   trainable on a CPU: T91 + BSD200, 160 px crops → GT 128 / LQ 32, batch 4, no pool, a
//!   discriminator with 32 base features; 20K / 20K / 10K iterations.
//! - `smoke-gan`: a few iterations of the tiny network (C 16, N 2, R 2), for tests.

use std::path::PathBuf;

use anyhow::{Result, ensure};
use kdsr_core::spec::{Family, KD_TEMPERATURE, KdsrConfig, Role};
use serde::{Deserialize, Serialize};

use super::degrade::RealDegradation;
use super::vgg::PERCEPTUAL_WEIGHTS;
use crate::config::{DataSection, Experiment, Preset, Schedule, StageSection};
use crate::loss::KdLoss;

/// A whole real-world experiment: KDSRNet_T → KDSRNet_S → KDSR_S-GAN.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RealWorldConfig {
    /// Network sizes.
    pub model: ModelSection,
    /// Training images; `hr_patch` is the crop the degradation runs on (Real-ESRGAN: 400).
    pub data: DataSection,
    /// The second-order degradation.
    pub degradation: RealDegradation,
    /// Paired crop and training pool.
    pub pairs: PairSection,
    /// Where the USM-sharpened GT is used.
    pub usm: UsmSection,
    /// Stage 1: KDSRNet_T, L1.
    pub net_teacher: StageSection,
    /// Stage 2: KDSRNet_S, L1 + KD.
    pub net_student: StudentSection,
    /// Stage 3: KDSR_S-GAN, L1 + perceptual + GAN + KD.
    pub gan: GanSection,
    /// Seed, validation, checkpoints, device.
    pub run: RunSection,
}

/// `[model]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// `student-gan`, `student-edge-rw`, `student-tiny-rw`, any `kdsr-core` preset, or a network
    /// config file; the network is always built as the real-world family at ×4.
    pub preset: String,
}

/// `[pairs]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairSection {
    /// GT side of the paired random crop after the degradation (Real-ESRGAN: 256); LQ is
    /// `gt_size / 4`. Equal to `data.hr_patch`: no crop.
    pub gt_size: usize,
    /// Training-pair pool (Real-ESRGAN `queue_size`: 180; 0 = off): a multiple of the batch.
    pub pool_size: usize,
}

/// `[usm]`: which targets use the USM-sharpened GT (KDSR-GAN "V2": all but the GAN target).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(clippy::struct_excessive_bools)]
pub struct UsmSection {
    /// The degradation starts from the sharpened GT (`gt_usm`).
    pub degrade: bool,
    /// L1 target.
    pub l1: bool,
    /// Perceptual-loss target.
    pub perceptual: bool,
    /// Real images of the discriminator.
    pub gan: bool,
    /// HR input of the teacher's IDE.
    pub teacher: bool,
}

/// `[net_student]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StudentSection {
    /// Optimisation of G (`[net_student.stage]`).
    pub stage: StageSection,
    /// KD distance (official `kl`).
    pub kd: KdLoss,
    /// Softmax temperature (0.15).
    pub tau: f64,
    /// KD weight (1).
    pub kd_weight: f64,
    /// Initialise `G.*` from the teacher (official: yes, `strict=False`).
    pub init_from_teacher: bool,
}

/// `[gan]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GanSection {
    /// Optimisation of G (`[gan.g]`).
    pub g: StageSection,
    /// The discriminator and its optimiser (`[gan.d]`).
    pub d: DiscriminatorSection,
    /// L1 weight (1).
    pub l1_weight: f64,
    /// Perceptual weight (1).
    pub perceptual_weight: f64,
    /// Per-layer weights of conv1_2, conv2_2, conv3_4, conv4_4, conv5_4 (0.1, 0.1, 1, 1, 1).
    pub layer_weights: [f64; 5],
    /// GAN weight of the generator loss (KDSR-GAN: 1; Real-ESRGAN: 0.1).
    pub gan_weight: f64,
    /// KD distance.
    pub kd: KdLoss,
    /// Softmax temperature.
    pub tau: f64,
    /// KD weight (1).
    pub kd_weight: f64,
}

/// `[gan.d]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscriminatorSection {
    /// Base features (`num_feat`, 64).
    pub num_feat: i64,
    /// U-Net skip connections (true).
    pub skip: bool,
    /// Learning rate (1e-4).
    pub lr: f64,
    /// Multiply the lr by `gamma` every `decay_every` iterations.
    pub decay_every: u64,
    /// Decay factor.
    pub gamma: f64,
    /// Adam β1 (0.9).
    pub beta1: f64,
    /// Adam β2 (0.99).
    pub beta2: f64,
    /// Adam ε.
    pub eps: f64,
}

/// `[run]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSection {
    /// Seed of weights, crops, degradations, noise; a run is a function of (config, seed).
    pub seed: u64,
    /// Validate every this many iterations (0: never).
    pub val_every: u64,
    /// HR validation images.
    #[serde(default)]
    pub val_hr_dir: Option<PathBuf>,
    /// LR validation images with the HR file names (when absent, LR images are synthesised once
    /// from the HR images with the training degradation at a fixed seed).
    #[serde(default)]
    pub val_lr_dir: Option<PathBuf>,
    /// At most this many validation images.
    pub val_images: usize,
    /// Save a checkpoint every this many iterations.
    pub save_every: u64,
    /// Keep the last K periodic checkpoints.
    pub keep_last: usize,
    /// `auto`, `cpu`, `cuda`, `cuda:N`.
    pub device: String,
    /// libtorch intra-op threads on CPU (0: libtorch's default).
    pub threads: usize,
}

/// Named experiment presets.
pub const PRESETS: &[Preset<RealWorldConfig>] = &[
    ("paper-gan", RealWorldConfig::paper_gan),
    ("edge-gan", RealWorldConfig::edge_gan),
    ("smoke-gan", RealWorldConfig::smoke_gan),
];

fn stage(iterations: u64, lr: f64, decay_every: u64) -> StageSection {
    StageSection {
        iterations,
        lr,
        decay_every,
        gamma: 0.5,
        beta1: 0.9,
        beta2: 0.99,
        eps: 1e-8,
        ema: Some(0.999),
        pretrain: None,
    }
}

impl RealWorldConfig {
    /// The paper's KDSR_S-GAN setting (see the [module docs](self)).
    pub fn paper_gan() -> Self {
        Self {
            model: ModelSection {
                preset: "student-gan".into(),
            },
            data: DataSection {
                train_dirs: vec!["data/DF2K".into(), "data/OST".into()],
                hr_patch: 400,
                batch_size: 36,
                workers: 8,
                prefetch: 4,
                cache_mib: 16384,
            },
            degradation: RealDegradation::default(),
            pairs: PairSection {
                gt_size: 256,
                pool_size: 180,
            },
            usm: UsmSection {
                degrade: true,
                l1: true,
                perceptual: true,
                gan: false,
                teacher: true,
            },
            net_teacher: stage(1_000_000, 1e-4, 1_000_000),
            net_student: StudentSection {
                stage: stage(1_000_000, 2e-4, 600_000),
                kd: KdLoss::Kl,
                tau: KD_TEMPERATURE,
                kd_weight: 1.0,
                init_from_teacher: true,
            },
            gan: GanSection {
                g: stage(400_000, 1e-4, 400_000),
                d: DiscriminatorSection {
                    num_feat: 64,
                    skip: true,
                    lr: 1e-4,
                    decay_every: 400_000,
                    gamma: 0.5,
                    beta1: 0.9,
                    beta2: 0.99,
                    eps: 1e-8,
                },
                l1_weight: 1.0,
                perceptual_weight: 1.0,
                layer_weights: PERCEPTUAL_WEIGHTS,
                gan_weight: 1.0,
                kd: KdLoss::Kl,
                tau: KD_TEMPERATURE,
                kd_weight: 1.0,
            },
            run: RunSection {
                seed: 0,
                val_every: 5000,
                val_hr_dir: Some("data/Set14".into()),
                val_lr_dir: None,
                val_images: 14,
                save_every: 5000,
                keep_last: 3,
                device: "auto".into(),
                threads: 0,
            },
        }
    }

    /// The edge network on this repo's data, trainable on a CPU (see the [module docs](self)).
    pub fn edge_gan() -> Self {
        let mut c = Self::paper_gan();
        c.model.preset = "student-edge-rw".into();
        c.data = DataSection {
            train_dirs: vec!["data/T91".into(), "data/BSD200".into()],
            hr_patch: 160,
            batch_size: 4,
            workers: 2,
            prefetch: 4,
            cache_mib: 1024,
        };
        c.pairs = PairSection {
            gt_size: 128,
            pool_size: 0,
        };
        c.net_teacher = stage(20_000, 2e-4, 8_000);
        c.net_student.stage = stage(20_000, 2e-4, 8_000);
        c.gan.g = stage(10_000, 1e-4, 10_000);
        c.gan.d.num_feat = 32;
        c.gan.d.decay_every = 10_000;
        c.run.val_hr_dir = Some("data/Set5".into());
        c.run.val_images = 5;
        c.run.val_every = 1000;
        c.run.save_every = 1000;
        c
    }

    /// A few iterations of the tiny network on the CPU.
    pub fn smoke_gan() -> Self {
        let mut c = Self::edge_gan();
        c.model.preset = "student-tiny-rw".into();
        c.data.hr_patch = 96;
        c.data.batch_size = 2;
        c.data.workers = 1;
        c.data.prefetch = 2;
        c.pairs.gt_size = 64;
        for s in [&mut c.net_teacher, &mut c.net_student.stage, &mut c.gan.g] {
            s.iterations = 4;
            s.decay_every = 1000;
        }
        c.gan.d.num_feat = 16;
        c.run.val_every = 2;
        c.run.save_every = 2;
        c.run.keep_last = 1;
        c.run.val_images = 1;
        c.run.device = "cpu".into();
        c
    }

    /// The student network (real-world family, ×4).
    pub fn student_model(&self) -> Result<KdsrConfig> {
        let mut m = KdsrConfig::resolve(&self.model.preset)?.with_role(Role::Student);
        m.family = Family::RealWorld;
        ensure!(
            m.scale == 4,
            "the real-world pipeline is ×4; model {} has scale {}",
            m.preset,
            m.scale
        );
        m.validate()?;
        Ok(m)
    }

    /// The teacher network (same sizes, 51-channel IDE input).
    pub fn teacher_model(&self) -> Result<KdsrConfig> {
        Ok(self.student_model()?.with_role(Role::Teacher))
    }
}

impl Experiment for RealWorldConfig {
    const KIND: &'static str = "real-world";
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
            .chain(self.run.val_hr_dir.iter_mut())
            .chain(self.run.val_lr_dir.iter_mut())
            .collect()
    }

    /// Checks the values that would otherwise fail deep inside training.
    fn validate(&self) -> Result<()> {
        let m = self.student_model()?;
        let s = m.scale as usize;
        let d = &self.data;
        ensure!(
            d.batch_size > 0 && d.workers > 0 && d.prefetch > 0,
            "data.batch_size, data.workers and data.prefetch must be > 0"
        );
        ensure!(
            self.pairs.gt_size > 0
                && self.pairs.gt_size <= d.hr_patch
                && self.pairs.gt_size % s == 0
                && self.pairs.gt_size % 8 == 0,
            "pairs.gt_size = {} must be ≤ data.hr_patch = {} and a multiple of {s} and of 8 \
             (the discriminator halves the GT three times)",
            self.pairs.gt_size,
            d.hr_patch
        );
        ensure!(
            self.pairs.pool_size % d.batch_size == 0,
            "pairs.pool_size = {} must be a multiple of data.batch_size = {}",
            self.pairs.pool_size,
            d.batch_size
        );
        self.degradation.validate(d.hr_patch, m.scale)?;
        self.net_teacher.check("net_teacher")?;
        self.net_student.stage.check("net_student.stage")?;
        self.gan.g.check("gan.g")?;
        let dd = &self.gan.d;
        ensure!(
            dd.num_feat > 0
                && dd.lr > 0.0
                && dd.decay_every > 0
                && (0.0..1.0).contains(&dd.beta1)
                && (0.0..1.0).contains(&dd.beta2),
            "gan.d: num_feat and lr must be > 0, decay_every > 0, betas in [0, 1)"
        );
        ensure!(
            self.net_student.tau > 0.0 && self.gan.tau > 0.0,
            "KD temperatures must be > 0"
        );
        ensure!(self.run.keep_last > 0, "run.keep_last must be ≥ 1");
        Ok(())
    }
}
