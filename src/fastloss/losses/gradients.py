"""Fused loss + gradient (+ diagonal Hessian): ``fastloss.<loss>_grad``.

The gradient is that of the *reduced* loss with respect to ``y_pred`` (the logits
for the cross-entropies): with ``reduction="mean"`` it equals ``torch.autograd`` on
the mean (each sample's gradient times ``w_i / sum(w)``); with ``"sum"`` each sample
gets ``w_i`` times its own gradient, which is what gradient boosting wants.
"""

from fastloss.losses import functions as _api
from fastloss.losses._docs import fill
from fastloss.losses._run import gradient_rescaling as _gradient

__all__ = [
    "binary_cross_entropy_grad",
    "categorical_cross_entropy_grad",
    "kl_divergence_grad",
    "mean_squared_error_grad",
    "sparse_categorical_cross_entropy_grad",
]


@fill
def sparse_categorical_cross_entropy_grad(y_true, y_pred, *, axis=-1, ignore_index=None,
                                          class_weight=None, label_smoothing=0.0, z_loss=0.0,
                                          sample_weight=None, reduction="mean", hessian=False,
                                          out=None, backend=None, n_threads=None):
    r"""Loss and gradient of the sparse cross-entropy on **logits**, in one pass.

    Per sample, with ``p = softmax(x)``, ``z`` = ``z_loss``, ``ls`` = ``label_smoothing``:
    ``d l / d x_j = p_j (1 + 2 z lse) - (1 - ls) [j = y] - ls / C`` and the diagonal Hessian
    ``p_j (1 - p_j)(1 + 2 z lse) + 2 z p_j**2``; ignored rows get 0.

    Parameters
    ----------
    y_true : array_like of int
        Class indices.
    y_pred : array_like of float
        Logits.
    axis : int, default -1
        The class axis.
    ignore_index : int, optional
        Rows with this label weigh 0.
    class_weight : array_like, optional
        One non-negative weight per class.
    label_smoothing : float in [0, 1], default 0.0
        As in :func:`sparse_categorical_cross_entropy`.
    z_loss : float, default 0.0
        Weight of the ``lse**2`` penalty.
    %(sample_weight)s
    %(grad_tail)s

    See Also
    --------
    sparse_categorical_cross_entropy : the loss alone (also on probabilities).

    Notes
    -----
    The loss, its gradient and the Hessian's diagonal come from one fused pass over
    ``y_pred``. The loss is the function's value bitwise; the gradient of sample ``i`` is
    scaled before it is rounded to ``y_pred``'s dtype, and is the same for any ``n_threads``.

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> loss, grad = fastloss.sparse_categorical_cross_entropy_grad([0], np.array([[0.0, 0.0]]))
    >>> float(loss), grad
    (0.6931471805599453, array([[-0.5,  0.5]]))
    """
    return _gradient(lambda sw: _api.prepare_sparse(
        y_true, y_pred, from_logits=True, axis=axis, ignore_index=ignore_index,
        class_weight=class_weight, label_smoothing=label_smoothing, z_loss=z_loss,
        sample_weight=sw, clip=None, reduction=reduction, nan_policy="propagate",
        backend=backend, n_threads=n_threads), sample_weight, reduction, hessian, out)


@fill
def categorical_cross_entropy_grad(y_true, y_pred, *, axis=-1, class_weight=None,
                                   label_smoothing=0.0, sample_weight=None, reduction="mean",
                                   hessian=False, out=None, backend=None, n_threads=None):
    r"""Loss and gradient of the categorical cross-entropy on **logits**, in one pass.

    With ``a_c = class_weight[c] * t'_c`` and ``A = sum_c a_c``: gradient ``A p_j - a_j``,
    diagonal Hessian ``A p_j (1 - p_j)``, ``p = softmax(x)``.

    Parameters
    ----------
    y_true : array_like of float
        Targets, ``y_pred``'s shape.
    y_pred : array_like of float
        Logits.
    axis : int, default -1
        The class axis.
    class_weight : array_like, optional
        One non-negative weight per class.
    label_smoothing : float in [0, 1], default 0.0
        As in :func:`categorical_cross_entropy`.
    %(sample_weight)s
    %(grad_tail)s

    See Also
    --------
    categorical_cross_entropy : the loss alone (also on probabilities).

    Notes
    -----
    The loss, its gradient and the Hessian's diagonal come from one fused pass over
    ``y_pred``. The loss is the function's value bitwise; the gradient of sample ``i`` is
    scaled before it is rounded to ``y_pred``'s dtype, and is the same for any ``n_threads``.

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> loss, grad, hess = fastloss.categorical_cross_entropy_grad(
    ...     [[0.0, 1.0]], np.array([[0.0, 0.0]]), hessian=True)
    >>> grad, hess
    (array([[ 0.5, -0.5]]), array([[0.25, 0.25]]))
    """
    return _gradient(lambda sw: _api.prepare_categorical(
        y_true, y_pred, from_logits=True, axis=axis, class_weight=class_weight,
        label_smoothing=label_smoothing, sample_weight=sw, clip=None, reduction=reduction,
        nan_policy="propagate", backend=backend, n_threads=n_threads), sample_weight,
        reduction, hessian, out)


@fill
def binary_cross_entropy_grad(y_true, y_pred, *, pos_weight=None, label_smoothing=0.0,
                              sample_weight=None, reduction="mean", hessian=False, out=None,
                              backend=None, n_threads=None):
    r"""Loss and gradient of the binary cross-entropy on **logits**, in one pass.

    With ``s = sigmoid(x)`` and ``c = 1 + (pos_weight - 1) z``: gradient ``c s - pos_weight z``
    (``s - z`` without ``pos_weight``), diagonal Hessian ``c s (1 - s)``.

    Parameters
    ----------
    y_true : array_like of float
        Targets in [0, 1], ``y_pred``'s shape.
    y_pred : array_like of float
        Logits.
    pos_weight : array_like, optional
        Weight of the positive term, broadcast along the last axis.
    label_smoothing : float in [0, 1], default 0.0
        As in :func:`binary_cross_entropy`.
    %(sample_weight)s
    %(grad_tail)s

    See Also
    --------
    binary_cross_entropy : the loss alone (also on probabilities).

    Notes
    -----
    The loss, its gradient and the Hessian's diagonal come from one fused pass over
    ``y_pred``. The loss is the function's value bitwise; the gradient of sample ``i`` is
    scaled before it is rounded to ``y_pred``'s dtype, and is the same for any ``n_threads``.

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> loss, grad = fastloss.binary_cross_entropy_grad([1.0, 0.0], np.array([0.0, 0.0]),
    ...                                                 reduction="sum")
    >>> grad
    array([-0.5,  0.5])
    """
    return _gradient(lambda sw: _api.prepare_bce(
        y_true, y_pred, from_logits=True, pos_weight=pos_weight,
        label_smoothing=label_smoothing, sample_weight=sw, clip=None, reduction=reduction,
        nan_policy="propagate", backend=backend, n_threads=n_threads), sample_weight,
        reduction, hessian, out)


@fill
def kl_divergence_grad(y_true, y_pred, *, log_input=False, log_target=False, axis=-1,
                       sample_weight=None, reduction="mean", hessian=False, out=None,
                       backend=None, n_threads=None):
    r"""Loss and gradient of the KL divergence with respect to ``y_pred``, in one pass.

    Probabilities: gradient ``-t / p``, Hessian ``t / p**2`` (0 where ``t = 0``);
    ``log_input=True``: gradient ``-t``, Hessian 0 (as ``torch.nn.functional.kl_div``).

    Parameters
    ----------
    y_true : array_like of float
        Target distribution (or its log with ``log_target=True``).
    y_pred : array_like of float
        Predicted distribution (or its log with ``log_input=True``).
    log_input : bool, default False
        ``y_pred`` holds log-probabilities.
    log_target : bool, default False
        ``y_true`` holds log-probabilities.
    axis : int, default -1
        The class axis.
    %(sample_weight)s
    %(grad_tail)s

    See Also
    --------
    kl_divergence : the loss alone.

    Notes
    -----
    The loss, its gradient and the Hessian's diagonal come from one fused pass over
    ``y_pred``. The loss is the function's value bitwise; the gradient of sample ``i`` is
    scaled before it is rounded to ``y_pred``'s dtype, and is the same for any ``n_threads``.

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> loss, grad = fastloss.kl_divergence_grad([[0.5, 0.5]], np.array([[0.25, 0.75]]))
    >>> grad
    array([[-2.        , -0.66666667]])
    """
    return _gradient(lambda sw: _api.prepare_kl(
        y_true, y_pred, log_input=log_input, log_target=log_target, axis=axis,
        sample_weight=sw, clip=None, reduction=reduction, nan_policy="propagate",
        backend=backend, n_threads=n_threads), sample_weight, reduction, hessian, out)


@fill
def mean_squared_error_grad(y_true, y_pred, *, output_weight=None, axis=-1, sample_weight=None,
                            reduction="mean", hessian=False, out=None, backend=None,
                            n_threads=None):
    r"""Loss and gradient of the (output-weighted) MSE: ``2 v_j (x_j - t_j) / sum(v)``.

    The diagonal Hessian is ``2 v_j / sum(v)``; ``v`` is ``output_weight``.

    Parameters
    ----------
    y_true : array_like of float
        Targets, ``y_pred``'s shape.
    y_pred : array_like of float
        Predictions.
    output_weight : array_like, optional
        One non-negative weight per output.
    axis : int, default -1
        The output axis.
    %(sample_weight)s
    %(grad_tail)s

    See Also
    --------
    mean_squared_error : the loss alone.

    Notes
    -----
    The loss, its gradient and the Hessian's diagonal come from one fused pass over
    ``y_pred``. The loss is the function's value bitwise; the gradient of sample ``i`` is
    scaled before it is rounded to ``y_pred``'s dtype, and is the same for any ``n_threads``.

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> loss, grad = fastloss.mean_squared_error_grad([[0.0, 1.0]], np.array([[1.0, 3.0]]))
    >>> float(loss), grad
    (2.5, array([[1., 2.]]))
    """
    return _gradient(lambda sw: _api.prepare_mse(
        y_true, y_pred, output_weight=output_weight, axis=axis, sample_weight=sw,
        reduction=reduction, nan_policy="propagate", backend=backend, n_threads=n_threads),
        sample_weight, reduction, hessian, out)
