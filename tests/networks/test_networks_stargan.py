"""StarGAN v2 networks (paper 003): AdaIN, ResBlk / AdainResBlk, generator, mapping network, style encoder,
multi-task discriminator."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ctharmonize.networks import (
    AdaIN,
    AdainResBlk,
    MappingNetwork,
    MultiTaskDiscriminator,
    ResBlk,
    StarGANGenerator,
    StarGANTrunk,
    StyleEncoder,
    select_domain,
    stargan_init,
    stargan_sizes,
)

torch.set_num_threads(1)
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

SMALL = {"dim_in": 8, "max_conv_dim": 32}  # CPU-sized widths for forward passes


def _count(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def _conv(cin: int, cout: int, k: int, bias: bool = True) -> int:
    return cin * cout * k * k + (cout if bias else 0)


def _linear(cin: int, cout: int) -> int:
    return cin * cout + cout


def _widths(dim_in: int, max_dim: int, n_down: int) -> list[int]:
    w = [dim_in]
    for _ in range(n_down):
        w.append(min(2 * w[-1], max_dim))
    return w


def _resblk(din: int, dout: int, norm: bool) -> int:
    return _conv(din, din, 3) + _conv(din, dout, 3) + (din * dout if din != dout else 0) + (4 * din if norm else 0)


def _adain_resblk(din: int, dout: int, style: int) -> int:
    return (_linear(style, 2 * din) + _conv(din, dout, 3) + _linear(style, 2 * dout) + _conv(dout, dout, 3)
            + (din * dout if din != dout else 0))


def _generator_count(dim_in=64, max_dim=512, n_down=4, style=64, n_b=2) -> int:
    w = _widths(dim_in, max_dim, n_down)
    enc = _conv(1, dim_in, 3) + sum(_resblk(w[i], w[i + 1], True) for i in range(n_down))
    mid = n_b * (_resblk(w[-1], w[-1], True) + _adain_resblk(w[-1], w[-1], style))
    dec = sum(_adain_resblk(w[i], w[i - 1], style) for i in range(n_down, 0, -1))
    return enc + mid + dec + 2 * dim_in + _conv(dim_in, 1, 1)


def _trunk_count(dim_in=64, max_dim=512, n_down=6) -> int:
    w = _widths(dim_in, max_dim, n_down)
    return _conv(1, dim_in, 3) + sum(_resblk(w[i], w[i + 1], False) for i in range(n_down)), w[-1]


def _images(b: int, h: int, w: int | None = None, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 1, h, h if w is None else w, generator=g) * 2 - 1


# ---------------------------------------------------------------- blocks
def test_adain_output_statistics_are_one_plus_gamma_and_beta():
    torch.manual_seed(0)
    ada = AdaIN(style_dim=8, num_features=4)
    x = torch.randn(2, 4, 16, 16) * 3 + 1.5
    s = torch.randn(2, 8)
    out = ada(x, s)
    h = s @ ada.fc.weight.T + ada.fc.bias  # computed independently of forward
    gamma, beta = h[:, :4], h[:, 4:]
    var = x.var(dim=(2, 3), unbiased=False)
    torch.testing.assert_close(out.mean(dim=(2, 3)), beta, atol=1e-5, rtol=1e-5)
    expected_std = (1 + gamma).abs() * torch.sqrt(var / (var + 1e-5))
    torch.testing.assert_close(out.std(dim=(2, 3), unbiased=False), expected_std, atol=1e-4, rtol=1e-4)
    # the sign of 1 + gamma is kept: out = (1 + gamma) * IN(x) + beta exactly
    normed = (x - x.mean(dim=(2, 3), keepdim=True)) / torch.sqrt(var[..., None, None] + 1e-5)
    torch.testing.assert_close(out, (1 + gamma)[..., None, None] * normed + beta[..., None, None], atol=1e-5, rtol=1e-5)
    with torch.no_grad():
        ada.fc.weight.zero_()
        ada.fc.bias.zero_()
    torch.testing.assert_close(ada(x, s), normed, atol=1e-5, rtol=1e-5)  # gamma = beta = 0: plain IN
    assert not ada.norm.affine


def _instance_norm(x: torch.Tensor, norm: nn.Module) -> torch.Tensor:
    return F.instance_norm(x, weight=norm.weight, bias=norm.bias, eps=1e-5)


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("din, dout", [(4, 8), (6, 6)])
def test_resblk_matches_hand_written_preactivation_block(normalize, din, dout):
    torch.manual_seed(0)
    blk = ResBlk(din, dout, normalize=normalize, downsample=True)
    with torch.no_grad():  # non-trivial IN affines
        for m in blk.modules():
            if isinstance(m, nn.InstanceNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    x = torch.randn(2, din, 12, 10)
    n1 = (lambda t: _instance_norm(t, blk.norm1)) if normalize else (lambda t: t)
    n2 = (lambda t: _instance_norm(t, blk.norm2)) if normalize else (lambda t: t)
    r = F.conv2d(F.leaky_relu(n1(x), 0.2), blk.conv1.weight, blk.conv1.bias, padding=1)
    r = F.conv2d(F.leaky_relu(n2(F.avg_pool2d(r, 2)), 0.2), blk.conv2.weight, blk.conv2.bias, padding=1)
    sc = F.conv2d(x, blk.shortcut.weight) if din != dout else x
    expected = (F.avg_pool2d(sc, 2) + r) / math.sqrt(2)
    out = blk(x)
    assert out.shape == (2, dout, 6, 5)
    torch.testing.assert_close(out, expected)
    assert isinstance(blk.shortcut, nn.Identity) == (din == dout)
    assert sum(isinstance(m, nn.InstanceNorm2d) for m in blk.modules()) == (2 if normalize else 0)
    assert _count(blk) == _resblk(din, dout, normalize)
    assert ResBlk(din, dout)(x).shape == (2, dout, 12, 10)  # no downsampling


@pytest.mark.parametrize("din, dout", [(8, 4), (6, 6)])
def test_adain_resblk_matches_hand_written_block(din, dout):
    torch.manual_seed(0)
    blk = AdainResBlk(din, dout, style_dim=5, upsample=True)
    x, s = torch.randn(2, din, 5, 7), torch.randn(2, 5)
    up = lambda t: F.interpolate(t, scale_factor=2.0, mode="nearest")  # noqa: E731
    r = F.conv2d(up(F.leaky_relu(blk.norm1(x, s), 0.2)), blk.conv1.weight, blk.conv1.bias, padding=1)
    r = F.conv2d(F.leaky_relu(blk.norm2(r, s), 0.2), blk.conv2.weight, blk.conv2.bias, padding=1)
    sc = F.conv2d(up(x), blk.shortcut.weight) if din != dout else up(x)
    out = blk(x, s)
    assert out.shape == (2, dout, 10, 14)
    torch.testing.assert_close(out, (sc + r) / math.sqrt(2))
    assert _count(blk) == _adain_resblk(din, dout, 5)
    assert AdainResBlk(din, dout, style_dim=5)(x, s).shape == (2, dout, 5, 7)


def test_blocks_script():
    torch.manual_seed(0)
    x, s = torch.randn(1, 4, 8, 8), torch.randn(1, 3)
    for blk, args in [(AdaIN(3, 4), (x, s)), (ResBlk(4, 8, True, True), (x,)), (ResBlk(4, 4), (x,)),
                      (AdainResBlk(4, 2, 3, upsample=True), (x, s)), (AdainResBlk(4, 4, 3), (x, s))]:
        torch.testing.assert_close(torch.jit.script(blk)(*args), blk(*args))


# ---------------------------------------------------------------- sizes, trunk, init, selection
def test_stargan_sizes_follow_the_upstream_rule():
    assert stargan_sizes(None, None, None, bottom_log2=4) == (64, 4)  # generator at 256²
    assert stargan_sizes(256, None, None, bottom_log2=4) == (64, 4)
    assert stargan_sizes(512, None, None, bottom_log2=4) == (32, 5)  # paper 003's 512² slices
    assert stargan_sizes(256, None, None, bottom_log2=2) == (64, 6)  # style encoder / discriminator
    assert stargan_sizes(512, None, None, bottom_log2=2) == (32, 7)
    assert stargan_sizes(512, 16, 3, bottom_log2=4) == (16, 3)  # explicit values win
    for bad in (300, 8):
        with pytest.raises(ValueError, match="power of two"):
            stargan_sizes(bad, None, None, bottom_log2=4)
    with pytest.raises(ValueError, match="n_down"):
        stargan_sizes(None, 8, -1, bottom_log2=4)


def test_trunk_widths_and_names():
    trunk = StarGANTrunk(1, 64, 512, 6)
    assert trunk.channels == [64, 128, 256, 512, 512, 512, 512] and trunk.out_channels == 512
    assert [name for name, _ in trunk.named_children()] == ["from_rgb"] + [f"down{i}" for i in range(1, 7)]
    assert trunk.from_rgb.kernel_size == (3, 3) and trunk.from_rgb.padding == (1, 1)
    one = StarGANTrunk(1, 8, 32, 2, from_rgb_kernel=1)
    assert one.from_rgb.kernel_size == (1, 1) and one(torch.zeros(1, 1, 16, 12)).shape == (1, 32, 4, 3)
    with pytest.raises(ValueError, match="from_rgb_kernel"):
        StarGANTrunk(from_rgb_kernel=2)


def test_kaiming_init_and_options():
    torch.manual_seed(0)
    gen = StarGANGenerator()
    conv = gen.encoder.down3.conv1  # 256 → 256, fan_in 256·9
    assert abs(float(conv.weight.detach().std()) - math.sqrt(2 / (256 * 9))) < 0.05 * math.sqrt(2 / (256 * 9))
    assert not conv.bias.any() and not gen.decoder[0].norm1.fc.bias.any()
    mapping = MappingNetwork()
    assert abs(float(mapping.shared[2].weight.detach().std()) - math.sqrt(2 / 512)) < 0.05 * math.sqrt(2 / 512)
    plain = StyleEncoder(init="pytorch", **SMALL, n_down=2)
    assert plain.trunk.from_rgb.bias.any()  # PyTorch's default init keeps random biases
    with pytest.raises(ValueError, match="init"):
        stargan_init(nn.Linear(2, 2), "xavier")
    with pytest.raises(ValueError, match="init"):
        MultiTaskDiscriminator(init="normal")


def test_select_domain_gathers_each_samples_row():
    values = torch.arange(24.0).view(4, 3, 2)
    y = torch.tensor([2, 0, 1, 2])
    torch.testing.assert_close(select_domain(values, y), torch.stack([values[i, y[i]] for i in range(4)]))
    torch.testing.assert_close(select_domain(values[..., 0], y), values[torch.arange(4), y, 0])
    with pytest.raises(ValueError, match="shape"):
        select_domain(values, y[:2])
    with pytest.raises(IndexError):
        select_domain(values, torch.tensor([0, 1, 3, 0]))


# ---------------------------------------------------------------- generator
@pytest.mark.parametrize("size, n_down", [(48, 3), (64, 3), (48, 4), ((64, 48), 2)])
def test_generator_shapes(size, n_down):
    h, w = size if isinstance(size, tuple) else (size, size)
    gen = StarGANGenerator(style_dim=16, n_down=n_down, **SMALL)
    assert gen.spatial_multiple == 2**n_down
    out = gen(_images(2, h, w), torch.randn(2, 16))
    assert out.shape == (2, 1, h, w) and torch.isfinite(out).all()


def test_generator_rejects_sizes_that_are_not_multiples():
    gen = StarGANGenerator(style_dim=16, n_down=3, **SMALL)
    with pytest.raises(ValueError, match="spatial_multiple = 8"):
        gen(_images(1, 44, 48), torch.randn(1, 16))


def test_generator_layout_at_default_sizes():
    gen = StarGANGenerator()
    assert gen.encoder.channels == [64, 128, 256, 512, 512] and gen.spatial_multiple == 16
    assert all(isinstance(b, ResBlk) and not b.downsample for b in gen.bottleneck) and len(gen.bottleneck) == 2
    dec = [(b.conv1.in_channels, b.conv2.out_channels, b.upsample) for b in gen.decoder]
    assert dec == [(512, 512, False)] * 2 + [(512, 512, True), (512, 256, True), (256, 128, True), (128, 64, True)]
    kinds = [type(m).__name__ for m in gen.to_rgb]
    assert kinds == ["InstanceNorm2d", "LeakyReLU", "Conv2d"] and gen.to_rgb[0].affine
    assert gen.to_rgb[2].kernel_size == (1, 1) and isinstance(gen.out_act, nn.Identity)
    big = StarGANGenerator(img_size=512)
    assert big.encoder.channels == [32, 64, 128, 256, 512, 512] and big.spatial_multiple == 32


def test_generator_output_depends_on_style_and_only_on_own_sample():
    torch.manual_seed(0)
    gen = StarGANGenerator(style_dim=16, n_down=3, **SMALL)
    x, s = _images(2, 48), torch.randn(2, 16)
    out = gen(x, s)
    other = gen(x, torch.randn(2, 16))
    assert (out - other).abs().amax(dim=(1, 2, 3)).min() > 1e-3  # two styles, two outputs, every sample
    s2 = s.clone()
    s2[1] = torch.randn(16)
    out2 = gen(x, s2)
    torch.testing.assert_close(out2[0], out[0])  # instance norm: no coupling across the batch
    assert not torch.allclose(out2[1], out[1])
    torch.testing.assert_close(gen(x[1:], s[1:]), out[1:], atol=1e-5, rtol=1e-4)


def test_generator_output_range_and_tanh_option():
    torch.manual_seed(0)
    x, s = _images(2, 32), torch.randn(2, 16)
    gen = StarGANGenerator(style_dim=16, n_down=2, **SMALL)
    with torch.no_grad():
        gen.to_rgb[2].bias.fill_(3.0)  # no output activation: values can leave [-1, 1]
    assert gen(x, s).max() > 1
    bounded = StarGANGenerator(style_dim=16, n_down=2, tanh=True, **SMALL)
    bounded.load_state_dict(gen.state_dict())
    out = bounded(x, s)
    assert isinstance(bounded.out_act, nn.Tanh) and out.abs().max() <= 1
    torch.testing.assert_close(out, torch.tanh(gen(x, s)))


def test_gradient_flows_to_style_code_and_mapping_network():
    torch.manual_seed(0)
    gen = StarGANGenerator(style_dim=16, n_down=2, **SMALL)
    mapping = MappingNetwork(style_dim=16, hidden_dim=32, num_domains=3)
    z = torch.randn(2, 16, requires_grad=True)
    s = mapping(z, torch.tensor([0, 2]))
    s.retain_grad()
    gen(_images(2, 32), s).square().mean().backward()
    assert s.grad is not None and s.grad.abs().sum() > 0 and z.grad.abs().sum() > 0
    assert mapping.heads[0][-1].weight.grad.abs().sum() > 0 and mapping.heads[2][-1].weight.grad.abs().sum() > 0
    assert mapping.heads[1][-1].weight.grad is None or not mapping.heads[1][-1].weight.grad.any()  # unused head


# ---------------------------------------------------------------- mapping network
def test_mapping_layout_and_shapes():
    m = MappingNetwork(num_domains=3)
    linears = [lin for lin in m.shared if isinstance(lin, nn.Linear)]
    assert [(lin.in_features, lin.out_features) for lin in linears] == [(16, 512)] + [(512, 512)] * 3
    assert isinstance(m.shared[-1], nn.ReLU)
    head = [lin for lin in m.heads[0] if isinstance(lin, nn.Linear)]
    assert [(lin.in_features, lin.out_features) for lin in head] == [(512, 512)] * 3 + [(512, 64)]
    assert isinstance(m.heads[0][-1], nn.Linear) and len(m.heads) == 3
    small = MappingNetwork(latent_dim=4, style_dim=6, num_domains=2, hidden_dim=8, n_shared=1, n_head=1)
    assert small(torch.randn(2, 4), torch.tensor([1, 0])).shape == (2, 6)
    assert _count(small) == _linear(4, 8) + 2 * _linear(8, 6)


def _check_per_sample_selection(net, inputs: torch.Tensor, num_domains: int):
    y = torch.tensor([2, 0, 1, 2])[: inputs.shape[0]] % num_domains
    out = net(inputs, y)
    every = net.styles(inputs) if hasattr(net, "styles") else net.logits(inputs)
    assert every.shape[:2] == (inputs.shape[0], num_domains)
    for i in range(inputs.shape[0]):
        torch.testing.assert_close(out[i], every[i, y[i]])
        torch.testing.assert_close(net(inputs[i:i + 1], y[i:i + 1])[0], out[i], atol=1e-5, rtol=1e-4)
    y2 = y.clone()
    y2[1] = (y[1] + 1) % num_domains
    out2 = net(inputs, y2)
    torch.testing.assert_close(out2[0], out[0])
    assert not torch.allclose(out2[1], out[1])
    return out


def test_mapping_selects_each_samples_domain_head():
    torch.manual_seed(0)
    m = MappingNetwork(style_dim=8, num_domains=3, hidden_dim=32)
    out = _check_per_sample_selection(m, torch.randn(2, 16), 3)
    assert out.shape == (2, 8)


# ---------------------------------------------------------------- style encoder
@pytest.mark.parametrize("size", [48, 64, (50, 37)])
def test_style_encoder_shapes_any_crop(size):
    h, w = size if isinstance(size, tuple) else (size, size)
    enc = StyleEncoder(style_dim=8, num_domains=3, n_down=3, **SMALL)
    assert enc(_images(2, h, w), torch.tensor([0, 2])).shape == (2, 8)


def test_style_encoder_selects_each_samples_domain_head():
    torch.manual_seed(0)
    enc = StyleEncoder(style_dim=8, num_domains=3, n_down=3, **SMALL)
    _check_per_sample_selection(enc, _images(2, 48), 3)


def test_style_encoder_layout_at_default_sizes():
    enc = StyleEncoder()
    assert enc.trunk.channels == [64, 128, 256, 512, 512, 512, 512]
    assert not any(isinstance(m, nn.InstanceNorm2d) for m in enc.modules())
    assert [type(m).__name__ for m in enc.pool] == ["LeakyReLU", "Conv2d", "LeakyReLU", "AdaptiveAvgPool2d", "Flatten"]
    assert [(h.in_features, h.out_features) for h in enc.heads] == [(512, 64)] * 3
    assert StyleEncoder(img_size=512).trunk.channels == [32, 64, 128, 256, 512, 512, 512, 512]


# ---------------------------------------------------------------- discriminator
@pytest.mark.parametrize("size", [48, 64, (50, 37)])
def test_discriminator_shapes_any_crop(size):
    h, w = size if isinstance(size, tuple) else (size, size)
    disc = MultiTaskDiscriminator(num_domains=3, n_down=3, **SMALL)
    x = _images(2, h, w)
    assert disc(x, torch.tensor([1, 2])).shape == (2,) and disc.logits(x).shape == (2, 3)


def test_discriminator_selects_each_samples_domain_logit():
    torch.manual_seed(0)
    disc = MultiTaskDiscriminator(num_domains=3, n_down=3, **SMALL)
    _check_per_sample_selection(disc, _images(2, 64), 3)


def test_discriminator_layout_and_r1_double_backward():
    disc = MultiTaskDiscriminator()
    assert disc.trunk.channels == [64, 128, 256, 512, 512, 512, 512]
    assert [type(m).__name__ for m in disc.head] == ["LeakyReLU", "Conv2d", "LeakyReLU", "Conv2d"]
    assert disc.head[-1].out_channels == 3
    small = MultiTaskDiscriminator(num_domains=2, n_down=2, **SMALL)
    x = _images(2, 32).requires_grad_(True)
    out = small(x, torch.tensor([0, 1]))
    (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    r1 = 0.5 * grad.pow(2).flatten(1).sum(1).mean()
    r1.backward()
    assert small.trunk.from_rgb.weight.grad.abs().sum() > 0


# ---------------------------------------------------------------- parameter counts
def test_parameter_counts_by_hand_at_default_and_demo_sizes():
    # default (StarGAN v2 at 256²) sizes, 1-channel CT, 3 kernels (paper 003); neither paper states counts
    assert _count(StarGANGenerator()) == _generator_count() == 33_891_713
    assert _count(StarGANGenerator(img_size=512)) == _generator_count(32, 512, 5) == 33_963_457
    trunk, c = _trunk_count()
    assert _count(StyleEncoder()) == trunk + _conv(c, c, 1) + 3 * _linear(c, 64) == 17_016_448
    assert _count(MultiTaskDiscriminator()) == trunk + _conv(c, c, 1) + _conv(c, 3, 1) == 16_919_491
    mapping = _linear(16, 512) + 3 * _linear(512, 512) + 3 * (3 * _linear(512, 512) + _linear(512, 64))
    assert _count(MappingNetwork()) == mapping == 3_259_072
    assert _count(MappingNetwork(num_domains=2)) == 2_438_272
    # CPU-demo widths: dim_in 16, max_conv_dim 128 (mapping hidden 128)
    demo = {"dim_in": 16, "max_conv_dim": 128}
    assert _count(StarGANGenerator(**demo)) == _generator_count(16, 128, 4) == 2_229_089
    trunk, c = _trunk_count(16, 128, 6)
    assert _count(StyleEncoder(**demo)) == trunk + _conv(c, c, 1) + 3 * _linear(c, 64) == 1_083_184
    assert _count(MultiTaskDiscriminator(**demo)) == trunk + _conv(c, c, 1) + _conv(c, 3, 1) == 1_058_803
    assert _count(MappingNetwork(hidden_dim=128)) == 225_088


# ---------------------------------------------------------------- TorchScript
def test_networks_script():
    torch.manual_seed(0)
    x, s, y = _images(2, 32), torch.randn(2, 16), torch.tensor([1, 0])
    gen = StarGANGenerator(style_dim=16, n_down=2, **SMALL)
    scripted = torch.jit.script(gen)
    torch.testing.assert_close(scripted(x, s), gen(x, s))
    assert scripted.spatial_multiple == 4
    with pytest.raises(torch.jit.Error, match="spatial_multiple"):
        scripted(_images(1, 30, 32), s[:1])
    mapping = MappingNetwork(style_dim=16, hidden_dim=32)
    z = torch.randn(2, 16)
    sm = torch.jit.script(mapping)
    torch.testing.assert_close(sm(z, y), mapping(z, y))
    torch.testing.assert_close(sm.styles(z), mapping.styles(z))
    enc = StyleEncoder(style_dim=16, n_down=2, **SMALL)
    torch.testing.assert_close(torch.jit.script(enc)(x, y), enc(x, y))
    disc = MultiTaskDiscriminator(n_down=2, **SMALL)
    sd = torch.jit.script(disc)
    torch.testing.assert_close(sd(x, y), disc(x, y))
    torch.testing.assert_close(sd.logits(x), disc.logits(x))


def test_residual_generator_starts_as_the_identity_and_learns_a_residual():
    g = StarGANGenerator(style_dim=8, dim_in=4, max_conv_dim=8, n_down=2, residual=True)
    x = torch.rand(2, 1, 16, 16) * 2 - 1
    s = torch.randn(2, 8)
    assert torch.equal(g(x, s), x)  # zero-initialised last convolution
    with torch.no_grad():
        g.to_rgb[2].bias.fill_(0.25)
    assert torch.allclose(g(x, s), x + 0.25)
    assert torch.allclose(torch.jit.script(g)(x, s), x + 0.25)
    plain = StarGANGenerator(style_dim=8, dim_in=4, max_conv_dim=8, n_down=2)
    assert not torch.allclose(plain(x, s), x, atol=0.1)
    with pytest.raises(ValueError, match="residual"):
        StarGANGenerator(style_dim=8, dim_in=4, max_conv_dim=8, n_down=2, residual=True, tanh=True)
