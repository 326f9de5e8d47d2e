"""Unaligned axial slices of several kernel domains: the training data of the multipath cycleGAN (paper 000)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
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
from ctharmonize.errors import ConfigError, InputError
from ctharmonize.transforms import RandCrop2Dd, RandTissueCrop2Dd

__all__ = ["UnalignedMultiDomainSlices"]


class UnalignedMultiDomainSlices(Dataset):
    """Torch dataset: each item holds ONE axial slice of EVERY domain, drawn independently (unpaired).

    With ``paired_groups`` the domains of a group are drawn TOGETHER: the group's first domain is drawn as
    above, and every other domain of the group takes the same slice of the same subject (the entry with the
    same ``pair_id``, else ``subject``; e.g. NLST's B50f and B30f reconstructions of one scan) cropped at the
    same position, so ``image_<a>`` and ``image_<b>`` are pixel-aligned.

    Item ``i`` (a dict):

    * ``image_<domain>``: float32 (1, H, W) in [-1, 1] (HU clipped to ``[hu_min, hu_max]`` and scaled;
      outside the circular FOV -1, i.e. -1024 HU);
    * ``labels_<domain>``: int64 (1, H, W) tissue codes of that slice (0 outside the FOV), when
      ``tissue_labels`` is not None;
    * ``fov_<domain>``: bool (1, H, W), True inside the FOV.

    **Length and sampling.** ``len(dataset)`` is the number of slices of the LARGEST domain. Item ``i``
    takes slice ``i`` of that domain (in datalist order; when several domains tie, each of them is
    indexed by ``i``); every other domain contributes a uniformly random slice, drawn with torch's global
    RNG (so a checkpoint's RNG state reproduces it; DataLoader workers are seeded by torch). An epoch of
    :class:`~ctharmonize.engines.RandomSubsetSampler` (20 %) therefore covers 20 % of the largest domain
    and an equally large random draw of the others. ``roi_size`` crops each domain's slice at an
    independent random position (one :class:`~ctharmonize.transforms.RandCrop2Dd` per domain over its
    image, FOV and labels, seeded from torch's RNG); without it every slice of a domain must have one size.

    All volumes are read and preprocessed once, in ``__init__`` (MONAI transforms
    :class:`~ctharmonize.transforms.FOVMaskd` and :class:`~ctharmonize.transforms.ScaleHUd`, see
    :func:`~ctharmonize.datasets.prepared_volume.prepare_volume`): in memory, or with ``cache_dir`` as
    ``.npy`` memory maps for cohorts larger than RAM. The lung-only filter is
    :class:`~ctharmonize.transforms.LungSlicesd`.

    Args:
        datalist: datalist JSON path, or entries (dicts with absolute paths).
        domains: kernel-domain names to load, in network order (entries of other kernels are ignored).
        split: keep entries of this split (None: all entries).
        hu_min, hu_max: HU window mapped to [-1, 1] (paper 000: [-1024, 3072]).
        roi_size: (H, W) random crop per domain (None: whole slices; H and W must be multiples of 4).
        tissue_labels: ``"datalist"`` (entry ``labels``), ``"threshold"`` / ``"totalsegmentator"``
            (computed with ``body_composition`` once per volume, cached in ``cache_dir``) or None.
        cache_dir: cache folder for preprocessed volumes and computed tissue labels.
        lung_only_fraction: None keeps every slice; a number keeps only slices whose lung pixels are
            more than 0 and at least this fraction of the slice (needs ``lung`` masks or tissue labels).
        circular_fov: enforce the inscribed circular FOV (paper 000).
        segmentation_kwargs: extra arguments of ``body_composition`` (computed tissue labels).
        crop_labels: with ``roi_size``, centre each domain's crop on a random pixel of these tissue codes
            (:class:`~ctharmonize.transforms.RandTissueCrop2Dd`; e.g. ``[5, 6, 7, 9]``, soft tissue, for
            CVS-CT's soft-tissue patches); needs ``tissue_labels``. None: uniform random crops.
        paired_groups: e.g. ``[["siemens_b50f", "siemens_b30f"], ["ge_bone", "ge_standard"]]``: domains whose
            slices are drawn pixel-aligned (see above); each domain in at most one group. Every subject of a
            follower domain must have a leader volume of the same shape (one-line error otherwise).
    """

    def __init__(
        self,
        datalist: str | os.PathLike | Sequence[Mapping[str, Any]],
        domains: Sequence[str],
        split: str | None = "train",
        hu_min: float = -1024.0,
        hu_max: float = 3072.0,
        roi_size: Sequence[int] | int | None = None,
        tissue_labels: str | None = "datalist",
        cache_dir: str | os.PathLike | None = None,
        lung_only_fraction: float | None = None,
        circular_fov: bool = True,
        segmentation_kwargs: Mapping[str, Any] | None = None,
        crop_labels: Sequence[int] | None = None,
        paired_groups: Sequence[Sequence[str]] | None = None,
    ):
        entries, source = load_entries(datalist)
        self.domains = [str(d) for d in domains]
        if not self.domains or len(set(self.domains)) != len(self.domains):
            raise ConfigError(source, f"domains must be distinct names, got {list(domains)}")
        if tissue_labels is not None and tissue_labels not in TISSUE_LABEL_SOURCES:
            raise ConfigError(source, f"tissue_labels must be one of {', '.join(TISSUE_LABEL_SOURCES)} or None, "
                                      f"got {tissue_labels!r}")
        if lung_only_fraction is not None and not 0.0 <= float(lung_only_fraction) <= 1.0:
            raise ConfigError(source, f"lung_only_fraction must be in [0, 1] or None, got {lung_only_fraction}")
        self.roi_size = check_roi_size(roi_size, source, multiple=4)
        if crop_labels is not None and (tissue_labels is None or self.roi_size is None):
            raise ConfigError(source, "crop_labels centres the roi_size crops on tissue labels: it needs roi_size "
                                      "and tissue_labels")
        self.tissue_labels = tissue_labels
        selected = [e for e in entries if (split is None or e.get("split") == split) and e.get("kernel") in self.domains]
        self.groups = self._check_groups(paired_groups, source)
        self.volumes: dict[str, list[PreparedVolume]] = {d: [] for d in self.domains}
        self.pair_ids: dict[str, list[str]] = {d: [] for d in self.domains}
        for entry in selected:
            vol = prepare_volume(entry, hu_min, hu_max, tissue_labels, circular_fov, cache_dir, segmentation_kwargs)
            self.volumes[entry["kernel"]].append(vol)
            self.pair_ids[entry["kernel"]].append(str(entry.get("pair_id", entry.get("subject", vol.path))))
        where = f" with split {split!r}" if split is not None else ""
        empty = [d for d in self.domains if not self.volumes[d]]
        if empty:
            raise InputError(source, f"no datalist entries{where} for domain(s) {', '.join(empty)}")
        # per domain: (volume index, slice index) of every eligible slice
        self.slices: dict[str, np.ndarray] = {}
        for d in self.domains:
            self.slices[d] = slice_table(self.volumes[d], lung_only_fraction)
            if len(self.slices[d]) == 0:
                raise InputError(source, f"domain {d}: no slice has a lung fraction >= {lung_only_fraction}")
            check_slice_sizes(self.volumes[d], self.roi_size, f"domain {d}", multiple=4)
        self._partner = self._match_pairs(source)
        self.counts = {d: len(self.slices[d]) for d in self.domains}
        self._length = max(self.counts.values())
        def crop(group: Sequence[str]) -> RandCrop2Dd:
            keys = [f"{key}_{d}" for d in group for key in ("image", "fov", "labels")]
            if crop_labels is None:
                return RandCrop2Dd(keys, self.roi_size, allow_missing_keys=True)
            return RandTissueCrop2Dd(keys, f"labels_{group[0]}", crop_labels, self.roi_size, allow_missing_keys=True)

        followers = {d for g in self.groups for d in g[1:]}
        crop_groups = [next((g for g in self.groups if g[0] == d), [d]) for d in self.domains if d not in followers]
        self._crop = None if self.roi_size is None else Compose([crop(g) for g in crop_groups])

    def _check_groups(self, groups: Sequence[Sequence[str]] | None, source: Any) -> list[list[str]]:
        out: list[list[str]] = []
        seen: set[str] = set()
        for group in groups or ():
            g = [str(d) for d in group]
            unknown = [d for d in g if d not in self.domains]
            if len(g) < 2 or unknown or seen & set(g) or len(set(g)) != len(g):
                raise ConfigError(source, f"paired_groups: {g} must name two or more distinct domains of "
                                          f"{self.domains}, each in one group only")
            seen |= set(g)
            out.append(g)
        return out

    def _match_pairs(self, source: Any) -> dict[str, list[int]]:
        """``{follower domain: [its volume index for each leader volume]}``; one-line error on a missing or
        differently shaped partner."""
        partner: dict[str, list[int]] = {}
        for leader, *followers in self.groups:
            for d in followers:
                index = {pid: i for i, pid in enumerate(self.pair_ids[d])}
                partner[d] = []
                for v, pid in enumerate(self.pair_ids[leader]):
                    if pid not in index:
                        raise InputError(self.volumes[leader][v].path, f"paired_groups: subject {pid!r} has no "
                                                                       f"{d} volume in the datalist")
                    w = index[pid]
                    if self.volumes[d][w].image.shape != self.volumes[leader][v].image.shape:
                        raise InputError(self.volumes[d][w].path, f"paired_groups: shape "
                                         f"{self.volumes[d][w].image.shape} differs from its {leader} volume "
                                         f"{self.volumes[leader][v].image.shape}")
                    partner[d].append(w)
        return partner

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        index = int(index)
        if not 0 <= index < self._length:
            raise IndexError(f"index {index} out of range for {self._length} items")
        item: dict[str, torch.Tensor] = {}
        drawn: dict[str, tuple[int, int]] = {}
        for d in self.domains:
            if d in self._partner:
                continue
            n = self.counts[d]
            j = index if n == self._length else int(torch.randint(n, (1,)))
            v, z = (int(t) for t in self.slices[d][j])
            drawn[d] = (v, z)
            item.update({f"{key}_{d}": t for key, t in self.volumes[d][v].slice(z).items()})
        for leader, *followers in self.groups:
            v, z = drawn[leader]
            for d in followers:
                item.update({f"{key}_{d}": t for key, t in self.volumes[d][self._partner[d][v]].slice(z).items()})
        return item if self._crop is None else apply_seeded(self._crop, item)
