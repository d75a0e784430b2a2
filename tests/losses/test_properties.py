"""Property tests (hypothesis): identities that must hold for any input."""

import numpy as np
import pytest
import scipy.special as sp
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import fastloss as fl

EPS64 = float(np.finfo(np.float64).eps)
SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)


@st.composite
def logits_and_labels(draw, max_rows=12, max_cols=9, elements=finite):
    n = draw(st.integers(1, max_rows))
    c = draw(st.integers(1, max_cols))
    x = draw(hnp.arrays(np.float64, (n, c), elements=elements))
    y = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, c - 1)))
    return x, y


@SETTINGS
@given(logits_and_labels())
def test_sparse_equals_categorical_onehot_equals_neg_log_softmax(backend, xy):
    x, y = xy
    n, c = x.shape
    sparse = fl.sparse_categorical_cross_entropy(y, x, from_logits=True, reduction="none",
                                                 backend=backend)
    onehot = np.eye(c)[y]
    cat = fl.categorical_cross_entropy(onehot, x, from_logits=True, reduction="none",
                                       backend=backend)
    nls = -fl.log_softmax(x, axis=1, backend=backend)[np.arange(n), y]
    # the same quantity, (max - x_y) + log1p(sum_{j != argmax} exp(x_j - max)), three ways
    scale = np.abs(x).max(axis=1) + 1.0
    np.testing.assert_allclose(sparse, cat, rtol=4 * EPS64, atol=0)
    np.testing.assert_allclose(sparse, nls, rtol=4 * EPS64, atol=4 * EPS64 * scale.max())
    # and the reductions agree too
    for red in ("sum", "mean"):
        a = fl.sparse_categorical_cross_entropy(y, x, from_logits=True, reduction=red,
                                                backend=backend)
        b = fl.categorical_cross_entropy(onehot, x, from_logits=True, reduction=red,
                                         backend=backend)
        assert a == pytest.approx(b, rel=4 * EPS64 * c, abs=1e-300)


@SETTINGS
@given(logits_and_labels(elements=st.floats(-30, 30)), st.floats(0.0, 1.0))
def test_sparse_label_smoothing_equals_smoothed_categorical(xy, ls):
    x, y = xy
    c = x.shape[1]
    sparse = fl.sparse_categorical_cross_entropy(y, x, from_logits=True, label_smoothing=ls,
                                                 reduction="none")
    cat = fl.categorical_cross_entropy(np.eye(c)[y], x, from_logits=True, label_smoothing=ls,
                                       reduction="none")
    np.testing.assert_allclose(sparse, cat, rtol=1e-13, atol=1e-13)


# logsumexp shift invariance: use values on a 2**-10 grid and integer shifts so that
# x + c is exact; then lse(x + c) == lse(x) + c up to the rounding of the results.
grid = st.integers(-100 * 1024, 100 * 1024).map(lambda k: k / 1024.0)


@SETTINGS
@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=3, max_side=6), elements=grid),
       st.integers(-10**6, 10**6))
def test_logsumexp_shift_invariance(backend, x, c):
    lhs = fl.logsumexp(x + c, backend=backend)
    rhs = fl.logsumexp(x, backend=backend) + c
    assert abs(lhs - rhs) <= 4 * EPS64 * (abs(lhs) + abs(c) + 1)
    # per axis as well
    lhs1 = fl.logsumexp(x + c, axis=-1, backend=backend)
    rhs1 = fl.logsumexp(x, axis=-1, backend=backend) + c
    assert np.all(np.abs(lhs1 - rhs1) <= 4 * EPS64 * (np.abs(lhs1) + abs(c) + 1))


@SETTINGS
@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=3, max_side=6),
                  elements=finite))
def test_logsumexp_bounds(x):
    # max <= lse <= max + log(n)
    lse = fl.logsumexp(x)
    m = x.max()
    assert m <= lse <= m + np.log(x.size) + 4 * EPS64 * (abs(m) + 1)


@SETTINGS
@given(hnp.arrays(np.float64, st.tuples(st.integers(1, 8), st.integers(1, 8)),
                  elements=st.floats(-700, 700)))
def test_softmax_log_softmax_consistent(backend, x):
    s = fl.softmax(x, axis=1, backend=backend)
    ls = fl.log_softmax(x, axis=1, backend=backend)
    np.testing.assert_allclose(s.sum(axis=1), 1.0, rtol=8 * EPS64 * x.shape[1])
    np.testing.assert_allclose(ls, sp.log_softmax(x, axis=1), rtol=1e-13,
                               atol=8 * EPS64 * (np.abs(x).max() + 1))
    lse = fl.logsumexp(x, axis=1, backend=backend)
    np.testing.assert_allclose(ls, x - lse[:, None], rtol=1e-13,
                               atol=8 * EPS64 * (np.abs(x).max() + 1))


# BCE on logits == BCE on sigmoid(logits) where the sigmoid is not saturated. With
# |x| <= 8, p = expit(x) carries a relative error eps, which moves -log(p) by <= eps
# and -log(1 - p) by <= eps * p / (1 - p) <= eps * e^8 ~ 7e-13 (absolute).
@SETTINGS
@given(hnp.arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 6)),
                  elements=st.floats(-8, 8)),
       st.data())
def test_bce_logits_equals_bce_on_sigmoid(backend, x, data):
    z = data.draw(hnp.arrays(np.float64, x.shape, elements=st.floats(0, 1)))
    p = sp.expit(x)
    assume(np.all((p > 0) & (p < 1)))
    a = fl.binary_cross_entropy(z, x, from_logits=True, reduction="none", backend=backend)
    b = fl.binary_cross_entropy(z, p, reduction="none", backend=backend)
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=EPS64 * (np.exp(8) + 1) * 2)


@SETTINGS
@given(hnp.arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 6)),
                  elements=st.floats(-8, 8)),
       st.data())
def test_bce_pos_weight_is_a_weight_on_the_positive_term(x, data):
    z = data.draw(hnp.arrays(np.float64, x.shape, elements=st.sampled_from([0.0, 1.0])))
    # pos_weight below 1e-3 is test_bce_tiny_pos_weight_keeps_relative_accuracy's job
    pw = data.draw(hnp.arrays(np.float64, (x.shape[1],),
                              elements=st.just(0.0) | st.floats(1e-3, 10)))
    got = fl.binary_cross_entropy(z, x, from_logits=True, pos_weight=pw, reduction="none")
    base = fl.binary_cross_entropy(z, x, from_logits=True, reduction="none")
    # hard labels: positives scale by pw, negatives are unchanged
    exp = np.where(z == 1, pw[None, :] * base, base)
    np.testing.assert_allclose(got, exp, rtol=1e-13, atol=1e-300)


@pytest.mark.parametrize("pw", [1e-6, 1e-10, 1e-20])
def test_bce_tiny_pos_weight_keeps_relative_accuracy(backend, pw):
    # z = 1: the loss is pw * softplus(-x) exactly. Forming the coefficient as
    # 1 + (pw - 1) * z cancels (1 + (1e-10 - 1) has a relative error ~1e-6);
    # pw * z + (1 - z) does not.
    x = np.array([0.0, 2.0, -3.0])
    got = fl.binary_cross_entropy(np.ones(3), x, from_logits=True, pos_weight=pw,
                                  reduction="none", backend=backend)
    exp = pw * np.logaddexp(0.0, -x)
    np.testing.assert_allclose(got, exp, rtol=1e-13, atol=0)


@SETTINGS
@given(logits_and_labels(elements=st.floats(-50, 50)), st.data())
def test_weighted_mean_is_sum_over_weight_sum(xy, data):
    x, y = xy
    n, c = x.shape
    sw = data.draw(hnp.arrays(np.float64, (n,), elements=st.floats(0, 5)))
    cw = data.draw(hnp.arrays(np.float64, (c,), elements=st.floats(0, 5)))
    w = sw * cw[y]
    assume(w.sum() > 0)
    kw = dict(from_logits=True, sample_weight=sw, class_weight=cw)
    none = fl.sparse_categorical_cross_entropy(y, x, reduction="none", **kw)
    plain = fl.sparse_categorical_cross_entropy(y, x, reduction="none", from_logits=True)
    np.testing.assert_allclose(none, w * plain, rtol=1e-15, atol=0)
    s = fl.sparse_categorical_cross_entropy(y, x, reduction="sum", **kw)
    m = fl.sparse_categorical_cross_entropy(y, x, reduction="mean", **kw)
    assert s == pytest.approx(np.sum(w * plain), rel=1e-13, abs=1e-300)
    assert m == pytest.approx(np.sum(w * plain) / w.sum(), rel=1e-13, abs=1e-300)


@SETTINGS
@given(hnp.arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 6)),
                  elements=st.floats(0, 1)),
       st.data())
def test_kl_is_cross_entropy_minus_entropy(t, data):
    p = data.draw(hnp.arrays(np.float64, t.shape, elements=st.floats(1e-6, 1)))
    kl = fl.kl_divergence(t, p, reduction="none")
    ce = fl.categorical_cross_entropy(t, p, reduction="none")
    ent = -sp.xlogy(t, t).sum(axis=1)
    np.testing.assert_allclose(kl, ce - ent, rtol=1e-12,
                               atol=1e-13 * (np.abs(ce) + np.abs(ent) + 1).max())
