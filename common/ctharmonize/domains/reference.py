"""The default target of harmonization: the reference soft kernel of paper 000 (Siemens B30f).

This is the one code default. A bundle's own default target is its ``inference.json``
``target_kernel`` (``ctharmonize harmonize`` / ``evaluate --bundle`` use it when ``--target`` is not given).
"""

__all__ = ["DEFAULT_REFERENCE_KERNEL"]

DEFAULT_REFERENCE_KERNEL = "siemens_b30f"
