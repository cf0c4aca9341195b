//! A fixture builder: class folders of DICOM slices of a few fake patients, written with dicom-rs.
//! Every file carries identifying attributes (made-up names, IDs, birth dates, institution) so that
//! tests can check none of them reaches a run folder, a report or the screen.

use dicom_core::value::PrimitiveValue;
use dicom_core::{DataElement, Tag, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
use std::path::Path;

/// One fake patient: what identifies them (all of it must stay out of every output).
#[derive(Debug, Clone)]
pub struct FakePatient {
    pub name: String,
    pub id: String,
    pub birth_date: String,
    pub class: usize,
}

impl FakePatient {
    /// The strings a scan for leaked patient data looks for.
    pub fn secrets(&self) -> Vec<String> {
        vec![self.name.clone(), self.name.replace('^', " "), self.id.clone(), self.birth_date.clone()]
    }
}

pub const INSTITUTION: &str = "Fakeville General Hospital";

fn text(obj: &mut InMemDicomObject, tag: Tag, vr: VR, v: &str) {
    obj.put(DataElement::new(tag, vr, PrimitiveValue::from(v)));
}

fn us(obj: &mut InMemDicomObject, tag: Tag, v: u16) {
    obj.put(DataElement::new(tag, VR::US, PrimitiveValue::U16(vec![v].into())));
}

/// A 16-bit MR slice of `size`² pixels: a class-dependent bright blob on a patient-dependent texture,
/// with a stored window, written as explicit little endian.
pub fn write_slice(path: &Path, p: &FakePatient, patient_no: usize, slice: usize, size: u16) {
    let mut obj = InMemDicomObject::new_empty();
    text(&mut obj, tags::PATIENT_NAME, VR::PN, &p.name);
    text(&mut obj, tags::PATIENT_ID, VR::LO, &p.id);
    text(&mut obj, tags::PATIENT_BIRTH_DATE, VR::DA, &p.birth_date);
    text(&mut obj, tags::INSTITUTION_NAME, VR::LO, INSTITUTION);
    text(&mut obj, tags::MODALITY, VR::CS, "MR");
    let study = format!("1.2.826.0.1.3680043.10.999.{}", patient_no + 1);
    text(&mut obj, tags::STUDY_INSTANCE_UID, VR::UI, &study);
    text(&mut obj, tags::SERIES_INSTANCE_UID, VR::UI, &format!("{study}.1"));
    let sop = format!("{study}.1.{}", slice + 1);
    text(&mut obj, tags::SOP_INSTANCE_UID, VR::UI, &sop);
    text(&mut obj, tags::SOP_CLASS_UID, VR::UI, uids::MR_IMAGE_STORAGE);
    text(&mut obj, tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2");
    us(&mut obj, tags::SAMPLES_PER_PIXEL, 1);
    us(&mut obj, tags::ROWS, size);
    us(&mut obj, tags::COLUMNS, size);
    us(&mut obj, tags::BITS_ALLOCATED, 16);
    us(&mut obj, tags::BITS_STORED, 12);
    us(&mut obj, tags::HIGH_BIT, 11);
    us(&mut obj, tags::PIXEL_REPRESENTATION, 0);
    text(&mut obj, tags::WINDOW_CENTER, VR::DS, "1200");
    text(&mut obj, tags::WINDOW_WIDTH, VR::DS, "2400");
    let n = size as u32;
    let pixels: Vec<u16> = (0..n * n)
        .map(|k| {
            let (x, y) = (k % n, k / n);
            let inside = match p.class {
                0 => x < n / 3 && y < n / 3,
                1 => x > 2 * n / 3 && y > 2 * n / 3,
                _ => (n / 3..2 * n / 3).contains(&x) && (n / 3..2 * n / 3).contains(&y),
            };
            let texture = ((x * 37 + y * 11 + (patient_no as u32) * 101 + slice as u32 * 13) % 400) as u16;
            if inside { 3000 + texture } else { 200 + texture }
        })
        .collect();
    obj.put(DataElement::new(tags::PIXEL_DATA, VR::OW, PrimitiveValue::U16(pixels.into())));
    let file = obj
        .with_meta(
            FileMetaTableBuilder::new()
                .transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN)
                .media_storage_sop_class_uid(uids::MR_IMAGE_STORAGE)
                .media_storage_sop_instance_uid(sop.as_str()),
        )
        .unwrap();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    file.write_to_file(path).unwrap();
}

/// `patients_per_class` fake patients in each of `classes`, `slices` slices each, as
/// `root/<class>/imgNNN.dcm` or, for every other patient, `root/<class>/caseNN/imgNNN.dcm` (names say
/// nothing about the patient). The patients, in order.
pub fn fake_patients(root: &Path, classes: &[&str], patients_per_class: usize, slices: usize) -> Vec<FakePatient> {
    let first = ["Alderwood", "Brackenridge", "Cormorant", "Dunmore", "Elsinore", "Fairweather", "Glenhaven", "Holloway"];
    let mut out = vec![];
    let mut file_no = 0;
    for (c, class) in classes.iter().enumerate() {
        for k in 0..patients_per_class {
            let no = out.len();
            let p = FakePatient {
                name: format!("{}^Testperson{}", first[no % first.len()], no),
                id: format!("FAKEPID{:05}", 48213 + no * 7),
                birth_date: format!("19{:02}0{}1{}", 40 + no, 1 + no % 9, no % 10),
                class: c,
            };
            for s in 0..slices {
                // Odd patients as an export lays them out (`class/caseNN/`), even ones flat.
                let dir = if no % 2 == 1 { root.join(class).join(format!("case{no:02}")) } else { root.join(class) };
                write_slice(&dir.join(format!("img{file_no:03}.dcm")), &p, no, s, 48);
                file_no += 1;
            }
            let _ = k;
            out.push(p);
        }
    }
    out
}
