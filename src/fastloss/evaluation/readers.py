"""Streaming readers of prediction dumps for :func:`fastloss.evaluate`.

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

import fnmatch
import os
import zipfile

import numpy as np

PRED_NAMES = ("y_pred", "pred", "preds", "prediction", "predictions", "logits", "probs",
              "probabilities", "scores", "score", "output")
LABEL_NAMES = ("y_true", "label", "labels", "target", "targets", "y")

ROLES = ("pred", "label", "weight", "group")


class InputError(ValueError):
    """A bad input file: unreadable, truncated, corrupt, or inconsistent with the others."""


def _pa():
    try:
        import pyarrow  # noqa: F401
    except ImportError as exc:  # pragma: no cover - pyarrow is installed in CI
        raise InputError("reading Parquet, Arrow and CSV files needs pyarrow "
                         "(pip install 'fastloss[io]')") from exc
    import pyarrow as pa

    return pa


def detect_format(path):
    p = str(path).lower()
    for suffix in (".gz", ".bz2", ".zst", ".lz4"):
        if p.endswith(suffix):
            p = p[: -len(suffix)]
            if p.endswith((".csv", ".tsv", ".txt")):
                return "csv"
    ext = os.path.splitext(p)[1]
    known = {".npy": "npy", ".npz": "npz", ".parquet": "parquet", ".pq": "parquet",
             ".feather": "ipc", ".arrow": "ipc", ".ipc": "ipc", ".arrows": "ipc_stream",
             ".csv": "csv", ".tsv": "csv", ".txt": "csv"}
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
        if self.a.dtype.kind not in "biuf" and not allow_object:
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
        try:
            with zipfile.ZipFile(self.path) as z, z.open(member + ".npy") as f:
                self.shape, self.dtype = _read_npy_header(f, f"{self.path}[{member}]")
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise InputError(f"{self.path}: not a readable .npz archive ({exc})") from None
        except KeyError:
            raise InputError(f"{self.path}: has no member {member!r}") from None
        self.row_items = int(np.prod(self.shape[1:], dtype=np.int64))

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


class _Table:
    """A table file: Parquet, Arrow IPC (file or stream) or CSV, read by record batch."""

    def __init__(self, path, fmt, csv_dtypes=None):
        self.path, self.fmt = str(path), fmt
        self.pa = _pa()
        self._csv_types = csv_dtypes if csv_dtypes is not None else {}
        self.n_rows = None
        try:
            if fmt == "parquet":
                import pyarrow.parquet as pq

                self._pf = pq.ParquetFile(self.path, pre_buffer=False, buffer_size=1 << 23,
                                          page_checksum_verification=True)
                self.schema = self._pf.schema_arrow
                self.n_rows = self._pf.metadata.num_rows
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
            kind = {"parquet": "Parquet", "ipc": "Arrow IPC/Feather", "ipc_stream": "Arrow IPC "
                    "stream", "csv": "CSV"}[fmt]
            raise InputError(f"{self.path}: not a readable {kind} file ({exc})") from None
        self.columns = tuple(self.schema.names)

    def _csv_read(self):
        import pyarrow.csv as pcsv

        return pcsv.ReadOptions(block_size=1 << 24)

    def _csv_parse(self):
        import pyarrow.csv as pcsv

        return pcsv.ParseOptions(delimiter="\t" if self.path.lower().split(".gz")[0]
                                 .endswith(".tsv") else ",")

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
            raise InputError(f"{self.path}: read error ({type(exc).__name__}: {exc})") from None

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
            it = self._pf.iter_batches(batch_size=batch_rows, columns=columns,
                                       row_groups=range(first, md.num_row_groups),
                                       use_threads=False)
            yield from _skip(it, skip)
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


def arrow_to_numpy(arr, role, where):
    """A pyarrow column as NumPy: rows x classes for a list column; nulls become NaN."""
    pa = _pa()
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
                k = int(np.argmax(lengths[valid] != widths[0]))
                raise InputError(f"{where}: rows have different numbers of classes "
                                 f"({int(widths[0])} and {int(lengths[valid][k])})")
            width = int(widths[0]) if widths.size else 0
        if arr.null_count:
            arr = arr.fill_null(pa.scalar([float("nan")] * width, type=t))
        flat = arr.flatten()
        vals = flat.to_numpy(zero_copy_only=False)
        if vals.size != n * width:
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


# --------------------------------------------------------------------------- inputs


class _Field:
    """One role read from one file: a whole array, or columns of a table."""

    def __init__(self, role, file, src, columns=None):
        self.role, self.file, self.src, self.columns = role, file, src, columns

    @property
    def where(self):
        if self.columns is None:
            return self.file.path if not isinstance(self.src, NpzMember) else \
                f"{self.file.path}[{self.src.member}]"
        cols = self.columns
        return f"{self.file.path}[{cols[0] if len(cols) == 1 else cols[0] + '..' + cols[-1]}]"


class InputFile:
    """A file given on the command line: an array, an .npz archive or a table."""

    def __init__(self, path, csv_dtypes=None, role=None):
        self.array = self.table = None
        self.members = ()
        if not isinstance(path, (str, os.PathLike)):
            self.path, self.fmt = f"<{role} array>", "memory"
            self.array = MemArray(path, self.path, allow_object=role == "groups")
            return
        self.path = str(path)
        if not os.path.exists(self.path):
            raise InputError(f"{self.path}: no such file")
        self.fmt = detect_format(self.path)
        if self.fmt == "npy":
            self.array = NpyFile(self.path)
        elif self.fmt == "npz":
            self.members = tuple(npz_members(self.path))
        else:
            self.table = _Table(self.path, self.fmt, csv_dtypes)

    @property
    def columns(self):
        if self.table is not None:
            return self.table.columns
        return self.members

    def has(self, name):
        return name in self.columns

    def fingerprint(self):
        if self.fmt == "memory":
            return {"array": self.path, "shape": list(self.array.shape),
                    "dtype": self.array.dtype.str}
        st = os.stat(self.path)
        return {"path": os.path.abspath(self.path), "size": st.st_size,
                "mtime_ns": st.st_mtime_ns}


def _is_list(table, name):
    pa = table.pa
    t = table.field_type(name)
    return pa.types.is_fixed_size_list(t) or pa.types.is_list(t) or pa.types.is_large_list(t)


def _numeric(table, name):
    return _numeric_type(table.pa, table.field_type(name))


def _numeric_type(pa, t):
    if pa.types.is_dictionary(t):
        t = t.value_type
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)


def _pred_field(f, spec, taken):
    """The prediction columns of file ``f`` (``spec``: a name, names, a glob or None)."""
    if f.array is not None:
        return _Field("pred", f, f.array)
    names = f.columns
    if isinstance(spec, str) and any(ch in spec for ch in "*?["):
        cols = [c for c in names if fnmatch.fnmatchcase(c, spec)]
        if not cols:
            raise InputError(f"{f.path}: no column matches {spec!r} (columns: {_short(names)})")
        spec = _class_columns(cols) or cols  # numbered columns in number order
    if isinstance(spec, str):
        spec = [spec]
    if spec is None:
        hit = [c for c in PRED_NAMES if c in names]
        if f.table is None:
            if hit:
                spec = [hit[0]]
            elif len(names) == 1:
                spec = [names[0]]
            else:
                raise InputError(f"{f.path}: which member holds the predictions? none is named "
                                 f"{'/'.join(PRED_NAMES[:6])}...; give --pred-column "
                                 f"(members: {_short(names)})")
        else:
            lists = [c for c in names if _is_list(f.table, c)]
            if hit and (_is_list(f.table, hit[0]) or len(hit) == 1):
                spec = [hit[0]]
            elif len(lists) == 1:
                spec = lists
            else:
                spec = _class_columns([c for c in names if c not in taken
                                       and _numeric(f.table, c)])
                if not spec:
                    raise InputError(f"{f.path}: which columns hold the predictions? none is "
                                     f"named {'/'.join(PRED_NAMES[:6])}..., there is no list "
                                     "column and no numbered columns like p0, p1, ...; give "
                                     f"--pred-column (columns: {_short(names)})")
    missing = [c for c in spec if c not in names]
    if missing:
        raise InputError(f"{f.path}: has no column {missing[0]!r} (columns: {_short(names)})")
    if f.table is None:
        if len(spec) != 1:
            raise InputError(f"{f.path}: predictions must be one .npz member, got {spec}")
        return _Field("pred", f, NpzMember(f.path, spec[0]))
    if len(spec) > 1 and any(_is_list(f.table, c) for c in spec):
        raise InputError(f"{f.path}: a list column holds all classes; give it alone")
    return _Field("pred", f, f.table, list(spec))


def _class_columns(cols):
    """The numbered columns of one prefix (``p0 p1 ...``, ``prob_1 prob_2 ...``, numbers
    0..C-1 or 1..C) in number order; [] if there is no such group or more than one.
    Other numeric columns (an id, a timestamp) are never taken for classes."""
    import re

    groups = {}
    for c in cols:
        m = re.fullmatch(r"(.*?)(\d+)", c)
        if m:
            groups.setdefault(m.group(1), []).append((int(m.group(2)), c))
    found = []
    for members in groups.values():
        idx = sorted(i for i, _ in members)
        if len(members) > 1 and idx[0] in (0, 1) and idx == list(range(idx[0], idx[0] + len(idx))):
            found.append([c for _, c in sorted(members)])
    return found[0] if len(found) == 1 else []


def _short(names, k=12):
    names = list(names)
    return ", ".join(names[:k]) + (f", ... ({len(names)} in all)" if len(names) > k else "")


def _named_field(role, f, name, defaults=()):
    """Column ``name`` (or the first of ``defaults`` present) of ``f``; None if absent."""
    if f.array is not None:
        return _Field(role, f, f.array) if name is None else None
    names = f.columns
    if name is None:
        hit = [c for c in defaults if c in names]
        if not hit:
            return None
        name = hit[0]
    if name not in names:
        return None
    if f.table is None:
        return _Field(role, f, NpzMember(f.path, name))
    return _Field(role, f, f.table, [name])


class Inputs:
    """Predictions, labels, weights and groups from one or several files, read in lockstep.

    ``chunks(start, rows)`` yields dicts ``{"start", "stop", "pred", "label", "weight",
    "group"}`` (absent roles are None) of exactly ``rows`` rows (the last one fewer).
    """

    def __init__(self, pred, labels=None, weights=None, groups=None, *, pred_columns=None,
                 label_column=None, weight_column=None, group_column=None, need_labels=True,
                 csv_dtype=None):
        csv_types = {}
        pa = None
        if any(isinstance(p, (str, os.PathLike)) and detect_format(p) == "csv"
               for p in (pred, labels, weights, groups)):
            pa = _pa()
        files = {}

        def open_(path, roles):
            if path is None:
                return None
            if not isinstance(path, (str, os.PathLike)):
                files[id(path)] = InputFile(path, csv_types, roles)
                return files[id(path)]
            key = os.path.abspath(str(path))
            if key not in files:
                files[key] = InputFile(path, csv_types)
            return files[key]

        # CSV columns: labels stay as inferred, predictions and weights parse as floats,
        # groups as strings (a column of numbers stays one type in every block).
        if pa is not None:
            ft = pa.float32() if np.dtype(csv_dtype or np.float64) == np.float32 else pa.float64()
            if weight_column:
                csv_types[weight_column] = pa.float64()
            if group_column:
                csv_types[group_column] = pa.string()
            self._csv_pred_type = ft
        fp = open_(pred, "predictions")
        fl = open_(labels, "labels")
        fw = open_(weights, "weights")
        fg = open_(groups, "groups")
        self.files = list(files.values())
        # labels / weights / groups first (so a table's remaining numeric columns are the
        # predictions), each from its own file if given, else from the other files.
        self.fields = {}
        search = [f for f in (fl, fp) if f is not None]
        lab = None
        if fl is not None:
            lab = _named_field("label", fl, label_column, LABEL_NAMES)
            if lab is None:
                if label_column is not None:
                    raise InputError(f"{fl.path}: has no column {label_column!r} (columns: "
                                     f"{_short(fl.columns)})")
                if len(fl.columns) == 1:
                    lab = _named_field("label", fl, fl.columns[0])
                else:
                    raise InputError(f"{fl.path}: which column holds the labels? none is named "
                                     f"{'/'.join(LABEL_NAMES)}; give --label-column "
                                     f"(columns: {_short(fl.columns)})")
        else:
            if fp.array is None:
                lab = _named_field("label", fp, label_column, LABEL_NAMES)
            if lab is None and (label_column is not None or need_labels):
                raise InputError(
                    f"{fp.path}: no labels: give --labels FILE"
                    + ("" if fp.array is not None else
                       f", or --label-column (columns: {_short(fp.columns)})"))
        if lab is not None:
            self.fields["label"] = lab
        for role, f, name in (("weight", fw, weight_column), ("group", fg, group_column)):
            if f is not None:
                fld = _named_field(role, f, name)
                if fld is None and f.array is None and len(f.columns) == 1:
                    fld = _named_field(role, f, f.columns[0])
                if fld is None:
                    raise InputError(f"{f.path}: has no column {name!r} for the {role}s "
                                     f"(columns: {_short(f.columns)})")
                self.fields[role] = fld
            elif name is not None:
                fld = next((x for x in (_named_field(role, s, name) for s in search) if x), None)
                if fld is None:
                    raise InputError(f"no input file has a column {name!r} for the {role}s")
                self.fields[role] = fld
        taken = {c for fld in self.fields.values() if fld.file is fp and fld.columns
                 for c in fld.columns}
        self.fields["pred"] = _pred_field(fp, pred_columns, taken)
        if pa is not None and fp.fmt == "csv":
            for c in self.fields["pred"].columns:
                csv_types[c] = self._csv_pred_type
        for fld in self.fields.values():
            if fld.columns and fld.role in ("label", "weight"):
                c = fld.columns[0]
                lst = fld.role == "label" and _is_list(fld.src, c)  # targets, one per class
                if not (_numeric(fld.src, c) or (lst and _numeric_type(
                        fld.src.pa, fld.src.field_type(c).value_type))):
                    raise InputError(f"{fld.where}: the {fld.role}s must be numeric, the column "
                                     f"has type {fld.src.field_type(fld.columns[0])}")
        self._check_lengths()

    # ------------------------------------------------------------------ shape
    def _rows_of(self, fld):
        return fld.src.n_rows

    def _check_lengths(self):
        known = [(self.fields[r].where, self._rows_of(self.fields[r])) for r in ROLES
                 if r in self.fields and self._rows_of(self.fields[r]) is not None]
        if len({n for _, n in known}) > 1:
            (w0, n0), (w1, n1) = known[0], next(k for k in known if k[1] != known[0][1])
            raise InputError(f"length mismatch: {w0} has {n0} rows but {w1} has {n1} rows")
        self.n_rows = known[0][1] if known else None
        pred = self.fields["pred"]
        self.pred_shape_tail = None  # unknown until the first batch (tables with list columns)
        if pred.columns is None:
            self.pred_shape_tail = tuple(pred.src.shape[1:])
            self.pred_dtype = pred.src.dtype
        elif len(pred.columns) > 1:
            self.pred_shape_tail = (len(pred.columns),)
        elif pred.src.fmt in ("parquet", "ipc", "ipc_stream", "csv"):
            t = pred.src.field_type(pred.columns[0])
            pa = pred.src.pa
            if pa.types.is_fixed_size_list(t):
                self.pred_shape_tail = (t.list_size,)
            elif not _is_list(pred.src, pred.columns[0]):
                self.pred_shape_tail = ()
        for role in ("label", "weight", "group"):
            fld = self.fields.get(role)
            if fld is not None and fld.columns is None and len(fld.src.shape) > 1 and \
                    role != "label":
                raise InputError(f"{fld.where}: the {role}s must be one value per row, got shape "
                                 f"{fld.src.shape}")

    def describe(self):
        return {role: fld.where for role, fld in self.fields.items()}

    def fingerprint(self):
        return [f.fingerprint() for f in self.files]

    # ------------------------------------------------------------------ reading
    def _iter_field(self, fld, start, rows):
        if fld.columns is None:
            yield from fld.src.batches(start, rows)  # no local keeps the previous window
            return
        for b in fld.src.batches(start, self._table_batch(rows), fld.columns):
            if len(fld.columns) == 1:
                yield arrow_to_numpy(b.column(0), fld.role, fld.where)
            else:
                cols = [arrow_to_numpy(b.column(i), fld.role, fld.where)
                        for i in range(b.num_columns)]
                dt = np.result_type(*cols) if cols else np.float64
                yield np.column_stack([c.astype(dt, copy=False) for c in cols]) if cols else \
                    np.zeros((b.num_rows, 0))

    TABLE_BATCH_ELEMS = 1 << 20

    def _table_batch(self, rows):
        """Record batches of ~4 MB: pyarrow's Parquet reader holds about three times a
        batch (values, levels, builder growth), so the chunk is assembled from small ones."""
        w = max(1, int(np.prod(self.pred_shape_tail or (1,))))
        return max(1, min(rows, self.TABLE_BATCH_ELEMS // w))

    @property
    def streams_tables(self):
        return any(f.table is not None for f in self.files)

    def chunks(self, start, rows):
        """Chunks of exactly ``rows`` rows from ``start`` on (the last may be shorter)."""
        # Fields of the same table are read together (one pass over the file).
        groups = {}
        for role, fld in self.fields.items():
            key = id(fld.src) if fld.columns is not None else id(fld)
            groups.setdefault(key, []).append((role, fld))
        streams = []
        for members in groups.values():
            if len(members) == 1 or members[0][1].columns is None:
                for role, fld in members:
                    streams.append(_Rechunk({role: self._iter_field(fld, start, rows)}, fld.where))
            else:
                streams.append(_Rechunk(self._iter_table(members, start, rows),
                                        members[0][1].file.path, multi=True))
        row = start
        while True:
            parts = [s.take(rows) for s in streams]
            lens = [(s.where, n) for s, (n, _) in zip(streams, parts)]
            n0 = lens[0][1]
            if any(n != n0 for _, n in lens):
                short = min(lens, key=lambda t: t[1])
                long_ = max(lens, key=lambda t: t[1])
                raise InputError(f"length mismatch: {short[0]} ends at row {row + short[1]} but "
                                 f"{long_[0]} has more rows")
            if n0 == 0:
                return
            chunk = {"start": row, "stop": row + n0}
            for role in ROLES:
                chunk[role] = None
            for _, d in parts:
                chunk.update(d)
            del parts, d
            yield chunk
            del chunk  # unmap this chunk's windows before the next ones are mapped
            row += n0

    def _iter_table(self, members, start, rows):
        table = members[0][1].src
        cols, spans = [], []
        for role, fld in members:
            spans.append((role, fld, len(cols), len(cols) + len(fld.columns)))
            cols.extend(fld.columns)
        for b in table.batches(start, self._table_batch(rows), cols):
            out = {}
            for role, fld, a, e in spans:
                if e - a == 1:
                    out[role] = arrow_to_numpy(b.column(a), role, fld.where)
                else:
                    cs = [arrow_to_numpy(b.column(i), role, fld.where) for i in range(a, e)]
                    dt = np.result_type(*cs)
                    out[role] = np.column_stack([c.astype(dt, copy=False) for c in cs])
            yield out


class _Rechunk:
    """Regroups batches of arbitrary sizes (dicts of role -> rows) into exact sizes."""

    def __init__(self, source, where, multi=False):
        if not multi:
            (role, it), = source.items()
            source = _as_dicts(role, it)
        self.it = iter(source)
        self.where = where
        self.pending = []  # dicts of role -> array, all with the same number of rows
        self.have = 0
        self.done = False

    def take(self, n):
        while self.have < n and not self.done:
            try:
                d = next(self.it)
            except StopIteration:
                self.done = True
                break
            m = _len(next(iter(d.values())))
            if m:
                self.pending.append(d)
                self.have += m
        if not self.pending:
            return 0, {}
        if _len(next(iter(self.pending[0].values()))) == n:  # the common case: no copy
            d = self.pending.pop(0)
            self.have -= n
            return n, d
        out, got, keep = {}, 0, []
        pieces = {}
        for d in self.pending:
            m = _len(next(iter(d.values())))
            if got >= n:
                keep.append(d)
                continue
            k = min(m, n - got)
            for role, a in d.items():
                pieces.setdefault(role, []).append(a[:k])
            if k < m:
                keep.append({role: a[k:] for role, a in d.items()})
            got += k
        for role, ps in pieces.items():
            out[role] = _concat(ps)
        self.pending = keep
        self.have -= got
        return got, out


def _as_dicts(role, it):
    for a in it:
        d = {role: a}
        del a  # only the consumer holds a window: it is unmapped before the next is mapped
        yield d
        del d


def _len(a):
    return len(a)


def _concat(parts):
    if len(parts) == 1:
        return parts[0]
    if isinstance(parts[0], np.ndarray):
        return np.concatenate(parts)
    pa = _pa()
    return pa.concat_arrays([p if isinstance(p, pa.Array) else pa.array(p) for p in parts])
