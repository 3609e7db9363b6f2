//! Writes a test video for `kdsr-edge stream` on stdout: `N` frames of `WxH` cut from an image at
//! shifting offsets (a slow pan), as YUV4MPEG2 C420jpeg (BT.601 limited range, the conversion
//! `kdsr_runtime::video` uses).
//!
//! ```sh
//! cargo run -p kdsr-runtime --example make-y4m -- data/Set14/monarch.png 320x240 30 > pan.y4m
//! ```
#![allow(clippy::unwrap_used)] // an example: a panic is the error report

use std::io::Write;

use kdsr_runtime::video::{FrameFormat, Layout, Range, rgb_to_frame};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [image, size, n] = args.as_slice() else {
        eprintln!("usage: make-y4m IMAGE WxH FRAMES > out.y4m");
        std::process::exit(2);
    };
    let (w, h) = size.split_once('x').unwrap();
    let (w, h): (usize, usize) = (w.parse().unwrap(), h.parse().unwrap());
    let n: usize = n.parse().unwrap();
    let img = kdsr_core::io::load_image(image).unwrap().rgb;
    assert!(
        img.width() >= w && img.height() >= h,
        "the image is smaller than {w}x{h}"
    );
    let f = FrameFormat {
        width: w,
        height: h,
        layout: Layout::Yuv420,
        range: Range::Limited,
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    writeln!(out, "YUV4MPEG2 W{w} H{h} F25:1 Ip A1:1 C420jpeg").unwrap();
    let (span_x, span_y) = (img.width() - w, img.height() - h);
    let mut buf = Vec::new();
    for i in 0..n {
        let t = if n > 1 {
            i as f64 / (n - 1) as f64
        } else {
            0.0
        };
        let (x, y) = ((t * span_x as f64) as usize, (t * span_y as f64) as usize);
        buf.clear();
        rgb_to_frame(&f, &img.crop(y, x, h, w).unwrap(), &mut buf).unwrap();
        out.write_all(b"FRAME\n").unwrap();
        out.write_all(&buf).unwrap();
    }
    out.flush().unwrap();
}
