//! Who may read what tumorscope writes. Run folders hold patients' pixels (sample and misclassified
//! figures, the gallery's predictions, checkpoints fitted to them), so everything a command creates is
//! private to the user by default (folders 0700, files 0600), like the dataset cache. A lab that shares
//! runs within a Unix group sets `share_with_group = true` in the config file (or
//! `train --share-with-group`): folders 0750, files 0640. Nothing is ever readable by other users.
//! Commands that write into an existing run folder (`report`, `eval`) follow that folder's choice.

use nix::sys::stat::{Mode, umask};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Private to the user: the mode bits every new file and folder loses.
const PRIVATE: u32 = 0o077;
/// Readable by the user's group: only other users lose every bit, the group loses write.
const GROUP: u32 = 0o027;

/// Set the process's file-creation mask: private, or shared with the group.
pub fn apply(share_with_group: bool) {
    umask(Mode::from_bits_truncate(if share_with_group { GROUP } else { PRIVATE }));
}

/// Whether a folder was made to be shared with its group (readable by it).
pub fn shared_with_group(folder: &Path) -> bool {
    std::fs::metadata(folder).map(|m| m.permissions().mode() & 0o040 != 0).unwrap_or(false)
}

/// Write into an existing run folder as it was made: shared with the group if it is, else private.
pub fn follow(folder: &Path) {
    apply(shared_with_group(folder));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mask_makes_new_files_private_or_group_readable() {
        let t = tempfile::tempdir().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        apply(false);
        std::fs::create_dir(t.path().join("a")).unwrap();
        std::fs::write(t.path().join("a/f"), b"x").unwrap();
        assert_eq!((mode(&t.path().join("a")), mode(&t.path().join("a/f"))), (0o700, 0o600));
        assert!(!shared_with_group(&t.path().join("a")));
        apply(true);
        std::fs::create_dir(t.path().join("b")).unwrap();
        std::fs::write(t.path().join("b/f"), b"x").unwrap();
        assert_eq!((mode(&t.path().join("b")), mode(&t.path().join("b/f"))), (0o750, 0o640));
        assert!(shared_with_group(&t.path().join("b")));
        apply(false);
    }
}
