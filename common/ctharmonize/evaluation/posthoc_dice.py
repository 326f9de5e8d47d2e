"""Post-hoc segmentation Dice in paper 004's Table V form: the target segmenter on harmonized source images.

The anatomy of a harmonized image is that of its source image, so a segmenter trained on the *target*
domain should find the *source* labels in it. Per class, Dice ``2|P∩R| / (|P| + |R|)`` and IoU
``|P∩R| / |P∪R|`` of the predicted class map P against the reference R, rows (spec 004.5.2):

* ``Source Segmentor → Source Image`` (optional; the paper's in-domain reference for the source);
* ``Target Segmentor → Target Image``: **upper bound**, the target segmenter in its own domain;
* ``Target Segmentor → Source Image``: **lower bound**, no harmonization (the domain gap);
* ``Target Segmentor → Harmonized Image (<method>)``: one row per method, against the *source* labels.

Inputs are integer class maps (the segmenters' argmax, class indices of ``class_names``, e.g.
``CHEST_CT_TISSUE_CLASSES`` after :func:`~ctharmonize.transforms.tissue_codes_to_classes`), one array per
**case** (a volume (Z, Y, X) or a slice stack; spec 004.7 #11: Dice per volume per class, then the mean
over volumes). A class absent from both maps of a case is undefined for that case (NaN) and left out of
that class's mean; ``n`` counts the cases that define it. The background class is left out by default.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ctharmonize.io.atomic import atomic_path
from ctharmonize.networks.nets.tissue_segmenter import CHEST_CT_TISSUE_CLASSES

__all__ = [
    "ClassScores",
    "PosthocDiceRow",
    "case_overlaps",
    "posthoc_dice_csv",
    "posthoc_dice_markdown",
    "posthoc_dice_table",
    "scores_from_overlaps",
    "segmentation_scores",
    "write_posthoc_dice_table",
]

ROW_SOURCE_ON_SOURCE = "Source Segmentor → Source Image"
ROW_TARGET_ON_TARGET = "Target Segmentor → Target Image"
ROW_TARGET_ON_SOURCE = "Target Segmentor → Source Image"
ROW_HARMONIZED = "Target Segmentor → Harmonized Image ({method})"

Cases = Sequence[np.ndarray] | np.ndarray


@dataclass(frozen=True)
class ClassScores:
    """One class over the cases: mean and SD (ddof 1; NaN for one case) of Dice and IoU, in [0, 1]; ``n`` cases."""

    dice: float
    dice_sd: float
    iou: float
    iou_sd: float
    n: int


@dataclass(frozen=True)
class PosthocDiceRow:
    """One row of the table: ``label`` (Table V wording), ``role`` (``"upper bound"``, ``"lower bound"``,
    ``"source reference"``, ``"harmonized"``), ``method`` (harmonized rows) and per-class ``scores``."""

    label: str
    role: str
    scores: dict[str, ClassScores]
    method: str | None = None


def _selected(class_names: Sequence[str], include_background: bool) -> list[tuple[int, str]]:
    return [(i, str(n)) for i, n in enumerate(class_names) if include_background or i != 0]


def case_overlaps(
    prediction: np.ndarray, reference: np.ndarray, class_names: Sequence[str] = CHEST_CT_TISSUE_CLASSES,
    include_background: bool = False,
) -> dict[str, tuple[float, float]]:
    """``{class: (dice, iou)}`` of one case; (NaN, NaN) for a class absent from both maps."""
    p, r = np.asarray(prediction), np.asarray(reference)
    if p.shape != r.shape:
        raise ValueError(f"prediction and reference differ in shape: {p.shape} vs {r.shape}")
    n = len(class_names)
    for name, a in (("prediction", p), ("reference", r)):
        if not np.issubdtype(a.dtype, np.integer):
            raise ValueError(f"{name} must hold integer class indices, got {a.dtype}")
        if a.size and (int(a.min()) < 0 or int(a.max()) >= n):
            raise ValueError(f"{name} classes must be in [0, {n - 1}], found [{int(a.min())}, {int(a.max())}]")
    out: dict[str, tuple[float, float]] = {}
    for index, name in _selected(class_names, include_background):
        in_p, in_r = p == index, r == index
        inter = int(np.logical_and(in_p, in_r).sum())
        total = int(in_p.sum()) + int(in_r.sum())
        out[name] = (math.nan, math.nan) if total == 0 else (2.0 * inter / total, inter / (total - inter))
    return out


def _as_cases(x: Cases) -> list[np.ndarray]:
    return [x] if isinstance(x, np.ndarray) else [np.asarray(c) for c in x]


def _mean_sd(values: list[float]) -> tuple[float, float]:
    v = np.asarray([x for x in values if not math.isnan(x)], dtype=float)
    if v.size == 0:
        return math.nan, math.nan
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else math.nan


def segmentation_scores(
    predictions: Cases, references: Cases, class_names: Sequence[str] = CHEST_CT_TISSUE_CLASSES,
    include_background: bool = False,
) -> dict[str, ClassScores]:
    """Per-class :class:`ClassScores` over cases: ``predictions[i]`` against ``references[i]`` (integer class
    maps of equal shape; a single array is one case)."""
    preds, refs = _as_cases(predictions), _as_cases(references)
    if len(preds) != len(refs) or not preds:
        raise ValueError(f"need equally many prediction and reference cases (>= 1), got {len(preds)} and {len(refs)}")
    return scores_from_overlaps([case_overlaps(p, r, class_names, include_background)
                                 for p, r in zip(preds, refs, strict=True)])


def scores_from_overlaps(per_case: Sequence[Mapping[str, tuple[float, float]]]) -> dict[str, ClassScores]:
    """Per-class :class:`ClassScores` from per-case :func:`case_overlaps` results (the classes of the first
    case, in its order): what :func:`segmentation_scores` does after the overlaps, for callers that score one
    case at a time and keep no class maps (``ctharmonize posthoc-dice``)."""
    if not per_case:
        raise ValueError("need at least one case")
    out: dict[str, ClassScores] = {}
    for name in per_case[0]:
        dices = [c[name][0] for c in per_case]
        dice, dice_sd = _mean_sd(dices)
        iou, iou_sd = _mean_sd([c[name][1] for c in per_case])
        out[name] = ClassScores(dice, dice_sd, iou, iou_sd, sum(not math.isnan(d) for d in dices))
    return out


def posthoc_dice_table(
    target_on_target: tuple[Cases, Cases],
    target_on_source: tuple[Cases, Cases],
    harmonized: Mapping[str, tuple[Cases, Cases]],
    source_on_source: tuple[Cases, Cases] | None = None,
    class_names: Sequence[str] = CHEST_CT_TISSUE_CLASSES,
    include_background: bool = False,
) -> list[PosthocDiceRow]:
    """Table V rows, each from a ``(predictions, references)`` pair of case lists:

    * ``target_on_target``: target segmenter on target images vs their labels (upper bound);
    * ``target_on_source``: target segmenter on unharmonized source images vs the source labels (lower bound);
    * ``harmonized``: ``{method: (target segmenter on the harmonized source images, the source labels)}``;
    * ``source_on_source``: optional, source segmenter on source images vs their labels (first row).
    """
    def row(label: str, role: str, pair: tuple[Cases, Cases], method: str | None = None) -> PosthocDiceRow:
        return PosthocDiceRow(label, role, segmentation_scores(*pair, class_names, include_background), method)

    rows = [] if source_on_source is None else [row(ROW_SOURCE_ON_SOURCE, "source reference", source_on_source)]
    rows.append(row(ROW_TARGET_ON_TARGET, "upper bound", target_on_target))
    rows.append(row(ROW_TARGET_ON_SOURCE, "lower bound", target_on_source))
    rows += [row(ROW_HARMONIZED.format(method=m), "harmonized", pair, m) for m, pair in harmonized.items()]
    return rows


def _fmt(x: float, digits: int) -> str:
    return "–" if math.isnan(x) else f"{x:.{digits}f}"


def _classes(rows: Sequence[PosthocDiceRow]) -> list[str]:
    return list(rows[0].scores) if rows else []


def posthoc_dice_markdown(rows: Sequence[PosthocDiceRow], iou: bool = True, digits: int = 2,
                          sd: bool = False) -> str:
    """Markdown table: one line per row, one column per class holding ``DC / IoU`` (``iou=False``: DC only),
    plus ``mean``: the unweighted mean over classes of the class means (classes without a value skipped).
    ``sd``: each class value as ``mean ± SD`` over the cases (the SD left out where undefined; the ``mean``
    column has none)."""
    classes = _classes(rows)
    unit = ("DC / IoU" if iou else "DC") + (" (mean ± SD)" if sd else "")

    def value(m: float, s: float) -> str:
        return _fmt(m, digits) + (f" ± {_fmt(s, digits)}" if sd and not math.isnan(m) and not math.isnan(s) else "")

    lines = [f"| {unit} | " + " | ".join([*classes, "mean"]) + " |", "| --- |" + " --- |" * (len(classes) + 1)]
    for r in rows:
        cells = []
        for name in [*classes, None]:
            if name is None:
                d, d_sd = _mean_sd([r.scores[c].dice for c in classes])[0], math.nan
                j, j_sd = _mean_sd([r.scores[c].iou for c in classes])[0], math.nan
            else:
                c = r.scores[name]
                d, d_sd, j, j_sd = c.dice, c.dice_sd, c.iou, c.iou_sd
            cells.append(f"{value(d, d_sd)} / {value(j, j_sd)}" if iou else value(d, d_sd))
        lines.append(f"| {r.label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def posthoc_dice_csv(rows: Sequence[PosthocDiceRow]) -> str:
    """Long-form CSV: ``row, role, method, class, dice, dice_sd, iou, iou_sd, n`` (NaN written empty)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["row", "role", "method", "class", "dice", "dice_sd", "iou", "iou_sd", "n"])
    for r in rows:
        for name, s in r.scores.items():
            values = ["" if math.isnan(v) else repr(v) for v in (s.dice, s.dice_sd, s.iou, s.iou_sd)]
            writer.writerow([r.label, r.role, r.method or "", name, *values, s.n])
    return buf.getvalue()


def write_posthoc_dice_table(rows: Sequence[PosthocDiceRow], path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write the table atomically: ``.md`` as :func:`posthoc_dice_markdown`, ``.csv`` as :func:`posthoc_dice_csv`."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".md", ".csv"):
        raise ValueError(f"post-hoc Dice table must be .md or .csv, got {path.name}")
    text = posthoc_dice_markdown(rows) if suffix == ".md" else posthoc_dice_csv(rows)
    with atomic_path(path, overwrite=overwrite) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path
