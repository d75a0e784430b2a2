"""Fused loss + gradient (+ diagonal Hessian): ``fastloss.<loss>_grad``.

The gradient is that of the *reduced* loss with respect to ``y_pred`` (the logits
for the cross-entropies): with ``reduction="mean"`` it equals ``torch.autograd`` on
the mean (each sample's gradient times ``w_i / sum(w)``); with ``"sum"`` each sample
gets ``w_i`` times its own gradient, which is what gradient boosting wants.
"""

import warnings

import numpy as np

from fastloss.losses import functions as _api
from fastloss.losses._run import finish, run_chunks
from fastloss.kernels._blocks import block_sums, combine, n_blocks

__all__ = [
    "binary_cross_entropy_grad",
    "categorical_cross_entropy_grad",
    "kl_divergence_grad",
    "mean_squared_error_grad",
    "sparse_categorical_cross_entropy_grad",
]


def _check_out(out, hessian, shape, dtype):
    """Validate ``out=``: an array (gradient) or a ``(grad, hess)`` pair."""
    if out is None:
        return None, None
    if hessian:
        if not (isinstance(out, tuple) and len(out) == 2):
            raise TypeError("with hessian=True, out must be a (grad, hess) tuple of arrays")
        pairs = [("out[0]", out[0]), ("out[1]", out[1])]
    else:
        if isinstance(out, tuple):
            raise TypeError("out must be one array (the gradient) when hessian=False")
        pairs = [("out", out)]
    for name, a in pairs:
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{name} must be a NumPy array, got {type(a).__name__}")
        if a.shape != shape or a.dtype != dtype:
            raise ValueError(f"{name} has shape {a.shape} and dtype {a.dtype}; expected shape "
                             f"{shape} and dtype {dtype} (those of y_pred)")
        if not a.flags.writeable:
            raise ValueError(f"{name} is read-only")
    return tuple(a for _, a in pairs) if hessian else (pairs[0][1], None)


def _run_grad(job, reduction, hessian, out):
    if reduction not in ("sum", "mean"):
        raise ValueError(f"reduction={reduction!r}: a gradient needs a scalar loss, "
                         "use 'sum' (per-sample gradients) or 'mean'")
    x = job.x
    g_out, h_out = _check_out(out, hessian, x.shape, job.rdt)
    br = job.block_rows
    scale = 1.0
    if reduction == "mean":
        w = job.weights()
        # unit weights sum exactly to the row count: no need to build and sum them
        wsum = float(job.n_rows) if w is None else combine(block_sums(w, br))
        scale = 1.0 / wsum if wsum > 0 else np.nan
    n = job.n_rows
    if job.rows is None:  # element-wise: gradient buffers are flat
        buf_shape = (n,)
    else:
        buf_shape = (n, job.rows.n_cols)
    g = np.empty(buf_shape, dtype=x.dtype)
    h = np.empty(buf_shape, dtype=x.dtype) if hessian else np.zeros((0,) * len(buf_shape), x.dtype)
    nb = n_blocks(n, br)
    lp, wp = np.zeros(nb), np.zeros(nb)

    def call(a, b, g_, h_, lp_, wp_):
        job.grad_call(a, b, g_, h_, lp_, wp_, scale)

    run_chunks(call, n, job.width, br, job.contiguous, [g, h], lp, wp)
    if reduction == "mean" and not scale == scale:
        warnings.warn("mean of an empty selection: no sample has a positive weight; the loss "
                      "and the gradient are NaN", RuntimeWarning, stacklevel=3)
    loss = finish((combine(lp), combine(wp)), reduction, job.rdt, job.batch_shape)
    results = [loss]
    for buf, dest in [(g, g_out)] + ([(h, h_out)] if hessian else []):
        arr = _to_user_layout(job, buf)
        if dest is not None:
            np.copyto(dest, arr, casting="same_kind")
            arr = dest
        elif arr.dtype != job.rdt:
            arr = arr.astype(job.rdt)
        results.append(arr)
    return tuple(results)


def _to_user_layout(job, buf):
    """Gradient rows back in ``y_pred``'s shape (class axis where the user had it)."""
    if job.rows is None:
        return buf.reshape(job.batch_shape)
    moved = buf.reshape(tuple(job.batch_shape) + (job.rows.n_cols,))
    return np.moveaxis(moved, -1, job.rows.axis)


def sparse_categorical_cross_entropy_grad(y_true, y_pred, *, axis=-1, ignore_index=None,
                                          class_weight=None, label_smoothing=0.0, z_loss=0.0,
                                          sample_weight=None, reduction="mean", hessian=False,
                                          out=None, backend=None, n_threads=None):
    r"""Loss and gradient of sparse cross-entropy on **logits**, in one pass.

    Per sample, ``d l / d x_j = p_j (1 + 2 z lse) - (1-ls) [j = y] - ls / C`` and the
    diagonal Hessian ``p_j (1-p_j)(1 + 2 z lse) + 2 z p_j^2`` (``z`` = ``z_loss``),
    scaled by ``w_i`` (``"sum"``) or ``w_i / sum(w)`` (``"mean"``); ignored rows get 0.
    Returns ``(loss, grad)`` or ``(loss, grad, hess)``; ``out=`` takes ``grad`` or
    ``(grad, hess)`` buffers of ``y_pred``'s shape and dtype, filled and returned.
    """
    job = _api._sparse_job(y_true, y_pred, True, axis, ignore_index, class_weight,
                           label_smoothing, z_loss, sample_weight, None, reduction, "propagate",
                           backend, n_threads)
    return _run_grad(job, reduction, hessian, out)


def categorical_cross_entropy_grad(y_true, y_pred, *, axis=-1, class_weight=None,
                                   label_smoothing=0.0, sample_weight=None, reduction="mean",
                                   hessian=False, out=None, backend=None, n_threads=None):
    r"""Loss and gradient of categorical cross-entropy on **logits**, in one pass.

    With ``a_c = class_weight[c] * t'_c`` and ``A = sum_c a_c``: gradient
    ``A p_j - a_j``, diagonal Hessian ``A p_j (1 - p_j)``.
    """
    job = _api._categorical_job(y_true, y_pred, True, axis, class_weight, label_smoothing,
                                sample_weight, None, reduction, "propagate", backend, n_threads)
    return _run_grad(job, reduction, hessian, out)


def binary_cross_entropy_grad(y_true, y_pred, *, pos_weight=None, label_smoothing=0.0,
                              sample_weight=None, reduction="mean", hessian=False, out=None,
                              backend=None, n_threads=None):
    r"""Loss and gradient of binary cross-entropy on **logits**, in one pass.

    With ``s = sigmoid(x)`` and ``c = 1 + (pos_weight - 1) z``: gradient
    ``c s - pos_weight z`` (``s - z`` without ``pos_weight``), Hessian ``c s (1 - s)``.
    """
    job = _api._bce_job(y_true, y_pred, True, pos_weight, label_smoothing, sample_weight, None,
                        reduction, "propagate", backend, n_threads)
    return _run_grad(job, reduction, hessian, out)


def kl_divergence_grad(y_true, y_pred, *, log_input=False, log_target=False, axis=-1,
                       sample_weight=None, reduction="mean", hessian=False, out=None,
                       backend=None, n_threads=None):
    r"""Loss and gradient of the KL divergence with respect to ``y_pred``.

    Probabilities: gradient ``-t / p``, Hessian ``t / p^2`` (0 where ``t = 0``);
    ``log_input=True``: gradient ``-t``, Hessian 0 (as ``torch.nn.functional.kl_div``).
    """
    job = _api._kl_job(y_true, y_pred, log_input, log_target, axis, sample_weight, None,
                       reduction, "propagate", backend, n_threads)
    return _run_grad(job, reduction, hessian, out)


def mean_squared_error_grad(y_true, y_pred, *, output_weight=None, axis=-1, sample_weight=None,
                            reduction="mean", hessian=False, out=None, backend=None,
                            n_threads=None):
    r"""Loss and gradient of the (output-weighted) MSE: ``2 w_j (x_j - t_j) / sum(w)``."""
    job = _api._mse_job(y_true, y_pred, output_weight, axis, sample_weight, reduction,
                        "propagate", backend, n_threads)
    return _run_grad(job, reduction, hessian, out)
