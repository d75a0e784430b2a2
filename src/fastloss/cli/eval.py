"""``fastloss eval``: score a prediction dump in one streaming pass (see :func:`fastloss.evaluate`).

Registered by ``fastloss.cli`` through :func:`register`.
"""

import argparse
import functools
import os
import sys

from fastloss.losses.registry import STREAMING

_EPILOG = """\
examples:
  fastloss eval logits.npy --labels labels.npy --loss sparse_categorical_cross_entropy \\
      --from-logits --output result.json
  fastloss eval preds.parquet --loss sparse_categorical_cross_entropy,categorical_cross_entropy \\
      --pred-column probs --label-column label --group-column country --clip keras
  fastloss eval big.npy --labels y.npy --loss sparse_categorical_cross_entropy --from-logits \\
      --checkpoint big.ckpt --resume          # rerun the same command after a crash / Ctrl-C

The loss values are bitwise those of the fastloss function on the whole dump in memory,
whatever --chunk-rows. Exit status: 0 ok, 2 bad input or options (nothing written),
130 interrupted (state saved with --checkpoint).
"""


def _floats(text):
    """Comma-separated floats, or a .npy / text file of them."""
    import numpy as np

    if os.path.exists(text):
        return np.load(text) if text.endswith(".npy") else np.loadtxt(text, ndmin=1)
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither a file nor comma-separated "
                                         "numbers") from None


def _clip(text):
    try:
        return float(text)
    except ValueError:
        return text


def _positive_int(text):
    try:
        v = int(text)
    except ValueError:
        v = 0
    if v < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return v


# loss options as flags: (flag, dest, argparse keywords)
_LOSS_FLAGS = [
    ("--from-logits", "from_logits", dict(action="store_true",
                                          help="predictions are logits (default: probabilities)")),
    ("--log-input", "log_input", dict(action="store_true",
                                      help="kl_divergence: log-probabilities")),
    ("--log-target", "log_target", dict(action="store_true", help="kl_divergence: log targets")),
    ("--label-smoothing", "label_smoothing", dict(type=float, metavar="F")),
    ("--z-loss", "z_loss", dict(type=float, metavar="F")),
    ("--ignore-index", "ignore_index", dict(type=int, metavar="N",
                                            help="label of rows to leave out (e.g. -100)")),
    ("--clip", "clip", dict(type=_clip, metavar="MODE",
                            help="keras, keras2, torch, sklearn or an eps (probabilities)")),
    ("--class-weight", "class_weight", dict(type=_floats, metavar="W",
                                            help="comma-separated, or a .npy / text file")),
    ("--pos-weight", "pos_weight", dict(type=_floats, metavar="W")),
    ("--output-weight", "output_weight", dict(type=_floats, metavar="W")),
    ("--nan-policy", "nan_policy", dict(choices=("propagate", "raise", "omit"))),
    ("--reduction", "reduction", dict(choices=("mean", "sum"))),
]


def register(subparsers):
    p = subparsers.add_parser(
        "eval", help="score a prediction dump (npy/npz/Parquet/Arrow/CSV) in one streaming pass",
        description="Score a prediction dump in one streaming pass: losses (exactly as the "
                    "fastloss functions compute them in memory), top-1 accuracy, per-class and "
                    "per-group figures and diagnostics.", epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("pred", metavar="PRED", help="predictions (.npy, .npz, .parquet, .feather/"
                   ".arrow, .csv, .safetensors; float16/bfloat16 too); may also hold labels, "
                   "weights and groups")
    p.add_argument("--loss", required=True, action="append", metavar="NAME",
                   help="loss function name(s), comma-separated or repeated: "
                        + ", ".join(STREAMING))
    g = p.add_argument_group("inputs")
    g.add_argument("--labels", metavar="FILE", help="labels (class indices or targets)")
    g.add_argument("--weights", metavar="FILE", help="sample weights, one per row")
    g.add_argument("--groups", metavar="FILE", help="a group value per row")
    g.add_argument("--pred-column", metavar="NAME", action="append",
                   help="prediction column: a list column, or one column per class (repeat, "
                        "comma-separate or glob: 'p_*')")
    g.add_argument("--label-column", metavar="NAME")
    g.add_argument("--weight-column", metavar="NAME")
    g.add_argument("--group-column", metavar="NAME")
    g.add_argument("--num-classes", type=_positive_int, metavar="N",
                   help="fail unless the predictions have N classes")
    g.add_argument("--csv-dtype", choices=("float32", "float64"),
                   help="parse CSV predictions as this dtype (default float64)")
    o = p.add_argument_group("loss options (passed to every loss that takes them)")
    for flag, dest, kw in _LOSS_FLAGS:
        o.add_argument(flag, dest=dest, default=argparse.SUPPRESS, **kw)
    c = p.add_argument_group("checks and figures")
    c.add_argument("--on-bad-row", choices=("raise", "skip"), default="raise",
                   help="label out of range, bad weight, probability outside [0, 1]: fail "
                        "naming the row (default), or count the row and weight it 0")
    c.add_argument("--sum-tolerance", type=float, default=1e-3, metavar="TOL",
                   help="count probability rows whose sum differs from 1 by more (1e-3)")
    c.add_argument("--no-per-class", dest="per_class", action="store_false",
                   help="skip the per-class table")
    c.add_argument("--no-accuracy", dest="accuracy", action="store_false",
                   help="skip top-1 accuracy (saves a pass over the predictions)")
    c.add_argument("--no-diagnostics", dest="diagnostics", action="store_false",
                   help="skip the NaN/inf, clipping and row-sum checks")
    c.add_argument("--max-groups", type=_positive_int, default=100_000, metavar="N")
    r = p.add_argument_group("running")
    r.add_argument("--chunk-rows", type=_positive_int, metavar="N",
                   help="rows per chunk (default ~32M values, 8M for tables); the result does "
                        "not depend on it")
    r.add_argument("--checkpoint", metavar="FILE", help="save the state there every few chunks")
    r.add_argument("--checkpoint-every", type=_positive_int, default=16, metavar="CHUNKS")
    r.add_argument("--resume", action="store_true",
                   help="continue from --checkpoint if it exists")
    r.add_argument("--backend", choices=("cython", "numba", "numpy"))
    r.add_argument("--threads", type=_positive_int, dest="n_threads", metavar="N")
    r.add_argument("--progress", dest="progress", action="store_true", default=None,
                   help="progress bar on stderr (default: when stderr is a terminal)")
    r.add_argument("--no-progress", dest="progress", action="store_false")
    out = p.add_argument_group("output")
    out.add_argument("--output", "-o", metavar="FILE.json",
                     help="write the result as JSON (atomically)")
    out.add_argument("--json", action="store_true", help="print JSON instead of the table")
    out.add_argument("--quiet", "-q", action="store_true", help="print nothing on success")
    add_cli_arguments(p)
    p.set_defaults(func=run)
    return p


def add_cli_arguments(parser):
    """Add the cluster flags ``--scheduler`` / ``--dask-workers`` / ``--dask-threads``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The ``fastloss eval`` parser (:func:`register` calls this).

    Returns
    -------
    argparse._ArgumentGroup
        The "cluster" group.

    See Also
    --------
    cli_evaluator : what the flags select.

    Notes
    -----
    dask is not imported: the flags exist even where dask is not installed.

    Examples
    --------
    >>> import argparse
    >>> p = argparse.ArgumentParser()
    >>> _ = add_cli_arguments(p)
    >>> p.parse_args(["--dask-workers", "2"]).dask_workers
    2
    """
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
    """The evaluate function ``fastloss eval`` calls for its parsed ``args``.

    Parameters
    ----------
    args : argparse.Namespace
        With ``scheduler``, ``dask_workers`` and ``dask_threads`` (absent means None).

    Returns
    -------
    callable or None
        None without ``--scheduler`` / ``--dask-workers`` (use :func:`fastloss.evaluate`),
        else :func:`fastloss.dask.evaluate_files` bound to the cluster: it takes the same
        arguments as :func:`fastloss.evaluate` and returns the same bits.

    Raises
    ------
    ValueError
        ``--dask-threads`` without ``--dask-workers``.

    See Also
    --------
    add_cli_arguments : the flags.

    Notes
    -----
    Choosing a cluster never changes a result, only where the work runs.

    Examples
    --------
    >>> import argparse
    >>> cli_evaluator(argparse.Namespace(scheduler=None, dask_workers=None)) is None
    True
    >>> cli_evaluator(argparse.Namespace(scheduler=None, dask_workers=2)).func.__name__
    'evaluate_files'
    """
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
    from fastloss.dask import evaluate_files

    return functools.partial(evaluate_files, scheduler=scheduler, n_workers=workers,
                             threads_per_worker=threads)


def run(args):
    from fastloss.evaluation import evaluate
    from fastloss.evaluation.result import check_writable, write_json_atomic

    losses = [n.strip() for item in args.loss for n in item.split(",") if n.strip()]
    pred_cols = None
    if args.pred_column:
        pred_cols = [c.strip() for item in args.pred_column for c in item.split(",") if c.strip()]
        if len(pred_cols) == 1:
            pred_cols = pred_cols[0]
    options = {dest: getattr(args, dest) for _, dest, _ in _LOSS_FLAGS if hasattr(args, dest)}
    for key in ("backend", "n_threads"):
        if getattr(args, key) is not None:
            options[key] = getattr(args, key)
    if args.resume and not args.checkpoint:
        raise ValueError("--resume needs --checkpoint FILE")
    # a bad place for the result or the checkpoint is found now, not after the whole run
    for option, path in (("--output", args.output), ("--checkpoint", args.checkpoint)):
        if path:
            check_writable(path, option)
    if args.resume and args.checkpoint and not os.path.exists(args.checkpoint):
        print(f"fastloss eval: no checkpoint at {args.checkpoint}; starting from row 0",
              file=sys.stderr)
    run_eval = cli_evaluator(args) or evaluate
    try:
        result = run_eval(
            args.pred, loss=losses if len(losses) > 1 else losses[0], labels=args.labels,
            weights=args.weights, groups=args.groups, pred_column=pred_cols,
            label_column=args.label_column, weight_column=args.weight_column,
            group_column=args.group_column, num_classes=args.num_classes,
            on_bad_row=args.on_bad_row, sum_tolerance=args.sum_tolerance,
            per_class=args.per_class, accuracy=args.accuracy, diagnostics=args.diagnostics,
            chunk_rows=args.chunk_rows,
            progress=args.progress, checkpoint=args.checkpoint, resume=args.resume,
            checkpoint_every=args.checkpoint_every, max_groups=args.max_groups,
            csv_dtype=args.csv_dtype, **options)
    except KeyboardInterrupt as exc:
        msg = str(exc) or "interrupted"
        print(f"fastloss eval: {msg}", file=sys.stderr)
        return 130
    if args.output:
        try:
            write_json_atomic(args.output, result.to_dict())
        except OSError as exc:
            # the pass is done: print its result rather than lose it
            print(result.to_json(indent=1))
            raise OSError(f"--output {args.output}: cannot write: "
                          f"{exc.strerror or exc}; the result is printed on stdout instead"
                          + (f" (and the checkpoint {args.checkpoint} is kept)"
                             if args.checkpoint and os.path.exists(args.checkpoint) else ""))
    if not args.quiet:
        if args.json:
            print(result.to_json(indent=1))
        else:
            print(result.format_table())
    if args.checkpoint and os.path.exists(args.checkpoint):
        os.unlink(args.checkpoint)  # the result is out: a later --resume starts afresh
    return 0
