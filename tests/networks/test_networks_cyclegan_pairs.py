"""``CycleGANPairs`` (several one-to-one CycleGANs as one translator) and ``ctharmonize merge-weights``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ctharmonize.cli import main
from ctharmonize.errors import UnknownDomainError, WeightsError
from ctharmonize.inference import SliceHarmonizer, load_network_weights, merge_network_weights
from ctharmonize.networks import CycleGANPairs, check_translator

PAIRS = [["ge_bone", "siemens_b30f"], ["siemens_b50f", "siemens_b30f"]]


def _pairs(pairs=PAIRS, seed: int = 0) -> CycleGANPairs:
    torch.manual_seed(seed)
    return CycleGANPairs(pairs, ngf=4, n_blocks=1)


def test_each_direction_runs_its_own_pairs_generator():
    net = check_translator(_pairs()).eval()
    assert net.domains == ("ge_bone", "siemens_b30f", "siemens_b50f") and net.spatial_multiple == 4
    x = torch.rand(2, 1, 16, 16) * 2 - 1
    with torch.no_grad():
        bone = net.pairs["ge_bone__siemens_b30f"]
        b50f = net.pairs["siemens_b50f__siemens_b30f"]
        torch.testing.assert_close(net(x, "ge_bone", "siemens_b30f"), bone.G_AB(x))
        torch.testing.assert_close(net(x, "siemens_b30f", "ge_bone"), bone.G_BA(x))
        torch.testing.assert_close(net(x, "siemens_b50f", "siemens_b30f"), b50f.G_AB(x))
        torch.testing.assert_close(net(x, "siemens_b30f", "siemens_b50f"), b50f.G_BA(x))
        assert not torch.allclose(bone.G_AB(x), b50f.G_AB(x))
        torch.testing.assert_close(net(x, "ge_bone", "ge_bone"), x)
    torch.jit.script(net.path("siemens_b50f", "siemens_b30f"))  # exportable


def test_untrained_direction_and_bad_pairs_are_one_line_errors():
    net = _pairs()
    with pytest.raises(UnknownDomainError, match="no CycleGAN pair was trained for ge_bone -> siemens_b50f"):
        net.path("ge_bone", "siemens_b50f")
    with pytest.raises(UnknownDomainError, match="unknown source domain 'ge_standard'"):
        net.path("ge_standard", "siemens_b30f")
    with pytest.raises(UnknownDomainError, match="listed twice"):
        CycleGANPairs([["ge_bone", "siemens_b30f"], ["siemens_b30f", "ge_bone"]], ngf=4, n_blocks=1)
    with pytest.raises(UnknownDomainError, match="joins two domains"):
        CycleGANPairs([["ge_bone"]], ngf=4, n_blocks=1)


def test_one_pair_runs_merge_into_the_two_pair_model(tmp_path):
    one, two = _pairs(PAIRS[:1], seed=1), _pairs(PAIRS[1:], seed=2)
    torch.save(one.state_dict(), tmp_path / "a.pt")
    torch.save(two.state_dict(), tmp_path / "b.pt")
    out = tmp_path / "model.pt"
    assert main(["merge-weights", "--paths", f"{tmp_path / 'a.pt'},{tmp_path / 'b.pt'}", "--out", str(out)]) == 0
    both = load_network_weights(_pairs(seed=9), out)
    hu = np.random.default_rng(0).normal(-300, 400, size=(2, 16, 16)).astype(np.float32)
    for run, (s, t) in ((one, PAIRS[0]), (two, PAIRS[1])):
        expected = SliceHarmonizer(run, device="cpu", compile=False)(hu, s, t)
        np.testing.assert_array_equal(SliceHarmonizer(both, device="cpu", compile=False)(hu, s, t), expected)
    assert main(["merge-weights", "--paths", f"{tmp_path / 'a.pt'},{tmp_path / 'b.pt'}", "--out", str(out)]) != 0
    with pytest.raises(WeightsError, match="also holds"):
        merge_network_weights([tmp_path / "a.pt", tmp_path / "a.pt"])


def test_merge_weights_never_writes_over_an_input(tmp_path):
    one, two = _pairs(PAIRS[:1], seed=1), _pairs(PAIRS[1:], seed=2)
    a, b = tmp_path / "a.pt", tmp_path / "b.pt"
    torch.save(one.state_dict(), a)
    torch.save(two.state_dict(), b)
    before = a.read_bytes()
    for flags in ([], ["--overwrite"]):
        assert main(["merge-weights", "--paths", f"{a},{b}", "--out", str(a), *flags]) != 0
        assert a.read_bytes() == before


def test_pairs_of_another_generator_from_a_bundle_config():
    """``generator`` (a MONAI ``_mode_: callable`` item) builds every generator: here CVS-CT's, spatial multiple 1."""
    from monai.bundle import ConfigParser

    from ctharmonize.networks import CVSCTGenerator

    parser = ConfigParser({"net": {"_target_": "ctharmonize.networks.CycleGANPairs",
                                   "pairs": [["ge_bone", "siemens_b30f"], ["siemens_b50f", "siemens_b30f"]],
                                   "generator": {"_target_": "ctharmonize.networks.CVSCTGenerator", "_mode_": "callable",
                                                 "features": 8}}})
    torch.manual_seed(0)
    net = parser.get_parsed_content("net")
    gens = [m for p in net.pairs.values() for m in (p.G_AB, p.G_BA)]
    assert len(gens) == 4 and all(isinstance(g, CVSCTGenerator) for g in gens)
    assert len({id(g) for g in gens}) == 4 and net.spatial_multiple == 1
    x = torch.rand(1, 1, 13, 17) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(net(x, "siemens_b30f", "siemens_b50f"), net.pairs["siemens_b50f__siemens_b30f"].G_BA(x))
        assert net(x, "ge_bone", "siemens_b30f").shape == x.shape
    default = CycleGANPairs([["ge_bone", "siemens_b30f"]], ngf=4, n_blocks=1)  # the ResNet default is unchanged
    assert default.spatial_multiple == 4
