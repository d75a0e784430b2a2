"""Drop-in for ``sklearn.metrics.log_loss`` (scikit-learn 1.9 semantics) on NumPy arrays.

``from fastloss.sklearn import log_loss`` in place of ``from sklearn.metrics import
log_loss``: same signature, ``log_loss(y_true, y_proba=None, *, normalize=True,
sample_weight=None, labels=None, y_pred="deprecated")`` (``y_pred`` is the name
before 1.9 and still works with a ``FutureWarning``), same numbers, many times
faster: labels are mapped to column indices with ``np.unique``/``np.searchsorted``
and the sparse cross-entropy kernel reads one probability per sample, where
scikit-learn builds a dense one-hot matrix, a clipped copy and an ``xlogy``
matrix (in float64 even for float32 input).

Semantics mirrored (sklearn/metrics/_classification.py, 1.9.1):

* ``y_proba`` is clipped to ``[eps, 1 - eps]`` with ``eps = np.finfo(y_proba.dtype).eps``
  (float32 and float16 are kept, anything else becomes float64), so the
  per-sample maximum is 15.94 in float32 and 36.04 in float64. No renormalisation;
  a ``UserWarning`` when a row does not sum to one within ``rtol=sqrt(eps)``.
* Labels may be any sortable values (numbers, strings, booleans); columns follow
  their sorted order. A 1-D ``y_proba`` (or one column) is P(positive class) with
  the complement computed in ``y_proba``'s dtype. A 2-D 0/1 ``y_true`` with several
  columns is a label-indicator matrix. ``labels`` fixes the classes (a warning if
  not sorted; an error if ``y_true`` has others).
* The errors scikit-learn raises, with its messages and types: NaN/inf, values
  outside [0, 1], a single class, inconsistent lengths or class counts, 3-D
  input, empty input, continuous or mixed-type labels, all-zero or NaN weights.
* Array-API inputs (torch CPU tensors, ``array_api_strict`` arrays, as under
  ``sklearn.config_context(array_api_dispatch=True)``) are read through a zero-copy
  NumPy view; the result is a Python float as in scikit-learn. Without the dispatch,
  torch and TF probabilities are computed in float64 as ``check_array`` converts them
  (their dtypes are not NumPy's); pandas and NumPy keep float32. pandas inputs are read
  by position, their indexes (and column names) not aligned, as scikit-learn reads them.
* ``normalize=True``: ``np.average(loss, weights=sample_weight)``; ``False``: the
  (weighted) sum. The result is a Python float carrying NumPy's result dtype
  (float32 input without weights: a float32 value).

* Speed: the common case (C-contiguous float32/float64 ``(n, C)`` NumPy probabilities,
  int64/int32 labels ``0..C-1`` all present or ``labels=np.arange(C)``, rows summing to
  one within the tolerance, no weights or float64 weights with float64 probabilities)
  runs in one compiled call (``fastloss.losses.functions.fast_sparse``, issue #16) with
  the same bits as the general path; anything else, and every bad input, takes the
  general path and its errors and warnings (tests/dropins/test_fast_dropins.py).

Documented deviations (tested in tests/dropins/test_sklearn.py):

1. **Sums are float64.** Per-sample values are ``-log`` of the same clipped
   value, correctly rounded to ``y_proba``'s dtype (scikit-learn uses NumPy's
   float32 ``log``, which is faithful: the two agree within 1 ulp); their
   average is summed in float64 and rounded once to the result dtype, where
   scikit-learn's float32 ``np.mean`` sums pairwise in float32 (a few float32
   ulps for large inputs). float16 probabilities are computed in float32
   (scikit-learn computes their logs in float16).
2. The row sums of the "do not sum to one" check are a float32/float64 matrix-vector
   product, not ``np.sum``: rows exactly at the ``sqrt(eps)`` threshold may differ.
3. ``InvalidParameterError`` is this module's own (a ``ValueError`` and ``TypeError``
   like scikit-learn's); a 2-D single-column ``y_true`` is taken as 1-D labels
   (scikit-learn 1.9.1 fails on it with ``TypeError: unhashable type``).
"""

import math
import sys
import warnings

import numpy as np

from fastloss._dispatch import resolve_backend, resolve_threads
from fastloss.kernels import CLIP_EPS
from fastloss.losses._calls import EMPTY, Clip, bce_call, categorical_ce_call, sparse_ce_call
from fastloss.losses.functions import fast_sparse

__all__ = ["InvalidParameterError", "log_loss"]


class InvalidParameterError(ValueError, TypeError):
    r"""A parameter of the wrong type (scikit-learn's ``InvalidParameterError``).

    Both a ``ValueError`` and a ``TypeError``, as in scikit-learn.

    Parameters
    ----------
    *args
        The message.

    See Also
    --------
    log_loss

    Notes
    -----
    Raised where scikit-learn's parameter validation raises it.

    Examples
    --------
    >>> from fastloss.sklearn import InvalidParameterError
    >>> issubclass(InvalidParameterError, ValueError) and issubclass(InvalidParameterError, TypeError)
    True
    """


def _host(x):
    """An array-API array (torch CPU tensor, array_api_strict, ...) as a zero-copy NumPy
    view: scikit-learn accepts them under ``array_api_dispatch=True`` (and torch tensors
    always); some have no ``len()`` nor ``__array__``. Anything else unchanged."""
    if x is None or isinstance(x, (np.ndarray, np.generic, list, tuple, str)):
        return x
    if hasattr(x, "__array_namespace__") or type(x).__module__.startswith("torch"):
        if hasattr(x, "detach"):
            x = x.detach()
        try:
            return np.from_dlpack(x)
        except (TypeError, RuntimeError, BufferError):  # e.g. a device NumPy cannot read
            return np.asarray(x)
    return x


def _dispatch_on():
    sk = sys.modules.get("sklearn")  # its config can only be on if it is imported
    return sk is not None and bool(sk.get_config().get("array_api_dispatch", False))


def _proba_host(x):
    """``y_proba`` as scikit-learn's ``check_array`` reads it: a container whose dtype is
    not a NumPy dtype (torch, TF tensors) becomes float64 unless array-API dispatch is on
    (then torch float32 stays float32); NumPy and pandas keep float32/float16."""
    dt = getattr(x, "dtype", None)
    if dt is not None and not hasattr(dt, "kind") and not _dispatch_on():
        if hasattr(x, "detach"):
            x = x.detach()
        return np.asarray(x, dtype=np.float64)
    return _host(x)


def _is_array_like(x):
    return hasattr(x, "__len__") or hasattr(x, "shape") or hasattr(x, "__array__")


def _check_proba(y_proba):
    if not _is_array_like(y_proba) or np.ndim(y_proba) == 0:
        raise InvalidParameterError("The 'y_proba' parameter of log_loss must be an array-like. "
                                    f"Got {y_proba!r} instead.")
    P = np.asarray(y_proba)
    if P.dtype.kind == "c":
        raise ValueError("Complex data not supported\n" + repr(P))
    if P.dtype not in (np.float64, np.float32, np.float16):
        P = P.astype(np.float64)
    if P.ndim > 2:
        raise ValueError(f"Found array with dim {P.ndim}, while dim <= 2 is required.")
    if P.shape[0] == 0:
        raise ValueError(f"Found array with 0 sample(s) (shape={P.shape}) while a minimum of 1 "
                         "is required.")
    if P.ndim == 2 and P.shape[1] == 0:
        raise ValueError(f"Found array with 0 feature(s) (shape={P.shape}) while a minimum of 1 "
                         "is required.")
    return P


def _check_finite(a, name):
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(np.add.reduce(a, axis=None, dtype=np.float64)):
            return
    if np.isnan(a).any():
        raise ValueError(f"Input{name} contains NaN.")
    if not np.isfinite(a).all():
        raise ValueError(f"Input{name} contains infinity or a value too large for "
                         f"{np.dtype(np.float64 if a.dtype.kind != 'f' else a.dtype)!r}.")


def _labels_of(y_true):
    """``(kind, y)``: ``"indicator"`` with a 2-D 0/1 matrix, else 1-D labels."""
    y = np.asarray(y_true)
    if y.dtype.kind == "U" and isinstance(y_true, (list, tuple)):
        kinds = {isinstance(v, str) for v in y_true}  # NumPy turned numbers into strings
        if len(kinds) > 1:
            raise ValueError("Mix of label input types (string and number)")
    if y.ndim == 2 and y.shape[1] > 1:
        if y.dtype.kind in "biuf" and np.isin(y, (0, 1)).all():
            return "indicator", y
        raise ValueError("Multioutput target data is not supported with label binarization")
    if y.ndim == 2:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"y_true should be a 1d array, got an array of shape {y.shape} instead.")
    if y.dtype.kind == "f":
        with np.errstate(invalid="ignore"):
            if not (np.isfinite(y).all() and (y == np.round(y)).all()):
                raise ValueError(f"Unknown label type: continuous. Got {y!r}")
    if y.dtype.kind == "O":
        kinds = {isinstance(v, str) for v in y.tolist()}
        if len(kinds) > 1:
            raise ValueError("Mix of label input types (string and number)")
    return "labels", y


def _unique(values, what):
    try:
        return np.unique(values)
    except TypeError:
        raise ValueError(f"Mix of label input types (string and number) in {what}") from None


def _row_sums(P):
    """Row sums by one matrix-vector product (a 1-D ``P``: the values themselves)."""
    if P.ndim == 1:
        with np.errstate(over="ignore", invalid="ignore"):
            return np.add.reduce(P, dtype=np.float64, keepdims=True)
    if P.dtype == np.float16:
        return P.astype(np.float32).sum(axis=1)
    with np.errstate(over="ignore", invalid="ignore"):
        return P @ np.ones(P.shape[1], dtype=P.dtype)


def _row_sums_check(P, s, eps):
    """scikit-learn's "do not sum to one" warning (``isclose(sum, 1, rtol=sqrt(eps))``)."""
    if P.ndim == 1 or P.shape[1] == 1:
        return  # [1 - p, p] sums to one within rounding
    with np.errstate(over="ignore", invalid="ignore"):
        ok = np.abs(s - 1) <= 1e-8 + math.sqrt(eps)
    if not ok.all():
        warnings.warn("The y_prob values do not sum to one. Make sure to pass probabilities.",
                      UserWarning, stacklevel=3)


def _check_weights(sample_weight, n):
    if sample_weight is None:
        return None
    if not _is_array_like(sample_weight) or np.ndim(sample_weight) == 0:
        raise InvalidParameterError("The 'sample_weight' parameter of log_loss must be an "
                                    f"array-like or None. Got {sample_weight!r} instead.")
    w = np.asarray(sample_weight)
    if w.ndim != 1:
        if w.shape[0] != n:
            raise ValueError("Found input variables with inconsistent numbers of samples: "
                             f"[{n}, {n}, {w.shape[0]}]")
        raise ValueError("Sample weights must be 1D array or scalar")
    if w.dtype.kind not in "biuf":
        w = w.astype(np.float64)
    _check_finite(w, " sample_weight")
    if not np.any(w != 0):
        raise ValueError("Sample weights must contain at least one non-zero number.")
    return w


def log_loss(y_true, y_proba=None, *, normalize=True, sample_weight=None, labels=None,
             y_pred="deprecated"):
    r"""Log loss of predicted probabilities, as ``sklearn.metrics.log_loss``.

    ``-1/N * sum_i w_i log(clip(p_{i, y_i}, eps, 1 - eps))`` with ``eps = np.finfo(y_proba.dtype).eps``
    (the weighted sum if ``normalize=False``).

    Parameters
    ----------
    y_true : array_like
        Labels (any sortable values) or a label-indicator matrix.
    y_proba : array_like
        Probabilities, ``(n, K)`` or ``(n,)`` for the positive class of two.
    normalize : bool, default True
        Mean (``True``) or sum.
    sample_weight : array_like, optional
        One weight per sample.
    labels : array_like, optional
        All the classes, when ``y_true`` does not show every one.
    y_pred : array_like, deprecated
        scikit-learn 1.9's old name of ``y_proba`` (a FutureWarning).

    Returns
    -------
    float
        The loss.

    Raises
    ------
    ValueError
        scikit-learn's checks, with its messages (inconsistent lengths, values outside [0, 1],
        one class only, class counts that differ).
    InvalidParameterError
        ``normalize`` that is not a bool.

    See Also
    --------
    fastloss.sparse_categorical_cross_entropy : the kernel behind it (``clip='sklearn'``).

    Notes
    -----
    Each sample's log is taken in float64 and rounded once; the sum is float64 by the
    kernels' block reduction. scikit-learn sums in the input's precision, so float32
    results can differ by its summation error. The module docstring lists the semantics.

    Examples
    --------
    >>> from fastloss.sklearn import log_loss
    >>> round(log_loss(["spam", "ham", "ham", "spam"],
    ...                [[.1, .9], [.9, .1], [.8, .2], [.35, .65]]), 5)
    0.21616
    """
    if type(y_pred) is str and y_pred == "deprecated":
        fast = _fast_log_loss(y_true, y_proba, normalize, sample_weight, labels)
        if fast is not None:
            return fast
    y_proba = _renamed_y_pred(y_proba, y_pred)
    y_proba = _proba_host(y_proba)
    y_true, sample_weight, labels = map(_host, (y_true, sample_weight, labels))
    if not isinstance(normalize, (bool, np.bool_)):
        raise InvalidParameterError("The 'normalize' parameter of log_loss must be an instance "
                                    f"of 'bool' or an instance of 'numpy.bool'. Got {normalize!r} "
                                    "instead.")
    P = _check_proba(y_proba)
    # one pass gives the row sums (for the "do not sum to one" warning, issued later in
    # scikit-learn's order) and finiteness: a NaN or inf makes its row sum non-finite
    row_sums = _row_sums(P)
    with np.errstate(invalid="ignore"):
        if not np.isfinite(row_sums).all():
            _check_finite(P, "")
    if P.max() > 1:
        raise ValueError(f"y_prob contains values greater than 1: {P.max()}")
    if P.min() < 0:
        raise ValueError(f"y_prob contains values lower than 0: {P.min()}")
    kind, y = _labels_of(y_true)
    n = P.shape[0]
    if y.shape[0] != n:
        lens = [n, y.shape[0]] + ([] if sample_weight is None else [len(sample_weight)])
        raise ValueError(f"Found input variables with inconsistent numbers of samples: {lens}")
    if sample_weight is not None and np.ndim(sample_weight) == 1 and len(sample_weight) != n:
        raise ValueError("Found input variables with inconsistent numbers of samples: "
                         f"[{n}, {n}, {len(sample_weight)}]")
    w = _check_weights(sample_weight, n)
    classes, idx = _classes(kind, y, labels)
    dt = P.dtype
    eps = float(np.finfo(dt).eps)
    n_cols = 2 if (P.ndim == 1 or P.shape[1] == 1) else P.shape[1]
    _row_sums_check(P, row_sums, eps)
    if classes.shape[0] != n_cols:
        if labels is None:
            raise ValueError("y_true and y_prob contain different number of classes: "
                             f"{classes.shape[0]} vs {n_cols}. Please provide the true labels "
                             "explicitly through the labels argument. Classes found in y_true: "
                             f"{classes}")
        raise ValueError("The number of classes in labels is different from that in y_prob. "
                         f"Classes found in labels: {classes}")
    total = _total(P, kind, y, idx, w, eps)
    # np.average / np.dot / np.sum result dtypes
    if w is None:
        out_dt = dt
        res = total / n if normalize else total
    else:
        out_dt = np.result_type(dt, w.dtype)
        res = total / float(np.sum(w, dtype=np.float64)) if normalize else total
    return float(np.asarray(res, dtype=np.float64).astype(out_dt))


_FAST = {}  # (dtype, C) -> (ones, 0..C-1 as int64 bytes, clip, tolerance), kept between calls


def _fast_consts(dt, C):
    c = _FAST.get((dt, C))
    if c is None:
        eps = float(np.finfo(dt).eps)
        c = _FAST.setdefault((dt, C), (np.ones(C, dtype=dt), np.arange(C).tobytes(),
                                       Clip(CLIP_EPS, eps), 1e-8 + math.sqrt(eps)))
    return c


def _fast_log_loss(y_true, P, normalize, sample_weight, labels):
    """The common case in one compiled call, or None (then the general path checks and
    raises): C-contiguous float32/float64 ``(n, C)`` probabilities, int64/int32 labels
    ``0..C-1`` with every class present (or ``labels`` exactly ``0..C-1`` as int64), rows
    summing to one within scikit-learn's tolerance, no weights or float64 ones with float64
    probabilities. Same bits as the general path: the same kernel, clip and division."""
    if (type(P) is not np.ndarray or type(y_true) is not np.ndarray or P.ndim != 2
            or y_true.ndim != 1 or y_true.dtype.kind != "i" or type(normalize) is not bool):
        return None
    dt = P.dtype
    n, C = P.shape
    if (dt != np.float32 and dt != np.float64) or C < 2 or y_true.shape[0] != n:
        return None
    w = sample_weight
    if w is not None and (type(w) is not np.ndarray or w.dtype != np.float64
                          or dt != np.float64 or w.shape != (n,)):
        return None
    ones, arange_bytes, clip, tol = _fast_consts(dt, C)
    if labels is None:
        # every class present: np.unique(y_true) is 0..C-1 and the indices are y_true
        try:
            counts = np.bincount(y_true, minlength=C)
        except (ValueError, TypeError):  # negative labels, or int64 beyond intp
            return None
        if counts.shape[0] != C or np.count_nonzero(counts) != C:
            return None
    elif (type(labels) is not np.ndarray or labels.dtype != np.int64
          or labels.shape != (C,) or labels.tobytes() != arange_bytes):
        return None
    # scikit-learn's row-sum test, |P @ 1 - 1| <= tol for all rows: a sum of squares within
    # tol**2 / 4 proves it (float rounding cannot hide a factor 4); else the exact test.
    # A failing or NaN row declines: the general path warns or names it.
    d = P @ ones
    d -= 1
    if not d @ d <= 0.25 * tol * tol:
        with np.errstate(invalid="ignore"):
            if not np.abs(d).max() <= tol:
                return None
    if w is None:  # the kernel's float64 sum over n, rounded once to P's dtype
        res = fast_sparse(y_true, P, reduction="mean" if normalize else "sum",
                          kernel_clip=clip)
        return None if res is None else float(res)
    if not np.any(w != 0):
        return None
    total = fast_sparse(y_true, P, sample_weight=w, reduction="sum", kernel_clip=clip)
    if total is None:
        return None
    return float(total / float(np.sum(w, dtype=np.float64)) if normalize else total)


def _renamed_y_pred(y_proba, y_pred):
    """scikit-learn 1.9's rename of ``y_pred`` to ``y_proba`` (a FutureWarning)."""
    if isinstance(y_pred, str) and y_pred == "deprecated":
        return y_proba
    if y_proba is not None:
        raise ValueError("Cannot use both `y_pred` and `y_proba`. `y_pred` is deprecated, "
                         "use `y_proba` instead.")
    warnings.warn("`y_pred` was renamed to `y_proba` in version 1.9 and will be removed in "
                  "1.11. Use `y_proba` instead.", FutureWarning, stacklevel=3)
    return y_pred


def _classes(kind, y, labels):
    """``(classes, column index of each label)``; ``idx`` is None for indicator targets."""
    if kind == "indicator":
        if labels is not None:
            raise ValueError("labels cannot be combined with a label-indicator y_true")
        return np.arange(y.shape[1]), None
    if labels is not None:
        lab = np.asarray(labels)
        classes = _unique(lab, "labels")
        if classes.shape != lab.shape or np.any(classes != lab):
            warnings.warn(f"Labels passed were {labels}. But this function assumes labels "
                          "are ordered lexicographically. Pass the ordered "
                          f"labels={classes.tolist()} and ensure that the columns of y_prob "
                          "correspond to this ordering.", UserWarning, stacklevel=3)
        idx = np.clip(np.searchsorted(classes, y), 0, classes.size - 1)
        found = classes[idx] == y
        if not np.all(found):
            undeclared = set(y[~found].tolist())
            raise ValueError(f"y_true contains values {undeclared} not belonging to the "
                             f"passed labels {labels}.")
    else:
        classes, idx = _encode(y)
    if classes.shape[0] == 1:
        if labels is None:
            raise ValueError(f"y_true contains only one label ({classes[0]}). Please provide "
                             "the list of all expected class labels explicitly through the "
                             "labels argument.")
        raise ValueError("The labels array needs to contain at least two labels, got "
                         f"{classes}.")
    return classes, idx


def _total(P, kind, y, idx, w, eps):
    """``sum_i w_i * -log(clip(p_i))`` by the kernel that fits the targets' form."""
    dt = P.dtype
    cdt = np.dtype(np.float32) if dt == np.float16 else dt
    Pc = np.ascontiguousarray(P, dtype=cdt)
    sw = EMPTY if w is None else np.ascontiguousarray(w, dtype=np.float64)
    if kind == "indicator":
        return _categorical_sum(Pc, np.ascontiguousarray(y, dtype=cdt), sw, eps, dt)
    if P.ndim == 1 or P.shape[1] == 1:  # two classes given as one column
        return _binary_sum(Pc.reshape(-1), (idx == 1).astype(cdt), sw, eps, dt)
    return _sparse_sum(Pc, np.ascontiguousarray(idx, dtype=np.int64), sw, eps, dt)


def _encode(y):
    """``np.unique(y, return_inverse=True)``; O(n) for integers of a small range."""
    if y.dtype.kind in "iub" and y.size:
        lo, hi = int(y.min()), int(y.max())
        if hi - lo <= 4 * y.size + 1024:
            present = np.bincount((y - lo).astype(np.intp), minlength=hi - lo + 1) > 0
            classes = (np.flatnonzero(present) + lo).astype(y.dtype)
            lookup = np.cumsum(present) - 1
            return classes, lookup[(y - lo).astype(np.intp)]
    if y.dtype.kind == "O":
        return _unique_object(y)
    return np.unique(y, return_inverse=True)


def _unique_object(y):
    try:
        return np.unique(y, return_inverse=True)
    except TypeError:
        raise ValueError("Mix of label input types (string and number)") from None


def _bounds(dt, eps):
    lo = dt.type(eps)
    return lo, dt.type(1) - lo


def _sparse_sum(P, idx, sw, eps, dt):
    """sum_i w_i * -log(clip(P[i, idx_i])) by the sparse CE kernel (no one-hot)."""
    if dt == np.float16:  # clip at float16's eps, computed in float32
        lo, hi = _bounds(np.dtype(np.float16), eps)
        P = np.clip(P, np.float32(lo), np.float32(hi))
    return sparse_ce_call(P, idx, from_logits=False, sample_weight=sw, clip=Clip(CLIP_EPS, eps),
                          **_backend()).sums()[0]


def _binary_sum(p, z, sw, eps, dt):
    """The 1-D case: BCE kernel, ``1 - clip(p)`` equals scikit-learn's ``clip(1 - p)``."""
    if dt == np.float16:
        lo, hi = _bounds(np.dtype(np.float16), eps)
        p16 = np.clip(p.astype(np.float16), lo, hi)
        q = (np.float16(1) - p16).astype(np.float32)  # the complement in float16
        p = p16.astype(np.float32)
        v = np.where(z == 1, -np.log(p.astype(np.float64)), -np.log(q.astype(np.float64)))
        v = v.astype(np.float32).astype(np.float64)
        return float(np.sum(v if not sw.size else v * sw))

    return bce_call(p, z, from_logits=False, sample_weight=sw, clip=Clip(CLIP_EPS, eps),
                    **_backend()).sums()[0]


def _categorical_sum(P, T, sw, eps, dt):
    if dt == np.float16:
        lo, hi = _bounds(np.dtype(np.float16), eps)
        P = np.clip(P, np.float32(lo), np.float32(hi))
    return categorical_ce_call(P, T, from_logits=False, sample_weight=sw,
                               clip=Clip(CLIP_EPS, eps), **_backend()).sums()[0]


def _backend():
    """The default backend and thread count, as the builders' keywords."""
    return dict(kern=resolve_backend(None)[1], n_threads=resolve_threads(None))
