"""FID of two CT image sets in a feature network's space (paper 003 Table I), by default the project's CT one.

Images: 2-D slices (N, 1, H, W), by default in the network space **[-1, 1]** (HU clipped to
[-1024, 3072], ``(hu + 1024) / 2048 - 1``: what the generators read and write); ``intensity="hu"`` takes
HU and maps them so. Values far outside the declared range are refused, so HU passed as [-1, 1] (or the
reverse) is an error, not a wrong number. In [-1, 1] mode values are clipped to [-1, 1] (a generator's
overshoot; unit_to_hu clips the same way when the slice is written as HU).

Feature networks:

* ``None`` (default): the shipped :class:`~ctharmonize.networks.CTKernelFeatures`; the embedding is the
  global average pool of its last stage, 128-d. Not comparable with Inception FIDs (paper 003's numbers).
* a path: a TorchScript or ``torch.export`` Inception-style network (:func:`load_inception_features`):
  takes (B, 3, H, W), returns pooled features (B, D) (e.g. 2048-d InceptionV3 pool features).
* any ``torch.nn.Module`` taking (B, 1, H, W) in [-1, 1] and returning a tensor (B, D) or (B, D, h, w),
  or a list of feature maps (B, C_s, h_s, w_s) as ``CTKernelFeatures`` does (``stages`` picks them).
"""

from __future__ import annotations

import math
import os
import warnings
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ctharmonize.errors import WeightsError
from ctharmonize.metrics.frechet_distance import frechet_distance_from_moments, gaussian_moments

__all__ = ["INTENSITIES", "InceptionFeatures", "feature_embeddings", "fid", "fid_both_directions",
           "load_inception_features"]

#: accepted ``intensity`` values: "unit" = [-1, 1] network space, "hu" = Hounsfield units
INTENSITIES = ("unit", "hu")
#: ImageNet channel mean and SD on [0, 1] RGB (torchvision's Inception input convention)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
NORMALIZATIONS = ("imagenet", "zero_one", "minus_one_one")
# |x| above this in "unit" mode, or all |x| below it in "hu" mode, means the other convention
_RANGE_GUARD = 2.0

Images = torch.Tensor | np.ndarray | Iterable[torch.Tensor | np.ndarray]


class InceptionFeatures(nn.Module):
    """Adapter: CT slices (B, 1, H, W) in [-1, 1] → a 3-channel network's pooled features (B, D).

    Maps [-1, 1] to [0, 1], repeats the channel three times, resizes to ``image_size`` (bilinear with
    antialiasing, as PIL's resize in upstream StarGAN v2's FID; ``None`` keeps the size), then normalises:
    ``"imagenet"`` (torchvision convention, default), ``"zero_one"`` or ``"minus_one_one"``. A network output
    (B, D, h, w) is globally average-pooled.
    """

    def __init__(self, network: nn.Module, image_size: int | None = 299, normalization: str = "imagenet"):
        super().__init__()
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"unknown normalization {normalization!r}; use one of {', '.join(NORMALIZATIONS)}")
        self.network = network
        self.image_size = None if image_size is None else int(image_size)
        self.normalization = normalization
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = ((x + 1.0) / 2.0).repeat(1, 3, 1, 1)
        if self.image_size is not None and tuple(x.shape[-2:]) != (self.image_size, self.image_size):
            x = nn.functional.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear",
                                          align_corners=False, antialias=True)
        if self.normalization == "imagenet":
            x = (x - self.mean) / self.std
        elif self.normalization == "minus_one_one":
            x = 2.0 * x - 1.0
        out = self.network(x)
        if not isinstance(out, torch.Tensor) or out.dim() not in (2, 4):
            raise ValueError("the Inception-style network must return a tensor (B, D) or (B, D, h, w)")
        return out.mean(dim=(2, 3)) if out.dim() == 4 else out


class _FixedMode(nn.Module):
    """A loaded ``torch.export`` network: its mode was fixed at export (such modules refuse ``.eval()``)."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def train(self, mode: bool = True) -> _FixedMode:
        self.training = mode
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x)


def _archive_kind(path: Path) -> str | None:
    """The archive's kind from its zip member names: ``"torchscript"``, ``"export"`` (.pt2) or None."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return None
    if any(n.endswith("/constants.pkl") for n in names):
        return "torchscript"
    if any(n.endswith("/archive_format") for n in names):
        return "export"
    return None


def load_inception_features(path: str | os.PathLike, image_size: int | None = 299,
                            normalization: str = "imagenet") -> InceptionFeatures:
    """A user's Inception-style network from a file, wrapped in :class:`InceptionFeatures`.

    The file holds the architecture as well as the weights, so any Inception implementation works: a
    TorchScript module (``torch.jit.script(model).save(path)``) or a ``torch.export`` program
    (``torch.export.save(torch.export.export(model, (x,), dynamic_shapes=({0: Dim("batch")},)), path)``,
    exported in eval mode at ``image_size``) of a module taking (B, 3, H, W) and returning pooled features
    (B, D). Loaded on CPU, frozen, eval mode. A missing or unreadable file (e.g. a plain ``state_dict``,
    which lacks the architecture) is a one-line :class:`~ctharmonize.errors.WeightsError` naming it.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(path, "Inception-style feature network not found (a TorchScript or torch.export "
                                 "file: torch.jit.script(model).save(path))")
    kind = _archive_kind(path)
    if kind is None:
        raise WeightsError(path, "not a TorchScript or torch.export archive (a state_dict alone lacks the "
                                 "architecture: save torch.jit.script(model) instead)")
    try:
        with warnings.catch_warnings():  # torch.jit is deprecated in recent torch; still a supported format
            warnings.simplefilter("ignore", DeprecationWarning)
            if kind == "torchscript":
                module: nn.Module = torch.jit.load(str(path), map_location="cpu")
                module.eval()
            else:
                module = _FixedMode(torch.export.load(str(path)).module())
    except Exception as err:  # any failure means the archive is damaged or from an incompatible torch
        reason = next((line.strip() for line in str(err).splitlines() if line.strip()), type(err).__name__)
        raise WeightsError(path, f"cannot load the {kind} network from the file: {reason}") from err
    for p in module.parameters():
        p.requires_grad_(False)
    return InceptionFeatures(module, image_size=image_size, normalization=normalization)


def _resolve_network(network: nn.Module | str | os.PathLike | None) -> nn.Module:
    if network is None:
        from ctharmonize.networks.nets.ct_kernel_features import load_ct_kernel_features

        return load_ct_kernel_features()
    if isinstance(network, str | os.PathLike):
        return load_inception_features(network)
    if not isinstance(network, nn.Module):
        raise TypeError(f"network must be None, a path or a torch.nn.Module, got {type(network).__name__}")
    return network


def _batches(images: Images, batch_size: int) -> Iterator[torch.Tensor]:
    """(b, 1, H, W) float32 tensors of at most ``batch_size`` slices from an array or an iterable of them."""
    chunks = [images] if isinstance(images, torch.Tensor | np.ndarray) else images
    for chunk in chunks:
        t = torch.as_tensor(np.asarray(chunk) if not isinstance(chunk, torch.Tensor) else chunk)
        if t.dim() != 4 or t.shape[1] != 1:
            raise ValueError(f"images must be (N, 1, H, W) slices, got shape {tuple(t.shape)}")
        for start in range(0, t.shape[0], batch_size):
            yield t[start:start + batch_size].float()


def _to_unit(x: torch.Tensor, intensity: str) -> torch.Tensor:
    if not torch.all(torch.isfinite(x)):
        raise ValueError("images contain NaN or infinite values")
    peak = float(x.abs().max()) if x.numel() else 0.0
    if intensity == "unit":
        if peak > _RANGE_GUARD:
            raise ValueError(f"images in [-1, 1] expected, found |value| up to {peak:.4g}: "
                             "for HU pass intensity='hu'")
        return x.clamp(-1.0, 1.0)
    if peak <= _RANGE_GUARD:
        raise ValueError(f"images in HU expected, found all |value| <= {peak:.4g}: "
                         "for [-1, 1] images pass intensity='unit'")
    from ctharmonize.transforms.scale_hu import hu_to_unit

    return hu_to_unit(x)


def _pool(out: Any, stages: Sequence[int] | None) -> torch.Tensor:
    """The network output → (B, D): global average pool of each selected stage, concatenated."""
    if isinstance(out, list | tuple):
        chosen = [out[s] for s in (stages if stages is not None else (-1,))]
    elif isinstance(out, torch.Tensor):
        if stages is not None:
            raise ValueError("stages only apply to a network that returns a list of feature maps")
        chosen = [out]
    else:
        raise ValueError(f"the feature network returned {type(out).__name__}, not a tensor or a list of them")
    pooled = []
    for f in chosen:
        if f.dim() == 4:
            f = f.mean(dim=(2, 3))
        if f.dim() != 2:
            raise ValueError(f"feature maps must be (B, C, h, w) or (B, C), got shape {tuple(f.shape)}")
        pooled.append(f)
    return torch.cat(pooled, dim=1)


def _device(network: nn.Module, device: str | torch.device | None) -> torch.device:
    if device is not None:
        return torch.device(device)
    return next((p.device for p in network.parameters()), torch.device("cpu"))


def feature_embeddings(images: Images, network: nn.Module | str | os.PathLike | None = None,
                       batch_size: int = 8, stages: Sequence[int] | None = None, intensity: str = "unit",
                       device: str | torch.device | None = None) -> np.ndarray:
    """Per-slice embeddings (N, D), float64, of slices (N, 1, H, W) (or an iterable of such batches).

    The embedding is the global average pool (over h, w) of the network's output; for a network returning
    a list of stage maps (``CTKernelFeatures``), of the ``stages`` picked (default ``(-1,)``, the last:
    128-d for the shipped network; several are concatenated). ``intensity`` is "unit" ([-1, 1], default)
    or "hu". The network runs without gradients and in eval mode (BatchNorm on running statistics, so an
    embedding does not depend on the batch); its training mode is restored afterwards. ``device``: default
    the network's.
    """
    if intensity not in INTENSITIES:
        raise ValueError(f"unknown intensity {intensity!r}; use one of {', '.join(INTENSITIES)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    net = _resolve_network(network)
    dev = _device(net, device)
    was_training = net.training
    net.eval()
    out: list[np.ndarray] = []
    try:
        with torch.no_grad():
            for batch in _batches(images, batch_size):
                x = _to_unit(batch.to(dev), intensity)
                out.append(_pool(net(x), stages).double().cpu().numpy())
    finally:
        net.train(was_training)
    if not out:
        raise ValueError("no images given")
    return np.concatenate(out, axis=0)


def _moments(images: Images, net: nn.Module, **kwargs: Any) -> tuple[np.ndarray, np.ndarray]:
    return gaussian_moments(feature_embeddings(images, net, **kwargs))


def fid(real_images: Images, fake_images: Images, network: nn.Module | str | os.PathLike | None = None,
        batch_size: int = 8, stages: Sequence[int] | None = None, intensity: str = "unit",
        device: str | torch.device | None = None, eps: float = 1e-6) -> float:
    """FID (paper 003 eq. 15) between two slice sets (N, 1, H, W) in ``network``'s feature space.

    :func:`~ctharmonize.metrics.frechet_distance` of the :func:`feature_embeddings` of both sets. Units:
    squared feature units; lower is better; 0 for identical sets. ``network`` None = the shipped
    ``CTKernelFeatures`` (last stage, 128-d), a path = an Inception-style network file
    (:func:`load_inception_features`). Biased
    upwards for small sets: compare at equal set sizes.
    """
    net = _resolve_network(network)
    kwargs = {"batch_size": batch_size, "stages": stages, "intensity": intensity, "device": device}
    mu_r, sigma_r = _moments(real_images, net, **kwargs)
    mu_f, sigma_f = _moments(fake_images, net, **kwargs)
    return frechet_distance_from_moments(mu_r, sigma_r, mu_f, sigma_f, eps=eps)


def fid_both_directions(images_a: Images, images_b: Images, a_to_b: Images | None = None,
                        b_to_a: Images | None = None, network: nn.Module | str | os.PathLike | None = None,
                        batch_size: int = 8, stages: Sequence[int] | None = None, intensity: str = "unit",
                        device: str | torch.device | None = None, eps: float = 1e-6) -> Mapping[str, float]:
    """Paper 003 Table I form for one kernel pair k_a ↔ k_b; each real set is embedded once.

    Returns ``before`` = FID(A, B) (symmetric, so it is also the two-direction mean); ``a_to_b`` =
    FID(B, A harmonized to k_b); ``b_to_a`` = FID(A, B harmonized to k_a) (real set first); ``after`` =
    their mean (NaN unless both are given). Slices (N, 1, H, W) as in :func:`fid`.
    """
    net = _resolve_network(network)
    kwargs = {"batch_size": batch_size, "stages": stages, "intensity": intensity, "device": device}
    moments_a = _moments(images_a, net, **kwargs)
    moments_b = _moments(images_b, net, **kwargs)
    result = {"before": frechet_distance_from_moments(*moments_a, *moments_b, eps=eps),
              "a_to_b": math.nan, "b_to_a": math.nan, "after": math.nan}
    if a_to_b is not None:
        result["a_to_b"] = frechet_distance_from_moments(*moments_b, *_moments(a_to_b, net, **kwargs), eps=eps)
    if b_to_a is not None:
        result["b_to_a"] = frechet_distance_from_moments(*moments_a, *_moments(b_to_a, net, **kwargs), eps=eps)
    if a_to_b is not None and b_to_a is not None:
        result["after"] = 0.5 * (result["a_to_b"] + result["b_to_a"])
    return result
