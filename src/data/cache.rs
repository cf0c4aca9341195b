//! On-disk cache of a preprocessed dataset, keyed by the file list, sizes, mtimes and image size, so a
//! re-run loads in seconds. It holds patients' pixels: the folder is 0700 and each file 0600. Its
//! header is checked against the file's length before anything is allocated, so a stale, damaged or
//! hostile cache is rebuilt, never a panic or an out-of-memory abort.

use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"TSCACHE1";

/// Per-file outcome stored in the cache.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CachedItem {
    pub hash: u64,
    /// `None` when the file decoded; else why it was skipped.
    pub error: Option<String>,
}

/// The user's cache folder for tumorscope (`$TUMORSCOPE_CACHE`, else `$XDG_CACHE_HOME/tumorscope`, else
/// `~/.cache/tumorscope`).
pub fn cache_root() -> PathBuf {
    if let Some(p) = std::env::var_os("TUMORSCOPE_CACHE") {
        return PathBuf::from(p);
    }
    if let Some(p) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(p).join("tumorscope");
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    home.join(".cache").join("tumorscope")
}

/// Key over everything that changes the preprocessed bytes: the files (a slice `FILE#INDEX` by its
/// file's size and time), the image size and, where it is not the default, the DICOM/NIfTI imaging.
pub fn cache_key(paths: &[PathBuf], size: u32, imaging: &crate::config::imaging::Imaging) -> u64 {
    let mut h = crate::rng::fnv1a(format!("v2:{size}").as_bytes(), crate::rng::FNV_OFFSET);
    if !imaging.is_default() {
        h = crate::rng::fnv1a(imaging.describe().as_bytes(), h);
    }
    for p in paths {
        h = crate::rng::fnv1a(p.to_string_lossy().as_bytes(), h);
        let file = super::medical::Source::of(p).map(|s| s.file);
        if let Ok(m) = std::fs::metadata(file.as_deref().unwrap_or(p)) {
            h = crate::rng::fnv1a(&m.len().to_le_bytes(), h);
            let mtime = m.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map(|d| d.as_nanos()).unwrap_or(0);
            h = crate::rng::fnv1a(&mtime.to_le_bytes(), h);
        }
    }
    h
}

/// Where dataset caches live.
pub fn datasets_dir() -> PathBuf {
    cache_root().join("datasets")
}

pub fn cache_path(key: u64) -> PathBuf {
    datasets_dir().join(format!("{key:016x}.bin"))
}

/// Headers larger than this are not headers (a few dozen bytes per image).
const MAX_HEADER: u64 = 256 << 20;

/// Read a cache: the items and the pixels of the decoded ones, in order. `None` (rebuild) unless the
/// file is exactly what its header says: magic, header length, items, and their pixels.
pub fn read(path: &Path, expect_items: usize, bytes_per_image: usize) -> Option<(Vec<CachedItem>, Vec<u8>)> {
    let file = std::fs::File::open(path).ok()?;
    let file_len = file.metadata().ok()?.len();
    let mut f = std::io::BufReader::new(file);
    let mut magic = [0u8; 8];
    f.read_exact(&mut magic).ok()?;
    if &magic != MAGIC {
        return None;
    }
    let mut len = [0u8; 8];
    f.read_exact(&mut len).ok()?;
    let header_len = u64::from_le_bytes(len);
    if header_len > MAX_HEADER || header_len > file_len.saturating_sub(16) {
        return None;
    }
    let mut header = vec![0u8; header_len as usize];
    f.read_exact(&mut header).ok()?;
    let items: Vec<CachedItem> = serde_json::from_slice(&header).ok()?;
    if items.len() != expect_items {
        return None;
    }
    let ok = items.iter().filter(|i| i.error.is_none()).count();
    let pixel_len = (ok as u64).checked_mul(bytes_per_image as u64)?;
    if (16 + header_len).checked_add(pixel_len) != Some(file_len) {
        return None;
    }
    let mut pixels = vec![0u8; pixel_len as usize];
    f.read_exact(&mut pixels).ok()?;
    Some((items, pixels))
}

/// Create `dir` (and its parents) private to the user.
fn private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new().mode(0o700).recursive(true).create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

/// Write atomically (temp file then rename, mode 0600) so an interrupted write never leaves a bad
/// cache; a failed write leaves no temp file.
pub fn write(path: &Path, items: &[CachedItem], pixels: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        private_dir(dir)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let result = (|| {
        let file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
        let mut f = std::io::BufWriter::new(file);
        let header = serde_json::to_vec(items).map_err(std::io::Error::other)?;
        f.write_all(MAGIC)?;
        f.write_all(&(header.len() as u64).to_le_bytes())?;
        f.write_all(&header)?;
        f.write_all(pixels)?;
        f.flush()?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// What `tumorscope cache info` shows.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheUsage {
    pub dir: PathBuf,
    pub files: usize,
    pub bytes: u64,
}

/// The dataset caches: how many and how large.
pub fn usage() -> CacheUsage {
    let dir = datasets_dir();
    let mut u = CacheUsage { dir: dir.clone(), files: 0, bytes: 0 };
    for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        if let Ok(m) = e.metadata()
            && m.is_file()
        {
            u.files += 1;
            u.bytes += m.len();
        }
    }
    u
}

/// Delete every dataset cache (and stray temp files); the weights stay. Returns what was freed.
pub fn clean() -> std::io::Result<CacheUsage> {
    let before = usage();
    if before.dir.is_dir() {
        for e in std::fs::read_dir(&before.dir)?.flatten() {
            if e.metadata().is_ok_and(|m| m.is_file()) {
                std::fs::remove_file(e.path())?;
            }
        }
    }
    Ok(before)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_reject_mismatch() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("c.bin");
        let items = vec![CachedItem { hash: 1, error: None }, CachedItem { hash: 2, error: Some("bad".into()) }];
        write(&p, &items, &[1, 2, 3]).unwrap();
        let (i, px) = read(&p, 2, 3).unwrap();
        assert_eq!(i, items);
        assert_eq!(px, vec![1, 2, 3]);
        assert!(read(&p, 3, 3).is_none());
        std::fs::write(&p, b"garbage").unwrap();
        assert!(read(&p, 2, 3).is_none());
    }

    #[test]
    fn key_changes_with_size_and_content() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("a.jpg");
        std::fs::write(&f, b"abc").unwrap();
        let k1 = cache_key(std::slice::from_ref(&f), 150, &Default::default());
        assert_ne!(k1, cache_key(std::slice::from_ref(&f), 64, &Default::default()));
        std::fs::write(&f, b"abcd").unwrap();
        assert_ne!(k1, cache_key(&[f], 150, &Default::default()));
    }

    #[test]
    fn private_modes_and_no_temp_file_on_failure() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("datasets");
        let p = dir.join("c.bin");
        write(&p, &[CachedItem { hash: 1, error: None }], &[9, 9, 9]).unwrap();
        assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        // A target that cannot be renamed onto (a folder) fails, and the temp file is gone.
        let blocked = dir.join("blocked.bin");
        std::fs::create_dir_all(blocked.join("x")).unwrap();
        assert!(write(&blocked, &[], &[]).is_err());
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.file_name()).collect();
        assert_eq!(left.len(), 2, "only c.bin and the folder: {left:?}");
    }

    #[test]
    fn a_hostile_header_is_rebuilt_not_allocated() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("c.bin");
        // Claims an 16-exabyte header.
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&u64::MAX.to_le_bytes());
        std::fs::write(&p, &bytes).unwrap();
        assert!(read(&p, 1, 3).is_none());
        // A valid header whose pixels are missing, and one with extra bytes.
        write(&p, &[CachedItem { hash: 1, error: None }], &[1, 2, 3]).unwrap();
        let good = std::fs::read(&p).unwrap();
        std::fs::write(&p, &good[..good.len() - 1]).unwrap();
        assert!(read(&p, 1, 3).is_none());
        std::fs::write(&p, [good.as_slice(), &[0]].concat()).unwrap();
        assert!(read(&p, 1, 3).is_none());
        // Items that would need more pixels than any file holds.
        assert!(read(&p, 1, usize::MAX).is_none());
    }
}
