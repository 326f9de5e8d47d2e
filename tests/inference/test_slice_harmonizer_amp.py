"""``SliceHarmonizer(amp=...)``: "auto" (bf16 on CUDA only), "bf16" (every device), "none" (issue 18 item 6).

The bf16 expectation is computed here by hand: the HU → [-1, 1] scaling, the network under
``torch.autocast(cpu, bfloat16)``, and the scaling back, on the same tiny ``CycleGANPair``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ctharmonize.errors import ConfigError
from ctharmonize.inference import SliceHarmonizer
from ctharmonize.inference import slice_harmonizer as sh
from ctharmonize.inference.commands import harmonize
from ctharmonize.networks import CycleGANPair, ResnetGenerator

HU_MIN, HU_MAX = -1024.0, 3072.0


def _pair() -> CycleGANPair:
    torch.manual_seed(3)
    return CycleGANPair(ResnetGenerator(ngf=8, n_blocks=2), ResnetGenerator(ngf=8, n_blocks=2), ["ge_bone", "siemens_b30f"])


def _volume() -> np.ndarray:
    rng = np.random.default_rng(1)
    return rng.choice([-1000.0, -850.0, 40.0, 900.0], size=(2, 32, 32)).astype(np.float32) + \
        rng.normal(0, 60, size=(2, 32, 32)).astype(np.float32)


@torch.no_grad()
def _by_hand(net: CycleGANPair, hu: np.ndarray, bf16: bool) -> np.ndarray:
    net.eval()
    x = torch.from_numpy(np.clip(hu, HU_MIN, HU_MAX))[:, None]
    x = (x - HU_MIN) / (HU_MAX - HU_MIN) * 2 - 1
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        y = net(x, "ge_bone", "siemens_b30f")
    y = y.float().clamp(-1, 1)
    return ((y + 1) / 2 * (HU_MAX - HU_MIN) + HU_MIN)[:, 0].numpy()


@pytest.mark.parametrize("given, mode", [(True, "auto"), (None, "auto"), (False, "none"), ("BF16", "bf16"),
                                         ("none", "none"), ("auto", "auto")])
def test_amp_arguments_map_to_modes(given, mode):
    assert sh.amp_mode(given) == mode


def test_bad_amp_is_a_one_line_config_error():
    with pytest.raises(ConfigError, match="amp must be one of auto, bf16, none") as err:
        SliceHarmonizer(_pair(), device="cpu", amp="fp16")
    assert "\n" not in str(err.value)


def test_bf16_runs_under_cpu_autocast_and_auto_stays_fp32_on_cpu(monkeypatch):
    net, hu = _pair(), _volume()
    frozen = []
    monkeypatch.setattr(sh, "freeze_path", lambda path: frozen.append(path) or torch.jit.freeze(torch.jit.script(path)))
    bf16 = SliceHarmonizer(net, hu_min=HU_MIN, hu_max=HU_MAX, device="cpu", amp="bf16", compile=True)
    assert bf16.amp
    got_bf16 = bf16(hu, "ge_bone", "siemens_b30f")
    assert not frozen  # bf16 runs eager under autocast, even with compile=True
    np.testing.assert_allclose(got_bf16, _by_hand(net, hu, bf16=True), atol=0.01)
    fp32 = _by_hand(net, hu, bf16=False)
    assert np.abs(got_bf16 - fp32).max() > 0.5  # bf16 really changes HU (8-bit mantissa)
    auto = SliceHarmonizer(net, hu_min=HU_MIN, hu_max=HU_MAX, device="cpu", compile=False)
    assert auto.amp_mode == "auto" and not auto.amp
    np.testing.assert_allclose(auto(hu, "ge_bone", "siemens_b30f"), fp32, atol=0.01)


def test_harmonize_command_refuses_a_bad_amp_before_any_work(tmp_path):
    out = tmp_path / "out.nii.gz"
    with pytest.raises(ConfigError, match="amp must be one of"):
        harmonize(bundle=str(tmp_path / "no_bundle"), input=str(tmp_path / "none.nii.gz"), out=str(out), amp="fp8")
    assert not out.exists()
