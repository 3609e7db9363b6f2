//! The before/after scene of a real ×4 run (the shipped `student-edge` model through
//! `kdsr-runtime`) rendered into an in-memory framebuffer and compared with the reference PNG
//! `tests/fixtures/scene-butterfly-240x135.png`; and the same frame under `MockDisplay`.
//!
//! Regenerate the reference (after an intended change to the drawing code or the model):
//! `KDSR_BLESS=1 cargo test -p kdsr-firmware-examples --test framebuffer_reference`
//! (see `tests/fixtures/README.md`).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use embedded_graphics::mock_display::MockDisplay;
use embedded_graphics::pixelcolor::Rgb565;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::Rectangle;
use kdsr_firmware_examples::pipeline::{UpscaledFrame, centre_crop, read_frame, upscale_frame};
use kdsr_firmware_examples::{BeforeAfter, Dither, Fit, Framebuffer, to_rgb565};
use kdsr_runtime::{Options, Upscaler};

const REFERENCE: &str = "tests/fixtures/scene-butterfly-240x135.png";
const STATUS: &str = "butterfly 32x32>128x128 x4";
/// Pixels allowed to differ from the reference (CPU-dependent float rounding can move an 8-bit
/// output value across a rounding or dithering threshold), each by at most one 5/6-bit level
/// per channel. A change of layout, fit, dithering or model moves far more.
const MAX_DIFFERENT: f64 = 0.01;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// The centre 32×32 of Set5 butterfly, upscaled ×4 by the shipped model (once per test binary).
fn frame() -> &'static UpscaledFrame {
    static FRAME: OnceLock<UpscaledFrame> = OnceLock::new();
    FRAME.get_or_init(|| {
        let model = root().join("../models/edge/student-edge");
        let up = Upscaler::load(&model, Options::default()).expect("the shipped model loads");
        let img = read_frame(&root().join("../data/Set5/butterfly.png")).expect("Set5 butterfly");
        let crop = centre_crop(&img, 32, 32).expect("crop");
        let out = upscale_frame(&up, &crop, None).expect("upscale");
        assert_eq!(out.sizes(), (Size::new(32, 32), Size::new(128, 128)));
        assert!(out.idr.is_some() && out.latency.ide.is_some());
        out
    })
}

fn render() -> Framebuffer<Rgb565> {
    let f = frame();
    let mut fb = Framebuffer::new(Size::new(240, 135), Rgb565::BLACK);
    let area = fb.bounding_box();
    BeforeAfter {
        fit: Fit::Crop,
        dither: Dither::Bayer4,
        status: Some(STATUS),
        ..BeforeAfter::new(&f.lr, &f.sr, 4, area)
    }
    .draw(&mut fb)
    .expect("draw");
    assert_eq!(fb.out_of_bounds(), 0);
    fb
}

fn to565(p: [u8; 3]) -> [u8; 3] {
    [p[0] >> 3, p[1] >> 2, p[2] >> 3]
}

#[test]
fn scene_matches_reference_png() {
    let fb = render();
    let got = fb.to_rgb_image();
    let path = root().join(REFERENCE);
    if std::env::var_os("KDSR_BLESS").is_some() {
        let mut png = Vec::new();
        got.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .expect("encode");
        kdsr_core::fsutil::write_atomic(&path, &png).expect("write the reference");
        eprintln!("wrote {}", path.display());
        return;
    }
    let want = image::open(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (regenerate with KDSR_BLESS=1)", path.display()))
        .to_rgb8();
    assert_eq!(want.dimensions(), got.dimensions());
    let mut different = 0usize;
    let mut worst = 0i32;
    for (a, b) in want.pixels().zip(got.pixels()) {
        let (a, b) = (to565(a.0), to565(b.0));
        if a != b {
            different += 1;
            for c in 0..3 {
                worst = worst.max((i32::from(a[c]) - i32::from(b[c])).abs());
            }
        }
    }
    let frac = different as f64 / f64::from(got.width() * got.height());
    if frac > MAX_DIFFERENT || worst > 1 {
        let out = std::env::temp_dir().join("kdsr-scene-butterfly-240x135.actual.png");
        let _ = got.save(&out);
        panic!(
            "{different} pixels ({:.2} %) differ from {} (worst {worst} levels); this run is in \
             {}",
            frac * 100.0,
            path.display(),
            out.display()
        );
    }
}

#[test]
fn reference_is_the_scene_of_its_parts() {
    let fb = render();
    let f = frame();
    // Side by side at 240×135 with the 6×10 status line: panels 119×123 at x 0 and 121; the
    // 128×128 output and the ×4 input are centre-cropped to 119×123 (source offset 4, 2).
    for (x, y) in [(30, 40), (60, 100), (118, 122), (20, 15)] {
        let p = Point::new(121 + x, y);
        let want = to_rgb565(
            f.sr.get_pixel(4 + x as u32, 2 + y as u32).0,
            p.x,
            p.y,
            Dither::Bayer4,
        );
        assert_eq!(fb.pixel(p), Some(want), "after panel at {p:?}");
        let p = Point::new(x, y);
        let lr = f.lr.get_pixel((4 + x as u32) / 4, (2 + y as u32) / 4).0;
        assert_eq!(
            fb.pixel(p),
            Some(to_rgb565(lr, x, y, Dither::Bayer4)),
            "before at {p:?}"
        );
    }
    let strip = Rectangle::new(Point::new(0, 123), Size::new(240, 12));
    assert!(strip.points().any(|p| fb.pixel(p) == Some(Rgb565::WHITE)));
    assert!(
        Rectangle::new(Point::new(119, 0), Size::new(2, 123))
            .points()
            .all(|p| fb.pixel(p) == Some(Rgb565::BLACK)),
        "gap between the panels"
    );
}

#[test]
fn real_crop_under_mock_display() {
    let f = frame();
    let mut d: MockDisplay<Rgb565> = MockDisplay::new();
    d.set_allow_overdraw(true);
    let area = Rectangle::new(Point::zero(), Size::new(64, 32));
    let out = BeforeAfter::new(&f.lr, &f.sr, 4, area)
        .draw(&mut d)
        .expect("draw");
    assert_eq!(d.affected_area(), area);
    let after = out.after.expect("placed");
    // 64×32 → panels 31×32; the 128×128 output is shown 1:1 from (48, 48).
    assert_eq!(
        after.src,
        Rectangle::new(Point::new(48, 48), Size::new(31, 32))
    );
    for p in Rectangle::new(Point::new(33, 14), Size::new(31, 18)).points() {
        let s = f.sr.get_pixel((p.x - 33 + 48) as u32, (p.y + 48) as u32).0;
        assert_eq!(d.get_pixel(p), Some(to_rgb565(s, p.x, p.y, Dither::Bayer4)));
    }
}
