"""One training volume, preprocessed once: circular FOV enforced, HU scaled to [-1, 1], tissue labels attached.

Preprocessing (paper 000: "standardized preprocessing by enforcing circular FOVs", HU clipped to
[-1024, 3072] and normalised to [-1, 1]):

1. read the image (HU, (Z, Y, X));
2. FOV = the circle inscribed in the slice, intersected with the reader's padding-based FOV mask
   when it found one (``circular_fov=False``: the reader's mask only, or everything);
3. outside the FOV the image becomes -1024 HU (then -1 after scaling) and the tissue labels 0;
4. HU → [-1, 1] with :func:`ctharmonize.transforms.hu_to_unit`.

With ``cache_dir`` the arrays are written once as ``.npy`` files and opened as read-only memory maps,
so a large cohort does not have to fit in RAM (and DataLoader workers share the pages).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ctharmonize.datasets.tissue_labels import file_key, tissue_labels
from ctharmonize.errors import ConfigError
from ctharmonize.io.atomic import atomic_path
from ctharmonize.io.fov import AIR_HU, circular_fov_mask
from ctharmonize.io.label_map import read_label_map
from ctharmonize.transforms import hu_to_unit

__all__ = ["PreparedVolume", "prepare_volume"]


@dataclass
class PreparedVolume:
    """Arrays of one volume, ready for slicing.

    ``image``: float32 (Z, Y, X) in [-1, 1] (outside FOV -1); ``fov``: bool (Z, Y, X), True inside;
    ``labels``: uint8 (Z, Y, X) tissue codes (0 outside FOV) or None; ``lung_fraction``: float (Z,)
    fraction of each slice's pixels that are lung (lung mask ``lung`` > 0, else tissue codes 1/2), or
    None when neither is known. Arrays may be read-only memory maps.
    """

    path: str
    kernel: str
    image: np.ndarray
    fov: np.ndarray
    labels: np.ndarray | None
    lung_fraction: np.ndarray | None

    @property
    def num_slices(self) -> int:
        return int(self.image.shape[0])


def _save(path: Path, array: np.ndarray) -> None:
    with atomic_path(path, overwrite=True) as tmp:
        np.save(tmp, array)


def _lung_fraction(entry: Mapping[str, Any], labels: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray | None:
    if entry.get("lung"):
        lung = read_label_map(entry["lung"], allowed={0, 1, 2}, shape=shape) > 0
    elif labels is not None:
        lung = (labels == 1) | (labels == 2)
    else:
        return None
    return lung.reshape(shape[0], -1).mean(axis=1).astype(np.float32)


def _compute(
    entry: Mapping[str, Any], hu_min: float, hu_max: float, labels_source: str | None, circular_fov: bool,
    cache_dir: str | os.PathLike | None, segmentation_kwargs: Mapping[str, Any] | None,
) -> dict[str, np.ndarray | None]:
    from ctharmonize.io.read import read_volume

    vol = read_volume(entry["image"])
    shape = vol.array.shape
    fov = np.ones(shape, dtype=bool) if vol.fov_mask is None else np.asarray(vol.fov_mask, dtype=bool)
    if circular_fov:
        fov = fov & circular_fov_mask(shape[1:])[None]
    hu = np.where(fov, vol.array, np.float32(AIR_HU))
    labels = None
    if labels_source is not None:
        labels = tissue_labels(entry, vol, labels_source, cache_dir, segmentation_kwargs)
        labels = np.where(fov, labels, np.uint8(0)).astype(np.uint8)
    return {
        "image": hu_to_unit(hu, hu_min, hu_max).astype(np.float32),
        "fov": fov,
        "labels": labels,
        "lung_fraction": _lung_fraction(entry, labels, shape),
    }


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
        arrays = _compute(entry, hu_min, hu_max, labels_source, circular_fov, None, segmentation_kwargs)
        return PreparedVolume(image, kernel, **arrays)

    cache = Path(cache_dir)
    extra: list[Any] = [hu_min, hu_max, circular_fov, labels_source]
    for key in ("labels", "lung"):
        if entry.get(key):
            extra.append(file_key(entry[key]))
    key = file_key(image, *extra)
    files = {name: cache / f"slices_{key}_{name}.npy" for name in ("image", "fov", "labels", "lung_fraction")}
    done = cache / f"slices_{key}_complete"
    if not done.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        arrays = _compute(entry, hu_min, hu_max, labels_source, circular_fov, cache, segmentation_kwargs)
        for name, array in arrays.items():
            if array is not None:
                _save(files[name], array)
            else:
                files[name].unlink(missing_ok=True)
        with atomic_path(done, overwrite=True) as tmp:
            tmp.write_text(image + "\n")
    loaded = {name: np.load(f, mmap_mode="r") if f.is_file() else None for name, f in files.items()}
    return PreparedVolume(image, kernel, **loaded)
