"""Run a kernel over whole blocks and reduce its partials deterministically."""

import warnings

import numpy as np

from fastloss.kernels._blocks import combine, n_blocks

EMPTY = np.zeros(0, dtype=np.float64)
CHUNK_ELEMS = 1 << 22  # rows of non-contiguous inputs are copied 16 MB of float32 at a time


def contiguous_rows(a, start, stop):
    """Rows ``[start, stop)`` of a 2-D (or 1-D) array as a C-contiguous array."""
    return np.ascontiguousarray(a[start:stop])


def run_chunks(call, n_rows, row_width, block_rows, contiguous, row_outputs, lp, wp):
    """Call ``call(start, stop, *row_outputs[start:stop], lp_part, wp_part)`` over all rows.

    ``call`` slices its own inputs. When the inputs are all C-contiguous it runs
    once; otherwise in chunks of whole blocks, each copied to contiguous memory, so
    a strided or Fortran-ordered input never needs a full-size copy. Chunking
    changes no bit of the result (blocks are aligned to row 0). Zero-length
    outputs mean "not requested" and are passed through unsliced.
    """
    if n_rows == 0:
        return
    if contiguous:
        call(0, n_rows, *row_outputs, lp, wp)
        return
    step = max(1, CHUNK_ELEMS // max(row_width, 1) // block_rows) * block_rows
    for a in range(0, n_rows, step):
        b = min(n_rows, a + step)
        b0, b1 = a // block_rows, n_blocks(b, block_rows)
        outs = [o[a:b] if o.shape[0] else o for o in row_outputs]
        call(a, b, *outs, lp[b0:b1] if lp.shape[0] else lp, wp[b0:b1] if wp.shape[0] else wp)


def run_kernel(call, n_rows, row_width, block_rows, reduction, out_dtype, contiguous):
    """Run a forward kernel ``call(start, stop, out, lp, wp)`` over all rows.

    Returns the per-sample array (``"none"``) or the float64 ``(sum, weight_sum)``.
    """
    need_out = reduction == "none"
    out = np.empty(n_rows, dtype=out_dtype) if need_out else EMPTY.astype(out_dtype)
    nb = n_blocks(n_rows, block_rows)
    lp = EMPTY if need_out else np.zeros(nb)
    wp = EMPTY if need_out else np.zeros(nb)
    run_chunks(call, n_rows, row_width, block_rows, contiguous, [out], lp, wp)
    if need_out:
        return out
    return combine(lp), combine(wp)


def finish(result, reduction, out_dtype, batch_shape):
    """Turn ``run_kernel``'s result into the public return value."""
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
