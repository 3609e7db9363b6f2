//! `kdsr-edge make-bank`: the degradation bank of a model, built from HR sample images.

use kdsr_runtime::bank::{DEFAULT_NOISE, DEFAULT_SIGMAS, build_bank};
use kdsr_runtime::io::{ReadOptions, read_image};
use kdsr_runtime::{ErrorClass, Options};

use crate::cli::{Failure, MakeBankArgs, code};
use crate::cmd::{list_images, load_model, progress_bar};

pub fn run(a: MakeBankArgs) -> anyhow::Result<u8> {
    let files = list_images(&a.images)?;
    if files.is_empty() {
        return Err(Failure {
            class: ErrorClass::Input,
            message: format!("no image files in {}", a.images.display()),
        }
        .into());
    }
    let sigmas = if a.sigmas.is_empty() {
        DEFAULT_SIGMAS.to_vec()
    } else {
        a.sigmas.clone()
    };
    let noise = if a.noise.is_empty() {
        DEFAULT_NOISE.to_vec()
    } else {
        a.noise.clone()
    };
    if sigmas.iter().any(|s| !(s.is_finite() && *s > 0.0))
        || noise.iter().any(|n| !(n.is_finite() && *n >= 0.0))
    {
        return Err(Failure::usage("--sigmas must be > 0 and --noise >= 0").into());
    }
    let up = load_model(&a.model, Options::default())?;
    let mut hr = Vec::with_capacity(files.len());
    for f in &files {
        let img = read_image(f, ReadOptions::default())?;
        let rgb = img.image.rgb;
        hr.push(if rgb.channels() == 3 {
            rgb
        } else {
            let p = rgb.plane(0).to_vec();
            kdsr_runtime::Planar::new(
                3,
                rgb.height(),
                rgb.width(),
                [p.clone(), p.clone(), p].concat(),
            )?
        });
    }
    let out = match &a.output {
        Some(o) => o.clone(),
        None if up.info().bank_path.starts_with("<built-in") => {
            return Err(Failure::usage(
                "the model is the copy built into the binary, which has no folder to put its \
                 bank in; give -o FILE.bank",
            )
            .into());
        }
        None => up.info().bank_path.clone(),
    };
    let bar = progress_bar((sigmas.len() * noise.len()) as u64, !a.quiet, "entries");
    let bank = build_bank(
        &up,
        &hr,
        &sigmas,
        &noise,
        &a.images.display().to_string(),
        &mut |done, _| bar.set_position(done as u64),
    )?;
    bar.finish_and_clear();
    bank.save(&out)?;
    if !a.quiet {
        eprintln!(
            "{}: {} entries (sigma {:?} x noise {:?}) from {} images of {}",
            out.display(),
            bank.entries.len(),
            sigmas,
            noise,
            bank.images,
            a.images.display()
        );
    }
    Ok(code::OK)
}
