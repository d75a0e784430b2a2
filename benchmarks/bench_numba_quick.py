"""Quick throughput check of the Numba backend against PyTorch and NumPy.

Plain script (not collected by pytest)::

    python benchmarks/bench_numba_quick.py                 # threads 1 and 2
    python benchmarks/bench_numba_quick.py --threads 2 --repeat 7
    python benchmarks/bench_numba_quick.py --no-numpy --duration 360   # shared machine
    python benchmarks/bench_numba_quick.py --fast-paths --repeat 7   # probability inputs etc.

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
import os
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


# ------------------------------------------------ fast paths (--fast-paths), one run
# fastloss numba vs NumPy as people write it vs PyTorch, same arrays, warm, best of
# --repeat; wall time and process CPU time per call (the CPU time is less sensitive to
# other jobs on a shared machine).

def _fast_cases(rng, scale):
    import scipy.special as sps

    from fastloss.kernels import CLIP_EPS, CLIP_KERAS2, CLIP_NONE, CLIP_TORCH, EW_KL_DIV, \
        EW_REL_ENTR, EW_XLOGY

    def parts(n, c):
        br = block_rows_for(c)
        return br, np.zeros(n_blocks(n, br)), np.zeros(n_blocks(n, br))

    out = []
    m = max(8, int(10_000_000 * scale))
    p = rng.random(m, dtype=np.float32)
    z = (rng.random(m) < 0.5).astype(np.float32)
    br, lp, wp = parts(m, 1)
    for mode, name in ((CLIP_NONE, "none"), (CLIP_EPS, "eps"), (CLIP_KERAS2, "keras2"),
                       (CLIP_TORCH, "torch")):
        def fl(t, mode=mode):
            nb.bce(p, z, E, 1, E, False, 0.0, mode, 1e-7, False, br, E, lp, wp, t)
            return combine(lp) / combine(wp)
        out.append((f"BCE probs clip={name} {m}", m, fl,
                    lambda t: float(np.mean(-(z * np.log(p) + (1 - z) * np.log1p(-p)))),
                    ("bce_probs", p, z)))
    n, c = max(8, int(100_000 * scale)), 100
    x = rng.random((n, c), dtype=np.float32)
    x /= x.sum(1, keepdims=True)
    y = rng.integers(0, c, n)
    t1 = np.zeros((n, c), np.float32)
    t1[np.arange(n), y] = 1
    br2, lp2, wp2 = parts(n, c)

    def cce(t):
        nb.categorical_ce(x, t1, E, E, False, 0.0, CLIP_EPS, 1e-7, False, br2, E, lp2, wp2, t)
        return combine(lp2) / combine(wp2)
    out.append((f"CCE probs one-hot {n}x{c}", n * c, cce,
                lambda t: float(np.mean(-np.sum(t1 * np.log(np.clip(x, 1e-7, 1 - 1e-7)), 1))),
                ("nll_probs", x, y)))
    a = rng.standard_normal((m, 1), dtype=np.float32)
    b = rng.standard_normal((m, 1), dtype=np.float32)

    def mse(t):
        nb.mse(a, b, E, E, False, br, E, lp, wp, t)
        return combine(lp) / combine(wp)
    out.append((f"MSE C=1 {m}", m, mse, lambda t: float(np.mean((a - b) ** 2)), ("mse", a, b)))
    for shape in ((max(8, int(1_000_000 * scale)), 10), (max(8, int(100_000 * scale)), 1000)):
        xa = rng.standard_normal(shape, dtype=np.float32)
        ia = np.empty(shape[0], np.int64)
        la = np.empty(shape[0], np.float32)
        out.append((f"argmax rows {shape[0]}x{shape[1]}", xa.size,
                    lambda t, xa=xa, ia=ia: (nb.argmax_rows(xa, ia, t), int(ia.sum()))[1],
                    lambda t, xa=xa: int(np.argmax(xa, axis=1).sum()), ("argmax", xa, None)))
        out.append((f"logsumexp rows {shape[0]}x{shape[1]}", xa.size,
                    lambda t, xa=xa, la=la: (nb.logsumexp_rows(xa, la, t), float(la[0]))[1],
                    lambda t, xa=xa: float(np.log(np.exp(xa - xa.max(1, keepdims=True)).sum(1))[0]
                                           + xa[0].max()),
                    ("lse", xa, None)))
    k = max(8, int(2_000_000 * scale))
    for dt in (np.float64, np.float32):
        ex = rng.random(k).astype(dt)
        ey = rng.random(k).astype(dt)
        eo = np.empty_like(ex)
        for op, f in ((EW_XLOGY, sps.xlogy), (EW_REL_ENTR, sps.rel_entr), (EW_KL_DIV, sps.kl_div)):
            out.append((f"{f.__name__} {np.dtype(dt).name} {k}", k,
                        lambda t, op=op, ex=ex, ey=ey, eo=eo: (
                            nb.elementwise(op, ex, ey, eo, t), float(eo[0]))[1],
                        lambda t, f=f, ex=ex, ey=ey: float(f(ex, ey)[0]),
                        ("scipy:" + f.__name__, ex, ey)))
    return out


def _torch_fast(torch, spec):
    kind, a, b = spec
    if kind.startswith("scipy:") or a is None:
        return None
    F = torch.nn.functional
    ta = torch.from_numpy(a)
    tb = torch.from_numpy(b) if b is not None else None
    if kind == "bce_probs":
        return lambda t: float(F.binary_cross_entropy(ta, tb))
    if kind == "nll_probs":
        return lambda t: float(F.nll_loss(torch.log(ta), tb))
    if kind == "mse":
        return lambda t: float(F.mse_loss(ta, tb))
    if kind == "argmax":
        return lambda t: int(torch.argmax(ta, dim=1).sum())
    if kind == "lse":
        return lambda t: float(torch.logsumexp(ta, dim=1)[0])
    return None


def _time(f, t, repeat):
    f(t)  # warm: JIT compile / cache load, first-touch
    wall, cpu = np.inf, np.inf
    for _ in range(repeat):
        c0 = time.process_time()
        t0 = time.perf_counter()
        f(t)
        wall = min(wall, time.perf_counter() - t0)
        cpu = min(cpu, time.process_time() - c0)
    return wall, cpu


def fast_paths(args):
    try:
        import torch
    except ImportError:
        torch = None
    rng = np.random.default_rng(0)
    print(f"load average before: {os.getloadavg()}")
    print(f"{'case':36s} {'thr':>3s} | {'numba':>8s} {'numpy':>8s} {'torch':>8s}  M el/s (wall)"
          f" | numba ms wall/cpu | numba/numpy numba/torch")
    for name, n_el, f_nb, f_np, spec in _fast_cases(rng, args.scale):
        f_t = _torch_fast(torch, spec) if torch is not None else None
        for t in args.threads:
            if torch is not None:
                torch.set_num_threads(t)
            w_nb, c_nb = _time(f_nb, t, args.repeat)
            w_np, _ = _time(f_np, t, args.repeat)  # NumPy / SciPy: single-threaded anyway
            w_t = _time(f_t, t, args.repeat)[0] if f_t is not None else np.nan
            r = [n_el / w / 1e6 for w in (w_nb, w_np, w_t)]
            print(f"{name:36s} {t:3d} | {r[0]:8.0f} {r[1]:8.0f} {r[2]:8.0f}               "
                  f" | {w_nb * 1e3:7.2f} / {c_nb * 1e3:7.2f}   | {w_np / w_nb:8.2f}x "
                  f"{w_t / w_nb:8.2f}x", flush=True)
    print(f"load average after: {os.getloadavg()}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--scale", type=float, default=1.0, help="shrink the inputs (e.g. 0.1)")
    ap.add_argument("--no-numpy", action="store_true", help="skip the (slow) NumPy baseline")
    ap.add_argument("--duration", type=float, default=0.0,
                    help="cycle through every case for this many seconds, keep the best")
    ap.add_argument("--fast-paths", action="store_true",
                    help="the probability-input / C=1 / argmax / logsumexp / scipy.special "
                         "kernels vs NumPy as written and PyTorch (wall and CPU time)")
    args = ap.parse_args()
    if args.fast_paths:
        fast_paths(args)
        return
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
