"""Resolve and check a torch device name up front: one-line errors instead of tracebacks mid-run."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ctharmonize.errors import ConfigError

if TYPE_CHECKING:
    import torch

__all__ = ["resolve_device"]


def resolve_device(name: str | None) -> torch.device:
    """``None`` -> CUDA when available, else CPU; ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"`` checked
    against this machine. Raises :class:`ConfigError` naming ``--device`` for anything else."""
    import torch

    if name is None or str(name).strip() == "":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    text = str(name).strip()
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise ConfigError(None, f"--device {text!r} is not a device; use cpu, cuda or cuda:N") from None
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        if not torch.cuda.is_available():
            why = "this torch build has no CUDA" if torch.version.cuda is None else "no CUDA GPU is visible"
            raise ConfigError(None, f"--device {text!r} is not available: {why}; use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(None, f"--device {text!r} is not available: {torch.cuda.device_count()} CUDA "
                                    "device(s) visible")
        return device
    if device.type == "mps" and torch.backends.mps.is_available():
        return device
    raise ConfigError(None, f"--device {text!r} is not available on this machine; use cpu or cuda")
