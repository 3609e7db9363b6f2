//! No crate of the workspace has an import circle between its top-level modules (issue 15): each
//! `crate::a` path in module `m` is an edge `m → a` ([`kdsr_test_support::modules`]), and the
//! graph of every crate must be acyclic. The converter also checks its declared layers
//! (`converter/tests/layers.rs`).
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::path::PathBuf;

use kdsr_test_support::modules::{Source, cycle, sources, top_edges};
use kdsr_test_support::repo;

/// Each crate's `src/`, with the fewest edges its graph must have (a scan that found nothing
/// would pass vacuously).
const CRATES: &[(&str, usize)] = &[
    ("runtime/kdsr-core/src", 10),
    ("runtime/src", 15),
    ("converter/src", 20),
    ("trainer/src", 20),
    ("benches/src", 0),
    ("firmware-examples/src", 3),
    ("python/src", 0),
    ("tools/test-support/src", 0),
];

fn crate_sources(dir: &str) -> Vec<Source> {
    let src: PathBuf = repo(dir);
    assert!(src.is_dir(), "{}", src.display());
    sources(&src)
}

#[test]
fn no_crate_has_an_import_circle() {
    let mut circles = Vec::new();
    for (dir, min_edges) in CRATES {
        let edges = top_edges(&crate_sources(dir));
        eprintln!("{dir}: {} edges", edges.len());
        assert!(
            edges.len() >= *min_edges,
            "{dir}: only {} module edges found: {edges:?}",
            edges.len()
        );
        if let Some(c) = cycle(&edges) {
            circles.push(format!("{dir}: {}", c.join(" → ")));
        }
    }
    assert!(
        circles.is_empty(),
        "import circles:\n{}",
        circles.join("\n")
    );
}

#[test]
fn a_planted_circle_is_found() {
    // runtime's graph.rs using profile.rs (which uses graph) was a real circle until NodeTime
    // moved into graph.rs.
    let mut files = crate_sources("runtime/src");
    let graph = files
        .iter_mut()
        .find(|(p, _)| p == &PathBuf::from("graph.rs"))
        .unwrap();
    graph.1 = format!("use crate::profile::ProfileOptions;\n{}", graph.1);
    let c = cycle(&top_edges(&files)).expect("the planted circle");
    assert!(
        c.contains(&"graph".to_owned()) && c.contains(&"profile".to_owned()),
        "{c:?}"
    );
    // Comments and strings are not edges.
    let before = top_edges(&crate_sources("runtime/src"));
    let mut files = crate_sources("runtime/src");
    let graph = files
        .iter_mut()
        .find(|(p, _)| p == &PathBuf::from("graph.rs"))
        .unwrap();
    graph.1 += "\n// crate::profile::x\nconst S: &str = \"crate::profile\";\n";
    assert_eq!(top_edges(&files), before);
}
