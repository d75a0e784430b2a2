"""The public loss functions: validate, convert, dispatch to a backend, reduce."""

import numpy as np

from fastloss._dispatch import resolve_backend, resolve_threads, run_fast
from fastloss.losses._calls import (
    Clip,
    RowLayout,
    bce_call,
    categorical_ce_call,
    kl_call,
    mse_call,
    sparse_ce_call,
)
from fastloss.losses._docs import fill
from fastloss.losses._run import EMPTY, reduce_rescaling
from fastloss._validation import (
    as_float_array,
    as_like,
    check_fraction,
    check_real,
    check_labels,
    check_nan_policy,
    check_reduction,
    check_same_shape,
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
    "mean_squared_error",
    "sparse_categorical_cross_entropy",
]


def _backend_and_threads(reduction, nan_policy, n_threads, backend):
    """Check the options every loss shares; ``(kernel module, thread count)``."""
    check_reduction(reduction)
    check_nan_policy(nan_policy)
    nt = resolve_threads(n_threads)
    return resolve_backend(backend)[1], nt


def _raise_on_nan(nan_policy, named):
    if nan_policy == "raise":
        hit = first_nan(named)
        if hit is not None:
            raise ValueError(f"{hit[0]}{list(hit[1])} is NaN and nan_policy='raise'")


def _sample_weight(sample_weight, batch_shape):
    sw, _ = check_weights(sample_weight, "sample_weight", batch_shape)
    return EMPTY if sw is None else sw.reshape(-1)


# --------------------------------------------------------------------------- fast path
#
# The compiled fast path (kernels/cython/_fast.pxi, issue #16): one call for the common
# case, the general path's bits. Each function returns the public result, or None when the
# fast path declines (other options, layouts, dtypes, backends, and every bad input): then
# the caller takes the general path, which validates and raises. These are the only Python
# code that spells a fast entry's positional order; the drop-ins call them too.


def fast_sparse(y_true, y_pred, *, from_logits=False, axis=-1, ignore_index=None,
                class_weight=None, label_smoothing=0.0, z_loss=0.0, sample_weight=None,
                clip=None, reduction="mean", nan_policy="propagate", backend=None,
                n_threads=None, kernel_clip=None):
    """:func:`sparse_categorical_cross_entropy` by the fast path, or None.

    ``kernel_clip`` (a :class:`~fastloss.losses._calls.Clip`) is a drop-in's exact
    framework clip; a user's ``clip=`` always declines (the general path resolves it).
    """
    if clip is not None:
        return None
    kc = None if kernel_clip is None else (int(kernel_clip.mode), float(kernel_clip.eps))
    return run_fast(backend, "fast_sparse_ce", y_true, y_pred, from_logits, axis, ignore_index,
                    class_weight, label_smoothing, z_loss, sample_weight, kc, reduction,
                    nan_policy, n_threads)


def fast_categorical(y_true, y_pred, *, from_logits=False, axis=-1, class_weight=None,
                     label_smoothing=0.0, sample_weight=None, clip=None, reduction="mean",
                     nan_policy="propagate", backend=None, n_threads=None):
    """:func:`categorical_cross_entropy` by the fast path, or None."""
    return run_fast(backend, "fast_categorical_ce", y_true, y_pred, from_logits, axis,
                    class_weight, label_smoothing, sample_weight, clip, reduction, nan_policy,
                    n_threads)


def fast_bce(y_true, y_pred, *, from_logits=False, pos_weight=None, label_smoothing=0.0,
             sample_weight=None, clip=None, reduction="mean", nan_policy="propagate",
             backend=None, n_threads=None):
    """:func:`binary_cross_entropy` by the fast path, or None."""
    return run_fast(backend, "fast_bce", y_true, y_pred, from_logits, pos_weight,
                    label_smoothing, sample_weight, clip, reduction, nan_policy, n_threads)


# --------------------------------------------------------------------------- losses
#
# Each loss has one ``prepare_<loss>`` that validates and converts the user's inputs
# once and returns a ``KernelCall`` (``fastloss.losses._calls``): the public function
# reduces it, ``fastloss.<loss>_grad`` runs its gradient, and LossAccumulator runs it on
# row ranges. ``trusted=True`` (fastloss.evaluate, which screens and counts bad rows
# itself) skips the [0, 1] checks and takes int64 labels as they are.


def prepare_sparse(y_true, y_pred, *, from_logits, axis, ignore_index, class_weight,
                    label_smoothing, z_loss, sample_weight, clip, reduction, nan_policy, backend,
                    n_threads, trusted=False):
    kern, nt = _backend_and_threads(reduction, nan_policy, n_threads, backend)
    x, rdt = as_float_array(y_pred, "y_pred", keep_half=True)
    rows = RowLayout(x, axis)
    C = rows.n_cols
    if ignore_index is not None and (isinstance(ignore_index, bool)
                                     or not isinstance(ignore_index, (int, np.integer))):
        raise TypeError(f"ignore_index must be an integer or None, got {ignore_index!r}")
    if ignore_index is not None and not -2**63 <= int(ignore_index) < 2**63:
        raise ValueError(f"ignore_index={ignore_index!r} does not fit in int64 (labels are int64)")
    if (trusted and isinstance(y_true, np.ndarray) and y_true.dtype == np.int64
            and y_true.shape == rows.batch_shape and y_true.flags.c_contiguous):
        y = y_true  # already checked by the caller (fastloss.evaluate)
    else:
        y = check_labels(y_true, "y_true", rows.batch_shape, C, ignore_index)
    cw, _ = check_weights(class_weight, "class_weight", (C,), allow_scalar=False)
    sw = _sample_weight(sample_weight, rows.batch_shape)
    ls = check_fraction(label_smoothing, "label_smoothing")
    zl = check_real(z_loss, "z_loss", "a real number >= 0")
    if not (zl >= 0 and np.isfinite(zl)):
        raise ValueError(f"z_loss={z_loss!r} must be finite and non-negative")
    if zl and not from_logits:
        raise ValueError("z_loss needs logits (from_logits=True): it penalises logsumexp(row)**2")
    clip = Clip.from_user(clip, x.dtype, from_logits)
    if not trusted and not from_logits:
        check_unit_interval(x, "y_pred", kern, "from_logits=False")
    _raise_on_nan(nan_policy, [("y_pred", x)])
    return sparse_ce_call(rows.x2, y, kern=kern, n_threads=nt, from_logits=from_logits,
                          sample_weight=sw, class_weight=EMPTY if cw is None else cw,
                          ignore_index=ignore_index, label_smoothing=ls, z_loss=zl, clip=clip,
                          nan_omit=nan_policy == "omit", layout=rows,
                          batch_shape=rows.batch_shape, result_dtype=rdt)


@fill
def sparse_categorical_cross_entropy(y_true, y_pred, *, from_logits=False, axis=-1,
                                     ignore_index=None, class_weight=None, label_smoothing=0.0,
                                     z_loss=0.0, sample_weight=None, clip=None, reduction="mean",
                                     nan_policy="propagate", backend=None, n_threads=None):
    r"""Cross-entropy against integer class indices.

    For sample ``i`` with label ``y``, ``C`` classes and ``nll_j = -log p_j``:
    ``l_i = (1 - ls) * nll_y + ls / C * sum_j nll_j + z_loss * lse**2``. On logits
    ``nll_j = lse - x_j``, computed as ``(m - x_j) + log1p(sum_{k != argmax} exp(x_k - m))``
    with ``m`` the row maximum; on probabilities ``nll_j = -log(clip(p_j))``. The weight is
    ``w_i = sample_weight[i] * class_weight[y]``, and 0 for ``ignore_index`` rows.

    Parameters
    ----------
    y_true : array_like of int
        Class indices, shape of ``y_pred`` without its class axis.
    y_pred : array_like of float
        Logits (``from_logits=True``) or probabilities; float32/64, float16 or bfloat16
        (``ml_dtypes``; widened to float32 chunk by chunk, results float32); others float64.
    from_logits : bool, default False
        ``y_pred`` holds logits rather than probabilities (checked to lie in [0, 1]).
    axis : int, default -1
        The class axis of ``y_pred``.
    ignore_index : int, optional
        Rows with this label weigh 0 (PyTorch's ``ignore_index``).
    class_weight : array_like, optional
        One non-negative weight per class.
    label_smoothing : float in [0, 1], default 0.0
        ``ls`` above.
    z_loss : float, default 0.0
        Weight of the ``lse**2`` penalty (logits only).
    %(sample_weight)s
    %(clip)s
    %(loss_options)s

    %(returns_raises_loss)s

    See Also
    --------
    sparse_categorical_cross_entropy_grad : the loss and its gradient in one pass.
    categorical_cross_entropy : the same loss against class probabilities.
    torch.nn.functional.cross_entropy, keras.losses.sparse_categorical_crossentropy

    %(notes_determinism)s

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> logits = np.array([[2.0, 1.0, 0.1], [0.5, 2.5, 0.0]])
    >>> round(float(fastloss.sparse_categorical_cross_entropy([0, 1], logits, from_logits=True)), 6)
    0.306882
    >>> fastloss.sparse_categorical_cross_entropy([0, 1], logits, from_logits=True, reduction="none")
    array([0.41703002, 0.1967341 ])
    """
    res = fast_sparse(y_true, y_pred, from_logits=from_logits, axis=axis,
                      ignore_index=ignore_index, class_weight=class_weight,
                      label_smoothing=label_smoothing, z_loss=z_loss,
                      sample_weight=sample_weight, clip=clip, reduction=reduction,
                      nan_policy=nan_policy, backend=backend, n_threads=n_threads)
    if res is not None:  # the compiled fast path took the common case (same bits)
        return res
    return reduce_rescaling(lambda sw: prepare_sparse(
        y_true, y_pred, from_logits=from_logits, axis=axis,
        ignore_index=ignore_index, class_weight=class_weight,
        label_smoothing=label_smoothing, z_loss=z_loss,
        sample_weight=sw, clip=clip, reduction=reduction,
        nan_policy=nan_policy, backend=backend,
        n_threads=n_threads), sample_weight, reduction)


def prepare_categorical(y_true, y_pred, *, from_logits, axis, class_weight, label_smoothing,
                         sample_weight, clip, reduction, nan_policy, backend, n_threads,
                         trusted=False):
    kern, nt = _backend_and_threads(reduction, nan_policy, n_threads, backend)
    x, rdt = as_float_array(y_pred, "y_pred", keep_half=True)
    t = as_like(y_true, "y_true", x.dtype)
    check_same_shape(t, x, "y_true", "y_pred")
    rows = RowLayout(x, axis)
    C = rows.n_cols
    t2 = rows.arrange_like(t)
    if not trusted:
        check_unit_interval(t, "y_true", kern, "categorical targets")
    cw, _ = check_weights(class_weight, "class_weight", (C,), allow_scalar=False)
    sw = _sample_weight(sample_weight, rows.batch_shape)
    ls = check_fraction(label_smoothing, "label_smoothing")
    clip = Clip.from_user(clip, x.dtype, from_logits)
    if not trusted and not from_logits:
        check_unit_interval(x, "y_pred", kern, "from_logits=False")
    _raise_on_nan(nan_policy, [("y_pred", x), ("y_true", t)])
    return categorical_ce_call(rows.x2, t2, kern=kern, n_threads=nt, from_logits=from_logits,
                               sample_weight=sw, class_weight=EMPTY if cw is None else cw,
                               label_smoothing=ls, clip=clip, nan_omit=nan_policy == "omit",
                               layout=rows, batch_shape=rows.batch_shape, result_dtype=rdt)


@fill
def categorical_cross_entropy(y_true, y_pred, *, from_logits=False, axis=-1, class_weight=None,
                              label_smoothing=0.0, sample_weight=None, clip=None, reduction="mean",
                              nan_policy="propagate", backend=None, n_threads=None):
    r"""Cross-entropy against class probabilities (one-hot or soft targets).

    ``l_i = sum_c class_weight[c] * t'_c * nll_c`` with smoothed targets
    ``t' = (1 - ls) * t + ls / C`` and ``nll_c`` as in :func:`sparse_categorical_cross_entropy`;
    a zero ``t'_c`` contributes exactly 0, even where ``p_c = 0``. Weight
    ``w_i = sample_weight[i]``. ``y_pred`` is not renormalised (Keras renormalises; its
    drop-in ``fastloss.keras`` does).

    Parameters
    ----------
    y_true : array_like of float
        Targets in [0, 1], ``y_pred``'s shape.
    y_pred : array_like of float
        Logits (``from_logits=True``) or probabilities.
    from_logits : bool, default False
        ``y_pred`` holds logits rather than probabilities.
    axis : int, default -1
        The class axis.
    class_weight : array_like, optional
        One non-negative weight per class.
    label_smoothing : float in [0, 1], default 0.0
        ``ls`` above.
    %(sample_weight)s
    %(clip)s
    %(loss_options)s

    %(returns_raises_loss)s

    See Also
    --------
    categorical_cross_entropy_grad : the loss and its gradient in one pass.
    keras.losses.categorical_crossentropy, optax.softmax_cross_entropy

    %(notes_determinism)s

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> t = np.array([[0.0, 1.0], [0.5, 0.5]])
    >>> p = np.array([[0.25, 0.75], [0.5, 0.5]])
    >>> fastloss.categorical_cross_entropy(t, p, reduction="none")
    array([0.28768207, 0.69314718])
    """
    res = fast_categorical(y_true, y_pred, from_logits=from_logits, axis=axis,
                           class_weight=class_weight, label_smoothing=label_smoothing,
                           sample_weight=sample_weight, clip=clip, reduction=reduction,
                           nan_policy=nan_policy, backend=backend, n_threads=n_threads)
    if res is not None:
        return res
    return reduce_rescaling(lambda sw: prepare_categorical(
        y_true, y_pred, from_logits=from_logits, axis=axis,
        class_weight=class_weight, label_smoothing=label_smoothing,
        sample_weight=sw, clip=clip, reduction=reduction,
        nan_policy=nan_policy, backend=backend,
        n_threads=n_threads), sample_weight, reduction)


def prepare_bce(y_true, y_pred, *, from_logits, pos_weight, label_smoothing, sample_weight,
                 clip, reduction, nan_policy, backend, n_threads, trusted=False):
    kern, nt = _backend_and_threads(reduction, nan_policy, n_threads, backend)
    x, rdt = as_float_array(y_pred, "y_pred", keep_half=True)
    z = as_like(y_true, "y_true", x.dtype)
    check_same_shape(z, x, "y_true", "y_pred")
    shape = x.shape
    xf = np.ascontiguousarray(x).reshape(-1)  # one copy only for non-contiguous input
    zf = np.ascontiguousarray(z).reshape(-1)
    if not trusted:
        check_unit_interval(z, "y_true", kern, "binary targets")
        if not from_logits:
            check_unit_interval(x, "y_pred", kern, "from_logits=False")
    ls = check_fraction(label_smoothing, "label_smoothing")
    clip = Clip.from_user(clip, x.dtype, from_logits)
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
    return bce_call(xf, zf, kern=kern, n_threads=nt, from_logits=from_logits, sample_weight=sw,
                    weight_div=sw_div, pos_weight=pw, label_smoothing=ls, clip=clip,
                    nan_omit=nan_policy == "omit", batch_shape=shape, result_dtype=rdt)


@fill
def binary_cross_entropy(y_true, y_pred, *, from_logits=False, pos_weight=None,
                         label_smoothing=0.0, sample_weight=None, clip=None, reduction="mean",
                         nan_policy="propagate", backend=None, n_threads=None):
    r"""Element-wise binary cross-entropy, on probabilities or on logits.

    On logits ``(1 - z) * x + (1 + (pw - 1) * z) * softplus(-x)``, the stable
    ``max(x, 0) - x * z + log1p(exp(-|x|))`` when ``pos_weight`` is 1; infinite logits give
    the true loss (0, or ``+inf`` when the label disagrees; PyTorch and TensorFlow give NaN,
    and the drop-ins reproduce their NaN). On probabilities
    ``-(pw * z * log(p) + (1 - z) * log(1 - p))``. Labels are smoothed to
    ``z * (1 - ls) + 0.5 * ls``. Every element is a sample: ``'none'`` keeps ``y_pred``'s shape.

    Parameters
    ----------
    y_true : array_like of float
        Targets in [0, 1], ``y_pred``'s shape.
    y_pred : array_like of float
        Logits (``from_logits=True``) or probabilities.
    from_logits : bool, default False
        ``y_pred`` holds logits rather than probabilities.
    pos_weight : array_like, optional
        Weight of the positive term, broadcast along the last axis.
    label_smoothing : float in [0, 1], default 0.0
        ``ls`` above.
    sample_weight : array_like, optional
        A scalar, one weight per element, or one per leading index (a prefix of
        ``y_pred.shape``, broadcast over the rest).
    %(clip)s
    %(loss_options)s

    %(returns_raises_loss)s

    See Also
    --------
    binary_cross_entropy_grad : the loss and its gradient in one pass.
    torch.nn.functional.binary_cross_entropy_with_logits, keras.losses.binary_crossentropy

    %(notes_determinism)s

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> float(fastloss.binary_cross_entropy([1.0], [1000.0], from_logits=True))  # naive: nan
    0.0
    >>> fastloss.binary_cross_entropy([[1.0, 0.0]], [[0.8, 0.3]], reduction="none")
    array([[0.22314355, 0.35667494]])
    """
    res = fast_bce(y_true, y_pred, from_logits=from_logits, pos_weight=pos_weight,
                   label_smoothing=label_smoothing, sample_weight=sample_weight, clip=clip,
                   reduction=reduction, nan_policy=nan_policy, backend=backend,
                   n_threads=n_threads)
    if res is not None:
        return res
    return reduce_rescaling(lambda sw: prepare_bce(
        y_true, y_pred, from_logits=from_logits, pos_weight=pos_weight,
        label_smoothing=label_smoothing, sample_weight=sw, clip=clip,
        reduction=reduction, nan_policy=nan_policy, backend=backend,
        n_threads=n_threads), sample_weight, reduction)


def prepare_kl(y_true, y_pred, *, log_input, log_target, axis, sample_weight, clip, reduction,
                nan_policy, backend, n_threads, trusted=False):
    kern, nt = _backend_and_threads(reduction, nan_policy, n_threads, backend)
    x, rdt = as_float_array(y_pred, "y_pred", keep_half=True)
    t = as_like(y_true, "y_true", x.dtype)
    check_same_shape(t, x, "y_true", "y_pred")
    rows = RowLayout(x, axis)
    t2 = rows.arrange_like(t)
    if clip is not None and clip != "keras" and not isinstance(clip, (float, int)):
        raise ValueError(f"clip={clip!r}: kl_divergence supports None, 'keras' or a float eps")
    if clip is not None and (log_input or log_target):
        raise ValueError("clip applies to probabilities; it cannot be combined with "
                         "log_input=True or log_target=True")
    clip = Clip.from_user(clip, x.dtype, False)
    if not trusted and not log_target:
        check_unit_interval(t, "y_true", kern, "log_target=False")
    if not trusted and not log_input:
        check_unit_interval(x, "y_pred", kern, "log_input=False")
    sw = _sample_weight(sample_weight, rows.batch_shape)
    _raise_on_nan(nan_policy, [("y_pred", x), ("y_true", t)])
    return kl_call(rows.x2, t2, kern=kern, n_threads=nt, log_input=log_input,
                   log_target=log_target, sample_weight=sw, clip=clip,
                   nan_omit=nan_policy == "omit", layout=rows, batch_shape=rows.batch_shape,
                   result_dtype=rdt)


@fill
def kl_divergence(y_true, y_pred, *, log_input=False, log_target=False, axis=-1,
                  sample_weight=None, clip=None, reduction="mean", nan_policy="propagate",
                  backend=None, n_threads=None):
    r"""Kullback-Leibler divergence ``sum_c t_c * log(t_c / p_c)`` over the class axis.

    A zero target contributes exactly 0 (``xlogy``); ``t_c > 0`` with ``p_c = 0`` gives
    ``+inf``. ``log_input`` / ``log_target`` say that ``y_pred`` / ``y_true`` hold logs.

    Parameters
    ----------
    y_true : array_like of float
        Target distribution (or its log with ``log_target=True``), ``y_pred``'s shape.
    y_pred : array_like of float
        Predicted distribution (or its log with ``log_input=True``).
    log_input : bool, default False
        ``y_pred`` holds log-probabilities (as ``torch.nn.functional.kl_div`` takes).
    log_target : bool, default False
        ``y_true`` holds log-probabilities.
    axis : int, default -1
        The class axis.
    %(sample_weight)s
    clip : None, float or 'keras', optional
        ``'keras'`` clips both inputs to ``[1e-7, 1]`` first (Keras's ``KLDivergence``).
    %(loss_options)s

    %(returns_raises_loss)s

    See Also
    --------
    kl_divergence_grad : the loss and its gradient in one pass.
    keras.losses.kl_divergence, torch.nn.functional.kl_div, scipy.special.rel_entr

    %(notes_determinism)s

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> fastloss.kl_divergence([[0.5, 0.5, 0.0]], [[0.25, 0.5, 0.25]], reduction="none")
    array([0.34657359])
    """
    return reduce_rescaling(lambda sw: prepare_kl(
        y_true, y_pred, log_input=log_input, log_target=log_target, axis=axis,
        sample_weight=sw, clip=clip, reduction=reduction,
        nan_policy=nan_policy, backend=backend,
        n_threads=n_threads), sample_weight, reduction)


def prepare_mse(y_true, y_pred, *, output_weight, axis, sample_weight, reduction, nan_policy,
                 backend, n_threads, trusted=False):
    kern, nt = _backend_and_threads(reduction, nan_policy, n_threads, backend)
    x, rdt = as_float_array(y_pred, "y_pred", keep_half=True)
    t = as_like(y_true, "y_true", x.dtype)
    check_same_shape(t, x, "y_true", "y_pred")
    rows = RowLayout(x, axis)
    C = rows.n_cols
    t2 = rows.arrange_like(t)
    ow, _ = check_weights(output_weight, "output_weight", (C,), allow_scalar=False)
    if ow is not None and not ow.sum() > 0:
        raise ValueError("output_weight must have a positive sum")
    sw = _sample_weight(sample_weight, rows.batch_shape)
    _raise_on_nan(nan_policy, [("y_pred", x), ("y_true", t)])
    return mse_call(rows.x2, t2, kern=kern, n_threads=nt,
                    output_weight=EMPTY if ow is None else ow, sample_weight=sw,
                    nan_omit=nan_policy == "omit", layout=rows, batch_shape=rows.batch_shape,
                    result_dtype=rdt)


@fill
def mean_squared_error(y_true, y_pred, *, output_weight=None, axis=-1, sample_weight=None,
                       reduction="mean", nan_policy="propagate", backend=None, n_threads=None):
    r"""Mean squared error per sample, ``sum_j v_j (y_pred_j - y_true_j)**2 / sum_j v_j``.

    ``v`` is ``output_weight`` (default: all 1) along ``axis``; ``output_weight=[0.3, 0.7]``
    gives the weighted MSE of a Keras custom loss such as
    ``sum(square(y_pred - y_true) * [0.3, 0.7], axis=1)`` divided by ``sum(v)``.

    Parameters
    ----------
    y_true : array_like of float
        Targets, ``y_pred``'s shape.
    y_pred : array_like of float
        Predictions.
    output_weight : array_like, optional
        One non-negative weight per output (positive sum).
    axis : int, default -1
        The output axis averaged per sample.
    %(sample_weight)s
    %(loss_options)s

    %(returns_raises_loss)s

    See Also
    --------
    mean_squared_error_grad : the loss and its gradient in one pass.
    keras.losses.mean_squared_error, torch.nn.functional.mse_loss

    %(notes_determinism)s

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> float(fastloss.mean_squared_error([[0.0, 1.0]], [[1.0, 3.0]]))
    2.5
    """
    return reduce_rescaling(lambda sw: prepare_mse(
        y_true, y_pred, output_weight=output_weight, axis=axis,
        sample_weight=sw, reduction=reduction, nan_policy=nan_policy,
        backend=backend, n_threads=n_threads), sample_weight, reduction)
