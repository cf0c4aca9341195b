//! Everything about images before they reach the network: finding them, decoding them on all cores,
//! caching the preprocessed set, splitting without leaks, augmenting and batching.

pub mod audit;
pub mod augment;
pub mod batch;
pub mod cache;
pub mod decode;
pub mod discover;
pub mod dupes;
pub mod load;
pub mod medical;
pub mod patients;
pub mod pipeline;
pub mod read;
pub mod record;
pub mod split;
pub mod synthetic;

pub use discover::{Discovered, ImageEntry, discover, discover_with};
pub use load::{ImageSet, LoadReport, load_dataset};
pub use split::{Holdout, Split, make_split, make_split_with};

/// The four classes of the article, in its order; real datasets may carry others.
pub const ARTICLE_CLASSES: [&str; 4] = ["glioma", "meningioma", "notumor", "pituitary"];

/// A human label: the article's `notumor` is shown as "no tumor".
pub fn display_class(name: &str) -> String {
    match name {
        "notumor" | "no_tumor" | "no-tumor" => "no tumor".to_string(),
        other => crate::run::format::printable(&other.replace('_', " ")).into_owned(),
    }
}

/// Problems with a dataset as a whole; single bad files are warnings, not errors.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{0}: no such folder")]
    Missing(String),
    #[error("{0}: not a folder")]
    NotADir(String),
    #[error("{path}: cannot read folder: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{0}: found {1} class folder(s); need at least two (expected e.g. glioma/ meningioma/ notumor/ pituitary/)")]
    TooFewClasses(String, usize),
    #[error("{path}: a class folder's name must be UTF-8 (it names the class in every report); rename it")]
    ClassName { path: String },
    #[error("{path}: class '{class}' has no readable images")]
    EmptyClass { path: String, class: String },
}
