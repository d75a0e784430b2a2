"""The benchmark registry (``fastloss.bench.registry``):
every library's callable computes the same thing as fastloss's reference, quickly,
so the benchmarks never time a wrong answer."""

import numpy as np
import pytest

from fastloss.bench import registry as R

FRAMEWORK_FIXTURE = {"torch": "torch", "tensorflow": "tf"}


def _need(lib, request):
    if lib in FRAMEWORK_FIXTURE:  # skip, or fail under FASTLOSS_REQUIRE_FRAMEWORKS=1
        request.getfixturevalue(FRAMEWORK_FIXTURE[lib])
    ok, why = R.library_available(lib)
    if not ok:
        pytest.skip(f"{lib} not available: {why}")


def test_registry_covers_the_issue():
    for op in R.OPS:
        libs = R.libraries(op)
        for lib in R.FASTLOSS_LIBS + ("numpy", "torch", "tensorflow"):
            assert lib in libs, (op, lib)
    assert "scipy" in R.COMPARISONS["logsumexp"]
    assert "sklearn" in R.COMPARISONS["sparse_ce_probs"]
    assert "sklearn" in R.COMPARISONS["bce_probs"]
    labels = {c.label for c in R.all_cases()}
    for need in ("32x10", "256x1000", "1e6x10", "1e5x1000", "2048x50257", "512x28996", "1x1e7",
                 "1e4", "1e8"):
        assert need in labels
    assert {c.dtype for c in R.all_cases()} == {"float32", "float64"}
    # only small cases run in the default (smoke) test run
    assert all(c.elements <= 300_000 for c in R.cases("small"))
    assert all(c.slow for c in R.all_cases() if c.elements > 300_000)
    quick = R.cases("quick")
    assert {c.kind for c in quick} >= {"call overhead", "tall-skinny", "vocabulary",
                                       "one long row", "elements"}
    assert set(quick) < set(R.cases("full"))


def test_makers_describe_themselves():
    for op, libs in R.COMPARISONS.items():
        for lib, make in libs.items():
            assert isinstance(make.same_as, dict) and make.op == op and make.library == lib


PARAMS = [(op, lib, dt) for op in R.OPS for lib in R.libraries(op) for dt in R.DTYPES]


@pytest.mark.parametrize("op, lib, dtype", PARAMS, ids=["-".join(p) for p in PARAMS])
def test_callable_agrees_with_reference(op, lib, dtype, request):
    _need(lib, request)
    data = R.make_data(op, (48, 9) if op in R.ROW_OPS else (400,), dtype, seed=3)
    nt = R.ALL_CORES if lib == "tensorflow" else 1
    for reduction in ("mean", "none"):
        try:
            fn = R.make(op, lib, data, nt, reduction)
        except R.Unsupported:
            assert not R.COMPARISONS[op][lib].per_element
            continue
        got = fn()
        ok, score = R.check(op, lib, data, got, reduction)
        assert ok, f"{lib} {op} {dtype} {reduction}: {score:.3g} x tolerance"
        out = R.to_numpy(got)
        assert out.shape == (() if reduction == "mean" and op != "logsumexp" else (48,)
                             if op in R.ROW_OPS else (400,))


def test_mismatch_scores():
    exp = np.array([1.0, 2.0, np.inf])
    assert R.mismatch(exp, exp, np.float32) == 0
    assert R.mismatch(np.array([1.0, 2.0, 3.0]), exp, np.float32) == np.inf
    assert R.mismatch(exp * (1 + 1e-3), exp, np.float32) > 1
    assert R.mismatch(exp * (1 + 1e-6), exp, np.float64) > 1
    assert R.mismatch(np.array([np.nan]), np.array([np.nan]), np.float64) == 0


def test_probability_data_has_no_exact_one():
    d = R.make_data("bce_probs", (1_000_000,), "float32", seed=0)
    assert d["p"].max() < 1 and d["p"].min() > 0
