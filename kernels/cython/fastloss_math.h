/* Vectorisable exp / log / log1p for the fastloss Cython kernels.
 *
 * GCC vectorises calls to glibc's exp/log only under -ffast-math (libmvec), which
 * fastloss never uses: it would flush denormals for the whole process and let the
 * compiler reassociate the deterministic block sums. These functions are plain
 * branch-free C (range reduction + polynomial, selects instead of branches, bit
 * manipulation through memcpy), so `gcc -O3` vectorises every loop that calls them,
 * and a vectorised call gives the same bits as a scalar one (the file is compiled
 * with -ffp-contract=off and uses no fused multiply-add, so every SIMD build of the
 * kernels gives the same bits).
 *
 * Every function takes and returns a double. Two accuracy grades:
 *   fl_exp64 / fl_log64 / fl_log1p64  about 1 ulp of double (float64 kernels);
 *   fl_exp32 / fl_log32 / fl_log1p32  relative error < 1e-10 (~2^-33): enough for a
 *       result rounded to float32 to be within 1 ulp of the correctly rounded one.
 *       Used by the float32 kernels, where they save 4-5 multiply-adds per call.
 *   fl_expneg32 (x <= 0) and fl_log1p01_32 (0 <= x <= 1): float32-grade variants for
 *       the hot loops, without the special-value handling their domain does not need.
 * Measured by tests/kernels/test_cython_backend.py (the float32 grade exhaustively over every
 * float32 input of its domain, slow run; no FMA): float32 grade max 1 ulp after
 * rounding to float32, correctly rounded for all but 0.6-1.1 per million inputs;
 * float64 grade max 0.97 (exp), 0.81 (log), 1.44 (log1p) ulp.
 *
 * Special values follow C99 / NumPy: exp(-inf) = 0, exp(+inf) = inf, exp overflows to
 * inf above 709.78 and returns correctly rounded subnormals below -708.4; log(0) = -inf,
 * log(x < 0) = NaN, log(+inf) = inf; log1p(-1) = -inf, log1p(x < -1) = NaN; NaN in,
 * NaN out.
 *
 * Polynomials: fl_log64 uses the minimax coefficients Lg1..Lg7 of fdlibm e_log.c
 * (Sun Microsystems 1993; same reduction, log(1+f) = f - hfsq + s*(hfsq + R(s^2)),
 * s = f/(2+f)). The other three are Chebyshev interpolants computed in 60-digit
 * mpmath (near-minimax; degree chosen for the stated bound):
 *   exp(r) = 1 + r + r^2 * P(r) on |r| <= ln2/2;  P interpolates (e^r - 1 - r)/r^2 at
 *     deg+1 Chebyshev nodes. fl_exp64: deg 10, max rel. error 3.4e-19;
 *     fl_exp32: deg 6, 4.3e-12.
 *   log32: R(z) = z*Q(z), Q interpolates (log((1+s)/(1-s)) - 2s)/s^3 in z = s^2 on
 *     [0, 0.02944]: deg 3, max rel. error 1.7e-11.
 */
#ifndef FASTLOSS_MATH_H
#define FASTLOSS_MATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>
#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

/* No fused multiply-add in any build: the baseline x86-64 build has no FMA instruction
 * (glibc's software fma() is ~100x slower), and the kernels must return the same bits on
 * every SIMD build (a mixed cluster must reproduce the single-machine result). So
 * FL_FMA(a, b, c) is a*b + c with two roundings everywhere (-ffp-contract=off keeps the
 * compiler from fusing it); the error bounds above are those measured without FMA. */
#define FL_FMA(a, b, c) ((a) * (b) + (c))
#define FL_HAVE_FMA 0

static inline uint64_t fl_asu64(double x) { uint64_t u; memcpy(&u, &x, 8); return u; }
static inline double fl_asf64(uint64_t u) { double x; memcpy(&x, &u, 8); return x; }

#define FL_SHIFTER 6755399441055744.0          /* 1.5 * 2^52: x + SHIFTER rounds x to an integer */
#define FL_LOG2E 1.44269504088896338700e+00
#define FL_LN2HI 6.93147180369123816490e-01    /* fdlibm: 32 significant bits, k*LN2HI is exact */
#define FL_LN2LO 1.90821492927058770002e-10
#define FL_INF ((double)INFINITY)
#define FL_NAN ((double)NAN)
#define FL_NEG_ZERO (-0.0)  /* the identity of IEEE addition: -0.0 + x == x for every x */

/* -------------------------------------------------------------------------- exp */

/* 2^k * p for k = the integer held in the low bits of t = k + SHIFTER, in two steps
 * so that results in the subnormal range are rounded once, correctly. */
static inline double fl_scale2k(double p, double t, double kd)
{
    double t1 = kd * 0.5 + FL_SHIFTER;              /* k1 = round(k/2): |k1|, |k-k1| <= 539 */
    uint64_t b = fl_asu64(t), b1 = fl_asu64(t1);
    uint64_t k2 = b - b1;                           /* k - k1 (two's complement) */
    double s1 = fl_asf64((b1 << 52) + ((uint64_t)1023 << 52));
    double s2 = fl_asf64((k2 << 52) + ((uint64_t)1023 << 52));
    return (p * s1) * s2;
}

/* Shared range reduction: x = k ln2 + r, |r| <= ln2/2 (clamped so |k| <= 1077). */
#define FL_EXP_REDUCE(x, xc, t, kd, r)                                   \
    double xc = (x) < -746.0 ? -746.0 : (x);  /* NaN passes through */   \
    xc = xc > 710.0 ? 710.0 : xc;                                       \
    double t = FL_FMA(xc, FL_LOG2E, FL_SHIFTER);                        \
    double kd = t - FL_SHIFTER;                                         \
    double r = FL_FMA(kd, -FL_LN2HI, xc);                               \
    r = FL_FMA(kd, -FL_LN2LO, r);

static inline double fl_exp64(double x)
{
    FL_EXP_REDUCE(x, xc, t, kd, r)
    double p = 2.091467944897855e-09;
    p = FL_FMA(p, r, 2.5105206475334834e-08);
    p = FL_FMA(p, r, 2.7557273661174726e-07);
    p = FL_FMA(p, r, 2.75572554255029e-06);
    p = FL_FMA(p, r, 2.4801587325533502e-05);
    p = FL_FMA(p, r, 1.9841269874800683e-04);
    p = FL_FMA(p, r, 1.3888888888883752e-03);
    p = FL_FMA(p, r, 8.333333333326141e-03);
    p = FL_FMA(p, r, 4.166666666666667e-02);
    p = FL_FMA(p, r, 1.666666666666667e-01);
    p = FL_FMA(p, r, 0.5);
    double e = FL_FMA(r * r, p, r) + 1.0;
    return fl_scale2k(e, t, kd);
}

/* The float32 grade reduces with one ln2 constant: r = x - k*ln2 then carries an
 * absolute error below 2^-53 * 746 + 1077 * 2^-54 < 1.6e-13, far inside its 1e-10 bound,
 * and saves a multiply and an add over the two-constant (exact) reduction. */
#define FL_LN2 6.93147180559945286227e-01
#define FL_EXP32_REDUCE(x, xc, t, kd, r)                                 \
    double xc = (x) < -746.0 ? -746.0 : (x);  /* NaN passes through */   \
    xc = xc > 710.0 ? 710.0 : xc;                                       \
    double t = FL_FMA(xc, FL_LOG2E, FL_SHIFTER);                        \
    double kd = t - FL_SHIFTER;                                         \
    double r = FL_FMA(kd, -FL_LN2, xc);

static inline double fl_exp32(double x)
{
    FL_EXP32_REDUCE(x, xc, t, kd, r)
    double p = 2.48595783333601e-05;
    p = FL_FMA(p, r, 1.9899274069434545e-04);
    p = FL_FMA(p, r, 1.3888854049481818e-03);
    p = FL_FMA(p, r, 8.333298483621828e-03);
    p = FL_FMA(p, r, 4.1666666718981143e-02);
    p = FL_FMA(p, r, 1.6666666718997808e-01);
    p = FL_FMA(p, r, 0.5);
    double e = FL_FMA(r * r, p, r) + 1.0;
    return fl_scale2k(e, t, kd);
}

/* exp(x) for x <= 0 (or -inf, NaN), float32 grade, for the hot loops (softmax
 * denominators, BCE): one scaling step, and results below 2^-1022 (x < -708) are
 * flushed to 0, which no float32 result can show. Larger x give garbage. */
static inline double fl_expneg32(double x)
{
    double t = FL_FMA(x, FL_LOG2E, FL_SHIFTER);
    double kd = t - FL_SHIFTER;
    double r = FL_FMA(kd, -FL_LN2, x);  /* one constant, as fl_exp32 */
    /* fl_exp32's polynomial in Estrin's order: three short chains instead of one of seven
     * multiply-adds, 1.15x the loop's throughput on AVX2 (benchmarks/proto_exp_variants.c) */
    double r2 = r * r, r4 = r2 * r2;
    double a = FL_FMA(1.6666666718997808e-01, r, 0.5);
    double b = FL_FMA(8.333298483621828e-03, r, 4.1666666718981143e-02);
    double c = FL_FMA(1.9899274069434545e-04, r, 1.3888854049481818e-03);
    double p = FL_FMA(FL_FMA(2.48595783333601e-05, r2, c), r4, FL_FMA(b, r2, a));
    double e = FL_FMA(r2, p, r) + 1.0;
    /* e * 2^k by adding k to e's exponent: exact, e * 2^k being normal for x >= -708;
     * a NaN keeps its bits (the low 12 bits of a NaN's t are 0) */
    double s = fl_asf64(fl_asu64(e) + (fl_asu64(t) << 52));
    return x < -708.0 ? 0.0 : s;
}

/* -------------------------------------------------------------------------- log */

/* x = 2^k * (1 + f) with 1 + f in [sqrt(2)/2, sqrt(2)); returns f, sets *kd = k.
 * Valid for finite x > 0 (subnormals are scaled up first); the callers patch the
 * special values. */
static inline double fl_log_reduce(double x, double *kd)
{
    int sub = x < 0x1p-1022;
    double xs = sub ? x * 0x1p54 : x;
    /* musl's trick: bias the exponent so the mantissa lands in [sqrt2/2, sqrt2) */
    uint64_t u = fl_asu64(xs) + (0x3ff0000000000000ULL - 0x3fe6a09e667f3bcdULL);
    uint64_t e = u >> 52;                               /* k + 1023 (+54 if sub) */
    double m = fl_asf64((u & 0x000fffffffffffffULL) + 0x3fe6a09e667f3bcdULL);
    double ed = fl_asf64(e | 0x4330000000000000ULL) - 0x1p52;  /* exact int -> double */
    *kd = ed - (sub ? 1077.0 : 1023.0);
    return m - 1.0;                                     /* exact (Sterbenz) */
}

static inline double fl_log_special(double x, double res)
{
    res = x == FL_INF ? x : res;
    res = x == 0.0 ? -FL_INF : res;
    res = x < 0.0 ? FL_NAN : res;
    return x != x ? x : res;
}

static inline double fl_log64(double x)
{
    double kd;
    double f = fl_log_reduce(x, &kd);
    double hfsq = 0.5 * f * f;
    double s = f / (2.0 + f);
    double z = s * s, w = z * z;
    double t1 = w * FL_FMA(w, FL_FMA(w, 1.531383769920937332e-01, 2.222219843214978396e-01),
                           3.999999999940941908e-01);
    double t2 = z * FL_FMA(w, FL_FMA(w, FL_FMA(w, 1.479819860511658591e-01,
                                               1.818357216161805012e-01),
                                     2.857142874366239149e-01),
                           6.666666666666735130e-01);
    double R = t2 + t1;
    double res = kd * FL_LN2HI - ((hfsq - FL_FMA(s, hfsq + R, kd * FL_LN2LO)) - f);
    return fl_log_special(x, res);
}

static inline double fl_log32(double x)
{
    double kd;
    double f = fl_log_reduce(x, &kd);
    double hfsq = 0.5 * f * f;
    double s = f / (2.0 + f);
    double z = s * s;
    double R = z * FL_FMA(z, FL_FMA(z, FL_FMA(z, 0.233304683103737, 0.28550820775753505),
                                    0.4000012184016053),
                          0.6666666655449666);
    double res = kd * FL_LN2HI - ((hfsq - FL_FMA(s, hfsq + R, kd * FL_LN2LO)) - f);
    return fl_log_special(x, res);
}

/* ------------------------------------------------------------------------ log1p */

/* log1p(x) = log(u) + c/u with u = 1 + x rounded and c = x - (u - 1) its rounding
 * error (exact; u - 1 is exact). x = +inf and x = -1 are patched (inf - inf, 0/0). */
static inline double fl_log1p_special(double x, double res)
{
    res = x == FL_INF ? x : res;
    /* x < -1 (-inf too) selects its NaN: log(u) and the correction may both be NaNs of
     * opposite signs there, and which one an addition returns depends on the operand
     * order the compiler picked (it differs between vector and scalar code) */
    res = x < -1.0 ? FL_NAN : res;
    return x == -1.0 ? -FL_INF : res;
}

static inline double fl_log1p64(double x)
{
    double u = 1.0 + x;
    double res = fl_log64(u) + (x - (u - 1.0)) / u;
    return fl_log1p_special(x, res);
}

/* float32 grade: 1/u ~ 2 - u is enough for the correction, which only matters when
 * u is near 1 (|c| <= 2^-53 u; for u >= 2 it is below the 1e-10 bound and dropped). */
static inline double fl_log1p32(double x)
{
    double u = 1.0 + x;
    double c = x - (u - 1.0);
    double res = fl_log32(u) + c * (u < 2.0 ? 2.0 - u : 0.0);
    return fl_log1p_special(x, res);
}

/* log1p(x) for 0 <= x <= 1, float32 grade, for BCE's log1p(exp(-|x|)): 1 + x is
 * reduced without forming it (f = x, or (x - 1)/2 with k = 1 above sqrt(2) - 1), so
 * there is no exponent extraction and no rounding-error correction. NaN gives garbage
 * (the caller selects NaN). */
static inline double fl_log1p01_32(double x)
{
    /* one select, as bit masks: two selects on one condition let GCC duplicate the
     * rest of the function (division included) into both arms */
    uint64_t big = -(uint64_t)(x > 0.41421356237309503);
    double f = fl_asf64((fl_asu64((x - 1.0) * 0.5) & big) | (fl_asu64(x) & ~big));
    double kd = fl_asf64(fl_asu64(1.0) & big);
    double s = f / (2.0 + f);
    double z = s * s;
    double R = z * FL_FMA(z, FL_FMA(z, FL_FMA(z, 0.233304683103737, 0.28550820775753505),
                                    0.4000012184016053),
                          0.6666666655449666);
    /* log(1+f) = 2s + s*R directly: fdlibm's f - hfsq + s*(hfsq + R) only buys
     * double-grade rounding; here a few ulps of double are far inside 1e-10, and k*ln2
     * (k = 0 or 1) needs no split constant */
    return FL_FMA(kd, FL_LN2, s * (2.0 + R));
}

/* ------------------------------------------------------------ half precision */

/* dst[i] = src[i] widened exactly to float32, src being float16 (kind 1) or bfloat16
 * (kind 2) bit patterns. Plain integer and float32 operations that GCC vectorises in every
 * build (no F16C needed, so the baseline build gives the same bits): bfloat16 is the top
 * half of a float32; float16 is rebased (exponent + 112, mantissa << 13), its infinities
 * and NaNs (payload kept) get the all-ones exponent, and zeros and subnormals (exact
 * multiples of 2^-24) are computed in float32. The same bits as NumPy's astype(float32). */
static inline float fl_asf32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static inline uint32_t fl_asu32(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

static inline float fl_half1(uint32_t h, int kind)
{
    if (kind == 2)
        return fl_asf32(h << 16);
    uint32_t em = h & 0x7fffu;
    uint32_t bits = (em << 13) + (112u << 23);
    bits = em >= 0x7c00u ? bits + (112u << 23) : bits;
    uint32_t sub = fl_asu32((float)(int32_t)em * 0x1p-24f);
    bits = em < 0x400u ? sub : bits;
    return fl_asf32(bits | ((h & 0x8000u) << 16));
}

static void fl_widen_half(const uint16_t *src, float *dst, int64_t n, int kind)
{
    int64_t i;
    if (kind == 2) {
        for (i = 0; i < n; i++)
            dst[i] = fl_half1(src[i], 2);
        return;
    }
    for (i = 0; i < n; i++)
        dst[i] = fl_half1(src[i], 1);
}

/* The max of a half row's values, NaN ignored (-inf for an empty or all-NaN row), read from
 * its bits: _row_max's order (32 lanes from 64 values on, then the rest in order), so the
 * same value, the sign of a zero included. */
static inline float fl_half_row_max_k(const uint16_t *xh, int64_t n, int kind)
{
    float mv[32], m = -INFINITY, v;
    int64_t q, j = 0;
    int k;
    if (n >= 64) {
        for (k = 0; k < 32; k++)
            mv[k] = -INFINITY;
        for (q = 0; q < n / 32; q++)
            for (k = 0; k < 32; k++) {
                v = fl_half1(xh[q * 32 + k], kind);
                mv[k] = v > mv[k] ? v : mv[k];
            }
        for (k = 0; k < 32; k++)
            m = mv[k] > m ? mv[k] : m;
        j = n - n % 32;
    }
    for (; j < n; j++) {
        v = fl_half1(xh[j], kind);
        m = v > m ? v : m;
    }
    return m;
}

static inline float fl_half_row_max(const uint16_t *xh, int64_t n, int kind)
{
    /* one call per kind, so each loop is compiled for a constant kind (and vectorised) */
    return kind == 2 ? fl_half_row_max_k(xh, n, 2) : fl_half_row_max_k(xh, n, 1);
}

/* Prefetch for reading (never faults, whatever the address). */
#if defined(__GNUC__)
#define fl_prefetch(p) __builtin_prefetch((const void *)(p), 0, 3)
#else
#define fl_prefetch(p) ((void)(p))
#endif

/* ------------------------------------------------------- half-precision tables */

/* A half value has only 65536 bit patterns, so the kernels look up exp(x) and
 * log1p(exp(-|x|)) of half input in tables of doubles instead of evaluating them: a gather
 * costs a fraction of the ~30 vector instructions of fl_expneg32, and the entries are
 * float64-grade (fl_exp64 / fl_log1p64, so every build and every machine fills them with
 * the same bits). Built once per process and kind (1 float16, 2 bfloat16) by
 * fl_half_tables, which the caller runs holding the GIL before any parallel region. NaN
 * patterns hold the canonical quiet NaN. 1 MiB per kind. */
static double fl_hexp[3][65536];   /* exp(x) */
static double fl_hsp[3][65536];    /* log1p(exp(-|x|)) */
static int fl_hready[3];

static void fl_half_tables(int kind)
{
    static uint16_t bits[65536];
    static float wide[65536];
    int i;
    if (fl_hready[kind])
        return;
    for (i = 0; i < 65536; i++)
        bits[i] = (uint16_t)i;
    fl_widen_half(bits, wide, 65536, kind);
    for (i = 0; i < 65536; i++) {
        double x = wide[i];
        fl_hexp[kind][i] = x != x ? FL_NAN : fl_exp64(x);
        fl_hsp[kind][i] = x != x ? FL_NAN : fl_log1p64(fl_exp64(-fabs(x)));
    }
    fl_hready[kind] = 1;
}

static inline const double *fl_half_exp_tab(int kind) { return fl_hexp[kind]; }
static inline const double *fl_half_sp_tab(int kind) { return fl_hsp[kind]; }

/* dst[i] = tab[src[i] & mask] (AVX2 / AVX-512 gathers, else scalar loads: the same bits).
 * mask 0x7fff reads a table of |x| (log1p(exp(-|x|))) from its lower half only, which is
 * then all the cache has to hold. */
static inline void fl_half_gather(const double *tab, const uint16_t *src, double *dst,
                                  int64_t n, uint32_t mask)
{
    int64_t i = 0;
#if defined(__AVX512F__)
    const __m512i lo = _mm512_set1_epi32((int)mask);
    for (; i + 16 <= n; i += 16) {
        __m512i k = _mm512_and_si512(
            _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(src + i))), lo);
        _mm512_storeu_pd(dst + i, _mm512_i32gather_pd(_mm512_castsi512_si256(k), tab, 8));
        _mm512_storeu_pd(dst + i + 8,
                         _mm512_i32gather_pd(_mm512_extracti64x4_epi64(k, 1), tab, 8));
    }
#elif defined(__AVX2__)
    const __m256i lo = _mm256_set1_epi32((int)mask);
    for (; i + 8 <= n; i += 8) {
        __m256i k = _mm256_and_si256(
            _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(src + i))), lo);
        _mm256_storeu_pd(dst + i, _mm256_i32gather_pd(tab, _mm256_castsi256_si128(k), 8));
        _mm256_storeu_pd(dst + i + 4, _mm256_i32gather_pd(tab, _mm256_extracti128_si256(k, 1), 8));
    }
#endif
    for (; i < n; i++)
        dst[i] = tab[src[i] & mask];
}

/* The row sum of the softmax denominator from the table: lane k (k = j % 16) adds, for j
 * in order, 0 where x_j == m (the max, counted in *nc) and tab[xh[j]] elsewhere (NaN
 * included); the 16 lanes are then added left to right from lane 0: the lane order of the
 * float32 rows (_acc16_add / _acc16_total). x_j is read from the bits (a shift for
 * bfloat16, F16C for float16 where the build has it). Prefetches pf[0 .. n) (the caller
 * passes the data the next max passes read: the next row, at least 8 KiB ahead). */
static inline double fl_half_row_sum(const uint16_t *xh, int kind, int64_t n, float m,
                                     const double *tab, int64_t *nc, const uint16_t *pf)
{
    double acc[16];
    int64_t j = 0, c = 0;
    int k;
#if defined(__AVX512F__)
    __m512d a0 = _mm512_set1_pd(FL_NEG_ZERO), a1 = a0;
    __m512 mm = _mm512_set1_ps(m);
    __m512i cv = _mm512_setzero_si512();
    const __m512i one = _mm512_set1_epi32(1);
    for (; j + 16 <= n; j += 16) {
        if ((j & 31) == 0)
            fl_prefetch(pf + j);
        __m256i h = _mm256_loadu_si256((const __m256i *)(xh + j));
        __m512i i32 = _mm512_cvtepu16_epi32(h);
        __m512 v = kind == 2 ? _mm512_castsi512_ps(_mm512_slli_epi32(i32, 16))
                             : _mm512_cvtph_ps(h);
        /* unmasked gathers, the max's entries zeroed after, the ties counted in a vector:
         * no mask register feeds a gather and none goes to a scalar register (5% faster) */
        __mmask16 eq = _mm512_cmp_ps_mask(v, mm, _CMP_EQ_OQ);
        cv = _mm512_mask_add_epi32(cv, eq, cv, one);
        __m512d g0 = _mm512_i32gather_pd(_mm512_castsi512_si256(i32), tab, 8);
        __m512d g1 = _mm512_i32gather_pd(_mm512_extracti64x4_epi64(i32, 1), tab, 8);
        a0 = _mm512_add_pd(a0, _mm512_mask_mov_pd(g0, (__mmask8)eq, _mm512_setzero_pd()));
        a1 = _mm512_add_pd(a1, _mm512_mask_mov_pd(g1, (__mmask8)(eq >> 8),
                                                  _mm512_setzero_pd()));
    }
#if defined(__AVX512BW__) && defined(__AVX512VL__)  /* 16-bit masked load (x86-64-v4 has it) */
    if (j < n && j >= 16) {
        /* the row's last n - j < 16 values, masked: the lanes past the end add the +0.0 of a
         * masked-off gather, which changes no lane (each holds a value >= +0.0 or NaN) */
        __mmask16 live = (__mmask16)((1u << (n - j)) - 1u);
        __m256i h = _mm256_maskz_loadu_epi16(live, xh + j);
        __m512i i32 = _mm512_cvtepu16_epi32(h);
        __m512 v = kind == 2 ? _mm512_castsi512_ps(_mm512_slli_epi32(i32, 16))
                             : _mm512_cvtph_ps(h);
        __mmask16 eq = _mm512_mask_cmp_ps_mask(live, v, mm, _CMP_EQ_OQ);
        __mmask16 take = live & (__mmask16)~eq;
        cv = _mm512_mask_add_epi32(cv, eq, cv, one);
        a0 = _mm512_add_pd(a0, _mm512_mask_i32gather_pd(_mm512_setzero_pd(), (__mmask8)take,
                                                        _mm512_castsi512_si256(i32), tab, 8));
        a1 = _mm512_add_pd(a1, _mm512_mask_i32gather_pd(_mm512_setzero_pd(),
                                                        (__mmask8)(take >> 8),
                                                        _mm512_extracti64x4_epi64(i32, 1),
                                                        tab, 8));
        j = n;
    }
#endif
    c = _mm512_reduce_add_epi32(cv);
    _mm512_storeu_pd(acc, a0);
    _mm512_storeu_pd(acc + 8, a1);
#elif defined(__AVX2__) && defined(__F16C__)
    __m256d a[4];
    __m256 mm = _mm256_set1_ps(m);
    for (k = 0; k < 4; k++)
        a[k] = _mm256_set1_pd(FL_NEG_ZERO);
    __m256i cv = _mm256_setzero_si256();
    for (; j + 16 <= n; j += 16) {
        if ((j & 31) == 0)
            fl_prefetch(pf + j);
        for (k = 0; k < 2; k++) {
            __m128i h = _mm_loadu_si128((const __m128i *)(xh + j + 8 * k));
            __m256i i32 = _mm256_cvtepu16_epi32(h);
            __m256 v = kind == 2 ? _mm256_castsi256_ps(_mm256_slli_epi32(i32, 16))
                                 : _mm256_cvtph_ps(h);
            /* as the AVX-512 loop: unmasked gathers, ties zeroed and counted in a vector */
            __m256i eq = _mm256_castps_si256(_mm256_cmp_ps(v, mm, _CMP_EQ_OQ));
            cv = _mm256_sub_epi32(cv, eq);
            __m256d e0 = _mm256_castsi256_pd(_mm256_cvtepi32_epi64(_mm256_castsi256_si128(eq)));
            __m256d e1 = _mm256_castsi256_pd(
                _mm256_cvtepi32_epi64(_mm256_extracti128_si256(eq, 1)));
            a[2 * k] = _mm256_add_pd(a[2 * k], _mm256_andnot_pd(e0, _mm256_i32gather_pd(
                tab, _mm256_castsi256_si128(i32), 8)));
            a[2 * k + 1] = _mm256_add_pd(a[2 * k + 1], _mm256_andnot_pd(e1, _mm256_i32gather_pd(
                tab, _mm256_extracti128_si256(i32, 1), 8)));
        }
    }
    {
        int32_t cs[8];
        _mm256_storeu_si256((__m256i *)cs, cv);
        for (k = 0; k < 8; k++)
            c += cs[k];
    }
    for (k = 0; k < 4; k++)
        _mm256_storeu_pd(acc + 4 * k, a[k]);
#else
    for (k = 0; k < 16; k++)
        acc[k] = FL_NEG_ZERO;
    for (; j + 16 <= n; j += 16) {
        if ((j & 31) == 0)
            fl_prefetch(pf + j);
        for (k = 0; k < 16; k++) {
            double t = tab[xh[j + k]];
            int eq = fl_half1(xh[j + k], kind) == m;
            c += eq;
            acc[k] += eq ? 0.0 : t;
        }
    }
#endif
    for (k = 0; j + k < n; k++) {
        int eq = fl_half1(xh[j + k], kind) == m;
        c += eq;
        acc[k] += eq ? 0.0 : tab[xh[j + k]];
    }
    double s = acc[0];
    for (k = 1; k < 16; k++)
        s = s + acc[k];
    *nc = c;
    return s;
}

/* ------------------------------------------------------------------- row argmax */

/* np.argmax of one row (first maximum; the first NaN wins over everything): AVX-512
 * masked loads and compares, one pass for the max (returning at the first NaN), one for
 * the first element equal to it. Only in the AVX-512 build (FL_HAVE_ARGMAX_SIMD = 1); the
 * Cython code has a portable fallback. -0.0 == +0.0 for the compare, as for np.argmax. */
#if defined(__AVX512F__)
#include <immintrin.h>
#define FL_HAVE_ARGMAX_SIMD 1
static inline int64_t fl_argmax_f32(const float *x, int64_t n)
{
    __m512 mx = _mm512_set1_ps(-INFINITY);
    int64_t j = 0;
    for (; j + 16 <= n; j += 16) {
        __m512 v = _mm512_loadu_ps(x + j);
        __mmask16 un = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
        if (un) return j + __builtin_ctz((unsigned)un);
        mx = _mm512_max_ps(mx, v);
    }
    if (j < n) {
        __mmask16 k = (__mmask16)((1u << (n - j)) - 1u);
        __m512 v = _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), k, x + j);
        __mmask16 un = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
        if (un) return j + __builtin_ctz((unsigned)un);
        mx = _mm512_max_ps(mx, v);
    }
    __m512 m = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
    for (j = 0; j + 16 <= n; j += 16) {
        __mmask16 eq = _mm512_cmp_ps_mask(_mm512_loadu_ps(x + j), m, _CMP_EQ_OQ);
        if (eq) return j + __builtin_ctz((unsigned)eq);
    }
    if (j < n) {
        __mmask16 k = (__mmask16)((1u << (n - j)) - 1u);
        __mmask16 eq = _mm512_mask_cmp_ps_mask(k, _mm512_maskz_loadu_ps(k, x + j), m,
                                               _CMP_EQ_OQ);
        if (eq) return j + __builtin_ctz((unsigned)eq);
    }
    return 0;
}
static inline int64_t fl_argmax_f64(const double *x, int64_t n)
{
    __m512d mx = _mm512_set1_pd(-INFINITY);
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
        __m512d v = _mm512_loadu_pd(x + j);
        __mmask8 un = _mm512_cmp_pd_mask(v, v, _CMP_UNORD_Q);
        if (un) return j + __builtin_ctz((unsigned)un);
        mx = _mm512_max_pd(mx, v);
    }
    if (j < n) {
        __mmask8 k = (__mmask8)((1u << (n - j)) - 1u);
        __m512d v = _mm512_mask_loadu_pd(_mm512_set1_pd(-INFINITY), k, x + j);
        __mmask8 un = _mm512_cmp_pd_mask(v, v, _CMP_UNORD_Q);
        if (un) return j + __builtin_ctz((unsigned)un);
        mx = _mm512_max_pd(mx, v);
    }
    __m512d m = _mm512_set1_pd(_mm512_reduce_max_pd(mx));
    for (j = 0; j + 8 <= n; j += 8) {
        __mmask8 eq = _mm512_cmp_pd_mask(_mm512_loadu_pd(x + j), m, _CMP_EQ_OQ);
        if (eq) return j + __builtin_ctz((unsigned)eq);
    }
    if (j < n) {
        __mmask8 k = (__mmask8)((1u << (n - j)) - 1u);
        __mmask8 eq = _mm512_mask_cmp_pd_mask(k, _mm512_maskz_loadu_pd(k, x + j), m,
                                              _CMP_EQ_OQ);
        if (eq) return j + __builtin_ctz((unsigned)eq);
    }
    return 0;
}
#else
#define FL_HAVE_ARGMAX_SIMD 0
static inline int64_t fl_argmax_f32(const float *x, int64_t n) { (void)x; (void)n; return 0; }
static inline int64_t fl_argmax_f64(const double *x, int64_t n) { (void)x; (void)n; return 0; }
#endif

/* ------------------------------------------------------------------ build facts */

#if defined(__AVX512F__)
#define FL_SIMD_LEVEL "AVX-512 (F" FL_SIMD_DQ ")"
#if defined(__AVX512DQ__)
#define FL_SIMD_DQ ", DQ"
#else
#define FL_SIMD_DQ ""
#endif
#elif defined(__AVX2__)
#define FL_SIMD_LEVEL "AVX2"
#elif defined(__AVX__)
#define FL_SIMD_LEVEL "AVX"
#elif defined(__SSE4_2__)
#define FL_SIMD_LEVEL "SSE4.2"
#elif defined(__SSE2__)
#define FL_SIMD_LEVEL "SSE2"
#elif defined(__ARM_NEON)
#define FL_SIMD_LEVEL "NEON"
#else
#define FL_SIMD_LEVEL "scalar"
#endif

#ifdef _OPENMP
#define FL_OPENMP _OPENMP
#else
#define FL_OPENMP 0
#endif

/* set by setup.py: the flags, the variant name and an id shared by the modules of one
 * build (so that a stale module left by an earlier build is never picked) */
#ifndef FL_BUILD_FLAGS
#define FL_BUILD_FLAGS ""
#endif
#ifndef FL_VARIANT
#define FL_VARIANT "single"
#endif
#ifndef FL_BUILD_ID
#define FL_BUILD_ID ""
#endif

static const char *fl_simd_level(void) { return FL_SIMD_LEVEL; }
static const char *fl_build_flags(void) { return FL_BUILD_FLAGS; }
static const char *fl_variant(void) { return FL_VARIANT; }
static const char *fl_build_id(void) { return FL_BUILD_ID; }

/* GNU OpenMP cannot run a parallel region in a child of fork() once the parent has
 * started its thread pool: the child waits forever for threads that were not copied
 * (multiprocessing's default start method on Linux does exactly this). So: remember
 * that this module started OpenMP threads, and in a forked child run single-threaded. */
static int fl_omp_started = 0;
static int fl_in_fork_child = 0;
#if defined(_OPENMP) && (defined(__unix__) || defined(__APPLE__))
#include <pthread.h>
static void fl_on_fork_child(void) { fl_in_fork_child = fl_omp_started; }
static void fl_install_fork_guard(void) { pthread_atfork(NULL, NULL, fl_on_fork_child); }
#else
static void fl_install_fork_guard(void) {}
#endif

/* The thread count to use for a parallel loop (1 in a forked child, see above). */
static inline int fl_threads(int n_threads)
{
    if (n_threads <= 1 || fl_in_fork_child)
        return 1;
    fl_omp_started = 1;
    return n_threads;
}

#include "fastloss_cpu.h"  /* fl_cpu_level(), shared with the import guard */

static int fl_openmp_version(void) { return FL_OPENMP; }
static int fl_have_fma(void) { return FL_HAVE_FMA; }

#endif /* FASTLOSS_MATH_H */
