//! RGB888 → [`Rgb565`] conversion, with ordered (Bayer 4×4) dithering or plain rounding.
//!
//! # Why ordered dithering
//! The SPI panels take 5-6-5 bits per pixel: a smooth 8-bit gradient turns into visible bands
//! (steps of 8 levels in red and blue, 4 in green). Ordered dithering adds a position-dependent
//! threshold from the 4×4 Bayer matrix before truncating, so a flat 8-bit value between two
//! 5-bit levels becomes a fixed pattern whose average is that value. Unlike Floyd–Steinberg it
//! is **pixel-local** (no error carried between pixels): a pixel's output depends only on its
//! colour and its display coordinates, so an image can be streamed to the panel in any order,
//! clipped or redrawn in parts, and gives the same pixels every time — which the pattern tests
//! rely on. The threshold pattern is anchored to the *display* coordinates, not the image's.
//!
//! # Exact formula
//! For a channel with `q + 1` output levels (`q` = 31 for red/blue, 63 for green), 8-bit value
//! `v` and Bayer rank `t` ∈ 0..16 at `(x mod 4, y mod 4)`:
//! `out = min(q, ⌊(32·q·v + (2t + 1)·255) / (32·255)⌋)`, i.e. `⌊v·q/255 + (t + ½)/16⌋`.
//! 0 maps to 0 and 255 to `q` at every position (black and white stay flat).
//! [`Dither::None`] rounds to the nearest level: `⌊(v·q + 127) / 255⌋`.

use embedded_graphics::pixelcolor::Rgb565;
use embedded_graphics::prelude::RgbColor;

/// The 4×4 Bayer index matrix, `BAYER4[y % 4][x % 4]` ∈ 0..16.
pub const BAYER4: [[u8; 4]; 4] = [[0, 8, 2, 10], [12, 4, 14, 6], [3, 11, 1, 9], [15, 7, 13, 5]];

/// How 8-bit channels are reduced to 5-6-5 bits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Dither {
    /// Round each channel to the nearest level (bands on gradients).
    None,
    /// Ordered dithering with the 4×4 Bayer matrix anchored to display coordinates (the
    /// default; see the [module docs](self)).
    #[default]
    Bayer4,
}

impl std::str::FromStr for Dither {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "none" | "round" => Ok(Self::None),
            "bayer" | "bayer4" | "ordered" => Ok(Self::Bayer4),
            _ => Err(format!("unknown dither `{s}` (none, bayer4)")),
        }
    }
}

fn level_rounded(v: u8, q: u32) -> u8 {
    ((u32::from(v) * q + 127) / 255) as u8
}

fn level_dithered(v: u8, q: u32, t: u32) -> u8 {
    ((32 * q * u32::from(v) + (2 * t + 1) * 255) / (32 * 255)).min(q) as u8
}

/// Converts one 8-bit RGB pixel shown at display coordinates `(x, y)` (which pick the Bayer
/// threshold; ignored by [`Dither::None`]) to [`Rgb565`].
pub fn to_rgb565(rgb: [u8; 3], x: i32, y: i32, dither: Dither) -> Rgb565 {
    let [r, g, b] = rgb;
    let (rq, gq, bq) = (
        u32::from(Rgb565::MAX_R),
        u32::from(Rgb565::MAX_G),
        u32::from(Rgb565::MAX_B),
    );
    match dither {
        Dither::None => Rgb565::new(
            level_rounded(r, rq),
            level_rounded(g, gq),
            level_rounded(b, bq),
        ),
        Dither::Bayer4 => {
            let t = u32::from(BAYER4[y.rem_euclid(4) as usize][x.rem_euclid(4) as usize]);
            Rgb565::new(
                level_dithered(r, rq, t),
                level_dithered(g, gq, t),
                level_dithered(b, bq, t),
            )
        }
    }
}

/// Expands an [`Rgb565`] to 8 bits per channel by bit replication (`r5 → r5·8 + r5/4`, …), the
/// inverse a PNG export of a 5-6-5 framebuffer uses; 0 ↦ 0 and the top level ↦ 255.
pub fn rgb565_to_rgb888(c: Rgb565) -> [u8; 3] {
    let (r, g, b) = (c.r(), c.g(), c.b());
    [
        (r << 3) | (r >> 2),
        (g << 2) | (g >> 4),
        (b << 3) | (b >> 2),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extremes_stay_flat_and_average_matches() {
        for y in 0..4 {
            for x in 0..4 {
                assert_eq!(to_rgb565([0, 0, 0], x, y, Dither::Bayer4), Rgb565::BLACK);
                assert_eq!(to_rgb565([255; 3], x, y, Dither::Bayer4), Rgb565::WHITE);
            }
        }
        for v in 0..=255u8 {
            let mean: f64 = (0..16)
                .map(|i| f64::from(to_rgb565([v, v, v], i % 4, i / 4, Dither::Bayer4).r()))
                .sum::<f64>()
                / 16.0;
            let want = f64::from(v) * 31.0 / 255.0;
            assert!(
                (mean - want).abs() <= 1.0 / 32.0 + 1e-9,
                "v {v}: {mean} vs {want}"
            );
        }
    }

    #[test]
    fn expansion_inverts_rounding_at_levels() {
        for r in 0..32u8 {
            let c = Rgb565::new(r, r * 2, r);
            let e = rgb565_to_rgb888(c);
            assert_eq!(to_rgb565(e, 0, 0, Dither::None), c);
        }
    }
}
