"""Layouts, dtypes and determinism.

Every loss and every variant of the registry, on the same *logical* arrays laid
out differently in memory (C, Fortran, strided, reversed, 3-D with the class axis
first or in the middle, read-only memmaps, byte-swapped), must give the same bits
as the C-contiguous case: chunking and threading are exact by design. The
reductions must also equal an independently computed block reduction of the
per-sample values.
"""

import warnings
from fractions import Fraction

import numpy as np
import pytest

import fastloss as fl
import fastloss.losses._run as _reduce
from fastloss import LOSSES
from fastloss.kernels import LANES, block_rows_for

REDUCTIONS = ("none", "sum", "mean")
CASES = [(name, i) for name, row in LOSSES.items() for i in range(len(row.variants))]
CASE_IDS = [f"{name}-{i}" for name, i in CASES]


def variant_id(name, i):
    return f"{name}{LOSSES[name].variants[i]}"


def make(name, i, dtype, n=600, c=7, seed=0):
    row = LOSSES[name]
    yt, yp, kw = row.make(np.random.default_rng(seed), n, c, dtype, row.variants[i])
    return yt, yp, kw


def run(name, yt, yp, kw, red, **extra):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return LOSSES[name].func(yt, yp, reduction=red, **kw, **extra)


def assert_same(got, exp):
    got, exp = np.asarray(got), np.asarray(exp)
    assert got.dtype == exp.dtype
    assert got.shape == exp.shape
    np.testing.assert_array_equal(got, exp)


# --------------------------------------------------------------------------- 2-D layouts


def _strided(a):
    """The same values as a view with gaps between elements (and rows)."""
    if a.ndim == 1:
        big = np.full(a.shape[0] * 2, np.nan if a.dtype.kind == "f" else 0, dtype=a.dtype)
        big[::2] = a
        return big[::2]
    big = np.full((a.shape[0] * 2, a.shape[1] * 3), 0.5, dtype=a.dtype)
    big[::2, ::3] = a
    return big[::2, ::3]


def _reversed(a):
    """The same values through negative strides."""
    sl = (slice(None, None, -1),) * a.ndim
    return np.ascontiguousarray(a[sl])[sl]


def _fortran(a):
    return np.asfortranarray(a)


def _swapped(a):
    return a.astype(a.dtype.newbyteorder())


def _readonly(a):
    b = a.copy()
    b.setflags(write=False)
    return b


LAYOUTS = {"F": _fortran, "strided": _strided, "reversed": _reversed, "byteswapped": _swapped,
           "readonly": _readonly}


def _apply(f, yt, yp, kw):
    kw2 = dict(kw)
    for k in ("sample_weight", "class_weight", "pos_weight", "output_weight"):
        if isinstance(kw2.get(k), np.ndarray):
            kw2[k] = f(kw2[k])
    return f(yt), f(yp), kw2


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name,i", CASES, ids=CASE_IDS)
def test_layouts_match_c_contiguous_bitwise(backend, name, i, dtype, layout):
    yt, yp, kw = make(name, i, dtype)
    yt2, yp2, kw2 = _apply(LAYOUTS[layout], yt, yp, kw)
    assert np.array_equal(yp2, yp) and np.array_equal(yt2, yt)  # same logical arrays
    for red in REDUCTIONS:
        assert_same(run(name, yt2, yp2, kw2, red, backend=backend),
                    run(name, yt, yp, kw, red, backend=backend))


@pytest.mark.parametrize("name,i", CASES, ids=CASE_IDS)
def test_mixed_layouts(backend, name, i):
    # y_true Fortran, y_pred strided, weights reversed: still the same bits
    yt, yp, kw = make(name, i, np.float64)
    kw2 = {k: (_reversed(v) if isinstance(v, np.ndarray) else v) for k, v in kw.items()}
    for red in REDUCTIONS:
        assert_same(run(name, _fortran(yt), _strided(yp), kw2, red, backend=backend),
                    run(name, yt, yp, kw, red, backend=backend))


@pytest.mark.parametrize("name,i", CASES, ids=CASE_IDS)
def test_read_only_memmaps(tmp_path, backend, name, i):
    yt, yp, kw = make(name, i, np.float32)
    paths = {}
    for key, arr in [("yt", yt), ("yp", yp)] + [(k, v) for k, v in kw.items()
                                                if isinstance(v, np.ndarray)]:
        np.save(tmp_path / f"{key}.npy", arr)
        paths[key] = np.load(tmp_path / f"{key}.npy", mmap_mode="r")
        assert isinstance(paths[key], np.memmap) and not paths[key].flags.writeable
    kw2 = {k: paths.get(k, v) for k, v in kw.items()}
    for red in REDUCTIONS:
        assert_same(run(name, paths["yt"], paths["yp"], kw2, red, backend=backend),
                    run(name, yt, yp, kw, red, backend=backend))


# --------------------------------------------------------------------------- 3-D and axis


def _to3d(name, yt, yp, kw, n1, n2):
    c = yp.shape[1]
    yp3 = yp.reshape(n1, n2, c)
    yt3 = yt.reshape(n1, n2) if yt.ndim == 1 else yt.reshape(n1, n2, c)
    kw3 = dict(kw)
    if isinstance(kw.get("sample_weight"), np.ndarray):
        kw3["sample_weight"] = kw["sample_weight"].reshape(n1, n2)
    return yt3, yp3, kw3


@pytest.mark.parametrize("where", ["0-view", "0-copy", "1-view", "1-copy"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name,i", [case for case in CASES
                                    if LOSSES[case[0]].has_class_axis], ids=[
    cid for case, cid in zip(CASES, CASE_IDS) if LOSSES[case[0]].has_class_axis])
def test_class_axis_0_and_1_of_3d(backend, name, i, dtype, where):
    n1, n2 = 20, 30
    yt, yp, kw = make(name, i, dtype, n=n1 * n2)
    yt3, yp3, kw3 = _to3d(name, yt, yp, kw, n1, n2)
    ax = int(where[0])

    def move(a):
        m = np.moveaxis(a, -1, ax)
        return np.ascontiguousarray(m) if where.endswith("copy") else m

    yp_m = move(yp3)
    yt_m = yt3 if yt3.ndim == 2 else move(yt3)
    for red in REDUCTIONS:
        base = run(name, yt3, yp3, kw3, red, backend=backend)
        got = run(name, yt_m, yp_m, kw3, red, axis=ax, backend=backend)
        assert_same(got, base)
        if red == "none":
            assert got.shape == (n1, n2)
            # and the same per-sample values as the 2-D call
            assert_same(got.reshape(-1), run(name, yt, yp, kw, red, backend=backend))
    # negative axis spelling
    assert_same(run(name, yt_m, yp_m, kw3, "sum", axis=ax - 3, backend=backend),
                run(name, yt3, yp3, kw3, "sum", backend=backend))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name,i", CASES, ids=CASE_IDS)
def test_3d_non_contiguous_last_axis(backend, name, i, dtype):
    n1, n2 = 20, 30
    yt, yp, kw = make(name, i, dtype, n=n1 * n2)
    yt3, yp3, kw3 = _to3d(name, yt, yp, kw, n1, n2)

    def scramble(a):  # same logical array, memory order (c, n1, n2)
        return np.moveaxis(np.ascontiguousarray(np.moveaxis(a, -1, 0)), 0, -1)

    yp_s = scramble(yp3)
    yt_s = yt3 if yt3.ndim == 2 else scramble(yt3)
    assert not yp_s.flags.c_contiguous
    for red in REDUCTIONS:
        assert_same(run(name, yt_s, yp_s, kw3, red, backend=backend),
                    run(name, yt3, yp3, kw3, red, backend=backend))


# --------------------------------------------------------------------------- chunking


@pytest.mark.parametrize("name,i", CASES, ids=CASE_IDS)
def test_chunked_non_contiguous_path_is_exact(monkeypatch, backend, name, i):
    # force the chunk-of-whole-blocks path for non-contiguous input with small chunks:
    # 300 classes -> 48-row blocks, 13 of them; 16384-element blocks for BCE, 11 of them
    yt, yp, kw = make(name, i, np.float32, n=600, c=300)
    width = 1 if name == "binary_cross_entropy" else 300
    assert yp.shape[0] * 300 // width > 10 * block_rows_for(width)
    base = {red: run(name, yt, yp, kw, red, backend=backend) for red in REDUCTIONS}
    monkeypatch.setattr(_reduce, "STRIDED_COPY_ELEMS", 64)
    ytf, ypf, kwf = _apply(_fortran, yt, yp, kw)
    for red in REDUCTIONS:
        assert_same(run(name, ytf, ypf, kwf, red, backend=backend), base[red])


@pytest.mark.parametrize("name,i", CASES, ids=CASE_IDS)
def test_reference_internal_chunks_are_exact(monkeypatch, name, i):
    import fastloss.kernels.reference._kernels as ref

    yt, yp, kw = make(name, i, np.float64, n=600, c=300)  # 13 blocks (11 for BCE)
    base = {red: run(name, yt, yp, kw, red, backend="numpy") for red in REDUCTIONS}
    monkeypatch.setattr(ref, "REFERENCE_TEMP_ELEMS", 100)  # one block per internal chunk
    for red in REDUCTIONS:
        assert_same(run(name, yt, yp, kw, red, backend="numpy"), base[red])


# --------------------------------------------------------------------------- determinism


def lane_block_sums(c, block_rows):
    """Independent block sums: LANES accumulators per block, then lanes left to right."""
    c = np.asarray(c, dtype=np.float64).ravel()
    nb = -(-c.size // block_rows)
    per = -(-block_rows // LANES) * LANES
    buf = np.zeros((nb, per))
    for b in range(nb):
        seg = c[b * block_rows:(b + 1) * block_rows]
        buf[b, :seg.size] = seg
    buf = buf.reshape(nb, per // LANES, LANES)
    acc = np.zeros((nb, LANES))
    for j in range(per // LANES):  # left to right inside each lane
        acc = acc + buf[:, j, :]
    s = acc[:, 0]
    for k in range(1, LANES):
        s = s + acc[:, k]
    return s


def exact(partials):
    return float(sum((Fraction(float(p)) for p in partials), Fraction(0)))


def sample_weights(name, yt, yp, kw):
    """Per-sample (per-element for BCE) weights, from the documented definitions."""
    n = yp.shape[0]
    if name == "binary_cross_entropy":
        sw = kw.get("sample_weight")
        w = np.ones(yp.shape) if sw is None else np.broadcast_to(
            np.reshape(sw, np.shape(sw) + (1,) * (yp.ndim - np.ndim(sw))), yp.shape)
        return np.asarray(w, dtype=np.float64).ravel()
    w = np.ones(n) if kw.get("sample_weight") is None else kw["sample_weight"].astype(np.float64)
    if name == "sparse_categorical_cross_entropy":
        if kw.get("class_weight") is not None:
            w = w * kw["class_weight"][yt]
        if kw.get("ignore_index") is not None:
            w = w * (yt != kw["ignore_index"])
    return w


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name,i", CASES, ids=CASE_IDS)
def test_reductions_are_block_sums_and_thread_independent(backend, name, i, dtype):
    yt, yp, kw = make(name, i, dtype, n=5000, c=7)
    width = 1 if name == "binary_cross_entropy" else yp.shape[1]
    br = block_rows_for(width)
    n_items = yp.size if name == "binary_cross_entropy" else yp.shape[0]
    assert n_items > 2 * br  # several blocks, with a ragged tail
    # per-sample values v_i: a call with all weights 1 (sparse CE's class_weight
    # weighs samples; categorical CE's weighs the target terms and stays)
    drop = ("sample_weight", "class_weight") if name.startswith("sparse") else ("sample_weight",)
    kw1 = {k: v for k, v in kw.items() if k not in drop}
    v = run(name, yt, yp, kw1, "none", backend=backend).astype(np.float64).ravel()
    w = sample_weights(name, yt, yp, kw)
    if "ignore_index" in kw:
        assert np.all(v[w == 0] == 0.0)
    c = np.where(w == 0, 0.0, v * np.where(w == 0, 0.0, w))
    total = exact(lane_block_sums(c, br))
    wsum = exact(lane_block_sums(w, br))
    for n_threads in (1, 2, 3):
        s = run(name, yt, yp, kw, "sum", backend=backend, n_threads=n_threads)
        m = run(name, yt, yp, kw, "mean", backend=backend, n_threads=n_threads)
        none = run(name, yt, yp, kw, "none", backend=backend, n_threads=n_threads)
        assert s.dtype == dtype and m.dtype == dtype
        assert s == dtype(total), (n_threads, s, total)
        assert m == dtype(total / wsum), (n_threads, m, total / wsum)
        np.testing.assert_array_equal(none.ravel(), c.astype(dtype))


def test_reduction_is_not_a_naive_sum():
    # The expectation above is only meaningful if the block order is observable:
    # here a left-to-right float64 sum differs from the block reduction.
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((40000, 1)) * 30).astype(np.float64)
    z = (rng.random((40000, 1)) < 0.5).astype(np.float64)
    v = fl.binary_cross_entropy(z, x, from_logits=True, reduction="none").ravel()
    seq = 0.0
    for a in v.tolist():
        seq += a
    got = fl.binary_cross_entropy(z, x, from_logits=True, reduction="sum")
    assert got == exact(lane_block_sums(v, block_rows_for(1)))
    assert got != seq  # 479244.5457747523 vs 479244.54577474657 for this seed


# --------------------------------------------------------------------------- dtypes


@pytest.mark.parametrize("name,i", CASES, ids=CASE_IDS)
def test_result_dtype_is_y_pred_float_dtype(name, i):
    for dtype in (np.float32, np.float64):
        yt, yp, kw = make(name, i, dtype, n=50)
        for red in REDUCTIONS:
            r = run(name, yt, yp, kw, red)
            assert r.dtype == dtype, (red, r.dtype)
            if red != "none":
                assert isinstance(r, np.generic) and r.shape == ()


@pytest.mark.parametrize("name,i", CASES, ids=CASE_IDS)
def test_float16_is_computed_in_float32(name, i):
    # issue #18: half input is returned in float32 (a float16 sum overflows at 65504), and is
    # exactly the float32 result of the widened input
    yt, yp, kw = make(name, i, np.float16, n=50)
    yt32 = yt.astype(np.float32) if yt.dtype == np.float16 else yt
    for red in REDUCTIONS:
        r16 = run(name, yt, yp, kw, red)
        r32 = run(name, yt32, yp.astype(np.float32), kw, red)
        assert r16.dtype == np.float32
        assert_same(r16, r32)


def test_integer_and_bool_y_pred_give_float64():
    # integer logits / probabilities are exact in float64
    x = np.array([[3, -1, 0], [0, 2, 2]])
    got = fl.sparse_categorical_cross_entropy([0, 2], x, from_logits=True, reduction="none")
    assert got.dtype == np.float64
    assert_same(got, fl.sparse_categorical_cross_entropy([0, 2], x.astype(np.float64),
                                                         from_logits=True, reduction="none"))
    b = np.array([[True, False], [False, True]])
    r = fl.binary_cross_entropy(b, b, clip="keras")
    assert r.dtype == np.float64
    assert r == fl.binary_cross_entropy(b.astype(float), b.astype(float), clip="keras")
    assert fl.mean_squared_error(np.zeros((2, 2), np.int32), np.ones((2, 2), np.int8)).dtype == \
        np.float64
    assert fl.logsumexp(np.arange(4, dtype=np.uint8)).dtype == np.float64


def test_targets_convert_without_loss():
    yp = np.array([[0.25, 0.75]], np.float32)
    # integer and float16 targets are exact in float32; float64 targets that are
    # exactly representable in float32 are accepted too
    base = fl.categorical_cross_entropy(np.array([[0.0, 1.0]], np.float32), yp)
    assert fl.categorical_cross_entropy(np.array([[0, 1]]), yp) == base
    assert fl.categorical_cross_entropy(np.array([[0, 1]], np.float16), yp) == base
    assert fl.categorical_cross_entropy(np.array([[0.0, 1.0]]), yp) == base
    assert fl.categorical_cross_entropy(np.array([[0.0, 1.0]]), yp).dtype == np.float32


# --------------------------------------------------------------------------- logsumexp family


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_logsumexp_softmax_layouts_bitwise(backend, dtype):
    a = (np.random.default_rng(3).standard_normal((6, 7, 8)) * 10).astype(dtype)
    for f in (_fortran, _strided_3d, _reversed, _swapped):
        b = f(a)
        assert np.array_equal(a, b)
        for ax in (0, 1, 2, -1, (0, 2), None):
            assert_same(fl.logsumexp(b, axis=ax, backend=backend),
                        fl.logsumexp(a, axis=ax, backend=backend))
        for ax in (0, 1, 2, None):
            assert_same(fl.softmax(b, axis=ax, backend=backend),
                        fl.softmax(a, axis=ax, backend=backend))
            assert_same(fl.log_softmax(b, axis=ax, backend=backend),
                        fl.log_softmax(a, axis=ax, backend=backend))
    # axis k equals the last axis of the moved array
    for ax in (0, 1):
        assert_same(fl.log_softmax(a, axis=ax, backend=backend),
                    np.moveaxis(fl.log_softmax(np.moveaxis(a, ax, -1), backend=backend), -1, ax))
        assert_same(fl.logsumexp(a, axis=ax, backend=backend),
                    fl.logsumexp(np.ascontiguousarray(np.moveaxis(a, ax, -1)), axis=-1,
                                 backend=backend))


def _strided_3d(a):
    big = np.zeros(tuple(2 * s for s in a.shape), dtype=a.dtype)
    big[::2, ::2, ::2] = a
    return big[::2, ::2, ::2]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_threads_bitwise(backend, dtype):
    a = (np.random.default_rng(4).standard_normal((3000, 9)) * 10).astype(dtype)
    base_s = fl.softmax(a, backend=backend, n_threads=1)
    base_l = fl.logsumexp(a, axis=1, backend=backend, n_threads=1)
    for nt in (2, 3):
        assert_same(fl.softmax(a, backend=backend, n_threads=nt), base_s)
        assert_same(fl.logsumexp(a, axis=1, backend=backend, n_threads=nt), base_l)
