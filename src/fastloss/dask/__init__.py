"""Scale-out evaluation on a Dask cluster: :func:`evaluate` (``pip install 'fastloss[dask]'``).

``fastloss.dask.evaluate(y_true, y_pred, *, loss, ...)`` scores dask arrays or dask
dataframes on whatever Dask scheduler is active (a ``distributed.Client`` to an existing
cluster, a ``LocalCluster``, or dask's local threads) and returns the same
:class:`~fastloss.evaluation.evaluator.EvalResult` as :func:`fastloss.evaluate`, bitwise: losses,
accuracy, per-class and per-group figures and diagnostics are those of one in-memory pass
over the same rows. Only the ``inputs`` entry of the JSON document differs (it describes
the dask collections instead of files).

How
---
The global row of every dask chunk is known from the chunk sizes (arrays:
``y_pred.chunks[0]``; dataframes: the partition lengths, from the Parquet metadata when
dask has them, else from a counting pass over the partitions; every task checks the length
of its partition). Every chunk becomes, on the worker that holds it, the state of a fresh
single-machine evaluator (:class:`~fastloss.evaluation.accumulator.LossAccumulator` states for the
losses, exact integer sums for the per-class / per-group figures, counters) fed that
chunk at its global row; states travel as small picklable dicts and are merged in a tree
with a fixed fan-in (``split_every``). Every merge is exact, so neither the chunking nor
the merge order changes a bit of the result.

The per-class / per-group sums are row-order sums within fixed 256-row segments aligned
to row 0 (:mod:`fastloss.evaluation.evaluator`). When a chunk boundary is not a multiple of 256
rows, the rows of the segment it cuts (at most 255 on each side) are shipped to one small
task that evaluates the whole segment; everything else stays where it was loaded. With
chunks of a multiple of 256 rows (as the CLI makes), or with ``per_class=False`` and no
groups, no rows move at all: only states do.

Threads
-------
Each task runs fastloss's kernels with its own thread count. By default it is
``max(1, cores // dask_threads)`` per host: the cores of the worker's host divided by
the Dask worker threads running on that host (all workers of the host together), so
``dask threads x kernel threads <= cores`` and nothing is oversubscribed. A worker
started with ``FASTLOSS_NUM_THREADS`` in its environment uses that; ``n_threads=N``
given to :func:`evaluate` is used by every task as is. (Dask's nanny sets
``OMP_NUM_THREADS=1`` in its workers; fastloss passes its thread count explicitly, so
that setting does not limit it.) Under dask's local threaded scheduler, tasks run
single-threaded kernels. (The numba backend under several Dask threads per worker needs
a thread-safe Numba threading layer, ``omp`` or ``tbb``; the cython backend has no such
constraint.)

Errors
------
Bad rows (``on_bad_row="raise"``) and other input errors found on the workers travel as
error states through the merge tree; the one at the lowest row wins, so the exception is
the one :func:`fastloss.evaluate` raises (the first bad row). ``max_groups`` counts the
groups of the whole dump.

CLI
---
:func:`add_cli_arguments` adds ``--scheduler tcp://HOST:PORT`` / ``--dask-workers N`` /
``--dask-threads N`` to ``fastloss eval``; :func:`cli_evaluator` returns the evaluate
function to call (None without those flags). Inputs on a cluster: ``.npy`` files, dask
``.npy`` stacks (``da.to_npy_stack`` directories), Zarr arrays and Parquet files,
directories or globs, at paths every worker can read.

This module never imports dask at import time; ``import dask`` inside it is the real
dask (absolute imports), never this module.
"""

import fnmatch
import functools
import glob
import math
import os
import threading
import time

import numpy as np

from fastloss.evaluation.readers import LABEL_NAMES, InputError

__all__ = ["add_cli_arguments", "cli_evaluator", "evaluate", "evaluate_files",
           "kernel_threads", "merge_states", "thread_plan"]

SPLIT_EVERY = 8  # fan-in of the merge tree
_FMT_ERR = "fastloss.dask.error"


def _segment_rows():
    from fastloss.evaluation.evaluator import SEGMENT_ROWS

    return SEGMENT_ROWS


def _need_dask():
    try:
        import dask  # noqa: F401  (the real dask: absolute import)
        import dask.array  # noqa: F401
    except ImportError as exc:  # pragma: no cover - dask is installed in CI
        raise ImportError("fastloss.dask needs dask: pip install 'fastloss[dask]'") from exc


# --------------------------------------------------------------------------- threads


def _affinity_cores():
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else \
        (os.cpu_count() or 1)


def _host(address):
    from distributed.comm import get_address_host

    return get_address_host(address)


def thread_plan(client):
    """``{host: kernel threads per task}`` for the workers of ``client``'s cluster:
    ``max(1, cores // threads)`` with ``threads`` the Dask worker threads of all the
    workers on that host and ``cores`` the CPUs a worker there may use."""
    info = client.scheduler_info(n_workers=-1)["workers"]
    cores = client.run(_affinity_cores)
    hosts = {}
    for addr, w in info.items():
        h = hosts.setdefault(_host(addr), [0, 1])
        h[0] += int(w.get("nthreads", 1))
        h[1] = max(h[1], int(cores.get(addr, 1)))
    return {host: max(1, c // max(t, 1)) for host, (t, c) in hosts.items()}


def kernel_threads(plan=None):
    """The kernel thread count a task uses where it runs (see the module docstring).

    On a Dask worker: ``FASTLOSS_NUM_THREADS`` if set in the worker's environment, else
    ``plan[host]`` (from :func:`thread_plan`), else ``max(1, cores // worker threads)``.
    In a thread of dask's local thread pool: 1. Elsewhere: None (fastloss's default).
    """
    env = os.environ.get("FASTLOSS_NUM_THREADS")
    if env:
        return max(1, int(env))
    try:
        from distributed import get_worker

        w = get_worker()
    except (ImportError, ValueError):
        w = None
    if w is not None:
        if plan:
            try:
                n = plan.get(_host(w.address))
            except Exception:  # an address without a host part
                n = None
            if n:
                return int(n)
        nthreads = getattr(getattr(w, "state", None), "nthreads", None) or \
            getattr(w, "nthreads", 1)
        return max(1, _affinity_cores() // max(int(nthreads), 1))
    if threading.current_thread() is not threading.main_thread():
        return 1
    return None


# --------------------------------------------------------------------------- evaluator states


def _error_state(row, exc):
    return {"format": _FMT_ERR, "row": int(row), "type": type(exc).__name__,
            "message": str(exc)}


def _is_error(st):
    return st is not None and st.get("format") == _FMT_ERR


def _raise_error(st):
    cls = {"InputError": InputError, "TypeError": TypeError}.get(st["type"], ValueError)
    raise cls(st["message"])


def _new_evaluator(cfg, specs=None):
    from fastloss.evaluation.evaluator import _Evaluator

    if specs is None:
        specs = cfg["specs"]
        if cfg["auto_threads"]:
            n = kernel_threads(cfg["thread_plan"])
            specs = [(name, dict(o, n_threads=n) if o["n_threads"] is None else o)
                     for name, o in specs]
    return _Evaluator(specs, **cfg["ev_kwargs"])


def _add_sums(a, b, key_map=None, n_keys=None):
    """Exact sum of two :class:`~fastloss.evaluation.accumulator.ExactSums` states (``b``'s key ``k``
    goes to key ``key_map[k]``); the values are exact integers, so this is exact."""
    n = n_keys if n_keys is not None else max(len(a["ints"]), len(b["ints"]))
    ints = [int(s, 16) for s in a["ints"]] + [0] * (n - len(a["ints"]))
    flags = [list(f) for f in a["flags"]] + [["0", "0", "0"] for _ in range(n - len(a["flags"]))]
    for k, (s, f) in enumerate(zip(b["ints"], b["flags"])):
        j = k if key_map is None else key_map[k]
        ints[j] += int(s, 16)
        flags[j] = ["1" if x == "1" or y == "1" else "0" for x, y in zip(flags[j], f)]
    return {"ints": [format(v, "x") for v in ints], "flags": ["".join(f) for f in flags]}


def _add_counts(a, b):
    """Counters of two diagnostics dicts added (first bad rows: the first 10 of both)."""
    out = {}
    for k in a.keys() | b.keys():
        x, y = a.get(k), b.get(k)
        if x is None or y is None:
            out[k] = y if x is None else x
        elif k == "first_bad_rows":
            out[k] = sorted(set(x) | set(y))[:10]
        elif isinstance(x, dict):
            out[k] = _add_counts(x, y)
        elif isinstance(x, bool):
            out[k] = x or y
        elif isinstance(x, (int, float)):
            out[k] = x + y
        else:  # a label such as clipped_unit: the same in every chunk
            out[k] = x
    return out


def merge_states(a, b, max_groups=None):
    """Merge two evaluator states (``state_dict()`` of disjoint row ranges) exactly.

    ``a`` and ``b`` may come in any order; merging them in row order keeps the group codes
    in first-appearance order (the result lists groups sorted by value either way). An
    error state wins over a state; of two errors, the one at the lower row wins.
    """
    from fastloss.evaluation.accumulator import LossAccumulator

    if a is None or b is None:
        return b if a is None else a
    if _is_error(a) or _is_error(b):
        if _is_error(a) and _is_error(b):
            return a if a["row"] <= b["row"] else b
        return a if _is_error(a) else b
    out = {"format": a["format"], "version": a["version"],
           "next_row": max(a["next_row"], b["next_row"]),
           "dtype": a["dtype"] if a["dtype"] is not None else b["dtype"]}
    out["accs"] = {n: LossAccumulator.from_state_dict(s).merge(
        LossAccumulator.from_state_dict(b["accs"][n])).state_dict() for n, s in a["accs"].items()}
    out["class_sums"] = {n: _add_sums(s, b["class_sums"][n]) for n, s in a["class_sums"].items()}
    out["class_counts"] = {k: (np.asarray(v, np.int64) + np.asarray(b["class_counts"][k],
                                                                    np.int64)).tolist()
                           for k, v in a["class_counts"].items()}
    groups = list(a["groups"])
    code = {v: i for i, v in enumerate(groups)}
    key_map = []
    for v in b["groups"]:
        if v not in code:
            code[v] = len(groups)
            groups.append(v)
        key_map.append(code[v])
    if max_groups is not None and len(groups) > max_groups:
        return _error_state(min(_first_row(a), _first_row(b)), InputError(
            f"more than max_groups={max_groups} distinct groups; raise --max-groups if that "
            "is intended"))
    G = len(groups)
    sums_map = [2 * key_map[k // 2] + k % 2 for k in range(2 * len(key_map))]
    out["groups"] = groups
    out["has_groups"] = bool(a["has_groups"] or b["has_groups"])
    out["group_sums"] = {n: _add_sums(s, b["group_sums"][n], sums_map, 2 * G)
                         for n, s in a["group_sums"].items()}
    gc = {}
    for k, v in a["group_counts"].items():
        arr = np.zeros(G, np.int64)
        arr[:len(v)] += np.asarray(v, np.int64)
        np.add.at(arr, np.asarray(key_map, np.int64), np.asarray(b["group_counts"][k], np.int64))
        gc[k] = arr.tolist()
    out["group_counts"] = gc
    out["diag"] = _add_counts(a["diag"], b["diag"])
    out["loss_diag"] = _add_counts(a["loss_diag"], b["loss_diag"])
    return out


def _first_row(st):
    acc = next(iter(st["accs"].values()))
    return acc["ranges"][0][0] if acc["ranges"] else st["next_row"]


# --------------------------------------------------------------------------- tasks


def _cuts(start, stop, n_total, aligned, seg):
    """Split rows [start, stop) into ``("run", a, b)`` (evaluated in place) and
    ``("piece", a, b)`` (part of a segment cut by a chunk boundary)."""
    if start >= stop:
        return []
    if not aligned:
        return [("run", start, stop)]
    first = -(-start // seg) * seg  # first segment boundary >= start
    last = stop if stop == n_total else stop // seg * seg  # last aligned end <= stop
    head_end = min(stop, first)
    out = []
    if start < head_end:
        out.append(("piece", start, head_end))
    if last > head_end:
        out.append(("run", head_end, last))
    tail = max(head_end, last)
    if tail < stop:
        out.append(("piece", tail, stop))
    return out


def _throttle():
    t = float(os.environ.get("FASTLOSS_DASK_THROTTLE", "0") or 0)  # tests: slow workers
    if t:
        time.sleep(t)


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
    from fastloss.evaluation.readers import arrow_to_numpy

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


def _load(cfg, start, stop, parts):
    """``{role: rows}`` of one partition (NumPy arrays; groups from tables: pyarrow)."""
    ch = {"pred": None, "label": None, "weight": None, "group": None}
    for role, (src, columns) in cfg["roles"].items():
        obj = parts[src]
        where = cfg["where"][role]
        if cfg["kinds"][src] == "frame":
            a = _role_from_frame(obj, columns, role, where)
        else:
            a = obj
        if len(a) != stop - start:
            raise InputError(f"length mismatch: the partition of rows [{start}, {stop}) of "
                             f"{cfg['where']['pred']} has {stop - start} rows but that of "
                             f"{where} has {len(a)}: the inputs must be partitioned alike")
        ch[role] = a
    return ch


def _slice(ch, a, b, copy=False):
    """Rows [a, b) of every role (``copy``: not views, so that a held piece does not keep
    its whole partition in memory)."""
    out = {}
    for k, v in ch.items():
        if v is None or not copy:
            out[k] = None if v is None else v[a:b]
        elif isinstance(v, np.ndarray):
            out[k] = v[a:b].copy()
        else:  # a pyarrow array (groups): at most a segment of values
            import pyarrow as pa

            out[k] = pa.array(v[a:b].to_pylist(), type=v.type)
    return out


def _process(cfg, a, b, rows):
    ev = _new_evaluator(cfg)
    chunk = dict(rows, start=a, stop=b)
    try:
        ev.process(chunk)
    except (ValueError, TypeError) as exc:
        return _error_state(a, exc)
    return ev.state_dict()


def _part_task(cfg, start, stop, *parts):
    """Evaluate one partition: (state of its whole segments, {segment: cut rows})."""
    _throttle()
    if start == stop:  # an empty partition (its columns may not even have a type)
        return None, {}
    try:
        ch = _load(cfg, start, stop, parts)
    except (ValueError, TypeError) as exc:
        return _error_state(start, exc), {}
    state, pieces = None, {}
    seg = cfg["segment_rows"]
    for kind, a, b in _cuts(start, stop, cfg["n_rows"], cfg["aligned"], seg):
        rows = _slice(ch, a - start, b - start, copy=kind == "piece")
        if kind == "piece":
            pieces[a // seg] = (a, rows)
        else:
            state = merge_states(state, _process(cfg, a, b, rows))
    return state, pieces


def _concat(parts):
    if parts[0] is None:
        return None
    if len(parts) == 1:
        return parts[0]
    if isinstance(parts[0], np.ndarray):
        return np.concatenate(parts)
    import pyarrow as pa

    types = {p.type for p in parts if not pa.types.is_null(p.type)}
    if len(types) > 1:  # e.g. string and large_string groups: as Python values
        return pa.array([v for p in parts for v in p.to_pylist()])
    if types and any(pa.types.is_null(p.type) for p in parts):  # an all-null piece
        t = types.pop()
        parts = [p.cast(t) if pa.types.is_null(p.type) else p for p in parts]
    return pa.concat_arrays(parts)


def _segment_task(cfg, s, *pieces):
    """Evaluate segment ``s`` from the cut rows of the partitions that share it."""
    got = sorted((p[s] for p in pieces if s in p), key=lambda t: t[0])
    if len(got) != len(pieces):  # a partition failed to load: its error state says why
        return None
    a = got[0][0]
    rows = {k: _concat([r[k] for _, r in got]) for k in got[0][1]}
    b = a + len(rows["pred"])
    return _process(cfg, a, b, rows)


def _merge_task(cfg, *states):
    out = None
    for st in states:
        if isinstance(st, tuple):  # a partition's (state, {}): no segment of it was cut
            st = st[0]
        out = merge_states(out, st, cfg["ev_kwargs"]["max_groups"])
    return out


def _finish_task(cfg, state):
    from fastloss.evaluation.evaluator import _config

    if isinstance(state, tuple):  # one partition, nothing merged
        state = state[0]
    if _is_error(state):
        _raise_error(state)
    ev = _new_evaluator(cfg, specs=cfg["specs"])
    if state is not None:
        ev.load_state(state)

    class _Shim:  # what _config asks of the inputs
        def fingerprint(self):
            return cfg["describe"]

        def describe(self):
            return cfg["describe"]

    config = _config(cfg["specs"], _Shim(), ev, None, cfg["ev_kwargs"]["per_class"])
    return ev.result(cfg["describe"], config)


# --------------------------------------------------------------------------- inputs


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
    # the prediction width: the columns, else the first row of a list column
    if tail is not None:
        plan.tail = tuple(tail)
    elif pred_ser is None:
        plan.tail = (len(pcols),)
    elif isinstance(pred_ser, dd.DataFrame) and len(pred_ser.columns) != 1:
        plan.tail = (len(pred_ser.columns),)
    else:
        dt = pred_ser.dtypes.iloc[0] if isinstance(pred_ser, dd.DataFrame) else pred_ser.dtype
        pa_t = getattr(dt, "pyarrow_dtype", None)
        if _plain_numeric(dt):
            plan.tail = ()
        elif pa_t is not None and hasattr(pa_t, "list_size"):
            plan.tail = (int(pa_t.list_size),)
        else:
            first = next((i for i, m in enumerate(plan.lengths) if m), None)
            if first is None:
                plan.tail = (0,)
            else:
                head = compute(parts[first])[0].iloc[:1]
                plan.tail = tuple(_role_from_frame(head, pcols, "pred",
                                                   plan.where["pred"]).shape[1:])
    return plan


def _plain_numeric(dtype):
    """A numeric column (NumPy, pandas nullable or Arrow numeric), not a list."""
    try:
        return np.dtype(dtype).kind in "biuf"
    except TypeError:  # pandas extension dtypes (Int64, string, Arrow types)
        return getattr(dtype, "kind", "O") in "biuf"


# --------------------------------------------------------------------------- public API


def _default_client(client):
    if client is not None:
        return client
    try:
        from distributed import default_client
    except ImportError:
        return None
    try:
        return default_client()
    except ValueError:  # no client: dask's local scheduler
        return None


def _lazy(y_true, y_pred, *, loss, sample_weight=None, groups=None, pred_columns=None,
          num_classes=None, on_bad_row="raise", sum_tolerance=1e-3, per_class=True,
          accuracy=True, diagnostics=True, max_groups=100_000, client=None,
          split_every=SPLIT_EVERY, describe=None, _tail=None, **options):
    """The graph of :func:`evaluate`: a ``dask.delayed`` object computing the EvalResult."""
    _need_dask()
    import dask

    from fastloss.evaluation.evaluator import _loss_specs

    specs = _loss_specs(loss, options)
    client = _default_client(client)

    def compute(*objs):
        if client is not None:
            return client.compute(list(objs), sync=True)
        return dask.compute(*objs)

    if isinstance(split_every, bool) or not isinstance(split_every, int) or split_every < 2:
        raise ValueError(f"split_every must be an integer >= 2, got {split_every!r}")
    if _is_frame(y_pred):
        plan = _plan_frames(y_true, y_pred, sample_weight, groups, pred_columns, compute,
                            tail=_tail)
    else:
        if y_true is None:
            raise InputError("y_true is missing: give the labels")
        if pred_columns is not None:
            raise TypeError("pred_columns applies to a dask DataFrame y_pred")
        plan = _plan_arrays(y_true, y_pred, sample_weight, groups, compute)
    ev_kwargs = dict(tail=plan.tail, label_tail=plan.label_tail, on_bad_row=on_bad_row,
                     sum_tolerance=sum_tolerance, per_class=per_class, diagnostics=diagnostics,
                     max_groups=max_groups, num_classes=num_classes, accuracy=accuracy)
    ev = _new_evaluator({"ev_kwargs": ev_kwargs}, specs=specs)  # checks shapes and options now
    auto = any(o["n_threads"] is None for _, o in specs)
    seg = _segment_rows()
    n = sum(plan.lengths)
    desc = dict(describe) if describe else dict(plan.where)
    cfg = {
        "specs": specs, "ev_kwargs": ev_kwargs, "n_rows": n, "segment_rows": seg,
        "aligned": bool(ev.per_class or "group" in plan.roles),
        "auto_threads": auto, "thread_plan": thread_plan(client) if (auto and client) else None,
        "roles": plan.roles, "kinds": plan.kinds, "where": desc, "describe": desc,
    }
    cfg_d = dask.delayed(cfg, pure=False)
    part_task = dask.delayed(_part_task, pure=False)
    items, seg_pieces = [], {}
    start = 0
    for i, m in enumerate(plan.lengths):
        stop = start + m
        args = [src[i] for src in plan.sources]
        part = part_task(cfg_d, start, stop, *args)
        # the state (of the partition's whole segments, or None, or an error) goes into
        # the tree; the rows of cut segments go to one task per segment
        cut = [a // seg for kind, a, _ in _cuts(start, stop, n, cfg["aligned"], seg)
               if kind == "piece"]
        items.append((start, part[0] if cut else part))  # (no pieces: no getitem task)
        for s in cut:
            seg_pieces.setdefault(s, []).append(part[1])
        start = stop
    seg_task = dask.delayed(_segment_task, pure=False)
    for s, pcs in seg_pieces.items():
        items.append((s * seg, seg_task(cfg_d, s, *pcs)))
    items.sort(key=lambda t: t[0])
    level = [d for _, d in items]
    merge = dask.delayed(_merge_task, pure=False)
    while len(level) > 1:
        level = [merge(cfg_d, *level[i:i + split_every])
                 for i in range(0, len(level), split_every)]
    root = level[0] if level else None
    return dask.delayed(_finish_task, pure=False)(cfg_d, root), client


def evaluate(y_true, y_pred, *, loss, sample_weight=None, groups=None, pred_columns=None,
             num_classes=None, on_bad_row="raise", sum_tolerance=1e-3, per_class=True,
             accuracy=True, diagnostics=True, max_groups=100_000, client=None,
             split_every=SPLIT_EVERY, compute=True, **options):
    """:func:`fastloss.evaluate` on dask collections, on the active Dask scheduler.

    Parameters
    ----------
    y_true, y_pred, sample_weight, groups : dask arrays, or dask dataframes / series
        ``y_pred``: a dask array (rows, or rows x classes; the class axis may be chunked,
        it is joined), a dask Series (one value or a list per row) or a dask DataFrame
        (one column per class, or one list column). With a DataFrame ``y_pred``,
        ``y_true``, ``sample_weight`` and ``groups`` may be column names of it (one read
        per partition), and ``pred_columns`` (names or a glob) picks the prediction
        columns (default: every other column). ``y_true`` may be omitted when the frame
        has a ``y_true``/``label``/``target``... column. Arrays (NumPy or dask) are
        rechunked to the predictions' row chunks; separate dataframes must be
        partitioned alike.
    loss, **options, num_classes, on_bad_row, sum_tolerance, per_class, accuracy,
    diagnostics, max_groups :
        As :func:`fastloss.evaluate`. ``n_threads`` (default: see "Threads" in the module
        docs) is the kernel thread count of every task.
    client : distributed.Client, optional
        Default: the current default client if there is one, else dask's local scheduler.
    split_every : int
        Fan-in of the merge tree (8).
    compute : bool
        False: return a ``dask.delayed`` object that computes the result.

    Returns
    -------
    EvalResult
        Bitwise the result of :func:`fastloss.evaluate` on the same rows in memory (the
        ``inputs`` entry describes the dask collections).
    """
    lazy, client = _lazy(y_true, y_pred, loss=loss, sample_weight=sample_weight, groups=groups,
                         pred_columns=pred_columns, num_classes=num_classes,
                         on_bad_row=on_bad_row, sum_tolerance=sum_tolerance,
                         per_class=per_class, accuracy=accuracy, diagnostics=diagnostics,
                         max_groups=max_groups, client=client, split_every=split_every,
                         **options)
    if not compute:
        return lazy
    if client is not None:
        return client.compute(lazy, sync=True)
    return lazy.compute()


# --------------------------------------------------------------------------- CLI


def _positive_int(text):
    try:
        v = int(text)
    except ValueError:
        v = 0
    if v < 1:
        import argparse

        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return v


def add_cli_arguments(parser):
    """Add the cluster flags to the ``fastloss eval`` parser (dask is not imported)."""
    g = parser.add_argument_group(
        "cluster (Dask; pip install 'fastloss[dask]')",
        "Evaluate on a Dask cluster: the result is bitwise the same. Inputs: .npy files, "
        ".npy stacks, Zarr arrays, Parquet files / directories / globs, at paths every "
        "worker can read.")
    x = g.add_mutually_exclusive_group()
    x.add_argument("--scheduler", metavar="ADDRESS",
                   help="address of a running Dask scheduler (tcp://HOST:PORT)")
    x.add_argument("--dask-workers", type=_positive_int, metavar="N",
                   help="start a local Dask cluster of N worker processes for this run")
    g.add_argument("--dask-threads", type=_positive_int, metavar="N",
                   help="threads per local worker (default: cores // N)")
    return g


def cli_evaluator(args):
    """The evaluate function ``fastloss eval`` calls: None without ``--scheduler`` /
    ``--dask-workers`` (use :func:`fastloss.evaluate`), else a function taking the same
    arguments as :func:`fastloss.evaluate` that runs on the cluster."""
    scheduler = getattr(args, "scheduler", None)
    workers = getattr(args, "dask_workers", None)
    threads = getattr(args, "dask_threads", None)
    if not scheduler and not workers:
        if threads:
            raise ValueError("--dask-threads needs --dask-workers N")
        return None
    if threads and not workers:
        raise ValueError("--dask-threads applies to --dask-workers (a local cluster); the "
                         "workers of --scheduler have their own thread counts")
    return functools.partial(evaluate_files, scheduler=scheduler, n_workers=workers,
                             threads_per_worker=threads)


class _cluster:
    def __init__(self, scheduler, n_workers, threads_per_worker):
        self.args = scheduler, n_workers, threads_per_worker
        self.cluster = self.client = None

    def __enter__(self):
        _need_dask()
        try:
            from distributed import Client, LocalCluster
        except ImportError as exc:  # pragma: no cover
            raise ImportError("--scheduler / --dask-workers need distributed: pip install "
                              "'fastloss[dask]'") from exc
        scheduler, n, t = self.args
        try:
            if scheduler:
                self.client = Client(scheduler, timeout="30s")
            else:
                t = t or max(1, _affinity_cores() // n)
                self.cluster = LocalCluster(n_workers=n, threads_per_worker=t, processes=True,
                                            host="127.0.0.1", dashboard_address=None)
                self.client = Client(self.cluster)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self.client

    def __exit__(self, *exc):
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
        return False


def _is_parquet(path):
    p = str(path)
    if any(ch in p for ch in "*?["):
        return bool(glob.glob(p)) and all(_is_parquet(q) for q in glob.glob(p)[:1])
    if os.path.isdir(p):
        return any(f.endswith((".parquet", ".pq")) or f.startswith("part")
                   for _, _, fs in os.walk(p) for f in fs)
    return p.lower().endswith((".parquet", ".pq"))


class _TableMeta:
    """A Parquet file / dataset as the column resolution of :mod:`fastloss.evaluation.readers` sees it."""

    array = None

    def __init__(self, path):
        import pyarrow as pa
        import pyarrow.dataset as pds

        self.pa = pa
        self.path = str(path)
        self.fmt = "parquet"
        src = sorted(glob.glob(self.path)) if any(c in self.path for c in "*?[") else self.path
        try:
            self.schema = pds.dataset(src, format="parquet",
                                      partitioning="hive").schema
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise InputError(f"{self.path}: not a readable Parquet file or dataset ({exc})") \
                from None
        self.columns = tuple(self.schema.names)
        self.table = self

    def field_type(self, name):
        return self.schema.field(name).type


class _ArrayMeta:
    table = None
    columns = ()

    def __init__(self, path, arr):
        self.path, self.array, self.fmt = str(path), arr, "array"


def _open_array(path, chunk_rows):
    """A dask array of a .npy file, an .npy stack or a Zarr array (None: not an array)."""
    import dask.array as da

    p = str(path)
    if os.path.isdir(p) and os.path.exists(os.path.join(p, "info")):
        return da.from_npy_stack(p)
    if p.rstrip("/").endswith(".zarr") or (os.path.isdir(p) and (
            os.path.exists(os.path.join(p, ".zarray")) or os.path.exists(os.path.join(p, "zarr.json")))):
        try:
            import zarr  # noqa: F401
        except ImportError:
            raise InputError(f"{p}: reading Zarr needs the zarr package") from None
        return da.from_zarr(p)
    if os.path.isfile(p) and (p.lower().endswith(".npy") or _magic(p) == b"\x93NUMPY"):
        return _npy_array(p, chunk_rows)
    return None


def _magic(p):
    try:
        with open(p, "rb") as f:
            return f.read(6)
    except OSError:
        return b""


def _read_npy_rows(path, a, b):
    mm = np.load(path, mmap_mode="c")  # copy-on-write: writable, nothing is written
    return np.asarray(mm[a:b])


def _npy_array(path, chunk_rows):
    import dask.array as da
    from dask.base import tokenize

    from fastloss.evaluation.evaluator import chunk_rows_for
    from fastloss.evaluation.readers import NpyFile

    f = NpyFile(path)  # checks the header and the file size (truncation)
    shape, dtype = f.shape, f.dtype
    width = int(np.prod(shape[1:], dtype=np.int64)) if len(shape) > 1 else 1
    rows = chunk_rows_for(width, chunk_rows)
    st = os.stat(path)
    name = "fastloss-npy-" + tokenize(os.path.abspath(path), st.st_size, st.st_mtime_ns, rows)
    bounds = list(range(0, shape[0], rows)) + [shape[0]]
    chunks = (tuple(b - a for a, b in zip(bounds[:-1], bounds[1:])) or (0,),) + \
        tuple((s,) for s in shape[1:])
    dsk = {}
    for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
        dsk[(name, i) + (0,) * (len(shape) - 1)] = (_read_npy_rows, os.path.abspath(path), a, b)
    if not dsk:
        return da.from_array(np.zeros(shape, dtype))
    return da.Array(dsk, name, chunks, dtype=dtype)


def _cli_input(path, chunk_rows, role):
    if path is None:
        return None
    if not isinstance(path, (str, os.PathLike)):
        return _ArrayMeta(f"<{role} array>", path)
    p = str(path)
    if not (os.path.exists(p) or any(c in p for c in "*?[")):
        raise InputError(f"{p}: no such file")
    arr = _open_array(p, chunk_rows)
    if arr is not None:
        return _ArrayMeta(p, arr)
    if _is_parquet(p):
        return _TableMeta(p)
    raise InputError(f"{p}: on a Dask cluster the inputs must be .npy files, .npy stacks "
                     "(dask.array.to_npy_stack), Zarr arrays or Parquet files / directories / "
                     "globs; convert it, or run without --scheduler / --dask-workers")


def evaluate_files(source, *, loss, labels=None, weights=None, groups=None, pred_column=None,
                   label_column=None, weight_column=None, group_column=None, num_classes=None,
                   on_bad_row="raise", sum_tolerance=1e-3, per_class=True, accuracy=True,
                   diagnostics=True, chunk_rows=None, progress=None, checkpoint=None,
                   resume=False, checkpoint_every=16, max_groups=100_000, csv_dtype=None,
                   scheduler=None, n_workers=None, threads_per_worker=None, client=None,
                   **options):
    """:func:`fastloss.evaluate`'s file arguments, evaluated on a Dask cluster: ``client``,
    else the scheduler at ``scheduler``, else a local cluster of ``n_workers`` processes.

    Column selection follows :func:`fastloss.evaluate`. ``checkpoint``/``resume`` do not
    apply (Dask recomputes the chunks of a lost worker); ``progress`` is ignored; the
    ``.npy`` chunk size is ``chunk_rows`` (default ~16M values, whole 256-row segments).
    """
    from fastloss.evaluation import readers as _io

    if checkpoint is not None or resume:
        raise ValueError("--checkpoint / --resume do not apply on a Dask cluster (Dask "
                         "recomputes the chunks of a lost worker); drop them or run without "
                         "--scheduler / --dask-workers")
    if csv_dtype is not None:
        raise ValueError("--csv-dtype: CSV inputs are not read on a Dask cluster")
    _need_dask()
    fp = _cli_input(source, chunk_rows, "predictions")
    fl = _cli_input(labels, chunk_rows, "labels")
    fw = _cli_input(weights, chunk_rows, "weights")
    fg = _cli_input(groups, chunk_rows, "groups")
    # the roles, resolved as fastloss.evaluation.readers.Inputs resolves them
    fields = {}
    lab = None
    if fl is not None:
        lab = _io._named_field("label", fl, label_column, LABEL_NAMES)
        if lab is None:
            if label_column is not None:
                raise InputError(f"{fl.path}: has no column {label_column!r} (columns: "
                                 f"{_io._short(fl.columns)})")
            if len(fl.columns) == 1:
                lab = _io._named_field("label", fl, fl.columns[0])
            else:
                raise InputError(f"{fl.path}: which column holds the labels? none is named "
                                 f"{'/'.join(LABEL_NAMES)}; give --label-column "
                                 f"(columns: {_io._short(fl.columns)})")
    else:
        if fp.array is None:
            lab = _io._named_field("label", fp, label_column, LABEL_NAMES)
        if lab is None:
            raise InputError(f"{fp.path}: no labels: give --labels FILE"
                             + ("" if fp.array is not None else
                                f", or --label-column (columns: {_io._short(fp.columns)})"))
    fields["label"] = lab
    search = [f for f in (fl, fp) if f is not None]
    for role, f, name in (("weight", fw, weight_column), ("group", fg, group_column)):
        if f is not None:
            fld = _io._named_field(role, f, name)
            if fld is None and f.array is None and len(f.columns) == 1:
                fld = _io._named_field(role, f, f.columns[0])
            if fld is None:
                raise InputError(f"{f.path}: has no column {name!r} for the {role}s "
                                 f"(columns: {_io._short(f.columns)})")
            fields[role] = fld
        elif name is not None:
            fld = next((x for x in (_io._named_field(role, s, name) for s in search) if x), None)
            if fld is None:
                raise InputError(f"no input file has a column {name!r} for the {role}s")
            fields[role] = fld
    taken = {c for fld in fields.values() if fld.file is fp and fld.columns for c in fld.columns}
    fields["pred"] = _io._pred_field(fp, pred_column, taken)
    for fld in fields.values():
        if fld.columns and fld.role in ("label", "weight") and \
                not _io._numeric(fld.src, fld.columns[0]):
            raise InputError(f"{fld.where}: the {fld.role}s must be numeric, the column has "
                             f"type {fld.src.field_type(fld.columns[0])}")
    describe = {role: fld.where for role, fld in fields.items()}
    # dask collections: one read_parquet per table (with every column it serves)
    import dask.dataframe as dd

    tables = {}
    for fld in fields.values():
        if fld.columns is not None:
            tables.setdefault(id(fld.file), (fld.file, []))[1].extend(fld.columns)
    frames = {}
    for key, (f, cols) in tables.items():
        path = sorted(glob.glob(f.path)) if any(c in f.path for c in "*?[") else f.path
        frames[key] = dd.read_parquet(path, columns=list(dict.fromkeys(cols)))

    def coll(role):
        fld = fields.get(role)
        if fld is None:
            return None, None
        if fld.columns is None:
            return fld.file.array, None
        return frames[id(fld.file)], fld.columns

    pred, pcols = coll("pred")
    kw = dict(loss=loss, num_classes=num_classes, on_bad_row=on_bad_row,
              sum_tolerance=sum_tolerance, per_class=per_class, accuracy=accuracy,
              diagnostics=diagnostics, max_groups=max_groups, **options)
    args = {}
    for role, key in (("label", "y_true"), ("weight", "sample_weight"), ("group", "groups")):
        c, cols = coll(role)
        if c is None:
            args[key] = None
        elif cols is None:
            args[key] = c
        elif pcols is not None and c is pred:
            args[key] = cols[0]  # a column of the predictions' table
        else:
            args[key] = c[cols[0]]
    if pcols is not None:
        kw["pred_columns"] = pcols
        t = fields["pred"].src.field_type(pcols[0]) if len(pcols) == 1 else None
        if t is not None and fields["pred"].src.pa.types.is_fixed_size_list(t):
            kw["_tail"] = (t.list_size,)  # the width without reading a partition
    with _cluster(scheduler, n_workers, threads_per_worker) if client is None else \
            _nullcontext(client) as cl:
        lazy, cl = _lazy(args["y_true"], pred, sample_weight=args["sample_weight"],
                         groups=args["groups"], client=cl, describe=describe, **kw)
        return cl.compute(lazy, sync=True)


class _nullcontext:
    def __init__(self, v):
        self.v = v

    def __enter__(self):
        return self.v

    def __exit__(self, *exc):
        return False
