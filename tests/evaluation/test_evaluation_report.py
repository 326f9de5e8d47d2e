"""Plots and Markdown report from hand-made rows: files exist, are PNGs, tables hold the numbers."""

import math

import numpy as np
import pytest

from ctharmonize.errors import OutputExistsError
from ctharmonize.evaluation.plots import bland_altman_plot, dice_plot, example_panel, laa_boxplot
from ctharmonize.evaluation.report import write_report
from ctharmonize.evaluation.summary import summarize

PNG = b"\x89PNG\r\n\x1a\n"


def _rows():
    rows = []
    # mean lung density (HU): before - reference = 5, 10, -10; after - reference = 30, 30, 30
    mld = [{"ref_mean_hu": ref, "mean_hu": ref + d, "after_mean_hu": ref + 30.0, "ref_perc15_hu": math.nan,
            "perc15_hu": math.nan, "after_perc15_hu": math.nan}
           for ref, d in ((-850.0, 5.0), (-860.0, 10.0), (-870.0, -10.0))]
    for i, (r, b, a) in enumerate([(5.0, 15.0, 6.0), (7.0, 21.0, 6.5), (9.0, 19.0, 9.5)]):
        base = {"paired_reference": "", "ref_laa_pct": math.nan, "after_laa_pct": math.nan, "target": "",
                "harmonized": "", **{f"{m}_{w}": math.nan for m in ("psnr", "ssim", "nrmse", "ncc")
                                     for w in ("before", "after")},
                **{f"dice_{t}": math.nan for t in ("muscle", "sat", "vat")}}
        rows.append({**base, "subject": f"s{i}", "kernel": "siemens_b30f", "laa_pct": r})
        rows.append({**base, "subject": f"s{i}", "kernel": "siemens_b50f", "laa_pct": b, "ref_laa_pct": r,
                     "paired_reference": "siemens_b30f", "after_laa_pct": a, "target": "siemens_b30f",
                     "harmonized": "h.nii.gz", "dice_muscle": 0.9, "dice_sat": 0.85, "dice_vat": 0.7,
                     "psnr_before": 33.0, "psnr_after": 40.0, **mld[i]})
    return rows


def test_plots_and_report(tmp_path):
    rows = _rows()
    summary = summarize(rows, "siemens_b30f", n_resamples=100)
    figs = {"BA": "ba.png", "box": "box.png", "dice": "dice.png", "panel": "panel.png"}
    bland_altman_plot(rows, tmp_path / "ba.png")
    laa_boxplot(rows, tmp_path / "box.png", "siemens_b30f")
    dice_plot(rows, tmp_path / "dice.png")
    rng = np.random.default_rng(0)
    lung = np.zeros((32, 32), bool)
    lung[8:24, 8:24] = True
    before = rng.normal(-900, 60, (32, 32)).astype(np.float32)
    example_panel({"before": before, "after": before * 0 - 880, "lung": lung, "threshold": -950.0,
                   "spacing": (1.0, 1.0, 2.0), "subject": "s0", "kernel": "siemens_b50f", "slice": 3,
                   "before_title": "before", "after_title": "after: harmonized"}, tmp_path / "panel.png")
    for name in figs.values():
        assert (tmp_path / name).read_bytes()[:8] == PNG
    with pytest.raises(OutputExistsError):
        bland_altman_plot(rows, tmp_path / "ba.png")
    written = write_report(summary, figs, tmp_path, html_report=True)
    text = (tmp_path / "report.md").read_text()
    assert [p.name for p in written] == ["report.md", "report.html"]
    # Table 2 form: reference median (min, max) = 7.00% (5.00%, 9.00%); b50f before 19.00% (15.00%, 21.00%)
    assert "7.00% (5.00%, 9.00%)" in text
    assert "19.00% (15.00%, 21.00%)" in text
    assert "6.50% (6.00%, 9.50%)" in text  # after
    # MLD: before mean 5/3 = 1.7, RMSE sqrt(225/3) = 8.7; after 30.0 / 30.0; Perc15 all NaN
    assert "| siemens_b50f vs siemens_b30f | before | n/a | 1.7 / 8.7 |" in text
    assert "| siemens_b50f vs siemens_b30f | after | n/a | 30.0 / 30.0 |" in text
    assert "## Table 1 form" in text and "## Table 3 form" in text
    assert "![BA](ba.png)" in text
    assert "<table>" in (tmp_path / "report.html").read_text()
