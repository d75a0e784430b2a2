"""Backend choice: ``backend=`` argument, then ``FASTLOSS_BACKEND``, then the best available."""

import importlib
import os

import numpy as np

BACKENDS = ("cython", "numba", "numpy")  # best first
_MODULES = {"cython": "fastloss.kernels.cython", "numba": "fastloss.kernels.numba",
            "numpy": "fastloss.kernels.reference"}
_loaded = {}


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


def resolve_backend(backend=None):
    """Return ``(name, kernel_module)`` for the requested or the best available backend."""
    requested = backend if backend is not None else os.environ.get("FASTLOSS_BACKEND") or None
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
        env = os.environ.get("FASTLOSS_NUM_THREADS")
        return max(1, int(env)) if env else cpu_count()
    # any integer type (np.int64 from a config or an array included), never a bool
    if (isinstance(n_threads, (bool, np.bool_)) or not isinstance(n_threads, (int, np.integer))
            or n_threads < 1):
        raise ValueError(f"n_threads must be a positive integer or None, got {n_threads!r}")
    return int(n_threads)
