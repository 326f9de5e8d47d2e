"""``sensitivity.png`` of ``ctharmonize sensitivity`` (paper 004 Fig. 9a form; PNG, matplotlib Agg canvas).

Two panels, MSE ([-1, 1]² units, lower is better) and SSIM (higher is better) against the noise SD σ in
[-1, 1] units, one line per method (mean over slices, band ± SD). When every method has the same HU window
the top axis gives σ in HU too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ctharmonize.evaluation.sensitivity import SensitivityCurve

__all__ = ["sensitivity_plot"]

_LABELS = {"output": ("MSE(H(x+ε), H(x))", "SSIM(H(x+ε), H(x))"),
           "cycle": ("MSE(F(G(x)+ε), x)", "SSIM(F(G(x)+ε), x)")}


def sensitivity_plot(curves: Mapping[str, SensitivityCurve], path: str | Path, title: str = "") -> Path:
    """Write the two-panel figure of ``curves`` (method name -> curve, in legend order) to ``path``."""
    fig = Figure(figsize=(10.0, 4.4))
    windows: Sequence[tuple[float, float]] = [c.window for c in curves.values()]
    modes = {c.mode for c in curves.values()}
    labels = _LABELS[modes.pop()] if len(modes) == 1 else ("MSE", "SSIM")
    for p, (metric, label) in enumerate(zip(("mse", "ssim"), labels, strict=True)):
        ax = fig.add_subplot(1, 2, p + 1)
        for name, curve in curves.items():
            values = getattr(curve, metric)
            mean = values.mean(axis=1)
            sd = values.std(axis=1, ddof=1) if values.shape[1] > 1 else np.zeros_like(mean)
            line, = ax.plot(curve.sigmas, mean, marker="o", ms=3, label=name)
            ax.fill_between(curve.sigmas, mean - sd, mean + sd, color=line.get_color(), alpha=0.15, lw=0)
        ax.set_xlabel("noise SD σ ([-1, 1] units)")
        ax.set_ylabel(f"{label} ({'[-1, 1]² units' if metric == 'mse' else 'unitless'})")
        ax.set_title(f"{metric.upper()} ({'lower' if metric == 'mse' else 'higher'} is better)", fontsize=10)
        ax.grid(alpha=0.3)
        if windows and len(set(windows)) == 1:
            half = (windows[0][1] - windows[0][0]) / 2.0
            top = ax.secondary_xaxis("top", functions=(lambda s, h=half: s * h, lambda v, h=half: v / h))
            top.set_xlabel("σ (HU)")
    handles, names = fig.axes[0].get_legend_handles_labels()
    ncol = min(len(names), 4) or 1
    fig.legend(handles, names, loc="lower center", ncol=ncol, fontsize=8, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    rows = -(-len(names) // ncol)
    fig.tight_layout(rect=(0, 0.06 * rows, 1, 0.95 if title else 1))
    out = Path(path)
    fig.savefig(out, dpi=110, format="png")
    return out
