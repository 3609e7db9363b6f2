//! The one place that reads and writes the ONNX protobuf types of `tract_onnx::pb`: files and
//! bytes ([`encode`], [`decode`], [`read`]), metadata ([`metadata`], [`props`]), tensors
//! ([`tensor`], [`f32_tensor`] to write; [`tensor_bytes`], [`tensor_f32`], [`tensor_i8`],
//! [`numel`] to read), value infos, nodes and attributes. The graph builder, the quantization
//! rewrites and the graph dump all go through these helpers, so a tensor is stored and read
//! back one way.

use std::path::Path;

use prost::Message;
use tract_onnx::pb;
use tract_onnx::pb::attribute_proto::AttributeType;
use tract_onnx::pb::tensor_proto::DataType;

use crate::error::{ConvertError, Result};

/// Serialises a model (protobuf wire format).
pub fn encode(model: &pb::ModelProto) -> Vec<u8> {
    model.encode_to_vec()
}

/// Parses protobuf bytes; `path` names the source in errors.
pub fn decode(bytes: &[u8], path: &Path) -> Result<pb::ModelProto> {
    pb::ModelProto::decode(bytes).map_err(|e| ConvertError::Onnx {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

/// Reads and parses an ONNX file.
pub fn read(path: &Path) -> Result<pb::ModelProto> {
    let bytes = std::fs::read(path).map_err(|source| ConvertError::Io {
        path: path.to_owned(),
        source,
    })?;
    decode(&bytes, path)
}

/// The value of metadata key `key`, if present.
pub fn metadata<'m>(model: &'m pb::ModelProto, key: &str) -> Option<&'m str> {
    model
        .metadata_props
        .iter()
        .find(|p| p.key == key)
        .map(|p| p.value.as_str())
}

/// `metadata_props` entries for `(key, value)` pairs, in the given order.
pub fn props(entries: &[(String, String)]) -> Vec<pb::StringStringEntryProto> {
    entries
        .iter()
        .map(|(k, v)| pb::StringStringEntryProto {
            key: k.clone(),
            value: v.clone(),
        })
        .collect()
}

/// A tensor of type `dt` with shape `dims` holding the little-endian bytes `raw` (`raw_data`).
pub fn tensor(name: &str, dims: &[i64], dt: DataType, raw: Vec<u8>) -> pb::TensorProto {
    pb::TensorProto {
        name: name.to_owned(),
        dims: dims.to_vec(),
        data_type: dt as i32,
        raw_data: raw,
        ..Default::default()
    }
}

/// A float32 tensor.
pub fn f32_tensor(name: &str, dims: &[i64], v: &[f32]) -> pb::TensorProto {
    tensor(
        name,
        dims,
        DataType::Float,
        v.iter().flat_map(|x| x.to_le_bytes()).collect(),
    )
}

/// An int64 tensor.
pub fn i64_tensor(name: &str, dims: &[i64], v: &[i64]) -> pb::TensorProto {
    tensor(
        name,
        dims,
        DataType::Int64,
        v.iter().flat_map(|x| x.to_le_bytes()).collect(),
    )
}

/// The lower-case name of an ONNX data type (`float32`, `float16`, `int8`, …).
pub fn dtype_name(t: i32) -> String {
    match DataType::try_from(t) {
        Ok(DataType::Float) => "float32".to_owned(),
        Ok(DataType::Float16) => "float16".to_owned(),
        Ok(d) => d.as_str_name().to_ascii_lowercase(),
        Err(_) => format!("dtype{t}"),
    }
}

/// The stored bytes of a tensor, little-endian (`raw_data`, or the typed fields re-encoded).
pub fn tensor_bytes(t: &pb::TensorProto) -> Vec<u8> {
    if !t.raw_data.is_empty() {
        return t.raw_data.clone();
    }
    let mut b: Vec<u8> = t.float_data.iter().flat_map(|v| v.to_le_bytes()).collect();
    b.extend(t.int64_data.iter().flat_map(|v| v.to_le_bytes()));
    b.extend(t.int32_data.iter().flat_map(|v| v.to_le_bytes()));
    b.extend(t.double_data.iter().flat_map(|v| v.to_le_bytes()));
    b
}

/// Number of elements of a tensor.
pub fn numel(t: &pb::TensorProto) -> usize {
    t.dims.iter().map(|&d| d.max(0) as usize).product()
}

fn bad_tensor(t: &pb::TensorProto, m: String) -> ConvertError {
    ConvertError::Graph(format!("initializer `{}`: {m}", t.name))
}

/// The values of a float32 or float16 tensor as f32.
pub fn tensor_f32(t: &pb::TensorProto) -> Result<Vec<f32>> {
    let bytes = tensor_bytes(t);
    let v: Vec<f32> = match DataType::try_from(t.data_type) {
        Ok(DataType::Float) => bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Ok(DataType::Float16) if !t.raw_data.is_empty() => bytes
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        // float16 in `int32_data`: one value per element, in the low 16 bits.
        Ok(DataType::Float16) => t
            .int32_data
            .iter()
            .map(|v| half::f16::from_bits(*v as u16).to_f32())
            .collect(),
        _ => {
            return Err(bad_tensor(
                t,
                format!("dtype {} is not a float", dtype_name(t.data_type)),
            ));
        }
    };
    if v.len() != numel(t) {
        return Err(bad_tensor(
            t,
            format!("{} values for shape {:?}", v.len(), t.dims),
        ));
    }
    Ok(v)
}

/// The values of an int8 tensor (`raw_data`, or one value per element in `int32_data`); `None`
/// for a tensor of another type.
pub fn tensor_i8(t: &pb::TensorProto) -> Option<Vec<i8>> {
    if t.data_type != DataType::Int8 as i32 {
        return None;
    }
    Some(if t.raw_data.is_empty() {
        t.int32_data.iter().map(|v| *v as i8).collect()
    } else {
        t.raw_data.iter().map(|b| *b as i8).collect()
    })
}

/// A float32 graph input or output `name`; `dims` `None` leaves the shape to the runtime.
pub fn f32_value_info(name: &str, dims: Option<Vec<Dim>>) -> pb::ValueInfoProto {
    use pb::tensor_shape_proto::{Dimension, dimension::Value};
    let shape = dims.map(|dims| pb::TensorShapeProto {
        dim: dims
            .into_iter()
            .map(|d| Dimension {
                denotation: String::new(),
                value: Some(match d {
                    Dim::Fixed(v) => Value::DimValue(v as i64),
                    Dim::Sym(s) => Value::DimParam(s),
                }),
            })
            .collect(),
    });
    pb::ValueInfoProto {
        name: name.to_owned(),
        r#type: Some(pb::TypeProto {
            denotation: String::new(),
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: DataType::Float as i32,
                shape,
            })),
        }),
        ..Default::default()
    }
}

/// One dimension of a graph input or output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dim {
    /// A fixed size.
    Fixed(usize),
    /// A symbolic size (`dim_param`): a name such as `h`, or an expression such as `4*h`, which
    /// tract parses as an expression of the input symbols.
    Sym(String),
}

impl Dim {
    /// A symbolic dimension.
    pub fn sym(name: impl Into<String>) -> Self {
        Dim::Sym(name.into())
    }
}

/// An ONNX node attribute value, the kinds the KDSR graphs use.
#[derive(Clone, Debug, PartialEq)]
pub enum Attr {
    /// `INT`.
    Int(i64),
    /// `INTS`.
    Ints(Vec<i64>),
    /// `FLOAT`.
    Float(f32),
    /// `STRING`.
    Str(String),
}

/// The attribute `name` = `a`.
pub fn attribute(name: &str, a: &Attr) -> pb::AttributeProto {
    let mut p = pb::AttributeProto {
        name: name.to_owned(),
        ..Default::default()
    };
    match a {
        Attr::Int(v) => {
            p.r#type = AttributeType::Int as i32;
            p.i = *v;
        }
        Attr::Ints(v) => {
            p.r#type = AttributeType::Ints as i32;
            p.ints = v.clone();
        }
        Attr::Float(v) => {
            p.r#type = AttributeType::Float as i32;
            p.f = *v;
        }
        Attr::Str(s) => {
            p.r#type = AttributeType::String as i32;
            p.s = s.as_bytes().to_vec();
        }
    }
    p
}

/// The value of the `INT` attribute `name` of `n`, if it has one.
pub fn attr_int(n: &pb::NodeProto, name: &str) -> Option<i64> {
    n.attribute
        .iter()
        .find(|a| a.name == name && a.r#type == AttributeType::Int as i32)
        .map(|a| a.i)
}

/// A node `op` named `name` with one output, also named `name`; `attrs` in the given order.
pub fn node(op: &str, name: &str, inputs: &[&str], attrs: &[(&str, Attr)]) -> pb::NodeProto {
    pb::NodeProto {
        input: inputs.iter().map(|s| (*s).to_owned()).collect(),
        output: vec![name.to_owned()],
        name: name.to_owned(),
        op_type: op.to_owned(),
        attribute: attrs.iter().map(|(n, a)| attribute(n, a)).collect(),
        ..Default::default()
    }
}
