"""How far the best linear filter gets from a vendor's sharp kernel to its soft kernel (docs/simulation.md).

Simulates paired subjects at the ``clinical`` preset (512², per-subject FOV / dose / thickness /
patient size, the same draws as ``generate_dataset(preset="clinical", seed=SEED)``), each with the
vendor processing off (plain FBP) and on (strength 1; same noise realisation), fits the radial
least-squares filter H(|f|) sharp -> soft on the first ``--fit`` subjects' paired slices and reports
on the others: the image residual RMSE (HU, inside the FOV) relative to the initial sharp - soft
difference, and the paired LAA-950 RMSE cut; each without and with both images clipped at -1024 HU
(a network's input window) before fitting and evaluating.

    OMP_NUM_THREADS=2 python docs/notes/simulation/linear_residual.py [--subjects 5 --slices 6 --fit 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from ctharmonize.simulation import VENDORS, generate_phantom, simulate_scan
from ctharmonize.simulation.analysis import laa950
from ctharmonize.simulation.dataset import PRESETS, draw_acquisition

PAIRS = {"siemens": ("siemens_b50f", "siemens_b30f"), "ge": ("ge_bone", "ge_standard")}
BIN_LPCM = 0.2  # radial frequency bin (lp/cm)


def radial_bins(n: int, dx: float, frequency: str) -> np.ndarray:
    """Bin index of every FFT pixel: physical |f| in 0.2 lp/cm bins, or 64 bins of |f| in cycles/pixel."""
    if frequency == "pixel":
        f = np.fft.fftfreq(n)
        r = np.hypot(f[:, None], f[None, :])
        return np.minimum((r / (np.sqrt(2) * 0.5) * 64).astype(int), 63)
    f = np.fft.fftfreq(n, d=dx) * 10.0
    return (np.hypot(f[:, None], f[None, :]) / BIN_LPCM).astype(int)


def fit_filter(pairs: list[tuple[np.ndarray, np.ndarray, np.ndarray]], nb: int = 128) -> np.ndarray:
    """Least-squares H per radial bin from (sharp, soft, bins) pairs; empty bins interpolated."""
    num, den = np.zeros(nb), np.zeros(nb)
    for x, y, b in pairs:
        X, Y = np.fft.fft2(x - x.mean()), np.fft.fft2(y - y.mean())
        num += np.bincount(b.ravel(), (np.conj(X) * Y).real.sum(0).ravel(), nb)[:nb]
        den += np.bincount(b.ravel(), (np.abs(X) ** 2).sum(0).ravel(), nb)[:nb]
    ok = den > 0
    return np.interp(np.arange(nb), np.nonzero(ok)[0], num[ok] / den[ok])


def apply_filter(h: np.ndarray, x: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``x`` filtered with the radial response ``h`` (mean kept)."""
    m = x.mean()
    return np.fft.ifft2(np.fft.fft2(x - m) * h[np.minimum(b, h.size - 1)]).real + m


def simulate(vendor: str, subjects: int, slices: int, seed: int, size: int, vary: bool = True) -> list[dict]:
    """Paired sharp/soft volumes per subject, processing off (0) and on (1); ``vary`` False = vendor defaults."""
    spec, vi = VENDORS[vendor], list(VENDORS).index(vendor)
    out = []
    for i in range(subjects):
        ph_seed = int(np.random.SeedSequence([seed, vi, i]).generate_state(1)[0] % (2**31))
        acq = draw_acquisition(spec, np.random.default_rng([seed, vi, i, 1]) if vary else None)
        ph = generate_phantom(ph_seed, size=size, slices=slices, fov_mm=acq.fov_mm, fov_center_mm=acq.fov_center_mm,
                              slice_thickness=acq.slice_thickness_mm, body_scale=acq.body_scale)
        item = {"lung": ph.lung > 0, "dx": float(ph.spacing[0]), "acq": acq}
        for strength in (0.0, 1.0):
            vols = simulate_scan(ph, vendor, mas=acq.mas, seed=seed * 7919 + i, ir_strength=strength,
                                 edge_strength=strength)
            item[strength] = tuple(vols[k].array.astype(np.float64) for k in PAIRS[vendor])
            item["fov"] = vols[PAIRS[vendor][0]].fov_mask
        out.append(item)
    return out


def evaluate(data: list[dict], strength: float, n_fit: int, clip: float | None, frequency: str) -> dict:
    """Fit on ``data[:n_fit]``, evaluate on the rest; residuals (HU) and the LAA-950 RMSE cut."""
    def pair(d: dict) -> tuple[np.ndarray, np.ndarray]:
        x, y = d[strength]
        return (x, y) if clip is None else (np.clip(x, clip, None), np.clip(y, clip, None))

    def bins(d: dict) -> np.ndarray:
        return radial_bins(d["fov"].shape[-1], d["dx"], frequency)

    h = fit_filter([(*pair(d), bins(d)) for d in data[:n_fit]])
    init, resid, laa_before, laa_after = [], [], [], []
    for d in data[n_fit:]:
        x, y = pair(d)
        o = apply_filter(h, x, bins(d))
        fov, lung = d["fov"], d["lung"]
        init.append(np.sqrt(np.mean((x - y)[fov] ** 2)))
        resid.append(np.sqrt(np.mean((o - y)[fov] ** 2)))
        laa_before.append(laa950(x, lung) - laa950(y, lung))
        laa_after.append(laa950(o, lung) - laa950(y, lung))
    rb, ra = np.sqrt(np.mean(np.square(laa_before))), np.sqrt(np.mean(np.square(laa_after)))
    return {"initial_hu": float(np.mean(init)), "residual_hu": float(np.mean(resid)),
            "ratio": float(np.mean(np.divide(resid, init))), "laa_rmse_before": float(rb),
            "laa_rmse_after": float(ra), "laa_cut": float(1.0 - ra / rb)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=5, help="subjects per vendor")
    parser.add_argument("--slices", type=int, default=6)
    parser.add_argument("--fit", type=int, default=2, help="subjects to fit the filter on (the rest: test)")
    parser.add_argument("--size", type=int, default=PRESETS["clinical"]["size"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--frequency", choices=("physical", "pixel"), default="physical",
                        help="bin the filter by |f| in lp/cm (pixel sizes vary) or in cycles/pixel")
    parser.add_argument("--defaults", action="store_true",
                        help="every subject at the vendor's default FOV, mAs and thickness (no per-subject draw)")
    args = parser.parse_args()
    print(f"clinical preset{' at vendor defaults' if args.defaults else ''}, {args.size}², {args.slices} slices, {args.subjects} subjects per vendor "
          f"(fit {args.fit}, test {args.subjects - args.fit}), seed {args.seed}, filter over {args.frequency} |f|")
    print("| vendor | processing | clip | sharp - soft (HU) | residual (HU) | residual / initial "
          "| LAA-950 RMSE before -> after (points) | LAA cut |")
    print("|---|---|---|---|---|---|---|---|")
    for vendor in PAIRS:
        t0 = time.perf_counter()
        data = simulate(vendor, args.subjects, args.slices, args.seed, args.size, vary=not args.defaults)
        for strength in (0.0, 1.0):
            for clip in (None, -1024.0):
                r = evaluate(data, strength, args.fit, clip, args.frequency)
                print(f"| {vendor} | {'FBP' if strength == 0 else VENDORS[vendor].processing.ir_label} "
                      f"| {'none' if clip is None else '-1024'} | {r['initial_hu']:.1f} | {r['residual_hu']:.1f} "
                      f"| {r['ratio']:.3f} | {r['laa_rmse_before']:.2f} -> {r['laa_rmse_after']:.2f} "
                      f"| {100 * r['laa_cut']:.0f} % |")
        acq = ", ".join(f"{d['acq'].fov_mm:.0f} mm/{d['acq'].mas:.0f} mAs/{d['acq'].slice_thickness_mm:g} mm"
                        for d in data)
        print(f"<!-- {vendor}: {acq}; {time.perf_counter() - t0:.0f} s -->")


if __name__ == "__main__":
    main()
