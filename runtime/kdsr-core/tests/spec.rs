//! Model spec: official parameter counts, key layout, MACs and checkpoint validation.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use std::collections::BTreeMap;

use kdsr_core::Error;
use kdsr_core::spec::checkpoint::{
    Checkpoint, Tensor, Weights, weights_from_bytes, weights_to_bytes,
};
use kdsr_core::spec::layout::Module;
use kdsr_core::spec::macs::Counting;
use kdsr_core::spec::{BlockConv, KdsrConfig, PRESETS, Role};
use proptest::prelude::*;

#[test]
fn official_parameter_counts() {
    let cases = [
        ("student-m", 5_795_099),
        ("teacher-m", 5_822_747),
        ("student-l", 14_191_003),
        ("teacher-l", 14_246_299),
        ("student-gan", 18_846_107),
        ("teacher-gan", 18_901_403),
    ];
    for (name, want) in cases {
        let cfg = KdsrConfig::preset(name).unwrap();
        assert_eq!(cfg.param_count(), want, "{name}");
        assert_eq!(cfg.trainable_param_count(), want - 24, "{name} trainable");
    }
}

#[test]
fn per_module_counts_match_the_official_table() {
    // docs/reference/kdsr-architecture.md §9: (IDE total, trunk, mlp, compress, G total, head, body.0,
    // one block, its DDC MLP, body.1, upsampler, final conv)
    let rows = [
        (
            "student-m",
            [
                1_331_136, 1_183_104, 131_584, 16_448, 4_463_963, 1_792, 4_128_064, 77_888, 40_960,
                36_928, 295_424, 1_731,
            ],
        ),
        (
            "student-l",
            [
                4_135_808, 3_544_832, 525_312, 65_664, 10_055_195, 3_584, 8_719_872, 311_424,
                163_840, 147_584, 1_180_672, 3_459,
            ],
        ),
        (
            "student-gan",
            [
                4_430_976, 3_840_000, 525_312, 65_664, 14_415_131, 3_584, 13_079_808, 311_424,
                163_840, 147_584, 1_180_672, 3_459,
            ],
        ),
    ];
    for (name, want) in rows {
        let cfg = KdsrConfig::preset(name).unwrap();
        let got = [
            cfg.param_count_where(|m| !m.in_sr_network()),
            cfg.param_count_where(|m| m == Module::IdeTrunk),
            cfg.param_count_where(|m| m == Module::IdeMlp),
            cfg.param_count_where(|m| m == Module::IdeCompress),
            cfg.param_count_where(Module::in_sr_network),
            cfg.param_count_where(|m| m == Module::Head),
            cfg.param_count_where(|m| matches!(m, Module::Block { .. })),
            cfg.param_count_where(|m| matches!(m, Module::Block { index: 0, .. })),
            cfg.param_count_where(|m| {
                m == Module::Block {
                    index: 0,
                    ddc_mlp: true,
                }
            }),
            cfg.param_count_where(|m| m == Module::BodyConv),
            cfg.param_count_where(|m| m == Module::Upsampler),
            cfg.param_count_where(|m| m == Module::FinalConv),
        ];
        assert_eq!(got, want, "{name}");
    }
    let t = KdsrConfig::teacher_m();
    assert_eq!(t.param_count_where(|m| !m.in_sr_network()), 1_358_784);
    assert_eq!(t.param_count_where(|m| m == Module::IdeTrunk), 1_210_752);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// The closed forms of docs/reference/kdsr-architecture.md §9 (s = 4) against the enumerated layout.
    #[test]
    fn closed_forms(c in 1usize..200, n in 1usize..60, r in 1usize..12, teacher in any::<bool>()) {
        let mut cfg = KdsrConfig::student_m();
        cfg.n_feats = c;
        cfg.n_blocks = n;
        cfg.n_resblocks = r;
        cfg = cfg.with_role(if teacher { Role::Teacher } else { Role::Student });
        let inp = if teacher { 51 } else { 3 };
        let g = 24 + 28 * c + n * (19 * c * c + c) + (9 * c * c + c) + (72 * c * c + 8 * c) + (27 * c + 3);
        let ide = (9 * inp * c + c) + r * (18 * c * c + 2 * c) + (126 * c * c + 8 * c) + (32 * c * c + 8 * c) + (4 * c * c + c);
        prop_assert_eq!(cfg.param_count(), g + ide);
    }
}

fn manifest_keys(role: &str) -> BTreeMap<String, Vec<usize>> {
    let text = std::fs::read_to_string(common::vectors("small_manifest.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json[format!("{role}_keys")]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            let shape = v
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap() as usize)
                .collect();
            (k.clone(), shape)
        })
        .collect()
}

#[test]
fn layout_equals_the_official_state_dict() {
    for (role, cfg) in [
        ("student", KdsrConfig::student_tiny()),
        ("teacher", KdsrConfig::teacher_tiny()),
    ] {
        let ours: BTreeMap<String, Vec<usize>> = cfg
            .tensors()
            .into_iter()
            .map(|t| (t.key, t.shape))
            .collect();
        assert_eq!(ours, manifest_keys(role), "{role}");
        assert_eq!(cfg.tensors().len(), 44);
    }
    assert_eq!(KdsrConfig::student_m().tensors().len(), 276);
    // Concrete trunk indices per size (§5).
    for (cfg, idx) in [
        (KdsrConfig::student_m(), [11, 13, 15]),
        (KdsrConfig::student_l(), [7, 9, 11]),
        (KdsrConfig::student_gan(), [8, 10, 12]),
    ] {
        for i in idx {
            assert!(
                cfg.tensors()
                    .iter()
                    .any(|t| t.key == format!("E_st.E.{i}.weight")),
                "{} E.{i}",
                cfg.preset
            );
        }
    }
}

#[test]
fn other_scales() {
    let s3 = KdsrConfig::student_m().with_scale(3).unwrap();
    let keys: BTreeMap<String, Vec<usize>> =
        s3.tensors().into_iter().map(|t| (t.key, t.shape)).collect();
    assert_eq!(keys["G.tail.0.0.weight"], vec![576, 64, 3, 3]);
    assert!(!keys.contains_key("G.tail.0.2.weight"));
    let s2 = KdsrConfig::teacher_m().with_scale(2).unwrap();
    let keys: BTreeMap<String, Vec<usize>> =
        s2.tensors().into_iter().map(|t| (t.key, t.shape)).collect();
    assert_eq!(keys["G.tail.0.0.weight"], vec![256, 64, 3, 3]);
    assert_eq!(keys["E.E.0.weight"], vec![64, 15, 3, 3]);
    assert!(matches!(
        KdsrConfig::student_m().with_scale(5),
        Err(Error::UnsupportedScale { scale: 5 })
    ));
    assert!(KdsrConfig::teacher_gan().with_scale(2).is_err());
}

fn giga(v: u64) -> f64 {
    (v as f64 / 1e9 * 100.0).round() / 100.0
}

#[test]
fn macs_match_the_reference_counts() {
    let rows = [
        ("student-m", 228.64, 226.87),
        ("teacher-m", 230.23, 228.46),
        ("student-l", 625.48, 623.61),
        ("student-gan", 762.30, 759.51),
    ];
    for (name, all, paper) in rows {
        let cfg = KdsrConfig::preset(name).unwrap();
        assert_eq!(giga(cfg.macs(180, 320, Counting::All)), all, "{name} all");
        assert_eq!(
            giga(cfg.macs(180, 320, Counting::Paper)),
            paper,
            "{name} paper"
        );
    }
    // The paper's M, T and GAN numbers correspond to 48,600 LR pixels (180x270).
    for (name, paper) in [
        ("student-m", 191.42),
        ("teacher-m", 192.77),
        ("student-gan", 640.84),
    ] {
        let cfg = KdsrConfig::preset(name).unwrap();
        assert_eq!(giga(cfg.macs(180, 270, Counting::Paper)), paper, "{name}");
    }
    // MACs scale with the pixel count apart from the per-image linear layers.
    let cfg = KdsrConfig::student_edge();
    let a = cfg.macs(90, 160, Counting::All) as f64;
    let b = cfg.macs(180, 320, Counting::All) as f64;
    assert!((b / a - 4.0).abs() < 1e-3);
    assert!(cfg.sr_macs(180, 320, Counting::All) < cfg.macs(180, 320, Counting::All));
}

#[test]
fn presets_resolve_and_round_trip() {
    for name in PRESETS {
        let cfg = KdsrConfig::preset(name).unwrap();
        cfg.validate().unwrap();
        assert_eq!(&cfg.preset, name);
        let back = KdsrConfig::from_str_as(&cfg.to_json(), "json", "mem").unwrap();
        assert_eq!(back, cfg);
        let toml_text = toml::to_string(&cfg).unwrap();
        assert_eq!(
            KdsrConfig::from_str_as(&toml_text, "toml", "mem").unwrap(),
            cfg
        );
    }
    // The real-world presets: the classic sizes in the real-world family, roles by name.
    for (rw, classic) in [
        ("student-edge-rw", "student-edge"),
        ("teacher-edge-rw", "teacher-edge"),
        ("student-tiny-rw", "student-tiny"),
        ("teacher-tiny-rw", "teacher-tiny"),
    ] {
        let (a, b) = (
            KdsrConfig::preset(rw).unwrap(),
            KdsrConfig::preset(classic).unwrap(),
        );
        assert_eq!(a.family, kdsr_core::spec::Family::RealWorld, "{rw}");
        assert_eq!(
            (a.role, a.n_feats, a.n_blocks, a.n_resblocks, a.scale),
            (b.role, b.n_feats, b.n_blocks, b.n_resblocks, b.scale),
            "{rw}"
        );
    }
    let err = KdsrConfig::preset("student-xl").unwrap_err().to_string();
    assert!(
        err.contains("student-xl") && err.contains("student-edge"),
        "{err}"
    );
    let err = KdsrConfig::resolve("missing/config.toml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing/config.toml"), "{err}");
    let bad = KdsrConfig::from_str_as(
        r#"{"preset":"x","role":"student","n_feats":0,"n_blocks":1,"n_resblocks":1,"scale":4}"#,
        "json",
        "bad.json",
    )
    .unwrap_err()
    .to_string();
    assert!(bad.contains("bad.json") && bad.contains("n_feats"), "{bad}");
    assert_eq!(
        KdsrConfig::student_edge().with_role(Role::Teacher),
        KdsrConfig::teacher_edge()
    );
}

#[test]
fn plain_block_ablation_layout() {
    let ddc = KdsrConfig::student_edge();
    assert!(
        !ddc.to_json().contains("block_conv"),
        "the default stays out of the JSON"
    );
    let plain = KdsrConfig {
        block_conv: BlockConv::Plain,
        ..ddc.clone()
    };
    let json = plain.to_json();
    assert!(json.contains(r#""block_conv": "plain""#), "{json}");
    assert_eq!(
        KdsrConfig::from_str_as(&json, "json", "mem").unwrap(),
        plain
    );
    let keys: BTreeMap<String, Vec<usize>> = plain
        .tensors()
        .into_iter()
        .map(|t| (t.key, t.shape))
        .collect();
    assert_eq!(
        keys["G.body.0.body.7.da_conv1.conv.weight"],
        vec![32, 32, 3, 3]
    );
    assert_eq!(keys["G.body.0.body.7.da_conv1.conv.bias"], vec![32]);
    assert!(!keys.keys().any(|k| k.contains("da_conv1.kernel")));
    // Per block the DDC MLP's C² + 9C² weights become a conv's 9C² + C: C² − C fewer.
    let c = 32;
    assert_eq!(plain.param_count(), ddc.param_count() - 8 * (c * c - c));
    assert_eq!(
        plain.param_count_where(|m| matches!(m, Module::Block { .. })),
        8 * (9 * c * c + c + 9 * c * c + c)
    );
}

fn official_bytes(file: &str) -> Vec<u8> {
    std::fs::read(common::vectors(file)).unwrap()
}

#[test]
fn official_weights_load() {
    let s = weights_from_bytes(
        &KdsrConfig::student_tiny(),
        "s",
        &official_bytes("small_student_weights.safetensors"),
        false,
    )
    .unwrap();
    assert_eq!(s.len(), 44);
    let t = weights_from_bytes(
        &KdsrConfig::teacher_tiny(),
        "t",
        &official_bytes("small_teacher_weights.safetensors"),
        false,
    )
    .unwrap();
    assert_eq!(t["E.E.0.weight"].shape, vec![16, 51, 3, 3]);
    // A student may take only G.* from a teacher checkpoint.
    let g = weights_from_bytes(
        &KdsrConfig::student_tiny(),
        "t",
        &official_bytes("small_teacher_weights.safetensors"),
        true,
    )
    .unwrap();
    assert!(g.keys().all(|k| k.starts_with("G.")));
    assert_eq!(g.len(), 22);
}

fn student_weights() -> Weights {
    weights_from_bytes(
        &KdsrConfig::student_tiny(),
        "s",
        &official_bytes("small_student_weights.safetensors"),
        false,
    )
    .unwrap()
}

#[test]
fn bad_weights_name_the_tensor_and_shapes() {
    let cfg = KdsrConfig::student_tiny();
    let mut w = student_weights();
    w.remove("G.body.0.body.1.conv1.bias");
    let e = weights_from_bytes(
        &cfg,
        "w.safetensors",
        &weights_to_bytes(&w, None).unwrap(),
        false,
    )
    .unwrap_err();
    assert!(
        matches!(&e, Error::MissingTensor { key, .. } if key == "G.body.0.body.1.conv1.bias"),
        "{e}"
    );
    assert!(e.to_string().contains("w.safetensors"));

    let mut w = student_weights();
    w.insert(
        "G.tail.1.weight".into(),
        Tensor::new(vec![3, 16, 5, 5], vec![0.0; 1200]).unwrap(),
    );
    let e = weights_from_bytes(&cfg, "w", &weights_to_bytes(&w, None).unwrap(), false).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("G.tail.1.weight")
            && msg.contains("[3, 16, 5, 5]")
            && msg.contains("[3, 16, 3, 3]"),
        "{msg}"
    );

    let mut w = student_weights();
    w.insert(
        "G.extra.weight".into(),
        Tensor::new(vec![1], vec![0.0]).unwrap(),
    );
    let e = weights_from_bytes(&cfg, "w", &weights_to_bytes(&w, None).unwrap(), false).unwrap_err();
    assert!(
        matches!(&e, Error::UnexpectedTensor { key, .. } if key == "G.extra.weight"),
        "{e}"
    );

    // A student file checked as a teacher: the teacher IDE is missing.
    let e = weights_from_bytes(
        &KdsrConfig::teacher_tiny(),
        "w",
        &official_bytes("small_student_weights.safetensors"),
        false,
    )
    .unwrap_err();
    assert!(
        matches!(&e, Error::MissingTensor { key, .. } if key == "E.E.0.weight"),
        "{e}"
    );
    // A file of the wrong size.
    let e = weights_from_bytes(
        &KdsrConfig::student_edge(),
        "w",
        &official_bytes("small_student_weights.safetensors"),
        false,
    )
    .unwrap_err();
    assert!(matches!(e, Error::TensorShape { .. }), "{e}");
    // Not a safetensors file at all.
    let e =
        weights_from_bytes(&cfg, "junk.safetensors", b"not a safetensors file", false).unwrap_err();
    assert!(matches!(e, Error::Safetensors { .. }) && e.to_string().contains("junk.safetensors"));
}

#[test]
fn non_f32_tensors_are_rejected() {
    let w = student_weights();
    let mut raw: Vec<(String, Vec<u8>, Vec<usize>, safetensors::Dtype)> = w
        .iter()
        .map(|(k, t)| {
            (
                k.clone(),
                t.data.iter().flat_map(|v| v.to_le_bytes()).collect(),
                t.shape.clone(),
                safetensors::Dtype::F32,
            )
        })
        .collect();
    let i = raw.iter().position(|r| r.0 == "G.head.0.bias").unwrap();
    raw[i].1 = w["G.head.0.bias"]
        .data
        .iter()
        .flat_map(|v| f64::from(*v).to_le_bytes())
        .collect();
    raw[i].3 = safetensors::Dtype::F64;
    let views: Vec<_> = raw
        .iter()
        .map(|(k, b, s, d)| {
            (
                k.clone(),
                safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap(),
            )
        })
        .collect();
    let bytes = safetensors::serialize(views, None).unwrap();
    let e = weights_from_bytes(&KdsrConfig::student_tiny(), "w", &bytes, false).unwrap_err();
    assert!(
        matches!(&e, Error::TensorDtype { key, .. } if key == "G.head.0.bias"),
        "{e}"
    );
}

#[test]
fn checkpoint_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    let ck = Checkpoint {
        config: KdsrConfig::student_tiny(),
        weights: student_weights(),
    };
    ck.save(&path).unwrap();
    assert!(dir.path().join("model.json").exists());
    let back = Checkpoint::load(&path, None).unwrap();
    assert_eq!(back.config, ck.config);
    assert_eq!(back.weights, ck.weights);
    // Saving an inconsistent checkpoint fails and leaves nothing behind.
    let mut bad = ck.clone();
    bad.weights.remove("G.head.0.weight");
    let other = dir.path().join("bad.safetensors");
    assert!(bad.save(&other).is_err());
    assert!(!other.exists());
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}
