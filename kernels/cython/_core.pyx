# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, nonecheck=False, cpow=True
"""fastloss Cython kernels.

The code is in _kernels.pxi. setup.py cythonizes this module once and compiles the C
code once per SIMD level (_core: the compiler's default target; _core_avx2, _core_avx512:
x86-64-v3/v4, each behind the CPU check of _guard.c); fastloss.kernels.cython imports the
best one this CPU runs.
"""

include "_kernels.pxi"
include "_fast.pxi"
