"""Downsampled identity loss, Gram matrix and Gram style loss against numpy."""

import numpy as np
import pytest
import torch

from ctharmonize.losses import DownsampledIdentityLoss, GramStyleLoss, gram_matrix

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _block_mean(x, f):
    b, c, h, w = x.shape
    return x.reshape(b, c, h // f, f, w // f, f).mean(axis=(3, 5))


def test_downsampled_identity_area_against_block_means():
    rng = np.random.default_rng(0)
    real, fake = rng.uniform(-1, 1, (2, 1, 8, 8)), rng.uniform(-1, 1, (2, 1, 8, 8))
    for factor in (2, 4):
        got = DownsampledIdentityLoss(weight=3.0, factor=factor)(torch.tensor(real), torch.tensor(fake))
        expected = 3.0 * np.mean((_block_mean(real, factor) - _block_mean(fake, factor)) ** 2)
        assert float(got) == pytest.approx(expected, rel=1e-10)
    # high-frequency noise with zero block means is ignored (what "smooths out kernel effects" means)
    noise = np.tile(np.array([[1.0, -1.0], [-1.0, 1.0]]), (4, 4))[None, None] * 0.3
    assert float(DownsampledIdentityLoss()(torch.tensor(real), torch.tensor(real + noise))) == pytest.approx(0, abs=1e-20)


def test_downsampled_identity_bilinear_reference_mode():
    rng = np.random.default_rng(1)
    real, fake = rng.uniform(-1, 1, (1, 1, 8, 8)), rng.uniform(-1, 1, (1, 1, 8, 8))

    def resize(img):  # align_corners=True bilinear 8 → 4, separable np.interp
        pos = np.arange(4) * 7 / 3
        rows = np.stack([np.interp(pos, np.arange(8), r) for r in img])
        return np.stack([np.interp(pos, np.arange(8), col) for col in rows.T]).T

    expected = np.mean((resize(real[0, 0]) - resize(fake[0, 0])) ** 2)
    got = DownsampledIdentityLoss(factor=2, mode="bilinear")(torch.tensor(real), torch.tensor(fake))
    assert float(got) == pytest.approx(expected, rel=1e-10)
    scripted = torch.jit.script(DownsampledIdentityLoss(factor=2, mode="bilinear"))
    assert float(scripted(torch.tensor(real), torch.tensor(fake))) == pytest.approx(expected, rel=1e-10)


def test_reference_weight_schedule():
    weights = [DownsampledIdentityLoss.reference_weight(e) for e in range(1, 9)]
    assert weights == pytest.approx([1e7, 1e5, 1e3, 10, 0.1, 0.01, 0.01, 0.01])
    with pytest.raises(ValueError):
        DownsampledIdentityLoss(mode="nearest")


def test_gram_matrix_normalizations():
    rng = np.random.default_rng(2)
    f = rng.normal(size=(2, 3, 4, 5))
    flat = f.reshape(2, 3, 20)
    raw = np.einsum("bcn,bdn->bcd", flat, flat)
    np.testing.assert_allclose(gram_matrix(torch.tensor(f), "none").numpy(), raw, rtol=1e-12)
    np.testing.assert_allclose(gram_matrix(torch.tensor(f)).numpy(), raw / 60, rtol=1e-12)
    fro = raw / np.linalg.norm(raw.reshape(2, -1), axis=1)[:, None, None]
    np.testing.assert_allclose(gram_matrix(torch.tensor(f), "frobenius").numpy(), fro, rtol=1e-12)
    assert gram_matrix(torch.tensor(f, dtype=torch.float16)).dtype == torch.float32  # no fp16 overflow
    with pytest.raises(ValueError):
        gram_matrix(torch.tensor(f), "l1")


def test_gram_style_loss_against_numpy_and_script():
    rng = np.random.default_rng(3)
    fake = [rng.normal(size=(2, 3, 4, 4)), rng.normal(size=(2, 5, 2, 2))]
    target = [rng.normal(size=(2, 3, 4, 4)), rng.normal(size=(2, 5, 2, 2))]

    def gram(x):
        b, c, h, w = x.shape
        y = x.reshape(b, c, h * w)
        return np.einsum("bcn,bdn->bcd", y, y) / (c * h * w)

    expected = 0.5 * sum(np.mean((gram(a) - gram(b)) ** 2) * w for a, b, w in zip(fake, target, (1.0, 4.0), strict=True))
    loss = GramStyleLoss(weight=0.5, layer_weights=[1.0, 4.0])
    tf, tt = [torch.tensor(a) for a in fake], [torch.tensor(a) for a in target]
    assert float(loss(tf, tt)) == pytest.approx(expected, rel=1e-6)
    assert float(torch.jit.script(loss)(tf, tt)) == pytest.approx(expected, rel=1e-6)
    x = tf[0].clone().requires_grad_(True)
    GramStyleLoss()([x], [tt[0]]).backward()
    assert x.grad.abs().sum() > 0
    assert float(GramStyleLoss()(tt, tt)) == 0.0
    with pytest.raises(ValueError):
        GramStyleLoss()(tf, tt[:1])
