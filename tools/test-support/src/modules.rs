//! The module graph of a crate read from its sources, for tests that keep imports one way.
//!
//! The sources are read as text: comments (doc links too), string literals and everything after
//! `#[cfg(test)]` are ignored. A path `crate::a::…` in a file of top-level module `m` is an edge
//! `m → a`. The converter's `tests/layers.rs` checks its declared layers with it, and
//! `tests/no_import_circles.rs` here checks that no crate of the workspace has an import circle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A source file: its path below `src/` and its text.
pub type Source = (PathBuf, String);

/// Dependency edges `(from, to)`.
pub type Edges = BTreeSet<(String, String)>;

/// The `.rs` files below `src` (paths relative to it) with their text, sorted by path.
pub fn sources(src: &Path) -> Vec<Source> {
    let src = src.to_path_buf();
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
pub fn code(text: &str) -> String {
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
pub fn module_of(path: &Path) -> Option<(String, String)> {
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
pub fn paths(code: &str, prefix: &str) -> Vec<Vec<String>> {
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
pub fn names_relative(code: &str, sub: &str) -> bool {
    let pat = format!("{sub}::");
    code.match_indices(&pat).any(|(i, _)| {
        !code[..i]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':')
    })
}

/// The leading `a::b::c` identifiers of `s`.
pub fn segments(s: &str) -> Vec<String> {
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

/// A cycle of `edges`, if there is one (as the list of nodes on it).
pub fn cycle(edges: &Edges) -> Option<Vec<String>> {
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

/// The edges `crate::a` paths make between the top-level modules of `files` (paths whose first
/// segment is not one of them, such as re-exports from the root, are left out).
pub fn top_edges(files: &[Source]) -> Edges {
    let tops: BTreeSet<String> = files
        .iter()
        .filter_map(|(p, _)| module_of(p).map(|m| m.0))
        .collect();
    let mut edges = Edges::new();
    for (path, text) in files {
        let Some((top, _)) = module_of(path) else {
            continue;
        };
        for p in paths(&code(text), "crate::") {
            if tops.contains(&p[0]) && p[0] != top {
                edges.insert((top.clone(), p[0].clone()));
            }
        }
    }
    edges
}
