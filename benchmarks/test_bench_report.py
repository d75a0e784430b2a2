"""The report of ``fastloss bench``: tables and plots rendered from a small real run."""

import importlib.util
import json

import pytest

from fastloss.cli import bench as _bench_cli
from fastloss.bench import report as _bench_report
from fastloss.bench import tables as _bench_tables
from fastloss.bench import timing as _bench_timing
from fastloss.bench import accuracy as A
from fastloss.bench import latency as L
from fastloss.bench import memory as M


def test_report_renders_from_results(tmp_path):
    libs = ["fastloss-numpy", "fastloss-numba", "numpy"]
    results = {
        "meta": _bench_report.machine_info("fastloss bench (test)", "small", False),
        "seconds": {"total_measuring": 1.0}, "loadavg": {"start": 0.1},
        "throughput": [_bench_timing.run("small", 1, ops=["bce_logits"], libs=libs)],
        "accuracy": A.run(threads=1, identical_n=1000, ops=["bce_logits"], libs=libs),
        "latency": {"threads": 1, "repeat": 1, "records": [L.run_one("numpy", threads=1)]},
        "memory": {"threads": 1, "records": M.run_child("numpy", "bce_logits|1e6|float32", 1)},
    }
    (tmp_path / "results.json").write_text(json.dumps(results))
    md = _bench_report.render(tmp_path)
    assert md == (tmp_path / "report.md").read_text()
    for title in ("## Throughput", "### float32, 1 thread", "## Accuracy", "## First-call latency",
                  "## Peak extra memory", "| bce_logits | 1e4 |"):
        assert title in md
    if importlib.util.find_spec("matplotlib"):
        for png in ("throughput_float32.png", "accuracy.png", "latency.png", "memory.png"):
            assert (tmp_path / png).stat().st_size > 1000
            assert f"]({png})" in md

    # the README summary: the fastest compiled fastloss backend per case, written between
    # the markers and nowhere else
    summary = _bench_tables.summary_table(results)
    assert "| bce_logits | 1e4 |" in summary and "(numba)" in summary
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{_bench_tables.README_START}\nold table\n"
                      f"{_bench_tables.README_END}\noutro\n")
    _bench_cli._write_readme(readme, tmp_path)
    text = readme.read_text()
    assert "old table" not in text and summary in text
    assert text.startswith("intro\n") and text.endswith(f"{_bench_tables.README_END}\noutro\n")
    assert "(report.md)" in text
    readme.write_text("no markers")
    with pytest.raises(ValueError, match="no <!-- fastloss-bench-summary"):
        _bench_cli._write_readme(readme, tmp_path)
