"""CT volume I/O: DICOM series and NIfTI to :class:`Volume` (HU) and back."""

from ctharmonize.io.atomic import atomic_path, check_writable, is_tool_output
from ctharmonize.io.dicom_header import header_summary
from ctharmonize.io.dicom_reader import read_dicom
from ctharmonize.io.dicom_writer import write_dicom
from ctharmonize.io.fov import (
    AIR_HU,
    PADDING_VALUES_HU,
    circular_fov_mask,
    detect_padding_mask,
    fov_mask_from_padding,
)
from ctharmonize.io.label_map import read_label_map
from ctharmonize.io.nifti import read_nifti, write_nifti
from ctharmonize.io.output_check import check_output
from ctharmonize.io.read import read_volume
from ctharmonize.io.resample import require_regular, resample_to_regular
from ctharmonize.io.series import list_series, select_series
from ctharmonize.io.slice_orientation import check_axial, slice_orientation
from ctharmonize.io.volume import HeaderSummary, Volume
from ctharmonize.io.write import check_volume_output_path, write_volume

__all__ = [
    "AIR_HU",
    "PADDING_VALUES_HU",
    "HeaderSummary",
    "Volume",
    "atomic_path",
    "check_axial",
    "check_output",
    "check_volume_output_path",
    "check_writable",
    "circular_fov_mask",
    "detect_padding_mask",
    "fov_mask_from_padding",
    "header_summary",
    "is_tool_output",
    "list_series",
    "read_dicom",
    "read_label_map",
    "read_nifti",
    "read_volume",
    "require_regular",
    "resample_to_regular",
    "select_series",
    "slice_orientation",
    "write_dicom",
    "write_nifti",
    "write_volume",
]
