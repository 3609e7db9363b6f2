//! [`Upscaler`]: a loaded KDSR model (dynamic, split or folded graphs) that estimates IDRs and
//! upscales images, tiled under a memory budget.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use kdsr_core::Planar;
use kdsr_core::idr::Idr;
use kdsr_core::spec::KdsrConfig;
use tract_linalg::multithread::Executor;

use crate::error::{Error, Result};
pub use crate::graph::{ConvPrecision, DirectSpatial};
use crate::graph::{Graph, GraphKind, GraphMeta, PlanSettings, Precision};
use crate::memory;
use crate::models::{Located, locate, suffixed};
use crate::tiling::{TileGrid, receptive_radius};

/// Which graphs a model consists of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// One dynamic graph: IDE and SR network together; the IDR cannot be given or shared, so
    /// images are never tiled.
    Dynamic,
    /// `PREFIX-ide.onnx` + `PREFIX-sr.onnx`: the IDR is estimated once per image (or given) and
    /// shared by every tile.
    Split,
    /// One folded graph with a fixed IDR built in (a camera's calibration); tiled freely.
    Folded,
}

/// Where the IDR of one upscale comes from: the library's decision ([`Upscaler::idr_plan`]),
/// which callers report rather than re-derive. `Display` gives the CLI's wording.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdrPlan {
    /// Given by the caller (`--idr`, a calibration).
    Given {
        /// The IDR's [`Idr::source`].
        source: String,
    },
    /// Estimated by the split model's IDE on the centre crop of the image
    /// ([`Upscaler::ide_window`]).
    Estimated {
        /// The crop, (height, width).
        crop: (usize, usize),
        /// Whether the crop is the whole image.
        whole: bool,
    },
    /// Built into a folded graph.
    BuiltIn {
        /// Its `kdsr.idr_source`, if recorded.
        source: Option<String>,
    },
    /// Estimated inside the dynamic graph, per run.
    InGraph,
}

impl std::fmt::Display for IdrPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Given { source } => write!(f, "from {source}"),
            Self::Estimated { whole: true, .. } => f.write_str("estimated on the whole image"),
            Self::Estimated { crop: (ch, cw), .. } => {
                write!(f, "estimated on the centre {cw}x{ch} crop")
            }
            Self::BuiltIn { source } => write!(
                f,
                "built in ({})",
                source.as_deref().unwrap_or("unknown source")
            ),
            Self::InGraph => f.write_str("estimated inside the dynamic graph"),
        }
    }
}

/// How an [`Upscaler`] runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Threads for tract's matrix products: 1 runs on the calling thread, 0 uses every core
    /// (`std::thread::available_parallelism`); more than the cores is capped at the cores (more
    /// threads than cores made a run 57× slower: 136.6 s instead of 2.4 s). Default 0.
    pub threads: usize,
    /// LR window side (pixels, context included) for tiling; `None` sizes the window from
    /// [`Options::mem_budget_mib`]. A window at least as large as the image means no tiling.
    pub tile: Option<usize>,
    /// Memory budget in MiB for one image: input, output and network working set
    /// (see [`crate::memory`]). Default 512.
    pub mem_budget_mib: usize,
    /// tract's direct spatial convolution; default [`DirectSpatial::Auto`].
    pub direct_spatial: DirectSpatial,
    /// The 3×3 convolutions' number type; default [`ConvPrecision::F32`]. [`ConvPrecision::Bf16`] is an
    /// error at load time where the CPU or OS has no AMX bf16.
    pub precision: ConvPrecision,
    /// Most LR pixels the IDE sees when estimating an IDR; larger images are estimated on their
    /// centre crop of about this many pixels (see [`Upscaler::estimate_idr`]). `None`: the
    /// smaller of 512×512 and what the memory budget allows.
    pub ide_max_pixels: Option<usize>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            threads: 0,
            tile: None,
            mem_budget_mib: 512,
            direct_spatial: DirectSpatial::Auto,
            precision: ConvPrecision::F32,
            ide_max_pixels: None,
        }
    }
}

/// What a loaded model is.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ModelInfo {
    /// Dynamic, split or folded.
    pub kind: ModelKind,
    /// The files loaded (IDE first for split models).
    pub files: Vec<PathBuf>,
    /// The model's preset name (`kdsr.preset`).
    pub preset: String,
    /// Upscaling factor.
    pub scale: u32,
    /// C, the length of `D`.
    pub n_feats: usize,
    /// N, the number of IDR-DCRB blocks.
    pub n_blocks: usize,
    /// Weight precision (`kdsr.precision`).
    pub precision: Precision,
    /// Hash of the weights the graphs were exported from.
    pub weights_hash: String,
    /// Folded graphs: where the folded IDR came from.
    pub idr_source: Option<String>,
    /// Receptive radius of the SR network in LR pixels (the tile context),
    /// [`receptive_radius`].
    pub receptive_radius: usize,
    /// Where a degradation bank for this model is looked for (`PREFIX.bank`).
    pub bank_path: PathBuf,
}

/// One tile's output, handed to the sink of [`Upscaler::run_tiles`].
#[derive(Debug)]
pub struct TileOutput<'a> {
    /// Tile number, 0-based, row-major.
    pub index: usize,
    /// Number of tiles.
    pub total: usize,
    /// SR row of the core's top-left pixel.
    pub y: usize,
    /// SR column of the core's top-left pixel.
    pub x: usize,
    /// SR rows in the core.
    pub height: usize,
    /// SR columns in the core.
    pub width: usize,
    data: &'a [f32],
    tile_h: usize,
    tile_w: usize,
    off_y: usize,
    off_x: usize,
}

impl TileOutput<'_> {
    /// Row `r` (0..height) of channel `c` (0..3) of the core: `width` values, unclamped.
    pub fn row(&self, c: usize, r: usize) -> &[f32] {
        let start = (c * self.tile_h + self.off_y + r) * self.tile_w + self.off_x;
        &self.data[start..start + self.width]
    }
}

/// A loaded model. See the crate docs for an example.
#[derive(Debug)]
pub struct Upscaler {
    info: ModelInfo,
    ide: Option<Graph>,
    sr: Graph,
    options: Options,
    model_bytes: u64,
}

/// `D` shared by all tiles, or none (dynamic and folded graphs).
type Shared<'a> = Option<&'a [f32]>;

impl Upscaler {
    /// Loads a model. `path` may be:
    /// - a split prefix `P` (loads `P-ide.onnx` and `P-sr.onnx`), or either file of the pair;
    /// - one `.onnx` file holding a dynamic or folded graph;
    /// - a folder holding exactly one model (a split pair is preferred over single graphs).
    ///
    /// The `kdsr.*` metadata of every file is read and checked: format `1`, the graph kind the
    /// file's role needs, scale, C, and (for a pair) the same preset, scale, C and weights hash.
    /// Errors name the file: [`Error::Model`].
    pub fn load(path: impl AsRef<Path>, options: Options) -> Result<Self> {
        let path = path.as_ref();
        let settings = plan_settings(&options);
        let located = locate(path)?;
        let (ide, sr, kind, bank_path) = match located {
            Located::Split(prefix) => {
                let (ide_path, sr_path) = kdsr_core::spec::onnx::split_paths(&prefix);
                let ide = Graph::load(&ide_path, settings.clone())?;
                let sr = Graph::load(&sr_path, settings)?;
                let (ide, sr) = checked_pair(ide, sr)?;
                (ide, sr, ModelKind::Split, suffixed(&prefix, ".bank"))
            }
            Located::Single(file) => {
                let g = Graph::load(&file, settings)?;
                let kind = match g.meta.kind {
                    GraphKind::Dynamic => ModelKind::Dynamic,
                    GraphKind::Folded => ModelKind::Folded,
                    k => {
                        return Err(Error::model(
                            &file,
                            format!(
                                "an `{k}` graph is one half of a split pair; name it \
                                 PREFIX-ide.onnx / PREFIX-sr.onnx next to its partner and pass \
                                 PREFIX"
                            ),
                        ));
                    }
                };
                (None, g, kind, file.with_extension("bank"))
            }
        };
        Self::from_graphs(ide, sr, kind, bank_path, options, None)
    }

    /// Loads a split pair from the bytes of its two ONNX files (e.g. a model built into the
    /// binary, [`crate::models::EMBEDDED`]); `label` names it in errors and in
    /// [`ModelInfo::files`] (`LABEL-ide.onnx`, `LABEL-sr.onnx`). Checked as [`Upscaler::load`]
    /// checks files.
    pub fn load_split_bytes(ide: &[u8], sr: &[u8], label: &str, options: Options) -> Result<Self> {
        let settings = plan_settings(&options);
        let prefix = PathBuf::from(label);
        let (ide_path, sr_path) = kdsr_core::spec::onnx::split_paths(&prefix);
        let ide_g = Graph::from_bytes(ide, &ide_path, settings.clone())?;
        let sr_g = Graph::from_bytes(sr, &sr_path, settings)?;
        let (ide_g, sr_g) = checked_pair(ide_g, sr_g)?;
        let bytes = (ide.len() + sr.len()) as u64;
        Self::from_graphs(
            ide_g,
            sr_g,
            ModelKind::Split,
            suffixed(&prefix, ".bank"),
            options,
            Some(bytes),
        )
    }

    /// The model of `found` ([`crate::models::resolve`]): a path or the built-in copy.
    pub fn load_found(found: &crate::models::Found, options: Options) -> Result<Self> {
        use crate::models::{DEFAULT_MODEL, EMBEDDED, Found, embedded_label};
        match (found, EMBEDDED) {
            (Found::Path(p), _) => Self::load(p, options),
            (Found::Embedded, Some((ide, sr))) => {
                Self::load_split_bytes(ide, sr, &embedded_label(DEFAULT_MODEL), options)
            }
            (Found::Embedded, None) => Err(Error::model(
                Path::new(DEFAULT_MODEL),
                "this binary was built without the `embed-default-model` feature",
            )),
        }
    }

    fn from_graphs(
        ide: Option<Graph>,
        sr: Graph,
        kind: ModelKind,
        bank_path: PathBuf,
        options: Options,
        model_bytes: Option<u64>,
    ) -> Result<Self> {
        let m = &sr.meta;
        let n_blocks = match m.n_blocks {
            Some(n) => n,
            None => KdsrConfig::preset(&m.preset)
                .map(|c| c.n_blocks)
                .map_err(|_| {
                    Error::model(
                        &m.path,
                        "metadata lack `kdsr.n_blocks` and the preset is unknown: the tile \
                         context cannot be computed",
                    )
                })?,
        };
        let mut files: Vec<PathBuf> = ide.iter().map(|g| g.meta.path.clone()).collect();
        files.push(m.path.clone());
        let info = ModelInfo {
            kind,
            files,
            preset: m.preset.clone(),
            scale: m.scale,
            n_feats: m.n_feats,
            n_blocks,
            precision: m.precision,
            weights_hash: m.weights_hash.clone(),
            idr_source: m.idr_source.clone(),
            receptive_radius: receptive_radius(n_blocks, m.scale),
            bank_path,
        };
        let model_bytes = model_bytes.unwrap_or_else(|| {
            info.files
                .iter()
                .filter_map(|f| std::fs::metadata(f).ok())
                .map(|m| m.len())
                .sum()
        });
        Ok(Self {
            info,
            ide,
            sr,
            options,
            model_bytes,
        })
    }

    /// What was loaded.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// The options in force.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// The upscaling factor.
    pub fn scale(&self) -> usize {
        self.info.scale as usize
    }

    /// Optimized plans cached so far (IDE and SR together), one per graph and input size.
    pub fn cached_plans(&self) -> usize {
        self.sr.cached_plans() + self.ide.as_ref().map_or(0, Graph::cached_plans)
    }

    fn baseline_bytes(&self) -> f64 {
        memory::baseline_bytes(self.model_bytes)
    }

    fn budget_bytes(&self) -> f64 {
        self.options.mem_budget_mib as f64 * 1024.0 * 1024.0
    }

    /// Most LR pixels the IDE is run on (see [`Options::ide_max_pixels`]).
    pub fn ide_max_pixels(&self) -> usize {
        if let Some(n) = self.options.ide_max_pixels {
            return n.max(1);
        }
        let avail = self.budget_bytes() - self.baseline_bytes();
        let by_budget = (avail / memory::ide_bytes_per_px(self.info.n_feats)).max(64.0 * 64.0);
        (by_budget as usize).min(512 * 512)
    }

    /// The centre crop `(height, width)` the IDE sees of an `h × w` image: the whole image up
    /// to [`Upscaler::ide_max_pixels`] pixels, else [`ide_crop`].
    pub fn ide_window(&self, h: usize, w: usize) -> (usize, usize) {
        ide_crop(h, w, self.ide_max_pixels())
    }

    /// Where the IDR of an `h × w` upscale comes from, given the caller's IDR (if any): what
    /// [`Upscaler::upscale_loaded`](crate::image) and [`Upscaler::upscale`] do. A given IDR is
    /// reported as given here; whether the model accepts it is [`Upscaler::accept_idr`]'s
    /// question.
    pub fn idr_plan(&self, h: usize, w: usize, given: Option<&Idr>) -> IdrPlan {
        match (given, self.info.kind) {
            (Some(i), _) => IdrPlan::Given {
                source: i.source.clone(),
            },
            (None, ModelKind::Split) => {
                let crop = self.ide_window(h, w);
                IdrPlan::Estimated {
                    crop,
                    whole: crop == (h, w),
                }
            }
            (None, ModelKind::Folded) => IdrPlan::BuiltIn {
                source: self.info.idr_source.clone(),
            },
            (None, ModelKind::Dynamic) => IdrPlan::InGraph,
        }
    }

    /// Checks that `idr` was made by this model's weights (its `weights_hash` is present and
    /// equal), has its length, and holds finite values of a plausible size
    /// ([`Idr::check_values`]). Errors: [`Error::ModelData`].
    pub fn check_idr(&self, idr: &Idr) -> Result<()> {
        let path = PathBuf::from(if idr.source.is_empty() {
            "<IDR>"
        } else {
            idr.source.as_str()
        });
        use kdsr_core::idr::IdrMismatch;
        let message = match idr.check_for(self.info.n_feats, &self.info.weights_hash, false) {
            Ok(()) => return Ok(()),
            Err(IdrMismatch::Length { found, expected }) => format!(
                "IDR has C = {found}, the model ({}) has C = {expected}",
                self.info.preset
            ),
            Err(IdrMismatch::Values(m)) => m,
            Err(IdrMismatch::NoHash) => format!(
                "IDR has no `weights_hash`, so it cannot be shown to come from this model \
                 (weights {}); the converter refuses such an IDR too. Re-make it with \
                 `kdsr-edge calibrate` or `inspect-degradation --save-idr`",
                self.info.weights_hash
            ),
            Err(IdrMismatch::Hash { idr, model }) => format!(
                "IDR was estimated by the model with weights {idr}, this model has weights \
                 {model}; an IDR only means something to the model that made it (re-run \
                 `kdsr-edge calibrate` with this model)"
            ),
        };
        Err(Error::ModelData { path, message })
    }

    /// Estimates the IDR of `lr` (3 RGB channels or 1 gray channel, values in [0, 1]) with the
    /// IDE graph of a split model.
    ///
    /// The IDE sees the whole image when it has at most [`Upscaler::ide_max_pixels`] pixels
    /// (262,144 = 512×512 by default); a larger image is estimated on its centre crop of that
    /// many pixels ([`ide_crop`]: 512×512 by default), at full resolution. A crop and
    /// not a downscaled copy: the blur and noise the IDR describes are per-pixel statistics, and
    /// downscaling by `f` would shrink the apparent blur by `f` and average the noise away; the
    /// classic degradation is spatially uniform, so a crop sees the same degradation (the IDE
    /// was trained on 64×64 LR patches). The result's `images` is 1 and `source` is empty.
    ///
    /// Errors: [`Error::Usage`] for dynamic graphs (they output `D` but not `D'`) and folded
    /// graphs (no IDE); [`Error::Core`] for a planar image with another channel count.
    pub fn estimate_idr(&self, lr: &Planar) -> Result<Idr> {
        check_channels(lr)?;
        let ide = match (&self.ide, self.info.kind) {
            (Some(ide), _) => ide,
            (None, ModelKind::Dynamic) => {
                return Err(Error::Usage(format!(
                    "{} is a dynamic graph: it computes D internally but does not output D', \
                     so it cannot produce an IDR file; use the split graphs \
                     (PREFIX-ide.onnx + PREFIX-sr.onnx)",
                    self.sr.meta.path.display()
                )));
            }
            (None, _) => {
                return Err(Error::Usage(format!(
                    "{} is a folded graph: its IDR is built in ({}) and it has no IDE; use the \
                     split graphs to estimate one",
                    self.sr.meta.path.display(),
                    self.info.idr_source.as_deref().unwrap_or("source unknown")
                )));
            }
        };
        let (ch, cw) = self.ide_window(lr.height(), lr.width());
        let top = (lr.height() - ch) / 2;
        let left = (lr.width() - cw) / 2;
        let window = extract_rgb(lr, top, left, ch, cw);
        let out = ide.run(&window, ch, cw, None)?;
        let missing = |what: &str| Error::Inference {
            path: ide.meta.path.clone(),
            message: format!("no `{what}` output"),
        };
        let d = out.d.ok_or_else(|| missing("D"))?;
        let d_prime = out.d_prime.ok_or_else(|| missing("D_prime"))?;
        Ok(Idr {
            d,
            d_prime,
            weights_hash: self.info.weights_hash.clone(),
            images: 1,
            source: String::new(),
        })
    }

    /// Upscales `lr` (3 RGB channels or 1 gray channel, values in [0, 1]).
    ///
    /// Split models estimate the IDR once ([`Upscaler::estimate_idr`]) and share it across tiles;
    /// folded models use their built-in IDR; dynamic models run the whole image at once.
    ///
    /// # Shapes
    /// `[c, h, w]` → `[c, s·h, s·w]`, `c` ∈ {1, 3}. Values are the network's, unclamped. A gray
    /// image runs as RGB with the value replicated, and the output is the mean of the three
    /// output channels.
    pub fn upscale(&self, lr: &Planar) -> Result<Planar> {
        let idr = self.auto_idr(lr)?;
        self.upscale_planar(lr, idr.as_ref().map(|i| i.d.as_slice()))
    }

    /// Upscales `lr` with a given IDR (split models only: a dynamic graph computes its own and a
    /// folded graph has one built in, so both refuse with [`Error::Usage`]). `idr` must come
    /// from this model ([`Upscaler::check_idr`]).
    pub fn upscale_with_idr(&self, lr: &Planar, idr: &Idr) -> Result<Planar> {
        self.require_split_for_idr()?;
        self.check_idr(idr)?;
        self.upscale_planar(lr, Some(&idr.d))
    }

    fn require_split_for_idr(&self) -> Result<()> {
        match self.info.kind {
            ModelKind::Split => Ok(()),
            ModelKind::Dynamic => Err(Error::Usage(format!(
                "{} is a dynamic graph: it estimates the IDR inside the graph and cannot take \
                 one; use the split graphs (PREFIX-ide.onnx + PREFIX-sr.onnx) to upscale with \
                 a given IDR",
                self.sr.meta.path.display()
            ))),
            ModelKind::Folded => Err(Error::Usage(format!(
                "{} is a folded graph with its IDR built in ({}); it cannot take another one",
                self.sr.meta.path.display(),
                self.info.idr_source.as_deref().unwrap_or("source unknown")
            ))),
        }
    }

    /// The IDR [`Upscaler::upscale`] uses: estimated for split models, none otherwise.
    pub(crate) fn auto_idr(&self, lr: &Planar) -> Result<Option<Idr>> {
        match self.idr_plan(lr.height(), lr.width(), None) {
            IdrPlan::Estimated { .. } => self.estimate_idr(lr).map(Some),
            _ => Ok(None),
        }
    }

    /// Checks an IDR given by the user (`--idr`) against the model: split models only.
    pub fn accept_idr(&self, idr: &Idr) -> Result<()> {
        self.require_split_for_idr()?;
        self.check_idr(idr)
    }

    fn upscale_planar(&self, lr: &Planar, d: Shared<'_>) -> Result<Planar> {
        check_channels(lr)?;
        let s = self.scale();
        let (h, w) = (lr.height(), lr.width());
        let c = lr.channels();
        let fixed = 4.0 * (c * h * w) as f64 * (1.0 + (s * s) as f64);
        let grid = self.tile_grid(h, w, fixed)?;
        let (oh, ow) = (h * s, w * s);
        let mut out = vec![0f32; c * oh * ow];
        self.run_tiles(lr, d, &grid, &mut |t: &TileOutput<'_>| {
            for r in 0..t.height {
                let row = (t.y + r) * ow + t.x;
                if c == 3 {
                    for ch in 0..3 {
                        out[ch * oh * ow + row..ch * oh * ow + row + t.width]
                            .copy_from_slice(t.row(ch, r));
                    }
                } else {
                    let (r0, r1, r2) = (t.row(0, r), t.row(1, r), t.row(2, r));
                    for (i, o) in out[row..row + t.width].iter_mut().enumerate() {
                        *o = (r0[i] + r1[i] + r2[i]) / 3.0;
                    }
                }
            }
            Ok(())
        })?;
        Ok(Planar::new(c, oh, ow, out)?)
    }

    /// The tiling [`Upscaler::run_tiles`] uses for an `h × w` image when the caller holds
    /// `fixed_bytes` outside the network (input and output buffers): one tile when the image
    /// fits the budget or the model is dynamic, else windows sized from [`Options::tile`] or the
    /// budget ([`crate::memory`]).
    ///
    /// Errors: [`Error::Budget`] when the budget leaves no room for a window with a core, or
    /// when a dynamic model's whole-image run does not fit.
    pub fn tile_grid(&self, h: usize, w: usize, fixed_bytes: f64) -> Result<TileGrid> {
        if h == 0 || w == 0 {
            return Err(Error::Usage(format!(
                "cannot upscale an empty {h}x{w} image"
            )));
        }
        let margin = self.info.receptive_radius;
        let bpp = memory::sr_bytes_per_px(self.info.n_feats, self.info.scale);
        let mib = |b: f64| b / (1024.0 * 1024.0);
        let avail = self.budget_bytes() - self.baseline_bytes() - fixed_bytes;
        let whole =
            || TileGrid::whole(h, w).ok_or_else(|| Error::Usage(format!("bad image size {h}x{w}")));
        if self.info.kind == ModelKind::Dynamic {
            let need = (h * w) as f64 * bpp.max(memory::ide_bytes_per_px(self.info.n_feats));
            if need > avail {
                return Err(Error::Budget(format!(
                    "a dynamic graph estimates its IDR inside the graph, so it cannot be tiled \
                     (each tile would get its own IDR); this {w}x{h} image needs about {:.0} MiB \
                     of the {} MiB budget ({:.0} MiB left after the image buffers). Use the \
                     split graphs (PREFIX-ide.onnx + PREFIX-sr.onnx), which tile, or raise \
                     --mem-budget",
                    mib(need),
                    self.options.mem_budget_mib,
                    mib(avail.max(0.0))
                )));
            }
            return whole();
        }
        let window = match self.options.tile {
            Some(t) => (t.min(h), t.min(w)),
            None => {
                if avail <= 0.0 {
                    return Err(Error::Budget(format!(
                        "the image buffers of a {w}x{h} image at x{} need about {:.0} MiB, more \
                         than the {} MiB budget; raise --mem-budget",
                        self.info.scale,
                        mib(fixed_bytes + self.baseline_bytes()),
                        self.options.mem_budget_mib
                    )));
                }
                let px = (avail / bpp) as usize;
                if h * w <= px {
                    return whole();
                }
                let side = (px as f64).sqrt() as usize;
                if h <= side {
                    (h, (px / h).min(w))
                } else if w <= side {
                    ((px / w).min(h), w)
                } else {
                    (side, side)
                }
            }
        };
        TileGrid::new(h, w, window, margin).ok_or_else(|| {
            Error::Budget(format!(
                "a {}x{} window leaves no core with {margin} px of context on each side (the \
                 receptive radius of {}); it needs a window of at least {} px: {}",
                window.1,
                window.0,
                self.info.preset,
                2 * margin + 1,
                if self.options.tile.is_some() {
                    "raise --tile"
                } else {
                    "raise --mem-budget"
                }
            ))
        })
    }

    /// Runs the SR (or dynamic / folded) graph over `grid`, handing each tile's core to `sink`
    /// in row-major order. A tile whose `sr` holds NaN or infinity is an [`Error::Model`]. `d` is the shared `D` for split models (required there, refused
    /// elsewhere). `lr` has 3 RGB channels or 1 gray channel (replicated to RGB).
    pub fn run_tiles(
        &self,
        lr: &Planar,
        d: Option<&[f32]>,
        grid: &TileGrid,
        sink: &mut dyn FnMut(&TileOutput<'_>) -> Result<()>,
    ) -> Result<()> {
        check_channels(lr)?;
        match (self.info.kind, d) {
            (ModelKind::Split, None) => {
                return Err(Error::Usage(
                    "split graphs need the IDR `D` for their tiles".into(),
                ));
            }
            (ModelKind::Split, Some(_)) | (_, None) => {}
            (_, Some(_)) => self.require_split_for_idr()?,
        }
        let last_row = grid.rows.last().map_or(0, |s| s.core_end);
        let last_col = grid.cols.last().map_or(0, |s| s.core_end);
        if (last_row, last_col) != (lr.height(), lr.width()) {
            return Err(Error::Usage(format!(
                "tile grid covers {last_col}x{last_row}, the image is {}x{}",
                lr.width(),
                lr.height()
            )));
        }
        let s = self.scale();
        let total = grid.len();
        let mut index = 0;
        for rs in &grid.rows {
            for cs in &grid.cols {
                let window = extract_rgb(lr, rs.start, cs.start, rs.len, cs.len);
                let out = self.sr.run(&window, rs.len, cs.len, d)?;
                let sr = out.sr.ok_or_else(|| Error::Inference {
                    path: self.sr.meta.path.clone(),
                    message: "no `sr` output".into(),
                })?;
                let (th, tw) = (rs.len * s, cs.len * s);
                if sr.shape() != [1, 3, th, tw] {
                    return Err(Error::Inference {
                        path: self.sr.meta.path.clone(),
                        message: format!(
                            "`sr` has shape {:?} for input {}x{}, expected [1, 3, {th}, {tw}] \
                             (scale {s})",
                            sr.shape(),
                            rs.len,
                            cs.len
                        ),
                    });
                }
                let view = sr.try_as_plain_ram().map_err(|e| Error::Inference {
                    path: self.sr.meta.path.clone(),
                    message: format!("{e:#}"),
                })?;
                let data = view.as_slice::<f32>().map_err(|e| Error::Inference {
                    path: self.sr.meta.path.clone(),
                    message: format!("{e:#}"),
                })?;
                if let Some(v) = data.iter().find(|v| !v.is_finite()) {
                    return Err(Error::model(
                        &self.sr.meta.path,
                        format!(
                            "the `sr` output holds a non-finite value ({v}) in tile {} of \
                             {total}: the model's weights{} produce NaN or infinity, which no \
                             image can show; nothing is written",
                            index + 1,
                            if d.is_some() {
                                " or the IDR given to it"
                            } else {
                                ""
                            }
                        ),
                    ));
                }
                sink(&TileOutput {
                    index,
                    total,
                    y: rs.core_start * s,
                    x: cs.core_start * s,
                    height: (rs.core_end - rs.core_start) * s,
                    width: (cs.core_end - cs.core_start) * s,
                    data,
                    tile_h: th,
                    tile_w: tw,
                    off_y: (rs.core_start - rs.start) * s,
                    off_x: (cs.core_start - cs.start) * s,
                })?;
                index += 1;
            }
        }
        Ok(())
    }
}

fn check_channels(lr: &Planar) -> Result<()> {
    if matches!(lr.channels(), 1 | 3) {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "images have 1 (gray) or 3 (RGB) channels, got {} (pass alpha separately)",
            lr.channels()
        )))
    }
}

/// The `[3, h, w]` window at (`top`, `left`) of `img` (gray replicated to RGB).
fn extract_rgb(img: &Planar, top: usize, left: usize, h: usize, w: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(3 * h * w);
    let iw = img.width();
    for c in 0..3 {
        let p = img.plane(if img.channels() == 1 { 0 } else { c });
        for y in top..top + h {
            out.extend_from_slice(&p[y * iw + left..y * iw + left + w]);
        }
    }
    out
}

/// The centre crop size `(height, width)` for the IDE: the whole image when it has at most
/// `max_px` pixels, else a square of side `⌊√max_px⌋` (a side capped at the image's, the other
/// widened to use the pixel allowance).
pub fn ide_crop(h: usize, w: usize, max_px: usize) -> (usize, usize) {
    if h * w <= max_px {
        return (h, w);
    }
    let side = ((max_px as f64).sqrt() as usize).max(1);
    if h <= side {
        (h, (max_px / h).clamp(1, w))
    } else if w <= side {
        ((max_px / w).clamp(1, h), w)
    } else {
        (side, side)
    }
}

/// tract's plan settings for `options`: the thread count capped at the cores, the knob.
fn plan_settings(options: &Options) -> Arc<PlanSettings> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let threads = if options.threads == 0 {
        cores
    } else {
        options.threads.min(cores)
    };
    Arc::new(PlanSettings {
        executor: (threads > 1).then(|| Executor::multithread(threads)),
        direct_spatial: options.direct_spatial,
        precision: options.precision,
    })
}

/// The IDE and SR graphs of a split pair, checked against their roles and each other.
fn checked_pair(ide: Graph, sr: Graph) -> Result<(Option<Graph>, Graph)> {
    expect_kind(&ide.meta, GraphKind::Ide)?;
    expect_kind(&sr.meta, GraphKind::Sr)?;
    check_pair(&ide.meta, &sr.meta)?;
    Ok((Some(ide), sr))
}

fn expect_kind(meta: &GraphMeta, kind: GraphKind) -> Result<()> {
    if meta.kind == kind {
        Ok(())
    } else {
        Err(Error::model(
            &meta.path,
            format!(
                "metadata say a `{}` graph; as part of a split pair this file must be the `{kind}` \
                 graph",
                meta.kind
            ),
        ))
    }
}

fn check_pair(ide: &GraphMeta, sr: &GraphMeta) -> Result<()> {
    let mismatch = |what: &str, a: &dyn std::fmt::Display, b: &dyn std::fmt::Display| {
        Error::model(
            &sr.path,
            format!(
                "{what} {b} does not match its IDE {} ({what} {a}); the two files come from \
                 different exports",
                ide.path.display()
            ),
        )
    };
    if ide.scale != sr.scale {
        return Err(mismatch("scale", &ide.scale, &sr.scale));
    }
    if ide.n_feats != sr.n_feats {
        return Err(mismatch("n_feats", &ide.n_feats, &sr.n_feats));
    }
    if ide.preset != sr.preset {
        return Err(mismatch("preset", &ide.preset, &sr.preset));
    }
    if ide.weights_hash != sr.weights_hash {
        return Err(mismatch(
            "weights hash",
            &ide.weights_hash,
            &sr.weights_hash,
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ide_crop_keeps_small_images_and_caps_large_ones() {
        assert_eq!(ide_crop(100, 200, 512 * 512), (100, 200));
        let (h, w) = ide_crop(1080, 1920, 512 * 512);
        assert!(h * w <= 512 * 512 && h * w > 500 * 500, "{h}x{w}");
        let (h, w) = ide_crop(10, 100_000, 1000);
        assert_eq!((h, w), (10, 100));
    }
}
