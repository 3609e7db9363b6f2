//! `kdsr-edge inspect-degradation`: an image's IDR and the nearest entries of the degradation
//! bank.

use kdsr_runtime::bank::{Bank, Match};
use kdsr_runtime::io::{ReadOptions, read_image};
use kdsr_runtime::{Idr, ModelInfo, Options};
use serde::Serialize;

use crate::cli::{InspectArgs, code};
use crate::cmd::load_model;

/// What the IDR of a model with these weights (`kdsr.weights_hash`) was measured to tell, from its
/// model card: (weights hash, model, can tell, cannot tell, whether a bank's nearest entry means
/// anything).
const KNOWN: &[(&str, &str, &str, &str, bool)] = &[
    (
        "73083bedfac255cb",
        "student-edge, the Gaussian-only model of the paper's Table 1 (models/edge), f32 and int8",
        "nothing about the blur that can be relied on: over 40 B100 crops at blur sigma 1.2 / \
         2.4 / 3.6 only 16 % of D's variance is between the sigmas (eta^2 0.164), a bank's nearest \
         entry names sigma within +-0.6 for 23 % of crops, and swapping the IDRs of a sigma 1.8 \
         and a sigma 3.2 image changes the output by 0.002 dB. D is a per-image content code \
         the SR network is conditioned on, not a degradation estimate",
        "blur, noise or compression: use the default camera model (models/edge/camera) to name the \
         blur and the noise level",
        false,
    ),
    (
        "97c765b15f942b2a",
        "student-edge-blind, the degradation-aware candidate in models/edge/blind",
        "the isotropic Gaussian blur sigma: eta^2 0.929 over B100 crops at sigma 1.2 / 2.4 / 3.6, \
         and the bank's nearest entry names sigma within +-0.6 for 80 % of 100 B100 crops (mean \
         error 0.37)",
        "noise, JPEG or other compression, anisotropic or motion blur (it was trained on \
         isotropic Gaussian blur without noise): such an image gets the nearest isotropic sigma",
        true,
    ),
    (
        "4485949a666a99be",
        "student-edge-camera, the default camera model in models/edge/camera, f32 and int8",
        "the noise level and the blur: over 40 B100 crops at noise 0 / 10 / 20 (blur sigma 2.0) \
         94 % of D's variance is between the noise levels (eta^2 0.940) and the level is named \
         from D for every crop; at blur sigma 1.2 / 2.4 / 3.6 eta^2 0.899, sigma named from D \
         for 96.7 % of crops, and the bank's nearest entry names sigma within +-0.6 for 84 % of \
         100 noise-free B100 crops",
        "the JPEG quality (trained on, not measured), the shape or angle of an anisotropic blur, \
         motion blur: the bank's entries are isotropic sigma x noise level",
        true,
    ),
];

/// What `weights_hash`'s IDR can and cannot tell, as one paragraph, and whether naming its
/// nearest bank entry means anything.
fn idr_meaning(weights_hash: &str) -> (String, bool) {
    match KNOWN.iter().find(|k| k.0 == weights_hash) {
        Some((_, model, can, cannot, bank_ok)) => (
            format!(
                "What this IDR can tell ({model}, as measured in its model card under models/edge/): \
                 {can}. What it cannot tell: {cannot}."
            ),
            *bank_ok,
        ),
        None => (
            format!(
                "What this IDR can tell: unknown for these weights ({weights_hash}). D is a \
                 learned code the SR network is conditioned on; the paper's recipe does not make \
                 it track the blur (models/edge/README.md), so the nearest bank entry below means \
                 something only once measured (runtime example `bank-accuracy`)."
            ),
            true,
        ),
    }
}

#[derive(Serialize)]
struct Report<'a> {
    image: String,
    model: &'a ModelInfo,
    ide_input: (usize, usize),
    d: &'a [f32],
    d_prime: &'a [f32],
    bank: Option<String>,
    nearest: Vec<Match>,
    idr_meaning: String,
}

fn stats(v: &[f32]) -> String {
    let n = v.len().max(1) as f64;
    let mean = v.iter().map(|x| f64::from(*x)).sum::<f64>() / n;
    let norm = v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let (lo, hi) = v
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), x| {
            (a.min(*x), b.max(*x))
        });
    format!("min {lo:.4}, max {hi:.4}, mean {mean:.4}, L2 {norm:.4}")
}

pub fn run(a: InspectArgs) -> anyhow::Result<u8> {
    let up = load_model(&a.model, Options::default())?;
    let img = read_image(
        &a.image,
        ReadOptions {
            max_pixels: a.max_pixels,
            ..ReadOptions::default()
        },
    )?;
    let lr = &img.image.rgb;
    let idr = up.estimate_idr(lr)?;
    let idr = Idr {
        source: a.image.display().to_string(),
        ..idr
    };
    let (ch, cw) = up.ide_window(lr.height(), lr.width());
    if let Some(p) = &a.save_idr {
        idr.save(p).map_err(|e| kdsr_runtime::Error::Output {
            path: p.clone(),
            message: e.to_string(),
        })?;
    }
    let bank_path = a
        .bank
        .clone()
        .unwrap_or_else(|| up.info().bank_path.clone());
    let bank = if a.bank.is_some() || bank_path.is_file() {
        Some(Bank::load_for(&bank_path, &up.info().weights_hash)?)
    } else {
        None
    };
    let nearest = bank
        .as_ref()
        .map(|b| b.nearest(&idr.d_prime, a.top))
        .unwrap_or_default();
    let (meaning, bank_ok) = idr_meaning(&up.info().weights_hash);
    if a.json {
        let report = Report {
            image: a.image.display().to_string(),
            model: up.info(),
            ide_input: (ch, cw),
            d: &idr.d,
            d_prime: &idr.d_prime,
            bank: bank.as_ref().map(|_| bank_path.display().to_string()),
            nearest,
            idr_meaning: meaning,
        };
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(code::OK);
    }
    let info = up.info();
    println!(
        "{}: {}x{}, IDE on {}",
        a.image.display(),
        lr.width(),
        lr.height(),
        if (ch, cw) == (lr.height(), lr.width()) {
            "the whole image".to_owned()
        } else {
            format!("the centre {cw}x{ch} crop")
        }
    );
    println!(
        "model: {} (C {}, x{}, weights {})",
        info.preset, info.n_feats, info.scale, info.weights_hash
    );
    println!("D  ({} values): {}", idr.d.len(), stats(&idr.d));
    for row in idr.d.chunks(8) {
        let cells: Vec<String> = row.iter().map(|v| format!("{v:8.4}")).collect();
        println!("  {}", cells.join(" "));
    }
    println!("D' ({} values): {}", idr.d_prime.len(), stats(&idr.d_prime));
    println!("{meaning}");
    match &bank {
        None if bank_ok => println!(
            "no degradation bank at {} to name the nearest known degradation (build one with \
             `kdsr-edge make-bank -m MODEL -o {}`)",
            bank_path.display(),
            bank_path.display()
        ),
        None => {}
        Some(b) => {
            if !bank_ok {
                println!("(the bank's nearest entries below do not name this image's blur)");
            }
            println!(
                "nearest known degradations ({}, {} entries, {} sample images; distance = \
                 KL of softmax(D'/0.15), the KD loss):",
                bank_path.display(),
                b.entries.len(),
                b.images
            );
            for m in &nearest {
                println!(
                    "  blur sigma {:.1} px, noise {:>4.1}/255   distance {:.4}",
                    m.entry.sigma, m.entry.noise, m.distance
                );
            }
        }
    }
    if let Some(p) = &a.save_idr {
        println!("IDR saved to {}", p.display());
    }
    Ok(code::OK)
}
