"""Scanner models: what differs between vendors besides the kernel.

Values are plausible for NLST-era 16/64-slice scanners, not calibrated to any one machine:

* recon field of view and its centre (the patient is seldom at the FOV centre),
* the HU written outside the circular FOV (Siemens -2048 HU; GE stores -2000 with a -1024
  intercept, i.e. -3024 HU),
* detector sampling pitch at isocentre (Siemens flying focal spot samples finer),
* photon yield per mAs (detector efficiency) and electronic noise, which set the noise at a dose,
* default tube current-time product (NLST low dose) and kVp,
* what varies from patient to patient at a site (the clinical preset draws it per subject):
  reconstruction FOV, effective mAs, slice thickness, and the CTDIvol per mAs that states the dose,
* the nonlinear processing after FBP (:mod:`~ctharmonize.simulation.vendor_processing`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ctharmonize.errors import UnknownDomainError
from ctharmonize.simulation.vendor_processing import ProcessingSpec

__all__ = ["VendorSpec", "VENDORS", "water_mu", "get_vendor"]

# Linear attenuation of water (1/mm) at the effective energy of a 80..140 kVp spectrum
# (NIST XCOM, effective energies ~ 45..75 keV).
_WATER_MU_PER_MM = {80: 0.0235, 100: 0.0214, 120: 0.0200, 140: 0.0191}


def water_mu(kvp: float) -> float:
    """Linear attenuation coefficient of water (1/mm) at the effective energy for ``kvp``."""
    keys = sorted(_WATER_MU_PER_MM)
    kvp = min(max(float(kvp), keys[0]), keys[-1])
    for lo, hi in zip(keys[:-1], keys[1:], strict=True):
        if lo <= kvp <= hi:
            w = (kvp - lo) / (hi - lo)
            return (1 - w) * _WATER_MU_PER_MM[lo] + w * _WATER_MU_PER_MM[hi]
    return _WATER_MU_PER_MM[keys[-1]]


@dataclass(frozen=True)
class VendorSpec:
    """One scanner vendor/model.

    Attributes:
        name: vendor key (``"siemens"``, ``"ge"``).
        manufacturer: DICOM Manufacturer (0008,0070).
        model: DICOM ManufacturerModelName (0008,1090).
        kernels: the vendor's (soft, sharp) kernel domain names.
        kvp: tube voltage.
        default_mas: effective mAs (low-dose screening).
        recon_fov_mm: reconstruction field of view (square side = circle diameter), mm.
        fov_center_mm: (x, y) LPS position of the FOV centre relative to the body centre, mm.
        padding_value: HU stored outside the circular FOV.
        detector_pitch_mm: ray sampling distance at isocentre, mm.
        quanta_per_mas: detected photons per mAs per mm^2 (detector width x slice thickness)
            summed over one half rotation, for an unattenuated ray.
        electronic_noise: standard deviation of the additive electronic noise, in detected quanta
            per ray.
        slice_thickness_mm: default reconstructed slice thickness.
        fov_range_mm: (min, max) reconstruction FOV a site uses across patients, mm.
        mas_range: (min, max) effective mAs across patients (tube current modulation, NLST-like).
        thickness_options_mm: reconstructed slice thicknesses in use, mm.
        ctdivol_per_mas: CTDIvol (mGy, 32 cm body phantom) per effective mAs at ``kvp``.
        processing: post-FBP processing (iterative-reconstruction-like denoising, edge enhancement).
    """

    name: str
    manufacturer: str
    model: str
    kernels: tuple[str, str]
    kvp: float
    default_mas: float
    recon_fov_mm: float
    fov_center_mm: tuple[float, float]
    padding_value: float
    detector_pitch_mm: float
    quanta_per_mas: float
    electronic_noise: float
    slice_thickness_mm: float
    fov_range_mm: tuple[float, float] = (300.0, 450.0)
    mas_range: tuple[float, float] = (20.0, 80.0)
    thickness_options_mm: tuple[float, ...] = (1.0, 2.0)
    ctdivol_per_mas: float = 0.075
    processing: ProcessingSpec = field(default_factory=lambda: ProcessingSpec("FBP", 0.0, 0.0, {}))

    def ctdivol(self, mas: float) -> float:
        """CTDIvol (mGy) of an exposure of ``mas`` effective mAs."""
        return float(self.ctdivol_per_mas) * float(mas)


VENDORS: dict[str, VendorSpec] = {
    "siemens": VendorSpec(
        name="siemens", manufacturer="SIEMENS", model="Sensation 16", kernels=("siemens_b30f", "siemens_b50f"),
        kvp=120.0, default_mas=40.0, recon_fov_mm=350.0, fov_center_mm=(0.0, -10.0), padding_value=-2048.0,
        detector_pitch_mm=0.45, quanta_per_mas=0.6e5, electronic_noise=3.0, slice_thickness_mm=2.0,
        fov_range_mm=(300.0, 420.0), mas_range=(20.0, 70.0), thickness_options_mm=(1.0, 1.5, 2.0),
        ctdivol_per_mas=0.076,
        processing=ProcessingSpec("ADMIRE 3", ir_weight_hu=40.0, ir_blend=1.0, edge_gain={}),
    ),
    "ge": VendorSpec(
        name="ge", manufacturer="GE MEDICAL SYSTEMS", model="LightSpeed16", kernels=("ge_standard", "ge_bone"),
        kvp=120.0, default_mas=50.0, recon_fov_mm=380.0, fov_center_mm=(5.0, -20.0), padding_value=-3024.0,
        detector_pitch_mm=0.55, quanta_per_mas=0.7e5, electronic_noise=5.0, slice_thickness_mm=2.5,
        fov_range_mm=(320.0, 450.0), mas_range=(25.0, 80.0), thickness_options_mm=(1.25, 2.5),
        ctdivol_per_mas=0.082,
        processing=ProcessingSpec("ASiR 40%", ir_weight_hu=60.0, ir_blend=0.4, edge_gain={"ge_bone": 1.0},
                                  edge_threshold_hu=300.0),
    ),
}


def get_vendor(name: str) -> VendorSpec:
    """The :class:`VendorSpec` for ``name`` (case-insensitive); UnknownDomainError if unknown."""
    key = str(name).lower()
    if key not in VENDORS:
        raise UnknownDomainError(name, f"unknown vendor; known: {', '.join(sorted(VENDORS))}")
    return VENDORS[key]
