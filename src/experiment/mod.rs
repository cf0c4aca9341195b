//! Experiments: many runs of one recipe (folds, seeds, a grid of settings) in one folder,
//! `experiments/<stamp>-<name>/`, with `experiment.json` (the plan: every member and its `train`
//! flags) and `runs/` holding each member as an ordinary run folder, so `runs`, `attach`, `ctl`,
//! `watch`, `report` and `train --resume` work on a member as on any run. This layer is the plan and
//! the reading of members' folders; starting them is the commands' (`commands::experiment`).

pub mod aggregate;
pub mod members;
pub mod plan;

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub use plan::{GridAxis, Member, Plan};

/// Where members run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum, Default)]
#[serde(rename_all = "lowercase")]
pub enum Executor {
    /// Detached `train` processes on this machine.
    #[default]
    Local,
    /// A Slurm job array (`sbatch --array`), one task per member.
    Slurm,
}

/// Why an experiment folder cannot be used. Each names the file.
#[derive(Debug, thiserror::Error)]
pub enum ExperimentError {
    #[error("{0}: not an experiment folder (no experiment.json)")]
    NotAnExperiment(String),
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path}: not an experiment plan: {source}")]
    Invalid { path: String, source: serde_json::Error },
    #[error("{path}: written by a newer tumorscope (format {found})")]
    Format { path: String, found: u32 },
    #[error("{0}: another `experiment` process drives this experiment (pid {1})")]
    Driven(String, String),
}

/// An experiment's folder and its files.
#[derive(Debug, Clone)]
pub struct ExperimentDir {
    pub path: PathBuf,
}

impl ExperimentDir {
    pub fn plan_path(&self) -> PathBuf {
        self.path.join("experiment.json")
    }
    /// The members' run folders.
    pub fn runs(&self) -> PathBuf {
        self.path.join("runs")
    }
    pub fn member_dir(&self, m: &Member) -> PathBuf {
        self.runs().join(&m.id)
    }
    /// What a detached driver prints.
    pub fn driver_log(&self) -> PathBuf {
        self.path.join("driver.log")
    }
    pub fn slurm_dir(&self) -> PathBuf {
        self.path.join("slurm")
    }

    /// An existing experiment folder.
    /// The path is made absolute: members and Slurm tasks run from other folders.
    pub fn open(path: &Path) -> Result<ExperimentDir, ExperimentError> {
        if !path.join("experiment.json").is_file() {
            return Err(ExperimentError::NotAnExperiment(path.display().to_string()));
        }
        let path = std::fs::canonicalize(path).map_err(|source| ExperimentError::Io { path: path.display().to_string(), source })?;
        Ok(ExperimentDir { path })
    }

    /// Whether `path` is an experiment folder.
    pub fn is_experiment(path: &Path) -> bool {
        path.join("experiment.json").is_file()
    }

    pub fn read_plan(&self) -> Result<Plan, ExperimentError> {
        let p = self.plan_path();
        let bytes = std::fs::read(&p).map_err(|source| ExperimentError::Io { path: p.display().to_string(), source })?;
        let plan: Plan =
            serde_json::from_slice(&bytes).map_err(|source| ExperimentError::Invalid { path: p.display().to_string(), source })?;
        if plan.format > plan::FORMAT {
            return Err(ExperimentError::Format { path: p.display().to_string(), found: plan.format });
        }
        Ok(plan)
    }

    pub fn write_plan(&self, plan: &Plan) -> Result<(), ExperimentError> {
        let p = self.plan_path();
        let io = |source| ExperimentError::Io { path: p.display().to_string(), source };
        std::fs::create_dir_all(self.runs()).map_err(io)?;
        let json = serde_json::to_vec_pretty(plan).map_err(|e| io(std::io::Error::other(e)))?;
        crate::run::dir::write_atomic(&p, &json).map_err(io)
    }

    /// Take the experiment's driver lock (`EXP/driver.lock`): one driver per experiment; the kernel
    /// frees it when the driver ends, however it ends (`kill -9` included).
    pub fn lock_driver(&self) -> Result<DriverLock, ExperimentError> {
        let p = self.path.join("driver.lock");
        let io = |source| ExperimentError::Io { path: p.display().to_string(), source };
        let mut file = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&p).map_err(io)?;
        #[allow(deprecated)]
        let locked = {
            use std::os::fd::AsRawFd;
            nix::fcntl::flock(file.as_raw_fd(), nix::fcntl::FlockArg::LockExclusiveNonblock)
        };
        match locked {
            Ok(()) => {
                use std::io::{Seek, Write};
                let _ = file.set_len(0).and_then(|_| file.rewind()).and_then(|_| write!(file, "{}", std::process::id()));
                Ok(DriverLock { _file: file })
            }
            Err(_) => {
                let pid = std::fs::read_to_string(&p).unwrap_or_default();
                Err(ExperimentError::Driven(self.path.display().to_string(), pid.trim().to_string()))
            }
        }
    }
}

/// Held by the one process that drives an experiment.
pub struct DriverLock {
    _file: std::fs::File,
}

/// Create `parent/<stamp>-<name>` exclusively.
pub fn create(parent: &Path, name: &str) -> std::io::Result<ExperimentDir> {
    std::fs::create_dir_all(parent)?;
    let base = format!("{}-{name}", crate::run::dir::utc_stamp(crate::run::dir::now_unix()));
    for k in 0..1000 {
        let p = parent.join(if k == 0 { base.clone() } else { format!("{base}-{k}") });
        match std::fs::create_dir(&p) {
            Ok(()) => return Ok(ExperimentDir { path: std::fs::canonicalize(&p)? }),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("too many experiments with the same timestamp"))
}

/// The newest experiment under `parent` whose folder name ends in `-name`.
pub fn find_named(parent: &Path, name: &str) -> Option<ExperimentDir> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(parent)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().ends_with(&format!("-{name}"))) && ExperimentDir::is_experiment(p))
        .collect();
    found.sort();
    found.pop().and_then(|p| ExperimentDir::open(&p).ok())
}
