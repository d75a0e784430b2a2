"""First-call latency and peak memory machinery (fresh processes)."""

import numpy as np
import pytest

from fastloss.bench import latency as L
from fastloss.bench import memory as M
from fastloss.bench import registry as C


def test_latency_child_reports_import_and_first_call():
    rec = L.run_one("fastloss-numpy", "sparse_ce", threads=1)
    assert "error" not in rec, rec
    assert rec["import_s"] > 0 and rec["first_call_s"] > 0 and rec["process_wall_s"] > 0


def test_peak_extra_sees_a_temporary():
    n = 50_000_000
    extra, method = M.peak_extra(lambda: np.ones(n // 8).sum())
    assert 0.9 * n <= extra <= 3 * n, (extra, method)


def test_memory_child_numpy():
    (rec,) = M.run_child("numpy", "bce_logits|1e6|float32", threads=1)
    assert "error" not in rec, rec
    assert rec["extra_bytes"] > 0.5 * rec["input_bytes"]  # NumPy's temporaries


@pytest.mark.slow
def test_latency_all():
    res = L.run(repeat=1)
    assert not [r for r in res["records"] if "error" in r]


@pytest.mark.slow
@pytest.mark.parametrize("lib", [lib for lib in C.LIBRARIES])
def test_memory_quick_cases(lib):
    ok, why = C.library_available(lib)
    if not ok:
        pytest.skip(why)
    res = M.run("quick", libs=[lib])
    assert not [r for r in res["records"] if "error" in r]
