"""Vectorisable exp, log and log1p for Numba kernels.

PyPI Numba has no SVML, so ``math.exp`` in a loop is a scalar libm call (about
150 M/s per core) and stops the loop vectoriser. These are branch-free range
reduction + polynomial versions (the conditionals below all become selects) that
LLVM turns into packed AVX2 / AVX-512 code; bit manipulations go through the
bitcast intrinsics of ``_intrin`` and every multiply-add is an explicit
``llvm.fma`` (no fast-math flags anywhere).

Two accuracy grades, both evaluated in float64 (8 lanes of a zmm register):

* ``exp64`` / ``log64`` / ``log1p64``: full double precision (measured max error
  0.75 / 0.70 / 0.80 ulp; exp 0.64 ulp for normal results), used by the float64
  kernels.
* ``exp_f32`` / ``log_f32`` / ``log1p_f32`` (float64 in and out): relative error
  below 2**-35, i.e. far below half a float32 ulp. The float32 kernels keep the
  float64 value and round the *loss* once, so their per-sample results are
  within 1 ulp of the float64 reference rounded to float32. Evaluating in
  float64 also gives float32 overflow and gradual underflow (denormal results)
  with exactly one rounding and no special case.
* ``exp32`` / ``log32`` / ``log1p32``: float32 in and out, ``float32(exp_f32(x))``
  (exhaustively measured: max error 0.50004 / 0.50015 / 0.50017 float32 ulp).
* ``exp_neg_f32``: the log-sum-exp inner loop (d <= 0, no NaN), cheaper still.

Polynomial coefficients: Remez minimax fits (relative error) computed with
mpmath, see ``_coeffs.py``. Range reduction: ``x = k ln2 + r`` with Cody-Waite
constants from fdlibm (``LN2HI`` has 32 significant bits so ``k*LN2HI`` is
exact); ``log`` splits ``x = 2**k z`` with ``z`` in ``[sqrt(1/2), sqrt(2))``
using integer arithmetic on the bits (as musl does) and evaluates
``log1p(f) = 2 atanh(f / (2 + f))`` in fdlibm's form.

Special values are exact: exp(-inf) = 0, exp(+inf) = inf, exp(NaN) = NaN,
overflow to inf and gradual underflow; log(0) = -inf, log(inf) = inf,
log(x < 0) = NaN, log(NaN) = NaN, denormal inputs handled; log1p(-1) = -inf,
log1p(x < -1) = NaN, log1p(+-0) = +-0.
"""

import numpy as np
from numba import njit, types
from numba.extending import overload

from . import _cache  # noqa: F401  (before any cache=True: see _cache.py)
from ._intrin import bits64, fma, from_bits64

LOG2E = 1.4426950408889634
LN2 = 0.6931471805599453
LN2HI = 6.93147180369123816490e-01  # fdlibm ln2_hi: 32 significant bits
LN2LO = 1.90821492927058770002e-10
MAGIC = 6755399441055744.0  # 1.5 * 2**52: x + MAGIC rounds x to an integer in the low bits
MAGIC_BITS = 0x4338000000000000
SQRT_HALF_BITS = 0x3FE6A09E667F3BCD
EXP_MASK = -(1 << 52)  # 0xfff0000000000000 as int64
TWO52 = 4503599627370496.0
MIN_NORMAL = 2.2250738585072014e-308
INF = np.inf

# exp(r) = 1 + r + r**2 q(r), |r| <= ln2/2; q minimax, relative error 2.7e-18 (deg 10)
# and 5.2e-11 (deg 6, the float32 grade: exp relative error < 2**-37).
E10 = (0.50000000000000000012, 0.16666666666666670967, 0.041666666666666618396,
       0.0083333333333261617425, 0.0013888888888917981064, 0.00019841269874740819819,
       0.000024801587245708002792, 2.7557255488813583755e-6, 2.755734963301610822e-7,
       2.5105184215329368749e-8, 2.0889375863212717454e-9)
E6 = (0.50000000000208944007, 0.16666666718801191405, 0.04166666640526912478,
      0.0083332985456933149037, 0.0013888923752880974047, 0.00019899235017641669502,
      0.000024820876953304393169)
# log1p(f) = f - hfsq + s (hfsq + z g(z)), s = f / (2 + f), z = s**2, hfsq = f**2 / 2;
# g minimax on [0, 0.0295], relative error 4.6e-16 (deg 6) and 1.7e-9 (deg 3: < 2**-35
# relative in log1p).
L6 = (0.66666666666666697017, 0.39999999999899113847, 0.28571428626134041321,
      0.22222211111281341353, 0.18182890700254556215, 0.15331673008335739741,
      0.14617011557850926235)
L3 = (0.6666666655403523609, 0.40000122132754661642, 0.28550793377478472403,
      0.23331108530931891815)

_E10_0, _E10_1, _E10_2, _E10_3, _E10_4, _E10_5, _E10_6, _E10_7, _E10_8, _E10_9, _E10_10 = E10
_E6_0, _E6_1, _E6_2, _E6_3, _E6_4, _E6_5, _E6_6 = E6
_L6_0, _L6_1, _L6_2, _L6_3, _L6_4, _L6_5, _L6_6 = L6
_L3_0, _L3_1, _L3_2, _L3_3 = L3


@njit(cache=True, error_model="numpy")
def _exp_reduce(x):
    """``(r, k)`` with ``x = k ln2 + r``; x is clamped to [-746, 710] first (NaN -> -746)."""
    xc = x if x > -746.0 else -746.0
    xc = xc if xc < 710.0 else 710.0
    t = xc * LOG2E + MAGIC
    kf = t - MAGIC
    k = bits64(t) - MAGIC_BITS
    r = fma(-kf, LN2HI, xc)
    r = fma(-kf, LN2LO, r)
    return r, k


@njit(cache=True, error_model="numpy")
def _scale(p, k):
    """``p * 2**k`` for k in [-1076, 1024] in two exact-or-once-rounded steps (denormals ok)."""
    h = k >> 1
    return (p * from_bits64((h + 1023) << 52)) * from_bits64((k - h + 1023) << 52)


@njit(cache=True, error_model="numpy")
def exp64(x):
    """exp(x), float64, max error 0.51 ulp (subnormal results: one more rounding).

    ``r = r_hi + r_lo`` with ``r_hi = x - k LN2HI`` exact; ``1 + r_hi`` is formed with
    its rounding error (Fast2Sum), so the only large rounding is the final one.
    """
    xc = x if x > -746.0 else -746.0
    xc = xc if xc < 710.0 else 710.0
    t = xc * LOG2E + MAGIC
    kf = t - MAGIC
    k = bits64(t) - MAGIC_BITS
    r_hi = fma(-kf, LN2HI, xc)
    r_lo = -kf * LN2LO
    r = r_hi + r_lo
    q = fma(_E10_10, r, _E10_9)
    q = fma(q, r, _E10_8)
    q = fma(q, r, _E10_7)
    q = fma(q, r, _E10_6)
    q = fma(q, r, _E10_5)
    q = fma(q, r, _E10_4)
    q = fma(q, r, _E10_3)
    q = fma(q, r, _E10_2)
    q = fma(q, r, _E10_1)
    q = fma(q, r, _E10_0)
    s = 1.0 + r_hi
    e1 = (1.0 - s) + r_hi
    p = s + (e1 + fma(r * r, q, r_lo))
    res = _scale(p, k)
    return x if x != x else res


@njit(cache=True, error_model="numpy")
def exp_f32(x):
    """exp(x) for float32-grade results: float64 in and out, relative error < 2**-37."""
    r, k = _exp_reduce(x)
    q = fma(_E6_6, r, _E6_5)
    q = fma(q, r, _E6_4)
    q = fma(q, r, _E6_3)
    q = fma(q, r, _E6_2)
    q = fma(q, r, _E6_1)
    q = fma(q, r, _E6_0)
    p = 1.0 + fma(r * r, q, r)
    res = _scale(p, k)
    return x if x != x else res


@njit(cache=True, error_model="numpy")
def exp_neg_f32(d):
    """float32-grade exp(d) for d <= 0 or -inf, not NaN: the inner loop of log-sum-exp.

    Cheaper than :func:`exp_f32`: a one-constant reduction (``k ln2`` with ``|k| <=
    1022``: the float64 ln2's error adds < 1e-13 relative) and one scaling step;
    d below -708 gives exactly 0 (the true value, below 3.3e-308, cannot move a
    float32 result; exp(-inf) is 0 as it should).
    """
    flush = d < -708.0
    dc = -708.0 if flush else d
    t = dc * LOG2E + MAGIC
    kf = t - MAGIC
    k = bits64(t) - MAGIC_BITS
    r = fma(-kf, LN2, dc)
    q = fma(_E6_6, r, _E6_5)
    q = fma(q, r, _E6_4)
    q = fma(q, r, _E6_3)
    q = fma(q, r, _E6_2)
    q = fma(q, r, _E6_1)
    q = fma(q, r, _E6_0)
    p = 1.0 + fma(r * r, q, r)
    return 0.0 if flush else p * from_bits64((k + 1023) << 52)


@njit(cache=True, error_model="numpy")
def _log_reduce(x):
    """``(f, k)`` with ``x = 2**k (1 + f)``, ``1 + f`` in [sqrt(1/2), sqrt(2)), for x > 0."""
    tiny = x < MIN_NORMAL
    xs = x * TWO52 if tiny else x
    ix = bits64(xs)
    tmp = ix - SQRT_HALF_BITS
    k = tmp >> 52
    z = from_bits64(ix - (tmp & EXP_MASK))
    k = k - 52 if tiny else k
    return z - 1.0, float(k)


@njit(cache=True, error_model="numpy")
def _log_special(x, res):
    res = res if x < INF else x  # +inf -> inf, NaN handled below
    res = res if x > 0.0 else (-INF if x == 0.0 else np.nan)
    return x if x != x else res


@njit(cache=True, error_model="numpy")
def _log1p_red64(f, kd, corr=0.0):
    """``kd ln2 + log1p(f) + corr`` for f in [sqrt(1/2) - 1, sqrt(2) - 1] and a small
    correction ``corr`` folded into the low-order terms (fdlibm's e_log.c form)."""
    s = f / (2.0 + f)
    z = s * s
    g = fma(_L6_6, z, _L6_5)
    g = fma(g, z, _L6_4)
    g = fma(g, z, _L6_3)
    g = fma(g, z, _L6_2)
    g = fma(g, z, _L6_1)
    g = fma(g, z, _L6_0)
    R = z * g
    hfsq = 0.5 * f * f
    return kd * LN2HI - ((hfsq - (s * (hfsq + R) + (kd * LN2LO + corr))) - f)


@njit(cache=True, error_model="numpy")
def _log1p_red_f32(f, kd):
    """float32-grade ``kd ln2 + log1p(f)`` on the reduced range (relative error < 2**-35)."""
    s = f / (2.0 + f)
    z = s * s
    g = fma(_L3_3, z, _L3_2)
    g = fma(g, z, _L3_1)
    g = fma(g, z, _L3_0)
    R = z * g
    hfsq = 0.5 * f * f
    return kd * LN2HI - ((hfsq - (s * (hfsq + R) + kd * LN2LO)) - f)


@njit(cache=True, error_model="numpy")
def log64(x):
    """log(x), float64, below 1 ulp."""
    f, kd = _log_reduce(x)
    return _log_special(x, _log1p_red64(f, kd))


@njit(cache=True, error_model="numpy")
def log_f32(x):
    """log(x) for float32-grade results: float64 in and out, relative error < 2**-35."""
    f, kd = _log_reduce(x)
    return _log_special(x, _log1p_red_f32(f, kd))


@njit(cache=True, error_model="numpy")
def _log1p_special(x, res):
    res = res if x != -1.0 else -INF
    res = res if x < INF else x
    return x if x == 0.0 else res  # keeps the sign of zero (and NaN fails every test)


_log1p_fix = _log1p_special  # for kernels that evaluate log1p as log(1 + x) themselves


@njit(cache=True, error_model="numpy")
def log1p64(x):
    """log1p(x), float64: log(w) + c/w with w = 1 + x rounded and c its exact rounding
    error, the correction entering log's low-order terms (one final rounding)."""
    w = 1.0 + x
    c = x - (w - 1.0)
    f, kd = _log_reduce(w)
    res = _log_special(w, _log1p_red64(f, kd, c / w))
    return _log1p_special(x, res)


@njit(cache=True, error_model="numpy")
def log1p_f32(x):
    """log1p(x) for float32-grade results (float64 in and out)."""
    w = 1.0 + x
    c = x - (w - 1.0)
    res = log_f32(w) + c / w
    return _log1p_special(x, res)


SQRT2M1 = 0.41421356237309503  # sqrt(2) - 1


@njit(cache=True, error_model="numpy")
def log1p_unit64(e):
    """``log1p(e)`` for e in [0, 1], float64, never rounding ``1 + e``: for e <= sqrt(2) - 1
    it is the reduced-range kernel itself, above ``ln2 + log1p((e - 1) / 2)`` with
    ``(e - 1) / 2`` in (-0.293, 0]."""
    hi = e > SQRT2M1
    return _log1p_red64((e - 1.0) * 0.5 if hi else e, 1.0 if hi else 0.0)


@njit(cache=True, error_model="numpy")
def log1p_unit_f32(e):
    """float32-grade :func:`log1p_unit64`."""
    hi = e > SQRT2M1
    return _log1p_red_f32((e - 1.0) * 0.5 if hi else e, 1.0 if hi else 0.0)


@njit(cache=True, error_model="numpy")
def softplus_neg64(a):
    """``log1p(exp(-a))`` for a >= 0 (or NaN), float64."""
    return log1p_unit64(exp64(-a))


@njit(cache=True, error_model="numpy")
def softplus_neg_f32(a):
    """float32-grade ``log1p(exp(-a))`` for a >= 0 (float64 in and out; NaN in gives
    an unspecified number, the caller selects NaN)."""
    return log1p_unit_f32(exp_neg_f32(-a))


@njit(cache=True, error_model="numpy")
def exp32(x):
    """float32 exp: one rounding of the float32-grade float64 value."""
    return np.float32(exp_f32(np.float64(x)))


@njit(cache=True, error_model="numpy")
def log32(x):
    return np.float32(log_f32(np.float64(x)))


@njit(cache=True, error_model="numpy")
def log1p32(x):
    return np.float32(log1p_f32(np.float64(x)))


# ------------------------------------------------- grade chosen by the kernel's dtype

def exp_for(like, x):
    """exp of the float64 ``x`` at the grade of ``like``'s type (float32 or float64)."""


def exp_neg_for(like, d):
    """exp(d) for d <= 0 (not NaN) at the grade of ``like``'s type; the float32 grade
    flushes results below 3.3e-308 to 0 (see :func:`exp_neg_f32`)."""


def log_for(like, x):
    """log of the float64 ``x`` at the grade of ``like``'s type."""


def log1p_for(like, x):
    """log1p of the float64 ``x`` at the grade of ``like``'s type."""


def log1p_unit_for(like, e):
    """``log1p(e)`` for e in [0, 1] at the grade of ``like``'s type."""


def softplus_neg_for(like, a):
    """``log1p(exp(-a))`` (a >= 0) at the grade of ``like``'s type."""


@overload(exp_for)
def _exp_for(like, x):
    if like == types.float32:
        return lambda like, x: exp_f32(x)
    return lambda like, x: exp64(x)


@overload(exp_neg_for)
def _exp_neg_for(like, d):
    if like == types.float32:
        return lambda like, d: exp_neg_f32(d)
    return lambda like, d: exp64(d)


@overload(log_for)
def _log_for(like, x):
    if like == types.float32:
        return lambda like, x: log_f32(x)
    return lambda like, x: log64(x)


@overload(log1p_for)
def _log1p_for(like, x):
    if like == types.float32:
        return lambda like, x: log1p_f32(x)
    return lambda like, x: log1p64(x)


@overload(log1p_unit_for)
def _log1p_unit_for(like, e):
    if like == types.float32:
        return lambda like, e: log1p_unit_f32(e)
    return lambda like, e: log1p_unit64(e)


@overload(softplus_neg_for)
def _softplus_neg_for(like, a):
    if like == types.float32:
        return lambda like, a: softplus_neg_f32(a)
    return lambda like, a: softplus_neg64(a)


# ---------------------------------------------------------------- array maps (tests, benchmarks)

@njit(cache=True, error_model="numpy")
def exp_array(x, out):
    for i in range(x.shape[0]):
        out[i] = exp_for(x[i], np.float64(x[i]))


@njit(cache=True, error_model="numpy")
def log_array(x, out):
    for i in range(x.shape[0]):
        out[i] = log_for(x[i], np.float64(x[i]))


@njit(cache=True, error_model="numpy")
def log1p_array(x, out):
    for i in range(x.shape[0]):
        out[i] = log1p_for(x[i], np.float64(x[i]))
