"""The deterministic block reduction (``kernels/_blocks.py``) and every backend's
kernels against the kernel contract in ``kernels/__init__.py``.

Expectations come from a plain-Python transcription of the contract (lanes summed
left to right, then lanes added left to right) and from exact rational arithmetic
(``fractions.Fraction``), never from the functions under test.
"""

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest

from fastloss._dispatch import resolve_backend
from fastloss.kernels import (
    BLOCK_ELEMS,
    CLIP_NONE,
    LANES,
    block_rows_for,
    block_sum,
    n_blocks,
)
from fastloss.kernels._blocks import block_sums, combine

EMPTY = np.zeros(0)


def naive_block_sum(c):
    """The contract's order, spelled out: LANES accumulators, then ((a0 + a1) + a2) + ..."""
    acc = [0.0] * LANES
    for i, v in enumerate(c):
        acc[i % LANES] += float(v)
    s = acc[0]
    for k in range(1, LANES):
        s += acc[k]
    return s


def naive_block_sums(c, block_rows):
    c = [float(v) for v in np.asarray(c, dtype=np.float64).ravel()]
    return [naive_block_sum(c[a:a + block_rows]) for a in range(0, len(c), block_rows)]


def exact_sum(values):
    """Correctly rounded sum of finite floats."""
    return float(sum((Fraction(v) for v in values), Fraction(0)))


# Values for which the order of the additions changes the rounded result.
def order_sensitive(n, seed=0):
    r = np.random.default_rng(seed)
    mags = 10.0 ** r.integers(-8, 17, n)
    return r.standard_normal(n) * mags


# --------------------------------------------------------------------------- block geometry


def test_block_rows_for_values():
    assert LANES == 8
    assert block_rows_for(1) == BLOCK_ELEMS
    assert block_rows_for(0) == BLOCK_ELEMS  # no division by zero for zero-width rows
    assert block_rows_for(10) == (BLOCK_ELEMS // 10) // 8 * 8 == 1632
    assert block_rows_for(BLOCK_ELEMS) == LANES  # never fewer than LANES rows
    assert block_rows_for(10 * BLOCK_ELEMS) == LANES


@pytest.mark.parametrize("n_cols", [1, 2, 3, 7, 10, 100, 1000, 2047, 2048, 2049, 16384, 50000])
def test_block_rows_for_is_a_multiple_of_lanes_within_budget(n_cols):
    br = block_rows_for(n_cols)
    assert br % LANES == 0 and br >= LANES
    if n_cols * LANES <= BLOCK_ELEMS:
        assert br * n_cols <= BLOCK_ELEMS
        assert (br + LANES) * n_cols > BLOCK_ELEMS  # the largest such multiple


@pytest.mark.parametrize("n,br,expected", [(0, 8, 0), (1, 8, 1), (8, 8, 1), (9, 8, 2),
                                           (16384, 16384, 1), (16385, 16384, 2)])
def test_n_blocks(n, br, expected):
    assert n_blocks(n, br) == expected


# --------------------------------------------------------------------------- block_sum


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 15, 16, 17, 100, 1000])
def test_block_sum_follows_the_lane_order(n):
    c = order_sensitive(n, seed=n)
    assert block_sum(c) == naive_block_sum(c)


def test_block_sum_order_is_observable():
    # A sequential sum and the lane order give different bits on this input, so the
    # test above would catch a kernel that summed left to right.
    c = [1e16, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, -1e16]
    seq = 0.0
    for v in c:
        seq += v
    assert seq == 0.0  # every 1.0 is absorbed by 1e16
    # lanes: a0 = 1e16 + 1.0 -> 1e16, a1 = 1.0 - 1e16 -> -1e16, a2..a7 = 1.0;
    # ((a0 + a1) + a2) + ... + a7 = 6.0
    assert naive_block_sum(c) == 6.0
    assert block_sum(c) == 6.0


@pytest.mark.parametrize("n,br", [(0, 8), (5, 8), (8, 8), (100, 8), (100, 16), (1000, 64),
                                  (1001, 64), (77, 12), (3, 16384)])
def test_block_sums_match_naive(n, br):
    c = order_sensitive(n, seed=n + br)
    got = block_sums(c, br)
    assert got.shape == (n_blocks(n, br),)
    assert got.tolist() == naive_block_sums(c, br)


def test_block_sums_equals_block_sum_per_block():
    c = order_sensitive(5000, seed=3)
    br = 1632
    got = block_sums(c, br)
    assert got.tolist() == [block_sum(c[a:a + br]) for a in range(0, c.size, br)]


# --------------------------------------------------------------------------- combine


def test_combine_is_correctly_rounded_and_order_independent():
    p = [1e16, 1.0, -1e16, 3.0, 1e-8, 2.0**-60, -7.5]
    expected = exact_sum(p)
    for perm in itertools.permutations(p):
        assert combine(perm) == expected


def test_combine_random_partials_exact():
    r = np.random.default_rng(1)
    p = order_sensitive(200, seed=11)
    expected = exact_sum(p.tolist())
    assert combine(p) == expected
    assert combine(r.permutation(p)) == expected


def test_combine_empty_is_zero():
    assert combine([]) == 0.0


@pytest.mark.parametrize("p,expected", [([1.0, np.inf, 2.0], np.inf),
                                        ([np.inf, -np.inf, 1.0], np.nan),
                                        ([-np.inf, 5.0], -np.inf), ([np.nan, 1.0], np.nan),
                                        ([np.nan, np.inf], np.nan)])
def test_combine_non_finite_follows_ieee(p, expected):
    for perm in itertools.permutations(p):
        got = combine(perm)
        if np.isnan(expected):
            assert np.isnan(got)
        else:
            assert got == expected


# --------------------------------------------------------------------------- kernels vs contract


def _kernel(backend):
    return resolve_backend(backend)[1]


def _call(kern, name, x, t, sw, br, out, lp, wp, n_threads):
    """Call one loss kernel with plain options (probability inputs, no clip)."""
    if name == "sparse_ce":
        kern.sparse_ce(x, t, sw, EMPTY, True, 0, False, 0.0, 0.0, CLIP_NONE, 0.0, False, br,
                       out, lp, wp, n_threads)
    elif name == "categorical_ce":
        kern.categorical_ce(x, t, sw, EMPTY, True, 0.0, CLIP_NONE, 0.0, False, br, out, lp, wp,
                            n_threads)
    elif name == "kl":
        kern.kl(x, t, sw, False, False, CLIP_NONE, 0.0, False, br, out, lp, wp, n_threads)
    elif name == "mse":
        kern.mse(x, t, EMPTY, sw, False, br, out, lp, wp, n_threads)
    elif name == "bce":
        kern.bce(x, t, sw, 1, EMPTY, True, 0.0, CLIP_NONE, 0.0, False, br, out, lp, wp,
                 n_threads)


def _inputs(name, rng, n, c, dtype):
    if name == "bce":
        x = rng.standard_normal(n * c).astype(dtype)
        t = (rng.random(n * c) < 0.4).astype(dtype)
        return x, t, n * c, 1
    if name == "sparse_ce":
        return (rng.standard_normal((n, c)) * 3).astype(dtype), rng.integers(0, c, n), n, c
    e = rng.random((n, c)) + 0.01
    p = (e / e.sum(axis=1, keepdims=True)).astype(dtype)
    if name == "categorical_ce":
        return (rng.standard_normal((n, c)) * 3).astype(dtype), p, n, c
    e2 = rng.random((n, c)) + 0.01
    return (e2 / e2.sum(axis=1, keepdims=True)).astype(dtype), p, n, c


@pytest.mark.parametrize("name", ["sparse_ce", "categorical_ce", "kl", "mse", "bce"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("weighted", [False, True])
def test_kernel_partials_are_the_contract_block_sums(backend, rng, name, dtype, weighted):
    """lp/wp written by the raw kernel == naive block sums of c_i = float64(v_i) * w_i."""
    x, t, n, width = _inputs(name, rng, 700, 5, dtype)
    br = 16  # small blocks: many of them, with a ragged tail
    sw = rng.uniform(0, 2, n) if weighted else EMPTY
    if weighted:
        sw[::7] = 0.0
    kern = _kernel(backend)
    out = np.empty(n, dtype=dtype)
    _call(kern, name, x, t, sw, br, out, EMPTY, EMPTY, 1)
    # out holds dtype(c_i); recover v_i from an unweighted call to form c_i exactly.
    v = np.empty(n, dtype=dtype)
    _call(kern, name, x, t, EMPTY, br, v, EMPTY, EMPTY, 1)
    w = sw if weighted else np.ones(n)
    c = [0.0 if wi == 0 else float(vi) * float(wi) for vi, wi in zip(v, w)]
    np.testing.assert_array_equal(out, np.array(c).astype(dtype))
    nb = n_blocks(n, br)
    for n_threads in (1, 2, 3):
        lp, wp = np.full(nb, np.nan), np.full(nb, np.nan)
        _call(kern, name, x, t, sw, br, np.zeros(0, dtype), lp, wp, n_threads)
        assert lp.tolist() == naive_block_sums(c, br)
        assert wp.tolist() == naive_block_sums(w, br)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_first_outside_unit_interval(backend, dtype):
    kern = _kernel(backend)
    x = np.array([0.0, 0.5, 1.0, np.nan, 0.25], dtype=dtype)
    assert kern.first_outside_unit_interval(x) == -1  # NaN is not outside
    assert kern.first_outside_unit_interval(np.zeros(0, dtype)) == -1
    y = np.array([0.0, np.nan, 1.5, -0.1, 2.0], dtype=dtype)
    assert kern.first_outside_unit_interval(y) == 2
    z = np.zeros(3_000_000, dtype=dtype)  # beyond any internal chunk
    z[2_500_001] = -np.inf
    z[2_900_000] = 7.0
    assert kern.first_outside_unit_interval(z) == 2_500_001


def test_combine_of_partials_is_independent_of_block_grouping():
    # Chunks made of whole blocks: summing partials per chunk first must not matter,
    # because combine is exact (this is what makes chunking and threading exact).
    c = order_sensitive(4096, seed=9)
    br = 64
    parts = block_sums(c, br)
    total = combine(parts)
    assert total == exact_sum(parts.tolist())
    assert total == combine(parts[::-1])
    assert total == math.fsum(parts.tolist())
