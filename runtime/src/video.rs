//! Video frames for `kdsr-edge stream`: YUV4MPEG2 (`ffmpeg … -f yuv4mpegpipe -`) and raw I420 /
//! RGB24 frames (`rpicam-vid --codec yuv420 -o -`, GStreamer `fdsink`), read one frame at a time,
//! converted to and from planar RGB.
//!
//! # Colour
//! YUV is BT.601 (Kr 0.299, Kb 0.114), **limited range** (Y 16–235, Cb/Cr 16–240) unless a y4m
//! header says `XCOLORRANGE=FULL` (or `--full-range` for raw I420), then full range (0–255).
//! 4:2:0 chroma is upsampled by repeating each sample over its 2×2 block (the siting of
//! `420jpeg`, `420mpeg2` and `420paldv` is not modelled) and the ×4 output's chroma is the mean of
//! each 2×2 block of per-pixel Cb/Cr. RGB leaving the network is clamped to [0, 1] first; every
//! 8-bit value is rounded half to even and clamped (as [`kdsr_core::pipeline::quantize_u8`]).
//! RGB24 frames are not converted: 8-bit RGB in, 8-bit RGB out, as `kdsr-edge upscale` does PNGs.

use std::io::{BufRead, Read};
use std::path::PathBuf;

use kdsr_core::Planar;

use crate::error::{Error, Result};

/// Longest y4m stream or frame header line accepted (bytes).
const MAX_HEADER: usize = 4096;

/// How the samples of a frame are laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// Planar Y, then Cb and Cr at half width and height (I420; y4m `C420*`).
    Yuv420,
    /// Planar Y, Cb, Cr at full size (y4m `C444`).
    Yuv444,
    /// Y only (y4m `Cmono`).
    Mono,
    /// Interleaved 8-bit R, G, B (raw `rgb24`).
    Rgb24,
}

/// YUV value range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Range {
    /// Y 16–235, Cb/Cr 16–240 (BT.601 "TV" range; the default).
    Limited,
    /// 0–255.
    Full,
}

/// One frame's size and layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FrameFormat {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Sample layout.
    pub layout: Layout,
    /// YUV range (ignored for RGB24).
    pub range: Range,
}

impl FrameFormat {
    /// Chroma plane size (width, height) of a 4:2:0 frame.
    fn chroma420(&self) -> (usize, usize) {
        (self.width.div_ceil(2), self.height.div_ceil(2))
    }

    /// Bytes per frame.
    pub fn frame_bytes(&self) -> usize {
        let px = self.width * self.height;
        match self.layout {
            Layout::Yuv420 => {
                let (cw, ch) = self.chroma420();
                px + 2 * cw * ch
            }
            Layout::Yuv444 | Layout::Rgb24 => 3 * px,
            Layout::Mono => px,
        }
    }

    /// The same layout and range at `scale` × the size.
    pub fn scaled(&self, scale: usize) -> Self {
        Self {
            width: self.width * scale,
            height: self.height * scale,
            ..*self
        }
    }
}

/// A parsed `YUV4MPEG2` stream header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Y4mHeader {
    /// Frame format from `W`, `H`, `C` and `XCOLORRANGE`.
    pub format: FrameFormat,
    /// The `C` tag as written (`420jpeg` when absent), kept for the output header.
    pub colorspace: String,
    /// Every other parameter (`F`, `I`, `A`, `X…`), written back unchanged.
    pub params: Vec<String>,
}

impl Y4mHeader {
    /// Parses the header line (without its `\n`). `label` names the stream in errors.
    pub fn parse(line: &[u8], label: &str) -> Result<Self> {
        let bad = |m: String| Error::input(label, m);
        let text = std::str::from_utf8(line)
            .map_err(|_| bad("the YUV4MPEG2 header is not ASCII text".into()))?;
        let mut tokens = text.split(' ').filter(|t| !t.is_empty());
        if tokens.next() != Some("YUV4MPEG2") {
            return Err(bad(not_y4m(line)));
        }
        let (mut w, mut h, mut c, mut range) = (None, None, None, Range::Limited);
        let mut params = Vec::new();
        for t in tokens {
            let k_len = t.chars().next().map_or(0, char::len_utf8);
            let (k, v) = t.split_at(k_len);
            match k {
                "W" | "H" => {
                    let n: usize = v
                        .parse()
                        .ok()
                        .filter(|&n| n > 0)
                        .ok_or_else(|| bad(format!("bad frame {k} `{v}` in the y4m header")))?;
                    if k == "W" { w = Some(n) } else { h = Some(n) }
                }
                "C" => c = Some(v.to_owned()),
                _ => {
                    if let Some(r) = t.strip_prefix("XCOLORRANGE=") {
                        range = match r {
                            "FULL" => Range::Full,
                            "LIMITED" => Range::Limited,
                            _ => return Err(bad(format!("unknown XCOLORRANGE `{r}`"))),
                        };
                    }
                    params.push(t.to_owned());
                }
            }
        }
        let (Some(width), Some(height)) = (w, h) else {
            return Err(bad("the y4m header lacks W (width) or H (height)".into()));
        };
        let colorspace = c.unwrap_or_else(|| "420jpeg".to_owned());
        let layout = match colorspace.as_str() {
            "420jpeg" | "420paldv" | "420mpeg2" | "420" => Layout::Yuv420,
            "444" => Layout::Yuv444,
            "mono" => Layout::Mono,
            other => {
                return Err(bad(format!(
                    "y4m colorspace C{other} is not supported: 8-bit C420jpeg, C420, C420mpeg2, \
                     C420paldv, C444 and Cmono are (convert with ffmpeg -pix_fmt yuv420p or \
                     yuv444p)"
                )));
            }
        };
        Ok(Self {
            format: FrameFormat {
                width,
                height,
                layout,
                range,
            },
            colorspace,
            params,
        })
    }

    /// The header line (with its `\n`) of the same stream at `scale` × the size.
    pub fn scaled_line(&self, scale: usize) -> String {
        let mut s = format!(
            "YUV4MPEG2 W{} H{}",
            self.format.width * scale,
            self.format.height * scale
        );
        for p in &self.params {
            s.push(' ');
            s.push_str(p);
        }
        s.push_str(&format!(" C{}\n", self.colorspace));
        s
    }
}

fn not_y4m(start: &[u8]) -> String {
    let shown: String = start
        .iter()
        .take(16)
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '.'
            }
        })
        .collect();
    format!(
        "not a YUV4MPEG2 stream (it starts with `{shown}`, not `YUV4MPEG2 `); for raw frames \
         give --size WxH (and --pix-fmt)"
    )
}

/// Whether the stream is y4m (frames behind `FRAME` lines) or raw frames back to back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Container {
    /// YUV4MPEG2.
    Y4m,
    /// Raw frames.
    Raw,
}

/// Reads frames one at a time from `r`.
#[derive(Debug)]
pub struct FrameReader<R> {
    r: R,
    /// y4m or raw.
    pub container: Container,
    /// The frames' format.
    pub format: FrameFormat,
    /// Complete frames read so far.
    pub frames: usize,
    label: PathBuf,
}

/// Reads up to `buf.len()` bytes; returns how many (fewer only at end of input).
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Reads one `\n`-terminated line of at most [`MAX_HEADER`] bytes (without the `\n`); `None` at
/// end of input before any byte.
fn read_line(r: &mut impl BufRead, what: &str, label: &str) -> Result<Option<Vec<u8>>> {
    let mut line = Vec::new();
    let n = r
        .take(MAX_HEADER as u64 + 1)
        .read_until(b'\n', &mut line)
        .map_err(|e| Error::input(label, format!("cannot read the {what}: {e}")))?;
    if n == 0 {
        return Ok(None);
    }
    if line.last() != Some(&b'\n') {
        return Err(Error::input(
            label,
            if n > MAX_HEADER {
                format!("the {what} is longer than {MAX_HEADER} bytes (not a y4m stream?)")
            } else {
                format!("the stream ends inside the {what}")
            },
        ));
    }
    line.pop();
    Ok(Some(line))
}

impl<R: BufRead> FrameReader<R> {
    /// Reads the `YUV4MPEG2` header of `r`. `label` names the stream in errors.
    pub fn y4m(mut r: R, label: &str) -> Result<(Self, Y4mHeader)> {
        let start = r
            .fill_buf()
            .map_err(|e| Error::input(label, format!("cannot read: {e}")))?;
        if start.is_empty() {
            return Err(Error::input(label, "empty input: no YUV4MPEG2 header"));
        }
        if !start.starts_with(b"YUV4MPEG2 ") && !b"YUV4MPEG2 ".starts_with(start) {
            return Err(Error::input(label, not_y4m(start)));
        }
        let line = read_line(&mut r, "YUV4MPEG2 header", label)?
            .ok_or_else(|| Error::input(label, "empty input"))?;
        let header = Y4mHeader::parse(&line, label)?;
        Ok((
            Self {
                r,
                container: Container::Y4m,
                format: header.format,
                frames: 0,
                label: label.into(),
            },
            header,
        ))
    }

    /// Raw frames of `format` back to back.
    pub fn raw(r: R, format: FrameFormat, label: &str) -> Self {
        Self {
            r,
            container: Container::Raw,
            format,
            frames: 0,
            label: label.into(),
        }
    }

    /// The next frame's bytes ([`FrameFormat::frame_bytes`] of them), `None` at the end of a
    /// stream that ends between frames. A stream that ends inside a frame (or its `FRAME` line)
    /// is an [`Error::Input`] saying which frame and how many bytes arrived.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>> {
        let label = self.label.display().to_string();
        let n = self.frames + 1;
        if self.container == Container::Y4m {
            let Some(line) = read_line(&mut self.r, &format!("FRAME line of frame {n}"), &label)?
            else {
                return Ok(None);
            };
            if !(line.starts_with(b"FRAME") && matches!(line.get(5), None | Some(b' '))) {
                return Err(Error::input(
                    label,
                    format!(
                        "frame {n} does not start with a FRAME line (found `{}`): a corrupt \
                         stream, or a frame size that does not match the header",
                        String::from_utf8_lossy(&line[..line.len().min(16)])
                    ),
                ));
            }
        }
        let size = self.format.frame_bytes();
        let mut buf = vec![0u8; size];
        let got = read_full(&mut self.r, &mut buf)
            .map_err(|e| Error::input(&self.label, format!("cannot read frame {n}: {e}")))?;
        if got == 0 && self.container == Container::Raw {
            return Ok(None);
        }
        if got < size {
            return Err(Error::input(
                &self.label,
                format!(
                    "the stream ends inside frame {n}: {got} of its {size} bytes arrived (a \
                     truncated last frame, or a --size / --pix-fmt that does not match the \
                     stream); the {} complete frames before it were processed",
                    self.frames
                ),
            ));
        }
        self.frames += 1;
        Ok(Some(buf))
    }
}

/// BT.601 luma weights.
const KR: f32 = 0.299;
const KB: f32 = 0.114;
const KG: f32 = 1.0 - KR - KB;

/// (scale, offset) of Y and of Cb/Cr for `range`: normalised = (code − offset) / scale.
fn range_consts(range: Range) -> (f32, f32, f32) {
    match range {
        Range::Limited => (219.0, 16.0, 224.0),
        Range::Full => (255.0, 0.0, 255.0),
    }
}

fn to_u8(v: f32) -> u8 {
    v.round_ties_even().clamp(0.0, 255.0) as u8
}

/// The frame `bytes` of `f` as planar RGB in [0, 1] (3 channels; 1 for mono).
///
/// Errors: [`Error::Usage`] when `bytes` is not one frame of `f`.
pub fn frame_to_rgb(f: &FrameFormat, bytes: &[u8]) -> Result<Planar> {
    if bytes.len() != f.frame_bytes() {
        return Err(Error::Usage(format!(
            "a {}x{} {:?} frame has {} bytes, got {}",
            f.width,
            f.height,
            f.layout,
            f.frame_bytes(),
            bytes.len()
        )));
    }
    let (w, h) = (f.width, f.height);
    let px = w * h;
    let (ys, yo, cs) = range_consts(f.range);
    let luma = |v: u8| ((f32::from(v) - yo) / ys).clamp(0.0, 1.0);
    let planar = match f.layout {
        Layout::Rgb24 => {
            let mut out = vec![0f32; 3 * px];
            for (i, rgb) in bytes.chunks_exact(3).enumerate() {
                for c in 0..3 {
                    out[c * px + i] = f32::from(rgb[c]) / 255.0;
                }
            }
            Planar::new(3, h, w, out)?
        }
        Layout::Mono => Planar::new(1, h, w, bytes.iter().map(|&v| luma(v)).collect())?,
        Layout::Yuv420 | Layout::Yuv444 => {
            let (y, uv) = bytes.split_at(px);
            let (cw, chroma_len) = match f.layout {
                Layout::Yuv420 => {
                    let (cw, ch) = f.chroma420();
                    (cw, cw * ch)
                }
                _ => (w, px),
            };
            let (u, v) = uv.split_at(chroma_len);
            let mut out = vec![0f32; 3 * px];
            for r in 0..h {
                for c in 0..w {
                    let i = r * w + c;
                    let ci = if f.layout == Layout::Yuv420 {
                        (r / 2) * cw + c / 2
                    } else {
                        i
                    };
                    let yn = (f32::from(y[i]) - yo) / ys;
                    let cb = (f32::from(u[ci]) - 128.0) / cs;
                    let cr = (f32::from(v[ci]) - 128.0) / cs;
                    let rr = yn + 2.0 * (1.0 - KR) * cr;
                    let bb = yn + 2.0 * (1.0 - KB) * cb;
                    let gg = (yn - KR * rr - KB * bb) / KG;
                    out[i] = rr.clamp(0.0, 1.0);
                    out[px + i] = gg.clamp(0.0, 1.0);
                    out[2 * px + i] = bb.clamp(0.0, 1.0);
                }
            }
            Planar::new(3, h, w, out)?
        }
    };
    Ok(planar)
}

/// Planar RGB (3 channels, or 1 for mono; values clamped to [0, 1]) as one frame of `f`,
/// appended to `out`.
///
/// Errors: [`Error::Usage`] when the image's size or channels do not fit `f`.
pub fn rgb_to_frame(f: &FrameFormat, img: &Planar, out: &mut Vec<u8>) -> Result<()> {
    let (w, h) = (f.width, f.height);
    let want_c = if f.layout == Layout::Mono { 1 } else { 3 };
    if (img.width(), img.height(), img.channels()) != (w, h, want_c) {
        return Err(Error::Usage(format!(
            "a {}x{}x{} image does not fit a {w}x{h} {:?} frame",
            img.width(),
            img.height(),
            img.channels(),
            f.layout
        )));
    }
    let px = w * h;
    let (ys, yo, cs) = range_consts(f.range);
    let d = img.data();
    out.reserve(f.frame_bytes());
    match f.layout {
        Layout::Rgb24 => {
            for i in 0..px {
                for c in 0..3 {
                    out.push(kdsr_core::pipeline::quantize_u8(d[c * px + i]));
                }
            }
        }
        Layout::Mono => out.extend(d.iter().map(|&v| to_u8(yo + ys * v.clamp(0.0, 1.0)))),
        Layout::Yuv420 | Layout::Yuv444 => {
            // Per-pixel normalised Y, Cb, Cr.
            let mut cb = vec![0f32; px];
            let mut cr = vec![0f32; px];
            let start = out.len();
            out.resize(start + px, 0);
            for i in 0..px {
                let (r, g, b) = (
                    d[i].clamp(0.0, 1.0),
                    d[px + i].clamp(0.0, 1.0),
                    d[2 * px + i].clamp(0.0, 1.0),
                );
                let y = KR * r + KG * g + KB * b;
                cb[i] = (b - y) / (2.0 * (1.0 - KB));
                cr[i] = (r - y) / (2.0 * (1.0 - KR));
                out[start + i] = to_u8(yo + ys * y);
            }
            let code = |v: f32| to_u8(128.0 + cs * v);
            if f.layout == Layout::Yuv444 {
                out.extend(cb.iter().map(|&v| code(v)));
                out.extend(cr.iter().map(|&v| code(v)));
            } else {
                let (cw, ch) = f.chroma420();
                for plane in [&cb, &cr] {
                    for r in 0..ch {
                        for c in 0..cw {
                            let (mut sum, mut n) = (0f32, 0f32);
                            for y in 2 * r..(2 * r + 2).min(h) {
                                for x in 2 * c..(2 * c + 2).min(w) {
                                    sum += plane[y * w + x];
                                    n += 1.0;
                                }
                            }
                            out.push(code(sum / n));
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// Mean absolute difference of the channel means of `a` and `b`, sampled every 4th pixel of
/// every 4th row: a cheap scene-change measure in [0, 1]. 1.0 when the sizes differ.
pub fn frame_difference(a: &Planar, b: &Planar) -> f32 {
    if a.shape() != b.shape() {
        return 1.0;
    }
    let (c, h, w) = (a.channels(), a.height(), a.width());
    let (mut sum, mut n) = (0f64, 0usize);
    for y in (0..h).step_by(4) {
        for x in (0..w).step_by(4) {
            let mean = |p: &Planar| (0..c).map(|ch| p.at(ch, y, x)).sum::<f32>() / c as f32;
            sum += f64::from((mean(a) - mean(b)).abs());
            n += 1;
        }
    }
    (sum / n.max(1) as f64) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_keeps_parameters_and_scales_the_size() {
        let h = Y4mHeader::parse(
            b"YUV4MPEG2 W6 H4 F30000:1001 Ip A1:1 C420mpeg2 XYSCSS=420MPEG2",
            "t",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((h.format.width, h.format.height), (6, 4));
        assert_eq!(h.format.layout, Layout::Yuv420);
        assert_eq!(h.format.range, Range::Limited);
        assert_eq!(
            h.scaled_line(4),
            "YUV4MPEG2 W24 H16 F30000:1001 Ip A1:1 XYSCSS=420MPEG2 C420mpeg2\n"
        );
        let full = Y4mHeader::parse(b"YUV4MPEG2 W2 H2 C444 XCOLORRANGE=FULL", "t")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (full.format.layout, full.format.range),
            (Layout::Yuv444, Range::Full)
        );
        for bad in [
            &b"YUV4MPEG2 W0 H2"[..],
            b"YUV4MPEG2 H2",
            b"YUV4MPEG2 W2 H2 C422",
            b"YUV4MPEG2 W2 H2 C420p10",
            b"RIFF....",
        ] {
            assert!(Y4mHeader::parse(bad, "t").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn grey_and_primaries_convert_as_bt601_says() {
        // Limited range: Y 16 = black, 235 = white, Cb = Cr = 128 = no colour.
        let f = FrameFormat {
            width: 2,
            height: 1,
            layout: Layout::Yuv444,
            range: Range::Limited,
        };
        let rgb =
            frame_to_rgb(&f, &[16, 235, 128, 128, 128, 128]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(rgb.data(), &[0.0, 1.0, 0.0, 1.0, 0.0, 1.0]);
        // Pure red in BT.601 limited range is Y 81, Cb 90, Cr 240 (rounded).
        let red = Planar::new(3, 1, 2, vec![1.0, 1.0, 0.0, 0.0, 0.0, 0.0])
            .unwrap_or_else(|e| panic!("{e}"));
        let mut out = Vec::new();
        rgb_to_frame(&f, &red, &mut out).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out, vec![81, 81, 90, 90, 240, 240]);
    }

    #[test]
    fn yuv_to_rgb_to_yuv_is_within_one_code() {
        for layout in [Layout::Yuv444, Layout::Yuv420] {
            for range in [Range::Limited, Range::Full] {
                let f = FrameFormat {
                    width: 8,
                    height: 6,
                    layout,
                    range,
                };
                // In-gamut colours: mid-grey luma with mild chroma.
                let n = f.frame_bytes();
                let px = 48;
                let bytes: Vec<u8> = (0..n)
                    .map(|i| {
                        if i < px {
                            60 + (i * 7 % 120) as u8
                        } else {
                            120 + (i % 16) as u8
                        }
                    })
                    .collect();
                let rgb = frame_to_rgb(&f, &bytes).unwrap_or_else(|e| panic!("{e}"));
                let mut back = Vec::new();
                rgb_to_frame(&f, &rgb, &mut back).unwrap_or_else(|e| panic!("{e}"));
                let worst = bytes
                    .iter()
                    .zip(&back)
                    .map(|(a, b)| (i32::from(*a) - i32::from(*b)).abs())
                    .max();
                assert!(worst <= Some(1), "{layout:?} {range:?}: {worst:?}");
            }
        }
    }

    #[test]
    fn a_truncated_frame_is_an_error_after_the_complete_ones() {
        let f = FrameFormat {
            width: 2,
            height: 2,
            layout: Layout::Yuv420,
            range: Range::Limited,
        };
        let data = [0u8; 6 * 2 + 3];
        let mut r = FrameReader::raw(&data[..], f, "<stdin>");
        assert!(matches!(r.next_frame(), Ok(Some(_))));
        assert!(matches!(r.next_frame(), Ok(Some(_))));
        let e = r
            .next_frame()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.contains("inside frame 3") && e.contains("3 of its 6 bytes"),
            "{e}"
        );
    }
}
