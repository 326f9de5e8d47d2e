"""Keep MONAI's own log lines (input summaries, "skipped downloading", download errors) off the CLI's output."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

__all__ = ["quiet_monai"]

_MONAI_LOGGERS = ("monai.bundle.scripts", "monai.apps.utils", "monai.apps")


@contextlib.contextmanager
def quiet_monai(level: int = logging.WARNING) -> Iterator[None]:
    """Raise MONAI's bundle and download loggers to ``level`` while the block runs (``logging.CRITICAL``
    also hides the ``logger.error`` lines MONAI writes before raising, so that a failure stays one line)."""
    loggers = [logging.getLogger(name) for name in _MONAI_LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(level)
    try:
        yield
    finally:
        for lg, old in zip(loggers, levels, strict=True):
            lg.setLevel(old)
