"""Throughput of every library on every case (the ``COMPARISONS`` registry)."""

import functools
import math
import os
import time

import pytest

from fastloss.bench import registry as C

REQUIRE = os.environ.get("FASTLOSS_REQUIRE_FRAMEWORKS") == "1"

MIN_ROUND_S = 2e-3  # iterations per round: rounds of >= 2 ms
TARGET_S = 0.5  # rounds: about this long per benchmark, at least 3


def skip_unavailable(lib):
    """Skip (or, for PyTorch/TensorFlow under FASTLOSS_REQUIRE_FRAMEWORKS=1, fail)."""
    ok, why = C.library_available(lib)
    if ok:
        return
    msg = f"{lib} not available: {why}"
    if REQUIRE and lib in ("torch", "tensorflow"):
        pytest.fail(msg + " (FASTLOSS_REQUIRE_FRAMEWORKS=1)")
    pytest.skip(msg)


@functools.lru_cache(maxsize=1)
def case_data(case):
    """The inputs of a case (kept while consecutive benchmarks share it)."""
    return C.make_data(case.op, case.shape, case.dtype)


@functools.lru_cache(maxsize=4)
def case_expected(case, same_as):
    return C.expected(case.op, case_data(case), dict(same_as))


def bench_params():
    out = []
    for case in C.all_cases():
        for lib in C.libraries(case.op):
            for t in C.thread_counts():
                out.append(pytest.param(
                    case, lib, t, id=f"{case.op}-{case.label}-{case.dtype}-{lib}-t{t}",
                    marks=[pytest.mark.slow] if case.slow else []))
    return out


def calibrate(fn):
    t0 = time.perf_counter()
    fn()
    t = max(time.perf_counter() - t0, 1e-9)
    iterations = max(1, math.ceil(MIN_ROUND_S / t))
    rounds = min(100, max(3, math.ceil(TARGET_S / (iterations * t))))
    return rounds, iterations


@pytest.mark.parametrize("case, lib, threads", bench_params())
def test_throughput(benchmark, case, lib, threads):
    skip_unavailable(lib)
    data = case_data(case)
    try:
        fn = C.make(case.op, lib, data, threads)  # setup: conversions, threads, tf.function
    except C.ThreadMismatch as exc:
        pytest.skip(str(exc))
    result = fn()  # the first call compiles / traces: never timed
    same_as = tuple(sorted(C.COMPARISONS[case.op][lib].same_as.items()))
    ok, score = C.check(case.op, lib, data, result, exp=case_expected(case, same_as))
    assert ok, f"{lib} differs from the reference on {case.id}: {score:.3g} x tolerance"
    benchmark.group = f"{case.op}|{case.label}|{case.dtype}|t{threads}"
    benchmark.extra_info.update(library=lib, elements=case.elements, threads=threads,
                                dtype=case.dtype, shape=case.label)
    rounds, iterations = (1, 1) if benchmark.disabled else calibrate(fn)
    benchmark.pedantic(fn, warmup_rounds=1, rounds=rounds, iterations=iterations)
