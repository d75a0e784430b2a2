"""Shared machinery of ``fastloss.keras`` (Keras 3) and ``fastloss.keras.legacy`` (tf.keras 2).

Two kinds of code live here:

* kernel calls (``bce_elements``, ``sparse_rows``, ``categorical_rows``, ``mse_rows``):
  the fastloss kernels called directly, without the public API's validation
  (Keras validates nothing: a probability of 1.5 is clipped, a target of 2 is
  used as is), each value computed in float64 and rounded once;
* the NumPy arithmetic that Keras does in float32 *before* the loss and that
  changes the value by more than rounding noise (the ``[eps, 1-eps]`` clip in
  float32, ``p / sum(p)`` in float32, label smoothing in float32, KL's
  ``t * log(t / p)``, the focal factor), written in Keras's operation order.

Sums (over the class axis, the label axis and the batch) are float64 here and
rounded once; Keras sums in float32. That is the one systematic difference, and
it is documented in the two public modules.
"""

import functools

import numpy as np

from fastloss._dispatch import fast_core, resolve_backend, resolve_threads
from fastloss.kernels import CLIP_EPS, CLIP_KERAS2, CLIP_NONE
from fastloss.losses._calls import (
    EMPTY,
    Clip,
    bce_call,
    categorical_ce_call,
    mse_call,
    sparse_ce_call,
)

EPSILON = 1e-7  # keras.backend.epsilon()

__all__ = ["CLIP_EPS", "CLIP_KERAS2", "CLIP_NONE", "EPSILON"]


# --------------------------------------------------------------------------- containers


def is_half(dt):
    """float16 or bfloat16 (ml_dtypes' NumPy dtype, also TF's ``.numpy()`` of bfloat16),
    told by name so that ml_dtypes is imported only when a bfloat16 loss is made."""
    return getattr(dt, "name", None) in ("float16", "bfloat16")


def _bfloat16():
    import ml_dtypes  # ships with TensorFlow and Keras

    return np.dtype(ml_dtypes.bfloat16)


def is_tf(x):
    """A TensorFlow tensor or variable (without importing TensorFlow)."""
    return type(x).__module__.startswith("tensorflow")


def keras_mask(x):
    """The Keras mask attached to a tensor (``backend.get_keras_mask``), or None."""
    m = getattr(x, "_keras_mask", None)
    return None if m is None else np.asarray(host(m), dtype=bool)


def host(x):
    """The data of a TF/torch tensor or pandas object as NumPy (its dtype kept); anything
    else unchanged. ``tf.convert_to_tensor`` keeps these containers' dtypes as well."""
    if x is None or isinstance(x, (np.ndarray, np.generic)):
        return x
    mod = type(x).__module__
    if mod.startswith("tensorflow"):
        return x.numpy()
    if mod.startswith("torch"):
        return x.detach().cpu().numpy()
    if hasattr(x, "to_numpy") and mod.startswith("pandas"):
        return x.to_numpy()
    return x


def half_of(x):
    """``x``'s dtype if it is float16/bfloat16, else None."""
    dt = getattr(x, "dtype", None)
    return np.dtype(dt) if is_half(dt) else None


def finish(res, out_dtype=None, tf_out=False):
    """Round to ``out_dtype`` (half-precision inputs: computed in float32, rounded once)
    and give a TF tensor for TF inputs (Keras's container)."""
    if out_dtype is not None:
        res = np.asarray(res).astype(out_dtype)
        res = res[()] if res.ndim == 0 else res
    return to_tf(res) if tf_out else res


def to_tf(res):
    """``res`` as a TF tensor of its dtype; TF tensors (ragged ones too) as they are."""
    if is_tf(res):
        return res
    import tensorflow as tf

    return tf.constant(res)  # NumPy in: convert_to_tensor's result, 4 us less dispatch


def framework_io(fn):
    """Keras's containers and half precision around a loss function on NumPy arrays.

    TF tensors, torch tensors and pandas objects are read as NumPy with their dtype;
    TF in gives TF out. float16/bfloat16 ``y_pred`` (with ``y_true`` cast to it, as Keras
    casts) is computed in float32 and the result rounded once to that dtype.
    """

    @functools.wraps(fn)
    def wrapper(y_true, y_pred, *args, **kwargs):
        if isinstance(y_pred, np.ndarray) and isinstance(y_true, np.ndarray) and \
                not is_half(y_pred.dtype):
            return fn(y_true, y_pred, *args, **kwargs)  # the plain NumPy path
        tf_out = is_tf(y_true) or is_tf(y_pred)
        y_true, y_pred = host(y_true), host(y_pred)
        half = half_of(y_pred)
        if half is not None:
            y_pred = np.asarray(y_pred).astype(np.float32)
            yt = np.asarray(y_true)
            if yt.dtype.kind == "f" or fn.__name__ != "sparse_categorical_crossentropy":
                y_true = yt.astype(half).astype(np.float32)
        return finish(fn(y_true, y_pred, *args, **kwargs), half, tf_out)

    return wrapper


# --------------------------------------------------------------------------- dtypes


_FLOATX = np.dtype(np.float32)  # a constant: np.dtype() per loss object costs 0.2 us


def float_dtype(dtype):
    """The compute dtype named by a Keras ``dtype`` argument (float32 or float64; float16
    and bfloat16 compute in float32, see ``result_dtype``)."""
    if dtype is None:
        return _FLOATX  # keras.backend.floatx()
    dt = result_dtype(dtype)
    return np.dtype(np.float32) if is_half(dt) else dt


def result_dtype(dtype):
    """The dtype a Keras loss with ``dtype`` returns (float16/bfloat16 included)."""
    if dtype is None:
        return _FLOATX
    name = getattr(dtype, "name", dtype)  # a keras DTypePolicy-like object, or np.dtype
    if name == "bfloat16":
        return _bfloat16()
    try:
        dt = np.dtype(name)
    except TypeError:
        raise ValueError(f"dtype={dtype!r} is not a floating dtype") from None
    if dt not in (np.float32, np.float64) and not is_half(dt):
        raise ValueError(f"dtype={dtype!r}: a Keras loss computes in a floating dtype "
                         "(float16, bfloat16, float32, float64)")
    return dt


def as_tensor(x, dtype=None):
    """``x`` as an array of ``dtype``; ``dtype=None`` mimics ``tf.convert_to_tensor``.

    Arrays with a float32/float64 dtype (NumPy, pandas, TF and torch tensors) keep it;
    Python numbers and lists become float32 (TensorFlow's default for Python floats).
    Integer arrays also become float32 (Keras would keep integers and fail or compute
    in integers: see the module docstrings).
    """
    x = host(x)
    if dtype is not None:
        return np.asarray(x).astype(dtype, copy=False)
    a = np.asarray(x)
    if not isinstance(x, (np.ndarray, np.generic)) and a.dtype.kind in "biuf":
        return a.astype(np.float32)  # Python numbers and lists: TensorFlow's float32
    if a.dtype in (np.float32, np.float64):
        return a
    if is_half(a.dtype):
        # framework_io computes these in float32; only internal callers get here
        return a.astype(np.float32)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"expected a real numeric array, got dtype {a.dtype}")
    return a.astype(np.float32)


def int_dtype(y_pred):
    """The integer (or bool) dtype TensorFlow gives ``y_pred`` (Python ints: int32), or
    None for floating data."""
    a = np.asarray(host(y_pred))
    if a.dtype.kind not in "biu":
        return None
    return np.dtype(np.int32) if not isinstance(y_pred, (np.ndarray, np.generic)) and \
        a.dtype.kind == "i" else a.dtype


def no_ints(name, y_pred, framework, exc=TypeError):
    """Refuse integer ``y_pred`` as the framework's loss functions do (they convert y_true to
    y_pred's dtype, then fail on their float constants)."""
    dt = int_dtype(y_pred)
    if dt is not None:
        raise exc(f"{name}: y_pred has dtype {dt.name}; {framework} computes this loss "
                        "only on floating y_pred (it raises there too)")


def scalar_or_array(a, dt):
    a = np.asarray(a, dtype=dt)
    return a[()] if a.ndim == 0 else a


# --------------------------------------------------------------------------- shapes


def squeeze_or_expand_to_same_rank(x1, x2, expand_rank_1=True):
    """``keras.src.losses.loss.squeeze_or_expand_to_same_rank`` on NumPy arrays."""
    r1, r2 = x1.ndim, x2.ndim
    if r1 == r2:
        return x1, x2
    if r1 == r2 + 1 and x1.shape[-1] == 1:
        if r2 == 1 and expand_rank_1:
            x2 = x2[..., None]
        else:
            x1 = x1[..., 0]
    if r2 == r1 + 1 and x2.shape[-1] == 1:
        if r1 == 1 and expand_rank_1:
            x1 = x1[..., None]
        else:
            x2 = x2[..., 0]
    return x1, x2


def check_same_shape(target, output):
    if target.shape != output.shape:
        raise ValueError("Arguments `target` and `output` must have the same shape. "
                         f"Received: target.shape={target.shape}, output.shape={output.shape}")


def check_axis(axis, ndim):
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise ValueError(f"`axis` must be of type `int`. Received: axis={axis} of type "
                         f"{type(axis)}")
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis {axis} is out of bounds for an array of dimension {ndim}")
    return int(axis) % ndim


def rows(a, axis):
    """``a`` with ``axis`` moved last, as C-contiguous 2-D rows, and the batch shape."""
    m = np.moveaxis(a, axis, -1)
    return np.ascontiguousarray(m).reshape(-1, m.shape[-1]), m.shape[:-1]


# --------------------------------------------------------------------------- kernels


def _backend():
    _, kern = resolve_backend(None)
    return kern, resolve_threads(None)


def bce_elements(z, x, from_logits, clip_mode=CLIP_NONE, eps=0.0, weights=None, sw_div=1,
                 reduction="none"):
    """Element-wise binary cross-entropy by the kernel (same-shape z, x; no smoothing).

    ``reduction="none"``: per-element values shaped like ``x``; ``"sum"``: the
    float64 ``(sum(w*v), sum(w))`` with ``w = weights[i // sw_div]``.
    """
    kern, nt = _backend()
    xf = np.ascontiguousarray(x).reshape(-1)
    zf = np.ascontiguousarray(z, dtype=x.dtype).reshape(-1)
    sw = EMPTY if weights is None else np.ascontiguousarray(weights, dtype=np.float64).reshape(-1)
    call = bce_call(xf, zf, kern=kern, n_threads=nt, from_logits=from_logits, sample_weight=sw,
                    weight_div=sw_div, clip=Clip(clip_mode, float(eps)))
    res = call.per_sample() if reduction == "none" else call.sums()
    if from_logits:
        res = _tf_infinite_logits(xf, zf, sw, sw_div, reduction, res)
    return res.reshape(x.shape) if reduction == "none" else res


def _tf_infinite_logits(xf, zf, sw, sw_div, reduction, res):
    """TensorFlow's ``relu(x) - x*z + log1p(exp(-|x|))`` at infinite logits: NaN at
    ``x = +inf`` (inf - inf*z, or 0*inf) and at ``x = -inf, z = 0`` (0*inf); fastloss's
    kernel gives the true losses (0 or inf) there. One pass when every logit is finite."""
    with np.errstate(over="ignore", invalid="ignore"):
        if xf.size == 0 or np.isfinite(np.add.reduce(xf, axis=None)):
            return res
    bad = np.isposinf(xf) | (np.isneginf(xf) & (zf == 0))
    if not bad.any():
        return res
    if reduction == "none":
        res = res.copy()
        res[bad] = np.nan
        return res
    return np.nan, res[1]  # Keras multiplies by the weights: NaN * 0 is still NaN


def mse_last(y_true, y_pred):
    """``mean((y_pred - y_true)**2, axis=-1)`` after broadcasting (Keras 3 and tf.keras 2)."""
    if y_true.shape != y_pred.shape:
        y_true, y_pred = np.broadcast_arrays(y_true, y_pred)
    check_axis(-1, y_pred.ndim)  # 0-d: Keras's mean over axis -1 raises
    x2, batch = rows(y_pred, -1)
    t2, _ = rows(y_true, -1)
    if x2.shape[1] == 0:
        return np.full(batch, np.nan, dtype=y_pred.dtype)[()]
    return mse_rows(x2, t2).reshape(batch)[()]


def sparse_rows(x2, y, from_logits, ignore=None, clip_mode=CLIP_NONE, eps=0.0):
    """Per-row sparse cross-entropy of 2-D rows ``x2`` against int64 labels ``y``.

    Rows whose label equals ``ignore`` give 0.
    """
    kern, nt = _backend()
    y = np.ascontiguousarray(y, dtype=np.int64)
    return sparse_ce_call(x2, y, kern=kern, n_threads=nt, from_logits=from_logits,
                          ignore_index=None if ignore is None else int(ignore),
                          clip=Clip(clip_mode, float(eps))).per_sample()


def categorical_rows(x2, t2, from_logits, clip_mode=CLIP_NONE, eps=0.0):
    """Per-row ``sum_c t_c * nll_c`` of 2-D rows (a zero ``t_c`` adds exactly 0)."""
    kern, nt = _backend()
    return categorical_ce_call(x2, t2, kern=kern, n_threads=nt, from_logits=from_logits,
                               clip=Clip(clip_mode, float(eps))).per_sample()


def mse_rows(x2, t2):
    kern, nt = _backend()
    return mse_call(x2, t2, kern=kern, n_threads=nt).per_sample()


# --------------------------------------------------------------------------- fast entries

# The compiled entries of Keras loss objects on plain NumPy (issue #16,
# kernels/cython/_fast.pxi): the general path's bits, or None to decline (then the general
# path runs, and raises its errors). These are the only Python code that spells their
# positional order. ``ft`` is the compute dtype's code (fast_ft), 0 for y_pred's own.

_FAST_FT = {np.dtype(np.float32): 1, np.dtype(np.float64): 2}


def fast_ft(compute, result):
    """The entries' dtype code of a Keras 3 loss computing in ``compute`` and returning
    ``result``; -1 (decline) when they differ (half precision rounds the inputs first)."""
    return _FAST_FT.get(compute, -1) if compute is result else -1


def fast_sparse(y_true, y_pred, from_logits, axis, reduction, ft=0, sample_weight=None,
                ignore_class=None, keras2=False):
    core = fast_core(None)
    return None if core is None else core.fast_keras_sparse(y_true, y_pred, from_logits, axis,
                                                            reduction, ft, sample_weight,
                                                            ignore_class, keras2)


def fast_categorical(y_true, y_pred, from_logits, axis, reduction, ft=0, sample_weight=None,
                     smooth=None):
    core = fast_core(None)
    if core is None:
        return None
    rs = None
    if from_logits is False and type(y_pred) is np.ndarray and y_pred.ndim == 2:
        # the row sums of the renormalisation, exactly as _categorical_values takes them
        # (BLAS's float32 order); the division is the entry's
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            rs = y_pred @ np.ones(y_pred.shape[1], dtype=y_pred.dtype)
    return core.fast_keras_categorical(y_true, y_pred, from_logits, axis, reduction, ft, rs,
                                       sample_weight, smooth)


def fast_bce(y_true, y_pred, from_logits, axis, reduction, ft=0, keras2=False,
             sample_weight=None, smooth=None):
    core = fast_core(None)
    return None if core is None else core.fast_keras_bce(y_true, y_pred, from_logits, axis,
                                                         reduction, ft, keras2, sample_weight,
                                                         smooth)


def smooth_constants(ls, dt, C=None, keras2=False):
    """``(a, b)`` of Keras's smoothed targets ``t * a + b`` in ``dt``, computed as the
    general path computes them (categorical: ``b = ls / C``; binary, C None: ``ls / 2``;
    ``keras2``: tf.keras's order); None (decline) for ``ls`` outside (0, 1] or not a
    Python number (the general path's warnings and errors)."""
    if type(ls) not in (float, int) or not 0 < ls <= 1 or dt not in _FAST_FT:
        return None
    if keras2:
        lt = dt.type(ls)
        a = dt.type(1) - lt
        b = dt.type(0.5) * lt if C is None else lt / dt.type(C)
    else:
        a = dt.type(1.0 - ls)
        b = dt.type(0.5 * ls) if C is None else dt.type(ls) / dt.type(C)
    return float(a), float(b)


# --------------------------------------------------------------------------- float32 pieces


def clip(a, lo, hi):
    """``tf.clip_by_value`` in ``a``'s dtype (NaN stays NaN)."""
    dt = a.dtype
    return np.clip(a, dt.type(lo), dt.type(hi))


def mean_last(v, axis):
    """``ops.mean(v, axis)``, summed in float64 and rounded once."""
    ax = check_axis(axis, v.ndim)
    s = np.sum(v, axis=ax, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (s / v.shape[ax]).astype(v.dtype)


def sum_last(v, axis=-1):
    ax = check_axis(axis, v.ndim)
    return np.sum(v, axis=ax, dtype=np.float64).astype(v.dtype)


def sigmoid(x):
    """float32/float64 sigmoid, correctly rounded (float64 inside for float32)."""
    x64 = x.astype(np.float64)
    with np.errstate(over="ignore"):
        e = np.exp(-np.abs(x64))
        s = np.where(x64 >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    return s.astype(x.dtype)


def kl_values(y_true, y_pred):
    """Keras's ``sum(t * log(t / p), axis=-1)`` after clipping both to ``[eps, 1]``.

    The element-wise part is Keras's float32 operation order (its quotient and
    log rounding move the result by several ulps, which the printed reference
    values show); the sum over the last axis is float64.
    """
    t = clip(y_true, EPSILON, 1.0)
    p = clip(y_pred, EPSILON, 1.0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        e = t * np.log(t / p)
    return sum_last(e)


# --------------------------------------------------------------------------- weights


def weighted_product(values, weight):
    """float64 ``values * weight`` (NumPy broadcasting; ``weight`` may be None).

    The product of a float32 value and a float32 weight is exact in float64, so
    rounding it to float32 gives Keras's float32 product bit for bit.
    """
    v = values.astype(np.float64)
    return v if weight is None else v * np.asarray(weight, dtype=np.float64)

