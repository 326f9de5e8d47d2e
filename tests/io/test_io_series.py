"""Series discovery and selection in study folders and DICOMDIRs (ctharmonize.io.series).

Every study here is written by the test with pydicom: two axial CT reconstructions of one
acquisition (GE STANDARD as series 2, BONE as series 3), a localizer (series 1), an RGB secondary
capture (series 90), a radiation dose SR without pixels (series 99), a notes.txt and a file that
is not DICOM. Expected values come from what the test wrote.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
from conftest import known_hu, tree_digest, write_series
from corpus_harness import one_line_error, run_cli
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.fileset import FileSet
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

from ctharmonize.errors import (
    ConfigError,
    CorruptFileError,
    MultipleSeriesError,
    SelectionRulesError,
    SeriesNotFoundError,
    UnsupportedFormatError,
)
from ctharmonize.io.read import read_volume
from ctharmonize.io.series import list_series, scan_study, select_series, series_orientation
from ctharmonize.io.series_rules import SERIES_RULES_FILE, load_rules

GE = "GE MEDICAL SYSTEMS"
DOSE_SR = "1.2.840.10008.5.1.4.1.1.88.67"  # X-Ray Radiation Dose SR Storage
SHAPE = (4, 32, 32)
CORONAL = np.column_stack([(1.0, 0.0, 0.0), (0.0, 0.0, -1.0), (0.0, 1.0, 0.0)])  # row, column, normal


def _common(study_uid: str, number: int, description: str) -> dict:
    return {"StudyInstanceUID": study_uid, "SeriesNumber": number, "SeriesDescription": description,
            "Manufacturer": GE, "ManufacturerModelName": "LightSpeed VCT"}


def _ct(folder: Path, hu: np.ndarray, study_uid: str, number: int, kernel: str, prefix: str, **extra) -> dict:
    """An axial CT reconstruction (one file per slice, names ``<prefix>NN.dcm``)."""
    fields = {**_common(study_uid, number, f"Chest {kernel}"), "ConvolutionKernel": kernel, **extra}
    return write_series(folder, hu, names=[f"{prefix}{k:02d}.dcm" for k in range(hu.shape[0])], extra=fields)


def _localizer(folder: Path, study_uid: str) -> dict:
    fields = {**_common(study_uid, 1, "Topogram"), "ConvolutionKernel": "STANDARD",
              "ImageType": ["ORIGINAL", "PRIMARY", "LOCALIZER"]}
    return write_series(folder, known_hu((1, 32, 32), seed=9), direction=CORONAL, names=["loc01.dcm"], extra=fields)


def _save(ds: Dataset, path: Path) -> None:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def _base(sop_class: str, modality: str, study_uid: str, number: int, description: str) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, generate_uid()
    ds.Modality = modality
    ds.PatientName, ds.PatientID = "Test^Patient", "P-0001"
    ds.StudyInstanceUID, ds.StudyDate, ds.StudyTime, ds.StudyID = study_uid, "20240102", "101010", "1"
    ds.SeriesInstanceUID, ds.SeriesNumber, ds.SeriesDescription = generate_uid(), number, description
    ds.InstanceNumber = 1
    ds.Manufacturer = GE
    return ds


def _rgb_capture(path: Path, study_uid: str, modality: str = "OT") -> Dataset:
    ds = _base(SecondaryCaptureImageStorage, modality, study_uid, 90, "Dose screen")
    ds.ConversionType = "WSD"
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.Rows, ds.Columns = 16, 16
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = np.full((16, 16, 3), 200, np.uint8).tobytes()
    _save(ds, path)
    return ds


def _dose_report(path: Path, study_uid: str) -> Dataset:
    ds = _base(DOSE_SR, "SR", study_uid, 99, "Dose Report")
    ds.ValueType, ds.CompletionFlag, ds.VerificationFlag = "CONTAINER", "COMPLETE", "UNVERIFIED"
    ds.ContentDate, ds.ContentTime = "20240102", "101500"
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = "113701", "DCM", "X-Ray Radiation Dose Report"
    ds.ConceptNameCodeSequence = [code]
    _save(ds, path)
    return ds


@pytest.fixture
def study(tmp_path) -> dict:
    """A flat study folder: localizer, STANDARD (2) and BONE (3) reconstructions, RGB SC, dose SR."""
    folder, uid = tmp_path / "study", generate_uid()
    std_hu, bone_hu = known_hu(SHAPE, seed=1), known_hu(SHAPE, seed=2)
    out = {
        "path": folder, "study_uid": uid, "std_hu": std_hu, "bone_hu": bone_hu,
        "std": _ct(folder, std_hu, uid, 2, "STANDARD", "std"),
        "bone": _ct(folder, bone_hu, uid, 3, "BONE", "bone"),
        "loc": _localizer(folder, uid),
        "sc": _rgb_capture(folder / "sc01.dcm", uid),
        "sr": _dose_report(folder / "sr01.dcm", uid),
    }
    (folder / "notes.txt").write_text("clinical notes, not DICOM")
    (folder / "export.log2").write_bytes(b"not a DICOM file at all" * 20)
    return out


def test_list_series_fields_and_verdicts(study):
    found = {s.number: s for s in list_series(study["path"])}
    assert sorted(found) == [1, 2, 3, 90, 99]
    assert [s.number for s in list_series(study["path"])] == [1, 2, 3, 90, 99]  # sorted by number

    for number, key, kernel, domain in ((2, "std", "STANDARD", "ge_standard"), (3, "bone", "BONE", "ge_bone")):
        s = found[number]
        assert s.uid == study[key]["series_uid"]
        assert (s.modality, s.orientation, s.num_files) == ("CT", "axial", SHAPE[0])
        assert s.files == tuple(sorted(study[key]["files"]))
        assert s.kernel == (kernel,) and s.domain == domain
        assert s.description == f"Chest {kernel}" and s.study_uid == study["study_uid"]
        assert s.image_type == ("ORIGINAL", "PRIMARY", "AXIAL")
        assert s.sop_class == pydicom.uid.CTImageStorage and s.sop_class_name == "CT Image Storage"
        assert s.harmonizable and s.reason == "" and s.readable

    loc = found[1]
    assert loc.uid == study["loc"]["series_uid"] and loc.orientation == "coronal" and loc.num_files == 1
    assert "LOCALIZER" in loc.image_type
    assert not loc.harmonizable and loc.reason.startswith("localizer") and loc.readable

    sc = found[90]
    assert (sc.uid, sc.modality, sc.sop_class) == (study["sc"].SeriesInstanceUID, "OT", SecondaryCaptureImageStorage)
    assert not sc.harmonizable and not sc.readable and sc.reason.startswith("colour image (RGB)")

    sr = found[99]
    assert (sr.uid, sr.modality, sr.sop_class, sr.num_files) == (study["sr"].SeriesInstanceUID, "SR", DOSE_SR, 1)
    assert not sr.harmonizable and not sr.has_image and "dose report" in sr.reason

    scan = scan_study(study["path"])
    notes = "\n".join(scan.notes())
    assert "export.log2: skipped (not a DICOM file)" in notes
    assert "notes.txt: ignored by name" in notes


def test_read_without_series_lists_the_two_ct_candidates(study, digest):
    before = digest(study["path"])
    with pytest.raises(MultipleSeriesError) as exc:
        read_volume(study["path"])
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith(f"{study['path']}: 2 series match selection")
    matched, skipped = msg.split("; skipped: ")
    for key, number, kernel in (("std", 2, "STANDARD"), ("bone", 3, "BONE")):
        assert f"series {number} (UID {study[key]['series_uid']}, 'Chest {kernel}', 4 slices, kernel {kernel})" in matched
    assert study["loc"]["series_uid"] not in matched  # the localizer is not a candidate ...
    assert "series 1 'Topogram' (localizer" in skipped  # ... but is named, with the reason it was skipped
    assert "series 90 'Dose screen' (colour image (RGB))" in skipped and "series 99 'Dose Report' (no image" in skipped
    assert "pass --series UID|NUMBER to pick one" in msg
    assert digest(study["path"]) == before


def test_series_by_number_and_uid_read_the_written_hu(study):
    for request in (3, "3", study["bone"]["series_uid"]):
        vol = read_volume(study["path"], series=request)
        np.testing.assert_array_equal(vol.array, study["bone_hu"])
        assert vol.header.series_instance_uid == study["bone"]["series_uid"]
        assert vol.header.convolution_kernel == ("BONE",)
    vol = read_volume(study["path"], series=study["std"]["series_uid"])
    np.testing.assert_array_equal(vol.array, study["std_hu"])
    assert "series 2 (" in vol.header.extra["selected_series"]
    assert select_series(study["path"], "2").files == tuple(sorted(study["std"]["files"]))
    # an explicit request may read a series that is not harmonizable
    assert read_volume(study["path"], series=1).shape == (1, 32, 32)


def test_series_request_errors(study):
    with pytest.raises(SeriesNotFoundError, match=r"no series with SeriesNumber 7; series here: series 1 \("):
        read_volume(study["path"], series=7)
    with pytest.raises(SeriesNotFoundError, match="no series with SeriesInstanceUID 1.2.3.4"):
        read_volume(study["path"], series="1.2.3.4")
    with pytest.raises(SeriesNotFoundError, match="neither a SeriesNumber"):
        read_volume(study["path"], series="bone")
    with pytest.raises(UnsupportedFormatError, match="cannot be read as a CT volume: colour image"):
        read_volume(study["path"], series=90)
    with pytest.raises(UnsupportedFormatError, match="no image"):
        read_volume(study["path"], series=99)


def test_one_axial_ct_with_localizer_and_captures_is_picked(tmp_path):
    folder, uid = tmp_path / "study", generate_uid()
    hu = known_hu(SHAPE, seed=4)
    ct = _ct(folder, hu, uid, 2, "BONE", "ct")
    _localizer(folder, uid)
    _rgb_capture(folder / "sc01.dcm", uid, modality="CT")  # RGB capture labelled CT
    _dose_report(folder / "sr01.dcm", uid)
    vol = read_volume(folder)
    np.testing.assert_array_equal(vol.array, hu)
    assert vol.header.series_instance_uid == ct["series_uid"]
    assert vol.header.extra["selected_series"].startswith("series 2 (")
    assert select_series(folder).uid == ct["series_uid"]


def test_unknown_kernel_is_not_picked_by_default(tmp_path):
    folder, uid = tmp_path / "study", generate_uid()
    hu = known_hu(SHAPE, seed=5)
    known = _ct(folder, hu, uid, 2, "BONE", "ge")
    unknown = _ct(folder, known_hu(SHAPE, seed=6), uid, 4, "Qx99", "qx")
    np.testing.assert_array_equal(read_volume(folder).array, hu)
    assert select_series(folder).uid == known["series_uid"]
    # without the known kernel no candidate is left: the error says why for each series
    for f in known["files"]:
        f.unlink()
    _localizer(folder, uid)
    with pytest.raises(MultipleSeriesError) as exc:
        read_volume(folder)
    msg = str(exc.value)
    assert "no series matches the default selection rules" in msg
    assert f"series 4 (UID {unknown['series_uid']}" in msg and "kernel not in the domain registry" in msg


def test_rules_select_by_description_regex_and_numbers(study, tmp_path):
    by_description = {"selections": [{"name": "bone recon", "conditions": {"SeriesDescription": "(?i)bone$"}}]}
    np.testing.assert_array_equal(read_volume(study["path"], rules=by_description).array, study["bone_hu"])
    path = tmp_path / "rules.json"
    path.write_text(json.dumps({"selections": [
        {"name": "never", "conditions": {"SeriesDescription": "lung"}},  # matches nothing: next one decides
        {"name": "standard", "conditions": {"ConvolutionKernel": "(?i)^standard$", "ImageType": ["AXIAL"]}},
    ]}))
    np.testing.assert_array_equal(read_volume(study["path"], rules=str(path)).array, study["std_hu"])
    cases = {
        "SeriesNumber": ([3, ">="], "bone"), "SliceThickness": ([2.0, 3.0], "both"),
        "ImageType": (["ORIGINAL", "!AXIAL"], "none"), "InstanceNumber": (4, "both"),
    }
    for keyword, (condition, expect) in cases.items():
        rules = {"selections": [{"conditions": {keyword: condition, "Modality": "CT",
                                                "ImageOrientationPatient": "Axial"}}]}
        if expect == "bone":
            assert select_series(study["path"], rules=rules).uid == study["bone"]["series_uid"]
            continue
        with pytest.raises(MultipleSeriesError) as exc:  # several image series, no unique match
            select_series(study["path"], rules=rules)
        text = "2 series match selection" if expect == "both" else "no series matches the selection rules"
        assert text in str(exc.value), keyword
    # a rule may pick a series the default would skip (the coronal localizer)
    rules = {"selections": [{"conditions": {"ImageOrientationPatient": "coronal"}}]}
    assert select_series(study["path"], rules=rules).uid == study["loc"]["series_uid"]


def test_rules_on_a_single_series_folder_are_applied(ct_series):
    with pytest.raises(SeriesNotFoundError, match="no series matches the selection rules of rules"):
        read_volume(ct_series["path"], rules={"selections": [{"conditions": {"SeriesDescription": "abdomen"}}]})
    rules = {"selections": [{"conditions": {"SeriesDescription": "(?i)chest"}}]}
    np.testing.assert_array_equal(read_volume(ct_series["path"], rules=rules).array, ct_series["hu"])


@pytest.mark.parametrize("text, problem", [
    ('{"selections": [', "not valid JSON: line 1"),
    ('{"rules": []}', "(top level): 'selections' is a required property"),
    ('{"selections": [{"name": "x", "conditions": {"SeriesDescription": "(bone"}}]}',
     "selections[0].conditions.SeriesDescription: invalid regular expression '(bone'"),
    ('{"selections": [{"conditions": {"SeriesDescripton": "bone"}}]}',
     "selections[0].conditions.SeriesDescripton: 'SeriesDescripton' is not a DICOM attribute keyword"),
    ('{"selections": [{"conditions": {"ImageOrientationPatient": "transverse"}}]}',
     "expected 'Axial', 'Coronal' or 'Sagittal'"),
    ('{"selections": [{"conditions": {"Modality": {"re": "CT"}}}]}', "selections[0].conditions.Modality"),
])
def test_invalid_rules_file_is_one_line_naming_it(study, tmp_path, capsys, text, problem):
    path = tmp_path / "my rules.json"
    path.write_text(text)
    with pytest.raises(SelectionRulesError) as exc:
        read_volume(study["path"], rules=path)
    assert str(exc.value).startswith(f"{path}: ") and problem in str(exc.value) and "\n" not in str(exc.value)
    rc, out, err = run_cli(capsys, "series", study["path"], "--rules", path)
    assert rc == 2 and out == ""
    one_line_error(err, str(path), problem)


def test_rule_that_cannot_apply_names_the_rules(study):
    rules = {"selections": [{"conditions": {"SeriesNumber": [3, "=>"]}}]}
    with pytest.raises(SelectionRulesError, match=r"^rules: selections\[0\]\.conditions\.SeriesNumber: expected"):
        select_series(study["path"], rules=rules)


def test_default_rules_file_is_sdk_format():
    doc = json.loads(SERIES_RULES_FILE.read_text())
    assert set(doc) <= {"description", "selections"}
    for sel in doc["selections"]:
        assert isinstance(sel["name"], str) and isinstance(sel["conditions"], dict)
        assert set(sel) <= {"name", "conditions", "ctharmonize"}
    rules = load_rules()
    assert rules.source == str(SERIES_RULES_FILE) and rules.selections[0].known_kernel


def test_dicomdir_cd_layout(study, tmp_path):
    fs = FileSet()
    for f in study["std"]["files"] + study["bone"]["files"] + [study["path"] / "sr01.dcm"]:
        fs.add(pydicom.dcmread(f))
    cd = tmp_path / "cd"
    fs.write(cd)
    images = [p for p in cd.rglob("*") if p.is_file() and p.name != "DICOMDIR"]
    assert images and all(p.suffix == "" for p in images)  # IM000000 ... without extension
    for source in (cd / "DICOMDIR", cd):
        found = {s.number: s for s in list_series(source)}
        assert sorted(found) == [2, 3, 99], source
        assert found[3].uid == study["bone"]["series_uid"] and found[3].num_files == SHAPE[0]
        assert found[99].reason.startswith("no image")
    np.testing.assert_array_equal(read_volume(cd / "DICOMDIR", series=3).array, study["bone_hu"])
    np.testing.assert_array_equal(read_volume(cd, series=2).array, study["std_hu"])
    with pytest.raises(MultipleSeriesError, match="2 series match"):
        read_volume(cd / "DICOMDIR")
    # a DICOMDIR whose files are gone
    for p in images:
        p.unlink()
    scan = scan_study(cd / "DICOMDIR")
    assert not scan.series and len(scan.skipped) == 2 * SHAPE[0] + 1
    assert all(s.reason == "listed in the DICOMDIR but missing" for s in scan.skipped)


def test_dicomdir_of_one_series_reads_it(ct_series, tmp_path):
    fs = FileSet()
    for f in ct_series["files"]:
        fs.add(pydicom.dcmread(f))
    fs.write(tmp_path / "cd")
    np.testing.assert_array_equal(read_volume(tmp_path / "cd" / "DICOMDIR").array, ct_series["hu"])


def test_empty_series_uid_groups_by_folder_and_number(tmp_path):
    study = tmp_path / "anon"
    a_hu, b_hu = known_hu(SHAPE, seed=7), known_hu(SHAPE, seed=8)
    anon = {"StudyInstanceUID": "", "SeriesInstanceUID": ""}
    _ct(study / "a", a_hu, "", 5, "BONE", "im", **anon)
    _ct(study / "b", b_hu, "", 6, "BONE", "im", **anon)
    _ct(study / "c", b_hu, "", 6, "BONE", "im", **anon)  # as in b/: only the folder differs
    found = list_series(study)
    assert [(s.number, s.uid, s.num_files, s.folder.name) for s in found] == [
        (5, "", 4, "a"), (6, "", 4, "b"), (6, "", 4, "c")]
    np.testing.assert_array_equal(read_volume(study, series=5).array, a_hu)
    with pytest.raises(MultipleSeriesError, match="2 series have SeriesNumber 6"):
        read_volume(study, series=6)
    # one anonymized folder holding two series with empty UIDs but different numbers
    flat = tmp_path / "flat"
    _ct(flat, a_hu, "", 5, "BONE", "x", **anon)
    _ct(flat, b_hu, "", 6, "BONE", "y", **anon)
    assert [s.number for s in list_series(flat)] == [5, 6]
    np.testing.assert_array_equal(read_volume(flat, series=6).array, b_hu)


def test_corrupt_header_beside_the_chosen_series_is_refused(study, tmp_path):
    bad = study["path"] / "broken.dcm"
    bad.write_bytes(b"\x00" * 128 + b"DICM" + b"\x02\x00\x10\x00UI\xff\xff garbage")
    with pytest.raises(CorruptFileError) as exc:
        read_volume(study["path"], series=3)
    assert str(exc.value).startswith(f"{bad}: unreadable DICOM header") and "series 3 (" in str(exc.value)
    # in another folder it cannot be one of the chosen series' slices: ignored
    bad.rename(tmp_path / "broken.dcm")
    (study["path"] / "other").mkdir()
    (tmp_path / "broken.dcm").rename(study["path"] / "other" / "broken.dcm")
    np.testing.assert_array_equal(read_volume(study["path"], series=3).array, study["bone_hu"])


def test_single_series_folder_errors_are_unchanged(tmp_path):
    folder = tmp_path / "s"
    write_series(folder, known_hu((3, 8, 8)), modality="MR")
    with pytest.raises(Exception) as exc:
        read_volume(folder)
    assert str(exc.value) == f"{folder / 'slice000.dcm'}: Modality is 'MR', not 'CT'"


def test_orientation_classification():
    tilt = np.radians(20.0)
    assert series_orientation([1, 0, 0, 0, 1, 0]) == "axial"
    assert series_orientation([1, 0, 0, 0, np.cos(tilt), -np.sin(tilt)]) == "axial"  # gantry tilt 20 deg
    assert series_orientation([1, 0, 0, 0, 0, -1]) == "coronal"
    assert series_orientation([0, 1, 0, 0, 0, -1]) == "sagittal"
    c = np.cos(np.radians(44.0))
    assert series_orientation([1, 0, 0, 0, c, -np.sqrt(1 - c * c)]) == "axial"  # oblique axial, 44 deg
    row, col = np.array([1.0, -1.0, 0.0]) / np.sqrt(2), np.array([1.0, 1.0, -2.0]) / np.sqrt(6)
    assert series_orientation([*row, *col]) == "oblique"  # normal (1, 1, 1)/sqrt(3): 54.7 deg from every axis
    assert series_orientation(None) == "unknown" and series_orientation([1, 0, 0, 1, 0, 0]) == "unknown"


def test_series_command_table(study, tmp_path, capsys):
    before = tree_digest(study["path"])
    rc, out, err = run_cli(capsys, "series", study["path"])
    assert rc == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].split() == ["number", "UID", "modality", "orientation", "slices", "kernel", "domain",
                                "description", "harmonizable"]
    rows = {line.split()[0]: line.split() for line in lines[1:6]}
    assert rows["2"][:7] == ["2", study["std"]["series_uid"], "CT", "axial", "4", "STANDARD", "ge_standard"]
    assert rows["3"][:7] == ["3", study["bone"]["series_uid"], "CT", "axial", "4", "BONE", "ge_bone"]
    assert rows["1"][2:5] == ["CT", "coronal", "1"] and "no: localizer" in lines[1]
    assert rows["90"][2] == "OT" and "no: colour image" in " ".join(rows["90"])
    assert rows["99"][2] == "SR" and "no: no image" in " ".join(rows["99"])
    assert rows["2"][-1] == rows["3"][-1] == "yes"
    assert "no series is read by default: series 2, 3 all match selection" in out
    assert "export.log2: skipped (not a DICOM file)" in out
    assert tree_digest(study["path"]) == before

    # one CT series: it is marked with '*'
    folder, uid = tmp_path / "one", generate_uid()
    ct = _ct(folder, known_hu(SHAPE), uid, 2, "BONE", "ct")
    _localizer(folder, uid)
    rc, out, _ = run_cli(capsys, "series", folder)
    marked = [line for line in out.splitlines() if line.startswith("*")]
    assert rc == 0 and len(marked) == 1 and ct["series_uid"] in marked[0]
    assert "read by default: the series marked *" in out


def test_renamed_dicomdir_beside_the_series_is_skipped(study):
    dd = Dataset()
    dd.file_meta = FileMetaDataset()
    dd.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.1.3.10"
    dd.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    dd.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dd.FileSetID = "X"
    dd.save_as(study["path"] / "dir_record", enforce_file_format=True)
    scan = scan_study(study["path"])
    assert [(s.path.name, s.reason) for s in scan.skipped if s.path.name == "dir_record"] == [("dir_record", "DICOMDIR")]
    np.testing.assert_array_equal(read_volume(study["path"], series=2).array, study["std_hu"])


def test_single_series_folder_is_read_in_one_pass(ct_series, monkeypatch):
    import ctharmonize.io.read as read_module
    import ctharmonize.io.series as series_module

    def no_scan(*_args, **_kwargs):
        raise AssertionError("a single-series folder must not be scanned")

    monkeypatch.setattr(read_module, "scan_study", no_scan)
    monkeypatch.setattr(series_module, "scan_study", no_scan)
    np.testing.assert_array_equal(read_volume(ct_series["path"]).array, ct_series["hu"])


def test_nifti_with_series_is_refused(tmp_path):
    import nibabel as nib

    path = tmp_path / "v.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), np.float32), np.eye(4)), path)
    with pytest.raises(ConfigError, match="applies to DICOM folders"):
        read_volume(path, series=3)
