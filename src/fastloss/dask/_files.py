"""``fastloss.dask.evaluate_files``: the file arguments of :func:`fastloss.evaluate`
(``.npy`` files, ``.npy`` stacks, Zarr arrays, Parquet files / directories / globs)
opened as dask collections and evaluated on a cluster."""

import contextlib
import glob
import os

import numpy as np

from fastloss._dispatch import cpu_count
from fastloss.dask._graph import _lazy, _need_dask
from fastloss.evaluation.chunks import chunk_rows_for
from fastloss.evaluation.readers import InputError, NpyFile
from fastloss.evaluation.roles import resolve_fields

__all__ = ["evaluate_files"]


class _Cluster:
    """A client of the scheduler at ``scheduler``, else of a local cluster of ``n_workers``
    processes (closed on exit)."""

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
                n = n or max(1, cpu_count() // (t or 1))  # neither given: a worker per core
                t = t or max(1, cpu_count() // n)
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
    """:func:`fastloss.evaluate`'s file arguments, evaluated on a Dask cluster.

    Parameters
    ----------
    source, loss, labels, weights, groups, pred_column, label_column, weight_column, \
group_column, num_classes, on_bad_row, sum_tolerance, per_class, accuracy, diagnostics, \
max_groups, **options :
        As :func:`fastloss.evaluate`; the files must be ``.npy`` files, ``.npy`` stacks,
        Zarr arrays or Parquet files / directories / globs that every worker can read.
    chunk_rows : int, optional
        Rows per ``.npy`` chunk (default ~32M values, whole 256-row segments).
    client : distributed.Client, optional
        The cluster to use; else a client of ``scheduler`` (an address), else a local
        cluster of ``n_workers`` processes with ``threads_per_worker`` threads each
        (started and closed here; by default one single-threaded worker per core).
    progress, checkpoint, resume, checkpoint_every, csv_dtype :
        Not for a cluster: ``checkpoint``/``resume``/``csv_dtype`` raise, ``progress`` is
        ignored (Dask recomputes the chunks of a lost worker).

    Returns
    -------
    EvalResult
        Bitwise :func:`fastloss.evaluate` on the same files.

    Raises
    ------
    InputError
        A file of another format, a missing column, or a bad row (as
        :func:`fastloss.evaluate`).
    ValueError
        ``checkpoint``, ``resume`` or ``csv_dtype`` given.

    See Also
    --------
    fastloss.evaluate : one machine, any format, resumable.
    evaluate : dask collections instead of paths.

    Notes
    -----
    The roles (which file and column holds the predictions, labels, weights and groups)
    are resolved by :func:`fastloss.evaluation.roles.resolve_fields`, as for
    :func:`fastloss.evaluate`, so both name the same columns and raise the same errors.

    Examples
    --------
    >>> import os, tempfile, numpy as np, fastloss.dask
    >>> from distributed import Client
    >>> d = tempfile.mkdtemp()
    >>> np.save(os.path.join(d, "x.npy"), np.random.default_rng(1).standard_normal((600, 3)))
    >>> np.save(os.path.join(d, "y.npy"), np.arange(600) % 3)
    >>> with Client(n_workers=1, threads_per_worker=1, processes=False,
    ...             dashboard_address=None) as client:
    ...     r = fastloss.dask.evaluate_files(os.path.join(d, "x.npy"),
    ...                                      labels=os.path.join(d, "y.npy"), client=client,
    ...                                      loss="sparse_categorical_cross_entropy",
    ...                                      from_logits=True, chunk_rows=256)
    >>> bool(r["sparse_categorical_cross_entropy"] == fastloss.evaluate(
    ...     os.path.join(d, "x.npy"), labels=os.path.join(d, "y.npy"),
    ...     loss="sparse_categorical_cross_entropy", from_logits=True)[
    ...     "sparse_categorical_cross_entropy"])
    True
    """
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
    # the roles, resolved as fastloss.evaluate resolves them
    fields = resolve_fields(fp, fl, fw, fg, pred_columns=pred_column, label_column=label_column,
                            weight_column=weight_column, group_column=group_column)
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
    with _Cluster(scheduler, n_workers, threads_per_worker) if client is None else \
            contextlib.nullcontext(client) as cl:
        lazy, cl = _lazy(args["y_true"], pred, sample_weight=args["sample_weight"],
                         groups=args["groups"], client=cl, describe=describe, **kw)
        return cl.compute(lazy, sync=True)
