"""Throughput of the Cython kernels next to the memory bandwidth of this machine (issue #14).

Plain script (not collected by pytest)::

    FASTLOSS_CYTHON_VARIANT=avx2 python benchmarks/bench_portability.py
    FASTLOSS_CYTHON_VARIANT=avx512 python benchmarks/bench_portability.py --repeat 7
    # before / after in one run: an older build of one variant as engine "cy_old"; on a
    # machine that other jobs keep busy, --cpu-time (CPU seconds / threads)
    FASTLOSS_CYTHON_VARIANT=avx2 python benchmarks/bench_portability.py --cpu-time \
        --old /tmp/old/_core.cpython-311-x86_64-linux-gnu.so

Prints the CPU model, the Cython variant in use and the load, then for 1 and 2 threads:
the memory read bandwidth measured here (a large array reduced by N threads that release
the GIL), and for each case fastloss cython (the kernel: block partials and the exact
combine, as the public API runs it), fastloss numba (the public API, ``backend="numba"``)
and PyTorch (``torch.set_num_threads(n)``, ``reduction="mean"``), as G elements/s of the
best of ``--repeat`` runs, the ratio to PyTorch and the fraction of the memory bandwidth
the bytes read at that rate would use. All engines run in this process on the same
float32 data, one after the other inside every repeat, so a busy neighbour slows them
alike. ``--old SO`` adds an older build of the extension (a ``_core*.so`` compiled from an
earlier commit's sources) as engine ``cy_old``, run the same way as ``cython``.
"""

import argparse
import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

# the bare kernel calls (block partials + exact combine) of the Cython quick benchmark
from bench_cython_quick import _load_old, _with_module, cy_bce, cy_sparse

import fastloss
from fastloss._info import cpu_model
from fastloss.kernels import cython as cy


def load():
    try:
        return "load average %.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        return "load unknown"


def bandwidth(buf, nt, repeat, clock):
    """Best-of-repeat read bandwidth (bytes/s): buf (uint64) xor-reduced in nt slices, one
    thread each (NumPy releases the GIL in the reduction; an integer reduction is SIMD and
    far cheaper than the memory traffic)."""
    parts = np.array_split(buf, nt)
    best = float("inf")
    with ThreadPoolExecutor(nt) as ex:
        for _ in range(repeat):
            t0 = clock()
            list(ex.map(np.bitwise_xor.reduce, parts))
            best = min(best, clock() - t0)
    return buf.nbytes / best


def cy_lse(x, out, nt, mod=cy):
    mod.logsumexp_rows(x, out, nt)
    return out


def cases(rng, scale, torch, old=None):
    """[(name, elements, bytes read, {engine: fn(n_threads)})]; with ``old`` (a module) the
    engines also hold "cy_old": the cython engine run with that module."""
    F = torch.nn.functional
    out = []
    for n, c in [(100_000, 1000), (1_000_000, 10)]:
        n = max(16, int(n * scale))
        x = rng.standard_normal((n, c), dtype=np.float32) * 3
        y = rng.integers(0, c, n)
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)
        out.append((f"sparse CE {n}x{c}", x.size, x.nbytes + y.nbytes, {
            "cython": lambda t, x=x, y=y: cy_sparse(x, y, t),
            "numba": lambda t, x=x, y=y: float(fastloss.sparse_categorical_cross_entropy(
                y, x, from_logits=True, backend="numba", n_threads=t)),
            "torch": lambda t, tx=tx, ty=ty: float(F.cross_entropy(tx, ty))}))
        if c == 1000:
            o = np.empty(n, np.float32)
            out.append((f"logsumexp rows {n}x{c}", x.size, x.nbytes, {
                "cython": lambda t, x=x, o=o: cy_lse(x, o, t),
                "numba": lambda t, x=x: fastloss.logsumexp(x, axis=1, backend="numba",
                                                           n_threads=t),
                "torch": lambda t, tx=tx: torch.logsumexp(tx, dim=1),
                "cy_old": lambda t, x=x, o=o: cy_lse(x, o, t, old)}))
    m = max(16, int(20_000_000 * scale))
    x = rng.standard_normal(m, dtype=np.float32) * 3
    z = (rng.random(m) < 0.5).astype(np.float32)
    tx, tz = torch.from_numpy(x), torch.from_numpy(z)
    out.append((f"BCE logits {m}", m, x.nbytes + z.nbytes, {
        "cython": lambda t: cy_bce(x, z, t),
        "numba": lambda t: float(fastloss.binary_cross_entropy(z, x, from_logits=True,
                                                               backend="numba", n_threads=t)),
        "torch": lambda t: float(F.binary_cross_entropy_with_logits(tx, tz))}))
    for _, _, _, fns in out:
        if old is None:
            fns.pop("cy_old", None)
        elif "cy_old" not in fns:  # the kernels reached through bench_cython_quick's cy
            fns["cy_old"] = lambda t, f=fns["cython"]: _with_module(old, f, t)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--scale", type=float, default=1.0, help="shrink the inputs (e.g. 0.1)")
    ap.add_argument("--old", default=None, metavar="SO",
                    help="also time an older build of the extension (path of a _core*.so "
                         "built from an earlier commit) as engine cy_old")
    ap.add_argument("--cpu-time", action="store_true",
                    help="time by the process's CPU time divided by the thread count instead of "
                         "the wall clock: the rate the threads reach while they run, for a "
                         "machine that other jobs keep busy (includes OpenMP spin-waiting)")
    ap.add_argument("--bw-gib", type=float, default=2.0,
                    help="size of the bandwidth array (well above the last-level cache)")
    args = ap.parse_args()

    import torch

    info = cy.BUILD_INFO
    print(f"CPU: {cpu_model()}")
    print(f"fastloss cython: variant {info.get('variant')} ({info.get('simd')}, FMA "
          f"{info.get('fma')}), flags {info.get('compile_flags')!r}")
    old = _load_old(args.old) if args.old else None
    if old is not None:
        oi = old.build_info()
        print(f"cy_old: {args.old} ({oi.get('simd')}, flags {oi.get('compile_flags')!r})")
    print(f"torch {torch.__version__}; {load()} at start")
    rng = np.random.default_rng(0)
    buf = np.ones(int(args.bw_gib * 2**30) // 8, np.uint64)
    all_cases = cases(rng, args.scale, torch, old)
    engines = ("cython",) + (("cy_old",) if old is not None else ()) + ("numba", "torch")
    for name, _, _, fns in all_cases:  # warm up (Numba compiles on first use)
        for e in engines:
            fns[e](1)
    for nt in args.threads:
        torch.set_num_threads(nt)
        clock = ((lambda nt=nt: time.process_time() / nt) if args.cpu_time
                 else time.perf_counter)
        bw = bandwidth(buf, nt, args.repeat, clock)
        print(f"\n{nt} thread(s), {'CPU time / threads' if args.cpu_time else 'wall clock'}: "
              f"memory read bandwidth {bw / 1e9:.1f} GB/s ({bw / 4e9:.2f} G float32/s); {load()}")
        print(f"{'case':28s} {'engine':7s} {'G el/s':>7s} {'x torch':>8s} {'of mem bw':>9s}")
        for name, elems, nbytes, fns in all_cases:
            best = {e: float("inf") for e in engines}
            for _ in range(args.repeat):
                for e in engines:
                    t0 = clock()
                    fns[e](nt)
                    best[e] = min(best[e], clock() - t0)
            for e in engines:
                rate = elems / best[e]
                ratio = best["torch"] / best[e]
                frac = nbytes / best[e] / bw
                print(f"{name:28s} {e:7s} {rate / 1e9:7.2f} {ratio:8.2f} {frac:9.0%}")
    print(f"\n{load()} at end")


if __name__ == "__main__":
    main()
