"""Figures say where they come from (issue #14, item 5): every ``fastloss bench`` run
records the CPU model and the SIMD variant of the Cython kernels, and the report and
the README summary show them."""

import json
import os
import subprocess
import sys

import pytest

from fastloss.bench import report, tables, timing


def _cython():
    from fastloss.kernels import cython as cy

    if not cy.AVAILABLE:
        pytest.skip(f"Cython backend not built: {cy.WHY_UNAVAILABLE}")
    return cy


def _results(meta, throughput=()):
    return {"meta": meta, "seconds": {}, "loadavg": {}, "throughput": list(throughput)}


def test_machine_info_records_cpu_model_and_variant():
    cy = _cython()
    meta = report.machine_info("fastloss bench (test)", "small", False)
    with open("/proc/cpuinfo") as f:
        models = {ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")}
    assert meta["cpu"] in models
    v = meta["simd_variant"]
    assert v["variant"] == cy.BUILD_INFO["variant"] and v["simd"] == cy.BUILD_INFO["simd"]
    assert json.loads(json.dumps(meta)) == meta  # it goes into results.json as is
    # the throughput processes record the variant they ran themselves
    assert timing.environment(1)["simd_variant"]["variant"] == cy.BUILD_INFO["variant"]


def test_forced_variant_is_recorded():
    cy = _cython()
    if "baseline" not in cy.BUILD_INFO.get("variants_built", []):
        pytest.skip("no baseline variant built")
    code = ("import json; from fastloss.bench.report import simd_variant; "
            "print(json.dumps(simd_variant()))")
    env = dict(os.environ, FASTLOSS_CYTHON_VARIANT="baseline")
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    v = json.loads(p.stdout)
    assert v["variant"] == "baseline" and v["forced_by_env"] == "baseline"


def test_report_and_summary_show_cpu_and_variant():
    meta = report.machine_info("fastloss bench (test)", "small", False)
    meta["cpu"] = "Test CPU @ 1 GHz"
    meta["simd_variant"] = {"variant": "avx512", "simd": "AVX-512 (F, DQ)",
                            "forced_by_env": None}
    rec = {"op": "bce_logits", "label": "1e4", "shape": [10000], "dtype": "float32",
           "kind": "flat", "elements": 10000, "threads": 2, "library": "fastloss-cython",
           "elements_per_s": 1e9, "best_s": 1e-5, "check": {"ok": True}}
    other = {"threads": 2, "records": [rec],
             "environment": {"simd_variant": {"variant": "avx2", "simd": "AVX2",
                                              "forced_by_env": "avx2"}}}
    res = _results(meta, [other])
    head = tables.header(res)
    assert "Test CPU @ 1 GHz" in head
    assert "Cython `avx512` (AVX-512 (F, DQ))" in head
    # a throughput process that ran another variant is named, with the variable that forced it
    assert "throughput at 2 thread(s): Cython `avx2` (AVX2), forced by " \
           "FASTLOSS_CYTHON_VARIANT=avx2" in head
    summary = tables.summary_table(res)
    assert "Test CPU @ 1 GHz" in summary and "Cython `avx512`" in summary


def test_results_without_a_variant_say_so():
    meta = report.machine_info("fastloss bench (test)", "small", False)
    del meta["simd_variant"]  # results.json written before the variant was recorded
    assert "SIMD variant**: unknown (not recorded)" in tables.header(_results(meta))
    meta["simd_variant"] = {"variant": None, "simd": None, "forced_by_env": None}
    assert "none (Cython backend not available)" in tables.header(_results(meta))
