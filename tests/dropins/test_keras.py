"""``fastloss.keras`` against Keras 3 (TensorFlow backend) and ``fastloss.keras.legacy``
against tf.keras 2.x semantics.

Tolerances (float32 unless said). Keras computes every step in float32, fastloss
the sums, logs and log-sum-exps in float64 (module docstring, deviations 1-3):

* BCE on probabilities with hard labels, one label per sample: one clipped
  ``log``, so 1 ulp (TF's float32 log is faithful; fastloss rounds once).
* Anything with a log-sum-exp (sparse / categorical CE, from logits or from
  ``log(clip(p))``): TF rounds ``x - max``, each ``exp``, a sum of ``C`` terms and
  its log, so its error is below ``eps * (|x_y - max| + |lse - max| + C)``;
  allowed: ``K = 4`` times that.
* The renormalisation ``p / sum(p)`` (categorical on probabilities): one
  rounding of each ``q_c`` and ``C`` of the sum, ``eps * (C + 2)`` relative in
  ``q``, i.e. absolute in ``log q``: scale ``sum_c t_c * (|log q_c| + C + 2)``.
* KL ``t * log(t / p)`` per element (float32 in both): scale
  ``sum_c |t_c| * (|log(t_c / p_c)| + 2)`` (the log of a correctly rounded
  quotient, whose last bit NumPy and Eigen may round differently).
* MSE: Keras rounds ``t - p``, its square and a sum of ``C`` squares: scale
  ``(C + 2) * mean(d^2)``.
* Reductions add Keras's float32 summation error ``log2(N) * eps * sum|c_i|``.

float64 (``dtype="float64"``): ``rtol=1e-12`` on the same scales.
"""

import math

import numpy as np
import pytest

import fastloss
import fastloss.keras as FK
import fastloss.keras.legacy as FKL
from testutil import require, ulp_diff
pytestmark = pytest.mark.frameworks

EPS32 = float(np.finfo(np.float32).eps)
K = 4
REDUCTIONS = ["sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", None]


def check(got, exp, scale, dtype=np.float32, k=K):
    got = np.asarray(got, dtype=np.float64)
    exp = np.asarray(exp, dtype=np.float64)
    assert got.shape == exp.shape, (got.shape, exp.shape)
    assert np.array_equal(np.isnan(got), np.isnan(exp)), (got, exp)
    fin = ~np.isnan(exp)
    eps = EPS32 if dtype == np.float32 else float(np.finfo(np.float64).eps)
    bound = k * eps * np.broadcast_to(np.asarray(scale, dtype=np.float64), exp.shape)[fin]
    if dtype == np.float64:
        bound = np.maximum(bound, 1e-12 * np.abs(exp[fin]))
    with np.errstate(invalid="ignore"):
        err = np.abs(got[fin] - exp[fin])
    ok = (err <= bound) | (got[fin] == exp[fin])
    assert ok.all(), ("max err / bound", float(np.max(err / np.maximum(bound, 1e-300))))


def lse_scale(x, y):
    """Per-row scale of a float32 softmax cross-entropy (module docstring)."""
    x = np.asarray(x, dtype=np.float64)
    m = x.max(axis=-1)
    lse = m + np.log(np.exp(x - m[..., None]).sum(axis=-1))
    xy = np.take_along_axis(x, np.asarray(y)[..., None], axis=-1)[..., 0]
    return np.abs(xy - m) + np.abs(lse - m) + x.shape[-1]


def reduced_scale(scale, values, weights, reduction):
    """Scale of a reduction of per-sample values (Keras sums in float32)."""
    values = np.abs(np.asarray(values, dtype=np.float64))
    w = np.ones_like(values) if weights is None else np.abs(np.asarray(weights, np.float64))
    n = max(values.size, 2)
    s = np.sum(scale * w) + math.log2(n) * np.sum(values * w)
    if reduction in ("sum_over_batch_size", "mean"):
        return s / values.size
    if reduction == "mean_with_sample_weight":
        return s / (np.sum(w) if weights is not None else values.size)
    return s


def keras_call(keras, cls_name, kwargs, y_true, y_pred, sample_weight=None, reduction=None,
               **extra):
    loss = getattr(keras.losses, cls_name)(reduction=reduction, **kwargs, **extra)
    return np.asarray(loss(y_true, y_pred, sample_weight=sample_weight))


@pytest.fixture(scope="module")
def data():
    r = np.random.default_rng(11)
    n, c = 64, 5
    logits = (r.standard_normal((n, c)) * 4).astype(np.float32)
    logits[0] = [60, -60, 0, 1, 2]
    logits[1, 3] = 30.0
    labels = r.integers(0, c, n)
    e = np.exp(r.standard_normal((n, c)) * 2)
    probs = (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
    probs[2] = [0, 1, 0, 0, 0]
    probs[3] = [1, 0, 0, 0, 0]
    e2 = np.exp(r.standard_normal((n, c)))
    targets = (e2 / e2.sum(axis=1, keepdims=True)).astype(np.float32)
    onehot = np.eye(c, dtype=np.float32)[labels]
    z = (r.random((n, c)) < 0.4).astype(np.float32)
    unnorm = (probs * r.uniform(0.3, 1.0, (n, 1))).astype(np.float32)  # Keras renormalises
    return dict(logits=logits, labels=labels, probs=probs, targets=targets, onehot=onehot, z=z,
                unnorm=unnorm,
                sw=r.uniform(0.1, 2.0, n).astype(np.float32), n=n, c=c)


# --------------------------------------------------------------------------- binary


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("ls", [0.0, 0.2])
def test_binary_crossentropy(keras, data, reduction, from_logits, ls):
    y = data["z"]
    p = data["logits"] if from_logits else data["probs"]
    sw = data["sw"]
    kw = dict(from_logits=from_logits, label_smoothing=ls)
    for weights in (None, sw):
        ours = FK.BinaryCrossentropy(reduction=reduction, **kw)(y, p, sample_weight=weights)
        ref = keras_call(keras, "BinaryCrossentropy", kw, y, p, weights, reduction)
        per = keras_call(keras, "BinaryCrossentropy", kw, y, p, None, None)
        # TF's logits BCE rounds relu(x) - x*z (size |x|) and log1p(exp(-|x|))
        el = (np.abs(p.astype(np.float64)) + 1 if from_logits else
              np.abs(keras.ops.convert_to_numpy(keras.ops.binary_crossentropy(
                  y, np.clip(p, 1e-7, 1 - 1e-7)))) + 1e-30)
        scale = el.mean(axis=-1) + 5 * np.abs(per)  # the mean over 5 labels adds 5 roundings
        if reduction is None:
            check(ours, ref, scale * (1 if weights is None else weights))
            assert ours.dtype == np.float32 and ours.shape == (data["n"],)
        else:
            check(ours, ref, reduced_scale(scale, per, weights, reduction))
            assert isinstance(ours, np.float32)


def test_binary_one_label_is_within_one_ulp(keras, data):
    y = data["z"][:, :1]
    p = data["probs"][:, :1]
    ours = FK.BinaryCrossentropy(reduction=None)(y, p)
    ref = keras_call(keras, "BinaryCrossentropy", {}, y, p, reduction=None)
    assert ulp_diff(ours, ref).max() <= 1


def test_binary_edges(keras):
    y = np.array([[1.0, 0.0, 1.0, 0.0, 1.0, 0.5]], np.float32)
    p = np.array([[0.0, 1.0, 1.0, 0.0, 1.5, -0.2]], np.float32)  # Keras clips, never raises
    for fl in (False, True):
        for red in (None, "sum"):
            ours = FK.BinaryCrossentropy(from_logits=fl, reduction=red)(y, p)
            check(ours, keras_call(keras, "BinaryCrossentropy", dict(from_logits=fl), y, p,
                                   reduction=red), 100.0)
    v = FK.binary_crossentropy(np.float32([[1], [0]]), np.float32([[0], [1]]))
    check(v, [-math.log(np.float32(1e-7)), -math.log(1 - np.float32(1 - np.float32(1e-7)))],
          [16.2, 16.0], k=1)  # the asymmetric caps 16.118 and 15.942
    nan = np.array([[np.nan, 0.5]], np.float32)
    assert np.isnan(FK.BinaryCrossentropy()(y[:, :2], nan))
    empty = FK.BinaryCrossentropy()(np.zeros((0, 3)), np.zeros((0, 3)))
    assert empty.shape == (0,)
    ref = keras_call(keras, "BinaryCrossentropy", {}, np.zeros((0, 3)), np.zeros((0, 3)),
                     reduction="sum_over_batch_size")
    assert ref.shape == (0,)
    check(FK.BinaryCrossentropy(reduction="mean_with_sample_weight")(
        y[:, :2], p[:, :2] * 0 + 0.5, sample_weight=[0.0]), 0.0, 1.0)  # divide_no_nan


def test_binary_1d_sample_weight_broadcasts_like_keras(keras):
    y, p, w = [1.0, 1.0, 0.0], [0.7, 0.61, 0.04], [1.0, 2.0, 3.0]
    for red in REDUCTIONS:
        ours = FK.BinaryCrossentropy(reduction=red)(y, p, sample_weight=w)
        ref = keras_call(keras, "BinaryCrossentropy", {}, y, p, w, red)
        check(ours, ref, 8.0)


@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("balancing", [False, True])
def test_binary_focal(keras, data, from_logits, balancing):
    y = data["z"]
    p = data["logits"] / 4 if from_logits else data["probs"]
    kw = dict(from_logits=from_logits, apply_class_balancing=balancing, gamma=2.0, alpha=0.3,
              label_smoothing=0.1)
    for red in (None, "sum_over_batch_size"):
        ours = FK.BinaryFocalCrossentropy(reduction=red, **kw)(y, p)
        ref = keras_call(keras, "BinaryFocalCrossentropy", kw, y, p, reduction=red)
        per = keras_call(keras, "BinaryFocalCrossentropy", kw, y, p, reduction=None)
        # TF's float32 sigmoid is not correctly rounded and 1 - p_t cancels: a
        # deviation of d in p_t moves (1-p_t)^2 by 2 d (1-p_t); with d ~ 2 eps, the
        # per-element scale is bce * (1 + 4 / (1 - p_t)) (+ the mean over 5 labels).
        yy = y * 0.9 + 0.05
        s = 1 / (1 + np.exp(-p.astype(np.float64))) if from_logits else p.astype(np.float64)
        one_m = np.abs(yy * (1 - s) + (1 - yy) * s) + 1e-30
        bce = np.abs(p.astype(np.float64)) + 2 if from_logits else 17.0
        scale = (bce * (1 + 4 / one_m) * one_m ** 2).mean(axis=-1) + 5 * np.abs(per)
        check(ours, ref, scale if red is None else reduced_scale(scale, per, None, red))


def test_focal_from_logits_uses_the_stable_bce(keras):
    y, x = np.float32([[1.0, 0.0]]), np.float32([[-40.0, 40.0]])
    ours = FK.binary_focal_crossentropy(y, x, gamma=0.0, from_logits=True)
    assert ours == pytest.approx(40.0, rel=1e-7)  # not the clipped 16.1
    check(ours, keras.losses.binary_focal_crossentropy(y, x, gamma=0.0, from_logits=True), 40.0)


# --------------------------------------------------------------------------- categorical


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("ls", [0.0, 0.1])
def test_categorical(keras, data, reduction, from_logits, ls):
    y = data["targets"] if ls else data["onehot"]
    p = data["logits"] if from_logits else data["unnorm"]
    kw = dict(from_logits=from_logits, label_smoothing=ls)
    ours = FK.CategoricalCrossentropy(reduction=reduction, **kw)(y, p, sample_weight=data["sw"])
    ref = keras_call(keras, "CategoricalCrossentropy", kw, y, p, data["sw"], reduction)
    per = keras_call(keras, "CategoricalCrossentropy", kw, y, p, None, None)
    yy = y.astype(np.float64) * (1 - ls) + ls / y.shape[-1]
    if from_logits:
        x = p.astype(np.float64)
        scale = (yy * lse_scale(x, np.argmax(yy, axis=1))[:, None]).sum(1) + \
            (yy * np.abs(x)).sum(1)
    else:
        q = np.clip(p / p.astype(np.float64).sum(1, keepdims=True), 1e-7, 1 - 1e-7)
        scale = (yy * (np.abs(np.log(q)) + p.shape[1] + 2)).sum(1)
    if reduction is None:
        check(ours, ref, scale * data["sw"])
    else:
        check(ours, ref, reduced_scale(scale, per, data["sw"], reduction))


def test_categorical_edges(keras):
    y = np.float32([[0, 1, 0], [1, 0, 0], [0, 0, 1]])
    p = np.float32([[0, 0, 0], [np.nan, 0.5, 0.5], [2.0, 1.0, 1.0]])  # 0/0, NaN, not normalised
    ours = FK.CategoricalCrossentropy(reduction=None)(y, p)
    check(ours, keras_call(keras, "CategoricalCrossentropy", {}, y, p, reduction=None), 20.0)
    with pytest.warns(SyntaxWarning):
        FK.categorical_crossentropy(np.float32([[1.0]]), np.float32([[0.5]]))
    with pytest.raises(ValueError):
        FK.categorical_crossentropy(np.float32([[1.0, 0.0]]), np.float32([[0.5, 0.2, 0.3]]))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("ignore_class", [None, 2])
def test_sparse(keras, data, reduction, from_logits, ignore_class):
    y = data["labels"]
    p = data["logits"] if from_logits else data["unnorm"]
    kw = dict(from_logits=from_logits, ignore_class=ignore_class)
    for weights in (None, data["sw"]):
        ours = FK.SparseCategoricalCrossentropy(reduction=reduction, **kw)(y, p, weights)
        ref = keras_call(keras, "SparseCategoricalCrossentropy", kw, y, p, weights, reduction)
        per = keras_call(keras, "SparseCategoricalCrossentropy", kw, y, p, None, None)
        x = p if from_logits else np.log(np.clip(p, 1e-7, 1 - 1e-7))
        scale = lse_scale(x, y)
        if reduction is None:
            check(ours, ref, scale * (1 if weights is None else weights))
        else:
            w = None if weights is None else weights
            if ignore_class is not None:
                valid = (y != ignore_class)
                w = valid * (1.0 if weights is None else weights)
                if reduction in ("sum_over_batch_size", "mean"):
                    w = w * len(y) / valid.sum()
            check(ours, ref, reduced_scale(scale, per, w, reduction))


def test_sparse_edges(keras):
    p = np.float32([[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]])
    for y, kw, red in [
        (np.array([-1, -1]), dict(ignore_class=-1), "sum_over_batch_size"),  # all ignored: 0
        (np.array([-1, -1]), dict(ignore_class=-1), None),
        (np.array([[1], [2]]), {}, None),  # (N, 1) labels
        (np.array([1.0, 2.0]), {}, "sum"),  # float labels
        (np.array([1, -1]), dict(ignore_class=-1), "mean_with_sample_weight"),
    ]:
        ours = FK.SparseCategoricalCrossentropy(reduction=red, **kw)(y, p, [2.0, 3.0])
        check(ours, keras_call(keras, "SparseCategoricalCrossentropy", kw, y, p, [2.0, 3.0], red),
              40.0)
    with pytest.raises(ValueError, match="valid range"):
        FK.SparseCategoricalCrossentropy()(np.array([1, 3]), p)
    x = np.float32([[np.nan, 0, 1], [0, 0, 0]])
    check(FK.sparse_categorical_crossentropy([0, 1], x, from_logits=True),
          keras.losses.sparse_categorical_crossentropy(np.array([0, 1]), x, from_logits=True),
          10.0)


# --------------------------------------------------------------------------- KL, MSE, dtypes


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_kl_divergence(keras, data, reduction):
    t = data["targets"].copy()
    t[4] = [0, 0, 1, 0, 0]
    p = data["probs"]
    ours = FK.KLDivergence(reduction=reduction)(t, p, sample_weight=data["sw"])
    ref = keras_call(keras, "KLDivergence", {}, t, p, data["sw"], reduction)
    per = keras_call(keras, "KLDivergence", {}, t, p, None, None)
    tc = np.clip(t.astype(np.float64), 1e-7, 1)
    pc = np.clip(p.astype(np.float64), 1e-7, 1)
    scale = (tc * (np.abs(np.log(tc / pc)) + 2)).sum(1)
    check(ours, ref, scale * data["sw"] if reduction is None else
          reduced_scale(scale, per, data["sw"], reduction))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mean_squared_error(keras, data, reduction):
    y, p = data["targets"], data["logits"]
    ours = FK.MeanSquaredError(reduction=reduction)(y, p, sample_weight=data["sw"])
    ref = keras_call(keras, "MeanSquaredError", {}, y, p, data["sw"], reduction)
    per = keras_call(keras, "MeanSquaredError", {}, y, p, None, None)
    scale = ((p.astype(np.float64) - y) ** 2).mean(1) * (p.shape[1] + 2)
    check(ours, ref, scale * data["sw"] if reduction is None else
          reduced_scale(scale, per, data["sw"], reduction))


def test_dtype_cast_and_float64(keras, data):
    """Loss objects cast float64 input to float32 (floatx) unless ``dtype="float64"``."""
    y64, p64 = data["onehot"].astype(np.float64), data["probs"].astype(np.float64)
    v = FK.CategoricalCrossentropy()(y64, p64)
    assert isinstance(v, np.float32)
    check(v, keras.losses.CategoricalCrossentropy()(y64, p64), 50.0)
    for cls, args in [("CategoricalCrossentropy", (y64, p64)),
                      ("SparseCategoricalCrossentropy", (data["labels"], p64)),
                      ("BinaryCrossentropy", (data["z"].astype(np.float64), p64)),
                      ("KLDivergence", (data["targets"].astype(np.float64), p64))]:
        ours = getattr(FK, cls)(dtype="float64", reduction=None)(*args)
        ref = np.asarray(getattr(keras.losses, cls)(dtype="float64", reduction=None)(*args))
        assert ours.dtype == np.float64 and ref.dtype == np.float64
        check(ours, ref, 40.0, dtype=np.float64)
    # functions keep float64 arrays' dtype, like keras.losses.* do
    f = FK.binary_crossentropy(data["z"].astype(np.float64), p64)
    assert f.dtype == np.float64
    # half precision is computed in float32 and rounded once (issue #17; was NotImplementedError)
    assert FK.BinaryCrossentropy(dtype="float16").dtype == "float16"
    with pytest.raises(ValueError, match="floating dtype"):
        FK.BinaryCrossentropy(dtype="int32")


def test_reduction_validation_and_config():
    with pytest.raises(ValueError, match="Invalid value for argument `reduction`"):
        FK.BinaryCrossentropy(reduction="batchmean")
    cfg = FK.SparseCategoricalCrossentropy(from_logits=True, ignore_class=3).get_config()
    assert cfg == {"name": "sparse_categorical_crossentropy", "reduction": "sum_over_batch_size",
                   "from_logits": True, "ignore_class": 3}
    assert FK.KLDivergence().name == "kl_divergence" and FK.KLDivergence().dtype == "float32"


def test_every_backend_gives_the_same_result(backend, data, monkeypatch):
    """The drop-ins run on whichever backend is selected; all give identical bits."""
    calls = [
        lambda: FK.SparseCategoricalCrossentropy(ignore_class=1)(data["labels"], data["probs"]),
        lambda: FK.BinaryCrossentropy(label_smoothing=0.1)(data["z"], data["probs"] * 1.2),
        lambda: FK.CategoricalCrossentropy(from_logits=True, reduction=None)(
            data["targets"], data["logits"]),
        lambda: FKL.BinaryCrossentropy()(data["z"], data["probs"]),
    ]
    monkeypatch.setenv("FASTLOSS_BACKEND", "numpy")
    fastloss.refresh_config()  # the environment is read once
    ref = [np.asarray(f()) for f in calls]
    monkeypatch.setenv("FASTLOSS_BACKEND", backend)
    fastloss.refresh_config()  # the environment is read once
    for f, r in zip(calls, ref):
        assert ulp_diff(np.asarray(f()), r).max() <= 1


# --------------------------------------------------------------------------- legacy (tf.keras 2)


def _np_bce_keras2(y, p):
    """tf_keras 2 backend.binary_crossentropy, written out in float32 NumPy."""
    e = np.float32(1e-7)
    p = np.clip(p, e, np.float32(1) - e)
    return -(y * np.log(p + e) + (np.float32(1) - y) * np.log(np.float32(1) - p + e))


def test_legacy_bce_double_epsilon(data):
    y, p = data["z"], data["probs"]
    per = FKL.BinaryCrossentropy(reduction="none")(y, p)
    el = _np_bce_keras2(y, p).astype(np.float64)
    check(per, el.mean(axis=1), el.mean(axis=1) + 5 * np.abs(el).mean(1))
    caps = FKL.binary_crossentropy(np.float32([[1], [0]]), np.float32([[0], [1]]))
    check(caps, _np_bce_keras2(np.float32([1, 0]), np.float32([0, 1])), [15.5, 15.4], k=1)
    assert 15.42 < caps[0] < 15.43 and 15.33 < caps[1] < 15.34
    check(FKL.BinaryCrossentropy()(y, p), el.mean(), 2 * math.log2(el.size) * el.mean())


def test_legacy_semantics():
    p = np.float32([[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]])
    # float64 arrays stay float64 (no floatx cast)
    assert FKL.BinaryCrossentropy()(np.array([1.0, 0.0]), np.array([0.7, 0.2])).dtype == np.float64
    # a (N,) target against (N, 1) probabilities broadcasts to (N, N), as in TF
    got = FKL.BinaryCrossentropy()(np.array([1.0, 0.0]), np.array([[0.7], [0.2]]))
    yb = np.array([[1.0, 0.0], [1.0, 0.0]])
    pb = np.array([[0.7, 0.7], [0.2, 0.2]])
    check(got, _np_bce_keras2(yb, pb).mean(), 8.0, dtype=np.float64)
    with pytest.raises(ValueError, match="same shape"):
        FKL.BinaryCrossentropy(from_logits=True)(np.array([1.0, 0.0]), np.array([[0.7], [0.2]]))
    # all-ignored batch: tf.keras scales the mask by total / 0 and gives NaN
    assert np.isnan(FKL.SparseCategoricalCrossentropy(ignore_class=-1)(np.array([-1, -1]), p))
    assert FKL.SparseCategoricalCrossentropy(ignore_class=-1, reduction="sum")(
        np.array([-1, -1]), p) == 0
    # empty batch: sum_over_batch_size is divide_no_nan(0, 0) = 0 (Keras 3: the empty array)
    assert FKL.BinaryCrossentropy()(np.zeros((0, 3)), np.zeros((0, 3))) == 0
    for bad in (None, "mean", "mean_with_sample_weight"):
        with pytest.raises(ValueError, match="Invalid Reduction Key"):
            FKL.BinaryCrossentropy(reduction=bad)
    with pytest.raises(ValueError, match="squeeze"):  # rank + 1 weights must end in 1
        FKL.BinaryCrossentropy()([1.0, 1.0, 0.0], [0.7, 0.61, 0.04], sample_weight=[1, 2, 3])
    # ignore_class with weights: sum(w * l) / valid
    v = FKL.SparseCategoricalCrossentropy(ignore_class=-1)(np.array([1, -1]), p, [2.0, 3.0])
    check(v, 2 * -math.log(np.float32(0.95)) + 0.0, 1.0)  # 2 * l0 * (2 / 1) / 2
    # argument order of the function: axis before ignore_class
    assert FKL.sparse_categorical_crossentropy(np.array([1, -1]), p, False, -1, -1)[1] == 0


def test_legacy_against_tf_keras(data):
    # tf_keras (Keras 2 for TF 2.16+): .ci/run installs it (--no-deps, matching TF's minor
    # version), so under FASTLOSS_REQUIRE_FRAMEWORKS=1 this comparison cannot be skipped
    tfk = require("tf_keras")
    L = tfk.losses
    y, p, lg, lab = data["z"], data["probs"], data["logits"], data["labels"]
    cases = [
        ("BinaryCrossentropy", {}, y, p), ("BinaryCrossentropy", {"label_smoothing": 0.2}, y, p),
        ("BinaryCrossentropy", {"from_logits": True}, y, lg),
        ("BinaryFocalCrossentropy", {"gamma": 2.0}, y, p),
        ("CategoricalCrossentropy", {"label_smoothing": 0.1}, data["onehot"], p),
        ("SparseCategoricalCrossentropy", {"ignore_class": 1}, lab, p),
        ("KLDivergence", {}, data["targets"], p), ("MeanSquaredError", {}, data["targets"], lg),
    ]
    for name, kw, a, b in cases:
        per = np.asarray(getattr(L, name)(reduction="none", **kw)(a, b))
        scale = 2 * (data["c"] + np.abs(per))  # the module-doc scales, bounded above
        for red in ("none", "auto", "sum"):
            ours = getattr(FKL, name)(reduction=red, **kw)(a, b, data["sw"])
            ref = np.asarray(getattr(L, name)(reduction=red, **kw)(a, b, data["sw"]))
            s = scale * data["sw"] if red == "none" else reduced_scale(
                scale, per, data["sw"], "sum" if red == "sum" else "mean")
            check(ours, ref, s)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bce_from_logits_infinite_logits_as_tensorflow(keras, dtype):
    # TF's relu(x) - x*z + log1p(exp(-|x|)) is NaN at x=+inf and at x=-inf, z=0; the drop-in
    # reproduces that (fastloss's public API gives the true losses 0 / inf instead)
    inf = np.inf
    x = np.array([[inf, -inf, inf, -inf, inf, -inf, 2.0, -3.0]], dtype).T
    z = np.array([[1.0, 0.0, 0.0, 1.0, 0.5, 0.5, 1.0, 0.0]], dtype).T
    want = np.asarray(keras.losses.binary_crossentropy(z, x, from_logits=True))
    got = FK.binary_crossentropy(z, x, from_logits=True)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, rtol=2e-7)
    for red in ("sum", "sum_over_batch_size"):
        loss = FK.BinaryCrossentropy(from_logits=True, reduction=red)
        assert np.isnan(loss(z, x)) and np.isnan(np.asarray(keras.losses.BinaryCrossentropy(
            from_logits=True, reduction=red)(z, x)))
        # sample weights (the fused path when all are non-zero): NaN * w stays NaN in Keras
        for sw in (np.full(x.shape[0], 0.5, dtype), np.where(np.isnan(want), 0.0, 1.0).astype(dtype)):
            a = loss(z, x, sample_weight=sw)
            b = np.asarray(keras.losses.BinaryCrossentropy(from_logits=True, reduction=red)(
                z, x, sample_weight=sw))
            assert np.isnan(a) and np.isnan(b)
        # finite logits only: the drop-in is unchanged and finite
        fin = np.isfinite(x[:, 0])
        assert np.isfinite(loss(z[fin], x[fin]))


# --------------------------------------------------------------------------- containers (#17)


def _value(x):
    return np.asarray(x.numpy() if hasattr(x, "numpy") and not isinstance(x, np.ndarray) else x)


def test_containers_keep_keras_dtype(keras, tf):
    pd = require("pandas")
    torch = require("torch")
    t = np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    p = np.array([[1.0, 0.2, 0.7], [0.6, 0.1, 0.3]])
    for conv in (pd.DataFrame, tf.constant, torch.tensor, lambda a: a.tolist()):
        yt, yp = conv(t), conv(p)
        for fn in ("binary_crossentropy", "mean_squared_error", "kl_divergence",
                   "categorical_crossentropy", "binary_focal_crossentropy"):
            ours, ref = getattr(FK, fn)(yt, yp), getattr(keras.losses, fn)(yt, yp)
            ref = _value(ref)
            # pandas/TF/torch float64 stay float64; Python lists are float32 (as TF)
            assert _value(ours).dtype == ref.dtype, (fn, conv)
            check(_value(ours), ref, np.abs(ref) + 1, dtype=ref.dtype.type)
            assert tf.is_tensor(ours) == tf.is_tensor(yp), (fn, conv)  # TF in, TF out
        # the classes cast to their dtype (floatx) whatever the container
        ours = FK.BinaryCrossentropy()(yt, yp)
        ref = keras.losses.BinaryCrossentropy()(yt, yp)
        assert _value(ours).dtype == np.float32
        check(_value(ours), _value(ref), 20.0)
    # the issue's example: float64 DataFrames give Keras's float64 value, not float32's clip
    got = FK.binary_crossentropy(pd.DataFrame([[0.0]]), pd.DataFrame([[1.0]]))
    assert got.dtype == np.float64 and got[0] == pytest.approx(16.11809565, rel=1e-9)
    # legacy (tf.keras 2) classes keep the float64 of a DataFrame too
    assert FKL.BinaryCrossentropy()(pd.DataFrame([[0.0]]), pd.DataFrame([[1.0]])).dtype == \
        np.float64


def half_ulps(a, b, dt):
    """``|a - b|`` in units of the half dtype's ulp at ``a`` (normal range)."""
    a = np.asarray(a).astype(np.float32)
    b = np.asarray(b).astype(np.float32)
    eps = float(np.finfo(dt).eps)
    ulp = np.exp2(np.floor(np.log2(np.abs(a)))) * eps
    return np.abs(a - b) / ulp


def test_half_precision_rounds_once(keras, tf):
    t = np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    p = np.array([[0.9, 0.2, 0.7], [0.6, 0.1, 0.3]])
    for dt in (np.float16, tf.bfloat16.as_numpy_dtype):
        h = np.asarray(p).astype(dt)
        # Keras computes in the half dtype; fastloss in float32 from the same half inputs,
        # rounded once: so within 1 half ulp of Keras, and the dtype is the input's
        exact = FK.binary_crossentropy(t.astype(dt).astype(np.float32), h.astype(np.float32))
        for yt, yp in ((t.astype(dt), h), (tf.constant(t.astype(dt)), tf.constant(h))):
            ours = FK.binary_crossentropy(yt, yp)
            ref = keras.losses.binary_crossentropy(yt, yp)
            assert _value(ours).dtype == _value(ref).dtype == np.dtype(dt)
            assert tf.is_tensor(ours) == tf.is_tensor(yp)
            np.testing.assert_array_equal(_value(ours), exact.astype(dt))
            assert half_ulps(_value(ours), _value(ref), dt).max() <= 1
    # a loss object with a half dtype rounds the inputs to it and returns it
    ours = FK.MeanSquaredError(dtype="bfloat16")(t, p)
    ref = keras.losses.MeanSquaredError(dtype="bfloat16")(t, p)
    assert _value(ours).dtype == _value(ref).dtype
    assert half_ulps(_value(ours), _value(ref), _value(ours).dtype).max() <= 1


def same_tensor_losses(tf, ours_mod, ref_mod, names, yt, yp, sw):
    """Each loss class of ``names``, unweighted and weighted: a TF tensor, Keras's value."""
    for name in names:
        for kw in ({}, {"sample_weight": sw}):
            ours = getattr(ours_mod, name)()(yt, yp, **kw)
            ref = getattr(ref_mod, name)()(yt, yp, **kw)
            assert tf.is_tensor(ours)
            check(_value(ours), _value(ref), 4.0)


def test_keras_mask_is_honoured(keras, tf):
    yt = tf.constant([[[0.0], [1.0], [1.0], [0.0]], [[1.0], [0.0], [1.0], [1.0]]])
    yp = tf.constant([[[0.1], [0.8], [0.6], [0.3]], [[0.7], [0.2], [0.4], [0.9]]])
    yp._keras_mask = tf.constant([[True, True, False, False], [True, False, False, False]])
    sw = tf.constant([[1.0, 2, 3, 4], [2, 2, 2, 2]])
    same_tensor_losses(tf, FK, keras.losses, ("BinaryCrossentropy", "MeanSquaredError",
                                              "KLDivergence"), yt, yp, sw)
    unmasked = FK.BinaryCrossentropy()(yt, tf.identity(yp))
    assert abs(float(unmasked) - float(FK.BinaryCrossentropy()(yt, yp))) > 1e-3
    # sparse: the mask and ignore_class together
    lab = tf.constant([[1, 0, 2], [2, 2, 0]])
    pr = tf.constant(np.random.default_rng(0).dirichlet([1, 1, 1], (2, 3)), tf.float32)
    pr._keras_mask = tf.constant([[True, True, False], [True, True, True]])
    ours = FK.SparseCategoricalCrossentropy(ignore_class=0)(lab, pr)
    ref = keras.losses.SparseCategoricalCrossentropy(ignore_class=0)(lab, pr)
    check(_value(ours), _value(ref), 10.0)


def test_legacy_mask_focal_attributes_and_config(tf):
    tfk = require("tf_keras")
    yt = tf.constant([[[0.0], [1.0], [1.0]], [[1.0], [0.0], [1.0]]])
    yp = tf.constant([[[0.1], [0.8], [0.6]], [[0.7], [0.2], [0.4]]])
    yp._keras_mask = tf.constant([[True, True, False], [True, False, False]])
    ours, ref = FKL.MeanSquaredError()(yt, yp), tfk.losses.MeanSquaredError()(yt, yp)
    assert tf.is_tensor(ours)
    check(_value(ours), _value(ref), 1.0)
    ours = FKL.BinaryFocalCrossentropy(gamma=1.5, alpha=0.3, apply_class_balancing=True)
    ref = tfk.losses.BinaryFocalCrossentropy(gamma=1.5, alpha=0.3, apply_class_balancing=True)
    assert (ours.gamma, ours.alpha, ours.apply_class_balancing, ours.from_logits) == \
        (ref.gamma, ref.alpha, ref.apply_class_balancing, ref.from_logits)
    assert ours.get_config() == ref.get_config()  # 'fn' included, as tf.keras's saving v3
    assert FKL.BinaryFocalCrossentropy.from_config(ours.get_config()).gamma == 1.5
    w = FKL.LossFunctionWrapper(FKL.mean_squared_error, name="m")
    assert FKL.LossFunctionWrapper.from_config(w.get_config()).fn is FKL.mean_squared_error
    with pytest.raises(ValueError, match=r"Incompatible shapes: \[2,3\] vs. \[2,2\]"):
        FKL.MeanSquaredError()(np.ones((2, 3, 1)), np.ones((2, 3, 1)), np.ones((2, 2)))


def test_sparse_axis_is_the_tf_backends(keras):
    p = np.full((2, 3, 4), 0.25, np.float32)
    with pytest.raises(ValueError, match="Only axis=-1 is currently supported. Received: axis=0"):
        FK.SparseCategoricalCrossentropy(axis=0)(np.zeros((3, 4)), p)
    assert FK.sparse_categorical_crossentropy(np.zeros((2, 3)), p, axis=2).shape == (2, 3)


def test_legacy_containers_and_half(tf):
    tfk = require("tf_keras")
    pd = require("pandas")
    torch = require("torch")
    t = np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    p = np.array([[0.9, 0.2, 0.7], [0.6, 0.1, 0.3]])
    convs = [pd.DataFrame, tf.constant, torch.tensor, lambda a: a.tolist(),
             lambda a: tf.constant(a, tf.float16), lambda a: a.astype(np.float16)]
    for conv in convs:
        yt, yp = conv(t), conv(p)
        for name in ("binary_crossentropy", "mean_squared_error", "categorical_crossentropy",
                     "BinaryCrossentropy", "MeanSquaredError", "BinaryFocalCrossentropy"):
            f = getattr(FKL, name)
            g = getattr(tfk.losses, name)
            if name[0].isupper():
                f, g = f(), g()
            got, want = f(yt, yp), g(yt, yp)
            # tf.keras gives a tf.Tensor for every container it takes (#17)
            assert tf.is_tensor(want) and tf.is_tensor(got), (name, conv)
            ours, ref = _value(got), _value(want)
            assert ours.dtype == ref.dtype, (name, conv)
            if ref.dtype == np.float16:  # tf.keras computes in float16, fastloss rounds once
                assert half_ulps(ours, ref, np.float16).max() <= 1, (name, ours, ref)
            else:
                check(ours, ref, np.abs(ref) + 1, dtype=ref.dtype.type)


def test_legacy_gives_tf_tensors_like_tf_keras(tf):
    # tf.keras converts every input with tf.convert_to_tensor: NumPy in, tf.Tensor out (#17)
    tfk = require("tf_keras")
    t32 = np.float32([[0.0, 1.0], [1.0, 0.0]])
    p32 = np.float32([[0.3, 0.6], [0.8, 0.1]])

    class Abs(FKL.Loss):  # a user's loss returning NumPy: the reduction still gives TF
        def call(self, y_true, y_pred):
            return np.abs(y_pred - y_true).mean(axis=-1)

    class TfAbs(tfk.losses.Loss):
        def call(self, y_true, y_pred):
            return tf.reduce_mean(tf.abs(y_pred - y_true), axis=-1)

    from tf_keras.src.losses import LossFunctionWrapper  # not exported by tf_keras.losses

    labels = np.array([1, 0])
    for dt in (np.float32, np.float64):
        t, p = t32.astype(dt), p32.astype(dt)
        cases = [(FKL.BinaryCrossentropy(reduction=r), tfk.losses.BinaryCrossentropy(reduction=r),
                  t) for r in ("none", "sum", "auto")]
        cases += [(Abs(), TfAbs(), t), (Abs(reduction="none"), TfAbs(reduction="none"), t),
                  (FKL.LossFunctionWrapper(FKL.kl_divergence),
                   LossFunctionWrapper(tfk.losses.kl_divergence), t),
                  (FKL.sparse_categorical_crossentropy,
                   tfk.losses.sparse_categorical_crossentropy, labels),
                  (FKL.SparseCategoricalCrossentropy(reduction="none"),
                   tfk.losses.SparseCategoricalCrossentropy(reduction="none"), labels)]
        for ours, ref, target in cases:
            got, want = ours(target, p), ref(target, p)
            assert tf.is_tensor(got) and not isinstance(got, np.ndarray), (ours, dt)
            assert got.dtype == want.dtype and got.shape == want.shape, (ours, got, want)
            check(got.numpy(), want.numpy(), np.abs(want.numpy()) + 2, dtype=dt)
    # Python lists are float32 in both; a weighted class and a mask-free sparse one too
    got = FKL.SparseCategoricalCrossentropy()([1, 0], p32.tolist(), sample_weight=[1.0, 2.0])
    want = tfk.losses.SparseCategoricalCrossentropy()([1, 0], p32.tolist(), sample_weight=[1.0, 2.0])
    assert tf.is_tensor(got) and got.dtype == want.dtype == tf.float32
    check(got.numpy(), want.numpy(), 4.0)


def test_legacy_import_leaves_tensorflow_alone():
    # TensorFlow is imported when a legacy loss gives its first result, not by the imports
    import subprocess
    import sys

    code = ("import sys, fastloss, fastloss.keras, fastloss.keras.legacy; "
            "print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr


def test_legacy_ragged_rows(tf):
    tfk = require("tf_keras")
    yt = tf.ragged.constant([[1.0, 0.0, 1.0], [0.0], [1.0, 1.0]])
    yp = tf.ragged.constant([[0.9, 0.8, 0.7], [0.2], [0.35, 0.6]])
    sw = tf.constant([1.2, 3.4, 0.5])
    same_tensor_losses(tf, FKL, tfk.losses, ("MeanSquaredError", "BinaryCrossentropy",
                                             "BinaryFocalCrossentropy"), yt, yp, sw)
    per = FKL.binary_crossentropy(yt, yp)  # one value per row, dense, as tf.keras
    ref = tfk.losses.binary_crossentropy(yt, yp)
    assert per.shape == (3,) and not isinstance(per, tf.RaggedTensor)
    check(_value(per), _value(ref), np.abs(_value(ref)) + 1)
    # categorical and sparse: one loss per ragged position, ragged out; weights per row
    t = tf.ragged.constant([[[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0]]])
    p = tf.ragged.constant([[[0.2, 0.8], [0.3, 0.7]], [[0.9, 0.1]]])  # class axis stored ragged
    lab = tf.ragged.constant([[0, 1], [0]])
    w = tf.constant([[1.5], [0.5]])
    for ours, ref, args in ((FKL.CategoricalCrossentropy, tfk.losses.CategoricalCrossentropy,
                             (t, p)),
                            (FKL.SparseCategoricalCrossentropy,
                             tfk.losses.SparseCategoricalCrossentropy, (lab, p))):
        for kw in ({}, {"sample_weight": w}):
            check(_value(ours()(*args, **kw)), _value(ref()(*args, **kw)), 4.0)
        per = ours(reduction="none")(*args)
        assert isinstance(per, tf.RaggedTensor)
        check(per.flat_values.numpy(), ref(reduction="none")(*args).flat_values.numpy(), 4.0)
    with pytest.raises(TypeError, match="both ragged"):
        FKL.categorical_crossentropy(t.to_tensor(), p)
    with pytest.raises(TypeError, match=r"shape \(batch, None\) only"):
        FKL.binary_crossentropy(t, p)


@pytest.mark.parametrize("cls", ["SparseCategoricalCrossentropy", "CategoricalCrossentropy",
                                 "BinaryCrossentropy"])
@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_loss_half_dtype_like_keras(keras, tf, cls, from_logits, dtype):
    # #18: a loss dtype of bfloat16/float16 rounds the inputs to it, computes in float32
    # and rounds the result once to it; Keras computes in the half dtype (1 half ulp here)
    r = np.random.default_rng(0)
    x = r.standard_normal((16, 5)).astype(np.float32)
    y = r.integers(0, 5, 16)
    p = np.exp(x)
    p /= p.sum(1, keepdims=True)
    yt = {"SparseCategoricalCrossentropy": y, "CategoricalCrossentropy": np.eye(5)[y],
          "BinaryCrossentropy": (p > 0.2).astype(np.float32)}[cls]
    hdt = np.dtype(tf.bfloat16.as_numpy_dtype) if dtype == "bfloat16" else np.dtype(np.float16)
    for inp in (x if from_logits else p, (x if from_logits else p).astype(hdt)):
        ours = getattr(FK, cls)(from_logits=from_logits, dtype=dtype)(yt, inp)
        ref = getattr(keras.losses, cls)(from_logits=from_logits, dtype=dtype)(yt, inp)
        assert ours.dtype == _value(ref).dtype == hdt
        rounded = [np.asarray(a).astype(hdt).astype(np.float32) for a in (yt, inp)]
        f32 = getattr(FK, cls)(from_logits=from_logits)(*rounded)
        assert ours.tobytes() == np.asarray(f32).astype(hdt).tobytes()
        assert half_ulps(ours, _value(ref), hdt).max() <= 1


def test_pandas_indexes_are_positional_as_in_keras(keras, tf):
    # Keras 3 and tf.keras read pandas by position (tf.convert_to_tensor): permuted or
    # disjoint indexes, and columns in another order, are not aligned (#17)
    pd = require("pandas")
    tfk = require("tf_keras")
    t = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    p = np.array([[0.9, 0.2], [0.3, 0.6], [0.7, 0.4]])
    yt = pd.DataFrame(t, index=[0, 1, 2], columns=["a", "b"])
    w = np.array([1.0, 2.0, 3.0])
    for idx, cols in (([2, 1, 0], ["b", "a"]), ([10, 11, 12], ["x", "y"])):
        yp = pd.DataFrame(p, index=idx, columns=cols)
        sw = pd.Series(w, index=idx[::-1])
        for ours, ref in ((FK, keras.losses), (FKL, tfk.losses)):
            for fn in ("binary_crossentropy", "mean_squared_error", "kl_divergence"):
                got, want = _value(getattr(ours, fn)(yt, yp)), _value(getattr(ref, fn)(yt, yp))
                positional = _value(getattr(ref, fn)(t, p))
                np.testing.assert_allclose(want, positional, rtol=1e-15)  # the framework's rule
                check(got, want, np.abs(want) + 1, dtype=np.float64)
            for kw in ({}, {"sample_weight": sw}):
                got = _value(ours.BinaryCrossentropy()(yt, yp, **kw))
                want = _value(ref.BinaryCrossentropy()(yt, yp, **kw))
                positional = _value(ref.BinaryCrossentropy()(t, p, sample_weight=w if kw else None))
                np.testing.assert_allclose(want, positional, rtol=1e-6)
                check(got, want, 20.0, dtype=want.dtype.type)


@pytest.mark.parametrize("fn,cls", [("binary_crossentropy", "BinaryCrossentropy"),
                                    ("binary_focal_crossentropy", "BinaryFocalCrossentropy"),
                                    ("mean_squared_error", "MeanSquaredError"),
                                    ("kl_divergence", "KLDivergence")])
def test_scalar_inputs_raise_as_in_keras(keras, fn, cls):
    # 0-d inputs have no axis -1 to average: Keras 3 and tf.keras raise
    # (InvalidArgumentError, "Invalid reduction dimension"); fastloss raises ValueError
    tfk = require("tf_keras")
    for ref, ours in ((keras.losses, FK), (tfk.losses, FKL)):
        for args in ((np.float32(1.0), np.float32(0.7)), (1.0, 0.7)):
            for f, g in ((getattr(ref, fn), getattr(ours, fn)),
                         (getattr(ref, cls)(), getattr(ours, cls)())):
                with pytest.raises(Exception, match="reduction dimension"):
                    f(*args)
                with pytest.raises(ValueError, match="axis -1 is out of bounds"):
                    g(*args)


def test_legacy_integer_predictions_as_tf_keras(tf):
    # tf.keras keeps y_pred's dtype: MSE of integers is computed in them (the mean rounded
    # toward zero, the reduction in float32 cast back), the other losses raise TypeError
    tfk = require("tf_keras")
    t = np.array([[0, 1, 3], [1, 0, 2]])
    p = np.array([[1, 3, 0], [2, 2, 7]])
    w = np.array([1.5, 0.5])
    inputs = [(t, p), (t.astype(np.int32), p.astype(np.int32)), (t.tolist(), p.tolist()),
              (t.astype(np.float32), p), (t.astype(bool), p.astype(bool)),
              (np.zeros((2, 0), int), np.zeros((2, 0), int)), (t[:0], p[:0])]
    names = ["mean_squared_error", "binary_crossentropy", "kl_divergence",
             "categorical_crossentropy", "binary_focal_crossentropy"]
    classes = ["MeanSquaredError", "BinaryCrossentropy", "KLDivergence",
               "CategoricalCrossentropy", "BinaryFocalCrossentropy"]
    n = 0
    for yt, yp in inputs:
        calls = [(getattr(FKL, f), getattr(tfk.losses, f), {}) for f in names]
        calls += [(getattr(FKL, c)(reduction=r), getattr(tfk.losses, c)(reduction=r), kw)
                  for c in classes for r in ("none", "sum", "auto")
                  for kw in ({}, {"sample_weight": w})]
        calls += [(FKL.sparse_categorical_crossentropy, tfk.losses.sparse_categorical_crossentropy,
                   {})]
        for ours, ref, kw in calls:
            args = (np.array([1, 0]), yp) if ours is FKL.sparse_categorical_crossentropy \
                else (yt, yp)
            try:
                want = ref(*args, **kw)
            except (TypeError, ValueError, tf.errors.InvalidArgumentError) as e:
                # InvalidArgumentError is ValueError in fastloss (module docstring)
                with pytest.raises(TypeError if isinstance(e, TypeError) else ValueError):
                    ours(*args, **kw)
                continue
            got = ours(*args, **kw)
            assert tf.is_tensor(got) and got.dtype == want.dtype, (ours, yp, got, want)
            if want.dtype.is_integer:
                np.testing.assert_array_equal(got.numpy(), want.numpy())
                n += 1
    assert n >= 10  # the integer results were compared, not only the errors


def test_integer_predictions_as_keras3(keras, tf):
    # Keras 3's functions keep y_pred's dtype and fail on their float constants (TypeError;
    # InvalidArgumentError, ValueError here, for categorical CE); MSE averages in float32;
    # the classes cast to their dtype first
    t = np.array([[0, 1, 1], [1, 0, 0]])
    p = np.array([[1, 0, 0], [0, 1, 1]])
    inputs = [(t, p), (t.astype(np.int32), p.astype(np.int32)), (t.tolist(), p.tolist()),
              (t.astype(np.float32), p), (t.astype(bool), p.astype(bool))]
    names = ["mean_squared_error", "binary_crossentropy", "kl_divergence",
             "categorical_crossentropy", "binary_focal_crossentropy",
             "sparse_categorical_crossentropy"]
    compared = 0
    for yt, yp in inputs:
        for name in names:
            args = (np.array([1, 0]), yp) if name.startswith("sparse") else (yt, yp)
            try:
                want = getattr(keras.losses, name)(*args)
            except AttributeError:  # Keras's sparse CE reads .shape of a Python list
                continue
            except (TypeError, ValueError, tf.errors.InvalidArgumentError) as e:
                with pytest.raises(TypeError if isinstance(e, TypeError) else ValueError):
                    getattr(FK, name)(*args)
                continue
            got = getattr(FK, name)(*args)
            np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-6)
            assert np.asarray(got).dtype == np.asarray(want).dtype
            compared += 1
        if isinstance(yp, np.ndarray):  # (Keras's classes refuse nested lists here)
            cls = FK.SparseCategoricalCrossentropy()
            kcls = keras.losses.SparseCategoricalCrossentropy()
            np.testing.assert_allclose(np.asarray(cls(np.array([1, 0]), yp)),
                                       np.asarray(kcls(np.array([1, 0]), yp)), rtol=1e-6)
    assert compared >= 4  # MSE of every non-bool input at least: values compared, not only errors
