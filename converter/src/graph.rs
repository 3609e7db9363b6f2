//! The kinds of graph the converter writes, the numeric precision they are stored at, and the
//! `metadata_props` every graph carries.

pub use kdsr_core::spec::onnx::{
    FORMAT_VERSION, GraphKind, GraphMeta, INT8_MIN_PSNR, INT8_WEIGHTS_MIN_PSNR, Precision, keys,
};

/// What `converter export --graph` asks for: one file, or two for [`ExportKind::Split`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportKind {
    /// One [`GraphKind::Dynamic`] file.
    Dynamic,
    /// A [`GraphKind::Ide`] and a [`GraphKind::Sr`] file (`OUT-ide.onnx`, `OUT-sr.onnx`).
    Split,
    /// One [`GraphKind::Folded`] file (needs an IDR source).
    Folded,
    /// One [`GraphKind::Batched`] file (needs a batch size).
    Batched,
}

/// How much lower (dB) the PSNR floor of a vector output (`D`, `D_prime`) is than the image
/// floor: on a flat image every pixel of the IDE's last feature maps carries the same rounding
/// error, which the global average pooling then keeps instead of averaging out (measured with
/// int8: `D` 30.1 dB where `sr` was 49.1 dB, on a flat 64×64 crop).
pub const VECTOR_PSNR_MARGIN: f64 = 10.0;

/// The PSNR floor of output `output` given the image floor `floor` (see [`VECTOR_PSNR_MARGIN`]).
pub fn output_floor(output: &str, floor: f64) -> f64 {
    if output == kdsr_core::spec::onnx::names::SR {
        floor
    } else {
        floor - VECTOR_PSNR_MARGIN
    }
}
