"""Lets pydicom-seg 0.4.1 (required by monailabel 0.8.5) import under pydicom 3.

pydicom-seg imports ``pydicom._storage_sopclass_uids``, a private module that pydicom 3 removed (its
UIDs moved to ``pydicom.uid``; MONAILabel issue #1841). This finder, installed by a ``.pth`` file of the
MONAI Label environment only (``install_compat.py``), serves that one module name with the storage SOP
class UIDs of ``pydicom.uid``. It sits last on ``sys.meta_path``, so a pydicom that still has the module
keeps its own, and it imports nothing until that name is asked for.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types

NAME = "pydicom._storage_sopclass_uids"


class _StorageSopClassUids(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finder and loader of ``pydicom._storage_sopclass_uids`` built from ``pydicom.uid``."""

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != NAME:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        return None

    def exec_module(self, module: types.ModuleType) -> None:
        import pydicom.uid

        module.__dict__.update({name: value for name, value in vars(pydicom.uid).items()
                                if isinstance(value, pydicom.uid.UID) and not name.startswith("_")})


def install() -> None:
    """Append the finder to ``sys.meta_path`` (once)."""
    if not any(isinstance(finder, _StorageSopClassUids) for finder in sys.meta_path):
        sys.meta_path.append(_StorageSopClassUids())


install()
