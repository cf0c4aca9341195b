//! NIfTI-1 volumes (`.nii`, `.nii.gz`) with the `nifti` crate. The header is read first and checked;
//! only the bytes it declares for the first 3-D volume are decompressed, so a gzip bomb or a header
//! that lies about its size is refused in one line instead of filling memory.

use super::{Raw, StoredWindow};
use crate::config::imaging::SliceAxis;
use crate::data::read::DecodeError;
use nifti::{InMemNiftiVolume, IntoNdArray, NiftiHeader};
use std::io::Read;

fn content(m: impl Into<String>) -> DecodeError {
    DecodeError::Content(m.into())
}

/// The most voxels one volume may hold (268 million; 512³ is 134 million): far above any MRI, far
/// below a bomb.
pub const MAX_VOXELS: usize = 1 << 28;

const HEADER_BYTES: usize = 348;

/// A 3-D volume's values (scaled by scl_slope/scl_inter, as nibabel's `get_fdata()`), x fastest.
#[derive(Debug, Clone)]
pub struct Volume {
    pub dims: [usize; 3],
    pub values: Vec<f64>,
    /// Voxel axis → patient axis: `rotation[world][voxel]` (from sform, else qform, else identity).
    pub rotation: [[f64; 3]; 3],
    pub stored_window: Option<StoredWindow>,
    /// Set when the file had more than one volume (4-D): how many.
    pub volumes: usize,
    /// A sorted sample of the volume's values, for percentile windows of the whole volume.
    pub pool: std::sync::Arc<Vec<f64>>,
}

fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x1f, 0x8b])
}

/// At most `limit` bytes of the file, decompressed when it is gzip.
fn leading(bytes: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    if !is_gzip(bytes) {
        return Ok(bytes[..bytes.len().min(limit)].to_vec());
    }
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .take(limit as u64)
        .read_to_end(&mut out)
        .map_err(|e| content(format!("corrupt gzip stream ({e})")))?;
    Ok(out)
}

/// The header, checked: dimensions, data type and the size it declares.
pub fn header(bytes: &[u8]) -> Result<NiftiHeader, DecodeError> {
    let head = leading(bytes, HEADER_BYTES)?;
    if head.len() < HEADER_BYTES {
        return Err(content(format!("not a NIfTI file (header is {} of {HEADER_BYTES} bytes)", head.len())));
    }
    let h = NiftiHeader::from_reader(std::io::Cursor::new(&head)).map_err(|e| content(format!("not a NIfTI-1 file ({e})")))?;
    let ndim = h.dim[0] as usize;
    if !(2..=7).contains(&ndim) || h.dim[1..=ndim].contains(&0) {
        return Err(content(format!("NIfTI header has impossible dimensions {:?}", &h.dim[..=ndim.min(7)])));
    }
    h.data_type().map_err(|_| content(format!("NIfTI data type {} is not supported", h.datatype)))?;
    Ok(h)
}

fn dims_of(h: &NiftiHeader) -> ([usize; 3], usize) {
    let ndim = h.dim[0] as usize;
    let d = |i: usize| if i <= ndim { h.dim[i] as usize } else { 1 };
    ([d(1), d(2), d(3)], (4..=ndim).map(d).product())
}

/// Voxels in one volume, refused above `MAX_VOXELS`.
fn voxels(dims: [usize; 3]) -> Result<usize, DecodeError> {
    let n = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).filter(|&n| n <= MAX_VOXELS);
    n.ok_or_else(|| content(format!("NIfTI volume too large ({}×{}×{} voxels)", dims[0], dims[1], dims[2])))
}

fn bytes_per_voxel(h: &NiftiHeader) -> usize {
    (h.bitpix.max(0) as usize).div_ceil(8)
}

/// Where the voxels start.
fn offset(h: &NiftiHeader) -> usize {
    (h.vox_offset.max(HEADER_BYTES as f32) as usize).max(HEADER_BYTES)
}

fn short(stored: usize, need: usize, h: &NiftiHeader, dims: [usize; 3]) -> DecodeError {
    let off = offset(h);
    content(format!(
        "NIfTI data shorter than its header says ({} of {} bytes for {}×{}×{} voxels)",
        stored.saturating_sub(off),
        need - off,
        dims[0],
        dims[1],
        dims[2]
    ))
}

/// Read the first 3-D volume.
pub fn read(bytes: &[u8]) -> Result<Volume, DecodeError> {
    let mut h = header(bytes)?;
    let (dims, volumes) = dims_of(&h);
    let voxels = voxels(dims)?;
    let offset = offset(&h);
    let need = voxels * bytes_per_voxel(&h);
    let all = leading(bytes, offset + need)?;
    if all.len() < offset + need {
        return Err(short(all.len(), offset + need, &h, dims));
    }
    h.dim = [3, dims[0] as u16, dims[1] as u16, dims[2] as u16, 1, 1, 1, 1];
    if h.scl_slope == 0.0 || !h.scl_slope.is_finite() {
        (h.scl_slope, h.scl_inter) = (1.0, 0.0);
    }
    let vol = InMemNiftiVolume::from_raw_data(&h, all[offset..offset + need].to_vec())
        .map_err(|e| content(format!("unreadable NIfTI data ({e})")))?;
    let arr = vol.into_ndarray::<f64>().map_err(|e| content(format!("unreadable NIfTI data ({e})")))?;
    // Fortran order: x fastest, as the file stores it.
    let values: Vec<f64> = arr.t().iter().copied().collect();
    let stored_window = (h.cal_max > h.cal_min && h.cal_min.is_finite() && h.cal_max.is_finite())
        .then_some(StoredWindow::MinMax(h.cal_min as f64, h.cal_max as f64));
    let pool = std::sync::Arc::new(super::window::sorted_sample(&values));
    Ok(Volume { dims, values, rotation: header_rotation(&h), stored_window, volumes, pool })
}

/// The voxel-to-patient rotation (scale included; only directions matter here).
pub fn header_rotation(h: &NiftiHeader) -> [[f64; 3]; 3] {
    if h.sform_code > 0 {
        let r = |row: [f32; 4]| [row[0] as f64, row[1] as f64, row[2] as f64];
        return [r(h.srow_x), r(h.srow_y), r(h.srow_z)];
    }
    if h.qform_code > 0 {
        let (b, c, d) = (h.quatern_b as f64, h.quatern_c as f64, h.quatern_d as f64);
        let a = (1.0 - (b * b + c * c + d * d)).max(0.0).sqrt();
        let qfac = if h.pixdim[0] < 0.0 { -1.0 } else { 1.0 };
        return [
            [a * a + b * b - c * c - d * d, 2.0 * (b * c - a * d), qfac * 2.0 * (b * d + a * c)],
            [2.0 * (b * c + a * d), a * a + c * c - b * b - d * d, qfac * 2.0 * (c * d - a * b)],
            [2.0 * (b * d - a * c), 2.0 * (c * d + a * b), qfac * (a * a + d * d - b * b - c * c)],
        ];
    }
    [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
}

/// Which voxel axis lies closest to each patient axis (x, y, z), each voxel axis used once.
pub fn axis_map(rot: &[[f64; 3]; 3]) -> [usize; 3] {
    let mut best = ([0, 1, 2], f64::MIN);
    for p in [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]] {
        let score: f64 = (0..3).map(|w| rot[w][p[w]].abs()).sum();
        if score > best.1 + 1e-9 {
            best = (p, score);
        }
    }
    best.0
}

/// How many slices the volume has across `axis`.
pub fn slice_count(v: &Volume, axis: SliceAxis) -> usize {
    count(v.dims, &v.rotation, axis)
}

/// How many slices a volume of `dims` oriented by `rotation` has across `axis`.
pub fn count(dims: [usize; 3], rotation: &[[f64; 3]; 3], axis: SliceAxis) -> usize {
    dims[axis_map(rotation)[axis.world_axis()]]
}

/// Slices across `axis` and how many volumes, from the header alone.
pub fn slices_in(bytes: &[u8], axis: SliceAxis) -> Result<(usize, usize), DecodeError> {
    let h = header(bytes)?;
    let (dims, volumes) = dims_of(&h);
    let need = offset(&h) + voxels(dims)? * bytes_per_voxel(&h);
    // The stored length (a gzip stream's trailer gives it, modulo 4 GiB) must hold the first volume.
    let stored = if is_gzip(bytes) {
        bytes.len().checked_sub(4).map(|at| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize)
    } else {
        Some(bytes.len())
    };
    if let Some(stored) = stored.filter(|&s| s < need && need < 1 << 32) {
        return Err(short(stored, need, &h, dims));
    }
    Ok((count(dims, &header_rotation(&h), axis), volumes))
}

/// Slice `index` across `axis`, laid out as a radiologist views it: the in-plane patient axis that is
/// x (y for sagittal) runs across, the other runs up (towards head or front).
pub fn slice(v: &Volume, axis: SliceAxis, index: usize) -> Result<Raw, DecodeError> {
    let map = axis_map(&v.rotation);
    let cut_world = axis.world_axis();
    let (across_world, up_world) = match axis {
        SliceAxis::Axial => (0, 1),
        SliceAxis::Coronal => (0, 2),
        SliceAxis::Sagittal => (1, 2),
    };
    let (cut, across, up) = (map[cut_world], map[across_world], map[up_world]);
    if index >= v.dims[cut] {
        return Err(content(format!("slice {index} is out of range (the volume has {} along that axis)", v.dims[cut])));
    }
    let (w, h) = (v.dims[across], v.dims[up]);
    let flip_across = v.rotation[across_world][across] < 0.0;
    let flip_up = v.rotation[up_world][up] >= 0.0; // image rows run downwards
    let stride = [1, v.dims[0], v.dims[0] * v.dims[1]];
    let mut values = Vec::with_capacity(w * h);
    for row in 0..h {
        let j = if flip_up { h - 1 - row } else { row };
        for col in 0..w {
            let i = if flip_across { w - 1 - col } else { col };
            values.push(v.values[index * stride[cut] + i * stride[across] + j * stride[up]]);
        }
    }
    Ok(Raw::Gray {
        width: w as u32,
        height: h as u32,
        values,
        slope: 1.0,
        intercept: 0.0,
        stored_window: v.stored_window,
        invert: false,
        pool: Some(v.pool.clone()),
    })
}
