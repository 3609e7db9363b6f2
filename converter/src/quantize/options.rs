//! What a quantized export is asked for, beside its precision: [`QuantizeOptions`] (calibration,
//! exclusions, [`KernelQuant`]) and the exclusions the README recommends. The lowest file of
//! `quantize/`: the others read it, it reads only the calibration settings.

use super::calibrate::CalibOptions;
use super::params::{INT8_WEIGHT_MAX, INT8_WEIGHT_MAX_REDUCED};

/// What static int8 does with the kernel path of the dynamic depthwise convs: the kernel MLPs
/// (`Gemm` → LeakyRelu → `Gemm` → `Reshape`, from `D`) and the depthwise conv that applies the
/// computed kernels. Folded graphs have constant kernels, which are ordinary int8 weights.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KernelQuant {
    /// Everything float32: the MLP weights too.
    Float,
    /// The MLP weights int8 (per channel), their activations and the depthwise conv float32.
    /// The default: nearly all of the size gain at no measurable accuracy cost.
    #[default]
    Weights,
    /// Also QDQ on `D`, the MLP activations and the computed kernels (per tensor, uint8).
    Full,
}

/// The quantization settings of an export, beside its [`crate::Precision`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QuantizeOptions {
    /// Calibration images: required for `int8`; for `int8-weights` and `f16` they are only used
    /// to report the PSNR on real images.
    pub calib: Option<CalibOptions>,
    /// Node names left float32 (their weights, and the inputs they read).
    pub exclude: Vec<String>,
    /// The kernel path of the dynamic depthwise convs.
    pub kernels: KernelQuant,
    /// 7-bit int8 weights ([-64, 64]), onnxruntime's `reduce_range`: for int8 graphs that
    /// onnxruntime or OpenVINO will run on x86-64 CPUs without VNNI, whose u8×s8 integer kernels
    /// (`vpmaddubsw`) saturate 16-bit pair sums of full-range weights. tract and CPUs with VNNI
    /// (or ARM's dot products) do not saturate; off by default.
    pub reduce_range: bool,
}

impl QuantizeOptions {
    /// Largest magnitude of an int8 weight with these settings.
    pub fn weight_max(&self) -> f32 {
        if self.reduce_range {
            INT8_WEIGHT_MAX_REDUCED
        } else {
            INT8_WEIGHT_MAX
        }
    }

    /// The `kdsr.quant_weights` value of these settings.
    pub fn weight_range_name(&self) -> &'static str {
        if self.reduce_range {
            "int8-symmetric-reduced"
        } else {
            "int8-symmetric"
        }
    }
}

/// The exclusions the README recommends for `int8` on the KDSR students: the image-facing layers
/// of the SR network — the MeanShifts `G.sub_mean` and `sr` (`add_mean`; excluding it keeps the
/// image before it from being rounded to 8 bits) and the first and last convs `G.head.0`,
/// `G.tail.1`. Measured +1.2 to +2.6 dB sr PSNR against float32 (converter README).
pub const RECOMMENDED_EXCLUDE: &[&str] = &["G.sub_mean", "G.head.0", "G.tail.1", "sr"];
