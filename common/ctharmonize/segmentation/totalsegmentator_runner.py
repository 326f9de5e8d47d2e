"""Run TotalSegmentator (if installed, with local weights) on a CT and return its label map.

TotalSegmentator is optional: it needs a newer torch than this project pins, so it lives in
another environment. Nothing is downloaded: weights must already be in
``$TOTALSEG_HOME_DIR/nnunet/results`` (default ``~/.totalsegmentator``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ctharmonize.errors import ConfigError, WeightsError
from ctharmonize.io.volume import Volume
from ctharmonize.segmentation.image_input import as_segmentation_input

__all__ = ["totalsegmentator_home", "run_totalsegmentator", "class_names"]


def totalsegmentator_home() -> Path:
    """TotalSegmentator's home dir: ``$TOTALSEG_HOME_DIR`` or ``~/.totalsegmentator``."""
    env = os.environ.get("TOTALSEG_HOME_DIR")
    return Path(env).expanduser() if env else Path.home() / ".totalsegmentator"


def _require(name: str | None):
    try:
        from totalsegmentator.python_api import totalsegmentator  # type: ignore[import-not-found]
    except ImportError as err:
        raise ConfigError(
            name,
            "backend 'totalsegmentator' needs the totalsegmentator package, which is not installed "
            "(it requires a newer torch than this environment; run it in its own environment "
            "or use backend='threshold' / 'lungmask')",
        ) from err
    results = totalsegmentator_home() / "nnunet" / "results"
    if not results.is_dir() or not any(results.iterdir()):
        raise WeightsError(
            results, "TotalSegmentator weights not found (set TOTALSEG_HOME_DIR; nothing is downloaded)"
        )
    return totalsegmentator


def class_names(task: str) -> dict[int, str]:
    """TotalSegmentator's {label id: class name} for ``task`` (needs the package)."""
    from totalsegmentator.map_to_binary import class_map  # type: ignore[import-not-found]

    return {int(k): str(v) for k, v in class_map[task].items()}


def run_totalsegmentator(
    image: Volume | np.ndarray,
    task: str,
    roi_subset: list[str] | None = None,
    spacing=None,
    device: str | None = None,
    name: str | None = None,
) -> tuple[np.ndarray, dict[int, str]]:
    """(labels (Z, Y, X) int, {id: class name}) from TotalSegmentator's multilabel output.

    Raises ConfigError when the package is missing, WeightsError when its weights are, and
    ConfigError (one line) when TotalSegmentator itself fails (e.g. a licensed task).
    """
    run = _require(name)
    import nibabel as nib

    inp = as_segmentation_input(image, spacing, name)
    vol = image if isinstance(image, Volume) else Volume(inp.hu, spacing=inp.spacing)
    hu = np.where(inp.fov, inp.hu, -1024.0).astype(np.float32)
    nifti = nib.Nifti1Image(np.transpose(hu, (2, 1, 0)), vol.affine_ras())
    kwargs = dict(task=task, ml=True, quiet=True)
    if roi_subset:
        kwargs["roi_subset"] = roi_subset
    if device is not None:
        kwargs["device"] = "gpu" if str(device).startswith("cuda") else str(device)
    try:
        seg = run(nifti, None, **kwargs)
    except Exception as err:  # noqa: BLE001 - report any TotalSegmentator failure on one line
        raise ConfigError(name, f"TotalSegmentator task {task!r} failed: {type(err).__name__}: {err}") from err
    labels = np.transpose(np.asarray(seg.dataobj).astype(np.int32), (2, 1, 0))
    return labels, class_names(task)
