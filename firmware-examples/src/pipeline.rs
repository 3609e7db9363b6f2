//! The runtime side of the examples: frames read from a folder, upscaled by
//! [`kdsr_runtime::Upscaler`] with the IDE and SR timed separately, and the degradation reading
//! that `kdsr-edge inspect-degradation` prints, as a [`Reading`] for the meter.

use std::path::{Path, PathBuf};
use std::time::Instant;

use embedded_graphics::prelude::Size;
use image::RgbImage;
use kdsr_core::io::{LoadedImage, to_dynamic};
use kdsr_runtime::bank::{Bank, Match};
use kdsr_runtime::io::{ReadOptions, read_image};
use kdsr_runtime::{Error, Idr, IdrPlan, Result, Upscaler};

use crate::meter::Reading;
use crate::scene::Latency;

/// One upscaled frame.
#[derive(Clone, Debug)]
pub struct UpscaledFrame {
    /// The input as 8-bit RGB (gray replicated, alpha dropped).
    pub lr: RgbImage,
    /// The output as 8-bit RGB.
    pub sr: RgbImage,
    /// The IDR used (split models), estimated here or given.
    pub idr: Option<Idr>,
    /// What the frame cost.
    pub latency: Latency,
}

impl UpscaledFrame {
    /// Input and output sizes.
    pub fn sizes(&self) -> (Size, Size) {
        (
            Size::new(self.lr.width(), self.lr.height()),
            Size::new(self.sr.width(), self.sr.height()),
        )
    }
}

/// The image files of `dir` (by extension: png, jpg/jpeg, webp, tif/tiff, pnm/pam/ppm/pgm),
/// sorted by name; not recursive. Errors: [`Error::Input`] naming `dir`.
pub fn list_frames(dir: &Path) -> Result<Vec<PathBuf>> {
    kdsr_runtime::io::list_images(dir)
}

/// Reads a frame with the runtime's guarded decoder (size limit, EXIF orientation applied).
pub fn read_frame(path: &Path) -> Result<LoadedImage> {
    Ok(read_image(path, ReadOptions::default())?.image)
}

/// The centre `width × height` crop of `img` (each side clamped to the image's; 0 keeps it).
pub fn centre_crop(img: &LoadedImage, width: usize, height: usize) -> Result<LoadedImage> {
    let (h, w) = (img.rgb.height(), img.rgb.width());
    let cw = if width == 0 { w } else { width.min(w) };
    let ch = if height == 0 { h } else { height.min(h) };
    let (top, left) = ((h - ch) / 2, (w - cw) / 2);
    Ok(LoadedImage {
        rgb: img.rgb.crop(top, left, ch, cw)?,
        alpha: img
            .alpha
            .as_ref()
            .map(|a| a.crop(top, left, ch, cw))
            .transpose()?,
        ..img.clone()
    })
}

/// `img`'s colour as 8-bit RGB (gray replicated; alpha and 16-bit precision dropped).
pub fn to_rgb8(img: &LoadedImage) -> Result<RgbImage> {
    Ok(to_dynamic(&img.rgb, None, img.bit_depth)?.to_rgb8())
}

/// Upscales `frame`. Split models: the IDR is `idr` when given (checked against the model), else
/// estimated from this frame and timed as [`Latency::ide`]; other models run in one step
/// (`ide` = `None`).
pub fn upscale_frame(
    up: &Upscaler,
    frame: &LoadedImage,
    idr: Option<&Idr>,
) -> Result<UpscaledFrame> {
    let (h, w) = (frame.rgb.height(), frame.rgb.width());
    let (idr, ide_time) = match (up.idr_plan(h, w, idr), idr) {
        (IdrPlan::Estimated { .. }, None) => {
            let t = Instant::now();
            let idr = up.estimate_idr(&frame.rgb)?;
            (Some(idr), Some(t.elapsed()))
        }
        (_, given) => (given.cloned(), None),
    };
    let t = Instant::now();
    let sr = up.upscale_loaded(frame, idr.as_ref(), &mut |_, _| {})?;
    let sr_time = t.elapsed();
    Ok(UpscaledFrame {
        lr: to_rgb8(frame)?,
        sr: sr.to_rgb8(),
        idr,
        latency: Latency {
            ide: ide_time,
            sr: sr_time,
        },
    })
}

/// Loads the degradation bank at `path` and checks that `up`'s weights made it, as
/// `inspect-degradation` does. Errors: [`Error::ModelData`] naming `path`, with the
/// `kdsr-edge make-bank` command when the file is missing or belongs to other weights.
pub fn load_bank(up: &Upscaler, path: &Path) -> Result<Bank> {
    if !path.is_file() {
        return Err(Error::ModelData {
            path: path.to_path_buf(),
            message: format!(
                "no degradation bank; build it with `kdsr-edge make-bank -m {} -o {}`",
                model_arg(up),
                path.display()
            ),
        });
    }
    Bank::load_for(path, &up.info().weights_hash)
}

fn model_arg(up: &Upscaler) -> String {
    up.info()
        .files
        .first()
        .map_or_else(String::new, |f| f.display().to_string())
}

/// One nearest-entry line as `kdsr-edge inspect-degradation` prints it:
/// `"blur sigma 2.2 px, noise  5.0/255   distance 0.0012"`.
pub fn match_line(m: &Match) -> String {
    format!(
        "blur sigma {:.1} px, noise {:>4.1}/255   distance {:.4}",
        m.entry.sigma, m.entry.noise, m.distance
    )
}

/// The degradation of `frame` as `inspect-degradation` reports it: the IDR, and the `k` bank
/// entries nearest to its `D'` (nearest first) with the meter [`Reading`] of the first.
pub fn inspect(
    up: &Upscaler,
    bank: &Bank,
    frame: &LoadedImage,
    k: usize,
) -> Result<(Idr, Vec<Match>, Option<Reading>)> {
    let idr = up.estimate_idr(&frame.rgb)?;
    let nearest = bank.nearest(&idr.d_prime, k.max(1));
    let reading = Reading::from_nearest(bank, &nearest);
    Ok((idr, nearest, reading))
}
