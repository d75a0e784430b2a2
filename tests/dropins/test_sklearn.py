"""``fastloss.sklearn.log_loss`` against ``sklearn.metrics.log_loss``.

Per-sample values are ``-log`` of the same clipped value: correctly rounded in
fastloss, NumPy's faithful float32 ``log`` in scikit-learn, so within 1 ulp
(float64: ``rtol=1e-12``). A weighted float32 average (NumPy averages in
float64) is therefore within ``eps32`` relative; an unweighted one adds
scikit-learn's float32 pairwise ``np.mean``: ``log2(n) * eps32`` relative (we
allow 2x). Small inputs are within 1 ulp.
"""

import math
import warnings

import numpy as np
import pytest

import fastloss
import fastloss.sklearn as FK
from testutil import require, ulp_diff
EPS32 = float(np.finfo(np.float32).eps)


@pytest.fixture(scope="module")
def metrics():
    return require("sklearn.metrics")


def probs(r, n, c, dtype=np.float64):
    e = np.exp(r.standard_normal((n, c)) * 2)
    return (e / e.sum(axis=1, keepdims=True)).astype(dtype)


def agree(got, ref, dtype, n, weighted):
    assert isinstance(got, float)
    if dtype == np.float64:
        assert got == pytest.approx(ref, rel=1e-12, abs=0)
    elif weighted:
        assert got == pytest.approx(ref, rel=EPS32, abs=0)
    else:
        assert got == pytest.approx(ref, rel=(2 * max(math.log2(n), 1) + 1) * EPS32, abs=0)
        assert np.float32(got) == got  # a float32 value, as scikit-learn returns


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
def test_multiclass(metrics, dtype, normalize, weighted):
    r = np.random.default_rng(1)
    n, c = 500, 6
    P = probs(r, n, c, dtype)
    P[0] = 0
    P[0, 2] = 1  # exact 0 and 1: clipped at eps
    P[1] = [1, 0, 0, 0, 0, 0]
    y = r.integers(0, c, n)
    y[1] = 3  # p = 0 for the true class: -log(eps)
    w = r.uniform(0, 3, n) if weighted else None
    got = FK.log_loss(y, P, normalize=normalize, sample_weight=w)
    ref = metrics.log_loss(y, P, normalize=normalize, sample_weight=w)
    agree(got, ref, dtype, n, weighted)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_binary_and_labels(metrics, dtype):
    r = np.random.default_rng(2)
    n = 300
    p = r.random(n).astype(dtype)
    p[:4] = [0, 1, 0, 1]
    yl = np.array(["no", "yes"])[r.integers(0, 2, n)]
    yl[:4] = ["yes", "no", "no", "yes"]
    for y_proba in (p, p[:, None], np.stack([1 - p, p], axis=1)):
        got = FK.log_loss(yl, y_proba)
        agree(got, metrics.log_loss(yl, y_proba), dtype, n, False)
    # labels given, strings, booleans, an unsorted labels list (warns)
    P = probs(r, n, 3, dtype)
    ys = np.array(["b", "a", "c"])[r.integers(0, 3, n)]
    agree(FK.log_loss(ys, P), metrics.log_loss(ys, P), dtype, n, False)
    yb = r.integers(0, 2, n).astype(bool)
    agree(FK.log_loss(yb, p), metrics.log_loss(yb, p), dtype, n, False)
    y2 = r.integers(0, 2, n)
    P4 = probs(r, n, 4, dtype)
    agree(FK.log_loss(y2, P4, labels=[0, 1, 2, 3]), metrics.log_loss(y2, P4, labels=[0, 1, 2, 3]),
          dtype, n, False)
    with pytest.warns(UserWarning, match="ordered lexicographically"):
        got = FK.log_loss(y2, P4[:, :2] / P4[:, :2].sum(1, keepdims=True), labels=[1, 0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = metrics.log_loss(y2, P4[:, :2] / P4[:, :2].sum(1, keepdims=True), labels=[1, 0])
    agree(got, ref, dtype, n, False)


def test_small_float32_within_one_ulp(metrics):
    P = np.float32([[0.1, 0.9], [0.9, 0.1], [0.8, 0.2], [0.35, 0.65]])
    y = ["spam", "ham", "ham", "spam"]
    got, ref = FK.log_loss(y, P), metrics.log_loss(y, P)
    assert ulp_diff(np.float32(got), np.float32(ref)) <= 1
    # float32(0.1) + float32(0.9) misses 1 by more than sqrt(eps64): both warn
    with pytest.warns(UserWarning, match="do not sum to one"):
        ours = FK.log_loss(y, P.astype(np.float64))
    with pytest.warns(UserWarning, match="do not sum to one"):
        assert ours == metrics.log_loss(y, P.astype(np.float64))


def test_indicator_and_clip_by_dtype(metrics):
    r = np.random.default_rng(3)
    Y = (r.random((50, 4)) < 0.4).astype(int)
    P = probs(r, 50, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert FK.log_loss(Y, P) == pytest.approx(metrics.log_loss(Y, P), rel=1e-12)
    # the per-sample cap depends on the dtype: -log(eps)
    y, p = [1, 0], np.array([0.0, 1.0])
    assert FK.log_loss(y, p) == pytest.approx(-math.log(np.finfo(np.float64).eps), rel=1e-12)
    assert FK.log_loss(y, p.astype(np.float32)) == pytest.approx(
        -math.log(np.finfo(np.float32).eps), rel=1e-6)
    assert FK.log_loss(y, p.astype(np.float32)) == metrics.log_loss(y, p.astype(np.float32))


def test_warnings_and_errors(metrics):
    P = [[0.1, 0.9], [0.9, 0.1], [0.8, 0.2], [0.35, 0.65]]
    with pytest.warns(UserWarning, match="do not sum to one"):
        got = FK.log_loss([1, 1, 2, 2], [[0.5, 0.6], [0, 1], [0, 1], [1, 0]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert got == metrics.log_loss([1, 1, 2, 2], [[0.5, 0.6], [0, 1], [0, 1], [1, 0]])
    with pytest.warns(FutureWarning, match="renamed to `y_proba`"):
        assert FK.log_loss([1, 1, 2, 2], y_pred=P) == pytest.approx(
            metrics.log_loss([1, 1, 2, 2], P), rel=1e-12)
    bad = [
        (([0.5, 1.0, 1.0, 0.5], P), {}),
        (([1, 1, 1, 1], P), {}),
        (([1, 1, 1, 1], P), {"labels": [1]}),
        (([1, 1, 2, 3], P), {}),
        (([1, 1, 2, 3], P), {"labels": [1, 2, 3]}),
        (([1, 1, 2, 5], P), {"labels": [1, 2]}),
        (([1, 1, 2], P), {}),
        (([1, 1, 2, 2], [[1.5, 0], [0, 1], [0, 1], [1, 0]]), {}),
        (([1, 1, 2, 2], [[-0.5, 1], [0, 1], [0, 1], [1, 0]]), {}),
        (([1, 1, 2, 2], [[np.nan, 0], [0, 1], [0, 1], [1, 0]]), {}),
        (([1, 1, 2, 2], [[np.inf, 0], [0, 1], [0, 1], [1, 0]]), {}),
        (([1, 1, 2, 2], np.zeros((4, 2, 1))), {}),
        (([], np.zeros((0, 2))), {}),
        (([1, 1, 2, 2], P), {"sample_weight": [0, 0, 0, 0]}),
        (([1, 1, 2, 2], P), {"sample_weight": [1, 2, 3]}),
        (([1, 1, 2, 2], P), {"sample_weight": [1, np.nan, 3, 4]}),
        (([1, 1, 2, 2], P), {"sample_weight": 2.0}),
        (([1, 1, 2, 2], 0.5), {}),
        (([1, 1, 2, 2], P), {"y_pred": P}),
        (([1, "a", 1, "a"], np.array(P)), {}),
    ]
    for args, kw in bad:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pytest.raises(Exception) as theirs:
                metrics.log_loss(*args, **kw)
            with pytest.raises(ValueError if isinstance(theirs.value, ValueError)
                               else type(theirs.value)):
                FK.log_loss(*args, **kw)
    with pytest.raises(ZeroDivisionError):
        FK.log_loss([1, 1, 2, 2], P, sample_weight=[1, -1, 0, 0])


def test_every_backend_gives_the_same_result(backend, monkeypatch):
    r = np.random.default_rng(4)
    P = probs(r, 200, 5, np.float32)
    y = r.integers(0, 5, 200)
    monkeypatch.setenv("FASTLOSS_BACKEND", "numpy")
    fastloss.refresh_config()  # the environment is read once
    ref = [FK.log_loss(y, P), FK.log_loss(y % 2, P[:, 0])]
    monkeypatch.setenv("FASTLOSS_BACKEND", backend)
    fastloss.refresh_config()  # the environment is read once
    assert [FK.log_loss(y, P), FK.log_loss(y % 2, P[:, 0])] == ref


def test_array_api_sample_weight_under_dispatch(monkeypatch):
    # array_api_strict arrays have no len(): the sample_weight check used it
    xp = require("array_api_strict")
    sklearn = require("sklearn")
    from sklearn.metrics import log_loss as sk_log_loss

    monkeypatch.setenv("SCIPY_ARRAY_API", "1")  # scikit-learn's array-API mode needs it
    y = np.array([0, 1, 1, 0, 2])
    p = np.array([[.8, .1, .1], [.3, .6, .1], [.4, .5, .1], [.9, .05, .05], [.2, .2, .6]])
    w = np.array([1.0, 2.0, 0.5, 1.0, 3.0])
    with sklearn.config_context(array_api_dispatch=True):
        for conv in (xp.asarray, require("torch").asarray):
            args = (conv(y), conv(p))
            for normalize in (True, False):
                ref = sk_log_loss(*args, sample_weight=conv(w), normalize=normalize)
                got = FK.log_loss(*args, sample_weight=conv(w), normalize=normalize)
                assert type(got) is type(ref) is float
                assert got == pytest.approx(ref, rel=1e-14)
            # numpy labels with array-API probabilities and weights (mixed namespaces)
            got = FK.log_loss(y, conv(p), sample_weight=conv(w))
            assert got == pytest.approx(sk_log_loss(y, p, sample_weight=w), rel=1e-14)
    with pytest.raises(ValueError, match=r"inconsistent numbers of samples: \[5, 5, 4\]"):
        FK.log_loss(y, xp.asarray(p), sample_weight=xp.asarray(w[:4]))


def test_containers_as_sklearn(metrics):
    # scikit-learn's check_array: pandas keeps float32, torch/TF (dtypes that are not
    # NumPy's) become float64 and may then warn that float32 rows do not sum to one
    pd = require("pandas")
    torch = require("torch")
    tf = require("tensorflow")
    y = np.array([0, 1, 1, 0, 2])
    p = np.array([[.8, .1, .1], [.3, .6, .1], [.4, .5, .1], [.9, .05, .05], [.2, .2, .6]])
    w = np.array([1.0, 2, .5, 1, 3])

    def f32(a):
        return a.astype(np.float32) if a.dtype.kind == "f" else a

    convs = [lambda a: a.tolist(), lambda a: pd.DataFrame(a) if a.ndim == 2 else pd.Series(a),
             tf.constant, torch.tensor, lambda a: pd.DataFrame(f32(a)) if a.ndim == 2 else
             pd.Series(a), lambda a: tf.constant(f32(a)), lambda a: torch.tensor(f32(a))]
    for conv in convs:
        for sw in (None, w):
            args = (conv(y), conv(p))
            kw = {"sample_weight": None if sw is None else conv(sw)}
            with warnings.catch_warnings(record=True) as wr_ref:
                warnings.simplefilter("always")
                ref = metrics.log_loss(*args, **kw)
            with warnings.catch_warnings(record=True) as wr:
                warnings.simplefilter("always")
                got = FK.log_loss(*args, **kw)
            assert type(got) is type(ref) is float
            assert got == pytest.approx(ref, rel=4e-16 if sw is None else 1e-15)
            assert [str(m.message) for m in wr] == [str(m.message) for m in wr_ref]


def test_pandas_indexes_are_positional_as_in_sklearn(metrics):
    # scikit-learn reads pandas by position (np.asarray): indexes that differ, are
    # permuted or disjoint, are not aligned, for y_true, y_pred and sample_weight (#17)
    pd = require("pandas")
    r = np.random.default_rng(4)
    n = 7
    y = pd.Series([0, 1, 2, 0, 1, 2, 1], index=range(n))
    P = probs(r, n, 3)
    w = r.uniform(0.5, 2.0, n)
    for idx in (range(n)[::-1], range(100, 100 + n)):
        Pd = pd.DataFrame(P, index=idx, columns=["c", "b", "a"])  # column names ignored too
        wd = pd.Series(w, index=list(idx)[::-1])
        for kw in ({}, {"sample_weight": wd}):
            got, ref = FK.log_loss(y, Pd, **kw), metrics.log_loss(y, Pd, **kw)
            positional = metrics.log_loss(y.to_numpy(), P, sample_weight=w if kw else None)
            assert ref == pytest.approx(positional, rel=1e-15)  # the framework's own rule
            agree(got, ref, np.float64, n, bool(kw))
        yb = pd.Series([0, 1, 1, 0, 1, 0, 0], index=idx)
        pb = pd.Series(r.uniform(0.05, 0.95, n), index=range(n))  # binary, 1-D
        agree(FK.log_loss(yb, pb), metrics.log_loss(yb, pb), np.float64, n, False)
        assert metrics.log_loss(yb, pb) == pytest.approx(
            metrics.log_loss(yb.to_numpy(), pb.to_numpy()), rel=1e-15)
