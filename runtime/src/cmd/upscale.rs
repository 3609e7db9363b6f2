//! `kdsr-edge upscale`: files, folders and stdin/stdout, with per-file failure reporting.

use std::collections::HashSet;
use std::io::{Cursor, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use kdsr_core::io::{BitDepth, ColorKind};
use kdsr_runtime::image::image_buffer_bytes;
use kdsr_runtime::io::{
    MetaFate, Metadata, MetadataReport, OutFormat, PendingImage, ReadOptions, WriteOptions,
    encode_image, open_image, open_image_bytes, write_image,
};
use kdsr_runtime::{ErrorClass, Idr, ModelInfo, Options, Upscaler};
use serde::Serialize;
use serde_json::json;

use crate::cli::{Failure, UpscaleArgs, class_code, class_of, code};
use crate::cmd::{Reporter, check_scale, given_idr, list_images, load_model_with, peak_rss_mib};

/// Largest stdin input read (bytes).
const MAX_STDIN_BYTES: u64 = 1 << 30;

#[derive(Debug, Serialize)]
struct FileReport {
    input: String,
    output: String,
    format: OutFormat,
    width: usize,
    height: usize,
    out_width: usize,
    out_height: usize,
    channels: usize,
    alpha: bool,
    bits: u32,
    tiles: usize,
    idr: String,
    metadata: MetadataReport,
    seconds: f64,
}

#[derive(Debug, Serialize)]
struct FailReport {
    input: String,
    class: ErrorClass,
    exit_code: u8,
    error: String,
}

#[derive(Debug, Serialize)]
struct Summary<'a> {
    model: &'a ModelInfo,
    files: Vec<FileReport>,
    failed: Vec<FailReport>,
    peak_rss_mib: Option<f64>,
}

/// Where an image comes from.
enum Source {
    File(PathBuf),
    Stdin,
}

impl Source {
    fn label(&self) -> String {
        match self {
            Source::File(p) => p.display().to_string(),
            Source::Stdin => "<stdin>".into(),
        }
    }
}

/// Where the result goes.
#[derive(Clone)]
enum Dest {
    /// This file.
    File(PathBuf),
    /// This folder, named after the input.
    Dir(PathBuf),
    Stdout,
}

fn is_dash(p: &Path) -> bool {
    p.as_os_str() == "-"
}

pub fn run(a: UpscaleArgs) -> anyhow::Result<u8> {
    let stdout_out = is_dash(&a.output);
    if a.json && stdout_out {
        return Err(
            Failure::usage("--json prints on stdout, which `-o -` uses for the image").into(),
        );
    }
    if a.mem_budget == 0 {
        return Err(Failure::usage("--mem-budget must be at least 1 (MiB)").into());
    }
    if a.max_pixels == 0 {
        return Err(Failure::usage("--max-pixels must be at least 1").into());
    }
    // realesrgan-ncnn-vulkan's `-t 0` means automatic, as leaving --tile out does here.
    let tile = a.tile.filter(|&t| t > 0);
    let forced_format: Option<OutFormat> = a.format.map(Into::into);
    let (sources, dest): (Vec<Source>, Dest) = if is_dash(&a.input) {
        (vec![Source::Stdin], single_dest(&a.output)?)
    } else if a.input.is_dir() {
        if stdout_out {
            return Err(
                Failure::usage("a folder input needs a folder output (-o DIR), not `-`").into(),
            );
        }
        if a.output.exists() && !a.output.is_dir() {
            return Err(Failure::usage(format!(
                "the input is a folder, so -o must be a folder; {} is a file",
                a.output.display()
            ))
            .into());
        }
        let files = list_images(&a.input)?;
        if files.is_empty() {
            return Err(Failure {
                class: ErrorClass::Input,
                message: format!("no image files in {}", a.input.display()),
            }
            .into());
        }
        std::fs::create_dir_all(&a.output).map_err(|e| Failure {
            class: ErrorClass::Output,
            message: format!(
                "cannot create the output folder {}: {e}",
                a.output.display()
            ),
        })?;
        (
            files.into_iter().map(Source::File).collect(),
            Dest::Dir(a.output.clone()),
        )
    } else if a.input.is_file() {
        (vec![Source::File(a.input.clone())], single_dest(&a.output)?)
    } else {
        return Err(Failure {
            class: ErrorClass::Input,
            message: format!("input {}: no such file or folder", a.input.display()),
        }
        .into());
    };
    let out_dir = match &dest {
        Dest::Dir(d) => Some(d.clone()),
        Dest::File(p) => Some(match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        }),
        Dest::Stdout => None,
    };
    if let Some(dir) = out_dir {
        for f in kdsr_core::fsutil::remove_stale_temps(&dir) {
            if !a.quiet {
                eprintln!(
                    "kdsr-edge: note: removed {}, a temporary file left by an interrupted run",
                    f.display()
                );
            }
        }
    }
    if let (Dest::File(p), Some(f)) = (&dest, forced_format)
        && let Some(pf) = OutFormat::from_path(p)
        && pf != f
    {
        return Err(Failure::usage(format!(
            "--format {} contradicts the output extension of {}",
            f.extension(),
            p.display()
        ))
        .into());
    }
    if let Dest::File(p) = &dest
        && forced_format.is_none()
        && OutFormat::from_path(p).is_none()
    {
        return Err(Failure::usage(unknown_output_format(p)).into());
    }

    let options = Options {
        tile,
        mem_budget_mib: a.mem_budget,
        ..Options::default()
    };
    let show = !a.quiet && !a.json;
    let rep = Reporter::new(a.progress.progress, a.json, show);
    let up = load_model_with(&a.model, options, &rep)?;
    check_scale(&a.scale, &up)?;
    let min_window = min_window(&up);
    if let Some(t) = tile
        && t < min_window
    {
        return Err(Failure::usage(format!(
            "--tile {t} is too small for this model: each window keeps only the pixels at least \
             {r} px (its receptive radius) from the window's edge, so a {t} px window keeps {core} \
             px and recomputes the rest; use --tile {min_window} or more (or leave --tile out to \
             size windows from --mem-budget)",
            r = up.info().receptive_radius,
            core = t.saturating_sub(2 * up.info().receptive_radius),
        ))
        .into());
    }
    let given_idr = given_idr(a.idr.as_deref(), &up)?;

    let inputs: HashSet<PathBuf> = sources
        .iter()
        .filter_map(|s| match s {
            Source::File(p) => p.canonicalize().ok(),
            Source::Stdin => None,
        })
        .collect();
    let folder = sources.len() > 1 || matches!(dest, Dest::Dir(_)) && a.input.is_dir();
    let bar = if folder {
        rep.bar(sources.len() as u64, "images")
    } else {
        indicatif::ProgressBar::hidden()
    };
    let ctx = Ctx {
        up: &up,
        idr: given_idr.as_ref(),
        read: ReadOptions {
            max_pixels: a.max_pixels,
            allow_truncated: a.allow_truncated,
        },
        min_window,
        write: WriteOptions {
            jpeg_quality: a.jpeg_quality,
            strip: a.strip,
        },
        forced_format,
        inputs,
        show_tiles: !folder,
        rep: &rep,
    };
    let mut produced: HashSet<PathBuf> = HashSet::new();
    let mut files = Vec::new();
    let mut failed = Vec::new();
    for (i, src) in sources.iter().enumerate() {
        bar.set_message(src.label());
        rep.event(
            "image",
            json!({"input": src.label(), "index": i + 1, "total": sources.len()}),
            || format!("image {}/{}: {}", i + 1, sources.len(), src.label()),
        );
        match ctx.one(src, &dest, &mut produced) {
            Ok(rep) => {
                if show {
                    bar.suspend(|| {
                        eprintln!(
                            "{} -> {}: {}x{} -> {}x{}, {} tile{}, IDR {}, {:.2} s",
                            rep.input,
                            rep.output,
                            rep.width,
                            rep.height,
                            rep.out_width,
                            rep.out_height,
                            rep.tiles,
                            if rep.tiles == 1 { "" } else { "s" },
                            rep.idr,
                            rep.seconds
                        );
                        for (what, fate) in [("ICC profile", rep.metadata.icc), ("EXIF", rep.metadata.exif)] {
                            if fate == MetaFate::Unsupported {
                                eprintln!(
                                    "  note: {what} dropped: {} output cannot hold it (use png, jpg or webp)",
                                    rep.format.extension()
                                );
                            }
                        }
                    });
                }
                files.push(rep);
            }
            Err(e) => {
                let class = class_of(&e);
                bar.suspend(|| eprintln!("kdsr-edge: error: {}", with_label(&src.label(), &e)));
                failed.push(FailReport {
                    input: src.label(),
                    class,
                    exit_code: class_code(class),
                    error: format!("{e:#}"),
                });
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let exit = failed.first().map_or(code::OK, |f| f.exit_code);
    if folder && !failed.is_empty() {
        eprintln!(
            "kdsr-edge: {} of {} images failed:",
            failed.len(),
            sources.len()
        );
        for f in &failed {
            let error = f.error.replace(&format!("input {}: ", f.input), "");
            eprintln!("  {} (exit {}): {error}", f.input, f.exit_code);
        }
    }
    if a.json {
        let summary = Summary {
            model: up.info(),
            files,
            failed,
            peak_rss_mib: peak_rss_mib(),
        };
        println!("{}", serde_json::to_string_pretty(&summary)?);
    }
    Ok(exit)
}

/// The message for an output path whose extension names no format kdsr-edge writes.
fn unknown_output_format(p: &Path) -> String {
    const KNOWN: &str = ".png, .jpg/.jpeg, .webp, .tif/.tiff or .pam";
    match p.extension() {
        Some(ext) => format!(
            "{}: `.{}` is not a format kdsr-edge writes; use {KNOWN}, or --format",
            p.display(),
            ext.to_string_lossy()
        ),
        None => format!(
            "{}: no extension to tell the output format by; add one ({KNOWN}) or give --format",
            p.display()
        ),
    }
}

/// `label: error`, unless the error already names `label` (most do: "input FILE: …").
pub fn with_label(label: &str, e: &anyhow::Error) -> String {
    let msg = format!("{e:#}");
    if msg.contains(label) {
        msg
    } else {
        format!("{label}: {msg}")
    }
}

/// The smallest window side worth tiling with: a core at least as wide as the receptive radius
/// (so a window computes at most 9× the pixels it keeps).
fn min_window(up: &Upscaler) -> usize {
    3 * up.info().receptive_radius
}

/// Whether `p` is written as a folder (`out/`).
fn ends_with_separator(p: &Path) -> bool {
    let s = p.as_os_str().to_string_lossy();
    s.ends_with('/') || s.ends_with(std::path::MAIN_SEPARATOR)
}

fn single_dest(output: &Path) -> anyhow::Result<Dest> {
    Ok(if is_dash(output) {
        Dest::Stdout
    } else if output.is_dir() {
        Dest::Dir(output.to_path_buf())
    } else if ends_with_separator(output) {
        std::fs::create_dir_all(output).map_err(|e| Failure {
            class: ErrorClass::Output,
            message: format!("cannot create the output folder {}: {e}", output.display()),
        })?;
        Dest::Dir(output.to_path_buf())
    } else {
        Dest::File(output.to_path_buf())
    })
}

struct Ctx<'a> {
    up: &'a Upscaler,
    idr: Option<&'a Idr>,
    read: ReadOptions,
    min_window: usize,
    write: WriteOptions,
    forced_format: Option<OutFormat>,
    inputs: HashSet<PathBuf>,
    show_tiles: bool,
    rep: &'a Reporter,
}

impl Ctx<'_> {
    fn one(
        &self,
        src: &Source,
        dest: &Dest,
        produced: &mut HashSet<PathBuf>,
    ) -> anyhow::Result<FileReport> {
        let start = Instant::now();
        // Everything the header decides is checked before the pixels are decoded: the output
        // format, its size limits, the memory budget and the tiles.
        let pending: PendingImage = match src {
            Source::File(p) => open_image(p, self.read)?,
            Source::Stdin => {
                let mut bytes = Vec::new();
                std::io::stdin()
                    .take(MAX_STDIN_BYTES)
                    .read_to_end(&mut bytes)
                    .map_err(|e| kdsr_runtime::Error::Input {
                        path: "<stdin>".into(),
                        message: format!("cannot read: {e}"),
                    })?;
                open_image_bytes(bytes, Path::new("<stdin>"), self.read)?
            }
        };
        let hdr = *pending.header();
        let (Some(color), Some(depth)) = (hdr.color, hdr.bit_depth) else {
            // A pixel type the runtime does not read: decoding names it.
            pending.decode()?;
            return Err(Failure {
                class: ErrorClass::Input,
                message: format!("{}: unsupported pixel type", src.label()),
            }
            .into());
        };
        let has_alpha = hdr.alpha;
        let (h, w) = (hdr.height as usize, hdr.width as usize);
        let s = self.up.scale();
        let (format, out_path) = self.resolve_output(src, dest, color, has_alpha, depth)?;
        let out_label = out_path
            .as_ref()
            .map_or_else(|| "<stdout>".to_owned(), |p| p.display().to_string());
        let out_err = |m: String| kdsr_runtime::Error::Output {
            path: out_label.clone().into(),
            message: m,
        };
        format
            .check_holds(color, has_alpha, depth)
            .map_err(out_err)?;
        format
            .check_size(w as u64 * s as u64, h as u64 * s as u64)
            .map_err(out_err)?;
        let fixed = image_buffer_bytes(h, w, color.channels(), has_alpha, depth, s);
        let grid = self.up.tile_grid(h, w, fixed)?;
        let radius = self.up.info().receptive_radius;
        let tiled_window = grid
            .rows
            .iter()
            .filter(|_| grid.rows.len() > 1)
            .chain(grid.cols.iter().filter(|_| grid.cols.len() > 1))
            .map(|span| span.len)
            .min();
        if let Some(win) = tiled_window
            && win < self.min_window
        {
            return Err(Failure::usage(format!(
                "the {} MiB budget leaves room for {win} px windows on this {w}x{h} image: each \
                 would keep only {} px of the {radius} px context it needs on each side, and \
                 recompute the rest ({} windows); raise --mem-budget (a {} px window alone \
                 needs about {:.0} MiB)",
                self.up.options().mem_budget_mib,
                win.saturating_sub(2 * radius),
                grid.len(),
                self.min_window,
                (self.min_window * self.min_window) as f64
                    * kdsr_runtime::memory::sr_bytes_per_px(
                        self.up.info().n_feats,
                        self.up.info().scale
                    )
                    / (1024.0 * 1024.0)
            ))
            .into());
        }
        if let Some(p) = &out_path {
            let canon = p.canonicalize().ok();
            if canon.as_ref().is_some_and(|c| self.inputs.contains(c)) {
                return Err(Failure {
                    class: ErrorClass::Output,
                    message: format!("refusing to overwrite the input {}", p.display()),
                }
                .into());
            }
            let key = canon.unwrap_or_else(|| p.clone());
            if !produced.insert(key) {
                return Err(Failure {
                    class: ErrorClass::Output,
                    message: format!(
                        "{} was already written by another input of this run (inputs with the \
                         same name and different extensions: use --format to keep them apart or \
                         rename them)",
                        p.display()
                    ),
                }
                .into());
            }
        }
        let img = pending.decode()?;
        let li = &img.image;
        let idr_desc = self.up.idr_plan(h, w, self.idr).to_string();
        let mut tiles = 1;
        let bar = std::cell::RefCell::new(None::<indicatif::ProgressBar>);
        let label = src.label();
        self.rep.event(
            "decoded",
            json!({"input": label, "width": w, "height": h, "idr": idr_desc}),
            || format!("{label}: {w}x{h} decoded; IDR {idr_desc}"),
        );
        let out = self.up.upscale_loaded(li, self.idr, &mut |done, total| {
            tiles = total;
            if self.show_tiles && total > 1 {
                let mut b = bar.borrow_mut();
                let pb = b.get_or_insert_with(|| self.rep.bar(total as u64, "tiles"));
                pb.set_position(done as u64);
            }
            self.rep.event(
                "tile",
                json!({"input": label, "done": done, "total": total}),
                || {
                    if done == 0 {
                        format!("{label}: IDR ready, {total} tile(s) to run")
                    } else {
                        format!("{label}: tile {done}/{total}")
                    }
                },
            );
        })?;
        if let Some(pb) = bar.borrow_mut().take() {
            pb.finish_and_clear();
        }
        let meta = Metadata {
            icc: img.icc.as_deref(),
            exif: img.exif.as_deref(),
        };
        let metadata = match &out_path {
            Some(p) => write_image(p, &out, format, meta, self.write)?,
            None => {
                let mut buf = Cursor::new(Vec::new());
                let rep = encode_image(
                    &mut buf,
                    &out,
                    format,
                    meta,
                    self.write,
                    Path::new("<stdout>"),
                )?;
                let mut so = std::io::stdout().lock();
                so.write_all(buf.get_ref())
                    .and_then(|()| so.flush())
                    .map_err(|e| kdsr_runtime::Error::Output {
                        path: "<stdout>".into(),
                        message: e.to_string(),
                    })?;
                rep
            }
        };
        Ok(FileReport {
            input: src.label(),
            output: out_label,
            format,
            width: w,
            height: h,
            out_width: out.width() as usize,
            out_height: out.height() as usize,
            channels: li.rgb.channels(),
            alpha: has_alpha,
            bits: li.bit_depth.bits(),
            tiles,
            idr: idr_desc,
            metadata,
            seconds: start.elapsed().as_secs_f64(),
        })
    }

    /// The output format and path (`None` for stdout).
    fn resolve_output(
        &self,
        src: &Source,
        dest: &Dest,
        color: ColorKind,
        alpha: bool,
        depth: BitDepth,
    ) -> anyhow::Result<(OutFormat, Option<PathBuf>)> {
        Ok(match dest {
            Dest::Stdout => (self.forced_format.unwrap_or(OutFormat::Png), None),
            Dest::File(p) => {
                let f = OutFormat::from_path(p)
                    .or(self.forced_format)
                    .unwrap_or(OutFormat::Png);
                (f, Some(p.clone()))
            }
            Dest::Dir(dir) => {
                let (stem, in_ext) = match src {
                    Source::File(p) => (
                        p.file_stem()
                            .map_or_else(|| "image".into(), |s| s.to_string_lossy().into_owned()),
                        p.extension().map(|e| e.to_string_lossy().into_owned()),
                    ),
                    Source::Stdin => ("stdin".to_owned(), None),
                };
                let (f, ext) = match self.forced_format {
                    Some(f) => (f, f.extension().to_owned()),
                    None => match in_ext
                        .as_deref()
                        .and_then(|e| OutFormat::from_extension(e).map(|f| (f, e.to_owned())))
                    {
                        Some((f, e)) if f.check_holds(color, alpha, depth).is_ok() => (f, e),
                        _ => (OutFormat::Png, "png".to_owned()),
                    },
                };
                (f, Some(dir.join(format!("{stem}.{ext}"))))
            }
        })
    }
}
