"""CLI command ``ctharmonize simulate``."""

from __future__ import annotations

from ctharmonize.simulation.dataset import generate_dataset

__all__ = ["simulate"]


def simulate(out: str, subjects: int = 4, size: int | None = None, slices: int = 32, seed: int = 0,
             dicom: bool = False, vendors: str = "siemens,ge", overwrite: bool = False, progress: bool = True,
             preset: str | None = None, vary: bool | None = None, ir_strength: float | None = None,
             edge_strength: float | None = None, split: str | None = None, traveling: bool = False) -> str:
    """Generate a simulated multi-vendor, multi-kernel chest CT dataset with ground truth.

    Args:
        out: output folder (refused if it exists, unless --overwrite).
        subjects: subjects per vendor (with --traveling, subjects in all).
        size: in-plane matrix size (e.g. 128, 256, 512; default 512 with --preset clinical, else 256).
        slices: slices per volume.
        seed: master random seed.
        dicom: also write DICOM series under dicom/.
        vendors: comma-separated vendor keys (siemens, ge).
        overwrite: replace an earlier output folder of ctharmonize.
        progress: show a progress bar.
        preset: "clinical" (512², per-subject FOV/dose/thickness/patient size, nonlinear vendor
            processing) or "basic" (vendor defaults, plain FBP; the default). Flags below override it.
            "force_family": paper 001's set, every phantom in 32 renditions (11 Siemens Force-like
            kernels with their ADMIRE-like levels x CTDIvol 1.3 and 6.5 mGy, 500 mm FOV) paired
            with one ground truth; --vendors is ignored, --vary/--traveling refused.
        vary: draw FOV, dose, slice thickness and patient size per subject.
        ir_strength: iterative-reconstruction-like denoising, multiple of the vendor preset (0 = FBP).
        edge_strength: GE BONE nonlinear edge enhancement, multiple of the preset (0 = none).
        split: put every subject in this split (e.g. test, for a held-out set with a fresh seed).
        traveling: scan every subject on every vendor (one pixel-aligned phantom per subject, each
            site's own dose, noise and kernels): a paired cross-vendor set, like a traveling phantom.
    Returns:
        the path of the written datalist.json.
    """
    from ctharmonize.cli import comma_list
    from ctharmonize.io.output_check import check_output

    check_output(out, (), overwrite)
    vend = comma_list(vendors)
    return str(generate_dataset(out, subjects=subjects, size=size, slices=slices, seed=seed, dicom=dicom,
                                vendors=vend, overwrite=overwrite, progress=progress, preset=preset, vary=vary,
                                ir_strength=ir_strength, edge_strength=edge_strength, split=split,
                                traveling=traveling))
