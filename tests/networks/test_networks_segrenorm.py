"""Segmentation-renormalized CycleGAN networks (paper 004): segmenter, semantic extractor, seg-renorm
generator and the 34×34 spectral-norm PatchGAN."""

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from ctharmonize.networks import (
    CHEST_CT_TISSUE_CLASSES,
    ResnetGenerator,
    SegRenorm,
    SegRenormConv,
    SegRenormGenerator,
    SegRenormResnetBlock,
    SemanticExtractor,
    SpectralPatchDiscriminator,
    TissueSegmenter,
    patch_receptive_field,
)

torch.set_num_threads(1)
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

# tiny sizes for CPU tests
TINY_G = {"num_classes": 4, "ngf": 4, "n_blocks": 2, "embed_dim": 8, "extractor_features": (4, 4, 4, 4)}
TINY_S = (4, 4, 8, 8, 16, 4)


def _n(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _seg(b: int, c: int, h: int, w: int, seed: int = 0, dtype=torch.float32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(torch.randn(b, c, h, w, generator=g, dtype=dtype) * 3, dim=1)


def _img(b: int, h: int, w: int, seed: int = 1, dtype=torch.float32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 1, h, w, generator=g, dtype=dtype) * 2 - 1


# --- seg-renorm block ---------------------------------------------------------------------------------


def test_seg_renorm_is_instance_norm_then_film():
    torch.manual_seed(0)
    block = SegRenorm(3, embed_dim=5).double()
    x = torch.randn(2, 3, 6, 7, dtype=torch.float64) * 4 + 2
    f = torch.randn(2, 5, dtype=torch.float64)
    # independent computation: per-sample, per-channel standardization (biased variance), then FiLM
    mean = x.mean(dim=(2, 3), keepdim=True)
    var = ((x - mean) ** 2).mean(dim=(2, 3), keepdim=True)
    x_hat = (x - mean) / torch.sqrt(var + 1e-5)
    gamma = f @ block.gamma.weight.T + block.gamma.bias
    beta = f @ block.beta.weight.T + block.beta.bias
    expected = (1 + gamma[:, :, None, None]) * x_hat + beta[:, :, None, None]
    out = block(x, f)
    torch.testing.assert_close(out, expected)
    # each output channel has mean β and standard deviation |1 + γ|
    torch.testing.assert_close(out.mean(dim=(2, 3)), beta)
    std = out.std(dim=(2, 3), unbiased=False)
    torch.testing.assert_close(std, (1 + gamma).abs() * torch.sqrt(var / (var + 1e-5))[:, :, 0, 0])
    # the norm itself has no parameters: all parameters belong to the two FiLM layers
    assert not list(block.norm.parameters())
    assert _n(block) == 2 * (5 * 3 + 3)
    torch.testing.assert_close(torch.jit.script(block)(x, f), out)


def test_seg_renorm_conv_and_resblock_shapes():
    torch.manual_seed(0)
    f = torch.randn(2, 8)
    x = torch.randn(2, 4, 16, 16)
    assert SegRenormConv(4, 6, 3, stride=2, padding=1, embed_dim=8)(x, f).shape == (2, 6, 8, 8)
    assert SegRenormConv(4, 2, transposed=True, embed_dim=8)(x, f).shape == (2, 2, 32, 32)
    block = SegRenormResnetBlock(4, embed_dim=8)
    out = block(x, f)
    assert out.shape == x.shape
    # residual: x + conv2(conv1(x, f), f)
    torch.testing.assert_close(out, x + block.conv2(block.conv1(x, f), f))
    torch.testing.assert_close(torch.jit.script(block)(x, f), out)
    with pytest.raises(ValueError, match="padding"):
        SegRenormResnetBlock(4, padding="circular")


# --- semantic extractor -------------------------------------------------------------------------------


def test_semantic_extractor_gives_one_vector_per_slice():
    ext = SemanticExtractor(num_classes=7, embed_dim=32, features=(4, 8, 8, 16)).eval()
    for size in (16, 32, 64):  # adaptive pool: any size ≥ 2^4
        assert ext(_seg(3, 7, size, size)).shape == (3, 32)
    assert ext.min_size == 16
    seg = _seg(2, 7, 32, 32)
    torch.testing.assert_close(torch.jit.script(ext)(seg), ext(seg))
    # dropout only in training mode
    ext.train()
    torch.manual_seed(0)
    a = ext(seg)
    torch.manual_seed(1)
    assert not torch.allclose(a, ext(seg))


def test_semantic_extractor_parameter_count_by_hand():
    def count(c, feats, pool, e):
        convs = sum((cin * 9 + 1) * cout for cin, cout in zip((c, *feats[:-1]), feats, strict=True))
        return convs + (feats[-1] * pool * pool + 1) * e + (e + 1) * e

    assert _n(SemanticExtractor()) == count(7, (64, 128, 256, 512), 4, 512) == 6_010_752
    assert _n(SemanticExtractor(7, 64, (16, 32, 64, 128))) == count(7, (16, 32, 64, 128), 4, 64) == 233_312


# --- generator ----------------------------------------------------------------------------------------


def test_generator_shapes_and_range():
    gen = SegRenormGenerator(**TINY_G).eval()
    x = _img(2, 32, 48)
    out = gen(x, _seg(2, 4, 32, 48))
    assert out.shape == (2, 1, 32, 48)
    assert out.abs().max() <= 1
    assert gen.spatial_multiple == 4
    assert gen(x, _seg(2, 4, 16, 16)).shape == (2, 1, 32, 48)  # the condition may have another size
    with pytest.raises(ValueError, match="multiples of spatial_multiple = 4"):
        gen(_img(1, 30, 32), _seg(1, 4, 32, 32))


def test_generator_has_only_parameter_free_instance_norms_each_followed_by_film():
    gen = SegRenormGenerator(ngf=8, n_blocks=9, embed_dim=16, extractor_features=(4, 4, 4, 4))
    norm_types = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm, nn.LocalResponseNorm)
    norms = [m for m in gen.modules() if isinstance(m, norm_types)]
    renorms = [m for m in gen.modules() if isinstance(m, SegRenorm)]
    assert len(renorms) == 2 * 9 + 5  # 7×7 head, 2 down, 2 per residual block, 2 up
    assert len(norms) == len(renorms)
    assert all(type(m) is nn.InstanceNorm2d and not m.affine and not m.track_running_stats for m in norms)
    assert {id(m) for m in norms} == {id(r.norm) for r in renorms}  # every norm is the IN of a SegRenorm
    assert all(not list(m.parameters()) and not list(m.buffers()) for m in norms)
    # every residual block is segmentation-renormalized, and the layer order is conv → IN → FiLM → act
    assert len(gen.blocks) == 9 and all(isinstance(b, SegRenormResnetBlock) for b in gen.blocks)
    for layer in [*gen.encoder, *gen.decoder] + [c for b in gen.blocks for c in (b.conv1, b.conv2)]:
        assert isinstance(layer, SegRenormConv)
        assert isinstance(layer.conv[-1], (nn.Conv2d, nn.ConvTranspose2d))
    # FiLM is actually applied after each norm: hook the norms, compare with the SegRenorm outputs
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    # (clone: the ReLU after each SegRenorm works in place)
    handles = [r.norm.register_forward_hook(lambda m, i, o: seen.append(("norm", o.clone()))) for r in renorms]
    handles += [r.register_forward_hook(lambda m, i, o: seen.append(("renorm", (m, i[1], o.clone()))))
                for r in renorms]
    gen.eval()(_img(1, 32, 32), _seg(1, 7, 32, 32))
    for h in handles:
        h.remove()
    assert [k for k, _ in seen] == ["norm", "renorm"] * len(renorms)
    for (_, normed), (_, (m, f, out)) in zip(seen[::2], seen[1::2], strict=True):
        film = (1 + m.gamma(f))[:, :, None, None] * normed + m.beta(f)[:, :, None, None]
        torch.testing.assert_close(out, film)


def test_generator_embedding_is_shared_by_all_layers():
    gen = SegRenormGenerator(**TINY_G).eval()
    seg = _seg(2, 4, 32, 32)
    embeddings = []
    handles = [m.register_forward_hook(lambda m, i, o: embeddings.append(i[1]))
               for m in gen.modules() if isinstance(m, SegRenorm)]
    x = _img(2, 32, 32)
    out = gen(x, seg)
    for h in handles:
        h.remove()
    want = gen.extractor(seg)
    assert len(embeddings) == 2 * 2 + 5
    assert all(e.shape == (2, 8) and torch.equal(e, want) for e in embeddings)
    torch.testing.assert_close(gen.translate(x, gen.embed(seg)), out)


@pytest.mark.parametrize("init", ["normal", "pytorch"])
def test_generator_output_depends_on_the_segmentation(init):
    torch.manual_seed(0)
    # the paper's extractor and embed_dim 512: under N(0, 0.02) every layer of the conditioning path shrinks
    # its input by ~0.02·sqrt(fan_in), so tiny widths would condition only at the 1e-6 level at init
    gen = SegRenormGenerator(num_classes=4, ngf=8, n_blocks=2, init=init).double().eval()
    x = _img(1, 32, 32, dtype=torch.float64)
    seg_a = _seg(1, 4, 32, 32, seed=0, dtype=torch.float64)
    seg_b = _seg(1, 4, 32, 32, seed=5, dtype=torch.float64)
    out_a, out_b = gen(x, seg_a), gen(x, seg_b)
    assert (out_a - out_b).abs().max() > 1e-4
    torch.testing.assert_close(gen(x, seg_a), out_a)  # deterministic in eval mode
    # and gradients reach the segmentation (the segmenter is trained through G)
    seg = seg_a.clone().requires_grad_(True)
    gen(x, seg).sum().backward()
    assert seg.grad is not None and seg.grad.abs().sum() > 0


def test_generator_scripts():
    gen = SegRenormGenerator(**TINY_G).eval()
    x, seg = _img(2, 32, 32), _seg(2, 4, 32, 32)
    scripted = torch.jit.script(gen)
    torch.testing.assert_close(scripted(x, seg), gen(x, seg))
    torch.testing.assert_close(scripted.translate(x, scripted.embed(seg)), gen(x, seg))
    assert scripted.spatial_multiple == 4


def test_generator_parameter_count_by_hand():
    def count(ngf, n_blocks, e, c, feats, pool):
        zhu = _n(ResnetGenerator(1, 1, ngf, n_blocks))
        widths = [ngf, 2 * ngf, 4 * ngf] + [4 * ngf] * (2 * n_blocks) + [2 * ngf, ngf]
        film = sum(2 * (e + 1) * w for w in widths)
        return zhu + film + _n(SemanticExtractor(c, e, feats, pool))

    paper = SegRenormGenerator()
    assert _n(paper) == count(64, 9, 512, 7, (64, 128, 256, 512), 4) == 22_760_833
    assert _n(ResnetGenerator()) == 11_365_633
    demo = SegRenormGenerator(ngf=16, n_blocks=3, embed_dim=64, extractor_features=(16, 32, 64, 128))
    assert _n(demo) == count(16, 3, 64, 7, (16, 32, 64, 128), 4) == 573_409


def test_generator_init_choices():
    torch.manual_seed(0)
    gen = SegRenormGenerator(ngf=8, n_blocks=1, embed_dim=32, extractor_features=(8, 8, 8, 8))
    for m in gen.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)) and m.weight.numel() > 500:
            assert abs(float(m.weight.detach().std()) - 0.02) < 0.005
            assert not m.bias.any()
    default = SegRenormGenerator(ngf=8, n_blocks=1, embed_dim=32, extractor_features=(8, 8, 8, 8), init="pytorch")
    assert default.extractor.body[0].bias.abs().sum() > 0
    with pytest.raises(ValueError, match="init"):
        SegRenormGenerator(init="xavier")


# --- segmenter ----------------------------------------------------------------------------------------


def test_tissue_segmenter_outputs_class_logits():
    assert CHEST_CT_TISSUE_CLASSES == (
        "background", "lungs", "airway", "skeletal_muscle", "fat", "bone", "mediastinum")
    seg = TissueSegmenter(features=TINY_S).eval()
    assert seg.num_classes == 7 and seg.spatial_multiple == 16
    x = _img(2, 32, 48)
    logits = seg(x)
    assert logits.shape == (2, 7, 32, 48)
    probs = seg.probabilities(x)
    torch.testing.assert_close(probs, torch.softmax(logits, 1))
    torch.testing.assert_close(probs.sum(1), torch.ones(2, 32, 48))
    scripted = torch.jit.script(seg)
    torch.testing.assert_close(scripted(x), logits)
    torch.testing.assert_close(scripted.probabilities(x), probs)
    assert TissueSegmenter(num_classes=4, features=TINY_S)(x).shape == (2, 4, 32, 48)
    with pytest.raises(ValueError, match="num_classes"):
        TissueSegmenter(num_classes=1)


def test_segmenter_feeds_the_generator():
    seg_net = TissueSegmenter(num_classes=4, features=TINY_S)
    gen = SegRenormGenerator(**TINY_G)
    x = _img(2, 32, 32)
    out = gen(x, seg_net.probabilities(x))
    assert out.shape == x.shape
    out.mean().backward()
    assert all(p.grad is not None for p in seg_net.parameters())  # joint training: G's loss reaches S


def test_tissue_segmenter_parameter_counts():
    assert _n(TissueSegmenter()) == 1_978_631
    assert _n(TissueSegmenter(features=(64, 128, 256, 512, 1024, 64))) == 31_112_455
    assert _n(TissueSegmenter(features=(8, 8, 16, 32, 64, 8))) == 124_679


# --- discriminator ------------------------------------------------------------------------------------


def _measured_receptive_field(disc: nn.Module, size: int = 96) -> tuple[int, int]:
    """Extent (rows, cols) of input pixels with a nonzero gradient for one central output pixel."""
    x = torch.randn(1, 1, size, size, dtype=torch.float64, requires_grad=True)
    out = disc(x)
    cy, cx = out.shape[2] // 2, out.shape[3] // 2
    out[0, 0, cy, cx].backward()
    nz = torch.nonzero(x.grad[0, 0])
    return int(nz[:, 0].max() - nz[:, 0].min() + 1), int(nz[:, 1].max() - nz[:, 1].min() + 1)


def test_spectral_patch_discriminator_receptive_field_is_34():
    torch.manual_seed(0)
    disc = SpectralPatchDiscriminator(ndf=4).double()
    assert _measured_receptive_field(disc) == (34, 34)
    assert disc.receptive_field == patch_receptive_field(2) == 34
    torch.manual_seed(0)
    assert _measured_receptive_field(SpectralPatchDiscriminator(ndf=4, n_layers=3).double(), 160) == (70, 70)


def test_spectral_patch_discriminator_layout_and_output_shape():
    disc = SpectralPatchDiscriminator(ndf=8)
    convs = [m for m in disc if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size[0], c.stride[0], c.padding[0]) for c in convs] == [
        (1, 8, 4, 2, 1), (8, 16, 4, 2, 1), (16, 32, 4, 1, 1), (32, 1, 4, 1, 1)]
    kinds = ["conv" if isinstance(m, nn.Conv2d) else type(m).__name__ for m in disc]
    assert kinds == ["conv", "LeakyReLU"] * 3 + ["conv"]  # no norm layers
    assert all(m.negative_slope == pytest.approx(0.2) for m in disc if isinstance(m, nn.LeakyReLU))
    assert disc(torch.zeros(2, 1, 64, 64)).shape == (2, 1, 14, 14)
    assert SpectralPatchDiscriminator()(torch.zeros(1, 1, 256, 256)).shape == (1, 1, 62, 62)
    assert _n(SpectralPatchDiscriminator()) == 660_929
    assert _n(SpectralPatchDiscriminator(ndf=16)) == 42_353


def test_spectral_norm_on_every_conv():
    torch.manual_seed(0)
    disc = SpectralPatchDiscriminator(ndf=8).train()
    convs = [m for m in disc.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 4
    assert all(parametrize.is_parametrized(c, "weight") for c in convs)
    assert all(type(c.parametrizations.weight[0]).__name__ == "_SpectralNorm" for c in convs)
    # the raw weights are far from unit norm; the effective ones have largest singular value ≈ 1
    raw = [torch.linalg.matrix_norm(c.parametrizations.weight.original.flatten(1), ord=2) for c in convs]
    assert all(float(s) < 0.5 for s in raw)  # N(0, 0.02) init
    x = torch.randn(2, 1, 32, 32)
    for _ in range(60):  # one power iteration per training-mode forward (15 more at construction)
        disc(x)
    disc.eval()  # no power iteration: weight = original / (uᵀ W v) with the stored u, v
    with torch.no_grad():
        for c in convs:
            sn = c.parametrizations.weight[0]
            w = c.parametrizations.weight.original
            torch.testing.assert_close(c.weight, w / torch.dot(sn._u, w.flatten(1) @ sn._v))
        sigmas = [float(torch.linalg.matrix_norm(c.weight.flatten(1), ord=2)) for c in convs]
    assert sigmas == pytest.approx([1.0] * 4, abs=2e-3)


def test_spectral_patch_discriminator_exports_without_parametrization():
    torch.manual_seed(0)
    disc = SpectralPatchDiscriminator(ndf=4).eval()
    x = torch.randn(1, 1, 32, 32)
    want = disc(x)
    for conv in disc:
        if isinstance(conv, nn.Conv2d):
            parametrize.remove_parametrizations(conv, "weight", leave_parametrized=True)
    torch.testing.assert_close(torch.jit.script(disc)(x), want)
    with pytest.raises(ValueError, match="init"):
        SpectralPatchDiscriminator(init="xavier")
