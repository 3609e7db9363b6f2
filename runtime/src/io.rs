//! Image files for the CLI: guarded decoding (dimensions checked from the header before any
//! pixel is decoded), EXIF orientation, ICC profile and EXIF pass-through, and atomic writes.
//!
//! # Reading ([`read_image`], [`read_image_bytes`])
//! PNG, JPEG, WebP, TIFF and PNM/PAM, the format guessed from the content. The header's
//! dimensions are checked first: 0×0 is refused, and more than [`ReadOptions::max_pixels`]
//! pixels is refused before decoding (decompression bombs); the decoder also runs under
//! `image::Limits` (allocation cap). The EXIF orientation is applied to the pixels and then reset
//! to 1 in the kept EXIF block, so viewers do not rotate the result again. Pixel values are taken
//! as stored (no colour management); the ICC profile is carried to the output instead.
//!
//! # Writing ([`write_image`], [`encode_image`])
//! The format comes from the extension or `--format`. What each format keeps:
//!
//! | format | 16-bit | alpha | ICC | EXIF |
//! | --- | --- | --- | --- | --- |
//! | PNG | yes | yes | yes (`iCCP`) | yes (`eXIf`) |
//! | JPEG | no | no | yes (APP2) | yes (APP1) |
//! | WebP (lossless) | no | yes | yes | yes |
//! | TIFF | yes | RGB only | no | no |
//! | PAM/PNM, PPM, PGM | PAM only | PAM only | no | no |
//!
//! A format that cannot hold the image's bit depth or alpha is refused before any work is done
//! (nothing is silently lost); metadata a format cannot hold is dropped and reported in
//! [`MetadataReport`]. Files are encoded into a temporary file in the target's folder (removed on
//! any failure), synced and renamed over the target, so a target never holds a partial image.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Cursor, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::codecs::pnm::{PnmEncoder, PnmSubtype, SampleEncoding};
use image::codecs::tiff::TiffEncoder;
use image::codecs::webp::{WebPDecoder, WebPEncoder};
use image::metadata::Orientation;
use image::{DynamicImage, ExtendedColorType, ImageDecoder, ImageEncoder, ImageReader, Limits};
use kdsr_core::container;
pub use kdsr_core::io::OutFormat;
use kdsr_core::io::{BitDepth, ColorKind, LoadedImage, from_dynamic};

use crate::error::{Error, Result};

/// Default for [`ReadOptions::max_pixels`]: 40 megapixels (an LR image that large is a
/// 640-megapixel output at ×4).
pub const DEFAULT_MAX_PIXELS: u64 = 40_000_000;

/// How images are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadOptions {
    /// Largest `width × height` accepted, checked from the header before decoding.
    pub max_pixels: u64,
    /// Accept a JPEG that ends before its end-of-image marker (the decoder fills the missing
    /// part grey). Default `false`: such a file is refused as truncated.
    pub allow_truncated: bool,
}

impl Default for ReadOptions {
    fn default() -> Self {
        Self {
            max_pixels: DEFAULT_MAX_PIXELS,
            allow_truncated: false,
        }
    }
}

/// A decoded input image and what travels with it.
#[derive(Clone, Debug)]
pub struct InputImage {
    /// Pixels (orientation applied), colour planes and alpha.
    pub image: LoadedImage,
    /// The container format.
    pub format: image::ImageFormat,
    /// The embedded ICC profile.
    pub icc: Option<Vec<u8>>,
    /// The EXIF block (orientation reset to 1 when it was applied).
    pub exif: Option<Vec<u8>>,
    /// The EXIF orientation that was applied to the pixels.
    pub orientation: Orientation,
}

/// What an image file's header says, read before any pixel is decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageHeader {
    /// Width after the EXIF orientation (what the decoded image will have).
    pub width: u32,
    /// Height after the EXIF orientation.
    pub height: u32,
    /// The container format.
    pub format: image::ImageFormat,
    /// Gray or RGB, `None` for a pixel type the runtime does not read (refused on decoding).
    pub color: Option<ColorKind>,
    /// Whether the image has an alpha channel.
    pub alpha: bool,
    /// 8 or 16 bits, `None` for a pixel type the runtime does not read.
    pub bit_depth: Option<BitDepth>,
}

/// An image whose header has been read and checked, not yet decoded ([`open_image`]): callers
/// check what the header implies (output size, memory) before paying for decoding.
pub struct PendingImage {
    decoder: Box<dyn ImageDecoder>,
    header: ImageHeader,
    path: PathBuf,
}

impl std::fmt::Debug for PendingImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingImage")
            .field("header", &self.header)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl PendingImage {
    /// The header.
    pub fn header(&self) -> &ImageHeader {
        &self.header
    }

    /// Decodes the pixels. Errors: [`Error::Input`] naming the file.
    pub fn decode(self) -> Result<InputImage> {
        let (path, format) = (self.path.clone(), self.header.format);
        guarded(&path, format!("{format:?} decoder"), || {
            self.decode_unguarded()
        })
    }

    fn decode_unguarded(self) -> Result<InputImage> {
        let path = self.path;
        let bad = |m: String| Error::input(&path, m);
        let format = self.header.format;
        let mut decoder = self.decoder;
        let icc = decoder.icc_profile().ok().flatten();
        let exif = decoder.exif_metadata().ok().flatten();
        let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
        let mut img = DynamicImage::from_decoder(decoder)
            .map_err(|e| bad(format!("corrupt or truncated {format:?} file: {e}")))?;
        img.apply_orientation(orientation);
        let exif = exif.map(|mut e| {
            let _ = Orientation::remove_from_exif_chunk(&mut e);
            e
        });
        let image = from_dynamic(&img).map_err(|e| bad(unprefixed(&e.to_string())))?;
        Ok(InputImage {
            image,
            format,
            icc,
            exif,
            orientation,
        })
    }
}

/// Reads and decodes the image file at `path` (see the [module docs](self)).
/// Errors: [`Error::Input`] naming `path`.
pub fn read_image(path: &Path, options: ReadOptions) -> Result<InputImage> {
    open_image(path, options)?.decode()
}

/// Decodes an image held in memory (e.g. read from stdin); `name` labels errors.
pub fn read_image_bytes(bytes: &[u8], name: &Path, options: ReadOptions) -> Result<InputImage> {
    open_image_bytes(bytes.to_vec(), name, options)?.decode()
}

/// Opens the image file at `path` and reads and checks its header without decoding pixels (see
/// the [module docs](self)). Errors: [`Error::Input`] naming `path`.
pub fn open_image(path: &Path, options: ReadOptions) -> Result<PendingImage> {
    let file = File::open(path).map_err(|e| Error::input(path, format!("cannot open: {e}")))?;
    open(BufReader::new(file), path, options)
}

/// [`open_image`] for an image held in memory; `name` labels errors.
pub fn open_image_bytes(bytes: Vec<u8>, name: &Path, options: ReadOptions) -> Result<PendingImage> {
    open(Cursor::new(bytes), name, options)
}

/// The message for animated and multi-frame inputs, the same for every format.
fn multi_frame(what: &str) -> String {
    format!(
        "animated/multi-frame input ({what}): kdsr-edge upscales one still image and does not \
         pick a frame for you; extract the frame you want (e.g. to PNG) and upscale that"
    )
}

/// Runs `f`, turning a panic into [`Error::Input`] naming `path`: the decoders of the `image`
/// crate's dependencies panic on some corrupt files (tiff 0.10.3 indexing an empty strip table
/// while reading a header, zune-jpeg 0.5.15 unwrapping in its AVX2 IDCT), found by the `image`
/// fuzz target (`runtime/examples/fuzz`, inputs in `runtime/fuzz/regressions/`). Without this a
/// folder run died at such a file instead of listing it and going on.
fn guarded<T>(path: &Path, what: String, f: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        let msg = crate::error::panic_message(payload.as_ref());
        Err(Error::input(
            path,
            format!("corrupt file: the {what} failed on it ({msg})"),
        ))
    })
}

fn open<R: BufRead + Seek + 'static>(
    reader: R,
    path: &Path,
    options: ReadOptions,
) -> Result<PendingImage> {
    guarded(path, "image decoder".to_owned(), || {
        open_unguarded(reader, path, options)
    })
}

fn open_unguarded<R: BufRead + Seek + 'static>(
    reader: R,
    path: &Path,
    options: ReadOptions,
) -> Result<PendingImage> {
    let bad = |m: String| Error::input(path, m);
    let guessed = ImageReader::new(reader)
        .with_guessed_format()
        .map_err(|e| bad(format!("cannot read: {e}")))?;
    let format = match guessed.format() {
        Some(image::ImageFormat::Gif) => {
            return Err(bad(multi_frame(
                "GIF, a format kdsr-edge does not read; GIF files are mostly animations",
            )));
        }
        Some(f) => f,
        None => {
            return Err(bad(
                "not an image in a known format (PNG, JPEG, WebP, TIFF, PNM/PAM)".into(),
            ));
        }
    };
    let mut inner = guessed.into_inner();
    let rewind = |r: &mut R| {
        r.seek(SeekFrom::Start(0))
            .map(|_| ())
            .map_err(|e| bad(format!("cannot read: {e}")))
    };
    match format {
        image::ImageFormat::WebP => {
            let animated = WebPDecoder::new(&mut inner)
                .map_err(|e| bad(format!("corrupt or truncated WebP file: {e}")))?
                .has_animation();
            if animated {
                return Err(bad(multi_frame("animated WebP")));
            }
        }
        image::ImageFormat::Tiff => {
            if let Ok(n) = container::tiff_pages(&mut inner)
                && n > 1
            {
                return Err(bad(multi_frame("multi-page TIFF")));
            }
        }
        image::ImageFormat::Jpeg if !options.allow_truncated => {
            let end =
                container::jpeg_end(&mut inner).map_err(|e| bad(format!("cannot read: {e}")))?;
            if let container::JpegEnd::Truncated(at) = end {
                return Err(bad(format!(
                    "{}, or pass --allow-truncated to upscale it as it is",
                    container::truncated_jpeg(at)
                )));
            }
        }
        _ => {}
    }
    rewind(&mut inner)?;
    let mut reader = ImageReader::with_format(inner, format);
    let mut limits = Limits::default();
    limits.max_alloc = Some(options.max_pixels.saturating_mul(16).max(64 << 20));
    reader.limits(limits);
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| bad(format!("corrupt or truncated {format:?} file: {e}")))?;
    let (w, h) = decoder.dimensions();
    if w == 0 || h == 0 {
        return Err(bad(format!("empty image ({w}x{h})")));
    }
    let pixels = u64::from(w) * u64::from(h);
    if pixels > options.max_pixels {
        return Err(bad(format!(
            "{w}x{h} = {pixels} pixels exceeds --max-pixels {} (a guard against decompression \
             bombs, checked from the header); raise --max-pixels if the image is genuine",
            options.max_pixels
        )));
    }
    let original = decoder.original_color_type();
    if matches!(
        original,
        ExtendedColorType::Cmyk8 | ExtendedColorType::Cmyk16
    ) {
        return Err(bad(format!(
            "{original:?} is not supported (convert the file to RGB first)"
        )));
    }
    // JPEG's decoder learns the orientation from its EXIF block.
    let _ = decoder.exif_metadata();
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let swapped = matches!(
        orientation,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    );
    let (width, height) = if swapped { (h, w) } else { (w, h) };
    use image::ColorType as C;
    let (color, alpha, bit_depth) = match decoder.color_type() {
        C::L8 => (Some(ColorKind::Gray), false, Some(BitDepth::Eight)),
        C::La8 => (Some(ColorKind::Gray), true, Some(BitDepth::Eight)),
        C::Rgb8 => (Some(ColorKind::Rgb), false, Some(BitDepth::Eight)),
        C::Rgba8 => (Some(ColorKind::Rgb), true, Some(BitDepth::Eight)),
        C::L16 => (Some(ColorKind::Gray), false, Some(BitDepth::Sixteen)),
        C::La16 => (Some(ColorKind::Gray), true, Some(BitDepth::Sixteen)),
        C::Rgb16 => (Some(ColorKind::Rgb), false, Some(BitDepth::Sixteen)),
        C::Rgba16 => (Some(ColorKind::Rgb), true, Some(BitDepth::Sixteen)),
        other => (None, other.has_alpha(), None),
    };
    Ok(PendingImage {
        decoder: Box::new(decoder),
        header: ImageHeader {
            width,
            height,
            format,
            color,
            alpha,
            bit_depth,
        },
        path: path.to_path_buf(),
    })
}

/// `kdsr_core` errors on in-memory images start with `image <memory>: `.
fn unprefixed(msg: &str) -> String {
    msg.strip_prefix("image <memory>: ")
        .unwrap_or(msg)
        .to_owned()
}

/// What happened to one kind of metadata on writing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MetaFate {
    /// The input had none.
    None,
    /// Written into the output.
    Kept,
    /// Dropped because the output format cannot hold it.
    Unsupported,
    /// Dropped on request (`--strip`).
    Stripped,
}

/// What happened to the ICC profile and the EXIF block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct MetadataReport {
    /// ICC profile.
    pub icc: MetaFate,
    /// EXIF block.
    pub exif: MetaFate,
}

/// How outputs are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteOptions {
    /// JPEG quality 1..=100.
    pub jpeg_quality: u8,
    /// Drop ICC and EXIF.
    pub strip: bool,
}

impl Default for WriteOptions {
    fn default() -> Self {
        Self {
            jpeg_quality: 95,
            strip: false,
        }
    }
}

/// Metadata to carry into an output.
#[derive(Clone, Copy, Debug, Default)]
pub struct Metadata<'a> {
    /// ICC profile.
    pub icc: Option<&'a [u8]>,
    /// EXIF block.
    pub exif: Option<&'a [u8]>,
}

fn attach(enc: &mut dyn ImageEncoderMeta, meta: Metadata<'_>, strip: bool) -> MetadataReport {
    let fate = |data: Option<&[u8]>, set: &mut dyn FnMut(Vec<u8>) -> bool| match data {
        None => MetaFate::None,
        Some(_) if strip => MetaFate::Stripped,
        Some(d) => {
            if set(d.to_vec()) {
                MetaFate::Kept
            } else {
                MetaFate::Unsupported
            }
        }
    };
    let icc = fate(meta.icc, &mut |d| enc.icc(d));
    let exif = fate(meta.exif, &mut |d| enc.exif(d));
    MetadataReport { icc, exif }
}

/// Object-safe access to the metadata setters of `image`'s encoders.
trait ImageEncoderMeta {
    fn icc(&mut self, d: Vec<u8>) -> bool;
    fn exif(&mut self, d: Vec<u8>) -> bool;
}

impl<E: ImageEncoder> ImageEncoderMeta for E {
    fn icc(&mut self, d: Vec<u8>) -> bool {
        self.set_icc_profile(d).is_ok()
    }
    fn exif(&mut self, d: Vec<u8>) -> bool {
        self.set_exif_metadata(d).is_ok()
    }
}

/// Encodes `img` as `format` into `w` with the metadata `meta` (see the [module docs](self)).
/// `name` labels errors.
pub fn encode_image<W: Write + Seek>(
    w: &mut W,
    img: &DynamicImage,
    format: OutFormat,
    meta: Metadata<'_>,
    options: WriteOptions,
    name: &Path,
) -> Result<MetadataReport> {
    let enc_err =
        |e: image::ImageError| Error::output(name, format!("encoding {}: {e}", format.name()));
    fn run<E: ImageEncoder>(
        mut enc: E,
        img: &DynamicImage,
        meta: Metadata<'_>,
        strip: bool,
    ) -> std::result::Result<MetadataReport, image::ImageError> {
        let report = attach(&mut enc, meta, strip);
        img.write_with_encoder(enc)?;
        Ok(report)
    }
    let strip = options.strip;
    match format {
        OutFormat::Png => run(PngEncoder::new(&mut *w), img, meta, strip),
        OutFormat::Jpeg => run(
            JpegEncoder::new_with_quality(&mut *w, options.jpeg_quality.clamp(1, 100)),
            img,
            meta,
            strip,
        ),
        OutFormat::WebP => run(WebPEncoder::new_lossless(&mut *w), img, meta, strip),
        OutFormat::Tiff => run(TiffEncoder::new(&mut *w), img, meta, strip),
        OutFormat::Pam => run(
            PnmEncoder::new(&mut *w).with_subtype(PnmSubtype::ArbitraryMap),
            img,
            meta,
            strip,
        ),
        OutFormat::Ppm => run(
            PnmEncoder::new(&mut *w).with_subtype(PnmSubtype::Pixmap(SampleEncoding::Binary)),
            img,
            meta,
            strip,
        ),
        OutFormat::Pgm => run(
            PnmEncoder::new(&mut *w).with_subtype(PnmSubtype::Graymap(SampleEncoding::Binary)),
            img,
            meta,
            strip,
        ),
    }
    .map_err(enc_err)
}

/// Encodes `img` and writes it to `path` atomically (temporary file `.NAME.kdsr-tmp.PID.XXXXXX`
/// in the same folder, synced, renamed; removed on any failure), with mode 0644 on Unix. A
/// process killed while writing leaves the temporary file; `kdsr-edge upscale` removes such files
/// from its output folder when it starts ([`kdsr_core::fsutil::remove_stale_temps`]).
pub fn write_image(
    path: &Path,
    img: &DynamicImage,
    format: OutFormat,
    meta: Metadata<'_>,
    options: WriteOptions,
) -> Result<MetadataReport> {
    let io = |what: &str, e: std::io::Error| Error::output(path, format!("{what}: {e}"));
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| Error::output(path, "not a file path"))?
        .to_string_lossy()
        .into_owned();
    let mut tmp = tempfile::Builder::new()
        .prefix(&kdsr_core::fsutil::temp_prefix(&name))
        .tempfile_in(&dir)
        .map_err(|e| io("cannot create a temporary file in the output folder", e))?;
    let report = {
        let mut bw = BufWriter::new(tmp.as_file_mut());
        let report = encode_image(&mut bw, img, format, meta, options, path)?;
        bw.flush().map_err(|e| io("writing", e))?;
        report
    };
    tmp.as_file().sync_all().map_err(|e| io("syncing", e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644))
            .map_err(|e| io("setting permissions", e))?;
    }
    tmp.persist(path)
        .map_err(|e| io("renaming the temporary file into place", e.error))?;
    Ok(report)
}

pub use kdsr_core::io::IMAGE_EXTENSIONS;

/// The image files of `dir` ([`kdsr_core::io::list_images`]: by extension, case-insensitive, not
/// recursive), sorted by name. Errors: [`Error::Input`] naming `dir` when it cannot be listed.
pub fn list_images(dir: &Path) -> Result<Vec<PathBuf>> {
    kdsr_core::io::list_images(dir).map_err(|e| Error::Input {
        path: dir.to_path_buf(),
        message: match e {
            kdsr_core::Error::Io { source, .. } => format!("cannot list this folder: {source}"),
            e => e.to_string(),
        },
    })
}
