"""One training volume, preprocessed once: circular FOV enforced, HU scaled to [-1, 1], tissue labels attached.

Preprocessing (paper 000: "standardized preprocessing by enforcing circular FOVs", HU clipped to
[-1024, 3072] and normalised to [-1, 1]) is the MONAI ``Compose`` of :func:`volume_preprocessing`:

1. read the image (HU, (Z, Y, X)) and, when asked, its tissue labels;
2. :class:`~ctharmonize.transforms.FOVMaskd`: FOV = the reader's padding-based FOV mask (when it found
   one) intersected with the circle inscribed in the slice (``circular_fov=False``: the reader's mask
   only, or everything); outside it the image becomes -1024 HU and the tissue labels 0;
3. :class:`~ctharmonize.transforms.ScaleHUd`: HU → [-1, 1].

The lung mask (the entry's ``lung`` file, else tissue codes 1/2) is kept for the lung-only slice filter
(:meth:`PreparedVolume.slice_indices`, :class:`~ctharmonize.transforms.LungSlicesd`).

With ``cache_dir`` the arrays are written once as ``.npy`` files and opened as read-only memory maps,
so a large cohort does not have to fit in RAM (and DataLoader workers share the pages).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.transforms import Compose

from ctharmonize.datasets.tissue_labels import file_key, tissue_labels
from ctharmonize.errors import ConfigError
from ctharmonize.io.atomic import atomic_path
from ctharmonize.io.fov import AIR_HU
from ctharmonize.io.label_map import read_label_map
from ctharmonize.transforms import FOVMaskd, LungSlicesd, ScaleHUd

__all__ = ["PreparedVolume", "prepare_volume", "volume_preprocessing"]

_ARRAYS = ("image", "fov", "labels", "lung")
_CACHE_VERSION = "2"  # v2: lung mask and geometry instead of a per-slice lung fraction


@dataclass
class PreparedVolume:
    """Arrays of one volume, ready for slicing.

    ``image``: float32 (Z, Y, X) in [-1, 1] (outside FOV -1); ``fov``: bool (Z, Y, X), True inside;
    ``labels``: uint8 (Z, Y, X) tissue codes (0 outside FOV) or None; ``lung``: bool (Z, Y, X) lung
    mask (entry ``lung`` > 0, else tissue codes 1/2) or None when neither is known. Arrays may be
    read-only memory maps. ``spacing``: (sx, sy, sz) mm; ``affine``: 4x4 (column, row, slice) → LPS mm.
    """

    path: str
    kernel: str
    image: np.ndarray
    fov: np.ndarray
    labels: np.ndarray | None
    lung: np.ndarray | None
    spacing: tuple[float, float, float]
    affine: np.ndarray

    @property
    def num_slices(self) -> int:
        return int(self.image.shape[0])

    def slice_indices(self, lung_only_fraction: float | None = None) -> np.ndarray:
        """int64 (N,) slices to train on: all, or (``lung_only_fraction``) those whose lung pixels are
        more than 0 and at least this fraction of the slice (:class:`~ctharmonize.transforms.LungSlicesd`)."""
        if lung_only_fraction is None:
            return np.arange(self.num_slices, dtype=np.int64)
        if self.lung is None:
            raise ConfigError(self.path, "lung_only_fraction needs a 'lung' mask or tissue labels")
        return LungSlicesd("lung", float(lung_only_fraction))({"lung": self.lung})["slice_indices"]

    def slice(self, z: int, keys: Sequence[str] = ("image", "fov", "labels")) -> dict[str, torch.Tensor]:
        """Slice ``z`` of the arrays named in ``keys`` (those that exist) as (1, Y, X) tensors (copies):
        ``image`` float32 in [-1, 1], ``fov`` bool, ``labels`` int64, ``lung`` bool."""
        dtypes = {"image": np.float32, "fov": bool, "labels": np.int64, "lung": bool}
        out = {}
        for key in keys:
            array = getattr(self, key)
            if array is not None:
                out[key] = torch.from_numpy(np.array(array[z], dtype=dtypes[key]))[None]
        return out


def volume_preprocessing(hu_min: float = -1024.0, hu_max: float = 3072.0, circular_fov: bool = True) -> Compose:
    """The deterministic per-volume steps as one MONAI ``Compose`` over a dict with ``image`` (HU
    (Z, Y, X)), optional ``fov`` (bool (Z, Y, X), the reader's mask) and optional ``labels`` (uint8):
    returns ``image`` in [-1, 1] (-1 outside the FOV), ``labels`` 0 outside it and ``fov`` the FOV used."""
    return Compose([
        FOVMaskd(["image", "labels"], mask_key="fov", fill_value=(AIR_HU, 0), circular=circular_fov, store_mask=True,
                 allow_missing_keys=True),
        ScaleHUd("image", hu_min, hu_max),
    ])


def _save(path: Path, array: np.ndarray) -> None:
    with atomic_path(path, overwrite=True) as tmp:
        np.save(tmp, array)


def _compute(
    entry: Mapping[str, Any], hu_min: float, hu_max: float, labels_source: str | None, circular_fov: bool,
    cache_dir: str | os.PathLike | None, segmentation_kwargs: Mapping[str, Any] | None,
) -> tuple[dict[str, np.ndarray | None], dict[str, Any]]:
    from ctharmonize.io.read import read_volume

    vol = read_volume(entry["image"])
    data: dict[str, Any] = {"image": vol.array}
    if vol.fov_mask is not None:
        data["fov"] = np.asarray(vol.fov_mask, dtype=bool)
    if labels_source is not None:
        data["labels"] = tissue_labels(entry, vol, labels_source, cache_dir, segmentation_kwargs).astype(np.uint8)
    data = volume_preprocessing(hu_min, hu_max, circular_fov)(data)
    labels = data.get("labels")
    if entry.get("lung"):
        lung = read_label_map(entry["lung"], allowed={0, 1, 2}, shape=vol.array.shape) > 0
    elif labels is not None:
        lung = (labels == 1) | (labels == 2)
    else:
        lung = None
    arrays = {"image": data["image"].astype(np.float32), "fov": data["fov"], "labels": labels, "lung": lung}
    geometry = {"spacing": [float(s) for s in vol.spacing], "affine": vol.index_to_lps().tolist()}
    return arrays, geometry


def _volume(image: str, kernel: str, arrays: Mapping[str, Any], geometry: Mapping[str, Any]) -> PreparedVolume:
    return PreparedVolume(image, kernel, **arrays, spacing=tuple(geometry["spacing"]),  # type: ignore[arg-type]
                          affine=np.asarray(geometry["affine"], dtype=np.float64))


def prepare_volume(
    entry: Mapping[str, Any],
    hu_min: float = -1024.0,
    hu_max: float = 3072.0,
    labels_source: str | None = "datalist",
    circular_fov: bool = True,
    cache_dir: str | os.PathLike | None = None,
    segmentation_kwargs: Mapping[str, Any] | None = None,
) -> PreparedVolume:
    """Preprocess the datalist ``entry`` (absolute ``image`` path, ``kernel``; see the module docstring).

    Args:
        entry: datalist entry.
        hu_min, hu_max: HU window mapped to [-1, 1].
        labels_source: tissue labels: ``"datalist"``, ``"threshold"``, ``"totalsegmentator"`` or None.
        circular_fov: enforce the inscribed circular FOV.
        cache_dir: cache the arrays there as ``.npy`` memory maps (None: keep them in memory).
        segmentation_kwargs: passed to ``body_composition`` for computed labels.
    """
    if "image" not in entry:
        raise ConfigError(None, f"datalist entry has no 'image': {dict(entry)}")
    image = str(entry["image"])
    kernel = str(entry.get("kernel", ""))
    if cache_dir is None:
        arrays, geometry = _compute(entry, hu_min, hu_max, labels_source, circular_fov, None, segmentation_kwargs)
        return _volume(image, kernel, arrays, geometry)

    cache = Path(cache_dir)
    extra: list[Any] = [_CACHE_VERSION, hu_min, hu_max, circular_fov, labels_source]
    for key in ("labels", "lung"):
        if entry.get(key):
            extra.append(file_key(entry[key]))
    key = file_key(image, *extra)
    files = {name: cache / f"slices_{key}_{name}.npy" for name in _ARRAYS}
    geometry_file = cache / f"slices_{key}_geometry.json"
    done = cache / f"slices_{key}_complete"
    if not done.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        arrays, geometry = _compute(entry, hu_min, hu_max, labels_source, circular_fov, cache, segmentation_kwargs)
        for name, array in arrays.items():
            if array is not None:
                _save(files[name], array)
            else:
                files[name].unlink(missing_ok=True)
        with atomic_path(geometry_file, overwrite=True) as tmp:
            tmp.write_text(json.dumps(geometry) + "\n")
        with atomic_path(done, overwrite=True) as tmp:
            tmp.write_text(image + "\n")
    loaded = {name: np.load(f, mmap_mode="r") if f.is_file() else None for name, f in files.items()}
    return _volume(image, kernel, loaded, json.loads(geometry_file.read_text()))
