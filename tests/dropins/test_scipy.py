"""``fastloss.scipy`` against ``scipy.special``.

Tolerances. Element-wise functions: SciPy evaluates float32 inputs in double
(``rel_entr``, ``kl_div``, ``xlogy``) or with float32 libm calls (``expit``,
``log_expit``); fastloss evaluates in float64 and rounds once, so float32 results
are within 1 ulp; float64 within ``rtol=1e-12`` (``kl_div`` cancels near
``x == y``: relative to ``|x| + |y|``). ``logsumexp``/``softmax``/``log_softmax``:
SciPy's float32 path rounds ``a - max``, every exp, the sum and the log:
``eps32 * (|max| + |log sum| + n)``, times ``K = 4``; float64 ``rtol=1e-12`` of
the same scale.
"""

import numpy as np
import pytest

import fastloss.scipy as FS
from testutil import require, ulp_diff
EPS = {np.float32: float(np.finfo(np.float32).eps), np.float64: float(np.finfo(np.float64).eps)}


@pytest.fixture(scope="module")
def special():
    return require("scipy.special")


def check(got, exp, dtype, scale, k=4):
    got = np.asarray(got, dtype=np.float64)
    exp = np.asarray(exp, dtype=np.float64)
    assert got.shape == exp.shape
    assert np.array_equal(np.isnan(got), np.isnan(exp)), (got, exp)
    fin = ~np.isnan(exp)
    bound = k * EPS[dtype] * np.broadcast_to(np.asarray(scale, np.float64), exp.shape)[fin]
    if dtype == np.float64:  # (and subnormal results: the smallest normal, absolute)
        bound = np.maximum(bound, np.maximum(1e-12 * np.abs(exp[fin]), 2.3e-308))
    with np.errstate(invalid="ignore"):
        err = np.abs(got[fin] - exp[fin])
    assert ((err <= bound) | (got[fin] == exp[fin])).all(), float(np.max(err / bound))


@pytest.fixture(scope="module")
def arrays():
    r = np.random.default_rng(5)
    a = r.standard_normal((40, 7)) * 6
    a[0] = [0, -40, -np.inf, 1, 2, 3, 4]
    a[1] = -np.inf
    a[2, 3] = np.inf
    a[3, 1] = np.nan
    a[4] = [700, 700, 1, 2, 3, 4, 5]
    a[5] = [-1000, -1000.5, -1001, -1002, -1003, -1004, -1005]
    b = r.standard_normal((40, 7))
    b[6] = 0
    b[7, 2] = 0
    return a, b


def lse_scale(a, axis=None):
    x = np.where(np.isfinite(a), np.abs(a), 0)
    n = a.size if axis is None else a.shape[axis]
    return np.max(x, axis=axis, keepdims=False) + np.log(n) + n + 1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_logsumexp(special, arrays, dtype):
    a, b = arrays
    a = a.astype(dtype)
    for axis in (None, 0, 1, -1, (0, 1)):
        for keepdims in (False, True):
            with np.errstate(all="ignore"):
                ref = special.logsumexp(a, axis=axis, keepdims=keepdims)
            got = FS.logsumexp(a, axis=axis, keepdims=keepdims)
            assert np.asarray(got).dtype == np.asarray(ref).dtype
            s = lse_scale(a.astype(np.float64), None if axis in (None, (0, 1)) else axis)
            if keepdims:
                s = np.asarray(s).reshape(np.shape(ref)) if np.ndim(s) else s
            check(got, ref, dtype, s)
    # the classic precision case: log1p keeps 4.2e-18
    assert FS.logsumexp(np.array([0.0, -40.0])) == pytest.approx(4.248354255291589e-18, rel=1e-15)
    assert np.isscalar(FS.logsumexp(a)) or np.ndim(FS.logsumexp(a)) == 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_logsumexp_b_and_sign(special, arrays, dtype):
    a, b = arrays
    a = np.nan_to_num(a[6:], nan=0.0, posinf=50, neginf=-50).astype(dtype)
    b = b[6:].astype(dtype)
    a[0, 0] = np.inf  # masked by b == 0
    for axis in (None, 1, 0):
        for rs in (False, True):
            with np.errstate(all="ignore"):
                ref = special.logsumexp(a, axis=axis, b=b, return_sign=rs)
            got = FS.logsumexp(a, axis=axis, b=b, return_sign=rs)
            s = lse_scale(a.astype(np.float64), axis) * 4
            if rs:
                check(got[0], ref[0], dtype, s)
                assert np.array_equal(np.asarray(got[1]), np.asarray(ref[1]), equal_nan=True)
            else:
                check(got, ref, dtype, s)
    ref = special.logsumexp([0.0, -40.0], b=[1.0, 1.0])
    assert FS.logsumexp([0.0, -40.0], b=[1.0, 1.0]) == ref  # log1p even with b
    for x, bb in (([1.0, 1.0], [1.0, -1.0]), ([-np.inf, -np.inf], None), ([], None)):
        with np.errstate(all="ignore"):
            r1 = special.logsumexp(x, b=bb, return_sign=True)
        r2 = FS.logsumexp(x, b=bb, return_sign=True)
        np.testing.assert_array_equal(np.asarray(r2, dtype=float), np.asarray(r1, dtype=float))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_log_softmax(special, arrays, dtype):
    a, _ = arrays
    a = a.astype(dtype)
    for axis in (None, 0, 1):
        with np.errstate(all="ignore"):
            ref = special.softmax(a, axis=axis)
            ref_l = special.log_softmax(a, axis=axis)
        check(FS.softmax(a, axis=axis), ref, dtype, 4.0)
        s = lse_scale(a.astype(np.float64), axis)
        s = s if axis is None else np.expand_dims(s, axis)
        fin = np.where(np.isfinite(a), np.abs(a.astype(np.float64)), 0)
        got = FS.log_softmax(a, axis=axis)
        check(got, ref_l, dtype, s + fin)
        assert np.array_equal(np.isinf(got), np.isinf(ref_l))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_elementwise(special, dtype):
    r = np.random.default_rng(6)
    x = np.concatenate([r.standard_normal(200) * 30, [0.0, -0.0, 1e-30, 745, -745, 1000, -1000,
                                                      np.inf, -np.inf, np.nan]]).astype(dtype)
    y = np.concatenate([np.abs(r.standard_normal(200)) * 3, [0.0, 1.0, 0.0, 2.0, -1.0, 0.0, 3.0,
                                                             np.nan, 1.0, 0.5]]).astype(dtype)
    xp = np.abs(x)
    xp[:20] = 0
    with np.errstate(all="ignore"):
        cases = [(FS.expit(x), special.expit(x)), (FS.log_expit(x), special.log_expit(x)),
                 (FS.xlogy(xp, y), special.xlogy(xp, y)),
                 (FS.rel_entr(xp, y), special.rel_entr(xp, y)),
                 (FS.kl_div(xp, y), special.kl_div(xp, y))]
    for i, (got, ref) in enumerate(cases):
        assert got.dtype == ref.dtype == dtype
        if dtype == np.float32:
            assert ulp_diff(got, ref).max() <= 1, i
        else:
            s = np.abs(ref) if i < 4 else np.abs(xp.astype(np.float64)) + np.abs(y) + 1e-300
            check(got, ref, dtype, np.nan_to_num(s, posinf=0) / 4, k=1)
            assert np.array_equal(np.isinf(got), np.isinf(ref))
    # ufunc dtype rules and out=
    assert FS.expit(np.arange(3, dtype=np.int64)).dtype == special.expit(np.arange(3)).dtype
    for v in (np.float16(0.5), np.array([0.5], np.float16), np.array([1], np.int8)):
        assert FS.expit(v).dtype == special.expit(v).dtype
    f32 = np.array([1.0], np.float32)
    assert FS.xlogy(f32, 2.0).dtype == special.xlogy(f32, 2.0).dtype
    out = np.empty(3)
    assert FS.xlogy([0.0, 1.0, 2.0], [0.0, 1.0, 3.0], out=out) is out
    with pytest.raises(TypeError):
        FS.expit(np.array([1j]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_elementwise_extreme_ratios_and_broadcasting(special, dtype):
    # rel_entr's x/y overflows or underflows here: SciPy 1.15+ switches to log(x) - log(y)
    v = np.array([1e-300, 1e-200, 1e-45, 1e-30, 0.5, 1.0, 1.0 + 1e-7, 2.0, 1e30, 1e200, 1e300])
    with np.errstate(all="ignore"):
        v = v.astype(dtype)
        x, y = v[:, None], v[None, :]  # broadcast to a 2-D grid
        for f, g in ((FS.xlogy, special.xlogy), (FS.rel_entr, special.rel_entr),
                     (FS.kl_div, special.kl_div)):
            got, ref = f(x, y), g(x, y)
            assert got.shape == ref.shape == (v.size, v.size) and got.dtype == ref.dtype
            assert np.array_equal(np.isinf(got), np.isinf(ref)), f.__name__
            assert np.array_equal(np.isnan(got), np.isnan(ref)), f.__name__
            fin = np.isfinite(ref)
            if dtype == np.float32:
                assert ulp_diff(got[fin], ref[fin]).max() <= 1, f.__name__
            else:
                scale = np.abs(np.broadcast_to(x, ref.shape)) + np.abs(np.broadcast_to(y, ref.shape))
                if f is not FS.kl_div:
                    scale = np.abs(ref)
                assert np.all(np.abs(got[fin] - ref[fin]) <= 1e-13 * scale[fin]), f.__name__
            # scalar operands broadcast; a 0-d result is a NumPy scalar
            assert f(v, dtype(0.5)).shape == v.shape
            assert np.ndim(f(dtype(2.0), dtype(3.0))) == 0


def test_logsumexp_empty_is_minus_inf(special):
    # SciPy: an empty sum is 0, its log -inf (sign -1, SciPy's sign(-inf)), not NaN
    for a, kw in ((np.array([]), {}), (np.zeros((3, 0)), {"axis": 1}),
                  (np.zeros((0, 2)), {"axis": 0, "keepdims": True}),
                  (np.zeros((0, 2), np.float32), {"axis": 0})):
        got, ref = FS.logsumexp(a, **kw), special.logsumexp(a, **kw)
        assert np.shape(got) == np.shape(ref) and np.asarray(got).dtype == np.asarray(ref).dtype
        np.testing.assert_array_equal(got, ref)
        assert np.all(np.asarray(got) == -np.inf)
        np.testing.assert_array_equal(FS.logsumexp(a, return_sign=True, **kw)[1],
                                      special.logsumexp(a, return_sign=True, **kw)[1])


def test_softmax_tuple_axis(special, arrays):
    a = arrays[0].reshape(-1)[:144].reshape(3, 4, 3, 4)
    scale = np.max(np.abs(a[np.isfinite(a)]))
    with np.errstate(all="ignore"):
        for axis in ((1, 2), (0, 3), (2, 0), (-1,), (0, 1, 2, 3)):
            for f, g in ((FS.softmax, special.softmax), (FS.log_softmax, special.log_softmax)):
                got, ref = f(a, axis=axis), g(a, axis=axis)
                assert got.shape == ref.shape and got.dtype == ref.dtype
                assert np.array_equal(np.isnan(got), np.isnan(ref)), (f.__name__, axis)
                fin = np.isfinite(ref)
                assert np.array_equal(got[~fin], ref[~fin], equal_nan=True)
                # relative to the rows' scale: fastloss keeps log1p(tiny) where SciPy gives 0
                np.testing.assert_allclose(got[fin], ref[fin], rtol=1e-12, atol=1e-12 * scale)
    with pytest.raises(ValueError, match="axis 4"):
        FS.softmax(a, axis=(1, 4))


def test_complex_logsumexp_and_xlogy(special):
    r = np.random.default_rng(3)
    a = (r.standard_normal((5, 6)) + 1j * r.standard_normal((5, 6)) * 4).astype(np.complex64)
    for kw in ({}, {"axis": 1}, {"axis": 0, "keepdims": True}, {"b": np.arange(6.0) - 2},
               {"axis": 1, "return_sign": True}):
        got, ref = FS.logsumexp(a, **kw), special.logsumexp(a, **kw)
        for g, f in zip(got if isinstance(got, tuple) else (got,),
                        ref if isinstance(ref, tuple) else (ref,)):
            assert np.asarray(g).dtype == np.asarray(f).dtype and np.shape(g) == np.shape(f)
            np.testing.assert_allclose(g, f, rtol=2e-6)
    x = np.array([0, 0, 1, 2.5, 0], complex)
    y = np.array([1j, np.nan, 1j, -3 + 4j, 0])
    got, ref = FS.xlogy(x, y), special.xlogy(x, y)
    assert got.dtype == ref.dtype == np.complex128
    np.testing.assert_allclose(got, ref, rtol=1e-14)
    assert np.array_equal(np.isnan(got), np.isnan(ref))
    with pytest.raises(TypeError, match="rel_entr"):
        FS.rel_entr(x, y)


def test_ufunc_dtype_keyword(special):
    f32 = np.array([0.25, 1.0, 3.0], np.float32)
    for f, g, args in ((FS.expit, special.expit, (f32,)), (FS.log_expit, special.log_expit, (f32,)),
                       (FS.entr, special.entr, (f32,)), (FS.xlogy, special.xlogy, (f32, f32)),
                       (FS.rel_entr, special.rel_entr, (f32, f32[::-1])),
                       (FS.kl_div, special.kl_div, (f32, f32[::-1]))):
        for dt in (np.float32, np.float64, "float64"):
            got, ref = f(*args, dtype=dt), g(*args, dtype=dt)
            assert got.dtype == ref.dtype, (f.__name__, dt)
            np.testing.assert_allclose(got, ref, rtol=2e-7 if got.dtype == np.float32 else 1e-14)
        with pytest.raises(TypeError):
            g(*args, dtype=np.int64)
        with pytest.raises(TypeError, match=f.__name__):
            f(*args, dtype=np.int64)


def test_entr_matches_scipy(special):
    x = np.array([-1.0, -0.0, 0.0, 1e-300, 0.5, 1.0, 3.0, np.inf, np.nan])
    for dt in (np.float32, np.float64, np.float16, np.int8, np.int64):
        v = x[np.isfinite(x)].astype(dt) if np.dtype(dt).kind == "i" else x.astype(dt)
        got, ref = FS.entr(v), special.entr(v)
        assert got.dtype == ref.dtype, dt
        np.testing.assert_allclose(got, ref, rtol=2e-7 if got.dtype == np.float32 else 1e-15)
        np.testing.assert_array_equal(np.signbit(got), np.signbit(ref))


def test_array_api_mode_returns_the_input_namespace(special, monkeypatch):
    torch = require("torch")
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    t = torch.tensor([[0.5, 1.5, -2.0], [3.0, 0.0, 1.0]], dtype=torch.float32)
    ref = special.logsumexp(t.numpy(), axis=1)
    got = FS.logsumexp(t, axis=1)
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float32
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-6)
    s = FS.logsumexp(t)  # a 0-d tensor, not a NumPy scalar
    assert isinstance(s, torch.Tensor) and s.ndim == 0
    for f in (FS.softmax, FS.log_softmax, FS.expit, FS.entr):
        r = f(t)
        assert isinstance(r, torch.Tensor) and r.dtype == torch.float32 and r.shape == t.shape
    r = FS.xlogy(t.double(), t.double().abs())
    assert isinstance(r, torch.Tensor) and r.dtype == torch.float64
    # integers take torch's default float, as SciPy's xp_promote
    assert FS.logsumexp(torch.arange(4)).dtype == torch.get_default_dtype()
    monkeypatch.setenv("SCIPY_ARRAY_API", "0")
    assert isinstance(FS.logsumexp(t, axis=1), np.ndarray)  # the mode off: NumPy out


def _dtype_of(r):
    if hasattr(r, "dtypes") and not hasattr(r, "dtype"):  # a DataFrame
        return tuple(np.dtype(d) for d in r.dtypes)
    return getattr(r, "dtype", type(r))


def test_containers_as_scipy(special, tf):
    pd = require("pandas")
    torch = require("torch")
    base = np.array([[0.5, 1.5, -2.0], [3.0, 0.25, 1.0]])
    convs = [lambda a: a.tolist(), pd.DataFrame, lambda a: pd.Series(a[0], index=list("abc")),
             tf.constant, torch.tensor, lambda a: pd.DataFrame(a.astype(np.float32)),
             lambda a: torch.tensor(a, dtype=torch.float32), lambda a: tf.constant(a, tf.float32)]
    funcs = [("logsumexp", {}), ("logsumexp", {"axis": -1}), ("softmax", {"axis": -1}),
             ("log_softmax", {"axis": 0}), ("expit", {}), ("log_expit", {}), ("entr", {}),
             ("xlogy", {}), ("rel_entr", {}), ("kl_div", {})]
    two = {"xlogy", "rel_entr", "kl_div"}
    for conv in convs:
        for name, kw in funcs:
            args = (conv(np.abs(base)),) * 2 if name in two else (conv(base),)
            got, ref = getattr(FS, name)(*args, **kw), getattr(special, name)(*args, **kw)
            assert type(got) is type(ref), (name, type(args[0]))
            assert _dtype_of(got) == _dtype_of(ref), (name, type(args[0]))
            if isinstance(ref, (pd.Series, pd.DataFrame)):
                assert list(got.index) == list(ref.index)
            g, r = np.asarray(got), np.asarray(ref)
            np.testing.assert_allclose(g, r, rtol=1e-6 if g.dtype == np.float32 else 1e-13)


def test_array_api_strict_namespace_and_promotion(special, monkeypatch):
    xp = require("array_api_strict")
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    a = xp.asarray([[0.5, 1.5, -2.0], [3.0, 0.0, 1.0]], dtype=xp.float32)
    r = FS.logsumexp(a, axis=1)
    assert r.__array_namespace__() is xp and r.dtype == xp.float32
    np.testing.assert_allclose(np.asarray(r), special.logsumexp(np.asarray(a), axis=1), rtol=1e-6)
    # array_api_strict does not promote int with float: SciPy adds the default float64
    b = xp.asarray([[1, 2, 3], [0, 1, 1]], dtype=xp.int32)
    assert FS.logsumexp(a, b=b).dtype == xp.float64
    assert FS.softmax(b).dtype == xp.float64


# --------------------------------------------------------------------------- ufunc keywords (#17)

UFUNCS = ("expit", "log_expit", "entr", "xlogy", "rel_entr", "kl_div")


def _operands():
    """Every kind of operand NumPy resolves a ufunc loop for (NEP 50: Python scalars weak)."""
    return {"b": np.array([True, False]), "i1": np.array([1, 2], np.int8),
            "u1": np.array([1, 2], np.uint8), "i2": np.array([1, 2], np.int16),
            "i4": np.array([1, 2], np.int32), "i8": np.array([1, 2], np.int64),
            "u8": np.array([1, 2], np.uint64), "f2": np.array([0.5, 2], np.float16),
            "f4": np.array([0.5, 2], np.float32), "f8": np.array([0.5, 2]),
            "g": np.array([0.5, 2], np.longdouble), "c8": np.array([0.5, 2], np.complex64),
            "c16": np.array([0.5, 2], np.complex128), "O": np.array([0.5, 2], object),
            "py_int": 2, "py_float": 0.5, "py_complex": 0.5 + 0j, "py_bool": True,
            "np_f4": np.float32(0.5), "np_f8": np.float64(0.5), "0d_f4": np.array(0.5, np.float32),
            "list": [0.5, 2.0]}


def _outcome(f, *args, **kw):
    """The result's dtype, or the exception's type (both raise TypeError and ValueError)."""
    try:
        with np.errstate(all="ignore"):
            return np.asarray(f(*args, **kw)).dtype
    except (TypeError, ValueError) as e:  # NumPy raises subclasses (UFuncTypeError)
        return TypeError if isinstance(e, TypeError) else ValueError


@pytest.mark.filterwarnings("ignore::numpy.exceptions.ComplexWarning")  # casting="unsafe"
@pytest.mark.parametrize("name", UFUNCS)
def test_ufunc_loop_resolution_as_scipy(special, name):
    # the loop (and so the result dtype) NumPy picks for SciPy's ufunc, or its error, for
    # every pair of operand kinds, with dtype= and each casting rule: long double input to
    # xlogy / entr / rel_entr / kl_div raises as in SciPy (no safe cast to their loops)
    import itertools

    f, g = getattr(special, name), getattr(FS, name)
    ops = _operands()
    combos = itertools.product(ops, repeat=f.nin)
    n = 0
    for combo in combos:
        args = [ops[k] for k in combo]
        for kw in ({}, {"dtype": np.float32}, {"dtype": "float64"}, {"dtype": np.int64},
                   {"casting": "no"}, {"casting": "equiv"}, {"casting": "safe"},
                   {"casting": "unsafe"}, {"casting": "unsafe", "dtype": np.float32},
                   {"casting": "safe", "dtype": np.float32}, {"casting": "no", "dtype": np.float32},
                   {"casting": "equiv", "dtype": "float64"}):
            want, got = _outcome(f, *args, **kw), _outcome(g, *args, **kw)
            assert got == want, (name, combo, kw, got, want)
            n += 1
    assert n >= 12 * 22


@pytest.mark.parametrize("name", UFUNCS)
def test_ufunc_out_and_casting_as_scipy(special, name):
    f, g = getattr(special, name), getattr(FS, name)
    x = np.array([[0.25, 1.5, 3.0], [0.5, 0.75, 2.0]])
    args = (x,) if f.nin == 1 else (x, x[::-1])
    for out_dt in (np.float16, np.float32, np.float64, np.longdouble, np.complex128, np.int64):
        for casting in ("no", "equiv", "safe", "same_kind", "unsafe"):
            for dtype in (None, np.float32):
                outs = [np.full(x.shape, -7, out_dt) for _ in range(2)]
                try:
                    with np.errstate(all="ignore"):
                        want = f(*args, out=outs[0], casting=casting, dtype=dtype)
                except TypeError:
                    with pytest.raises(TypeError, match=name):
                        g(*args, out=outs[1], casting=casting, dtype=dtype)
                    continue
                got = g(*args, out=(outs[1],), casting=casting, dtype=dtype)  # NumPy's 1-tuple
                assert got is outs[1] and want is outs[0]
                np.testing.assert_allclose(np.asarray(got, np.complex128),
                                           np.asarray(want, np.complex128), rtol=1e-6)
    with pytest.raises(ValueError, match="casting must be one of"):
        g(*args, casting="SAFE")
    with pytest.raises(TypeError, match="return arrays must be of ArrayType"):
        g(*args, out=[0.0] * 6)
    with pytest.raises(ValueError, match="exactly one entry"):
        g(*args, out=(np.empty(3), np.empty(3)))
    with pytest.raises(ValueError, match="order must be one of"):
        g(*args, order="Z")


@pytest.mark.parametrize("name", UFUNCS)
def test_ufunc_where_as_numpy(special, name):
    # NumPy's where: computed where True, `out` kept elsewhere; `where` broadcasts with the
    # inputs. SciPy 1.17.1's xsf-based loops (expit, log_expit, xlogy) write the wrong
    # elements under a where mask (scipy/scipy#25127), so the reference is SciPy's values
    # without where, placed by np.copyto; entr, rel_entr and kl_div are compared with
    # SciPy's own where= too.
    f, g = getattr(special, name), getattr(FS, name)
    r = np.random.default_rng(5)
    x = r.uniform(0.05, 3.0, (4, 6))
    y = r.uniform(0.05, 3.0, (4, 6))
    args = (x,) if f.nin == 1 else (x, y)
    for where in (r.random((4, 6)) < 0.5, r.random(6) < 0.5, (r.random((4, 1)) < 0.5).tolist(),
                  False, np.True_):
        want = np.full((4, 6), -7.0)
        np.copyto(want, f(*args), where=where)
        got = g(*args, out=np.full((4, 6), -7.0), where=where)
        np.testing.assert_allclose(got, want, rtol=1e-14)
        if name in ("entr", "rel_entr", "kl_div"):
            np.testing.assert_allclose(
                got, f(*args, out=np.full((4, 6), -7.0), where=where), rtol=1e-14)
    # `where` larger than the inputs: the output has its shape, as NumPy's
    w = r.random((3, 4, 6)) < 0.5
    want = np.zeros((3, 4, 6))
    np.copyto(want, f(*args), where=w)
    np.testing.assert_allclose(g(*args, out=np.zeros((3, 4, 6)), where=w), want, rtol=1e-14)
    with pytest.warns(UserWarning, match="'where' used without 'out'"):
        res = g(*args, where=w)
    assert res.shape == (3, 4, 6)
    np.testing.assert_allclose(res[w], want[w], rtol=1e-14)
    with pytest.raises(TypeError, match="to dtype\\('bool'\\)"):
        g(*args, out=np.zeros((4, 6)), where=np.ones(6, int))


@pytest.mark.parametrize("name", UFUNCS)
def test_ufunc_order_as_scipy(special, name):
    f, g = getattr(special, name), getattr(FS, name)
    r = np.random.default_rng(6)
    c = r.uniform(0.1, 2.0, (3, 4))
    fo = np.asfortranarray(c)
    t3 = r.uniform(0.1, 2.0, (2, 3, 4)).transpose(2, 0, 1)
    pairs = [(c, c), (fo, fo), (fo, c), (t3, t3), (fo, 2.0), (fo, c[0]), (c[:, ::2], c[:, ::2]),
             (t3, np.ascontiguousarray(t3))]
    for a, b in pairs:
        args = (a,) if f.nin == 1 else (a, b)
        for order in ("K", "C", "F", "A", None, "c"):
            want, got = f(*args, order=order), g(*args, order=order)
            assert np.argsort(got.strides).tolist() == np.argsort(want.strides).tolist()
            assert (got.flags.c_contiguous, got.flags.f_contiguous) == \
                (want.flags.c_contiguous, want.flags.f_contiguous), (order, a.strides)
            np.testing.assert_allclose(got, want, rtol=1e-14)


def test_long_double_as_scipy(special):
    # expit/log_expit have SciPy's long double loop; the other ufuncs refuse long double
    # (SciPy: no safe cast to their float/double loops), unless dtype= picks a loop
    x = np.array([-30.0, -1.5, 0.0, 2.0, 40.0], np.longdouble) / 3
    for name in ("expit", "log_expit"):
        got, want = getattr(FS, name)(x), getattr(special, name)(x)
        assert got.dtype == want.dtype == np.longdouble
        np.testing.assert_allclose(got, want, rtol=4 * np.finfo(np.longdouble).eps)
    for name, args in (("xlogy", (x, x + 1)), ("entr", (x,)), ("rel_entr", (x, x + 1)),
                       ("kl_div", (x, x))):
        with pytest.raises(TypeError, match=f"ufunc '{name}' not supported for the input types"):
            getattr(FS, name)(*args)
        got = getattr(FS, name)(*args, dtype=np.float64)
        want = getattr(special, name)(*args, dtype=np.float64)
        assert got.dtype == want.dtype == np.float64
        np.testing.assert_allclose(got, want, rtol=1e-14)


def test_long_double_softmax_as_scipy(special):
    # SciPy computes softmax / log_softmax of long double in long double: so does fastloss
    # (its NumPy path; the kernels stop at float64), non-finite rows included
    r = np.random.default_rng(7)
    x = (r.standard_normal((4, 5)) * 30).astype(np.longdouble)
    x[1, 2] = np.inf
    x[2] = -np.inf
    x[3, 0] = 1e-3 / 3  # not a float64 value
    tol = 8 * np.finfo(np.longdouble).eps
    for name in ("softmax", "log_softmax"):
        for axis in (None, 0, 1, (0, 1)):
            got, want = getattr(FS, name)(x, axis=axis), getattr(special, name)(x, axis=axis)
            assert got.dtype == want.dtype == np.longdouble and got.shape == want.shape
            np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
            np.testing.assert_allclose(got, want, rtol=tol, atol=0)


def test_pandas_operands_align_as_in_scipy(special):
    # SciPy's ufuncs see pandas operands through pandas' __array_ufunc__, which reindexes
    # two pandas objects on the union of their labels (NaN where one is missing); a pandas
    # object with an ndarray is positional; a DataFrame with a Series raises (#17)
    pd = require("pandas")
    a = pd.Series([1.0, 2.0, 3.0], index=[0, 1, 2], name="a")
    cases = [(a, pd.Series([0.5, 1.0, 2.0], index=[2, 1, 0], name="b")),
             (a, pd.Series([0.5, 1.0, 2.0], index=[2, 1, 5], name="a")),
             (a, np.array([0.5, 1.0, 2.0])), (np.array([0.5, 1.0, 2.0]), a), (a, 2.0),
             (pd.Series([1, 2, 3]), pd.Series([1, 2, 3], index=[1, 2, 3])),
             (pd.DataFrame({"x": [1.0, 2.0], "y": [3.0, 4.0]}),
              pd.DataFrame({"y": [0.5, 1.0], "z": [2.0, 3.0]}, index=[1, 2]))]
    for x, y in cases:
        for name in ("xlogy", "rel_entr", "kl_div"):
            got, want = getattr(FS, name)(x, y), getattr(special, name)(x, y)
            assert type(got) is type(want)
            if isinstance(want, pd.DataFrame):
                pd.testing.assert_frame_equal(got, want, rtol=1e-14)
            else:
                pd.testing.assert_series_equal(got, want, rtol=1e-14)
    df = cases[-1][0]
    with pytest.raises(NotImplementedError, match="mixed DataFrame and Series"):
        FS.xlogy(df, a)


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # np.matrix
@pytest.mark.parametrize("name", UFUNCS)
def test_ufunc_subclasses_as_scipy(special, name):
    # a ufunc gives ndarray subclasses their type back (__array_wrap__): masked arrays keep
    # the inputs' masks, so masked entries stay masked (fastloss returned plain arrays)
    f, g = getattr(special, name), getattr(FS, name)
    m = np.ma.array([0.5, 2.0, 1.5], mask=[False, True, False], fill_value=7.0)
    m2 = np.ma.array([[1.0, 2.0, 3.0], [0.5, 0.25, 4.0]], mask=[[True, False, False]] * 2)
    cases = [(m, m2), (np.ones(3), m), (m2, 2.0), (np.ma.array(0.5, mask=True), 1.0),
             (np.ma.array(0.5, mask=False), 1.0), (np.matrix([[0.5, 2.0]]), m[:2]),
             (np.matrix([[0.5, 2.0]]), np.ones(2))]
    for a, b in cases:
        args = (a, b)[:f.nin]
        want, got = f(*args), g(*args)
        assert type(got) is type(want), (args, type(got), type(want))
        if want is np.ma.masked:
            continue
        assert got.shape == want.shape
        if isinstance(want, np.ma.MaskedArray):
            np.testing.assert_array_equal(np.ma.getmaskarray(got), np.ma.getmaskarray(want))
            assert got.fill_value == want.fill_value
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-14)
        plain, want = g(*args, subok=False), f(*args, subok=False)
        assert type(plain) is type(want) and type(plain) in (np.ndarray, np.float64)


@pytest.mark.filterwarnings("ignore::numpy.exceptions.ComplexWarning")  # casting="unsafe"
@pytest.mark.parametrize("name", UFUNCS)
def test_ufunc_signature_as_scipy(special, name):
    # signature= giving every type (string or tuple) or only the output's: SciPy's loop,
    # result dtype or error for every operand kind; one leaving inputs free is refused
    import itertools

    f, g = getattr(special, name), getattr(FS, name)
    ops = _operands()
    sigs = (["d->d", "f->f", "g->g", ("f", "f"), (None, "f"), "d", "ff->f"] if f.nin == 1 else
            ["dd->d", "ff->f", "FF->F", "DD->D", "gg->g", "df->d", ("d", "d", "d"),
             (np.float32,) * 3, (None, None, "f"), ("d",), "dd"])
    for combo in itertools.product(ops, repeat=f.nin):
        args = [ops[k] for k in combo]
        for sig in sigs:
            for kw in ({}, {"casting": "unsafe"}, {"casting": "equiv"}, {"dtype": np.float64}):
                want, got = _outcome(f, *args, signature=sig, **kw), _outcome(
                    g, *args, signature=sig, **kw)
                assert got == want, (name, combo, sig, kw, got, want)
        free = ((None, None),) if f.nin == 1 else (("f", None, None), (None, None, None))
        for sig in free:
            with pytest.raises(TypeError, match="every type"):
                g(*args, signature=sig)
