//! Where a graph's time goes in tract: every node of the optimized plan timed on its own, on the
//! plan `kdsr-edge` runs (the same knobs and rewrites as [`crate::Upscaler`]).
//!
//! `runtime/examples/profile.rs` prints it; `benches/profile.sh` puts it next to onnxruntime's
//! profiler for the same ONNX file. Node names are tract's: a node keeps the name of the ONNX node
//! it came from (`G.body.0.body.0.conv1`), with a suffix when tract split it
//! (`….im2col`, `….pack`); ops tract fused into another node (bias, LeakyReLU, residual add) are
//! counted in that node.

use std::path::Path;
use std::sync::Arc;

use tract_linalg::multithread::Executor;

use crate::error::{Error, Result};
pub use crate::graph::NodeTime;
use crate::graph::{ConvPrecision, DirectSpatial, Graph, GraphMeta, PlanSettings};

/// How [`profile_graph`] runs.
#[derive(Clone, Debug)]
pub struct ProfileOptions {
    /// tract threads (1 = the calling thread).
    pub threads: usize,
    /// tract's direct spatial convolution, as [`crate::Options::direct_spatial`].
    pub direct_spatial: DirectSpatial,
    /// The 3×3 convolutions' number type, as [`crate::Options::precision`].
    pub precision: ConvPrecision,
    /// Profiled runs after one unprofiled warm-up run (at least 1).
    pub iters: usize,
}

/// What [`profile_graph`] measured.
#[derive(Clone, Debug, serde::Serialize)]
pub struct GraphProfile {
    /// The graph's metadata.
    pub meta: GraphMeta,
    /// LR height.
    pub height: usize,
    /// LR width.
    pub width: usize,
    /// tract threads.
    pub threads: usize,
    /// Whether `TRACT_DISABLE_DIRECT_SPATIAL` was set while optimizing.
    pub direct_spatial_disabled: bool,
    /// Sum of the node times of each profiled run, ms.
    pub runs_ms: Vec<f64>,
    /// Every node in execution order, with its median time over the profiled runs.
    pub nodes: Vec<NodeTime>,
}

/// Loads one ONNX graph file (`path`, any kind but batched), builds its plan for `lr`'s size
/// and times each node over `options.iters` runs after a warm-up run.
///
/// # Shapes
/// `lr` `[3, h, w]`; `d` `[C]`, required by SR graphs.
pub fn profile_graph(
    path: &Path,
    lr: &kdsr_core::Planar,
    d: Option<&[f32]>,
    options: &ProfileOptions,
) -> Result<GraphProfile> {
    let settings = Arc::new(PlanSettings {
        executor: (options.threads > 1).then(|| Executor::multithread(options.threads)),
        direct_spatial: options.direct_spatial,
        precision: options.precision,
    });
    let graph = Graph::load(path, settings)?;
    if lr.channels() != 3 {
        return Err(Error::Usage(format!(
            "profiling {}: the input has {} channels, the graph takes RGB",
            path.display(),
            lr.channels()
        )));
    }
    let (h, w) = (lr.height(), lr.width());
    graph.run(lr.data(), h, w, d)?;
    let runs: Vec<Vec<NodeTime>> = (0..options.iters.max(1))
        .map(|_| graph.profile_once(lr.data(), h, w, d))
        .collect::<Result<_>>()?;
    let runs_ms = runs.iter().map(|r| r.iter().map(|n| n.ms).sum()).collect();
    let nodes = runs[0]
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let mut t: Vec<f64> = runs.iter().filter_map(|r| r.get(i).map(|x| x.ms)).collect();
            t.sort_by(f64::total_cmp);
            NodeTime {
                ms: t[t.len() / 2],
                ..n.clone()
            }
        })
        .collect();
    Ok(GraphProfile {
        direct_spatial_disabled: options.direct_spatial.disables_for(graph.meta.kind),
        meta: graph.meta,
        height: h,
        width: w,
        threads: options.threads,
        runs_ms,
        nodes,
    })
}
