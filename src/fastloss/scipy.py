"""Drop-in for the ``scipy.special`` functions used to build losses, on NumPy arrays.

``from fastloss import scipy as special`` in place of ``from scipy import special``:
``logsumexp(a, axis=None, b=None, keepdims=False, return_sign=False)``,
``softmax(x, axis=None)``, ``log_softmax(x, axis=None)``, ``expit``, ``log_expit``,
``xlogy``, ``rel_entr``, ``kl_div``, with SciPy's argument names, defaults
(``axis=None`` reduces over *all* elements) and edge cases. SciPy is not imported.

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
3. Complex inputs are not supported (``TypeError``); ``where=``/``casting=``
   ufunc keywords are not accepted.
"""

import numpy as np

import fastloss.losses.log_sum_exp as _lse
from fastloss.losses._docs import fill
from fastloss._dispatch import resolve_backend, resolve_threads
from fastloss.losses.log_sum_exp import fast_logsumexp as _fast_lse  # compiled (#16)
from fastloss.kernels import EW_KL_DIV, EW_REL_ENTR, EW_XLOGY

__all__ = ["expit", "kl_div", "log_expit", "log_softmax", "logsumexp", "rel_entr", "softmax",
           "xlogy"]


def _real(a, name):
    arr = np.asarray(a)
    if arr.dtype.kind == "c":
        raise TypeError(f"{name}: complex inputs are not supported by fastloss.scipy")
    if arr.dtype.kind not in "biuf":
        arr = arr.astype(np.float64)
    return arr


def _ufunc_dtype(*arrays):
    """The loop a float32/float64 SciPy ufunc picks for these inputs."""
    # SciPy's type resolution picks the float32 loop only when every input is float32
    return np.dtype(np.float32) if all(a.dtype == np.float32 for a in arrays) else \
        np.dtype(np.float64)


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
    if dt.kind != "f":
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
    if b is None and return_sign is False:
        res = _fast_lse(a, axis=axis, keepdims=keepdims)
        if res is not None:  # the plain call, compiled: the same bits as below
            return res
    a = _real(a, "logsumexp")
    bb = None if b is None else _real(b, "logsumexp")
    dt = _promoted(a, bb)
    a = a.astype(dt, copy=False)
    if a.ndim == 0:
        a = a.reshape(1)
        if bb is not None:
            bb = np.asarray(bb).reshape(1) if bb.ndim == 0 else bb
    if bb is not None:
        a, bb = np.broadcast_arrays(a, bb.astype(dt, copy=False))
    axes = tuple(range(a.ndim)) if axis is None else (
        tuple(axis) if isinstance(axis, (tuple, list)) else (axis,))
    axes = tuple(sorted(ax % a.ndim for ax in axes))
    if bb is None:
        res = np.asarray(_lse.logsumexp(a, axis=axes, keepdims=True))
        sign = np.where(np.isnan(res), np.nan, np.where(res == -np.inf, 0.0, 1.0))
    else:
        res, sign = _logsumexp_b(a, bb, axes)
    res = res.astype(dt)
    sign = sign.astype(dt)
    if a.size == 0:  # SciPy: a full -inf result with sign(-inf) = -1
        sign = np.full_like(sign, -1)
    if not return_sign:
        res = np.where(sign < 0, dt.type(np.nan), res)
    if not keepdims:
        res = np.squeeze(res, axis=axes)
        sign = np.squeeze(sign, axis=axes)
    res = res[()] if res.ndim == 0 else res
    sign = sign[()] if sign.ndim == 0 else sign
    return (res, sign) if return_sign else res


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
    axis : int or None, default None
        The axis normalised (``None``: all elements).

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
    x = _real(x, "softmax")
    dt = _promoted(x, None)
    res = _lse.softmax(x.astype(dt, copy=False), axis=axis)
    return res[()] if np.ndim(res) == 0 else res


def log_softmax(x, axis=None):
    r"""``scipy.special.log_softmax``: ``x - logsumexp(x, axis)``, SciPy's non-finite rows.

    Parameters
    ----------
    x : array_like
        Input.
    axis : int or None, default None
        The axis normalised (``None``: all elements).

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
    x = _real(x, "log_softmax")
    dt = _promoted(x, None)
    x = x.astype(dt, copy=False)
    res = np.asarray(_lse.log_softmax(x, axis=axis))
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
def expit(x, out=None):
    r"""``scipy.special.expit``: the logistic sigmoid ``1 / (1 + exp(-x))``.

    Parameters
    ----------
    x : array_like
        Input.
    %(scipy_out)s

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
    x = _real(x, "expit")
    r = np.array(x, dtype=np.float64)  # a copy, 0-d stays an array
    np.negative(r, out=r)
    with np.errstate(over="ignore"):
        np.exp(r, out=r)  # SciPy's 1 / (1 + exp(-x)); exp overflow gives exactly 0
    r += 1.0
    np.reciprocal(r, out=r)
    return _finish(r, _ufunc_dtype(x), out)


@fill
def log_expit(x, out=None):
    r"""``scipy.special.log_expit``: ``log(expit(x))`` without underflow.

    Parameters
    ----------
    x : array_like
        Input.
    %(scipy_out)s

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
    x = _real(x, "log_expit")
    x64 = x.astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        r = np.where(x64 < 0, x64 - np.log1p(np.exp(np.minimum(x64, 0.0))),
                     -np.log1p(np.exp(-np.maximum(x64, 0.0))))
    return _finish(r, _ufunc_dtype(x), out)


def _elementwise(op, name, x, y, out):
    """One of the contract's element-wise kernels on broadcast, contiguous inputs."""
    x, y = _real(x, name), _real(y, name)
    dt = _ufunc_dtype(x, y)
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


@fill
def xlogy(x, y, out=None):
    r"""``scipy.special.xlogy``: ``x * log(y)``, 0 where ``x == 0`` (unless ``y`` is NaN).

    Parameters
    ----------
    x, y : array_like
        Inputs, broadcast together.
    %(scipy_out)s

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
    return _elementwise(EW_XLOGY, "xlogy", x, y, out)


@fill
def rel_entr(x, y, out=None):
    r"""``scipy.special.rel_entr``: element-wise ``x * log(x / y)``; summed, the KL divergence.

    Parameters
    ----------
    x, y : array_like
        Inputs, broadcast together.
    %(scipy_out)s

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
    return _elementwise(EW_REL_ENTR, "rel_entr", x, y, out)


@fill
def kl_div(x, y, out=None):
    r"""``scipy.special.kl_div``: element-wise ``x * log(x / y) - x + y`` (``y`` where ``x == 0``).

    Parameters
    ----------
    x, y : array_like
        Inputs, broadcast together.
    %(scipy_out)s

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
    return _elementwise(EW_KL_DIV, "kl_div", x, y, out)
