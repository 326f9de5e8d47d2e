"""Merge the weights of separately trained parts of one model (e.g. the pairs of ``CycleGANPairs``) into one file."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from ctharmonize.errors import ConfigError, WeightsError
from ctharmonize.io.atomic import atomic_path
from ctharmonize.io.network_weights import read_network_state

__all__ = ["merge_network_weights"]


def merge_network_weights(paths: Sequence[str | os.PathLike], out: str | os.PathLike | None = None,
                          overwrite: bool = False, networks: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The union of the network state dicts in ``paths`` (read as by
    :func:`~ctharmonize.io.network_weights.read_network_state`); no key may appear in two files.

    With ``out`` the result is written there atomically (refused if it exists, unless ``overwrite``).
    Raises a one-line :class:`WeightsError` naming the file whose keys overlap an earlier one.
    """
    if len(paths) < 2:
        raise ConfigError(None, "merge_network_weights needs at least two weights files")
    merged: dict[str, Any] = {}
    owner: dict[str, str | os.PathLike] = {}
    for path in paths:
        state = read_network_state(path, networks)
        shared = sorted(set(state) & set(merged))
        if shared:
            raise WeightsError(path, f"holds {len(shared)} keys that {owner[shared[0]]} also holds (e.g. {shared[0]}); "
                                     "merge parts of a model, not copies of one")
        merged.update(state)
        owner.update(dict.fromkeys(state, path))
    if out is not None:
        with atomic_path(out, overwrite=overwrite, record=True) as tmp:
            torch.save(merged, tmp)
    return merged
