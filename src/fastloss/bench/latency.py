"""First-call latency: import + first call of every library, each in a fresh process.

A child process imports only NumPy and the standard library, then times
``import <library>`` (for fastloss: ``import fastloss`` and loading the backend's
kernels), then, after building a 32 x 10 input, the first call (setup such as tensor
conversion, plus any JIT compile or tracing) and a second call. The parent also
records the child's whole wall time (interpreter start to exit).

Numba is measured twice: with an empty cache directory (``NUMBA_CACHE_DIR``: every
kernel compiles) and again with the cache that run left (kernels load from disk).

``python -m fastloss.bench.latency --out FILE [--repeat N]``.
"""

import argparse
import json
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


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--child")
    ap.add_argument("--op", default="sparse_ce")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--libs", nargs="*")
    ap.add_argument("--out", help="write the JSON there (default: print the Markdown table)")
    a = ap.parse_args(argv)
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
