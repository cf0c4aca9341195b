//! A run's checkpoint asked about one image: its class probabilities (calibrated, with the run's
//! test-time augmentation) and its Grad-CAM. The dashboard's worker (`crate::explain`), `report` and the
//! trainer's report all use it.

use crate::model::gradcam;
use crate::run::explain::{CamMap, ExplainRequest, Explained};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Why an image could not be explained; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    #[error(transparent)]
    Load(#[from] crate::model::weights::LoadError),
    #[error("{path}: {source}")]
    Decode { path: String, source: crate::data::decode::DecodeError },
    #[error("class {class} out of range ({classes} classes)")]
    BadClass { class: usize, classes: usize },
    #[error("{path}: {source}")]
    Torch { path: String, source: tch::TchError },
    #[error("{path}: Grad-CAM failed: {source}")]
    Cam { path: String, source: gradcam::CamError },
}

/// A run's checkpoint, loaded for questions about single images.
pub struct Checkpoint {
    net: crate::model::Net,
    _vs: tch::nn::VarStore,
    classes: usize,
    size: u32,
    reading: crate::data::decode::Reading,
    checkpoint: PathBuf,
    modified: Option<SystemTime>,
    temperature: Option<f64>,
    tta: Option<crate::config::tta::Tta>,
}

fn modified(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

impl Checkpoint {
    /// The run's best checkpoint (else its last), with its fitted temperature when it has one.
    pub fn open(run: &Path) -> Result<Checkpoint, ExplainError> {
        load(run)
    }

    /// Whether a newer checkpoint was saved since this one was loaded (or the best replaced the last).
    pub fn is_stale(&self, run: &Path) -> bool {
        modified(&self.checkpoint) != self.modified
            || crate::run::RunDir { path: run.to_path_buf() }.checkpoint().as_ref() != Some(&self.checkpoint)
    }

    /// Classify and explain one image.
    pub fn explain(&self, req: &ExplainRequest) -> Result<Explained, ExplainError> {
        answer(self, req)
    }
}

fn load(run: &Path) -> Result<Checkpoint, ExplainError> {
    let crate::model::weights::RunNetwork { meta, vs, net, checkpoint } =
        crate::model::inference::load_model(run, tch::Device::Cpu, false)?;
    let net = net.folded().unwrap_or(net);
    let name = checkpoint.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let temperature =
        crate::calibration::Calibration::read(&run.join("calibration.json")).ok().filter(|c| c.checkpoint == name).map(|c| c.temperature);
    Ok(Checkpoint {
        net,
        _vs: vs,
        classes: meta.classes.len(),
        size: meta.config.image_size,
        reading: crate::data::decode::Reading::of(&meta.config),
        modified: modified(&checkpoint),
        checkpoint,
        temperature,
        tta: crate::config::tta::Tta::parse(&meta.config.tta).ok(),
    })
}

fn answer(l: &Checkpoint, req: &ExplainRequest) -> Result<Explained, ExplainError> {
    let path = &req.path;
    let shown = || path.display().to_string();
    let img = crate::data::decode::open_rgb(path, &l.reading).map_err(|source| ExplainError::Decode { path: shown(), source })?;
    if let Some(c) = req.cam_class
        && c >= l.classes
    {
        return Err(ExplainError::BadClass { class: c, classes: l.classes });
    }
    let torch = |source| ExplainError::Torch { path: shown(), source };
    let x = super::evaluate::image_input(&img, l.size, tch::Device::Cpu).map_err(torch)?;
    let input = crate::data::batch::normalize(&x);
    let cam = gradcam::grad_cam(l.net.as_ref(), &input, req.cam_class).map_err(|source| ExplainError::Cam { path: shown(), source })?;
    // With the run's test-time augmentation, the probabilities average its views (the map stays the
    // plain image's).
    let raw = match l.tta {
        Some(_) => super::evaluate::image_probabilities(&l.net, &x, l.tta).map_err(torch)?,
        None => cam.probs.clone(),
    };
    let probs = match l.temperature {
        Some(t) => crate::calibration::with_temperature(&raw, t),
        None => raw,
    };
    let pred = probs.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(k, _)| k).unwrap_or(0);
    Ok(Explained {
        probs,
        temperature: l.temperature,
        pred,
        cam: CamMap { class: cam.class, map: cam.map, h: cam.h, w: cam.w },
        checkpoint: l.checkpoint.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default(),
        image: img,
    })
}
