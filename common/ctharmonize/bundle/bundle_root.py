"""A bundle's root folder, found from its own config file's location (so a copied bundle uses its own files)."""

from __future__ import annotations

import ast
import os
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["default_bundle_root"]


def _config_files(argv: Sequence[str]) -> list[str]:
    """The ``--config_file`` value(s) of a ``python -m monai.bundle run`` command line."""
    for i, arg in enumerate(argv):
        if arg == "--config_file" and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith("--config_file="):
            value = arg.split("=", 1)[1]
        else:
            continue
        try:
            parsed = ast.literal_eval(value)  # "['a.json', 'b.json']"
        except (ValueError, SyntaxError):
            parsed = value
        items = parsed if isinstance(parsed, (list, tuple)) else str(parsed).split(",")
        return [str(v).strip() for v in items if str(v).strip()]
    return []


def default_bundle_root(argv: Sequence[str] | None = None) -> str:
    """Absolute path of the bundle whose config is being run.

    The folder above ``configs/`` of the first ``--config_file`` on the command line (what
    ``python -m monai.bundle run --config_file B/configs/inference.json`` gives), else the current
    folder (model-zoo bundles' ``"bundle_root": "."``). ``--bundle_root DIR`` on the command line, or
    ``parser["bundle_root"]`` in Python, overrides it as usual.
    """
    files = _config_files(sys.argv if argv is None else argv)
    if files:
        folder = Path(files[0]).resolve().parent
        return os.fspath(folder.parent if folder.name == "configs" else folder)
    return os.fspath(Path.cwd().resolve())
