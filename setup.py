"""Build script: maps kernels/ to fastloss.kernels and builds the Cython backend.

The Cython backend (``fastloss.kernels.cython``) is optional: without Cython or a C
compiler the install still succeeds, with a warning, and the NumPy / Numba backends
serve. ``FASTLOSS_REQUIRE_CYTHON=1`` turns that warning into an error (CI does this).

Compiler flags (recorded in ``fastloss.kernels.cython.BUILD_INFO``):

* ``-O3 -ffp-contract=off -fno-math-errno -fno-trapping-math``, never ``-ffast-math``:
  the kernels need IEEE semantics (NaN/inf, signed zeros; denormals stay enabled) and
  their deterministic sums must not be reassociated or contracted into FMAs;
* ``-fopenmp`` on compile *and* link when a probe program builds and runs with it (else
  the kernels run on one thread and the build says so);
* the SIMD level, chosen by ``FASTLOSS_MARCH``:

  - unset or ``dispatch`` (the default): on x86-64 the kernels are compiled three times,
    ``_core`` for the compiler's default target (runs on any x86-64), ``_core_avx2`` with
    ``-march=x86-64-v3`` (AVX2 + FMA) and ``_core_avx512`` with ``-march=x86-64-v4``; at
    import the package picks the best one the CPU supports. This is portable (a wheel
    built this way runs everywhere) and fast: on an AVX-512 machine the x86-64-v4 build
    is 1.6x (cross-entropy) to 2x (BCE) faster than the AVX2 one, which is itself several
    times faster than SSE2 code without FMA. Elsewhere one module is built.
  - ``native`` or any other ``-march`` value: one module for that target. ``native``
    suits a source install used on the build machine only; a wheel built that way dies
    with SIGILL on an older CPU.
  - ``none``: one module, no ``-march`` (the compiler's default target).

  At run time ``FASTLOSS_CYTHON_VARIANT=baseline|avx2|avx512`` forces one of the
  dispatch builds (testing, benchmarking).
"""

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

CYDIR = os.path.join("kernels", "cython")
PKG = "fastloss.kernels.cython"
REQUIRE = os.environ.get("FASTLOSS_REQUIRE_CYTHON", "") == "1"
MARCH = os.environ.get("FASTLOSS_MARCH", "").strip() or "dispatch"
X86_64 = platform.machine().lower() in ("x86_64", "amd64")

BASE_FLAGS = ["-O3", "-ffp-contract=off", "-fno-math-errno", "-fno-trapping-math"]
QUIET_FLAGS = ["-Wno-unused-function", "-Wno-maybe-uninitialized", "-Wno-unreachable-code"]
# (module, -march) of the dispatch build; None: the compiler's default target
DISPATCH = [("_core", None), ("_core_avx2", "x86-64-v3"), ("_core_avx512", "x86-64-v4")]
VARIANT_NAMES = {"_core": "baseline", "_core_avx2": "avx2", "_core_avx512": "avx512"}
# SIMD builds get an import guard (_guard.c, compiled for the default target): the x86-64
# level the CPU must have, and the instructions named in the ImportError otherwise
GUARDS = {"x86-64-v3": (3, "AVX2, FMA, BMI2"), "x86-64-v4": (4, "AVX-512 F/BW/CD/DQ/VL")}
GUARD_SOURCE = os.path.join(CYDIR, "_guard.c")

OPENMP_PROBE = textwrap.dedent("""\
    #include <omp.h>
    int main(void) {
        int n = 0;
        #pragma omp parallel reduction(+:n) num_threads(2)
        n += 1;
        return n >= 1 && omp_get_max_threads() > 0 ? 0 : 1;
    }
    """)
TRIVIAL = "int main(void) { return 0; }\n"


class CythonBackendRequired(RuntimeError):
    pass


def _skip(reason):
    """No Cython backend: warn (or fail under FASTLOSS_REQUIRE_CYTHON=1).

    pip shows a successful build's log only with ``-v``; at run time
    ``fastloss.kernels.cython.WHY_UNAVAILABLE`` (and ``fastloss info``) say it again."""
    if REQUIRE:
        raise CythonBackendRequired(f"fastloss: the Cython backend could not be built "
                                    f"({reason}) and FASTLOSS_REQUIRE_CYTHON=1 is set")
    msg = (f"fastloss: the Cython backend is not built ({reason}); the NumPy and Numba "
           "backends will serve. Set FASTLOSS_REQUIRE_CYTHON=1 to make this an error.")
    warnings.warn(msg, stacklevel=2)
    print("WARNING: " + msg, file=sys.stderr)


def _compiles(compiler, source, extra_compile=(), extra_link=(), run=False):
    """True if ``source`` compiles and links (and runs, if asked) with the flags."""
    tmp = tempfile.mkdtemp(prefix="fastloss-probe-")
    try:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as f:
            f.write(source)
        devnull = os.open(os.devnull, os.O_WRONLY)
        saved = os.dup(1), os.dup(2)
        os.dup2(devnull, 1)  # the probes' commands and expected errors stay off the log
        os.dup2(devnull, 2)
        try:
            objs = compiler.compile([src], output_dir=tmp, extra_postargs=list(extra_compile))
            compiler.link_executable(objs, "probe", output_dir=tmp,
                                     extra_postargs=list(extra_link))
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in (*saved, devnull):
                os.close(fd)
        if run:
            exe = os.path.join(tmp, "probe")
            return subprocess.run([exe], capture_output=True, timeout=60).returncode == 0
        return True
    except Exception:
        return False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _c_string(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _plan():
    """[(module, -march or None)] to build."""
    if MARCH == "dispatch":
        return DISPATCH if X86_64 else [("_core", None)]
    if MARCH.lower() == "none":
        return [("_core", None)]
    return [("_core", MARCH)]


def _build_id(plan):
    h = hashlib.sha256()
    for name in sorted(os.listdir(CYDIR)):
        if name.endswith((".pyx", ".pxi", ".h")) or name == os.path.basename(GUARD_SOURCE):
            with open(os.path.join(CYDIR, name), "rb") as f:
                h.update(name.encode() + b"\0" + f.read())
    h.update(json.dumps([MARCH, plan, BASE_FLAGS]).encode())
    return h.hexdigest()[:16]


class BuildExt(build_ext):
    """build_ext that probes the flags and never fails the install unless asked to."""

    def initialize_options(self):
        super().initialize_options()
        self.parallel = max(1, min(3, os.cpu_count() or 1))  # the variants build in parallel

    def run(self):
        try:
            super().run()
        except CythonBackendRequired:
            raise
        except Exception as exc:  # no compiler at all, broken toolchain, ...
            _skip(f"{type(exc).__name__}: {exc}")

    def build_extensions(self):
        cc = self.compiler
        if not _compiles(cc, TRIVIAL):
            _skip("no working C compiler")
            return
        flags = [f for f in BASE_FLAGS if _compiles(cc, TRIVIAL, [f])]
        if "-ffp-contract=off" not in flags:
            _skip("the C compiler does not accept -ffp-contract=off (needed for exact sums)")
            return
        omp = ["-fopenmp"] if _compiles(cc, OPENMP_PROBE, ["-fopenmp"], ["-fopenmp"],
                                        run=True) else []
        if not omp:
            print("WARNING: fastloss: OpenMP is not available; the Cython kernels will run on "
                  "one thread (n_threads is ignored)", file=sys.stderr)
        quiet = [f for f in QUIET_FLAGS if _compiles(cc, TRIVIAL, [f])]
        plan = dict(_plan())
        build_id = _build_id(sorted(plan.items(), key=lambda kv: kv[0]))
        keep = []
        for ext in self.extensions:
            mod = ext.name.rsplit(".", 1)[1]
            march = plan.get(mod)
            simd = [f"-march={march}"] if march else []
            if simd and not _compiles(cc, TRIVIAL, simd):
                if mod == "_core":
                    print(f"fastloss: the compiler rejects {simd[0]}; building for its default "
                          "target", file=sys.stderr)
                    simd = []
                else:
                    print(f"fastloss: the compiler rejects {simd[0]}; {mod} is not built",
                          file=sys.stderr)
                    continue
            args = flags + simd + omp
            ext.extra_compile_args = args + quiet
            ext.extra_link_args = list(omp)
            variant = VARIANT_NAMES.get(mod, mod) if MARCH == "dispatch" and X86_64 else MARCH
            ext.define_macros = list(ext.define_macros or []) + [
                ("FL_BUILD_FLAGS", _c_string(" ".join(args))),
                ("FL_VARIANT", _c_string(variant)),
                ("FL_BUILD_ID", _c_string(build_id)),
            ]
            ext.fl_variant = variant
            ext.fl_guard = None
            if simd and march in GUARDS and X86_64:
                # the Cython init (of _core.c) is renamed; _guard.c's PyInit_<mod> checks the
                # CPU, then calls it
                ext.define_macros.append(("PyInit__core", "fl_simd_PyInit__core"))
                ext.fl_guard = (mod, *GUARDS[march], flags + quiet)
            keep.append(ext)
        self.extensions = keep
        super().build_extensions()

    def build_extension(self, ext):
        t0 = time.monotonic()
        # one line per variant, shown by `pip install -v` (the compile takes 20-40 s each)
        print(f"fastloss: compiling {ext.name} ({getattr(ext, 'fl_variant', '?')}) ...", flush=True)
        try:
            if getattr(ext, "fl_guard", None):
                ext.extra_objects = list(ext.extra_objects or []) + [self._compile_guard(ext)]
            super().build_extension(ext)
            print(f"fastloss: {ext.name} built in {time.monotonic() - t0:.0f} s", flush=True)
        except CythonBackendRequired:
            raise
        except Exception as exc:
            if ext.name.endswith("._core"):
                _skip(f"compiling {ext.name} failed: {type(exc).__name__}: {exc}")
            else:  # an optional faster variant: the baseline still serves
                print(f"WARNING: fastloss: {ext.name} was not built ({type(exc).__name__}: "
                      f"{exc}); the baseline build serves", file=sys.stderr)


    def _compile_guard(self, ext):
        """Compile _guard.c for the default target (no -march) as the module's PyInit."""
        mod, level, isa, flags = ext.fl_guard
        out = os.path.join(self.build_temp, "guard_" + mod)  # one folder each: parallel builds
        objs = self.compiler.compile(
            [GUARD_SOURCE], output_dir=out, include_dirs=[CYDIR],
            macros=[("FL_GUARD_MODULE", mod), ("FL_GUARD_LEVEL", str(level)),
                    ("FL_GUARD_ISA", _c_string(isa))],
            extra_postargs=list(flags))
        return objs[0]


def _extensions():
    """The Cython module, cythonized once; every SIMD build compiles the same C code.

    The generated ``_core.c`` is copied to ``<variant>.c`` (distinct object files for the
    parallel compiles); a SIMD build's init is renamed and reached through _guard.c. The
    functions of every build say ``__module__ == "fastloss.kernels.cython._core"``."""
    try:
        from Cython.Build import cythonize
    except Exception as exc:
        _skip(f"Cython is not importable: {type(exc).__name__}: {exc}")
        return []
    depends = [os.path.join(CYDIR, name) for name in ("_kernels.pxi", "fastloss_math.h",
                                                      "fastloss_cpu.h", "_guard.c")]
    core = Extension(f"{PKG}._core", sources=[os.path.join(CYDIR, "_core.pyx")],
                     include_dirs=[CYDIR], depends=depends)
    try:
        [core] = cythonize([core], compiler_directives={"language_level": 3}, quiet=True)
    except BaseException as exc:  # Cython reports compile errors with SystemExit / CompileError
        if isinstance(exc, (KeyboardInterrupt, CythonBackendRequired)):
            raise
        _skip(f"cythonize failed: {type(exc).__name__}: {exc}")
        return []
    exts = [core]
    core_c = core.sources[0]
    for mod, _ in _plan():
        if mod == "_core":
            continue
        copy = os.path.join(os.path.dirname(core_c), f"{mod}.c")
        if not (os.path.exists(copy) and os.path.getmtime(copy) >= os.path.getmtime(core_c)):
            shutil.copyfile(core_c, copy)
        exts.append(Extension(f"{PKG}.{mod}", sources=[copy], include_dirs=[CYDIR],
                              depends=depends + [core_c]))
    return exts


setup(
    package_dir={"fastloss": "src/fastloss", "fastloss.kernels": "kernels"},
    packages=[
        "fastloss",
        "fastloss.bench",
        "fastloss.cli",
        "fastloss.dask",
        "fastloss.evaluation",
        "fastloss.keras",
        "fastloss.losses",
        "fastloss.torch",
        "fastloss.kernels",
        "fastloss.kernels.reference",
        "fastloss.kernels.numba",
        "fastloss.kernels.cython",
    ],
    # wheels carry the compiled modules only (an sdist still has the sources)
    exclude_package_data={"fastloss.kernels.cython": ["*.c", "*.pyx", "*.pxi", "*.h"]},
    ext_modules=_extensions(),
    cmdclass={"build_ext": BuildExt},
)
