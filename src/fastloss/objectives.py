"""Custom objectives for LightGBM and XGBoost, on fastloss's fused gradient kernels.

Each objective returns ``(grad, hess)`` exactly as the library's built-in objective
computes them (same scaling, Hessian factor and floor), so a model trained with it
grows the same trees as with the built-in one (see the tests). Each accepts either
the library's training-API form ``f(preds, dataset)`` (``lgb.Dataset`` /
``xgb.DMatrix``) or the scikit-learn-API form ``f(y_true, y_pred)``.

- LightGBM binary: ``grad = w (p - y)``, ``hess = w p (1 - p)``.
- LightGBM multiclass (softmax): ``grad = w (p_k - [y = k])``,
  ``hess = w K/(K-1) p_k (1 - p_k)`` (LightGBM's ``factor_``).
- XGBoost ``binary:logistic``: ``grad = w (p - y)``, ``hess = w max(p (1 - p), 1e-16)``.
- XGBoost ``multi:softprob``: ``grad = w (p_k - [y = k])``,
  ``hess = max(2 w p_k (1 - p_k), 1e-16)``.
"""

import numpy as np

from fastloss.losses.gradients import binary_cross_entropy_grad, sparse_categorical_cross_entropy_grad

__all__ = [
    "lightgbm_binary_logistic",
    "lightgbm_multiclass_softmax",
    "xgboost_binary_logistic",
    "xgboost_multiclass_softmax",
]

_XGB_EPS = 1e-16


def _unpack(a, b):
    """``(labels, preds, weights)`` from ``(preds, dataset)`` or ``(y_true, y_pred)``."""
    if hasattr(b, "get_label"):
        preds, data = np.asarray(a), b
        labels = np.asarray(data.get_label())
        w = data.get_weight()
        w = None if w is None or len(w) == 0 else np.asarray(w, dtype=np.float64)
        return labels, preds, w
    return np.asarray(a), np.asarray(b), None


def _binary(labels, preds, w):
    preds = preds.reshape(-1)
    if labels.shape[0] != preds.shape[0]:
        raise ValueError(f"labels have {labels.shape[0]} rows but preds have {preds.shape[0]}")
    _, g, h = binary_cross_entropy_grad(labels.astype(preds.dtype), preds, sample_weight=w,
                                        reduction="sum", hessian=True)
    return g, h


def _multiclass(labels, preds, w):
    n = labels.shape[0]
    if preds.ndim == 1:  # older libraries pass a flat, class-major array
        preds = preds.reshape(-1, n).T
    _, g, h = sparse_categorical_cross_entropy_grad(labels, preds, sample_weight=w,
                                                    reduction="sum", hessian=True)
    return g, h


def lightgbm_binary_logistic(a, b):
    r"""LightGBM ``objective="binary"`` as a custom objective: ``g = s - y``, ``h = s (1 - s)``.

    Parameters
    ----------
    a, b : array_like or (preds, Dataset/DMatrix)
        ``(y_true, y_pred)`` (scikit-learn API) or the library's ``(preds, data)``; the data's weights are used.

    Returns
    -------
    grad, hess : ndarray
        One value per sample (weighted).

    Raises
    ------
    ValueError
        Labels and predictions of different lengths, labels out of range.

    See Also
    --------
    xgboost_binary_logistic, fastloss.binary_cross_entropy_grad

    Notes
    -----
    The gradient and Hessian come from fastloss's fused ``*_grad`` kernels with ``reduction='sum'`` (per-sample, weighted), bitwise the same for any thread count.

    Examples
    --------
    >>> import numpy as np
    >>> from fastloss import objectives
    >>> objectives.lightgbm_binary_logistic(np.array([1.0, 0.0]), np.array([0.0, 0.0]))
    (array([-0.5,  0.5]), array([0.25, 0.25]))
    """
    return _binary(*_unpack(a, b))


def lightgbm_multiclass_softmax(a, b):
    r"""LightGBM ``objective="multiclass"``: ``g = p - onehot(y)``, ``h = K/(K-1) p (1 - p)``.

    Parameters
    ----------
    a, b : array_like or (preds, Dataset/DMatrix)
        ``(y_true, y_pred)`` with ``y_pred`` of shape (n, K) (scikit-learn API) or the library's ``(preds, data)``; the data's weights are used.

    Returns
    -------
    grad, hess : ndarray
        Shape (n, K).

    Raises
    ------
    ValueError
        Labels and predictions of different lengths, labels out of range.

    See Also
    --------
    xgboost_multiclass_softmax

    Notes
    -----
    The gradient and Hessian come from fastloss's fused ``*_grad`` kernels with ``reduction='sum'`` (per-sample, weighted), bitwise the same for any thread count.

    Examples
    --------
    >>> import numpy as np
    >>> from fastloss import objectives
    >>> g, h = objectives.lightgbm_multiclass_softmax(np.array([0.0]), np.zeros((1, 2)))
    >>> g, h
    (array([[-0.5,  0.5]]), array([[0.5, 0.5]]))
    """
    labels, preds, w = _unpack(a, b)
    g, h = _multiclass(labels, preds, w)
    K = g.shape[1]
    return g, h * (K / (K - 1.0))


def xgboost_binary_logistic(a, b):
    r"""XGBoost ``objective="binary:logistic"``: ``g = s - y``, ``h = max(s (1 - s), 1e-16)``.

    Parameters
    ----------
    a, b : array_like or (preds, Dataset/DMatrix)
        ``(y_true, y_pred)`` (scikit-learn API) or the library's ``(preds, data)``; the data's weights are used.

    Returns
    -------
    grad, hess : ndarray
        One value per sample (weighted).

    Raises
    ------
    ValueError
        Labels and predictions of different lengths, labels out of range.

    See Also
    --------
    lightgbm_binary_logistic

    Notes
    -----
    The gradient and Hessian come from fastloss's fused ``*_grad`` kernels with ``reduction='sum'`` (per-sample, weighted), bitwise the same for any thread count.

    Examples
    --------
    >>> import numpy as np
    >>> from fastloss import objectives
    >>> objectives.xgboost_binary_logistic(np.array([1.0]), np.array([0.0]))
    (array([-0.5]), array([0.25]))
    """
    labels, preds, w = _unpack(a, b)
    preds = preds.reshape(-1)
    _, g, h = binary_cross_entropy_grad(labels.astype(preds.dtype), preds, reduction="sum",
                                        hessian=True)
    h = np.maximum(h, _XGB_EPS)
    if w is not None:
        g, h = g * w, h * w
    return g, h


def xgboost_multiclass_softmax(a, b):
    r"""XGBoost ``objective="multi:softprob"``: ``g = p - onehot(y)``, ``h = max(2 p (1 - p), 1e-16)``.

    Parameters
    ----------
    a, b : array_like or (preds, Dataset/DMatrix)
        ``(y_true, y_pred)`` (scikit-learn API) or the library's ``(preds, data)``; the data's weights are used.

    Returns
    -------
    grad, hess : ndarray
        Shape (n, K).

    Raises
    ------
    ValueError
        Labels and predictions of different lengths, labels out of range.

    See Also
    --------
    lightgbm_multiclass_softmax

    Notes
    -----
    The gradient and Hessian come from fastloss's fused ``*_grad`` kernels with ``reduction='sum'`` (per-sample, weighted), bitwise the same for any thread count.

    Examples
    --------
    >>> import numpy as np
    >>> from fastloss import objectives
    >>> objectives.xgboost_multiclass_softmax(np.array([0.0]), np.zeros((1, 2)))
    (array([[-0.5,  0.5]]), array([[0.5, 0.5]]))
    """
    labels, preds, w = _unpack(a, b)
    g, h = _multiclass(labels, preds, w)
    return g, np.maximum(2.0 * h, _XGB_EPS)
