"""Cohen's d between models on per-scan Dice, checked against a hand computation."""

import csv
import math

import pytest

from ctharmonize.errors import InputError
from ctharmonize.evaluation import compare_models


def _write(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["subject", "kernel", "dice_muscle", "dice_sat"])
        w.writeheader()
        w.writerows(rows)
    return path


def test_cohens_d_between_models_by_hand(tmp_path):
    guided = [0.95, 0.93, 0.97, 0.90]
    unguided = [0.80, 0.85, 0.78, 0.88]
    ref = _write(tmp_path / "a.csv", [
        {"subject": i, "kernel": "ge_bone", "dice_muscle": v, "dice_sat": ""} for i, v in enumerate(guided)
    ] + [{"subject": 9, "kernel": "siemens_b50f", "dice_muscle": 0.1, "dice_sat": 0.1}])
    other = _write(tmp_path / "b.csv", [
        {"subject": i, "kernel": "ge_bone", "dice_muscle": v, "dice_sat": ""} for i, v in enumerate(unguided)
    ])
    table = compare_models({"guided": ref, "unguided": other}, "guided", kernels=["ge_bone"])
    # pooled SD by hand: ((n1-1) s1^2 + (n2-1) s2^2) / (n1 + n2 - 2), sample variances
    m1, m2 = sum(guided) / 4, sum(unguided) / 4
    v1 = sum((x - m1) ** 2 for x in guided) / 3
    v2 = sum((x - m2) ** 2 for x in unguided) / 3
    expected = (m1 - m2) / math.sqrt((3 * v1 + 3 * v2) / 6)
    cell = table["unguided"]["ge_bone"]["dice_muscle"]
    assert cell["d"] == pytest.approx(expected, rel=1e-9)
    assert cell["category"] == "large" and cell["n_reference"] == 4 and cell["n_other"] == 4
    # SAT column is empty: no values, d undefined rather than a crash
    assert math.isnan(table["unguided"]["ge_bone"]["dice_sat"]["d"])


def test_unknown_reference_model(tmp_path):
    path = _write(tmp_path / "a.csv", [{"subject": 0, "kernel": "ge_bone", "dice_muscle": 0.9, "dice_sat": 0.9}])
    with pytest.raises(InputError, match="reference model"):
        compare_models({"a": path}, "b")


def test_compare_models_cli_writes_table(tmp_path, capsys):
    import json

    from ctharmonize.cli import main

    a = _write(tmp_path / "a.csv", [{"subject": i, "kernel": "ge_standard", "dice_muscle": v, "dice_sat": v}
                                    for i, v in enumerate([0.9, 0.8])])
    b = _write(tmp_path / "b.csv", [{"subject": i, "kernel": "ge_standard", "dice_muscle": v, "dice_sat": v}
                                    for i, v in enumerate([0.7, 0.6])])
    out = tmp_path / "d.json"
    rc = main(["compare-models", "--per_scan", json.dumps({"guided": str(a), "plain": str(b)}),
               "--reference", "guided", "--kernels", "ge_standard", "--out", str(out)])
    assert rc == 0
    # means 0.85 vs 0.65, both sample SDs 0.0707..., pooled SD the same: d = 0.2 / 0.0707 = 2.83
    d = json.loads(out.read_text())["plain"]["ge_standard"]["dice_sat"]["d"]
    assert d == pytest.approx(0.2 / math.sqrt(0.005), rel=1e-9)
    assert "plain | ge_standard | 2.83 (large)" in capsys.readouterr().out
