//! `kdsr-edge calibrate`: the mean IDR of a camera's images, saved as an `.idr` file (for
//! `upscale --idr` or a folded export).

use kdsr_runtime::io::{ReadOptions, read_image};
use kdsr_runtime::{ErrorClass, Idr, Options};
use serde::Serialize;

use crate::cli::{CalibrateArgs, Failure, class_code, class_of, code};
use crate::cmd::{list_images, load_model, progress_bar};

#[derive(Serialize)]
struct Report {
    output: String,
    images: usize,
    weights_hash: String,
    failed: Vec<(String, String)>,
}

pub fn run(a: CalibrateArgs) -> anyhow::Result<u8> {
    if !a.input.is_dir() {
        return Err(Failure::usage(format!(
            "-i must be a folder of images, {} is not one",
            a.input.display()
        ))
        .into());
    }
    let files = list_images(&a.input)?;
    if files.is_empty() {
        return Err(Failure {
            class: ErrorClass::Input,
            message: format!("no image files in {}", a.input.display()),
        }
        .into());
    }
    let up = load_model(&a.model, Options::default())?;
    let show = !a.quiet && !a.json;
    let bar = progress_bar(files.len() as u64, show, "images");
    let mut idrs = Vec::new();
    let mut failed = Vec::new();
    let mut first_code = None;
    for f in &files {
        let res = read_image(
            f,
            ReadOptions {
                max_pixels: a.max_pixels,
                ..ReadOptions::default()
            },
        )
        .and_then(|img| up.estimate_idr(&img.image.rgb));
        match res {
            Ok(idr) => idrs.push(Idr {
                source: f.display().to_string(),
                ..idr
            }),
            Err(e) => {
                let e = anyhow::Error::from(e);
                first_code.get_or_insert(class_code(class_of(&e)));
                bar.suspend(|| eprintln!("kdsr-edge: error: {}: {e:#}", f.display()));
                failed.push((f.display().to_string(), format!("{e:#}")));
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    if idrs.is_empty() {
        return Err(Failure {
            class: ErrorClass::Input,
            message: format!("none of the {} images could be used", files.len()),
        }
        .into());
    }
    let mean = Idr::mean(&idrs, &a.input.display().to_string())?;
    mean.save(&a.output).map_err(|e| Failure {
        class: ErrorClass::Output,
        message: format!("{}: {e}", a.output.display()),
    })?;
    if a.json {
        let r = Report {
            output: a.output.display().to_string(),
            images: mean.images,
            weights_hash: mean.weights_hash.clone(),
            failed: failed.clone(),
        };
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else if !a.quiet {
        eprintln!(
            "{}: mean IDR of {} images (model weights {})",
            a.output.display(),
            mean.images,
            mean.weights_hash
        );
    }
    if !failed.is_empty() {
        eprintln!(
            "kdsr-edge: {} of {} images failed:",
            failed.len(),
            files.len()
        );
        for (f, e) in &failed {
            eprintln!("  {f}: {e}");
        }
    }
    Ok(first_code.unwrap_or(code::OK))
}
