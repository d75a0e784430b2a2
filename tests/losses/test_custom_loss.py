"""Custom element-wise losses compiled with Numba (issue 10)."""

import warnings

import numpy as np
import pytest

pytest.importorskip("numba")

from fastloss.losses.custom import CustomLossCompileError, elementwise_loss  # noqa: E402
from fastloss.kernels._blocks import block_rows_for, block_sums, combine  # noqa: E402


@elementwise_loss
def squared(t, p):
    return (p - t) * (p - t)


@elementwise_loss
def huber(t, p, delta):
    d = abs(p - t)
    return 0.5 * d * d if d <= delta else delta * (d - 0.5 * delta)


@elementwise_loss
def focal(t, p, gamma):
    # binary focal loss on a probability, exact form (p in (0, 1))
    pt = p if t == 1.0 else 1.0 - p
    return -((1.0 - pt) ** gamma) * np.log(pt)


@pytest.fixture(params=[np.float32, np.float64])
def data(request, rng):
    dt = request.param
    t = rng.standard_normal((5000, 2)).astype(dt)
    p = rng.standard_normal((5000, 2)).astype(dt)
    return t, p


def test_weighted_mse_seed_example(data):
    """seed-examples.md `custom-weighted-mse`: sum(square(y_pred - y_true) * [0.3, 0.7], axis=1)."""
    t, p = data
    got = squared(t, p, output_weight=[0.3, 0.7], output_reduction="sum", reduction="none")
    want = np.sum(np.square(p.astype(np.float64) - t.astype(np.float64)) * [0.3, 0.7], axis=1)
    assert got.shape == (t.shape[0],) and got.dtype == t.dtype
    tol = 4e-6 if t.dtype == np.float32 else 1e-14  # float32: f is evaluated in float32
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


def test_huber_and_focal_match_numpy(rng):
    t = rng.standard_normal((3000, 4))
    p = rng.standard_normal((3000, 4)) * 3
    d = np.abs(p - t)
    want = np.where(d <= 1.5, 0.5 * d * d, 1.5 * (d - 0.75)).mean(axis=1)
    np.testing.assert_allclose(huber(t, p, 1.5, reduction="none"), want, rtol=1e-14)
    np.testing.assert_allclose(huber(t, p, 1.5), want.mean(), rtol=1e-13)

    z = (rng.random((3000, 3)) < 0.3).astype(np.float64)
    q = rng.uniform(0.01, 0.99, (3000, 3))
    pt = np.where(z == 1, q, 1 - q)
    want = (-((1 - pt) ** 2.0) * np.log(pt)).mean(axis=1)
    np.testing.assert_allclose(focal(z, q, 2.0, reduction="none"), want, rtol=1e-13)


def test_reduction_follows_the_block_contract(data):
    t, p = data
    w = np.linspace(0, 2, t.shape[0])
    v = squared(t, p, reduction="none").astype(np.float64)
    c = v * w
    br = block_rows_for(2)
    expect_sum = combine(block_sums(c, br))
    expect_mean = expect_sum / combine(block_sums(w, br))
    assert squared(t, p, sample_weight=w, reduction="sum") == t.dtype.type(expect_sum)
    assert squared(t, p, sample_weight=w) == t.dtype.type(expect_mean)


def test_thread_count_does_not_change_bits(rng):
    t = rng.standard_normal((200_000, 3)).astype(np.float32)
    p = rng.standard_normal((200_000, 3)).astype(np.float32)
    got = {k: squared(t, p, n_threads=k).tobytes() for k in (1, 2, 3)}
    assert len(set(got.values())) == 1


def test_axis_and_one_dimensional_inputs(rng):
    t = rng.standard_normal((4, 50))
    p = rng.standard_normal((4, 50))
    np.testing.assert_allclose(squared(t, p, axis=0, reduction="none"),
                               ((p - t) ** 2).mean(axis=0), rtol=1e-14)
    t1, p1 = t[0], p[0]
    np.testing.assert_allclose(squared(t1, p1, reduction="none"), (p1 - t1) ** 2, rtol=1e-15)


def test_function_numba_cannot_compile_names_the_problem(rng):
    bad = elementwise_loss(lambda t, p: {"a": t}[p], name="dict_loss")
    with pytest.raises(CustomLossCompileError, match=r"dict_loss could not be compiled.*Numba said"):
        bad(np.zeros((3, 2)), np.zeros((3, 2)))


def test_numpy_fallback_warns_and_evaluates(rng):
    def needs_python(t, p):
        return float(np.square(p - t)) if not isinstance(p, np.ndarray) else np.square(p - t)

    t = rng.standard_normal((100, 2))
    p = rng.standard_normal((100, 2))
    loss = elementwise_loss(lambda t, p: needs_python(t, p), fallback="numpy")
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        got = loss(t, p, reduction="none")
    assert any("evaluating with NumPy" in str(w.message) for w in rec)
    np.testing.assert_allclose(got, ((p - t) ** 2).mean(axis=1), rtol=1e-15)


def test_bad_arguments(rng):
    t = np.zeros((3, 2))
    with pytest.raises(ValueError, match="output_reduction"):
        squared(t, t, output_reduction="max")
    with pytest.raises(ValueError, match="y_true has shape"):
        squared(np.zeros((3, 3)), t)
    with pytest.raises(TypeError, match=r"params\[0\]"):
        huber(t, t, "wide")
    with pytest.raises(ValueError, match="sample_weight"):
        squared(t, t, sample_weight=[1.0, -1.0, 1.0])
    with pytest.raises(ValueError, match="fallback"):
        elementwise_loss(lambda t, p: t, fallback="torch")
