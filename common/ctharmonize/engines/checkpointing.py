"""Checkpoint files of the GAN trainer: atomic saving, RNG state, finding and loading the latest.

Checkpoints are ``torch.save`` dictionaries written through :func:`ctharmonize.io.atomic_path`
(temporary sibling, then rename), only by rank 0. Names are ``checkpoint_<iteration>.pt``; per-epoch
weights for checkpoint selection are ``weights_epoch<epoch>.pt``.
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ignite.handlers.checkpoint import BaseSaveHandler

from ctharmonize.engines.distributed import is_main_process
from ctharmonize.errors import ConfigError
from ctharmonize.io.atomic import atomic_path
from ctharmonize.io.weights_file import load_weights_file

__all__ = ["AtomicTorchSaver", "RNGState", "find_latest_checkpoint", "list_checkpoints", "load_checkpoint"]

CHECKPOINT_RE = re.compile(r"^checkpoint_(\d+)\.pt$")


class AtomicTorchSaver(BaseSaveHandler):
    """ignite save handler: ``torch.save`` into ``dirname`` atomically, on rank 0 only.

    ``overwrite`` allows replacing a file of the same name (a resumed run re-saving an epoch).
    """

    def __init__(self, dirname: str | os.PathLike, overwrite: bool = True):
        self.dirname = Path(dirname)
        self.overwrite = overwrite

    def __call__(self, checkpoint: Mapping, filename: str, metadata: Mapping | None = None) -> None:
        if not is_main_process():
            return
        self.dirname.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.dirname / filename, overwrite=self.overwrite) as tmp:
            torch.save(dict(checkpoint), tmp)

    def remove(self, filename: str) -> None:
        if is_main_process():
            (self.dirname / filename).unlink(missing_ok=True)


class RNGState:
    """Python, NumPy, torch (and CUDA) global RNG states as a checkpointable object."""

    def state_dict(self) -> dict[str, Any]:
        name, keys, pos, has_gauss, cached = np.random.get_state()
        state = {
            "python": random.getstate(),
            "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                      "has_gauss": int(has_gauss), "cached": float(cached)},
            "torch": torch.get_rng_state(),
        }
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        py = state["python"]
        random.setstate((py[0], tuple(py[1]), py[2]))
        npy = state["numpy"]
        np.random.set_state(
            ("MT19937", npy["keys"].numpy().astype(np.uint32), npy["pos"], npy["has_gauss"], npy["cached"])
        )
        torch.set_rng_state(state["torch"])
        if "cuda" in state and torch.cuda.is_available():
            states = state["cuda"][: torch.cuda.device_count()]
            torch.cuda.set_rng_state_all(states)


def list_checkpoints(directory: str | os.PathLike) -> list[Path]:
    """Training checkpoints in ``directory`` sorted by iteration (oldest first)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := CHECKPOINT_RE.match(p.name))]
    return [p for _, p in sorted(found)]


def find_latest_checkpoint(directory: str | os.PathLike) -> Path | None:
    """The checkpoint with the highest iteration in ``directory``, or None."""
    found = list_checkpoints(directory)
    return found[-1] if found else None


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint dictionary on CPU (``weights_only=True``); one-line error if unreadable."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(path, "checkpoint to resume from does not exist")
    return load_weights_file(path)
