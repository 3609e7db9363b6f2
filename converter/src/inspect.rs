//! The canonical text dump of an ONNX graph, the form of the golden files
//! (`converter/tests/golden/*.txt`) and of `converter inspect`: header and metadata, inputs and
//! outputs with their shapes, every initializer with dtype, shape and a short content hash (int64
//! shape constants and scalar quantization scales / zero points also show their values), then the nodes in order with their inputs, their
//! attributes sorted by name and the output shape tract infers with the symbolic input dims
//! (`[1,16,h,w]`). Any change in structure, attributes, shapes or weights changes the dump.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use sha2::{Digest, Sha256};
use tract_onnx::pb;
use tract_onnx::pb::attribute_proto::AttributeType;
use tract_onnx::pb::tensor_proto::DataType;

use crate::error::{ConvertError, Result};
use crate::onnx::proto::{decode, dtype_name, numel, tensor_bytes};

fn dims_of(v: &pb::ValueInfoProto) -> (String, String) {
    use pb::tensor_shape_proto::dimension::Value;
    match v.r#type.as_ref().and_then(|t| t.value.as_ref()) {
        Some(pb::type_proto::Value::TensorType(t)) => {
            let dims = t.shape.as_ref().map_or_else(
                || "?".to_owned(),
                |s| {
                    let d: Vec<String> = s
                        .dim
                        .iter()
                        .map(|d| match &d.value {
                            Some(Value::DimValue(v)) => v.to_string(),
                            Some(Value::DimParam(p)) => p.clone(),
                            None => "?".to_owned(),
                        })
                        .collect();
                    format!("[{}]", d.join(","))
                },
            );
            (dtype_name(t.elem_type), dims)
        }
        None => ("?".to_owned(), "?".to_owned()),
    }
}

/// The value of a rank-0 float32, uint8 or int8 tensor (a quantization scale or zero point), as
/// text; `None` for other tensors.
fn scalar(t: &pb::TensorProto) -> Option<String> {
    let b = tensor_bytes(t);
    match DataType::try_from(t.data_type).ok()? {
        DataType::Float => Some(format!(
            "{:?}",
            f32::from_le_bytes(b.get(..4)?.try_into().ok()?)
        )),
        DataType::Uint8 => Some(b.first()?.to_string()),
        DataType::Int8 => Some((*b.first()? as i8).to_string()),
        _ => None,
    }
}

/// First 8 hex digits of SHA-256 over a tensor's dtype, shape and bytes.
pub fn short_hash(t: &pb::TensorProto) -> String {
    let mut h = Sha256::new();
    h.update(t.data_type.to_le_bytes());
    for d in &t.dims {
        h.update(d.to_le_bytes());
    }
    h.update(tensor_bytes(t));
    h.finalize()
        .iter()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn fmt_attr(a: &pb::AttributeProto) -> String {
    let v = match AttributeType::try_from(a.r#type) {
        Ok(AttributeType::Int) => a.i.to_string(),
        Ok(AttributeType::Float) => format!("{:?}", a.f),
        Ok(AttributeType::String) => format!("{:?}", String::from_utf8_lossy(&a.s)),
        Ok(AttributeType::Ints) => format!(
            "[{}]",
            a.ints
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(",")
        ),
        Ok(AttributeType::Floats) => format!("{:?}", a.floats),
        Ok(t) => format!("<{}>", t.as_str_name()),
        Err(_) => "<?>".to_owned(),
    };
    format!("{}={v}", a.name)
}

/// Parameters of a graph: the elements of its weight initializers — float32, float16, and the
/// int8 / int32 values of quantized weights and biases — not counting int64 shape constants or
/// the scales and zero points of `QuantizeLinear` / `DequantizeLinear`. A graph and its
/// quantized forms have the same count.
pub fn param_count(model: &pb::ModelProto) -> usize {
    model.graph.as_ref().map_or(0, |g| {
        let qparams: std::collections::HashSet<&str> = g
            .node
            .iter()
            .filter(|n| matches!(n.op_type.as_str(), "QuantizeLinear" | "DequantizeLinear"))
            .flat_map(|n| n.input.iter().skip(1).map(String::as_str))
            .collect();
        g.initializer
            .iter()
            .filter(|t| {
                matches!(
                    DataType::try_from(t.data_type),
                    Ok(DataType::Float | DataType::Float16 | DataType::Int8 | DataType::Int32)
                ) && !qparams.contains(t.name.as_str())
            })
            .map(numel)
            .sum()
    })
}

/// Output shape of every node (by node name) as tract infers it from the graph's declared input
/// shapes, symbolic dims kept (`[1,16,h,w]`, `[1,3,4*h,4*w]`).
pub fn node_shapes(bytes: &[u8]) -> Result<HashMap<String, String>> {
    use tract_onnx::prelude::*;
    use tract_onnx::tract_hir::infer::{Factoid, InferenceModelExt};
    let mut model = tract_onnx::onnx()
        .model_for_read(&mut &bytes[..])
        .map_err(|e| ConvertError::tract("loading the ONNX graph", e))?;
    model
        .analyse(false)
        .map_err(|e| ConvertError::tract("inferring shapes", e))?;
    Ok(model
        .nodes()
        .iter()
        .filter_map(|n| {
            let f = &n.outputs.first()?.fact;
            let dims: Vec<String> = f
                .shape
                .dims()
                .map(|d| {
                    d.concretize()
                        .map_or_else(|| "?".to_owned(), |d| d.to_string())
                })
                .collect();
            Some((n.name.clone(), format!("[{}]", dims.join(","))))
        })
        .collect())
}

/// The canonical dump of `model` (deterministic; no producer version, no file path), with the
/// node output shapes of [`node_shapes`] when given.
pub fn dump(model: &pb::ModelProto, shapes: Option<&HashMap<String, String>>) -> String {
    let mut s = String::new();
    let empty = pb::GraphProto::default();
    let g = model.graph.as_ref().unwrap_or(&empty);
    let opsets: Vec<String> = model
        .opset_import
        .iter()
        .map(|o| {
            let d = if o.domain.is_empty() {
                "ai.onnx"
            } else {
                &o.domain
            };
            format!("{d} {}", o.version)
        })
        .collect();
    let _ = writeln!(
        s,
        "graph {} (ir {}, opset {}, producer {})",
        g.name,
        model.ir_version,
        opsets.join(", "),
        model.producer_name
    );
    let _ = writeln!(s, "metadata:");
    for p in &model.metadata_props {
        let _ = writeln!(s, "  {} = {}", p.key, p.value);
    }
    for (title, list) in [("inputs", &g.input), ("outputs", &g.output)] {
        let _ = writeln!(s, "{title}:");
        for v in list {
            let (dt, dims) = dims_of(v);
            let _ = writeln!(s, "  {}: {dt} {dims}", v.name);
        }
    }
    let _ = writeln!(
        s,
        "initializers: {} tensors, {} parameters",
        g.initializer.len(),
        param_count(model)
    );
    for t in &g.initializer {
        let dims: Vec<String> = t.dims.iter().map(i64::to_string).collect();
        let mut line = format!(
            "  {}: {} [{}] #{}",
            t.name,
            dtype_name(t.data_type),
            dims.join(","),
            short_hash(t)
        );
        if numel(t) == 1 && t.dims.is_empty() {
            if let Some(v) = scalar(t) {
                let _ = write!(line, " = {v}");
            }
        }
        if t.data_type == DataType::Int64 as i32 && numel(t) <= 8 {
            let v: Vec<String> = tensor_bytes(t)
                .chunks_exact(8)
                .map(|c| {
                    i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]).to_string()
                })
                .collect();
            let _ = write!(line, " = [{}]", v.join(","));
        }
        let _ = writeln!(s, "{line}");
    }
    let _ = writeln!(s, "nodes: {}", g.node.len());
    for (i, n) in g.node.iter().enumerate() {
        let mut attrs: Vec<&pb::AttributeProto> = n.attribute.iter().collect();
        attrs.sort_by(|a, b| a.name.cmp(&b.name));
        let attrs: Vec<String> = attrs.into_iter().map(fmt_attr).collect();
        let outs = if n.output.len() == 1 && n.output[0] == n.name {
            String::new()
        } else {
            format!(" -> {}", n.output.join(", "))
        };
        let op = if n.domain.is_empty() {
            n.op_type.clone()
        } else {
            format!("{}:{}", n.domain, n.op_type)
        };
        let shape = shapes
            .and_then(|m| m.get(&n.name))
            .map_or_else(String::new, |s| format!(" : {s}"));
        let _ = writeln!(
            s,
            "  {i:>3} {op} {}({}){outs}{shape}{}{}",
            n.name,
            n.input.join(", "),
            if attrs.is_empty() { "" } else { " " },
            attrs.join(" ")
        );
    }
    s
}

/// [`dump`] of encoded ONNX bytes with node shapes; if tract cannot infer them, the dump ends
/// with a line saying why.
pub fn dump_bytes(bytes: &[u8], path: &Path) -> Result<String> {
    let model = decode(bytes, path)?;
    Ok(match node_shapes(bytes) {
        Ok(sh) => dump(&model, Some(&sh)),
        Err(e) => format!("{}shapes unavailable: {e}\n", dump(&model, None)),
    })
}

/// [`dump_bytes`] of an ONNX file.
pub fn dump_file(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|source| ConvertError::Io {
        path: path.to_owned(),
        source,
    })?;
    dump_bytes(&bytes, path)
}
