//! `kdsr`, the Python package: the `kdsr-edge` runtime ([`kdsr_runtime::Upscaler`]) on numpy
//! frames, as picamera2 and OpenCV hand them over (`H×W×3` `uint8`, also `uint16`, gray `H×W`,
//! `H×W×4` with alpha, and `float32` RGB in [0, 1], returned clipped to [0, 1]).
//!
//! ```python
//! import kdsr
//! up = kdsr.Upscaler()                  # the default model, found as kdsr-edge finds it
//! out = up.upscale(frame)               # (4H, 4W, 3) uint8
//! idr = up.estimate_idr(frame)          # once per camera / scene
//! out = up.upscale_with_idr(frame, idr) # every frame after
//! ```
//!
//! Integer frames go through the same path as `kdsr-edge upscale` on an image file (gray, alpha
//! and 16-bit handled alike, the same rounding), so a frame and the PNG of that frame give equal
//! outputs. Errors are raised as `kdsr.KdsrError` with the runtime's message; a frame of the
//! wrong shape or type is a `ValueError`. The GIL is released while a frame is upscaled.

use std::path::PathBuf;

use image::{DynamicImage, ImageBuffer};
use kdsr_core::Planar;
use kdsr_core::idr::Idr as CoreIdr;
use kdsr_runtime::models::{self, Found};
use kdsr_runtime::{Options, Upscaler as CoreUpscaler};
use numpy::ndarray::{ArrayD, IxDyn};
use numpy::{IntoPyArray, PyArrayDyn, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;

create_exception!(
    kdsr,
    KdsrError,
    PyException,
    "An error of the kdsr runtime (model, image, IDR or budget), with the runtime's message."
);

fn err(e: kdsr_runtime::Error) -> PyErr {
    KdsrError::new_err(e.to_string())
}

/// A frame taken from numpy: an integer image for the image path, or float RGB planes.
enum Frame {
    Image(DynamicImage),
    Float(Planar),
}

fn shape_hwc(shape: &[usize]) -> PyResult<(u32, u32, usize)> {
    let (h, w, c) = match *shape {
        [h, w] => (h, w, 1),
        [h, w, c] if matches!(c, 1 | 3 | 4) => (h, w, c),
        _ => {
            return Err(PyValueError::new_err(format!(
                "a frame is H x W (gray) or H x W x C with C = 1, 3 or 4; got shape {shape:?}"
            )));
        }
    };
    let dim = |v: usize| {
        u32::try_from(v).map_err(|_| PyValueError::new_err(format!("frame side {v} is too large")))
    };
    Ok((dim(h)?, dim(w)?, c))
}

fn buffer<P: image::Pixel>(
    w: u32,
    h: u32,
    v: Vec<P::Subpixel>,
) -> PyResult<ImageBuffer<P, Vec<P::Subpixel>>> {
    ImageBuffer::from_raw(w, h, v)
        .ok_or_else(|| PyValueError::new_err("frame data does not fill its shape"))
}

/// A numpy frame's height, width, channels and values in C order (any strides).
fn pixels<T: numpy::Element + Copy>(
    a: &PyReadonlyArrayDyn<'_, T>,
) -> PyResult<(u32, u32, usize, Vec<T>)> {
    let (h, w, c) = shape_hwc(a.shape())?;
    Ok((h, w, c, a.as_array().iter().copied().collect()))
}

/// The frame and whether it was 2-D (gray `H×W`, returned 2-D).
fn frame_from(obj: &Bound<'_, PyAny>) -> PyResult<(Frame, bool)> {
    if let Ok(a) = obj.extract::<PyReadonlyArrayDyn<'_, u8>>() {
        let (h, w, c, v) = pixels(&a)?;
        let img = match c {
            1 => DynamicImage::ImageLuma8(buffer(w, h, v)?),
            3 => DynamicImage::ImageRgb8(buffer(w, h, v)?),
            _ => DynamicImage::ImageRgba8(buffer(w, h, v)?),
        };
        return Ok((Frame::Image(img), a.ndim() == 2));
    }
    if let Ok(a) = obj.extract::<PyReadonlyArrayDyn<'_, u16>>() {
        let (h, w, c, v) = pixels(&a)?;
        let img = match c {
            1 => DynamicImage::ImageLuma16(buffer(w, h, v)?),
            3 => DynamicImage::ImageRgb16(buffer(w, h, v)?),
            _ => DynamicImage::ImageRgba16(buffer(w, h, v)?),
        };
        return Ok((Frame::Image(img), a.ndim() == 2));
    }
    if let Ok(a) = obj.extract::<PyReadonlyArrayDyn<'_, f32>>() {
        let (h, w, c, v) = pixels(&a)?;
        if c != 3 || a.ndim() != 3 {
            return Err(PyValueError::new_err(format!(
                "a float32 frame is H x W x 3 RGB in [0, 1]; got shape {:?}",
                a.shape()
            )));
        }
        let p = Planar::from_hwc(3, h as usize, w as usize, &v)
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        return Ok((Frame::Float(p), false));
    }
    Err(PyValueError::new_err(
        "a frame is a numpy array of uint8, uint16 or float32 (H x W x 3 RGB, H x W gray, \
         H x W x 4 RGBA)",
    ))
}

/// The numpy array of an upscaled frame: the image's own sample type (the runtime returns the
/// input's bit depth and colour kind), 2-D for a 2-D gray input.
fn to_numpy<'py>(py: Python<'py>, out: Out, gray2d: bool) -> PyResult<Bound<'py, PyAny>> {
    let img = match out {
        // Clipped to [0, 1] as the integer paths are to their range.
        Out::Float(p) => {
            return array(
                py,
                &[p.height(), p.width(), 3],
                p.map(|v| v.clamp(0.0, 1.0)).to_hwc(),
            );
        }
        Out::Image(img) => img,
    };
    let (h, w, c) = (
        img.height() as usize,
        img.width() as usize,
        usize::from(img.color().channel_count()),
    );
    let shape: &[usize] = if gray2d { &[h, w] } else { &[h, w, c] };
    match img {
        DynamicImage::ImageLuma16(b) => array(py, shape, b.into_raw()),
        DynamicImage::ImageRgb16(b) => array(py, shape, b.into_raw()),
        DynamicImage::ImageRgba16(b) => array(py, shape, b.into_raw()),
        img => array(py, shape, img.into_bytes()),
    }
}

fn array<'py, T: numpy::Element>(
    py: Python<'py>,
    shape: &[usize],
    v: Vec<T>,
) -> PyResult<Bound<'py, PyAny>> {
    ArrayD::from_shape_vec(IxDyn(shape), v)
        .map(|a| a.into_pyarray(py).into_any())
        .map_err(|e| PyValueError::new_err(e.to_string()))
}

enum Out {
    Image(DynamicImage),
    Float(Planar),
}

/// An IDR (implicit degradation representation): `D`, `D'` and the weights it belongs to.
/// Estimate one with `Upscaler.estimate_idr`, or load a `.idr` file of `kdsr-edge calibrate`.
#[pyclass(module = "kdsr", frozen)]
struct Idr {
    inner: CoreIdr,
}

#[pymethods]
impl Idr {
    /// `D`, the vector the SR network is conditioned on (float32, length C).
    #[getter]
    fn d<'py>(&self, py: Python<'py>) -> Bound<'py, PyArrayDyn<f32>> {
        ArrayD::from_shape_vec(IxDyn(&[self.inner.d.len()]), self.inner.d.clone())
            .expect("1-D shape of its own length")
            .into_pyarray(py)
    }

    /// `D'`, the vector the KD loss compares (float32, length 4C).
    #[getter]
    fn d_prime<'py>(&self, py: Python<'py>) -> Bound<'py, PyArrayDyn<f32>> {
        ArrayD::from_shape_vec(
            IxDyn(&[self.inner.d_prime.len()]),
            self.inner.d_prime.clone(),
        )
        .expect("1-D shape of its own length")
        .into_pyarray(py)
    }

    /// The weights hash of the model that made it.
    #[getter]
    fn weights_hash(&self) -> &str {
        &self.inner.weights_hash
    }

    /// Writes it as a `.idr` file (`kdsr-edge upscale --idr FILE` reads it).
    fn save(&self, path: PathBuf) -> PyResult<()> {
        self.inner
            .save(&path)
            .map_err(|e| KdsrError::new_err(e.to_string()))
    }

    /// Reads a `.idr` file (from `kdsr-edge calibrate` or `Idr.save`).
    #[staticmethod]
    fn load(path: PathBuf) -> PyResult<Self> {
        CoreIdr::load(&path)
            .map(|inner| Self { inner })
            .map_err(|e| KdsrError::new_err(e.to_string()))
    }

    fn __repr__(&self) -> String {
        format!(
            "kdsr.Idr(C={}, weights_hash={:?}, images={})",
            self.inner.d.len(),
            self.inner.weights_hash,
            self.inner.images
        )
    }
}

/// A loaded model. `model`: a split prefix, an `.onnx` file or a folder; `None` finds the
/// default model as `kdsr-edge` does (`KDSR_MODEL`, beside the interpreter, the repository, the
/// built-in copy). `threads`: 0 = every core. `mem_budget_mib`: per frame, as `--mem-budget`.
#[pyclass(module = "kdsr", frozen)]
struct Upscaler {
    inner: CoreUpscaler,
    label: String,
}

impl Upscaler {
    fn run(
        &self,
        py: Python<'_>,
        frame: &Bound<'_, PyAny>,
        idr: Option<&CoreIdr>,
    ) -> PyResult<Py<PyAny>> {
        let (frame, gray2d) = frame_from(frame)?;
        let up = &self.inner;
        let out = py
            .detach(|| match frame {
                Frame::Image(img) => match idr {
                    Some(idr) => up.upscale_image_with_idr(&img, idr),
                    None => up.upscale_image(&img),
                }
                .map(Out::Image),
                Frame::Float(p) => match idr {
                    Some(idr) => up.upscale_with_idr(&p, idr),
                    None => up.upscale(&p),
                }
                .map(Out::Float),
            })
            .map_err(err)?;
        Ok(to_numpy(py, out, gray2d)?.unbind())
    }
}

#[pymethods]
impl Upscaler {
    #[new]
    #[pyo3(signature = (model=None, threads=0, mem_budget_mib=512))]
    fn new(
        py: Python<'_>,
        model: Option<PathBuf>,
        threads: usize,
        mem_budget_mib: usize,
    ) -> PyResult<Self> {
        let options = Options {
            threads,
            mem_budget_mib,
            ..Options::default()
        };
        py.detach(|| {
            let resolved = models::resolve(model.as_deref(), None)?;
            let label = match &resolved.found {
                Found::Path(p) => p.display().to_string(),
                Found::Embedded => format!("<built-in {}>", models::DEFAULT_MODEL),
            };
            let inner = CoreUpscaler::load_found(&resolved.found, options)?;
            Ok(Self { inner, label })
        })
        .map_err(err)
    }

    /// Upscales a frame ×scale; the IDR is estimated from the frame (split models).
    fn upscale(&self, py: Python<'_>, frame: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        self.run(py, frame, None)
    }

    /// Upscales a frame with a given IDR (split models): estimate it once per camera or scene.
    fn upscale_with_idr(
        &self,
        py: Python<'_>,
        frame: &Bound<'_, PyAny>,
        idr: &Idr,
    ) -> PyResult<Py<PyAny>> {
        self.run(py, frame, Some(&idr.inner))
    }

    /// The IDR of a frame (split models).
    fn estimate_idr(&self, py: Python<'_>, frame: &Bound<'_, PyAny>) -> PyResult<Idr> {
        let (frame, _) = frame_from(frame)?;
        let up = &self.inner;
        py.detach(|| {
            let rgb = match frame {
                Frame::Image(img) => kdsr_core::io::from_dynamic(&img)?.rgb,
                Frame::Float(p) => p,
            };
            up.estimate_idr(&rgb)
        })
        .map(|inner| Idr { inner })
        .map_err(err)
    }

    /// The upscaling factor (4).
    #[getter]
    fn scale(&self) -> usize {
        self.inner.scale()
    }

    /// Where the model was found (a path, or `<built-in …>`).
    #[getter]
    fn model(&self) -> &str {
        &self.label
    }

    fn __repr__(&self) -> String {
        format!(
            "kdsr.Upscaler(model={:?}, scale={})",
            self.label,
            self.inner.scale()
        )
    }
}

/// The `kdsr` module.
#[pymodule]
fn kdsr(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Upscaler>()?;
    m.add_class::<Idr>()?;
    m.add("KdsrError", m.py().get_type::<KdsrError>())?;
    m.add("DEFAULT_MODEL", models::DEFAULT_MODEL)?;
    Ok(())
}
