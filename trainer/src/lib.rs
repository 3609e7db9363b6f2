//! `kdsr-trainer`: KDSR on libtorch (tch) — the networks at official key names, the KD loss,
//! the classic degradation on the training device, two-stage training and evaluation.

pub mod alloc;
pub mod cmd;
pub mod config;
pub mod data;
pub mod degrade;
pub mod device;
pub mod eval;
pub mod loss;
pub mod model;
pub mod optim;
pub use kdsr_core::eval::paper;
pub mod realworld;
pub mod train;
