//! `kdsr-runtime`: KDSR blind super-resolution on CPUs and ARM boards with tract — the
//! [`Upscaler`] library behind the `kdsr-edge` CLI.
//!
//! ```no_run
//! use kdsr_runtime::{Options, Upscaler};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A split pair models/kdsr-edge-ide.onnx + models/kdsr-edge-sr.onnx, exported by kdsr-converter.
//! let up = Upscaler::load("models/kdsr-edge", Options::default())?;
//! let img = image::open("photo.png")?;
//! let sr = up.upscale_image(&img)?; // IDR estimated once, tiles under the 512 MiB budget
//! sr.save("photo-x4.png")?;
//! # Ok(()) }
//! ```
//!
//! - [`upscaler`]: loading dynamic, split and folded graphs with their metadata checked,
//!   [`Upscaler::estimate_idr`], [`Upscaler::upscale`], [`Upscaler::upscale_with_idr`], tiling.
//! - [`tiling`]: exact crop-centre tiling and the receptive radius that sizes its overlap.
//! - [`memory`]: the measured memory model that sizes tiles from a budget.
//! - [`image`]: whole images (gray, alpha, 16-bit) in and out.
//! - [`io`]: guarded image decoding, EXIF orientation, ICC/EXIF pass-through, atomic writes.
//! - [`bank`]: the degradation bank that names an IDR's nearest known degradation.
//! - [`models`]: the default model, where it is searched for, and its built-in copy.
//! - [`video`]: y4m and raw I420/RGB24 frames and their BT.601 colour conversion (`stream`).
//! - [`graph`]: one ONNX graph, its `kdsr.*` metadata and its per-size optimized plans.
//! - [`profile`]: per-node time of a graph's optimized plan.
//! - [`ops`]: kdsr-edge's own tract operators and the rewrite that substitutes them.

pub mod bank;
pub mod error;
pub mod graph;
pub mod image;
pub mod io;
pub mod memory;
pub mod models;
pub mod ops;
pub mod profile;
pub mod tiling;
pub mod upscaler;
pub mod video;

pub use error::{Error, ErrorClass, Result};
pub use graph::{GraphKind, GraphMeta, Precision};
pub use kdsr_core::Planar;
pub use kdsr_core::idr::Idr;
pub use upscaler::{
    ConvPrecision, DirectSpatial, IdrPlan, ModelInfo, ModelKind, Options, TileOutput, Upscaler,
};
