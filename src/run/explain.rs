//! Asking a run's checkpoint about one image, from a client that must not touch the network itself:
//! the dashboard sends an `ExplainRequest` and later receives an `Explanation` (probabilities and a
//! Grad-CAM map as plain numbers). The worker that answers lives in `crate::explain` (tch); the
//! trainer is never disturbed (the worker reads the checkpoint files).

use std::path::PathBuf;

/// Classify `path` and explain `cam_class` (None: the predicted class).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExplainRequest {
    pub path: PathBuf,
    pub cam_class: Option<usize>,
}

/// A Grad-CAM map: row-major `h`×`w` in 0..1, explaining `class`.
#[derive(Debug, Clone, PartialEq)]
pub struct CamMap {
    pub class: usize,
    pub map: Vec<f32>,
    pub h: usize,
    pub w: usize,
}

#[derive(Debug, Clone)]
pub struct Explanation {
    pub request: ExplainRequest,
    /// The answer, or why there is none.
    pub result: Result<Explained, Unexplained>,
}

/// Why an image has no explanation, as the dashboard shows it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Unexplained {
    /// Predictions outside a run (or before its first checkpoint) have no network to ask.
    #[error("no checkpoint to ask: predictions need a run folder")]
    NoCheckpoint,
    /// The worker's error (the train layer's `ExplainError`), carried across as its line: it names the
    /// file and what went wrong.
    #[error("{0}")]
    Failed(String),
}

#[derive(Debug, Clone)]
pub struct Explained {
    /// Probabilities shown (calibrated when `temperature` is set).
    pub probs: Vec<f32>,
    pub temperature: Option<f64>,
    pub pred: usize,
    pub cam: CamMap,
    /// The checkpoint file that answered (`best.safetensors` so far, during training).
    pub checkpoint: String,
    /// The decoded image, for the preview and the overlay.
    pub image: image::RgbImage,
}

/// The client's end: send requests, collect answers without blocking.
pub struct ExplainClient {
    pub requests: std::sync::mpsc::Sender<ExplainRequest>,
    pub answers: std::sync::mpsc::Receiver<Explanation>,
}

/// Images a folder holds (sorted, one level deep, hidden files skipped), for `o` on a folder.
pub fn images_in(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file() && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
                .filter(|p| {
                    p.extension()
                        .map(|e| e.to_string_lossy().to_ascii_lowercase())
                        .is_some_and(|e| ["jpg", "jpeg", "png", "bmp", "tif", "tiff", "webp", "gif"].contains(&e.as_str()))
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Tab completion of a typed path: the longest unambiguous extension of `input` (a folder gains `/`).
pub fn complete(input: &str) -> String {
    let expanded = match input.strip_prefix("~/") {
        Some(rest) => std::env::var("HOME").map(|h| format!("{h}/{rest}")).unwrap_or_else(|_| input.to_string()),
        None => input.to_string(),
    };
    let (dir, prefix) = match expanded.rfind('/') {
        Some(k) => (&expanded[..=k], &expanded[k + 1..]),
        None => ("", expanded.as_str()),
    };
    let listing = if dir.is_empty() { "." } else { dir };
    let mut names: Vec<(String, bool)> = std::fs::read_dir(listing)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    let n = e.file_name().to_string_lossy().to_string();
                    (n.starts_with(prefix) && (!n.starts_with('.') || prefix.starts_with('.'))).then(|| (n, e.path().is_dir()))
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    match names.as_slice() {
        [] => input.to_string(),
        [(n, is_dir)] => format!("{dir}{n}{}", if *is_dir { "/" } else { "" }),
        many => {
            let first = &many[0].0;
            let common =
                many.iter().fold(first.len(), |len, (n, _)| first.chars().zip(n.chars()).take_while(|(a, b)| a == b).count().min(len));
            format!("{dir}{}", first.chars().take(common).collect::<String>())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completion_extends_to_the_unambiguous_part() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().display().to_string();
        std::fs::create_dir_all(t.path().join("scans/glioma")).unwrap();
        std::fs::write(t.path().join("scans/slice_001.jpg"), b"x").unwrap();
        std::fs::write(t.path().join("scans/slice_002.jpg"), b"x").unwrap();
        assert_eq!(complete(&format!("{root}/sc")), format!("{root}/scans/"));
        assert_eq!(complete(&format!("{root}/scans/sl")), format!("{root}/scans/slice_00"));
        assert_eq!(complete(&format!("{root}/scans/g")), format!("{root}/scans/glioma/"));
        assert_eq!(complete(&format!("{root}/scans/zzz")), format!("{root}/scans/zzz"));
        assert_eq!(images_in(&t.path().join("scans")).len(), 2);
    }
}
