"""Log-sum-exp, softmax and log-softmax along any axis, by the backends' row kernels."""

import numpy as np

from fastloss._dispatch import resolve_backend, resolve_threads
from fastloss._validation import as_float_array, check_axis

__all__ = ["log_softmax", "logsumexp", "softmax"]


def logsumexp(a, axis=None, b=None, keepdims=False, return_sign=False, *, backend=None,
              n_threads=None):
    r"""Log of the sum of exponentials, ``log(sum(b * exp(a)))``, computed stably.

    SciPy semantics (:func:`scipy.special.logsumexp`): ``axis=None`` reduces every
    element, ``axis`` may be a tuple, ``b`` scales (and may be negative, with
    ``return_sign=True`` giving ``(log|s|, sign)``), a zero ``b`` masks its entry.

    The result is ``m + log1p(sum_{j != argmax} exp(a_j - m))`` with ``m`` the max,
    so ``logsumexp([0, -40])`` keeps its ``4.2e-18``; rows of all ``-inf`` give
    ``-inf``, any ``+inf`` gives ``+inf`` and NaN propagates. float32 in, float32 out.

    See Also: ``scipy.special.logsumexp``, ``torch.logsumexp``, ``tf.reduce_logsumexp``.

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> float(fastloss.logsumexp(np.array([1000.0, 1000.0])))  # naive: inf
    1000.6931471805599
    """
    x, rdt = as_float_array(a, "a")
    nt = resolve_threads(n_threads)
    if x.ndim == 0:
        x = x.reshape(1)
        axes = (0,)
        squeeze_all = True
    else:
        squeeze_all = False
        if axis is None:
            axes = tuple(range(x.ndim))
        else:
            ax = axis if isinstance(axis, tuple) else (axis,)
            axes = tuple(sorted({check_axis(i, x.ndim, "a", x.shape) for i in ax}))
            if len(axes) != len(ax):
                raise ValueError(f"axis={axis!r} repeats an axis")
    keep = [i for i in range(x.ndim) if i not in axes]
    moved = np.transpose(x, keep + list(axes))
    outer = moved.shape[:len(keep)]
    k = int(np.prod(moved.shape[len(keep):]))
    n_out = int(np.prod(outer))
    kern = resolve_backend(backend)[1]
    if b is not None:
        res, sign = _logsumexp_b(moved, outer, n_out, k, b, x, axes, keep)
    else:
        x2 = np.ascontiguousarray(moved).reshape(n_out, k)
        out = np.empty(n_out, dtype=x.dtype)
        if k == 0:
            out[:] = -np.inf
        elif n_out:
            kern.logsumexp_rows(x2, out, nt)
        res = out.reshape(outer)
        # SciPy: the sign of an empty sum (all -inf) is 0, NaN stays NaN
        sign = np.where(np.isnan(res), np.nan, np.where(res == -np.inf, 0.0, 1.0)).astype(x.dtype)
    if not return_sign:
        res = np.where(sign < 0, np.nan, res).astype(x.dtype)  # log of a negative sum: NaN
    if keepdims and not squeeze_all:
        shape = list(x.shape)
        for i in axes:
            shape[i] = 1
        res = res.reshape(shape)
        sign = sign.reshape(shape)
    res = res.astype(rdt, copy=False)
    if squeeze_all or res.ndim == 0:
        res, sign = rdt.type(res.reshape(())), rdt.type(np.asarray(sign).reshape(()))
    return (res, sign.astype(rdt) if hasattr(sign, "astype") else sign) if return_sign else res


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
    xf, rdt = as_float_array(x, "x")
    nt = resolve_threads(n_threads)
    kern = resolve_backend(backend)[1]
    if xf.ndim == 0:
        xf = xf.reshape(1)
        scalar = True
    else:
        scalar = False
    if axis is None:
        rows = xf.reshape(1, -1)
        out = np.empty_like(rows, dtype=xf.dtype, order="C")
        if rows.size:
            kern.softmax_rows(np.ascontiguousarray(rows), out, log, nt)
        res = out.reshape(xf.shape)
    else:
        ax = check_axis(axis, xf.ndim, "x", xf.shape)
        moved = np.ascontiguousarray(np.moveaxis(xf, ax, -1))
        rows = moved.reshape(-1, moved.shape[-1])
        out = np.empty_like(rows)
        if rows.size:
            kern.softmax_rows(rows, out, log, nt)
        res = np.moveaxis(out.reshape(moved.shape), -1, ax)
    res = res.astype(rdt, copy=False)
    return res.reshape(()) if scalar else res


def softmax(x, axis=-1, *, backend=None, n_threads=None):
    r"""``exp(x - logsumexp(x, axis))``: probabilities along ``axis`` (``None``: all).

    Rows with a ``+inf`` or of all ``-inf`` give NaN, like SciPy.
    See Also: ``scipy.special.softmax``, ``torch.softmax``, ``keras.ops.softmax``.
    """
    return _softmax_impl(x, axis, False, backend, n_threads)


def log_softmax(x, axis=-1, *, backend=None, n_threads=None):
    r"""``x - logsumexp(x, axis)`` computed stably (never ``log(softmax(x))``).

    See Also: ``scipy.special.log_softmax``, ``torch.log_softmax``, ``tf.nn.log_softmax``.
    """
    return _softmax_impl(x, axis, True, backend, n_threads)
