//! The model spec: one source of truth for the KDSR networks.
//!
//! - [`KdsrConfig`] and its presets (the official M, L and GAN sizes, the vector-test size and
//!   an edge size), readable from and writable to JSON or TOML.
//! - [`layout`]: every weight tensor with its official `state_dict` key and shape.
//! - [`macs`]: multiply-accumulate counts, all ops or as the paper counts them.
//! - [`checkpoint`]: loading and validating official-layout safetensors files.

pub mod checkpoint;
pub mod layout;
pub mod macs;
pub mod onnx;

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, check_scale};

/// Negative slope of every LeakyReLU in KDSR.
pub const LRELU_SLOPE: f32 = 0.1;
/// Kernel size of the IDR-DDC dynamic depthwise convolution.
pub const DDC_KERNEL: usize = 3;
/// The DIV2K RGB mean that `G.sub_mean` subtracts and `G.add_mean` adds back (rgb_range 1).
pub const RGB_MEAN: [f32; 3] = [0.4488, 0.4371, 0.4040];
/// KD temperature τ of the official code (the paper's "λ_kd = 0.15").
pub const KD_TEMPERATURE: f64 = 0.15;

/// Whether a network carries the teacher IDE (`E.*`, sees LR + pixel-unshuffled HR) or the
/// student IDE (`E_st.*`, sees LR only).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// KDSR_T: IDE input is `concat(lr, PixelUnshuffle_s(hr))`.
    Teacher,
    /// KDSR_S: IDE input is `lr`.
    Student,
}

impl Role {
    /// State-dict prefix of the IDE: `E` for teachers, `E_st` for students.
    pub fn ide_prefix(self) -> &'static str {
        match self {
            Role::Teacher => "E",
            Role::Student => "E_st",
        }
    }
}

/// Which official code tree the network follows. The layers are the same; only the teacher's
/// first IDE conv differs (classic: `3 + 3·s²` input channels, GAN: hard-coded 51).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    /// `KDSR-classic/` (isotropic / anisotropic + noise).
    Classic,
    /// `KDSR-GAN/` (real-world, Real-ESRGAN degradations).
    RealWorld,
}

/// One KDSR network (SR network `G` + one IDE), at official key names.
///
/// Serialised as the `NAME.json` config next to every checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KdsrConfig {
    /// Preset name this config came from (or a user label).
    pub preset: String,
    /// Teacher or student.
    pub role: Role,
    /// Classic or real-world code tree.
    #[serde(default = "default_family")]
    pub family: Family,
    /// `C` (`n_feats`): feature channels.
    pub n_feats: usize,
    /// `N` (`n_blocks`): number of IDR-DCRB blocks in `G`.
    pub n_blocks: usize,
    /// `R` (`n_resblocks`): number of residual blocks in the IDE trunk.
    pub n_resblocks: usize,
    /// Upscaling factor: 2, 3 or 4.
    pub scale: u32,
    /// The first conv of every IDR-DCRB block: IDR-DDC (KDSR), or a plain conv for the paper's
    /// Table 4 ablation. Left out of the JSON when IDR-DDC.
    #[serde(default, skip_serializing_if = "BlockConv::is_idr_ddc")]
    pub block_conv: BlockConv,
}

fn default_family() -> Family {
    Family::Classic
}

/// The first conv of an IDR-DCRB block.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BlockConv {
    /// IDR-DDC: a depthwise 3×3 conv whose kernels an MLP makes from the IDR `D` (keys
    /// `da_conv1.kernel.{0,2}`).
    #[default]
    IdrDdc,
    /// An ordinary 3×3 conv C→C with bias that never sees the IDR (key `da_conv1.conv`): the
    /// paper's "w/o IDR-DDC" ablation. Trainer only; the converter refuses it.
    Plain,
}

impl BlockConv {
    /// True for [`BlockConv::IdrDdc`].
    pub fn is_idr_ddc(&self) -> bool {
        *self == BlockConv::IdrDdc
    }
}

/// The names [`KdsrConfig::preset`] accepts, in documentation order.
pub const PRESETS: &[&str] = &[
    "student-m",
    "teacher-m",
    "student-l",
    "teacher-l",
    "student-gan",
    "teacher-gan",
    "student-edge",
    "teacher-edge",
    "student-tiny",
    "teacher-tiny",
    "student-edge-rw",
    "teacher-edge-rw",
    "student-tiny-rw",
    "teacher-tiny-rw",
];

impl KdsrConfig {
    fn sized(preset: &str, role: Role, family: Family, c: usize, n: usize, r: usize) -> Self {
        Self {
            preset: preset.to_owned(),
            role,
            family,
            n_feats: c,
            n_blocks: n,
            n_resblocks: r,
            scale: 4,
            block_conv: BlockConv::IdrDdc,
        }
    }

    /// KDSR_S-M: C 64, N 53, R 9 (5,795,099 parameters).
    pub fn student_m() -> Self {
        Self::sized("student-m", Role::Student, Family::Classic, 64, 53, 9)
    }
    /// KDSR_T-M (5,822,747 parameters).
    pub fn teacher_m() -> Self {
        Self::sized("teacher-m", Role::Teacher, Family::Classic, 64, 53, 9)
    }
    /// KDSR_S-L: C 128, N 28, R 5 (14,191,003 parameters).
    pub fn student_l() -> Self {
        Self::sized("student-l", Role::Student, Family::Classic, 128, 28, 5)
    }
    /// KDSR_T-L (14,246,299 parameters).
    pub fn teacher_l() -> Self {
        Self::sized("teacher-l", Role::Teacher, Family::Classic, 128, 28, 5)
    }
    /// KDSR_S-GAN / KDSRNet_S: C 128, N 42, R 6 (18,846,107 parameters).
    pub fn student_gan() -> Self {
        Self::sized("student-gan", Role::Student, Family::RealWorld, 128, 42, 6)
    }
    /// KDSRNet_T (18,901,403 parameters).
    pub fn teacher_gan() -> Self {
        Self::sized("teacher-gan", Role::Teacher, Family::RealWorld, 128, 42, 6)
    }
    /// The edge student: C 32, N 8, R 3 — 463,739 parameters and 27.05 G MACs at LR 320×180 (W×H)
    /// (all ops; 16.4 G of them in the SR network, the rest in the IDE), small enough to train on
    /// a CPU and to run on a Raspberry Pi. The layers are the official ones; only the sizes shrink
    /// (`cargo run -p kdsr-core --example spec-table` prints these numbers).
    pub fn student_edge() -> Self {
        Self::sized("student-edge", Role::Student, Family::Classic, 32, 8, 3)
    }
    /// The teacher of the edge student.
    pub fn teacher_edge() -> Self {
        Self::sized("teacher-edge", Role::Teacher, Family::Classic, 32, 8, 3)
    }
    /// The size of the official reference vectors (C 16, N 2, R 2), for tests.
    pub fn student_tiny() -> Self {
        Self::sized("student-tiny", Role::Student, Family::Classic, 16, 2, 2)
    }
    /// Teacher of [`KdsrConfig::student_tiny`].
    pub fn teacher_tiny() -> Self {
        Self::sized("teacher-tiny", Role::Teacher, Family::Classic, 16, 2, 2)
    }

    /// A preset by name (see [`PRESETS`]).
    pub fn preset(name: &str) -> Result<Self> {
        let cfg = match name {
            "student-m" => Self::student_m(),
            "teacher-m" => Self::teacher_m(),
            "student-l" => Self::student_l(),
            "teacher-l" => Self::teacher_l(),
            "student-gan" => Self::student_gan(),
            "teacher-gan" => Self::teacher_gan(),
            "student-edge" => Self::student_edge(),
            "teacher-edge" => Self::teacher_edge(),
            "student-tiny" => Self::student_tiny(),
            "teacher-tiny" => Self::teacher_tiny(),
            // The real-world family at the edge and tiny sizes (the trainer's real-world
            // pipeline; their checkpoints and graphs carry these names).
            "student-edge-rw" | "teacher-edge-rw" | "student-tiny-rw" | "teacher-tiny-rw" => {
                let role = if name.starts_with("teacher-") {
                    Role::Teacher
                } else {
                    Role::Student
                };
                let (c, n, r) = if name.contains("-edge-") {
                    (32, 8, 3)
                } else {
                    (16, 2, 2)
                };
                Self::sized(name, role, Family::RealWorld, c, n, r)
            }
            _ => {
                return Err(Error::UnknownPreset {
                    name: name.to_owned(),
                    known: PRESETS.join(", "),
                });
            }
        };
        Ok(cfg)
    }

    /// A preset name, or else a path to a `.json` or `.toml` config file — what a `--config`
    /// flag takes.
    pub fn resolve(preset_or_file: &str) -> Result<Self> {
        let path = Path::new(preset_or_file);
        let looks_like_file = path.extension().is_some() || preset_or_file.contains('/');
        if looks_like_file && path.exists() {
            Self::from_file(path)
        } else if looks_like_file {
            Err(Error::Config {
                source_name: preset_or_file.to_owned(),
                message: "no such config file (and not a preset name)".to_owned(),
            })
        } else {
            Self::preset(preset_or_file)
        }
    }

    /// The same network at another scale (2, 3 or 4).
    pub fn with_scale(mut self, scale: u32) -> Result<Self> {
        self.scale = scale;
        self.validate()?;
        Ok(self)
    }

    /// The same sizes with the other role (a student's teacher, a teacher's student).
    pub fn with_role(mut self, role: Role) -> Self {
        if self.role != role {
            self.preset = match (
                self.preset.strip_prefix("student-"),
                self.preset.strip_prefix("teacher-"),
            ) {
                (Some(rest), _) if role == Role::Teacher => format!("teacher-{rest}"),
                (_, Some(rest)) if role == Role::Student => format!("student-{rest}"),
                _ => self.preset,
            };
            self.role = role;
        }
        self
    }

    /// Checks the sizes: C, N, R > 0; scale 2, 3 or 4; the real-world teacher only at ×4 (its
    /// first conv is hard-coded to 51 channels).
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("n_feats", self.n_feats),
            ("n_blocks", self.n_blocks),
            ("n_resblocks", self.n_resblocks),
        ] {
            if v == 0 {
                return Err(Error::InvalidParameter {
                    name,
                    value: 0.0,
                    expected: "must be > 0",
                });
            }
        }
        check_scale(self.scale)?;
        if self.family == Family::RealWorld && self.role == Role::Teacher && self.scale != 4 {
            return Err(Error::Config {
                source_name: self.preset.clone(),
                message: format!(
                    "the real-world teacher's IDE input is hard-coded to 51 channels (scale 4); scale {} given",
                    self.scale
                ),
            });
        }
        Ok(())
    }

    /// Input channels of the IDE's first conv: 3 for a student; `3 + 3·s²` for a classic
    /// teacher; 51 for the real-world teacher.
    pub fn ide_in_channels(&self) -> usize {
        match (self.role, self.family) {
            (Role::Student, _) => 3,
            (Role::Teacher, Family::RealWorld) => 51,
            (Role::Teacher, Family::Classic) => {
                let s = self.scale as usize;
                3 + 3 * s * s
            }
        }
    }

    /// Length of the IDR `D` (= C).
    pub fn idr_len(&self) -> usize {
        self.n_feats
    }
    /// Length of `D'` (= 4C), the vector the KD loss compares.
    pub fn idr_prime_len(&self) -> usize {
        4 * self.n_feats
    }

    /// Parses a config from JSON or TOML text (`format` is `"json"` or `"toml"`), validating it.
    pub fn from_str_as(text: &str, format: &str, source_name: &str) -> Result<Self> {
        let cfg: Self = match format {
            "json" => serde_json::from_str(text).map_err(|e| e.to_string()),
            "toml" => toml::from_str(text).map_err(|e| e.to_string()),
            other => Err(format!(
                "unknown config format `{other}` (use .json or .toml)"
            )),
        }
        .map_err(|message| Error::Config {
            source_name: source_name.to_owned(),
            message,
        })?;
        cfg.validate().map_err(|e| Error::Config {
            source_name: source_name.to_owned(),
            message: e.to_string(),
        })?;
        Ok(cfg)
    }

    /// Reads a `.json` or `.toml` config file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
        let format = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("json")
            .to_ascii_lowercase();
        Self::from_str_as(&text, &format, &path.display().to_string())
    }

    /// Pretty JSON, the form written next to checkpoints.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}
