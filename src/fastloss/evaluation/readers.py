"""Streaming readers of prediction dumps for :func:`fastloss.evaluate`: one class per file format.

Formats (chosen by extension, else by the file's magic bytes):

* ``.npy``: memory-mapped one window of rows at a time (never the whole file, so the
  resident set stays bounded); the array is the file's role (predictions, labels,
  weights or groups). The header is checked against the file size (truncation).
* ``.npz``: members read as streams (stored or deflated) with their ``.npy`` headers.
* Parquet (``.parquet``, ``.pq``): record batches, no pre-buffering of row groups.
* Arrow IPC / Feather v2 (``.arrow``, ``.feather``, ``.ipc``; ``.arrows`` stream format).
* CSV (``.csv``, ``.tsv``, optionally ``.gz``/``.bz2``/``.zst``): streamed by pyarrow.

Predictions in a table are one fixed-size-list (or list) column, or one numeric column
per class (numbered: ``p0, p1, ...``, or named explicitly); labels, weights and groups
are one column each.

Every problem with a file raises :class:`InputError` (a ``ValueError``) naming the file.
"""

import os
import stat
import zipfile

import numpy as np

from fastloss.evaluation.half import is_half_pred

class InputError(ValueError):
    """A bad input file: unreadable, truncated, corrupt, or inconsistent with the others."""


class BadRowError(InputError):
    """A bad row (label out of range, bad weight, ...): ``role`` ("label", "weight",
    "pred") is the input at fault, ``row`` the row (0-based), so that the message can
    name the file and, for a CSV file, the line."""

    def __init__(self, message, role, row):
        super().__init__(message)
        self.role, self.row = role, row


def require_pyarrow():
    try:
        import pyarrow  # noqa: F401
    except ImportError as exc:  # pragma: no cover - pyarrow is installed in CI
        raise InputError("reading Parquet, Arrow and CSV files needs pyarrow "
                         "(pip install 'fastloss[io]')") from exc
    import pyarrow as pa

    return pa


def not_a_regular_file(path):
    """What ``path`` is when it exists and is not a regular file ("a FIFO", ...), else ""."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return ""
    for test, kind in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return kind
    return ""


def detect_format(path):
    kind = not_a_regular_file(path)
    if kind:
        # open() of a FIFO blocks until a writer comes, and reading a pipe's first bytes to
        # find its format would lose them: the readers need a file they can seek in
        advice = {"a FIFO (named pipe)": "save the stream to a file first (the readers seek "
                                          "in it and map it)",
                  "a directory": "give one of its files"}.get(kind, "give a regular file")
        raise InputError(f"{path}: is {kind}, not a regular file; {advice}")
    p = str(path).lower()
    for suffix in (".gz", ".bz2", ".zst", ".lz4"):
        if p.endswith(suffix):
            p = p[: -len(suffix)]
            if p.endswith((".csv", ".tsv", ".txt")):
                return "csv"
    ext = os.path.splitext(p)[1]
    known = {".npy": "npy", ".npz": "npz", ".parquet": "parquet", ".pq": "parquet",
             ".feather": "ipc", ".arrow": "ipc", ".ipc": "ipc", ".arrows": "ipc_stream",
             ".csv": "csv", ".tsv": "csv", ".txt": "csv", ".safetensors": "safetensors"}
    if ext in known:
        return known[ext]
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    if head.startswith(b"PK"):
        return "npz"
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"ARROW1"):
        return "ipc"
    raise InputError(f"{path}: unknown file format (expected .npy, .npz, .parquet, .feather/"
                     ".arrow, .csv)")


# --------------------------------------------------------------------------- .npy / .npz


def _read_npy_header(f, path):
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            shape, fortran, dtype = np.lib.format._read_array_header(f, version)
    except Exception as exc:  # ValueError, EOFError, SyntaxError from a mangled header
        raise InputError(f"{path}: not a valid .npy file ({type(exc).__name__}: {exc})") from None
    if dtype.hasobject:
        raise InputError(f"{path}: holds Python objects (dtype {dtype}); only numeric arrays "
                         "can be streamed")
    if len(shape) == 0:
        raise InputError(f"{path}: holds a 0-d array; expected one row per sample")
    if fortran and len(shape) > 1:
        raise InputError(f"{path}: is Fortran-ordered; streaming reads rows, save it with "
                         "np.save(path, np.ascontiguousarray(a))")
    return tuple(int(s) for s in shape), np.dtype(dtype)


class _Array:
    """Common interface of a single array (one role) read in windows of rows."""

    shape = ()
    dtype = None
    columns = ()

    @property
    def n_rows(self):
        return self.shape[0]


class NpyFile(_Array):
    """A ``.npy`` file, memory-mapped one window of rows at a time."""

    def __init__(self, path):
        self.path = str(path)
        try:
            with open(self.path, "rb") as f:
                self.shape, self.dtype = _read_npy_header(f, self.path)
                self.offset = f.tell()
            size = os.path.getsize(self.path)
        except OSError as exc:
            raise InputError(f"{self.path}: cannot read: {exc.strerror or exc}") from None
        self.row_bytes = int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize
        need = self.offset + self.shape[0] * self.row_bytes
        if size < need:
            have = max(0, size - self.offset)
            raise InputError(
                f"{self.path}: truncated .npy file: the header says shape {self.shape} "
                f"{self.dtype} ({need - self.offset} bytes of data) but the file holds only "
                f"{have} bytes ({have // max(self.row_bytes, 1)} complete rows)")
        if size > need:
            # np.save writes nothing after the data: extra bytes mean a wrong header (a
            # shape cut short) or two files run together, and rows would go unread
            raise InputError(
                f"{self.path}: {size - need} bytes after the data that the header describes "
                f"(shape {self.shape} {self.dtype}, {need - self.offset} bytes of data): not a "
                "file as np.save writes it; check the shape it was saved with")

    def batches(self, start, batch_rows):
        n = self.shape[0]
        tail = self.shape[1:]
        fd = os.open(self.path, os.O_RDONLY)
        try:
            for a in range(start, n, batch_rows):
                b = min(n, a + batch_rows)
                if self.row_bytes == 0:
                    yield np.zeros((b - a,) + tail, self.dtype)
                    continue
                if hasattr(os, "posix_fadvise") and b < n:  # read the next window ahead
                    os.posix_fadvise(fd, self.offset + b * self.row_bytes,
                                     min(n - b, batch_rows) * self.row_bytes,
                                     os.POSIX_FADV_WILLNEED)
                yield _map_rows(fd, self.offset + a * self.row_bytes, (b - a,) + tail,
                                self.dtype)
        finally:
            os.close(fd)


_MADV_POPULATE_READ = 22  # Linux >= 5.14: fault the whole window in with one call
_HUGE = 1 << 21


def _map_rows(fd, offset, shape, dtype):
    """Rows of a file as an array backed by a private (copy-on-write) memory map.

    Private so that the array is writeable (NumPy's ``argmax`` copies read-only arrays
    whole) although nothing is ever written; the window is unmapped when the array is
    garbage-collected, so resident memory stays bounded by the windows alive.
    """
    import mmap

    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    # Map from a 2 MiB boundary: page-cache pages held in 2 MiB folios (ext4, xfs, ...)
    # can then be mapped as huge pages, which makes the passes over them much cheaper.
    align = _HUGE if nbytes >= _HUGE else mmap.ALLOCATIONGRANULARITY
    base = offset - offset % align
    mm = mmap.mmap(fd, offset - base + nbytes, access=mmap.ACCESS_COPY, offset=base)
    try:
        mm.madvise(_MADV_POPULATE_READ)  # page tables filled in bulk (no copy: read faults)
    except (OSError, ValueError, AttributeError):
        pass
    arr = np.frombuffer(mm, dtype=dtype, count=nbytes // dtype.itemsize,
                        offset=offset - base).reshape(shape)
    del mm  # the array keeps the map alive, and only it
    return arr


class MemArray(_Array):
    """An in-memory (or already memory-mapped) array, read in windows of rows."""

    def __init__(self, a, name, allow_object=False):
        self.a = np.asarray(a) if not isinstance(a, np.ndarray) else a
        if self.a.ndim == 0:
            raise InputError(f"{name}: a 0-d array; expected one row per sample")
        if self.a.dtype.kind not in "biuf" and not allow_object and not is_half_pred(self.a.dtype):
            raise InputError(f"{name}: dtype {self.a.dtype} is not numeric")
        self.shape, self.dtype, self.path = self.a.shape, self.a.dtype, name

    def batches(self, start, batch_rows):
        for s in range(start, self.shape[0], batch_rows):
            yield self.a[s:s + batch_rows]


class NpzMember(_Array):
    """One member of an ``.npz`` archive, read as a stream (stored or deflated)."""

    def __init__(self, path, member):
        self.path, self.member = str(path), member
        self.columns = ()
        where = f"{self.path}[{member}]"
        try:
            with zipfile.ZipFile(self.path) as z, z.open(member + ".npy") as f:
                self.shape, self.dtype = _read_npy_header(f, where)
                header, size = f.tell(), z.getinfo(member + ".npy").file_size
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise InputError(f"{self.path}: not a readable .npz archive ({exc})") from None
        except KeyError:
            raise InputError(f"{self.path}: has no member {member!r}") from None
        self.row_items = int(np.prod(self.shape[1:], dtype=np.int64))
        need = header + self.shape[0] * self.row_items * self.dtype.itemsize
        if size != need:  # (the zip's CRC-32 of the member is checked as it is read)
            raise InputError(f"{where}: the member holds {size - header} bytes of data where "
                             f"its header (shape {self.shape} {self.dtype}) says "
                             f"{need - header}: truncated or not written by np.savez")

    def batches(self, start, batch_rows):
        row_bytes = self.row_items * self.dtype.itemsize
        where = f"{self.path}[{self.member}]"
        try:
            with zipfile.ZipFile(self.path) as z, z.open(self.member + ".npy") as f:
                _read_npy_header(f, where)
                if start:
                    f.seek(f.tell() + start * row_bytes)
                n = self.shape[0]
                for a in range(start, n, batch_rows):
                    b = min(n, a + batch_rows)
                    want = (b - a) * row_bytes
                    buf = f.read(want)
                    if len(buf) != want:
                        got = a + len(buf) // max(row_bytes, 1)
                        raise InputError(f"{where}: truncated: rows from {got} on are missing "
                                         f"(the header says {n} rows)")
                    yield np.frombuffer(buf, dtype=self.dtype).reshape((b - a,) + self.shape[1:])
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise InputError(f"{where}: corrupt .npz member ({exc})") from None


def npz_members(path):
    try:
        with zipfile.ZipFile(path) as z:
            return [n[:-4] for n in z.namelist() if n.endswith(".npy")]
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(f"{path}: not a readable .npz archive ({exc})") from None


# --------------------------------------------------------------------------- Arrow tables


class Table:
    """A table file: Parquet, Arrow IPC (file or stream) or CSV, read by record batch."""

    def __init__(self, path, fmt, csv_dtypes=None):
        self.path, self.fmt = str(path), fmt
        self.pa = require_pyarrow()
        self._csv_types = csv_dtypes if csv_dtypes is not None else {}
        self.n_rows = None
        try:
            if fmt == "parquet":
                import pyarrow.parquet as pq

                self._pf = pq.ParquetFile(self.path, pre_buffer=False, buffer_size=1 << 23,
                                          page_checksum_verification=True)
                self.schema = self._pf.schema_arrow
                md = self._pf.metadata
                self.n_rows = md.num_rows
                groups = sum(md.row_group(i).num_rows for i in range(md.num_row_groups))
                if groups != self.n_rows:
                    raise InputError(f"{self.path}: damaged Parquet metadata: the row groups "
                                     f"hold {groups} rows but the file says {self.n_rows}")
            elif fmt == "ipc":
                with self.pa.memory_map(self.path) as src:
                    r = self.pa.ipc.open_file(src)
                    self.schema = r.schema
                    self._batch_rows = [r.get_batch(i).num_rows
                                        for i in range(r.num_record_batches)]
                self.n_rows = sum(self._batch_rows)
            elif fmt == "ipc_stream":
                with self.pa.OSFile(self.path) as src:
                    self.schema = self.pa.ipc.open_stream(src).schema
            elif fmt == "csv":
                import pyarrow.csv as pcsv

                with pcsv.open_csv(self.path, read_options=self._csv_read(),
                                   parse_options=self._csv_parse()) as r:
                    self.schema = r.schema
            else:  # pragma: no cover
                raise AssertionError(fmt)
        except InputError:
            raise
        except (self.pa.ArrowException, OSError, ValueError) as exc:
            self._raise_csv_problem()
            kind = {"parquet": "Parquet", "ipc": "Arrow IPC/Feather", "ipc_stream": "Arrow IPC "
                    "stream", "csv": "CSV"}[fmt]
            raise InputError(f"{self.path}: not a readable {kind} file ({exc})") from None
        self.columns = tuple(self.schema.names)

    def _csv_read(self):
        import pyarrow.csv as pcsv

        return pcsv.ReadOptions(block_size=1 << 24)

    def _csv_parse(self):
        import pyarrow.csv as pcsv

        return pcsv.ParseOptions(delimiter=self.csv_delimiter())

    def field_type(self, name):
        return self.schema.field(name).type

    def batches(self, start, batch_rows, columns):
        """Record batches of ``columns`` from row ``start`` on (arbitrary batch sizes)."""
        pa = self.pa
        try:
            yield from self._batches(start, batch_rows, list(columns))
        except InputError:
            raise
        except (pa.ArrowException, OSError, ValueError) as exc:
            self._raise_csv_problem(columns)
            raise InputError(f"{self.path}: read error ({type(exc).__name__}: {exc})") from None

    def _check_value_counts(self, columns, first):
        """A flat column chunk holds one value (or null) per row: its value count must be
        its row group's row count (pyarrow reads the row group's count and drops the
        rest silently)."""
        md, schema = self._pf.metadata, self._pf.schema
        flat = [j for j in range(len(schema)) if schema.column(j).max_repetition_level == 0
                and schema.column(j).path.split(".")[0] in columns]
        for i in range(first, md.num_row_groups):
            rg = md.row_group(i)
            for j in flat:
                if rg.column(j).num_values != rg.num_rows:
                    raise InputError(f"{self.path}: damaged Parquet metadata: row group {i} "
                                     f"says {rg.num_rows} rows but its column "
                                     f"{schema.column(j).path!r} holds "
                                     f"{rg.column(j).num_values} values")

    def csv_delimiter(self):
        return "\t" if self.path.lower().split(".gz")[0].endswith(".tsv") else ","

    def _raise_csv_problem(self, columns=None):
        """For a CSV file that pyarrow could not parse or convert: the InputError that
        names the line and the column (no-op for other formats, or if nothing is found)."""
        if self.fmt != "csv":
            return
        numeric = [c for c in (columns or ()) if c in self._csv_types
                   and not self.pa.types.is_string(self._csv_types[c])]
        found = csv_problem(self.path, self.csv_delimiter(), numeric)
        if found is not None:
            raise InputError(f"{self.path}: line {found[0]}: {found[1]}")

    def _batches(self, start, batch_rows, columns):
        pa = self.pa
        if self.fmt == "parquet":
            md = self._pf.metadata
            first, skip, acc = md.num_row_groups, 0, 0
            for i in range(md.num_row_groups):
                nr = md.row_group(i).num_rows
                if acc + nr > start:
                    first, skip = i, start - acc
                    break
                acc += nr
            if first == md.num_row_groups:
                return
            self._check_value_counts(columns, first)
            it = self._pf.iter_batches(batch_size=batch_rows, columns=columns,
                                       row_groups=range(first, md.num_row_groups),
                                       use_threads=False)
            got = acc + skip
            for b in _skip(it, skip):
                got += b.num_rows
                yield b
            if got != self.n_rows:  # the pages hold other row counts than the metadata
                raise InputError(f"{self.path}: damaged Parquet file: {got} rows read where "
                                 f"the metadata says {self.n_rows}")
        elif self.fmt == "ipc":
            # A memory map shares the page cache, but the pages it touches count in the
            # resident set until it is unmapped: reopen it every ~256 MB.
            i, acc = 0, 0
            while i < len(self._batch_rows) and acc + self._batch_rows[i] <= start:
                acc += self._batch_rows[i]
                i += 1
            skip = start - acc
            while i < len(self._batch_rows):
                with pa.memory_map(self.path) as src:
                    r = pa.ipc.open_file(src)
                    mapped = 0
                    while i < len(self._batch_rows) and mapped < (1 << 28):
                        b = r.get_batch(i).select(columns)
                        mapped += b.nbytes
                        i += 1
                        if skip:
                            b, skip = b.slice(skip), 0
                        yield b
                        del b
        elif self.fmt == "ipc_stream":
            with pa.OSFile(self.path) as src:
                yield from _skip(pa.ipc.open_stream(src), start, columns)
        else:
            import pyarrow.csv as pcsv

            types = {c: t for c, t in self._csv_types.items() if c in self.columns}
            conv = pcsv.ConvertOptions(column_types=types, include_columns=columns)
            with pcsv.open_csv(self.path, read_options=self._csv_read(),
                               parse_options=self._csv_parse(), convert_options=conv) as r:
                yield from _skip(r, start)


def csv_problem(path, delimiter, numeric=(), row=None):
    """Where a CSV file goes wrong, found by reading it again with Python's csv module
    (pyarrow's errors name no line): ``(line, message)`` of the first row whose number of
    fields differs from the header's, or whose cell in one of the ``numeric`` columns is
    not a number; with ``row``, the line of that data row (0-based). None if not found.
    Lines are 1-based and count the header, as an editor numbers them."""
    import csv
    import io

    import pyarrow.csv as pcsv

    pa = require_pyarrow()
    nulls = set(pcsv.ConvertOptions().null_values)  # pyarrow reads these as missing (NaN)
    try:
        with pa.input_stream(path, compression="detect") as raw:
            rd = csv.reader(io.TextIOWrapper(raw, encoding="utf-8", newline=""),
                            delimiter=delimiter)
            header = next(rd, [])
            cols = [(header.index(c), c) for c in numeric if c in header]
            data_row = -1
            for fields in rd:
                if not fields:  # a blank line: pyarrow skips it too
                    continue
                data_row += 1
                if row is not None and data_row == row:
                    return rd.line_num, ""
                if len(fields) != len(header):
                    return rd.line_num, (f"{len(fields)} fields where the header has "
                                         f"{len(header)}; fix or delete that line")
                for i, c in cols:
                    cell = fields[i]
                    if cell in nulls:
                        continue
                    try:
                        float(cell)
                    except ValueError:
                        return rd.line_num, (f"column {c!r} holds {cell!r}, not a number; fix "
                                             "that cell or delete the line (empty, NA, NaN "
                                             "and null cells read as missing values)")
    except (OSError, UnicodeDecodeError, csv.Error, pa.ArrowException):
        return None
    return None


def _skip(batches, n, columns=None):
    for b in batches:
        if columns is not None:
            b = b.select(columns)
        if n >= b.num_rows:
            n -= b.num_rows
            continue
        if n:
            b, n = b.slice(n), 0
        yield b


def arrow_to_numpy(arr, role, where, first_row=0):
    """A pyarrow column as NumPy: rows x classes for a list column; nulls become NaN.
    ``first_row``: the file's row number of ``arr[0]``, for messages."""
    pa = require_pyarrow()
    import pyarrow.compute as pc

    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    t = arr.type
    if pa.types.is_fixed_size_list(t) or pa.types.is_list(t) or pa.types.is_large_list(t):
        n = len(arr)
        if pa.types.is_fixed_size_list(t):
            width = t.list_size
        else:
            lengths = pc.list_value_length(arr).to_numpy(zero_copy_only=False)
            valid = ~np.isnan(lengths.astype(np.float64)) if lengths.dtype.kind == "f" else \
                np.ones(n, bool)
            widths = np.unique(lengths[valid]) if n else np.zeros(0)
            if widths.size > 1:
                first = int(lengths[valid][0])
                k = int(np.flatnonzero(valid & (lengths != first))[0])
                raise InputError(f"{where}: rows have different numbers of classes: row "
                                 f"{first_row + k} has {int(lengths[k])} values where row "
                                 f"{first_row + int(np.argmax(valid))} has {first}; every row "
                                 "needs one value per class, fix or drop that row")
            width = int(widths[0]) if widths.size else 0
        if arr.null_count:
            arr = arr.fill_null(pa.scalar([float("nan")] * width, type=t))
        flat = arr.flatten()
        vals = flat.to_numpy(zero_copy_only=False)
        if vals.size != n * width:  # pragma: no cover - the widths are checked above
            raise InputError(f"{where}: rows have different numbers of classes")
        return vals.reshape(n, width)
    if role == "group":
        return arr
    if pa.types.is_dictionary(t):
        arr = arr.cast(t.value_type)
    if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)
            or pa.types.is_dictionary(t)):
        raise InputError(f"{where}: column of type {t} is not numeric")
    if arr.null_count and (pa.types.is_integer(arr.type) or pa.types.is_boolean(arr.type)):
        arr = arr.cast(pa.float64())  # nulls become NaN: invalid labels / weights
    return arr.to_numpy(zero_copy_only=False)
