//! tumorscope: train, monitor and inspect brain-tumour MRI classifiers.
//!
//! Domain modules (`data`, `model`, `train`, `metrics`, `runlog`) never depend on the TUI; the TUI
//! renders state built only from `train::TrainEvent`s.

pub mod cli;
pub mod commands;
pub mod config;
pub mod data;
pub mod device;
pub mod metrics;
pub mod model;
pub mod rng;
pub mod runlog;
pub mod train;
pub mod tui;
