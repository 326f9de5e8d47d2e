"""Training datasets built on the MONAI transforms of :mod:`ctharmonize.transforms`: unaligned multi-domain
axial slices (paper 000), pixel-aligned slice pairs and MTF-conditioned ground-truth pairs (paper 001), their preprocessing and tissue labels."""

from ctharmonize.datasets.mtf_paired_slices import MTF_SOURCES, MTFPairedSlices, check_subject_splits
from ctharmonize.datasets.paired_slices import PairedSlices, SlicePair
from ctharmonize.datasets.prepared_volume import PreparedVolume, prepare_volume, volume_preprocessing
from ctharmonize.datasets.sample import ensure_simulated_dataset
from ctharmonize.datasets.tissue_labels import TISSUE_LABEL_SOURCES, tissue_labels
from ctharmonize.datasets.unaligned_slices import UnalignedMultiDomainSlices

__all__ = [
    "MTFPairedSlices",
    "MTF_SOURCES",
    "PairedSlices",
    "PreparedVolume",
    "SlicePair",
    "TISSUE_LABEL_SOURCES",
    "UnalignedMultiDomainSlices",
    "check_subject_splits",
    "ensure_simulated_dataset",
    "prepare_volume",
    "tissue_labels",
    "volume_preprocessing",
]
