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
chunk at its global row; states (pickled as small exact dicts) are merged in a tree
with a fixed fan-in (``split_every``). Every merge is exact, so neither the chunking nor
the merge order changes a bit of the result.

The per-class / per-group sums are row-order sums within fixed 256-row segments aligned
to row 0 (:mod:`fastloss.evaluation.keyed_sums`). When a chunk boundary is not a multiple of 256
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
``fastloss eval --scheduler tcp://HOST:PORT`` / ``--dask-workers N`` / ``--dask-threads N``
(flags of :mod:`fastloss.cli.eval`) run :func:`evaluate_files`. Inputs on a cluster:
``.npy`` files, dask ``.npy`` stacks (``da.to_npy_stack`` directories), Zarr arrays and
Parquet files, directories or globs, at paths every worker can read.

Modules: ``_threads`` (kernel threads per task), ``_partitions`` (the partitioned
inputs), ``_graph`` (tasks and the merge tree of
:class:`~fastloss.evaluation.state.EvalState` objects), ``_files`` (file inputs; their
roles come from :func:`fastloss.evaluation.roles.resolve_fields`).

This module never imports dask at import time; ``import dask`` inside it is the real
dask (absolute imports), never this module.
"""

from fastloss.dask._files import evaluate_files
from fastloss.dask._graph import SPLIT_EVERY, _lazy, merge_states
from fastloss.dask._threads import kernel_threads, thread_plan

__all__ = ["add_cli_arguments", "cli_evaluator", "evaluate", "evaluate_files",
           "kernel_threads", "merge_states", "thread_plan"]


def evaluate(y_true, y_pred, *, loss, sample_weight=None, groups=None, pred_columns=None,
             num_classes=None, on_bad_row="raise", sum_tolerance=1e-3, per_class=True,
             accuracy=True, diagnostics=True, max_groups=100_000, client=None,
             split_every=SPLIT_EVERY, compute=True, **options):
    """:func:`fastloss.evaluate` on dask collections, on the active Dask scheduler.

    The same figures, bitwise: each loss ``sum_i w_i l_i / sum_i w_i`` (or the sum) over
    every row of every partition, accuracy, per-class / per-group tables, diagnostics.

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

    Raises
    ------
    InputError
        Inputs of different lengths or partitions, or (``on_bad_row="raise"``) a bad row:
        the same message as :func:`fastloss.evaluate` (the lowest bad row wins).
    ImportError
        dask is not installed.

    See Also
    --------
    fastloss.evaluate : the same pass on one machine.
    evaluate_files : file paths instead of dask collections.

    Notes
    -----
    Each partition becomes the :class:`~fastloss.evaluation.state.EvalState` of its rows
    at their global position; states are merged exactly
    (:meth:`~fastloss.evaluation.state.EvalState.merge`) in a tree of fan-in
    ``split_every``, so neither the chunks nor the merge order change a bit.

    Examples
    --------
    >>> import numpy as np, dask.array as da, fastloss, fastloss.dask
    >>> x = np.random.default_rng(0).standard_normal((1000, 4))
    >>> y = np.arange(1000) % 4
    >>> r = fastloss.dask.evaluate(da.from_array(y, chunks=300), da.from_array(x, chunks=300),
    ...                            loss="sparse_categorical_cross_entropy", from_logits=True)
    >>> bool(r["sparse_categorical_cross_entropy"] == fastloss.sparse_categorical_cross_entropy(
    ...     y, x, from_logits=True))
    True
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


def __getattr__(name):
    # the cluster flags of ``fastloss eval`` live in fastloss.cli.eval; these two names
    # stay here for code written against fastloss.dask
    if name in ("add_cli_arguments", "cli_evaluator"):
        from fastloss.cli import eval as _eval_cli

        return getattr(_eval_cli, name)
    raise AttributeError(f"module 'fastloss.dask' has no attribute {name!r}")
