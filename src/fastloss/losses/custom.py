"""``@fastloss.elementwise_loss``: a user's scalar loss compiled into a fused, reduced kernel."""

import functools
import re
import warnings

import numpy as np

from fastloss.losses._calls import KernelCall, RowLayout
from fastloss._dispatch import resolve_threads
from fastloss.losses._run import EMPTY, contiguous_rows, finish
from fastloss._validation import (
    as_float_array,
    as_like,
    check_reduction,
    check_same_shape,
    check_weights,
)
from fastloss.kernels import block_rows_for
from fastloss.kernels._blocks import block_sums

__all__ = ["CustomLossCompileError", "ElementwiseLoss", "elementwise_loss"]


class CustomLossCompileError(TypeError):
    r"""The user's loss function could not be compiled by Numba (the message says why).

    Raised by an :class:`ElementwiseLoss` call without ``fallback='numpy'``; a subclass of
    ``TypeError``.

    See Also
    --------
    elementwise_loss

    Examples
    --------
    >>> from fastloss.losses.custom import CustomLossCompileError
    >>> issubclass(CustomLossCompileError, TypeError)
    True
    """


class ElementwiseLoss:
    r"""A compiled element-wise loss with the interface of the built-in losses.

    ``f(y_true[i, j], y_pred[i, j], *params)`` is evaluated for every element; sample ``i``
    gets ``sum_j v_j f_ij / sum_j v_j`` (``output_reduction="mean"``) or ``sum_j v_j f_ij``
    (``"sum"``) over the output ``axis``, ``v`` being ``output_weight``; then the usual
    ``reduction``. Made by :func:`elementwise_loss`; call it as
    ``loss(y_true, y_pred, *params, output_weight=None, axis=-1, output_reduction="mean",
    sample_weight=None, reduction="mean", n_threads=None)`` (``params`` are scalars).

    Parameters
    ----------
    func : callable
        ``f(t, p, *params) -> float`` on scalars, compilable by ``numba.njit``.
    fallback : {None, 'numpy'}, default None
        ``'numpy'``: evaluate with NumPy (slower) when Numba cannot compile ``func``.
    name : str, optional
        Name used in messages (default: ``func.__name__``).

    Raises
    ------
    TypeError
        ``func`` is not callable; on call, non-scalar ``params`` (and
        :class:`CustomLossCompileError` when Numba fails without a fallback).
    ValueError
        An unknown ``fallback``; on call, the checks of the built-in losses.

    See Also
    --------
    elementwise_loss, mean_squared_error

    Notes
    -----
    ``f`` runs in float64; sample values are rounded to ``y_pred``'s dtype and summed with
    the deterministic float64 block sums, identical for every ``n_threads``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastloss.losses.custom import ElementwiseLoss
    >>> sq = ElementwiseLoss(lambda t, p: (p - t) ** 2, fallback="numpy")
    >>> float(sq(np.zeros((2, 2)), np.array([[1.0, 3.0], [0.0, 0.0]])))
    2.5
    """

    def __init__(self, func, *, fallback=None, name=None):
        if not callable(func):
            raise TypeError(f"elementwise_loss needs a function, got {func!r}")
        if fallback not in (None, "numpy"):
            raise ValueError(f"fallback={fallback!r} must be None or 'numpy'")
        self.func = func
        self.fallback = fallback
        self.name = name or getattr(func, "__name__", "custom_loss")
        self._kernels = {}
        self._compile_error = None
        functools.update_wrapper(self, func)

    # -- compilation -----------------------------------------------------------------
    def _get_kernel(self, n_params):
        if n_params not in self._kernels and self._compile_error is None:
            try:
                from fastloss.kernels.numba.custom import make_custom_kernel

                self._kernels[n_params] = make_custom_kernel(self.func, n_params)
            except ImportError as exc:
                self._compile_error = f"Numba is not available: {exc}"
        return self._kernels.get(n_params)

    def _numba_failed(self, exc):
        msg = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()  # drop Numba's terminal colours
        self._compile_error = msg
        if self.fallback == "numpy":
            warnings.warn(f"{self.name}: Numba could not compile it; evaluating with NumPy "
                          f"instead (slower). Numba said:\n{msg}", RuntimeWarning, stacklevel=3)
            return
        raise CustomLossCompileError(
            f"{self.name} could not be compiled by Numba (pass fallback='numpy' to evaluate it "
            f"with NumPy instead). Numba said:\n{msg}") from None

    # -- evaluation ------------------------------------------------------------------
    def __call__(self, y_true, y_pred, *params, output_weight=None, axis=-1,
                 output_reduction="mean", sample_weight=None, reduction="mean", n_threads=None):
        check_reduction(reduction)
        nt = resolve_threads(n_threads)
        if output_reduction not in ("mean", "sum"):
            raise ValueError(f"output_reduction={output_reduction!r} must be 'mean' or 'sum'")
        for k, p in enumerate(params):
            if not np.isscalar(p) or isinstance(p, (str, bytes)):
                raise TypeError(f"params[{k}]={p!r}: extra parameters must be scalars")
        params = tuple(float(p) for p in params)
        x, rdt = as_float_array(y_pred, "y_pred")
        t = as_like(y_true, "y_true", x.dtype)
        check_same_shape(t, x, "y_true", "y_pred")
        if x.ndim == 1:  # a single output per sample
            x, t = x[:, None], t[:, None]
            axis = -1
        rows = RowLayout(x, axis)
        t2 = rows.arrange_like(t)
        C = rows.n_cols
        ow, _ = check_weights(output_weight, "output_weight", (C,), allow_scalar=False)
        if ow is not None and output_reduction == "mean" and not ow.sum() > 0:
            raise ValueError("output_weight must have a positive sum")
        ow = EMPTY if ow is None else ow
        sw, _ = check_weights(sample_weight, "sample_weight", rows.batch_shape)
        sw = EMPTY if sw is None else sw.reshape(-1)
        br = block_rows_for(C)
        mean = output_reduction == "mean"
        kern = self._get_kernel(len(params)) if self._compile_error is None else None
        x2 = rows.x2
        contiguous = x2.flags.c_contiguous and t2.flags.c_contiguous
        res = None
        if kern is not None:
            import numba

            def forward(a, b, out, lp, wp, block_rows):
                kern(contiguous_rows(x2, a, b), contiguous_rows(t2, a, b), ow,
                     sw[a:b] if sw.size else sw, params, mean, x.dtype == np.float32,
                     block_rows, out, lp, wp)

            # float64 per-sample values: rounded to the input dtype below, like the fallback
            call = KernelCall(n_rows=rows.n_rows, row_width=2 * C, block_rows=br,
                              dtype=np.float64, forward=forward, contiguous=contiguous)
            saved = numba.get_num_threads()
            try:
                numba.set_num_threads(min(nt, numba.config.NUMBA_NUM_THREADS))
                res = call.per_sample() if reduction == "none" else call.sums()
            except numba.core.errors.NumbaError as exc:
                self._numba_failed(exc)
                res = None
            finally:
                numba.set_num_threads(saved)
        elif self._compile_error is not None and self.fallback != "numpy":
            raise CustomLossCompileError(f"{self.name} cannot be compiled: {self._compile_error}")
        if res is None:
            res = self._numpy(x2, t2, ow, sw, params, mean, br, reduction, x.dtype)
        if reduction == "none":
            return res.astype(x.dtype).reshape(rows.batch_shape).astype(rdt, copy=False)
        return finish(res, reduction, rdt, rows.batch_shape)

    def _numpy(self, x2, t2, ow, sw, params, mean, br, reduction, dtype):
        """NumPy evaluation (the fallback): same formula and block reduction, no Numba."""
        try:
            e = np.asarray(self.func(t2, x2, *params), dtype=np.float64)
            if e.shape != x2.shape:
                raise ValueError
        except Exception:
            e = np.vectorize(self.func, otypes=[np.float64])(t2, x2, *params)
        s = (e * ow[None, :]).sum(axis=1) if ow.size else e.sum(axis=1)
        if mean:
            s = s / (ow.sum() if ow.size else x2.shape[1])
        v = s.astype(dtype).astype(np.float64)
        w = sw if sw.size else np.ones(v.shape[0])
        c = np.where(w == 0, 0.0, v * np.where(w == 0, 0.0, w))
        if reduction == "none":
            return c
        from fastloss.kernels._blocks import combine

        return combine(block_sums(c, br)), combine(block_sums(w, br))


def elementwise_loss(func=None, *, fallback=None, name=None):
    r"""Decorator (or plain call) turning ``f(y_true, y_pred, *params)`` into a fused loss.

    Parameters
    ----------
    func : callable, optional
        The scalar loss ``f(t, p, *params)``; omitted when used as ``@elementwise_loss(...)``.
    fallback : {None, 'numpy'}, default None
        ``'numpy'``: evaluate with NumPy when Numba cannot compile ``func``.
    name : str, optional
        Name used in messages.

    Returns
    -------
    ElementwiseLoss
        The compiled loss (or, without ``func``, a decorator that makes one).

    Raises
    ------
    TypeError
        ``func`` is not callable.
    ValueError
        An unknown ``fallback``.

    See Also
    --------
    ElementwiseLoss : the call's arguments and the formula.

    Notes
    -----
    Compiled by Numba on the first call for each number of ``params`` (Numba is needed
    unless ``fallback='numpy'``). Sums are float64 over fixed blocks, bitwise the same for
    any ``n_threads``.

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> @fastloss.elementwise_loss
    ... def huber(t, p, delta):
    ...     d = abs(p - t)
    ...     return 0.5 * d * d if d <= delta else delta * (d - 0.5 * delta)
    >>> float(huber(np.zeros((2, 2)), np.array([[0.5, 3.0], [1.0, -1.0]]), 1.0))
    0.90625
    """
    if func is None:
        return lambda f: ElementwiseLoss(f, fallback=fallback, name=name)
    return ElementwiseLoss(func, fallback=fallback, name=name)
