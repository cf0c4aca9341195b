//! Command-line interface.

use crate::config::{Amp, ModelKind, Recipe, Schedule, TrainConfig};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(name = "tumorscope", version, about = "Train, monitor and inspect brain-tumour MRI classifiers in the terminal")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Parsed once per process; the size of `TrainArgs` does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train a classifier (TUI dashboard on a terminal; plain progress lines otherwise or with --no-tui).
    Train(TrainArgs),
    /// Evaluate a run's best checkpoint: classification report and confusion matrix.
    Eval(EvalArgs),
    /// Classify image files or folders with a trained run.
    Predict(PredictArgs),
    /// Follow a run in the dashboard, read-only (live or finished).
    Watch(WatchArgs),
    /// Open the dashboard of a running run, with every control key (default: the newest running run).
    Attach(AttachArgs),
    /// Send one command to a running run and print the trainer's answer.
    Ctl(CtlArgs),
    /// List the runs under the runs folder: state, epochs, best and test accuracy.
    Runs(RunsArgs),
    /// Audit a dataset folder: counts, sizes, modes, unreadable files, exact and near duplicates
    /// (within a class, across classes, and Training ↔ Testing leakage).
    Audit(AuditArgs),
    /// Write a run's figures (PNG and SVG, article palettes) and report.md into RUN/report/ (done
    /// automatically when training ends).
    Report(ReportArgs),
    /// Show or free the dataset cache (preprocessed pixels of every data set trained on).
    Cache(CacheArgs),
    /// Measure training and inference throughput of a network on synthetic batches.
    Bench(BenchArgs),
    /// Cross-validation, seeds and sweeps: many runs in one experiment folder, on this machine or a
    /// Slurm cluster, with each metric's mean and 95% interval over the members.
    Experiment(crate::cli_experiment::ExperimentArgs),
    /// Average several runs (an experiment's members, or runs) into one model folder that eval,
    /// predict and the gallery accept like a run.
    Ensemble(crate::cli_experiment::EnsembleArgs),
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Dataset root: `Training/` (+ `Testing/`) or class folders. Default: $TUMORSCOPE_DATA, then
    /// ./data/brain-tumor-mri, else the built-in SYNTHETIC phantom set.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Train on the built-in synthetic phantoms even if real data is found.
    #[arg(long)]
    pub synthetic: bool,
    /// TOML config file (see tumorscope.example.toml); flags override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The recipe the other settings start from: fast (default: 12 epochs with the stem and first two
    /// stages frozen, warm-up + cosine decay, mirror TTA) or article (12 epochs, nothing frozen,
    /// constant lr cut by ReduceLROnPlateau, early stopping).
    #[arg(long, value_enum)]
    pub recipe: Option<Recipe>,
    #[arg(long, value_enum)]
    pub model: Option<ModelKind>,
    #[arg(long)]
    pub epochs: Option<usize>,
    /// plateau (constant, cut when validation accuracy stalls) or cosine (warm-up, then cosine decay).
    #[arg(long, value_enum)]
    pub schedule: Option<Schedule>,
    /// Epochs of linear learning-rate warm-up (cosine schedule).
    #[arg(long, value_name = "EPOCHS")]
    pub warmup_epochs: Option<f64>,
    /// Cross-entropy label smoothing for training (0 = none).
    #[arg(long)]
    pub label_smoothing: Option<f64>,
    /// Stochastic depth: drop each residual block's branch per image with a probability rising to P at
    /// the last block (Keras EfficientNet's drop_connect_rate; 0 = off).
    #[arg(long, value_name = "P")]
    pub drop_path: Option<f64>,
    /// Freeze the stem and the first N of Lite0's 7 stages (0 = none): faster steps, less memory.
    #[arg(long, value_name = "N")]
    pub freeze_stages: Option<usize>,
    /// Validate and checkpoint a moving average of the weights with this decay per step (0 = off).
    #[arg(long, value_name = "DECAY")]
    pub ema_decay: Option<f64>,
    /// Mixed precision on CUDA: off (default), bf16 (Ampere and newer) or fp16 (with loss scaling).
    /// A CPU run trains in f32 and says so.
    #[arg(long, value_enum)]
    pub amp: Option<Amp>,
    #[arg(long)]
    pub batch_size: Option<usize>,
    #[arg(long)]
    pub lr: Option<f64>,
    #[arg(long)]
    pub image_size: Option<u32>,
    #[arg(long)]
    pub seed: Option<u64>,
    #[arg(long)]
    pub val_fraction: Option<f64>,
    #[arg(long)]
    pub test_fraction: Option<f64>,
    /// Cross-validation: split the training pool into K grouped, stratified folds (copies never
    /// straddle two) and validate on one of them (--fold) instead of a --val-fraction carve.
    #[arg(long, value_name = "K")]
    pub folds: Option<usize>,
    /// The fold validated on with --folds (0 to K-1).
    #[arg(long, value_name = "I", requires = "folds")]
    pub fold: Option<usize>,
    /// Seed of the split (test carve and folds) when it is not --seed: runs with different seeds share
    /// one split.
    #[arg(long, value_name = "SEED")]
    pub split_seed: Option<u64>,
    /// Turn training augmentation off.
    #[arg(long)]
    pub no_augment: bool,
    /// Start EfficientNet-Lite0 from random weights instead of ImageNet.
    #[arg(long)]
    pub no_pretrained: bool,
    #[arg(long)]
    pub no_early_stopping: bool,
    #[arg(long)]
    pub early_stopping_patience: Option<usize>,
    /// Use at most N images per class and split folder (quick runs).
    #[arg(long)]
    pub limit_per_class: Option<usize>,
    /// Group near copies (perceptual hash within N of 256 bits) like byte copies when splitting, and
    /// drop test images that are near copies of training images (default 16; 0: byte copies only).
    #[arg(long, value_name = "N")]
    pub near_duplicate_threshold: Option<u32>,
    /// Test-time augmentation for the final test report, the gallery and `o`: flip, shift=N or
    /// flip,shift=N (default: off).
    #[arg(long, value_name = "VIEWS")]
    pub tta: Option<String>,
    /// DICOM/NIfTI intensity window: auto (the file's, else the 0.5–99.5th percentile), CENTER,WIDTH
    /// or pLOW-HIGH. Recorded in the run and applied again at inference.
    #[arg(long, value_name = "WINDOW", allow_hyphen_values = true)]
    pub window: Option<crate::config::imaging::Window>,
    /// NIfTI: cut volumes along this axis (from the file's orientation; default axial).
    #[arg(long, value_enum)]
    pub slice_axis: Option<crate::config::imaging::SliceAxis>,
    /// NIfTI volumes and multi-frame DICOM: middle (default), all, or N central slices per file.
    #[arg(long, value_name = "WHICH")]
    pub slices: Option<crate::config::imaging::Slices>,
    /// libtorch compute threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// auto, cpu, cuda or cuda:N (default auto).
    #[arg(long)]
    pub device: Option<String>,
    /// Where run folders are created (default ./runs).
    #[arg(long)]
    pub runs_dir: Option<PathBuf>,
    /// Plain progress lines instead of the dashboard.
    #[arg(long)]
    pub no_tui: bool,
    /// Dashboard theme: a name from themes/ (article, light, high-contrast) or a TOML file path.
    #[arg(long)]
    pub theme: Option<String>,
    /// Start the run as a background process (own session, no terminal) and return at once.
    #[arg(long)]
    pub detach: bool,
    /// Continue a stopped or crashed run exactly where it stopped, in the same folder.
    #[arg(long, value_name = "RUN")]
    pub resume: Option<PathBuf>,
    /// Do not write TensorBoard event files (RUN/tensorboard/).
    #[arg(long)]
    pub no_tensorboard: bool,
    /// Make the run folder readable by your group (folders 0750, files 0640); by default it is
    /// private (0700, 0600): it holds patients' pixels. Config file: `share_with_group = true`.
    #[arg(long)]
    pub share_with_group: bool,
    /// Stop and save when the terminal hangs up (default: keep training; attach later).
    #[arg(long)]
    pub stop_on_hangup: bool,
    /// Internal: the run folder a detaching parent created.
    #[arg(long, hide = true)]
    pub run_dir: Option<PathBuf>,
    /// Internal: this process is the detached child.
    #[arg(long, hide = true)]
    pub detached_child: bool,
}

/// Where and how a training runs: flags over the config file over the defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct RunPlace {
    pub device: String,
    pub runs_dir: PathBuf,
    pub theme: String,
    pub data: Option<PathBuf>,
    /// Run folders readable by the group (see `run::privacy`).
    pub share_with_group: bool,
}

impl TrainArgs {
    /// The recipe and the run settings, each from the flag, else the config file, else the default.
    pub fn resolve_all(&self) -> Result<(TrainConfig, RunPlace), crate::config::ConfigError> {
        let (base, file) = self.read_config()?;
        let place = RunPlace {
            device: self.device.clone().or(file.device).unwrap_or_else(|| "auto".into()),
            runs_dir: self.runs_dir.clone().or(file.runs_dir).unwrap_or_else(|| "runs".into()),
            theme: self.theme.clone().or(file.theme).unwrap_or_else(|| "article".into()),
            data: self.data.clone().or(file.data),
            share_with_group: self.share_with_group || file.share_with_group.unwrap_or(false),
        };
        Ok((self.with_flags(base)?, place))
    }

    /// The config file (recipe and run settings), or the defaults without one.
    fn read_config(&self) -> Result<(TrainConfig, crate::config::FileSettings), crate::config::ConfigError> {
        match &self.config {
            Some(p) => TrainConfig::from_toml_file_with_settings(p, self.recipe),
            None => Ok((self.recipe.unwrap_or_default().config(), Default::default())),
        }
    }

    /// Settings given as flags that a resumed run cannot change (it keeps its own).
    pub fn fixed_on_resume(&self) -> Vec<&'static str> {
        let mut v = vec![];
        macro_rules! given {
            ($($f:ident => $name:expr),*) => { $( if self.$f.is_some() { v.push($name); } )* };
        }
        given!(batch_size => "--batch-size", lr => "--lr", image_size => "--image-size", seed => "--seed",
            val_fraction => "--val-fraction", test_fraction => "--test-fraction",
            folds => "--folds", fold => "--fold", split_seed => "--split-seed",
            early_stopping_patience => "--early-stopping-patience", limit_per_class => "--limit-per-class", config => "--config",
            near_duplicate_threshold => "--near-duplicate-threshold", tta => "--tta", recipe => "--recipe",
            schedule => "--schedule", warmup_epochs => "--warmup-epochs", label_smoothing => "--label-smoothing",
            drop_path => "--drop-path", freeze_stages => "--freeze-stages", ema_decay => "--ema-decay", amp => "--amp",
            window => "--window", slice_axis => "--slice-axis", slices => "--slices");
        for (on, name) in [
            (self.no_augment, "--no-augment"),
            (self.no_pretrained, "--no-pretrained"),
            (self.no_early_stopping, "--no-early-stopping"),
            (self.synthetic, "--synthetic"),
        ] {
            if on {
                v.push(name);
            }
        }
        v
    }

    /// Defaults → config file → flags.
    pub fn resolve(&self) -> Result<TrainConfig, crate::config::ConfigError> {
        self.with_flags(self.read_config()?.0)
    }

    /// The flags applied over `c`, validated.
    fn with_flags(&self, mut c: TrainConfig) -> Result<TrainConfig, crate::config::ConfigError> {
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = self.$f { c.$f = v; } )* };
        }
        set!(
            model,
            epochs,
            batch_size,
            lr,
            image_size,
            seed,
            val_fraction,
            test_fraction,
            early_stopping_patience,
            limit_per_class,
            threads,
            near_duplicate_threshold,
            schedule,
            warmup_epochs,
            label_smoothing,
            drop_path,
            freeze_stages,
            ema_decay,
            amp,
            window,
            slice_axis,
            slices
        );
        if let Some(t) = &self.tta {
            c.tta = t.clone();
        }
        if let Some(k) = self.folds {
            c.folds = k;
            c.fold = self.fold.unwrap_or(0);
        }
        if self.split_seed.is_some() {
            c.split_seed = self.split_seed;
        }
        if self.no_augment {
            c.augment = false;
        }
        if self.no_pretrained {
            c.pretrained = false;
        }
        if self.no_early_stopping {
            c.early_stopping = false;
        }
        c.validate()?;
        Ok(c)
    }
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Run folder (runs/<stamp>-<model>).
    pub run: PathBuf,
    /// Dataset root (default: the one the run trained on).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Which split to evaluate: test, val or train (as recorded when the run trained), or all (every
    /// image of the folder; the default for a folder other than the run's).
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Machine-readable JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Test-time augmentation: average the probabilities over views of each image: `flip` (the
    /// mirror; the default when no value is given), `shift=N` (N pixels left, right, up, down), or both.
    #[arg(long, value_name = "VIEWS", num_args = 0..=1, default_missing_value = "flip")]
    pub tta: Option<String>,
    /// Also score the split without the images that are exact or near copies of a training image (the
    /// honest figure beside the official one).
    #[arg(long)]
    pub exclude_near_duplicates: bool,
    /// Hamming threshold (of 256 bits) for --exclude-near-duplicates (default: the run's, else 16).
    #[arg(long, value_name = "N")]
    pub near_duplicate_threshold: Option<u32>,
    /// Fit the temperature on the run's recorded validation split and store it (RUN/calibration.json).
    #[arg(long, conflicts_with_all = ["uncalibrated", "bf16"])]
    pub fit_temperature: bool,
    /// Report calibration of the raw probabilities only (ignore RUN/calibration.json).
    #[arg(long)]
    pub uncalibrated: bool,
    /// Run the network's convolutions in bfloat16: about 1.7× faster inference on CPUs with AVX512-BF16
    /// or AMX, at some accuracy (a few tenths of a point either way on the shared set; see README).
    /// efficientnet-lite0 runs only.
    #[arg(long)]
    pub bf16: bool,
    #[arg(long, default_value = "auto")]
    pub device: String,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Run folder (runs/<stamp>-<model>).
    pub run: PathBuf,
}

#[derive(Debug, Args)]
pub struct PredictArgs {
    /// Run folder with a checkpoint.
    #[arg(long)]
    pub run: PathBuf,
    /// Image files or folders.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Do not draw the images in the terminal.
    #[arg(long)]
    pub no_image: bool,
    /// One JSON object per image.
    #[arg(long)]
    pub json: bool,
    /// Show the network's raw probabilities, not the temperature-calibrated ones.
    #[arg(long)]
    pub uncalibrated: bool,
    /// Open the dashboard's gallery over the images, with these predictions (class subfolders named
    /// like the run's classes give the true labels: the misclassified filter and confusion view work).
    #[arg(long)]
    pub browse: bool,
    /// Test-time augmentation, as for eval: `flip` (default), `shift=N`, or `flip,shift=N`.
    #[arg(long, value_name = "VIEWS", num_args = 0..=1, default_missing_value = "flip")]
    pub tta: Option<String>,
    /// DICOM/NIfTI: which slices of each file to predict: all (default), middle, or N central.
    #[arg(long, value_name = "WHICH", default_value = "all")]
    pub slices: crate::config::imaging::Slices,
    /// NIfTI: cut volumes along this axis (default: the run's). The window is always the run's.
    #[arg(long, value_enum)]
    pub slice_axis: Option<crate::config::imaging::SliceAxis>,
    /// Draw each image with its Grad-CAM heatmap over it (plain Grad-CAM on the last convolutional
    /// stage, in the article's red palette).
    #[arg(long)]
    pub cam: bool,
    /// The class Grad-CAM explains, by name or index (default: the predicted class).
    #[arg(long, value_name = "CLASS")]
    pub cam_class: Option<String>,
    /// Write each image's Grad-CAM overlay as DIR/<name>.cam.png.
    #[arg(long, value_name = "DIR")]
    pub save_cam: Option<PathBuf>,
    /// Run the network's convolutions in bfloat16: about 1.7× faster inference on CPUs with AVX512-BF16
    /// or AMX, at some accuracy (a few tenths of a point either way on the shared set; see README).
    /// efficientnet-lite0 runs only.
    #[arg(long)]
    pub bf16: bool,
    #[arg(long, default_value = "auto")]
    pub device: String,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Run folder to follow.
    pub run: PathBuf,
    #[arg(long, default_value = "article")]
    pub theme: String,
}

#[derive(Debug, Args)]
pub struct AttachArgs {
    /// Run folder (default: the newest running run under --runs-dir).
    pub run: Option<PathBuf>,
    #[arg(long, default_value = "runs")]
    pub runs_dir: PathBuf,
    #[arg(long, default_value = "article")]
    pub theme: String,
}

#[derive(Debug, Args)]
pub struct CtlArgs {
    /// Run folder.
    pub run: PathBuf,
    /// Send through the run folder (RUN/inbox/) instead of the socket: for a trainer on another
    /// machine that shares the folder (a Slurm node); chosen by itself when the run is elsewhere.
    #[arg(long, global = true)]
    pub via_folder: bool,
    #[command(subcommand)]
    pub action: CtlAction,
}

/// What `ctl` asks of the trainer.
#[derive(Debug, Clone, Subcommand)]
pub enum CtlAction {
    /// Finish this epoch, then stop, save and report.
    Stop,
    /// Stop after the current batch, save and report.
    StopNow,
    Pause,
    Resume,
    /// Set the learning rate (a number from 1e-9 up to, not including, 10).
    Lr {
        #[arg(value_parser = parse_lr, allow_negative_numbers = true)]
        value: f64,
    },
    /// Multiply the learning rate (a positive number; the new rate must stay in the range of `lr`).
    LrScale {
        #[arg(value_parser = parse_factor, allow_negative_numbers = true)]
        factor: f64,
    },
    /// Save a checkpoint now.
    Checkpoint,
    /// Turn early stopping on or off.
    EarlyStopping {
        #[arg(value_parser = ["on", "off"])]
        state: String,
    },
}

fn parse_number(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_infinite() && !s.to_ascii_lowercase().contains("inf") => Err(format!("{s} is too large for a number")),
        Ok(v) => Ok(v),
        Err(_) => Err(format!("'{s}' is not a number")),
    }
}

/// `ctl lr VALUE`: the learning-rate rule every way of setting it shares (NaN, infinities and
/// overflowing numbers like 1e400 are refused here: they have no JSON form to send).
fn parse_lr(s: &str) -> Result<f64, String> {
    crate::run::events::check_lr(parse_number(s)?).map_err(|e| e.to_string())
}

fn parse_factor(s: &str) -> Result<f64, String> {
    crate::run::events::check_factor(parse_number(s)?).map_err(|e| e.to_string())
}

impl CtlAction {
    pub fn command(&self) -> crate::run::TrainCommand {
        use crate::run::TrainCommand as C;
        match self {
            CtlAction::Stop => C::StopAfterEpoch,
            CtlAction::StopNow => C::StopNow,
            CtlAction::Pause => C::Pause,
            CtlAction::Resume => C::Resume,
            CtlAction::Lr { value } => C::SetLr(*value),
            CtlAction::LrScale { factor } => C::ScaleLr(*factor),
            CtlAction::Checkpoint => C::CheckpointNow,
            CtlAction::EarlyStopping { state } => C::SetEarlyStopping(state == "on"),
        }
    }
}

#[derive(Debug, Args)]
pub struct RunsArgs {
    #[arg(long, default_value = "runs")]
    pub runs_dir: PathBuf,
    /// One JSON array with every run's summary.
    #[arg(long)]
    pub json: bool,
    /// Open the Runs view of the dashboard: compare runs' curves, settings and figures.
    #[arg(long)]
    pub tui: bool,
    #[arg(long, default_value = "article")]
    pub theme: String,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Dataset root (`Training/` + `Testing/`, or class folders).
    pub data: PathBuf,
    /// Near duplicates: at most this many differing bits of the 256-bit perceptual hash (0: exact only).
    #[arg(long, default_value_t = crate::data::audit::DEFAULT_NEAR_THRESHOLD)]
    pub threshold: u32,
    /// Every group, machine-readable.
    #[arg(long)]
    pub json: bool,
    /// Exit non-zero when a test image duplicates a training image (for CI).
    #[arg(long)]
    pub fail_on_leak: bool,
    /// DICOM/NIfTI: the window for the near-duplicate hashes (see `train --window`).
    #[arg(long, value_name = "WINDOW", default_value = "auto", allow_hyphen_values = true)]
    pub window: crate::config::imaging::Window,
    /// NIfTI: cut volumes along this axis.
    #[arg(long, value_enum, default_value = "axial")]
    pub slice_axis: crate::config::imaging::SliceAxis,
    /// NIfTI volumes and multi-frame DICOM: middle (default, as `train`), all, or N central slices per file.
    #[arg(long, value_name = "WHICH", default_value = "middle")]
    pub slices: crate::config::imaging::Slices,
}

impl AuditArgs {
    /// How the audited files are read.
    pub fn reading(&self) -> crate::data::decode::Reading {
        let imaging = crate::config::imaging::Imaging { window: self.window, axis: self.slice_axis, slices: self.slices };
        crate::data::decode::Reading { max_pixels: crate::config::DEFAULT_MAX_PIXELS, imaging }
    }
}

#[derive(Debug, Args)]
pub struct CacheArgs {
    #[command(subcommand)]
    pub action: CacheAction,
}

#[derive(Debug, Clone, Copy, Subcommand)]
pub enum CacheAction {
    /// Where the cache lives, how many data sets it holds and their size.
    Info,
    /// Delete every dataset cache (the converted weights stay).
    Clean,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[arg(long, value_enum, default_value = "efficientnet-lite0")]
    pub model: ModelKind,
    #[arg(long, default_value_t = 150)]
    pub size: i64,
    #[arg(long, default_value_t = 32)]
    pub batch: i64,
    #[arg(long, default_value_t = 6)]
    pub steps: usize,
    /// Keep NCHW memory layout (default: channels-last, as training uses).
    #[arg(long)]
    pub nchw: bool,
    /// Time the training step in mixed precision (CUDA only): bf16 or fp16, as `train --amp` runs it.
    #[arg(long, value_enum, default_value = "off")]
    pub amp: Amp,
    /// Time the training step with the stem and the first N stages frozen (see `train --freeze-stages`).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub freeze_stages: usize,
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Instead: time decoding and resizing every image under DIR to --size on all cores, without the
    /// dataset cache (the ingest figure; compare with scripts/ingest_opencv.py).
    #[arg(long, value_name = "DIR")]
    pub ingest: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn flags_override_file_and_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, "epochs = 3\nbatch_size = 8\n").unwrap();
        let cli = Cli::parse_from(["tumorscope", "train", "--config", f.to_str().unwrap(), "--epochs", "5", "--no-augment"]);
        let Command::Train(t) = cli.command else { panic!() };
        let c = t.resolve().unwrap();
        assert_eq!((c.epochs, c.batch_size, c.augment, c.image_size), (5, 8, false, 150));
    }

    #[test]
    fn bad_config_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("bad.toml");
        std::fs::write(&f, "epochs = \"many\"\n").unwrap();
        let cli = Cli::parse_from(["tumorscope", "train", "--config", f.to_str().unwrap()]);
        let Command::Train(t) = cli.command else { panic!() };
        let e = t.resolve().unwrap_err().to_string();
        assert!(e.contains("bad.toml"), "{e}");
    }
}
