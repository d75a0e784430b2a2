"""What is built and available: backends, threads, versions."""

import os
import platform
import sys

from fastloss._dispatch import (BACKENDS, available_backends, config, resolve_backend,
                                resolve_threads)


def info():
    r"""Describe this installation: backends, build, SIMD variant, threads, versions.

    Returns
    -------
    dict
        JSON-serialisable; ``fastloss info`` prints it (``--json`` as is).

    See Also
    --------
    available_backends

    Notes
    -----
    Importing a backend to describe it is the only side effect; nothing is compiled.

    Examples
    --------
    >>> import fastloss
    >>> d = fastloss.info()
    >>> d["backends"]["numpy"]["available"], d["versions"]["fastloss"] == fastloss.__version__
    (True, True)
    """
    import numpy as np

    from fastloss._version import __version__

    backends = {}
    for name, (ok, why) in available_backends().items():
        entry = {"available": ok}
        if not ok:
            entry["why_not"] = why
        mod = _module(name)
        build = getattr(mod, "BUILD_INFO", None) if mod is not None else None
        if build:
            entry["build"] = dict(build)
        backends[name] = entry
    versions = {"fastloss": __version__, "python": sys.version.split()[0], "numpy": np.__version__}
    for lib in ("numba", "llvmlite", "Cython"):
        try:
            versions[lib] = __import__(lib).__version__
        except Exception:
            versions[lib] = None
    default, _ = resolve_backend(None)
    return {
        "backends": backends,
        "default_backend": default,
        "backend_order": list(BACKENDS),
        "FASTLOSS_BACKEND": os.environ.get("FASTLOSS_BACKEND"),
        "threads": resolve_threads(None),
        # what the loss calls use: the environment as read once (fastloss.refresh_config)
        "config": config(),
        "cpu": cpu_model(),
        "machine": platform.machine(),
        "versions": versions,
    }


def cpu_model():
    """The CPU's model name (Linux: /proc/cpuinfo), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def _runnable_variants(build):
    """The Cython builds this CPU can run (baseline always; avx2 needs x86-64-v3, avx512 v4)."""
    need = {"avx2": 3, "avx512": 4}
    level = build.get("cpu_level", 0)
    return [v for v in build.get("variants_built", []) if level >= need.get(v, 0)]


def _module(name):
    from fastloss._dispatch import load_backend

    return load_backend(name)[0]


def format_info(d):
    lines = [f"fastloss {d['versions']['fastloss']}  (python {d['versions']['python']}, "
             f"numpy {d['versions']['numpy']})",
             f"default backend: {d['default_backend']}  (order: {' > '.join(d['backend_order'])};"
             f" FASTLOSS_BACKEND={d['FASTLOSS_BACKEND']})",
             f"threads: {d['threads']}  cpu: {d['cpu']} ({d.get('machine', '')})",
             "environment read once per process (FASTLOSS_BACKEND, FASTLOSS_NUM_THREADS, "
             "FASTLOSS_CYTHON_VARIANT, the cores); fastloss.refresh_config() re-reads it",
             "backends:"]
    for name, e in d["backends"].items():
        state = "available" if e["available"] else f"unavailable ({e['why_not']})"
        lines.append(f"  {name:7s} {state}")
        build = e.get("build") or {}
        for k, v in build.items():
            lines.append(f"          {k}: {v}")
        if "cpu_level" in build:
            lines.append(f"          runnable here: {', '.join(_runnable_variants(build))} "
                         f"(x86-64-v{build['cpu_level']})")
    other = ", ".join(f"{k} {v}" for k, v in d["versions"].items()
                      if k not in ("fastloss", "python", "numpy"))
    lines.append(f"versions: {other}")
    return "\n".join(lines)
