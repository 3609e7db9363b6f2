//! The primitive layers every graph is made of, each reading its official tensors by key:
//! 3×3 and 1×1 convolutions, LeakyReLU(0.1), linear layers (`Gemm`, `transB = 1`, so the
//! official `[out, in]` weights are stored unchanged), residual adds and reshapes.

use kdsr_core::spec::LRELU_SLOPE;
use kdsr_core::spec::checkpoint::Weights;

use super::builder::{Attr, GraphBuilder};
use crate::error::{ConvertError, Result};
use crate::network::tensor;

/// `Conv` attributes for a square kernel of size `k` with "same" zero padding, stride 1.
fn conv_attrs(k: usize, group: usize) -> Vec<(&'static str, Attr)> {
    let p = (k / 2) as i64;
    vec![
        ("dilations", Attr::Ints(vec![1, 1])),
        ("group", Attr::Int(group as i64)),
        ("kernel_shape", Attr::Ints(vec![k as i64, k as i64])),
        ("pads", Attr::Ints(vec![p, p, p, p])),
        ("strides", Attr::Ints(vec![1, 1])),
    ]
}

/// Ordinary convolution `key` (`{key}.weight` `[out, in, k, k]`, `{key}.bias` `[out]`), "same"
/// padding; the node is named `key`.
pub fn conv(b: &mut GraphBuilder, w: &Weights, key: &str, x: &str) -> Result<String> {
    conv_named(b, w, key, key, x)
}

/// [`conv`] with the node (and its output) named `name` instead of `key`.
pub fn conv_named(
    b: &mut GraphBuilder,
    w: &Weights,
    key: &str,
    name: &str,
    x: &str,
) -> Result<String> {
    let wk = format!("{key}.weight");
    let k = match tensor(w, &wk)?.shape.as_slice() {
        [_, _, kh, kw] if kh == kw => *kh,
        s => {
            return Err(ConvertError::Graph(format!(
                "`{wk}` has shape {s:?}, expected [out, in, k, k]"
            )));
        }
    };
    let weight = b.official(w, &wk)?;
    let bias = b.official(w, &format!("{key}.bias"))?;
    b.node("Conv", name, &[x, &weight, &bias], &conv_attrs(k, 1))
}

/// Depthwise 3×3 convolution without bias, one group per channel: `x` `[N, G, H, W]` with
/// `kernel` `[G, 1, 3, 3]` (a graph value or an initializer), padding 1.
pub fn depthwise3x3(
    b: &mut GraphBuilder,
    name: &str,
    x: &str,
    kernel: &str,
    groups: usize,
) -> Result<String> {
    b.node("Conv", name, &[x, kernel], &conv_attrs(3, groups))
}

/// `LeakyRelu(alpha = 0.1)` named `name`.
pub fn leaky_relu(b: &mut GraphBuilder, name: &str, x: &str) -> Result<String> {
    b.node(
        "LeakyRelu",
        name,
        &[x],
        &[("alpha", Attr::Float(LRELU_SLOPE))],
    )
}

/// Linear layer `key`: `x` `[B, in]` → `x · Wᵀ (+ b)` `[B, out]` as `Gemm(transB = 1)`, with the
/// official `{key}.weight` `[out, in]` and, when `bias`, `{key}.bias`. The node is named `key`.
pub fn linear(b: &mut GraphBuilder, w: &Weights, key: &str, x: &str, bias: bool) -> Result<String> {
    let weight = b.official(w, &format!("{key}.weight"))?;
    let attrs = [("transB", Attr::Int(1))];
    if bias {
        let bias = b.official(w, &format!("{key}.bias"))?;
        b.node("Gemm", key, &[x, &weight, &bias], &attrs)
    } else {
        b.node("Gemm", key, &[x, &weight], &attrs)
    }
}

/// `a + b` named `name`.
pub fn add(b: &mut GraphBuilder, name: &str, x: &str, y: &str) -> Result<String> {
    b.node("Add", name, &[x, y], &[])
}

/// `Reshape(x, shape)` named `name` (`shape` an int64 initializer; 0 copies the input dim).
pub fn reshape(b: &mut GraphBuilder, name: &str, x: &str, shape: &str) -> Result<String> {
    b.node("Reshape", name, &[x, shape], &[])
}
