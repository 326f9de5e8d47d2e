"""Pairing rules and cohort statistics from hand-made per-scan rows."""

import math

import numpy as np
import pytest
from scipy import stats

from ctharmonize.errors import DatalistError
from ctharmonize.evaluation.pairing import build_cohort
from ctharmonize.evaluation.summary import summarize


def _entries():
    return [
        {"image": "a_b30.nii.gz", "kernel": "siemens_b30f", "subject": "a"},
        {"image": "a_b50.nii.gz", "kernel": "siemens_b50f", "subject": "a", "harmonized": "a_h.nii.gz"},
        {"image": "g_std.nii.gz", "kernel": "ge_standard", "subject": "g"},
        {"image": "g_bone.nii.gz", "kernel": "ge_bone", "subject": "g"},
        {"image": "g_bone_h.nii.gz", "kernel": "siemens_b30f", "subject": "g", "source_kernel": "ge_bone"},
        {"image": "x_b50.nii.gz", "kernel": "siemens_b50f", "subject": "x"},
    ]


def test_pairing_rules():
    cohort = build_cohort(_entries())
    by = {(s.subject, s.kernel): s for s in cohort.scans}
    assert len(cohort.scans) == 5  # the source_kernel entry is attached, not a scan
    assert cohort.scans[by[("a", "siemens_b50f")].paired_reference].kernel == "siemens_b30f"
    assert by[("a", "siemens_b50f")].target == "siemens_b30f"  # default target: the reference kernel
    bone = by[("g", "ge_bone")]
    assert cohort.scans[bone.paired_reference].kernel == "ge_standard"
    assert (bone.harmonized, bone.target) == ("g_bone_h.nii.gz", "siemens_b30f")
    assert by[("g", "ge_standard")].paired_reference is None  # no b30f for subject g
    assert by[("x", "siemens_b50f")].paired_reference is None
    assert cohort.kernels[0] == "siemens_b30f"
    # custom paired references: GE bone paired with nothing
    cohort2 = build_cohort(_entries(), paired_references={"siemens_b50f": "siemens_b30f"})
    assert {(s.subject, s.kernel): s for s in cohort2.scans}[("g", "ge_bone")].paired_reference is None


def test_pairing_errors_name_the_entry():
    bad = _entries() + [{"image": "dup.nii.gz", "kernel": "siemens_b30f", "subject": "a"}]
    with pytest.raises(DatalistError, match="entry 6: subject 'a' already has"):
        build_cohort(bad, source="dl.json")
    with pytest.raises(DatalistError, match="dl.json: entry 0: 'kernel' missing"):
        build_cohort([{"image": "x.nii.gz"}], source="dl.json")
    with pytest.raises(DatalistError, match="no original entry"):
        build_cohort([{"image": "h.nii.gz", "kernel": "siemens_b30f", "subject": "z", "source_kernel": "ge_bone"}])


def _row(subject, kernel, laa, ref_laa=math.nan, paired="", after=math.nan, target="", harmonized="", **kw):
    row = {"subject": subject, "kernel": kernel, "laa_pct": laa, "ref_laa_pct": ref_laa, "paired_reference": paired,
           "after_laa_pct": after, "target": target, "harmonized": harmonized}
    for m in ("psnr", "ssim", "nrmse", "ncc"):
        for w in ("before", "after"):
            row[f"{m}_{w}"] = kw.get(f"{m}_{w}", math.nan)
    for t in ("muscle", "sat", "vat"):
        row[f"dice_{t}"] = kw.get(f"dice_{t}", math.nan)
    return row


def test_summary_values_by_hand():
    ref = [5.0, 7.0, 9.0, 6.0]
    b50 = [15.0, 21.0, 19.0, 13.0]
    b50_after = [6.0, 6.5, 9.5, 6.0]
    rows = [_row(f"s{i}", "siemens_b30f", r) for i, r in enumerate(ref)]
    rows += [_row(f"s{i}", "siemens_b50f", b, ref[i], "siemens_b30f", a, "siemens_b30f", "h.nii.gz",
                  psnr_before=30.0 + i, dice_muscle=0.9 + i / 100, dice_sat=0.8)
             for i, (b, a) in enumerate(zip(b50, b50_after, strict=True))]
    bone = [12.0, 30.0, 2.0]
    rows += [_row(f"g{i}", "ge_bone", b) for i, b in enumerate(bone)]
    s = summarize(rows, "siemens_b30f", n_resamples=200, seed=1)

    p = s["paired"]["siemens_b50f->siemens_b30f"]
    assert p["n"] == 4
    assert p["before"]["mean_difference"] == pytest.approx(np.mean(np.subtract(b50, ref)))
    # RMSE of all 4 differences (10, 14, 10, 7) lies within the CI
    rmse_all = math.sqrt(np.mean(np.square(np.subtract(b50, ref))))
    assert p["before"]["ci_low"] <= rmse_all <= p["before"]["ci_high"]
    assert p["before"]["wilcoxon"]["pvalue"] == pytest.approx(stats.wilcoxon(b50, ref).pvalue)
    assert p["after"]["mean_difference"] == pytest.approx(np.mean(np.subtract(b50_after, ref)))
    before_err = np.abs(np.subtract(b50, ref))
    after_err = np.abs(np.subtract(b50_after, ref))
    assert p["wilcoxon_before_vs_after"]["pvalue"] == pytest.approx(stats.wilcoxon(before_err, after_err).pvalue)
    assert p["before"]["similarity"]["psnr"]["median"] == pytest.approx(31.5)
    assert p["after"]["rmse"] < p["before"]["rmse"]

    u = s["unpaired"]
    assert u["reference"] == {"kernel": "siemens_b30f", "n": 4, "median": 6.5, "min": 5.0, "max": 9.0}
    bone_before = u["kernels"]["ge_bone"]["before"]
    assert (bone_before["median"], bone_before["min"], bone_before["max"]) == (12.0, 2.0, 30.0)
    assert bone_before["mann_whitney_u"]["pvalue"] == pytest.approx(stats.mannwhitneyu(bone, ref).pvalue)
    assert u["kernels"]["ge_bone"]["after"] is None
    # Cohen's d by hand for b50f (before) vs reference
    pooled = (3 * np.var(b50, ddof=1) + 3 * np.var(ref, ddof=1)) / 6
    d = (np.mean(b50) - np.mean(ref)) / math.sqrt(pooled)
    assert u["kernels"]["siemens_b50f"]["before"]["cohens_d"]["d"] == pytest.approx(d)
    assert u["kernels"]["siemens_b50f"]["before"]["cohens_d"]["category"] == "large"
    assert s["dice"]["siemens_b50f"]["muscle"]["median"] == pytest.approx(0.915)
    assert s["dice"]["siemens_b50f"]["sat"] == {"n": 4, "median": 0.8, "min": 0.8, "max": 0.8}
    assert "ge_bone" not in s["dice"]
