"""Log-sum-exp, softmax and log-softmax along any axis, by the backends' row kernels."""

import numpy as np

from fastloss._dispatch import resolve_backend, resolve_threads, run_fast
from fastloss._half import compute_dtype, is_half
from fastloss._validation import as_float_array, check_axis
from fastloss.losses._docs import fill
from fastloss.losses._run import EMPTY, contiguous_rows, run_chunks

__all__ = ["log_softmax", "logsumexp", "softmax"]


@fill
def logsumexp(a, axis=None, b=None, keepdims=False, return_sign=False, *, backend=None,
              n_threads=None):
    r"""Log of the sum of exponentials, ``log(sum(b * exp(a)))``, computed stably.

    The result is ``m + log1p(sum_{j != argmax} exp(a_j - m))`` with ``m`` the maximum, so
    ``logsumexp([0, -40])`` keeps its ``4.2e-18``. SciPy's semantics: ``axis=None`` reduces
    every element, ``axis`` may be a tuple, ``b`` scales each term (a zero ``b`` masks its
    entry; a negative sum is NaN unless ``return_sign=True``).

    Parameters
    ----------
    a : array_like of float
        Input; float32/64 keep their dtype, float16 and bfloat16 give float32, integers
        float64.
    axis : None, int or tuple of int, default None
        Axes to reduce.
    b : array_like, optional
        Scale factors, broadcast to ``a``'s shape (computed in float64 with NumPy).
    keepdims : bool, default False
        Keep the reduced axes with length 1.
    return_sign : bool, default False
        Also return the sign of the sum (``0`` for an empty sum).
    %(backend)s

    Returns
    -------
    res : ndarray or scalar
        ``log|sum|``, ``a``'s float dtype.
    sign : ndarray or scalar
        Only with ``return_sign=True``.

    Raises
    ------
    ValueError
        An axis out of range or repeated, ``b`` that does not broadcast, ``n_threads < 1``.
    TypeError
        Non-numeric ``a`` or ``b``.

    See Also
    --------
    softmax, log_softmax, scipy.special.logsumexp, torch.logsumexp

    Notes
    -----
    Rows of all ``-inf`` give ``-inf``, any ``+inf`` gives ``+inf``, NaN propagates. Each
    row is computed in float64 by one kernel call and rounded once; the result does not
    depend on ``n_threads``.

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> float(fastloss.logsumexp(np.array([1000.0, 1000.0])))  # naive: inf
    1000.6931471805599
    >>> fastloss.logsumexp(np.array([[0.0, 0.0], [1.0, -np.inf]]), axis=1)
    array([0.69314718, 1.        ])
    """
    res = fast_logsumexp(a, axis=axis, b=b, keepdims=keepdims, return_sign=return_sign,
                         backend=backend, n_threads=n_threads)
    if res is not None:  # the compiled fast path: last axis or all, no b (same bits)
        return res
    x, rdt = as_float_array(a, "a", keep_half=b is None)  # b's path computes in float64
    nt = resolve_threads(n_threads)
    x, axes, squeeze_all = _axes(x, axis)
    keep = [i for i in range(x.ndim) if i not in axes]
    moved = np.transpose(x, keep + list(axes))
    outer = moved.shape[:len(keep)]
    k = int(np.prod(moved.shape[len(keep):]))
    n_out = int(np.prod(outer))
    kern = resolve_backend(backend)[1]
    if b is not None:
        res, sign = _logsumexp_b(moved, outer, n_out, k, b, x, axes, keep)
    else:
        res, sign = _logsumexp_rows(kern, nt, moved, outer, n_out, k)
    if not return_sign:
        res = np.where(sign < 0, np.nan, res).astype(rdt)  # log of a negative sum: NaN
    if keepdims and not squeeze_all:
        shape = [1 if i in axes else s for i, s in enumerate(x.shape)]
        res, sign = res.reshape(shape), sign.reshape(shape)
    res = res.astype(rdt, copy=False)
    if squeeze_all or res.ndim == 0:
        res, sign = rdt.type(res.reshape(())), rdt.type(np.asarray(sign).reshape(()))
    return (res, sign.astype(rdt) if hasattr(sign, "astype") else sign) if return_sign else res


def fast_logsumexp(a, *, axis=None, b=None, keepdims=False, return_sign=False, backend=None,
                   n_threads=None):
    """:func:`logsumexp` by the compiled fast path (last axis or all, no ``b``), or None when
    it declines (then the general path validates and raises)."""
    return run_fast(backend, "fast_logsumexp", a, axis, b, keepdims, return_sign, n_threads)


def _axes(x, axis):
    """``(x, sorted reduced axes, squeeze_all)``; a 0-d ``x`` becomes 1-d (SciPy's rule)."""
    if x.ndim == 0:
        return x.reshape(1), (0,), True
    if axis is None:
        return x, tuple(range(x.ndim)), False
    ax = axis if isinstance(axis, tuple) else (axis,)
    axes = tuple(sorted({check_axis(i, x.ndim, "a", x.shape) for i in ax}))
    if len(axes) != len(ax):
        raise ValueError(f"axis={axis!r} repeats an axis")
    return x, axes, False


def _logsumexp_rows(kern, nt, moved, outer, n_out, k):
    """Unweighted log-sum-exp by the backend's row kernel, and SciPy's sign."""
    x2 = _as_rows(moved, n_out, k)
    out = np.empty(n_out, dtype=compute_dtype(moved.dtype))
    if k == 0:
        out[:] = -np.inf
    elif n_out:
        _run_rows(kern, "logsumexp_rows", x2, out, nt)
    res = out.reshape(outer)
    # SciPy: the sign of an empty sum (all -inf) is 0, NaN stays NaN
    sign = np.where(np.isnan(res), np.nan, np.where(res == -np.inf, 0.0, 1.0)).astype(out.dtype)
    return res, sign


def _as_rows(moved, n_rows, k):
    """``moved`` as ``(n_rows, k)`` rows: C-contiguous, or a view when it is half precision
    (widened chunk by chunk by :func:`_run_rows`, no full-size copy)."""
    if is_half(moved.dtype):
        try:
            return np.reshape(moved, (n_rows, k), copy=False)
        except ValueError:  # no 2-D view: one half-precision copy
            return np.ascontiguousarray(moved).reshape(n_rows, k)
    return np.ascontiguousarray(moved).reshape(n_rows, k)


def _run_rows(kern, name, x2, out, *args):
    """``kern.<name>(x2, out, *args)``; a half-precision ``x2`` goes as it is to a backend
    that widens it in the kernel (``name`` in its ``HALF_NATIVE``, C-contiguous rows), else
    over chunks of rows widened to float32."""
    row_kernel = getattr(kern, name)
    if not is_half(x2.dtype) or (name in getattr(kern, "HALF_NATIVE", ())
                                 and x2.flags.c_contiguous):
        row_kernel(x2, out, *args)
        return

    def call(a, b, o, _lp, _wp):
        row_kernel(contiguous_rows(x2, a, b), o, *args)

    run_chunks(call, x2.shape[0], x2.shape[1], 1, False, [out], EMPTY, EMPTY, half=True)


def _logsumexp_b(moved, outer, n_out, k, b, x, axes, keep):
    """Weighted log-sum-exp with SciPy's handling of ``b`` (NumPy, float64 inside)."""
    bb = np.asarray(b)
    if bb.dtype.kind not in "fiub":
        raise TypeError(f"b must be a real numeric array, got dtype {bb.dtype}")
    try:
        bb = np.broadcast_to(bb, x.shape)
    except ValueError:
        raise ValueError(f"b has shape {np.asarray(b).shape}, which does not broadcast to "
                         f"a's shape {x.shape}") from None
    bm = np.transpose(bb, keep + list(axes)).reshape(n_out, k).astype(np.float64)
    a2 = moved.reshape(n_out, k).astype(np.float64)
    with np.errstate(all="ignore"):
        a2 = np.where(bm == 0, -np.inf, a2)  # a zero scale masks even inf/NaN entries
        m = np.max(a2, axis=1) if k else np.full(n_out, -np.inf)
        at_max = a2 == m[:, None]
        coef = np.sum(bm * at_max, axis=1)  # the max terms, kept out of the sum (SciPy)
        shift = np.where(np.isfinite(m), m, 0.0)
        rest = np.sum(bm * np.exp(np.where(at_max, -np.inf, a2) - shift[:, None]), axis=1)
        rest = np.where(rest == 0, rest, rest / coef)
        sign = np.sign(rest + 1) * np.sign(coef)
        rest = np.where(rest < -1, -rest - 2, rest)
        res = np.log1p(rest) + np.log(np.abs(coef)) + m
        sign = np.where(res == -np.inf, 0.0, sign)  # an empty (zero) sum has sign 0
    return res.astype(x.dtype).reshape(outer), sign.astype(x.dtype).reshape(outer)


def _softmax_impl(x, axis, log, backend, n_threads):
    xf, rdt = as_float_array(x, "x", keep_half=True)
    nt = resolve_threads(n_threads)
    kern = resolve_backend(backend)[1]
    if xf.ndim == 0:
        xf = xf.reshape(1)
        scalar = True
    else:
        scalar = False
    if axis is None:
        rows = _as_rows(xf, 1, xf.size)
        out = np.empty(rows.shape, dtype=rdt)
        if rows.size:
            _run_rows(kern, "softmax_rows", rows, out, log, nt)
        res = out.reshape(xf.shape)
    else:
        ax = check_axis(axis, xf.ndim, "x", xf.shape)
        moved = np.moveaxis(xf, ax, -1)
        rows = _as_rows(moved, -1, moved.shape[-1])
        out = np.empty(rows.shape, dtype=rdt)
        if rows.size:
            _run_rows(kern, "softmax_rows", rows, out, log, nt)
        res = np.moveaxis(out.reshape(moved.shape), -1, ax)
    res = res.astype(rdt, copy=False)
    return res.reshape(()) if scalar else res


@fill
def softmax(x, axis=-1, *, backend=None, n_threads=None):
    r"""Softmax ``exp(x - logsumexp(x, axis))``: probabilities along ``axis``.

    Parameters
    ----------
    x : array_like of float
        Input; float32/64 keep their dtype, float16 and bfloat16 give float32, integers
        float64.
    axis : int or None, default -1
        The axis normalised (``None``: all elements together).
    %(backend)s

    Returns
    -------
    ndarray
        ``x``'s shape and float dtype.

    Raises
    ------
    ValueError
        An axis out of range or ``n_threads < 1``.

    See Also
    --------
    log_softmax, logsumexp, scipy.special.softmax, torch.softmax

    Notes
    -----
    Rows holding ``+inf`` or of all ``-inf`` give NaN, as in SciPy. Each row is computed in
    float64 and rounded once; the result does not depend on ``n_threads``.

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> fastloss.softmax(np.array([0.0, np.log(3.0)]))
    array([0.25, 0.75])
    """
    return _softmax_impl(x, axis, False, backend, n_threads)


@fill
def log_softmax(x, axis=-1, *, backend=None, n_threads=None):
    r"""Log-softmax ``x - logsumexp(x, axis)``, computed stably (never ``log(softmax(x))``).

    Parameters
    ----------
    x : array_like of float
        Input; float32/64 keep their dtype, float16 and bfloat16 give float32, integers
        float64.
    axis : int or None, default -1
        The axis normalised (``None``: all elements together).
    %(backend)s

    Returns
    -------
    ndarray
        ``x``'s shape and float dtype.

    Raises
    ------
    ValueError
        An axis out of range or ``n_threads < 1``.

    See Also
    --------
    softmax, logsumexp, scipy.special.log_softmax, torch.log_softmax

    Notes
    -----
    Each row is computed in float64 and rounded once; the result does not depend on
    ``n_threads``. Very negative entries stay finite where ``log(softmax(x))`` gives ``-inf``.

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> fastloss.log_softmax(np.array([0.0, -800.0]))
    array([   0., -800.])
    """
    return _softmax_impl(x, axis, True, backend, n_threads)
