"""Sample weights near the float64 limit: a mean whose float64 sums overflow although
every weight is finite is still the weighted mean (#19).

Expected values come from NumPy formulas written here, never from fastloss."""

import math

import numpy as np
import pytest

import fastloss

BACKENDS = ["numpy", "cython", "numba"]
X = np.array([[1.0, 2.0, 3.0], [0.5, 0.1, 2.0], [-1.0, 4.0, 0.0]])
Y = np.array([0, 2, 1])


def sparse_ce_rows(x, y):
    m = x.max(axis=1)
    return m + np.log(np.exp(x - m[:, None]).sum(axis=1)) - x[np.arange(len(y)), y]


def ratio(values, w):
    """sum(w*l) / sum(w) with the weights scaled down first (exact powers of two)."""
    w = np.ldexp(np.asarray(w, float), -1100)
    return math.fsum((w * values).tolist()) / math.fsum(w.tolist())


@pytest.mark.parametrize("backend", BACKENDS)
def test_equal_huge_weights_give_the_unweighted_mean_bitwise(backend):
    w = np.full(3, 2.0 ** 1023)  # powers of two: scaling them is exact, so the bits must be
    f = fastloss.sparse_categorical_cross_entropy
    want = f(Y, X, from_logits=True, backend=backend)
    assert f(Y, X, from_logits=True, sample_weight=w, backend=backend) == want
    assert np.isfinite(want)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("w", [[1e308, 1e308, 1e308], [1e308, 3e307, 0.0],
                               [1.7976931348623157e308, 1e300, 5.0]])
def test_huge_weights_give_the_weighted_mean(backend, w):
    got = fastloss.sparse_categorical_cross_entropy(Y, X, from_logits=True,
                                                    sample_weight=np.array(w), backend=backend)
    assert got == pytest.approx(ratio(sparse_ce_rows(X, Y), w), rel=1e-14)


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_reduced_loss_survives_huge_weights(backend):
    p = np.array([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8]])
    t = np.eye(3)[Y]
    w = np.array([1e308, 1e308, 2e307])
    kw = dict(sample_weight=w, backend=backend)
    cce = -np.log(p[np.arange(3), Y])
    assert fastloss.categorical_cross_entropy(t, p, **kw) == pytest.approx(ratio(cce, w),
                                                                           rel=1e-14)
    kl = (t * np.log(np.where(t > 0, t, 1) / p)).sum(axis=1)
    assert fastloss.kl_divergence(t, p, **kw) == pytest.approx(ratio(kl, w), rel=1e-14)
    mse = ((t - p) ** 2).mean(axis=1)
    assert fastloss.mean_squared_error(t, p, **kw) == pytest.approx(ratio(mse, w), rel=1e-14)
    z, q = np.array([1.0, 0.0, 1.0]), np.array([0.3, 0.6, 0.9])
    bce = -(z * np.log(q) + (1 - z) * np.log(1 - q))
    assert fastloss.binary_cross_entropy(z, q, **kw) == pytest.approx(ratio(bce, w), rel=1e-14)


def test_sum_still_overflows_and_no_warning_is_left_over():
    w = np.array([1e308, 1e308, 1e308])
    with np.errstate(over="raise"):  # the redo does not trip an overflow of its own
        m = fastloss.sparse_categorical_cross_entropy(Y, X, from_logits=True, sample_weight=w,
                                                      backend="numpy")
    assert np.isfinite(m)
    s = fastloss.sparse_categorical_cross_entropy(Y, X, from_logits=True, sample_weight=w,
                                                  reduction="sum")
    assert s == np.inf  # the sum itself is beyond float64: inf is its value


def test_non_finite_losses_stay_non_finite():
    x = X.copy()
    x[1, 0] = np.nan
    w = np.array([1e308, 1e308, 1e308])
    assert np.isnan(fastloss.sparse_categorical_cross_entropy(Y, x, from_logits=True,
                                                              sample_weight=w))


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradients_survive_huge_weights(backend):
    """The fused loss+gradient functions give the weighted mean and ``w_i / sum w`` times each
    sample's gradient, not NaN and zeros, when the weights' float64 sums overflow."""
    w = np.array([1e308, 1e308, 2e307])
    loss, grad = fastloss.sparse_categorical_cross_entropy_grad(Y, X, sample_weight=w,
                                                                backend=backend)
    assert loss == pytest.approx(ratio(sparse_ce_rows(X, Y), w), rel=1e-14)
    p = np.exp(X - X.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    share = np.ldexp(w, -1100) / math.fsum(np.ldexp(w, -1100).tolist())
    want = share[:, None] * (p - np.eye(3)[Y])
    np.testing.assert_allclose(grad, want, rtol=1e-13, atol=0)
    z, x = np.array([1.0, 0.0, 1.0]), np.array([0.3, -2.0, 4.0])  # logits
    bce = np.maximum(x, 0) - x * z + np.log1p(np.exp(-np.abs(x)))
    loss, grad = fastloss.binary_cross_entropy_grad(z, x, sample_weight=w, backend=backend)
    assert loss == pytest.approx(ratio(bce, w), rel=1e-14)
    np.testing.assert_allclose(grad, share * (1 / (1 + np.exp(-x)) - z), rtol=1e-13, atol=0)
