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

from ctharmonize.errors import ConfigError
from ctharmonize.io.atomic import atomic_path
from ctharmonize.io.label_map import read_label_map
from ctharmonize.io.volume import Volume

__all__ = ["TISSUE_LABEL_SOURCES", "file_key", "tissue_labels"]

TISSUE_LABEL_SOURCES = ("datalist", "threshold", "totalsegmentator")


def file_key(path: str | os.PathLike, *extra: Any) -> str:
    """Cache key of a file: SHA-1 of its absolute path, size, mtime and ``extra`` (16 hex digits)."""
    p = Path(path).resolve()
    st = p.stat()
    text = json.dumps([str(p), st.st_size, st.st_mtime_ns, *map(str, extra)])
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def _segment(volume: Volume, entry: Mapping[str, Any], backend: str, kwargs: Mapping[str, Any]) -> np.ndarray:
    from ctharmonize.segmentation import body_composition

    lung = read_label_map(entry["lung"], like=volume, allowed={0, 1, 2}) if entry.get("lung") else None
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
        return read_label_map(entry["labels"], like=volume)
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
