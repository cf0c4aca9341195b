//! The binary's subcommands. Each turns CLI arguments into domain calls and prints results.

pub mod attach;
pub mod audit;
pub mod batched;
pub mod bench;
pub mod browse;
pub mod cache;
pub mod ctl;
pub mod detach;
pub mod ensemble;
pub mod eval;
pub mod executor;
pub mod experiment;
pub mod headless;
pub mod predict;
pub mod prepare;
pub mod report;
pub mod resuming;
pub mod runs;
pub mod signals;
pub mod slurm;
pub mod train;
pub mod train_flags;
