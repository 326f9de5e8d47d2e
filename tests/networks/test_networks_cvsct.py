"""CVS-CT generator (7 convs 4×4 stride 1, 3 CBAM blocks, Tanh) and discriminator (7 hidden 4×4 convs, sigmoid)."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ctharmonize.networks import (
    CBAM,
    CVSCTDiscriminator,
    CVSCTGenerator,
    CycleGANPair,
    cvsct_discriminator_output_size,
)

torch.set_num_threads(1)
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _count(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def _conv(cin: int, cout: int, k: int, bias: bool = True) -> int:
    return cin * cout * k * k + (cout if bias else 0)


def _kinds(net: nn.Module) -> list[str]:
    return [type(m).__name__ for m in net.children()]


# ---------------------------------------------------------------- generator
@pytest.mark.parametrize("size", [(37, 50), (80, 80), (5, 3), (1, 1)])
def test_generator_keeps_any_size_and_range(size):
    gen = CVSCTGenerator(features=8)
    x = torch.rand(2, 1, *size) * 2 - 1
    y = gen(x)
    assert y.shape == (2, 1, *size)
    assert y.abs().max() <= 1


def test_generator_layout_seven_convs_three_cbam_after_convs_2_4_6():
    gen = CVSCTGenerator()
    kinds = [k for k in _kinds(gen) if k != "ZeroPad2d"]
    assert kinds == (["Conv2d", "LeakyReLU"] * 2 + ["CBAM"]) * 3 + ["Conv2d", "Tanh"]
    convs = [m for m in gen.children() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 7 and sum(isinstance(m, CBAM) for m in gen.children()) == 3
    assert [(c.in_channels, c.out_channels) for c in convs] == [(1, 64)] + [(64, 64)] * 5 + [(64, 1)]
    assert all(c.kernel_size == (4, 4) and c.stride == (1, 1) and c.padding == (0, 0) for c in convs)
    relus = [m for m in gen.children() if isinstance(m, nn.LeakyReLU)]
    assert len(relus) == 6 and all(m.negative_slope == pytest.approx(0.2) for m in relus)
    # every conv is preceded by the asymmetric 'same' pad
    children = list(gen.children())
    for i, m in enumerate(children):
        if isinstance(m, nn.Conv2d):
            assert isinstance(children[i - 1], nn.ZeroPad2d) and children[i - 1].padding == (1, 2, 1, 2)
    cbam = next(m for m in gen.children() if isinstance(m, CBAM))
    assert cbam.mlp[0].out_channels == 64 // 16 and cbam.spatial.kernel_size == (7, 7)
    assert gen.spatial_multiple == 1


def test_generator_padding_equals_pytorch_same_and_reflect_option():
    gen = CVSCTGenerator(features=8)
    x = torch.randn(1, 1, 9, 12)
    conv = gen[1]
    first = F.leaky_relu(F.conv2d(x, conv.weight, conv.bias, padding="same"), 0.2)
    torch.testing.assert_close(gen[2](gen[1](gen[0](x))), first)
    reflect = CVSCTGenerator(features=8, padding_mode="reflect")
    assert isinstance(reflect[0], nn.ReflectionPad2d) and reflect[0].padding == (1, 2, 1, 2)
    assert reflect(torch.zeros(1, 1, 37, 50)).shape == (1, 1, 37, 50)
    with pytest.raises(ValueError, match="padding_mode"):
        CVSCTGenerator(padding_mode="circular")


@pytest.mark.parametrize("shift", [-20.0, 20.0])
def test_generator_output_is_tanh_of_last_conv(shift):
    gen = CVSCTGenerator(features=8)
    x = torch.rand(1, 1, 37, 50) * 2 - 1
    body = nn.Sequential(*list(gen.children())[:-1])
    torch.testing.assert_close(gen(x), torch.tanh(body(x)))
    with torch.no_grad():
        gen[-2].bias.fill_(shift)  # drive the tanh into saturation: values stay in [-1, 1]
    y = gen(x)
    assert isinstance(gen[-1], nn.Tanh)
    assert y.abs().max() <= 1 and bool((y * shift > 0.99 * abs(shift)).all())


def test_generator_parameter_count_by_hand():
    f, k, r = 64, 4, 16
    convs = _conv(1, f, k) + 5 * _conv(f, f, k) + _conv(f, 1, k)
    cbam = 2 * f * (f // r) + 2 * 7 * 7  # shared MLP C→C/r→C (no bias) + 7×7 spatial conv on 2 maps (no bias)
    assert _count(CVSCTGenerator()) == convs + 3 * cbam == 331943
    small = CVSCTGenerator(in_channels=2, features=16, n_convs=5, cbam_reduction=4)  # CBAM after convs 2, 4
    assert _count(small) == _conv(2, 16, 4) + 3 * _conv(16, 16, 4) + _conv(16, 1, 4) + 2 * (2 * 16 * 4 + 98)


def test_generator_init_and_options():
    torch.manual_seed(0)
    gen = CVSCTGenerator()
    conv = gen[4]
    assert abs(float(conv.weight.std()) - 0.02) < 0.003 and not conv.bias.any()
    he = CVSCTGenerator(init="kaiming")  # He normal for LeakyReLU(0.2): std = sqrt(2 / 1.04) / sqrt(fan_in)
    assert abs(float(he[4].weight.std()) - (2 / 1.04) ** 0.5 / (64 * 16) ** 0.5) < 0.003 and not he[4].bias.any()
    inst = CVSCTGenerator(features=8, norm="instance")
    assert sum(isinstance(m, nn.InstanceNorm2d) for m in inst.children()) == 6
    with pytest.raises(ValueError, match="init"):
        CVSCTGenerator(init="xavier")


def test_generator_scripts_and_pairs_into_a_translator():
    gen = CVSCTGenerator(features=8)
    scripted = torch.jit.script(gen)
    x = torch.rand(1, 1, 37, 50) * 2 - 1
    torch.testing.assert_close(scripted(x), gen(x))
    assert scripted.spatial_multiple == 1
    pair = CycleGANPair(gen, CVSCTGenerator(features=8), ("ge_lung", "siemens_bl64"))
    assert pair.spatial_multiple == 1
    torch.testing.assert_close(pair(x, "ge_lung", "siemens_bl64"), gen(x))


# ---------------------------------------------------------------- discriminator
def test_discriminator_has_seven_hidden_convs_and_sigmoid_output():
    disc = CVSCTDiscriminator()
    children = list(disc.children())
    convs = [m for m in children if isinstance(m, nn.Conv2d)]
    hidden = [c for i, c in enumerate(children[:-1]) if isinstance(c, nn.Conv2d)
              and any(isinstance(m, nn.LeakyReLU) for m in children[i + 1:i + 3])]
    assert len(hidden) == 7 and len(convs) == 8
    assert [(c.in_channels, c.out_channels, c.kernel_size[0], c.stride[0], c.padding[0]) for c in convs] == [
        (1, 64, 4, 2, 1), (64, 128, 4, 2, 1), (128, 256, 4, 2, 1), (256, 512, 4, 1, 1),
        (512, 512, 4, 1, 1), (512, 512, 4, 1, 1), (512, 512, 4, 1, 1), (512, 1, 4, 1, 1),
    ]
    kinds = _kinds(disc)
    assert kinds[:2] == ["Conv2d", "LeakyReLU"] and kinds.count("InstanceNorm2d") == 6
    assert kinds[-2:] == ["Conv2d", "Sigmoid"]
    assert all(m.negative_slope == pytest.approx(0.2) for m in children if isinstance(m, nn.LeakyReLU))


@pytest.mark.parametrize("size", [(80, 80), (64, 96), (48, 51)])
def test_discriminator_output_shape_and_range(size):
    disc = CVSCTDiscriminator(ndf=8)
    y = disc(torch.rand(2, 1, *size) * 2 - 1)
    h, w = (cvsct_discriminator_output_size(s) for s in size)
    assert y.shape == (2, 1, h, w)
    assert bool(((y > 0) & (y < 1)).all())


def test_discriminator_output_size_formula():
    assert cvsct_discriminator_output_size(80) == 5  # 80 → 40 → 20 → 10 → 9 → 8 → 7 → 6 → 5
    assert cvsct_discriminator_output_size(512) == 59
    assert cvsct_discriminator_output_size(48) == 1 and cvsct_discriminator_output_size(47) == 0


def test_discriminator_parameter_count_by_hand():
    widths = [64, 128, 256, 512, 512, 512, 512]
    expected = sum(_conv(cin, cout, 4) for cin, cout in zip([1, *widths[:-1]], widths, strict=True)) + _conv(512, 1, 4)
    assert _count(CVSCTDiscriminator()) == expected
    assert _count(CVSCTDiscriminator(ndf=8, n_hidden=3, n_downsampling=2)) == (
        _conv(1, 8, 4) + _conv(8, 16, 4) + _conv(16, 32, 4) + _conv(32, 1, 4)
    )


def test_discriminator_options():
    raw = CVSCTDiscriminator(ndf=8, sigmoid=False)
    assert "Sigmoid" not in _kinds(raw)
    torch.manual_seed(0)
    disc = CVSCTDiscriminator()
    assert abs(float(disc[2].weight.std()) - 0.02) < 0.003
    with pytest.raises(ValueError, match="n_downsampling"):
        CVSCTDiscriminator(n_hidden=2, n_downsampling=3)


def test_discriminator_scripts():
    disc = CVSCTDiscriminator(ndf=8)
    scripted = torch.jit.script(disc)
    x = torch.rand(1, 1, 64, 64) * 2 - 1
    torch.testing.assert_close(scripted(x), disc(x))
