"""What :func:`fastloss.evaluate` returns: :class:`EvalResult`, its JSON document
(:func:`build_document`), the human summary table and :func:`write_json_atomic`."""

import json
import math
import os
import stat
import tempfile
from collections.abc import Mapping

import numpy as np

from fastloss.evaluation.keyed_sums import SEGMENT_ROWS

__all__ = ["EvalResult", "build_document", "jsonable", "write_json_atomic"]


# --------------------------------------------------------------------------- JSON output


def jsonable(v):
    """Plain JSON values; non-finite floats as the strings "NaN", "Infinity", "-Infinity"."""
    if isinstance(v, Mapping):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, np.ndarray):
        return [jsonable(x) for x in v.tolist()]
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


def _mode_for(path):
    """The mode ``open(path, "w")`` leaves: the existing file's, else 0666 less the umask."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def check_writable(path, option):
    """Fail before any work if ``path`` (the value of ``option``) cannot be written as a
    regular file: its folder is missing or read-only, or it is a folder, FIFO or device."""
    from fastloss.evaluation.readers import not_a_regular_file

    path = os.fspath(path)
    kind = not_a_regular_file(path)
    if kind:
        raise ValueError(f"{option} {path}: is {kind}; give the path of a regular file")
    d = os.path.dirname(os.path.abspath(path))
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".probe",
                                     dir=d)
    except OSError as exc:
        raise ValueError(f"{option} {path}: cannot write in {d}: "
                         f"{exc.strerror or exc}") from None
    os.close(fd)
    os.unlink(probe)


def write_json_atomic(path, obj):
    """Write ``obj`` as JSON to ``path`` atomically.

    Parameters
    ----------
    path : str or os.PathLike
        The file to (re)write.
    obj : JSON-serialisable object
        Written with ``indent=1`` and ``allow_nan=False`` (use :func:`jsonable` first).

    Raises
    ------
    ValueError
        ``obj`` holds a NaN or an infinity.

    Notes
    -----
    A temporary file in the same directory is written, fsynced and renamed over
    ``path`` (``os.replace``): a reader sees the old file or the new one, never a part.

    Examples
    --------
    >>> import json, os, tempfile
    >>> p = os.path.join(tempfile.mkdtemp(), "r.json")
    >>> write_json_atomic(p, {"rows": 3})
    >>> json.load(open(p))
    {'rows': 3}
    """
    path = os.fspath(path)
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=d)
    try:
        # mkstemp makes 0600; the result gets what open(path, "w") would give it
        os.fchmod(fd, _mode_for(path))
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
    """The result of :func:`fastloss.evaluate`: a mapping ``{loss name: value}`` plus the
    figures of the pass.

    ``result[name] = sum_i w_i l_i / sum_i w_i`` (``reduction="mean"``) or ``sum_i w_i l_i``
    (``"sum"``), exactly as the public function returns it for the whole dump in memory.

    Parameters
    ----------
    losses : mapping
        ``{loss name: value}`` in the input's float dtype.
    doc : dict
        The result document (built by :func:`build_document`).

    Attributes
    ----------
    n_rows : int
        Rows read.
    accuracy : float or None
        Top-1 accuracy of the kept rows (None without a classification loss).
    per_class, per_group : list of dict
        Rows, accuracy and per-loss ``mean`` / ``sum`` / ``weight_sum`` per class / group.
    diagnostics : dict
        NaN / inf counts, clipped values, rows not summing to 1, bad and ignored rows.
    details : dict
        Per loss the exact float64 ``sum`` and ``weight_sum`` the mean divides.

    See Also
    --------
    fastloss.evaluate : what builds it.

    Notes
    -----
    ``to_dict()`` is the JSON document (non-finite floats as the strings ``"NaN"``,
    ``"Infinity"``, ``"-Infinity"``) and ``format_table()`` the human summary; neither
    depends on the chunk size or the thread count.

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> r = fastloss.evaluate(np.array([[3.0, 0.0], [0.0, 1.0], [2.0, 0.0]]),
    ...                       labels=np.array([0, 1, 1]), loss="sparse_categorical_cross_entropy",
    ...                       from_logits=True)
    >>> list(r), r.n_rows, round(r.accuracy, 4)
    (['sparse_categorical_cross_entropy'], 3, 0.6667)
    >>> r.to_dict()["per_class"][1]["rows"]
    2
    """

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
        return jsonable(self._doc)

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




# --------------------------------------------------------------------------- the document


def build_document(state, ev, inputs_desc, config):
    """The :class:`EvalResult` of ``state`` (an :class:`~fastloss.evaluation.state.EvalState`)
    for evaluator ``ev`` (its losses, layout and switches)."""
    losses, details = _loss_figures(state)
    lay = ev.layout
    d = state.diag
    acc_doc = None
    if lay.classification and ev.want_acc and not lay.multilabel:
        acc_doc = {"value": d["correct"] / d["accuracy_rows"] if d["accuracy_rows"] else None,
                   "correct": d["correct"], "rows": d["accuracy_rows"]}
    doc = {
        "rows": state.next_row,
        "losses": {n: float(v) for n, v in losses.items()},
        "loss_details": details,
        "accuracy": acc_doc,
        "per_class": _class_rows(state, ev) if ev.per_class else [],
        "per_group": _group_rows(state, ev),
        "diagnostics": _diagnostics(state, ev),
        "inputs": inputs_desc,
        "options": config["losses"],
        "classes": lay.C if lay.ndim == 2 else 1,
        "segment_rows": SEGMENT_ROWS,
    }
    return EvalResult(losses, doc)


def _loss_figures(state):
    losses, details = {}, {}
    for name, acc in state.accs.items():
        losses[name] = acc.result()
        s, w = acc.sum_and_weight()
        details[name] = {"sum": s, "weight_sum": w, "reduction": acc.options["reduction"],
                         "dtype": str(np.asarray(losses[name]).dtype)}
    return losses, details


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


def _class_rows(state, ev):
    rows = []
    for k in range(ev.layout.K):
        row = {"class": k, "rows": int(state.class_rows[k])}
        if not ev.layout.multilabel and ev.want_acc:
            row.update(predicted=int(state.class_predicted[k]),
                       correct=int(state.class_correct[k]),
                       accuracy=(int(state.class_correct[k]) / int(state.class_rows[k])
                                 if state.class_rows[k] else None))
        row["losses"] = {n: _mean_doc(state.class_sums[n], k) for n in state.accs}
        rows.append(row)
    return rows


def _group_rows(state, ev):
    out = []
    with_acc = ev.layout.classification and not ev.layout.multilabel and ev.want_acc
    for code, v in sorted(enumerate(state.groups), key=lambda cv: _sort_key(cv[1])):
        rows = int(state.group_rows[code])
        row = {"group": v, "rows": rows}
        if with_acc:
            row["correct"] = int(state.group_correct[code])
            row["accuracy"] = row["correct"] / rows if rows else None
        row["losses"] = {n: _mean_doc(state.group_sums[n], code) for n in state.accs}
        out.append(row)
    return out


def _diagnostics(state, ev):
    d, lay = state.diag, ev.layout
    rowsum = ev.rowsum_mode
    diag = {
        "nan_values": d["nan_values"], "posinf_values": d["posinf_values"],
        "neginf_values": d["neginf_values"], "nonfinite_rows": d["nonfinite_rows"],
        "rows_not_summing_to_one": d["rows_not_summing_to_one"] if rowsum else None,
        "sum_tolerance": ev.tol,
        # "all values": every prediction was checked; "rows with NaN/+inf or a non-finite
        # loss": the top-1 pass found the rows (-inf logits of masked classes, which
        # leave the loss finite, are then not counted)
        "nonfinite_scope": ("all values" if (not ev.want_acc or lay.ndim == 1 or lay.C == 1
                                             or not lay.classification or rowsum)
                            else "rows with NaN/+inf or a non-finite loss"),
        "ignored_rows": d["ignored_rows"],
        "bad_rows": {"action": ev.on_bad_row, "count": d["bad_rows"],
                     "reasons": dict(d["bad"]), "first_rows": list(d["first_bad_rows"])},
        "losses": {},
        "enabled": ev.want_diag,
    }
    for (name, o), prob in zip(ev.specs, ev.prob):
        ld = state.loss_diag[name]
        clip = o.get("clip")
        diag["losses"][name] = {
            "nan_losses": ld["nan_losses"], "inf_losses": ld["inf_losses"],
            "clipped": ld["clipped"] if (prob and clip is not None) else None,
            "clipped_unit": ld.get("clipped_unit", "values"), "clip": clip,
        }
    return diag
