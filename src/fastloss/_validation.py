"""Input checks. Every message names the argument and the shape or the first bad index."""

import numbers

import numpy as np

from fastloss._half import compute_dtype, is_half, widen, widen_rows
from fastloss.kernels import CLIP_EPS, CLIP_KERAS2, CLIP_NONE, CLIP_TORCH

REDUCTIONS = ("none", "sum", "mean")
NAN_POLICIES = ("propagate", "raise", "omit")
CLIP_PRESETS = ("keras", "keras2", "torch", "sklearn")
_KERAS_EPS = 1e-7


def _index(flat, shape):
    idx = np.unravel_index(int(flat), shape) if len(shape) else ()
    return tuple(int(i) for i in idx)


def as_float_array(a, name, keep_half=False):
    """``(array, result_dtype)``: float32/float64 kept, integers/bools -> float64.

    Half precision (float16, ``ml_dtypes.bfloat16``) is computed in float32 and the results
    are float32: a float16 sum overflows at 65504 and bfloat16 keeps 8 bits, so rounding back
    would lose what the float64 accumulation gained. With ``keep_half`` the half array is
    returned as it is (the caller widens it chunk by chunk); without, widened whole.
    """
    arr = np.asarray(a)
    kind = arr.dtype.kind
    if is_half(arr.dtype):
        if arr.dtype.byteorder not in "=|":
            arr = arr.astype(arr.dtype.newbyteorder("="))
        if keep_half:
            return arr, np.dtype(np.float32)
        return widen(arr, np.empty(arr.shape, np.float32)), np.dtype(np.float32)
    if keep_half and kind in "iu" and arr.dtype.itemsize == 2:
        # int16/uint16 predictions are what half-precision bits look like read without
        # their dtype: computing on 15360 for 1.0 would give a plausible, wrong loss
        raise TypeError(f"{name} has dtype {arr.dtype}: 16-bit integers are how float16 / "
                        f"bfloat16 bits look when read without their dtype. Pass "
                        f"{name}.view(np.float16) or {name}.view(ml_dtypes.bfloat16), or "
                        f"{name}.astype(np.float32) if they are integer values")
    if kind in "fiub":
        if kind == "f" and arr.dtype.itemsize > 8:
            raise TypeError(f"{name} has dtype {arr.dtype}; fastloss computes in float32 or float64 "
                            "and will not silently round long double")
        if kind != "f":
            arr = arr.astype(np.float64)
        if arr.dtype.byteorder not in "=|":
            arr = arr.astype(arr.dtype.newbyteorder("="))
        return arr, arr.dtype
    raise TypeError(_not_real(name, arr.dtype))


def _not_real(name, dtype):
    """The message for a ``y_pred`` that is no real float type fastloss reads."""
    msg = f"{name} must be a real numeric array, got dtype {dtype}"
    if dtype.kind == "c":
        return msg + " (complex numbers have no loss)"
    if dtype.kind == "V" and dtype.itemsize == 1 and dtype.name.startswith("float"):
        return (msg + f": fastloss reads float16, bfloat16, float32 and float64; widen 8-bit "
                f"floats yourself ({name}.astype(np.float32)) if that is what you mean")
    if dtype.kind == "V":
        return msg + " (raw bytes: give the array its float dtype, e.g. ml_dtypes.bfloat16)"
    return msg


def as_like(a, name, dtype):
    """A target/partner array converted to ``dtype`` without losing information.

    Integer and boolean targets convert exactly; a float64 target with a float32
    ``y_pred`` is only accepted if it converts exactly (else the caller should pass
    float64 predictions), so nothing is silently rounded.
    """
    arr = np.asarray(a)
    if is_half(dtype):  # half y_pred: half targets are widened chunk by chunk with it
        if is_half(arr.dtype) and arr.dtype.byteorder in "=|":
            return arr
        dtype = compute_dtype(dtype)
    elif is_half(arr.dtype) and arr.dtype.kind == "V":  # bfloat16 targets: exact in float32/64
        return widen(arr, np.empty(arr.shape, np.float32)).astype(dtype, copy=False)
    if arr.dtype.kind not in "fiub":
        raise TypeError(_not_real(name, arr.dtype))
    if arr.dtype == dtype:
        return arr
    conv = arr.astype(dtype)
    if arr.dtype.kind == "f" and arr.dtype.itemsize > dtype.itemsize:
        with np.errstate(invalid="ignore"):
            lost = ~((conv.astype(arr.dtype) == arr) | (np.isnan(arr) & np.isnan(conv)))
        if lost.any():
            i = _index(np.argmax(lost), arr.shape)
            raise TypeError(
                f"{name} has dtype {arr.dtype} but y_pred is {dtype}; {name}{list(i)}={arr[i]!r} "
                f"would be rounded. Pass y_pred as {arr.dtype} (or {name} as {dtype}) explicitly.")
    return conv


def check_axis(axis, ndim, name="y_pred", shape=None):
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"axis must be an integer, got {axis!r}")
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis={axis} is out of bounds for {name} with {ndim} dimension(s) "
                         f"(shape {shape})")
    return int(axis) % ndim


def check_reduction(reduction):
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction={reduction!r} is not one of {', '.join(map(repr, REDUCTIONS))}")
    return reduction


def check_nan_policy(nan_policy):
    if nan_policy not in NAN_POLICIES:
        raise ValueError(f"nan_policy={nan_policy!r} is not one of "
                         f"{', '.join(map(repr, NAN_POLICIES))}")
    return nan_policy


def resolve_clip(clip, dtype, from_logits):
    """``(clip_mode, eps)`` for a ``clip`` argument."""
    if clip is None:
        return CLIP_NONE, 0.0
    if from_logits:
        raise ValueError(f"clip={clip!r} applies to probabilities only; with from_logits=True "
                         "the loss is computed exactly from the logits and nothing is clipped")
    if isinstance(clip, str):
        if clip == "keras":
            return CLIP_EPS, _KERAS_EPS
        if clip == "keras2":
            return CLIP_KERAS2, _KERAS_EPS
        if clip == "torch":
            return CLIP_TORCH, 0.0
        if clip == "sklearn":
            return CLIP_EPS, float(np.finfo(compute_dtype(dtype)).eps)
        raise ValueError(f"clip={clip!r} is not a preset; use a float eps in (0, 0.5) or one of "
                         f"{', '.join(map(repr, CLIP_PRESETS))}")
    if isinstance(clip, bool) or not isinstance(clip, (float, int, np.floating, np.integer)):
        raise TypeError(f"clip must be None, a float or a preset name, got {clip!r}")
    eps = float(clip)
    if not 0.0 < eps < 0.5:
        raise ValueError(f"clip={clip!r} must lie in (0, 0.5)")
    return CLIP_EPS, eps


def check_real(value, name, what):
    """``float(value)`` for a real number (not a bool or a string), else a TypeError naming it."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be {what}, got {value!r} ({type(value).__name__})")
    return float(value)


def check_fraction(value, name):
    v = check_real(value, name, "a real number in [0, 1]")
    if not 0.0 <= v <= 1.0:
        raise ValueError(f"{name}={value!r} must lie in [0, 1]")
    return v


def check_weights(w, name, shape, *, allow_scalar=True, allow_prefix=False):
    """A float64 weight array of ``shape`` (or a prefix of it when ``allow_prefix``).

    Weights must be finite and non-negative. Returns ``(array_or_None, ndim_matched)``.
    """
    if w is None:
        return None, 0
    arr = np.asarray(w)
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if arr.ndim == 0 and allow_scalar:
        arr = np.broadcast_to(arr, shape)
    shape = tuple(shape)
    ok = arr.shape == shape or (allow_prefix and arr.shape == shape[:arr.ndim])
    if not ok:
        expect = f"{shape}" + (" or a prefix of it" if allow_prefix else "")
        raise ValueError(f"{name} has shape {arr.shape}; expected {expect}")
    bad = ~np.isfinite(arr) | (arr < 0)
    if bad.any():
        i = _index(np.argmax(bad), arr.shape)
        raise ValueError(f"{name} must be finite and non-negative; {name}{list(i)}={arr[i]!r}")
    return np.ascontiguousarray(arr), arr.ndim


def check_labels(y, name, batch_shape, n_classes, ignore_index):
    """Integer class indices of ``batch_shape`` as a flat int64 array."""
    arr = np.asarray(y)
    if arr.ndim == len(batch_shape) + 1 and arr.shape[-1] == 1:
        arr = arr[..., 0]  # Keras-style (N, 1) labels
    if arr.shape != tuple(batch_shape):
        raise ValueError(f"{name} has shape {np.asarray(y).shape}; expected {tuple(batch_shape)} "
                         f"(y_pred without its class axis)")
    if arr.dtype.kind == "b" or arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must hold integer class indices, got dtype {arr.dtype}")
    if arr.dtype.kind == "f":
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(arr) | (arr != np.round(arr))
        if bad.any():
            i = _index(np.argmax(bad), arr.shape)
            raise ValueError(f"{name} must hold integer class indices; {name}{list(i)}={arr[i]!r}")
        # beyond int64 a cast would wrap around: report the value as given
        big = np.abs(arr) >= 2.0**63
        if ignore_index is not None:
            big &= arr != ignore_index
        if big.any():
            i = _index(np.argmax(big), arr.shape)
            raise ValueError(f"{name}{list(i)}={arr[i]!r} is out of range [0, {n_classes})")
    flat = arr.reshape(-1)
    if arr.dtype.kind == "u" and arr.dtype.itemsize == 8:
        over = flat > np.iinfo(np.int64).max
        if over.any():
            i = _index(np.argmax(over), arr.shape)
            raise ValueError(f"{name}{list(i)}={int(arr[i])} is out of range [0, {n_classes})")
    flat = flat.astype(np.int64, copy=False)
    # two fast reductions; the element-wise mask only when some label is outside [0, C)
    if flat.size and (flat.min() < 0 or flat.max() >= n_classes):
        bad = (flat < 0) | (flat >= n_classes)
        if ignore_index is not None:
            bad &= flat != ignore_index
    else:
        bad = None
    if bad is not None and bad.any():
        k = int(np.argmax(bad))
        raise ValueError(f"{name}{list(_index(k, arr.shape))}={int(flat[k])} is out of range "
                         f"[0, {n_classes})" + ("" if ignore_index is None
                                                else f" and is not ignore_index={ignore_index}"))
    return np.ascontiguousarray(flat)


def check_same_shape(a, b, name_a, name_b):
    if a.shape != b.shape:
        raise ValueError(f"{name_a} has shape {a.shape} but {name_b} has shape {b.shape}; "
                         "they must match")


# what to do when an input that must be probabilities is not, by the option that says so
_UNIT_ADVICE = {
    "from_logits=False": "Did you pass logits? Then use from_logits=True.",
    "log_input=False": "Did you pass log-probabilities? Then use log_input=True.",
    "log_target=False": "Did you pass log-probabilities as y_true? Then use log_target=True.",
}


def check_unit_interval(arr, name, kern, hint):
    """Raise if a probability input has a value outside [0, 1] (NaN passes).

    ``arr`` is the array as the caller passed it, so the index in the message is
    the caller's (C order). The backend scans contiguous input in parallel.
    """
    if arr.size == 0:
        return
    if arr.flags.c_contiguous and is_half(arr.dtype):
        k = _first_outside_half(arr.reshape(-1), kern)
    elif arr.flags.c_contiguous:
        k = kern.first_outside_unit_interval(arr.reshape(-1))
    else:
        with np.errstate(invalid="ignore"):
            bad = (arr < 0) | (arr > 1)
        k = int(np.argmax(bad)) if bad.any() else -1  # argmax of an N-d array: C order
    if k >= 0:
        i = _index(k, arr.shape)
        raise ValueError(f"{name} must hold probabilities in [0, 1] with {hint}; "
                         f"{name}{list(i)}={float(arr[i])!r} is the first value outside. "
                         + _UNIT_ADVICE.get(hint, "Targets are probabilities: 0 or 1 for hard "
                                            "labels, values in between for soft ones."))


def _first_outside_half(flat, kern, step=1 << 20):
    """``first_outside_unit_interval`` of a flat half array, widened a chunk at a time."""
    for a in range(0, flat.size, step):
        k = kern.first_outside_unit_interval(widen_rows(flat, a, a + step))
        if k >= 0:
            return a + k
    return -1


def first_nan(arrays):
    """(name, index) of the first NaN in the named arrays, or None."""
    for name, a in arrays:
        if a is None or not (a.dtype.kind == "f" or is_half(a.dtype)):
            continue
        m = np.isnan(a)
        if m.any():
            return name, _index(np.argmax(m.reshape(-1)), a.shape)
    return None

