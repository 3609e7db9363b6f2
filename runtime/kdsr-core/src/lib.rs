//! `kdsr-core`: the plain-Rust heart of kdsr, shared by the trainer (tch), the converter and the
//! runtime (tract). It holds no libtorch and no tract.
//!
//! - [`spec`]: model configs and presets, the official `state_dict` layout, parameter and MAC
//!   counts, checkpoint validation.
//! - [`pipeline`]: blur kernels, bicubic resizing, the classic LR synthesis, noise, quantisation.
//! - [`metrics`]: Y channel, PSNR and SSIM as BasicSR and the official KDSR code compute them.
//! - [`eval`]: the evaluation protocol (Gaussian8, anisotropic + noise) for any backend, and the
//!   paper's published numbers.
//! - [`idr`]: the `.idr` file (a saved degradation estimate).
//! - [`io`]: image loading and saving that never drops bit depth or alpha silently.
//! - [`fsutil`]: the atomic file write behind image saving and checkpoints.
//! - [`Planar`]: the float32 CHW image type all of them use.

pub mod container;
pub mod error;
pub mod eval;
pub mod fsutil;
pub mod idr;
pub mod io;
pub mod metrics;
pub mod pipeline;
mod planar;
pub mod spec;

pub use error::{Error, Result};
pub use planar::Planar;
