"""The per-call part of ``fastloss bench`` runs and prints every row of issue #16's table.

Tiny sizes and short repeats: this checks the plumbing, never a speed (timings belong to
the benchmark, not to asserts)."""

import json
import subprocess
import sys

import pytest

from fastloss.bench import latency


def test_per_call_prints_every_row(torch, monkeypatch):
    monkeypatch.setattr(latency, "PER_CALL_TARGET_S", 0.0005)
    res = latency.per_call(threads=(1, 2), repeat=1, tiny=True)
    cases = [r["case"] for r in res["records"] if r["threads"] == 1]
    assert [r["case"] for r in res["records"] if r["threads"] == 2] == cases
    for want in ("sparse CE 32 x 10", "sparse CE on probabilities 32 x 10", "BCE logits 32",
                 "logsumexp 32 x 10", "categorical CE 32 x 10",
                 "fastloss.torch.cross_entropy 32 x 10", "fastloss.scipy.logsumexp 32 x 10",
                 "fastloss.sklearn.log_loss 32 x 10",
                 "keras SparseCategoricalCrossentropy()(...) 32 x 10",
                 "keras CategoricalCrossentropy()(...) 32 x 10",
                 "keras BinaryCrossentropy(from_logits=True)(...) 32 x 1",
                 "keras.legacy SparseCategoricalCrossentropy()(...) 32 x 10",
                 "keras.legacy CategoricalCrossentropy()(...) 32 x 10",
                 "keras.legacy BinaryCrossentropy(from_logits=True)(...) 32 x 1"):
        assert want in cases
    assert sum(c.startswith("BCE logits") for c in cases) == 4  # 32 and three large sizes
    assert sum(c.startswith("sparse CE") and "1000" in c for c in cases) == 2
    for r in res["records"]:
        if "error" not in r or "keras" not in r["case"]:  # Keras may be missing here
            assert r["fastloss_s"] > 0 and r["torch_s"] > 0, r
    table = latency.per_call_table(res)
    assert table.count("\n| ") == 1 + len(res["records"])  # the header and a line a record
    assert res["cpu"] in table and "Cython variant" in table
    wide = latency.per_call_wide_table(res)
    assert wide.count("\n| ") == len(cases) and "2 threads: fastloss / PyTorch" in wide


def test_per_call_command_line(torch, tmp_path):
    out = tmp_path / "percall.json"
    p = subprocess.run([sys.executable, "-m", "fastloss.bench.latency", "--per-call", "--tiny",
                        "--per-call-threads", "1", "--out", str(out)],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "| sparse CE 32 x 10 | 1 |" in p.stdout
    assert json.loads(out.read_text())["kind"] == "per_call"


@pytest.mark.parametrize("present", [True, False])
def test_report_section(present):
    from fastloss.bench.tables import per_call_section

    res = {"kind": "per_call", "threads": [1], "repeat": 1, "cpu": "cpu X", "torch": "2",
           "simd": {"variant": "avx512"}, "loadavg_1min": [0.5, 0.6],
           "records": [{"case": "sparse CE 32 x 10", "threads": 1, "fastloss_s": 1e-6,
                        "torch_s": 5e-6, "speedup": 5.0}]}
    md = per_call_section({"percall": res} if present else {})
    if present:
        assert "| sparse CE 32 x 10 | 1 | 1.00 us | 5.00 us | 5.00x |" in md
        assert "cpu X" in md and "avx512" in md
    else:
        assert md == ""


def test_per_call_without_torch(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_torch(name, *args, **kw):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("No module named 'torch'")
        return real_import(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", no_torch)
    res = latency.per_call(threads=(1,), repeat=1, tiny=True)
    assert res["records"] == [] and "PyTorch is not available" in res["skipped"]
    assert "not measured" in latency.per_call_table(res)
