"""Per-epoch random subset of the training samples (paper 000: a fresh 20 % of the slices each epoch)."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler

from ctharmonize.engines.distributed import get_rank, get_world_size

__all__ = ["RandomSubsetSampler"]


class RandomSubsetSampler(Sampler[int]):
    """Draw ``round(fraction * dataset_len)`` sample indices per epoch, sharded over DDP ranks.

    The epoch subsets are consecutive windows of an endless stream of random permutations of all
    indices (permutation ``c`` is drawn from ``seed + c``): consecutive epochs walk through each
    permutation, so every sample is used once per ``1 / fraction`` epochs ("covers all data samples
    throughout training") instead of only in expectation; a window that crosses a permutation
    boundary may repeat a sample. The subset depends only on ``(seed, epoch)``: call
    :meth:`set_epoch` (``GANTrainer`` does so at each epoch start, epochs counted from 1).

    With ``num_replicas`` ranks the subset is cut to a multiple of ``num_replicas`` and rank ``r`` takes
    positions ``r, r + num_replicas, ...``: shards are disjoint and equally long. ``num_replicas`` and
    ``rank`` default to the ``torch.distributed`` group at the time of use (1 and 0 without one), so the
    sampler may be built before the trainer initialises the process group.
    """

    def __init__(
        self,
        dataset_len: int,
        fraction: float = 0.2,
        seed: int = 0,
        num_replicas: int | None = None,
        rank: int | None = None,
    ):
        if dataset_len < 1:
            raise ValueError(f"dataset_len must be >= 1, got {dataset_len}")
        if not 0 < fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], got {fraction}")
        self.dataset_len = int(dataset_len)
        self.fraction = float(fraction)
        self.seed = int(seed)
        self._num_replicas = num_replicas
        self._rank = rank
        if num_replicas is not None:
            _ = self.subset_len, self.rank  # validate explicit sharding now
        self.epoch = 1
        self._skip = 0

    @property
    def num_replicas(self) -> int:
        """Number of shards: the given value, else the process group's world size (read when used)."""
        return get_world_size() if self._num_replicas is None else int(self._num_replicas)

    @property
    def rank(self) -> int:
        """This process's shard: the given value, else its rank in the process group."""
        rank = get_rank() if self._rank is None else int(self._rank)
        if not 0 <= rank < self.num_replicas:
            raise ValueError(f"rank {rank} is outside [0, {self.num_replicas})")
        return rank

    @property
    def subset_len(self) -> int:
        """Samples per epoch over all ranks (a multiple of ``num_replicas``)."""
        subset = max(1, round(self.fraction * self.dataset_len))
        subset -= subset % self.num_replicas
        if subset == 0:
            raise ValueError(
                f"a {self.fraction:g} subset of {self.dataset_len} samples is smaller than the {self.num_replicas} ranks"
            )
        return subset

    def set_epoch(self, epoch: int) -> None:
        """Select the subset of ``epoch`` (>= 0; the trainer passes ignite's 1-based epoch numbers)."""
        self.epoch = int(epoch)

    def skip_next(self, n_samples: int) -> None:
        """Drop the first ``n_samples`` of this rank's shard in the next iteration (mid-epoch resume)."""
        self._skip = max(0, int(n_samples))

    def _permutation(self, cycle: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(self.seed + cycle)
        return torch.randperm(self.dataset_len, generator=gen)

    def epoch_subset(self, epoch: int | None = None) -> list[int]:
        """All ranks' indices of ``epoch`` (default: the current one), before sharding."""
        epoch = self.epoch if epoch is None else int(epoch)
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        start = epoch * self.subset_len
        stop = start + self.subset_len
        first, last = start // self.dataset_len, (stop - 1) // self.dataset_len
        stream = torch.cat([self._permutation(c) for c in range(first, last + 1)])
        offset = first * self.dataset_len
        return stream[start - offset : stop - offset].tolist()

    def __iter__(self) -> Iterator[int]:
        shard = self.epoch_subset()[self.rank :: self.num_replicas]
        skip, self._skip = self._skip, 0
        return iter(shard[skip:])

    def __len__(self) -> int:
        return self.subset_len // self.num_replicas
