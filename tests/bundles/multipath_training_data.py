"""Tiny 4-kernel chest-like dataset for the multipath training tests (NIfTI + datalist, a fraction of a second).

Each subject is a (Z, Y, X) phantom: air, a body disk (fat rim 6, muscle 5, soft tissue 9), two lungs (1, 2)
at -850 HU and a bone dot (8). Soft kernels smooth it, sharp kernels add high-frequency noise. Within a vendor
both kernels share the subject (paired); vendors have different subjects (unpaired), as in the simulator.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from ctharmonize.data import save_datalist

HU = {0: -1000.0, 1: -850.0, 2: -850.0, 5: 45.0, 6: -100.0, 8: 700.0, 9: 30.0}
VENDORS = {"siemens": ("siemens_b30f", "siemens_b50f"), "ge": ("ge_standard", "ge_bone")}


def phantom_labels(size: int, slices: int, seed: int) -> np.ndarray:
    """uint8 (Z, Y, X) canonical tissue codes."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2.0
    r_body = size * (0.40 + 0.03 * rng.random())
    lab = np.zeros((slices, size, size), dtype=np.uint8)
    for z in range(slices):
        sl = np.zeros((size, size), dtype=np.uint8)
        rr = np.hypot(yy / 0.85, xx)
        sl[rr < r_body] = 6
        sl[rr < r_body * 0.85] = 5
        sl[rr < r_body * 0.7] = 9
        grow = 0.5 + 0.5 * z / max(1, slices - 1)
        for side, code in ((-1, 1), (1, 2)):
            lung = np.hypot((yy + 0.05 * size) / (0.28 * size * grow), (xx - side * 0.17 * size) / (0.12 * size))
            sl[lung < 1] = code
        sl[np.hypot(yy - 0.25 * size, xx) < 0.05 * size] = 8
        lab[z] = sl
    return lab


def kernel_image(labels: np.ndarray, kernel: str, seed: int) -> np.ndarray:
    """float32 (Z, Y, X) HU of ``labels`` seen through a soft or sharp kernel."""
    rng = np.random.default_rng(seed)
    hu = np.vectorize(HU.get, otypes=[np.float32])(labels)
    noise = rng.normal(0.0, 60.0, hu.shape).astype(np.float32)
    if kernel.endswith(("b30f", "standard")):
        return ndimage.gaussian_filter(hu + noise, sigma=(0, 1.0, 1.0)).astype(np.float32)
    return (hu + 2.0 * noise).astype(np.float32)


def _save_nifti(array_zyx: np.ndarray, path: Path, spacing=(0.8, 0.8, 2.0)) -> None:
    affine = np.diag([-spacing[0], -spacing[1], spacing[2], 1.0])  # RAS affine of an LPS-identity volume
    nib.save(nib.Nifti1Image(np.ascontiguousarray(array_zyx.transpose(2, 1, 0)), affine), str(path))


def make_dataset(root: Path, size: int = 32, slices: int = 4, subjects: int = 2, seed: int = 0,
                 vendors: dict[str, tuple[str, ...]] | None = None) -> Path:
    """Write ``root/datalist.json`` with ``subjects`` per vendor (kernels per vendor: ``vendors``, default
    :data:`VENDORS`): the first subjects train, the last one is the validation subject."""
    root.mkdir(parents=True, exist_ok=True)
    for sub in ("images", "labels", "lungs"):
        (root / sub).mkdir(exist_ok=True)
    entries = []
    for v, (vendor, kernels) in enumerate((vendors or VENDORS).items()):
        for s in range(subjects):
            subject = f"toy-{vendor}-{s:03d}"
            lab = phantom_labels(size, slices, seed + 100 * v + s)
            _save_nifti(lab, root / "labels" / f"{subject}_labels.nii.gz")
            lung = np.where(np.isin(lab, (1, 2)), lab, 0).astype(np.uint8)
            _save_nifti(lung, root / "lungs" / f"{subject}_lung.nii.gz")
            split = "validation" if s == subjects - 1 else "train"
            for k, kernel in enumerate(kernels):
                img = kernel_image(lab, kernel, seed + 1000 * v + 10 * s + k)
                _save_nifti(img, root / "images" / f"{subject}_{kernel}.nii.gz")
                entries.append({"image": f"images/{subject}_{kernel}.nii.gz", "kernel": kernel, "vendor": vendor,
                                "subject": subject, "split": split, "labels": f"labels/{subject}_labels.nii.gz",
                                "lung": f"lungs/{subject}_lung.nii.gz"})
    return save_datalist(entries, root / "datalist.json", name="toy multipath")
