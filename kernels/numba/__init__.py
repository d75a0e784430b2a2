"""Numba backend: fused, vectorised, thread-parallel kernels of the contract.

The contract (``fastloss.kernels``) is implemented by the thin wrappers below;
the compiled code is in ``_kernels`` (losses) and ``_math`` (exp/log/log1p that
vectorise: PyPI Numba has no SVML).

Compilation is lazy and per dtype: the first float32 call of a kernel compiles
(or loads from Numba's on-disk cache, ``cache=True``) exactly one explicit
signature, the float32 one, with read-only input arrays so that read-only and
writable inputs share it. Compiling costs seconds per kernel on a cold cache, so
nothing is compiled at import.

Half-precision x (the functions of ``HALF_NATIVE``) is passed as its 16-bit patterns and
widened block by block inside the kernels (``_half``): the same kernels, specialised
once more per half type, whose results are the float32 kernel's bits on
``x.astype(float32)``.

``n_threads`` is applied with ``numba.set_num_threads`` (thread-local, restored
afterwards) and clipped to ``NUMBA_NUM_THREADS``; results never depend on it.
Calls from several Python threads run concurrently (the kernels release the GIL).

Fork safety: in a ``fork()`` child of a process that had started Numba's GNU
OpenMP threading layer (multiprocessing's default start method on Linux), where
a parallel launch would kill the child, every kernel runs as a ``parallel=False``
copy of itself (compiled, or loaded from the cache, on first use in the child):
the same bits, one thread. See ``_fork.py``; no environment variable is needed.
"""

import threading
from contextlib import contextmanager

import numpy as np

from .. import CONTRACT

AVAILABLE = False
WHY_UNAVAILABLE = ""

try:
    import numba
    from numba import types as _t

    from . import _fork
    from . import _half as _h
    from . import _kernels as _k
except Exception as exc:  # numba missing or broken: the backend says why, import never fails
    WHY_UNAVAILABLE = f"numba is not usable: {type(exc).__name__}: {exc}"
else:
    AVAILABLE = True

__all__ = ["AVAILABLE", "HALF_NATIVE", "WHY_UNAVAILABLE", *CONTRACT]

# contract functions that also take float16 / bfloat16 x (widened block by block inside the
# parallel loop, see _half.py) and return float32 values: the bits of the float32 kernel on
# x.astype(float32); targets are never half here (the Python layer widens half ones)
HALF_NATIVE = frozenset({"sparse_ce", "sparse_ce_grad", "categorical_ce", "categorical_ce_grad",
                         "bce", "bce_grad", "kl", "kl_grad", "mse", "mse_grad",
                         "logsumexp_rows", "softmax_rows"})

_EMPTY = {np.dtype(np.float32): np.zeros(0, np.float32), np.dtype(np.float64): np.zeros(0)}
_compile_lock = threading.Lock()


def _check():
    if not AVAILABLE:
        raise RuntimeError(f"the numba backend is not available: {WHY_UNAVAILABLE}")


if AVAILABLE:
    _MAX_THREADS = numba.config.NUMBA_NUM_THREADS
    _B, _I, _F = _t.boolean, _t.int64, _t.float64

    def _ro(dt, nd=1):
        return _t.Array(dt, nd, "C", readonly=True)

    def _rw(dt, nd=1):
        return _t.Array(dt, nd, "C")

    def _grads(d, nd):  # the trailing (scale, g, h) of the kernels that fuse a gradient
        return (_F, _rw(d, nd), _rw(d, nd))

    _SIGS = {
        "sparse_ce_logits": lambda d: (_ro(d, 2), _ro(_I), _ro(_F), _ro(_F), _I, _B, _F, _F, _B,
                                       _I, _rw(d), _rw(_F), _rw(_F), d) + _grads(d, 2),
        "sparse_ce_probs": lambda d: (_ro(d, 2), _ro(_I), _ro(_F), _ro(_F), _I, _B, _F, _I,
                                      _ro(d), _B, _I, _rw(d), _rw(_F), _rw(_F)),
        "categorical_ce_logits": lambda d: (_ro(d, 2), _ro(d, 2), _ro(_F), _ro(_F), _F, _B, _I,
                                            _rw(d), _rw(_F), _rw(_F), d) + _grads(d, 2),
        "categorical_ce_probs": lambda d: (_ro(d, 2), _ro(d, 2), _ro(_F), _ro(_F), _F, _I,
                                           _ro(d), _B, _I, _rw(d), _rw(_F), _rw(_F)),
        "bce_logits": lambda d: (_ro(d), _ro(d), _ro(_F), _I, _ro(_F), _F, _B, _I, _rw(d),
                                 _rw(_F), _rw(_F), d) + _grads(d, 1),
        "bce_probs": lambda d: (_ro(d), _ro(d), _ro(_F), _I, _ro(_F), _F, _I, _ro(d), _B, _I,
                                _rw(d), _rw(_F), _rw(_F)),
        "kl": lambda d: (_ro(d, 2), _ro(d, 2), _ro(_F), _B, _B, _I, _ro(d), _B, _I, _rw(d),
                         _rw(_F), _rw(_F)) + _grads(d, 2),
        "mse": lambda d: (_ro(d, 2), _ro(d, 2), _ro(_F), _F, _ro(_F), _B, _I, _rw(d), _rw(_F),
                          _rw(_F)) + _grads(d, 2),
        "logsumexp_rows": lambda d: (_ro(d, 2), _rw(d), d),
        "softmax_rows": lambda d: (_ro(d, 2), _rw(d, 2), _B, d),
        "first_outside_unit_interval": lambda d: (_ro(d),),
        "argmax_rows": lambda d: (_ro(d, 2), _rw(_I)),
        "elementwise": lambda d: (_I, _ro(d), _ro(d), _rw(d)),
        "widen_half": lambda d: (_ro(d), _B, _rw(_t.uint32)),  # d: the uint16 of the bits
    }
    _ready = set()
    _serial = {}

    def _new_lock():  # a fork() child must not inherit a lock held by another thread
        global _compile_lock
        _compile_lock = threading.Lock()

    _fork._hooks.append(_new_lock)

    def _sig(name, dtype):
        """``name``'s signature for x of ``dtype``: for half bits (see _half.py) x is the
        bits and every other array of x's type is float32."""
        if np.dtype(dtype) not in (np.dtype(_h.BF16_BITS), np.dtype(_h.F16_BITS)) \
                or name == "widen_half":
            return _SIGS[name](numba.from_dtype(dtype))
        sig = _SIGS[name](_t.float32)
        return (_ro(numba.from_dtype(dtype), sig[0].ndim),) + sig[1:]

    def _kernel(name, dtype):
        """The dispatcher of ``name`` with its ``dtype`` signature compiled (or cache-loaded);
        its serial copy in a fork() child where parallel launches are unsafe."""
        disp = getattr(_h if name.endswith("_half") else _k, name)
        key = (name, dtype)
        if _fork.serial:
            with _compile_lock:
                if name not in _serial:
                    _serial[name] = _fork.serial_copy(disp)
            disp = _serial[name]
            key = (name, dtype, "serial")
        if key not in _ready:
            with _compile_lock:
                if key not in _ready:
                    disp.disable_compile(False)
                    try:
                        disp.compile(_sig(name, dtype))
                    finally:
                        # calls then convert writable arrays to the read-only signature
                        # instead of compiling one specialisation per flag combination
                        disp.disable_compile(True)
                    _ready.add(key)
        return disp

    @contextmanager
    def _threads(n_threads):
        if _fork.serial:  # no thread pool to configure (see _fork.py)
            yield
            return
        prev = numba.get_num_threads()
        numba.set_num_threads(max(1, min(int(n_threads), _MAX_THREADS)))
        try:
            yield
        finally:
            numba.set_num_threads(prev)


def _f64(a):
    return np.ascontiguousarray(a, dtype=np.float64)


def _cst(dtype, clip_eps):
    """[lo, hi, 1, 0, -inf, inf] in x's dtype: the clip bounds computed as the reference
    does, and the constants the kernels need in that dtype."""
    lo = dtype.type(clip_eps)
    return np.array([lo, dtype.type(1) - lo, 1, 0, -np.inf, np.inf], dtype=dtype)


def _out(out, dtype):
    return out if out.shape[0] else _EMPTY[dtype]


@contextmanager
def _contiguous(a):
    """``a`` itself when C-contiguous, else a contiguous buffer copied back into it."""
    if a.flags.c_contiguous:
        yield a
    else:
        buf = np.ascontiguousarray(a)
        yield buf
        a[...] = buf


def _x(x, half=False):
    """``(x, dtype it is computed in)``, x C-contiguous; with ``half`` (the HALF_NATIVE
    functions) float16 / bfloat16 x comes as its bits (see _half.py), computed in float32."""
    x = np.ascontiguousarray(x)
    if half:
        bits = _half_bits(x)
        if bits is not None:
            return bits, np.dtype(np.float32)
    if x.dtype not in _EMPTY:
        raise TypeError(f"the numba kernels take float32 or float64 arrays, got {x.dtype}")
    return x, x.dtype


# ------------------------------------------------------------------------- contract

def logsumexp_rows(x, out, n_threads):
    _check()
    x, cd = _x(x, half=True)
    if x.shape[1] == 0:
        out[:] = -np.inf
        return
    with _contiguous(out) as o, _threads(n_threads):
        _kernel("logsumexp_rows", x.dtype)(x, o, cd.type(0))


def softmax_rows(x, out, log, n_threads):
    _check()
    x, cd = _x(x, half=True)
    if x.size == 0:
        return
    with _contiguous(out) as o, _threads(n_threads):
        _kernel("softmax_rows", x.dtype)(x, o, bool(log), cd.type(0))


def _half_bits(x):
    """The bits of a C-contiguous float16 / bfloat16 array, typed as ``_half`` reads them
    (uint16: bfloat16, int16: float16), else None."""
    if x.dtype.itemsize != 2 or not (x.dtype.kind == "f" or x.dtype.name == "bfloat16"):
        return None
    return x.view(_h.BF16_BITS if x.dtype.name == "bfloat16" else _h.F16_BITS)


def widen_half(x, out, n_threads):
    """out (float32, C-contiguous) = the exact float32 values of the C-contiguous half x, on
    ``n_threads`` threads (not part of the contract: the generic path's widening)."""
    _check()
    bits = _half_bits(np.ascontiguousarray(x))
    with _threads(n_threads):
        _kernel("widen_half", np.dtype(np.uint16))(bits.reshape(-1).view(np.uint16),
                                                   bits.dtype == _h.BF16_BITS,
                                                   out.reshape(-1).view(np.uint32))
    return out


def sparse_ce(x, y, sw, cw, from_logits, ignore_index, has_ignore, label_smoothing, z_loss,
              clip_mode, clip_eps, nan_omit, block_rows, out, lp, wp, n_threads):
    _check()
    x, cd = _x(x, half=True)
    common = (x, np.ascontiguousarray(y, dtype=np.int64), _f64(sw), _f64(cw), int(ignore_index),
              bool(has_ignore), float(label_smoothing))
    with _contiguous(_out(out, cd)) as o, _threads(n_threads):
        tail = (bool(nan_omit), int(block_rows), o, lp, wp)
        if from_logits:
            _kernel("sparse_ce_logits", x.dtype)(*common, float(z_loss), *tail, cd.type(0),
                                                 *_no_grad(cd, 2))
        else:
            _kernel("sparse_ce_probs", x.dtype)(*common, int(clip_mode),
                                                _cst(cd, clip_eps), *tail)


def categorical_ce(x, t, sw, cw, from_logits, label_smoothing, clip_mode, clip_eps, nan_omit,
                   block_rows, out, lp, wp, n_threads):
    _check()
    x, cd = _x(x, half=True)
    common = (x, np.ascontiguousarray(t, dtype=cd), _f64(sw), _f64(cw),
              float(label_smoothing))
    with _contiguous(_out(out, cd)) as o, _threads(n_threads):
        tail = (bool(nan_omit), int(block_rows), o, lp, wp)
        if from_logits:
            _kernel("categorical_ce_logits", x.dtype)(*common, *tail, cd.type(0),
                                                      *_no_grad(cd, 2))
        else:
            _kernel("categorical_ce_probs", x.dtype)(*common, int(clip_mode),
                                                     _cst(cd, clip_eps), *tail)


def bce(x, z, sw, sw_div, pw, from_logits, label_smoothing, clip_mode, clip_eps, nan_omit,
        block_rows, out, lp, wp, n_threads):
    _check()
    x, cd = _x(x, half=True)
    common = (x, np.ascontiguousarray(z, dtype=cd), _f64(sw), max(1, int(sw_div)), _f64(pw),
              float(label_smoothing))
    with _contiguous(_out(out, cd)) as o, _threads(n_threads):
        tail = (bool(nan_omit), int(block_rows), o, lp, wp)
        if from_logits:
            _kernel("bce_logits", x.dtype)(*common, *tail, cd.type(0),
                                           *_no_grad(cd, 1))
        else:
            _kernel("bce_probs", x.dtype)(*common, int(clip_mode), _cst(cd, clip_eps),
                                          *tail)


def kl(x, t, sw, log_input, log_target, clip_mode, clip_eps, nan_omit, block_rows, out, lp, wp,
       n_threads):
    _check()
    x, cd = _x(x, half=True)
    with _contiguous(_out(out, cd)) as o, _threads(n_threads):
        _kernel("kl", x.dtype)(
            x, np.ascontiguousarray(t, dtype=cd), _f64(sw), bool(log_input),
            bool(log_target), int(clip_mode), _cst(cd, clip_eps), bool(nan_omit),
            int(block_rows), o, lp, wp, *_no_grad(cd, 2))


def mse(x, t, ow, sw, nan_omit, block_rows, out, lp, wp, n_threads):
    _check()
    x, cd = _x(x, half=True)
    ow = _f64(ow)
    with _contiguous(_out(out, cd)) as o, _threads(n_threads):
        _kernel("mse", x.dtype)(
            x, np.ascontiguousarray(t, dtype=cd), ow, _owsum(ow, x), _f64(sw),
            bool(nan_omit), int(block_rows), o, lp, wp, *_no_grad(cd, 2))


# ---------------------------------------------------------------- fused gradients
# The same kernels as the forward losses, given a gradient buffer: lp/wp are then
# the forward's bits by construction (nan_omit off, no per-sample output).

def _no_grad(dtype, ndim):
    """(scale, g, h) that switch a kernel's fused gradient off."""
    e = np.zeros((0,) * ndim, dtype)
    return 1.0, e, e


def _g(g, dtype, ndim):
    """The Hessian buffer, or a typed empty one when it is not requested."""
    return g if g.shape[0] else np.zeros((0,) * ndim, dtype)


def _owsum(ow, x):
    """The reference's divisor: numpy's sum of the output weights, or C without them."""
    return float(ow.sum()) if ow.shape[0] else float(x.shape[1])


def sparse_ce_grad(x, y, sw, cw, ignore_index, has_ignore, label_smoothing, z_loss, scale,
                   block_rows, lp, wp, g, h, n_threads):
    _check()
    x, cd = _x(x, half=True)
    with _contiguous(g) as g, _contiguous(h) as h, _threads(n_threads):
        _kernel("sparse_ce_logits", x.dtype)(
            x, np.ascontiguousarray(y, dtype=np.int64), _f64(sw), _f64(cw), int(ignore_index),
            bool(has_ignore), float(label_smoothing), float(z_loss), False, int(block_rows),
            _EMPTY[cd], lp, wp, cd.type(0), float(scale), g, _g(h, cd, 2))


def categorical_ce_grad(x, t, sw, cw, label_smoothing, scale, block_rows, lp, wp, g, h,
                        n_threads):
    _check()
    x, cd = _x(x, half=True)
    with _contiguous(g) as g, _contiguous(h) as h, _threads(n_threads):
        _kernel("categorical_ce_logits", x.dtype)(
            x, np.ascontiguousarray(t, dtype=cd), _f64(sw), _f64(cw),
            float(label_smoothing), False, int(block_rows), _EMPTY[cd], lp, wp,
            cd.type(0), float(scale), g, _g(h, cd, 2))


def bce_grad(x, z, sw, sw_div, pw, label_smoothing, scale, block_rows, lp, wp, g, h, n_threads):
    _check()
    x, cd = _x(x, half=True)
    with _contiguous(g) as g, _contiguous(h) as h, _threads(n_threads):
        _kernel("bce_logits", x.dtype)(
            x, np.ascontiguousarray(z, dtype=cd), _f64(sw), max(1, int(sw_div)), _f64(pw),
            float(label_smoothing), False, int(block_rows), _EMPTY[cd], lp, wp,
            cd.type(0), float(scale), g, _g(h, cd, 1))


def kl_grad(x, t, sw, log_input, log_target, scale, block_rows, lp, wp, g, h, n_threads):
    _check()
    x, cd = _x(x, half=True)
    with _contiguous(g) as g, _contiguous(h) as h, _threads(n_threads):
        _kernel("kl", x.dtype)(
            x, np.ascontiguousarray(t, dtype=cd), _f64(sw), bool(log_input),
            bool(log_target), 0, _cst(cd, 0.0), False, int(block_rows), _EMPTY[cd], lp,
            wp, float(scale), g, _g(h, cd, 2))


def mse_grad(x, t, ow, sw, scale, block_rows, lp, wp, g, h, n_threads):
    _check()
    x, cd = _x(x, half=True)
    ow = _f64(ow)
    with _contiguous(g) as g, _contiguous(h) as h, _threads(n_threads):
        _kernel("mse", x.dtype)(
            x, np.ascontiguousarray(t, dtype=cd), ow, _owsum(ow, x), _f64(sw), False,
            int(block_rows), _EMPTY[cd], lp, wp, float(scale), g, _g(h, cd, 2))


def first_outside_unit_interval(x):
    _check()
    x = _x(x)[0].reshape(-1)
    if x.shape[0] == 0:
        return -1
    return int(_kernel("first_outside_unit_interval", x.dtype)(x))


def argmax_rows(x, out, n_threads):
    _check()
    x = _x(x)[0]
    if x.shape[0] == 0:
        return
    with _contiguous(out) as o, _threads(n_threads):
        _kernel("argmax_rows", x.dtype)(x, o)


def elementwise(op, x, y, out, n_threads):
    _check()
    x = _x(x)[0].reshape(-1)
    if x.shape[0] == 0:
        return
    with _contiguous(out) as o, _threads(n_threads):
        _kernel("elementwise", x.dtype)(int(op), x, np.ascontiguousarray(y, dtype=x.dtype).reshape(-1),
                                        o.reshape(-1))
