"""Post-hoc segmentation Dice (paper 004 Table V form) against an independent one-hot numpy Dice/IoU."""

from __future__ import annotations

import csv
import io
import math

import numpy as np
import pytest

from ctharmonize.evaluation.posthoc_dice import (
    case_overlaps,
    posthoc_dice_csv,
    posthoc_dice_markdown,
    posthoc_dice_table,
    segmentation_scores,
    write_posthoc_dice_table,
)
from ctharmonize.networks import CHEST_CT_TISSUE_CLASSES

C = len(CHEST_CT_TISSUE_CLASSES)


def _onehot_dice_iou(pred: np.ndarray, ref: np.ndarray, n: int = C) -> tuple[np.ndarray, np.ndarray]:
    """Independent: one-hot (n, ...) masks, Dice = 2 Σ p r / (Σ p + Σ r), IoU = Σ p r / Σ max(p, r); NaN if empty."""
    p = (pred[None] == np.arange(n).reshape((n,) + (1,) * pred.ndim)).astype(float)
    r = (ref[None] == np.arange(n).reshape((n,) + (1,) * ref.ndim)).astype(float)
    axes = tuple(range(1, p.ndim))
    inter, size = (p * r).sum(axes), p.sum(axes) + r.sum(axes)
    union = np.maximum(p, r).sum(axes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(size > 0, 2 * inter / size, np.nan), np.where(union > 0, inter / union, np.nan)


def _cases(seed: int, n: int = 3, flip: float = 0.2) -> tuple[list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    refs = [rng.integers(0, C - 1, size=(2, 16, 16)) for _ in range(n)]  # class 6 never in the references
    preds = [np.where(rng.random(r.shape) < flip, rng.integers(0, C, size=r.shape), r) for r in refs]
    return preds, refs


def test_case_overlaps_match_the_independent_one_hot_dice_and_iou():
    preds, refs = _cases(0, n=1)
    dice, iou = _onehot_dice_iou(preds[0], refs[0])
    got = case_overlaps(preds[0], refs[0], include_background=True)
    assert list(got) == list(CHEST_CT_TISSUE_CLASSES)
    for i, name in enumerate(CHEST_CT_TISSUE_CLASSES):
        assert got[name][0] == pytest.approx(dice[i], rel=1e-12)
        assert got[name][1] == pytest.approx(iou[i], rel=1e-12)
    assert "background" not in case_overlaps(preds[0], refs[0])


def test_a_class_absent_from_both_maps_is_nan_and_left_out_of_the_mean():
    ref = np.ones((8, 8), dtype=np.int64)
    pred = ref.copy()
    pred[0, :4] = 2
    got = case_overlaps(pred, ref)
    assert math.isnan(got["bone"][0]) and math.isnan(got["bone"][1])
    assert got["airway"] == (0.0, 0.0)
    scores = segmentation_scores([pred, ref], [ref, ref])
    assert scores["bone"].n == 0 and math.isnan(scores["bone"].dice)
    assert scores["airway"].n == 1 and scores["airway"].dice == 0.0  # case 2 has no airway anywhere
    assert scores["lungs"].n == 2


def test_segmentation_scores_are_the_mean_and_sd_over_cases():
    preds, refs = _cases(1)
    per_case = [_onehot_dice_iou(p, r) for p, r in zip(preds, refs, strict=True)]
    scores = segmentation_scores(preds, refs)
    assert list(scores) == list(CHEST_CT_TISSUE_CLASSES[1:])
    for i, name in enumerate(CHEST_CT_TISSUE_CLASSES[1:], start=1):
        d = np.array([c[0][i] for c in per_case])
        j = np.array([c[1][i] for c in per_case])
        d, j = d[~np.isnan(d)], j[~np.isnan(j)]
        assert scores[name].n == d.size
        assert scores[name].dice == pytest.approx(d.mean(), rel=1e-12)
        assert scores[name].iou == pytest.approx(j.mean(), rel=1e-12)
        assert scores[name].dice_sd == pytest.approx(d.std(ddof=1), rel=1e-9)
    one = segmentation_scores(preds[0], refs[0])  # a single array is one case
    assert one["lungs"].n == 1 and math.isnan(one["lungs"].dice_sd)


def test_inputs_are_checked():
    with pytest.raises(ValueError, match="shape"):
        case_overlaps(np.zeros((2, 2), int), np.zeros((3, 2), int))
    with pytest.raises(ValueError, match="integer"):
        case_overlaps(np.zeros((2, 2)), np.zeros((2, 2), int))
    with pytest.raises(ValueError, match=r"\[0, 6\]"):
        case_overlaps(np.full((2, 2), 9), np.zeros((2, 2), int))
    with pytest.raises(ValueError, match="equally many"):
        segmentation_scores([np.zeros((2, 2), int)], [])


def _table():
    source = _cases(2)
    target = _cases(3, flip=0.05)
    harmonized = {"CycleGAN": (_cases(4, flip=0.3)[0], source[1]), "SegRenorm": (_cases(5, flip=0.1)[0], source[1])}
    return posthoc_dice_table(target, source, harmonized, source_on_source=_cases(6, flip=0.05)), target, source


def test_table_rows_are_in_table_v_order_with_both_bounds():
    rows, target, source = _table()
    assert [r.label for r in rows] == [
        "Source Segmentor → Source Image",
        "Target Segmentor → Target Image",
        "Target Segmentor → Source Image",
        "Target Segmentor → Harmonized Image (CycleGAN)",
        "Target Segmentor → Harmonized Image (SegRenorm)",
    ]
    assert [r.role for r in rows] == ["source reference", "upper bound", "lower bound", "harmonized", "harmonized"]
    assert rows[3].method == "CycleGAN"
    assert rows[1].scores == segmentation_scores(*target)
    assert rows[2].scores == segmentation_scores(*source)
    assert posthoc_dice_table(target, source, {})[0].role == "upper bound"  # source row optional


def test_markdown_and_csv_writers(tmp_path):
    rows, _, _ = _table()
    md = posthoc_dice_markdown(rows)
    lines = md.strip().splitlines()
    assert lines[0] == "| DC / IoU | lungs | airway | skeletal_muscle | fat | bone | mediastinum | mean |"
    assert len(lines) == 2 + len(rows)
    s = rows[1].scores["fat"]
    assert f"| {s.dice:.2f} / {s.iou:.2f} |" in lines[3]
    assert "| 0.00 / 0.00 |" in lines[3]  # mediastinum predicted but never in the references
    exact = _cases(7, flip=0.0)  # mediastinum in neither map: undefined, shown as "–"
    assert posthoc_dice_markdown(posthoc_dice_table(exact, exact, {})).splitlines()[2].count("| – / – |") == 1
    mean = np.nanmean([rows[1].scores[c].dice for c in rows[1].scores])
    assert lines[3].endswith(f"{mean:.2f} / {np.nanmean([rows[1].scores[c].iou for c in rows[1].scores]):.2f} |")
    assert "| DC |" in posthoc_dice_markdown(rows, iou=False)

    parsed = list(csv.DictReader(io.StringIO(posthoc_dice_csv(rows))))
    assert len(parsed) == len(rows) * (C - 1)
    first = next(p for p in parsed if p["row"] == rows[3].label and p["class"] == "lungs")
    assert first["method"] == "CycleGAN" and float(first["dice"]) == rows[3].scores["lungs"].dice

    out = write_posthoc_dice_table(rows, tmp_path / "table_v.md")
    assert out.read_text(encoding="utf-8") == md
    assert (write_posthoc_dice_table(rows, tmp_path / "t.csv")).read_text(encoding="utf-8") == posthoc_dice_csv(rows)
    with pytest.raises(ValueError, match=".md or .csv"):
        write_posthoc_dice_table(rows, tmp_path / "t.txt")
