//! The training data pipeline: listing and skipping, crop + flips against direct indexing,
//! determinism in (seed, iteration), exact resume, in-order delivery, cached vs on-demand decoding,
//! worker errors and prompt shutdown.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use image::{ImageBuffer, Luma, Rgb, RgbImage};
use kdsr_trainer::data::{
    Augment, Dataset, Loader, RgbU8, apply_augment, crop_augment, iteration_rng, uniform_below,
};
use tch::{Device, Kind, Tensor};

/// A deterministic test image whose pixels differ from their neighbours in every channel.
fn pattern(w: u32, h: u32, salt: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        Rgb([
            ((x * 7 + y * 13 + salt) % 256) as u8,
            ((x * 3 + y * 29 + 2 * salt) % 256) as u8,
            ((x * 31 + y * 5 + 3 * salt + 17) % 256) as u8,
        ])
    })
}

/// A folder with `n` pattern images of assorted sizes (all ≥ 48).
fn folder(n: u32) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for i in 0..n {
        pattern(48 + 5 * i, 56 + 3 * i, i)
            .save(dir.path().join(format!("img{i:02}.png")))
            .expect("save");
    }
    dir
}

fn open(dir: &Path, min: usize, cache_mib: usize) -> Dataset {
    Dataset::open(&[dir.to_path_buf()], min, cache_mib)
        .expect("open")
        .0
}

fn values(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(t.flatten(0, -1)).expect("to vec")
}

fn rgb_u8(img: &RgbImage) -> RgbU8 {
    RgbU8::new(
        img.width() as usize,
        img.height() as usize,
        img.as_raw().clone(),
    )
    .expect("rgb")
}

/// The augmented crop built step by step as the official code does: crop, then hflip, vflip,
/// transpose on a `[P][P][3]` array, then CHW / 255.
fn reference_crop(img: &RgbU8, a: &Augment, p: usize) -> Vec<f32> {
    let mut c: Vec<Vec<[u8; 3]>> = (0..p)
        .map(|y| {
            (0..p)
                .map(|x| {
                    let (r, col) = (a.top + y, a.left + x);
                    [img.at(r, col, 0), img.at(r, col, 1), img.at(r, col, 2)]
                })
                .collect()
        })
        .collect();
    if a.hflip {
        for row in &mut c {
            row.reverse();
        }
    }
    if a.vflip {
        c.reverse();
    }
    if a.transpose {
        c = (0..p).map(|y| (0..p).map(|x| c[x][y]).collect()).collect();
    }
    let mut out = vec![0.0f32; 3 * p * p];
    for y in 0..p {
        for x in 0..p {
            for ch in 0..3 {
                out[ch * p * p + y * p + x] = f32::from(c[y][x][ch]) / 255.0;
            }
        }
    }
    out
}

#[test]
fn every_flip_combination_matches_direct_indexing() {
    let img = rgb_u8(&pattern(40, 33, 3));
    let p = 16;
    for bits in 0..8u8 {
        let a = Augment {
            top: 9,
            left: 21,
            hflip: bits & 1 != 0,
            vflip: bits & 2 != 0,
            transpose: bits & 4 != 0,
        };
        let mut out = vec![0.0f32; 3 * p * p];
        apply_augment(&img, &a, p, &mut out).expect("apply");
        assert_eq!(out, reference_crop(&img, &a, p), "{a:?}");
        for (y, x) in [(0, 0), (3, 11), (15, 15), (15, 0)] {
            let (r, c) = a.source(p, y, x);
            for ch in 0..3 {
                assert_eq!(
                    out[ch * p * p + y * p + x],
                    f32::from(img.at(r, c, ch)) / 255.0
                );
            }
        }
    }
}

#[test]
fn hflip_crop_is_the_flipped_crop() {
    let img = rgb_u8(&pattern(30, 20, 0));
    let p = 8;
    let (top, left) = (5, 12);
    let plain = Augment {
        top,
        left,
        hflip: false,
        vflip: false,
        transpose: false,
    };
    let flipped = Augment {
        hflip: true,
        ..plain
    };
    let (mut a, mut b) = (vec![0.0; 3 * p * p], vec![0.0; 3 * p * p]);
    apply_augment(&img, &plain, p, &mut a).expect("plain");
    apply_augment(&img, &flipped, p, &mut b).expect("flipped");
    for ch in 0..3 {
        for y in 0..p {
            for x in 0..p {
                let want = f32::from(img.at(top + y, left + p - 1 - x, ch)) / 255.0;
                assert_eq!(b[ch * p * p + y * p + x], want);
                assert_eq!(
                    b[ch * p * p + y * p + x],
                    a[ch * p * p + y * p + (p - 1 - x)]
                );
            }
        }
    }
}

#[test]
fn crop_augment_applies_the_drawn_augment() {
    let img = rgb_u8(&pattern(50, 37, 9));
    for iter in 0..20 {
        let mut rng = iteration_rng(5, iter);
        let a = Augment::draw(&mut rng.clone(), 37, 50, 24).expect("draw");
        assert!(a.top <= 37 - 24 && a.left <= 50 - 24);
        let got = crop_augment(&img, &mut rng, 24).expect("crop");
        assert_eq!(got, reference_crop(&img, &a, 24));
    }
    assert!(crop_augment(&img, &mut iteration_rng(0, 0), 38).is_err());
}

#[test]
fn reference_image_crops_match_direct_indexing() {
    let path = kdsr_test_support::pipeline("in_img.png");
    let img = RgbU8::load(&path).expect("load in_img.png");
    let raw = image::open(&path).expect("image::open").to_rgb8();
    assert_eq!((img.width(), img.height()), (96, 120));
    assert_eq!(img.data(), raw.as_raw().as_slice());
    let p = 64;
    for iter in 0..8 {
        let mut rng = iteration_rng(1, iter);
        let a = Augment::draw(&mut rng.clone(), 120, 96, p).expect("draw");
        let got = crop_augment(&img, &mut rng, p).expect("crop");
        assert_eq!(got, reference_crop(&img, &a, p));
    }
}

#[test]
fn draws_cover_images_crops_and_flips() {
    let mut rng = iteration_rng(0, 0);
    let mut counts = [0usize; 5];
    for _ in 0..5000 {
        counts[uniform_below(&mut rng, 5) as usize] += 1;
    }
    assert!(
        counts.iter().all(|&c| (850..1150).contains(&c)),
        "{counts:?}"
    );
    let mut flips = [0usize; 8];
    let (mut min_top, mut max_top) = (usize::MAX, 0);
    for _ in 0..4000 {
        let a = Augment::draw(&mut rng, 20, 30, 16).expect("draw");
        flips[usize::from(a.hflip) | usize::from(a.vflip) << 1 | usize::from(a.transpose) << 2] +=
            1;
        min_top = min_top.min(a.top);
        max_top = max_top.max(a.top);
    }
    assert!(flips.iter().all(|&c| (400..600).contains(&c)), "{flips:?}");
    assert_eq!((min_top, max_top), (0, 4));
}

#[test]
fn batches_are_a_function_of_seed_and_iteration() {
    let dir = folder(6);
    let ds = open(dir.path(), 32, 64);
    let a = ds.batch(7, 3, 4, 32).expect("a");
    let b = ds.batch(7, 3, 4, 32).expect("b");
    assert_eq!(a.iter, 3);
    assert!(a.hr.equal(&b.hr));
    assert!(!a.hr.equal(&ds.batch(7, 4, 4, 32).expect("c").hr));
    assert!(!a.hr.equal(&ds.batch(8, 3, 4, 32).expect("d").hr));
    // A second, independently opened dataset gives the same batches.
    let again = open(dir.path(), 32, 64);
    assert!(a.hr.equal(&again.batch(7, 3, 4, 32).expect("e").hr));
}

#[test]
fn batch_shape_kind_and_range() {
    let dir = folder(4);
    let ds = Arc::new(open(dir.path(), 32, 64));
    let mut loader = Loader::start(ds, 5, 32, 1, 0, 2, 2);
    let b = loader.next().expect("batch");
    assert_eq!(b.iter, 0);
    assert_eq!(b.hr.size(), [5, 3, 32, 32]);
    assert_eq!(b.hr.kind(), Kind::Float);
    assert_eq!(b.hr.device(), Device::Cpu);
    let v = values(&b.hr);
    assert!(v.iter().all(|x| (0.0..=1.0).contains(x)));
    assert!(
        v.iter()
            .all(|x| ((x * 255.0).round() - x * 255.0).abs() < 1e-4)
    );
    // Not constant: real pixels were copied.
    assert!(v.iter().any(|x| *x != v[0]));
}

#[test]
fn loader_delivers_in_order_and_matches_dataset_batches() {
    let dir = folder(5);
    let ds = Arc::new(open(dir.path(), 32, 64));
    let mut loader = Loader::start(Arc::clone(&ds), 3, 24, 11, 0, 3, 2);
    for i in 0..25 {
        assert_eq!(loader.next_iter(), i);
        let b = loader.next().expect("batch");
        assert_eq!(b.iter, i);
        assert!(
            b.hr.equal(&ds.batch(11, i, 3, 24).expect("direct").hr),
            "iteration {i}"
        );
    }
}

#[test]
fn resumed_loader_continues_the_uninterrupted_sequence() {
    let dir = folder(5);
    let ds = Arc::new(open(dir.path(), 32, 64));
    let mut full = Loader::start(Arc::clone(&ds), 4, 32, 42, 0, 2, 3);
    let all: Vec<Tensor> = (0..12).map(|_| full.next().expect("full").hr).collect();
    drop(full);
    let mut resumed = Loader::start(ds, 4, 32, 42, 7, 3, 1);
    for (k, want) in all.iter().enumerate().skip(7) {
        let b = resumed.next().expect("resumed");
        assert_eq!(b.iter, k as u64);
        assert!(b.hr.equal(want), "iteration {k}");
    }
}

#[test]
fn on_demand_decoding_gives_the_cached_batches() {
    let dir = folder(5);
    let (cached, rc) = Dataset::open(&[dir.path().to_path_buf()], 32, 64).expect("cached");
    let (lazy, rl) = Dataset::open(&[dir.path().to_path_buf()], 32, 0).expect("lazy");
    assert!(cached.is_cached() && rc.cached);
    assert!(!lazy.is_cached() && !rl.cached);
    assert_eq!(rc.decoded_bytes, rl.decoded_bytes);
    let mut a = Loader::start(Arc::new(cached), 8, 32, 3, 2, 2, 2);
    let mut b = Loader::start(Arc::new(lazy), 8, 32, 3, 2, 3, 2);
    for _ in 0..6 {
        let (x, y) = (a.next().expect("cached"), b.next().expect("lazy"));
        assert_eq!(x.iter, y.iter);
        assert!(x.hr.equal(&y.hr), "iteration {}", x.iter);
    }
}

#[test]
fn corrupt_small_and_foreign_files_are_skipped_and_counted() {
    let dir = folder(3);
    let bad = dir.path().join("broken.png");
    std::fs::write(&bad, b"\x89PNG\r\n\x1a\nthis is not a png").expect("write");
    let truncated = dir.path().join("truncated.png");
    let mut bytes = Vec::new();
    pattern(64, 64, 1)
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .expect("encode");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).expect("write");
    pattern(20, 80, 0)
        .save(dir.path().join("narrow.png"))
        .expect("save");
    pattern(80, 31, 0)
        .save(dir.path().join("short.png"))
        .expect("save");
    std::fs::write(dir.path().join("notes.txt"), "not an image").expect("write");
    std::fs::create_dir(dir.path().join("sub.png")).expect("mkdir");

    let (ds, report) = Dataset::open(&[dir.path().to_path_buf()], 32, 64).expect("open");
    assert_eq!(report.used, 3);
    assert_eq!(ds.len(), 3);
    assert_eq!(report.skipped_small, 2);
    let skipped: Vec<&Path> = report
        .skipped_unreadable
        .iter()
        .map(|(p, _)| p.as_path())
        .collect();
    assert_eq!(skipped, [bad.as_path(), truncated.as_path()]);
    assert!(
        report
            .skipped_unreadable
            .iter()
            .all(|(_, why)| !why.is_empty())
    );
    // Sorted listing.
    let names: Vec<String> = (0..ds.len())
        .map(|i| {
            ds.path(i)
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into()
        })
        .collect();
    assert_eq!(names, ["img00.png", "img01.png", "img02.png"]);
    assert!(report.to_string().contains("3 training images"));
    ds.batch(0, 0, 4, 32).expect("batch from the usable images");
}

#[test]
fn missing_folder_and_empty_folder_errors() {
    let dir = folder(1);
    let missing = dir.path().join("no-such-folder");
    let err = Dataset::open(&[dir.path().to_path_buf(), missing.clone()], 32, 64)
        .expect_err("missing folder");
    assert!(
        format!("{err:#}").contains(&missing.display().to_string()),
        "{err:#}"
    );

    let empty = tempfile::tempdir().expect("tempdir");
    pattern(10, 10, 0)
        .save(empty.path().join("tiny.png"))
        .expect("save");
    let err = Dataset::open(&[empty.path().to_path_buf()], 32, 64).expect_err("nothing usable");
    let msg = format!("{err:#}");
    assert!(msg.contains("no usable images in"), "{msg}");
    assert!(msg.contains(&empty.path().display().to_string()), "{msg}");
}

#[test]
fn gray_images_are_replicated_and_16_bit_quantised() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gray: ImageBuffer<Luma<u8>, Vec<u8>> =
        ImageBuffer::from_fn(40, 40, |x, y| Luma([(x * 5 + y) as u8]));
    gray.save(dir.path().join("a_gray.png")).expect("save gray");
    let deep: ImageBuffer<Rgb<u16>, Vec<u16>> = ImageBuffer::from_fn(40, 40, |x, y| {
        Rgb([(x * 1000 + y) as u16, 65535, (y * 1600) as u16])
    });
    deep.save(dir.path().join("b_deep.png"))
        .expect("save 16-bit");

    let g = RgbU8::load(&dir.path().join("a_gray.png")).expect("gray");
    assert_eq!(g.at(3, 7, 0), 38);
    assert_eq!(g.at(3, 7, 1), 38);
    assert_eq!(g.at(3, 7, 2), 38);
    let d = RgbU8::load(&dir.path().join("b_deep.png")).expect("deep");
    let q = |v: u16| (f64::from(v) / 65535.0 * 255.0).round_ties_even() as u8;
    assert_eq!(d.at(5, 9, 0), q(9005));
    assert_eq!(d.at(5, 9, 1), 255);
    assert_eq!(d.at(5, 9, 2), q(8000));

    let (ds, report) = Dataset::open(&[dir.path().to_path_buf()], 32, 64).expect("open");
    assert_eq!(report.used, 2);
    assert_eq!(
        ds.batch(0, 0, 4, 32).expect("batch").hr.size(),
        [4, 3, 32, 32]
    );
}

#[test]
fn a_vanished_file_is_an_error_naming_it() {
    let dir = folder(3);
    let (ds, _) = Dataset::open(&[dir.path().to_path_buf()], 32, 0).expect("open");
    let victim = ds.path(1).to_path_buf();
    std::fs::remove_file(&victim).expect("remove");
    // Batch of 8 out of 3 images: image 1 is drawn in the first iterations.
    let mut loader = Loader::start(Arc::new(ds), 8, 32, 0, 0, 2, 2);
    let mut err = None;
    for _ in 0..10 {
        if let Err(e) = loader.next() {
            err = Some(e);
            break;
        }
    }
    let msg = format!("{:#}", err.expect("an error within 10 iterations"));
    assert!(msg.contains(&victim.display().to_string()), "{msg}");
    let again = format!("{:#}", loader.next().expect_err("stays failed"));
    assert!(again.contains("earlier error"), "{again}");
}

#[test]
fn invalid_patch_is_an_error_not_a_hang() {
    let dir = folder(2);
    let ds = Arc::new(open(dir.path(), 32, 64));
    let mut loader = Loader::start(Arc::clone(&ds), 2, 500, 0, 0, 2, 2);
    let msg = format!("{:#}", loader.next().expect_err("patch too large"));
    assert!(msg.contains("smaller than the 500x500 crop"), "{msg}");
    let mut loader = Loader::start(ds, 0, 32, 0, 0, 1, 1);
    assert!(loader.next().is_err());
}

#[test]
fn dropping_a_running_loader_returns_promptly() {
    let dir = tempfile::tempdir().expect("tempdir");
    for i in 0..4 {
        pattern(400, 300, i)
            .save(dir.path().join(format!("big{i}.png")))
            .expect("save");
    }
    for cache_mib in [64, 0] {
        let ds = Arc::new(open(dir.path(), 32, cache_mib));
        let mut loader = Loader::start(ds, 32, 256, 0, 0, 3, 4);
        loader.next().expect("first batch");
        let t = Instant::now();
        drop(loader);
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "drop took {:?} (cache_mib {cache_mib})",
            t.elapsed()
        );
    }
    // Dropped before anything was consumed.
    let ds = Arc::new(open(dir.path(), 32, 0));
    let t = Instant::now();
    drop(Loader::start(ds, 64, 256, 0, 0, 2, 2));
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
}
