"""Initialising multipath networks from earlier weights: fine-tuning and stage two of "add a kernel".

Weights are read with :mod:`ctharmonize.io.network_weights` (no key heuristics): a file is either the
generator's plain state dict (``model.pt``, a checkpoint-selection candidate, ``average-weights``
output) or a ``GANTrainer`` training checkpoint holding ``network/G`` and ``network/D_<domain>``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from ctharmonize.errors import ConfigError, WeightsError
from ctharmonize.io.network_weights import checkpoint_network_names, network_state
from ctharmonize.io.weights_file import load_weights_file

__all__ = ["initialize_from", "load_generator_state", "prepare_new_domains"]

logger = logging.getLogger(__name__)

_MISSING = "pretrained checkpoint not found"


def load_generator_state(path: str | os.PathLike, generator: str = "G", prefix: str = "D_") -> dict[str, Any]:
    """Read a multipath weights file: a plain generator state dict, or a training checkpoint whose networks
    are ``generator`` and ``<prefix><domain>``.

    Returns ``{"generator": state, "discriminators": {domain: state}}``; discriminators only come from
    training checkpoints. One-line :class:`WeightsError` naming ``path`` otherwise.
    """
    obj = load_weights_file(path, _MISSING)
    state = network_state(obj, {generator: ""}, path)
    names = checkpoint_network_names(obj)  # none for a plain state dict
    discs = {n[len(prefix):]: network_state(obj, {n: ""}, path) for n in names if n.startswith(prefix)}
    return {"generator": state, "discriminators": discs}


def _load(module: nn.Module, state: Mapping[str, Any], path: str | os.PathLike, what: str) -> None:
    try:
        module.load_state_dict(state)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0]
        raise WeightsError(path, f"does not match the {what}: {first}") from err


def initialize_from(generator: nn.Module, discriminators: Mapping[str, nn.Module], path: str | os.PathLike) -> list[str]:
    """Fine-tuning: load a ``model.pt`` or a training checkpoint (see :func:`load_generator_state`) into
    ``generator`` (strict) and into the discriminators (``{domain: module}``, e.g. ``MultipathDiscriminators``)
    that it holds; the others keep their initialisation. Returns the domains of the loaded discriminators."""
    states = load_generator_state(path)
    _load(generator, states["generator"], path, f"generator {type(generator).__name__}")
    loaded = [d for d in states["discriminators"] if d in discriminators]
    for d in loaded:
        _load(discriminators[d], states["discriminators"][d], path, f"discriminator of {d}")
    logger.info("initialised from %s (generator%s)", path, "".join(f", D_{d}" for d in loaded))
    return loaded


def prepare_new_domains(
    generator: nn.Module,
    discriminators: nn.ModuleDict,
    pretrained: str | os.PathLike,
    new_domains: Sequence[str],
) -> dict[str, Any]:
    """Stage two of the add-a-kernel scheme: load stage-one weights, add ``new_domains``, freeze the rest.

    ``generator`` (MultipathGenerator) and ``discriminators`` (MultipathDiscriminators) must be built with the
    stage-one domains. Loads ``pretrained`` (see :func:`load_generator_state`; stage-one discriminators are
    loaded too when it is a training checkpoint, else they stay untrained and a warning is logged), adds a
    fresh encoder, decoder and discriminator per new domain, freezes the shared latent and every old domain.
    Frozen discriminators become the trainer's fixed critics (auxiliary networks).

    Returns ``{"generator": [trainable generator parameters], "discriminators": {new domain: [parameters]},
    "domains": [all domains, old then new]}``.
    """
    from ctharmonize.networks import add_new_domain

    new = [str(d) for d in new_domains]
    if not new:
        raise ConfigError(None, "new_domains is empty")
    path = os.fspath(pretrained)
    states = load_generator_state(path)
    _load(generator, states["generator"], path, f"stage-one generator (domains {list(generator.domains)})")
    old = list(generator.domains)
    found = [d for d in old if d in states["discriminators"]]
    for d in found:
        _load(discriminators[d], states["discriminators"][d], path, f"stage-one discriminator of {d}")
    if len(found) < len(old):
        logger.warning("%s holds no weights for discriminators %s; they stay untrained (frozen) critics - pass a "
                       "stage-one training checkpoint to use trained ones", path, sorted(set(old) - set(found)))
    for d in new:
        add_new_domain(generator, discriminators, d)
    gen_params = generator.freeze_except(new)
    disc_params = discriminators.freeze_except(new)
    ids = {id(p) for p in disc_params}
    return {
        "generator": gen_params,
        "discriminators": {d: [p for p in discriminators[d].parameters() if id(p) in ids] for d in new},
        "domains": list(generator.domains),
    }
