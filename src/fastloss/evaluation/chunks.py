"""Predictions, labels, weights and groups read in lockstep, chunk by chunk:
:class:`Inputs` yields :class:`Chunk` objects of a fixed number of rows."""

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from fastloss.evaluation.keyed_sums import SEGMENT_ROWS
from fastloss.evaluation.half import is_half_pred
from fastloss.evaluation.readers import (
    InputError,
    arrow_to_numpy,
    csv_problem,
    detect_format,
    require_pyarrow,
)
from fastloss.evaluation.roles import ROLES, InputFile, is_list, resolve_fields

__all__ = ["EVAL_CHUNK_ELEMS", "Chunk", "Inputs", "chunk_rows_for"]

EVAL_CHUNK_ELEMS = 1 << 25  # default chunk: 32M values (128 MB of float32 predictions)
TABLE_CHUNK_DIVISOR = 4  # tables are copied once more (Arrow -> NumPy): chunks 4x smaller


@dataclass
class Chunk:
    """Rows ``[start, stop)`` of every role (None: the role is absent)."""

    start: int
    stop: int
    pred: Any = None
    label: Any = None
    weight: Any = None
    group: Any = None


def chunk_rows_for(n_cols, chunk_rows=None):
    """The chunk size used: ``chunk_rows`` (default ~32M values) rounded up to segments."""
    g = SEGMENT_ROWS
    if chunk_rows is None:
        chunk_rows = max(1, EVAL_CHUNK_ELEMS // max(int(n_cols), 1))
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, (int, np.integer)) \
            or chunk_rows < 1:
        raise ValueError(f"chunk_rows must be a positive integer, got {chunk_rows!r}")
    return -(-int(chunk_rows) // g) * g


class Inputs:
    """Predictions, labels, weights and groups from one or several files, read in lockstep.

    ``chunks(start, rows)`` yields :class:`Chunk` objects of exactly ``rows`` rows (the
    last one fewer).
    """

    def __init__(self, pred, labels=None, weights=None, groups=None, *, pred_columns=None,
                 label_column=None, weight_column=None, group_column=None, csv_dtype=None):
        csv_types = {}
        pa = None
        if any(isinstance(p, (str, os.PathLike)) and detect_format(p) == "csv"
               for p in (pred, labels, weights, groups)):
            pa = require_pyarrow()
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
        self.fields = resolve_fields(fp, fl, fw, fg, pred_columns=pred_columns,
                                     label_column=label_column, weight_column=weight_column,
                                     group_column=group_column)
        if pa is not None and fp.fmt == "csv":
            for c in self.fields["pred"].columns:
                csv_types[c] = self._csv_pred_type
        lab = self.fields.get("label")
        if pa is not None and lab is not None and lab.columns and lab.file.fmt == "csv":
            # as floats, so that a later "1.5" is a bad label named by its row, not an
            # int64 conversion error of pyarrow's that names no line
            csv_types[lab.columns[0]] = pa.float64()
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
            elif not is_list(pred.src, pred.columns[0]):
                self.pred_shape_tail = ()
        for role in ("label", "weight", "group"):
            fld = self.fields.get(role)
            if fld is not None and fld.columns is None and len(fld.src.shape) > 1 and \
                    role != "label":
                raise InputError(f"{fld.where}: the {role}s must be one value per row, got shape "
                                 f"{fld.src.shape}")

    def where_row(self, role, row):
        """Where row ``row`` of ``role`` is: the file (and column), and for a CSV file the
        line, counted as an editor counts it; None for an in-memory array."""
        fld = self.fields.get(role)
        if fld is None or fld.file.fmt == "memory":
            return None
        where = fld.where
        if fld.file.fmt == "csv":
            found = csv_problem(fld.file.path, fld.src.csv_delimiter(), row=row)
            if found is not None:
                where += f", line {found[0]}"
        return where

    def describe(self):
        return {role: fld.where for role, fld in self.fields.items()}

    def fingerprint(self):
        return [f.fingerprint() for f in self.files]

    # ------------------------------------------------------------------ reading
    def _iter_field(self, fld, start, rows):
        if fld.columns is None:
            dtype = fld.src.dtype
            if dtype is not None and not dtype.isnative:  # a big-endian .npy, say
                native = dtype.newbyteorder("=")
                for b in fld.src.batches(start, rows):  # a native copy of each window
                    yield b.astype(native)
                return
            yield from fld.src.batches(start, rows)  # no local keeps the previous window
            return
        row = start
        for b in fld.src.batches(start, self._table_batch(rows), fld.columns):
            if len(fld.columns) == 1:
                yield arrow_to_numpy(b.column(0), fld.role, fld.where, row)
            else:
                cols = [arrow_to_numpy(b.column(i), fld.role, fld.where, row)
                        for i in range(b.num_columns)]
                dt = np.result_type(*cols) if cols else np.float64
                yield np.column_stack([c.astype(dt, copy=False) for c in cols]) if cols else \
                    np.zeros((b.num_rows, 0))
            row += b.num_rows

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
            roles = {}
            for _, d in parts:
                roles.update(d)
            del parts, d
            chunk = Chunk(row, row + n0, **roles)
            del roles
            yield chunk
            del chunk  # unmap this chunk's windows before the next ones are mapped
            row += n0

    def pred_tail(self):
        """The shape of one prediction row; a list column of unknown width is read at its
        first row (and remembered, so record batches are sized by it)."""
        if self.pred_shape_tail is None:
            first = next(self.chunks(0, 1), None)
            self.pred_shape_tail = tuple(np.asarray(first.pred).shape[1:]) \
                if first is not None else (0,)
        return self.pred_shape_tail

    def default_chunk_rows(self, n_cols):
        """None (32M values) for arrays, 16M for half-precision arrays (each chunk is also
        widened to float32: 6 bytes a value); a quarter of 32M for tables."""
        if not self.streams_tables:
            pred = self.fields["pred"]
            if pred.columns is None and is_half_pred(pred.src.dtype):
                return max(1, EVAL_CHUNK_ELEMS // 2 // max(n_cols, 1))
            return None
        return max(1, EVAL_CHUNK_ELEMS // TABLE_CHUNK_DIVISOR // max(n_cols, 1))


    def _iter_table(self, members, start, rows):
        table = members[0][1].src
        cols, spans = [], []
        for role, fld in members:
            spans.append((role, fld, len(cols), len(cols) + len(fld.columns)))
            cols.extend(fld.columns)
        row = start
        for b in table.batches(start, self._table_batch(rows), cols):
            out = {}
            for role, fld, a, e in spans:
                if e - a == 1:
                    out[role] = arrow_to_numpy(b.column(a), role, fld.where, row)
                else:
                    cs = [arrow_to_numpy(b.column(i), role, fld.where, row) for i in range(a, e)]
                    dt = np.result_type(*cs)
                    out[role] = np.column_stack([c.astype(dt, copy=False) for c in cs])
            row += b.num_rows
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
    pa = require_pyarrow()
    return pa.concat_arrays([p if isinstance(p, pa.Array) else pa.array(p) for p in parts])
