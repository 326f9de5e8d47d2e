"""Slice-wise harmonization of a CT volume with a 2-D image-to-image network.

The network maps (B, 1, H, W) tensors in **[-1, 1]** (HU window scaled) to the same shape
and range. :class:`SliceHarmonizer` does everything around it: HU window scaling, batching of
axial slices, padding to a multiple of the network's stride, AMP on GPU, restoring
outside-FOV voxels, and clipping the output HU to the trained window.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ctharmonize.transforms import hu_to_unit, unit_to_hu

__all__ = ["SliceHarmonizer", "default_batch_size"]


def default_batch_size(device: str | torch.device | None = None) -> int:
    """Slices per forward pass: 8 on CUDA, 2 on CPU (larger CPU batches were slower in
    ``benchmarks/bench_multipath_inference.py``). ``device`` None: CUDA when available."""
    on_cuda = torch.device(device).type == "cuda" if device is not None else torch.cuda.is_available()
    return 8 if on_cuda else 2


class SliceHarmonizer:
    """Apply a 2-D network to every axial slice of an HU volume.

    Args:
        network: module mapping (B, 1, H, W) in [-1, 1] to (B, 1, H, W) in [-1, 1].
        hu_min, hu_max: the HU window the network was trained on (paper 000: [-1024, 3072]).
        batch_size: slices per forward pass.
        device: torch device; default CUDA when available, else CPU.
        amp: bf16 autocast on CUDA (ignored on CPU).
        multiple: pad H and W up to a multiple of this (2 ** number of stride-2 layers).
        progress: optional callback ``progress(done_slices, total_slices)``.
    """

    def __init__(
        self,
        network: torch.nn.Module,
        hu_min: float = -1024.0,
        hu_max: float = 3072.0,
        batch_size: int = 8,
        device: str | torch.device | None = None,
        amp: bool = True,
        multiple: int = 4,
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        self.device = torch.device(device) if device is not None else torch.device(
            "cuda" if torch.cuda.is_available() else "cpu"
        )
        self.network = network.to(self.device).eval()
        self.hu_min, self.hu_max = float(hu_min), float(hu_max)
        self.batch_size = int(batch_size)
        self.amp = bool(amp) and self.device.type == "cuda"
        self.multiple = int(multiple)
        self.progress = progress

    def _pad(self, x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        h, w = x.shape[-2:]
        ph = (-h) % self.multiple
        pw = (-w) % self.multiple
        if ph or pw:
            mode = "reflect" if ph < h and pw < w else "replicate"
            x = F.pad(x, (0, pw, 0, ph), mode=mode)
        return x, h, w

    @torch.no_grad()
    def __call__(self, hu: np.ndarray, fov_mask: np.ndarray | None = None) -> np.ndarray:
        """Harmonize ``hu`` (Z, Y, X) in HU; return float32 (Z, Y, X) in HU.

        Output HU is clipped to ``[hu_min, hu_max]``; where ``fov_mask`` is False the input
        values are kept unchanged.
        """
        hu = np.asarray(hu, dtype=np.float32)
        if hu.ndim != 3:
            raise ValueError(f"expected a (Z, Y, X) HU volume, got shape {hu.shape}")
        out = np.empty_like(hu)
        total = hu.shape[0]
        for start in range(0, total, self.batch_size):
            stop = min(start + self.batch_size, total)
            x = torch.from_numpy(hu[start:stop]).unsqueeze(1).to(self.device)
            x, h, w = self._pad(hu_to_unit(x, self.hu_min, self.hu_max))
            with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                y = self.network(x)
            y = unit_to_hu(y.float()[..., :h, :w].clamp(-1.0, 1.0), self.hu_min, self.hu_max)
            out[start:stop] = y.squeeze(1).cpu().numpy()
            if self.progress is not None:
                self.progress(stop, total)
        if fov_mask is not None:
            outside = ~np.asarray(fov_mask, dtype=bool)
            out[outside] = hu[outside]
        return out
