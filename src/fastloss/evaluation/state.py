"""The checkpointable state of one evaluation pass: :class:`EvalState`.

Everything :func:`fastloss.evaluate` adds up lives here: one
:class:`~fastloss.evaluation.accumulator.LossAccumulator` per loss, exact per-class and
per-group sums (:class:`~fastloss.evaluation.exact.ExactSums`), integer counts and the
diagnostics counters. Every part is an exact sum, so :meth:`EvalState.merge` of the states
of disjoint row ranges is the state of their union, in any order. ``fastloss.dask`` merges
its partitions' states with it; the dicts of :meth:`to_dict` are only the on-disk form
(checkpoints) and the wire form between processes.
"""

import math

import numpy as np

from fastloss.evaluation.accumulator import LossAccumulator
from fastloss.evaluation.exact import ExactSums
from fastloss.evaluation.readers import InputError

__all__ = ["EvalState"]

STATE_FORMAT = "fastloss.evaluate.state"
STATE_VERSION = 1
FIRST_BAD_ROWS = 10  # rows kept for the "first bad rows" of the diagnostics
BAD_REASONS = ("labels_out_of_range", "non_integer_labels", "targets_out_of_range",
               "invalid_weights", "probabilities_out_of_range")


def _counters():
    return {"nan_values": 0, "posinf_values": 0, "neginf_values": 0,
            "nonfinite_rows": 0, "rows_not_summing_to_one": 0, "ignored_rows": 0,
            "accuracy_rows": 0, "correct": 0, "bad": {k: 0 for k in BAD_REASONS},
            "bad_rows": 0, "first_bad_rows": []}


def _add_counters(a, b):
    """Counters of two diagnostics dicts added (first bad rows: the first ones of both)."""
    out = {}
    # a's key order, then b's new keys: a merged state writes its JSON in the order of a
    # single pass (a set union would shuffle it, and the files would differ byte-wise)
    for k in [*a, *(k for k in b if k not in a)]:
        x, y = a.get(k), b.get(k)
        if x is None or y is None:
            out[k] = y if x is None else x
        elif k == "first_bad_rows":
            out[k] = sorted(set(x) | set(y))[:FIRST_BAD_ROWS]
        elif isinstance(x, dict):
            out[k] = _add_counters(x, y)
        elif isinstance(x, bool):
            out[k] = x or y
        elif isinstance(x, (int, float)):
            out[k] = x + y
        else:  # a label such as clipped_unit: the same in every chunk
            out[k] = x
    return out


def _ints(v):
    return np.array(v, np.int64).reshape(-1)


class EvalState:
    """Counters and exact sums of one evaluation over a set of rows.

    Parameters
    ----------
    specs : list of (str, dict)
        The losses and their options (:func:`fastloss.losses.registry.loss_specs`).
    n_classes : int
        Rows of the per-class table (0: no table).
    per_class : bool
        Keep per-class loss sums.

    See Also
    --------
    fastloss.evaluate : the pass that fills it.
    fastloss.dask.merge_states : merges the states of a cluster's partitions.

    Notes
    -----
    Sums are exact (:class:`~fastloss.evaluation.exact.ExactSums`, integer counts), so a
    state does not depend on how its rows were chunked, and :meth:`merge` is associative
    and commutative. Group codes are given in order of first appearance; results list
    groups sorted by value, so the codes never show.

    Examples
    --------
    Two halves evaluated apart and merged give the whole pass's loss, bitwise:

    >>> import numpy as np
    >>> from fastloss.evaluation.chunks import Chunk
    >>> from fastloss.evaluation.evaluator import Evaluator
    >>> from fastloss.losses.registry import loss_specs
    >>> x = np.random.default_rng(0).standard_normal((600, 3))
    >>> y = np.arange(600) % 3
    >>> def state(a, b):
    ...     ev = Evaluator(loss_specs("sparse_categorical_cross_entropy", {"from_logits": True}),
    ...                    tail=(3,), label_tail=(), on_bad_row="raise", sum_tolerance=1e-3,
    ...                    per_class=True, diagnostics=True, max_groups=10, num_classes=None)
    ...     ev.process(Chunk(a, b, pred=x[a:b], label=y[a:b]))
    ...     return ev.state
    >>> merged = state(0, 256).merge(EvalState.from_dict(state(256, 600).to_dict()))
    >>> name = "sparse_categorical_cross_entropy"
    >>> bool(merged.accs[name].result() == state(0, 600).accs[name].result())
    True
    >>> merged.class_rows.tolist()
    [200, 200, 200]
    """

    def __init__(self, specs, n_classes, per_class):
        names = [n for n, _ in specs]
        K = int(n_classes)
        self.next_row = 0
        self.dtype = None
        self.accs = {n: LossAccumulator(n, **o) for n, o in specs}
        self.class_sums = {n: ExactSums(2 * K) for n in names} if per_class else {}
        self.class_rows = np.zeros(K, np.int64)
        self.class_correct = np.zeros(K, np.int64)
        self.class_predicted = np.zeros(K, np.int64)
        self.groups = []  # group values, in code order
        self.group_code = {}
        self.has_groups = False
        self.group_sums = {n: ExactSums(0) for n in names}
        self.group_rows = np.zeros(0, np.int64)
        self.group_correct = np.zeros(0, np.int64)
        self.diag = _counters()
        self.loss_diag = {n: {"nan_losses": 0, "inf_losses": 0, "clipped": 0} for n in names}

    @property
    def names(self):
        return list(self.accs)

    @property
    def first_row(self):
        """The lowest row this state covers (its ``next_row`` when it covers none)."""
        acc = next(iter(self.accs.values()))
        ranges = acc.row_ranges
        return ranges[0][0] if ranges else self.next_row

    # ------------------------------------------------------------------ groups
    def group_codes(self, g, n, max_groups):
        """Codes (first appearance order) of the ``n`` group values ``g`` (NumPy or pyarrow);
        new values get new codes, more than ``max_groups`` in all is an :class:`InputError`."""
        values, inv = _unique_values(g, n)
        lut = np.empty(len(values), np.int64)
        for i, v in enumerate(values):
            code = self.group_code.get(v)
            if code is None:
                if len(self.groups) >= max_groups:
                    raise InputError(f"more than max_groups={max_groups} distinct groups; "
                                     "raise --max-groups if that is intended")
                code = self.group_code[v] = len(self.groups)
                self.groups.append(v)
            lut[i] = code
        return lut[inv] if len(values) else np.zeros(n, np.int64)

    def grow_groups(self):
        """Make room in the group counts and sums for every group code seen so far."""
        G = len(self.groups)
        extra = G - self.group_rows.shape[0]
        if extra > 0:
            self.group_rows = np.concatenate([self.group_rows, np.zeros(extra, np.int64)])
            self.group_correct = np.concatenate([self.group_correct, np.zeros(extra, np.int64)])
        for sums in self.group_sums.values():
            sums.grow(2 * G)
        return G

    # ------------------------------------------------------------------ merge
    def merge(self, other, max_groups=None):
        """Add the state of a disjoint set of rows to this one (exactly); returns ``self``.

        Raises
        ------
        InputError
            The union has more than ``max_groups`` distinct groups.
        ValueError
            The states overlap or were made for other losses or options.
        """
        self.next_row = max(self.next_row, other.next_row)
        if self.dtype is None:
            self.dtype = other.dtype
        for n, acc in self.accs.items():
            acc.merge(other.accs[n])
        for n, sums in self.class_sums.items():
            sums.merge(other.class_sums[n])
        self.class_rows = self.class_rows + other.class_rows
        self.class_correct = self.class_correct + other.class_correct
        self.class_predicted = self.class_predicted + other.class_predicted
        self._merge_groups(other, max_groups)
        self.diag = _add_counters(self.diag, other.diag)
        self.loss_diag = _add_counters(self.loss_diag, other.loss_diag)
        return self

    def _merge_groups(self, other, max_groups):
        key_map = []
        for v in other.groups:
            if v not in self.group_code:
                self.group_code[v] = len(self.groups)
                self.groups.append(v)
            key_map.append(self.group_code[v])
        if max_groups is not None and len(self.groups) > max_groups:
            raise InputError(f"more than max_groups={max_groups} distinct groups; raise "
                             "--max-groups if that is intended")
        self.has_groups = bool(self.has_groups or other.has_groups)
        G = self.grow_groups()
        key_map = np.asarray(key_map, np.int64)
        sums_map = np.stack([2 * key_map, 2 * key_map + 1], axis=1).reshape(-1)
        for n, sums in self.group_sums.items():
            sums.merge(_remapped(other.group_sums[n], sums_map, 2 * G))
        np.add.at(self.group_rows, key_map, other.group_rows)
        np.add.at(self.group_correct, key_map, other.group_correct)

    def copy(self):
        return EvalState.from_dict(self.to_dict())

    # ------------------------------------------------------------------ persistence
    def to_dict(self):
        """A JSON-serialisable snapshot (exact sums as hexadecimal integers)."""
        return {
            "format": STATE_FORMAT, "version": STATE_VERSION, "next_row": self.next_row,
            "dtype": None if self.dtype is None else self.dtype.str,
            "accs": {n: a.state_dict() for n, a in self.accs.items()},
            "class_sums": {n: s.state() for n, s in self.class_sums.items()},
            "class_counts": {"rows": self.class_rows.tolist(),
                             "correct": self.class_correct.tolist(),
                             "predicted": self.class_predicted.tolist()},
            "groups": list(self.groups), "has_groups": self.has_groups,
            "group_sums": {n: s.state() for n, s in self.group_sums.items()},
            "group_counts": {"rows": self.group_rows.tolist(),
                             "correct": self.group_correct.tolist()},
            "diag": self.diag, "loss_diag": self.loss_diag,
        }

    @classmethod
    def from_dict(cls, st):
        """The state saved by :meth:`to_dict`, exactly."""
        if st.get("format") != STATE_FORMAT or st.get("version") != STATE_VERSION:
            raise ValueError("not a fastloss evaluate checkpoint (or from another version)")
        new = cls.__new__(cls)
        new.next_row = int(st["next_row"])
        new.dtype = None if st["dtype"] is None else np.dtype(st["dtype"])
        new.accs = {n: LossAccumulator.from_state_dict(s) for n, s in st["accs"].items()}
        new.class_sums = {n: ExactSums.from_state(s) for n, s in st["class_sums"].items()}
        cc = st["class_counts"]
        new.class_rows = _ints(cc["rows"])
        new.class_correct = _ints(cc["correct"])
        new.class_predicted = _ints(cc["predicted"])
        new.groups = list(st["groups"])
        new.group_code = {v: i for i, v in enumerate(new.groups)}
        new.has_groups = st["has_groups"]
        new.group_sums = {n: ExactSums.from_state(s) for n, s in st["group_sums"].items()}
        gc = st["group_counts"]
        new.group_rows = _ints(gc["rows"])
        new.group_correct = _ints(gc["correct"])
        new.diag = st["diag"]
        new.loss_diag = st["loss_diag"]
        return new

    def __reduce__(self):  # pickled (between processes) as its exact dict
        return (EvalState.from_dict, (self.to_dict(),))


def _remapped(sums, key_map, n_keys):
    """``sums`` with its key ``k`` moved to key ``key_map[k]`` of ``n_keys`` keys."""
    out = ExactSums(n_keys)  # (the limbs of a key are its exact integer, in any carry state)
    out.limbs[key_map] = sums.limbs[:len(key_map)]
    out.flags[key_map] = sums.flags[:len(key_map)]
    return out


def _unique_values(g, n):
    """The distinct group values of ``g`` (as Python values: NaN and null are one missing
    group ``None``, integral floats are ints, bytes are text) and each row's index."""
    if isinstance(g, np.ndarray):
        arr = g.reshape(n) if g.ndim > 1 and g.size == n else g
        if arr.ndim != 1:
            raise InputError(f"groups must be one value per row, got shape {g.shape}")
        uniq, inv = np.unique(arr, return_inverse=True)
        values = [u.item() if hasattr(u, "item") else u for u in uniq]
    else:  # a pyarrow array
        enc = g.dictionary_encode()
        inv = enc.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        values = enc.dictionary.to_pylist()
        if (inv < 0).any():
            values = values + [None]
            inv = np.where(inv < 0, len(values) - 1, inv)
    out = []
    for v in values:
        if isinstance(v, float) and math.isnan(v):
            v = None  # NaN != NaN: one "missing" group, like a null
        elif isinstance(v, float) and v.is_integer():
            v = int(v)
        elif isinstance(v, bytes):
            v = v.decode("utf-8", "replace")
        out.append(v)
    return out, inv
