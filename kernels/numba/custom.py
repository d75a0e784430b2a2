"""Compile a user's scalar loss ``f(y_true, y_pred, *params)`` into a fused kernel.

The generated kernel follows the kernel contract (``kernels/__init__.py``): one
value per sample (the weighted mean or sum of ``f`` over the output axis), float64
block sums in the lane order of ``_blocks.block_sum``, a ``prange`` over blocks so
the result does not depend on the thread count.
"""

import numpy as np

from .._blocks import LANES
from . import _fork


_SOURCE = """
def kernel(x, t, ow, sw, params, mean_over_outputs, is_f32, block_rows, out, lp, wp):
    n, C = x.shape
    has_ow = ow.shape[0] > 0
    has_sw = sw.shape[0] > 0
    want_out = out.shape[0] > 0
    want_part = lp.shape[0] > 0
    owsum = 0.0
    if has_ow:
        for j in range(C):
            owsum += ow[j]
    else:
        owsum = float(C)
    nb = (n + block_rows - 1) // block_rows
    xf = x.reshape(n * C)
    tf = t.reshape(n * C)
    for b in prange(nb):
        acc_l = np.zeros(LANES)
        acc_w = np.zeros(LANES)
        start = b * block_rows
        stop = min(n, start + block_rows)
        # evaluate f over the block's elements first (a flat loop LLVM can vectorise),
        # then reduce each row in order
        e = np.empty((stop - start) * C)
        k0 = start * C
        for k in range(e.shape[0]):
            e[k] = np.float64(f(tf[k0 + k], xf[k0 + k]{args}))
        for r in range(start, stop):
            s = 0.0
            base = (r - start) * C
            for j in range(C):
                if has_ow:
                    s += ow[j] * e[base + j]
                else:
                    s += e[base + j]
            if mean_over_outputs:
                s = s / owsum
            v = np.float64(np.float32(s)) if is_f32 else s  # v_i in x's dtype
            w = sw[r] if has_sw else 1.0
            c = 0.0
            if w != 0.0:
                c = v * w
            if want_out:
                out[r] = c
            if want_part:
                lane = (r - start) % LANES
                acc_l[lane] += c
                acc_w[lane] += w
        if want_part:
            sl = acc_l[0]
            sw_ = acc_w[0]
            for k in range(1, LANES):
                sl += acc_l[k]
                sw_ += acc_w[k]
            lp[b] = sl
            wp[b] = sw_
"""


def make_custom_kernel(func, n_params):
    """``kernel(x, t, ow, sw, params, mean_over_outputs, is_f32, block_rows, out, lp, wp)``.

    ``out`` is float64 here (the caller rounds it to x's dtype); ``params`` is a tuple
    of ``n_params`` floats. Numba raises its own error when ``func`` cannot be
    compiled (at the first call). The source is generated per arity because Numba
    cannot call a closure with ``*args``.
    """
    import numba

    args = "".join(f", params[{k}]" for k in range(n_params))
    scope = {"np": np, "prange": numba.prange, "LANES": LANES, "f": numba.njit(func)}
    exec(_SOURCE.format(args=args), scope)  # noqa: S102 - our own template, no user text
    parallel = numba.njit(parallel=True, nogil=True)(scope["kernel"])
    serial = []

    def kernel(*a):
        # a fork() child of a GNU OpenMP parent must not launch threads (see _fork.py):
        # there a parallel=False copy runs, with the same bits
        if _fork.serial:
            if not serial:
                serial.append(numba.njit(nogil=True)(scope["kernel"]))
            return serial[0](*a)
        return parallel(*a)

    return kernel
