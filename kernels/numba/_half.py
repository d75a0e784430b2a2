"""Half-precision x (issue #18): float16 / bfloat16 read as their 16-bit patterns and
widened block by block inside the kernels' parallel loops.

Numba has no 16-bit float type on the CPU, so half x reaches the kernels as its bits, and
the integer type of the bits names the format: ``uint16`` is bfloat16, ``int16`` is
float16 (each a compile-time specialisation, no per-block branch). Every kernel of
``_kernels`` reads its rows through :func:`widen`, which is the rows themselves for
float32 / float64 x and, for half bits, their exact float32 values in a block-local
buffer written by the thread that computes the block: the float32 helpers then run
unchanged, so the results are the float32 kernel's bits on ``x.astype(float32)``, while
DRAM supplies 2 bytes per element and the widening runs on every thread.

bfloat16 is the top half of a float32 (a shift); float16 is rebased integer-wise
(exponent + 112, mantissa << 13), its subnormals (exact multiples of 2**-24) fixed up in
float32 arithmetic.
"""

import numpy as np
from numba import njit, prange, types
from numba.extending import overload

from . import _cache  # noqa: F401  (before any cache=True: see _cache.py)

_OPTS = dict(cache=True, error_model="numpy", nogil=True)  # as _kernels' (which imports this)

BF16_BITS = np.uint16  # the bits' dtype that stands for bfloat16 ...
F16_BITS = np.int16    # ... and for float16 (see the module docstring)
_F16_SUB_SCALE = np.float32(2.0**-24)
WIDEN_BLOCK = 1 << 16  # elements per parallel task of widen_half


@njit(**_OPTS)
def _widen(src, is_bf16, ub):
    """ub (uint32) = the float32 bits of the half values src (uint16), both flat."""
    n = src.shape[0]
    if is_bf16:
        for i in range(n):
            ub[i] = np.uint32(src[i]) << np.uint32(16)
        return
    for i in range(n):
        h = np.uint32(src[i])
        em = h & np.uint32(0x7FFF)
        bits = (em << np.uint32(13)) + np.uint32(112 << 23)
        bits = bits + np.uint32(112 << 23) if em >= np.uint32(0x7C00) else bits  # inf, NaN
        ub[i] = bits | ((h & np.uint32(0x8000)) << np.uint32(16))
    f = ub.view(np.float32)
    for i in range(n):  # zeros and subnormals: em * 2**-24, exact in float32
        em = np.uint32(src[i]) & np.uint32(0x7FFF)
        if em < np.uint32(0x400):
            v = np.float32(em) * _F16_SUB_SCALE
            f[i] = -v if src[i] & np.uint16(0x8000) else v


def _is_half_bits(dt):
    return dt in (types.uint16, types.int16)


def widen(a):
    """``a`` itself for float arrays; for half bits (1-D or 2-D, C-contiguous) a new float32
    array of the same shape holding their exact values."""


def empty_values(a, n):
    """An uninitialised ``n``-long array of the dtype the kernels compute ``a`` in
    (float32 for half bits)."""


@overload(widen)
def _widen_ov(a):
    if not _is_half_bits(a.dtype):
        return lambda a: a
    bf16 = a.dtype == types.uint16

    def impl(a):
        ub = np.empty(a.size, np.uint32)
        _widen(a.reshape(a.size).view(np.uint16), bf16, ub)
        return ub.view(np.float32).reshape(a.shape)
    return impl


@overload(empty_values)
def _empty_values_ov(a, n):
    if _is_half_bits(a.dtype):
        return lambda a, n: np.empty(n, np.float32)
    return lambda a, n: np.empty(n, a.dtype)


@njit(**_OPTS, parallel=True)
def widen_half(xbits, is_bf16, ub):
    """ub = the float32 bits of the flat half values xbits, in parallel blocks: the generic
    path's widening on the kernels' own OpenMP threads (a serial NumPy widening between two
    parallel kernel calls leaves the other thread spin-waiting)."""
    n = xbits.shape[0]
    nb = (n + WIDEN_BLOCK - 1) // WIDEN_BLOCK
    for bb in prange(nb):
        r0 = np.int64(bb) * WIDEN_BLOCK
        r1 = min(n, r0 + WIDEN_BLOCK)
        _widen(xbits[r0:r1], is_bf16, ub[r0:r1])
