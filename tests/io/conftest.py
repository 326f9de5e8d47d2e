"""Fixtures for ctharmonize.io tests: tiny synthetic CT series written with pydicom."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

SLOPE, INTERCEPT = 0.5, -1000.0  # stored = (HU - INTERCEPT) / SLOPE


def known_hu(shape=(5, 12, 10), seed=0) -> np.ndarray:
    """Deterministic HU volume with values that the fixture's slope/intercept store exactly."""
    rng = np.random.default_rng(seed)
    hu = rng.integers(-2000, 4000, size=shape).astype(np.float32) / 2.0  # multiples of 0.5 HU
    hu[:, 0, 0] = -1000.0
    hu[:, -1, -1] = 1500.5
    return hu


def write_series(
    folder: Path,
    hu: np.ndarray,
    *,
    spacing=(0.7, 0.8, 2.5),
    origin=(-100.0, -120.0, 50.0),
    direction: np.ndarray | None = None,
    slope: float = SLOPE,
    intercept: float = INTERCEPT,
    names: Sequence[str] | None = None,
    positions: Sequence[Sequence[float]] | None = None,
    series_uid: str | None = None,
    modality: str = "CT",
    transfer_syntax: str | None = None,
    extra: dict | None = None,
    per_slice: Callable[[int, Dataset], None] | None = None,
) -> dict:
    """Write ``hu`` (Z, Y, X) as one DICOM file per slice; returns the UIDs and file paths.

    ``direction`` columns are the LPS row (i), column (j) and slice (k) directions.
    """
    folder.mkdir(parents=True, exist_ok=True)
    direction = np.eye(3) if direction is None else np.asarray(direction, float)
    nz, ny, nx = hu.shape
    study_uid, series_uid = generate_uid(), series_uid or generate_uid()
    frame_uid = generate_uid()
    files = []
    for k in range(nz):
        stored = np.rint((hu[k].astype(np.float64) - intercept) / slope)
        assert np.allclose(stored * slope + intercept, hu[k]), "test HU not representable"
        ds = Dataset()
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = generate_uid()
        ds.Modality = modality
        ds.PatientName = "Test^Patient"
        ds.PatientID = "P-0001"
        ds.PatientBirthDate = "19500101"
        ds.PatientSex = "F"
        ds.StudyInstanceUID = study_uid
        ds.StudyDate, ds.StudyTime = "20240102", "101010"
        ds.ReferringPhysicianName = ""
        ds.StudyID = "1"
        ds.AccessionNumber = "A1"
        ds.SeriesInstanceUID = series_uid
        ds.SeriesNumber = 3
        ds.SeriesDescription = "Chest 1.0 B50f"
        ds.FrameOfReferenceUID = frame_uid
        ds.PositionReferenceIndicator = ""
        ds.Manufacturer = "SIEMENS"
        ds.ManufacturerModelName = "SOMATOM Definition Flash"
        ds.ConvolutionKernel = ["Br40d", "3"]
        ds.KVP = "120"
        ds.XRayTubeCurrent = 200
        ds.ExposureTime = 500
        ds.SliceThickness = str(spacing[2])
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.PatientPosition = "HFS"
        ds.AcquisitionNumber = 1
        ds.InstanceNumber = nz - k  # deliberately not the spatial order
        pos = np.asarray(origin) + k * spacing[2] * direction[:, 2] if positions is None else positions[k]
        ds.ImagePositionPatient = [f"{v:.6f}" for v in pos]
        ds.ImageOrientationPatient = [f"{v:.6f}" for v in (*direction[:, 0], *direction[:, 1])]
        ds.PixelSpacing = [str(spacing[1]), str(spacing[0])]
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows, ds.Columns = ny, nx
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleSlope, ds.RescaleIntercept = f"{slope:g}", f"{intercept:g}"
        for key, value in (extra or {}).items():
            setattr(ds, key, value)
        ds.PixelData = stored.astype("<i2").tobytes()
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = ds.SOPClassUID
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta = meta
        if per_slice is not None:
            per_slice(k, ds)
        if transfer_syntax is not None:
            ds.compress(transfer_syntax, stored.astype(np.int16), generate_instance_uid=False)
        name = names[k] if names is not None else f"slice{k:03d}.dcm"
        ds.save_as(folder / name, enforce_file_format=True)
        files.append(folder / name)
    return {"study_uid": study_uid, "series_uid": series_uid, "frame_uid": frame_uid, "files": files}


def tree_digest(path: Path) -> str:
    """SHA-256 over every file's relative name and bytes under ``path`` (or of one file)."""
    h = hashlib.sha256()
    items = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for p in items:
        h.update(str(p.relative_to(path.parent if path.is_file() else path)).encode())
        h.update(p.read_bytes())
    return h.hexdigest()


@pytest.fixture
def series_writer():
    """The :func:`write_series` helper."""
    return write_series


@pytest.fixture
def digest():
    """The :func:`tree_digest` helper."""
    return tree_digest


@pytest.fixture
def hu_volume():
    """The :func:`known_hu` helper."""
    return known_hu


@pytest.fixture
def ct_series(tmp_path):
    """A 5-slice 12x10 CT series with slope 0.5, intercept -1000, identity orientation."""
    hu = known_hu()
    info = write_series(tmp_path / "series", hu)
    return {"path": tmp_path / "series", "hu": hu, **info}


def dicom_read(path: Path) -> Dataset:
    return pydicom.dcmread(path)
