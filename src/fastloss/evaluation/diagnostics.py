"""The checks of :func:`fastloss.evaluate`: NaN / inf screens, row sums, clipped
probabilities and bad rows, as functions of one chunk's arrays.

Each function adds to the counters of an :class:`~fastloss.evaluation.state.EvalState`
(``state.diag``) or returns a count; none keeps state of its own, so the counts add up
over chunks whatever their size.
"""

import math

import numpy as np

from fastloss._validation import resolve_clip
from fastloss.evaluation.state import FIRST_BAD_ROWS
from fastloss.kernels import CLIP_NONE, CLIP_TORCH

__all__ = ["bad_message", "clipped", "count_bad", "nonfinite", "nonfinite_from_losses",
           "rows_not_summing"]


def _count_values(diag, xs):
    diag["nan_values"] += int(np.count_nonzero(np.isnan(xs)))
    diag["posinf_values"] += int(np.count_nonzero(np.isposinf(xs)))
    diag["neginf_values"] += int(np.count_nonzero(np.isneginf(xs)))


def nonfinite_from_losses(diag, x, n, outs, count):
    """NaN / inf counts when every row with a NaN or +inf has a non-finite loss (sparse
    cross-entropy on logits, no zero weight); returns the NaN rows (or None).
    ``count``: add to the counters (else only find the NaN rows)."""
    flag = None
    for _, _, nf in outs.values():
        if nf is not None:
            flag = nf if flag is None else flag | nf
    if flag is None or not flag.any():
        return None
    xs = x[flag]
    if count:
        _count_values(diag, xs)
        diag["nonfinite_rows"] += int(np.count_nonzero(~np.isfinite(xs).all(axis=1)))
    nanrow = np.zeros(n, bool)
    nanrow[flag] = np.isnan(xs).any(axis=1)
    return nanrow


def nonfinite(diag, x, n, top, outs, rowsum, nanrow):
    """Count NaN / inf predictions in the rows that can hold one; returns the NaN rows.

    ``top``: each row's top-1 value (None: not computed); ``rowsum``: each row's sum of
    probabilities (None: not a probability row check); ``outs``: ``{loss: (values,
    call, _)}``; ``nanrow``: the NaN rows if already known.
    """
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
        for out, call, _ in outs.values():
            bad_out = ~np.isfinite(out)
            flag |= bad_out.reshape(n, -1).any(axis=1) if call.row_mult > 1 else bad_out
    if flag.any():
        xs = x[flag]
        _count_values(diag, xs)
        nf = ~np.isfinite(xs)
        diag["nonfinite_rows"] += int(np.count_nonzero(nf.any(axis=1) if nf.ndim == 2 else nf))
        if nanrow is None:
            nanrow = np.zeros(n, bool)
            nanrow[flag] = np.isnan(xs).any(axis=1) if xs.ndim == 2 else np.isnan(xs)
    return nanrow


def rows_not_summing(x, rowsum, excluded, tol):
    """Rows (finite, not excluded) whose probabilities differ from a sum of 1 by more
    than ``tol``, decided on the exact sum (so chunking cannot change it)."""
    eps = float(np.finfo(x.dtype).eps)
    margin = 4.0 * (x.shape[1] + 2) * eps * (1.0 + tol)  # bound on the error of rowsum
    fin = np.isfinite(rowsum)
    if excluded is not None:
        fin &= ~excluded
    dev = np.abs(rowsum.astype(np.float64) - 1.0)
    sure = fin & (dev > tol + margin)
    unsure = np.flatnonzero(fin & (dev > tol - margin) & ~sure)
    n = int(np.count_nonzero(sure))
    for i in unsure:
        n += abs(math.fsum(x[i].astype(np.float64).tolist()) - 1.0) > tol
    return n


def clipped(spec, options, x, y, excluded):
    """``(count, unit)``: probabilities the loss's clip moves (``unit`` "rows": the label's
    probability of each row; "values": every value), ``(0, None)`` without a clip."""
    mode, eps = resolve_clip(options["clip"], x.dtype, False)
    if mode == CLIP_NONE:
        return 0, None
    if spec.label_kind == "index" and not options["label_smoothing"]:
        if excluded is None:
            p = np.take_along_axis(x, y[:, None], axis=1)[:, 0]
        else:
            p = np.take_along_axis(x, np.where(excluded, 0, y)[:, None], axis=1)[~excluded, 0]
        unit = "rows"
    else:
        p = x
        unit = "values"
    if mode == CLIP_TORCH:  # each log clamped at -100
        lim = math.exp(-100.0)
        with np.errstate(invalid="ignore"):
            hit = p < lim
            if spec.complement_log:
                hit |= (1.0 - p.astype(np.float64)) < lim
        return int(np.count_nonzero(hit)), unit
    lo = x.dtype.type(eps)
    hi = x.dtype.type(1) - lo
    with np.errstate(invalid="ignore"):
        return int(np.count_nonzero((p < lo) | (p > hi))), unit


def bad_message(row, r, reasons, lab, sw, x, n_classes, ignore_index):
    """``(role, message)`` of bad row ``row`` (row ``r`` of its chunk), for
    ``on_bad_row="raise"``; ``role`` ("label", "weight", "pred") is the input at fault."""
    skip = " (use --on-bad-row skip to count and skip such rows)"
    if "non_integer_labels" in reasons and reasons["non_integer_labels"][r]:
        return "label", (f"row {row}: label {np.asarray(lab).reshape(-1)[r].item()!r} is not "
                         f"an integer class index{skip}")
    if "labels_out_of_range" in reasons and reasons["labels_out_of_range"][r]:
        ign = "" if ignore_index is None else f" and is not ignore_index={ignore_index}"
        return "label", (f"row {row}: label {int(np.asarray(lab).reshape(-1)[r])} is out of "
                         f"range [0, {n_classes}){ign}{skip}")
    if "targets_out_of_range" in reasons and reasons["targets_out_of_range"][r]:
        return "label", f"row {row}: targets {np.asarray(lab)[r]!r} are not in [0, 1]{skip}"
    if "invalid_weights" in reasons and reasons["invalid_weights"][r]:
        return "weight", (f"row {row}: weight {float(sw[r])!r} is not finite and "
                          f"non-negative{skip}")
    v = np.atleast_1d(x[r])
    vals = ", ".join(repr(float(a)) for a in v[(v < 0) | (v > 1)][:3])
    return "pred", (f"row {row}: predictions outside [0, 1] ({vals}) but the loss reads "
                    "probabilities; logits need from_logits=True (--from-logits)")


def count_bad(diag, start, bad, reasons):
    """Count the bad rows of a chunk starting at row ``start``, per reason."""
    for k, m in reasons.items():
        diag["bad"][k] += int(np.count_nonzero(m))
    diag["bad_rows"] += int(np.count_nonzero(bad))
    first = diag["first_bad_rows"]
    if len(first) < FIRST_BAD_ROWS:
        diag["first_bad_rows"] = first + [start + int(i) for i in
                                          np.flatnonzero(bad)[:FIRST_BAD_ROWS - len(first)]]
