"""Randomly sample 2-D axial slices (with their kernel-domain label) from a CT volume dict."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform, Randomizable

from ctharmonize.errors import ConfigError, DimensionError, InputError, UnknownDomainError

__all__ = ["SampleAxialSlicesd"]


def _source_path(d: Mapping, keys: Sequence[Hashable]) -> str | None:
    """The image file a volume came from (MetaTensor meta or ``<key>_meta_dict``), for error messages."""
    for key in keys:
        meta = getattr(d.get(key), "meta", None) or d.get(f"{key}_meta_dict") or {}
        if meta.get("filename_or_obj"):
            return str(meta["filename_or_obj"])
    return None


class SampleAxialSlicesd(Randomizable, MapTransform):
    """Dictionary transform: one volume dict -> a list of ``num_samples`` 2-D slice dicts.

    Each output dict holds, for every key in ``keys``, the axial slice as a (1, Y, X) array
    (numpy in, numpy out; torch/MetaTensor in, plain torch.Tensor out; values unchanged, HU or
    [-1, 1]), ``slice_index`` (int z), ``domain`` (the name in ``data[domain_key]``) and
    ``domain_index`` (its position in ``domain_names``). Non-array items of the input (strings,
    numbers, dicts) are copied; arrays not in ``keys`` are dropped.

    Slices are drawn without replacement when there are enough eligible slices, otherwise
    with replacement. Seed with ``set_random_state(seed)``.

    Args:
        keys: volume keys, arrays (Z, Y, X) or channel-first (1, Z, Y, X), same Z for all.
        num_samples: slices per volume.
        domain_key: key of the domain name (e.g. ``"kernel"`` from the datalist); None: no label.
        domain_names: ordered domain names (e.g. ``registry.names()`` or the network's
            domains); required for ``domain_index``. Unknown names raise UnknownDomainError.
        lung_key: optional lung-mask key ((Z, Y, X) or (1, Z, Y, X), lung > 0); when given only
            slices whose lung fraction is > 0 and >= ``min_lung_fraction`` are eligible.
        min_lung_fraction: minimum fraction of in-slice pixels that are lung.
    """

    def __init__(self, keys: KeysCollection, num_samples: int, domain_key: str | None = "kernel",
                 domain_names: Sequence[str] | None = None, lung_key: str | None = None,
                 min_lung_fraction: float = 0.0, allow_missing_keys: bool = False):
        MapTransform.__init__(self, keys, allow_missing_keys)
        if int(num_samples) < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        if not 0.0 <= min_lung_fraction <= 1.0:
            raise ValueError(f"min_lung_fraction must be in [0, 1], got {min_lung_fraction}")
        self.num_samples = int(num_samples)
        self.domain_key = domain_key
        self.domain_names = None if domain_names is None else list(domain_names)
        self.lung_key = lung_key
        self.min_lung_fraction = float(min_lung_fraction)
        self._indices: np.ndarray = np.zeros(0, dtype=int)

    def randomize(self, candidates: np.ndarray) -> None:
        replace = len(candidates) < self.num_samples
        self._indices = self.R.choice(candidates, size=self.num_samples, replace=replace)

    @staticmethod
    def _slices_axis(array, key: Hashable, path: str | None) -> int:
        """Axis of Z: 0 for (Z, Y, X), 1 for (1, Z, Y, X)."""
        if array.ndim == 3:
            return 0
        if array.ndim == 4 and array.shape[0] == 1:
            return 1
        raise DimensionError(path, f"{key!r} must be (Z, Y, X) or (1, Z, Y, X), got shape {tuple(array.shape)}")

    def _eligible(self, d: Mapping, num_slices: int, path: str | None) -> np.ndarray:
        if self.lung_key is None:
            return np.arange(num_slices)
        if self.lung_key not in d:
            raise ConfigError(path, f"lung mask key {self.lung_key!r} is missing from the data")
        lung = d[self.lung_key]
        lung = lung.detach().cpu().numpy() if isinstance(lung, torch.Tensor) else np.asarray(lung)
        axis = self._slices_axis(lung, self.lung_key, path)
        lung = lung[0] if axis == 1 else lung
        if lung.shape[0] != num_slices:
            raise DimensionError(path, f"lung mask {self.lung_key!r} has {lung.shape[0]} slices, image has {num_slices}")
        fraction = (lung > 0).reshape(num_slices, -1).mean(axis=1)
        eligible = np.flatnonzero((fraction > 0) & (fraction >= self.min_lung_fraction))
        if eligible.size == 0:
            raise InputError(path, f"no slice has a lung fraction >= {self.min_lung_fraction:g} "
                                   f"(largest: {fraction.max():.3g})")
        return eligible

    def _domain(self, d: Mapping, path: str | None) -> tuple[str, int | None] | None:
        if self.domain_key is None:
            return None
        if self.domain_key not in d:
            raise ConfigError(path, f"domain key {self.domain_key!r} is missing from the data")
        name = str(d[self.domain_key])
        if self.domain_names is None:
            return name, None
        if name not in self.domain_names:
            raise UnknownDomainError(path, f"unknown domain {name!r}; known domains: {', '.join(self.domain_names)}")
        return name, self.domain_names.index(name)

    def __call__(self, data: Mapping[Hashable, np.ndarray | torch.Tensor]) -> list[dict]:
        d = dict(data)
        keys = list(self.key_iterator(d))
        path = _source_path(d, keys)
        if not keys:
            raise ConfigError(path, f"none of the keys {list(self.keys)} is in the data")
        axes = {key: self._slices_axis(d[key], key, path) for key in keys}
        sizes = {key: d[key].shape[axes[key]] for key in keys}
        num_slices = sizes[keys[0]]
        if len(set(sizes.values())) != 1:
            raise DimensionError(path, f"keys have different numbers of slices: {sizes}")
        domain = self._domain(d, path)
        self.randomize(self._eligible(d, num_slices, path))
        common = {k: v for k, v in d.items() if k not in keys and not isinstance(v, np.ndarray | torch.Tensor)}
        samples = []
        for z in self._indices:
            z = int(z)
            sample = dict(common)
            for key in keys:
                vol = d[key]
                piece = vol[z][None] if axes[key] == 0 else vol[:, z]
                if isinstance(piece, torch.Tensor):
                    sample[key] = piece.as_subclass(torch.Tensor).clone()
                else:
                    sample[key] = np.array(piece, copy=True)
            sample["slice_index"] = z
            if domain is not None:
                sample["domain"] = domain[0]
                if domain[1] is not None:
                    sample["domain_index"] = domain[1]
            samples.append(sample)
        return samples
