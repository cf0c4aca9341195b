//! The binary's subcommands. Each turns CLI arguments into domain calls and prints results.

pub mod bench;
pub mod eval;
pub mod headless;
pub mod predict;
pub mod prepare;
pub mod train;
