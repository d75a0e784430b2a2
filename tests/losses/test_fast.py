"""The compiled fast path of the public losses (issue #16) against the general path.

Every input the fast path accepts must give the general path's bits (NaN signs and -0.0
included), every input it declines must reach the general path (which validates and
raises), and the cached configuration must follow ``fastloss.refresh_config``. The general
path is ``prepare_<loss>(...).reduce(...)``, which never tries the fast path. No timing
here: ``fastloss bench --latency`` measures the calls.
"""

import numpy as np
import pytest
from _zoo import bits, labels, logits_zoo, probs_zoo, targets

import fastloss as fl
from fastloss import _dispatch
from fastloss.losses import functions as F
from fastloss.losses.log_sum_exp import logsumexp

pytestmark = pytest.mark.skipif(not fl.available_backends()["cython"][0],
                                reason="the fast path is part of the Cython backend")

DTYPES = (np.float32, np.float64)
REDUCTIONS = ("mean", "sum", "none")
# (rows, classes): one row, odd widths, the 32 x 10, several blocks (1632 rows of 10
# per block; 16 rows of 1000), the serial/parallel threshold on both sides
SHAPES = ((1, 1), (7, 3), (32, 10), (33, 9), (300, 2), (5000, 10), (40, 1000), (3, 50257))


@pytest.fixture
def core():
    return _dispatch.fast_core("cython")


def same(fast, general):
    assert type(fast) is type(general), (type(fast), type(general))
    assert bits(fast) == bits(general), (fast, general)


def general_sparse(y, x, **kw):
    opts = dict(from_logits=True, axis=-1, ignore_index=None, class_weight=None,
                label_smoothing=0.0, z_loss=0.0, sample_weight=None, clip=None,
                reduction="mean", nan_policy="propagate", backend="cython", n_threads=None)
    opts.update(kw)
    return F.prepare_sparse(y, x, **opts).reduce(opts["reduction"])


def fast_sparse(core, y, x, **kw):
    o = dict(from_logits=True, axis=-1, ignore_index=None, class_weight=None,
             label_smoothing=0.0, z_loss=0.0, sample_weight=None, reduction="mean",
             nan_policy="propagate", n_threads=None)
    o.update(kw)
    return core.fast_sparse_ce(y, x, o["from_logits"], o["axis"], o["ignore_index"],
                               o["class_weight"], o["label_smoothing"], o["z_loss"],
                               o["sample_weight"], None, o["reduction"], o["nan_policy"],
                               o["n_threads"])


def _declines_ok(general, n_blocks, reduction, weighted=False):
    """The fast path may decline a reduction over several blocks whose partials are not
    finite, or whose exact sum is 0 (fsum's sign of zero), a mean of weight 0, and a
    weighted mean that is not finite (the general path rescales weights whose sum overflows)."""
    g = np.asarray(general, dtype=np.float64)
    if weighted and reduction == "mean" and not np.isfinite(g).all():
        return True
    return n_blocks > 1 and (not np.isfinite(g).all() or (g == 0).all())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_sparse_logits_same_bits(core, dtype, shape, reduction, weighted):
    rng = np.random.default_rng(hash((shape, reduction, weighted)) % 2**32)
    n, C = shape
    for adversarial in (False, True):
        x = logits_zoo(rng, n, C, dtype, adversarial=adversarial)
        y = labels(rng, n, C)
        sw = rng.random(n) * 3 if weighted else None
        for nt in (1, 2):
            g = general_sparse(y, x, sample_weight=sw, reduction=reduction, n_threads=nt)
            f = fast_sparse(core, y, x, sample_weight=sw, reduction=reduction, n_threads=nt)
            nb = -(-n // fl.kernels.block_rows_for(C))
            if f is None:
                assert reduction != "none" and _declines_ok(g, nb, reduction, weighted), \
                    (adversarial, nt, g)
            else:
                same(f, g)
            same(fl.sparse_categorical_cross_entropy(y, x, from_logits=True, sample_weight=sw,
                                                     reduction=reduction, n_threads=nt), g)
    assert adversarial  # both kinds ran


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_sparse_options_same_bits(core, dtype, reduction):
    """Probabilities, ignore_index, nan_policy="omit", int32 and (N, 1) labels, N-d rows,
    label smoothing, z_loss and class weights (kernel arguments: the fast path takes them)."""
    rng = np.random.default_rng(7)
    p = probs_zoo(rng, (64, 5), dtype, normalized=True)
    x = logits_zoo(rng, 64, 5, dtype)
    y = labels(rng, 64, 5, ignore=-100)
    cases = [
        (dict(from_logits=False), labels(rng, 64, 5), p),
        (dict(ignore_index=-100), y, x),
        (dict(ignore_index=3), labels(rng, 64, 5), x),
        (dict(nan_policy="omit"), labels(rng, 64, 5), x),
        (dict(), labels(rng, 64, 5).astype(np.int32), x),
        (dict(), labels(rng, 64, 5)[:, None], x),
        (dict(axis=2), labels(rng, 64, 5).reshape(4, 16), x.reshape(4, 16, 5)),
        (dict(label_smoothing=0.1), labels(rng, 64, 5), x),
        (dict(label_smoothing=-0.0, z_loss=1e-3), labels(rng, 64, 5), x),
        (dict(label_smoothing=1, ignore_index=-100, class_weight=rng.random(5) * 2), y, x),
        (dict(from_logits=False, label_smoothing=0.2, class_weight=np.arange(5.0)),
         labels(rng, 64, 5), p),
    ]
    for kw, yy, xx in cases:
        g = general_sparse(yy, xx, reduction=reduction, **kw)
        f = fast_sparse(core, yy, xx, reduction=reduction, **kw)
        if f is None:  # only a weighted mean that is not finite goes the general way
            assert _declines_ok(g, 1, reduction, "class_weight" in kw), kw
        else:
            same(f, g)
        same(fl.sparse_categorical_cross_entropy(yy, xx, reduction=reduction,
                                                 **dict(dict(from_logits=True), **kw)), g)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (32, 10), (300, 7), (2000, 10), (20, 1000)])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("from_logits", [True, False])
def test_categorical_same_bits(core, dtype, shape, reduction, from_logits):
    rng = np.random.default_rng(11)
    n, C = shape
    x = logits_zoo(rng, n, C, dtype) if from_logits else probs_zoo(rng, shape, dtype,
                                                                  normalized=True)
    t = targets(rng, shape, dtype, normalized=True)
    for sw, cw, ls in ((None, None, 0.0), (rng.random(n), None, 0.0),
                       (rng.random(n), rng.random(C), 0.15)):
        for nt in (1, 2):
            g = F.prepare_categorical(t, x, from_logits=from_logits, axis=-1, class_weight=cw,
                                      label_smoothing=ls, sample_weight=sw, clip=None,
                                      reduction=reduction, nan_policy="propagate",
                                      backend="cython", n_threads=nt).reduce(reduction)
            f = core.fast_categorical_ce(t, x, from_logits, -1, cw, ls, sw, None, reduction,
                                         "propagate", nt)
            nb = -(-n // fl.kernels.block_rows_for(C))
            if f is None:
                assert reduction != "none" and _declines_ok(g, nb, reduction,
                                                            sw is not None or cw is not None)
            else:
                same(f, g)
            same(fl.categorical_cross_entropy(t, x, from_logits=from_logits, sample_weight=sw,
                                              class_weight=cw, label_smoothing=ls,
                                              reduction=reduction, n_threads=nt), g)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1,), (32,), (10000,), (40000,), (3, 7), (2, 3, 9000)])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("from_logits", [True, False])
def test_bce_same_bits(core, dtype, shape, reduction, from_logits):
    rng = np.random.default_rng(13)
    n = int(np.prod(shape))
    x = (logits_zoo(rng, n, 1, dtype)[:, 0] if from_logits
         else probs_zoo(rng, n, dtype)).reshape(shape)
    z = targets(rng, shape, dtype)
    for sw, ls in ((None, 0.0), (rng.random(shape), 0.0), (rng.random(shape), 0.1)):
        for nt in (1, 2):
            g = F.prepare_bce(z, x, from_logits=from_logits, pos_weight=None,
                              label_smoothing=ls, sample_weight=sw, clip=None,
                              reduction=reduction, nan_policy="propagate", backend="cython",
                              n_threads=nt).reduce(reduction)
            f = core.fast_bce(z, x, from_logits, None, ls, sw, None, reduction, "propagate", nt)
            if f is None:
                assert reduction != "none" and _declines_ok(g, -(-n // 16384), reduction,
                                                            sw is not None)
            else:
                same(f, g)
            same(fl.binary_cross_entropy(z, x, from_logits=from_logits, sample_weight=sw,
                                         label_smoothing=ls, reduction=reduction,
                                         n_threads=nt), g)


def _general_logsumexp(a, **kw):
    """The general path: the backend's row kernel through the NumPy plumbing."""
    import fastloss.losses.log_sum_exp as L

    saved = L.fast_logsumexp
    L.fast_logsumexp = lambda *args, **kw: None
    try:
        return logsumexp(a, **kw)
    finally:
        L.fast_logsumexp = saved


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1,), (32, 10), (3, 4, 5), (2, 50257), (3000, 20)])
def test_logsumexp_same_bits(core, dtype, shape):
    rng = np.random.default_rng(17)
    a = logits_zoo(rng, int(np.prod(shape[:-1])), shape[-1], dtype).reshape(shape)
    for axis in (None, -1, len(shape) - 1):
        for keepdims in (False, True):
            for nt in (1, 2):
                g = _general_logsumexp(a, axis=axis, keepdims=keepdims, n_threads=nt)
                f = core.fast_logsumexp(a, axis, None, keepdims, False, nt)
                assert f is not None
                same(f, g)
                same(logsumexp(a, axis=axis, keepdims=keepdims, n_threads=nt), g)


def test_declines_go_to_the_general_path(core):
    """What the fast path does not take still works, with the general path's values."""
    rng = np.random.default_rng(3)
    x = logits_zoo(rng, 32, 10, np.float32)
    y = labels(rng, 32, 10)
    declined = [
        ((y, np.asfortranarray(x)), {}),                   # not C-contiguous
        ((y, x[:, ::2]), {}),                              # strided
        ((y, np.zeros((32, 10), np.float16)), {}),         # float16
        ((y, x.astype(np.float32).byteswap().view(x.dtype.newbyteorder())), {}),
        ((list(y), x), {}),                                # a list
        ((y.astype(np.uint8), x), {}),                     # other integer types
        ((y, x), {"nan_policy": "raise"}),
        ((y, x), {"n_threads": np.int64(2)}),
        ((y, x), {"ignore_index": np.int64(-1)}),
        ((y, x), {"sample_weight": [1.0] * 32}),
        ((y, x), {"sample_weight": np.ones(32, np.float32)}),
        ((y, x), {"axis": 0}),
        ((y, np.zeros((0, 10), np.float32)[:0]), {}),
    ]
    for (yy, xx), kw in declined:
        o = dict(dict(from_logits=True, ignore_index=None, sample_weight=None, axis=-1,
                      nan_policy="propagate", n_threads=None), **kw)
        assert fast_sparse(core, yy, xx, **o) is None, kw
    r = fl.sparse_categorical_cross_entropy(y, np.asfortranarray(x), from_logits=True)
    same(r, general_sparse(y, x))
    for cw, ls, zl, fl_, clip in ((None, 1.5, 0.0, True, None), (None, np.float64(0.1), 0.0,
                                   True, None), (None, 0.0, 0.1, False, None),
                                  (None, 0.0, float("inf"), True, None),
                                  (np.ones(9), 0.0, 0.0, True, None),
                                  (-np.ones(10), 0.0, 0.0, True, None),
                                  (None, 0.0, 0.0, False, "keras")):
        assert core.fast_sparse_ce(y, x, fl_, -1, None, cw, ls, zl, None, clip, "mean",
                                   "propagate", None) is None, (cw, ls, zl, clip)
    assert core.fast_logsumexp(x, 0, None, False, False, None) is None
    assert core.fast_logsumexp(x, -1, np.ones_like(x), False, False, None) is None
    assert core.fast_logsumexp(x, -1, None, False, True, None) is None


@pytest.mark.parametrize("call", [
    lambda y, x: fl.sparse_categorical_cross_entropy(y, x, from_logits=True),
])
def test_bad_input_same_errors(call):
    """Bad input is declined and raises the general path's error, naming the argument."""
    x = np.zeros((4, 3), np.float32)
    with pytest.raises(ValueError, match=r"y_true\[2\]=3 is out of range \[0, 3\)"):
        call(np.array([0, 1, 3, 2]), x)
    with pytest.raises(ValueError, match=r"y_true\[0\]=-1 is out of range"):
        call(np.array([-1, 1, 0, 2], np.int32), x)
    with pytest.raises(ValueError, match=r"y_true has shape \(3,\)"):
        call(np.array([0, 1, 2]), x)
    with pytest.raises(ValueError, match=r"y_pred\[1, 2\]=1.5 is the first value outside"):
        p = np.full((4, 3), 0.25)
        p[1, 2] = 1.5
        fl.sparse_categorical_cross_entropy(np.array([0, 1, 2, 0]), p)
    with pytest.raises(ValueError, match=r"y_true\[0, 1\]=-0.5 is the first value outside"):
        t = np.zeros((4, 3))
        t[0, 1] = -0.5
        fl.categorical_cross_entropy(t, np.zeros((4, 3)), from_logits=True)
    with pytest.raises(ValueError, match=r"y_true\[3\]=2.0 is the first value outside"):
        fl.binary_cross_entropy(np.array([0, 1, 0, 2.0]), np.zeros(4), from_logits=True)
    with pytest.raises(ValueError, match=r"sample_weight must be finite and non-negative; "
                                         r"sample_weight\[1\]="):
        fl.binary_cross_entropy(np.zeros(4), np.zeros(4), from_logits=True,
                                sample_weight=np.array([1.0, -1.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match=r"reduction='avg'"):
        fl.binary_cross_entropy(np.zeros(4), np.zeros(4), from_logits=True, reduction="avg")
    with pytest.raises(ValueError, match=r"n_threads must be a positive integer"):
        fl.binary_cross_entropy(np.zeros(4), np.zeros(4), from_logits=True, n_threads=0)


def test_mean_of_zero_weight_warns_as_before():
    x = np.zeros((4, 3))
    with pytest.warns(RuntimeWarning, match="mean of an empty selection"):
        r = fl.sparse_categorical_cross_entropy(np.zeros(4, np.int64), x, from_logits=True,
                                                sample_weight=np.zeros(4))
    assert np.isnan(r) and type(r) is np.float64


def test_refresh_config_rereads_the_environment(monkeypatch):
    monkeypatch.setenv("FASTLOSS_NUM_THREADS", "1")
    assert fl.refresh_config()["threads"] == 1
    assert fl.kernels.cython is not None and _dispatch.resolve_threads(None) == 1
    monkeypatch.setenv("FASTLOSS_BACKEND", "numpy")
    cfg = fl.refresh_config()
    assert cfg["backend"] == "numpy" and _dispatch.fast_core(None) is None
    assert _dispatch.resolve_backend(None)[0] == "numpy"
    monkeypatch.setenv("FASTLOSS_NUM_THREADS", "many")
    fl.refresh_config()
    with pytest.raises(ValueError, match="many"):  # the call says what is wrong, as before
        fl.sparse_categorical_cross_entropy([0], np.zeros((1, 2)), from_logits=True)
    monkeypatch.delenv("FASTLOSS_NUM_THREADS")
    monkeypatch.delenv("FASTLOSS_BACKEND")
    cfg = fl.refresh_config()
    assert cfg["backend"] is None and cfg["threads"] == _dispatch.cpu_count()
    assert _dispatch.fast_core(None) is not None
    assert cfg["cython_variant"] == fl.kernels.cython.BUILD_INFO["variant"]
    assert fl.info()["config"] == cfg  # fastloss info shows what is in force


def test_refresh_config_reselects_the_cython_build(monkeypatch):
    cy = fl.kernels.cython
    built = cy.BUILD_INFO["variants_built"]
    before = cy.BUILD_INFO["variant"]
    x = logits_zoo(np.random.default_rng(5), 300, 10, np.float32)
    y = labels(np.random.default_rng(5), 300, 10)
    ref = fl.sparse_categorical_cross_entropy(y, x, from_logits=True, reduction="none")
    try:
        monkeypatch.setenv("FASTLOSS_CYTHON_VARIANT", "baseline")
        assert fl.refresh_config()["cython_variant"] == "baseline"
        assert cy._core.build_info()["variant"] == "baseline"
        assert _dispatch.fast_core(None) is cy._core
        same(fl.sparse_categorical_cross_entropy(y, x, from_logits=True, reduction="none"), ref)
        monkeypatch.setenv("FASTLOSS_CYTHON_VARIANT", "nosuchbuild")
        with pytest.raises(ImportError, match="nosuchbuild"):
            fl.refresh_config()
        assert cy._core.build_info()["variant"] == "baseline"  # unchanged
    finally:
        monkeypatch.delenv("FASTLOSS_CYTHON_VARIANT")
        assert fl.refresh_config()["cython_variant"] == before
    assert before in built


# --------------------------------------------------------------------------- drop-ins
# fastloss.torch.cross_entropy and fastloss.scipy.logsumexp send their plain NumPy call to
# the fast path; with it switched off they must give the same bits.


def _without_fast(monkeypatch, module, call):
    name = "_fast_sparse" if module.__name__ == "fastloss.torch" else "_fast_lse"
    monkeypatch.setattr(module, name, lambda *args, **kw: None)
    try:
        return call()
    finally:
        monkeypatch.undo()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_torch_cross_entropy_route(monkeypatch, dtype, reduction):
    import fastloss.torch as FT

    rng = np.random.default_rng(19)
    for n, C in ((32, 10), (5000, 10), (20, 1000)):
        x = logits_zoo(rng, n, C, dtype, adversarial=False)
        for y, ii in ((labels(rng, n, C), -100), (labels(rng, n, C, ignore=2), 2),
                      (labels(rng, n, 3), 0)):
            got = FT.cross_entropy(x, y, ignore_index=ii, reduction=reduction)
            same(got, _without_fast(monkeypatch, FT, lambda: FT.cross_entropy(
                x, y, ignore_index=ii, reduction=reduction)))
    x = logits_zoo(rng, 40, 5, dtype)  # non-finite results: PyTorch's NaN, not the kernel's
    y = labels(rng, 40, 5)
    same(FT.cross_entropy(x, y, reduction=reduction),
         _without_fast(monkeypatch, FT, lambda: FT.cross_entropy(x, y, reduction=reduction)))
    with pytest.raises(IndexError, match="Target 7 is out of bounds"):
        FT.cross_entropy(x, np.full(40, 7))
    with pytest.raises(RuntimeError, match="expected target dtype to be Long"):
        FT.cross_entropy(x, np.zeros(40, np.int32))


@pytest.mark.parametrize("dtype", DTYPES)
def test_scipy_logsumexp_route(monkeypatch, dtype):
    import fastloss.scipy as FS

    rng = np.random.default_rng(23)
    for shape in ((32, 10), (7,), (3, 4, 5), (3000, 20)):
        a = logits_zoo(rng, int(np.prod(shape[:-1])), shape[-1], dtype).reshape(shape)
        for axis in (None, -1, len(shape) - 1):
            for keepdims in (False, True):
                got = FS.logsumexp(a, axis=axis, keepdims=keepdims)
                same(got, _without_fast(monkeypatch, FS, lambda: FS.logsumexp(
                    a, axis=axis, keepdims=keepdims)))


def test_python_threads_share_the_fast_path():
    """The entries release the GIL in the kernel and keep no state between calls."""
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(29)
    x = logits_zoo(rng, 3000, 20, np.float32, adversarial=False)  # several blocks
    y = labels(rng, 3000, 20)
    ref = [fl.sparse_categorical_cross_entropy(y, x, from_logits=True, reduction=r, n_threads=2)
           for r in REDUCTIONS]
    with ThreadPoolExecutor(4) as ex:
        got = list(ex.map(lambda k: fl.sparse_categorical_cross_entropy(
            y, x, from_logits=True, reduction=REDUCTIONS[k % 3], n_threads=1 + k % 2),
            range(24)))
    for k, g in enumerate(got):
        same(g, ref[k % 3])


def test_exact_sum_is_math_fsum(core):
    """Several blocks are merged in C by math.fsum's algorithm: the same double, including
    the half-even fix-up across partials and massive cancellation."""
    import math

    rng = np.random.default_rng(31)
    cases = [[1e-16, 1.0, 1e16], [1.0, 1e100, 1.0, -1e100], [0.1] * 10, [1e308, -1e308, 1.0],
             [2.0**53, 1.0, -(2.0**-60)], [5e-324, 5e-324, 1.0, -1.0], [-0.0, 3.0]]
    for _ in range(300):
        k = int(rng.integers(2, 200))
        v = rng.standard_normal(k) * 10.0 ** rng.integers(-30, 30, k)
        if rng.random() < 0.5:
            v = np.concatenate([v, -v[: k // 2] * (1 + 1e-15)])  # cancellation
        cases.append(rng.permutation(v).tolist())
    for c in cases:
        p = np.array(c, dtype=np.float64)
        got = core._exact_sum_check(p)
        want = math.fsum(c)
        if got is None:  # declined: only an exact zero (fsum's sign of zero) or overflow
            assert want == 0.0, c
        else:
            assert np.float64(got).tobytes() == np.float64(want).tobytes(), (c, got, want)
    assert core._exact_sum_check(np.array([1e308, 1e308])) is None  # intermediate overflow


def test_keras_entries_log_is_numpys(core):
    """The Keras entries take log(clip(p)) by np.log's own loop: the same bits as np.log on
    a sweep of float32 probabilities (every 61st float32 in [1e-7, 1]) and on float64."""
    lo, hi = np.float32(1e-7).view(np.uint32), np.float32(1.0).view(np.uint32)
    p32 = np.arange(lo, hi + 1, 61, dtype=np.uint32).view(np.float32)
    p32 = np.concatenate([p32, np.float32([np.nan, -np.nan, 1 - 1e-7, 2.0, np.inf])])
    p64 = np.random.default_rng(4).random(200_001) ** 8
    for p in (p32, p64, p32[:7], p64[:0]):
        got = core._np_log_check(p)
        assert got is not None, "np.log's loop was not found: the Keras entries decline"
        assert bits(got) == bits(np.log(p))


def test_keras_entries_sum_is_numpys(core):
    """Keras's reductions sum float32 per-sample values as float64 with np.sum: the entries
    follow NumPy's pairwise order (blocks of 128, 8 accumulators), bit for bit, and its
    cast buffers where it sums float32 weights in float64."""
    rng = np.random.default_rng(9)
    for n in list(range(1, 300)) + [1023, 1024, 1025, 4099, 8192, 8193, 70_001]:
        v = (rng.standard_normal(n) * np.exp(rng.standard_normal(n) * 8)).astype(np.float32)
        a = v.astype(np.float64)
        assert bits(np.float64(core._np_sum_check(a))) == bits(np.sum(a)), n
        # np.sum(float32 array, dtype=np.float64): cast and summed in buffers of 8192
        assert bits(np.float64(core._np_sum_check(a, True))) == bits(
            np.sum(v, dtype=np.float64)), n
