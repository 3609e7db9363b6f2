//! One module per `trainer` subcommand.

pub mod eval;
pub mod forward;
pub mod idr_plot;
pub mod train;
pub mod train_gan;
