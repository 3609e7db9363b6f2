//! Blur kernels: the DASR/KDSR isotropic and anisotropic Gaussians and Real-ESRGAN's (BasicSR)
//! bivariate Gaussian, generalized Gaussian, plateau and circular sinc kernels.
//!
//! Grid convention (all families): a kernel of odd size `n` covers offsets −(n−1)/2 ..= (n−1)/2;
//! the row index is the vertical offset y (top to bottom), the column index the horizontal offset
//! x. Filtering is correlation.

use crate::error::{Error, Result};

/// A square, odd-sized 2-D kernel, row-major, float32.
#[derive(Clone, Debug, PartialEq)]
pub struct Kernel {
    size: usize,
    weights: Vec<f32>,
}

impl Kernel {
    /// Wraps row-major weights of an odd `size x size` kernel.
    pub fn new(size: usize, weights: Vec<f32>) -> Result<Self> {
        if size == 0 || size % 2 == 0 {
            return Err(Error::InvalidParameter {
                name: "kernel size",
                value: size as f64,
                expected: "must be odd and > 0",
            });
        }
        if weights.len() != size * size {
            return Err(Error::BadLength {
                what: "kernel",
                len: weights.len(),
                shape: vec![size, size],
            });
        }
        crate::error::check_finite("kernel", &weights)?;
        Ok(Self { size, weights })
    }
    /// Side length (odd).
    pub fn size(&self) -> usize {
        self.size
    }
    /// Half the side length: the padding a same-size filter needs.
    pub fn radius(&self) -> usize {
        self.size / 2
    }
    /// Row-major weights.
    pub fn weights(&self) -> &[f32] {
        &self.weights
    }
    /// Weight at row `i`, column `j`.
    pub fn at(&self, i: usize, j: usize) -> f32 {
        self.weights[i * self.size + j]
    }
}
