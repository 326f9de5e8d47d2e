"""Statistics of paper 000 checked against hand computations (numpy/scipy written out here)."""

import math

import numpy as np
import pytest
from scipy import stats

from ctharmonize.errors import ConfigError
from ctharmonize.metrics import (
    bootstrap_rmse,
    cohens_d,
    dice,
    effect_size_category,
    kl_divergence,
    mann_whitney_u,
    paired_wilcoxon,
    rank_checkpoints,
)


def test_dice_per_label_by_hand():
    a = np.array([[0, 1, 1, 2], [2, 2, 0, 3]])
    b = np.array([[0, 1, 0, 2], [2, 0, 0, 0]])
    # label 1: |A|=2 |B|=1 overlap 1 -> 2/3; label 2: |A|=3 |B|=2 overlap 2 -> 4/5; label 3: 2*0/(1+0) = 0
    out = dice(a, b)
    assert out == pytest.approx({1: 2 / 3, 2: 4 / 5, 3: 0.0})
    both_empty = dice(a, b, labels=[7])
    assert math.isnan(both_empty[7])
    assert dice(a, a, labels=[1])[1] == 1.0
    with pytest.raises(ValueError):
        dice(a, b[:, :3])


def test_cohens_d_pooled_sd_by_hand():
    x = [2.0, 4.0, 6.0, 8.0]  # mean 5, var (9+1+1+9)/3 = 20/3
    y = [1.0, 2.0, 3.0]  # mean 2, var 1
    pooled = (3 * 20 / 3 + 2 * 1) / (4 + 3 - 2)  # = 22/5
    assert cohens_d(x, y) == pytest.approx(3.0 / math.sqrt(pooled))
    assert cohens_d(y, x) == pytest.approx(-3.0 / math.sqrt(pooled))
    assert math.isnan(cohens_d([1.0], [1.0, 2.0]))
    assert cohens_d([1, 1], [1, 1]) == 0.0
    assert cohens_d([2, 2], [1, 1]) == math.inf


@pytest.mark.parametrize(
    "d, name",
    [(0.0, "small"), (0.2, "small"), (-0.2, "small"), (0.21, "medium"), (0.5, "medium"), (-0.6, "medium-large"),
     (0.79, "medium-large"), (0.8, "large"), (-6.19, "large"), (float("nan"), "undefined")],
)
def test_effect_size_category_paper_000_table_3(d, name):
    assert effect_size_category(d) == name


def test_bootstrap_rmse_matches_plain_numpy_loop():
    rng = np.random.default_rng(42)
    ref = rng.uniform(0, 40, size=17)
    pred = ref + rng.normal(2.0, 3.0, size=17)
    # independent implementation: one resample of 17 subject indices per loop iteration
    gen = np.random.default_rng(7)
    values = []
    for _ in range(500):
        idx = gen.integers(0, 17, size=17)
        values.append(math.sqrt(sum((pred[i] - ref[i]) ** 2 for i in idx) / 17))
    values = sorted(values)
    expected_median = (values[249] + values[250]) / 2
    med, low, high = bootstrap_rmse(pred, ref, n_resamples=500, seed=7, ci=0.9)
    assert med == pytest.approx(expected_median)
    # percentile with linear interpolation: position 0.05 * 499 = 24.95, 0.95 * 499 = 474.05
    assert low == pytest.approx(values[24] + 0.95 * (values[25] - values[24]))
    assert high == pytest.approx(values[474] + 0.05 * (values[475] - values[474]))
    assert low < med < high


def test_bootstrap_rmse_constant_error_collapses():
    ref = np.arange(10.0)
    med, low, high = bootstrap_rmse(ref + 1.5, ref, n_resamples=200)
    assert (med, low, high) == pytest.approx((1.5, 1.5, 1.5))
    assert all(math.isnan(v) for v in bootstrap_rmse([np.nan], [1.0]))


def test_paired_wilcoxon_matches_scipy_and_handles_zero_differences():
    x = np.array([1.0, 2.5, 3.0, 4.2, 5.1, 6.3, 7.7])
    y = np.array([1.4, 2.0, 3.9, 5.0, 5.0, 7.5, 9.1])
    ref = stats.wilcoxon(x, y)
    res = paired_wilcoxon(x, y)
    assert (res.statistic, res.pvalue, res.n) == pytest.approx((ref.statistic, ref.pvalue, 7))
    # W+ by hand: differences x - y = -0.4, .5, -.9, -.8, .1, -1.2, -1.4 -> ranks of |d|: 2,3,5,4,1,6,7
    assert res.statistic == min(3 + 1, 2 + 5 + 4 + 6 + 7)
    same = paired_wilcoxon([1, 2, 3], [1, 2, 3])
    assert (same.statistic, same.pvalue, same.n) == (0.0, 1.0, 3)
    assert paired_wilcoxon([np.nan, 1.0], [2.0, np.nan]).n == 0


def test_mann_whitney_u_by_hand():
    x = [1.0, 4.0, 6.0]
    y = [2.0, 3.0, 5.0, 7.0]
    # U_x = number of (xi, yj) pairs with xi > yj: 1 -> 0, 4 -> 2, 6 -> 3  => 5
    res = mann_whitney_u(x, y)
    assert res.statistic == 5.0
    assert res.pvalue == pytest.approx(stats.mannwhitneyu(x, y).pvalue)
    assert res.n == 7
    assert math.isnan(mann_whitney_u([], y).pvalue)


def test_kl_divergence_uses_shared_bins_and_epsilon():
    p = [0.0, 1.0, 1.0, 3.0]
    q = [2.0, 3.0, 3.0, 4.0]
    # union range [0, 4], 2 bins: [0, 2) and [2, 4]
    hp = np.array([3, 1]) / 4
    hq = np.array([0, 4]) / 4
    eps = 1e-10
    hp = (hp + eps) / (hp + eps).sum()
    hq = (hq + eps) / (hq + eps).sum()
    expected = float(np.sum(hp * np.log(hp / hq)))
    got = kl_divergence(p, q, bins=2)
    assert got == pytest.approx(expected)
    assert math.isfinite(got) and got > 10  # a bin empty in q: large but finite
    assert kl_divergence(p, p, bins=5) == pytest.approx(0.0, abs=1e-12)
    # separate per-sample bins (the authors' bug) would see identical shapes and report 0 here:
    assert kl_divergence([0, 1], [10, 11], bins=2) > 1


def test_kl_divergence_explicit_range_and_edges():
    p = [0.5, 1.5, 2.5]
    q = [0.5, 0.5, 2.5]
    edges = [0, 1, 2, 3]
    hp = np.array([1, 1, 1]) / 3 + 1e-3
    hq = np.array([2, 0, 1]) / 3 + 1e-3
    hp, hq = hp / hp.sum(), hq / hq.sum()
    assert kl_divergence(p, q, bins=edges, eps=1e-3) == pytest.approx(np.sum(hp * np.log(hp / hq)))
    assert kl_divergence(p, q, bins=3, range=(0, 3), eps=1e-3) == pytest.approx(np.sum(hp * np.log(hp / hq)))


def test_rank_checkpoints_eq1_by_hand():
    table = {
        1: {"mse_b50f_b30f": 4.0, "kl_bone_b30f": 0.1, "kl_standard_b30f": 0.9},
        2: {"mse_b50f_b30f": 1.0, "kl_bone_b30f": 0.5, "kl_standard_b30f": 0.5},
        3: {"mse_b50f_b30f": 2.0, "kl_bone_b30f": 0.5, "kl_standard_b30f": 0.2},
        4: {"mse_b50f_b30f": 3.0, "kl_bone_b30f": 0.3, "kl_standard_b30f": 0.1},
    }
    # mse ranks: 4,1,2,3; kl_bone ranks (0.5 tie -> 3.5): 1,3.5,3.5,2; kl_std ranks: 4,3,2,1
    # weighted: e1 = 2 + .25 + 1 = 3.25; e2 = .5 + .875 + .75 = 2.125; e3 = 1 + .875 + .5 = 2.375; e4 = 1.5 + .5 + .25 = 2.25
    ranking = rank_checkpoints(table)
    assert [r["epoch"] for r in ranking] == [2, 4, 3, 1]
    assert [r["weighted_rank"] for r in ranking] == pytest.approx([2.125, 2.25, 2.375, 3.25])
    assert [r["rank"] for r in ranking] == [1, 2, 3, 4]
    assert ranking[0]["ranks"] == {"mse_b50f_b30f": 1.0, "kl_bone_b30f": 3.5, "kl_standard_b30f": 3.0}
    # other weights change the winner: only KL on BONE -> epoch 1
    assert rank_checkpoints(table, {"kl_bone_b30f": 1.0})[0]["epoch"] == 1


def test_rank_checkpoints_float_noise_ties():
    """A saturated metric equal up to summation noise ties, so the other metric decides (a real training's KL)."""
    table = {
        15: {"kl_bone_b30f": 22.332703727247804, "anat_bone_b30f": 0.776},
        20: {"kl_bone_b30f": 22.332703727247807, "anat_bone_b30f": 0.686},
        10: {"kl_bone_b30f": 22.332703727247804, "anat_bone_b30f": 0.790},
    }
    ranking = rank_checkpoints(table, {"kl_bone_b30f": 0.5, "anat_bone_b30f": 0.5})
    assert [r["epoch"] for r in ranking] == [20, 15, 10]
    assert {r["ranks"]["kl_bone_b30f"] for r in ranking} == {2.0}
    # a real difference in the 9th significant digit still ranks
    table[20]["kl_bone_b30f"] = 22.3327038
    assert rank_checkpoints(table, {"kl_bone_b30f": 1.0})[-1]["epoch"] == 20


def test_rank_checkpoints_limits_are_requirements():
    table = {
        1: {"mse_b50f_b30f": 4.0, "kl_bone_b30f": 0.1, "kl_standard_b30f": 0.9, "anat": 0.02},
        2: {"mse_b50f_b30f": 1.0, "kl_bone_b30f": 0.5, "kl_standard_b30f": 0.5, "anat": 0.30},
        3: {"mse_b50f_b30f": 2.0, "kl_bone_b30f": 0.5, "kl_standard_b30f": 0.2, "anat": 0.08},
        4: {"mse_b50f_b30f": 3.0, "kl_bone_b30f": 0.3, "kl_standard_b30f": 0.1, "anat": 0.12},
    }
    # weighted ranks as in the eq. 1 test (2: 2.125, 4: 2.25, 3: 2.375, 1: 3.25); anat <= 0.1 keeps 1 and 3
    ranking = rank_checkpoints(table, limits={"anat": 0.1})
    assert [r["epoch"] for r in ranking] == [3, 1, 2, 4]
    assert [r["feasible"] for r in ranking] == [True, True, False, False]
    assert [r["rank"] for r in ranking] == [1, 2, 3, 4]
    assert [r["weighted_rank"] for r in ranking] == pytest.approx([2.375, 3.25, 2.125, 2.25])  # unchanged values
    # a limit no epoch meets leaves the eq. 1 order; a missing limited metric is infeasible
    assert [r["epoch"] for r in rank_checkpoints(table, limits={"anat": 0.0})] == [2, 4, 3, 1]
    assert [r["epoch"] for r in rank_checkpoints(table, limits={"other": 1.0})] == [2, 4, 3, 1]
    assert not any(r["feasible"] for r in rank_checkpoints(table, limits={"other": 1.0}))
    assert all(r["feasible"] for r in rank_checkpoints(table))


def test_rank_checkpoints_nan_ranks_last_and_missing_metric_errors():
    table = {1: {"m": np.nan}, 2: {"m": 5.0}, 3: {"m": 1.0}}
    ranking = rank_checkpoints(table, {"m": 1.0})
    assert [r["epoch"] for r in ranking] == [3, 2, 1]
    with pytest.raises(ConfigError):
        rank_checkpoints(table, {"other": 1.0})
