"""Distribution columns of the benchmark (papers 003 and 004): FID and KID in the CT feature space and the
share of radiomic features whose harmonized and target distributions are not significantly different.

Each harmonized volume contributes :data:`DISTRIBUTION_SLICES` evenly spaced axial slices (all of them when it
has fewer), whole (the feature network is fully convolutional with global pooling, so no crop or resize),
embedded by :func:`~ctharmonize.metrics.feature_embeddings` in the shipped ``CTKernelFeatures`` space (last
stage, 128-d; HU mapped to [-1, 1] as the generators see it). The target set is embedded the same way:
paired paths: the same subjects' soft images; unpaired paths: every target-kernel image of the split.

* ``fid_ct``: :func:`~ctharmonize.metrics.frechet_distance` of the two embedding sets (what
  :func:`~ctharmonize.metrics.fid` computes on the slices, real = target first).
* ``kid_ct``: :func:`~ctharmonize.metrics.kernel_inception_distance` mean (what :func:`~ctharmonize.metrics.kid`
  computes: 100 subsets of min(1000, N) rows, ``seed`` fixed).
* ``radiomics_aligned_pct``: % of the radiomic features with a defined Welch test whose harmonized and target
  per-scan values are not significantly different (p >= :data:`~ctharmonize.metrics.ALIGNMENT_ALPHA`, 0.01;
  :func:`~ctharmonize.metrics.welch_pvalues`, i.e. ``feature_alignment(...).percent_same_after``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ctharmonize.metrics.feature_alignment import ALIGNMENT_ALPHA, welch_pvalues
from ctharmonize.metrics.frechet_distance import frechet_distance
from ctharmonize.metrics.kernel_inception_distance import kernel_inception_distance

__all__ = ["DISTRIBUTION_COLUMNS", "DISTRIBUTION_SLICES", "SliceEmbedder", "aligned_percent",
           "distribution_columns", "sampled_slices"]

DISTRIBUTION_COLUMNS = ("fid_ct", "kid_ct", "radiomics_aligned_pct")
#: axial slices per volume (evenly spaced, ends included)
DISTRIBUTION_SLICES = 8


def sampled_slices(n_slices: int, count: int = DISTRIBUTION_SLICES) -> np.ndarray:
    """Indices of ``min(count, n_slices)`` evenly spaced slices of a volume of ``n_slices`` (first and last
    included): ``round(linspace(0, n_slices - 1, k))``."""
    if count < 1:
        raise ValueError(f"distribution slices must be >= 1, got {count}")
    k = min(int(count), int(n_slices))
    return np.unique(np.rint(np.linspace(0, n_slices - 1, k)).astype(int))


class SliceEmbedder:
    """CT-feature embeddings (k, 128) of the :func:`sampled_slices` of an HU volume (Z, Y, X); the shipped
    network is loaded on first use (on ``device``, default CPU). ``network``: instead, a user's Inception-style
    network file (:func:`~ctharmonize.metrics.load_inception_features`: TorchScript or ``torch.export``, (B, 3,
    299, 299) → (B, D)) for the standard FID."""

    def __init__(self, count: int = DISTRIBUTION_SLICES, device: str | None = None, batch_size: int = 8,
                 network: str | None = None) -> None:
        self.count = int(count)
        self.device = device
        self.batch_size = int(batch_size)
        self.network = network
        self._net: Any = None

    def __call__(self, hu: np.ndarray) -> np.ndarray:
        from ctharmonize.metrics.feature_fid import feature_embeddings

        if self._net is None:
            if self.network is not None:
                from ctharmonize.metrics.feature_fid import load_inception_features

                self._net = load_inception_features(self.network)
            else:
                from ctharmonize.networks.nets.ct_kernel_features import load_ct_kernel_features

                self._net = load_ct_kernel_features()
            if self.device is not None:
                self._net = self._net.to(self.device)
        hu = np.asarray(hu)
        slices = np.ascontiguousarray(hu[sampled_slices(hu.shape[0], self.count)], dtype=np.float32)[:, None]
        return feature_embeddings(slices, self._net, batch_size=self.batch_size, intensity="hu", device=self.device)


def distribution_columns(harmonized: Sequence[np.ndarray], target: Sequence[np.ndarray], seed: int = 0
                         ) -> dict[str, float]:
    """``fid_ct`` and ``kid_ct`` between the stacked per-scan embeddings of the harmonized scans and of the
    target scans (NaN when a set has fewer than 2 rows)."""
    out = {"fid_ct": math.nan, "kid_ct": math.nan}
    if not harmonized or not target:
        return out
    fake, real = np.concatenate(list(harmonized)), np.concatenate(list(target))
    if fake.shape[0] < 2 or real.shape[0] < 2:
        return out
    out["fid_ct"] = frechet_distance(real, fake)
    out["kid_ct"] = kernel_inception_distance(real, fake, seed=seed).mean
    return out


def aligned_percent(harmonized: Sequence[Mapping[str, float]], target: Sequence[Mapping[str, float]],
                    alpha: float = ALIGNMENT_ALPHA) -> float:
    """% of the features (names of the first target scan's) with a defined Welch test whose harmonized and
    target values (one per scan) are not significantly different (p >= ``alpha``); NaN when none is defined."""
    if not harmonized or not target:
        return math.nan
    p = welch_pvalues(list(harmonized), list(target), feature_names=list(target[0]))
    p = p[np.isfinite(p)]
    return 100.0 * float(np.sum(p >= alpha)) / p.size if p.size else math.nan
