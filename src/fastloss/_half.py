"""Half-precision inputs: float16 and bfloat16 read as they are, widened to float32 in chunks.

NumPy has ``float16``; ``bfloat16`` is ``ml_dtypes.bfloat16`` (the type of JAX, TensorFlow
and ``torch.Tensor.numpy`` through a view). Both widen to float32 exactly, so the kernels
see the same float32 values they would see after ``y_pred.astype(np.float32)``, and the
results are those of the float32 kernels bit for bit, except where a backend reads half
logits itself with tables (Cython: within 1 ulp of the float64 reference as the float32
path is, its last bit may differ; see the contract in ``fastloss.kernels``). fastloss never needs ``ml_dtypes``
unless a bfloat16 array arrives (which then comes with it), except to hand bfloat16 out:
reading bfloat16 files widens their raw bits itself.
"""

import threading

import numpy as np

__all__ = ["HALF_NAMES", "bfloat16_dtype", "compute_dtype", "is_half", "torch_half_view",
           "widen", "widen_rows"]

HALF_NAMES = ("float16", "bfloat16")
# a cached widening buffer is kept per thread and slot up to this size (64 MB of float32);
# larger requests (a caller's own big chunk) get a fresh array that is freed after use
_KEEP_ELEMS = 1 << 24
_KEEP_BUFFERS = 4
_PARALLEL_ELEMS = 1 << 17  # below this a parallel launch costs more than it saves
_local = threading.local()


def is_half(dtype):
    """Is ``dtype`` float16 or ml_dtypes' bfloat16 (native byte order)?"""
    dtype = np.dtype(dtype)
    return dtype.itemsize == 2 and (dtype.kind == "f" or dtype.name == "bfloat16")


def compute_dtype(dtype):
    """The dtype the kernels compute and return in: float32 for half input, else ``dtype``."""
    dtype = np.dtype(dtype)
    return np.dtype(np.float32) if is_half(dtype) else dtype


def bfloat16_dtype():
    """``np.dtype(ml_dtypes.bfloat16)``, or an ImportError saying how to get it."""
    try:
        import ml_dtypes
    except ImportError:
        raise ImportError("bfloat16 arrays need the ml_dtypes package: "
                          "pip install 'fastloss[half]' (or pip install ml_dtypes)") from None
    return np.dtype(ml_dtypes.bfloat16)


def widen(a, out):
    """Write the exact float32 values of the half array ``a`` into ``out`` (same shape).

    bfloat16 is the top half of a float32: a 16-bit shift of its bits, in one pass.
    """
    if a.dtype == np.float16:
        out[...] = a  # 1.1 Ge/s here; np.copyto(out, a) takes a 3x slower cast loop
    else:
        bits = a.view(np.uint16)
        np.left_shift(bits, 16, out=out.view(np.uint32), dtype=np.uint32)
    return out


def widen_rows(a, start, stop, slot=None, n_threads=1):
    """Rows ``[start, stop)`` of a half array widened to a C-contiguous float32 array.

    The result lives in a per-thread buffer that the next call for the same ``slot``
    overwrites; the slot defaults to the source array itself, so a kernel call that widens
    predictions and targets gets two buffers, and a loop over chunks reuses one. With
    ``n_threads > 1`` large contiguous rows are widened on the kernels' OpenMP threads.
    """
    part = a[start:stop]
    n = part.size
    if n > _KEEP_ELEMS:
        return _widen_into(part, np.empty(part.shape, np.float32), n_threads)
    bufs = getattr(_local, "bufs", None)
    if bufs is None:
        bufs = _local.bufs = {}
    key = id(a) if slot is None else slot
    buf = bufs.pop(key, None)
    if buf is None or buf.size < n:
        buf = np.empty(max(n, 1), np.float32)
    bufs[key] = buf  # most recent last; a kernel call widens at most two arrays at once
    while len(bufs) > _KEEP_BUFFERS:
        del bufs[next(iter(bufs))]
    return _widen_into(part, buf[:n].reshape(part.shape), n_threads)


def _widen_into(part, out, n_threads):
    # A serial widening between two parallel kernel calls leaves the other OpenMP thread
    # spin-waiting on its core (2 threads ran at 0.15 Ge/s, 1 at 0.33): widen in parallel
    # on the same (libgomp) threads by the Numba helper when it is there.
    if n_threads > 1 and part.size >= _PARALLEL_ELEMS and part.flags.c_contiguous:
        from fastloss.kernels import numba as nk

        if nk.AVAILABLE:
            return nk.widen_half(part, out, n_threads)
    return widen(part, out)


def torch_half_view(t):
    """A zero-copy NumPy view of a CPU ``torch.float16`` / ``torch.bfloat16`` tensor.

    float16 maps to ``np.float16``; bfloat16 (which NumPy lacks) to ``ml_dtypes.bfloat16``
    through the tensor's int16 bits. The view shares the tensor's memory and strides.

    Raises
    ------
    TypeError
        The tensor is not float16 or bfloat16, or not on the CPU.
    ImportError
        A bfloat16 tensor without ``ml_dtypes`` installed.
    """
    import torch

    if t.device.type != "cpu":
        raise TypeError(f"tensor on {t.device}: fastloss reads CPU tensors; call .cpu() first")
    t = t.detach()
    if t.dtype == torch.float16:
        return t.numpy()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().view(bfloat16_dtype())
    raise TypeError(f"tensor has dtype {t.dtype}; expected torch.float16 or torch.bfloat16")
