//! `converter inspect MODEL.onnx`: the canonical dump of a graph ([`crate::inspect::dump`]).

use std::path::PathBuf;

use crate::error::Result;

/// Arguments of `converter inspect`.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The ONNX file.
    pub model: PathBuf,
}

/// Returns the dump.
pub fn run(a: &InspectArgs) -> Result<String> {
    crate::inspect::dump_file(&a.model)
}
