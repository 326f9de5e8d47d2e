"""CLI command ``ctharmonize simulate``."""

from __future__ import annotations

from ctharmonize.simulation.dataset import generate_dataset

__all__ = ["simulate"]


def simulate(out: str, subjects: int = 4, size: int = 256, slices: int = 32, seed: int = 0, dicom: bool = False,
             vendors: str = "siemens,ge", overwrite: bool = False, progress: bool = True) -> str:
    """Generate a simulated multi-vendor, multi-kernel chest CT dataset with ground truth.

    Args:
        out: output folder (refused if it exists, unless --overwrite).
        subjects: subjects per vendor.
        size: in-plane matrix size (e.g. 128, 256, 512).
        slices: slices per volume.
        seed: master random seed.
        dicom: also write DICOM series under dicom/.
        vendors: comma-separated vendor keys (siemens, ge).
        overwrite: replace an earlier output folder of ctharmonize.
        progress: show a progress bar.
    Returns:
        the path of the written datalist.json.
    """
    from ctharmonize.cli import comma_list
    from ctharmonize.io.output_check import check_output

    check_output(out, (), overwrite)
    vend = comma_list(vendors)
    return str(generate_dataset(out, subjects=subjects, size=size, slices=slices, seed=seed, dicom=dicom,
                                vendors=vend, overwrite=overwrite, progress=progress))
