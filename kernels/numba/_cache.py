"""Make Numba's on-disk cache of this backend notice edits to *any* of its files.

Numba keys a cached function on the content of its own source file only. The
kernels of ``_kernels.py`` inline the math of ``_math.py`` and the intrinsics of
``_intrin.py``, so an edit there (or an upgrade that changes only those) would
otherwise keep serving stale machine code. This registers cache locators that
apply to this package's jitted modules only and stamp their cache entries with
a hash of all the backend's sources; they are otherwise Numba's own locators
(``NUMBA_CACHE_DIR``, ``__pycache__`` next to the source, the user-wide
directory), in Numba's order. Import this before any ``@njit(cache=True)``.
If Numba's caching internals change, registration is skipped (the stock
per-file behaviour remains).
"""

import hashlib
import os

_HERE = os.path.dirname(os.path.abspath(__file__))
_JITTED = ("_math.py", "_half.py", "_kernels.py")  # the modules whose functions use cache=True
_SOURCES = ("_cache.py", "_fork.py", "_intrin.py", "_math.py", "_half.py",
            "_kernels.py")  # _fork: serial copies


def _stamp():
    h = hashlib.sha256()
    for name in _SOURCES:
        with open(os.path.join(_HERE, name), "rb") as f:
            h.update(name.encode() + b"\0" + f.read() + b"\0")
    return h.digest()


STAMP = _stamp()


def _ours(py_file):
    try:
        return (os.path.dirname(os.path.abspath(py_file)) == _HERE
                and os.path.basename(py_file) in _JITTED)
    except (TypeError, ValueError):
        return False


def _register():
    from numba.core import caching

    def wrap(base):
        class Locator(base):
            @classmethod
            def from_function(cls, py_func, py_file):
                if not _ours(py_file):
                    return None
                return super().from_function(py_func, py_file)

            def get_source_stamp(self):
                return STAMP

        Locator.__name__ = Locator.__qualname__ = "FastlossBackend" + base.__name__
        return Locator

    bases = (caching.UserProvidedCacheLocator, caching.InTreeCacheLocator,
             caching.UserWideCacheLocator)
    ours = [wrap(b) for b in bases]
    classes = caching.CacheImpl._locator_classes
    if not any(c.__name__.startswith("FastlossBackend") for c in classes):
        classes[:0] = ours


try:
    _register()
except Exception:  # pragma: no cover - a Numba without these internals: stock caching
    pass
