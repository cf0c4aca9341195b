//! DICOM and NIfTI: decoded pixels against the reference readers (pydicom, nibabel, installed in the
//! project's venv by scripts/setup.sh, with their real test files), `predict` on those files, bad
//! input, and a training run on fake patients that keeps each patient on one side of every split and
//! writes none of their names or IDs anywhere.

mod common;

use common::dicom::{FakePatient, INSTITUTION, fake_patients};
use std::path::{Path, PathBuf};
use std::process::Command;
use tumorscope::data::medical::{self, Raw};

fn venv_python() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python")
}

/// Where a Python package's data lives (`pydicom` test files, `nibabel` test data).
fn package_dir(module: &str, sub: &str) -> PathBuf {
    let o = Command::new(venv_python())
        .args(["-c", &format!("import {module}, os; print(os.path.dirname({module}.__file__))")])
        .output()
        .expect("the project venv runs (scripts/setup.sh)");
    assert!(o.status.success(), "{module} is installed in .venv by scripts/setup.sh: {}", String::from_utf8_lossy(&o.stderr));
    PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()).join(sub)
}

fn pydicom_file(name: &str) -> PathBuf {
    package_dir("pydicom", "data/test_files").join(name)
}

fn nibabel_file(name: &str) -> PathBuf {
    package_dir("nibabel", "tests/data").join(name)
}

/// The reference reader's values, flattened x fastest, as JSON numbers (exact: Python's repr of a
/// float round-trips, and so does serde_json's parser here).
fn reference(code: &str) -> Vec<f64> {
    let o = Command::new(venv_python()).args(["-c", code]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn gray_values(raw: Raw) -> (u32, u32, Vec<f64>) {
    match raw {
        Raw::Gray { width, height, values, .. } => (width, height, values),
        Raw::Rgb(_) => panic!("expected a grey image"),
    }
}

#[test]
fn decoded_dicom_pixels_equal_pydicoms_pixel_array() {
    let want =
        |f: &Path| reference(&format!("import pydicom, json; print(json.dumps(pydicom.dcmread({:?}).pixel_array.ravel().tolist()))", f));
    let original = want(&pydicom_file("MR_small.dcm"));
    assert_eq!(original.len(), 64 * 64);
    for name in
        ["MR_small.dcm", "MR_small_RLE.dcm", "MR_small_bigendian.dcm", "MR_small_implicit.dcm", "MR_small_expb.dcm", "MR_small_padded.dcm"]
    {
        let f = pydicom_file(name);
        let (w, h, got) = gray_values(medical::dicom::frame(&std::fs::read(&f).unwrap(), 0, 1 << 20).unwrap());
        assert_eq!((w, h), (64, 64), "{name}");
        assert_eq!(got, want(&f), "{name}: pixels differ from pydicom's pixel_array");
    }
    // Lossless compressed copies of the same slice (pydicom needs plugins for these; the pixels must
    // equal the uncompressed original's).
    for name in ["MR_small_jpeg_ls_lossless.dcm", "MR_small_jp2klossless.dcm"] {
        let (_, _, got) = gray_values(medical::dicom::frame(&std::fs::read(pydicom_file(name)).unwrap(), 0, 1 << 20).unwrap());
        assert_eq!(got, original, "{name}: lossless pixels differ from the original's");
    }
    // A colour, multi-frame file: each frame is a slice, RGB as stored.
    let f = pydicom_file("SC_rgb_rle_2frame.dcm");
    let bytes = std::fs::read(&f).unwrap();
    assert_eq!(medical::dicom::frames(&bytes, 1 << 20).unwrap(), 2);
    for frame in 0..2 {
        let Raw::Rgb(rgb) = medical::dicom::frame(&bytes, frame, 1 << 20).unwrap() else { panic!("a colour frame") };
        let want = reference(&format!("import pydicom, json; print(json.dumps(pydicom.dcmread({:?}).pixel_array[{frame}].ravel().tolist()))", f));
        assert_eq!(rgb.as_raw().iter().map(|&v| v as f64).collect::<Vec<_>>(), want, "frame {frame}");
    }
}

#[test]
fn decoded_nifti_values_equal_nibabels_get_fdata() {
    for (name, index) in [("anatomical.nii", ""), ("example4d.nii.gz", "[..., 0]")] {
        let f = nibabel_file(name);
        let want = reference(&format!(
            "import nibabel, json; print(json.dumps(nibabel.load({:?}).get_fdata(){index}.ravel(order='F').tolist()))",
            f
        ));
        let v = medical::nifti::read(&std::fs::read(&f).unwrap()).unwrap();
        assert_eq!(v.values.len(), want.len(), "{name}");
        assert_eq!(v.values, want, "{name}: values differ from nibabel's get_fdata()");
        assert_eq!(v.volumes > 1, name.contains("4d"), "{name}");
    }
}

/// A small trained run to predict with: the small CNN, one epoch, on PNGs.
fn small_run(t: &Path) -> PathBuf {
    common::three_classes(&t.join("data"));
    let o = common::train_small(&t.join("data"), &t.join("runs"), &t.join("cache"), &["--epochs", "1"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::read_dir(t.join("runs")).unwrap().next().unwrap().unwrap().path()
}

fn predict(run: &Path, files: &[PathBuf], extra: &[&str]) -> (bool, Vec<serde_json::Value>, String) {
    let o =
        Command::new(common::bin()).args(["predict", "--json", "--run", run.to_str().unwrap()]).args(extra).args(files).output().unwrap();
    let lines = String::from_utf8_lossy(&o.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    (o.status.success(), lines, String::from_utf8_lossy(&o.stderr).to_string())
}

#[test]
fn predict_reads_the_real_dicom_and_nifti_files_and_names_what_it_cannot() {
    let t = tempfile::tempdir().unwrap();
    let run = small_run(t.path());
    let good = ["MR_small.dcm", "MR_small_RLE.dcm", "MR_small_jpeg_ls_lossless.dcm", "MR_small_jp2klossless.dcm", "MR_small_bigendian.dcm"];
    let bad =
        [("MR_truncated.dcm", "truncated DICOM file"), ("JPEG-lossy.dcm", "cannot decode JPEG Extended"), ("test-SR.dcm", "no pixel data")];
    let mut files: Vec<PathBuf> = good.iter().chain(bad.iter().map(|b| &b.0)).map(|n| pydicom_file(n)).collect();
    files.push(nibabel_file("anatomical.nii"));
    files.push(pydicom_file("SC_rgb_rle_2frame.dcm"));
    let (ok, lines, err) = predict(&run, &files, &[]);
    assert!(!ok, "three inputs cannot be predicted: the exit code says so");
    let paths: Vec<String> = lines.iter().map(|l| l["path"].as_str().unwrap().to_string()).collect();
    for n in good {
        assert!(paths.iter().any(|p| p.ends_with(n)), "{n} predicted: {paths:?}\n{err}");
    }
    for (n, why) in bad {
        let line: Vec<&str> = err.lines().filter(|l| l.contains(n)).collect();
        assert_eq!(line.len(), 1, "one line for {n}:\n{err}");
        assert!(line[0].contains(why), "{n}: {}", line[0]);
    }
    // The volume is 33×41×25 (x, y, z) with an identity-like orientation: 25 axial slices.
    let slices = paths.iter().filter(|p| p.contains("anatomical.nii#")).count();
    assert_eq!(slices, 25, "{paths:?}");
    let frames: Vec<&String> = paths.iter().filter(|p| p.contains("SC_rgb_rle_2frame.dcm")).collect();
    assert!(frames.len() == 2 && frames[0].ends_with("#0") && frames[1].ends_with("#1"), "{frames:?}");
    let (_, middle, _) = predict(&run, &[nibabel_file("anatomical.nii")], &["--slices", "middle"]);
    assert_eq!(middle.len(), 1);
    assert!(middle[0]["path"].as_str().unwrap().ends_with("anatomical.nii#12"), "{:?}", middle[0]);
    let (_, sagittal, _) = predict(&run, &[nibabel_file("anatomical.nii")], &["--slice-axis", "sagittal"]);
    assert_eq!(sagittal.len(), 33);
    let (_, four_d, err) = predict(&run, &[nibabel_file("example4d.nii.gz")], &["--slices", "3"]);
    assert_eq!(four_d.len(), 3);
    assert!(err.contains("4-D (2 volumes); using the first"), "{err}");
}

/// A NIfTI-1 header (348 bytes, little endian, int16) for `dims`, data at offset 352.
fn nifti_header(dims: [u16; 3]) -> Vec<u8> {
    let mut h = vec![0u8; 352];
    h[0..4].copy_from_slice(&348i32.to_le_bytes());
    let dim = [3u16, dims[0], dims[1], dims[2], 1, 1, 1, 1];
    for (k, d) in dim.iter().enumerate() {
        h[40 + 2 * k..42 + 2 * k].copy_from_slice(&d.to_le_bytes());
    }
    h[70..72].copy_from_slice(&4i16.to_le_bytes()); // int16
    h[72..74].copy_from_slice(&16i16.to_le_bytes());
    for k in 0..8 {
        h[76 + 4 * k..80 + 4 * k].copy_from_slice(&1f32.to_le_bytes());
    }
    h[108..112].copy_from_slice(&352f32.to_le_bytes());
    h[344..348].copy_from_slice(b"n+1\0");
    h
}

fn gzip(bytes: &[u8], zeros: usize) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    let block = vec![0u8; 1 << 20];
    for _ in 0..zeros >> 20 {
        e.write_all(&block).unwrap();
    }
    e.finish().unwrap()
}

#[test]
fn bad_medical_files_get_one_line_each_and_the_rest_is_predicted() {
    let t = tempfile::tempdir().unwrap();
    let run = small_run(t.path());
    let d = t.path().join("bad");
    std::fs::create_dir_all(&d).unwrap();
    // A DICOM that claims 60000×60000 pixels: refused from its header by the pixel limit.
    let p = FakePatient { name: "Nobody^Anyone".into(), id: "X1".into(), birth_date: "19500101".into(), class: 0 };
    common::dicom::write_slice(&d.join("huge.dcm"), &p, 0, 0, 8);
    let mut bytes = std::fs::read(d.join("huge.dcm")).unwrap();
    let rows = [0x28, 0x00, 0x10, 0x00, b'U', b'S', 2, 0];
    let cols = [0x28, 0x00, 0x11, 0x00, b'U', b'S', 2, 0];
    for tag in [rows, cols] {
        let at = bytes.windows(8).position(|w| w == tag).unwrap() + 8;
        bytes[at..at + 2].copy_from_slice(&60000u16.to_le_bytes());
    }
    std::fs::write(d.join("huge.dcm"), &bytes).unwrap();
    // A NIfTI whose header lies: it declares more voxels than the file holds.
    let anat = std::fs::read(nibabel_file("anatomical.nii")).unwrap();
    std::fs::write(d.join("lying.nii"), &anat[..anat.len() / 2]).unwrap();
    // A gzip bomb: a header declaring 4096×4096×4096 voxels, then a long run of zeros.
    std::fs::write(d.join("bomb.nii.gz"), gzip(&nifti_header([4096, 4096, 4096]), 64 << 20)).unwrap();
    // A small volume followed by 64 MB more of zeros than its header declares: only what the header
    // declares is read.
    let mut small = nifti_header([8, 8, 4]);
    small.extend(vec![0u8; 8 * 8 * 4 * 2]);
    std::fs::write(d.join("padded.nii.gz"), gzip(&small, 64 << 20)).unwrap();
    // Not gzip at all behind a .gz name.
    std::fs::write(d.join("fake.nii.gz"), b"\x1f\x8bthis is not a gzip stream at all, just text").unwrap();
    // A transfer syntax no reader knows (a made-up UID of the same length as explicit little endian).
    let mr = std::fs::read(pydicom_file("MR_small.dcm")).unwrap();
    let at = mr.windows(20).position(|w| w == b"1.2.840.10008.1.2.1\0").unwrap();
    let mut unknown = mr.clone();
    unknown[at..at + 20].copy_from_slice(b"1.2.840.10008.1.2.8\0");
    std::fs::write(d.join("unknown.dcm"), &unknown).unwrap();
    let names = ["huge.dcm", "lying.nii", "bomb.nii.gz", "padded.nii.gz", "fake.nii.gz", "unknown.dcm"];
    let mut files: Vec<PathBuf> = names.iter().map(|n| d.join(n)).collect();
    files.push(pydicom_file("MR_small.dcm"));
    let (ok, lines, err) = predict(&run, &files, &[]);
    assert!(!ok);
    let expect = [
        ("huge.dcm", "image too large (60000×60000"),
        ("lying.nii", "NIfTI data shorter than its header says"),
        ("bomb.nii.gz", "NIfTI volume too large (4096×4096×4096 voxels)"),
        ("fake.nii.gz", "corrupt gzip stream"),
        ("unknown.dcm", "unsupported DICOM transfer syntax (Unrecognized transfer syntax `1.2.840.10008.1.2.8`)"),
    ];
    for (n, why) in expect {
        let line: Vec<&str> = err.lines().filter(|l| l.contains(n)).collect();
        assert_eq!(line.len(), 1, "one line for {n}:\n{err}");
        assert!(line[0].contains(why), "{n}: {}", line[0]);
    }
    let paths: Vec<&str> = lines.iter().map(|l| l["path"].as_str().unwrap()).collect();
    assert!(paths.iter().any(|p| p.ends_with("MR_small.dcm")), "{paths:?}");
    assert_eq!(paths.iter().filter(|p| p.contains("padded.nii.gz#")).count(), 4, "{paths:?}\n{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// Every file under `dir`, with its bytes.
fn files_under(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            files_under(&p, out);
        } else if p.is_file() {
            out.push((p.clone(), std::fs::read(&p).unwrap()));
        }
    }
}

fn leaks(haystack: &[u8], patients: &[FakePatient]) -> Vec<String> {
    let text = String::from_utf8_lossy(haystack).to_lowercase();
    let mut secrets: Vec<String> = patients.iter().flat_map(FakePatient::secrets).collect();
    secrets.push(INSTITUTION.into());
    secrets.into_iter().filter(|s| text.contains(&s.to_lowercase())).collect()
}

#[test]
fn training_on_fake_patients_keeps_each_patient_on_one_side_and_stores_no_patient_data() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("dicom");
    let patients = fake_patients(&data, &["glioma", "meningioma", "pituitary"], 4, 6);
    // The scan below can fail: the fixture's files do hold every secret.
    let first = std::fs::read(data.join("glioma/img000.dcm")).unwrap();
    let found = leaks(&first, &patients[..1]);
    for s in [&patients[0].name, &patients[0].id, &patients[0].birth_date] {
        assert!(found.contains(s), "{s} not found in the fixture: {found:?}");
    }
    let o = common::train_small(&data, &t.path().join("runs"), &t.path().join("cache"), &["--epochs", "1", "--window", "1200,2400"]);
    let out = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "{out}");
    assert!(out.contains("the images of each of 12 patient(s) on one side"), "{out}");
    let run = std::fs::read_dir(t.path().join("runs")).unwrap().next().unwrap().unwrap().path();
    // Every file of a patient is on one side of the split, and split.json says which patient (by a
    // salted hash) each file belongs to.
    let split: serde_json::Value = serde_json::from_slice(&std::fs::read(run.join("split.json")).unwrap()).unwrap();
    let mut sides: std::collections::HashMap<String, std::collections::BTreeSet<String>> = Default::default();
    for f in split["files"].as_array().unwrap() {
        let group = f["group"].as_str().expect("each DICOM file has a patient group").to_string();
        sides.entry(group).or_default().insert(f["split"].as_str().unwrap().to_string());
    }
    assert_eq!(sides.len(), 12, "{sides:?}");
    for (g, s) in &sides {
        assert_eq!(s.len(), 1, "patient {g} straddles {s:?}");
    }
    let used: std::collections::BTreeSet<&String> = sides.values().flatten().collect();
    assert!(used.len() >= 2, "a real split: {used:?}");
    // The run recorded its window, for inference to apply again.
    let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(run.join("run.json")).unwrap()).unwrap();
    assert_eq!(meta["config"]["window"], "1200,2400", "{meta}");
    // No name, ID, birth date or institution anywhere in the run folder, the cache or the output.
    let mut files = vec![];
    files_under(&run, &mut files);
    files_under(&t.path().join("cache"), &mut files);
    assert!(files.len() > 5, "{files:?}");
    for (p, bytes) in &files {
        assert!(leaks(bytes, &patients).is_empty(), "{} holds {:?}", p.display(), leaks(bytes, &patients));
    }
    assert!(leaks(out.as_bytes(), &patients).is_empty(), "{out}");
    // Folds: every patient's images in one fold.
    let o = common::train_small(&data, &t.path().join("folds"), &t.path().join("cache"), &["--epochs", "1", "--folds", "3", "--fold", "1"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let fold_run = std::fs::read_dir(t.path().join("folds")).unwrap().next().unwrap().unwrap().path();
    let split: serde_json::Value = serde_json::from_slice(&std::fs::read(fold_run.join("split.json")).unwrap()).unwrap();
    let mut folds: std::collections::HashMap<String, std::collections::BTreeSet<String>> = Default::default();
    for f in split["files"].as_array().unwrap().iter().filter(|f| f["split"] != "test") {
        folds.entry(f["group"].as_str().unwrap().to_string()).or_default().insert(f["fold"].to_string());
    }
    assert!(folds.len() >= 6, "{folds:?}");
    for (g, s) in &folds {
        assert_eq!(s.len(), 1, "patient {g} in folds {s:?}");
    }
    // Predicting a fixture file with the run: the run's window, a prediction, nothing identifying.
    let (ok, lines, err) = predict(&run, &[data.join("glioma/img000.dcm")], &[]);
    assert!(ok && lines.len() == 1, "{err}");
    assert!(leaks(format!("{lines:?}{err}").as_bytes(), &patients).is_empty());
}

#[test]
fn audit_counts_patients_and_identifying_files_without_showing_them() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("set");
    let mut patients = fake_patients(&root.join("Training"), &["glioma", "pituitary"], 2, 3);
    // Testing/: one patient again (leakage across the split), and a new one.
    let again = patients[0].clone();
    common::dicom::write_slice(&root.join("Testing/glioma/t000.dcm"), &again, 0, 7, 48);
    let new = FakePatient { name: "Wexford^Newcomer".into(), id: "FAKEPID99999".into(), birth_date: "19810203".into(), class: 1 };
    common::dicom::write_slice(&root.join("Testing/pituitary/t001.dcm"), &new, 9, 0, 48);
    // And patient 1 once more under another label.
    common::dicom::write_slice(&root.join("Training/pituitary/x000.dcm"), &patients[1], 1, 5, 48);
    patients.push(new);
    let o = Command::new(common::bin())
        .args(["audit", root.to_str().unwrap()])
        .env("TUMORSCOPE_CACHE", t.path().join("cache"))
        .output()
        .unwrap();
    let out = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "{out}");
    assert!(out.contains("patients: 5 (15 images; per patient min 1, median 3, max 4)"), "{out}");
    assert!(out.contains("files carrying identifying attributes (names, IDs, dates of birth…): 15 (not shown)"), "{out}");
    assert!(out.contains("patients in two classes: 1 (patient "), "{out}");
    assert!(out.contains("patients in both Training/ and Testing/: 1 (patient "), "{out}");
    assert!(leaks(out.as_bytes(), &patients).is_empty(), "{out}");
    let j = Command::new(common::bin())
        .args(["audit", "--json", root.to_str().unwrap()])
        .env("TUMORSCOPE_CACHE", t.path().join("cache"))
        .output()
        .unwrap();
    assert!(j.status.success());
    let v: serde_json::Value = serde_json::from_slice(&j.stdout).unwrap();
    assert_eq!(v["identifying_files"], 15);
    assert_eq!(v["patients"]["in_train_and_test"].as_array().unwrap().len(), 1);
    assert!(leaks(&j.stdout, &patients).is_empty());
}

#[test]
fn a_slice_path_opens_for_the_gallery_and_the_report() {
    let f = nibabel_file("anatomical.nii");
    let reading = tumorscope::data::decode::Reading::default();
    let img = tumorscope::data::decode::open_rgb(&medical::slice_path(&f, 3), &reading).unwrap();
    assert_eq!((img.width(), img.height()), (33, 41));
    let dcm = tumorscope::data::decode::open_rgb(&pydicom_file("MR_small.dcm"), &reading).unwrap();
    assert_eq!((dcm.width(), dcm.height()), (64, 64));
    // The file's window (center 600, width 1600) maps its values, not a stretch to the extremes.
    let raw = medical::dicom::frame(&std::fs::read(pydicom_file("MR_small.dcm")).unwrap(), 0, 1 << 20).unwrap();
    let (_, _, values) = gray_values(raw);
    let (k, v) = values.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap();
    let expect = (((v - 599.5) / 1599.0 + 0.5) * 255.0).round().clamp(0.0, 255.0) as u8;
    assert_eq!(dcm.as_raw()[k * 3], expect);
}

/// `predict --browse` over DICOM slices and a NIfTI volume: the gallery lists every slice, draws it,
/// explains it with Grad-CAM (`g`), and shows no patient data.
#[test]
fn the_gallery_browses_dicom_and_nifti_slices() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("dicom");
    let patients = fake_patients(&data, &["glioma", "meningioma", "pituitary"], 4, 2);
    let o = common::train_small(&data, &t.path().join("runs"), &t.path().join("cache"), &["--epochs", "1"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let run = std::fs::read_dir(t.path().join("runs")).unwrap().next().unwrap().unwrap().path();
    std::fs::copy(nibabel_file("anatomical.nii"), data.join("glioma/volume.nii")).unwrap();
    let name = format!("tumorscope-medical-browse-{}", std::process::id());
    let cmd = format!(
        "env TUMORSCOPE_IMAGES=halfblocks {} predict --run {} --browse --slices 3 {}; sleep 30",
        common::bin().display(),
        run.display(),
        data.display()
    );
    let tmux = common::Tmux::start(&name, &cmd);
    // 24 DICOM slices and the volume's 3 central axial slices.
    let s = tmux.wait_for(&["1/27", "READ-ONLY"], 60);
    assert!(!s.contains("cannot"), "{s}");
    tmux.keys("g");
    let s = tmux.wait_for(&["Grad-CAM"], 30);
    assert!(!s.contains("cannot") && !s.contains("error"), "{s}");
    for _ in 0..26 {
        tmux.keys("Down");
    }
    let s = tmux.wait_for(&["27/27", "volume.nii#"], 30);
    assert!(leaks(s.as_bytes(), &patients).is_empty(), "{s}");
    tmux.keys("q");
}

/// MONOCHROME1 is drawn inverted; the rescale (CT's intercept of -1024) comes before the window, so a
/// window in Hounsfield units means what a radiologist means by it.
#[test]
fn monochrome1_is_inverted_and_the_rescale_comes_before_the_window() {
    use tumorscope::config::imaging::{Imaging, Window};
    use tumorscope::data::decode::{Reading, open_rgb};
    let t = tempfile::tempdir().unwrap();
    let p = FakePatient { name: "Inverse^Ida".into(), id: "FAKEPID1".into(), birth_date: "19700101".into(), class: 2 };
    let two = t.path().join("m2.dcm");
    common::dicom::write_slice(&two, &p, 0, 0, 16);
    let mut bytes = std::fs::read(&two).unwrap();
    let at = bytes.windows(11).position(|w| w == b"MONOCHROME2").unwrap();
    bytes[at + 10] = b'1';
    let one = t.path().join("m1.dcm");
    std::fs::write(&one, &bytes).unwrap();
    let reading = Reading::default();
    let (a, b) = (open_rgb(&two, &reading).unwrap(), open_rgb(&one, &reading).unwrap());
    assert!(a.as_raw().iter().zip(b.as_raw()).all(|(x, y)| *x == 255 - *y));
    assert!(a.as_raw().iter().any(|&v| v > 200) && a.as_raw().iter().any(|&v| v < 50), "a real window, not a flat image");

    let ct = pydicom_file("CT_small.dcm");
    let want = reference(&format!("import pydicom, json; d = pydicom.dcmread({ct:?}); print(json.dumps([float(d.RescaleSlope), float(d.RescaleIntercept)]))"));
    let Raw::Gray { values, slope, intercept, .. } = medical::dicom::frame(&std::fs::read(&ct).unwrap(), 0, 1 << 20).unwrap() else { panic!() };
    assert_eq!(vec![slope, intercept], want);
    // Brain window: centre 40 HU, width 80.
    let brain = Reading { imaging: Imaging { window: Window::Fixed { center: 40.0, width: 80.0 }, ..Default::default() }, ..reading };
    let img = open_rgb(&ct, &brain).unwrap();
    for (k, v) in values.iter().enumerate().step_by(97) {
        let hu = v * slope + intercept;
        let expect = (((hu - 39.5) / 79.0 + 0.5) * 255.0).round().clamp(0.0, 255.0) as u8;
        assert_eq!(img.as_raw()[k * 3], expect, "pixel {k}: {hu} HU");
    }
}

/// A patient scanned again and filed under `Testing/`: those test images would be the patient's own
/// training images in all but name, so they are left out of the test set, and `train` says so.
#[test]
fn test_folder_images_of_a_training_patient_are_left_out() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("set");
    let patients = fake_patients(&root.join("Training"), &["glioma", "meningioma", "pituitary"], 4, 3);
    let testing = fake_patients(&t.path().join("unused"), &["glioma", "meningioma", "pituitary"], 1, 1);
    for (k, p) in testing.iter().enumerate() {
        // New patients (their own numbers), one image each.
        let class = ["glioma", "meningioma", "pituitary"][p.class];
        let fresh = FakePatient { id: format!("NEWPID{k}"), ..p.clone() };
        common::dicom::write_slice(&root.join("Testing").join(class).join(format!("new{k}.dcm")), &fresh, 50 + k, 0, 48);
    }
    // Patient 0 again, two more slices, in Testing/.
    for s in 0..2 {
        common::dicom::write_slice(&root.join(format!("Testing/glioma/again{s}.dcm")), &patients[0], 0, 10 + s, 48);
    }
    let o = common::train_small(&root, &t.path().join("runs"), &t.path().join("cache"), &["--epochs", "1"]);
    let out = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "{out}");
    assert!(out.contains("(2 of them of patients also in the training images)"), "{out}");
    let run = std::fs::read_dir(t.path().join("runs")).unwrap().next().unwrap().unwrap().path();
    let split: serde_json::Value = serde_json::from_slice(&std::fs::read(run.join("split.json")).unwrap()).unwrap();
    let side = |name: &str| {
        split["files"].as_array().unwrap().iter().find(|f| f["path"].as_str().unwrap().ends_with(name)).unwrap()["split"].clone()
    };
    assert_eq!(side("again0.dcm"), "excluded");
    assert_eq!(side("again1.dcm"), "excluded");
    assert_eq!(side("new0.dcm"), "test");
}
