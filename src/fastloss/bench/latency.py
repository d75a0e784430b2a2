"""First-call latency: import + first call of every library, each in a fresh process.

A child process imports only NumPy and the standard library, then times
``import <library>`` (for fastloss: ``import fastloss`` and loading the backend's
kernels), then, after building a 32 x 10 input, the first call (setup such as tensor
conversion, plus any JIT compile or tracing) and a second call. The parent also
records the child's whole wall time (interpreter start to exit).

Numba is measured twice: with an empty cache directory (``NUMBA_CACHE_DIR``: every
kernel compiles) and again with the cache that run left (kernels load from disk).

``python -m fastloss.bench.latency --out FILE [--repeat N]``.

Per-call cost (``--per-call``, issue #16): in *one* process, for each thread count, the
time of one call of fastloss and of PyTorch side by side on the same NumPy data (PyTorch on
tensors made once, so its own conversion is not counted: the comparison is the harsher
one), best of several repeats, fastloss and PyTorch repeats interleaved so that both see
the same machine load. The rows are the issue's: small batches where a call's fixed cost
is everything, the drop-ins' equivalent calls, and large sizes where it is nothing.
``python -m fastloss.bench.latency --per-call [--threads 1,2] [--tiny] [--out FILE]``.
"""

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time

_IMPORTS = {
    "numpy": [],
    "scipy": ["scipy.special"],
    "sklearn": ["sklearn.metrics"],
    "torch": ["torch"],
    "tensorflow": ["tensorflow"],
}


def _child(lib, op, threads):
    t_start = time.perf_counter()
    import importlib

    import numpy as np  # noqa: F401  (the baseline every library needs)

    t0 = time.perf_counter()
    if lib.startswith("fastloss-"):
        import fastloss
        from fastloss._dispatch import resolve_backend

        resolve_backend(lib.split("-", 1)[1])
        _ = fastloss
    else:
        if lib == "tensorflow":
            os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        for m in _IMPORTS[lib]:
            importlib.import_module(m)
    t1 = time.perf_counter()
    from fastloss.bench import registry as R  # untimed: fastloss itself is ~30 ms

    if lib == "tensorflow":
        R.configure_tensorflow(threads)
    shape = (32, 10) if op in R.ROW_OPS else (320,)
    data = R.make_data(op, shape, "float32")
    t2 = time.perf_counter()
    fn = R.make(op, lib, data, threads)
    R.to_numpy(fn())
    t3 = time.perf_counter()
    R.to_numpy(fn())
    t4 = time.perf_counter()
    return {"startup_to_numpy_s": t0 - t_start, "import_s": t1 - t0, "first_call_s": t3 - t2,
            "second_call_s": t4 - t3, "import_plus_first_s": (t1 - t0) + (t3 - t2)}


def _env(extra=None):
    env = dict(os.environ)
    env.update(extra or {})
    return env


def run_one(lib, op="sparse_ce", threads=1, env=None, timeout=600):
    """Run one fresh child; a record."""
    cmd = [sys.executable, "-m", "fastloss.bench.latency", "--child", lib, "--op", op,
           "--threads", str(threads)]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=_env(env), timeout=timeout)
    wall = time.perf_counter() - t0
    rec = {"library": lib, "op": op, "threads": threads, "process_wall_s": wall}
    if p.returncode != 0:
        rec["error"] = (p.stderr.strip().splitlines() or ["failed"])[-1][:500]
        return rec
    rec.update(json.loads(p.stdout.strip().splitlines()[-1]))
    return rec


def run(libs=None, repeat=1, threads=1, env=None, log=None):
    """Latency records, the best of ``repeat`` fresh processes per library."""
    from fastloss.bench import registry as R

    records = []
    for lib in libs or R.LIBRARIES:
        ok, why = R.library_available(lib)
        op = "sparse_ce" if lib in R.COMPARISONS["sparse_ce"] else "sparse_ce_probs"
        if not ok:
            records.append({"library": lib, "op": op, "skipped": f"not available: {why}"})
            continue
        variants, cache = [(lib, {})], None
        if lib == "fastloss-numba":
            cache = tempfile.mkdtemp(prefix="fastloss-numba-cache-")
            variants = [("fastloss-numba (cold cache)", {"NUMBA_CACHE_DIR": cache}),
                        ("fastloss-numba (warm cache)", {"NUMBA_CACHE_DIR": cache})]
        for name, extra in variants:
            runs = []
            for i in range(repeat):
                if "cold" in name and i:  # a cold cache is cold once: start a new one
                    extra = {"NUMBA_CACHE_DIR": tempfile.mkdtemp(prefix="fastloss-numba-cache-")}
                runs.append(run_one(lib, op, threads, env={**(env or {}), **extra}))
            ok_runs = [r for r in runs if "error" not in r]
            best = min(ok_runs, key=lambda r: r["import_plus_first_s"]) if ok_runs else runs[0]
            rec = dict(best, variant=name, repeats=len(runs),
                       all_import_plus_first_s=[r.get("import_plus_first_s") for r in runs])
            records.append(rec)
            if log:
                log(f"  latency {name}: " + (f"{rec['import_plus_first_s']:.2f} s" if
                                            "error" not in rec else rec["error"]))
        if cache:
            shutil.rmtree(cache, ignore_errors=True)
    return {"threads": threads, "repeat": repeat, "records": records}


# --------------------------------------------------------------------------- per-call cost

PER_CALL_TARGET_S = 0.02  # each timed repeat runs about this long


def _per_call_cases(tiny):
    """[(case, elements, make(t) -> (fastloss call, torch call))] of the issue's rows;
    ``tiny``: the same rows on small sizes (tests)."""
    import numpy as np

    def sizes(*pairs):
        return [p[1] if tiny else p[0] for p in pairs]

    big_n, = sizes((100_000, 64))
    mid_n, = sizes((256, 16))
    bce_ns = sizes((10_000, 100), (100_000, 200), (1_000_000, 300))
    rng = np.random.default_rng(0)
    cases = []

    def add(name, elements, make):
        cases.append((name, elements, make))

    def sparse(n, C, probs=False):
        x = rng.standard_normal((n, C)).astype(np.float32)
        y = rng.integers(0, C, n)
        if probs:
            p = np.exp(x - x.max(1, keepdims=True))
            x = (p / p.sum(1, keepdims=True)).astype(np.float32)
        return x, y

    def torch_nll_probs(torch, F, p, y, eps=1e-7):
        pt, yt = torch.from_numpy(p), torch.from_numpy(y)
        return lambda: F.nll_loss(torch.log(torch.clamp(pt, eps, 1 - eps)), yt)

    def sparse_ce(n, C):
        x, y = sparse(n, C)

        def make(t, fl, torch, F):
            xt, yt = torch.from_numpy(x), torch.from_numpy(y)
            return (lambda: fl.sparse_categorical_cross_entropy(y, x, from_logits=True,
                                                                n_threads=t),
                    lambda: F.cross_entropy(xt, yt))
        return make

    add("sparse CE 32 x 10", 320, sparse_ce(32, 10))

    def sparse_probs(t, fl, torch, F):
        p, y = sparse(32, 10, probs=True)
        return (lambda: fl.sparse_categorical_cross_entropy(y, p, n_threads=t),
                torch_nll_probs(torch, F, p, y))
    add("sparse CE on probabilities 32 x 10", 320, sparse_probs)

    def bce(n):
        x = rng.standard_normal(n).astype(np.float32)
        z = (rng.random(n) < 0.5).astype(np.float32)

        def make(t, fl, torch, F):
            xt, zt = torch.from_numpy(x), torch.from_numpy(z)
            return (lambda: fl.binary_cross_entropy(z, x, from_logits=True, n_threads=t),
                    lambda: F.binary_cross_entropy_with_logits(xt, zt))
        return make

    add("BCE logits 32", 32, bce(32))

    def lse(t, fl, torch, F):
        x, _ = sparse(32, 10)
        xt = torch.from_numpy(x)
        return (lambda: fl.logsumexp(x, axis=1, n_threads=t), lambda: torch.logsumexp(xt, 1))
    add("logsumexp 32 x 10", 320, lse)

    def cat(t, fl, torch, F):
        x, y = sparse(32, 10)
        tt = np.eye(10, dtype=np.float32)[y]
        xt, ttt = torch.from_numpy(x), torch.from_numpy(tt)
        return (lambda: fl.categorical_cross_entropy(tt, x, from_logits=True, n_threads=t),
                lambda: F.cross_entropy(xt, ttt))
    add("categorical CE 32 x 10", 320, cat)

    def dropin_torch(t, fl, torch, F):
        import fastloss.torch as FT

        x, y = sparse(32, 10)
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        return lambda: FT.cross_entropy(x, y), lambda: F.cross_entropy(xt, yt)
    add("fastloss.torch.cross_entropy 32 x 10", 320, dropin_torch)

    def dropin_scipy(t, fl, torch, F):
        import fastloss.scipy as FS

        x, _ = sparse(32, 10)
        xt = torch.from_numpy(x)
        return lambda: FS.logsumexp(x, axis=1), lambda: torch.logsumexp(xt, 1)
    add("fastloss.scipy.logsumexp 32 x 10", 320, dropin_scipy)

    def dropin_sklearn(t, fl, torch, F):
        import fastloss.sklearn as FK

        p, y = sparse(32, 10, probs=True)
        labels = np.arange(10)
        return (lambda: FK.log_loss(y, p, labels=labels),
                torch_nll_probs(torch, F, p, y, float(np.finfo(np.float32).eps)))
    add("fastloss.sklearn.log_loss 32 x 10", 320, dropin_sklearn)

    def keras_module(legacy):
        if legacy:
            import fastloss.keras.legacy as FK
        else:
            import fastloss.keras as FK
        return FK

    # Keras loss objects built and called each time (as in a training step's loss function)
    def keras_sparse(legacy):
        def make(t, fl, torch, F):
            FK = keras_module(legacy)
            p, y = sparse(32, 10, probs=True)
            return (lambda: FK.SparseCategoricalCrossentropy()(y, p),
                    torch_nll_probs(torch, F, p, y))
        return make

    def keras_categorical(legacy):
        def make(t, fl, torch, F):  # probabilities: Keras renormalises, then clips
            FK = keras_module(legacy)
            p, y = sparse(32, 10, probs=True)
            tt = np.eye(10, dtype=np.float32)[y]
            pt, ttt = torch.from_numpy(p), torch.from_numpy(tt)

            def torch_call(eps=1e-7):
                q = torch.clamp(pt / pt.sum(1, keepdim=True), eps, 1 - eps)
                return -(ttt * torch.log(q)).sum(1).mean()
            return lambda: FK.CategoricalCrossentropy()(tt, p), torch_call
        return make

    def keras_bce(legacy):
        def make(t, fl, torch, F):
            FK = keras_module(legacy)
            x = rng.standard_normal((32, 1)).astype(np.float32)
            z = (rng.random((32, 1)) < 0.5).astype(np.float32)
            xt, zt = torch.from_numpy(x), torch.from_numpy(z)
            return (lambda: FK.BinaryCrossentropy(from_logits=True)(z, x),
                    lambda: F.binary_cross_entropy_with_logits(xt, zt))
        return make

    for legacy, mod in ((False, "keras"), (True, "keras.legacy")):
        add(f"{mod} SparseCategoricalCrossentropy()(...) 32 x 10", 320, keras_sparse(legacy))
        add(f"{mod} CategoricalCrossentropy()(...) 32 x 10", 320, keras_categorical(legacy))
        add(f"{mod} BinaryCrossentropy(from_logits=True)(...) 32 x 1", 32, keras_bce(legacy))

    add(f"sparse CE {mid_n} x 1000", mid_n * 1000, sparse_ce(mid_n, 1000))
    for n in bce_ns:
        add(f"BCE logits {n:.0e}".replace("e+0", "e"), n, bce(n))
    add(f"sparse CE {big_n:.0e} x 1000".replace("e+0", "e"), big_n * 1000,
        sparse_ce(big_n, 1000))
    return cases


def _best_per_call(calls, repeat):
    """Best-of-``repeat`` seconds per call of each callable, repeats interleaved."""
    numbers = []
    for f in calls:
        f()  # warm up (first-call setup is the latency part's business)
        t0 = time.perf_counter()
        k = 0
        while time.perf_counter() - t0 < PER_CALL_TARGET_S / 4:
            f()
            k += 1
        numbers.append(max(1, int(k * 4 * PER_CALL_TARGET_S / max(
            time.perf_counter() - t0, 1e-9) / 4)))
    best = [math.inf] * len(calls)
    for _ in range(repeat):
        for i, f in enumerate(calls):
            n = numbers[i]
            t0 = time.perf_counter()
            for _ in range(n):
                f()
            best[i] = min(best[i], (time.perf_counter() - t0) / n)
    return best


def per_call(threads=(1, 2), repeat=7, tiny=False, log=None):
    """The per-call table's records: fastloss and PyTorch side by side in this process."""
    import warnings

    import fastloss as fl
    from fastloss._info import cpu_model
    from fastloss.bench.report import simd_variant

    try:
        import torch
        import torch.nn.functional as F
    except ImportError as exc:  # the comparison needs PyTorch: say so in the report
        return {"kind": "per_call", "threads": list(threads), "repeat": repeat, "tiny": tiny,
                "cpu": cpu_model(), "simd": simd_variant(), "torch": None,
                "fastloss": fl.__version__, "loadavg_1min": [os.getloadavg()[0]],
                "records": [], "skipped": f"PyTorch is not available ({exc})"}

    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    records = []
    load = [os.getloadavg()[0]]
    env_threads = os.environ.get("FASTLOSS_NUM_THREADS")
    for t in threads:
        torch.set_num_threads(t)
        os.environ["FASTLOSS_NUM_THREADS"] = str(t)  # the drop-ins' n_threads=None
        fl.refresh_config()
        for name, elements, make in _per_call_cases(tiny):
            rec = {"case": name, "threads": t, "elements": elements}
            try:
                with warnings.catch_warnings():  # setup only: the timed calls run as
                    warnings.simplefilter("ignore")  # users run them
                    f_fl, f_torch = make(t, fl, torch, F)
                s_fl, s_torch = _best_per_call([f_fl, f_torch], repeat)
                rec.update(fastloss_s=s_fl, torch_s=s_torch, speedup=s_torch / s_fl)
            except Exception as exc:  # a missing drop-in dependency: say so in the table
                rec["error"] = f"{type(exc).__name__}: {exc}"[:300]
            records.append(rec)
            if log:
                log(f"  per-call {name} at {t} thread(s): " + (
                    f"fastloss {rec['fastloss_s'] * 1e6:.2f} us, PyTorch "
                    f"{rec['torch_s'] * 1e6:.2f} us" if "error" not in rec else rec["error"]))
        load.append(os.getloadavg()[0])
    if env_threads is None:
        os.environ.pop("FASTLOSS_NUM_THREADS", None)
    else:
        os.environ["FASTLOSS_NUM_THREADS"] = env_threads
    fl.refresh_config()
    return {"kind": "per_call", "threads": list(threads), "repeat": repeat, "tiny": tiny,
            "cpu": cpu_model(), "simd": simd_variant(), "torch": torch.__version__,
            "fastloss": fl.__version__, "loadavg_1min": load, "records": records}


def per_call_table(res):
    """The Markdown table of :func:`per_call` (per-call microseconds, side by side)."""
    simd = res.get("simd") or {}
    if res.get("skipped"):
        return f"Per-call time: not measured: {res['skipped']}.\n"
    lines = [f"Per-call time, one process, fastloss vs PyTorch {res['torch']} at the same "
             f"thread count (best of {res['repeat']}); {res['cpu']}, Cython variant "
             f"{simd.get('variant')}; 1-min load average "
             + " / ".join(f"{v:.1f}" for v in res["loadavg_1min"]) + ".", "",
             "| case | threads | fastloss | PyTorch | PyTorch / fastloss |",
             "|---|---|---|---|---|"]
    for r in res["records"]:
        if "error" in r:
            lines.append(f"| {r['case']} | {r['threads']} | error: {r['error']} | | |")
            continue
        lines.append(f"| {r['case']} | {r['threads']} | {_us(r['fastloss_s'])} | "
                     f"{_us(r['torch_s'])} | {r['speedup']:.2f}x |")
    return "\n".join(lines) + "\n"


def per_call_wide_table(res):
    """:func:`per_call_table` with one line per case and the thread counts side by side
    (the README's form): per-call time of fastloss / PyTorch and their ratio."""
    threads = res["threads"]
    cells, cases = {}, []
    for r in res["records"]:
        if r["case"] not in cases:
            cases.append(r["case"])
        cells[(r["case"], r["threads"])] = r
    head = ["case"] + [f"{t} thread{'s' if t > 1 else ''}: fastloss / PyTorch" for t in threads]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in cases:
        row = [c]
        for t in threads:
            r = cells.get((c, t), {})
            row.append("error" if "error" in r or not r else
                       f"{_us(r['fastloss_s'])} / {_us(r['torch_s'])} ({r['speedup']:.2f}x)")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def _us(s):
    return f"{s * 1e6:.2f} us" if s < 1e-3 else f"{s * 1e3:.3f} ms"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--child")
    ap.add_argument("--op", default="sparse_ce")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--libs", nargs="*")
    ap.add_argument("--out", help="write the JSON there (default: print the Markdown table)")
    ap.add_argument("--per-call", action="store_true",
                    help="per-call time of fastloss vs PyTorch in one process (issue #16)")
    ap.add_argument("--per-call-threads", default="1,2",
                    help="comma-separated thread counts of --per-call")
    ap.add_argument("--tiny", action="store_true", help="--per-call on small sizes (tests)")
    a = ap.parse_args(argv)
    if a.per_call:
        res = per_call([int(t) for t in a.per_call_threads.split(",") if t],
                       repeat=max(1, a.repeat if a.repeat > 1 else 7), tiny=a.tiny,
                       log=lambda m: print(m, file=sys.stderr, flush=True))
        if a.out:
            with open(a.out, "w") as f:
                json.dump(res, f)
        print(per_call_table(res))
        print(per_call_wide_table(res))
        return 0
    if a.child:
        print(json.dumps(_child(a.child, a.op, a.threads)))
        return 0
    res = run(a.libs, a.repeat, a.threads, log=lambda m: print(m, file=sys.stderr, flush=True))
    if a.out:
        with open(a.out, "w") as f:
            json.dump(res, f)
    else:  # run alone: the Markdown table of the report
        from fastloss.bench.tables import latency_section

        print(latency_section({"latency": res}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
