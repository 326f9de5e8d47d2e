"""Write paper 001's paired set: every phantom x kernel x dose rendition with one ground truth.

``ctharmonize simulate --preset force_family`` (:func:`generate_force_family`). Layout under
``out_dir`` as :mod:`~ctharmonize.simulation.dataset`, with one image per rendition::

    datalist.json  labels.json
    images/<subject>_<rendition key>.nii.gz   e.g. sim-force-000_siemens_br40f_ir3_1p3mgy.nii.gz
    labels/<subject>_labels.nii.gz  lungs/<subject>_lung.nii.gz  ground_truth/<subject>_gt.nii.gz

Every entry of a subject names the same ``ground_truth`` (the phantom's noise-free, blur-free HU on
the 500 mm grid), ``pair_id`` = subject (all renditions pixel-aligned), ``kernel`` = its domain,
``dose`` (low / high), ``ctdivol_mgy``, ``iterative_strength``, ``kernel_group``, ``rendition``
(paper name, e.g. ``Br40f(3)``). Splits are by phantom (all renditions of a subject share one).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ctharmonize.errors import ConfigError
from ctharmonize.io.atomic import atomic_path, check_writable
from ctharmonize.io.write import write_volume
from ctharmonize.simulation.dataset import (
    Acquisition,
    _write_image,
    _write_label_map,
    assign_splits,
    labels_document,
)
from ctharmonize.simulation.force_family import (
    FORCE_DOSES_MGY,
    FORCE_FAMILY,
    FORCE_FOV_MM,
    FORCE_SCANNER,
    FORCE_SLICE_THICKNESS_MM,
    scan_family,
)
from ctharmonize.simulation.labels import TISSUE_LABELS
from ctharmonize.simulation.phantom import generate_phantom

__all__ = ["FORCE_PRESET", "generate_force_family"]

#: the ``--preset`` name that selects this dataset
FORCE_PRESET = "force_family"


def generate_force_family(out_dir: str | os.PathLike, subjects: int = 4, size: int = 512, slices: int = 32,
                          seed: int = 0, dicom: bool = False, overwrite: bool = False, progress: bool = True,
                          *, ir_strength: float = 1.0, split: str | None = None) -> Path:
    """Simulate ``subjects`` chest phantoms, each in all 32 renditions; returns ``datalist.json``'s path.

    Args:
        out_dir: dataset folder (must not exist unless ``overwrite``).
        subjects: phantoms. size: in-plane matrix over the 500 mm FOV (512: 0.98 mm pixels).
        slices: slices per volume (1 mm thick).
        seed: master seed (phantom ``i`` from ``SeedSequence([seed, 0, i])``, as the basic preset).
        dicom: also write DICOM series. overwrite: replace an existing dataset. progress: progress bar.
        ir_strength: multiple of the ADMIRE-like denoising of the "(3)" renditions (0: they are FBP).
        split: put every subject in this split; None = ~60/20/20 by phantom.
    """
    if int(subjects) < 1:
        raise ConfigError(None, f"subjects must be >= 1, got {subjects}")
    if not ir_strength >= 0:
        raise ConfigError(None, f"ir_strength must be >= 0, got {ir_strength}")
    out_dir = Path(out_dir)
    check_writable(out_dir, overwrite)
    n = int(subjects)
    splits = assign_splits(n) if split is None else [str(split)] * n
    from tqdm.auto import tqdm

    entries = []
    with atomic_path(out_dir, overwrite=overwrite, directory=True, record=True) as tmp:
        for i in tqdm(range(n), desc="simulate", unit="phantom", disable=not progress):
            subject = f"sim-force-{i:03d}"
            ph_seed = int(np.random.SeedSequence([int(seed), 0, i]).generate_state(1)[0] % (2**31))
            ph = generate_phantom(ph_seed, size=int(size), slices=int(slices), fov_mm=FORCE_FOV_MM,
                                  fov_center_mm=FORCE_SCANNER.fov_center_mm,
                                  slice_thickness=FORCE_SLICE_THICKNESS_MM)
            rel = {"labels": f"labels/{subject}_labels.nii.gz", "lung": f"lungs/{subject}_lung.nii.gz",
                   "ground_truth": f"ground_truth/{subject}_gt.nii.gz"}
            _write_label_map(ph.labels, ph, tmp / rel["labels"])
            _write_label_map(ph.lung, ph, tmp / rel["lung"])
            write_volume(ph.volume(), tmp / rel["ground_truth"])
            for r, vol in scan_family(ph, seed=int(seed) * 104729 + i, ir_strength=ir_strength):
                image = f"images/{subject}_{r.key}.nii.gz"
                _write_image(vol, tmp / image)
                acq = Acquisition(FORCE_FOV_MM, tuple(FORCE_SCANNER.fov_center_mm), r.mas, r.ctdivol_mgy,
                                  FORCE_SLICE_THICKNESS_MM, 1.0)
                entry = {"image": image, "kernel": r.domain, "vendor": FORCE_SCANNER.name, "subject": subject,
                         "split": splits[i], **rel, "pair_id": subject, "rendition": r.dicom_name,
                         "kernel_group": r.group, "iterative_strength": r.iterative_strength, "dose": r.dose,
                         "ctdivol_mgy": r.ctdivol_mgy,
                         "acquisition": {**asdict(acq), "fov_center_mm": list(acq.fov_center_mm),
                                         "pixel_spacing_mm": round(float(ph.spacing[0]), 4),
                                         "processing": vol.header.extra.get("processing", "FBP")}}
                if dicom:
                    folder = f"dicom/{subject}_{r.key}"
                    write_volume(vol, tmp / folder, series_description_suffix="",
                                 derivation_description="simulated by ctharmonize.simulation")
                    entry["dicom"] = folder
                entries.append(entry)
        n_rend = len(entries) // n
        datalist = {
            "name": "ctharmonize-simulated-force-family",
            "description": f"Simulated chest CT, paper 001 kernel family on a SOMATOM Force-like scanner: {n} "
                           f"phantoms x {n_rend} renditions ({len(FORCE_FAMILY)} kernels with their ADMIRE-like "
                           f"levels x CTDIvol {' and '.join(f'{d:g}' for d in FORCE_DOSES_MGY)} mGy), "
                           f"{FORCE_FOV_MM:g} mm FOV, {int(size)}x{int(size)}x{int(slices)}, seed {seed}. "
                           "Every rendition of a phantom shares its noise-free ground truth; splits by phantom.",
            "labels": {v: k for k, v in TISSUE_LABELS.items()},
            "data": entries,
        }
        (tmp / "labels.json").write_text(json.dumps(labels_document(), indent=2) + "\n")
        (tmp / "datalist.json").write_text(json.dumps(datalist, indent=2) + "\n")
    return out_dir / "datalist.json"
