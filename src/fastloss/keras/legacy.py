"""Drop-in for ``tf.keras.losses`` of TensorFlow 2.x / Keras 2 (``tf_keras``) on NumPy arrays.

The names of :mod:`fastloss.keras` with tf.keras 2.x semantics (read from
tf_keras 2.21 ``src/losses.py``, ``src/backend.py``, ``src/utils/losses_utils.py``
and checked against it). Differences from Keras 3 that this module mirrors:

* **Double epsilon in BCE**: probabilities are clipped to ``[1e-7, 1 - 1e-7]`` *and*
  the logs are ``log(p + 1e-7)`` and ``log(1 - p + 1e-7)``, the additions done in
  the compute dtype. The per-element maximum is 15.425 (t=1, p=0) and 15.333
  (t=0, p=1) in float32 instead of Keras 3's 16.118 / 15.942. The focal loss
  uses the same BCE. Logits and the other losses are as in Keras 3.
* **No cast to floatx**: the compute dtype is ``y_pred``'s (float64 arrays are
  computed in float64; Python lists in float32), ``y_true`` is cast to it.
* **Reductions**: ``Reduction.AUTO`` (``"auto"``, the default, which is
  ``"sum_over_batch_size"``), ``"none"``, ``"sum"``, ``"sum_over_batch_size"``;
  ``None`` and ``"mean"`` raise. ``sample_weight`` of rank ``r+1`` is squeezed (an
  error unless its last dimension is 1), of rank ``r-1`` expanded, then broadcast.
  ``"sum_over_batch_size"`` divides by the number of weighted values, 0 for an
  empty batch; with ``ignore_class`` by the number of valid entries, and an
  all-ignored batch gives NaN (tf.keras computes ``mask * total / 0``).
* **No squeeze of NumPy inputs** (tf.keras only squeezes tensors): a ``(N,)``
  target against ``(N, 1)`` probabilities broadcasts to ``(N, N)`` like TensorFlow
  does; on logits it raises.
* Label smoothing is a tensor of the compute dtype: ``y * (1 - ls) + 0.5 * ls``
  with ``ls`` rounded first; the categorical one divides by ``y_true.shape[axis]``.
* ``sparse_categorical_crossentropy(y_true, y_pred, from_logits=False, axis=-1,
  ignore_class=None)``: note the argument order; any ``axis``; labels shaped
  ``(N, 1)`` are flattened; ignored entries give 0.

The documented deviations of :mod:`fastloss.keras` apply here too (float64
sums and log-sum-exp; float32 element-wise steps in Keras's order), plus
``InvalidArgumentError`` becomes ``ValueError``. Integer ``y_pred`` keeps its dtype as in
tf.keras (Python ints: int32): ``mean_squared_error`` is computed in it (the mean over
the last axis rounded toward zero, reductions in float32 cast back), the other losses
raise ``TypeError`` as tf.keras does (checked against tf_keras 2.21).

**Containers: a ``tf.Tensor`` out, whatever came in**, as tf.keras (which runs every input
through ``tf.convert_to_tensor``; checked against tf_keras 2.21): NumPy arrays, Python
lists, pandas objects, torch tensors and TF tensors all give a ``tf.Tensor``
of ``y_pred``'s dtype (lists: float32), for the functions, the classes with every
reduction and a user's ``Loss`` subclass whose ``call`` returns NumPy. The values are
computed on NumPy and converted once at the end. TensorFlow is imported at the first
result, never by ``import fastloss`` or ``import fastloss.keras.legacy`` (tf.keras users
have it by definition; without it the call raises ``ImportError``). Half precision and
``_keras_mask`` follow the rules of :mod:`fastloss.keras` (float16/bfloat16 computed in
float32 and rounded once; the mask of ``y_pred`` honoured as ``losses_utils`` does).
``BinaryFocalCrossentropy`` has tf.keras's attributes (``gamma``, ``alpha``, ...), and
``get_config()`` carries ``fn`` (tf.keras's saving v3 default).
The sparse, categorical and binary cross-entropy objects take the compiled route of
:mod:`fastloss.keras` on plain NumPy (there: "Speed"), here with y_pred's own dtype.

Upstream suite (``tests/dropins/upstream/run_upstream.py tf-keras``): tf-keras's
``losses_test.py`` (vendored, commit dd0a7237, 2.21.0), the classes of the losses provided
here, only the imports changed: 116 run, 68 pass, 0 fail; out of scope:

* 48 graph-mode copies (``test_mode_graph``) that build their inputs as symbolic tensors,
  which have no data to compute on (the graph-mode copies that give NumPy pass: their
  results become graph constants). The test command (``tests/dropins/test_upstream.py``)
  runs the 58 eager tests and asserts that all 58 pass;
* none for ``tf.RaggedTensor``: as tf.keras, the binary losses and MSE of a
  ``(batch, None)`` tensor are one value per row, the categorical and sparse losses one
  value per position of the ragged dimensions (ragged out); other forms raise
  ``TypeError``.
"""

import functools
import warnings

import numpy as np

from fastloss.keras import _common as _c
from fastloss.losses._docs import fill
from fastloss.keras import (
    _bce_values,
    _categorical_values,
    _focal_values,
    _labels,
)

__all__ = [
    "BinaryCrossentropy",
    "BinaryFocalCrossentropy",
    "CategoricalCrossentropy",
    "KLDivergence",
    "Loss",
    "LossFunctionWrapper",
    "MeanSquaredError",
    "Reduction",
    "SparseCategoricalCrossentropy",
    "binary_crossentropy",
    "binary_focal_crossentropy",
    "categorical_crossentropy",
    "kl_divergence",
    "mean_squared_error",
    "sparse_categorical_crossentropy",
]

_EPS = _c.EPSILON


@fill
class Reduction:
    r"""``tf.keras.losses.Reduction`` (ReductionV2).

    The reduction names of tf.keras 2 (``AUTO`` is ``SUM_OVER_BATCH_SIZE`` outside a
    distribution strategy); ``all()`` lists them and ``validate(key)`` raises for others.

    See Also
    --------
    tf.keras.losses.Reduction

    %(notes_keras)s

    Examples
    --------
    >>> import fastloss.keras.legacy as L
    >>> L.Reduction.all()
    ('auto', 'none', 'sum', 'sum_over_batch_size')
    """

    AUTO = "auto"
    NONE = "none"
    SUM = "sum"
    SUM_OVER_BATCH_SIZE = "sum_over_batch_size"

    @classmethod
    def all(cls):
        return (cls.AUTO, cls.NONE, cls.SUM, cls.SUM_OVER_BATCH_SIZE)

    @classmethod
    def validate(cls, key):
        if key not in cls.all():
            raise ValueError(f'Invalid Reduction Key: {key}. Expected keys are "{cls.all()}"')


def _squeeze_or_expand_weights(losses, sw):
    """The ``sample_weight`` half of ``losses_utils.squeeze_or_expand_dimensions``."""
    if sw.ndim == 0:
        return sw
    if sw.ndim - losses.ndim == 1:
        if sw.shape[-1] != 1:
            raise ValueError(f"Can not squeeze dim[{sw.ndim - 1}], expected a dimension of 1, "
                             f"got {sw.shape[-1]}")
        return sw[..., 0]
    if losses.ndim - sw.ndim == 1:
        return sw[..., None]
    return sw


def compute_weighted_loss(losses, sample_weight=None, reduction=Reduction.SUM_OVER_BATCH_SIZE,
                          *, _mask_scale=None):
    """``losses_utils.compute_weighted_loss`` with float64 sums."""
    Reduction.validate(reduction)
    if reduction == Reduction.AUTO:
        reduction = Reduction.SUM_OVER_BATCH_SIZE
    losses = np.asarray(losses)
    int_dt = None
    if losses.dtype.kind != "f":  # tf.keras reduces in float32, then casts back
        int_dt = losses.dtype if losses.dtype.kind in "iu" else None
        losses = losses.astype(np.float32)
    if int_dt is not None:
        res = compute_weighted_loss(losses, sample_weight, reduction, _mask_scale=_mask_scale)
        return _c.scalar_or_array(np.trunc(res), int_dt)
    dt = losses.dtype
    sw = np.asarray(1.0 if sample_weight is None else sample_weight).astype(dt)
    sw = _squeeze_or_expand_weights(losses, sw)
    try:
        shape = np.broadcast_shapes(losses.shape, sw.shape)
    except ValueError:  # TensorFlow's message for the same broadcast failure
        fmt = lambda sh: "[" + ",".join(map(str, sh)) + "]"  # noqa: E731
        raise ValueError(f"Incompatible shapes: {fmt(losses.shape)} vs. {fmt(sw.shape)} "
                         "(losses and sample_weight)") from None
    prod = _c.weighted_product(losses, sw)
    if reduction == Reduction.NONE:
        return _c.scalar_or_array(np.broadcast_to(prod, shape), dt)
    with np.errstate(invalid="ignore", over="ignore"):
        s = float(np.sum(prod))
    if reduction == Reduction.SUM:
        return dt.type(s)
    n = prod.size
    if n == 0:
        return dt.type(0.0)  # divide_no_nan
    if _mask_scale is not None:
        # tf.keras scales the mask by total / valid (0 * inf = NaN when all are ignored),
        # then divides by n: the same as dividing by `valid` when nothing broadcast.
        total, valid = _mask_scale
        if valid == 0:
            return dt.type(np.nan)
        return dt.type(s / valid if n == total else s * (total / valid) / n)
    return dt.type(s / n)


@fill
class Loss:
    r"""``tf.keras.losses.Loss``.

    Parameters
    ----------
    %(keras2_options)s

    See Also
    --------
    LossFunctionWrapper

    %(notes_keras)s

    Examples
    --------
    >>> import numpy as np
    >>> import fastloss.keras.legacy as L
    >>> class Abs(L.Loss):
    ...     def call(self, y_true, y_pred):
    ...         return np.abs(y_pred - y_true).mean(axis=-1)
    >>> Abs()(np.zeros((2, 2)), np.ones((2, 2)))
    <tf.Tensor: shape=(), dtype=float64, numpy=1.0>
    """

    def __init__(self, reduction=Reduction.AUTO, name=None):
        Reduction.validate(reduction)
        self.reduction = reduction
        self.name = name

    def __call__(self, y_true, y_pred, sample_weight=None):
        fast = self._fast_call(y_true, y_pred, sample_weight)
        if fast is not None:
            return _tf(fast)  # tf.keras's container, whatever the route
        if _is_ragged(y_pred) or _is_ragged(y_true):
            return self._ragged_call(y_true, y_pred, sample_weight)
        in_mask = _c.keras_mask(y_pred)
        y_true, y_pred, sample_weight = map(_c.host, (y_true, y_pred, sample_weight))
        half = _c.half_of(y_pred)
        if half is not None:  # tf.keras computes in y_pred's dtype: float32, rounded once
            y_pred = y_pred.astype(np.float32)
            if np.asarray(y_true).dtype.kind == "f":
                y_true = np.asarray(y_true).astype(half).astype(np.float32)
        res = self._reduced(y_true, y_pred, sample_weight, in_mask)
        return _tf(_c.finish(res, half))

    def _ragged_call(self, y_true, y_pred, sample_weight):
        """Ragged inputs: the function's losses (dense per sample, or ragged per position),
        weighted (dense weights broadcast over the ragged rows, as TensorFlow does) and
        reduced like dense ones."""
        import tensorflow as tf

        losses = self.call(y_true, y_pred)
        reduction = self._get_reduction()
        if not _is_ragged(losses):
            res = compute_weighted_loss(_c.host(losses), _c.host(sample_weight), reduction)
            return _tf(res)
        sw = None
        if sample_weight is not None:
            sw = (tf.ones_like(losses) * tf.cast(sample_weight, losses.dtype)).flat_values.numpy()
        res = compute_weighted_loss(losses.flat_values.numpy(), sw, reduction)
        if reduction == Reduction.NONE:
            return losses.with_flat_values(tf.convert_to_tensor(res))
        return _tf(res)

    def _reduced(self, y_true, y_pred, sample_weight, in_mask):
        fast = None if in_mask is not None else self._fused(y_true, y_pred, sample_weight)
        if fast is not None:
            return fast
        losses, mask = self._call_masked(y_true, y_pred)
        losses = np.asarray(losses)
        if in_mask is not None:  # tf.keras: the input's mask, and the loss's own
            mask = in_mask if mask is None else (np.asarray(mask, bool) & in_mask)
        reduction = self._get_reduction()
        mask_scale = None
        sw = sample_weight
        if mask is not None:
            dt = losses.dtype
            m = np.asarray(mask, dtype=bool)
            if reduction == Reduction.SUM_OVER_BATCH_SIZE:
                mask_scale = (m.size, int(np.count_nonzero(m)))
            fm = m.astype(dt)
            if sw is not None:
                sw = np.asarray(sw).astype(dt)
                sw = _squeeze_or_expand_weights(fm, sw)
                sw = sw * fm
            else:
                sw = fm
        return compute_weighted_loss(losses, sw, reduction, _mask_scale=mask_scale)

    def _fast_call(self, y_true, y_pred, sample_weight):
        """The whole call for the common case, or None (then the general path)."""
        return None

    def _fused(self, y_true, y_pred, sample_weight):
        return None

    def _call_masked(self, y_true, y_pred):
        return self.call(y_true, y_pred), None

    def _get_reduction(self):
        return Reduction.SUM_OVER_BATCH_SIZE if self.reduction == Reduction.AUTO else self.reduction

    def call(self, y_true, y_pred):
        raise NotImplementedError("Must be implemented in subclasses.")

    def get_config(self):
        return {"reduction": self.reduction, "name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


@fill
class LossFunctionWrapper(Loss):
    r"""``tf.keras`` ``LossFunctionWrapper`` (NumPy inputs: no squeeze, as in tf.keras).

    Parameters
    ----------
    fn : callable
        ``fn(y_true, y_pred, **kwargs)`` giving per-sample values.
    %(keras2_options)s
    **kwargs
        Fixed keyword arguments of ``fn``.

    See Also
    --------
    Loss

    %(notes_keras)s

    Examples
    --------
    >>> import numpy as np
    >>> import fastloss.keras.legacy as L
    >>> L.LossFunctionWrapper(L.mean_squared_error)(np.zeros((1, 2)), np.ones((1, 2)))
    <tf.Tensor: shape=(), dtype=float64, numpy=1.0>
    """

    def __init__(self, fn, reduction=Reduction.AUTO, name=None, **kwargs):
        super().__init__(reduction=reduction, name=name)
        self.fn = fn
        self._fn_kwargs = kwargs

    def call(self, y_true, y_pred):
        # the functions' NumPy values: __call__ reduces them and converts once
        return getattr(self.fn, "numpy_fn", self.fn)(y_true, y_pred, **self._fn_kwargs)

    def _call_masked(self, y_true, y_pred):
        if self.fn is sparse_categorical_crossentropy:
            return _sparse_values(y_true, y_pred, **self._fn_kwargs)
        return self.call(y_true, y_pred), None

    def get_config(self):
        config = dict(self._fn_kwargs)
        config.update(super().get_config())
        # tf.keras (saving v3, its default) names the function by its registered name
        config["fn"] = getattr(self.fn, "__name__", repr(self.fn))
        return config

    @classmethod
    def from_config(cls, config):
        """tf.keras: the ``fn`` name is read back only by ``LossFunctionWrapper`` itself."""
        config = dict(config)
        fn_name = config.pop("fn", None)
        if fn_name and cls is LossFunctionWrapper:
            config["fn"] = globals()[fn_name] if isinstance(fn_name, str) else fn_name
        return cls(**config)


# --------------------------------------------------------------------------- containers


def _tf(res):
    """tf.keras's container: a ``tf.Tensor`` of the result's dtype, whatever came in."""
    try:
        return _c.to_tf(res)
    except ImportError as e:  # tf.keras cannot run without it either
        raise ImportError("fastloss.keras.legacy returns tf.Tensor results, as tf.keras does, "
                          "and needs TensorFlow") from e


_NUMPY_RETURNS = ("ndarray or scalar\n", "    Per-sample values (the reduced axis removed), ")


def _tf_result(fn):
    """A legacy function returning ``tf.Tensor`` (tf.keras converts every input it takes
    with ``tf.convert_to_tensor``, so NumPy, lists, pandas and torch all give TF out)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return _tf(fn(*args, **kwargs))

    wrapper.numpy_fn = fn
    doc = fn.__doc__ or ""  # None under python -OO
    wrapper.__doc__ = doc.replace(_NUMPY_RETURNS[0], "tf.Tensor\n").replace(
        _NUMPY_RETURNS[1], "    Per-sample values (the reduced axis removed; ragged per position "
                           "for ragged categorical inputs), ")
    return wrapper


# --------------------------------------------------------------------------- ragged


def _is_ragged(x):
    return type(x).__name__ == "RaggedTensor" and _c.is_tf(x)


def _ragged_rows(fn):
    """tf.keras's ``_ragged_tensor_apply_loss`` for ``(batch, None)`` ragged tensors: the
    loss of each row (one value per sample), as a dense tensor. Deeper raggedness (the
    categorical and sparse ragged forms) raises ``TypeError``."""

    @functools.wraps(fn)
    def wrapper(y_true, y_pred, *args, **kwargs):
        if not (_is_ragged(y_pred) or _is_ragged(y_true)):
            return fn(y_true, y_pred, *args, **kwargs)
        import tensorflow as tf

        for r in (y_true, y_pred):
            if not _is_ragged(r) or r.ragged_rank != 1 or r.shape.rank != 2:
                raise TypeError(f"{fn.__name__}: fastloss supports tf.RaggedTensor inputs of "
                                "shape (batch, None) only, both ragged alike")
        t_rows, p_rows = y_true.row_lengths().numpy(), y_pred.row_lengths().numpy()
        if not np.array_equal(t_rows, p_rows):
            raise ValueError("Inputs must have identical ragged splits: row lengths "
                             f"{t_rows.tolist()} vs {p_rows.tolist()}")
        dt = np.dtype(y_pred.dtype.as_numpy_dtype)
        tv = y_true.flat_values.numpy().astype(dt)
        pv = y_pred.flat_values.numpy()
        ends = np.cumsum(p_rows)
        vals = [np.asarray(fn(tv[e - n:e], pv[e - n:e], *args, **kwargs))
                for n, e in zip(p_rows, ends)]
        return tf.convert_to_tensor(np.array(vals, dtype=vals[0].dtype if vals else dt))

    return wrapper


def _class_rows(r):
    """A ragged ``(..., C)`` tensor's values as dense ``(N, C)`` rows, and the row splits
    of the ragged dimensions before the class axis."""
    values = r.flat_values.numpy()
    splits = r.nested_row_splits
    if values.ndim == 1:  # the class axis is stored ragged too: it must be one length
        lengths = r.nested_row_lengths()[-1].numpy()
        if lengths.size and (lengths != lengths[0]).any():
            raise ValueError("The class axis of a RaggedTensor must have one length; got "
                             f"lengths {sorted(set(lengths.tolist()))}")
        values = values.reshape(-1, int(lengths[0]) if lengths.size else 0)
        splits = splits[:-1]
    return values, splits


def _ragged_classes(fn, sparse=False):
    """tf.keras's ragged form of the categorical losses: a loss per position of the ragged
    dimensions (the class axis last and uniform), returned ragged like them."""

    @functools.wraps(fn)
    def wrapper(y_true, y_pred, *args, **kwargs):
        if not (_is_ragged(y_pred) or _is_ragged(y_true)):
            return fn(y_true, y_pred, *args, **kwargs)
        import tensorflow as tf

        if not (_is_ragged(y_pred) and _is_ragged(y_true)):
            raise TypeError(f"{fn.__name__}: fastloss takes y_true and y_pred both ragged")
        pv, splits = _class_rows(y_pred)
        if sparse:
            tv, t_splits = y_true.flat_values.numpy(), y_true.nested_row_splits
        else:
            tv, t_splits = _class_rows(y_true)
        if len(t_splits) != len(splits) or not all(
                np.array_equal(a.numpy(), b.numpy()) for a, b in zip(t_splits, splits)):
            raise ValueError(f"{fn.__name__}: y_true and y_pred have different ragged rows")
        vals = np.asarray(fn(tv, pv, *args, **kwargs))
        return tf.RaggedTensor.from_nested_row_splits(vals, splits)

    return wrapper


# --------------------------------------------------------------------------- functions


def _pair(y_true, y_pred, name):
    _c.no_ints(name, y_pred, "tf.keras")
    y_pred = _c.as_tensor(y_pred)
    y_true = _c.as_tensor(y_true, y_pred.dtype)
    return y_true, y_pred


def _int_mse(y_true, y_pred, dt):
    """tf.keras's MSE of integer ``y_pred``: in its integer dtype, the mean over the last
    axis rounded toward zero (``reduce_mean`` of integers)."""
    if dt.kind == "b":  # TensorFlow: InvalidArgumentError
        raise ValueError("mean_squared_error: y_pred has dtype bool, for which TensorFlow's "
                         "squared_difference has no kernel")
    yp = np.asarray(y_pred).astype(dt)
    d = yp - np.asarray(y_true).astype(dt)
    if d.ndim == 0:
        _c.check_axis(-1, 0)
    s = np.sum(d * d, axis=-1, dtype=dt)
    n = max(d.shape[-1], 1)  # an empty axis: TensorFlow's integer mean is 0
    return _c.scalar_or_array(np.sign(s) * (np.abs(s) // n), dt)


@_tf_result
@fill
@_ragged_rows
@_c.framework_io
def mean_squared_error(y_true, y_pred):
    r"""``mean(squared_difference(y_pred, y_true), axis=-1)`` (shapes broadcast).

    Parameters
    ----------
    y_true : array_like
        Targets.
    y_pred : array_like
        Predictions.

    %(keras_returns_raises)s

    See Also
    --------
    tf.keras.losses.mean_squared_error

    %(notes_keras)s

    Examples
    --------
    >>> import numpy as np
    >>> import fastloss.keras.legacy as L
    >>> L.mean_squared_error(np.array([[0., 1.]]), np.array([[1., 3.]]))
    <tf.Tensor: shape=(1,), dtype=float64, numpy=array([2.5])>
    """
    dt = _c.int_dtype(y_pred)
    if dt is not None:
        return _int_mse(y_true, y_pred, dt)
    return _c.mse_last(*_pair(y_true, y_pred, "mean_squared_error"))


@_tf_result
@fill
@_ragged_rows
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
    tf.keras.losses.kl_divergence

    %(notes_keras)s

    Examples
    --------
    >>> import numpy as np
    >>> import fastloss.keras.legacy as L
    >>> L.kl_divergence(np.array([[0.5, 0.5]]), np.array([[0.25, 0.75]]))
    <tf.Tensor: shape=(1,), dtype=float64, numpy=array([0.14384104])>
    """
    y_true, y_pred = _pair(y_true, y_pred, "kl_divergence")
    if y_true.shape != y_pred.shape:
        y_true, y_pred = np.broadcast_arrays(y_true, y_pred)
    return _c.kl_values(y_true, y_pred)[()]


def _broadcast_probs(y_true, y_pred, from_logits):
    if y_true.shape == y_pred.shape:
        return y_true, y_pred
    if from_logits:
        raise ValueError("`logits` and `labels` must have the same shape, received "
                         f"({y_pred.shape} vs {y_true.shape}).")
    return tuple(np.ascontiguousarray(a) for a in np.broadcast_arrays(y_true, y_pred))


@_tf_result
@fill
@_ragged_rows
@_c.framework_io
def binary_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    r"""tf.keras 2 BCE (double epsilon on probabilities), mean over ``axis``.

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
    tf.keras.losses.binary_crossentropy

    %(notes_keras)s

    Examples
    --------
    >>> import numpy as np
    >>> import fastloss.keras.legacy as L
    >>> L.binary_crossentropy(np.array([[1., 0.]]), np.array([[0.8, 0.3]]))
    <tf.Tensor: shape=(1,), dtype=float64, numpy=array([0.28990911])>
    """
    y_true, y_pred = _pair(y_true, y_pred, "binary_crossentropy")
    y_true, y_pred = _broadcast_probs(y_true, y_pred, from_logits)
    v = _bce_values(y_true, y_pred, from_logits, label_smoothing, axis, keras2=True)
    return _c.mean_last(v, axis)[()]


@_tf_result
@fill
@_ragged_rows
@_c.framework_io
def binary_focal_crossentropy(y_true, y_pred, apply_class_balancing=False, alpha=0.25, gamma=2.0,
                              from_logits=False, label_smoothing=0.0, axis=-1):
    r"""tf.keras 2 focal BCE, mean over ``axis``.

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
    tf.keras.losses.binary_focal_crossentropy

    %(notes_keras)s

    Examples
    --------
    >>> import numpy as np
    >>> import fastloss.keras.legacy as L
    >>> L.binary_focal_crossentropy(np.array([[1., 0.]]), np.array([[0.8, 0.3]]))
    <tf.Tensor: shape=(1,), dtype=float64, numpy=array([0.02051323])>
    """
    y_true, y_pred = _pair(y_true, y_pred, "binary_focal_crossentropy")
    v = _focal_values(y_true, y_pred, apply_class_balancing, alpha, gamma, from_logits,
                      label_smoothing, keras2=True)
    return _c.mean_last(v, axis)[()]


@_tf_result
@fill
@_ragged_classes
@_c.framework_io
def categorical_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    r"""tf.keras 2 categorical cross-entropy (renormalised, clipped probabilities).

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
    tf.keras.losses.categorical_crossentropy

    %(notes_keras)s

    Examples
    --------
    >>> import numpy as np
    >>> import fastloss.keras.legacy as L
    >>> L.categorical_crossentropy(np.array([[0., 1.]]), np.array([[0.25, 0.75]]))
    <tf.Tensor: shape=(1,), dtype=float64, numpy=array([0.28768207])>
    """
    if isinstance(axis, bool):
        raise ValueError(f"`axis` must be of type `int`. Received: axis={axis} of type "
                         f"{type(axis)}")
    y_true, y_pred = _pair(y_true, y_pred, "categorical_crossentropy")
    dt = y_pred.dtype
    if y_pred.ndim and y_pred.shape[-1] == 1:
        warnings.warn("In loss categorical_crossentropy, expected y_pred.shape to be "
                      "(batch_size, num_classes) with num_classes > 1. Received: "
                      f"y_pred.shape={y_pred.shape}. Consider using 'binary_crossentropy' if "
                      "you only have 2 classes.", SyntaxWarning, stacklevel=2)
    if label_smoothing:
        ls = dt.type(label_smoothing)
        C = dt.type(y_true.shape[_c.check_axis(axis, y_true.ndim)])
        y_true = y_true * (dt.type(1) - ls) + ls / C
    if y_true.shape != y_pred.shape:
        raise ValueError(f"Shapes {y_true.shape} and {y_pred.shape} are incompatible")
    if y_pred.ndim == 0:
        raise ValueError("categorical_crossentropy needs at least one axis")
    return _categorical_values(y_true, y_pred, from_logits, axis)[()]


def _sparse_values(y_true, y_pred, from_logits=False, axis=-1, ignore_class=None):
    """tf.keras 2 ``backend.sparse_categorical_crossentropy``: ``(values, mask or None)``."""
    _c.no_ints("sparse_categorical_crossentropy", y_pred, "tf.keras")
    y_pred = _c.as_tensor(y_pred)
    y_true = np.asarray(y_true)
    if y_pred.ndim < 1:
        raise ValueError("sparse_categorical_crossentropy needs y_pred with a class axis")
    ax = _c.check_axis(axis, y_pred.ndim)
    out = np.moveaxis(y_pred, ax, -1)
    C = out.shape[-1]
    res_shape = out.shape[:-1]
    if y_true.ndim != y_pred.ndim - 1:  # tf.keras flattens the target
        y_true = y_true.reshape(-1)
    if y_true.size != int(np.prod(res_shape)):
        raise ValueError(f"target has {y_true.size} labels but output has "
                         f"{int(np.prod(res_shape))} rows (output.shape={y_pred.shape})")
    # TF casts the target to int64 first: the ignore test is on the truncated labels
    yt = np.trunc(y_true) if y_true.dtype.kind == "f" else y_true
    y_flat = yt.reshape(-1).astype(np.int64)
    valid = None
    if ignore_class is not None:
        valid = y_flat != np.int64(ignore_class)
        y_flat = np.where(valid, y_flat, 0)
    y = _labels(y_flat, C)
    x2 = np.ascontiguousarray(out).reshape(-1, C)
    if not from_logits:
        with np.errstate(divide="ignore", invalid="ignore"):
            x2 = np.log(_c.clip(x2, _EPS, 1.0 - _EPS))
    if valid is not None:
        y = np.where(valid, y, -1)
    v = _c.sparse_rows(x2, y, True, ignore=-1 if valid is not None else None).reshape(res_shape)
    return v, None if valid is None else valid.reshape(res_shape)


@_tf_result
@fill
@functools.partial(_ragged_classes, sparse=True)
@_c.framework_io
def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False, axis=-1,
                                    ignore_class=None):
    r"""tf.keras 2 sparse cross-entropy (note: ``axis`` before ``ignore_class``).

    Parameters
    ----------
    y_true : array_like
        Targets.
    y_pred : array_like
        Predictions.
    from_logits : bool, default False
        ``y_pred`` holds logits (else probabilities, clipped as Keras clips them).
    axis : int, default -1
        The axis reduced per sample.
    ignore_class : int, optional
        Labels with this value give 0 (and leave the mean).

    %(keras_returns_raises)s

    See Also
    --------
    tf.keras.losses.sparse_categorical_crossentropy

    %(notes_keras)s

    Examples
    --------
    >>> import numpy as np
    >>> import fastloss.keras.legacy as L
    >>> L.sparse_categorical_crossentropy(np.array([1]), np.array([[0.25, 0.75]]))
    <tf.Tensor: shape=(1,), dtype=float64, numpy=array([0.28768207])>
    """
    return _sparse_values(y_true, y_pred, from_logits, axis, ignore_class)[0][()]


# --------------------------------------------------------------------------- classes


@fill
class MeanSquaredError(LossFunctionWrapper):
    r"""``tf.keras.losses.MeanSquaredError``.

    Parameters
    ----------
    %(keras2_options)s

    See Also
    --------
    tf.keras.losses.MeanSquaredError

    %(notes_keras)s

    Examples
    --------
    >>> import numpy as np
    >>> import fastloss.keras.legacy as L
    >>> L.MeanSquaredError()(np.array([[0., 1.]]), np.array([[1., 3.]]))
    <tf.Tensor: shape=(), dtype=float64, numpy=2.5>
    """

    def __init__(self, reduction=Reduction.AUTO, name="mean_squared_error"):
        super().__init__(mean_squared_error, name=name, reduction=reduction)


@fill
class KLDivergence(LossFunctionWrapper):
    r"""``tf.keras.losses.KLDivergence``.

    Parameters
    ----------
    %(keras2_options)s

    See Also
    --------
    tf.keras.losses.KLDivergence

    %(notes_keras)s

    Examples
    --------
    >>> import numpy as np
    >>> import fastloss.keras.legacy as L
    >>> L.KLDivergence()(np.array([[0.5, 0.5]]), np.array([[0.25, 0.75]]))
    <tf.Tensor: shape=(), dtype=float64, numpy=0.14384103622589042>
    """

    def __init__(self, reduction=Reduction.AUTO, name="kl_divergence"):
        super().__init__(kl_divergence, name=name, reduction=reduction)


@fill
class BinaryCrossentropy(LossFunctionWrapper):
    r"""``tf.keras.losses.BinaryCrossentropy`` (double epsilon).

    Parameters
    ----------
    %(keras_logit_options)s
    %(keras2_options)s

    See Also
    --------
    tf.keras.losses.BinaryCrossentropy

    %(notes_keras)s

    Examples
    --------
    >>> import numpy as np
    >>> import fastloss.keras.legacy as L
    >>> L.BinaryCrossentropy()(np.array([[1., 0.]]), np.array([[0.8, 0.3]]))
    <tf.Tensor: shape=(), dtype=float64, numpy=0.2899091136979087>
    """

    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1, reduction=Reduction.AUTO,
                 name="binary_crossentropy"):
        super().__init__(binary_crossentropy, name=name, reduction=reduction,
                         from_logits=from_logits, label_smoothing=label_smoothing, axis=axis)
        self.from_logits = from_logits

    def _fast_call(self, y_true, y_pred, sample_weight):
        """_fused's value by one compiled entry (plain NumPy, same shapes and dtype, no
        weights: the entry checks the rest)."""
        kw = self._fn_kwargs
        smooth = None
        if sample_weight is not None:
            return None
        if kw["label_smoothing"]:
            if type(y_pred) is not np.ndarray:
                return None
            smooth = _c.smooth_constants(kw["label_smoothing"], y_pred.dtype, keras2=True)
            if smooth is None:
                return None
        return _c.fast_bce(y_true, y_pred, kw["from_logits"], kw["axis"], self.reduction,
                           keras2=True, smooth=smooth)

    def _fused(self, y_true, y_pred, sample_weight):
        """One kernel pass for the plain case (same shapes, last axis, no weights)."""
        if sample_weight is not None or self._get_reduction() == Reduction.NONE:
            return None
        y_true, y_pred = _pair(y_true, y_pred, "binary_crossentropy")
        kw = self._fn_kwargs
        if (y_true.shape != y_pred.shape or y_pred.ndim < 2 or y_pred.size == 0
                or _c.check_axis(kw["axis"], y_pred.ndim) != y_pred.ndim - 1):
            return None
        dt = y_pred.dtype
        if kw["label_smoothing"]:
            l32 = dt.type(kw["label_smoothing"])
            y_true = y_true * (dt.type(1) - l32) + dt.type(0.5) * l32
        if kw["from_logits"]:
            s, _ = _c.bce_elements(y_true, y_pred, True, reduction="sum")
        else:
            s, _ = _c.bce_elements(y_true, _c.clip(y_pred, _EPS, 1.0 - _EPS), False,
                                   _c.CLIP_KERAS2, _EPS, reduction="sum")
        K = y_pred.shape[-1]
        n = y_pred.size // K
        s = s / K
        return dt.type(s) if self._get_reduction() == Reduction.SUM else dt.type(s / n)


@fill
class BinaryFocalCrossentropy(LossFunctionWrapper):
    r"""``tf.keras.losses.BinaryFocalCrossentropy``.

    Parameters
    ----------
    apply_class_balancing : bool, default False
        Weigh positives by ``alpha`` and negatives by ``1 - alpha``.
    alpha : float, default 0.25
        The balancing weight.
    gamma : float, default 2.0
        The focusing exponent.
    %(keras_logit_options)s
    %(keras2_options)s

    See Also
    --------
    tf.keras.losses.BinaryFocalCrossentropy

    %(notes_keras)s

    Examples
    --------
    >>> import numpy as np
    >>> import fastloss.keras.legacy as L
    >>> L.BinaryFocalCrossentropy()(np.array([[1., 0.]]), np.array([[0.8, 0.3]]))
    <tf.Tensor: shape=(), dtype=float64, numpy=0.02051323457495635>
    """

    def __init__(self, apply_class_balancing=False, alpha=0.25, gamma=2.0, from_logits=False,
                 label_smoothing=0.0, axis=-1, reduction=Reduction.AUTO,
                 name="binary_focal_crossentropy"):
        super().__init__(binary_focal_crossentropy, name=name, reduction=reduction,
                         apply_class_balancing=apply_class_balancing, alpha=alpha, gamma=gamma,
                         from_logits=from_logits, label_smoothing=label_smoothing, axis=axis)
        self.from_logits = from_logits
        self.apply_class_balancing = apply_class_balancing
        self.alpha = alpha
        self.gamma = gamma


@fill
class CategoricalCrossentropy(LossFunctionWrapper):
    r"""``tf.keras.losses.CategoricalCrossentropy``.

    Parameters
    ----------
    %(keras_logit_options)s
    %(keras2_options)s

    See Also
    --------
    tf.keras.losses.CategoricalCrossentropy

    %(notes_keras)s

    Examples
    --------
    >>> import numpy as np
    >>> import fastloss.keras.legacy as L
    >>> L.CategoricalCrossentropy()(np.array([[0., 1.]]), np.array([[0.25, 0.75]]))
    <tf.Tensor: shape=(), dtype=float64, numpy=0.2876820724517809>
    """

    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1, reduction=Reduction.AUTO,
                 name="categorical_crossentropy"):
        super().__init__(categorical_crossentropy, name=name, reduction=reduction,
                         from_logits=from_logits, label_smoothing=label_smoothing, axis=axis)

    def _fast_call(self, y_true, y_pred, sample_weight):
        """Plain NumPy: one compiled entry (it checks the rest: same-shaped, same-dtype
        C-contiguous ``(n, C)`` arrays, C >= 2, weights ``(n,)``)."""
        kw = self._fn_kwargs
        smooth = None
        if kw["label_smoothing"]:
            if type(y_pred) is not np.ndarray or y_pred.ndim != 2:
                return None
            smooth = _c.smooth_constants(kw["label_smoothing"], y_pred.dtype, y_pred.shape[1],
                                         keras2=True)
            if smooth is None:
                return None
        return _c.fast_categorical(y_true, y_pred, kw["from_logits"], kw["axis"],
                                   self.reduction, sample_weight=sample_weight, smooth=smooth)


@fill
class SparseCategoricalCrossentropy(LossFunctionWrapper):
    r"""``tf.keras.losses.SparseCategoricalCrossentropy``.

    Parameters
    ----------
    from_logits : bool, default False
        ``y_pred`` holds logits (else probabilities, clipped as Keras clips them).
    ignore_class : int, optional
        Labels with this value give 0 (and leave the mean).
    %(keras2_options)s

    See Also
    --------
    tf.keras.losses.SparseCategoricalCrossentropy

    %(notes_keras)s

    Examples
    --------
    >>> import numpy as np
    >>> import fastloss.keras.legacy as L
    >>> L.SparseCategoricalCrossentropy()(np.array([1]), np.array([[0.25, 0.75]]))
    <tf.Tensor: shape=(), dtype=float64, numpy=0.28768207245178096>
    """

    def __init__(self, from_logits=False, ignore_class=None, reduction=Reduction.AUTO,
                 name="sparse_categorical_crossentropy"):
        super().__init__(sparse_categorical_crossentropy, name=name, reduction=reduction,
                         from_logits=from_logits, ignore_class=ignore_class)

    def _fast_call(self, y_true, y_pred, sample_weight):
        """Plain NumPy: one compiled entry (it checks the rest: C-contiguous ``(n, C)``
        float ``y_pred``, int64/int32 labels ``(n,)``/``(n, 1)`` in ``[0, C)`` or ignored,
        C >= 2, weights ``(n,)``)."""
        kw = self._fn_kwargs
        return _c.fast_sparse(y_true, y_pred, kw["from_logits"], -1, self.reduction,
                              sample_weight=sample_weight, ignore_class=kw["ignore_class"],
                              keras2=True)
