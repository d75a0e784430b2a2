"""Scaling of ``fastloss.dask``: the same evaluation on 1 and on 2 local Dask workers.

Run: ``python benchmarks/bench_dask.py [--rows N] [--classes C] [--chunk-rows N]``.

One run makes a prediction dump (``.npy`` logits + labels in a temporary directory),
scores it in this process (``fastloss.evaluate``, the reference), and on a
``LocalCluster`` of 1 worker and one of 2 workers (processes, 1 Dask thread each, on
127.0.0.1; both up for the whole run, timed in alternation) through the CLI's path (``fastloss.dask.evaluate_files``: the workers read the
``.npy`` chunks themselves). Kernels run single-threaded in every case (``n_threads=1``),
so 1 worker uses one core and 2 workers two. Each timing is the best of ``--repeat``
rounds after a warm-up run (worker imports, page cache); every result is checked bitwise
equal to the reference. The machine's load average is printed with the figures:
other processes on the same cores lower the scaling.
"""

import argparse
import contextlib
import os
import sys
import tempfile
import time

import numpy as np

SCE = "sparse_categorical_cross_entropy"


def best_of(fn, repeat):
    out, best = None, np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def worker_cpu(client):
    """CPU seconds (user + system) used so far by each worker process."""
    return client.run(lambda: sum(os.times()[:2]))


def same(a, b):
    da, db = a.to_dict(), b.to_dict()
    da.pop("inputs")
    db.pop("inputs")
    return da == db and all(np.asarray(a[k]).tobytes() == np.asarray(b[k]).tobytes() for k in a)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--classes", type=int, default=100)
    ap.add_argument("--chunk-rows", type=int, default=None,
                    help="rows per dask chunk (default: the CLI's default; rounded up "
                         "to whole 256-row segments, so no rows move)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--workers", default="1,2", help="worker counts to time (default 1,2)")
    args = ap.parse_args(argv)

    import distributed

    import fastloss
    from fastloss import evaluate
    from fastloss.evaluation.chunks import chunk_rows_for
    from fastloss.dask import evaluate_files

    n, c = args.rows, args.classes
    counts = [int(v) for v in args.workers.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        r = np.random.default_rng(0)
        xp, yp = os.path.join(tmp, "x.npy"), os.path.join(tmp, "y.npy")
        x = np.lib.format.open_memmap(xp, mode="w+", dtype=np.float32, shape=(n, c))
        for a in range(0, n, 100_000):
            b = min(n, a + 100_000)
            x[a:b] = r.standard_normal((b - a, c), dtype=np.float32) * 3
        x.flush()
        del x
        np.save(yp, r.integers(0, c, n))
        kw = dict(labels=yp, loss=SCE, from_logits=True, n_threads=1)
        load0 = os.getloadavg()
        ref = evaluate(xp, **kw)  # the reference; warms the page cache
        print(f"dump: {n:,} rows x {c} classes float32 logits ({n * c * 4 / 1e6:.0f} MB .npy), "
              f"{len(os.sched_getaffinity(0))} cores, fastloss {fastloss.__version__}, "
              f"dask chunks of {chunk_rows_for(c, args.chunk_rows):,} rows, kernels n_threads=1")
        # Both clusters stay up and the runs alternate (local, 1 worker, 2 workers, ...), so
        # that a change in the machine's load hits every configuration alike.
        with contextlib.ExitStack() as stack:
            clients = {}
            for nw in counts:
                cluster = stack.enter_context(distributed.LocalCluster(
                    n_workers=nw, threads_per_worker=1, processes=True, host="127.0.0.1",
                    dashboard_address="127.0.0.1:0", worker_dashboard_address="127.0.0.1:0",
                    silence_logs=40))
                clients[nw] = stack.enter_context(distributed.Client(cluster))

            def run(nw):
                return evaluate_files(xp, chunk_rows=args.chunk_rows, client=clients[nw], **kw)

            for nw in counts:  # warm-up: worker imports, page cache; and the check
                if not same(run(nw), ref):
                    sys.exit(f"{nw} workers: result differs from fastloss.evaluate")
            times = {"local": np.inf, **{nw: np.inf for nw in counts}}
            busy = {nw: np.inf for nw in counts}
            cpu = {nw: np.inf for nw in counts}
            for _ in range(args.repeat):
                times["local"] = min(times["local"], best_of(lambda: evaluate(xp, **kw), 1)[0])
                for nw in counts:
                    c0 = worker_cpu(clients[nw])
                    with distributed.get_task_stream(clients[nw]) as ts:
                        t, res = best_of(lambda: run(nw), 1)
                    c1 = worker_cpu(clients[nw])
                    if not same(res, ref):
                        sys.exit(f"{nw} workers: result differs from fastloss.evaluate")
                    if t < times[nw]:
                        times[nw] = t
                        busy[nw] = sum(s["stop"] - s["start"] for rec in ts.data
                                       for s in rec["startstops"] if s["action"] == "compute")
                        cpu[nw] = sum(c1[a] - c0[a] for a in c1 if a in c0)
        print(f"load average before: {' '.join(f'{v:.1f}' for v in load0)}")
        print(f"{'run':38s} {'time':>7s} {'rows/s':>11s} {'task time':>10s} {'worker CPU':>11s} "
              f"{'vs 1 worker':>12s}")
        t_local = times["local"]
        print(f"{'fastloss.evaluate, 1 process':38s} {t_local:6.2f}s {n / t_local:11,.0f}")
        for nw in counts:
            t = times[nw]
            rel = f"{times[counts[0]] / t:11.2f}x"
            print(f"{f'fastloss.dask, {nw} worker(s) x 1 thread':38s} {t:6.2f}s {n / t:11,.0f} "
                  f"{busy[nw]:9.2f}s {cpu[nw]:10.2f}s {rel:>12s}")
        print(f"load average after: {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
        print("(best run; task time: wall time of the tasks summed; worker CPU: CPU time the "
              "worker processes got. Task time well above worker CPU means the workers waited "
              "for a core: other processes on the machine)")
        if 1 in times and 2 in times:
            print(f"scaling 1 -> 2 workers: {times[1] / times[2]:.2f}x (results bitwise equal "
                  "to fastloss.evaluate)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
