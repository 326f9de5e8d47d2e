"""Paper 001's training items: a rendition slice, its noise-free ground truth, the rendition's MTF2D and the lung mask.

:class:`MTFPairedSlices` is :class:`~ctharmonize.datasets.PairedSlices` with ``target="ground_truth"``
plus the harmonizer's conditioning input (the 64 × 64 MTF2D of the input's kernel, see
:mod:`ctharmonize.simulation.mtf2d`) and the paper's augmentations, all MONAI dictionary transforms
seeded from torch's global RNG (:func:`~ctharmonize.datasets.slice_sampling.apply_seeded`):

1. set 1, identical for input, target and masks (one draw per item for all keys): ``RandFlipd`` along
   each axis, ``RandAffined`` (rotation, translation, scale, shear; bilinear for images, nearest for masks);
2. set 2, the input only: ``RandShiftIntensityd`` (brightness), ``RandScaleIntensityFixedMeand``
   (contrast about the slice mean), ``RandGaussianNoised``; then clipped to [-1, 1];
3. the MTF2D: ``RandGaussianNoised`` then ``ThresholdIntensityd`` (no negative MTF).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.transforms import (
    Compose,
    RandAffined,
    RandFlipd,
    RandGaussianNoised,
    RandScaleIntensityFixedMeand,
    RandShiftIntensityd,
    ThresholdIntensityd,
)

from ctharmonize.datasets.paired_slices import PairedSlices
from ctharmonize.datasets.prepared_volume import PreparedVolume
from ctharmonize.datasets.slice_sampling import apply_seeded, load_entries
from ctharmonize.datasets.tissue_labels import file_key
from ctharmonize.domains.reference import TRUTH_DOMAIN
from ctharmonize.errors import ConfigError, InputError
from ctharmonize.simulation.mtf2d import MTF2D_SIZE, kernel_mtf2d

__all__ = ["MTF_SOURCES", "MTFPairedSlices", "check_subject_splits"]

#: where an item's MTF2D comes from: the kernel's design MTF, or measured at the skin–air edge per volume
MTF_SOURCES = ("design", "measured")

_SPATIAL = ("source", "target", "lung", "fov")


def check_subject_splits(entries: Sequence[Mapping[str, Any]], where: Path | None = None) -> None:
    """:class:`ConfigError` when a subject (``subject``, else ``pair_id``) has entries in two splits
    (paper 001 splits by phantom: every rendition of a phantom, and its ground truth, in one split)."""
    splits: dict[str, set[str]] = {}
    for e in entries:
        subject = e.get("subject", e.get("pair_id"))
        if subject is not None:
            splits.setdefault(str(subject), set()).add(str(e.get("split")))
    mixed = {s: sorted(v) for s, v in splits.items() if len(v) > 1}
    if mixed:
        raise ConfigError(where, f"subjects in more than one split (split by phantom, never by slice): {mixed}")


class MTFPairedSlices(PairedSlices):
    """Torch dataset of paper 001: item ``i`` is one slice of one rendition with its ground truth and MTF2D.

    Item (fixed keys, batchable across kernels):

    * ``source``: float32 (1, h, w) input I_nh in [-1, 1] (HU (−1024, 3072) → [-1, 1], i.e. the paper's
      ``(HU − 1024)/2048``), after both augmentation sets;
    * ``target``: float32 (1, h, w) ground truth I_r in [-1, 1] (set 1 only);
    * ``lung``: bool (1, h, w) GT lung mask (set 1 only); ``fov``: bool (1, h, w) pair FOV (False where
      the affine padded);
    * ``mtf2d``: float32 (1, 64, 64) MTF2D of the input (unitless, 1 at DC at (32, 32), fftshift-centred
      over [−Nyquist, Nyquist) of the slice's own spacing; lp/cm axes, :func:`kernel_mtf2d`), MTF noise added;
    * ``kernel`` (= ``source_domain``), ``target_domain``, ``pair_id``, ``slice_index`` as :class:`PairedSlices`.

    ``(h, w)`` = ``roi_size`` (random native-resolution crop, one window for all arrays) or the whole
    slice (``roi_size=None``). The split is the datalist's (``split``); a subject in two splits is an error
    (:func:`check_subject_splits`), so slices of one phantom never leak across splits.

    Args:
        datalist: datalist path or entries with ``image``, ``kernel``, ``ground_truth``, ``lung``
            (or tissue ``labels``), ``subject``, ``split`` (e.g. ``ctharmonize simulate --preset force_family``).
        kernels: input kernel domains (None: every kernel of the split that has a ground truth).
        split: datalist split (None: all entries).
        roi_size: (h, w) crop in pixels or None.
        mtf_source: ``"design"`` (default, fast: the simulator kernel's design MTF, :func:`kernel_mtf2d`)
            or ``"measured"`` (:func:`ctharmonize.physics.skin_air_mtf` on the input volume, once per
            volume; cached in memory and, with ``mtf_cache_dir``, as ``.npy`` files).
        measure_kwargs: extra :func:`skin_air_mtf` arguments.
        augment: apply the augmentations (False e.g. for validation).
        flip_prob: probability of a flip along each in-plane axis.
        affine_prob, rotate_deg, translate, scale, shear_deg: ``RandAffined`` probability, rotation ±deg,
            translation ± fraction of (h, w), scale 1 ± scale per axis (keep it small: scaling changes the
            true MTF and the MTF2D is not rescaled), shear ± deg.
        noise_std, noise_prob: input Gaussian noise SD ([-1, 1] units; 0.01 ≈ 20 HU) and probability.
        brightness, contrast, jitter_prob: input shift ±brightness, contrast 1 ± contrast about the mean,
            each with probability ``jitter_prob`` (the paper's "color jitter").
        mtf_noise_std, mtf_noise_prob: Gaussian noise SD added to the MTF2D and its probability.
        hu_min, hu_max, lung_only_fraction, cache_dir, circular_fov: as :class:`PairedSlices`.
    """

    def __init__(
        self,
        datalist: str | os.PathLike | Sequence[Mapping[str, Any]],
        kernels: str | Sequence[str] | None = None,
        split: str | None = "train",
        roi_size: Sequence[int] | int | None = None,
        mtf_source: str = "design",
        measure_kwargs: Mapping[str, Any] | None = None,
        mtf_cache_dir: str | os.PathLike | None = None,
        augment: bool = True,
        flip_prob: float = 0.5,
        affine_prob: float = 0.5,
        rotate_deg: float = 15.0,
        translate: float = 0.1,
        scale: float = 0.05,
        shear_deg: float = 5.0,
        noise_std: float = 0.01,
        noise_prob: float = 0.5,
        brightness: float = 0.05,
        contrast: float = 0.1,
        jitter_prob: float = 0.5,
        mtf_noise_std: float = 0.02,
        mtf_noise_prob: float = 0.5,
        hu_min: float = -1024.0,
        hu_max: float = 3072.0,
        lung_only_fraction: float | None = None,
        cache_dir: str | os.PathLike | None = None,
        circular_fov: bool = True,
    ):
        entries, where = load_entries(datalist)
        if mtf_source not in MTF_SOURCES:
            raise ConfigError(where, f"mtf_source must be one of {', '.join(MTF_SOURCES)}, got {mtf_source!r}")
        check_subject_splits(entries, where)
        if kernels is None:
            kernels = sorted({str(e["kernel"]) for e in entries if (split is None or e.get("split") == split)
                              and e.get("kernel") and e.get(TRUTH_DOMAIN)})
            if not kernels:
                raise ConfigError(where, f"no entry of split {split!r} has a kernel and a {TRUTH_DOMAIN!r} volume")
        super().__init__(entries, source=kernels, target=TRUTH_DOMAIN, split=split, hu_min=hu_min, hu_max=hu_max,
                         roi_size=roi_size, lung_only_fraction=lung_only_fraction, tissue_labels=None,
                         cache_dir=cache_dir, circular_fov=circular_fov)
        no_lung = [p.source.path for p in self.pairs if p.source.lung is None]
        if no_lung:
            raise ConfigError(where, f"entries without a 'lung' mask or tissue labels (the texture loss needs "
                                     f"one): {', '.join(no_lung[:3])}")
        self.hu_range = (float(hu_min), float(hu_max))
        self.mtf_source = mtf_source
        self.measure_kwargs = dict(measure_kwargs or {})
        self.mtf_cache_dir = None if mtf_cache_dir is None else Path(mtf_cache_dir)
        self._mtf_cache: dict[str, np.ndarray] = {}
        self.mtf2d = [self._volume_mtf2d(p.source) for p in self.pairs]
        size = self.roi_size or tuple(self.pairs[0].source.image.shape[1:])
        self.augment = bool(augment)
        self._geometric = Compose([
            RandFlipd(list(_SPATIAL), prob=flip_prob, spatial_axis=0),
            RandFlipd(list(_SPATIAL), prob=flip_prob, spatial_axis=1),
            RandAffined(list(_SPATIAL), prob=affine_prob, rotate_range=(math.radians(rotate_deg),),
                        translate_range=(translate * size[0], translate * size[1]), scale_range=(scale, scale),
                        shear_range=(math.tan(math.radians(shear_deg)),) * 2,
                        mode=("bilinear", "bilinear", "nearest", "nearest"),
                        padding_mode=("border", "border", "zeros", "zeros")),
        ])
        self._input_only = Compose([
            RandShiftIntensityd("source", offsets=brightness, prob=jitter_prob),
            RandScaleIntensityFixedMeand("source", factors=contrast, prob=jitter_prob, fixed_mean=True),
            RandGaussianNoised("source", prob=noise_prob, std=noise_std, sample_std=False),
        ])
        self._mtf_noise = Compose([
            RandGaussianNoised("mtf2d", prob=mtf_noise_prob, std=mtf_noise_std, sample_std=False),
            ThresholdIntensityd("mtf2d", threshold=0.0, above=True, cval=0.0),
        ])

    # ------------------------------------------------------------------ MTF2D
    def _volume_mtf2d(self, volume: PreparedVolume) -> np.ndarray:
        """(64, 64) float32 MTF2D of one input volume (design or measured, see ``mtf_source``)."""
        sx, sy = float(volume.spacing[0]), float(volume.spacing[1])
        if self.mtf_source == "design":
            return kernel_mtf2d(volume.kernel, (sy, sx))
        if volume.path in self._mtf_cache:
            return self._mtf_cache[volume.path]
        cached = None
        if self.mtf_cache_dir is not None:
            cached = self.mtf_cache_dir / f"mtf2d_{file_key(volume.path, self.hu_range, sorted(self.measure_kwargs.items()))}.npy"
            if cached.is_file():
                self._mtf_cache[volume.path] = np.load(cached)
                return self._mtf_cache[volume.path]
        lo, hi = self.hu_range
        hu = np.asarray(volume.image, dtype=np.float32) * ((hi - lo) / 2.0) + (hi + lo) / 2.0
        from ctharmonize.physics import skin_air_mtf

        try:
            measured = skin_air_mtf(hu, volume.spacing, fov_mask=np.asarray(volume.fov), **self.measure_kwargs)
        except InputError as err:
            raise InputError(volume.path, f"cannot measure the input's MTF (mtf_source='measured'): {err}; "
                                          "use mtf_source='design'") from err
        mtf = np.asarray(measured.mtf2d(MTF2D_SIZE), dtype=np.float32)
        self._mtf_cache[volume.path] = mtf
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            np.save(cached, mtf)
        return mtf

    # ------------------------------------------------------------------ items
    def __getitem__(self, index: int) -> dict[str, Any]:
        item = super().__getitem__(index)  # crop drawn here (torch's global RNG)
        v = int(self.slices[int(index)][0])
        item["mtf2d"] = torch.from_numpy(np.array(self.mtf2d[v], dtype=np.float32))[None]
        item["kernel"] = item["source_domain"]
        item["lung"] = item["lung"].float()
        item["fov"] = item["fov"].float()
        if self.augment:
            item = apply_seeded(self._geometric, item)
            item = apply_seeded(self._input_only, item)
            item = apply_seeded(self._mtf_noise, item)
        for key in ("source", "target", "mtf2d", "lung", "fov"):
            value = item[key]
            item[key] = (value.as_tensor() if hasattr(value, "as_tensor") else torch.as_tensor(value)).float()
        item["source"] = item["source"].clamp(-1.0, 1.0)
        item["target"] = item["target"].clamp(-1.0, 1.0)
        item["lung"] = item["lung"] > 0.5
        item["fov"] = item["fov"] > 0.5
        return item
