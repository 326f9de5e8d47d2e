"""Locate a bundle folder when a config is run from the repository root or from the bundle itself."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["default_bundle_root"]


def default_bundle_root(name: str) -> str:
    """Absolute path of bundle ``name``: the current folder if it is that bundle, else ``./bundles/<name>``,
    else ``bundles/<name>`` of the source checkout holding this package, else the current folder."""
    cwd = Path.cwd()
    candidates = [cwd, cwd / "bundles" / name, Path(__file__).resolve().parents[3] / "bundles" / name]
    for c in candidates:
        if c.name == name and (c / "configs" / "metadata.json").is_file():
            return os.fspath(c.resolve())
    return os.fspath(cwd)
