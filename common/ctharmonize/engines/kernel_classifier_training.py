"""Training of :class:`~ctharmonize.networks.CTKernelFeatures`: kernel classification on random CT crops.

Random square crops of lung and soft-tissue regions of the training-split slices of every kernel domain
are classified by kernel (cross-entropy, Adam, cosine learning rate). A few thousand iterations of
64×64 crops take minutes on one CPU thread. ``ctharmonize train-feature-net`` runs it from the shell.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ctharmonize.errors import ConfigError, InputError
from ctharmonize.io.atomic import atomic_path, check_writable
from ctharmonize.networks.nets.ct_kernel_features import CT_KERNEL_DOMAINS, DEFAULT_WIDTHS, CTKernelFeatures

__all__ = ["KernelCrops", "train_feature_net", "train_kernel_features"]

# tissue codes of the simulated/segmented label maps a crop may be centred on: lungs, pulmonary vessels,
# muscle, fat, other soft tissue, heart, aorta, esophagus (not bone, airway or nodules)
CROP_CENTER_LABELS = (1, 2, 4, 5, 6, 7, 9, 10, 11, 12)


def _read(path: str | os.PathLike) -> np.ndarray:
    from ctharmonize.io import read_volume

    return np.asarray(read_volume(path).array)


class KernelCrops:
    """Random square crops of lung/soft-tissue regions of the scans of a datalist, labelled by kernel.

    Every volume is read once (HU clipped to ``[hu_min, hu_max]`` and scaled to [-1, 1], float32, in
    memory). Candidate crop centres lie on a grid of step ``grid`` pixels: the centre's tissue code is one
    of :data:`CROP_CENTER_LABELS` (entry ``labels``; without one, the HU of the centre lies in
    [-950, 300]) and the four corners of the crop are inside the body (code != 0, or HU > -990).

    Args:
        datalist: datalist JSON path or entries (see :func:`~ctharmonize.data.datalist_entries`).
        split: keep this split's entries (None / "all": every entry).
        domains: kernel names, class ``k`` = ``domains[k]``; entries of other kernels are ignored.
        crop_size: crop side (pixels).
        max_slices: read at most this many evenly spaced slices per volume (None: all).
    """

    def __init__(self, datalist: str | os.PathLike | Sequence[Mapping[str, Any]], split: str | None = "train",
                 domains: Sequence[str] = CT_KERNEL_DOMAINS, crop_size: int = 64, hu_min: float = -1024.0,
                 hu_max: float = 3072.0, grid: int = 8, max_slices: int | None = None):
        from ctharmonize.data import datalist_entries

        entries, source = datalist_entries(datalist, split)
        self.domains = list(domains)
        self.crop_size = int(crop_size)
        entries = [e for e in entries if e.get("kernel") in self.domains]
        missing = [d for d in self.domains if not any(e["kernel"] == d for e in entries)]
        if missing:
            raise ConfigError(source, f"no {split or 'any'}-split scans of kernel(s) {', '.join(missing)}")
        self.entries = entries
        self.images: list[np.ndarray] = []
        self.centers: list[np.ndarray] = []
        self.classes: list[int] = []
        labels_cache: dict[str, np.ndarray] = {}
        half = self.crop_size // 2
        for entry in entries:
            hu = _read(entry["image"]).astype(np.float32, copy=False)
            if hu.ndim == 2:
                hu = hu[None]
            keep = np.arange(hu.shape[0])
            if max_slices is not None and hu.shape[0] > max_slices:
                keep = np.unique(np.linspace(0, hu.shape[0] - 1, max_slices).round().astype(int))
            hu = hu[keep]
            if hu.shape[1] < self.crop_size or hu.shape[2] < self.crop_size:
                raise InputError(entry["image"], f"slices {hu.shape[1:]} are smaller than the crop size {crop_size}")
            if entry.get("labels"):
                key = str(entry["labels"])
                if key not in labels_cache:
                    labels_cache[key] = np.rint(_read(key)).astype(np.int16)
                lab = labels_cache[key]
                lab = (lab[None] if lab.ndim == 2 else lab)[keep]
                if lab.shape != hu.shape:
                    raise InputError(key, f"label map {lab.shape} does not match the image {hu.shape}")
                center_ok = np.isin(lab, CROP_CENTER_LABELS)
                inside = lab != 0
            else:
                center_ok = (hu >= -950) & (hu <= 300)
                inside = hu > -990
            ys = np.arange(half, hu.shape[1] - self.crop_size + half + 1, grid)
            xs = np.arange(half, hu.shape[2] - self.crop_size + half + 1, grid)
            yy, xx = np.meshgrid(ys, xs, indexing="ij")
            y0, x0 = yy - half, xx - half
            y1, x1 = y0 + self.crop_size - 1, x0 + self.crop_size - 1
            ok = (center_ok[:, yy, xx] & inside[:, y0, x0] & inside[:, y0, x1]
                  & inside[:, y1, x0] & inside[:, y1, x1])
            s, i, j = np.nonzero(ok)
            if s.size == 0:
                raise InputError(entry["image"], "no lung or soft-tissue region large enough for a crop")
            self.centers.append(np.stack([s, yy[i, j], xx[i, j]], 1).astype(np.int32))
            scaled = (np.clip(hu, hu_min, hu_max) - hu_min) / (hu_max - hu_min) * 2.0 - 1.0
            self.images.append(scaled.astype(np.float32))
            self.classes.append(self.domains.index(entry["kernel"]))
        self.by_class = [[v for v, c in enumerate(self.classes) if c == k] for k in range(len(self.domains))]

    def crop(self, volume: int, center: Sequence[int]) -> np.ndarray:
        """(crop_size, crop_size) crop of ``volume`` around ``center`` = (slice, y, x)."""
        s, y, x = (int(v) for v in center)
        half = self.crop_size // 2
        return self.images[volume][s, y - half:y - half + self.crop_size, x - half:x - half + self.crop_size]

    def sample(self, rng: np.random.Generator, batch_size: int, augment: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """A class-balanced random batch: images (B, 1, c, c) in [-1, 1] and kernel classes (B,) int64.

        ``augment``: random flips and 90° rotations (kernel texture is isotropic in-plane).
        """
        crops, labels = [], []
        first = int(rng.integers(len(self.domains)))
        for b in range(batch_size):
            k = (first + b) % len(self.domains)
            v = self.by_class[k][int(rng.integers(len(self.by_class[k])))]
            center = self.centers[v][int(rng.integers(len(self.centers[v])))]
            crop = self.crop(v, center)
            if augment:
                crop = np.rot90(crop, int(rng.integers(4)))
                if rng.integers(2):
                    crop = crop[:, ::-1]
            crops.append(np.ascontiguousarray(crop))
            labels.append(k)
        return torch.from_numpy(np.stack(crops)[:, None]), torch.tensor(labels, dtype=torch.int64)

    def fixed_crops(self, per_volume: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
        """``per_volume`` random crops of every volume (reproducible with ``seed``): images (N, 1, c, c),
        classes (N,) and the volume index of each crop."""
        rng = np.random.default_rng(seed)
        crops, labels, volumes = [], [], []
        for v, centers in enumerate(self.centers):
            pick = rng.choice(len(centers), size=min(per_volume, len(centers)), replace=False)
            for c in pick:
                crops.append(self.crop(v, centers[c]))
                labels.append(self.classes[v])
                volumes.append(v)
        return torch.from_numpy(np.stack(crops)[:, None].copy()), torch.tensor(labels, dtype=torch.int64), volumes


def train_kernel_features(
    datalist: str | os.PathLike | Sequence[Mapping[str, Any]],
    out: str | os.PathLike | None,
    split: str | None = "train",
    domains: Sequence[str] = CT_KERNEL_DOMAINS,
    widths: Sequence[int] = DEFAULT_WIDTHS,
    iterations: int = 1500,
    batch_size: int = 32,
    crop_size: int = 64,
    lr: float = 2e-3,
    seed: int = 0,
    hu_min: float = -1024.0,
    hu_max: float = 3072.0,
    max_slices: int | None = None,
    overwrite: bool = False,
    log_every: int = 100,
    progress: bool = True,
) -> tuple[CTKernelFeatures, dict[str, Any]]:
    """Train a :class:`CTKernelFeatures` to classify the kernel of random crops; write its weights to ``out``.

    Args:
        datalist: datalist JSON path or entries (``image``, ``kernel``, optional ``labels`` tissue map).
        out: weights file written atomically as ``{"state_dict", "domains", "widths", "info"}`` (what
            :func:`~ctharmonize.networks.load_ct_kernel_features` reads); refused if it exists unless
            ``overwrite`` (and then only an unchanged earlier ctharmonize output). None: write nothing.
        split: datalist split to train on.
        domains, widths: classes and stage widths of the network.
        iterations, batch_size, crop_size, lr: optimisation (Adam, cosine-decayed lr, class-balanced
            batches of ``crop_size``² crops with flips/90° rotations).
        seed: seeds torch (initialisation) and the crop sampler: the run is reproducible on one thread.
        hu_min, hu_max: HU window mapped to [-1, 1].
        max_slices: evenly spaced slices read per volume (None: all).

    Returns:
        (the trained network, frozen and in eval mode; an info dict: losses, accuracy, time, settings).
    """
    if out is not None:
        check_writable(out, overwrite)  # fail before minutes of training
    if iterations < 1 or batch_size < 1:
        raise ConfigError(None, "iterations and batch_size must be positive")
    start = time.perf_counter()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    crops = KernelCrops(datalist, split, domains, crop_size, hu_min, hu_max, max_slices=max_slices)
    load_s = time.perf_counter() - start
    model = CTKernelFeatures(domains, widths)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses: list[float] = []
    correct = 0
    seen = 0
    for it in range(iterations):
        for group in optimizer.param_groups:
            group["lr"] = lr * 0.5 * (1.0 + math.cos(math.pi * it / iterations))
        x, y = crops.sample(rng, batch_size)
        logits = model.logits(x)
        loss = F.cross_entropy(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
        if it >= iterations - max(1, iterations // 10):  # training accuracy over the last 10 %
            correct += int((logits.argmax(1) == y).sum())
            seen += len(y)
        if progress and log_every and ((it + 1) % log_every == 0 or it + 1 == iterations):
            recent = losses[-log_every:]
            print(f"iteration {it + 1}/{iterations}: loss {sum(recent) / len(recent):.4f} "
                  f"({time.perf_counter() - start:.0f} s)", file=sys.stderr, flush=True)
    model.requires_grad_(False)
    model.eval()
    window = max(1, min(50, iterations // 5))
    info: dict[str, Any] = {
        "datalist": str(datalist) if isinstance(datalist, str | os.PathLike) else "entries",
        "split": split, "scans": len(crops.entries), "iterations": iterations, "batch_size": batch_size,
        "crop_size": crop_size, "lr": lr, "seed": seed, "hu_window": [hu_min, hu_max],
        "first_loss": float(np.mean(losses[:window])), "final_loss": float(np.mean(losses[-window:])),
        "final_train_accuracy": correct / max(seen, 1), "load_s": round(load_s, 1),
        "wall_s": round(time.perf_counter() - start, 1), "torch": str(torch.__version__),
        "threads": torch.get_num_threads(),
    }
    if out is not None:
        payload = {"state_dict": model.state_dict(), "domains": list(model.domains),
                   "widths": list(model.widths), "info": info}
        with atomic_path(out, overwrite=overwrite, record=True) as tmp:
            torch.save(payload, tmp)
    info["losses"] = losses
    return model, info


def train_feature_net(datalist: str, out: str, split: str = "train", iterations: int = 1500, batch_size: int = 32,
                      crop_size: int = 64, lr: float = 2e-3, seed: int = 0, max_slices: int | None = None,
                      overwrite: bool = False, quiet: bool = False) -> str:
    """Train the CT kernel feature network (the Gram-loss feature network) on a datalist's scans.

    Args:
        datalist: datalist JSON (entries with image, kernel and, preferably, labels tissue maps) holding
            scans of the four kernels siemens_b50f, siemens_b30f, ge_bone, ge_standard.
        out: output weights file (.pt, written atomically); load it with
            ``CTKernelFeatures.pretrained(out)``.
        split: datalist split to train on.
        iterations: optimisation steps (1500 take about 7 minutes on one CPU thread).
        batch_size: crops per step.
        crop_size: crop side in pixels.
        lr: Adam learning rate (cosine-decayed).
        seed: random seed (initialisation and crop sampling).
        max_slices: evenly spaced slices read per volume (default all).
        overwrite: replace an earlier ctharmonize output at ``out``.
        quiet: no progress output.
    """
    _, info = train_kernel_features(datalist, out, split=split, iterations=iterations, batch_size=batch_size,
                                    crop_size=crop_size, lr=lr, seed=seed, max_slices=max_slices,
                                    overwrite=overwrite, progress=not quiet)
    if not quiet:
        print(f"{out}: final loss {info['final_loss']:.4f}, training accuracy {info['final_train_accuracy']:.3f}, "
              f"{info['wall_s']:.0f} s", file=sys.stderr)
    return str(Path(out))
