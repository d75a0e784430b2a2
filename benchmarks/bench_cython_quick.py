"""Quick throughput check of the Cython backend against PyTorch and NumPy.

Plain script (not collected by pytest)::

    python benchmarks/bench_cython_quick.py                  # 2 threads (the targets)
    python benchmarks/bench_cython_quick.py --threads 1 2 --repeat 9
    FASTLOSS_CYTHON_VARIANT=avx2 python benchmarks/bench_cython_quick.py   # another build

All engines get the same float32 data and the same thread count and run one after the
other inside every repeat, so a busy neighbour slows them alike. Printed: elements per
second from the best repeat, and the median over repeats of the per-repeat speed ratio
cython / torch (the figure that survives a noisy machine). ``--cpu-time`` divides by the
process's CPU time instead (per-core throughput, unaffected by other processes).

* ``cython``: the kernel (block partials, then the exact ``combine``): the mean loss;
* ``api``: ``fastloss.sparse_categorical_cross_entropy`` / ``binary_cross_entropy`` with
  ``backend="cython"`` (adds input validation: label range, finite weights, ...);
* ``torch``: ``torch.nn.functional.cross_entropy`` / ``binary_cross_entropy_with_logits``
  (``reduction="mean"``) after ``torch.set_num_threads``;
* ``numpy``: the stable formulas in plain float32 NumPy (max, exp, sum, log), the rows
  split over the same number of threads (NumPy releases the GIL).
"""

import argparse
import os
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

import fastloss
from fastloss.kernels import block_rows_for, n_blocks
from fastloss.kernels import cython as cy
from fastloss.kernels._blocks import combine

E = np.zeros(0)
F32 = np.zeros(0, np.float32)


def cy_sparse(x, y, nt):
    n, c = x.shape
    br = block_rows_for(c)
    lp, wp = np.zeros(n_blocks(n, br)), np.zeros(n_blocks(n, br))
    cy.sparse_ce(x, y, E, E, True, 0, False, 0.0, 0.0, 0, 0.0, False, br, F32, lp, wp, nt)
    return combine(lp) / combine(wp)


def cy_bce(x, z, nt):
    br = block_rows_for(1)
    lp, wp = np.zeros(n_blocks(x.size, br)), np.zeros(n_blocks(x.size, br))
    cy.bce(x, z, E, 1, E, True, 0.0, 0, 0.0, False, br, F32, lp, wp, nt)
    return combine(lp) / combine(wp)


def np_threads(fn, n, nt, *arrays):
    """sum of fn(chunk...) over nt row ranges, run on nt threads."""
    bounds = np.linspace(0, n, nt + 1).astype(int)
    parts = [tuple(a[bounds[i]:bounds[i + 1]] for a in arrays) for i in range(nt)]
    if nt == 1:
        return fn(*parts[0])
    with ThreadPoolExecutor(nt) as ex:
        return sum(ex.map(lambda p: fn(*p), parts))


def np_sparse_sum(x, y):
    m = x.max(axis=1, keepdims=True)
    lse = np.log(np.exp(x - m).sum(axis=1)) + m[:, 0]
    return float((lse - x[np.arange(x.shape[0]), y]).sum(dtype=np.float64))


def np_bce_sum(x, z):
    v = np.maximum(x, 0) - x * z + np.log1p(np.exp(-np.abs(x)))
    return float(v.sum(dtype=np.float64))


def cases(rng, scale):
    out = []
    for n, c in [(100_000, 1000), (2048, 50257), (1_000_000, 10)]:
        n = max(8, int(n * scale))
        x = rng.standard_normal((n, c), dtype=np.float32)
        y = rng.integers(0, c, n)
        out.append((f"sparse CE {n}x{c}", x.size, {
            "cython": lambda t, x=x, y=y: cy_sparse(x, y, t),
            "api": lambda t, x=x, y=y: float(fastloss.sparse_categorical_cross_entropy(
                y, x, from_logits=True, backend="cython", n_threads=t)),
            "numpy": lambda t, x=x, y=y: np_threads(np_sparse_sum, len(x), t, x, y) / len(x),
            "torch": ("ce", x, y)}))
    m = max(8, int(50_000_000 * scale))
    x = rng.standard_normal(m, dtype=np.float32) * 3
    z = (rng.random(m) < 0.5).astype(np.float32)
    out.append((f"BCE logits {m}", m, {
        "cython": lambda t: cy_bce(x, z, t),
        "api": lambda t: float(fastloss.binary_cross_entropy(z, x, from_logits=True,
                                                             backend="cython", n_threads=t)),
        "numpy": lambda t: np_threads(np_bce_sum, m, t, x, z) / m,
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
    ap.add_argument("--threads", type=int, nargs="+", default=[2])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--scale", type=float, default=1.0, help="shrink the inputs (e.g. 0.1)")
    ap.add_argument("--no-numpy", action="store_true", help="skip the (slow) NumPy baseline")
    ap.add_argument("--cpu-time", action="store_true",
                    help="rate per CPU-second of this process (all threads) instead of per "
                         "wall-clock second: per-core throughput, blind to other processes")
    args = ap.parse_args()
    clock = time.process_time if args.cpu_time else time.perf_counter
    if not cy.AVAILABLE:
        raise SystemExit(f"the Cython backend is not available: {cy.WHY_UNAVAILABLE}")
    try:
        import torch
    except ImportError:
        torch = None
    info = cy.BUILD_INFO
    print(f"fastloss cython: variant {info['variant']} ({info['simd']}, FMA {info['fma']}), "
          f"OpenMP {info['openmp']}; torch {torch.__version__ if torch else 'missing'}; "
          f"numpy {np.__version__}; {os.cpu_count()} CPUs; load average "
          f"{', '.join(f'{v:.2f}' for v in os.getloadavg())}")
    engines = ["cython", "api", "torch"] + ([] if args.no_numpy else ["numpy"])
    head = " ".join(f"{k + ' G/s':>11s}" for k in engines)
    unit = "per CPU-second (--cpu-time)" if args.cpu_time else "per wall-clock second"
    print(f"rates: elements {unit}, best of {args.repeat}; cy/torch: median per-repeat ratio")
    print(f"{'case':24s} {'thr':>3s} {head} {'cy/torch':>9s}   mean loss (cython, torch)")
    rng = np.random.default_rng(0)
    for name, n_el, fns_all in cases(rng, args.scale):
        for t in args.threads:
            fns = {k: fns_all[k] for k in engines if k not in ("torch",)}
            if torch is not None:
                torch.set_num_threads(t)
                fns["torch"] = torch_callable(torch, fns_all["torch"])
            vals = {k: f(t) for k, f in fns.items()}  # warm-up, and the values
            times = {k: [] for k in fns}
            for _ in range(args.repeat):
                for k, f in fns.items():
                    t0 = clock()
                    f(t)
                    times[k].append(clock() - t0)
            rate = {k: n_el / min(v) / 1e9 for k, v in times.items()}
            ratio = (statistics.median(a / b for a, b in zip(times["torch"], times["cython"]))
                     if "torch" in times else float("nan"))
            cols = " ".join(f"{rate.get(k, np.nan):11.3f}" for k in engines)
            print(f"{name:24s} {t:3d} {cols} {ratio:9.2f}   {vals['cython']:.6f}, "
                  f"{vals.get('torch', float('nan')):.6f}", flush=True)


if __name__ == "__main__":
    main()
