#!/usr/bin/env python3
"""Write a DICOM copy of a JPEG class-folder dataset, for measuring tumorscope's DICOM path on real
pixels: each JPEG becomes a 16-bit MONOCHROME2 MR slice (stored value = 16 * grey + 100, with a stored
window that maps it back), and every `--per-patient` consecutive files of a class share one made-up
PatientID, name and birth date (so splits group them). The source is read, never changed.

    .venv/bin/python scripts/jpeg_to_dicom.py SRC DST [--per-patient 10]
"""
import argparse
import pathlib

import numpy as np
from PIL import Image
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid


def write(src: pathlib.Path, dst: pathlib.Path, patient: int) -> None:
    grey = np.asarray(Image.open(src).convert("L"), dtype=np.uint16)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.PatientName = f"Synthname^Patient{patient:05d}"
    ds.PatientID = f"SYNTHPID{patient:06d}"
    ds.PatientBirthDate = f"19{50 + patient % 40:02d}0101"
    ds.StudyInstanceUID = f"1.2.826.0.1.3680043.10.998.{patient + 1}"
    ds.SeriesInstanceUID = f"{ds.StudyInstanceUID}.1"
    ds.Modality = "MR"
    ds.Rows, ds.Columns = grey.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    # Stored 16*g+100: this centre and width map it back to g within one grey level (DICOM linear window).
    ds.WindowCenter, ds.WindowWidth = 16 * 128 + 100 - 7.5, 16 * 256
    ds.PixelData = (grey * 16 + 100).astype("<u2").tobytes()
    ds.save_as(dst, enforce_file_format=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src", type=pathlib.Path)
    ap.add_argument("dst", type=pathlib.Path)
    ap.add_argument("--per-patient", type=int, default=10)
    a = ap.parse_args()
    patient = 0
    for cls in sorted(p for p in a.src.rglob("*") if p.is_dir() and any(f.suffix.lower() in (".jpg", ".jpeg", ".png") for f in p.iterdir())):
        out = a.dst / cls.relative_to(a.src)
        out.mkdir(parents=True, exist_ok=True)
        files = sorted(f for f in cls.iterdir() if f.suffix.lower() in (".jpg", ".jpeg", ".png"))
        for i, f in enumerate(files):
            if i % a.per_patient == 0:
                patient += 1
            write(f, out / f"{f.stem}.dcm", patient)
    print(f"{a.dst}: {patient} patients")


if __name__ == "__main__":
    main()
