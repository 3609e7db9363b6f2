//! Image loading and saving on the `image` crate that never drops bit depth or alpha silently.
//!
//! # Loading
//! [`load_image`] decodes PNG, JPEG, WebP, TIFF and PNM/PAM (the format is guessed from the
//! content, then from the extension) into a [`LoadedImage`]: the colour planes (1 channel for
//! gray, 3 for RGB) and, separately, the alpha plane, all as [`Planar`] values in [0, 1]
//! (`v / 255` or `v / 65535`), plus the bit depth and colour kind the file holds. The pixel values
//! are the stored ones: no colour management (ICC), gamma, EXIF orientation or gray→RGB expansion is
//! applied. Formats that cannot be represented without loss are refused with
//! [`Error::UnsupportedFormat`]:
//! - 32-bit float images (`Rgb32F`/`Rgba32F`, e.g. float TIFF): they may hold HDR or linear values
//!   outside [0, 1], and they could not be written back at their depth ([`BitDepth`] is 8 or 16);
//! - CMYK TIFFs (the decoder would convert them to RGB).
//!
//! Sub-byte gray and palette images are expanded to 8 bits by the decoder, which is lossless.
//! JPEG's YCbCr→RGB conversion is part of decoding JPEG and is not treated as a conversion.
//!
//! # Saving
//! [`save_image`] / [`save_image_with`] pick the format from the extension and check that the
//! format can hold the image's channels, alpha and bit depth; if it cannot, they fail with
//! [`Error::UnsupportedFormat`] instead of degrading it, unless [`SaveOptions::allow_lossy`] is set
//! (then 16-bit data is quantised to 8 bits and an alpha plane the format cannot hold is dropped,
//! not composited). What each extension holds:
//!
//! | extension | gray | RGB | alpha | 16-bit |
//! | --- | --- | --- | --- | --- |
//! | `.png` | yes | yes | yes | yes |
//! | `.tif`, `.tiff` | yes | yes | RGB only (no gray+alpha) | yes |
//! | `.pam`, `.pnm` (PAM, `P7`) | yes | yes | yes | yes |
//! | `.ppm` (`P6`) | no | yes | no | no |
//! | `.pgm` (`P5`) | yes | no | no | no |
//! | `.webp` (lossless) | yes (read back as RGB) | yes | yes | no |
//! | `.jpg`, `.jpeg` | yes | yes | no | no |
//!
//! JPEG compression is lossy by nature; choosing a `.jpg` path is taken as consent to that (the
//! quality is [`SaveOptions::jpeg_quality`]), but not to losing bits or alpha. A colour kind the
//! format cannot hold (RGB to `.pgm`, gray to `.ppm`) is always an error. `.pbm` is never written.
//!
//! Values are quantised with `clamp(round_half_even(v · max), 0, max)`, `max` = 255 or 65535
//! (values outside [0, 1] are clamped; NaN/∞ are refused with [`Error::NonFinite`]).
//! The file is encoded in memory and written with [`write_atomic`]: to a temporary file in the
//! target's directory, synced, and renamed over `path`, so `path` never holds a partial file; on
//! failure the temporary file is removed and `path` is untouched.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::codecs::jpeg::JpegEncoder;
use image::codecs::pnm::{PnmEncoder, PnmSubtype, SampleEncoding};
use image::{DynamicImage, ExtendedColorType, ImageBuffer, ImageDecoder, ImageFormat, ImageReader};

use crate::Planar;
use crate::container::{JpegEnd, jpeg_end, truncated_jpeg};
use crate::error::{Error, Result};
use crate::fsutil::write_atomic;
use crate::pipeline::{quantize_u8, quantize_u16};

/// The file extensions (lower case) taken as images when a folder is listed: the formats
/// [`load_image`] decodes. Every crate lists folders with [`list_images`].
pub const IMAGE_EXTENSIONS: &[&str] = &[
    "png", "jpg", "jpeg", "jfif", "webp", "tif", "tiff", "pnm", "ppm", "pgm", "pbm", "pam",
];

/// Whether `path`'s extension (any case) is one of [`IMAGE_EXTENSIONS`].
pub fn is_image_path(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// The image files directly in `dir` ([`is_image_path`], not recursive; symbolic links are
/// followed), sorted by path. Errors: [`Error::Io`] naming `dir` when it or an entry cannot be
/// read.
pub fn list_images(dir: &Path) -> Result<Vec<PathBuf>> {
    let io = |source| Error::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let p = entry.map_err(io)?.path();
        if is_image_path(&p) && p.is_file() {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

/// An image size as every command line writes it: `WxH` (width first, as ffmpeg, ImageMagick
/// and `kdsr-edge`'s messages do), e.g. `320x180`; `×` and `,` also separate. Both sides ≥ 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ImageSize {
    /// Columns.
    pub width: usize,
    /// Rows.
    pub height: usize,
}

impl ImageSize {
    /// `(height, width)`, the order of tensor shapes.
    pub fn hw(self) -> (usize, usize) {
        (self.height, self.width)
    }
}

impl std::str::FromStr for ImageSize {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let (w, h) = s
            .split_once(['x', 'X', '×', ','])
            .ok_or_else(|| format!("`{s}` is not a size WxH (width x height, e.g. 320x180)"))?;
        let side = |v: &str, what: &str| {
            v.trim()
                .parse::<usize>()
                .ok()
                .filter(|v| *v > 0)
                .ok_or_else(|| {
                    format!(
                        "`{s}`: the {what} `{}` is not a whole number >= 1",
                        v.trim()
                    )
                })
        };
        Ok(Self {
            width: side(w, "width")?,
            height: side(h, "height")?,
        })
    }
}

impl std::fmt::Display for ImageSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}", self.width, self.height)
    }
}

/// Bits per sample of an image file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BitDepth {
    /// 8 bits per sample (0..255).
    Eight,
    /// 16 bits per sample (0..65535).
    Sixteen,
}

impl BitDepth {
    /// 8 or 16.
    pub fn bits(self) -> u32 {
        match self {
            BitDepth::Eight => 8,
            BitDepth::Sixteen => 16,
        }
    }

    /// The largest sample value: 255 or 65535.
    pub fn max_value(self) -> u32 {
        match self {
            BitDepth::Eight => 255,
            BitDepth::Sixteen => 65535,
        }
    }
}

/// Colour kind of an image file, alpha aside.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ColorKind {
    /// One luminance channel.
    Gray,
    /// Red, green, blue.
    Rgb,
}

impl ColorKind {
    /// 1 or 3.
    pub fn channels(self) -> usize {
        match self {
            ColorKind::Gray => 1,
            ColorKind::Rgb => 3,
        }
    }
}

/// A decoded image: colour planes, optional alpha plane, and what the file held.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadedImage {
    /// The colour planes in [0, 1]: 1 channel (gray) or 3 (RGB).
    pub rgb: Planar,
    /// The alpha plane in [0, 1] (1 channel, same size), if the file has one.
    pub alpha: Option<Planar>,
    /// Bits per sample in the file.
    pub bit_depth: BitDepth,
    /// Gray or RGB (matches `rgb.channels()`).
    pub color: ColorKind,
}

impl LoadedImage {
    /// Saves this image at its own bit depth, with its alpha, via [`save_image_with`].
    pub fn save(&self, path: impl AsRef<Path>, options: SaveOptions) -> Result<()> {
        save_image_with(
            path,
            &self.rgb,
            self.alpha.as_ref(),
            self.bit_depth,
            options,
        )
    }
}

/// How [`save_image_with`] may treat an image the target format cannot hold exactly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SaveOptions {
    /// Allow quantising 16-bit data to 8 bits and dropping an alpha plane when the format
    /// cannot hold them. Default `false`: such saves fail with [`Error::UnsupportedFormat`].
    pub allow_lossy: bool,
    /// JPEG quality, 1..=100 (clamped). Default 95.
    pub jpeg_quality: u8,
}

impl Default for SaveOptions {
    fn default() -> Self {
        Self {
            allow_lossy: false,
            jpeg_quality: 95,
        }
    }
}

impl SaveOptions {
    /// The defaults with `allow_lossy = true`.
    pub fn lossy() -> Self {
        Self {
            allow_lossy: true,
            ..Self::default()
        }
    }
}

/// Decodes the image at `path` (see the [module docs](self) for what is refused).
///
/// Errors: the file cannot be opened or read → [`Error::Io`]; it cannot be decoded (corrupt,
/// truncated, unknown format; a JPEG cut before its end-of-image marker, which the decoder would
/// fill grey, is refused as truncated) → [`Error::Image`]; a pixel format that would lose information →
/// [`Error::UnsupportedFormat`]. Every error names `path`.
pub fn load_image(path: impl AsRef<Path>) -> Result<LoadedImage> {
    let path = path.as_ref();
    let io_err = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let img_err = |e: image::ImageError| Error::Image {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let reader = ImageReader::open(path)
        .map_err(io_err)?
        .with_guessed_format()
        .map_err(io_err)?;
    if reader.format().is_none() {
        return Err(Error::Image {
            path: path.to_path_buf(),
            message: "unknown image format (neither the content nor the extension is recognised)"
                .into(),
        });
    }
    if reader.format() == Some(ImageFormat::Jpeg) {
        // The decoder fills a cut-off JPEG's missing part grey and succeeds: walk the markers.
        let mut file = std::io::BufReader::new(std::fs::File::open(path).map_err(io_err)?);
        if let JpegEnd::Truncated(at) = jpeg_end(&mut file).map_err(io_err)? {
            return Err(Error::Image {
                path: path.to_path_buf(),
                message: truncated_jpeg(at),
            });
        }
    }
    let decoder = reader.into_decoder().map_err(img_err)?;
    let original = decoder.original_color_type();
    if matches!(
        original,
        ExtendedColorType::Cmyk8 | ExtendedColorType::Cmyk16
    ) {
        return Err(Error::UnsupportedFormat {
            path: path.to_path_buf(),
            format: format!(
                "{original:?} (CMYK would be converted to RGB; convert the file to RGB first)"
            ),
        });
    }
    let img = DynamicImage::from_decoder(decoder).map_err(img_err)?;
    from_dynamic_at(&img, path)
}

/// Splits a decoded [`DynamicImage`] into planes without conversion. 32-bit float images are
/// refused with [`Error::UnsupportedFormat`] (path `<memory>`).
pub fn from_dynamic(img: &DynamicImage) -> Result<LoadedImage> {
    from_dynamic_at(img, Path::new("<memory>"))
}

fn from_dynamic_at(img: &DynamicImage, path: &Path) -> Result<LoadedImage> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let n8 = |v: u8| f32::from(v) / 255.0;
    let n16 = |v: u16| f32::from(v) / 65535.0;
    use BitDepth::{Eight, Sixteen};
    use ColorKind::{Gray, Rgb};
    let ((rgb, alpha), bit_depth, color) = match img {
        DynamicImage::ImageLuma8(b) => (split(b.as_raw(), h, w, 1, false, n8)?, Eight, Gray),
        DynamicImage::ImageLumaA8(b) => (split(b.as_raw(), h, w, 1, true, n8)?, Eight, Gray),
        DynamicImage::ImageRgb8(b) => (split(b.as_raw(), h, w, 3, false, n8)?, Eight, Rgb),
        DynamicImage::ImageRgba8(b) => (split(b.as_raw(), h, w, 3, true, n8)?, Eight, Rgb),
        DynamicImage::ImageLuma16(b) => (split(b.as_raw(), h, w, 1, false, n16)?, Sixteen, Gray),
        DynamicImage::ImageLumaA16(b) => (split(b.as_raw(), h, w, 1, true, n16)?, Sixteen, Gray),
        DynamicImage::ImageRgb16(b) => (split(b.as_raw(), h, w, 3, false, n16)?, Sixteen, Rgb),
        DynamicImage::ImageRgba16(b) => (split(b.as_raw(), h, w, 3, true, n16)?, Sixteen, Rgb),
        other => {
            return Err(Error::UnsupportedFormat {
                path: path.to_path_buf(),
                format: format!(
                    "{:?} (only 8- and 16-bit gray/RGB with optional alpha are loaded; \
                     float images are not converted)",
                    other.color()
                ),
            });
        }
    };
    Ok(LoadedImage {
        rgb,
        alpha,
        bit_depth,
        color,
    })
}

/// De-interleaves `raw` (HWC with `color_ch` colour samples and optionally one alpha sample per
/// pixel) into colour and alpha planes.
fn split<T: Copy>(
    raw: &[T],
    h: usize,
    w: usize,
    color_ch: usize,
    has_alpha: bool,
    norm: impl Fn(T) -> f32,
) -> Result<(Planar, Option<Planar>)> {
    let stride = color_ch + usize::from(has_alpha);
    let plane = h * w;
    if raw.len() != plane * stride {
        return Err(Error::BadLength {
            what: "decoded image",
            len: raw.len(),
            shape: vec![h, w, stride],
        });
    }
    let mut color = vec![0.0f32; plane * color_ch];
    let mut alpha = if has_alpha {
        vec![0.0f32; plane]
    } else {
        Vec::new()
    };
    for (i, px) in raw.chunks_exact(stride).enumerate() {
        for c in 0..color_ch {
            color[c * plane + i] = norm(px[c]);
        }
        if has_alpha {
            alpha[i] = norm(px[color_ch]);
        }
    }
    let rgb = Planar::new(color_ch, h, w, color)?;
    let alpha = if has_alpha {
        Some(Planar::new(1, h, w, alpha)?)
    } else {
        None
    };
    Ok((rgb, alpha))
}

/// Builds the [`DynamicImage`] for `rgb` (1 or 3 channels), optional `alpha` (1 channel, same
/// size) at `bit_depth`: L8/La8/Rgb8/Rgba8 or L16/La16/Rgb16/Rgba16, quantising with
/// `clamp(round_half_even(v · max), 0, max)`.
///
/// Errors: a channel count other than 1 or 3, or an alpha that is not 1 channel →
/// [`Error::InvalidParameter`]; alpha of another size → [`Error::ShapeMismatch`]; NaN/∞ →
/// [`Error::NonFinite`]; a side over `u32::MAX` → [`Error::InvalidParameter`].
pub fn to_dynamic(
    rgb: &Planar,
    alpha: Option<&Planar>,
    bit_depth: BitDepth,
) -> Result<DynamicImage> {
    let color = color_kind(rgb)?;
    rgb.check_finite("image to encode")?;
    if let Some(a) = alpha {
        if a.channels() != 1 {
            return Err(Error::InvalidParameter {
                name: "alpha channels",
                value: a.channels() as f64,
                expected: "an alpha plane has exactly 1 channel",
            });
        }
        if (a.height(), a.width()) != (rgb.height(), rgb.width()) {
            return Err(Error::ShapeMismatch {
                what: "alpha vs colour planes",
                a: a.shape().to_vec(),
                b: rgb.shape().to_vec(),
            });
        }
        a.check_finite("alpha to encode")?;
    }
    let w = dim_u32("width", rgb.width())?;
    let h = dim_u32("height", rgb.height())?;
    let bad = || Error::BadLength {
        what: "image buffer",
        len: rgb.data().len(),
        shape: vec![rgb.height(), rgb.width(), rgb.channels()],
    };
    Ok(match bit_depth {
        BitDepth::Eight => {
            let raw = interleave(rgb, alpha, quantize_u8);
            match (color, alpha.is_some()) {
                (ColorKind::Gray, false) => {
                    DynamicImage::ImageLuma8(ImageBuffer::from_raw(w, h, raw).ok_or_else(bad)?)
                }
                (ColorKind::Gray, true) => {
                    DynamicImage::ImageLumaA8(ImageBuffer::from_raw(w, h, raw).ok_or_else(bad)?)
                }
                (ColorKind::Rgb, false) => {
                    DynamicImage::ImageRgb8(ImageBuffer::from_raw(w, h, raw).ok_or_else(bad)?)
                }
                (ColorKind::Rgb, true) => {
                    DynamicImage::ImageRgba8(ImageBuffer::from_raw(w, h, raw).ok_or_else(bad)?)
                }
            }
        }
        BitDepth::Sixteen => {
            let raw = interleave(rgb, alpha, quantize_u16);
            match (color, alpha.is_some()) {
                (ColorKind::Gray, false) => {
                    DynamicImage::ImageLuma16(ImageBuffer::from_raw(w, h, raw).ok_or_else(bad)?)
                }
                (ColorKind::Gray, true) => {
                    DynamicImage::ImageLumaA16(ImageBuffer::from_raw(w, h, raw).ok_or_else(bad)?)
                }
                (ColorKind::Rgb, false) => {
                    DynamicImage::ImageRgb16(ImageBuffer::from_raw(w, h, raw).ok_or_else(bad)?)
                }
                (ColorKind::Rgb, true) => {
                    DynamicImage::ImageRgba16(ImageBuffer::from_raw(w, h, raw).ok_or_else(bad)?)
                }
            }
        }
    })
}

fn interleave<T: Copy + Default>(
    rgb: &Planar,
    alpha: Option<&Planar>,
    q: impl Fn(f32) -> T,
) -> Vec<T> {
    let c = rgb.channels();
    let stride = c + usize::from(alpha.is_some());
    let plane = rgb.height() * rgb.width();
    let mut out = vec![T::default(); plane * stride];
    for (i, px) in out.chunks_exact_mut(stride).enumerate() {
        for ch in 0..c {
            px[ch] = q(rgb.plane(ch)[i]);
        }
        if let Some(a) = alpha {
            px[c] = q(a.data()[i]);
        }
    }
    out
}

fn color_kind(rgb: &Planar) -> Result<ColorKind> {
    match rgb.channels() {
        1 => Ok(ColorKind::Gray),
        3 => Ok(ColorKind::Rgb),
        c => Err(Error::InvalidParameter {
            name: "channels",
            value: c as f64,
            expected: "images are saved with 1 (gray) or 3 (RGB) colour channels; alpha is separate",
        }),
    }
}

fn dim_u32(name: &'static str, v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::InvalidParameter {
        name,
        value: v as f64,
        expected: "must fit in u32",
    })
}

/// Saves with [`SaveOptions::default`]: fails rather than lose bit depth or alpha.
/// See [`save_image_with`].
pub fn save_image(
    path: impl AsRef<Path>,
    rgb: &Planar,
    alpha: Option<&Planar>,
    bit_depth: BitDepth,
) -> Result<()> {
    save_image_with(path, rgb, alpha, bit_depth, SaveOptions::default())
}

/// Encodes `rgb` (1 or 3 channels in [0, 1]) with optional `alpha` at `bit_depth` in the format
/// named by `path`'s extension and writes it atomically (see the [module docs](self) for the
/// formats, the quantisation and the atomic write).
///
/// Errors: unknown or missing extension, or a format that cannot hold the image without loss
/// (unless `options.allow_lossy`) → [`Error::UnsupportedFormat`]; encoding failure →
/// [`Error::Image`]; file-system failure → [`Error::Io`]; plus the errors of [`to_dynamic`].
/// On any error no file is created or changed at `path`.
pub fn save_image_with(
    path: impl AsRef<Path>,
    rgb: &Planar,
    alpha: Option<&Planar>,
    bit_depth: BitDepth,
    options: SaveOptions,
) -> Result<()> {
    let path = path.as_ref();
    let target = OutFormat::for_path(path)?;
    let color = color_kind(rgb)?;
    let (alpha, bit_depth) = target.fit(path, color, alpha, bit_depth, options.allow_lossy)?;
    let img = to_dynamic(rgb, alpha, bit_depth)?;
    let bytes = encode(&img, target, options, path)?;
    write_atomic(path, &bytes)
}

/// An image format written by extension (the one table of what each format holds: see the
/// [module docs](self)); `save_image` and `kdsr-edge`'s writer both use it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutFormat {
    /// PNG.
    Png,
    /// Baseline JPEG.
    Jpeg,
    /// Lossless WebP.
    WebP,
    /// TIFF.
    Tiff,
    /// PAM (`P7`), written for `.pam` and `.pnm`.
    Pam,
    /// Binary PPM (`P6`), RGB only.
    Ppm,
    /// Binary PGM (`P5`), gray only.
    Pgm,
}

impl OutFormat {
    /// The format for a file extension (case-insensitive), `None` when unknown.
    pub fn from_extension(ext: &str) -> Option<Self> {
        Some(match ext.to_ascii_lowercase().as_str() {
            "png" => OutFormat::Png,
            "jpg" | "jpeg" | "jfif" => OutFormat::Jpeg,
            "webp" => OutFormat::WebP,
            "tif" | "tiff" => OutFormat::Tiff,
            "pam" | "pnm" => OutFormat::Pam,
            "ppm" => OutFormat::Ppm,
            "pgm" => OutFormat::Pgm,
            _ => return None,
        })
    }

    /// The format of `path`'s extension.
    pub fn from_path(path: &Path) -> Option<Self> {
        path.extension()
            .and_then(|e| e.to_str())
            .and_then(Self::from_extension)
    }

    /// The extension written for this format.
    pub fn extension(self) -> &'static str {
        match self {
            OutFormat::Png => "png",
            OutFormat::Jpeg => "jpg",
            OutFormat::WebP => "webp",
            OutFormat::Tiff => "tif",
            OutFormat::Pam => "pam",
            OutFormat::Ppm => "ppm",
            OutFormat::Pgm => "pgm",
        }
    }

    /// The format's name (`PNG`, `JPEG`, …).
    pub fn name(self) -> &'static str {
        match self {
            OutFormat::Png => "PNG",
            OutFormat::Jpeg => "JPEG",
            OutFormat::WebP => "WebP",
            OutFormat::Tiff => "TIFF",
            OutFormat::Pam => "PAM",
            OutFormat::Ppm => "PPM",
            OutFormat::Pgm => "PGM",
        }
    }

    /// The largest width or height the format can store, `None` when practically unlimited.
    pub fn max_side(self) -> Option<u32> {
        match self {
            OutFormat::Jpeg => Some(65_535),
            OutFormat::WebP => Some(16_383),
            _ => None,
        }
    }

    /// Checks that a `width × height` image fits the format (JPEG: 65,535 px per side; WebP:
    /// 16,383), so an output that cannot be encoded is refused before any work.
    pub fn check_size(self, width: u64, height: u64) -> std::result::Result<(), String> {
        match self.max_side() {
            Some(max) if width > u64::from(max) || height > u64::from(max) => Err(format!(
                "the {width}x{height} output does not fit {}: it holds at most {max} px per \
                 side; write .png, .tif or .pam",
                self.name()
            )),
            _ => Ok(()),
        }
    }

    /// Whether it stores 16-bit samples.
    pub fn holds_16_bit(self) -> bool {
        matches!(self, OutFormat::Png | OutFormat::Tiff | OutFormat::Pam)
    }

    /// Whether it stores an alpha channel with `color`.
    pub fn holds_alpha(self, color: ColorKind) -> bool {
        match self {
            OutFormat::Png | OutFormat::WebP | OutFormat::Pam => true,
            OutFormat::Tiff => color == ColorKind::Rgb,
            OutFormat::Jpeg | OutFormat::Ppm | OutFormat::Pgm => false,
        }
    }

    /// Checks that this format holds an image of `color`, with `alpha`, at `depth` without loss;
    /// the message names what would be lost and the formats that keep it.
    pub fn check_holds(
        self,
        color: ColorKind,
        alpha: bool,
        depth: BitDepth,
    ) -> std::result::Result<(), String> {
        let kind = match color {
            ColorKind::Gray => "gray",
            ColorKind::Rgb => "RGB",
        };
        if !self.holds_color(color) {
            return Err(format!(
                "{} cannot hold a {kind} image; write .png or .pam",
                self.name()
            ));
        }
        let mut lost = Vec::new();
        if alpha && !self.holds_alpha(color) {
            lost.push("the alpha channel");
        }
        if depth == BitDepth::Sixteen && !self.holds_16_bit() {
            lost.push("16-bit depth");
        }
        if lost.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{} would lose {} of this {}-bit {kind}{} image; write .png (or .tif / .pam) to \
                 keep it",
                self.name(),
                lost.join(" and "),
                depth.bits(),
                if alpha { "+alpha" } else { "" },
            ))
        }
    }
    /// Whether it stores an image of `color` (PPM: RGB only; PGM: gray only).
    pub fn holds_color(self, color: ColorKind) -> bool {
        match self {
            OutFormat::Ppm => color == ColorKind::Rgb,
            OutFormat::Pgm => color == ColorKind::Gray,
            _ => true,
        }
    }
}

impl OutFormat {
    /// The format of `path`'s extension, or [`Error::UnsupportedFormat`] naming it.
    fn for_path(path: &Path) -> Result<Self> {
        Self::from_path(path).ok_or_else(|| {
            let ext = path
                .extension()
                .map(|e| e.to_string_lossy().to_ascii_lowercase())
                .unwrap_or_default();
            Error::UnsupportedFormat {
                path: path.to_path_buf(),
                format: format!(
                    "{} (write .png, .tif/.tiff, .pam/.pnm, .ppm, .pgm, .webp or .jpg/.jpeg)",
                    if ext.is_empty() {
                        "no file extension".to_string()
                    } else {
                        format!("extension `{ext}`")
                    }
                ),
            }
        })
    }

    /// The alpha and bit depth to write, or the error that refuses a lossy save.
    fn fit<'a>(
        self,
        path: &Path,
        color: ColorKind,
        alpha: Option<&'a Planar>,
        bit_depth: BitDepth,
        allow_lossy: bool,
    ) -> Result<(Option<&'a Planar>, BitDepth)> {
        let kind = match color {
            ColorKind::Gray => "gray",
            ColorKind::Rgb => "RGB",
        };
        let depth = format!("{}-bit", bit_depth.bits());
        if !self.holds_color(color) {
            return Err(Error::UnsupportedFormat {
                path: path.to_path_buf(),
                format: format!(
                    "{kind} image in {} ({} holds only {}; use .png or .pam)",
                    self.name(),
                    self.name(),
                    if self == OutFormat::Ppm {
                        "RGB"
                    } else {
                        "gray"
                    },
                ),
            });
        }
        let alpha_given = alpha.is_some();
        let mut lost = Vec::new();
        let alpha = match alpha {
            Some(_) if !self.holds_alpha(color) => {
                lost.push("alpha");
                None
            }
            a => a,
        };
        let bit_depth = if bit_depth == BitDepth::Sixteen && !self.holds_16_bit() {
            lost.push("16-bit depth");
            BitDepth::Eight
        } else {
            bit_depth
        };
        if !lost.is_empty() && !allow_lossy {
            return Err(Error::UnsupportedFormat {
                path: path.to_path_buf(),
                format: format!(
                    "{depth} {kind} image{} in {}: {} would lose the {}; use .png or .pam, or \
                     SaveOptions {{ allow_lossy: true, .. }} to quantise to 8 bits / drop alpha",
                    if alpha_given { " with alpha" } else { "" },
                    self.name(),
                    self.name(),
                    lost.join(" and "),
                ),
            });
        }
        Ok((alpha, bit_depth))
    }
}

fn encode(
    img: &DynamicImage,
    target: OutFormat,
    options: SaveOptions,
    path: &Path,
) -> Result<Vec<u8>> {
    let mut buf = Cursor::new(Vec::new());
    let res = match target {
        OutFormat::Png => img.write_to(&mut buf, ImageFormat::Png),
        OutFormat::Tiff => img.write_to(&mut buf, ImageFormat::Tiff),
        OutFormat::WebP => img.write_to(&mut buf, ImageFormat::WebP),
        OutFormat::Pam => img.write_to(&mut buf, ImageFormat::Pnm),
        OutFormat::Jpeg => img.write_with_encoder(JpegEncoder::new_with_quality(
            &mut buf,
            options.jpeg_quality.clamp(1, 100),
        )),
        OutFormat::Ppm => img.write_with_encoder(
            PnmEncoder::new(&mut buf).with_subtype(PnmSubtype::Pixmap(SampleEncoding::Binary)),
        ),
        OutFormat::Pgm => img.write_with_encoder(
            PnmEncoder::new(&mut buf).with_subtype(PnmSubtype::Graymap(SampleEncoding::Binary)),
        ),
    };
    res.map_err(|e| Error::Image {
        path: path.to_path_buf(),
        message: format!("encoding {}: {e}", target.name()),
    })?;
    Ok(buf.into_inner())
}

/// Quantises a [0, 1] image to 8 bits (`clamp(round_half_even(v · 255), 0, 255)`) and
/// interleaves it (HWC, the layout of image files and `.npy` vectors). Fails on NaN/∞.
pub fn planar_to_u8_hwc(img: &Planar) -> Result<Vec<u8>> {
    img.check_finite("image to quantise")?;
    Ok(img.to_hwc().into_iter().map(quantize_u8).collect())
}

/// Builds a [0, 1] [`Planar`] (`v / 255`) from interleaved 8-bit HWC data.
pub fn u8_hwc_to_planar(
    channels: usize,
    height: usize,
    width: usize,
    hwc: &[u8],
) -> Result<Planar> {
    let f: Vec<f32> = hwc.iter().map(|v| f32::from(*v) / 255.0).collect();
    Planar::from_hwc(channels, height, width, &f)
}
