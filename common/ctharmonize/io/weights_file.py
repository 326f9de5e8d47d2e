"""Read a torch weights/checkpoint file safely, with one-line errors naming the file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ctharmonize.errors import WeightsError

__all__ = ["load_weights_file"]


def load_weights_file(path: str | os.PathLike, missing: str = "weights file not found",
                      unwrap_state_dict: bool = False) -> dict[str, Any]:
    """``torch.load`` on CPU with ``weights_only=True`` (no arbitrary unpickling).

    Args:
        path: a ``.pt``/``.pth`` file.
        missing: the problem reported when the file does not exist (say where to get it).
        unwrap_state_dict: return ``obj["state_dict"]`` when the file nests it that way.

    Raises:
        WeightsError: missing, unreadable, or not a dictionary.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise WeightsError(path, missing)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # any unpickling / IO failure means a bad weights file
        first = str(err).splitlines()[0] if str(err) else ""
        raise WeightsError(path, f"cannot read weights from the file ({type(err).__name__}: {first})") from err
    if unwrap_state_dict and isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise WeightsError(path, f"expected a dictionary of tensors, found {type(obj).__name__}")
    return obj
