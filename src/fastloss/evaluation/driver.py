"""One streaming, resumable pass over a prediction dump: :func:`evaluate`.

The driver opens the inputs (:class:`~fastloss.evaluation.chunks.Inputs`), builds the
:class:`~fastloss.evaluation.evaluator.Evaluator`, feeds it chunk by chunk, and
checkpoints its :class:`~fastloss.evaluation.state.EvalState` (atomically) every few
chunks, on SIGINT / SIGTERM (after the current chunk) and at the end.
"""

import json
import os
import signal
import sys
import threading
import time
import warnings

from fastloss.evaluation.chunks import Inputs, chunk_rows_for
from fastloss.evaluation.evaluator import Evaluator
from fastloss.evaluation.keyed_sums import SEGMENT_ROWS
from fastloss.evaluation.readers import BadRowError, InputError
from fastloss.evaluation.result import check_writable, jsonable, write_json_atomic
from fastloss.evaluation.roles import label_tail
from fastloss.losses.registry import loss_specs, options_json

__all__ = ["evaluate", "run_config"]


def run_config(specs, inputs_fingerprint, fields, ev):
    """What a checkpoint must match to be resumed: the losses' options (not the backend
    or thread count), the inputs and every switch that changes the state."""
    return {
        "losses": {n: {k: v for k, v in options_json(o).items()
                       if k not in ("backend", "n_threads")} for n, o in specs},
        "inputs": inputs_fingerprint,
        "fields": fields,
        "on_bad_row": ev.on_bad_row, "sum_tolerance": ev.tol, "per_class": ev.per_class,
        "diagnostics": ev.want_diag, "accuracy": ev.want_acc, "classes": ev.layout.C,
        "ndim": ev.layout.ndim, "segment_rows": SEGMENT_ROWS,
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

    Every requested loss is ``sum_i w_i l_i / sum_i w_i`` (``reduction="mean"``) or
    ``sum_i w_i l_i`` (``"sum"``) over all rows, ``l_i`` the public function's per-sample
    value; top-1 accuracy is ``#{i : argmax_k x_ik = y_i} / n`` over the kept rows.

    Parameters
    ----------
    source : path or array
        Predictions: ``.npy`` (memory-mapped), ``.npz``, Parquet, Feather / Arrow IPC, CSV,
        ``.safetensors`` (tensors are members, as in ``.npz``), or an array. float16 and
        bfloat16 (``<V2`` ``.npy`` of ml_dtypes, Arrow ``halffloat``, safetensors ``BF16``)
        are widened to float32 a chunk at a time. Tables hold the predictions as one fixed-size-list column or one
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
        Rows per chunk (default: about 32M values held per chunk for arrays, counting the
        predictions, dense targets, per-value losses and per-row work arrays; a quarter of
        that for tables); rounded up to whole segments of 256 rows. The result does not
        depend on it.
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

    Raises
    ------
    InputError
        A file is unreadable, damaged or inconsistent with the others, or
        (``on_bad_row="raise"``) a row is bad; the message names the file, the column, the
        row (for CSV, the line: the header is line 1) and what to do.
    KeyboardInterrupt
        SIGINT / SIGTERM: raised after the current chunk, once the state is saved.

    See Also
    --------
    fastloss.LossAccumulator : the exact streaming sum behind every loss value.
    fastloss.dask.evaluate : the same pass on a Dask cluster, bitwise.

    Notes
    -----
    Losses are summed by the kernels' fixed block reduction and exact sums, per-class
    and per-group figures by row-order sums in fixed 256-row segments added exactly, so
    neither the chunk size, nor a resume, nor the thread count changes a bit.

    Weights near the float64 limit (1e308): a loss's mean whose sums overflow float64 is
    still the in-memory function's weighted mean, bit for bit (the overflowing part is
    redone with the weights times ``2**-k`` and added back exactly). The per-class and
    per-group figures do not rescale: where a row's ``w * l`` or a segment's sum overflows,
    their ``sum`` and ``weight_sum`` are ``inf`` and their ``mean`` is NaN.

    What is verified about the files, before or while they are read: a ``.npy`` file's size
    against its header (truncated, or bytes after the data); an ``.npz`` member's size
    against its header and its zip CRC-32; a Parquet file's row count against the sum of
    its row groups, each flat column's value count against its row group, the rows read
    against the metadata, and page checksums when the writer stored them
    (``pyarrow.parquet.write_table(..., write_page_checksum=True)``); every CSV row's
    field count and every prediction, label and weight cell as a number. What is *not*
    verified: the values of a ``.npy`` file or an Arrow IPC / Feather file (neither format
    has checksums), and Parquet data pages written without checksums (pyarrow's default):
    bytes zeroed or flipped inside such a page can decode to other valid numbers and give
    a wrong loss with no error. Write Parquet with page checksums to have them caught.

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> x = np.array([[2.0, 0.5, -1.0], [0.1, 0.2, 3.0]])
    >>> r = fastloss.evaluate(x, labels=np.array([0, 2]),
    ...                       loss="sparse_categorical_cross_entropy", from_logits=True)
    >>> bool(r["sparse_categorical_cross_entropy"] == fastloss.sparse_categorical_cross_entropy(
    ...     np.array([0, 2]), x, from_logits=True))
    True
    >>> r.accuracy
    1.0
    """
    specs = loss_specs(loss, options)
    inputs = Inputs(source, labels, weights, groups, pred_columns=pred_column,
                    label_column=label_column, weight_column=weight_column,
                    group_column=group_column, csv_dtype=csv_dtype)
    tail = inputs.pred_tail()
    ev = Evaluator(specs, tail=tuple(tail), label_tail=label_tail(inputs.fields, tail),
                   on_bad_row=on_bad_row, sum_tolerance=sum_tolerance, per_class=per_class,
                   diagnostics=diagnostics, max_groups=max_groups, num_classes=num_classes,
                   accuracy=accuracy)
    if chunk_rows is None:
        chunk_rows = inputs.default_chunk_rows(ev.values_per_row())
    rows = chunk_rows_for(ev.values_per_row(), chunk_rows)
    config = run_config(specs, inputs.fingerprint(), inputs.describe(), ev)
    saved_config = jsonable(config)
    if checkpoint is not None:
        check_writable(checkpoint, "checkpoint")  # now, not at the first save
    if checkpoint is not None and resume and os.path.exists(checkpoint):
        _load_checkpoint(ev, checkpoint, saved_config)

    def save():
        if checkpoint is not None:
            try:
                write_json_atomic(checkpoint, {"config": saved_config,
                                               "state": jsonable(ev.state_dict())})
            except OSError as exc:  # a full disk, say: name the file, not a temp file
                raise OSError(f"checkpoint {checkpoint}: cannot save the state: "
                              f"{exc.strerror or exc}; free some space or give another "
                              "checkpoint path") from None

    _run_chunks(ev, inputs, rows, save, checkpoint, checkpoint_every, progress)
    try:
        save()
    except OSError as exc:  # the pass is done: its result is worth more than the checkpoint
        warnings.warn(f"{exc}; the result is returned all the same", RuntimeWarning,
                      stacklevel=2)
    return ev.result(inputs.describe(), config)


def _load_checkpoint(ev, checkpoint, config):
    try:
        with open(checkpoint) as f:
            saved = json.load(f)
    except (OSError, ValueError) as exc:
        raise InputError(f"{checkpoint}: unreadable checkpoint ({exc})") from None
    if saved.get("config") != config:
        raise InputError(f"{checkpoint}: the checkpoint was made for other inputs or options "
                         "(a changed file, loss or flag); remove it to start over")
    ev.load_state(saved["state"])
    start = ev.state.next_row
    if start % SEGMENT_ROWS:  # pragma: no cover - checkpoints are at chunk boundaries
        raise InputError(f"{checkpoint}: the saved position {start} is not a segment boundary")


def _run_chunks(ev, inputs, rows, save, checkpoint, checkpoint_every, progress):
    start = ev.state.next_row
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
                try:
                    ev.process(ch)
                except BadRowError as exc:
                    where = inputs.where_row(exc.role, exc.row)
                    if where is None:  # an in-memory array: the row is all there is to say
                        raise
                    raise InputError(f"{where}: {exc}") from None
                if bar is not None:
                    bar.update(ch.stop - ch.start)
                if throttle:
                    time.sleep(throttle)
                if intr.hit is not None:
                    save()
                    raise KeyboardInterrupt(
                        f"interrupted at row {ev.state.next_row}"
                        + (f"; state saved to {checkpoint}: rerun with --resume"
                           if checkpoint else ""))
                if checkpoint is not None and (i + 1) % max(1, int(checkpoint_every)) == 0:
                    save()
                ch = None  # release this chunk (its memory map) before the next is read
            if inputs.n_rows is not None and ev.state.next_row != inputs.n_rows:
                raise InputError(  # pragma: no cover
                    f"read {ev.state.next_row} rows but the inputs have {inputs.n_rows}")
    finally:
        if bar is not None:
            bar.close()


def _progress(show, total, initial):
    if not show:
        return None
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency of the io extra
        return None
    return tqdm(total=total, initial=initial, unit="rows", unit_scale=True, file=sys.stderr,
                dynamic_ncols=True, mininterval=0.5, desc="fastloss eval")
