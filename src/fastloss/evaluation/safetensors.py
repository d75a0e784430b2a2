"""safetensors files read without the ``safetensors`` package, one window of rows at a time.

The format (https://huggingface.co/docs/safetensors) is an 8-byte little-endian header
length, a JSON header ``{name: {"dtype", "shape", "data_offsets": [begin, end]}, ...,
"__metadata__": {...}}`` and the raw little-endian C-ordered data, offsets counted from the
end of the header. So a tensor can be memory-mapped like an ``.npy`` file: the library
(a Rust extension) would add nothing but a dependency. Each tensor is a member, as in an
``.npz`` archive (``--pred-column logits --label-column labels``).
"""

import json
import os

import numpy as np

from fastloss.evaluation.readers import InputError, NpyFile

__all__ = ["SafetensorsTensor", "read_header", "tensor_names"]

_MAX_HEADER = 100 << 20  # the format's own limit on the JSON header
_DTYPES = {"F16": "<f2", "F32": "<f4", "F64": "<f8", "I8": "i1", "I16": "<i2", "I32": "<i4",
           "I64": "<i8", "U8": "u1", "U16": "<u2", "U32": "<u4", "U64": "<u8", "BOOL": "?"}


def _bf16():
    try:
        import ml_dtypes
    except ImportError:  # raw bits: fastloss.evaluation.half widens V2 as bfloat16
        return np.dtype("V2")
    return np.dtype(ml_dtypes.bfloat16)


def read_header(path):
    """``(header dict without __metadata__, offset of the data)`` of a safetensors file."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise InputError(f"{path}: not a safetensors file (shorter than 8 bytes)")
            n = int.from_bytes(head, "little")
            if n > _MAX_HEADER or n < 2:
                raise InputError(f"{path}: not a safetensors file (header length {n})")
            text = f.read(n)
        size = os.path.getsize(path)
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(text) < n:
        raise InputError(f"{path}: truncated safetensors header ({len(text)} of {n} bytes)")
    try:
        header = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{path}: not a safetensors file (header: {exc})") from None
    if not isinstance(header, dict):
        raise InputError(f"{path}: not a safetensors file (the header is not a JSON object)")
    header.pop("__metadata__", None)
    start = 8 + n
    for name, info in header.items():
        try:
            b, e = (int(v) for v in info["data_offsets"])
            shape = tuple(int(s) for s in info["shape"])
            info["dtype"]
        except (KeyError, TypeError, ValueError):
            raise InputError(f"{path}: tensor {name!r} has a malformed header entry "
                             f"{info!r}") from None
        if not 0 <= b <= e or start + e > size:
            raise InputError(f"{path}: tensor {name!r} lies at bytes [{b}, {e}) of the data but "
                             f"the file holds {size - start} bytes of data (truncated?)")
        info["shape"], info["data_offsets"] = shape, (b, e)
    return header, start


def tensor_names(path):
    """The tensors of a safetensors file, in header order."""
    return list(read_header(path)[0])


class SafetensorsTensor(NpyFile):
    """One tensor of a safetensors file, memory-mapped one window of rows at a time (by
    ``NpyFile.batches``: both are raw C-ordered rows at an offset)."""

    def __init__(self, path, name):  # not NpyFile.__init__: there is no .npy header
        self.path, self.member = str(path), name
        header, start = read_header(self.path)
        info = header[name]
        code = info["dtype"]
        if code == "BF16":
            self.dtype = _bf16()
        elif code in _DTYPES:
            self.dtype = np.dtype(_DTYPES[code])
        else:
            raise InputError(f"{self.path}[{name}]: dtype {code} is not read (fastloss reads "
                             "F16, BF16, F32, F64, integers and BOOL; 8-bit floats would have "
                             "to be widened on purpose)")
        self.shape = info["shape"]
        if len(self.shape) == 0:
            raise InputError(f"{self.path}[{name}]: a 0-d tensor; expected one row per sample")
        b, e = info["data_offsets"]
        self.offset = start + b
        self.row_bytes = int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize
        if e - b != self.shape[0] * self.row_bytes:
            raise InputError(f"{self.path}[{name}]: shape {list(self.shape)} {code} needs "
                             f"{self.shape[0] * self.row_bytes} bytes but its data_offsets "
                             f"span {e - b}")
