"""Virtual imaging trial: procedural chest phantoms scanned with MTF-defined kernels of two vendors.

``generate_phantom`` -> :class:`Phantom` (ground-truth HU, tissue labels, lung mask);
``simulate_scan`` -> one :class:`~ctharmonize.io.Volume` (HU) per kernel, all kernels of a vendor
reconstructed from the same noisy sinogram; ``generate_dataset`` writes NIfTI/DICOM, labels and a
datalist. See docs/simulation.md.
"""

from ctharmonize.simulation.analysis import edge_mtf, laa950, noise_power_spectrum, roi_noise
from ctharmonize.simulation.dataset import generate_dataset
from ctharmonize.simulation.kernels import KERNELS, KernelSpec, mtf50_of
from ctharmonize.simulation.labels import LUNG_LABELS, TISSUE_LABELS
from ctharmonize.simulation.mtf2d import MTF2D_SIZE, kernel_mtf2d, mtf2d_from_profile
from ctharmonize.simulation.phantom import Phantom, generate_phantom
from ctharmonize.simulation.scan import simulate_scan
from ctharmonize.simulation.vendors import VENDORS, VendorSpec, water_mu

__all__ = [
    "KERNELS",
    "LUNG_LABELS",
    "MTF2D_SIZE",
    "TISSUE_LABELS",
    "VENDORS",
    "KernelSpec",
    "Phantom",
    "VendorSpec",
    "edge_mtf",
    "generate_dataset",
    "generate_phantom",
    "kernel_mtf2d",
    "laa950",
    "mtf50_of",
    "mtf2d_from_profile",
    "noise_power_spectrum",
    "roi_noise",
    "simulate_scan",
    "water_mu",
]
