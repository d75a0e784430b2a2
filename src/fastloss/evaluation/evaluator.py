"""Offline evaluation of prediction dumps in one streaming pass: :func:`evaluate`.

One pass over the predictions (and labels, weights, groups) computes, chunk by chunk:

* every requested loss, through a :class:`~fastloss.evaluation.accumulator.LossAccumulator`: the
  value is bitwise the public function's on the whole dump in memory, whatever the
  chunk size, and survives checkpoint / resume exactly;
* top-1 accuracy, per-class and per-group losses and accuracies;
* diagnostics: NaN / inf counts, clipped probabilities, rows whose probabilities do
  not sum to 1, labels out of range / bad weights / probabilities outside [0, 1]
  (an error naming the row, or ``on_bad_row="skip"``: counted and weighted 0).

Per-class and per-group sums are chunk-independent too: the per-sample losses
(``reduction="none"`` values, in ``y_pred``'s dtype) are summed in row order within
fixed *segments* of 256 rows aligned to row 0, and the segment partials are added
exactly. Chunks are whole numbers of segments.
"""

import json
import math
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Mapping

import numpy as np

from fastloss.evaluation.accumulator import (
    _DEFAULTS,
    ExactSums,
    LossAccumulator,
    loss_name,
    loss_options,
    options_json,
)
from fastloss._dispatch import resolve_backend, resolve_threads
from fastloss.evaluation.readers import InputError, Inputs, _is_list
from fastloss._validation import resolve_clip
from fastloss.kernels import CLIP_NONE, CLIP_TORCH

__all__ = ["EvalResult", "evaluate", "segment_rows", "write_json_atomic"]

SEGMENT_ROWS = 256  # per-class / per-group sums: row-order sums over segments, then exact
_CONFUSION_MAX = 64  # up to this many classes, one bincount of (true, predicted) pairs
CHUNK_ELEMS = 1 << 25  # default chunk: 32M values (128 MB of float32 predictions)
_STATE_FORMAT = "fastloss.evaluate.state"
_STATE_VERSION = 1
_CLASS_LOSSES = ("sparse_categorical_cross_entropy", "categorical_cross_entropy",
                 "binary_cross_entropy", "kl_divergence")


def segment_rows(n_cols=None):
    """Rows per segment of the per-class / per-group sums (fixed: results must not depend
    on anything but the data). A segment has at most 256 distinct classes, so the exact
    additions cost at most one per row."""
    return SEGMENT_ROWS


def chunk_rows_for(n_cols, chunk_rows=None):
    """The chunk size used: ``chunk_rows`` (default ~32M values) rounded up to segments."""
    g = segment_rows(n_cols)
    if chunk_rows is None:
        chunk_rows = max(1, CHUNK_ELEMS // max(int(n_cols), 1))
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, (int, np.integer)) \
            or chunk_rows < 1:
        raise ValueError(f"chunk_rows must be a positive integer, got {chunk_rows!r}")
    return -(-int(chunk_rows) // g) * g


# --------------------------------------------------------------------------- JSON output


def _jsonable(v):
    """Plain JSON values; non-finite floats as the strings "NaN", "Infinity", "-Infinity"."""
    if isinstance(v, Mapping):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.ndarray):
        return [_jsonable(x) for x in v.tolist()]
    if isinstance(v, (np.floating, float)):
        f = float(v)
        if math.isnan(f):
            return "NaN"
        if math.isinf(f):
            return "Infinity" if f > 0 else "-Infinity"
        return f
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.bool_):
        return bool(v)
    return v


def write_json_atomic(path, obj):
    """Write ``obj`` as JSON to ``path`` atomically (temp file in the same directory,
    fsync, ``os.replace``): readers see the old file or the new one, never a part."""
    path = os.fspath(path)
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=d)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=1, allow_nan=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# --------------------------------------------------------------------------- result


class EvalResult(Mapping):
    """What :func:`evaluate` returns: ``result[loss_name]`` is the loss (as the public
    function returns it, bitwise); ``accuracy``, ``per_class``, ``per_group``,
    ``diagnostics``, ``details`` (float64 sums) and ``n_rows`` carry the rest.
    ``to_dict()`` is the JSON document, ``format_table()`` the human summary."""

    def __init__(self, losses, doc):
        self._losses = dict(losses)
        self._doc = doc

    def __getitem__(self, name):
        return self._losses[name]

    def __iter__(self):
        return iter(self._losses)

    def __len__(self):
        return len(self._losses)

    @property
    def n_rows(self):
        return self._doc["rows"]

    @property
    def accuracy(self):
        return self._doc["accuracy"]["value"] if self._doc["accuracy"] else None

    @property
    def per_class(self):
        return self._doc["per_class"]

    @property
    def per_group(self):
        return self._doc["per_group"]

    @property
    def diagnostics(self):
        return self._doc["diagnostics"]

    @property
    def details(self):
        return self._doc["loss_details"]

    def to_dict(self):
        return _jsonable(self._doc)

    def to_json(self, **kw):
        return json.dumps(self.to_dict(), **kw)

    def __repr__(self):
        vals = ", ".join(f"{k!r}: {v!r}" for k, v in self._losses.items())
        return f"EvalResult({{{vals}}}, rows={self.n_rows}, accuracy={self.accuracy!r})"

    def format_table(self, max_rows=20):
        return _format_table(self._doc, max_rows)


def _fmt(v, digits=8):
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    f = float(v)
    if not math.isfinite(f):
        return str(f)
    return f"{f:.{digits}g}"


def _format_table(doc, max_rows):
    lines = [f"fastloss eval: {doc['rows']:,} rows"
             + "".join(f"  {k}: {v}" for k, v in doc["inputs"].items())]
    width = max([len("accuracy (top-1)")] + [len(k) for k in doc["losses"]]) + 2
    lines.append("")
    lines.append(f"{'loss':{width}s} {'value':>16s}")
    for k, v in doc["losses"].items():
        lines.append(f"{k:{width}s} {_fmt(v, 9):>16s}")
    acc = doc["accuracy"]
    if acc:
        lines.append(f"{'accuracy (top-1)':{width}s} {_fmt(acc['value'], 6):>16s}  "
                     f"({acc['correct']:,} / {acc['rows']:,} rows)")
    d = doc["diagnostics"]
    lines.append("")
    lines.append("diagnostics" if d["enabled"] else "diagnostics (NaN/inf, clipping, row sums: off)")
    rows = [("NaN values", d["nan_values"]), ("+inf values", d["posinf_values"]),
            ("-inf values", d["neginf_values"]), ("rows with NaN/inf", d["nonfinite_rows"])]
    if not d["enabled"]:
        rows = []
    if d.get("rows_not_summing_to_one") is not None and d["enabled"]:
        rows.append((f"rows not summing to 1 (tol {d['sum_tolerance']:g})",
                     d["rows_not_summing_to_one"]))
    for k, ld in d["losses"].items() if d["enabled"] else ():
        if ld.get("clipped") is not None:
            rows.append((f"clipped probabilities ({k}, {ld['clipped_unit']})", ld["clipped"]))
        rows.append((f"NaN / inf losses ({k})", f"{ld['nan_losses']:,} / {ld['inf_losses']:,}"))
    rows.append(("ignored rows (ignore_index)", d["ignored_rows"]))
    bad = d["bad_rows"]
    rows.append((f"bad rows ({bad['action']})", bad["count"]))
    for reason, n in bad["reasons"].items():
        if n:
            rows.append((f"  {reason.replace('_', ' ')}", n))
    w = max(len(r[0]) for r in rows) + 2
    lines += [f"  {name:{w}s} {_fmt(v):>14s}" for name, v in rows]
    first = next(iter(doc["losses"]), None)
    for title, key, label in (("per class", "per_class", "class"),
                              ("per group", "per_group", "group")):
        items = doc[key]
        if not items:
            continue
        lines.append("")
        shown = items
        note = ""
        if len(items) > max_rows:
            shown = sorted(items, key=lambda r: -_nan_low(r["losses"].get(first, {}).get("mean")))
            shown = shown[:max_rows]
            note = f" ({len(items):,} in all; the {max_rows} with the highest {first} shown)"
        lines.append(f"{title}{note}")
        lines.append(f"  {label:>12s} {'rows':>12s} {'accuracy':>10s}  mean {first}")
        for r in shown:
            mean = r["losses"].get(first, {}).get("mean")
            acc = _fmt(r.get("accuracy"), 5)
            lines.append(f"  {str(r[label]):>12s} {_fmt(r['rows']):>12s} {acc:>10s}  "
                         f"{_fmt(mean, 8)}")
    return "\n".join(lines)


def _nan_low(v):
    return -math.inf if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


# --------------------------------------------------------------------------- evaluator


def _loss_specs(loss, options):
    """``[(name, options)]`` from a name, a list of names or ``{name: {options}}``."""
    if isinstance(loss, str) or callable(loss):
        items = [(loss, {})]
    elif isinstance(loss, Mapping):
        items = list(loss.items())
    else:
        items = [(x, {}) if not isinstance(x, tuple) else x for x in loss]
    if not items:
        raise ValueError("loss: name at least one loss")
    specs, used, seen = [], set(), set()
    for item, own in items:
        name = loss_name(item)
        if name in seen:
            raise ValueError(f"loss {name!r} is named twice")
        seen.add(name)
        opts = {k: v for k, v in options.items() if k in _DEFAULTS[name]}
        used |= set(opts)
        opts.update(own or {})
        specs.append((name, loss_options(name, opts)))
    unused = sorted(set(options) - used)
    if unused:
        raise TypeError(f"no requested loss takes the option {', '.join(map(repr, unused))}")
    return specs


def _prob_mode(name, o):
    """Does this loss read y_pred as probabilities (checked to lie in [0, 1])?"""
    if name in ("sparse_categorical_cross_entropy", "categorical_cross_entropy",
                "binary_cross_entropy"):
        return not o["from_logits"]
    if name == "kl_divergence":
        return not o["log_input"]
    return False


class _Evaluator:
    """The state of one evaluation pass (checkpointable) and the per-chunk work."""

    def __init__(self, specs, *, tail, label_tail, on_bad_row, sum_tolerance, per_class,
                 diagnostics, max_groups, num_classes, accuracy=True):
        if on_bad_row not in ("raise", "skip"):
            raise ValueError(f"on_bad_row={on_bad_row!r} must be 'raise' or 'skip'")
        self.specs = specs
        self.names = [n for n, _ in specs]
        self.on_bad_row = on_bad_row
        self.tol = float(sum_tolerance)
        if not self.tol >= 0:
            raise ValueError(f"sum_tolerance={sum_tolerance!r} must be non-negative")
        self.want_diag = bool(diagnostics)
        self.want_acc = bool(accuracy)
        self.max_groups = int(max_groups)
        if len(tail) > 1:
            raise InputError("predictions must be one row per sample (1-D, or 2-D rows x "
                             f"classes); got rows of shape {tail}")
        self.ndim = 1 + len(tail)
        self.C = tail[0] if tail else 1
        if num_classes is not None and self.ndim == 2 and num_classes != self.C:
            raise InputError(f"wrong number of classes: the predictions have {self.C} columns "
                             f"but --num-classes is {num_classes}")
        first = specs[0][1]
        self.logits = first.get("from_logits", first.get("log_input", False))
        names = set(self.names)
        if "sparse_categorical_cross_entropy" in names and self.ndim == 1:
            raise InputError("sparse_categorical_cross_entropy needs predictions with a class "
                             "axis (rows x classes); these are one value per row")
        # label kind: "index" (class indices) or "dense" (same shape as the predictions)
        ltail = tuple(label_tail) if label_tail is not None else None
        if ltail is not None and len(ltail) == 1 and ltail[0] == 1 and self.ndim == 2 \
                and self.C != 1:
            ltail = ()
        if ltail is None:
            self.label_kind = "index" if (self.ndim == 2 and (
                "sparse_categorical_cross_entropy" in names or self.C > 1)) else "dense"
        elif ltail == () and self.ndim == 2:
            self.label_kind = "index"
        elif ltail == tuple(tail):
            self.label_kind = "dense"
        else:
            raise InputError(f"wrong number of classes: the labels have rows of shape {ltail} "
                             f"but the predictions have rows of shape {tuple(tail)}")
        if self.label_kind == "dense" and "sparse_categorical_cross_entropy" in names:
            raise InputError("sparse_categorical_cross_entropy needs integer class labels (one "
                             "per row); the labels have one value per class")
        self.ignore_index = None
        for n, o in specs:
            if n == "sparse_categorical_cross_entropy" and o["ignore_index"] is not None:
                self.ignore_index = int(o["ignore_index"])
        self.classification = bool(names & set(_CLASS_LOSSES))
        self.multilabel = self.ndim == 2 and self.label_kind == "dense" and \
            names <= {"binary_cross_entropy", "mean_squared_error"}
        # classes of the per-class table
        if not self.classification:
            self.K = 0
        elif self.ndim == 1:
            self.K = 2
        else:
            self.K = self.C
        self.per_class = bool(per_class) and self.K > 0
        self.prob = [_prob_mode(n, o) for n, o in specs]
        backend = specs[0][1]["backend"]
        self.kern = resolve_backend(backend)[1]
        self._threads = resolve_threads(specs[0][1]["n_threads"])
        # the NaN / inf screen may use the loss values instead of the top-1 values
        # (see _nonfinite_fast): sparse cross-entropy on logits, all row weights non-zero
        self._fast_screen = self.ndim == 2 and self.C > 1 and all(
            n == "sparse_categorical_cross_entropy" and o["from_logits"]
            and o["class_weight"] is None and o["ignore_index"] is None for n, o in specs)
        self._bufs = {}
        # state
        self.accs = {n: LossAccumulator(n, **o) for n, o in specs}
        self.class_sums = {n: ExactSums(2 * self.K) for n in self.names} if self.per_class else {}
        self.class_rows = np.zeros(self.K, np.int64)
        self.class_correct = np.zeros(self.K, np.int64)
        self.class_predicted = np.zeros(self.K, np.int64)
        self.groups = []  # group values, in code order
        self.group_code = {}
        self.group_sums = {n: ExactSums(0) for n in self.names}
        self.group_rows = np.zeros(0, np.int64)
        self.group_correct = np.zeros(0, np.int64)
        self.diag = {"nan_values": 0, "posinf_values": 0, "neginf_values": 0,
                     "nonfinite_rows": 0, "rows_not_summing_to_one": 0, "ignored_rows": 0,
                     "accuracy_rows": 0, "correct": 0,
                     "bad": {"labels_out_of_range": 0, "non_integer_labels": 0,
                             "targets_out_of_range": 0, "invalid_weights": 0,
                             "probabilities_out_of_range": 0},
                     "bad_rows": 0, "first_bad_rows": []}
        self.loss_diag = {n: {"nan_losses": 0, "inf_losses": 0, "clipped": 0} for n in self.names}
        self.has_groups = False
        self._seg_cache = {}
        self.next_row = 0
        self.dtype = None

    # ------------------------------------------------------------------ per chunk
    def process(self, ch):
        start, n = ch["start"], ch["stop"] - ch["start"]
        x = np.asarray(ch["pred"])
        if x.dtype.kind not in "fiub":
            raise InputError(f"predictions must be numeric, got dtype {x.dtype}")
        if x.dtype.kind != "f" or x.dtype == np.float16:
            x = x.astype(np.float64 if x.dtype.kind != "f" else np.float32)
        if x.ndim != self.ndim or (x.ndim == 2 and x.shape[1] != self.C):
            raise InputError(f"wrong number of classes: rows from {start} have shape "
                             f"{x.shape[1:]} but earlier rows had "
                             f"{(self.C,) if self.ndim == 2 else ()}")
        if self.dtype is None:
            self.dtype = x.dtype
        lab = np.asarray(ch["label"]) if ch["label"] is not None else None
        sw = ch["weight"]
        reasons = {}
        y, t, ignored = self._labels(lab, x, reasons)

        # ---- weights
        if sw is not None:
            sw = np.asarray(sw, dtype=np.float64).reshape(n, -1)
            if sw.shape[1] != 1:
                raise InputError(f"weights must be one value per row, got rows of {sw.shape[1]}")
            sw = sw[:, 0]
            badw = ~(sw >= 0) | (sw == np.inf)
            if badw.any():
                reasons["invalid_weights"] = badw

        # ---- probabilities outside [0, 1]
        if any(self.prob) and x.size:
            k = self.kern.first_outside_unit_interval(np.ascontiguousarray(x).reshape(-1))
            if k >= 0:
                with np.errstate(invalid="ignore"):
                    outside = (x < 0) | (x > 1)
                reasons["probabilities_out_of_range"] = outside.any(axis=1) if x.ndim == 2 \
                    else outside

        bad = None
        if reasons:
            bad = np.zeros(n, bool)
            for m in reasons.values():
                bad |= m
            if self.on_bad_row == "raise":
                r = int(np.argmax(bad))
                raise InputError(self._bad_message(start + r, r, reasons, lab, sw, x))
            self._count_bad(start, bad, reasons)
            # a bad row is kept in place with weight 0 (so the blocks stay aligned) and a
            # valid stand-in value wherever the kernel would read it
            if y is not None:
                y = np.where(bad, 0, y)
            if t is not None and "targets_out_of_range" in reasons:
                t = np.array(t, dtype=x.dtype if t.dtype.kind != "f" else t.dtype)
                t[reasons["targets_out_of_range"]] = 0
            if "probabilities_out_of_range" in reasons:
                x = np.array(x)
                x[reasons["probabilities_out_of_range"]] = 1.0 / self.C if x.ndim == 2 else 0.5
            sw = np.ones(n) if sw is None else np.array(sw)
            sw[bad] = 0.0
        if ignored is not None:
            self.diag["ignored_rows"] += int(np.count_nonzero(
                ignored if bad is None else ignored & ~bad))
        excluded = bad if ignored is None else (ignored if bad is None else bad | ignored)
        keep = None if excluded is None else ~excluded  # None: every row counts

        # ---- losses
        want_top = self.classification and self.want_acc and self.ndim == 2 and self.C > 1
        pred_cls = None
        if want_top:
            pred_cls = self._buf("pred", n, np.int64)
        fast = self._fast_screen and sw is None and ignored is None and bad is None
        outs = {}
        onehot = None
        for (name, o), prob in zip(self.specs, self.prob):
            acc = self.accs[name]
            w_l = sw
            if name == "sparse_categorical_cross_entropy":
                yt = y
            elif self.label_kind == "index":
                if onehot is None:
                    onehot = np.zeros((n, self.C), dtype=x.dtype)
                    onehot[np.arange(n), y if excluded is None else np.where(excluded, 0, y)] = 1
                yt = onehot
                if ignored is not None:
                    w_l = np.ones(n) if sw is None else np.array(sw)
                    w_l[ignored] = 0.0
            else:
                yt = t
            # (one kernel call per chunk: on a busy machine every parallel region waits for
            # its slowest thread, so pieces small enough to stay in the cache for the top-1
            # pass cost more than the second read of the chunk)
            out, prep = acc._update(yt, x, w_l, start, want_out=True, check_inputs=False,
                                    out=self._buf("out_" + name, x.size if name ==
                                                  "binary_cross_entropy" else n, x.dtype))
            fin = None
            if self.want_diag or fast:
                with np.errstate(invalid="ignore"):
                    fin = np.isfinite(np.add.reduce(out)) if out.size else True
                nf = None if fin else ~np.isfinite(out)
            outs[name] = (out, prep, nf if fast or self.want_diag else None)
            if self.want_diag:
                ld = self.loss_diag[name]
                if nf is not None:
                    bad_vals = out[nf]
                    ld["nan_losses"] += int(np.count_nonzero(np.isnan(bad_vals)))
                    ld["inf_losses"] += int(np.count_nonzero(np.isinf(bad_vals)))
                if prob and o.get("clip") is not None:
                    ld["clipped"] += self._clipped(name, o, x, y, excluded)

        # ---- predicted class: one argmax pass, which is also the NaN / +inf screen
        # (argmax returns the first NaN of a row, else the first +inf)
        top = None
        if want_top:  # the top-1 kernel (multi-threaded; every backend has it)
            self.kern.argmax_rows(np.ascontiguousarray(x), pred_cls, self._threads)
        if self.classification and self.want_acc:
            if self.ndim == 2 and self.C > 1:
                if not fast:
                    top = np.take_along_axis(x, pred_cls[:, None], axis=1)[:, 0]
            else:
                thr = 0.0 if self.logits else 0.5
                pred_cls = (x.reshape(n) > thr).view(np.int8)
        if x.ndim == 1:
            nanrow = np.isnan(x)
        elif top is not None:
            nanrow = np.isnan(top)
        else:
            nanrow = None

        # ---- diagnostics
        if fast and pred_cls is not None and self.ndim == 2:
            # sparse cross-entropy on logits with every weight non-zero: a row with a NaN
            # or +inf logit has a NaN or inf loss, so the rows to look at are those of the
            # non-finite losses (the same rows the top-1 value would flag, and no pass more)
            nanrow = self._nonfinite_fast(x, n, outs)
        elif self.want_diag and x.size:
            nanrow = self._nonfinite(x, n, top, outs, excluded, nanrow)

        # ---- accuracy and per-class
        correct = None
        if self.classification:
            if self.label_kind == "index":
                true_cls = y
            elif self.ndim == 2:
                true_cls = np.argmax(t, axis=1) if not self.multilabel else None
            else:
                true_cls = (np.asarray(t).reshape(n) >= 0.5).view(np.int8)
            counts = None  # rows per class in this chunk (kept rows)
            if (true_cls is not None and pred_cls is not None and keep is None
                    and self.per_class and self.K <= _CONFUSION_MAX
                    and ch.get("group") is None and true_cls.dtype == np.int64):
                # one bincount of (true, predicted) pairs gives every count
                key = self._buf("key", n, np.int64)
                np.multiply(true_cls, self.K, out=key)
                np.add(key, pred_cls, out=key)
                conf = np.bincount(key, minlength=self.K * self.K).reshape(self.K, self.K)
                ok = conf.diagonal().copy()
                if nanrow is not None:  # a row with a NaN prediction is never right
                    hit = np.flatnonzero(nanrow)
                    hit = hit[pred_cls[hit] == true_cls[hit]]
                    if hit.size:
                        ok -= np.bincount(true_cls[hit], minlength=self.K)
                self.diag["accuracy_rows"] += n
                self.diag["correct"] += int(ok.sum())
                self.class_correct += ok
                self.class_predicted += conf.sum(axis=0)
                counts = conf.sum(axis=1)
                self.class_rows += counts
            elif true_cls is not None and pred_cls is not None:
                correct = pred_cls == true_cls
                if keep is not None:
                    correct &= keep
                if nanrow is not None:
                    correct &= ~nanrow  # a row with a NaN prediction is never right
                kept = n if keep is None else int(np.count_nonzero(keep))
                self.diag["accuracy_rows"] += kept
                self.diag["correct"] += int(np.count_nonzero(correct))
                if self.per_class:
                    pk = pred_cls if keep is None else pred_cls[keep]
                    self.class_correct += np.bincount(true_cls[correct], minlength=self.K)
                    self.class_predicted += np.bincount(pk, minlength=self.K)
            if true_cls is not None and self.per_class and counts is None:
                tk = true_cls if keep is None else true_cls[keep]
                counts = np.bincount(tk, minlength=self.K)
                self.class_rows += counts
            if self.per_class and self.multilabel:
                self.class_rows += n if keep is None else int(np.count_nonzero(keep))
            if self.per_class:
                for name in self.names:
                    out, prep, _ = outs[name]
                    self._keyed_sums(self.class_sums[name], name, n, out, prep, keep,
                                     true_cls, self.K, per_column=true_cls is None,
                                     counts=counts)
        if ch.get("group") is not None:
            self._groups(ch["group"], n, outs, keep, correct)
        self.next_row = ch["stop"]

    def _buf(self, name, n, dtype):
        """A reused work array of ``n`` items (no fresh pages to fault in every chunk)."""
        b = self._bufs.get(name)
        if b is None or b.shape[0] < n or b.dtype != dtype:
            b = self._bufs[name] = np.empty(n, dtype)
        return b[:n]

    def _nonfinite_fast(self, x, n, outs):
        """NaN / inf counts when every row with a NaN or +inf has a non-finite loss (sparse
        cross-entropy on logits, no zero weight); returns the NaN rows (or None)."""
        flag = None
        for _, _, nf in outs.values():
            if nf is not None:
                flag = nf if flag is None else flag | nf
        if flag is None or not flag.any():
            return None
        xs = x[flag]
        if self.want_diag:
            self.diag["nan_values"] += int(np.count_nonzero(np.isnan(xs)))
            self.diag["posinf_values"] += int(np.count_nonzero(np.isposinf(xs)))
            self.diag["neginf_values"] += int(np.count_nonzero(np.isneginf(xs)))
            self.diag["nonfinite_rows"] += int(np.count_nonzero(~np.isfinite(xs).all(axis=1)))
        nanrow = np.zeros(n, bool)
        nanrow[flag] = np.isnan(xs).any(axis=1)
        return nanrow

    def _labels(self, lab, x, reasons):
        """(class indices, targets, ignored-rows mask) of a chunk; bad rows into reasons."""
        if self.label_kind != "index":
            t = lab
            if t.dtype.kind not in "fiub":
                raise InputError(f"targets must be numeric, got dtype {t.dtype}")
            if t.shape[1:] != x.shape[1:]:
                raise InputError(f"wrong number of classes: targets have rows of shape "
                                 f"{t.shape[1:]} but predictions {x.shape[1:]}")
            need_unit = any(nm in ("categorical_cross_entropy", "binary_cross_entropy")
                            or (nm == "kl_divergence" and not o["log_target"])
                            for nm, o in self.specs)
            if need_unit:
                with np.errstate(invalid="ignore"):
                    out_t = (t < 0) | (t > 1)
                if out_t.ndim == 2:
                    out_t = out_t.any(axis=1)
                if out_t.any():
                    reasons["targets_out_of_range"] = out_t
            return None, t, None
        if lab.ndim == 2 and lab.shape[1] == 1:
            lab = lab[:, 0]
        if lab.ndim != 1:
            raise InputError(f"labels must be one class index per row, got rows of shape "
                             f"{lab.shape[1:]}")
        nonint = None
        if lab.dtype.kind == "f":
            with np.errstate(invalid="ignore"):
                nonint = ~np.isfinite(lab) | (lab != np.round(lab))
            y = np.where(nonint, 0, lab).astype(np.int64)
            if nonint.any():
                reasons["non_integer_labels"] = nonint
            else:
                nonint = None
        elif lab.dtype.kind == "u" and lab.dtype.itemsize == 8:
            y = np.where(lab > np.iinfo(np.int64).max, -1, lab).astype(np.int64)
        elif lab.dtype.kind in "iub":
            y = np.ascontiguousarray(lab, dtype=np.int64)  # no copy for int64 labels
        else:
            raise InputError(f"labels must be integer class indices, got dtype {lab.dtype}")
        oor = y.view(np.uint64) >= self.C  # one pass: negative labels wrap around
        ignored = None
        if self.ignore_index is not None:
            ignored = y == self.ignore_index
            if ignored.any():
                oor &= ~ignored
                if nonint is not None:
                    ignored &= ~nonint
            else:
                ignored = None
        if nonint is not None:
            oor &= ~nonint
        if oor.any():
            reasons["labels_out_of_range"] = oor
        return y, None, ignored

    def _rowsum_mode(self):
        """Probabilities over classes: their row sums are checked (and screen NaN / inf)."""
        return self.ndim == 2 and self.C > 1 and any(
            p and nm != "binary_cross_entropy" for (nm, _), p in zip(self.specs, self.prob))

    def _nonfinite(self, x, n, top, outs, excluded, nanrow):
        """Count NaN / inf predictions in the rows that can hold one; returns NaN rows."""
        with np.errstate(all="ignore"):
            rowsum = np.add.reduce(x, axis=1) if self._rowsum_mode() else None
        # rows to look at: a NaN or +inf prediction (seen by the top-1 argmax), or a
        # non-finite loss or row sum; without the argmax, every value is checked
        if x.ndim == 1:
            flag = ~np.isfinite(x)
        elif top is None and rowsum is None:
            # one pass without temporaries: the sum is finite unless a value is not (or it
            # overflows, then the rows are checked and nothing is found)
            with np.errstate(all="ignore"):
                total = np.add.reduce(x.reshape(-1))
            if np.isfinite(total):
                flag = np.zeros(n, bool)
            else:
                flag = ~np.isfinite(x).all(axis=1)
        else:
            flag = np.zeros(n, bool) if top is None else ~np.isfinite(top)
            if rowsum is not None:  # non-finite exactly for rows with a NaN / inf (or overflow)
                flag |= ~np.isfinite(rowsum)
            for out, prep, _ in outs.values():
                bad_out = ~np.isfinite(out)
                flag |= bad_out.reshape(n, -1).any(axis=1) if prep.row_mult > 1 else bad_out
        if flag.any():
            xs = x[flag]
            self.diag["nan_values"] += int(np.count_nonzero(np.isnan(xs)))
            self.diag["posinf_values"] += int(np.count_nonzero(np.isposinf(xs)))
            self.diag["neginf_values"] += int(np.count_nonzero(np.isneginf(xs)))
            nf = ~np.isfinite(xs)
            self.diag["nonfinite_rows"] += int(np.count_nonzero(
                nf.any(axis=1) if nf.ndim == 2 else nf))
            if nanrow is None:
                nanrow = np.zeros(n, bool)
                nanrow[flag] = np.isnan(xs).any(axis=1) if xs.ndim == 2 else np.isnan(xs)
        if rowsum is not None:
            self.diag["rows_not_summing_to_one"] += self._not_summing(x, rowsum, excluded)
        return nanrow

    def _bad_message(self, row, r, reasons, lab, sw, x):
        if "non_integer_labels" in reasons and reasons["non_integer_labels"][r]:
            return f"row {row}: label {lab[r]!r} is not an integer class index"
        if "labels_out_of_range" in reasons and reasons["labels_out_of_range"][r]:
            ign = "" if self.ignore_index is None else \
                f" and is not ignore_index={self.ignore_index}"
            return (f"row {row}: label {int(np.asarray(lab).reshape(-1)[r])} is out of range "
                    f"[0, {self.C}){ign} (use --on-bad-row skip to count and skip such rows)")
        if "targets_out_of_range" in reasons and reasons["targets_out_of_range"][r]:
            return f"row {row}: targets {np.asarray(lab)[r]!r} are not in [0, 1]"
        if "invalid_weights" in reasons and reasons["invalid_weights"][r]:
            return f"row {row}: weight {float(sw[r])!r} is not finite and non-negative"
        v = np.atleast_1d(x[r])
        vals = ", ".join(repr(float(a)) for a in v[(v < 0) | (v > 1)][:3])
        return (f"row {row}: predictions outside [0, 1] ({vals}) but the loss reads "
                "probabilities; logits need from_logits=True (--from-logits)")

    def _count_bad(self, start, bad, reasons):
        d = self.diag
        for k, m in reasons.items():
            d["bad"][k] += int(np.count_nonzero(m))
        d["bad_rows"] += int(np.count_nonzero(bad))
        if len(d["first_bad_rows"]) < 10:
            d["first_bad_rows"] += [start + int(i) for i in
                                    np.flatnonzero(bad)[:10 - len(d["first_bad_rows"])]]

    def _clipped(self, name, o, x, y, excluded):
        mode, eps = resolve_clip(o["clip"], x.dtype, False)
        if mode == CLIP_NONE:
            return 0
        if name == "sparse_categorical_cross_entropy" and not o["label_smoothing"]:
            if excluded is None:
                p = np.take_along_axis(x, y[:, None], axis=1)[:, 0]
            else:
                p = np.take_along_axis(x, np.where(excluded, 0, y)[:, None], axis=1)[~excluded, 0]
            unit = "rows"
        else:
            p = x
            unit = "values"
        self.loss_diag[name]["clipped_unit"] = unit
        if mode == CLIP_TORCH:  # each log clamped at -100
            lim = math.exp(-100.0)
            with np.errstate(invalid="ignore"):
                hit = p < lim
                if name == "binary_cross_entropy":
                    hit |= (1.0 - p.astype(np.float64)) < lim
            return int(np.count_nonzero(hit))
        lo = x.dtype.type(eps)
        hi = x.dtype.type(1) - lo
        with np.errstate(invalid="ignore"):
            return int(np.count_nonzero((p < lo) | (p > hi)))

    def _not_summing(self, x, rowsum, excluded):
        """Rows (finite, not excluded) whose probabilities differ from a sum of 1 by more
        than the tolerance, decided on the exact sum (so chunking cannot change it)."""
        eps = float(np.finfo(x.dtype).eps)
        margin = 4.0 * (self.C + 2) * eps * (1.0 + self.tol)  # bound on the error of rowsum
        fin = np.isfinite(rowsum)
        if excluded is not None:
            fin &= ~excluded
        dev = np.abs(rowsum.astype(np.float64) - 1.0)
        sure = fin & (dev > self.tol + margin)
        unsure = np.flatnonzero(fin & (dev > self.tol - margin) & ~sure)
        n = int(np.count_nonzero(sure))
        for i in unsure:
            n += abs(math.fsum(x[i].astype(np.float64).tolist()) - 1.0) > self.tol
        return n

    def _row_values(self, out, prep, n):
        """Per-row loss values and weights (None: every weight is 1); multi-label rows are
        summed over their columns in column order (a fixed order)."""
        w = prep.weights() if prep.weighted else None
        if prep.row_mult == 1:
            return out, w
        v = out.reshape(n, prep.row_mult).astype(np.float64)
        sv = v[:, 0].copy()
        for j in range(1, prep.row_mult):
            sv += v[:, j]
        if w is None:
            return sv, np.full(n, float(prep.row_mult))
        w = w.reshape(n, prep.row_mult)
        swt = w[:, 0].copy()
        for j in range(1, prep.row_mult):
            swt += w[:, j]
        return sv, swt

    def _seg_offsets(self, n, K):
        """``(row // 256) * K`` for rows 0..n-1 (chunks start at a segment boundary)."""
        c = self._seg_cache.get(K)
        if c is None or c.shape[0] < n:
            c = self._seg_cache[K] = (np.arange(n, dtype=np.int64) >> 8) * K
        return c[:n]

    def _cell_keys(self, span, K):
        """``arange(span) % K``: the key of each (segment, key) cell (cached)."""
        c = self._seg_cache.get(("cells", K))
        if c is None or c.shape[0] < span:
            c = self._seg_cache[("cells", K)] = np.arange(span, dtype=np.int64) % K
        return c[:span]

    def _keyed_sums(self, sums, name, n, out, prep, keep, keys, K, per_column=False,
                    counts=None):
        """Add per-key (value, weight) sums: row-order float64 sums within each segment of
        256 rows, then exactly. ``sums`` has keys 2k (values) and 2k+1 (weights).
        ``counts``: the rows per key of this chunk, when known (with every weight 1, they
        are the weight sums: exact integers, whatever the segments)."""
        omit = self.accs[name].options["nan_policy"] == "omit"
        if (counts is not None and not per_column and prep.row_mult == 1 and keep is None
                and not omit and not prep.weighted and keys.dtype == np.int64):
            if n == 0:
                return
            lin = self._buf("lin", n, np.int64)
            np.add(self._seg_offsets(n, K), keys, out=lin)
            self._segment_add(sums, lin, out, None, K, counts=counts)
            return
        if per_column:  # multi-label: one key per column, every element
            m = prep.row_mult
            v = out.reshape(n, m)
            w = prep.weights().reshape(n, m) if prep.weighted else np.ones((n, m))
            sel = np.ones((n, m), bool) if keep is None else \
                np.broadcast_to(keep[:, None], (n, m)).copy()
            if omit:
                sel &= ~np.isnan(v)
            lin = (self._seg_offsets(n, K)[:, None] + np.arange(m)[None, :])[sel]
            self._segment_add(sums, lin, v[sel], w[sel], K)
            return
        v, w = self._row_values(out, prep, n)
        lin = self._seg_offsets(n, K) + keys
        sel = keep
        if omit:
            fin = ~np.isnan(v)
            sel = fin if sel is None else sel & fin
        if sel is not None:
            lin, v = lin[sel], v[sel]
            w = None if w is None else w[sel]
        self._segment_add(sums, lin, v, w, K)

    def _segment_add(self, sums, lin, v, w, K, counts=None):
        """Sum ``v`` and ``w`` (None: 1) per (segment, key) in row order, then add exactly.
        ``counts`` (rows per key, with ``w`` None): the weight sums, no second bincount."""
        if lin.size == 0:
            return
        span = int(lin[-1] // K + 1) * K
        if span <= max(4 * lin.size, 1 << 16):
            idx, size = lin, span
            keys = self._cell_keys(span, K)
        else:  # many keys (groups): only the (segment, key) pairs present
            uniq, idx = np.unique(lin, return_inverse=True)
            size, keys = uniq.size, uniq % K
        sv = np.bincount(idx, weights=v, minlength=size)
        nzv = sv != 0
        if counts is not None:
            kw = np.flatnonzero(counts)
            swt, wkeys = counts[kw].astype(np.float64), kw
        else:
            swt = np.bincount(idx, weights=w, minlength=size)
            if w is None:
                swt = swt.astype(np.float64)
            nzw = swt != 0
            swt, wkeys = swt[nzw], keys[nzw]
        sums.add(np.concatenate([sv[nzv], swt]),
                 np.concatenate([2 * keys[nzv], 2 * wkeys + 1]))

    def _groups(self, g, n, outs, keep, correct):
        self.has_groups = True
        codes = self._group_codes(g, n)
        Kg = len(self.groups)
        if self.group_rows.shape[0] < Kg:
            extra = Kg - self.group_rows.shape[0]
            self.group_rows = np.concatenate([self.group_rows, np.zeros(extra, np.int64)])
            self.group_correct = np.concatenate([self.group_correct, np.zeros(extra, np.int64)])
        self.group_rows += np.bincount(codes if keep is None else codes[keep], minlength=Kg)
        if correct is not None:
            self.group_correct += np.bincount(codes[correct], minlength=Kg)
        for name in self.names:
            sums = self.group_sums[name]
            sums.grow(2 * Kg)
            out, prep, _ = outs[name]
            self._keyed_sums(sums, name, n, out, prep, keep, codes, Kg)

    def _group_codes(self, g, n):
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
        lut = np.empty(len(values), np.int64)
        for i, v in enumerate(values):
            if isinstance(v, float) and math.isnan(v):
                v = None  # NaN != NaN: one "missing" group, like a null
            elif isinstance(v, float) and v.is_integer():
                v = int(v)
            elif isinstance(v, bytes):
                v = v.decode("utf-8", "replace")
            code = self.group_code.get(v)
            if code is None:
                if len(self.groups) >= self.max_groups:
                    raise InputError(f"more than max_groups={self.max_groups} distinct groups; "
                                     "raise --max-groups if that is intended")
                code = self.group_code[v] = len(self.groups)
                self.groups.append(v)
            lut[i] = code
        return lut[inv] if len(values) else np.zeros(n, np.int64)

    # ------------------------------------------------------------------ state
    def state_dict(self):
        return {
            "format": _STATE_FORMAT, "version": _STATE_VERSION, "next_row": self.next_row,
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

    def load_state(self, st):
        if st.get("format") != _STATE_FORMAT or st.get("version") != _STATE_VERSION:
            raise ValueError("not a fastloss evaluate checkpoint (or from another version)")
        self.next_row = int(st["next_row"])
        self.dtype = None if st["dtype"] is None else np.dtype(st["dtype"])
        self.accs = {n: LossAccumulator.from_state_dict(s) for n, s in st["accs"].items()}
        self.class_sums = {n: ExactSums.from_state(s) for n, s in st["class_sums"].items()}
        cc = st["class_counts"]
        self.class_rows = np.array(cc["rows"], np.int64).reshape(-1)
        self.class_correct = np.array(cc["correct"], np.int64).reshape(-1)
        self.class_predicted = np.array(cc["predicted"], np.int64).reshape(-1)
        self.groups = [v for v in st["groups"]]
        self.group_code = {v: i for i, v in enumerate(self.groups)}
        self.has_groups = st["has_groups"]
        self.group_sums = {n: ExactSums.from_state(s) for n, s in st["group_sums"].items()}
        gc = st["group_counts"]
        self.group_rows = np.array(gc["rows"], np.int64).reshape(-1)
        self.group_correct = np.array(gc["correct"], np.int64).reshape(-1)
        self.diag = st["diag"]
        self.loss_diag = st["loss_diag"]

    # ------------------------------------------------------------------ result
    def result(self, inputs_desc, config):
        losses, details = {}, {}
        for name, acc in self.accs.items():
            losses[name] = acc.result()
            s, w = acc.sum_and_weight()
            details[name] = {"sum": s, "weight_sum": w, "reduction": acc.options["reduction"],
                             "dtype": str(np.asarray(losses[name]).dtype)}
        d = self.diag
        acc_doc = None
        if self.classification and self.want_acc and not self.multilabel:
            acc_doc = {"value": d["correct"] / d["accuracy_rows"] if d["accuracy_rows"] else None,
                       "correct": d["correct"], "rows": d["accuracy_rows"]}
        per_class = []
        if self.per_class:
            for k in range(self.K):
                row = {"class": k, "rows": int(self.class_rows[k])}
                if not self.multilabel and self.want_acc:
                    row.update(predicted=int(self.class_predicted[k]),
                               correct=int(self.class_correct[k]),
                               accuracy=(int(self.class_correct[k]) / int(self.class_rows[k])
                                         if self.class_rows[k] else None))
                row["losses"] = {n: _mean_doc(self.class_sums[n], k) for n in self.names}
                per_class.append(row)
        per_group = []
        for code, v in sorted(enumerate(self.groups), key=lambda cv: _sort_key(cv[1])):
            rows = int(self.group_rows[code])
            row = {"group": v, "rows": rows}
            if self.classification and not self.multilabel and self.want_acc:
                row["correct"] = int(self.group_correct[code])
                row["accuracy"] = row["correct"] / rows if rows else None
            row["losses"] = {n: _mean_doc(self.group_sums[n], code) for n in self.names}
            per_group.append(row)
        diag = {
            "nan_values": d["nan_values"], "posinf_values": d["posinf_values"],
            "neginf_values": d["neginf_values"], "nonfinite_rows": d["nonfinite_rows"],
            "rows_not_summing_to_one": d["rows_not_summing_to_one"]
            if any(p and nm != "binary_cross_entropy" for (nm, _), p in zip(self.specs, self.prob))
            and self.ndim == 2 and self.C > 1 else None,
            "sum_tolerance": self.tol,
            # "all values": every prediction was checked; "rows with NaN/+inf or a non-finite
            # loss": the top-1 pass found the rows (-inf logits of masked classes, which
            # leave the loss finite, are then not counted)
            "nonfinite_scope": ("all values" if (not self.want_acc or self.ndim == 1
                                                 or self.C == 1 or not self.classification
                                                 or self._rowsum_mode())
                                else "rows with NaN/+inf or a non-finite loss"),
            "ignored_rows": d["ignored_rows"],
            "bad_rows": {"action": self.on_bad_row, "count": d["bad_rows"],
                         "reasons": dict(d["bad"]), "first_rows": list(d["first_bad_rows"])},
            "losses": {},
            "enabled": self.want_diag,
        }
        for (name, o), prob in zip(self.specs, self.prob):
            ld = self.loss_diag[name]
            clip = o.get("clip")
            diag["losses"][name] = {
                "nan_losses": ld["nan_losses"], "inf_losses": ld["inf_losses"],
                "clipped": ld["clipped"] if (prob and clip is not None) else None,
                "clipped_unit": ld.get("clipped_unit", "values"), "clip": clip,
            }
        doc = {
            "rows": self.next_row,
            "losses": {n: float(v) for n, v in losses.items()},
            "loss_details": details,
            "accuracy": acc_doc,
            "per_class": per_class,
            "per_group": per_group,
            "diagnostics": diag,
            "inputs": inputs_desc,
            "options": config["losses"],
            "classes": self.C if self.ndim == 2 else 1,
            "segment_rows": SEGMENT_ROWS,
        }
        return EvalResult(losses, doc)


def _mean_doc(sums, k):
    v, w = sums.value(2 * k), sums.value(2 * k + 1)
    with np.errstate(all="ignore"):
        mean = v / w if w != 0 else float("nan")
    return {"mean": mean, "sum": v, "weight_sum": w}


def _sort_key(v):
    if v is None:
        return (3, "")
    if isinstance(v, (int, float, bool)):
        return (0, float(v), "")
    return (1, 0.0, str(v))


# --------------------------------------------------------------------------- driver


def _config(specs, inputs, ev, group_column, per_class):
    return {
        "losses": {n: {k: v for k, v in options_json(o).items()
                       if k not in ("backend", "n_threads")} for n, o in specs},
        "inputs": inputs.fingerprint(),
        "fields": inputs.describe(),
        "on_bad_row": ev.on_bad_row, "sum_tolerance": ev.tol, "per_class": ev.per_class,
        "diagnostics": ev.want_diag, "accuracy": ev.want_acc, "classes": ev.C, "ndim": ev.ndim,
        "segment_rows": SEGMENT_ROWS,
    }


class _Interrupt:
    """Defer SIGINT / SIGTERM to the end of the current chunk (main thread only)."""

    def __init__(self, active):
        self.active = active and threading.current_thread() is threading.main_thread()
        self.hit = None
        self.prev = {}

    def __enter__(self):
        if self.active:
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.prev[sig] = signal.signal(sig, self._handler)
        return self

    def _handler(self, signum, frame):
        if self.hit is not None:  # a second signal: stop now
            raise KeyboardInterrupt
        self.hit = signum

    def __exit__(self, *exc):
        for sig, h in self.prev.items():
            signal.signal(sig, h)
        return False


def evaluate(source, *, loss, labels=None, weights=None, groups=None, pred_column=None,
             label_column=None, weight_column=None, group_column=None, num_classes=None,
             on_bad_row="raise", sum_tolerance=1e-3, per_class=True, accuracy=True,
             diagnostics=True, chunk_rows=None, progress=None, checkpoint=None, resume=False,
             checkpoint_every=16, max_groups=100_000, csv_dtype=None, **options):
    """Score a prediction dump in one streaming pass with bounded memory.

    Parameters
    ----------
    source : path or array
        Predictions: ``.npy`` (memory-mapped), ``.npz``, Parquet, Feather / Arrow IPC, CSV,
        or an array. Tables hold the predictions as one fixed-size-list column or one
        column per class (``pred_column``: a name, a list of names or a glob like
        ``"p_*"``; default: a column named ``y_pred``/``logits``/``probs``..., else the only
        list column, else the numbered columns ``p0, p1, ...`` of one prefix), and may hold
        the labels too.
    loss : str, list of str, or dict
        A public loss name (``"sparse_categorical_cross_entropy"``), several, or
        ``{name: {options}}``. ``**options`` (``from_logits=True``, ``clip=...``,
        ``class_weight=...``) go to every requested loss that takes them.
    labels, weights, groups : path or array, optional
        Separate files (any format above) for labels (class indices, or targets with the
        predictions' shape), sample weights and a group column. ``label_column`` (default:
        ``y_true``/``label``/``labels``/``target``...), ``weight_column`` and
        ``group_column`` name a column of any input table instead.
    num_classes : int, optional
        Expected number of classes: a dump with another width is an error.
    on_bad_row : ``"raise"`` or ``"skip"``
        Labels out of range or not integers, invalid weights, targets or probabilities
        outside [0, 1]: raise an error naming the row, or count the row and give it weight
        0 (the result is then the public function's with those rows weighted 0).
    sum_tolerance : float
        Probability rows whose exact sum differs from 1 by more are counted.
    chunk_rows : int, optional
        Rows per chunk (default: 32M values for arrays, 8M for tables); rounded up to whole
        segments of 256 rows. The result does not depend on it.
    progress : bool, optional
        tqdm progress bar on stderr (default: when stderr is a terminal).
    checkpoint : path, optional
        Save the state there (atomically) every ``checkpoint_every`` chunks, on Ctrl-C or
        SIGTERM (after the current chunk) and at the end; ``resume=True`` continues from it
        (if it exists) with the bitwise-same final result as an uninterrupted run.

    Returns
    -------
    EvalResult
        ``result["sparse_categorical_cross_entropy"]`` is bitwise
        ``fastloss.sparse_categorical_cross_entropy(labels, predictions, **options)``.
    """
    specs = _loss_specs(loss, options)
    inputs = Inputs(source, labels, weights, groups, pred_columns=pred_column,
                    label_column=label_column, weight_column=weight_column,
                    group_column=group_column, csv_dtype=csv_dtype)
    tail = inputs.pred_shape_tail
    if tail is None:  # a list column of unknown width: look at the first row
        first = next(inputs.chunks(0, 1), None)
        tail = np.asarray(first["pred"]).shape[1:] if first is not None else (0,)
        inputs.pred_shape_tail = tuple(tail)
    label_tail = None
    lf = inputs.fields.get("label")
    if lf is not None and lf.columns is None:
        label_tail = tuple(lf.src.shape[1:])
    elif lf is not None:  # a table column: targets if it is a list column, else indices
        label_tail = tuple(tail) if _is_list(lf.src, lf.columns[0]) else ()
    ev = _Evaluator(specs, tail=tuple(tail), label_tail=label_tail, on_bad_row=on_bad_row,
                    sum_tolerance=sum_tolerance, per_class=per_class, diagnostics=diagnostics,
                    max_groups=max_groups, num_classes=num_classes, accuracy=accuracy)
    if chunk_rows is None and inputs.streams_tables:
        chunk_rows = max(1, CHUNK_ELEMS // 4 // max(ev.C, 1))  # tables are copied once more
    rows = chunk_rows_for(ev.C, chunk_rows)
    config = _config(specs, inputs, ev, group_column, per_class)
    if checkpoint is not None and resume and os.path.exists(checkpoint):
        try:
            with open(checkpoint) as f:
                saved = json.load(f)
        except (OSError, ValueError) as exc:
            raise InputError(f"{checkpoint}: unreadable checkpoint ({exc})") from None
        if saved.get("config") != _jsonable(config):
            raise InputError(f"{checkpoint}: the checkpoint was made for other inputs or options "
                             "(a changed file, loss or flag); remove it to start over")
        ev.load_state(saved["state"])
    start = ev.next_row
    if start % segment_rows(ev.C):  # pragma: no cover - checkpoints are at chunk boundaries
        raise InputError(f"{checkpoint}: the saved position {start} is not a segment boundary")

    def save():
        if checkpoint is not None:
            write_json_atomic(checkpoint, {"config": _jsonable(config),
                                           "state": _jsonable(ev.state_dict())})

    show = sys.stderr.isatty() if progress is None else bool(progress)
    bar = _progress(show, inputs.n_rows, start)
    throttle = float(os.environ.get("FASTLOSS_EVAL_THROTTLE", "0") or 0)  # tests: slow disk
    try:
        with _Interrupt(checkpoint is not None) as intr:
            i = -1
            # (no enumerate(): its cached result tuple would keep the previous chunk, and so
            # its memory map, alive while the next one is read)
            for ch in inputs.chunks(start, rows):
                i += 1
                ev.process(ch)
                if bar is not None:
                    bar.update(ch["stop"] - ch["start"])
                if throttle:
                    time.sleep(throttle)
                if intr.hit is not None:
                    save()
                    raise KeyboardInterrupt(
                        f"interrupted at row {ev.next_row}"
                        + (f"; state saved to {checkpoint}: rerun with --resume"
                           if checkpoint else ""))
                if checkpoint is not None and (i + 1) % max(1, int(checkpoint_every)) == 0:
                    save()
                ch = None  # release this chunk (its memory map) before the next is read
            if inputs.n_rows is not None and ev.next_row != inputs.n_rows:  # pragma: no cover
                raise InputError(f"read {ev.next_row} rows but the inputs have {inputs.n_rows}")
    finally:
        if bar is not None:
            bar.close()
    save()
    return ev.result(inputs.describe(), config)


def _progress(show, total, initial):
    if not show:
        return None
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency of the io extra
        return None
    return tqdm(total=total, initial=initial, unit="rows", unit_scale=True, file=sys.stderr,
                dynamic_ncols=True, mininterval=0.5, desc="fastloss eval")
