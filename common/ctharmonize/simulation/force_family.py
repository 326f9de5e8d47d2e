"""Paper 001's kernel family: a Siemens SOMATOM Force-like scanner, 16 kernels, two doses, 500 mm FOV.

Paper 001 (its virtual imaging trial, DukeSim on XCAT phantoms) reconstructs every phantom at
"1.3 and 6.5 mGy CTDIvol" with "Br32f, Br32f(3), Br40f, Br40f(3), Br49f, Br49f(3), Br59f, Br59f(3),
Br62f, Br64f, Br69f, Br69f(3), Qr32f, Qr49f, Qr59f, Qr61f" ("the number in the parenthesis indicates
the strength of iterative kernels") at "a field of view of 500 mm": 16 kernel renditions x 2 doses =
32 renditions per phantom, all paired with one noise-free, blur-free ground truth.

Here (:data:`FORCE_FAMILY`): 11 kernel domains (design MTFs in
:data:`~ctharmonize.simulation.kernels.KERNELS`), each with its paper-001 group (spec §5.1 / gap 16:
smooth Br32f, Br40f, Qr32f; medium Br49f, Qr49f; sharp the rest) and its iterative strengths (0 = FBP,
3 = ADMIRE-like level 3, where the paper lists a "(3)" rendition). Level ``L`` is the vendor's
ADMIRE-3 total-variation denoising at strength ``L / 3``
(:mod:`~ctharmonize.simulation.vendor_processing`). Doses (:data:`FORCE_DOSES_MGY`) become mAs with
the simulator's CTDIvol model of its Siemens scanner (``ctdivol_per_mas`` 0.076 mGy/mAs: 1.3 mGy =
17.1 mAs, 6.5 mGy = 85.5 mAs; paper 001 Fig. 2 states 20 and 100 mAs, the same 1 : 5 ratio).

:func:`scan_family` scans one phantom: per dose one noisy sinogram, reconstructed with every kernel
(renditions of one dose share their noise, as reconstructions of one raw data set; the two doses are
independent scans).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ctharmonize.errors import ConfigError
from ctharmonize.io.volume import Volume
from ctharmonize.simulation.kernels import KERNELS
from ctharmonize.simulation.phantom import Phantom
from ctharmonize.simulation.scan import simulate_scan
from ctharmonize.simulation.vendor_processing import apply_processing
from ctharmonize.simulation.vendors import VENDORS, VendorSpec

__all__ = ["FamilyKernel", "FORCE_FAMILY", "FORCE_DOSES_MGY", "FORCE_FOV_MM", "FORCE_SCANNER",
           "FORCE_SLICE_THICKNESS_MM", "Rendition", "renditions", "mas_for_ctdivol", "scan_family"]

#: reconstruction field of view of every rendition (mm), paper 001
FORCE_FOV_MM = 500.0
#: the two dose levels, CTDIvol in mGy (low, high), paper 001
FORCE_DOSES_MGY = (1.3, 6.5)
#: reconstructed slice thickness (mm); not stated in paper 001 (a thin-slice lung reconstruction)
FORCE_SLICE_THICKNESS_MM = 1.0


@dataclass(frozen=True)
class FamilyKernel:
    """One kernel of the family.

    Attributes:
        domain: kernel domain name (a key of :data:`~ctharmonize.simulation.kernels.KERNELS` and of
            the domain registry), e.g. ``"siemens_br40f"``.
        group: paper 001's grouping, ``"smooth"``, ``"medium"`` or ``"sharp"``.
        iterative_strengths: ADMIRE-like levels it is reconstructed with (0 = plain FBP).
    """

    domain: str
    group: str
    iterative_strengths: tuple[int, ...] = (0,)


FORCE_FAMILY: tuple[FamilyKernel, ...] = (
    FamilyKernel("siemens_br32f", "smooth", (0, 3)),
    FamilyKernel("siemens_br40f", "smooth", (0, 3)),
    FamilyKernel("siemens_br49f", "medium", (0, 3)),
    FamilyKernel("siemens_br59f", "sharp", (0, 3)),
    FamilyKernel("siemens_br62f", "sharp"),
    FamilyKernel("siemens_br64f", "sharp"),
    FamilyKernel("siemens_br69f", "sharp", (0, 3)),
    FamilyKernel("siemens_qr32f", "smooth"),
    FamilyKernel("siemens_qr49f", "medium"),
    FamilyKernel("siemens_qr59f", "sharp"),
    FamilyKernel("siemens_qr61f", "sharp"),
)

#: the simulated SOMATOM Force: the simulator's Siemens scanner (photon yield, electronic noise,
#: detector sampling, CTDIvol per mAs, ADMIRE-3 processing) with the paper's FOV, centred
FORCE_SCANNER: VendorSpec = dataclasses.replace(
    VENDORS["siemens"], model="SOMATOM Force", kernels=("siemens_br40f", "siemens_br64f"),
    recon_fov_mm=FORCE_FOV_MM, fov_center_mm=(0.0, 0.0), fov_range_mm=(FORCE_FOV_MM, FORCE_FOV_MM),
    slice_thickness_mm=FORCE_SLICE_THICKNESS_MM, thickness_options_mm=(FORCE_SLICE_THICKNESS_MM,),
    default_mas=round(FORCE_DOSES_MGY[1] / VENDORS["siemens"].ctdivol_per_mas, 1),
)


@dataclass(frozen=True)
class Rendition:
    """One reconstruction of a phantom: kernel x iterative strength x dose.

    Attributes:
        domain: kernel domain name. group: smooth / medium / sharp.
        iterative_strength: ADMIRE-like level (0 = FBP). ctdivol_mgy: dose (mGy). mas: effective mAs.
    """

    domain: str
    group: str
    iterative_strength: int
    ctdivol_mgy: float
    mas: float

    @property
    def dicom_name(self) -> str:
        """Paper-style name, e.g. ``"Br40f(3)"`` (``"Br40f"`` for FBP)."""
        name = KERNELS[self.domain].dicom_name
        return f"{name}({self.iterative_strength})" if self.iterative_strength else name

    @property
    def dose(self) -> str:
        """``"low"`` or ``"high"`` (of :data:`FORCE_DOSES_MGY`)."""
        return "low" if self.ctdivol_mgy == min(FORCE_DOSES_MGY) else "high"

    @property
    def key(self) -> str:
        """File-name id, e.g. ``"siemens_br40f_ir3_1p3mgy"``."""
        ir = f"_ir{self.iterative_strength}" if self.iterative_strength else ""
        return f"{self.domain}{ir}_{f'{self.ctdivol_mgy:g}'.replace('.', 'p')}mgy"


def mas_for_ctdivol(ctdivol_mgy: float, scanner: VendorSpec = FORCE_SCANNER) -> float:
    """Effective mAs giving ``ctdivol_mgy`` (mGy) on ``scanner`` (its linear CTDIvol-per-mAs model)."""
    if not ctdivol_mgy > 0:
        raise ConfigError(None, f"CTDIvol must be positive, got {ctdivol_mgy} mGy")
    return float(ctdivol_mgy) / float(scanner.ctdivol_per_mas)


def renditions(kernels: tuple[str, ...] | list[str] | None = None,
               doses_mgy: tuple[float, ...] = FORCE_DOSES_MGY, iterative: bool = True) -> list[Rendition]:
    """The renditions of one phantom, dose-major: every family kernel x its strengths x every dose.

    ``kernels`` (domain names) restricts the family; ``iterative`` False keeps FBP only.
    """
    family = {k.domain: k for k in FORCE_FAMILY}
    names = list(family) if kernels is None else list(kernels)
    unknown = [n for n in names if n not in family]
    if unknown:
        raise ConfigError(None, f"not a force-family kernel: {', '.join(unknown)}; known: {', '.join(family)}")
    out = []
    for dose in doses_mgy:
        mas = mas_for_ctdivol(dose)
        for name in names:
            for level in (family[name].iterative_strengths if iterative else (0,)):
                out.append(Rendition(name, family[name].group, int(level), float(dose), round(mas, 3)))
    return out


def scan_family(ph: Phantom, seed: int = 0, *, kernels: tuple[str, ...] | list[str] | None = None,
                doses_mgy: tuple[float, ...] = FORCE_DOSES_MGY, iterative: bool = True,
                ir_strength: float = 1.0) -> list[tuple[Rendition, Volume]]:
    """Scan ``ph`` on :data:`FORCE_SCANNER` at each dose and reconstruct every rendition (HU volumes).

    Args:
        ph: the phantom (its grid, normally 500 mm wide, is the reconstruction grid).
        seed: noise seed; dose ``j`` uses ``seed * 7919 + j`` (independent scans per dose).
        kernels: family domain names (None = all 11). doses_mgy: CTDIvol levels (mGy).
        iterative: also the ADMIRE-like renditions where the family has them.
        ir_strength: multiple of the ADMIRE-3 denoising weight at level 3 (level L: ``L / 3`` of it).

    Returns:
        [(rendition, volume)] in :func:`renditions` order; header ConvolutionKernel is
        ``("Br40f", "3")`` for level 3 (Siemens style), ``("Br40f",)`` for FBP.
    """
    wanted = renditions(kernels, doses_mgy, iterative)
    names = list(dict.fromkeys(r.domain for r in wanted))
    spec = FORCE_SCANNER
    out = []
    for j, dose in enumerate(doses_mgy):
        todo = [r for r in wanted if r.ctdivol_mgy == float(dose)]
        vols = simulate_scan(ph, spec, kernels=names, mas=todo[0].mas, seed=int(seed) * 7919 + j)
        for r in todo:
            vol = vols[r.domain]
            hu, processing, kernel_tag = vol.array, "FBP", (KERNELS[r.domain].dicom_name,)
            if r.iterative_strength > 0 and ir_strength > 0:
                hu = apply_processing(vol.array, r.domain, spec.processing, float(ph.spacing[0]),
                                      ir_strength=ir_strength * r.iterative_strength / 3.0, edge_strength=0.0)
                hu[~vol.fov_mask] = vol.array[~vol.fov_mask]
                processing = f"ADMIRE {r.iterative_strength}" + ("" if ir_strength == 1 else f" x{ir_strength:g}")
                kernel_tag = (KERNELS[r.domain].dicom_name, str(r.iterative_strength))
            header = dataclasses.replace(
                vol.header, convolution_kernel=kernel_tag,
                series_description=f"simulated chest {r.dicom_name} {r.ctdivol_mgy:g} mGy",
                extra={**vol.header.extra, "processing": processing,
                       "iterative_strength": r.iterative_strength, "kernel_group": r.group})
            out.append((r, Volume(hu, vol.spacing, vol.origin, vol.direction.copy(), header, vol.fov_mask)))
    return out
