//! Test-time augmentation as a setting: which views of each image are scored (the image, its mirror
//! with `flip`, shifts by N pixels with `shift=N`). Parsed and described here, without tch; the views
//! themselves are made in `train::tta`.

/// A `--tta` spec that names no views, or views that do not exist.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TtaError {
    #[error("--tta {spec}: shift={n} must be a whole number of pixels from 1 to 32")]
    Shift { spec: String, n: String },
    #[error("--tta {spec}: unknown view '{part}' (expected flip, shift=N or both, comma-separated)")]
    Unknown { spec: String, part: String },
    #[error("--tta {0}: no views (expected flip, shift=N or both)")]
    Empty(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tta {
    pub flip: bool,
    /// Pixels (at the network's input size); 0: no shifted views.
    pub shift: i64,
}

impl Tta {
    pub fn parse(spec: &str) -> Result<Tta, TtaError> {
        let mut t = Tta { flip: false, shift: 0 };
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.split_once('=') {
                None if part == "flip" => t.flip = true,
                Some(("shift", n)) => {
                    t.shift = n
                        .parse::<i64>()
                        .ok()
                        .filter(|n| (1..=32).contains(n))
                        .ok_or_else(|| TtaError::Shift { spec: spec.to_string(), n: n.to_string() })?
                }
                _ => return Err(TtaError::Unknown { spec: spec.to_string(), part: part.to_string() }),
            }
        }
        if !t.flip && t.shift == 0 {
            return Err(TtaError::Empty(spec.to_string()));
        }
        Ok(t)
    }

    /// How many views each image is scored in.
    pub fn views(&self) -> usize {
        let base = if self.shift > 0 { 5 } else { 1 };
        base * if self.flip { 2 } else { 1 }
    }

    pub fn describe(&self) -> String {
        match (self.flip, self.shift) {
            (true, 0) => "TTA: mirror (2 views)".into(),
            (false, s) => format!("TTA: shifts of {s} px ({} views)", self.views()),
            (true, s) => format!("TTA: mirror and shifts of {s} px ({} views)", self.views()),
        }
    }
}
