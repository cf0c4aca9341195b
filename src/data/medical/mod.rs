//! DICOM and NIfTI inputs. A file becomes one or more 2-D slices; a slice of a file with several is
//! named `FILE#INDEX` wherever a path is expected (datasets, `predict`, the gallery, the report), so
//! every part that takes a path takes a slice. Pixels are windowed to 8 bits by the run's `Imaging`.
//! Identifying attributes are never read out: patients become salted keys (`anon`).

pub mod anon;
pub mod dicom;
pub mod nifti;
pub mod window;

use crate::config::imaging::Imaging;
use crate::data::read::DecodeError;
use image::DynamicImage;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The medical formats tumorscope reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Dicom,
    Nifti,
}

/// A window a file stores.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StoredWindow {
    /// DICOM WindowCenter / WindowWidth.
    CenterWidth(f64, f64),
    /// NIfTI cal_min / cal_max.
    MinMax(f64, f64),
}

/// One decoded slice before windowing.
#[derive(Debug, Clone)]
pub enum Raw {
    /// Stored values (x fastest), with what turns them into 8 bits.
    Gray {
        width: u32,
        height: u32,
        values: Vec<f64>,
        slope: f64,
        intercept: f64,
        stored_window: Option<StoredWindow>,
        /// MONOCHROME1: high values are dark.
        invert: bool,
        /// Sorted values of the whole volume, for its percentiles (`None`: the slice's own).
        pool: Option<Arc<Vec<f64>>>,
    },
    /// A colour DICOM, already 8-bit.
    Rgb(image::RgbImage),
}

fn has_ext(path: &Path, exts: &[&str]) -> bool {
    let name = path.file_name().map(|n| n.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
    exts.iter().any(|e| name.ends_with(e))
}

/// The medical format of a file, by its name or (for a name without a known image extension) its
/// DICOM preamble.
pub fn format_of(path: &Path) -> Option<Format> {
    if has_ext(path, &[".nii", ".nii.gz"]) {
        return Some(Format::Nifti);
    }
    if has_ext(path, &[".dcm", ".dicom", ".dic"]) {
        return Some(Format::Dicom);
    }
    if has_ext(path, &[".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".txt", ".json", ".csv", ".md"]) {
        return None;
    }
    let mut head = [0u8; 132];
    use std::io::Read;
    let f = crate::data::read::open_regular(path).ok()?;
    f.take(132).read_exact(&mut head).ok()?;
    (&head[128..132] == b"DICM").then_some(Format::Dicom)
}

/// A medical file, or one slice of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub file: PathBuf,
    pub format: Format,
    /// `None`: the file's only (or middle) slice.
    pub slice: Option<usize>,
}

impl Source {
    /// `path` as a medical source: a DICOM or NIfTI file, or `FILE#INDEX` naming a slice of one.
    pub fn of(path: &Path) -> Option<Source> {
        if path.is_file() {
            return format_of(path).map(|format| Source { file: path.to_path_buf(), format, slice: None });
        }
        let s = path.to_str()?;
        let (file, index) = s.rsplit_once('#')?;
        let slice = index.parse::<usize>().ok()?;
        let file = PathBuf::from(file);
        let format = format_of(&file)?;
        Some(Source { file, format, slice: Some(slice) })
    }
}

/// The path naming slice `index` of `file`.
pub fn slice_path(file: &Path, index: usize) -> PathBuf {
    let mut s = file.as_os_str().to_os_string();
    s.push(format!("#{index}"));
    PathBuf::from(s)
}

/// `path` cut into slices when it is a DICOM or NIfTI file (`None` for any other file), from its
/// header: see `expand`.
pub fn expand_file(path: &Path, imaging: &Imaging, max_pixels: u64) -> Option<Result<Expanded, DecodeError>> {
    let format = format_of(path)?;
    Some(crate::data::read::read_file(path).and_then(|bytes| expand(path, format, &bytes, imaging, max_pixels)))
}

/// The paths a medical file becomes under `imaging.slices`: the file itself when it holds one slice,
/// else one `FILE#INDEX` per chosen slice. A note when a 4-D file's later volumes are left out.
fn expand(file: &Path, format: Format, bytes: &[u8], imaging: &Imaging, max_pixels: u64) -> Result<Expanded, DecodeError> {
    let (n, note, identity) = match format {
        Format::Dicom => {
            let (n, identity) = dicom::header(bytes, max_pixels)?;
            (n, None, identity)
        }
        Format::Nifti => {
            let (n, volumes) = nifti::slices_in(bytes, imaging.axis)?;
            let note = (volumes > 1).then(|| format!("{}: 4-D ({volumes} volumes); using the first", file.display()));
            (n, note, Identity { patient: Some(anon::key("file", &file.to_string_lossy())), identifying: false })
        }
    };
    let paths = if n <= 1 { vec![file.to_path_buf()] } else { imaging.slices.pick(n).into_iter().map(|i| slice_path(file, i)).collect() };
    Ok(Expanded { paths, note, identity })
}

/// Whom a file is about, from its header: a salted patient key (DICOM PatientID, else
/// StudyInstanceUID; a NIfTI file is its own group) and whether it carries identifying attributes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Identity {
    pub patient: Option<u64>,
    pub identifying: bool,
}

/// What a medical file becomes: its image paths, a note for the user, and whom it is about.
#[derive(Debug, Clone, PartialEq)]
pub struct Expanded {
    pub paths: Vec<PathBuf>,
    pub note: Option<String>,
    pub identity: Identity,
}

/// A volume read by this thread: its file, (size, time), the volume and its bytes' hash.
type CachedVolume = (PathBuf, (u64, u128), Arc<nifti::Volume>, u64);

thread_local! {
    /// The last NIfTI volume this thread read, by file, size and time, with its bytes' hash: the
    /// slices of one volume decode in a row, and the file is read and decompressed once for them all.
    static LAST_VOLUME: std::cell::RefCell<Option<CachedVolume>> = const { std::cell::RefCell::new(None) };
}

/// Drop the volume this thread keeps (a 256³ volume is 134 MB of values).
pub fn forget_volume() {
    LAST_VOLUME.with_borrow_mut(|c| *c = None);
}

/// Drop the volumes every worker thread keeps, once a data set is loaded.
pub fn forget_volumes() {
    forget_volume();
    rayon::broadcast(|_| forget_volume());
}

fn stamp(file: &Path) -> (u64, u128) {
    let m = std::fs::metadata(file).ok();
    let len = m.as_ref().map_or(0, |m| m.len());
    let time = m.and_then(|m| m.modified().ok()).and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos());
    (len, time)
}

fn fnv(bytes: &[u8]) -> u64 {
    crate::rng::fnv1a(bytes, crate::rng::FNV_OFFSET)
}

/// A NIfTI file's first volume and its bytes' hash, from this thread's cache when unchanged.
fn volume(file: &Path) -> Result<(Arc<nifti::Volume>, u64), DecodeError> {
    let st = stamp(file);
    let hit = LAST_VOLUME.with_borrow(|c| c.as_ref().filter(|(p, s, _, _)| p == file && *s == st).map(|(_, _, v, h)| (v.clone(), *h)));
    if let Some(hit) = hit {
        return Ok(hit);
    }
    let bytes = crate::data::read::read_file(file)?;
    let v = Arc::new(nifti::read(&bytes)?);
    let hash = fnv(&bytes);
    LAST_VOLUME.with_borrow_mut(|c| *c = Some((file.to_path_buf(), st, v.clone(), hash)));
    Ok((v, hash))
}

/// Slice `src.slice` (else the middle one) of a volume across the configured axis.
fn volume_slice(v: &nifti::Volume, src: &Source, imaging: &Imaging, max_pixels: u64) -> Result<Raw, DecodeError> {
    let index = src.slice.unwrap_or(nifti::slice_count(v, imaging.axis) / 2);
    let raw = nifti::slice(v, imaging.axis, index)?;
    if let Raw::Gray { width, height, .. } = &raw {
        crate::data::read::check_pixels(*width, *height, max_pixels)?;
    }
    Ok(raw)
}

/// A slice read from disk as an 8-bit image (grey for MR and CT, RGB for a colour DICOM), with its
/// content hash: the FNV-1a of its file's bytes, and of its index for a `FILE#INDEX` (slices of one
/// file are different images).
pub fn open(src: &Source, imaging: &Imaging, max_pixels: u64) -> Result<(DynamicImage, u64), DecodeError> {
    let (raw, hash) = match src.format {
        Format::Dicom => {
            let bytes = crate::data::read::read_file(&src.file)?;
            (dicom::frame(&bytes, src.slice.unwrap_or(0), max_pixels)?, fnv(&bytes))
        }
        Format::Nifti => {
            let (v, hash) = volume(&src.file)?;
            (volume_slice(&v, src, imaging, max_pixels)?, hash)
        }
    };
    let hash = src.slice.map_or(hash, |i| crate::rng::fnv1a(&(i as u64).to_le_bytes(), hash));
    Ok((to_image(raw, imaging)?, hash))
}

/// Window a slice's values to 8 bits.
fn to_image(raw: Raw, imaging: &Imaging) -> Result<DynamicImage, DecodeError> {
    match raw {
        Raw::Rgb(rgb) => Ok(DynamicImage::ImageRgb8(rgb)),
        Raw::Gray { width, height, values, slope, intercept, stored_window, invert, pool } => {
            let rescaled: Vec<f64> = values.iter().map(|&v| v * slope + intercept).collect();
            let m = window::mapping(imaging.window, stored_window, &rescaled, pool.as_deref().map(|p| p.as_slice()));
            let gray = image::GrayImage::from_raw(width, height, window::apply(&rescaled, m, invert))
                .ok_or_else(|| DecodeError::Content("slice size does not match its pixels".into()))?;
            Ok(DynamicImage::ImageLuma8(gray))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slice_is_named_by_its_file_and_index() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("brain.nii.gz");
        std::fs::write(&f, b"x").unwrap();
        let s = Source::of(&slice_path(&f, 12)).unwrap();
        assert_eq!((s.file.as_path(), s.format, s.slice), (f.as_path(), Format::Nifti, Some(12)));
        assert_eq!(Source::of(&f).unwrap().slice, None);
        assert!(Source::of(&t.path().join("x.jpg#3")).is_none());
        let dcm = t.path().join("IM0001");
        let mut bytes = vec![0u8; 128];
        bytes.extend_from_slice(b"DICM");
        std::fs::write(&dcm, &bytes).unwrap();
        assert_eq!(format_of(&dcm), Some(Format::Dicom));
    }
}
