//! On-disk cache of a preprocessed dataset, keyed by the file list, sizes, mtimes and image size, so a
//! re-run loads in seconds. A stale or damaged cache is simply rebuilt.

use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
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

/// Key over everything that changes the preprocessed bytes.
pub fn cache_key(paths: &[PathBuf], size: u32) -> u64 {
    let mut h = crate::rng::fnv1a(format!("v1:{size}").as_bytes(), crate::rng::FNV_OFFSET);
    for p in paths {
        h = crate::rng::fnv1a(p.to_string_lossy().as_bytes(), h);
        if let Ok(m) = std::fs::metadata(p) {
            h = crate::rng::fnv1a(&m.len().to_le_bytes(), h);
            let mtime = m.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map(|d| d.as_nanos()).unwrap_or(0);
            h = crate::rng::fnv1a(&mtime.to_le_bytes(), h);
        }
    }
    h
}

pub fn cache_path(key: u64) -> PathBuf {
    cache_root().join("datasets").join(format!("{key:016x}.bin"))
}

/// Read a cache: the items and the pixels of the decoded ones, in order.
pub fn read(path: &Path, expect_items: usize, bytes_per_image: usize) -> Option<(Vec<CachedItem>, Vec<u8>)> {
    let mut f = std::io::BufReader::new(std::fs::File::open(path).ok()?);
    let mut magic = [0u8; 8];
    f.read_exact(&mut magic).ok()?;
    if &magic != MAGIC {
        return None;
    }
    let mut len = [0u8; 8];
    f.read_exact(&mut len).ok()?;
    let mut header = vec![0u8; u64::from_le_bytes(len) as usize];
    f.read_exact(&mut header).ok()?;
    let items: Vec<CachedItem> = serde_json::from_slice(&header).ok()?;
    if items.len() != expect_items {
        return None;
    }
    let ok = items.iter().filter(|i| i.error.is_none()).count();
    let mut pixels = vec![0u8; ok * bytes_per_image];
    f.read_exact(&mut pixels).ok()?;
    Some((items, pixels))
}

/// Write atomically (temp file then rename) so an interrupted write never leaves a bad cache.
pub fn write(path: &Path, items: &[CachedItem], pixels: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        let header = serde_json::to_vec(items).map_err(std::io::Error::other)?;
        f.write_all(MAGIC)?;
        f.write_all(&(header.len() as u64).to_le_bytes())?;
        f.write_all(&header)?;
        f.write_all(pixels)?;
        f.flush()?;
    }
    std::fs::rename(&tmp, path)
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
        let k1 = cache_key(std::slice::from_ref(&f), 150);
        assert_ne!(k1, cache_key(std::slice::from_ref(&f), 64));
        std::fs::write(&f, b"abcd").unwrap();
        assert_ne!(k1, cache_key(&[f], 150));
    }
}
