"""Write a uint8 label map as NIfTI on a volume's grid (atomic, refuses to overwrite)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ctharmonize.errors import DimensionError, UnsupportedFormatError
from ctharmonize.io.atomic import atomic_path, check_writable
from ctharmonize.io.volume import Volume

__all__ = ["write_label_nifti"]


def write_label_nifti(labels: np.ndarray, volume: Volume, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write ``labels`` (Z, Y, X) uint8 as ``*.nii`` / ``*.nii.gz`` with ``volume.affine_ras()``
    (sform = qform, code 1 scanner). Returns the path."""
    import nibabel as nib

    path = Path(path)
    if not (path.name.endswith(".nii") or path.name.endswith(".nii.gz")):
        raise UnsupportedFormatError(path, "label maps are written as NIfTI; give a .nii or .nii.gz path")
    labels = np.asarray(labels)
    if labels.shape != volume.shape:
        raise DimensionError(path, f"label shape {labels.shape} differs from the volume shape {volume.shape}")
    check_writable(path, overwrite)
    img = nib.Nifti1Image(np.transpose(labels.astype(np.uint8), (2, 1, 0)), volume.affine_ras())
    img.set_sform(volume.affine_ras(), code=1)
    img.set_qform(volume.affine_ras(), code=1)
    img.header.set_xyzt_units("mm")
    with atomic_path(path, overwrite=overwrite, record=True) as tmp:
        nib.save(img, str(tmp))
    return path
