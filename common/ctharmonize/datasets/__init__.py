"""Training datasets: unaligned multi-domain axial slices (paper 000), their preprocessing and tissue labels."""

from ctharmonize.datasets.prepared_volume import PreparedVolume, prepare_volume
from ctharmonize.datasets.sample import ensure_simulated_dataset
from ctharmonize.datasets.tissue_labels import TISSUE_LABEL_SOURCES, tissue_labels
from ctharmonize.datasets.unaligned_slices import UnalignedMultiDomainSlices

__all__ = [
    "PreparedVolume",
    "TISSUE_LABEL_SOURCES",
    "UnalignedMultiDomainSlices",
    "ensure_simulated_dataset",
    "prepare_volume",
    "tissue_labels",
]
