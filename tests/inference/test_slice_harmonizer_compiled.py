"""``SliceHarmonizer(compile=...)``: the frozen TorchScript CPU path against eager (issue 18 item 6).

Expected values come from the same harmonizer with ``compile=False`` (the eager path), on the shipped
bundles' networks (multipath, kernel normalization) and on a tiny ``CycleGANPair``
(``tests/bundles/tiny_bundle_config.py``).
"""

from __future__ import annotations

import copy
import logging
import pickle
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from ctharmonize.inference import SliceHarmonizer, load_bundle_harmonizer
from ctharmonize.inference import slice_harmonizer as sh
from ctharmonize.networks import CycleGANPair, MultipathGenerator, ResnetGenerator

BUNDLES = Path(__file__).resolve().parents[2] / "bundles"
LOGGER = "ctharmonize.inference.slice_harmonizer"
TOL_HU = 0.01


def _volume(shape: tuple[int, int, int], seed: int = 0) -> np.ndarray:
    """Lung-like HU: air, parenchyma, soft tissue and bone, with noise."""
    rng = np.random.default_rng(seed)
    levels = rng.choice([-1000.0, -850.0, 40.0, 900.0], size=shape)
    return (levels + rng.normal(0.0, 60.0, size=shape)).astype(np.float32)


def _pair(seed: int) -> CycleGANPair:
    torch.manual_seed(seed)
    return CycleGANPair(ResnetGenerator(ngf=4, n_blocks=1), ResnetGenerator(ngf=4, n_blocks=1), ["ge_bone", "siemens_b30f"])


def _eager(net: nn.Module, hu: np.ndarray, source: str, target: str) -> np.ndarray:
    return SliceHarmonizer(net, device="cpu", compile=False)(hu, source, target)


@pytest.fixture
def count_freezes(monkeypatch):
    """Counts calls of ``freeze_path`` (still freezing for real)."""
    calls: list[nn.Module] = []
    freeze = sh.freeze_path

    def counting(path: nn.Module) -> torch.jit.ScriptModule:
        calls.append(path)
        return freeze(path)

    monkeypatch.setattr(sh, "freeze_path", counting)
    return calls


@pytest.fixture(scope="module", params=["multipath_cyclegan_ct_harmonization", "kernel_normalization_ct_harmonization"])
def shipped(request) -> nn.Module:
    """A shipped bundle's translator (its weights)."""
    return load_bundle_harmonizer(BUNDLES / request.param, device="cpu").translator


@pytest.mark.parametrize("shape", [(3, 64, 64), (2, 30, 34)])  # 30 x 34: padded to the spatial multiple
def test_compiled_equals_eager_for_the_shipped_networks(shipped, count_freezes, shape):
    hu = _volume(shape)
    want = _eager(shipped, hu, "ge_bone", "siemens_b30f")
    got = SliceHarmonizer(shipped, device="cpu", batch_size=2, compile=True)(hu, "ge_bone", "siemens_b30f")
    assert len(count_freezes) == 1
    assert np.abs(got - want).max() < TOL_HU
    assert np.abs(got - hu).max() > 1.0  # the network does something


@pytest.mark.parametrize(("source", "target"), [("ge_bone", "siemens_b30f"), ("siemens_b30f", "ge_bone"),
                                                ("ge_bone", "ge_bone")])
def test_compiled_equals_eager_for_a_cyclegan_pair(count_freezes, source, target):
    net, hu = _pair(1), _volume((3, 32, 36), seed=1)
    got = SliceHarmonizer(net, device="cpu", compile=True)(hu, source, target)
    assert len(count_freezes) == 1
    assert np.abs(got - _eager(net, hu, source, target)).max() < TOL_HU


def test_weight_changes_between_calls_are_seen(count_freezes):
    """Checkpoint selection calls one harmonizer on a live network whose weights change between calls."""
    net, hu = _pair(2), _volume((2, 32, 32), seed=2)
    harmonizer = SliceHarmonizer(net, device="cpu", compile=True)
    first = harmonizer(hu, "ge_bone", "siemens_b30f")
    assert np.abs(harmonizer(hu, "ge_bone", "siemens_b30f") - first).max() == 0.0
    assert len(count_freezes) == 1  # same weights: the frozen path is reused
    net.load_state_dict(_pair(3).state_dict())  # in place, as a trainer's step
    second = harmonizer(hu, "ge_bone", "siemens_b30f")
    assert np.abs(second - first).max() > 1.0
    assert np.abs(second - _eager(net, hu, "ge_bone", "siemens_b30f")).max() < TOL_HU
    with torch.no_grad():  # through .data: no version counter moves
        for p in net.G_AB.parameters():
            p.data.mul_(0.5)
    third = harmonizer(hu, "ge_bone", "siemens_b30f")
    assert np.abs(third - second).max() > 1.0
    assert np.abs(third - _eager(net, hu, "ge_bone", "siemens_b30f")).max() < TOL_HU
    assert len(count_freezes) == 3


class _NumpyPath(nn.Module):
    """A path that calls numpy: not scriptable."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(np.tanh(x.numpy()) * 0.5)


class _ScriptFailsAtRun(nn.Module):
    """Scripts and freezes, but raises when run as TorchScript."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.jit.is_scripting():
            raise RuntimeError("not in TorchScript")
        return x * 0.5


class _ThirdParty(nn.Module):
    """A translator whose path is ``path_type()`` (or raises when None)."""

    spatial_multiple = 4
    domains = ("a", "b")

    def __init__(self, path_type: type[nn.Module] | None):
        super().__init__()
        self.path_type = path_type

    def path(self, source: str, target: str) -> nn.Module:
        if self.path_type is None:
            raise NotImplementedError("no path export")
        return self.path_type()

    def forward(self, x: torch.Tensor, source: str, target: str,
                condition: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor:
        return (self.path_type or _ScriptFailsAtRun)()(x)


@pytest.mark.parametrize(("path_type", "reason"), [(_NumpyPath, "not compiled"),  # scripting fails
                                                   (_ScriptFailsAtRun, "TorchScript interpreter"),  # 1st batch fails
                                                   (None, "NotImplementedError: no path export")])
def test_a_path_that_cannot_be_compiled_runs_eager(caplog, count_freezes, path_type, reason):
    net, hu = _ThirdParty(path_type), _volume((3, 16, 16), seed=3)
    harmonizer = SliceHarmonizer(net, device="cpu", compile=True)
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        got = harmonizer(hu, "a", "b")
        again = harmonizer(hu, "a", "b")
    assert np.abs(got - _eager(net, hu, "a", "b")).max() < TOL_HU
    assert np.array_equal(got, again)
    assert "not compiled, running eager" in caplog.text and reason in caplog.text
    assert len(count_freezes) == (0 if path_type is None else 1)  # the failure is kept: no retry per call


@pytest.mark.parametrize("compile_", [True, False])
def test_train_mode_of_a_live_network_is_restored(compile_):
    net, hu = _pair(4), _volume((2, 16, 16), seed=4)
    harmonizer = SliceHarmonizer(net, device="cpu", compile=compile_)
    net.train()
    harmonizer(hu, "ge_bone", "siemens_b30f")
    assert net.training and all(m.training for m in net.modules())
    net.eval()
    harmonizer(hu, "ge_bone", "siemens_b30f")
    assert not any(m.training for m in net.modules())


def test_default_compiles_large_cpu_volumes_only(count_freezes):
    gen = MultipathGenerator(domains=["ge_bone", "siemens_b30f"], ngf=4, n_blocks=1)
    harmonizer = SliceHarmonizer(gen, device="cpu")
    assert harmonizer.compile is None
    assert not harmonizer._compiles((32, 128, 128))  # a validation volume: not worth a freeze
    assert harmonizer._compiles((8, 512, 512)) and harmonizer._compiles((300, 512, 512))
    assert not SliceHarmonizer(gen, device="cpu", compile=False)._compiles((300, 512, 512))
    assert SliceHarmonizer(gen, device="cpu", compile=True)._compiles((1, 8, 8))
    assert not SliceHarmonizer(gen, device="cuda", compile=True)._compiles((300, 512, 512))  # GPU: eager + AMP
    harmonizer(_volume((2, 32, 32)), "ge_bone", "siemens_b30f")
    assert count_freezes == []


def test_a_compiled_harmonizer_copies_and_pickles():
    net, hu = _pair(5), _volume((2, 16, 16), seed=5)
    harmonizer = SliceHarmonizer(net, device="cpu", compile=True)
    want = harmonizer(hu, "ge_bone", "siemens_b30f")
    for other in (copy.deepcopy(harmonizer), pickle.loads(pickle.dumps(harmonizer))):
        assert np.abs(other(hu, "ge_bone", "siemens_b30f") - want).max() < TOL_HU
