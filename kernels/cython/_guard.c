/* Import guard of a SIMD build of the Cython kernels (_core_avx2, _core_avx512).
 *
 * Every build compiles the same Cython output, _core.c. For a SIMD build setup.py
 * compiles it with the build's -march flags and its init function renamed to
 * fl_simd_PyInit__core (-DPyInit__core=...), and links in this file, compiled for the
 * compiler's default target, as the real PyInit_<module>. It checks the CPU first: on a
 * CPU without the build's instructions the import raises ImportError instead of dying
 * with SIGILL somewhere in the module's initialisation.
 *
 * Defined by setup.py: FL_GUARD_MODULE (e.g. _core_avx2), FL_GUARD_LEVEL (3 or 4) and
 * FL_GUARD_ISA (a description of the instructions, for the message).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "fastloss_cpu.h"

#define FL_CAT_(a, b) a##b
#define FL_CAT(a, b) FL_CAT_(a, b)
#define FL_STR_(a) #a
#define FL_STR(a) FL_STR_(a)

PyMODINIT_FUNC fl_simd_PyInit__core(void);

PyMODINIT_FUNC FL_CAT(PyInit_, FL_GUARD_MODULE)(void)
{
    int level = fl_cpu_level();
    if (level < FL_GUARD_LEVEL) {
        PyErr_Format(PyExc_ImportError,
                     "fastloss.kernels.cython." FL_STR(FL_GUARD_MODULE) " is compiled for "
                     "x86-64-v%d (" FL_GUARD_ISA ") and this CPU supports only x86-64-v%d: it "
                     "cannot be loaded here. Import fastloss.kernels.cython, which picks the "
                     "best build this CPU runs (FASTLOSS_CYTHON_VARIANT=baseline forces the "
                     "portable one).", FL_GUARD_LEVEL, level);
        return NULL;
    }
    return fl_simd_PyInit__core();
}
