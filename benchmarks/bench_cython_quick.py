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

``--suite kernels`` instead times the newer kernels side by side with what people write
(argmax_rows, elementwise against scipy.special, BCE / categorical CE on probabilities for
every clip mode, MSE with one column), printing per engine the best wall-clock time, the
rate, and the median CPU time per call (all threads of this process)::

    python benchmarks/bench_cython_quick.py --suite kernels --threads 1 2 --repeat 7
    # with an older build as "cy_old" (e.g. the previous commit's sources compiled alone):
    python benchmarks/bench_cython_quick.py --suite kernels --old /tmp/oldcy/_core_avx512.cpython-311-x86_64-linux-gnu.so
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


# --------------------------------------------------------------------------- --suite kernels

def _kernel_cases(rng, scale, torch):
    """[(name, elements, {engine: fn(n_threads)})] for the newer kernels."""
    import scipy.special as sp
    from fastloss.kernels import CLIP_EPS, CLIP_KERAS2, CLIP_NONE, CLIP_TORCH
    from fastloss.kernels import EW_KL_DIV, EW_REL_ENTR, EW_XLOGY

    def sz(n):
        return max(16, int(n * scale))

    out = []
    # argmax_rows
    for n, c in [(1_000_000, 10), (100_000, 1000)]:
        n = sz(n)
        x = rng.standard_normal((n, c), dtype=np.float32)
        o = np.empty(n, np.int64)
        eng = {"cython": lambda t, x=x, o=o: cy.argmax_rows(x, o, t),
               "numpy": lambda t, x=x: np_threads(lambda a: np.argmax(a, axis=1), len(x), t, x)}
        if torch is not None:
            tx = torch.from_numpy(x)
            eng["torch"] = lambda t, tx=tx: torch.argmax(tx, dim=1)
        out.append((f"argmax_rows {n}x{c} f32", x.size, eng))
    # elementwise vs scipy.special
    m = sz(2_000_000)
    for dt in (np.float64, np.float32):
        x = rng.random(m).astype(dt)
        y = rng.random(m).astype(dt)
        o = np.empty(m, dt)
        for op, name, fn in [(EW_XLOGY, "xlogy", sp.xlogy), (EW_REL_ENTR, "rel_entr", sp.rel_entr),
                             (EW_KL_DIV, "kl_div", sp.kl_div)]:
            eng = {"cython": lambda t, op=op, x=x, y=y, o=o: cy.elementwise(op, x, y, o, t),
                   "scipy": lambda t, fn=fn, x=x, y=y: np_threads(fn, len(x), t, x, y)}
            if torch is not None and op == EW_XLOGY:
                tx, ty = torch.from_numpy(x), torch.from_numpy(y)
                eng["torch"] = lambda t, tx=tx, ty=ty: torch.special.xlogy(tx, ty)
            out.append((f"{name} {m} {np.dtype(dt).name}", m, eng))
    # BCE on probabilities, hard and soft labels, every clip mode
    m = sz(10_000_000)
    p = rng.random(m, dtype=np.float32)
    zh = (rng.random(m) < 0.5).astype(np.float32)
    zs = rng.random(m, dtype=np.float32)
    br = block_rows_for(1)
    nb = n_blocks(m, br)
    for zname, z in (("hard", zh), ("soft", zs)):
        for cm, cname in [(CLIP_NONE, "none"), (CLIP_EPS, "eps"), (CLIP_KERAS2, "keras2"),
                          (CLIP_TORCH, "torch")]:
            if zname == "soft" and cm != CLIP_NONE:
                continue
            eps = 1e-7 if cm in (CLIP_EPS, CLIP_KERAS2) else 0.0

            def f_cy(t, z=z, cm=cm, eps=eps):
                lp, wp = np.zeros(nb), np.zeros(nb)
                cy.bce(p, z, E, 1, E, False, 0.0, cm, eps, False, br, F32, lp, wp, t)
                return combine(lp) / combine(wp)

            def np_bce(pp, zz):
                return float((-(zz * np.log(pp) + (1 - zz) * np.log1p(-pp))).sum(dtype=np.float64))

            eng = {"cython": f_cy,
                   "numpy": lambda t, z=z: np_threads(np_bce, m, t, p, z) / m}
            if torch is not None:
                tp, tz = torch.from_numpy(p), torch.from_numpy(z)
                eng["torch"] = lambda t, tp=tp, tz=tz: float(
                    torch.nn.functional.binary_cross_entropy(tp, tz))
            out.append((f"BCE probs {zname} {cname} {m}", m, eng))
    # categorical CE on probabilities, one-hot targets (Keras CategoricalCrossentropy)
    n, c = sz(100_000), 100
    e = rng.random((n, c), dtype=np.float32) + 1e-3
    pc = (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
    tc = np.zeros((n, c), np.float32)
    tc[np.arange(n), rng.integers(0, c, n)] = 1
    brc = block_rows_for(c)
    nbc = n_blocks(n, brc)
    for tname, tt in (("one-hot", tc), ("soft", (np.float32(0.9) * tc + np.float32(0.001)))):
        def f_cat(t, tt=tt):
            lp, wp = np.zeros(nbc), np.zeros(nbc)
            cy.categorical_ce(pc, tt, E, E, False, 0.0, CLIP_EPS, 1e-7, False, brc, F32, lp, wp, t)
            return combine(lp) / combine(wp)

        def np_cat(pp, ttt):
            q = np.clip(pp, np.float32(1e-7), np.float32(1 - 1e-7))
            return float((-(ttt * np.log(q)).sum(axis=1)).sum(dtype=np.float64))

        eng = {"cython": f_cat, "numpy": lambda t, tt=tt: np_threads(np_cat, n, t, pc, tt) / n}
        if torch is not None:
            tp, ttt = torch.from_numpy(pc), torch.from_numpy(tt)
            eng["torch"] = lambda t, tp=tp, ttt=ttt: float(
                -(ttt * torch.log(tp.clamp(1e-7, 1 - 1e-7))).sum(dim=1).mean())
        out.append((f"cat CE probs {tname} {n}x{c}", pc.size, eng))
    # MSE with one column (the torch mse_loss drop-in's (M, 1))
    m = sz(10_000_000)
    xm = rng.standard_normal((m, 1), dtype=np.float32)
    tm = rng.standard_normal((m, 1), dtype=np.float32)
    brm = block_rows_for(1)
    nbm = n_blocks(m, brm)

    def f_mse(t):
        lp, wp = np.zeros(nbm), np.zeros(nbm)
        cy.mse(xm, tm, E, E, False, brm, F32, lp, wp, t)
        return combine(lp) / combine(wp)

    eng = {"cython": f_mse,
           "numpy": lambda t: np_threads(lambda a, b: float(((a - b) ** 2).sum(dtype=np.float64)),
                                         m, t, xm, tm) / m}
    if torch is not None:
        txm, ttm = torch.from_numpy(xm), torch.from_numpy(tm)
        eng["torch"] = lambda t: float(torch.nn.functional.mse_loss(txm, ttm))
    out.append((f"MSE C=1 {m}", m, eng))
    # softmax / log_softmax of narrow rows
    n, c = sz(1_000_000), 10
    xs = rng.standard_normal((n, c), dtype=np.float32)
    os_ = np.empty_like(xs)
    for log in (False, True):
        def np_sm(a, log=log):
            d = a - a.max(axis=1, keepdims=True)
            if log:
                return d - np.log(np.exp(d).sum(axis=1, keepdims=True))
            e_ = np.exp(d)
            return e_ / e_.sum(axis=1, keepdims=True)

        eng = {"cython": lambda t, log=log: cy.softmax_rows(xs, os_, log, t),
               "numpy": lambda t, np_sm=np_sm: np_threads(lambda a: np_sm(a).size, n, t, xs)}
        if torch is not None:
            txs = torch.from_numpy(xs)
            eng["torch"] = (lambda t, txs=txs: torch.log_softmax(txs, dim=1)) if log else (
                lambda t, txs=txs: torch.softmax(txs, dim=1))
        out.append((f"{'log_' if log else ''}softmax_rows {n}x{c}", xs.size, eng))
    # KL divergence on probabilities (Keras KLDivergence)
    n, c = sz(100_000), 100
    pk = pc[:n]
    tk = np.float32(0.9) * tc[:n] + np.float32(0.1 / c)

    def f_kl(t):
        lp, wp = np.zeros(nbc), np.zeros(nbc)
        cy.kl(pk, tk, E, False, False, CLIP_EPS, 1e-7, False, brc, F32, lp, wp, t)
        return combine(lp) / combine(wp)

    def np_kl(a, b):
        a = np.clip(a, np.float32(1e-7), np.float32(1))
        b = np.clip(b, np.float32(1e-7), np.float32(1))
        return float((b * np.log(b / a)).sum(dtype=np.float64))

    eng = {"cython": f_kl, "numpy": lambda t: np_threads(np_kl, n, t, pk, tk) / n}
    if torch is not None:
        tpk, ttk = torch.from_numpy(pk), torch.from_numpy(tk)
        eng["torch"] = lambda t: float(torch.nn.functional.kl_div(
            torch.log(tpk), ttk, reduction="batchmean"))
    out.append((f"KL probs {n}x{c}", pk.size, eng))
    return out


def _load_old(path):
    """An older build of the extension (a single ``_core*.so`` built from an earlier
    commit's sources), for before / after figures in one run."""
    import importlib.util
    name = os.path.basename(path).split(".")[0]
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _with_module(mod, fn, t):
    """Run an engine written against the global ``cy`` with ``mod`` in its place."""
    global cy
    saved, cy = cy, mod
    try:
        return fn(t)
    finally:
        cy = saved


def run_kernel_suite(args, torch):
    rng = np.random.default_rng(0)
    cases_ = _kernel_cases(rng, args.scale, torch)
    if args.old:
        old = _load_old(args.old)
        need = {"argmax": "argmax_rows", "xlogy": "elementwise", "rel_entr": "elementwise",
                "kl_div": "elementwise"}
        for name, _, eng in cases_:
            fn = next((v for k, v in need.items() if name.startswith(k)), None)
            if fn is None or hasattr(old, fn):
                eng["cy_old"] = lambda t, f=eng["cython"], m=old: _with_module(m, f, t)
    print(f"{'case':32s} {'thr':>3s}  per engine: best wall ms / G el/s / median CPU ms per call")
    for name, n_el, eng in cases_:
        if args.only and not any(k in name for k in args.only):
            continue
        for t in args.threads:
            if torch is not None:
                torch.set_num_threads(t)
            for f in eng.values():
                f(t)  # warm-up
            wall = {k: [] for k in eng}
            cpu = {k: [] for k in eng}
            for _ in range(args.repeat):
                for k, f in eng.items():
                    c0, w0 = time.process_time(), time.perf_counter()
                    f(t)
                    wall[k].append(time.perf_counter() - w0)
                    cpu[k].append(time.process_time() - c0)
            cols = "  ".join(f"{k} {min(wall[k]) * 1e3:7.2f} / {n_el / min(wall[k]) / 1e9:6.3f} / "
                             f"{statistics.median(cpu[k]) * 1e3:7.2f}" for k in eng)
            print(f"{name:32s} {t:3d}  {cols}", flush=True)
    print(f"load average after: {', '.join(f'{v:.2f}' for v in os.getloadavg())}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[2])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--scale", type=float, default=1.0, help="shrink the inputs (e.g. 0.1)")
    ap.add_argument("--no-numpy", action="store_true", help="skip the (slow) NumPy baseline")
    ap.add_argument("--cpu-time", action="store_true",
                    help="rate per CPU-second of this process (all threads) instead of per "
                         "wall-clock second: per-core throughput, blind to other processes")
    ap.add_argument("--suite", choices=["losses", "kernels"], default="losses",
                    help="losses: CE / BCE on logits (default); kernels: argmax_rows, "
                         "elementwise, BCE / categorical CE on probabilities, MSE C=1")
    ap.add_argument("--old", default=None, metavar="SO",
                    help="--suite kernels: also time an older build of the extension (path "
                         "of a _core*.so built from an earlier commit) as engine cy_old")
    ap.add_argument("--only", nargs="*", default=None,
                    help="--suite kernels: run only the cases whose name contains one of these")
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
    if args.suite == "kernels":
        run_kernel_suite(args, torch)
        return
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
