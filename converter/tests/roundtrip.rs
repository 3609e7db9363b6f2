//! Every graph kind built for the official small student, loaded back with tract and run on the
//! official inputs (`small_io.safetensors`, LR 24×24): tract's `sr` equals the official
//! `student.sr` within 1e-5 and `D` / `D'` the official ones within 1e-6, each batch sample on its
//! own at batch 1, and both at once in the batched graph. The symbolic `h`, `w` of one file serve
//! two sizes; a ×3 network checks the one-stage upsampler.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use common::{check, io, net, planar, random_weights, sample};
use kdsr_converter::export::{self, ExportOptions, TestInput, test_image};
use kdsr_converter::graph::keys;
use kdsr_converter::onnx;
use kdsr_converter::verify::{Plan, Value};
use kdsr_converter::{ExportKind, Network, reference};
use kdsr_core::idr::Idr;
use kdsr_core::spec::KdsrConfig;

const SR_TOL: f64 = 1e-5;
const D_TOL: f64 = 1e-6;

fn run(bytes: &[u8], inputs: &[Value]) -> Vec<Value> {
    let shapes: Vec<Vec<usize>> = inputs.iter().map(|v| v.shape.clone()).collect();
    Plan::new(bytes, &shapes).unwrap().run(inputs).unwrap()
}

#[test]
fn dynamic_graph_matches_official_per_sample() {
    let (net, io) = (net(), io());
    let bytes = onnx::encode(&onnx::dynamic(&net).unwrap());
    for b in 0..2 {
        let out = run(&bytes, &[sample(&io["lr"], b)]);
        assert_eq!(out[0].shape, [1, 3, 96, 96]);
        assert_eq!(out[1].shape, [1, 16]);
        check(
            &format!("dynamic sample {b} sr"),
            &out[0].data,
            &sample(&io["student.sr"], b).data,
            SR_TOL,
        );
        check(
            &format!("dynamic sample {b} D"),
            &out[1].data,
            &sample(&io["student.D"], b).data,
            D_TOL,
        );
    }
}

#[test]
fn split_graphs_match_official() {
    let (net, io) = (net(), io());
    let ide = onnx::encode(&onnx::ide_graph(&net).unwrap());
    let sr = onnx::encode(&onnx::sr_graph(&net).unwrap());
    for b in 0..2 {
        let lr = sample(&io["lr"], b);
        let d = run(&ide, std::slice::from_ref(&lr));
        check(
            &format!("ide sample {b} D"),
            &d[0].data,
            &sample(&io["student.D"], b).data,
            D_TOL,
        );
        check(
            &format!("ide sample {b} D_prime"),
            &d[1].data,
            &sample(&io["student.D_prime"], b).data,
            D_TOL,
        );
        let out = run(&sr, &[lr, sample(&io["student.D"], b)]);
        check(
            &format!("sr graph sample {b} sr"),
            &out[0].data,
            &sample(&io["student.sr"], b).data,
            SR_TOL,
        );
    }
}

#[test]
fn folded_graph_with_the_images_own_idr_matches_official() {
    let (net, io) = (net(), io());
    for b in 0..2 {
        let idr = Idr {
            d: sample(&io["student.D"], b).data,
            d_prime: sample(&io["student.D_prime"], b).data,
            weights_hash: net.weights_hash.clone(),
            images: 1,
            source: format!("small_io sample {b}"),
        };
        let m = onnx::folded(&net, &idr, &idr.source).unwrap();
        assert_eq!(
            onnx::metadata(&m, keys::IDR_SOURCE),
            Some(idr.source.as_str())
        );
        let g = m.graph.as_ref().unwrap();
        assert_eq!(g.input.len(), 1, "a folded graph takes only lr");
        assert!(
            !g.initializer
                .iter()
                .any(|t| t.name.contains("E_st") || t.name.contains("da_conv1.kernel")),
            "a folded graph holds no IDE and no kernel MLP"
        );
        let out = run(&onnx::encode(&m), &[sample(&io["lr"], b)]);
        check(
            &format!("folded sample {b} sr"),
            &out[0].data,
            &sample(&io["student.sr"], b).data,
            SR_TOL,
        );
    }
}

#[test]
fn batched_graph_matches_official_batch_of_two() {
    let (net, io) = (net(), io());
    let bytes = onnx::encode(&onnx::batched(&net, 2).unwrap());
    let lr = Value::new(io["lr"].shape.clone(), io["lr"].data.clone()).unwrap();
    let out = run(&bytes, &[lr]);
    assert_eq!(out[0].shape, [2, 3, 96, 96]);
    assert_eq!(out[1].shape, [2, 16]);
    check("batched sr", &out[0].data, &io["student.sr"].data, SR_TOL);
    check("batched D", &out[1].data, &io["student.D"].data, D_TOL);
    // Each sample uses its own kernels: swapping the samples swaps the outputs.
    let n = 3 * 24 * 24;
    let swapped = [&io["lr"].data[n..], &io["lr"].data[..n]].concat();
    let out2 = run(&bytes, &[Value::new(vec![2, 3, 24, 24], swapped).unwrap()]);
    let m = 3 * 96 * 96;
    check(
        "swapped sample 0",
        &out2[0].data[..m],
        &out[0].data[m..],
        1e-6,
    );
    check(
        "swapped sample 1",
        &out2[0].data[m..],
        &out[0].data[..m],
        1e-6,
    );
}

#[test]
fn one_dynamic_file_runs_at_two_sizes() {
    let net = net();
    let m = onnx::dynamic(&net).unwrap();
    let g = m.graph.as_ref().unwrap();
    let dims = format!("{:?}", g.input[0]);
    assert!(dims.contains("DimParam(\"h\")") && dims.contains("DimParam(\"w\")"));
    let bytes = onnx::encode(&m);
    for (h, w) in [(24, 24), (40, 32)] {
        let lr = test_image(h, w, 7).unwrap();
        let out = run(
            &bytes,
            &[Value::new(vec![1, 3, h, w], lr.data().to_vec()).unwrap()],
        );
        assert_eq!(out[0].shape, [1, 3, 4 * h, 4 * w]);
        let want = reference::forward(&net, &lr).unwrap();
        check(&format!("{h}x{w} sr"), &out[0].data, want.sr.data(), SR_TOL);
        check(&format!("{h}x{w} D"), &out[1].data, &want.ide.d, D_TOL);
    }
}

#[test]
fn every_graph_carries_the_metadata() {
    let net = net();
    let idr = Idr {
        d: vec![0.05; 16],
        d_prime: vec![0.05; 64],
        weights_hash: net.weights_hash.clone(),
        images: 3,
        source: "x".into(),
    };
    let graphs = [
        ("dynamic", onnx::dynamic(&net).unwrap()),
        ("ide", onnx::ide_graph(&net).unwrap()),
        ("sr", onnx::sr_graph(&net).unwrap()),
        ("folded", onnx::folded(&net, &idr, "calib:cams").unwrap()),
        ("batched", onnx::batched(&net, 3).unwrap()),
    ];
    for (kind, m) in &graphs {
        let get = |k| onnx::metadata(m, k).unwrap_or_else(|| panic!("{kind}: no {k}"));
        assert_eq!(get(keys::FORMAT), "1");
        assert_eq!(get(keys::PRESET), "student-tiny");
        assert_eq!(get(keys::SCALE), "4");
        assert_eq!(get(keys::N_FEATS), "16");
        assert_eq!(get(keys::GRAPH), *kind);
        assert_eq!(get(keys::PRECISION), "f32");
        assert_eq!(get(keys::WEIGHTS_HASH), net.weights_hash);
        assert_eq!(m.opset_import[0].version, 17);
    }
    assert_eq!(
        onnx::metadata(&graphs[3].1, keys::IDR_SOURCE),
        Some("calib:cams")
    );
    assert_eq!(onnx::metadata(&graphs[3].1, keys::IDR_IMAGES), Some("3"));
    assert_eq!(onnx::metadata(&graphs[4].1, keys::BATCH), Some("3"));
    assert_eq!(onnx::metadata(&graphs[0].1, keys::IDR_SOURCE), None);
}

#[test]
fn graph_parameters_match_the_spec() {
    let net = net();
    let cfg = &net.config;
    let p = |m| kdsr_converter::inspect::param_count(&m);
    assert_eq!(p(onnx::dynamic(&net).unwrap()), cfg.param_count());
    assert_eq!(p(onnx::batched(&net, 2).unwrap()), cfg.param_count());
    let sr = cfg.param_count_where(|m| m.in_sr_network());
    assert_eq!(p(onnx::ide_graph(&net).unwrap()), cfg.param_count() - sr);
    assert_eq!(p(onnx::sr_graph(&net).unwrap()), sr);
}

#[test]
fn image_idr_source_runs_the_ide_in_tract() {
    let (net, io) = (net(), io());
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("lr.png");
    kdsr_core::io::save_image(
        &img,
        &planar(&io["lr"], 1),
        None,
        kdsr_core::io::BitDepth::Eight,
    )
    .unwrap();
    let idr = kdsr_converter::idr_source::resolve(
        &net,
        &kdsr_converter::idr_source::IdrSource::Image(img),
        false,
    )
    .unwrap();
    // The LR vectors are k/255, so the 8-bit PNG holds them exactly.
    check(
        "image IDR D",
        &idr.d,
        &sample(&io["student.D"], 1).data,
        D_TOL,
    );
    check(
        "image IDR D'",
        &idr.d_prime,
        &sample(&io["student.D_prime"], 1).data,
        D_TOL,
    );
    assert_eq!(idr.weights_hash, net.weights_hash);
}

#[test]
fn export_of_every_kind_verifies_and_writes() {
    let net = net();
    let dir = tempfile::tempdir().unwrap();
    let idr_path = dir.path().join("cam.idr");
    Idr {
        d: sample(&io()["student.D"], 0).data,
        d_prime: sample(&io()["student.D_prime"], 0).data,
        weights_hash: net.weights_hash.clone(),
        images: 1,
        source: "test".into(),
    }
    .save(&idr_path)
    .unwrap();
    for (kind, files) in [
        (ExportKind::Dynamic, vec!["m.onnx"]),
        (ExportKind::Split, vec!["m-ide.onnx", "m-sr.onnx"]),
        (ExportKind::Folded, vec!["m.onnx"]),
        (ExportKind::Batched, vec!["m.onnx"]),
    ] {
        let out = dir.path().join(format!("{kind:?}")).join("m.onnx");
        std::fs::create_dir_all(out.parent().unwrap()).unwrap();
        let opts = ExportOptions {
            kind,
            batch: (kind == ExportKind::Batched).then_some(2),
            idr: (kind == ExportKind::Folded)
                .then(|| kdsr_converter::idr_source::IdrSource::File(idr_path.clone())),
            test_input: TestInput::Synthetic(20, 28),
            bench_size: Some((16, 16)),
            bench_iters: 1,
            ..ExportOptions::default()
        };
        let report = export::export(&net, &opts, &out).unwrap();
        eprintln!("{}", report.to_text());
        assert_eq!(report.graphs.len(), files.len());
        for (g, f) in report.graphs.iter().zip(&files) {
            let p = out.parent().unwrap().join(f);
            assert_eq!(g.file, p);
            assert_eq!(std::fs::metadata(&p).unwrap().len() as usize, g.file_bytes);
            assert!(g.max_abs_diff.values().all(|d| *d <= 1e-5), "{g:?}");
            assert!(g.latency_ms.is_some_and(|ms| ms > 0.0));
        }
    }
}

#[test]
fn scale_3_and_2_networks_export_and_verify() {
    for scale in [3, 2] {
        let cfg = KdsrConfig::student_tiny().with_scale(scale).unwrap();
        let w = random_weights(&cfg, u64::from(scale));
        let net = Network::new(cfg, w).unwrap();
        let m = onnx::dynamic(&net).unwrap();
        let d2s: Vec<i64> = m
            .graph
            .as_ref()
            .unwrap()
            .node
            .iter()
            .filter(|n| n.op_type == "DepthToSpace")
            .map(|n| {
                n.attribute
                    .iter()
                    .find(|a| a.name == "blocksize")
                    .unwrap()
                    .i
            })
            .collect();
        assert_eq!(d2s, if scale == 3 { vec![3] } else { vec![2] });
        let built = export::Built::new(kdsr_converter::GraphKind::Dynamic, m);
        let imgs = vec![test_image(13, 11, 1).unwrap()];
        let v = export::verify(&net, &built, &imgs, None, export::Limits::rel(1e-5)).unwrap();
        assert_eq!(
            v.tract[0].1.shape,
            [1, 3, 13 * scale as usize, 11 * scale as usize]
        );
        eprintln!("x{scale}: {:?}", v.max_abs_diff);
    }
}
