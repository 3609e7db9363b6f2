//! One module per `trainer` subcommand.

pub mod forward;
