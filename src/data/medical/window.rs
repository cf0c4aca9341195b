//! Stored values to 8-bit pixels: the rescale, then a window (the file's, a fixed one, or the image's
//! percentiles), then MONOCHROME1's inversion.

use super::StoredWindow;
use crate::config::imaging::{AUTO_PERCENTILES, Window};

/// At most this many values are sorted to find percentiles (every k-th value of a larger image).
const SAMPLE: usize = 1 << 20;

/// A sorted sample of the finite values (all of them when there are at most `SAMPLE`).
pub fn sorted_sample(values: &[f64]) -> Vec<f64> {
    let step = values.len().div_ceil(SAMPLE).max(1);
    let mut v: Vec<f64> = values.iter().step_by(step).copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    v
}

/// The value at percentile `p` (0–100) of sorted values (nearest rank).
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// How values become 0..255.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mapping {
    /// DICOM's linear window (PS3.3 C.11.2.1.2).
    CenterWidth(f64, f64),
    /// `lo` → 0, `hi` → 255, linear between.
    Range(f64, f64),
}

impl Mapping {
    fn map(self, x: f64) -> u8 {
        let y = match self {
            Mapping::CenterWidth(c, w) => {
                let w1 = (w - 1.0).max(f64::MIN_POSITIVE);
                ((x - (c - 0.5)) / w1 + 0.5) * 255.0
            }
            Mapping::Range(lo, hi) => (x - lo) / (hi - lo).max(f64::MIN_POSITIVE) * 255.0,
        };
        if y.is_nan() { 0 } else { y.round().clamp(0.0, 255.0) as u8 }
    }
}

/// The mapping `window` chooses for rescaled values, given what the file stores and a sorted pool of
/// values for percentiles (the image's own when `pool` is `None`).
pub fn mapping(window: Window, stored: Option<StoredWindow>, rescaled: &[f64], pool: Option<&[f64]>) -> Mapping {
    let by_percentile = |(lo, hi): (f64, f64)| {
        let own;
        let sorted = match pool {
            Some(p) => p,
            None => {
                own = sorted_sample(rescaled);
                &own
            }
        };
        Mapping::Range(percentile(sorted, lo), percentile(sorted, hi))
    };
    match (window, stored) {
        (Window::Fixed { center, width }, _) => Mapping::CenterWidth(center, width),
        (Window::Percentile { low, high }, _) => by_percentile((low, high)),
        (Window::Auto, Some(StoredWindow::CenterWidth(c, w))) => Mapping::CenterWidth(c, w),
        (Window::Auto, Some(StoredWindow::MinMax(lo, hi))) => Mapping::Range(lo, hi),
        (Window::Auto, None) => by_percentile(AUTO_PERCENTILES),
    }
}

/// 8-bit pixels of rescaled values.
pub fn apply(rescaled: &[f64], m: Mapping, invert: bool) -> Vec<u8> {
    rescaled.iter().map(|&x| m.map(x)).map(|v| if invert { 255 - v } else { v }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dicom_linear_window_matches_the_standard() {
        // Center 600, width 1600: below -200 is black, above 1400 white, the center mid-grey.
        let m = Mapping::CenterWidth(600.0, 1600.0);
        assert_eq!(m.map(-1000.0), 0);
        assert_eq!(m.map(5000.0), 255);
        assert_eq!(m.map(600.0), 128);
        assert_eq!(apply(&[-1000.0, 5000.0], m, true), vec![255, 0]);
    }

    #[test]
    fn auto_prefers_the_stored_window_and_falls_back_to_percentiles() {
        let v: Vec<f64> = (0..=1000).map(f64::from).collect();
        assert_eq!(mapping(Window::Auto, Some(StoredWindow::CenterWidth(1.0, 2.0)), &v, None), Mapping::CenterWidth(1.0, 2.0));
        assert_eq!(mapping(Window::Auto, None, &v, None), Mapping::Range(5.0, 995.0));
        let forced = mapping(Window::Percentile { low: 10.0, high: 90.0 }, Some(StoredWindow::MinMax(0.0, 1.0)), &v, None);
        assert_eq!(forced, Mapping::Range(100.0, 900.0));
        let nan = [f64::NAN, 1.0];
        assert_eq!(apply(&nan, Mapping::Range(0.0, 1.0), false), vec![0, 255]);
    }
}
