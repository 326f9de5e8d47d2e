"""Simulator tissue codes → the 7 chest-CT classes of the paper-004 segmenters (``CHEST_CT_TISSUE_CLASSES``).

The canonical tissue codes (``ctharmonize.simulation.labels.TISSUE_LABELS``, also the body-composition
labels) are merged into classes whose *shape does not change with the reconstruction kernel*, so that
conditioning a generator on them cannot leak the kernel (paper 004 assumes shape is consistent across
domains; issue 16: never condition on emphysema or small vessels):

=====  ==================  ===========================================================
class  name                tissue codes
=====  ==================  ===========================================================
0      background          0 outside-body air
1      lungs               1, 2 right/left lung; 4 pulmonary vessel; 13 nodule (default)
2      airway              3
3      skeletal_muscle     5
4      fat                 6 subcutaneous, 7 visceral/intermuscular
5      bone                8
6      mediastinum         9 other soft tissue, 10 heart, 11 aorta, 12 esophagus
=====  ==================  ===========================================================

Decisions:

* **Pulmonary vessels (4) are lung.** How many small vessels a kernel resolves, and how wide they look,
  depends on the kernel (sharp kernels show more, thinner vessels); a vessel class would carry the kernel.
* **Nodules (13) are lung by default** (``nodule="lungs"``): the real-data label sources (threshold backend,
  lungmask, TotalSegmentator lungs) count nodules as lung, so simulator and pseudo labels define the class
  the same way; a small nodule's apparent extent changes with the kernel (partial volume, edge
  enhancement) like a vessel's; and the mediastinum stays one compact central compartment.
  ``nodule="mediastinum"`` (solid soft tissue) is the alternative, e.g. to make the segmentation loss
  penalise a generator that erases nodules.
* Emphysema / LAA-950 masks are never tissue codes here; the map has no class for them.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import TypeVar

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform

from ctharmonize.networks.nets.tissue_segmenter import CHEST_CT_TISSUE_CLASSES
from ctharmonize.simulation.labels import TISSUE_LABELS

__all__ = ["ChestCTClassesd", "TISSUE_CODE_CLASSES", "chest_ct_class_lookup", "tissue_codes_to_classes"]

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)

#: tissue code -> chest-CT class name (nodule 13 is set by ``nodule=``)
TISSUE_CODE_CLASSES: dict[int, str] = {
    0: "background",
    1: "lungs", 2: "lungs", 4: "lungs",
    3: "airway",
    5: "skeletal_muscle",
    6: "fat", 7: "fat",
    8: "bone",
    9: "mediastinum", 10: "mediastinum", 11: "mediastinum", 12: "mediastinum",
}
_NODULE_CLASSES = ("lungs", "mediastinum")


def chest_ct_class_lookup(nodule: str = "lungs") -> np.ndarray:
    """int64 (14,) lookup table: entry ``code`` is the index in ``CHEST_CT_TISSUE_CLASSES`` of tissue ``code``.

    ``nodule``: class of code 13, ``"lungs"`` (default) or ``"mediastinum"`` (see the module docstring).
    """
    if nodule not in _NODULE_CLASSES:
        raise ValueError(f"nodule must be one of {', '.join(_NODULE_CLASSES)}, got {nodule!r}")
    names = {**TISSUE_CODE_CLASSES, 13: nodule}
    if set(names) != set(TISSUE_LABELS):
        raise AssertionError("TISSUE_CODE_CLASSES is out of date with simulation.labels.TISSUE_LABELS")
    lookup = np.zeros(max(names) + 1, dtype=np.int64)
    for code, name in names.items():
        lookup[code] = CHEST_CT_TISSUE_CLASSES.index(name)
    return lookup


def tissue_codes_to_classes(labels: ArrayT, lookup: np.ndarray | torch.Tensor | None = None) -> ArrayT:
    """Integer tissue codes (any shape) → int64 class indices of the same shape (numpy or torch, same device).

    ``lookup``: table from :func:`chest_ct_class_lookup` (default: nodules as lung). A code outside the
    table (negative, or > 13) is a ``ValueError``: labels that are not canonical tissue codes.
    """
    table = chest_ct_class_lookup() if lookup is None else lookup
    if isinstance(labels, torch.Tensor):
        if labels.is_floating_point() or labels.is_complex():
            raise ValueError(f"tissue codes must be integers, got {labels.dtype}")
        codes = labels.long()
        t = torch.as_tensor(table, dtype=torch.long, device=codes.device)
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= t.numel()):
            raise ValueError(f"tissue codes must be in [0, {t.numel() - 1}], found [{int(codes.min())}, {int(codes.max())}]")
        return t[codes]
    codes = np.asarray(labels)
    if not np.issubdtype(codes.dtype, np.integer):
        raise ValueError(f"tissue codes must be integers, got {codes.dtype}")
    t = np.asarray(table, dtype=np.int64)
    if codes.size and (int(codes.min()) < 0 or int(codes.max()) >= t.size):
        raise ValueError(f"tissue codes must be in [0, {t.size - 1}], found [{int(codes.min())}, {int(codes.max())}]")
    return t[codes.astype(np.int64)]


class ChestCTClassesd(MapTransform):
    """Dictionary transform: tissue codes under ``keys`` (e.g. ``labels_<domain>``, (1, H, W)) → int64 class
    indices in place (``nodule`` as in :func:`chest_ct_class_lookup`)."""

    def __init__(self, keys: KeysCollection, nodule: str = "lungs", allow_missing_keys: bool = False):
        super().__init__(keys, allow_missing_keys)
        self.lookup = chest_ct_class_lookup(nodule)

    def __call__(self, data: Mapping[Hashable, ArrayT]) -> dict[Hashable, ArrayT]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = tissue_codes_to_classes(d[key], self.lookup)
        return d
