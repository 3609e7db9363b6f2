//! The `converter` subcommands, one module each: their clap arguments and a `run` that returns
//! the text to print.

pub mod export;
pub mod inspect;
