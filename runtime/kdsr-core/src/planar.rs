//! [`Planar`]: the float32 channel-major image every pixel-level function works on.

use crate::error::{Error, Result};

/// A float32 image stored planar (CHW, row-major within a plane), values normally in [0, 1]
/// (the classic pipeline also accepts 0..255 where a function says so).
///
/// # Shapes
/// `data.len() == channels * height * width`; element (c, y, x) is at `(c * height + y) * width + x`.
#[derive(Clone, Debug, PartialEq)]
pub struct Planar {
    channels: usize,
    height: usize,
    width: usize,
    data: Vec<f32>,
}

impl Planar {
    /// Wraps `data` (CHW). Fails on a zero dimension or a length that does not fill the shape.
    pub fn new(channels: usize, height: usize, width: usize, data: Vec<f32>) -> Result<Self> {
        if channels == 0 || height == 0 || width == 0 {
            return Err(Error::Empty {
                what: "image",
                channels,
                height,
                width,
            });
        }
        if data.len() != channels * height * width {
            return Err(Error::BadLength {
                what: "planar image",
                len: data.len(),
                shape: vec![channels, height, width],
            });
        }
        Ok(Self {
            channels,
            height,
            width,
            data,
        })
    }

    /// An image filled with `value`.
    pub fn filled(channels: usize, height: usize, width: usize, value: f32) -> Result<Self> {
        Self::new(
            channels,
            height,
            width,
            vec![value; channels * height * width],
        )
    }

    /// Builds a planar image from interleaved HWC data (the layout of image files and `.npy`
    /// reference vectors).
    pub fn from_hwc(channels: usize, height: usize, width: usize, hwc: &[f32]) -> Result<Self> {
        if hwc.len() != channels * height * width {
            return Err(Error::BadLength {
                what: "HWC image",
                len: hwc.len(),
                shape: vec![height, width, channels],
            });
        }
        let mut data = vec![0.0; hwc.len()];
        for (i, px) in hwc.chunks_exact(channels).enumerate() {
            for (c, v) in px.iter().enumerate() {
                data[c * height * width + i] = *v;
            }
        }
        Self::new(channels, height, width, data)
    }

    /// Interleaved HWC copy of the pixels.
    pub fn to_hwc(&self) -> Vec<f32> {
        let plane = self.height * self.width;
        let mut out = vec![0.0; self.data.len()];
        for c in 0..self.channels {
            for i in 0..plane {
                out[i * self.channels + c] = self.data[c * plane + i];
            }
        }
        out
    }

    /// Number of channels.
    pub fn channels(&self) -> usize {
        self.channels
    }
    /// Number of rows.
    pub fn height(&self) -> usize {
        self.height
    }
    /// Number of columns.
    pub fn width(&self) -> usize {
        self.width
    }
    /// `[channels, height, width]`.
    pub fn shape(&self) -> [usize; 3] {
        [self.channels, self.height, self.width]
    }
    /// All values, CHW.
    pub fn data(&self) -> &[f32] {
        &self.data
    }
    /// All values, CHW, mutable.
    pub fn data_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }
    /// Consumes the image, returning its CHW values.
    pub fn into_data(self) -> Vec<f32> {
        self.data
    }
    /// One channel as a `height * width` slice.
    pub fn plane(&self, c: usize) -> &[f32] {
        let n = self.height * self.width;
        &self.data[c * n..(c + 1) * n]
    }
    /// One channel, mutable.
    pub fn plane_mut(&mut self, c: usize) -> &mut [f32] {
        let n = self.height * self.width;
        &mut self.data[c * n..(c + 1) * n]
    }
    /// Value at (c, y, x). Panics when out of bounds, like slice indexing.
    pub fn at(&self, c: usize, y: usize, x: usize) -> f32 {
        self.data[(c * self.height + y) * self.width + x]
    }

    /// A new image with `f` applied to every value.
    pub fn map(&self, f: impl Fn(f32) -> f32) -> Self {
        Self {
            data: self.data.iter().map(|v| f(*v)).collect(),
            ..self.clone()
        }
    }

    /// The top-left `height x width` region (used to crop HR images to a multiple of the scale).
    pub fn crop(&self, top: usize, left: usize, height: usize, width: usize) -> Result<Self> {
        if top + height > self.height || left + width > self.width {
            return Err(Error::TooSmall {
                what: "crop",
                height: self.height,
                width: self.width,
                min_height: top + height,
                min_width: left + width,
            });
        }
        let mut data = Vec::with_capacity(self.channels * height * width);
        for c in 0..self.channels {
            let p = self.plane(c);
            for y in top..top + height {
                data.extend_from_slice(&p[y * self.width + left..y * self.width + left + width]);
            }
        }
        Self::new(self.channels, height, width, data)
    }

    /// Crops to the largest size that is a multiple of `scale` in both dimensions, keeping the
    /// top-left corner, as the official test loader does.
    pub fn crop_to_multiple(&self, scale: usize) -> Result<Self> {
        let h = self.height / scale * scale;
        let w = self.width / scale * scale;
        if h == 0 || w == 0 {
            return Err(Error::TooSmall {
                what: "crop to a multiple of the scale",
                height: self.height,
                width: self.width,
                min_height: scale,
                min_width: scale,
            });
        }
        self.crop(0, 0, h, w)
    }

    /// Fails on the first non-finite value.
    pub fn check_finite(&self, what: &'static str) -> Result<()> {
        crate::error::check_finite(what, &self.data)
    }
}
