"""Quick throughput check of the Numba backend against PyTorch and NumPy.

Plain script (not collected by pytest)::

    python benchmarks/bench_numba_quick.py                 # threads 1 and 2
    python benchmarks/bench_numba_quick.py --threads 2 --repeat 7
    python benchmarks/bench_numba_quick.py --no-numpy --duration 360   # shared machine

Every engine runs on the same float32 data with the same thread count, one after
another inside each repeat (so a noisy neighbour slows all of them alike); the
best time of the repeats is reported as elements per second. On a machine shared
with other jobs, ``--duration`` keeps cycling through all cases and engines for
that many seconds and reports each one's best round (the quiet moments). The reduction is
the mean: Numba fills the contract's block partials (then ``combine``), PyTorch
``reduction="mean"``, NumPy is fastloss's reference backend (single-threaded
NumPy, chunked, float64 inside). JIT compilation happens before timing.
"""

import argparse
import time

import numpy as np

from fastloss.kernels import block_rows_for, n_blocks
from fastloss.kernels import numba as nb
from fastloss.kernels import reference as ref
from fastloss.kernels._blocks import combine

E = np.zeros(0)


def _sparse(mod, x, y, n_threads):
    n, c = x.shape
    br = block_rows_for(c)
    lp, wp = np.zeros(n_blocks(n, br)), np.zeros(n_blocks(n, br))
    mod.sparse_ce(x, y, E, E, True, 0, False, 0.0, 0.0, 0, 0.0, False, br, E, lp, wp, n_threads)
    return combine(lp) / combine(wp)


def _bce(mod, x, z, n_threads):
    br = block_rows_for(1)
    lp, wp = np.zeros(n_blocks(x.size, br)), np.zeros(n_blocks(x.size, br))
    mod.bce(x, z, E, 1, E, True, 0.0, 0, 0.0, False, br, E, lp, wp, n_threads)
    return combine(lp) / combine(wp)


def cases(rng, scale):
    def sparse(n, c):
        x = rng.standard_normal((n, c), dtype=np.float32)
        y = rng.integers(0, c, n)
        return x, y

    out = []
    for n, c in [(100_000, 1000), (2048, 50257), (1_000_000, 10)]:
        n = max(8, int(n * scale))
        x, y = sparse(n, c)
        out.append((f"sparse CE {n}x{c}", x.size,
                    {"numba": lambda t, x=x, y=y: _sparse(nb, x, y, t),
                     "numpy": lambda t, x=x, y=y: _sparse(ref, x, y, t),
                     "torch": ("ce", x, y)}))
    m = max(8, int(50_000_000 * scale))
    x = rng.standard_normal(m, dtype=np.float32) * 3
    z = (rng.random(m) < 0.5).astype(np.float32)
    out.append((f"BCE logits {m}", m,
                {"numba": lambda t: _bce(nb, x, z, t),
                 "numpy": lambda t: _bce(ref, x, z, t),
                 "torch": ("bce", x, z)}))
    return out


def torch_callable(torch, spec):
    kind, a, b = spec
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    if kind == "ce":
        return lambda t: float(torch.nn.functional.cross_entropy(ta, tb))
    return lambda t: float(torch.nn.functional.binary_cross_entropy_with_logits(ta, tb))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--scale", type=float, default=1.0, help="shrink the inputs (e.g. 0.1)")
    ap.add_argument("--no-numpy", action="store_true", help="skip the (slow) NumPy baseline")
    ap.add_argument("--duration", type=float, default=0.0,
                    help="cycle through every case for this many seconds, keep the best")
    args = ap.parse_args()
    try:
        import torch
    except ImportError:
        torch = None
    rng = np.random.default_rng(0)
    print(f"{'case':30s} {'thr':>3s} {'numba G/s':>10s} {'torch G/s':>10s} {'numpy G/s':>10s}"
          f" {'numba/torch':>12s}   values (numba, torch, numpy)")
    runs = []  # (name, n_el, threads, {engine: fn})
    for name, n_el, engines in cases(rng, args.scale):
        for t in args.threads:
            fns = {"numba": engines["numba"]}
            if torch is not None:
                fns["torch"] = torch_callable(torch, engines["torch"])
            if not args.no_numpy:
                fns["numpy"] = engines["numpy"]
            runs.append((name, n_el, t, fns))
    best, vals = {}, {}

    def one_round(run, warm):
        name, n_el, t, fns = run
        if torch is not None:
            torch.set_num_threads(t)
        for k, f in fns.items():
            if warm:
                vals[(name, t, k)] = f(t)  # warm-up (JIT compile) and the value
            t0 = time.perf_counter()
            f(t)
            dt = time.perf_counter() - t0
            best[(name, t, k)] = min(best.get((name, t, k), np.inf), dt)

    def report(run):
        name, n_el, t, fns = run
        rate = {k: n_el / best[(name, t, k)] / 1e9 for k in fns}
        ratio = rate["numba"] / rate["torch"] if "torch" in rate else float("nan")
        print(f"{name:30s} {t:3d} {rate['numba']:10.3f} {rate.get('torch', np.nan):10.3f} "
              f"{rate.get('numpy', np.nan):10.3f} {ratio:12.2f}   "
              + ", ".join(f"{vals[(name, t, k)]:.6f}" for k in ("numba", "torch", "numpy")
                          if k in fns), flush=True)

    if args.duration > 0:
        for run in runs:
            one_round(run, True)
        t_end = time.time() + args.duration
        rounds = 1
        while time.time() < t_end:
            for run in runs:
                one_round(run, False)
            rounds += 1
        for run in runs:
            report(run)
        print(f"(best of {rounds} rounds)")
    else:
        for run in runs:
            one_round(run, True)
            for _ in range(args.repeat):
                one_round(run, False)
            report(run)


if __name__ == "__main__":
    main()
