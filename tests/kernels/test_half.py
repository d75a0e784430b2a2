"""Half-precision predictions (float16, bfloat16) on every backend (issue #18).

The contract: results of half ``y_pred`` are float32, within 1 ulp per element of the
float64 reference on ``y_pred.astype(np.float32)`` (the widening is exact; ml_dtypes' own
cast is the expected value, not fastloss's shift), and bit for bit the same for every
thread count, chunking and layout. NumPy and Numba give the float32 path's bits on the
widened input; Cython takes exp and log1p(exp(-|x|)) of half logits from float64 tables
(``TABLE_BACKENDS``), so its results may differ from its float32 path in the last bit.
"""

import inspect
import tracemalloc
import warnings

import numpy as np
import pytest
from _zoo import cython_variants, half_dtypes, half_layouts, half_loss_cases, ulp_distance

import fastloss as fl
from fastloss.losses import _run

HALF = half_dtypes()
IDS = [d.name for d in HALF]
REDUCTIONS = ("none", "sum", "mean")


def _call(f, yt, yp, kw, **more):
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return f(yt, yp, **kw, **more)


def _wide(a):
    """The exact float32 of a half array by NumPy / ml_dtypes' own cast."""
    return a.astype(np.float32) if a.dtype.itemsize == 2 and a.dtype.kind in "fV" else a


def _same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


# backends whose half kernels look exp / softplus of half logits up in float64 tables
TABLE_BACKENDS = ("cython",)


def _like_float32_path(got, want, backend, ulps=1):
    """got (half input) against want (the float32 path on the widened input): the same bits,
    or for TABLE_BACKENDS the same dtype, shape and NaNs and at most ``ulps`` apart (the
    table's exp is float64-grade where the float32 path's is 1e-10; both are within 1 ulp
    of the float64 reference, which test_per_sample_values_within_one_ulp_of_float64 and
    test_native_half_kernels_every_bit_pattern check)."""
    if backend not in TABLE_BACKENDS:
        return _same(got, want)
    got, want = np.asarray(got), np.asarray(want)
    if got.dtype != want.dtype or got.shape != want.shape:
        return False
    return bool(ulp_distance(got, want).max(initial=0) <= ulps)


@pytest.fixture
def small_chunks(monkeypatch):
    """run_chunks copies (and widens) 64 elements at a time: many chunks per call."""
    monkeypatch.setattr(_run, "STRIDED_COPY_ELEMS", 64)
    monkeypatch.setattr(_run, "HALF_CHUNK_ELEMS", 64)


@pytest.mark.parametrize("dtype", HALF, ids=IDS)
def test_losses_like_float32_path_and_same_bits_any_layout(backend, dtype, small_chunks):
    for cid, spec, yt, yp, kw in half_loss_cases(dtype):
        yt32 = _wide(yt)
        for red in REDUCTIONS:
            want = _call(spec.func, yt32, _wide(yp), kw, reduction=red, backend=backend)
            assert np.asarray(want).dtype == np.float32
            half = _call(spec.func, yt, yp, kw, reduction=red, backend=backend)
            # a sum of values each within 1 ulp is within 2 ulps
            assert _like_float32_path(half, want, backend, 1 if red == "none" else 2), \
                (cid, red)
            for lay, x in half_layouts(yp).items():
                for nt in (1, 2, 3):
                    got = _call(spec.func, yt, x, kw, reduction=red, backend=backend,
                                n_threads=nt)
                    assert _same(got, half), (cid, red, lay, nt)
            # float32 targets with half predictions: the same bits
            got = _call(spec.func, yt32, yp, kw, reduction=red, backend=backend)
            assert _same(got, half), (cid, red, "float32 targets")


def _grad_options(spec, kw):
    params = inspect.signature(spec.gradient).parameters
    if kw.get("from_logits") is False or "clip" in kw and kw["clip"] is not None:
        return None  # gradients are on logits only
    return {k: v for k, v in kw.items() if k in params}


@pytest.mark.parametrize("dtype", HALF, ids=IDS)
def test_gradients_like_float32_path_and_same_bits_any_layout(backend, dtype, small_chunks):
    n_cases = 0
    for cid, spec, yt, yp, kw in half_loss_cases(dtype):
        opts = _grad_options(spec, kw)
        if opts is None:
            continue
        n_cases += 1
        for red in ("sum", "mean"):
            want = _call(spec.gradient, _wide(yt), _wide(yp), opts, reduction=red,
                         hessian=True, backend=backend)
            assert [w.dtype for w in want[1:]] == [np.float32, np.float32]
            half = _call(spec.gradient, yt, yp, opts, reduction=red, hessian=True,
                         backend=backend)
            assert all(_like_float32_path(g, w, backend, 2) for g, w in zip(half, want)), \
                (cid, red)
            for lay, x in half_layouts(yp).items():
                for nt in (1, 3):
                    got = _call(spec.gradient, yt, x, opts, reduction=red, hessian=True,
                                backend=backend, n_threads=nt)
                    assert all(_same(g, w) for g, w in zip(got, half)), (cid, red, lay, nt)
    assert n_cases >= 8


@pytest.mark.parametrize("dtype", HALF, ids=IDS)
def test_row_functions_like_float32_path_and_same_bits_any_layout(backend, dtype, small_chunks):
    rng = np.random.default_rng(7)
    # rows of 9, 11 and 40 (40: past the narrow-row path, the table path of TABLE_BACKENDS)
    a = (rng.standard_normal((9, 11, 40)) * 20).astype(dtype)
    a[0, 0, :4] = np.array([np.inf, -np.inf, np.nan, 6e4]).astype(dtype)
    a[1, :, 0] = np.array(-np.inf).astype(dtype)
    a[2, 3, :] = a[2, 3, 5]  # a row of ties at the max
    a32 = _wide(a)
    layouts = (a, np.asfortranarray(a), np.repeat(a, 2, axis=1)[:, ::2])
    for axis in (None, 0, 1, 2, -1):
        for nt in (1, 2):
            for f in (fl.softmax, fl.log_softmax, fl.logsumexp):
                want = _call(lambda _, x, **k: f(x, **k), None, a32, {}, axis=axis,
                             backend=backend, n_threads=nt)
                half = _call(lambda _, x, **k: f(x, **k), None, a, {}, axis=axis,
                             backend=backend, n_threads=nt)
                assert _like_float32_path(half, want, backend), (f.__name__, axis, nt)
                for x in layouts:
                    got = f(x, axis=axis, backend=backend, n_threads=nt)
                    assert _same(got, half), (f.__name__, axis, nt)
    for axis in ((0, 2), (1, 2)):
        assert _like_float32_path(fl.logsumexp(a, axis=axis, backend=backend),
                                  fl.logsumexp(a32, axis=axis, backend=backend), backend)
    b = rng.random((11, 1))
    assert _like_float32_path(fl.logsumexp(a, axis=1, b=b, backend=backend),
                              fl.logsumexp(a32, axis=1, b=b, backend=backend), backend)


@pytest.mark.parametrize("dtype", HALF, ids=IDS)
def test_per_sample_values_within_one_ulp_of_float64(backend, dtype):
    # The float64 reference backend on the widened inputs, rounded once to float32.
    n_checked = 0
    for cid, spec, yt, yp, kw in half_loss_cases(dtype):
        if kw.get("clip") is not None:
            continue  # clip bounds are computed in the input's dtype: float32 vs float64
        got = _call(spec.func, yt, yp, kw, reduction="none", backend=backend)
        t64 = _wide(yt).astype(np.float64) if yt.dtype.kind in "fV" else yt
        ref = _call(spec.func, t64, _wide(yp).astype(np.float64), kw, reduction="none",
                    backend="numpy")
        with np.errstate(over="ignore"):
            ref32 = ref.astype(np.float32)
        d = ulp_distance(got, ref32)
        assert d.max() <= 1, (cid, got.ravel()[np.argmax(d)], ref.ravel()[np.argmax(d)])
        n_checked += 1
    assert n_checked >= 12


@pytest.mark.parametrize("dtype", HALF, ids=IDS)
def test_gradient_within_one_ulp_of_float64(backend, dtype):
    for cid, spec, yt, yp, kw in half_loss_cases(dtype):
        opts = _grad_options(spec, kw)
        if opts is None:
            continue
        got = _call(spec.gradient, yt, yp, opts, reduction="sum", hessian=True, backend=backend)
        t64 = _wide(yt).astype(np.float64) if yt.dtype.kind in "fV" else yt
        ref = _call(spec.gradient, t64, _wide(yp).astype(np.float64), opts, reduction="sum",
                    hessian=True, backend="numpy")
        for g, r in zip(got[1:], ref[1:]):
            with np.errstate(over="ignore", invalid="ignore"):
                d = ulp_distance(g, r.astype(np.float32))
                # the float64 reference itself is only absolutely accurate where p rounds
                # to 1 (its p * (1 - p) is 0; a backend summing 1 - p gets 8e-36)
                d = np.where(np.abs(g - r) <= 2.0**-50, 0, d)
            assert d.max() <= 1, (cid, g.ravel()[np.argmax(d)], r.ravel()[np.argmax(d)])


@pytest.mark.parametrize("dtype", HALF, ids=IDS)
def test_rows_near_the_table_window_edges(backend, dtype):
    # rows whose max lies at the table path's limits: a sum of exp(x_j) near exp(700) over
    # 40000 classes overflows float64 (it did with the window's first upper bound, 700), and
    # a max near -300 leaves the small terms subnormal; both must match the float64 reference
    rows = []
    for top in (599.5, 600.0, 604.0, 699.5, 700.0, -299.0, -300.0, -304.0):
        r = np.full(40000, top - 0.5)
        r[0] = top
        r[7::5] = top - 40.0
        rows.append(r)
    x = np.array(rows).astype(dtype)
    y = np.arange(len(rows)) * 3
    x64 = _wide(x).astype(np.float64)
    with np.errstate(all="ignore"):
        want = fl.sparse_categorical_cross_entropy(y, x64, from_logits=True, reduction="none",
                                                   backend="numpy").astype(np.float32)
        soft = fl.softmax(x64, axis=1, backend="numpy").astype(np.float32)
        lse = fl.logsumexp(x64, axis=1, backend="numpy").astype(np.float32)
    got = fl.sparse_categorical_cross_entropy(y, x, from_logits=True, reduction="none",
                                              backend=backend)
    assert ulp_distance(got, want).max() <= 1, got
    assert ulp_distance(fl.logsumexp(x, axis=1, backend=backend), lse).max() <= 1
    assert ulp_distance(fl.softmax(x, axis=1, backend=backend), soft).max() <= 1


def test_bfloat16_widening_is_the_bit_shift():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    from fastloss._half import widen

    bits = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
    a = bits.view(ml_dtypes.bfloat16)
    got = widen(a, np.empty(a.shape, np.float32))
    assert np.array_equal(got.view(np.uint32), bits.astype(np.uint32) << 16)
    want = a.astype(np.float32)  # ml_dtypes' cast; NaNs may be quietened: compare the others
    ok = ~np.isnan(want)
    assert np.array_equal(got[ok].view(np.uint32), want[ok].view(np.uint32))


@pytest.mark.parametrize("dtype", HALF, ids=IDS)
def test_no_full_size_float32_copy(dtype, small_chunks, monkeypatch):
    monkeypatch.setattr(_run, "HALF_CHUNK_ELEMS", 1 << 14)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4000, 500)).astype(dtype)  # 4 MB half, 8 MB as float32
    y = rng.integers(0, 500, 4000)
    want = fl.sparse_categorical_cross_entropy(y, _wide(x), from_logits=True)
    fl.sparse_categorical_cross_entropy(y[:10], x[:10], from_logits=True)  # warm up
    tracemalloc.start()
    try:
        got = fl.sparse_categorical_cross_entropy(y, x, from_logits=True)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert _same(got, want)
    assert peak < 1 << 20, peak  # a few chunk buffers of 64 KB, not 8 MB


@pytest.mark.parametrize("make,words", [
    (lambda: np.zeros((2, 3), np.complex64), ["y_pred", "complex64", "complex"]),
    (lambda: np.zeros((2, 3), "V2"), ["y_pred", "V2", "raw bytes"]),
])
def test_bad_dtypes_named(make, words):
    with pytest.raises(TypeError) as exc:
        fl.sparse_categorical_cross_entropy([0, 1], make(), from_logits=True)
    for w in words:
        assert w in str(exc.value)


def test_float8_refused_with_advice():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    x = np.zeros((2, 3), ml_dtypes.float8_e4m3fn)
    for f, args in [(fl.sparse_categorical_cross_entropy, ([0, 1], x)),
                    (fl.binary_cross_entropy, (np.zeros((2, 3)), x))]:
        with pytest.raises(TypeError, match=r"y_pred .*float8_e4m3fn.*astype\(np.float32\)"):
            f(*args, from_logits=True)
    with pytest.raises(TypeError, match="a must be .*float8_e4m3fn"):
        fl.logsumexp(x)


def test_half_targets_with_float32_predictions_are_exact():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((50, 4)).astype(np.float32)
    t = rng.random((50, 4)).astype(ml_dtypes.bfloat16)
    want = fl.binary_cross_entropy(t.astype(np.float32), x, from_logits=True, reduction="none")
    assert _same(fl.binary_cross_entropy(t, x, from_logits=True, reduction="none"), want)


def test_torch_half_view_shares_memory(torch):
    pytest.importorskip("ml_dtypes")
    from fastloss._half import torch_half_view

    base = torch.randn(6, 5) * 4
    for dt in (torch.float16, torch.bfloat16):
        t = base.to(dt)
        for src in (t, t[:, 1:4], t.t()):
            v = torch_half_view(src)
            assert v.shape == tuple(src.shape)
            assert np.array_equal(v.astype(np.float32), src.float().numpy())
            assert v.__array_interface__["data"][0] == src.data_ptr()  # a view, no copy
        g = fl.sparse_categorical_cross_entropy(np.arange(6) % 5, torch_half_view(t),
                                                from_logits=True)
        assert _same(g, fl.sparse_categorical_cross_entropy(np.arange(6) % 5,
                                                            t.float().numpy(), from_logits=True))
    with pytest.raises(TypeError, match="torch.float32"):
        torch_half_view(base)


@pytest.mark.parametrize("dtype", [np.int16, np.uint16])
def test_sixteen_bit_integers_as_predictions_refused(dtype):
    # raw half-precision bits (a bfloat16 dump read as uint16) must not be scored as numbers
    x = np.full((2, 3), 15360, dtype)  # float16 1.0
    for f in (fl.sparse_categorical_cross_entropy, fl.binary_cross_entropy):
        y = [0, 1] if f is fl.sparse_categorical_cross_entropy else np.zeros((2, 3))
        with pytest.raises(TypeError, match=rf"y_pred has dtype {np.dtype(dtype)}.*view"):
            f(y, x, from_logits=True)
    # other integer predictions stay exact float64 (test_integer_and_bool_y_pred_give_float64)
    assert fl.sparse_categorical_cross_entropy([0, 1], x.astype(np.int32),
                                               from_logits=True).dtype == np.float64


def _run_kernel(fn, x, nrows, br, *args):
    """(out, lp, wp) of a contract loss function; args end with n_threads."""
    from fastloss.kernels import n_blocks

    out, lp, wp = np.empty(nrows, np.float32), np.zeros(n_blocks(nrows, br)), \
        np.zeros(n_blocks(nrows, br))
    with np.errstate(all="ignore"):
        fn(x, *args[:-1], br, out, lp, wp, args[-1])
    return out, lp, wp


def _native_engines():
    """(id, module) of every HALF_NATIVE kernel set: Numba, and each Cython build this CPU
    runs (their widening is plain C that every SIMD level compiles)."""
    from fastloss.kernels import numba as nk
    engines = [pytest.param(nk, id="numba", marks=pytest.mark.skipif(
        not nk.AVAILABLE, reason=str(nk.WHY_UNAVAILABLE)))]
    return engines + [pytest.param(m, id="cython-" + m.build_info()["variant"])
                      for m in cython_variants()]


@pytest.mark.parametrize("dtype", HALF, ids=IDS)
@pytest.mark.parametrize("C", [1, 7, 40, 1000])
@pytest.mark.parametrize("nk", _native_engines())
def test_native_half_kernels_every_bit_pattern(dtype, C, nk):
    # HALF_NATIVE kernels widen inside the parallel loop: all 65536 half values must give
    # the float32 kernel's bits on x.astype(float32) (ml_dtypes' / NumPy's cast); Cython's
    # table path within 1 ulp of them (test_table_path_every_bit_pattern_within_one_ulp)
    from fastloss.kernels import block_rows_for
    from fastloss.kernels import cython as cy

    assert {"sparse_ce", "bce"} <= (cy.HALF_NATIVE if nk.__name__.startswith(cy.__name__)
                                    else nk.HALF_NATIVE)
    rng = np.random.default_rng(C)
    bits = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
    n = -(-bits.size // C) + 3
    x = (rng.standard_normal(n * C) * 4).astype(dtype)
    x[:bits.size] = bits.view(dtype)
    x2, y = x.reshape(n, C), rng.integers(0, C, n)
    z = (rng.random(x.size) < 0.4).astype(np.float32)
    sw, pw = rng.random(n), rng.random(3) + 0.5

    backend = "cython" if nk.__name__.startswith(cy.__name__) else "numba"
    for nt in (1, 2):
        br = block_rows_for(C)
        sce = (y, sw, np.zeros(0), True, 0, False, 0.1, 1e-3, 0, 0.0, True, nt)
        got = _run_kernel(nk.sparse_ce, x2, n, br, *sce)
        want = _run_kernel(nk.sparse_ce, _wide(x2), n, br, *sce)
        assert _like_float32_path(got[0], want[0], backend), ("sparse_ce", nt)
        assert all(_like_float32_path(g, w, backend, 2) for g, w in zip(got, want)), nt
        br = block_rows_for(1)
        bce = (z, sw, C, pw, True, 0.1, 0, 0.0, False, nt)
        got = _run_kernel(nk.bce, x, x.size, br, *bce)
        want = _run_kernel(nk.bce, _wide(x), x.size, br, *bce)
        assert _like_float32_path(got[0], want[0], backend), ("bce", nt)
        assert all(_like_float32_path(g, w, backend, 2) for g, w in zip(got, want)), nt


@pytest.mark.parametrize("dtype", HALF, ids=IDS)
@pytest.mark.parametrize("C", [40, 1000])
def test_table_path_every_bit_pattern_within_one_ulp(dtype, C):
    # The Cython half kernels look exp(x) (rows wider than 32 whose max lies in [-300, 700])
    # and log1p(exp(-|x|)) (BCE on logits) up in float64 tables: every one of the 65536
    # values, placed in rows of ordinary logits so that the table path serves them, gives a
    # per-sample value within 1 ulp of the float64 reference, and every SIMD build and
    # thread count gives the same bits
    from fastloss.kernels import block_rows_for
    from fastloss.kernels import reference as ref

    variants = cython_variants()
    if not variants:
        pytest.skip("the Cython backend is not built")
    rng = np.random.default_rng(C)
    bits = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
    k = 4 if C == 40 else 32                      # patterns per row, at distinct columns
    n = bits.size // k
    x = (rng.standard_normal((n, C)) * 4).astype(dtype)
    cols = np.argsort(rng.random((n, C)), axis=1)[:, :k]
    x[np.arange(n)[:, None], cols] = bits.view(dtype).reshape(n, k)
    x[::7, 2] = x[::7, 3] = 40.0  # ties at the max (where no pattern exceeds 40)
    with np.errstate(invalid="ignore"):
        m = np.nanmax(np.where(np.isnan(_wide(x)), -np.inf, _wide(x)), axis=1)
    assert np.mean((m >= -300) & (m <= 700)) > 0.5  # most rows take the table path
    y = rng.integers(0, C, n)
    z = rng.random(bits.size).astype(np.float32)
    xb = bits.view(dtype)
    sce = (y, np.zeros(0), np.zeros(0), True, 0, False, 0.0, 0.0, 0, 0.0, False)
    bce = (z, np.zeros(0), 1, np.zeros(0), True, 0.0, 0, 0.0, False)
    with np.errstate(invalid="ignore"):  # NaN patterns
        x64, xb64 = _wide(x).astype(np.float64), _wide(xb).astype(np.float64)
    want_sce = _run_kernel(ref.sparse_ce, x64, n, block_rows_for(C), *sce, 1)[0]
    want_bce = _run_kernel(ref.bce, xb64, bits.size, block_rows_for(1), z.astype(np.float64),
                           *bce[1:], 1)[0]
    first = None
    for mod in variants:
        for nt in (1, 2):
            got = (_run_kernel(mod.sparse_ce, x, n, block_rows_for(C), *sce, nt),
                   _run_kernel(mod.bce, xb, bits.size, block_rows_for(1), *bce, nt))
            if first is None:
                first = got
                with np.errstate(over="ignore"):
                    for g, w in ((got[0][0], want_sce), (got[1][0], want_bce)):
                        d = ulp_distance(g, w.astype(np.float32))
                        assert d.max() <= 1, (g[np.argmax(d)], w[np.argmax(d)])
            for g, f in zip(got, first):
                assert all(_same(a, b) for a, b in zip(g, f)), (mod.__name__, nt)
    # the probabilities come from the same table: softmax_rows and the gradient (and its
    # Hessian diagonal) of sparse CE with label smoothing, against float64
    g64, h64 = np.empty((n, C)), np.empty((n, C))
    soft64 = np.empty((n, C))
    with np.errstate(all="ignore"):
        ref.sparse_ce_grad(x64, y, np.zeros(0), np.zeros(0), 0, False, 0.1, 0.0, 1.0,
                           block_rows_for(C), np.zeros(0), np.zeros(0), g64, h64, 1)
        ref.softmax_rows(x64, soft64, False, 1)
    first = None
    for mod in variants:
        for nt in (1, 2):
            g, h, soft = (np.empty((n, C), np.float32) for _ in range(3))
            with np.errstate(all="ignore"):
                mod.sparse_ce_grad(x, y, np.zeros(0), np.zeros(0), 0, False, 0.1, 0.0, 1.0,
                                   block_rows_for(C), np.zeros(0), np.zeros(0), g, h, nt)
                mod.softmax_rows(x, soft, False, nt)
            if first is None:
                first = (g, h, soft)
                for a, r in zip(first, (g64, h64, soft64)):
                    with np.errstate(over="ignore", invalid="ignore"):
                        d = ulp_distance(a, r.astype(np.float32))
                        d = np.where(np.abs(a - r) <= 2.0**-50, 0, d)  # as the gradient test
                    assert d.max() <= 1, (a.ravel()[np.argmax(d)], r.ravel()[np.argmax(d)])
            assert all(_same(a, b) for a, b in zip((g, h, soft), first)), (mod.__name__, nt)


@pytest.mark.parametrize("dtype", HALF, ids=IDS)
def test_parallel_widening_of_the_generic_path(backend, dtype):
    # chunks of >= 2**17 values with n_threads > 1 are widened by the Numba helper on the
    # kernels' threads: the same bits as NumPy's / ml_dtypes' cast, every value included
    from fastloss.kernels import numba as nk

    if nk.AVAILABLE:
        bits = np.tile(np.arange(1 << 16, dtype=np.uint32).astype(np.uint16), 5)
        x = bits.view(dtype)
        got = nk.widen_half(x, np.empty(x.shape, np.float32), 2)
        want = _wide(x)
        ok = ~np.isnan(want)
        assert np.array_equal(got[ok].view(np.uint32), want[ok].view(np.uint32))
        assert np.isnan(got[~ok]).all()
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((700, 1000)) * 4).astype(dtype)
    t = rng.random((700, 1000)).astype(dtype)
    y = rng.integers(0, 1000, 700)
    for nt in (1, 2):
        for f, yt, kw in [(fl.sparse_categorical_cross_entropy, y, {}),
                          (fl.categorical_cross_entropy, t, {}),
                          (fl.kl_divergence, t, {"log_input": True}),
                          (fl.binary_cross_entropy, t, {})]:
            if f is not fl.kl_divergence:
                kw = {"from_logits": True}
            for red in ("none", "sum"):
                got = _call(f, yt, x, kw, reduction=red, backend=backend, n_threads=nt)
                want = _call(f, _wide(yt) if yt is t else yt, _wide(x), kw, reduction=red,
                             backend=backend, n_threads=nt)
                assert _like_float32_path(got, want, backend, 1 if red == "none" else 2), \
                    (f.__name__, red, nt)
        g = fl.sparse_categorical_cross_entropy_grad(y, x, backend=backend, n_threads=nt)
        w = fl.sparse_categorical_cross_entropy_grad(y, _wide(x), backend=backend, n_threads=nt)
        assert all(_like_float32_path(a, b, backend, 2) for a, b in zip(g, w))
