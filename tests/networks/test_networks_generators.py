"""ResNet encoder/latent/decoder, the multipath generator and its exportable paths."""

import json

import pytest
import torch
from torch import nn

from ctharmonize.errors import ConfigError, UnknownDomainError
from ctharmonize.networks import (
    DEFAULT_DOMAINS,
    MultipathDiscriminators,
    MultipathGenerator,
    MultipathPath,
    ResnetDecoder,
    ResnetEncoder,
    ResnetGenerator,
    SharedLatent,
    add_new_domain,
)

torch.set_num_threads(1)
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::torch.jit.TracerWarning")


def _count(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def _conv(cin, cout, k):  # weights + bias
    return cin * cout * k * k + cout


def test_encoder_layers_and_shape():
    enc = ResnetEncoder(1, ngf=8)
    convs = [m for m in enc if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size[0], c.stride[0]) for c in convs] == [
        (1, 8, 7, 1), (8, 16, 3, 2), (16, 32, 3, 2)
    ]
    assert isinstance(enc[0], nn.ReflectionPad2d) and enc[0].padding == (3, 3, 3, 3)
    assert all(isinstance(m, nn.InstanceNorm2d) and not m.affine for m in enc if "Norm" in type(m).__name__)
    assert enc(torch.zeros(2, 1, 32, 48)).shape == (2, 32, 8, 12)


def test_decoder_layers_shape_and_range():
    dec = ResnetDecoder(1, ngf=8)
    ups = [m for m in dec if isinstance(m, nn.ConvTranspose2d)]
    assert [(u.in_channels, u.out_channels, u.stride[0], u.output_padding[0]) for u in ups] == [(32, 16, 2, 1), (16, 8, 2, 1)]
    assert isinstance(dec[-1], nn.Tanh) and isinstance(dec[-3], nn.ReflectionPad2d)
    y = dec(torch.randn(2, 32, 8, 12) * 50)
    assert y.shape == (2, 1, 32, 48)
    assert y.abs().max() <= 1.0


@pytest.mark.parametrize("size", [256, 512])
def test_multipath_shapes(size):
    g = MultipathGenerator(ngf=8, n_blocks=2).eval()
    x = torch.rand(1, 1, size, size) * 2 - 1
    with torch.no_grad():
        z = g.encode(x, "ge_bone")
        y = g(x, "ge_bone", "siemens_b30f")
    assert z.shape == (1, 32, size // 4, size // 4)
    assert y.shape == (1, 1, size, size)
    assert y.abs().max() <= 1.0


def test_default_model_matches_paper_architecture_and_parameter_count():
    g, d = MultipathGenerator(), MultipathDiscriminators()
    assert g.domains == DEFAULT_DOMAINS == ("siemens_b50f", "siemens_b30f", "ge_bone", "ge_standard")
    assert len(g.latent) == 9 and isinstance(g.latent, SharedLatent)
    encoder = _conv(1, 64, 7) + _conv(64, 128, 3) + _conv(128, 256, 3)
    decoder = _conv(256, 128, 3) + _conv(128, 64, 3) + _conv(64, 1, 7)  # ConvTranspose2d has the same count
    latent = 9 * 2 * _conv(256, 256, 3)
    disc = _conv(1, 64, 4) + _conv(64, 128, 4) + _conv(128, 256, 4) + _conv(256, 512, 4) + _conv(512, 1, 4)
    assert _count(g.encoders["ge_bone"]) == encoder
    assert _count(g.decoders["ge_bone"]) == decoder
    assert _count(g.latent) == latent
    assert _count(g) == 4 * (encoder + decoder) + latent == 13_598_212
    assert _count(d) == 4 * disc == 11_050_756
    # the plain CycleGAN (2 generators + 2 discriminators) has the paper's 28.26 M parameters
    assert 2 * _count(ResnetGenerator()) + 2 * disc == pytest.approx(28.258e6, rel=1e-4)


def test_latent_is_one_shared_instance():
    g = MultipathGenerator(ngf=8, n_blocks=2)
    ids = {id(p) for p in g.latent.parameters()}
    assert len([n for n, _ in g.named_parameters() if n.startswith("latent.")]) == len(ids)
    p1, p2 = g.path("siemens_b50f", "ge_standard"), g.path("ge_bone", "siemens_b30f")
    assert p1.latent is g.latent and p2.latent is g.latent
    assert p1.encoder is g.encoders["siemens_b50f"] and p1.decoder is g.decoders["ge_standard"]


def test_path_equals_forward_and_exports_to_torchscript(tmp_path):
    torch.manual_seed(0)
    g = MultipathGenerator(ngf=8, n_blocks=2).eval()
    x = torch.rand(2, 1, 64, 64) * 2 - 1
    path = g.path("ge_bone", "siemens_b30f")
    assert isinstance(path, MultipathPath) and (path.source, path.target) == ("ge_bone", "siemens_b30f")
    with torch.no_grad():
        expected = g(x, "ge_bone", "siemens_b30f")
        torch.testing.assert_close(path(x), expected)
        # a different path really differs (separate decoders)
        assert not torch.allclose(g(x, "ge_bone", "ge_standard"), expected)
        scripted = torch.jit.script(path)
        traced = torch.jit.trace(path, x)
        torch.testing.assert_close(scripted(x), expected)
        torch.testing.assert_close(traced(torch.flip(x, [0])), torch.flip(expected, [0]))
        scripted.save(str(tmp_path / "path.pt"))
        torch.testing.assert_close(torch.jit.load(str(tmp_path / "path.pt"))(x), expected)


def test_unknown_and_invalid_domains_raise_one_line_errors():
    g = MultipathGenerator(ngf=8, n_blocks=1)
    with pytest.raises(UnknownDomainError, match="unknown source domain 'philips_c'") as err:
        g(torch.zeros(1, 1, 8, 8), "philips_c", "ge_bone")
    assert "\n" not in str(err.value) and "siemens_b30f" in str(err.value)
    with pytest.raises(UnknownDomainError, match="target domain"):
        g.path("ge_bone", "nope")
    for bad in (["a.b"], [], ["x", "x"], ["keys"], ["training"], ["domains"], [""], [3]):
        with pytest.raises(ConfigError):
            MultipathGenerator(domains=bad, ngf=8, n_blocks=1)
    with pytest.raises(ConfigError, match="twice"):
        g.add_domain("ge_bone")


def test_built_from_json_config():
    cfg = json.loads('{"domains": ["siemens_b30f", "siemens_b70f"], "ngf": 8, "n_blocks": 3, "in_channels": 1}')
    g = MultipathGenerator(**cfg)
    assert g.domains == ("siemens_b30f", "siemens_b70f") and len(g.latent) == 3
    assert g.encoders["siemens_b70f"][1].out_channels == 8


def test_add_domain_and_freezing_for_stage_two():
    torch.manual_seed(0)
    g = MultipathGenerator(ngf=8, n_blocks=1)
    d = MultipathDiscriminators(ndf=8)
    before = {k: v.clone() for k, v in g.state_dict().items()}
    trainable = add_new_domain(g, d, "philips_c")
    assert g.domains[-1] == "philips_c" and d.domains[-1] == "philips_c"
    expected = {id(p) for m in (g.encoders["philips_c"], g.decoders["philips_c"], d["philips_c"]) for p in m.parameters()}
    assert {id(p) for p in trainable} == expected
    for name, p in list(g.named_parameters()) + list(d.named_parameters()):
        assert p.requires_grad == ("philips_c" in name), name
    # one optimisation step changes only the new kernel's weights
    new_before = [p.detach().clone() for p in trainable]
    opt = torch.optim.SGD(trainable, lr=0.1)
    x = torch.rand(2, 1, 32, 32) * 2 - 1
    loss = g(x, "philips_c", "siemens_b30f").mean() + g(x, "ge_bone", "philips_c").mean() + d(x, "philips_c").mean()
    loss.backward()
    opt.step()
    after = g.state_dict()
    for key, value in before.items():
        assert torch.equal(after[key], value), key
    assert all(not torch.equal(p, q) for p, q in zip(trainable, new_before, strict=True) if p.dim() > 1)
    assert g.latent[0].conv_block[1].weight.grad is None


def test_freeze_except_keeps_listed_domains_trainable():
    g = MultipathGenerator(ngf=8, n_blocks=1)
    params = g.freeze_except(["ge_bone", "ge_standard"])
    assert {id(p) for p in params} == {
        id(p) for n in ("ge_bone", "ge_standard") for m in (g.encoders[n], g.decoders[n]) for p in m.parameters()
    }
    with pytest.raises(UnknownDomainError):
        g.freeze_except("nope")


@pytest.mark.parametrize("size", [256, 512])
def test_resnet_generator_shape_and_script(size):
    g = ResnetGenerator(ngf=8, n_blocks=2).eval()
    assert len(g.latent) == 2
    x = torch.rand(1, 1, size, size) * 2 - 1
    with torch.no_grad():
        y = g(x)
        assert y.shape == (1, 1, size, size)
        if size == 256:
            torch.testing.assert_close(torch.jit.script(g)(x), y)


def test_path_exports_with_torch_export():
    g = MultipathGenerator(ngf=4, n_blocks=1).eval()
    path = g.path("siemens_b50f", "siemens_b30f")
    x = torch.rand(1, 1, 32, 32) * 2 - 1
    exported = torch.export.export(path, (x,))
    with torch.no_grad():
        torch.testing.assert_close(exported.module()(x), path(x))


def test_state_dict_keys_follow_reference_layer_indices():
    g = MultipathGenerator(domains=["a"], ngf=4, n_blocks=1)
    keys = set(g.state_dict())
    # pix2pix/authors' indices: encoder convs at 1, 4, 7; decoder convT at 0, 3 and conv at 7; block convs at 1, 5
    expected = {f"encoders.a.{i}.{t}" for i in (1, 4, 7) for t in ("weight", "bias")}
    expected |= {f"decoders.a.{i}.{t}" for i in (0, 3, 7) for t in ("weight", "bias")}
    expected |= {f"latent.0.conv_block.{i}.{t}" for i in (1, 5) for t in ("weight", "bias")}
    assert keys == expected
    d = MultipathDiscriminators(["a"], ndf=4)
    assert set(d.state_dict()) == {f"a.{i}.{t}" for i in (0, 2, 5, 8, 11) for t in ("weight", "bias")}


def test_residual_generator_starts_as_identity_and_path_matches():
    from ctharmonize.networks import MultipathGenerator

    torch.manual_seed(0)
    g = MultipathGenerator(ngf=4, n_blocks=1, residual=True).eval()
    x = torch.rand(2, 1, 32, 32) * 2 - 1
    # zero-initialised last decoder conv: tanh(0) = 0 correction, so every path is the identity at start
    assert torch.equal(g(x, "siemens_b50f", "siemens_b30f"), x)
    with torch.no_grad():
        for p in g.parameters():
            p.add_(0.05 * torch.randn_like(p))
    expected = torch.clamp(x + g.decoders["ge_standard"](g.latent(g.encoders["ge_bone"](x))), -1, 1)
    path = g.path("ge_bone", "ge_standard")
    assert torch.allclose(g(x, "ge_bone", "ge_standard"), expected)
    assert torch.allclose(path(x), expected)
    assert torch.allclose(torch.jit.script(path)(x), expected, atol=1e-6)
    plain = MultipathGenerator(ngf=4, n_blocks=1, residual=False).eval()
    assert not torch.equal(plain(x, "siemens_b50f", "siemens_b30f"), x)


@pytest.mark.parametrize("n_down", [0, 1, 3])
def test_n_downsampling_sets_latent_resolution_and_width(n_down):
    from ctharmonize.networks import MultipathGenerator

    torch.manual_seed(0)
    g = MultipathGenerator(ngf=4, n_blocks=1, n_downsampling=n_down).eval()
    x = torch.rand(2, 1, 32, 24) * 2 - 1
    z = g.encode(x, "ge_bone")
    # each stride-2 conv halves H and W and doubles the width: (B, ngf·2^n, H/2^n, W/2^n)
    assert z.shape == (2, 4 * 2**n_down, 32 // 2**n_down, 24 // 2**n_down)
    y = g(x, "ge_bone", "siemens_b30f")
    assert y.shape == x.shape and float(y.abs().max()) <= 1.0
    strided = [m for m in g.encoders["ge_bone"].modules() if isinstance(m, nn.Conv2d) and m.stride == (2, 2)]
    assert len(strided) == n_down
    path = torch.jit.script(g.path("ge_bone", "siemens_b30f"))
    assert torch.allclose(path(x), y, atol=1e-6)


def test_negative_n_downsampling_is_refused():
    from ctharmonize.networks import MultipathGenerator

    with pytest.raises(ValueError, match="n_downsampling"):
        MultipathGenerator(ngf=4, n_blocks=1, n_downsampling=-1)
