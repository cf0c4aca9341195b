//! The article's palettes, for figures: dark for the page, green for training and the heatmap, red for
//! validation and errors.

use plotters::style::RGBColor;

pub const DARK: [RGBColor; 5] = [
    RGBColor(0x1F, 0x1F, 0x1F),
    RGBColor(0x31, 0x31, 0x31),
    RGBColor(0x63, 0x63, 0x63),
    RGBColor(0xAE, 0xAE, 0xAE),
    RGBColor(0xDA, 0xDA, 0xDA),
];
pub const RED: [RGBColor; 5] = [
    RGBColor(0x33, 0x13, 0x13),
    RGBColor(0x58, 0x26, 0x26),
    RGBColor(0x9E, 0x17, 0x17),
    RGBColor(0xD3, 0x51, 0x51),
    RGBColor(0xE9, 0xB4, 0xB4),
];
pub const GREEN: [RGBColor; 5] = [
    RGBColor(0x01, 0x41, 0x1C),
    RGBColor(0x4B, 0x6F, 0x44),
    RGBColor(0x4F, 0x79, 0x42),
    RGBColor(0x74, 0xC3, 0x65),
    RGBColor(0xD0, 0xF0, 0xC0),
];

pub const BACKGROUND: RGBColor = DARK[0];
pub const PANEL: RGBColor = DARK[1];
pub const GRID: RGBColor = DARK[2];
pub const MUTED: RGBColor = DARK[3];
pub const TEXT: RGBColor = DARK[4];
pub const TRAIN: RGBColor = GREEN[3];
pub const VALIDATION: RGBColor = RED[3];

/// Perceived brightness (ITU-R BT.601 luma), 0–255.
pub fn luma(c: RGBColor) -> f64 {
    0.299 * c.0 as f64 + 0.587 * c.1 as f64 + 0.114 * c.2 as f64
}

/// The heatmap scale: from the page background through the green palette, darkest to lightest. Its
/// luma rises monotonically, so a brighter cell always means a larger count.
pub fn heat(t: f64) -> RGBColor {
    let stops = [BACKGROUND, GREEN[0], GREEN[1], GREEN[2], GREEN[3], GREEN[4]];
    let t = if t.is_finite() { t.clamp(0.0, 1.0) } else { 0.0 };
    let x = t * (stops.len() - 1) as f64;
    let k = (x.floor() as usize).min(stops.len() - 2);
    let f = x - k as f64;
    let mix = |a: u8, b: u8| (a as f64 + (b as f64 - a as f64) * f).round() as u8;
    let (a, b) = (stops[k], stops[k + 1]);
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Text that reads on a cell of colour `c`.
pub fn text_on(c: RGBColor) -> RGBColor {
    if luma(c) > 128.0 { BACKGROUND } else { TEXT }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heat_scale_brightens_with_the_count() {
        let mut last = -1.0;
        // Steps of a fifth of a palette segment: finer ones may round to the same colour.
        for k in 0..=25 {
            let l = luma(heat(k as f64 / 25.0));
            assert!(l > last, "luma falls at {k}: {l} after {last}");
            last = l;
        }
        assert_eq!(heat(0.0), BACKGROUND);
        assert_eq!(heat(1.0), GREEN[4]);
        assert_eq!(heat(f64::NAN), BACKGROUND);
    }
}
