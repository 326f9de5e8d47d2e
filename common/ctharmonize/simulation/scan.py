"""Simulated CT acquisition + reconstruction of a :class:`Phantom` for one vendor's kernels.

Per slice: HU -> linear attenuation at the effective energy -> parallel-beam line integrals
(Fourier projector on the fine phantom grid) -> expected counts I0 exp(-p) -> Poisson quantum
noise + Gaussian electronic noise -> log -> FBP with each kernel's filter (ramp x target MTF)
onto the phantom's output grid. All kernels of one call share the same noisy sinogram, so
they are paired and pixel-aligned like reconstructions of the same raw data. Thick slices
come from the thin sub-slices averaged before projection with I0 proportional to the slice
thickness (the same counts statistics as summing thin-slice projections). With
``ir_strength``/``edge_strength`` > 0 each kernel's FBP image then goes through the vendor's
nonlinear processing (:mod:`~ctharmonize.simulation.vendor_processing`).
"""

from __future__ import annotations

import zlib

import numpy as np

from ctharmonize.errors import ConfigError, UnknownDomainError
from ctharmonize.io.volume import HeaderSummary, Volume
from ctharmonize.simulation.kernels import KERNELS, KernelSpec
from ctharmonize.simulation.phantom import Phantom
from ctharmonize.simulation.projector import ParallelGeometry, backproject_filtered, project
from ctharmonize.simulation.reconstruction import kernel_filter
from ctharmonize.simulation.vendor_processing import apply_processing
from ctharmonize.simulation.vendors import VendorSpec, get_vendor, water_mu

__all__ = ["simulate_scan", "scan_geometry", "noisy_sinogram", "fov_circle"]


def scan_geometry(n_fine: int, dx_fine: float, det_pitch: float, views_per_pixel: float = 1.0) -> ParallelGeometry:
    """Views and detector covering the diagonal of an ``n_fine`` x ``n_fine`` grid."""
    n_det = int(np.ceil(n_fine * dx_fine * np.sqrt(2) / det_pitch)) + 8
    n_views = max(64, int(np.ceil(views_per_pixel * n_fine)))
    return ParallelGeometry(n_views, n_det, det_pitch)


def noisy_sinogram(line_integrals: np.ndarray, i0: float, electronic_noise: float,
                   rng: np.random.Generator) -> np.ndarray:
    """-log(counts / I0) with Poisson(I0 exp(-p)) counts plus Gaussian electronic noise (counts >= 1).

    float32 throughout. Where the expected count is >= 50 the Poisson and electronic noise are
    drawn together as their normal limit N(lam, lam + sigma_e^2) (indistinguishable, one draw);
    below, exact Poisson counts plus the electronic noise.
    """
    expected = np.clip(np.asarray(line_integrals, np.float32), 0.0, None)
    np.negative(expected, out=expected)
    np.exp(expected, out=expected)
    expected *= np.float32(i0)
    low = expected < 50.0
    var_e = np.float32(float(electronic_noise) ** 2)
    counts = rng.standard_normal(expected.shape, dtype=np.float32)
    counts *= np.sqrt(expected + var_e)
    counts += expected
    if low.any():
        lam = expected[low]
        extra = rng.standard_normal(lam.shape, dtype=np.float32) * np.float32(electronic_noise)
        counts[low] = rng.poisson(lam).astype(np.float32) + extra
    np.maximum(counts, np.float32(1.0), out=counts)
    counts *= np.float32(1.0 / i0)
    np.log(counts, out=counts)
    np.negative(counts, out=counts)
    return counts


def fov_circle(shape: tuple[int, int], margin_px: float = 0.0) -> np.ndarray:
    """Bool (Y, X) mask of the circle inscribed in the grid (the reconstructed field of view)."""
    ny, nx = shape
    y = np.arange(ny) - (ny - 1) / 2
    x = np.arange(nx) - (nx - 1) / 2
    return (y[:, None] / (ny / 2)) ** 2 + (x[None, :] / (nx / 2)) ** 2 <= (1.0 - margin_px / (nx / 2)) ** 2


def _processing_label(spec: VendorSpec, ir_strength: float, edge_strength: float) -> dict[str, str]:
    """{kernel: description of the post-FBP processing} for the header."""
    out = {}
    for k in spec.kernels:
        parts = []
        if ir_strength > 0 and spec.processing.ir_weight_hu > 0:
            parts.append(spec.processing.ir_label + ("" if ir_strength == 1 else f" x{ir_strength:g}"))
        if edge_strength > 0 and spec.processing.edge_gain.get(k, 0) > 0:
            parts.append("edge enhancement" + ("" if edge_strength == 1 else f" x{edge_strength:g}"))
        out[k] = " + ".join(parts) if parts else "FBP"
    return out


def _kernels_for(vendor: VendorSpec, kernels) -> list[KernelSpec]:
    names = list(vendor.kernels) if kernels is None else ([kernels] if isinstance(kernels, str) else list(kernels))
    out = []
    for name in names:
        if name not in KERNELS:
            raise UnknownDomainError(name, f"unknown kernel domain; known: {', '.join(sorted(KERNELS))}")
        out.append(KERNELS[name])
    return out


def simulate_scan(
    ph: Phantom,
    vendor: str | VendorSpec = "siemens",
    kernels: str | list[str] | tuple[str, ...] | None = None,
    mas: float | None = None,
    seed: int = 0,
    *,
    kvp: float | None = None,
    noise: bool = True,
    ir_strength: float = 0.0,
    edge_strength: float = 0.0,
) -> dict[str, Volume]:
    """Scan ``ph`` on ``vendor``'s scanner and reconstruct it with each kernel.

    Args:
        ph: the phantom (its grid is the reconstruction grid, so outputs align with ``ph.hu``).
        vendor: key of :data:`~ctharmonize.simulation.vendors.VENDORS`, or a :class:`VendorSpec`
            (a scanner model outside the registry, e.g. the Force of
            :mod:`~ctharmonize.simulation.force_family`).
        kernels: kernel domain names; None = the vendor's (soft, sharp) pair.
        mas: effective mAs; None = the vendor default (NLST-like low dose).
        seed: noise seed (combined with the phantom seed and the vendor).
        kvp: tube voltage; None = the vendor default.
        noise: False gives the noise-free reconstruction (resolution only).
        ir_strength: iterative-reconstruction-like denoising, as a multiple of the vendor preset
            (0 = plain FBP, 1 = the preset, e.g. "ADMIRE 3", "ASiR 40%").
        edge_strength: nonlinear edge enhancement of the kernels that have it (GE BONE), as a
            multiple of the preset gain (0 = none).

    Returns:
        {domain name: :class:`Volume`} in **HU**, with header and circular ``fov_mask``.
    """
    spec = vendor if isinstance(vendor, VendorSpec) else get_vendor(vendor)
    ks = _kernels_for(spec, kernels)
    mas = float(spec.default_mas if mas is None else mas)
    kvp = float(spec.kvp if kvp is None else kvp)
    if not mas > 0:
        raise ConfigError(None, f"mas must be positive, got {mas}")
    fine = ph.fine_hu if ph.fine_hu is not None else ph.hu
    ff = ph.fine_factor if ph.fine_hu is not None else 1
    z, n = ph.hu.shape[0], ph.hu.shape[2]
    dx = float(ph.spacing[0])
    dxf = dx / ff
    mu_w = water_mu(kvp)
    geom = scan_geometry(fine.shape[-1], dxf, spec.detector_pitch_mm)
    mu = np.clip(np.float32(mu_w) * (1.0 + np.asarray(fine, np.float32) / np.float32(1000.0)), 0.0, None)
    sino = project(mu, dxf, geom)
    if noise:
        thickness = float(ph.spacing[2])
        i0 = spec.quanta_per_mas * mas * geom.dt * thickness / geom.n_views
        rng = np.random.default_rng([int(seed), int(ph.seed), zlib.crc32(spec.name.encode())])
        sino = noisy_sinogram(sino, i0, spec.electronic_noise, rng)
    length = 2 * geom.n_det
    filters = [kernel_filter(k, length, geom.dt) for k in ks]
    images = backproject_filtered(sino, geom, filters, n, dx, pad_factor=2)
    fov = np.broadcast_to(fov_circle((n, n)), (z, n, n)).copy()
    out: dict[str, Volume] = {}
    processing = _processing_label(spec, ir_strength, edge_strength)
    for k, img in zip(ks, images, strict=True):
        hu = (1000.0 * (img / mu_w - 1.0)).astype(np.float32)
        if ir_strength > 0 or edge_strength > 0:
            hu = apply_processing(hu, k.name, spec.processing, dx, ir_strength, edge_strength)
        hu[~fov] = -1024.0
        header = HeaderSummary(
            manufacturer=spec.manufacturer, manufacturer_model_name=spec.model, convolution_kernel=(k.dicom_name,),
            kvp=kvp, exposure_mas=mas, slice_thickness=float(ph.spacing[2]),
            series_description=f"simulated chest {k.dicom_name}", patient_id=f"sim-{spec.name}-{ph.seed}",
            padding_value=float(spec.padding_value),
            extra={"domain": k.name, "simulated": True, "phantom_seed": int(ph.seed), "noise_seed": int(seed),
                   "ctdivol_mgy": round(spec.ctdivol(mas) * float(np.clip(kvp / spec.kvp, 0, None)) ** 2.5, 3),
                   "processing": processing.get(k.name, "FBP")},
        )
        out[k.name] = Volume(hu, ph.spacing, ph.origin, ph.direction.copy(), header, fov)
    return out
