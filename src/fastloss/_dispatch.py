"""Backend choice: ``backend=`` argument, then ``FASTLOSS_BACKEND``, then the best available.

The environment (``FASTLOSS_BACKEND``, ``FASTLOSS_NUM_THREADS``, ``FASTLOSS_CYTHON_VARIANT``)
and the CPU count are read once, at the first call, and again only by
:func:`refresh_config`: reading them cost more than a small loss call's whole kernel.
"""

import importlib
import os

import numpy as np

BACKENDS = ("cython", "numba", "numpy")  # best first
_MODULES = {"cython": "fastloss.kernels.cython", "numba": "fastloss.kernels.numba",
            "numpy": "fastloss.kernels.reference"}
_loaded = {}
_config = None  # dict made by refresh_config(): the environment as last read


def load_backend(name):
    """``(module or None, available, why_not)`` of a backend, imported once."""
    if name not in _loaded:
        try:
            mod = importlib.import_module(_MODULES[name])
            ok = bool(getattr(mod, "AVAILABLE", False))
            why = getattr(mod, "WHY_UNAVAILABLE", "") if not ok else ""
        except Exception as exc:  # an optional backend that fails to import must not break fastloss
            mod, ok, why = None, False, f"import failed: {type(exc).__name__}: {exc}"
        _loaded[name] = (mod, ok, why or ("" if ok else "not built"))
    return _loaded[name]


def available_backends():
    r"""Which kernel backends this installation can use, best first.

    Returns
    -------
    dict
        ``{name: (available, reason_if_not)}`` for ``'cython'``, ``'numba'``, ``'numpy'``.

    See Also
    --------
    info

    Notes
    -----
    The NumPy reference backend is always available; ``backend=None`` picks the first
    available one unless ``FASTLOSS_BACKEND`` names another.

    Examples
    --------
    >>> import fastloss
    >>> fastloss.available_backends()["numpy"]
    (True, '')
    """
    return {name: load_backend(name)[1:] for name in BACKENDS}


def refresh_config():
    r"""Re-read the environment variables and the CPU count that fastloss caches.

    fastloss reads ``FASTLOSS_BACKEND``, ``FASTLOSS_NUM_THREADS``, ``FASTLOSS_CYTHON_VARIANT``
    and the number of cores this process may use (its affinity mask) once, at the first
    loss call. Call this after changing any of them in a running process.

    Returns
    -------
    dict
        What is now in force: ``backend`` (the ``FASTLOSS_BACKEND`` value or None),
        ``threads`` (what ``n_threads=None`` means), ``cpu_count`` and ``cython_variant``
        (the Cython build in use, or None without the Cython backend).

    Raises
    ------
    ImportError
        ``FASTLOSS_CYTHON_VARIANT`` names a build that is not there or that this CPU cannot
        run; the previous configuration stays in force.

    See Also
    --------
    info : the configuration with the backends and builds.

    Notes
    -----
    An invalid ``FASTLOSS_BACKEND`` or ``FASTLOSS_NUM_THREADS`` is not an error here: the
    next call that needs the value raises, naming the variable, as without the cache.

    Examples
    --------
    >>> import os, fastloss
    >>> saved = os.environ.get("FASTLOSS_NUM_THREADS")
    >>> os.environ["FASTLOSS_NUM_THREADS"] = "1"
    >>> fastloss.refresh_config()["threads"]
    1
    >>> if saved is None:
    ...     del os.environ["FASTLOSS_NUM_THREADS"]
    ... else:
    ...     os.environ["FASTLOSS_NUM_THREADS"] = saved
    >>> fastloss.refresh_config()["threads"] >= 1
    True
    """
    global _config
    variant = _reselect_cython()
    env_backend = os.environ.get("FASTLOSS_BACKEND") or None
    env_threads = os.environ.get("FASTLOSS_NUM_THREADS")
    n_cpu = cpu_count()
    try:
        threads = max(1, int(env_threads)) if env_threads else n_cpu
    except ValueError:
        threads = None  # resolve_threads raises at the call that needs it
    core, ok, _ = load_backend("cython")
    core = core._core if ok else None
    if core is not None and threads is not None:
        core.fast_configure(threads)
    _config = {"backend": env_backend, "env_threads": env_threads, "threads": threads,
               "cpu_count": n_cpu, "cython_variant": variant,
               # the compiled fast path of the public losses (None: general path only)
               "fast": core if threads is not None and env_backend in (None, "cython") else None,
               "fast_cython": core if threads is not None else None}
    return config()


def config():
    """The configuration in force (as :func:`refresh_config` returns it)."""
    cfg = _cfg()
    return {k: cfg[k] for k in ("backend", "threads", "cpu_count", "cython_variant")}


def _reselect_cython():
    """Pick the Cython build for ``FASTLOSS_CYTHON_VARIANT`` again; its name or None."""
    mod, ok, _ = load_backend("cython")
    return mod.reselect() if ok else None  # raises ImportError for a build it cannot use


def _cfg():
    return _config if _config is not None else (refresh_config(), _config)[1]


def fast_core(backend):
    """The Cython module whose ``fast_*`` entries serve ``backend``, or None."""
    cfg = _config if _config is not None else _cfg()
    if backend is None:
        return cfg["fast"]
    return cfg["fast_cython"] if backend == "cython" else None


def run_fast(backend, entry, *args):
    """``fast_<entry>(*args)`` of the compiled fast path; None when it declines or does not
    serve ``backend`` (the caller then takes the general path, which validates and raises)."""
    core = fast_core(backend)
    return None if core is None else getattr(core, entry)(*args)


def resolve_backend(backend=None):
    """Return ``(name, kernel_module)`` for the requested or the best available backend."""
    requested = backend if backend is not None else _cfg()["backend"]
    if requested is not None:
        if not isinstance(requested, str) or requested not in BACKENDS:
            source = "backend" if backend is not None else "FASTLOSS_BACKEND"
            raise ValueError(f"{source}={requested!r} is not a fastloss backend; "
                             f"choose one of {', '.join(map(repr, BACKENDS))}")
        mod, ok, why = load_backend(requested)
        if not ok:
            raise RuntimeError(f"backend {requested!r} is not available here: {why}")
        return requested, mod
    for name in BACKENDS:
        mod, ok, _ = load_backend(name)
        if ok:
            return name, mod
    raise RuntimeError("no fastloss backend is available")  # unreachable: numpy always is


def cpu_count():
    """The cores this process may run on (its affinity mask, not the machine's count)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def resolve_threads(n_threads):
    """Validate ``n_threads`` (the one place) and resolve ``None``: ``FASTLOSS_NUM_THREADS``,
    else every core of :func:`cpu_count`."""
    if n_threads is None:
        cfg = _cfg()
        if cfg["threads"] is None:  # an invalid FASTLOSS_NUM_THREADS: int() says why
            return max(1, int(cfg["env_threads"]))
        return cfg["threads"]
    # any integer type (np.int64 from a config or an array included), never a bool
    if (isinstance(n_threads, (bool, np.bool_)) or not isinstance(n_threads, (int, np.integer))
            or n_threads < 1):
        raise ValueError(f"n_threads must be a positive integer or None, got {n_threads!r}")
    return int(n_threads)
