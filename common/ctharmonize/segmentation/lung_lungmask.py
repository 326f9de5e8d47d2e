"""The ``lungmask`` backend: lungmask's U-Net models (R231, LTRCLobes, R231CovidWeb).

Uses the ``lungmask`` package when it is importable; otherwise runs the state-dict compatible
:class:`~ctharmonize.segmentation.lungmask_unet.LungmaskUNet` with lungmask's preprocessing:
orient to LPS, clip HU to [-1024, 600], per slice crop to the body bounding box (lungmask's
``simple_bodymask``: > -500 HU at 128x128, closing, hole filling, largest component) and resize to
256x256 (linear), scale to [0, 1] by (HU + 1024) / 1624; argmax per slice; postprocessing keeps
the largest 3-D component per label and fills its holes (lungmask also merges small islands into
the neighbouring label; here they are dropped), then maps back (nearest) into each slice's box.

Weights are never downloaded: pass ``weights=PATH`` or place the file under
``torch.hub.get_dir()/checkpoints/`` (where lungmask's own download puts it).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from ctharmonize.errors import ConfigError, WeightsError
from ctharmonize.io.volume import Volume
from ctharmonize.io.weights_file import load_weights_file
from ctharmonize.segmentation.image_input import as_segmentation_input
from ctharmonize.segmentation.lungmask_unet import LungmaskUNet
from ctharmonize.segmentation.orientation import to_lps_order

__all__ = ["LUNGMASK_WEIGHT_FILES", "segment_lungs_lungmask", "find_lungmask_weights", "load_lungmask_model"]

# model name -> file name of lungmask's release assets (as torch.hub stores them)
LUNGMASK_WEIGHT_FILES = {
    "R231": "unet_r231-d5d2fc3d.pth",
    "LTRCLobes": "unet_ltrclobes-3a07043d.pth",
    "R231CovidWeb": "unet_r231covid-0de78a7e.pth",
}
# LTRCLobes classes: 1 left upper, 2 left lower, 3 right upper, 4 right middle, 5 right lower lobe
_LOBES_TO_LUNGS = np.array([0, 2, 2, 1, 1, 1], dtype=np.uint8)


def find_lungmask_weights(model: str = "R231", weights: str | os.PathLike | None = None) -> Path:
    """Path of the weights file: ``weights`` if given, else the torch hub cache. Raises WeightsError."""
    if weights is not None:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise WeightsError(path, "lungmask weights file not found")
        return path
    if model not in LUNGMASK_WEIGHT_FILES:
        raise ConfigError(None, f"unknown lungmask model {model!r}; choose from {', '.join(LUNGMASK_WEIGHT_FILES)}")
    path = Path(torch.hub.get_dir()) / "checkpoints" / LUNGMASK_WEIGHT_FILES[model]
    if not path.is_file():
        raise WeightsError(
            path,
            f"lungmask {model} weights not found (looked in the torch hub cache); "
            "pass weights=PATH to a downloaded .pth file (nothing is downloaded)",
        )
    return path


def load_lungmask_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> LungmaskUNet:
    """Build the U-Net and load a lungmask state dict (strict). Raises WeightsError."""
    path = Path(path)
    state = load_weights_file(path, "lungmask weights file not found", unwrap_state_dict=True)
    if "last.bias" not in state:
        raise WeightsError(path, "not a lungmask U-Net state dict (no 'last.bias')")
    model = LungmaskUNet(n_classes=int(state["last.bias"].shape[0]))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        first = str(err).splitlines()[1:2] or [str(err)]
        raise WeightsError(path, f"weights do not match lungmask's U-Net: {first[0].strip()}") from err
    return model.eval().to(device)


def _simple_bodymask(img: np.ndarray) -> np.ndarray:
    """lungmask's body mask of one slice (HU), computed at 128x128 and zoomed back."""
    shape = np.asarray(img.shape)
    small = ndimage.zoom(img, 128 / shape, order=0)
    mask = ndimage.binary_closing(small > -500)
    mask = ndimage.binary_fill_holes(mask, structure=np.ones((3, 3)))
    mask = ndimage.binary_erosion(mask, iterations=2)
    labels, n = ndimage.label(mask)
    if n > 0:
        sizes = np.bincount(labels.ravel())
        sizes[0] = 0
        mask = ndimage.binary_dilation(labels == np.argmax(sizes), iterations=2)
    return ndimage.zoom(mask, shape / 128.0, order=0)


def _crop_box(img: np.ndarray) -> tuple[int, int, int, int]:
    mask = _simple_bodymask(img)
    if not mask.any():
        return 0, 0, img.shape[0], img.shape[1]
    ys, xs = np.nonzero(mask)
    return int(ys.min()), int(xs.min()), int(ys.max()) + 1, int(xs.max()) + 1


def _postprocess(labels: np.ndarray, n_classes: int) -> np.ndarray:
    out = np.zeros_like(labels)
    for lab in range(1, n_classes):
        comps, n = ndimage.label(labels == lab)
        if n == 0:
            continue
        sizes = np.bincount(comps.ravel())
        sizes[0] = 0
        keep = comps == np.argmax(sizes)
        keep = ndimage.binary_fill_holes(keep) if labels.shape[0] > 1 else ndimage.binary_fill_holes(keep[0])[None]
        out[keep & (out == 0)] = lab
    return out


def _run_own(hu_lps: np.ndarray, model: LungmaskUNet, device, batch_size: int, resolution: int) -> np.ndarray:
    n_classes = model.last.out_channels
    img = np.clip(hu_lps, -1024, 600).astype(np.float32)
    boxes, slices = [], []
    for z in range(img.shape[0]):
        y0, x0, y1, x1 = _crop_box(img[z])
        crop = img[z, y0:y1, x0:x1]
        slices.append(ndimage.zoom(crop, (resolution / crop.shape[0], resolution / crop.shape[1]), order=1))
        boxes.append((y0, x0, y1, x1))
    net_in = (np.stack(slices)[:, None] + 1024.0) / 1624.0
    preds = []
    with torch.inference_mode():
        for start in range(0, len(net_in), batch_size):
            batch = torch.as_tensor(net_in[start : start + batch_size], dtype=torch.float32, device=device)
            preds.append(model(batch).argmax(1).to(torch.uint8).cpu().numpy())
    pred = _postprocess(np.concatenate(preds), n_classes)
    out = np.zeros(img.shape, dtype=np.uint8)
    for z, (y0, x0, y1, x1) in enumerate(boxes):
        h, w = y1 - y0, x1 - x0
        out[z, y0:y1, x0:x1] = ndimage.zoom(pred[z], (h / resolution, w / resolution), order=0)[:h, :w]
    return out


def segment_lungs_lungmask(
    image: Volume | np.ndarray,
    spacing=None,
    device: str | None = None,
    weights: str | os.PathLike | None = None,
    model: str = "R231",
    batch_size: int = 8,
    resolution: int = 256,
    name: str | None = None,
) -> np.ndarray:
    """Lung mask uint8 (Z, Y, X): 0 background, 1 right, 2 left, with a lungmask model.

    ``image``: Volume or (Z, Y, X) HU array (an array is taken as LPS-ordered, head at the last
    slice). ``model``: R231, LTRCLobes (lobes merged to lungs) or R231CovidWeb. ``device``:
    "cpu", "cuda", ... (default: CUDA when available). ``resolution`` is the network's slice size
    (lungmask: 256; smaller only for tests).
    """
    inp = as_segmentation_input(image, spacing, name)
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    hu = np.where(inp.fov, inp.hu, -1024.0).astype(np.float32)
    hu_lps, undo = to_lps_order(hu, inp.direction)
    try:
        from lungmask.mask import LMInferer  # type: ignore[import-not-found]
    except ImportError:
        LMInferer = None  # noqa: N806
    if LMInferer is not None and resolution == 256:
        path = find_lungmask_weights(model, weights)
        inferer = LMInferer(modelname=model, modelpath=str(path), force_cpu=str(device) == "cpu", tqdm_disable=True)
        pred = np.asarray(inferer.apply(hu_lps), dtype=np.uint8)
        n_classes = 6 if (model == "LTRCLobes" or pred.max() > 2) else 3
    else:
        path = find_lungmask_weights(model, weights)
        net = load_lungmask_model(path, device)
        n_classes = net.last.out_channels
        if n_classes not in (3, 6):
            raise WeightsError(path, f"model predicts {n_classes} classes; expected 3 (lungs) or 6 (lobes)")
        pred = _run_own(hu_lps, net, device, batch_size, resolution)
    if n_classes == 6:
        pred = _LOBES_TO_LUNGS[np.clip(pred, 0, 5)]
    return undo(pred).astype(np.uint8)
