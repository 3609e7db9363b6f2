//! One override allow-list for both pipelines: every optional key that either config accepted
//! before the two were merged (`ema`, `pretrain`, `block_conv`, `val_dir`, `val_hr_dir`,
//! `val_lr_dir`) can be set with `--set` wherever the pipeline's config has the field, and a key
//! that the config does not have is still refused.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::path::PathBuf;

use kdsr_trainer::classic::config::TrainConfig;
use kdsr_trainer::config::{Experiment, OPTIONAL_KEYS, apply_override};
use kdsr_trainer::realworld::config::RealWorldConfig;

fn set(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn the_allow_list_is_the_union_of_both_old_lists() {
    for k in [
        "ema",
        "val_dir",
        "pretrain",
        "block_conv",
        "val_hr_dir",
        "val_lr_dir",
    ] {
        assert!(OPTIONAL_KEYS.contains(&k), "{k}");
        // Settable on a tree that lacks it, whichever pipeline's tree it is.
        let mut t: toml::Value = toml::from_str("[s]\nx = 1").unwrap();
        apply_override(&mut t, &format!("s.{k}=\"v\"")).unwrap();
        assert_eq!(t["s"][k].as_str(), Some("v"));
    }
    let mut t: toml::Value = toml::from_str("[s]\nx = 1").unwrap();
    assert!(apply_override(&mut t, "s.nope=1").is_err());
    assert!(apply_override(&mut t, "nope.x=1").is_err());
}

#[test]
fn classic_accepts_every_optional_key_it_has() {
    let c = TrainConfig::resolve(
        "paper-iso",
        &set(&[
            "teacher.ema=0.999",
            "student.ema=0.999",
            "teacher.pretrain=\"t.safetensors\"",
            "student.pretrain=\"s.safetensors\"",
            "model.block_conv=\"plain\"",
            "run.val_dir=\"data/Set14\"",
        ]),
    )
    .unwrap();
    assert_eq!(c.teacher.ema, Some(0.999));
    assert_eq!(
        c.student.stage.pretrain,
        Some(PathBuf::from("s.safetensors"))
    );
    assert_eq!(c.run.val_dir, Some(PathBuf::from("data/Set14")));
    assert!(!c.model.block_conv.is_idr_ddc());
    // The real-world keys are not fields of the classic config.
    for k in ["run.val_hr_dir=\"x\"", "run.val_lr_dir=\"x\""] {
        let e = format!(
            "{:#}",
            TrainConfig::resolve("smoke", &set(&[k])).unwrap_err()
        );
        assert!(e.contains("val_"), "{k}: {e}");
    }
}

#[test]
fn realworld_accepts_every_optional_key_it_has() {
    let c = RealWorldConfig::resolve(
        "edge-gan",
        &set(&[
            "net_teacher.ema=0.99",
            "net_teacher.pretrain=\"t.safetensors\"",
            "net_student.stage.pretrain=\"s.safetensors\"",
            "gan.g.pretrain=\"g.safetensors\"",
            "run.val_hr_dir=\"data/Set14\"",
            "run.val_lr_dir=\"data/Set14-lr\"",
        ]),
    )
    .unwrap();
    assert_eq!(c.net_teacher.ema, Some(0.99));
    assert_eq!(c.net_teacher.pretrain, Some(PathBuf::from("t.safetensors")));
    assert_eq!(c.gan.g.pretrain, Some(PathBuf::from("g.safetensors")));
    assert_eq!(c.run.val_lr_dir, Some(PathBuf::from("data/Set14-lr")));
    // The classic keys are not fields of the real-world config.
    for k in ["run.val_dir=\"x\"", "model.block_conv=\"plain\""] {
        let e = format!(
            "{:#}",
            RealWorldConfig::resolve("smoke-gan", &set(&[k])).unwrap_err()
        );
        assert!(e.contains("unknown field"), "{k}: {e}");
    }
}
