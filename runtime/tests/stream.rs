//! `kdsr-edge stream`: y4m (C444, C420jpeg, C420mpeg2 full range) and raw I420 / RGB24 frames
//! against per-frame upscaling with the same IDR, the IDR estimated from the first frames and
//! re-estimated, and the endings: a truncated last frame, a bad header, a reader that goes away.
//! Graphs exported from the official tiny student weights (random init, not a trained model).
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use std::io::{Read, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{code, edge, edge_command, edge_in, in_planar, models, s, scratch, stderr};
use kdsr_core::Planar;
use kdsr_core::idr::Idr;
use kdsr_runtime::{Options, Upscaler};

const W: usize = 40;
const H: usize = 32;

/// `n` different H×W RGB frames: crops of the test photo at shifting offsets.
fn frames(n: usize) -> Vec<Planar> {
    let img = in_planar();
    (0..n)
        .map(|i| img.crop(4 * i, 6 * i, H, W).unwrap())
        .collect()
}

/// Interleaved 8-bit RGB of a planar frame (values are already 8-bit here).
fn rgb24(p: &Planar) -> Vec<u8> {
    let px = p.width() * p.height();
    (0..px)
        .flat_map(|i| (0..3).map(move |c| (p.data()[c * px + i] * 255.0).round() as u8))
        .collect()
}

// An implementation of BT.601 written from the standard for these tests, independent of
// `kdsr_runtime::video`: E'Y = 0.299 R + 0.587 G + 0.114 B, E'Cb = (B − E'Y) / 1.772,
// E'Cr = (R − E'Y) / 1.402; limited range Y = 16 + 219 E'Y, C = 128 + 224 E'C; full range
// Y = 255 E'Y, C = 128 + 255 E'C.
fn ycc(r: f64, g: f64, b: f64) -> (f64, f64, f64) {
    let y = 0.299 * r + 0.587 * g + 0.114 * b;
    (y, (b - y) / 1.772, (r - y) / 1.402)
}

fn rgb(y: f64, cb: f64, cr: f64) -> (f64, f64, f64) {
    let r = y + 1.402 * cr;
    let b = y + 1.772 * cb;
    let g = (y - 0.299 * r - 0.114 * b) / 0.587;
    (r, g, b)
}

#[derive(Clone, Copy, Debug)]
struct Fmt {
    chroma420: bool,
    full: bool,
}

impl Fmt {
    fn consts(self) -> (f64, f64, f64) {
        if self.full {
            (255.0, 0.0, 255.0)
        } else {
            (219.0, 16.0, 224.0)
        }
    }
}

fn code8(v: f64) -> u8 {
    v.round().clamp(0.0, 255.0) as u8
}

/// RGB planar (clamped to [0, 1]) → planar Y, Cb, Cr bytes (chroma: 2×2 means for 4:2:0).
fn to_yuv(p: &Planar, f: Fmt) -> Vec<u8> {
    let (w, h) = (p.width(), p.height());
    let (ys, yo, cs) = f.consts();
    let at = |c, y, x| f64::from(p.at(c, y, x)).clamp(0.0, 1.0);
    let pix = |y, x| ycc(at(0, y, x), at(1, y, x), at(2, y, x));
    let mut out: Vec<u8> = (0..h)
        .flat_map(|y| (0..w).map(move |x| (y, x)))
        .map(|(y, x)| code8(yo + ys * pix(y, x).0))
        .collect();
    for k in [1, 2] {
        let c = |y, x| {
            let v = pix(y, x);
            if k == 1 { v.1 } else { v.2 }
        };
        if f.chroma420 {
            for y in (0..h).step_by(2) {
                for x in (0..w).step_by(2) {
                    let m = (c(y, x) + c(y, x + 1) + c(y + 1, x) + c(y + 1, x + 1)) / 4.0;
                    out.push(code8(128.0 + cs * m));
                }
            }
        } else {
            for y in 0..h {
                for x in 0..w {
                    out.push(code8(128.0 + cs * c(y, x)));
                }
            }
        }
    }
    out
}

/// Planar Y, Cb, Cr bytes → RGB planar in [0, 1] (4:2:0 chroma repeated over its 2×2 block).
fn from_yuv(bytes: &[u8], w: usize, h: usize, f: Fmt) -> Planar {
    let (ys, yo, cs) = f.consts();
    let px = w * h;
    let (cw, clen) = if f.chroma420 {
        (w / 2, px / 4)
    } else {
        (w, px)
    };
    let mut out = vec![0f32; 3 * px];
    for y in 0..h {
        for x in 0..w {
            let ci = if f.chroma420 {
                (y / 2) * cw + x / 2
            } else {
                y * w + x
            };
            let (r, g, b) = rgb(
                (f64::from(bytes[y * w + x]) - yo) / ys,
                (f64::from(bytes[px + ci]) - 128.0) / cs,
                (f64::from(bytes[px + clen + ci]) - 128.0) / cs,
            );
            for (c, v) in [r, g, b].into_iter().enumerate() {
                out[c * px + y * w + x] = v.clamp(0.0, 1.0) as f32;
            }
        }
    }
    Planar::new(3, h, w, out).unwrap()
}

fn y4m(header: &str, payloads: &[Vec<u8>]) -> Vec<u8> {
    let mut v = format!("{header}\n").into_bytes();
    for p in payloads {
        v.extend_from_slice(b"FRAME\n");
        v.extend_from_slice(p);
    }
    v
}

/// The frame payloads of a y4m stream (after its header line).
fn y4m_frames(bytes: &[u8], frame_len: usize) -> (String, Vec<Vec<u8>>) {
    let nl = bytes.iter().position(|&b| b == b'\n').unwrap();
    let header = String::from_utf8(bytes[..nl].to_vec()).unwrap();
    let mut rest = &bytes[nl + 1..];
    let mut out = Vec::new();
    while !rest.is_empty() {
        assert!(rest.starts_with(b"FRAME\n"), "no FRAME line");
        out.push(rest[6..6 + frame_len].to_vec());
        rest = &rest[6 + frame_len..];
    }
    (header, out)
}

fn max_diff(a: &[u8], b: &[u8]) -> i32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (i32::from(*x) - i32::from(*y)).abs())
        .max()
        .unwrap_or(0)
}

/// y4m in three colour formats, `--idr FILE`: every output frame equals the test's own
/// conversion of the library's `upscale_with_idr` on the test's own conversion of the input
/// frame, within 1 code (float rounding in two independent implementations of BT.601; the
/// network input is identical up to f32 vs f64 conversion). RGB → YUV → RGB is not the identity
/// for 4:2:0 (chroma is shared by 2×2 pixels), so the reference starts from the YUV frame.
#[test]
fn y4m_frames_equal_per_frame_upscale_with_the_same_idr() {
    let m = models();
    let up = Upscaler::load(
        &m.split,
        Options {
            threads: 1,
            ..Options::default()
        },
    )
    .unwrap();
    let idr = Idr {
        source: s(&m.folded_idr_path).into(),
        ..m.folded_idr.clone()
    };
    for (tag, f) in [
        (
            "C444",
            Fmt {
                chroma420: false,
                full: false,
            },
        ),
        (
            "C420jpeg",
            Fmt {
                chroma420: true,
                full: false,
            },
        ),
        (
            "C420mpeg2 XCOLORRANGE=FULL",
            Fmt {
                chroma420: true,
                full: true,
            },
        ),
    ] {
        let inputs: Vec<Vec<u8>> = frames(3).iter().map(|p| to_yuv(p, f)).collect();
        let stream = y4m(&format!("YUV4MPEG2 W{W} H{H} F25:1 Ip A1:1 {tag}"), &inputs);
        let out = edge_in(
            &[
                "stream",
                "-m",
                s(&m.split),
                "-j",
                "1",
                "--idr",
                s(&m.folded_idr_path),
            ],
            Some(&stream),
        );
        assert_eq!(code(&out), 0, "{tag}: {}", stderr(&out));
        let frame_len = inputs[0].len() * 16;
        let (header, got) = y4m_frames(&out.stdout, frame_len);
        let (c, rest) = tag.split_once(' ').unwrap_or((tag, ""));
        let want_header =
            format!("YUV4MPEG2 W{} H{} F25:1 Ip A1:1 {rest} {c}", 4 * W, 4 * H).replace("  ", " ");
        assert_eq!(header, want_header, "{tag}");
        assert_eq!(got.len(), 3, "{tag}");
        for (k, (inp, got)) in inputs.iter().zip(&got).enumerate() {
            let lr = from_yuv(inp, W, H, f);
            let sr = up.upscale_with_idr(&lr, &idr).unwrap();
            let want = to_yuv(&sr, f);
            let d = max_diff(got, &want);
            let differing = got.iter().zip(&want).filter(|(a, b)| a != b).count();
            eprintln!(
                "{tag} frame {k}: max |Δ| = {d} code(s), {differing} of {} differ",
                want.len()
            );
            assert!(d <= 1, "{tag} frame {k}: max |Δ| {d} > 1");
            assert!(
                differing * 100 <= want.len(),
                "{tag} frame {k}: {differing} values differ"
            );
        }
    }
}

/// Raw RGB24 with the IDR estimated as the mean of the first 3 frames: byte-for-byte the PNGs
/// that `calibrate` (on those 3 frames) + `upscale --idr` write for each frame (no colour
/// conversion on this path, so tolerance 0). Raw I420 gives the same bytes as the same frames
/// in a C420jpeg y4m.
#[test]
fn raw_rgb24_equals_calibrate_then_upscale_and_raw_i420_equals_y4m() {
    let m = models();
    let dir = scratch("stream-raw");
    let fr = frames(4);
    let cal = dir.join("first3");
    std::fs::create_dir_all(&cal).unwrap();
    let mut stream = Vec::new();
    for (k, p) in fr.iter().enumerate() {
        let bytes = rgb24(p);
        stream.extend_from_slice(&bytes);
        let img = image::RgbImage::from_raw(W as u32, H as u32, bytes).unwrap();
        let png = dir.join(format!("f{k}.png"));
        img.save(&png).unwrap();
        if k < 3 {
            std::fs::copy(&png, cal.join(format!("f{k}.png"))).unwrap();
        }
    }
    let idr = dir.join("cam.idr");
    let out = edge(&[
        "calibrate",
        "-i",
        s(&cal),
        "-o",
        s(&idr),
        "-m",
        s(&m.split),
        "-j",
        "1",
    ]);
    assert_eq!(code(&out), 0);
    let size = format!("{W}x{H}");
    let out = edge_in(
        &[
            "stream",
            "--size",
            &size,
            "--pix-fmt",
            "rgb24",
            "--idr-frames",
            "3",
            "-m",
            s(&m.split),
            "-j",
            "1",
        ],
        Some(&stream),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let frame_len = 3 * W * H * 16;
    assert_eq!(out.stdout.len(), 4 * frame_len);
    for k in 0..4 {
        let png = dir.join(format!("f{k}-x4.png"));
        let o = edge(&[
            "upscale",
            "-i",
            s(&dir.join(format!("f{k}.png"))),
            "-o",
            s(&png),
            "-m",
            s(&m.split),
            "-j",
            "1",
            "--idr",
            s(&idr),
        ]);
        assert_eq!(code(&o), 0);
        let want = image::open(&png).unwrap().to_rgb8().into_raw();
        let got = &out.stdout[k * frame_len..(k + 1) * frame_len];
        assert_eq!(max_diff(got, &want), 0, "frame {k}");
    }

    // Raw I420 (the default --pix-fmt) = the payloads of the same frames as C420jpeg y4m.
    let f = Fmt {
        chroma420: true,
        full: false,
    };
    let yuv: Vec<Vec<u8>> = fr.iter().map(|p| to_yuv(p, f)).collect();
    let args = ["stream", "-m", s(&m.split), "-j", "1", "--idr", s(&idr)];
    let raw = edge_in(
        &[&args[..], &["--size", &size]].concat(),
        Some(&yuv.concat()),
    );
    assert_eq!(code(&raw), 0, "{}", stderr(&raw));
    let y4 = edge_in(
        &args,
        Some(&y4m(&format!("YUV4MPEG2 W{W} H{H} F30:1 C420jpeg"), &yuv)),
    );
    assert_eq!(code(&y4), 0);
    let (_, payloads) = y4m_frames(&y4.stdout, yuv[0].len() * 16);
    assert_eq!(raw.stdout, payloads.concat());
}

/// `--idr-every` and `--scene-change` re-estimate the IDR and say so in JSON lines on stderr.
#[test]
fn the_idr_is_re_estimated_every_k_frames_and_on_a_scene_change() {
    let m = models();
    let fr = frames(4);
    let stream: Vec<u8> = fr.iter().flat_map(rgb24).collect();
    let size = format!("{W}x{H}");
    let base = [
        "stream",
        "--size",
        &size,
        "--pix-fmt",
        "rgb24",
        "-m",
        s(&m.split),
        "-j",
        "1",
    ];
    let idr_events = |extra: &[&str], input: &[u8]| -> Vec<(u64, String)> {
        let out = edge_in(&[&base[..], extra, &["--json"]].concat(), Some(input));
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let mut v = Vec::new();
        let mut done = false;
        for line in stderr(&out).lines() {
            let j: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| {
                panic!("not a JSON line: {line}: {e}");
            });
            match j["event"].as_str() {
                Some("idr") => v.push((
                    j["frame"].as_u64().unwrap(),
                    j["reason"].as_str().unwrap().to_owned(),
                )),
                Some("done") => {
                    assert_eq!(j["frames"], 4);
                    assert!(j["fps"].as_f64().unwrap() > 0.0);
                    done = true;
                }
                _ => {}
            }
        }
        assert!(done, "no done event");
        v
    };
    assert_eq!(
        idr_events(&["--idr-frames", "1", "--idr-every", "2"], &stream),
        [(1, "start".into()), (3, "every".into())]
    );
    // Frames A A B B (B: a different crop): one scene change, at frame 3.
    let abb: Vec<u8> = [&fr[0], &fr[0], &fr[3], &fr[3]]
        .into_iter()
        .flat_map(rgb24)
        .collect();
    assert_eq!(
        idr_events(&["--idr-frames", "2", "--scene-change", "0.05"], &abb),
        [(1, "start".into()), (3, "scene-change".into())]
    );
}

/// A stream that ends inside its third frame: exit 3 naming the frame, and the two complete
/// frames written (to stdout, and to a file that is renamed into place).
#[test]
fn a_truncated_last_frame_ends_with_the_complete_frames_written() {
    let m = models();
    let f = Fmt {
        chroma420: true,
        full: false,
    };
    let yuv: Vec<Vec<u8>> = frames(3).iter().map(|p| to_yuv(p, f)).collect();
    let mut stream = y4m(&format!("YUV4MPEG2 W{W} H{H} C420jpeg"), &yuv);
    stream.truncate(stream.len() - yuv[2].len() / 2);
    let out = edge_in(&["stream", "-m", s(&m.split), "-j", "1"], Some(&stream));
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(stderr(&out).contains("inside frame 3"), "{}", stderr(&out));
    let (_, got) = y4m_frames(&out.stdout, yuv[0].len() * 16);
    assert_eq!(got.len(), 2);

    let dir = scratch("stream-truncated");
    let inp = dir.join("in.y4m");
    std::fs::write(&inp, &stream).unwrap();
    let outp = dir.join("out.y4m");
    let o = edge(&[
        "stream",
        "-i",
        s(&inp),
        "-o",
        s(&outp),
        "-m",
        s(&m.split),
        "-j",
        "1",
    ]);
    assert_eq!(code(&o), 3);
    assert_eq!(std::fs::read(&outp).unwrap(), out.stdout);
    assert_eq!(common::listing(&dir), ["in.y4m", "out.y4m"]);
}

/// Not a y4m stream, a bad size, an unsupported colorspace, a raw size that is not a size:
/// clear errors with no output at all.
#[test]
fn a_bad_header_is_refused_before_any_output() {
    let m = models();
    let dir = scratch("stream-bad");
    let outp = dir.join("out.y4m");
    for (input, args, exit, msg) in [
        (
            &b"GIF89a\x01\x00\x01\x00"[..],
            &[][..],
            3,
            "not a YUV4MPEG2 stream",
        ),
        (b"YUV4MPEG2 W0 H2\nFRAME\n", &[], 3, "bad frame W"),
        (
            b"YUV4MPEG2 W4 H4 C422\nFRAME\n",
            &[],
            3,
            "C422 is not supported",
        ),
        (b"", &[], 3, "empty input"),
        (b"xxxx", &["--size", "4by4"][..], 2, "is not a size WxH"),
    ] {
        let a = [&["stream", "-m", s(&m.split), "-o", s(&outp)][..], args].concat();
        let out = edge_in(&a, Some(input));
        assert_eq!(code(&out), exit, "{msg}: {}", stderr(&out));
        assert!(stderr(&out).contains(msg), "{msg}: {}", stderr(&out));
        assert!(common::listing(&dir).is_empty(), "{msg}: output left");
    }
}

/// The reader of stdout goes away after one frame while frames keep coming: the stream stops
/// cleanly (exit 0, a note on stderr) instead of hanging or panicking.
#[test]
fn a_reader_that_goes_away_stops_the_stream_cleanly() {
    let m = models();
    let f = Fmt {
        chroma420: true,
        full: false,
    };
    let one = to_yuv(&frames(1)[0], f);
    let mut child = edge_command()
        .args(["stream", "-m", s(&m.split), "-j", "1", "--idr-frames", "1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let header = format!("YUV4MPEG2 W{W} H{H} C420jpeg\n");
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(header.as_bytes());
        for _ in 0..500 {
            if stdin
                .write_all(b"FRAME\n")
                .and_then(|()| stdin.write_all(&one))
                .is_err()
            {
                return;
            }
        }
    });
    let mut stdout = child.stdout.take().unwrap();
    let want = format!("YUV4MPEG2 W{} H{} C420jpeg\n", 4 * W, 4 * H).len() + 6 + 16 * W * H * 3 / 2;
    let mut got = vec![0u8; want];
    stdout.read_exact(&mut got).unwrap();
    drop(stdout);
    let t = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "kdsr-edge did not stop"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    feeder.join().unwrap();
    eprintln!("{err}");
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(err.contains("was closed after"), "{err}");
}

/// `-s 4` is accepted, other scales refused with the reason; a folded model cannot re-estimate.
#[test]
fn scale_and_model_kind_checks() {
    let m = models();
    let yuv = to_yuv(
        &frames(1)[0],
        Fmt {
            chroma420: true,
            full: false,
        },
    );
    let stream = y4m(&format!("YUV4MPEG2 W{W} H{H}"), &[yuv]);
    let ok = edge_in(
        &["stream", "-m", s(&m.split), "-s", "4", "-q"],
        Some(&stream),
    );
    assert_eq!(code(&ok), 0, "{}", stderr(&ok));
    assert!(ok.stderr.is_empty(), "-q printed: {}", stderr(&ok));
    let bad = edge_in(&["stream", "-m", s(&m.split), "-s", "2"], Some(&stream));
    assert_eq!(code(&bad), 2);
    assert!(
        stderr(&bad).contains("fixed by the network"),
        "{}",
        stderr(&bad)
    );
    let folded = edge_in(
        &["stream", "-m", s(&m.folded), "--idr-every", "10"],
        Some(&stream),
    );
    assert_eq!(code(&folded), 2, "{}", stderr(&folded));
    let folded = edge_in(&["stream", "-m", s(&m.folded)], Some(&stream));
    assert_eq!(code(&folded), 0, "{}", stderr(&folded));
}
