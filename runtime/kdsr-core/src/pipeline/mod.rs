//! The pixel pipeline: blur kernels, bicubic resizing, blur, noise and the classic LR synthesis,
//! matched to the official KDSR code, BasicSR and Real-ESRGAN (see each module).

pub mod blur;
pub mod camera;
pub mod degrade;
pub mod kernels;
pub mod noise;
pub mod resize;

/// Quantises a [0, 1] value to 8 bits the way every reference does:
/// clamp(round_half_even(x · 255), 0, 255).
pub fn quantize_u8(x: f32) -> u8 {
    (x * 255.0).round_ties_even().clamp(0.0, 255.0) as u8
}

/// Quantises a [0, 1] value to 16 bits: clamp(round_half_even(x · 65535), 0, 65535), computed in
/// f64 (f32 cannot hold every x · 65535 exactly). NaN maps to 0.
pub fn quantize_u16(x: f32) -> u16 {
    (f64::from(x) * 65535.0)
        .round_ties_even()
        .clamp(0.0, 65535.0) as u16
}

/// [`quantize_u8`] then back to [0, 1]: the 8-bit round trip applied to LR images and to SR output
/// before metrics. NaN maps to 0.
pub fn quantize(x: f32) -> f32 {
    f32::from(quantize_u8(x)) / 255.0
}
