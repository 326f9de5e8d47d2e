"""The ``totalsegmentator`` body-composition backend: TotalSegmentator classes -> canonical codes."""

from __future__ import annotations

import numpy as np

from ctharmonize.io.volume import Volume
from ctharmonize.segmentation.lung_totalsegmentator import LUNG_LOBES
from ctharmonize.segmentation.totalsegmentator_runner import run_totalsegmentator

__all__ = ["TISSUE_TYPES_CODES", "canonical_code", "names_to_canonical", "body_composition_totalsegmentator"]

# ``tissue_types`` task (licensed): class name -> canonical code
TISSUE_TYPES_CODES = {"subcutaneous_fat": 6, "torso_fat": 7, "skeletal_muscle": 5}
_BONE_PREFIXES = ("rib_", "vertebrae_", "sternum", "costal_cartilages", "clavicula", "scapula", "humerus",
                  "femur", "hip_", "sacrum", "skull")
_MUSCLE_PREFIXES = ("autochthon", "iliopsoas", "gluteus")
_NAMED = {"trachea": 3, "heart": 10, "aorta": 11, "esophagus": 12, **TISSUE_TYPES_CODES, **LUNG_LOBES}


def canonical_code(class_name: str) -> int:
    """Canonical tissue code of a TotalSegmentator class name (0 when it has none)."""
    if class_name in _NAMED:
        return _NAMED[class_name]
    if class_name.startswith(_BONE_PREFIXES):
        return 8
    if class_name.startswith(_MUSCLE_PREFIXES):
        return 5
    return 0


def names_to_canonical(labels: np.ndarray, names: dict[int, str]) -> np.ndarray:
    """Map a TotalSegmentator label map with ids named by ``names`` to uint8 canonical codes."""
    lut = np.zeros(max(max(names, default=0), int(labels.max(initial=0))) + 1, dtype=np.uint8)
    for idx, cls in names.items():
        lut[idx] = canonical_code(cls)
    return lut[np.asarray(labels, dtype=np.int64)]


def body_composition_totalsegmentator(
    image: Volume | np.ndarray,
    spacing=None,
    lung: np.ndarray | None = None,
    device: str | None = None,
    task: str = "tissue_types",
    name: str | None = None,
) -> np.ndarray:
    """uint8 (Z, Y, X) canonical codes from TotalSegmentator ``task`` (``tissue_types``: 5/6/7,
    needs a licence; ``total``: bones 8, some muscles 5, lungs 1/2, heart/aorta/...). A given
    ``lung`` mask (1/2) is written over the result."""
    labels, names = run_totalsegmentator(image, task, None, spacing, device, name)
    out = names_to_canonical(labels, names)
    if lung is not None:
        lung = np.asarray(lung)
        out[lung == 1] = 1
        out[lung == 2] = 2
    return out
