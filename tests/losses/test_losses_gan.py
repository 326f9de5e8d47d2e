"""Adversarial and cycle losses: LSGAN, WGAN critic, gradient penalty, L1 cycle consistency."""

import numpy as np
import pytest
import torch
from torch import nn

from ctharmonize.losses import CycleConsistencyLoss, LSGANLoss, WGANGPLoss, gradient_penalty

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_lsgan_against_numpy_and_target_shape():
    rng = np.random.default_rng(0)
    pred = rng.normal(size=(2, 1, 30, 30))
    loss = LSGANLoss()
    assert float(loss(torch.tensor(pred), True)) == pytest.approx(np.mean((pred - 1) ** 2), rel=1e-12)
    assert float(loss(torch.tensor(pred), False)) == pytest.approx(np.mean(pred**2), rel=1e-12)
    assert float(LSGANLoss(0.9, 0.1)(torch.tensor(pred), False)) == pytest.approx(np.mean((pred - 0.1) ** 2))
    half = torch.tensor(pred, dtype=torch.float16)
    assert loss(half, True).dtype == torch.float16  # target built to match dtype/shape, no broadcasting warning
    p = torch.tensor(pred, requires_grad=True)
    loss(p, True).backward()
    np.testing.assert_allclose(p.grad.numpy(), 2 * (pred - 1) / pred.size)
    scripted = torch.jit.script(loss)
    assert float(scripted(torch.tensor(pred), True)) == pytest.approx(np.mean((pred - 1) ** 2))


def test_wgan_critic_loss_signs():
    pred = torch.tensor([[1.0, 3.0], [-2.0, 6.0]])
    assert float(WGANGPLoss()(pred, True)) == pytest.approx(-2.0)
    assert float(WGANGPLoss()(pred, False)) == pytest.approx(2.0)


class _Linear(nn.Module):
    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x):
        return (x * self.w).flatten(1).sum(1)


def test_gradient_penalty_linear_critic_exact():
    torch.manual_seed(0)
    w = torch.randn(1, 1, 4, 4, dtype=torch.float64)
    critic = _Linear(w.clone())
    real, fake = torch.randn(3, 1, 4, 4, dtype=torch.float64), torch.randn(3, 1, 4, 4, dtype=torch.float64)
    gp = gradient_penalty(critic, real, fake, lambda_gp=10.0)
    expected = 10.0 * (np.linalg.norm(w.numpy()) - 1.0) ** 2  # ∇ₓ(w·x) = w for every sample and α
    assert float(gp.detach()) == pytest.approx(expected, rel=1e-10)
    gp.backward()  # create_graph: the penalty trains the critic; d/dw = 10·2(‖w‖−1)·w/‖w‖
    n = np.linalg.norm(w.numpy())
    np.testing.assert_allclose(critic.w.grad.numpy(), 10 * 2 * (n - 1) * w.numpy() / n, rtol=1e-10)


def test_gradient_penalty_interpolates_per_sample():
    real = torch.randn(4, 1, 3, 3, dtype=torch.float64)
    fake = torch.randn(4, 1, 3, 3, dtype=torch.float64)
    gp = gradient_penalty(lambda x: (x**2).flatten(1).sum(1), real, fake, 2.0, generator=torch.Generator().manual_seed(5))
    alpha = torch.rand(4, 1, 1, 1, generator=torch.Generator().manual_seed(5), dtype=torch.float64).numpy()
    mixed = alpha * real.numpy() + (1 - alpha) * fake.numpy()
    norms = np.linalg.norm((2 * mixed).reshape(4, -1), axis=1)  # ∇ₓ Σx² = 2x
    assert float(gp) == pytest.approx(2.0 * np.mean((norms - 1) ** 2), rel=1e-10)
    with pytest.raises(ValueError, match="shapes differ"):
        gradient_penalty(lambda x: x.sum(), real, fake[:2])


def test_cycle_consistency_l1_weighted():
    rng = np.random.default_rng(1)
    a, b = rng.uniform(-1, 1, (2, 1, 8, 8)), rng.uniform(-1, 1, (2, 1, 8, 8))
    assert float(CycleConsistencyLoss()(torch.tensor(a), torch.tensor(b))) == pytest.approx(10 * np.abs(a - b).mean())
    assert float(CycleConsistencyLoss(2.5)(torch.tensor(a), torch.tensor(b))) == pytest.approx(2.5 * np.abs(a - b).mean())
    assert float(torch.jit.script(CycleConsistencyLoss())(torch.tensor(a), torch.tensor(a))) == 0.0
