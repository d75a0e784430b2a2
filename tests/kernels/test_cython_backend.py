"""The Cython backend (``kernels/cython``) against the NumPy reference backend.

Expected values never come from the code under test: per-sample losses, softmaxes and
gradients from ``fastloss.kernels.reference`` (float64, rounded once); block partials
from ``_blocks.block_sums`` applied to the kernel's own per-sample values (the contract
says how they are summed, bit for bit); exp / log / log1p from NumPy in float64 and
long double.

Tolerances: float32 per-sample losses within 1 ulp of the reference (the contract's
promise); float64 within a few ulps (the reference itself rounds differently); KL,
whose terms have both signs, and gradients, which cancel (p - 1), get an absolute
term scaled by the size of what cancelled.
"""

import importlib
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

from _zoo import (CLIPS, DTYPES, E, cython_variants, labels, logits_zoo, probs_zoo, run_forward,
                  targets)
from testutil import ulp_diff
from fastloss.kernels import CLIP_EPS, CLIP_KERAS2, CLIP_NONE, CLIP_TORCH, n_blocks
from fastloss.kernels import reference as ref
from fastloss.kernels._blocks import block_sums

REQUIRE = os.environ.get("FASTLOSS_REQUIRE_CYTHON") == "1"
cy = importlib.import_module("fastloss.kernels.cython")

if not cy.AVAILABLE:
    if REQUIRE:
        def test_cython_backend_is_built():
            pytest.fail(f"FASTLOSS_REQUIRE_CYTHON=1 but the backend is unavailable: "
                        f"{cy.WHY_UNAVAILABLE}")
    else:
        pytest.skip(f"Cython backend not built: {cy.WHY_UNAVAILABLE}", allow_module_level=True)

CORE = cy._core  # the variant this machine runs (see test_every_built_variant_*)


VARIANTS = cython_variants()
VARIANT_IDS = [m.build_info()["variant"] for m in VARIANTS]

def assert_close_values(got, exp, dtype, ulps64=8, atol=None, what=""):
    """Same NaN / inf pattern; finite values within 1 ulp (float32) / ulps64 (float64)."""
    got, exp = np.asarray(got), np.asarray(exp).astype(dtype)
    assert got.dtype == dtype
    nan_g, nan_e = np.isnan(got), np.isnan(exp)
    assert np.array_equal(nan_g, nan_e), f"{what}: NaN positions differ at {np.argwhere(nan_g != nan_e)[:5].ravel()}"
    inf_e = np.isinf(exp)
    assert np.array_equal(got[inf_e], exp[inf_e]), f"{what}: infinities differ"
    assert not np.isinf(got[~inf_e & ~nan_e]).any(), f"{what}: unexpected inf"
    fin = ~nan_e & ~inf_e
    d = ulp_diff(got[fin], exp[fin])
    limit = 1 if dtype == np.float32 else ulps64
    if atol is not None:
        ok = (d <= limit) | (np.abs(got[fin].astype(np.float64) - exp[fin]) <= atol[fin] if np.ndim(atol) else atol)
    else:
        ok = d <= limit
    if not ok.all():
        k = np.argmax(~ok)
        raise AssertionError(f"{what}: {int((~ok).sum())} values off; first got {got[fin][k]!r} "
                             f"expected {exp[fin][k]!r} ({int(d[k])} ulp)")


def contract_partials(v, w, nan_omit, br):
    """lp / wp as the contract defines them, from per-sample values v and weights w."""
    v64 = np.asarray(v).astype(np.float64)
    with np.errstate(invalid="ignore"):
        c = np.where(w == 0, 0.0, v64 * w)
    keep = ~np.isnan(v64) if nan_omit else np.ones(v64.shape, bool)
    return block_sums(np.where(keep, c, 0.0), br), block_sums(np.where(keep, w, 0.0), br)


def check_forward(fn, args, unweighted_args, w, n, br, dtype, nan_omit, atol=None, ulps64=8):
    """The kernel against the reference, and its partials against the contract."""
    out_r, lp_r, wp_r = run_forward(ref, fn, args, n, br, dtype)
    out_c, lp_c, wp_c = run_forward(cy, fn, args, n, br, dtype)
    assert_close_values(out_c, out_r, dtype, ulps64=ulps64, atol=atol, what=f"{fn} out")
    # weights are not computed differently anywhere: wp is the reference's, bit for bit
    assert np.array_equal(wp_c, wp_r)
    # lp: the contract's block sums of c_i = float64(v_i) * w_i with the kernel's own v_i
    v, _, _ = run_forward(cy, fn, unweighted_args, n, br, dtype, want_partials=False)
    lp_e, wp_e = contract_partials(v, w, nan_omit, br)
    np.testing.assert_array_equal(lp_c, lp_e)
    np.testing.assert_array_equal(wp_c, wp_e)
    # and lp against the reference's (same up to the per-sample differences)
    fin = np.isfinite(lp_r)
    assert np.array_equal(np.isnan(lp_c), np.isnan(lp_r))
    assert np.array_equal(lp_c[np.isinf(lp_r)], lp_r[np.isinf(lp_r)])
    np.testing.assert_allclose(lp_c[fin], lp_r[fin], rtol=2e-6 if dtype == np.float32 else 1e-12,
                               atol=1e-300 if atol is None else np.max(np.atleast_1d(atol)) * br)
    # out = dtype(c_i)
    with np.errstate(invalid="ignore", over="ignore"):  # 3e38 logits: c overflows float32
        c = np.where(w == 0, 0.0, v.astype(np.float64) * w).astype(dtype)
    np.testing.assert_array_equal(out_c, c)


# --------------------------------------------------------------------------- sparse CE

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", [1, 3, 10, 16, 17, 32, 33, 100, 2100])
@pytest.mark.parametrize("opts", [
    dict(), dict(weighted=True), dict(ignore=True), dict(ls=0.1), dict(z=1e-3),
    dict(weighted=True, ignore=True, ls=0.2, z=1e-4, nan_omit=True), dict(nan_omit=True)])
def test_sparse_ce_logits(rng, dtype, C, opts):
    n = 300 if C < 1000 else 24
    x = logits_zoo(rng, n, C, dtype)
    ii = -100 if opts.get("ignore") else 0
    y = labels(rng, n, C, ii if opts.get("ignore") else None)
    sw = rng.uniform(0, 2, n) if opts.get("weighted") else E
    cw = rng.uniform(0.5, 2, C) if opts.get("weighted") else E
    if sw.size:
        sw[::11] = 0.0
    ls, z, omit = opts.get("ls", 0.0), opts.get("z", 0.0), opts.get("nan_omit", False)
    has_ii = bool(opts.get("ignore"))
    br = 8 if C > 1000 else 32
    args = (x, y, sw, cw, True, ii, has_ii, ls, z, CLIP_NONE, 0.0, omit)
    unw = (x, y, E, E, True, ii, has_ii, ls, z, CLIP_NONE, 0.0, omit)
    ign = (y == ii) if has_ii else np.zeros(n, bool)
    ys = np.where(ign, 0, y)
    w = (sw if sw.size else np.ones(n)) * (cw[ys] if cw.size else 1.0) * np.where(ign, 0.0, 1.0)
    check_forward("sparse_ce", args, unw, w, n, br, dtype, omit)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("clip", CLIPS)
@pytest.mark.parametrize("ls", [0.0, 0.1])
def test_sparse_ce_probabilities(rng, dtype, clip, ls):
    n, C = 200, 7
    p = probs_zoo(rng, (n, C), dtype, normalized=True)
    y = labels(rng, n, C)
    y[2:12] = np.arange(10) % C  # put the labels on the special values
    sw = rng.uniform(0, 2, n)
    args = (p, y, sw, E, False, 0, False, ls, 0.0, clip[0], clip[1], True)
    unw = (p, y, E, E, False, 0, False, ls, 0.0, clip[0], clip[1], True)
    check_forward("sparse_ce", args, unw, sw, n, 16, dtype, True)


# --------------------------------------------------------------------------- categorical CE

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", [1, 5, 16, 25, 40, 2100])
@pytest.mark.parametrize("logits", [True, False])
@pytest.mark.parametrize("opts", [dict(), dict(weighted=True, ls=0.1, nan_omit=True)])
def test_categorical_ce(rng, dtype, C, logits, opts):
    n = 200 if C < 1000 else 20
    x = logits_zoo(rng, n, C, dtype) if logits else probs_zoo(rng, (n, C), dtype, normalized=True)
    t = targets(rng, (n, C), dtype, normalized=True)
    sw = rng.uniform(0, 2, n) if opts.get("weighted") else E
    cw = rng.uniform(0.5, 2, C) if opts.get("weighted") else E
    ls, omit = opts.get("ls", 0.0), opts.get("nan_omit", False)
    clip = (CLIP_NONE, 0.0) if logits else (CLIP_EPS, 1e-7)
    args = (x, t, sw, cw, logits, ls, clip[0], clip[1], omit)
    unw = (x, t, E, cw, logits, ls, clip[0], clip[1], omit)
    w = sw if sw.size else np.ones(n)
    check_forward("categorical_ce", args, unw, w, n, 8, dtype, omit)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("clip", CLIPS)
def test_categorical_ce_clip_modes(rng, dtype, clip):
    n, C = 100, 6
    p = probs_zoo(rng, (n, C), dtype, normalized=True)
    t = targets(rng, (n, C), dtype, normalized=True)
    args = (p, t, E, E, False, 0.0, clip[0], clip[1], False)
    check_forward("categorical_ce", args, args, np.ones(n), n, 16, dtype, False)


# --------------------------------------------------------------------------- BCE

def bce_inputs(rng, m, dtype, logits):
    if logits:
        x = rng.standard_normal(m) * 6
        sp = [1e4, -1e4, 88.7, -88.7, -104.0, 1e-40, -1e-42, 0.0, -0.0, np.inf, -np.inf,
              np.nan, 17.0, -17.0, 40.0, -40.0, 800.0, -800.0]
    else:
        x = rng.random(m)
        sp = [0.0, 1.0, 1e-45, 1e-7, 1 - 1e-7, 0.5, np.nan, 1e-300, 1 - 1e-12, 5e-8]
    x[3:3 + len(sp)] = sp
    x[40:40 + len(sp)] = sp
    z = (rng.random(m) < 0.4).astype(np.float64)
    z[40:40 + len(sp)] = 1.0 - z[3:3 + len(sp)]  # both labels on every special value
    z[::13] = rng.random(z[::13].size)  # soft labels
    return x.astype(dtype), z.astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("logits", [True, False])
@pytest.mark.parametrize("opts", [dict(), dict(pw=True), dict(weighted=True, div=1),
                                  dict(weighted=True, div=6, pw=True, ls=0.1, nan_omit=True)])
def test_bce(rng, dtype, logits, opts):
    m = 3000
    x, z = bce_inputs(rng, m, dtype, logits)
    div = opts.get("div", 1)
    sw = rng.uniform(0, 2, -(-m // div)) if opts.get("weighted") else E
    if sw.size:
        sw[::7] = 0.0
    pw = rng.uniform(0.2, 4, 6) if opts.get("pw") else E
    ls, omit = opts.get("ls", 0.0), opts.get("nan_omit", False)
    clips = [(CLIP_NONE, 0.0)] if logits else CLIPS
    for clip in clips:
        args = (x, z, sw, div, pw, logits, ls, clip[0], clip[1], omit)
        unw = (x, z, E, 1, pw, logits, ls, clip[0], clip[1], omit)
        w = np.repeat(sw, div)[:m] if sw.size else np.ones(m)
        check_forward("bce", args, unw, w, m, 256, dtype, omit)


# --------------------------------------------------------------------------- KL and MSE

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("log_input", [False, True])
@pytest.mark.parametrize("log_target", [False, True])
@pytest.mark.parametrize("clip", [(CLIP_NONE, 0.0), (CLIP_EPS, 1e-7)])
def test_kl(rng, dtype, log_input, log_target, clip):
    n, C = 150, 9
    p = probs_zoo(rng, (n, C), dtype, normalized=True)
    t = targets(rng, (n, C), dtype, normalized=True)
    with np.errstate(divide="ignore"):
        x = np.log(p) if log_input else p
        tt = np.log(t) if log_target else t
    x, tt = x.astype(dtype), tt.astype(dtype)
    sw = rng.uniform(0, 2, n)
    args = (x, tt, sw, log_input, log_target, clip[0], clip[1], True)
    unw = (x, tt, E, log_input, log_target, clip[0], clip[1], True)
    # terms of both signs: allow the rounding of sum |terms| (reference's and ours)
    with np.errstate(all="ignore"):
        t64 = np.exp(tt.astype(np.float64)) if log_target else tt.astype(np.float64)
        lx = x.astype(np.float64) if log_input else np.log(np.maximum(x.astype(np.float64), 1e-300))
        lt = np.log(np.maximum(t64, 1e-300))
        mag = np.nansum(np.abs(t64 * (lt - lx)), axis=1) + np.nansum(np.abs(t64 * lx), axis=1)
    mag = np.where(np.isfinite(mag), mag, 0.0)
    check_forward("kl", args, unw, sw, n, 16, dtype, True, atol=4 * C * 2.0 ** -52 * mag)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ow", [False, True])
def test_mse(rng, dtype, ow):
    n, C = 300, 13
    x = logits_zoo(rng, n, C, dtype)
    t = (rng.standard_normal((n, C))).astype(dtype)
    owv = rng.uniform(0, 2, C) if ow else E
    sw = rng.uniform(0, 2, n)
    args = (x, t, owv, sw, True)
    unw = (x, t, owv, E, True)
    check_forward("mse", args, unw, sw, n, 16, dtype, True)


# --------------------------------------------------------------------------- row reductions

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", [1, 2, 9, 16, 20, 32, 33, 5000])
def test_logsumexp_and_softmax_rows(rng, dtype, C):
    n = 100 if C < 1000 else 16
    x = logits_zoo(rng, n, C, dtype)
    o_r, o_c = np.empty(n, dtype), np.empty(n, dtype)
    ref.logsumexp_rows(x, o_r, 1)
    cy.logsumexp_rows(x, o_c, 2)
    # lse = max + L: when they nearly cancel, a 1-ulp error of L is many ulps of lse
    with np.errstate(all="ignore"):
        mag = np.abs(np.max(x.astype(np.float64), axis=1)) + np.abs(o_r.astype(np.float64))
    mag = np.where(np.isfinite(mag), mag, 0.0)
    assert_close_values(o_c, o_r, dtype, ulps64=2, atol=4 * 2.0 ** -52 * mag, what="logsumexp")
    for log in (False, True):
        s_r, s_c = np.empty_like(x), np.empty_like(x)
        ref.softmax_rows(x, s_r, log, 1)
        cy.softmax_rows(x, s_c, log, 2)
        # exp(d - L) with |d - L| up to ~1e4: the reference's own float64 error is
        # |d - L| * 2^-53 relative; allow that (the float32 results stay within 1 ulp)
        with np.errstate(all="ignore"):
            big = np.abs(s_r.astype(np.float64)) * 2.0 ** -50 * (1 + np.abs(np.log(np.abs(s_r.astype(np.float64)))))
        assert_close_values(s_c, s_r, dtype, ulps64=4, atol=None if dtype == np.float32 or log else big,
                            what=f"softmax log={log}")


# --------------------------------------------------------------------------- gradients

def grad_tol(dtype, s, mag, ndim):
    """|g - g_ref| allowed besides 1 ulp (float32) / 8 ulps (float64): the cancellation
    in s * (p*k - 1) or s * sig * (1 - sig), relative to the size of what cancels."""
    rel = 4e-11 if dtype == np.float32 else 8 * 2.0 ** -53
    s = np.abs(np.asarray(s, dtype=np.float64))
    return (s[:, None] if ndim == 2 else s) * mag * rel


def check_grad(fn, args_pre, args_post, x, n, br, dtype, s_rows, mag):
    shape = x.shape
    g_r, h_r = np.empty(shape, dtype), np.empty(shape, dtype)
    g_c, h_c = np.empty(shape, dtype), np.empty(shape, dtype)
    nb = n_blocks(n, br)
    lp_r, wp_r, lp_c, wp_c = np.zeros(nb), np.zeros(nb), np.zeros(nb), np.zeros(nb)
    getattr(ref, fn)(*args_pre, *args_post, br, lp_r, wp_r, g_r, h_r, 1)
    getattr(cy, fn)(*args_pre, *args_post, br, lp_c, wp_c, g_c, h_c, 2)
    tol = grad_tol(dtype, s_rows, mag, x.ndim)
    for got, exp, what in ((g_c, g_r, "g"), (h_c, h_r, "h")):
        if dtype == np.float32:
            ok = (ulp_diff(got, exp) <= 1) | (np.abs(got.astype(np.float64) - exp) <= tol)
        else:
            ok = (ulp_diff(got, exp) <= 8) | (np.abs(got - exp) <= tol)
        ok |= np.isnan(got) & np.isnan(exp)
        assert ok.all(), f"{fn} {what}: {int((~ok).sum())} off, first at {np.argwhere(~ok)[0]}"
    # without the Hessian: same gradient
    g2 = np.empty(shape, dtype)
    lp2, wp2 = np.zeros(nb), np.zeros(nb)
    getattr(cy, fn)(*args_pre, *args_post, br, lp2, wp2, g2, np.zeros((0,) * len(shape), dtype), 3)
    assert np.array_equal(g2, g_c, equal_nan=True)
    return lp_c, wp_c, lp2, wp2


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", [3, 16, 20, 50, 2100])
def test_sparse_ce_grad(rng, dtype, C):
    n = 120 if C < 1000 else 12
    x = (rng.standard_normal((n, C)) * 4).astype(dtype)
    y = labels(rng, n, C, -1)
    sw, cw = rng.uniform(0, 2, n), rng.uniform(0.5, 2, C)
    br = 8
    s = 0.01 * sw * cw[np.where(y == -1, 0, y)] * (y != -1)
    lp, wp, lp2, wp2 = check_grad("sparse_ce_grad", (x, y, sw, cw, -1, True, 0.1, 1e-3, 0.01), (),
                                  x, n, br, dtype, s, 1.0 + 2e-3 * np.abs(x).max())
    # the loss partials are the forward kernel's, bit for bit
    _, lpf, wpf = run_forward(cy, "sparse_ce", (x, y, sw, cw, True, -1, True, 0.1, 1e-3, CLIP_NONE, 0.0,
                                            False), n, br, dtype, want_out=False)
    assert np.array_equal(lp, lpf) and np.array_equal(wp, wpf)
    assert np.array_equal(lp2, lpf) and np.array_equal(wp2, wpf)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", [4, 40])
def test_categorical_ce_grad(rng, dtype, C):
    n = 100
    x = (rng.standard_normal((n, C)) * 4).astype(dtype)
    t = targets(rng, (n, C), dtype, normalized=True)
    sw, cw = rng.uniform(0, 2, n), rng.uniform(0.5, 2, C)
    lp, wp, _, _ = check_grad("categorical_ce_grad", (x, t, sw, cw, 0.1, 0.5), (), x, n, 8, dtype,
                              0.5 * sw, 2.0 * cw.sum())
    _, lpf, wpf = run_forward(cy, "categorical_ce", (x, t, sw, cw, True, 0.1, CLIP_NONE, 0.0, False), n,
                          8, dtype, want_out=False)
    assert np.array_equal(lp, lpf) and np.array_equal(wp, wpf)


@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_grad(rng, dtype):
    m = 2000
    x, z = bce_inputs(rng, m, dtype, True)
    x[np.isnan(x) | np.isinf(x)] = 3.0
    sw, pw = rng.uniform(0, 2, m // 4), rng.uniform(0.2, 4, 5)
    s = 0.1 * np.repeat(sw, 4)
    lp, wp, _, _ = check_grad("bce_grad", (x, z, sw, 4, pw, 0.1, 0.1), (), x, m, 64, dtype, s, 5.0)
    _, lpf, wpf = run_forward(cy, "bce", (x, z, sw, 4, pw, True, 0.1, CLIP_NONE, 0.0, False), m, 64,
                          dtype, want_out=False)
    assert np.array_equal(lp, lpf) and np.array_equal(wp, wpf)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("log_input", [False, True])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_grad(rng, dtype, log_input, log_target):
    n, C = 80, 6
    p = np.clip(probs_zoo(rng, (n, C), np.float64, normalized=True), 1e-6, 1)
    p[np.isnan(p)] = 0.5
    t = targets(rng, (n, C), np.float64, normalized=True)
    x = (np.log(p) if log_input else p).astype(dtype)
    with np.errstate(divide="ignore"):
        tt = (np.log(t) if log_target else t).astype(dtype)
    sw = rng.uniform(0, 2, n)
    check_grad("kl_grad", (x, tt, sw, log_input, log_target, 0.2), (), x, n, 8, dtype, 0.2 * sw, 1.0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_mse_grad(rng, dtype):
    n, C = 100, 7
    x, t = (rng.standard_normal((n, C))).astype(dtype), (rng.standard_normal((n, C))).astype(dtype)
    ow, sw = rng.uniform(0, 2, C), rng.uniform(0, 2, n)
    check_grad("mse_grad", (x, t, ow, sw, 0.3), (), x, n, 8, dtype, 0.3 * sw, 10.0)


# --------------------------------------------------------------------------- determinism

def all_kernel_calls(rng, dtype):
    """(name, fn, args_before_block_rows, n, C, block_rows) covering every kernel."""
    n, C = 1000, 23
    x = logits_zoo(rng, n, C, dtype)
    p = probs_zoo(rng, (n, C), dtype, normalized=True)
    t = targets(rng, (n, C), dtype, normalized=True)
    y = labels(rng, n, C, -100)
    sw, cw = rng.uniform(0, 2, n), rng.uniform(0.5, 2, C)
    xb, zb = bce_inputs(rng, 20000, dtype, True)
    pb, _ = bce_inputs(rng, 20000, dtype, False)
    pw = rng.uniform(0.5, 2, 8)
    return [
        ("sparse_ce", (x, y, sw, cw, True, -100, True, 0.1, 1e-3, CLIP_NONE, 0.0, True), n, 40),
        ("sparse_ce", (p, y, sw, E, False, -100, True, 0.1, 0.0, CLIP_KERAS2, 1e-7, True), n, 40),
        ("categorical_ce", (x, t, sw, cw, True, 0.1, CLIP_NONE, 0.0, False), n, 40),
        ("bce", (xb, zb, E, 1, pw, True, 0.05, CLIP_NONE, 0.0, False), 20000, 512),
        ("bce", (pb, zb, sw, 20, pw, False, 0.0, CLIP_EPS, 1e-7, True), 20000, 512),
        ("kl", (p, t, sw, False, False, CLIP_EPS, 1e-7, False), n, 40),
        ("mse", (x, t, cw, sw, True), n, 40),
    ]


@pytest.mark.parametrize("dtype", DTYPES)
def test_bitwise_identical_for_any_thread_count_and_chunking(rng, dtype):
    for fn, args, n, br in all_kernel_calls(rng, dtype):
        base = run_forward(cy, fn, args, n, br, dtype, n_threads=1)
        for nt in (2, 3, 7):
            got = run_forward(cy, fn, args, n, br, dtype, n_threads=nt)
            for a, b in zip(got, base):
                assert a.tobytes() == b.tobytes(), f"{fn}: n_threads={nt} changed bits"
        # chunks of whole blocks (5 blocks: a multiple of bce's sw_div and pos_weight
        # period, so the flat indices line up), called in reverse order
        step = 5 * br
        out = np.zeros(n, dtype)
        nb = n_blocks(n, br)
        lp, wp = np.zeros(nb), np.zeros(nb)
        for a in list(range(0, n, step))[::-1]:
            b = min(n, a + step)
            b0, b1 = a // br, n_blocks(b, br)
            if fn == "bce":
                xb, zb, sw, div, pw = args[:5]
                assert a % div == 0 and a % max(pw.size, 1) == 0
                sub = (xb[a:b], zb[a:b], sw[a // div:-(-b // div)] if sw.size else sw) + args[3:]
            else:
                sub = tuple(v[a:b] if isinstance(v, np.ndarray) and v.ndim and v.shape[0] == n
                            else v for v in args)
            getattr(cy, fn)(*sub, br, out[a:b], lp[b0:b1], wp[b0:b1], 2)
        assert out.tobytes() == base[0].tobytes(), f"{fn}: chunking changed out"
        assert lp.tobytes() == base[1].tobytes() and wp.tobytes() == base[2].tobytes(), fn


@pytest.mark.parametrize("dtype", DTYPES)
def test_grad_kernels_deterministic(rng, dtype):
    n, C = 500, 30
    x = (rng.standard_normal((n, C)) * 3).astype(dtype)
    y = labels(rng, n, C)
    sw = rng.uniform(0, 2, n)
    res = []
    for nt in (1, 2, 3):
        g, h = np.empty_like(x), np.empty_like(x)
        lp, wp = np.zeros(n_blocks(n, 16)), np.zeros(n_blocks(n, 16))
        cy.sparse_ce_grad(x, y, sw, E, 0, False, 0.1, 1e-3, 0.5, 16, lp, wp, g, h, nt)
        res.append([a.tobytes() for a in (g, h, lp, wp)])
    assert res[0] == res[1] == res[2]


def test_concurrent_python_threads_match_serial(rng):
    """nogil kernels: four Python threads calling at once give the serial results."""
    jobs = []
    for k in range(4):
        dtype = DTYPES[k % 2]
        for fn, args, n, br in all_kernel_calls(np.random.default_rng(100 + k), dtype):
            jobs.append((fn, args, n, br, dtype))
    serial = [run_forward(cy, fn, args, n, br, dt, n_threads=1) for fn, args, n, br, dt in jobs]
    results = [None] * len(jobs)
    errors = []
    barrier = threading.Barrier(4)

    def worker(w):
        try:
            barrier.wait()
            for rep in range(3):
                for j in range(w, len(jobs), 4):
                    fn, args, n, br, dt = jobs[j]
                    results[j] = run_forward(cy, fn, args, n, br, dt, n_threads=2)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors
    for got, exp in zip(results, serial):
        for a, b in zip(got, exp):
            assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("mod", VARIANTS, ids=VARIANT_IDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_every_built_variant_agrees_with_the_reference(mod, dtype):
    """Each SIMD build on its own (FMA or not, 2 to 8 lanes): values, partials, threads."""
    rng = np.random.default_rng(5)
    calls = all_kernel_calls(rng, dtype)
    n, C = 300, 12
    x = logits_zoo(rng, n, C, dtype)
    calls.append(("sparse_ce", (x, labels(rng, n, C), E, E, True, 0, False, 0.0, 0.0, CLIP_NONE,
                                0.0, False), n, 16))
    for fn, args, n, br in calls:
        got = run_forward(mod, fn, args, n, br, dtype)
        exp = run_forward(ref, fn, args, n, br, dtype)
        assert_close_values(got[0], exp[0], dtype, what=f"{mod.build_info()['variant']} {fn}")
        assert np.array_equal(got[2], exp[2])
        one = run_forward(mod, fn, args, n, br, dtype, n_threads=1)
        assert all(a.tobytes() == b.tobytes() for a, b in zip(got, one))
    for log in (False, True):
        s_r, s_c = np.empty_like(x), np.empty_like(x)
        ref.softmax_rows(x, s_r, log, 1)
        mod.softmax_rows(x, s_c, log, 2)
        if dtype == np.float32:
            assert_close_values(s_c, s_r, dtype, what="softmax")


# --------------------------------------------------------------------------- contract details

@pytest.mark.parametrize("dtype", DTYPES)
def test_zero_length_outputs_mean_not_requested(rng, dtype):
    n, C = 50, 4
    x = logits_zoo(rng, n, C, dtype)
    y = labels(rng, n, C)
    out = np.empty(n, dtype)
    cy.sparse_ce(x, y, E, E, True, 0, False, 0.0, 0.0, CLIP_NONE, 0.0, False, 8, out, E, E, 2)
    lp, wp = np.zeros(n_blocks(n, 8)), np.zeros(n_blocks(n, 8))
    cy.sparse_ce(x, y, E, E, True, 0, False, 0.0, 0.0, CLIP_NONE, 0.0, False, 8,
                 np.zeros(0, dtype), lp, wp, 2)
    np.testing.assert_array_equal(lp, contract_partials(out, np.ones(n), False, 8)[0])
    # nothing requested, empty input: no error
    cy.sparse_ce(x[:0], y[:0], E, E, True, 0, False, 0.0, 0.0, CLIP_NONE, 0.0, False, 8,
                 np.zeros(0, dtype), E, E, 2)


def test_negative_zero_and_padding_follow_block_sums():
    """-0.0 contributions and a ragged last block: exactly _blocks.block_sums."""
    x = np.zeros((11, 2))
    t = np.zeros((11, 2))
    lp, wp = np.zeros(2), np.zeros(2)
    # MSE of x == t is +0.0; weights -0.0 are impossible via the API but the sum must
    # still follow the contract: use log-input KL, whose terms are -0.0 here
    cy.mse(x, t, E, E, False, 8, np.zeros(0), lp, wp, 1)
    assert lp.tobytes() == block_sums(np.zeros(11), 8).tobytes()
    p = np.ones((11, 1))
    tt = np.ones((11, 1))
    out = np.empty(11)
    cy.kl(p, tt, E, False, False, CLIP_NONE, 0.0, False, 8, out, lp, wp, 1)
    ref_out = np.empty(11)
    ref.kl(p, tt, E, False, False, CLIP_NONE, 0.0, False, 8, ref_out, E, E, 1)
    assert out.tobytes() == ref_out.tobytes()  # sign of zero included
    assert lp.tobytes() == block_sums(out, 8).tobytes()


def test_read_only_inputs(rng):
    x = logits_zoo(rng, 64, 5, np.float32)
    y = labels(rng, 64, 5)
    x.setflags(write=False)
    y.setflags(write=False)
    out = np.empty(64, np.float32)
    cy.sparse_ce(x, y, E, E, True, 0, False, 0.0, 0.0, CLIP_NONE, 0.0, False, 8, out, E, E, 2)
    exp = np.empty(64, np.float32)
    ref.sparse_ce(x, y, E, E, True, 0, False, 0.0, 0.0, CLIP_NONE, 0.0, False, 8, exp, E, E, 2)
    assert_close_values(out, exp, np.float32)


def test_bad_sizes_and_labels_raise_instead_of_reading_out_of_bounds(rng):
    x = logits_zoo(rng, 20, 4, np.float64)
    y = labels(rng, 20, 4)
    out = np.empty(20)
    with pytest.raises(ValueError):
        cy.sparse_ce(x, y[:5], E, E, True, 0, False, 0.0, 0.0, 0, 0.0, False, 8, out, E, E, 1)
    with pytest.raises(ValueError):
        cy.sparse_ce(x, y, np.ones(3), E, True, 0, False, 0.0, 0.0, 0, 0.0, False, 8, out, E, E, 1)
    with pytest.raises(ValueError):
        cy.sparse_ce(x, y, E, E, True, 0, False, 0.0, 0.0, 0, 0.0, False, 8, out, np.zeros(2),
                     np.zeros(2), 1)
    bad = y.copy()
    bad[7] = 4
    with pytest.raises(IndexError):
        cy.sparse_ce(x, bad, E, E, True, 0, False, 0.0, 0.0, 0, 0.0, False, 8, out, E, E, 2)
    bad[7] = -100  # the ignore_index is fine
    cy.sparse_ce(x, bad, E, E, True, -100, True, 0.0, 0.0, 0, 0.0, False, 8, out, E, E, 2)
    assert out[7] == 0.0
    with pytest.raises(ValueError):
        cy.mse(x, x[:3], E, E, False, 8, out, E, E, 1)


@pytest.mark.parametrize("dtype", DTYPES)
def test_first_outside_unit_interval(rng, dtype):
    n = 3_000_000
    x = rng.random(n).astype(dtype)
    x[::1000] = np.nan
    assert cy.first_outside_unit_interval(x) == -1
    assert cy.first_outside_unit_interval(x[:0]) == -1
    for pos in (0, 1023, 1024, 262143, 262144, 1_000_001, n // 2 - 1, n // 2, n - 1):
        y = x.copy()
        y[pos] = -1e-30 if pos % 2 else 1.0000001
        y[min(n - 1, pos + 5)] = 7.0
        assert cy.first_outside_unit_interval(y) == ref.first_outside_unit_interval(y) == pos
    x[[5, 2_900_000]] = [np.inf, -np.inf]
    assert cy.first_outside_unit_interval(x) == 5


def test_denormals_stay_enabled_after_import_and_calls():
    """A fresh process: import, run kernels on several threads, denormals still work
    (no flush-to-zero / denormals-are-zero left behind, as -ffast-math would)."""
    code = (
        "import numpy as np, fastloss.kernels.cython as cy\n"
        "x = np.full((64, 3), 1e-20, np.float32); t = np.zeros((64, 3), np.float32)\n"
        "out = np.empty(64, np.float32)\n"
        "cy.mse(x, t, np.zeros(0), np.zeros(0), False, 8, out, np.zeros(0), np.zeros(0), 2)\n"
        "assert (out == np.float32(1e-40)).all(), out[:3]  # a denormal result, from the threads\n"
        "assert np.float32(1e-40) != 0\n"
        "assert np.float32(1e-40) * np.float32(1) > 0\n"
        "assert np.float64(5e-324) * 1.0 > 0\n"
        "print('ok')\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr


def test_import_without_extension_does_not_raise():
    code = (
        "import sys, importlib.abc\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name == 'fastloss.kernels.cython._core':\n"
        "            raise ImportError('blocked for the test')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import fastloss.kernels.cython as cy\n"
        "assert cy.AVAILABLE is False and 'blocked for the test' in cy.WHY_UNAVAILABLE\n"
        "try:\n"
        "    cy.sparse_ce()\n"
        "except RuntimeError as e:\n"
        "    assert 'not available' in str(e)\n"
        "else:\n"
        "    raise AssertionError('no error')\n"
        "print('ok')\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr


def test_import_and_first_call_are_fast():
    code = (
        "import time, numpy as np\n"
        "x = np.random.default_rng(0).standard_normal((1000, 10)).astype(np.float32)\n"
        "y = np.zeros(1000, np.int64); e = np.zeros(0)\n"
        "t = time.perf_counter()\n"
        "import fastloss.kernels.cython as cy\n"
        "cy.sparse_ce(x, y, e, e, True, 0, False, 0.0, 0.0, 0, 0.0, False, 1632,\n"
        "             np.zeros(0, np.float32), np.zeros(1), np.zeros(1), 2)\n"
        "print(time.perf_counter() - t)\n")
    times = []
    for _ in range(3):
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=120)
        assert res.returncode == 0, res.stderr
        times.append(float(res.stdout.strip()))
    assert min(times) < 0.2, times


def test_integer_codes_agree_with_the_contract():
    """The Cython enums are a second spelling of the codes in fastloss.kernels._blocks."""
    from fastloss.kernels import _blocks
    for mod in VARIANTS:
        assert mod.codes() == {k: getattr(_blocks, k) for k in mod.codes()}


def test_build_info():
    info = cy.BUILD_INFO
    assert set(info) >= {"openmp", "compile_flags", "simd", "fma"}
    assert "-ffp-contract=off" in info["compile_flags"]
    assert "fast-math" not in info["compile_flags"]
    assert isinstance(info["openmp"], bool)
    # "fma": whether exp / log use fused multiply-adds. Never, in any build: the baseline
    # build has no FMA instruction, and every build must give the same bits.
    assert all(m.build_info()["fma"] is False for m in VARIANTS)


# --------------------------------------------------------------------------- the math (ulps)

def f32_key(v):
    """float32 -> an integer that orders like the float (consecutive floats: +1)."""
    i = int(np.array([v], np.float32).view(np.int32)[0])
    return i if i >= 0 else -(i & 0x7FFFFFFF)


def f32_from_keys(k):
    return np.where(k >= 0, k, (-k) | 0x80000000).astype(np.uint32).view(np.float32)


def f32_sample(rng, lo, hi, n):
    """n float32 spread uniformly over the bit patterns of [lo, hi], plus the ends."""
    k = rng.integers(f32_key(lo), f32_key(hi) + 1, n, dtype=np.int64)
    k = np.concatenate([k, [f32_key(lo), f32_key(hi)]])
    return f32_from_keys(k)


MATH32 = {  # which: (name, numpy function, domain of float32 inputs checked)
    3: ("exp32", np.exp, (-104.0, 89.0)),
    6: ("expneg32", np.exp, (-104.0, 0.0)),
    4: ("log32", np.log, (1e-45, 3.4028235e38)),
    5: ("log1p32", np.log1p, (-0.99999994, 3.4028235e38)),
    7: ("log1p01_32", np.log1p, (0.0, 1.0)),
}


def ulps_f32(mod, which, x):
    """(max ulp error, number not correctly rounded) of float32(f(float64(x)))."""
    f = MATH32[which][1]
    got = np.empty_like(x)
    mod._math_f32(which, x, got, 2)
    with np.errstate(all="ignore"):
        exp = f(x.astype(np.float64)).astype(np.float32)
    d = ulp_diff(got, exp)
    bad = np.nonzero(d)[0]
    if bad.size:  # recheck against long double (the float64 value may round wrongly)
        with np.errstate(all="ignore"):
            exp2 = f(x[bad].astype(np.longdouble)).astype(np.float32)
        d = ulp_diff(got[bad], exp2)
    return (int(d.max()) if d.size else 0), int((d > 0).sum())


@pytest.mark.parametrize("mod", VARIANTS, ids=VARIANT_IDS)
@pytest.mark.parametrize("which", sorted(MATH32))
def test_math_float32_grade_sampled(mod, which):
    rng = np.random.default_rng(which)
    lo, hi = MATH32[which][2]
    x = f32_sample(rng, lo, hi, 2_000_000)
    worst, wrong = ulps_f32(mod, which, x)
    assert worst <= 1
    assert wrong <= 1e-4 * x.size  # correctly rounded except within ~2^-9 ulp of a tie


@pytest.mark.slow
@pytest.mark.parametrize("mod", VARIANTS, ids=VARIANT_IDS)
@pytest.mark.parametrize("which", sorted(MATH32))
def test_math_float32_grade_exhaustive(mod, which):
    lo, hi = MATH32[which][2]
    k0, k1 = f32_key(lo), f32_key(hi)
    worst, wrong, total = 0, 0, 0
    for a in range(k0, k1 + 1, 1 << 24):  # every float32 of the domain, 2^24 at a time
        x = f32_from_keys(np.arange(a, min(a + (1 << 24), k1 + 1), dtype=np.int64))
        w, n = ulps_f32(mod, which, x)
        worst, wrong, total = max(worst, w), wrong + n, total + x.size
    print(f"{mod.build_info()['variant']} {MATH32[which][0]} on [{lo}, {hi}]: {total} inputs, max {worst} ulp, "
          f"{wrong} not correctly rounded")
    assert worst <= 1
    assert wrong <= 1e-5 * total


@pytest.mark.parametrize("which,fn,gen,limit", [
    (0, np.exp, lambda r, n: np.concatenate([r.uniform(-745, 709.7, n), r.uniform(-1, 1, n)]), 1.0),
    (1, np.log, lambda r, n: np.concatenate([np.exp(r.uniform(-744, 709, n)), r.uniform(0.5, 2, n),
                                             r.uniform(0, 1e-310, n)]), 1.0),
    (2, np.log1p, lambda r, n: np.concatenate([np.exp(r.uniform(-744, 709, n)), r.uniform(-1, 1, n),
                                               -np.exp(r.uniform(-744, 0, n))]), 1.5),
])
@pytest.mark.parametrize("mod", VARIANTS, ids=VARIANT_IDS)
def test_math_float64_grade_ulps(mod, which, fn, gen, limit):
    """Errors in ulps of double against long double (80-bit) NumPy."""
    x = gen(np.random.default_rng(7), 300_000)
    got = np.empty_like(x)
    mod._math(which, x, got, 2)
    exp = fn(x.astype(np.longdouble))
    e64 = exp.astype(np.float64)
    fin = np.isfinite(e64) & (e64 != 0)
    err = np.abs((got[fin].astype(np.longdouble) - exp[fin]) / np.spacing(np.abs(e64[fin]))).astype(float)
    assert err.max() < limit, (err.max(), x[fin][np.argmax(err)])


@pytest.mark.parametrize("mod", VARIANTS, ids=VARIANT_IDS)
@pytest.mark.parametrize("which", range(8))
def test_math_special_values(mod, which):
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 2.0, 1e-310, -1e-310,
                  710.0, -746.0, 709.7, -745.0, -708.5, 1e300])
    got = np.empty_like(x)
    mod._math(which, x, got, 1)
    f = {0: np.exp, 3: np.exp, 6: np.exp, 1: np.log, 4: np.log, 2: np.log1p, 5: np.log1p,
         7: np.log1p}[which]
    with np.errstate(all="ignore"):
        exp = f(x)
    if which == 6:  # x <= 0 only; results below 2^-1022 flushed to 0
        dom = x <= 0
        exp = np.where(exp < 2.0 ** -1022, 0.0, exp)
    elif which == 7:  # 0 <= x <= 1 only
        dom = (x >= 0) & (x <= 1)
    else:
        dom = np.ones(x.shape, bool)
    g, e = got[dom], exp[dom]
    assert np.array_equal(np.isnan(g), np.isnan(e)), (x[dom], g, e)
    fin = ~np.isnan(e)
    close = np.isclose(g[fin], e[fin], rtol=1e-10, atol=0) | (g[fin] == e[fin])
    assert close.all(), (x[dom][fin], g[fin], e[fin])


def test_variant_override_and_stale_modules():
    """FASTLOSS_CYTHON_VARIANT picks a build; an unknown one makes the backend unavailable
    with the reason (it never silently runs something else)."""
    code = ("import fastloss.kernels.cython as cy\n"
            "print(cy.AVAILABLE, cy.BUILD_INFO.get('variant'), repr(cy.WHY_UNAVAILABLE))\n")
    for want in VARIANT_IDS + ["sse9"]:
        env = dict(os.environ, FASTLOSS_CYTHON_VARIANT=want)
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env=env, timeout=120)
        assert res.returncode == 0, res.stderr
        avail, variant, why = res.stdout.split(" ", 2)
        if want == "sse9":
            assert avail == "False" and "sse9" in why
        else:
            assert avail == "True" and variant == want


def test_forked_child_does_not_hang():
    """GNU OpenMP cannot start threads in a fork() child of a parent that used them
    (multiprocessing's default on Linux): the child must run serially, not hang."""
    code = (
        "import os, numpy as np, fastloss.kernels.cython as cy\n"
        "x = np.random.default_rng(0).standard_normal((20000, 50)).astype(np.float32)\n"
        "a, b = np.empty(20000, np.float32), np.empty(20000, np.float32)\n"
        "cy.logsumexp_rows(x, a, 2)\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    import signal; signal.alarm(30)  # a hung child must not outlive the test\n"
        "    cy.logsumexp_rows(x, b, 2)\n"
        "    os._exit(0 if a.tobytes() == b.tobytes() else 3)\n"
        "_, status = os.waitpid(pid, 0)\n"
        "print(os.waitstatus_to_exitcode(status))\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and res.stdout.strip() == "0", (res.stdout, res.stderr)


# --------------------------------------------------------------------------- vectorised fast paths
#
# The probability-input kernels (BCE, categorical CE), narrow-row MSE and softmax were
# restructured so their loops vectorise. The tests below emulate the scalar formulas the
# kernels used before, with the module's own exp / log functions (CORE._math), and demand
# the same bits: the restructuring must not change a single result.

def _fl(which, a):
    """CORE._math: 1 log64, 2 log1p64, 4 log32, 5 log1p32 (float64 in and out)."""
    a = np.ascontiguousarray(a, dtype=np.float64).ravel()
    out = np.empty_like(a)
    CORE._math(which, a, out)
    return out


def _xmul_np(coef, term):
    with np.errstate(invalid="ignore"):
        return np.where(coef == 0, 0.0, coef * term)


def _neglog_emul(p, dtype, mode, eps, one_minus):
    """_neglog / _neglog1m of the kernels: -log(p) or -log(1 - p) under a clip mode."""
    f32 = dtype == np.float32
    LOG, LOG1P = (4, 5) if f32 else (1, 2)
    with np.errstate(all="ignore"):
        if mode in (CLIP_NONE, CLIP_TORCH):
            l = _fl(LOG1P, -p.astype(np.float64)) if one_minus else _fl(LOG, p)
            if mode == CLIP_TORCH:
                l = np.where(l < -100.0, -100.0, l)
            return -l
        lo = dtype(eps)
        hi = dtype(1) - lo
        pc = np.clip(p, lo, hi)
        q = (dtype(1) - pc) if one_minus else pc
        if mode == CLIP_KERAS2:
            q = (q + lo).astype(dtype)
        return -_fl(LOG, q)


def _bce_probs_emul(p, z, pw, ls, mode, eps, dtype):
    zd = z.astype(np.float64)
    if ls:
        zd = zd * (1.0 - ls) + 0.5 * ls
    pwv = pw[np.arange(p.size) % pw.size] if pw.size else 1.0
    v = (_xmul_np(pwv * zd, _neglog_emul(p, dtype, mode, eps, False))
         + _xmul_np(1.0 - zd, _neglog_emul(p, dtype, mode, eps, True)))
    return np.where(np.isnan(p), np.nan, v).astype(dtype)


def _canon_nan(a):
    """a with every NaN the canonical quiet NaN: the kernels store no other (see _cn in
    _kernels.pxi; which NaN an operation on two NaNs returns is the compiler's choice)."""
    return np.where(np.isnan(a), a.dtype.type(np.nan), a)


def _acc16_rows(e):
    """Row sums in the kernels' 16 lanes (column j to lane j % 16, lanes from -0.0, added
    left to right), exactly."""
    n, C = e.shape
    pad = (-C) % 16
    ep = np.concatenate([e, np.full((n, pad), -0.0)], axis=1).reshape(n, -1, 16)
    with np.errstate(invalid="ignore"):  # inf + -inf is NaN, as in the kernels
        lanes = (np.add.accumulate(ep, axis=1)[:, -1, :] if ep.shape[1]
                 else np.full((n, 16), -0.0))
        s = lanes[:, 0].copy()
        for k in range(1, 16):
            s = s + lanes[:, k]
    return s


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("clip", CLIPS)
@pytest.mark.parametrize("labels_kind", ["hard", "soft", "mixed"])
@pytest.mark.parametrize("opts", [dict(), dict(pw=True), dict(ls=0.1), dict(pw=True, zero_pw=True)])
def test_bce_probabilities_vectorised_is_bitwise_the_scalar_formula(rng, dtype, clip, labels_kind,
                                                                    opts):
    m = 5000
    p, _ = bce_inputs(rng, m, dtype, False)
    with np.errstate(invalid="ignore"):
        p[100:110] = np.array([np.inf, -np.inf, -0.0, 2.0, -1.0, 1e-45, 1.0, 0.0, np.nan, 0.9999999],
                              dtype=dtype)
    if labels_kind == "hard":
        z = (rng.random(m) < 0.5).astype(dtype)
    elif labels_kind == "soft":
        z = rng.random(m).astype(dtype)
        z[::7] = 0.0
        z[1::7] = 1.0
    else:  # hard chunks with a few soft labels in some (chunks are 512 elements)
        z = (rng.random(m) < 0.5).astype(dtype)
        z[700] = 0.25
        z[3000:3010] = 0.5
        z[4000] = np.nan
    pw = rng.uniform(0.2, 4, 7) if opts.get("pw") else E
    if opts.get("zero_pw"):
        pw[::2] = 0.0
    ls = opts.get("ls", 0.0)
    exp = _canon_nan(_bce_probs_emul(p, z, pw, ls, clip[0], clip[1], dtype))
    for nt in (1, 2, 3):
        out, lp, wp = run_forward(cy, "bce", (p, z, E, 1, pw, False, ls, clip[0], clip[1], False),
                              m, 256, dtype, n_threads=nt)
        assert out.tobytes() == exp.tobytes(), (
            f"{int((out.view(np.uint8) != exp.view(np.uint8)).sum())} bytes differ")
        lp_e, wp_e = contract_partials(exp, np.ones(m), False, 256)
        np.testing.assert_array_equal(lp, lp_e)
        np.testing.assert_array_equal(wp, wp_e)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("clip", CLIPS)
@pytest.mark.parametrize("C", [1, 5, 16, 100, 2100])
@pytest.mark.parametrize("kind", ["one-hot", "soft", "smoothed", "weighted"])
def test_categorical_probabilities_vectorised_is_bitwise_the_scalar_formula(rng, dtype, clip, C,
                                                                            kind):
    n = 64 if C < 1000 else 8
    p = probs_zoo(rng, (n, C), dtype, normalized=True)
    with np.errstate(invalid="ignore"):
        p[n - 1, :min(C, 4)] = np.array([np.inf, -0.0, 1.0, np.nan][:min(C, 4)], dtype=dtype)
    if kind == "soft":
        t = targets(rng, (n, C), dtype, normalized=True)
    else:
        t = np.zeros((n, C), dtype)
        t[np.arange(n), rng.integers(0, C, n)] = 1.0
        t[3, :] = 0.0  # an all-zero row
        t[4, 0] = -0.0
        if C > 3:
            t[5, [0, C - 1]] = 0.5  # two nonzero, far apart
            t[6, 1] = np.nan
    ls = 0.1 if kind == "smoothed" else 0.0
    cw = rng.uniform(0.5, 2, C) if kind == "weighted" else E
    if cw.size:
        cw[0] = 0.0
    tc = t.astype(np.float64)
    if ls:
        tc = (1.0 - ls) * tc + ls / C
    if cw.size:
        tc = tc * cw[None, :]
    e = _xmul_np(tc, _neglog_emul(p, dtype, clip[0], clip[1], False).reshape(n, C))
    exp = _canon_nan(_acc16_rows(e).astype(dtype))
    for nt in (1, 2, 3):
        out, _, _ = run_forward(cy, "categorical_ce", (p, t, E, cw, False, ls, clip[0], clip[1], False),
                            n, 8, dtype, n_threads=nt)
        assert out.tobytes() == exp.tobytes()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", [1, 2, 7, 16, 17, 40])
@pytest.mark.parametrize("ow", [False, True])
def test_mse_narrow_rows_bitwise(rng, dtype, C, ow):
    n = 3000
    x = logits_zoo(rng, n, C, dtype)
    t = rng.standard_normal((n, C)).astype(dtype)
    with np.errstate(invalid="ignore"):
        t[50, 0] = np.inf
        t[51, 0] = np.nan
    owv = rng.uniform(0, 2, C) if ow else E
    d = x.astype(np.float64) - t.astype(np.float64)
    with np.errstate(all="ignore"):
        e = d * d * owv[None, :] if ow else d * d
        S = (0.0 + owv.sum()) if ow else float(C)
        if ow:  # the kernel's sum of ow: left to right from 0.0
            S = 0.0
            for v in owv:
                S += v
        exp = _canon_nan((_acc16_rows(e) / S).astype(dtype))
    sw = rng.uniform(0, 2, n)
    for nt in (1, 2, 3):
        v, _, _ = run_forward(cy, "mse", (x, t, owv, E, False), n, 64, dtype, n_threads=nt,
                          want_partials=False)
        assert v.tobytes() == exp.tobytes()
        out, lp, wp = run_forward(cy, "mse", (x, t, owv, sw, True), n, 64, dtype, n_threads=nt)
        lp_e, wp_e = contract_partials(exp, sw, True, 64)
        np.testing.assert_array_equal(lp, lp_e)
        np.testing.assert_array_equal(wp, wp_e)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", [1, 3, 10, 32, 33])
def test_softmax_narrow_rows_thread_counts(rng, dtype, C):
    n = 5000
    x = logits_zoo(rng, n, C, dtype)
    for log in (False, True):
        s_r = np.empty_like(x)
        ref.softmax_rows(x, s_r, log, 1)
        outs = []
        for nt in (1, 2, 3):
            s_c = np.empty_like(x)
            cy.softmax_rows(x, s_c, log, nt)
            outs.append(s_c.tobytes())
        assert outs[0] == outs[1] == outs[2]
        if dtype == np.float32:
            assert_close_values(s_c, s_r, dtype, what=f"softmax log={log}")


@pytest.mark.parametrize("mod", VARIANTS, ids=VARIANT_IDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_argmax_rows_every_variant(mod, dtype):
    """The AVX-512 build uses masked vector compares, the others the portable code."""
    rng = np.random.default_rng(9)
    for n, C in [(1, 1), (37, 3), (100, 10), (50, 16), (40, 17), (33, 32), (20, 33), (5, 1000)]:
        x = rng.standard_normal((n, C)).astype(dtype)
        x[::4, rng.integers(0, C)] = np.nan
        x[1::5, :] = -np.inf
        x[2::6, rng.integers(0, C)] = np.inf
        x[3::7, :] = 0.0
        x[3::7, -1] = -0.0
        for nt in (1, 2, 3):
            out = np.full(n, -1, np.int64)
            mod.argmax_rows(x, out, nt)
            np.testing.assert_array_equal(out, np.argmax(x, axis=1))


@pytest.mark.parametrize("mod", VARIANTS, ids=VARIANT_IDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_elementwise_every_variant_and_thread_count(mod, dtype):
    sp = pytest.importorskip("scipy.special")
    rng = np.random.default_rng(11)
    n = 70_001
    with np.errstate(over="ignore"):  # float32 overflows to inf: wanted
        x = np.exp(rng.uniform(-700, 700, n)).astype(dtype)
        y = np.exp(rng.uniform(-700, 700, n)).astype(dtype)
    x[::31] = 0.0
    y[::37] = np.nan
    for op, fn in enumerate((sp.xlogy, sp.rel_entr, sp.kl_div)):
        with np.errstate(all="ignore"):
            exp = fn(x.astype(np.float64), y.astype(np.float64)).astype(dtype)
        outs = []
        for nt in (1, 2, 3):
            out = np.empty_like(x)
            mod.elementwise(op, x, y, out, nt)
            outs.append(out.tobytes())
        assert outs[0] == outs[1] == outs[2]
        assert np.array_equal(np.isnan(out), np.isnan(exp))
        fin = np.isfinite(exp)
        assert np.array_equal(out[~fin], exp[~fin], equal_nan=True)
        d = ulp_diff(out[fin], exp[fin])
        ok = d <= (1 if dtype == np.float32 else 4)
        if op == 2 and dtype == np.float64:  # x*log(x/y) - x + y cancels: relative to |x| + |y|
            mag = np.abs(x[fin].astype(np.float64)) + np.abs(y[fin].astype(np.float64))
            ok |= np.abs(out[fin] - exp[fin]) <= 2.0 ** -50 * mag
        assert ok.all(), (op, int(d[~ok].max()))


@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_logits_infinite_logits_forward_and_grad(dtype):
    inf = np.inf
    x = np.array([inf, -inf, inf, -inf, np.nan, 0.0] * 100, dtype)
    z = np.array([1.0, 0.0, 0.0, 1.0, 1.0, 0.5] * 100, dtype)
    exp = np.tile(np.array([0.0, 0.0, inf, inf, np.nan, np.log(2.0)], dtype), 100)
    for pw in (E, np.array([2.0, 0.5, 3.0])):
        out, lp, wp = run_forward(cy, "bce", (x, z, E, 1, pw, True, 0.0, CLIP_NONE, 0.0, False),
                              x.size, 64, dtype)
        if pw.size == 0:
            assert_close_values(out, exp, dtype, what="bce at +-inf")
        assert (out[0::6] == 0).all() and (out[1::6] == 0).all()
        g = np.empty_like(x)
        lp2, wp2 = np.zeros(lp.size), np.zeros(wp.size)
        cy.bce_grad(x, z, E, 1, pw, 0.0, 1.0, 64, lp2, wp2, g, np.zeros(0, dtype), 2)
        assert lp2.tobytes() == lp.tobytes() and wp2.tobytes() == wp.tobytes()
        assert (g[0::6] == 0).all() and (g[1::6] == 0).all()
