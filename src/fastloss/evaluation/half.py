"""Half-precision prediction chunks of ``fastloss eval`` / ``fastloss.evaluate`` (issue #18).

float16 (``.npy`` ``<f2``, Arrow ``halffloat``, safetensors ``F16``) and bfloat16
(``ml_dtypes.bfloat16`` arrays, the ``<V2`` ``.npy`` files ml_dtypes writes, safetensors
``BF16``) are read one chunk at a time, so a dump is never converted whole and resident
memory stays that of a few chunks. The losses take each chunk as it is (the kernels read
half logits themselves, as for an in-memory array); the rest of the pass (accuracy, top-1,
checks) sees it widened exactly to float32. bfloat16 files need no ``ml_dtypes``: their
bits are widened by a 16-bit shift.
"""

import numpy as np

from fastloss._half import is_half, widen

__all__ = ["is_half_pred", "native_half_pred", "widen_pred"]


def is_half_pred(dtype):
    """float16, bfloat16, or ``V2`` (how NumPy sees a bfloat16 ``.npy`` without ml_dtypes:
    ml_dtypes writes the descr ``'<V2'``, and it is its only two-byte type)."""
    dtype = np.dtype(dtype)
    return is_half(dtype) or (dtype.kind == "V" and dtype.itemsize == 2 and dtype.names is None)


def native_half_pred(x):
    """A half-precision chunk as the kernels take it (native float16, or ml_dtypes'
    bfloat16, raw ``V2`` bits viewed as such when ml_dtypes is installed), so that it scores
    bit for bit as the in-memory functions score it; None for other chunks, and for raw
    bfloat16 bits without ml_dtypes (those are scored through their float32 widening,
    which can differ from the half kernels in the last place)."""
    if not is_half_pred(x.dtype):
        return None
    if x.dtype.kind == "V" and x.dtype.name != "bfloat16":
        try:
            import ml_dtypes
        except ImportError:
            return None
        x = x.view(np.uint16).view(ml_dtypes.bfloat16)
    if x.dtype.byteorder not in "=|":
        x = x.astype(x.dtype.newbyteorder("="))
    return np.ascontiguousarray(x)


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
