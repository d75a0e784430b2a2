"""Accuracy machinery: ulps, references, and fastloss's own error bound."""

import numpy as np
import pytest

from fastloss.bench import accuracy as A
from fastloss.bench import registry as C


def test_ulp32_is_float32_spacing():
    x = np.array([1.0, 1.5, 3.0, 1e-3, 7e4, 2.0 ** -126, 1e30], dtype=np.float32)
    np.testing.assert_array_equal(A.ulp32(x.astype(np.float64)), np.spacing(x).astype(np.float64))
    assert A.ulp32(0.0) == 2.0 ** -149
    assert A.ulp32(1e-45) == 2.0 ** -149  # subnormal range
    assert A.ulp_errors(np.float32(1.0) + np.spacing(np.float32(1.0)), 1.0) == 1.0


@pytest.mark.parametrize("op", list(C.OPS))
def test_float64_reference_matches_mpmath_on_random_rows(op):
    d, ref = A.random_inputs(op)
    sub = {k: v[:40] for k, v in d.items()}
    mp = A.reference_mp(op, sub)
    assert np.max(A.ulp_errors(ref[:40], mp)) < 1e-6  # far below a float32 ulp


def test_adversarial_references_are_exact_where_known():
    d, descs, ref = A.adversarial("bce_probs")
    i = descs.index("p = 1.0, z = 1")
    assert ref[i] == 0.0
    assert np.isinf(ref[descs.index("p = 0.0, z = 1 (infinite loss)")])
    d, descs, ref = A.adversarial("sparse_ce")
    eq = [i for i, s in enumerate(descs) if s == "all equal"]
    np.testing.assert_allclose(ref[eq], np.log(len(d["x"][0])), rtol=1e-15)


@pytest.mark.parametrize("lib", ["fastloss-numpy", "fastloss-numba", "fastloss-cython"])
def test_fastloss_is_within_one_ulp(lib):
    """fastloss computes each loss in float64 and rounds once: <= 0.5 ulp (+ the ulp of
    rounding its float64 sum), on random and adversarial inputs."""
    ok, why = C.library_available(lib)
    if not ok:
        pytest.skip(f"{lib} not available: {why}")
    res = A.run(libs=[lib], identical_n=100_000)
    assert res["records"]
    for r in res["records"]:
        assert "error" not in r, r
        e, m = r.get("elementwise"), r.get("mean")
        if e and e["max_ulp"] is not None:
            assert e["max_ulp"] <= 1.0, r
        if m and m["ulp"] is not None:
            assert m["ulp"] <= 1.0, r


def test_accuracy_runs_for_numpy():
    res = A.run(libs=["numpy"], identical_n=10_000, ops=["sparse_ce", "bce_probs"])
    kinds = {(r["op"], r["input"]) for r in res["records"]}
    assert ("sparse_ce", "adversarial") in kinds and ("bce_probs", "identical") in kinds
    bce = next(r for r in res["records"] if r["op"] == "bce_probs" and r["input"] == "adversarial")
    # NumPy's -(z*log(p) + (1-z)*log(1-p)) gives NaN at p = 0, z = 0 (0 * -inf)
    assert bce["elementwise"]["nonfinite_where_finite"] >= 1


@pytest.mark.slow
def test_accuracy_full():
    """Every library, N = 1e8 identical losses."""
    res = A.run()
    assert not [r for r in res["records"] if "error" in r]
