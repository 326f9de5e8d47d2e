"""VGG feature extractor: torchvision-compatible weight loading without torchvision."""

import pytest
import torch
import torch.nn.functional as F

from ctharmonize.errors import WeightsError
from ctharmonize.networks import VGGFeatures, vgg_layer_names

torch.set_num_threads(1)
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_layer_names_follow_torchvision_indices():
    v19, v16 = vgg_layer_names("vgg19"), vgg_layer_names("vgg16")
    assert len(v19) == 37 and len(v16) == 31  # len(torchvision vgg19().features) / vgg16
    assert v19.index("relu1_1") == 1 and v19.index("relu2_1") == 6 and v19.index("relu3_1") == 11
    assert v19.index("relu4_1") == 20 and v19.index("relu5_1") == 29 and v19.index("relu5_4") == 35
    assert v16.index("relu4_3") == 22 and v16.index("pool5") == 30


def _random_vgg19_state(upto: int) -> dict[str, torch.Tensor]:
    """torchvision-style keys for the convs among features.0..upto, plus a classifier key to ignore."""
    torch.manual_seed(3)
    widths = [(3, 64), (64, 64), (64, 128)]
    state = {}
    for idx, (cin, cout) in zip([0, 2, 5], widths, strict=True):
        if idx <= upto:
            state[f"features.{idx}.weight"] = torch.randn(cout, cin, 3, 3) * 0.1
            state[f"features.{idx}.bias"] = torch.randn(cout) * 0.1
    state["classifier.0.weight"] = torch.zeros(2, 2)
    return state


def test_loads_weights_and_matches_hand_computation(tmp_path):
    state = _random_vgg19_state(upto=6)
    path = tmp_path / "vgg19.pth"
    torch.save(state, path)
    vgg = VGGFeatures(path, arch="vgg19", layers=["relu2_1", "relu1_1"])
    assert vgg.layer_names == ["relu1_1", "relu2_1"] and len(vgg.features) == 7  # built only up to relu2_1
    assert all(not p.requires_grad for p in vgg.parameters())
    x = (torch.rand(2, 1, 16, 16) * 2 - 1).requires_grad_(True)
    feats = vgg(x)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    rgb = ((x.detach() + 1) / 2).repeat(1, 3, 1, 1)
    h = (rgb - mean) / std
    r11 = torch.relu(F.conv2d(h, state["features.0.weight"], state["features.0.bias"], padding=1))
    h = torch.relu(F.conv2d(r11, state["features.2.weight"], state["features.2.bias"], padding=1))
    r21 = torch.relu(F.conv2d(F.max_pool2d(h, 2), state["features.5.weight"], state["features.5.bias"], padding=1))
    torch.testing.assert_close(feats[0], r11)
    torch.testing.assert_close(feats[1], r21)
    feats[1].sum().backward()  # gradients reach the image, not the frozen weights
    assert x.grad is not None and x.grad.abs().sum() > 0
    torch.testing.assert_close(torch.jit.script(vgg)(x.detach())[1], r21)


def test_state_dict_wrapper_and_module_prefix(tmp_path):
    state = _random_vgg19_state(upto=2)
    path = tmp_path / "wrapped.pth"
    torch.save({"state_dict": {"module." + k: v for k, v in state.items()}}, path)
    vgg = VGGFeatures(path, layers=["relu1_2"])
    torch.testing.assert_close(vgg.features[2].weight, state["features.2.weight"])


def test_missing_unreadable_and_mismatched_weights(tmp_path):
    missing = tmp_path / "none.pth"
    with pytest.raises(WeightsError, match="not found") as err:
        VGGFeatures(missing)
    assert str(err.value).startswith(str(missing) + ":") and "\n" not in str(err.value)
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="cannot read weights"):
        VGGFeatures(corrupt)
    partial = tmp_path / "partial.pth"
    torch.save(_random_vgg19_state(upto=2), partial)
    with pytest.raises(WeightsError, match="missing features.5.weight"):
        VGGFeatures(partial, layers=["relu2_1"])
    wrong = tmp_path / "wrong.pth"
    state = _random_vgg19_state(upto=2)
    state["features.0.weight"] = torch.zeros(64, 1, 3, 3)
    torch.save(state, wrong)
    with pytest.raises(WeightsError, match=r"features.0.weight has shape \(64, 1, 3, 3\)"):
        VGGFeatures(wrong, layers=["relu1_1"])
    with pytest.raises(ValueError, match="unknown vgg19 layer"):
        VGGFeatures(None, layers=["relu9_9"])
