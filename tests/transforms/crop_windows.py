"""Test helper: where a crop lies in the full array (brute force, independent of the transforms)."""

import numpy as np


def find_window(full: np.ndarray, crop: np.ndarray) -> list[tuple[int, int]]:
    """Offsets (y, x) where ``crop`` occurs in ``full``."""
    h, w = crop.shape
    return [(y, x) for y in range(full.shape[0] - h + 1) for x in range(full.shape[1] - w + 1)
            if np.array_equal(full[y:y + h, x:x + w], crop)]
