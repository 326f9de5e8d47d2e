"""Pixel-aligned axial slice pairs of one subject: a kernel and another kernel, or a kernel and the
noise-free ground truth (the supervised training data of pix2pix-style methods, e.g. paper 001)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from monai.transforms import Compose
from torch.utils.data import Dataset

from ctharmonize.datasets.prepared_volume import PreparedVolume, prepare_volume
from ctharmonize.datasets.slice_sampling import (
    apply_seeded,
    check_roi_size,
    check_slice_sizes,
    load_entries,
    slice_table,
)
from ctharmonize.datasets.tissue_labels import TISSUE_LABEL_SOURCES
from ctharmonize.domains.reference import TRUTH_DOMAIN
from ctharmonize.errors import ConfigError, DimensionError, InputError
from ctharmonize.transforms import FOVMaskd, RandCrop2Dd

__all__ = ["PairedSlices", "SlicePair"]

"""Target name meaning "the source entry's noise-free ``ground_truth`` volume" (the simulator writes one)."""

_ARRAY_KEYS = ("source", "target", "fov", "lung", "labels")


@dataclass
class SlicePair:
    """Two preprocessed, pixel-aligned volumes of one subject (same shape, spacing and affine)."""

    source: PreparedVolume
    target: PreparedVolume
    source_domain: str
    target_domain: str
    pair_id: str


def _check_geometry(a: PreparedVolume, b: PreparedVolume) -> None:
    """One-line :class:`DimensionError` naming both files unless shape, spacing and affine agree."""
    problems = []
    if a.image.shape != b.image.shape:
        problems.append(f"shape {a.image.shape} vs {b.image.shape}")
    if not np.allclose(a.spacing, b.spacing, rtol=0, atol=1e-4):
        problems.append(f"spacing {tuple(round(s, 4) for s in a.spacing)} vs {tuple(round(s, 4) for s in b.spacing)} mm")
    if not np.allclose(a.affine, b.affine, rtol=0, atol=1e-3):
        problems.append(f"affine (origin {a.affine[:3, 3].round(3).tolist()} vs {b.affine[:3, 3].round(3).tolist()} mm, "
                        f"max difference {float(np.abs(a.affine - b.affine).max()):.3g})")
    if problems:
        raise DimensionError(a.path, f"is not pixel-aligned with {b.path}: {'; '.join(problems)}")


class PairedSlices(Dataset):
    """Torch dataset: each item is ONE axial slice of a subject in the source domain and the SAME slice,
    cropped at the SAME position, in the target domain (paired, pixel-aligned).

    Pairs: every entry of ``split`` whose kernel is one of ``source`` is paired with the entry of the
    same split whose kernel is ``target`` and whose ``pair_key`` value (default ``pair_id``: "entries
    with the same pair_id are pixel-aligned", see ``docs/datalist.md``) is the same. With
    ``target="ground_truth"`` (:data:`~ctharmonize.domains.reference.TRUTH_DOMAIN`) the target is the source entry's own
    ``ground_truth`` volume (the simulator's noise-free HU). Both volumes must have the same shape,
    spacing and affine. A source entry without a partner, or with two, is an error.

    Item ``i`` (a dict with FIXED keys, so that pairs of several source kernels batch together):

    * ``source``, ``target``: float32 (1, H, W) in [-1, 1] (HU clipped to ``[hu_min, hu_max]`` and
      scaled); -1 (i.e. -1024 HU) outside the pair's FOV in BOTH images;
    * ``fov``: bool (1, H, W), the pair's FOV: the source's FOV ∩ the target's (reader masks and the
      inscribed circle, see :func:`~ctharmonize.datasets.prepared_volume.prepare_volume`);
    * ``lung``: bool (1, H, W) source lung mask (entry ``lung`` or tissue codes 1/2; False outside the
      FOV), when known; ``labels``: int64 (1, H, W) source tissue codes (0 outside), when
      ``tissue_labels`` is set;
    * ``source_domain``, ``target_domain``: str (``target_domain`` is ``"ground_truth"`` for the ground
      truth); ``pair_id``: str (the ``pair_key`` value, else the ``subject``); ``slice_index``: int z.

    **Length and sampling.** ``len(dataset)`` is the number of slices of all pairs (only those with
    ``lung_only_fraction`` of source lung, when set); item ``i`` is slice ``i`` in datalist order, so a
    sampler chooses the slices. ``roi_size`` crops one random window, drawn once per item and applied
    to every array of the item (one :class:`~ctharmonize.transforms.RandCrop2Dd` over all keys, seeded
    from torch's global RNG: reproducible under ``torch.manual_seed`` and after a resume). Without
    ``roi_size`` all slices must have one size; there is no size-multiple rule (that is the network's).

    Volumes are read and preprocessed once, in ``__init__`` (:func:`prepare_volume`, optionally cached
    in ``cache_dir``); a ground-truth volume shared by several source kernels is prepared once.

    Args:
        datalist: datalist JSON path, or entries (dicts with absolute paths).
        source: source kernel domain(s).
        target: target kernel domain, or ``"ground_truth"``.
        split: keep entries of this split (None: all entries).
        hu_min, hu_max: HU window mapped to [-1, 1] (both images).
        roi_size: (H, W) random crop (None: whole slices).
        lung_only_fraction: None keeps every slice; a number keeps only slices whose source lung pixels
            are more than 0 and at least this fraction of the slice.
        tissue_labels: source tissue labels (``"datalist"``, ``"threshold"``, ``"totalsegmentator"``) or None.
        pair_key: datalist key that matches a source entry with its target entry.
        cache_dir: cache folder for preprocessed volumes (and computed tissue labels).
        circular_fov: enforce the inscribed circular FOV (paper 000 preprocessing).
        segmentation_kwargs: extra arguments of ``body_composition`` (computed tissue labels).
    """

    def __init__(
        self,
        datalist: str | os.PathLike | Sequence[Mapping[str, Any]],
        source: str | Sequence[str],
        target: str,
        split: str | None = "train",
        hu_min: float = -1024.0,
        hu_max: float = 3072.0,
        roi_size: Sequence[int] | int | None = None,
        lung_only_fraction: float | None = None,
        tissue_labels: str | None = None,
        pair_key: str = "pair_id",
        cache_dir: str | os.PathLike | None = None,
        circular_fov: bool = True,
        segmentation_kwargs: Mapping[str, Any] | None = None,
    ):
        entries, where = load_entries(datalist)
        self.sources = [source] if isinstance(source, str) else [str(s) for s in source]
        self.target = str(target)
        if not self.sources or len(set(self.sources)) != len(self.sources) or self.target in self.sources:
            raise ConfigError(where, f"source must be distinct domain names other than the target {self.target!r}, "
                                     f"got {list(self.sources)}")
        if tissue_labels is not None and tissue_labels not in TISSUE_LABEL_SOURCES:
            raise ConfigError(where, f"tissue_labels must be one of {', '.join(TISSUE_LABEL_SOURCES)} or None, "
                                     f"got {tissue_labels!r}")
        if lung_only_fraction is not None and not 0.0 <= float(lung_only_fraction) <= 1.0:
            raise ConfigError(where, f"lung_only_fraction must be in [0, 1] or None, got {lung_only_fraction}")
        self.roi_size = check_roi_size(roi_size, where)
        prepare = {"hu_min": hu_min, "hu_max": hu_max, "circular_fov": circular_fov, "cache_dir": cache_dir,
                   "segmentation_kwargs": segmentation_kwargs}
        in_split = [e for e in entries if split is None or e.get("split") == split]
        self.pairs: list[SlicePair] = []
        prepared_targets: dict[str, PreparedVolume] = {}
        for entry in in_split:
            if entry.get("kernel") not in self.sources:
                continue
            target_entry = self._partner(entry, in_split, pair_key, split)
            src = prepare_volume(entry, labels_source=tissue_labels, **prepare)
            path = str(target_entry["image"])
            if path not in prepared_targets:
                prepared_targets[path] = prepare_volume(target_entry, labels_source=None, **prepare)
            tgt = prepared_targets[path]
            _check_geometry(src, tgt)
            pair_id = entry.get(pair_key, entry.get("subject", ""))
            self.pairs.append(SlicePair(src, tgt, str(entry["kernel"]), self.target, str(pair_id)))
        if not self.pairs:
            at = f" with split {split!r}" if split is not None else ""
            raise InputError(where, f"no datalist entries{at} for source domain(s) {', '.join(self.sources)}")
        sources = [p.source for p in self.pairs]
        self.slices = slice_table(sources, lung_only_fraction)
        if len(self.slices) == 0:
            raise InputError(where, f"no slice has a source lung fraction >= {lung_only_fraction}")
        check_slice_sizes(sources, self.roi_size, "pairs")
        # the pair's FOV (source ∩ target) applied to both images and the source's label maps
        self._pair_fov = FOVMaskd(["source", "target", "lung", "labels"], mask_key="fov",
                                  fill_value=(-1.0, -1.0, 0, 0), circular=False, allow_missing_keys=True)
        self._crop = None if self.roi_size is None else Compose(
            [RandCrop2Dd(list(_ARRAY_KEYS), self.roi_size, allow_missing_keys=True)])

    def _partner(self, entry: Mapping[str, Any], entries: Sequence[Mapping[str, Any]], pair_key: str,
                 split: str | None) -> Mapping[str, Any]:
        """The target entry of ``entry``: its ground truth, or the target-kernel entry with its pair id."""
        image = entry["image"]
        if self.target == TRUTH_DOMAIN:
            if not entry.get(TRUTH_DOMAIN):
                raise ConfigError(image, f"datalist entry has no {TRUTH_DOMAIN!r} volume to pair with")
            return {"image": entry[TRUTH_DOMAIN], "kernel": TRUTH_DOMAIN}
        if entry.get(pair_key) is None:
            raise ConfigError(image, f"datalist entry has no {pair_key!r}; pairs are matched by pair_key={pair_key!r}")
        found = [e for e in entries if e.get("kernel") == self.target and e.get(pair_key) == entry[pair_key]]
        at = f" in split {split!r}" if split is not None else ""
        if not found:
            raise InputError(image, f"no {self.target!r} entry with {pair_key} {entry[pair_key]!r}{at} to pair with")
        if len(found) > 1:
            raise ConfigError(image, f"{len(found)} {self.target!r} entries with {pair_key} {entry[pair_key]!r}{at}: "
                                     f"{', '.join(str(e['image']) for e in found)}")
        return found[0]

    def __len__(self) -> int:
        return len(self.slices)

    def __getitem__(self, index: int) -> dict[str, Any]:
        index = int(index)
        if not 0 <= index < len(self.slices):
            raise IndexError(f"index {index} out of range for {len(self.slices)} items")
        v, z = (int(t) for t in self.slices[index])
        pair = self.pairs[v]
        src = pair.source.slice(z, ("image", "fov", "lung", "labels"))
        tgt = pair.target.slice(z, ("image", "fov"))
        item: dict[str, Any] = {"source": src.pop("image"), "target": tgt["image"], "fov": src.pop("fov") & tgt["fov"],
                                **src}
        item = self._pair_fov(item)
        if self._crop is not None:
            item = apply_seeded(self._crop, item)
        item.update(source_domain=pair.source_domain, target_domain=pair.target_domain, pair_id=pair.pair_id,
                    slice_index=z)
        return item

