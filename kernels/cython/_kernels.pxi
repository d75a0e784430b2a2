# The Cython backend's kernels, included by _core.pyx (setup.py cythonizes it once and
# compiles the C code once per SIMD level; __init__.py picks one at import).
#
# Cython/OpenMP kernels of the fastloss kernel contract (see ``fastloss.kernels``).
#
# Three layers, as in scikit-learn's ``_loss``:
#
# * scalar math in ``fastloss_math.h`` (exp/log/log1p that GCC vectorises), chosen per
#   dtype by ``_exp``/``_log``/``_log1p`` (float32 kernels use the float32-grade ones);
# * per-chunk loss code, written once with the fused type ``floating``: ``_chunk_*``
#   compute, for up to ``FIN`` rows (elements for BCE), the per-sample value ``v`` (rounded
#   to the dtype), the weight ``w`` and, for the ``*_grad`` kernels, the gradient and
#   Hessian; ``_block`` cuts one block into chunks and does the contract's block sum;
# * ``def`` wrappers (the contract functions) that check sizes, fill an ``Args`` struct and
#   run ``_block`` over the blocks with ``prange(schedule='static')`` without the GIL.
#
# Determinism: every per-row or per-element value is computed by the same code whatever the
# thread count or the chunking, row sums (softmax denominators, the categorical / KL / MSE
# sums over classes) go into 16 lanes by column index, and the block sums follow
# ``_blocks.block_sums`` exactly (8 lanes, -0.0 start, the zero padding of the last
# block). The file is compiled with -ffp-contract=off, so no sum is contracted into an FMA.
#
# The row log-sum-exp ``lse = shift + L`` follows the reference: with ``m`` the row max,
# ``L = log1p(sum_{j != argmax} exp(x_j - m))``, computed as the sum over the entries below
# ``m`` plus the number of other entries equal to ``m`` (each adds exactly 1), so the
# argmax never has to be found. A row without a finite max takes the reference's values
# (shift 0; L = NaN with a NaN, +inf with a +inf, else -inf).

from cython.parallel cimport prange, threadid
from libc.stdint cimport int64_t, uint16_t, uint32_t
from libc.stdlib cimport malloc, free
from libc.math cimport fabs
from cython cimport floating

import numpy as _np

cdef extern from "fastloss_math.h" nogil:
    double fl_exp64(double x) noexcept
    double fl_log64(double x) noexcept
    double fl_log1p64(double x) noexcept
    double fl_exp32(double x) noexcept
    double fl_log32(double x) noexcept
    double fl_log1p32(double x) noexcept
    double fl_expneg32(double x) noexcept
    double fl_log1p01_32(double x) noexcept
    double FL_NEG_ZERO
    double FL_INF
    double FL_NAN
    const char *fl_simd_level() noexcept
    const char *fl_build_flags() noexcept
    const char *fl_build_id() noexcept
    const char *fl_variant() noexcept
    int fl_openmp_version() noexcept
    int fl_have_fma() noexcept
    int fl_cpu_level() noexcept
    int fl_threads(int n_threads) noexcept
    void fl_install_fork_guard() noexcept
    int FL_HAVE_ARGMAX_SIMD
    void fl_prefetch(const void *p) noexcept
    int64_t fl_argmax_f32(const float *x, int64_t n) noexcept
    int64_t fl_argmax_f64(const double *x, int64_t n) noexcept
    void fl_widen_half(const uint16_t *src, float *dst, int64_t n, int kind) noexcept
    void fl_half_tables(int kind) noexcept
    const double *fl_half_exp_tab(int kind) noexcept
    const double *fl_half_sp_tab(int kind) noexcept
    void fl_half_gather(const double *tab, const uint16_t *src, double *dst, int64_t n,
                        uint32_t mask) noexcept
    double fl_half_row_sum(const uint16_t *xh, int kind, int64_t n, float m,
                           const double *tab, int64_t *nc, const uint16_t *pf) noexcept
    float fl_half_row_max(const uint16_t *xh, int64_t n, int kind) noexcept
    float fl_half1(uint32_t h, int kind) noexcept

fl_install_fork_guard()

cdef enum:
    LANES = 8     # block-sum lanes (the contract)
    RL = 16       # lanes of a row sum (column j goes to lane j % RL)
    BUF = 2048    # doubles of exp work per row group (16 KB, stays in L1)
    SMALL_C = 32  # rows up to this width are done 16 at a time, vectorised across rows
    FIN = 512     # rows (BCE: elements) per chunk

cdef enum:
    CLIP_NONE = 0
    CLIP_EPS = 1
    CLIP_KERAS2 = 2
    CLIP_TORCH = 3

cdef enum:
    K_SPARSE = 0
    K_CAT = 1
    K_BCE = 2
    K_KL = 3
    K_MSE = 4
    K_LSE = 5
    K_SOFTMAX = 6


cdef struct Args:
    int kind
    Py_ssize_t n             # rows (BCE: elements)
    Py_ssize_t C             # columns (1 for BCE)
    Py_ssize_t block_rows
    const void *t            # categorical / KL / MSE targets, BCE labels (x's dtype)
    const int64_t *y
    const double *sw         # NULL: no sample weights
    const double *cw         # class weights (sparse / categorical)
    const double *pw         # BCE pos_weight
    const double *ow         # MSE output weights
    Py_ssize_t K             # len(pw)
    Py_ssize_t sw_div
    bint logits
    bint has_ignore
    bint omit
    bint log_input
    bint log_target
    bint log                 # softmax_rows: log_softmax
    int64_t ignore_index
    int clip
    double ls
    double z
    double eps
    double scale
    double ow_sum
    void *out                # NULL: not requested
    double *lp               # NULL: not requested
    double *wp
    void *g                  # NULL: forward kernel
    void *h                  # NULL: no Hessian
    int *bad_label           # set when a label is out of range (2: out of memory)
    const uint16_t *xh       # half-precision x (float16 / bfloat16 bits), else NULL
    int hk                   # its kind: 1 float16, 2 bfloat16


cdef struct Work:
    double e[BUF]            # exp work of a row group
    double e2[BUF]           # second buffer (softmax of narrow rows)
    double sh[FIN]           # row shift (the max, or 0)
    double L[FIN]            # lse - shift
    double mf[FIN]           # row max (x's dtype, exact as a double)
    double cnt[FIN]          # entries equal to the max
    double rd[FIN]           # half table rows: 1 / sum_j exp(x_j) (softmax = exp(x_j) * rd); else 0
    double v[FIN]            # loss values, rounded to x's dtype
    double w[FIN]            # weights
    double c[FIN]            # contributions (finish)
    double k[FIN]            # kept weights (finish)
    double aux[FIN]          # per-chunk extra: BCE pos_weight
    int64_t ys[FIN]          # labels (0 for ignored rows)
    bint widened             # half x: the block was widened into the thread's buffer


# --------------------------------------------------------------------------- math by dtype

cdef inline double _exp(const floating *tag, double x) noexcept nogil:
    if floating is float:
        return fl_exp32(x)
    else:
        return fl_exp64(x)


cdef inline double _expneg(const floating *tag, double x) noexcept nogil:
    """exp(x) for x <= 0 or NaN (float32: flushes results below 2^-1022)."""
    if floating is float:
        return fl_expneg32(x)
    else:
        return fl_exp64(x)


cdef inline double _softplus_neg_abs(const floating *tag, double x) noexcept nogil:
    """log1p(exp(-|x|)) (garbage for NaN x: the callers select)."""
    if floating is float:
        return fl_log1p01_32(fl_expneg32(-fabs(x)))
    else:
        return fl_log1p64(fl_exp64(-fabs(x)))


cdef inline double _log(const floating *tag, double x) noexcept nogil:
    if floating is float:
        return fl_log32(x)
    else:
        return fl_log64(x)


cdef inline double _log1p(const floating *tag, double x) noexcept nogil:
    if floating is float:
        return fl_log1p32(x)
    else:
        return fl_log1p64(x)


cdef inline bint _finite(double m) noexcept nogil:
    return m - m == 0.0  # false for +-inf and NaN


cdef inline double _cn(double v) noexcept nogil:
    """v with any NaN replaced by the one canonical quiet NaN (+, zero payload). Every value
    a kernel stores goes through this: when two NaNs of different signs meet in an addition
    or a product, x86 returns the first operand's, and which operand is first is the
    compiler's choice (it differs between vector and scalar code, and between builds)."""
    return FL_NAN if v != v else v


cdef inline double _xmul(double coef, double term) noexcept nogil:
    """coef * term, with a zero coefficient removing the term (even an inf or NaN one)."""
    return 0.0 if coef == 0.0 else coef * term


cdef inline double _neglog(const floating *tag, double p, int mode, double lo,
                           double hi) noexcept nogil:
    """-log(p) under a clip mode, p a value of x's dtype. The clip bounds are x's dtype's
    (lo = dtype(eps), hi = dtype(1) - lo, exact as doubles, so clipping in double is
    clipping in the dtype); the Keras-2 addition is done in the dtype."""
    cdef double l
    if mode == CLIP_NONE:
        return -_log(tag, p)
    if mode == CLIP_TORCH:
        l = _log(tag, p)
        return -(-100.0 if l < -100.0 else l)  # NaN stays NaN, as np.maximum
    p = lo if p < lo else (hi if p > hi else p)  # NaN passes, as np.clip
    if mode == CLIP_KERAS2:
        p = <double>(<floating>p + <floating>lo)
    return -_log(tag, p)


cdef inline double _neglog1m(const floating *tag, double p, int mode, double lo,
                             double hi) noexcept nogil:
    """-log(1 - p) under a clip mode (1 - p formed in x's dtype when clipping)."""
    cdef double l, q
    if mode == CLIP_NONE:
        return -_log1p(tag, -p)
    if mode == CLIP_TORCH:
        l = _log1p(tag, -p)
        return -(-100.0 if l < -100.0 else l)
    q = <double>(<floating>1 - <floating>(lo if p < lo else (hi if p > hi else p)))
    if mode == CLIP_KERAS2:
        q = <double>(<floating>q + <floating>lo)
    return -_log(tag, q)


cdef inline double _clip_lo(const floating *tag, double eps) noexcept nogil:
    """dtype(eps), as a double."""
    return <double>(<floating>eps)


cdef inline double _clip_hi(const floating *tag, double eps) noexcept nogil:
    """dtype(1) - dtype(eps), computed in the dtype (float32: 1 - 1e-7 is 0.99999988)."""
    return <double>(<floating>1 - <floating>eps)


cdef inline double _plog_none(const floating *tag, double p, bint q) noexcept nogil:
    """log(p) (q false) or log1p(-p) (q true), exactly as _log / _log1p compute them, with
    selects only (q may vary per element: one log serves either side)."""
    cdef double u, c, l, lq
    u = (1.0 + (-p)) if q else p  # log1p(x) is log(u) + a correction, u = 1 + x
    l = _log(tag, u)
    c = (-p) - (u - 1.0)
    if floating is float:
        lq = l + c * ((2.0 - u) if u < 2.0 else 0.0)
    else:
        lq = l + c / u
    lq = FL_INF if -p == FL_INF else lq  # fl_log1p_special
    lq = FL_NAN if -p < -1.0 else lq
    lq = -FL_INF if -p == -1.0 else lq
    return lq if q else l


cdef inline double _plog_clip(const floating *tag, double p, bint q, double lo, double hi,
                              floating add) noexcept nogil:
    """log(clip(p) + add) (q false) or log((1 - clip(p)) + add) (q true), the clip, the
    subtraction and the addition done in x's dtype; add = 0 (CLIP_EPS: adding +0.0 to a
    value >= 0 or NaN changes nothing log can see) or dtype(eps) (CLIP_KERAS2)."""
    cdef floating pf, qf
    pf = <floating>(lo if p < lo else (hi if p > hi else p))  # NaN passes, as np.clip
    qf = <floating>1 - pf
    pf = pf + add
    qf = qf + add
    return _log(tag, <double>qf if q else <double>pf)


cdef inline double _plog(const floating *tag, double p, bint q, int mode, double lo,
                         double hi) noexcept nogil:
    """log(p) (q false) or log(1 - p) (q true) under a clip mode: exactly -_neglog /
    -_neglog1m, bit for bit (scalar use; the hot loops call _plog_none / _plog_clip with
    the mode switch outside the loop, which is what lets them vectorise)."""
    cdef double l
    if mode == CLIP_NONE or mode == CLIP_TORCH:
        l = _plog_none(tag, p, q)
        if mode == CLIP_TORCH:
            l = -100.0 if l < -100.0 else l  # NaN stays NaN, as np.maximum
        return l
    return _plog_clip(tag, p, q, lo, hi, <floating>lo if mode == CLIP_KERAS2 else <floating>0)


# --------------------------------------------------------------------------- lane sums

cdef inline void _acc16_zero(double *acc) noexcept nogil:
    cdef int k
    for k in range(RL):
        acc[k] = FL_NEG_ZERO


cdef inline void _acc16_add(double *acc, const double *e, Py_ssize_t n) noexcept nogil:
    """Element j of e goes to lane j % RL (n is a multiple of RL except at a row's end)."""
    cdef Py_ssize_t q, j = n - n % RL
    cdef int k
    for q in range(n // RL):  # counted loops: while loops do not vectorise
        for k in range(RL):
            acc[k] += e[q * RL + k]
    for k in range(n - j):
        acc[k] += e[j + k]


cdef inline double _acc16_total(const double *acc) noexcept nogil:
    cdef double s = acc[0]
    cdef int k
    for k in range(1, RL):
        s = s + acc[k]
    return s


cdef inline void _lanes8_add(double *acc, const double *c, Py_ssize_t n,
                             Py_ssize_t off) noexcept nogil:
    """Contribution j goes to lane (off + j) % LANES (off: offset in the block)."""
    cdef Py_ssize_t q, j = n - n % LANES
    cdef int k
    if off % LANES == 0:
        for q in range(n // LANES):
            for k in range(LANES):
                acc[k] += c[q * LANES + k]
        for k in range(n - j):
            acc[k] += c[j + k]
    else:
        for j in range(n):
            acc[(off + j) % LANES] += c[j]


cdef inline double _lanes8_total(double *acc, Py_ssize_t nrows,
                                 Py_ssize_t block_rows) noexcept nogil:
    """The block's sum, exactly as _blocks.block_sums: lanes start as the first element
    (here: -0.0 + x), the block is zero-padded to a multiple of LANES, lanes are added
    left to right."""
    cdef Py_ssize_t per = (block_rows + LANES - 1) // LANES * LANES
    cdef int k
    cdef double s
    if nrows < per:  # padding rows [nrows, per) add +0.0 to their lanes
        for k in range(LANES):
            if per - nrows >= LANES or k >= nrows % LANES:
                acc[k] += 0.0
    s = acc[0]
    for k in range(1, LANES):
        s = s + acc[k]
    return s


# --------------------------------------------------------------------------- row statistics

cdef inline floating _row_max(const floating *x, Py_ssize_t n) noexcept nogil:
    """Max of a row, NaN ignored (-inf for an empty or all-NaN row)."""
    cdef floating mv[2 * RL]
    cdef floating m = -FL_INF
    cdef floating v
    cdef Py_ssize_t q, j = 0
    cdef int k
    if n >= 4 * RL:
        for k in range(2 * RL):
            mv[k] = -FL_INF
        for q in range(n // (2 * RL)):
            for k in range(2 * RL):
                v = x[q * 2 * RL + k]
                mv[k] = v if v > mv[k] else mv[k]
        for k in range(2 * RL):
            m = mv[k] if mv[k] > m else m
        j = n - n % (2 * RL)
    for q in range(j, n):
        v = x[q]
        m = v if v > m else m
    return m


cdef inline double _row_sum(const floating *x, Py_ssize_t n, double *e) noexcept nogil:
    """Sum of a row in float64 (16 lanes; e: BUF doubles of scratch)."""
    cdef double acc[RL]
    cdef Py_ssize_t start_q, start, nn, j
    _acc16_zero(acc)
    for start_q in range((n + BUF - 1) // BUF):
        start = start_q * BUF
        nn = min(<Py_ssize_t>BUF, n - start)
        for j in range(nn):
            e[j] = <double>x[start + j]
        _acc16_add(acc, e, nn)
    return _acc16_total(acc)


cdef double _nonfinite_L(const floating *x, Py_ssize_t n, double mf) noexcept nogil:
    """L of a row whose max is not finite, as the reference (shift 0, log(sum exp x))."""
    cdef Py_ssize_t j
    for j in range(n):
        if x[j] != x[j]:
            return FL_NAN
    return FL_INF if mf > 0 else -FL_INF


cdef void _lse_rows(const floating *x, Py_ssize_t nr, Py_ssize_t C, Work *wk,
                    Py_ssize_t o) noexcept nogil:
    """shift and L of the rows x[0:nr] into wk.sh/wk.L[o:o+nr] (nr*C <= BUF, or nr == 1).

    Small rows are done as a group so the exp loop runs over nr*C values at once.
    Both paths give the same bits (same exp arguments, same lane order)."""
    cdef double *e = wk.e
    cdef Py_ssize_t r, j, i, start_q, start, nn, nc
    cdef double m, dv
    cdef floating mf, xv
    cdef const floating *xr
    cdef double acc[RL]
    if C <= BUF:
        for r in range(nr):
            xr = x + r * C
            mf = _row_max(xr, C)
            m = mf if _finite(mf) else 0.0
            wk.mf[o + r] = mf
            wk.sh[o + r] = m
            nc = 0
            for j in range(C):
                dv = <double>xr[j] - m
                e[r * C + j] = dv
                nc += dv == 0.0
            wk.cnt[o + r] = <double>nc
        for i in range(nr * C):
            dv = e[i]
            e[i] = 0.0 if dv == 0.0 else _expneg(x, dv)
        for r in range(nr):
            _acc16_zero(acc)
            _acc16_add(acc, e + r * C, C)
            wk.L[o + r] = _acc16_total(acc) + (wk.cnt[o + r] - 1.0)
        for r in range(nr):
            wk.L[o + r] = _log1p(x, wk.L[o + r])
    else:
        mf = _row_max(x, C)
        m = mf if _finite(mf) else 0.0
        wk.mf[o] = mf
        wk.sh[o] = m
        _acc16_zero(acc)
        nc = 0
        for start_q in range((C + BUF - 1) // BUF):
            start = start_q * BUF
            nn = min(<Py_ssize_t>BUF, C - start)
            for j in range(nn):
                xv = x[start + j]
                dv = <double>xv - m
                e[j] = 0.0 if dv == 0.0 else _expneg(x, dv)
                nc += dv == 0.0
            _acc16_add(acc, e, nn)
        wk.L[o] = _log1p(x, _acc16_total(acc) + (<double>nc - 1.0))
    for r in range(nr):
        if not _finite(wk.mf[o + r]):
            wk.L[o + r] = _nonfinite_L(x + r * C, C, wk.mf[o + r])


cdef void _lse_rows_small(const floating *x, Py_ssize_t nr, Py_ssize_t C,
                          Work *wk) noexcept nogil:
    """shift and L of rows x[0:nr] with C <= SMALL_C columns into wk.sh/wk.L[0:nr].

    16 rows at a time, transposed into a tile (wk.e[16*j + r]) so that every loop runs
    across the 16 rows with a constant trip count (a partial group repeats its last
    row): no per-row loop tails, which dominate short rows. A row's sum runs over its
    columns in order (for C <= 16 that is also the 16-lane order of _lse_rows). Every
    kernel gets its row statistics from _lse_chunk, so all agree bit for bit."""
    cdef floating mf[16]
    cdef double m[16]
    cdef double s[16]
    cdef double nc[16]
    cdef Py_ssize_t off[16]
    cdef const floating *xg
    cdef floating v
    cdef double dv, mfd
    cdef Py_ssize_t g0_q, g0, gn, r, j
    for g0_q in range((nr + 15) // 16):
        g0 = g0_q * 16
        gn = min(<Py_ssize_t>16, nr - g0)
        xg = x + g0 * C
        for r in range(16):
            off[r] = min(r, gn - 1) * C
            mf[r] = -FL_INF
        for j in range(C):
            for r in range(16):
                v = xg[off[r] + j]
                wk.e[j * 16 + r] = v
                mf[r] = v if v > mf[r] else mf[r]
        for r in range(16):
            mfd = mf[r]
            m[r] = mfd if mfd - mfd == 0.0 else 0.0  # 0 for a row without a finite max
            s[r] = FL_NEG_ZERO
            nc[r] = -1.0
        for j in range(C):
            for r in range(16):
                dv = wk.e[j * 16 + r] - m[r]
                s[r] += 0.0 if dv == 0.0 else _expneg(x, dv)
                nc[r] += 1.0 if dv == 0.0 else 0.0
        for r in range(16):
            s[r] = _log1p(x, s[r] + nc[r])
        for r in range(gn):
            wk.mf[g0 + r] = mf[r]
            wk.sh[g0 + r] = m[r]
            wk.L[g0 + r] = s[r]
    for r in range(nr):
        if not _finite(wk.mf[r]):
            wk.L[r] = _nonfinite_L(x + r * C, C, wk.mf[r])


cdef inline bint _in_table_window(double m) noexcept nogil:
    """Does a half row with max m take the table path (see _lse_rows_half; NaN, inf: no)?"""
    return -300.0 <= m <= 600.0


cdef void _lse_rows_half(const Args *a, const float *x, Py_ssize_t r0, Py_ssize_t nr,
                         Py_ssize_t C, Work *wk) noexcept nogil:
    """_lse_rows of half rows (a.xh: their bits; x: their place in the block buffer, filled
    when wk.widened) with exp(x_j) from the table:
        L = log1p(sum_{x_j < m} exp(x_j) / exp(m) + count(x_j == m) - 1).
    The quotient is exp(x_j - m) to float64 grade for a row max m in [-300, 600]: exp(m) is
    then a normal double, terms below 2^-1022 are less than 2^-400 of it, and no sum of
    exp(x_j) overflows (with m = 700 a float16 row of 29,000 values of 699.5 did); other rows
    take _lse_rows (wk.rd = 0). wk.rd: 1 / (sum_{x_j < m} exp(x_j) + count * exp(m)), so that
    a softmax probability is a lookup and a product (_row_probs). Each row's bits depend on
    its values only (any thread count, chunking). The per-row exp and log1p run as a loop
    across the rows, so that they vectorise."""
    cdef const double *tab = fl_half_exp_tab(a.hk)
    # prefetch distance while summing a row: the next row (at least 8 KiB), which the next
    # max pass reads; a whole block ahead (32 KiB for rows of 1000) evicted the current rows
    cdef Py_ssize_t r, ahead = max(C, <Py_ssize_t>4096)
    cdef const uint16_t *xh
    cdef const float *xr
    cdef float mf
    cdef double em
    cdef int64_t nc
    for r in range(nr):
        xh = a.xh + (r0 + r) * C
        mf = fl_half_row_max(xh, C, a.hk)
        wk.mf[r] = mf
        wk.sh[r] = mf
        wk.L[r] = 0.0
        wk.cnt[r] = 1.0
        if _in_table_window(mf):
            wk.L[r] = fl_half_row_sum(xh, a.hk, C, mf, tab, &nc, xh + ahead)
            wk.cnt[r] = <double>nc
    for r in range(nr):
        em = fl_exp64(wk.sh[r])
        wk.rd[r] = 1.0 / (wk.L[r] + wk.cnt[r] * em)
        wk.L[r] = _log1p(x, wk.L[r] / em + (wk.cnt[r] - 1.0))
    for r in range(nr):
        if not _in_table_window(wk.mf[r]):
            wk.rd[r] = 0.0
            xr = x + (r0 + r) * C
            if not wk.widened:  # this row's place in the thread's block buffer
                fl_widen_half(a.xh + (r0 + r) * C, <float *>xr, C, a.hk)
            _lse_rows(xr, 1, C, wk, r)


cdef inline void _row_probs(const Args *a, const floating *xr, Py_ssize_t i, Py_ssize_t start,
                            Py_ssize_t nn, double sh, double L, double rd,
                            double *p) noexcept nogil:
    """p[0:nn] = softmax of row i (xr) at columns start .. start+nn-1: exp(x_j) * rd from the
    half table on a table row (rd > 0, see _lse_rows_half), else exp((x_j - sh) - L)."""
    cdef Py_ssize_t j
    if floating is float:
        if rd > 0.0:
            fl_half_gather(fl_half_exp_tab(a.hk), a.xh + i * a.C + start, p, nn, 0xffff)
            for j in range(nn):
                p[j] = p[j] * rd
            return
    for j in range(nn):
        p[j] = _expneg(xr, (<double>xr[start + j] - sh) - L)


cdef inline void _lse_chunk(const Args *a, const floating *x, Py_ssize_t r0, Py_ssize_t nr,
                            Py_ssize_t C, Work *wk) noexcept nogil:
    """Row statistics of rows r0 .. r0+nr-1 into wk.sh/wk.L[0:nr]."""
    cdef Py_ssize_t g0_q, g0, gn
    cdef Py_ssize_t gr = max(<Py_ssize_t>1, <Py_ssize_t>BUF // max(C, <Py_ssize_t>1))
    if floating is float:
        if a.xh != NULL and C > SMALL_C:
            _lse_rows_half(a, x, r0, nr, C, wk)
            return
    for g0 in range(nr):
        wk.rd[g0] = 0.0
    if C <= SMALL_C:
        _lse_rows_small(x + r0 * C, nr, C, wk)
        return
    for g0_q in range((nr + gr - 1) // gr):
        g0 = g0_q * gr
        gn = min(gr, nr - g0)
        _lse_rows(x + (r0 + g0) * C, gn, C, wk, g0)


# --------------------------------------------------------------------------- losses per chunk

cdef inline double _x_at(const Args *a, const floating *xr, Py_ssize_t i,
                         Py_ssize_t j) noexcept nogil:
    """x[i, j] (xr: row i), read from the bits for half x (its block may not be widened)."""
    if floating is float:
        if a.xh != NULL:
            return fl_half1(a.xh[i * a.C + j], a.hk)
    return xr[j]


cdef void _chunk_sparse(const Args *a, const floating *x, Py_ssize_t r0, Py_ssize_t nr,
                        Work *wk) noexcept nogil:
    cdef Py_ssize_t C = a.C
    cdef Py_ssize_t r, i, j, start_q, start, nn
    cdef int64_t yi, ys
    cdef bint ign
    cdef double w, v, sh, L, lse, mean, s, k2, lsC, p, gr
    cdef double acc[RL]
    cdef const floating *xr
    cdef double lo = _clip_lo(x, a.eps)
    cdef double hi = _clip_hi(x, a.eps)
    cdef floating *g = <floating *>a.g
    cdef floating *h = <floating *>a.h
    cdef floating *gr_ = NULL
    cdef floating *hr_ = NULL
    for r in range(nr):
        i = r0 + r
        yi = a.y[i]
        ign = a.has_ignore and yi == a.ignore_index
        ys = 0 if ign else yi
        if ys < 0 or ys >= C:
            a.bad_label[0] = 1
            ys = 0
        wk.ys[r] = ys
        w = a.sw[i] if a.sw != NULL else 1.0
        if a.cw != NULL:
            w = w * a.cw[ys]
        if a.has_ignore:
            w = w * (0.0 if ign else 1.0)
        wk.w[r] = w
    if a.logits:
        _lse_chunk(a, x, r0, nr, C, wk)
        for r in range(nr):
            xr = x + (r0 + r) * C
            sh = wk.sh[r]
            L = wk.L[r]
            v = (sh - _x_at(a, xr, r0 + r, wk.ys[r])) + L
            if a.ls != 0.0:
                mean = _row_sum(xr, C, wk.e) / C
                v = (1.0 - a.ls) * v + a.ls * ((sh - mean) + L)
            if a.z != 0.0:
                lse = sh + L
                v = v + a.z * lse * lse
            wk.v[r] = <double>(<floating>v)
        if g != NULL:
            lsC = a.ls / C
            for r in range(nr):
                i = r0 + r
                xr = x + i * C
                gr_ = g + i * C
                hr_ = h + i * C if h != NULL else NULL
                yi = a.y[i]
                ign = a.has_ignore and yi == a.ignore_index
                ys = wk.ys[r]
                s = a.scale
                if a.sw != NULL:
                    s = s * a.sw[i]
                if a.cw != NULL:
                    s = s * a.cw[ys]
                if ign:
                    s = 0.0
                sh = wk.sh[r]
                L = wk.L[r]
                k2 = 1.0 + 2.0 * a.z * (sh + L)
                for start_q in range((C + BUF - 1) // BUF):
                    start = start_q * BUF
                    nn = min(<Py_ssize_t>BUF, C - start)
                    _row_probs(a, xr, i, start, nn, sh, L, wk.rd[r], wk.e)
                    if hr_ != NULL:
                        for j in range(nn):
                            p = wk.e[j]
                            gr_[start + j] = <floating>_cn(s * (p * k2 - lsC))
                            hr_[start + j] = <floating>_cn(
                                s * (p * (1.0 - p) * k2 + 2.0 * a.z * p * p))
                    else:
                        for j in range(nn):
                            gr_[start + j] = <floating>_cn(s * (wk.e[j] * k2 - lsC))
                _row_probs(a, xr, i, ys, 1, sh, L, wk.rd[r], &p)
                gr_[ys] = <floating>_cn(s * ((p * k2 - lsC) - (1.0 - a.ls)))
    else:
        for r in range(nr):
            xr = x + (r0 + r) * C
            v = _neglog(x, <double>xr[wk.ys[r]], a.clip, lo, hi)
            if a.ls != 0.0:
                _acc16_zero(acc)
                for start_q in range((C + BUF - 1) // BUF):
                    start = start_q * BUF
                    nn = min(<Py_ssize_t>BUF, C - start)
                    for j in range(nn):
                        wk.e[j] = _neglog(x, <double>xr[start + j], a.clip, lo, hi)
                    _acc16_add(acc, wk.e, nn)
                v = (1.0 - a.ls) * v + a.ls * (_acc16_total(acc) / C)
            wk.v[r] = <double>(<floating>v)


cdef inline double _cat_coef(const Args *a, double t, Py_ssize_t j) noexcept nogil:
    """t' = (1-ls)*t + ls/C, times the class weight."""
    if a.ls != 0.0:
        t = (1.0 - a.ls) * t + a.ls / a.C
    if a.cw != NULL:
        t = t * a.cw[j]
    return t


cdef inline Py_ssize_t _cat_coefs(const Args *a, const floating *tr, Py_ssize_t start,
                                  Py_ssize_t nn, double *e) noexcept nogil:
    """e[j] = _cat_coef(t[start + j]) for j < nn, +0.0 where it is 0 (as _xmul gives);
    vectorised (the options are hoisted). Returns the number of nonzero (or NaN)
    coefficients."""
    cdef Py_ssize_t j, nz = 0
    cdef double ls = a.ls
    cdef double lsC = a.ls / a.C
    cdef double cf
    cdef const double *cw = a.cw
    if cw != NULL:
        for j in range(nn):
            cf = <double>tr[start + j]
            cf = ((1.0 - ls) * cf + lsC) if ls != 0.0 else cf
            cf = cf * cw[start + j]
            e[j] = 0.0 if cf == 0.0 else cf
            nz += cf != 0.0
    else:
        for j in range(nn):
            cf = <double>tr[start + j]
            cf = ((1.0 - ls) * cf + lsC) if ls != 0.0 else cf
            e[j] = 0.0 if cf == 0.0 else cf
            nz += cf != 0.0
    return nz


cdef void _cat_probs(const Args *a, const floating *x, Py_ssize_t r0, Py_ssize_t nr,
                     Work *wk) noexcept nogil:
    """Categorical CE on probabilities, v = sum_c _xmul(t'_c, -log(clip(p_c))) summed in
    the 16 row lanes. Rows whose coefficients are mostly 0 (one-hot targets) take the log
    only where the coefficient is not 0 (the others are already +0.0, as _xmul gives);
    the rest run one vectorised loop per clip-mode family (switch outside the loop). Both
    give the same element values, so the row sums are the same bits."""
    cdef Py_ssize_t C = a.C
    cdef Py_ssize_t r, j, k, jb, jb_q, start_q, start, nn, nz
    cdef int hit
    cdef const floating *t = <const floating *>a.t
    cdef const floating *xr
    cdef double *e = wk.e
    cdef double cf, l
    cdef double acc[RL]
    cdef double lo = _clip_lo(x, a.eps)
    cdef double hi = _clip_hi(x, a.eps)
    cdef int mode = a.clip
    cdef double fl = -100.0 if mode == CLIP_TORCH else -FL_INF
    cdef floating add = <floating>lo if mode == CLIP_KERAS2 else <floating>0
    cdef bint clip = mode == CLIP_EPS or mode == CLIP_KERAS2
    for r in range(nr):
        xr = x + (r0 + r) * C
        _acc16_zero(acc)
        for start_q in range((C + BUF - 1) // BUF):
            start = start_q * BUF
            nn = min(<Py_ssize_t>BUF, C - start)
            nz = _cat_coefs(a, t + (r0 + r) * C, start, nn, e)
            if nz * 8 <= nn:
                # few nonzero coefficients (one-hot rows): find them 8 at a time, stop
                # after the last one (the others already hold +0.0). Only a few p are read
                # per row, which the hardware prefetcher does not see coming: prefetch the
                # row 4 ahead (a miss per row would cost more than the row's work)
                if C * <Py_ssize_t>sizeof(floating) <= 8192:
                    for k in range(0, C * <Py_ssize_t>sizeof(floating), 64):
                        fl_prefetch(<const char *>(xr + 4 * C) + k)
                k = 0
                for jb_q in range((nn + 7) // 8):
                    jb = jb_q * 8
                    if jb + 8 <= nn:
                        hit = 0
                        for j in range(8):  # constant trip count: one vector compare
                            hit |= e[jb + j] != 0.0
                        if not hit:
                            continue
                    for j in range(jb, min(jb + 8, nn)):
                        cf = e[j]
                        if cf != 0.0:
                            e[j] = cf * -_plog(x, <double>xr[start + j], False, mode, lo, hi)
                            k += 1
                    if k == nz:
                        break
            elif clip:
                for j in range(nn):
                    l = _plog_clip(x, <double>xr[start + j], False, lo, hi, add)
                    e[j] = _xmul(e[j], -l)
            else:
                for j in range(nn):
                    l = _plog_none(x, <double>xr[start + j], False)
                    e[j] = _xmul(e[j], -(fl if l < fl else l))
            _acc16_add(acc, e, nn)
        wk.v[r] = <double>(<floating>_acc16_total(acc))


cdef void _chunk_cat(const Args *a, const floating *x, Py_ssize_t r0, Py_ssize_t nr,
                     Work *wk) noexcept nogil:
    cdef Py_ssize_t C = a.C
    cdef Py_ssize_t r, i, j, start_q, start, nn
    cdef double sh, L, s, A, p, cf
    cdef double acc[RL]
    cdef const floating *xr
    cdef const floating *tr
    cdef const floating *t = <const floating *>a.t
    cdef double lo = _clip_lo(x, a.eps)
    cdef double hi = _clip_hi(x, a.eps)
    cdef floating *g = <floating *>a.g
    cdef floating *h = <floating *>a.h
    cdef floating *gr_
    cdef floating *hr_
    for r in range(nr):
        wk.w[r] = a.sw[r0 + r] if a.sw != NULL else 1.0
    if not a.logits:
        _cat_probs(a, x, r0, nr, wk)
    if a.logits:
        _lse_chunk(a, x, r0, nr, C, wk)
        for r in range(nr):
            i = r0 + r
            xr = x + i * C
            tr = t + i * C
            sh = wk.sh[r]
            L = wk.L[r]
            _acc16_zero(acc)
            for start_q in range((C + BUF - 1) // BUF):
                start = start_q * BUF
                nn = min(<Py_ssize_t>BUF, C - start)
                for j in range(nn):
                    wk.e[j] = _xmul(_cat_coef(a, <double>tr[start + j], start + j),
                                    (sh - <double>xr[start + j]) + L)
                _acc16_add(acc, wk.e, nn)
            wk.v[r] = <double>(<floating>_acc16_total(acc))
    if g != NULL:
        for r in range(nr):
            i = r0 + r
            xr = x + i * C
            tr = t + i * C
            gr_ = g + i * C
            hr_ = h + i * C if h != NULL else NULL
            s = a.scale
            if a.sw != NULL:
                s = s * a.sw[i]
            sh = wk.sh[r]
            L = wk.L[r]
            _acc16_zero(acc)
            for start_q in range((C + BUF - 1) // BUF):
                start = start_q * BUF
                nn = min(<Py_ssize_t>BUF, C - start)
                for j in range(nn):
                    wk.e[j] = _cat_coef(a, <double>tr[start + j], start + j)
                _acc16_add(acc, wk.e, nn)
            A = _acc16_total(acc)
            for start_q in range((C + BUF - 1) // BUF):
                start = start_q * BUF
                nn = min(<Py_ssize_t>BUF, C - start)
                _row_probs(a, xr, i, start, nn, sh, L, wk.rd[r], wk.e)
                for j in range(nn):
                    cf = _cat_coef(a, <double>tr[start + j], start + j)
                    p = wk.e[j]
                    gr_[start + j] = <floating>_cn(s * (A * p - cf))
                    if hr_ != NULL:
                        hr_[start + j] = <floating>_cn(s * (A * p * (1.0 - p)))


cdef void _bce_probs(const Args *a, const floating *x, const floating *z, Py_ssize_t i0,
                     Py_ssize_t n, Work *wk) noexcept nogil:
    """v = -(pw*z'*log(p) + (1-z')*log(1-p)) under the clip mode, as _neglog / _neglog1m.

    The clip-mode switch is outside the loops (inside, it kept them scalar): CLIP_NONE and
    CLIP_TORCH share a loop with a floor on the logs (-inf, which never applies, or -100),
    CLIP_EPS and CLIP_KERAS2 one with the Keras-2 addend (+0.0 or eps). A chunk of hard
    labels (at most one of pw*z' and 1-z' nonzero per element) takes one log per element,
    on the side that counts: _xmul gives 0.0 for the other side whatever its log.

    Every loop here must stay vectorised (check with gcc -fopt-info-vec-missed): GCC's
    if-conversion of the selects is fragile, and a loop it gives up on runs scalar with
    a data-dependent branch per element (6-10x slower on random hard labels)."""
    cdef Py_ssize_t j
    cdef double zd, ca, cb, p, t, la, lb, v
    cdef double ls = a.ls
    cdef double lo = _clip_lo(x, a.eps)
    cdef double hi = _clip_hi(x, a.eps)
    cdef double fl = -100.0 if a.clip == CLIP_TORCH else -FL_INF
    cdef floating add = <floating>lo if a.clip == CLIP_KERAS2 else <floating>0
    cdef bint clip = a.clip == CLIP_EPS or a.clip == CLIP_KERAS2
    cdef int soft = 0
    cdef const floating *xs = x + i0
    cdef const floating *zs = z + i0
    cdef double *ca_ = wk.sh
    cdef double *cb_ = wk.L
    cdef double *vv = wk.v
    for j in range(n):
        zd = <double>zs[j]
        zd = (zd * (1.0 - ls) + 0.5 * ls) if ls != 0.0 else zd
        ca = wk.aux[j] * zd
        cb = 1.0 - zd
        ca_[j] = ca
        cb_[j] = cb
        soft |= (ca != 0.0) & (cb != 0.0)
    if soft:
        if clip:
            for j in range(n):
                p = <double>xs[j]
                la = _plog_clip(x, p, False, lo, hi, add)
                lb = _plog_clip(x, p, True, lo, hi, add)
                v = _xmul(ca_[j], -la) + _xmul(cb_[j], -lb)
                v = FL_NAN if p != p else v
                vv[j] = <double>(<floating>v)
        else:
            for j in range(n):
                p = <double>xs[j]
                la = _plog_none(x, p, False)
                lb = _plog_none(x, p, True)
                la = fl if la < fl else la
                lb = fl if lb < fl else lb
                v = _xmul(ca_[j], -la) + _xmul(cb_[j], -lb)
                v = FL_NAN if p != p else v
                vv[j] = <double>(<floating>v)
    else:
        if clip:
            for j in range(n):
                p = <double>xs[j]
                ca = ca_[j]
                t = -_plog_clip(x, p, ca == 0.0, lo, hi, add)
                v = _xmul(ca, t) + _xmul(cb_[j], t)
                v = FL_NAN if p != p else v
                vv[j] = <double>(<floating>v)
        else:
            for j in range(n):
                p = <double>xs[j]
                ca = ca_[j]
                t = _plog_none(x, p, ca == 0.0)
                t = -(fl if t < fl else t)
                v = _xmul(ca, t) + _xmul(cb_[j], t)
                v = FL_NAN if p != p else v
                vv[j] = <double>(<floating>v)


cdef inline double _bce_logit_value(const floating *tag, double xd, double zd, double ls,
                                   double pwv, double gg) noexcept nogil:
    """BCE on a logit xd, its label zd and pos_weight pwv, gg = log1p(exp(-|xd|)); rounded
    to x's dtype."""
    cdef double cc, lc, v
    if ls != 0.0:
        zd = zd * (1.0 - ls) + 0.5 * ls
    cc = pwv * zd + (1.0 - zd)
    # the linear term's coefficient; a zero one removes the term (x = +-inf with a matching
    # label gives 0, not inf * 0): selects, so the loop stays vectorised
    lc = (1.0 - zd) if xd >= 0.0 else -pwv * zd
    v = (0.0 if lc == 0.0 else lc * xd) + cc * gg
    v = xd if xd != xd else v
    return <double>(<floating>v)


cdef void _chunk_bce(const Args *a, const floating *x, Py_ssize_t i0, Py_ssize_t n,
                     Work *wk) noexcept nogil:
    cdef const floating *z = <const floating *>a.t
    cdef Py_ssize_t j, ki, si, rem
    cdef double xd, zd, pwv, cc, s, e, sig
    cdef bint half
    cdef double lo = _clip_lo(x, a.eps)
    cdef double hi = _clip_hi(x, a.eps)
    cdef double ls = a.ls
    cdef bint has_pw = a.pw != NULL
    cdef floating *g = <floating *>a.g
    cdef floating *h = <floating *>a.h
    # weights sw[i // sw_div] and pos_weight pw[i % K], with counters (no division per element)
    if a.sw != NULL:
        if a.sw_div == 1:
            for j in range(n):
                wk.w[j] = a.sw[i0 + j]
        else:
            si = i0 // a.sw_div
            rem = i0 - si * a.sw_div
            for j in range(n):
                wk.w[j] = a.sw[si]
                rem += 1
                if rem == a.sw_div:
                    rem = 0
                    si += 1
    else:
        for j in range(n):
            wk.w[j] = 1.0
    # pw_i (1.0 without pos_weight: the loops below then never select, and never read
    # stale stack memory, whose denormals would slow down the vector code)
    if has_pw:
        ki = i0 % a.K
        for j in range(n):
            wk.aux[j] = a.pw[ki]
            ki += 1
            if ki == a.K:
                ki = 0
    else:
        for j in range(n):
            wk.aux[j] = 1.0
    if a.logits:
        half = False
        if floating is float:
            half = a.xh != NULL
        if half:
            # log1p(exp(-|x|)) of half x from the table (float64 grade): a gather instead
            # of an exp and a log1p; prefetch the block this thread does next
            for j in range(0, n, 32):
                fl_prefetch(a.xh + i0 + j + a.block_rows)
            fl_half_gather(fl_half_sp_tab(a.hk), a.xh + i0, wk.e, n, 0x7fff)  # by |x|
            if a.hk == 2:  # x from the bits (the block is not widened): one loop per kind
                for j in range(n):
                    wk.v[j] = _bce_logit_value(x, fl_half1(a.xh[i0 + j], 2), z[i0 + j], ls,
                                               wk.aux[j], wk.e[j])
            else:
                for j in range(n):
                    wk.v[j] = _bce_logit_value(x, fl_half1(a.xh[i0 + j], 1), z[i0 + j], ls,
                                               wk.aux[j], wk.e[j])
        else:
            for j in range(n):
                xd = <double>x[i0 + j]
                wk.v[j] = _bce_logit_value(x, xd, z[i0 + j], ls, wk.aux[j],
                                           _softplus_neg_abs(x, xd))
    else:
        _bce_probs(a, x, z, i0, n, wk)
    if g != NULL:
        for j in range(n):
            xd = <double>x[i0 + j]
            zd = <double>z[i0 + j]
            if ls != 0.0:
                zd = zd * (1.0 - ls) + 0.5 * ls
            pwv = wk.aux[j]
            s = a.scale * wk.w[j]  # w is 1.0 without weights: scale * 1.0 == scale
            e = _expneg(x, -fabs(xd))
            sig = 1.0 / (1.0 + e) if xd >= 0.0 else e / (1.0 + e)
            cc = pwv * zd + (1.0 - zd)
            g[i0 + j] = <floating>_cn(s * (cc * sig - pwv * zd))
            if h != NULL:
                h[i0 + j] = <floating>_cn(s * (cc * sig * (1.0 - sig)))


cdef void _chunk_kl(const Args *a, const floating *x, Py_ssize_t r0, Py_ssize_t nr,
                    Work *wk) noexcept nogil:
    cdef Py_ssize_t C = a.C
    cdef Py_ssize_t r, i, j, start_q, start, nn
    cdef const floating *t = <const floating *>a.t
    cdef const floating *xr
    cdef const floating *tr
    cdef double lo = _clip_lo(x, a.eps)
    cdef double xc, tc, lpv, lt, tt, s
    cdef double acc[RL]
    cdef bint clip = a.clip == CLIP_EPS
    cdef bint li = a.log_input
    cdef bint ltg = a.log_target
    cdef floating *g = <floating *>a.g
    cdef floating *h = <floating *>a.h
    for r in range(nr):
        i = r0 + r
        wk.w[r] = a.sw[i] if a.sw != NULL else 1.0
        xr = x + i * C
        tr = t + i * C
        _acc16_zero(acc)
        for start_q in range((C + BUF - 1) // BUF):
            start = start_q * BUF
            nn = min(<Py_ssize_t>BUF, C - start)
            if not ltg:  # the options in locals: the loop vectorises
                for j in range(nn):
                    xc = <double>xr[start + j]
                    tc = <double>tr[start + j]
                    # in double: the bounds dtype(eps) and 1 are exact
                    xc = (lo if xc < lo else (1.0 if xc > 1.0 else xc)) if clip else xc
                    tc = (lo if tc < lo else (1.0 if tc > 1.0 else tc)) if clip else tc
                    lpv = xc if li else _log(x, xc)
                    wk.e[j] = _xmul(tc, _log(x, tc) - lpv)
            else:
                for j in range(nn):
                    xc = <double>xr[start + j]
                    tc = <double>tr[start + j]
                    xc = (lo if xc < lo else (1.0 if xc > 1.0 else xc)) if clip else xc
                    tc = (lo if tc < lo else (1.0 if tc > 1.0 else tc)) if clip else tc
                    lpv = xc if li else _log(x, xc)
                    wk.e[j] = _xmul(_exp(x, tc), tc - lpv)
            _acc16_add(acc, wk.e, nn)
        wk.v[r] = <double>(<floating>_acc16_total(acc))
        if g != NULL:
            s = a.scale * a.sw[i] if a.sw != NULL else a.scale
            for j in range(C):
                tt = _exp(x, <double>tr[j]) if a.log_target else <double>tr[j]
                if a.log_input:
                    g[i * C + j] = <floating>_cn(s * -tt)
                    if h != NULL:
                        h[i * C + j] = <floating>_cn(s * 0.0)
                else:
                    lpv = <double>xr[j]
                    g[i * C + j] = <floating>_cn(s * (0.0 if tt == 0.0 else -tt / lpv))
                    if h != NULL:
                        h[i * C + j] = <floating>_cn(
                            s * (0.0 if tt == 0.0 else tt / (lpv * lpv)))


cdef void _chunk_mse(const Args *a, const floating *x, Py_ssize_t r0, Py_ssize_t nr,
                     Work *wk) noexcept nogil:
    cdef Py_ssize_t C = a.C
    cdef Py_ssize_t r, i, j, start_q, start, nn
    cdef const floating *t = <const floating *>a.t
    cdef const floating *xr
    cdef const floating *tr
    cdef double d, s, wt
    cdef double acc[RL]
    cdef double S = a.ow_sum if a.ow != NULL else <double>C
    cdef floating *g = <floating *>a.g
    cdef floating *h = <floating *>a.h
    cdef double ow0
    if g == NULL and 1 <= C <= RL:
        # narrow rows (the torch mse_loss drop-in runs (M, 1)): for C <= 16 every lane of
        # the 16-lane row sum holds one element (-0.0 + e == e) and the lanes are added left
        # to right (e + -0.0 == e), so the row sum is e_0 + e_1 + ... in order: same bits
        # without the per-row lane set-up. C == 1 is one vectorised loop.
        if a.sw != NULL:
            for r in range(nr):
                wk.w[r] = a.sw[r0 + r]
        else:
            for r in range(nr):
                wk.w[r] = 1.0
        if C == 1:
            xr = x + r0
            tr = t + r0
            if a.ow != NULL:
                ow0 = a.ow[0]
                for r in range(nr):
                    d = <double>xr[r] - <double>tr[r]
                    wk.v[r] = <double>(<floating>((d * d * ow0) / S))
            else:
                for r in range(nr):
                    d = <double>xr[r] - <double>tr[r]
                    wk.v[r] = <double>(<floating>((d * d) / S))
            return
        for r in range(nr):
            xr = x + (r0 + r) * C
            tr = t + (r0 + r) * C
            d = <double>xr[0] - <double>tr[0]
            s = d * d * a.ow[0] if a.ow != NULL else d * d
            for j in range(1, C):
                d = <double>xr[j] - <double>tr[j]
                s = s + (d * d * a.ow[j] if a.ow != NULL else d * d)
            wk.v[r] = <double>(<floating>(s / S))
        return
    for r in range(nr):
        i = r0 + r
        wk.w[r] = a.sw[i] if a.sw != NULL else 1.0
        xr = x + i * C
        tr = t + i * C
        _acc16_zero(acc)
        for start_q in range((C + BUF - 1) // BUF):
            start = start_q * BUF
            nn = min(<Py_ssize_t>BUF, C - start)
            if a.ow != NULL:
                for j in range(nn):
                    d = <double>xr[start + j] - <double>tr[start + j]
                    wk.e[j] = d * d * a.ow[start + j]
            else:
                for j in range(nn):
                    d = <double>xr[start + j] - <double>tr[start + j]
                    wk.e[j] = d * d
            _acc16_add(acc, wk.e, nn)
        wk.v[r] = <double>(<floating>(_acc16_total(acc) / S))
        if g != NULL:
            s = a.scale * a.sw[i] if a.sw != NULL else a.scale
            for j in range(C):
                wt = a.ow[j] if a.ow != NULL else 1.0
                d = <double>xr[j] - <double>tr[j]
                g[i * C + j] = <floating>_cn(s * (2.0 * wt * d / S))
                if h != NULL:
                    h[i * C + j] = <floating>_cn(s * (2.0 * wt / S))


cdef void _chunk_rows_out(const Args *a, const floating *x, Py_ssize_t r0, Py_ssize_t nr,
                          Work *wk) noexcept nogil:
    """logsumexp_rows / softmax_rows."""
    cdef Py_ssize_t C = a.C
    cdef Py_ssize_t r, j, k, gr, g0_q, g0, gn
    cdef double sh, L
    cdef const floating *xr
    cdef floating *out = <floating *>a.out
    cdef floating *orow
    _lse_chunk(a, x, r0, nr, C, wk)
    if a.kind == K_LSE:
        for r in range(nr):
            out[r0 + r] = <floating>_cn(wk.sh[r] + wk.L[r])
        return
    if 1 <= C <= SMALL_C and not a.log:
        # narrow rows, softmax: the row's shift and L spread over its elements (wk.e /
        # wk.e2), then one flat loop over a row group, so the exp vectorises across rows
        # (per-row loops of a few elements do not); the same expression per element, so
        # the same bits. (log_softmax has no exp: its per-row loop is faster.)
        gr = <Py_ssize_t>BUF // C
        for g0_q in range((nr + gr - 1) // gr):
            g0 = g0_q * gr
            gn = min(gr, nr - g0)
            for r in range(gn):
                sh = wk.sh[g0 + r]
                L = wk.L[g0 + r]
                for j in range(C):
                    wk.e[r * C + j] = sh
                    wk.e2[r * C + j] = L
            xr = x + (r0 + g0) * C
            orow = out + (r0 + g0) * C
            for k in range(gn * C):
                orow[k] = <floating>_cn(_expneg(x, (<double>xr[k] - wk.e[k]) - wk.e2[k]))
        for r in range(nr):
            if wk.mf[r] == FL_INF:  # no finite softmax with a +inf: all NaN
                orow = out + (r0 + r) * C
                for j in range(C):
                    orow[j] = <floating>FL_NAN
        return
    for r in range(nr):
        xr = x + (r0 + r) * C
        orow = out + (r0 + r) * C
        sh = wk.sh[r]
        L = wk.L[r]
        if a.log:
            for j in range(C):
                orow[j] = <floating>_cn((<double>xr[j] - sh) - L)
        elif wk.mf[r] == FL_INF:  # no finite softmax with a +inf: all NaN (the reference)
            for j in range(C):
                orow[j] = <floating>FL_NAN
        else:
            for k in range((C + BUF - 1) // BUF):
                j = k * BUF
                gr = min(<Py_ssize_t>BUF, C - j)
                _row_probs(a, xr, r0 + r, j, gr, sh, L, wk.rd[r], wk.e)
                for g0 in range(gr):
                    orow[j + g0] = <floating>_cn(wk.e[g0])


# --------------------------------------------------------------------------- block driver

cdef inline void _finish(const Args *a, Work *wk, Py_ssize_t i0, Py_ssize_t n, Py_ssize_t off,
                         const floating *x, double *accl, double *accw) noexcept nogil:
    """c = v * w (0 where w == 0); out = dtype(c); block lanes of c and w (NaN v left out
    under nan_omit)."""
    cdef Py_ssize_t j
    cdef double w, v
    cdef floating *out = <floating *>a.out
    for j in range(n):
        w = wk.w[j]
        wk.c[j] = 0.0 if w == 0.0 else _cn(wk.v[j] * w)
    if out != NULL:
        for j in range(n):
            out[i0 + j] = <floating>wk.c[j]
    if a.lp != NULL:
        if a.omit:
            for j in range(n):
                v = wk.v[j]
                wk.k[j] = wk.w[j] if v == v else 0.0
                wk.c[j] = wk.c[j] if v == v else 0.0
            _lanes8_add(accl, wk.c, n, off)
            _lanes8_add(accw, wk.k, n, off)
        else:
            _lanes8_add(accl, wk.c, n, off)
            _lanes8_add(accw, wk.w, n, off)


cdef void _block(const Args *a, Py_ssize_t b, const floating *x, float *wide) noexcept nogil:
    """Block b; ``wide``: the calling thread's buffer for a block of half x (else NULL)."""
    cdef Work wk
    cdef double accl[LANES]
    cdef double accw[LANES]
    cdef Py_ssize_t r_begin = b * a.block_rows
    cdef Py_ssize_t r_end = min(a.n, r_begin + a.block_rows)
    cdef Py_ssize_t c0_q, c0, nr
    cdef int k
    wk.widened = False
    if floating is float:
        if a.xh != NULL:
            # half x: this block widened exactly to float32 by the thread that computes it
            # (a block is ~64 KiB of float32: it stays in cache), then the float32 code;
            # not for the forward functions that read the bits themselves: BCE on logits,
            # and those that need only the row statistics and the label's logit
            wk.widened = not (a.g == NULL and (
                (a.kind == K_BCE and a.logits) or (a.C > SMALL_C and (
                    a.kind == K_LSE or (a.kind == K_SPARSE and a.logits and a.ls == 0.0)))))
            if wk.widened:
                fl_widen_half(a.xh + r_begin * a.C, wide, (r_end - r_begin) * a.C, a.hk)
            x = wide - r_begin * a.C
    for k in range(LANES):
        accl[k] = FL_NEG_ZERO
        accw[k] = FL_NEG_ZERO
    for c0_q in range((r_end - r_begin + FIN - 1) // FIN):
        c0 = r_begin + c0_q * FIN
        nr = min(<Py_ssize_t>FIN, r_end - c0)
        if a.kind == K_SPARSE:
            _chunk_sparse(a, x, c0, nr, &wk)
        elif a.kind == K_CAT:
            _chunk_cat(a, x, c0, nr, &wk)
        elif a.kind == K_BCE:
            _chunk_bce(a, x, c0, nr, &wk)
        elif a.kind == K_KL:
            _chunk_kl(a, x, c0, nr, &wk)
        elif a.kind == K_MSE:
            _chunk_mse(a, x, c0, nr, &wk)
        else:
            _chunk_rows_out(a, x, c0, nr, &wk)
            continue
        _finish(a, &wk, c0, nr, c0 - r_begin, x, accl, accw)
    if a.lp != NULL and a.kind != K_LSE and a.kind != K_SOFTMAX:
        a.lp[b] = _cn(_lanes8_total(accl, r_end - r_begin, a.block_rows))
        a.wp[b] = _cn(_lanes8_total(accw, r_end - r_begin, a.block_rows))


cdef void _run(Args *a, const floating *x, int n_threads) noexcept nogil:
    cdef Py_ssize_t nb = (a.n + a.block_rows - 1) // a.block_rows
    cdef Py_ssize_t b
    cdef Py_ssize_t per = 0
    cdef float *wide = NULL
    if nb > 1:
        n_threads = fl_threads(n_threads)
    if nb == 1 or n_threads <= 1:
        n_threads = 1
    if a.xh != NULL and nb:
        # one widening buffer per thread for the whole call: a buffer per block would be a
        # fresh mmap (and its page faults) per block for wide rows
        per = min(a.block_rows, a.n) * a.C
        wide = <float *>malloc(max(<Py_ssize_t>1, per * n_threads) * sizeof(float))
        if wide == NULL:
            a.bad_label[0] = 2
            return
    if n_threads <= 1:
        for b in range(nb):
            _block(a, b, x, wide)
    else:
        for b in prange(nb, schedule='static', num_threads=n_threads):
            _block(a, b, x, wide + (threadid() * per if wide != NULL else 0))
    free(wide)


# --------------------------------------------------------------------------- argument checks

cdef void _init(Args *a, int kind, Py_ssize_t n, Py_ssize_t C, Py_ssize_t block_rows,
                int *bad) except *:
    if block_rows < 1:
        raise ValueError(f"block_rows must be positive, got {block_rows}")
    a.kind = kind
    a.n = n
    a.C = C
    a.block_rows = block_rows
    a.t = NULL
    a.y = NULL
    a.sw = NULL
    a.cw = NULL
    a.pw = NULL
    a.ow = NULL
    a.K = 0
    a.sw_div = 1
    a.logits = False
    a.has_ignore = False
    a.omit = False
    a.log_input = False
    a.log_target = False
    a.log = False
    a.ignore_index = 0
    a.clip = CLIP_NONE
    a.ls = 0.0
    a.z = 0.0
    a.eps = 0.0
    a.scale = 1.0
    a.ow_sum = 0.0
    a.out = NULL
    a.lp = NULL
    a.wp = NULL
    a.g = NULL
    a.h = NULL
    a.xh = NULL
    a.hk = 0
    bad[0] = 0
    a.bad_label = bad


cdef const double *_opt(const double[::1] arr, Py_ssize_t need, str name) except? NULL:
    """Pointer to an optional float64 array (NULL when it has length 0); checks the length."""
    if arr.shape[0] == 0:
        return NULL
    if arr.shape[0] != need:
        raise ValueError(f"{name} has length {arr.shape[0]}, expected {need} or 0")
    return &arr[0]


cdef void _partials(Args *a, double[::1] lp, double[::1] wp) except *:
    cdef Py_ssize_t nb = (a.n + a.block_rows - 1) // a.block_rows
    if lp.shape[0] == 0 and wp.shape[0] == 0:
        return
    if lp.shape[0] != nb or wp.shape[0] != nb:
        raise ValueError(f"lp / wp have lengths {lp.shape[0]} / {wp.shape[0]}, "
                         f"expected ceil(n / block_rows) = {nb} (or 0)")
    if nb:
        a.lp = &lp[0]
        a.wp = &wp[0]


cdef void _out(Args *a, floating[::1] out) except *:
    if out is None or out.shape[0] == 0:
        return
    if out.shape[0] != a.n:
        raise ValueError(f"out has length {out.shape[0]}, expected {a.n} (or 0)")
    a.out = &out[0]


cdef void _grad2(Args *a, floating[:, ::1] g, floating[:, ::1] h) except *:
    if g.shape[0] != a.n or g.shape[1] != a.C:
        raise ValueError(f"g has shape ({g.shape[0]}, {g.shape[1]}), expected ({a.n}, {a.C})")
    if h.shape[0] != 0 and (h.shape[0] != a.n or h.shape[1] != a.C):
        raise ValueError(f"h has shape ({h.shape[0]}, {h.shape[1]}), expected ({a.n}, {a.C})")
    if a.n and a.C:
        a.g = &g[0, 0]
        if h.shape[0]:
            a.h = &h[0, 0]


cdef void _same2(const Args *a, const floating[:, ::1] t, str name) except *:
    if t.shape[0] != a.n or t.shape[1] != a.C:
        raise ValueError(f"{name} has shape ({t.shape[0]}, {t.shape[1]}), "
                         f"expected ({a.n}, {a.C})")


cdef inline const floating *_p2(const floating[:, ::1] x):
    return &x[0, 0] if x.shape[0] and x.shape[1] else NULL


cdef inline const floating *_p1(const floating[::1] x):
    return &x[0] if x.shape[0] else NULL


cdef void _clip_args(Args *a, int clip_mode, double clip_eps) except *:
    if clip_mode < CLIP_NONE or clip_mode > CLIP_TORCH:
        raise ValueError(f"unknown clip_mode {clip_mode}")
    a.clip = clip_mode
    a.eps = clip_eps


cdef void _go(Args *a, const floating *x, int n_threads, int *bad) except *:
    with nogil:
        _run(a, x, max(n_threads, 1))
    if bad[0] == 2:
        raise MemoryError("no memory for a block of half-precision rows widened to float32")
    if bad[0]:
        raise IndexError("a label is out of range [0, C) and is not the ignore_index")


def _half(x):
    """``(x, None, 0)``; for float16 / bfloat16 ``x`` (the HALF_NATIVE functions read it as
    it is) ``(float32 array of x's shape with 0 rows, standing for the type; the uint16
    bits; kind 1 float16 or 2 bfloat16)``."""
    dt = x.dtype
    if dt.itemsize != 2 or not (dt.kind == "f" or dt.name == "bfloat16"):
        return x, None, 0
    return (_np.empty((0,) + x.shape[1:], _np.float32), x.view(_np.uint16),
            2 if dt.name == "bfloat16" else 1)


cdef Py_ssize_t _rows_of(Args *a, const floating[:, ::1] x, const uint16_t[:, ::1] xh,
                         int hk) except -1:
    """Point ``a`` at half bits ``xh`` when ``hk`` (x then only stands for float32)."""
    if not hk:
        return x.shape[0]
    if floating is float and xh.shape[1] == x.shape[1]:
        a.xh = &xh[0, 0] if xh.shape[0] and xh.shape[1] else NULL
        a.hk = hk
        fl_half_tables(hk)  # once per process: holding the GIL, before any thread reads
        return xh.shape[0]
    raise ValueError("half-precision x needs a float32 (0, C) type array")


# --------------------------------------------------------------------------- the contract

def logsumexp_rows(x, out, int n_threads):
    _logsumexp_rows(*_half(x), out, n_threads)


def _logsumexp_rows(const floating[:, ::1] x, const uint16_t[:, ::1] xh, int hk,
                    floating[::1] out, int n_threads):
    cdef Args a
    cdef int bad
    cdef Py_ssize_t C = x.shape[1]
    _init(&a, K_LSE, x.shape[0], C, max(<Py_ssize_t>1, 16384 // max(C, <Py_ssize_t>1)), &bad)
    a.n = _rows_of(&a, x, xh, hk)
    if out.shape[0] != a.n:
        raise ValueError(f"out has length {out.shape[0]}, expected {a.n}")
    _out(&a, out)
    _go(&a, _p2(x), n_threads, &bad)


def softmax_rows(x, out, bint log, int n_threads):
    _softmax_rows(*_half(x), out, log, n_threads)


def _softmax_rows(const floating[:, ::1] x, const uint16_t[:, ::1] xh, int hk,
                  floating[:, ::1] out, bint log, int n_threads):
    cdef Args a
    cdef int bad
    cdef Py_ssize_t C = x.shape[1]
    _init(&a, K_SOFTMAX, x.shape[0], C, max(<Py_ssize_t>1, 16384 // max(C, <Py_ssize_t>1)),
          &bad)
    a.n = _rows_of(&a, x, xh, hk)
    if out.shape[0] != a.n or out.shape[1] != C:
        raise ValueError("out must have x's shape")
    if a.n == 0 or C == 0:
        return
    a.log = log
    a.out = &out[0, 0]
    _go(&a, _p2(x), n_threads, &bad)


def _sparse(const floating[:, ::1] x, const int64_t[::1] y, const double[::1] sw,
            const double[::1] cw, bint from_logits, int64_t ignore_index, bint has_ignore,
            double label_smoothing, double z_loss, int clip_mode, double clip_eps,
            bint nan_omit, Py_ssize_t block_rows, floating[::1] out, double[::1] lp,
            double[::1] wp, floating[:, ::1] g, floating[:, ::1] h, double scale,
            int n_threads, const uint16_t[:, ::1] xh=None, int hk=0):
    """x: the logits; or, with hk (1 float16, 2 bfloat16), a float32 array of shape (0, C)
    standing for their type, the logits being the bits xh (see _half)."""
    cdef Args a
    cdef int bad
    _init(&a, K_SPARSE, x.shape[0], x.shape[1], block_rows, &bad)
    a.n = _rows_of(&a, x, xh, hk)
    if y.shape[0] != a.n:
        raise ValueError(f"y has length {y.shape[0]}, expected {a.n}")
    if a.n and a.C == 0:
        raise ValueError("sparse cross-entropy needs at least one class")
    a.y = &y[0] if a.n else NULL
    a.sw = _opt(sw, a.n, "sw")
    a.cw = _opt(cw, a.C, "cw")
    a.logits = from_logits
    a.ignore_index = ignore_index
    a.has_ignore = has_ignore
    a.ls = label_smoothing
    a.z = z_loss
    a.omit = nan_omit
    a.scale = scale
    _clip_args(&a, clip_mode, clip_eps)
    _out(&a, out)
    _partials(&a, lp, wp)
    if g is not None:
        _grad2(&a, g, h)
    _go(&a, _p2(x), n_threads, &bad)


def sparse_ce(x, y, sw, cw, from_logits, ignore_index, has_ignore, label_smoothing, z_loss,
              clip_mode, clip_eps, nan_omit, block_rows, out, lp, wp, n_threads):
    x, xh, hk = _half(x)
    _sparse(x, y, sw, cw, from_logits, ignore_index, has_ignore, label_smoothing, z_loss,
            clip_mode, clip_eps, nan_omit, block_rows, out, lp, wp, None, None, 1.0, n_threads,
            xh, hk)


def sparse_ce_grad(x, y, sw, cw, ignore_index, has_ignore, label_smoothing, z_loss, scale,
                   block_rows, lp, wp, g, h, n_threads):
    x, xh, hk = _half(x)
    _sparse(x, y, sw, cw, True, ignore_index, has_ignore, label_smoothing, z_loss, CLIP_NONE,
            0.0, False, block_rows, None, lp, wp, g, h, scale, n_threads, xh, hk)


def _categorical(const floating[:, ::1] x, const floating[:, ::1] t, const double[::1] sw,
                 const double[::1] cw, bint from_logits, double label_smoothing, int clip_mode,
                 double clip_eps, bint nan_omit, Py_ssize_t block_rows, floating[::1] out,
                 double[::1] lp, double[::1] wp, floating[:, ::1] g, floating[:, ::1] h,
                 double scale, int n_threads, const uint16_t[:, ::1] xh=None, int hk=0):
    cdef Args a
    cdef int bad
    _init(&a, K_CAT, x.shape[0], x.shape[1], block_rows, &bad)
    a.n = _rows_of(&a, x, xh, hk)
    _same2(&a, t, "t")
    a.t = _p2(t)
    a.sw = _opt(sw, a.n, "sw")
    a.cw = _opt(cw, a.C, "cw")
    a.logits = from_logits
    a.ls = label_smoothing
    a.omit = nan_omit
    a.scale = scale
    _clip_args(&a, clip_mode, clip_eps)
    _out(&a, out)
    _partials(&a, lp, wp)
    if g is not None:
        _grad2(&a, g, h)
    _go(&a, _p2(x), n_threads, &bad)


def categorical_ce(x, t, sw, cw, from_logits, label_smoothing, clip_mode, clip_eps, nan_omit,
                   block_rows, out, lp, wp, n_threads):
    x, xh, hk = _half(x)
    _categorical(x, t, sw, cw, from_logits, label_smoothing, clip_mode, clip_eps, nan_omit,
                 block_rows, out, lp, wp, None, None, 1.0, n_threads, xh, hk)


def categorical_ce_grad(x, t, sw, cw, label_smoothing, scale, block_rows, lp, wp, g, h,
                        n_threads):
    x, xh, hk = _half(x)
    _categorical(x, t, sw, cw, True, label_smoothing, CLIP_NONE, 0.0, False, block_rows,
                 None, lp, wp, g, h, scale, n_threads, xh, hk)


def _bce(const floating[::1] x, const floating[::1] z, const double[::1] sw, Py_ssize_t sw_div,
         const double[::1] pw, bint from_logits, double label_smoothing, int clip_mode,
         double clip_eps, bint nan_omit, Py_ssize_t block_rows, floating[::1] out,
         double[::1] lp, double[::1] wp, floating[::1] g, floating[::1] h, double scale,
         int n_threads, const uint16_t[::1] xh=None, int hk=0):
    """x: the predictions; or, with hk (1 float16, 2 bfloat16), an empty float32 array
    standing for their type, the logits being the bits xh."""
    cdef Args a
    cdef int bad
    _init(&a, K_BCE, x.shape[0], 1, block_rows, &bad)
    if hk:
        if floating is float:
            a.n = xh.shape[0]
            a.xh = &xh[0] if a.n else NULL
            a.hk = hk
            fl_half_tables(hk)
        else:
            raise ValueError("half-precision x needs a float32 type array")
    if z.shape[0] != a.n:
        raise ValueError(f"z has length {z.shape[0]}, expected {a.n}")
    if sw_div < 1:
        raise ValueError(f"sw_div must be positive, got {sw_div}")
    a.t = _p1(z)
    a.sw_div = sw_div
    a.sw = _opt(sw, (a.n + sw_div - 1) // sw_div, "sw")
    a.K = pw.shape[0]
    a.pw = &pw[0] if a.K else NULL
    a.logits = from_logits
    a.ls = label_smoothing
    a.omit = nan_omit
    a.scale = scale
    _clip_args(&a, clip_mode, clip_eps)
    _out(&a, out)
    _partials(&a, lp, wp)
    if g is not None:
        if g.shape[0] != a.n or (h.shape[0] != 0 and h.shape[0] != a.n):
            raise ValueError(f"g / h have lengths {g.shape[0]} / {h.shape[0]}, expected {a.n}")
        if a.n:
            a.g = &g[0]
            if h.shape[0]:
                a.h = &h[0]
    _go(&a, _p1(x), n_threads, &bad)


def bce(x, z, sw, sw_div, pw, from_logits, label_smoothing, clip_mode, clip_eps, nan_omit,
        block_rows, out, lp, wp, n_threads):
    x, xh, hk = _half(x)
    _bce(x, z, sw, sw_div, pw, from_logits, label_smoothing, clip_mode, clip_eps, nan_omit,
         block_rows, out, lp, wp, None, None, 1.0, n_threads, xh, hk)


def bce_grad(x, z, sw, sw_div, pw, label_smoothing, scale, block_rows, lp, wp, g, h, n_threads):
    x, xh, hk = _half(x)
    _bce(x, z, sw, sw_div, pw, True, label_smoothing, CLIP_NONE, 0.0, False, block_rows, None,
         lp, wp, g, h, scale, n_threads, xh, hk)


def _kl(const floating[:, ::1] x, const floating[:, ::1] t, const double[::1] sw,
        bint log_input, bint log_target, int clip_mode, double clip_eps, bint nan_omit,
        Py_ssize_t block_rows, floating[::1] out, double[::1] lp, double[::1] wp,
        floating[:, ::1] g, floating[:, ::1] h, double scale, int n_threads,
        const uint16_t[:, ::1] xh=None, int hk=0):
    cdef Args a
    cdef int bad
    _init(&a, K_KL, x.shape[0], x.shape[1], block_rows, &bad)
    a.n = _rows_of(&a, x, xh, hk)
    _same2(&a, t, "t")
    a.t = _p2(t)
    a.sw = _opt(sw, a.n, "sw")
    a.log_input = log_input
    a.log_target = log_target
    a.omit = nan_omit
    a.scale = scale
    _clip_args(&a, clip_mode, clip_eps)
    _out(&a, out)
    _partials(&a, lp, wp)
    if g is not None:
        _grad2(&a, g, h)
    _go(&a, _p2(x), n_threads, &bad)


def kl(x, t, sw, log_input, log_target, clip_mode, clip_eps, nan_omit, block_rows, out, lp, wp,
       n_threads):
    x, xh, hk = _half(x)
    _kl(x, t, sw, log_input, log_target, clip_mode, clip_eps, nan_omit, block_rows, out, lp, wp,
        None, None, 1.0, n_threads, xh, hk)


def kl_grad(x, t, sw, log_input, log_target, scale, block_rows, lp, wp, g, h, n_threads):
    x, xh, hk = _half(x)
    _kl(x, t, sw, log_input, log_target, CLIP_NONE, 0.0, False, block_rows, None, lp, wp, g, h,
        scale, n_threads, xh, hk)


def _mse(const floating[:, ::1] x, const floating[:, ::1] t, const double[::1] ow,
         const double[::1] sw, bint nan_omit, Py_ssize_t block_rows, floating[::1] out,
         double[::1] lp, double[::1] wp, floating[:, ::1] g, floating[:, ::1] h, double scale,
         int n_threads, const uint16_t[:, ::1] xh=None, int hk=0):
    cdef Args a
    cdef int bad
    cdef Py_ssize_t j
    _init(&a, K_MSE, x.shape[0], x.shape[1], block_rows, &bad)
    a.n = _rows_of(&a, x, xh, hk)
    _same2(&a, t, "t")
    a.t = _p2(t)
    a.sw = _opt(sw, a.n, "sw")
    a.ow = _opt(ow, a.C, "ow")
    if a.ow != NULL:
        for j in range(a.C):
            a.ow_sum += a.ow[j]
    a.omit = nan_omit
    a.scale = scale
    _out(&a, out)
    _partials(&a, lp, wp)
    if g is not None:
        _grad2(&a, g, h)
    _go(&a, _p2(x), n_threads, &bad)


def mse(x, t, ow, sw, nan_omit, block_rows, out, lp, wp, n_threads):
    x, xh, hk = _half(x)
    _mse(x, t, ow, sw, nan_omit, block_rows, out, lp, wp, None, None, 1.0, n_threads, xh, hk)


def mse_grad(x, t, ow, sw, scale, block_rows, lp, wp, g, h, n_threads):
    x, xh, hk = _half(x)
    _mse(x, t, ow, sw, False, block_rows, None, lp, wp, g, h, scale, n_threads, xh, hk)


# --------------------------------------------------------------------------- row argmax

cdef inline bint _am_take(floating v, floating b) noexcept nogil:
    """v replaces the running best b: larger, or the first NaN (np.argmax)."""
    return (v > b) | ((v != v) & (b == b))


cdef void _argmax_small(const floating *x, Py_ssize_t nr, Py_ssize_t C,
                        int64_t *out) noexcept nogil:
    """argmax of rows with C <= SMALL_C: 16 rows at a time, transposed into a tile so the
    compare-and-select runs across the 16 rows (the index kept in x's dtype: exact)."""
    cdef floating tile[16 * SMALL_C]
    cdef floating best[16]
    cdef floating bi[16]
    cdef Py_ssize_t off[16]
    cdef const floating *xg
    cdef floating v, b
    cdef bint tk
    cdef Py_ssize_t g0_q, g0, gn, r, j
    for g0_q in range((nr + 15) // 16):
        g0 = g0_q * 16
        gn = min(<Py_ssize_t>16, nr - g0)
        xg = x + g0 * C
        for r in range(16):
            off[r] = min(r, gn - 1) * C
        for j in range(C):
            for r in range(16):
                tile[j * 16 + r] = xg[off[r] + j]
        for r in range(16):
            best[r] = tile[r]
            bi[r] = 0
        for j in range(1, C):
            for r in range(16):
                v = tile[j * 16 + r]
                b = best[r]
                tk = _am_take(v, b)
                best[r] = v if tk else b
                bi[r] = <floating>j if tk else bi[r]
        for r in range(gn):
            out[g0 + r] = <int64_t>bi[r]


cdef Py_ssize_t _argmax_wide(const floating *x, Py_ssize_t n) noexcept nogil:
    """argmax of one row: a vectorised pass for the max (NaN ignored) and whether there is
    a NaN, then the first element equal to the max (or the first NaN), searched 64 at a
    time with a vectorised test."""
    cdef floating mv[2 * RL]
    cdef floating nv[2 * RL]
    cdef floating m = -FL_INF
    cdef floating v
    cdef Py_ssize_t q, j = 0, start_q, start, nn
    cdef int k, hit
    cdef bint has_nan = False
    if n >= 2 * RL:
        for k in range(2 * RL):
            mv[k] = -FL_INF
            nv[k] = 0
        for q in range(n // (2 * RL)):
            for k in range(2 * RL):
                v = x[q * 2 * RL + k]
                mv[k] = v if v > mv[k] else mv[k]
                nv[k] = 1 if v != v else nv[k]
        for k in range(2 * RL):
            m = mv[k] if mv[k] > m else m
            has_nan |= nv[k] != 0
        j = n - n % (2 * RL)
    for q in range(j, n):
        v = x[q]
        m = v if v > m else m
        has_nan |= v != v
    for start_q in range((n + 63) // 64):
        start = start_q * 64
        nn = min(<Py_ssize_t>64, n - start)
        hit = 0
        if has_nan:
            for j in range(nn):
                v = x[start + j]
                hit |= v != v
        else:
            for j in range(nn):
                hit |= x[start + j] == m
        if hit:
            for j in range(nn):
                v = x[start + j]
                if (v != v) if has_nan else (v == m):
                    return start + j
    return 0


cdef void _argmax_block(const floating *x, Py_ssize_t r0, Py_ssize_t nr, Py_ssize_t C,
                        int64_t *out) noexcept nogil:
    cdef Py_ssize_t r
    if FL_HAVE_ARGMAX_SIMD:  # AVX-512 build: masked vector compares, any width
        for r in range(nr):
            if floating is float:
                out[r0 + r] = fl_argmax_f32(x + (r0 + r) * C, C)
            else:
                out[r0 + r] = fl_argmax_f64(x + (r0 + r) * C, C)
    elif C <= SMALL_C:
        _argmax_small(x + r0 * C, nr, C, out + r0)
    else:
        for r in range(nr):
            out[r0 + r] = _argmax_wide(x + (r0 + r) * C, C)


def argmax_rows(const floating[:, ::1] x, int64_t[::1] out, int n_threads):
    """out[i] = np.argmax(x[i]) (first maximum, first NaN wins), parallel over rows."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1]
    cdef Py_ssize_t rows, nb, b, r0
    cdef const floating *p
    if out.shape[0] != N:
        raise ValueError(f"out has length {out.shape[0]}, expected {N}")
    if N == 0:
        return
    if C == 0:
        raise ValueError("argmax of rows with no columns")
    p = &x[0, 0]
    rows = max(<Py_ssize_t>16, (<Py_ssize_t>65536 // C) // 16 * 16)
    nb = (N + rows - 1) // rows
    n_threads = fl_threads(n_threads) if nb > 1 else 1
    with nogil:
        if n_threads <= 1:
            for b in range(nb):
                r0 = b * rows
                _argmax_block(p, r0, min(rows, N - r0), C, &out[0])
        else:
            for b in prange(nb, schedule='static', num_threads=n_threads):
                r0 = b * rows
                _argmax_block(p, r0, min(rows, N - r0), C, &out[0])


# --------------------------------------------------------------------------- scipy.special element-wise

cdef enum:
    EW_XLOGY = 0
    EW_REL_ENTR = 1
    EW_KL_DIV = 2
    EW_CHUNK = 1024
    EW_BLOCK = 16384  # elements per parallel work item


cdef void _ew_chunk(int op, const floating *x, const floating *y, floating *out,
                    Py_ssize_t n) noexcept nogil:
    """The element-wise functions in float64, rounded once to the dtype (n <= EW_CHUNK).
    Branch-free loops (selects) around the vectorised fl_log64 / log1p."""
    cdef Py_ssize_t j
    cdef double xd, yd, r, rr, u, l, aa, res
    cdef bint pos, zero, near, normal
    cdef int bad = 0
    if op == EW_XLOGY:
        for j in range(n):
            xd = <double>x[j]
            yd = <double>y[j]
            res = xd * fl_log64(yd)
            out[j] = <floating>_cn(0.0 if (xd == 0.0) & (yd == yd) else res)
    elif op == EW_KL_DIV:
        for j in range(n):
            xd = <double>x[j]
            yd = <double>y[j]
            pos = (xd > 0.0) & (yd > 0.0)
            zero = (xd == 0.0) & (yd >= 0.0)
            res = xd * fl_log64(xd / yd) - xd + yd
            res = res if pos else (yd if zero else FL_INF)
            res = FL_NAN if (xd != xd) | (yd != yd) else res
            out[j] = <floating>_cn(res)
    else:
        # rel_entr as SciPy >= 1.15: L = log1p((x-y)/y) for 0.5 < x/y < 2, log(x/y) if x/y
        # is normal, log(x) - log(y) otherwise. One log per element (log1p is log(1 + a)
        # plus the fl_log1p64 correction); the rare third case is redone after the loop.
        for j in range(n):
            xd = <double>x[j]
            yd = <double>y[j]
            pos = (xd > 0.0) & (yd > 0.0)
            zero = (xd == 0.0) & (yd >= 0.0)
            rr = xd / yd
            near = (rr > 0.5) & (rr < 2.0)
            normal = (rr > 2.2250738585072014e-308) & (rr < FL_INF)
            aa = (xd - yd) / yd
            u = (1.0 + aa) if near else rr
            l = fl_log64(u)
            l = (l + (aa - (u - 1.0)) / u) if near else l
            bad |= pos & (not (near | normal))
            res = xd * l
            res = res if pos else (0.0 if zero else FL_INF)
            res = FL_NAN if (xd != xd) | (yd != yd) else res
            out[j] = <floating>_cn(res)
        if bad:
            for j in range(n):
                xd = <double>x[j]
                yd = <double>y[j]
                if xd > 0.0 and yd > 0.0:
                    rr = xd / yd
                    if not ((rr > 0.5 and rr < 2.0) or
                            (rr > 2.2250738585072014e-308 and rr < FL_INF)):
                        out[j] = <floating>_cn(xd * (fl_log64(xd) - fl_log64(yd)))


cdef void _ew_block(int op, const floating *x, const floating *y, floating *out,
                    Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t q, s
    for q in range((n + EW_CHUNK - 1) // EW_CHUNK):
        s = q * EW_CHUNK
        _ew_chunk(op, x + s, y + s, out + s, min(<Py_ssize_t>EW_CHUNK, n - s))


def elementwise(int op, const floating[::1] x, const floating[::1] y, floating[::1] out,
                int n_threads):
    """scipy.special's xlogy (op 0) / rel_entr (1) / kl_div (2) in float64, rounded once."""
    cdef Py_ssize_t n = x.shape[0], nb, b, s
    cdef const floating *px
    cdef const floating *py
    cdef floating *po
    if op < EW_XLOGY or op > EW_KL_DIV:
        raise ValueError(f"unknown element-wise op {op}")
    if y.shape[0] != n or out.shape[0] != n:
        raise ValueError(f"x, y, out have lengths {n}, {y.shape[0]}, {out.shape[0]}")
    if n == 0:
        return
    px = &x[0]
    py = &y[0]
    po = &out[0]
    nb = (n + EW_BLOCK - 1) // EW_BLOCK
    n_threads = fl_threads(n_threads) if nb > 1 else 1
    with nogil:
        if n_threads <= 1:
            _ew_block(op, px, py, po, n)
        else:
            for b in prange(nb, schedule='static', num_threads=n_threads):
                s = b * EW_BLOCK
                _ew_block(op, px + s, py + s, po + s, min(<Py_ssize_t>EW_BLOCK, n - s))


# --------------------------------------------------------------------------- validation helper

cdef Py_ssize_t _first_outside(const floating *x, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t start_q, start, j, nn
    cdef int bad
    cdef floating v
    for start_q in range((n + 1024 - 1) // 1024):
        start = start_q * 1024
        nn = min(<Py_ssize_t>1024, n - start)
        bad = 0
        for j in range(nn):  # vectorised test, then the exact position
            v = x[start + j]
            bad |= (v < 0) | (v > 1)
        if bad:
            for j in range(nn):
                v = x[start + j]
                if v < 0 or v > 1:
                    return start + j
    return -1


def _first_outside_unit_interval(const floating[::1] x, int n_threads):
    cdef Py_ssize_t n = x.shape[0]
    cdef Py_ssize_t t, lo, hi, k, found = -1
    cdef Py_ssize_t nt = fl_threads(max(1, min(n_threads, n >> 20)))  # threads: >= 1M values
    cdef const floating *p
    cdef Py_ssize_t hits[64]
    if n == 0:
        return -1
    p = &x[0]
    nt = min(nt, <Py_ssize_t>64)
    with nogil:
        if nt == 1:
            found = _first_outside(p, n)
        else:
            # one contiguous range per thread; each stops at its first hit, the answer
            # is the first hit in range order (valid input: one pass, split in nt)
            for t in prange(nt, schedule='static', num_threads=nt):
                lo = t * n // nt
                hi = (t + 1) * n // nt
                k = _first_outside(p + lo, hi - lo)
                hits[t] = lo + k if k >= 0 else -1
            for t in range(nt):
                if hits[t] >= 0:
                    found = hits[t]
                    break
    return found


def first_outside_unit_interval(x, n_threads=2):
    return _first_outside_unit_interval(x, n_threads)


# --------------------------------------------------------------------------- test and build helpers

def _math(int which, const double[::1] x, double[::1] out, int n_threads=1):
    """out = f(x) for the header's functions (tests): 0 exp64, 1 log64, 2 log1p64,
    3 exp32, 4 log32, 5 log1p32, 6 expneg32, 7 log1p01_32."""
    cdef Py_ssize_t n = x.shape[0], i
    if out.shape[0] != n:
        raise ValueError("out must have x's length")
    if which < 0 or which > 7:
        raise ValueError("which must be in 0..7")
    n_threads = fl_threads(n_threads)
    with nogil:
        if which == 0:
            for i in prange(n, schedule='static', num_threads=n_threads):
                out[i] = fl_exp64(x[i])
        elif which == 1:
            for i in prange(n, schedule='static', num_threads=n_threads):
                out[i] = fl_log64(x[i])
        elif which == 2:
            for i in prange(n, schedule='static', num_threads=n_threads):
                out[i] = fl_log1p64(x[i])
        elif which == 3:
            for i in prange(n, schedule='static', num_threads=n_threads):
                out[i] = fl_exp32(x[i])
        elif which == 4:
            for i in prange(n, schedule='static', num_threads=n_threads):
                out[i] = fl_log32(x[i])
        elif which == 5:
            for i in prange(n, schedule='static', num_threads=n_threads):
                out[i] = fl_log1p32(x[i])
        elif which == 6:
            for i in prange(n, schedule='static', num_threads=n_threads):
                out[i] = fl_expneg32(x[i])
        else:
            for i in prange(n, schedule='static', num_threads=n_threads):
                out[i] = fl_log1p01_32(x[i])


def _math_f32(int which, const float[::1] x, float[::1] out, int n_threads=1):
    """out = float32(f(float64(x))) for the float32-grade functions, which in 3..7."""
    cdef Py_ssize_t n = x.shape[0], i
    if out.shape[0] != n:
        raise ValueError("out must have x's length")
    n_threads = fl_threads(n_threads)
    with nogil:
        if which == 3:
            for i in prange(n, schedule='static', num_threads=n_threads):
                out[i] = <float>fl_exp32(<double>x[i])
        elif which == 4:
            for i in prange(n, schedule='static', num_threads=n_threads):
                out[i] = <float>fl_log32(<double>x[i])
        elif which == 5:
            for i in prange(n, schedule='static', num_threads=n_threads):
                out[i] = <float>fl_log1p32(<double>x[i])
        elif which == 6:
            for i in prange(n, schedule='static', num_threads=n_threads):
                out[i] = <float>fl_expneg32(<double>x[i])
        elif which == 7:
            for i in prange(n, schedule='static', num_threads=n_threads):
                out[i] = <float>fl_log1p01_32(<double>x[i])
    if which < 3 or which > 7:
        raise ValueError("which must be in 3..7")


def codes():
    """The integer codes this module was compiled with (the contract's, in
    ``fastloss.kernels._blocks``; a test checks that they agree)."""
    return dict(LANES=LANES, CLIP_NONE=CLIP_NONE, CLIP_EPS=CLIP_EPS, CLIP_KERAS2=CLIP_KERAS2,
                CLIP_TORCH=CLIP_TORCH, EW_XLOGY=EW_XLOGY, EW_REL_ENTR=EW_REL_ENTR,
                EW_KL_DIV=EW_KL_DIV)


def build_info():
    """Facts compiled into this extension."""
    omp = fl_openmp_version()
    return {
        "variant": fl_variant().decode(),
        "openmp": bool(omp),
        "openmp_version": omp,
        "simd": fl_simd_level().decode(),
        "fma": bool(fl_have_fma()),
        "compile_flags": fl_build_flags().decode(),
        "build_id": fl_build_id().decode(),
    }


def cpu_level():
    """x86-64 micro-architecture level of this CPU (1..4, as in x86-64-v2/v3/v4; 4 means
    AVX-512 F/BW/CD/DQ/VL usable by the OS), 0 on other architectures."""
    return fl_cpu_level()
