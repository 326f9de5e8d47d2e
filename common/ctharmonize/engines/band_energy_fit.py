"""Fit the per-domain band energies of a :class:`~ctharmonize.networks.BandEnergyNormalizer` from a datalist.

No GAN and no optimisation: for every training scan of a domain, each axial slice (HU clipped to the
window and scaled to **[-1, 1]**) is decomposed into the normalizer's bands, and the squares of the
band values inside a reference region are summed. A domain's band energy is the root of the mean
over all its region voxels (pooled over scans, so every voxel weighs the same):

    E[d, k] = sqrt( sum over scans, slices and region voxels of band_k^2 / number of region voxels )

(``statistic="rms"``, the energy of Gallardo-Estrella et al.). ``statistic="mad"`` uses instead the
robust scale 1.4826 * median |band_k - median(band_k)| of the same pooled voxels (two passes over the
data, medians from 2^16-bin histograms over [-2, 2], resolution 6.1e-5, i.e. 0.125 HU with the
[-1024, 3072] window): sparse large band values at vessels, fissures and the lung's edge then do not set the gain,
the parenchyma's noise texture does (it is what LAA-950 and Perc15 measure).

Reference regions (``region``):

* ``"lung"`` (this function's default): the datalist entry's ``lung`` mask (> 0), else the threshold lung
  segmentation of the scan; where LAA-950 and Perc15 are measured, best for paths within a vendor, but
  the lung's texture differs between training populations and leaks into cross-vendor gains;
* ``"soft_tissue"``: body voxels whose HU, smoothed by a Gaussian of 2 pixels, lies in [-200, 200] (fat,
  muscle, organs): nearly homogeneous tissue whose band values are mostly noise, so the statistics
  depend on the kernel and the scanner much more than on the subjects' lungs (emphysema, vessels); the
  kernel-normalization bundle's choice (its model card: selected on validation subjects, paired and
  cross-vendor paths);
* ``"body"``: the threshold body mask (lungs and mediastinum included) inside the FOV;
* ``"fov"``: the whole reconstructed field of view.

Each region is restricted to the FOV, optionally eroded in-plane by ``erode`` pixels (away from the
region's edge, e.g. the chest wall), and to slices with at least ``min_region_voxels`` voxels.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import ndimage
from tqdm import tqdm

from ctharmonize.errors import ConfigError, DatalistError
from ctharmonize.io.atomic import atomic_path, check_writable
from ctharmonize.transforms import HU_MAX, HU_MIN, hu_to_unit

__all__ = ["REFERENCE_REGIONS", "STATISTICS", "fit_band_energies", "reference_region"]

REFERENCE_REGIONS = ("lung", "soft_tissue", "body", "fov")
SOFT_TISSUE_HU = (-200.0, 200.0)  # smoothed HU of the soft_tissue region
STATISTICS = ("rms", "mad")
_HIST_BINS = 2**16
_HIST_RANGE = 2.0  # band values in [-1, 1] units lie within [-2, 2]
_MAD_SCALE = 1.482602218505602  # 1 / Phi^-1(3/4): MAD -> standard deviation for Gaussian noise


def reference_region(volume, region: str = "lung", lung: np.ndarray | None = None, erode: int = 0) -> np.ndarray:
    """Bool (Z, Y, X) reference region of ``volume`` (a :class:`~ctharmonize.io.Volume` in HU).

    Args:
        volume: the scan; its ``fov_mask`` restricts the region.
        region: ``"lung"``, ``"soft_tissue"``, ``"body"`` or ``"fov"`` (module docstring).
        lung: lung mask of the same grid (> 0 = lung); None: segmented from the scan (threshold backend).
        erode: in-plane erosion of the region, pixels (0: none).
    """
    if region not in REFERENCE_REGIONS:
        raise ConfigError(None, f"unknown reference region {region!r}; choose from {', '.join(REFERENCE_REGIONS)}")
    fov = np.ones(volume.shape, bool) if volume.fov_mask is None else np.asarray(volume.fov_mask, bool)
    if region == "fov":
        mask = fov.copy()
    elif region == "lung":
        if lung is None:
            from ctharmonize.segmentation import segment_lungs

            lung = segment_lungs(volume, backend="threshold")
        mask = (np.asarray(lung) > 0) & fov
    else:
        from ctharmonize.segmentation.body_mask import body_mask, smooth_hu

        mask = body_mask(smooth_hu(volume.array, fov=fov), volume.spacing) & fov
        if region == "soft_tissue":
            smooth = smooth_hu(volume.array, sigma=2.0, fov=fov)
            mask &= (smooth > SOFT_TISSUE_HU[0]) & (smooth < SOFT_TISSUE_HU[1])
    if erode > 0:
        mask = ndimage.binary_erosion(mask, structure=np.ones((1, 3, 3), bool), iterations=int(erode))
    return mask


def _read_lung(entry: Mapping[str, Any], shape: tuple[int, ...]) -> np.ndarray | None:
    from ctharmonize.io import read_volume

    if not entry.get("lung"):
        return None
    lung = read_volume(entry["lung"]).array
    if tuple(lung.shape) != tuple(shape):
        raise DatalistError(entry["lung"], f"lung mask shape {tuple(lung.shape)} differs from its image {tuple(shape)}")
    return lung


def _histogram(values: torch.Tensor, low: float, high: float) -> np.ndarray:
    """(N, C) values -> (C, _HIST_BINS) float64 counts over [low, high] (values outside go to the edge bins)."""
    v = values.clamp(low, high)
    return np.stack([torch.histc(v[:, c], bins=_HIST_BINS, min=low, max=high).double().numpy()
                     for c in range(v.shape[1])])


def _histogram_median(counts: np.ndarray, low: float, high: float) -> np.ndarray:
    """Medians (linear within the bin) of (..., _HIST_BINS) histograms over [low, high]."""
    width = (high - low) / counts.shape[-1]
    cum = np.cumsum(counts, axis=-1)
    half = cum[..., -1:] / 2.0
    i = np.minimum((cum < half).sum(axis=-1, keepdims=True), counts.shape[-1] - 1)
    before = np.take_along_axis(cum, i, -1) - np.take_along_axis(counts, i, -1)
    inside = np.maximum(np.take_along_axis(counts, i, -1), 1e-300)
    return (low + (i + (half - before) / inside) * width)[..., 0]


def fit_band_energies(
    network: torch.nn.Module,
    datalist: str | os.PathLike | Sequence[Mapping[str, Any]],
    split: str | None = "train",
    *,
    region: str = "lung",
    statistic: str = "rms",
    erode: int = 0,
    min_region_voxels: int = 64,
    hu_min: float = HU_MIN,
    hu_max: float = HU_MAX,
    spacing_tolerance: float = 0.1,
    batch_size: int = 8,
    out_path: str | os.PathLike | None = None,
    summary_path: str | os.PathLike | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Fit ``network``'s buffers (``band_energy``, ``pixel_spacing``, ``voxel_count``) in place.

    Args:
        network: a :class:`~ctharmonize.networks.BandEnergyNormalizer` (its ``domains`` and ``sigmas``).
        datalist: datalist JSON path or loaded entries; entries need ``image`` and ``kernel`` (a domain
            of ``network``; entries of other kernels are skipped and counted), ``lung`` optional.
        split: the split to fit on (None or "all": every entry).
        region, erode, min_region_voxels: the reference region (module docstring).
        statistic: ``"rms"`` (energy) or ``"mad"`` (robust scale), see the module docstring.
        hu_min, hu_max: the HU window of [-1, 1] (as inference).
        spacing_tolerance: refuse a scan whose in-plane spacing differs from its domain's first fitted
            scan by more than this (relative): the energies are per-pixel statistics.
        batch_size: slices per decomposition.
        out_path: write ``network.state_dict()`` there (``torch.save``, atomic); refused if it exists
            unless ``overwrite``.
        summary_path: also write the returned summary there as JSON (same rules).
        overwrite: replace earlier outputs of ctharmonize at ``out_path`` / ``summary_path``.
        progress: tqdm bar over scans.

    Returns:
        summary: settings, and per domain ``scans``, ``voxels``, ``pixel_spacing_mm``, ``band_energy``
        ([-1, 1] units; the chosen statistic of each band and of the residual) and ``band_energy_hu``.

    Raises:
        DatalistError: no entries, or a domain of ``network`` without any training scan.
        ConfigError: bad settings, or a scan of another spacing than its domain's.
    """
    from ctharmonize.data import datalist_entries
    from ctharmonize.io import read_volume

    if region not in REFERENCE_REGIONS:
        raise ConfigError(None, f"unknown reference region {region!r}; choose from {', '.join(REFERENCE_REGIONS)}")
    if statistic not in STATISTICS:
        raise ConfigError(None, f"unknown band statistic {statistic!r}; choose from {', '.join(STATISTICS)}")
    for path in (out_path, summary_path):
        if path is not None:
            check_writable(path, overwrite)
    entries, source = datalist_entries(datalist, split)
    domains = tuple(network.domains)
    jobs = [e for e in entries if e.get("kernel") in domains]
    if not jobs:
        raise DatalistError(source, f"no entries of the domains {', '.join(domains)} in split {split!r}")
    missing = [d for d in domains if not any(e.get("kernel") == d for e in jobs)]
    if missing:
        raise DatalistError(source, f"split {split!r} has no scans of {', '.join(missing)}: every domain of the "
                                    "normalizer needs its own band energies")
    n_bands = network.n_bands + 1
    device = network.band_energy.device
    spacings: dict[str, list[tuple[float, float]]] = {d: [] for d in domains}

    def region_bands(desc: str):
        """Yield (domain index, (N, K + 1) float64 band values of the region voxels) per slice batch."""
        for entry in tqdm(jobs, desc=desc, unit="scan", disable=not progress):
            volume = read_volume(entry["image"])
            if desc == "band energies":  # the first pass checks and records the spacing
                spacing = (float(volume.spacing[0]), float(volume.spacing[1]))
                first = spacings[entry["kernel"]][0] if spacings[entry["kernel"]] else spacing
                if any(abs(a - b) > spacing_tolerance * b for a, b in zip(spacing, first, strict=True)):
                    raise ConfigError(entry["image"], f"in-plane spacing {spacing[0]:.4g} x {spacing[1]:.4g} mm differs "
                                                      f"from the other {entry['kernel']} scans' {first[0]:.4g} x "
                                                      f"{first[1]:.4g} mm: fit one spacing at a time (resample first)")
                spacings[entry["kernel"]].append(spacing)
            lung = _read_lung(entry, volume.shape) if region == "lung" else None
            mask = reference_region(volume, region, lung, erode)
            keep = np.nonzero(mask.reshape(mask.shape[0], -1).sum(1) >= int(min_region_voxels))[0]
            for start in range(0, keep.size, int(batch_size)):
                idx = keep[start:start + int(batch_size)]
                x = hu_to_unit(torch.from_numpy(np.ascontiguousarray(volume.array[idx])), hu_min, hu_max)
                bands = network.decompose(x.unsqueeze(1).to(device)).double().permute(0, 2, 3, 1)
                yield domains.index(entry["kernel"]), bands[torch.from_numpy(mask[idx]).to(device)].cpu()

    sums = np.zeros((len(domains), n_bands), np.float64)
    counts = np.zeros(len(domains), np.float64)
    hist = np.zeros((len(domains), n_bands, _HIST_BINS), np.float64) if statistic == "mad" else None
    with torch.no_grad():
        for d, values in region_bands("band energies"):
            sums[d] += values.square().sum(0).numpy()
            counts[d] += values.shape[0]
            if hist is not None:
                hist[d] += _histogram(values, -_HIST_RANGE, _HIST_RANGE)
    empty = [domains[i] for i in range(len(domains)) if counts[i] == 0]
    if empty:
        raise DatalistError(source, f"no {region} reference-region voxels in the scans of {', '.join(empty)}")
    energy = np.sqrt(sums / counts[:, None])
    if hist is not None:
        median = _histogram_median(hist, -_HIST_RANGE, _HIST_RANGE)
        hist[:] = 0.0
        with torch.no_grad():
            for d, values in region_bands("band deviations"):
                hist[d] += _histogram((values - torch.from_numpy(median[d])).abs(), 0.0, _HIST_RANGE)
        energy = _MAD_SCALE * _histogram_median(hist, 0.0, _HIST_RANGE)
    mean_spacing = np.array([np.mean(spacings[d], axis=0) for d in domains], np.float64)
    network.band_energy.copy_(torch.from_numpy(energy))
    network.pixel_spacing.copy_(torch.from_numpy(mean_spacing))
    network.voxel_count.copy_(torch.from_numpy(counts))
    scale = (float(hu_max) - float(hu_min)) / 2.0
    summary = {
        "method": "band-energy normalization (Gallardo-Estrella et al. 2016), fixed per-domain gains",
        "datalist": None if source is None else os.fspath(source), "split": split,
        "region": region, "statistic": statistic, "erode": int(erode), "min_region_voxels": int(min_region_voxels),
        "hu_window": [float(hu_min), float(hu_max)], "sigmas_px": network.sigmas.tolist(),
        "skipped_entries": len(entries) - len(jobs),
        "domains": {
            name: {"scans": len(spacings[name]), "voxels": int(counts[i]),
                   "pixel_spacing_mm": mean_spacing[i].round(6).tolist(),
                   "band_energy": energy[i].round(8).tolist(),
                   "band_energy_hu": (energy[i] * scale).round(4).tolist()}
            for i, name in enumerate(domains)
        },
    }
    if out_path is not None:
        with atomic_path(out_path, overwrite=overwrite, record=True) as tmp:
            torch.save({k: v.cpu() for k, v in network.state_dict().items()}, tmp)
    if summary_path is not None:
        with atomic_path(summary_path, overwrite=overwrite, record=True) as tmp:
            Path(tmp).write_text(json.dumps(summary, indent=1) + "\n")
    return summary
