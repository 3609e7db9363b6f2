//! Where the IDR of a folded graph comes from: an `.idr` file, one image, or the mean over a
//! calibration folder of images. Images are run through the IDE graph in tract ([`IdeRunner`]),
//! which also gives the SR graph its `D` input when graphs are fed images ([`feeds`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use kdsr_core::Planar;
use kdsr_core::idr::Idr;

use crate::error::{ConvertError, Result};
use crate::graph::GraphKind;
use crate::network::Network;
use crate::onnx;
use crate::verify::{Plan, Value, value};

/// File extensions a calibration folder is searched for (case-insensitive): kdsr-core's one list.
pub use kdsr_core::io::IMAGE_EXTENSIONS;

/// An IDR source, as the `--idr`, `--image` and `--calib` flags give it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdrSource {
    /// An `.idr` file.
    File(PathBuf),
    /// One image: its IDE output.
    Image(PathBuf),
    /// A folder of images: the mean of their IDE outputs ([`Idr::mean`]).
    Calib(PathBuf),
}

impl IdrSource {
    /// `idr:PATH`, `image:PATH` or `calib:DIR`, the form recorded in `kdsr.idr_source`.
    pub fn describe(&self) -> String {
        match self {
            IdrSource::File(p) => format!("idr:{}", p.display()),
            IdrSource::Image(p) => format!("image:{}", p.display()),
            IdrSource::Calib(p) => format!("calib:{}", p.display()),
        }
    }
}

/// Loads an image as 3-channel RGB in [0, 1]: gray is replicated to RGB, alpha is dropped.
pub fn load_rgb(path: &Path) -> Result<Planar> {
    let img = kdsr_core::io::load_image(path)?;
    match img.rgb.channels() {
        3 => Ok(img.rgb),
        1 => {
            let p = img.rgb.plane(0);
            let data = [p, p, p].concat();
            Ok(Planar::new(3, img.rgb.height(), img.rgb.width(), data)?)
        }
        n => Err(ConvertError::Image {
            path: path.to_owned(),
            message: format!("{n} colour channels; the network takes RGB"),
        }),
    }
}

/// The images of a calibration folder (not recursive), sorted by name; errors on a folder with
/// none.
pub fn calibration_images(dir: &Path) -> Result<Vec<PathBuf>> {
    let out = kdsr_core::io::list_images(dir).map_err(|e| match e {
        kdsr_core::Error::Io { path, source } => ConvertError::Io { path, source },
        e => ConvertError::Core(e),
    })?;
    if out.is_empty() {
        return Err(ConvertError::EmptyCalibration {
            dir: dir.to_owned(),
            exts: IMAGE_EXTENSIONS.join(", "),
        });
    }
    Ok(out)
}

/// Runs the student IDE (the split export's IDE graph, in tract) on images; one IDR each.
#[derive(Debug)]
pub struct IdeRunner<'n> {
    net: &'n Network,
    bytes: Vec<u8>,
    plans: HashMap<(usize, usize), Plan>,
}

impl<'n> IdeRunner<'n> {
    /// Builds the IDE graph of `net`.
    pub fn new(net: &'n Network) -> Result<Self> {
        let bytes = onnx::encode(&onnx::ide_graph(net)?);
        Ok(Self {
            net,
            bytes,
            plans: HashMap::new(),
        })
    }

    /// The IDR of one LR image `[3, H, W]` (one tract plan per image size, cached).
    pub fn run(&mut self, lr: &Planar, source: &str) -> Result<Idr> {
        let (h, w) = (lr.height(), lr.width());
        let shape = vec![1, 3, h, w];
        let plan = match self.plans.entry((h, w)) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(Plan::new(&self.bytes, std::slice::from_ref(&shape))?)
            }
        };
        let out = plan.run(&[value(shape, lr.data().to_vec())?])?;
        let [d, dp] = out.as_slice() else {
            return Err(ConvertError::Graph(format!(
                "IDE graph returned {} outputs, expected 2",
                out.len()
            )));
        };
        Ok(Idr {
            d: d.data.clone(),
            d_prime: dp.data.clone(),
            weights_hash: self.net.weights_hash.clone(),
            images: 1,
            source: source.to_owned(),
        })
    }

    /// The IDR of an image file.
    pub fn run_file(&mut self, path: &Path) -> Result<Idr> {
        let lr = load_rgb(path)?;
        self.run(&lr, &path.display().to_string())
    }
}

/// Checks an IDR against the network with [`Idr::check_for`], the runtime's check too: `D` of
/// length C and finite, plausible values ([`Idr::check_values`]) always; the producing weights'
/// hash, present and equal, unless `force`.
pub fn check(net: &Network, idr: &Idr, source_name: &str, force: bool) -> Result<()> {
    use kdsr_core::idr::IdrMismatch;
    let source_name = source_name.to_owned();
    match idr.check_for(net.config.n_feats, &net.weights_hash, force) {
        Ok(()) => Ok(()),
        Err(IdrMismatch::Length { found, expected }) => Err(ConvertError::IdrLength {
            source_name,
            found,
            expected,
        }),
        Err(IdrMismatch::Values(message)) => Err(ConvertError::IdrValues {
            source_name,
            message,
        }),
        Err(IdrMismatch::NoHash) => Err(ConvertError::IdrHash {
            source_name,
            idr_hash: "<none recorded>".to_owned(),
            weights_hash: net.weights_hash.clone(),
        }),
        Err(IdrMismatch::Hash { idr, model }) => Err(ConvertError::IdrHash {
            source_name,
            idr_hash: idr,
            weights_hash: model,
        }),
    }
}

/// Resolves `src` to an IDR for `net`. An `.idr` file is checked with [`check`]; images are run
/// through the IDE; a calibration folder averages all its images.
pub fn resolve(net: &Network, src: &IdrSource, force: bool) -> Result<Idr> {
    match src {
        IdrSource::File(p) => {
            let idr = Idr::load(p)?;
            check(net, &idr, &p.display().to_string(), force)?;
            Ok(idr)
        }
        IdrSource::Image(p) => IdeRunner::new(net)?.run_file(p),
        IdrSource::Calib(dir) => {
            let files = calibration_images(dir)?;
            let mut runner = IdeRunner::new(net)?;
            let items = files
                .iter()
                .map(|f| runner.run_file(f))
                .collect::<Result<Vec<_>>>()?;
            Ok(Idr::mean(&items, &dir.display().to_string())?)
        }
    }
}

/// The graph inputs of `kind` for each LR image: `lr` (batched: the image `batch` times), and
/// for the SR graph `D` from the float32 IDE run in tract.
pub fn feeds(
    net: &Network,
    kind: GraphKind,
    images: &[Planar],
    batch: usize,
) -> Result<Vec<Vec<Value>>> {
    let mut ide = match kind {
        GraphKind::Sr => Some(IdeRunner::new(net)?),
        _ => None,
    };
    images
        .iter()
        .map(|img| {
            let [c, h, w] = img.shape();
            let n = if kind == GraphKind::Batched { batch } else { 1 };
            let lr = value(vec![n, c, h, w], img.data().repeat(n))?;
            let mut f = vec![lr];
            if let Some(r) = ide.as_mut() {
                let d = r.run(img, "calibration")?.d;
                f.push(value(vec![1, d.len()], d)?);
            }
            Ok(f)
        })
        .collect()
}
