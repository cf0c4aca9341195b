//! Test-time augmentation as a setting: which views of each image are scored (the image, its mirror
//! with `flip`, shifts by N pixels with `shift=N`). Parsed and described here, without tch; the views
//! themselves are made in `train::tta`.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tta {
    pub flip: bool,
    /// Pixels (at the network's input size); 0: no shifted views.
    pub shift: i64,
}

impl Tta {
    pub fn parse(spec: &str) -> Result<Tta, String> {
        let mut t = Tta { flip: false, shift: 0 };
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.split_once('=') {
                None if part == "flip" => t.flip = true,
                Some(("shift", n)) => {
                    t.shift = n
                        .parse::<i64>()
                        .ok()
                        .filter(|n| (1..=32).contains(n))
                        .ok_or_else(|| format!("--tta {spec}: shift={n} must be a whole number of pixels from 1 to 32"))?
                }
                _ => return Err(format!("--tta {spec}: unknown view '{part}' (expected flip, shift=N or both, comma-separated)")),
            }
        }
        if !t.flip && t.shift == 0 {
            return Err(format!("--tta {spec}: no views (expected flip, shift=N or both)"));
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
