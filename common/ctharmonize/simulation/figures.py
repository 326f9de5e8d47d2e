"""Validation figures and the LAA-950 table of docs/simulation.md.

    python -m ctharmonize.simulation.figures docs/figures
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from ctharmonize.simulation.analysis import disk_phantom, edge_mtf, laa950, noise_power_spectrum
from ctharmonize.simulation.kernels import KERNELS
from ctharmonize.simulation.phantom import Phantom, generate_phantom
from ctharmonize.simulation.scan import simulate_scan
from ctharmonize.simulation.vendors import VENDORS

__all__ = ["make_figures"]

_PAIRS = [("siemens", "siemens_b30f"), ("siemens", "siemens_b50f"), ("ge", "ge_standard"), ("ge", "ge_bone")]


def _uniform(hu: np.ndarray, dx: float) -> Phantom:
    z = np.zeros(hu.shape, np.uint8)
    return Phantom(hu.astype(np.float32), z, z, (dx, dx, 2.5), (0.0, 0.0, 0.0), np.eye(3), 0.0, 0)


def make_figures(out_dir: str | Path = "docs/figures", size: int = 256, subjects: int = 3) -> str:
    """Write simulation_panel.png, simulation_mtf.png, simulation_nps.png; return the LAA table (markdown)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # image panel: ground truth, then soft and sharp of each vendor (lung window W1500/L-600)
    ph = generate_phantom(seed=7, size=size, slices=3, emphysema_fraction=0.15)
    imgs = [("ground truth", ph.hu[1])]
    for vendor in ("siemens", "ge"):
        vols = simulate_scan(ph, vendor, seed=1)
        imgs += [(f"{vendor} {vols[k].header.kernel}", vols[k].array[1]) for k in VENDORS[vendor].kernels]
    fig, axes = plt.subplots(1, 5, figsize=(20, 4.4))
    for ax, (title, im) in zip(axes, imgs, strict=True):
        ax.imshow(im, cmap="gray", vmin=-1350, vmax=150)
        ax.set_title(title)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(out / "simulation_panel.png", dpi=80)
    plt.close(fig)

    # MTF (circular edge, noise-free) and NPS (water cylinder, 40 mAs)
    dx, radius = 0.4, 16.0
    edge = _uniform(disk_phantom(128, dx, radius, 0.0, -1000.0)[None], dx)
    cyl_dx = 1.0
    cyl = _uniform(np.repeat(disk_phantom(256, cyl_dx, 110.0, 0.0, -1000.0)[None], 4, axis=0), cyl_dx)
    fig1, ax1 = plt.subplots(figsize=(6, 4.5))
    fig2, ax2 = plt.subplots(figsize=(6, 4.5))
    for vendor in ("siemens", "ge"):
        clean = simulate_scan(edge, vendor, noise=False)
        noisy = simulate_scan(cyl, vendor, mas=40.0, seed=3)
        truth = simulate_scan(cyl, vendor, noise=False)
        for name, vol in clean.items():
            f, mtf = edge_mtf(vol.array, dx, radius)
            keep = f <= 12
            ax1.plot(f[keep], mtf[keep], label=f"{name} (design MTF50 {KERNELS[name].design_mtf50:.1f})")
            fn, nps = noise_power_spectrum(noisy[name].array - truth[name].array, cyl_dx, roi=64)
            ax2.plot(fn, nps, label=name)
    ax1.axhline(0.5, color="gray", lw=0.5)
    ax1.set(xlabel="lp/cm", ylabel="MTF", title="Measured MTF (circular edge)")
    ax1.legend(fontsize=8)
    ax2.set(xlabel="lp/cm", ylabel="NPS (HU² mm²)", title="NPS, water cylinder 22 cm, 40 mAs")
    ax2.legend(fontsize=8)
    for fig, name in ((fig1, "simulation_mtf.png"), (fig2, "simulation_nps.png")):
        fig.tight_layout()
        fig.savefig(out / name, dpi=80)
        plt.close(fig)

    # LAA-950 table
    rows = ["| subject | target emphysema | truth LAA-950 | B30f | B50f | STANDARD | BONE |", "|---|---|---|---|---|---|---|"]
    for s in range(subjects):
        ph = generate_phantom(seed=100 + s, size=size, slices=4)
        vals = []
        for vendor in ("siemens", "ge"):
            vols = simulate_scan(ph, vendor, seed=s)
            vals += [laa950(vols[k].array, ph.lung) for k in VENDORS[vendor].kernels]
        rows.append(f"| {100 + s} | {100 * ph.emphysema_fraction:.1f}% | {ph.true_laa950():.1f}% | "
                    + " | ".join(f"{v:.1f}%" for v in vals) + " |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(make_figures(*(sys.argv[1:2] or ["docs/figures"])))
