"""Read multipath generator weights from a checkpoint file (plain state dict or a training checkpoint)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from torch import nn

from ctharmonize.errors import WeightsError
from ctharmonize.io.weights_file import load_weights_file

__all__ = ["GENERATOR_KEYS", "extract_generator_state", "read_generator_state", "load_generator_weights"]

#: keys under which a training checkpoint may hold the generator, tried in this order
GENERATOR_KEYS = ("G", "generator", "network/G", "network/generator", "state_dict", "model", "network")

_DOMAIN = re.compile(r"^(?:encoders|decoders)\.([^.]+)\.")


def _is_generator_state(obj: Any) -> bool:
    return (isinstance(obj, Mapping) and any(isinstance(k, str) and (k.startswith("latent.") or k.startswith("module.latent."))
                                             for k in obj))


def _strip_module(state: Mapping[str, Any]) -> dict[str, Any]:
    if state and all(k.startswith("module.") for k in state):
        return {k[len("module."):]: v for k, v in state.items()}
    return dict(state)


def extract_generator_state(ckpt: Mapping[str, Any], path: str | os.PathLike | None = None) -> dict[str, Any]:
    """The generator state dict inside ``ckpt``.

    Accepts a plain ``MultipathGenerator`` state dict, or one nested under a key of
    :data:`GENERATOR_KEYS` (e.g. ``{"G": ..., "D": ...}`` or the trainer's ``{"network/G": ...}``), or the
    only nested dict holding ``latent.*`` keys; a DataParallel ``module.`` prefix is removed.
    Raises :class:`WeightsError` naming ``path`` when no generator is found.
    """
    if not isinstance(ckpt, Mapping):
        raise WeightsError(path, f"checkpoint is a {type(ckpt).__name__}, expected a state dict")
    if _is_generator_state(ckpt):
        return _strip_module(ckpt)
    for key in GENERATOR_KEYS:
        if _is_generator_state(ckpt.get(key)):
            return _strip_module(ckpt[key])
    nested = [k for k, v in ckpt.items() if _is_generator_state(v)]
    if len(nested) == 1:
        return _strip_module(ckpt[nested[0]])
    shown = ", ".join(map(str, list(ckpt)[:8])) or "(empty)"
    problem = (f"several entries hold generator weights ({', '.join(map(str, nested))}); save only one"
               if nested else f"no multipath generator weights (no 'latent.*' keys) in the checkpoint; top-level keys: {shown}")
    raise WeightsError(path, problem)


def read_generator_state(path: str | os.PathLike) -> dict[str, Any]:
    """``torch.load`` (CPU, ``weights_only``) + :func:`extract_generator_state`; one-line errors."""
    ckpt = load_weights_file(path, "weights file not found (train the bundle or copy the trained model.pt there)")
    return extract_generator_state(ckpt, path)


def load_generator_weights(generator: nn.Module, path: str | os.PathLike) -> nn.Module:
    """Load ``path`` into ``generator`` (strict) and return it.

    Raises :class:`WeightsError` naming the file when it is missing, unreadable, or made for another
    architecture (lists domains it lacks or has extra, and the first mismatching keys/shapes).
    """
    state = read_generator_state(path)
    own = generator.state_dict()
    ckpt_domains = sorted({m.group(1) for k in state if (m := _DOMAIN.match(k))})
    net_domains = sorted({m.group(1) for k in own if (m := _DOMAIN.match(k))})
    if ckpt_domains != net_domains:
        raise WeightsError(path, f"weights are for domains {ckpt_domains} but the network has {net_domains}")
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in own.items()
              if k in state and hasattr(state[k], "shape") and tuple(state[k].shape) != tuple(v.shape)]
    if missing or unexpected or shapes:
        parts = []
        if shapes:
            parts.append(f"{len(shapes)} tensors of another shape (e.g. {shapes[0]}; different ngf?)")
        if missing:
            parts.append(f"{len(missing)} missing keys (e.g. {missing[0]}; different n_blocks?)")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (e.g. {unexpected[0]})")
        raise WeightsError(path, "weights do not match the network: " + "; ".join(parts))
    generator.load_state_dict(state)
    return generator
