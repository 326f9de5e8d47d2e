"""Paper 003 Table II feature alignment (Welch t-tests) against scipy and hand-made cases."""

import json
import math

import numpy as np
import pytest
from scipy import optimize, stats

from ctharmonize.metrics import (
    ALIGNMENT_ALPHA,
    feature_alignment,
    feature_alignment_both_directions,
    welch_pvalues,
)


def test_paper_threshold():
    assert ALIGNMENT_ALPHA == 0.01  # paper 003 §III-B2: "A p-value threshold of < 0.01"


def test_pvalues_match_scipy_welch_with_nans_dropped():
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, size=(30, 5)) * [1, 2, 3, 4, 5]
    y = rng.normal(0.5, 2, size=(22, 5))
    x[3, 1] = np.nan
    y[[0, 4], 2] = np.nan
    y[7, 4] = np.inf
    p = welch_pvalues(x, y)
    for f in range(5):
        a, b = x[:, f], y[:, f]
        a, b = a[np.isfinite(a)], b[np.isfinite(b)]
        assert p[f] == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue, rel=1e-12)
        assert p[f] != pytest.approx(stats.ttest_ind(a, b, equal_var=True).pvalue, rel=1e-6)  # Welch, not Student


def test_identical_and_far_shifted_distributions():
    rng = np.random.default_rng(1)
    target = rng.normal(10.0, 2.0, size=(40, 6))
    source = target + 100.0  # shifted by 50 SDs: every feature differs
    same = feature_alignment(source, target, harmonized=target.copy())
    assert same.percent_aligned == 100.0 and same.percent_same_after == 100.0
    assert same.percent_same_before == 0.0 and same.n_different_before == 6
    assert np.allclose(same.p_after, 1.0)
    untouched = feature_alignment(source, target, harmonized=source)
    assert untouched.percent_aligned == 0.0 and untouched.percent_same_after == 0.0


def test_hand_counted_case_with_undefined_features():
    rng = np.random.default_rng(2)
    n = 30
    target = rng.normal(0, 1, size=(n, 5))
    source = target.copy()
    harmonized = target + rng.normal(0, 0.1, size=(n, 5))
    source[:, 0] += 20  # f0: differs before, aligned after
    source[:, 1] += 20  # f1: differs before, still differs after
    harmonized[:, 1] += 20
    # f2: the same before (identical values): not in R
    target[:, 3] = source[:, 3] = harmonized[:, 3] = 7.0  # f3: constant in every group: undefined
    source[:, 4] += 20  # f4: differs before, harmonized all NaN: undefined after, out of the denominator
    harmonized[:, 4] = np.nan
    names = ["f0", "f1", "f2", "f3", "f4"]
    r = feature_alignment(source, target, harmonized, feature_names=names)
    assert list(r.different_before) == [True, True, False, False, True]
    assert list(r.aligned) == [True, False, False, False, False]
    assert r.n_different_before == 2  # f4 is left out: its after-test is undefined
    assert r.percent_aligned == pytest.approx(50.0)
    assert r.percent_same_before == pytest.approx(100 / 4)  # f2 of the 4 defined features
    assert r.percent_same_after == pytest.approx(100 * 2 / 3)  # f0, f2 of f0..f2
    assert r.undefined_before == ("f3",) and r.undefined_after == ("f3", "f4")
    d = r.to_dict()
    json.dumps(d, allow_nan=False)  # NaN p-values became None
    assert d["p_before"]["f3"] is None and d["percent_aligned"] == pytest.approx(50.0)


def test_threshold_is_p_below_alpha():
    base = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    noise = np.array([0.3, -0.2, 0.1, 0.0, -0.4, 0.2])
    # a shift whose Welch p is 0.03: significant at 0.05, not at the paper's 0.01
    shift = optimize.brentq(lambda s: stats.ttest_ind(base, base + noise + s, equal_var=False).pvalue - 0.03,
                            0.1, 20.0)
    target = base[:, None]
    source = (base + 100.0)[:, None]
    harmonized = (base + noise + shift)[:, None]
    assert welch_pvalues(harmonized, target)[0] == pytest.approx(0.03)
    assert feature_alignment(source, target, harmonized).percent_aligned == 100.0
    assert feature_alignment(source, target, harmonized, alpha=0.05).percent_aligned == 0.0
    with pytest.raises(ValueError):
        feature_alignment(source, target, harmonized, alpha=1.5)


def test_constant_in_one_group_is_defined_and_empty_r_is_nan():
    target = np.array([[1.0], [2.0], [3.0], [4.0]])
    const = np.full((4, 1), 2.5)
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning, match="Precision loss"):
        expected = stats.ttest_ind(const[:, 0], target[:, 0], equal_var=False).pvalue
    assert welch_pvalues(const, target)[0] == pytest.approx(expected)
    assert math.isnan(welch_pvalues(np.full((4, 1), 2.0), np.full((3, 1), 5.0))[0])  # both constant
    assert math.isnan(welch_pvalues(np.array([[1.0]]), target)[0])  # one value only
    r = feature_alignment(target, target, target)  # nothing differs before
    assert math.isnan(r.percent_aligned) and r.percent_same_before == 100.0


def test_rows_as_mappings_are_matched_by_name():
    rng = np.random.default_rng(3)
    src, tgt, har = rng.normal(5, 1, (12, 3)), rng.normal(0, 1, (15, 3)), rng.normal(0.2, 1, (12, 3))
    names = ["original_glcm_Contrast", "original_firstorder_Mean", "original_ngtdm_Busyness"]

    def rows(a, order):
        return [{names[j]: float(v[j]) for j in order} for v in a]

    ref = feature_alignment(src, tgt, har, feature_names=names)
    r = feature_alignment(rows(src, [0, 1, 2]), rows(tgt, [2, 0, 1]), rows(har, [1, 2, 0]))
    assert r.feature_names == tuple(names)
    assert np.allclose(r.p_before, ref.p_before) and np.allclose(r.p_after, ref.p_after)
    missing = [dict(list(row.items())[1:]) for row in rows(har, [0, 1, 2])]  # no Contrast: NaN, undefined
    assert feature_alignment(rows(src, [0, 1, 2]), rows(tgt, [0, 1, 2]), missing).undefined_after == (names[0],)


def test_both_directions_average():
    rng = np.random.default_rng(4)
    a, b = rng.normal(0, 1, (25, 8)), rng.normal(3, 1, (25, 8))
    a_to_b = b[:, :] + rng.normal(0, 0.05, (25, 8))
    a_to_b[:, :2] += 5  # 6 of 8 aligned in direction a → b
    b_to_a = a + rng.normal(0, 0.05, (25, 8))  # 8 of 8 aligned in direction b → a
    out = feature_alignment_both_directions(a, b, a_to_b, b_to_a)
    assert out["a_to_b"].percent_aligned == pytest.approx(75.0)
    assert out["b_to_a"].percent_aligned == pytest.approx(100.0)
    assert out["percent_aligned"] == pytest.approx(87.5)
    assert np.allclose(out["b_to_a"].p_before, welch_pvalues(b, a))
    assert out["percent_same_after"] == pytest.approx(0.5 * (75.0 + 100.0))
