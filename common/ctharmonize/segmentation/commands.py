"""``ctharmonize segment-lungs`` and ``ctharmonize body-composition``."""

from __future__ import annotations

import numpy as np

from ctharmonize.segmentation.body_composition import body_composition as _body_composition
from ctharmonize.segmentation.label_writer import write_label_nifti
from ctharmonize.segmentation.lungs import segment_lungs as _segment_lungs

__all__ = ["segment_lungs", "body_composition"]

_NAMES = {1: "right lung", 2: "left lung", 5: "skeletal muscle", 6: "subcutaneous fat",
          7: "visceral/intermuscular fat", 8: "bone", 9: "other body tissue"}


def _summary(labels: np.ndarray, voxel_ml: float, codes) -> str:
    counts = np.bincount(labels.ravel(), minlength=max(codes) + 1)
    return ", ".join(f"{_NAMES[c]} {counts[c] * voxel_ml:.1f} mL" for c in codes)


def _check_label_output(out: str, inputs: list, overwrite: bool) -> None:
    from ctharmonize.errors import UnsupportedFormatError
    from ctharmonize.io.nifti import is_nifti_path
    from ctharmonize.io.output_check import check_output

    if not is_nifti_path(out):
        raise UnsupportedFormatError(out, "a label map is written as NIfTI; give a .nii or .nii.gz output")
    check_output(out, inputs, overwrite)


def segment_lungs(input: str, out: str, backend: str = "threshold", weights: str | None = None,
                  model: str = "R231", mask_from: str | None = None, device: str | None = None,
                  overwrite: bool = False) -> str:
    """Segment the lungs of a CT and write a NIfTI label map (0 background, 1 right, 2 left).

    Args:
        input: DICOM series folder, DICOM file or NIfTI file (HU).
        out: output label map, *.nii or *.nii.gz (uint8, same grid as the input).
        backend: threshold (no weights), lungmask or totalsegmentator.
        weights: lungmask weights file (.pth); default: the torch hub cache.
        model: lungmask model: R231, LTRCLobes or R231CovidWeb.
        mask_from: another image on the same grid to compute the mask on (e.g. the soft-kernel series).
        device: cpu or cuda (default: cuda when available).
        overwrite: replace an earlier ctharmonize output at ``out`` (nothing else is replaced).
    Returns:
        a one-line summary with the lung volumes in mL.
    """
    from ctharmonize.io import read_volume

    _check_label_output(out, [input, mask_from], overwrite)
    vol = read_volume(input)
    source = read_volume(mask_from) if mask_from is not None else None
    lung = _segment_lungs(vol, backend=backend, device=device, weights=weights, model=model,
                          mask_from=source, name=str(input))
    write_label_nifti(lung, vol, out, overwrite=overwrite)
    return f"{out}: {_summary(lung, vol.voxel_volume_ml, (1, 2))}"


def body_composition(input: str, out: str, backend: str = "threshold", lung: str | None = None,
                     device: str | None = None, overwrite: bool = False) -> str:
    """Label skeletal muscle (5), subcutaneous fat (6), visceral/intermuscular fat (7), bone (8),
    lungs (1/2) and other body tissue (9) of a CT and write a NIfTI label map.

    Args:
        input: DICOM series folder, DICOM file or NIfTI file (HU).
        out: output label map, *.nii or *.nii.gz (uint8, same grid as the input).
        backend: threshold or totalsegmentator.
        lung: optional lung label map (NIfTI, 1 right / 2 left) on the same grid; default: computed.
        device: cpu or cuda (totalsegmentator only).
        overwrite: replace an earlier ctharmonize output at ``out`` (nothing else is replaced).
    Returns:
        a one-line summary with the tissue volumes in mL.
    """
    from ctharmonize.io import read_volume

    _check_label_output(out, [input, lung], overwrite)
    vol = read_volume(input)
    lung_mask = None
    if lung is not None:
        from ctharmonize.io.label_map import read_label_map

        lung_mask = read_label_map(lung, like=vol, allowed={0, 1, 2})
    labels = _body_composition(vol, backend=backend, lung=lung_mask, device=device, name=str(input))
    write_label_nifti(labels, vol, out, overwrite=overwrite)
    return f"{out}: {_summary(labels, vol.voxel_volume_ml, (5, 6, 7, 8, 1, 2))}"
