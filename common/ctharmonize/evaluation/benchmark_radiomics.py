"""Radiomics columns of the benchmark's paired paths: how reproducible the 93 radiomic features of
``ctharmonize radiomics`` (paper 002) are between a harmonized image and the same subject's soft image.

Per path and method: each feature's Lin's CCC across the path's subjects (the conventional form of
docs/radiomics.md: harmonized vs paired soft image, raw values), averaged over the features of a group
(all 93, GLCM, GLRLM; undefined CCCs left out). The soft-tissue ROI is the paired soft scan's
(its labels map when the datalist has one), the same for every method.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ctharmonize.evaluation.pairing import Scan
from ctharmonize.evaluation.radiomics_ccc import ALL, conventional_ccc
from ctharmonize.evaluation.radiomics_features import extract_features, make_extractor, soft_tissue_roi

__all__ = ["RADIOMICS_COLUMNS", "PairedRadiomics", "radiomics_ccc_columns"]

#: leaderboard key -> feature group (pyradiomics class name, or "all")
RADIOMICS_COLUMNS = {"radiomics_ccc_all": ALL, "radiomics_ccc_glcm": "glcm", "radiomics_ccc_glrlm": "glrlm"}


def _feature_class(name: str) -> str:
    """``original_glcm_Contrast`` -> ``glcm``."""
    return name.split("_")[1]


class PairedRadiomics:
    """Features on the paired soft scan's soft-tissue ROI: the soft scan's own once per subject, then any
    image's (a harmonized or input volume on the soft scan's grid). Any scan can stand as the "soft" one: the
    unpaired distribution column uses each scan's own ROI this way (:mod:`.benchmark_distribution`)."""

    def __init__(self) -> None:
        self.extractor = make_extractor()
        self._soft: dict[str, tuple[np.ndarray, dict[str, float]]] = {}

    def soft(self, scan: Scan) -> tuple[np.ndarray, dict[str, float]]:
        """(ROI, features) of the soft scan ``scan``."""
        if scan.image not in self._soft:
            from ctharmonize.io import read_label_map, read_volume

            volume = read_volume(scan.image)
            labels = read_label_map(scan.labels, like=volume) if scan.labels else None
            roi = soft_tissue_roi(volume, labels)
            self._soft[scan.image] = roi, extract_features(volume, roi, self.extractor, path=scan.image)
        return self._soft[scan.image]

    def features(self, volume: Any, soft_scan: Scan, path: str) -> dict[str, float]:
        """Features of ``volume`` (HU, the soft scan's grid) on ``soft_scan``'s ROI."""
        roi, _ = self.soft(soft_scan)
        return extract_features(volume, roi, self.extractor, path=path)


def radiomics_ccc_columns(harmonized: Sequence[Mapping[str, float]],
                          soft: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """:data:`RADIOMICS_COLUMNS` from the features of N harmonized images and of their N paired soft images
    (same order): mean over the group's features of the per-feature CCC across the N pairs (NaN when
    N < 2 or no CCC of the group is defined)."""
    nan = {key: float("nan") for key in RADIOMICS_COLUMNS}
    if len(harmonized) != len(soft) or len(harmonized) < 2:
        return nan
    names = [n for n in soft[0] if all(n in f for f in (*harmonized, *soft))]
    if not names:
        return nan
    h = np.array([[f[n] for n in names] for f in harmonized], dtype=float)
    s = np.array([[f[n] for n in names] for f in soft], dtype=float)
    groups = conventional_ccc(h, s, [_feature_class(n) for n in names])
    out = {}
    for key, group in RADIOMICS_COLUMNS.items():
        values = np.asarray(groups.get(group, []), dtype=float)
        values = values[np.isfinite(values)]
        out[key] = float(values.mean()) if values.size else float("nan")
    return out
