"""The partitioned inputs of ``fastloss.dask.evaluate``: per source (a dask array or
dataframe) one delayed object per partition, per role its source and columns, and the
partition lengths (:class:`_Plan`); and how a task turns a pandas partition into the
arrays :func:`fastloss.evaluate` reads from a table."""

import fnmatch
import math

import numpy as np

from fastloss.evaluation.readers import InputError, arrow_to_numpy
from fastloss.evaluation.roles import LABEL_NAMES


def _is_dask_array(x):
    import dask.array as da

    return isinstance(x, da.Array)


def _is_frame(x):
    try:
        import dask.dataframe as dd
    except ImportError:  # pragma: no cover - dask[dataframe] is part of the extra
        return False
    return isinstance(x, (dd.DataFrame, dd.Series))


def _describe_array(a):
    return f"dask.array<shape={tuple(a.shape)}, dtype={a.dtype}, chunks={a.numblocks[0]}>"


def _describe_frame(f, columns):
    cols = list(columns) if columns is not None else (
        list(f.columns) if hasattr(f, "columns") else [f.name])
    cols = [str(c) for c in cols]
    label = cols[0] if len(cols) == 1 else f"{cols[0]}..{cols[-1]}"
    return f"dask.dataframe[{label}]<{f.npartitions} partitions>"


class _Plan:
    """The partitioned inputs: per source (a dask array or dataframe), one delayed object
    per partition; per role, its source and columns; the partition lengths."""

    def __init__(self):
        self.sources, self.kinds, self.roles, self.where = [], [], {}, {}
        self.lengths = None
        self.tail = None
        self.label_tail = None

    def add(self, kind, coll):
        for i, c in enumerate(self.sources):
            if c is coll:
                return i
        self.sources.append(coll)
        self.kinds.append(kind)
        return len(self.sources) - 1


def _as_array(a, name, chunks0, n):
    """A NumPy or dask array as a dask array chunked like the predictions."""
    import dask.array as da

    if not _is_dask_array(a):
        a = np.asarray(a)
        if a.ndim == 0:
            raise InputError(f"{name}: a 0-d array; expected one row per sample")
        if a.shape[0] != n:
            raise InputError(f"length mismatch: y_pred has {n} rows but {name} has "
                             f"{a.shape[0]}")
        a = da.from_array(a, chunks=(chunks0,) + a.shape[1:])
    if a.ndim == 0:
        raise InputError(f"{name}: a 0-d array; expected one row per sample")
    if any(math.isnan(c) for c in a.chunks[0]):
        a = a.compute_chunk_sizes()
    if a.shape[0] != n:
        raise InputError(f"length mismatch: y_pred has {n} rows but {name} has {a.shape[0]}")
    want = {0: chunks0}
    want.update({i: -1 for i in range(1, a.ndim)})
    if a.chunks[0] != tuple(chunks0) or any(len(c) > 1 for c in a.chunks[1:]):
        a = a.rechunk(want)
    return a


def _plan_arrays(y_true, y_pred, sample_weight, groups, compute):
    """``y_pred`` a (NumPy or dask) array; the other inputs arrays or dask series. With a
    series among them, its partitions set the chunks and the arrays are rechunked to them
    (dask's ``to_dask_array(lengths=True)`` can disagree with the partitions it reads)."""
    import dask.array as da

    x = y_pred if _is_dask_array(y_pred) else da.from_array(np.asarray(y_pred))
    if x.ndim == 0:
        raise InputError("y_pred: a 0-d array; expected one row per sample")
    if any(math.isnan(c) for c in x.chunks[0]):
        x = x.compute_chunk_sizes()
    n = int(x.shape[0])
    plan = _Plan()
    named = (("label", y_true, "y_true"), ("weight", sample_weight, "sample_weight"),
             ("group", groups, "groups"))
    frame_parts = {}
    for role, v, name in named:
        if _is_frame(v):
            parts = list(v.to_delayed())
            lengths = _frame_lengths(v, parts, compute)
            if sum(lengths) != n:
                raise InputError(f"length mismatch: y_pred has {n} rows but {name} has "
                                 f"{sum(lengths)}")
            if plan.lengths is not None and lengths != plan.lengths:
                raise InputError(f"{name} is partitioned otherwise than the other dataframe "
                                 "inputs: they must be partitioned alike")
            plan.lengths = lengths
            frame_parts[role] = parts
    chunks0 = tuple(plan.lengths) if plan.lengths is not None else \
        tuple(int(c) for c in x.chunks[0])
    if x.chunks[0] != chunks0 or any(len(c) > 1 for c in x.chunks[1:]):
        # whole rows per chunk (the class axis joined), rows chunked like the series
        x = x.rechunk({0: chunks0, **{i: -1 for i in range(1, x.ndim)}})
    plan.lengths = list(chunks0)
    plan.tail = tuple(int(s) for s in x.shape[1:])
    plan.roles["pred"] = (plan.add("array", list(x.to_delayed().reshape(-1))), None)
    plan.where["pred"] = _describe_array(x)
    for role, a, name in named:
        if a is None:
            continue
        if role in frame_parts:
            plan.roles[role] = (plan.add("frame", frame_parts[role]), None)
            plan.where[role] = _describe_frame(a, None)
            if role == "label":  # a table column (as fastloss.evaluate sees one)
                plan.label_tail = (len(a.columns),) if a.ndim == 2 and len(a.columns) > 1 \
                    else None
            continue
        a = _as_array(a, name, chunks0, n)
        if role == "label":
            plan.label_tail = tuple(int(s) for s in a.shape[1:])
        plan.roles[role] = (plan.add("array", list(a.to_delayed().reshape(-1))), None)
        plan.where[role] = _describe_array(a)
    return plan


def _pred_columns(frame, spec, taken):
    names = [c for c in frame.columns]
    if spec is None:
        return [c for c in names if c not in taken]
    if isinstance(spec, str) and any(ch in spec for ch in "*?["):
        cols = [c for c in names if fnmatch.fnmatchcase(str(c), spec)]
        if not cols:
            raise InputError(f"no column matches {spec!r} (columns: {names[:12]})")
        return cols
    cols = [spec] if isinstance(spec, str) else list(spec)
    missing = [c for c in cols if c not in names]
    if missing:
        raise InputError(f"y_pred has no column {missing[0]!r} (columns: {names[:12]})")
    return cols


def _frame_lengths(coll, parts, compute):
    """Rows of each of ``parts`` (``coll.to_delayed()``): from the Parquet metadata when
    dask knows them without reading (the part tasks check every length anyway), else by
    counting the rows of those very partitions (a read of the inputs)."""
    import dask

    try:
        from dask.dataframe.dask_expr._expr import Lengths, Literal

        e = Lengths(coll.expr).optimize()
        if isinstance(e, Literal) and len(e.value) == len(parts):
            return [int(v) for v in e.value]
    except Exception:  # another dask version or source: count
        pass
    return [int(v) for v in compute(*[dask.delayed(len)(p) for p in parts])]


def _plan_frames(y_true, y_pred, sample_weight, groups, pred_columns, compute, tail=None):
    import dask.dataframe as dd

    plan = _Plan()
    named = {"label": y_true, "weight": sample_weight, "group": groups}
    frame = y_pred if isinstance(y_pred, dd.DataFrame) else None
    if frame is not None and named["label"] is None:  # labels in a column of the predictions
        named["label"] = next((c for c in LABEL_NAMES if c in frame.columns), None)
    if named["label"] is None:
        raise InputError("y_true is missing: give the labels (a dask series or array, or a "
                         "column name of y_pred)")
    taken = [v for v in named.values() if isinstance(v, str)]
    if taken and frame is None:
        raise InputError("column names for y_true / sample_weight / groups need y_pred to be "
                         "a dask DataFrame")
    for c in taken:
        if c not in frame.columns:
            raise InputError(f"y_pred has no column {c!r} (columns: {list(frame.columns)[:12]})")
    if frame is not None:
        pcols = _pred_columns(frame, pred_columns, taken)
        if not pcols:
            raise InputError("no prediction columns left in y_pred")
        base = frame[list(dict.fromkeys(pcols + taken))]  # one read for all of its roles
        plan.roles["pred"] = (plan.add("frame", base), pcols)
        plan.where["pred"] = _describe_frame(frame, pcols)
        for role, v in named.items():
            if isinstance(v, str):
                plan.roles[role] = (0, [v])
                plan.where[role] = _describe_frame(frame, [v])
        pred_ser = base[pcols[0]] if len(pcols) == 1 else None
    else:
        base, pcols = y_pred, None
        plan.roles["pred"] = (plan.add("frame", base), None)
        plan.where["pred"] = _describe_frame(base, None)
        pred_ser = base
    parts = list(base.to_delayed())
    plan.lengths = _frame_lengths(base, parts, compute)
    n = sum(plan.lengths)
    plan.sources[0] = parts
    for role, v in named.items():
        if v is None or isinstance(v, str):
            continue
        if _is_frame(v):
            vparts = list(v.to_delayed())
            if len(vparts) != len(parts):
                raise InputError(f"y_pred has {len(parts)} partitions but the {role}s have "
                                 f"{len(vparts)}: the inputs must be partitioned alike (or "
                                 "give them as column names of y_pred)")
            plan.roles[role] = (plan.add("frame", vparts), None)
            plan.where[role] = _describe_frame(v, None)
            if role == "label" and v.ndim == 2 and len(v.columns) > 1:
                plan.label_tail = (len(v.columns),)
        else:
            a = _as_array(v, role, tuple(plan.lengths), n)
            plan.roles[role] = (plan.add("array", list(a.to_delayed().reshape(-1))), None)
            plan.where[role] = _describe_array(a)
            if role == "label":
                plan.label_tail = tuple(int(s) for s in a.shape[1:])
    plan.tail = tuple(tail) if tail is not None else \
        _pred_tail(plan, pred_ser, pcols, parts, compute)
    return plan


def _pred_tail(plan, pred_ser, pcols, parts, compute):
    """The prediction width: the columns, else the list type, else the first row of a
    list column (a read of one partition)."""
    import dask.dataframe as dd

    if pred_ser is None:
        return (len(pcols),)
    if isinstance(pred_ser, dd.DataFrame) and len(pred_ser.columns) != 1:
        return (len(pred_ser.columns),)
    dt = pred_ser.dtypes.iloc[0] if isinstance(pred_ser, dd.DataFrame) else pred_ser.dtype
    pa_t = getattr(dt, "pyarrow_dtype", None)
    if _plain_numeric(dt):
        return ()
    if pa_t is not None and hasattr(pa_t, "list_size"):
        return (int(pa_t.list_size),)
    first = next((i for i, m in enumerate(plan.lengths) if m), None)
    if first is None:
        return (0,)
    head = compute(parts[first])[0].iloc[:1]
    return tuple(_role_from_frame(head, pcols, "pred", plan.where["pred"]).shape[1:])


def _plain_numeric(dtype):
    """A numeric column (NumPy, pandas nullable or Arrow numeric), not a list."""
    try:
        return np.dtype(dtype).kind in "biuf"
    except TypeError:  # pandas extension dtypes (Int64, string, Arrow types)
        return getattr(dtype, "kind", "O") in "biuf"


def _to_arrow(s, role):
    import pyarrow as pa

    arr = pa.Array.from_pandas(s) if not isinstance(s, (pa.Array, pa.ChunkedArray)) else s
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if role == "group" and pa.types.is_dictionary(arr.type):
        arr = arr.cast(arr.type.value_type)  # a categorical: only the values present count
    return arr


def _role_from_frame(obj, columns, role, where):
    """One role of a pandas partition as :func:`fastloss.evaluate` reads it from a table."""
    if columns is None:
        series = [obj] if obj.ndim == 1 else [obj[c] for c in obj.columns]
    else:
        series = [obj[c] for c in columns]
    if role == "group" and len(series) != 1:
        raise InputError(f"{where}: the groups must be one column")
    cols = [arrow_to_numpy(_to_arrow(s, role), role, where) for s in series]
    if len(cols) == 1:
        return cols[0]
    dt = np.result_type(*cols)
    return np.column_stack([c.astype(dt, copy=False) for c in cols])
