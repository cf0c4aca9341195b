//! A Grad-CAM map drawn over the image: upsampled bilinearly to the image's size and alpha-blended in
//! the article's red palette (dark red where the evidence is weak, bright red where it is strongest).
//! No tch: the map arrives as numbers.

use super::palette::RED;
use image::{Rgb, RgbImage};

/// The map (row-major `h`×`w`, 0..1) sampled at image pixel (`x`, `y`) of a `width`×`height` image,
/// bilinearly, with map cells centred on their pixels.
pub fn sample(map: &[f32], h: usize, w: usize, width: u32, height: u32, x: u32, y: u32) -> f32 {
    if h == 0 || w == 0 || map.len() < h * w {
        return 0.0;
    }
    let fx = ((x as f32 + 0.5) * w as f32 / width as f32 - 0.5).clamp(0.0, (w - 1) as f32);
    let fy = ((y as f32 + 0.5) * h as f32 / height as f32 - 0.5).clamp(0.0, (h - 1) as f32);
    let (x0, y0) = (fx.floor() as usize, fy.floor() as usize);
    let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
    let (tx, ty) = (fx - x0 as f32, fy - y0 as f32);
    let at = |yy: usize, xx: usize| map[yy * w + xx];
    let top = at(y0, x0) * (1.0 - tx) + at(y0, x1) * tx;
    let bottom = at(y1, x0) * (1.0 - tx) + at(y1, x1) * tx;
    top * (1.0 - ty) + bottom * ty
}

/// The red-palette colour of strength `t` in 0..1: its three saturated reds, darkest to brightest
/// (its palest pink would vanish over bright tissue).
fn red(t: f32) -> [f32; 3] {
    let stops = [RED[1], RED[2], RED[3]];
    let x = t.clamp(0.0, 1.0) * (stops.len() - 1) as f32;
    let k = (x.floor() as usize).min(stops.len() - 2);
    let f = x - k as f32;
    let (a, b) = (stops[k], stops[k + 1]);
    let mix = |p: u8, q: u8| p as f32 + (q as f32 - p as f32) * f;
    [mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2)]
}

/// `img` with the map blended over it: at strength `t` the red palette covers `alpha × t` of the pixel.
pub fn overlay(img: &RgbImage, map: &[f32], h: usize, w: usize, alpha: f32) -> RgbImage {
    let (width, height) = img.dimensions();
    RgbImage::from_fn(width, height, |x, y| {
        let t = sample(map, h, w, width, height, x, y);
        let a = (alpha * t).clamp(0.0, 1.0);
        let c = red(t);
        let p = img.get_pixel(x, y).0;
        Rgb([0, 1, 2].map(|i| (p[i] as f32 * (1.0 - a) + c[i] * a).round() as u8))
    })
}

/// Where the upsampled map peaks, in pixels of a `width`×`height` image.
pub fn peak(map: &[f32], h: usize, w: usize, width: u32, height: u32) -> (u32, u32) {
    let mut best = (0, 0, f32::MIN);
    for y in 0..height {
        for x in 0..width {
            let v = sample(map, h, w, width, height, x, y);
            if v > best.2 {
                best = (x, y, v);
            }
        }
    }
    (best.0, best.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_upsamples_and_the_peak_is_found() {
        // A 2×2 map with its maximum bottom-right, over an 8×8 image.
        let map = [0.0, 0.2, 0.4, 1.0];
        assert_eq!(sample(&map, 2, 2, 8, 8, 0, 0), 0.0);
        assert_eq!(sample(&map, 2, 2, 8, 8, 7, 7), 1.0);
        let mid = sample(&map, 2, 2, 8, 8, 4, 4);
        assert!(mid > 0.0 && mid < 1.0);
        assert!(peak(&map, 2, 2, 8, 8).0 >= 6 && peak(&map, 2, 2, 8, 8).1 >= 6);
        assert_eq!(sample(&[], 0, 0, 8, 8, 1, 1), 0.0);
    }

    #[test]
    fn overlay_tints_only_where_the_map_is_strong() {
        let img = RgbImage::from_pixel(8, 8, Rgb([40, 40, 40]));
        let out = overlay(&img, &[0.0, 0.0, 0.0, 1.0], 2, 2, 0.6);
        assert_eq!(out.get_pixel(0, 0).0, [40, 40, 40], "no evidence, no tint");
        let hot = out.get_pixel(7, 7).0;
        assert!(hot[0] > hot[1] + 40, "strong evidence is red: {hot:?}");
    }
}
