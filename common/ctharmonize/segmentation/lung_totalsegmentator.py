"""The ``totalsegmentator`` lung backend: lung lobes of the ``total`` task merged to lungs."""

from __future__ import annotations

import numpy as np

from ctharmonize.io.volume import Volume
from ctharmonize.segmentation.totalsegmentator_runner import run_totalsegmentator

__all__ = ["LUNG_LOBES", "lobes_to_lungs", "segment_lungs_totalsegmentator"]

# TotalSegmentator class name -> lungmask lung code (1 right, 2 left)
LUNG_LOBES = {
    "lung_upper_lobe_left": 2,
    "lung_lower_lobe_left": 2,
    "lung_upper_lobe_right": 1,
    "lung_middle_lobe_right": 1,
    "lung_lower_lobe_right": 1,
}


def lobes_to_lungs(labels: np.ndarray, names: dict[int, str]) -> np.ndarray:
    """Map a TotalSegmentator label map (ids named by ``names``) to uint8 0/1 right/2 left."""
    lut = np.zeros(max(max(names, default=0), int(labels.max(initial=0))) + 1, dtype=np.uint8)
    for idx, cls in names.items():
        lut[idx] = LUNG_LOBES.get(cls, 0)
    return lut[np.asarray(labels, dtype=np.int64)]


def segment_lungs_totalsegmentator(
    image: Volume | np.ndarray, spacing=None, device: str | None = None, name: str | None = None
) -> np.ndarray:
    """Lung mask uint8 (Z, Y, X) 0/1 right/2 left from TotalSegmentator's lobes (``total`` task)."""
    labels, names = run_totalsegmentator(image, "total", list(LUNG_LOBES), spacing, device, name)
    return lobes_to_lungs(labels, names)
