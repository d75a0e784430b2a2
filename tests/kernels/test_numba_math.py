"""Accuracy of the Numba backend's vectorised exp / log / log1p (``kernels/numba/_math.py``).

float32: the error of each result in float32 ulps of the exact value (the float64
function, whose own error is ~1e-16 relative, far below a float32 ulp), and the
distance in ulps to the float64 value rounded to float32. Sampled (about 1e6
inputs per function) in the default run; every float32 input of the range in the
``slow`` tests. float64: error in ulps against ``np.longdouble`` (x87 extended)
when the platform has it.

Measured (this machine), every float32 input of the range (the ``slow`` tests):
exp32 on [-104, 89]: max error 0.500042 ulp, 1404 of 2,239,889,410 results one ulp
from the float64 value rounded to float32 (all others equal to it); log32 on all
positive finite floats: 0.500153 ulp, 1807 of 2,139,095,039; log1p32 on (-1, inf):
0.500167 ulp, 2904 of 3,204,448,256. float64 (sampled, vs long double):
exp/log/log1p 0.75 / 0.70 / 0.80 ulp (exp: 0.64 ulp for normal results).
"""

import numpy as np
import pytest

from fastloss.kernels import numba as nb_backend

pytestmark = pytest.mark.skipif(not nb_backend.AVAILABLE, reason=nb_backend.WHY_UNAVAILABLE)

if nb_backend.AVAILABLE:
    from fastloss.kernels.numba import _math as M

F32_BOUND = 0.5 + 2.0 ** -10  # float32-grade functions: float64 evaluation, one rounding
F64_BOUND = 1.0
EXP_RANGE = (-104.0, 89.0)


def err_ulps32(got, exact):
    """|got - exact| in float32 ulps of the exact (float64) value; NaN/inf compared apart."""
    exact = np.asarray(exact, np.float64)
    with np.errstate(all="ignore"):
        _, e = np.frexp(exact)
        ulp = np.ldexp(1.0, np.maximum(e - 24, -149))
        err = np.abs(got.astype(np.float64) - exact) / ulp
    fin = np.isfinite(exact) & (np.abs(exact) <= np.finfo(np.float32).max)
    return err[fin]


def ulp_distance32(a, b):
    ia = a.view(np.int32).astype(np.int64)
    ib = b.view(np.int32).astype(np.int64)
    ia = np.where(ia < 0, -(ia & 0x7FFFFFFF), ia)
    ib = np.where(ib < 0, -(ib & 0x7FFFFFFF), ib)
    return np.abs(ia - ib)


def check32(fn, ref64, x, counts=None):
    """(max error in ulps, max distance to the rounded float64 value); asserts specials.
    ``counts`` (a dict) accumulates how many results are off the rounded value."""
    got = np.empty_like(x)
    fn(x, got)
    with np.errstate(all="ignore"):
        exact = ref64(x.astype(np.float64))
        rounded = exact.astype(np.float32)
    assert np.array_equal(np.isnan(got), np.isnan(rounded)), x[np.isnan(got) != np.isnan(rounded)]
    ok = ~np.isnan(got)
    inf = np.isinf(rounded) & ok
    assert np.array_equal(got[inf], rounded[inf])
    dist = ulp_distance32(got[ok], rounded[ok])
    if counts is not None:
        counts["off"] = counts.get("off", 0) + int(np.count_nonzero(dist))
        counts["n"] = counts.get("n", 0) + x.size
    return err_ulps32(got, exact).max(), dist.max()


def random_bits32(rng, n, lo_bits, hi_bits, negative=False):
    b = rng.integers(lo_bits, hi_bits, n, dtype=np.int64).astype(np.uint32)
    if negative:
        b |= np.uint32(0x80000000)
    return b.view(np.float32)


# ------------------------------------------------------------------------- sampled

def test_exp32_sampled():
    rng = np.random.default_rng(1)
    x = np.concatenate([
        rng.uniform(*EXP_RANGE, 600_000),
        rng.uniform(-1, 1, 200_000),
        rng.uniform(-104, -87, 100_000),    # denormal results
        rng.uniform(88, 89, 50_000),        # overflow edge
        random_bits32(rng, 50_000, 0, 0x3F800000),  # tiny |x| of every binade
        random_bits32(rng, 50_000, 0, 0x3F800000, negative=True),
    ]).astype(np.float32)
    err, dist = check32(M.exp_array, np.exp, x)
    assert err <= F32_BOUND and dist <= 1


def test_log32_sampled():
    rng = np.random.default_rng(2)
    x = np.concatenate([
        random_bits32(rng, 700_000, 1, 0x7F800000),  # every binade, denormals included
        rng.uniform(0.5, 2.0, 300_000),              # around 1, where log cancels
        [1.0, np.nextafter(np.float32(1), 2), np.nextafter(np.float32(1), 0)],
    ]).astype(np.float32)
    err, dist = check32(M.log_array, np.log, x)
    assert err <= F32_BOUND and dist <= 1


def test_log1p32_sampled():
    rng = np.random.default_rng(3)
    x = np.concatenate([
        rng.uniform(-1, 1, 400_000),
        -random_bits32(rng, 200_000, 0, 0x3F800000),   # (-1, 0]
        random_bits32(rng, 400_000, 0, 0x7F800000),    # [0, max]
    ]).astype(np.float32)
    err, dist = check32(M.log1p_array, np.log1p, x)
    assert err <= F32_BOUND and dist <= 1


def _longdouble_or_skip():
    if np.finfo(np.longdouble).nmant < 63:
        pytest.skip("needs an extended-precision np.longdouble as the float64 reference")


def err_ulps64(got, exact_ld):
    with np.errstate(all="ignore"):
        _, e = np.frexp(exact_ld.astype(np.float64))
        ulp = np.ldexp(np.longdouble(1.0), np.maximum(e - 53, -1074))
        err = (np.abs(got.astype(np.longdouble) - exact_ld) / ulp).astype(np.float64)
    return err[np.isfinite(exact_ld.astype(np.float64))]


@pytest.mark.parametrize("name", ["exp", "log", "log1p"])
def test_float64_sampled(name):
    _longdouble_or_skip()
    rng = np.random.default_rng(4)
    n = 300_000
    if name == "exp":
        x = np.concatenate([rng.uniform(-745, 709.78, n), rng.uniform(-1, 1, n)])
    elif name == "log":
        x = np.concatenate([np.exp(rng.uniform(-744, 709, n)), rng.uniform(0.5, 2, n)])
    else:
        x = np.concatenate([rng.uniform(-1, 1, n), np.exp(rng.uniform(-700, 700, n)),
                            -np.exp(rng.uniform(-700, 0, n))])
    got = np.empty_like(x)
    getattr(M, f"{name}_array")(x, got)
    with np.errstate(all="ignore"):
        exact = getattr(np, name)(x.astype(np.longdouble))
    assert err_ulps64(got, exact).max() <= F64_BOUND


# ------------------------------------------------------------------------- specials

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_special_values(dtype):
    inf, nan = np.inf, np.nan
    tiny = np.finfo(dtype).smallest_subnormal

    def run(fn, xs):
        x = np.array(xs, dtype)
        out = np.empty_like(x)
        fn(x, out)
        return out

    e = run(M.exp_array, [-inf, inf, nan, 0.0, -0.0, 1e4, -1e4, 800.0, -800.0])
    assert e[0] == 0 and e[1] == inf and np.isnan(e[2]) and e[3] == 1 and e[4] == 1
    assert e[5] == inf and e[6] == 0 and e[7] == inf and e[8] == 0
    # gradual underflow: exp of -103.9 (float32) / -744 (float64) is a positive denormal
    d = run(M.exp_array, [-103.9 if dtype == np.float32 else -744.0])[0]
    assert 0 < d < np.finfo(dtype).smallest_normal

    lg = run(M.log_array, [0.0, -0.0, -1.0, inf, -inf, nan, 1.0, tiny, 2.0])
    assert lg[0] == -inf and lg[1] == -inf and np.isnan(lg[2]) and lg[3] == inf
    assert np.isnan(lg[4]) and np.isnan(lg[5]) and lg[6] == 0
    # log of the smallest denormal: -103.28 (float32), -744.44 (float64), to 1 ulp
    assert abs(lg[7] - dtype(np.log(np.float64(tiny)))) <= abs(np.spacing(lg[7]))
    assert lg[8] == dtype(0.6931471805599453)

    l1 = run(M.log1p_array, [-1.0, -2.0, inf, -inf, nan, 0.0, -0.0, 1e-30, -0.5])
    assert l1[0] == -inf and np.isnan(l1[1]) and l1[2] == inf and np.isnan(l1[3])
    assert np.isnan(l1[4]) and l1[5] == 0 and l1[6] == 0 and np.signbit(l1[6])
    assert l1[7] == dtype(1e-30) and l1[8] == dtype(-0.6931471805599453)


def test_scalar_float32_functions_match_the_array_maps():
    x = np.array([-3.5, 0.25, 7.0], np.float32)
    out = np.empty_like(x)
    M.exp_array(x, out)
    assert [M.exp32(v) for v in x] == list(out)
    M.log_array(np.abs(x), out)
    assert [M.log32(v) for v in np.abs(x)] == list(out)


# ------------------------------------------------------------------------ exhaustive

def _exhaustive(fn, ref64, bit_ranges):
    """Every float32 whose bits lie in the ranges, in chunks; returns (max err, max dist)."""
    worst_err, worst_dist = 0.0, 0
    step = 1 << 24
    counts = {}
    for lo, hi in bit_ranges:
        for a in range(lo, hi, step):
            bits = np.arange(a, min(hi, a + step), dtype=np.int64).astype(np.uint32)
            err, dist = check32(fn, ref64, bits.view(np.float32), counts)
            worst_err, worst_dist = max(worst_err, err), max(worst_dist, dist)
    print(f"{counts['n']} inputs, {counts['off']} one ulp off the rounded float64 value")
    return worst_err, worst_dist


def _bits(v):
    return int(np.array(v, np.float32).view(np.uint32))


@pytest.mark.slow
def test_exp32_exhaustive():
    """All float32 in [-104, 89]: about 2.2e9 inputs."""
    err, dist = _exhaustive(M.exp_array, np.exp, [(0, _bits(89.0) + 1),
                                                   (0x80000000, _bits(-104.0) + 1)])
    print(f"exp32 exhaustive: max error {err:.6f} ulp, max distance {dist}")
    assert err <= F32_BOUND and dist <= 1


@pytest.mark.slow
def test_log32_exhaustive():
    """All positive finite float32 (denormals included): about 2.1e9 inputs."""
    err, dist = _exhaustive(M.log_array, np.log, [(1, 0x7F800000)])
    print(f"log32 exhaustive: max error {err:.6f} ulp, max distance {dist}")
    assert err <= F32_BOUND and dist <= 1


@pytest.mark.slow
def test_log1p32_exhaustive():
    """All float32 in (-1, inf): about 3.2e9 inputs."""
    err, dist = _exhaustive(M.log1p_array, np.log1p, [(0, 0x7F800000),
                                                       (0x80000000, 0xBF800000)])
    print(f"log1p32 exhaustive: max error {err:.6f} ulp, max distance {dist}")
    assert err <= F32_BOUND and dist <= 1


def test_exp_neg_f32_the_log_sum_exp_kernel():
    """exp(d) for d <= 0 as the float32 kernels sum it: < 2**-35 relative, 0 below -708."""
    rng = np.random.default_rng(6)
    d = np.concatenate([-np.exp(rng.uniform(-30, 6.5, 3000)), [0.0, -0.0, -707.9]])
    got = np.array([M.exp_neg_f32(v) for v in d])
    want = np.exp(d.astype(np.longdouble))
    assert np.all(np.abs(got - want) <= 2.0 ** -35 * want)
    assert M.exp_neg_f32(-np.inf) == 0.0 and M.exp_neg_f32(-708.5) == 0.0
    assert M.exp_neg_f32(0.0) == 1.0


def test_cache_entries_are_stamped_with_every_backend_source():
    """The kernels inline _math/_intrin: their on-disk cache must go stale when those do."""
    from numba.core import caching

    from fastloss.kernels.numba import _cache, _kernels

    if not hasattr(caching, "CacheImpl"):
        pytest.skip("this Numba has other caching internals: stock per-file stamps")
    for fn in (_kernels.sparse_ce_logits, M.exp64):
        locator = fn._cache._impl.locator
        assert type(locator).__name__.startswith("FastlossBackend")
        assert locator.get_source_stamp() == _cache.STAMP == _cache._stamp()
