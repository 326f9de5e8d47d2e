"""Evaluation figures (PNG, matplotlib Agg canvas; no pyplot global state).

LAA-950 values are in %, images in HU shown in the lung window (W 1500, L -600).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from ctharmonize.io.atomic import atomic_path

__all__ = ["LUNG_WINDOW", "bland_altman_plot", "laa_boxplot", "dice_plot", "example_panel"]

LUNG_WINDOW = (-1350.0, 150.0)  # HU: width 1500, level -600


def _save(fig: Figure, path: str | Path, overwrite: bool) -> Path:
    with atomic_path(path, overwrite=overwrite) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    return Path(path)


def _finite_pairs(x: Sequence[float], y: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    return x[keep], y[keep]


def bland_altman_plot(rows: Sequence[dict[str, Any]], path: str | Path, overwrite: bool = False) -> Path:
    """Bland-Altman of LAA-950 (%) of each paired kernel against its reference, before and after.

    x: mean of the two measurements, y: scan minus reference; lines: mean difference (bias)
    and bias ± 1.96 SD (limits of agreement). One panel per kernel pair.
    """
    pairs = sorted({(r["kernel"], r["paired_reference"]) for r in rows if r["paired_reference"]})
    fig = Figure(figsize=(5.0 * max(len(pairs), 1), 4.2))
    if not pairs:
        ax = fig.add_subplot(1, 1, 1)
        ax.text(0.5, 0.5, "no paired scans (same subject, two kernels)", ha="center", va="center")
        ax.set_axis_off()
        return _save(fig, path, overwrite)
    for i, (kernel, ref) in enumerate(pairs):
        ax = fig.add_subplot(1, len(pairs), i + 1)
        grp = [r for r in rows if r["kernel"] == kernel and r["paired_reference"] == ref]
        series = [("before", "laa_pct", "o", "tab:red")]
        if any(r["target"] == ref and math.isfinite(r["after_laa_pct"]) for r in grp):
            series.append(("after", "after_laa_pct", "x", "tab:blue"))
        for label, key, marker, color in series:
            a, b = _finite_pairs([r[key] for r in grp], [r["ref_laa_pct"] for r in grp])
            if a.size == 0:
                continue
            diff = a - b
            bias = diff.mean()
            sd = diff.std(ddof=1) if diff.size > 1 else 0.0
            ax.scatter((a + b) / 2, diff, marker=marker, color=color, label=f"{label}: bias {bias:+.2f}%")
            ax.axhline(bias, color=color, lw=1)
            for s in (-1.96, 1.96):
                ax.axhline(bias + s * sd, color=color, lw=0.8, ls="--")
        ax.axhline(0.0, color="0.5", lw=0.6)
        ax.set_xlabel("mean LAA-950 of the pair (%)")
        ax.set_ylabel(f"{kernel} - {ref} (LAA-950 %)")
        ax.set_title(f"{kernel} vs {ref}")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path, overwrite)


def laa_boxplot(
    rows: Sequence[dict[str, Any]], path: str | Path, reference_kernel: str, overwrite: bool = False
) -> Path:
    """Box plots of LAA-950 (%) per kernel before and after harmonization (points overlaid)."""
    kernels = sorted({r["kernel"] for r in rows}, key=lambda k: (k != reference_kernel, k))
    data, labels, colors = [], [], []
    for k in kernels:
        before = [r["laa_pct"] for r in rows if r["kernel"] == k]
        after = [r["after_laa_pct"] for r in rows if r["kernel"] == k and math.isfinite(r["after_laa_pct"])]
        data.append(np.asarray(before, float))
        labels.append(f"{k}\nbefore")
        colors.append("tab:red" if k != reference_kernel else "tab:green")
        if after:
            targets = sorted({r["target"] for r in rows if r["kernel"] == k and r["harmonized"]})
            data.append(np.asarray(after, float))
            labels.append(f"{k}\nafter -> {','.join(targets)}")
            colors.append("tab:blue")
    fig = Figure(figsize=(max(4.0, 1.3 * len(data) + 1.5), 4.5))
    ax = fig.add_subplot(1, 1, 1)
    positions = np.arange(1, len(data) + 1)
    ax.boxplot([d[np.isfinite(d)] for d in data], positions=positions, widths=0.6, showfliers=False)
    rng = np.random.default_rng(0)
    for pos, d, c in zip(positions, data, colors, strict=True):
        ax.scatter(pos + rng.uniform(-0.12, 0.12, d.size), d, s=14, color=c, zorder=3)
    ref = [r["laa_pct"] for r in rows if r["kernel"] == reference_kernel]
    if ref:
        ax.axhline(float(np.median(ref)), color="tab:green", lw=0.8, ls=":", label=f"{reference_kernel} median")
        ax.legend(fontsize=8)
    ax.set_xticks(positions, labels, fontsize=7)
    ax.set_ylabel("LAA-950 (%)")
    ax.set_title("Percent emphysema per kernel")
    fig.tight_layout()
    return _save(fig, path, overwrite)


def dice_plot(rows: Sequence[dict[str, Any]], path: str | Path, overwrite: bool = False) -> Path:
    """Dice (harmonized vs original) of skeletal muscle and SAT per source kernel (box + points)."""
    kernels = sorted({r["kernel"] for r in rows if r["harmonized"]})
    fig = Figure(figsize=(max(5.0, 2.2 * len(kernels) + 1.5), 4.2))
    for i, (tissue, title) in enumerate((("muscle", "skeletal muscle"), ("sat", "subcutaneous fat (SAT)"))):
        ax = fig.add_subplot(1, 2, i + 1)
        data = [np.asarray([r[f"dice_{tissue}"] for r in rows if r["kernel"] == k and r["harmonized"]], float)
                for k in kernels]
        data = [d[np.isfinite(d)] for d in data]
        if kernels:
            ax.boxplot(data, positions=np.arange(1, len(kernels) + 1), widths=0.6, showfliers=False)
            for pos, d in enumerate(data, start=1):
                ax.scatter(np.full(d.size, pos), d, s=14, color="tab:purple", zorder=3)
            ax.set_xticks(np.arange(1, len(kernels) + 1), kernels, fontsize=8)
        ax.set_ylim(0, 1.02)
        ax.set_ylabel("Dice (harmonized vs original)")
        ax.set_title(title)
    fig.tight_layout()
    return _save(fig, path, overwrite)


def example_panel(example: dict[str, Any], path: str | Path, overwrite: bool = False) -> Path:
    """Before | after | difference (after - before, ±200 HU) | emphysema maps (HU < threshold in the lung).

    ``example`` comes from :class:`~ctharmonize.evaluation.cohort.CohortEvaluation` (one axial slice).
    """
    before = example["before"]
    after = example.get("after")
    lung = example["lung"]
    thr = example["threshold"]
    sx, sy = example["spacing"][0], example["spacing"][1]
    aspect = sy / sx
    ncols = 5 if after is not None else 2
    fig = Figure(figsize=(3.2 * ncols, 3.6))
    axes = [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]

    def overlay(ax, img, title):
        ax.imshow(img, cmap="gray", vmin=LUNG_WINDOW[0], vmax=LUNG_WINDOW[1], aspect=aspect)
        emph = np.ma.masked_where(~(lung & (img < thr)), np.ones_like(img))
        ax.imshow(emph, cmap="autumn", alpha=0.8, aspect=aspect, interpolation="nearest")
        laa = 100.0 * float((lung & (img < thr)).sum()) / max(int(lung.sum()), 1)
        ax.set_title(f"{title}\nLAA{thr:g} slice {laa:.1f}%", fontsize=8)

    axes[0].imshow(before, cmap="gray", vmin=LUNG_WINDOW[0], vmax=LUNG_WINDOW[1], aspect=aspect)
    axes[0].set_title(example["before_title"], fontsize=8)
    if after is not None:
        axes[1].imshow(after, cmap="gray", vmin=LUNG_WINDOW[0], vmax=LUNG_WINDOW[1], aspect=aspect)
        axes[1].set_title(example["after_title"], fontsize=8)
        im = axes[2].imshow(after - before, cmap="RdBu_r", vmin=-200, vmax=200, aspect=aspect)
        short = example.get("after_short") or "after"
        axes[2].set_title(f"difference: {short} - before (HU)", fontsize=8)
        fig.colorbar(im, ax=axes[2], fraction=0.046)
        overlay(axes[3], before, "emphysema map: before")
        overlay(axes[4], after, f"emphysema map: {short}")
    else:
        overlay(axes[1], before, "emphysema map")
    for ax in axes:
        ax.set_axis_off()
    fig.suptitle(f"subject {example['subject']} ({example['kernel']}), slice {example['slice']}; lung window", fontsize=9)
    fig.tight_layout()
    return _save(fig, path, overwrite)
