"""Network weights from a file: a plain state dict or a training checkpoint, named by the bundle's config.

Two file forms, recognised by their format, never by the architecture's key names:

* a **plain state dict** of the network (what ``model.pt``, the checkpoint selector's candidates and
  ``ctharmonize average-weights`` write: the translator's own ``state_dict()``);
* a **dict of state dicts by network name**: a ``GANTrainer`` training checkpoint (``network/<name>``
  entries next to ``engine``, ``optimizer/...``) or ``{name: state}``. It is assembled with ``networks =
  {network name in the file: submodule prefix in the module}``, which the bundle config states as
  ``checkpoint_networks``: multipath ``{"G": ""}`` (the generator is the translator), CycleGAN
  ``{"G_AB": "G_AB", "G_BA": "G_BA"}``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ctharmonize.errors import WeightsError
from ctharmonize.io.weights_file import load_weights_file

__all__ = ["checkpoint_network_names", "load_network_weights", "network_state", "read_network_state"]

_MISSING = "weights file not found (train the bundle or copy the trained model.pt there)"


def _strip_module(state: Mapping[str, Any]) -> dict[str, Any]:
    """Drop a DataParallel/DDP ``module.`` prefix carried by every key; an ``AveragedModel`` (EMA) state,
    ``module.*`` plus its ``n_averaged`` counter, gives the averaged module's state."""
    keys = [k for k in state if k != "n_averaged"] if "n_averaged" in state else list(state)
    if keys and all(isinstance(k, str) and k.startswith("module.") for k in keys):
        return {k[len("module."):]: state[k] for k in keys}
    return dict(state)


def _is_plain(obj: Mapping[str, Any]) -> bool:
    return bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def checkpoint_network_names(obj: Mapping[str, Any]) -> list[str]:
    """Names of the networks a dict-of-state-dicts file holds (``network/<name>`` or ``<name>`` entries)."""
    names = [k[len("network/"):] for k in obj if isinstance(k, str) and k.startswith("network/")]
    if names:
        return names
    return [k for k, v in obj.items() if isinstance(v, Mapping) and _is_plain(v)]


def network_state(obj: Mapping[str, Any], networks: Mapping[str, str] | None = None,
                  path: str | os.PathLike | None = None) -> dict[str, Any]:
    """The module state dict held by a loaded weights file ``obj`` (see the module docstring).

    Args:
        obj: the file's content (``torch.load``).
        networks: ``{network name in the file: submodule prefix}`` ("" = the module itself); needed
            only for dict-of-state-dicts files.
        path: the file, named in errors.

    Raises:
        WeightsError: one line naming ``path``: an empty file, a network the file lacks, or a
            training checkpoint without a ``networks`` mapping.
    """
    if not isinstance(obj, Mapping) or not obj:
        raise WeightsError(path, "the weights file holds no tensors")
    if _is_plain(obj):
        return _strip_module(obj)
    held = checkpoint_network_names(obj)
    if not held:
        shown = ", ".join(map(str, list(obj)[:8]))
        raise WeightsError(path, f"holds no network weights: neither a state dict nor network entries (top-level keys: {shown})")
    if not networks:
        shown = ", ".join(held[:8]) or ", ".join(map(str, list(obj)[:8]))
        raise WeightsError(path, f"a checkpoint of several networks ({shown}), not a plain state dict; the bundle "
                                 "config's checkpoint_networks must say which of them the model is")
    state: dict[str, Any] = {}
    for name, prefix in networks.items():
        entry = obj.get(f"network/{name}", obj.get(name))
        if not isinstance(entry, Mapping) or not _is_plain(entry):
            raise WeightsError(path, f"holds no network {name!r} (it holds: {', '.join(held) or 'none'})")
        lead = f"{prefix}." if prefix else ""
        state.update({lead + k: v for k, v in _strip_module(entry).items()})
    return state


def read_network_state(path: str | os.PathLike, networks: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Load ``path`` safely (CPU, ``weights_only``) and return the module state dict it holds
    (:func:`network_state`). One-line :class:`WeightsError` naming the file."""
    return network_state(load_weights_file(path, _MISSING), networks, path)


def _top(key: str) -> str:
    return ".".join(key.split(".")[:2])


def load_network_weights(network: nn.Module, path: str | os.PathLike,
                         networks: Mapping[str, str] | None = None) -> nn.Module:
    """Load ``path`` into ``network`` (strict) and return ``network``.

    Raises :class:`WeightsError` naming the file when it is missing, unreadable, or made for another
    architecture: the message counts keys of another shape, missing and unexpected keys, with the first
    of each and the submodules concerned (e.g. ``encoders.ge_lung`` when a domain differs).
    """
    state = read_network_state(path, networks)
    own = network.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in own.items()
              if k in state and tuple(state[k].shape) != tuple(v.shape)]
    if missing or unexpected or shapes:
        parts = []
        if shapes:
            parts.append(f"{len(shapes)} tensors of another shape (e.g. {shapes[0]}; another width?)")
        for what, keys in (("missing", missing), ("unexpected", unexpected)):
            if keys:
                where = sorted({_top(k) for k in keys})
                parts.append(f"{len(keys)} {what} keys (e.g. {keys[0]}; in {', '.join(where[:4])})")
        raise WeightsError(path, f"weights do not match the {type(network).__name__}: " + "; ".join(parts))
    network.load_state_dict(state)
    return network
