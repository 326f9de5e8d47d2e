"""Benchmark figures (PNG, matplotlib Agg canvas): main leaderboard columns as bars, and one slice through
every method. Images in HU, shown in the lung window (W 1500, L -600); differences in HU (±200)."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from ctharmonize.evaluation.plots import LUNG_WINDOW

__all__ = ["BAR_COLUMNS", "bars_plot", "method_panel"]

# (row key, axis title, reference line or None)
BAR_COLUMNS: tuple[tuple[str, str, float | None], ...] = (
    ("laa950_rmse_pp", "LAA-950 RMSE vs paired soft (pp), lower is better", None),
    ("laa950_gt_rmse_pp", "LAA-950 RMSE vs ground truth (pp), lower is better", None),
    ("noise_sd_ratio", "noise SD ratio, 1 is best", 1.0),
    ("ssim_gt", "SSIM vs ground truth, higher is better", None),
    ("dice_muscle", "Dice muscle vs input, higher is better", None),
    ("slices_per_s", "inference slices/s, higher is better", None),
)
DIFF_HU = 200.0


def _value(row: Mapping[str, Any], key: str) -> float:
    try:
        return float(row.get(key))
    except (TypeError, ValueError):
        return math.nan


def bars_plot(rows: Sequence[Mapping[str, Any]], path: str | Path) -> Path:
    """Grouped bars of :data:`BAR_COLUMNS` (one panel each): x = path, one bar per method; the paired LAA
    RMSE carries its bootstrap 95 % CI. Missing values (not supported / not applicable) leave a gap."""
    methods = list(dict.fromkeys(r["method"] for r in rows))
    paths = list(dict.fromkeys(r["path"] for r in rows))
    fig = Figure(figsize=(6.0 * 3, 4.2 * 2))
    width = 0.8 / max(len(methods), 1)
    for i, (key, title, line) in enumerate(BAR_COLUMNS):
        ax = fig.add_subplot(2, 3, i + 1)
        shown = [p for p in paths if any(math.isfinite(_value(r, key)) for r in rows if r["path"] == p)]
        x = np.arange(len(shown))
        for j, method in enumerate(methods):
            by_path = {r["path"]: r for r in rows if r["method"] == method}
            vals = np.array([_value(by_path.get(p, {}), key) for p in shown])
            err = None
            if key == "laa950_rmse_pp":
                low = np.array([_value(by_path.get(p, {}), "laa950_rmse_ci_low") for p in shown])
                high = np.array([_value(by_path.get(p, {}), "laa950_rmse_ci_high") for p in shown])
                err = np.nan_to_num(np.vstack([vals - low, high - vals]).clip(min=0))
            ax.bar(x + (j - (len(methods) - 1) / 2) * width, np.nan_to_num(vals), width, yerr=err,
                   label=method, capsize=2)
        if line is not None:
            ax.axhline(line, color="0.3", lw=0.8, ls="--")
        ax.set_xticks(x, [p.replace("->", "\n→ ") for p in shown], fontsize=7)
        ax.set_title(title, fontsize=9)
        if not shown:
            ax.text(0.5, 0.5, "no values", ha="center", va="center", transform=ax.transAxes)
    handles, labels = fig.axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(methods), 4), fontsize=8)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(path, dpi=100, format="png")
    return Path(path)


def method_panel(panel: Mapping[str, Any], path: str | Path) -> Path:
    """Row 1: input, each method's output, paired soft reference, ground truth (lung window); row 2: each
    minus the paired soft image (±200 HU). ``panel``: ``subject``, ``path``, ``slice``, ``spacing``,
    ``input``, ``soft``, ``truth`` (2-D HU or None) and ``outputs`` [(method, 2-D HU or None = not supported)]."""
    images: list[tuple[str, np.ndarray | None]] = [(f"input ({panel['source']})", panel["input"])]
    images += [(name, img) for name, img in panel["outputs"]]
    images += [(f"paired soft ({panel['target']})", panel["soft"]), ("ground truth", panel["truth"])]
    sx, sy = panel["spacing"][0], panel["spacing"][1]
    aspect = sy / sx
    n = len(images)
    fig = Figure(figsize=(2.4 * n + 0.8, 5.8))
    soft = panel["soft"]
    im = None
    for i, (title, img) in enumerate(images):
        top = fig.add_subplot(2, n, i + 1)
        bottom = fig.add_subplot(2, n, n + i + 1)
        for ax in (top, bottom):
            ax.set_axis_off()
        label = "\n".join(textwrap.wrap(title, 26)[:3])
        if img is None:
            top.text(0.5, 0.5, f"{label}\n\nnot supported", ha="center", va="center", fontsize=7,
                     transform=top.transAxes)
            continue
        top.imshow(img, cmap="gray", vmin=LUNG_WINDOW[0], vmax=LUNG_WINDOW[1], aspect=aspect)
        top.set_title(label, fontsize=7)
        if soft is not None and img is not soft:
            im = bottom.imshow(img - soft, cmap="RdBu_r", vmin=-DIFF_HU, vmax=DIFF_HU, aspect=aspect)
            bottom.set_title("minus paired soft", fontsize=7)
    fig.suptitle(f"subject {panel['subject']}, {panel['path']}, slice {panel['slice']}; lung window W1500/L−600, "
                 f"differences ±{DIFF_HU:g} HU", fontsize=9)
    fig.subplots_adjust(left=0.01, right=0.92, bottom=0.02, top=0.86, wspace=0.05, hspace=0.25)
    if im is not None:
        fig.colorbar(im, cax=fig.add_axes((0.935, 0.06, 0.012, 0.36)), label="HU")
    fig.savefig(path, dpi=100, format="png")
    return Path(path)
