"""History buffer of generated images (CycleGAN ``ImagePool``, Shrivastava et al. 2017)."""

from __future__ import annotations

import random
from typing import Any

import torch

__all__ = ["ImagePool"]


class ImagePool:
    """Buffer of up to ``pool_size`` past fakes fed to a discriminator, decided per sample.

    While the pool is not full every incoming sample is stored and returned unchanged. Once full,
    each sample is, with probability 0.5, swapped for a random stored one (which is returned, and the
    new sample takes its place); otherwise it is returned unchanged. ``pool_size=0`` disables the pool.
    Stored images are detached clones; the pool has its own seeded RNG and a ``state_dict`` so that a
    resumed run continues identically.
    """

    def __init__(self, pool_size: int = 50, seed: int = 0):
        if pool_size < 0:
            raise ValueError(f"pool_size must be >= 0, got {pool_size}")
        self.pool_size = int(pool_size)
        self.images: list[torch.Tensor] = []
        self._rng = random.Random(seed)

    def __len__(self) -> int:
        return len(self.images)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """``images``: (B, C, ...) fakes; returns a detached (B, C, ...) batch drawn as described above."""
        images = images.detach()
        if self.pool_size == 0:
            return images
        out = []
        for image in images:
            image = image.unsqueeze(0)
            if len(self.images) < self.pool_size:
                self.images.append(image.clone())
                out.append(image)
            elif self._rng.random() > 0.5:
                idx = self._rng.randrange(self.pool_size)
                out.append(self.images[idx].to(image.device, image.dtype))
                self.images[idx] = image.clone()
            else:
                out.append(image)
        return torch.cat(out, 0)

    __call__ = query

    def state_dict(self) -> dict[str, Any]:
        """Stored images (on CPU) and the RNG state."""
        return {"pool_size": self.pool_size, "images": [im.cpu() for im in self.images], "rng": self._rng.getstate()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore images and RNG state (images move to the device of the next query)."""
        self.pool_size = int(state["pool_size"])
        self.images = [im.clone() for im in state["images"]]
        rng = state["rng"]
        self._rng.setstate((rng[0], tuple(rng[1]), rng[2]))
