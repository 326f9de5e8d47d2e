"""lungmask backend: state-dict layout of the U-Net, weight lookup, inference with random weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from seg_phantoms import chest_phantom

from ctharmonize.errors import WeightsError
from ctharmonize.io import Volume
from ctharmonize.segmentation import segment_lungs
from ctharmonize.segmentation.lung_lungmask import LUNGMASK_WEIGHT_FILES, find_lungmask_weights
from ctharmonize.segmentation.lungmask_unet import LungmaskUNet


def _random_weights(path, n_classes=3, seed=0):
    torch.manual_seed(seed)
    net = LungmaskUNet(n_classes=n_classes)
    for m in net.modules():  # non-trivial batch-norm statistics so that loading is really tested
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    torch.save(net.state_dict(), path)
    return net.state_dict()


def test_state_dict_matches_lungmask_resunet_layout():
    sd = LungmaskUNet(n_classes=3).state_dict()
    # keys and shapes of lungmask's resunet.UNet(n_classes=3, padding=True, batch_norm=True,
    # up_mode='upsample'), written out by hand: conv/BN at block indices 0, 2, 3, 5
    expected = {
        "down_path.0.block.0.weight": (64, 1, 3, 3),
        "down_path.0.block.2.running_var": (64,),
        "down_path.0.block.3.weight": (64, 64, 3, 3),
        "down_path.0.block.5.bias": (64,),
        "down_path.0.residual_input_conv.weight": (64, 1, 1, 1),
        "down_path.0.residual_batchnorm.weight": (64,),
        "down_path.4.block.0.weight": (1024, 512, 3, 3),
        "down_path.4.block.3.weight": (1024, 1024, 3, 3),
        "up_path.0.up.1.weight": (512, 1024, 1, 1),
        "up_path.0.conv_block.block.0.weight": (512, 1024, 3, 3),
        "up_path.0.residual_input_conv.weight": (512, 1024, 1, 1),
        "up_path.3.conv_block.block.3.weight": (64, 64, 3, 3),
        "last.weight": (3, 64, 1, 1),
        "last.bias": (3,),
    }
    for key, shape in expected.items():
        assert tuple(sd[key].shape) == shape, key
    assert "down_path.0.block.5.num_batches_tracked" in sd
    assert not any(k.startswith("down_path.5") or k.startswith("up_path.4") for k in sd)
    # per block: residual conv (w, b) + residual BN (5) + two convs (2 x 2) + two BNs (2 x 5)
    assert len([k for k in sd if k.startswith("down_path.")]) == 5 * (2 + 5 + 2 * 2 + 2 * 5)
    assert list(sd)[-1] == "last.bias"  # lungmask reads n_classes from the last entry


def test_forward_shape_and_log_softmax():
    net = LungmaskUNet(n_classes=3).eval()
    with torch.inference_mode():
        out = net(torch.rand(2, 1, 32, 32))
    assert out.shape == (2, 3, 32, 32)
    assert torch.allclose(out.exp().sum(1), torch.ones(2, 32, 32), atol=1e-5)


def test_random_weights_run_end_to_end(tmp_path):
    weights = tmp_path / "unet_random.pth"
    _random_weights(weights)
    ph = chest_phantom(noise_sd=20.0, size=64, slices=3, spacing=(5.0, 5.0, 10.0), seed=5)
    before = ph.hu.copy()
    mask = segment_lungs(ph.hu, backend="lungmask", weights=weights, device="cpu", spacing=ph.spacing,
                         resolution=64)
    assert mask.shape == ph.hu.shape and mask.dtype == np.uint8
    assert set(np.unique(mask)) <= {0, 1, 2}
    assert np.array_equal(before, ph.hu)


def test_random_weights_full_resolution_one_slice(tmp_path):
    weights = tmp_path / "unet_random.pth"
    _random_weights(weights, seed=1)
    ph = chest_phantom(noise_sd=20.0, size=48, slices=1, spacing=(7.0, 7.0, 10.0), seed=6)
    vol = Volume(ph.hu, spacing=ph.spacing, direction=np.diag([-1.0, 1.0, 1.0]))
    mask = segment_lungs(vol, backend="lungmask", weights=str(weights), device="cpu")
    assert mask.shape == (1, 48, 48) and set(np.unique(mask)) <= {0, 1, 2}


def test_lobe_model_is_merged_to_lungs(tmp_path):
    weights = tmp_path / "lobes.pth"
    sd = _random_weights(weights, n_classes=6, seed=2)
    with torch.no_grad():  # make the network predict "right lower lobe" (5) everywhere
        sd["last.weight"].zero_()
        sd["last.bias"].copy_(torch.tensor([0.0, 0.0, 0.0, 0.0, 0.0, 10.0]))
    torch.save(sd, weights)
    hu = chest_phantom(size=32, slices=2, spacing=(10.0, 10.0, 10.0)).hu
    mask = segment_lungs(hu, backend="lungmask", weights=weights, model="LTRCLobes", resolution=32)
    assert set(np.unique(mask)) <= {0, 1}  # lobe 5 (right lower) -> right lung 1
    assert (mask == 1).sum() > 0.3 * mask.size  # postprocessing keeps the (single) component


def test_missing_weights_message(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(WeightsError) as err:
        segment_lungs(np.zeros((1, 32, 32)), backend="lungmask")
    msg = str(err.value)
    assert "\n" not in msg and LUNGMASK_WEIGHT_FILES["R231"] in msg and str(tmp_path / "hub") in msg
    with pytest.raises(WeightsError, match="not found"):
        segment_lungs(np.zeros((1, 32, 32)), backend="lungmask", weights=tmp_path / "none.pth")


def test_weights_found_in_hub_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    target = tmp_path / "checkpoints" / LUNGMASK_WEIGHT_FILES["R231CovidWeb"]
    target.parent.mkdir()
    _random_weights(target)
    assert find_lungmask_weights("R231CovidWeb") == target


def test_bad_weights_files(tmp_path):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="cannot read"):
        segment_lungs(np.zeros((1, 32, 32)), backend="lungmask", weights=junk)
    wrong = tmp_path / "wrong.pth"
    sd = LungmaskUNet(n_classes=3).state_dict()
    sd["last.weight"] = torch.zeros(3, 32, 1, 1)
    torch.save(sd, wrong)
    with pytest.raises(WeightsError, match="do not match"):
        segment_lungs(np.zeros((1, 32, 32)), backend="lungmask", weights=wrong)
