"""CT kernel feature network: VGGFeatures-like interface, shipped weights, safe loading."""

import numpy as np
import pytest
import torch

from ctharmonize.engines.kernel_classifier_training import CROP_CENTER_LABELS
from ctharmonize.errors import WeightsError
from ctharmonize.losses import GramStyleLoss
from ctharmonize.networks import CT_KERNEL_DOMAINS, CTKernelFeatures, load_ct_kernel_features
from ctharmonize.networks.nets.ct_kernel_features import default_weights_path
from ctharmonize.simulation.phantom import generate_phantom
from ctharmonize.simulation.scan import simulate_scan

torch.set_num_threads(1)
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_feature_list_and_logits_shapes():
    torch.manual_seed(0)
    net = CTKernelFeatures().eval()
    x = torch.rand(2, 1, 64, 48) * 2 - 1
    feats = net(x)
    assert len(feats) == 4
    assert [tuple(f.shape) for f in feats] == [(2, 16, 64, 48), (2, 32, 32, 24), (2, 64, 16, 12), (2, 128, 8, 6)]
    assert net.logits(x).shape == (2, len(CT_KERNEL_DOMAINS)) and net.domains == list(CT_KERNEL_DOMAINS)
    assert torch.allclose(net.logits_from_features(feats), net.logits(x))
    small = CTKernelFeatures(domains=["a", "b"], widths=[4, 8])
    assert [f.shape[1] for f in small(x)] == [4, 8] and small.logits(x).shape == (2, 2)


def test_torchscript_and_gram_loss_gradient_reaches_input():
    torch.manual_seed(0)
    net = CTKernelFeatures(frozen=True)
    assert not any(p.requires_grad for p in net.parameters()) and not net.training
    scripted = torch.jit.script(net)
    x = torch.rand(1, 1, 32, 32) * 2 - 1
    assert all(torch.allclose(a, b) for a, b in zip(scripted(x), net(x), strict=True))
    assert torch.allclose(scripted.logits(x), net.logits(x))
    fake = x.clone().requires_grad_(True)
    loss = GramStyleLoss()(net(fake), net(torch.rand(1, 1, 32, 32) * 2 - 1))
    loss.backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0


def _body_crops(image: np.ndarray, labels: np.ndarray, size: int = 64, step: int = 32) -> torch.Tensor:
    """``size``² crops of a HU slice centred on lung/soft tissue with all four corners in the body, in [-1, 1]."""
    h, crops = size // 2, []
    for y in range(h, image.shape[0] - h + 1, step):
        for x in range(h, image.shape[1] - h + 1, step):
            corners = labels[[y - h, y - h, y + h - 1, y + h - 1], [x - h, x + h - 1, x - h, x + h - 1]]
            if labels[y, x] in CROP_CENTER_LABELS and (corners != 0).all():
                crops.append(image[y - h:y + h, x - h:x + h])
    assert len(crops) > 10, "the phantom has no body region large enough"
    hu = np.clip(np.stack(crops), -1024, 3072)
    return torch.from_numpy(((hu + 1024) / 2048 - 1).astype(np.float32))[:, None]


@pytest.mark.parametrize("vendor, soft, sharp", [("siemens", "siemens_b30f", "siemens_b50f"),
                                                  ("ge", "ge_standard", "ge_bone")])
def test_shipped_weights_tell_a_sharp_from_a_soft_reconstruction(vendor, soft, sharp):
    net = CTKernelFeatures.pretrained()
    assert not net.training and net.domains == list(CT_KERNEL_DOMAINS)
    assert default_weights_path().stat().st_size < 2_000_000
    # one 512² slice at the clinical data's pixel spacing (352 mm FOV: 0.69 mm) and processing
    phantom = generate_phantom(seed=11, size=512, slices=1, fov_mm=352.0, slice_thickness=1.0)
    scans = simulate_scan(phantom, vendor=vendor, seed=11, ir_strength=1.0, edge_strength=1.0)
    sharp_classes = [net.domains.index(k) for k in ("siemens_b50f", "ge_bone")]
    pair = [net.domains.index(soft), net.domains.index(sharp)]
    p_sharp = {}
    with torch.no_grad():
        for kernel in (soft, sharp):
            probs = net.logits(_body_crops(scans[kernel].array[0], phantom.labels[0])).softmax(1).mean(0)
            p_sharp[kernel] = float(probs[sharp_classes].sum())
            assert pair[int(probs[pair].argmax())] == net.domains.index(kernel), (kernel, probs)  # within the pair
    assert p_sharp[sharp] > 0.9 and p_sharp[soft] < 0.1, p_sharp  # soft vs sharp over all four classes


def test_user_weights_path_loads_a_plain_state_dict(tmp_path):
    torch.manual_seed(1)
    state = CTKernelFeatures().state_dict()
    path = tmp_path / "mine.pt"
    torch.save(state, path)
    net = load_ct_kernel_features(path)
    assert all(torch.equal(net.state_dict()[k], v) for k, v in state.items())
    assert not any(p.requires_grad for p in net.parameters())
    wrapped = tmp_path / "wrapped.pt"
    small = CTKernelFeatures(domains=["soft", "sharp"], widths=[4, 8])
    torch.save({"state_dict": small.state_dict(), "domains": ["soft", "sharp"], "widths": [4, 8]}, wrapped)
    loaded = CTKernelFeatures.pretrained(wrapped)
    assert loaded.domains == ["soft", "sharp"] and loaded.widths == [4, 8]


def test_missing_garbage_and_mismatched_files_are_one_line_weights_errors(tmp_path):
    missing = tmp_path / "nope.pt"
    with pytest.raises(WeightsError) as err:
        CTKernelFeatures.pretrained(missing)
    assert str(missing) in str(err.value) and "\n" not in str(err.value)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(WeightsError) as err:
        load_ct_kernel_features(garbage)
    assert str(garbage) in str(err.value) and "\n" not in str(err.value)
    other = tmp_path / "other.pt"
    torch.save(CTKernelFeatures(widths=[8, 16, 32, 64]).state_dict(), other)  # plain dict: default widths expected
    with pytest.raises(WeightsError, match="another shape") as err:
        load_ct_kernel_features(other)
    assert "\n" not in str(err.value)
