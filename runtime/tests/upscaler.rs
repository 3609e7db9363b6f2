//! The `Upscaler` on graphs exported from the official tiny student weights (random init, not a
//! trained model): every graph kind loads and upscales a real image, split = dynamic = folded,
//! `estimate_idr` equals the IDE output (and the official reference vectors), plan caching.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use common::{check, in_planar, models};
use kdsr_core::spec::checkpoint::weights_from_bytes_unchecked;
use kdsr_runtime::tiling::TileGrid;
use kdsr_runtime::{Error, IdrPlan, ModelKind, Options, Planar, Upscaler};

fn load(path: &std::path::Path) -> Upscaler {
    Upscaler::load(path, Options::default()).unwrap()
}

#[test]
fn every_graph_kind_upscales_the_test_photo_random_init_weights() {
    let m = models();
    let lr = in_planar();
    let split = load(&m.split);
    let dynamic = load(&m.dynamic);
    let folded = load(&m.folded);
    assert_eq!(split.info().kind, ModelKind::Split);
    assert_eq!(dynamic.info().kind, ModelKind::Dynamic);
    assert_eq!(folded.info().kind, ModelKind::Folded);
    for up in [&split, &dynamic, &folded] {
        assert_eq!(up.info().preset, "student-tiny");
        assert_eq!(up.info().receptive_radius, 9);
    }
    let a = split.upscale(&lr).unwrap();
    assert_eq!(a.shape(), [3, 480, 384]);
    assert!(a.data().iter().all(|v| v.is_finite()));
    let b = dynamic.upscale(&lr).unwrap();
    check("split vs dynamic", a.data(), b.data(), 1e-5);
    // The folded IDR is the split model's estimate for this image: same output.
    let c = folded.upscale(&lr).unwrap();
    check("split vs folded", a.data(), c.data(), 1e-5);
    let d = split.upscale_with_idr(&lr, &m.folded_idr).unwrap();
    check("split estimated vs given IDR", a.data(), d.data(), 0.0);
}

#[test]
fn a_model_folder_and_either_file_of_a_pair_load_the_split_model() {
    let m = models();
    let dir = common::scratch("folder-model");
    for suffix in ["-ide.onnx", "-sr.onnx"] {
        let name = format!("tiny{suffix}");
        std::fs::copy(m.dir.join(&name), dir.join(&name)).unwrap();
    }
    assert_eq!(load(&dir).info().kind, ModelKind::Split);
    assert_eq!(
        load(&m.dir.join("tiny-sr.onnx")).info().files,
        load(&m.split).info().files
    );
}

/// The official vectors: `small_io.safetensors` holds the official student's `D`, `D'` and
/// `sr` for two 24×24 LR inputs (random-init weights, float32 PyTorch).
#[test]
fn estimate_idr_and_upscale_match_the_official_reference_vectors() {
    let p = common::fixture("reference/vectors/small_io.safetensors");
    let io = weights_from_bytes_unchecked(&std::fs::read(&p).unwrap(), "small_io").unwrap();
    let up = load(&models().split);
    for b in 0..2 {
        let lr_t = &io["lr"];
        let n = 3 * 24 * 24;
        let lr = Planar::new(3, 24, 24, lr_t.data[b * n..(b + 1) * n].to_vec()).unwrap();
        let idr = up.estimate_idr(&lr).unwrap();
        check(
            "D",
            &idr.d,
            &io["student.D"].data[b * 16..(b + 1) * 16],
            1e-5,
        );
        check(
            "D'",
            &idr.d_prime,
            &io["student.D_prime"].data[b * 64..(b + 1) * 64],
            1e-5,
        );
        let sr = up.upscale(&lr).unwrap();
        let m = 3 * 96 * 96;
        check(
            "sr",
            sr.data(),
            &io["student.sr"].data[b * m..(b + 1) * m],
            1e-5,
        );
    }
}

/// Runs an ONNX graph with plain tract (no kdsr-runtime code) on `[1, 3, h, w]` `lr`; returns
/// its outputs by name.
fn run_graph(path: &std::path::Path, lr: &Planar) -> std::collections::HashMap<String, Vec<f32>> {
    use tract_onnx::prelude::*;
    let [_, h, w] = lr.shape();
    let plan = tract_onnx::onnx()
        .model_for_path(path)
        .unwrap()
        .with_input_fact(0, f32::fact([1, 3, h, w]).into())
        .unwrap()
        .into_optimized()
        .unwrap()
        .into_runnable()
        .unwrap();
    let input = Tensor::from_shape(&[1, 3, h, w], lr.data()).unwrap();
    let outs = plan.run(tvec!(input.into_tvalue())).unwrap();
    let model = plan.model();
    model
        .output_outlets()
        .unwrap()
        .iter()
        .zip(outs)
        .map(|(o, v)| {
            let name = model.outlet_label(*o).unwrap().to_owned();
            let t = v.into_tensor();
            let data = t
                .try_as_plain_ram()
                .unwrap()
                .as_slice::<f32>()
                .unwrap()
                .to_vec();
            (name, data)
        })
        .collect()
}

#[test]
fn estimate_idr_equals_the_ide_graph_and_the_dynamic_graph_output() {
    let m = models();
    let lr = in_planar();
    let up = load(&m.split);
    let idr = up.estimate_idr(&lr).unwrap();
    assert_eq!(idr.d.len(), 16);
    assert_eq!(idr.d_prime.len(), 64);
    assert_eq!(idr.weights_hash, up.info().weights_hash);
    assert_eq!(idr.images, 1);
    // tract's own ops here, kdsr-edge's Winograd convolution in `up`: float32 rounding apart
    // (measured 1.5e-8).
    let ide = run_graph(&m.dir.join("tiny-ide.onnx"), &lr);
    check("estimate_idr D vs IDE graph", &idr.d, &ide["D"], 1e-6);
    check(
        "estimate_idr D' vs IDE graph",
        &idr.d_prime,
        &ide["D_prime"],
        1e-6,
    );
    let dynamic = run_graph(&m.dynamic, &lr);
    check(
        "estimate_idr D vs dynamic graph D",
        &idr.d,
        &dynamic["D"],
        1e-6,
    );
    let sr = up.upscale(&lr).unwrap();
    check(
        "upscale vs dynamic graph sr",
        sr.data(),
        &dynamic["sr"],
        1e-5,
    );
}

#[test]
fn a_large_image_is_estimated_on_its_centre_crop() {
    let up = Upscaler::load(
        &models().split,
        Options {
            ide_max_pixels: Some(40 * 40),
            ..Options::default()
        },
    )
    .unwrap();
    let lr = in_planar();
    let whole = up.estimate_idr(&lr).unwrap();
    let (ch, cw) = kdsr_runtime::upscaler::ide_crop(120, 96, 40 * 40);
    assert!(ch * cw <= 1600 && ch < 120 && cw < 96, "{ch}x{cw}");
    assert_eq!(up.ide_window(120, 96), (ch, cw));
    let plan = up.idr_plan(120, 96, None);
    assert_eq!(
        plan,
        IdrPlan::Estimated {
            crop: (ch, cw),
            whole: false
        }
    );
    assert_eq!(
        plan.to_string(),
        format!("estimated on the centre {cw}x{ch} crop")
    );
    let crop = lr.crop((120 - ch) / 2, (96 - cw) / 2, ch, cw).unwrap();
    let on_crop = load(&models().split).estimate_idr(&crop).unwrap();
    check(
        "IDR of large image vs its centre crop",
        &whole.d,
        &on_crop.d,
        0.0,
    );
}

#[test]
fn gray_planar_runs_as_replicated_rgb_and_returns_the_channel_mean() {
    let up = load(&models().split);
    let lr = in_planar();
    let gray = Planar::new(1, 120, 96, lr.plane(1).to_vec()).unwrap();
    let rgb = Planar::new(3, 120, 96, [gray.data(), gray.data(), gray.data()].concat()).unwrap();
    let g = up.upscale(&gray).unwrap();
    let c = up.upscale(&rgb).unwrap();
    assert_eq!(g.shape(), [1, 480, 384]);
    let mean: Vec<f32> = (0..480 * 384)
        .map(|i| (c.plane(0)[i] + c.plane(1)[i] + c.plane(2)[i]) / 3.0)
        .collect();
    check("gray = mean of RGB output", g.data(), &mean, 1e-6);
}

#[test]
fn plans_are_cached_per_input_size() {
    let up = load(&models().split);
    let lr = in_planar();
    up.upscale(&lr).unwrap();
    let n = up.cached_plans();
    assert_eq!(n, 2, "one IDE and one SR plan");
    up.upscale(&lr).unwrap();
    assert_eq!(up.cached_plans(), n, "same size: no new plan");
    let small = lr.crop(0, 0, 40, 40).unwrap();
    up.upscale(&small).unwrap();
    assert_eq!(up.cached_plans(), n + 2);
    // At most PLAN_CACHE plans per graph.
    for side in [20, 24, 28, 32, 36] {
        up.upscale(&lr.crop(0, 0, side, side).unwrap()).unwrap();
    }
    assert_eq!(up.cached_plans(), 2 * kdsr_runtime::graph::PLAN_CACHE);
}

#[test]
fn idr_requests_the_model_cannot_serve_are_refused_clearly() {
    let m = models();
    let lr = in_planar();
    let dynamic = load(&m.dynamic);
    let e = dynamic.upscale_with_idr(&lr, &m.folded_idr).unwrap_err();
    assert!(matches!(e, Error::Usage(_)), "{e}");
    assert!(e.to_string().contains("dynamic graph"), "{e}");
    assert!(e.to_string().contains("split graphs"), "{e}");
    let e = dynamic.estimate_idr(&lr).unwrap_err();
    assert!(e.to_string().contains("D'"), "{e}");
    let folded = load(&m.folded);
    let e = folded.upscale_with_idr(&lr, &m.folded_idr).unwrap_err();
    assert!(e.to_string().contains("folded graph"), "{e}");
    assert!(folded.estimate_idr(&lr).is_err());
    // Split graphs refuse tiles without a D.
    let split = load(&m.split);
    let grid = TileGrid::whole(120, 96).unwrap();
    assert!(split.run_tiles(&lr, None, &grid, &mut |_| Ok(())).is_err());
}

#[test]
fn options_threads_and_knob_do_not_change_the_result() {
    let m = models();
    let lr = in_planar();
    let base = load(&m.split).upscale(&lr).unwrap();
    for (threads, ds) in [
        (1, kdsr_runtime::DirectSpatial::On),
        (2, kdsr_runtime::DirectSpatial::Off),
    ] {
        let up = Upscaler::load(
            &m.split,
            Options {
                threads,
                direct_spatial: ds,
                ..Options::default()
            },
        )
        .unwrap();
        let out = up.upscale(&lr).unwrap();
        check(
            &format!("{threads} threads, {ds:?}"),
            out.data(),
            base.data(),
            1e-5,
        );
    }
}

#[test]
fn the_idr_plan_says_what_upscale_does_for_each_graph_kind() {
    let m = models();
    let split = load(&m.split);
    let plan = split.idr_plan(120, 96, None);
    assert_eq!(
        plan,
        IdrPlan::Estimated {
            crop: (120, 96),
            whole: true
        }
    );
    assert_eq!(plan.to_string(), "estimated on the whole image");
    let given = split.idr_plan(120, 96, Some(&m.folded_idr));
    assert_eq!(
        given,
        IdrPlan::Given {
            source: m.folded_idr.source.clone()
        }
    );
    assert_eq!(given.to_string(), format!("from {}", m.folded_idr.source));
    let folded = load(&m.folded);
    let plan = folded.idr_plan(120, 96, None);
    assert!(matches!(plan, IdrPlan::BuiltIn { .. }), "{plan:?}");
    assert_eq!(
        plan.to_string(),
        format!(
            "built in ({})",
            folded
                .info()
                .idr_source
                .as_deref()
                .unwrap_or("unknown source")
        )
    );
    let dynamic = load(&m.dynamic);
    assert_eq!(dynamic.idr_plan(120, 96, None), IdrPlan::InGraph);
    // What the plan says is what `upscale` does: an estimated plan equals upscaling with the
    // estimate, a built-in one with no IDR at all.
    let lr = in_planar();
    let est = split.estimate_idr(&lr).unwrap();
    check(
        "split upscale vs upscale with its own estimate",
        split.upscale(&lr).unwrap().data(),
        split.upscale_with_idr(&lr, &est).unwrap().data(),
        0.0,
    );
}
