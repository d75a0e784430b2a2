"""Agreement with PyTorch, TensorFlow and Keras on the basic cases of every loss.

Tolerances: float64 ``rtol=1e-12``, or a few eps64 of the operands where the
framework's formula cancels. float32: the frameworks compute and sum in float32,
fastloss computes each sample in float64 and rounds once, so the two differ by a
few float32 roundings *of the operands*: per-sample values get ``4 eps32``
relative to the size of the terms they are computed from (``|logsumexp| + |x_y|``
for a cross-entropy), reductions ``8 eps32`` relative to the sum of those sizes.
"""

import numpy as np
import pytest

import fastloss as fl

pytestmark = pytest.mark.frameworks


@pytest.fixture(autouse=True)
def _every_backend(backend, monkeypatch):
    """Run every comparison in this module on every available backend."""
    monkeypatch.setenv("FASTLOSS_BACKEND", backend)
    fl.refresh_config()  # the environment is read once

EPS32 = float(np.finfo(np.float32).eps)
DTYPES = [np.float64, np.float32]


def close(got, exp, dtype, scale=None, red=False):
    """|got - exp| <= k eps * max(scale, |exp|) (+ rtol 1e-12 in float64).

    ``scale`` is the size of the terms the framework computes the value from: a
    framework that forms ``x - log_sigmoid(x)`` or ``lse - x_y`` loses ``eps * |x|``
    absolutely (PyTorch's BCE-with-logits for z=0, x=-11.7 is off by 7.6e-11
    relative in float64; fastloss matches mpmath there).
    """
    got = np.asarray(got, dtype=np.float64)
    exp = np.asarray(exp, dtype=np.float64)
    assert got.shape == exp.shape
    eps = EPS32 if dtype == np.float32 else float(np.finfo(np.float64).eps)
    k = 8 if red else 4
    scale = np.abs(exp) if scale is None else np.asarray(scale, dtype=np.float64)
    bound = k * eps * np.maximum(scale, np.abs(exp))
    if dtype == np.float64:
        bound = np.maximum(bound, 1e-12 * np.abs(exp))
    err = np.abs(got - exp)
    assert np.all((err <= bound) | (got == exp)), (
        "error in units of eps * scale:", (err / np.maximum(bound / k, 1e-300)).max())


@pytest.fixture(scope="module")
def data():
    r = np.random.default_rng(2024)
    n, c = 64, 7
    logits = r.standard_normal((n, c)) * 4
    labels = r.integers(0, c, n)
    labels[::9] = -100
    e = np.exp(r.standard_normal((n, c)) * 2)
    probs = e / e.sum(axis=1, keepdims=True)
    e2 = np.exp(r.standard_normal((n, c)))
    targets = e2 / e2.sum(axis=1, keepdims=True)
    z = (r.random((n, c)) < 0.4).astype(np.float64)
    z[:4] = r.random((4, c))  # some soft labels
    cw = r.uniform(0.5, 2.0, c)
    pw = r.uniform(0.5, 3.0, c)
    w_el = r.uniform(0.0, 2.0, (n, c))
    return dict(logits=logits, labels=labels, probs=probs, targets=targets, z=z, cw=cw, pw=pw,
                w_el=w_el)


def T(torch, a):
    return torch.from_numpy(np.ascontiguousarray(a))


# --------------------------------------------------------------------------- PyTorch


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("opts", [{}, {"ignore_index": -100}, {"class_weight": True},
                                  {"ignore_index": -100, "class_weight": True},
                                  {"label_smoothing": 0.15, "ignore_index": -100}])
def test_sparse_ce_vs_torch_cross_entropy(torch, data, dtype, opts):
    F = torch.nn.functional
    x = data["logits"].astype(dtype)
    y = data["labels"].copy()
    if "ignore_index" not in opts:
        y[y < 0] = 0
    cw = data["cw"] if opts.get("class_weight") else None
    ls = opts.get("label_smoothing", 0.0)
    kw = dict(from_logits=True, class_weight=cw, label_smoothing=ls,
              ignore_index=opts.get("ignore_index"))
    tkw = dict(weight=None if cw is None else T(torch, cw.astype(dtype)), label_smoothing=ls,
               ignore_index=opts.get("ignore_index", -100))
    scale = np.abs(x).max(axis=1) * 2 + np.log(x.shape[1])
    for red in ("none", "sum", "mean"):
        got = fl.sparse_categorical_cross_entropy(y, x, reduction=red, **kw)
        exp = F.cross_entropy(T(torch, x), T(torch, y), reduction=red, **tkw).numpy()
        if red == "none":
            close(got, exp, dtype, scale * (1 if cw is None else cw[np.maximum(y, 0)]))
        else:
            s = np.sum(scale * (1 if cw is None else cw[np.maximum(y, 0)]) * (y >= 0))
            if red == "mean":
                s = s / np.sum((1 if cw is None else cw[np.maximum(y, 0)]) * (y >= 0))
            close(got, exp, dtype, s, red=True)


def test_sparse_ce_spatial_vs_torch(torch):
    # (N, C, d) with the class axis at 1, PyTorch's layout
    F = torch.nn.functional
    r = np.random.default_rng(5)
    x = r.standard_normal((4, 5, 6)) * 3
    y = r.integers(0, 5, (4, 6))
    for red in ("none", "sum", "mean"):
        close(fl.sparse_categorical_cross_entropy(y, x, from_logits=True, axis=1, reduction=red),
              F.cross_entropy(T(torch, x), T(torch, y), reduction=red).numpy(), np.float64)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ls", [0.0, 0.2])
def test_categorical_ce_vs_torch_probability_targets(torch, data, dtype, ls):
    F = torch.nn.functional
    x = data["logits"].astype(dtype)
    t = data["targets"].astype(dtype)
    scale = np.abs(x).max(axis=1) * 2 + np.log(x.shape[1])
    for red in ("none", "sum", "mean"):
        got = fl.categorical_cross_entropy(t, x, from_logits=True, label_smoothing=ls,
                                           reduction=red)
        exp = F.cross_entropy(T(torch, x), T(torch, t), label_smoothing=ls, reduction=red).numpy()
        s = scale if red == "none" else (scale.sum() if red == "sum" else scale.mean())
        close(got, exp, dtype, s, red=red != "none")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pos_weight", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_bce_logits_vs_torch(torch, data, dtype, pos_weight, weighted):
    F = torch.nn.functional
    x = data["logits"].astype(dtype)
    z = data["z"].astype(dtype)
    pw = data["pw"] if pos_weight else None
    w = data["w_el"] if weighted else None
    tkw = {}
    if pw is not None:
        tkw["pos_weight"] = T(torch, pw.astype(dtype))
    if w is not None:
        tkw["weight"] = T(torch, w.astype(dtype))
    scale = (np.abs(x) + 1) * (1 if pw is None else np.maximum(pw, 1)) * (1 if w is None else w)
    for red in ("none", "sum"):
        got = fl.binary_cross_entropy(z, x, from_logits=True, pos_weight=pw, sample_weight=w,
                                      reduction=red)
        exp = F.binary_cross_entropy_with_logits(T(torch, x), T(torch, z), reduction=red,
                                                 **tkw).numpy()
        close(got, exp, dtype, scale if red == "none" else scale.sum(), red=red != "none")
    if w is None:  # PyTorch's mean divides by numel, fastloss's by sum(w): equal when unweighted
        got = fl.binary_cross_entropy(z, x, from_logits=True, pos_weight=pw)
        exp = F.binary_cross_entropy_with_logits(T(torch, x), T(torch, z), **tkw).numpy()
        close(got, exp, dtype, scale.mean(), red=True)


@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_probs_torch_clip_vs_torch(torch, data, dtype):
    F = torch.nn.functional
    r = np.random.default_rng(9)
    p = r.random((32, 5))
    p[0] = [0.0, 1.0, 0.0, 1.0, 1e-50]  # saturated: PyTorch clamps each log at -100
    z = (r.random((32, 5)) < 0.5).astype(np.float64)
    z[0] = [1.0, 0.0, 0.0, 1.0, 1.0]
    p, z = p.astype(dtype), z.astype(dtype)
    got = fl.binary_cross_entropy(z, p, clip="torch", reduction="none")
    assert got[0, 0] == 100.0 and got[0, 1] == 100.0
    for red in ("none", "sum", "mean"):
        got = fl.binary_cross_entropy(z, p, clip="torch", reduction=red)
        exp = F.binary_cross_entropy(T(torch, p), T(torch, z), reduction=red).numpy()
        close(got, exp, dtype, red=red != "none")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_log_input_vs_torch_kl_div(torch, data, dtype, log_target):
    F = torch.nn.functional
    logp = np.log(data["probs"]).astype(dtype)
    t = data["targets"].copy()
    if not log_target:  # PyTorch gives exp(-inf) * (-inf - x) = NaN for a log target of -inf
        t[t < 0.02] = 0.0
    tt = (np.log(t, where=t > 0, out=np.full_like(t, -np.inf)) if log_target else t).astype(dtype)
    n = logp.shape[0]
    args = (T(torch, logp), T(torch, tt))
    exp_none = F.kl_div(*args, reduction="none", log_target=log_target).numpy().sum(axis=1)
    exp_sum = F.kl_div(*args, reduction="sum", log_target=log_target).numpy()
    exp_bm = F.kl_div(*args, reduction="batchmean", log_target=log_target).numpy()
    scale = (np.abs(logp) * np.exp(tt.astype(np.float64)) if log_target else
             np.abs(logp) * tt).sum(axis=1) + 1
    got = fl.kl_divergence(tt, logp, log_input=True, log_target=log_target, reduction="none")
    close(got, exp_none, dtype, scale)
    got_sum = fl.kl_divergence(tt, logp, log_input=True, log_target=log_target, reduction="sum")
    close(got_sum, exp_sum, dtype, scale.sum(), red=True)
    got_mean = fl.kl_divergence(tt, logp, log_input=True, log_target=log_target)
    close(got_mean, exp_sum / n, dtype, scale.mean(), red=True)
    close(got_mean, exp_bm, dtype, scale.mean(), red=True)


@pytest.mark.parametrize("dtype", DTYPES)
def test_mse_vs_torch(torch, data, dtype):
    F = torch.nn.functional
    x = data["logits"].astype(dtype)
    t = data["targets"].astype(dtype)
    exp = F.mse_loss(T(torch, x), T(torch, t)).numpy()
    close(fl.mean_squared_error(t, x), exp, dtype, red=True)
    exp_none = F.mse_loss(T(torch, x), T(torch, t), reduction="none").numpy().mean(axis=1)
    close(fl.mean_squared_error(t, x, reduction="none"), exp_none, dtype, red=True)


@pytest.mark.parametrize("dtype", DTYPES)
def test_logsumexp_softmax_vs_torch(torch, data, dtype):
    x = (data["logits"] * 30).astype(dtype)
    tx = T(torch, x)
    scale = np.abs(x).max(axis=1)
    close(fl.logsumexp(x, axis=1), torch.logsumexp(tx, dim=1).numpy(), dtype, scale)
    close(fl.logsumexp(x, axis=0), torch.logsumexp(tx, dim=0).numpy(), dtype,
          np.abs(x).max(axis=0))
    close(fl.log_softmax(x, axis=1), torch.log_softmax(tx, dim=1).numpy(), dtype,
          np.abs(x) + scale[:, None])
    sm = fl.softmax(x, axis=1)
    te = torch.softmax(tx, dim=1).numpy()
    if dtype == np.float64:
        np.testing.assert_allclose(sm, te, rtol=1e-12, atol=1e-300)
    else:  # exp amplifies an absolute error d of the exponent to a relative error d
        np.testing.assert_allclose(sm, te, rtol=4 * EPS32 * scale.max(), atol=1e-40)


# --------------------------------------------------------------------------- TensorFlow


@pytest.mark.parametrize("dtype", DTYPES)
def test_categorical_ce_vs_tf_softmax_cross_entropy(tf, data, dtype):
    x = data["logits"].astype(dtype)
    t = data["targets"].astype(dtype)
    exp = tf.nn.softmax_cross_entropy_with_logits(labels=t, logits=x).numpy()
    scale = np.abs(x).max(axis=1) * 2 + np.log(x.shape[1])
    close(fl.categorical_cross_entropy(t, x, from_logits=True, reduction="none"), exp, dtype,
          scale)
    close(fl.categorical_cross_entropy(t, x, from_logits=True), tf.reduce_mean(exp).numpy(),
          dtype, scale.mean(), red=True)
    onehot = np.eye(x.shape[1], dtype=dtype)[np.maximum(data["labels"], 0)]
    exp1 = tf.nn.softmax_cross_entropy_with_logits(labels=onehot, logits=x).numpy()
    close(fl.categorical_cross_entropy(onehot, x, from_logits=True, reduction="none"), exp1,
          dtype, scale)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sparse_ce_vs_tf_sparse_softmax_cross_entropy(tf, data, dtype):
    x = data["logits"].astype(dtype)
    y = np.maximum(data["labels"], 0)
    exp = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=x).numpy()
    scale = np.abs(x).max(axis=1) * 2 + np.log(x.shape[1])
    close(fl.sparse_categorical_cross_entropy(y, x, from_logits=True, reduction="none"), exp,
          dtype, scale)


@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_logits_vs_tf_sigmoid_cross_entropy(tf, data, dtype):
    x = (data["logits"] * 10).astype(dtype)
    z = data["z"].astype(dtype)
    exp = tf.nn.sigmoid_cross_entropy_with_logits(labels=z, logits=x).numpy()
    close(fl.binary_cross_entropy(z, x, from_logits=True, reduction="none"), exp, dtype,
          np.abs(x) + 1)


@pytest.mark.parametrize("dtype", DTYPES)
def test_logsumexp_vs_tf(tf, data, dtype):
    x = (data["logits"] * 30).astype(dtype)
    close(fl.logsumexp(x, axis=1), tf.reduce_logsumexp(x, axis=1).numpy(), dtype,
          np.abs(x).max(axis=1))
    close(fl.log_softmax(x, axis=1), tf.nn.log_softmax(x, axis=1).numpy(), dtype,
          np.abs(x) + np.abs(x).max(axis=1, keepdims=True))


# --------------------------------------------------------------------------- Keras 3


def test_keras_bce_probabilities_vs_clip_keras(keras, data):
    r = np.random.default_rng(11)
    p = r.random((40, 1)).astype(np.float32)
    p[:4, 0] = [0.0, 1.0, 1e-9, 1.0 - 1e-8]
    z = (r.random((40, 1)) < 0.5).astype(np.float32)
    z[:4, 0] = [1.0, 0.0, 1.0, 0.0]
    exp_none = np.asarray(keras.losses.binary_crossentropy(z, p))
    got_none = fl.binary_cross_entropy(z, p, clip="keras", reduction="none")[:, 0]
    close(got_none, exp_none, np.float32, np.maximum(np.abs(exp_none), 1))
    exp = np.asarray(keras.losses.BinaryCrossentropy()(z, p))
    close(fl.binary_cross_entropy(z, p, clip="keras"), exp, np.float32, red=True)


def test_keras_kl_vs_clip_keras(keras, data):
    t = data["targets"].astype(np.float32)
    t[t < 0.05] = 0.0
    p = data["probs"].astype(np.float32)
    exp = np.asarray(keras.losses.kl_divergence(t, p))
    scale = (np.abs(np.log(np.maximum(p, 1e-7))) + np.abs(np.log(np.maximum(t, 1e-7)))).sum(1)
    close(fl.kl_divergence(t, p, clip="keras", reduction="none"), exp, np.float32, scale)
    close(fl.kl_divergence(t, p, clip="keras"), np.asarray(keras.losses.KLDivergence()(t, p)),
          np.float32, scale.mean(), red=True)


def test_keras_sparse_and_categorical_from_logits(keras, data):
    x = data["logits"].astype(np.float32)
    y = np.maximum(data["labels"], 0)
    scale = np.abs(x).max(axis=1) * 2 + np.log(x.shape[1])
    exp = np.asarray(keras.losses.sparse_categorical_crossentropy(y, x, from_logits=True))
    close(fl.sparse_categorical_cross_entropy(y, x, from_logits=True, reduction="none"), exp,
          np.float32, scale)
    t = data["targets"].astype(np.float32)
    exp = np.asarray(keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1)(
        t, x))
    close(fl.categorical_cross_entropy(t, x, from_logits=True, label_smoothing=0.1), exp,
          np.float32, scale.mean(), red=True)
