//! Classic KDSR (the paper's §4.1–4.3 setting): bicubic-downsampled blur + noise (+ the camera
//! additions), teacher (L1) → student (L1 + KD).
//!
//! - [`config`]: the experiment (`[model]`, `[degradation]`, `[teacher]`, `[student]`, `[run]`,
//!   `[idr]`) and its presets (`paper-iso`, `paper-aniso-noise`, `cpu-edge`, `cpu-edge-blind`,
//!   `cpu-edge-camera`, `smoke`).
//! - [`degrade`]: the classic degradation on the training device.
//! - [`train`]: the two stages as [`crate::driver::Step`]s.

pub mod config;
pub mod degrade;
pub mod train;
