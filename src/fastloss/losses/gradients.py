"""Fused loss + gradient (+ diagonal Hessian): ``fastloss.<loss>_grad``.

The gradient is that of the *reduced* loss with respect to ``y_pred`` (the logits
for the cross-entropies): with ``reduction="mean"`` it equals ``torch.autograd`` on
the mean (each sample's gradient times ``w_i / sum(w)``); with ``"sum"`` each sample
gets ``w_i`` times its own gradient, which is what gradient boosting wants.
"""

from fastloss.losses import functions as _api
from fastloss.losses._run import run_gradient

__all__ = [
    "binary_cross_entropy_grad",
    "categorical_cross_entropy_grad",
    "kl_divergence_grad",
    "mean_squared_error_grad",
    "sparse_categorical_cross_entropy_grad",
]


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
    call = _api._prepare_sparse(y_true, y_pred, from_logits=True, axis=axis,
                                ignore_index=ignore_index, class_weight=class_weight,
                                label_smoothing=label_smoothing, z_loss=z_loss,
                                sample_weight=sample_weight, clip=None, reduction=reduction,
                                nan_policy="propagate", backend=backend, n_threads=n_threads)
    return run_gradient(call, reduction, hessian, out)


def categorical_cross_entropy_grad(y_true, y_pred, *, axis=-1, class_weight=None,
                                   label_smoothing=0.0, sample_weight=None, reduction="mean",
                                   hessian=False, out=None, backend=None, n_threads=None):
    r"""Loss and gradient of categorical cross-entropy on **logits**, in one pass.

    With ``a_c = class_weight[c] * t'_c`` and ``A = sum_c a_c``: gradient
    ``A p_j - a_j``, diagonal Hessian ``A p_j (1 - p_j)``.
    """
    call = _api._prepare_categorical(y_true, y_pred, from_logits=True, axis=axis,
                                     class_weight=class_weight,
                                     label_smoothing=label_smoothing,
                                     sample_weight=sample_weight, clip=None, reduction=reduction,
                                     nan_policy="propagate", backend=backend,
                                     n_threads=n_threads)
    return run_gradient(call, reduction, hessian, out)


def binary_cross_entropy_grad(y_true, y_pred, *, pos_weight=None, label_smoothing=0.0,
                              sample_weight=None, reduction="mean", hessian=False, out=None,
                              backend=None, n_threads=None):
    r"""Loss and gradient of binary cross-entropy on **logits**, in one pass.

    With ``s = sigmoid(x)`` and ``c = 1 + (pos_weight - 1) z``: gradient
    ``c s - pos_weight z`` (``s - z`` without ``pos_weight``), Hessian ``c s (1 - s)``.
    """
    call = _api._prepare_bce(y_true, y_pred, from_logits=True, pos_weight=pos_weight,
                             label_smoothing=label_smoothing, sample_weight=sample_weight,
                             clip=None, reduction=reduction, nan_policy="propagate",
                             backend=backend, n_threads=n_threads)
    return run_gradient(call, reduction, hessian, out)


def kl_divergence_grad(y_true, y_pred, *, log_input=False, log_target=False, axis=-1,
                       sample_weight=None, reduction="mean", hessian=False, out=None,
                       backend=None, n_threads=None):
    r"""Loss and gradient of the KL divergence with respect to ``y_pred``.

    Probabilities: gradient ``-t / p``, Hessian ``t / p^2`` (0 where ``t = 0``);
    ``log_input=True``: gradient ``-t``, Hessian 0 (as ``torch.nn.functional.kl_div``).
    """
    call = _api._prepare_kl(y_true, y_pred, log_input=log_input, log_target=log_target,
                            axis=axis, sample_weight=sample_weight, clip=None,
                            reduction=reduction, nan_policy="propagate", backend=backend,
                            n_threads=n_threads)
    return run_gradient(call, reduction, hessian, out)


def mean_squared_error_grad(y_true, y_pred, *, output_weight=None, axis=-1, sample_weight=None,
                            reduction="mean", hessian=False, out=None, backend=None,
                            n_threads=None):
    r"""Loss and gradient of the (output-weighted) MSE: ``2 w_j (x_j - t_j) / sum(w)``."""
    call = _api._prepare_mse(y_true, y_pred, output_weight=output_weight, axis=axis,
                             sample_weight=sample_weight, reduction=reduction,
                             nan_policy="propagate", backend=backend, n_threads=n_threads)
    return run_gradient(call, reduction, hessian, out)
