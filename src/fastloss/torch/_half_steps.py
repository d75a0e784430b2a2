"""PyTorch's half-precision losses step by step, for ``fastloss.torch`` on half tensors.

PyTorch computes a float16/bfloat16 loss as a chain of ATen ops, and each op rounds its
result to the half dtype (its arithmetic is float32: the c10::Half/BFloat16 operators and
the vectorised kernels widen, compute and round). Rounding once at the end, as fastloss's
float32 kernels do, differs from that by more than half precision's tolerance where the
chain cancels or accumulates. These functions repeat PyTorch's chain on float32 arrays that
hold half values ("widened"); ``rnd`` is one rounding to the half dtype. The compositions
are those of PyTorch's CPU sources (checked against torch 2.13 bit for bit in
``tests/dropins/test_torch_half_steps.py``):

* ``log_softmax`` (aten/src/ATen/native/cpu/SoftMaxKernel.cpp): along the last dim
  (``_vec_log_softmax_lastdim``) the row max and ``log(sum exp(x - max))`` are kept in
  half-precision buffers, so ``x - max - half(log(half(sum)))``, rounded; along any other
  dim all in float32, rounded once.
* ``nll_loss`` (LossNLL.cpp ``nll_loss_out_frame``, LossNLL2d.cpp): "none" is
  ``half(-x_y * w_y)``; "sum"/"mean" add ``-half(x_y * w_y)`` into eight half-precision
  partial sums (a cascade whose levels flush every 16**k target positions), the weights
  likewise; without weights the divisor is the count rounded to half.
* ``cross_entropy`` = ``nll_loss(log_softmax(x))``; label smoothing and probability targets
  are elementwise tensor ops (LossNLL.cpp), each rounded.
* ``binary_cross_entropy_with_logits`` (Loss.cpp): ``(1 - t) * x - log_sigmoid(x) * lw``
  op by op; ``mse_loss``: ``half(half(x - t)**2)`` (the vectorised half kernel rounds the
  difference).
* Reductions of a half tensor (``sum``, ``mean``) accumulate in float32 and round once.
* A Python number in ``tensor * c`` is used as float32; in ``tensor + c`` it is rounded to
  half first.
"""

import numpy as np

from fastloss._dispatch import resolve_threads
from fastloss._half import is_half, widen

# bfloat16 rounding as c10::BFloat16 (round to nearest even on the top 16 bits; NaN -> 0x7FC0)
_BF16_NAN = np.uint32(0x7FC00000)


def rnd(a, half):
    """``a`` (float32) rounded to ``half`` ("float16" or "bfloat16"), as float32: round to
    nearest even on the top bits, as c10's conversions (NumPy's float16 cast is 3x slower,
    so only values outside float16's normal range take it)."""
    a = np.asarray(a, dtype=np.float32)
    flat = np.ascontiguousarray(a).reshape(-1)  # 1-D: array ops wrap silently
    u = flat.view(np.uint32)
    drop = 16 if half == "bfloat16" else 13  # mantissa bits: 7 of bfloat16, 10 of float16
    r = u >> np.uint32(drop)
    r &= np.uint32(1)
    r += np.uint32((1 << (drop - 1)) - 1)
    r += u
    r &= np.uint32(~((1 << drop) - 1) & 0xFFFFFFFF)
    if half == "bfloat16":
        odd = flat != flat  # NaN -> the canonical 0x7FC0
        fix = _BF16_NAN
    else:  # subnormal, zero, overflowing or non-finite float16: NumPy's cast
        av = np.abs(flat)
        odd = (av < np.float32(2.0 ** -14)) | ~(av < np.float32(32768.0))
        with np.errstate(over="ignore", invalid="ignore"):
            fix = flat[odd].astype(np.float16).astype(np.float32).view(np.uint32)
    if odd.any():
        r[odd] = fix
    return r.view(np.float32).reshape(a.shape)


def half_sum(a, half, axis=None):
    """A half tensor's ``sum``: float accumulation, one rounding."""
    return rnd(np.sum(a, axis=axis, dtype=np.float64).astype(np.float32), half)


# elements widened at a time (a row at least): no float32 copy of a whole half input; the
# chains hold up to ~10 float32 temporaries of a chunk per thread, kept in L2
_CHUNK = 1 << 14


def _widen_copy(a):
    """A new float32 array of a half (or float32) array's values."""
    out = np.empty(a.shape, np.float32)
    if a.size:
        if is_half(a.dtype):
            widen(a, out)
        else:
            out[...] = a
    return out


def _run_chunks(n, step, fn):
    """``fn(a, b)`` for the chunks ``[a, b)`` of ``range(n)``, on fastloss's threads (NumPy
    releases the GIL); every chunk writes its own outputs, so the result never depends on
    the thread count."""
    spans = [(a, min(a + step, n)) for a in range(0, n, step)]
    nt = min(resolve_threads(None), len(spans))

    def run(group):
        for a, b in group:
            fn(a, b)

    if nt <= 1:
        return run(spans)
    from concurrent.futures import ThreadPoolExecutor

    per = -(-len(spans) // nt)  # one contiguous run of chunks per thread
    with ThreadPoolExecutor(nt) as pool:
        for f in [pool.submit(run, spans[i:i + per]) for i in range(0, len(spans), per)]:
            f.result()


def _log_sum(s, half, lastdim):
    """The ``L`` PyTorch's half ``log_softmax`` subtracts from ``x - max``, given the float32
    ``s = sum(exp(x - max))``: the last-dim kernel keeps ``s`` and ``log(s)`` in half
    buffers; the other-dim kernel keeps float32."""
    return rnd(np.log(rnd(s, half)), half) if lastdim else np.log(s)


def _softmax_part(x2, a, b, half, lastdim):
    """Rows ``[a, b)`` of PyTorch's half ``log_softmax`` along the rows of ``x2`` (class
    last): ``d = x - max`` and the ``L`` it subtracts, float32; the result is
    ``rnd(d - L)``."""
    d, s = _row_sums(x2, a, b)
    return d, _log_sum(s[:, None], half, lastdim)


def _row_sums(x2, a, b, cols=None):
    """``d = x - max`` of rows ``[a, b)`` and ``s = sum(exp(d))`` per row (float32), or,
    with ``cols``, ``d`` only at those columns (``d`` is reused for the exponentials)."""
    d = _widen_copy(x2[a:b])
    m = d.max(axis=1, keepdims=True)
    np.subtract(d, m, out=d)
    if cols is None:
        return d, np.exp(d).sum(axis=1, dtype=np.float32)
    picked = d[np.arange(b - a), cols]
    return picked, np.exp(d, out=d).sum(axis=1, dtype=np.float32)


def _row_step(C, chunk=_CHUNK):
    return max(1, chunk // max(C, 1))


def log_softmax(x, axis, half):
    """``torch.log_softmax(x, axis)`` of a half tensor (``x``: half view or float32 values,
    non-empty), as float32 values whose rounding to ``half`` is PyTorch's result."""
    axis = axis % x.ndim
    lastdim = axis == x.ndim - 1
    moved = np.moveaxis(x, axis, -1)
    x2 = np.ascontiguousarray(moved).reshape(-1, moved.shape[-1])
    out = np.empty(x2.shape, np.float32)

    def rows(a, b):
        d, L = _softmax_part(x2, a, b, half, lastdim)
        np.subtract(d, L, out=out[a:b])  # rounded by the caller's cast to the half dtype

    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        _run_chunks(x2.shape[0], _row_step(x2.shape[1]), rows)
    return np.moveaxis(out.reshape(moved.shape), -1, axis)


def _ceil_log2(n):
    return 1 if n <= 2 else int(n - 1).bit_length()


def _segment_sums(vals, seg, n_seg, half):
    """Sequential half-precision sums (from 0) of ``vals`` within each segment (``seg``:
    non-decreasing segment ids)."""
    acc = np.zeros(n_seg, np.float32)
    if vals.size == 0:
        return acc
    starts = np.searchsorted(seg, np.arange(n_seg))
    rank = np.arange(vals.size) - starts[seg]
    grid = np.zeros((n_seg, int(rank.max()) + 1), np.float32)
    grid[seg, rank] = vals  # zeros after a segment's end add nothing
    for k in range(grid.shape[1]):
        acc = rnd(acc + grid[:, k], half)
    return acc


def cascade_sum(vals, pos, n, half):
    """The half-precision cascade sum of ``nll_loss``'s reductions.

    ``vals[k]`` is added at flat target position ``pos[k]`` (increasing) of ``n``. Level 0
    accumulates; at a position whose low ``(j+1)*p`` bits are zero level ``j`` is added into
    level ``j+1`` and cleared (``p = max(4, ceil(log2 n) // 8)``); the end result adds the 8
    levels from 0 upwards. Every addition rounds to half.
    """
    power = max(4, _ceil_log2(n) // 8)
    vals = np.asarray(vals, np.float32)
    levels = []
    for j in range(7):
        push = (pos & ((1 << ((j + 1) * power)) - 1)) == 0
        n_push = int(np.count_nonzero(push))
        sums = _segment_sums(vals, np.cumsum(push) - push, n_push + 1, half)
        levels.append(sums[n_push])  # after the last flush: stays at level j
        pos, vals = pos[push], sums[:n_push]
    levels.append(_segment_sums(vals, np.zeros(vals.size, np.int64), 1, half)[0])
    total = np.float32(0)
    for v in levels:
        total = rnd(total + v, half)
    return total


def nll_loss(x_y, y, cw, ignore_index, reduction, half, batch):
    """``nll_loss`` of half log-probabilities, given at the targets: ``x_y`` (float32 half
    values, any value where ignored), ``y`` flat int64 targets (in range or ignored), ``cw``
    float32 half class weights or None."""
    n = y.size
    valid = y != ignore_index
    w_y = np.ones(n, np.float32) if cw is None else cw[np.where(valid, y, 0)]
    with np.errstate(invalid="ignore", over="ignore"):
        if reduction == "none":
            return np.where(valid, rnd(-x_y * w_y, half), np.float32(0)).reshape(batch)
        pos = np.nonzero(valid)[0]
        terms = -(x_y[pos] if cw is None else rnd(x_y[pos] * w_y[pos], half))
        total = cascade_sum(terms, pos, n, half)
        if reduction == "sum":
            return total
        wsum = (rnd(np.float32(pos.size), half) if cw is None
                else cascade_sum(w_y[pos], pos, n, half))
        with np.errstate(divide="ignore"):
            return rnd(np.float32(total) / np.float32(wsum), half)


def _scalar_mul(a, c, half):
    """A half tensor times a Python number: float32 ``a * float(c)``, rounded."""
    return rnd(a * np.float32(c), half)


def _scalar_add(a, c, half):
    """A half tensor plus a Python number: PyTorch's add rounds the number to half first
    (its mul does not)."""
    return rnd(a + rnd(np.float32(c), half), half)


def cross_entropy_index(x2, y, cw, ignore_index, ls, reduction, half, batch, lastdim):
    """``cross_entropy`` with index targets: ``nll_loss(log_softmax(x))`` (``x2``: rows,
    class last; ``lastdim``: PyTorch's class dim is the input's last)."""
    n, C = x2.shape
    valid = y != ignore_index
    ys = np.where(valid, y, 0)
    lp_y = np.empty(n, np.float32)
    smooth = np.empty(n, np.float32) if ls else None

    s = np.empty(n, np.float32)

    def rows(a, b):
        if not ls:  # only x_y - max per row: L and the rounding for all rows below
            lp_y[a:b], s[a:b] = _row_sums(x2, a, b, ys[a:b])
            return
        d, L = _softmax_part(x2, a, b, half, lastdim)
        lp_y[a:b] = rnd(d[np.arange(b - a), ys[a:b]] - L[:, 0], half)
        lp = rnd(d - L, half)
        prod = lp if cw is None else rnd(lp * cw[None, :], half)
        # PyTorch's sum over the class dim accumulates in float32 too
        smooth[a:b] = -rnd(np.sum(prod, axis=1, dtype=np.float32), half)

    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        # one float32 temporary per chunk without smoothing: 4x larger chunks, less overhead
        _run_chunks(n, _row_step(C, _CHUNK if ls else 4 * _CHUNK), rows)
        if not ls:
            lp_y = rnd(lp_y - _log_sum(s, half, lastdim), half)
    nll = nll_loss(lp_y, y, cw, ignore_index, reduction, half, batch)
    if not ls:
        return nll
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        smooth = np.where(valid, smooth, np.float32(0))
        if reduction == "none":
            ret = smooth.reshape(batch)
        elif reduction == "sum":
            ret = half_sum(smooth, half)
        else:  # divided by the rows' weight sum, or (torch 2.13) their count
            wsum = np.count_nonzero(valid) if cw is None else half_sum(cw[y[valid]], half)
            ret = rnd(half_sum(smooth, half) / np.float32(wsum), half)
        return rnd(_scalar_mul(nll, 1 - ls, half) + _scalar_mul(ret, ls / C, half), half)


def cross_entropy_probs(x2, t2, cw, ls, reduction, half, batch, lastdim,
                        halves=("target", "weight")):
    """``cross_entropy`` with probability targets (``t2``: rows like ``x2``, a half input).

    ``halves``: which of target and weight are ``half`` tensors (the others float32): a
    product rounds to half only if both factors are half, and the result is half only if
    all are (then float32)."""
    n, C = x2.shape
    th = "target" in halves
    wh = th and (cw is None or "weight" in halves)  # the result's dtype is half
    sums = np.empty(n)  # sum_c lp * t' (* w) per row

    def r(v, is_half):
        return rnd(v, half) if is_half else v

    def rows(a, b):
        d, L = _softmax_part(x2, a, b, half, lastdim)
        t = _widen_copy(t2[a:b])
        if ls:
            t = (_scalar_add(_scalar_mul(t, 1 - ls, half), ls / C, half) if th
                 else t * np.float32(1 - ls) + np.float32(ls / C))
        prod = r(rnd(d - L, half) * t, th)
        if cw is not None:
            prod = r(prod * cw[None, :], wh)
        sums[a:b] = np.sum(prod, axis=1, dtype=np.float64)

    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        _run_chunks(n, _row_step(C), rows)
        if reduction == "none":
            return -r(sums.astype(np.float32), wh).reshape(batch)
        total = -r(np.float32(np.sum(sums)), wh)
        if reduction == "sum":
            return total
        return r(np.float32(total / np.float32(n)), wh)


def _elementwise(fn, arrays, shape, reduction, half):
    """``fn(*float32 chunks)`` over the flat broadcast ``arrays`` chunk by chunk, then
    PyTorch's reduction (float accumulation, one rounding to ``half``; None: float32)."""
    flat = [None if a is None else np.broadcast_to(a, shape).reshape(-1) for a in arrays]
    size = int(np.prod(shape, dtype=np.int64))
    out = np.empty(size, np.float32) if reduction == "none" else None
    part = np.zeros(-(-size // _CHUNK))  # per-chunk sums, added in order

    def elems(a, b):
        v = fn(*[None if f is None else _widen_copy(f[a:b]) for f in flat])
        if out is not None:
            out[a:b] = v
        else:
            part[a // _CHUNK] = np.sum(v, dtype=np.float64)

    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        _run_chunks(size, _CHUNK, elems)
        if out is not None:
            return out.reshape(shape)
        total = np.sum(part)  # a NumPy scalar: the mean of nothing is NaN, as PyTorch's
        res = np.float32(total) if reduction == "sum" else np.float32(total / size)
        return res if half is None else rnd(res, half)  # None: a float32 result


def bce_with_logits(x, t, w, pw, reduction, half, halves=("input", "target", "pos_weight")):
    """``binary_cross_entropy_with_logits`` (half views or float32 values, broadcast).

    ``halves``: the arguments that are ``half`` tensors (the others float32). PyTorch's ops
    round where their result has a half dtype: ``log_sigmoid(input)`` and the in-place
    ``*= log_weight`` keep the input's dtype, ``pos_weight - 1`` the weight's,
    ``(...) * target + 1`` is half if both are, and ``(1 - target) * input - ... (* weight)`` works in place in the target's
    dtype, which is the result's.
    """
    xh, th, pwh = "input" in halves, "target" in halves, "pos_weight" in halves
    lwh = th and pwh

    def r(v, is_half):
        return rnd(v, half) if is_half else v

    def chunk(x, t, w, pw):
        # log_sigmoid: float32 min(x, 0) - log1p(exp(-|x|)), rounded once
        lsig = r(np.minimum(x, 0) - np.log1p(np.exp(-np.abs(x))), xh)
        if pw is not None:
            lw = r(r(r(pw - 1, pwh) * t, lwh) + 1, lwh)
            lsig = r(lsig * lw, xh)
        loss = r(r(r(1 - t, th) * x, th) - lsig, th)
        return loss if w is None else r(loss * w, th)

    return _elementwise(chunk, (x, t, w, pw), x.shape, reduction, half if th else None)


def mse_loss(x, t, w, reduction, half):
    """``mse_loss`` (half views or float32 values, broadcast): the kernel rounds the
    difference; with ``weight`` the Python composite's ops."""
    shape = np.broadcast_shapes(x.shape, t.shape)

    def chunk(x, t, w=None):
        sq = rnd(np.square(rnd(x - t, half)), half)
        return sq if w is None else rnd(sq * w, half)

    if w is None or reduction != "mean":
        return _elementwise(chunk, (x, t, w), shape, reduction, half)
    v = _elementwise(chunk, (x, t, w), shape, "sum", half)
    with np.errstate(invalid="ignore", divide="ignore"):
        return rnd(v / half_sum(_widen_copy(w), half), half)
