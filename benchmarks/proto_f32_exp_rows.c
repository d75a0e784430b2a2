/* Measurement prototype for issue #14 item 4 (not built by setup.py, not shipped):
 * would a float32 exp (8 lanes on AVX2) summed in float64 lanes make the row log-sum-exp
 * of float32 rows (sparse CE from logits, logsumexp_rows) faster, within the contract's
 * "within 1 ulp of the float64 reference"?
 *
 *   gcc -O3 -ffp-contract=off -fno-math-errno -fno-trapping-math -march=x86-64-v3 \
 *       -Ikernels/cython benchmarks/proto_f32_exp_rows.c -o /tmp/proto -lm
 *   /tmp/proto 1000 0; /tmp/proto 1000 1; /tmp/proto 10 0; /tmp/proto 10 1
 *   (args: columns C; 0 = logits 3*N(0,1), 1 = confident rows: the label's logit +10)
 *   /tmp/proto bce   (the BCE-on-logits math alone, see 4.)
 *
 * Prints:
 * 1. the maximum relative error of the float32 exp (expf_tt, Cephes polynomial, exact
 *    argument x - m carried as float s + lo by TwoSum) over every float32 s in [-87, 0];
 * 2. per-row throughput (one core, thread CPU time, best of 5) of the row sum
 *    S' = sum_{x_j != m} exp(x_j - m) by the kernels' current float64 path (fl_expneg32 on
 *    exact double differences, 16 float64 lanes) and by the float32 path (same lanes);
 * 3. how many rows the float32 path can certify: with eps_t = 1.25 * (1.) + 2^-27 the
 *    per-term bound, err(S') <= eps_t * S, err(L = log1p(S')) <= err(S') / (1 + S' - err)
 *    + 2^-51 L, v = (m - x_y) + L; a row is certified when float32(v - err) and
 *    float32(v + err) are equal or adjacent (then the float32 result is within 1 ulp of
 *    the float64 reference); the others would need the float64 path as well.
 * 4. with "bce": the per-element math of BCE on logits exactly as the kernel computes it
 *    (fl_expneg32, fl_log1p01_32, the linear term, float32 rounding, 8 float64 lanes) over
 *    2e7 elements, with none of the kernel's weights / partials / output work: if this
 *    loop alone is about as fast as the kernel, BCE is bound by its float64 math.
 * Since L >= S'/(1 + S') >= err/eps_t, a term error eps_t gives v a relative error up to
 * eps_t, so only eps_t < 2^-25 certifies every row: a float32 exp (>= 2^-24 from its final
 * rounding alone) cannot, which is why rows with a small loss fail. */
#include "fastloss_math.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#define RL 16

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}
static inline uint32_t asu32(float x) { uint32_t u; memcpy(&u, &x, 4); return u; }
static inline float asf32(uint32_t u) { float x; memcpy(&x, &u, 4); return x; }

/* exp(s + lo) for s <= 0 (lo: the rounding error of s), float32; 0 below -87 */
static inline float expf_tt(float s, float lo)
{
    float sc = s < -87.0f ? -87.0f : s;
    float t = sc * 1.44269504f + 12582912.0f;
    float kf = t - 12582912.0f;
    float r = kf * (-0.693359375f) + sc; /* exact (Cody-Waite, Sterbenz) */
    r = r + (lo + kf * 2.12194440e-4f);
    float p = 1.9875691500E-4f;
    p = p * r + 1.3981999507E-3f;
    p = p * r + 8.3334519073E-3f;
    p = p * r + 4.1665795894E-2f;
    p = p * r + 1.6666665459E-1f;
    p = p * r + 5.0000001201E-1f;
    float e = (r * r) * p + r + 1.0f;
    float sf = asf32((asu32(t) << 23) + (127u << 23));
    return s < -87.0f ? 0.0f : e * sf;
}

__attribute__((noinline)) double fsum(const float *x, long C, float m, double *cnt)
{
    double acc[RL];
    for (int k = 0; k < RL; k++) acc[k] = -0.0;
    int nc = 0;
    long q, j = C - C % RL;
    for (q = 0; q < C / RL; q++) {
        float tt[RL];
        for (int k = 0; k < RL; k++) {
            float xv = x[q * RL + k], s = xv - m, bb = s - xv;
            float lo = (xv - (s - bb)) + (-m - bb);
            tt[k] = xv == m ? 0.0f : expf_tt(s, lo);
            nc += xv == m;
        }
        for (int k = 0; k < RL; k++) acc[k] += (double)tt[k];
    }
    for (int k = 0; k < C - j; k++) {
        float xv = x[j + k], s = xv - m, bb = s - xv;
        float lo = (xv - (s - bb)) + (-m - bb);
        acc[k] += xv == m ? 0.0 : (double)expf_tt(s, lo);
        nc += xv == m;
    }
    double s = acc[0];
    for (int k = 1; k < RL; k++) s = s + acc[k];
    *cnt = nc;
    return s;
}

/* the kernels' current float32 path (_lse_rows: float64 differences, fl_expneg32) */
__attribute__((noinline)) double dsum(const float *x, long C, float mf, double *cnt, double *e)
{
    double m = mf;
    long nc = 0;
    for (long j = 0; j < C; j++) { double dv = (double)x[j] - m; e[j] = dv; nc += dv == 0.0; }
    for (long j = 0; j < C; j++) { double dv = e[j]; e[j] = dv == 0.0 ? 0.0 : fl_expneg32(dv); }
    double acc[RL];
    for (int k = 0; k < RL; k++) acc[k] = -0.0;
    long q, j = C - C % RL;
    for (q = 0; q < C / RL; q++)
        for (int k = 0; k < RL; k++) acc[k] += e[q * RL + k];
    for (int k = 0; k < C - j; k++) acc[k] += e[j + k];
    double s = acc[0];
    for (int k = 1; k < RL; k++) s = s + acc[k];
    *cnt = nc;
    return s;
}

static float rowmax(const float *x, long n)
{
    float m = -INFINITY;
    for (long j = 0; j < n; j++) m = x[j] > m ? x[j] : m;
    return m;
}

static double gauss(void)
{
    double u = (rand() + 1.0) / (RAND_MAX + 2.0), v = (rand() + 1.0) / (RAND_MAX + 2.0);
    return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

__attribute__((noinline)) double bce_math(const float *x, const float *z, long n)
{
    double acc[8];
    for (int k = 0; k < 8; k++) acc[k] = -0.0;
    for (long q = 0; q < n / 8; q++)
        for (int k = 0; k < 8; k++) {
            double xd = x[q * 8 + k], zd = z[q * 8 + k];
            double gg = fl_log1p01_32(fl_expneg32(-fabs(xd)));
            double lc = xd >= 0.0 ? 1.0 - zd : -zd;
            double v = (lc == 0.0 ? 0.0 : lc * xd) + gg;
            v = xd != xd ? xd : v;
            acc[k] += (double)(float)v;
        }
    double s = acc[0];
    for (int k = 1; k < 8; k++) s = s + acc[k];
    return s;
}

static double gauss(void);

static int run_bce(void)
{
    long n = 20000000;
    float *x = malloc(n * 4), *z = malloc(n * 4);
    srand(1);
    for (long i = 0; i < n; i++) {
        x[i] = (float)(3 * gauss());
        z[i] = (float)(rand() & 1);
    }
    double b = 1e9, s = 0;
    for (int r = 0; r < 5; r++) {
        double t0 = now();
        s += bce_math(x, z, n);
        double t = now() - t0;
        b = t < b ? t : b;
    }
    printf("BCE-on-logits math alone, %ld elements: %.3f G el/s (one core, CPU time, best of 5; "
           "checksum %g)\n", n, n / b / 1e9, s);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "bce") == 0)
        return run_bce();
    double worst = 0;
    for (uint32_t u = asu32(-87.0f);; u--) {
        float s = asf32(u);
        double ex = exp((double)s), re = fabs((double)expf_tt(s, 0.0f) - ex) / ex;
        worst = re > worst ? re : worst;
        if (u == 0x80000000u) break;
    }
    printf("expf_tt max rel error over every float32 in [-87, 0]: %.3g = 2^%.2f\n", worst,
           log2(worst));
    double eps_t = worst * 1.25 + 0x1p-27; /* margin, and lo / the split ln2 */
    long C = argc > 1 ? atol(argv[1]) : 1000, R = 20000000 / C;
    int kind = argc > 2 ? atoi(argv[2]) : 0;
    float *x = malloc(R * C * 4), *mx = malloc(R * 4);
    long *y = malloc(R * 8);
    double *e = malloc(C * 8 + 64);
    srand(1);
    for (long r = 0; r < R; r++) {
        y[r] = rand() % C;
        for (long j = 0; j < C; j++) x[r * C + j] = (float)(3 * gauss());
        if (kind == 1) x[r * C + y[r]] += 10.0f;
        mx[r] = rowmax(x + r * C, C);
    }
    double bd = 1e9, bf = 1e9, cs = 0, c, t0, t;
    for (int rep = 0; rep < 5; rep++) {
        t0 = now();
        for (long r = 0; r < R; r++) cs += dsum(x + r * C, C, mx[r], &c, e);
        t = now() - t0; bd = t < bd ? t : bd;
        t0 = now();
        for (long r = 0; r < R; r++) cs += fsum(x + r * C, C, mx[r], &c);
        t = now() - t0; bf = t < bf ? t : bf;
    }
    long ok_rows = 0;
    for (long r = 0; r < R; r++) {
        const float *xr = x + r * C;
        float m = mx[r];
        double Sf = fsum(xr, C, m, &c), Sp = Sf + (c - 1.0);
        double errS = eps_t * Sf + C * 0x1p-126 + (C + 16) * 0x1p-53 * Sp;
        double L = log1p(Sp), errL = errS / (1.0 + Sp - errS) + 0x1p-51 * L;
        double v = ((double)m - (double)xr[y[r]]) + L, err = errL + 0x1p-50 * v;
        float lo = (float)(v - err), hi = (float)(v + err);
        ok_rows += v - err > 0 && asu32(hi) - asu32(lo) <= 1;
    }
    printf("C=%ld %s, %ld rows: float64 path %.3f G el/s, float32 path %.3f G el/s "
           "(one core, CPU time, best of 5); certified %.2f%% of rows (checksum %g)\n",
           C, kind ? "confident" : "3*N(0,1)", R, R * C / bd / 1e9, R * C / bf / 1e9,
           100.0 * ok_rows / R, cs);
    return 0;
}
