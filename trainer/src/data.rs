//! The classic KDSR training data: HR images from folders, random `P×P` crops with hflip, vflip
//! and transpose (each p = 0.5, applied in that order, as the official `common.augment` does),
//! batched as CPU float32 tensors `[B,3,P,P]` in [0, 1] by worker threads.
//!
//! # Images
//! [`Dataset::open`] lists the image files of each folder (not recursive; extensions `png`, `jpg`,
//! `jpeg`, `bmp`, `webp`, `tif`, `tiff`, `ppm`, `pgm`, `pnm`, `pam`, any case), sorted by path
//! within each folder, folders in the order given. Every file is decoded once with
//! [`kdsr_core::io::load_image`] to check it; files that cannot be read or decoded are skipped with a
//! warning on stderr and listed in [`LoadReport::skipped_unreadable`] (the `image` build has no BMP
//! decoder, so `.bmp` files land there with the decoder's reason). Images smaller than `min_size`
//! in either dimension are skipped with a warning and counted in [`LoadReport::skipped_small`].
//!
//! Pixels are kept as 8-bit RGB ([`RgbU8`], HWC): gray images are replicated to R, G and B, an
//! alpha plane is ignored (the stored colour values are used, not composited), and **16-bit images
//! are quantised to 8 bits** (`round_half_even(v · 255)`), the precision the official pipeline
//! trains at.
//!
//! # Cache
//! When the decoded images of the dataset (`3·H·W` bytes each) fit in `cache_mib` MiB in total,
//! they are all kept in memory ([`Dataset::is_cached`]). Otherwise only the paths and sizes are
//! kept and the workers decode each image a batch needs when they build that batch (once per batch
//! for an image drawn several times); this is much slower, and a file that changes or vanishes
//! after [`Dataset::open`] surfaces as an error from [`Loader::next`] naming it. Both modes give the
//! same batches.
//!
//! # Determinism
//! The batch of iteration `i` depends only on `(seed, i)` and the file list: its generator is
//! [`Xoshiro256PlusPlus`] (a portable generator: its output is fixed across `rand` versions and
//! platforms) seeded with [`iteration_seed`]`(seed, i)`, and all draws are made from its raw `u64`
//! output ([`uniform_below`], [`coin`]), not through `rand`'s non-portable distributions. For each
//! of the `B` samples in turn it draws the image index uniformly **with replacement** (the official
//! code walks a shuffled, repeated file list instead; drawing with replacement has the same
//! marginal distribution and makes resuming at any iteration exact without saving RNG state), then
//! the crop (`top`, `left`) and the three flips ([`Augment::draw`]). A run resumed at iteration `k`
//! therefore sees exactly the batches an uninterrupted run sees.
//!
//! # Workers
//! [`Loader::start`] spawns `workers` threads that build whole batches; [`Loader::next`] returns them
//! strictly in iteration order whatever the thread timing. At most `workers + prefetch` batches
//! exist at once (being built or waiting), so memory stays bounded. Dropping the [`Loader`] stops
//! the threads (they check a stop flag between samples) and joins them.
//!
//! Workers never call libtorch: they fill plain `Vec<f32>`s and [`Loader::next`] makes the tensor
//! on the training thread. A libtorch op on a worker (even the parallel zero-fill inside
//! `Tensor::from_slice`) gives that thread an OpenMP team of its own; libgomp, then managing more
//! threads than there are cores, stops spin-waiting between parallel regions for every team,
//! and each of the training step's thousands of ops pays a futex wake-up. Measured on the 2-core
//! CI machine with `trainer/examples/step_profile.rs` while such a loader merely existed (its
//! workers idle): 3.6 it/s instead of 4.3 on teacher-edge, batch 8, patch 192.

use std::collections::BTreeMap;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use anyhow::{Context, Result, anyhow, bail, ensure};
use crossbeam_channel::{Receiver, Sender};
use kdsr_core::io::{LoadedImage, load_image};
use kdsr_core::pipeline::quantize_u8;
use rand::rngs::Xoshiro256PlusPlus;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use tch::Tensor;

/// File extensions (lower case) listed as training images: kdsr-core's one list, the formats its
/// decoder reads.
pub use kdsr_core::io::IMAGE_EXTENSIONS;

/// An 8-bit RGB image, interleaved (HWC): `data[(y·width + x)·3 + c]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RgbU8 {
    width: usize,
    height: usize,
    data: Vec<u8>,
}

impl RgbU8 {
    /// Wraps HWC RGB bytes; fails unless `data.len() == 3·height·width` and both sides are > 0.
    pub fn new(width: usize, height: usize, data: Vec<u8>) -> Result<Self> {
        ensure!(
            width > 0 && height > 0,
            "RGB image is empty ({width}x{height})"
        );
        ensure!(
            data.len() == 3 * width * height,
            "RGB image {width}x{height} needs {} bytes, got {}",
            3 * width * height,
            data.len()
        );
        Ok(Self {
            width,
            height,
            data,
        })
    }

    /// Converts a decoded image: gray is replicated to RGB, alpha is ignored, values are
    /// quantised to 8 bits with `round_half_even(v · 255)` (exact for 8-bit files, a quantisation
    /// for 16-bit ones).
    pub fn from_loaded(img: &LoadedImage) -> Result<Self> {
        let rgb = &img.rgb;
        let (h, w) = (rgb.height(), rgb.width());
        let n = h * w;
        let planes: [&[f32]; 3] = match rgb.channels() {
            1 => [rgb.plane(0), rgb.plane(0), rgb.plane(0)],
            3 => [rgb.plane(0), rgb.plane(1), rgb.plane(2)],
            c => bail!("image with {c} colour channels (expected 1 or 3)"),
        };
        let mut data = vec![0u8; 3 * n];
        for (c, plane) in planes.iter().enumerate() {
            for (i, v) in plane.iter().enumerate() {
                data[3 * i + c] = quantize_u8(*v);
            }
        }
        Self::new(w, h, data)
    }

    /// Decodes `path` with [`load_image`] and converts it with [`RgbU8::from_loaded`].
    pub fn load(path: &Path) -> Result<Self> {
        let img = load_image(path)?;
        Self::from_loaded(&img).with_context(|| format!("converting {}", path.display()))
    }

    /// Columns.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Rows.
    pub fn height(&self) -> usize {
        self.height
    }

    /// The HWC bytes.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The byte at row `y`, column `x`, channel `c` (panics out of range).
    pub fn at(&self, y: usize, x: usize, c: usize) -> u8 {
        self.data[(y * self.width + x) * 3 + c]
    }
}

/// One sample's crop and flips, as [`Augment::draw`] draws them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Augment {
    /// First row of the crop.
    pub top: usize,
    /// First column of the crop.
    pub left: usize,
    /// Mirror left–right (applied first).
    pub hflip: bool,
    /// Mirror top–bottom (applied second).
    pub vflip: bool,
    /// Swap rows and columns (applied last).
    pub transpose: bool,
}

impl Augment {
    /// Draws, in this order, `top ~ U{0..=height−patch}`, `left ~ U{0..=width−patch}`, then hflip,
    /// vflip and transpose, each a fair [`coin`]. Fails if the image is smaller than `patch` or
    /// `patch` is 0.
    pub fn draw<R: Rng + ?Sized>(
        rng: &mut R,
        height: usize,
        width: usize,
        patch: usize,
    ) -> Result<Self> {
        ensure!(patch > 0, "patch size must be > 0");
        ensure!(
            height >= patch && width >= patch,
            "image {width}x{height} is smaller than the {patch}x{patch} crop"
        );
        let top = uniform_below(rng, (height - patch + 1) as u64) as usize;
        let left = uniform_below(rng, (width - patch + 1) as u64) as usize;
        let hflip = coin(rng);
        let vflip = coin(rng);
        let transpose = coin(rng);
        Ok(Self {
            top,
            left,
            hflip,
            vflip,
            transpose,
        })
    }

    /// The source pixel `(row, column)` in the full image of output pixel `(y, x)` of a
    /// `patch × patch` crop: with crop `C[r][c] = img[top + r][left + c]`, hflip
    /// `H[r][c] = C[r][P−1−c]`, vflip `V[r][c] = H[P−1−r][c]`, transpose `T[r][c] = V[c][r]`.
    pub fn source(&self, patch: usize, y: usize, x: usize) -> (usize, usize) {
        let (mut sy, mut sx) = if self.transpose { (x, y) } else { (y, x) };
        if self.vflip {
            sy = patch - 1 - sy;
        }
        if self.hflip {
            sx = patch - 1 - sx;
        }
        (self.top + sy, self.left + sx)
    }
}

/// Writes the augmented `patch × patch` crop of `img` into `out` as CHW float32 in [0, 1]
/// (`v / 255`); `out.len()` must be `3·patch²`. Fails if the crop does not fit in the image.
pub fn apply_augment(img: &RgbU8, aug: &Augment, patch: usize, out: &mut [f32]) -> Result<()> {
    let p = patch;
    ensure!(p > 0, "patch size must be > 0");
    ensure!(
        out.len() == 3 * p * p,
        "crop buffer has {} values, a 3x{p}x{p} crop needs {}",
        out.len(),
        3 * p * p
    );
    ensure!(
        aug.top + p <= img.height && aug.left + p <= img.width,
        "crop {p}x{p} at ({}, {}) does not fit in image {}x{}",
        aug.top,
        aug.left,
        img.width,
        img.height
    );
    let lut = u8_lut();
    let w = img.width as isize;
    // Steps (in bytes of the HWC image) of one source column and one source row, negative when
    // flipped; an output row runs along source columns, or along source rows when transposed.
    let col = if aug.hflip { -3 } else { 3 };
    let row = if aug.vflip { -3 * w } else { 3 * w };
    let (x_step, y_step) = if aug.transpose {
        (row, col)
    } else {
        (col, row)
    };
    let (r0, c0) = aug.source(p, 0, 0);
    let base = (r0 as isize * w + c0 as isize) * 3;
    let src = &img.data;
    let (red, rest) = out.split_at_mut(p * p);
    let (green, blue) = rest.split_at_mut(p * p);
    for y in 0..p {
        let row_base = base + y as isize * y_step;
        let (r, g, b) = (
            &mut red[y * p..(y + 1) * p],
            &mut green[y * p..(y + 1) * p],
            &mut blue[y * p..(y + 1) * p],
        );
        for x in 0..p {
            // In range: `aug.source` maps every (y, x) inside the checked crop.
            let o = (row_base + x as isize * x_step) as usize;
            r[x] = lut[usize::from(src[o])];
            g[x] = lut[usize::from(src[o + 1])];
            b[x] = lut[usize::from(src[o + 2])];
        }
    }
    Ok(())
}

/// Draws an [`Augment`] for `img` from `rng` and returns the augmented crop as CHW float32
/// `[3, patch, patch]` in [0, 1].
pub fn crop_augment<R: Rng + ?Sized>(img: &RgbU8, rng: &mut R, patch: usize) -> Result<Vec<f32>> {
    let aug = Augment::draw(rng, img.height, img.width, patch)?;
    let mut out = vec![0.0f32; 3 * patch * patch];
    apply_augment(img, &aug, patch, &mut out)?;
    Ok(out)
}

/// `v / 255` for every byte value.
fn u8_lut() -> [f32; 256] {
    let mut lut = [0.0f32; 256];
    for (i, v) in lut.iter_mut().enumerate() {
        *v = i as f32 / 255.0;
    }
    lut
}

/// SplitMix64's output function.
fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The generator seed of iteration `iter` under run seed `seed`: two SplitMix64 rounds,
/// `splitmix64(seed ^ splitmix64(iter))`, so nearby `(seed, iter)` pairs give unrelated streams.
pub fn iteration_seed(seed: u64, iter: u64) -> u64 {
    splitmix64(seed ^ splitmix64(iter))
}

/// The generator of iteration `iter`: [`Xoshiro256PlusPlus`] seeded with [`iteration_seed`].
pub fn iteration_rng(seed: u64, iter: u64) -> Xoshiro256PlusPlus {
    Xoshiro256PlusPlus::seed_from_u64(iteration_seed(seed, iter))
}

/// A uniform integer in `0..n` (`n ≥ 1`; 0 gives 0), unbiased (Lemire's multiply-and-reject on
/// `next_u64`), so it depends only on the generator's raw output.
pub fn uniform_below<R: Rng + ?Sized>(rng: &mut R, n: u64) -> u64 {
    if n <= 1 {
        return 0;
    }
    let mut m = u128::from(rng.next_u64()) * u128::from(n);
    if (m as u64) < n {
        let threshold = n.wrapping_neg() % n;
        while (m as u64) < threshold {
            m = u128::from(rng.next_u64()) * u128::from(n);
        }
    }
    (m >> 64) as u64
}

/// A fair coin: the top bit of `next_u64`.
pub fn coin<R: Rng + ?Sized>(rng: &mut R) -> bool {
    rng.next_u64() >> 63 == 1
}

/// What [`Dataset::open`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Images in the dataset.
    pub used: usize,
    /// Files that could not be read or decoded, with the reason.
    pub skipped_unreadable: Vec<(PathBuf, String)>,
    /// Images smaller than `min_size` in either dimension.
    pub skipped_small: usize,
    /// Whether the decoded images are kept in memory.
    pub cached: bool,
    /// Size of the decoded images (`3·H·W` bytes each) of the dataset.
    pub decoded_bytes: u64,
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} training images ({:.1} MiB decoded, {}), skipped {} unreadable and {} too small",
            self.used,
            self.decoded_bytes as f64 / MIB as f64,
            if self.cached {
                "cached in memory"
            } else {
                "decoded on demand"
            },
            self.skipped_unreadable.len(),
            self.skipped_small
        )
    }
}

const MIB: u64 = 1 << 20;

/// One image of the dataset.
#[derive(Debug)]
struct Entry {
    path: PathBuf,
    width: usize,
    height: usize,
    /// The pixels when the dataset is cached.
    pixels: Option<RgbU8>,
}

/// One sample of a batch: which image and how it is cropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SamplePlan {
    /// Index of the image in the dataset.
    pub image: usize,
    /// Its crop and flips.
    pub augment: Augment,
}

/// A batch's pixels as a worker builds them, `[B,3,P,P]` in [0, 1].
#[derive(Debug)]
struct RawBatch {
    iter: u64,
    pixels: Vec<f32>,
    batch: usize,
    patch: usize,
}

impl RawBatch {
    /// The tensor, made on the calling thread (see the [module docs](self) on why not a worker).
    fn into_batch(self) -> Batch {
        let (b, p) = (self.batch as i64, self.patch as i64);
        Batch {
            iter: self.iter,
            hr: Tensor::from_slice(&self.pixels).reshape([b, 3, p, p]),
        }
    }
}

/// A batch of HR crops.
#[derive(Debug)]
pub struct Batch {
    /// The iteration it belongs to.
    pub iter: u64,
    /// `[B,3,P,P]` float32 on the CPU, in [0, 1].
    pub hr: Tensor,
}

/// The training images (see the [module docs](self)).
#[derive(Debug)]
pub struct Dataset {
    entries: Vec<Entry>,
    cached: bool,
}

/// Outcome of checking one listed file.
enum Probe {
    Small,
    Bad(String),
    Ok(usize, usize, Option<RgbU8>),
}

impl Dataset {
    /// Lists and checks the images of `dirs` (see the [module docs](self)), skipping images under
    /// `min_size` in either dimension and unreadable files (both with a warning on stderr), and
    /// keeps them decoded in memory when they fit in `cache_mib` MiB.
    ///
    /// Errors: a folder that does not exist or cannot be listed (named); no usable image at all.
    pub fn open(dirs: &[PathBuf], min_size: usize, cache_mib: usize) -> Result<(Self, LoadReport)> {
        ensure!(!dirs.is_empty(), "no training image folders given");
        let mut files = Vec::new();
        for dir in dirs {
            files.extend(list_images(dir)?);
        }
        // Pass 1: the sizes from the headers (cheap), to skip small images and size the cache.
        let headers: Vec<Result<(usize, usize), String>> =
            files.par_iter().map(|p| header_size(p)).collect();
        let decoded_bytes: u64 = headers
            .iter()
            .filter_map(|h| h.as_ref().ok())
            .filter(|(w, h)| *w >= min_size && *h >= min_size)
            .map(|(w, h)| 3 * (*w as u64) * (*h as u64))
            .sum();
        let cached = decoded_bytes <= (cache_mib as u64).saturating_mul(MIB);
        // Pass 2: decode each remaining file once, to check it (and keep it when cached).
        let probes: Vec<Probe> = files
            .par_iter()
            .zip(headers.par_iter())
            .map(|(path, header)| match header {
                Err(e) => Probe::Bad(e.clone()),
                Ok((w, h)) if *w < min_size || *h < min_size => Probe::Small,
                &Ok((w, h)) => match RgbU8::load(path) {
                    Err(e) => Probe::Bad(format!("{e:#}")),
                    Ok(img) if (img.width, img.height) != (w, h) => Probe::Bad(format!(
                        "decoded size {}x{} differs from the header's {w}x{h}",
                        img.width, img.height
                    )),
                    Ok(img) => Probe::Ok(w, h, cached.then_some(img)),
                },
            })
            .collect();
        let mut report = LoadReport {
            cached,
            ..LoadReport::default()
        };
        let mut entries = Vec::new();
        for (path, probe) in files.into_iter().zip(probes) {
            match probe {
                Probe::Small => {
                    eprintln!(
                        "warning: skipping {}: smaller than {min_size}x{min_size}",
                        path.display()
                    );
                    report.skipped_small += 1;
                }
                Probe::Bad(reason) => {
                    eprintln!("warning: skipping unreadable {}: {reason}", path.display());
                    report.skipped_unreadable.push((path, reason));
                }
                Probe::Ok(width, height, pixels) => {
                    report.decoded_bytes += 3 * width as u64 * height as u64;
                    entries.push(Entry {
                        path,
                        width,
                        height,
                        pixels,
                    });
                }
            }
        }
        report.used = entries.len();
        if entries.is_empty() {
            let names: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
            bail!(
                "no usable images in {} ({} unreadable, {} smaller than {min_size}x{min_size})",
                names.join(", "),
                report.skipped_unreadable.len(),
                report.skipped_small
            );
        }
        Ok((Self { entries, cached }, report))
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no images (never true for an opened dataset).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether the decoded images are kept in memory.
    pub fn is_cached(&self) -> bool {
        self.cached
    }

    /// The file of image `index`.
    pub fn path(&self, index: usize) -> &Path {
        &self.entries[index].path
    }

    /// `(width, height)` of image `index`.
    pub fn size(&self, index: usize) -> (usize, usize) {
        let e = &self.entries[index];
        (e.width, e.height)
    }

    /// The smallest width and height over all images.
    pub fn min_size(&self) -> (usize, usize) {
        let w = self.entries.iter().map(|e| e.width).min().unwrap_or(0);
        let h = self.entries.iter().map(|e| e.height).min().unwrap_or(0);
        (w, h)
    }

    /// The samples of iteration `iter`: for each of the `batch` samples in turn, an image index
    /// uniform over the dataset (with replacement), then its [`Augment::draw`], all from
    /// [`iteration_rng`]`(seed, iter)`.
    pub fn plan(
        &self,
        seed: u64,
        iter: u64,
        batch: usize,
        patch: usize,
    ) -> Result<Vec<SamplePlan>> {
        ensure!(batch > 0, "batch size must be > 0");
        ensure!(!self.entries.is_empty(), "the dataset is empty");
        let mut rng = iteration_rng(seed, iter);
        (0..batch)
            .map(|_| {
                let image = uniform_below(&mut rng, self.entries.len() as u64) as usize;
                let e = &self.entries[image];
                let augment = Augment::draw(&mut rng, e.height, e.width, patch)
                    .with_context(|| format!("training image {}", e.path.display()))?;
                Ok(SamplePlan { image, augment })
            })
            .collect()
    }

    /// Builds the batch of iteration `iter` (what [`Loader`] delivers for it), on this thread.
    pub fn batch(&self, seed: u64, iter: u64, batch: usize, patch: usize) -> Result<Batch> {
        self.make_batch(seed, iter, batch, patch, None)
            .map(RawBatch::into_batch)
    }

    /// The pixels of the batch of `iter` (no libtorch call: safe on a worker thread); stops
    /// early with an error when `stop` is set.
    fn make_batch(
        &self,
        seed: u64,
        iter: u64,
        batch: usize,
        patch: usize,
        stop: Option<&AtomicBool>,
    ) -> Result<RawBatch> {
        let plan = self.plan(seed, iter, batch, patch)?;
        let n = 3 * patch * patch;
        let mut out = vec![0.0f32; batch * n];
        let stopped = || stop.is_some_and(|s| s.load(Ordering::Relaxed));
        if self.cached {
            for (s, sample) in plan.iter().enumerate() {
                if stopped() {
                    bail!("data loader stopped");
                }
                let e = &self.entries[sample.image];
                let img = e
                    .pixels
                    .as_ref()
                    .ok_or_else(|| anyhow!("image {} is not cached", e.path.display()))?;
                apply_augment(img, &sample.augment, patch, &mut out[s * n..(s + 1) * n])?;
            }
        } else {
            // Decode each distinct image once, in index order, and crop all its samples.
            let mut order: Vec<usize> = (0..plan.len()).collect();
            order.sort_by_key(|&s| plan[s].image);
            let mut current: Option<(usize, RgbU8)> = None;
            for s in order {
                if stopped() {
                    bail!("data loader stopped");
                }
                let sample = &plan[s];
                if current.as_ref().is_none_or(|(i, _)| *i != sample.image) {
                    let e = &self.entries[sample.image];
                    let img = RgbU8::load(&e.path).with_context(|| {
                        format!(
                            "iteration {iter}: decoding training image {}",
                            e.path.display()
                        )
                    })?;
                    ensure!(
                        (img.width, img.height) == (e.width, e.height),
                        "iteration {iter}: training image {} is now {}x{}, was {}x{} when the \
                         dataset was opened",
                        e.path.display(),
                        img.width,
                        img.height,
                        e.width,
                        e.height
                    );
                    current = Some((sample.image, img));
                }
                let img = current
                    .as_ref()
                    .map(|(_, img)| img)
                    .ok_or_else(|| anyhow!("no decoded image"))?;
                apply_augment(img, &sample.augment, patch, &mut out[s * n..(s + 1) * n])?;
            }
        }
        Ok(RawBatch {
            iter,
            pixels: out,
            batch,
            patch,
        })
    }
}

/// The image files directly in `dir`, sorted by path ([`kdsr_core::io::list_images`]).
fn list_images(dir: &Path) -> Result<Vec<PathBuf>> {
    ensure!(
        dir.is_dir(),
        "training image folder {} does not exist or is not a folder",
        dir.display()
    );
    kdsr_core::io::list_images(dir)
        .with_context(|| format!("listing training image folder {}", dir.display()))
}

/// `(width, height)` from the file's header, or why it cannot be read.
fn header_size(path: &Path) -> std::result::Result<(usize, usize), String> {
    let reader = image::ImageReader::open(path)
        .and_then(|r| r.with_guessed_format())
        .map_err(|e| e.to_string())?;
    let (w, h) = reader.into_dimensions().map_err(|e| e.to_string())?;
    Ok((w as usize, h as usize))
}

/// A result on its way from a worker.
type Produced = (u64, Result<RawBatch>);

/// Batches built ahead by worker threads, delivered in iteration order (see the
/// [module docs](self)).
#[derive(Debug)]
pub struct Loader {
    /// Iterations workers may build; `None` once stopping.
    tickets: Option<Sender<u64>>,
    results: Receiver<Produced>,
    /// Batches that arrived ahead of their turn.
    pending: BTreeMap<u64, Result<RawBatch>>,
    /// The iteration `next` returns next.
    next_iter: u64,
    /// The next iteration to hand out as a ticket.
    next_ticket: u64,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    /// The error that ended this loader, repeated by later calls.
    failed: Option<String>,
}

impl Loader {
    /// Starts `workers` threads (at least 1) building the batches of iterations `start_iter`,
    /// `start_iter + 1`, … ([`Dataset::batch`]); at most `workers + prefetch` batches are built
    /// ahead. Invalid arguments (batch or patch 0, a patch larger than an image) surface as an
    /// error from [`Loader::next`].
    pub fn start(
        dataset: Arc<Dataset>,
        batch: usize,
        patch: usize,
        seed: u64,
        start_iter: u64,
        workers: usize,
        prefetch: usize,
    ) -> Self {
        let workers = workers.max(1);
        let window = workers + prefetch.max(1);
        let (ticket_tx, ticket_rx) = crossbeam_channel::bounded::<u64>(window);
        // Never full: at most `window` tickets are outstanding, each yields one result.
        let (result_tx, result_rx) = crossbeam_channel::bounded::<Produced>(window);
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::with_capacity(workers);
        for w in 0..workers {
            let (tickets, results) = (ticket_rx.clone(), result_tx.clone());
            let (dataset, stop) = (Arc::clone(&dataset), Arc::clone(&stop));
            let spawned = std::thread::Builder::new()
                .name(format!("kdsr-data-{w}"))
                .spawn(move || {
                    worker(&dataset, batch, patch, seed, &tickets, &results, &stop);
                });
            match spawned {
                Ok(handle) => threads.push(handle),
                Err(e) => {
                    // Report through `next` rather than panic; the threads spawned so far work.
                    let _ = result_tx.try_send((
                        start_iter,
                        Err(anyhow!("spawning data loader thread {w}: {e}")),
                    ));
                    break;
                }
            }
        }
        drop(result_tx);
        let mut loader = Self {
            tickets: Some(ticket_tx),
            results: result_rx,
            pending: BTreeMap::new(),
            next_iter: start_iter,
            next_ticket: start_iter,
            stop,
            threads,
            failed: None,
        };
        for _ in 0..window {
            loader.issue_ticket();
        }
        loader
    }

    /// Lets the workers build one more iteration.
    fn issue_ticket(&mut self) {
        if let Some(tx) = &self.tickets {
            // Never blocks: outstanding tickets stay ≤ the channel's capacity.
            if tx.try_send(self.next_ticket).is_ok() {
                self.next_ticket += 1;
            }
        }
    }

    /// The iteration the next call to [`Loader::next`] returns.
    pub fn next_iter(&self) -> u64 {
        self.next_iter
    }

    /// The batch of the next iteration, waiting for it if needed. A worker's error (e.g. an image
    /// that cannot be decoded any more) is returned here, naming the file; after an error every
    /// later call fails too.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Batch> {
        if let Some(msg) = &self.failed {
            bail!("data loader stopped after an earlier error: {msg}");
        }
        let result = loop {
            if let Some(r) = self.pending.remove(&self.next_iter) {
                break r;
            }
            match self.results.recv() {
                Ok((iter, r)) => {
                    self.pending.insert(iter, r);
                }
                Err(_) => break Err(anyhow!("all data loader threads exited")),
            }
        };
        match result {
            Ok(raw) => {
                self.next_iter += 1;
                self.issue_ticket();
                Ok(raw.into_batch())
            }
            Err(e) => {
                let e = e.context(format!("data loader, iteration {}", self.next_iter));
                self.failed = Some(format!("{e:#}"));
                self.shutdown();
                Err(e)
            }
        }
    }

    /// Stops and joins the workers.
    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.tickets = None;
        // Dropping the receiver makes any pending send fail at once.
        self.results = crossbeam_channel::never();
        self.pending.clear();
        for handle in self.threads.drain(..) {
            // A worker that panicked has already reported (or its panic was caught).
            let _ = handle.join();
        }
    }
}

impl Drop for Loader {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A worker thread: builds the batch of each ticket until the tickets or the results channel
/// close, or `stop` is set.
fn worker(
    dataset: &Dataset,
    batch: usize,
    patch: usize,
    seed: u64,
    tickets: &Receiver<u64>,
    results: &Sender<Produced>,
    stop: &AtomicBool,
) {
    while let Ok(iter) = tickets.recv() {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let built = catch_unwind(AssertUnwindSafe(|| {
            dataset.make_batch(seed, iter, batch, patch, Some(stop))
        }))
        .unwrap_or_else(|panic| {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(anyhow!(
                "data loader thread panicked on iteration {iter}: {msg}"
            ))
        });
        if results.send((iter, built)).is_err() {
            return;
        }
    }
}
