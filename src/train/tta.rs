//! Test-time augmentation: average the softmax over views of each image. Views: the image, its mirror
//! (`flip`), and shifts by N pixels left, right, up and down with black fill (`shift=N`), each also
//! mirrored when `flip` is on. Spec strings: `flip` (the default of `--tta`), `shift=4`, `flip,shift=4`.

use tch::Tensor;

pub use crate::config::tta::Tta;

/// `x` [B, C, H, W] moved by (dx, dy) pixels, the uncovered edge black (zero after normalisation is
/// not black, so this runs on the 0–255 input).
pub fn shifted(x: &Tensor, dx: i64, dy: i64) -> Result<Tensor, tch::TchError> {
    let size = x.size();
    let (h, w) = (size[2], size[3]);
    // Pad on the side the image moves away from, then crop back to H×W.
    let padded = x.f_constant_pad_nd([dx.max(0), (-dx).max(0), dy.max(0), (-dy).max(0)].as_slice())?;
    padded.f_narrow(3, (-dx).max(0), w)?.f_narrow(2, (-dy).max(0), h)
}

/// Every view of a 0–255 batch.
pub fn views(x: &Tensor, t: Tta) -> Result<Vec<Tensor>, tch::TchError> {
    let mut base = vec![x.shallow_clone()];
    if t.shift > 0 {
        for (dx, dy) in [(t.shift, 0), (-t.shift, 0), (0, t.shift), (0, -t.shift)] {
            base.push(shifted(x, dx, dy)?);
        }
    }
    let mut out = vec![];
    for v in base {
        if t.flip {
            out.push(v.f_flip([3i64].as_slice())?);
        }
        out.push(v);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_or_say_why_not() {
        assert_eq!(Tta::parse("flip"), Ok(Tta { flip: true, shift: 0 }));
        assert_eq!(Tta::parse("flip,shift=4"), Ok(Tta { flip: true, shift: 4 }));
        assert_eq!(Tta::parse("shift=2").unwrap().views(), 5);
        assert_eq!(Tta::parse("flip,shift=2").unwrap().views(), 10);
        assert!(Tta::parse("rotate").unwrap_err().to_string().contains("unknown view 'rotate'"));
        assert!(Tta::parse("shift=0").unwrap_err().to_string().contains("from 1 to 32"));
        assert!(Tta::parse("").is_err());
    }

    #[test]
    fn shifts_move_the_image_and_fill_black() {
        let x = Tensor::arange(16, (tch::Kind::Float, tch::Device::Cpu)).view([1, 1, 4, 4]) + 1.0;
        let right = shifted(&x, 1, 0).unwrap();
        assert_eq!(right.size(), vec![1, 1, 4, 4]);
        assert_eq!(right.double_value(&[0, 0, 0, 0]), 0.0, "the uncovered column is black");
        assert_eq!(right.double_value(&[0, 0, 0, 1]), x.double_value(&[0, 0, 0, 0]));
        let up = shifted(&x, 0, -1).unwrap();
        assert_eq!(up.double_value(&[0, 0, 0, 0]), x.double_value(&[0, 0, 1, 0]));
        assert_eq!(up.double_value(&[0, 0, 3, 2]), 0.0);
        assert_eq!(views(&x, Tta { flip: true, shift: 1 }).unwrap().len(), 10);
    }
}
