"""Cython backend: the kernel contract compiled ahead of time, parallel with OpenMP.

The kernels are in ``_kernels.pxi`` (the vectorisable exp / log / log1p in
``fastloss_math.h``). ``setup.py`` compiles them into ``_core`` (the compiler's default
target, or the ``FASTLOSS_MARCH`` one) and, on x86-64, also into ``_core_avx2``
(x86-64-v3) and ``_core_avx512`` (x86-64-v4); this package imports the best one the CPU
supports (``FASTLOSS_CYTHON_VARIANT=baseline|avx2|avx512`` forces one). Every build gives
the same bits (tests/kernels/test_variants.py).

Importing a SIMD build directly is safe on any CPU: its module init is reached through
``_guard.c``, compiled for the baseline target, which raises ImportError on a CPU without
the build's instructions before any of them runs. ``FASTLOSS_MAX_CPU_LEVEL=1..4`` makes the
choice and the guards see an older CPU (testing).

Without the extension (no compiler or no Cython at install time) importing this package
still works: ``AVAILABLE`` is False, ``WHY_UNAVAILABLE`` says why and the contract
functions raise.

Threads: every kernel runs its blocks with OpenMP ``prange(schedule='static')`` on
``n_threads`` threads, without the GIL (several Python threads may call at once); the
results do not depend on ``n_threads``. In a child of ``fork()`` whose parent already ran
OpenMP threads the kernels run single-threaded (GNU OpenMP would hang there).

``BUILD_INFO`` records how the running module was compiled: the variant, OpenMP (and its
version), the compile flags, the SIMD level, whether FMA instructions are used (never:
the baseline x86-64 build has none, and every build must give the same bits), the CPU's
x86-64 level and the variants that were built.
"""

import glob
import importlib
import os

from .. import CONTRACT

__all__ = ["AVAILABLE", "BUILD_INFO", "HALF_NATIVE", "WHY_UNAVAILABLE", *CONTRACT]

_HERE = os.path.dirname(os.path.abspath(__file__))
_VARIANTS = (("avx512", "_core_avx512", 4), ("avx2", "_core_avx2", 3))  # best first


def _built(mod_name):
    return bool(glob.glob(os.path.join(_HERE, mod_name + ".*so")) +
                glob.glob(os.path.join(_HERE, mod_name + ".*pyd")))


def _select():
    """(module, build info dict) of the variant to use; raises ImportError if none.

    Only the baseline module and the chosen one are imported (each costs milliseconds)."""
    base = importlib.import_module("._core", __name__)
    info = dict(base.build_info())
    level = base.cpu_level()
    want = os.environ.get("FASTLOSS_CYTHON_VARIANT", "auto").strip().lower() or "auto"
    built = [info["variant"]] + [name for name, mod_name, _ in _VARIANTS[::-1] if _built(mod_name)]
    if want not in ("auto", "baseline") and want not in built:
        raise ImportError(f"FASTLOSS_CYTHON_VARIANT={want!r} is not built here "
                          f"(built: {', '.join(built)})")
    chosen = base
    for name, mod_name, need in _VARIANTS:
        if want not in ("auto", name) or name not in built:
            continue
        if level < need:
            if want == name:
                raise ImportError(f"FASTLOSS_CYTHON_VARIANT={want!r}: this CPU lacks its "
                                  f"instructions (x86-64 level {level})")
            continue
        mod = importlib.import_module("." + mod_name, __name__)
        if mod.build_info()["build_id"] != info["build_id"]:
            if want == name:
                raise ImportError(f"{mod_name} is left over from another build; rebuild")
            continue  # left over from an earlier build: never mix builds
        chosen = mod
        break
    result = dict(chosen.build_info())
    result.update(cpu_level=level, variants_built=built)
    return chosen, result


AVAILABLE = False
WHY_UNAVAILABLE = ""
BUILD_INFO = {}
_core = None

try:
    _core, BUILD_INFO = _select()
except Exception as exc:  # not built, or built for another Python
    if not glob.glob(os.path.join(_HERE, "_core*.so")) + glob.glob(os.path.join(_HERE, "_core*.pyd")):
        why = f"the extension is not built (no _core module in {_HERE})"
    else:
        why = f"the extension does not import ({type(exc).__name__}: {exc})"
    WHY_UNAVAILABLE = (f"{why}; build it with `pip install -e . --no-build-isolation` "
                       "(needs Cython and a C compiler; see setup.py)")
else:
    AVAILABLE = True

# contract functions that also take float16 / bfloat16 x (float32 targets) and return float32,
# on logits or probabilities: each block is widened exactly in the thread that computes it
HALF_NATIVE = frozenset({"sparse_ce", "sparse_ce_grad", "categorical_ce", "categorical_ce_grad",
                         "bce", "bce_grad", "kl", "kl_grad", "mse", "mse_grad",
                         "logsumexp_rows", "softmax_rows"})

_KERNELS = ("argmax_rows", "bce", "bce_grad", "categorical_ce", "categorical_ce_grad",
            "elementwise", "kl", "kl_grad", "logsumexp_rows", "mse", "mse_grad", "softmax_rows",
            "sparse_ce", "sparse_ce_grad")


def _bind(core, build):
    """Make ``core`` (one build of the extension) the one this package's functions call."""
    global _core, BUILD_INFO
    _core, BUILD_INFO = core, build
    globals().update({name: getattr(core, name) for name in _KERNELS})


def reselect():
    """Choose the build again for the current ``FASTLOSS_CYTHON_VARIANT`` (what
    ``fastloss.refresh_config()`` calls); returns its variant name. Raises ImportError for a
    build that is not there or that this CPU cannot run, keeping the build in use."""
    core, build = _select()
    if core is not _core:
        _bind(core, build)
    return BUILD_INFO.get("variant")


if AVAILABLE:
    _bind(_core, BUILD_INFO)

    _N_CPU = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)

    def first_outside_unit_interval(x):
        """First flat index with x < 0 or x > 1 (NaN is not outside), or -1."""
        return _core.first_outside_unit_interval(x, _N_CPU)

else:

    def _unavailable(*args, **kwargs):
        raise RuntimeError(f"the fastloss Cython backend is not available: {WHY_UNAVAILABLE}")

    bce = bce_grad = categorical_ce = categorical_ce_grad = kl = kl_grad = _unavailable
    logsumexp_rows = mse = mse_grad = softmax_rows = sparse_ce = sparse_ce_grad = _unavailable
    first_outside_unit_interval = argmax_rows = elementwise = _unavailable
