//! The converter's modules stack one way: every `crate::…` (and `super::…`) path in
//! `converter/src` names a module of a lower layer than the file's own, so the import graph has
//! no circles. The layers are declared here (and in ARCHITECTURE.md); a new module must be placed
//! in one. The same holds between the files of `export/` and of `quantize/`.
//!
//! The check reads the sources as text: comments (doc links too) and `#[cfg(test)]` modules are
//! ignored; paths through the crate root's re-exports (`crate::Network`) are refused, so that
//! every edge names the module it really goes to.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::collections::BTreeSet;
use std::path::Path;

/// The top-level modules of `converter/src`, lowest layer first. A module may use only modules of
/// lower layers.
const LAYERS: &[&[&str]] = &[
    &["error"],
    &["graph"],
    &["network"],
    &["fold"],
    &["reference", "onnx"],
    &["verify", "inspect"],
    &["idr_source"],
    &["quantize"],
    &["export"],
    &["cmd"],
];

/// The files of `export/`, lowest layer first (`mod` is `export/mod.rs`).
const EXPORT_LAYERS: &[&[&str]] = &[&["options"], &["build"], &["check"], &["report"], &["mod"]];

/// The files of `quantize/`, lowest layer first.
const QUANTIZE_LAYERS: &[&[&str]] = &[
    &["calibrate", "params"],
    &["options"],
    &["rewrite"],
    &["report"],
    &["mod"],
];

use kdsr_test_support::modules::{
    Edges, Source, code, cycle, module_of, names_relative, paths, sources,
};

fn converter_sources() -> Vec<Source> {
    sources(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"))
}

/// The dependency edges `(from, to)` between top-level modules, and between the files of
/// `folder/`; errors for paths the check cannot place.
fn edges(files: &[Source], folder: &str) -> (Edges, Edges, Vec<String>) {
    let tops: BTreeSet<String> = files
        .iter()
        .filter_map(|(p, _)| module_of(p).map(|m| m.0))
        .collect();
    let subs = |top: &str| -> BTreeSet<String> {
        files
            .iter()
            .filter_map(|(p, _)| module_of(p))
            .filter(|(t, _)| t == top)
            .map(|m| m.1)
            .collect()
    };
    let export_files = subs(folder);
    let (mut top_edges, mut export_edges, mut errors) =
        (BTreeSet::new(), BTreeSet::new(), Vec::new());
    for (path, text) in files {
        let Some((top, file)) = module_of(path) else {
            continue;
        };
        let code = code(text);
        for p in paths(&code, "crate::") {
            let target = &p[0];
            if !tops.contains(target) {
                errors.push(format!(
                    "{}: `crate::{}` is not a module path; name the module it comes from",
                    path.display(),
                    p.join("::")
                ));
                continue;
            }
            if *target != top {
                top_edges.insert((top.clone(), target.clone()));
            }
            if top == folder && *target == folder {
                let to = p
                    .get(1)
                    .filter(|s| export_files.contains(*s))
                    .cloned()
                    .unwrap_or_else(|| "mod".to_owned());
                if to != file {
                    export_edges.insert((file.clone(), to));
                }
            }
        }
        // In `FOLDER/mod.rs`, paths relative to the module itself (`build::build`).
        if top == folder && file == "mod" && path.ends_with("mod.rs") {
            for sub in &export_files {
                if names_relative(&code, sub) {
                    export_edges.insert((file.clone(), sub.clone()));
                }
            }
        }
        for p in paths(&code, "super::") {
            if file == "mod" {
                errors.push(format!(
                    "{}: `super::{}` leaves the module; use a `crate::` path",
                    path.display(),
                    p.join("::")
                ));
                continue;
            }
            if top == folder {
                let to = if export_files.contains(&p[0]) {
                    p[0].clone()
                } else {
                    "mod".to_owned()
                };
                if to != file {
                    export_edges.insert((file.clone(), to));
                }
            }
        }
    }
    (top_edges, export_edges, errors)
}

/// The problems of one graph: a cycle, edges that go up the declared layers, modules that are in
/// no layer.
fn check_layers(
    what: &str,
    edges: &Edges,
    modules: &BTreeSet<String>,
    layers: &[&[&str]],
) -> Vec<String> {
    let layer = |m: &str| layers.iter().position(|l| l.contains(&m));
    let mut errors = Vec::new();
    if let Some(c) = cycle(edges) {
        errors.push(format!("{what}: import circle {}", c.join(" → ")));
    }
    for m in modules {
        if layer(m).is_none() {
            errors.push(format!("{what}: module `{m}` is in no declared layer"));
        }
    }
    for (a, b) in edges {
        if let (Some(la), Some(lb)) = (layer(a), layer(b)) {
            if lb >= la {
                errors.push(format!(
                    "{what}: `{a}` (layer {la}) uses `{b}` (layer {lb}); a module may use only \
                     lower layers"
                ));
            }
        }
    }
    errors
}

/// The folders whose files are layered too, with their layers.
const FOLDERS: &[(&str, &[&[&str]])] = &[("export", EXPORT_LAYERS), ("quantize", QUANTIZE_LAYERS)];

/// Every problem of the sources `files`.
fn problems(files: &[Source]) -> Vec<String> {
    let (top_edges, _, mut errors) = edges(files, "export");
    let tops: BTreeSet<String> = files
        .iter()
        .filter_map(|(p, _)| module_of(p).map(|m| m.0))
        .collect();
    errors.extend(check_layers("converter", &top_edges, &tops, LAYERS));
    for (folder, layers) in FOLDERS {
        let (_, sub_edges, _) = edges(files, folder);
        let sub_files: BTreeSet<String> = files
            .iter()
            .filter_map(|(p, _)| module_of(p))
            .filter(|(t, _)| t == folder)
            .map(|m| m.1)
            .collect();
        errors.extend(check_layers(
            &format!("converter/{folder}"),
            &sub_edges,
            &sub_files,
            layers,
        ));
    }
    errors
}

#[test]
fn modules_stack_one_way() {
    let files = converter_sources();
    let (top_edges, export_edges, _) = edges(&files, "export");
    let (_, quantize_edges, _) = edges(&files, "quantize");
    eprintln!("module edges: {top_edges:?}");
    eprintln!("export/ edges: {export_edges:?}");
    eprintln!("quantize/ edges: {quantize_edges:?}");
    assert!(top_edges.len() > 20, "too few edges found: {top_edges:?}");
    assert!(
        export_edges.len() > 4,
        "too few edges found: {export_edges:?}"
    );
    assert!(
        quantize_edges.len() > 4,
        "too few edges found: {quantize_edges:?}"
    );
    let errors = problems(&files);
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

#[test]
fn the_check_finds_backward_edges_circles_and_root_paths() {
    let files = converter_sources();
    let with = |path: &str, line: &str| -> Vec<String> {
        let mut f = files.clone();
        let entry = f
            .iter_mut()
            .find(|(p, _)| p == Path::new(path))
            .unwrap_or_else(|| panic!("no {path}"));
        entry.1 = format!("{line}\n{}", entry.1);
        problems(&f)
    };
    let has = |errors: &[String], text: &str| {
        assert!(
            errors.iter().any(|e| e.contains(text)),
            "no error mentioning {text}: {errors:?}"
        );
    };
    // A lower module using a higher one: a backward edge, and here a circle.
    let e = with("graph.rs", "use crate::export::ExportOptions;");
    has(&e, "`graph` (layer 1) uses `export` (layer 8)");
    has(&e, "import circle");
    // The same in a brace group, and from a submodule.
    let e = with("onnx/builder.rs", "use crate::{error::Result, quantize};");
    has(&e, "`onnx` (layer 4) uses `quantize`");
    // Between the files of export/: options using check, build using the parent module.
    has(
        &with("export/options.rs", "use super::check::test_image;"),
        "`options` (layer 0) uses `check`",
    );
    has(
        &with("export/build.rs", "use super::Report;"),
        "`build` (layer 1) uses `mod`",
    );
    // Within quantize/: the options reading the rewrite above them (there was a loop
    // between quantize/mod.rs and rewrite.rs / report.rs until the options moved out of mod.rs).
    has(
        &with("quantize/options.rs", "use super::rewrite::rewrite;"),
        "`options` (layer 1) uses `rewrite`",
    );
    has(
        &with("quantize/rewrite.rs", "use super::QuantizeOptions;"),
        "`rewrite` (layer 2) uses `mod`",
    );
    // A path through the root's re-exports hides the module it goes to.
    has(&with("fold.rs", "use crate::Network;"), "not a module path");
    // Comments and strings are not code.
    assert!(with("graph.rs", "// crate::export::export").is_empty());
    assert!(with("graph.rs", "const S: &str = \"crate::export\";").is_empty());
}
