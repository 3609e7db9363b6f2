//! One ONNX graph file: its `metadata_props`, the symbolic (decluttered) tract model, and the
//! optimized plans built from it, one per concrete input size.
//!
//! tract's fast convolution kernels need concrete shapes (`docs/reference/tract-notes.md`: a plan
//! optimized with symbolic H/W runs about 2× slower), so the symbolic model is kept and
//! `Graph::plan` concretizes `h`, `w` and optimizes once per size, caching the plan. Tiling
//! uses one window size for all tiles of an image, so an image needs one plan per graph; the
//! [`PLAN_CACHE`] most recently used plans are kept.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tract_linalg::multithread::Executor;
use tract_onnx::pb::ModelProto;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::knobs::KnobScope;

use crate::error::{Error, Result, guard_tract};

use kdsr_core::spec::onnx::names;
pub use kdsr_core::spec::onnx::{FORMAT_VERSION, GraphKind, Precision};

/// What a graph file's `kdsr.*` metadata say (the contract's
/// [`kdsr_core::spec::onnx::GraphMeta`], written by `kdsr-converter`), and the file. Dereferences
/// to the metadata, so `meta.kind`, `meta.n_feats`, … read through.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct GraphMeta {
    /// The file.
    pub path: PathBuf,
    /// Its metadata.
    #[serde(flatten)]
    pub props: kdsr_core::spec::onnx::GraphMeta,
}

impl std::ops::Deref for GraphMeta {
    type Target = kdsr_core::spec::onnx::GraphMeta;
    fn deref(&self) -> &Self::Target {
        &self.props
    }
}

impl GraphMeta {
    /// Reads and checks the `kdsr.*` metadata of `proto` (file `path`) with
    /// [`kdsr_core::spec::onnx::GraphMeta::from_props`]: format `1`, a known graph kind and
    /// precision, scale 2/3/4, C > 0 and a weights hash must all be present.
    pub fn from_proto(proto: &ModelProto, path: &Path) -> Result<Self> {
        let props = proto
            .metadata_props
            .iter()
            .map(|p| (p.key.as_str(), p.value.as_str()));
        let props = kdsr_core::spec::onnx::GraphMeta::from_props(props)
            .map_err(|m| Error::model(path, m))?;
        Ok(GraphMeta {
            path: path.to_path_buf(),
            props,
        })
    }
}

/// Whether tract's direct spatial convolution is used (the `TRACT_DISABLE_DIRECT_SPATIAL` knob,
/// applied while plans are optimized).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DirectSpatial {
    /// The measured default per graph kind ([`DirectSpatial::disables_for`]).
    #[default]
    Auto,
    /// Direct spatial convolution allowed (tract's own default).
    On,
    /// `TRACT_DISABLE_DIRECT_SPATIAL=1`: im2col + matrix product.
    Off,
}

impl DirectSpatial {
    /// Whether the knob `TRACT_DISABLE_DIRECT_SPATIAL` is set for a graph of `kind`. `Auto`
    /// follows the measurement in `runtime/README.md` (x86-64, tract 0.23.9, LR 180×320):
    /// disabling direct spatial convolution made the IDE 1.5–1.8× faster and the dynamic graph
    /// 5–15 % faster, left the SR graph unchanged, and made the folded graph up to 1.45× slower,
    /// so `Auto` disables it for every graph but folded ones.
    pub fn disables_for(self, kind: GraphKind) -> bool {
        match self {
            DirectSpatial::Auto => kind != GraphKind::Folded,
            DirectSpatial::Off => true,
            DirectSpatial::On => false,
        }
    }
}

/// The number type of kdsr-edge's 3×3 convolutions (`--precision`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ConvPrecision {
    /// float32 throughout (Winograd and the direct sum, `crate::ops::winograd`).
    #[default]
    F32,
    /// The 3×3 convolutions' inputs and weights rounded to bf16, sums in float32, on Intel AMX
    /// (`crate::ops::amx`); everything else float32. Needs a CPU and OS with AMX bf16.
    Bf16,
}

/// How plans are built and run: the tract executor (threads) and the knobs in force while a plan
/// is optimized.
#[derive(Clone, Debug)]
pub(crate) struct PlanSettings {
    /// `None` runs on the calling thread.
    pub executor: Option<Executor>,
    /// Decides `TRACT_DISABLE_DIRECT_SPATIAL` per graph kind while optimizing.
    pub direct_spatial: DirectSpatial,
    /// The 3×3 convolutions' number type.
    pub precision: ConvPrecision,
}

type Plan = Arc<TypedRunnableModel>;

/// Outputs of one run, as float32.
#[derive(Debug, Default)]
pub(crate) struct RunOutputs {
    /// `sr` `[1, 3, s·h, s·w]`, float32.
    pub sr: Option<Tensor>,
    pub d: Option<Vec<f32>>,
    pub d_prime: Option<Vec<f32>>,
}

/// A loaded graph (see the module docs).
pub(crate) struct Graph {
    pub meta: GraphMeta,
    model: TypedModel,
    sym_h: Symbol,
    sym_w: Symbol,
    lr_input: usize,
    d_input: Option<usize>,
    out_sr: Option<usize>,
    out_d: Option<usize>,
    out_dp: Option<usize>,
    input_types: Vec<DatumType>,
    settings: Arc<PlanSettings>,
    /// Most recently used first, at most [`PLAN_CACHE`] entries.
    plans: Mutex<Vec<((usize, usize), Plan)>>,
}

/// Checks the bytes of an ONNX graph as [`Upscaler::load`](crate::Upscaler::load) checks each
/// file (its `kdsr.*` metadata, its inputs and outputs against the kind it declares, the output
/// shapes at a probe size) without building a plan, and returns its metadata; `path` labels
/// errors ([`Error::Model`]). For validation tools and the fuzz targets
/// (`runtime/examples/fuzz`).
pub fn check_graph_bytes(bytes: &[u8], path: &Path) -> Result<GraphMeta> {
    let settings = Arc::new(PlanSettings {
        executor: None,
        direct_spatial: DirectSpatial::default(),
        precision: ConvPrecision::F32,
    });
    Graph::from_bytes(bytes, path, settings).map(|g| g.meta)
}

/// Plans kept per graph (least recently used dropped first): each holds its own packed copy of
/// the weights, so a folder of differently sized images must not grow memory without bound.
pub const PLAN_CACHE: usize = 4;

impl std::fmt::Debug for Graph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Graph").field("meta", &self.meta).finish()
    }
}

fn tract_err(path: &Path, what: &str, e: impl std::fmt::Display) -> Error {
    Error::model(path, format!("{what}: {e:#}"))
}

impl Graph {
    /// Reads `path`, checks its metadata and its inputs/outputs against the kind it declares, and
    /// declutters it (symbolic `h`, `w`).
    pub fn load(path: &Path, settings: Arc<PlanSettings>) -> Result<Self> {
        if !path.is_file() {
            return Err(Error::model(
                path,
                if path.exists() {
                    "not a file".to_owned()
                } else {
                    "no such file".to_owned()
                },
            ));
        }
        let proto = tract_onnx::onnx()
            .proto_model_for_path(path)
            .map_err(|e| tract_err(path, "not a readable ONNX file", e))?;
        Self::from_proto(proto, path, settings)
    }

    /// [`Graph::load`] for the bytes of an ONNX file held in memory; `path` labels errors.
    pub fn from_bytes(bytes: &[u8], path: &Path, settings: Arc<PlanSettings>) -> Result<Self> {
        let proto = tract_onnx::onnx()
            .proto_model_for_read(&mut std::io::Cursor::new(bytes))
            .map_err(|e| tract_err(path, "not a readable ONNX file", e))?;
        Self::from_proto(proto, path, settings)
    }

    /// [`Graph::checked_proto`], with a panic inside tract turned into an error: malformed
    /// graphs (an output no node produces, a convolution stride of 0, dimension arithmetic that
    /// overflows) make tract 0.23.9's loading and shape inference panic, found by the `onnx`
    /// fuzz target (`runtime/examples/fuzz`, inputs in `runtime/fuzz/regressions/`).
    fn from_proto(proto: ModelProto, path: &Path, settings: Arc<PlanSettings>) -> Result<Self> {
        guard_tract(path, "loading it", || {
            Self::checked_proto(proto, path, settings)
        })
    }

    fn checked_proto(proto: ModelProto, path: &Path, settings: Arc<PlanSettings>) -> Result<Self> {
        let meta = GraphMeta::from_proto(&proto, path)?;
        if let Some(g) = &proto.graph {
            // tract indexes its outlets by these names (a panic for a missing one).
            let known: std::collections::HashSet<&str> = g
                .node
                .iter()
                .flat_map(|n| n.output.iter().map(String::as_str))
                .chain(g.input.iter().map(|i| i.name.as_str()))
                .chain(g.initializer.iter().map(|t| t.name.as_str()))
                .collect();
            if let Some(o) = g.output.iter().find(|o| !known.contains(o.name.as_str())) {
                return Err(Error::model(
                    path,
                    format!(
                        "malformed graph: output `{}` is produced by no node, input or \
                         initializer",
                        o.name
                    ),
                ));
            }
        }
        if meta.kind == GraphKind::Batched {
            return Err(Error::model(
                path,
                "a batched graph (fixed batch, for throughput servers); kdsr-edge loads \
                 dynamic, split (PREFIX-ide.onnx + PREFIX-sr.onnx) or folded graphs",
            ));
        }
        let inference = tract_onnx::onnx()
            .model_for_proto_model(&proto)
            .map_err(|e| tract_err(path, "tract cannot load the graph", e))?;
        drop(proto);
        let mut typed = inference
            .into_typed()
            .map_err(|e| tract_err(path, "tract cannot type the graph", e))?;
        let ops = crate::ops::OpSet {
            bf16: settings.precision == ConvPrecision::Bf16,
            ..crate::ops::OpSet::from_env().map_err(Error::Usage)?
        };
        if ops.bf16 {
            if ops.winograd.is_none() {
                return Err(Error::Usage(format!(
                    "--precision bf16 runs in kdsr-edge's 3×3 convolution op, which {} leaves out",
                    crate::ops::OPS_VAR
                )));
            }
            if !crate::ops::amx::available() {
                return Err(Error::Usage(
                    "--precision bf16 needs a CPU with AMX bf16 (Intel Xeon Sapphire Rapids or \
                     later) and Linux; this machine has none: use --precision f32"
                        .into(),
                ));
            }
        }
        crate::ops::rewrite(&mut typed, ops)
            .map_err(|e| tract_err(path, "substituting kdsr-edge's operators", e))?;
        let input_names: Vec<String> = typed
            .input_outlets()
            .map_err(|e| tract_err(path, "graph inputs", e))?
            .iter()
            .map(|o| typed.node(o.node).name.clone())
            .collect();
        let output_names: Vec<String> = typed
            .output_outlets()
            .map_err(|e| tract_err(path, "graph outputs", e))?
            .iter()
            .map(|o| {
                typed
                    .outlet_label(*o)
                    .map(str::to_owned)
                    .unwrap_or_else(|| typed.node(o.node).name.clone())
            })
            .collect();
        let mut model = typed
            .into_decluttered()
            .map_err(|e| tract_err(path, "tract cannot declutter the graph", e))?;
        crate::ops::rewrite_decluttered(&mut model, ops)
            .map_err(|e| tract_err(path, "substituting kdsr-edge's operators", e))?;
        let find = |names: &[String], n: &str| names.iter().position(|x| x == n);
        let lr_input = find(&input_names, names::LR).ok_or_else(|| {
            Error::model(
                path,
                format!("no input named `{}` (inputs: {input_names:?})", names::LR),
            )
        })?;
        let d_input = find(&input_names, names::D);
        let (out_sr, out_d, out_dp) = (
            find(&output_names, names::SR),
            find(&output_names, names::D),
            find(&output_names, names::D_PRIME),
        );
        let need = |ok: bool, what: &str| -> Result<()> {
            if ok {
                Ok(())
            } else {
                Err(Error::model(
                    path,
                    format!(
                        "metadata says a `{}` graph, but it {what} (inputs {input_names:?}, \
                         outputs {output_names:?})",
                        meta.kind
                    ),
                ))
            }
        };
        // The inputs and outputs each kind has (converter/README.md, "Graphs"), exactly.
        let (want_in, want_out) = meta.kind.io();
        let same = |got: &[String], want: &[&str]| {
            let mut g: Vec<&str> = got.iter().map(String::as_str).collect();
            let mut w = want.to_vec();
            g.sort_unstable();
            w.sort_unstable();
            g == w
        };
        need(
            same(&input_names, want_in) && same(&output_names, want_out),
            &format!("does not have its inputs {want_in:?} and outputs {want_out:?}"),
        )?;
        let n_inputs = input_names.len();
        let mut input_types = Vec::with_capacity(n_inputs);
        for i in 0..n_inputs {
            let fact = model
                .input_fact(i)
                .map_err(|e| tract_err(path, "graph input", e))?;
            input_types.push(fact.datum_type);
        }
        let lr_fact = model
            .input_fact(lr_input)
            .map_err(|e| tract_err(path, "graph input `lr`", e))?;
        let dims: Vec<TDim> = lr_fact.shape.iter().cloned().collect();
        let sym = |d: &TDim, axis: &str| -> Result<Symbol> {
            match d {
                TDim::Sym(s) => Ok(s.clone()),
                other => Err(Error::model(
                    path,
                    format!(
                        "input `lr` has a fixed {axis} ({other}); kdsr-edge needs graphs with \
                         symbolic h and w (export with `converter export` defaults)"
                    ),
                )),
            }
        };
        if dims.len() != 4 || dims[0] != TDim::Val(1) || dims[1] != TDim::Val(3) {
            return Err(Error::model(
                path,
                format!(
                    "input `lr` has shape {:?}, expected [1, 3, h, w]",
                    lr_fact.shape
                ),
            ));
        }
        let (sym_h, sym_w) = (sym(&dims[2], "height")?, sym(&dims[3], "width")?);
        if let Some(di) = d_input {
            let f = model
                .input_fact(di)
                .map_err(|e| tract_err(path, "graph input `D`", e))?;
            let ok = f.shape.iter().cloned().collect::<Vec<_>>()
                == vec![TDim::Val(1), TDim::Val(meta.n_feats as i64)];
            if !ok {
                return Err(Error::model(
                    path,
                    format!(
                        "input `D` has shape {:?}, but `kdsr.n_feats` = {} needs [1, {}]",
                        f.shape, meta.n_feats, meta.n_feats
                    ),
                ));
            }
        }
        // Output shapes against the metadata, evaluated at a probe size: `sr` is
        // [1, 3, scale·h, scale·w] (a ×2 graph labelled ×4 fails here), `D` [1, C], `D_prime`
        // [1, 4C].
        let (ph, pw) = (7i64, 11i64);
        let probe = SymbolValues::default().with(&sym_h, ph).with(&sym_w, pw);
        let scale = i64::from(meta.scale);
        let c = meta.n_feats as i64;
        for (ix, name, want) in [
            (out_sr, names::SR, vec![1, 3, scale * ph, scale * pw]),
            (out_d, names::D, vec![1, c]),
            (out_dp, "D_prime", vec![1, 4 * c]),
        ] {
            let Some(ix) = ix else { continue };
            let fact = model
                .output_fact(ix)
                .map_err(|e| tract_err(path, "graph output", e))?;
            let got: Option<Vec<i64>> = fact
                .shape
                .iter()
                .map(|d| d.eval_to_i64(&probe).ok())
                .collect();
            if got.as_deref() != Some(want.as_slice()) {
                return Err(Error::model(
                    path,
                    format!(
                        "output `{name}` has shape {:?}, which for an input of {ph}x{pw} is {}, \
                         but the metadata (`kdsr.scale` = {}, `kdsr.n_feats` = {}) need {want:?}",
                        fact.shape,
                        got.map_or_else(|| "not a fixed size".to_owned(), |g| format!("{g:?}")),
                        meta.scale,
                        meta.n_feats
                    ),
                ));
            }
        }
        Ok(Graph {
            meta,
            model,
            sym_h,
            sym_w,
            lr_input,
            d_input,
            out_sr,
            out_d,
            out_dp,
            input_types,
            settings,
            plans: Mutex::new(Vec::new()),
        })
    }

    /// Number of cached plans.
    pub fn cached_plans(&self) -> usize {
        self.plans.lock().map(|p| p.len()).unwrap_or(0)
    }

    /// The optimized plan for LR input `h × w`, built on first use and cached. A panic inside
    /// tract while concretizing, optimizing or building it is an [`Error::Model`] naming the file
    /// (see [`guard_tract`]).
    pub fn plan(&self, h: usize, w: usize) -> Result<Plan> {
        if let Ok(mut m) = self.plans.lock()
            && let Some(i) = m.iter().position(|(k, _)| *k == (h, w))
        {
            let entry = m.remove(i);
            let plan = entry.1.clone();
            m.insert(0, entry);
            return Ok(plan);
        }
        let plan = guard_tract(
            &self.meta.path,
            &format!("optimizing it for input {h}x{w}"),
            || self.build_plan(h, w),
        )?;
        if let Ok(mut m) = self.plans.lock() {
            m.retain(|(k, _)| *k != (h, w));
            m.insert(0, ((h, w), plan.clone()));
            m.truncate(PLAN_CACHE);
        }
        Ok(plan)
    }

    fn build_plan(&self, h: usize, w: usize) -> Result<Plan> {
        let path = &self.meta.path;
        let err = |what: &str, e: TractError| Error::Inference {
            path: path.clone(),
            message: format!("{what} for input {h}x{w}: {e:#}"),
        };
        let subs = HashMap::from([
            (self.sym_h.clone(), TDim::Val(h as i64)),
            (self.sym_w.clone(), TDim::Val(w as i64)),
        ]);
        let concrete = self
            .model
            .set_symbols(&subs)
            .map_err(|e| err("concretizing the shape", e))?;
        let knob = if self.settings.direct_spatial.disables_for(self.meta.kind) {
            "1"
        } else {
            "0"
        };
        let scope = KnobScope::new([("TRACT_DISABLE_DIRECT_SPATIAL", knob)])
            .map_err(|e| err("setting tract knobs", e))?;
        let optimized = scope
            .enter(|| concrete.into_optimized())
            .map_err(|e| err("optimizing", e))?;
        let options = RunOptions {
            executor: self.settings.executor.clone(),
            ..RunOptions::default()
        };
        optimized
            .into_runnable_with_options(&options)
            .map_err(|e| err("building the plan", e))
    }

    /// The plan inputs for `lr` (`[3, h, w]`) and, for SR graphs, `d` (`[C]`), in the graph's
    /// input order and types.
    fn inputs(&self, lr: &[f32], h: usize, w: usize, d: Option<&[f32]>) -> Result<TVec<TValue>> {
        let path = &self.meta.path;
        let err = |e: TractError| Error::Inference {
            path: path.clone(),
            message: format!("running on input {h}x{w}: {e:#}"),
        };
        let mut inputs: TVec<TValue> = tvec![];
        for (i, dt) in self.input_types.iter().enumerate() {
            let t = if i == self.lr_input {
                Tensor::from_shape(&[1, 3, h, w], lr).map_err(err)?
            } else if Some(i) == self.d_input {
                let d = d.ok_or_else(|| {
                    Error::Usage(format!(
                        "{} needs an IDR (`D`) input",
                        self.meta.path.display()
                    ))
                })?;
                if d.len() != self.meta.n_feats {
                    return Err(Error::Usage(format!(
                        "IDR has {} values, {} takes C = {}",
                        d.len(),
                        self.meta.path.display(),
                        self.meta.n_feats
                    )));
                }
                Tensor::from_shape(&[1, d.len()], d).map_err(err)?
            } else {
                return Err(Error::model(
                    path,
                    format!("unexpected graph input #{i} (inputs are `lr` and `D`)"),
                ));
            };
            let t = if *dt == f32::datum_type() {
                t
            } else {
                t.cast_to_dt(*dt).map_err(err)?.into_owned()
            };
            inputs.push(t.into_tvalue());
        }
        Ok(inputs)
    }

    /// Runs the plan for `h × w` once on `lr` (and `d`) and returns the time spent in each node
    /// of the optimized plan, in execution order, nodes that took no measurable time included.
    pub(crate) fn profile_once(
        &self,
        lr: &[f32],
        h: usize,
        w: usize,
        d: Option<&[f32]>,
    ) -> Result<Vec<NodeTime>> {
        let plan = self.plan(h, w)?;
        let inputs = self.inputs(lr, h, w, d)?;
        let path = &self.meta.path;
        let err = |e: TractError| Error::Inference {
            path: path.clone(),
            message: format!("profiling on input {h}x{w}: {e:#}"),
        };
        let model = plan.model();
        let mut ns = vec![0u128; model.nodes().len()];
        let mut order = Vec::with_capacity(model.nodes().len());
        guard_tract(path, &format!("profiling it on input {h}x{w}"), || {
            let mut state = plan.spawn().map_err(err)?;
            state
                .run_plan_with_eval(inputs, |ctx, op_state, node, input| {
                    let t = std::time::Instant::now();
                    let out = tract_onnx::tract_core::plan::eval(ctx, op_state, node, input);
                    ns[node.id] += t.elapsed().as_nanos();
                    order.push(node.id);
                    out
                })
                .map_err(err)
                .map(drop)
        })?;
        Ok(order
            .into_iter()
            .map(|id| {
                let node = model.node(id);
                NodeTime {
                    name: node.name.clone(),
                    op: node.op().name().to_string(),
                    ms: ns[id] as f64 / 1e6,
                }
            })
            .collect())
    }

    /// Runs the graph on `lr` (`[3, h, w]` CHW values in [0, 1]) and, for SR graphs, `d` (`[C]`).
    pub fn run(&self, lr: &[f32], h: usize, w: usize, d: Option<&[f32]>) -> Result<RunOutputs> {
        let path = &self.meta.path;
        let err = |e: TractError| Error::Inference {
            path: path.clone(),
            message: format!("running on input {h}x{w}: {e:#}"),
        };
        let plan = self.plan(h, w)?;
        let inputs = self.inputs(lr, h, w, d)?;
        let outs = guard_tract(path, &format!("running it on input {h}x{w}"), || {
            plan.run(inputs).map_err(err)
        })?;
        let mut outs: Vec<Option<TValue>> = outs.into_iter().map(Some).collect();
        let mut take = |ix: Option<usize>| -> Result<Option<Tensor>> {
            let Some(ix) = ix else { return Ok(None) };
            let v = outs
                .get_mut(ix)
                .and_then(Option::take)
                .ok_or_else(|| Error::Inference {
                    path: path.clone(),
                    message: format!("output #{ix} missing"),
                })?;
            let t = v.into_tensor();
            if t.datum_type() == f32::datum_type() {
                Ok(Some(t))
            } else {
                Ok(Some(t.cast_to::<f32>().map_err(err)?.into_owned()))
            }
        };
        let sr = take(self.out_sr)?;
        let vector = |t: Option<Tensor>| -> Result<Option<Vec<f32>>> {
            t.map(|t| {
                t.try_as_plain_ram()
                    .and_then(|v| v.as_slice::<f32>().map(<[f32]>::to_vec))
                    .map_err(err)
            })
            .transpose()
        };
        Ok(RunOutputs {
            sr,
            d: vector(take(self.out_d)?)?,
            d_prime: vector(take(self.out_dp)?)?,
        })
    }
}

/// Time of one node of an optimized plan.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct NodeTime {
    /// The node's name in the plan.
    pub name: String,
    /// tract's op name (`OptMatMul`, `Im2Col`, `DepthWise`, …).
    pub op: String,
    /// Milliseconds (in [`crate::profile::GraphProfile::nodes`], a median over the profiled runs).
    pub ms: f64,
}
