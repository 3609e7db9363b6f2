//! [`GraphBuilder`]: a small ONNX graph writer on the prost types of `tract_onnx::pb`.
//!
//! Names are deterministic: an initializer holding an official tensor keeps its `state_dict` key
//! (`G.head.0.weight`), and every node is named by the caller after the module it implements
//! (`G.body.0.body.1.conv1`); the node's single output carries the node's name, so a graph dump
//! reads like the official module tree. A name used twice is an error, never silently suffixed.
//!
//! Builders write float32 only: every weight goes through [`GraphBuilder::weight`] as a float32
//! initializer, and [`GraphBuilder::finish`] returns the float32 graph. Reduced precisions are
//! rewrites of that graph in [`crate::quantize`] (called by [`crate::export`]).

use std::collections::BTreeSet;

use kdsr_core::spec::checkpoint::Weights;
use tract_onnx::pb;

use super::proto::{f32_tensor, f32_value_info, i64_tensor, node, props};
use crate::error::{ConvertError, Result};
use crate::network::tensor;

pub use super::proto::{Attr, Dim};

/// ONNX opset (default domain) every graph is written for.
pub const OPSET: i64 = 17;
/// ONNX IR version that goes with [`OPSET`].
pub const IR_VERSION: i64 = 8;

/// Builds one ONNX graph; [`GraphBuilder::finish`] wraps it in a `ModelProto`.
#[derive(Debug)]
pub struct GraphBuilder {
    name: String,
    nodes: Vec<pb::NodeProto>,
    initializers: Vec<pb::TensorProto>,
    inputs: Vec<pb::ValueInfoProto>,
    outputs: Vec<pb::ValueInfoProto>,
    names: BTreeSet<String>,
}

impl GraphBuilder {
    /// An empty graph called `name`.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            nodes: Vec::new(),
            initializers: Vec::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            names: BTreeSet::new(),
        }
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
        self.inputs.push(f32_value_info(name, Some(dims.to_vec())));
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
        self.outputs
            .push(f32_value_info(value, Some(dims.to_vec())));
        Ok(())
    }

    /// Adds a float32 weight initializer `name` with `shape` and row-major `data` and returns its
    /// name.
    pub fn weight(&mut self, name: &str, shape: &[usize], data: &[f32]) -> Result<String> {
        if shape.iter().product::<usize>() != data.len() {
            return Err(ConvertError::Graph(format!(
                "weight `{name}`: {} values do not fill shape {shape:?}",
                data.len()
            )));
        }
        self.claim(name)?;
        let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
        self.initializers.push(f32_tensor(name, &dims, data));
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
        self.initializers
            .push(i64_tensor(name, &[values.len() as i64], values));
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
        let mut attrs = attrs.to_vec();
        attrs.sort_by(|a, b| a.0.cmp(b.0));
        self.nodes.push(node(op_type, name, inputs, &attrs));
        Ok(name.to_owned())
    }

    /// Wraps the float32 graph in a `ModelProto` (IR [`IR_VERSION`], opset [`OPSET`]) with
    /// `metadata` as `metadata_props`, in the given order.
    pub fn finish(self, metadata: &[(String, String)]) -> Result<pb::ModelProto> {
        if self.outputs.is_empty() {
            return Err(ConvertError::Graph(format!(
                "graph `{}` has no outputs",
                self.name
            )));
        }
        Ok(pb::ModelProto {
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
            metadata_props: props(metadata),
            ..Default::default()
        })
    }
}
