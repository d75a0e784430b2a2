"""The public loss functions: validate, convert, dispatch to a backend, reduce."""

import numpy as np

from fastloss._dispatch import resolve_backend, resolve_threads
from fastloss.losses._run import EMPTY, contiguous_rows, finish, run_kernel
from fastloss._validation import (
    as_float_array,
    as_like,
    check_axis,
    check_fraction,
    check_labels,
    check_nan_policy,
    check_reduction,
    check_same_shape,
    check_threads,
    check_unit_interval,
    check_weights,
    first_nan,
    resolve_clip,
)
from fastloss.kernels import block_rows_for

__all__ = [
    "binary_cross_entropy",
    "categorical_cross_entropy",
    "kl_divergence",
    "log_softmax",
    "logsumexp",
    "mean_squared_error",
    "softmax",
    "sparse_categorical_cross_entropy",
]


class _Rows:
    """``y_pred`` with its class axis last, as 2-D rows (a view whenever possible)."""

    def __init__(self, x, axis, name="y_pred"):
        if x.ndim == 0:
            raise ValueError(f"{name} must have a class axis; got a 0-d array")
        ax = check_axis(axis, x.ndim, name, x.shape)
        moved = x if ax == x.ndim - 1 else np.moveaxis(x, ax, -1)
        self.axis = ax
        self.batch_shape = moved.shape[:-1]
        self.n_cols = moved.shape[-1]
        if self.n_cols == 0:
            raise ValueError(f"{name} has no classes along axis {axis} (shape {x.shape})")
        try:
            self.x2 = np.reshape(moved, (-1, self.n_cols), copy=False)
        except ValueError:  # N-d layouts with no 2-D view: one contiguous copy
            self.x2 = np.ascontiguousarray(moved).reshape(-1, self.n_cols)
        self.n_rows = self.x2.shape[0]

    def partner(self, t):
        """A same-shaped array (targets) arranged like ``y_pred``."""
        moved = t if self.axis == t.ndim - 1 else np.moveaxis(t, self.axis, -1)
        try:
            return np.reshape(moved, (-1, self.n_cols), copy=False)
        except ValueError:
            return np.ascontiguousarray(moved).reshape(-1, self.n_cols)


def _common(reduction, nan_policy, n_threads, backend):
    check_reduction(reduction)
    check_nan_policy(nan_policy)
    check_threads(n_threads)
    name, kern = resolve_backend(backend)
    return kern, resolve_threads(n_threads)


def _raise_on_nan(nan_policy, named):
    if nan_policy == "raise":
        hit = first_nan(named)
        if hit is not None:
            raise ValueError(f"{hit[0]}{list(hit[1])} is NaN and nan_policy='raise'")


def _sample_weight(sample_weight, batch_shape):
    sw, _ = check_weights(sample_weight, "sample_weight", batch_shape)
    return EMPTY if sw is None else sw.reshape(-1)


def _result(res, reduction, result_dtype, batch_shape):
    out = finish(res, reduction, result_dtype if reduction != "none" else res.dtype, batch_shape)
    if reduction == "none" and out.dtype != result_dtype:
        out = out.astype(result_dtype)
    return out


# --------------------------------------------------------------------------- log-sum-exp


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
    check_threads(n_threads)
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
    kern, nt = _common("none", "propagate", n_threads, backend)
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
    check_threads(n_threads)
    kern, nt = _common("none", "propagate", n_threads, backend)
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


# --------------------------------------------------------------------------- losses
#
# Each loss has one ``_<loss>_job`` that validates and converts its inputs once and
# returns a ``_Job``: the forward kernel call, and (on logits) the fused gradient
# call. The public loss functions run the forward call; ``fastloss.<loss>_grad``
# (``_grad.py``) runs the gradient call on the same job.


class _Job:
    """A validated loss evaluation, ready to run on a backend.

    ``call(a, b, out, lp, wp, block_rows=self.block_rows)`` runs the forward kernel on
    kernel rows ``[a, b)`` (flat elements for binary cross-entropy) with any block size:
    the public functions run it over all rows, :class:`fastloss.LossAccumulator` over
    sub-ranges with ``block_rows=1`` for partial blocks. ``weights()`` gives the float64
    per-row weights ``w_i`` (``None``: all 1), ``weighted`` is False when they are all 1.
    """

    def __init__(self, *, kern, nt, x, rdt, n_rows, width, block_rows, contiguous, batch_shape,
                 call, grad_call=None, weights=None, rows=None, weighted=True):
        self.kern, self.nt, self.x, self.rdt = kern, nt, x, rdt
        self.n_rows, self.width, self.block_rows = n_rows, width, block_rows
        self.contiguous, self.batch_shape = contiguous, batch_shape
        self.call, self.grad_call = call, grad_call
        self.weights = weights  # () -> float64 per-row weights (for the mean's scale)
        self.rows = rows  # _Rows for losses with a class axis, None for element-wise
        self.weighted = weighted

    def run(self, reduction):
        res = run_kernel(self.call, self.n_rows, self.width, self.block_rows, reduction,
                         self.x.dtype, self.contiguous)
        return _result(res, reduction, self.rdt, self.batch_shape)


def _row_weights(n, sw, factor=None):
    w = sw.copy() if sw.size else np.ones(n)
    return w if factor is None else w * factor


def _sparse_job(y_true, y_pred, from_logits, axis, ignore_index, class_weight, label_smoothing,
                z_loss, sample_weight, clip, reduction, nan_policy, backend, n_threads,
                check=True):
    kern, nt = _common(reduction, nan_policy, n_threads, backend)
    x, rdt = as_float_array(y_pred, "y_pred")
    rows = _Rows(x, axis)
    C = rows.n_cols
    if ignore_index is not None and (isinstance(ignore_index, bool)
                                     or not isinstance(ignore_index, (int, np.integer))):
        raise TypeError(f"ignore_index must be an integer or None, got {ignore_index!r}")
    if (not check and isinstance(y_true, np.ndarray) and y_true.dtype == np.int64
            and y_true.shape == rows.batch_shape and y_true.flags.c_contiguous):
        y = y_true  # already checked by the caller (fastloss.evaluate)
    else:
        y = check_labels(y_true, "y_true", rows.batch_shape, C, ignore_index)
    cw, _ = check_weights(class_weight, "class_weight", (C,), allow_scalar=False)
    sw = _sample_weight(sample_weight, rows.batch_shape)
    ls = check_fraction(label_smoothing, "label_smoothing")
    zl = float(z_loss)
    if not (zl >= 0 and np.isfinite(zl)):
        raise ValueError(f"z_loss={z_loss!r} must be finite and non-negative")
    if zl and not from_logits:
        raise ValueError("z_loss needs logits (from_logits=True): it penalises logsumexp(row)**2")
    mode, eps = resolve_clip(clip, x.dtype, from_logits)
    if check and not from_logits:
        check_unit_interval(x, "y_pred", kern, "from_logits=False")
    _raise_on_nan(nan_policy, [("y_pred", x)])
    br = block_rows_for(C)
    cw = EMPTY if cw is None else cw
    x2 = rows.x2
    ii, has_ii, omit = int(ignore_index or 0), ignore_index is not None, nan_policy == "omit"
    fl = bool(from_logits)

    def call(a, b, out, lp, wp, block_rows=br):
        kern.sparse_ce(contiguous_rows(x2, a, b), y[a:b], sw[a:b] if sw.size else sw, cw,
                       fl, ii, has_ii, ls, zl, mode, eps, omit, block_rows, out, lp, wp, nt)

    def grad_call(a, b, g, h, lp, wp, scale):
        kern.sparse_ce_grad(contiguous_rows(x2, a, b), y[a:b], sw[a:b] if sw.size else sw, cw,
                            ii, has_ii, ls, zl, scale, br, lp, wp, g, h, nt)

    def weights():
        ys = np.where(y == ii, 0, y) if has_ii else y
        w = _row_weights(rows.n_rows, sw, cw[ys] if cw.size else None)
        return np.where(y == ii, 0.0, w) if has_ii else w

    return _Job(kern=kern, nt=nt, x=x, rdt=rdt, n_rows=rows.n_rows, width=C, block_rows=br,
                contiguous=x2.flags.c_contiguous, batch_shape=rows.batch_shape, call=call,
                grad_call=grad_call, weights=weights, rows=rows,
                weighted=bool(sw.size or cw.size or has_ii))


def sparse_categorical_cross_entropy(y_true, y_pred, *, from_logits=False, axis=-1,
                                     ignore_index=None, class_weight=None, label_smoothing=0.0,
                                     z_loss=0.0, sample_weight=None, clip=None, reduction="mean",
                                     nan_policy="propagate", backend=None, n_threads=None):
    r"""Cross-entropy against integer class indices.

    Per sample ``i`` with label ``y`` and ``C`` classes:
    ``l_i = (1-ls) * nll_y + ls/C * sum_j nll_j + z_loss * lse**2`` where, on logits,
    ``nll_j = lse - x_j`` computed as ``(m - x_j) + log1p(sum_{k != argmax} exp(x_k - m))``,
    and on probabilities ``nll_j = -log(p_j)`` (``clip`` chooses a framework's
    clipping; ``None`` is exact, ``+inf`` for ``p_y = 0``).
    Weight ``w_i = sample_weight[i] * class_weight[y]``; ``ignore_index`` rows weigh 0.
    ``reduction="none"`` returns ``w_i * l_i`` per sample (class axis removed),
    ``"sum"`` their sum and ``"mean"`` ``sum(w*l) / sum(w)`` (PyTorch's weighted mean).
    Sums are float64 over fixed blocks, identical for any ``n_threads``.

    See Also: ``torch.nn.functional.cross_entropy``,
    ``keras.losses.sparse_categorical_crossentropy``,
    ``optax.softmax_cross_entropy_with_integer_labels``.

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> logits = np.array([[2.0, 1.0, 0.1]])
    >>> round(float(fastloss.sparse_categorical_cross_entropy([0], logits, from_logits=True)), 6)
    0.417030
    """
    return _sparse_job(y_true, y_pred, from_logits, axis, ignore_index, class_weight,
                       label_smoothing, z_loss, sample_weight, clip, reduction, nan_policy,
                       backend, n_threads).run(reduction)


def _categorical_job(y_true, y_pred, from_logits, axis, class_weight, label_smoothing,
                     sample_weight, clip, reduction, nan_policy, backend, n_threads, check=True):
    kern, nt = _common(reduction, nan_policy, n_threads, backend)
    x, rdt = as_float_array(y_pred, "y_pred")
    t = as_like(y_true, "y_true", x.dtype)
    check_same_shape(t, x, "y_true", "y_pred")
    rows = _Rows(x, axis)
    C = rows.n_cols
    t2 = rows.partner(t)
    if check:
        check_unit_interval(t, "y_true", kern, "categorical targets")
    cw, _ = check_weights(class_weight, "class_weight", (C,), allow_scalar=False)
    sw = _sample_weight(sample_weight, rows.batch_shape)
    ls = check_fraction(label_smoothing, "label_smoothing")
    mode, eps = resolve_clip(clip, x.dtype, from_logits)
    if check and not from_logits:
        check_unit_interval(x, "y_pred", kern, "from_logits=False")
    _raise_on_nan(nan_policy, [("y_pred", x), ("y_true", t)])
    br = block_rows_for(C)
    cw = EMPTY if cw is None else cw
    x2 = rows.x2
    omit = nan_policy == "omit"

    def call(a, b, out, lp, wp, block_rows=br):
        kern.categorical_ce(contiguous_rows(x2, a, b), contiguous_rows(t2, a, b),
                            sw[a:b] if sw.size else sw, cw, bool(from_logits), ls, mode, eps,
                            omit, block_rows, out, lp, wp, nt)

    def grad_call(a, b, g, h, lp, wp, scale):
        kern.categorical_ce_grad(contiguous_rows(x2, a, b), contiguous_rows(t2, a, b),
                                 sw[a:b] if sw.size else sw, cw, ls, scale, br, lp, wp, g, h, nt)

    return _Job(kern=kern, nt=nt, x=x, rdt=rdt, n_rows=rows.n_rows, width=2 * C, block_rows=br,
                contiguous=x2.flags.c_contiguous and t2.flags.c_contiguous,
                batch_shape=rows.batch_shape, call=call, grad_call=grad_call,
                weights=lambda: _row_weights(rows.n_rows, sw), rows=rows,
                weighted=bool(sw.size))


def categorical_cross_entropy(y_true, y_pred, *, from_logits=False, axis=-1, class_weight=None,
                              label_smoothing=0.0, sample_weight=None, clip=None, reduction="mean",
                              nan_policy="propagate", backend=None, n_threads=None):
    r"""Cross-entropy against class probabilities (one-hot or soft targets).

    ``l_i = sum_c class_weight[c] * t'_c * nll_c`` with ``t' = (1-ls) * t + ls/C``;
    a zero ``t'_c`` contributes exactly 0 (even where ``p_c = 0``). ``nll`` as in
    :func:`sparse_categorical_cross_entropy`. Weight ``w_i = sample_weight[i]``.
    No renormalisation of ``y_pred`` (Keras renormalises; its drop-in does).

    See Also: ``keras.losses.categorical_crossentropy``, ``torch.nn.functional.cross_entropy``
    with probability targets, ``optax.softmax_cross_entropy``.
    """
    return _categorical_job(y_true, y_pred, from_logits, axis, class_weight, label_smoothing,
                            sample_weight, clip, reduction, nan_policy, backend,
                            n_threads).run(reduction)


def _bce_job(y_true, y_pred, from_logits, pos_weight, label_smoothing, sample_weight, clip,
             reduction, nan_policy, backend, n_threads, check=True):
    kern, nt = _common(reduction, nan_policy, n_threads, backend)
    x, rdt = as_float_array(y_pred, "y_pred")
    z = as_like(y_true, "y_true", x.dtype)
    check_same_shape(z, x, "y_true", "y_pred")
    shape = x.shape
    xf = np.ascontiguousarray(x).reshape(-1)  # one copy only for non-contiguous input
    zf = np.ascontiguousarray(z).reshape(-1)
    if check:
        check_unit_interval(z, "y_true", kern, "binary targets")
        if not from_logits:
            check_unit_interval(x, "y_pred", kern, "from_logits=False")
    ls = check_fraction(label_smoothing, "label_smoothing")
    mode, eps = resolve_clip(clip, x.dtype, from_logits)
    sw, sw_nd = check_weights(sample_weight, "sample_weight", shape, allow_prefix=True)
    if sw is None:
        sw, sw_div = EMPTY, 1
    else:
        sw_div = int(np.prod(shape[sw_nd:])) if sw_nd < len(shape) else 1
        sw = sw.reshape(-1)
    if pos_weight is not None:
        if x.ndim == 0:
            raise ValueError("pos_weight needs y_pred with at least one axis")
        pw, _ = check_weights(pos_weight, "pos_weight", shape[-1:])
        if pw.shape[0] != shape[-1]:
            pw = np.full(shape[-1], float(pw))
        if shape[-1] == 0:
            pw = EMPTY
    else:
        pw = EMPTY
    _raise_on_nan(nan_policy, [("y_pred", x), ("y_true", z)])
    br = block_rows_for(1)
    omit = nan_policy == "omit"

    K = int(shape[-1]) if x.ndim else 1
    fl = bool(from_logits)

    def call(a, b, out, lp, wp, block_rows=br):
        # The kernel indexes weights by i // sw_div and pos_weight by i % K with i
        # counted from the start of the call: shift both to element a.
        if not sw.size or sw_div == 1:
            sws, div = (sw[a:b] if sw.size else sw), 1
        elif a % sw_div == 0:
            sws, div = sw[a // sw_div:-(-b // sw_div)], sw_div
        else:
            r = a % sw_div
            sws, div = np.repeat(sw[a // sw_div:-(-b // sw_div)], sw_div)[r:r + b - a], 1
        pws = np.roll(pw, -(a % K)) if pw.size and a % K else pw
        kern.bce(xf[a:b], zf[a:b], sws, div, pws, fl, ls, mode, eps, omit, block_rows, out, lp,
                 wp, nt)

    def grad_call(a, b, g, h, lp, wp, scale):
        kern.bce_grad(xf, zf, sw, sw_div, pw, ls, scale, br, lp, wp, g, h, nt)

    def weights():  # None: every weight is 1 (no element-sized array of ones)
        return np.repeat(sw, sw_div) if sw.size else None

    return _Job(kern=kern, nt=nt, x=x, rdt=rdt, n_rows=xf.shape[0], width=1, block_rows=br,
                contiguous=True, batch_shape=shape, call=call, grad_call=grad_call,
                weights=weights, weighted=bool(sw.size))


def binary_cross_entropy(y_true, y_pred, *, from_logits=False, pos_weight=None,
                         label_smoothing=0.0, sample_weight=None, clip=None, reduction="mean",
                         nan_policy="propagate", backend=None, n_threads=None):
    r"""Element-wise binary cross-entropy, on probabilities or on logits.

    Logits: ``(1-z)*x + (1 + (pw-1)*z) * softplus(-x)``, i.e. the stable
    ``max(x,0) - x*z + log1p(exp(-|x|))`` when ``pos_weight`` is 1. Infinite
    logits give the true loss: 0 for ``x = +inf, z = 1`` and ``x = -inf, z = 0``,
    ``+inf`` when the label disagrees (PyTorch and TensorFlow give NaN there; the
    drop-ins ``fastloss.torch`` / ``fastloss.keras`` reproduce their NaN).
    Probabilities: ``-(pw*z*log(p) + (1-z)*log(1-p))`` with ``clip`` (``None``:
    exact, ``+inf`` where the loss is infinite; ``"keras"``, ``"keras2"``,
    ``"torch"``, ``"sklearn"`` or a float eps). Labels are smoothed to
    ``z*(1-ls) + 0.5*ls``. ``pos_weight`` broadcasts along the last axis;
    ``sample_weight`` is a scalar, one weight per element (``y_pred.shape``) or
    per leading index (a prefix of ``y_pred.shape``, broadcast over the rest).
    ``reduction="none"`` keeps ``y_pred``'s shape; ``"mean"`` is ``sum(w*l)/sum(w)``.

    See Also: ``torch.nn.functional.binary_cross_entropy(_with_logits)``,
    ``keras.losses.binary_crossentropy``, ``optax.sigmoid_binary_cross_entropy``.

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> float(fastloss.binary_cross_entropy([1.0], [1000.0], from_logits=True))  # naive: nan
    0.0
    """
    return _bce_job(y_true, y_pred, from_logits, pos_weight, label_smoothing, sample_weight, clip,
                    reduction, nan_policy, backend, n_threads).run(reduction)


def _kl_job(y_true, y_pred, log_input, log_target, axis, sample_weight, clip, reduction,
            nan_policy, backend, n_threads, check=True):
    kern, nt = _common(reduction, nan_policy, n_threads, backend)
    x, rdt = as_float_array(y_pred, "y_pred")
    t = as_like(y_true, "y_true", x.dtype)
    check_same_shape(t, x, "y_true", "y_pred")
    rows = _Rows(x, axis)
    t2 = rows.partner(t)
    if clip is not None and clip != "keras" and not isinstance(clip, (float, int)):
        raise ValueError(f"clip={clip!r}: kl_divergence supports None, 'keras' or a float eps")
    if clip is not None and (log_input or log_target):
        raise ValueError("clip applies to probabilities; it cannot be combined with "
                         "log_input=True or log_target=True")
    mode, eps = resolve_clip(clip, x.dtype, False)
    if check and not log_target:
        check_unit_interval(t, "y_true", kern, "log_target=False")
    if check and not log_input:
        check_unit_interval(x, "y_pred", kern, "log_input=False")
    sw = _sample_weight(sample_weight, rows.batch_shape)
    _raise_on_nan(nan_policy, [("y_pred", x), ("y_true", t)])
    C = rows.n_cols
    br = block_rows_for(C)
    x2 = rows.x2
    omit = nan_policy == "omit"

    def call(a, b, out, lp, wp, block_rows=br):
        kern.kl(contiguous_rows(x2, a, b), contiguous_rows(t2, a, b), sw[a:b] if sw.size else sw,
                bool(log_input), bool(log_target), mode, eps, omit, block_rows, out, lp, wp, nt)

    def grad_call(a, b, g, h, lp, wp, scale):
        kern.kl_grad(contiguous_rows(x2, a, b), contiguous_rows(t2, a, b),
                     sw[a:b] if sw.size else sw, bool(log_input), bool(log_target), scale, br,
                     lp, wp, g, h, nt)

    return _Job(kern=kern, nt=nt, x=x, rdt=rdt, n_rows=rows.n_rows, width=2 * C, block_rows=br,
                contiguous=x2.flags.c_contiguous and t2.flags.c_contiguous,
                batch_shape=rows.batch_shape, call=call, grad_call=grad_call,
                weights=lambda: _row_weights(rows.n_rows, sw), rows=rows,
                weighted=bool(sw.size))


def kl_divergence(y_true, y_pred, *, log_input=False, log_target=False, axis=-1,
                  sample_weight=None, clip=None, reduction="mean", nan_policy="propagate",
                  backend=None, n_threads=None):
    r"""Kullback-Leibler divergence ``sum_c t_c * log(t_c / p_c)`` over ``axis``.

    A zero target contributes exactly 0 (``xlogy``); ``t_c > 0`` with ``p_c = 0``
    gives ``+inf``. ``log_input``/``log_target``: ``y_pred``/``y_true`` hold logs.
    ``clip="keras"`` clips both to ``[1e-7, 1]`` first (Keras's ``KLDivergence``).

    See Also: ``keras.losses.kl_divergence``, ``torch.nn.functional.kl_div`` (which
    takes log-probabilities: ``log_input=True``), ``scipy.special.rel_entr`` summed.
    """
    return _kl_job(y_true, y_pred, log_input, log_target, axis, sample_weight, clip, reduction,
                   nan_policy, backend, n_threads).run(reduction)


def _mse_job(y_true, y_pred, output_weight, axis, sample_weight, reduction, nan_policy, backend,
             n_threads, check=True):
    kern, nt = _common(reduction, nan_policy, n_threads, backend)
    x, rdt = as_float_array(y_pred, "y_pred")
    t = as_like(y_true, "y_true", x.dtype)
    check_same_shape(t, x, "y_true", "y_pred")
    rows = _Rows(x, axis)
    C = rows.n_cols
    t2 = rows.partner(t)
    ow, _ = check_weights(output_weight, "output_weight", (C,), allow_scalar=False)
    if ow is not None and not ow.sum() > 0:
        raise ValueError("output_weight must have a positive sum")
    ow = EMPTY if ow is None else ow
    sw = _sample_weight(sample_weight, rows.batch_shape)
    _raise_on_nan(nan_policy, [("y_pred", x), ("y_true", t)])
    br = block_rows_for(C)
    x2 = rows.x2
    omit = nan_policy == "omit"

    def call(a, b, out, lp, wp, block_rows=br):
        kern.mse(contiguous_rows(x2, a, b), contiguous_rows(t2, a, b), ow,
                 sw[a:b] if sw.size else sw, omit, block_rows, out, lp, wp, nt)

    def grad_call(a, b, g, h, lp, wp, scale):
        kern.mse_grad(contiguous_rows(x2, a, b), contiguous_rows(t2, a, b), ow,
                      sw[a:b] if sw.size else sw, scale, br, lp, wp, g, h, nt)

    return _Job(kern=kern, nt=nt, x=x, rdt=rdt, n_rows=rows.n_rows, width=2 * C, block_rows=br,
                contiguous=x2.flags.c_contiguous and t2.flags.c_contiguous,
                batch_shape=rows.batch_shape, call=call, grad_call=grad_call,
                weights=lambda: _row_weights(rows.n_rows, sw), rows=rows,
                weighted=bool(sw.size))


def mean_squared_error(y_true, y_pred, *, output_weight=None, axis=-1, sample_weight=None,
                       reduction="mean", nan_policy="propagate", backend=None, n_threads=None):
    r"""Per sample ``sum_j w_j (y_pred_j - y_true_j)**2 / sum_j w_j`` over ``axis``.

    ``output_weight`` (one weight per output, default equal) gives the weighted MSE
    of a Keras custom loss such as ``sum(square(y_pred - y_true) * [0.3, 0.7], axis=1)``
    (that one is ``mean_squared_error(..., output_weight=[0.3, 0.7])`` times ``sum(w)``).

    See Also: ``keras.losses.mean_squared_error``, ``torch.nn.functional.mse_loss``.
    """
    return _mse_job(y_true, y_pred, output_weight, axis, sample_weight, reduction, nan_policy,
                    backend, n_threads).run(reduction)


# The one place that turns a loss's options into kernel calls, by public name (the public
# functions above, ``fastloss.<loss>_grad`` and :class:`fastloss.LossAccumulator` use it).
_JOBS = {
    "sparse_categorical_cross_entropy": _sparse_job,
    "categorical_cross_entropy": _categorical_job,
    "binary_cross_entropy": _bce_job,
    "kl_divergence": _kl_job,
    "mean_squared_error": _mse_job,
}
