"""Paper 001's MTF-conditioned harmonizer: Ω, Λ (F / F⁻¹ alignment), O and the whole network (tiny sizes)."""

import pytest
import torch

from ctharmonize.errors import WeightsError
from ctharmonize.networks import FrequencyMixing, MTFEncoder, MTFHarmonizer
from ctharmonize.networks.blocks import AttentionOutputHead, centered_fft2, centered_ifft2, resample_centered

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

TINY = {"channels": (4, 8, 16), "mtf_strides": (1, 1), "mtf_channels": 2, "mtf_hidden": 2,
        "head_hidden": 4, "attention_channels": 2}


def test_centered_fft_pair_is_exact_and_dc_centred():
    x = torch.randn(2, 3, 8, 6, dtype=torch.float64)
    z = centered_fft2(x)
    # DC at (H//2, W//2), ortho scaling: DC = sum / sqrt(HW)
    assert torch.allclose(z[..., 4, 3].real, x.sum(dim=(-2, -1)) / (48**0.5))
    assert torch.allclose(centered_ifft2(z).real, x)
    assert centered_ifft2(z).imag.abs().max() < 1e-12
    odd = torch.randn(1, 1, 7, 5, dtype=torch.float64)
    assert torch.allclose(centered_ifft2(centered_fft2(odd)).real, odd)


def test_resample_centered_keeps_dc_on_dc():
    delta = torch.zeros(1, 1, 64, 64)
    delta[..., 32, 32] = 1.0
    for size in ([32, 32], [16, 24], [128, 128]):
        out = resample_centered(delta, size)
        assert out.shape[-2:] == tuple(size)
        assert float(out[0, 0, size[0] // 2, size[1] // 2]) == pytest.approx(1.0)
    # an integer factor is plain (DC-anchored) sub-sampling
    x = torch.randn(1, 2, 64, 64)
    assert torch.allclose(resample_centered(x, [16, 16]), x[..., ::4, ::4], atol=1e-6)
    assert resample_centered(x, [64, 64]) is x


def test_mtf_encoder_shapes_and_dc_anchored_upsampling():
    enc = MTFEncoder(out_channels=3, hidden=2)  # paper default strides (2, 4): 64 → 512
    assert enc.feature_size == 512
    with torch.no_grad():
        out = enc(torch.rand(2, 1, 64, 64), [32, 32])
    assert out.shape == (2, 3, 32, 32)
    # with point kernels (weight only at the centre tap, no bias) a DC delta lands exactly on DC
    enc = MTFEncoder(out_channels=1, hidden=1, strides=(2, 2))
    with torch.no_grad():
        for conv in (enc.up1, enc.up2):
            conv.weight.zero_()
            conv.bias.zero_()
            k = conv.kernel_size[0] // 2
            conv.weight[0, 0, k, k] = 1.0
        delta = torch.zeros(1, 1, 64, 64)
        delta[..., 32, 32] = 1.0
        up = enc(delta, [256, 256])
    assert float(up[0, 0, 128, 128]) == 1.0 and float(up.sum()) == 1.0
    with pytest.raises(ValueError, match="64, 64"):
        enc(torch.rand(1, 1, 32, 32), [32, 32])


def test_frequency_mixing_identity_and_zero_omega_is_pass_through():
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    lam = FrequencyMixing(3, 2).double()  # identity init: Re → Re', Im → Im', Ω weights 0
    omega = torch.randn(2, 2, 16, 16, dtype=torch.float64)
    z = centered_fft2(x)
    mixed = lam.mix(z, omega)
    assert torch.allclose(mixed, z)
    assert centered_ifft2(mixed).imag.abs().max() < 1e-12  # the output is real
    assert torch.allclose(lam(x, omega), x)
    # the same with explicitly constructed weights after a Xavier reset, and zero Ω features
    lam.reset_parameters("xavier")
    assert not torch.allclose(lam(x, torch.zeros_like(omega)), x)
    lam.reset_parameters("identity")
    assert torch.allclose(lam(x, torch.zeros_like(omega)), x)
    mult = FrequencyMixing(3, 2, multiplicative=True).double()
    assert torch.allclose(mult(x, omega), x)


def test_frequency_mixing_delta_mtf_at_dc_passes_only_the_mean():
    # multiplicative Λ built so that F(x) ⊙ (1 + Λ) = F(x) ⊙ m, with m the (single-channel) Ω map
    lam = FrequencyMixing(2, 1, multiplicative=True).double()
    with torch.no_grad():
        lam.conv.bias[:2] = -1.0  # Re gain = m − 1 + 1 = m, Im gain = 0
        lam.conv.weight[:2, 2, 0, 1, 1] = 1.0
    x = torch.randn(3, 2, 16, 12, dtype=torch.float64)
    delta = torch.zeros(3, 1, 16, 12, dtype=torch.float64)
    delta[..., 8, 6] = 1.0  # DC of the centred grid
    out = lam(x, delta)
    assert torch.allclose(out, x.mean(dim=(-2, -1), keepdim=True).expand_as(x))
    off = torch.zeros_like(delta)
    off[..., 0, 0] = 1.0  # a corner is −Nyquist, not DC: the mean is not what passes
    assert not torch.allclose(lam(x, off), x.mean(dim=(-2, -1), keepdim=True).expand_as(x))


def test_output_head_clamps_in_eval_only():
    head = AttentionOutputHead(in_channels=3, hidden=4, attention_channels=2)
    with torch.no_grad():
        head.conv2.bias.fill_(5.0)
        u, x = torch.randn(2, 3, 8, 8), torch.rand(2, 1, 8, 8) * 2 - 1
        assert head(u, x).max() > 1.0  # training: linear (paper)
        head.eval()
        y = head(u, x)
    assert y.shape == (2, 1, 8, 8) and float(y.max()) <= 1.0 and float(y.min()) >= -1.0
    tanh = AttentionOutputHead(in_channels=3, output="tanh")
    assert tanh(u, x).abs().max() < 1.0
    with pytest.raises(ValueError, match="unknown output"):
        AttentionOutputHead(output="sigmoid")


def test_harmonizer_shapes_range_and_gradients():
    net = MTFHarmonizer(**TINY)
    assert net.spatial_multiple == 4
    x = torch.rand(2, 1, 32, 32) * 2 - 1
    mtf = torch.rand(1, 1, 64, 64)  # one MTF broadcast to the batch
    y = net(x, mtf)
    assert y.shape == (2, 1, 32, 32)
    y.mean().backward()
    assert net.gamma.model[0].conv[0].conv.weight.grad is not None
    assert net.mixing.conv.weight.grad is not None
    net.eval()
    with torch.no_grad():
        y = net(x, torch.rand(2, 1, 64, 64))
    assert float(y.abs().max()) <= 1.0
    with pytest.raises(ValueError, match="multiples of 4"):
        net(torch.zeros(1, 1, 30, 32), mtf)


def test_harmonizer_paper_omega_on_demo_size():
    net = MTFHarmonizer(channels=(4, 8), mtf_channels=2, mtf_hidden=2, head_hidden=4, attention_channels=2).eval()
    with torch.no_grad():
        assert net(torch.zeros(1, 1, 16, 16), torch.ones(1, 1, 64, 64)).shape == (1, 1, 16, 16)


def test_harmonizer_torchscript_matches_eager():
    net = MTFHarmonizer(**TINY).eval()
    scripted = torch.jit.script(net)
    x, mtf = torch.rand(1, 1, 16, 16) * 2 - 1, torch.rand(1, 1, 64, 64)
    with torch.no_grad():
        assert torch.allclose(scripted(x, mtf), net(x, mtf), atol=1e-6)


def test_harmonizer_encoder_weights_from_user_path(tmp_path):
    src = MTFHarmonizer(**TINY)
    path = tmp_path / "gamma.pt"
    torch.save({"state_dict": {"encoder." + k: v for k, v in src.gamma.state_dict().items()}}, path)
    net = MTFHarmonizer(**TINY, encoder_weights=path, encoder_prefix="encoder.")
    for k, v in src.gamma.state_dict().items():
        assert torch.equal(net.gamma.state_dict()[k], v)
    torch.save({"other.weight": torch.zeros(3)}, tmp_path / "bad.pt")
    with pytest.raises(WeightsError, match="no tensor matches"):
        MTFHarmonizer(**TINY, encoder_weights=tmp_path / "bad.pt")
    with pytest.raises(WeightsError, match="not found"):
        MTFHarmonizer(**TINY, encoder_weights=tmp_path / "missing.pt")
