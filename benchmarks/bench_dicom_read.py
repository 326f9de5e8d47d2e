"""Benchmark ``ctharmonize.io.read_volume`` on an uncompressed CT series against a naive pydicom loop.

Writes a synthetic int16 series (default 512 x 512 x 300) to a temporary folder, then times

* ``read_volume(folder)`` (thread pool, one parse per file, validation, FOV detection), and
* the reference: ``pydicom.dcmread`` on every file in sequence, sort by position, ``np.stack``
  of ``pixel_array * slope + intercept``,

in the same process, and prints both times and their ratio. Target: read_volume < 10 s on 2 cores
for 512 x 512 x 300.

    python benchmarks/bench_dicom_read.py                    # full size
    python benchmarks/bench_dicom_read.py --slices 40 --size 256   # quick
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from ctharmonize.io import read_volume


def write_series(folder: Path, slices: int, size: int, seed: int = 0) -> None:
    """Synthetic CT series: int16 stored values, slope 1, intercept -1024, -2048 HU outside a circle."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    outside = (yy - size / 2) ** 2 + (xx - size / 2) ** 2 > (size / 2) ** 2
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    for k in range(slices):
        stored = rng.integers(0, 2000, size=(size, size), dtype=np.int16)
        stored[outside] = -2048 + 1024
        ds = Dataset()
        ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = CTImageStorage, generate_uid(), "CT"
        ds.PatientID, ds.StudyInstanceUID, ds.SeriesInstanceUID = "BENCH", study, series
        ds.FrameOfReferenceUID = frame
        ds.Manufacturer, ds.ConvolutionKernel, ds.KVP = "SIEMENS", "B30f", "120"
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = [-180.0, -180.0, -k * 1.0]  # written top-down
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing, ds.SliceThickness = [0.7, 0.7], "1"
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.Rows = ds.Columns = size
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleSlope, ds.RescaleIntercept = "1", "-1024"
        ds.PixelData = stored.tobytes()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.save_as(folder / f"{generate_uid()[-12:]}.dcm", enforce_file_format=True)


def naive_read(folder: Path) -> np.ndarray:
    """Reference: read every file in sequence, sort by z, stack HU."""
    datasets = [pydicom.dcmread(p) for p in folder.iterdir()]
    datasets.sort(key=lambda ds: float(ds.ImagePositionPatient[2]))
    return np.stack([ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept) for ds in datasets])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=1, help="best of N runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_dicom_") as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        write_series(folder, args.slices, args.size)
        print(f"wrote {args.slices} x {args.size} x {args.size} series in {time.perf_counter() - t0:.2f} s")

        def best(fn) -> tuple[float, object]:
            times, out = [], None
            for _ in range(args.repeat):
                t = time.perf_counter()
                out = fn(folder)
                times.append(time.perf_counter() - t)
            return min(times), out

        t_ref, ref = best(naive_read)
        t_new, vol = best(read_volume)
        ref = np.where(ref == -2048, -1024, ref)  # read_volume replaces outside-FOV padding by air
        assert np.array_equal(vol.array, ref.astype(np.float32)), "read_volume disagrees with the reference"
        print(f"naive pydicom loop : {t_ref:6.2f} s")
        print(f"read_volume        : {t_new:6.2f} s  (target < 10 s for 512x512x300)")
        print(f"ratio naive/read_volume: {t_ref / t_new:.2f}x")


if __name__ == "__main__":
    main()
