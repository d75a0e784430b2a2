"""Native half-precision forward kernels (issue #18): float16 / bfloat16 logits read as
their 16-bit patterns, widened block by block inside the parallel loop.

Each block of ``block_rows`` rows is widened exactly to float32 into a block-local buffer
(64 KiB: it stays in L2) by the thread that computes it, and then runs the very helpers
of the float32 kernel (``_sce_logits_block``, ``_bce_logits``, ...): the results are the
float32 kernel's bits on ``x.astype(float32)``, while DRAM supplies 2 bytes per logit and
the widening runs on every thread. bfloat16 is the top half of a float32 (a shift);
float16 is rebased integer-wise (exponent + 112, mantissa << 13), its subnormals (exact
multiples of 2**-24) fixed up in float32 arithmetic.
"""

import numpy as np
from numba import njit, prange

from ._kernels import (SUB, _bce_finish, _bce_logits, _bce_pos_weights, _POPTS, _OPTS,
                       _sce_finish, _sce_logits_block)

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


@njit(**_POPTS)
def sparse_ce_logits_half(xbits, is_bf16, y, sw, cw, ignore_index, has_ignore, label_smoothing,
                          z_loss, nan_omit, block_rows, out, lp, wp):
    """``sparse_ce_logits`` (forward) of the float32 kernel on the widened ``xbits``."""
    n, C = xbits.shape
    nb = (n + block_rows - 1) // block_rows
    like = np.float32(0)
    for bb in prange(nb):
        b = np.int64(bb)
        r0 = b * block_rows
        r1 = min(n, r0 + block_rows)
        nr = r1 - r0
        ub = np.empty(nr * C, np.uint32)
        _widen(xbits[r0:r1].reshape(nr * C), is_bf16, ub)
        xb = ub.view(np.float32).reshape((nr, C))
        yb = y[r0:r1]
        v = np.empty(nr, np.float32)
        f = np.empty((3, nr))
        _sce_logits_block(xb, yb, label_smoothing, z_loss, ignore_index, has_ignore, like, v,
                          f[0], f[1], f[2])
        _sce_finish(yb, sw, cw, ignore_index, has_ignore, v, nan_omit, r0, nr, out, lp, wp, b,
                    block_rows)


@njit(**_POPTS)
def bce_logits_half(xbits, is_bf16, z, sw, sw_div, pw, label_smoothing, nan_omit, block_rows,
                    out, lp, wp):
    """``bce_logits`` (forward) of the float32 kernel on the widened ``xbits``."""
    n = xbits.shape[0]
    nb = (n + block_rows - 1) // block_rows
    like = np.float32(0)
    for bb in prange(nb):
        b = np.int64(bb)
        r0 = b * block_rows
        r1 = min(n, r0 + block_rows)
        nr = r1 - r0
        ub = np.empty(nr, np.uint32)
        _widen(xbits[r0:r1], is_bf16, ub)
        v = np.empty(nr, np.float32)
        _bce_logits(ub.view(np.float32), z[r0:r1], _bce_pos_weights(pw, r0, nr),
                    label_smoothing, like, v, np.empty(SUB))
        _bce_finish(v, sw, sw_div, nan_omit, r0, nr, out, lp, wp, b, block_rows)


@njit(**_POPTS)
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
