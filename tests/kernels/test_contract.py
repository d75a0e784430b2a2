"""Kernel-contract functions added for the drop-ins and the offline evaluation, on every
backend: ``argmax_rows``, ``elementwise`` (scipy.special's xlogy / rel_entr / kl_div) and
the BCE-on-logits linear term at infinite logits.

The expected values come from NumPy / SciPy directly (not from fastloss), and every
backend must agree with them.
"""

import math

import numpy as np
import pytest

from fastloss._dispatch import resolve_backend
from fastloss.kernels import CLIP_NONE, EW_KL_DIV, EW_REL_ENTR, EW_XLOGY, block_rows_for

EMPTY = np.zeros(0)


def _kernel(backend):
    return resolve_backend(backend)[1]


# --------------------------------------------------------------------------- argmax_rows

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1), (7, 3), (1000, 10), (33, 1000), (2, 70000)])
def test_argmax_rows_random(backend, dtype, shape, rng):
    kern = _kernel(backend)
    x = rng.standard_normal(shape).astype(dtype)
    for n_threads in (1, 2, 3):
        out = np.full(shape[0], -7, np.int64)
        kern.argmax_rows(x, out, n_threads)
        np.testing.assert_array_equal(out, np.argmax(x, axis=1))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_argmax_rows_ties_inf_nan(backend, dtype):
    kern = _kernel(backend)
    inf, nan = np.inf, np.nan
    rows = [
        [1.0, 3.0, 3.0, 2.0],          # tie: the first maximum
        [-inf, -inf, -inf, -inf],      # all -inf: 0
        [0.0, inf, 5.0, inf],          # first +inf
        [0.0, nan, 9.0, nan],          # first NaN wins over larger values
        [inf, 0.0, nan, 1.0],          # NaN after +inf still wins (as np.argmax)
        [-0.0, 0.0, -1.0, -2.0],       # -0.0 == 0.0: the first
        [nan, nan, 1.0, 2.0],
        [-5.0, -4.0, -3.0, -2.0],
    ]
    x = np.array(rows, dtype=dtype)
    big = np.tile(x, (300, 17))  # wider rows and many of them: every vector path
    for arr in (x, big, np.ascontiguousarray(big[:, ::-1])):
        out = np.empty(arr.shape[0], np.int64)
        kern.argmax_rows(arr, out, 2)
        np.testing.assert_array_equal(out, np.argmax(arr, axis=1))


def test_argmax_rows_nan_late_in_wide_row(backend):
    kern = _kernel(backend)
    x = np.zeros((3, 5000), np.float32)
    x[0, 4999] = np.nan
    x[1, 17] = 1.0
    x[1, 4000] = np.nan
    x[2, 2500] = 3.0
    out = np.empty(3, np.int64)
    kern.argmax_rows(x, out, 1)
    assert out.tolist() == [4999, 4000, 2500]


# --------------------------------------------------------------------------- elementwise

SPECIAL = [0.0, -0.0, 1e-300, 1e-45, 1e-38, 1e-7, 0.5, 1.0, 2.0, 1e30, 1e300,
           np.inf, -1.0, -np.inf, np.nan]


def _scipy(op):
    sp = pytest.importorskip("scipy.special")
    return {EW_XLOGY: sp.xlogy, EW_REL_ENTR: sp.rel_entr, EW_KL_DIV: sp.kl_div}[op]


def _expected(op, x, y):
    """SciPy's value computed in float64, rounded once to the dtype (the contract)."""
    with np.errstate(all="ignore"):
        return _scipy(op)(x.astype(np.float64), y.astype(np.float64)).astype(x.dtype)


def _same(a, b):
    return np.array_equal(a, b, equal_nan=True)


@pytest.mark.parametrize("op", [EW_XLOGY, EW_REL_ENTR, EW_KL_DIV])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_elementwise_special_values(backend, op, dtype):
    kern = _kernel(backend)
    with np.errstate(all="ignore"):
        v = np.array(SPECIAL).astype(dtype)
    x = np.repeat(v, v.size)
    y = np.tile(v, v.size)
    out = np.empty_like(x)
    kern.elementwise(op, x, y, out, 2)
    exp = _expected(op, x, y)
    bad = [(float(a), float(b), float(o), float(e)) for a, b, o, e in zip(x, y, out, exp)
           if not (_same(np.array(o), np.array(e))
                   or (np.isfinite(e) and abs(float(o) - float(e)) <= 4e-15 * abs(float(e))))]
    assert not bad, bad[:10]


@pytest.mark.parametrize("op", [EW_XLOGY, EW_REL_ENTR, EW_KL_DIV])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_elementwise_random(backend, op, dtype, rng):
    kern = _kernel(backend)
    n = 100_003
    x = np.exp(rng.uniform(-40, 40, n)).astype(dtype)
    y = np.exp(rng.uniform(-40, 40, n)).astype(dtype)
    x[::97] = 0
    y[::89] = 0
    out = np.empty_like(x)
    for n_threads in (1, 2):
        kern.elementwise(op, x, y, out, n_threads)
        exp = _expected(op, x, y)
        assert np.array_equal(np.isnan(out), np.isnan(exp))
        fin = np.isfinite(exp)
        assert np.array_equal(out[~fin], exp[~fin])
        if dtype == np.float32:
            # the float64 value rounded once: at most 1 float32 ulp from SciPy's rounding
            d = np.abs(out[fin].astype(np.float64) - exp[fin].astype(np.float64))
            assert np.all(d <= np.spacing(np.abs(exp[fin])).astype(np.float64))
        else:
            np.testing.assert_allclose(out[fin], exp[fin], rtol=1e-13, atol=0)


# --------------------------------------------------------------------------- BCE at +-inf

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bce_logits_infinite_logit_with_matching_label_is_zero(backend, dtype):
    kern = _kernel(backend)
    inf = np.inf
    x = np.array([inf, -inf, inf, -inf, inf, -inf, 3.0], dtype)
    z = np.array([1.0, 0.0, 0.0, 1.0, 0.5, 0.5, 1.0], dtype)
    # true values: 0, 0, inf, inf, inf, inf, log1p(exp(-3))
    want = np.array([0.0, 0.0, inf, inf, inf, inf, math.log1p(math.exp(-3.0))], dtype)
    n = x.size
    br = block_rows_for(1)
    out = np.empty(n, dtype)
    lp, wp = np.empty(1), np.empty(1)
    kern.bce(x, z, EMPTY, 1, EMPTY, True, 0.0, CLIP_NONE, 0.0, False, br, out, lp, wp, 1)
    np.testing.assert_array_equal(out[:6], want[:6])  # the infinite-logit cases: exact
    # the finite one: within the compiled log1p's error (<= 1.44 ulp in float64)
    np.testing.assert_allclose(out[6], want[6], rtol=4 * np.finfo(dtype).eps, atol=0)
    # pos_weight and label smoothing keep the zero where the coefficient is exactly 0
    out2 = np.empty(2, dtype)
    kern.bce(x[:2], z[:2], EMPTY, 1, np.array([3.0]), True, 0.0, CLIP_NONE, 0.0, False, br,
             out2, lp, wp, 1)
    np.testing.assert_array_equal(out2, [0.0, 0.0])
    # the fused gradient kernel gives the same loss (and gradient 0 there)
    lp2, wp2 = np.empty(1), np.empty(1)
    g = np.empty(2, dtype)
    kern.bce_grad(x[:2], z[:2], EMPTY, 1, EMPTY, 0.0, 1.0, br, lp2, wp2, g, np.zeros(0, dtype), 1)
    assert lp2[0] == 0.0 and wp2[0] == 2.0
    np.testing.assert_array_equal(g, [0.0, 0.0])


def test_every_backend_implements_the_whole_contract(backend):
    from fastloss.kernels import CONTRACT

    kern = _kernel(backend)
    missing = [name for name in CONTRACT if not callable(getattr(kern, name, None))]
    assert not missing, f"{backend} lacks {missing}"
    if hasattr(kern, "__all__"):
        assert set(CONTRACT) <= set(kern.__all__)
