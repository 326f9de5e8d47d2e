"""Derived DICOM headers: 0 dciodvfy errors for every DICOM test input (synthetic, pydicom's real CT files,
anonymized copies with empty UIDs and stripped Type 2 attributes), stable generated StudyInstanceUIDs,
Laterality (Type 2C) and SOP Class."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pydicom
import pytest
from corpus_harness import dciodvfy_errors
from pydicom.data import get_testdata_file
from pydicom.uid import UID, CTImageStorage

from ctharmonize.io import read_volume, write_volume

DCIODVFY = shutil.which("dciodvfy")
TEST_FILES = Path(get_testdata_file("CT_small.dcm")).parent  # pydicom's bundled test files (offline)

# Type 2 attributes an anonymizer may drop entirely (and Type 1 UIDs it leaves empty, below).
TYPE2_STRIPPED = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "ReferringPhysicianName", "StudyID",
                  "AccessionNumber", "StudyDate", "StudyTime", "KVP", "PatientPosition", "AcquisitionNumber",
                  "Laterality", "PositionReferenceIndicator", "SliceLocation")
EMPTIED_UIDS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPClassUID", "FrameOfReferenceUID")


def _source_errors(files: list[Path]) -> list[str]:
    """dciodvfy errors of the (crafted) source files themselves: proves the input really is invalid."""
    errors = []
    for f in files:
        out = subprocess.run([DCIODVFY, str(f)], capture_output=True, text=True, timeout=60)
        errors += [line for line in (out.stdout + out.stderr).splitlines() if line.startswith("Error")]
    return errors


def _anonymize(files: list[Path], folder: Path, keep: dict | None = None) -> list[Path]:
    """Copies with empty Study/Series/SOP Class/Frame of Reference UIDs and Type 2 attributes removed;
    ``keep`` sets pseudonymized values (e.g. PatientID) after stripping."""
    folder.mkdir(parents=True)
    out = []
    for f in files:
        ds = pydicom.dcmread(f)
        for keyword in TYPE2_STRIPPED:
            if keyword in ds:
                del ds[keyword]
        for keyword in EMPTIED_UIDS:
            setattr(ds, keyword, "")
        for keyword, value in (keep or {}).items():
            setattr(ds, keyword, value)
        ds.save_as(folder / f.name)
        out.append(folder / f.name)
    return out


def _ct5n() -> list[Path]:
    return sorted((TEST_FILES / "dicomdirtests" / "98892001" / "CT5N").iterdir())


def _inputs(tmp_path: Path, series_writer, hu_volume) -> dict[str, tuple[Path, dict]]:
    """Every DICOM test input: (path, read options)."""
    series_writer(tmp_path / "synthetic", hu_volume((4, 32, 32), seed=7))
    stripped = _anonymize([TEST_FILES / "CT_small.dcm"], tmp_path / "anon_small")
    _anonymize(_ct5n(), tmp_path / "anon_ct5n")
    return {
        "synthetic": (tmp_path / "synthetic", {}),
        "CT_small": (TEST_FILES / "CT_small.dcm", {}),
        "CT5N": (TEST_FILES / "dicomdirtests" / "98892001" / "CT5N", {}),
        "693_J2KI": (TEST_FILES / "693_J2KI.dcm", {}),
        # real gantry tilt (-22 deg) with an oblique ImageOrientationPatient
        "J2K_tilted": (TEST_FILES / "J2K_pixelrep_mismatch.dcm", {"slicewise": True}),
        # real series with a 202 mm gap between its slices
        "CT2_gap": (TEST_FILES / "dicomdirtests" / "77654033" / "CT2", {"slicewise": True}),
        "anon_CT_small": (stripped[0], {}),
        "anon_CT5N": (tmp_path / "anon_ct5n", {}),
    }


@pytest.mark.parametrize("name", ["synthetic", "CT_small", "CT5N", "693_J2KI", "J2K_tilted", "CT2_gap",
                                  "anon_CT_small", "anon_CT5N"])
def test_derived_series_of_every_dicom_input_passes_dciodvfy(tmp_path, series_writer, hu_volume, name):
    path, options = _inputs(tmp_path, series_writer, hu_volume)[name]
    vol = read_volume(path, **options)
    out = write_volume(vol.with_array(vol.array + 1.0), tmp_path / "derived", model_name="m",
                       target_kernel="siemens_b30f")
    assert dciodvfy_errors(out) == []
    files = sorted(out.iterdir())
    assert len(files) == vol.shape[0]
    derived = [pydicom.dcmread(f) for f in files]
    assert {d.SOPClassUID for d in derived} == {CTImageStorage}
    assert len({d.StudyInstanceUID for d in derived}) == 1 and len({d.SeriesInstanceUID for d in derived}) == 1
    assert len({d.FrameOfReferenceUID for d in derived}) == 1
    for d in derived:
        assert UID(d.StudyInstanceUID).is_valid and UID(d.FrameOfReferenceUID).is_valid
    src = pydicom.dcmread(path if path.is_file() else sorted(path.iterdir())[0])
    if str(src.StudyInstanceUID):
        assert derived[0].StudyInstanceUID == src.StudyInstanceUID  # kept when the source has one


def test_anonymized_source_gets_one_stable_generated_study(tmp_path):
    files = _anonymize(_ct5n(), tmp_path / "anon")
    assert _source_errors(files)  # the input itself is invalid (dciodvfy cannot even tell its IOD)
    assert pydicom.dcmread(files[0]).StudyInstanceUID == "" and pydicom.dcmread(files[0]).SOPClassUID == ""
    first = write_volume(read_volume(tmp_path / "anon"), tmp_path / "out1")
    again = write_volume(read_volume(tmp_path / "anon"), tmp_path / "out2")
    uids = {pydicom.dcmread(f).StudyInstanceUID for f in sorted(first.iterdir())}
    assert len(uids) == 1 and "" not in uids
    study = uids.pop()
    assert {pydicom.dcmread(f).StudyInstanceUID for f in again.iterdir()} == {study}  # stable per source
    derived = pydicom.dcmread(next(first.iterdir()))
    assert "StudyInstanceUID generated" in derived.DerivationDescription  # provenance
    assert derived.SeriesInstanceUID and derived.SeriesInstanceUID != study

    other = _anonymize([TEST_FILES / "CT_small.dcm"], tmp_path / "anon_other")  # another fully anonymized study
    out = write_volume(read_volume(other[0]), tmp_path / "out3")
    assert pydicom.dcmread(next(out.iterdir())).StudyInstanceUID != study  # never collapsed into one


def test_two_series_of_one_pseudonymized_study_land_in_one_generated_study(tmp_path):
    ct5n = _ct5n()
    keep = {"PatientID": "ANON-0042", "StudyDate": "20200101", "StudyTime": "101500"}
    _anonymize(ct5n[:3], tmp_path / "series_a", keep)
    _anonymize(ct5n[3:], tmp_path / "series_b", keep)
    _anonymize(ct5n[3:], tmp_path / "other_patient", {**keep, "PatientID": "ANON-0043"})
    _anonymize(ct5n[3:], tmp_path / "other_date", {**keep, "StudyDate": "20210101"})
    _anonymize(ct5n[:3], tmp_path / "patient_only_a", {"PatientID": "ANON-0042"})  # no study-level identifier
    _anonymize(ct5n[3:], tmp_path / "patient_only_b", {"PatientID": "ANON-0042"})
    studies = {}
    for name in ("series_a", "series_b", "other_patient", "other_date", "patient_only_a", "patient_only_b"):
        out = write_volume(read_volume(tmp_path / name), tmp_path / f"out_{name}")
        assert dciodvfy_errors(out) == []
        studies[name] = {pydicom.dcmread(f).StudyInstanceUID for f in out.iterdir()}
    assert studies["series_a"] == studies["series_b"] and len(studies["series_a"]) == 1
    assert studies["other_patient"] != studies["series_a"] and studies["other_date"] != studies["series_a"]
    # a patient ID alone does not identify a study: such series are never merged into one
    assert studies["patient_only_a"] != studies["patient_only_b"]


@pytest.mark.parametrize(("body_part", "laterality", "expected"), [
    ("CHEST", "R", None),     # unpaired body part: Laterality must be absent
    ("CHEST", None, None),
    (None, None, ""),         # unknown body part: present, empty (unknown)
    ("KNEE", "R", "R"),       # paired: the source's value
    ("KNEE", "B", ""),        # not an enumerated value of (0020,0060): unknown
])
def test_laterality_type_2c(tmp_path, series_writer, hu_volume, body_part, laterality, expected):
    extra = {}
    if body_part is not None:
        extra["BodyPartExamined"] = body_part
    if laterality is not None:
        extra["Laterality"] = laterality
    series_writer(tmp_path / "src", hu_volume((2, 8, 8)), extra=extra)
    out = write_volume(read_volume(tmp_path / "src"), tmp_path / "out")
    ds = pydicom.dcmread(next(out.iterdir()))
    assert ds.get("Laterality") == expected
    assert dciodvfy_errors(out) == []
