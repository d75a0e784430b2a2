"""``fastloss bench``: run every part in fresh processes, write JSON, Markdown and PNGs.

Parts: throughput (one process per thread count), accuracy, first-call latency, per-call
time (fastloss and PyTorch side by side in one process) and peak memory. Every benchmark
process gets the same thread settings
(``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS``,
``FASTLOSS_NUM_THREADS``, TensorFlow's intra-op threads, ``torch.set_num_threads``
and fastloss's ``n_threads``) and, unless ``--keep-openblas-env``, runs without
``OPENBLAS_CORETYPE``/``OPENBLAS_L2_SIZE`` (they slow a current NumPy; the
BLAS the processes actually used is recorded from threadpoolctl). Every number in
the report comes from ``results.json``: nothing is typed by hand.
"""

import datetime
import json
import math
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fastloss._info import cpu_model

PARTS = ("throughput", "accuracy", "latency", "percall", "memory")
UNSET = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


# --------------------------------------------------------------------------- machine


def simd_variant():
    """The SIMD variant of the Cython kernels this process runs (``BUILD_INFO``), the
    instructions it uses and whether ``FASTLOSS_CYTHON_VARIANT`` forced it; None values
    when the Cython backend is not available."""
    info = {"variant": None, "simd": None, "forced_by_env":
            os.environ.get("FASTLOSS_CYTHON_VARIANT") or None}
    try:
        from fastloss.kernels import cython as cy
    except Exception:  # an unbuilt or broken optional backend: nothing to record
        return info
    b = getattr(cy, "BUILD_INFO", None) or {}
    info.update(variant=b.get("variant"), simd=b.get("simd"), cpu_level=b.get("cpu_level"),
                variants_built=b.get("variants_built"))
    return info


def memory_gib():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 2 ** 20
    except OSError:
        pass
    return None


def slug(text):
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "cpu"


def default_output_dir(now=None):
    """``benchmarks/results/<date>-<cpu>`` under the repository (or the working directory)."""
    from fastloss.bench import registry as R

    now = now or datetime.datetime.now()
    name = f"{now:%Y-%m-%d}-{slug(cpu_model())}-{R.ALL_CORES}c"
    here = Path.cwd()
    candidates = [here, *here.parents, *Path(__file__).resolve().parents]
    for d in candidates:
        if (d / "benchmarks").is_dir() and (d / "pyproject.toml").is_file():
            return d / "benchmarks" / "results" / name
    return here / "benchmarks" / "results" / name


def bench_env(threads, keep_openblas_env=False):
    env = dict(os.environ)
    if not keep_openblas_env:
        for k in UNSET:
            env.pop(k, None)
    t = str(threads)
    env.update(OMP_NUM_THREADS=t, OPENBLAS_NUM_THREADS=t, MKL_NUM_THREADS=t,
               FASTLOSS_NUM_THREADS=t, TF_NUM_INTRAOP_THREADS=t, TF_NUM_INTEROP_THREADS="1",
               FASTLOSS_BENCH_TF_THREADS=t, TF_CPP_MIN_LOG_LEVEL="3",
               KERAS_BACKEND="tensorflow")
    return env


def machine_info(args_line, profile, keep_openblas_env):
    from importlib.metadata import PackageNotFoundError, version

    import numpy as np

    import fastloss
    from fastloss.bench import registry as R

    versions = {"python": platform.python_version(), "numpy": np.__version__}
    for name, dists in (("scipy", ["scipy"]), ("scikit-learn", ["scikit-learn"]),
                        ("torch", ["torch"]), ("tensorflow", ["tensorflow", "tensorflow-cpu"]),
                        ("keras", ["keras"]), ("numba", ["numba"]), ("mpmath", ["mpmath"]),
                        ("matplotlib", ["matplotlib"]), ("threadpoolctl", ["threadpoolctl"])):
        versions[name] = None
        for dist in dists:
            try:
                versions[name] = version(dist)
                break
            except PackageNotFoundError:
                continue
    return {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "command": args_line,
        "profile": profile,
        "cpu": cpu_model(),
        "simd_variant": simd_variant(),
        "cores": R.ALL_CORES,
        "memory_gib": memory_gib(),
        "platform": platform.platform(),
        "fastloss": fastloss.__version__,
        "backends": {b: {"available": ok, "why_not": why}
                     for b, (ok, why) in fastloss.available_backends().items()},
        "versions": versions,
        "thread_counts": R.thread_counts(),
        "unset_env": [] if keep_openblas_env else [k for k in UNSET if k in os.environ],
    }


# --------------------------------------------------------------------------- running


def _cpu_children():
    """CPU seconds (user + system) of the finished child processes so far."""
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _loadavg():
    """1-minute load average: above the core count, other work shared the machine."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def _run_module(module, argv, env, log_path, echo):
    """Run ``python -m module argv``; its stderr goes to ``log_path`` (progress lines,
    which start with two spaces, are echoed too)."""
    cmd = [sys.executable, "-m", module, *argv]
    with open(log_path, "a") as log:
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                             env=env)
        for line in p.stderr:
            log.write(line)
            log.flush()
            if line.startswith("  ") and echo:
                echo(line.rstrip())
        rc = p.wait()
    if rc != 0:
        raise RuntimeError(f"python -m {module} {' '.join(argv)} failed (exit {rc}); "
                           f"see {log_path}")


def run(profile="quick", output=None, parts=PARTS, ops=None, libs=None, threads=None,
        keep_openblas_env=False, args_line="fastloss bench", echo=print):
    """Run the parts and write the report; ``(output directory, results)``.

    Order: throughput (one process per thread count, alone on the machine), latency
    (fresh processes one after another, alone), then accuracy and memory side by side
    (neither is a timing, so they may share the cores; memory runs as many processes
    at once as there are cores).
    """
    import threading

    from fastloss.bench import registry as R

    t_start = time.perf_counter()
    out_dir = Path(output) if output else default_output_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = machine_info(args_line, profile, keep_openblas_env)
    threads = threads or R.thread_counts()
    meta["thread_counts"] = threads
    nt = max(threads)
    results = {"meta": meta, "seconds": {}, "loadavg": {"start": _loadavg()}}
    cpu0 = _cpu_children()
    tmp = Path(tempfile.mkdtemp(prefix="fastloss-bench-"))
    log_path = out_dir / "bench.log"
    log_path.write_text("")
    sel = (["--ops", *ops] if ops else []) + (["--libs", *libs] if libs else [])
    libsel = ["--libs", *libs] if libs else []
    full = profile == "full"

    def part(name, module, argv, env):
        t0 = time.perf_counter()
        f = tmp / f"{name}.json"
        _run_module(module, [*argv, "--out", str(f)], env, log_path, echo)
        results[name] = json.loads(f.read_text())
        results["seconds"][name] = time.perf_counter() - t0
        results["loadavg"][name] = _loadavg()

    if "throughput" in parts:
        _throughput(results, threads, profile, sel, keep_openblas_env, tmp, log_path, echo)
    if "latency" in parts:
        echo("first-call latency (fresh processes, one at a time)")
        part("latency", "fastloss.bench.latency",
             ["--threads", str(nt), "--repeat", "3" if full else "1", *libsel],
             bench_env(nt, keep_openblas_env))
    if "percall" in parts:
        echo("per-call time, fastloss and PyTorch side by side in one process (issue #16)")
        part("percall", "fastloss.bench.latency",
             ["--per-call", "--per-call-threads", ",".join(map(str, threads)),
              "--repeat", "9" if full else "5"], bench_env(nt, keep_openblas_env))
    side = []
    if "accuracy" in parts:
        n, n_rows = ("1e8", "1e8") if full else ("1e7", "1e6")
        echo(f"accuracy (float32; {n} identical losses), alongside memory")
        side.append(threading.Thread(target=part, args=(
            "accuracy", "fastloss.bench.accuracy",
            ["--threads", str(nt), "--identical-n", n, "--identical-rows-n", n_rows, *sel],
            bench_env(nt, keep_openblas_env))))
    if "memory" in parts:
        echo("peak extra memory (fresh processes)")
        side.append(threading.Thread(target=part, args=(
            "memory", "fastloss.bench.memory",
            ["--threads", str(nt), "--profile", "full" if full else "quick", "--jobs",
             str(R.ALL_CORES), *sel],
            bench_env(nt, keep_openblas_env))))
    _run_side_by_side(side)
    results["seconds"]["total_measuring"] = time.perf_counter() - t_start
    results["seconds"]["cpu_of_benchmark_processes"] = _cpu_children() - cpu0
    (out_dir / "results.json").write_text(json.dumps(results, indent=1))
    render(out_dir, results)
    results["seconds"]["total"] = time.perf_counter() - t_start
    (out_dir / "results.json").write_text(json.dumps(results, indent=1))
    return out_dir, results


def _throughput(results, threads, profile, sel, keep_openblas_env, tmp, log_path, echo):
    """One process per thread count, one after another (alone on the machine)."""
    t0 = time.perf_counter()
    results["throughput"] = []
    for t in threads:
        echo(f"throughput at {t} thread(s) ({profile} profile)")
        f = tmp / f"throughput-{t}.json"
        _run_module("fastloss.bench.timing",
                    ["--threads", str(t), "--profile", profile, "--out", str(f), *sel],
                    bench_env(t, keep_openblas_env), log_path, echo)
        results["throughput"].append(json.loads(f.read_text()))
    results["seconds"]["throughput"] = time.perf_counter() - t0
    results["loadavg"]["throughput"] = _loadavg()


def _run_side_by_side(threads):
    """Start the threads, wait for all, re-raise the first error."""
    errors = []
    for th in threads:
        th.run = _catching(th.run, errors)
        th.start()
    for th in threads:
        th.join()
    if errors:
        raise errors[0]


def _catching(fn, errors):
    def run():
        try:
            fn()
        except Exception as exc:  # re-raised in the main thread
            errors.append(exc)

    return run


def render(out_dir, results=None):
    """(Re)write report.md and the PNGs of ``out_dir`` from its results.json."""
    from fastloss.bench import plots as _bench_plots
    from fastloss.bench import tables as _bench_tables

    out_dir = Path(out_dir)
    if results is None:
        results = json.loads((out_dir / "results.json").read_text())
    pngs = _bench_plots.plot_all(out_dir, results)
    md = _bench_tables.markdown(results, pngs)
    (out_dir / "report.md").write_text(md)
    return md


def fmt_seconds(s):
    if s is None or (isinstance(s, float) and math.isnan(s)):
        return "-"
    m, s = divmod(int(round(s)), 60)
    return f"{m} min {s:02d} s" if m else f"{s} s"
