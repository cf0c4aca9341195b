//! Command-line interface of `tumorscope experiment` and `tumorscope ensemble`.

use crate::experiment::Executor;
use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct ExperimentArgs {
    #[command(subcommand)]
    pub action: ExperimentAction,
}

#[derive(Debug, Subcommand)]
pub enum ExperimentAction {
    /// Plan and run an experiment: k folds × seeds × a grid of train flags, each member an ordinary
    /// run under EXP/runs/. Experiment flags come first, then any `train` flags for every member.
    Run(ExperimentRunArgs),
    /// Continue an experiment: finished members are kept, stopped or crashed ones resumed, missing
    /// ones started; members still training are followed.
    Resume(ExperimentResumeArgs),
    /// Each member's state and figures, and over the members each metric's mean, SD and 95% interval.
    Show(ExperimentShowArgs),
    /// Internal: run member I in the foreground (a Slurm array task).
    #[command(hide = true)]
    Member(ExperimentMemberArgs),
}

#[derive(Debug, Args)]
pub struct ExperimentRunArgs {
    /// Grouped, stratified cross-validation: one member per fold, each validating on its fold
    /// (copies never straddle two folds) and all tested on the same test split.
    #[arg(long, value_name = "K")]
    pub folds: Option<usize>,
    /// Train every fold (or the one split) once per seed; the split stays the same.
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub seeds: Vec<u64>,
    /// Vary a train flag over values, e.g. --grid lr=1e-3,3e-4 (repeat for more axes; switches take
    /// true,false).
    #[arg(long, value_name = "KEY=V1,V2")]
    pub grid: Vec<String>,
    /// local: detached train processes on this machine; slurm: an sbatch job array.
    #[arg(long, value_enum, default_value_t = Executor::Local)]
    pub executor: Executor,
    /// Members at once (default 1; with --gpus, one per GPU). The cores are shared out among them.
    #[arg(long, value_name = "N")]
    pub parallel: Option<usize>,
    /// One member per GPU at a time, e.g. --gpus 0,1.
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub gpus: Vec<usize>,
    /// Extra sbatch arguments for --executor slurm, e.g. "--partition gpu --gres gpu:1 --time 2:00:00".
    #[arg(long, value_name = "ARGS", allow_hyphen_values = true)]
    pub slurm: Option<String>,
    /// Start the driver in the background and return at once (EXP/driver.log has its output).
    #[arg(long)]
    pub detach: bool,
    /// The experiment's name (folder experiments/<stamp>-<name>); an unfinished experiment of that
    /// name under --experiments-dir is continued instead of planned again.
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long, default_value = "experiments")]
    pub experiments_dir: PathBuf,
    /// `train` flags every member gets (--data, --epochs, --model, --recipe, …).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "TRAIN FLAGS")]
    pub train: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ExperimentResumeArgs {
    /// Experiment folder (experiments/<stamp>-<name>).
    pub experiment: PathBuf,
    /// Return at once and drive in the background (EXP/driver.log).
    #[arg(long)]
    pub detach: bool,
    /// Internal: this process is the background driver.
    #[arg(long, hide = true)]
    pub detached_child: bool,
}

#[derive(Debug, Args)]
pub struct ExperimentShowArgs {
    pub experiment: PathBuf,
    /// One JSON object: the plan, each member's figures and the aggregate.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ExperimentMemberArgs {
    pub experiment: PathBuf,
    pub index: usize,
}

#[derive(Debug, Args)]
pub struct EnsembleArgs {
    /// Experiment folders (their finished members) and run folders.
    #[arg(required = true)]
    pub sources: Vec<PathBuf>,
    /// The new model folder (must not exist, or be empty).
    #[arg(long)]
    pub out: PathBuf,
}
