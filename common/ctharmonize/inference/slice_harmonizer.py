"""``SliceHarmonizer``: the one volume-level harmonizer, built on any translator (HU in, HU out).

The translator (:mod:`ctharmonize.networks.translator`) maps (B, 1, H, W) slices in **[-1, 1]**
(HU window scaled) from a source to a target domain. :class:`SliceHarmonizer` does everything
around it: HU window scaling, batching of axial slices, padding to the translator's own
``spatial_multiple``, AMP on GPU, clipping the output HU to the trained window and restoring
outside-FOV voxels. Its call is the ``Harmonizer`` protocol: ``harmonizer(volume_hu, source,
target) -> volume_hu``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ctharmonize.inference.hu_path import HUPath
from ctharmonize.inference.source_domain import check_model_domain
from ctharmonize.networks.translator import check_translator
from ctharmonize.transforms import HU_MAX, HU_MIN, hu_to_unit, unit_to_hu

__all__ = ["SliceHarmonizer", "default_batch_size"]


def default_batch_size(device: str | torch.device | None = None) -> int:
    """Slices per forward pass: 8 on CUDA, 1 on CPU (at 512², 2 threads, the shipped multipath model ran
    4.4 slices/s with batch 1, 3.4 with 2 and 2.2 with 4: larger activations spill the caches;
    ``benchmarks/bench_clinical_path.py``). ``device`` None: CUDA when available."""
    on_cuda = torch.device(device).type == "cuda" if device is not None else torch.cuda.is_available()
    return 8 if on_cuda else 1


class SliceHarmonizer:
    """Harmonize every axial slice of an HU volume with a translator.

    Args:
        translator: a translator module (``domains``, ``spatial_multiple``, ``forward(x, s, t)``).
            It is moved to ``device`` and put in eval mode when a call starts (training code may pass
            the live network: its train/eval mode is restored after the call).
        hu_min, hu_max: the HU window the translator was trained on (paper 000: [-1024, 3072]).
        batch_size: slices per forward pass (default :func:`default_batch_size`).
        device: torch device; default CUDA when available, else CPU.
        amp: bf16 autocast on CUDA (ignored on CPU).
        progress: optional callback ``progress(done_slices, total_slices)``.
        checkpoint_networks: how the bundle's training checkpoints hold the translator (for
            :meth:`export`, see :class:`HUPath`).
    """

    def __init__(
        self,
        translator: nn.Module,
        hu_min: float = HU_MIN,
        hu_max: float = HU_MAX,
        batch_size: int | None = None,
        device: str | torch.device | None = None,
        amp: bool = True,
        progress: Callable[[int, int], None] | None = None,
        checkpoint_networks: Mapping[str, str] | None = None,
    ) -> None:
        self.translator = check_translator(translator)
        self.device = torch.device(device) if device is not None else torch.device(
            "cuda" if torch.cuda.is_available() else "cpu"
        )
        if not float(hu_max) > float(hu_min):
            raise ValueError(f"HU window must have hu_max > hu_min, got [{hu_min}, {hu_max}]")
        self.hu_min, self.hu_max = float(hu_min), float(hu_max)
        self.batch_size = int(batch_size) if batch_size is not None else default_batch_size(self.device)
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.amp = bool(amp) and self.device.type == "cuda"
        self.progress = progress
        self.checkpoint_networks = dict(checkpoint_networks or {})

    @property
    def domains(self) -> tuple[str, ...]:
        """The translator's kernel domains."""
        return tuple(self.translator.domains)

    @property
    def spatial_multiple(self) -> int:
        return int(self.translator.spatial_multiple)

    def _pad(self, x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        h, w = x.shape[-2:]
        m = self.spatial_multiple
        ph, pw = (-h) % m, (-w) % m
        if ph or pw:
            mode = "reflect" if ph < h and pw < w else "replicate"
            x = F.pad(x, (0, pw, 0, ph), mode=mode)
        return x, h, w

    @torch.no_grad()
    def __call__(self, volume_hu: np.ndarray, source: str, target: str,
                 fov_mask: np.ndarray | None = None) -> np.ndarray:
        """Harmonize ``volume_hu`` (Z, Y, X) in HU from ``source`` to ``target``; float32 (Z, Y, X) HU.

        Output HU is clipped to ``[hu_min, hu_max]``; where ``fov_mask`` is False the input values are
        kept unchanged.
        """
        check_model_domain(source, self.domains, "source")
        check_model_domain(target, self.domains, "target")
        hu = np.asarray(volume_hu, dtype=np.float32)
        if hu.ndim != 3:
            raise ValueError(f"expected a (Z, Y, X) HU volume, got shape {hu.shape}")
        net = self.translator.to(self.device)
        was_training = net.training
        net.eval()
        out = np.empty_like(hu)
        total = hu.shape[0]
        try:
            for start in range(0, total, self.batch_size):
                stop = min(start + self.batch_size, total)
                x = torch.from_numpy(hu[start:stop]).unsqueeze(1).to(self.device)
                x, h, w = self._pad(hu_to_unit(x, self.hu_min, self.hu_max))
                with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                    y = net(x, source, target)
                y = unit_to_hu(y.float()[..., :h, :w].clamp(-1.0, 1.0), self.hu_min, self.hu_max)
                out[start:stop] = y.squeeze(1).cpu().numpy()
                if self.progress is not None:
                    self.progress(stop, total)
        finally:
            net.train(was_training)
        if fov_mask is not None:
            outside = ~np.asarray(fov_mask, dtype=bool)
            out[outside] = hu[outside]
        return out

    def export(self, source: str, target: str) -> HUPath:
        """The ``source`` → ``target`` path as an HU-in / HU-out module (shares the weights; TorchScript-able
        when the translator's path is): what ``network_hu`` and ``ctharmonize export`` save."""
        check_model_domain(source, self.domains, "source")
        check_model_domain(target, self.domains, "target")
        return HUPath(self.translator, source, target, self.hu_min, self.hu_max, self.checkpoint_networks).eval()
