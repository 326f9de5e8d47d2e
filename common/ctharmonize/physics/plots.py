"""Image-quality figure of one volume (PNG, matplotlib Agg canvas, no pyplot global state).

Left: the measured MTF (lp/cm) with MTF50 and MTF10 marked and the Nyquist frequency; right: the radial
NPS (HU²·mm², lp/cm) with its peak frequency and the noise SD. Either panel alone when only one
measurement is given.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ctharmonize.physics.edge_mtf import EdgeMTF
from ctharmonize.physics.nps import NoisePower

__all__ = ["image_quality_plot"]


def _mtf_panel(ax, edge: EdgeMTF) -> None:
    ax.plot(edge.frequencies, edge.mtf, color="C0", lw=1.5, label="MTF (skin–air edge)")
    for level, f, color in ((0.5, edge.mtf50, "C1"), (0.1, edge.mtf10, "C2")):
        if np.isfinite(f):
            ax.axhline(level, color=color, lw=0.6, ls=":")
            ax.axvline(f, color=color, lw=0.8, ls="--", label=f"MTF{int(level * 100)} = {f:.2f} lp/cm")
            ax.plot([f], [level], "o", color=color, ms=4)
    ax.axvline(edge.nyquist, color="0.5", lw=0.8, ls="-.", label=f"Nyquist {edge.nyquist:.2f} lp/cm")
    ax.set_xlim(0.0, float(edge.frequencies[-1]))
    ax.set_ylim(0.0, max(1.05, float(np.nanmax(edge.mtf)) * 1.05))
    ax.set_xlabel("spatial frequency (lp/cm)")
    ax.set_ylabel("MTF (unitless)")
    ax.set_title(f"MTF ({edge.accepted} edge profiles)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def _nps_panel(ax, noise: NoisePower) -> None:
    keep = noise.radial_frequency <= noise.nyquist * np.sqrt(2.0)
    ax.plot(noise.radial_frequency[keep], noise.radial[keep], color="C3", lw=1.5,
            label=f"radial NPS (σ = {noise.noise_sd:.1f} HU)")
    if np.isfinite(noise.peak_frequency):
        ax.axvline(noise.peak_frequency, color="C4", lw=0.8, ls="--",
                   label=f"peak {noise.peak_frequency:.2f} lp/cm")
    ax.axvline(noise.nyquist, color="0.5", lw=0.8, ls="-.", label=f"Nyquist {noise.nyquist:.2f} lp/cm")
    ax.set_xlim(0.0, float(noise.radial_frequency[keep][-1]))
    ax.set_ylim(bottom=0.0)
    ax.set_xlabel("spatial frequency (lp/cm)")
    ax.set_ylabel("NPS (HU² mm²)")
    ax.set_title(f"NPS ({len(noise.rois)} ROIs of {noise.roi_size}² px, {noise.source})", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def image_quality_plot(path: str | Path, edge: EdgeMTF | None = None, noise: NoisePower | None = None,
                       title: str = "") -> Path:
    """Write the MTF and/or radial NPS figure to ``path`` (PNG) and return it."""
    panels = [p for p in (edge, noise) if p is not None]
    if not panels:
        raise ValueError("image_quality_plot: give an MTF, an NPS or both")
    fig = Figure(figsize=(5.2 * len(panels), 4.3))
    i = 1
    if edge is not None:
        _mtf_panel(fig.add_subplot(1, len(panels), i), edge)
        i += 1
    if noise is not None:
        _nps_panel(fig.add_subplot(1, len(panels), i), noise)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.94 if title else 1))
    out = Path(path)
    fig.savefig(out, dpi=110, format="png")
    return out
