"""Every row of /work/shared/reference/seed-examples.md through the PUBLIC API.

Each row goes through the ``clip`` preset of the framework that printed it
(``"keras2"`` for tf.keras 2.x rows, ``"keras"`` for Keras 3 values) and must be
within 2 float32 ulps of the printed value. (Exact printed digits through the
drop-in modules are checked in tests/test_seed_examples.py.)
"""

import numpy as np
import pytest
from testutil import ulp_diff

import fastloss as fl

f32 = np.float32


@pytest.fixture(autouse=True)
def _every_backend(backend, monkeypatch):
    """Run every comparison in this module on every available backend."""
    monkeypatch.setenv("FASTLOSS_BACKEND", backend)
    fl.refresh_config()  # the environment is read once


def within_2_ulps(got, printed):
    got = np.asarray(got)
    assert got.dtype == np.float32, got.dtype
    d = ulp_diff(got, np.asarray(printed, dtype=np.float32))
    assert d.max() <= 2, (got, printed, d)


# id, printed value, call
ROWS = [
    ("bce-probs/keras2", "0.29726425",
     lambda: fl.binary_cross_entropy(np.array([1, 1, 0], f32), np.array([0.7, 0.61, 0.04], f32),
                                     clip="keras2")),
    ("bce-probs/keras3", "0.29726443",
     lambda: fl.binary_cross_entropy(np.array([1, 1, 0], f32), np.array([0.7, 0.61, 0.04], f32),
                                     clip="keras")),
    ("bce-logits", "5.1196237",
     lambda: fl.binary_cross_entropy(np.array([1, 1, 0], f32), np.array([-11.2, 1.51, 3.94], f32),
                                     from_logits=True)),
    ("kl-1", "0.16425064",
     lambda: fl.kl_divergence(np.array([[0, 1], [1, 0]], f32),
                              np.array([[0.2, 0.8], [0.9, 0.1]], f32), clip="keras")),
    ("kl-2", "0.45814306",
     lambda: fl.kl_divergence(np.array([[0, 1], [0, 0]], f32),
                              np.array([[0.6, 0.4], [0.4, 0.6]], f32), clip="keras")),
    ("bce-tf-sum-over-batch/keras2", "5.1416497",
     lambda: fl.binary_cross_entropy(np.array([[1.0], [1.0], [1.0]], f32),
                                     np.array([[1.0], [1.0], [0.0]], f32), clip="keras2")),
    ("bce-tf-sum-over-batch/keras3", "5.3726983",
     lambda: fl.binary_cross_entropy(np.array([[1.0], [1.0], [1.0]], f32),
                                     np.array([[1.0], [1.0], [0.0]], f32), clip="keras")),
]


@pytest.mark.parametrize("row_id,printed,call", ROWS, ids=[r[0] for r in ROWS])
def test_seed_row(row_id, printed, call):
    within_2_ulps(call(), float(printed))


def test_bce_logits_exact_value():
    # the row notes the exact value 5.11962388... (decimal inputs, i.e. float64):
    # (log1p(e^11.2) + log1p(e^-1.51) + log1p(e^3.94)) / 3 = 5.1196238844578375660878...
    x = np.array([-11.2, 1.51, 3.94])
    got = fl.binary_cross_entropy(np.array([1.0, 1.0, 0.0]), x, from_logits=True)
    assert got == pytest.approx(5.1196238844578375660878, rel=1e-15)


def test_bce_numpy_row_float64():
    # hand-written NumPy, float64, Keras-2 double epsilon, mean over axis 0 -> [5.14164949]
    y = np.array([[1.0], [0.0], [1.0]])
    p = np.array([[0.0], [0.0], [1.0]])
    per_elem = fl.binary_cross_entropy(y, p, clip="keras2", reduction="none")
    assert per_elem.dtype == np.float64 and per_elem.shape == (3, 1)
    got = per_elem.mean(axis=0)
    np.testing.assert_allclose(got, [5.14164949], rtol=0, atol=5e-9)
    np.testing.assert_allclose(fl.binary_cross_entropy(y, p, clip="keras2"), 5.14164949, rtol=0,
                               atol=5e-9)
    # and as a float32 value within 2 ulps
    within_2_ulps(fl.binary_cross_entropy(y.astype(f32), p.astype(f32), clip="keras2"),
                  5.14164949)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_custom_weighted_mse_row(dtype):
    # custom Keras loss: sum(square(y_pred - y_true) * [0.3, 0.7], axis=1), one value per sample
    r = np.random.default_rng(0)
    for batch in (1, 5, 32):
        yt = r.standard_normal((batch, 2)).astype(dtype)
        yp = r.standard_normal((batch, 2)).astype(dtype)
        w = np.array([0.3, 0.7])
        naive = (np.square(yp.astype(np.float64) - yt.astype(np.float64)) * w).sum(axis=1)
        got = fl.mean_squared_error(yt, yp, output_weight=w, reduction="none") * w.sum()
        assert got.shape == (batch,)
        if dtype == np.float32:
            within_2_ulps(got.astype(np.float32), naive.astype(np.float32))
        else:
            np.testing.assert_allclose(got, naive, rtol=1e-14)
