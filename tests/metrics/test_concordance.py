"""Lin's concordance correlation coefficient against the formula written out by hand."""

import math

import numpy as np
import pytest

from ctharmonize.metrics import lins_ccc


def lin_by_hand(x, y) -> float:
    """Lin (1989): 2 s_xy / (s_x² + s_y² + (x̄ - ȳ)²), population (1/n) moments."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    n = x.size
    mx, my = x.sum() / n, y.sum() / n
    sxy = ((x - mx) * (y - my)).sum() / n
    sx2, sy2 = ((x - mx) ** 2).sum() / n, ((y - my) ** 2).sum() / n
    return 2 * sxy / (sx2 + sy2 + (mx - my) ** 2)


def test_known_cases():
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    assert lins_ccc(x, x) == 1.0
    assert lins_ccc(x - 3.0, 3.0 - x) == pytest.approx(-1.0)  # mirrored about a common mean
    assert lins_ccc(x, -x) == pytest.approx(-4.0 / (2 + 2 + 36))  # and the means 3 and -3 lower it further
    # a shift keeps Pearson r = 1 but lowers the CCC: var 2 each, shift 1 -> 2*2 / (2 + 2 + 1)
    assert lins_ccc(x, x + 1.0) == pytest.approx(0.8)
    assert lins_ccc(x, x + 3.0) < lins_ccc(x, x + 1.0) < 1.0
    # a scale change too: y = 2x, var 2 and 8, cov 4, means 3 and 6 -> 8 / (2 + 8 + 9)
    assert lins_ccc(x, 2 * x) == pytest.approx(8.0 / 19.0)


def test_matches_formula_on_random_vectors():
    rng = np.random.default_rng(7)
    for _ in range(20):
        x = rng.normal(size=11)
        y = 0.7 * x + rng.normal(scale=0.5, size=11) + rng.normal()
        assert lins_ccc(x, y) == pytest.approx(lin_by_hand(x, y), rel=1e-12)
        assert lins_ccc(x, y) == pytest.approx(lins_ccc(y, x), rel=1e-12)  # symmetric


def test_nan_pairs_dropped_and_undefined_cases():
    x = np.array([1.0, 2.0, np.nan, 4.0, 5.0])
    y = np.array([1.5, 2.0, 3.0, np.nan, 4.0])
    assert lins_ccc(x, y) == pytest.approx(lin_by_hand([1, 2, 5], [1.5, 2, 4]))
    assert math.isnan(lins_ccc([3.0, 3.0], [3.0, 3.0]))  # both constant and equal: 0 / 0
    assert lins_ccc([3.0, 3.0], [3.0, 4.0]) == 0.0
    assert math.isnan(lins_ccc([1.0], [1.0]))
    with pytest.raises(ValueError):
        lins_ccc([1.0, 2.0], [1.0, 2.0, 3.0])
