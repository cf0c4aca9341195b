//! How DICOM and NIfTI files become 8-bit images: the intensity window, and which 2-D slices of a
//! volume are taken along which axis. A run records these and applies the same at inference. The JPEG
//! and PNG path ignores them.

use serde::{Deserialize, Serialize};

/// Why a window, axis or slice choice was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ImagingError {
    #[error("--window {0:?}: expected auto, CENTER,WIDTH (e.g. 40,80) or pLOW-HIGH (e.g. p1-99)")]
    Window(String),
    #[error("--window {0:?}: the width must be above 0")]
    Width(String),
    #[error("--window {0:?}: percentiles need 0 <= LOW < HIGH <= 100")]
    Percentiles(String),
    #[error("--slice-axis {0:?}: expected axial, coronal or sagittal")]
    Axis(String),
    #[error("--slices {0:?}: expected middle, all or a number of central slices (1 or more)")]
    Slices(String),
}

/// The intensity window that maps stored values (after the rescale slope and intercept) to 0..255.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(try_from = "String", into = "String")]
pub enum Window {
    /// The file's own window (DICOM WindowCenter/WindowWidth, NIfTI cal_min/cal_max), else the
    /// 0.5th–99.5th percentile of the image (of the whole volume for NIfTI).
    #[default]
    Auto,
    /// A fixed window, as a radiologist sets one.
    Fixed { center: f64, width: f64 },
    /// Always the image's own percentiles, ignoring any stored window.
    Percentile { low: f64, high: f64 },
}

/// The percentiles `auto` falls back to.
pub const AUTO_PERCENTILES: (f64, f64) = (0.5, 99.5);

impl std::str::FromStr for Window {
    type Err = ImagingError;
    fn from_str(s: &str) -> Result<Self, ImagingError> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("auto") {
            return Ok(Window::Auto);
        }
        if let Some(p) = t.strip_prefix('p').or_else(|| t.strip_prefix('P')) {
            let (lo, hi) = p.split_once('-').ok_or_else(|| ImagingError::Window(s.into()))?;
            let (low, high): (f64, f64) = (
                lo.trim().parse().map_err(|_| ImagingError::Window(s.into()))?,
                hi.trim().parse().map_err(|_| ImagingError::Window(s.into()))?,
            );
            if !(0.0..=100.0).contains(&low) || !(0.0..=100.0).contains(&high) || low >= high {
                return Err(ImagingError::Percentiles(s.into()));
            }
            return Ok(Window::Percentile { low, high });
        }
        let (c, w) = t.split_once(',').ok_or_else(|| ImagingError::Window(s.into()))?;
        let center: f64 = c.trim().parse().map_err(|_| ImagingError::Window(s.into()))?;
        let width: f64 = w.trim().parse().map_err(|_| ImagingError::Window(s.into()))?;
        if !center.is_finite() || !width.is_finite() {
            return Err(ImagingError::Window(s.into()));
        }
        if width <= 0.0 {
            return Err(ImagingError::Width(s.into()));
        }
        Ok(Window::Fixed { center, width })
    }
}

impl std::fmt::Display for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Window::Auto => write!(f, "auto"),
            Window::Fixed { center, width } => write!(f, "{center},{width}"),
            Window::Percentile { low, high } => write!(f, "p{low}-{high}"),
        }
    }
}

/// Serde through the string form a user types (`--window 40,80` and `window = "40,80"` read alike).
macro_rules! as_string {
    ($($t:ty),*) => {$(
        impl TryFrom<String> for $t {
            type Error = ImagingError;
            fn try_from(s: String) -> Result<Self, ImagingError> {
                s.parse()
            }
        }

        impl From<$t> for String {
            fn from(v: $t) -> String {
                v.to_string()
            }
        }
    )*};
}

as_string!(Window, Slices);

/// The axis a 3-D volume is cut along, in patient terms (read from the file's orientation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum SliceAxis {
    /// Slices across the head–foot axis.
    #[default]
    Axial,
    /// Slices across the front–back axis.
    Coronal,
    /// Slices across the left–right axis.
    Sagittal,
}

impl SliceAxis {
    /// The patient-space axis (0 = x left–right, 1 = y back–front, 2 = z foot–head) the slices cut.
    pub fn world_axis(self) -> usize {
        match self {
            SliceAxis::Sagittal => 0,
            SliceAxis::Coronal => 1,
            SliceAxis::Axial => 2,
        }
    }
}

/// Which slices of a volume (or frames of a multi-frame DICOM) become images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(try_from = "String", into = "String")]
pub enum Slices {
    /// The one middle slice.
    #[default]
    Middle,
    /// Every slice.
    All,
    /// The N slices around the middle.
    Central(usize),
}

impl Slices {
    /// The indices taken from `n` slices, in order.
    pub fn pick(self, n: usize) -> Vec<usize> {
        match self {
            _ if n == 0 => vec![],
            Slices::Middle => vec![n / 2],
            Slices::All => (0..n).collect(),
            Slices::Central(k) => {
                let k = k.min(n);
                let start = n / 2 - k / 2;
                (start..start + k).collect()
            }
        }
    }
}

impl std::str::FromStr for Slices {
    type Err = ImagingError;
    fn from_str(s: &str) -> Result<Self, ImagingError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "middle" => Ok(Slices::Middle),
            "all" => Ok(Slices::All),
            n => match n.parse::<usize>() {
                Ok(k) if k >= 1 => Ok(Slices::Central(k)),
                _ => Err(ImagingError::Slices(s.into())),
            },
        }
    }
}

impl std::fmt::Display for Slices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Slices::Middle => write!(f, "middle"),
            Slices::All => write!(f, "all"),
            Slices::Central(k) => write!(f, "{k}"),
        }
    }
}

/// Everything that turns a medical file into images.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Imaging {
    pub window: Window,
    pub axis: SliceAxis,
    pub slices: Slices,
}

impl Imaging {
    pub fn is_default(&self) -> bool {
        *self == Imaging::default()
    }

    /// One line for logs and the report.
    pub fn describe(&self) -> String {
        format!("window {}, {} slices, {}", self.window, format!("{:?}", self.axis).to_lowercase(), self.slices)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_parse_and_print_back() {
        for s in ["auto", "40,80", "-600,1500", "p1-99", "p0.5-99.5"] {
            let w: Window = s.parse().unwrap();
            assert_eq!(w.to_string().parse::<Window>().unwrap(), w, "{s}");
        }
        assert_eq!("40,80".parse::<Window>().unwrap(), Window::Fixed { center: 40.0, width: 80.0 });
        assert!(matches!("40,0".parse::<Window>(), Err(ImagingError::Width(_))));
        assert!(matches!("p99-1".parse::<Window>(), Err(ImagingError::Percentiles(_))));
        assert!(matches!("wide".parse::<Window>(), Err(ImagingError::Window(_))));
        assert!(matches!("nan,10".parse::<Window>(), Err(ImagingError::Window(_))));
    }

    #[test]
    fn slices_pick_the_middle_all_or_the_central_n() {
        assert_eq!(Slices::Middle.pick(5), vec![2]);
        assert_eq!(Slices::Middle.pick(1), vec![0]);
        assert_eq!(Slices::All.pick(3), vec![0, 1, 2]);
        assert_eq!(Slices::Central(3).pick(10), vec![4, 5, 6]);
        assert_eq!(Slices::Central(20).pick(4), vec![0, 1, 2, 3]);
        assert!(Slices::All.pick(0).is_empty());
        assert!(matches!("0".parse::<Slices>(), Err(ImagingError::Slices(_))));
    }
}
