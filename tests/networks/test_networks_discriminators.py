"""PatchGAN discriminator (70×70 receptive field) and the per-target-domain discriminator set."""

import math

import pytest
import torch
from torch import nn

from ctharmonize.errors import UnknownDomainError
from ctharmonize.networks import MultipathDiscriminators, PatchDiscriminator, patch_receptive_field

torch.set_num_threads(1)
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _measured_receptive_field(n_layers: int) -> tuple[int, int]:
    """Extent (rows, cols) of input pixels with a nonzero gradient for one central output pixel."""
    torch.manual_seed(0)
    # norm="none": InstanceNorm's statistics would couple every pixel and hide the conv receptive field
    disc = PatchDiscriminator(1, ndf=4, n_layers=n_layers, norm="none").double()
    x = torch.randn(1, 1, 160, 160, dtype=torch.float64, requires_grad=True)
    out = disc(x)
    cy, cx = out.shape[2] // 2, out.shape[3] // 2
    out[0, 0, cy, cx].backward()
    nz = torch.nonzero(x.grad[0, 0])
    rows = int(nz[:, 0].max() - nz[:, 0].min() + 1)
    cols = int(nz[:, 1].max() - nz[:, 1].min() + 1)
    return rows, cols


def test_receptive_field_is_70_for_three_layers():
    assert _measured_receptive_field(3) == (70, 70)
    assert patch_receptive_field(3) == 70


@pytest.mark.parametrize("n_layers", [1, 2])
def test_receptive_field_formula_matches_gradient(n_layers):
    rf = patch_receptive_field(n_layers)
    assert _measured_receptive_field(n_layers) == (rf, rf)


def test_patch_discriminator_layout_and_output_shape():
    disc = PatchDiscriminator(1, ndf=8)
    convs = [m for m in disc if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size[0], c.stride[0]) for c in convs] == [
        (1, 8, 4, 2), (8, 16, 4, 2), (16, 32, 4, 2), (32, 64, 4, 1), (64, 1, 4, 1)
    ]
    kinds = [type(m).__name__ for m in disc]
    assert kinds[:2] == ["Conv2d", "LeakyReLU"]  # no norm on the first layer
    assert kinds.count("InstanceNorm2d") == 3 and kinds[-1] == "Conv2d"
    assert all(m.negative_slope == pytest.approx(0.2) for m in disc if isinstance(m, nn.LeakyReLU))
    assert disc(torch.zeros(2, 1, 256, 256)).shape == (2, 1, 30, 30)  # pix2pix: 256² → 30×30 patches


def test_one_discriminator_per_target_domain():
    d = MultipathDiscriminators(("siemens_b30f", "ge_bone"), ndf=8)
    assert d.domains == ("siemens_b30f", "ge_bone")
    assert d["siemens_b30f"] is not d["ge_bone"]
    x = torch.rand(1, 1, 64, 64) * 2 - 1
    torch.testing.assert_close(d(x, "ge_bone"), d["ge_bone"](x))
    assert not torch.allclose(d(x, "ge_bone"), d(x, "siemens_b30f"))
    with pytest.raises(UnknownDomainError, match="discriminator domain 'ge_standard'"):
        d(x, "ge_standard")
    d.add_domain("ge_standard")
    assert d(x, "ge_standard").shape == (1, 1, 6, 6)
    scripted = torch.jit.script(d["ge_bone"])
    torch.testing.assert_close(scripted(x), d["ge_bone"](x))


def test_discriminator_init_choices():
    torch.manual_seed(0)
    pix2pix = PatchDiscriminator(ndf=16, init="normal")
    default = PatchDiscriminator(ndf=16, init="pytorch")
    convs_p = [m for m in pix2pix.modules() if isinstance(m, nn.Conv2d)]
    convs_d = [m for m in default.modules() if isinstance(m, nn.Conv2d)]
    for conv in convs_p:  # N(0, 0.02) weights and zero bias
        assert abs(float(conv.weight.std()) - 0.02) < 0.004
        assert conv.bias is None or not conv.bias.any()
    # nn.Conv2d default: kaiming_uniform(a=sqrt(5)) → U(-1/sqrt(fan_in), 1/sqrt(fan_in)); first conv fan_in = 1·4·4
    first = convs_d[0].weight
    bound = 1 / math.sqrt(16)
    assert float(first.abs().max()) <= bound and abs(float(first.std()) - bound / math.sqrt(3)) < 0.03
    multi = MultipathDiscriminators(["a", "b"], ndf=8, init="pytorch")
    multi.add_domain("c")
    fan_in = 16
    assert all(float(d[0].weight.abs().max()) <= 1 / math.sqrt(fan_in) for d in multi.values())
    assert float(multi["c"][0].weight.std()) > 0.05  # the added domain keeps the chosen init
    with pytest.raises(ValueError, match="init"):
        PatchDiscriminator(init="xavier")
