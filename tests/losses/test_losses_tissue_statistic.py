"""Tissue-statistic loss (paper 000) against explicit-loop hand computations."""

import numpy as np
import pytest
import torch

from ctharmonize.losses import TissueStatisticLoss

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _hand_loss(real, fake, labels, weight=0.01, min_pixels=5, ignore=(0,), use=None):
    """Explicit loops over samples, labels and pixels (numpy, float64)."""
    real, fake, labels = (np.asarray(a, dtype=np.float64) for a in (real, fake, labels))
    terms = []
    for b in range(real.shape[0]):
        for lab in sorted(set(labels[b].ravel().astype(int).tolist())):
            if lab in ignore or (use is not None and lab not in use):
                continue
            r_sum = f_sum = 0.0
            count = 0
            for idx in np.ndindex(labels[b].shape):
                if labels[b][idx] == lab:
                    r_sum += real[b][idx]
                    f_sum += fake[b][idx]
                    count += 1
            if count > min_pixels:
                terms.append((r_sum / count - f_sum / count) ** 2)
    return weight * (sum(terms) / len(terms) if terms else 0.0)


# 6×6 label map: label 2 has 10 pixels (used), label 9 only 3 pixels (skipped although 9 > 5),
# label 1 has 6 pixels (used: more than 5), label 3 exactly 5 pixels (skipped), the rest is 0.
LABELS = np.array(
    [
        [2, 2, 2, 2, 2, 9],
        [2, 2, 2, 2, 2, 9],
        [1, 1, 1, 1, 1, 9],
        [1, 3, 3, 3, 3, 3],
        [0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0],
    ]
)


def test_pixel_count_rule_not_label_value():
    rng = np.random.default_rng(0)
    real = rng.uniform(-1, 1, (1, 1, 6, 6))
    fake = rng.uniform(-1, 1, (1, 1, 6, 6))
    labels = LABELS[None, None]
    got = TissueStatisticLoss()(torch.tensor(real), torch.tensor(fake), torch.tensor(labels))
    # by hand: only labels 1 (6 px) and 2 (10 px) count
    m = {lab: (real[0, 0][LABELS == lab].mean(), fake[0, 0][LABELS == lab].mean()) for lab in (1, 2)}
    expected = 0.01 * ((m[1][0] - m[1][1]) ** 2 + (m[2][0] - m[2][1]) ** 2) / 2
    assert float(got) == pytest.approx(expected, rel=1e-10)
    assert float(got) == pytest.approx(_hand_loss(real, fake, labels), rel=1e-10)
    # the reference-code bug (label VALUE > 5) would use label 9 and drop 1, 2, 3: a different number
    m9 = (real[0, 0][LABELS == 9].mean() - fake[0, 0][LABELS == 9].mean()) ** 2
    assert float(got) != pytest.approx(0.01 * m9, rel=1e-3)


def test_tiny_4x4_example_by_hand():
    real = torch.tensor([[[[0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 0.5, 0.5], [-1, -1, -1, -1]]]])
    fake = real.clone()
    fake[0, 0, :3, :2] += 0.2  # label 1 (6 px) shifted by 0.2
    labels = torch.tensor([[[[1, 1, 2, 2], [1, 1, 2, 2], [1, 1, 2, 2], [0, 0, 0, 0]]]])
    # label 1: (0.2)² ; label 2: 0 → mean over 2 valid labels = 0.02 ; × weight 1
    assert float(TissueStatisticLoss(weight=1.0)(real, fake, labels)) == pytest.approx(0.02, rel=1e-6)
    # with 6-pixel labels and min_pixels=6 nothing is valid → exactly 0, graph intact
    fake.requires_grad_(True)
    zero = TissueStatisticLoss(weight=1.0, min_pixels=6)(real, fake, labels)
    assert float(zero) == 0.0 and zero.requires_grad
    zero.backward()
    assert torch.count_nonzero(fake.grad) == 0


def test_samples_are_not_mixed_across_the_batch():
    rng = np.random.default_rng(1)
    real = rng.uniform(-1, 1, (3, 1, 6, 6))
    fake = rng.uniform(-1, 1, (3, 1, 6, 6))
    labels = np.stack([LABELS, np.roll(LABELS, 2, axis=0), np.where(LABELS == 2, 4, LABELS)])[:, None]
    got = TissueStatisticLoss(weight=0.5)(torch.tensor(real), torch.tensor(fake), torch.tensor(labels))
    assert float(got) == pytest.approx(_hand_loss(real, fake, labels, weight=0.5), rel=1e-10)
    # pooling label 2 over the whole batch (the mixing error) gives another value
    pooled = []
    for lab in (1, 2, 4):
        sel = labels == lab
        pooled.append((real[sel].mean() - fake[sel].mean()) ** 2)
    assert float(got) != pytest.approx(0.5 * np.mean(pooled), rel=1e-3)


def test_label_selection_ignore_and_float_maps():
    rng = np.random.default_rng(2)
    real = rng.uniform(-1, 1, (2, 1, 6, 6)).astype(np.float32)
    fake = rng.uniform(-1, 1, (2, 1, 6, 6)).astype(np.float32)
    labels = np.stack([LABELS, LABELS.T])[:, None]
    loss = TissueStatisticLoss(labels=[2, 9], ignore_labels=())
    got = loss(torch.tensor(real), torch.tensor(fake), torch.tensor(labels, dtype=torch.float32))
    assert float(got) == pytest.approx(_hand_loss(real, fake, labels, use=(2, 9), ignore=()), rel=1e-5)
    with_bg = TissueStatisticLoss(ignore_labels=())(torch.tensor(real), torch.tensor(fake), torch.tensor(labels))
    assert float(with_bg) == pytest.approx(_hand_loss(real, fake, labels, ignore=()), rel=1e-5)


def test_gradient_matches_hand_derivative_and_torchscript():
    rng = np.random.default_rng(3)
    real = torch.tensor(rng.uniform(-1, 1, (1, 1, 6, 6)))
    fake = torch.tensor(rng.uniform(-1, 1, (1, 1, 6, 6)), requires_grad=True)
    labels = torch.tensor(LABELS[None, None])
    loss = TissueStatisticLoss(weight=0.01)
    loss(real, fake, labels).backward()
    # d/d fake_p of 0.01 · mean_l (mr_l − mf_l)² = 0.01 · 2 (mf_l − mr_l) / n_l / n_valid for p in label l
    expected = np.zeros((6, 6))
    r, f = real.numpy()[0, 0], fake.detach().numpy()[0, 0]
    for lab in (1, 2):
        sel = LABELS == lab
        expected[sel] = 0.01 * 2 * (f[sel].mean() - r[sel].mean()) / sel.sum() / 2
    np.testing.assert_allclose(fake.grad.numpy()[0, 0], expected, rtol=1e-10, atol=1e-15)
    scripted = torch.jit.script(loss)
    torch.testing.assert_close(scripted(real, fake.detach(), labels), loss(real, fake.detach(), labels))


def test_bad_inputs():
    loss = TissueStatisticLoss()
    with pytest.raises(ValueError, match="one shape"):
        loss(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="non-negative"):
        loss(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2), -torch.ones(1, 1, 2, 2, dtype=torch.long))
