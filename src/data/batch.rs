//! Batches of images as tensors: channels-last memory (libtorch's fast path for depthwise convs on CPU),
//! input scaled as the Lite0 weights expect: (x − 127) / 128.

use super::ImageSet;
use tch::{Device, Kind, Tensor};

/// Raw 0–255 float batch [B,3,H,W] with channels-last strides, plus labels.
pub fn gather(set: &ImageSet, idx: &[usize], device: Device) -> Result<(Tensor, Tensor), tch::TchError> {
    let per = set.bytes_per_image();
    let mut bytes = Vec::with_capacity(idx.len() * per);
    for &i in idx {
        bytes.extend_from_slice(set.image(i));
    }
    let s = set.size as i64;
    let x = Tensor::f_from_data_size(&bytes, &[idx.len() as i64, s, s, 3], Kind::Uint8)?
        .f_to_device(device)?
        .f_to_kind(Kind::Float)?
        .f_permute([0, 3, 1, 2])?;
    let y = Tensor::from_slice(&idx.iter().map(|&i| set.labels[i] as i64).collect::<Vec<_>>()).f_to_device(device)?;
    Ok((x, y))
}

/// A batch built by `pipeline::build` (normalised NHWC floats) as the network's input [B,3,H,W] with
/// channels-last memory, plus labels. One copy into libtorch, no layout change.
pub fn from_built(b: &super::pipeline::Built, size: u32, device: Device) -> Result<(Tensor, Tensor), tch::TchError> {
    let s = size as i64;
    let x = Tensor::f_from_slice(&b.pixels)?.f_view([b.n as i64, s, s, 3])?.f_to_device(device)?.f_permute([0, 3, 1, 2])?;
    let y = Tensor::f_from_slice(&b.labels)?.f_to_device(device)?;
    Ok((x, y))
}

/// Make a NCHW tensor channels-last in memory (same logical shape).
pub fn channels_last(x: &Tensor) -> Result<Tensor, tch::TchError> {
    x.f_permute([0, 2, 3, 1])?.f_contiguous()?.f_permute([0, 3, 1, 2])
}

/// Scale 0–255 to the network's input range.
pub fn normalize(x: &Tensor) -> Tensor {
    (x - super::pipeline::INPUT_OFFSET as f64) / super::pipeline::INPUT_SCALE as f64
}

/// Index chunks of at most `batch` items.
pub fn chunks(idx: &[usize], batch: usize) -> impl Iterator<Item = &[usize]> {
    idx.chunks(batch.max(1))
}
