//! `kdsr-converter`: KDSR student checkpoints → ONNX graphs, verified with tract.
//!
//! The modules stack one way, each using only those listed before it (checked by
//! `tests/layers.rs`):
//! - [`error`]: [`ConvertError`], classified with exit codes.
//! - [`graph`]: the graph contract of `kdsr_core::spec::onnx` and [`ExportKind`].
//! - [`network`]: a checked student config + weights ([`Network`]).
//! - [`fold`]: an IDR's depthwise kernels computed in Rust (for folded graphs).
//! - [`mod@reference`]: the naive plain-Rust forward every export is compared with.
//! - [`onnx`]: the float32 graph builders, one file per layer kind ([`onnx::dynamic`],
//!   [`onnx::ide_graph`], [`onnx::sr_graph`], [`onnx::folded`], [`onnx::batched`]), and
//!   [`onnx::proto`], the one reader and writer of the protobuf types.
//! - [`verify`]: loading a graph back with tract, running and timing it.
//! - [`inspect`]: the canonical text dump of a graph (the golden files).
//! - [`idr_source`]: where a folded graph's IDR comes from (file, image, calibration folder).
//! - [`quantize`]: f16, int8-weights and static int8 (QDQ, calibrated) graphs from the float32
//!   ones.
//! - [`export`]: options (validated once) → build → check (verify, time) → write atomically, and
//!   the report.
//! - [`cmd`]: the `converter` subcommands.

pub mod cmd;
pub mod error;
pub mod export;
pub mod fold;
pub mod graph;
pub mod idr_source;
pub mod inspect;
pub mod network;
pub mod onnx;
pub mod quantize;
pub mod reference;
pub mod verify;

pub use error::{ConvertError, Result};
pub use graph::{ExportKind, GraphKind, Precision};
pub use network::Network;
