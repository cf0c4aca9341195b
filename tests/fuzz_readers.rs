//! Property tests: whatever bytes reach the image decoder, the dataset cache reader or the
//! events.jsonl reader and tailer, they return an answer (an image, a rebuild, records and skipped
//! lines) and never panic. Both arbitrary bytes and valid files with bytes flipped, cut or appended.
//! The case counts are bounded so the suite stays quick.

mod common;

use proptest::prelude::*;
use std::io::Cursor;
use tumorscope::data::cache::{self, CachedItem};
use tumorscope::data::decode::{self, DEFAULT_MAX_PIXELS};
use tumorscope::run::log::{EventLog, Tailer, read_log};
use tumorscope::run::{Record, TrainEvent};

fn encoded(format: image::ImageFormat) -> Vec<u8> {
    let img = image::RgbImage::from_fn(24, 16, |x, y| image::Rgb([(x * 9) as u8, (y * 13) as u8, 77]));
    let mut c = Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img).write_to(&mut c, format).unwrap();
    c.into_inner()
}

/// Flip bytes at the given positions, cut the end, append junk.
fn mutate(mut bytes: Vec<u8>, flips: &[(usize, u8)], cut: usize, tail: &[u8]) -> Vec<u8> {
    for &(i, b) in flips {
        if !bytes.is_empty() {
            let n = bytes.len();
            bytes[i % n] ^= b;
        }
    }
    bytes.truncate(bytes.len().saturating_sub(cut));
    bytes.extend_from_slice(tail);
    bytes
}

/// A 16-bit MR slice written by dicom-rs, with its patient attributes and a stored window.
fn dicom_sample() -> Vec<u8> {
    static BYTES: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BYTES
        .get_or_init(|| {
            let t = tempfile::tempdir().unwrap();
            let p = common::dicom::FakePatient { name: "A^B".into(), id: "P1".into(), birth_date: "19600101".into(), class: 1 };
            common::dicom::write_slice(&t.path().join("s.dcm"), &p, 0, 0, 12);
            std::fs::read(t.path().join("s.dcm")).unwrap()
        })
        .clone()
}

/// A 6×5×4 int16 NIfTI-1 volume.
fn nifti_sample() -> Vec<u8> {
    let mut h = vec![0u8; 352];
    h[0..4].copy_from_slice(&348i32.to_le_bytes());
    for (k, d) in [3u16, 6, 5, 4, 1, 1, 1, 1].iter().enumerate() {
        h[40 + 2 * k..42 + 2 * k].copy_from_slice(&d.to_le_bytes());
    }
    h[70..72].copy_from_slice(&4i16.to_le_bytes());
    h[72..74].copy_from_slice(&16i16.to_le_bytes());
    h[108..112].copy_from_slice(&352f32.to_le_bytes());
    h[112..116].copy_from_slice(&1f32.to_le_bytes());
    h[344..348].copy_from_slice(b"n+1\0");
    h.extend((0..120i16).flat_map(|v| (v * 37).to_le_bytes()));
    h
}

fn sample_log() -> Vec<u8> {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("events.jsonl");
    let mut log = EventLog::open(&p).unwrap();
    for e in [
        TrainEvent::EpochStart { epoch: 1, epochs: 3 },
        TrainEvent::LrChanged { epoch: 1, from: 1e-3, to: 5e-4, reason: tumorscope::run::events::LrReason::User },
        TrainEvent::Warning { message: "naïve ünïcode".into() },
    ] {
        let r = log.stamp(e);
        log.write(&r).unwrap();
    }
    std::fs::read(&p).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, .. ProptestConfig::default() })]

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = decode::decode_bytes(&bytes, 16, DEFAULT_MAX_PIXELS);
    }

    #[test]
    fn decoding_damaged_images_never_panics(
        png in any::<bool>(),
        flips in prop::collection::vec((any::<usize>(), 1u8..), 0..8),
        cut in 0usize..64,
        tail in prop::collection::vec(any::<u8>(), 0..16),
    ) {
        let base = encoded(if png { image::ImageFormat::Png } else { image::ImageFormat::Jpeg });
        let bytes = mutate(base, &flips, cut, &tail);
        let _ = decode::decode_bytes(&bytes, 16, DEFAULT_MAX_PIXELS);
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("x.img");
        std::fs::write(&p, &bytes).unwrap();
        let _ = decode::decode_file(&p, 16, &decode::Reading::default());
    }

    #[test]
    fn reading_a_damaged_cache_never_panics(
        flips in prop::collection::vec((any::<usize>(), 1u8..), 0..8),
        cut in 0usize..40,
        tail in prop::collection::vec(any::<u8>(), 0..16),
        junk in prop::collection::vec(any::<u8>(), 0..256),
        expect in 0usize..4,
    ) {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("c.bin");
        cache::write(&p, &[CachedItem { hash: 7, error: None }, CachedItem { hash: 0, error: Some("bad".into()) }], &[5; 12]).unwrap();
        let good = std::fs::read(&p).unwrap();
        std::fs::write(&p, mutate(good, &flips, cut, &tail)).unwrap();
        let _ = cache::read(&p, expect, 12);
        std::fs::write(&p, [b"TSCACHE1".as_slice(), &junk].concat()).unwrap();
        let _ = cache::read(&p, 2, 12);
    }

    #[test]
    fn reading_and_tailing_a_damaged_log_never_panics(
        flips in prop::collection::vec((any::<usize>(), 1u8..), 0..8),
        cut in 0usize..80,
        tail in prop::collection::vec(any::<u8>(), 0..32),
        split in any::<usize>(),
    ) {
        let bytes = mutate(sample_log(), &flips, cut, &tail);
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("events.jsonl");
        std::fs::write(&p, &bytes).unwrap();
        let whole = read_log(&p).unwrap();
        // Tailing it in two steps finds the same records as reading it whole.
        let at = split % (bytes.len() + 1);
        std::fs::write(&p, &bytes[..at]).unwrap();
        let mut tailer = Tailer::new(&p);
        let mut tailed: Vec<Record> = tailer.poll().unwrap();
        std::fs::write(&p, &bytes).unwrap();
        tailed.extend(tailer.poll().unwrap());
        prop_assert_eq!(tailed, whole.records);
    }
}

proptest! {
    // Each case writes files and walks a folder: fewer cases, the same kinds of damage.
    #![proptest_config(ProptestConfig { cases: 150, .. ProptestConfig::default() })]

    #[test]
    fn decoding_damaged_dicom_and_nifti_never_panics(
        nifti in any::<bool>(),
        slice in 0usize..6,
        flips in prop::collection::vec((any::<usize>(), 1u8..), 0..8),
        cut in 0usize..600,
        tail in prop::collection::vec(any::<u8>(), 0..16),
    ) {
        let (base, name) = if nifti { (nifti_sample(), "x.nii") } else { (dicom_sample(), "x.dcm") };
        let bytes = mutate(base, &flips, cut, &tail);
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join(name);
        std::fs::write(&p, &bytes).unwrap();
        let reading = decode::Reading::default();
        let _ = decode::decode_file(&p, 16, &reading);
        let _ = decode::decode_file(&tumorscope::data::medical::slice_path(&p, slice), 16, &reading);
        let _ = decode::open_rgb(&p, &reading);
        let _ = tumorscope::data::discover::discover_with(t.path(), &reading);
    }
}
