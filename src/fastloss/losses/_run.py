"""Run a KernelCall over whole blocks and reduce its partials deterministically."""

import math
import warnings

import numpy as np

from fastloss._half import is_half, widen_rows
from fastloss.kernels._blocks import block_sums, combine, n_blocks

EMPTY = np.zeros(0, dtype=np.float64)
STRIDED_COPY_ELEMS = 1 << 22  # rows of non-contiguous inputs are copied 16 MB of float32 at a time
# values of half-precision rows widened per chunk; its own knob because the best size
# depends on the load: each chunk is two parallel launches (widening, kernel), whose
# barriers cost most on a busy machine (1e5 x 1000 bfloat16, Cython, 2 threads, load ~6:
# 0.13-0.24 Ge/s with 256K values, 0.24-0.27 with 4M; once 0.93 with 256K at load 2.7)
HALF_CHUNK_ELEMS = 1 << 22


def contiguous_rows(a, start, stop, n_threads=1):
    """Rows ``[start, stop)`` of a 2-D (or 1-D) array as a C-contiguous array.

    Half-precision rows are widened to float32 (exactly, on ``n_threads`` threads) in a
    buffer reused by the next call on the same array (:func:`fastloss._half.widen_rows`).
    """
    if is_half(a.dtype):
        return widen_rows(a, start, stop, n_threads=n_threads)
    return np.ascontiguousarray(a[start:stop])


def run_chunks(call, n_rows, row_width, block_rows, contiguous, row_outputs, lp, wp,
               half=False):
    """Call ``call(start, stop, *row_outputs[start:stop], lp_part, wp_part)`` over all rows.

    ``call`` slices its own inputs. When the inputs are all C-contiguous it runs
    once; otherwise in chunks of whole blocks, each copied to contiguous memory, so
    a strided or Fortran-ordered input (or a half-precision one, widened to float32 by
    :func:`contiguous_rows`) never needs a full-size copy. Chunking
    changes no bit of the result (blocks are aligned to row 0). Zero-length
    outputs mean "not requested" and are passed through unsliced.
    """
    if n_rows == 0:
        return
    if contiguous:
        call(0, n_rows, *row_outputs, lp, wp)
        return
    elems = HALF_CHUNK_ELEMS if half else STRIDED_COPY_ELEMS
    step = max(1, elems // max(row_width, 1) // block_rows) * block_rows
    for a in range(0, n_rows, step):
        b = min(n_rows, a + step)
        b0, b1 = a // block_rows, n_blocks(b, block_rows)
        outs = [o[a:b] if o.shape[0] else o for o in row_outputs]
        call(a, b, *outs, lp[b0:b1] if lp.shape[0] else lp, wp[b0:b1] if wp.shape[0] else wp)


def run_per_sample(call):
    """Every kernel row's weighted value ``w_i * l_i`` of a KernelCall, in its dtype."""
    out = np.empty(call.n_rows, dtype=call.dtype)
    run_chunks(call.forward, call.n_rows, call.row_width, call.block_rows, call.contiguous,
               [out], EMPTY, EMPTY, call.half)
    return out


def run_sums(call):
    """The float64 ``(sum of w_i * l_i, sum of w_i)`` of a KernelCall: block partials
    combined exactly, so the same for any thread count and chunking."""
    nb = n_blocks(call.n_rows, call.block_rows)
    lp, wp = np.zeros(nb), np.zeros(nb)
    run_chunks(call.forward, call.n_rows, call.row_width, call.block_rows, call.contiguous,
               [EMPTY.astype(call.dtype)], lp, wp, call.half)
    return combine(lp), combine(wp)


def reduce(call, reduction):
    """The public functions' return value for ``reduction`` (``check_reduction``-ed)."""
    if reduction == "none":
        out = finish(run_per_sample(call), reduction, call.dtype, call.batch_shape)
        return out.astype(call.result_dtype) if out.dtype != call.result_dtype else out
    return finish(run_sums(call), reduction, call.result_dtype, call.batch_shape)


def reduce_rescaling(prepare, sample_weight, reduction):
    """``prepare(sample_weight).reduce(reduction)``, with a mean whose float64 sums
    overflow although every weight is finite (weights near 1e308) redone with the
    sample weights times ``2**-k``: exact, so the ratio is the one an unbounded exponent
    range would give. ``prepare``: sample weights -> KernelCall."""
    call = prepare(sample_weight)
    if reduction != "mean" or not call.weighted:
        return call.reduce(reduction)
    with np.errstate(over="ignore"):  # (the reference backend would warn of what is redone)
        total, wsum = run_sums(call)
    if not (np.isfinite(total) and np.isfinite(wsum)):
        call = _rescaled(prepare, sample_weight, call) or call
        total, wsum = run_sums(call)
    return finish((total, wsum), reduction, call.result_dtype, call.batch_shape)


def gradient_rescaling(prepare, sample_weight, reduction, hessian, out):
    """``run_gradient`` of ``prepare(sample_weight)``, rescaled as :func:`reduce_rescaling`
    when a mean's weight sum or weighted total overflows (the gradient of sample ``i`` is
    ``w_i / sum w`` times its own, the same for weights times ``2**-k``)."""
    call = prepare(sample_weight)
    if reduction != "mean" or not call.weighted:
        return run_gradient(call, reduction, hessian, out)
    w = call.weights()
    # the weight sum (run_gradient's scale) overflows: known before the pass; the cheap bound
    # first, since weights whose max times their count is below 2**1000 cannot overflow
    if w is not None and w.size and not float(np.max(w)) * w.size < 2.0 ** 1000:
        with np.errstate(over="ignore"):
            if not np.isfinite(combine(block_sums(w, call.block_rows))):
                call = _rescaled(prepare, sample_weight, call) or call
    with np.errstate(over="ignore"):
        res = run_gradient(call, reduction, hessian, out)
    if not np.isfinite(res[0]):
        redo = _rescaled(prepare, sample_weight, call)
        if redo is not None:
            res = run_gradient(redo, reduction, hessian, out)
    return res


def _rescaled(prepare, sample_weight, call):
    """``call`` again with the sample weights times ``2**-k`` so that its weights sum to
    less than 1/2, or None when its weights are not what can overflow."""
    k = _overflow_shift(call.weights())
    if not k:
        return None
    sw = np.ones(call.batch_shape) if sample_weight is None else \
        np.asarray(sample_weight, dtype=np.float64)
    return prepare(np.ldexp(sw, -k))


def _overflow_shift(w):
    """``k`` such that weights ``w * 2**-k`` sum to less than 1/2 (0: the weights are not
    what overflowed: a non-finite one, or none above 1)."""
    if w is None or w.size == 0 or not np.isfinite(w).all():
        return 0
    top = float(np.max(w))
    if not top > 1.0:
        return 0
    return math.frexp(top)[1] + int(w.size).bit_length() + 1


def finish(result, reduction, out_dtype, batch_shape):
    """The public return value from per-sample values (``"none"``) or ``(sum, weight sum)``."""
    if reduction == "none":
        return result.reshape(batch_shape)
    total, wsum = result
    if reduction == "sum":
        return out_dtype.type(total)
    if wsum == 0:
        warnings.warn("mean of an empty selection: no sample has a positive weight "
                      "(empty input, all labels ignored or all weights zero); the result is NaN",
                      RuntimeWarning, stacklevel=3)
        return out_dtype.type(np.nan)
    return out_dtype.type(total / wsum)


def _check_out(out, hessian, shape, dtype):
    """Validate ``out=``: an array (gradient) or a ``(grad, hess)`` pair."""
    if out is None:
        return None, None
    if hessian:
        if not (isinstance(out, tuple) and len(out) == 2):
            raise TypeError("with hessian=True, out must be a (grad, hess) tuple of arrays")
        pairs = [("out[0]", out[0]), ("out[1]", out[1])]
    else:
        if isinstance(out, tuple):
            raise TypeError("out must be one array (the gradient) when hessian=False")
        pairs = [("out", out)]
    for name, a in pairs:
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{name} must be a NumPy array, got {type(a).__name__}")
        if a.shape != shape or a.dtype != dtype:
            raise ValueError(f"{name} has shape {a.shape} and dtype {a.dtype}; expected shape "
                             f"{shape} and dtype {dtype} (those of y_pred)")
        if not a.flags.writeable:
            raise ValueError(f"{name} is read-only")
    return tuple(a for _, a in pairs) if hessian else (pairs[0][1], None)


def run_gradient(job, reduction, hessian, out):
    """``(loss, grad[, hess])`` of a KernelCall's reduced loss, in ``y_pred``'s layout."""
    if reduction not in ("sum", "mean"):
        raise ValueError(f"reduction={reduction!r}: a gradient needs a scalar loss, "
                         "use 'sum' (per-sample gradients) or 'mean'")
    g_out, h_out = _check_out(out, hessian, _user_shape(job), job.result_dtype)
    br = job.block_rows
    scale = 1.0
    if reduction == "mean":
        w = job.weights()
        # unit weights sum exactly to the row count: no need to build and sum them
        wsum = float(job.n_rows) if w is None else combine(block_sums(w, br))
        scale = 1.0 / wsum if wsum > 0 else np.nan
    n = job.n_rows
    if job.layout is None:  # element-wise: gradient buffers are flat
        buf_shape = (n,)
    else:
        buf_shape = (n, job.layout.n_cols)
    dt = job.dtype
    g = np.empty(buf_shape, dtype=dt)
    h = np.empty(buf_shape, dtype=dt) if hessian else np.zeros((0,) * len(buf_shape), dt)
    nb = n_blocks(n, br)
    lp, wp = np.zeros(nb), np.zeros(nb)

    def call(a, b, g_, h_, lp_, wp_):
        job.gradient(a, b, g_, h_, lp_, wp_, scale)

    run_chunks(call, n, job.row_width, br, job.contiguous, [g, h], lp, wp, job.half)
    if reduction == "mean" and not scale == scale:
        warnings.warn("mean of an empty selection: no sample has a positive weight; the loss "
                      "and the gradient are NaN", RuntimeWarning, stacklevel=3)
    loss = finish((combine(lp), combine(wp)), reduction, job.result_dtype, job.batch_shape)
    results = [loss]
    for buf, dest in [(g, g_out)] + ([(h, h_out)] if hessian else []):
        arr = _to_user_layout(job, buf)
        if dest is not None:
            np.copyto(dest, arr, casting="same_kind")
            arr = dest
        elif arr.dtype != job.result_dtype:
            arr = arr.astype(job.result_dtype)
        results.append(arr)
    return tuple(results)


def _to_user_layout(job, buf):
    """Gradient rows back in ``y_pred``'s shape (class axis where the user had it)."""
    if job.layout is None:
        return buf.reshape(job.batch_shape)
    moved = buf.reshape(tuple(job.batch_shape) + (job.layout.n_cols,))
    return np.moveaxis(moved, -1, job.layout.axis)


def _user_shape(job):
    """``y_pred``'s shape: the batch shape with the class axis back where the user had it."""
    if job.layout is None:
        return tuple(job.batch_shape)
    bs, ax = tuple(job.batch_shape), job.layout.axis
    return bs[:ax] + (job.layout.n_cols,) + bs[ax:]
