"""The per-chunk work of :func:`fastloss.evaluate`: :class:`Evaluator`.

One pass over the predictions (and labels, weights, groups) computes, chunk by chunk:

* every requested loss, through a :class:`~fastloss.evaluation.accumulator.LossAccumulator`: the
  value is bitwise the public function's on the whole dump in memory, whatever the
  chunk size, and survives checkpoint / resume exactly;
* top-1 accuracy, per-class and per-group losses and accuracies
  (:mod:`~fastloss.evaluation.keyed_sums`: chunk-independent too);
* diagnostics (:mod:`~fastloss.evaluation.diagnostics`): NaN / inf counts, clipped
  probabilities, rows whose probabilities do not sum to 1, labels out of range / bad
  weights / probabilities outside [0, 1] (an error naming the row, or
  ``on_bad_row="skip"``: counted and weighted 0).

Everything it adds up lives in an :class:`~fastloss.evaluation.state.EvalState`; the
evaluator itself only holds the settings, the layout and work buffers. What a loss
needs is read from its :class:`~fastloss.losses.registry.LossSpec` row, never from its name.
"""

import numpy as np

from fastloss._dispatch import resolve_backend, resolve_threads
from fastloss.evaluation import diagnostics
from fastloss.evaluation.chunks import chunk_rows_for
from fastloss.evaluation.half import native_half_pred, widen_pred
from fastloss.evaluation.keyed_sums import SEGMENT_ROWS, KeyedSums
from fastloss.evaluation.readers import BadRowError, InputError
from fastloss.evaluation.result import build_document
from fastloss.evaluation.roles import Layout
from fastloss.evaluation.state import EvalState
from fastloss.losses.registry import LOSSES

__all__ = ["SEGMENT_ROWS", "Evaluator", "chunk_rows_for"]

_CONFUSION_MAX = 64  # up to this many classes, one bincount of (true, predicted) pairs


class _Work:
    """One chunk on its way through :meth:`Evaluator.process` (screened arrays and masks)."""

    __slots__ = ("start", "n", "x", "xh", "lab", "y", "t", "sw", "ignored", "bad", "excluded",
                 "keep", "fast")


class Evaluator:
    """The settings of one evaluation pass, its :class:`EvalState` and the per-chunk work.

    Parameters
    ----------
    specs : list of (str, dict)
        Losses and options (:func:`fastloss.losses.registry.loss_specs`).
    tail, label_tail : tuple
        Shapes of one prediction row and one label row (None: unknown); see
        :meth:`fastloss.evaluation.roles.Layout.infer`.
    on_bad_row, sum_tolerance, per_class, diagnostics, max_groups, num_classes, accuracy
        As for :func:`fastloss.evaluate`.
    """

    def __init__(self, specs, *, tail, label_tail, on_bad_row, sum_tolerance, per_class,
                 diagnostics, max_groups, num_classes, accuracy=True):
        if on_bad_row not in ("raise", "skip"):
            raise ValueError(f"on_bad_row={on_bad_row!r} must be 'raise' or 'skip'")
        self.specs = specs
        self.rows = [LOSSES[n] for n, _ in specs]
        self.on_bad_row = on_bad_row
        self.tol = float(sum_tolerance)
        if not self.tol >= 0:
            raise ValueError(f"sum_tolerance={sum_tolerance!r} must be non-negative")
        self.want_diag = bool(diagnostics)
        self.want_acc = bool(accuracy)
        self.max_groups = int(max_groups)
        self.layout = lay = Layout.infer(self.rows, tail, label_tail, num_classes)
        first, opts = self.rows[0], specs[0][1]
        self.logits = bool(first.logits_option and opts.get(first.logits_option, False))
        self.ignore_index = None
        for _, o in specs:
            if o.get("ignore_index") is not None:
                self.ignore_index = int(o["ignore_index"])
        self.per_class = bool(per_class) and lay.K > 0
        self.prob = [r.reads_probabilities(o) for r, (_, o) in zip(self.rows, specs)]
        self.unit_targets = any(r.unit_targets(o) for r, (_, o) in zip(self.rows, specs))
        self.kern = resolve_backend(opts["backend"])[1]
        self._threads = resolve_threads(opts["n_threads"])
        # the NaN / inf screen may use the loss values instead of the top-1 values (see
        # diagnostics.nonfinite_from_losses): class-index losses on logits whose every
        # row weight is non-zero
        self._fast_screen = lay.ndim == 2 and lay.C > 1 and all(
            r.label_kind == "index" and not r.reads_probabilities(o)
            and o.get("class_weight") is None and o.get("ignore_index") is None
            for r, (_, o) in zip(self.rows, specs))
        self._bufs = {}
        self._keyed = KeyedSums()
        self.state = EvalState(specs, lay.K, self.per_class)

    @property
    def accs(self):
        return self.state.accs

    @property
    def rowsum_mode(self):
        """Probabilities over classes: their row sums are checked (and screen NaN / inf)."""
        return self.layout.ndim == 2 and self.layout.C > 1 and any(
            p and r.has_class_axis for r, p in zip(self.rows, self.prob))

    def values_per_row(self):
        """Values a chunk holds per row, for sizing chunks: the predictions, dense targets
        (or the one-hot rows made from labels), per-value losses, and ~12 values' worth of
        per-row work arrays (int64 labels, top-1 classes, segment keys)."""
        lay = self.layout
        width = lay.C
        dense_loss = lay.ndim == 2 and any(not r.has_class_axis for r in self.rows)
        if lay.label_kind == "dense" or any(r.label_kind != "index" for r in self.rows):
            width += lay.C
        if dense_loss:
            width += lay.C
        return width + 12

    def state_dict(self):
        return self.state.to_dict()

    def load_state(self, st):
        self.state = EvalState.from_dict(st)

    def result(self, inputs_desc, config):
        return build_document(self.state, self, inputs_desc, config)

    def _buf(self, name, n, dtype):
        """A reused work array of ``n`` items (no fresh pages to fault in every chunk)."""
        b = self._bufs.get(name)
        if b is None or b.shape[0] < n or b.dtype != dtype:
            b = self._bufs[name] = np.empty(n, dtype)
        return b[:n]

    # ------------------------------------------------------------------ per chunk
    def process(self, ch):
        """Add one :class:`~fastloss.evaluation.chunks.Chunk` (rows ``[ch.start, ch.stop)``,
        right after the rows already added) to the state."""
        w = self._coerce(ch)
        self._screen(w, ch.weight)
        outs = self._losses(w)
        pred_cls, top = self._top1(w)
        nanrow = self._nonfinite(w, outs, pred_cls, top)
        correct = None
        if self.layout.classification:
            correct = self._classes(w, outs, pred_cls, nanrow, ch.group is None)
        if ch.group is not None:
            self._groups(ch.group, w, outs, correct)
        self.state.next_row = ch.stop

    def _coerce(self, ch):
        """The chunk's predictions as a float array of the expected shape."""
        w = _Work()
        w.start, w.n = ch.start, ch.stop - ch.start
        pred = np.asarray(ch.pred)
        w.xh = native_half_pred(pred)  # what the losses read: as an in-memory call would
        x = widen_pred(pred)  # float16 / bfloat16: float32, one chunk at a time
        if x.dtype.kind not in "fiub":
            raise InputError(f"predictions must be numeric, got dtype {x.dtype}")
        if x.dtype.kind != "f" or x.dtype == np.float16:
            x = x.astype(np.float64 if x.dtype.kind != "f" else np.float32)
        elif not x.dtype.isnative:  # big-endian rows from a Dask partition: kernels read native
            x = x.astype(x.dtype.newbyteorder("="))
        lay = self.layout
        if x.ndim != lay.ndim or (x.ndim == 2 and x.shape[1] != lay.C):
            raise InputError(f"wrong number of classes: rows from {w.start} have shape "
                             f"{x.shape[1:]} but earlier rows had "
                             f"{(lay.C,) if lay.ndim == 2 else ()}")
        if self.state.dtype is None:
            self.state.dtype = x.dtype
        w.x = x
        w.lab = np.asarray(ch.label) if ch.label is not None else None
        if w.lab is not None and not w.lab.dtype.isnative:
            w.lab = w.lab.astype(w.lab.dtype.newbyteorder("="))
        return w

    def _screen(self, w, sw):
        """Labels, weights and probabilities checked: bad rows raise, or (``skip``) are
        counted and kept in place with weight 0 and valid stand-in values."""
        n, x = w.n, w.x
        reasons = {}
        w.y, w.t, w.ignored = self._labels(w.lab, x, reasons)
        if sw is not None:
            sw = np.asarray(sw, dtype=np.float64).reshape(n, -1)
            if sw.shape[1] != 1:
                raise InputError(f"weights must be one value per row, got rows of {sw.shape[1]}")
            sw = sw[:, 0]
            badw = ~(sw >= 0) | (sw == np.inf)
            if badw.any():
                reasons["invalid_weights"] = badw
        if any(self.prob) and x.size:
            k = self.kern.first_outside_unit_interval(np.ascontiguousarray(x).reshape(-1))
            if k >= 0:
                with np.errstate(invalid="ignore"):
                    outside = (x < 0) | (x > 1)
                reasons["probabilities_out_of_range"] = outside.any(axis=1) if x.ndim == 2 \
                    else outside
        w.sw, w.bad = sw, None
        if reasons:
            self._bad_rows(w, reasons)
        if w.ignored is not None:
            self.state.diag["ignored_rows"] += int(np.count_nonzero(
                w.ignored if w.bad is None else w.ignored & ~w.bad))
        bad, ignored = w.bad, w.ignored
        w.excluded = bad if ignored is None else (ignored if bad is None else bad | ignored)
        w.keep = None if w.excluded is None else ~w.excluded  # None: every row counts
        w.fast = self._fast_screen and w.sw is None and ignored is None and bad is None

    def _bad_rows(self, w, reasons):
        n = w.n
        bad = np.zeros(n, bool)
        for m in reasons.values():
            bad |= m
        if self.on_bad_row == "raise":
            r = int(np.argmax(bad))
            role, msg = diagnostics.bad_message(w.start + r, r, reasons, w.lab, w.sw, w.x,
                                                self.layout.C, self.ignore_index)
            raise BadRowError(msg, role, w.start + r)
        diagnostics.count_bad(self.state.diag, w.start, bad, reasons)
        # a bad row is kept in place with weight 0 (so the blocks stay aligned) and a
        # valid stand-in value wherever the kernel would read it
        if w.y is not None:
            w.y = np.where(bad, 0, w.y)
        if w.t is not None and "targets_out_of_range" in reasons:
            t = np.array(w.t, dtype=w.x.dtype if w.t.dtype.kind != "f" else w.t.dtype)
            t[reasons["targets_out_of_range"]] = 0
            w.t = t
        if "probabilities_out_of_range" in reasons:
            x = np.array(w.x)
            x[reasons["probabilities_out_of_range"]] = 1.0 / self.layout.C if x.ndim == 2 \
                else 0.5
            # (probabilities: the half kernels give the float32 path's bits, no table)
            w.x, w.xh = x, None
        w.sw = np.ones(n) if w.sw is None else np.array(w.sw)
        w.sw[bad] = 0.0
        w.bad = bad

    def _labels(self, lab, x, reasons):
        """(class indices, targets, ignored-rows mask) of a chunk; bad rows into reasons."""
        if self.layout.label_kind != "index":
            t = lab
            if t.dtype.kind not in "fiub":
                raise InputError(f"targets must be numeric, got dtype {t.dtype}")
            if t.shape[1:] != x.shape[1:]:
                raise InputError(f"wrong number of classes: targets have rows of shape "
                                 f"{t.shape[1:]} but predictions {x.shape[1:]}")
            if self.unit_targets:
                with np.errstate(invalid="ignore"):
                    out_t = (t < 0) | (t > 1)
                if out_t.ndim == 2:
                    out_t = out_t.any(axis=1)
                if out_t.any():
                    reasons["targets_out_of_range"] = out_t
            return None, t, None
        y, nonint = _class_indices(lab, reasons)
        oor = y.view(np.uint64) >= self.layout.C  # one pass: negative labels wrap around
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

    def _losses(self, w):
        """Feed every loss its chunk: ``{name: (per-sample values, kernel call, rows with
        a non-finite value or None)}``; counts NaN / inf losses and clipped values."""
        n, x, lay = w.n, w.x, self.layout
        outs, onehot = {}, None
        for row, (name, o), prob in zip(self.rows, self.specs, self.prob):
            w_l = w.sw
            if row.label_kind == "index":
                yt = w.y
            elif lay.label_kind == "index":
                if onehot is None:
                    onehot = np.zeros((n, lay.C), dtype=x.dtype)
                    onehot[np.arange(n), w.y if w.excluded is None
                           else np.where(w.excluded, 0, w.y)] = 1
                yt = onehot
                if w.ignored is not None:
                    w_l = np.ones(n) if w.sw is None else np.array(w.sw)
                    w_l[w.ignored] = 0.0
            else:
                yt = w.t
            # (one kernel call per chunk: on a busy machine every parallel region waits for
            # its slowest thread, so pieces small enough to stay in the cache for the top-1
            # pass cost more than the second read of the chunk)
            buf = self._buf("out_" + name, n if row.has_class_axis else x.size, x.dtype)
            out, call = self.state.accs[name].feed(yt, x if w.xh is None else w.xh, w_l,
                                                   row_offset=w.start, out=buf, trusted=True)
            nf = None
            if self.want_diag or w.fast:
                with np.errstate(invalid="ignore"):
                    fin = np.isfinite(np.add.reduce(out)) if out.size else True
                nf = None if fin else ~np.isfinite(out)
            outs[name] = (out, call, nf)
            if self.want_diag:
                self._loss_diagnostics(row, name, o, prob, out, nf, w)
        return outs

    def _loss_diagnostics(self, row, name, o, prob, out, nf, w):
        ld = self.state.loss_diag[name]
        if nf is not None:
            bad_vals = out[nf]
            ld["nan_losses"] += int(np.count_nonzero(np.isnan(bad_vals)))
            ld["inf_losses"] += int(np.count_nonzero(np.isinf(bad_vals)))
        if prob and o.get("clip") is not None:
            count, unit = diagnostics.clipped(row, o, w.x, w.y, w.excluded)
            if unit is not None:
                ld["clipped_unit"] = unit
            ld["clipped"] += count

    def _top1(self, w):
        """``(predicted class per row, its value)``: one argmax pass, which is also the
        NaN / +inf screen (argmax returns the first NaN of a row, else the first +inf)."""
        lay, x, n = self.layout, w.x, w.n
        if not (lay.classification and self.want_acc) or lay.multilabel:
            return None, None  # (multi-label: no top-1 accuracy, so no argmax)
        if lay.ndim == 2 and lay.C > 1:
            pred_cls = self._buf("pred", n, np.int64)
            self.kern.argmax_rows(np.ascontiguousarray(x), pred_cls, self._threads)
            top = None if w.fast else np.take_along_axis(x, pred_cls[:, None], axis=1)[:, 0]
            return pred_cls, top
        thr = 0.0 if self.logits else 0.5
        return (x.reshape(n) > thr).view(np.int8), None

    def _nonfinite(self, w, outs, pred_cls, top):
        """Count NaN / inf predictions (diagnostics); returns the rows holding a NaN."""
        x, n = w.x, w.n
        if x.ndim == 1:
            nanrow = np.isnan(x)
        elif top is not None:
            nanrow = np.isnan(top)
        else:
            nanrow = None
        diag = self.state.diag
        if w.fast and pred_cls is not None and self.layout.ndim == 2:
            # class-index losses on logits with every weight non-zero: a row with a NaN or
            # +inf logit has a NaN or inf loss, so the rows to look at are those of the
            # non-finite losses (the same rows the top-1 value would flag, and no pass more)
            return diagnostics.nonfinite_from_losses(diag, x, n, outs, self.want_diag)
        if not (self.want_diag and x.size):
            return nanrow
        rowsum = None
        if self.rowsum_mode:
            with np.errstate(all="ignore"):
                rowsum = np.add.reduce(x, axis=1)
        nanrow = diagnostics.nonfinite(diag, x, n, top, outs, rowsum, nanrow)
        if rowsum is not None:
            diag["rows_not_summing_to_one"] += diagnostics.rows_not_summing(
                x, rowsum, w.excluded, self.tol)
        return nanrow

    def _classes(self, w, outs, pred_cls, nanrow, no_groups):
        """Accuracy, per-class counts and per-class loss sums; returns the rows predicted
        right (None when not needed by the groups)."""
        lay, n = self.layout, w.n
        if lay.label_kind == "index":
            true_cls = w.y
        elif lay.ndim == 2:
            true_cls = np.argmax(w.t, axis=1) if not lay.multilabel else None
        else:
            true_cls = (np.asarray(w.t).reshape(n) >= 0.5).view(np.int8)
        correct = counts = None  # counts: rows per class in this chunk (kept rows)
        if true_cls is not None and pred_cls is not None:
            if (w.keep is None and self.per_class and lay.K <= _CONFUSION_MAX and no_groups
                    and true_cls.dtype == np.int64):
                counts = self._confusion(true_cls, pred_cls, nanrow, n)
            else:
                correct = self._count_correct(w, true_cls, pred_cls, nanrow)
        if not self.per_class:
            return correct
        st = self.state
        if true_cls is not None and counts is None:
            tk = true_cls if w.keep is None else true_cls[w.keep]
            counts = np.bincount(tk, minlength=lay.K)
            st.class_rows += counts
        if lay.multilabel:
            st.class_rows += n if w.keep is None else int(np.count_nonzero(w.keep))
        for name, (out, call, _) in outs.items():
            self._keyed.add(st.class_sums[name], n, out, call, w.keep, true_cls, lay.K,
                            omit=self._omits(name), per_column=true_cls is None, counts=counts)
        return correct

    def _confusion(self, true_cls, pred_cls, nanrow, n):
        """Every count from one bincount of (true, predicted) pairs; returns rows per class."""
        K, st = self.layout.K, self.state
        key = self._buf("key", n, np.int64)
        np.multiply(true_cls, K, out=key)
        np.add(key, pred_cls, out=key)
        conf = np.bincount(key, minlength=K * K).reshape(K, K)
        ok = conf.diagonal().copy()
        if nanrow is not None:  # a row with a NaN prediction is never right
            hit = np.flatnonzero(nanrow)
            hit = hit[pred_cls[hit] == true_cls[hit]]
            if hit.size:
                ok -= np.bincount(true_cls[hit], minlength=K)
        st.diag["accuracy_rows"] += n
        st.diag["correct"] += int(ok.sum())
        st.class_correct += ok
        st.class_predicted += conf.sum(axis=0)
        counts = conf.sum(axis=1)
        st.class_rows += counts
        return counts

    def _count_correct(self, w, true_cls, pred_cls, nanrow):
        st, keep = self.state, w.keep
        correct = pred_cls == true_cls
        if keep is not None:
            correct &= keep
        if nanrow is not None:
            correct &= ~nanrow  # a row with a NaN prediction is never right
        kept = w.n if keep is None else int(np.count_nonzero(keep))
        st.diag["accuracy_rows"] += kept
        st.diag["correct"] += int(np.count_nonzero(correct))
        if self.per_class:
            K = self.layout.K
            pk = pred_cls if keep is None else pred_cls[keep]
            st.class_correct += np.bincount(true_cls[correct], minlength=K)
            st.class_predicted += np.bincount(pk, minlength=K)
        return correct

    def _groups(self, g, w, outs, correct):
        st, n, keep = self.state, w.n, w.keep
        st.has_groups = True
        codes = st.group_codes(g, n, self.max_groups)
        G = st.grow_groups()
        st.group_rows += np.bincount(codes if keep is None else codes[keep], minlength=G)
        if correct is not None:
            st.group_correct += np.bincount(codes[correct], minlength=G)
        for name, (out, call, _) in outs.items():
            self._keyed.add(st.group_sums[name], n, out, call, keep, codes, G,
                            omit=self._omits(name))

    def _omits(self, name):
        return self.state.accs[name].options["nan_policy"] == "omit"


def _class_indices(lab, reasons):
    """Labels as int64 class indices and the non-integer rows (None if none)."""
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
    return y, nonint
