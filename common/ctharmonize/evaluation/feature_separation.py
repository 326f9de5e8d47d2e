"""How well a feature network's Gram matrices separate soft from sharp kernels on held-out scans.

The check behind the default Gram-loss feature network (:class:`~ctharmonize.networks.CTKernelFeatures`,
``docs/feature_network.md``); any network whose ``forward`` returns a list of feature maps
(e.g. :class:`~ctharmonize.networks.VGGFeatures`) can be measured the same way.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ctharmonize.losses.gram_matrix import gram_matrix

__all__ = ["SHARP_KERNELS", "SOFT_KERNELS", "gram_vectors", "kernel_feature_separation"]

SOFT_KERNELS = ("siemens_b30f", "ge_standard")
SHARP_KERNELS = ("siemens_b50f", "ge_bone")


@torch.no_grad()
def gram_vectors(model: nn.Module, images: torch.Tensor, normalize: str = "size",
                 batch_size: int = 32) -> tuple[list[np.ndarray], torch.Tensor | None]:
    """Per-stage flattened Gram matrices of ``model(images)``: a list (one per feature map) of (N, C_l²)
    float64 arrays, and the class scores (N, n) when ``model`` has ``logits_from_features`` (else None)."""
    stages: list[list[np.ndarray]] = []
    logits = []
    head = getattr(model, "logits_from_features", None)
    for start in range(0, len(images), batch_size):
        feats = model(images[start:start + batch_size])
        if not stages:
            stages = [[] for _ in feats]
        for s, f in enumerate(feats):
            stages[s].append(gram_matrix(f, normalize).flatten(1).double().numpy())
        if head is not None:
            logits.append(head(feats))
    return [np.concatenate(s) for s in stages], (torch.cat(logits) if logits else None)


def _nearest_centroid(train: np.ndarray, train_y: np.ndarray, test: np.ndarray) -> np.ndarray:
    centroids = np.stack([train[train_y == c].mean(0) for c in (0, 1)])
    dist = ((test[:, None, :] - centroids[None]) ** 2).sum(-1)
    return dist.argmin(1)


def _separation(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(centroid distance / mean distance to the own class centroid, mean cross-class / mean same-class
    pairwise distance) of the rows of ``x`` with binary classes ``y``."""
    c = [x[y == k].mean(0) for k in (0, 1)]
    within = np.mean([np.linalg.norm(x[y == k] - c[k], axis=1).mean() for k in (0, 1)])
    between = float(np.linalg.norm(c[0] - c[1]))
    sq = (x ** 2).sum(1)
    d = np.sqrt(np.maximum(sq[:, None] + sq[None] - 2 * x @ x.T, 0.0))
    same = y[:, None] == y[None]
    off = ~np.eye(len(y), dtype=bool)
    return between / max(within, 1e-30), float(d[~same].mean() / max(d[same & off].mean(), 1e-30))


def kernel_feature_separation(
    model: nn.Module,
    datalist: str | os.PathLike | Sequence[Mapping[str, Any]],
    split: str | None = "test",
    fit_datalist: str | os.PathLike | Sequence[Mapping[str, Any]] | None = None,
    fit_split: str | None = "train",
    crop_size: int = 96,
    crops_per_volume: int = 32,
    soft: Sequence[str] = SOFT_KERNELS,
    sharp: Sequence[str] = SHARP_KERNELS,
    normalize: str = "size",
    seed: int = 0,
    max_slices: int | None = None,
) -> dict[str, Any]:
    """Kernel classification and soft-vs-sharp Gram separation of ``model`` on ``datalist``'s ``split``.

    ``crops_per_volume`` random ``crop_size``² lung/soft-tissue crops of every scan (as
    :class:`~ctharmonize.engines.kernel_classifier_training.KernelCrops` draws them, seeded) are passed
    through ``model``; each crop is described by the vector of its per-stage Gram matrices
    (:func:`~ctharmonize.losses.gram_matrix.gram_matrix`, ``normalize``), each stage divided by the RMS
    norm of that stage over the fitting crops so that every stage weighs the same.

    Args:
        model: ``forward`` → list of feature maps; with ``logits_from_features`` and ``domains``
            (:class:`~ctharmonize.networks.CTKernelFeatures`) the kernel accuracy is measured too.
        datalist, split: the evaluated (held-out) scans.
        fit_datalist, fit_split: scans the soft/sharp centroids are fitted on (default: ``datalist``
            itself, which then must not share scans with ``split``).
        soft, sharp: kernel names of the two classes.

    Returns:
        dict with ``crops`` (evaluated), ``fit_crops``, ``sharpness_accuracy`` (nearest centroid of the
        Gram vector, centroids from the fitting crops) and ``sharpness_accuracy_per_stage``,
        ``between_within_ratio`` (distance of the two class centroids / mean distance of a crop to its
        class centroid, on the evaluated crops) and ``pairwise_ratio`` (mean soft-sharp / mean same-class
        pairwise Gram distance), each also ``..._per_stage``; with a classifier also
        ``kernel_accuracy`` (crops), ``kernel_accuracy_per_kernel``, ``classifier_sharpness_accuracy``
        (summed class probabilities of the sharp kernels > 0.5), ``scan_accuracy`` (mean class
        scores over a scan's crops) and ``confusion`` ({true: {predicted: crops}}).
    """
    from ctharmonize.engines.kernel_classifier_training import KernelCrops  # lazy: keeps this package light

    model.eval()
    kernels = list(soft) + list(sharp)
    binary = {k: 0 for k in soft} | {k: 1 for k in sharp}
    evaluated = KernelCrops(datalist, split, kernels, crop_size, max_slices=max_slices)
    fitted = KernelCrops(fit_datalist if fit_datalist is not None else datalist, fit_split, kernels, crop_size,
                         max_slices=max_slices)
    x_eval, c_eval, vol_eval = evaluated.fixed_crops(crops_per_volume, seed)
    x_fit, c_fit, _ = fitted.fixed_crops(crops_per_volume, seed + 1)
    g_eval, logits = gram_vectors(model, x_eval, normalize)
    g_fit, _ = gram_vectors(model, x_fit, normalize)
    y_eval = np.array([binary[kernels[int(c)]] for c in c_eval])
    y_fit = np.array([binary[kernels[int(c)]] for c in c_fit])
    scale = [float(np.sqrt((g ** 2).sum(1).mean())) or 1.0 for g in g_fit]
    g_eval = [g / s for g, s in zip(g_eval, scale, strict=True)]
    g_fit = [g / s for g, s in zip(g_fit, scale, strict=True)]
    all_eval, all_fit = np.concatenate(g_eval, 1), np.concatenate(g_fit, 1)
    result: dict[str, Any] = {
        "crops": len(y_eval), "fit_crops": len(y_fit), "crop_size": crop_size, "normalize": normalize,
        "soft": list(soft), "sharp": list(sharp),
        "sharpness_accuracy": float((_nearest_centroid(all_fit, y_fit, all_eval) == y_eval).mean()),
        "sharpness_accuracy_per_stage": [float((_nearest_centroid(f, y_fit, e) == y_eval).mean())
                                         for f, e in zip(g_fit, g_eval, strict=True)],
    }
    ratio, pairwise = _separation(all_eval, y_eval)
    per_stage = [_separation(e, y_eval) for e in g_eval]
    result |= {"between_within_ratio": ratio, "pairwise_ratio": pairwise,
               "between_within_ratio_per_stage": [r for r, _ in per_stage],
               "pairwise_ratio_per_stage": [p for _, p in per_stage]}
    domains = list(getattr(model, "domains", []) or [])
    if logits is not None and all(k in domains for k in kernels):
        truth = [domains.index(kernels[int(c)]) for c in c_eval]
        truth_t = torch.tensor(truth)
        pred = logits.argmax(1)
        result["kernel_accuracy"] = float((pred == truth_t).float().mean())
        result["kernel_accuracy_per_kernel"] = {
            k: float((pred[truth_t == domains.index(k)] == domains.index(k)).float().mean()) for k in kernels}
        result["confusion"] = {k: {p: int(((truth_t == domains.index(k)) & (pred == domains.index(p))).sum())
                                   for p in domains} for k in kernels}
        sharp_idx = [domains.index(k) for k in sharp]
        p_sharp = logits.softmax(1)[:, sharp_idx].sum(1).numpy()
        result["classifier_sharpness_accuracy"] = float(((p_sharp > 0.5).astype(int) == y_eval).mean())
        vols = torch.tensor(vol_eval)
        scan_ok = [int(logits[vols == v].mean(0).argmax()) == domains.index(kernels[evaluated.classes[v]])
                   for v in range(len(evaluated.images))]
        result["scans"] = len(scan_ok)
        result["scan_accuracy"] = float(np.mean(scan_ok))
    return result
