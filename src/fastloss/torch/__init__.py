"""Drop-in for ``torch.nn.functional`` losses (and their ``nn`` classes) on NumPy arrays.

``import fastloss.torch as F`` in place of ``import torch.nn.functional as F``: the
functions take the same arguments in the same order with the same defaults and
give PyTorch's numbers, computed by fastloss's kernels. NumPy arrays in, NumPy out
(a reduction returns a NumPy scalar of the input's dtype). If given torch tensors
they return a tensor; torch is imported only then, never by ``import fastloss``
(this module reaches the real torch through ``sys.modules``/absolute imports, not
itself).

Autograd: when grad mode is on and an argument requires grad, the call goes through
a ``torch.autograd.Function`` (``fastloss/torch/_autograd.py``) whose input gradient
comes from fastloss's fused loss+gradient kernels; ``cross_entropy`` and
``binary_cross_entropy_with_logits`` with ``"mean"``/``"sum"`` compute loss and gradient
in one pass in the forward. Every loss, every reduction. Gradients with respect to a
target are PyTorch's own formula (its functional differentiated on the detached input);
``nll_loss`` and BCE on probabilities have NumPy gradients (no kernel). A ``weight`` or
``pos_weight`` requiring grad gets its gradient (float64 from the per-sample losses of a
``reduction="none"`` call; the input's still comes from the fused kernel). PyTorch 2.13
differentiates the weight only of ``cross_entropy`` with probability targets and of
``mse_loss``; its ``nll_loss``, ``cross_entropy`` with index targets,
``binary_cross_entropy`` and ``binary_cross_entropy_with_logits`` raise "not
differentiable with respect to argument 'weight'". fastloss.torch gives those the
gradient of PyTorch's formula instead (an extension: no call that works in PyTorch
changes; tested against torch's autograd through the formula written in torch ops).
Other calls take the plain ``_<name>_nograd`` functions, with no autograd overhead.

Functions: ``binary_cross_entropy``, ``binary_cross_entropy_with_logits``,
``cross_entropy``, ``nll_loss``, ``kl_div``, ``mse_loss``, ``logsumexp``,
``log_softmax``, ``softmax``; classes ``BCELoss``, ``BCEWithLogitsLoss``,
``CrossEntropyLoss``, ``NLLLoss``, ``KLDivLoss``, ``MSELoss``.

Semantics mirrored (torch/nn/functional.py, aten/src/ATen/native/Loss*.cpp):

* ``binary_cross_entropy``: ``-(t*max(log x, -100) + (1-t)*max(log1p(-x), -100))``;
  inputs or targets outside [0, 1] (or NaN) raise ``RuntimeError``; ``weight``
  broadcasts against the target; ``"mean"`` divides by the number of elements.
* ``binary_cross_entropy_with_logits``: ``(1-t)*x - (1 + (pw-1)*t) * log_sigmoid(x)``
  with PyTorch's IEEE results at infinite logits (``x = -inf`` gives NaN).
* ``cross_entropy``: class dim 1 (0 for a 1-D input), ``(N, C, d1..dk)`` inputs;
  index targets (int64 or uint8) with ``ignore_index`` and the weighted mean
  ``sum(w_y * l) / sum(w_y)`` over non-ignored targets (NaN if none); probability
  targets (same shape as the input) with the mean over ``N*d1*..*dk``.
  ``label_smoothing`` with ``weight`` is PyTorch's: per sample
  ``(1-ls) * w_y * nll_y + ls/C * sum_c w_c * nll_c`` divided by ``sum(w_y)``
  (fastloss's public sparse CE instead weighs the whole sample by ``w_y``).
* ``nll_loss`` (log-probabilities in), ``kl_div`` (``xlogy(t, t) - t*input``, or
  ``exp(t)*(t - input)`` with ``log_target``; ``"mean"`` warns and divides by the
  number of elements, ``"batchmean"`` by ``input.shape[0]``), ``mse_loss`` (with
  ``weight``: ``sum(w*d**2) / sum(w)``), legacy ``size_average``/``reduce``.
* IEEE edge cases as PyTorch: a zero weight times an infinite or NaN loss is NaN;
  a ``-inf`` logit with a zero probability target makes the row NaN
  (``0 * -inf``); a row holding ``+inf`` gives NaN.

Documented deviations (tested in tests/dropins/test_torch.py):

1. **Exact per-sample values, float64 sums.** Each per-sample loss is computed in
   float64 (log-sum-exp with ``log1p``) and rounded once; reductions add those
   values in float64 and round once. PyTorch computes ``log_softmax`` and sums in
   float32 (cascade sums whose result depends on the thread count), so float32
   results differ by PyTorch's rounding: a few eps32 relative to
   ``|logsumexp| + |x_y|`` per sample (``|x|`` for BCE with logits, where PyTorch's
   ``x - log_sigmoid(x)`` cancels: for t=0, x=-20 PyTorch gives 0, fastloss the
   exact 2.06e-9), and the float32 summation error for reductions.
2. Inputs with non-finite values take a slower NumPy path that reproduces
   PyTorch's NaN/inf propagation; finite inputs take the kernels.
3. float16/bfloat16 tensors: ``cross_entropy``, ``nll_loss``,
   ``binary_cross_entropy_with_logits``, ``mse_loss`` and ``log_softmax`` follow
   PyTorch's half-precision steps (``fastloss/torch/_half_steps.py``: every
   intermediate tensor rounded to half as PyTorch's CPU ops do, float32 arithmetic
   inside; bit for bit PyTorch's result except where a float32 exp/log ulp crosses a
   half rounding boundary), when the input and every floating operand have the same
   half dtype. The other functions compute in float32 and round once (PyTorch's
   kernels for them do the same). CPU half tensors are read through zero-copy NumPy
   views, widened chunk by chunk (no float32 copy of the input); the input gradient
   comes back in float32 from the kernels and is cast to the input's dtype. The steps
   run as NumPy on float32 chunks on fastloss's threads: ``cross_entropy`` without
   smoothing on a 1e5 x 1000 bfloat16 tensor takes PyTorch's time
   (``benchmarks/bench_half.py --dropin``), while ``log_softmax``, label smoothing,
   BCE with logits and ``mse_loss`` on large half tensors are 3-5x slower than
   PyTorch's half kernels (every rounding is a NumPy pass).
   Mixed dtypes: ``mse_loss`` and ``kl_div`` of a half and a float32/float64 tensor
   compute in and return the promoted dtype, ``binary_cross_entropy`` raises, as
   PyTorch; ``binary_cross_entropy_with_logits`` follows PyTorch's steps for any mix of
   one half dtype and float32 (rounding where an op's result is half; the result has
   the target's dtype), and so does ``cross_entropy`` with probability targets for a
   half input with half or float32 targets and weights (a product is half only if both
   factors are, so is the result). NumPy float16 and ``ml_dtypes`` bfloat16 arrays give
   float32 results (NumPy in, the computing dtype out). Index targets must be int64 or
   uint8 as in PyTorch (``RuntimeError`` otherwise). Error messages follow PyTorch's; the
   exception types are PyTorch's (``RuntimeError``, ``ValueError``, ``IndexError``).
4. ``logsumexp``/``softmax``/``log_softmax`` are fastloss's (float64 inside,
   correctly rounded), PyTorch's are float32 (half ``log_softmax``: deviation 3).

PyTorch quirks copied for half tensors (PyTorch's numbers are the drop-in's promise;
pass float32 tensors for fastloss's accurate values): ``nll_loss`` (and so
``cross_entropy``) adds its "sum"/"mean" into half-precision partial sums, so the
error grows with the batch (bfloat16 has 8 significant bits), and without weights
divides by the count of targets rounded to half (bfloat16: 100000 becomes 99840);
the last-dim ``log_softmax`` rounds ``log(sum(exp))`` to half before subtracting it;
``tensor + number`` rounds the number to half first (``tensor * number`` does not).
The half partial sums and the half log-sum are needed by PyTorch's own samples (without
them 5 nll_loss, 6 log_softmax and 4 CrossEntropyLoss half samples fail; checked); the
rounded count and number keep the results bit for bit (tests/dropins/
test_torch_half_steps.py).

PyTorch's own samples (``tests/dropins/test_torch_upstream.py``: the OpInfo reference
inputs of the functions above, float32/float64/float16/bfloat16, their gradients in
float32/float64, and the ModuleInfo inputs and error inputs of the classes), compared
by ``torch.testing.assert_close`` at its default tolerances, all pass on torch 2.13:
1182 samples (466 of them float16/bfloat16) and 372 gradient samples; no exclusion
class remains.
"""

import os
import sys
import warnings
from types import SimpleNamespace

import numpy as np

import fastloss.losses.log_sum_exp as _lse
from fastloss.losses._docs import fill
from fastloss._dispatch import resolve_backend, resolve_threads
from fastloss._half import compute_dtype, is_half, torch_half_view, widen
from fastloss.losses.functions import fast_sparse as _fast_sparse  # compiled (#16)
from fastloss.kernels import CLIP_NONE, CLIP_TORCH
from fastloss.torch import _half_steps
from fastloss.losses._calls import (
    EMPTY,
    Clip,
    bce_call,
    categorical_ce_call,
    kl_call,
    mse_call,
    onehot_ce_call,
    sparse_ce_call,
)

__all__ = [
    "BCELoss",
    "BCEWithLogitsLoss",
    "CrossEntropyLoss",
    "KLDivLoss",
    "MSELoss",
    "NLLLoss",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "kl_div",
    "log_softmax",
    "logsumexp",
    "mse_loss",
    "nll_loss",
    "softmax",
]

_TORCH_NAMES = {"float16": "Half", "float32": "Float", "float64": "Double", "int64": "Long",
                "int32": "Int", "int16": "Short", "int8": "Char", "uint8": "Byte", "bool": "Bool"}


# --------------------------------------------------------------------------- tensors in/out


class _IO:
    """Converts torch tensors to NumPy and back; NumPy stays NumPy.

    Half-precision tensors are computed in float32; ``half`` is the *input's* half dtype
    (the first tensor's), the only one the result is cast back to, while ``halves`` keeps
    every named argument's half dtype so that dtype checks see what the caller passed.
    ``view=True`` hands a CPU half tensor over as a zero-copy float16/bfloat16 NumPy view
    (the kernels widen it block by block to the same float32 values); otherwise it is
    copied to float32.
    """

    def __init__(self):
        self.like = None  # the first tensor argument
        self.half = None  # its half-precision dtype, if any
        self.halves = {}  # argument name -> "Half" / "BFloat16"

    def __call__(self, x, name=None, view=False):
        if x is None:
            return None
        torch = sys.modules.get("torch")  # a tensor implies torch is already imported
        if torch is not None and isinstance(x, torch.Tensor):
            x = x.detach()
            first = self.like is None
            if first:
                self.like = x
            if x.dtype in (torch.float16, torch.bfloat16):
                if first:
                    self.half = x.dtype
                if name is not None:
                    self.halves[name] = "Half" if x.dtype == torch.float16 else "BFloat16"
                if view and x.device.type == "cpu":
                    try:
                        return torch_half_view(x)
                    except ImportError:  # bfloat16 without ml_dtypes: the float32 copy
                        pass
                x = x.float()
            return x.cpu().numpy()
        return np.asarray(x)

    def tname(self, arr, name):
        """PyTorch's name of the dtype the caller passed as argument ``name``."""
        return self.halves.get(name) or _tname(arr.dtype)

    def out(self, res, dt=None, *, cast=None):
        """The result as the caller's container; ``cast``: the dtype asked for by ``dtype=``
        (otherwise a half-precision input's dtype)."""
        res = np.asarray(res)
        if is_half(res.dtype):  # an empty or pass-through half view: as float32, like today
            res = res.astype(np.float32)
        if self.like is None:
            if cast is not None:
                res = res.astype(_np_dtype(cast) or np.float32)
            return res[()] if res.ndim == 0 else res
        import torch  # absolute import: the real torch, not this module

        want = None
        if cast is not None:
            want = cast if isinstance(cast, torch.dtype) else getattr(torch, str(np.dtype(cast)))
        elif self.half is not None and res.dtype.kind == "f":
            want = self.half
        if want is not None and res.flags.c_contiguous:
            t = torch.from_numpy(res).to(want)  # a new tensor unless res is already `want`
            if t.data_ptr() != res.ctypes.data:
                return t.to(self.like.device)  # (a half result of a float32 one: no 2nd copy)
        t = torch.from_numpy(np.array(res, order="C", copy=True))  # keeps 0-d as 0-d
        if want is not None:
            t = t.to(want)
        return t.to(self.like.device)


_HERE = os.path.dirname(os.path.abspath(__file__))


def _warn(message):
    """A UserWarning at the user's line: the first frame outside fastloss.torch (and outside
    torch.autograd, which runs the autograd path's forward), however deep the call."""
    torch = sys.modules.get("torch")
    skip = (_HERE,) + ((os.path.dirname(torch.autograd.__file__),) if torch else ())
    frame, level = sys._getframe(1), 2
    while frame is not None and frame.f_code.co_filename.startswith(skip):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, UserWarning, stacklevel=level)


def _grad_wanted(*args):
    """True if autograd must see the call: grad mode on and a tensor argument requiring grad."""
    torch = sys.modules.get("torch")
    if torch is None or not torch.is_grad_enabled():
        return False
    return any(isinstance(a, torch.Tensor) and a.requires_grad for a in args)


def _grad_path():
    import importlib

    return importlib.import_module("fastloss.torch._autograd")  # imports torch: only on demand


def _tname(dt):
    return _TORCH_NAMES.get(np.dtype(dt).name, np.dtype(dt).name)


def _size(shape):
    return f"torch.Size({list(shape)})"


def _float_input(x, fn, keep_half=False):
    """``x`` checked to be floating point; half precision as it is (``keep_half``: the
    callers whose kernels widen it) or as a float32 copy."""
    if is_half(x.dtype):
        return x if keep_half else x.astype(np.float32)
    if x.dtype.kind != "f":
        raise RuntimeError(f'"{fn}" not implemented for \'{_tname(x.dtype)}\'')
    return x


def _is_float(dt):
    return dt.kind == "f" or is_half(dt)


def _promote(a, b):
    """PyTorch's type promotion of two float operands (an integer one follows the float),
    on the computing dtypes (half counts as float32)."""
    kinds = (_is_float(a.dtype), _is_float(b.dtype))
    ca, cb = compute_dtype(a.dtype), compute_dtype(b.dtype)
    if all(kinds):
        dt = np.result_type(ca, cb)
    else:
        dt = ca if kinds[0] else (cb if kinds[1] else np.dtype(np.float32))
    return _as_compute(a, dt), _as_compute(b, dt)


def _as_compute(a, dt):
    # a half operand of a float32 computation stays half: the kernels widen it exactly,
    # and a float32 copy is what the zero-copy view is there to avoid
    if is_half(a.dtype) and dt == np.float32:
        return a
    return a.astype(dt, copy=False)


def _reduction(size_average, reduce, reduction):
    if size_average is not None or reduce is not None:
        size_average = True if size_average is None else size_average
        reduce = True if reduce is None else reduce
        reduction = "mean" if size_average and reduce else ("sum" if reduce else "none")
        _warn("size_average and reduce args will be deprecated, please use "
              f"reduction='{reduction}' instead.")
        return reduction
    if reduction == "elementwise_mean":
        _warn("reduction='elementwise_mean' is deprecated. Please use reduction='mean' "
              "instead.")
        return "mean"
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{reduction} is not a valid value for reduction")
    return reduction


def _all_finite(*arrays):
    """True if every element is finite: one sum per array (an overflow says False)."""
    # half precision sums in float64 (NumPy casts in small buffers): a float16 sum of finite
    # values overflows at 65504
    with np.errstate(over="ignore", invalid="ignore"):
        return all(a.size == 0 or np.isfinite(np.add.reduce(
            a, axis=None, dtype=np.float64 if is_half(a.dtype) else None)) for a in arrays)


def _backend():
    _, kern = resolve_backend(None)
    return kern, resolve_threads(None)


def _scalar(value, dt):
    return np.asarray(value, dtype=np.float64).astype(dt)


def _torch_half(io, **args):
    """``"float16"``/``"bfloat16"`` when the input and every other floating argument given
    are torch tensors of that half dtype: PyTorch's op chain then rounds every intermediate
    to it, and ``_half_steps`` repeats that chain (None otherwise: mixed dtypes promote)."""
    kind = io.halves.get("input")
    if kind is None or any(a is not None and io.halves.get(k) != kind for k, a in args.items()):
        return None
    return "float16" if kind == "Half" else "bfloat16"


def _promoted_out(io, other):
    """A half input whose other floating operand is float32/float64 gives PyTorch's promoted
    dtype (the computing dtype), not the input's half dtype."""
    if io.half is not None and other is not None and other.dtype.kind == "f" and not is_half(
            other.dtype) and "target" not in io.halves:
        io.half = None


def _torch_halves(io, given):
    """``(half, names)``: the one half dtype among the given torch tensors and the names of
    the arguments that have it, when every other floating argument is float32 (PyTorch's
    ops then round exactly where their result is half); ``(None, ())`` otherwise."""
    kinds = {io.halves.get(k) for k, a in given.items() if a is not None} - {None}
    if len(kinds) != 1:
        return None, ()
    names = tuple(k for k, a in given.items() if a is not None and io.halves.get(k))
    others = [a for k, a in given.items() if a is not None and k not in names]
    if any(np.asarray(a).dtype != np.float32 for a in others):
        return None, ()
    return ("float16" if kinds == {"Half"} else "bfloat16"), names


def _widened(a):
    """A half view (or its float32 copy) as float32 values, exactly."""
    if a is None or a.dtype == np.float32:
        return a
    out = np.empty(a.shape, np.float32)
    return widen(a, out) if a.size else out


# --------------------------------------------------------------------------- BCE


def _bce_kernel(x, z, from_logits, clip_mode, sw, sw_div, pw, reduction):
    """Flat element-wise BCE by the kernel: per-element values or ``(sum, wsum)``."""
    kern, nt = _backend()
    xf = np.ascontiguousarray(x).reshape(-1)
    # half targets stay half (widened by the kernels), others take the computing dtype
    zf = np.ascontiguousarray(z, dtype=z.dtype if is_half(z.dtype) else compute_dtype(x.dtype))
    zf = zf.reshape(-1)
    call = bce_call(xf, zf, kern=kern, n_threads=nt, from_logits=from_logits, sample_weight=sw,
                    weight_div=sw_div, pos_weight=pw, clip=Clip(clip_mode, 0.0))
    return call.per_sample() if reduction == "none" else call.sums()


def _weights_for(weight, shape, dt):
    """``weight`` broadcast to ``shape`` as ``(flat float64 array, sw_div)`` for the kernel.

    A weight that varies only along leading axes is passed per leading index
    (``sw_div`` > 1) instead of being expanded.
    """
    w = np.asarray(weight).astype(dt).astype(np.float64)
    if w.ndim > len(shape):
        raise RuntimeError(f"The size of weight {tuple(w.shape)} must match the target "
                           f"{tuple(shape)} (weight cannot broadcast to a larger shape)")
    w = w.reshape((1,) * (len(shape) - w.ndim) + w.shape)
    try:
        np.broadcast_shapes(w.shape, shape)
    except ValueError:
        raise RuntimeError(f"The size of tensor a {tuple(shape)} must match the size of "
                           f"weight {tuple(w.shape)}") from None
    if np.broadcast_shapes(w.shape, shape) != tuple(shape):
        raise RuntimeError(f"weight {tuple(w.shape)} does not broadcast to {tuple(shape)}")
    k = len(shape)
    while k > 0 and w.shape[k - 1] == 1:
        k -= 1
    lead = np.broadcast_to(w, tuple(shape[:k]) + w.shape[k:]).reshape(-1)
    return np.ascontiguousarray(lead), int(np.prod(shape[k:], dtype=np.int64))


def _finish_elementwise(res, reduction, n, dt, shape):
    if reduction == "none":
        return res.reshape(shape)
    total, _ = res
    if reduction == "sum":
        return _scalar(total, dt)
    with np.errstate(invalid="ignore", divide="ignore"):
        return _scalar(np.float64(total) / n, dt)


@fill
def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None,
                         reduction="mean"):
    r"""``torch.nn.functional.binary_cross_entropy``: BCE on probabilities.

    ``-(t * max(log x, -100) + (1 - t) * max(log1p(-x), -100))`` times ``weight``; inputs or
    targets outside [0, 1] raise ``RuntimeError`` as in PyTorch.

    Parameters
    ----------
    input : array_like or torch.Tensor
        Probabilities.
    target : array_like or torch.Tensor
        Targets in [0, 1], ``input``'s shape.
    weight : array_like, optional
        Broadcast against ``target``.
    %(torch_legacy_reduction)s

    %(torch_returns_raises)s

    See Also
    --------
    fastloss.binary_cross_entropy : the same loss with fastloss's options (clip='torch').

    %(notes_dropin)s

    Examples
    --------
    >>> import numpy as np
    >>> import fastloss.torch as F
    >>> F.binary_cross_entropy(np.array([0.8, 0.3]), np.array([1.0, 0.0]), reduction="none")
    array([0.22314355, 0.35667494])
    """
    if _grad_wanted(input, target, weight):
        return _grad_path().binary_cross_entropy(input, target, weight, size_average, reduce, reduction)
    return _binary_cross_entropy_nograd(input, target, weight, size_average, reduce, reduction)


def _binary_cross_entropy_nograd(input, target, weight, size_average, reduce, reduction):
    """``binary_cross_entropy`` of inputs that need no gradient."""
    io = _IO()
    x, t, w = io(input, "input", view=True), io(target, "target", view=True), io(weight)
    reduction = _reduction(size_average, reduce, reduction)
    if t.shape != x.shape:
        raise ValueError(f"Using a target size ({_size(t.shape)}) that is different to the input "
                         f"size ({_size(x.shape)}) is deprecated. Please ensure they have the "
                         "same size.")
    x = _float_input(x, "binary_cross_entropy", keep_half=io.half is not None)
    dt = compute_dtype(x.dtype)
    want, got = io.tname(x, "input"), io.tname(t, "target")  # the dtypes as passed
    if want != got:
        raise RuntimeError(f"Found dtype {got} but expected {want}")
    for arr, name in ((x, "input"), (t, "target")):
        # min/max propagate NaN, which PyTorch's 0 <= x <= 1 check rejects too
        if arr.size and not (arr.min() >= 0 and arr.max() <= 1):
            raise RuntimeError(f"all elements of {name} should be between 0 and 1")
    sw, sw_div = (EMPTY, 1) if w is None else _weights_for(w, x.shape, dt)
    # clamped logs are finite: the kernel's zero-weight rule equals PyTorch's 0 * loss
    res = _bce_kernel(x, t, False, CLIP_TORCH, sw, sw_div, EMPTY, reduction)
    return io.out(_finish_elementwise(res, reduction, x.size, dt, x.shape))


def _pos_weight_for(pos_weight, shape, dt):
    """``pos_weight`` as the kernel's per-position array ``pw[i % K]`` over trailing axes."""
    pw = np.asarray(pos_weight).astype(dt).astype(np.float64)
    if pw.ndim == 0:
        pw = pw.reshape(1)
    if pw.ndim > len(shape):
        raise RuntimeError(f"pos_weight {tuple(pw.shape)} does not broadcast to {tuple(shape)}")
    tail = tuple(shape[len(shape) - pw.ndim:])
    try:
        full = np.broadcast_to(pw, tail)
    except ValueError:
        raise RuntimeError(f"The size of pos_weight {tuple(pw.shape)} must match the size of "
                           f"the target {tuple(shape)} in its trailing dimensions") from None
    return np.ascontiguousarray(full).reshape(-1)
@fill
def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None,
                                     reduction="mean", pos_weight=None):
    r"""``torch.nn.functional.binary_cross_entropy_with_logits``: stable BCE on logits.

    ``(1 - t) * x - (1 + (pw - 1) * t) * log_sigmoid(x)`` times ``weight``, with PyTorch's IEEE
    results at infinite logits.

    Parameters
    ----------
    input : array_like or torch.Tensor
        Logits.
    target : array_like or torch.Tensor
        Targets, ``input``'s shape.
    weight : array_like, optional
        Broadcast against ``target``.
    %(torch_legacy_reduction)s
    pos_weight : array_like, optional
        Weight of the positive term, broadcast over the trailing dimensions.

    %(torch_returns_raises)s

    See Also
    --------
    fastloss.binary_cross_entropy : with ``from_logits=True``.

    %(notes_dropin)s

    Examples
    --------
    >>> import numpy as np
    >>> import fastloss.torch as F
    >>> float(F.binary_cross_entropy_with_logits(np.array([0.0, 0.0]), np.array([1.0, 0.0])))
    0.6931471805599453
    """
    if _grad_wanted(input, target, weight, pos_weight):
        return _grad_path().binary_cross_entropy_with_logits(input, target, weight, size_average,
                                                            reduce, reduction, pos_weight)
    return _bce_with_logits_nograd(input, target, weight, size_average, reduce, reduction,
                                   pos_weight)


def _bce_with_logits_nograd(input, target, weight, size_average, reduce, reduction, pos_weight):
    """``binary_cross_entropy_with_logits`` of inputs that need no gradient."""
    io, x, t, w, pwa, reduction = _bcel_parse(input, target, weight, size_average, reduce,
                                              reduction, pos_weight)
    pw = None if pos_weight is None else _IO()(pos_weight)
    given = {"input": x, "target": t, "weight": w, "pos_weight": pw}
    half, halves = _torch_halves(io, given)
    if half:
        res = _half_steps.bce_with_logits(x, t, w, pw, reduction, half, halves)
        if "target" not in halves:  # PyTorch's result has the target's dtype
            io.half = None
            return io.out(res)
        return io.out(res, cast=getattr(sys.modules["torch"], half))
    dt = compute_dtype(x.dtype)
    finite = _all_finite(x) and (w is None or _all_finite(w))
    if finite:
        sw, sw_div = (EMPTY, 1) if w is None else _weights_for(w, x.shape, dt)
        res = _bce_kernel(x, t, True, CLIP_NONE, sw, sw_div, pwa, reduction)
        return io.out(_finish_elementwise(res, reduction, x.size, dt, x.shape))
    # non-finite logits or weights: PyTorch's IEEE results element by element
    v = _bce_kernel(x, t, True, CLIP_NONE, EMPTY, 1, pwa, "none").astype(np.float64)
    xf = x.reshape(-1)
    v = np.where(np.isneginf(xf), np.nan, v)  # (1-t)*(-inf) - lw*(-inf)
    # x = +inf, t = 1: PyTorch's (1 - t) * x is 0 * inf = NaN (fastloss's kernel gives the
    # true loss 0 there)
    v = np.where(np.isposinf(xf) & (np.asarray(t, dt).reshape(-1) == 1), np.nan, v)
    v = v.reshape(x.shape)
    if w is not None:
        v = v * np.asarray(w).astype(dt).astype(np.float64)
    return io.out(_reduce_values(v, reduction, dt))


def _bcel_parse(input, target, weight, size_average, reduce, reduction, pos_weight):
    """``binary_cross_entropy_with_logits``'s arguments checked, and its kernel inputs."""
    io = _IO()
    x, t = io(input, "input", view=True), io(target, "target", view=True)
    w, pw = io(weight, "weight"), io(pos_weight, "pos_weight")
    reduction = _reduction(size_average, reduce, reduction)
    if t.shape != x.shape:
        raise ValueError(f"Target size ({_size(t.shape)}) must be the same as input size "
                         f"({_size(x.shape)})")
    x = _float_input(x, "binary_cross_entropy_with_logits", keep_half=io.half is not None)
    x, t = _promote(x, t)
    dt = compute_dtype(x.dtype)
    pwa = EMPTY if pw is None else _pos_weight_for(pw, x.shape, dt)
    if x.size and pwa.size == 0 and pw is not None:
        pwa = EMPTY
    return io, x, t, w, pwa, reduction


def _reduce_values(v, reduction, dt, n=None):
    """float64 per-element values -> PyTorch's reduction, rounded once."""
    if reduction == "none":
        return v.astype(dt)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        s = np.sum(v, dtype=np.float64)
        if reduction == "sum":
            return _scalar(s, dt)
        return _scalar(s / (v.size if n is None else n), dt)


# --------------------------------------------------------------------------- cross-entropy


def _class_rows(x, cdim):
    """``x`` with the class dim moved last, as contiguous 2-D rows, and the batch shape."""
    m = np.moveaxis(x, cdim, -1)
    n = int(np.prod(m.shape[:-1], dtype=np.int64))  # not -1: ambiguous when C == 0
    return np.ascontiguousarray(m).reshape(n, m.shape[-1]), m.shape[:-1]


def _check_labels(t, ignore_index, C, batch):
    return _check_labels_range(t, ignore_index, C, batch)[0]


def _check_labels_range(t, ignore_index, C, batch):
    """The labels as flat int64, checked, with their min and max (None when empty)."""
    if t.dtype not in (np.int64, np.uint8):
        raise RuntimeError(f"expected target dtype to be Long or Byte, but got {_tname(t.dtype)}")
    if t.shape != tuple(batch):
        if len(batch) >= 1 and t.ndim >= 1 and t.shape[0] != batch[0]:
            raise ValueError(f"Expected input batch_size ({batch[0]}) to match target "
                             f"batch_size ({t.shape[0]}).")
        raise RuntimeError(f"Expected target size {list(batch)}, got {list(t.shape)}")
    y = np.ascontiguousarray(t, dtype=np.int64).reshape(-1)
    lo = hi = None
    if y.size:
        lo, hi = int(y.min()), int(y.max())
        if lo < 0 or hi >= C:  # two fast passes; the mask only when something is outside
            bad = ((y < 0) | (y >= C)) & (y != ignore_index)
            if bad.any():
                raise IndexError(f"Target {int(y[np.argmax(bad)])} is out of bounds.")
    return y, lo, hi


def _check_weight(w, C, dt, names=None):
    """``weight`` as float64; ``names`` = PyTorch's dtype names of (input, weight) as passed,
    which must be equal (a half weight with a float input raises, as in PyTorch)."""
    if w is None:
        return None
    w = np.asarray(w)
    if w.ndim != 1 or w.shape[0] != C:
        raise RuntimeError(f"weight tensor should be defined either for all {C} classes or no "
                           f"classes but got weight tensor of shape: {list(w.shape)}")
    want, got = names if names is not None else (_tname(dt), _tname(w.dtype))
    if want != got:
        raise RuntimeError(f"expected scalar type {want} but found {got}")
    return np.ascontiguousarray(w, dtype=np.float64)


def _sparse_kernel(x2, y, cw, ignore_index, ls, reduction):
    kern, nt = _backend()
    call = sparse_ce_call(x2, y, kern=kern, n_threads=nt, from_logits=True,
                          class_weight=EMPTY if cw is None else cw,
                          ignore_index=int(ignore_index), label_smoothing=float(ls))
    return call.per_sample() if reduction == "none" else call.sums()


def _onehot_kernel(x2, y, cw, ignore_index, ls, reduction):
    """PyTorch's weighted label smoothing, ``sum_c w_c * t'_c * nll_c`` with one-hot ``t``
    (built chunk by chunk by the builder; ignored rows weigh 0)."""
    kern, nt = _backend()
    call = onehot_ce_call(x2, y, kern=kern, n_threads=nt, ignore_index=ignore_index,
                          class_weight=cw, label_smoothing=ls)
    return call.per_sample() if reduction == "none" else call.sums()


def _torch_log_softmax(x, axis):
    """``log_softmax`` with PyTorch's non-finite rows: a row holding +inf or NaN is all NaN.

    (``x - max`` is NaN at the +inf entry and ``log(sum(exp(.)))`` then NaN for
    the whole row; fastloss/SciPy give NaN there and -inf elsewhere.)
    """
    lp = np.asarray(_lse.log_softmax(x, axis=axis))
    if x.size and not _all_finite(x):
        with np.errstate(invalid="ignore"):
            bad = np.any(np.isnan(x) | (x == np.inf), axis=axis, keepdims=True)
        lp = np.where(bad, np.array(np.nan, dtype=lp.dtype), lp)
    return lp


def _ce_index_slow(x2, y, cw, ignore_index, ls):
    """float64 PyTorch semantics (IEEE NaN/inf) for inputs with non-finite logits."""
    n, C = x2.shape
    lp = _torch_log_softmax(x2.astype(np.float64), 1)
    valid = y != ignore_index
    ys = np.where(valid, y, 0)
    w = np.ones(C) if cw is None else cw
    with np.errstate(invalid="ignore", over="ignore"):
        nll = -(w[ys] * lp[np.arange(n), ys])
        nll = np.where(valid, nll, 0.0)
        if ls:
            smooth = -(lp * w[None, :]).sum(axis=1)
            smooth = np.where(valid, smooth, 0.0)
            v = (1 - ls) * nll + smooth * (ls / C)
        else:
            v = nll
    wsum = float(np.sum(np.where(valid, w[ys], 0.0)))
    return v, wsum


@fill
def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                  reduction="mean", label_smoothing=0.0):
    r"""``torch.nn.functional.cross_entropy`` on logits: index or probability targets.

    Index targets: ``w_y * (logsumexp(x) - x_y)`` with PyTorch's weighted mean
    ``sum(w_y * l) / sum(w_y)`` over targets other than ``ignore_index``; probability
    targets: ``-sum_c w_c t_c log_softmax(x)_c``, mean over the samples. ``label_smoothing``
    is PyTorch's (see the module docstring).

    Parameters
    ----------
    input : array_like or torch.Tensor
        Logits, ``(C,)``, ``(N, C)`` or ``(N, C, d1, ..., dk)``.
    target : array_like or torch.Tensor
        Class indices (int64 or uint8) or class probabilities (``input``'s shape).
    weight : array_like, optional
        One weight per class.
    %(torch_legacy)s
    ignore_index : int, default -100
        Index targets with this value are left out.
    %(torch_reduction)s
    label_smoothing : float in [0, 1], default 0.0
        As in PyTorch.

    %(torch_returns_raises)s

    See Also
    --------
    fastloss.sparse_categorical_cross_entropy, fastloss.categorical_cross_entropy

    %(notes_dropin)s

    Examples
    --------
    >>> import numpy as np
    >>> import fastloss.torch as F
    >>> x = np.array([[2.0, 1.0, 0.1], [0.5, 2.5, 0.0]])
    >>> F.cross_entropy(x, np.array([0, 1]), reduction="none")
    array([0.41703002, 0.1967341 ])
    """
    if _grad_wanted(input, target, weight):
        return _grad_path().cross_entropy(input, target, weight, size_average, ignore_index,
                                         reduce, reduction, label_smoothing)
    return _cross_entropy_nograd(input, target, weight, size_average, ignore_index, reduce,
                                 reduction, label_smoothing)


def _cross_entropy_nograd(input, target, weight, size_average, ignore_index, reduce, reduction,
                          label_smoothing):
    """``cross_entropy`` of inputs that need no gradient."""
    if weight is None and size_average is None and reduce is None and not label_smoothing:
        res = _fast_index_ce(input, target, ignore_index, reduction)
        if res is not None:
            return res
    p = _ce_parse(input, target, weight, size_average, ignore_index, reduce, reduction,
                  label_smoothing)
    if p.probs and p.x2.size:
        half, halves = _torch_halves(p.io, {"input": p.x, "target": p.t, "weight": p.w})
        if half and "input" in halves:
            cw = None if p.w is None else _widened(np.asarray(p.w)).reshape(-1)
            res = _half_steps.cross_entropy_probs(
                p.x2, _class_rows(p.t, p.cdim)[0], cw, p.ls, p.reduction, half, p.batch,
                p.x.ndim <= 2, halves)
            if len(halves) < 2 + (p.w is not None):  # a float32 operand: a float32 result
                p.io.half = None
            return p.io.out(res)
    half = _torch_half(p.io, weight=p.w)
    if half and p.x2.size and not p.probs:
        return p.io.out(_ce_half(p, ignore_index, half))
    if p.probs:
        return p.io.out(_ce_probs(p.x, p.t, p.w, p.x2, p.batch, p.cdim, p.C, p.ls, p.reduction))
    return p.io.out(_ce_index(p.x2, p.y, p.cw, ignore_index, p.ls, p.reduction, p.batch))


def _ce_half(p, ignore_index, half):
    """cross_entropy of half tensors with index targets, PyTorch's chain (``_half_steps``);
    ``p.x.ndim <= 2``: the class dim is the input's last (the last-dim log_softmax)."""
    cw = None if p.w is None else _widened(np.asarray(p.w)).reshape(-1)
    return _half_steps.cross_entropy_index(p.x2, p.y, cw, ignore_index, p.ls, p.reduction,
                                           half, p.batch, p.x.ndim <= 2)


def _ce_parse(input, target, weight, size_average, ignore_index, reduce, reduction,
              label_smoothing):
    """``cross_entropy``'s arguments checked as PyTorch does, and its kernel inputs."""
    io = _IO()
    x, t, w = io(input, "input", view=True), io(target, "target"), io(weight, "weight")
    reduction = _reduction(size_average, reduce, reduction)
    names = (io.tname(x, "input"), None if w is None else io.tname(w, "weight"))
    x = _float_input(x, "log_softmax_lastdim_kernel_impl", keep_half=io.half is not None)
    if x.ndim == 0:
        raise IndexError("Dimension out of range (expected to be in range of [-1, 0], but got 1)")
    cdim = 1 if x.ndim >= 2 else 0
    C = x.shape[cdim]
    ls = float(label_smoothing)
    if not 0.0 <= ls <= 1.0:
        raise RuntimeError(f"label_smoothing must be between 0.0 and 1.0. Got: {ls:g}")
    x2, batch = _class_rows(x, cdim)
    p = SimpleNamespace(io=io, x=x, t=t, w=w, x2=x2, batch=batch, cdim=cdim, C=C, ls=ls,
                        reduction=reduction, probs=t.shape == x.shape, y=None, cw=None)
    if p.probs:
        if ignore_index >= 0:  # PyTorch checks ignore_index < 0 for probability targets
            raise RuntimeError("ignore_index is not supported for floating point target")
        return p
    p.y = _check_labels(t, ignore_index, C, batch)
    p.cw = _check_weight(w, C, compute_dtype(x.dtype), names)
    return p


def _fast_index_ce(input, target, ignore_index, reduction):
    """The plain NumPy call by the compiled fast path (issue #16), or None: 1-D int64 (Long)
    targets and a finite result only; everything else, and every error, is the code below."""
    if (type(target) is not np.ndarray or target.ndim != 1 or target.dtype != np.int64
            or type(ignore_index) is not int):
        return None
    res = _fast_sparse(target, input, from_logits=True, axis=1, ignore_index=ignore_index,
                       reduction=reduction)
    if res is None:
        return None
    if reduction == "none":
        return res if np.isfinite(res).all() else None
    return res if res - res == 0 else None  # not finite: PyTorch's IEEE results below


def _ce_index(x2, y, cw, ignore_index, ls, reduction, batch):
    """Cross-entropy against index targets: the kernels, or PyTorch's IEEE results."""
    dt = compute_dtype(x2.dtype)
    valid = y != ignore_index
    # Non-finite logits need PyTorch's IEEE results (slow path). The kernel's result
    # is non-finite whenever the input is, except where a zero class weight removed a
    # row: only then is the input scanned first.
    slow = cw is not None and not cw.all() and not _all_finite(x2)
    if not slow:
        if ls and cw is not None:
            res = _onehot_kernel(x2, y, cw, ignore_index, ls, reduction)
        else:
            res = _sparse_kernel(x2, y, cw, ignore_index, ls, reduction)
        with np.errstate(invalid="ignore", over="ignore"):
            slow = not (np.isfinite(res).all() if reduction == "none" else np.isfinite(res[0]))
    if slow:
        v, wsum = _ce_index_slow(x2, y, cw, ignore_index, ls)
        if reduction == "none":
            return v.astype(dt).reshape(batch)
        return _mean_or_sum(float(np.sum(v)), wsum, reduction, dt)
    if reduction == "none":
        return res.reshape(batch)
    total, _ = res
    if cw is None:
        wsum = float(np.count_nonzero(valid))
    else:
        wsum = float(np.sum(cw[y[valid]]))
    return _mean_or_sum(total, wsum, reduction, dt)


def _mean_or_sum(total, wsum, reduction, dt):
    if reduction == "sum":
        return _scalar(total, dt)
    with np.errstate(invalid="ignore", divide="ignore"):
        return _scalar(np.float64(total) / np.float64(wsum), dt)  # 0/0 is NaN, as PyTorch


def _probs_rows(x2, t, w, cdim, C):
    """Probability targets checked; logits and target rows in the promoted dtype, and the
    class weights as float64 (None without)."""
    if t.dtype.kind != "f":
        raise RuntimeError("Expected floating point type for target with class probabilities, "
                           f"got {_tname(t.dtype)}")
    x2, t = _promote(x2, t)
    if w is not None and np.asarray(w).dtype.kind == "f":  # PyTorch promotes with the weight
        dw = np.result_type(compute_dtype(x2.dtype), np.asarray(w).dtype)
        x2, t = _as_compute(x2, dw), _as_compute(t, dw)
    dt = compute_dtype(x2.dtype)
    cw = None if w is None else _check_weight(np.asarray(w).astype(dt), C, dt)
    return x2, _class_rows(t, cdim)[0], cw


def _ce_probs(x, t, w, x2, batch, cdim, C, ls, reduction):
    x2, t2, cw = _probs_rows(x2, t, w, cdim, C)
    dt = compute_dtype(x2.dtype)
    n_mean = x.size // C if C else 0
    if _all_finite(x2):
        kern, nt = _backend()
        call = categorical_ce_call(x2, t2, kern=kern, n_threads=nt, from_logits=True,
                                   class_weight=EMPTY if cw is None else cw, label_smoothing=ls)
        res = call.per_sample() if reduction == "none" else call.sums()
        if reduction == "none":
            return res.reshape(batch)
        total = res[0]
    else:  # PyTorch: -(log_softmax(x) * t' * w).sum(class dim), 0 * -inf = NaN
        lp = _torch_log_softmax(x2.astype(np.float64), 1)
        tt = t2.astype(np.float64)
        if ls:
            tt = tt * (1 - ls) + ls / C
        with np.errstate(invalid="ignore", over="ignore"):
            e = lp * tt if cw is None else lp * tt * cw[None, :]
            v = -e.sum(axis=1)
        if reduction == "none":
            return v.astype(dt).reshape(batch)
        total = float(np.sum(v))
    if reduction == "sum":
        return _scalar(total, dt)
    if n_mean == 0:
        return _scalar(np.nan, dt)
    return _scalar(np.float64(total) / n_mean, dt)


_ROW_STARTS = {}  # the last (n, C) -> read-only arange(0, n*C, C), if n <= 2**20


def _row_starts(n, C):
    """Flat offsets of the rows of an (n, C) array; the last one is reused by the next call
    (a loop over same-shaped batches skips rebuilding it; at most 8 MB kept)."""
    key = (n, C)
    starts = _ROW_STARTS.get(key)
    if starts is None:
        starts = np.arange(0, n * C, C, dtype=np.int64)
        starts.flags.writeable = False
        if n <= 1 << 20:
            _ROW_STARTS.clear()
            _ROW_STARTS[key] = starts
    return starts


@fill
def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
             reduction="mean"):
    r"""``torch.nn.functional.nll_loss``: ``-w_y * input[y]`` for log-probabilities ``input``.

    The mean is PyTorch's weighted mean ``sum(w_y * l) / sum(w_y)`` over targets other than
    ``ignore_index``.

    Parameters
    ----------
    input : array_like or torch.Tensor
        Log-probabilities, ``(N, C)`` or ``(N, C, d1, ..., dk)``.
    target : array_like or torch.Tensor
        Class indices (int64 or uint8).
    weight : array_like, optional
        One weight per class.
    %(torch_legacy)s
    ignore_index : int, default -100
        Targets with this value are left out.
    %(torch_reduction)s

    %(torch_returns_raises)s

    See Also
    --------
    cross_entropy : the same on logits.

    %(notes_dropin)s

    Examples
    --------
    >>> import numpy as np
    >>> import fastloss.torch as F
    >>> F.nll_loss(np.log(np.array([[0.25, 0.75], [0.5, 0.5]])), np.array([1, 0]), reduction="sum")
    np.float64(0.9808292530117262)
    """
    if _grad_wanted(input, target, weight):
        return _grad_path().nll_loss(input, target, weight, size_average, ignore_index, reduce, reduction)
    return _nll_loss_nograd(input, target, weight, size_average, ignore_index, reduce, reduction)


def _nll_loss_nograd(input, target, weight, size_average, ignore_index, reduce, reduction):
    """``nll_loss`` of inputs that need no gradient."""
    io = _IO()
    x, t, w = io(input, "input", view=True), io(target), io(weight, "weight")
    reduction = _reduction(size_average, reduce, reduction)
    names = (io.tname(x, "input"), None if w is None else io.tname(w, "weight"))
    x = _float_input(x, "nll_loss", keep_half=io.half is not None)
    dt = compute_dtype(x.dtype)
    if x.ndim == 0:
        raise ValueError("Expected 1 or more dimensions (got 0)")
    cdim = 1 if x.ndim >= 2 else 0
    C = x.shape[cdim]
    x2, batch = _class_rows(x, cdim)
    y, lo, hi = _check_labels_range(t, ignore_index, C, batch)
    cw = _check_weight(w, C, dt, names)
    half = _torch_half(io, weight=w)
    if half and x2.size:
        ys = np.where(y != ignore_index, y, 0)
        x_y = _widened(x2.reshape(-1).take(_row_starts(len(y), C) + ys, mode="clip"))
        return io.out(_half_steps.nll_loss(
            x_y, y, None if w is None else _widened(np.asarray(w)), ignore_index, reduction,
            half, batch))
    n = y.shape[0]
    # ignored rows only if ignore_index can be among the labels (no full pass otherwise)
    ignored = bool(n and C and lo <= ignore_index <= hi and np.any(y == ignore_index))
    valid = (y != ignore_index) if ignored else None
    ys = np.where(valid, y, 0) if ignored else y
    if C:
        # every index is in range (labels checked, ignored rows point at class 0): "clip"
        # skips take's per-element bounds check, which costs as much as the gather itself
        picked = x2.reshape(-1).take(_row_starts(n, C) + ys, mode="clip").astype(dt, copy=False)
    else:
        picked = np.zeros(n, dt)
    if ignored:
        picked[~valid] = 0  # ignored rows add nothing (even where the input is NaN)
    wy = None if cw is None else (np.where(valid, cw[ys], 0.0) if ignored else cw[ys])
    with np.errstate(invalid="ignore", over="ignore"):
        if reduction == "none":
            v = np.negative(picked, dtype=np.float64)
            if wy is not None:
                v *= wy
            if ignored:
                v[~valid] = 0.0  # +0, as PyTorch
            return io.out(v.astype(dt).reshape(batch))
        if wy is None:
            total = -float(picked.sum(dtype=np.float64))
            wsum = float(n - (np.count_nonzero(~valid) if ignored else 0))
        else:
            total = -float(np.dot(picked.astype(np.float64), wy))
            wsum = float(np.sum(wy))
    return io.out(_mean_or_sum(total, wsum, reduction, dt))


# --------------------------------------------------------------------------- KL, MSE


def _kl_pointwise(x, t, log_target):
    x64, t64 = x.astype(np.float64), t.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        if log_target:
            return np.exp(t64) * (t64 - x64)
        xlogy = np.where((t64 == 0) & ~np.isnan(t64), 0.0, t64 * np.log(t64))
        return xlogy - t64 * x64


@fill
def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
    r"""``torch.nn.functional.kl_div``: ``t * (log t - input)`` with ``input`` log-probabilities.

    ``log_target=True``: ``exp(t) * (t - input)``. ``"batchmean"`` divides the sum by
    ``input.shape[0]`` (the true KL per sample); ``"mean"`` divides by the number of elements
    and warns, as PyTorch does.

    Parameters
    ----------
    input : array_like or torch.Tensor
        Log-probabilities.
    target : array_like or torch.Tensor
        Probabilities (or their logs with ``log_target=True``).
    %(torch_legacy)s
    reduction : {'mean', 'batchmean', 'sum', 'none'}, default 'mean'
        As in PyTorch.
    log_target : bool, default False
        ``target`` holds log-probabilities.

    %(torch_returns_raises)s

    See Also
    --------
    fastloss.kl_divergence : with ``log_input=True``.

    %(notes_dropin)s

    Examples
    --------
    >>> import numpy as np
    >>> import fastloss.torch as F
    >>> p = np.log(np.array([[0.25, 0.5, 0.25]]))
    >>> float(F.kl_div(p, np.array([[0.5, 0.5, 0.0]]), reduction="batchmean"))
    0.34657359027997264
    """
    if _grad_wanted(input, target):
        return _grad_path().kl_div(input, target, size_average, reduce, reduction, log_target)
    return _kl_div_nograd(input, target, size_average, reduce, reduction, log_target)


def _kl_div_nograd(input, target, size_average, reduce, reduction, log_target):
    """``kl_div`` of inputs that need no gradient."""
    io = _IO()
    x, t = io(input, "input", view=True), io(target, "target", view=True)
    if size_average is not None or reduce is not None:
        red = _reduction(size_average, reduce, "mean")
    else:
        if reduction == "mean":
            _warn("reduction: 'mean' divides the total loss by both the batch size and the "
                  "support size.'batchmean' divides only by the batch size, and aligns "
                  "with the KL div math definition.'mean' will be changed to behave the "
                  "same as 'batchmean' in the next major release.")
        red = "sum" if reduction == "batchmean" else _reduction(None, None, reduction)
    x = _float_input(x, "kl_div", keep_half=io.half is not None)
    if not _is_float(t.dtype):
        raise RuntimeError("kl_div: Integral inputs not supported.")
    _promoted_out(io, t)
    x, t = _promote(x, t)
    dt = compute_dtype(x.dtype)
    if x.shape != t.shape:
        x, t = np.broadcast_arrays(x, t)
    if red == "none":
        return io.out(_kl_pointwise(x, t, log_target).astype(dt))
    if _all_finite(x, t) and x.size:
        kern, nt = _backend()
        x2 = np.ascontiguousarray(x).reshape(-1, x.shape[-1] if x.ndim else 1)
        t2 = np.ascontiguousarray(t).reshape(x2.shape)
        total = kl_call(x2, t2, kern=kern, n_threads=nt, log_input=True,
                        log_target=log_target).sums()[0]
    else:
        with np.errstate(invalid="ignore", over="ignore"):
            total = float(np.sum(_kl_pointwise(x, t, log_target)))
    if red == "sum":
        if reduction == "batchmean" and x.ndim != 0:
            with np.errstate(invalid="ignore", divide="ignore"):
                return io.out(_scalar(np.float64(total) / x.shape[0], dt))
        return io.out(_scalar(total, dt))
    with np.errstate(invalid="ignore", divide="ignore"):
        return io.out(_scalar(np.float64(total) / x.size, dt))
@fill
def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    r"""``torch.nn.functional.mse_loss``: the mean of ``(input - target)**2``.

    With ``weight``: ``sum(w * d**2) / sum(w)`` for ``"mean"``.

    Parameters
    ----------
    input : array_like or torch.Tensor
        Predictions.
    target : array_like or torch.Tensor
        Targets, broadcast against ``input``.
    %(torch_legacy_reduction)s
    weight : array_like, optional
        Element weights, broadcast against ``input``.

    %(torch_returns_raises)s

    See Also
    --------
    fastloss.mean_squared_error

    %(notes_dropin)s

    Examples
    --------
    >>> import numpy as np
    >>> import fastloss.torch as F
    >>> float(F.mse_loss(np.array([1.0, 3.0]), np.array([0.0, 1.0])))
    2.5
    """
    if _grad_wanted(input, target, weight):
        return _grad_path().mse_loss(input, target, size_average, reduce, reduction, weight)
    return _mse_loss_nograd(input, target, size_average, reduce, reduction, weight)


def _mse_loss_nograd(input, target, size_average, reduce, reduction, weight):
    """``mse_loss`` of inputs that need no gradient."""
    io = _IO()
    x, t, w = io(input, "input", view=True), io(target, "target", view=True), io(weight, "weight")
    if t.shape != x.shape:
        _warn(f"Using a target size ({_size(t.shape)}) that is different to the input "
              f"size ({_size(x.shape)}). This will likely lead to incorrect results due "
              "to broadcasting. Please ensure they have the same size.")
    if size_average is not None or reduce is not None:
        reduction = _reduction(size_average, reduce, reduction)
    x = _float_input(x, "mse", keep_half=io.half is not None)
    half = _torch_half(io, target=t, weight=w)
    if half and reduction in ("none", "mean", "sum") and (w is None or w.shape == x.shape):
        return io.out(_half_steps.mse_loss(x, t, w, reduction, half))
    _promoted_out(io, t)
    x, t = _promote(x, t)
    dt = compute_dtype(x.dtype)
    if x.shape != t.shape:
        x, t = np.broadcast_arrays(x, t)
    if w is not None:
        if w.shape != np.shape(input):
            raise ValueError("Weights and input must have the same size.")
        with np.errstate(invalid="ignore", over="ignore"):
            d = x.astype(np.float64) - t.astype(np.float64)
            v = d * d * np.asarray(w).astype(np.float64)
        if reduction == "none":
            return io.out(v.astype(dt))
        if reduction == "sum":
            return io.out(_scalar(np.sum(v), dt))
        if reduction == "mean":
            with np.errstate(invalid="ignore", divide="ignore"):
                return io.out(_scalar(np.sum(v) / np.sum(np.asarray(w, dtype=np.float64)), dt))
        raise ValueError(f"Invalid reduction mode: {reduction}. Expected one of 'none', 'mean', "
                         "'sum'.")
    reduction = _reduction(None, None, reduction)
    kern, nt = _backend()
    x2 = np.ascontiguousarray(x).reshape(-1, 1)  # width-1 rows: one value per element
    t2 = np.ascontiguousarray(t).reshape(-1, 1)
    call = mse_call(x2, t2, kern=kern, n_threads=nt)
    res = call.per_sample() if reduction == "none" else call.sums()
    return io.out(_finish_elementwise(res, reduction, x.size, dt, x.shape))


# --------------------------------------------------------------------------- reductions


@fill
def logsumexp(input, dim, keepdim=False):
    r"""``torch.logsumexp(input, dim, keepdim=False)``, computed in float64 and rounded once.

    Parameters
    ----------
    input : array_like or torch.Tensor
        Input.
    dim : int or tuple of int
        Dimensions to reduce (required, as in PyTorch).
    keepdim : bool, default False
        Keep the reduced dimensions with length 1.

    %(torch_returns_raises)s

    See Also
    --------
    fastloss.logsumexp

    %(notes_dropin)s

    Examples
    --------
    >>> import numpy as np
    >>> import fastloss.torch as F
    >>> F.logsumexp(np.array([[0.0, 0.0], [1.0, -np.inf]]), 1)
    array([0.69314718, 1.        ])
    """
    if _grad_wanted(input):
        return _grad_path().logsumexp(input, dim, keepdim)
    return _logsumexp_nograd(input, dim, keepdim)


def _logsumexp_nograd(input, dim, keepdim):
    """``logsumexp`` of inputs that need no gradient."""
    io = _IO()
    x = io(input, view=True)
    if dim is None:
        raise TypeError("logsumexp(): argument 'dim' must be tuple of ints, not NoneType")
    axis = tuple(dim) if isinstance(dim, (list, tuple)) else dim
    if axis == ():
        raise RuntimeError("logsumexp(): dim=() is not supported")
    if x.ndim == 0:
        return io.out(_lse.logsumexp(x))
    return io.out(_lse.logsumexp(x, axis=axis, keepdims=keepdim))
def _softmax_dim(name, ndim, stacklevel):
    warnings.warn(f"Implicit dimension choice for {name} has been deprecated. Change the call to "
                  "include dim=X as an argument.", stacklevel=stacklevel)
    return 0 if ndim in (0, 1, 3) else 1


@fill
def log_softmax(input, dim=None, _stacklevel=3, dtype=None):
    r"""``torch.nn.functional.log_softmax``: ``x - logsumexp(x, dim)``.

    Parameters
    ----------
    input : array_like or torch.Tensor
        Input.
    dim : int, optional
        The dimension normalised (``None``: PyTorch's implicit choice, with its warning).
    _stacklevel : int, default 3
        PyTorch's warning stack level (kept for signature compatibility).
    dtype : dtype, optional
        Cast the input to this dtype first.

    %(torch_returns_raises)s

    See Also
    --------
    softmax, fastloss.log_softmax

    %(notes_dropin)s

    Examples
    --------
    >>> import numpy as np
    >>> import fastloss.torch as F
    >>> F.log_softmax(np.array([0.0, -800.0]), dim=0)
    array([   0., -800.])
    """
    if _grad_wanted(input):
        return _grad_path().log_softmax(input, dim, _stacklevel, dtype)
    return _softmax_nograd(input, dim, _stacklevel, dtype, log=True)


@fill
def softmax(input, dim=None, _stacklevel=3, dtype=None):
    r"""``torch.nn.functional.softmax``: ``exp(x - logsumexp(x, dim))``.

    Parameters
    ----------
    input : array_like or torch.Tensor
        Input.
    dim : int, optional
        The dimension normalised (``None``: PyTorch's implicit choice, with its warning).
    _stacklevel : int, default 3
        PyTorch's warning stack level (kept for signature compatibility).
    dtype : dtype, optional
        Cast the input to this dtype first.

    %(torch_returns_raises)s

    See Also
    --------
    log_softmax, fastloss.softmax

    %(notes_dropin)s

    Examples
    --------
    >>> import numpy as np
    >>> import fastloss.torch as F
    >>> F.softmax(np.array([0.0, np.log(3.0)]), dim=0)
    array([0.25, 0.75])
    """
    if _grad_wanted(input):
        return _grad_path().softmax(input, dim, _stacklevel, dtype)
    return _softmax_nograd(input, dim, _stacklevel, dtype)


def _softmax_nograd(input, dim, _stacklevel, dtype, log=False):
    """``softmax`` (``log_softmax`` if ``log``) of inputs that need no gradient."""
    io = _IO()
    x, want = _cast_for(io(input, "input", view=True), dtype)
    if dim is None:
        dim = _softmax_dim("log_softmax" if log else "softmax", x.ndim, _stacklevel + 1)
    if x.size == 0:  # nothing to normalise (e.g. (5, 0, 0) along -1): an empty result
        _check_dim(dim, x.ndim)
        return io.out(x, cast=want)
    axis = dim if x.ndim else None
    half = _torch_half(io)
    if log and half and x.ndim and (want is None or str(want).replace("torch.", "") == half):
        _check_dim(dim, x.ndim)
        return io.out(_half_steps.log_softmax(x, dim, half), cast=want)
    return io.out(_torch_log_softmax(x, axis) if log else _lse.softmax(x, axis=axis),
                  cast=want)


def _cast_for(x, dtype):
    """``x`` cast for ``dtype=`` (half dtypes computed in float32) and the result's dtype."""
    if dtype is None:
        return x, None
    np_dt = _np_dtype(dtype)
    if is_half(x.dtype) and (np_dt is None or np_dt in (np.float16, np.float32)):
        return x, dtype  # the kernels widen a half view to exactly these float32 values
    if np_dt is None or np_dt == np.float16:
        return x.astype(np.float32), dtype
    return x.astype(np_dt), dtype


def _check_dim(dim, ndim):
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], "
                         f"but got {dim})")


def _np_dtype(dtype):
    name = str(dtype).replace("torch.", "")
    if name == "bfloat16":
        return None  # no NumPy dtype: computed in float32, the tensor cast at the end
    return np.dtype({"float": "float32", "double": "float64", "half": "float16"}.get(name, name))


# --------------------------------------------------------------------------- nn classes


class _Loss:
    def __init__(self, size_average=None, reduce=None, reduction="mean"):
        if size_average is not None or reduce is not None:
            self.reduction = _reduction(size_average, reduce, reduction)
        else:
            self.reduction = reduction

    def __call__(self, input, target):
        return self.forward(input, target)

    def __repr__(self):
        return f"{type(self).__name__}()"


class _WeightedLoss(_Loss):
    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        self.weight = weight


@fill
class BCELoss(_WeightedLoss):
    r"""``torch.nn.BCELoss``: the module form of :func:`binary_cross_entropy`.

    Parameters
    ----------
    weight : array_like, optional
        Element weights.
    %(torch_legacy_reduction)s

    See Also
    --------
    binary_cross_entropy

    Notes
    -----
    Calling the object, ``loss(input, target)``, returns ``binary_cross_entropy(input, target, ...)`` with the
    constructor's arguments.

    %(dropin_notes)s

    Examples
    --------
    >>> import numpy as np
    >>> import fastloss.torch as F
    >>> float(F.BCELoss()(np.array([0.5]), np.array([1.0])))
    0.6931471805599453
    """

    def forward(self, input, target):
        return binary_cross_entropy(input, target, weight=self.weight, reduction=self.reduction)


@fill
class BCEWithLogitsLoss(_Loss):
    r"""``torch.nn.BCEWithLogitsLoss``: the module form of :func:`binary_cross_entropy_with_logits`.

    Parameters
    ----------
    weight : array_like, optional
        Element weights.
    %(torch_legacy_reduction)s
    pos_weight : array_like, optional
        Weight of the positive term.

    See Also
    --------
    binary_cross_entropy_with_logits

    Notes
    -----
    Calling the object, ``loss(input, target)``, returns ``binary_cross_entropy_with_logits(input, target, ...)`` with the
    constructor's arguments.

    %(dropin_notes)s

    Examples
    --------
    >>> import numpy as np
    >>> import fastloss.torch as F
    >>> float(F.BCEWithLogitsLoss()(np.array([0.0]), np.array([1.0])))
    0.6931471805599453
    """

    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean",
                 pos_weight=None):
        super().__init__(size_average, reduce, reduction)
        self.weight = weight
        self.pos_weight = pos_weight

    def forward(self, input, target):
        return binary_cross_entropy_with_logits(input, target, self.weight,
                                                pos_weight=self.pos_weight,
                                                reduction=self.reduction)


@fill
class CrossEntropyLoss(_WeightedLoss):
    r"""``torch.nn.CrossEntropyLoss``: the module form of :func:`cross_entropy`.

    Parameters
    ----------
    weight : array_like, optional
        One weight per class.
    size_average, reduce : bool, optional
        PyTorch's deprecated arguments.
    ignore_index : int, default -100
        Targets left out.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        As in PyTorch.
    label_smoothing : float, default 0.0
        As in PyTorch.

    See Also
    --------
    cross_entropy

    Notes
    -----
    Calling the object, ``loss(input, target)``, returns ``cross_entropy(input, target, ...)`` with the
    constructor's arguments.

    %(dropin_notes)s

    Examples
    --------
    >>> import numpy as np
    >>> import fastloss.torch as F
    >>> float(F.CrossEntropyLoss()(np.array([[0.0, 0.0]]), np.array([1])))
    0.6931471805599453
    """

    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None,
                 reduction="mean", label_smoothing=0.0):
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing

    def forward(self, input, target):
        return cross_entropy(input, target, weight=self.weight, ignore_index=self.ignore_index,
                             reduction=self.reduction, label_smoothing=self.label_smoothing)


@fill
class NLLLoss(_WeightedLoss):
    r"""``torch.nn.NLLLoss``: the module form of :func:`nll_loss`.

    Parameters
    ----------
    weight : array_like, optional
        One weight per class.
    size_average, reduce : bool, optional
        PyTorch's deprecated arguments.
    ignore_index : int, default -100
        Targets left out.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        As in PyTorch.

    See Also
    --------
    nll_loss

    Notes
    -----
    Calling the object, ``loss(input, target)``, returns ``nll_loss(input, target, ...)`` with the
    constructor's arguments.

    %(dropin_notes)s

    Examples
    --------
    >>> import numpy as np
    >>> import fastloss.torch as F
    >>> float(F.NLLLoss()(np.log(np.array([[0.5, 0.5]])), np.array([0])))
    0.6931471805599453
    """

    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None,
                 reduction="mean"):
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index

    def forward(self, input, target):
        return nll_loss(input, target, weight=self.weight, ignore_index=self.ignore_index,
                        reduction=self.reduction)


@fill
class KLDivLoss(_Loss):
    r"""``torch.nn.KLDivLoss``: the module form of :func:`kl_div`.

    Parameters
    ----------
    size_average, reduce : bool, optional
        PyTorch's deprecated arguments.
    reduction : {'mean', 'batchmean', 'sum', 'none'}, default 'mean'
        As in PyTorch.
    log_target : bool, default False
        ``target`` holds log-probabilities.

    See Also
    --------
    kl_div

    Notes
    -----
    Calling the object, ``loss(input, target)``, returns ``kl_div(input, target, ...)`` with the
    constructor's arguments.

    %(dropin_notes)s

    Examples
    --------
    >>> import numpy as np
    >>> import fastloss.torch as F
    >>> float(F.KLDivLoss(reduction="sum")(np.log(np.array([0.5, 0.5])), np.array([0.5, 0.5])))
    0.0
    """

    def __init__(self, size_average=None, reduce=None, reduction="mean", log_target=False):
        super().__init__(size_average, reduce, reduction)
        self.log_target = log_target

    def forward(self, input, target):
        return kl_div(input, target, reduction=self.reduction, log_target=self.log_target)


@fill
class MSELoss(_Loss):
    r"""``torch.nn.MSELoss``: the module form of :func:`mse_loss`.

    Parameters
    ----------
    %(torch_legacy_reduction)s

    See Also
    --------
    mse_loss

    Notes
    -----
    Calling the object, ``loss(input, target)``, returns ``mse_loss(input, target, ...)`` with the
    constructor's arguments.

    %(dropin_notes)s

    Examples
    --------
    >>> import numpy as np
    >>> import fastloss.torch as F
    >>> float(F.MSELoss()(np.array([1.0, 3.0]), np.array([0.0, 1.0])))
    2.5
    """

    def forward(self, input, target):
        return mse_loss(input, target, reduction=self.reduction)
