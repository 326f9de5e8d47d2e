"""Read a torch weights/checkpoint file safely, with one-line errors naming the file.

``torch.load(weights_only=True)`` unpickles only tensors and plain containers, so a ``model.pt``
whose pickle would call a function (``os.system``, ...) is refused without running it. Failures are
reported by what the file is: empty, not a zip archive or pickle, a truncated zip, or a pickle
that needs code; torch's own advice to retry with ``weights_only=False`` is not passed on.
"""

from __future__ import annotations

import os
import re
import warnings
import zipfile
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
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": one line on stderr, not two
            warnings.simplefilter("ignore")
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # any unpickling / IO failure means a bad weights file
        raise WeightsError(path, f"cannot read weights from the file: {_diagnose(path, err)}") from err
    if unwrap_state_dict and isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise WeightsError(path, f"expected a dictionary of tensors, found {type(obj).__name__}")
    return obj


_TORCH_BOILERPLATE = ("Weights only load failed", "Please file an issue", "Check the documentation", "In PyTorch 2.6",
                      "Re-running `torch.load`")


def _reason(err: Exception) -> str:
    """The specific line of a torch.load error, without its generic advice."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    specific = [line for line in lines if not line.startswith(_TORCH_BOILERPLATE)]
    text = (specific or lines or [""])[0]
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _diagnose(path: Path, err: Exception) -> str:
    """What is wrong with a file torch.load refused, judged from its first bytes and the error."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as os_err:
        return f"cannot open it ({os_err.strerror or os_err})"
    if not head:
        return "the file is empty (0 bytes)"
    blocked = re.search(r"GLOBAL ([\w.]+)", str(err))
    if blocked:  # torch.save's zip holds a pickle too
        return (f"refused to unpickle: its pickle calls {blocked.group(1)}, which is not a tensor or a container "
                "of tensors (unpickling it could run code); nothing in it was run")
    if head.startswith(b"PK"):
        if not zipfile.is_zipfile(path):
            return "truncated or damaged zip archive (no central directory); copy the weights file again"
        return f"a zip archive but not a complete torch.save file ({_reason(err)})"
    if head[:1] == b"\x80":  # pickle PROTO opcode: a legacy torch.save file or a plain pickle
        return f"a pickle that the safe (weights_only) loader cannot read ({_reason(err)}); nothing in it was run"
    return f"not a PyTorch weights file: it starts with {head!r}, neither a zip archive (torch.save) nor a pickle"
