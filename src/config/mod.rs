//! The resolved training configuration: defaults (the article's) → TOML file → command-line flags.
//! It is saved beside every checkpoint so `eval` and `predict` rebuild the same network and split.

pub mod imaging;
pub mod tta;

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Images above this many pixels are refused (about 8000 × 8000; MRI slices are far smaller). The
/// setting `max_image_pixels` changes it.
pub const DEFAULT_MAX_PIXELS: u64 = 64_000_000;

/// Bits of the perceptual hash: a 16×16 gradient hash. (8×8 was too coarse for MRI: dark slices of
/// different patients came within a few bits of each other.)
pub const HASH_BITS: u32 = 256;

/// Default Hamming threshold (bits of the 256) for near duplicates.
pub const DEFAULT_NEAR_THRESHOLD: u32 = 16;

/// EfficientNet-Lite0's stages after the stem (`freeze_stages` freezes up to all of them).
pub const LITE0_STAGES: usize = 7;

/// Settings a config file may hold beside the training recipe: where and how to run, not what to
/// train (so they are not saved with the run). Same names as the flags.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileSettings {
    /// The recipe the file's settings change (`recipe = "article"`); the default one without.
    pub recipe: Option<Recipe>,
    pub device: Option<String>,
    pub runs_dir: Option<PathBuf>,
    pub theme: Option<String>,
    pub data: Option<PathBuf>,
    /// Run folders readable by the user's group (0750/0640) instead of private (0700/0600).
    pub share_with_group: Option<bool>,
}

/// The built-in themes (see `themes/`).
pub const THEMES: [&str; 3] = ["article", "light", "high-contrast"];

/// `auto`, `cpu`, `cuda` or `cuda:N`.
pub fn valid_device(s: &str) -> bool {
    matches!(s, "auto" | "cpu" | "cuda") || s.strip_prefix("cuda:").is_some_and(|n| n.parse::<usize>().is_ok())
}

/// Which network to train.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ModelKind {
    /// EfficientNet-Lite0 with ImageNet weights and a new 4-class head (the article's setup).
    EfficientnetLite0,
    /// A small CNN from scratch, for quick runs.
    SmallCnn,
}

impl ModelKind {
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::EfficientnetLite0 => "efficientnet-lite0",
            ModelKind::SmallCnn => "small-cnn",
        }
    }
}

/// How the learning rate moves during a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Schedule {
    /// The article's: constant, cut by `plateau_factor` when validation accuracy stalls.
    #[default]
    Plateau,
    /// Linear warm-up over `warmup_epochs`, then cosine decay to `min_lr` by the last batch.
    Cosine,
}

/// Automatic mixed precision for training on CUDA: the forward pass in a 16-bit float, weights,
/// gradients and the optimiser in f32. A CPU trains in f32 whatever this says (bf16 training measured
/// slower than f32 on the CPUs README names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Amp {
    /// f32 throughout.
    #[default]
    Off,
    /// bfloat16: f32's range, so no loss scaling (Ampere and newer GPUs).
    Bf16,
    /// float16 with a dynamic loss scale (older GPUs without bf16).
    Fp16,
}

impl Amp {
    pub fn name(self) -> &'static str {
        match self {
            Amp::Off => "off",
            Amp::Bf16 => "bf16",
            Amp::Fp16 => "fp16",
        }
    }
}

/// A named starting point for every setting; a config file and flags change it from there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Recipe {
    /// The article's 12 epochs at a constant rate cut by ReduceLROnPlateau (factor 0.3, patience 2),
    /// with the lr and BatchNorm momentum README explains.
    Article,
    /// The default: the article's 12 epochs in about three quarters of the time. The stem and the first
    /// two stages stay frozen (ImageNet's edge and texture filters; backward stops above them), peak lr
    /// 4e-4 after a one-epoch warm-up then cosine decay to the last batch (so no early stopping), and
    /// mirror test-time augmentation for the test report. README gives its accuracy beside the article's.
    #[default]
    Fast,
}

impl Recipe {
    pub fn name(self) -> &'static str {
        match self {
            Recipe::Fast => "fast",
            Recipe::Article => "article",
        }
    }

    /// Every setting of the recipe.
    pub fn config(self) -> TrainConfig {
        let article = TrainConfig::article();
        match self {
            Recipe::Article => article,
            Recipe::Fast => TrainConfig {
                lr: 4e-4,
                schedule: Schedule::Cosine,
                warmup_epochs: 1.0,
                early_stopping: false,
                freeze_stages: 2,
                tta: "flip".into(),
                ..article
            },
        }
    }
}

/// Every knob of a training run. `Default` is the default recipe (`Recipe::Fast`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    pub model: ModelKind,
    /// Use the ImageNet weights for the backbone (EfficientNet-Lite0 only).
    pub pretrained: bool,
    pub image_size: u32,
    pub batch_size: usize,
    pub epochs: usize,
    pub lr: f64,
    pub weight_decay: f64,
    pub dropout: f64,
    /// BatchNorm running-statistics momentum (PyTorch convention). The Lite0 weights came with 0.01
    /// (Keras 0.99); 0.1 lets the statistics follow the weights while fine-tuning.
    pub bn_momentum: f64,
    /// Share of the training images held out for validation (the article's validation_split).
    pub val_fraction: f64,
    /// Share held out for test when the data has no `Testing/` folder.
    pub test_fraction: f64,
    pub seed: u64,
    pub augment: bool,
    /// ReduceLROnPlateau on validation accuracy.
    pub plateau_factor: f64,
    pub plateau_patience: usize,
    pub plateau_min_delta: f64,
    pub min_lr: f64,
    pub early_stopping: bool,
    pub early_stopping_patience: usize,
    /// Use at most this many images per class (0 = all): quick experiments and tests.
    pub limit_per_class: usize,
    /// Compute threads for libtorch (0 = all cores).
    pub threads: usize,
    /// Images with more pixels are refused (checked from the header, before decoding).
    pub max_image_pixels: u64,
    /// Near copies (perceptual hashes within this many of 256 bits) are grouped like byte copies, so a
    /// slice and its re-encoded copy never straddle train, val and test. 0: byte copies only.
    pub near_duplicate_threshold: u32,
    /// Test-time augmentation for the final test report, the gallery's test predictions and `o`:
    /// "" (off), "flip", "shift=N" or "flip,shift=N". `eval --tta` and `predict --tta` choose their own.
    pub tta: String,
    /// How the learning rate moves (a run saved before this setting existed used `plateau`).
    #[serde(default)]
    pub schedule: Schedule,
    /// Epochs of linear warm-up to `lr` (cosine schedule only; may be fractional; at most half the run).
    #[serde(default)]
    pub warmup_epochs: f64,
    /// Cross-entropy label smoothing for training (0: none).
    #[serde(default)]
    pub label_smoothing: f64,
    /// Train with the stem and the first N of Lite0's 7 stages frozen (0: none): backward stops above
    /// them, so a step is faster and holds fewer activations. The small CNN has no stages: ignored.
    #[serde(default)]
    pub freeze_stages: usize,
    /// Validate and checkpoint an exponential moving average of the weights with this decay per step
    /// (0: off, the raw weights).
    #[serde(default)]
    pub ema_decay: f64,
    /// Mixed precision on CUDA (off, bf16, fp16); ignored on a CPU.
    #[serde(default)]
    pub amp: Amp,
    /// Stochastic depth (Keras EfficientNet's `drop_connect_rate`): while training, each residual block's
    /// branch is dropped for a whole image with a probability rising linearly from 0 to this at the last
    /// block (0: off). EfficientNet-Lite0 only.
    #[serde(default)]
    pub drop_path: f64,
    /// Cross-validation: split the training pool into this many grouped, stratified folds and validate
    /// on fold `fold` instead of a `val_fraction` carve (0: off). Experiments set it per member.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub folds: usize,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub fold: usize,
    /// The seed of the split (test carve and folds) when it is not `seed`: an experiment's members with
    /// different seeds share one split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split_seed: Option<u64>,
    /// DICOM and NIfTI only: the intensity window (`auto`, `C,W` or `pLOW-HIGH`).
    #[serde(default, skip_serializing_if = "is_default")]
    pub window: imaging::Window,
    /// NIfTI only: the axis volumes are cut along.
    #[serde(default, skip_serializing_if = "is_default")]
    pub slice_axis: imaging::SliceAxis,
    /// NIfTI volumes and multi-frame DICOM: which slices become images (`middle`, `all`, or N central).
    #[serde(default, skip_serializing_if = "is_default")]
    pub slices: imaging::Slices,
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Default for TrainConfig {
    fn default() -> Self {
        Recipe::default().config()
    }
}

impl TrainConfig {
    /// The article's recipe (lr and BatchNorm momentum as README explains), and the base of the others.
    pub fn article() -> Self {
        TrainConfig {
            model: ModelKind::EfficientnetLite0,
            pretrained: true,
            image_size: 150,
            batch_size: 32,
            epochs: 12,
            lr: 3e-4,
            weight_decay: 0.0,
            dropout: 0.5,
            bn_momentum: 0.1,
            val_fraction: 0.1,
            test_fraction: 0.15,
            seed: 42,
            augment: true,
            plateau_factor: 0.3,
            plateau_patience: 2,
            plateau_min_delta: 0.001,
            min_lr: 1e-6,
            early_stopping: true,
            early_stopping_patience: 5,
            limit_per_class: 0,
            threads: 0,
            max_image_pixels: DEFAULT_MAX_PIXELS,
            near_duplicate_threshold: DEFAULT_NEAR_THRESHOLD,
            tta: String::new(),
            schedule: Schedule::Plateau,
            warmup_epochs: 0.0,
            label_smoothing: 0.0,
            freeze_stages: 0,
            ema_decay: 0.0,
            amp: Amp::Off,
            drop_path: 0.0,
            folds: 0,
            fold: 0,
            split_seed: None,
            window: Default::default(),
            slice_axis: Default::default(),
            slices: Default::default(),
        }
    }

    /// The seed the split is drawn with.
    pub fn split_seed(&self) -> u64 {
        self.split_seed.unwrap_or(self.seed)
    }

    /// How DICOM and NIfTI files become images in this run.
    pub fn imaging(&self) -> imaging::Imaging {
        imaging::Imaging { window: self.window, axis: self.slice_axis, slices: self.slices }
    }
}

/// More libtorch threads than any machine tumorscope runs on has cores (a typo like 20000 would start
/// that many threads).
pub const MAX_THREADS: usize = 1024;

/// Learning rates a command may set: the `l` prompt, `+`/`-` and `ctl lr` share these bounds.
pub const MAX_LR: f64 = 10.0;
pub const MIN_LR: f64 = 1e-9;

/// The one learning-rate rule, for `--lr`, `lr =` in a config file, `ctl lr`, `ctl lr-scale`, `l`, `+`
/// and `-`: a finite number in [MIN_LR, MAX_LR). The error says why, without the value's name.
/// A learning rate (or factor) outside the one rule.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RateError {
    #[error("{0} is not a positive number")]
    NotPositive(f64),
    #[error("{0} is not below the ceiling {MAX_LR}")]
    TooHigh(f64),
    #[error("{0} is below the floor {MIN_LR:e}")]
    TooLow(f64),
}

pub fn check_lr(lr: f64) -> Result<f64, RateError> {
    if !lr.is_finite() || lr <= 0.0 {
        return Err(RateError::NotPositive(lr));
    }
    if lr >= MAX_LR {
        return Err(RateError::TooHigh(lr));
    }
    if lr < MIN_LR {
        return Err(RateError::TooLow(lr));
    }
    Ok(lr)
}

/// A factor for `ctl lr-scale`: finite and positive (the rate it gives is checked by `check_lr`).
pub fn check_factor(f: f64) -> Result<f64, RateError> {
    if f.is_finite() && f > 0.0 { Ok(f) } else { Err(RateError::NotPositive(f)) }
}

/// A configuration value that makes no sense.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read config: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}: invalid config: {message}")]
    Parse { path: String, message: String },
    #[error("invalid setting: {0}")]
    Invalid(String),
}

impl TrainConfig {
    /// Read a TOML file; fields it does not set keep their defaults.
    pub fn from_toml_file(path: &Path) -> Result<Self, ConfigError> {
        Ok(Self::from_toml_file_with_settings(path, None)?.0)
    }

    /// Read a TOML file: the training recipe, and the run settings (`device`, `runs_dir`, `theme`,
    /// `data`). A bad value names the key and what it may be.
    /// The file's settings change `recipe` when given (a `--recipe` flag), else the file's own
    /// `recipe = …`, else the default recipe.
    pub fn from_toml_file_with_settings(path: &Path, recipe: Option<Recipe>) -> Result<(Self, FileSettings), ConfigError> {
        let where_ = path.display().to_string();
        let bad = |message: String| ConfigError::Parse { path: where_.clone(), message };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: where_.clone(), source })?;
        let mut table: toml::Table = toml::from_str(&text).map_err(|e| bad(e.message().to_string()))?;
        let share_with_group = match table.remove("share_with_group") {
            None => None,
            Some(toml::Value::Boolean(b)) => Some(b),
            Some(v) => return Err(bad(format!("share_with_group = {v}: expected true or false"))),
        };
        let mut string = |key: &str| -> Result<Option<String>, ConfigError> {
            match table.remove(key) {
                None => Ok(None),
                Some(toml::Value::String(s)) => Ok(Some(s)),
                Some(v) => Err(bad(format!("{key} = {v}: expected a string"))),
            }
        };
        let settings = FileSettings {
            share_with_group,
            recipe: None,
            device: string("device")?,
            runs_dir: string("runs_dir")?.map(PathBuf::from),
            theme: string("theme")?,
            data: string("data")?.map(PathBuf::from),
        };
        if let Some(d) = &settings.device
            && !valid_device(d)
        {
            return Err(bad(format!("device = \"{d}\": expected one of auto, cpu, cuda, cuda:N")));
        }
        if let Some(t) = &settings.theme
            && !THEMES.contains(&t.as_str())
            && !(t.ends_with(".toml") && Path::new(t).is_file())
        {
            return Err(bad(format!("theme = \"{t}\": expected one of {}, or the path of a .toml theme file", THEMES.join(", "))));
        }
        let file_recipe = match table.remove("recipe") {
            None => None,
            Some(toml::Value::String(r)) => Some(
                <Recipe as clap::ValueEnum>::from_str(&r, false)
                    .map_err(|_| bad(format!("recipe = \"{r}\": expected one of fast, article")))?,
            ),
            Some(v) => return Err(bad(format!("recipe = {v}: expected a string"))),
        };
        let settings = FileSettings { recipe: file_recipe, ..settings };
        let as_file_error = |e| match e {
            ConfigError::Invalid(m) => bad(m),
            e => e,
        };
        let cfg = Self::overlay(recipe.or(settings.recipe).unwrap_or_default().config(), table).map_err(as_file_error)?;
        cfg.validate().map_err(as_file_error)?;
        Ok((cfg, settings))
    }

    /// `base` with the keys of `table` set over it (unknown keys and wrong types are errors).
    pub fn overlay(base: TrainConfig, table: toml::Table) -> Result<TrainConfig, ConfigError> {
        let mut merged = toml::Table::try_from(&base).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        merged.extend(table);
        toml::Value::Table(merged).try_into().map_err(|e: toml::de::Error| ConfigError::Invalid(e.message().to_string()))
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if !(32..=1024).contains(&self.image_size) {
            return bad(format!("image_size {} must be between 32 and 1024", self.image_size));
        }
        if self.batch_size == 0 {
            return bad("batch_size must be at least 1".into());
        }
        if self.epochs == 0 {
            return bad("epochs must be at least 1".into());
        }
        if let Err(why) = check_lr(self.lr) {
            return bad(format!("lr {why} (the range `ctl lr` and the dashboard accept)"));
        }
        for (name, v) in [("weight_decay", self.weight_decay), ("plateau_min_delta", self.plateau_min_delta), ("min_lr", self.min_lr)] {
            if !(v.is_finite() && v >= 0.0) {
                return bad(format!("{name} {v} must be a finite number, 0 or more"));
            }
        }
        if self.min_lr > self.lr {
            return bad(format!("min_lr {} must not be above lr {}", self.min_lr, self.lr));
        }
        if self.threads > MAX_THREADS {
            return bad(format!("threads {} must be at most {MAX_THREADS} (0 = every core)", self.threads));
        }

        if !(0.0..1.0).contains(&self.dropout) {
            return bad(format!("dropout {} must be in [0, 1)", self.dropout));
        }
        if !(0.0 < self.bn_momentum && self.bn_momentum <= 1.0) {
            return bad(format!("bn_momentum {} must be in (0, 1]", self.bn_momentum));
        }
        for (name, v) in [("val_fraction", self.val_fraction), ("test_fraction", self.test_fraction)] {
            if !(0.0..0.9).contains(&v) {
                return bad(format!("{name} {v} must be in [0, 0.9)"));
            }
        }
        if self.near_duplicate_threshold > HASH_BITS / 2 {
            return bad(format!(
                "near_duplicate_threshold must be at most {} (of {} bits); {} would group unrelated images",
                HASH_BITS / 2,
                HASH_BITS,
                self.near_duplicate_threshold
            ));
        }
        if !self.tta.is_empty() {
            tta::Tta::parse(&self.tta).map_err(|e| ConfigError::Invalid(e.to_string().replace("--tta", "tta =")))?;
        }
        if self.max_image_pixels == 0 {
            return bad("max_image_pixels must be at least 1".into());
        }
        if !(0.0..1.0).contains(&self.drop_path) {
            return bad(format!("drop_path {} must be in [0, 1)", self.drop_path));
        }
        if !(0.0..1.0).contains(&self.label_smoothing) {
            return bad(format!("label_smoothing {} must be in [0, 1)", self.label_smoothing));
        }
        if !(self.warmup_epochs >= 0.0 && self.warmup_epochs.is_finite()) {
            return bad(format!("warmup_epochs {} must be a number of epochs, 0 or more", self.warmup_epochs));
        }
        if !(0.0..1.0).contains(&self.ema_decay) {
            return bad(format!("ema_decay {} must be in [0, 1) (0 = off)", self.ema_decay));
        }
        let stages = LITE0_STAGES;
        if self.freeze_stages > stages {
            return bad(format!("freeze_stages {} must be at most {stages} (Lite0's stages)", self.freeze_stages));
        }
        if self.folds == 1 || (self.folds > 1 && self.fold >= self.folds) {
            return bad(format!(
                "folds {} / fold {}: cross-validation needs at least 2 folds and a fold below their number",
                self.folds, self.fold
            ));
        }
        if !(0.0 < self.plateau_factor && self.plateau_factor < 1.0) {
            return bad(format!("plateau_factor {} must be in (0, 1)", self.plateau_factor));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_article_recipe_follows_the_article() {
        let c = Recipe::Article.config();
        assert_eq!((c.image_size, c.batch_size, c.epochs), (150, 32, 12));
        assert_eq!((c.plateau_factor, c.plateau_patience, c.plateau_min_delta), (0.3, 2, 0.001));
        assert_eq!((c.schedule, c.label_smoothing), (Schedule::Plateau, 0.0));
        assert_eq!(c.dropout, 0.5);
        assert_eq!(c.val_fraction, 0.1);
        assert_eq!(TrainConfig::default(), Recipe::Fast.config(), "the fast recipe is the default");
        // The fast recipe changes the schedule and freezes the first stages, not the network, the
        // length or the data.
        let f = Recipe::Fast.config();
        assert_eq!((f.schedule, f.freeze_stages, f.early_stopping), (Schedule::Cosine, 2, false));
        assert_eq!((c.freeze_stages, c.ema_decay), (0, 0.0));
        assert_eq!(
            (f.image_size, f.batch_size, f.dropout, f.val_fraction, f.epochs),
            (c.image_size, c.batch_size, c.dropout, c.val_fraction, c.epochs)
        );
    }

    /// A run saved before the schedule settings existed resumes with the article's plateau schedule.
    #[test]
    fn an_old_saved_config_keeps_the_plateau_schedule() {
        let mut t = toml::Table::try_from(Recipe::Article.config()).unwrap();
        for k in ["schedule", "warmup_epochs", "label_smoothing"] {
            t.remove(k);
        }
        let c: TrainConfig = toml::Value::Table(t).try_into().unwrap();
        assert_eq!(c, Recipe::Article.config());
    }

    #[test]
    fn a_file_changes_its_recipe() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("c.toml");
        // The default is fast; the file asks for the article's recipe.
        std::fs::write(&f, "recipe = \"article\"\nepochs = 3\n").unwrap();
        let (c, s) = TrainConfig::from_toml_file_with_settings(&f, None).unwrap();
        assert_eq!(c, TrainConfig { epochs: 3, ..Recipe::Article.config() });
        assert_eq!(s.recipe, Some(Recipe::Article));
        // A --recipe flag wins over the file's.
        let (c, _) = TrainConfig::from_toml_file_with_settings(&f, Some(Recipe::Fast)).unwrap();
        assert_eq!(c, TrainConfig { epochs: 3, ..Recipe::Fast.config() });
        std::fs::write(&f, "epochs = 3\n").unwrap();
        assert_eq!(TrainConfig::from_toml_file(&f).unwrap(), TrainConfig { epochs: 3, ..TrainConfig::default() });
        std::fs::write(&f, "recipe = \"quick\"\n").unwrap();
        assert!(TrainConfig::from_toml_file(&f).unwrap_err().to_string().contains("recipe = \"quick\": expected one of fast, article"));
    }

    #[test]
    fn shipped_example_config_equals_defaults() {
        let text = include_str!("../../tumorscope.example.toml");
        let c: TrainConfig = toml::from_str(text).unwrap();
        assert_eq!(c, TrainConfig::default());
    }

    #[test]
    fn partial_file_keeps_defaults_and_rejects_unknown_keys() {
        let c: TrainConfig = toml::from_str("epochs = 3\n").unwrap();
        assert_eq!(c.epochs, 3);
        assert_eq!(c.batch_size, 32);
        assert!(toml::from_str::<TrainConfig>("epoch = 3\n").is_err());
    }

    #[test]
    fn invalid_values_name_the_setting() {
        let c = TrainConfig { batch_size: 0, ..Default::default() };
        assert!(c.validate().unwrap_err().to_string().contains("batch_size"));
        let c = TrainConfig { plateau_factor: 1.5, ..Default::default() };
        assert!(c.validate().unwrap_err().to_string().contains("plateau_factor"));
        let c = TrainConfig { freeze_stages: 8, ..Default::default() };
        assert!(c.validate().unwrap_err().to_string().contains("freeze_stages 8 must be at most 7"));
        assert!(TrainConfig { freeze_stages: 7, ..Default::default() }.validate().is_ok());
        let c = TrainConfig { ema_decay: 1.0, ..Default::default() };
        assert!(c.validate().unwrap_err().to_string().contains("ema_decay 1 must be in [0, 1)"));
        let c = TrainConfig { drop_path: -0.1, ..Default::default() };
        assert!(c.validate().unwrap_err().to_string().contains("drop_path -0.1 must be in [0, 1)"));
    }

    /// NaN and infinities are valid TOML: every number is checked, and the line names the file and key.
    #[test]
    fn non_finite_and_out_of_range_numbers_are_refused_with_the_key() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("c.toml");
        for (text, key) in [
            ("min_lr = nan\n", "min_lr"),
            ("weight_decay = nan\n", "weight_decay"),
            ("weight_decay = -1.0\n", "weight_decay"),
            ("plateau_min_delta = inf\n", "plateau_min_delta"),
            ("lr = nan\n", "lr"),
            ("lr = inf\n", "lr"),
            ("lr = 100.0\n", "lr"),
            ("lr = 1e-12\n", "lr"),
            ("dropout = nan\n", "dropout"),
            ("bn_momentum = nan\n", "bn_momentum"),
            ("warmup_epochs = nan\n", "warmup_epochs"),
            ("label_smoothing = nan\n", "label_smoothing"),
            ("ema_decay = nan\n", "ema_decay"),
            ("drop_path = nan\n", "drop_path"),
            ("plateau_factor = nan\n", "plateau_factor"),
            ("val_fraction = nan\n", "val_fraction"),
            ("threads = 100000\n", "threads"),
            ("min_lr = 0.1\n", "min_lr"),
        ] {
            std::fs::write(&f, text).unwrap();
            let e = TrainConfig::from_toml_file(&f).unwrap_err().to_string();
            assert!(e.contains("c.toml") && e.contains(key) && !e.contains('\n'), "{text}: {e}");
        }
        // The learning rate's range is the one `ctl lr` and the dashboard use.
        assert!(TrainConfig { lr: 9.99, ..Default::default() }.validate().is_ok());
        assert!(TrainConfig { lr: 10.0, ..Default::default() }.validate().is_err());
        assert!(check_lr(10.0).is_err());
    }

    #[test]
    fn run_settings_live_in_the_file_and_bad_values_name_the_key() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("c.toml");
        std::fs::write(&f, "epochs = 3\ndevice = \"cpu\"\nruns_dir = \"/tmp/r\"\ntheme = \"light\"\ndata = \"/d\"\n").unwrap();
        let (c, s) = TrainConfig::from_toml_file_with_settings(&f, None).unwrap();
        assert_eq!(c.epochs, 3);
        assert_eq!(
            s,
            FileSettings {
                recipe: None,
                device: Some("cpu".into()),
                runs_dir: Some("/tmp/r".into()),
                theme: Some("light".into()),
                data: Some("/d".into()),
                share_with_group: None,
            }
        );
        for (text, needle) in [
            ("device = \"gpu0\"\n", "device = \"gpu0\": expected one of auto, cpu, cuda, cuda:N"),
            ("theme = \"neon\"\n", "theme = \"neon\": expected one of article, light, high-contrast"),
            ("runs_dir = 3\n", "runs_dir = 3: expected a string"),
            ("share_with_group = \"yes\"\n", "share_with_group = \"yes\": expected true or false"),
            ("epoch = 3\n", "unknown field `epoch`"),
        ] {
            std::fs::write(&f, text).unwrap();
            let e = TrainConfig::from_toml_file_with_settings(&f, None).unwrap_err().to_string();
            assert!(e.contains("c.toml") && e.contains(needle), "{e}");
        }
    }

    #[test]
    fn round_trips_through_toml() {
        let c = TrainConfig { model: ModelKind::SmallCnn, epochs: 2, ..Default::default() };
        assert_eq!(toml::from_str::<TrainConfig>(&c.to_toml()).unwrap(), c);
    }
}
