"""Drop-in for the ``scipy.special`` functions used to build losses, on NumPy arrays.

``from fastloss import scipy as special`` in place of ``from scipy import special``:
``logsumexp(a, axis=None, b=None, keepdims=False, return_sign=False)``,
``softmax(x, axis=None)``, ``log_softmax(x, axis=None)`` (``axis`` may be a tuple),
``expit``, ``log_expit``, ``entr``, ``xlogy``, ``rel_entr``, ``kl_div`` (with the ufunc
keywords ``out=``, ``where=``, ``casting=``, ``order=`` and ``dtype=``), with SciPy's argument
names, defaults (``axis=None`` reduces over *all* elements) and edge cases. SciPy is not
imported.

Array-API mode: with ``SCIPY_ARRAY_API`` set (read at each call; SciPy reads it at
import), a torch CPU tensor or another array-API array in gives the same namespace out
(a 0-d tensor, not a NumPy scalar), computed on a zero-copy NumPy view; integer inputs
take the other inputs' float dtype or the namespace's default float (``xp_promote``).
Without it, ``logsumexp``/``softmax``/``log_softmax`` give NumPy for any input, and the
ufuncs (``expit``, ``log_expit``, ``entr``, ``xlogy``, ``rel_entr``, ``kl_div``) give what
SciPy's ufuncs give: a pandas Series/DataFrame for one (same index and columns), a torch
tensor for a torch CPU tensor, NumPy otherwise (TF tensors and lists included).

Upstream suites (``tests/dropins/upstream/run_upstream.py scipy scipy-array-api``):
SciPy's own ``test_logsumexp.py`` (TestLogSumExp, TestSoftmax, TestLogSoftmax),
``test_logit.py`` (TestExpit, TestLogExpit) and ``test_basic.py`` (xlogy, entr, kl_div,
rel_entr) with only the imports changed: all 419 pass on NumPy and, for
``test_logsumexp.py``, all 803 on torch tensors and ``array_api_strict`` arrays under
``SCIPY_ARRAY_API``. No test is excluded.

Semantics mirrored (scipy/special/_logsumexp.py, the xsf scalar kernels):

* ``logsumexp``: a zero ``b`` masks its entry even if it is inf or NaN; negative
  ``b`` with ``return_sign=True`` gives ``(log|s|, sign)``, without it a negative
  sum gives NaN; the sign of an all ``-inf`` (zero) sum is 0; empty reductions
  give ``-inf`` (with sign -1, SciPy's ``sign(-inf)``). Integers are computed in
  float64; 0-d results are NumPy scalars.
* ``softmax`` of a row holding ``+inf`` or only ``-inf`` is NaN; ``log_softmax``
  of a row holding ``+inf`` is NaN at the ``+inf`` entries and ``-inf`` elsewhere,
  of an all ``-inf`` row NaN (SciPy's ``x - max`` with a non-finite max set to 0).
* ``xlogy(x, y)`` is 0 where ``x == 0`` unless ``y`` is NaN; ``rel_entr`` is
  ``x*log(x/y)`` for ``x, y > 0`` (with SciPy 1.15+'s ``log1p((x-y)/y)`` near
  ``x == y`` and ``log(x) - log(y)`` where ``x/y`` would overflow or underflow), 0 for
  ``x == 0, y >= 0``, ``+inf`` otherwise, NaN if either is NaN; ``kl_div`` is
  ``x*log(x/y) - x + y`` (``y`` where ``x == 0``). They run on the backend's
  element-wise kernel (vectorised float64 log, multi-threaded).
* The six ufuncs resolve their loop as NumPy 2 does for SciPy's loop lists
  (``scipy.special.<f>.types``): an exact dtype match, else the first loop every input
  casts to safely, Python scalars being weak (NEP 50), so ``rel_entr(f32, 2.0)`` and
  ``entr(int8)`` are float32 and ``xlogy(f32, 2.0)`` float64 ('dd' comes first);
  ``dtype=`` or ``signature=`` picks a loop (a signature giving every type, or only the
  output's: one leaving inputs free raises ``TypeError``, as NumPy's promoters choose
  there by the operands' order); inputs are cast to the loop first. ``casting=`` applies to
  the inputs and to ``out``, with NumPy's errors. **Long double**: ``expit``/``log_expit``
  compute in long double (SciPy's 'g' loop); ``xlogy``, ``entr``, ``rel_entr``, ``kl_div``
  raise ``TypeError`` as SciPy does (no safe cast to their loops; ``dtype=np.float64``
  computes in float64). All of this is compared with SciPy over every pair of operand
  kinds and casting rule in tests/dropins/test_scipy.py.
* ``where=``: NumPy's semantics, checked against NumPy's ``copyto`` of SciPy's values:
  ``out`` keeps its values where ``where`` is False, ``where`` broadcasts with the inputs
  (and can widen the result), a non-bool ``where`` raises. Without ``out`` NumPy warns
  that those places are uninitialised; fastloss warns alike and leaves the computed
  values there. (SciPy 1.17.1's own ``xlogy``, ``expit`` and ``log_expit`` write the wrong
  elements under a ``where`` mask, probably the ufunc-loop bug fixed by
  scipy/scipy#25127; ``entr``, ``rel_entr`` and ``kl_div`` are right and agree.)
* ``order=`` (``'K'``, ``'C'``, ``'F'``, ``'A'``, lowercase or None): the new result's memory
  layout as SciPy's ufunc allocates it (``'K'`` follows the inputs of the full shape when
  they agree). ndarray subclasses come back as a ufunc wraps them (``subok=True``): a
  masked array with the inputs' masks or'ed (``np.ma.masked`` for a masked 0-d result), a
  ``np.matrix`` as a matrix. ``out=`` may be an array or NumPy's 1-tuple (a NumPy array: a torch
  ``out`` raises ``TypeError``; SciPy's array-API mode refuses every ufunc keyword for
  torch input, fastloss computes ``where``/``casting``/``order``/``dtype`` as for NumPy).
* pandas operands of the ufuncs: as pandas' ``__array_ufunc__`` hands them to SciPy, two
  pandas objects are reindexed on the union of their labels (NaN where one lacks a label;
  a DataFrame with a Series raises ``NotImplementedError``), a pandas object with an
  array or a scalar is positional; the result has the aligned labels and the name the
  Series share. ``logsumexp``/``softmax``/``log_softmax`` read pandas by position.

Documented deviations (tested in tests/test_dropin_scipy.py):

1. float32 inputs are computed in float64 and rounded once (SciPy's float32
   ``logsumexp``/``softmax``/``log_softmax``/``expit`` round at every step), so
   fastloss is within 0.5 ulp of the exact value and SciPy a few ulps away
   (relative to ``|max| + |log(sum)|`` where ``logsumexp`` cancels).
2. ``logsumexp`` without ``b`` runs on fastloss's kernel
   (``max + log1p(sum of the others)``, float64 inside); with ``b`` it follows
   SciPy's algorithm in float64. float64 results agree with SciPy to a few
   eps64 (relative to the same scale). float16 is computed in float32.
3. Complex (``logsumexp``, ``xlogy``) and long double (``logsumexp``, ``softmax``,
   ``log_softmax``, ``expit``, ``log_expit``) inputs take a NumPy path that follows
   SciPy's algorithm in the input's dtype, not a fastloss kernel; the other functions raise ``TypeError`` for
   complex input, as SciPy's ufuncs do.
"""

import functools
import os
import warnings

import numpy as np

import fastloss.losses.log_sum_exp as _lse
from fastloss.losses._docs import fill
from fastloss._dispatch import resolve_backend, resolve_threads
from fastloss.losses.log_sum_exp import fast_logsumexp as _fast_lse  # compiled (#16)
from fastloss.kernels import EW_KL_DIV, EW_REL_ENTR, EW_XLOGY

__all__ = ["entr", "expit", "kl_div", "log_expit", "log_softmax", "logsumexp", "rel_entr",
           "softmax", "xlogy"]


def _real(a, name, complex_ok=False):
    arr = np.asarray(a)
    if arr.dtype.kind == "c" and not complex_ok:
        raise TypeError(f"{name}: complex inputs are not supported by fastloss.scipy")
    if arr.dtype.kind not in "biufc":
        arr = arr.astype(np.float64)
    return arr


# --------------------------------------------------------------------------- array API


def _array_api_on():
    # SciPy reads SCIPY_ARRAY_API once at import; fastloss does not import SciPy, so it
    # reads the same variable when called
    return os.environ.get("SCIPY_ARRAY_API", "0").strip() not in ("", "0")


def _namespace(*args):
    """``(to_numpy, back, default float name, mixed-kind promotion?)`` for the array-API
    inputs among ``args`` (SciPy's array-API mode), or None: NumPy in, NumPy out."""
    if not _array_api_on():
        return None
    arrays = [a for a in args if a is not None and not isinstance(a, (np.ndarray, np.generic))
              and (type(a).__module__.startswith("torch") or hasattr(a, "__array_namespace__"))]
    if not arrays:
        return None
    x = arrays[0]
    if type(x).__module__.startswith("torch"):
        import torch

        if x.device.type != "cpu":
            raise TypeError(f"fastloss.scipy computes on the CPU; got a tensor on {x.device}")

        def back(r):
            r = np.asarray(r)
            return torch.from_numpy(np.ascontiguousarray(r)) if r.ndim else torch.asarray(r)

        def to_numpy(a):
            return a.detach().numpy() if isinstance(a, torch.Tensor) else a

        default = torch.get_default_dtype()
        return to_numpy, back, str(default).replace("torch.", ""), True
    xp = x.__array_namespace__()

    def back(r):
        return xp.asarray(np.asarray(r), device=x.device)

    def to_numpy(a):
        return np.from_dlpack(a) if hasattr(a, "__dlpack__") else np.asarray(a)

    try:  # does the namespace promote integers with floats (array_api_strict does not)?
        xp.result_type(*arrays)
        mixed = True
    except TypeError:
        mixed = False
    return to_numpy, back, "float64", mixed


def _xp_call(fn, arrays, **kw):
    """``fn(*arrays, **kw)`` on NumPy views of array-API inputs, results back in the
    input's namespace (None when no array-API input: the caller's NumPy path)."""
    ns = _namespace(*arrays)
    if ns is None:
        return None
    to_numpy, back, default, mixed = ns
    nps = [None if a is None else np.asarray(to_numpy(a)) for a in arrays]
    # SciPy's xp_result_type(force_floating=True): integers join the floating inputs'
    # dtype where the namespace promotes across kinds, else the default float joins in
    floats = [a.dtype for a in nps if a is not None and a.dtype.kind in "fc"]
    ints = len(floats) < sum(a is not None for a in nps)
    if floats and not (ints and not mixed):
        target = np.result_type(*floats)
    else:
        target = np.result_type(*floats, np.dtype(default))
    nps = [a if a is None or a.dtype.kind in "fc" else a.astype(target) for a in nps]
    res = fn(*nps, **kw)
    return tuple(back(r) for r in res) if isinstance(res, tuple) else back(res)


def _pandas_aligned(name, values):
    """The operands as SciPy's ufunc sees them through pandas' ``__array_ufunc__``: two or
    more pandas objects are reindexed on the union of their labels (rows, and columns of
    DataFrames; NaN where a label is missing), a DataFrame with a Series raises. Other
    operands stay positional."""
    pos = [i for i, v in enumerate(values) if type(v).__module__.startswith("pandas")
           and hasattr(v, "reindex")]
    if len(pos) < 2:
        return values
    objs = [values[i] for i in pos]
    if len({v.ndim for v in objs}) > 1:
        raise NotImplementedError(f"Cannot apply ufunc <ufunc {name!r}> to mixed DataFrame "
                                  "and Series inputs.")
    axes = list(objs[0].axes)
    for v in objs[1:]:
        axes = [a.union(b) for a, b in zip(axes, v.axes)]
    keys = ("index", "columns")[:len(axes)]
    out = list(values)
    for i in pos:
        if not all(a.equals(b) for a, b in zip(values[i].axes, axes)):
            out[i] = values[i].reindex(**dict(zip(keys, axes)))
    return tuple(out)


def _subclass_result(res, inputs):
    """``res`` wrapped by the ndarray-subclass input of highest ``__array_priority__``, as
    a ufunc does (``__array_wrap__``): a masked array gets the inputs' masks or'ed and its
    fill value (``np.ma.masked`` for a masked 0-d result), a matrix stays a matrix; None
    without such an input."""
    subs = [x for x in inputs if isinstance(x, np.ndarray) and type(x) is not np.ndarray]
    if not subs:
        return None
    x = max(subs, key=lambda a: a.__array_priority__)  # the first of the highest
    r = np.asarray(res)
    if not isinstance(x, np.ma.MaskedArray):
        return x.__array_wrap__(r)
    m = functools.reduce(np.logical_or, [np.ma.getmaskarray(a) for a in inputs])
    if r.ndim == 0 and m:
        return np.ma.masked
    w = r.view(type(x))
    w.mask = np.broadcast_to(m, r.shape)
    w.fill_value = x.fill_value
    return w


def _ufunc_container(res, inputs, out, subok=True):
    """A SciPy ufunc's container for ``res``: ndarray subclasses (``subok``) and torch
    tensors by their ``__array_wrap__``, pandas objects the same pandas type
    (``__array_ufunc__``); else ``res``."""
    if out is not None:
        return res
    sub = _subclass_result(res, inputs) if subok else None
    if sub is not None:
        return sub
    for x in inputs:
        mod = type(x).__module__
        if mod.startswith("pandas") and np.shape(x) == np.shape(res):
            import pandas as pd

            if isinstance(x, pd.DataFrame):
                return pd.DataFrame(res, index=x.index, columns=x.columns)
            if isinstance(x, pd.Series):
                # pandas: the name the inputs that have one share, else None
                names = {getattr(v, "name") for v in inputs if hasattr(v, "name")}
                return pd.Series(res, index=x.index, name=names.pop() if len(names) == 1 else None)
    for x in inputs:
        if type(x).__module__.startswith("torch"):
            import torch

            return torch.from_numpy(np.array(res, copy=True, ndmin=0))
    return res


# SciPy's loops of each ufunc, in its order (``scipy.special.<name>.types``, SciPy 1.17):
# every loop takes and gives one type. expit/log_expit have a long double loop; the others
# refuse long double input as SciPy does (no safe cast to any loop).
_LOOPS = {name: tuple(np.dtype(c) for c in codes) for name, codes in (
    ("expit", "dfg"), ("log_expit", "dfg"), ("entr", "fd"), ("xlogy", "dfDF"),
    ("rel_entr", "fd"), ("kl_div", "fd"))}
_CASTINGS = ("no", "equiv", "safe", "same_kind", "unsafe")
_WEAK = (int, float, complex)  # Python scalars: NEP 50's weak operands (bool is strong)


def _operand_dtypes(values):
    """The dtypes NumPy 2 resolves a ufunc's loop with, and whether a Python scalar is
    among them: a Python int/float/complex takes the dtype of its kind promoted with the
    array operands' (``rel_entr(f32, 2.0)`` sees two float32 operands), or its default
    dtype when every operand is a Python scalar."""
    dts = [v.dtype if isinstance(v, np.ndarray) else np.asarray(v).dtype for v in values]
    strong = [d for d, v in zip(dts, values) if type(v) not in _WEAK]
    if len(strong) == len(values) or not strong:
        return dts, len(strong) < len(values)
    return [d if type(v) not in _WEAK else np.result_type(*strong, type(v)(0))
            for d, v in zip(dts, values)], True


def _signature(name, signature, dtype, nin):
    """NumPy's ``signature=`` (``"dd->d"`` or a tuple of dtypes and None) as the input
    types it fixes (None: free) and the output type it asks for, or None."""
    if signature is None:
        return None
    if dtype is not None:
        raise TypeError("cannot specify both 'signature' and 'dtype'")
    if isinstance(signature, str):
        if "->" not in signature:
            if len(signature) == 1:
                raise TypeError("Use `dtype` or  fill the tuple with more than one 'None'.")
            raise ValueError(f"a type-string for {name}, {nin} typecode(s) before and 1 "
                             "after the -> sign")
        ins, out = signature.split("->")
        if len(ins) != nin or len(out) != 1:
            raise ValueError(f"a type-string for {name}, {nin} typecode(s) before and 1 "
                             "after the -> sign")
        types = tuple(ins) + (out,)
    else:
        types = tuple(signature)
        if len(types) == 1:
            raise TypeError("Use `dtype` or  fill the tuple with more than one 'None'.")
        if len(types) != nin + 1:
            raise ValueError(f"signature tuple for {name} must have {nin + 1} entries")
    return tuple(None if t is None else np.dtype(t) for t in types)


def _resolve(name, values, dtype, casting, signature=None):
    """The loop type of SciPy's ufunc ``name`` for these operands (NumPy's dispatch).

    An exact match wins (not with a Python scalar, whose abstract DType matches no loop:
    ``xlogy(f32, 2.0)`` is float64, its 'dd' loop coming first); else the first loop every
    operand casts to safely (whatever ``casting`` says); ``dtype=`` (or a ``signature``
    fixing only the output) picks the loop of that type instead, as does a ``signature``
    giving every type. The operands must then cast to it under ``casting``. NumPy's
    errors.
    """
    if casting not in _CASTINGS:
        if not isinstance(casting, str):
            raise TypeError(f"casting must be str, not {type(casting).__name__}")
        raise ValueError("casting must be one of 'no', 'equiv', 'safe', 'same_kind', "
                         f"'unsafe' (got {casting!r})")
    loops = _LOOPS[name]
    dts, weak = _operand_dtypes(values)
    sig = _signature(name, signature, dtype, len(values))
    if sig is not None and all(t is None for t in sig[:-1]) and sig[-1] is not None:
        dtype, sig = sig[-1], None  # only the output fixed: dtype='s meaning
    elif sig is not None and any(t is None for t in sig):  # (dtype('d') == None is True)
        # NumPy resolves these through its promoters, whose choice depends on the operands'
        # order and kinds (xlogy(f32, i8) and xlogy(i8, f32) differ): not mirrored
        raise TypeError(f"{name}: fastloss.scipy takes a signature that gives every type, "
                        "or only the output's (or use dtype=)")
    if sig is None and dtype is None and not weak and dts[0] in loops and all(
            d == dts[0] for d in dts):
        return dts[0]  # the common case: an exact match casts under any rule
    if sig is not None:
        loop = sig[0] if all(t == sig[0] for t in sig) else None
        if loop is None or loop not in loops:  # (None in loops: dtype('d') == None)
            raise TypeError(f"No loop matching the specified signature and casting was found "
                            f"for ufunc {name}")
        if loop.kind != "c" and len(values) > 1 and any(type(v) is complex for v in values):
            # NumPy converts a weak Python scalar straight to the signature's type
            raise TypeError("can't convert complex to float")
    elif dtype is not None:
        want = np.dtype(dtype)
        if want not in loops:
            raise TypeError(f"No loop matching the specified signature and casting was found "
                            f"for ufunc {name}")
        loop = want
    else:
        # (an exact match returned above; a Python scalar matches no loop exactly)
        loop = next((lp for lp in loops if all(np.can_cast(d, lp, "safe") for d in dts)), None)
        if loop is None:
            raise TypeError(f"ufunc {name!r} not supported for the input types, and the inputs "
                            "could not be safely coerced to any supported types according to "
                            "the casting rule ''safe''")
    for i, (d, v) in enumerate(zip(dts, values)):
        rule = casting
        if type(v) in _WEAK and len(values) > 1:  # a lone operand is never weak
            # a weak Python scalar is checked by its kind (the smallest dtype of it), as
            # 'same_kind' under 'no', and as its default dtype under 'equiv': NumPy 2.4's
            # checks, read off its results (tests/dropins/test_scipy.py runs them all)
            d = np.dtype({int: np.int8, float: np.float16, complex: np.complex64}[type(v)])
            if casting == "no":
                rule = "same_kind"
            elif casting == "equiv":
                d = np.asarray(v).dtype
        if not np.can_cast(d, loop, rule):
            raise TypeError(f"Cannot cast ufunc {name!r} input {i} from {d!r} to {loop!r} "
                            f"with casting rule {casting!r}")
    return loop


def _ufunc_args(name, out, where, order):
    """``out`` as an array or None (a 1-tuple as NumPy takes it), ``where`` as a bool
    array or None (``True``), ``order`` checked: NumPy's errors."""
    if isinstance(out, tuple):
        if len(out) != 1:
            raise ValueError("The 'out' tuple must have exactly one entry per ufunc output")
        out = out[0]
    if out is not None and not isinstance(out, np.ndarray):
        raise TypeError("return arrays must be of ArrayType")
    if order is None:
        order = "K"
    if not isinstance(order, str) or order.upper() not in ("C", "F", "A", "K"):
        raise ValueError(f"order must be one of 'C', 'F', 'A', or 'K' (got {order!r})")
    if where is True:
        where = None
    elif where is not None:
        where = np.asarray(where)
        if not np.can_cast(where.dtype, np.bool_, "safe"):
            raise TypeError(f"Cannot cast array data from {where.dtype!r} to dtype('bool') "
                            "according to the rule 'safe'")
        where = where.astype(np.bool_, copy=False)
    return out, where, order.upper()


def _layout(res, inputs, order):
    """``res`` in the memory order a ufunc allocates: ``'K'`` keeps the axis order of the
    inputs of the full shape when they agree (else C), ``'A'`` is Fortran if every array
    input is."""
    if res.ndim < 2:
        return res
    arrays = [a for a in inputs if isinstance(a, np.ndarray) and a.ndim]
    if order == "A":
        order = "F" if arrays and all(a.flags.f_contiguous for a in arrays) else "C"
    if order == "F":
        return np.asfortranarray(res)
    if order == "K":
        perms = {tuple(np.argsort([-abs(st) for st in a.strides], kind="stable"))
                 for a in arrays if a.shape == res.shape}
        perm = perms.pop() if len(perms) == 1 else tuple(range(res.ndim))
        if perm != tuple(range(res.ndim)):
            r = np.empty([res.shape[i] for i in perm], res.dtype).transpose(np.argsort(perm))
            r[...] = res
            return r
    return np.ascontiguousarray(res)


def _finish(res, name, loop, out, where, casting, order, inputs):
    """The ufunc's result of loop type ``loop`` from ``res`` (computed wider and not yet
    rounded, or of that type): rounded once, written to ``out`` under ``where`` and
    ``casting``, or returned in the layout ``order`` asks for."""
    res = np.asarray(res).astype(loop, copy=False)
    if out is not None:
        if not np.can_cast(loop, out.dtype, casting):
            raise TypeError(f"Cannot cast ufunc {name!r} output from {loop!r} to "
                            f"{out.dtype!r} with casting rule {casting!r}")
        shape = np.broadcast_shapes(res.shape, () if where is None else where.shape)
        if np.broadcast_shapes(shape, out.shape) != out.shape:
            raise ValueError(f"non-broadcastable output operand with shape {out.shape} "
                             f"doesn't match the broadcast shape {shape}")
        np.copyto(out, res, casting="unsafe", where=True if where is None else where)
        return out
    if where is not None:
        # NumPy's warning: where `where` is False a new output is uninitialised (fastloss
        # leaves the computed values there)
        warnings.warn("'where' used without 'out', expect unitialized memory in output. "
                      "If this is intentional, use out=None.", UserWarning, stacklevel=4)
        res = np.broadcast_to(res, np.broadcast_shapes(res.shape, where.shape)).copy()
    res = _layout(res, inputs, order)
    return res[()] if res.ndim == 0 else res


# --------------------------------------------------------------------------- log-sum-exp


def _promoted(a, b):
    """scipy's ``xp_promote(a, b, force_floating=True)``."""
    kinds = [x.dtype for x in (a, b) if x is not None]
    dt = np.result_type(*kinds)
    if dt.kind not in "fc":
        dt = np.result_type(dt, np.float64)
    return dt


def logsumexp(a, axis=None, b=None, keepdims=False, return_sign=False):
    r"""``scipy.special.logsumexp``: ``log(sum(b * exp(a), axis))``, computed stably.

    Parameters
    ----------
    a : array_like
        Input.
    axis : None, int or tuple of int, default None
        Axes to reduce.
    b : array_like, optional
        Scale factors.
    keepdims : bool, default False
        Keep the reduced axes.
    return_sign : bool, default False
        Also return the sign of the sum.

    Returns
    -------
    res : ndarray or scalar
        ``log|sum|``.
    sign : ndarray or scalar
        Only with ``return_sign=True``.

    Raises
    ------
    TypeError
        Complex or non-numeric inputs.
    ValueError
        An axis out of range, ``b`` that does not broadcast.

    See Also
    --------
    fastloss.logsumexp

    Notes
    -----
    SciPy's semantics, fastloss's row kernels. Computed in float64 and rounded once to the result dtype (NumPy's ufunc promotion).

    Examples
    --------
    >>> import numpy as np
    >>> import fastloss.scipy as special
    >>> float(special.logsumexp(np.array([1000.0, 1000.0])))
    1000.6931471805599
    """
    res = _xp_call(_logsumexp_numpy, (a, b), axis=axis, keepdims=keepdims,
                   return_sign=return_sign)
    return res if res is not None else _logsumexp_numpy(a, b, axis, keepdims, return_sign)


def _axes(axis, ndim):
    axes = tuple(range(ndim)) if axis is None else (
        tuple(axis) if isinstance(axis, (tuple, list)) else (axis,))
    for ax in axes:
        if not -ndim <= ax < ndim:
            raise ValueError(f"axis {ax} is out of bounds for an array of dimension {ndim}")
    return tuple(sorted(ax % ndim for ax in axes))


def _logsumexp_numpy(a, b=None, axis=None, keepdims=False, return_sign=False):
    """``logsumexp`` on NumPy inputs."""
    if b is None and return_sign is False:
        res = _fast_lse(a, axis=axis, keepdims=keepdims)
        if res is not None:  # the plain call, compiled: the same bits as below
            return res
    a = _real(a, "logsumexp", complex_ok=True)
    bb = None if b is None else _real(b, "logsumexp", complex_ok=True)
    dt = _promoted(a, bb)
    a = a.astype(dt, copy=False)
    if a.ndim == 0:
        a = a.reshape(1)
        if bb is not None:
            bb = np.asarray(bb).reshape(1) if bb.ndim == 0 else bb
    if bb is not None:
        a, bb = np.broadcast_arrays(a, bb.astype(dt, copy=False))
    axes = _axes(axis, a.ndim)
    if dt.kind == "c" or _is_long_double(dt):
        res, sign = _logsumexp_general(a, bb, axes, return_sign)
        res = res.astype(np.empty(0, dt).real.dtype if return_sign else dt)
        sign = sign.astype(dt)
    else:
        if bb is None:
            res = np.asarray(_lse.logsumexp(a, axis=axes, keepdims=True))
            sign = np.where(np.isnan(res), np.nan, np.where(res == -np.inf, 0.0, 1.0))
        else:
            res, sign = _logsumexp_b(a, bb, axes)
        res = res.astype(dt)
        sign = sign.astype(dt)
    if not return_sign and dt.kind != "c":
        res = np.where(sign < 0, dt.type(np.nan), res)
    if a.size == 0:  # SciPy: -inf with sign(-inf) = -1, not NaN
        res = np.full_like(res, -np.inf)
        sign = np.full_like(sign, -1)  # complex: -1+0j
    if not keepdims:
        res = np.squeeze(res, axis=axes)
        sign = np.squeeze(sign, axis=axes)
    res = res[()] if res.ndim == 0 else res
    sign = sign[()] if sign.ndim == 0 else sign
    return (res, sign) if return_sign else res


def _wrap_radians(x):
    # SciPy wraps the imaginary part to (-pi, pi], keeping small values exact
    return np.where(np.abs(x) < np.pi, x, -((-x + np.pi) % (2 * np.pi) - np.pi))


def _logsumexp_general(a, b, axes, return_sign):
    """SciPy's own algorithm in the input's dtype (complex, long double): NumPy's
    reference path, as SciPy computes it (scipy/special/_logsumexp.py, BSD-3)."""
    if a.size == 0:
        shape = [1 if i in axes else n for i, n in enumerate(a.shape)]
        return np.full(shape, -np.inf, a.dtype), np.full(shape, -1, a.dtype)
    with np.errstate(all="ignore"):
        b_exp_a = np.exp(a) if b is None else b * np.exp(a)
        direct = np.sum(b_exp_a, axis=axes, keepdims=True)
        sgn_inf = np.sign(direct)
        out_inf = np.log(np.abs(direct) if return_sign else direct)
        if b is not None:
            a = np.where(b == 0, -np.inf, a)
        # the element with the largest real part (one of them) is taken out of the sum
        real = a.real
        top = real == np.max(real, axis=axes, keepdims=True)
        idx = np.where(top, np.arange(a.size).reshape(a.shape), -1)
        i_max = idx == np.max(idx, axis=axes, keepdims=True)
        a_max = np.sum(np.where(i_max, a, 0), axis=axes, keepdims=True)
        a = np.where(i_max, -np.inf, a)
        m = np.sum(i_max.astype(a.dtype) if b is None else b * i_max, axis=axes, keepdims=True,
                   dtype=a.dtype)
        e = np.exp(a - a_max) if b is None else b * np.exp(a - a_max)
        s = np.sum(e, axis=axes, keepdims=True, dtype=a.dtype)
        s = np.where(s == 0, s, s / m)
        sgn = np.sign(s + 1) * np.sign(m)
        if a.dtype.kind == "c":
            sgn = sgn * np.exp(a_max.imag * 1j)
        else:
            s = np.where(s < -1, -s - 2, s)
            m = np.abs(m)
        out = np.log1p(s) + np.log(m) + a_max
        if return_sign:
            out = out.real
        fin = np.isfinite(out)
        out = np.where(fin, out, out_inf.real if return_sign else out_inf)
        sgn = np.where(fin, sgn, sgn_inf)
        if a.dtype.kind == "c":
            if return_sign:
                sgn = sgn.real + _wrap_radians(sgn.imag) * 1j
            else:
                out = out.real + _wrap_radians(out.imag) * 1j
    return out, sgn


def _logsumexp_b(a, b, axes):
    """SciPy's ``_logsumexp`` with ``b``, in float64: ``log1p(s) + log(m) + max``."""
    a64 = a.astype(np.float64)
    b64 = b.astype(np.float64)
    with np.errstate(all="ignore"):
        if a.size == 0:
            shape = [1 if i in axes else n for i, n in enumerate(a.shape)]
            return np.full(shape, -np.inf), np.full(shape, -1.0)
        raw = a64
        a64 = np.where(b64 == 0, -np.inf, a64)
        a_max = np.max(a64, axis=axes, keepdims=True)
        i_max = a64 == a_max
        m = np.sum(np.where(i_max, b64, 0.0), axis=axes, keepdims=True)
        e = b64 * np.exp(np.where(i_max, -np.inf, a64) - a_max)
        s = np.sum(e, axis=axes, keepdims=True)
        s = np.where(s == 0, s, s / m)
        sgn = np.sign(s + 1) * np.sign(m)
        s = np.where(s < -1, -s - 2, s)
        out = np.log1p(s) + np.log(np.abs(m)) + a_max
        # non-finite results: SciPy's direct formula, on the unmasked input (0 * inf is NaN)
        direct = np.sum(b64 * np.exp(raw), axis=axes, keepdims=True)
        fin = np.isfinite(out)
        out = np.where(fin, out, np.log(np.abs(direct)))
        sgn = np.where(fin, sgn, np.sign(direct))
    return out, sgn


def softmax(x, axis=None):
    r"""``scipy.special.softmax``: ``exp(x - logsumexp(x, axis))``.

    Parameters
    ----------
    x : array_like
        Input.
    axis : int, tuple of int or None, default None
        The axes normalised together (``None``: all elements).

    Returns
    -------
    ndarray
        ``x``'s shape.

    Raises
    ------
    TypeError
        Complex or non-numeric inputs.

    See Also
    --------
    log_softmax, fastloss.softmax

    Notes
    -----
    Computed in float64 and rounded once to the result dtype (NumPy's ufunc promotion).

    Examples
    --------
    >>> import numpy as np
    >>> import fastloss.scipy as special
    >>> special.softmax(np.array([0.0, np.log(3.0)]))
    array([0.25, 0.75])
    """
    res = _xp_call(_softmax_numpy, (x,), axis=axis)
    return res if res is not None else _softmax_numpy(x, axis)


def _over_axes(fn, x, axis):
    """``fn(x, axis=int or None)`` over a tuple of axes: those moved last and merged."""
    if not isinstance(axis, (tuple, list)):
        return np.asarray(fn(x, axis=axis))
    axes = _axes(axis, x.ndim)
    last = tuple(range(x.ndim - len(axes), x.ndim))
    moved = np.moveaxis(x, axes, last)
    lead = moved.shape[:x.ndim - len(axes)]
    flat = moved.reshape(lead + (int(np.prod(moved.shape[len(lead):])),))
    res = np.asarray(fn(flat, axis=-1)).reshape(moved.shape)
    return np.moveaxis(res, last, axes)


def _softmax_numpy(x, axis=None):
    """``softmax`` on NumPy inputs."""
    x = _real(x, "softmax")
    dt = _promoted(x, None)
    if _is_long_double(dt):
        return _softmax_long_double(x, axis, log=False)
    res = _over_axes(_lse.softmax, x.astype(dt, copy=False), axis)
    return res[()] if res.ndim == 0 else res


def _is_long_double(dt):
    return dt == np.longdouble and dt != np.float64  # (where long double is wider)


def _softmax_long_double(x, axis, log):
    """SciPy's own ``softmax`` / ``log_softmax`` in long double, as SciPy computes them
    (scipy/special/_logsumexp.py, BSD-3): fastloss's kernels stop at float64."""
    axis = tuple(axis) if isinstance(axis, list) else axis
    x_max = np.max(x, axis=axis, keepdims=True)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        if not log:
            e = np.exp(x - x_max)
            res = e / np.sum(e, axis=axis, keepdims=True)
        else:
            x_max = np.where(np.isfinite(x_max), x_max, 0)
            tmp = x - x_max
            res = tmp - np.log(np.sum(np.exp(tmp), axis=axis, keepdims=True))
    return res[()] if res.ndim == 0 else res


def log_softmax(x, axis=None):
    r"""``scipy.special.log_softmax``: ``x - logsumexp(x, axis)``, SciPy's non-finite rows.

    Parameters
    ----------
    x : array_like
        Input.
    axis : int, tuple of int or None, default None
        The axes normalised together (``None``: all elements).

    Returns
    -------
    ndarray
        ``x``'s shape.

    Raises
    ------
    TypeError
        Complex or non-numeric inputs.

    See Also
    --------
    softmax, fastloss.log_softmax

    Notes
    -----
    Computed in float64 and rounded once to the result dtype (NumPy's ufunc promotion).

    Examples
    --------
    >>> import numpy as np
    >>> import fastloss.scipy as special
    >>> special.log_softmax(np.array([0.0, -800.0]))
    array([   0., -800.])
    """
    res = _xp_call(_log_softmax_numpy, (x,), axis=axis)
    return res if res is not None else _log_softmax_numpy(x, axis)


def _log_softmax_numpy(x, axis=None):
    """``log_softmax`` on NumPy inputs."""
    x = _real(x, "log_softmax")
    dt = _promoted(x, None)
    if _is_long_double(dt):
        return _softmax_long_double(x, axis, log=True)
    x = x.astype(dt, copy=False)
    res = _over_axes(_lse.log_softmax, x, axis)
    if isinstance(axis, list):
        axis = tuple(axis)
    with np.errstate(invalid="ignore", over="ignore"):
        finite = x.size == 0 or np.isfinite(np.add.reduce(x, axis=None))
    if not finite:
        # rows with +inf: SciPy's (x - 0) - log(inf) is NaN at +inf and -inf elsewhere
        with np.errstate(invalid="ignore"):
            has_pinf = np.any(x == np.inf, axis=axis, keepdims=True)
            has_nan = np.any(np.isnan(x), axis=axis, keepdims=True)
        fix = np.where(x == np.inf, np.nan, -np.inf).astype(dt)
        res = np.where(has_pinf & ~has_nan, fix, res)
    return res[()] if res.ndim == 0 else res


# --------------------------------------------------------------------------- element-wise


def _ufunc(name, compute, values, out, where, casting, order, dtype, subok, signature):
    """SciPy's ufunc ``name`` computed by ``compute`` on the operands cast to its loop:
    array-API inputs come back in their namespace, pandas and torch in SciPy's containers."""
    kw = dict(name=name, compute=compute, out=out, where=where, casting=casting, order=order,
              dtype=dtype, signature=signature)
    values = _pandas_aligned(name, values)
    res = _xp_call(_ufunc_numpy, values, **kw)
    if res is not None:
        return res
    return _ufunc_container(_ufunc_numpy(*values, **kw), values, out, subok)


def _ufunc_numpy(*values, name, compute, out, where, casting, order, dtype, signature):
    out, where, order = _ufunc_args(name, out, where, order)
    loop = _resolve(name, values, dtype, casting, signature)
    # NumPy casts the inputs to the loop first (dtype=float32 rounds float64 inputs)
    arrays = [np.asarray(v).astype(loop, copy=False) for v in values]
    return _finish(compute(*arrays), name, loop, out, where, casting, order, arrays)


def _expit_values(x):
    # long double is SciPy's own 'g' loop; the rest is float64 rounded once
    r = np.array(x, dtype=np.longdouble if x.dtype == np.longdouble else np.float64)  # a copy
    np.negative(r, out=r)
    with np.errstate(over="ignore"):
        np.exp(r, out=r)  # SciPy's 1 / (1 + exp(-x)); exp overflow gives exactly 0
    r += 1.0
    np.reciprocal(r, out=r)
    return r


def _log_expit_values(x):
    x64 = x.astype(np.longdouble if x.dtype == np.longdouble else np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        return np.where(x64 < 0, x64 - np.log1p(np.exp(np.minimum(x64, 0))),
                        -np.log1p(np.exp(-np.maximum(x64, 0))))


def _ew_values(op, x, y):
    """One of the contract's element-wise kernels on two inputs of one float dtype,
    broadcast (complex ``xlogy``: NumPy's complex log)."""
    if x.dtype.kind == "c":
        return _xlogy_complex(x, y)
    xb, yb = np.broadcast_arrays(x, y)
    shape = xb.shape
    xf = np.ascontiguousarray(xb).reshape(-1)  # copies only to broadcast
    yf = np.ascontiguousarray(yb).reshape(-1)
    res = np.empty(xf.shape[0], x.dtype)
    _, kern = resolve_backend(None)
    kern.elementwise(op, xf, yf, res, resolve_threads(None))
    return res.reshape(shape)


def _entr_values(x):
    dt = x.dtype
    v = _ew_values(EW_XLOGY, x, x)
    with np.errstate(invalid="ignore"):
        # SciPy: +0 at 0 (-xlogy(0, 0) would be -0)
        r = np.where(x < 0, dt.type(-np.inf), np.where(x == 0, dt.type(0), -v))
        return np.where(np.isnan(x), dt.type(np.nan), r)  # SciPy's NaN, not its negation


@fill
def expit(x, out=None, *, where=True, casting="same_kind", order="K", dtype=None,
          subok=True, signature=None):
    r"""``scipy.special.expit``: the logistic sigmoid ``1 / (1 + exp(-x))``.

    Parameters
    ----------
    x : array_like
        Input.
    %(scipy_out)s

    Returns
    -------
    ndarray or scalar
        SciPy's result dtype.

    Raises
    ------
    %(scipy_ufunc_raises)s

    See Also
    --------
    log_expit

    Notes
    -----
    Computed in float64 and rounded once to the result dtype (NumPy's ufunc promotion). ``exp`` overflow gives exactly 0, as in SciPy.

    Examples
    --------
    >>> import numpy as np
    >>> import fastloss.scipy as special
    >>> special.expit(np.array([0.0, -1000.0]))
    array([0.5, 0. ])
    """
    return _ufunc("expit", _expit_values, (x,), out, where, casting, order, dtype,
                  subok, signature)


@fill
def log_expit(x, out=None, *, where=True, casting="same_kind", order="K", dtype=None,
              subok=True, signature=None):
    r"""``scipy.special.log_expit``: ``log(expit(x))`` without underflow.

    Parameters
    ----------
    x : array_like
        Input.
    %(scipy_out)s

    Returns
    -------
    ndarray or scalar
        SciPy's result dtype.

    Raises
    ------
    %(scipy_ufunc_raises)s

    See Also
    --------
    expit

    Notes
    -----
    ``-log1p(exp(-x))``, or ``x - log1p(exp(x))`` for ``x < 0``. Computed in float64 and rounded once to the result dtype (NumPy's ufunc promotion).

    Examples
    --------
    >>> import numpy as np
    >>> import fastloss.scipy as special
    >>> special.log_expit(np.array([-1000.0]))
    array([-1000.])
    """
    return _ufunc("log_expit", _log_expit_values, (x,), out, where, casting, order, dtype,
                  subok, signature)


def _xlogy_complex(x, y):
    """SciPy's complex ``xlogy`` (its 'DD->D' loop): 0 where ``x == 0`` and ``y`` is not
    NaN, else ``x * log(y)``; NumPy's complex log, not a fastloss kernel."""
    x = x.astype(np.complex128)
    y = y.astype(np.complex128)
    with np.errstate(all="ignore"):
        r = x * np.log(y)
    return np.where((x == 0) & ~np.isnan(y), 0j, r)


@fill
def xlogy(x, y, out=None, *, where=True, casting="same_kind", order="K",
          dtype=None, subok=True, signature=None):
    r"""``scipy.special.xlogy``: ``x * log(y)``, 0 where ``x == 0`` (unless ``y`` is NaN).

    Parameters
    ----------
    x, y : array_like
        Inputs, broadcast together.
    %(scipy_out)s

    Returns
    -------
    ndarray or scalar
        SciPy's result dtype.

    Raises
    ------
    %(scipy_ufunc_raises)s

    See Also
    --------
    rel_entr, kl_div

    Notes
    -----
    By the backends' element-wise kernel. Computed in float64 and rounded once to the result dtype (NumPy's ufunc promotion).

    Examples
    --------
    >>> import numpy as np
    >>> import fastloss.scipy as special
    >>> special.xlogy(np.array([0.0, 2.0]), np.array([0.0, np.e]))
    array([0., 2.])
    """
    return _ufunc("xlogy", functools.partial(_ew_values, EW_XLOGY), (x, y), out, where, casting,
                  order, dtype, subok, signature)


@fill
def entr(x, out=None, *, where=True, casting="same_kind", order="K", dtype=None,
         subok=True, signature=None):
    r"""``scipy.special.entr``: element-wise ``-x * log(x)``, 0 at 0, ``-inf`` for ``x < 0``.

    Parameters
    ----------
    x : array_like
        Input.
    %(scipy_out)s

    Returns
    -------
    ndarray or scalar
        SciPy's result dtype (float32 for float16/float32 and small integers, as its
        ``'f->f'`` loop comes first).

    Raises
    ------
    %(scipy_ufunc_raises)s

    See Also
    --------
    xlogy, rel_entr

    Notes
    -----
    ``-xlogy(x, x)`` by the backends' element-wise kernel.

    Examples
    --------
    >>> import numpy as np
    >>> import fastloss.scipy as special
    >>> special.entr(np.array([0.0, 1.0, -1.0]))
    array([ 0., -0., -inf])
    """
    return _ufunc("entr", _entr_values, (x,), out, where, casting, order, dtype,
                  subok, signature)


@fill
def rel_entr(x, y, out=None, *, where=True, casting="same_kind", order="K",
             dtype=None, subok=True, signature=None):
    r"""``scipy.special.rel_entr``: element-wise ``x * log(x / y)``; summed, the KL divergence.

    Parameters
    ----------
    x, y : array_like
        Inputs, broadcast together.
    %(scipy_out)s

    Returns
    -------
    ndarray or scalar
        SciPy's result dtype (``inf`` where SciPy gives it).

    Raises
    ------
    %(scipy_ufunc_raises)s

    See Also
    --------
    kl_div, fastloss.kl_divergence

    Notes
    -----
    By the backends' element-wise kernel. Computed in float64 and rounded once to the result dtype (NumPy's ufunc promotion).

    Examples
    --------
    >>> import numpy as np
    >>> import fastloss.scipy as special
    >>> special.rel_entr(np.array([0.5, 0.0]), np.array([0.25, 0.5]))
    array([0.34657359, 0.        ])
    """
    return _ufunc("rel_entr", functools.partial(_ew_values, EW_REL_ENTR), (x, y), out, where, casting,
                  order, dtype, subok, signature)


@fill
def kl_div(x, y, out=None, *, where=True, casting="same_kind", order="K",
           dtype=None, subok=True, signature=None):
    r"""``scipy.special.kl_div``: element-wise ``x * log(x / y) - x + y`` (``y`` where ``x == 0``).

    Parameters
    ----------
    x, y : array_like
        Inputs, broadcast together.
    %(scipy_out)s

    Returns
    -------
    ndarray or scalar
        SciPy's result dtype.

    Raises
    ------
    %(scipy_ufunc_raises)s

    See Also
    --------
    rel_entr

    Notes
    -----
    By the backends' element-wise kernel. Computed in float64 and rounded once to the result dtype (NumPy's ufunc promotion).

    Examples
    --------
    >>> import numpy as np
    >>> import fastloss.scipy as special
    >>> special.kl_div(np.array([0.0]), np.array([0.5]))
    array([0.5])
    """
    return _ufunc("kl_div", functools.partial(_ew_values, EW_KL_DIV), (x, y), out, where, casting,
                  order, dtype, subok, signature)


