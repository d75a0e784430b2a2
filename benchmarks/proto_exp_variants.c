/* Inner-loop prototypes of the row sum exp(x_j - m) of the float32 kernels (issue #14,
 * item 4): what one core reaches per element with the exp that fastloss ships (float64,
 * degree-8 polynomial, no FMA so that every SIMD build gives the baseline's bits) and with
 * the alternatives tried. Not part of the build.
 *
 *   cd benchmarks; F="-O3 -fno-math-errno -fno-trapping-math -I../kernels/cython"
 *   for v in x86-64-v3 x86-64-v4; do
 *     gcc $F -march=$v -ffp-contract=off proto_exp_variants.c -o /tmp/p && echo "$v shipped (Estrin): $(/tmp/p)"
 *     gcc $F -march=$v -ffp-contract=off -DEXP=fl_expneg32_horner proto_exp_variants.c -o /tmp/p && echo "$v Horner: $(/tmp/p)"
 *     gcc $F -march=$v -ffp-contract=fast proto_exp_variants.c -o /tmp/p && echo "$v shipped+FMA: $(/tmp/p)"
 *     gcc $F -march=$v -ffp-contract=off -DTABLE proto_exp_variants.c -o /tmp/p && echo "$v table: $(/tmp/p)"
 *   done
 *
 * shipped: fl_expneg32 of fastloss_math.h (Estrin's order); Horner: the version before it
 * (fl_expneg32_horner below); shipped+FMA: the same code contracted to FMA (which the baseline
 * build cannot match bit for bit); table: 2^(j/32) from a 32-entry table (AVX2 / AVX-512
 * gathers, intrinsics, one function per instruction set) and a degree-4 polynomial
 * (relative error 3.3e-13, measured in mpmath). The loop is the kernel's: float32 in,
 * x - m in float64, 0 at the max, 16 float64 lanes.
 */
#include "fastloss_math.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static const double FL_EXP2_32[32] = {1.0, 1.0218971486541166, 1.0442737824274138, 1.0671404006768237, 1.0905077326652577, 1.1143867425958924, 1.1387886347566916, 1.1637248587775775, 1.189207115002721, 1.215247359980469, 1.241857812073484, 1.2690509571917332, 1.2968395546510096, 1.3252366431597413, 1.3542555469368927, 1.383909881963832, 1.4142135623730951, 1.4451808069770467, 1.4768261459394993, 1.5091644275934228, 1.5422108254079407, 1.5759808451078865, 1.6104903319492543, 1.645755478153965, 1.681792830507429, 1.718619298122478, 1.7562521603732995, 1.7947090750031072, 1.8340080864093424, 1.8741676341103, 1.9152065613971474, 1.9571441241754002};
#define FL_32_LN2 46.16624130844682   /* 32/ln2 */
#define FL_LN2_32 0.021660849392498290 /* ln2/32 */
static inline double fl_expneg32_tab(double x)
{
    double t = x * FL_32_LN2 + FL_SHIFTER;
    double kd = t - FL_SHIFTER;
    double r = x - kd * FL_LN2_32;
    uint64_t b = fl_asu64(t);
    double T = FL_EXP2_32[b & 31];
    double Ts = fl_asf64(fl_asu64(T) + ((b << 47) & 0xFFF0000000000000ULL));
    double p = 0.04166679130831526 * r + 0.16666741451695768;
    p = p * r + 0.5;
    double q = (r * r) * p + r;
    double e = Ts * q + Ts;
    return x < -708.0 ? 0.0 : e;
}

/* the previous fl_expneg32 (until 2026-12-03): the polynomial in Horner's order, one
 * chain of seven multiply-adds, and 2^k by a multiplication */
static inline double fl_expneg32_horner(double x)
{
    double t = FL_FMA(x, FL_LOG2E, FL_SHIFTER);
    double kd = t - FL_SHIFTER;
    double r = FL_FMA(kd, -FL_LN2, x);
    double p = 2.48595783333601e-05;
    p = FL_FMA(p, r, 1.9899274069434545e-04);
    p = FL_FMA(p, r, 1.3888854049481818e-03);
    p = FL_FMA(p, r, 8.333298483621828e-03);
    p = FL_FMA(p, r, 4.1666666718981143e-02);
    p = FL_FMA(p, r, 1.6666666718997808e-01);
    p = FL_FMA(p, r, 0.5);
    double e = FL_FMA(r * r, p, r) + 1.0;
    double s = fl_asf64((fl_asu64(t) << 52) + ((uint64_t)1023 << 52));
    return x < -708.0 ? 0.0 : e * s;
}
#include <immintrin.h>
#if defined(__AVX2__)
static inline __m256d exptab_avx2(__m256d x)
{
    const __m256d SH = _mm256_set1_pd(FL_SHIFTER);
    __m256d t = _mm256_add_pd(_mm256_mul_pd(x, _mm256_set1_pd(FL_32_LN2)), SH);
    __m256d kd = _mm256_sub_pd(t, SH);
    __m256d r = _mm256_sub_pd(x, _mm256_mul_pd(kd, _mm256_set1_pd(FL_LN2_32)));
    __m256i b = _mm256_castpd_si256(t);
    __m256i j = _mm256_and_si256(b, _mm256_set1_epi64x(31));
    __m256d T = _mm256_i64gather_pd(FL_EXP2_32, j, 8);
    __m256i sc = _mm256_and_si256(_mm256_slli_epi64(b, 47), _mm256_set1_epi64x(0xFFF0000000000000ULL));
    __m256d Ts = _mm256_castsi256_pd(_mm256_add_epi64(_mm256_castpd_si256(T), sc));
    __m256d p = _mm256_add_pd(_mm256_mul_pd(_mm256_set1_pd(0.04166679130831526), r), _mm256_set1_pd(0.16666741451695768));
    p = _mm256_add_pd(_mm256_mul_pd(p, r), _mm256_set1_pd(0.5));
    __m256d q = _mm256_add_pd(_mm256_mul_pd(_mm256_mul_pd(r, r), p), r);
    __m256d e = _mm256_add_pd(_mm256_mul_pd(Ts, q), Ts);
    __m256d ok = _mm256_cmp_pd(x, _mm256_set1_pd(-708.0), _CMP_NLT_UQ); /* !(x < -708): NaN kept */
    return _mm256_and_pd(e, ok);
}
__attribute__((noipa)) static double rowsum_avx2(const float *x, int n, double m){
    __m256d acc[4]; for(int k=0;k<4;k++) acc[k]=_mm256_set1_pd(-0.0);
    __m256d M=_mm256_set1_pd(m), Z=_mm256_setzero_pd();
    for(int q=0;q<n/16;q++) for(int k=0;k<4;k++){
        __m256d dv=_mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(x+q*16+4*k)), M);
        __m256d ex=exptab_avx2(dv);
        ex=_mm256_andnot_pd(_mm256_cmp_pd(dv,Z,_CMP_EQ_OQ), ex);
        acc[k]=_mm256_add_pd(acc[k], ex);
    }
    double a[16]; for(int k=0;k<4;k++) _mm256_storeu_pd(a+4*k, acc[k]);
    double s=a[0]; for(int k=1;k<16;k++) s+=a[k]; return s;
}
#endif
#if defined(__AVX512F__)
static inline __m512d exptab_avx512(__m512d x)
{
    const __m512d SH = _mm512_set1_pd(FL_SHIFTER);
    __m512d t = _mm512_add_pd(_mm512_mul_pd(x, _mm512_set1_pd(FL_32_LN2)), SH);
    __m512d kd = _mm512_sub_pd(t, SH);
    __m512d r = _mm512_sub_pd(x, _mm512_mul_pd(kd, _mm512_set1_pd(FL_LN2_32)));
    __m512i b = _mm512_castpd_si512(t);
    __m512i j = _mm512_and_si512(b, _mm512_set1_epi64(31));
#ifdef PERM
    __m512d T = _mm512_permutex2var_pd(_mm512_loadu_pd(FL_EXP2_32), j, _mm512_loadu_pd(FL_EXP2_32+8));
    __m512d T2 = _mm512_permutex2var_pd(_mm512_loadu_pd(FL_EXP2_32+16), j, _mm512_loadu_pd(FL_EXP2_32+24));
    T = _mm512_mask_blend_pd(_mm512_test_epi64_mask(j, _mm512_set1_epi64(16)), T, T2);
#else
    __m512d T = _mm512_i64gather_pd(j, FL_EXP2_32, 8);
#endif
    __m512i sc = _mm512_and_si512(_mm512_slli_epi64(b, 47), _mm512_set1_epi64(0xFFF0000000000000ULL));
    __m512d Ts = _mm512_castsi512_pd(_mm512_add_epi64(_mm512_castpd_si512(T), sc));
    __m512d p = _mm512_add_pd(_mm512_mul_pd(_mm512_set1_pd(0.04166679130831526), r), _mm512_set1_pd(0.16666741451695768));
    p = _mm512_add_pd(_mm512_mul_pd(p, r), _mm512_set1_pd(0.5));
    __m512d q = _mm512_add_pd(_mm512_mul_pd(_mm512_mul_pd(r, r), p), r);
    __m512d e = _mm512_add_pd(_mm512_mul_pd(Ts, q), Ts);
    __mmask8 ok = _mm512_cmp_pd_mask(x, _mm512_set1_pd(-708.0), _CMP_NLT_UQ);
    return _mm512_maskz_mov_pd(ok, e);
}
__attribute__((noipa)) static double rowsum_avx512(const float *x, int n, double m){
    __m512d acc[2]; for(int k=0;k<2;k++) acc[k]=_mm512_set1_pd(-0.0);
    __m512d M=_mm512_set1_pd(m);
    for(int q=0;q<n/16;q++) for(int k=0;k<2;k++){
        __m512d dv=_mm512_sub_pd(_mm512_cvtps_pd(_mm256_loadu_ps(x+q*16+8*k)), M);
        __m512d ex=exptab_avx512(dv);
        __mmask8 nz=_mm512_cmp_pd_mask(dv,_mm512_setzero_pd(),_CMP_NEQ_UQ);
        acc[k]=_mm512_mask_add_pd(acc[k], nz, acc[k], ex);
    }
    double a[16]; for(int k=0;k<2;k++) _mm512_storeu_pd(a+8*k, acc[k]);
    double s=a[0]; for(int k=1;k<16;k++) s+=a[k]; return s;
}
#endif


#define N 992
#ifndef EXP
#define EXP fl_expneg32
#endif
#if defined(TABLE)
#if defined(__AVX512F__)
#define ROW rowsum_avx512
#else
#define ROW rowsum_avx2
#endif
#else
#define ROW rowsum
#endif
#define RLN 16
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }

__attribute__((noipa)) static double rowsum(const float *x, int n, double m)
{
    double acc[RLN];
    for (int k = 0; k < RLN; k++) acc[k] = -0.0;
    for (int q = 0; q < n / RLN; q++)
        for (int k = 0; k < RLN; k++) {
            double dv = (double)x[q * RLN + k] - m;
            acc[k] += dv == 0.0 ? 0.0 : EXP(dv);
        }
    double s = acc[0];
    for (int k = 1; k < RLN; k++) s += acc[k];
    return s;
}

int main(void)
{
    float *x = malloc(4 * N);
    srand(1);
    for (int j = 0; j < N; j++) x[j] = (float)(rand() / (double)RAND_MAX * 10 - 5);
    double best = 1e9, s = 0;
    for (int rep = 0; rep < 20; rep++) {
        double t0 = now();
        for (int it = 0; it < 2000; it++) s += ROW(x, N, 5.0);
        double dt = now() - t0;
        if (dt < best) best = dt;
    }
    printf("%.3f ns/element (%.2f G el/s), sum %.17g\n", best / 2000 / N * 1e9,
           2000.0 * N / best / 1e9, s / 20 / 2000);
    return 0;
}
