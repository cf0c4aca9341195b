//! The dashboard (work in progress in this commit: only themes exist yet).

pub mod theme;

use crate::train::{TrainCommand, TrainEvent};
use std::sync::Arc;

pub async fn run_training(
    _events: tokio::sync::mpsc::UnboundedReceiver<TrainEvent>,
    _commands: std::sync::mpsc::Sender<TrainCommand>,
    _data: Arc<crate::data::ImageSet>,
    _theme: theme::Theme,
) -> anyhow::Result<()> {
    anyhow::bail!("the dashboard is not built yet: use --no-tui")
}

pub async fn watch(_a: crate::cli::WatchArgs) -> anyhow::Result<()> {
    anyhow::bail!("watch is not built yet")
}
