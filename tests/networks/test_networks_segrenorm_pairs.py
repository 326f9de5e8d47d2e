"""``SegRenormCycleGANPairs``: the inference translator of the segmentation-renormalized CycleGAN (paper 004)."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from ctharmonize.errors import UnknownDomainError
from ctharmonize.inference import HUPath, SliceHarmonizer, load_network_weights
from ctharmonize.networks import (
    SegmentedPath,
    SegRenormCycleGANPairs,
    SegRenormGenerator,
    SegRenormPair,
    TissueSegmenter,
    check_translator,
)
from ctharmonize.networks.translator import IdentityPath

torch.set_num_threads(1)
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

PAIRS = [["ge_bone", "siemens_b30f"], ["siemens_b50f", "siemens_b30f"]]
# tiny networks; PyTorch init so that the condition visibly changes the output
TINY_G = functools.partial(SegRenormGenerator, num_classes=4, ngf=4, n_blocks=1, embed_dim=8,
                           extractor_features=(4, 4, 4, 4), init="pytorch")
TINY_S = functools.partial(TissueSegmenter, num_classes=4, features=(4, 4, 8, 8, 16, 4))


def _net(pairs=PAIRS[:1], seed: int = 0) -> SegRenormCycleGANPairs:
    torch.manual_seed(seed)
    return SegRenormCycleGANPairs(pairs, num_classes=4, generator=TINY_G, segmenter=TINY_S).eval()


def _img(b: int = 2, h: int = 32, w: int = 32, seed: int = 1) -> torch.Tensor:
    return torch.rand(b, 1, h, w, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_path_is_the_generator_on_the_source_segmenters_softmax_both_directions():
    net = check_translator(_net())
    assert net.domains == ("ge_bone", "siemens_b30f") and net.spatial_multiple == 16  # lcm(4, 16)
    pair = net.pairs["ge_bone__siemens_b30f"]
    assert isinstance(pair, SegRenormPair)
    x = _img()
    with torch.no_grad():
        ab = pair.G_AB(x, torch.softmax(pair.S_A(x), dim=1))
        ba = pair.G_BA(x, torch.softmax(pair.S_B(x), dim=1))
        torch.testing.assert_close(net(x, "ge_bone", "siemens_b30f"), ab)
        torch.testing.assert_close(net.path("ge_bone", "siemens_b30f")(x), ab)
        torch.testing.assert_close(net(x, "siemens_b30f", "ge_bone"), ba)
        # the source domain's segmenter, not the target's, conditions the generator
        assert not torch.allclose(ab, pair.G_AB(x, torch.softmax(pair.S_B(x), dim=1)))
        torch.testing.assert_close(net(x, "ge_bone", "ge_bone"), x)
    assert isinstance(net.path("siemens_b30f", "siemens_b30f"), IdentityPath)
    path = net.path("siemens_b30f", "ge_bone")
    assert isinstance(path, SegmentedPath) and path.segmenter is pair.S_B and path.generator is pair.G_BA


def test_several_pairs_and_unknown_paths():
    net = _net(PAIRS)
    assert net.domains == ("ge_bone", "siemens_b30f", "siemens_b50f")
    b50f = net.pairs["siemens_b50f__siemens_b30f"]
    x = _img()
    with torch.no_grad():
        torch.testing.assert_close(net(x, "siemens_b50f", "siemens_b30f"),
                                   b50f.G_AB(x, torch.softmax(b50f.S_A(x), dim=1)))
    with pytest.raises(UnknownDomainError, match="no CycleGAN pair was trained for ge_bone -> siemens_b50f") as err:
        net.path("ge_bone", "siemens_b50f")
    assert "\n" not in str(err.value)
    with pytest.raises(UnknownDomainError, match="unknown source domain 'ge_standard'"):
        net(x, "ge_standard", "siemens_b30f")
    with pytest.raises(UnknownDomainError, match="no CycleGAN pair"):
        net.networks("ge_bone", "siemens_b50f")


def test_segmenter_of_a_domain_prefers_the_pair_joining_the_other_domain():
    net = _net(PAIRS)
    first, second = net.pairs["ge_bone__siemens_b30f"], net.pairs["siemens_b50f__siemens_b30f"]
    assert net.segmenter("ge_bone") is first.S_A and net.segmenter("siemens_b50f") is second.S_A
    assert net.segmenter("siemens_b30f") is first.S_B  # in two pairs: the first one's without ``other``
    assert net.segmenter("siemens_b30f", "siemens_b50f") is second.S_B
    assert net.segmenter("siemens_b30f", "ge_bone") is first.S_B
    assert net.segmenter("siemens_b50f", "ge_bone") is second.S_A  # no pair joins them: the one holding it
    assert first.segmenter("siemens_b30f") is first.S_B
    # a path's conditioning segmenter is the source domain's
    assert net.path("siemens_b50f", "siemens_b30f").segmenter is net.segmenter("siemens_b50f", "siemens_b30f")
    for call in (lambda: net.segmenter("ge_standard"), lambda: first.segmenter("siemens_b50f")):
        with pytest.raises(UnknownDomainError) as err:
            call()
        assert len(str(err.value).splitlines()) == 1 and "no segmenter of" in str(err.value)
    assert "ge_bone, siemens_b30f, siemens_b50f" in str(pytest.raises(UnknownDomainError, net.segmenter, "x").value)


def test_state_dict_layout_round_trip_and_training_networks(tmp_path):
    net = _net()
    keys = {k.split(".")[2] for k in net.state_dict()}
    assert keys == {"G_AB", "G_BA", "S_A", "S_B"}
    assert all(k.startswith("pairs.ge_bone__siemens_b30f.") for k in net.state_dict())
    # what the checkpoint selector writes for network=@network_def: the translator's own state dict
    torch.save(net.state_dict(), tmp_path / "model.pt")
    other = load_network_weights(_net(seed=5), tmp_path / "model.pt")  # strict
    x = _img()
    with torch.no_grad():
        torch.testing.assert_close(other(x, "ge_bone", "siemens_b30f"), net(x, "ge_bone", "siemens_b30f"))
    # the trainer's networks are the translator's modules (training updates the model that is saved)
    pair = net.pairs["ge_bone__siemens_b30f"]
    fwd, rev = net.networks("ge_bone", "siemens_b30f"), net.networks("siemens_b30f", "ge_bone")
    assert fwd["G_AB"] is pair.G_AB and fwd["S_A"] is pair.S_A and fwd["S_B"] is pair.S_B
    assert rev["G_AB"] is pair.G_BA and rev["S_A"] is pair.S_B
    # a training checkpoint (network/<name>) loads through checkpoint_networks
    for a, b in (("ge_bone", "siemens_b30f"), ("siemens_b30f", "ge_bone")):
        nets = net.networks(a, b)
        ckpt = {f"network/{n}": m.state_dict() for n, m in nets.items()}
        torch.save(ckpt, tmp_path / "ckpt.pt")
        loaded = load_network_weights(_net(seed=7), tmp_path / "ckpt.pt", net.checkpoint_networks(a, b))
        with torch.no_grad():
            torch.testing.assert_close(loaded(x, a, b), net(x, a, b))


def test_slice_harmonizer_runs_a_tiny_hu_volume_eager_and_compiled():
    net = _net()
    # padded to 64 x 64: the extractor's 4 max-pools then leave 4 x 4, what its AdaptiveAvgPool2d(4) needs in
    # the frozen (MKLDNN) path; at other sizes the harmonizer falls back to eager
    hu = np.random.default_rng(0).normal(-300, 400, size=(3, 52, 60)).astype(np.float32)
    eager = SliceHarmonizer(net, -1024.0, 3072.0, batch_size=2, device="cpu", amp="none", compile=False)
    out = eager(hu, "ge_bone", "siemens_b30f")
    assert out.shape == hu.shape and out.dtype == np.float32 and np.isfinite(out).all()
    assert out.min() >= -1024.0 and out.max() <= 3072.0
    with torch.no_grad():  # slice 0 by hand: pad (reflect) to 64, path, crop
        x = torch.from_numpy(hu[:1]).unsqueeze(1).clamp(-1024, 3072).sub(-1024).div(2048).sub(1)
        x = torch.nn.functional.pad(x, (0, 4, 0, 12), mode="reflect")
        y = net(x, "ge_bone", "siemens_b30f")[..., :52, :60].clamp(-1, 1).add(1).mul(2048).add(-1024)
    np.testing.assert_allclose(out[0], y[0, 0].numpy(), atol=1e-2)  # float32 rounding at 2048 HU per unit
    compiled = SliceHarmonizer(net, -1024.0, 3072.0, batch_size=2, device="cpu", amp="none", compile=True)
    np.testing.assert_allclose(compiled(hu, "siemens_b30f", "ge_bone"), eager(hu, "siemens_b30f", "ge_bone"),
                               atol=1e-2)
    assert compiled._frozen["siemens_b30f", "ge_bone"][1] is not None  # ran through the frozen TorchScript path


def test_hu_path_scripts_and_loads_the_translators_weights(tmp_path):
    net = _net()
    module = SliceHarmonizer(net, -1024.0, 3072.0, device="cpu").export("ge_bone", "siemens_b30f")
    assert isinstance(module, HUPath) and module.spatial_multiple == 16
    hu = torch.from_numpy(np.random.default_rng(1).normal(-300, 400, size=(1, 1, 32, 32)).astype(np.float32))
    scripted = torch.jit.script(module)
    torch.jit.save(scripted, str(tmp_path / "p.ts"))
    with torch.no_grad():
        expected = module(hu)
        torch.testing.assert_close(torch.jit.load(str(tmp_path / "p.ts"))(hu), expected)
    # monai.bundle ckpt_export loads model.pt (the translator's state dict) into the exported module
    fresh = HUPath(_net(seed=3), "ge_bone", "siemens_b30f", -1024.0, 3072.0).eval()
    fresh.load_state_dict(net.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(fresh(hu), expected)
