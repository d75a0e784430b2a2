"""Every x86-64 CPU: SIMD builds never run where the CPU lacks them, and give the same bits.

* A SIMD build of the Cython kernels (``_core_avx2``, ``_core_avx512``) refuses to load with
  an ImportError on a CPU without its instructions; the check runs in code compiled for the
  baseline target (``kernels/cython/_guard.c``). Shown three ways: with
  ``FASTLOSS_MAX_CPU_LEVEL`` (the dispatch and the guard behave as on an older CPU), by
  importing every submodule of the package, and under ``qemu-x86_64 -cpu Haswell|Nehalem``,
  a real AVX2-only / pre-AVX CPU where an unguarded AVX-512 build dies with SIGILL.
* Every build this CPU can run gives the same bits as the baseline build for every function
  of the kernel contract on the adversarial zoo (``tests/_zoo.py``), for 1 and 2 threads,
  NaN signs included, so a cluster of mixed machines gives the single-machine result.
* The Cython test module runs once more under every other supported build
  (``FASTLOSS_CYTHON_VARIANT``), so the default test run exercises baseline and the best.
"""

import importlib
import os
import shutil
import subprocess
import sys
import warnings

import pytest
from _zoo import DTYPES, ROW_WIDTHS, bits, contract_cases, first_bit_difference
from testutil import REQUIRE

import fastloss.kernels.cython as cy

pytestmark = pytest.mark.skipif(not cy.AVAILABLE, reason="the Cython backend is not built")

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))  # the repository (pyproject.toml)
X86_64 = os.uname().machine in ("x86_64", "AMD64")
# (variant, module, x86-64 level it needs)
BUILDS = [("baseline", "_core", 0), ("avx2", "_core_avx2", 3), ("avx512", "_core_avx512", 4)]
SUBRUN = "FASTLOSS_VARIANT_SUBRUN"  # set in the per-variant sub-runs: no recursion


def _module(mod_name):
    # sys.modules, not the package attribute: the package rebinds `_core` to the chosen build
    importlib.import_module(f"{cy.__name__}.{mod_name}")
    return sys.modules[f"{cy.__name__}.{mod_name}"]


def supported_builds():
    """[(variant, module)] of every build made here that this CPU runs."""
    level = cy.BUILD_INFO["cpu_level"]
    built = cy.BUILD_INFO["variants_built"]
    return [(v, _module(m)) for v, m, need in BUILDS if v in built and level >= need]


def cpuinfo_level():
    """The x86-64 level from the kernel's CPU flags (an oracle independent of the C check)."""
    with open("/proc/cpuinfo") as f:
        flags = set(next(line for line in f if line.startswith("flags")).split(":")[1].split())
    v2 = {"cx16", "lahf_lm", "popcnt", "sse4_1", "sse4_2", "ssse3"}
    v3 = {"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"}
    v4 = {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"}
    return 4 if v2 | v3 | v4 <= flags else 3 if v2 | v3 <= flags else 2 if v2 <= flags else 1


def _python(code, env=None, prefix=(), timeout=300):
    env = dict(os.environ, **(env or {}))
    return subprocess.run([*prefix, sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=timeout, cwd=HERE)


@pytest.mark.skipif(not (X86_64 and os.path.exists("/proc/cpuinfo")), reason="x86-64 Linux only")
def test_cpu_level_agrees_with_the_kernels_cpu_flags():
    assert cy.BUILD_INFO["cpu_level"] == cpuinfo_level()


def test_the_package_picks_the_best_build_this_cpu_runs():
    if os.environ.get("FASTLOSS_CYTHON_VARIANT", "auto") not in ("", "auto"):
        pytest.skip("a variant is forced in this run")
    assert cy.BUILD_INFO["variant"] == supported_builds()[-1][0]


CHECK_LEVEL = """
import importlib, sys
import numpy as np
import fastloss.kernels.cython as cy
print("chosen", cy.BUILD_INFO["variant"], cy.BUILD_INFO["cpu_level"])
for name in ("_core", "_core_avx2", "_core_avx512"):
    try:
        importlib.import_module("fastloss.kernels.cython." + name)
    except ImportError as exc:
        print("refused", name, "|", exc)
    else:
        print("loaded", name)
x = np.linspace(-3, 3, 40, dtype=np.float32).reshape(4, 10)
out = np.zeros(4, np.float32)
cy.logsumexp_rows(x, out, 2)
print("lse", out.view(np.uint32).tolist())
"""


def _expect_level(stdout, level):
    """The guard's verdicts in CHECK_LEVEL's output for a CPU of x86-64 ``level``."""
    lines = stdout.splitlines()
    built = cy.BUILD_INFO["variants_built"]
    best = [v for v, _, need in BUILDS if v in built and level >= need][-1]
    assert lines[0] == f"chosen {best} {level}", stdout
    for v, mod_name, need in BUILDS:
        if v not in built:
            continue
        line = next(ln for ln in lines if ln.split()[1] == mod_name)
        if level >= need:
            assert line == f"loaded {mod_name}", stdout
        else:
            assert line.startswith(f"refused {mod_name} |"), stdout
            assert f"x86-64-v{need}" in line and f"supports only x86-64-v{level}" in line, line


@pytest.mark.parametrize("level", [1, 2, 3])
def test_simd_builds_refuse_to_load_on_an_older_cpu(level):
    """FASTLOSS_MAX_CPU_LEVEL makes the dispatch and the guards see an older CPU."""
    if level >= cy.BUILD_INFO["cpu_level"]:
        pytest.skip("this CPU is not newer than that level")
    res = _python(CHECK_LEVEL, {"FASTLOSS_MAX_CPU_LEVEL": str(level),
                                "FASTLOSS_CYTHON_VARIANT": "auto"})
    assert res.returncode == 0, res.stderr
    _expect_level(res.stdout, level)
    native = _python(CHECK_LEVEL, {"FASTLOSS_CYTHON_VARIANT": "auto"})
    assert native.returncode == 0, native.stderr
    # and the result's bits do not depend on the build chosen
    assert res.stdout.splitlines()[-1] == native.stdout.splitlines()[-1]


WALK = """
import importlib, pkgutil, sys, warnings
warnings.simplefilter("ignore")
import fastloss, fastloss.kernels
refused, missing, ok = [], [], 0
# fastloss.kernels separately: an editable install maps it from another folder
names = {info.name for pkg in (fastloss, fastloss.kernels)
         for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + ".")}
for name in sorted(names):
    try:
        importlib.import_module(name)
    except ImportError as exc:
        third_party = getattr(exc, "name", None) and not exc.name.startswith("fastloss")
        (missing if third_party else refused).append(name)
    else:
        ok += 1
print("ok", ok)
print("refused", " ".join(sorted(refused)))
print("missing", " ".join(sorted(missing)))
"""


@pytest.mark.parametrize("level", [None, 1])
def test_importing_every_submodule_is_safe(level):
    """What doc tools and `pytest --doctest-modules` do: import every module of the package."""
    env = {"FASTLOSS_MAX_CPU_LEVEL": str(level)} if level else {}
    res = _python(WALK, env)
    assert res.returncode == 0, res.stderr[-3000:]
    out = dict(line.split(" ", 1) if " " in line else (line, "") for line in res.stdout.splitlines())
    refused = set(out["refused"].split())
    built = cy.BUILD_INFO["variants_built"]
    have = level or cy.BUILD_INFO["cpu_level"]
    expect = {f"fastloss.kernels.cython.{m}" for v, m, need in BUILDS if v in built and have < need}
    assert refused == expect, res.stdout
    assert int(out["ok"]) > 20


QEMU = shutil.which("qemu-x86_64")


@pytest.mark.skipif(not X86_64, reason="x86-64 only")
@pytest.mark.parametrize("cpu,level", [("Haswell", 3), ("Nehalem", 2)])
def test_on_an_emulated_older_cpu(cpu, level):
    """qemu-user runs this very interpreter on a CPU model without AVX-512 (Haswell) or
    without AVX (Nehalem): the SIMD builds it lacks are refused, not executed, and the
    build it picks gives the native bits. (Without the guard, importing _core_avx512
    under -cpu Haswell dies with SIGILL.)"""
    if QEMU is None:
        msg = "qemu-x86_64 is not installed (Debian package qemu-user)"
        if REQUIRE:
            pytest.fail(msg + "; .ci/run installs it")
        pytest.skip(msg)
    res = _python(CHECK_LEVEL, {"FASTLOSS_CYTHON_VARIANT": "auto"},
                  prefix=(QEMU, "-cpu", cpu), timeout=600)
    assert res.returncode == 0, (res.returncode, res.stderr[-3000:])
    _expect_level(res.stdout, level)
    native = _python(CHECK_LEVEL, {"FASTLOSS_CYTHON_VARIANT": "auto"})
    assert res.stdout.splitlines()[-1] == native.stdout.splitlines()[-1]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("C", ROW_WIDTHS)
def test_every_build_gives_the_baseline_bits(dtype, C):
    """Every contract function, every option family, 1-3 threads, on the zoo."""
    builds = supported_builds()
    base = dict(builds)["baseline"]
    failures = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for case, _, run in contract_cases(dtype, C):
            want = run(base, 1)
            for variant, mod in builds:
                for nt in (1, 2, 3):
                    got = run(mod, nt)
                    for k, (w, g) in enumerate(zip(want, got)):
                        if bits(w) != bits(g):
                            failures.append(f"{case} {variant} n_threads={nt} output {k}: "
                                            f"{first_bit_difference(w, g)}")
    assert not failures, f"{len(failures)} differences:\n" + "\n".join(failures[:30])


@pytest.mark.skipif(os.environ.get(SUBRUN) == "1", reason="inside a per-variant sub-run")
def test_cython_tests_pass_under_every_other_supported_build():
    """The in-process run tests the build the package chose; this runs the Cython tests
    again with FASTLOSS_CYTHON_VARIANT set to each other build this CPU supports."""
    chosen = cy.BUILD_INFO["variant"]
    others = [v for v, _ in supported_builds() if v != chosen]
    if not others:
        pytest.skip("only one build is supported here")
    for variant in others:
        env = dict(os.environ, FASTLOSS_CYTHON_VARIANT=variant, **{SUBRUN: "1"})
        res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                              os.path.join(HERE, "test_cython_backend.py")],
                             capture_output=True, text=True, env=env, cwd=ROOT, timeout=1800)
        tail = "\n".join(res.stdout.splitlines()[-25:])
        assert res.returncode == 0, f"FASTLOSS_CYTHON_VARIANT={variant}:\n{tail}\n{res.stderr[-2000:]}"
        assert " passed" in tail and " failed" not in tail, tail


@pytest.mark.skipif(not os.path.exists("/proc/cpuinfo"), reason="Linux only")
@pytest.mark.parametrize("level", [None, 3, 1])
def test_fastloss_info_names_the_cpu_and_the_builds_it_runs(level):
    have = cy.BUILD_INFO["cpu_level"]
    if level is not None and level >= have:
        pytest.skip("this CPU is not newer than that level")
    env = dict(os.environ, FASTLOSS_CYTHON_VARIANT="auto")
    if level:
        env["FASTLOSS_MAX_CPU_LEVEL"] = str(level)
    res = subprocess.run([sys.executable, "-m", "fastloss.cli", "info"], capture_output=True,
                         text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr
    with open("/proc/cpuinfo") as f:
        model = next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    assert f"cpu: {model} (" in res.stdout
    level = level or have
    built = cy.BUILD_INFO["variants_built"]
    runnable = [v for v, _, need in BUILDS if v in built and level >= need]
    assert f"variant: {runnable[-1]}\n" in res.stdout
    assert f"runnable here: {', '.join(runnable)} (x86-64-v{level})" in res.stdout
