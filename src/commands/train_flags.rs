//! `train`'s flags outside `train`: an experiment checks its members' flags by parsing them as
//! `train` will, and names the flags a grid may vary.

use crate::cli::TrainArgs;
use anyhow::{Result, anyhow};
use clap::{CommandFactory, Parser};

/// `train`'s flags alone, parsed as `train` parses them.
#[derive(Debug, Parser)]
#[command(name = "train")]
struct TrainOnly {
    #[command(flatten)]
    args: TrainArgs,
}

/// Parse member flags as `train` would; clap's error in one line.
pub fn parse_train(flags: &[String]) -> Result<TrainArgs> {
    TrainOnly::try_parse_from(std::iter::once("train".to_string()).chain(flags.iter().cloned())).map(|t| t.args).map_err(|e| {
        let msg = e.to_string();
        let line = msg.lines().next().unwrap_or("").trim_start_matches("error: ").to_string();
        anyhow!("train flags `{}`: {line}", flags.join(" "))
    })
}

/// `train`'s long flags, and those of them that take no value.
pub fn train_flags() -> (Vec<String>, Vec<String>) {
    let cmd = TrainOnly::command();
    let visible: Vec<&clap::Arg> = cmd.get_arguments().filter(|a| !a.is_hide_set()).collect();
    let names = visible.iter().filter_map(|a| a.get_long().map(str::to_string)).collect();
    let switches = visible.iter().filter(|a| !a.get_action().takes_values()).filter_map(|a| a.get_long().map(str::to_string)).collect();
    (names, switches)
}
