"""Infer tasks of the ctharmonize MONAI Label app."""

from lib.infers.harmonization import HarmonizationInferTask

__all__ = ["HarmonizationInferTask"]
