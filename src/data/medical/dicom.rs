//! DICOM (Part 10 files) with the dicom-rs crates: the stored pixel values of a frame, the rescale and
//! the file's window, and the few attributes tumorscope needs. No identifying attribute leaves this
//! file except as a salted hash (`anon`) or a count.

use super::{Raw, StoredWindow};
use crate::data::read::DecodeError;
use dicom_dictionary_std::tags;
use dicom_object::{DefaultDicomObject, OpenFileOptions};
use dicom_pixeldata::{ConvertOptions, ModalityLutOption, PixelDecoder};

fn content(m: impl Into<String>) -> DecodeError {
    DecodeError::Content(m.into())
}

/// The bytes after the 128-byte preamble and the `DICM` magic, where dicom-rs starts reading.
fn after_preamble(bytes: &[u8]) -> Result<&[u8], DecodeError> {
    if bytes.len() >= 132 && &bytes[128..132] == b"DICM" {
        Ok(&bytes[128..])
    } else if bytes.starts_with(b"DICM") {
        Ok(bytes)
    } else {
        Err(content("not a DICOM file (no DICM preamble)"))
    }
}

/// The innermost cause of a dicom-rs error, in words (its outer layers say only "could not read").
fn cause(e: &dyn std::error::Error) -> String {
    let mut inner = e;
    while let Some(s) = inner.source() {
        inner = s;
    }
    inner.to_string()
}

/// Parse a whole file (pixel data included) or only its header.
pub fn open(bytes: &[u8], header_only: bool) -> Result<DefaultDicomObject, DecodeError> {
    let mut opts = OpenFileOptions::new();
    if header_only {
        opts = opts.read_until(tags::PIXEL_DATA);
    }
    opts.from_reader(after_preamble(bytes)?).map_err(|e| {
        let why = cause(&e);
        if why.to_lowercase().contains("transfer syntax") {
            content(format!("unsupported DICOM transfer syntax ({why})"))
        } else if why.contains("fill whole buffer") || why.to_lowercase().contains("eof") {
            content(format!("truncated DICOM file ({why})"))
        } else {
            content(format!("corrupt DICOM file ({why})"))
        }
    })
}

fn text(obj: &DefaultDicomObject, tag: dicom_core::Tag) -> Option<String> {
    let s = obj.element(tag).ok()?.to_str().ok()?.trim().trim_end_matches('\0').to_string();
    (!s.is_empty()).then_some(s)
}

fn number(obj: &DefaultDicomObject, tag: dicom_core::Tag) -> Option<u64> {
    obj.element(tag).ok()?.to_int::<u64>().ok()
}

/// The transfer syntax's name and UID, for messages.
pub fn transfer_syntax(obj: &DefaultDicomObject) -> String {
    use dicom_encoding::TransferSyntaxIndex;
    let uid = obj.meta().transfer_syntax().trim_end_matches('\0').to_string();
    match dicom_transfer_syntax_registry::TransferSyntaxRegistry.get(&uid) {
        Some(ts) => format!("{} ({uid})", ts.name()),
        None => format!("unknown transfer syntax {uid}"),
    }
}

/// Rows, columns and frames from the header, checked against the pixel limit before any pixel is
/// decoded.
pub fn geometry(obj: &DefaultDicomObject, max_pixels: u64) -> Result<(u32, u32, usize), DecodeError> {
    if obj.element(tags::PIXEL_DATA).is_err() && obj.element(tags::ROWS).is_err() {
        let what = text(obj, tags::MODALITY).map(|m| format!(", modality {m}")).unwrap_or_default();
        return Err(content(format!("DICOM file has no pixel data (not an image{what}: a report or other non-image object)")));
    }
    let rows = number(obj, tags::ROWS).ok_or_else(|| content("DICOM image without Rows"))?;
    let cols = number(obj, tags::COLUMNS).ok_or_else(|| content("DICOM image without Columns"))?;
    let frames = text(obj, tags::NUMBER_OF_FRAMES).and_then(|s| s.parse::<u64>().ok()).unwrap_or(1).max(1);
    let (w, h) = (u32::try_from(cols).unwrap_or(u32::MAX), u32::try_from(rows).unwrap_or(u32::MAX));
    crate::data::read::check_pixels(w, h, max_pixels)?;
    Ok((w, h, usize::try_from(frames).unwrap_or(usize::MAX)))
}

/// From the header alone: the number of frames (slices) a file holds, and whom it is about.
pub fn header(bytes: &[u8], max_pixels: u64) -> Result<(usize, super::Identity), DecodeError> {
    let obj = open(bytes, true)?;
    Ok((geometry(&obj, max_pixels)?.2, identity(&obj)))
}

/// The number of frames (slices) a file holds, from its header.
pub fn frames(bytes: &[u8], max_pixels: u64) -> Result<usize, DecodeError> {
    Ok(header(bytes, max_pixels)?.0)
}

/// One frame: its stored values (before the rescale, as pydicom's `pixel_array`), or RGB pixels for a
/// colour file, with the rescale and the file's window.
pub fn frame(bytes: &[u8], index: usize, max_pixels: u64) -> Result<Raw, DecodeError> {
    let obj = open(bytes, false)?;
    let (w, h, frames) = geometry(&obj, max_pixels)?;
    if obj.element(tags::PIXEL_DATA).is_err() {
        return Err(content("DICOM file has no pixel data (not an image: a report or other non-image object)"));
    }
    if index >= frames {
        return Err(content(format!("frame {index} is out of range (the file has {frames})")));
    }
    let undecodable = |e: dicom_pixeldata::Error| content(format!("cannot decode {}: {}", transfer_syntax(&obj), cause(&e)));
    let pd = obj.decode_pixel_data_frame(index as u32).map_err(undecodable)?;
    if (pd.columns(), pd.rows()) != (w, h) {
        return Err(content("DICOM pixel data does not match its Rows and Columns"));
    }
    if pd.samples_per_pixel() != 1 {
        let px: Vec<u8> = pd.to_vec_frame_with_options(0, &ConvertOptions::new().force_8bit()).map_err(undecodable)?;
        let rgb = image::RgbImage::from_raw(w, h, px).ok_or_else(|| content("colour DICOM is not 3 samples of 8 bits per pixel"))?;
        return Ok(Raw::Rgb(rgb));
    }
    let values: Vec<f64> =
        pd.to_vec_frame_with_options(0, &ConvertOptions::new().with_modality_lut(ModalityLutOption::None)).map_err(undecodable)?;
    if values.len() != (w as usize) * (h as usize) {
        return Err(content("DICOM pixel data is shorter than its Rows × Columns"));
    }
    let rescale = pd.rescale().ok().and_then(|r| r.first().copied());
    let window = pd.window().ok().flatten().and_then(|ws| ws.first().copied()).filter(|wl| wl.width > 0.0);
    Ok(Raw::Gray {
        width: w,
        height: h,
        values,
        slope: rescale.map(|r| r.slope).filter(|s| *s != 0.0).unwrap_or(1.0),
        intercept: rescale.map(|r| r.intercept).unwrap_or(0.0),
        stored_window: window.map(|wl| StoredWindow::CenterWidth(wl.center, wl.width)),
        invert: pd.photometric_interpretation().to_string() == "MONOCHROME1",
        pool: None,
    })
}

/// Attributes that identify a person or a place of care. They are never read out, only counted.
pub const IDENTIFYING: [dicom_core::Tag; 11] = [
    tags::PATIENT_NAME,
    tags::PATIENT_ID,
    tags::PATIENT_BIRTH_DATE,
    tags::PATIENT_ADDRESS,
    dicom_core::Tag(0x0010, 0x1000), // Other Patient IDs (retired, still written)
    tags::OTHER_PATIENT_NAMES,
    tags::PATIENT_TELEPHONE_NUMBERS,
    tags::REFERRING_PHYSICIAN_NAME,
    tags::INSTITUTION_NAME,
    tags::INSTITUTION_ADDRESS,
    tags::ACCESSION_NUMBER,
];

/// What tumorscope learns about a file's patient: a salted key (PatientID, else StudyInstanceUID) and
/// whether it carries any identifying attribute.
fn identity(obj: &DefaultDicomObject) -> super::Identity {
    let patient = match (text(obj, tags::PATIENT_ID), text(obj, tags::STUDY_INSTANCE_UID)) {
        (Some(id), _) => Some(super::anon::key("patient", &id)),
        (None, Some(study)) => Some(super::anon::key("study", &study)),
        (None, None) => None,
    };
    super::Identity { patient, identifying: IDENTIFYING.iter().any(|&t| text(obj, t).is_some()) }
}
