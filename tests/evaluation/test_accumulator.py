"""LossAccumulator: any chunking, any merge order == one in-memory call, bit for bit.

Expectations come from the public loss functions on the whole arrays (the thing the
accumulator must reproduce) and, for the exact sums, from ``fractions.Fraction``.
"""

import json
import math
import random
import warnings
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastloss
from fastloss.evaluation.accumulator import LossAccumulator
from fastloss.evaluation.exact import ExactSums
from fastloss.losses.registry import LOSSES
from fastloss.kernels import block_rows_for
from fastloss.kernels._blocks import combine


def same(a, b):
    """Bitwise equal scalars of the same dtype (NaN == NaN)."""
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.tobytes() == b.tobytes()


def feed(name, y, x, cuts, sw=None, **kw):
    acc = LossAccumulator(name, **kw)
    for a, b in zip(cuts, cuts[1:]):
        acc.update(y[a:b], x[a:b], None if sw is None else sw[a:b])
    return acc


def cuts_of(n, sizes):
    c = [0]
    i = 0
    while c[-1] < n:
        c.append(min(n, c[-1] + sizes[i % len(sizes)]))
        i += 1
    return c


# --------------------------------------------------------------------------- exact sums


def fraction_sum(values):
    return float(sum((Fraction(float(v)) for v in values), Fraction(0)))


def test_exact_sums_match_fractions_and_fsum():
    r = np.random.default_rng(0)
    v = r.standard_normal(5000) * 10.0 ** r.integers(-300, 290, 5000)
    v[:4] = [5e-324, -5e-324, 0.0, -0.0]
    keys = r.integers(0, 4, v.size)
    # the largest floats cancel exactly (math.fsum raises "intermediate overflow" here)
    v = np.concatenate([v, [1.7976931348623157e308, -1.7976931348623157e308]])
    keys = np.concatenate([keys, [0, 0]])
    es = ExactSums(4)
    es.add(v, keys)
    for k in range(4):
        sel = v[keys == k]
        assert es.value(k) == fraction_sum(sel)
        if k:
            assert es.value(k) == math.fsum(sel.tolist())
    big = ExactSums(1)
    big.add([1.7976931348623157e308, 1.7976931348623157e308])
    assert big.value() == np.inf  # beyond float64: inf, as IEEE addition and the in-memory sum
    assert big.value(shift=1) == 1.7976931348623157e308
    assert big.overflow_shift([0]) == 2  # the sum, 2**1025 - 2**972, below 2**1023
    assert ExactSums(1).overflow_shift([0]) == 0
    neg = ExactSums(1)
    neg.add([-1.7976931348623157e308] * 3)
    assert neg.value() == -np.inf


def test_exact_sums_shift_adds_scaled_values_back_exactly():
    r = np.random.default_rng(3)
    v = r.standard_normal(300) * 10.0 ** r.integers(-20, 20, 300)
    k = r.integers(0, 1100, 300)
    es = ExactSums(2)
    for i in range(300):
        es.add([v[i]], [i % 2], shift=int(k[i]))
    for key in (0, 1):
        want = sum((Fraction(float(v[i])) * 2 ** int(k[i]) for i in range(key, 300, 2)),
                   Fraction(0))
        assert es.exact_int(key) == want * 2 ** 1126
        shift = es.overflow_shift([key])
        assert es.value(key, shift) == float(want / 2 ** shift)
    with pytest.raises(ValueError, match="shift"):
        es.add([1.0], shift=-1)
    with pytest.raises(OverflowError, match="range"):
        es.add([1e300], shift=400)


def test_exact_sums_cancellation_and_order_independence():
    # 1e16 + 1 - 1e16 style cancellations: exact, whatever the order or split
    vals = np.array([1e16, 1.0, -1e16, 3e-310, 2.0 ** 60, -(2.0 ** 60), 1e-17] * 50)
    want = fraction_sum(vals)
    for seed in range(5):
        perm = np.random.default_rng(seed).permutation(vals.size)
        parts = np.array_split(perm, 7)
        total = ExactSums(1)
        for p in reversed(parts):
            e = ExactSums(1)
            e.add(vals[p])
            total.merge(e)
        assert total.value() == want
        again = ExactSums.from_state(json.loads(json.dumps(total.state())))
        assert again.value() == want


def test_exact_sums_many_adds_stay_exact():
    # enough adds to go through the carry normalisation several times
    es = ExactSums(1)
    v = np.full(1000, 0.1)
    for _ in range(600):
        es.add(v)
    assert es.value() == float(Fraction(0.1) * 600_000)


@pytest.mark.parametrize("vals", [[1.0, np.inf], [np.inf, -np.inf, 1.0], [np.nan, 2.0],
                                  [-np.inf, -1.0], [np.inf, np.inf]])
def test_exact_sums_non_finite_follow_combine(vals):
    es = ExactSums(1)
    es.add(np.array(vals))
    want = combine(np.array(vals))
    got = es.value()
    assert (math.isnan(got) and math.isnan(want)) or got == want


# --------------------------------------------------------------------------- accumulator


def variants():
    for name, row in LOSSES.items():
        for i, v in enumerate(row.variants):
            yield pytest.param(name, dict(v), id=f"{name}-{i}")


@pytest.mark.parametrize("name,variant", list(variants()))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_any_chunking_is_bitwise_the_in_memory_call(name, variant, dtype):
    check_chunkings(name, variant, dtype, None)  # the default backend


@pytest.mark.parametrize("name", list(LOSSES))
def test_any_chunking_on_every_backend(name, backend):
    check_chunkings(name, dict(LOSSES[name].variants[0]), np.float32, backend)


def check_chunkings(name, variant, dtype, backend):
    row = LOSSES[name]
    r = np.random.default_rng(7)
    C = 37
    n = 3 * block_rows_for(C) + 29 if name != "binary_cross_entropy" else 1500
    y, x, kw = row.make(r, n, C, dtype, variant)
    sw = kw.pop("sample_weight", None)
    kw["backend"] = backend
    want = row.func(y, x, sample_weight=sw, **kw)  # all threads, in memory
    B = block_rows_for(C)
    for sizes in ([n], [7, B - 1], [B + 3], [B, 2 * B], [1] * 20 + [300, 17]):
        # one thread per chunk: also checks that the thread count changes nothing
        acc = feed(name, y, x, cuts_of(n, sizes), sw, n_threads=1, **kw)
        assert same(acc.result(), want), (sizes, acc.result(), want)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_shards_merged_in_random_order(data):
    r = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1)))
    C = data.draw(st.sampled_from([3, 10, 257]))
    n = data.draw(st.integers(1, 3000))
    x = (r.standard_normal((n, C)) * 4).astype(np.float32)
    y = r.integers(0, C, n)
    sw = r.uniform(0, 2, n) if data.draw(st.booleans()) else None
    want = fastloss.sparse_categorical_cross_entropy(y, x, from_logits=True, sample_weight=sw)
    cuts = sorted({0, n, *data.draw(st.lists(st.integers(0, n), max_size=12))})
    shards = []
    for a, b in zip(cuts, cuts[1:]):
        acc = LossAccumulator("sparse_categorical_cross_entropy", from_logits=True, start_row=a)
        # a shard may itself be fed in pieces
        m = data.draw(st.integers(a, b))
        acc.update(y[a:m], x[a:m], None if sw is None else sw[a:m])
        acc.update(y[m:b], x[m:b], None if sw is None else sw[m:b])
        if data.draw(st.booleans()):  # through a JSON checkpoint
            acc = LossAccumulator.from_state_dict(json.loads(json.dumps(acc.state_dict())))
        shards.append(acc)
    random.Random(data.draw(st.integers(0, 1000))).shuffle(shards)
    while len(shards) > 1:  # merge in a random tree shape
        i = data.draw(st.integers(0, len(shards) - 2))
        a, b = shards[i], shards.pop(i + 1)
        shards[i] = a.merge(b)
    assert same(shards[0].result(), want)


def test_row_offset_updates_in_any_order():
    r = np.random.default_rng(3)
    n, C = 2000, 300  # 48 rows per block
    x = r.standard_normal((n, C))
    y = r.integers(0, C, n)
    want = fastloss.sparse_categorical_cross_entropy(y, x, from_logits=True, reduction="sum")
    cuts = cuts_of(n, [13, 101, 48, 7])
    pieces = list(zip(cuts, cuts[1:]))
    random.Random(1).shuffle(pieces)
    acc = LossAccumulator("sparse_categorical_cross_entropy", from_logits=True, reduction="sum")
    for a, b in pieces:
        acc.update(y[a:b], x[a:b], row_offset=a)
    assert same(acc.result(), want)


def test_binary_ce_blocks_are_elements_and_weights_follow_rows(backend):
    # element blocks of 16384 never line up with rows of 7 elements here
    r = np.random.default_rng(5)
    n, K = 6000, 7
    x = r.standard_normal((n, K)).astype(np.float32)
    z = (r.random((n, K)) < 0.3).astype(np.float32)
    sw = r.uniform(0, 2, n)  # one weight per row: a prefix of the shape
    pw = r.uniform(0.5, 3, K)
    kw = dict(from_logits=True, pos_weight=pw, backend=backend)
    want = fastloss.binary_cross_entropy(z, x, sample_weight=sw, **kw)
    for sizes in ([n], [2341], [1] * 30 + [999, 3]):
        acc = feed("binary_cross_entropy", z, x, cuts_of(n, sizes), sw, **kw)
        assert same(acc.result(), want), sizes


def test_state_dict_mid_stream_round_trip():
    r = np.random.default_rng(11)
    n, C = 5000, 50
    x = r.random((n, C)).astype(np.float32)
    x /= x.sum(axis=1, keepdims=True)
    y = r.integers(0, C, n)
    kw = dict(clip="keras", class_weight=r.uniform(0.5, 2, C), label_smoothing=0.1)
    want = fastloss.sparse_categorical_cross_entropy(y, x, **kw)
    acc = LossAccumulator("sparse_categorical_cross_entropy", **kw)
    acc.update(y[:1234], x[:1234])
    text = json.dumps(acc.state_dict())
    acc2 = LossAccumulator.from_state_dict(json.loads(text))
    acc2.update(y[1234:], x[1234:])
    assert same(acc2.result(), want)
    assert acc2.n_rows == n and acc2.row_ranges == [(0, n)]


def test_lone_shard_is_the_whole_with_other_rows_weighted_zero():
    r = np.random.default_rng(2)
    n, C = 3000, 100
    x = r.standard_normal((n, C)).astype(np.float32)
    y = r.integers(0, C, n)
    a, b = 777, 2222  # not block-aligned
    acc = LossAccumulator("sparse_categorical_cross_entropy", from_logits=True, start_row=a)
    acc.update(y[a:b], x[a:b])
    w = np.zeros(n)
    w[a:b] = 1
    want = fastloss.sparse_categorical_cross_entropy(y, x, from_logits=True, sample_weight=w,
                                                     reduction="sum")
    s, _ = acc.sum_and_weight()
    assert np.float32(s) == want


def test_empty_accumulator_is_nan_with_a_warning_like_empty_input():
    acc = LossAccumulator("sparse_categorical_cross_entropy", from_logits=True)
    with pytest.warns(RuntimeWarning):
        assert np.isnan(acc.result())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = fastloss.sparse_categorical_cross_entropy(np.zeros(0, int), np.zeros((0, 3)),
                                                         from_logits=True)
        assert np.isnan(want)


def test_errors():
    x = np.random.default_rng(0).standard_normal((100, 4)).astype(np.float32)
    y = np.zeros(100, int)
    acc = LossAccumulator("sparse_categorical_cross_entropy", from_logits=True)
    acc.update(y[:50], x[:50])
    with pytest.raises(ValueError, match=r"rows \[10, 20\) were already added"):
        acc.update(y[10:20], x[10:20], row_offset=10)
    with pytest.raises(ValueError, match="same number of classes"):
        acc.update(y[50:], np.zeros((50, 5), np.float32))
    with pytest.raises(ValueError, match="same dtype"):
        acc.update(y[50:], x[50:].astype(np.float64))
    with pytest.raises(ValueError, match="starting at row 50"):
        acc.update(np.full(50, 9), x[50:])  # label out of range: the public message + row
    acc.update(y[60:], x[60:], row_offset=60)
    with pytest.raises(ValueError, match=r"rows \[50, 60\) are missing"):
        acc.result()
    with pytest.raises(ValueError, match="different losses or options"):
        acc.merge(LossAccumulator("sparse_categorical_cross_entropy", from_logits=False))
    with pytest.raises(ValueError, match="both accumulators hold rows"):
        acc.merge(LossAccumulator("sparse_categorical_cross_entropy", from_logits=True,
                                  start_row=0).update(y[:5], x[:5]))
    with pytest.raises(ValueError, match="reduces to 'mean' or 'sum'"):
        LossAccumulator("sparse_categorical_cross_entropy", reduction="none")
    with pytest.raises(TypeError, match="has no option 'form_logits'"):
        LossAccumulator("sparse_categorical_cross_entropy", form_logits=True)
    with pytest.raises(ValueError, match="is not a fastloss loss"):
        LossAccumulator("softmax")
    with pytest.raises(ValueError, match="leading row axis"):
        LossAccumulator("sparse_categorical_cross_entropy", axis=0).update(y, x)
    # the missing rows arrive from another accumulator: then it works
    acc.merge(LossAccumulator("sparse_categorical_cross_entropy", from_logits=True,
                              start_row=50).update(y[50:60], x[50:60]))
    assert same(acc.result(), fastloss.sparse_categorical_cross_entropy(y, x, from_logits=True))


def test_merge_ignores_backend_and_threads():
    r = np.random.default_rng(4)
    x = r.standard_normal((500, 9))
    y = r.integers(0, 9, 500)
    a = LossAccumulator("sparse_categorical_cross_entropy", from_logits=True, backend="numpy")
    b = LossAccumulator("sparse_categorical_cross_entropy", from_logits=True, n_threads=1,
                        start_row=200)
    a.update(y[:200], x[:200])
    b.update(y[200:], x[200:])
    assert same(a.merge(b).result(),
                fastloss.sparse_categorical_cross_entropy(y, x, from_logits=True))


def test_one_place_turns_options_into_kernel_calls():
    """The accumulator runs the public functions' KernelCall (``LOSSES[name].prepare``, built
    by ``losses/_calls.py``), not a copy."""
    from fastloss.evaluation.accumulator import _prepare
    from fastloss.losses.registry import STREAMING, loss_options

    assert {n for n, s in LOSSES.items() if s.prepare is not None} == set(STREAMING)
    x = np.random.default_rng(0).random((40, 3)).astype(np.float32)
    y = np.arange(40) % 3
    p, _ = _prepare("sparse_categorical_cross_entropy",
                    loss_options("sparse_categorical_cross_entropy", {}), y, x, None)
    assert p._forward.__qualname__.startswith("sparse_ce_call")
    assert not p.weighted and (p.weights() == 1).all()


# --------------------------------------------------------------------------- weights near 1e308

def _huge_weight_cases():
    """(name, options, y_true, y_pred, rows): several blocks, weights near the float64 limit
    mixed with ordinary, zero and tiny ones."""
    r = np.random.default_rng(19)
    n, C = 150, 512  # blocks of 32 rows: chunks cut blocks
    x = r.standard_normal((n, C))
    y = r.integers(0, C, n)
    p = np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)
    t = np.eye(C)[y]
    ne = 40000  # BCE: blocks of 16384 elements
    z, q = (r.random(ne) < 0.5).astype(float), r.random(ne) * 0.98 + 0.01
    return [
        ("sparse_categorical_cross_entropy", {"from_logits": True}, y, x, n),
        ("categorical_cross_entropy", {}, t, p, n),
        ("kl_divergence", {}, t * 0.9 + 0.1 / C, p, n),
        ("mean_squared_error", {}, t, p, n),
        ("binary_cross_entropy", {}, z, q, ne),
    ]


def _huge_weights(n, seed):
    r = np.random.default_rng(seed)
    w = r.choice([1e308, 1.7976931348623157e308, 3e307, 1.0, 0.0, 2.5], n)
    w[r.integers(0, n)] = 1e-300
    return w


@pytest.mark.parametrize("backend", ["numpy", "cython", "numba"])
@pytest.mark.parametrize("case", range(5), ids=lambda i: _huge_weight_cases()[i][0])
def test_weights_near_the_float64_limit_stream_like_memory(backend, case):
    """Weights whose float64 sums overflow: the in-memory mean rescales them (#19); every
    chunking, merge order and checkpoint of the stream gives the same bits, not NaN."""
    name, kw, yt, yp, n = _huge_weight_cases()[case]
    w = _huge_weights(n, case)
    fn = getattr(fastloss, name)
    want = fn(yt, yp, sample_weight=w, backend=backend, **kw)
    assert np.isfinite(want)
    # independently: the weighted mean of the unweighted per-row losses, in exact arithmetic
    rows = np.asarray(fn(yt, yp, reduction="none", backend=backend, **kw), dtype=np.float64)
    exact = (sum((Fraction(float(a)) * Fraction(float(b)) for a, b in zip(w, rows)), Fraction(0))
             / sum((Fraction(float(a)) for a in w), Fraction(0)))
    assert float(want) == pytest.approx(float(exact), rel=1e-12)
    for sizes in ([n], [7, 41, 13], [1000, 1, 3]):
        acc = feed(name, yt, yp, cuts_of(n, sizes), w, backend=backend, **kw)
        assert same(acc.result(), want), sizes
    # shards merged in reverse order, one of them through a JSON checkpoint
    cuts = cuts_of(n, [29, 17])
    shards = []
    for a, b in zip(cuts, cuts[1:]):
        acc = LossAccumulator(name, start_row=a, backend=backend, **kw)
        acc.update(yt[a:b], yp[a:b], w[a:b])
        shards.append(acc)
    shards[1] = LossAccumulator.from_state_dict(json.loads(json.dumps(shards[1].state_dict())))
    total = shards[-1]
    for acc in shards[-2::-1]:
        total.merge(acc)
    assert same(total.result(), want)
    s_acc = feed(name, yt, yp, cuts_of(n, [11]), w, backend=backend, reduction="sum", **kw)
    with np.errstate(over="ignore"):  # the reference backend warns of the sum's own overflow
        want_sum = fn(yt, yp, sample_weight=w, backend=backend, reduction="sum", **kw)
    assert same(s_acc.result(), want_sum)  # inf where the sum is beyond float64


def test_evaluate_gives_the_weighted_mean_with_weights_near_the_float64_limit(tmp_path):
    r = np.random.default_rng(7)
    n = 1000
    x = r.standard_normal((n, 5)).astype(np.float32)
    y = r.integers(0, 5, n)
    w = r.choice([1e308, 1.5e308, 1.0], n)
    for name, a in (("p", x), ("y", y), ("w", w)):
        np.save(tmp_path / f"{name}.npy", a)
    res = fastloss.evaluate(str(tmp_path / "p.npy"), labels=str(tmp_path / "y.npy"),
                            weights=str(tmp_path / "w.npy"), from_logits=True, chunk_rows=77,
                            loss="sparse_categorical_cross_entropy")
    want = fastloss.sparse_categorical_cross_entropy(y, x, from_logits=True, sample_weight=w)
    assert np.isfinite(want)
    assert same(res["sparse_categorical_cross_entropy"], want)
