"""``fastloss.torch`` against ``torch.nn.functional`` (the installed PyTorch).

Tolerances. float64: ``rtol=1e-12``. float32: values PyTorch computes exactly
up to one rounding (``nll_loss``, BCE on probabilities per element) must be
within 1 ulp, ``mse_loss`` per element within 2 ulp (PyTorch rounds ``x - t`` and
then its square). Everything involving a log-sum-exp or a float32 sum is
inexact in PyTorch: ``log_softmax`` rounds ``x - max``, every ``exp``, the sum of
``C`` terms and its log, so its per-sample error is below
``eps32 * (|x_y - max| + |lse - max| + C)``; we allow 4x that (``K=4``), and for
reductions add PyTorch's float32 summation error ``log2(N) * eps32 * sum|c_i|``.
fastloss itself is checked against float64 NumPy references computed here.
"""

import math
import warnings

import numpy as np
import pytest

import fastloss
import fastloss.torch as FT
from testutil import ulp_diff
pytestmark = pytest.mark.frameworks

EPS = {np.float32: float(np.finfo(np.float32).eps), np.float64: float(np.finfo(np.float64).eps)}
DTYPES = [np.float32, np.float64]
K = 4


def T(torch, a):
    return torch.from_numpy(np.ascontiguousarray(a))


def check(got, exp, dtype, scale, *, k=K):
    """|got - exp| <= k * eps * scale (+ rtol 1e-12 in float64); NaN must match NaN."""
    got = np.asarray(got, dtype=np.float64)
    exp = np.asarray(exp, dtype=np.float64)
    assert got.shape == exp.shape, (got.shape, exp.shape)
    assert np.array_equal(np.isnan(got), np.isnan(exp)), (got, exp)
    fin = ~np.isnan(exp)
    bound = k * EPS[dtype] * np.broadcast_to(np.asarray(scale, dtype=np.float64), exp.shape)[fin]
    if dtype == np.float64:
        bound = np.maximum(bound, 1e-12 * np.abs(exp[fin]))
    with np.errstate(invalid="ignore"):
        err = np.abs(got[fin] - exp[fin])
    ok = (err <= bound) | (got[fin] == exp[fin])
    assert ok.all(), ("max err / bound", float(np.max(err / np.maximum(bound, 1e-300))))


def ce_scale(x2, y):
    """Per-row size of the terms PyTorch's float32 cross-entropy rounds (see module doc)."""
    x = x2.astype(np.float64)
    m = x.max(axis=1)
    lse = m + np.log(np.exp(x - m[:, None]).sum(axis=1))
    ys = np.where((y >= 0) & (y < x.shape[1]), y, 0)
    return np.abs(x[np.arange(len(x)), ys] - m) + np.abs(lse - m) + x.shape[1] + np.abs(x).max(1)


def red_scale(per_sample_scale, contrib):
    n = max(len(contrib), 2)
    return np.sum(per_sample_scale) + math.log2(n) * np.sum(np.abs(contrib))


@pytest.fixture(scope="module")
def data():
    r = np.random.default_rng(7)
    n, c = 96, 6
    logits = r.standard_normal((n, c)) * 4
    logits[0] = [80, -80, 0, 1, 2, 3]  # large logits
    logits[1, 2] = 40.0
    labels = r.integers(0, c, n)
    labels[::7] = -100
    e = np.exp(r.standard_normal((n, c)) * 2)
    probs = e / e.sum(axis=1, keepdims=True)
    probs[2] = [0, 1, 0, 0, 0, 0]  # exact 0 and 1
    z = (r.random((n, c)) < 0.4).astype(np.float64)
    z[:3] = r.random((3, c))
    return dict(logits=logits, labels=labels, probs=probs, z=z, cw=r.uniform(0.5, 2, c),
                pw=r.uniform(0.5, 3, c), w=r.uniform(0, 2, (n, c)))


# --------------------------------------------------------------------------- cross-entropy


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("opts", [{}, {"weight": True}, {"label_smoothing": 0.2},
                                  {"weight": True, "label_smoothing": 0.3},
                                  {"ignore_index": 2}])
def test_cross_entropy_index(torch, data, dtype, reduction, opts):
    F = torch.nn.functional
    x = data["logits"].astype(dtype)
    y = data["labels"].copy()
    kw = dict(opts)
    if kw.pop("weight", False):
        kw["weight"] = data["cw"].astype(dtype)
    if "ignore_index" in kw:
        y[y < 0] = 2
    ours = FT.cross_entropy(x, y, reduction=reduction, **kw)
    tkw = {k: (T(torch, v) if isinstance(v, np.ndarray) else v) for k, v in kw.items()}
    ref_none = F.cross_entropy(T(torch, x), T(torch, y), reduction="none", **tkw).numpy()
    ref = F.cross_entropy(T(torch, x), T(torch, y), reduction=reduction, **tkw).numpy()
    s = ce_scale(x, y) * (kw["weight"].max() if "weight" in kw else 1.0)
    if reduction == "none":
        check(ours, ref, dtype, s)
        assert ours.dtype == dtype
    else:
        ii = kw.get("ignore_index", -100)
        wy = np.where(y != ii, kw["weight"][np.where(y != ii, y, 0)] if "weight" in kw else 1.0, 0)
        div = 1.0 if reduction == "sum" else wy.sum()
        check(ours, ref, dtype, red_scale(s, ref_none) / div)
        assert np.asarray(ours).dtype == dtype and np.ndim(ours) == 0


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_weighted_smoothing_is_pytorchs(torch, data, dtype):
    """Per sample ``(1-ls) w_y nll_y + ls/C sum_c w_c nll_c``: a float64 NumPy reference."""
    x = data["logits"][3:40].astype(dtype)
    y = data["labels"][3:40].copy()
    y[y < 0] = 0
    cw, ls, C = data["cw"], 0.3, x.shape[1]
    x64 = x.astype(np.float64)
    lse = np.log(np.exp(x64 - x64.max(1, keepdims=True)).sum(1)) + x64.max(1)
    nll = lse[:, None] - x64
    ref = (1 - ls) * cw[y] * nll[np.arange(len(y)), y] + ls / C * (nll * cw).sum(1)
    got = FT.cross_entropy(x, y, weight=cw.astype(dtype), label_smoothing=ls, reduction="none")
    check(got, ref, dtype, np.abs(ref), k=2)
    got_mean = FT.cross_entropy(x, y, weight=cw.astype(dtype), label_smoothing=ls)
    check(got_mean, ref.sum() / cw[y].sum(), dtype, np.abs(ref).sum() / cw[y].sum(), k=4)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_prob_targets_nd(torch, data, dtype, reduction):
    F = torch.nn.functional
    r = np.random.default_rng(3)
    x = (r.standard_normal((4, 5, 3, 2)) * 3).astype(dtype)  # (N, C, d1, d2)
    t = r.random((4, 5, 3, 2))
    t = (t / t.sum(axis=1, keepdims=True)).astype(dtype)
    t[0, :, 0, 0] = [0, 0, 1, 0, 0]
    w = data["cw"][:5].astype(dtype)
    ours = FT.cross_entropy(x, t, weight=w, reduction=reduction, label_smoothing=0.1)
    ref = F.cross_entropy(T(torch, x), T(torch, t), weight=T(torch, w), reduction=reduction,
                          label_smoothing=0.1).numpy()
    x2 = np.moveaxis(x, 1, -1).reshape(-1, 5)
    s = ce_scale(x2, np.zeros(len(x2), int)) * 2 * w.max()
    s = s.reshape(4, 3, 2) if reduction == "none" else red_scale(s, s) / (
        1 if reduction == "sum" else 24)
    check(ours, ref, dtype, s)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_index_nd(torch, reduction):
    F = torch.nn.functional
    r = np.random.default_rng(4)
    x = (r.standard_normal((3, 4, 5, 2)) * 3).astype(np.float32)
    y = r.integers(0, 4, (3, 5, 2))
    y[0, 0] = -100
    ours = FT.cross_entropy(x, y, reduction=reduction)
    ref = F.cross_entropy(T(torch, x), T(torch, y), reduction=reduction).numpy()
    x2 = np.moveaxis(x, 1, -1).reshape(-1, 4)
    s = ce_scale(x2, y.reshape(-1))
    s = s.reshape(3, 5, 2) if reduction == "none" else red_scale(s, s)
    check(ours, ref, np.float32, s)
    x1 = x[0, :, 0, 0]
    check(FT.cross_entropy(x1, np.int64(2)), F.cross_entropy(T(torch, x1), torch.tensor(2)).numpy(),
          np.float32, ce_scale(x1[None], np.array([2]))[0])


def test_cross_entropy_edges(torch):
    F = torch.nn.functional
    x = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, -np.inf], [np.nan, 0, 0], [np.inf, 0, 1]],
                 dtype=np.float32)
    cw = np.array([1.0, 1.0, 0.0], dtype=np.float32)
    cases = [
        (np.array([0, 1, 1, 0]), {}),
        (np.array([0, 2, 1, 1]), {"weight": cw}),  # 0 * inf and 0 * NaN: NaN in PyTorch
        (np.array([-100, -100, -100, -100]), {}),  # all ignored: mean 0/0 = NaN
        (np.array([0, 1, -100, -100]), {"label_smoothing": 0.1}),
        (np.array([0, 1, 0, 2]), {"weight": cw, "label_smoothing": 0.2}),
        (np.array([[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float32), {}),
    ]
    for y, kw in cases:
        for red in ("mean", "sum", "none"):
            tkw = {k: (T(torch, v) if isinstance(v, np.ndarray) else v) for k, v in kw.items()}
            ref = F.cross_entropy(T(torch, x), T(torch, y), reduction=red, **tkw).numpy()
            got = FT.cross_entropy(x, y, reduction=red, **kw)
            check(got, ref, np.float32, 100.0)
    empty = np.zeros((0, 3), np.float32)
    assert np.isnan(FT.cross_entropy(empty, np.zeros(0, np.int64)))
    assert np.isnan(FT.cross_entropy(empty, empty))
    assert FT.cross_entropy(empty, np.zeros(0, np.int64), reduction="sum") == 0


def test_cross_entropy_errors(torch):
    F = torch.nn.functional
    x = np.zeros((2, 3), np.float32)
    bad = [
        (np.array([0, 1], np.int32), {}),
        (np.array([0.0, 1.0], np.float32), {}),
        (np.array([0, 5]), {}),
        (np.array([0, 1]), {"label_smoothing": 1.5}),
        (np.array([0, 1, 2]), {}),
        (np.array([0, 1]), {"reduction": "avg"}),
    ]
    for y, kw in bad:
        with pytest.raises(Exception) as theirs:
            F.cross_entropy(T(torch, x), T(torch, y), **kw)
        with pytest.raises(type(theirs.value)):
            FT.cross_entropy(x, y, **kw)
    assert FT.cross_entropy(x, np.array([0, 1], np.uint8)) == pytest.approx(math.log(3))


# --------------------------------------------------------------------------- NLL, BCE


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_nll_loss(torch, data, dtype, reduction):
    F = torch.nn.functional
    lp = np.log(data["probs"] + 1e-30).astype(dtype)
    y = data["labels"]
    w = data["cw"].astype(dtype)
    ours = FT.nll_loss(lp, y, weight=w, reduction=reduction)
    ref = F.nll_loss(T(torch, lp), T(torch, y), weight=T(torch, w), reduction=reduction).numpy()
    if reduction == "none":
        assert ulp_diff(ours, ref).max() == 0  # one exact product, rounded once
    else:
        check(ours, ref, dtype, red_scale(np.zeros(1), ref_none := F.nll_loss(
            T(torch, lp), T(torch, y), weight=T(torch, w), reduction="none").numpy())
            / (1 if reduction == "sum" else w[np.where(y >= 0, y, 0)][y >= 0].sum()))
        assert ref_none.shape == y.shape
    x = np.array([[-np.inf, 0.0]], np.float32)
    ref0 = F.nll_loss(T(torch, x), torch.tensor([0]), weight=torch.tensor([0.0, 1.0])).numpy()
    assert np.isnan(ref0) and np.isnan(FT.nll_loss(x, np.array([0]), weight=np.array([0, 1.0],
                                                                                     np.float32)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_binary_cross_entropy(torch, data, dtype, reduction):
    F = torch.nn.functional
    p = data["probs"].astype(dtype)
    z = data["z"].astype(dtype)
    w = data["w"][0].astype(dtype)  # broadcast along rows
    ours = FT.binary_cross_entropy(p, z, weight=w, reduction=reduction)
    ref = F.binary_cross_entropy(T(torch, p), T(torch, z), weight=T(torch, w),
                                 reduction=reduction).numpy()
    if reduction == "none":
        # hard labels: one log, so 1 ulp (PyTorch's log is faithful, fastloss's correctly
        # rounded); times a weight both round again: 2 ulp. Soft labels add two terms.
        hard = (z == 0) | (z == 1)
        plain = FT.binary_cross_entropy(p, z, reduction="none")
        ref_plain = F.binary_cross_entropy(T(torch, p), T(torch, z), reduction="none").numpy()
        assert ulp_diff(plain[hard], ref_plain[hard]).max() <= 1
        assert ulp_diff(ours[hard], ref[hard]).max() <= 2
        check(ours, ref, dtype, np.abs(ref) + 1e-30)
        assert ours.max() <= 100 * w.max()  # log clamped at -100
    else:
        v = F.binary_cross_entropy(T(torch, p), T(torch, z), weight=T(torch, w),
                                   reduction="none").numpy()
        check(ours, ref, dtype, red_scale(np.abs(v), v) / (1 if reduction == "sum" else v.size))


def test_binary_cross_entropy_edges(torch):
    F = torch.nn.functional
    p = np.array([0.0, 1.0, 0.0, 1.0, 0.5], np.float32)
    z = np.array([1.0, 0.0, 0.0, 1.0, 0.5], np.float32)
    for red in ("none", "mean", "sum"):
        check(FT.binary_cross_entropy(p, z, reduction=red),
              F.binary_cross_entropy(T(torch, p), T(torch, z), reduction=red).numpy(),
              np.float32, 100.0, k=1)
    for bad_p, bad_z in [([1.5], [1.0]), ([0.5], [1.5]), ([np.nan], [1.0]), ([-0.1], [0.0])]:
        bp, bz = np.array(bad_p, np.float32), np.array(bad_z, np.float32)
        with pytest.raises(RuntimeError):
            F.binary_cross_entropy(T(torch, bp), T(torch, bz))
        with pytest.raises(RuntimeError, match="between 0 and 1"):
            FT.binary_cross_entropy(bp, bz)
    with pytest.raises(ValueError, match="target size"):
        FT.binary_cross_entropy(p, z[:2])
    with pytest.raises(RuntimeError, match="Found dtype Double"):
        FT.binary_cross_entropy(p, z.astype(np.float64))
    assert np.isnan(FT.binary_cross_entropy(p[:0], z[:0]))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("pw_kind", [None, "class", "scalar"])
def test_bce_with_logits(torch, data, dtype, reduction, pw_kind):
    F = torch.nn.functional
    x = data["logits"].astype(dtype)
    z = data["z"].astype(dtype)
    w = data["w"].astype(dtype)
    pw = {None: None, "class": data["pw"], "scalar": np.array(2.5)}[pw_kind]
    pw = None if pw is None else pw.astype(dtype)
    ours = FT.binary_cross_entropy_with_logits(x, z, weight=w, reduction=reduction, pos_weight=pw)
    ref = F.binary_cross_entropy_with_logits(
        T(torch, x), T(torch, z), weight=T(torch, w), reduction=reduction,
        pos_weight=None if pw is None else T(torch, pw)).numpy()
    # PyTorch forms (1-t)*x - lw*log_sigmoid(x): it rounds terms of size |x|
    pwm = 1.0 if pw is None else float(np.max(pw))
    s = (np.abs(x.astype(np.float64)) * (1 + pwm) + 1) * w
    if reduction == "none":
        check(ours, ref, dtype, s)
    else:
        v = F.binary_cross_entropy_with_logits(T(torch, x), T(torch, z), weight=T(torch, w),
                                               reduction="none").numpy()
        check(ours, ref, dtype, red_scale(s, v) / (1 if reduction == "sum" else v.size))


def test_bce_with_logits_exact_where_pytorch_cancels():
    """t=0, x=-20: the loss is log1p(exp(-20)) = 2.06e-9; PyTorch's float32 gives 0."""
    got = FT.binary_cross_entropy_with_logits(np.float32([-20.0]), np.float32([0.0]),
                                              reduction="none")
    assert ulp_diff(got, np.float32([math.log1p(math.exp(-20.0))]))[0] == 0


def test_bce_with_logits_non_finite(torch):
    F = torch.nn.functional
    x = np.array([np.inf, -np.inf, np.inf, -np.inf, np.nan, 3.0], np.float32)
    z = np.array([1.0, 0.0, 0.0, 1.0, 1.0, 1.0], np.float32)
    w = np.array([1, 1, 1, 1, 1, 0], np.float32)
    for red in ("none", "mean", "sum"):
        for kw in ({}, {"weight": w}, {"pos_weight": np.float32([2.0])}):
            tkw = {k: T(torch, v) for k, v in kw.items()}
            ref = F.binary_cross_entropy_with_logits(T(torch, x), T(torch, z), reduction=red,
                                                     **tkw).numpy()
            got = FT.binary_cross_entropy_with_logits(x, z, reduction=red, **kw)
            check(got, ref, np.float32, 10.0)
            if red == "none":
                assert np.array_equal(np.isinf(got), np.isinf(ref))


# --------------------------------------------------------------------------- KL, MSE


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none", "batchmean"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div(torch, data, dtype, reduction, log_target):
    F = torch.nn.functional
    lp = np.log(data["probs"] + 1e-12).astype(dtype)
    t = np.roll(data["probs"], 1, axis=0)
    t[5, :] = 0
    t[5, 0] = 1
    t = (np.log(t + 1e-20) if log_target else t).astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = FT.kl_div(lp, t, reduction=reduction, log_target=log_target)
        ref = F.kl_div(T(torch, lp), T(torch, t), reduction=reduction,
                       log_target=log_target).numpy()
    tt = np.exp(t.astype(np.float64)) if log_target else t.astype(np.float64)
    s = tt * (np.abs(np.log(np.maximum(tt, 1e-300))) + np.abs(lp.astype(np.float64))) + 1e-40
    if reduction != "none":
        div = {"sum": 1, "mean": s.size, "batchmean": s.shape[0]}[reduction]
        s = red_scale(s, s) / div
    check(ours, ref, dtype, s)


def test_kl_div_edges(torch):
    F = torch.nn.functional
    x = np.array([-np.inf, -1.0, 0.0], np.float32)
    for t, lt in [(np.float32([0.0, 1.0, 0.0]), False), (np.float32([-np.inf, 0.0, -1.0]), True),
                  (np.float32([0.5, 0.5, 0.0]), False)]:
        for red in ("none", "sum", "batchmean"):
            ref = F.kl_div(T(torch, x), T(torch, t), reduction=red, log_target=lt).numpy()
            check(FT.kl_div(x, t, reduction=red, log_target=lt), ref, np.float32, 10.0)
    with pytest.warns(UserWarning, match="batchmean"):
        FT.kl_div(x[1:], np.float32([0.5, 0.5]))
    s = FT.kl_div(np.float32(-1.0), np.float32(0.5), reduction="batchmean")  # 0-d: a sum
    check(s, F.kl_div(torch.tensor(-1.0), torch.tensor(0.5), reduction="batchmean").numpy(),
          np.float32, 1.0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss(torch, data, dtype, reduction):
    F = torch.nn.functional
    x = data["logits"].astype(dtype)
    t = data["probs"].astype(dtype)
    ours = FT.mse_loss(x, t, reduction=reduction)
    ref = F.mse_loss(T(torch, x), T(torch, t), reduction=reduction).numpy()
    if reduction == "none":
        assert ulp_diff(ours, ref).max() <= 2  # PyTorch rounds x - t, then its square
    else:
        v = (x.astype(np.float64) - t) ** 2
        check(ours, ref, dtype, red_scale(v, v) / (1 if reduction == "sum" else v.size))
    w = data["w"].astype(dtype)
    ours = FT.mse_loss(x, t, reduction=reduction, weight=w)
    ref = F.mse_loss(T(torch, x), T(torch, t), reduction=reduction, weight=T(torch, w)).numpy()
    v = (x.astype(np.float64) - t) ** 2 * w
    s = v if reduction == "none" else red_scale(v, v) / (1 if reduction == "sum" else w.sum())
    check(ours, ref, dtype, s)


# --------------------------------------------------------------------------- reductions, classes


@pytest.mark.parametrize("dtype", DTYPES)
def test_logsumexp_softmax(torch, data, dtype):
    F = torch.nn.functional
    x = data["logits"].astype(dtype)
    x[4] = [-np.inf] * 6
    x[5, 0] = np.inf
    x[6, 1] = np.nan
    xs = np.abs(x.astype(np.float64))
    with np.errstate(invalid="ignore"):
        sc = np.nanmax(np.where(np.isfinite(xs), xs, 0), axis=1) + 6
    for dim in (1, -1):
        check(FT.logsumexp(x, dim), torch.logsumexp(T(torch, x), dim).numpy(), dtype, sc)
        check(FT.log_softmax(x, dim), F.log_softmax(T(torch, x), dim).numpy(), dtype,
              sc[:, None] + np.abs(np.nan_to_num(x, posinf=0, neginf=0)))
        check(FT.softmax(x, dim), F.softmax(T(torch, x), dim).numpy(), dtype, 8.0)
    check(FT.logsumexp(x[7:9], (0, 1), keepdim=True),
          torch.logsumexp(T(torch, x[7:9]), (0, 1), keepdim=True).numpy(), dtype, 2 * sc[7:9].max())
    with pytest.warns(UserWarning, match="Implicit dimension"):
        got = FT.softmax(x[7:9])
    assert got.shape == (2, 6)
    with pytest.raises(TypeError):
        FT.logsumexp(x, None)
    got = FT.log_softmax(x[7:9].astype(np.float32), 1, dtype=torch.float64)
    assert got.dtype == np.float64


def test_tensors_in_tensor_out(torch, data):
    x = torch.tensor(data["logits"][:8], dtype=torch.float32, requires_grad=True)
    y = torch.from_numpy(data["labels"][:8].clip(0))
    out = FT.cross_entropy(x, y)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32 and out.shape == ()
    assert out.requires_grad  # issue #17: an input requiring grad keeps autograd
    ref = torch.nn.functional.cross_entropy(x, y).detach().numpy()
    check(out.detach().numpy(), ref, np.float32, 10.0)
    assert not FT.cross_entropy(x.detach(), y).requires_grad
    half = FT.cross_entropy(x.detach().half(), y)
    assert half.dtype == torch.float16
    assert isinstance(FT.CrossEntropyLoss()(data["logits"][:8], data["labels"][:8].clip(0)),
                      np.floating)


def test_nn_classes(torch, data):
    nn = torch.nn
    x = data["logits"].astype(np.float32)
    y = data["labels"]
    p = data["probs"].astype(np.float32)
    z = data["z"].astype(np.float32)
    w = data["cw"].astype(np.float32)
    pairs = [
        (FT.CrossEntropyLoss(weight=w, label_smoothing=0.1), nn.CrossEntropyLoss(
            weight=T(torch, w), label_smoothing=0.1), x, y, 1e3),
        (FT.NLLLoss(reduction="sum"), nn.NLLLoss(reduction="sum"), np.log(p + 1e-30), y, 1e4),
        (FT.BCELoss(), nn.BCELoss(), p, z, 1e3),
        (FT.BCEWithLogitsLoss(pos_weight=w), nn.BCEWithLogitsLoss(pos_weight=T(torch, w)), x, z,
         1e4),
        (FT.KLDivLoss(reduction="batchmean", log_target=False), nn.KLDivLoss(
            reduction="batchmean"), np.log(p + 1e-12), p, 1e2),
        (FT.MSELoss(reduction="none"), nn.MSELoss(reduction="none"), x, p, np.abs(x) ** 2 + 1),
    ]
    for ours, theirs, a, b, s in pairs:
        check(ours(a, b), theirs(T(torch, a), T(torch, b)).numpy(), np.float32, s)
    with pytest.warns(UserWarning, match="size_average"):
        legacy = FT.MSELoss(size_average=False)
    assert legacy.reduction == "sum"


def test_import_does_not_import_torch():
    import subprocess
    import sys

    code = ("import sys, numpy as np, fastloss, fastloss.torch as F; "
            "F.cross_entropy(np.zeros((2, 3)), np.array([0, 1])); "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_every_backend_gives_the_same_result(backend, data, monkeypatch):
    x = data["logits"].astype(np.float32)
    y = data["labels"]
    calls = [
        lambda: FT.cross_entropy(x, y, weight=data["cw"].astype(np.float32), label_smoothing=0.2),
        lambda: FT.cross_entropy(x, y, reduction="none", label_smoothing=0.1),
        lambda: FT.binary_cross_entropy_with_logits(x, data["z"].astype(np.float32),
                                                    pos_weight=data["pw"].astype(np.float32)),
        lambda: FT.kl_div(x - 20, data["probs"].astype(np.float32), reduction="batchmean"),
    ]
    monkeypatch.setenv("FASTLOSS_BACKEND", "numpy")
    fastloss.refresh_config()  # the environment is read once
    ref = [np.asarray(f()) for f in calls]
    monkeypatch.setenv("FASTLOSS_BACKEND", backend)
    fastloss.refresh_config()  # the environment is read once
    for f, r in zip(calls, ref):
        assert ulp_diff(np.asarray(f()), r).max() <= 1


def _same_as_torch(torch, call):
    """``call(F)`` with torch.nn.functional and with fastloss.torch: the same exception
    type, or results with equal dtype, shape and values (assert_close)."""
    import torch.nn.functional as TF

    outs = []
    for mod in (TF, FT):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                outs.append(("ok", call(mod)))
        except Exception as exc:
            outs.append(("raised", exc))
    (kt, vt), (kf, vf) = outs
    assert kt == kf, outs
    if kt == "raised":
        assert type(vf) is type(vt), outs
    else:
        torch.testing.assert_close(vf, vt, equal_nan=True)
    return kt


def test_issue17_torch_edge_cases(torch):
    """The failures listed in issue #17, each as the installed PyTorch behaves."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 4, generator=g)
    probs = torch.softmax(torch.randn(3, 4, generator=g), 1)
    y = torch.tensor([0, 1, 2])
    empty_y = torch.empty(0, dtype=torch.long)
    returns = [
        lambda F: F.softmax(torch.empty(5, 0, 0), -1),
        lambda F: F.log_softmax(torch.empty(5, 0, 0), -1),
        lambda F: F.nll_loss(torch.empty(0, 0), empty_y),
        lambda F: F.nll_loss(torch.empty(0, 0), empty_y, reduction="sum"),
        lambda F: F.nll_loss(torch.empty(0, 0), empty_y, reduction="none"),
        lambda F: F.cross_entropy(torch.empty(0, 0), empty_y),
        lambda F: F.cross_entropy(x, probs, ignore_index=-5),
        lambda F: F.cross_entropy(x, probs, weight=torch.ones(4, dtype=torch.float16)),
        lambda F: F.cross_entropy(x, probs, weight=torch.ones(4, dtype=torch.float64)),
        lambda F: F.softmax(x.half(), 1, dtype=torch.float32),
        lambda F: F.log_softmax(x.half(), 1, dtype=torch.float64),
        lambda F: F.softmax(x.bfloat16(), 0, dtype=torch.float32),
        lambda F: F.log_softmax(x, 1, dtype=torch.float64),
        lambda F: F.binary_cross_entropy(probs, probs.flip(0),
                                         weight=torch.ones(4, dtype=torch.float16)),
    ]
    raises = [
        lambda F: F.cross_entropy(x, probs, ignore_index=0),
        lambda F: F.cross_entropy(x, probs, ignore_index=7),
        lambda F: F.cross_entropy(x, y, weight=torch.ones(4, dtype=torch.float16)),
        lambda F: F.nll_loss(x, y, weight=torch.ones(4, dtype=torch.float16)),
        lambda F: F.cross_entropy(x.half(), y, weight=torch.ones(4)),
        lambda F: F.softmax(torch.empty(5, 0, 0), 3),
    ]
    assert [_same_as_torch(torch, c) for c in returns] == ["ok"] * len(returns)
    assert [_same_as_torch(torch, c) for c in raises] == ["raised"] * len(raises)
