//! `MockDisplay` pattern tests of the drawing code on small synthetic crops (primary colours, so
//! every pixel has a pattern character): layout, fit/crop policies, dithering, clipping, the
//! meter's bars.

use embedded_graphics::mock_display::MockDisplay;
use embedded_graphics::pixelcolor::{BinaryColor, Rgb565};
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::Rectangle;
use image::{Rgb, RgbImage};
use kdsr_firmware_examples::color::BAYER4;
use kdsr_firmware_examples::{
    BeforeAfter, DegradationMeter, Dither, Fit, MeterStyle, Picture, Reading,
};

const K: [u8; 3] = [0, 0, 0];
const R: [u8; 3] = [255, 0, 0];
const G: [u8; 3] = [0, 255, 0];
const B: [u8; 3] = [0, 0, 255];
const W: [u8; 3] = [255, 255, 255];
const Y: [u8; 3] = [255, 255, 0];
const M: [u8; 3] = [255, 0, 255];
const C: [u8; 3] = [0, 255, 255];

/// An image from rows of colours, each repeated `block` times in both directions.
fn blocks(rows: &[&[[u8; 3]]], block: u32) -> RgbImage {
    let h = rows.len() as u32 * block;
    let w = rows[0].len() as u32 * block;
    RgbImage::from_fn(w, h, |x, y| {
        Rgb(rows[(y / block) as usize][(x / block) as usize])
    })
}

fn rect(x: i32, y: i32, w: u32, h: u32) -> Rectangle {
    Rectangle::new(Point::new(x, y), Size::new(w, h))
}

fn display() -> MockDisplay<Rgb565> {
    let mut d = MockDisplay::new();
    d.set_allow_overdraw(true);
    d
}

#[test]
fn before_after_side_by_side() {
    let lr = blocks(&[&[R, G], &[B, W]], 1);
    let sr = blocks(&[&[K, Y], &[M, C]], 4);
    let mut d = display();
    let out = BeforeAfter::new(&lr, &sr, 4, rect(0, 0, 16, 8))
        .draw(&mut d)
        .expect("draw");
    assert_eq!(out.layout.before, rect(0, 0, 8, 8));
    assert_eq!(out.layout.after, rect(8, 0, 8, 8));
    d.assert_pattern(&[
        "RRRRGGGGKKKKYYYY",
        "RRRRGGGGKKKKYYYY",
        "RRRRGGGGKKKKYYYY",
        "RRRRGGGGKKKKYYYY",
        "BBBBWWWWMMMMCCCC",
        "BBBBWWWWMMMMCCCC",
        "BBBBWWWWMMMMCCCC",
        "BBBBWWWWMMMMCCCC",
    ]);
}

#[test]
fn stacked_when_taller_than_wide_and_centred() {
    let lr = blocks(&[&[R]], 1);
    let sr = blocks(&[&[G, B]], 2);
    let mut d = display();
    BeforeAfter::new(&lr, &sr, 4, rect(0, 0, 6, 10))
        .draw(&mut d)
        .expect("draw");
    // Panels 6×5 (no gap under 32 pixels); the 4×4 "before" and the 4×2 "after" are centred.
    d.assert_pattern(&[
        "KRRRRK", "KRRRRK", "KRRRRK", "KRRRRK", "KKKKKK", //
        "KKKKKK", "KGGBBK", "KGGBBK", "KKKKKK", "KKKKKK",
    ]);
}

#[test]
fn crop_shows_the_centre_at_one_to_one() {
    let lr = blocks(
        &[&[R, G, B, W], &[Y, M, C, K], &[G, R, W, B], &[K, C, M, Y]],
        1,
    );
    let mut d = display();
    let zoomed = kdsr_firmware_examples::Zoomed {
        image: &lr,
        factor: 4,
    };
    let p = Picture {
        source: &zoomed,
        area: rect(0, 0, 8, 8),
        fit: Fit::Crop,
        dither: Dither::Bayer4,
    }
    .draw(&mut d)
    .expect("draw")
    .expect("placed");
    assert_eq!(p.src, rect(4, 4, 8, 8));
    d.assert_pattern(&[
        "MMMMCCCC", "MMMMCCCC", "MMMMCCCC", "MMMMCCCC", //
        "RRRRWWWW", "RRRRWWWW", "RRRRWWWW", "RRRRWWWW",
    ]);
}

#[test]
fn contain_shrinks_by_box_average_and_letterboxes() {
    let sr = blocks(&[&[R, G], &[B, W]], 4);
    let mut d = display();
    Picture {
        source: &sr,
        area: rect(0, 0, 6, 4),
        fit: Fit::Contain,
        dither: Dither::Bayer4,
    }
    .draw(&mut d)
    .expect("draw");
    // 8×8 → 4×4, centred in 6×4; the columns beside it are left untouched (' ').
    d.assert_pattern(&[" RRGG ", " RRGG ", " BBWW ", " BBWW "]);
}

#[test]
fn cover_fills_and_crops_the_excess() {
    let sr = blocks(&[&[R, G, B, W]], 4);
    let mut d = display();
    Picture {
        source: &sr,
        area: rect(0, 0, 4, 2),
        fit: Fit::Cover,
        dither: Dither::None,
    }
    .draw(&mut d)
    .expect("draw");
    // 16×4 → the centre 8×4 (G, B) shrunk to 4×2.
    d.assert_pattern(&["GGBB", "GGBB"]);
}

#[test]
fn bayer_pattern_of_a_flat_colour() {
    // 136 · 31/255 = 16.53: level 17 where the Bayer rank t ≥ 7, else 16.
    let img = RgbImage::from_pixel(8, 8, Rgb([136, 0, 0]));
    let mut d = display();
    Picture {
        source: &img,
        area: rect(0, 0, 8, 8),
        fit: Fit::Crop,
        dither: Dither::Bayer4,
    }
    .draw(&mut d)
    .expect("draw");
    let on = d.map(|c| BinaryColor::from(c.r() == 17));
    on.assert_pattern(&[
        ".#.#.#.#", "#.#.#.#.", ".#.#.#.#", "###.###.", //
        ".#.#.#.#", "#.#.#.#.", ".#.#.#.#", "###.###.",
    ]);
    for y in 0..8 {
        for x in 0..8 {
            let c = d.get_pixel(Point::new(x, y)).expect("drawn");
            let t = BAYER4[y as usize % 4][x as usize % 4];
            assert_eq!(c, Rgb565::new(if t >= 7 { 17 } else { 16 }, 0, 0));
        }
    }
    let mut flat = display();
    Picture {
        source: &img,
        area: rect(0, 0, 4, 4),
        fit: Fit::Crop,
        dither: Dither::None,
    }
    .draw(&mut flat)
    .expect("draw");
    assert!(
        rect(0, 0, 4, 4)
            .points()
            .all(|p| flat.get_pixel(p) == Some(Rgb565::new(17, 0, 0)))
    );
}

#[test]
fn dither_is_anchored_to_display_coordinates() {
    let img = RgbImage::from_pixel(4, 4, Rgb([136, 0, 0]));
    let mut d = display();
    Picture {
        source: &img,
        area: rect(1, 2, 4, 4),
        fit: Fit::Crop,
        dither: Dither::Bayer4,
    }
    .draw(&mut d)
    .expect("draw");
    for p in rect(1, 2, 4, 4).points() {
        let t = BAYER4[p.y as usize % 4][p.x as usize % 4];
        let want = Rgb565::new(if t >= 7 { 17 } else { 16 }, 0, 0);
        assert_eq!(d.get_pixel(p), Some(want), "at {p:?}");
    }
}

#[test]
fn labels_and_status_appear_when_there_is_room() {
    let lr = RgbImage::from_pixel(16, 12, Rgb(B));
    let sr = RgbImage::from_pixel(64, 48, Rgb(B));
    let mut d = display();
    let out = BeforeAfter {
        status: Some("x4 SR 5ms"),
        ..BeforeAfter::new(&lr, &sr, 4, rect(0, 0, 64, 40))
    }
    .draw(&mut d)
    .expect("draw");
    let (strip, font) = out.layout.status.expect("status strip");
    assert_eq!(font.character_size, Size::new(6, 10));
    assert_eq!(strip, rect(0, 28, 64, 12));
    let white_in = |r: Rectangle| r.points().any(|p| d.get_pixel(p) == Some(Rgb565::WHITE));
    assert!(white_in(strip), "status text drawn");
    assert!(white_in(rect(0, 0, 12, 8)), "LR label drawn");
    assert!(white_in(rect(33, 0, 20, 8)), "KDSR label drawn");
    assert!(
        !white_in(rect(0, 12, 64, 16)),
        "pictures are blue, not overwritten"
    );
}

#[test]
fn any_size_draws_inside_its_area() {
    let lr = blocks(&[&[R, G, B], &[W, Y, M]], 3);
    let sr = blocks(&[&[R, G, B], &[W, Y, M]], 12);
    for (w, h) in [
        (0, 0),
        (1, 1),
        (2, 1),
        (1, 9),
        (7, 3),
        (13, 40),
        (40, 13),
        (59, 58),
    ] {
        for fit in [Fit::Crop, Fit::Contain, Fit::Cover] {
            let area = rect(3, 5, w, h);
            let mut d = display();
            BeforeAfter {
                fit,
                status: Some("9x6>36x24 SR 12ms IDE 3ms"),
                ..BeforeAfter::new(&lr, &sr, 4, area)
            }
            .draw(&mut d)
            .expect("draw");
            let touched = d.affected_area();
            if w == 0 || h == 0 {
                assert_eq!(touched.size, Size::zero());
            } else {
                assert_eq!(touched, area, "{w}x{h} {fit:?}");
            }
        }
    }
    let empty = RgbImage::new(0, 0);
    let mut d = display();
    let out = BeforeAfter::new(&empty, &empty, 4, rect(0, 0, 20, 10))
        .draw(&mut d)
        .expect("draw");
    assert_eq!((out.before, out.after), (None, None));
}

#[test]
fn meter_bars_only() {
    let reading = Reading {
        blur_sigma: 2.0,
        noise: 5.0,
        distance: 0.0,
        blur_max: 4.0,
        noise_max: 20.0,
    };
    let mut d: MockDisplay<BinaryColor> = MockDisplay::new();
    d.set_allow_overdraw(true);
    DegradationMeter {
        reading: &reading,
        area: rect(0, 0, 20, 12),
        style: MeterStyle {
            foreground: BinaryColor::On,
            background: BinaryColor::Off,
        },
        labels: false,
        title: "",
    }
    .draw(&mut d)
    .expect("draw");
    // Rows of 4: a 3-pixel outlined bar and a gap; inner width 18: 2/4 → 9, 5/20 → 5 (4.5
    // rounded up), exp(−0) → 18.
    d.assert_pattern(&[
        "####################",
        "##########.........#",
        "####################",
        "....................",
        "####################",
        "######.............#",
        "####################",
        "....................",
        "####################",
        "####################",
        "####################",
        "....................",
    ]);
}

#[test]
fn meter_with_labels_on_64x32() {
    let reading = Reading {
        blur_sigma: 4.0,
        noise: 0.0,
        distance: f64::INFINITY,
        blur_max: 4.0,
        noise_max: 20.0,
    };
    let mut d: MockDisplay<BinaryColor> = MockDisplay::new();
    d.set_allow_overdraw(true);
    let area = rect(0, 0, 64, 32);
    DegradationMeter::mono(&reading, area, "KDSR")
        .draw(&mut d)
        .expect("draw");
    assert_eq!(d.affected_area(), area);
    // 64 pixels hold the labelled rows only in 4×6 (11 characters + a bar of ≥ 16 pixels): the
    // BLUR bar (full) is 64 − 21 − 24 − 2 = 17 pixels wide from x = 21.
    let on = |x: i32, y: i32| d.get_pixel(Point::new(x, y)) == Some(BinaryColor::On);
    let rows: Vec<i32> = (0..32).filter(|y| (21..38).all(|x| on(x, *y))).collect();
    assert!(!rows.is_empty(), "a full BLUR bar");
    assert!(
        !on(38, rows[0]) || !on(39, rows[0]),
        "bar ends before the value text"
    );
}
