# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, nonecheck=False, cpow=True
"""fastloss Cython kernels, baseline build (or the single build of FASTLOSS_MARCH).

The code is in _kernels.pxi: setup.py compiles it once per SIMD level and
fastloss.kernels.cython imports the best one this CPU runs.
"""

include "_kernels.pxi"
