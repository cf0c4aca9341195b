//! Figures made of MRI slices: a sample from each label, and the most confident misclassifications.
//! Each slice is a tile with caption lines under it; a file that cannot be read becomes a grey tile
//! that says so, never a failed report.

use super::figures::{Area, font};
use super::palette::{BACKGROUND, GRID, MUTED, PANEL, TEXT};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

pub const TILE: u32 = 180;
const CAPTION: u32 = 52;
const PAD: u32 = 14;
const TITLE: u32 = 44;

/// One slice and the lines under it.
pub struct Tile {
    /// RGB, already `TILE`×`TILE`; `Err` says why there is no picture.
    pub image: Result<image::RgbImage, String>,
    pub lines: Vec<(String, RGBColor)>,
}

impl Tile {
    /// Read and fit `path` into a tile.
    pub fn load(path: &std::path::Path, reading: &crate::data::decode::Reading, lines: Vec<(String, RGBColor)>) -> Tile {
        Tile::load_with_cam(path, reading, None, lines)
    }

    /// As `load`, with a Grad-CAM map blended over the image when one is given.
    pub fn load_with_cam(
        path: &std::path::Path,
        reading: &crate::data::decode::Reading,
        cam: Option<&crate::run::explain::CamMap>,
        lines: Vec<(String, RGBColor)>,
    ) -> Tile {
        let image = crate::data::decode::open_rgb(path, reading)
            .map(|img| match cam {
                Some(c) => super::overlay::overlay(&img, &c.map, c.h, c.w, 0.55),
                None => img,
            })
            .map(|img| image::imageops::resize(&img, TILE, TILE, image::imageops::FilterType::Triangle))
            .map_err(|e| format!("{}: {e}", path.display()));
        Tile { image, lines }
    }
}

/// Pixel size of a grid of `n` tiles in `cols` columns.
pub fn grid_size(n: usize, cols: usize) -> (u32, u32) {
    let cols = cols.clamp(1, n.max(1)) as u32;
    let rows = n.max(1).div_ceil(cols as usize) as u32;
    (PAD + cols * (TILE + PAD), TITLE + rows * (TILE + CAPTION + PAD))
}

/// Draw `tiles` in `cols` columns under `title`.
pub fn grid<DB: DrawingBackend>(root: &Area<DB>, title: &str, tiles: &[Tile], cols: usize) -> Result<(), super::figures::DrawError> {
    let e = |x: plotters::drawing::DrawingAreaErrorKind<DB::ErrorType>| super::figures::err(x);
    root.fill(&BACKGROUND).map_err(e)?;
    let (w, _) = root.dim_in_pixel();
    root.draw(&Text::new(title.to_string(), (w as i32 / 2, 24), font(17, TEXT).pos(Pos::new(HPos::Center, VPos::Center)))).map_err(e)?;
    let cols = cols.clamp(1, tiles.len().max(1));
    for (k, t) in tiles.iter().enumerate() {
        let x = (PAD + (k % cols) as u32 * (TILE + PAD)) as i32;
        let y = (TITLE + (k / cols) as u32 * (TILE + CAPTION + PAD)) as i32;
        match &t.image {
            Ok(img) => {
                let el = BitMapElement::with_owned_buffer((x, y), (TILE, TILE), img.as_raw().clone())
                    .ok_or_else(|| super::figures::err("tile of the wrong size"))?;
                root.draw(&el).map_err(e)?;
            }
            Err(why) => {
                root.draw(&Rectangle::new([(x, y), (x + TILE as i32, y + TILE as i32)], PANEL.filled())).map_err(e)?;
                let short: String = why.chars().rev().take(26).collect::<Vec<_>>().into_iter().rev().collect();
                for (i, line) in ["cannot read", short.as_str()].into_iter().enumerate() {
                    let pos = (x + TILE as i32 / 2, y + TILE as i32 / 2 + i as i32 * 16 - 8);
                    root.draw(&Text::new(line.to_string(), pos, font(12, MUTED).pos(Pos::new(HPos::Center, VPos::Center)))).map_err(e)?;
                }
            }
        }
        root.draw(&Rectangle::new([(x, y), (x + TILE as i32, y + TILE as i32)], GRID.stroke_width(1))).map_err(e)?;
        for (i, (line, color)) in t.lines.iter().enumerate() {
            let pos = (x + TILE as i32 / 2, y + TILE as i32 + 14 + i as i32 * 18);
            root.draw(&Text::new(line.clone(), pos, font(14, *color).pos(Pos::new(HPos::Center, VPos::Center)))).map_err(e)?;
        }
    }
    Ok(())
}
