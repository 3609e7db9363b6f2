//! Whole images in and out of an [`Upscaler`]: gray, alpha and 16-bit handled, the output written
//! tile by tile into the quantised result (no full-size float32 copy).
//!
//! - **Gray** images run as RGB with the gray value replicated; the output is the mean of the
//!   three output channels (the network's colour channels differ slightly even on gray input).
//! - **Alpha** is not seen by the network: it is upscaled separately with bicubic interpolation
//!   ([`kdsr_core::pipeline::resize::imresize`], MATLAB variant) and re-attached.
//! - **Bit depth**: 8-bit in → 8-bit out, 16-bit in → 16-bit out, quantised with
//!   `clamp(round_half_even(v · max), 0, max)` as everywhere in kdsr.

use image::{DynamicImage, ImageBuffer};
use kdsr_core::Planar;
use kdsr_core::idr::Idr;
use kdsr_core::io::{BitDepth, ColorKind, LoadedImage, from_dynamic};
use kdsr_core::pipeline::resize::{BicubicVariant, imresize};
use kdsr_core::pipeline::{quantize_u8, quantize_u16};

use crate::error::{Error, Result};
use crate::upscaler::{IdrPlan, TileOutput, Upscaler};

/// A sample type of an output buffer.
trait Sample: Copy + Default + 'static {
    fn quantize(v: f32) -> Self;
}
impl Sample for u8 {
    fn quantize(v: f32) -> Self {
        if v.is_nan() { 0 } else { quantize_u8(v) }
    }
}
impl Sample for u16 {
    fn quantize(v: f32) -> Self {
        quantize_u16(v)
    }
}

/// Interleaved output buffer: `channels` colour samples (+ 1 alpha) per pixel.
struct OutBuf<T> {
    data: Vec<T>,
    width: usize,
    channels: usize,
    stride: usize,
}

impl<T: Sample> OutBuf<T> {
    fn new(h: usize, w: usize, channels: usize, alpha: bool) -> Self {
        let stride = channels + usize::from(alpha);
        Self {
            data: vec![T::default(); h * w * stride],
            width: w,
            channels,
            stride,
        }
    }

    fn put_tile(&mut self, t: &TileOutput<'_>) {
        for r in 0..t.height {
            let base = ((t.y + r) * self.width + t.x) * self.stride;
            let row = &mut self.data[base..base + t.width * self.stride];
            if self.channels == 3 {
                for c in 0..3 {
                    for (i, v) in t.row(c, r).iter().enumerate() {
                        row[i * self.stride + c] = T::quantize(*v);
                    }
                }
            } else {
                let (r0, r1, r2) = (t.row(0, r), t.row(1, r), t.row(2, r));
                for i in 0..t.width {
                    row[i * self.stride] = T::quantize((r0[i] + r1[i] + r2[i]) / 3.0);
                }
            }
        }
    }

    fn put_alpha(&mut self, alpha: &Planar) {
        let c = self.channels;
        for (px, a) in self.data.chunks_exact_mut(self.stride).zip(alpha.data()) {
            px[c] = T::quantize(*a);
        }
    }
}

/// Bytes the image path holds outside the network for an `h × w` input with `channels` colour
/// channels, optional alpha and `depth`, at `scale`: float32 input, quantised output, and the
/// float32 alpha planes.
pub fn image_buffer_bytes(
    h: usize,
    w: usize,
    channels: usize,
    alpha: bool,
    depth: BitDepth,
    scale: usize,
) -> f64 {
    let px = h as f64 * w as f64;
    let s2 = scale as f64 * scale as f64;
    let sample = if depth == BitDepth::Sixteen { 2.0 } else { 1.0 };
    let out_ch = (channels + usize::from(alpha)) as f64;
    let alpha_f32 = if alpha { 4.0 * px * (1.0 + s2) } else { 0.0 };
    4.0 * px * channels as f64 + px * s2 * out_ch * sample + alpha_f32
}

impl Upscaler {
    /// Upscales a decoded image (8/16-bit, gray/RGB, with or without alpha) to the same kind of
    /// image `scale` times larger; the IDR is estimated once for split models (see the
    /// [module docs](self) for gray, alpha and bit depth). 32-bit float images are refused.
    pub fn upscale_image(&self, img: &DynamicImage) -> Result<DynamicImage> {
        let loaded = loaded_from_dynamic(img)?;
        self.upscale_loaded(&loaded, None, &mut |_, _| {})
    }

    /// [`Upscaler::upscale_image`] with a given IDR (split models only).
    pub fn upscale_image_with_idr(&self, img: &DynamicImage, idr: &Idr) -> Result<DynamicImage> {
        self.accept_idr(idr)?;
        let loaded = loaded_from_dynamic(img)?;
        self.upscale_loaded(&loaded, Some(idr), &mut |_, _| {})
    }

    /// Upscales a [`LoadedImage`] (colour planes + optional alpha) into an image of its bit depth
    /// and colour kind. `idr`: a given IDR (split models; checked with
    /// [`Upscaler::accept_idr`]), or `None` to estimate one (split) / use the built-in one
    /// (folded) / run whole (dynamic). `progress(done, total)` is called with `done` 0 once the IDR
    /// is ready (before the first tile), then after every tile.
    pub fn upscale_loaded(
        &self,
        img: &LoadedImage,
        idr: Option<&Idr>,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<DynamicImage> {
        let s = self.scale();
        let (h, w) = (img.rgb.height(), img.rgb.width());
        let channels = img.rgb.channels();
        let fixed = image_buffer_bytes(h, w, channels, img.alpha.is_some(), img.bit_depth, s);
        let grid = self.tile_grid(h, w, fixed)?;
        let estimated;
        let idr = match (idr, self.idr_plan(h, w, idr)) {
            (Some(i), _) => {
                self.accept_idr(i)?;
                Some(i)
            }
            (None, IdrPlan::Estimated { .. }) => {
                estimated = self.estimate_idr(&img.rgb)?;
                Some(&estimated)
            }
            (None, _) => None,
        };
        let d = idr.map(|i| i.d.as_slice());
        progress(0, grid.len());
        let alpha = img
            .alpha
            .as_ref()
            .map(|a| imresize(a, s as f64, BicubicVariant::Matlab))
            .transpose()?;
        let (oh, ow) = (h * s, w * s);
        let dims = |v: usize| {
            u32::try_from(v).map_err(|_| Error::Usage(format!("output side {v} exceeds u32")))
        };
        let (ow32, oh32) = (dims(ow)?, dims(oh)?);
        let bad = || Error::Usage("output buffer size mismatch".into());
        Ok(match img.bit_depth {
            BitDepth::Eight => {
                let mut buf = OutBuf::<u8>::new(oh, ow, channels, alpha.is_some());
                self.run_tiles(&img.rgb, d, &grid, &mut |t| {
                    buf.put_tile(t);
                    progress(t.index + 1, t.total);
                    Ok(())
                })?;
                if let Some(a) = &alpha {
                    buf.put_alpha(a);
                }
                let raw = buf.data;
                match (img.color, alpha.is_some()) {
                    (ColorKind::Gray, false) => DynamicImage::ImageLuma8(
                        ImageBuffer::from_raw(ow32, oh32, raw).ok_or_else(bad)?,
                    ),
                    (ColorKind::Gray, true) => DynamicImage::ImageLumaA8(
                        ImageBuffer::from_raw(ow32, oh32, raw).ok_or_else(bad)?,
                    ),
                    (ColorKind::Rgb, false) => DynamicImage::ImageRgb8(
                        ImageBuffer::from_raw(ow32, oh32, raw).ok_or_else(bad)?,
                    ),
                    (ColorKind::Rgb, true) => DynamicImage::ImageRgba8(
                        ImageBuffer::from_raw(ow32, oh32, raw).ok_or_else(bad)?,
                    ),
                }
            }
            BitDepth::Sixteen => {
                let mut buf = OutBuf::<u16>::new(oh, ow, channels, alpha.is_some());
                self.run_tiles(&img.rgb, d, &grid, &mut |t| {
                    buf.put_tile(t);
                    progress(t.index + 1, t.total);
                    Ok(())
                })?;
                if let Some(a) = &alpha {
                    buf.put_alpha(a);
                }
                let raw = buf.data;
                match (img.color, alpha.is_some()) {
                    (ColorKind::Gray, false) => DynamicImage::ImageLuma16(
                        ImageBuffer::from_raw(ow32, oh32, raw).ok_or_else(bad)?,
                    ),
                    (ColorKind::Gray, true) => DynamicImage::ImageLumaA16(
                        ImageBuffer::from_raw(ow32, oh32, raw).ok_or_else(bad)?,
                    ),
                    (ColorKind::Rgb, false) => DynamicImage::ImageRgb16(
                        ImageBuffer::from_raw(ow32, oh32, raw).ok_or_else(bad)?,
                    ),
                    (ColorKind::Rgb, true) => DynamicImage::ImageRgba16(
                        ImageBuffer::from_raw(ow32, oh32, raw).ok_or_else(bad)?,
                    ),
                }
            }
        })
    }
}

fn loaded_from_dynamic(img: &DynamicImage) -> Result<LoadedImage> {
    from_dynamic(img).map_err(|e| Error::input("<memory>", e.to_string()))
}
