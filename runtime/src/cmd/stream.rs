//! `kdsr-edge stream`: video frames in (y4m or raw I420/RGB24, stdin or a file), ×4 frames out in
//! the same format, with one IDR per stream.
//!
//! Three threads joined by bounded channels (2 frames each), so memory stays bounded and decoding
//! and encoding overlap inference: the reader parses and converts frames to RGB, this thread
//! estimates the IDR and runs the SR graph, the writer converts back and writes (flushing after
//! every frame, so a pipeline downstream sees frames as they come). The IDR is the mean of the
//! per-frame IDRs of `--idr-frames` frames (the first ones; again every `--idr-every` frames or
//! after a `--scene-change`), or `--idr`.
//!
//! Endings: input that ends between frames is a clean end; a bad header is an input error before
//! any output; a stream that ends inside a frame is an input error after every complete frame
//! was written; a reader of the output that goes away (EPIPE) stops the stream cleanly (exit 0).
//! A file output is written to a temporary file and renamed when the stream ends (also after a
//! truncated last frame, with the complete frames); after a write error nothing is left.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, sync_channel};
use std::time::Instant;

use anyhow::Context;
use kdsr_core::io::ImageSize;
use kdsr_runtime::video::{
    FrameFormat, FrameReader, Layout, Range, frame_difference, frame_to_rgb, rgb_to_frame,
};
use kdsr_runtime::{Error, Idr, ModelKind, Options, Planar};
use serde_json::json;

use crate::cli::{Failure, PixFmt, StreamArgs, code};
use crate::cmd::{Reporter, check_scale, given_idr, load_model_with};

/// One decoded frame.
struct Frame {
    /// 0-based.
    index: usize,
    rgb: Planar,
    /// [`frame_difference`] to the previous frame (0 for the first).
    diff: f32,
    decode_s: f64,
}

/// The frames coming from the reader thread, with a look-ahead for IDR estimation.
struct Input {
    rx: Receiver<kdsr_runtime::Result<Frame>>,
    pending: VecDeque<Frame>,
    error: Option<Error>,
    open: bool,
}

impl Input {
    fn recv(&mut self) -> Option<Frame> {
        if !self.open {
            return None;
        }
        match self.rx.recv() {
            Ok(Ok(f)) => Some(f),
            Ok(Err(e)) => {
                self.error = Some(e);
                self.open = false;
                None
            }
            Err(_) => {
                self.open = false;
                None
            }
        }
    }

    fn next_frame(&mut self) -> Option<Frame> {
        self.pending.pop_front().or_else(|| self.recv())
    }

    /// Reads ahead until `n` frames are pending or the input ends.
    fn fill(&mut self, n: usize) {
        while self.pending.len() < n {
            match self.recv() {
                Some(f) => self.pending.push_back(f),
                None => break,
            }
        }
    }
}

/// How the writer thread ended.
enum WriterEnd {
    /// Every frame sent was written.
    Done { frames: usize, encode_s: f64 },
    /// The output's reader went away (EPIPE) after `frames` frames.
    Closed { frames: usize },
    /// Another write error.
    Failed(std::io::Error, usize),
}

/// The temporary file an output file is written to (`.NAME.kdsr-tmp.PID.N` beside it, created
/// with the default permissions, as `kdsr_core::fsutil::write_atomic` does); removed when dropped
/// unless [`TempOut::persist`]ed.
struct TempOut {
    path: PathBuf,
    keep: bool,
}

impl TempOut {
    fn create(dir: &Path, name: &str) -> std::io::Result<(std::fs::File, Self)> {
        let mut n = 0u32;
        loop {
            let path = dir.join(format!("{}{n}", kdsr_core::fsutil::temp_prefix(name)));
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(f) => return Ok((f, Self { path, keep: false })),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 1000 => n += 1,
                Err(e) => return Err(e),
            }
        }
    }

    fn persist(mut self, to: &Path) -> std::io::Result<()> {
        std::fs::rename(&self.path, to)?;
        self.keep = true;
        Ok(())
    }
}

impl Drop for TempOut {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn is_dash(p: &Path) -> bool {
    p.as_os_str() == "-"
}

/// ‖new − old‖ / ‖old‖.
fn relative_change(old: &[f32], new: &[f32]) -> f64 {
    let norm = |v: &mut dyn Iterator<Item = f64>| v.map(|x| x * x).sum::<f64>().sqrt();
    let diff = norm(&mut old.iter().zip(new).map(|(a, b)| f64::from(a - b)));
    diff / norm(&mut old.iter().map(|a| f64::from(*a))).max(1e-12)
}

/// The mean IDR of `frame` and the next `n - 1` frames (read ahead into `input.pending`), and the
/// index of the last frame used.
fn estimate(
    up: &kdsr_runtime::Upscaler,
    input: &mut Input,
    frame: &Frame,
    n: usize,
    label: &str,
) -> anyhow::Result<(Idr, usize)> {
    input.fill(n - 1);
    let used: Vec<&Frame> = std::iter::once(frame)
        .chain(input.pending.iter().take(n - 1))
        .collect();
    let last = used.last().map_or(frame.index, |f| f.index);
    let idrs = used
        .iter()
        .map(|f| up.estimate_idr(&f.rgb))
        .collect::<kdsr_runtime::Result<Vec<_>>>()?;
    let source = format!("frames {}-{} of {label}", frame.index + 1, last + 1);
    Ok((Idr::mean(&idrs, &source)?, last))
}

pub fn run(a: StreamArgs) -> anyhow::Result<u8> {
    if a.mem_budget == 0 {
        return Err(Failure::usage("--mem-budget must be at least 1 (MiB)").into());
    }
    if let Some(t) = a.scene_change
        && !(t > 0.0 && t <= 1.0)
    {
        return Err(Failure::usage(format!("--scene-change {t}: give a value in (0, 1]")).into());
    }
    let in_label = if is_dash(&a.input) {
        "<stdin>".to_owned()
    } else {
        a.input.display().to_string()
    };
    let source: Box<dyn BufRead + Send> = if is_dash(&a.input) {
        Box::new(BufReader::with_capacity(1 << 20, std::io::stdin()))
    } else {
        let f = std::fs::File::open(&a.input).map_err(|e| Error::Input {
            path: a.input.clone(),
            message: format!("cannot open: {e}"),
        })?;
        Box::new(BufReader::with_capacity(1 << 20, f))
    };
    // The header first: a bad one is refused before the model loads and before any output.
    let (reader, header) = match &a.size {
        Some(size) => {
            let ImageSize { width, height } = *size;
            let layout = match a.pix_fmt {
                PixFmt::I420 => Layout::Yuv420,
                PixFmt::Rgb24 => Layout::Rgb24,
            };
            let range = if a.full_range {
                Range::Full
            } else {
                Range::Limited
            };
            let format = FrameFormat {
                width,
                height,
                layout,
                range,
            };
            (FrameReader::raw(source, format, &in_label), None)
        }
        None => {
            let (r, h) = FrameReader::y4m(source, &in_label)?;
            (r, Some(h))
        }
    };
    let format = reader.format;
    if (format.width as u64) * (format.height as u64) > a.max_pixels {
        return Err(Error::Input {
            path: PathBuf::from(&in_label),
            message: format!(
                "{}x{} frames are over --max-pixels {}",
                format.width, format.height, a.max_pixels
            ),
        }
        .into());
    }

    let info = Reporter::new(a.json || !a.quiet, a.json, false);
    let frame_rep = Reporter::new(a.progress.progress, a.json, !a.quiet);
    let options = Options {
        tile: a.tile.filter(|&t| t > 0),
        mem_budget_mib: a.mem_budget,
        ..Options::default()
    };
    let up = load_model_with(&a.model, options, &frame_rep)?;
    check_scale(&a.scale, &up)?;
    let split = up.info().kind == ModelKind::Split;
    let given_idr = given_idr(a.idr.as_deref(), &up)?;
    if !split && (a.idr_every > 0 || a.scene_change.is_some()) {
        return Err(Failure::usage(format!(
            "--idr-every and --scene-change re-estimate the IDR, which needs a split model; \
             this is a {:?} model",
            up.info().kind
        ))
        .into());
    }
    let s = up.scale();
    let out_format = format.scaled(s);
    // The ×4 image buffers must fit the budget (checked once: every frame has this size).
    let fixed = 4.0 * (3 * format.width * format.height) as f64 * (1.0 + (s * s) as f64);
    up.tile_grid(format.height, format.width, fixed)?;

    // Output: stdout, or a temporary file renamed at the end.
    let out_label = if is_dash(&a.output) {
        "<stdout>".to_owned()
    } else {
        a.output.display().to_string()
    };
    let (sink, temp): (Box<dyn Write + Send>, Option<TempOut>) = if is_dash(&a.output) {
        (Box::new(std::io::stdout()), None)
    } else {
        let dir = match a.output.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = a
            .output
            .file_name()
            .map_or_else(|| "stream".into(), |n| n.to_string_lossy().into_owned());
        let (file, path) = TempOut::create(&dir, &name).map_err(|e| Error::Output {
            path: a.output.clone(),
            message: format!("cannot create a temporary file in {}: {e}", dir.display()),
        })?;
        (Box::new(file), Some(path))
    };

    // Reader thread.
    let (in_tx, in_rx) = sync_channel::<kdsr_runtime::Result<Frame>>(2);
    let mut reader = reader;
    std::thread::spawn(move || {
        let mut prev: Option<Planar> = None;
        loop {
            let item = match reader.next_frame() {
                Ok(None) => return,
                Ok(Some(bytes)) => {
                    let t = Instant::now();
                    frame_to_rgb(&reader.format, &bytes).map(|rgb| {
                        let diff = prev.as_ref().map_or(0.0, |p| frame_difference(p, &rgb));
                        prev = Some(rgb.clone());
                        Frame {
                            index: reader.frames - 1,
                            rgb,
                            diff,
                            decode_s: t.elapsed().as_secs_f64(),
                        }
                    })
                }
                Err(e) => Err(e),
            };
            let stop = item.is_err();
            if in_tx.send(item).is_err() || stop {
                return;
            }
        }
    });

    // Writer thread.
    let (out_tx, out_rx) = sync_channel::<Planar>(2);
    let y4m_line = header.as_ref().map(|h| h.scaled_line(s));
    let writer = std::thread::spawn(move || {
        let mut w = BufWriter::with_capacity(1 << 20, sink);
        let (mut frames, mut encode_s) = (0usize, 0f64);
        let end = |e: std::io::Error, frames| {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                WriterEnd::Closed { frames }
            } else {
                WriterEnd::Failed(e, frames)
            }
        };
        if let Some(line) = &y4m_line
            && let Err(e) = w.write_all(line.as_bytes()).and_then(|()| w.flush())
        {
            return end(e, 0);
        }
        let mut buf = Vec::new();
        for sr in out_rx {
            let t = Instant::now();
            buf.clear();
            if y4m_line.is_some() {
                buf.extend_from_slice(b"FRAME\n");
            }
            if let Err(e) = rgb_to_frame(&out_format, &sr, &mut buf) {
                return end(std::io::Error::other(e.to_string()), frames);
            }
            if let Err(e) = w.write_all(&buf).and_then(|()| w.flush()) {
                return end(e, frames);
            }
            frames += 1;
            encode_s += t.elapsed().as_secs_f64();
        }
        match w.flush() {
            Ok(()) => WriterEnd::Done { frames, encode_s },
            Err(e) => end(e, frames),
        }
    });

    let mut input = Input {
        rx: in_rx,
        pending: VecDeque::new(),
        error: None,
        open: true,
    };
    let n_idr = usize::from(a.idr_frames);
    let mut idr = given_idr.clone();
    let (mut sent, mut infer_s, mut decode_s, mut estimates) = (0usize, 0f64, 0f64, 0usize);
    let start = Instant::now();
    let spinner = frame_rep.spinner("frames");
    let mut failure: Option<anyhow::Error> = None;
    while let Some(frame) = input.next_frame() {
        decode_s += frame.decode_s;
        let i = frame.index;
        let reason = if !split || given_idr.is_some() {
            None
        } else if idr.is_none() {
            Some("start")
        } else if a.idr_every > 0 && i % a.idr_every == 0 {
            Some("every")
        } else if a.scene_change.is_some_and(|t| frame.diff > t) {
            Some("scene-change")
        } else {
            None
        };
        let mut step: anyhow::Result<()> = Ok(());
        if let Some(reason) = reason {
            match estimate(&up, &mut input, &frame, n_idr, &in_label) {
                Ok((new, last)) => {
                    let change = idr.as_ref().map(|old| relative_change(&old.d, &new.d));
                    estimates += 1;
                    info.event(
                        "idr",
                        json!({"frame": i + 1, "frames": [i + 1, last + 1], "reason": reason,
                               "change": change, "d": new.d}),
                        || {
                            let why = match reason {
                                "start" => "at the start".to_owned(),
                                "every" => format!("every {} frames", a.idr_every),
                                _ => format!("scene change, difference {:.3}", frame.diff),
                            };
                            let changed = change.map_or_else(String::new, |c| {
                                format!("; D changed by {:.1} %", 100.0 * c)
                            });
                            format!(
                                "IDR estimated from frames {}-{} ({why}){changed}",
                                i + 1,
                                last + 1
                            )
                        },
                    );
                    idr = Some(new);
                }
                Err(e) => step = Err(e),
            }
        }
        let t = Instant::now();
        let sr = step.and_then(|()| {
            Ok(match &idr {
                Some(d) => up.upscale_with_idr(&frame.rgb, d)?,
                None => up.upscale(&frame.rgb)?,
            })
        });
        let sr = match sr {
            Ok(sr) => sr,
            Err(e) => {
                failure = Some(e.context(format!("frame {} of {in_label}", i + 1)));
                break;
            }
        };
        let dt = t.elapsed().as_secs_f64();
        infer_s += dt;
        spinner.set_message(format!("frame {}", i + 1));
        frame_rep.event("frame", json!({"frame": i + 1, "seconds": dt}), || {
            format!("frame {} upscaled", i + 1)
        });
        if out_tx.send(sr).is_err() {
            break; // the writer stopped: its end says why
        }
        sent += 1;
    }
    spinner.finish_and_clear();
    drop(out_tx);
    let end = writer
        .join()
        .map_err(|_| anyhow::anyhow!("the writer thread panicked"))?;
    let wall = start.elapsed().as_secs_f64();
    let (written, encode_s) = match end {
        WriterEnd::Done { frames, encode_s } => (frames, encode_s),
        WriterEnd::Closed { frames } => {
            drop(temp);
            info.event("output-closed", json!({"frames": frames}), || {
                format!("the output ({out_label}) was closed after {frames} frames; stopping")
            });
            return Ok(code::OK);
        }
        WriterEnd::Failed(e, frames) => {
            return Err(Error::Output {
                path: out_label.into(),
                message: format!("write failed after {frames} frames: {e}"),
            }
            .into());
        }
    };
    if let Some(t) = temp {
        t.persist(&a.output)
            .map_err(|e| Error::Output {
                path: a.output.clone(),
                message: format!("cannot rename the temporary file into place: {e}"),
            })
            .with_context(|| format!("{written} frames were upscaled"))?;
    }
    let per = |x: f64| if written > 0 { x / written as f64 } else { 0.0 };
    let fps = if wall > 0.0 {
        written as f64 / wall
    } else {
        0.0
    };
    info.event(
        "done",
        json!({"frames": written, "seconds": wall, "fps": fps,
               "width": format.width, "height": format.height,
               "out_width": out_format.width, "out_height": out_format.height,
               "inference_s_per_frame": per(infer_s), "decode_s_per_frame": per(decode_s),
               "encode_s_per_frame": per(encode_s), "idr_estimates": estimates}),
        || {
            format!(
                "{written} frames {}x{} -> {}x{} in {wall:.2} s: {fps:.2} frames/s (per frame: \
                 inference {:.3} s, decode {:.3} s, encode {:.3} s, overlapped; {})",
                format.width,
                format.height,
                out_format.width,
                out_format.height,
                per(infer_s),
                per(decode_s),
                per(encode_s),
                match (&given_idr, split) {
                    (Some(i), _) => format!("IDR from {}", i.source),
                    (None, true) => format!("{estimates} IDR estimate(s)"),
                    (None, false) => format!("{:?} model: no IDR to estimate", up.info().kind),
                }
            )
        },
    );
    debug_assert!(written <= sent);
    if let Some(e) = failure {
        return Err(e);
    }
    if let Some(e) = input.error {
        return Err(e.into());
    }
    Ok(code::OK)
}
