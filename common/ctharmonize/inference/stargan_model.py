"""A StarGAN v2 bundle's ``model.pt`` from a training checkpoint (EMA weights, mean styles), and the reference
slices of reference-guided inference."""

from __future__ import annotations

import os

import numpy as np
import torch

from ctharmonize.io.atomic import atomic_path
from ctharmonize.io.network_weights import read_network_state
from ctharmonize.networks.stargan_translator import StarGANTranslator

__all__ = ["reference_guided", "reference_slices", "stargan_translator_from_checkpoint", "write_stargan_model"]

_PARTS = ("G", "F", "E")


def stargan_translator_from_checkpoint(translator: StarGANTranslator, checkpoint: str | os.PathLike,
                                       use_ema: bool = True, n_styles: int = 10000,
                                       seed: int = 0) -> StarGANTranslator:
    """Load G, F, E of a ``StarGANTrainer`` checkpoint into ``translator`` (strict per network): the EMA copies
    (``ema/G``, ``ema/F``, ``ema/E``, AveragedModel states) when ``use_ema``, else ``network/<name>``; then
    compute its mean styles (``n_styles`` z, ``seed``). One-line :class:`~ctharmonize.errors.WeightsError`
    naming the file when a network is missing."""
    for name in _PARTS:
        key = f"ema/{name}" if use_ema else name
        state = read_network_state(checkpoint, {key: ""})
        getattr(translator, name).load_state_dict(state)
    return translator.set_mean_styles(n=n_styles, seed=seed)


def write_stargan_model(translator: StarGANTranslator, checkpoint: str | os.PathLike, path: str | os.PathLike,
                        use_ema: bool = True, n_styles: int = 10000, seed: int = 0, overwrite: bool = False) -> str:
    """:func:`stargan_translator_from_checkpoint`, then save ``translator.state_dict()`` atomically to ``path``
    (the bundle's ``models/model.pt``; refused if it exists unless ``overwrite``). Returns ``path``."""
    translator = stargan_translator_from_checkpoint(translator, checkpoint, use_ema, n_styles, seed)
    with atomic_path(path, overwrite=overwrite) as tmp:
        torch.save(translator.state_dict(), tmp)
    return str(path)


def reference_slices(path: str | os.PathLike, hu_min: float, hu_max: float, max_slices: int = 32) -> torch.Tensor:
    """Up to ``max_slices`` evenly spaced axial slices of a reference volume (HU) of the target kernel, clipped
    to [hu_min, hu_max] and scaled to [-1, 1]: (R, 1, H, W) float32 for
    :meth:`~ctharmonize.networks.StarGANTranslator.use_reference`."""
    from ctharmonize.io import read_volume

    hu = np.asarray(read_volume(path).array, dtype=np.float32)
    index = np.unique(np.linspace(0, hu.shape[0] - 1, min(max_slices, hu.shape[0])).round().astype(int))
    x = (np.clip(hu[index], hu_min, hu_max) - hu_min) / ((hu_max - hu_min) / 2.0) - 1.0
    return torch.from_numpy(x.astype(np.float32))[:, None]


def reference_guided(translator: StarGANTranslator, target: str, reference_path: str | os.PathLike | None,
                     hu_min: float, hu_max: float, max_slices: int = 32) -> StarGANTranslator:
    """Reference-guided mode of a bundle: ``target``'s style becomes the style encoder's mean over
    :func:`reference_slices` of ``reference_path`` (a scan of the target kernel), in memory; ``reference_path``
    None: ``translator`` unchanged (the stored mean styles). Returns ``translator``."""
    if reference_path is None:
        return translator
    return translator.use_reference(target, reference_slices(reference_path, hu_min, hu_max, max_slices))
