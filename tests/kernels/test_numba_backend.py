"""The Numba backend against the NumPy reference backend (the oracle).

* per-sample values (``out``): float32 within 1 ulp of the reference (which is the
  float64 formula rounded once); float64 within a relative 1e-12 of it (the two
  use different exp/log and summation orders; where the formula cancels, the
  tolerance is relative to the sum of the magnitudes of its terms);
  NaN and inf exactly where the reference has them;
* block partials (``lp``/``wp``): bit for bit the contract's block sums of the
  backend's own contributions, the same for n_threads 1, 2, 3 and for a call on
  a prefix of whole blocks plus a call on the rest.
"""

import itertools

import numpy as np
import pytest

from _zoo import (CLIP_MODES, DTYPES, E, logits_zoo, probs_zoo, run_forward, same_bits, targets,
                  ulp_distance)

from fastloss.kernels import numba as nb_backend
from fastloss.kernels import reference as ref
from fastloss.kernels._blocks import (
    CLIP_EPS,
    CLIP_KERAS2,
    CLIP_NONE,
    CLIP_TORCH,
    block_rows_for,
    block_sums,
    n_blocks,
)

pytestmark = pytest.mark.skipif(not nb_backend.AVAILABLE, reason=nb_backend.WHY_UNAVAILABLE)


# ------------------------------------------------------------------------------ helpers

def assert_close_to_reference(got, want, scale=None, what=""):
    """float32: <= 1 ulp. float64: |got - want| <= 1e-12 * max(|want|, scale)."""
    assert got.dtype == want.dtype
    nan_g, nan_w = np.isnan(got), np.isnan(want)
    assert np.array_equal(nan_g, nan_w), f"{what}: NaN at {np.flatnonzero(nan_g != nan_w)[:5]}"
    inf_g, inf_w = np.isinf(got), np.isinf(want)
    assert np.array_equal(got[inf_g | inf_w], want[inf_g | inf_w]), f"{what}: inf mismatch"
    if got.dtype == np.float32:
        d = ulp_distance(got, want)
        i = int(np.argmax(d)) if d.size else 0
        assert d.size == 0 or d.max() <= 1, (
            f"{what}: {d.max()} ulp at {i}: {got.reshape(-1)[i]!r} vs {want.reshape(-1)[i]!r}")
    else:
        fin = np.isfinite(want)
        g, w = got[fin].astype(np.float64), want[fin].astype(np.float64)
        s = np.abs(w) if scale is None else np.maximum(np.abs(w), np.asarray(scale)[fin])
        err = np.abs(g - w)
        worst = np.max(err / np.maximum(s, 1e-300)) if err.size else 0.0
        assert np.all(err <= 1e-12 * s), f"{what}: max relative error {worst}"


# ------------------------------------------------------------------- per-sample values

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", [1, 2, 7, 32, 33, 300])
def test_sparse_ce_logits(dtype, C):
    rng = np.random.default_rng(C)
    n = 157
    x = logits_zoo(rng, n, C, dtype)
    y = rng.integers(0, C, n)
    br = block_rows_for(C)
    for ls, zl, ign in itertools.product((0.0, 0.1, 1.0), (0.0, 1e-3), (False, True)):
        args = (x, y, E, E, True, int(y[9]), ign, ls, zl, CLIP_NONE, 0.0, False)
        got = run_forward(nb_backend, "sparse_ce", args, n, br, dtype)[0]
        want = run_forward(ref, "sparse_ce", args, n, br, dtype)[0]
        assert_close_to_reference(got, want, what=f"ls={ls} z={zl} ignore={ign}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", [1, 3, 40])
def test_sparse_ce_probabilities(dtype, C):
    rng = np.random.default_rng(10 + C)
    n = 131
    p = probs_zoo(rng, (n, C), dtype)
    y = rng.integers(0, C, n)
    br = block_rows_for(C)
    for mode, ls, eps in itertools.product(CLIP_MODES, (0.0, 0.2), (1e-7, 1e-3)):
        args = (p, y, E, E, False, 0, False, ls, 0.0, mode, eps, False)
        got = run_forward(nb_backend, "sparse_ce", args, n, br, dtype)[0]
        want = run_forward(ref, "sparse_ce", args, n, br, dtype)[0]
        assert_close_to_reference(got, want, what=f"mode={mode} ls={ls} eps={eps}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", [1, 5, 64])
def test_categorical_ce(dtype, C):
    rng = np.random.default_rng(20 + C)
    n = 97
    xl = logits_zoo(rng, n, C, dtype)
    p = probs_zoo(rng, (n, C), dtype)
    t = targets(rng, (n, C), dtype)
    cw = rng.random(C) + 0.5
    br = block_rows_for(C)
    for logits, ls, use_cw, mode in itertools.product((True, False), (0.0, 0.1), (False, True),
                                                      CLIP_MODES):
        if logits and mode != CLIP_NONE:
            continue
        args = (xl if logits else p, t, E, cw if use_cw else E, logits, ls, mode, 1e-7, False)
        got = run_forward(nb_backend, "categorical_ce", args, n, br, dtype)[0]
        want = run_forward(ref, "categorical_ce", args, n, br, dtype)[0]
        assert_close_to_reference(got, want, what=f"logits={logits} ls={ls} cw={use_cw} {mode}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_bce(dtype):
    rng = np.random.default_rng(30)
    xl = np.concatenate([logits_zoo(rng, 300, 11, dtype).reshape(-1),
                         np.linspace(-120, 120, 2001), [-745.5, 745.5, 1e-310]]).astype(dtype)
    m = xl.size
    z = rng.random(m)
    hard = rng.random(m) < 0.5
    z[hard] = np.round(z[hard])
    z = z.astype(dtype)
    p = probs_zoo(rng, m, dtype)
    br = block_rows_for(1)
    for K, ls in itertools.product((0, 11), (0.0, 0.1)):
        pw = rng.random(K) * 3
        args = (xl, z, E, 1, pw, True, ls, CLIP_NONE, 0.0, False)
        got = run_forward(nb_backend, "bce", args, m, br, dtype)[0]
        want = run_forward(ref, "bce", args, m, br, dtype)[0]
        assert_close_to_reference(got, want, what=f"logits K={K} ls={ls}")
        for mode, eps in itertools.product(CLIP_MODES, (1e-7, 1e-2)):
            args = (p, z, E, 1, pw, False, ls, mode, eps, False)
            got = run_forward(nb_backend, "bce", args, m, br, dtype)[0]
            want = run_forward(ref, "bce", args, m, br, dtype)[0]
            assert_close_to_reference(got, want, what=f"probs K={K} ls={ls} mode={mode}")


def _kl_scale(x, t, log_input, log_target, clip):
    """Sum over a row of |t (log t - log p)|: the size of the terms a KL row cancels."""
    x = x.astype(np.float64)
    t = t.astype(np.float64)
    with np.errstate(all="ignore"):
        if clip:
            x, t = np.clip(x, 1e-7, 1), np.clip(t, 1e-7, 1)
        lp = x if log_input else np.log(x)
        lt, tt = (t, np.exp(t)) if log_target else (np.log(t), t)
        terms = np.where(tt == 0, 0.0, tt * (lt - lp))
        return np.nansum(np.where(np.isfinite(terms), np.abs(terms), 0.0), axis=1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", [1, 6, 50])
def test_kl(dtype, C):
    rng = np.random.default_rng(40 + C)
    n = 89
    p = probs_zoo(rng, (n, C), dtype)
    t = targets(rng, (n, C), dtype)
    br = block_rows_for(C)
    for li, lt, mode in itertools.product((False, True), (False, True), (CLIP_NONE, CLIP_EPS)):
        if mode and (li or lt):
            continue
        with np.errstate(divide="ignore"):
            xk = (np.log(p) if li else p).astype(dtype)
            tk = (np.log(t) if lt else t).astype(dtype)
        args = (xk, tk, E, li, lt, mode, 1e-7, False)
        got = run_forward(nb_backend, "kl", args, n, br, dtype)[0]
        want = run_forward(ref, "kl", args, n, br, dtype)[0]
        assert_close_to_reference(got, want, _kl_scale(xk, tk, li, lt, mode),
                                  what=f"log_input={li} log_target={lt} mode={mode}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", [1, 4, 100])
def test_mse(dtype, C):
    rng = np.random.default_rng(50 + C)
    n = 113
    x = logits_zoo(rng, n, C, dtype)
    t = probs_zoo(rng, (n, C), dtype)
    br = block_rows_for(C)
    for ow in (E, rng.random(C) + 0.1):
        args = (x, t, ow, E, False)
        got = run_forward(nb_backend, "mse", args, n, br, dtype)[0]
        want = run_forward(ref, "mse", args, n, br, dtype)[0]
        assert_close_to_reference(got, want, what=f"ow={ow.size}")


def _lse_scale(x):
    """max |x| + 1 per row: logsumexp = m + L cancels when m < 0 and L ~ -m."""
    with np.errstate(invalid="ignore"):
        a = np.abs(x.astype(np.float64))
        return np.nanmax(np.where(np.isfinite(a), a, 0.0), axis=1) + 1.0


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", [1, 3, 32, 33, 500])
def test_logsumexp_and_softmax(dtype, C):
    rng = np.random.default_rng(60 + C)
    n = 71
    x = logits_zoo(rng, n, C, dtype)
    got, want = np.empty(n, dtype), np.empty(n, dtype)
    nb_backend.logsumexp_rows(x, got, 2)
    with np.errstate(all="ignore"):
        ref.logsumexp_rows(x, want, 2)
    if dtype == np.float32:
        # the result is m + L; when they cancel, 1 ulp of the float64 sum's inputs is
        # what a float32-grade exp can promise, so compare in the float64 domain there
        fin = np.isfinite(want)
        err = np.abs(got[fin].astype(np.float64) - want[fin])
        ulp_in = np.spacing(_lse_scale(x)[fin].astype(np.float32)).astype(np.float64)
        assert np.all((ulp_distance(got, want)[fin] <= 1) | (err <= ulp_in))
        assert np.array_equal(np.isnan(got), np.isnan(want))
        assert np.array_equal(got[~fin & ~np.isnan(want)], want[~fin & ~np.isnan(want)])
    else:
        assert_close_to_reference(got, want, _lse_scale(x), what="logsumexp")
    for log in (False, True):
        got, want = np.empty((n, C), dtype), np.empty((n, C), dtype)
        nb_backend.softmax_rows(x, got, log, 2)
        with np.errstate(all="ignore"):
            ref.softmax_rows(x, want, log, 2)
        if dtype == np.float32 or log:
            assert_close_to_reference(got, want, what=f"log={log}")
        else:
            # exp(d - L) amplifies the last-bit difference of L by |d - L|
            with np.errstate(all="ignore"):
                lw = np.log(want.astype(np.float64))
            fin = np.isfinite(want)
            rel = np.abs(got[fin] - want[fin]) / np.maximum(want[fin], 1e-300)
            assert np.all(rel <= 1e-14 * (1 + np.abs(lw[fin])))
            assert np.array_equal(np.isnan(got), np.isnan(want))


@pytest.mark.parametrize("dtype", DTYPES)
def test_logsumexp_long_row_is_split_without_changing_bits(dtype):
    """A 1 x 200k row is cut into fixed segments spread over the threads."""
    rng = np.random.default_rng(70)
    x = (rng.standard_normal((1, 200_003)) * 3).astype(dtype)
    outs = []
    for nt in (1, 2, 3):
        o = np.empty(1, dtype)
        nb_backend.logsumexp_rows(x, o, nt)
        outs.append(o)
    assert all(same_bits(outs[0], o) for o in outs)
    want = np.empty(1, dtype)
    ref.logsumexp_rows(x, want, 1)
    assert_close_to_reference(outs[0], want)
    sm = [np.empty_like(x) for _ in range(2)]
    nb_backend.softmax_rows(x, sm[0], False, 1)
    nb_backend.softmax_rows(x, sm[1], False, 2)
    assert same_bits(sm[0], sm[1])


def test_hand_computed_values():
    """Values worked out by hand, not by either backend."""
    ln2 = 0.6931471805599453
    for dt in DTYPES:
        x = np.array([[0.0, 0.0], [1000.0, 0.0], [-np.inf, 3.0], [np.inf, 0.0]], dt)
        y = np.array([0, 1, 1, 1])
        out = run_forward(nb_backend, "sparse_ce", (x, y, E, E, True, 0, False, 0.0, 0.0, 0, 0.0,
                                             False), 4, 8, dt)[0]
        assert out[0] == dt(ln2) and out[1] == dt(1000.0) and out[2] == 0.0
        assert out[3] == np.inf
        lse = np.empty(4, dt)
        nb_backend.logsumexp_rows(x, lse, 1)
        assert lse[0] == dt(ln2) and lse[1] == dt(1000.0) and lse[2] == dt(3.0)
        assert lse[3] == np.inf
        xb = np.array([0.0, 1000.0, -1000.0, np.nan], dt)
        zb = np.array([1.0, 1.0, 1.0, 0.0], dt)
        out = run_forward(nb_backend, "bce", (xb, zb, E, 1, E, True, 0.0, 0, 0.0, False), 4, 8, dt)[0]
        assert out[0] == dt(ln2) and out[1] == 0.0 and out[2] == dt(1000.0)
        assert np.isnan(out[3])
        pb = np.array([0.5, 0.0, 1.0, 0.0], dt)
        zb = np.array([1.0, 1.0, 1.0, 0.0], dt)
        out = run_forward(nb_backend, "bce", (pb, zb, E, 1, E, False, 0.0, CLIP_NONE, 0.0, False), 4, 8,
                   dt)[0]
        assert out[0] == dt(ln2) and out[1] == np.inf and out[2] == 0.0 and out[3] == 0.0
        out = run_forward(nb_backend, "bce", (pb, zb, E, 1, E, False, 0.0, CLIP_TORCH, 0.0, False), 4,
                   8, dt)[0]
        assert out[1] == 100.0


# ------------------------------------------------ weights, partials, threads and chunks

def _cases(dtype):
    """(name, args builder(sw, cw-like extras), n_rows, block_rows) of every kernel."""
    rng = np.random.default_rng(80)
    n, C = 1100, 13
    x = logits_zoo(rng, n, C, dtype)
    p = probs_zoo(rng, (n, C), dtype)
    t = targets(rng, (n, C), dtype)
    y = rng.integers(0, C, n)
    cw = rng.random(C) + 0.5
    br = 24  # small blocks: many of them, and a short last one
    m = 5003
    xf = logits_zoo(rng, m // 7 + 1, 7, dtype).reshape(-1)[:m].copy()
    zf = rng.random(m).astype(dtype)
    pf = probs_zoo(rng, m, dtype)
    pw = rng.random(7) * 2
    big = logits_zoo(rng, 40, 700, dtype)
    ybig = rng.integers(0, 700, 40)
    return [
        ("sparse_ce", lambda sw: (x, y, sw, cw, True, int(y[3]), True, 0.1, 1e-3, 0, 0.0), n, br),
        ("sparse_ce", lambda sw: (x, y, sw, E, True, 0, False, 0.0, 0.0, 0, 0.0), n, br),
        ("sparse_ce", lambda sw: (big, ybig, sw, E, True, 0, False, 0.0, 0.0, 0, 0.0), 40, 8),
        ("sparse_ce", lambda sw: (p, y, sw, cw, False, 0, False, 0.0, 0.0, CLIP_EPS, 1e-7), n, br),
        ("categorical_ce", lambda sw: (x, t, sw, cw, True, 0.1, 0, 0.0), n, br),
        ("categorical_ce", lambda sw: (p, t, sw, E, False, 0.0, CLIP_KERAS2, 1e-7), n, br),
        ("kl", lambda sw: (p, t, sw, False, False, CLIP_NONE, 0.0), n, br),
        ("mse", lambda sw: (x, t, E, sw), n, br),
        ("mse", lambda sw: (x, t, cw, sw), n, 13),
        ("bce", lambda sw: (xf, zf, sw, 1, pw, True, 0.05, 0, 0.0), m, 40),
        ("bce", lambda sw: (pf, zf, sw, 1, E, False, 0.0, CLIP_TORCH, 0.0), m, 40),
    ]


def _weights(rng, n, with_zeros=True):
    sw = rng.random(n) * 2
    if with_zeros:
        sw[rng.random(n) < 0.2] = 0.0
    return sw


@pytest.mark.parametrize("dtype", DTYPES)
def test_partials_are_the_block_sums_of_the_contributions(dtype):
    """lp/wp == block_sums of c = float64(v) * w (0 where w == 0), bit for bit, with
    nan_omit dropping NaN losses; v itself is read from an unweighted run."""
    rng = np.random.default_rng(81)
    for name, make, n, br in _cases(dtype):
        v = run_forward(nb_backend, name, _unweighted(name, make(E)), n, br, dtype,
                 want_partials=False)[0]
        sw = _weights(rng, n)
        args = make(sw)
        for nan_omit in (False, True):
            out, lp, wp = run_forward(nb_backend, name, args + (nan_omit,), n, br, dtype)
            w = _expected_weights(name, args, sw, n)
            with np.errstate(invalid="ignore"):
                c = np.where(w == 0, 0.0, v.astype(np.float64) * np.where(w == 0, 0.0, w))
            keep = ~np.isnan(v) if nan_omit else np.ones(n, bool)
            with np.errstate(over="ignore"):
                assert same_bits(out, c.astype(dtype)), name
            want_lp = block_sums(np.where(keep, c, 0.0), br)
            want_wp = block_sums(np.where(keep, w, 0.0), br)
            assert same_bits(lp, want_lp), name
            assert same_bits(wp, want_wp), name


@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_weights_per_leading_index(dtype):
    """sw[i // sw_div]: one weight per row of a (rows, sw_div) array of elements."""
    rng = np.random.default_rng(84)
    m, div = 3001, 7
    x = logits_zoo(rng, m // div + 1, div, dtype).reshape(-1)[:m].copy()
    z = rng.random(m).astype(dtype)
    sw = _weights(rng, -(-m // div))
    for br in (40, 16384):
        v = run_forward(nb_backend, "bce", (x, z, E, 1, E, True, 0.0, 0, 0.0, False), m, br, dtype,
                 want_partials=False)[0]
        out, lp, wp = run_forward(nb_backend, "bce", (x, z, sw, div, E, True, 0.0, 0, 0.0, False), m, br,
                           dtype)
        w = sw[np.arange(m) // div]
        with np.errstate(invalid="ignore"):
            c = np.where(w == 0, 0.0, v.astype(np.float64) * w)
        assert same_bits(lp, block_sums(c, br)) and same_bits(wp, block_sums(w, br))
        with np.errstate(over="ignore"):
            assert same_bits(out, c.astype(dtype))


def _unweighted(name, args):
    """The call with every weight 1, so that out == v: sparse CE without class weights
    and ignore_index (an ignored row's weight is 0, so its v never matters)."""
    if name == "sparse_ce":
        args = (args[0], args[1], E, E, args[4], 0, False) + args[7:]
    return args + (False,)


def _expected_weights(name, args, sw, n):
    if name == "sparse_ce":
        y, cw, ign_val, has_ign = args[1], args[3], args[5], args[6]
        w = sw.copy()
        ign = (y == ign_val) if has_ign else np.zeros(n, bool)
        if cw.size:
            w = w * cw[np.where(ign, 0, y)]
        if has_ign:
            w = w * np.where(ign, 0.0, 1.0)
        return w
    if name == "bce":
        return sw[np.arange(n) // args[3]]
    return sw


@pytest.mark.parametrize("dtype", DTYPES)
def test_results_do_not_depend_on_threads_or_chunks(dtype):
    rng = np.random.default_rng(82)
    for name, make, n, br in _cases(dtype):
        sw = _weights(rng, n)
        args = make(sw) + (True,)
        runs = [run_forward(nb_backend, name, args, n, br, dtype, n_threads=k) for k in (1, 2, 3)]
        for r in runs[1:]:
            for a, b in zip(runs[0], r):
                assert same_bits(a, b), name
        # a prefix of whole blocks, then the rest, as fastloss's chunked driver calls it
        out, lp, wp = runs[0]
        nb_ = n_blocks(n, br)
        # bce indexes pos_weight by the element index of the call: cut at multiples of K=7
        cuts = (7, 63, 119) if name == "bce" else (1, nb_ // 2, nb_ - 1)
        for cut_blocks in cuts:
            cut = cut_blocks * br
            o2 = np.empty(n, dtype)
            lp2 = np.empty(nb_)
            wp2 = np.empty(nb_)
            for a, b, b0, b1 in ((0, cut, 0, cut_blocks), (cut, n, cut_blocks, nb_)):
                sub = _slice_args(name, args, a, b, n)
                with np.errstate(all="ignore"):
                    getattr(nb_backend, name)(*sub, br, o2[a:b], lp2[b0:b1], wp2[b0:b1], 2)
            assert same_bits(out, o2), name
            assert same_bits(lp, lp2), name
            assert same_bits(wp, wp2), name


def _slice_args(name, args, a, b, n):
    """Rows [a, b) of a call's row-aligned arrays (bce: elements)."""
    def cut(v):
        return v[a:b] if isinstance(v, np.ndarray) and v.shape[:1] == (n,) else v
    return tuple(cut(v) for v in args)


def test_zero_length_outputs_mean_not_requested():
    rng = np.random.default_rng(83)
    x = logits_zoo(rng, 50, 9, np.float32)
    y = rng.integers(0, 9, 50)
    args = (x, y, E, E, True, 0, False, 0.0, 0.0, 0, 0.0, False)
    out_only = run_forward(nb_backend, "sparse_ce", args, 50, 8, np.float32, want_partials=False)
    parts_only = run_forward(nb_backend, "sparse_ce", args, 50, 8, np.float32, want_out=False)
    both = run_forward(nb_backend, "sparse_ce", args, 50, 8, np.float32)
    assert out_only[1].size == 0 and parts_only[0].size == 0
    assert np.array_equal(out_only[0], both[0], equal_nan=True)
    assert np.array_equal(parts_only[1], both[1], equal_nan=True)
    # the contract's absent array is a zero-length float64 one, whatever x's dtype
    lp, wp = np.zeros(7), np.zeros(7)
    nb_backend.sparse_ce(*args, 8, np.zeros(0), lp, wp, 1)
    assert np.array_equal(lp, both[1], equal_nan=True)


# --------------------------------------------------------------------------- validation

@pytest.mark.parametrize("dtype", DTYPES)
def test_first_outside_unit_interval(dtype):
    rng = np.random.default_rng(90)
    n = 3_000_017
    x = rng.random(n).astype(dtype)
    x[::1000] = np.nan  # NaN is not outside
    assert nb_backend.first_outside_unit_interval(x) == -1 == ref.first_outside_unit_interval(x)
    for pos in (0, 1, 16383, 16384, 2_500_001, n - 1):
        for bad in (-1e-30, 1.0000001, np.inf, -np.inf, -0.5):
            y = x.copy()
            y[pos] = bad
            y[min(n - 1, pos + 5):] = 2.0  # later bad values must not win
            assert nb_backend.first_outside_unit_interval(y) == pos
            assert ref.first_outside_unit_interval(y) == pos
    assert nb_backend.first_outside_unit_interval(np.zeros(0, dtype)) == -1
    edge = np.array([0.0, -0.0, 1.0], dtype)
    assert nb_backend.first_outside_unit_interval(edge) == -1


def test_unavailable_backend_reports_why(monkeypatch):
    """Importing the package never raises; without numba it says why."""
    import importlib
    import sys

    monkeypatch.setitem(sys.modules, "numba", None)
    for k in [k for k in sys.modules if k.startswith("fastloss.kernels.numba")]:
        monkeypatch.delitem(sys.modules, k)
    mod = importlib.import_module("fastloss.kernels.numba")
    assert mod.AVAILABLE is False and "numba" in mod.WHY_UNAVAILABLE
    with pytest.raises(RuntimeError, match="not available"):
        mod.logsumexp_rows(np.zeros((1, 1)), np.zeros(1), 1)


# ----------------------------------------------------------------------------- gradients
# The Numba gradients are formed without the reference's cancellations (p - 1 of a
# confident top class, 1 - sigmoid(x) for large x), so where those cancel the two
# differ by the reference's own rounding: the tolerance is relative to the size of
# the terms of the formula (`mag`), not to the (small) result.

def _grad_call(mod, fname, args, shape, br, dtype, n_threads=2, hessian=True):
    n = shape[0]
    lp, wp = np.full(n_blocks(n, br), -7.0), np.full(n_blocks(n, br), -7.0)
    g = np.full(shape, -7, dtype)
    h = np.full(shape, -7, dtype) if hessian else np.zeros((0,) * len(shape), dtype)
    with np.errstate(all="ignore"):
        getattr(mod, fname)(*args, br, lp, wp, g, h, n_threads)
    return lp, wp, g, h


def assert_grad_close(got, want, mag, what=""):
    assert np.array_equal(np.isnan(got), np.isnan(want)), what
    inf = np.isinf(want)
    assert np.array_equal(got[inf], want[inf]), what
    fin = np.isfinite(want)
    # degenerate rows (inf logits) can make the magnitude itself NaN: then |want| serves
    mag = np.where(np.isfinite(mag), mag, np.abs(want.astype(np.float64)))
    g, w, m = got[fin].astype(np.float64), want[fin].astype(np.float64), mag[fin]
    err = np.abs(g - w)
    if got.dtype == np.float32:
        ok = (ulp_distance(got[fin], want[fin]) <= 1) | (err <= 2.0 ** -30 * m)
    else:
        ok = err <= 2.0 ** -44 * m  # exp(d - L) turns an ulp of L into |d - L| ulps of p
    assert ok.all(), f"{what}: worst {err[~ok][:3]} at mag {m[~ok][:3]} ({got[fin][~ok][:3]})"


def _softmax64(x):
    p = np.empty(x.shape)
    with np.errstate(all="ignore"):
        ref.softmax_rows(x.astype(np.float64), p, False, 1)
    return p


def _forward_partials(fname, args, n, br, dtype):
    return run_forward(nb_backend, fname, args, n, br, dtype, want_out=False)[1:]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", [2, 9, 33, 120])
def test_sparse_ce_grad(dtype, C):
    rng = np.random.default_rng(100 + C)
    n = 77
    x = logits_zoo(rng, n, C, dtype)
    x[20:30] = (np.arange(C) * 4.0).astype(dtype)  # confident rows: p(top) ~ 1
    y = rng.integers(0, C, n)
    y[20:25] = C - 1  # the top class is the label
    sw, cw = rng.random(n) + 0.1, rng.random(C) + 0.5
    br = block_rows_for(C)
    p = _softmax64(x)
    for ls, z, ign, hess in itertools.product((0.0, 0.1), (0.0, 1e-3), (False, True),
                                              (True, False)):
        args = (x, y, sw, cw, int(y[9]), ign, ls, z, 0.37)
        lp, wp, g, h = _grad_call(nb_backend, "sparse_ce_grad", args, (n, C), br, dtype,
                                  hessian=hess)
        _, _, g_ref, h_ref = _grad_call(ref, "sparse_ce_grad", args, (n, C), br, dtype,
                                        hessian=hess)
        flp, fwp = _forward_partials("sparse_ce", (x, y, sw, cw, True, int(y[9]), ign, ls, z,
                                                   0, 0.0, False), n, br, dtype)
        assert same_bits(lp, flp) and same_bits(wp, fwp)
        s = np.abs(0.37 * sw * cw[y])[:, None]
        with np.errstate(all="ignore"):
            lse = np.log(np.sum(np.exp(x.astype(np.float64)), axis=1))
            k = np.abs(1 + 2 * z * lse)[:, None]
        with np.errstate(invalid="ignore"):
            mag_g = s * (p * k + ls / C + (1 - ls))
            mag_h = s * (p * k + 2 * z * p * p)
        what = f"ls={ls} z={z} ignore={ign}"
        assert_grad_close(g, g_ref, mag_g, what)
        if hess:
            assert_grad_close(h, h_ref, mag_h, what + " (h)")
        else:
            assert h.size == 0


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", [3, 64])
def test_categorical_ce_grad(dtype, C):
    rng = np.random.default_rng(110 + C)
    n = 61
    x = logits_zoo(rng, n, C, dtype)
    x[20:30] = (np.arange(C) * 4.0).astype(dtype)
    t = targets(rng, (n, C), dtype)
    t[20:25] = 0
    t[20:25, -1] = 1  # one-hot on the confident top class
    sw, cw = rng.random(n) + 0.1, rng.random(C) + 0.5
    br = block_rows_for(C)
    p = _softmax64(x)
    for ls in (0.0, 0.2):
        args = (x, t, sw, cw, ls, 2.0)
        lp, wp, g, h = _grad_call(nb_backend, "categorical_ce_grad", args, (n, C), br, dtype)
        _, _, g_ref, h_ref = _grad_call(ref, "categorical_ce_grad", args, (n, C), br, dtype)
        flp, fwp = _forward_partials("categorical_ce", (x, t, sw, cw, True, ls, 0, 0.0, False),
                                     n, br, dtype)
        assert same_bits(lp, flp) and same_bits(wp, fwp)
        coef = ((1 - ls) * t.astype(np.float64) + ls / C) * cw
        A = coef.sum(axis=1, keepdims=True)
        s = (2.0 * sw)[:, None]
        assert_grad_close(g, g_ref, s * (A * p + coef), f"ls={ls}")
        assert_grad_close(h, h_ref, s * A * p, f"ls={ls} (h)")


@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_grad(dtype):
    rng = np.random.default_rng(120)
    x = np.concatenate([logits_zoo(rng, 200, 11, dtype).reshape(-1),
                        np.linspace(-60, 60, 1201)]).astype(dtype)
    m = x.size
    z = rng.random(m)
    z[rng.random(m) < 0.5] = 1.0
    z = z.astype(dtype)
    sw = rng.random(m // 3 + 1)
    for K, ls, hess in itertools.product((0, 11), (0.0, 0.1), (True, False)):
        pw = rng.random(K) * 3
        args = (x, z, sw, 3, pw, ls, 0.5)
        lp, wp, g, h = _grad_call(nb_backend, "bce_grad", args, (m,), 64, dtype, hessian=hess)
        _, _, g_ref, h_ref = _grad_call(ref, "bce_grad", args, (m,), 64, dtype, hessian=hess)
        flp, fwp = _forward_partials("bce", (x, z, sw, 3, pw, True, ls, 0, 0.0, False), m, 64,
                                     dtype)
        assert same_bits(lp, flp) and same_bits(wp, fwp)
        zc = z.astype(np.float64) * (1 - ls) + 0.5 * ls
        pwe = pw[np.arange(m) % K] if K else 1.0
        with np.errstate(all="ignore"):
            sig = 1 / (1 + np.exp(-x.astype(np.float64)))
        c = pwe * zc + (1 - zc)
        s = 0.5 * sw[np.arange(m) // 3]
        assert_grad_close(g, g_ref, s * (c * sig + pwe * zc), f"K={K} ls={ls}")
        if hess:
            assert_grad_close(h, h_ref, s * c * sig, f"K={K} ls={ls} (h)")


@pytest.mark.parametrize("dtype", DTYPES)
def test_kl_and_mse_grad(dtype):
    rng = np.random.default_rng(130)
    n, C = 53, 17
    p = probs_zoo(rng, (n, C), dtype)
    t = targets(rng, (n, C), dtype)
    sw = rng.random(n)
    br = block_rows_for(C)
    for li, lt in itertools.product((False, True), (False, True)):
        with np.errstate(divide="ignore"):
            xk = (np.log(p) if li else p).astype(dtype)
            tk = (np.log(t) if lt else t).astype(dtype)
        args = (xk, tk, sw, li, lt, 1.5)
        lp, wp, g, h = _grad_call(nb_backend, "kl_grad", args, (n, C), br, dtype)
        _, _, g_ref, h_ref = _grad_call(ref, "kl_grad", args, (n, C), br, dtype)
        flp, fwp = _forward_partials("kl", (xk, tk, sw, li, lt, 0, 0.0, False), n, br, dtype)
        assert same_bits(lp, flp) and same_bits(wp, fwp)
        assert_grad_close(g, g_ref, np.abs(g_ref.astype(np.float64)), f"kl {li} {lt}")
        assert_grad_close(h, h_ref, np.abs(h_ref.astype(np.float64)), f"kl {li} {lt} (h)")
    x = logits_zoo(rng, n, C, dtype, adversarial=False)
    for ow in (E, rng.random(C) + 0.1):
        args = (x, t, ow, sw, 1.5)
        lp, wp, g, h = _grad_call(nb_backend, "mse_grad", args, (n, C), br, dtype)
        _, _, g_ref, h_ref = _grad_call(ref, "mse_grad", args, (n, C), br, dtype)
        flp, fwp = _forward_partials("mse", (x, t, ow, sw, False), n, br, dtype)
        assert same_bits(lp, flp) and same_bits(wp, fwp)
        assert_grad_close(g, g_ref, np.abs(g_ref.astype(np.float64)), "mse")
        assert_grad_close(h, h_ref, np.abs(h_ref.astype(np.float64)), "mse (h)")


@pytest.mark.parametrize("dtype", DTYPES)
def test_gradients_do_not_depend_on_threads_or_chunks(dtype):
    rng = np.random.default_rng(140)
    n, C = 300, 21
    x = logits_zoo(rng, n, C, dtype)
    y = rng.integers(0, C, n)
    sw = rng.random(n)
    br = 16
    args = (x, y, sw, E, 0, False, 0.1, 1e-3, 0.25)
    runs = [_grad_call(nb_backend, "sparse_ce_grad", args, (n, C), br, dtype, n_threads=k)
            for k in (1, 2, 3)]
    for r in runs[1:]:
        assert all(same_bits(a, b) for a, b in zip(runs[0], r))
    cut = 7 * br
    lp, wp = np.empty(n_blocks(n, br)), np.empty(n_blocks(n, br))
    g, h = np.empty((n, C), dtype), np.empty((n, C), dtype)
    for a, b, b0, b1 in ((0, cut, 0, 7), (cut, n, 7, lp.size)):
        nb_backend.sparse_ce_grad(x[a:b], y[a:b], sw[a:b], E, 0, False, 0.1, 1e-3, 0.25, br,
                                  lp[b0:b1], wp[b0:b1], g[a:b], h[a:b], 2)
    assert all(same_bits(a, b) for a, b in zip(runs[0], (lp, wp, g, h)))


def test_lane_order_is_block_sum_bit_for_bit():
    """The lane order, -0.0, the reference's zero padding and non-finite values, for
    every short length and block sizes that are or are not multiples of 8."""
    from fastloss.kernels.numba import _kernels as K

    rng = np.random.default_rng(150)
    for block_rows in (1, 5, 8, 13, 16, 24, 1030, 2048):
        for n in list(range(1, min(block_rows, 40) + 1)) + [block_rows - 1, block_rows]:
            if n < 1:
                continue
            for fill in ("mixed", "negzero"):
                if fill == "negzero":
                    c = np.full(n, -0.0)
                else:
                    # +-1e16 next to O(1) values: any change of order changes the bits
                    c = rng.standard_normal(n) * 10.0 ** rng.choice([0, 16], n)
                    c[rng.random(n) < 0.2] = -0.0
                    if fill == "mixed" and rng.random() < 0.3:
                        c[rng.random(n) < 0.05] = rng.choice([np.inf, -np.inf, np.nan])
                lp, wp = np.zeros(1), np.zeros(1)
                K._emit(c, E, False, 0, n, np.zeros(0), lp, wp, 0, block_rows)
                assert same_bits(lp, block_sums(c, block_rows)), (block_rows, n, c)
                assert same_bits(wp, block_sums(np.ones(n), block_rows))


def test_gradient_of_a_confident_row_keeps_its_relative_precision():
    """g(top) = p - 1 = -e/(1+e) with e = exp(-30): the reference's float64 p - 1 loses
    ~10 bits here; the Numba kernel forms -st/(1+st) and stays within 1 ulp."""
    e = np.exp(np.longdouble(-30))
    exact = -e / (1 + e)
    for dt in DTYPES:
        x = np.array([[0.0, -30.0]], dt)
        g = np.empty((1, 2), dt)
        nb_backend.sparse_ce_grad(x, np.array([0]), E, E, 0, False, 0.0, 0.0, 1.0, 8,
                                  np.zeros(1), np.zeros(1), g, np.zeros((0, 0), dt), 1)
        assert abs(np.longdouble(g[0, 0]) - exact) <= abs(np.spacing(dt(exact)))
        # exp(-30 - L) turns an ulp of its argument into ~16 ulps of p in float64
        tol = max(2.0 ** -44 * abs(exact), abs(np.spacing(dt(exact))))
        assert abs(np.longdouble(g[0, 1]) + exact) <= tol


def test_strided_outputs_are_filled():
    rng = np.random.default_rng(85)
    x = logits_zoo(rng, 40, 6, np.float64)
    y = rng.integers(0, 6, 40)
    want = run_forward(nb_backend, "sparse_ce", (x, y, E, E, True, 0, False, 0.0, 0.0, 0, 0.0, False),
                40, 8, np.float64, want_partials=False)[0]
    buf = np.full(80, 5.0)
    nb_backend.sparse_ce(x, y, E, E, True, 0, False, 0.0, 0.0, 0, 0.0, False, 8, buf[::2], E, E,
                         1)
    assert same_bits(buf[::2], want) and np.all(buf[1::2] == 5.0)
    g = np.full((40, 12), 5.0)
    lp, wp = np.zeros(5), np.zeros(5)
    nb_backend.sparse_ce_grad(x, y, E, E, 0, False, 0.0, 0.0, 1.0, 8, lp, wp, g[:, ::2],
                              np.zeros((0, 0)), 1)
    g2 = np.empty((40, 6))
    nb_backend.sparse_ce_grad(x, y, E, E, 0, False, 0.0, 0.0, 1.0, 8, lp, wp, g2,
                              np.zeros((0, 0)), 1)
    assert same_bits(g[:, ::2], g2) and np.all(g[:, 1::2] == 5.0)


# ---------------------------------------------------------- vectorised fast paths
# BCE / categorical CE on probabilities take one-log loops for labels 0 / 1 and a
# nonzero-entries-only loop for one-hot rows; MSE has a flat loop for C == 1. Each must
# give the bits of the general code (and the reference's values), for any thread count.

SUB = 1024  # the BCE sub-chunk (kernels/numba/_kernels.py)


def _bce_probs_case(rng, m, dtype):
    p = probs_zoo(rng, m, dtype)
    f = p.reshape(-1)
    # p whose 1 - p is inexact in float64 (log1p's correction c != 0), p = 1, 0, > 1 / < 0
    f[rng.integers(0, m, 40)] = rng.choice([1e-12, 3e-10, 2.0 ** -40, 1.0, 0.0, 1.5, -0.5], 40)
    z = (rng.random(m) < 0.5).astype(dtype)
    return p, z


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", CLIP_MODES)
def test_bce_probs_hard_label_path_is_the_general_path_bit_for_bit(dtype, mode):
    rng = np.random.default_rng(300 + mode)
    m = 8 * SUB + 77
    p, z = _bce_probs_case(rng, m, dtype)
    br = block_rows_for(1)
    for pw in (E, np.array([2.5, 0.0, 1.0]), np.array([np.inf])):
        args = (p, z, E, 1, pw, False, 0.0, mode, 1e-7, False)
        got, lp, wp = run_forward(nb_backend, "bce", args, m, br, dtype)
        # one soft label per sub-chunk sends every sub-chunk through the two-log loop;
        # the hard-labelled elements must not change by a bit
        zs = z.copy()
        zs[5::SUB] = 0.25
        gen = run_forward(nb_backend, "bce", (p, zs, E, 1, pw, False, 0.0, mode, 1e-7, False), m, br,
                   dtype)[0]
        keep = np.ones(m, bool)
        keep[5::SUB] = False
        assert same_bits(got[keep], gen[keep]), f"pw={pw}"
        want = run_forward(ref, "bce", args, m, br, dtype)[0]
        assert_close_to_reference(got, want, what=f"mode={mode} pw={pw}")
        for t in (1, 3):
            o2, lp2, wp2 = run_forward(nb_backend, "bce", args, m, br, dtype, n_threads=t)
            assert same_bits(got, o2) and same_bits(lp, lp2) and same_bits(wp, wp2)


@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_probs_special_values_per_clip_mode(dtype):
    nan, inf = np.nan, np.inf
    p = np.array([0.0, 1.0, 0.0, 1.0, nan, nan, 0.5, 1e-45 if dtype == np.float32 else 5e-324],
                 dtype)
    z = np.array([1.0, 0.0, 0.0, 1.0, 0.0, 1.0, nan, 1.0], dtype)
    br = block_rows_for(1)
    for mode in CLIP_MODES:
        args = (p, z, E, 1, E, False, 0.0, mode, 1e-7, False)
        got = run_forward(nb_backend, "bce", args, p.size, br, dtype)[0]
        want = run_forward(ref, "bce", args, p.size, br, dtype)[0]
        assert same_bits(got[:4], want[:4]), (mode, got, want)
        assert np.isnan(got[4:7]).all()
        if mode == CLIP_NONE:
            assert got[0] == inf and got[1] == inf and got[2] == 0 and got[3] == 0
        if mode == CLIP_TORCH:
            assert got[0] == 100 and got[1] == 100
        if mode in (CLIP_EPS, CLIP_KERAS2):
            assert np.isfinite(got[:4]).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", CLIP_MODES)
def test_categorical_ce_probs_one_hot_and_dense_paths(dtype, mode):
    rng = np.random.default_rng(400 + mode)
    for n, C in ((517, 100), (300, 7), (64, 1000)):
        p = probs_zoo(rng, (n, C), dtype)
        t = np.zeros((n, C), dtype)
        t[np.arange(n), rng.integers(0, C, n)] = 1
        t[3, :] = 0           # an all-zero row: 0
        t[4, :2] = 0.5        # two entries: still the sparse path when C >= 16
        t[5, :] = 1.0 / C     # dense
        t[6, 0] = np.nan      # a NaN target counts as nonzero
        br = block_rows_for(C)
        for cw in (E, rng.random(C)):
            args = (p, t, E, cw, False, 0.0, mode, 1e-7, False)
            got, lp, wp = run_forward(nb_backend, "categorical_ce", args, n, br, dtype)
            want = run_forward(ref, "categorical_ce", args, n, br, dtype)[0]
            assert_close_to_reference(got, want, what=f"C={C} mode={mode} cw={cw.size}")
            assert got[3] == 0 and np.isnan(got[6])
            # a one-hot row (sparse path) is its single term: the same bits as that
            # entry alone as a one-column problem (which takes the dense loop)
            rows = np.flatnonzero(np.count_nonzero(t, axis=1) == 1)
            k = np.argmax(t[rows] != 0, axis=1)
            p1 = np.ascontiguousarray(p[rows, k][:, None])
            t1 = np.ascontiguousarray(t[rows, k][:, None])
            cw1 = cw[k] if cw.size else E
            one = np.empty(rows.size, dtype)
            for i in range(rows.size):  # per row: a class weight per one-column call
                a1 = (p1[i:i + 1], t1[i:i + 1], E, cw1[i:i + 1] if cw.size else E, False, 0.0,
                      mode, 1e-7, False)
                one[i] = run_forward(nb_backend, "categorical_ce", a1, 1, block_rows_for(1), dtype)[0][0]
            assert same_bits(got[rows], one)
            for th in (1, 3):
                o2, lp2, wp2 = run_forward(nb_backend, "categorical_ce", args, n, br, dtype,
                                    n_threads=th)
                assert same_bits(got, o2) and same_bits(lp, lp2) and same_bits(wp, wp2)


@pytest.mark.parametrize("dtype", DTYPES)
def test_mse_single_column_is_the_reference_bit_for_bit(dtype):
    rng = np.random.default_rng(500)
    n = 3 * block_rows_for(1) + 11
    x = logits_zoo(rng, n, 1, dtype)
    t = probs_zoo(rng, (n, 1), dtype)
    br = block_rows_for(1)
    for ow, sw in itertools.product((E, np.array([0.7]), np.array([-2.0])), (E, rng.random(n))):
        args = (x, t, ow, sw, False)
        got, lp, wp = run_forward(nb_backend, "mse", args, n, br, dtype)
        want, wlp, wwp = run_forward(ref, "mse", args, n, br, dtype)
        # a one-term sum is exact: the same bits as the reference, partials included
        assert same_bits(got, want), f"ow={ow} sw={sw.size}"
        assert same_bits(lp, wlp) and same_bits(wp, wwp)
        for th in (1, 3):
            o2, lp2, wp2 = run_forward(nb_backend, "mse", args, n, br, dtype, n_threads=th)
            assert same_bits(got, o2) and same_bits(lp, lp2) and same_bits(wp, wp2)


@pytest.mark.parametrize("dtype", DTYPES)
def test_block_weights_without_sample_weights_are_counts(dtype):
    """The emit shortcut (no weights, no nan_omit): wp is the row count, lp the lane sum."""
    rng = np.random.default_rng(600)
    for n in (1, 7, 8, 9, 1000, 16384 + 5):
        x = rng.random(n).astype(dtype)
        z = (rng.random(n) < 0.5).astype(dtype)
        br = block_rows_for(1)
        out, lp, wp = run_forward(nb_backend, "bce", (x, z, E, 1, E, False, 0.0, CLIP_NONE, 0.0, False),
                           n, br, dtype)
        assert same_bits(lp, block_sums(out.astype(np.float64), br))
        assert same_bits(wp, block_sums(np.ones(n), br))


# ------------------------------------------------------------------ fork and Python threads

_FORK_SCRIPT = r"""
import multiprocessing as mp, os, signal, sys
import numpy as np
import fastloss as fl
from fastloss.kernels import numba as nb

@fl.elementwise_loss
def sq(t, p):
    return (p - t) * (p - t)

def work(i):
    x, y, t = DATA[i]
    return (fl.softmax(x), fl.sparse_categorical_cross_entropy(y, x, from_logits=True,
            reduction="none"), sq(t, x, reduction="none"))

rng = np.random.default_rng(0)
DATA = []
for dt in (np.float32, np.float64):
    x = (rng.standard_normal((3000, 37)) * 5).astype(dt)
    x[3, 4] = np.nan
    DATA.append((x, rng.integers(0, 37, 3000), rng.random((3000, 37)).astype(dt)))
parent = [work(i) for i in range(len(DATA))]  # starts Numba's threads (GNU OpenMP)
# a plain fork() child, and its own fork() child, on the backend directly
lse = np.empty(3000, np.float32)
nb.logsumexp_rows(DATA[0][0], lse, 2)
pid = os.fork()
if pid == 0:
    signal.alarm(200)  # a hung child must not outlive the test
    pid2 = os.fork()
    if pid2 == 0:
        b = np.empty_like(lse)
        nb.logsumexp_rows(DATA[0][0], b, 2)
        os._exit(0 if b.tobytes() == lse.tobytes() else 3)
    _, st = os.waitpid(pid2, 0)
    b = np.empty_like(lse)
    nb.logsumexp_rows(DATA[0][0], b, 2)
    os._exit(os.waitstatus_to_exitcode(st) or (0 if b.tobytes() == lse.tobytes() else 4))
_, status = os.waitpid(pid, 0)
print("child", os.waitstatus_to_exitcode(status))
# multiprocessing's default start method on Linux
with mp.get_context("fork").Pool(2) as pool:
    got = pool.map(work, range(len(DATA)))
same = all(a.tobytes() == b.tobytes() for pa, pb in zip(parent, got) for a, b in zip(pa, pb))
print("pool", same)
"""


def test_forked_children_do_not_hang_and_give_the_parents_bits():
    """Numba's GNU OpenMP layer kills (pool: hangs) a fork() child that launches threads
    after the parent did; the backend runs serial copies there, with the same bits."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, FASTLOSS_BACKEND="numba")
    res = subprocess.run([sys.executable, "-c", _FORK_SCRIPT], capture_output=True, text=True,
                         timeout=600, env=env)
    assert res.returncode == 0, (res.stdout, res.stderr)
    assert res.stdout.split() == ["child", "0", "pool", "True"], (res.stdout, res.stderr)
    assert "GNU OpenMP" not in res.stderr, res.stderr


def test_serial_copies_use_the_on_disk_cache():
    """The serial copy of a cached kernel is cached too (under its own name: Numba's
    cache does not key on ``parallel``), so forked workers load it instead of compiling."""
    from fastloss.kernels.numba import _fork
    from fastloss.kernels.numba import _kernels as k

    par = k.logsumexp_rows
    ser = _fork.serial_copy(par)
    assert ser is _fork.serial_copy(par)
    assert not ser.targetoptions.get("parallel")
    assert type(ser._cache).__name__ == type(par._cache).__name__ != "NullCache"
    assert ser._cache._impl.locator.get_source_stamp() == par._cache._impl.locator.get_source_stamp()
    assert ser.py_func.__qualname__ != par.py_func.__qualname__
    # its parallel callee is swapped for a serial copy as well
    assert ser.py_func.__globals__["_row_lse"] is _fork.serial_copy(k._row_lse)


def test_concurrent_python_threads_match_serial():
    """Calls from several Python threads at once (the kernels release the GIL) give the
    bits of one call at a time."""
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(5)
    jobs = []
    for k in range(8):
        dt = DTYPES[k % 2]
        x = logits_zoo(rng, 700 + 37 * k, 3 + 5 * k, dt)
        jobs.append((x, rng.integers(0, x.shape[1], x.shape[0])))

    def run(job):
        x, y = job
        n = x.shape[0]
        br = block_rows_for(x.shape[1])
        args = (x, y, E, E, True, -100, False, 0.1, 0.0, CLIP_NONE, 1e-7, False)
        out, lp, wp = run_forward(nb_backend, "sparse_ce", args, n, br, x.dtype, n_threads=2)
        lse = np.empty(n, x.dtype)
        with np.errstate(all="ignore"):
            nb_backend.logsumexp_rows(x, lse, 2)
        return out, lp, wp, lse

    serial = [run(j) for j in jobs]
    for _ in range(3):
        with ThreadPoolExecutor(4) as ex:
            conc = list(ex.map(run, jobs))
        for s, c in zip(serial, conc):
            for a, b in zip(s, c):
                assert a.tobytes() == b.tobytes()


# ------------------------------------------------------------ the same bits on every SIMD target
# LLVM compiles the kernels for the CPU it runs on (SSE2 / AVX2 / AVX-512 registers of
# different widths). Nothing may depend on that: no reassociated sums (the lanes of a
# row sum are explicit), no contraction chosen by the compiler, every written NaN the
# same NaN. Each target runs the zoo below in a subprocess (NUMBA_CPU_NAME /
# NUMBA_CPU_FEATURES), saving every output; the files must match byte for byte.

_ZOO_SCRIPT = r'''
import sys
import numpy as np
from fastloss.kernels import numba as nb
from fastloss.kernels._blocks import block_rows_for, n_blocks

DEST, CS, DTS = sys.argv[1], [int(c) for c in sys.argv[2].split(",")], sys.argv[3].split(",")
E = np.zeros(0)
res = {}
SPEC = [1e4, -1e4, 88.7, -88.7, 88.72, -103.9, 1e-40, -1e-40, 5e-324, 0.0, -0.0, -np.inf,
        np.inf, np.nan, -np.nan, 3e38, -3e38, 1.5, 1.5]
PSPEC = [0.0, 1.0, 1e-40, 1e-45, 1e-30, 1e-8, 1 - 1e-7, 0.5, np.nan, -0.0, 5e-324]


def zoo(rng, n, c, dt):
    x = rng.standard_normal((n, c)) * rng.choice([1e-3, 1.0, 7.0, 60.0], size=(n, 1))
    f = x.reshape(-1)
    k = max(1, f.size // 20)
    f[rng.integers(0, f.size, k)] = rng.choice(SPEC, size=k)
    for r, v in enumerate([-np.inf, 88.7, -88.7, 1e-40, np.nan, -0.0, np.inf]):
        if r + 8 < n:
            x[r + 8] = v  # rows of one special value
    if n > 3:
        x[1] = np.where(np.arange(c) % 2 == 0, 88.7, -104.0)
        x[2] = 3.0  # all ties
    return np.ascontiguousarray(x.astype(dt))


def probs(rng, shape, dt):
    p = rng.random(shape)
    f = p.reshape(-1)
    k = max(1, f.size // 8)
    f[rng.integers(0, f.size, k)] = rng.choice(PSPEC, size=k)
    return np.ascontiguousarray(p.astype(dt))


def run(tag, fn, n, br, dt, *args):
    for nt in (1, 2):
        out = np.full(n, -7, dt)
        lp = np.full(n_blocks(n, br), -7.0)
        wp = np.full(n_blocks(n, br), -7.0)
        fn(*args, br, out, lp, wp, nt)
        res.update({f"{tag}.out.t{nt}": out, f"{tag}.lp.t{nt}": lp, f"{tag}.wp.t{nt}": wp})


def grad(tag, fn, shape, br, dt, *args):
    n = shape[0]
    for nt in (1, 2):
        lp = np.full(n_blocks(n, br), -7.0)
        wp = np.full(n_blocks(n, br), -7.0)
        g = np.full(shape, -7, dt)
        h = np.full(shape, -7, dt)
        fn(*args, br, lp, wp, g, h, nt)
        res.update({f"{tag}.lp.t{nt}": lp, f"{tag}.wp.t{nt}": wp, f"{tag}.g.t{nt}": g,
                    f"{tag}.h.t{nt}": h})


np.seterr(all="ignore")
for dt in map(np.dtype, DTS):
    for C in CS:
        rng = np.random.default_rng(C)
        n = 5 if C > 10000 else (40 if C >= 1000 else 301)
        T = f"{dt.name}.C{C}"
        x = zoo(rng, n, C, dt)
        p = probs(rng, (n, C), dt)
        t = probs(rng, (n, C), dt)
        t[np.isnan(t)] = 0.25
        y = rng.integers(0, C, n)
        yi = y.copy()
        yi[::7] = -100
        sw = rng.random(n)
        sw[::5] = 0.0
        cw = rng.random(C) + 0.5
        ow = rng.random(C)
        for br in sorted({block_rows_for(C), 16}):
            B = f"{T}.br{br}"
            for nt in (1, 2):
                o = np.empty(n, dt)
                nb.logsumexp_rows(x, o, nt)
                res[f"{B}.lse.t{nt}"] = o
                for log in (False, True):
                    o = np.empty((n, C), dt)
                    nb.softmax_rows(x, o, log, nt)
                    res[f"{B}.softmax{log}.t{nt}"] = o
                o = np.empty(n, np.int64)
                nb.argmax_rows(x, o, nt)
                res[f"{B}.argmax.t{nt}"] = o
            run(f"{B}.sce", nb.sparse_ce, n, br, dt, x, y, E, E, True, -100, False, 0.0, 0.0, 0,
                1e-7, False)
            run(f"{B}.sce_w", nb.sparse_ce, n, br, dt, x, yi, sw, cw, True, -100, True, 0.1,
                1e-4, 0, 1e-7, True)
            for mode in range(4):
                run(f"{B}.sce_p{mode}", nb.sparse_ce, n, br, dt, p, yi, sw, E, False, -100, True,
                    0.1 if mode == 1 else 0.0, 0.0, mode, 1e-7, False)
                run(f"{B}.cce_p{mode}", nb.categorical_ce, n, br, dt, p, t, sw, E, False,
                    0.05 if mode == 2 else 0.0, mode, 1e-7, False)
                run(f"{B}.bce_p{mode}", nb.bce, n * C, br * 4, dt, p.reshape(-1), t.reshape(-1),
                    sw, C, E, False, 0.0, mode, 1e-7, False)
                run(f"{B}.bce_hard{mode}", nb.bce, n * C, br * 4, dt, p.reshape(-1),
                    np.round(t.reshape(-1)), E, 1, E, False, 0.0, mode, 1e-7, False)
            run(f"{B}.cce", nb.categorical_ce, n, br, dt, x, t, sw, cw, True, 0.1, 0, 1e-7, True)
            run(f"{B}.bce", nb.bce, n * C, br * 4, dt, x.reshape(-1), t.reshape(-1), sw, C, cw,
                True, 0.1, 0, 1e-7, False)
            run(f"{B}.bce0", nb.bce, n * C, br * 4, dt, x.reshape(-1), np.round(t.reshape(-1)),
                E, 1, E, True, 0.0, 0, 1e-7, False)
            for li, lt in ((False, False), (True, False), (True, True)):
                tt = np.ascontiguousarray(x[:, ::-1]) if lt else t
                run(f"{B}.kl{li}{lt}", nb.kl, n, br, dt, x if li else p, tt, sw, li, lt, 0, 1e-7,
                    False)
            run(f"{B}.kl_clip", nb.kl, n, br, dt, p, t, E, False, False, 1, 1e-7, True)
            run(f"{B}.mse", nb.mse, n, br, dt, x, p, ow, sw, False)
            run(f"{B}.mse0", nb.mse, n, br, dt, x, p, E, E, True)
            grad(f"{B}.g_sce", nb.sparse_ce_grad, (n, C), br, dt, x, yi, sw, cw, -100, True, 0.1,
                 1e-4, 0.01)
            grad(f"{B}.g_cce", nb.categorical_ce_grad, (n, C), br, dt, x, t, sw, cw, 0.1, 0.01)
            grad(f"{B}.g_bce", nb.bce_grad, (n * C,), br * 4, dt, x.reshape(-1), t.reshape(-1),
                 sw, C, cw, 0.1, 0.5)
            grad(f"{B}.g_kl", nb.kl_grad, (n, C), br, dt, p, t, sw, False, False, 1.0)
            grad(f"{B}.g_kl2", nb.kl_grad, (n, C), br, dt, x, x, sw, True, True, 1.0)
            grad(f"{B}.g_mse", nb.mse_grad, (n, C), br, dt, x, p, ow, sw, 1.0)
        res[f"{T}.first"] = np.array([nb.first_outside_unit_interval(p),
                                      nb.first_outside_unit_interval(x)])
        for op in range(3):
            for nt in (1, 2):
                o = np.empty(n * C, dt)
                nb.elementwise(op, p.reshape(-1), t.reshape(-1)[::-1].copy(), o, nt)
                res[f"{T}.ew{op}.t{nt}"] = o
                o = np.empty(n * C, dt)
                nb.elementwise(op, np.abs(x).reshape(-1), p.reshape(-1), o, nt)
                res[f"{T}.ewx{op}.t{nt}"] = o
    x = zoo(np.random.default_rng(1), 1, 200_003, dt)  # one huge row: the long-row split
    xf = np.where(np.isfinite(x), x, 0).astype(dt)
    for nt in (1, 2):
        for k, a in (("inf", x), ("fin", xf)):
            o = np.empty(1, dt)
            nb.logsumexp_rows(a, o, nt)
            res[f"{dt.name}.huge.lse_{k}.t{nt}"] = o
            s = np.empty_like(a)
            nb.softmax_rows(a, s, False, nt)
            res[f"{dt.name}.huge.softmax_{k}.t{nt}"] = s
np.savez(DEST, **res)
print(len(res))
'''

ZOO_CLASSES = "1,2,3,7,8,9,1000,50257"
HOST = None
BASELINE = {"NUMBA_CPU_NAME": "generic", "NUMBA_CPU_FEATURES": ""}  # x86-64: SSE2, no FMA
HASWELL = {"NUMBA_CPU_NAME": "haswell", "NUMBA_CPU_FEATURES": ""}   # AVX2 + FMA
SKX = {"NUMBA_CPU_NAME": "skylake-avx512", "NUMBA_CPU_FEATURES": ""}


def _zoo_run(tmp_path, name, target, dtypes):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items()
           if k not in ("NUMBA_CPU_NAME", "NUMBA_CPU_FEATURES")}
    env.update(target or {})
    dest = tmp_path / f"{name}.npz"
    res = subprocess.run([sys.executable, "-c", _ZOO_SCRIPT, str(dest), ZOO_CLASSES, dtypes],
                         capture_output=True, text=True, timeout=1800, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    return np.load(dest)


def _assert_same_files(a, b, what):
    assert sorted(a.files) == sorted(b.files)
    bad = [k for k in a.files if a[k].dtype != b[k].dtype or a[k].tobytes() != b[k].tobytes()]
    assert not bad, f"{what}: {len(bad)} of {len(a.files)} outputs differ, e.g. {bad[:5]}"
    # and within one target: one thread or two, the same bits
    for f in (a, b):
        diff = [k for k in f.files if k.endswith(".t1") and f[k].tobytes() != f[k[:-1] + "2"].tobytes()]
        assert not diff, f"{what}: thread count changes {diff[:5]}"


def _host_is_x86():
    import platform

    return platform.machine() in ("x86_64", "AMD64")


@pytest.mark.skipif(not _host_is_x86(), reason="the simulated targets are x86-64 CPUs")
def test_same_bits_on_baseline_x86_64_and_the_host_target(tmp_path):
    """float32 zoo: generic x86-64 code (SSE2, fma in software) vs the host's own target
    (AVX-512 here), NaN bits included."""
    host = _zoo_run(tmp_path, "host", HOST, "float32")
    base = _zoo_run(tmp_path, "base", BASELINE, "float32")
    n_nan = sum(int(np.isnan(host[k]).sum()) for k in host.files if host[k].dtype.kind == "f")
    assert n_nan > 1000  # the zoo does exercise NaN outputs
    _assert_same_files(host, base, "baseline vs host")


@pytest.mark.slow
@pytest.mark.skipif(not _host_is_x86(), reason="the simulated targets are x86-64 CPUs")
@pytest.mark.parametrize("dtypes", ["float32", "float64"])
def test_same_bits_on_every_x86_target(tmp_path, dtypes):
    """Baseline, AVX2 (haswell), AVX-512 (skylake-avx512) and the host: float32 and float64."""
    host = _zoo_run(tmp_path, "host", HOST, dtypes)
    for name, target in (("base", BASELINE), ("haswell", HASWELL), ("skx", SKX)):
        _assert_same_files(host, _zoo_run(tmp_path, name, target, dtypes), f"{name} vs host")
