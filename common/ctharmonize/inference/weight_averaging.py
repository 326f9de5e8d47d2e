"""Average the network weights of several checkpoints (checkpoint averaging, a sampled weight EMA).

GAN generators jump between epochs; the mean of a few neighbouring epochs' weights is often a
steadier model than any one of them (Izmailov et al. 2018, stochastic weight averaging). The average
is one more candidate: validate it like an epoch (``select_checkpoint``) before you ship it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from ctharmonize.errors import ConfigError, WeightsError
from ctharmonize.io.atomic import atomic_path
from ctharmonize.io.network_weights import read_network_state

__all__ = ["average_network_weights"]


def average_network_weights(paths: Sequence[str | os.PathLike], out: str | os.PathLike | None = None,
                            overwrite: bool = False, networks: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Element-wise mean of the network state dicts in ``paths`` (``model.pt`` files, selector candidates,
    or training checkpoints read with ``networks``, the bundle's ``checkpoint_networks``; see
    :func:`~ctharmonize.io.network_weights.read_network_state`).

    Floating tensors are averaged in float64 and cast back; integer tensors (counters) must be equal and
    are copied. Every file must hold the same keys and shapes. With ``out`` the result is also written
    there atomically (refused if it exists, unless ``overwrite``). Returns the averaged state dict.
    """
    if len(paths) < 1:
        raise ConfigError(None, "average_network_weights needs at least one weights file")
    states = [read_network_state(p, networks) for p in paths]
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
