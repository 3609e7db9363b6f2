//! [`GraphBuilder`]: a small ONNX graph writer on the prost types of `tract_onnx::pb`.
//!
//! Names are deterministic: an initializer holding an official tensor keeps its `state_dict` key
//! (`G.head.0.weight`), and every node is named by the caller after the module it implements
//! (`G.body.0.body.1.conv1`); the node's single output carries the node's name, so a graph dump
//! reads like the official module tree. A name used twice is an error, never silently suffixed.
//!
//! Every weight goes through [`GraphBuilder::weight`] as a float32 initializer; a reduced
//! [`Precision`] is applied to the finished graph by [`crate::quantize`] (in
//! [`GraphBuilder::finish`] for f16 and int8-weights; int8 needs calibration, see
//! [`crate::export::build`]).

use std::collections::BTreeSet;

use kdsr_core::spec::checkpoint::{Tensor, Weights};
use tract_onnx::pb;
use tract_onnx::pb::attribute_proto::AttributeType;
use tract_onnx::pb::tensor_proto::DataType;

use crate::error::{ConvertError, Result};
use crate::graph::Precision;

/// ONNX opset (default domain) every graph is written for.
pub const OPSET: i64 = 17;
/// ONNX IR version that goes with [`OPSET`].
pub const IR_VERSION: i64 = 8;

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

/// Builds one ONNX graph; [`GraphBuilder::finish`] wraps it in a `ModelProto`.
#[derive(Debug)]
pub struct GraphBuilder {
    name: String,
    precision: Precision,
    nodes: Vec<pb::NodeProto>,
    initializers: Vec<pb::TensorProto>,
    inputs: Vec<pb::ValueInfoProto>,
    outputs: Vec<pb::ValueInfoProto>,
    names: BTreeSet<String>,
}

impl GraphBuilder {
    /// An empty graph called `name`, storing weights at `precision`.
    pub fn new(name: &str, precision: Precision) -> Self {
        Self {
            name: name.to_owned(),
            precision,
            nodes: Vec::new(),
            initializers: Vec::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            names: BTreeSet::new(),
        }
    }

    /// The precision weights are stored at.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    fn claim(&mut self, name: &str) -> Result<()> {
        if name.is_empty() || !self.names.insert(name.to_owned()) {
            return Err(ConvertError::Graph(format!(
                "graph `{}`: value name `{name}` is empty or used twice",
                self.name
            )));
        }
        Ok(())
    }

    /// Declares a float32 graph input and returns its name.
    pub fn input(&mut self, name: &str, dims: &[Dim]) -> Result<String> {
        self.claim(name)?;
        self.inputs.push(value_info(name, dims));
        Ok(name.to_owned())
    }

    /// Declares `value` (an existing node output) as a float32 graph output of shape `dims`.
    pub fn output(&mut self, value: &str, dims: &[Dim]) -> Result<()> {
        if !self.names.contains(value) {
            return Err(ConvertError::Graph(format!(
                "graph `{}`: output `{value}` is not produced by any node",
                self.name
            )));
        }
        self.outputs.push(value_info(value, dims));
        Ok(())
    }

    /// Adds a float32 weight initializer `name` with `shape` and row-major `data` and returns its
    /// name (a reduced precision rewrites it in [`GraphBuilder::finish`]).
    pub fn weight(&mut self, name: &str, shape: &[usize], data: &[f32]) -> Result<String> {
        if shape.iter().product::<usize>() != data.len() {
            return Err(ConvertError::Graph(format!(
                "weight `{name}`: {} values do not fill shape {shape:?}",
                data.len()
            )));
        }
        self.claim(name)?;
        self.initializers.push(pb::TensorProto {
            name: name.to_owned(),
            dims: shape.iter().map(|&d| d as i64).collect(),
            data_type: DataType::Float as i32,
            raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..Default::default()
        });
        Ok(name.to_owned())
    }

    /// Adds the official tensor `key` of `weights` as an initializer named `key`.
    pub fn official(&mut self, weights: &Weights, key: &str) -> Result<String> {
        let t = tensor(weights, key)?;
        self.weight(key, &t.shape, &t.data)
    }

    /// Adds an int64 constant initializer (shapes for `Reshape`) and returns its name.
    pub fn const_i64(&mut self, name: &str, values: &[i64]) -> Result<String> {
        self.claim(name)?;
        self.initializers.push(pb::TensorProto {
            name: name.to_owned(),
            dims: vec![values.len() as i64],
            data_type: DataType::Int64 as i32,
            raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..Default::default()
        });
        Ok(name.to_owned())
    }

    /// Appends a node `op_type` named `name` with one output, also named `name`, and returns it.
    /// `attrs` are written sorted by name.
    pub fn node(
        &mut self,
        op_type: &str,
        name: &str,
        inputs: &[&str],
        attrs: &[(&str, Attr)],
    ) -> Result<String> {
        for i in inputs {
            if !self.names.contains(*i) {
                return Err(ConvertError::Graph(format!(
                    "graph `{}`: node `{name}` reads `{i}`, which nothing produced yet",
                    self.name
                )));
            }
        }
        self.claim(name)?;
        let mut attrs: Vec<_> = attrs.iter().collect();
        attrs.sort_by(|a, b| a.0.cmp(b.0));
        self.nodes.push(pb::NodeProto {
            input: inputs.iter().map(|s| (*s).to_owned()).collect(),
            output: vec![name.to_owned()],
            name: name.to_owned(),
            op_type: op_type.to_owned(),
            attribute: attrs.into_iter().map(|(n, a)| attribute(n, a)).collect(),
            ..Default::default()
        });
        Ok(name.to_owned())
    }

    /// Wraps the graph in a `ModelProto` (IR [`IR_VERSION`], opset [`OPSET`]) with
    /// `metadata` as `metadata_props`, in the given order, and stores its weights at the
    /// builder's precision ([`crate::quantize::rewrite::store_weights`] with no exclusions).
    /// [`Precision::Int8`] is refused: static int8 needs calibration images
    /// ([`crate::export::build`] with [`crate::quantize::QuantizeOptions::calib`]).
    pub fn finish(self, metadata: &[(String, String)]) -> Result<pb::ModelProto> {
        if self.outputs.is_empty() {
            return Err(ConvertError::Graph(format!(
                "graph `{}` has no outputs",
                self.name
            )));
        }
        let precision = self.precision;
        if precision == Precision::Int8 {
            return Err(ConvertError::Options(
                "int8 graphs need calibration images: build the float32 graph and quantize it \
                 with export::build (converter export --quantize int8 --calib-data DIR)"
                    .to_owned(),
            ));
        }
        let model = pb::ModelProto {
            ir_version: IR_VERSION,
            opset_import: vec![pb::OperatorSetIdProto {
                domain: String::new(),
                version: OPSET,
            }],
            producer_name: "kdsr-converter".to_owned(),
            producer_version: env!("CARGO_PKG_VERSION").to_owned(),
            graph: Some(pb::GraphProto {
                node: self.nodes,
                name: self.name,
                initializer: self.initializers,
                input: self.inputs,
                output: self.outputs,
                ..Default::default()
            }),
            metadata_props: metadata
                .iter()
                .map(|(k, v)| pb::StringStringEntryProto {
                    key: k.clone(),
                    value: v.clone(),
                })
                .collect(),
            ..Default::default()
        };
        crate::quantize::rewrite::store_weights(&model, precision, &[], Default::default())
    }
}

/// The official tensor `key`, or an error naming it.
pub fn tensor<'w>(weights: &'w Weights, key: &str) -> Result<&'w Tensor> {
    weights
        .get(key)
        .ok_or_else(|| ConvertError::MissingWeight(key.to_owned()))
}

fn value_info(name: &str, dims: &[Dim]) -> pb::ValueInfoProto {
    use pb::tensor_shape_proto::{Dimension, dimension::Value};
    let dim = dims
        .iter()
        .map(|d| Dimension {
            denotation: String::new(),
            value: Some(match d {
                Dim::Fixed(v) => Value::DimValue(*v as i64),
                Dim::Sym(s) => Value::DimParam(s.clone()),
            }),
        })
        .collect();
    pb::ValueInfoProto {
        name: name.to_owned(),
        r#type: Some(pb::TypeProto {
            denotation: String::new(),
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: DataType::Float as i32,
                shape: Some(pb::TensorShapeProto { dim }),
            })),
        }),
        ..Default::default()
    }
}

fn attribute(name: &str, a: &Attr) -> pb::AttributeProto {
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
