//! Find class folders and image files. Accepts `root/Training/<class>` (+ optional `root/Testing/<class>`)
//! or a bare `root/<class>` layout.

use super::DataError;
use super::decode::Reading;
use super::medical;
use std::path::{Path, PathBuf};

/// One candidate image file and the index of its class.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageEntry {
    pub path: PathBuf,
    pub label: usize,
    /// The file came from the dataset's own `Testing/` folder.
    pub from_test_folder: bool,
    /// DICOM and NIfTI: whom the file is about (read with its header at discovery).
    pub identity: medical::Identity,
}

/// What a dataset folder holds.
#[derive(Debug, Clone)]
pub struct Discovered {
    pub root: PathBuf,
    pub classes: Vec<String>,
    pub entries: Vec<ImageEntry>,
    pub has_test_folder: bool,
    /// Folders or files that were passed over, with why.
    pub warnings: Vec<String>,
}

fn find_child(root: &Path, names: &[&str]) -> Option<PathBuf> {
    let rd = std::fs::read_dir(root).ok()?;
    let mut hits: Vec<PathBuf> = rd
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .filter(|e| names.iter().any(|n| e.file_name().to_string_lossy().eq_ignore_ascii_case(n)))
        .map(|e| e.path())
        .collect();
    hits.sort();
    hits.into_iter().next()
}

fn sorted_children(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let rd = std::fs::read_dir(dir).map_err(|source| DataError::Io { path: dir.display().to_string(), source })?;
    let mut v: Vec<PathBuf> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| !p.file_name().map(|n| n.to_string_lossy().starts_with('.')).unwrap_or(true))
        .collect();
    v.sort();
    Ok(v)
}

fn class_dirs(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    Ok(sorted_children(dir)?.into_iter().filter(|p| p.is_dir()).collect())
}

fn files_of(
    dir: &Path,
    label: usize,
    test: bool,
    reading: &Reading,
    out: &mut Vec<ImageEntry>,
    warnings: &mut Vec<String>,
) -> Result<usize, DataError> {
    let mut seen = std::collections::HashSet::new();
    walk(dir, 0, &mut seen, &mut |p: PathBuf, warnings: &mut Vec<String>| {
        let (paths, identity) = slices_of(p, reading, warnings);
        for path in paths {
            out.push(ImageEntry { path, label, from_test_folder: test, identity });
        }
    }, warnings)
}

/// Folders inside a class folder (a DICOM export's `patient/series/`) are walked this deep.
const MAX_DEPTH: usize = 8;

/// Every file under `dir`, in sorted order, given to `take`; folders walked once each (a link back to
/// one already walked is skipped) and at most `MAX_DEPTH` deep. How many files.
fn walk(
    dir: &Path,
    depth: usize,
    seen: &mut std::collections::HashSet<PathBuf>,
    take: &mut dyn FnMut(PathBuf, &mut Vec<String>),
    warnings: &mut Vec<String>,
) -> Result<usize, DataError> {
    if !seen.insert(std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf())) {
        return Ok(0);
    }
    let mut n = 0;
    for p in sorted_children(dir)? {
        if p.is_file() {
            take(p, warnings);
            n += 1;
        } else if p.is_dir() && depth < MAX_DEPTH {
            // A subfolder that cannot be read costs its files, not the data set.
            match walk(&p, depth + 1, seen, take, warnings) {
                Ok(k) => n += k,
                Err(e) => warnings.push(format!("{e}; ignored")),
            }
        } else if p.is_dir() {
            warnings.push(format!("{}: folder nested more than {MAX_DEPTH} deep; ignored", p.display()));
        } else if let Ok(m) = std::fs::metadata(&p) {
            warnings.push(format!("{}: not a regular file ({}); ignored", p.display(), super::decode::describe_kind(m.file_type())));
        }
    }
    Ok(n)
}

/// The images a file holds: itself, or one `FILE#INDEX` per chosen slice of a DICOM or NIfTI file
/// with several. A file whose header cannot be read stays one entry: decoding it names what is wrong.
/// Whom it is about comes from the same header.
fn slices_of(p: PathBuf, reading: &Reading, warnings: &mut Vec<String>) -> (Vec<PathBuf>, medical::Identity) {
    match medical::expand_file(&p, &reading.imaging, reading.max_pixels) {
        Some(Ok(e)) => {
            warnings.extend(e.note);
            (e.paths, e.identity)
        }
        None | Some(Err(_)) => (vec![p], Default::default()),
    }
}

/// A class folder's name, which must be UTF-8.
fn class_name(dir: &Path) -> Result<String, DataError> {
    dir.file_name().and_then(|n| n.to_str()).map(str::to_string).ok_or_else(|| DataError::ClassName { path: dir.display().to_string() })
}

/// Walk `root` and list every candidate file with its class.
pub fn discover(root: &Path) -> Result<Discovered, DataError> {
    discover_with(root, &Reading::default())
}

/// `discover`, with DICOM and NIfTI files cut into slices as `reading` says.
pub fn discover_with(root: &Path, reading: &Reading) -> Result<Discovered, DataError> {
    if !root.exists() {
        return Err(DataError::Missing(root.display().to_string()));
    }
    if !root.is_dir() {
        return Err(DataError::NotADir(root.display().to_string()));
    }
    let train_dir = find_child(root, &["Training", "train"]);
    let test_dir = find_child(root, &["Testing", "test"]);
    // A root holding only Testing/ is that layout (its images are test images), not one class
    // folder named "Testing".
    let only_testing = train_dir.is_none() && test_dir.is_some();
    let base = train_dir.clone().or(if only_testing { test_dir.clone() } else { None }).unwrap_or_else(|| root.to_path_buf());
    let dirs = class_dirs(&base)?;
    // Names as they are: a lossy conversion could make two folders one class.
    let classes: Vec<String> = dirs.iter().map(|d| class_name(d)).collect::<Result<_, _>>()?;
    if classes.len() < 2 {
        return Err(DataError::TooFewClasses(base.display().to_string(), classes.len()));
    }
    let mut entries = Vec::new();
    let mut warnings = Vec::new();
    for (label, d) in dirs.iter().enumerate() {
        if files_of(d, label, only_testing, reading, &mut entries, &mut warnings)? == 0 {
            return Err(DataError::EmptyClass { path: d.display().to_string(), class: classes[label].clone() });
        }
    }
    let mut has_test_folder = false;
    if let (Some(_), Some(td)) = (&train_dir, &test_dir) {
        for d in class_dirs(td)? {
            let name = class_name(&d)?;
            match classes.iter().position(|c| *c == name) {
                Some(label) => {
                    has_test_folder |= files_of(&d, label, true, reading, &mut entries, &mut warnings)? > 0;
                }
                None => warnings.push(format!("{}: class '{name}' is not in the training folder; ignored", d.display())),
            }
        }
    }
    Ok(Discovered { root: root.to_path_buf(), classes, entries, has_test_folder: has_test_folder || only_testing, warnings })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(p: &Path) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, b"x").unwrap();
    }

    #[test]
    fn bare_class_folders() {
        let t = tempfile::tempdir().unwrap();
        touch(&t.path().join("b/2.jpg"));
        touch(&t.path().join("a/1.jpg"));
        touch(&t.path().join("a/.DS_Store"));
        let d = discover(t.path()).unwrap();
        assert_eq!(d.classes, vec!["a", "b"]);
        assert_eq!(d.entries.len(), 2);
        assert!(!d.has_test_folder);
    }

    /// A DICOM export's layout, `class/patient/series/IM…`: every file under a class folder is that
    /// class's; a link back up is walked once.
    #[test]
    fn files_in_folders_inside_a_class_folder_belong_to_the_class() {
        let t = tempfile::tempdir().unwrap();
        touch(&t.path().join("glioma/p01/s1/IM0001"));
        touch(&t.path().join("glioma/p01/s1/IM0002"));
        touch(&t.path().join("glioma/p02/IM0001"));
        touch(&t.path().join("notumor/x.jpg"));
        std::os::unix::fs::symlink(t.path().join("glioma"), t.path().join("glioma/p02/loop")).unwrap();
        let d = discover(t.path()).unwrap();
        let glioma: Vec<String> =
            d.entries.iter().filter(|e| e.label == 0).map(|e| e.path.strip_prefix(t.path()).unwrap().display().to_string()).collect();
        assert_eq!(glioma, vec!["glioma/p01/s1/IM0001", "glioma/p01/s1/IM0002", "glioma/p02/IM0001"]);
    }

    #[test]
    fn training_and_testing_layout() {
        let t = tempfile::tempdir().unwrap();
        for c in ["glioma", "notumor"] {
            touch(&t.path().join(format!("Training/{c}/x.jpg")));
            touch(&t.path().join(format!("Testing/{c}/y.jpg")));
        }
        touch(&t.path().join("Testing/other/z.jpg"));
        let d = discover(t.path()).unwrap();
        assert_eq!(d.classes, vec!["glioma", "notumor"]);
        assert!(d.has_test_folder);
        assert_eq!(d.entries.iter().filter(|e| e.from_test_folder).count(), 2);
        assert!(d.warnings.iter().any(|w| w.contains("other")));
    }

    #[test]
    fn only_testing_or_only_training_is_that_layout() {
        let t = tempfile::tempdir().unwrap();
        for c in ["glioma", "notumor"] {
            touch(&t.path().join(format!("Testing/{c}/y.jpg")));
        }
        let d = discover(t.path()).unwrap();
        assert_eq!(d.classes, vec!["glioma", "notumor"]);
        assert!(d.entries.iter().all(|e| e.from_test_folder));
        let u = tempfile::tempdir().unwrap();
        for c in ["glioma", "notumor"] {
            touch(&u.path().join(format!("Training/{c}/x.jpg")));
        }
        let d = discover(u.path()).unwrap();
        assert_eq!(d.classes, vec!["glioma", "notumor"]);
        assert!(d.entries.iter().all(|e| !e.from_test_folder));
    }

    /// Two folders whose names differ only in bytes that are not UTF-8 would become one class after a
    /// lossy conversion: such a name is refused, naming the folder.
    #[test]
    fn class_folder_names_must_be_utf8() {
        use std::os::unix::ffi::OsStrExt;
        let t = tempfile::tempdir().unwrap();
        for name in [&b"gli\xffoma"[..], &b"gli\xfeoma"[..], &b"pituitary"[..]] {
            touch(&t.path().join(std::ffi::OsStr::from_bytes(name)).join("a.jpg"));
        }
        let e = discover(t.path()).unwrap_err().to_string();
        assert!(e.contains("must be UTF-8") && e.contains("gli"), "{e}");
    }

    #[test]
    fn clear_errors() {
        let t = tempfile::tempdir().unwrap();
        assert!(matches!(discover(&t.path().join("nope")), Err(DataError::Missing(_))));
        touch(&t.path().join("only/1.jpg"));
        let e = discover(t.path()).unwrap_err();
        assert!(e.to_string().contains("need at least two"), "{e}");
        std::fs::create_dir_all(t.path().join("empty")).unwrap();
        let e = discover(t.path()).unwrap_err();
        assert!(e.to_string().contains("'empty' has no readable images"), "{e}");
    }
}
