//! tumorscope: train, monitor and inspect brain-tumour MRI classifiers.
//!
//! Domain modules (`data`, `model`, `train`, `metrics`, `run`) never depend on the TUI. The run core
//! (`run`) depends on neither tch nor ratatui: the dashboard, the plain printer and attached clients
//! all render the `RunView` it folds from `run::Record`s. `report` (figures and report.md) is built
//! from the same records, also without tch or ratatui.

pub mod calibration;
pub mod cli;
pub mod cli_experiment;
pub mod commands;
pub mod config;
pub mod cuda_runtime;
pub mod data;
pub mod device;
pub mod experiment;
pub mod explain;
pub mod metrics;
pub mod model;
pub mod report;
pub mod rng;
pub mod run;
pub mod train;
pub mod tui;
pub mod tuning;
