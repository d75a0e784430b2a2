"""Throughput: every library on the same data at one thread count, in this process.

``python -m fastloss.bench.timing --threads N --profile quick --out FILE`` is what
``fastloss bench`` runs once per thread count, each in a fresh process (TensorFlow
fixes its thread pool once per process). For every case all libraries share one
array; each library's setup (tensor conversion, ``tf.function``) happens before
timing, its first call (JIT compile, tracing) is timed separately and never counted,
and its result is checked against fastloss's reference before it is timed.

Method (like pytest-benchmark's ``pedantic``): ``iterations`` calls per round so a
round lasts >= 2 ms, ``rounds`` so a library gets about ``budget`` seconds, split
over ``passes`` passes through the libraries in alternating order, so a burst of
load from elsewhere on the machine hits every library alike; a pass stops early
(after at least one round) once it has run ``1.5 * budget / passes`` seconds, so
calls slowed down by other load cannot stretch the run. A call slower than
``cap / min_rounds`` gets fewer rounds (at least 2 timed calls). ``best`` is the
fastest round (per call); ``median`` is kept too.
"""

import argparse
import gc
import json
import math
import sys
import time

import numpy as np

from fastloss.bench import registry as R

PROFILES = {  # target seconds per (case, library), minimum rounds, passes, cap in seconds
    "quick": dict(budget=0.08, min_rounds=3, passes=2, cap=0.6),
    "full": dict(budget=0.5, min_rounds=3, passes=2, cap=10.0),
    "small": dict(budget=0.05, min_rounds=3, passes=1, cap=1.0),
}
# Skipped in the quick profile only (they run with --full), with the reason shown.
QUICK_SKIPS = {
    ("sklearn", "sparse_ce_probs", "1x1e7"):
        "quick profile: log_loss one-hot encodes 1e7 classes (seconds per call); see --full",
}
MIN_ROUND_S = 2e-3
MAX_ROUNDS = 200


def _time_rounds(fn, rounds, iterations, deadline=None):
    """Per-call times of ``rounds`` rounds; stops after ``deadline`` seconds (>= 1 round),
    so a call slowed down by other load on the machine cannot stretch the run."""
    out = []
    perf = time.perf_counter
    gc_was = gc.isenabled()
    gc.disable()
    start = perf()
    try:
        for _ in range(rounds):
            t0 = perf()
            for _ in range(iterations):
                fn()
            t1 = perf()
            out.append((t1 - t0) / iterations)
            if deadline is not None and t1 - start > deadline:
                break
    finally:
        if gc_was:
            gc.enable()
    return out


def _stats(times):
    t = np.sort(np.asarray(times))
    return {"best_s": float(t[0]), "median_s": float(np.median(t)), "mean_s": float(t.mean()),
            "stdev_s": float(t.std(ddof=1)) if t.size > 1 else 0.0,
            "q1_s": float(np.percentile(t, 25)), "q3_s": float(np.percentile(t, 75))}


def run_case(case, libs, threads, budget, min_rounds, passes, cap, skips=None, log=None):
    """Time ``case`` for every library in ``libs``; a list of records.

    A library whose call takes longer than ``cap / min_rounds`` gets fewer rounds
    (never fewer than 2 timed calls): the slowest libraries set the run time.
    """
    data = R.make_data(case.op, case.shape, case.dtype)
    elements = case.elements
    base = {"op": case.op, "label": case.label, "shape": list(case.shape), "dtype": case.dtype,
            "kind": case.kind, "elements": elements, "threads": threads,
            "input_bytes": R.input_bytes(data)}
    expected = {}
    records, ready = [], []
    # fastloss's NumPy backend is the reference: set it up first and reuse its result
    libs = sorted(libs, key=lambda lib: lib != "fastloss-numpy")
    for lib in libs:
        rec = dict(base, library=lib)
        records.append(rec)
        skip = _skip_reason(case, lib, skips)
        if skip:
            rec["skipped"] = skip
            continue
        got = _prepare(case, lib, data, threads, expected, rec)
        if got is None:
            continue
        fn, t1 = got
        iterations = max(1, math.ceil(MIN_ROUND_S / t1))
        rounds = min(MAX_ROUNDS, max(min_rounds, math.ceil(budget / (iterations * t1))))
        first_sample = []
        if iterations == 1:  # a slow call: the calibration call is a round too
            first_sample = [t1]
            rounds = max(1, min(rounds - 1, math.floor(cap / t1)))
        rec["rounds"], rec["iterations"] = rounds, iterations
        ready.append((rec, fn, first_sample))
    _time_passes(ready, passes, budget, elements)
    order = {lib: i for i, lib in enumerate(R.LIBRARIES)}
    records.sort(key=lambda r: order.get(r["library"], len(order)))
    if log:
        done = [r for r in records if "best_s" in r]
        best = min(done, key=lambda r: r["best_s"])["library"] if done else "-"
        log(f"  {case.id:34s} t{threads}  fastest: {best}")
    return records


def _skip_reason(case, lib, skips):
    if lib not in R.COMPARISONS[case.op]:
        return f"{lib} has no {case.op}"
    skip = (skips or {}).get((lib, case.op, case.label))
    if skip:
        return skip
    ok, why = R.library_available(lib)
    return None if ok else f"not available: {why}"


def _prepare(case, lib, data, threads, expected, rec):
    """Set up ``lib``'s callable, check its first result (never timed), time one more
    call; ``(callable, seconds)``, or None with the reason in ``rec``."""
    try:
        fn = R.make(case.op, lib, data, threads)
        t0 = time.perf_counter()
        result = fn()
        rec["first_call_s"] = time.perf_counter() - t0
        key = tuple(sorted(R.COMPARISONS[case.op][lib].same_as.items()))
        if lib == "fastloss-numpy" and not key:
            expected[key] = R.to_numpy(result)
        if key not in expected:
            expected[key] = R.expected(case.op, data, dict(key))
        good, score = R.check(case.op, lib, data, result, exp=expected[key])
        rec["check"] = {"ok": bool(good), "score": score,
                        "value": float(np.ravel(R.to_numpy(result))[0]),
                        "expected": float(np.ravel(expected[key])[0])}
        del result
        t0 = time.perf_counter()
        fn()
        t1 = time.perf_counter() - t0
    except (R.Unsupported, R.ThreadMismatch) as exc:
        rec["skipped"] = str(exc)
        return None
    except Exception as exc:  # a library failing on a case is a result, not a crash
        rec["error"] = f"{type(exc).__name__}: {exc}"[:500]
        return None
    return fn, max(t1, 1e-9)


def _time_passes(ready, passes, budget, elements):
    """Time the libraries in alternating passes; their statistics go into the records."""
    times = {id(rec): list(first) for rec, _, first in ready}
    ready = [(rec, fn) for rec, fn, _ in ready]
    for p in range(passes):
        order = ready if p % 2 == 0 else ready[::-1]
        for rec, fn in order:
            n = math.ceil(rec["rounds"] / passes)
            try:
                times[id(rec)] += _time_rounds(fn, n, rec["iterations"],
                                               deadline=1.5 * budget / passes)
            except Exception as exc:
                rec["error"] = f"{type(exc).__name__}: {exc}"[:500]
    for rec, _ in ready:
        t = times[id(rec)]
        if not t or "error" in rec:
            continue
        rec["rounds"] = len(t)
        rec.update(_stats(t))
        rec["elements_per_s"] = elements / rec["best_s"]
        rec["elements_per_s_median"] = elements / rec["median_s"]


def environment(threads):
    """What the measurements ran on (threads of every library, BLAS, versions)."""
    from fastloss.bench.report import simd_variant

    env = {"threads": threads, "simd_variant": simd_variant()}
    try:
        from threadpoolctl import threadpool_info

        env["threadpools"] = threadpool_info()
    except Exception as exc:
        env["threadpools"] = f"threadpoolctl unavailable: {exc}"
    if "torch" in sys.modules:
        env["torch_threads"] = sys.modules["torch"].get_num_threads()
    if R._TF_THREADS is not None:
        env["tensorflow_intra_op_threads"] = R._TF_THREADS
    return env


def run(profile="quick", threads=1, ops=None, libs=None, case_ids=None, log=None):
    settings = dict(PROFILES[profile], skips=QUICK_SKIPS if profile == "quick" else None)
    libs = list(libs or R.LIBRARIES)
    if "tensorflow" in libs and R.library_available("tensorflow")[0]:
        R.configure_tensorflow(threads)  # before TensorFlow's first op
    selected = R.cases(profile, ops)
    if case_ids:
        selected = [c for c in selected if c.id in case_ids or c.label in case_ids]
    records = []
    t0 = time.perf_counter()
    for case in selected:  # (no gc.collect() here: with TensorFlow loaded it takes ~1 s)
        records += run_case(case, libs, threads, log=log, **settings)
    return {"threads": threads, "profile": profile, "seconds": time.perf_counter() - t0,
            "settings": dict(PROFILES[profile], min_round_s=MIN_ROUND_S, max_rounds=MAX_ROUNDS,
                             deadline_per_pass_s=1.5 * PROFILES[profile]["budget"]
                             / PROFILES[profile]["passes"]),
            "environment": environment(threads), "records": records}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--profile", default="quick", choices=sorted(PROFILES))
    ap.add_argument("--ops", nargs="*")
    ap.add_argument("--libs", nargs="*")
    ap.add_argument("--cases", nargs="*", help="case ids (op|label|dtype) or shape labels")
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    res = run(a.profile, a.threads, a.ops, a.libs, a.cases, log=log)
    with open(a.out, "w") as f:
        json.dump(res, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
