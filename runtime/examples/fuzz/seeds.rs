//! `make-seeds`: writes the seed corpus `runtime/fuzz/corpus/{image,onnx,ckpt}/` (deterministic;
//! committed, a few KB per file except the graphs).
//!
//! - image: small PNG (RGB, RGBA 16-bit, gray, gray+alpha, with ICC and an EXIF orientation),
//!   baseline JPEG (RGB, gray, with EXIF orientation 6), lossless WebP, TIFF, PPM, PGM, PAM, and
//!   the committed multi-frame/progressive fixtures of `runtime/tests/fixtures/`.
//! - onnx: the tiny folded and SR graphs exported from the official tiny student weights (random
//!   init), the tiny IDE graph quantized to static int8 (QDQ, calibrated on `data/Set5`), and the
//!   first 4 KiB of the shipped `student-edge-sr.onnx`. (The shipped 255 KB
//!   `student-edge-int8-ide.onnx` was a seed until each of its mutants took 5× as long to load as
//!   a tiny graph's, with the same op types as the tiny int8 IDE.)
//! - ckpt: an `.idr`, a `.bank`, the tiny student checkpoint (official random-init weights) with
//!   its config embedded, and a three-tensor checkpoint.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::{DynamicImage, ImageBuffer};
use kdsr_converter::export::{ExportOptions, build, output_paths};
use kdsr_converter::quantize::{CalibOptions, QuantizeOptions};
use kdsr_converter::{ExportKind, Network, Precision};
use kdsr_core::idr::Idr;
use kdsr_core::spec::KdsrConfig;
use kdsr_core::spec::checkpoint::{Checkpoint, Tensor, Weights, weights_to_bytes};
use kdsr_runtime::bank::{Bank, BankEntry};
use kdsr_runtime::io::{Metadata, OutFormat, WriteOptions, encode_image};

/// A TIFF-structured EXIF block (big-endian) holding one tag: orientation 6 (rotate 90°).
const EXIF_ROTATE90: &[u8] = b"MM\0*\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01\0\x06\0\0\0\0\0\0";

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn put(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(name), bytes).unwrap();
    eprintln!("{}: {} bytes", dir.join(name).display(), bytes.len());
}

fn encode(img: &DynamicImage, f: OutFormat, meta: Metadata<'_>) -> Vec<u8> {
    let mut c = Cursor::new(Vec::new());
    encode_image(
        &mut c,
        img,
        f,
        meta,
        WriteOptions::default(),
        Path::new("seed"),
    )
    .unwrap();
    c.into_inner()
}

fn pattern(x: u32, y: u32, k: u32) -> u8 {
    ((x * 37 + y * 11 + k * 71) % 251) as u8
}

/// Writes the seed corpus under `root`.
pub fn make_seeds(root: &Path) {
    let dir = root.join("image");
    let rgb = DynamicImage::ImageRgb8(ImageBuffer::from_fn(16, 12, |x, y| {
        image::Rgb([pattern(x, y, 0), pattern(x, y, 1), pattern(x, y, 2)])
    }));
    let rgba16 = DynamicImage::ImageRgba16(ImageBuffer::from_fn(8, 6, |x, y| {
        let v = |k| u16::from(pattern(x, y, k)) * 257;
        image::Rgba([v(0), v(1), v(2), v(3)])
    }));
    let gray = DynamicImage::ImageLuma8(ImageBuffer::from_fn(9, 7, |x, y| {
        image::Luma([pattern(x, y, 0)])
    }));
    let gray_a = DynamicImage::ImageLumaA8(ImageBuffer::from_fn(5, 5, |x, y| {
        image::LumaA([pattern(x, y, 0), pattern(x, y, 3)])
    }));
    let none = Metadata::default();
    let tagged = Metadata {
        icc: Some(b"fake icc profile bytes"),
        exif: Some(EXIF_ROTATE90),
    };
    put(&dir, "rgb.png", &encode(&rgb, OutFormat::Png, none));
    put(&dir, "rgb-exif.png", &encode(&rgb, OutFormat::Png, tagged));
    put(&dir, "rgba16.png", &encode(&rgba16, OutFormat::Png, none));
    put(&dir, "gray.png", &encode(&gray, OutFormat::Png, none));
    put(
        &dir,
        "gray-alpha.png",
        &encode(&gray_a, OutFormat::Png, none),
    );
    put(&dir, "rgb.jpg", &encode(&rgb, OutFormat::Jpeg, none));
    put(&dir, "rgb-exif.jpg", &encode(&rgb, OutFormat::Jpeg, tagged));
    put(&dir, "gray.jpg", &encode(&gray, OutFormat::Jpeg, none));
    put(&dir, "rgb.webp", &encode(&rgb, OutFormat::WebP, none));
    put(
        &dir,
        "rgba.webp",
        &encode(&gray_a.to_rgba8().into(), OutFormat::WebP, none),
    );
    put(&dir, "rgb.tif", &encode(&rgb, OutFormat::Tiff, none));
    put(&dir, "rgb.ppm", &encode(&rgb, OutFormat::Ppm, none));
    put(&dir, "gray.pgm", &encode(&gray, OutFormat::Pgm, none));
    put(&dir, "rgba16.pam", &encode(&rgba16, OutFormat::Pam, none));
    let fixtures = workspace().join("runtime/tests/fixtures");
    for f in [
        "progressive.jpg",
        "animated.webp",
        "multipage.tif",
        "animated.gif",
    ] {
        put(&dir, f, &std::fs::read(fixtures.join(f)).unwrap());
    }

    let dir = root.join("onnx");
    let tiny_weights =
        workspace().join("tests/fixtures/reference/vectors/small_student_weights.safetensors");
    let net = Network::load(Some(KdsrConfig::student_tiny()), &tiny_weights).unwrap();
    let up_idr = Idr {
        d: (0..16).map(|i| (i as f32 - 8.0) / 10.0).collect(),
        d_prime: (0..64).map(|i| (i as f32 - 32.0) / 40.0).collect(),
        weights_hash: kdsr_core::spec::checkpoint::weights_hash(&net_weights(&tiny_weights)),
        images: 1,
        source: "fuzz seed".into(),
    };
    let tmp = std::env::temp_dir().join(format!("kdsr-fuzz-seeds-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let idr_path = tmp.join("seed.idr");
    up_idr.save(&idr_path).unwrap();
    // (kind, precision, output name, fold the IDR, the files kept)
    for (kind, precision, name, idr, keep) in [
        (
            ExportKind::Folded,
            Precision::F32,
            "tiny-folded.onnx",
            true,
            "tiny-folded.onnx",
        ),
        (
            ExportKind::Split,
            Precision::F32,
            "tiny",
            false,
            "tiny-sr.onnx",
        ),
        (
            ExportKind::Split,
            Precision::Int8,
            "tiny-int8",
            false,
            "tiny-int8-ide.onnx",
        ),
    ] {
        let opts = ExportOptions {
            kind,
            precision,
            quantize: QuantizeOptions {
                calib: (precision == Precision::Int8)
                    .then(|| CalibOptions::new(workspace().join("data/Set5"))),
                ..QuantizeOptions::default()
            },
            idr: idr.then(|| kdsr_converter::idr_source::IdrSource::File(idr_path.clone())),
            bench_size: None,
            ..ExportOptions::default()
        };
        let (built, _) = build(&net, &opts).unwrap();
        for (b, (_, p)) in built.iter().zip(output_paths(kind, &tmp.join(name))) {
            if p.file_name().and_then(|f| f.to_str()) == Some(keep) {
                put(&dir, keep, &b.bytes);
            }
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
    let shipped = workspace().join("models/edge");
    let sr = std::fs::read(shipped.join("student-edge-sr.onnx")).unwrap();
    put(&dir, "edge-sr-head4k.onnx", &sr[..4096]);

    let dir = root.join("ckpt");
    put(&dir, "seed.idr", &up_idr.to_bytes().unwrap());
    let bank = Bank {
        weights_hash: up_idr.weights_hash.clone(),
        images: 5,
        source: "fuzz seed".into(),
        entries: (0..3)
            .map(|k| BankEntry {
                sigma: 0.2 + k as f32,
                noise: 5.0 * k as f32,
                d_prime: (0..64).map(|i| ((i + k) as f32).sin()).collect(),
            })
            .collect(),
    };
    put(&dir, "seed.bank", &bank.to_bytes().unwrap());
    let ck = Checkpoint {
        config: KdsrConfig::student_tiny(),
        weights: net_weights(&tiny_weights),
    };
    let ck_path =
        std::env::temp_dir().join(format!("kdsr-fuzz-ck-{}.safetensors", std::process::id()));
    ck.save(&ck_path).unwrap();
    put(
        &dir,
        "tiny-student.safetensors",
        &std::fs::read(&ck_path).unwrap(),
    );
    let _ = std::fs::remove_file(&ck_path);
    let _ = std::fs::remove_file(ck_path.with_extension("json"));
    let mut few = Weights::new();
    for (k, t) in net_weights(&tiny_weights).into_iter().take(3) {
        let n = t.data.len().min(8);
        few.insert(k, Tensor::new(vec![n], t.data[..n].to_vec()).unwrap());
    }
    let meta = std::collections::HashMap::from([(
        "kdsr.config".to_owned(),
        serde_json::to_string(&KdsrConfig::student_tiny()).unwrap(),
    )]);
    put(
        &dir,
        "three-tensors.safetensors",
        &weights_to_bytes(&few, Some(meta)).unwrap(),
    );
}

fn net_weights(path: &Path) -> Weights {
    kdsr_core::spec::checkpoint::load_weights(&KdsrConfig::student_tiny(), path).unwrap()
}
