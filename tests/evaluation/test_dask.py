"""fastloss.dask: evaluation on Dask (arrays, dataframes, Parquet datasets, the CLI flags).

The reference for every result is :func:`fastloss.evaluate` on the same rows in one
process; results are compared whole (every figure of the JSON document but ``inputs``,
which names the inputs) and the losses bitwise (dtype and bytes).

Cluster tests share one ``LocalCluster(n_workers=2, processes=True)`` on 127.0.0.1; the
others run on dask's synchronous scheduler. ``distributed`` / ``dask.dataframe`` missing:
skipped, or failed under FASTLOSS_REQUIRE_FRAMEWORKS=1 (CI).
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from testutil import require

import fastloss
from fastloss.dask import _graph as fdg
from fastloss.evaluation import evaluate as local_evaluate
from fastloss.evaluation.readers import InputError

SCE = "sparse_categorical_cross_entropy"
CCE = "categorical_cross_entropy"
BCE = "binary_cross_entropy"
N, C = 6000, 10
LOOPBACK = "127.0.0.1"


@pytest.fixture(scope="module")
def dask():
    return require("dask")


@pytest.fixture(scope="module")
def da(dask):
    return require("dask.array")


@pytest.fixture(scope="module")
def dd(dask):
    require("pyarrow")
    return require("dask.dataframe")


@pytest.fixture(scope="module")
def fd(dask):
    import fastloss.dask as fd

    return fd


@pytest.fixture
def sync(dask):
    with dask.config.set(scheduler="synchronous"):
        yield


@pytest.fixture(scope="module")
def data():
    r = np.random.default_rng(8)
    logits = (r.standard_normal((N, C)) * 3).astype(np.float32)
    e = np.exp(logits.astype(np.float64) - logits.max(axis=1, keepdims=True))
    probs = e / e.sum(axis=1, keepdims=True)  # float64: row-order sums depend on grouping
    y = r.integers(0, C, N)
    w = r.uniform(0, 2, N)
    g = r.choice(np.array(["de", "fr", "it", "jp", "nl"]), N)
    return dict(logits=logits, probs=probs, y=y, w=w, g=g)


def same_loss(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.tobytes() == b.tobytes()


def body(result):
    d = result.to_dict()
    d.pop("inputs")
    return d


def assert_same_result(got, want):
    assert list(got) == list(want)
    for k in want:
        assert same_loss(got[k], want[k]), (k, got[k], want[k])
    assert body(got) == body(want)
    # and the same JSON text, key order included, so result files are byte-identical (#19)
    assert json.dumps(body(got)) == json.dumps(body(want))


# --------------------------------------------------------------------------- no cluster


def test_import_does_not_import_or_shadow_dask():
    code = ("import sys, fastloss.dask as fd\n"
            "assert 'dask' not in sys.modules, 'import fastloss.dask imported dask'\n"
            "import dask, dask.array\n"
            "assert dask is not fd and hasattr(dask, 'delayed'), dask\n"
            "assert 'fastloss' not in dask.__file__, dask.__file__\n"
            "fd._graph._need_dask()\n"
            "assert sys.modules['dask'] is dask\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr


def test_cuts_tile_the_rows_with_whole_segments(fd):
    seg = 256
    r = np.random.default_rng(0)
    for _ in range(300):
        lengths = r.choice([0, 1, 5, 255, 256, 257, 300, 511, 512, 700, 1500], r.integers(1, 9))
        n = int(lengths.sum())
        covered, pieces = [], {}
        start = 0
        for m in lengths:
            for kind, a, b in fdg._cuts(start, start + int(m), n, True, seg):
                assert start <= a < b <= start + m
                covered.append((a, b))
                if kind == "run":  # whole segments: aligned start, aligned end or the end
                    assert a % seg == 0 and (b % seg == 0 or b == n)
                else:  # inside one segment
                    assert a // seg == (b - 1) // seg and not (a % seg == 0 and (b % seg == 0 or b == n))
                    pieces.setdefault(a // seg, []).append((a, b))
            start += int(m)
        covered.sort()
        assert [a for a, _ in covered] == [0] + [b for _, b in covered[:-1]] if covered else n == 0
        assert (covered[-1][1] if covered else 0) == n
        for s, ps in pieces.items():  # the pieces of a segment make the whole segment
            ps.sort()
            assert ps[0][0] == s * seg and ps[-1][1] == min((s + 1) * seg, n)
            assert all(ps[i][1] == ps[i + 1][0] for i in range(len(ps) - 1))
        assert fdg._cuts(0, n, n, False, seg) == ([("run", 0, n)] if n else [])


CHUNKINGS = {
    "aligned": (1024, C),
    "unaligned": (777, C),
    "class-axis-split": (1000, 3),
    "tiny-and-empty": ((100, 1, 0, 300, 4599, 1000), C),
    "one-chunk": (N, C),
}


@pytest.mark.parametrize("chunks", list(CHUNKINGS.values()), ids=list(CHUNKINGS))
def test_arrays_equal_local(chunks, data, da, fd, sync):
    x, y, w, g = data["logits"], data["y"], data["w"], data["g"]
    kw = dict(loss=[SCE, CCE], from_logits=True)
    want = local_evaluate(x, labels=y, weights=w, groups=g, **kw)
    # labels and weights chunked otherwise than the predictions: rechunked to them
    got = fd.evaluate(da.from_array(y, chunks=500), da.from_array(x, chunks=chunks),
                      sample_weight=da.from_array(w, chunks=1234), groups=g, **kw)
    assert_same_result(got, want)
    assert got.to_dict()["inputs"]["pred"].startswith("dask.array<shape=(6000, 10)")


def _zarr_stores(data, da, tmp_path):
    """Logits and labels written to Zarr stores with chunks that cut the 256-row segments,
    and the local result they must reproduce."""
    require("zarr")
    x, y = data["logits"], data["y"]
    xz, yz = str(tmp_path / "logits.zarr"), str(tmp_path / "labels.zarr")
    da.from_array(x, chunks=(1300, C)).to_zarr(xz)
    da.from_array(y, chunks=2100).to_zarr(yz)
    return xz, yz, local_evaluate(x, labels=y, loss=SCE, from_logits=True)


def test_zarr_arrays_equal_local(data, da, fd, sync, tmp_path):
    # Zarr as the README shows it: dask arrays read from Zarr stores
    xz, yz, want = _zarr_stores(data, da, tmp_path)
    got = fd.evaluate(da.from_zarr(yz), da.from_zarr(xz), loss=SCE, from_logits=True)
    assert_same_result(got, want)


def test_cluster_zarr_paths_equal_local(client, data, da, fd, tmp_path):
    # the same stores given by path, the CLI's route: the workers open them
    xz, yz, want = _zarr_stores(data, da, tmp_path)
    got = fd.evaluate_files(xz, labels=yz, loss=SCE, from_logits=True, client=client)
    assert_same_result(got, want)


def test_probabilities_with_clipping_and_diagnostics(data, da, fd, sync):
    x = data["probs"].copy()
    x[17, 3] = np.nan
    x[4000, :] = 0.0  # sums to 0: counted, and clipped
    kw = dict(loss=SCE, clip="keras")
    want = local_evaluate(x, labels=data["y"], **kw)
    got = fd.evaluate(data["y"], da.from_array(x, chunks=(333, C)), **kw)
    assert_same_result(got, want)
    d = got.diagnostics
    assert d["nan_values"] == 1 and d["rows_not_summing_to_one"] >= 1


def test_binary_one_value_per_row_and_dense_targets(data, da, fd, sync):
    r = np.random.default_rng(3)
    z = (r.random(N) < 0.3).astype(np.float64)
    p = r.standard_normal(N)
    want = local_evaluate(p, labels=z, loss=BCE, from_logits=True)
    got = fd.evaluate(da.from_array(z, chunks=900), da.from_array(p, chunks=700), loss=BCE,
                      from_logits=True)
    assert_same_result(got, want)
    t = np.eye(C)[data["y"]]  # dense targets (rows x classes), chunked on both axes
    want = local_evaluate(data["logits"], labels=t, loss=[CCE, "mean_squared_error"],
                          from_logits=True)
    got = fd.evaluate(da.from_array(t, chunks=(450, 4)), da.from_array(data["logits"],
                                                                        chunks=(1300, C)),
                      loss=[CCE, "mean_squared_error"], from_logits=True)
    assert_same_result(got, want)


def _chunk_states(fd, cfg, x, y, w, g, bounds):
    states = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        states.append(fdg._process(cfg, a, b, {"pred": x[a:b], "label": y[a:b], "weight": w[a:b],
                                              "group": g[a:b]}))
    return states


def _cfg(fd, specs, tail, per_class=True):
    return {"specs": specs, "auto_threads": False, "thread_plan": None,
            "ev_kwargs": dict(tail=tail, label_tail=(), on_bad_row="raise",
                              sum_tolerance=1e-3, per_class=per_class, diagnostics=True,
                              max_groups=100_000, num_classes=None, accuracy=True),
            "describe": {}}


def test_merge_order_and_tree_shape_do_not_matter(data, fd):
    from fastloss.losses.registry import loss_specs as _loss_specs

    x, y, w, g = data["probs"], data["y"], data["w"], data["g"]
    cfg = _cfg(fd, _loss_specs(SCE, {"clip": "keras"}), (C,))
    bounds = list(range(0, N, 512)) + [N]  # whole segments
    states = _chunk_states(fd, cfg, x, y, w, g, bounds)
    want = local_evaluate(x, labels=y, weights=w, groups=g, loss=SCE, clip="keras")
    r = np.random.default_rng(1)
    for trial in range(4):
        order = r.permutation(len(states))
        pool = [states[i] for i in order]
        while len(pool) > 1:  # random pairs, random sides
            i, j = sorted(r.choice(len(pool), 2, replace=False))
            b, a = pool.pop(j), pool.pop(i)
            pool.append(fd.merge_states(a, b) if r.random() < 0.5 else fd.merge_states(b, a))
        got = fdg._finish_task(cfg, pool[0])
        assert_same_result(got, want)


def test_segments_cut_by_chunks_are_needed(data, fd):
    """Mutation check: evaluating unaligned chunks in place (no segment tasks) changes
    the per-class sums, so the equality tests above can see a wrong segment handling."""
    from fastloss.losses.registry import loss_specs as _loss_specs

    x, y, w, g = data["probs"], data["y"], data["w"], data["g"]
    cfg = _cfg(fd, _loss_specs(SCE, {"clip": "keras"}), (C,))
    bounds = list(range(0, N, 100)) + [N]
    st = None
    for s in _chunk_states(fd, cfg, x, y, w, g, bounds):
        st = fd.merge_states(st, s)
    got = fdg._finish_task(cfg, st)
    want = local_evaluate(x, labels=y, weights=w, groups=g, loss=SCE, clip="keras")
    assert same_loss(got[SCE], want[SCE])  # the losses are chunk-independent anyway ...
    assert body(got)["per_class"] != body(want)["per_class"]  # ... the segment sums are not


def test_bad_rows_raise_like_local_and_skip_counts(data, da, fd, sync):
    y = data["y"].copy()
    y[[4100, 1500, 5999]] = [C + 3, -2, C]
    x = da.from_array(data["logits"], chunks=(1000, C))
    with pytest.raises(InputError) as local:
        local_evaluate(data["logits"], labels=y, loss=SCE, from_logits=True)
    with pytest.raises(InputError) as dist:
        fd.evaluate(y, x, loss=SCE, from_logits=True)
    assert str(dist.value) == str(local.value)
    assert "row 1500" in str(dist.value)
    want = local_evaluate(data["logits"], labels=y, loss=SCE, from_logits=True,
                          on_bad_row="skip")
    got = fd.evaluate(y, x, loss=SCE, from_logits=True, on_bad_row="skip")
    assert_same_result(got, want)
    assert got.diagnostics["bad_rows"]["first_rows"] == [1500, 4100, 5999]


def test_max_groups_counts_groups_across_chunks(data, da, fd, sync):
    g = np.repeat(np.arange(6), N // 6)  # one group per chunk: 6 in all
    x = da.from_array(data["logits"], chunks=(N // 6, C))
    with pytest.raises(InputError, match="more than max_groups=5"):
        fd.evaluate(data["y"], x, groups=g, loss=SCE, from_logits=True, max_groups=5)
    got = fd.evaluate(data["y"], x, groups=g, loss=SCE, from_logits=True, max_groups=6)
    assert [row["group"] for row in got.per_group] == list(range(6))


def test_input_errors(data, da, fd, sync):
    x = da.from_array(data["logits"], chunks=(1000, C))
    with pytest.raises(InputError, match="length mismatch"):
        fd.evaluate(data["y"][:-1], x, loss=SCE, from_logits=True)
    with pytest.raises(InputError, match="y_true is missing"):
        fd.evaluate(None, x, loss=SCE, from_logits=True)
    with pytest.raises(ValueError, match="split_every"):
        fd.evaluate(data["y"], x, loss=SCE, split_every=1)
    with pytest.raises(InputError, match="wrong number of classes"):
        fd.evaluate(data["y"], x, loss=SCE, from_logits=True, num_classes=C + 1)


def test_kernel_thread_rules(fd, dask, monkeypatch):
    from fastloss.losses.registry import loss_specs as _loss_specs

    monkeypatch.delenv("FASTLOSS_NUM_THREADS", raising=False)
    assert fd.kernel_threads() is None  # the main thread, not a worker: fastloss's default
    out = []
    t = threading.Thread(target=lambda: out.append(fd.kernel_threads({"x": 7})))
    t.start()
    t.join()
    assert out == [1]  # a thread of dask's local pool: single-threaded kernels
    monkeypatch.setenv("FASTLOSS_NUM_THREADS", "3")
    assert fd.kernel_threads() == 3
    # an explicit n_threads is kept, None is resolved per task
    specs = _loss_specs([SCE, CCE], {"from_logits": True})
    specs[1][1]["n_threads"] = 2
    cfg = _cfg(fd, specs, (C,))
    cfg["auto_threads"] = True
    ev = fdg._new_evaluator(cfg)
    assert [a.options["n_threads"] for a in ev.accs.values()] == [3, 2]


def test_dataframe_from_pandas_equals_parquet_file(data, dd, fd, sync, tmp_path):
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    x, y, w, g = data["logits"], data["y"], data["w"], data["g"]
    cols = {f"p{j}": x[:, j] for j in range(C)}
    pdf = pd.DataFrame(dict(cols, label=y, w=w, country=g))
    pq.write_table(pa.Table.from_pandas(pdf, preserve_index=False), tmp_path / "d.parquet",
                   row_group_size=999)
    want = local_evaluate(str(tmp_path / "d.parquet"), loss=SCE, from_logits=True,
                          pred_column="p*", weight_column="w", group_column="country")
    ddf = dd.from_pandas(pdf, npartitions=7)  # uneven partitions, not 256-aligned
    got = fd.evaluate("label", ddf, sample_weight="w", groups="country", pred_columns="p*",
                      loss=SCE, from_logits=True)
    assert_same_result(got, want)
    # the same with separate series of the frame (one read per input)
    got = fd.evaluate(ddf["label"], ddf[list(cols)], sample_weight=ddf["w"],
                      groups=ddf["country"], loss=SCE, from_logits=True)
    assert_same_result(got, want)
    with pytest.raises(InputError, match="partitioned alike"):
        fd.evaluate(dd.from_pandas(pdf[["label"]], npartitions=3)["label"], ddf[list(cols)],
                    loss=SCE, from_logits=True)


# --------------------------------------------------------------------------- cluster


@pytest.fixture(scope="module")
def client(dask):
    distributed = require("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host=LOOPBACK, dashboard_address=f"{LOOPBACK}:0",
                                  worker_dashboard_address=f"{LOOPBACK}:0") as cluster, \
            distributed.Client(cluster) as c:
        yield c


def parquet_dataset(data, root, sizes, layout="list"):
    """The rows split over several Parquet files (uneven sizes and row groups); returns the
    path of one file holding every row (the single-machine reference)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    x, y, w, g = data["logits"], data["y"], data["w"], data["g"]
    if layout == "list":
        pred = {"y_pred": pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), C)}
    else:
        pred = {f"p{j}": pa.array(x[:, j]) for j in range(C)}
    t = pa.table(dict(pred, label=pa.array(y), w=pa.array(w), country=pa.array(g)))
    os.makedirs(root / "ds")  # (root may not exist yet)
    a = 0
    for i, m in enumerate(sizes):
        pq.write_table(t.slice(a, m), root / "ds" / f"part-{i:03d}.parquet", row_group_size=700)
        a += m
    assert a == t.num_rows
    pq.write_table(t, root / "all.parquet", row_group_size=1000)
    return str(root / "all.parquet")


def test_cluster_listens_on_loopback_only(client):
    info = client.scheduler_info(n_workers=-1)
    addrs = [info["address"]] + list(info["workers"])
    assert len(info["workers"]) == 2
    assert all(a.startswith(f"tcp://{LOOPBACK}:") for a in addrs), addrs


def test_cluster_thread_plan_no_oversubscription(client, fd):
    plan = fd.thread_plan(client)
    cores = len(os.sched_getaffinity(0))
    assert plan == {LOOPBACK: max(1, cores // 2)}  # 2 workers x 1 thread on this host
    workers = list(client.scheduler_info(n_workers=-1)["workers"])
    used = [client.submit(fd.kernel_threads, plan, workers=[w], allow_other_workers=False,
                          pure=False).result() for w in workers]
    assert used == [max(1, cores // 2)] * 2  # what a task uses on each worker


def test_cluster_arrays_equal_local(client, data, da, fd):
    x, y, w, g = data["logits"], data["y"], data["w"], data["g"]
    kw = dict(loss=[SCE, CCE], from_logits=True, label_smoothing=0.1)
    want = local_evaluate(x, labels=y, weights=w, groups=g, **kw)
    got = fd.evaluate(da.from_array(y, chunks=1000), da.from_array(x, chunks=(700, 4)),
                      sample_weight=da.from_array(w, chunks=1000),
                      groups=da.from_array(g, chunks=1000), **kw)
    assert_same_result(got, want)
    # the work ran on both workers (the tasks are spread; states were merged across them)
    assert len(client.scheduler_info(n_workers=-1)["workers"]) == 2


def test_cluster_parquet_dataset_equals_local(client, data, dd, fd, tmp_path):
    ref = parquet_dataset(data, tmp_path, [1000, 1, 1333, 2000, 0, 1666])
    want = local_evaluate(ref, loss=SCE, from_logits=True, weight_column="w",
                          group_column="country")
    ddf = dd.read_parquet(str(tmp_path / "ds"))
    assert ddf.npartitions > 1
    got = fd.evaluate("label", ddf, sample_weight="w", groups="country",
                      pred_columns="y_pred", loss=SCE, from_logits=True)
    assert_same_result(got, want)
    assert got.n_rows == N


def eval_parser(fd):
    from fastloss.cli import eval as _eval_cli

    sub = argparse.ArgumentParser(prog="fastloss").add_subparsers()
    p = _eval_cli.register(sub)
    if not any("--scheduler" in a.option_strings for a in p._actions):
        fd.add_cli_arguments(p)  # until fastloss eval has the flags
    return p


def cli_kwargs(args):
    """The keyword arguments ``fastloss eval`` passes to evaluate (see _eval_cli.run)."""
    from fastloss.cli.eval import _LOSS_FLAGS

    losses = [n.strip() for item in args.loss for n in item.split(",") if n.strip()]
    opts = {dest: getattr(args, dest) for _, dest, _ in _LOSS_FLAGS if hasattr(args, dest)}
    return dict(loss=losses if len(losses) > 1 else losses[0], labels=args.labels,
                weights=args.weights, groups=args.groups,
                pred_column=args.pred_column[0] if args.pred_column else None,
                label_column=args.label_column, weight_column=args.weight_column,
                group_column=args.group_column, chunk_rows=args.chunk_rows, **opts)


def test_cli_evaluator_on_files(client, data, fd, tmp_path):
    x, y = data["logits"], data["y"]
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    address = client.scheduler.address
    p = eval_parser(fd)
    args = p.parse_args([str(tmp_path / "x.npy"), "--labels", str(tmp_path / "y.npy"),
                         "--loss", SCE, "--from-logits", "--chunk-rows", "700",
                         "--scheduler", address])
    run = fd.cli_evaluator(args)
    assert run is not None and fd.cli_evaluator(p.parse_args([str(tmp_path / "x.npy"), "--loss",
                                                               SCE])) is None
    got = run(args.pred, **cli_kwargs(args))
    want = local_evaluate(str(tmp_path / "x.npy"), labels=str(tmp_path / "y.npy"), loss=SCE,
                          from_logits=True)
    assert_same_result(got, want)
    assert got.to_dict()["inputs"] == want.to_dict()["inputs"]  # the same file names
    # a Parquet directory with the labels, weights and groups in columns
    ref = parquet_dataset(data, tmp_path, [2500, 3500], layout="columns")
    args = p.parse_args([str(tmp_path / "ds"), "--loss", f"{SCE},{CCE}", "--from-logits",
                         "--weight-column", "w", "--group-column", "country",
                         "--scheduler", address])
    got = fd.cli_evaluator(args)(args.pred, **cli_kwargs(args))
    want = local_evaluate(ref, loss=[SCE, CCE], from_logits=True, weight_column="w",
                          group_column="country")
    assert_same_result(got, want)
    # predictions from a .npy stack (a directory), labels from a column of a Parquet dataset
    import dask.array as da

    da.to_npy_stack(str(tmp_path / "stack"), da.from_array(x, chunks=(1100, C)))
    args = p.parse_args([str(tmp_path / "stack"), "--labels", str(tmp_path / "ds"),
                         "--label-column", "label", "--loss", SCE, "--from-logits",
                         "--scheduler", address])
    got = fd.cli_evaluator(args)(args.pred, **cli_kwargs(args))
    assert_same_result(got, local_evaluate(x, labels=y, loss=SCE, from_logits=True))
    # and the other way round: Parquet predictions (list column), .npy labels and weights
    list_ref = parquet_dataset(data, tmp_path / "lists", [1700, 4300])
    np.save(tmp_path / "w.npy", data["w"])
    args = p.parse_args([str(tmp_path / "lists" / "ds"), "--labels", str(tmp_path / "y.npy"),
                         "--weights", str(tmp_path / "w.npy"), "--pred-column", "y_pred",
                         "--loss", SCE, "--from-logits", "--scheduler", address])
    got = fd.cli_evaluator(args)(args.pred, **cli_kwargs(args))
    want = local_evaluate(list_ref, labels=str(tmp_path / "y.npy"),
                          weights=str(tmp_path / "w.npy"), pred_column="y_pred", loss=SCE,
                          from_logits=True)
    assert_same_result(got, want)
    with pytest.raises(ValueError, match="checkpoint"):
        run(args.pred, **dict(cli_kwargs(args), checkpoint=str(tmp_path / "c.json")))
    np.savez(tmp_path / "d.npz", y_pred=x, y_true=y)
    with pytest.raises(InputError, match="on a Dask cluster"):
        run(str(tmp_path / "d.npz"), **cli_kwargs(args))


def _eval_cli_has_cluster_flags():
    from fastloss import cli

    sub = next(a for a in cli.build_parser()._actions
               if isinstance(a, argparse._SubParsersAction))
    return any("--scheduler" in a.option_strings for a in sub.choices["eval"]._actions)


UNWIRED = pytest.mark.xfail(
    not _eval_cli_has_cluster_flags(), strict=True,
    reason="fastloss eval has no --scheduler / --dask-workers yet: fastloss/cli/eval.py must "
           "call fastloss.dask.add_cli_arguments and cli_evaluator")


def test_cli_evaluator_starts_a_local_cluster(data, fd, tmp_path):
    """``--dask-workers 2 --dask-threads 1``: a cluster of its own, closed afterwards."""
    np.save(tmp_path / "x.npy", data["logits"])
    np.save(tmp_path / "y.npy", data["y"])
    args = eval_parser(fd).parse_args([str(tmp_path / "x.npy"), "--labels",
                                       str(tmp_path / "y.npy"), "--loss", SCE,
                                       "--from-logits", "--dask-workers", "2",
                                       "--dask-threads", "1"])
    import multiprocessing

    before = set(threading.enumerate())
    children = {p.pid for p in multiprocessing.active_children()}  # the shared cluster's
    got = fd.cli_evaluator(args)(args.pred, **cli_kwargs(args))
    want = local_evaluate(str(tmp_path / "x.npy"), labels=str(tmp_path / "y.npy"), loss=SCE,
                          from_logits=True)
    assert got.to_dict() == want.to_dict()
    with pytest.raises(ValueError, match="needs --dask-workers"):
        fd.cli_evaluator(argparse.Namespace(scheduler=None, dask_workers=None, dask_threads=2))
    # the cluster is gone: no worker processes left behind
    time.sleep(0.5)
    assert not [p for p in multiprocessing.active_children()
                if p.is_alive() and p.pid not in children]
    assert len(set(threading.enumerate()) - before) <= 2  # at most idle pool threads


@UNWIRED
def test_cli_scheduler_end_to_end(client, data, tmp_path, capsys):
    """``fastloss eval ... --scheduler ADDRESS`` as a user types it (needs the flags wired
    into fastloss/cli/eval.py: see fastloss.dask.add_cli_arguments)."""
    from fastloss import cli

    np.save(tmp_path / "x.npy", data["logits"])
    np.save(tmp_path / "y.npy", data["y"])
    out = tmp_path / "r.json"
    rc = cli.main(["eval", str(tmp_path / "x.npy"), "--labels", str(tmp_path / "y.npy"),
                   "--loss", SCE, "--from-logits", "--chunk-rows", "1000", "--no-progress",
                   "--scheduler", client.scheduler.address, "-o", str(out), "--quiet"])
    assert rc == 0, capsys.readouterr().err
    import json

    doc = json.loads(out.read_text())
    assert doc["losses"][SCE] == float(fastloss.sparse_categorical_cross_entropy(
        data["y"], data["logits"], from_logits=True))


def test_worker_killed_mid_evaluation(client, data, da, fd):
    """A worker is SIGKILLed while it holds part results the merge still needs; its nanny
    restarts it, Dask recomputes the lost tasks, and the result is still exact."""
    x, y, g = data["logits"], data["y"], data["g"]
    want = local_evaluate(x, labels=y, groups=g, loss=SCE, from_logits=True)
    # slow part tasks (a lambda: pickled by value, it sets the worker's own environment), on
    # both workers: one still starting would run its parts unthrottled
    client.wait_for_workers(2, timeout=60)
    assert len(client.run(lambda: os.environ.__setitem__("FASTLOSS_DASK_THROTTLE",
                                                         "0.25"))) == 2
    try:
        lazy = fd.evaluate(y, da.from_array(x, chunks=(250, C)), groups=g, loss=SCE,
                           from_logits=True, compute=False, split_every=24)
        pids = client.run(os.getpid)
        fut = client.compute(lazy)
        victim = held = None
        deadline = time.monotonic() + 60
        while victim is None and time.monotonic() < deadline and not fut.done():
            for addr, keys in client.has_what().items():
                # (in a fused task's key too, should the graph optimisation fuse one)
                held = [k for k in keys if "_part_task" in str(k)]
                if held:
                    victim = addr
                    break
            time.sleep(0.05)
        # (a future that ended first says how: an error on a worker, or parts never held)
        assert victim is not None, ("no part result ever reached a worker's memory",
                                    fut.status, fut.exception() if fut.status == "error"
                                    else None)
        assert not fut.done()  # killed in the middle of the evaluation
        os.kill(pids[victim], signal.SIGKILL)
        got = fut.result(timeout=180)
    finally:
        client.run(lambda: os.environ.pop("FASTLOSS_DASK_THROTTLE", None))
    assert_same_result(got, want)
    client.wait_for_workers(2, timeout=60)
    assert victim not in client.scheduler_info(n_workers=-1)["workers"]
    # the lost results were computed again: their tasks ran twice
    story = client.story(held[0])
    assert sum(1 for ev in story if ev[2] == "memory") >= 2, story


@pytest.mark.slow
@UNWIRED
def test_cli_dask_workers_local_cluster(data, tmp_path, capsys):
    """``fastloss eval --dask-workers 2``: starts (and stops) its own local cluster."""
    from fastloss import cli

    np.save(tmp_path / "x.npy", data["logits"])
    np.save(tmp_path / "y.npy", data["y"])
    rc = cli.main(["eval", str(tmp_path / "x.npy"), "--labels", str(tmp_path / "y.npy"),
                   "--loss", SCE, "--from-logits", "--no-progress", "--json",
                   "--dask-workers", "2", "--dask-threads", "1"])
    assert rc == 0
    import json

    doc = json.loads(capsys.readouterr().out)
    want = local_evaluate(str(tmp_path / "x.npy"), labels=str(tmp_path / "y.npy"), loss=SCE,
                          from_logits=True)
    assert doc == want.to_dict()


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Sending large graph")
def test_cluster_large_many_chunkings(client, da, fd):
    r = np.random.default_rng(5)
    n, c = 300_000, 64
    x = r.standard_normal((n, c)).astype(np.float32)
    y = r.integers(0, c, n)
    g = r.integers(0, 50, n)
    want = local_evaluate(x, labels=y, groups=g, loss=[SCE, CCE], from_logits=True)
    for rows in (4096, 10_000, 33_333):
        got = fd.evaluate(y, da.from_array(x, chunks=(rows, c)), groups=g, loss=[SCE, CCE],
                          from_logits=True)
        assert_same_result(got, want)


def test_evaluate_files_starts_a_local_cluster_of_its_own_by_default(data, fd, tmp_path):
    """No client, scheduler or n_workers: a local cluster, one single-threaded worker per
    core (was a TypeError from cpu_count() // None)."""
    x, y = data["logits"], data["y"]
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    want = local_evaluate(x, labels=y, loss=SCE, from_logits=True)
    got = fd.evaluate_files(str(tmp_path / "x.npy"), labels=str(tmp_path / "y.npy"), loss=SCE,
                            from_logits=True)
    assert_same_result(got, want)


def test_big_endian_npy_files_and_arrays_equal_local(client, data, da, fd, tmp_path):
    # (#19) the kernels read native byte order: big-endian rows are swapped per partition
    x, y = data["logits"], data["y"]
    np.save(tmp_path / "x.npy", x.astype(">f4"))
    np.save(tmp_path / "y.npy", y.astype(">i8"))
    want = local_evaluate(x, labels=y, loss=SCE, from_logits=True)
    got = fd.evaluate_files(str(tmp_path / "x.npy"), labels=str(tmp_path / "y.npy"), loss=SCE,
                            from_logits=True, client=client)
    assert_same_result(got, want)
    t = np.eye(C, dtype=np.float32)[y]
    got = fd.evaluate(da.from_array(t.astype(">f4"), chunks=(1000, C)),
                      da.from_array(x.astype(">f4"), chunks=(1000, C)),
                      loss="binary_cross_entropy", from_logits=True)
    assert_same_result(got, local_evaluate(x, labels=t, loss="binary_cross_entropy",
                                           from_logits=True))
