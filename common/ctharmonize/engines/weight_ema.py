"""Exponential moving average of a network's weights (StarGAN v2 ``G_ema``; Karras et al. 2018)."""

from __future__ import annotations

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from ctharmonize.errors import ConfigError

__all__ = ["weight_ema"]


def weight_ema(module: nn.Module, decay: float, average: nn.Module | None = None) -> AveragedModel:
    """An ``AveragedModel`` holding ``ema <- decay * ema + (1 - decay) * weights`` of ``module``.

    Args:
        module: the trained network (raw, not DDP-wrapped).
        decay: in [0, 1); StarGAN v2 uses 0.999.
        average: the module that holds the average (same architecture as ``module``, e.g. built by the
            bundle config so that a checkpoint selector can run it); default a deep copy of ``module``.

    The average starts equal to ``module`` (``n_averaged = 1``); call ``update_parameters(module)`` after
    each optimizer step. Parameters are averaged; buffers (e.g. batch-norm statistics) are copied from
    ``module`` at every update. The averaging module is frozen (``requires_grad=False``) and in eval mode.
    """
    decay = float(decay)
    if not 0.0 <= decay < 1.0:
        raise ConfigError(None, f"EMA decay must be in [0, 1), got {decay}")
    ema = AveragedModel(module, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=False)
    if average is not None:
        own, theirs = average.state_dict(), module.state_dict()
        if list(own) != list(theirs) or any(own[k].shape != v.shape for k, v in theirs.items()):
            raise ConfigError(None, f"the EMA module {type(average).__name__} does not have the architecture of "
                                    f"the network it averages ({type(module).__name__})")
        ema.module = average
    ema.to(next(iter(module.parameters()), torch.empty(0)).device)
    ema.requires_grad_(False)
    ema.eval()
    ema.update_parameters(module)  # n_averaged 0 -> copy of the weights
    return ema
