"""Write a simulated multi-vendor, multi-kernel dataset: NIfTI (and DICOM), labels, datalist.json.

Layout under ``out_dir``::

    datalist.json  labels.json
    images/<subject>_<kernel>.nii.gz      labels/<subject>_labels.nii.gz
    lungs/<subject>_lung.nii.gz           ground_truth/<subject>_gt.nii.gz
    dicom/<subject>_<kernel>/             (with dicom=True)

Within a vendor every subject is reconstructed with both of its kernels from one noisy
sinogram (paired, pixel-aligned: same ``pair_id``); different vendors get different subjects,
except with ``traveling`` (every subject scanned at every site: a paired cross-vendor set).

The ``clinical`` preset (:data:`PRESETS`) writes 512² slices and draws, per subject, what varies
at a real site (:func:`draw_acquisition`): patient size, a reconstruction FOV that fits it
(so pixel spacing varies, 0.59-0.88 mm), the effective mAs (NLST-like low dose, CTDIvol stated)
and the slice thickness; every image then goes through the vendor's nonlinear processing.
Without a preset every subject of a vendor gets the vendor defaults and plain FBP (fast tests).
"""

from __future__ import annotations

import inspect
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from ctharmonize.errors import ConfigError
from ctharmonize.io.atomic import atomic_path, check_writable
from ctharmonize.io.write import write_volume
from ctharmonize.simulation.labels import LUNG_LABELS, TISSUE_LABELS
from ctharmonize.simulation.phantom import Phantom, generate_phantom
from ctharmonize.simulation.scan import simulate_scan
from ctharmonize.simulation.vendors import VendorSpec, get_vendor

__all__ = ["generate_dataset", "assign_splits", "labels_document", "Acquisition", "draw_acquisition", "PRESETS"]

#: named settings of :func:`generate_dataset` (explicit arguments override them)
PRESETS: dict[str, dict] = {
    "clinical": {"size": 512, "vary": True, "ir_strength": 1.0, "edge_strength": 1.0},
    "basic": {"size": 256, "vary": False, "ir_strength": 0.0, "edge_strength": 0.0},
}


@dataclass(frozen=True)
class Acquisition:
    """One subject's scan settings (mm, mAs, mGy)."""

    fov_mm: float
    fov_center_mm: tuple[float, float]
    mas: float
    ctdivol_mgy: float
    slice_thickness_mm: float
    body_scale: float


def draw_acquisition(spec: VendorSpec, rng: np.random.Generator | None) -> Acquisition:
    """Per-subject settings at a site of vendor ``spec``; ``rng`` None gives the vendor defaults.

    Patient size ``body_scale`` ~ U(0.88, 1.18); the FOV follows it (a technologist fits the FOV
    to the body: ``340 * body_scale + U(-25, 45)`` mm, clipped to the vendor's range); mAs is
    log-uniform in the vendor's range; thickness one of the vendor's options; the FOV centre is
    jittered by N(0, 4 mm) around the vendor's habit.
    """
    if rng is None:
        return Acquisition(spec.recon_fov_mm, tuple(spec.fov_center_mm), spec.default_mas,
                           round(spec.ctdivol(spec.default_mas), 3), spec.slice_thickness_mm, 1.0)
    scale = float(rng.uniform(0.88, 1.18))
    lo, hi = spec.fov_range_mm
    fov = float(np.clip(round(340.0 * scale + rng.uniform(-25.0, 45.0)), lo, hi))
    centre = tuple(float(round(c + rng.normal(0.0, 4.0), 1)) for c in spec.fov_center_mm)
    mas = float(round(np.exp(rng.uniform(np.log(spec.mas_range[0]), np.log(spec.mas_range[1]))), 1))
    thickness = float(rng.choice(np.asarray(spec.thickness_options_mm, float)))
    return Acquisition(fov, centre, mas, round(spec.ctdivol(mas), 3), thickness, round(scale, 3))


def _visiting_acquisition(site: Acquisition, spec: VendorSpec, vary: bool, key: list[int]) -> Acquisition:
    """``site``'s geometry (patient, FOV, thickness) scanned on ``spec``'s scanner at its own dose."""
    mas = (float(round(np.exp(np.random.default_rng(key).uniform(*np.log(spec.mas_range))), 1)) if vary
           else spec.default_mas)
    return Acquisition(site.fov_mm, site.fov_center_mm, mas, round(spec.ctdivol(mas), 3),
                       site.slice_thickness_mm, site.body_scale)


def assign_splits(n: int) -> list[str]:
    """Deterministic splits for ``n`` subjects of one vendor: ~60/20/20, >= 1 test subject when n >= 3."""
    if n <= 1:
        return ["train"] * n
    if n == 2:
        return ["train", "test"]
    n_test = max(1, round(0.2 * n))
    n_val = max(1, round(0.2 * n))
    return ["train"] * (n - n_test - n_val) + ["validation"] * n_val + ["test"] * n_test


def labels_document() -> dict:
    """The ``labels.json`` content: tissue codes and lung-mask codes."""
    return {
        "description": "Tissue label codes of the simulated phantoms (labels/*_labels.nii.gz) and lung-mask codes "
                       "(lungs/*_lung.nii.gz; lungmask convention, patient right = 1).",
        "labels": {str(k): v for k, v in TISSUE_LABELS.items()},
        "lung": {str(k): v for k, v in LUNG_LABELS.items()},
    }


def _write_image(vol, path: Path) -> None:
    """HU NIfTI with the vendor's padding value outside the FOV (as scanners' data converted to NIfTI)."""
    params = inspect.signature(write_volume).parameters
    write_volume(vol, path, **({"nifti_padding": True} if "nifti_padding" in params else {}))


def _write_label_map(array: np.ndarray, ph: Phantom, path: Path) -> None:
    """uint8 NIfTI with the phantom geometry (RAS affine, same as the images)."""
    affine = ph.volume().affine_ras()
    img = nib.Nifti1Image(np.ascontiguousarray(np.transpose(array, (2, 1, 0))).astype(np.uint8), affine)
    img.header.set_xyzt_units("mm")
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    with atomic_path(path) as tmp:
        nib.save(img, str(tmp))


def generate_dataset(
    out_dir: str | os.PathLike,
    subjects: int = 4,
    size: int | None = None,
    slices: int = 32,
    seed: int = 0,
    dicom: bool = False,
    vendors: tuple[str, ...] | list[str] = ("siemens", "ge"),
    overwrite: bool = False,
    progress: bool = True,
    *,
    preset: str | None = None,
    vary: bool | None = None,
    ir_strength: float | None = None,
    edge_strength: float | None = None,
    split: str | None = None,
    traveling: bool = False,
) -> Path:
    """Simulate ``subjects`` chests per vendor and write them; returns the path of ``datalist.json``.

    Args:
        out_dir: dataset folder (must not exist unless ``overwrite``).
        subjects: subjects per vendor. size: in-plane matrix (default: the preset's, 256 without).
        slices: slices per volume.
        seed: master seed (phantoms and noise derive from it).
        dicom: also write DICOM series (``dicom/<subject>_<kernel>/``).
        vendors: vendor keys. overwrite: replace an existing dataset.
        progress: show a progress bar over subjects.
        preset: ``"clinical"`` (512², per-subject acquisition, nonlinear processing) or ``"basic"``
            (the default: vendor defaults, plain FBP); the arguments below override it.
            ``"force_family"``: paper 001's Siemens Force kernel family instead
            (:func:`~ctharmonize.simulation.force_dataset.generate_force_family`; ``vendors`` is
            ignored, ``vary``/``traveling``/``edge_strength`` are refused).
        vary: draw FOV, dose, thickness and patient size per subject (:func:`draw_acquisition`).
        ir_strength, edge_strength: vendor processing strengths (see
            :func:`~ctharmonize.simulation.scan.simulate_scan`).
        split: put every subject in this split (e.g. ``"test"`` for a held-out test set drawn
            with a fresh seed); None = ~60/20/20 per vendor.
        traveling: scan every subject at every vendor's site (subjects ``sim-travel-<i>``, one
            ``pair_id`` across vendors: the cross-vendor paired set of a traveling phantom, as in
            paper 002): one phantom and geometry (patient size, FOV, thickness: the first vendor's
            draw, so all images are pixel-aligned), each vendor's own dose draw, noise, kernels
            and processing. ``subjects`` is then the number of subjects in all.
    """
    from ctharmonize.simulation.force_dataset import FORCE_PRESET, generate_force_family

    if preset is not None and preset not in PRESETS and preset != FORCE_PRESET:
        known = ", ".join(sorted([*PRESETS, FORCE_PRESET]))
        raise ConfigError(None, f"unknown simulation preset {preset!r}; known: {known}")
    if preset == FORCE_PRESET:  # paper 001's Force kernel family: its own fixed scanner, FOV and doses
        refused = [name for name, value in (("vary", vary), ("traveling", traveling)) if value]
        if refused or (edge_strength or 0) > 0:
            raise ConfigError(None, f"--preset {FORCE_PRESET} fixes the acquisition (one Siemens Force, 500 mm "
                                    f"FOV, 1.3/6.5 mGy); drop {', '.join(refused or ['edge_strength'])}")
        return generate_force_family(out_dir, subjects=subjects, size=512 if size is None else size, slices=slices,
                                     seed=seed, dicom=dicom, overwrite=overwrite, progress=progress,
                                     ir_strength=1.0 if ir_strength is None else ir_strength, split=split)
    chosen = dict(PRESETS[preset or "basic"])
    for key, value in (("size", size), ("vary", vary), ("ir_strength", ir_strength), ("edge_strength", edge_strength)):
        if value is not None:
            chosen[key] = value
    size, vary = int(chosen["size"]), bool(chosen["vary"])
    ir_strength, edge_strength = float(chosen["ir_strength"]), float(chosen["edge_strength"])
    out_dir = Path(out_dir)
    if int(subjects) < 1:
        raise ConfigError(None, f"subjects must be >= 1, got {subjects}")
    if isinstance(vendors, str):
        vendors = [v.strip() for v in vendors.split(",") if v.strip()]
    specs = [get_vendor(v) for v in vendors]
    check_writable(out_dir, overwrite)
    splits = assign_splits(int(subjects)) if split is None else [str(split)] * int(subjects)
    if traveling:  # one phantom per subject, scanned at every vendor's site
        jobs = [(i, f"sim-travel-{i:03d}", 0, list(enumerate(specs))) for i in range(int(subjects))]
    else:
        jobs = [(i, f"sim-{spec.name}-{i:03d}", vi, [(vi, spec)]) for vi, spec in enumerate(specs)
                for i in range(int(subjects))]
    from tqdm.auto import tqdm

    entries = []
    with atomic_path(out_dir, overwrite=overwrite, directory=True, record=True) as tmp:
        for i, subject, pvi, scanners in tqdm(jobs, desc="simulate", unit="subject", disable=not progress):
            ph_seed = int(np.random.SeedSequence([int(seed), pvi, i]).generate_state(1)[0] % (2**31))
            site = draw_acquisition(specs[pvi], np.random.default_rng([int(seed), pvi, i, 1]) if vary else None)
            ph = generate_phantom(ph_seed, size=size, slices=slices, fov_mm=site.fov_mm,
                                  fov_center_mm=site.fov_center_mm, slice_thickness=site.slice_thickness_mm,
                                  body_scale=site.body_scale)
            rel = {"labels": f"labels/{subject}_labels.nii.gz", "lung": f"lungs/{subject}_lung.nii.gz",
                   "ground_truth": f"ground_truth/{subject}_gt.nii.gz"}
            _write_label_map(ph.labels, ph, tmp / rel["labels"])
            _write_label_map(ph.lung, ph, tmp / rel["lung"])
            write_volume(ph.volume(), tmp / rel["ground_truth"])
            for vi, spec in scanners:
                acq = site if vi == pvi else _visiting_acquisition(site, spec, vary, [int(seed), vi, i, 2])
                vols = simulate_scan(ph, spec.name, mas=acq.mas, seed=int(seed) * 7919 + i,
                                     ir_strength=ir_strength, edge_strength=edge_strength)
                for name, vol in vols.items():
                    image = f"images/{subject}_{name}.nii.gz"
                    _write_image(vol, tmp / image)
                    entry = {"image": image, "kernel": name, "vendor": spec.name, "subject": subject,
                             "split": splits[i], **rel, "pair_id": subject,
                             "acquisition": {**asdict(acq), "fov_center_mm": list(acq.fov_center_mm),
                                             "pixel_spacing_mm": round(float(ph.spacing[0]), 4),
                                             "processing": vol.header.extra.get("processing", "FBP")}}
                    if dicom:
                        folder = f"dicom/{subject}_{name}"
                        write_volume(vol, tmp / folder, series_description_suffix="",
                                     derivation_description="simulated by ctharmonize.simulation")
                        entry["dicom"] = folder
                    entries.append(entry)
        datalist = {
            "name": "ctharmonize-simulated",
            "description": f"Simulated chest CT: {int(subjects)} subjects "
                           f"{'scanned at every site' if traveling else 'per vendor'} ({', '.join(s.name for s in specs)}), "
                           f"{size}x{size}x{slices}, seed {seed}, preset {preset or 'basic'}"
                           f"{' (per-subject FOV, dose, thickness, size)' if vary else ''}"
                           f"{f', processing IR x{ir_strength:g} edge x{edge_strength:g}' if ir_strength or edge_strength else ''}. "
                           "Kernels of one subject share a noisy sinogram.",
            "labels": {v: k for k, v in TISSUE_LABELS.items()},
            "data": entries,
        }
        (tmp / "labels.json").write_text(json.dumps(labels_document(), indent=2) + "\n")
        (tmp / "datalist.json").write_text(json.dumps(datalist, indent=2) + "\n")
    return out_dir / "datalist.json"
