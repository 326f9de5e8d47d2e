import pytest
import torch

from ctharmonize.networks import CTKernelFeatures, HUWindowMap


def test_the_network_sees_the_same_hu_in_its_own_window():
    seen = []

    class Probe(torch.nn.Module):
        def forward(self, x):
            seen.append(x)
            return x.sum()

    hu = torch.tensor([[[[-1000.0, -500.0, 0.0, 900.0]]]])
    x = (hu + 1000.0) / 1900.0 * 2 - 1  # CVS-CT's window [-1000, 900] -> [-1, 1]
    HUWindowMap(Probe(), [-1000, 900], [-1024, 3072])(x)
    want = (hu + 1024.0) / 4096.0 * 2 - 1  # the same HU in [-1024, 3072]
    torch.testing.assert_close(seen[0], want)


def test_wraps_a_feature_network_and_scripts():
    torch.manual_seed(0)
    inner = CTKernelFeatures(widths=(4, 8), frozen=True)
    net = HUWindowMap(inner, (-1000, 900), (-1024, 3072))
    x = torch.rand(1, 1, 16, 16) * 2 - 1
    out = net(x)
    assert len(out) == 2 and out[1].shape == (1, 8, 8, 8)
    torch.testing.assert_close(torch.jit.script(net)(x)[1], out[1])
    with pytest.raises(ValueError, match="high > low"):
        HUWindowMap(inner, (900, -1000), (-1024, 3072))
