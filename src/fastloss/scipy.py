"""Drop-in for the ``scipy.special`` functions used to build losses, on NumPy arrays.

``from fastloss import scipy as special`` in place of ``from scipy import special``:
``logsumexp(a, axis=None, b=None, keepdims=False, return_sign=False)``,
``softmax(x, axis=None)``, ``log_softmax(x, axis=None)`` (``axis`` may be a tuple),
``expit``, ``log_expit``, ``entr``, ``xlogy``, ``rel_entr``, ``kl_div`` (with the ufunc
keywords ``out=`` and ``dtype=``), with SciPy's argument names, defaults (``axis=None``
reduces over *all* elements) and edge cases. SciPy is not imported.

Array-API mode: with ``SCIPY_ARRAY_API`` set (read at each call; SciPy reads it at
import), a torch CPU tensor or another array-API array in gives the same namespace out
(a 0-d tensor, not a NumPy scalar), computed on a zero-copy NumPy view; integer inputs
take the other inputs' float dtype or the namespace's default float (``xp_promote``).
Without it, ``logsumexp``/``softmax``/``log_softmax`` give NumPy for any input, and the
ufuncs (``expit``, ``log_expit``, ``entr``, ``xlogy``, ``rel_entr``, ``kl_div``) give what
SciPy's ufuncs give: a pandas Series/DataFrame for one (same index and columns), a torch
tensor for a torch CPU tensor, NumPy otherwise (TF tensors and lists included).

Upstream suites (``tests/dropins/upstream/run_upstream.py scipy scipy-array-api``):
SciPy's own ``test_logsumexp.py`` (TestLogSumExp, TestSoftmax, TestLogSoftmax),
``test_logit.py`` (TestExpit, TestLogExpit) and ``test_basic.py`` (xlogy, entr, kl_div,
rel_entr) with only the imports changed: all 419 pass on NumPy and, for
``test_logsumexp.py``, all 803 on torch tensors and ``array_api_strict`` arrays under
``SCIPY_ARRAY_API``. No test is excluded.

Semantics mirrored (scipy/special/_logsumexp.py, the xsf scalar kernels):

* ``logsumexp``: a zero ``b`` masks its entry even if it is inf or NaN; negative
  ``b`` with ``return_sign=True`` gives ``(log|s|, sign)``, without it a negative
  sum gives NaN; the sign of an all ``-inf`` (zero) sum is 0; empty reductions
  give ``-inf`` (with sign -1, SciPy's ``sign(-inf)``). Integers are computed in
  float64; 0-d results are NumPy scalars.
* ``softmax`` of a row holding ``+inf`` or only ``-inf`` is NaN; ``log_softmax``
  of a row holding ``+inf`` is NaN at the ``+inf`` entries and ``-inf`` elsewhere,
  of an all ``-inf`` row NaN (SciPy's ``x - max`` with a non-finite max set to 0).
* ``xlogy(x, y)`` is 0 where ``x == 0`` unless ``y`` is NaN; ``rel_entr`` is
  ``x*log(x/y)`` for ``x, y > 0`` (with SciPy 1.15+'s ``log1p((x-y)/y)`` near
  ``x == y`` and ``log(x) - log(y)`` where ``x/y`` would overflow or underflow), 0 for
  ``x == 0, y >= 0``, ``+inf`` otherwise, NaN if either is NaN; ``kl_div`` is
  ``x*log(x/y) - x + y`` (``y`` where ``x == 0``). They run on the backend's
  element-wise kernel (vectorised float64 log, multi-threaded).
  The dtype rule of these ufuncs holds: float32 inputs give float32, anything
  else (float16, integers, Python floats mixed with float32) float64. ``out=``
  is accepted.

Documented deviations (tested in tests/test_dropin_scipy.py):

1. float32 inputs are computed in float64 and rounded once (SciPy's float32
   ``logsumexp``/``softmax``/``log_softmax``/``expit`` round at every step), so
   fastloss is within 0.5 ulp of the exact value and SciPy a few ulps away
   (relative to ``|max| + |log(sum)|`` where ``logsumexp`` cancels).
2. ``logsumexp`` without ``b`` runs on fastloss's kernel
   (``max + log1p(sum of the others)``, float64 inside); with ``b`` it follows
   SciPy's algorithm in float64. float64 results agree with SciPy to a few
   eps64 (relative to the same scale). float16 is computed in float32.
3. Complex (``logsumexp``, ``xlogy``) and long double (``logsumexp``, ``expit``,
   ``log_expit``) inputs take a NumPy path that follows SciPy's algorithm in the
   input's dtype, not a fastloss kernel; the other functions raise ``TypeError`` for
   complex input, as SciPy's ufuncs do. ``where=``/``casting=``/``order=`` ufunc
   keywords are not accepted.
"""

import os

import numpy as np

import fastloss.losses.log_sum_exp as _lse
from fastloss.losses._docs import fill
from fastloss._dispatch import resolve_backend, resolve_threads
from fastloss.losses.log_sum_exp import fast_logsumexp as _fast_lse  # compiled (#16)
from fastloss.kernels import EW_KL_DIV, EW_REL_ENTR, EW_XLOGY

__all__ = ["entr", "expit", "kl_div", "log_expit", "log_softmax", "logsumexp", "rel_entr",
           "softmax", "xlogy"]


def _real(a, name, complex_ok=False):
    arr = np.asarray(a)
    if arr.dtype.kind == "c" and not complex_ok:
        raise TypeError(f"{name}: complex inputs are not supported by fastloss.scipy")
    if arr.dtype.kind not in "biufc":
        arr = arr.astype(np.float64)
    return arr


# --------------------------------------------------------------------------- array API


def _array_api_on():
    # SciPy reads SCIPY_ARRAY_API once at import; fastloss does not import SciPy, so it
    # reads the same variable when called
    return os.environ.get("SCIPY_ARRAY_API", "0").strip() not in ("", "0")


def _namespace(*args):
    """``(to_numpy, back, default float name, mixed-kind promotion?)`` for the array-API
    inputs among ``args`` (SciPy's array-API mode), or None: NumPy in, NumPy out."""
    if not _array_api_on():
        return None
    arrays = [a for a in args if a is not None and not isinstance(a, (np.ndarray, np.generic))
              and (type(a).__module__.startswith("torch") or hasattr(a, "__array_namespace__"))]
    if not arrays:
        return None
    x = arrays[0]
    if type(x).__module__.startswith("torch"):
        import torch

        if x.device.type != "cpu":
            raise TypeError(f"fastloss.scipy computes on the CPU; got a tensor on {x.device}")

        def back(r):
            r = np.asarray(r)
            return torch.from_numpy(np.ascontiguousarray(r)) if r.ndim else torch.asarray(r)

        def to_numpy(a):
            return a.detach().numpy() if isinstance(a, torch.Tensor) else a

        default = torch.get_default_dtype()
        return to_numpy, back, str(default).replace("torch.", ""), True
    xp = x.__array_namespace__()

    def back(r):
        return xp.asarray(np.asarray(r), device=x.device)

    def to_numpy(a):
        return np.from_dlpack(a) if hasattr(a, "__dlpack__") else np.asarray(a)

    try:  # does the namespace promote integers with floats (array_api_strict does not)?
        xp.result_type(*arrays)
        mixed = True
    except TypeError:
        mixed = False
    return to_numpy, back, "float64", mixed


def _xp_call(fn, arrays, **kw):
    """``fn(*arrays, **kw)`` on NumPy views of array-API inputs, results back in the
    input's namespace (None when no array-API input: the caller's NumPy path)."""
    ns = _namespace(*arrays)
    if ns is None:
        return None
    to_numpy, back, default, mixed = ns
    nps = [None if a is None else np.asarray(to_numpy(a)) for a in arrays]
    # SciPy's xp_result_type(force_floating=True): integers join the floating inputs'
    # dtype where the namespace promotes across kinds, else the default float joins in
    floats = [a.dtype for a in nps if a is not None and a.dtype.kind in "fc"]
    ints = len(floats) < sum(a is not None for a in nps)
    if floats and not (ints and not mixed):
        target = np.result_type(*floats)
    else:
        target = np.result_type(*floats, np.dtype(default))
    nps = [a if a is None or a.dtype.kind in "fc" else a.astype(target) for a in nps]
    res = fn(*nps, **kw)
    return tuple(back(r) for r in res) if isinstance(res, tuple) else back(res)


def _ufunc_container(res, inputs, out):
    """A SciPy ufunc's container for ``res``: pandas objects in give the same pandas type
    out (``__array_ufunc__``), torch tensors a tensor (``__array_wrap__``); else ``res``."""
    if out is not None:
        return res
    for x in inputs:
        mod = type(x).__module__
        if mod.startswith("pandas") and np.shape(x) == np.shape(res):
            import pandas as pd

            if isinstance(x, pd.DataFrame):
                return pd.DataFrame(res, index=x.index, columns=x.columns)
            if isinstance(x, pd.Series):
                return pd.Series(res, index=x.index, name=x.name)
    for x in inputs:
        if type(x).__module__.startswith("torch"):
            import torch

            return torch.from_numpy(np.array(res, copy=True, ndmin=0))
    return res


def _loop_dtype(name, dtype, dt, loops=(np.float32, np.float64)):
    """The loop chosen by a ufunc's ``dtype=`` keyword (``dt``: the one chosen without it)."""
    if dtype is None:
        return dt
    want = np.dtype(dtype)
    if want not in loops:
        raise TypeError(f"{name}: no loop matching dtype={dtype!r} (the loops are "
                        f"{', '.join(np.dtype(t).name for t in loops)})")
    return want


def _ufunc_dtype(*arrays):
    """The loop a float32/float64 SciPy ufunc picks for these inputs."""
    # SciPy's type resolution picks the float32 loop only when every input is float32
    if all(a.dtype == np.longdouble != np.float64 for a in arrays):
        return np.dtype(np.longdouble)  # only expit/log_expit have this loop
    return np.dtype(np.float32) if all(a.dtype == np.float32 for a in arrays) else \
        np.dtype(np.float64)


_WITH_LONG = (np.float32, np.float64, np.longdouble)


def _finish(res64, dt, out):
    res = res64.astype(dt)
    if out is not None:
        out[...] = res
        return out
    return res[()] if res.ndim == 0 else res


# --------------------------------------------------------------------------- log-sum-exp


def _promoted(a, b):
    """scipy's ``xp_promote(a, b, force_floating=True)``."""
    kinds = [x.dtype for x in (a, b) if x is not None]
    dt = np.result_type(*kinds)
    if dt.kind not in "fc":
        dt = np.result_type(dt, np.float64)
    return dt


def logsumexp(a, axis=None, b=None, keepdims=False, return_sign=False):
    r"""``scipy.special.logsumexp``: ``log(sum(b * exp(a), axis))``, computed stably.

    Parameters
    ----------
    a : array_like
        Input.
    axis : None, int or tuple of int, default None
        Axes to reduce.
    b : array_like, optional
        Scale factors.
    keepdims : bool, default False
        Keep the reduced axes.
    return_sign : bool, default False
        Also return the sign of the sum.

    Returns
    -------
    res : ndarray or scalar
        ``log|sum|``.
    sign : ndarray or scalar
        Only with ``return_sign=True``.

    Raises
    ------
    TypeError
        Complex or non-numeric inputs.
    ValueError
        An axis out of range, ``b`` that does not broadcast.

    See Also
    --------
    fastloss.logsumexp

    Notes
    -----
    SciPy's semantics, fastloss's row kernels. Computed in float64 and rounded once to the result dtype (NumPy's ufunc promotion).

    Examples
    --------
    >>> import numpy as np
    >>> import fastloss.scipy as special
    >>> float(special.logsumexp(np.array([1000.0, 1000.0])))
    1000.6931471805599
    """
    res = _xp_call(_logsumexp_numpy, (a, b), axis=axis, keepdims=keepdims,
                   return_sign=return_sign)
    return res if res is not None else _logsumexp_numpy(a, b, axis, keepdims, return_sign)


def _axes(axis, ndim):
    axes = tuple(range(ndim)) if axis is None else (
        tuple(axis) if isinstance(axis, (tuple, list)) else (axis,))
    for ax in axes:
        if not -ndim <= ax < ndim:
            raise ValueError(f"axis {ax} is out of bounds for an array of dimension {ndim}")
    return tuple(sorted(ax % ndim for ax in axes))


def _logsumexp_numpy(a, b=None, axis=None, keepdims=False, return_sign=False):
    """``logsumexp`` on NumPy inputs."""
    if b is None and return_sign is False:
        res = _fast_lse(a, axis=axis, keepdims=keepdims)
        if res is not None:  # the plain call, compiled: the same bits as below
            return res
    a = _real(a, "logsumexp", complex_ok=True)
    bb = None if b is None else _real(b, "logsumexp", complex_ok=True)
    dt = _promoted(a, bb)
    a = a.astype(dt, copy=False)
    if a.ndim == 0:
        a = a.reshape(1)
        if bb is not None:
            bb = np.asarray(bb).reshape(1) if bb.ndim == 0 else bb
    if bb is not None:
        a, bb = np.broadcast_arrays(a, bb.astype(dt, copy=False))
    axes = _axes(axis, a.ndim)
    if dt.kind == "c" or dt == np.longdouble and dt != np.float64:
        res, sign = _logsumexp_general(a, bb, axes, return_sign)
        res = res.astype(np.empty(0, dt).real.dtype if return_sign else dt)
        sign = sign.astype(dt)
    else:
        if bb is None:
            res = np.asarray(_lse.logsumexp(a, axis=axes, keepdims=True))
            sign = np.where(np.isnan(res), np.nan, np.where(res == -np.inf, 0.0, 1.0))
        else:
            res, sign = _logsumexp_b(a, bb, axes)
        res = res.astype(dt)
        sign = sign.astype(dt)
    if not return_sign and dt.kind != "c":
        res = np.where(sign < 0, dt.type(np.nan), res)
    if a.size == 0:  # SciPy: -inf with sign(-inf) = -1, not NaN
        res = np.full_like(res, -np.inf)
        sign = np.full_like(sign, -1)  # complex: -1+0j
    if not keepdims:
        res = np.squeeze(res, axis=axes)
        sign = np.squeeze(sign, axis=axes)
    res = res[()] if res.ndim == 0 else res
    sign = sign[()] if sign.ndim == 0 else sign
    return (res, sign) if return_sign else res


def _wrap_radians(x):
    # SciPy wraps the imaginary part to (-pi, pi], keeping small values exact
    return np.where(np.abs(x) < np.pi, x, -((-x + np.pi) % (2 * np.pi) - np.pi))


def _logsumexp_general(a, b, axes, return_sign):
    """SciPy's own algorithm in the input's dtype (complex, long double): NumPy's
    reference path, as SciPy computes it (scipy/special/_logsumexp.py, BSD-3)."""
    if a.size == 0:
        shape = [1 if i in axes else n for i, n in enumerate(a.shape)]
        return np.full(shape, -np.inf, a.dtype), np.full(shape, -1, a.dtype)
    with np.errstate(all="ignore"):
        b_exp_a = np.exp(a) if b is None else b * np.exp(a)
        direct = np.sum(b_exp_a, axis=axes, keepdims=True)
        sgn_inf = np.sign(direct)
        out_inf = np.log(np.abs(direct) if return_sign else direct)
        if b is not None:
            a = np.where(b == 0, -np.inf, a)
        # the element with the largest real part (one of them) is taken out of the sum
        real = a.real
        top = real == np.max(real, axis=axes, keepdims=True)
        idx = np.where(top, np.arange(a.size).reshape(a.shape), -1)
        i_max = idx == np.max(idx, axis=axes, keepdims=True)
        a_max = np.sum(np.where(i_max, a, 0), axis=axes, keepdims=True)
        a = np.where(i_max, -np.inf, a)
        m = np.sum(i_max.astype(a.dtype) if b is None else b * i_max, axis=axes, keepdims=True,
                   dtype=a.dtype)
        e = np.exp(a - a_max) if b is None else b * np.exp(a - a_max)
        s = np.sum(e, axis=axes, keepdims=True, dtype=a.dtype)
        s = np.where(s == 0, s, s / m)
        sgn = np.sign(s + 1) * np.sign(m)
        if a.dtype.kind == "c":
            sgn = sgn * np.exp(a_max.imag * 1j)
        else:
            s = np.where(s < -1, -s - 2, s)
            m = np.abs(m)
        out = np.log1p(s) + np.log(m) + a_max
        if return_sign:
            out = out.real
        fin = np.isfinite(out)
        out = np.where(fin, out, out_inf.real if return_sign else out_inf)
        sgn = np.where(fin, sgn, sgn_inf)
        if a.dtype.kind == "c":
            if return_sign:
                sgn = sgn.real + _wrap_radians(sgn.imag) * 1j
            else:
                out = out.real + _wrap_radians(out.imag) * 1j
    return out, sgn


def _logsumexp_b(a, b, axes):
    """SciPy's ``_logsumexp`` with ``b``, in float64: ``log1p(s) + log(m) + max``."""
    a64 = a.astype(np.float64)
    b64 = b.astype(np.float64)
    with np.errstate(all="ignore"):
        if a.size == 0:
            shape = [1 if i in axes else n for i, n in enumerate(a.shape)]
            return np.full(shape, -np.inf), np.full(shape, -1.0)
        raw = a64
        a64 = np.where(b64 == 0, -np.inf, a64)
        a_max = np.max(a64, axis=axes, keepdims=True)
        i_max = a64 == a_max
        m = np.sum(np.where(i_max, b64, 0.0), axis=axes, keepdims=True)
        e = b64 * np.exp(np.where(i_max, -np.inf, a64) - a_max)
        s = np.sum(e, axis=axes, keepdims=True)
        s = np.where(s == 0, s, s / m)
        sgn = np.sign(s + 1) * np.sign(m)
        s = np.where(s < -1, -s - 2, s)
        out = np.log1p(s) + np.log(np.abs(m)) + a_max
        # non-finite results: SciPy's direct formula, on the unmasked input (0 * inf is NaN)
        direct = np.sum(b64 * np.exp(raw), axis=axes, keepdims=True)
        fin = np.isfinite(out)
        out = np.where(fin, out, np.log(np.abs(direct)))
        sgn = np.where(fin, sgn, np.sign(direct))
    return out, sgn


def softmax(x, axis=None):
    r"""``scipy.special.softmax``: ``exp(x - logsumexp(x, axis))``.

    Parameters
    ----------
    x : array_like
        Input.
    axis : int, tuple of int or None, default None
        The axes normalised together (``None``: all elements).

    Returns
    -------
    ndarray
        ``x``'s shape.

    Raises
    ------
    TypeError
        Complex or non-numeric inputs.

    See Also
    --------
    log_softmax, fastloss.softmax

    Notes
    -----
    Computed in float64 and rounded once to the result dtype (NumPy's ufunc promotion).

    Examples
    --------
    >>> import numpy as np
    >>> import fastloss.scipy as special
    >>> special.softmax(np.array([0.0, np.log(3.0)]))
    array([0.25, 0.75])
    """
    res = _xp_call(_softmax_numpy, (x,), axis=axis)
    return res if res is not None else _softmax_numpy(x, axis)


def _over_axes(fn, x, axis):
    """``fn(x, axis=int or None)`` over a tuple of axes: those moved last and merged."""
    if not isinstance(axis, (tuple, list)):
        return np.asarray(fn(x, axis=axis))
    axes = _axes(axis, x.ndim)
    last = tuple(range(x.ndim - len(axes), x.ndim))
    moved = np.moveaxis(x, axes, last)
    lead = moved.shape[:x.ndim - len(axes)]
    flat = moved.reshape(lead + (int(np.prod(moved.shape[len(lead):])),))
    res = np.asarray(fn(flat, axis=-1)).reshape(moved.shape)
    return np.moveaxis(res, last, axes)


def _softmax_numpy(x, axis=None):
    """``softmax`` on NumPy inputs."""
    x = _real(x, "softmax")
    dt = _promoted(x, None)
    res = _over_axes(_lse.softmax, x.astype(dt, copy=False), axis)
    return res[()] if res.ndim == 0 else res


def log_softmax(x, axis=None):
    r"""``scipy.special.log_softmax``: ``x - logsumexp(x, axis)``, SciPy's non-finite rows.

    Parameters
    ----------
    x : array_like
        Input.
    axis : int, tuple of int or None, default None
        The axes normalised together (``None``: all elements).

    Returns
    -------
    ndarray
        ``x``'s shape.

    Raises
    ------
    TypeError
        Complex or non-numeric inputs.

    See Also
    --------
    softmax, fastloss.log_softmax

    Notes
    -----
    Computed in float64 and rounded once to the result dtype (NumPy's ufunc promotion).

    Examples
    --------
    >>> import numpy as np
    >>> import fastloss.scipy as special
    >>> special.log_softmax(np.array([0.0, -800.0]))
    array([   0., -800.])
    """
    res = _xp_call(_log_softmax_numpy, (x,), axis=axis)
    return res if res is not None else _log_softmax_numpy(x, axis)


def _log_softmax_numpy(x, axis=None):
    """``log_softmax`` on NumPy inputs."""
    x = _real(x, "log_softmax")
    dt = _promoted(x, None)
    x = x.astype(dt, copy=False)
    res = _over_axes(_lse.log_softmax, x, axis)
    if isinstance(axis, list):
        axis = tuple(axis)
    with np.errstate(invalid="ignore", over="ignore"):
        finite = x.size == 0 or np.isfinite(np.add.reduce(x, axis=None))
    if not finite:
        # rows with +inf: SciPy's (x - 0) - log(inf) is NaN at +inf and -inf elsewhere
        with np.errstate(invalid="ignore"):
            has_pinf = np.any(x == np.inf, axis=axis, keepdims=True)
            has_nan = np.any(np.isnan(x), axis=axis, keepdims=True)
        fix = np.where(x == np.inf, np.nan, -np.inf).astype(dt)
        res = np.where(has_pinf & ~has_nan, fix, res)
    return res[()] if res.ndim == 0 else res


# --------------------------------------------------------------------------- element-wise


@fill
def expit(x, out=None, *, dtype=None):
    r"""``scipy.special.expit``: the logistic sigmoid ``1 / (1 + exp(-x))``.

    Parameters
    ----------
    x : array_like
        Input.
    %(scipy_out)s
    dtype : dtype, optional
        The loop's result dtype, as the ufunc keyword (``TypeError`` for a dtype the
        function has no loop for).

    Returns
    -------
    ndarray or scalar
        SciPy's result dtype.

    Raises
    ------
    TypeError
        Complex or non-numeric inputs.

    See Also
    --------
    log_expit

    Notes
    -----
    Computed in float64 and rounded once to the result dtype (NumPy's ufunc promotion). ``exp`` overflow gives exactly 0, as in SciPy.

    Examples
    --------
    >>> import numpy as np
    >>> import fastloss.scipy as special
    >>> special.expit(np.array([0.0, -1000.0]))
    array([0.5, 0. ])
    """
    res = _xp_call(_expit_numpy, (x,), out=out, dtype=dtype)
    return res if res is not None else _ufunc_container(_expit_numpy(x, out, dtype), (x,), out)


def _expit_numpy(x, out=None, dtype=None):
    """``expit`` on NumPy inputs."""
    x = _real(x, "expit")
    dt = _loop_dtype("expit", dtype, _ufunc_dtype(x), _WITH_LONG)
    # long double is SciPy's own 'g' loop; the rest is float64 rounded once
    r = np.array(x, dtype=np.longdouble if dt == np.longdouble else np.float64)  # a copy
    np.negative(r, out=r)
    with np.errstate(over="ignore"):
        np.exp(r, out=r)  # SciPy's 1 / (1 + exp(-x)); exp overflow gives exactly 0
    r += 1.0
    np.reciprocal(r, out=r)
    return _finish(r, dt, out)


@fill
def log_expit(x, out=None, *, dtype=None):
    r"""``scipy.special.log_expit``: ``log(expit(x))`` without underflow.

    Parameters
    ----------
    x : array_like
        Input.
    %(scipy_out)s
    dtype : dtype, optional
        The loop's result dtype, as the ufunc keyword (``TypeError`` for a dtype the
        function has no loop for).

    Returns
    -------
    ndarray or scalar
        SciPy's result dtype.

    Raises
    ------
    TypeError
        Complex or non-numeric inputs.

    See Also
    --------
    expit

    Notes
    -----
    ``-log1p(exp(-x))``, or ``x - log1p(exp(x))`` for ``x < 0``. Computed in float64 and rounded once to the result dtype (NumPy's ufunc promotion).

    Examples
    --------
    >>> import numpy as np
    >>> import fastloss.scipy as special
    >>> special.log_expit(np.array([-1000.0]))
    array([-1000.])
    """
    res = _xp_call(_log_expit_numpy, (x,), out=out, dtype=dtype)
    return res if res is not None else _ufunc_container(_log_expit_numpy(x, out, dtype), (x,), out)


def _log_expit_numpy(x, out=None, dtype=None):
    """``log_expit`` on NumPy inputs."""
    x = _real(x, "log_expit")
    dt = _loop_dtype("log_expit", dtype, _ufunc_dtype(x), _WITH_LONG)
    x64 = x.astype(np.longdouble if dt == np.longdouble else np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        r = np.where(x64 < 0, x64 - np.log1p(np.exp(np.minimum(x64, 0))),
                     -np.log1p(np.exp(-np.maximum(x64, 0))))
    return _finish(r, dt, out)


def _elementwise(op, name, x, y, out, dtype=None):
    """One of the contract's element-wise kernels on broadcast inputs (array-API inputs
    come back in their namespace)."""
    res = _xp_call(_elementwise_numpy, (x, y), op=op, name=name, out=out, dtype=dtype)
    if res is not None:
        return res
    return _ufunc_container(_elementwise_numpy(x, y, op, name, out, dtype), (x, y), out)


def _elementwise_numpy(x, y, op, name, out=None, dtype=None):
    """The element-wise kernel on NumPy inputs, broadcast and made contiguous."""
    x, y = _real(x, name, complex_ok=op == EW_XLOGY), _real(y, name, complex_ok=op == EW_XLOGY)
    if x.dtype.kind == "c" or y.dtype.kind == "c":
        return _finish(_xlogy_complex(x, y), np.dtype(np.complex128), out)
    dt = _loop_dtype(name, dtype, _ufunc_dtype(x, y))
    if dt == np.longdouble:
        dt = np.dtype(np.float64)
    xb, yb = np.broadcast_arrays(x, y)
    shape = xb.shape
    xf = np.ascontiguousarray(xb, dtype=dt).reshape(-1)  # copies only to broadcast / cast
    yf = np.ascontiguousarray(yb, dtype=dt).reshape(-1)
    res = np.empty(xf.shape[0], dt)
    _, kern = resolve_backend(None)
    kern.elementwise(op, xf, yf, res, resolve_threads(None))
    res = res.reshape(shape)
    if out is not None:
        out[...] = res
        return out
    return res[()] if res.ndim == 0 else res


def _xlogy_complex(x, y):
    """SciPy's complex ``xlogy`` (its 'DD->D' loop): 0 where ``x == 0`` and ``y`` is not
    NaN, else ``x * log(y)``; NumPy's complex log, not a fastloss kernel."""
    x = x.astype(np.complex128)
    y = y.astype(np.complex128)
    with np.errstate(all="ignore"):
        r = x * np.log(y)
    return np.where((x == 0) & ~np.isnan(y), 0j, r)


@fill
def xlogy(x, y, out=None, *, dtype=None):
    r"""``scipy.special.xlogy``: ``x * log(y)``, 0 where ``x == 0`` (unless ``y`` is NaN).

    Parameters
    ----------
    x, y : array_like
        Inputs, broadcast together.
    %(scipy_out)s
    dtype : dtype, optional
        The loop's result dtype, as the ufunc keyword (``TypeError`` for a dtype the
        function has no loop for).

    Returns
    -------
    ndarray or scalar
        SciPy's result dtype.

    Raises
    ------
    TypeError
        Complex or non-numeric inputs.

    See Also
    --------
    rel_entr, kl_div

    Notes
    -----
    By the backends' element-wise kernel. Computed in float64 and rounded once to the result dtype (NumPy's ufunc promotion).

    Examples
    --------
    >>> import numpy as np
    >>> import fastloss.scipy as special
    >>> special.xlogy(np.array([0.0, 2.0]), np.array([0.0, np.e]))
    array([0., 2.])
    """
    return _elementwise(EW_XLOGY, "xlogy", x, y, out, dtype)


@fill
def entr(x, out=None, *, dtype=None):
    r"""``scipy.special.entr``: element-wise ``-x * log(x)``, 0 at 0, ``-inf`` for ``x < 0``.

    Parameters
    ----------
    x : array_like
        Input.
    %(scipy_out)s

    Returns
    -------
    ndarray or scalar
        SciPy's result dtype (float32 for float16/float32 and small integers, as its
        ``'f->f'`` loop comes first).

    Raises
    ------
    TypeError
        Complex or non-numeric inputs.

    See Also
    --------
    xlogy, rel_entr

    Notes
    -----
    ``-xlogy(x, x)`` by the backends' element-wise kernel.

    Examples
    --------
    >>> import numpy as np
    >>> import fastloss.scipy as special
    >>> special.entr(np.array([0.0, 1.0, -1.0]))
    array([ 0., -0., -inf])
    """
    res = _xp_call(_entr_numpy, (x,), out=out, dtype=dtype)
    return res if res is not None else _ufunc_container(_entr_numpy(x, out, dtype), (x,), out)


def _entr_numpy(x, out=None, dtype=None):
    """``entr`` on NumPy inputs."""
    x = _real(x, "entr")
    loop = np.float32 if np.can_cast(x.dtype, np.float32) else np.float64
    dt = _loop_dtype("entr", dtype, np.dtype(loop))
    v = _elementwise_numpy(x, x, EW_XLOGY, "entr", dtype=dt)
    with np.errstate(invalid="ignore"):
        # SciPy: +0 at 0 (-xlogy(0, 0) would be -0)
        r = np.where(x < 0, dt.type(-np.inf), np.where(x == 0, dt.type(0), -np.asarray(v)))
        r = np.where(np.isnan(x), dt.type(np.nan), r)  # SciPy's NaN, not its negation
    return _finish(r, dt, out)


@fill
def rel_entr(x, y, out=None, *, dtype=None):
    r"""``scipy.special.rel_entr``: element-wise ``x * log(x / y)``; summed, the KL divergence.

    Parameters
    ----------
    x, y : array_like
        Inputs, broadcast together.
    %(scipy_out)s
    dtype : dtype, optional
        The loop's result dtype, as the ufunc keyword (``TypeError`` for a dtype the
        function has no loop for).

    Returns
    -------
    ndarray or scalar
        SciPy's result dtype (``inf`` where SciPy gives it).

    Raises
    ------
    TypeError
        Complex or non-numeric inputs.

    See Also
    --------
    kl_div, fastloss.kl_divergence

    Notes
    -----
    By the backends' element-wise kernel. Computed in float64 and rounded once to the result dtype (NumPy's ufunc promotion).

    Examples
    --------
    >>> import numpy as np
    >>> import fastloss.scipy as special
    >>> special.rel_entr(np.array([0.5, 0.0]), np.array([0.25, 0.5]))
    array([0.34657359, 0.        ])
    """
    return _elementwise(EW_REL_ENTR, "rel_entr", x, y, out, dtype)


@fill
def kl_div(x, y, out=None, *, dtype=None):
    r"""``scipy.special.kl_div``: element-wise ``x * log(x / y) - x + y`` (``y`` where ``x == 0``).

    Parameters
    ----------
    x, y : array_like
        Inputs, broadcast together.
    %(scipy_out)s
    dtype : dtype, optional
        The loop's result dtype, as the ufunc keyword (``TypeError`` for a dtype the
        function has no loop for).

    Returns
    -------
    ndarray or scalar
        SciPy's result dtype.

    Raises
    ------
    TypeError
        Complex or non-numeric inputs.

    See Also
    --------
    rel_entr

    Notes
    -----
    By the backends' element-wise kernel. Computed in float64 and rounded once to the result dtype (NumPy's ufunc promotion).

    Examples
    --------
    >>> import numpy as np
    >>> import fastloss.scipy as special
    >>> special.kl_div(np.array([0.0]), np.array([0.5]))
    array([0.5])
    """
    return _elementwise(EW_KL_DIV, "kl_div", x, y, out, dtype)
