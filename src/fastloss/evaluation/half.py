"""Half-precision prediction chunks of ``fastloss eval`` / ``fastloss.evaluate`` (issue #18).

float16 (``.npy`` ``<f2``, Arrow ``halffloat``, safetensors ``F16``) and bfloat16
(``ml_dtypes.bfloat16`` arrays, the ``<V2`` ``.npy`` files ml_dtypes writes, safetensors
``BF16``) are widened exactly to float32 one chunk at a time, so a dump is never converted
whole and resident memory stays that of a few chunks. bfloat16 files need no ``ml_dtypes``:
their bits are widened by a 16-bit shift.
"""

import numpy as np

from fastloss._half import is_half, widen

__all__ = ["is_half_pred", "widen_pred"]


def is_half_pred(dtype):
    """float16, bfloat16, or ``V2`` (how NumPy sees a bfloat16 ``.npy`` without ml_dtypes:
    ml_dtypes writes the descr ``'<V2'``, and it is its only two-byte type)."""
    dtype = np.dtype(dtype)
    return is_half(dtype) or (dtype.kind == "V" and dtype.itemsize == 2 and dtype.names is None)


def widen_pred(x):
    """A half-precision chunk as float32 (exact); any other array unchanged."""
    if not is_half_pred(x.dtype):
        return x
    if x.dtype.kind == "V" and x.dtype.name != "bfloat16":  # raw bfloat16 bits
        x = x.view(np.uint16)
        out = np.empty(x.shape, np.float32)
        np.left_shift(x, 16, out=out.view(np.uint32), dtype=np.uint32)
        return out
    if x.dtype.byteorder not in "=|":
        x = x.astype(x.dtype.newbyteorder("="))
    return widen(x, np.empty(x.shape, np.float32))
