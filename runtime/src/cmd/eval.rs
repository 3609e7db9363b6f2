//! `kdsr-edge eval`: the evaluation protocol of `kdsr_core::eval` (the one `trainer eval` uses)
//! run on an ONNX model, so a model card's numbers can be measured on the very graphs that ship —
//! f32, int8 or f16 — and compared with the checkpoint's.

use kdsr_core::eval::run_suites;
use kdsr_core::fsutil::write_atomic;
use kdsr_runtime::{ErrorClass, Options, Planar};
use serde_json::json;

use crate::cli::{EvalArgs, Failure};
use crate::cmd::{list_images, load_model};

pub fn run(a: EvalArgs) -> anyhow::Result<u8> {
    for dir in &a.protocol.data {
        if list_images(dir)?.is_empty() {
            return Err(Failure {
                class: ErrorClass::Input,
                message: format!("--data {}: no image files in this folder", dir.display()),
            }
            .into());
        }
    }
    let up = load_model(&a.model, Options::default())?;
    let info = up.info().clone();
    let label = format!("{} {} {:?}", info.preset, info.precision, info.kind).to_lowercase();
    let mut md = format!(
        "# Evaluation of `{}` ({label}, x{})\n\nCommand: `kdsr-edge {}`\n\n",
        info.files
            .first()
            .map_or_else(String::new, |f| f.display().to_string()),
        info.scale,
        std::env::args().skip(1).collect::<Vec<_>>().join(" ")
    );
    let (body, js) = run_suites(&a.protocol, info.scale, &label, |lr, _hr| {
        Ok::<Planar, anyhow::Error>(up.upscale(lr)?)
    })?;
    md += &body;
    let report = json!({"model": info, "results": js});
    for (ext, bytes) in [
        ("md", md.into_bytes()),
        ("json", serde_json::to_vec_pretty(&report)?),
    ] {
        let path = a.out.with_extension(ext);
        write_atomic(&path, &bytes).map_err(|e| Failure {
            class: ErrorClass::Output,
            message: format!("{}: {e}", path.display()),
        })?;
    }
    Ok(0)
}
