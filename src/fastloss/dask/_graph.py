"""The task graph of ``fastloss.dask.evaluate``: one task per partition, one per segment
cut by a partition boundary, a merge tree of :class:`~fastloss.evaluation.state.EvalState`
objects with a fixed fan-in, and a final task that builds the result.

Errors found on the workers travel as small error dicts through the merge tree; the
one at the lowest row wins, so the exception is the one :func:`fastloss.evaluate`
raises (the first bad row).
"""

import os
import time

import numpy as np

from fastloss.dask._partitions import _is_frame, _plan_arrays, _plan_frames, _role_from_frame
from fastloss.dask._threads import kernel_threads, thread_plan
from fastloss.evaluation.chunks import Chunk
from fastloss.evaluation.driver import run_config
from fastloss.evaluation.evaluator import Evaluator
from fastloss.evaluation.keyed_sums import SEGMENT_ROWS
from fastloss.evaluation.readers import BadRowError, InputError
from fastloss.evaluation.state import EvalState
from fastloss.losses.registry import loss_specs

SPLIT_EVERY = 8  # fan-in of the merge tree
_FMT_ERR = "fastloss.dask.error"


def _need_dask():
    try:
        import dask  # noqa: F401  (the real dask: absolute import)
        import dask.array  # noqa: F401
    except ImportError as exc:  # pragma: no cover - dask is installed in CI
        raise ImportError("fastloss.dask needs dask: pip install 'fastloss[dask]'") from exc


# --------------------------------------------------------------------------- states


def _error_state(row, exc):
    return {"format": _FMT_ERR, "row": int(row), "type": type(exc).__name__,
            "message": str(exc)}


def _is_error(st):
    return isinstance(st, dict) and st.get("format") == _FMT_ERR


def _raise_error(st):
    cls = {"InputError": InputError, "BadRowError": InputError,
           "TypeError": TypeError}.get(st["type"], ValueError)
    raise cls(st["message"])


def _new_evaluator(cfg, specs=None):
    if specs is None:
        specs = cfg["specs"]
        if cfg["auto_threads"]:
            n = kernel_threads(cfg["thread_plan"])
            specs = [(name, dict(o, n_threads=n) if o["n_threads"] is None else o)
                     for name, o in specs]
    return Evaluator(specs, **cfg["ev_kwargs"])


def _merge_into(a, b, max_groups):
    """``a.merge(b)`` (in place), or the error state of too many groups."""
    first = min(a.first_row, b.first_row)
    try:
        return a.merge(b, max_groups)
    except InputError as exc:  # more than max_groups groups in all
        return _error_state(first, exc)


def merge_states(a, b, max_groups=None):
    """Merge two evaluation states of disjoint row ranges exactly.

    Parameters
    ----------
    a, b : EvalState, dict, error state or None
        States of the tasks (:class:`~fastloss.evaluation.state.EvalState`, or their
        ``to_dict()``), in any order; None is the empty state.
    max_groups : int, optional
        More distinct groups in the union is an error state.

    Returns
    -------
    EvalState, error state or None
        ``a.copy().merge(b)`` (``a`` and ``b`` are left as they are), as a dict if either
        was one. An error state wins over a state; of two errors, the one at the lower
        row wins.

    See Also
    --------
    fastloss.evaluation.state.EvalState.merge : the merge itself.

    Notes
    -----
    Every part of a state is an exact sum, so the merge is associative and commutative:
    any merge tree gives the same bits.

    Examples
    --------
    >>> merge_states(None, None) is None
    True
    """
    if a is None or b is None:
        return b if a is None else a
    if _is_error(a) or _is_error(b):
        if _is_error(a) and _is_error(b):
            return a if a["row"] <= b["row"] else b
        return a if _is_error(a) else b
    if isinstance(a, dict) or isinstance(b, dict):  # saved states (to_dict): a saved state
        out = merge_states(_live(a), _live(b), max_groups)
        return out.to_dict() if isinstance(out, EvalState) else out
    return _merge_into(a.copy(), b, max_groups)


def _live(st):
    return EvalState.from_dict(st) if isinstance(st, dict) else st


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
    try:
        ev.process(Chunk(a, b, **rows))
    except BadRowError as exc:  # files are named as a local pass names them
        where = cfg["where"].get(exc.role) if cfg.get("files") else None
        return _error_state(a, InputError(f"{where}: {exc}") if where else exc)
    except (ValueError, TypeError) as exc:
        return _error_state(a, exc)
    return ev.state


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
    out, owned = None, False
    for st in states:
        if isinstance(st, tuple):  # a partition's (state, {}): no segment of it was cut
            st = st[0]
        if out is None or st is None or _is_error(out) or _is_error(st):
            out = merge_states(out, st)
        else:
            if not owned:  # merge into a copy: the inputs stay as they came
                out, owned = out.copy(), True
            out = _merge_into(out, st, cfg["ev_kwargs"]["max_groups"])
    return out


def _finish_task(cfg, state):
    if isinstance(state, tuple):  # one partition, nothing merged
        state = state[0]
    if _is_error(state):
        _raise_error(state)
    ev = _new_evaluator(cfg, specs=cfg["specs"])
    if state is not None:
        ev.state = state
    config = run_config(cfg["specs"], cfg["describe"], cfg["describe"], ev)
    return ev.result(cfg["describe"], config)


# --------------------------------------------------------------------------- graph


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

    specs = loss_specs(loss, options)
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
    seg = SEGMENT_ROWS
    n = sum(plan.lengths)
    desc = dict(describe) if describe else dict(plan.where)
    cfg = {
        "specs": specs, "ev_kwargs": ev_kwargs, "n_rows": n, "segment_rows": seg,
        "aligned": bool(ev.per_class or "group" in plan.roles),
        "auto_threads": auto, "thread_plan": thread_plan(client) if (auto and client) else None,
        "roles": plan.roles, "kinds": plan.kinds, "where": desc, "describe": desc,
        "files": bool(describe),
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
