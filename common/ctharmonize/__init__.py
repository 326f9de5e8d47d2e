"""ctharmonize: chest CT harmonization across reconstruction kernels and vendors.

Subpackages are imported lazily so that ``import ctharmonize`` stays light:
``io``, ``transforms``, ``data``, ``domains``, ``bundle``, ``simulation``, ``segmentation``,
``metrics``, ``evaluation``, ``networks``, ``losses``, ``engines``, ``datasets``, ``inference``.
"""

from __future__ import annotations

import importlib

from ctharmonize.errors import CTHarmonizeError

__version__ = "0.1.0"
__all__ = ["CTHarmonizeError", "__version__"]

_SUBMODULES = {
    "io", "transforms", "data", "domains", "bundle", "simulation", "segmentation",
    "metrics", "evaluation", "networks", "losses", "engines", "datasets", "inference", "errors",
}


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"ctharmonize.{name}")
    raise AttributeError(f"module 'ctharmonize' has no attribute {name!r}")
