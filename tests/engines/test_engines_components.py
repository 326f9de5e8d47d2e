"""Engine building blocks: LR schedule, image pool, random subset sampler, adversarial objectives."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ctharmonize.engines import (
    ImagePool,
    RandomSubsetSampler,
    discriminator_adversarial_terms,
    generator_adversarial_loss,
    gradient_penalty,
    linear_decay_lambda,
    make_linear_decay_scheduler,
)
from ctharmonize.errors import ConfigError


# ---------------------------------------------------------------- schedule
def test_linear_decay_is_cyclegan_lambda_rule():
    rule = linear_decay_lambda(100, 100)
    # CycleGAN: 1 - max(0, epoch + 1 - n_epochs) / (n_epochs_decay + 1)
    assert [rule(e) for e in (0, 50, 99)] == [1.0, 1.0, 1.0]
    assert rule(100) == pytest.approx(100 / 101)
    assert rule(150) == pytest.approx(50 / 101)
    assert rule(199) == pytest.approx(1 / 101)
    assert rule(200) == 0.0 and rule(250) == 0.0
    values = [rule(e) for e in range(100, 200)]
    assert all(a > b for a, b in zip(values, values[1:], strict=False))  # strictly decreasing during the decay
    assert len({round(a - b, 12) for a, b in zip(values, values[1:], strict=False)}) == 1  # linear


def test_scheduler_steps_learning_rate_per_epoch():
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([p], lr=2e-3)
    sched = make_linear_decay_scheduler(opt, 2, 3)
    lrs = []
    for _ in range(6):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([2e-3, 2e-3, 2e-3 * 3 / 4, 2e-3 * 2 / 4, 2e-3 * 1 / 4, 0.0])


# ---------------------------------------------------------------- image pool
def test_image_pool_fills_then_swaps_half_the_samples():
    pool = ImagePool(pool_size=4, seed=1)
    first = torch.arange(4.0).reshape(4, 1, 1, 1)
    assert torch.equal(pool.query(first), first)  # filling: returned unchanged
    assert len(pool) == 4
    stored_before = {float(im) for im in pool.images}
    swapped = 0
    n = 400
    for i in range(n):
        new = torch.full((1, 1, 1, 1), 100.0 + i)
        out = pool.query(new)
        if float(out) != 100.0 + i:
            swapped += 1
            assert float(out) in stored_before  # an image that was in the pool ...
            stored_before.discard(float(out))
        assert len(pool) == 4
        stored_before = {float(im) for im in pool.images}
        assert (100.0 + i in stored_before) == (float(out) != 100.0 + i)  # ... replaced by the new one
    assert 0.4 < swapped / n < 0.6


def test_image_pool_zero_size_and_state_round_trip():
    x = torch.randn(3, 1, 2, 2, requires_grad=True)
    out = ImagePool(0).query(x)
    assert torch.equal(out, x) and not out.requires_grad
    a = ImagePool(2, seed=3)
    a.query(torch.randn(2, 1, 2, 2))
    b = ImagePool(2, seed=99)
    b.load_state_dict(a.state_dict())
    for _ in range(10):
        x = torch.randn(2, 1, 2, 2)
        assert torch.equal(a.query(x), b.query(x))


# ---------------------------------------------------------------- sampler
def test_subset_sampler_draws_fraction_deterministically_and_covers_all():
    s = RandomSubsetSampler(50, fraction=0.2, seed=7, num_replicas=1, rank=0)
    assert len(s) == 10
    s.set_epoch(3)
    e3 = list(s)
    assert len(e3) == 10 and len(set(e3)) == 10
    assert list(s) == e3  # same (seed, epoch) -> same subset
    assert RandomSubsetSampler(50, 0.2, seed=7, num_replicas=1, rank=0).epoch_subset(3) == e3
    s.set_epoch(4)
    assert list(s) != e3
    assert RandomSubsetSampler(50, 0.2, seed=8, num_replicas=1, rank=0).epoch_subset(3) != e3
    # epochs 5..9 are one pass over a permutation: every sample exactly once
    seen = [i for e in range(5, 10) for i in s.epoch_subset(e)]
    assert sorted(seen) == list(range(50))


def test_subset_sampler_shards_are_disjoint_and_skip_works():
    shards = []
    for rank in range(3):
        s = RandomSubsetSampler(40, fraction=0.5, seed=1, num_replicas=3, rank=rank)
        s.set_epoch(2)
        shards.append(list(s))
    assert [len(x) for x in shards] == [6, 6, 6]  # 20 -> 18 (multiple of 3) / 3
    union = set().union(*map(set, shards))
    assert len(union) == 18 and union <= set(RandomSubsetSampler(40, 0.5, seed=1, num_replicas=3, rank=0).epoch_subset(2))
    s = RandomSubsetSampler(40, fraction=0.5, seed=1, num_replicas=3, rank=1)
    s.set_epoch(2)
    s.skip_next(4)
    assert list(s) == shards[1][4:]
    assert list(s) == shards[1]  # skip applies once


def test_subset_sampler_rejects_bad_arguments():
    with pytest.raises(ValueError, match="fraction"):
        RandomSubsetSampler(10, fraction=0)
    with pytest.raises(ValueError, match="smaller than"):
        RandomSubsetSampler(10, fraction=0.1, num_replicas=2, rank=0)


# ---------------------------------------------------------------- adversarial objectives
def test_lsgan_and_vanilla_terms_match_hand_computation():
    real, fake = torch.tensor([[0.9, 0.2]]), torch.tensor([[0.3, -0.5]])
    assert float(generator_adversarial_loss(fake, "lsgan")) == pytest.approx(((0.3 - 1) ** 2 + (-0.5 - 1) ** 2) / 2)
    t = discriminator_adversarial_terms(real, fake, "lsgan")
    assert float(t["real"]) == pytest.approx(0.5 * ((0.9 - 1) ** 2 + (0.2 - 1) ** 2) / 2)
    assert float(t["fake"]) == pytest.approx(0.5 * (0.3**2 + 0.5**2) / 2)
    sig = torch.sigmoid
    expected = -(torch.log(sig(fake))).mean()
    assert float(generator_adversarial_loss(fake, "vanilla")) == pytest.approx(float(expected), rel=1e-5)
    # multi-scale lists: mean of per-scale losses
    two = generator_adversarial_loss([fake, real], "lsgan")
    assert float(two) == pytest.approx(float((F.mse_loss(fake, torch.ones_like(fake)) + F.mse_loss(real, torch.ones_like(real))) / 2))
    with pytest.raises(ConfigError, match="not one of") as err:
        generator_adversarial_loss(fake, "hinge")
    assert "\n" not in str(err.value)


def test_wgan_terms_and_gradient_penalty_of_a_linear_critic():
    real, fake = torch.tensor([[1.0, 3.0]]), torch.tensor([[-2.0, 0.0]])
    t = discriminator_adversarial_terms(real, fake, "wgan-gp")
    assert float(t["real"]) == pytest.approx(-2.0) and float(t["fake"]) == pytest.approx(-1.0)
    assert float(generator_adversarial_loss(fake, "wgan-gp")) == pytest.approx(1.0)
    # D(x) = w . x has gradient w everywhere: penalty = weight * (|w| - 1)^2 for every interpolate
    w = torch.tensor([3.0, 4.0], requires_grad=True)
    imgs_r, imgs_f = torch.randn(5, 2), torch.randn(5, 2)
    gp = gradient_penalty(lambda x: x @ w, imgs_r, imgs_f, weight=10.0)
    assert float(gp) == pytest.approx(10.0 * (5.0 - 1.0) ** 2)
    gp.backward()  # keeps the graph: d/dw 10 (|w| - 1)^2 = 20 (|w| - 1) w / |w|
    torch.testing.assert_close(w.grad, 20 * 4.0 * torch.tensor([3.0, 4.0]) / 5.0)


def test_engines_do_not_depend_on_inference():
    """The engine is below inference: importing it (and the multipath initialisation) loads no inference module."""
    import subprocess
    import sys

    code = ("import sys, ctharmonize.engines, ctharmonize.engines.multipath_cyclegan_trainer; "
            "print([m for m in sys.modules if m.startswith('ctharmonize.inference')])")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"
