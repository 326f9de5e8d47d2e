"""Average the generator weights of several checkpoints (checkpoint averaging, a sampled weight EMA).

GAN generators jump between epochs; the mean of a few neighbouring epochs' weights is often a
steadier model than any one of them (Izmailov et al. 2018, stochastic weight averaging). The average
is one more candidate: validate it like an epoch (``select_checkpoint``) before you ship it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch

from ctharmonize.errors import ConfigError, WeightsError
from ctharmonize.inference.generator_weights import read_generator_state
from ctharmonize.io.atomic import atomic_path

__all__ = ["average_generator_weights"]


def average_generator_weights(paths: Sequence[str | os.PathLike], out: str | os.PathLike | None = None,
                              overwrite: bool = False) -> dict[str, Any]:
    """Element-wise mean of the generator state dicts in ``paths`` (``model.pt`` files, selector candidates
    or training checkpoints; see :func:`~ctharmonize.inference.read_generator_state`).

    Floating tensors are averaged in float64 and cast back; integer tensors (counters) must be equal and
    are copied. Every file must hold the same keys and shapes. With ``out`` the result is also written
    there atomically (refused if it exists, unless ``overwrite``). Returns the averaged state dict.
    """
    if len(paths) < 1:
        raise ConfigError(None, "average_generator_weights needs at least one weights file")
    states = [read_generator_state(p) for p in paths]
    first, first_path = states[0], paths[0]
    result: dict[str, Any] = {}
    for state, path in zip(states[1:], paths[1:], strict=True):
        if set(state) != set(first):
            diff = sorted(set(state) ^ set(first))[:3]
            raise WeightsError(path, f"holds other keys than {first_path} (e.g. {', '.join(diff)}); not the same architecture")
        for key, value in state.items():
            if tuple(value.shape) != tuple(first[key].shape):
                raise WeightsError(path, f"{key} has shape {tuple(value.shape)} but {tuple(first[key].shape)} in {first_path}")
    for key, value in first.items():
        if value.is_floating_point():
            mean = torch.stack([s[key].to(torch.float64) for s in states]).mean(0)
            result[key] = mean.to(value.dtype)
        else:
            for state, path in zip(states[1:], paths[1:], strict=True):
                if not torch.equal(state[key], value):
                    raise WeightsError(path, f"integer tensor {key} differs from {first_path}; cannot average it")
            result[key] = value.clone()
    if out is not None:
        with atomic_path(out, overwrite=overwrite, record=True) as tmp:
            torch.save(result, tmp)
    return result
