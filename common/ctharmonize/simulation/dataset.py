"""Write a simulated multi-vendor, multi-kernel dataset: NIfTI (and DICOM), labels, datalist.json.

Layout under ``out_dir``::

    datalist.json  labels.json
    images/<subject>_<kernel>.nii.gz      labels/<subject>_labels.nii.gz
    lungs/<subject>_lung.nii.gz           ground_truth/<subject>_gt.nii.gz
    dicom/<subject>_<kernel>/             (with dicom=True)

Within a vendor every subject is reconstructed with both of its kernels from one noisy
sinogram (paired, pixel-aligned: same ``pair_id``); different vendors get different subjects.
"""

from __future__ import annotations

import inspect
import json
import os
from pathlib import Path

import nibabel as nib
import numpy as np

from ctharmonize.errors import ConfigError
from ctharmonize.io.atomic import atomic_path, check_writable
from ctharmonize.io.write import write_volume
from ctharmonize.simulation.labels import LUNG_LABELS, TISSUE_LABELS
from ctharmonize.simulation.phantom import Phantom, generate_phantom
from ctharmonize.simulation.scan import simulate_scan
from ctharmonize.simulation.vendors import get_vendor

__all__ = ["generate_dataset", "assign_splits", "labels_document"]


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
    size: int = 256,
    slices: int = 32,
    seed: int = 0,
    dicom: bool = False,
    vendors: tuple[str, ...] | list[str] = ("siemens", "ge"),
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Simulate ``subjects`` chests per vendor and write them; returns the path of ``datalist.json``.

    Args:
        out_dir: dataset folder (must not exist unless ``overwrite``).
        subjects: subjects per vendor. size: in-plane matrix. slices: slices per volume.
        seed: master seed (phantoms and noise derive from it).
        dicom: also write DICOM series (``dicom/<subject>_<kernel>/``).
        vendors: vendor keys. overwrite: replace an existing dataset.
        progress: show a progress bar over subjects.
    """
    out_dir = Path(out_dir)
    if int(subjects) < 1:
        raise ConfigError(None, f"subjects must be >= 1, got {subjects}")
    if isinstance(vendors, str):
        vendors = [v.strip() for v in vendors.split(",") if v.strip()]
    specs = [get_vendor(v) for v in vendors]
    check_writable(out_dir, overwrite)
    jobs = [(vi, spec, i) for vi, spec in enumerate(specs) for i in range(int(subjects))]
    splits = assign_splits(int(subjects))
    from tqdm.auto import tqdm

    entries = []
    with atomic_path(out_dir, overwrite=overwrite, directory=True, record=True) as tmp:
        for vi, spec, i in tqdm(jobs, desc="simulate", unit="subject", disable=not progress):
            subject = f"sim-{spec.name}-{i:03d}"
            ph_seed = int(np.random.SeedSequence([int(seed), vi, i]).generate_state(1)[0] % (2**31))
            ph = generate_phantom(ph_seed, size=size, slices=slices, fov_mm=spec.recon_fov_mm,
                                  fov_center_mm=spec.fov_center_mm, slice_thickness=spec.slice_thickness_mm)
            vols = simulate_scan(ph, spec.name, seed=int(seed) * 7919 + i)
            rel = {"labels": f"labels/{subject}_labels.nii.gz", "lung": f"lungs/{subject}_lung.nii.gz",
                   "ground_truth": f"ground_truth/{subject}_gt.nii.gz"}
            _write_label_map(ph.labels, ph, tmp / rel["labels"])
            _write_label_map(ph.lung, ph, tmp / rel["lung"])
            write_volume(ph.volume(), tmp / rel["ground_truth"])
            for name, vol in vols.items():
                image = f"images/{subject}_{name}.nii.gz"
                _write_image(vol, tmp / image)
                entry = {"image": image, "kernel": name, "vendor": spec.name, "subject": subject,
                         "split": splits[i], **rel, "pair_id": subject}
                if dicom:
                    folder = f"dicom/{subject}_{name}"
                    write_volume(vol, tmp / folder, series_description_suffix="",
                                 derivation_description="simulated by ctharmonize.simulation")
                    entry["dicom"] = folder
                entries.append(entry)
        datalist = {
            "name": "ctharmonize-simulated",
            "description": f"Simulated chest CT: {int(subjects)} subjects per vendor ({', '.join(s.name for s in specs)}), "
                           f"{size}x{size}x{slices}, seed {seed}. Kernels of one subject share a noisy sinogram.",
            "labels": {v: k for k, v in TISSUE_LABELS.items()},
            "data": entries,
        }
        (tmp / "labels.json").write_text(json.dumps(labels_document(), indent=2) + "\n")
        (tmp / "datalist.json").write_text(json.dumps(datalist, indent=2) + "\n")
    return out_dir / "datalist.json"
