"""Tiny simulated multi-vendor test data for the multipath bundle tests (written to a tmp folder)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ctharmonize.io import write_volume
from ctharmonize.networks import MultipathGenerator
from ctharmonize.simulation.phantom import generate_phantom
from ctharmonize.simulation.scan import simulate_scan

TINY = {"ngf": 4, "n_blocks": 1, "residual": False, "n_downsampling": 2}  # the paper architecture (no global residual)


def tiny_generator(seed: int = 0, **kwargs) -> MultipathGenerator:
    """A randomly initialised small generator (paper domains), eval mode."""
    torch.manual_seed(seed)
    return MultipathGenerator(**{**TINY, **kwargs}).eval()


def simulated_scans(seed: int, vendor: str, size: int = 32, slices: int = 2):
    """{domain: Volume} (HU, header, fov_mask) of one simulated subject."""
    return simulate_scan(generate_phantom(seed=seed, size=size, slices=slices), vendor=vendor, seed=seed)


def write_test_split(folder: Path, subjects_per_vendor: int = 2, size: int = 32, slices: int = 2) -> Path:
    """NIfTI scans (+ lung masks) of a 'test' split: Siemens subjects (B30f, B50f) and GE subjects
    (STANDARD, BONE); returns the datalist path."""
    folder.mkdir(parents=True, exist_ok=True)
    data = []
    for v, vendor in enumerate(("siemens", "ge")):
        for s in range(subjects_per_vendor):
            seed = 100 + 10 * v + s
            phantom = generate_phantom(seed=seed, size=size, slices=slices)
            lung = phantom.volume(np.asarray(phantom.lung, dtype=np.float32))
            write_volume(lung, folder / f"sub{seed}_lung.nii.gz")
            for domain, volume in simulate_scan(phantom, vendor=vendor, seed=seed).items():
                write_volume(volume, folder / f"sub{seed}_{domain}.nii.gz", sidecar=True)
                data.append({"image": f"sub{seed}_{domain}.nii.gz", "kernel": domain, "vendor": vendor,
                             "subject": f"sub{seed}", "split": "test", "lung": f"sub{seed}_lung.nii.gz"})
    path = folder / "datalist.json"
    path.write_text(json.dumps({"name": "tiny simulated test split", "data": data}, indent=1))
    return path
