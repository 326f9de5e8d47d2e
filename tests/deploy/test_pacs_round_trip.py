"""``ctharmonize pacs-harmonize`` against a real Orthanc (started by conftest.py on loopback).

A simulated GE BONE series (32 x 32 x 4) is uploaded through Orthanc's REST API; the command finds it
(C-FIND), fetches it (C-GET), harmonizes it with a tiny random-weight CycleGAN bundle and stores the
derived series (C-STORE). Orthanc is then inspected through its REST API: the new series sits in the
same study with new UIDs, its pixels equal a local ``ctharmonize harmonize`` run, the source is
byte-identical, a second run does not duplicate (``--overwrite`` replaces), and every error leaves
Orthanc exactly as it was, with one line and exit status 2.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
from orthanc_server import ALLOWED_AET, free_port
from pydicom.uid import MRImageStorage, generate_uid

from ctharmonize.cli import main
from ctharmonize.io import read_volume, write_volume
from ctharmonize.simulation.phantom import generate_phantom
from ctharmonize.simulation.scan import simulate_scan

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bundles"))
from tiny_bundle_config import inference_config, write_cyclegan_bundle  # noqa: E402

DOMAINS = ["ge_bone", "ge_standard"]
INFERENCE = inference_config(DOMAINS, "ge_standard")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    """A tiny CycleGAN bundle (GE BONE <-> GE STANDARD) with random weights."""
    return write_cyclegan_bundle(tmp_path_factory.mktemp("bundles") / "tiny_cyclegan", DOMAINS, INFERENCE["target_kernel"])


@pytest.fixture(scope="module")
def scan():
    """A simulated GE BONE volume (HU, 4 x 32 x 32) with its header."""
    return simulate_scan(generate_phantom(seed=3, size=32, slices=4), vendor="ge", seed=3)["ge_bone"]


def write_series(scan, folder: Path, study_uid: str, **overrides) -> tuple[Path, str]:
    """An original CT series of ``scan`` in ``study_uid`` (header overrides applied); (folder, SeriesInstanceUID)."""
    tags = {"StudyInstanceUID": study_uid, "ImageType": ["ORIGINAL", "PRIMARY", "AXIAL"],
            "StudyDescription": "chest", **overrides}
    write_volume(scan, folder, series_description_suffix="", header_overrides=tags)
    return folder, str(pydicom.dcmread(next(folder.glob("*.dcm"))).SeriesInstanceUID)


def run(*args: str, capsys) -> tuple[int, list[str]]:
    """``ctharmonize pacs-harmonize ARGS --trust_bundle --quiet``: (exit status, stderr lines)."""
    capsys.readouterr()
    code = main(["pacs-harmonize", *args, "--trust_bundle", "--quiet", "--timeout", "20"])
    return code, capsys.readouterr().err.splitlines()


def hu(files: list[bytes]) -> np.ndarray:
    """HU (Z, Y, X) of DICOM files given as bytes, in the given order."""
    out = []
    for data in files:
        ds = pydicom.dcmread(io.BytesIO(data))
        out.append(ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept))
    return np.stack(out)


def test_round_trip_stores_the_local_result_once(orthanc, bundle, scan, tmp_path, capsys):
    study = generate_uid()
    source_dir, source_uid = write_series(scan, tmp_path / "source", study)
    orthanc.upload(source_dir)
    before = orthanc.snapshot()

    code, err = run("--pacs", orthanc.url, "--series", source_uid, "--bundle", str(bundle), capsys=capsys)
    assert code == 0, err
    after = orthanc.snapshot()
    assert after[source_uid] == before[source_uid]  # the source is byte for byte as it was
    (derived_uid,) = set(after) - {source_uid}
    assert set(after[derived_uid]).isdisjoint(after[source_uid]) and len(after[derived_uid]) == 4
    derived = orthanc.series_files(derived_uid)
    headers = [pydicom.dcmread(io.BytesIO(d)) for d in derived]
    assert {str(h.StudyInstanceUID) for h in headers} == {study}
    assert {str(h.SeriesInstanceUID) for h in headers} == {derived_uid} and derived_uid != source_uid
    assert all(h.ImageType[0] == "DERIVED" and h.ConvolutionKernel == "ge_standard" for h in headers)

    # the same series harmonized locally by `ctharmonize harmonize`
    local = tmp_path / "local"
    assert main(["harmonize", "--bundle", str(bundle), "--input", str(source_dir), "--out", str(local),
                 "--trust_bundle", "--quiet"]) == 0
    expected = hu([p.read_bytes() for p in sorted(local.glob("*.dcm"))])
    np.testing.assert_array_equal(hu(derived), expected)
    assert not np.array_equal(expected, read_volume(source_dir).array)  # the bundle changed the pixels

    # a second run stores nothing and says why
    code, err = run("--pacs", orthanc.url, "--series", source_uid, "--bundle", str(bundle), capsys=capsys)
    assert code == 2 and len(err) == 1 and derived_uid in err[0] and "--overwrite" in err[0], err
    assert orthanc.snapshot() == after

    # --overwrite replaces the derived series: still one, with new UIDs, same pixels
    code, err = run("--pacs", orthanc.url, "--study", study, "--bundle", str(bundle), "--overwrite", capsys=capsys)
    assert code == 0, err
    again = orthanc.snapshot()
    assert again[source_uid] == before[source_uid]
    (replacement,) = set(again) - {source_uid}
    assert replacement != derived_uid and set(again[replacement]).isdisjoint(after[derived_uid])
    np.testing.assert_array_equal(hu(orthanc.series_files(replacement)), expected)


def test_study_picks_the_harmonizable_series(orthanc, bundle, scan, tmp_path, capsys):
    study = generate_uid()
    source_dir, source_uid = write_series(scan, tmp_path / "source", study)
    localizer, localizer_uid = write_series(scan, tmp_path / "localizer", study,
                                            ImageType=["ORIGINAL", "PRIMARY", "LOCALIZER"], SeriesNumber=1)
    mr, mr_uid = write_series(scan, tmp_path / "mr", study, Modality="MR", SeriesNumber=2)
    odd, _ = write_series(scan, tmp_path / "odd", study, SeriesNumber=3)  # CT, but a SOP class C-GET does not ask for
    for path in odd.glob("*.dcm"):
        ds = pydicom.dcmread(path)
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = MRImageStorage
        ds.save_as(path)
    for folder in (source_dir, localizer, mr, odd):
        orthanc.upload(folder)
    before = orthanc.snapshot()
    code, err = run("--pacs", orthanc.url, "--study", study, "--bundle", str(bundle), "--target", "ge_standard",
                    capsys=capsys)
    assert code == 0, err
    after = orthanc.snapshot()
    assert {k: after[k] for k in before} == before
    (derived_uid,) = set(after) - set(before)
    header = pydicom.dcmread(io.BytesIO(orthanc.series_files(derived_uid)[0]))
    sources = {str(pydicom.dcmread(p).SOPInstanceUID) for p in source_dir.glob("*.dcm")}
    assert str(header.SourceImageSequence[0].ReferencedSOPInstanceUID) in sources  # made from the CT axial series


def test_errors_are_one_line_and_leave_the_pacs_unchanged(orthanc, orthanc_server, bundle, scan, tmp_path, capsys):
    study = generate_uid()
    _, source_uid = write_series(scan, tmp_path / "source", study)
    _, mr_uid = write_series(scan, tmp_path / "mr", study, Modality="MR", SeriesNumber=7)
    twins = generate_uid()  # a study with two harmonizable series: the rules cannot choose
    for name in ("twin1", "twin2"):
        write_series(scan, tmp_path / name, twins)
    for name in ("source", "mr", "twin1", "twin2"):
        orthanc.upload(tmp_path / name)
    before = orthanc.snapshot()
    common = ["--bundle", str(bundle)]
    cases = {
        "cannot connect": ["--pacs", f"http://127.0.0.1:{free_port()}", "--series", source_uid],
        "no series 1.2.3.4.5.6.7": ["--pacs", orthanc.url, "--series", "1.2.3.4.5.6.7"],
        "no study 1.2.3.4.5.6.8": ["--pacs", orthanc.url, "--study", "1.2.3.4.5.6.8"],
        "is not CT": ["--pacs", orthanc.url, "--series", mr_uid],
        "2 series match selection": ["--pacs", orthanc.url, "--study", twins],
        "rejected the association from AE title 'CTHARMONIZE': Called AE title not recognised": [
            "--pacs", orthanc.url, "--series", source_uid, "--dicom", f"WRONG@127.0.0.1:{orthanc_server.dicom_port}"],
        "rejected the association from AE title 'UNKNOWN': Calling AE title not recognised": [
            "--pacs", orthanc.url, "--series", source_uid, "--aet", "UNKNOWN"],
        "no DICOM service answered (connection refused or timed out)": ["--pacs", orthanc.url, "--series", source_uid,
                                      "--dicom", f"ORTHANC@127.0.0.1:{free_port()}"],
        "expects a DICOM UID": ["--pacs", orthanc.url, "--series", "not-a-uid"],
    }
    for expected, args in cases.items():
        code, err = run(*args, *common, capsys=capsys)
        assert code == 2 and len(err) == 1 and expected in err[0], (expected, err)
        assert err[0].startswith("ctharmonize pacs-harmonize: error: ")
        assert orthanc.snapshot() == before, expected
    assert ALLOWED_AET == "CTHARMONIZE"  # the default --aet is the one the test Orthanc allows


@pytest.mark.parametrize(("description", "expected"), [
    ("FAIL-STORE", "C-STORE of CT00003.dcm failed with status 0xA700"),  # a failure status midway
    ("DROP-STORE", "holds 3 of its 4 instances"),                        # accepted, then dropped
])
def test_a_store_that_fails_midway_leaves_no_partial_series(orthanc, bundle, scan, tmp_path, capsys,
                                                            description, expected):
    study = generate_uid()
    source_dir, source_uid = write_series(scan, tmp_path / "source", study, StudyDescription=description)
    orthanc.upload(source_dir)
    before = orthanc.snapshot()
    code, err = run("--pacs", orthanc.url, "--series", source_uid, "--bundle", str(bundle), capsys=capsys)
    assert code == 2 and len(err) == 1 and expected in err[0] and "the PACS is as before" in err[0], err
    assert orthanc.snapshot() == before
