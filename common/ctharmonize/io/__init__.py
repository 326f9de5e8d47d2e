"""CT volume I/O: DICOM series and NIfTI to :class:`Volume` (HU) and back."""

from ctharmonize.io.atomic import atomic_path, check_writable
from ctharmonize.io.volume import HeaderSummary, Volume

__all__ = ["HeaderSummary", "Volume", "atomic_path", "check_writable"]
