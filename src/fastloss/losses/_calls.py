"""The one door to the loss kernels: ``KernelCall`` and one keyword-only builder per kernel.

This is the only Python module that spells a loss kernel's positional order (the
contract in ``fastloss.kernels``). The public functions, the gradients,
:class:`fastloss.LossAccumulator`, ``fastloss.evaluate`` and the drop-ins
(``fastloss.torch``, ``.keras``, ``.sklearn``) validate their inputs their own way and
then build a :class:`KernelCall` here; a new kernel option is added here once.

Builders take already validated arrays: ``x2``/``t2`` 2-D rows (class axis last, any
strides), ``y`` int64 labels, float64 weights, ``EMPTY`` for an absent array (the
contract's zero-length rule).
"""

import functools
from dataclasses import dataclass

import numpy as np

from fastloss._half import compute_dtype, is_half
from fastloss._validation import resolve_clip
from fastloss.kernels import CLIP_NONE, block_rows_for
from fastloss.losses._run import (
    EMPTY,
    contiguous_rows,
    reduce,
    run_gradient,
    run_per_sample,
    run_sums,
)

__all__ = [
    "EMPTY",
    "Clip",
    "KernelCall",
    "RowLayout",
    "bce_call",
    "categorical_ce_call",
    "kl_call",
    "mse_call",
    "onehot_ce_call",
    "sparse_ce_call",
]


@dataclass(frozen=True)
class Clip:
    r"""How probabilities are clipped before their log: a kernel clip mode and its ``eps``.

    Parameters
    ----------
    mode : int, default CLIP_NONE
        One of the kernel contract's codes ``CLIP_NONE``, ``CLIP_EPS``, ``CLIP_KERAS2``,
        ``CLIP_TORCH`` (``fastloss.kernels``).
    eps : float, default 0.0
        The clip bound of ``CLIP_EPS`` / ``CLIP_KERAS2``.

    See Also
    --------
    Clip.from_user : the public functions' ``clip=`` argument as a Clip.

    Notes
    -----
    The one place where a preset name (``'keras'``, ``'keras2'``, ``'torch'``, ``'sklearn'``)
    becomes a kernel code; ``'sklearn'`` takes the eps of the input's dtype.

    Examples
    --------
    >>> import numpy as np
    >>> from fastloss.losses import Clip
    >>> Clip.from_user("keras", np.float32, from_logits=False)
    Clip(mode=1, eps=1e-07)
    """

    mode: int = CLIP_NONE
    eps: float = 0.0

    @classmethod
    def from_user(cls, clip, dtype, from_logits):
        """The ``clip=`` argument of the public functions (``None``, a preset name or an eps)."""
        if clip is None:  # the common case, without building a new value
            return EXACT
        return cls(*resolve_clip(clip, dtype, from_logits))


EXACT = Clip()


class RowLayout:
    r"""``y_pred`` with its class axis last, as 2-D rows (a view whenever possible).

    Parameters
    ----------
    x : ndarray
        The predictions.
    axis : int
        Their class axis.
    name : str, default 'y_pred'
        The argument's name in error messages.

    Raises
    ------
    ValueError
        A 0-d array, an axis out of range, or no classes.

    See Also
    --------
    KernelCall : what the rows are handed to.

    Notes
    -----
    ``x2`` is ``(n_rows, n_cols)``; an N-d layout with no 2-D view is copied once, C-contiguous.
    ``arrange_like(t)`` arranges a same-shaped target array the same way.

    Examples
    --------
    >>> import numpy as np
    >>> from fastloss.losses import RowLayout
    >>> rows = RowLayout(np.zeros((4, 3, 5)), axis=1)
    >>> rows.x2.shape, rows.batch_shape
    ((20, 3), (4, 5))
    """

    def __init__(self, x, axis, name="y_pred"):
        from fastloss._validation import check_axis

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

    def arrange_like(self, t):
        """A same-shaped array (targets) arranged like ``y_pred``."""
        moved = t if self.axis == t.ndim - 1 else np.moveaxis(t, self.axis, -1)
        try:
            return np.reshape(moved, (-1, self.n_cols), copy=False)
        except ValueError:
            return np.ascontiguousarray(moved).reshape(-1, self.n_cols)


class KernelCall:
    r"""A validated call of one loss kernel, runnable on any range of its rows.

    Made by the keyword-only builders of this module (``sparse_ce_call``, ``categorical_ce_call``,
    ``onehot_ce_call``, ``bce_call``, ``kl_call``, ``mse_call``), the only Python code that
    spells a loss kernel's positional order. Kernel rows are the rows of ``x2`` (flat elements
    for binary cross-entropy).

    Parameters
    ----------
    n_rows, row_width, block_rows : int
        Kernel rows, values read per row (for the strided-copy chunk size), rows per block.
    dtype : dtype
        The kernel's input dtype (per-sample values come back in it).
    forward : callable
        ``forward(a, b, out, loss_partials, weight_partials, block_rows)`` on rows ``[a, b)``.
    gradient : callable, optional
        ``gradient(a, b, g, h, loss_partials, weight_partials, scale)``.
    weights : callable, optional
        ``() -> float64 per-row weights``; ``weighted`` False means all 1.
    weighted, contiguous : bool
        Whether any weight differs from 1; whether the inputs are C-contiguous rows.
    result_dtype, batch_shape, layout : optional
        The public result's dtype and shape, and the RowLayout (None: element-wise).

    See Also
    --------
    fastloss.losses.registry.LossSpec.prepare : the public inputs -> a KernelCall.

    Notes
    -----
    ``per_sample()``, ``sums()`` and ``reduce(reduction)`` run the whole call over blocks
    aligned to row 0 and combine the float64 block partials exactly, so a call gives the same
    bits for any chunking and thread count; ``LossAccumulator`` runs ``forward`` on row ranges.

    Examples
    --------
    >>> import numpy as np
    >>> from fastloss._dispatch import resolve_backend
    >>> from fastloss.losses._calls import sparse_ce_call
    >>> call = sparse_ce_call(np.zeros((2, 2)), np.array([0, 1]), kern=resolve_backend("numpy")[1],
    ...                       n_threads=1, from_logits=True)
    >>> call.per_sample(), float(call.reduce("mean"))
    (array([0.69314718, 0.69314718]), 0.6931471805599453)
    """

    __slots__ = ("_forward", "_gradient", "_weights", "batch_shape", "block_rows", "contiguous",
                 "dtype", "half", "layout", "n_rows", "result_dtype", "row_width", "weighted")

    def __init__(self, *, n_rows, row_width, block_rows, dtype, forward, gradient=None,
                 weights=None, weighted=False, contiguous=True, result_dtype=None,
                 batch_shape=None, layout=None, half=False):
        self.n_rows, self.row_width, self.block_rows = int(n_rows), row_width, block_rows
        self.dtype = dtype if isinstance(dtype, np.dtype) else np.dtype(dtype)
        self.result_dtype = self.dtype if result_dtype is None else np.dtype(result_dtype)
        self.batch_shape = (self.n_rows,) if batch_shape is None else tuple(batch_shape)
        self.layout = layout  # RowLayout for losses with a class axis, None for element-wise
        self.contiguous, self.weighted = contiguous, weighted
        self.half = half  # half-precision inputs: run in chunks of HALF_CHUNK_ELEMS (_run)
        self._forward, self._gradient, self._weights = forward, gradient, weights

    @property
    def row_mult(self):
        """Kernel rows per index of ``y_pred``'s axis 0 (streaming places chunks by axis 0)."""
        return int(np.prod(self.batch_shape[1:], dtype=np.int64))

    def forward(self, a, b, out, loss_partials, weight_partials, block_rows=None):
        self._forward(a, b, out, loss_partials, weight_partials,
                      self.block_rows if block_rows is None else block_rows)

    def gradient(self, a, b, g, h, loss_partials, weight_partials, scale):
        self._gradient(a, b, g, h, loss_partials, weight_partials, scale)

    def weights(self):
        return self._weights() if self._weights is not None else None

    def per_sample(self):
        """Every row's weighted value ``w_i * l_i``, in ``dtype``."""
        return run_per_sample(self)

    def sums(self):
        """The float64 ``(sum of w_i * l_i, sum of w_i)`` by the block reduction."""
        return run_sums(self)

    def reduce(self, reduction):
        """The public functions' value: per-sample values (``"none"``), sum or mean."""
        return reduce(self, reduction)

    def run_gradient(self, reduction, hessian, out):
        """``(loss, grad[, hess])`` of the reduced loss, in ``y_pred``'s layout."""
        return run_gradient(self, reduction, hessian, out)


def _rows(a, lo, hi):
    return a[lo:hi] if a.size else a


def _meta(x2, t2, layout, batch_shape, result_dtype, contiguous, native=False):
    if contiguous is None:
        contiguous = x2.flags.c_contiguous and (t2 is None or t2.flags.c_contiguous)
    # half precision is widened chunk by chunk (run_chunks), never in one full-size copy;
    # half x that the backend reads itself (``native``) needs no buffer: one call, as
    # float32 does (each chunk is a parallel launch, whose barrier costs on a busy machine)
    half = is_half(x2.dtype) or (t2 is not None and is_half(t2.dtype))
    return dict(dtype=compute_dtype(x2.dtype), layout=layout, batch_shape=batch_shape, half=half,
                result_dtype=result_dtype, contiguous=contiguous and (not half or native))


def _rows_for(kern, n_threads, name=None, x=None, t=None):
    """``rows(a, lo, hi)``: how the kernel calls read rows. Half-precision ``x`` as it is when
    the backend widens it itself (``name`` in its ``HALF_NATIVE``, for logits and
    probabilities alike; non-half targets), else :func:`contiguous_rows` (half rows
    widened to float32 on ``n_threads`` threads)."""
    native = (x is not None and is_half(x.dtype) and name in getattr(kern, "HALF_NATIVE", ())
              and (t is None or not is_half(t.dtype)))
    if native:
        return _half_rows
    # the NumPy oracle widens with NumPy only (the parallel widening is a Numba helper)
    oracle = getattr(kern, "__name__", "").endswith(".reference")
    return functools.partial(contiguous_rows, n_threads=1 if oracle else n_threads)


def _half_rows(a, lo, hi):
    return np.ascontiguousarray(a[lo:hi])  # a view of C-contiguous rows


def _native(*rows):
    """Do all these ``rows`` functions pass half x as it is (see :func:`_rows_for`)?"""
    return all(r is _half_rows for r in rows)


def _row_weights(n, sw, factor=None):
    w = sw.copy() if sw.size else np.ones(n)
    return w if factor is None else w * factor


# --------------------------------------------------------------------------- builders
# Each spells its kernel's positional order once (see the contract in fastloss.kernels).


def sparse_ce_call(x2, y, *, kern, n_threads, from_logits, sample_weight=EMPTY,
                   class_weight=EMPTY, ignore_index=None, label_smoothing=0.0, z_loss=0.0,
                   clip=EXACT, nan_omit=False, layout=None, batch_shape=None, result_dtype=None,
                   contiguous=None):
    """Cross-entropy against int64 class indices ``y`` (kernel ``sparse_ce``)."""
    n, C = x2.shape
    br = block_rows_for(C)
    sw, cw, nt = sample_weight, class_weight, n_threads
    ii, has_ii = int(ignore_index or 0), ignore_index is not None
    fl, ls, zl = bool(from_logits), float(label_smoothing), float(z_loss)
    xrows = _rows_for(kern, nt, "sparse_ce", x2)
    grows = _rows_for(kern, nt, "sparse_ce_grad", x2)

    def forward(a, b, out, lp, wp, block_rows):
        kern.sparse_ce(xrows(x2, a, b), y[a:b], _rows(sw, a, b), cw, fl, ii, has_ii,
                       ls, zl, clip.mode, clip.eps, nan_omit, block_rows, out, lp, wp, nt)

    def gradient(a, b, g, h, lp, wp, scale):
        kern.sparse_ce_grad(grows(x2, a, b), y[a:b], _rows(sw, a, b), cw, ii, has_ii,
                            ls, zl, scale, br, lp, wp, g, h, nt)

    def weights():
        ys = np.where(y == ii, 0, y) if has_ii else y
        w = _row_weights(n, sw, cw[ys] if cw.size else None)
        return np.where(y == ii, 0.0, w) if has_ii else w

    return KernelCall(n_rows=n, row_width=C, block_rows=br, forward=forward, gradient=gradient,
                      weights=weights, weighted=bool(sw.size or cw.size or has_ii),
                      **_meta(x2, None, layout, batch_shape, result_dtype, contiguous,
                              _native(xrows, grows)))


def categorical_ce_call(x2, t2, *, kern, n_threads, from_logits, sample_weight=EMPTY,
                        class_weight=EMPTY, label_smoothing=0.0, clip=EXACT, nan_omit=False,
                        layout=None, batch_shape=None, result_dtype=None, contiguous=None):
    """Cross-entropy against class probabilities ``t2`` (kernel ``categorical_ce``)."""
    n, C = x2.shape
    br = block_rows_for(C)
    sw, cw, nt = sample_weight, class_weight, n_threads
    rows = _rows_for(kern, nt)
    fl, ls = bool(from_logits), float(label_smoothing)
    xrows = _rows_for(kern, nt, "categorical_ce", x2, t2)
    grows = _rows_for(kern, nt, "categorical_ce_grad", x2, t2)

    def forward(a, b, out, lp, wp, block_rows):
        kern.categorical_ce(xrows(x2, a, b), rows(t2, a, b),
                            _rows(sw, a, b), cw, fl, ls, clip.mode, clip.eps, nan_omit,
                            block_rows, out, lp, wp, nt)

    def gradient(a, b, g, h, lp, wp, scale):
        kern.categorical_ce_grad(grows(x2, a, b), rows(t2, a, b),
                                 _rows(sw, a, b), cw, ls, scale, br, lp, wp, g, h, nt)

    return KernelCall(n_rows=n, row_width=2 * C, block_rows=br, forward=forward,
                      gradient=gradient, weights=lambda: _row_weights(n, sw),
                      weighted=bool(sw.size),
                      **_meta(x2, t2, layout, batch_shape, result_dtype, contiguous,
                              _native(xrows, grows)))


def onehot_ce_call(x2, y, *, kern, n_threads, ignore_index, class_weight=EMPTY,
                   label_smoothing=0.0, batch_shape=None, result_dtype=None):
    """PyTorch's weighted label smoothing ``sum_c w_c * t'_c * nll_c`` with one-hot ``t``
    of int64 labels ``y`` on logits (kernel ``categorical_ce``).

    The one-hot block is built chunk by chunk (whole kernel blocks, bounded memory),
    never for the whole batch; rows labelled ``ignore_index`` get sample weight 0.
    """
    n, C = x2.shape
    br = block_rows_for(C)
    step = max(1, (1 << 20) // max(C, 1) // br) * br
    valid = y != ignore_index
    xrows = _rows_for(kern, n_threads, "categorical_ce", x2)  # t below is never half
    sw = valid.astype(np.float64)
    ls = float(label_smoothing)

    def forward(a, b, out, lp, wp, block_rows):
        for s in range(a, b, step):  # a is block-aligned: so is every s
            e = min(b, s + step)
            t = np.zeros((e - s, C), dtype=compute_dtype(x2.dtype))
            rows = np.nonzero(valid[s:e])[0]
            t[rows, y[s:e][rows]] = 1
            b0, b1 = (s - a) // block_rows, -(-(e - a) // block_rows)
            kern.categorical_ce(xrows(x2, s, e), t, sw[s:e], class_weight, True, ls, CLIP_NONE, 0.0,
                                False, block_rows, _rows(out, s - a, e - a), _rows(lp, b0, b1),
                                _rows(wp, b0, b1), n_threads)

    return KernelCall(n_rows=n, row_width=2 * C, block_rows=br, forward=forward,
                      weights=lambda: sw, weighted=True, dtype=compute_dtype(x2.dtype),
                      contiguous=True,
                      batch_shape=batch_shape, result_dtype=result_dtype)


def bce_call(x, z, *, kern, n_threads, from_logits, sample_weight=EMPTY, weight_div=1,
             pos_weight=EMPTY, label_smoothing=0.0, clip=EXACT, nan_omit=False,
             batch_shape=None, result_dtype=None):
    """Element-wise binary cross-entropy of flat contiguous ``x``, ``z`` (kernel ``bce``).

    Element ``i`` has weight ``sample_weight[i // weight_div]`` and positive-class weight
    ``pos_weight[i % len(pos_weight)]``.
    """
    sw, pw, nt, div0 = sample_weight, pos_weight, n_threads, int(weight_div)
    K = pw.size or 1
    fl, ls = bool(from_logits), float(label_smoothing)
    br = block_rows_for(1)

    def shifted(a, b):
        # The kernel indexes weights by i // weight_div and pos_weight by i % K with i
        # counted from the start of the call: shift both to element a.
        if not sw.size or div0 == 1:
            sws, div = _rows(sw, a, b), 1
        elif a % div0 == 0:
            sws, div = sw[a // div0:-(-b // div0)], div0
        else:
            r = a % div0
            sws, div = np.repeat(sw[a // div0:-(-b // div0)], div0)[r:r + b - a], 1
        return sws, div, np.roll(pw, -(a % K)) if pw.size and a % K else pw

    rows, xrows = _rows_for(kern, nt), _rows_for(kern, nt, "bce", x, z)
    grows = _rows_for(kern, nt, "bce_grad", x, z)

    def forward(a, b, out, lp, wp, block_rows):
        sws, div, pws = shifted(a, b)
        kern.bce(xrows(x, a, b), rows(z, a, b), sws, div, pws, fl, ls,
                 clip.mode, clip.eps, nan_omit, block_rows, out, lp, wp, nt)

    def gradient(a, b, g, h, lp, wp, scale):  # all at once unless half x is widened (chunks)
        sws, div, pws = shifted(a, b)
        kern.bce_grad(grows(x, a, b), rows(z, a, b), sws, div, pws, ls,
                      scale, br, lp, wp, g, h, nt)

    def weights():  # None: every weight is 1 (no element-sized array of ones)
        return np.repeat(sw, div0) if sw.size else None

    half = is_half(x.dtype) or is_half(z.dtype)
    return KernelCall(n_rows=x.shape[0], row_width=1, block_rows=br, forward=forward,
                      gradient=gradient, weights=weights, weighted=bool(sw.size),
                      dtype=compute_dtype(x.dtype), contiguous=not half or _native(xrows, grows),
                      half=half,
                      batch_shape=batch_shape, result_dtype=result_dtype)


def kl_call(x2, t2, *, kern, n_threads, log_input, log_target, sample_weight=EMPTY, clip=EXACT,
            nan_omit=False, layout=None, batch_shape=None, result_dtype=None, contiguous=None):
    """Kullback-Leibler divergence ``sum_c t_c log(t_c / p_c)`` per row (kernel ``kl``)."""
    n, C = x2.shape
    br = block_rows_for(C)
    sw, nt, li, lt = sample_weight, n_threads, bool(log_input), bool(log_target)
    rows = _rows_for(kern, nt)
    xrows = _rows_for(kern, nt, "kl", x2, t2)
    grows = _rows_for(kern, nt, "kl_grad", x2, t2)

    def forward(a, b, out, lp, wp, block_rows):
        kern.kl(xrows(x2, a, b), rows(t2, a, b), _rows(sw, a, b), li, lt,
                clip.mode, clip.eps, nan_omit, block_rows, out, lp, wp, nt)

    def gradient(a, b, g, h, lp, wp, scale):
        kern.kl_grad(grows(x2, a, b), rows(t2, a, b), _rows(sw, a, b), li,
                     lt, scale, br, lp, wp, g, h, nt)

    return KernelCall(n_rows=n, row_width=2 * C, block_rows=br, forward=forward,
                      gradient=gradient, weights=lambda: _row_weights(n, sw),
                      weighted=bool(sw.size),
                      **_meta(x2, t2, layout, batch_shape, result_dtype, contiguous,
                              _native(xrows, grows)))


def mse_call(x2, t2, *, kern, n_threads, output_weight=EMPTY, sample_weight=EMPTY,
             nan_omit=False, layout=None, batch_shape=None, result_dtype=None, contiguous=None):
    """Output-weighted mean squared error per row (kernel ``mse``)."""
    n, C = x2.shape
    br = block_rows_for(C)
    sw, ow, nt = sample_weight, output_weight, n_threads
    rows = _rows_for(kern, nt)
    xrows = _rows_for(kern, nt, "mse", x2, t2)
    grows = _rows_for(kern, nt, "mse_grad", x2, t2)

    def forward(a, b, out, lp, wp, block_rows):
        kern.mse(xrows(x2, a, b), rows(t2, a, b), ow, _rows(sw, a, b),
                 nan_omit, block_rows, out, lp, wp, nt)

    def gradient(a, b, g, h, lp, wp, scale):
        kern.mse_grad(grows(x2, a, b), rows(t2, a, b), ow, _rows(sw, a, b),
                      scale, br, lp, wp, g, h, nt)

    return KernelCall(n_rows=n, row_width=2 * C, block_rows=br, forward=forward,
                      gradient=gradient, weights=lambda: _row_weights(n, sw),
                      weighted=bool(sw.size),
                      **_meta(x2, t2, layout, batch_shape, result_dtype, contiguous,
                              _native(xrows, grows)))
