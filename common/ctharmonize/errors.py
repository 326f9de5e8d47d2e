"""Exception hierarchy for ctharmonize.

Every error a user can trigger with bad input derives from :class:`CTHarmonizeError` and
renders as one line: ``<path>: <problem>``. The CLI prints that line and exits with status 2
instead of showing a traceback from deep inside a library.
"""

from __future__ import annotations

import os

__all__ = [
    "CTHarmonizeError",
    "InputError",
    "NotDicomError",
    "ModalityError",
    "MultipleSeriesError",
    "SliceSpacingError",
    "GantryTiltError",
    "MissingPixelDataError",
    "CorruptFileError",
    "EmptyInputError",
    "NonFiniteError",
    "DimensionError",
    "UnsupportedFormatError",
    "DatalistError",
    "UnknownDomainError",
    "OutputExistsError",
    "ConfigError",
    "WeightsError",
    "GeometryError",
    "IrregularGeometryError",
    "NonAxialError",
    "PixelSpacingError",
    "NiftiGeometryError",
    "ImageTooLargeError",
    "LabelMapError",
    "SeriesNotFoundError",
    "SelectionRulesError",
    "ImageHeaderError",
    "RescaleError",
    "AmbiguousDomainError",
    "PacsError",
]


class CTHarmonizeError(Exception):
    """Base class. ``str(err)`` is a single line ``"<path>: <problem>"``."""

    def __init__(self, path: str | os.PathLike | None, problem: str):
        self.path = None if path is None else os.fspath(path)
        self.problem = " ".join(str(problem).split())  # force one line
        super().__init__(self.path, self.problem)

    def __str__(self) -> str:
        return self.problem if self.path is None else f"{self.path}: {self.problem}"


class InputError(CTHarmonizeError):
    """An input file or folder cannot be used."""


class NotDicomError(InputError):
    """The file is not a DICOM file (no preamble/DICM marker and not parseable)."""


class ModalityError(InputError):
    """The DICOM series is not CT."""


class MultipleSeriesError(InputError):
    """A folder holds more than one series; the message lists the SeriesInstanceUIDs."""


class SliceSpacingError(InputError):
    """Slice positions are not evenly spaced within tolerance (missing or duplicated slices)."""


class GantryTiltError(InputError):
    """The series was acquired with gantry tilt (non-orthogonal slice stack)."""


class MissingPixelDataError(InputError):
    """A DICOM file has no Pixel Data element."""


class CorruptFileError(InputError):
    """A file is truncated or cannot be decoded."""


class EmptyInputError(InputError):
    """A folder holds no readable files."""


class NonFiniteError(InputError):
    """An image holds NaN or infinite values."""


class DimensionError(InputError):
    """The image has the wrong number of dimensions (e.g. 2-D where a volume is expected)."""


class UnsupportedFormatError(InputError):
    """The path's format is not one ctharmonize reads or writes."""


class DatalistError(InputError):
    """A datalist JSON file does not satisfy the shipped schema."""


class UnknownDomainError(CTHarmonizeError):
    """A (manufacturer, kernel) pair or a domain name is not in the registry."""


class OutputExistsError(CTHarmonizeError):
    """The output path exists and overwriting was not requested."""


class ConfigError(CTHarmonizeError):
    """A configuration file or argument is invalid."""


class WeightsError(CTHarmonizeError):
    """A weights file is missing, unreadable or does not match the network."""


class GeometryError(InputError):
    """A volume's geometry cannot be expressed in the requested output (e.g. a skewed in-plane grid as DICOM)."""


class IrregularGeometryError(GeometryError):
    """Slices are not on a regular orthogonal grid (gantry tilt, missing slices); resample explicitly."""


class PixelSpacingError(InputError):
    """The in-plane pixel spacing lies outside the range a bundle was trained on and ``--spacing_policy refuse``."""


class NonAxialError(InputError):
    """The slices are not axial (sagittal, coronal or oblique reformat) but the model expects axial slices."""


class NiftiGeometryError(GeometryError):
    """A NIfTI file's voxel grid cannot be used: zero/negative/NaN voxel sizes, a sheared or skewed affine."""


class ImageTooLargeError(InputError):
    """An image header claims more voxels than ctharmonize reads (checked before any allocation)."""


class LabelMapError(InputError):
    """A label map holds values that are not labels, or lies on another voxel grid than its image."""


class SeriesNotFoundError(InputError):
    """No series of a study folder or DICOMDIR is the one asked for (``--series``) or matches the selection rules."""


class SelectionRulesError(ConfigError):
    """A series selection rules file (MONAI Deploy ``DICOMSeriesSelectorOperator`` format) is invalid."""


class ImageHeaderError(InputError):
    """A DICOM header cannot describe the image (Rows 0, BitsStored > BitsAllocated, a colour or palette
    PhotometricInterpretation on a CT slice, ...)."""


class RescaleError(InputError):
    """A CT slice's stored values cannot be read as HU: RescaleSlope/Intercept missing, RescaleType not HU,
    or a rescale that is not finite, zero or absurd."""


class AmbiguousDomainError(UnknownDomainError):
    """A multi-valued ConvolutionKernel names kernels of more than one known domain; ``--source`` resolves it."""


class PacsError(CTHarmonizeError):
    """A PACS cannot be reached, refuses an association or a request, or does not hold what was asked for;
    ``path`` is the PACS address (``http://host:port`` or ``AET@host:port``)."""
