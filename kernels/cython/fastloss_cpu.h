/* The x86-64 level of this CPU, for choosing (and guarding) the SIMD builds.
 *
 * Included by fastloss_math.h and by _guard.c. _guard.c is always compiled for the
 * compiler's default target (never with the -march of a SIMD build), so that this check
 * can run on any x86-64 CPU before one instruction of a SIMD build executes.
 */
#ifndef FASTLOSS_CPU_H
#define FASTLOSS_CPU_H

#include <stdlib.h>

/* x86-64 micro-architecture level this CPU (and OS) supports: 4 = x86-64-v4 (AVX-512
 * F/BW/CD/DQ/VL), 3 = x86-64-v3 (AVX2, FMA, BMI2, ...), 2, 1; 0 elsewhere. */
static int fl_cpu_level_detected(void)
{
#if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__)
    __builtin_cpu_init();
#if !defined(__clang__) && __GNUC__ >= 12
    if (__builtin_cpu_supports("x86-64-v4")) return 4;
    if (__builtin_cpu_supports("x86-64-v3")) return 3;
    if (__builtin_cpu_supports("x86-64-v2")) return 2;
    return 1;
#else
    int v3 = __builtin_cpu_supports("avx") && __builtin_cpu_supports("avx2")
             && __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi")
             && __builtin_cpu_supports("bmi2");
    int v4 = v3 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq")
             && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl")
             && __builtin_cpu_supports("avx512cd");
    return v4 ? 4 : v3 ? 3 : 1;
#endif
#else
    return 0;
#endif
}

/* The level used: the detected one, lowered (never raised) by FASTLOSS_MAX_CPU_LEVEL=1..4,
 * which makes this machine behave like an older CPU for the variant choice and the
 * import guard (testing the dispatch of an AVX2-only or baseline-only machine). */
static int fl_cpu_level(void)
{
    int level = fl_cpu_level_detected();
    const char *cap = getenv("FASTLOSS_MAX_CPU_LEVEL");
    if (cap != NULL && cap[0] >= '1' && cap[0] <= '4' && cap[1] == '\0' && cap[0] - '0' < level)
        level = cap[0] - '0';
    return level;
}

#endif /* FASTLOSS_CPU_H */
