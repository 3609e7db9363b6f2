//! The converter's modules stack one way: every `crate::…` (and `super::…`) path in
//! `converter/src` names a module of a lower layer than the file's own, so the import graph has
//! no circles. The layers are declared here (and in ARCHITECTURE.md); a new module must be placed
//! in one. The same holds between the files of `export/`.
//!
//! The check reads the sources as text: comments (doc links too) and `#[cfg(test)]` modules are
//! ignored; paths through the crate root's re-exports (`crate::Network`) are refused, so that
//! every edge names the module it really goes to.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

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

/// A source file: its path below `src/` and its text.
type Source = (PathBuf, String);

/// Dependency edges `(from, to)`.
type Edges = BTreeSet<(String, String)>;

fn sources() -> Vec<Source> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = Vec::new();
    let mut dirs = vec![src.clone()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&p).unwrap();
                out.push((p.strip_prefix(&src).unwrap().to_path_buf(), text));
            }
        }
    }
    out.sort();
    out
}

/// The text without comments, string literals and what follows `#[cfg(test)]`.
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or("");
    let (mut out, mut chars) = (String::new(), text.chars().peekable());
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                let mut prev = ' ';
                for c in chars.by_ref() {
                    if prev == '*' && c == '/' {
                        break;
                    }
                    prev = c;
                }
            }
            '"' => {
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        _ => {}
                    }
                }
                out.push_str("\"\"");
            }
            _ => out.push(c),
        }
    }
    out
}

/// `(top-level module, file within it)` of a source path: `onnx/builder.rs` → `("onnx",
/// "builder")`, `onnx/mod.rs` → `("onnx", "mod")`, `graph.rs` → `("graph", "mod")`; `None` for
/// the crate root and the binary (`lib.rs`, `main.rs`, `cli.rs`).
fn module_of(path: &Path) -> Option<(String, String)> {
    let parts: Vec<String> = path
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    match parts.as_slice() {
        [f] if matches!(f.as_str(), "lib" | "main" | "cli") => None,
        [f] => Some((f.clone(), "mod".to_owned())),
        [d, f, ..] => Some((d.clone(), f.clone())),
        [] => None,
    }
}

/// The module paths a file names: each `crate::a::b…` and `super::a…` as its segments (brace
/// groups `crate::{a, b::c}` expanded to their first segments).
fn paths(code: &str, prefix: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find(prefix) {
        let before = rest[..i].chars().next_back();
        rest = &rest[i + prefix.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level items of the group: split at commas outside nested braces.
            let (mut depth, mut item) = (0usize, String::new());
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.push(segments(&item));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
            out.push(segments(&item));
        } else {
            out.push(segments(rest));
        }
    }
    out.retain(|p| !p.is_empty());
    out
}

/// Whether `code` has a path starting with `sub::` (not `x::sub::`).
fn names_relative(code: &str, sub: &str) -> bool {
    let pat = format!("{sub}::");
    code.match_indices(&pat).any(|(i, _)| {
        !code[..i]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':')
    })
}

/// The leading `a::b::c` identifiers of `s`.
fn segments(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    for part in s.trim_start().split("::") {
        let id: String = part
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let whole = id.len() == part.trim_end().len();
        if id.is_empty() || id == "self" {
            break;
        }
        out.push(id);
        if !whole {
            break;
        }
    }
    out
}

/// The dependency edges `(from, to)` between top-level modules, and between the files of
/// `export/`; errors for paths the check cannot place.
fn edges(files: &[Source]) -> (Edges, Edges, Vec<String>) {
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
    let export_files = subs("export");
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
            if top == "export" && *target == "export" {
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
        // In `export/mod.rs`, paths relative to the module itself (`build::build`).
        if top == "export" && file == "mod" && path.ends_with("mod.rs") {
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
            if top == "export" {
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

/// A cycle of `edges`, if there is one (as the list of nodes on it).
fn cycle(edges: &Edges) -> Option<Vec<String>> {
    let mut next: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (a, b) in edges {
        next.entry(a).or_default().push(b);
    }
    // Depth-first search; 1 = on the current path, 2 = done.
    fn visit<'a>(
        n: &'a str,
        next: &BTreeMap<&'a str, Vec<&'a str>>,
        state: &mut BTreeMap<&'a str, u8>,
        path: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        match state.get(n) {
            Some(2) => return None,
            Some(_) => {
                let at = path.iter().position(|p| *p == n).unwrap_or(0);
                let mut c: Vec<String> = path[at..].iter().map(|s| (*s).to_owned()).collect();
                c.push(n.to_owned());
                return Some(c);
            }
            None => {}
        }
        state.insert(n, 1);
        path.push(n);
        for m in next.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, next, state, path) {
                return Some(c);
            }
        }
        path.pop();
        state.insert(n, 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in next.keys() {
        if let Some(c) = visit(n, &next, &mut state, &mut Vec::new()) {
            return Some(c);
        }
    }
    None
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

/// Every problem of the sources `files`.
fn problems(files: &[Source]) -> Vec<String> {
    let (top_edges, export_edges, mut errors) = edges(files);
    let tops: BTreeSet<String> = files
        .iter()
        .filter_map(|(p, _)| module_of(p).map(|m| m.0))
        .collect();
    let export_files: BTreeSet<String> = files
        .iter()
        .filter_map(|(p, _)| module_of(p))
        .filter(|(t, _)| t == "export")
        .map(|m| m.1)
        .collect();
    errors.extend(check_layers("converter", &top_edges, &tops, LAYERS));
    errors.extend(check_layers(
        "converter/export",
        &export_edges,
        &export_files,
        EXPORT_LAYERS,
    ));
    errors
}

#[test]
fn modules_stack_one_way() {
    let files = sources();
    let (top_edges, export_edges, _) = edges(&files);
    eprintln!("module edges: {top_edges:?}");
    eprintln!("export/ edges: {export_edges:?}");
    assert!(top_edges.len() > 20, "too few edges found: {top_edges:?}");
    assert!(
        export_edges.len() > 4,
        "too few edges found: {export_edges:?}"
    );
    let errors = problems(&files);
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

#[test]
fn the_check_finds_backward_edges_circles_and_root_paths() {
    let files = sources();
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
    // A path through the root's re-exports hides the module it goes to.
    has(&with("fold.rs", "use crate::Network;"), "not a module path");
    // Comments and strings are not code.
    assert!(with("graph.rs", "// crate::export::export").is_empty());
    assert!(with("graph.rs", "const S: &str = \"crate::export\";").is_empty());
}
