"""FID in the shipped CT feature network's space and with a user's TorchScript Inception-style network."""

import math

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter
from torch import nn

from ctharmonize.errors import WeightsError
from ctharmonize.metrics import (
    InceptionFeatures,
    feature_embeddings,
    fid,
    fid_both_directions,
    frechet_distance,
    load_inception_features,
)
from ctharmonize.networks import load_ct_kernel_features
from ctharmonize.transforms.scale_hu import hu_to_unit


def slices(seed: int, sharp: bool = False, n: int = 8, size: int = 64) -> np.ndarray:
    """(n, 1, size, size) HU: soft tissue (40 HU) with a lung disc (-850 HU), smooth correlated noise
    (SD 20 HU, soft kernel) or white noise (SD 150 HU, sharp kernel)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    base = np.where((yy - size / 2) ** 2 + (xx - size / 3) ** 2 < (size / 4) ** 2, -850.0, 40.0)
    noise = rng.normal(size=(n, 1, size, size))
    if sharp:
        noise *= 150.0
    else:
        noise = gaussian_filter(noise, (0, 0, 2, 2))
        noise *= 20.0 / noise.std()
    return (base + noise).astype(np.float32)


@pytest.fixture(scope="module")
def net():
    return load_ct_kernel_features()


@pytest.fixture(scope="module")
def smooth():
    return slices(0), slices(1)


@pytest.fixture(scope="module")
def sharp():
    return slices(2, sharp=True), slices(3, sharp=True)


def test_embeddings_are_pooled_last_stage(net, smooth):
    hu = smooth[0]
    emb = feature_embeddings(hu, net, intensity="hu")
    assert emb.shape == (8, 128) and emb.dtype == np.float64
    with torch.no_grad():
        maps = net(hu_to_unit(torch.from_numpy(hu)))
    assert np.allclose(emb, maps[-1].mean(dim=(2, 3)).numpy(), atol=1e-6)
    two = feature_embeddings(hu, net, stages=(2, 3), intensity="hu")
    assert two.shape == (8, 64 + 128)
    assert np.allclose(two[:, :64], maps[2].mean(dim=(2, 3)).numpy(), atol=1e-6)
    assert np.allclose(two[:, 64:], emb)
    # [-1, 1] input gives the same embeddings as HU input
    assert np.allclose(feature_embeddings(hu_to_unit(hu), net), emb, atol=1e-6)


def test_embeddings_independent_of_batching_and_training_mode(smooth):
    hu = smooth[0]
    net = load_ct_kernel_features()
    ref = feature_embeddings(hu, net, batch_size=8, intensity="hu")
    assert np.allclose(feature_embeddings(hu, net, batch_size=3, intensity="hu"), ref, atol=1e-6)
    assert np.allclose(feature_embeddings([hu[:5], torch.from_numpy(hu[5:])], net, intensity="hu"), ref, atol=1e-6)
    net.train()  # BatchNorm in training mode would use the batch's statistics
    assert np.allclose(feature_embeddings(hu, net, batch_size=3, intensity="hu"), ref, atol=1e-6)
    assert net.training  # restored


def test_fid_in_ct_feature_space(net, smooth, sharp):
    a, b = smooth
    assert fid(a, a, intensity="hu") == pytest.approx(0.0, abs=1e-6)  # network=None: the shipped weights
    same_kernel = fid(a, b, net, intensity="hu")
    other_kernel = fid(a, sharp[0], net, intensity="hu")
    assert other_kernel > 10 * same_kernel
    assert fid(a, sharp[0], intensity="hu") == pytest.approx(other_kernel, rel=1e-9)
    emb_a, emb_s = feature_embeddings(a, net, intensity="hu"), feature_embeddings(sharp[0], net, intensity="hu")
    assert other_kernel == pytest.approx(frechet_distance(emb_a, emb_s), rel=1e-9)


def test_fid_both_directions_table_one_form(net, smooth, sharp):
    a, b = smooth[0], sharp[0]
    # a perfect harmonizer: A → B gives other B-like slices, B → A other A-like slices
    out = fid_both_directions(a, b, a_to_b=sharp[1], b_to_a=smooth[1], network=net, intensity="hu")
    assert out["before"] == pytest.approx(fid(a, b, net, intensity="hu"), rel=1e-9)
    assert out["a_to_b"] == pytest.approx(fid(b, sharp[1], net, intensity="hu"), rel=1e-9)
    assert out["b_to_a"] == pytest.approx(fid(a, smooth[1], net, intensity="hu"), rel=1e-9)
    assert out["after"] == pytest.approx(0.5 * (out["a_to_b"] + out["b_to_a"]))
    assert out["after"] < 0.2 * out["before"]
    # no harmonization at all: "after" equals "before"
    none = fid_both_directions(a, b, a_to_b=a, b_to_a=b, network=net, intensity="hu")
    assert none["after"] == pytest.approx(none["before"], rel=1e-9)
    only_before = fid_both_directions(a, b, network=net, intensity="hu")
    assert math.isnan(only_before["after"]) and math.isnan(only_before["a_to_b"])


def test_intensity_convention_is_enforced(net, smooth):
    hu = smooth[0]
    with pytest.raises(ValueError, match="intensity='hu'"):
        feature_embeddings(hu, net)  # HU given where [-1, 1] is the default
    with pytest.raises(ValueError, match="intensity='unit'"):
        feature_embeddings(hu_to_unit(hu), net, intensity="hu")
    with pytest.raises(ValueError, match="unknown intensity"):
        feature_embeddings(hu, net, intensity="HU")
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        feature_embeddings(hu[:, 0], net, intensity="hu")
    with pytest.raises(ValueError, match="NaN"):
        feature_embeddings(np.full((2, 1, 8, 8), np.nan, np.float32), net)
    # a generator's small overshoot past [-1, 1] is clipped, as when the slice is written as HU
    unit = hu_to_unit(hu)
    over, ref = unit.copy(), unit.copy()
    over[:, :, 0, 0], ref[:, :, 0, 0] = -1.3, -1.0
    over[:, :, 5, 5], ref[:, :, 5, 5] = 1.2, 1.0
    assert np.allclose(feature_embeddings(over, net), feature_embeddings(ref, net), atol=1e-6)


class TinyInception(nn.Module):
    """A stand-in for InceptionV3 pool features: (B, 3, H, W) → (B, 6)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 5, stride=4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x)).mean(dim=(2, 3))


def inception_by_hand(module: nn.Module, unit: np.ndarray) -> np.ndarray:
    x = ((torch.from_numpy(unit) + 1) / 2).repeat(1, 3, 1, 1)
    x = nn.functional.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False, antialias=True)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        return module((x - mean) / std).double().numpy()


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("fmt", ["torchscript", "export"])
def test_inception_network_from_a_file(tmp_path, smooth, sharp, fmt):
    torch.manual_seed(0)
    module = TinyInception().eval()
    path = tmp_path / f"inception_{fmt}.pt"
    if fmt == "torchscript":
        torch.jit.script(module).save(str(path))
    else:  # the batch dimension dynamic, the spatial size fixed at the adapter's 299
        example = torch.zeros(2, 3, 299, 299)
        program = torch.export.export(module, (example,), dynamic_shapes=({0: torch.export.Dim("batch")},))
        torch.export.save(program, str(path))
    loaded = load_inception_features(path)
    assert isinstance(loaded, InceptionFeatures)
    assert not any(p.requires_grad for p in loaded.parameters())
    a, b = hu_to_unit(smooth[0]), hu_to_unit(sharp[0])
    emb = feature_embeddings(a, loaded, batch_size=3)  # a last batch of 2
    assert emb.shape == (8, 6)
    assert np.allclose(emb, inception_by_hand(module, a), atol=1e-5)
    expected = frechet_distance(inception_by_hand(module, a), inception_by_hand(module, b))
    assert fid(a, b, network=str(path)) == pytest.approx(expected, rel=1e-4)  # a path as the network
    assert fid(a, a, network=path) == pytest.approx(0.0, abs=1e-9)


def test_inception_adapter_input_and_output_forms():
    seen = []

    class Probe(nn.Module):
        def forward(self, x):
            seen.append(x.clone())
            return x[:, :2, :4, :4] * 0 + x.mean(dim=(1, 2, 3)).view(-1, 1, 1, 1)  # a (B, 2, 4, 4) map

    x = torch.linspace(-1, 1, 2 * 32 * 32).view(2, 1, 32, 32)
    out = InceptionFeatures(Probe(), image_size=None, normalization="zero_one")(x)
    assert out.shape == (2, 2)  # the map output is pooled
    assert seen[-1].shape == (2, 3, 32, 32)
    assert all(torch.allclose(seen[-1][:, c:c + 1], (x + 1) / 2) for c in range(3))  # channel repeated, [0, 1]
    InceptionFeatures(Probe(), image_size=None, normalization="minus_one_one")(x)
    assert torch.allclose(seen[-1][:, 2:], x)
    InceptionFeatures(Probe())(x)  # defaults: 299², ImageNet normalisation
    resized = nn.functional.interpolate((x + 1) / 2, size=(299, 299), mode="bilinear", antialias=True)
    assert seen[-1].shape == (2, 3, 299, 299)
    for c, (m, s) in enumerate(zip((0.485, 0.456, 0.406), (0.229, 0.224, 0.225), strict=True)):
        assert torch.allclose(seen[-1][:, c:c + 1], (resized - m) / s, atol=1e-5)
    with pytest.raises(ValueError):
        InceptionFeatures(Probe(), normalization="caffe")


def test_inception_file_errors(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        load_inception_features(tmp_path / "missing.pt")
    state = tmp_path / "state.pt"
    torch.save(TinyInception().state_dict(), state)  # weights without an architecture
    with pytest.raises(WeightsError, match="architecture"):
        load_inception_features(state)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a model")
    with pytest.raises(WeightsError, match="garbage.pt"):
        fid(np.zeros((2, 1, 8, 8), np.float32), np.zeros((2, 1, 8, 8), np.float32), network=garbage)
