//! One module per `trainer` subcommand.

pub mod eval;
pub mod forward;
pub mod train;
pub mod train_gan;
