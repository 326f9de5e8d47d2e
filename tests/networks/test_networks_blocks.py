"""Building blocks: residual block, conv-norm-act layer lists, CBAM."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ctharmonize.networks import CBAM, ResnetBlock, conv_norm_act, norm_layer

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _instance_norm(h: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    mean = h.mean(dim=(2, 3), keepdim=True)
    var = ((h - mean) ** 2).mean(dim=(2, 3), keepdim=True)  # biased variance, as InstanceNorm2d
    return (h - mean) / torch.sqrt(var + eps)


def test_resnet_block_matches_hand_computation():
    torch.manual_seed(0)
    block = ResnetBlock(4).double()
    convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
    assert [c.kernel_size for c in convs] == [(3, 3), (3, 3)]
    x = torch.randn(2, 4, 9, 7, dtype=torch.float64)
    h = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), convs[0].weight, convs[0].bias)
    h = torch.relu(_instance_norm(h))
    h = F.conv2d(F.pad(h, (1, 1, 1, 1), mode="reflect"), convs[1].weight, convs[1].bias)
    expected = x + _instance_norm(h)
    torch.testing.assert_close(block(x), expected)


def test_resnet_block_layer_layout_matches_cyclegan_reference():
    block = ResnetBlock(8, dropout=0.5)
    kinds = [type(m).__name__ for m in block.conv_block]
    assert kinds == [
        "ReflectionPad2d", "Conv2d", "InstanceNorm2d", "ReLU", "Dropout",
        "ReflectionPad2d", "Conv2d", "InstanceNorm2d",
    ]
    plain = ResnetBlock(8)
    assert set(plain.state_dict()) == {"conv_block.1.weight", "conv_block.1.bias", "conv_block.5.weight", "conv_block.5.bias"}


def test_resnet_block_zero_padding_and_no_norm():
    block = ResnetBlock(3, norm="none", padding="zeros")
    for conv in [m for m in block.modules() if isinstance(m, nn.Conv2d)]:
        nn.init.zeros_(conv.weight)
        nn.init.zeros_(conv.bias)
    x = torch.randn(1, 3, 5, 5)
    torch.testing.assert_close(block(x), x)  # zero residual branch → identity
    with pytest.raises(ValueError, match="padding"):
        ResnetBlock(3, padding="circular")


def test_conv_norm_act_lists_and_bias_rules():
    layers = conv_norm_act(2, 4, 4, stride=2, padding=1, norm="batch", act="leakyrelu")
    assert [type(m).__name__ for m in layers] == ["Conv2d", "BatchNorm2d", "LeakyReLU"]
    assert layers[0].bias is None and layers[2].negative_slope == pytest.approx(0.2)
    layers = conv_norm_act(2, 4, 7, norm="instance", reflect_pad=3)
    assert [type(m).__name__ for m in layers] == ["ReflectionPad2d", "Conv2d", "InstanceNorm2d", "ReLU"]
    assert layers[1].bias is not None
    assert isinstance(norm_layer("none", 3), nn.Identity)
    with pytest.raises(ValueError, match="unknown norm"):
        norm_layer("group", 3)


def test_cbam_matches_hand_computation_and_scripts():
    torch.manual_seed(1)
    cbam = CBAM(8, reduction=4, kernel_size=3).double()
    x = torch.randn(2, 8, 6, 5, dtype=torch.float64)
    w1, w2 = cbam.mlp[0].weight[:, :, 0, 0], cbam.mlp[2].weight[:, :, 0, 0]

    def mlp(v):  # v: (B, C)
        return torch.relu(v @ w1.T) @ w2.T

    avg, mx = x.mean(dim=(2, 3)), x.flatten(2).max(dim=2).values
    ch = torch.sigmoid(mlp(avg) + mlp(mx))[:, :, None, None]
    y = x * ch
    sp = torch.stack([y.mean(dim=1), y.max(dim=1).values], dim=1)
    expected = y * torch.sigmoid(F.conv2d(sp, cbam.spatial.weight, padding=1))
    torch.testing.assert_close(cbam(x), expected)
    torch.testing.assert_close(torch.jit.script(cbam)(x), expected)
