"""Values of the public API against independent expectations.

Expected values are worked out by hand, with mpmath at 50 digits from the exact
binary values of the inputs, or with ``scipy.special`` -- never with fastloss.
float64 results must agree to ``rel=1e-13``; float32 results within 2 ulps of the
correctly rounded value (each per-sample value is rounded once, the sums are
float64).
"""

import warnings

import mpmath as mp
import numpy as np
import pytest
import scipy.special as sp
from testutil import ulp_diff

import fastloss as fl

mp.mp.dps = 50
RTOL64 = 1e-13


# --------------------------------------------------------------------------- mpmath references


def M(v):
    return mp.mpf(float(v))


def mp_lse(row):
    return mp.log(mp.fsum(mp.exp(M(v)) for v in row))


def mp_logsig(x):
    """log(sigmoid(x)) = -log(1 + exp(-x)), exact in mpmath for any x."""
    return -mp.log(1 + mp.exp(-M(x)))


def _clip_in(dtype, p, eps):
    """Clip p to [eps, 1-eps] with the bounds computed in ``dtype`` (the Keras rule)."""
    dt = np.dtype(dtype).type
    lo = dt(eps)
    hi = dt(1) - lo
    return dt(min(max(dt(p), lo), hi)), lo


def mp_neglog(p, clip=None, dtype=np.float64):
    """-log(p) under a clip preset, following the kernel contract's definitions."""
    if clip is None:
        return mp.inf if p == 0 else -mp.log(M(p))
    if clip == "torch":
        return mp.mpf(100) if p == 0 else min(-mp.log(M(p)), mp.mpf(100))
    eps = {"keras": 1e-7, "keras2": 1e-7, "sklearn": np.finfo(dtype).eps}.get(clip, clip)
    pc, lo = _clip_in(dtype, p, eps)
    if clip == "keras2":
        pc = pc + lo  # in dtype
    return -mp.log(M(pc))


def mp_neglog1m(p, clip=None, dtype=np.float64):
    """-log(1 - p) under a clip preset (1 - p formed in dtype for the Keras presets)."""
    if clip is None:
        return mp.inf if p == 1 else -mp.log(1 - M(p))
    if clip == "torch":
        return mp.mpf(100) if p == 1 else min(-mp.log(1 - M(p)), mp.mpf(100))
    eps = {"keras": 1e-7, "keras2": 1e-7, "sklearn": np.finfo(dtype).eps}.get(clip, clip)
    pc, lo = _clip_in(dtype, p, eps)
    dt = np.dtype(dtype).type
    q = dt(1) - pc
    if clip == "keras2":
        q = q + lo
    return -mp.log(M(q))


def reduce_mp(losses, weights=None):
    """(none, sum, mean) with PyTorch's weighted mean sum(w*l)/sum(w); a zero weight removes."""
    w = [mp.mpf(1)] * len(losses) if weights is None else [M(v) for v in weights]
    c = [mp.mpf(0) if wi == 0 else li * wi for li, wi in zip(losses, w)]
    s = mp.fsum(c)
    return c, s, s / mp.fsum(w)


def check(fn, expected, dtype, *, max_ulp=2, rtol=RTOL64):
    """Compare fn(reduction) for none/sum/mean with the mpmath (none, sum, mean)."""
    none_e, sum_e, mean_e = expected
    for red, exp in (("none", none_e), ("sum", sum_e), ("mean", mean_e)):
        got = fn(red)
        exp = np.array([float(v) for v in np.ravel(np.array(exp, dtype=object))]).reshape(
            np.shape(got))
        assert np.asarray(got).dtype == dtype, red
        if dtype == np.float64:
            np.testing.assert_allclose(got, exp, rtol=rtol, atol=1e-300, err_msg=red)
        else:
            d = ulp_diff(np.asarray(got, dtype=dtype), exp.astype(dtype))
            assert d.max(initial=0) <= max_ulp, (red, got, exp.astype(dtype), d)


DTYPES = [np.float64, np.float32]

# --------------------------------------------------------------------------- by hand


def test_docstring_examples_by_hand():
    # log(e^2 + e + e^0.1) - 2 = 0.41703002...
    v = fl.sparse_categorical_cross_entropy([0], np.array([[2.0, 1.0, 0.1]]), from_logits=True)
    assert v == pytest.approx(0.4170300162778335, rel=1e-14)
    assert fl.logsumexp(np.array([1000.0, 1000.0])) == 1000.0 + np.log(2.0)
    # log(1 + e^-40) = e^-40 - e^-80/2 ...: the naive log(sum(exp)) returns 0
    assert fl.logsumexp(np.array([0.0, -40.0])) == pytest.approx(np.exp(-40.0), rel=1e-15)
    assert fl.binary_cross_entropy([1.0], [1000.0], from_logits=True) == 0.0
    # BCE on logits, z=0, x=1000: 1000 + log1p(e^-1000) == 1000 exactly in float64
    assert fl.binary_cross_entropy([0.0], [1000.0], from_logits=True) == 1000.0
    assert fl.binary_cross_entropy([1.0], [-1000.0], from_logits=True) == 1000.0


def test_uniform_predictions_by_hand():
    # p = 1/C for every class: every cross-entropy is log(C)
    for C in (2, 3, 10):
        x = np.zeros((4, C))
        y = np.arange(4) % C
        assert fl.sparse_categorical_cross_entropy(y, x, from_logits=True) == pytest.approx(
            np.log(C), rel=1e-15)
        assert fl.sparse_categorical_cross_entropy(y, np.full((4, C), 1.0 / C)) == pytest.approx(
            np.log(C), rel=1e-15)
        t = np.eye(C)[y]
        assert fl.categorical_cross_entropy(t, x, from_logits=True) == pytest.approx(
            np.log(C), rel=1e-15)
    # KL of a distribution to itself is 0; to uniform is log C - H(t)
    t = np.array([[0.5, 0.25, 0.25]])
    assert fl.kl_divergence(t, t) == 0.0
    assert fl.kl_divergence(t, np.full((1, 3), 1 / 3)) == pytest.approx(
        np.log(3) - 1.5 * np.log(2), rel=1e-14)
    # MSE: ((1-0)^2 + (0-2)^2) / 2
    assert fl.mean_squared_error([[0.0, 2.0]], [[1.0, 0.0]]) == 2.5
    assert fl.mean_squared_error([[0.0, 2.0]], [[1.0, 0.0]], output_weight=[3.0, 1.0]) == 1.75


def test_zero_target_with_zero_probability_contributes_zero():
    # 0 * log(0) = 0 for categorical CE and KL; p_y = 0 is +inf
    t = np.array([[0.0, 1.0, 0.0]])
    p = np.array([[0.0, 1.0, 0.0]])
    assert fl.categorical_cross_entropy(t, p) == 0.0
    assert fl.kl_divergence(t, p) == 0.0
    assert fl.categorical_cross_entropy(np.array([[1.0, 0.0, 0.0]]), p) == np.inf
    assert fl.kl_divergence(np.array([[1.0, 0.0, 0.0]]), p) == np.inf
    assert fl.sparse_categorical_cross_entropy([0], p) == np.inf
    assert fl.sparse_categorical_cross_entropy([1], p) == 0.0
    assert fl.binary_cross_entropy([1.0, 0.0], [0.0, 0.0], reduction="none").tolist() == [np.inf, 0]


# --------------------------------------------------------------------------- sparse CE

X_LOGITS = np.array([[2.0, 1.0, 0.1], [0.0, -40.0, 5.0], [700.0, -700.0, 0.0],
                     [-3.5, 2.25, 7.0], [1e-3, 2e-3, -1e-3]])
Y_SPARSE = np.array([0, 1, 0, 2, 1])
SW = np.array([1.0, 0.5, 2.0, 0.0, 3.0])
CW = np.array([0.5, 2.0, 1.25])


def _sparse_mp(x, y, *, from_logits, ls=0.0, z=0.0, clip=None, dtype=np.float64):
    out = []
    C = x.shape[1]
    for row, yi in zip(x, y):
        if from_logits:
            lse = mp_lse(row)
            nll = [lse - M(v) for v in row]
        else:
            nll = [mp_neglog(v, clip, dtype) for v in row]
        v = nll[yi]
        if ls:
            v = (1 - M(ls)) * v + M(ls) / C * mp.fsum(nll)
        if z:
            v += M(z) * lse**2
        out.append(v)
    return out


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("opts", [{}, {"sample_weight": SW}, {"class_weight": CW},
                                  {"sample_weight": SW, "class_weight": CW},
                                  {"label_smoothing": 0.1}, {"z_loss": 1e-3},
                                  {"label_smoothing": 0.25, "z_loss": 1e-4, "sample_weight": SW},
                                  {"ignore_index": 1}, {"ignore_index": 1, "class_weight": CW}])
def test_sparse_ce_logits_mpmath(backend, dtype, opts):
    x = X_LOGITS.astype(dtype)
    if dtype == np.float32:
        x = x[[0, 1, 3, 4]]  # keep the float32 sums away from 700-sized terms
    y = Y_SPARSE[: x.shape[0]]
    sw = opts.get("sample_weight")
    sw = None if sw is None else sw[: x.shape[0]]
    losses = _sparse_mp(x, y, from_logits=True, ls=opts.get("label_smoothing", 0.0),
                        z=opts.get("z_loss", 0.0))
    w = np.ones(len(y)) if sw is None else sw.copy()
    if "class_weight" in opts:
        w = w * opts["class_weight"][y]
    if "ignore_index" in opts:
        w = w * (y != opts["ignore_index"])
    kw = dict(opts, sample_weight=sw) if sw is not None else dict(opts)
    check(lambda r: fl.sparse_categorical_cross_entropy(y, x, from_logits=True, reduction=r,
                                                        backend=backend, **kw),
          reduce_mp(losses, w), dtype)


P3 = np.array([[0.7, 0.2, 0.1], [0.0, 0.5, 0.5], [1.0, 0.0, 0.0], [1e-9, 1 - 1e-9, 0.0],
               [0.25, 0.25, 0.5]])
Y3 = np.array([0, 1, 0, 1, 2])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("clip", [None, "keras", "keras2", "torch", "sklearn", 1e-3])
@pytest.mark.parametrize("ls", [0.0, 0.2])
def test_sparse_ce_probs_mpmath(backend, dtype, clip, ls):
    x = P3.astype(dtype)
    if ls and clip is None:
        y, x = Y3[[0, 4]], x[[0, 4]]  # smoothing with p = 0 would be +inf
    else:
        y = Y3
    losses = _sparse_mp(x, y, from_logits=False, ls=ls, clip=clip, dtype=dtype)
    check(lambda r: fl.sparse_categorical_cross_entropy(y, x, clip=clip, label_smoothing=ls,
                                                        reduction=r, backend=backend),
          reduce_mp(losses), dtype)


def test_sparse_ce_keras_style_column_labels():
    x = X_LOGITS[:2]
    a = fl.sparse_categorical_cross_entropy(np.array([[0], [1]]), x, from_logits=True,
                                            reduction="none")
    b = fl.sparse_categorical_cross_entropy(np.array([0, 1]), x, from_logits=True,
                                            reduction="none")
    np.testing.assert_array_equal(a, b)
    assert a.shape == (2,)


def test_sparse_ce_float_and_unsigned_labels():
    x = X_LOGITS[:3]
    base = fl.sparse_categorical_cross_entropy([0, 1, 0], x, from_logits=True)
    assert fl.sparse_categorical_cross_entropy(np.array([0.0, 1.0, 0.0]), x,
                                               from_logits=True) == base
    assert fl.sparse_categorical_cross_entropy(np.array([0, 1, 0], np.uint8), x,
                                               from_logits=True) == base


# --------------------------------------------------------------------------- categorical CE

T3 = np.array([[0.7, 0.3, 0.0], [0.0, 0.0, 1.0], [0.2, 0.3, 0.5], [1.0, 0.0, 0.0],
               [0.0, 0.5, 0.5]])


def _categorical_mp(t, x, *, from_logits, ls=0.0, cw=None, clip=None, dtype=np.float64):
    out = []
    C = x.shape[1]
    for trow, row in zip(t, x):
        lse = mp_lse(row) if from_logits else None
        s = []
        for c in range(C):
            tc = (1 - M(ls)) * M(trow[c]) + M(ls) / C
            if cw is not None:
                tc *= M(cw[c])
            if tc == 0:
                continue
            nll = lse - M(row[c]) if from_logits else mp_neglog(row[c], clip, dtype)
            s.append(tc * nll)
        out.append(mp.fsum(s))
    return out


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("opts", [{}, {"sample_weight": SW}, {"class_weight": CW},
                                  {"label_smoothing": 0.1},
                                  {"label_smoothing": 0.3, "class_weight": CW,
                                   "sample_weight": SW}])
def test_categorical_ce_logits_mpmath(backend, dtype, opts):
    x = X_LOGITS.astype(dtype)
    t = T3.astype(dtype)
    if dtype == np.float32:
        x, t = x[[0, 1, 3, 4]], t[[0, 1, 3, 4]]
    sw = opts.get("sample_weight")
    kw = dict(opts)
    if sw is not None:
        kw["sample_weight"] = sw = sw[: x.shape[0]]
    losses = _categorical_mp(t, x, from_logits=True, ls=opts.get("label_smoothing", 0.0),
                             cw=opts.get("class_weight"))
    check(lambda r: fl.categorical_cross_entropy(t, x, from_logits=True, reduction=r,
                                                 backend=backend, **kw),
          reduce_mp(losses, sw), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("clip", [None, "keras", "keras2", "torch", "sklearn"])
def test_categorical_ce_probs_mpmath(backend, dtype, clip):
    x = P3.astype(dtype)
    t = np.array([[1.0, 0, 0], [0, 0.5, 0.5], [0.5, 0.0, 0.5], [0.0, 1.0, 0.0],
                  [0.25, 0.25, 0.5]], dtype)
    if clip is None:
        t[2] = [1.0, 0.0, 0.0]  # keep the exact case finite
    losses = _categorical_mp(t, x, from_logits=False, clip=clip, dtype=dtype)
    check(lambda r: fl.categorical_cross_entropy(t, x, clip=clip, reduction=r, backend=backend),
          reduce_mp(losses), dtype)


# --------------------------------------------------------------------------- binary CE

XB = np.array([[-11.2, 1.51, 3.94, 0.0], [1000.0, -1000.0, 36.0, -36.0],
               [1e-8, -1e-8, 20.0, -0.5]])
ZB = np.array([[1.0, 1.0, 0.0, 1.0], [0.0, 1.0, 1.0, 0.0], [0.3, 0.0, 1.0, 0.75]])
PW = np.array([1.0, 3.0, 0.5, 2.0])


def _bce_logits_mp(z, x, *, pw=None, ls=0.0):
    out = []
    K = x.shape[-1]
    for i, (zi, xi) in enumerate(zip(z.ravel(), x.ravel())):
        zz = M(zi) * (1 - M(ls)) + M(ls) / 2
        p = M(pw[i % K]) if pw is not None else mp.mpf(1)
        out.append(-(p * zz * mp_logsig(xi) + (1 - zz) * mp_logsig(-M(xi))))
    return out


def _bce_probs_mp(z, x, *, pw=None, ls=0.0, clip=None, dtype=np.float64):
    out = []
    K = x.shape[-1]
    for i, (zi, xi) in enumerate(zip(z.ravel(), x.ravel())):
        zz = M(zi) * (1 - M(ls)) + M(ls) / 2
        p = M(pw[i % K]) if pw is not None else mp.mpf(1)
        a = p * zz * mp_neglog(xi, clip, dtype) if p * zz != 0 else 0
        b = (1 - zz) * mp_neglog1m(xi, clip, dtype) if zz != 1 else 0
        out.append(a + b)
    return out


def _np_reshape(c, shape):
    return np.array(c, dtype=object).reshape(shape)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("opts", [{}, {"pos_weight": PW}, {"pos_weight": 2.5},
                                  {"label_smoothing": 0.1},
                                  {"sample_weight": np.array([1.0, 0.0, 2.5])},
                                  {"sample_weight": np.arange(12.0).reshape(3, 4) / 4},
                                  {"sample_weight": 0.5},
                                  {"pos_weight": PW, "label_smoothing": 0.2,
                                   "sample_weight": np.array([2.0, 1.0, 0.5])}])
def test_bce_logits_mpmath(backend, dtype, opts):
    x, z = XB.astype(dtype), ZB.astype(dtype)
    if dtype == np.float32:
        x, z = x[[0, 2]], z[[0, 2]]
        z[1, 0], z[1, 3] = 0.25, 0.75  # exact in float32
    pw = opts.get("pos_weight")
    if pw is not None and np.ndim(pw) == 0:
        pw = np.full(4, pw)
    losses = _bce_logits_mp(z, x, pw=pw, ls=opts.get("label_smoothing", 0.0))
    kw = dict(opts)
    sw = kw.get("sample_weight")
    if sw is not None and np.ndim(sw) >= 1:
        kw["sample_weight"] = sw = sw[: x.shape[0]]
    w = None if sw is None else np.broadcast_to(np.reshape(sw, np.shape(sw) + (1,) * (
        2 - np.ndim(sw))) if np.ndim(sw) else sw, x.shape).ravel()
    none_e, s, m = reduce_mp(losses, w)
    check(lambda r: fl.binary_cross_entropy(z, x, from_logits=True, reduction=r, backend=backend,
                                            **kw), (_np_reshape(none_e, x.shape), s, m), dtype)


PB = np.array([[0.7, 0.61, 0.04, 0.0], [1.0, 0.0, 1.0, 0.5], [1e-9, 1 - 1e-12, 0.3, 0.999]])
ZPB = np.array([[1.0, 1.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.5], [1.0, 0.0, 1.0, 0.0]])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("clip", [None, "keras", "keras2", "torch", "sklearn", 0.01])
@pytest.mark.parametrize("pos_weight", [None, PW])
def test_bce_probs_mpmath(backend, dtype, clip, pos_weight):
    x, z = PB.astype(dtype), ZPB.astype(dtype)
    losses = _bce_probs_mp(z, x, pw=pos_weight, clip=clip, dtype=dtype)
    none_e, s, m = reduce_mp(losses)
    check(lambda r: fl.binary_cross_entropy(z, x, clip=clip, pos_weight=pos_weight, reduction=r,
                                            backend=backend),
          (_np_reshape(none_e, x.shape), s, m), dtype)


def test_bce_clip_maxima_from_framework_notes():
    # /work/shared/reference/framework-semantics.md, float32 reference numbers
    f = np.float32
    one, zero = np.array([1.0], f), np.array([0.0], f)
    for t, p, clip, value, tol in [(one, zero, "keras", 16.118, 5e-4),
                                   (zero, one, "keras", 15.942, 5e-4),
                                   (one, zero, "keras2", 15.425, 5e-4),
                                   (zero, one, "keras2", 15.333, 5e-4),
                                   (one, zero, "sklearn", 15.94, 5e-3),
                                   (np.array([1.0]), np.array([0.0]), "sklearn", 36.04, 5e-3)]:
        assert float(fl.binary_cross_entropy(t, p, clip=clip)) == pytest.approx(value, abs=tol)
    assert fl.binary_cross_entropy(one, zero, clip="torch") == 100.0
    assert fl.binary_cross_entropy(zero, one, clip="torch") == 100.0


# --------------------------------------------------------------------------- KL and MSE

TK = np.array([[0.0, 1.0, 0.0], [0.5, 0.5, 0.0], [0.2, 0.3, 0.5], [1e-12, 0.5, 0.5 - 1e-12]])
PK = np.array([[0.2, 0.8, 0.0], [0.9, 0.1, 0.0], [0.2, 0.3, 0.5], [0.4, 0.4, 0.2]])


def _kl_mp(t, p, *, clip=None, dtype=np.float64):
    out = []
    for trow, prow in zip(t, p):
        s = []
        for tc, pc in zip(trow, prow):
            if clip == "keras":
                dt = np.dtype(dtype).type
                tc = min(max(dt(tc), dt(1e-7)), dt(1))
                pc = min(max(dt(pc), dt(1e-7)), dt(1))
            if tc == 0:
                continue
            s.append(M(tc) * (mp.log(M(tc)) - mp.log(M(pc))) if pc != 0 else mp.inf)
        out.append(mp.fsum(s))
    return out


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("clip", [None, "keras"])
@pytest.mark.parametrize("weighted", [False, True])
def test_kl_mpmath(backend, dtype, clip, weighted):
    t, p = TK.astype(dtype), PK.astype(dtype)
    sw = np.array([1.0, 2.0, 0.0, 0.5]) if weighted else None
    losses = _kl_mp(t, p, clip=clip, dtype=dtype)
    check(lambda r: fl.kl_divergence(t, p, clip=clip, sample_weight=sw, reduction=r,
                                     backend=backend), reduce_mp(losses, sw), dtype)


@pytest.mark.parametrize("log_input", [False, True])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_log_inputs(backend, log_input, log_target):
    t, p = TK[1:], PK[1:]
    expected = reduce_mp(_kl_mp(t, p))
    with np.errstate(divide="ignore"):
        tt = np.log(t) if log_target else t
        pp = np.log(p) if log_input else p
    check(lambda r: fl.kl_divergence(tt, pp, log_input=log_input, log_target=log_target,
                                     reduction=r, backend=backend), expected, np.float64,
          rtol=1e-12)  # log/exp round trips of the inputs


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ow", [None, np.array([0.3, 0.7, 0.0])])
def test_mse_mpmath(backend, dtype, ow):
    r = np.random.default_rng(7)
    t = r.standard_normal((6, 3)).astype(dtype)
    x = r.standard_normal((6, 3)).astype(dtype)
    sw = r.uniform(0, 2, 6)
    losses = []
    for tr, xr in zip(t, x):
        w = [mp.mpf(1)] * 3 if ow is None else [M(v) for v in ow]
        losses.append(mp.fsum(wi * (M(a) - M(b)) ** 2 for wi, a, b in zip(w, xr, tr)) / mp.fsum(w))
    check(lambda red: fl.mean_squared_error(t, x, output_weight=ow, sample_weight=sw,
                                            reduction=red, backend=backend),
          reduce_mp(losses, sw), dtype)


# --------------------------------------------------------------------------- logsumexp family


@pytest.mark.parametrize("dtype", DTYPES)
def test_logsumexp_softmax_mpmath(backend, dtype):
    x = np.array([[0.0, -40.0, 3.0], [1000.0, 999.0, -1000.0], [-1e-3, 1e-3, 0.0],
                  [-745.0, -746.0, -750.0]]).astype(dtype)
    if dtype == np.float32:
        x = x[[0, 2]]
    lse = [mp_lse(row) for row in x]
    got = fl.logsumexp(x, axis=1, backend=backend)
    assert got.dtype == dtype
    ls_got = fl.log_softmax(x, axis=1, backend=backend)
    sm_got = fl.softmax(x, axis=1, backend=backend)
    ls_exp = np.array([[float(M(v) - l) for v in row] for row, l in zip(x, lse)])
    sm_exp = np.array([[float(mp.exp(M(v) - l)) for v in row] for row, l in zip(x, lse)])
    lse_exp = np.array([float(v) for v in lse])
    if dtype == np.float64:
        np.testing.assert_allclose(got, lse_exp, rtol=1e-15)
        np.testing.assert_allclose(ls_got, ls_exp, rtol=1e-14)
        np.testing.assert_allclose(sm_got, sm_exp, rtol=1e-14)
    else:
        for g, e in ((got, lse_exp), (ls_got, ls_exp), (sm_got, sm_exp)):
            assert ulp_diff(g, e.astype(dtype)).max() <= 2


# scipy.special.logsumexp agreement. scipy rounds a little differently: allow a few ulps.

LSE_ARRAYS = {
    "3d": np.random.default_rng(0).standard_normal((3, 4, 5)) * 10,
    "specials": np.array([[0.0, -np.inf, 1.0], [-np.inf, -np.inf, -np.inf],
                          [np.inf, 0.0, 1.0], [np.nan, 0.0, 1.0], [1e308, 1e308, 0.0]]),
}


def _same(got, exp, rtol=4e-15):
    got, exp = np.asarray(got), np.asarray(exp)
    assert got.shape == exp.shape
    np.testing.assert_allclose(got, exp, rtol=rtol, atol=0, equal_nan=True)


@pytest.mark.parametrize("axis", [None, 0, 1, -1, (0, 1), (0, 2), (-1, 0), (0, 1, 2)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_logsumexp_matches_scipy_axes(backend, axis, keepdims):
    a = LSE_ARRAYS["3d"]
    _same(fl.logsumexp(a, axis=axis, keepdims=keepdims, backend=backend),
          sp.logsumexp(a, axis=axis, keepdims=keepdims))


def test_logsumexp_matches_scipy_specials(backend):
    a = LSE_ARRAYS["specials"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        exp = sp.logsumexp(a, axis=1)
    _same(fl.logsumexp(a, axis=1, backend=backend), exp)


@pytest.mark.parametrize("b", [np.array([1.0, 2.0, 0.5, 3.0, 1.0]),
                               np.array([[2.0], [0.0], [1.0], [0.5]]),
                               np.arange(20.0).reshape(4, 5) / 7])
@pytest.mark.parametrize("axis", [None, 0, 1])
def test_logsumexp_b_matches_scipy(b, axis):
    a = np.random.default_rng(1).standard_normal((4, 5)) * 5
    _same(fl.logsumexp(a, axis=axis, b=b), sp.logsumexp(a, axis=axis, b=b))
    r, s = fl.logsumexp(a, axis=axis, b=b, return_sign=True, keepdims=True)
    re, se = sp.logsumexp(a, axis=axis, b=b, return_sign=True, keepdims=True)
    _same(r, re)
    np.testing.assert_array_equal(s, se)


def test_logsumexp_negative_b_with_return_sign_matches_scipy():
    a = np.array([[0.0, 1.0, 2.0], [3.0, 2.0, 1.0], [0.0, 0.0, 5.0]])
    b = np.array([[1.0, -1.0, -1.0], [1.0, -1.0, -1.0], [1.0, -1.0, 0.0]])
    r, s = fl.logsumexp(a, axis=1, b=b, return_sign=True)
    re, se = sp.logsumexp(a, axis=1, b=b, return_sign=True)
    _same(r, re)
    np.testing.assert_array_equal(s, se)


def test_logsumexp_negative_sum_without_return_sign_is_nan_like_scipy():
    # scipy: "If return_sign is False, negative results become NaN" -- the
    # docstring of fastloss.logsumexp promises SciPy semantics for b.
    a = np.array([0.0, 1.0])
    b = np.array([1.0, -1.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert np.isnan(sp.logsumexp(a, b=b))
        assert np.isnan(fl.logsumexp(a, b=b))


def test_logsumexp_zero_b_masks_inf_and_nan_like_scipy():
    a = np.array([np.inf, np.nan, 1.0, 2.0])
    b = np.array([0.0, 0.0, 1.0, 1.0])
    assert fl.logsumexp(a, b=b) == pytest.approx(sp.logsumexp(a, b=b), rel=1e-15)


def test_logsumexp_sign_of_an_empty_sum_is_zero_like_scipy():
    # all -inf: the sum is 0, so scipy's sign is 0 (not +1)
    a = np.array([[-np.inf, -np.inf], [0.0, 1.0]])
    r, s = fl.logsumexp(a, axis=1, return_sign=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        re, se = sp.logsumexp(a, axis=1, return_sign=True)
    _same(r, re)
    np.testing.assert_array_equal(s, se)


@pytest.mark.parametrize("shape,axis", [((0,), None), ((2, 0), 1), ((0, 3), 0), ((0, 3), 1)])
def test_logsumexp_of_empty_matches_scipy(shape, axis):
    # log(sum of nothing) = log(0) = -inf, as in SciPy
    a = np.zeros(shape)
    _same(fl.logsumexp(a, axis=axis), sp.logsumexp(a, axis=axis))


def test_logsumexp_of_empty_over_an_axis_tuple():
    # SciPy 1.17 raises IndexError here (an empty reduction over a tuple of axes);
    # the mathematical value is log(0) = -inf for each remaining index
    _same(fl.logsumexp(np.zeros((2, 0, 3)), axis=(1, 2)), np.full(2, -np.inf))


def test_logsumexp_dtypes():
    assert fl.logsumexp(np.ones(3, np.float32)).dtype == np.float32
    assert fl.logsumexp(np.ones(3, np.float16)).dtype == np.float32  # half -> float32 (#18)
    assert fl.logsumexp(np.arange(3)).dtype == np.float64
    assert fl.logsumexp(np.arange(3)) == pytest.approx(sp.logsumexp(np.arange(3.0)), rel=1e-15)
    r, s = fl.logsumexp(np.ones(3, np.float32), return_sign=True)
    assert r.dtype == np.float32 and s.dtype == np.float32 and s == 1
    assert fl.logsumexp(np.float64(3.0)) == 3.0


@pytest.mark.parametrize("func,ref", [(fl.softmax, sp.softmax), (fl.log_softmax, sp.log_softmax)])
@pytest.mark.parametrize("axis", [None, 0, 1, 2, -1])
def test_softmax_matches_scipy(backend, func, ref, axis):
    a = LSE_ARRAYS["3d"]
    got = func(a, axis=axis, backend=backend)
    assert got.shape == a.shape and got.dtype == a.dtype
    np.testing.assert_allclose(got, ref(a, axis=axis), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("func,ref", [(fl.softmax, sp.softmax), (fl.log_softmax, sp.log_softmax)])
def test_softmax_specials_match_scipy(backend, func, ref):
    # rows: a -inf entry, all -inf (NaN), a +inf entry (NaN row: the docstring says
    # "Rows with a +inf or of all -inf give NaN, like SciPy"), a NaN entry
    a = np.array([[-np.inf, 0.0, 1.0], [-np.inf, -np.inf, -np.inf], [np.inf, 0.0, 1.0],
                  [np.nan, 0.0, 1.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        exp = ref(a, axis=1)
    got = func(a, axis=1, backend=backend)
    np.testing.assert_allclose(got, exp, rtol=1e-15, equal_nan=True)


def test_softmax_float32_and_sum_to_one():
    x = (np.random.default_rng(3).standard_normal((50, 7)) * 20).astype(np.float32)
    s = fl.softmax(x)
    assert s.dtype == np.float32
    np.testing.assert_allclose(s.sum(axis=1, dtype=np.float64), 1.0, rtol=4e-7)
    np.testing.assert_allclose(fl.log_softmax(x), sp.log_softmax(x.astype(np.float64), axis=1),
                               rtol=3e-7, atol=1e-6)


# --------------------------------------------------------------------------- scipy elementwise


def test_categorical_probs_matches_xlogy():
    r = np.random.default_rng(4)
    t = r.random((30, 6))
    t[t < 0.3] = 0
    p = r.random((30, 6))
    p /= p.sum(axis=1, keepdims=True)
    p[(t == 0) & (r.random(t.shape) < 0.5)] = 0.0  # some p = 0 where t = 0: 0 * log 0 = 0
    exp = -sp.xlogy(t, p).sum(axis=1)
    np.testing.assert_allclose(fl.categorical_cross_entropy(t, p, reduction="none"), exp,
                               rtol=1e-13)


def test_kl_matches_rel_entr():
    r = np.random.default_rng(5)
    t = r.random((40, 5))
    t[(t < 0.25) & (t < t.max(axis=1, keepdims=True))] = 0  # zeros, but no all-zero row
    t /= t.sum(axis=1, keepdims=True)
    p = r.random((40, 5))
    p /= p.sum(axis=1, keepdims=True)
    p[0, np.argmax(t[0])] = 0.0  # t > 0, p = 0: +inf
    p[1, t[1] == 0] = 0.0  # t = 0, p = 0: 0
    exp = sp.rel_entr(t, p).sum(axis=1)
    got = fl.kl_divergence(t, p, reduction="none")
    assert got[0] == np.inf
    np.testing.assert_allclose(got, exp, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(fl.kl_divergence(t, p, reduction="sum"), exp.sum(), rtol=1e-12)
    np.testing.assert_allclose(fl.kl_divergence(t[1:], p[1:]), exp[1:].mean(), rtol=1e-12)


def test_bce_logits_matches_log_expit():
    r = np.random.default_rng(6)
    x = r.standard_normal((20, 5)) * 30
    z = r.random((20, 5))
    exp = -(z * sp.log_expit(x) + (1 - z) * sp.log_expit(-x))
    np.testing.assert_allclose(fl.binary_cross_entropy(z, x, from_logits=True, reduction="none"),
                               exp, rtol=1e-13, atol=1e-300)


def test_sparse_logits_matches_scipy_log_softmax():
    r = np.random.default_rng(8)
    x = r.standard_normal((64, 9)) * 15
    y = r.integers(0, 9, 64)
    exp = -sp.log_softmax(x, axis=1)[np.arange(64), y]
    np.testing.assert_allclose(
        fl.sparse_categorical_cross_entropy(y, x, from_logits=True, reduction="none"), exp,
        rtol=1e-13, atol=1e-15)


# --------------------------------------------------------------------------- NaN policy


def _naive_sparse(x, y):
    return -sp.log_softmax(x, axis=1)[np.arange(len(y)), y]


NAN_X = np.array([[1.0, 2.0, 3.0], [np.nan, 0.0, 1.0], [0.5, -0.5, 2.0], [1.0, 1.0, np.nan],
                  [3.0, 0.0, -1.0]])
NAN_Y = np.array([2, 0, 1, 0, 0])


def test_nan_policy_propagate(backend):
    for red in ("sum", "mean"):
        assert np.isnan(fl.sparse_categorical_cross_entropy(NAN_Y, NAN_X, from_logits=True,
                                                            reduction=red, backend=backend))
    none = fl.sparse_categorical_cross_entropy(NAN_Y, NAN_X, from_logits=True, reduction="none",
                                               backend=backend)
    assert np.isnan(none).tolist() == [False, True, False, True, False]


@pytest.mark.parametrize("weighted", [False, True])
def test_nan_policy_omit(backend, weighted):
    sw = np.array([1.0, 2.0, 0.5, 3.0, 1.5]) if weighted else None
    keep = [0, 2, 4]
    l = _naive_sparse(NAN_X[keep], NAN_Y[keep])
    w = np.ones(3) if sw is None else sw[keep]
    kw = dict(from_logits=True, nan_policy="omit", sample_weight=sw, backend=backend)
    np.testing.assert_allclose(fl.sparse_categorical_cross_entropy(NAN_Y, NAN_X, reduction="sum",
                                                                   **kw), (w * l).sum(), rtol=1e-14)
    np.testing.assert_allclose(fl.sparse_categorical_cross_entropy(NAN_Y, NAN_X, reduction="mean",
                                                                   **kw),
                               (w * l).sum() / w.sum(), rtol=1e-14)
    none = fl.sparse_categorical_cross_entropy(NAN_Y, NAN_X, reduction="none", **kw)
    assert np.isnan(none[[1, 3]]).all()  # "none" still shows the NaN


def test_nan_policy_omit_all_nan_mean_is_nan_with_warning():
    x = np.full((2, 3), np.nan)
    with pytest.warns(RuntimeWarning):
        assert np.isnan(fl.sparse_categorical_cross_entropy([0, 1], x, from_logits=True,
                                                            nan_policy="omit"))
    assert fl.sparse_categorical_cross_entropy([0, 1], x, from_logits=True, nan_policy="omit",
                                               reduction="sum") == 0.0


def test_nan_policy_omit_other_losses():
    z = np.array([[1.0, 0.0], [np.nan, 1.0]])
    x = np.array([[0.3, -2.0], [0.5, 1.5]])
    exp = -(sp.log_expit(0.3) + sp.log_expit(2.0) + sp.log_expit(1.5))
    assert fl.binary_cross_entropy(z, x, from_logits=True, nan_policy="omit",
                                   reduction="sum") == pytest.approx(exp, rel=1e-14)
    assert fl.binary_cross_entropy(z, x, from_logits=True, nan_policy="omit") == pytest.approx(
        exp / 3, rel=1e-14)
    t = np.array([[0.0, 1.0], [1.0, np.nan], [0.5, 0.5]])
    p = np.array([[0.2, 0.8], [0.9, 0.1], [0.5, 0.5]])
    assert fl.kl_divergence(t, p, nan_policy="omit") == pytest.approx(-np.log(0.8) / 2, rel=1e-14)
    assert fl.categorical_cross_entropy(t, p, nan_policy="omit") == pytest.approx(
        (-np.log(0.8) - np.log(0.5)) / 2, rel=1e-14)
    assert fl.mean_squared_error(t, p, nan_policy="omit") == pytest.approx(
        (0.04 + 0.04) / 2 / 2, rel=1e-14)


@pytest.mark.parametrize("func,args,where", [
    (fl.sparse_categorical_cross_entropy, (NAN_Y, NAN_X), r"y_pred\[1, 0\]"),
    (fl.categorical_cross_entropy, (np.eye(3)[NAN_Y], NAN_X), r"y_pred\[1, 0\]"),
    (fl.categorical_cross_entropy, (np.array([[0.0, np.nan, 1.0]]), np.zeros((1, 3))),
     r"y_true\[0, 1\]"),
    (fl.binary_cross_entropy, (np.array([[0.0, 1.0], [1.0, np.nan]]), np.zeros((2, 2))),
     r"y_true\[1, 1\]"),
    (fl.binary_cross_entropy, (np.zeros((2, 3)), np.array([[0.0, 1.0, 2.0], [np.nan, 0, 0]])),
     r"y_pred\[1, 0\]"),
    (fl.mean_squared_error, (np.zeros((2, 2)), np.array([[0.0, 0.0], [0.0, np.nan]])),
     r"y_pred\[1, 1\]"),
])
def test_nan_policy_raise_names_first_nan(func, args, where):
    kw = {"from_logits": True} if func is not fl.mean_squared_error else {}
    with pytest.raises(ValueError, match=where + ".*NaN"):
        func(*args, nan_policy="raise", **kw)
    func(*[np.nan_to_num(a) for a in args], nan_policy="raise", **kw)  # no NaN: no error


def test_nan_policy_raise_index_is_in_the_callers_layout():
    # class axis 0: the first NaN is reported at its index in y_pred as passed
    x = np.zeros((3, 4))
    x[2, 1] = np.nan
    x[0, 3] = np.nan
    with pytest.raises(ValueError, match=r"y_pred\[0, 3\]"):
        fl.sparse_categorical_cross_entropy([0, 1, 2, 0], x, from_logits=True, axis=0,
                                            nan_policy="raise")
    kl_t = np.full((2, 2), 0.5)
    with pytest.raises(ValueError, match=r"y_pred\[0, 1\]"):
        fl.kl_divergence(kl_t, np.array([[0.5, np.nan], [0.5, 0.5]]), nan_policy="raise")


# --------------------------------------------------------------------------- weights, ignore_index


@pytest.mark.parametrize("bad", [np.inf, np.nan])
def test_zero_sample_weight_removes_inf_and_nan_samples(backend, bad):
    # sparse probs: p_y = 0 -> inf; logits NaN -> NaN
    p = np.array([[0.5, 0.5], [1.0, 0.0], [0.25, 0.75]])
    x = np.array([[0.0, 1.0], [bad, 0.0], [2.0, 1.0]])
    sw = np.array([1.0, 0.0, 3.0])
    exp_p = (-np.log(0.5) - 3 * np.log(0.75))
    for red, exp in (("sum", exp_p), ("mean", exp_p / 4)):
        assert fl.sparse_categorical_cross_entropy([0, 1, 1], p, sample_weight=sw, reduction=red,
                                                   backend=backend) == pytest.approx(exp, rel=1e-14)
    none = fl.sparse_categorical_cross_entropy([0, 1, 1], p, sample_weight=sw, reduction="none",
                                               backend=backend)
    assert none[1] == 0.0
    l = _naive_sparse(x[[0, 2]], np.array([1, 0]))
    assert fl.sparse_categorical_cross_entropy([1, 0, 0], x, from_logits=True, sample_weight=sw,
                                               reduction="sum", backend=backend) == pytest.approx(
        l[0] + 3 * l[1], rel=1e-14)
    # the same for the other losses
    assert fl.binary_cross_entropy([1.0, 1.0], [0.5, 0.0], sample_weight=[1.0, 0.0],
                                   backend=backend) == pytest.approx(np.log(2), rel=1e-15)
    assert fl.categorical_cross_entropy([[1.0, 0.0], [0.0, 1.0]], p[:2], sample_weight=[1.0, 0.0],
                                        backend=backend) == pytest.approx(np.log(2), rel=1e-15)
    assert fl.kl_divergence([[1.0, 0.0], [0.0, 1.0]], p[:2], sample_weight=[1.0, 0.0],
                            backend=backend) == pytest.approx(np.log(2), rel=1e-15)
    assert fl.mean_squared_error([[0.0, 0.0], [0.0, 0.0]], [[1.0, 1.0], [bad, 0.0]],
                                 sample_weight=[1.0, 0.0], backend=backend) == 1.0


def test_zero_weight_on_an_infinite_loss_is_silent(backend):
    # A zero weight removes the sample; the user must not see a NumPy
    # "invalid value encountered in multiply" RuntimeWarning from inf * 0.
    p = np.array([[0.5, 0.5], [1.0, 0.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fl.sparse_categorical_cross_entropy([0, 1], p, sample_weight=[1.0, 0.0], backend=backend)
        fl.binary_cross_entropy([1.0, 1.0], [0.5, 0.0], sample_weight=[1.0, 0.0], backend=backend)


def test_zero_class_weight_removes_samples():
    p = np.array([[0.5, 0.5], [1.0, 0.0], [0.25, 0.75]])
    # class 1 has weight 0: sample 1 (p_1 = 0, loss inf) is removed
    got = fl.sparse_categorical_cross_entropy([0, 1, 0], p, class_weight=[2.0, 0.0])
    assert got == pytest.approx((2 * np.log(2) - 2 * np.log(0.25)) / 4, rel=1e-14)


def test_ignore_index(backend):
    x = np.array([[1.0, 2.0, 3.0], [np.nan, 7.0, 1.0], [0.5, -0.5, 2.0], [2.0, 0.0, 0.0]])
    y = np.array([2, -100, 1, 0])
    kw = dict(from_logits=True, ignore_index=-100, backend=backend)
    none = fl.sparse_categorical_cross_entropy(y, x, reduction="none", **kw)
    keep = [0, 2, 3]
    l = _naive_sparse(x[keep], y[keep])
    assert none[1] == 0.0  # ignored rows give 0 even with a NaN logit
    np.testing.assert_allclose(none[keep], l, rtol=1e-14)
    assert fl.sparse_categorical_cross_entropy(y, x, reduction="mean", **kw) == pytest.approx(
        l.mean(), rel=1e-14)
    assert fl.sparse_categorical_cross_entropy(y, x, reduction="sum", **kw) == pytest.approx(
        l.sum(), rel=1e-14)
    cw = np.array([1.0, 2.0, 0.5])
    assert fl.sparse_categorical_cross_entropy(y, x, class_weight=cw, **kw) == pytest.approx(
        (cw[y[keep]] * l).sum() / cw[y[keep]].sum(), rel=1e-14)


def test_ignore_index_inside_the_class_range():
    x = np.array([[1.0, 2.0, 3.0], [0.0, 7.0, 1.0], [0.5, -0.5, 2.0]])
    y = np.array([2, 1, 0])
    l = _naive_sparse(x, y)
    got = fl.sparse_categorical_cross_entropy(y, x, from_logits=True, ignore_index=1)
    assert got == pytest.approx((l[0] + l[2]) / 2, rel=1e-14)


def test_all_ignored_mean_is_nan_with_warning():
    x = np.zeros((2, 3))
    with pytest.warns(RuntimeWarning):
        assert np.isnan(fl.sparse_categorical_cross_entropy([-1, -1], x, from_logits=True,
                                                            ignore_index=-1))
    assert fl.sparse_categorical_cross_entropy([-1, -1], x, from_logits=True, ignore_index=-1,
                                               reduction="sum") == 0.0


def test_all_zero_weights_mean_is_nan_with_warning():
    with pytest.warns(RuntimeWarning):
        assert np.isnan(fl.binary_cross_entropy([1.0, 0.0], [0.5, 0.5], sample_weight=0.0))


# --------------------------------------------------------------------------- empty input

EMPTY_CASES = {
    "sparse_categorical_cross_entropy": (np.zeros(0, np.int64), np.zeros((0, 3))),
    "categorical_cross_entropy": (np.zeros((0, 3)), np.zeros((0, 3))),
    "binary_cross_entropy": (np.zeros((0, 3)), np.zeros((0, 3))),
    "kl_divergence": (np.zeros((0, 3)), np.zeros((0, 3))),
    "mean_squared_error": (np.zeros((0, 3)), np.zeros((0, 3))),
}


@pytest.mark.parametrize("name", list(fl.LOSSES))
@pytest.mark.parametrize("dtype", DTYPES)
def test_empty_input_follows_numpy(backend, name, dtype):
    func = fl.LOSSES[name].func
    yt, yp = EMPTY_CASES[name]
    yp = yp.astype(dtype)
    if yt.dtype.kind == "f":
        yt = yt.astype(dtype)
    with pytest.warns(RuntimeWarning):
        m = func(yt, yp, backend=backend)
    assert np.isnan(m) and m.dtype == dtype
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = func(yt, yp, reduction="sum", backend=backend)
        n = func(yt, yp, reduction="none", backend=backend)
    assert s == 0.0 and s.dtype == dtype
    assert n.dtype == dtype
    assert n.shape == ((0, 3) if name == "binary_cross_entropy" else (0,))


def test_registry_covers_the_public_losses():
    assert set(fl.LOSSES) == set(EMPTY_CASES)
    for name, row in fl.LOSSES.items():
        assert row.func is getattr(fl, name)


def test_bce_weights_broadcast_over_trailing_axes(backend):
    r = np.random.default_rng(12)
    x = r.standard_normal((3, 4, 5)) * 4
    z = (r.random((3, 4, 5)) < 0.5).astype(np.float64)
    pw = r.uniform(0.5, 3.0, 5)
    l = -(pw * z * sp.log_expit(x) + (1 - z) * sp.log_expit(-x))
    for sw in (r.random(3), r.random((3, 4)), r.random((3, 4, 5)), 0.7):
        w = np.broadcast_to(np.reshape(sw, np.shape(sw) + (1,) * (3 - np.ndim(sw))), x.shape)
        kw = dict(from_logits=True, pos_weight=pw, sample_weight=sw, backend=backend)
        np.testing.assert_allclose(fl.binary_cross_entropy(z, x, reduction="none", **kw), w * l,
                                   rtol=1e-13)
        assert fl.binary_cross_entropy(z, x, reduction="sum", **kw) == pytest.approx(
            (w * l).sum(), rel=1e-13)
        assert fl.binary_cross_entropy(z, x, **kw) == pytest.approx((w * l).sum() / w.sum(),
                                                                    rel=1e-13)


def test_bce_zero_d_inputs():
    assert fl.binary_cross_entropy(1.0, 0.3, from_logits=True, reduction="none") == \
        pytest.approx(-sp.log_expit(0.3), rel=1e-15)
    assert fl.binary_cross_entropy(0.0, 0.25) == pytest.approx(-np.log(0.75), rel=1e-15)
