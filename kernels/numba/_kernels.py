"""Numba kernels of the contract (see ``fastloss/kernels/__init__.py``).

Layout: each loss is a ``prange`` over blocks of ``block_rows`` rows. A block
computes its per-sample losses ``v`` (rounded once to x's dtype) and float64
weights ``w`` into block-local buffers, then ``_emit`` writes ``out`` and the
block's two partials in the contract's lane order. Nothing depends on the thread
count: a block is always computed by the same code, whole, and writes only its
own ``lp[b]``, ``wp[b]``.

Per-row math follows the reference (``kernels/reference/_kernels.py``) formula
by formula, in float64: ``lse = shift + L`` with ``shift`` the row max (0 when
it is not finite) and ``L = log1p(st)``, ``st = sum_{x_j != max} exp(x_j - max)
+ (#max - 1)``: one pass for the max, one for the exponentials, over a row that
is still in L1/L2; no N x C temporary. float32 inputs use the float32-grade
exp/log of ``_math`` (relative error < 2**-35: the float64 value of a loss is then
far closer than half a float32 ulp, and rounding it once gives the reference's
float32 result to within 1 ulp); float64 inputs use the full-precision ones;
``L`` itself always uses the full-precision log1p.

Every result is the same bits on every SIMD target LLVM compiles for (SSE2, AVX2,
AVX-512), for any thread count: sums along a row use 8 explicit lanes in a fixed
order (no reassociation flag, see "fixed-order row sums"), multiply-adds are
explicit ``llvm.fma`` calls (never a compiler-chosen contraction), and every NaN
written is the positive quiet NaN (:func:`_cn`).

Rows of at most ``SMALL_C`` classes go through a "column" path: the block is
transposed once and every loop then runs across rows, vectorised, instead of
along rows too short for the vector units.
"""

import numpy as np
from numba import njit, prange, types
from numba.extending import overload

from .._blocks import (CLIP_EPS, CLIP_KERAS2, CLIP_NONE, CLIP_TORCH, EW_REL_ENTR, EW_XLOGY,
                       LANES)
from . import _cache  # noqa: F401  (before any cache=True: see _cache.py)
from ._half import empty_values, widen
from ._intrin import bits32, bits64, fmaxnan, lanes_add8
from ._math import (MIN_NORMAL, _log1p_fix, _log1p_red64, _log_reduce, _log_special, exp_for, exp_neg_for,
                    log1p64, log1p_for, log1p_unit_for, log64, log_for)

_OPTS = dict(cache=True, error_model="numpy", nogil=True)
_POPTS = dict(cache=True, error_model="numpy", nogil=True, parallel=True)

INF = np.inf
NAN = np.nan
SMALL_C = 32      # rows of at most this many classes use the column (across-rows) path
SUB = 1024       # elements per two-pass sub-chunk of BCE (its buffers stay in L1)
EMIT_SUB = 1024  # samples per sub-chunk of the block sums (a multiple of 8)
SEG = 1 << 16     # logsumexp / softmax: a row's sum of exponentials is a fixed sequence of
                  # segment partials, so splitting a long row across threads changes no bit
LSE_TASK = 8192   # logsumexp / softmax: elements per parallel task of short rows
RCH = 512         # elements per chunk of a row reduction (a multiple of 8): its buffer stays in L1
assert LANES == 8


# ------------------------------------------------------------------ contract block sums

@njit(**_OPTS)
def _ck(v, w, has_w, nan_omit):
    """(contribution, weight) of one sample as they enter the block sums."""
    wi = w if has_w else 1.0
    c = 0.0 if wi == 0.0 else np.float64(v) * wi
    drop = nan_omit and v != v
    return (0.0 if drop else c), (0.0 if drop else wi)


@njit(**_OPTS)
def _emit(v, w, nan_omit, r0, nr, out, lp, wp, b, block_rows):
    """Contributions ``c = float64(v) * w`` (0 where w == 0) -> out, lp[b], wp[b].

    ``w`` of length 0 means every weight is 1. The block sums follow
    :func:`_blocks.block_sum` bit for bit: lane k takes samples k, k+8, k+16, ... left
    to right (plain float64 adds: no FMA, no reassociation; one explicit 8-lane vector
    add per 8 samples, :func:`_intrin.lanes_add8`), in L1-sized sub-chunks;
    lanes start at -0.0, the identity of IEEE addition, which is the same bits as
    starting from the lane's first value.
    """
    has_w = w.shape[0] > 0
    if out.shape[0] > 0:
        ob = out[r0:r0 + nr]
        for i in range(nr):
            wi = w[i] if has_w else 1.0
            ob[i] = _cn(0.0 if wi == 0.0 else np.float64(v[i]) * wi)
    if lp.shape[0] == 0:
        return
    a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = -0.0
    b0 = b1 = b2 = b3 = b4 = b5 = b6 = b7 = -0.0
    if not has_w and not nan_omit:
        # c = float64(v) * 1 = float64(v), and every weight is 1: the lane sums of the
        # weights are exact counts, so wp[b] = nr; the lanes read v directly
        a0, a1, a2, a3, a4, a5, a6, a7 = _lanes_add((a0, a1, a2, a3, a4, a5, a6, a7), v, nr)
        lp[b] = _cn(_lanes_finish(a0, a1, a2, a3, a4, a5, a6, a7, nr, block_rows))
        wp[b] = np.float64(nr)
        return
    cb = np.empty(EMIT_SUB)
    kb = np.empty(EMIT_SUB)
    for s0 in range(0, nr, EMIT_SUB):  # sub-chunks: cb/kb stay in L1
        m = min(nr, s0 + EMIT_SUB) - s0
        vs = v[s0:s0 + m]
        ws = w[s0:s0 + m] if has_w else w
        if has_w:
            for i in range(m):
                cb[i], kb[i] = _ck(vs[i], ws[i], True, nan_omit)
        else:
            for i in range(m):
                cb[i], kb[i] = _ck(vs[i], 1.0, False, nan_omit)
        a0, a1, a2, a3, a4, a5, a6, a7 = lanes_add8((a0, a1, a2, a3, a4, a5, a6, a7), cb, m)
        b0, b1, b2, b3, b4, b5, b6, b7 = lanes_add8((b0, b1, b2, b3, b4, b5, b6, b7), kb, m)
        full = m - m % 8
        rest = m - full  # only in the last sub-chunk (EMIT_SUB is a multiple of 8)
        if rest > 0:
            a0 += cb[full]
            b0 += kb[full]
        if rest > 1:
            a1 += cb[full + 1]
            b1 += kb[full + 1]
        if rest > 2:
            a2 += cb[full + 2]
            b2 += kb[full + 2]
        if rest > 3:
            a3 += cb[full + 3]
            b3 += kb[full + 3]
        if rest > 4:
            a4 += cb[full + 4]
            b4 += kb[full + 4]
        if rest > 5:
            a5 += cb[full + 5]
            b5 += kb[full + 5]
        if rest > 6:
            a6 += cb[full + 6]
            b6 += kb[full + 6]
    lp[b] = _cn(_lanes_finish(a0, a1, a2, a3, a4, a5, a6, a7, nr, block_rows))
    wp[b] = _cn(_lanes_finish(b0, b1, b2, b3, b4, b5, b6, b7, nr, block_rows))


@njit(**_OPTS)
def _lanes_finish(a0, a1, a2, a3, a4, a5, a6, a7, n, block_rows):
    """Padding zeros of the reference's lane matrix, then the lanes left to right."""
    rows = (block_rows + 7) // 8
    # lane k holds ceil((n - k) / 8) values; with fewer than `rows` it was padded
    if (n + 7) // 8 < rows:
        a0 += 0.0
    if (n + 6) // 8 < rows:
        a1 += 0.0
    if (n + 5) // 8 < rows:
        a2 += 0.0
    if (n + 4) // 8 < rows:
        a3 += 0.0
    if (n + 3) // 8 < rows:
        a4 += 0.0
    if (n + 2) // 8 < rows:
        a5 += 0.0
    if (n + 1) // 8 < rows:
        a6 += 0.0
    if n // 8 < rows:
        a7 += 0.0
    return ((((((a0 + a1) + a2) + a3) + a4) + a5) + a6) + a7


# ------------------------------------------------------------- fixed-order row sums
# Every sum along a row has 8 explicit lanes: element j goes to lane j % 8, each lane
# adds left to right with plain float64 adds, and the lanes are combined in one fixed
# tree. A reassociation flag would instead let the vectoriser pick the order from the
# target's vector width (SSE, AVX2 and AVX-512 code would then give different bits);
# 8 explicit lanes are one zmm, two ymm or four xmm registers, the same sums in each.
# Terms are computed into an L1 buffer first (a map: vectorised for any width), then
# added lane by lane.

@njit(**_OPTS)
def _cn(v):
    """``v``, or the positive quiet NaN when ``v`` is a NaN. A computed NaN's sign and
    payload depend on the operand order the compiler chose, which differs between SIMD
    targets: every NaN the kernels write is this one, so NaNs have the same bits too."""
    return NAN if v != v else v


@njit(**_OPTS)
def _z8():
    return (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


@njit(**_OPTS)
def _lanes_add(t, buf, m):
    """The lanes ``t`` plus ``buf[0:m]`` (as float64), element k into lane k % 8. Callers
    pass chunks whose start is a multiple of 8 in the row, so lane k % 8 is lane j % 8."""
    a0, a1, a2, a3, a4, a5, a6, a7 = lanes_add8(t, buf, m)
    full = m - m % 8
    rest = m - full
    if rest > 0:
        a0 += np.float64(buf[full])
    if rest > 1:
        a1 += np.float64(buf[full + 1])
    if rest > 2:
        a2 += np.float64(buf[full + 2])
    if rest > 3:
        a3 += np.float64(buf[full + 3])
    if rest > 4:
        a4 += np.float64(buf[full + 4])
    if rest > 5:
        a5 += np.float64(buf[full + 5])
    if rest > 6:
        a6 += np.float64(buf[full + 6])
    return (a0, a1, a2, a3, a4, a5, a6, a7)


@njit(**_OPTS)
def _lanes_sum(t):
    a0, a1, a2, a3, a4, a5, a6, a7 = t
    return ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7))


@njit(**_OPTS)
def _lanes_sum_arr(lz):
    """:func:`_lanes_sum` of lanes kept in an array (the same tree)."""
    return ((lz[0] + lz[1]) + (lz[2] + lz[3])) + ((lz[4] + lz[5]) + (lz[6] + lz[7]))


# ------------------------------------------------------------------------ row pieces

@njit(**_OPTS)
def _row_max(row):
    """max of a row; NaN if the row holds a NaN (llvm.maximum, vectorised)."""
    m = row[0]
    for j in range(1, row.shape[0]):
        m = fmaxnan(m, row[j])
    return m


@njit(**_OPTS)
def _sum_exp(row, m, like, buf):
    """``(sum_{x_j != m} exp(x_j - m), #{x_j == m})`` for a finite m (fixed-order lanes;
    ``buf``: at least min(len(row), RCH) float64)."""
    mm = np.float64(m)
    n = row.shape[0]
    t = _z8()
    cnt = 0
    for a in range(0, n, RCH):
        k = min(n, a + RCH) - a
        seg = row[a:a + k]
        for j in range(k):
            xj = seg[j]
            eq = xj == m
            e = exp_neg_for(like, np.float64(xj) - mm)
            buf[j] = 0.0 if eq else e
            cnt += 1 if eq else 0
        t = _lanes_add(t, buf, k)
    return _lanes_sum(t), cnt


@njit(**_OPTS)
def _row_sum(row):
    return _lanes_sum(_lanes_add(_z8(), row, row.shape[0]))


@njit(**_OPTS)
def _special_L(m):
    """The reference's L when the row max is not finite (shift is then 0)."""
    if m != m:
        return NAN
    return INF if m > 0 else -INF


@njit(**_OPTS)
def _lse_parts(row, like, need_sx, buf):
    """``(shift, L, row_sum, st)``: lse = shift + L, L = log1p(st) with
    ``st = sum_{x_j != max} exp(x_j - max) + (#max - 1)`` (NaN when the max is not
    finite); row_sum only when need_sx."""
    if row.shape[0] == 0:
        return 0.0, -INF, 0.0, NAN
    m = _row_max(row)
    if m - m == 0:  # finite
        s, cnt = _sum_exp(row, m, like, buf)
        sx = _row_sum(row) if need_sx else 0.0  # a third pass, over a row in L1/L2
        st = s + np.float64(cnt - 1)
        return np.float64(m), log1p64(st), sx, st
    sx = _row_sum(row) if need_sx else 0.0
    return 0.0, _special_L(m), sx, NAN


# -------------------------------------------------------------------- clip helpers

@njit(**_OPTS)
def _neglog(p, mode, cst):
    """-log(p) under a clip mode, float64; p in x's dtype, cst = [lo, hi, 1, 0] in it."""
    like = cst[3]
    pc = p
    if mode == CLIP_EPS or mode == CLIP_KERAS2:
        lo = cst[0]
        pc = lo if p < lo else p
        pc = cst[1] if pc > cst[1] else pc
        if mode == CLIP_KERAS2:
            pc = pc + lo  # in x's dtype, as tf.keras 2.x
    lg = log_for(like, np.float64(pc))
    if mode == CLIP_TORCH:
        lg = -100.0 if lg < -100.0 else lg
    return -lg


@njit(**_OPTS)
def _neglog1m(p, mode, cst):
    """-log(1 - p) under a clip mode, float64."""
    like = cst[3]
    if mode == CLIP_NONE or mode == CLIP_TORCH:
        lg = log1p_for(like, -np.float64(p))
        return -(-100.0 if (mode == CLIP_TORCH and lg < -100.0) else lg)
    lo = cst[0]
    pc = lo if p < lo else p
    pc = cst[1] if pc > cst[1] else pc
    q = cst[2] - pc  # 1 - p in x's dtype, as the frameworks do
    if mode == CLIP_KERAS2:
        q = q + lo
    return -log_for(like, np.float64(q))


# ------------------------------------------------------------------ sparse CE pieces
# Block helpers take the block's own views (xb = x[r0:r0+nr], ...) and index them from 0:
# indices then provably non-negative, so Numba's negative-index wraparound (which turns
# loads into gathers) disappears.

@njit(**_OPTS)
def _transpose(xb, xt):
    """xt[j, i] = xb[i, j]: columns of a block become contiguous (LLVM does not
    vectorise the strided loads of a column, it only versions the loop for stride 1)."""
    nr, C = xb.shape
    flat = xb.reshape(nr * C)
    for j in range(C):  # contiguous stores, strided loads: faster than row by row
        dst = xt[j]
        for i in range(nr):
            dst[i] = flat[i * C + j]


@njit(**_OPTS)
def _cols_lse(xt, like, need_sx, m, shift, L, sx, st, cnt):
    """:func:`_lse_parts` of short rows from the transposed block xt[C, nr]: every loop
    runs along the rows, vectorised (rows of 10 classes are too short for the vector
    units)."""
    C, nr = xt.shape
    c0 = xt[0]
    for i in range(nr):
        m[i] = c0[i]
    for j in range(1, C):
        col = xt[j]
        for i in range(nr):
            m[i] = fmaxnan(m[i], col[i])
    for i in range(nr):
        st[i] = 0.0
        cnt[i] = 0.0
        sx[i] = 0.0
        shift[i] = np.float64(m[i])
    for j in range(C):
        col = xt[j]
        for i in range(nr):
            xj = col[i]
            eq = xj == m[i]
            e = exp_neg_for(like, np.float64(xj) - shift[i])
            st[i] += 0.0 if eq else e
            cnt[i] += 1.0 if eq else 0.0
    if need_sx:
        for j in range(C):
            col = xt[j]
            for i in range(nr):
                sx[i] += np.float64(col[i])
    for i in range(nr):  # branch-free (selects), so the per-row log1p vectorises across rows
        mi = m[i]
        fin = mi - mi == 0
        sti = st[i] + (cnt[i] - 1.0)
        Lf = log1p64(sti)
        Ls = NAN if mi != mi else (INF if mi > 0 else -INF)  # _special_L
        shift[i] = shift[i] if fin else 0.0
        L[i] = Lf if fin else Ls
        st[i] = sti if fin else NAN


@njit(**_OPTS)
def _block_lse(xb, like, need_sx, shift, L, sx, st):
    """shift, L, row sums and st of every row of a block (see :func:`_lse_parts`):
    across rows for short rows, along each row otherwise. Forward and gradient
    kernels both call this, so their losses (and block partials) are the same bits."""
    nr, C = xb.shape
    if 0 < C <= SMALL_C:
        xt = np.empty((C, nr), xb.dtype)
        _transpose(xb, xt)
        _cols_lse(xt, like, need_sx, np.empty(nr, xb.dtype), shift, L, sx, st, np.empty(nr))
    else:
        buf = np.empty(min(C, RCH))
        for i in range(nr):
            shift[i], L[i], sx[i], st[i] = _lse_parts(xb[i], like, need_sx, buf)


@njit(**_OPTS)
def _sce_logits_block(xb, yb, ls, z_loss, ign_val, has_ignore, like, v, shift, L, st):
    nr, C = xb.shape
    need_sx = ls != 0.0
    sx = np.empty(nr)
    _block_lse(xb, like, need_sx, shift, L, sx, st)
    for i in range(nr):
        yi = yb[i]
        ys = 0 if (has_ignore and yi == ign_val) else yi
        val = (shift[i] - np.float64(xb[i, ys])) + L[i]
        if need_sx:
            val = (1.0 - ls) * val + ls * ((shift[i] - sx[i] / C) + L[i])
        if z_loss != 0.0:
            lse = shift[i] + L[i]
            val = val + z_loss * lse * lse
        v[i] = val


@njit(**_OPTS)
def _sce_probs_rows(xb, yb, ls, mode, cst, ign_val, has_ignore, v):
    nr, C = xb.shape
    buf = np.empty(min(C, RCH) if ls != 0.0 else 0)
    for i in range(nr):
        yi = yb[i]
        ys = 0 if (has_ignore and yi == ign_val) else yi
        row = xb[i]
        val = _neglog(row[ys], mode, cst)
        if ls != 0.0:
            t = _z8()
            for a in range(0, C, RCH):
                k = min(C, a + RCH) - a
                for j in range(k):
                    buf[j] = _neglog(row[a + j], mode, cst)
                t = _lanes_add(t, buf, k)
            val = (1.0 - ls) * val + ls * (_lanes_sum(t) / C)
        v[i] = val


@njit(**_OPTS)
def _sce_weights(yb, swb, cw, ign_val, has_ignore, w):
    has_sw = swb.shape[0] > 0
    has_cw = cw.shape[0] > 0
    for i in range(yb.shape[0]):
        yi = yb[i]
        ign = has_ignore and yi == ign_val
        wi = swb[i] if has_sw else 1.0
        if has_cw:
            wi = wi * cw[0 if ign else yi]
        if has_ignore:
            wi = wi * (0.0 if ign else 1.0)
        w[i] = wi


@njit(**_OPTS)
def _view(a, r0, r1):
    """a[r0:r1], or a itself when it is an absent (zero-length) array."""
    return a[r0:r1] if a.shape[0] > 0 else a[0:0]


@njit(**_OPTS)
def _sce_finish(yb, sw, cw, ign_val, has_ignore, v, nan_omit, r0, nr, out, lp, wp, b,
                block_rows):
    weighted = sw.shape[0] > 0 or cw.shape[0] > 0 or has_ignore
    w = np.empty(nr if weighted else 0)  # length 0: every weight is 1
    if weighted:
        _sce_weights(yb, _view(sw, r0, r0 + nr), cw, ign_val, has_ignore, w)
    _emit(v, w, nan_omit, r0, nr, out, lp, wp, b, block_rows)


@njit(**_POPTS)
def sparse_ce_logits(x, y, sw, cw, ignore_index, has_ignore, label_smoothing, z_loss, nan_omit,
                     block_rows, out, lp, wp, like, scale, g, h):
    """Forward; with a non-empty ``g`` also the fused gradient (see the gradients section)."""
    n, C = x.shape
    nb = (n + block_rows - 1) // block_rows
    want_g = g.shape[0] > 0
    for bb in prange(nb):
        b = np.int64(bb)  # the parfor index is unsigned: keep one helper specialisation
        r0 = b * block_rows
        r1 = min(n, r0 + block_rows)
        nr = r1 - r0
        xb = widen(x[r0:r1])
        yb = y[r0:r1]
        v = empty_values(x, nr)
        f = np.empty((3, nr))
        _sce_logits_block(xb, yb, label_smoothing, z_loss, ignore_index, has_ignore, like, v,
                          f[0], f[1], f[2])
        _sce_finish(yb, sw, cw, ignore_index, has_ignore, v, nan_omit, r0, nr, out, lp, wp, b,
                    block_rows)
        if want_g:
            _sce_grad_block(xb, yb, _view(sw, r0, r1), cw, ignore_index, has_ignore,
                            label_smoothing, z_loss, scale, f[0], f[1], f[2], g[r0:r1],
                            _view(h, r0, r1), like)


@njit(**_POPTS)
def sparse_ce_probs(x, y, sw, cw, ignore_index, has_ignore, label_smoothing, clip_mode, cst,
                    nan_omit, block_rows, out, lp, wp):
    n = x.shape[0]
    nb = (n + block_rows - 1) // block_rows
    for bb in prange(nb):
        b = np.int64(bb)  # the parfor index is unsigned: keep one helper specialisation
        r0 = b * block_rows
        r1 = min(n, r0 + block_rows)
        nr = r1 - r0
        yb = y[r0:r1]
        v = empty_values(x, nr)
        _sce_probs_rows(widen(x[r0:r1]), yb, label_smoothing, clip_mode, cst, ignore_index,
                        has_ignore, v)
        _sce_finish(yb, sw, cw, ignore_index, has_ignore, v, nan_omit, r0, nr, out, lp, wp, b,
                    block_rows)


# ---------------------------------------------------------------------- categorical

@njit(**_OPTS)
def _cce_logits_block(xb, tb, cw, ls, like, v, shift, L, st):
    nr, C = xb.shape
    has_cw = cw.shape[0] > 0
    u = ls / C
    om = 1.0 - ls
    # need_sx is a runtime False (nr < 0): a literal False would compile another specialisation
    _block_lse(xb, like, nr < 0, shift, L, np.empty(nr), st)
    buf = np.empty(min(C, RCH))
    for i in range(nr):
        row = xb[i]
        trow = tb[i]
        sh = shift[i]
        Li = L[i]
        t = _z8()
        for a in range(0, C, RCH):
            k = min(C, a + RCH) - a
            for j in range(k):
                tc = np.float64(trow[a + j])
                if ls != 0.0:
                    tc = om * tc + u
                if has_cw:
                    tc = tc * cw[a + j]
                nll = (sh - np.float64(row[a + j])) + Li
                buf[j] = 0.0 if tc == 0.0 else tc * nll
            t = _lanes_add(t, buf, k)
        v[i] = _lanes_sum(t)


@njit(**_OPTS)
def _cce_probs_rows(xb, tb, cw, ls, mode, cst, v):
    """Categorical CE on probabilities. The clip mode becomes constants of one branch-free
    formula, -max(log(clip(p, plo, phi) + add), floor) (the unused pieces are exact
    no-ops: a clip to [-inf, inf], adding 0, a floor at -inf), and a missing class weight
    a row of ones, so the dense loop vectorises. A row whose targets are mostly zero
    (one-hot) takes only its nonzero entries into the same lanes: a zero target adds
    exactly +0 whatever p is (a no-op on a lane, which is never -0), so this is the same
    value, bit for bit."""
    nr, C = xb.shape
    has_cw = cw.shape[0] > 0
    u = ls / C
    om = 1.0 - ls
    clip = mode == CLIP_EPS or mode == CLIP_KERAS2
    plo = cst[0] if clip else cst[4]
    phi = cst[1] if clip else cst[5]
    add = cst[0] if mode == CLIP_KERAS2 else cst[3]
    floor = -100.0 if mode == CLIP_TORCH else -INF
    like = cst[3]
    cwr = cw if has_cw else np.ones(C)
    sparse_ok = ls == 0.0
    buf = np.empty(min(C, RCH))
    lz = np.empty(8)
    for i in range(nr):
        row = xb[i]
        trow = tb[i]
        nnz = 0
        first = C
        if sparse_ok:  # one vectorised pass: the count and the first index of nonzeros
            for j in range(C):
                nz = trow[j] != 0
                nnz += 1 if nz else 0
                first = min(first, j if nz else C)
        if sparse_ok and nnz * 8 <= C:
            lz[:] = 0.0
            for j in range(first, C):
                if trow[j] != 0:
                    tc = (np.float64(trow[j]) * om + u) * cwr[j]
                    p = row[j]
                    pc = plo if p < plo else p
                    pc = phi if pc > phi else pc
                    lg = log_for(like, np.float64(pc + add))
                    lg = floor if lg < floor else lg
                    lz[j & 7] += 0.0 if tc == 0.0 else tc * -lg
                    nnz -= 1
                    if nnz == 0:  # one-hot: done after its single entry
                        break
            v[i] = _lanes_sum_arr(lz)
        else:
            t = _z8()
            for a in range(0, C, RCH):
                k = min(C, a + RCH) - a
                for j in range(k):
                    tc = (np.float64(trow[a + j]) * om + u) * cwr[a + j]
                    p = row[a + j]
                    pc = plo if p < plo else p
                    pc = phi if pc > phi else pc
                    lg = log_for(like, np.float64(pc + add))
                    lg = floor if lg < floor else lg
                    buf[j] = 0.0 if tc == 0.0 else tc * -lg
                t = _lanes_add(t, buf, k)
            v[i] = _lanes_sum(t)


@njit(**_OPTS)
def _finish_rows(v, sw, nan_omit, r0, nr, out, lp, wp, b, block_rows):
    _emit(v, _view(sw, r0, r0 + nr), nan_omit, r0, nr, out, lp, wp, b, block_rows)


@njit(**_POPTS)
def categorical_ce_logits(x, t, sw, cw, label_smoothing, nan_omit, block_rows, out, lp, wp,
                          like, scale, g, h):
    """Forward; with a non-empty ``g`` also the fused gradient."""
    n = x.shape[0]
    nb = (n + block_rows - 1) // block_rows
    want_g = g.shape[0] > 0
    for bb in prange(nb):
        b = np.int64(bb)  # the parfor index is unsigned: keep one helper specialisation
        r0 = b * block_rows
        r1 = min(n, r0 + block_rows)
        nr = r1 - r0
        xb = widen(x[r0:r1])
        tb = t[r0:r1]
        v = empty_values(x, nr)
        f = np.empty((3, nr))
        _cce_logits_block(xb, tb, cw, label_smoothing, like, v, f[0], f[1], f[2])
        _finish_rows(v, sw, nan_omit, r0, nr, out, lp, wp, b, block_rows)
        if want_g:
            _cce_grad_block(xb, tb, _view(sw, r0, r1), cw, label_smoothing, scale, f[0], f[1],
                            f[2], g[r0:r1], _view(h, r0, r1), like)


@njit(**_POPTS)
def categorical_ce_probs(x, t, sw, cw, label_smoothing, clip_mode, cst, nan_omit, block_rows,
                         out, lp, wp):
    n = x.shape[0]
    nb = (n + block_rows - 1) // block_rows
    for bb in prange(nb):
        b = np.int64(bb)  # the parfor index is unsigned: keep one helper specialisation
        r0 = b * block_rows
        r1 = min(n, r0 + block_rows)
        v = empty_values(x, r1 - r0)
        _cce_probs_rows(widen(x[r0:r1]), t[r0:r1], cw, label_smoothing, clip_mode, cst, v)
        _finish_rows(v, sw, nan_omit, r0, r1 - r0, out, lp, wp, b, block_rows)


# ------------------------------------------------------------------------------ BCE

@njit(**_OPTS)
def _bce_logits(xb, zb, pwb, ls, like, v, eb):
    """Stable BCE on logits in sub-chunks of SUB elements, two passes each: exp(-|x|)
    into ``eb``, then log1p and the rest. Two short dependency chains keep more
    iterations in flight than one long one (about 1.4x faster)."""
    has_pw = pwb.shape[0] > 0
    n = xb.shape[0]
    for a in range(0, n, SUB):
        b = min(n, a + SUB)
        xs = xb[a:b]
        zs = zb[a:b]
        vs = v[a:b]
        ps = pwb[a:b]
        for i in range(b - a):
            eb[i] = exp_neg_for(like, -abs(np.float64(xs[i])))
        for i in range(b - a):
            x64 = np.float64(xs[i])
            zc = np.float64(zs[i])
            if ls != 0.0:
                zc = zc * (1.0 - ls) + 0.5 * ls
            pwi = ps[i] if has_pw else 1.0
            g = log1p_unit_for(like, eb[i])  # softplus(-|x|)
            c = pwi * zc + (1.0 - zc)  # = 1 + (pw-1)*z' without cancellation
            ca = 1.0 - zc
            cb = -pwi * zc
            # a zero coefficient removes its term (x = +inf, z' = 1 and x = -inf, z' = 0 give 0)
            lin = (0.0 if ca == 0.0 else ca * x64) if x64 >= 0 else (0.0 if cb == 0.0 else cb * x64)
            val = lin + c * g
            vs[i] = x64 if x64 != x64 else val


@njit(**_OPTS)
def _bce_probs_log1m(xs, zs, ps, oml, hls, floor, like, vs):
    """CLIP_NONE / CLIP_TORCH (floor -inf / -100): -log(p) and -log1p(-p), each log
    clamped at ``floor`` (a clamp at -inf changes nothing). Branch-free: vectorises."""
    for i in range(xs.shape[0]):
        p = xs[i]
        p64 = np.float64(p)
        zc = np.float64(zs[i]) * oml + hls  # = z exactly when ls == 0 (up to the sign of 0)
        a = ps[i] * zc
        bq = 1.0 - zc
        l1 = log_for(like, p64)
        l1 = floor if l1 < floor else l1
        l2 = log1p_for(like, -p64)
        l2 = floor if l2 < floor else l2
        val = (0.0 if a == 0.0 else a * -l1) + (0.0 if bq == 0.0 else bq * -l2)
        vs[i] = NAN if p != p else val


@njit(**_OPTS)
def _bce_probs_clip(xs, zs, ps, oml, hls, lo, hi, one, add, like, vs):
    """CLIP_EPS (add 0) / CLIP_KERAS2 (add eps): p clipped to [lo, hi], then -log(p + add)
    and -log((1 - p) + add), the clip and additions in x's dtype (adding 0 to the clipped
    p, never -0, changes nothing). Branch-free: vectorises."""
    for i in range(xs.shape[0]):
        p = xs[i]
        pc = lo if p < lo else p
        pc = hi if pc > hi else pc
        q = (one - pc) + add
        pc = pc + add
        zc = np.float64(zs[i]) * oml + hls
        a = ps[i] * zc
        bq = 1.0 - zc
        l1 = log_for(like, np.float64(pc))
        l2 = log_for(like, np.float64(q))
        val = (0.0 if a == 0.0 else a * -l1) + (0.0 if bq == 0.0 else bq * -l2)
        vs[i] = NAN if p != p else val


@njit(**_OPTS)
def _bce_probs_log1m_hard(xs, zs, ps, floor, like, vs):
    """:func:`_bce_probs_log1m` for labels 0 / 1 with one log per element instead of two:
    z' = 1 needs only log(p), z' = 0 only log1p(-p) = log(w) + c/w (w = 1 - p rounded, c
    its rounding error), which is log(w) + 0 when c == 0 (every float32 p above ~2**-29,
    most float64 ones). So one log of p or w, selected by the label, gives the bits of
    the two-log loop. Returns False (and the chunk must be redone by the general loop)
    if some element is outside that case: a soft or NaN label, c != 0, a pos_weight
    that does not vanish times 0."""
    ok = True
    for i in range(xs.shape[0]):
        p = xs[i]
        p64 = np.float64(p)
        zc = np.float64(zs[i])
        z1 = zc == 1.0
        a = ps[i] * zc
        bq = 1.0 - zc
        x = -p64
        w = 1.0 + x
        c = x - (w - 1.0)
        ok &= z1 | ((zc == 0.0) & (a == 0.0) & (c == 0.0))
        L = log_for(like, p64 if z1 else w)
        t = L if z1 else _log1p_fix(x, L + 0.0)
        t = floor if t < floor else t
        # the two-term formula with one zero coefficient (bq = 1 - 1 or a = pw * 0 = 0),
        # whose term adds +0.0: (0 if cf == 0 else cf * -t) + 0.0
        cf = a if z1 else bq
        val = (0.0 if cf == 0.0 else cf * -t) + 0.0
        vs[i] = NAN if p != p else val
    return ok


@njit(**_OPTS)
def _bce_probs_clip_hard(xs, zs, ps, lo, hi, one, add, like, vs):
    """:func:`_bce_probs_clip` for labels 0 / 1: one log, of p or of 1 - p selected by the
    label (the other term has a zero coefficient). False: redo with the general loop."""
    ok = True
    for i in range(xs.shape[0]):
        p = xs[i]
        pc = lo if p < lo else p
        pc = hi if pc > hi else pc
        q = (one - pc) + add
        pc = pc + add
        zc = np.float64(zs[i])
        z1 = zc == 1.0
        a = ps[i] * zc
        bq = 1.0 - zc
        ok &= z1 | ((zc == 0.0) & (a == 0.0))
        L = log_for(like, np.float64(pc if z1 else q))
        cf = a if z1 else bq
        val = (0.0 if cf == 0.0 else cf * -L) + 0.0
        vs[i] = NAN if p != p else val
    return ok


@njit(**_OPTS)
def _bce_probs(xb, zb, pwb, ls, mode, cst, v):
    """BCE on probabilities, in sub-chunks of SUB elements: the clip mode picks one of two
    branch-free loops once (with its constants), and a missing pos_weight is a chunk of
    ones, so the loops vectorise. Each value is the reference's formula term by term:
    the same bits as the per-element evaluation with the mode tested inside."""
    n = xb.shape[0]
    has_pw = pwb.shape[0] > 0
    like = cst[3]
    ones = np.ones(0 if has_pw else min(n, SUB))
    oml = 1.0 - ls
    hls = 0.5 * ls
    log1m = mode == CLIP_NONE or mode == CLIP_TORCH
    floor = -100.0 if mode == CLIP_TORCH else -INF
    add = cst[0] if mode == CLIP_KERAS2 else cst[3]
    hard = ls == 0.0  # try the one-log loops (labels 0 / 1) first
    for a in range(0, n, SUB):
        b = min(n, a + SUB)
        ps = pwb[a:b] if has_pw else ones[:b - a]
        if log1m:
            if not (hard and _bce_probs_log1m_hard(xb[a:b], zb[a:b], ps, floor, like, v[a:b])):
                _bce_probs_log1m(xb[a:b], zb[a:b], ps, oml, hls, floor, like, v[a:b])
        else:
            if not (hard and _bce_probs_clip_hard(xb[a:b], zb[a:b], ps, cst[0], cst[1], cst[2],
                                                  add, like, v[a:b])):
                _bce_probs_clip(xb[a:b], zb[a:b], ps, oml, hls, cst[0], cst[1], cst[2], add,
                                like, v[a:b])


@njit(**_OPTS)
def _bce_pos_weights(pw, r0, nr):
    """pw[i % K] for the block's elements (an empty array when there is no pos_weight)."""
    K = pw.shape[0]
    pwb = np.empty(nr if K > 0 else 0)
    if K > 0:
        k = r0 % K
        for i in range(nr):
            pwb[i] = pw[k]
            k += 1
            if k == K:
                k = 0
    return pwb


@njit(**_OPTS)
def _bce_finish(v, sw, sw_div, nan_omit, r0, nr, out, lp, wp, b, block_rows):
    """Weights sw[i // sw_div] (running counters, no division per element; length 0
    when there are none), then emit. Returns the weights."""
    w = np.empty(nr if sw.shape[0] > 0 else 0)
    if sw.shape[0] > 0:
        q = r0 // sw_div
        rem = r0 - q * sw_div
        for i in range(nr):
            w[i] = sw[q]
            rem += 1
            if rem == sw_div:
                rem = 0
                q += 1
    _emit(v, w, nan_omit, r0, nr, out, lp, wp, b, block_rows)
    return w


@njit(**_POPTS)
def bce_logits(x, z, sw, sw_div, pw, label_smoothing, nan_omit, block_rows, out, lp, wp, like,
               scale, g, h):
    """Forward; with a non-empty ``g`` also the fused gradient (:func:`_bce_grad_block`)."""
    n = x.shape[0]
    nb = (n + block_rows - 1) // block_rows
    want_g = g.shape[0] > 0
    for bb in prange(nb):
        b = np.int64(bb)  # the parfor index is unsigned: keep one helper specialisation
        r0 = b * block_rows
        r1 = min(n, r0 + block_rows)
        nr = r1 - r0
        xb = widen(x[r0:r1])
        zb = z[r0:r1]
        pwb = _bce_pos_weights(pw, r0, nr)
        v = empty_values(x, nr)
        _bce_logits(xb, zb, pwb, label_smoothing, like, v, np.empty(SUB))
        w = _bce_finish(v, sw, sw_div, nan_omit, r0, nr, out, lp, wp, b, block_rows)
        if want_g:
            _bce_grad_block(xb, zb, pwb, w, label_smoothing, scale, g[r0:r1], _view(h, r0, r1),
                            like)


@njit(**_POPTS)
def bce_probs(x, z, sw, sw_div, pw, label_smoothing, clip_mode, cst, nan_omit, block_rows, out,
              lp, wp):
    n = x.shape[0]
    nb = (n + block_rows - 1) // block_rows
    for bb in prange(nb):
        b = np.int64(bb)  # the parfor index is unsigned: keep one helper specialisation
        r0 = b * block_rows
        r1 = min(n, r0 + block_rows)
        v = empty_values(x, r1 - r0)
        _bce_probs(widen(x[r0:r1]), z[r0:r1], _bce_pos_weights(pw, r0, r1 - r0), label_smoothing,
                   clip_mode, cst, v)
        _bce_finish(v, sw, sw_div, nan_omit, r0, r1 - r0, out, lp, wp, b, block_rows)


# -------------------------------------------------------------------------------- KL

@njit(**_OPTS)
def _kl_terms(rs, ts, log_input, log_target, clip, lo, one, like, buf):
    """buf[j] = t_j (log t_j - log p_j) of a row chunk (0 where t_j == 0)."""
    for j in range(rs.shape[0]):
        xc = rs[j]
        tc = ts[j]
        if clip:
            xc = lo if xc < lo else xc
            xc = one if xc > one else xc
            tc = lo if tc < lo else tc
            tc = one if tc > one else tc
        lpx = np.float64(xc) if log_input else log_for(like, np.float64(xc))
        if log_target:
            lt = np.float64(tc)
            tt = exp_for(like, lt)
        else:
            tt = np.float64(tc)
            lt = log_for(like, tt)
        buf[j] = 0.0 if tt == 0.0 else tt * (lt - lpx)


@njit(**_OPTS)
def _kl_rows(xb, tb, log_input, log_target, mode, cst, v):
    nr, C = xb.shape
    like = cst[3]
    clip = mode == CLIP_EPS
    buf = np.empty(min(C, RCH))
    for i in range(nr):
        row = xb[i]
        trow = tb[i]
        t = _z8()
        for a in range(0, C, RCH):
            k = min(C, a + RCH) - a
            _kl_terms(row[a:a + k], trow[a:a + k], log_input, log_target, clip, cst[0], cst[2],
                      like, buf)
            t = _lanes_add(t, buf, k)
        v[i] = _lanes_sum(t)


@njit(**_POPTS)
def kl(x, t, sw, log_input, log_target, clip_mode, cst, nan_omit, block_rows, out, lp, wp,
       scale, g, h):
    """Forward; with a non-empty ``g`` also the fused gradient (clip_mode is then 0)."""
    n = x.shape[0]
    nb = (n + block_rows - 1) // block_rows
    want_g = g.shape[0] > 0
    for bb in prange(nb):
        b = np.int64(bb)  # the parfor index is unsigned: keep one helper specialisation
        r0 = b * block_rows
        r1 = min(n, r0 + block_rows)
        nr = r1 - r0
        xb = widen(x[r0:r1])
        v = empty_values(x, nr)
        _kl_rows(xb, t[r0:r1], log_input, log_target, clip_mode, cst, v)
        _finish_rows(v, sw, nan_omit, r0, nr, out, lp, wp, b, block_rows)
        if want_g:
            _kl_grad_block(xb, t[r0:r1], _view(sw, r0, r1), log_input, log_target, scale,
                           g[r0:r1], _view(h, r0, r1), cst[3])


# ------------------------------------------------------------------------------- MSE

@njit(**_OPTS)
def _mse_rows(xb, tb, ow, owsum, v):
    nr, C = xb.shape
    has_ow = ow.shape[0] > 0
    if C == 1:  # one element per row (torch's mse_loss drop-in): one flat, vectorised loop
        xf = xb.reshape(nr)
        tf = tb.reshape(nr)
        if has_ow:
            o0 = ow[0]
            for i in range(nr):
                d = np.float64(xf[i]) - np.float64(tf[i])
                v[i] = (0.0 + d * d * o0) / owsum
        else:
            for i in range(nr):  # (0 + d*d) / 1 is d*d: never -0, NaN stays NaN
                d = np.float64(xf[i]) - np.float64(tf[i])
                v[i] = d * d
        return
    buf = np.empty(min(C, RCH))
    for i in range(nr):
        row = xb[i]
        trow = tb[i]
        t = _z8()
        for a in range(0, C, RCH):
            k = min(C, a + RCH) - a
            if has_ow:
                for j in range(k):
                    d = np.float64(row[a + j]) - np.float64(trow[a + j])
                    buf[j] = d * d * ow[a + j]
            else:
                for j in range(k):
                    d = np.float64(row[a + j]) - np.float64(trow[a + j])
                    buf[j] = d * d
            t = _lanes_add(t, buf, k)
        v[i] = _lanes_sum(t) / (owsum if has_ow else C)


@njit(**_POPTS)
def mse(x, t, ow, owsum, sw, nan_omit, block_rows, out, lp, wp, scale, g, h):
    """Forward; with a non-empty ``g`` also the fused gradient. ``owsum``: numpy's sum
    of the output weights, or C without them."""
    n = x.shape[0]
    nb = (n + block_rows - 1) // block_rows
    want_g = g.shape[0] > 0
    for bb in prange(nb):
        b = np.int64(bb)  # the parfor index is unsigned: keep one helper specialisation
        r0 = b * block_rows
        r1 = min(n, r0 + block_rows)
        nr = r1 - r0
        xb = widen(x[r0:r1])
        v = empty_values(x, nr)
        _mse_rows(xb, t[r0:r1], ow, owsum, v)
        _finish_rows(v, sw, nan_omit, r0, nr, out, lp, wp, b, block_rows)
        if want_g:
            _mse_grad_block(xb, t[r0:r1], ow, owsum, _view(sw, r0, r1), scale, g[r0:r1],
                            _view(h, r0, r1))


# ------------------------------------------------------------------------ gradients
# Fused loss + gradient (+ diagonal Hessian): each block first runs the forward code
# (the same helpers as the forward kernels, so lp/wp are the same bits), then writes
# g (and h) = s_i * derivative, s_i = scale * w_i, in float64 rounded once.
# Where the reference formula cancels (p - 1 for the top class of a confident row),
# the float64 value is formed without the cancellation: for x_j equal to the row max,
# p_j = 1 / (1 + st) and 1 - p_j = st / (1 + st) exactly as the forward sum has them.


@njit(**_OPTS)
def _sce_grad_block(xb, yb, swb, cw, ign_val, has_ignore, ls, z_loss, scale, shift, L, st, gb,
                    hb, like):
    nr, C = xb.shape
    has_h = hb.shape[0] > 0
    has_sw = swb.shape[0] > 0
    has_cw = cw.shape[0] > 0
    u = ls / C
    for i in range(nr):
        yi = yb[i]
        ign = has_ignore and yi == ign_val
        ys = 0 if ign else yi
        s = scale
        if has_sw:
            s = s * swb[i]
        if has_cw:
            s = s * cw[ys]
        if ign:
            s = 0.0
        row = xb[i]
        gr = gb[i]
        sh = shift[i]
        Li = L[i]
        sti = st[i]
        fin = sti == sti  # the row max is finite
        pm = 1.0 / (1.0 + sti)
        qm = sti / (1.0 + sti)
        k = 1.0 + 2.0 * z_loss * (sh + Li)
        for j in range(C):
            d = np.float64(row[j]) - sh
            top = fin and d == 0.0
            p = pm if top else exp_for(like, d - Li)
            q = qm if top else 1.0 - p
            gj = p * k - u
            if j == ys:
                gj = ((k - 1.0) - qm * k) + (ls - u) if top else gj - (1.0 - ls)
            gr[j] = _cn(s * gj)
            if has_h:
                hb[i, j] = _cn(s * (p * q * k + 2.0 * z_loss * p * p))


@njit(**_OPTS)
def _cce_grad_block(xb, tb, swb, cw, ls, scale, shift, L, st, gb, hb, like):
    nr, C = xb.shape
    has_h = hb.shape[0] > 0
    has_sw = swb.shape[0] > 0
    has_cw = cw.shape[0] > 0
    u = ls / C
    om = 1.0 - ls
    buf = np.empty(min(C, RCH))
    for i in range(nr):
        s = scale * swb[i] if has_sw else scale
        row = xb[i]
        trow = tb[i]
        t = _z8()
        for a in range(0, C, RCH):
            k = min(C, a + RCH) - a
            for j in range(k):
                tc = np.float64(trow[a + j])
                if ls != 0.0:
                    tc = om * tc + u
                if has_cw:
                    tc = tc * cw[a + j]
                buf[j] = tc
            t = _lanes_add(t, buf, k)
        A = _lanes_sum(t)
        sh = shift[i]
        Li = L[i]
        sti = st[i]
        fin = sti == sti
        pm = 1.0 / (1.0 + sti)
        qm = sti / (1.0 + sti)
        gr = gb[i]
        for j in range(C):
            tc = np.float64(trow[j])
            if ls != 0.0:
                tc = om * tc + u
            if has_cw:
                tc = tc * cw[j]
            d = np.float64(row[j]) - sh
            top = fin and d == 0.0
            p = pm if top else exp_for(like, d - Li)
            q = qm if top else 1.0 - p
            gr[j] = _cn(s * ((A - tc) - A * qm if top else A * p - tc))
            if has_h:
                hb[i, j] = _cn(s * (A * p * q))


@njit(**_OPTS)
def _bce_grad_block(xb, zb, pwb, w, ls, scale, gb, hb, like):
    """sigmoid-form derivative without cancellation: with e = exp(-|x|),
    g = ((1-z') - pw z' e) / (1+e) for x >= 0 and ((1-z') e - pw z') / (1+e) below,
    h = c e / (1+e)**2 (= c s (1-s)), c = pw z' + (1-z')."""
    has_h = hb.shape[0] > 0
    has_pw = pwb.shape[0] > 0
    has_w = w.shape[0] > 0
    for i in range(xb.shape[0]):
        x64 = np.float64(xb[i])
        zc = np.float64(zb[i])
        if ls != 0.0:
            zc = zc * (1.0 - ls) + 0.5 * ls
        pwi = pwb[i] if has_pw else 1.0
        e = exp_for(like, -abs(x64))
        den = 1.0 + e
        c = pwi * zc + (1.0 - zc)
        a = pwi * zc
        gi = ((1.0 - zc) - a * e) / den if x64 >= 0 else ((1.0 - zc) * e - a) / den
        s = scale * w[i] if has_w else scale
        gb[i] = _cn(s * gi)
        if has_h:
            hb[i] = _cn(s * (c * e / (den * den)))


@njit(**_OPTS)
def _kl_grad_block(xb, tb, swb, log_input, log_target, scale, gb, hb, like):
    nr, C = xb.shape
    has_h = hb.shape[0] > 0
    has_sw = swb.shape[0] > 0
    for i in range(nr):
        s = scale * swb[i] if has_sw else scale
        row = xb[i]
        trow = tb[i]
        gr = gb[i]
        for j in range(C):
            tt = np.float64(trow[j])
            if log_target:
                tt = exp_for(like, tt)
            x64 = np.float64(row[j])
            if log_input:
                gj = -tt
                hj = 0.0
            else:
                gj = 0.0 if tt == 0.0 else -tt / x64
                hj = 0.0 if tt == 0.0 else tt / (x64 * x64)
            gr[j] = _cn(s * gj)
            if has_h:
                hb[i, j] = _cn(s * hj)


@njit(**_OPTS)
def _mse_grad_block(xb, tb, ow, owsum, swb, scale, gb, hb):
    nr, C = xb.shape
    has_h = hb.shape[0] > 0
    has_sw = swb.shape[0] > 0
    has_ow = ow.shape[0] > 0
    for i in range(nr):
        s = scale * swb[i] if has_sw else scale
        row = xb[i]
        trow = tb[i]
        gr = gb[i]
        for j in range(C):
            wj = ow[j] if has_ow else 1.0
            d = np.float64(row[j]) - np.float64(trow[j])
            gr[j] = _cn(s * (2.0 * wj * d / owsum))
            if has_h:
                hb[i, j] = _cn(s * (2.0 * wj / owsum))


# -------------------------------------------------------------- logsumexp / softmax

@njit(**_POPTS)
def _row_lse(x, like, shift, L):
    """shift[r], L[r] of every row; each row's sum is the ordered sum of SEG-long segment
    partials, and the (row, segment) pieces are spread over the threads, so one long row
    uses every thread and the bits never depend on how the work was split."""
    N, C = x.shape
    nseg = (C + SEG - 1) // SEG
    if nseg == 1:  # rows of one segment: max and sum per row while it is in L1, G rows a task
        G = max(1, LSE_TASK // C)
        for kk in prange((N + G - 1) // G):
            buf = np.empty(min(C, RCH))
            r0 = np.int64(kk) * G
            xt = widen(x[r0:min(N, r0 + G)])
            for r in range(r0, min(N, r0 + G)):
                row = xt[r - r0]
                mr = _row_max(row)
                if mr - mr == 0:
                    s, cnt = _sum_exp(row, mr, like, buf)
                    shift[r] = np.float64(mr)
                    L[r] = log1p64(s + np.float64(cnt - 1))
                else:
                    shift[r] = 0.0
                    L[r] = _special_L(mr)
        return
    tot = N * nseg
    pm = empty_values(x, tot)
    for k in prange(tot):
        r = k // nseg
        a = (k - r * nseg) * SEG
        pm[k] = _row_max(widen(x[r][a:min(C, a + SEG)]))
    m = empty_values(x, N)
    for r in range(N):
        mr = pm[r * nseg]
        for q in range(1, nseg):
            mr = fmaxnan(mr, pm[r * nseg + q])
        m[r] = mr
    ps = np.empty(tot)
    pc = np.empty(tot, np.int64)
    for k in prange(tot):
        r = k // nseg
        a = (k - r * nseg) * SEG
        mr = m[r]
        if mr - mr == 0:
            ps[k], pc[k] = _sum_exp(widen(x[r][a:min(C, a + SEG)]), mr, like, np.empty(RCH))
    for r in prange(N):
        mr = m[r]
        if mr - mr == 0:
            s = ps[r * nseg]
            cnt = pc[r * nseg]
            for q in range(1, nseg):
                s = s + ps[r * nseg + q]
                cnt += pc[r * nseg + q]
            shift[r] = np.float64(mr)
            L[r] = log1p64(s + np.float64(cnt - 1))
        else:
            shift[r] = 0.0
            L[r] = _special_L(mr)


@njit(**_POPTS)
def logsumexp_rows(x, out, like):
    N = x.shape[0]
    shift = np.empty(N)
    L = np.empty(N)
    _row_lse(x, like, shift, L)
    for r in prange(N):
        out[r] = _cn(shift[r] + L[r])


@njit(**_OPTS)
def _softmax_piece(row, sr, lr, log, like, o):
    """o = the (log-)softmax of ``row`` given its row's shift and L."""
    if log:
        for j in range(row.shape[0]):
            o[j] = _cn((np.float64(row[j]) - sr) - lr)
    elif lr == INF:  # a row with +inf has no finite softmax: all NaN (SciPy, reference)
        for j in range(row.shape[0]):
            o[j] = NAN
    else:
        for j in range(row.shape[0]):
            o[j] = _cn(exp_for(like, (np.float64(row[j]) - sr) - lr))


@njit(**_POPTS)
def softmax_rows(x, out, log, like):
    N, C = x.shape
    shift = np.empty(N)
    L = np.empty(N)
    _row_lse(x, like, shift, L)
    nseg = (C + SEG - 1) // SEG
    if nseg == 1:  # G whole rows a task, as in _row_lse
        G = max(1, LSE_TASK // C)
        for kk in prange((N + G - 1) // G):
            r0 = np.int64(kk) * G
            r1 = min(N, r0 + G)
            xt = widen(x[r0:r1])
            for r in range(r0, r1):
                _softmax_piece(xt[r - r0], shift[r], L[r], log, like, out[r])
        return
    for k in prange(N * nseg):
        r = k // nseg
        a = (k - r * nseg) * SEG
        e = min(C, a + SEG)
        _softmax_piece(widen(x[r][a:e]), shift[r], L[r], log, like, out[r][a:e])


# -------------------------------------------------------------------------- validation

CHUNK = 1 << 14
WAVE = 1 << 22


@njit(**_OPTS)
def _first_bad(xs):
    bad = False
    for i in range(xs.shape[0]):
        xi = xs[i]
        bad |= (xi < 0) | (xi > 1)
    if not bad:
        return -1
    for i in range(xs.shape[0]):
        xi = xs[i]
        if xi < 0 or xi > 1:
            return i
    return -1


@njit(**_POPTS)
def first_outside_unit_interval(x):
    n = x.shape[0]
    for w0 in range(0, n, WAVE):
        w1 = min(n, w0 + WAVE)
        nc = (w1 - w0 + CHUNK - 1) // CHUNK
        hit = np.empty(nc, np.int64)
        for k in prange(nc):
            a = w0 + k * CHUNK
            hit[k] = _first_bad(x[a:min(w1, a + CHUNK)])
        for k in range(nc):
            if hit[k] >= 0:
                return w0 + k * CHUNK + hit[k]
    return -1


# ----------------------------------------------------------------------- row argmax

ARG_ROWS = 512   # rows per parallel task of argmax_rows
ARG_SEG = 256    # elements per segment of a wide row


@njit(**_OPTS)
def _argmax_narrow(xb, out):
    """First maximum of each short row, first NaN winning: a branch-free select chain per
    row (no data-dependent branches). A block without NaN (checked first, vectorised
    over the whole contiguous block) takes the chain without the NaN tests."""
    nr, C = xb.shape
    flat = xb.reshape(nr * C)
    has_nan = False
    for i in range(nr * C):
        has_nan |= flat[i] != flat[i]
    if has_nan:
        for i in range(nr):
            row = xb[i]
            m = row[0]
            k = 0
            for j in range(1, C):
                v = row[j]
                better = (v > m) | ((v != v) & (m == m))
                m = v if better else m
                k = j if better else k
            out[i] = k
    else:
        for i in range(nr):
            row = xb[i]
            m = row[0]
            k = 0
            for j in range(1, C):
                v = row[j]
                better = v > m
                m = v if better else m
                k = j if better else k
            out[i] = k


def _okey(v):
    """A signed integer with the order of the float ``v`` (``-0.0`` first made ``+0.0``, so
    that equal floats have equal keys); NaNs map outside [key(-inf), key(inf)]."""


def _abits(v):
    """The IEEE bits of ``|v|`` as a signed integer: above those of inf exactly for NaN."""


@overload(_okey)
def _okey_impl(v):
    if v == types.float32:
        def impl(v):
            b = bits32(v + np.float32(0.0))
            return b ^ ((b >> 31) & np.int32(0x7FFFFFFF))
        return impl
    if v == types.float64:
        def impl(v):
            b = bits64(v + 0.0)
            return b ^ ((b >> 63) & np.int64(0x7FFFFFFFFFFFFFFF))
        return impl
    return None


@overload(_abits)
def _abits_impl(v):
    if v == types.float32:
        return lambda v: bits32(v) & np.int32(0x7FFFFFFF)
    if v == types.float64:
        return lambda v: bits64(v) & np.int64(0x7FFFFFFFFFFFFFFF)
    return None


@njit(**_OPTS)
def _argmax_wide(row):
    """First index of the maximum, or of the first NaN. One pass over the row in
    segments, each reduced (vectorised integer maxima) to its largest order key and its
    largest |bits| (above inf's exactly when it holds a NaN): the first segment with a
    NaN ends the pass, otherwise the first segment reaching the largest key is kept;
    then the first index of that segment holding the key (a min-index reduction)."""
    C = row.shape[0]
    inf_bits = _abits(row[0] - row[0] + INF)
    best = _okey(row[0])
    bs = 0
    for a in range(0, C, ARG_SEG):
        seg = row[a:min(C, a + ARG_SEG)]
        km = _okey(seg[0])
        am = _abits(seg[0])
        for j in range(1, seg.shape[0]):
            v = seg[j]
            km = max(km, _okey(v))
            am = max(am, _abits(v))
        if am > inf_bits:  # the first NaN of the row is in this segment
            first = seg.shape[0]
            for j in range(seg.shape[0]):  # a vectorised min-index reduction
                first = min(first, j if seg[j] != seg[j] else seg.shape[0])
            return a + first
        if km > best:
            best = km
            bs = a
    seg = row[bs:min(C, bs + ARG_SEG)]
    first = seg.shape[0]
    for j in range(seg.shape[0]):  # a vectorised min-index reduction
        first = min(first, j if _okey(seg[j]) == best else seg.shape[0])
    return bs + first


@njit(**_POPTS)
def argmax_rows(x, out):
    N, C = x.shape
    nt = (N + ARG_ROWS - 1) // ARG_ROWS
    for kk in prange(nt):
        k = np.int64(kk)
        r0 = k * ARG_ROWS
        r1 = min(N, r0 + ARG_ROWS)
        if C <= SMALL_C:
            _argmax_narrow(x[r0:r1], out[r0:r1])
        else:
            for r in range(r0, r1):
                out[r] = _argmax_wide(x[r])


# ------------------------------------------------------------ scipy.special element-wise
# Computed in float64 with the full-precision vectorised log, rounded once to x's dtype.

EW_CHUNK = 4096


@njit(**_OPTS)
def _xlogy_chunk(xs, ys, os):
    for i in range(xs.shape[0]):
        x = np.float64(xs[i])
        y = np.float64(ys[i])
        r = x * log64(y)
        os[i] = _cn(0.0 if (x == 0.0) & (y == y) else r)


@njit(**_OPTS)
def _kl_div_chunk(xs, ys, os):
    for i in range(xs.shape[0]):
        x = np.float64(xs[i])
        y = np.float64(ys[i])
        r = x * log64(x / y) - x + y
        res = r if (x > 0.0) & (y > 0.0) else (y if (x == 0.0) & (y >= 0.0) else INF)
        os[i] = NAN if (x != x) | (y != y) else _cn(res)


@njit(**_OPTS)
def _rel_entr_chunk(xs, ys, os):
    """x log(x/y) as SciPy >= 1.15: log1p((x-y)/y) for x/y in (0.5, 2), log(x/y) when
    x/y is normal; both share one log evaluation (log1p is log(w) + c/w with w = 1 + d
    rounded and c its rounding error, as :func:`_math.log1p64`). The rare x/y that
    under- or overflows takes log(x) - log(y) in a scalar fix-up pass."""
    bad = False
    for i in range(xs.shape[0]):
        x = np.float64(xs[i])
        y = np.float64(ys[i])
        r = x / y
        near = (r > 0.5) & (r < 2.0)
        normal = (r > MIN_NORMAL) & (r < INF)
        d = (x - y) / y
        w = 1.0 + d
        c = d - (w - 1.0)
        u = w if near else r
        f, kd = _log_reduce(u)
        L = _log_special(u, _log1p_red64(f, kd, c / w if near else 0.0))
        pos = (x > 0.0) & (y > 0.0)
        bad |= pos & ~(near | normal)
        res = x * L if pos else (0.0 if (x == 0.0) & (y >= 0.0) else INF)
        os[i] = NAN if (x != x) | (y != y) else _cn(res)
    if bad:
        for i in range(xs.shape[0]):
            x = np.float64(xs[i])
            y = np.float64(ys[i])
            if x > 0.0 and y > 0.0:
                r = x / y
                if not ((r > 0.5 and r < 2.0) or (r > MIN_NORMAL and r < INF)):
                    os[i] = _cn(x * (log64(x) - log64(y)))


@njit(**_POPTS)
def elementwise(op, x, y, out):
    n = x.shape[0]
    nc = (n + EW_CHUNK - 1) // EW_CHUNK
    for kk in prange(nc):
        a = np.int64(kk) * EW_CHUNK
        b = min(n, a + EW_CHUNK)
        if op == EW_XLOGY:
            _xlogy_chunk(x[a:b], y[a:b], out[a:b])
        elif op == EW_REL_ENTR:
            _rel_entr_chunk(x[a:b], y[a:b], out[a:b])
        else:
            _kl_div_chunk(x[a:b], y[a:b], out[a:b])
