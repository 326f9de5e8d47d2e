"""CLI commands ``mtf``, ``nps`` and ``detectability``: image-quality physics of one CT volume.

Each writes a folder (atomically, refused if it exists unless ``--overwrite`` and it is an earlier
ctharmonize output): ``mtf.json`` + ``mtf.png``, ``nps.json`` + ``nps.png``, or ``detectability.json`` +
``image_quality.png`` (MTF and radial NPS). The output path is checked before the input is read; a
bad input is one line naming the file (exit status 2) and leaves no output.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ctharmonize.errors import ConfigError, InputError
from ctharmonize.evaluation.run import jsonable, write_json

__all__ = ["detectability", "mtf", "nps"]


def _positive(name: str, value: float) -> float:
    if not (math.isfinite(float(value)) and float(value) > 0):
        raise ConfigError(None, f"--{name} must be a positive number, got {value!r}")
    return float(value)


def _read(input: str, series: str | None):  # noqa: A002 - the CLI flag name
    from ctharmonize.io import read_volume

    return read_volume(input, series=series)


def _measured(path: str, func: Callable, *args: Any, **kwargs: Any) -> Any:
    """Run a measurement; its path-less InputError gets the input's path."""
    try:
        return func(*args, **kwargs)
    except InputError as err:
        if err.path is None:
            raise InputError(path, err.problem) from None
        raise


def _body(volume) -> np.ndarray:
    from ctharmonize.segmentation.body_mask import body_mask, smooth_hu

    return body_mask(smooth_hu(volume.array, 1.0, volume.fov_mask), volume.spacing)


def _noise_inputs(volume, mask: str | None, reference: str | None) -> dict[str, Any]:
    """``mask`` / ``reference`` arrays for :func:`~ctharmonize.physics.nps.measure_nps`."""
    out: dict[str, Any] = {}
    if mask is not None:
        from ctharmonize.io import read_label_map

        out["mask"] = read_label_map(mask, like=volume) > 0
    if reference is not None:
        ref = _read(reference, None)
        if ref.array.shape != volume.array.shape or not np.allclose(ref.spacing, volume.spacing, rtol=1e-3):
            raise InputError(reference, f"reference grid {ref.array.shape} at {ref.spacing} mm differs from the "
                                        f"image's {volume.array.shape} at {volume.spacing} mm")
        out["reference"] = ref.array
    return out


def _header(input: str, volume) -> dict[str, Any]:  # noqa: A002
    h = volume.header
    return {"image": os.fspath(input), "shape_zyx": list(volume.array.shape), "spacing_mm": list(volume.spacing),
            "manufacturer": h.manufacturer, "kernel": h.kernel}


def mtf(
    input: str,  # noqa: A002 - the CLI flag name
    out: str,
    overwrite: bool = False,
    max_slices: int = 32,
    half_length_mm: float = 10.0,
    series: str | None = None,
) -> str:
    """MTF at the skin-air boundary: MTF50/MTF10 (lp/cm), 1-D curve, 64x64 MTF2D; mtf.json + mtf.png in ``out``.

    Args:
        input: CT volume (DICOM series folder/file or NIfTI) in HU.
        out: output folder (refused if it exists, unless --overwrite).
        overwrite: replace an earlier ctharmonize output at ``out`` (nothing else is replaced).
        max_slices: measure at most this many slices, evenly spaced.
        half_length_mm: edge profile half length (mm) on each side of the skin.
        series: DICOM only: the series to read (SeriesNumber or SeriesInstanceUID).
    """
    from ctharmonize.io import atomic_path, check_output
    from ctharmonize.physics.edge_mtf import skin_air_mtf
    from ctharmonize.physics.plots import image_quality_plot

    check_output(out, [input], overwrite)
    volume = _read(input, series)
    edge = _measured(input, skin_air_mtf, volume.array, volume.spacing, fov_mask=volume.fov_mask,
                     max_slices=int(max_slices), half_length_mm=_positive("half_length_mm", half_length_mm))
    doc = {**_header(input, volume), **edge.summary(), "mtf2d_64": edge.mtf2d().tolist(),
           "mtf2d_layout": "MTF(sqrt(v^2+u^2)), fftshift-centred, DC at [32, 32], index k -> (k-32)/(64 spacing) "
                           "cycles/mm (ctharmonize.simulation.mtf2d); rotationally symmetric from the 1-D MTF"}
    with atomic_path(out, overwrite=overwrite, directory=True, record=True) as tmp:
        write_json(doc, tmp / "mtf.json")
        image_quality_plot(tmp / "mtf.png", edge=edge, title=Path(input).name)
    return json.dumps(jsonable({"mtf50_lp_cm": edge.mtf50, "mtf10_lp_cm": edge.mtf10, "accepted": edge.accepted,
                                 "out": os.fspath(out)}), indent=2)


def nps(
    input: str,  # noqa: A002 - the CLI flag name
    out: str,
    overwrite: bool = False,
    mask: str | None = None,
    reference: str | None = None,
    roi_size: int = 32,
    max_rois: int = 64,
    max_slices: int = 32,
    series: str | None = None,
) -> str:
    """Noise power spectrum from uniform ROIs: noise SD (HU), peak frequency (lp/cm), 2-D and radial NPS.

    Writes nps.json + nps.png in ``out``.

    Args:
        input: CT volume (DICOM series folder/file or NIfTI) in HU.
        out: output folder (refused if it exists, unless --overwrite).
        overwrite: replace an earlier ctharmonize output at ``out`` (nothing else is replaced).
        mask: label map on the image grid; ROIs only where it is non-zero (default: soft tissue in the body).
        reference: noise-free image of the same reconstruction on the image grid (e.g. the simulator's
            noise-free scan with the same kernel): NPS of the difference.
        roi_size: ROI side in pixels.
        max_rois: use at most this many ROIs.
        max_slices: candidate ROIs from at most this many slices, evenly spaced.
        series: DICOM only: the series to read (SeriesNumber or SeriesInstanceUID).
    """
    from ctharmonize.io import atomic_path, check_output
    from ctharmonize.physics.nps import measure_nps
    from ctharmonize.physics.plots import image_quality_plot

    check_output(out, [input, mask, reference], overwrite)
    volume = _read(input, series)
    extra = _noise_inputs(volume, mask, reference)
    noise = _measured(input, measure_nps, volume.array, volume.spacing, fov_mask=volume.fov_mask,
                      roi_size=int(roi_size), max_rois=int(max_rois), max_slices=int(max_slices), **extra)
    doc = {**_header(input, volume), "mask": mask, "reference": reference, **noise.summary()}
    with atomic_path(out, overwrite=overwrite, directory=True, record=True) as tmp:
        write_json(doc, tmp / "nps.json")
        image_quality_plot(tmp / "nps.png", noise=noise, title=Path(input).name)
    return json.dumps(jsonable({"noise_sd_hu": noise.noise_sd, "peak_frequency_lp_cm": noise.peak_frequency,
                                 "rois": len(noise.rois), "out": os.fspath(out)}), indent=2)


def detectability(
    input: str,  # noqa: A002 - the CLI flag name
    out: str,
    overwrite: bool = False,
    mask: str | None = None,
    reference: str | None = None,
    roi_size: int = 32,
    max_rois: int = 64,
    max_slices: int = 32,
    diameter_mm: float = 4.0,
    contrast_hu: float = 100.0,
    viewing_distance_mm: float = 500.0,
    magnification: float = 1.0,
    alpha: float = 1e-8,
    series: str | None = None,
) -> str:
    """Detectability index d' (NPWE, and paper 001 Eq. 9) of a disk from the measured MTF and NPS.

    Writes detectability.json (d', constants, MTF and NPS results) + image_quality.png in ``out``.

    Args:
        input: CT volume (DICOM series folder/file or NIfTI) in HU.
        out: output folder (refused if it exists, unless --overwrite).
        overwrite: replace an earlier ctharmonize output at ``out`` (nothing else is replaced).
        mask: label map on the image grid; NPS ROIs only where it is non-zero.
        reference: noise-free image of the same reconstruction on the image grid: NPS of the difference.
        roi_size: NPS ROI side in pixels.
        max_rois: use at most this many NPS ROIs.
        max_slices: measure at most this many slices, evenly spaced.
        diameter_mm: task disk diameter (mm).
        contrast_hu: task disk contrast (HU).
        viewing_distance_mm: reader distance to the display (mm), for the eye filter and the internal noise.
        magnification: display magnification (displayed size / physical size).
        alpha: internal noise coefficient: N_i = alpha * viewing_distance_mm^2 (HU^2 mm^2).
        series: DICOM only: the series to read (SeriesNumber or SeriesInstanceUID).
    """
    from ctharmonize.io import atomic_path, check_output
    from ctharmonize.physics.detectability import ObserverModel
    from ctharmonize.physics.detectability import detectability as compute
    from ctharmonize.physics.edge_mtf import skin_air_mtf
    from ctharmonize.physics.nps import measure_nps
    from ctharmonize.physics.plots import image_quality_plot

    model = ObserverModel(diameter_mm=_positive("diameter_mm", diameter_mm), contrast_hu=float(contrast_hu),
                          viewing_distance_mm=_positive("viewing_distance_mm", viewing_distance_mm),
                          magnification=_positive("magnification", magnification), alpha=float(alpha))
    if not (math.isfinite(model.alpha) and model.alpha >= 0):
        raise ConfigError(None, f"--alpha must be a number >= 0, got {alpha!r}")
    check_output(out, [input, mask, reference], overwrite)
    volume = _read(input, series)
    extra = _noise_inputs(volume, mask, reference)
    body = _body(volume)
    edge = _measured(input, skin_air_mtf, volume.array, volume.spacing, fov_mask=volume.fov_mask, body=body,
                     max_slices=int(max_slices))
    noise = _measured(input, measure_nps, volume.array, volume.spacing, fov_mask=volume.fov_mask, body=body,
                      roi_size=int(roi_size), max_rois=int(max_rois), max_slices=int(max_slices), **extra)
    result = compute(edge, noise, model)
    mtf_doc = edge.summary()
    mtf_doc.pop("esf")
    doc = {**_header(input, volume), **result.summary(), "mask": mask, "reference": reference,
           "mtf": mtf_doc, "nps": {k: v for k, v in noise.summary().items() if k != "nps2d"}}
    with atomic_path(out, overwrite=overwrite, directory=True, record=True) as tmp:
        write_json(doc, tmp / "detectability.json")
        image_quality_plot(tmp / "image_quality.png", edge=edge, noise=noise, title=Path(input).name)
    return json.dumps(jsonable({"dprime_npwe": result.dprime_npwe, "dprime_pwei": result.dprime_pwei,
                                 "mtf50_lp_cm": edge.mtf50, "noise_sd_hu": noise.noise_sd,
                                 "out": os.fspath(out)}), indent=2)
