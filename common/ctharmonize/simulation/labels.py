"""Canonical tissue label codes of the simulated phantoms (shipped as ``labels.json``)."""

from __future__ import annotations

__all__ = ["TISSUE_LABELS", "LUNG_LABELS", "LABEL_CODES"]

#: code -> name; the same codes are used by body-composition labels and the tissue-statistic loss.
TISSUE_LABELS: dict[int, str] = {
    0: "outside_body_air",
    1: "right_lung",
    2: "left_lung",
    3: "airway",
    4: "pulmonary_vessel",
    5: "skeletal_muscle",
    6: "subcutaneous_fat",
    7: "visceral_fat",
    8: "bone",
    9: "other_soft_tissue",
    10: "heart",
    11: "aorta",
    12: "esophagus",
    13: "nodule",
}

#: name -> code
LABEL_CODES: dict[str, int] = {name: code for code, name in TISSUE_LABELS.items()}

#: lung-mask codes (lungmask convention): 0 background, 1 right lung, 2 left lung.
LUNG_LABELS: dict[int, str] = {0: "background", 1: "right_lung", 2: "left_lung"}
