"""Soft GLCM and the multi-scale texture loss of paper 003 against skimage and numpy."""

import numpy as np
import pytest
import torch
from skimage.feature import graycomatrix, graycoprops

from ctharmonize.errors import ConfigError
from ctharmonize.losses import MultiScaleTextureLoss, SoftGLCM, glcm_contrast, glcm_offsets

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

DISTANCES = (1, 3, 5, 7)
ANGLES = (0.0, 45.0, 90.0, 135.0)
LEVELS = 8


def _quantized(levels_img: np.ndarray, n: int = LEVELS) -> torch.Tensor:
    """Integer levels (B, H, W) in 0 … n−1 → (B, 1, H, W) float32 images at the bin centres of [-1, 1]."""
    return torch.tensor(-1.0 + levels_img * 2.0 / (n - 1), dtype=torch.float32)[:, None]


def _skimage_glcm(levels_img: np.ndarray, symmetric: bool, n: int = LEVELS) -> np.ndarray:
    """(H, W) integer image → (16, n, n), distance-major like SoftGLCM."""
    ref = graycomatrix(
        levels_img.astype(np.uint8), DISTANCES, np.radians(ANGLES), levels=n, symmetric=symmetric, normed=True
    )
    return ref.transpose(2, 3, 0, 1).reshape(len(DISTANCES) * len(ANGLES), n, n)


def test_offsets_follow_skimage_convention():
    offsets = glcm_offsets(DISTANCES, ANGLES)
    assert offsets[:4] == [(0, 1), (1, 1), (1, 0), (1, -1)]  # d = 1 at 0, 45, 90, 135 degrees
    assert [offsets[4 * i + 1] for i in range(4)] == [(1, 1), (2, 2), (4, 4), (5, 5)]  # rounded diagonals
    assert [offsets[4 * i + 3] for i in range(4)] == [(1, -1), (2, -2), (4, -4), (5, -5)]
    assert [offsets[4 * i + 2] for i in range(4)] == [(d, 0) for d in DISTANCES]


@pytest.mark.parametrize("symmetric", [False, True])
def test_soft_glcm_matches_skimage_as_sigma_goes_to_zero(symmetric):
    rng = np.random.default_rng(0)
    levels_img = rng.integers(0, LEVELS, size=(2, 32, 32))
    levels_img[1, :16] = rng.integers(2, 5, size=(16, 32))  # a different histogram in sample 1
    glcm = SoftGLCM(DISTANCES, ANGLES, n_levels=LEVELS, sigma=0.05, symmetric=symmetric)(
        _quantized(levels_img)
    )
    assert glcm.shape == (2, 16, LEVELS, LEVELS)
    np.testing.assert_allclose(glcm.sum(dim=(-2, -1)).numpy(), 1.0, atol=1e-6)
    for b in range(2):
        assert np.abs(glcm[b].numpy() - _skimage_glcm(levels_img[b], symmetric)).max() < 1e-3


def test_all_angles_share_one_bin_range():
    # a constant image: every offset's GLCM is the same one-hot (k, k), with identical marginals;
    # bins collapsed for some angles (the authors' 90/135 degree range [-1, -1]) would spread it
    soft = SoftGLCM(DISTANCES, ANGLES, n_levels=LEVELS, sigma=0.05)
    for k in (0, 3, LEVELS - 1):
        glcm = soft(_quantized(np.full((1, 16, 16), k)))[0]
        expected = np.zeros((LEVELS, LEVELS))
        expected[k, k] = 1.0
        np.testing.assert_allclose(glcm.numpy(), np.broadcast_to(expected, glcm.shape), atol=1e-6)
    # constant along each row: 0-degree pairs share a value (diagonal GLCM, zero contrast), the rows
    # use levels 1..5 only, so a range taken from the data would move them to other bins
    rows = np.tile((np.arange(16) % 5 + 1)[:, None], (1, 16))
    glcm = SoftGLCM(DISTANCES, ANGLES, n_levels=LEVELS, sigma=0.05, symmetric=False)(_quantized(rows[None]))[
        0
    ]
    for i in range(4):
        zero_deg = glcm[4 * i].numpy()
        np.testing.assert_allclose(zero_deg, np.diag(np.diag(zero_deg)), atol=1e-6)
        for j in range(4):  # the first-pixel marginal lies on levels 1..5 for every angle
            marginal = glcm[4 * i + j].sum(dim=1).numpy()
            assert marginal[[0, 6, 7]].max() < 1e-6
    assert np.abs(glcm.numpy() - _skimage_glcm(rows, False)).max() < 1e-3


def test_bin_range_is_not_taken_from_the_shifted_crops():
    # the extreme levels 0 and 7 sit only on the two corners that the 135-degree crops leave out
    # ((0, 0) and (H-1, W-1) are in no pair for offsets (d, -d)); a per-crop min/max would stretch
    # levels 2..5 over all eight bins for that angle and no longer match skimage's fixed levels
    rng = np.random.default_rng(1)
    img = rng.integers(2, 6, size=(16, 16))
    img[0, 0], img[-1, -1] = 0, LEVELS - 1
    glcm = SoftGLCM(DISTANCES, ANGLES, n_levels=LEVELS, sigma=0.05, symmetric=False)(_quantized(img[None]))[0]
    ref = _skimage_glcm(img, False)
    assert np.abs(glcm.numpy() - ref).max() < 1e-3
    for i in range(4):  # 135 degrees: nothing in the extreme bins
        assert (
            float(glcm[4 * i + 3][[0, LEVELS - 1]].sum() + glcm[4 * i + 3][:, [0, LEVELS - 1]].sum()) < 1e-6
        )
        assert float(glcm[4 * i + 1][0, :].sum()) > 0  # 45 degrees pairs (0, 0) with (d', d')


def test_descriptors_are_per_sample():
    rng = np.random.default_rng(2)
    a = torch.tensor(rng.uniform(-1, 1, (1, 1, 24, 24)), dtype=torch.float32)
    b = torch.tensor(rng.uniform(-0.3, 0.3, (1, 1, 24, 24)), dtype=torch.float32)
    soft = SoftGLCM(n_levels=16)
    both = soft(torch.cat([a, b]))
    torch.testing.assert_close(both, torch.cat([soft(a), soft(b)]), atol=1e-6, rtol=1e-5)
    changed = soft(torch.cat([a, b.flip(-1) * 2.0]))
    torch.testing.assert_close(changed[0], both[0], atol=0, rtol=0)
    assert not torch.allclose(changed[1], both[1])
    contrast = soft.contrast(torch.cat([a, b]))
    torch.testing.assert_close(
        contrast, torch.cat([soft.contrast(a), soft.contrast(b)]), atol=1e-4, rtol=1e-5
    )
    torch.testing.assert_close(soft.contrast(torch.cat([a, b * 3]))[0], contrast[0], atol=0, rtol=0)


def test_too_wide_kernel_is_refused():
    # the authors' sigma = 0.5 on [-1, 1]: 15.75 bins of 2/63
    with pytest.raises(ConfigError, match="kernel too wide"):
        SoftGLCM(n_levels=64, sigma=0.5 / (2 / 63))
    with pytest.raises(ConfigError, match="half the range"):
        SoftGLCM(n_levels=8, sigma=2.0, value_range=(0.0, 1.0))  # 2 sigma = 4/7 >= 1/2
    with pytest.raises(ConfigError, match="kernel too wide"):
        MultiScaleTextureLoss(n_levels=16, sigma=4.0)
    SoftGLCM(n_levels=64, sigma=0.49 / (2 / 63))  # just under the limit is accepted
    for bad in ({"sigma": 0.0}, {"n_levels": 1}, {"value_range": (1.0, -1.0)}):
        with pytest.raises(ConfigError):
            SoftGLCM(**bad)
    with pytest.raises(ConfigError):
        SoftGLCM(distances=(0,))
    with pytest.raises(ValueError, match="leaves no pixel pair"):
        SoftGLCM()(torch.zeros(1, 1, 6, 6))


def test_contrast_matches_graycoprops():
    rng = np.random.default_rng(3)
    levels_img = rng.integers(0, LEVELS, size=(2, 32, 32))
    levels_img[1] = np.clip(levels_img[1], 3, 4)
    soft = SoftGLCM(DISTANCES, ANGLES, n_levels=LEVELS, sigma=0.05)
    got = soft.contrast(_quantized(levels_img)).numpy()
    for b in range(2):
        ref = graycomatrix(
            levels_img[b].astype(np.uint8), DISTANCES, np.radians(ANGLES), levels=LEVELS, normed=True
        )
        expected = graycoprops(ref, "contrast").reshape(-1)  # (distances, angles) → distance-major
        np.testing.assert_allclose(got[b], expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(glcm_contrast(soft(_quantized(levels_img))).numpy(), got, rtol=1e-4, atol=1e-4)
    normalized = SoftGLCM(DISTANCES, ANGLES, n_levels=LEVELS, sigma=0.05, normalize_contrast=True)
    np.testing.assert_allclose(
        normalized.contrast(_quantized(levels_img)).numpy(), got / 49, rtol=1e-4, atol=1e-6
    )


@pytest.mark.parametrize("normalize_memberships", [True, False])
def test_moment_contrast_equals_matrix_contrast(normalize_memberships):
    rng = np.random.default_rng(4)
    x = torch.tensor(rng.uniform(-1.1, 1.1, (2, 1, 20, 20)), dtype=torch.float32)
    soft = SoftGLCM(n_levels=16, sigma=0.7, normalize_memberships=normalize_memberships)
    torch.testing.assert_close(soft.contrast(x), glcm_contrast(soft(x)), atol=2e-4, rtol=2e-5)
    scripted = torch.jit.script(soft)
    torch.testing.assert_close(scripted(x), soft(x), atol=0, rtol=0)
    torch.testing.assert_close(scripted.contrast(x), soft.contrast(x), atol=0, rtol=0)


def _value(t: torch.Tensor) -> float:
    return float(t.detach())


def _images(seed: int = 5, batch: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, 1, 32, 32, generator=gen) * 1.6 - 0.8
    smooth = torch.nn.functional.avg_pool2d(x, 3, stride=1, padding=1)  # a "softer kernel" reconstruction
    return x, smooth


def _randomize(loss: MultiScaleTextureLoss, seed: int, gamma: float) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in loss.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 2.0)
        loss.gamma.fill_(gamma)


def test_texture_loss_zero_for_identical_and_positive_for_different():
    x, smooth = _images()
    for mode in ("bounded", "paper"):
        loss = MultiScaleTextureLoss(mode=mode, n_levels=16)
        assert _value(loss(x, x)) == 0.0
        assert _value(loss(x, smooth)) > 0.0
        delta = loss.texture_difference(x, smooth)
        assert delta.shape == (2, 4, 4)
        assert _value(loss(x, smooth)) == pytest.approx(float(delta.sum(dim=(1, 2)).mean()), rel=1e-6)
    bounded = MultiScaleTextureLoss(n_levels=16)
    _randomize(bounded, 0, gamma=3.0)
    assert _value(bounded(x, x)) == 0.0  # V = ΔT: no offset from a bias


def test_bounded_mode_never_below_plain_aggregate():
    x, smooth = _images()
    loss = MultiScaleTextureLoss(mode="bounded", n_levels=16)
    delta = loss.texture_difference(x, smooth).detach()
    plain = _value(loss.plain_aggregate(delta))
    for seed in range(20):
        _randomize(
            loss, seed, gamma=float(torch.randn((), generator=torch.Generator().manual_seed(seed))) * 3
        )
        assert _value(loss.aggregate(delta)) >= plain - 1e-4 * abs(plain)
        assert _value(loss.aggregate(delta)) > plain  # |gamma| > 0: the attention adds to it


def test_paper_mode_can_go_below_plain_aggregate_even_negative():
    x, smooth = _images()
    loss = MultiScaleTextureLoss(mode="paper", n_levels=16)
    delta = loss.texture_difference(x, smooth).detach()
    plain = _value(loss.plain_aggregate(delta))
    with torch.no_grad():
        loss.gamma.fill_(-1.0)
        loss.value.weight.fill_(1.0)
        loss.value.bias.fill_(0.0)
    below = _value(loss.aggregate(delta))
    assert below < plain - 1e-3 * plain  # sum(ΔT) − Σ_j c_j ΔT_j with column sums c_j ≥ 0
    with torch.no_grad():
        loss.value.bias.fill_(plain)  # gamma · bias < 0: each cell loses `plain`
    assert _value(loss.aggregate(delta)) < 0.0
    bounded = MultiScaleTextureLoss(mode="bounded", n_levels=16)
    with torch.no_grad():
        bounded.gamma.fill_(-1.0)
    assert _value(bounded.aggregate(delta)) >= plain


def test_gamma_zero_gives_plain_aggregate_in_both_modes():
    x, smooth = _images(seed=6, batch=3)
    for mode in ("bounded", "paper"):
        for reduction, scale in (("sum", 1.0), ("mean", 1.0 / 16)):
            loss = MultiScaleTextureLoss(weight=2.0, mode=mode, reduction=reduction, n_levels=16)
            _randomize(loss, 7, gamma=0.0)
            delta = loss.texture_difference(x, smooth)
            expected = 2.0 * scale * float(delta.sum(dim=(1, 2)).mean())
            assert _value(loss.plain_aggregate(delta)) == pytest.approx(expected, rel=1e-6)
            assert _value(loss(x, smooth)) == pytest.approx(expected, rel=1e-6)


def test_attention_is_per_sample_and_scriptable():
    x, smooth = _images(seed=8)
    for mode in ("bounded", "paper"):
        loss = MultiScaleTextureLoss(mode=mode, n_levels=16)
        _randomize(loss, 9, gamma=0.8)
        delta = loss.texture_difference(x, smooth).detach()
        expected = (loss.glcm.contrast(x) - loss.glcm.contrast(smooth)).abs().reshape(2, 4, 4)
        torch.testing.assert_close(delta, expected, atol=0, rtol=0)  # raw |ΔT|, no batch min-max
        other = loss.texture_difference(torch.cat([x[:1], x[1:] * 0.5]), torch.cat([smooth[:1], x[1:]]))
        torch.testing.assert_close(other[0], delta[0], atol=0, rtol=0)
        out = loss.attend(delta)
        torch.testing.assert_close(out[:1], loss.attend(delta[:1]))
        torch.testing.assert_close(loss.attend(torch.cat([delta[:1], delta[1:] * 5]))[0], out[0])
        scripted = torch.jit.script(loss)
        assert _value(scripted(x, smooth)) == pytest.approx(_value(loss(x, smooth)), rel=1e-6)


def test_gradients_reach_reconstruction_and_attention():
    x, smooth = _images(seed=10)
    for mode in ("bounded", "paper"):
        loss = MultiScaleTextureLoss(mode=mode, n_levels=16)
        with torch.no_grad():
            loss.gamma.fill_(0.5)
        x_rec = smooth.clone().requires_grad_(True)
        loss(x, x_rec).backward()
        assert x_rec.grad is not None and torch.isfinite(x_rec.grad).all() and x_rec.grad.abs().sum() > 0
        assert loss.gamma.grad is not None and _value(loss.gamma.grad.abs()) > 0
        assert loss.query.weight.grad is not None
    with pytest.raises(ConfigError, match="aggregation"):
        MultiScaleTextureLoss(mode="max")
    with pytest.raises(ConfigError, match="reduction"):
        MultiScaleTextureLoss(reduction="max")
    assert isinstance(MultiScaleTextureLoss().value, torch.nn.Identity)
