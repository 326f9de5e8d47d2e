"""Tissue label maps for the tissue-statistic loss (paper 000), read or computed once per volume and cached.

A tissue map is a uint8 (Z, Y, X) array of canonical codes (``labels.json``: 1/2 lungs, 5 skeletal
muscle, 6 subcutaneous fat, 7 visceral fat, 8 bone, 9 other soft tissue, ...) aligned with the image.
Sources:

* ``"datalist"``: the entry's ``labels`` file (the simulator's ground truth, or precomputed
  TotalSegmentator labels mapped to canonical codes);
* ``"threshold"`` / ``"totalsegmentator"``: :func:`ctharmonize.segmentation.body_composition` run on
  the image (with the entry's ``lung`` mask when there is one). The result is cached as
  ``<cache_dir>/tissue_<key>.npy`` (key: image path, size, mtime and backend), so a cohort is segmented
  once, not once per training run.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ctharmonize.errors import ConfigError, CTHarmonizeError, DimensionError, InputError
from ctharmonize.io.atomic import atomic_path
from ctharmonize.io.volume import Volume

__all__ = ["TISSUE_LABEL_SOURCES", "file_key", "read_label_map", "tissue_labels"]

TISSUE_LABEL_SOURCES = ("datalist", "threshold", "totalsegmentator")


def file_key(path: str | os.PathLike, *extra: Any) -> str:
    """Cache key of a file: SHA-1 of its absolute path, size, mtime and ``extra`` (16 hex digits)."""
    p = Path(path).resolve()
    st = p.stat()
    text = json.dumps([str(p), st.st_size, st.st_mtime_ns, *map(str, extra)])
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def read_label_map(path: str | os.PathLike, shape: tuple[int, ...]) -> np.ndarray:
    """Read an integer label file (NIfTI / DICOM) as uint8 (Z, Y, X) in the image's voxel order.

    Uses the same reader as the images (LPS, (Z, Y, X)), so labels and image stay aligned. Raises a
    one-line error when the file cannot be read, is not integer-valued in [0, 255] or its shape differs.
    """
    from ctharmonize.io.read import read_volume

    try:
        vol = read_volume(path, padding_values=None)
    except CTHarmonizeError:
        raise
    except Exception as err:  # a library error from a corrupt file
        raise InputError(path, f"cannot read label map ({type(err).__name__}: {err})") from err
    arr = np.asarray(vol.array)
    if arr.shape != tuple(shape):
        raise DimensionError(path, f"label map shape {arr.shape} differs from the image shape {tuple(shape)}")
    rounded = np.rint(arr)
    if not np.allclose(arr, rounded, atol=1e-3) or rounded.min() < 0 or rounded.max() > 255:
        raise InputError(path, "label map must hold integer codes in [0, 255]")
    return rounded.astype(np.uint8)


def _segment(volume: Volume, entry: Mapping[str, Any], backend: str, kwargs: Mapping[str, Any]) -> np.ndarray:
    from ctharmonize.segmentation import body_composition

    lung = read_label_map(entry["lung"], volume.array.shape) if entry.get("lung") else None
    labels = body_composition(volume, backend=backend, lung=lung, **dict(kwargs))
    return np.asarray(labels, dtype=np.uint8)


def tissue_labels(
    entry: Mapping[str, Any],
    volume: Volume,
    source: str = "datalist",
    cache_dir: str | os.PathLike | None = None,
    segmentation_kwargs: Mapping[str, Any] | None = None,
) -> np.ndarray:
    """uint8 (Z, Y, X) canonical tissue codes for ``entry`` (a datalist entry whose image is ``volume``).

    Args:
        entry: datalist entry (absolute ``image``; ``labels`` for ``source="datalist"``; optional ``lung``).
        volume: the entry's image, already read (HU).
        source: ``"datalist"``, ``"threshold"`` or ``"totalsegmentator"`` (see the module docstring).
        cache_dir: where computed maps are cached (None: computed every call, nothing written).
        segmentation_kwargs: extra keyword arguments of ``body_composition`` (e.g. ``device``).
    """
    image = entry.get("image")
    if source not in TISSUE_LABEL_SOURCES:
        raise ConfigError(None, f"tissue_labels must be one of {', '.join(TISSUE_LABEL_SOURCES)} or None, got {source!r}")
    if source == "datalist":
        if not entry.get("labels"):
            raise ConfigError(image, "datalist entry has no 'labels' map; use tissue_labels='threshold' to compute one")
        return read_label_map(entry["labels"], volume.array.shape)
    kwargs = dict(segmentation_kwargs or {})
    if cache_dir is None:
        return _segment(volume, entry, source, kwargs)
    extra = [source, json.dumps(kwargs, sort_keys=True, default=str)]
    if entry.get("lung"):
        extra.append(file_key(entry["lung"]))
    cached = Path(cache_dir) / f"tissue_{file_key(image, *extra)}.npy"
    if cached.is_file():
        labels = np.load(cached)
        if labels.shape == volume.array.shape:
            return labels
    labels = _segment(volume, entry, source, kwargs)
    cached.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(cached, overwrite=True) as tmp:
        np.save(tmp, labels)
    return labels
