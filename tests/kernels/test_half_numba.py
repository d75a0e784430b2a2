"""Numba reads float16 / bfloat16 x itself in every function of its HALF_NATIVE (issue #18).

Each block is widened inside the parallel loop and then runs the float32 code, so every
output (values, block partials, gradients, Hessians, row results) must be the bits of the
Numba float32 kernel on ``x.astype(np.float32)``: NumPy's / ml_dtypes' own cast is the
expected input, not fastloss's widening. All 65536 bit patterns of each half type go
through every function (NaN results compared as NaN), for 1 and 2 threads.
"""

import numpy as np
import pytest
from _zoo import half_dtypes

from fastloss.kernels import numba as nk
from fastloss.kernels._blocks import (CLIP_EPS, CLIP_KERAS2, CLIP_NONE, CLIP_TORCH,
                                      block_rows_for, n_blocks)

pytestmark = pytest.mark.skipif(not nk.AVAILABLE, reason=nk.WHY_UNAVAILABLE)

HALF = half_dtypes()
IDS = [d.name for d in HALF]
E = np.zeros(0)
E32 = np.zeros(0, np.float32)
SENTINEL = 12345.0  # an output entry the kernel fails to write shows as this


def _same(a, b):
    """Equal bits, or NaN at the same places (other bits equal)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    na, nb = np.isnan(a), np.isnan(b)
    return np.array_equal(na, nb) and a[~na].tobytes() == b[~na].tobytes()


def _all_patterns(dtype, C, seed):
    """(n, C) half x whose first 65536 values are every bit pattern, the rest normal."""
    rng = np.random.default_rng(seed)
    n = -(-(1 << 16) // C) + 3
    x = (rng.standard_normal(n * C) * 4).astype(dtype)
    x[:1 << 16] = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(dtype)
    return x.reshape(n, C), rng


def _forward(fn, args, n, br, nt):
    nb = n_blocks(n, br)
    out, lp, wp = np.full(n, SENTINEL, np.float32), np.full(nb, np.nan), np.full(nb, np.nan)
    with np.errstate(all="ignore"):
        fn(*args, br, out, lp, wp, nt)
    return out, lp, wp


def _grad(fn, args, shape, br, nt):
    nb = n_blocks(shape[0], br)
    lp, wp = np.full(nb, np.nan), np.full(nb, np.nan)
    g, h = np.full(shape, SENTINEL, np.float32), np.full(shape, SENTINEL, np.float32)
    with np.errstate(all="ignore"):
        fn(*args, br, lp, wp, g, h, nt)
    return lp, wp, g, h


def _cases(x, rng):
    """(name, contract function, runner) of every HALF_NATIVE function, with options that
    reach its less common branches. ``runner(xx, nt)`` calls it on ``xx`` (half or float32)
    and returns every output."""
    n, C = x.shape
    br, br1 = block_rows_for(C), block_rows_for(1)
    y = rng.integers(0, C, n)
    y[::5] = -100  # ignored rows
    t = rng.random((n, C)).astype(np.float32)
    t /= t.sum(axis=1, keepdims=True)
    z = (rng.random(x.size) < 0.4).astype(np.float32)
    z[::7] = 0.3  # soft labels: the two-log BCE loops
    sw, cw, pw, ow = rng.random(n), rng.random(C) + 0.5, rng.random(3) + 0.5, rng.random(C)
    flat = x.size
    cases = [
        ("sparse_ce", "logits", lambda xx, nt: _forward(
            nk.sparse_ce, (xx, y, sw, cw, True, -100, True, 0.1, 1e-3, 0, 0.0, True), n, br, nt)),
        ("categorical_ce", "logits", lambda xx, nt: _forward(
            nk.categorical_ce, (xx, t, sw, cw, True, 0.1, 0, 0.0, False), n, br, nt)),
        ("bce", "logits", lambda xx, nt: _forward(
            nk.bce, (xx.reshape(-1), z, sw, C, pw, True, 0.1, 0, 0.0, True), flat, br1, nt)),
        ("kl", "log_input", lambda xx, nt: _forward(
            nk.kl, (xx, t, sw, True, False, CLIP_NONE, 0.0, True), n, br, nt)),
        ("mse", "output weights", lambda xx, nt: _forward(
            nk.mse, (xx, t, ow, sw, False), n, br, nt)),
        ("mse", "plain", lambda xx, nt: _forward(nk.mse, (xx, t, E, E, True), n, br, nt)),
        ("sparse_ce_grad", "", lambda xx, nt: _grad(
            nk.sparse_ce_grad, (xx, y, sw, cw, -100, True, 0.1, 1e-3, 0.5), (n, C), br, nt)),
        ("categorical_ce_grad", "", lambda xx, nt: _grad(
            nk.categorical_ce_grad, (xx, t, sw, cw, 0.1, 0.5), (n, C), br, nt)),
        ("bce_grad", "", lambda xx, nt: _grad(
            nk.bce_grad, (xx.reshape(-1), z, sw, C, pw, 0.1, 0.5), (flat,), br1, nt)),
        ("kl_grad", "probabilities", lambda xx, nt: _grad(
            nk.kl_grad, (xx, t, sw, False, False, 0.5), (n, C), br, nt)),
        ("kl_grad", "log_input", lambda xx, nt: _grad(
            nk.kl_grad, (xx, t, E, True, True, 0.5), (n, C), br, nt)),
        ("mse_grad", "", lambda xx, nt: _grad(
            nk.mse_grad, (xx, t, ow, sw, 0.5), (n, C), br, nt)),
        ("logsumexp_rows", "", lambda xx, nt: _rows(nk.logsumexp_rows, xx, (n,), nt)),
        ("softmax_rows", "softmax", lambda xx, nt: _rows(nk.softmax_rows, xx, (n, C), nt, False)),
        ("softmax_rows", "log", lambda xx, nt: _rows(nk.softmax_rows, xx, (n, C), nt, True)),
    ]
    # probabilities (every clip mode: x below 0, above 1, NaN and inf are in the patterns)
    for mode in (CLIP_NONE, CLIP_EPS, CLIP_TORCH, CLIP_KERAS2):
        cases += [
            ("sparse_ce", f"probs {mode}", lambda xx, nt, m=mode: _forward(
                nk.sparse_ce, (xx, y, sw, E, False, -100, True, 0.1, 0.0, m, 1e-7, False),
                n, br, nt)),
            ("categorical_ce", f"probs {mode}", lambda xx, nt, m=mode: _forward(
                nk.categorical_ce, (xx, t, E, cw, False, 0.0, m, 1e-7, True), n, br, nt)),
            ("bce", f"probs {mode}", lambda xx, nt, m=mode: _forward(
                nk.bce, (xx.reshape(-1), z, E, 1, E, False, 0.0, m, 1e-7, False), flat, br1,
                nt)),
        ]
    cases.append(("kl", "probabilities, clipped", lambda xx, nt: _forward(
        nk.kl, (xx, t, E, False, False, CLIP_EPS, 1e-7, False), n, br, nt)))
    return cases


def _rows(fn, xx, shape, nt, *args):
    out = np.full(shape, SENTINEL, np.float32)
    with np.errstate(all="ignore"):
        fn(xx, out, *args, nt) if args else fn(xx, out, nt)
    return (out,)


def test_half_native_is_the_cython_set():
    from fastloss.kernels import cython as cy

    want = {"sparse_ce", "sparse_ce_grad", "categorical_ce", "categorical_ce_grad", "bce",
            "bce_grad", "kl", "kl_grad", "mse", "mse_grad", "logsumexp_rows", "softmax_rows"}
    assert nk.HALF_NATIVE == want
    if cy.AVAILABLE:
        assert nk.HALF_NATIVE == cy.HALF_NATIVE


@pytest.mark.parametrize("dtype", HALF, ids=IDS)
@pytest.mark.parametrize("C", [1, 7, 40, 1000])
def test_every_bit_pattern_gives_the_float32_kernels_bits(dtype, C):
    x, rng = _all_patterns(dtype, C, C)
    wide = x.astype(np.float32)  # NumPy's / ml_dtypes' cast: the expected input
    seen = set()
    for name, what, run in _cases(x, rng):
        assert name in nk.HALF_NATIVE
        seen.add(name)
        want = run(wide, 2)
        assert not any((w == SENTINEL).any() for w in want), (name, what, "unwritten output")
        for nt in (1, 2):
            got = run(x, nt)  # half x straight to the kernel: anything else raises TypeError
            for k, (g, w) in enumerate(zip(got, want)):
                assert _same(g, w), (name, what, nt, k)
    assert seen == nk.HALF_NATIVE


@pytest.mark.parametrize("dtype", HALF, ids=IDS)
def test_rows_longer_than_a_segment(dtype):
    # rows of more than SEG (65536) values are split into segments across the threads: each
    # segment is widened on its own
    from fastloss.kernels.numba._kernels import SEG

    rng = np.random.default_rng(1)
    C = SEG + 4500
    x = (rng.standard_normal(3 * C) * 4).astype(dtype)
    x[C // 2:C // 2 + (1 << 16)] = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(dtype)
    x[2 * C + 9] = np.nan  # row 2 alone has a NaN: its results are NaN
    x = x.reshape(3, C)
    x[1] = np.where(np.isfinite(x[1]), x[1], 0)  # row 1 finite: a finite softmax
    wide = x.astype(np.float32)
    for nt in (1, 2):
        assert _same(_rows(nk.logsumexp_rows, x, (3,), nt)[0],
                     _rows(nk.logsumexp_rows, wide, (3,), 2)[0]), nt
        for log in (False, True):
            assert _same(_rows(nk.softmax_rows, x, (3, C), nt, log)[0],
                         _rows(nk.softmax_rows, wide, (3, C), 2, log)[0]), (nt, log)


def test_other_functions_still_refuse_half():
    x = np.ones((3, 4), np.float16)
    with pytest.raises(TypeError, match="float16"):
        nk.argmax_rows(x, np.empty(3, np.int64), 1)


def test_serial_copies_read_half_too(monkeypatch):
    # a fork() child of an OpenMP process runs parallel=False copies (_fork.py): the widening
    # is inlined there as well, with the same bits
    from fastloss.kernels.numba import _fork

    dtype = HALF[-1]
    x, rng = _all_patterns(dtype, 40, 3)
    cases = [c for c in _cases(x, rng) if (c[0], c[1]) in {("sparse_ce", "logits"),
                                                          ("softmax_rows", "log")}]
    want = [run(x, 2) for _, _, run in cases]
    monkeypatch.setattr(_fork, "serial", True)
    for (name, what, run), w in zip(cases, want):
        got = run(x, 2)
        assert all(_same(g, v) for g, v in zip(got, w)), (name, what)


@pytest.mark.parametrize("dtype", HALF, ids=IDS)
def test_public_functions_hand_half_x_to_the_kernels(dtype, monkeypatch):
    # the Python layer passes half x as it is to every HALF_NATIVE function (probabilities
    # too), instead of widening it in chunks first
    import fastloss as fl

    seen = []
    for name in nk.HALF_NATIVE:
        def spy(x, *args, _real=getattr(nk, name), _name=name):
            seen.append((_name, x.dtype))
            return _real(x, *args)
        monkeypatch.setattr(nk, name, spy)
    rng = np.random.default_rng(2)
    x = rng.random((50, 6)).astype(dtype)
    y = rng.integers(0, 6, 50)
    t = rng.random((50, 6)).astype(np.float32)
    nb = {"backend": "numba"}
    runs = {
        "sparse_ce": [lambda f=f: fl.sparse_categorical_cross_entropy(y, x, from_logits=f, **nb)
                      for f in (True, False)],
        "sparse_ce_grad": [lambda: fl.sparse_categorical_cross_entropy_grad(y, x, **nb)],
        "categorical_ce": [lambda f=f: fl.categorical_cross_entropy(t, x, from_logits=f, **nb)
                           for f in (True, False)],
        "categorical_ce_grad": [lambda: fl.categorical_cross_entropy_grad(t, x, **nb)],
        "bce": [lambda f=f: fl.binary_cross_entropy(t, x, from_logits=f, **nb)
                for f in (True, False)],
        "bce_grad": [lambda: fl.binary_cross_entropy_grad(t, x, **nb)],
        "kl": [lambda: fl.kl_divergence(t, x, **nb)],
        "kl_grad": [lambda: fl.kl_divergence_grad(t, x, **nb)],
        "mse": [lambda: fl.mean_squared_error(t, x, **nb)],
        "mse_grad": [lambda: fl.mean_squared_error_grad(t, x, **nb)],
        "logsumexp_rows": [lambda: fl.logsumexp(x, axis=1, **nb)],
        "softmax_rows": [lambda: fl.softmax(x, axis=1, **nb),
                         lambda: fl.log_softmax(x, axis=1, **nb)],
    }
    assert set(runs) == nk.HALF_NATIVE
    for name, fns in runs.items():
        for f in fns:
            seen.clear()
            with np.errstate(all="ignore"):
                f()
            assert seen and all(s == (name, dtype) for s in seen), (name, seen)


@pytest.mark.parametrize("dtype", HALF, ids=IDS)
def test_native_half_x_runs_in_one_kernel_call(dtype, monkeypatch):
    # no widening buffer to bound, so C-contiguous half x is not split into chunks (each
    # chunk a parallel launch); strided half x still is (no full-size copy of it)
    import fastloss as fl
    from fastloss.losses import _run

    monkeypatch.setattr(_run, "HALF_CHUNK_ELEMS", 64)
    calls = []
    for name in ("sparse_ce", "sparse_ce_grad", "bce"):
        def spy(*args, _real=getattr(nk, name), _name=name):
            calls.append(_name)
            return _real(*args)
        monkeypatch.setattr(nk, name, spy)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((6000, 7)).astype(dtype)  # 2336 rows a block: 3 blocks
    y = rng.integers(0, 7, 6000)
    z = rng.random((6000, 7)).astype(np.float32)
    kw = {"backend": "numba", "from_logits": True}
    for f, one in [(lambda: fl.sparse_categorical_cross_entropy(y, x, **kw), True),
                   (lambda: fl.sparse_categorical_cross_entropy_grad(y, x, backend="numba"), True),
                   (lambda: fl.binary_cross_entropy(z, x, **kw), True),
                   (lambda: fl.sparse_categorical_cross_entropy(y[:3000], x[::2], **kw),
                    False)]:
        calls.clear()
        with np.errstate(all="ignore"):
            f()
        assert len(calls) == 1 if one else len(calls) > 1, calls
