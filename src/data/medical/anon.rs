//! Patient and study identifiers become salted keys: equal identifiers give equal keys on this
//! machine, and a key cannot be turned back into the identifier without the salt, which stays in the
//! user's cache folder (0600) and never enters a run folder.

use sha2::{Digest, Sha256};
use std::sync::OnceLock;

/// The per-user salt: `<cache>/patient-salt`, 32 random bytes made on first use. Where it cannot be
/// kept (a read-only home), a salt for this process only: groups still hold within the run.
fn salt() -> &'static [u8; 32] {
    static SALT: OnceLock<[u8; 32]> = OnceLock::new();
    SALT.get_or_init(|| {
        let path = crate::data::cache::cache_root().join("patient-salt");
        if let Some(s) = std::fs::read(&path).ok().and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok()) {
            return s;
        }
        let fresh = random();
        let _ = write_private(&path, &fresh);
        // Another process may have won the race: use what is on disk.
        std::fs::read(&path).ok().and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok()).unwrap_or(fresh)
    })
}

fn random() -> [u8; 32] {
    use std::io::Read;
    let mut s = [0u8; 32];
    if std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut s)).is_err() {
        // No /dev/urandom: time and process id, unguessable enough for a within-process salt.
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        s = Sha256::digest(format!("{t}:{}", std::process::id())).into();
    }
    s
}

fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    }
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    f.write_all(bytes)
}

/// The salted key of an identifier of `kind` (`patient`, `study`, `file`).
pub fn key(kind: &str, id: &str) -> u64 {
    let mut h = Sha256::new();
    h.update(salt());
    h.update(kind.as_bytes());
    h.update([0]);
    h.update(id.as_bytes());
    let d = h.finalize();
    u64::from_le_bytes(d[..8].try_into().unwrap_or([0; 8]))
}

#[cfg(test)]
mod tests {
    #[test]
    fn equal_ids_equal_keys_and_the_id_is_not_in_the_key() {
        assert_eq!(super::key("patient", "PAT-0001"), super::key("patient", "PAT-0001"));
        assert_ne!(super::key("patient", "PAT-0001"), super::key("patient", "PAT-0002"));
        assert_ne!(super::key("patient", "X"), super::key("study", "X"));
    }
}
