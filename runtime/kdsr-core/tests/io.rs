//! Image I/O: exact round trips at 8 and 16 bits with and without alpha, fixture PNG, errors that
//! name the path, refusal to lose bit depth or alpha, atomic writes.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use std::path::Path;

use kdsr_core::io::{
    BitDepth, ColorKind, LoadedImage, SaveOptions, from_dynamic, load_image, planar_to_u8_hwc,
    save_image, save_image_with, to_dynamic, u8_hwc_to_planar,
};
use kdsr_core::{Error, Planar};

/// A deterministic image whose values are exact multiples of 1/max (max = 255 or 65535).
fn pattern(c: usize, h: usize, w: usize, depth: BitDepth, seed: u32) -> Planar {
    let max = depth.max_value();
    let data = (0..c * h * w)
        .map(|i| {
            let v = (i as u32)
                .wrapping_mul(2_654_435_761)
                .wrapping_add(seed.wrapping_mul(40_503))
                % (max + 1);
            v as f32 / max as f32
        })
        .collect();
    Planar::new(c, h, w, data).unwrap()
}

/// Files in `dir` (names), sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn assert_names_path(err: &Error, path: &Path) {
    let msg = err.to_string();
    assert!(
        msg.contains(&path.display().to_string()),
        "error does not name {}: {msg}",
        path.display()
    );
}

#[test]
fn round_trips_are_exact() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("png", 3, false, BitDepth::Eight),
        ("png", 3, false, BitDepth::Sixteen),
        ("png", 1, false, BitDepth::Eight),
        ("png", 1, false, BitDepth::Sixteen),
        ("png", 3, true, BitDepth::Eight),
        ("png", 3, true, BitDepth::Sixteen),
        ("png", 1, true, BitDepth::Eight),
        ("png", 1, true, BitDepth::Sixteen),
        ("tiff", 3, false, BitDepth::Eight),
        ("tif", 3, false, BitDepth::Sixteen),
        ("tiff", 1, false, BitDepth::Sixteen),
        ("tiff", 3, true, BitDepth::Sixteen),
        ("pam", 3, true, BitDepth::Sixteen),
        ("pam", 1, true, BitDepth::Eight),
        ("pnm", 1, false, BitDepth::Sixteen),
        ("ppm", 3, false, BitDepth::Eight),
        ("pgm", 1, false, BitDepth::Eight),
        ("webp", 3, false, BitDepth::Eight),
        ("webp", 3, true, BitDepth::Eight),
    ];
    for (i, (ext, c, with_alpha, depth)) in cases.into_iter().enumerate() {
        let path = dir.path().join(format!("img{i}.{ext}"));
        let rgb = pattern(c, 13, 17, depth, i as u32);
        let alpha = with_alpha.then(|| pattern(1, 13, 17, depth, 100 + i as u32));
        save_image(&path, &rgb, alpha.as_ref(), depth)
            .unwrap_or_else(|e| panic!("{ext} c={c} alpha={with_alpha} {depth:?}: {e}"));
        let loaded = load_image(&path).unwrap();
        let label = format!("{ext} c={c} alpha={with_alpha} {depth:?}");
        assert_eq!(loaded.bit_depth, depth, "{label}");
        assert_eq!(loaded.rgb, rgb, "{label}: colour values differ");
        assert_eq!(loaded.alpha, alpha, "{label}: alpha differs");
        assert_eq!(loaded.color.channels(), c, "{label}");
        assert_eq!(
            loaded.color,
            if c == 1 {
                ColorKind::Gray
            } else {
                ColorKind::Rgb
            },
            "{label}"
        );
    }
    // Only the saved files are there: no temporary files left behind.
    assert!(listing(dir.path()).iter().all(|n| n.starts_with("img")));
}

#[test]
fn gray_webp_reads_back_as_rgb_with_equal_values() {
    // WebP has no gray mode; the values survive, the colour kind does not.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.webp");
    let g = pattern(1, 9, 11, BitDepth::Eight, 3);
    save_image(&path, &g, None, BitDepth::Eight).unwrap();
    let l = load_image(&path).unwrap();
    assert_eq!(l.color, ColorKind::Rgb);
    for c in 0..3 {
        assert_eq!(l.rgb.plane(c), g.plane(0));
    }
}

#[test]
fn fixture_png_equals_its_npy() {
    let png = common::pipeline("in_img.png");
    let loaded = load_image(&png).unwrap();
    assert_eq!(loaded.bit_depth, BitDepth::Eight);
    assert_eq!(loaded.color, ColorKind::Rgb);
    assert!(loaded.alpha.is_none());
    assert_eq!(loaded.rgb.shape(), [3, 120, 96]);

    let npy_path = common::pipeline("in_img_u8.npy");
    let bytes = std::fs::read(&npy_path).unwrap();
    let arr = npyz::NpyFile::new(&bytes[..]).unwrap();
    assert_eq!(arr.shape(), &[120, 96, 3]);
    let want: Vec<u8> = arr.into_vec::<u8>().unwrap();
    assert_eq!(planar_to_u8_hwc(&loaded.rgb).unwrap(), want);
    assert_eq!(u8_hwc_to_planar(3, 120, 96, &want).unwrap(), loaded.rgb);

    for name in [
        "noisy_sigma10",
        "imresize_img_down4",
        "classic_iso2.6_x4_lr",
    ] {
        let l = load_image(common::pipeline(&format!("{name}.png"))).unwrap();
        let bytes = std::fs::read(common::pipeline(&format!("{name}_u8.npy"))).unwrap();
        let want: Vec<u8> = npyz::NpyFile::new(&bytes[..]).unwrap().into_vec().unwrap();
        assert_eq!(planar_to_u8_hwc(&l.rgb).unwrap(), want, "{name}");
    }
}

#[test]
fn load_errors_name_the_path_and_do_not_panic() {
    let dir = tempfile::tempdir().unwrap();

    let missing = dir.path().join("nope.png");
    let e = load_image(&missing).unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e:?}");
    assert_names_path(&e, &missing);

    let garbage = dir.path().join("garbage.png");
    std::fs::write(&garbage, b"this is not an image at all").unwrap();
    let e = load_image(&garbage).unwrap_err();
    assert!(matches!(e, Error::Image { .. }), "{e:?}");
    assert_names_path(&e, &garbage);

    let unknown = dir.path().join("garbage.xyz");
    std::fs::write(&unknown, b"\x00\x01\x02\x03 nothing").unwrap();
    let e = load_image(&unknown).unwrap_err();
    assert!(matches!(e, Error::Image { .. }), "{e:?}");
    assert_names_path(&e, &unknown);

    let full = std::fs::read(common::pipeline("in_img.png")).unwrap();
    for keep in [8, 33, 100, full.len() / 2, full.len() - 13] {
        let truncated = dir.path().join(format!("trunc{keep}.png"));
        std::fs::write(&truncated, &full[..keep]).unwrap();
        let e = load_image(&truncated).unwrap_err();
        assert!(matches!(e, Error::Image { .. }), "{keep}: {e:?}");
        assert_names_path(&e, &truncated);
    }

    // A PNG with a corrupted pixel-data byte (CRC mismatch / bad zlib).
    let mut corrupt = full.clone();
    let mid = corrupt.len() / 2;
    corrupt[mid] ^= 0xff;
    let path = dir.path().join("corrupt.png");
    std::fs::write(&path, &corrupt).unwrap();
    let e = load_image(&path).unwrap_err();
    assert_names_path(&e, &path);

    // A directory is not an image.
    let e = load_image(dir.path()).unwrap_err();
    assert_names_path(&e, dir.path());
}

/// Issue 14: a JPEG cut before its end-of-image marker used to decode "successfully" with the
/// missing part filled grey (baseline cut at 10-90 %, progressive at 90 %); `load_image` (the
/// trainer's `eval` and data loader, the converter's `--image` / `--calib`) now refuses it as
/// truncated, naming the file, as `kdsr-edge` does (exit 3 there and in the converter).
#[test]
fn truncated_jpegs_are_refused_not_filled_grey() {
    let dir = tempfile::tempdir().unwrap();
    let mut baseline = Vec::new();
    let img = pattern(3, 48, 64, BitDepth::Eight, 7);
    to_dynamic(&img, None, BitDepth::Eight)
        .unwrap()
        .write_to(
            &mut std::io::Cursor::new(&mut baseline),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
    // The runtime's progressive fixture (runtime/tests/fixtures/make_fixtures.py).
    let progressive = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/progressive.jpg"),
    )
    .unwrap();
    for (name, full, cuts) in [
        ("baseline", &baseline, &[10, 30, 50, 70, 90][..]),
        ("progressive", &progressive, &[90][..]),
    ] {
        let whole = dir.path().join(format!("{name}.jpg"));
        std::fs::write(&whole, full).unwrap();
        load_image(&whole).unwrap();
        for pct in cuts {
            let path = dir.path().join(format!("{name}-cut{pct}.jpg"));
            std::fs::write(&path, &full[..full.len() * pct / 100]).unwrap();
            let e = load_image(&path).unwrap_err();
            assert!(matches!(e, Error::Image { .. }), "{name} {pct} %: {e:?}");
            assert!(e.to_string().contains("truncated JPEG"), "{e}");
            assert_names_path(&e, &path);
        }
    }
}

#[test]
fn float_images_are_refused_not_converted() {
    let img = image::DynamicImage::ImageRgb32F(
        image::ImageBuffer::from_raw(2, 2, vec![0.5f32; 12]).unwrap(),
    );
    let e = from_dynamic(&img).unwrap_err();
    assert!(matches!(e, Error::UnsupportedFormat { .. }), "{e:?}");

    // The same through a float TIFF file.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("float.tiff");
    img.save(&path).unwrap();
    let e = load_image(&path).unwrap_err();
    assert!(matches!(e, Error::UnsupportedFormat { .. }), "{e:?}");
    assert_names_path(&e, &path);
}

#[test]
fn lossy_saves_are_refused_and_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let rgb = pattern(3, 8, 8, BitDepth::Sixteen, 1);
    let rgb8 = pattern(3, 8, 8, BitDepth::Eight, 1);
    let gray8 = pattern(1, 8, 8, BitDepth::Eight, 1);
    let alpha = pattern(1, 8, 8, BitDepth::Eight, 2);

    let refused: Vec<(&str, &Planar, Option<&Planar>, BitDepth)> = vec![
        ("a.jpg", &rgb, None, BitDepth::Sixteen),
        ("b.jpeg", &rgb8, Some(&alpha), BitDepth::Eight),
        ("c.webp", &rgb, None, BitDepth::Sixteen),
        ("d.ppm", &rgb, None, BitDepth::Sixteen),
        ("e.ppm", &rgb8, Some(&alpha), BitDepth::Eight),
        ("f.pgm", &gray8, Some(&alpha), BitDepth::Eight),
        ("g.tiff", &gray8, Some(&alpha), BitDepth::Eight),
        ("h.ppm", &gray8, None, BitDepth::Eight),
        ("i.pgm", &rgb8, None, BitDepth::Eight),
        ("j.bmp", &rgb8, None, BitDepth::Eight),
        ("noext", &rgb8, None, BitDepth::Eight),
        ("k.pbm", &gray8, None, BitDepth::Eight),
    ];
    for (name, img, a, depth) in refused {
        let path = dir.path().join(name);
        let e = save_image(&path, img, a, depth).unwrap_err();
        println!("{e}");
        assert!(
            matches!(e, Error::UnsupportedFormat { .. }),
            "{name}: {e:?}"
        );
        assert_names_path(&e, &path);
        assert!(!path.exists(), "{name}: a file was left at the target");
    }
    assert!(listing(dir.path()).is_empty(), "{:?}", listing(dir.path()));

    // A colour kind the format cannot hold stays an error even with allow_lossy.
    let path = dir.path().join("rgb.pgm");
    assert!(save_image_with(&path, &rgb8, None, BitDepth::Eight, SaveOptions::lossy()).is_err());
    assert!(!path.exists());

    // Invalid inputs fail before anything is written.
    let path = dir.path().join("bad.png");
    let mut nan = rgb8.clone();
    nan.data_mut()[3] = f32::NAN;
    assert!(matches!(
        save_image(&path, &nan, None, BitDepth::Eight),
        Err(Error::NonFinite { .. })
    ));
    let two = Planar::filled(2, 4, 4, 0.5).unwrap();
    assert!(matches!(
        save_image(&path, &two, None, BitDepth::Eight),
        Err(Error::InvalidParameter { .. })
    ));
    let small_alpha = Planar::filled(1, 4, 4, 0.5).unwrap();
    assert!(matches!(
        save_image(&path, &rgb8, Some(&small_alpha), BitDepth::Eight),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(!path.exists());

    // A missing directory: I/O error naming the path, nothing created.
    let path = dir.path().join("no/such/dir/x.png");
    let e = save_image(&path, &rgb8, None, BitDepth::Eight).unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e:?}");
    assert_names_path(&e, &path);
    assert!(listing(dir.path()).is_empty(), "{:?}", listing(dir.path()));
}

#[test]
fn failed_rename_removes_the_temporary_file() {
    // The target is an existing non-empty directory: encoding and the temporary file succeed,
    // the rename fails, and nothing but the directory remains.
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out.png");
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("keep"), b"x").unwrap();
    let rgb = pattern(3, 8, 8, BitDepth::Eight, 5);
    let e = save_image(&target, &rgb, None, BitDepth::Eight).unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e:?}");
    assert_eq!(listing(dir.path()), vec!["out.png".to_string()]);
    assert!(target.is_dir());
}

#[test]
fn overwrite_replaces_the_file_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.png");
    let a = pattern(3, 8, 8, BitDepth::Eight, 1);
    let b = pattern(3, 8, 8, BitDepth::Eight, 2);
    save_image(&path, &a, None, BitDepth::Eight).unwrap();
    save_image(&path, &b, None, BitDepth::Eight).unwrap();
    assert_eq!(load_image(&path).unwrap().rgb, b);
    // A refused save keeps the old file intact.
    assert!(save_image(path.with_extension("jpg"), &b, None, BitDepth::Sixteen).is_err());
    assert_eq!(load_image(&path).unwrap().rgb, b);
    assert_eq!(listing(dir.path()), vec!["x.png".to_string()]);
}

#[test]
fn allow_lossy_quantises_and_drops_alpha_explicitly() {
    let dir = tempfile::tempdir().unwrap();
    let rgb16 = pattern(3, 8, 8, BitDepth::Sixteen, 9);
    let alpha = pattern(1, 8, 8, BitDepth::Sixteen, 10);

    // 16-bit RGBA → PPM: 8-bit RGB, alpha dropped, values = 8-bit quantisation.
    let path = dir.path().join("x.ppm");
    save_image_with(
        &path,
        &rgb16,
        Some(&alpha),
        BitDepth::Sixteen,
        SaveOptions::lossy(),
    )
    .unwrap();
    let l = load_image(&path).unwrap();
    assert_eq!(l.bit_depth, BitDepth::Eight);
    assert!(l.alpha.is_none());
    assert_eq!(l.rgb, rgb16.map(kdsr_core::pipeline::quantize));

    // 8-bit RGB JPEG is allowed without the flag (JPEG is chosen knowingly), and is lossy.
    let rgb8 = pattern(3, 16, 16, BitDepth::Eight, 4).map(|v| 0.25 + 0.5 * v);
    let path = dir.path().join("x.jpg");
    save_image(&path, &rgb8, None, BitDepth::Eight).unwrap();
    let l = load_image(&path).unwrap();
    assert_eq!(
        (l.bit_depth, l.color, l.rgb.shape()),
        (BitDepth::Eight, ColorKind::Rgb, [3, 16, 16])
    );
    // 16-bit to JPEG with the flag: written at 8 bits.
    save_image_with(&path, &rgb16, None, BitDepth::Sixteen, SaveOptions::lossy()).unwrap();
    assert_eq!(load_image(&path).unwrap().bit_depth, BitDepth::Eight);
}

#[test]
fn quantisation_rounds_half_to_even_and_clamps() {
    // 8 bits: 0.5/255 → 0 (tie to even), 1.5/255 → 2, out-of-range values clamp.
    let p = Planar::new(1, 1, 5, vec![0.5 / 255.0, 1.5 / 255.0, -0.2, 1.7, 0.5]).unwrap();
    let d = to_dynamic(&p, None, BitDepth::Eight).unwrap();
    assert_eq!(d.as_bytes(), &[0, 2, 0, 255, 128]);
    let d = to_dynamic(&p, None, BitDepth::Sixteen).unwrap();
    // 16 bits: 0.5 · 65535 = 32767.5 → 32768 (tie to even); f32(0.5/255) · 65535 is no tie.
    let want16: Vec<u16> = p.data()[..2]
        .iter()
        .map(|v| (f64::from(*v) * 65535.0).round() as u16)
        .chain([0, 65535, 32768])
        .collect();
    assert_eq!(d.as_luma16().unwrap().as_raw(), &want16);
    let tie = Planar::new(1, 1, 2, vec![0.5, 1.0 / 65535.0 * 2.5]).unwrap();
    let t = to_dynamic(&tie, None, BitDepth::Sixteen).unwrap();
    assert_eq!(t.as_luma16().unwrap().as_raw()[0], 32768);
    assert_eq!(planar_to_u8_hwc(&p).unwrap(), vec![0, 2, 0, 255, 128]);

    // Colour types chosen from channels, alpha and depth.
    let rgb = Planar::filled(3, 2, 2, 0.5).unwrap();
    let a = Planar::filled(1, 2, 2, 1.0).unwrap();
    use image::ColorType as C;
    for (c, al, depth, want) in [
        (&p, None, BitDepth::Eight, C::L8),
        (&rgb, None, BitDepth::Eight, C::Rgb8),
        (&rgb, Some(&a), BitDepth::Eight, C::Rgba8),
        (&rgb, Some(&a), BitDepth::Sixteen, C::Rgba16),
        (&rgb, None, BitDepth::Sixteen, C::Rgb16),
        (&p, None, BitDepth::Sixteen, C::L16),
    ] {
        assert_eq!(to_dynamic(c, al, depth).unwrap().color(), want);
    }
    let g = Planar::filled(1, 2, 2, 0.5).unwrap();
    assert_eq!(
        to_dynamic(&g, Some(&a), BitDepth::Eight).unwrap().color(),
        C::La8
    );
    assert_eq!(
        to_dynamic(&g, Some(&a), BitDepth::Sixteen).unwrap().color(),
        C::La16
    );
    // from_dynamic inverts to_dynamic on exact 16-bit levels.
    let g = Planar::filled(1, 2, 2, 32768.0 / 65535.0).unwrap();
    let back: LoadedImage =
        from_dynamic(&to_dynamic(&g, Some(&a), BitDepth::Sixteen).unwrap()).unwrap();
    assert_eq!(
        (back.rgb, back.alpha, back.bit_depth),
        (g, Some(a), BitDepth::Sixteen)
    );
}

#[test]
fn loaded_image_save_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("la16.png");
    let img = LoadedImage {
        rgb: pattern(1, 5, 7, BitDepth::Sixteen, 1),
        alpha: Some(pattern(1, 5, 7, BitDepth::Sixteen, 2)),
        bit_depth: BitDepth::Sixteen,
        color: ColorKind::Gray,
    };
    img.save(&path, SaveOptions::default()).unwrap();
    assert_eq!(load_image(&path).unwrap(), img);
}

#[test]
fn list_images_takes_the_decodable_extensions_sorted_and_not_recursive() {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "b.PNG",
        "a.jpg",
        "c.jfif",
        "d.pam",
        "notes.txt",
        "e.bmp",
        "noext",
    ] {
        std::fs::write(dir.path().join(name), b"x").unwrap();
    }
    std::fs::create_dir(dir.path().join("sub.png")).unwrap();
    std::fs::write(dir.path().join("sub.png").join("f.png"), b"x").unwrap();
    let names: Vec<String> = kdsr_core::io::list_images(dir.path())
        .unwrap()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    // `.bmp` is not listed: the image crate is built without its BMP decoder.
    assert_eq!(names, ["a.jpg", "b.PNG", "c.jfif", "d.pam"]);
    let missing = dir.path().join("missing");
    let err = kdsr_core::io::list_images(&missing)
        .unwrap_err()
        .to_string();
    assert!(err.contains(&missing.display().to_string()), "{err}");
}

#[test]
fn image_sizes_are_width_by_height() {
    use kdsr_core::io::ImageSize;
    let s: ImageSize = "320x180".parse().unwrap();
    assert_eq!((s.width, s.height), (320, 180));
    assert_eq!(s.hw(), (180, 320));
    assert_eq!(s.to_string(), "320x180");
    for (text, w, h) in [
        ("64X48", 64, 48),
        ("128×64", 128, 64),
        (" 240 , 135 ", 240, 135),
    ] {
        assert_eq!(
            text.parse::<ImageSize>().unwrap(),
            ImageSize {
                width: w,
                height: h
            }
        );
    }
    for bad in ["320", "0x5", "5x0", "ax5", "5x", "-1x5", ""] {
        let err = bad.parse::<ImageSize>().unwrap_err();
        assert!(err.contains(&format!("`{bad}`")), "{bad}: {err}");
    }
}

#[test]
fn quantize_u16_rounds_half_even_and_clamps() {
    use kdsr_core::pipeline::quantize_u16;
    assert_eq!(quantize_u16(0.0), 0);
    assert_eq!(quantize_u16(1.0), 65535);
    assert_eq!(quantize_u16(-0.5), 0);
    assert_eq!(quantize_u16(2.0), 65535);
    assert_eq!(quantize_u16(f32::NAN), 0);
    // 0.5 · 65535 = 32767.5 (exact in f64): ties to even.
    assert_eq!(quantize_u16(0.5), 32768);
    for v in [1u16, 257, 32767, 65534] {
        assert_eq!(quantize_u16(f32::from(v) / 65535.0), v);
    }
}
