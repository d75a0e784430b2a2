"""The fast routes of ``fastloss.sklearn.log_loss`` and of the Keras loss objects
(``fastloss.keras`` and ``.legacy``: sparse / categorical / binary cross-entropy, issue #16):
the same bits as the general path for every input they take, and the general path's errors
and warnings for what they decline.

The general path is reached by disabling the fast route (monkeypatch), so both results come
from this code base; each case also checks that the fast route did take the input (so the
bit comparison is not vacuous). Agreement with scikit-learn / Keras themselves is
tests/dropins/test_sklearn.py's and test_keras.py's business.
"""

import warnings

import numpy as np
import pytest

import fastloss.keras as FK
import fastloss.keras.legacy as FKL
import fastloss.sklearn as FS
from _zoo import bits, logits_zoo, probs_zoo, targets
from fastloss._dispatch import fast_core


pytestmark = pytest.mark.skipif(fast_core(None) is None, reason="no compiled fast path")


def probs(r, n, c, dtype):
    e = np.exp(r.standard_normal((n, c)) * 2)
    return (e / e.sum(axis=1, keepdims=True)).astype(dtype)


def all_classes(r, n, c, dtype=np.int64):
    y = np.concatenate([np.arange(c), r.integers(0, c, max(n - c, 0))])[:n]
    return r.permutation(y).astype(dtype)


def general_log_loss(monkeypatch, *args, **kw):
    with monkeypatch.context() as m:
        m.setattr(FS, "_fast_log_loss", lambda *a: None)
        return FS.log_loss(*args, **kw)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_log_loss_fast_route_keeps_the_bits(monkeypatch, dtype):
    r = np.random.default_rng(16)
    for n, c in ((2, 2), (7, 3), (32, 10), (100, 7), (3000, 10)):  # 3000 x 10: two blocks
        P = probs(r, n, c, dtype)
        for ydt in (np.int64, np.int32):
            y = all_classes(r, n, c, ydt)
            for normalize in (True, False):
                for labels in (None, np.arange(c)):
                    kw = dict(normalize=normalize, labels=labels)
                    fast = FS._fast_log_loss(y, P, normalize, None, labels)
                    assert fast is not None, (n, c, ydt, normalize, labels)
                    got = FS.log_loss(y, P, **kw)
                    assert got == general_log_loss(monkeypatch, y, P, **kw) == fast
                    assert type(got) is float
                    if dtype == np.float64:  # weights: float64 probabilities only
                        w = r.random(n) * 3
                        got = FS.log_loss(y, P, sample_weight=w, **kw)
                        assert FS._fast_log_loss(y, P, normalize, w, labels) is not None
                        assert got == general_log_loss(monkeypatch, y, P, sample_weight=w, **kw)


def test_log_loss_saturated_probabilities_are_clipped_alike(monkeypatch):
    for dtype in (np.float32, np.float64):
        P = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]], dtype=dtype)
        y = np.array([1, 0, 1])  # p_y = 0: the clip at finfo(dtype).eps decides the value
        assert FS._fast_log_loss(y, P, True, None, None) is not None
        assert FS.log_loss(y, P) == general_log_loss(monkeypatch, y, P)


def test_log_loss_declines_to_the_general_errors_and_warnings():
    P = probs(np.random.default_rng(1), 6, 3, np.float64)
    y = np.array([0, 1, 2, 0, 1, 2])
    with pytest.raises(ValueError, match="different number of classes"):
        FS.log_loss(np.array([0, 1, 1, 0, 1, 0]), P)  # class 2 never seen
    with pytest.raises(ValueError, match="contains NaN"):
        Q = P.copy()
        Q[2, 1] = np.nan
        FS.log_loss(y, Q)
    with pytest.raises(ValueError, match="greater than 1"):
        Q = P.copy()
        Q[0] = [1.5, -0.25, -0.25]  # sums to one, out of [0, 1]
        FS.log_loss(y, Q)
    with pytest.raises(ValueError, match="not belonging to the passed labels"):
        FS.log_loss(np.array([0, 1, 2, 3, 1, 2]), P, labels=np.arange(3))
    with pytest.raises(ValueError, match="at least one non-zero"):
        FS.log_loss(y, P, sample_weight=np.zeros(6))
    with pytest.warns(UserWarning, match="do not sum to one"):
        FS.log_loss(y, P * 0.9)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a normalised input warns of nothing
        FS.log_loss(y, P)


def general_keras(monkeypatch, loss, *args):
    with monkeypatch.context() as m:
        m.setattr(type(loss), "_fast_call", lambda self, *a: None)
        return loss(*args)


@pytest.mark.parametrize("dtype", [None, "float64"])
@pytest.mark.parametrize("from_logits", [False, True])
def test_keras_sparse_fast_route_keeps_the_bits(monkeypatch, dtype, from_logits):
    r = np.random.default_rng(18)
    dt = np.dtype(dtype or np.float32)
    for n, c in ((1, 2), (5, 3), (32, 10), (200, 17), (3000, 10)):
        x = r.standard_normal((n, c)).astype(dt) * 3
        p = x if from_logits else probs(r, n, c, dt)
        if not from_logits:
            p[0, 0] = 0.0  # clipped at 1e-7
        for red in ("sum_over_batch_size", "sum", "mean", "mean_with_sample_weight"):
            loss = FK.SparseCategoricalCrossentropy(from_logits=from_logits, reduction=red,
                                                    dtype=dtype)
            for y in (r.integers(0, c, n), r.integers(0, c, (n, 1)).astype(np.int32)):
                assert loss._fast_call(y, p, None) is not None
                got = loss(y, p)
                ref = general_keras(monkeypatch, loss, y, p)
                assert type(got) is type(ref) and got.dtype == ref.dtype == dt
                assert got.tobytes() == ref.tobytes(), (n, c, red)


def test_keras_sparse_declines_to_the_general_errors():
    p = probs(np.random.default_rng(2), 4, 3, np.float32)
    loss = FK.SparseCategoricalCrossentropy()
    with pytest.raises(ValueError, match="label value of 3 which is outside"):
        loss(np.array([0, 1, 3, 2]), p)
    with pytest.raises(ValueError, match="label value of -1 which is outside"):
        loss(np.array([0, -1, 1, 2]), p)
    with pytest.raises(ValueError, match="same shape up until the class axis"):
        loss(np.array([0, 1, 2]), p)
    # what the fast route does not take still runs (and gives the general value)
    y = np.array([0, 1, 2, 1])
    assert loss._fast_call(y, p.astype(np.float64), None) is None  # cast to float32 first
    assert loss(y, p.astype(np.float64)) == loss(y, p)
    assert loss._fast_call(y, p, np.ones((4, 1))) is None  # (n,) weights are taken now
    assert loss(y, p, sample_weight=np.ones((4, 1))) == loss(y, p)


# --------------------------------------------------------------------------- Keras loss objects

KERAS = {"keras": FK, "legacy": FKL}
KERAS_REDUCTIONS = {"keras": ("sum_over_batch_size", "sum", "mean", "mean_with_sample_weight"),
                    "legacy": ("auto", "sum_over_batch_size", "sum")}
KERAS_CLASSES = {"sparse": "SparseCategoricalCrossentropy",
                 "categorical": "CategoricalCrossentropy", "binary": "BinaryCrossentropy"}
# (rows, classes): one row, odd widths, the 32 x 10, several blocks of rows (3000 x
# 10; 40 x 1000), a BCE over two blocks of elements (3000 x 10)
KERAS_SHAPES = ((1, 2), (5, 3), (32, 10), (200, 17), (3000, 10), (40, 1000))


def keras_inputs(r, kind, n, c, dt, from_logits, variant):
    """(y_true, y_pred) of a loss kind. variant "zoo": the zoo's special values (0, 1,
    denormals, 1 -+ eps, NaN, inf, huge logits) mixed in; "edges": the same with what makes
    a NaN result (which declines) replaced by values Keras clips or the kernel survives."""
    adversarial = variant != "clean"
    if from_logits:
        x = logits_zoo(r, n, c, dt, adversarial)
        fill = (-1e4, 88.7)
    else:
        x = probs_zoo(r, (n, c), dt, adversarial, normalized=kind != "binary")
        fill = (1.5, -0.5)  # outside [0, 1]: Keras clips without a check
    if variant == "edges":
        bad = np.isnan(x)
        if from_logits:  # +inf, and -inf filling a row, give NaN; BCE takes finite logits
            bad |= (x == np.inf) | np.isneginf(x).all(axis=1, keepdims=True)
            bad |= np.isinf(x) if kind == "binary" else False
        x[bad] = np.resize(np.array(fill, dtype=dt), int(bad.sum()))
    if kind == "sparse":
        return all_classes(r, n, c, (np.int64, np.int32)[n % 2]), x
    if kind == "categorical":
        return targets(r, (n, c), dt, normalized=True), x
    return (r.random((n, c)) < 0.4).astype(dt), x


def keras_loss(module, kind, from_logits, reduction, dt):
    cls = getattr(KERAS[module], KERAS_CLASSES[kind])
    if module == "legacy":  # tf.keras 2 computes in y_pred's dtype
        return cls(from_logits=from_logits, reduction=reduction)
    return cls(from_logits=from_logits, reduction=reduction,
               dtype=None if dt == np.float32 else "float64")


def warned(f, *args):
    """f(*args) and the warnings it gave, as (category, message) pairs."""
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        res = f(*args)
    return res, [(x.category, str(x.message)) for x in w]


@pytest.mark.parametrize("module", ["keras", "legacy"])
@pytest.mark.parametrize("kind", ["sparse", "categorical", "binary"])
@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_keras_objects_fast_route_keeps_the_bits(monkeypatch, module, kind, from_logits, dtype):
    r = np.random.default_rng(16)
    taken = {"clean": 0, "edges": 0, "zoo": 0}
    for n, c in KERAS_SHAPES:
        for variant in taken:
            y, x = keras_inputs(r, kind, n, c, dtype, from_logits, variant)
            for red in KERAS_REDUCTIONS[module]:
                loss = keras_loss(module, kind, from_logits, red, dtype)
                fast, _ = warned(loss._fast_call, y, x, None)
                if variant == "clean":  # NaN results and infinite BCE logits decline
                    assert fast is not None, (n, c, red)
                taken[variant] += fast is not None
                got, said = warned(loss, y, x)
                ref, ref_said = warned(general_keras, monkeypatch, loss, y, x)
                assert said == ref_said  # e.g. float32 overflow of a huge sum, in both
                assert type(got) is type(ref) and got.dtype == ref.dtype == dtype
                assert bits(got) == bits(ref), (n, c, red, variant, got, ref)
                assert fast is None or bits(fast) == bits(got)
    assert taken["edges"] > 0, taken  # the route's edge values are compared, not only declined


@pytest.mark.parametrize("module", ["keras", "legacy"])
@pytest.mark.parametrize("kind", ["sparse", "categorical"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_keras_weighted_fast_route_keeps_the_bits(monkeypatch, module, kind, dtype):
    """sample_weight of shape (n,), float32 or float64 (cast to the compute dtype as Keras
    casts it), zeros included; over 8192 rows NumPy sums a cast array in buffers."""
    r = np.random.default_rng(17)
    for n, c in ((1, 2), (5, 3), (32, 10), (3000, 10), (9000, 3)):
        for fl in (False, True):
            y, x = keras_inputs(r, kind, n, c, dtype, fl, "clean")
            ws = [r.random(n) * 3, (r.random(n) * 3).astype(np.float32), np.zeros(n),
                  np.where(r.random(n) < 0.3, 0.0, r.random(n) * 1e-3).astype(np.float32),
                  np.full(n, 1e39)]  # float32 compute: overflows in the cast (declines)
            for w in ws:
                for red in KERAS_REDUCTIONS[module]:
                    loss = keras_loss(module, kind, fl, red, dtype)
                    fast, _ = warned(loss._fast_call, y, x, w)
                    if w is not ws[-1] or dtype == np.float64:
                        assert fast is not None, (n, c, red, w.dtype)
                    got, said = warned(loss, y, x, w)
                    ref, ref_said = warned(general_keras, monkeypatch, loss, y, x, w)
                    assert said == ref_said
                    assert type(got) is type(ref) and got.dtype == ref.dtype == dtype
                    assert bits(got) == bits(ref), (n, c, red, w.dtype, got, ref)
    loss = keras_loss(module, kind, False, "sum", dtype)
    for w in (np.ones((5, 1)), np.ones(4), [1.0] * 5, np.ones(10)[::2]):  # the general path's
        assert loss._fast_call(y[:5], x[:5], w) is None


@pytest.mark.parametrize("module", ["keras", "legacy"])
@pytest.mark.parametrize("kind", ["categorical", "binary"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_keras_label_smoothing_fast_route_keeps_the_bits(monkeypatch, module, kind, dtype):
    """label_smoothing in (0, 1]: the smoothed targets ``t * a + b`` in the compute dtype,
    the constants in Keras 3's or tf.keras's order; other values decline."""
    r = np.random.default_rng(29)
    cls = getattr(KERAS[module], KERAS_CLASSES[kind])
    for n, c in ((1, 2), (5, 3), (32, 10), (3000, 10)):
        for fl in (False, True):
            y, x = keras_inputs(r, kind, n, c, dtype, fl, "clean")
            for ls in (0.1, 0.3, 1.0, 1, 1e-8):
                for w in (None, r.random(n) + 0.5):
                    for red in KERAS_REDUCTIONS[module]:
                        kw = dict(from_logits=fl, label_smoothing=ls, reduction=red)
                        if module == "keras" and dtype == np.float64:
                            kw["dtype"] = "float64"
                        loss = cls(**kw)
                        fast, _ = warned(loss._fast_call, y, x, w)
                        # tf.keras's binary loss takes weights the general way
                        assert (fast is None) == (w is not None and module == "legacy"
                                                  and kind == "binary"), (n, c, ls, red)
                        got, said = warned(loss, y, x, w)
                        ref, ref_said = warned(general_keras, monkeypatch, loss, y, x, w)
                        assert said == ref_said
                        assert type(got) is type(ref) and got.dtype == ref.dtype == dtype
                        assert bits(got) == bits(ref), (n, c, ls, red, got, ref)
    for ls in (-0.1, 1.5, np.float64(0.1), True):
        loss = cls(label_smoothing=ls)
        assert loss._fast_call(y, x, None) is None
        assert bits(loss(y, x)) == bits(general_keras(monkeypatch, loss, y, x))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_keras_weighted_bce_fast_route_keeps_the_bits(monkeypatch, dtype):
    """Keras 3's fused BCE with sample_weight (n,): float32/float64 weights, the weight sum
    of mean_with_sample_weight over NumPy's cast buffers; a zero weight declines."""
    r = np.random.default_rng(23)
    for n, k in ((1, 1), (5, 3), (32, 1), (3000, 10), (9000, 2)):
        for fl in (False, True):
            z, x = keras_inputs(r, "binary", n, k, dtype, fl, "clean")
            for w in (r.random(n) * 3 + 0.1, (r.random(n) - 0.5).astype(np.float32),
                      np.where(r.random(n) < 0.5, 0.0, 1.0)):
                for red in KERAS_REDUCTIONS["keras"]:
                    loss = keras_loss("keras", "binary", fl, red, dtype)
                    fast, _ = warned(loss._fast_call, z, x, w)
                    assert (fast is None) == bool((w == 0).any()), (n, k, red)
                    got, said = warned(loss, z, x, w)
                    ref, ref_said = warned(general_keras, monkeypatch, loss, z, x, w)
                    assert said == ref_said
                    assert type(got) is type(ref) and got.dtype == ref.dtype == dtype
                    assert bits(got) == bits(ref), (n, k, red, got, ref)


@pytest.mark.parametrize("module", ["keras", "legacy"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_keras_ignore_class_fast_route_keeps_the_bits(monkeypatch, module, dtype):
    """ignore_class inside and outside [0, C), with and without weights (negative and
    infinite ones too: Keras multiplies them by the mask), some rows or all ignored."""
    r = np.random.default_rng(19)
    L = KERAS[module]
    for n, c in ((1, 2), (7, 3), (32, 10), (3000, 10), (9000, 3)):
        for fl in (False, True):
            _, x = keras_inputs(r, "sparse", n, c, dtype, fl, "clean")
            for ic in (0, c - 1, -1, 255):
                y = all_classes(r, n, c)
                y[r.random(n) < 0.3] = ic
                for labels in (y, np.full(n, ic)):  # all ignored: 0 (Keras 3), NaN (tf.keras)
                    ws = [None, (r.random(n) * 3).astype(np.float32),
                          np.where(labels == ic, -2.0, r.random(n))]
                    for w in ws:
                        for red in KERAS_REDUCTIONS[module]:
                            loss = L.SparseCategoricalCrossentropy(
                                from_logits=fl, ignore_class=ic, reduction=red,
                                **({} if module == "legacy" or dtype == np.float32
                                   else {"dtype": "float64"}))
                            fast, _ = warned(loss._fast_call, labels, x, w)
                            all_out = bool((labels == ic).all())
                            if not (all_out and module == "legacy" and red != "sum"):
                                assert fast is not None, (n, c, ic, red)
                            got, said = warned(loss, labels, x, w)
                            ref, ref_said = warned(general_keras, monkeypatch, loss, labels,
                                                   x, w)
                            assert said == ref_said
                            assert type(got) is type(ref) and got.dtype == ref.dtype == dtype
                            assert bits(got) == bits(ref), (n, c, ic, red, got, ref)


@pytest.mark.slow
@pytest.mark.parametrize("module", ["keras", "legacy"])
def test_keras_bce_over_many_blocks_keeps_the_bits(monkeypatch, module):
    """More blocks than the entry keeps on the stack (64 of 16384 elements)."""
    r = np.random.default_rng(5)
    z = (r.random((70_000, 16)) < 0.5).astype(np.float32)
    x = r.standard_normal((70_000, 16)).astype(np.float32) * 4
    for fl, p in ((True, x), (False, 1 / (1 + np.exp(-x)))):
        loss = getattr(KERAS[module], "BinaryCrossentropy")(from_logits=fl)
        assert loss._fast_call(z, p, None) is not None
        assert bits(loss(z, p)) == bits(general_keras(monkeypatch, loss, z, p))


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sparse", "categorical"])
def test_keras_rows_with_a_big_work_buffer_keep_the_bits(monkeypatch, kind):
    """Above 4 MB of work the entries take a NumPy array instead of malloc (huge pages)."""
    r = np.random.default_rng(6)
    y, x = keras_inputs(r, kind, 5000, 300, np.float32, False, "clean")
    loss = keras_loss("keras", kind, False, "sum_over_batch_size", np.float32)
    assert loss._fast_call(y, x, None) is not None
    assert bits(loss(y, x)) == bits(general_keras(monkeypatch, loss, y, x))


@pytest.mark.parametrize("module", ["keras", "legacy"])
def test_keras_objects_decline_to_the_general_path(monkeypatch, module):
    """What the entries do not take gives the general path's value, errors and warnings."""
    L = KERAS[module]
    r = np.random.default_rng(3)
    p = probs(r, 4, 3, np.float32)
    t = np.eye(3, dtype=np.float32)[[0, 1, 2, 1]]
    x = r.standard_normal((4, 3)).astype(np.float32)
    cases = [  # (loss, y_true, y_pred): each declined, then the general path's bits
        (L.SparseCategoricalCrossentropy(), np.array([0, 1, 2, 1]), p.T.copy().T),  # F order
        (L.SparseCategoricalCrossentropy(), np.array([0., 1., 2., 1.]), p),  # float labels
        (L.SparseCategoricalCrossentropy(ignore_class=1.0), np.array([0, 1, 2, 1]), p),
        (L.SparseCategoricalCrossentropy(ignore_class=2**25), np.array([0, 1, 2, 1]), p),
        (L.SparseCategoricalCrossentropy(reduction="none"), np.array([0, 1, 2, 1]), p),
        (L.CategoricalCrossentropy(label_smoothing=1.5), t, p),
        (L.CategoricalCrossentropy(), t.astype(np.float64), p),  # targets of another dtype
        (L.CategoricalCrossentropy(from_logits=True), t, np.where(t > 0, np.nan, x)),  # NaN
        (L.BinaryCrossentropy(from_logits=True), t, np.where(t > 0, np.inf, x)),  # TF: NaN
        (L.BinaryCrossentropy(from_logits=True), t[:, :1].ravel(), x[:, 0]),  # rank 1
        (L.BinaryCrossentropy(), t, p.astype(np.float64)),  # y_pred of another dtype
    ]
    for loss, yt, yp in cases:
        assert loss._fast_call(yt, yp, None) is None, (loss, yt.dtype, yp.shape)
        got = loss(yt, yp)
        ref = general_keras(monkeypatch, loss, yt, yp)
        assert bits(got) == bits(ref), (loss, got, ref)
    sparse = L.SparseCategoricalCrossentropy()
    with pytest.raises(ValueError, match="label value of 3 which is outside"):
        sparse(np.array([0, 1, 3, 2]), p)
    with pytest.raises(ValueError):
        L.CategoricalCrossentropy()(t[:, :2], p)
    with pytest.raises(ValueError):
        L.BinaryCrossentropy(from_logits=True)(t[:3], x)
    if module == "keras":  # tf.keras 2 broadcasts probabilities
        with pytest.raises(ValueError):
            L.BinaryCrossentropy()(t, p[None])
    with pytest.warns(SyntaxWarning):  # one class: the general path warns
        L.CategoricalCrossentropy()(t[:, :1], p[:, :1])
    assert sparse._fast_call(np.array([0, 1, 2, 1]), p, np.ones((4, 1))) is None  # (n, 1)
