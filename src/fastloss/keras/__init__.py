"""Drop-in for ``keras.losses`` (Keras 3, TensorFlow backend) on NumPy arrays and tensors.

Change ``from keras import losses`` to ``from fastloss.keras import losses`` (or
``import fastloss.keras as losses``) and the classes and functions below take
the same arguments, in the same order, with the same defaults, and give
Keras's numbers, computed by fastloss's kernels without importing TensorFlow.
``fastloss.keras.legacy`` has the same names with tf.keras 2.x semantics.

Classes (``__call__(y_true, y_pred, sample_weight=None)``): ``BinaryCrossentropy``,
``BinaryFocalCrossentropy``, ``CategoricalCrossentropy``,
``SparseCategoricalCrossentropy``, ``KLDivergence``, ``MeanSquaredError``; functions
``binary_crossentropy``, ``binary_focal_crossentropy``, ``categorical_crossentropy``,
``sparse_categorical_crossentropy``, ``kl_divergence``, ``mean_squared_error``.

Containers and dtypes (as ``tf.convert_to_tensor`` reads them):

* NumPy arrays, pandas objects, torch tensors and TF tensors keep their dtype (a float64
  DataFrame is computed and returned in float64); Python lists and numbers are float32.
  A TF tensor in gives a TF tensor out; every other container gives NumPy. pandas objects
  are read by position: indexes and column names are not aligned (Keras converts them
  with ``tf.convert_to_tensor``; checked for Keras 3 and tf.keras).
* Why NumPy out (decided in #17, checked with Keras 3.15.1): Keras 3 returns its
  *backend's* tensor, not a fixed type. With the TensorFlow backend NumPy, lists, pandas and
  torch inputs all give a ``tf.Tensor``; with the torch backend a ``torch.Tensor``; the
  NumPy backend's ``convert_to_tensor`` is ``np.array`` (keras/src/backend/numpy/core.py),
  so NumPy out is one of Keras 3's own contracts and code written for Keras 3 cannot rely
  on the container (its ``losses_test.py`` checks only values, with ``assertAllClose``, and
  passes here with NumPy results). Returning ``tf.Tensor`` would import TensorFlow (seconds,
  and a dependency) for every NumPy user. tf.keras 2 is TensorFlow-only, so its users'
  code may rely on ``tf.Tensor`` (``.numpy()``, ``tf.test`` ``evaluate``):
  :mod:`fastloss.keras.legacy` gives ``tf.Tensor`` for every input.
* float16 and bfloat16 (inputs to the functions, or a loss ``dtype``): the inputs are
  rounded to that dtype as Keras rounds them, computed in float32 and the result rounded
  once to the half dtype, which is its dtype, as in Keras. Keras computes in the half
  dtype, so the two differ by at most one half-precision ulp (Keras's rounding).
* A Keras mask on ``y_pred`` (``_keras_mask``, as a masking layer leaves it) is honoured
  by the loss classes as ``Loss.__call__`` does: combined with ``ignore_class``'s mask and
  applied in the reduction.

Speed: ``SparseCategoricalCrossentropy``, ``CategoricalCrossentropy`` and
``BinaryCrossentropy`` objects called on C-contiguous NumPy arrays of the loss's
float32/float64 dtype (``(n, C)``, int64/int32 labels for the sparse loss, same-shaped
targets for the others) without mask, with a scalar reduction, label smoothing in
(0, 1] or none, a
``sample_weight`` of shape ``(n,)`` (BCE: none zero) or none, and for the sparse loss an int
``ignore_class`` or none, run through one compiled entry (issue #16; Keras's
``log(clip(p))`` by np.log's own loop, the float64 sums in np.sum's order): the same bits
as the general path (tests/dropins/test_fast_dropins.py). Anything else, and a NaN
result, takes the general path.

Upstream suite (``tests/dropins/upstream/run_upstream.py keras``): Keras 3.15's own
``keras/src/losses/losses_test.py``, the classes of the losses provided here, only the
imports changed: 57 run, 52 pass, 0 fail, 5 out of scope (``test_config``: the
serialization registry, ``keras.saving`` looks the class up in Keras's registry).

Semantics mirrored (keras/src/losses/{loss,losses}.py, keras/src/backend/tensorflow/nn.py):

* A loss object casts ``y_true`` and ``y_pred`` to its ``dtype`` (``None``: floatx,
  float32) before computing, so float64 arrays are computed in float32 unless
  ``dtype="float64"``. The functions keep float32/float64 arrays' dtype and turn
  Python lists into float32, like ``tf.convert_to_tensor``.
* Probabilities are clipped to ``[1e-7, 1 - 1e-7]`` in the compute dtype (float32:
  ``1 - 1e-7`` is ``0.99999988``, so BCE is at most 16.118 for t=1, p=0 and
  15.942 for t=0, p=1). ``CategoricalCrossentropy`` renormalises ``p / sum(p)``
  first; ``SparseCategoricalCrossentropy`` takes ``log(clip(p))`` as logits (a
  renormalisation in log space, as the TF backend does). ``KLDivergence`` clips
  both inputs to ``[1e-7, 1]`` (a zero target adds ``1e-7 * log(1e-7 / p)``).
* ``BinaryCrossentropy`` and ``BinaryFocalCrossentropy`` return the mean over
  ``axis`` per sample; a 1-D input gives one scalar. Label smoothing is done in
  the compute dtype: ``y * (1 - ls) + 0.5 * ls`` (binary), ``y * (1 - ls) + ls / C``
  with ``C = y_true.shape[-1]`` (categorical). Focal loss ``from_logits`` uses the
  stable logits BCE (TF's ``_keras_logits`` path) times ``(1 - p_t) ** gamma``.
* ``ignore_class``: ignored entries give 0; ``"mean"``/``"sum_over_batch_size"``
  then divide by the number of valid entries, ``"mean_with_sample_weight"`` by the
  sum of the valid entries' weights.
* Reductions: ``"sum_over_batch_size"`` (default) and ``"mean"`` are
  ``sum(loss * w) / number of weighted values``; ``"sum"``; ``"mean_with_sample_weight"``
  is ``sum(loss * w) / sum(w)``; ``None``/``"none"`` the weighted values. A zero
  divisor gives 0 (``divide_no_nan``). ``sample_weight`` is cast to the compute
  dtype, its rank is fixed by Keras's squeeze/expand rule and then it broadcasts
  with NumPy (= TensorFlow) rules, so ``BinaryCrossentropy()(y, p, sample_weight=w)``
  on 1-D ``y, p`` is ``mean(bce) * mean(w)``, exactly as in Keras. A reduction of
  an empty batch returns the empty array; a scalar loss is returned unreduced.
* Keras validates nothing: probabilities outside [0, 1] are clipped, NaN
  propagates (a zero weight does not remove a NaN: ``NaN * 0`` is NaN).

Documented deviations (each one tested in tests/test_dropin_keras.py):

1. **Sums are float64, rounded once.** Keras sums in float32 (the mean over
   ``axis``, the sum over classes, the batch reduction and the renormalising
   ``sum(p)``); fastloss adds the same float32 per-element values in float64 and
   rounds the result once. Results therefore differ from Keras by Keras's own
   float32 summation error: at most about ``n * eps32`` relative for ``n``
   positive terms (e.g. 5.372699 vs Keras's 5.3726983 for the three-sample
   ``"sum_over_batch_size"`` example: the exact value is 5.37269852...).
2. **Log-sum-exp, logs and the logits BCE are computed in float64** and rounded
   once per sample, so cross-entropies from logits, BCE and MSE are the
   correctly rounded value of Keras's formula, where TensorFlow's float32 kernels
   are off by a few float32 roundings of the terms (relative to
   ``|logsumexp| + |x_y|``; for BCE from logits with soft labels relative to
   ``|x|``, since TF's ``relu(x) - x*z`` cancels).
3. The element-wise float32 steps that change the value by more than rounding
   noise are done in float32 in Keras's order (the clip, ``1 - p``, the
   renormalisation ``p / sum(p)``, label smoothing, KL's ``t * log(t / p)``, the
   focal factor); NumPy's float32 ``log``/``exp`` may differ from Eigen's in the
   last bit, and the renormalising row sum is a float32 matrix-vector product
   (Keras: ``reduce_sum``), so its rounding may differ.
   The sigmoid of the focal factor (from logits) is correctly rounded, Eigen's
   is not, and ``1 - p_t`` amplifies that difference where ``p_t`` is near 1.
4. The sparse loss takes only the last axis, as the TF backend (``ValueError`` for
   another ``axis``; Keras's JAX/NumPy backends accept it). The TF "logit
   recovery" (``_keras_logits`` on tensors from a Keras softmax/sigmoid) cannot
   apply to NumPy arrays. Out-of-range labels, and 0-d inputs to the losses that average
   over ``axis`` (BCE, focal, MSE, KL), raise ``ValueError`` (TensorFlow:
   ``InvalidArgumentError``). Compute dtypes are float32 and float64 (half
   precision: see above). Integer and bool ``y_pred`` given to the functions raise as in
   Keras (``TypeError``; ``ValueError`` where Keras raises ``InvalidArgumentError``:
   ``categorical_crossentropy``, and ``mean_squared_error`` of bool), except integers in
   ``mean_squared_error`` (float32, as Keras's mean of integers). The classes cast to their ``dtype`` first, as Keras does.
   No ``tf.distribute`` replica scaling. Symbolic tensors and ``tf.RaggedTensor`` are
   not supported.
"""

import warnings

import numpy as np

from fastloss.keras import _common as _c
from fastloss.losses._docs import fill

__all__ = [
    "BinaryCrossentropy",
    "BinaryFocalCrossentropy",
    "CategoricalCrossentropy",
    "KLDivergence",
    "Loss",
    "LossFunctionWrapper",
    "MeanSquaredError",
    "SparseCategoricalCrossentropy",
    "binary_crossentropy",
    "binary_focal_crossentropy",
    "categorical_crossentropy",
    "kl_divergence",
    "mean_squared_error",
    "sparse_categorical_crossentropy",
]

_EPS = _c.EPSILON
_MEANS = ("sum_over_batch_size", "mean")


# --------------------------------------------------------------------------- reductions


_ALLOWED_REDUCTIONS = {"sum_over_batch_size", "sum", None, "none", "mean",
                       "mean_with_sample_weight"}


def standardize_reduction(reduction):
    if reduction not in _ALLOWED_REDUCTIONS:
        raise ValueError("Invalid value for argument `reduction`. "
                         f"Expected one of {_ALLOWED_REDUCTIONS}. Received: "
                         f"reduction={reduction}")
    return reduction


def reduce_weighted_values(values, sample_weight=None, mask=None,
                           reduction="sum_over_batch_size", dtype=None):
    """``keras.src.losses.loss.reduce_weighted_values`` with float64 sums."""
    reduction = standardize_reduction(reduction)
    dt = _c.float_dtype(dtype) if dtype is not None else values.dtype
    values = np.asarray(values).astype(dt, copy=False)
    sw = None if sample_weight is None else np.asarray(sample_weight).astype(dt)
    scale = None  # the total/valid factor Keras puts into the mask for the means
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        fm = mask.astype(dt)
        if reduction in _MEANS:
            valid = int(np.count_nonzero(mask))
            scale = (mask.size, valid)
        if sw is not None:
            fm, sw = _c.squeeze_or_expand_to_same_rank(fm, sw)
            sw = sw * fm
        else:
            sw = fm
    if sw is not None:
        values, sw = _c.squeeze_or_expand_to_same_rank(values, sw)
    prod_shape = np.broadcast_shapes(values.shape, () if sw is None else sw.shape)
    prod = _c.weighted_product(values, sw)
    if reduction in (None, "none") or prod_shape in ((), (0,)):
        if scale is not None and prod_shape in ((), (0,)):
            total, valid = scale
            prod = prod * (total / valid if valid else 0.0)
        return _c.scalar_or_array(np.broadcast_to(prod, prod_shape), dt)
    with np.errstate(invalid="ignore", over="ignore"):
        s = float(np.sum(prod))
    if reduction == "sum":
        return dt.type(s)
    if reduction == "mean_with_sample_weight" and sw is not None:
        divisor = float(np.sum(sw, dtype=np.float64))
    else:
        divisor = float(prod.size)
    if scale is not None:
        total, valid = scale
        # Keras: sum(l * w * total/valid) / size: divide by `valid` when no broadcast
        res = 0.0 if valid == 0 else (s / valid if prod.size == total
                                      else s * (total / valid) / divisor)
        return dt.type(res)
    return dt.type(0.0 if divisor == 0 else s / divisor)


# --------------------------------------------------------------------------- base classes


def _auto_name(cls_name):
    out = []
    for i, ch in enumerate(cls_name):
        if ch.isupper() and i and not cls_name[i - 1].isupper():
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


@fill
class Loss:
    r"""``keras.losses.Loss``: ``__call__`` casts, calls ``call`` and reduces.

    Parameters
    ----------
    name : str, optional
        The loss's name.
    reduction : str, default 'sum_over_batch_size'
        As in Keras 3.
    dtype : str, optional
        Compute dtype (``None``: float32, Keras's floatx).

    See Also
    --------
    LossFunctionWrapper

    %(notes_keras)s

    Examples
    --------
    >>> import numpy as np
    >>> import fastloss.keras as L
    >>> class Abs(L.Loss):
    ...     def call(self, y_true, y_pred):
    ...         return np.abs(y_pred - y_true).mean(axis=-1)
    >>> Abs()(np.zeros((2, 2)), np.ones((2, 2)))
    np.float32(1.0)
    """

    def __init__(self, name=None, reduction="sum_over_batch_size", dtype=None):
        self.name = name or _auto_name(type(self).__name__)
        self.reduction = standardize_reduction(reduction)
        self._np_dtype = _c.float_dtype(dtype)  # compute dtype: float32 for half precision
        self._out_dtype = _c.result_dtype(dtype)
        self._fast_ft = _c.fast_ft(self._np_dtype, self._out_dtype)

    @property
    def dtype(self):
        return self._out_dtype.name  # read when asked: dtype.name costs 1 us per loss object

    def __call__(self, y_true, y_pred, sample_weight=None):
        fast = self._fast_call(y_true, y_pred, sample_weight)
        if fast is not None:
            return fast
        in_mask = _c.keras_mask(y_pred)
        tf_out = _c.is_tf(y_true) or _c.is_tf(y_pred)
        y_true, y_pred, sample_weight = map(_c.host, (y_true, y_pred, sample_weight))
        dt, out = self._np_dtype, self._out_dtype
        # Keras converts both to the loss's dtype first (a half dtype rounds the inputs)
        y_pred = _c.as_tensor(y_pred, out).astype(dt, copy=False)
        y_true = _c.as_tensor(y_true, out).astype(dt, copy=False)
        fast = None if in_mask is not None else self._fused(y_true, y_pred, sample_weight)
        if fast is not None:
            return _c.finish(fast, out if out != dt else None, tf_out)
        values, mask = self._call_masked(y_true, y_pred)
        if in_mask is not None:  # Keras: the input's mask, and the loss's own (ignore_class)
            mask = in_mask if mask is None else (np.asarray(mask, bool) & in_mask)
        res = reduce_weighted_values(values, sample_weight, mask, self.reduction, dt)
        return _c.finish(res, out if out != dt else None, tf_out)

    def _fast_call(self, y_true, y_pred, sample_weight):
        """The whole call for the common case, or None (then the general path)."""
        return None

    def _fused(self, y_true, y_pred, sample_weight):
        return None

    def _call_masked(self, y_true, y_pred):
        return np.asarray(self.call(y_true, y_pred)), None

    def call(self, y_true, y_pred):
        raise NotImplementedError

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r} reduction={self.reduction!r}>"


@fill
class LossFunctionWrapper(Loss):
    r"""``keras.losses.LossFunctionWrapper``: a loss function with fixed keyword arguments.

    Parameters
    ----------
    fn : callable
        ``fn(y_true, y_pred, **kwargs)`` giving per-sample values.
    %(keras3_options)s
    **kwargs
        Fixed keyword arguments of ``fn``.

    See Also
    --------
    Loss

    %(notes_keras)s

    Examples
    --------
    >>> import numpy as np
    >>> import fastloss.keras as L
    >>> L.LossFunctionWrapper(L.mean_squared_error)(np.zeros((1, 2)), np.ones((1, 2)))
    np.float32(1.0)
    """

    def __init__(self, fn, reduction="sum_over_batch_size", name=None, dtype=None, **kwargs):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.fn = fn
        self._fn_kwargs = kwargs

    def call(self, y_true, y_pred):
        y_true, y_pred = _c.squeeze_or_expand_to_same_rank(y_true, y_pred)
        return self.fn(y_true, y_pred, **self._fn_kwargs)

    def _call_masked(self, y_true, y_pred):
        y_true, y_pred = _c.squeeze_or_expand_to_same_rank(y_true, y_pred)
        impl = _MASKED.get(self.fn)
        if impl is not None:
            return impl(y_true, y_pred, **self._fn_kwargs)
        return np.asarray(self.fn(y_true, y_pred, **self._fn_kwargs)), None


# --------------------------------------------------------------------------- functions


@fill
@_c.framework_io
def mean_squared_error(y_true, y_pred):
    r"""``mean(square(y_true - y_pred), axis=-1)``.

    Parameters
    ----------
    y_true : array_like
        Targets.
    y_pred : array_like
        Predictions.

    %(keras_returns_raises)s

    See Also
    --------
    keras.losses.mean_squared_error

    %(notes_keras)s

    Examples
    --------
    >>> import numpy as np
    >>> import fastloss.keras as L
    >>> L.mean_squared_error(np.array([[0., 1.]]), np.array([[1., 3.]]))
    array([2.5])
    """
    if _c.int_dtype(y_pred) == np.bool_:  # Keras: InvalidArgumentError (no bool subtraction)
        raise ValueError("mean_squared_error: y_pred has dtype bool; Keras 3 cannot subtract "
                         "bool tensors (it raises too)")
    y_pred = _c.as_tensor(y_pred)
    y_true = _c.as_tensor(y_true, y_pred.dtype)
    y_true, y_pred = _c.squeeze_or_expand_to_same_rank(y_true, y_pred)
    return _c.mse_last(y_true, y_pred)


@fill
@_c.framework_io
def kl_divergence(y_true, y_pred):
    r"""``sum(t * log(t / p), axis=-1)`` with both clipped to ``[1e-7, 1]``.

    Parameters
    ----------
    y_true : array_like
        Targets.
    y_pred : array_like
        Predictions.

    %(keras_returns_raises)s

    See Also
    --------
    keras.losses.kl_divergence

    %(notes_keras)s

    Examples
    --------
    >>> import numpy as np
    >>> import fastloss.keras as L
    >>> L.kl_divergence(np.array([[0.5, 0.5]]), np.array([[0.25, 0.75]]))
    array([0.14384104])
    """
    _c.no_ints("kl_divergence", y_pred, "Keras 3")
    y_pred = _c.as_tensor(y_pred)
    y_true = _c.as_tensor(y_true, y_pred.dtype)
    return _c.kl_values(y_true, y_pred)[()]


def _bce_values(y_true, y_pred, from_logits, label_smoothing, axis, keras2=False):
    """Per-element BCE (before the mean over ``axis``), Keras 3 or 2 semantics."""
    dt = y_pred.dtype
    if label_smoothing:
        y_true = _smooth_binary(y_true, label_smoothing, keras2)
    _c.check_same_shape(y_true, y_pred)
    if from_logits:
        return _c.bce_elements(y_true, y_pred, True)
    # the kernel clips to [eps, 1 - eps] in y_pred's dtype, as Keras does
    mode = _c.CLIP_KERAS2 if keras2 else _c.CLIP_EPS
    return _c.bce_elements(y_true, y_pred.astype(dt, copy=False), False, mode, _EPS)


def _smooth_binary(y_true, ls, keras2):
    dt = y_true.dtype
    if keras2:  # label_smoothing is a tensor of y_pred's dtype
        l32 = dt.type(ls)
        return y_true * (dt.type(1) - l32) + dt.type(0.5) * l32
    return y_true * dt.type(1.0 - ls) + dt.type(0.5 * ls)


@fill
@_c.framework_io
def binary_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    r"""Binary cross-entropy, mean over ``axis`` (probabilities clipped to ``[1e-7, 1-1e-7]``).

    Parameters
    ----------
    y_true : array_like
        Targets.
    y_pred : array_like
        Predictions.
    %(keras_logit_options)s

    %(keras_returns_raises)s

    See Also
    --------
    keras.losses.binary_crossentropy

    %(notes_keras)s

    Examples
    --------
    >>> import numpy as np
    >>> import fastloss.keras as L
    >>> L.binary_crossentropy(np.array([[1., 0.]]), np.array([[0.8, 0.3]]))
    array([0.28990925])
    """
    _c.no_ints("binary_crossentropy", y_pred, "Keras 3")
    y_pred = _c.as_tensor(y_pred)
    y_true = _c.as_tensor(y_true, y_pred.dtype)
    v = _bce_values(y_true, y_pred, from_logits, label_smoothing, axis)
    return _c.mean_last(v, axis)[()]


def _focal_values(y_true, y_pred, apply_class_balancing, alpha, gamma, from_logits,
                  label_smoothing, keras2=False):
    dt = y_pred.dtype
    if label_smoothing:
        y_true = _smooth_binary(y_true, label_smoothing, keras2)
    _c.check_same_shape(y_true, y_pred)
    if from_logits:
        sig = _c.sigmoid(y_pred)
        bce = _c.bce_elements(y_true, y_pred, True)
    else:
        sig = y_pred
        mode = _c.CLIP_KERAS2 if keras2 else _c.CLIP_EPS
        bce = _c.bce_elements(y_true, y_pred, False, mode, _EPS)
    one = dt.type(1)
    with np.errstate(invalid="ignore", over="ignore"):
        p_t = y_true * sig + (one - y_true) * (one - sig)
        focal = np.power(one - p_t, dt.type(gamma))
        out = focal * bce
        if apply_class_balancing:
            out = (y_true * dt.type(alpha) + (one - y_true) * dt.type(1 - alpha)) * out
    return out


@fill
@_c.framework_io
def binary_focal_crossentropy(y_true, y_pred, apply_class_balancing=False, alpha=0.25, gamma=2.0,
                              from_logits=False, label_smoothing=0.0, axis=-1):
    r"""Focal BCE ``(1 - p_t)**gamma * bce`` (optionally alpha-balanced), mean over ``axis``.

    Parameters
    ----------
    y_true : array_like
        Targets.
    y_pred : array_like
        Predictions.
    apply_class_balancing : bool, default False
        Weigh positives by ``alpha`` and negatives by ``1 - alpha``.
    alpha : float, default 0.25
        The balancing weight.
    gamma : float, default 2.0
        The focusing exponent.
    %(keras_logit_options)s

    %(keras_returns_raises)s

    See Also
    --------
    keras.losses.binary_focal_crossentropy

    %(notes_keras)s

    Examples
    --------
    >>> import numpy as np
    >>> import fastloss.keras as L
    >>> L.binary_focal_crossentropy(np.array([[1., 0.]]), np.array([[0.8, 0.3]]))
    array([0.02051324])
    """
    _c.no_ints("binary_focal_crossentropy", y_pred, "Keras 3")
    y_pred = _c.as_tensor(y_pred)
    y_true = _c.as_tensor(y_true, y_pred.dtype)
    v = _focal_values(y_true, y_pred, apply_class_balancing, alpha, gamma, from_logits,
                      label_smoothing)
    return _c.mean_last(v, axis)[()]


def _check_categorical(y_true, y_pred):
    if y_true.ndim < 1:
        raise ValueError("Arguments `target` and `output` must be at least rank 1. Received: "
                         f"target.shape={y_true.shape}, output.shape={y_pred.shape}")
    if y_true.ndim != y_pred.ndim:
        raise ValueError("Arguments `target` and `output` must have the same rank (ndim). "
                         f"Received: target.shape={y_true.shape}, output.shape={y_pred.shape}")
    _c.check_same_shape(y_true, y_pred)


def _categorical_values(y_true, y_pred, from_logits, axis):
    """``ops.categorical_crossentropy`` (TF backend) on already-smoothed targets."""
    ax = _c.check_axis(axis, y_pred.ndim)
    dt = y_pred.dtype
    x2, batch = _c.rows(y_pred, ax)
    t2, _ = _c.rows(y_true, ax)
    if not from_logits and x2.shape[1]:
        # Keras: output / reduce_sum(output, axis), then clip (the kernel clips), in the
        # compute dtype; the row sums by one matrix-vector product
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            s = x2 @ np.ones(x2.shape[1], dtype=dt)
            x2 = x2 / s[:, None]
    if x2.shape[1] == 0:
        return np.zeros(batch, dtype=dt)  # an empty sum
    mode = _c.CLIP_NONE if from_logits else _c.CLIP_EPS
    return _c.categorical_rows(x2, t2, from_logits, mode, _EPS).reshape(batch)


@fill
@_c.framework_io
def categorical_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    r"""Categorical cross-entropy over ``axis`` (probabilities renormalised, then clipped).

    Parameters
    ----------
    y_true : array_like
        Targets.
    y_pred : array_like
        Predictions.
    %(keras_logit_options)s

    %(keras_returns_raises)s

    See Also
    --------
    keras.losses.categorical_crossentropy

    %(notes_keras)s

    Examples
    --------
    >>> import numpy as np
    >>> import fastloss.keras as L
    >>> L.categorical_crossentropy(np.array([[0., 1.]]), np.array([[0.25, 0.75]]))
    array([0.28768207])
    """
    _c.no_ints("categorical_crossentropy", y_pred, "Keras 3", ValueError)
    if isinstance(axis, bool):
        raise ValueError(f"`axis` must be of type `int`. Received: axis={axis} of type "
                         f"{type(axis)}")
    y_pred = _c.as_tensor(y_pred)
    y_true = _c.as_tensor(y_true, y_pred.dtype)
    dt = y_pred.dtype
    if y_pred.ndim and y_pred.shape[-1] == 1:
        warnings.warn("In loss categorical_crossentropy, expected y_pred.shape to be "
                      "(batch_size, num_classes) with num_classes > 1. Received: "
                      f"y_pred.shape={y_pred.shape}. Consider using 'binary_crossentropy' if "
                      "you only have 2 classes.", SyntaxWarning, stacklevel=2)
    if label_smoothing:
        C = dt.type(y_true.shape[-1])
        y_true = y_true * dt.type(1.0 - label_smoothing) + dt.type(label_smoothing) / C
    _check_categorical(y_true, y_pred)
    return _categorical_values(y_true, y_pred, from_logits, axis)[()]


def _labels(y_true, n_classes):
    """TF's ``cast(target, int64)`` plus its range check."""
    y = np.asarray(y_true)
    if y.dtype.kind == "f":
        with np.errstate(invalid="ignore"):
            y = np.trunc(y)
        if not np.isfinite(y).all():
            raise ValueError("Received a label value that is not finite")
    y = y.astype(np.int64)
    bad = (y < 0) | (y >= n_classes)
    if bad.any():
        v = int(y.reshape(-1)[np.argmax(bad.reshape(-1))])
        raise ValueError(f"Received a label value of {v} which is outside the valid range of "
                         f"[0, {n_classes}).")
    return y


def _sparse_values(y_true, y_pred, from_logits, ignore_class, axis):
    """``(per-sample loss, valid mask or None)`` of Keras 3's sparse cross-entropy."""
    y_pred = np.asarray(y_pred)
    y_true = np.asarray(y_true)
    if y_pred.ndim < 1:
        raise ValueError(f"Argument `output` must be at least rank 1. Received: "
                         f"output.shape={y_pred.shape}")
    ax = _c.check_axis(axis, y_pred.ndim)
    if ax != y_pred.ndim - 1:  # the TF backend's limit (JAX/NumPy backends take any axis)
        raise ValueError(f"Only axis=-1 is currently supported. Received: axis={axis}")
    if y_true.ndim == y_pred.ndim and y_true.shape[ax] == 1:
        y_true = np.squeeze(y_true, axis=ax)
    res_shape = y_pred.shape[:ax] + y_pred.shape[ax + 1:]
    if y_true.shape != res_shape:
        raise ValueError("Arguments `target` and `output` must have the same shape up until "
                         f"the class axis: target.shape={y_true.shape}, "
                         f"output.shape={y_pred.shape}")
    dt = y_pred.dtype
    valid = None
    if ignore_class is not None:
        valid = y_true != np.asarray(ignore_class).astype(dt)
        y_true = np.where(valid, y_true, 0)
    x2, batch = _c.rows(y_pred, ax)
    C = x2.shape[1]
    y = _labels(y_true, C).reshape(-1)
    if not from_logits:
        with np.errstate(divide="ignore", invalid="ignore"):
            x2 = np.log(_c.clip(x2, _EPS, 1.0 - _EPS))  # float32, as TF; then softmax-CE
    if valid is not None:
        y = np.where(valid.reshape(-1), y, -1)
    v = _c.sparse_rows(x2, y, True, ignore=-1 if valid is not None else None)
    return v.reshape(batch), valid


@fill
@_c.framework_io
def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False, ignore_class=None,
                                    axis=-1):
    r"""Cross-entropy against integer labels; ``ignore_class`` entries give 0.

    Parameters
    ----------
    y_true : array_like
        Targets.
    y_pred : array_like
        Predictions.
    from_logits : bool, default False
        ``y_pred`` holds logits (else probabilities, clipped as Keras clips them).
    ignore_class : int, optional
        Labels with this value give 0 (and leave the mean).
    axis : int, default -1
        The axis reduced per sample.

    %(keras_returns_raises)s

    See Also
    --------
    keras.losses.sparse_categorical_crossentropy

    %(notes_keras)s

    Examples
    --------
    >>> import numpy as np
    >>> import fastloss.keras as L
    >>> L.sparse_categorical_crossentropy(np.array([1]), np.array([[0.25, 0.75]]))
    array([0.28768207])
    """
    _c.no_ints("sparse_categorical_crossentropy", y_pred, "Keras 3")
    y_pred = _c.as_tensor(y_pred)
    return _sparse_values(y_true, y_pred, from_logits, ignore_class, axis)[0][()]


def _sparse_masked(y_true, y_pred, from_logits=False, ignore_class=None, axis=-1):
    v, valid = _sparse_values(y_true, y_pred, from_logits, ignore_class, axis)
    return v, valid


_MASKED = {sparse_categorical_crossentropy: _sparse_masked}


# --------------------------------------------------------------------------- classes


@fill
class MeanSquaredError(LossFunctionWrapper):
    r"""``keras.losses.MeanSquaredError``: ``mean(square(y_true - y_pred), axis=-1)``.

    Parameters
    ----------
    %(keras3_options)s

    See Also
    --------
    keras.losses.MeanSquaredError

    %(notes_keras)s

    Examples
    --------
    >>> import numpy as np
    >>> import fastloss.keras as L
    >>> L.MeanSquaredError()(np.array([[0., 1.]]), np.array([[1., 3.]]))
    np.float32(2.5)
    """

    def __init__(self, reduction="sum_over_batch_size", name="mean_squared_error", dtype=None):
        super().__init__(mean_squared_error, name=name, reduction=reduction, dtype=dtype)

    def get_config(self):
        return Loss.get_config(self)


@fill
class KLDivergence(LossFunctionWrapper):
    r"""``keras.losses.KLDivergence``: ``sum(t * log(t / p))`` after clipping to ``[1e-7, 1]``.

    Parameters
    ----------
    %(keras3_options)s

    See Also
    --------
    keras.losses.KLDivergence

    %(notes_keras)s

    Examples
    --------
    >>> import numpy as np
    >>> import fastloss.keras as L
    >>> L.KLDivergence()(np.array([[0.5, 0.5]]), np.array([[0.25, 0.75]]))
    np.float32(0.14384106)
    """

    def __init__(self, reduction="sum_over_batch_size", name="kl_divergence", dtype=None):
        super().__init__(kl_divergence, name=name, reduction=reduction, dtype=dtype)

    def get_config(self):
        return Loss.get_config(self)


class _BinaryFused:
    """Fused kernel path of the binary losses: one kernel pass, no per-element array."""

    def _fused(self, y_true, y_pred, sample_weight):
        if self.reduction in (None, "none"):
            return None
        y_true, y_pred = _c.squeeze_or_expand_to_same_rank(y_true, y_pred)
        if (y_true.shape != y_pred.shape or y_pred.ndim < 2 or y_pred.shape[-1] == 0
                or y_pred.size == 0 or _c.check_axis(self.axis, y_pred.ndim) != y_pred.ndim - 1):
            return None
        dt = y_pred.dtype
        batch = y_pred.shape[:-1]
        sw = None
        if sample_weight is not None:
            sw = np.asarray(sample_weight).astype(dt)
            if sw.shape != batch or not np.all(sw != 0):
                return None  # Keras's rank rules / NaN*0 semantics: general path
        if self.label_smoothing:
            y_true = _smooth_binary(y_true, self.label_smoothing, self._keras2)
        K = y_pred.shape[-1]
        if self.from_logits:
            s, _ = _c.bce_elements(y_true, y_pred, True, weights=sw, sw_div=K, reduction="sum")
        else:
            mode = _c.CLIP_KERAS2 if self._keras2 else _c.CLIP_EPS
            s, _ = _c.bce_elements(y_true, y_pred, False, mode, _EPS, weights=sw, sw_div=K,
                                   reduction="sum")
        return self._finish_fused(s / K, sw, int(np.prod(batch)), dt)

    def _finish_fused(self, s, sw, n, dt):
        if self.reduction == "sum":
            return dt.type(s)
        if self.reduction == "mean_with_sample_weight" and sw is not None:
            d = float(np.sum(sw, dtype=np.float64))
        else:
            d = float(n)
        return dt.type(0.0 if d == 0 else s / d)


@fill
class BinaryCrossentropy(_BinaryFused, LossFunctionWrapper):
    r"""``keras.losses.BinaryCrossentropy``.

    Parameters
    ----------
    %(keras_logit_options)s
    %(keras3_options)s

    See Also
    --------
    keras.losses.BinaryCrossentropy

    %(notes_keras)s

    Examples
    --------
    >>> import numpy as np
    >>> import fastloss.keras as L
    >>> L.BinaryCrossentropy()(np.array([[1., 0.]]), np.array([[0.8, 0.3]]))
    np.float32(0.28990924)
    """

    _keras2 = False

    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1,
                 reduction="sum_over_batch_size", name="binary_crossentropy", dtype=None):
        super().__init__(binary_crossentropy, name=name, reduction=reduction, dtype=dtype,
                         from_logits=from_logits, label_smoothing=label_smoothing, axis=axis)
        self.from_logits = from_logits
        self.label_smoothing = label_smoothing
        self.axis = axis

    def _fast_call(self, y_true, y_pred, sample_weight):
        """_fused's value by one compiled entry (plain NumPy in the compute dtype, same
        shapes: the entry checks the rest, weights included)."""
        smooth = None
        if self.label_smoothing:
            smooth = _c.smooth_constants(self.label_smoothing, self._np_dtype)
            if smooth is None:
                return None
        return _c.fast_bce(y_true, y_pred, self.from_logits, self.axis, self.reduction,
                           self._fast_ft, sample_weight=sample_weight, smooth=smooth)

    def get_config(self):
        config = Loss.get_config(self)
        config.update({"from_logits": self.from_logits, "label_smoothing": self.label_smoothing,
                       "axis": self.axis})
        return config


@fill
class BinaryFocalCrossentropy(LossFunctionWrapper):
    r"""``keras.losses.BinaryFocalCrossentropy``.

    Parameters
    ----------
    apply_class_balancing : bool, default False
        Weigh positives by ``alpha`` and negatives by ``1 - alpha``.
    alpha : float, default 0.25
        The balancing weight.
    gamma : float, default 2.0
        The focusing exponent.
    %(keras_logit_options)s
    %(keras3_options)s

    See Also
    --------
    keras.losses.BinaryFocalCrossentropy

    %(notes_keras)s

    Examples
    --------
    >>> import numpy as np
    >>> import fastloss.keras as L
    >>> L.BinaryFocalCrossentropy()(np.array([[1., 0.]]), np.array([[0.8, 0.3]]))
    np.float32(0.020513244)
    """

    def __init__(self, apply_class_balancing=False, alpha=0.25, gamma=2.0, from_logits=False,
                 label_smoothing=0.0, axis=-1, reduction="sum_over_batch_size",
                 name="binary_focal_crossentropy", dtype=None):
        super().__init__(binary_focal_crossentropy, name=name, reduction=reduction, dtype=dtype,
                         apply_class_balancing=apply_class_balancing, alpha=alpha, gamma=gamma,
                         from_logits=from_logits, label_smoothing=label_smoothing, axis=axis)
        self.from_logits = from_logits
        self.label_smoothing = label_smoothing
        self.axis = axis
        self.apply_class_balancing = apply_class_balancing
        self.alpha = alpha
        self.gamma = gamma

    def get_config(self):
        config = Loss.get_config(self)
        config.update({"from_logits": self.from_logits, "label_smoothing": self.label_smoothing,
                       "axis": self.axis, "apply_class_balancing": self.apply_class_balancing,
                       "alpha": self.alpha, "gamma": self.gamma})
        return config


@fill
class CategoricalCrossentropy(LossFunctionWrapper):
    r"""``keras.losses.CategoricalCrossentropy``.

    Parameters
    ----------
    %(keras_logit_options)s
    %(keras3_options)s

    See Also
    --------
    keras.losses.CategoricalCrossentropy

    %(notes_keras)s

    Examples
    --------
    >>> import numpy as np
    >>> import fastloss.keras as L
    >>> L.CategoricalCrossentropy()(np.array([[0., 1.]]), np.array([[0.25, 0.75]]))
    np.float32(0.2876821)
    """

    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1,
                 reduction="sum_over_batch_size", name="categorical_crossentropy", dtype=None):
        super().__init__(categorical_crossentropy, name=name, reduction=reduction, dtype=dtype,
                         from_logits=from_logits, label_smoothing=label_smoothing, axis=axis)
        self.from_logits = from_logits
        self.label_smoothing = label_smoothing
        self.axis = axis

    def _fast_call(self, y_true, y_pred, sample_weight):
        """Plain NumPy in the compute dtype: one compiled entry (it checks the rest:
        same-shaped C-contiguous ``(n, C)`` arrays, C >= 2, weights ``(n,)``)."""
        kw = self._fn_kwargs
        smooth = None
        if kw["label_smoothing"]:
            if type(y_pred) is not np.ndarray or y_pred.ndim != 2:
                return None
            smooth = _c.smooth_constants(kw["label_smoothing"], self._np_dtype, y_pred.shape[1])
            if smooth is None:
                return None
        return _c.fast_categorical(y_true, y_pred, kw["from_logits"], kw["axis"], self.reduction,
                                   self._fast_ft, sample_weight, smooth)

    def get_config(self):
        config = Loss.get_config(self)
        config.update({"from_logits": self.from_logits, "label_smoothing": self.label_smoothing,
                       "axis": self.axis})
        return config


@fill
class SparseCategoricalCrossentropy(LossFunctionWrapper):
    r"""``keras.losses.SparseCategoricalCrossentropy``.

    Parameters
    ----------
    from_logits : bool, default False
        ``y_pred`` holds logits (else probabilities, clipped as Keras clips them).
    ignore_class : int, optional
        Labels with this value give 0 (and leave the mean).
    reduction : str, default 'sum_over_batch_size'
        As in Keras 3.
    axis : int, default -1
        The axis reduced per sample.
    name : str, optional
        The loss's name.
    dtype : str, optional
        Compute dtype (``None``: float32, Keras's floatx).

    See Also
    --------
    keras.losses.SparseCategoricalCrossentropy

    %(notes_keras)s

    Examples
    --------
    >>> import numpy as np
    >>> import fastloss.keras as L
    >>> L.SparseCategoricalCrossentropy()(np.array([1]), np.array([[0.25, 0.75]]))
    np.float32(0.2876821)
    """

    def __init__(self, from_logits=False, ignore_class=None, reduction="sum_over_batch_size",
                 axis=-1, name="sparse_categorical_crossentropy", dtype=None):
        super().__init__(sparse_categorical_crossentropy, name=name, reduction=reduction,
                         dtype=dtype, from_logits=from_logits, ignore_class=ignore_class,
                         axis=axis)
        self.from_logits = from_logits
        self.ignore_class = ignore_class

    def _fast_call(self, y_true, y_pred, sample_weight):
        """Plain NumPy in the compute dtype: one compiled entry (it checks the rest:
        C-contiguous ``(n, C)`` float ``y_pred``, int64/int32 labels ``(n,)``/``(n, 1)`` in
        ``[0, C)`` or ignored, weights ``(n,)``, a scalar reduction)."""
        kw = self._fn_kwargs
        return _c.fast_sparse(y_true, y_pred, kw["from_logits"], kw["axis"], self.reduction,
                              self._fast_ft, sample_weight, kw["ignore_class"])

    def get_config(self):
        config = Loss.get_config(self)
        config.update({"from_logits": self.from_logits, "ignore_class": self.ignore_class})
        return config
