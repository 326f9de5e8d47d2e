"""``ccc.png`` of ``ctharmonize radiomics``: CCC per feature class, one bar per pair and comparison (PNG,
matplotlib Agg canvas). Left the paper form (mean ± SD over image pairs), right the conventional form
(mean ± SD over the class's features). CCC is unit-free, in [-1, 1]."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

__all__ = ["ccc_plot"]


def ccc_plot(rows: Sequence[Mapping[str, Any]], groups: Mapping[str, str], path: str | Path) -> Path:
    """Grouped bars of table-2 ``rows`` (each: ``label``, and ``paper`` / ``conventional``: group -> summary with
    ``mean`` and ``sd``); ``groups``: group key -> axis label, in order. NaN leaves a gap."""
    keys = list(groups)
    x = np.arange(len(keys))
    width = 0.8 / max(len(rows), 1)
    fig = Figure(figsize=(max(7.0, 1.1 * len(keys) + 0.4 * len(rows)) * 2, 4.6 + 0.25 * len(rows)))
    for p, (form, title) in enumerate((("paper", "paper 002 form: per image pair, over the class's features"),
                                       ("conventional", "conventional: per feature, over image pairs"))):
        ax = fig.add_subplot(1, 2, p + 1)
        for j, row in enumerate(rows):
            cells = [row[form].get(k, {}) for k in keys]
            mean = np.array([float(c.get("mean", math.nan)) for c in cells])
            sd = np.array([float(c.get("sd", math.nan)) for c in cells])
            ax.bar(x + (j - (len(rows) - 1) / 2) * width, np.nan_to_num(mean), width, yerr=np.nan_to_num(sd),
                   capsize=2, label=str(row["label"]))
        ax.axhline(0.0, color="0.3", lw=0.6)
        ax.set_xticks(x, [groups[k] for k in keys])
        ax.set_ylim(min(-0.05, ax.get_ylim()[0]), 1.05)
        ax.set_ylabel("Lin's CCC")
        ax.set_title(title, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    handles, labels = fig.axes[0].get_legend_handles_labels()
    ncol = min(len(labels), 4) or 1
    fig.legend(handles, labels, loc="lower center", ncol=ncol, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.06 * math.ceil(len(labels) / ncol), 1, 1))
    out = Path(path)
    fig.savefig(out, dpi=110, format="png")
    return out
