//! `kdsr-trainer`: KDSR on libtorch (tch) — the networks at official key names, the KD loss,
//! the degradations on the training device, staged training with exact resume, and evaluation,
//! for the classic setting ([`classic`]) and the real-world one ([`realworld`]).
//!
//! Both pipelines train through one [stage driver](driver) (a [`driver::Step`] per stage) and
//! one [checkpoint module](checkpoint); the modules at the top are shared by both.

pub mod alloc;
pub mod checkpoint;
pub mod classic;
pub mod cmd;
pub mod config;
pub mod data;
pub mod device;
pub mod driver;
pub mod eval;
pub mod jpeg;
pub mod loss;
pub mod model;
pub mod ops;
pub mod optim;
pub use kdsr_core::eval::paper;
pub mod realworld;
