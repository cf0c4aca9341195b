//! Reading a file safely before any decoder sees it: regular files only (a FIFO is refused, not
//! waited on), a size limit before reading, a pixel limit before decoding; and why a file was not
//! decoded.

use std::path::Path;

/// Why a file was not decoded. The message names what is wrong, not where (callers add the path).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    /// The file could not be read (permissions, I/O): worth trying again, so never cached.
    #[error("cannot read: {0}")]
    Io(String),
    /// The bytes are not a usable image: the same bytes will fail the same way.
    #[error("{0}")]
    Content(String),
}

impl DecodeError {
    pub fn is_io(&self) -> bool {
        matches!(self, DecodeError::Io(_))
    }
}

pub(crate) fn content(m: impl Into<String>) -> DecodeError {
    DecodeError::Content(m.into())
}

/// Files larger than this are refused before they are read (a slice is well under a megabyte; an
/// 8000 × 8000 JPEG is tens of megabytes).
pub const MAX_FILE_BYTES: u64 = 512 << 20;

/// The file's bytes, refusing an empty or absurdly large file before reading it.
pub fn read_file(path: &Path) -> Result<Vec<u8>, DecodeError> {
    use std::io::Read;
    let mut f = open_regular(path)?;
    let len = f.metadata().map_err(|e| DecodeError::Io(e.to_string()))?.len();
    if len == 0 {
        return Err(content("empty file (0 bytes)"));
    }
    if len > MAX_FILE_BYTES {
        return Err(content(format!("file too large for an image ({} MB > {} MB)", len >> 20, MAX_FILE_BYTES >> 20)));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    f.read_to_end(&mut bytes).map_err(|e| DecodeError::Io(e.to_string()))?;
    Ok(bytes)
}

/// Open a file for reading only if it is a regular file. It is opened without blocking, so a FIFO
/// (or a device) given as an image is refused at once instead of waiting for a writer for ever.
pub fn open_regular(path: &Path) -> Result<std::fs::File, DecodeError> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path).map_err(|e| DecodeError::Io(e.to_string()))?;
    let kind = f.metadata().map_err(|e| DecodeError::Io(e.to_string()))?.file_type();
    if !kind.is_file() {
        return Err(content(format!("not a regular file ({})", describe_kind(kind))));
    }
    Ok(f)
}

/// What a file that is not a regular file is, in words.
pub fn describe_kind(kind: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else if kind.is_dir() {
        "a folder"
    } else {
        "not a file"
    }
}

pub fn check_pixels(w: u32, h: u32, max_pixels: u64) -> Result<(), DecodeError> {
    if w == 0 || h == 0 {
        return Err(content("image has zero width or height"));
    }
    if w as u64 * h as u64 > max_pixels {
        return Err(content(format!("image too large ({w}×{h} > {max_pixels} pixels; raise max_image_pixels to allow it)")));
    }
    Ok(())
}
