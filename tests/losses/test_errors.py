"""Every bad input raises, with a message that names the argument and the shape or
the first bad index."""

import re

import numpy as np
import pytest

import fastloss as fl

SCE = fl.sparse_categorical_cross_entropy
CCE = fl.categorical_cross_entropy
BCE = fl.binary_cross_entropy
KL = fl.kl_divergence
MSE = fl.mean_squared_error

P = np.array([[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]])  # valid probabilities, 2 samples x 3 classes
T = np.array([[0.0, 1.0, 0.0], [0.5, 0.5, 0.0]])
Y = np.array([2, 0])

# a valid call of every public loss: (func, y_true, y_pred, extra kwargs)
VALID = {
    "sparse": (SCE, Y, P, {}),
    "categorical": (CCE, T, P, {}),
    "binary": (BCE, T, P, {}),
    "kl": (KL, T, P, {}),
    "mse": (MSE, T, P, {}),
}
ALL = list(VALID)
CLASS_AXIS = ["sparse", "categorical", "kl", "mse"]


def call(key, **kw):
    f, yt, yp, extra = VALID[key]
    args = dict(extra)
    args.update(kw)
    yt = args.pop("y_true", yt)
    yp = args.pop("y_pred", yp)
    return f(yt, yp, **args)


@pytest.mark.parametrize("key", ALL)
def test_valid_calls_work(key):
    for red in ("none", "sum", "mean"):
        assert np.all(np.isfinite(call(key, reduction=red)))


# --------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("key", ["categorical", "binary", "kl", "mse"])
def test_shape_mismatch(key):
    with pytest.raises(ValueError, match=r"y_true has shape \(2, 4\) but y_pred has shape "
                                         r"\(2, 3\)"):
        call(key, y_true=np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"y_true has shape \(3,\) but y_pred has shape"):
        call(key, y_true=np.zeros(3))


def test_sparse_label_shape_mismatch():
    with pytest.raises(ValueError, match=r"y_true has shape \(3,\); expected \(2,\)"):
        SCE([0, 1, 2], P)
    with pytest.raises(ValueError, match=r"y_true has shape \(2, 3\); expected \(2,\)"):
        SCE(np.zeros((2, 3), int), P)
    x = np.zeros((4, 3, 5))
    with pytest.raises(ValueError, match=r"y_true has shape \(4, 3\); expected \(4, 5\)"):
        SCE(np.zeros((4, 3), int), x, from_logits=True, axis=1)


@pytest.mark.parametrize("key", CLASS_AXIS)
def test_zero_d_y_pred(key):
    with pytest.raises(ValueError, match=r"y_pred must have a class axis"):
        call(key, y_true=0 if key == "sparse" else 0.5, y_pred=0.5)


@pytest.mark.parametrize("key", CLASS_AXIS)
def test_no_classes_names_y_pred_and_shape(key):
    # C = 0 along the class axis: a message naming y_pred and its shape (as
    # sparse_categorical_cross_entropy's own check intends), not a NumPy reshape error
    with pytest.raises(ValueError, match=r"y_pred.*\(2, 0\)"):
        call(key, y_true=np.zeros(2, int) if key == "sparse" else np.zeros((2, 0)),
             y_pred=np.zeros((2, 0)))


# --------------------------------------------------------------------------- labels


def test_labels_out_of_range_name_first_bad_index():
    p = np.full((5, 3), 1 / 3)
    with pytest.raises(ValueError, match=r"y_true\[1\]=3 is out of range \[0, 3\)"):
        SCE([0, 3, 5, -1, 0], p)
    with pytest.raises(ValueError, match=r"y_true\[3\]=-1 is out of range \[0, 3\)"):
        SCE([0, 1, 2, -1, 7], p)
    with pytest.raises(ValueError, match=r"y_true\[1, 1\]=7 is out of range"):
        SCE([[0, 1], [2, 7]], np.full((2, 2, 3), 1 / 3))
    with pytest.raises(ValueError, match=r"y_true\[0\]=-100 .*not ignore_index=-1"):
        SCE([-100, 0], P, ignore_index=-1)


def test_huge_unsigned_label_names_index():
    y = np.array([0, 2**63 + 5], dtype=np.uint64)
    with pytest.raises(ValueError, match=r"y_true\[1\]=9223372036854775813 is out of range"):
        SCE(y, P)


@pytest.mark.parametrize("bad,shown", [(1.5, "1.5"), (np.nan, "nan"), (np.inf, "inf")])
def test_labels_not_integral(bad, shown):
    with pytest.raises(ValueError, match=rf"y_true must hold integer class indices; "
                                         rf"y_true\[1\]=.*{shown}"):
        SCE(np.array([0.0, bad]), P)


@pytest.mark.parametrize("labels", [np.array([True, False]), np.array(["a", "b"]),
                                    np.array([0, 1], dtype=complex),
                                    np.array([0, 1], dtype=object)])
def test_labels_wrong_dtype(labels):
    with pytest.raises(TypeError, match=r"y_true must hold integer class indices, got dtype"):
        SCE(labels, P)


def test_ignore_index_must_be_an_integer():
    for bad in (1.0, "x", True):
        with pytest.raises(TypeError, match=r"ignore_index must be an integer or None"):
            SCE(Y, P, ignore_index=bad)


# --------------------------------------------------------------------------- probabilities


@pytest.mark.parametrize("key,arg", [("sparse", "y_pred"), ("categorical", "y_pred"),
                                     ("categorical", "y_true"), ("binary", "y_pred"),
                                     ("binary", "y_true"), ("kl", "y_pred"), ("kl", "y_true")])
@pytest.mark.parametrize("bad", [1.5, -0.25, np.inf])
def test_probabilities_outside_unit_interval(key, arg, bad):
    a = (P if arg == "y_pred" else T).copy()
    a[1, 1] = bad
    a[1, 2] = 2.0  # a later bad value: the first one must be reported
    with pytest.raises(ValueError, match=rf"{arg} must hold probabilities in \[0, 1\].*"
                                         rf"{arg}\[1, 1\]={re.escape(repr(float(bad)))} is the first value outside"):
        call(key, **{arg: a})


def test_probabilities_outside_unit_interval_non_contiguous():
    a = np.asfortranarray(P.copy())
    a[1, 1] = 1.5
    a[0, 2] = -1.0  # C order: (0, 2) comes first
    with pytest.raises(ValueError, match=r"y_pred must hold .*y_pred\[0, 2\]=-1\.0 is the first"):
        SCE(Y, a)


def test_probabilities_outside_unit_interval_index_is_in_the_callers_layout():
    # class axis 0: y_pred[1, 1] = 1.5 (C-order flat index 3) comes before
    # y_pred[2, 0] = -0.5 (flat index 4); the message must point at y_pred[1, 1]
    x = np.full((3, 2), 1 / 3)
    x[1, 1] = 1.5
    x[2, 0] = -0.5
    with pytest.raises(ValueError, match=r"y_pred must hold probabilities") as info:
        SCE([0, 1], x, axis=0)
    msg = str(info.value)
    assert "1.5" in msg and ("flat index 3" in msg or "y_pred[1, 1]" in msg), msg


def test_logits_are_not_checked():
    assert np.isfinite(SCE(Y, P * 10 - 3, from_logits=True))
    assert np.isfinite(BCE(T, P * 10 - 3, from_logits=True))
    assert np.isfinite(KL(T, np.log(P), log_input=True))
    assert np.isfinite(KL(np.log(P), P, log_target=True))


def test_float64_targets_that_would_round_are_refused():
    with pytest.raises(TypeError, match=r"y_true has dtype float64 but y_pred is float32; "
                                        r"y_true\[1, 0\]=.*0\.1.* would be rounded"):
        CCE(np.array([[0.0, 1.0], [0.1, 0.9]]), np.array([[0.5, 0.5], [0.5, 0.5]], np.float32))


# --------------------------------------------------------------------------- weights

WEIGHT_ARGS = [
    ("sparse", "sample_weight", (2,)), ("sparse", "class_weight", (3,)),
    ("categorical", "sample_weight", (2,)), ("categorical", "class_weight", (3,)),
    ("binary", "sample_weight", (2,)), ("binary", "sample_weight", (2, 3)),
    ("binary", "pos_weight", (3,)), ("kl", "sample_weight", (2,)),
    ("mse", "sample_weight", (2,)), ("mse", "output_weight", (3,)),
]


@pytest.mark.parametrize("key,arg,shape", WEIGHT_ARGS)
@pytest.mark.parametrize("bad", [-1.0, np.nan, np.inf, -np.inf])
def test_bad_weights_name_argument_and_first_bad_index(key, arg, shape, bad):
    w = np.ones(shape)
    idx = (1,) if len(shape) == 1 else (1, 0)
    w.flat[-1] = -5.0  # a later bad value (where there is one): the first must be named
    w[idx] = bad
    shown = re.escape(repr(float(bad)))
    with pytest.raises(ValueError, match=rf"{arg} must be finite and non-negative; "
                                         rf"{arg}\[{', '.join(map(str, idx))}\]=.*{shown}"):
        call(key, **{arg: w})


@pytest.mark.parametrize("key,arg,shape", WEIGHT_ARGS)
def test_weights_with_a_wrong_shape(key, arg, shape):
    w = np.ones((shape[0] + 2,) + shape[1:])
    expected = re.escape(str(shape))
    if key == "binary" and arg == "sample_weight":
        expected = re.escape(str(P.shape)) + " or a prefix of it"
    with pytest.raises(ValueError, match=rf"{arg} has shape {re.escape(str(w.shape))}; "
                                         rf"expected {expected}"):
        call(key, **{arg: w})


@pytest.mark.parametrize("key,arg,shape", WEIGHT_ARGS)
def test_weights_with_a_non_numeric_dtype(key, arg, shape):
    for w in (np.ones(shape, dtype=complex), np.ones(shape, dtype=object), np.full(shape, "1")):
        with pytest.raises(TypeError, match=rf"{arg} must be a real numeric array, got dtype"):
            call(key, **{arg: w})


def test_class_weight_is_not_a_scalar():
    with pytest.raises(ValueError, match=r"class_weight has shape \(\); expected \(3,\)"):
        SCE(Y, P, class_weight=2.0)


def test_output_weight_needs_a_positive_sum():
    with pytest.raises(ValueError, match=r"output_weight must have a positive sum"):
        MSE(T, P, output_weight=[0.0, 0.0, 0.0])


def test_sample_weight_prefix_only_for_bce():
    with pytest.raises(ValueError, match=r"sample_weight has shape \(2, 3\); expected \(2,\)"):
        SCE(Y, P, sample_weight=np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"sample_weight has shape \(3,\); expected \(2, 3\) or "
                                         r"a prefix of it"):
        BCE(T, P, sample_weight=np.ones(3))


# --------------------------------------------------------------------------- axis


@pytest.mark.parametrize("key", CLASS_AXIS)
@pytest.mark.parametrize("axis", [2, -3, 10])
def test_axis_out_of_bounds(key, axis):
    with pytest.raises(ValueError, match=rf"axis={axis} is out of bounds for y_pred with 2 "
                                         rf"dimension\(s\) \(shape \(2, 3\)\)"):
        call(key, axis=axis)


@pytest.mark.parametrize("key", CLASS_AXIS)
@pytest.mark.parametrize("axis", [1.0, "1", None, True, (0, 1)])
def test_axis_not_an_integer(key, axis):
    with pytest.raises(TypeError, match=r"axis must be an integer"):
        call(key, axis=axis)


def test_logsumexp_softmax_bad_axis():
    a = np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"axis=2 is out of bounds for a with 2 dimension"):
        fl.logsumexp(a, axis=2)
    with pytest.raises(ValueError, match=r"axis=\(0, -1, 5\)|axis=5 is out of bounds for a"):
        fl.logsumexp(a, axis=(0, -1, 5))
    with pytest.raises(ValueError, match=r"axis=\(1, -1\) repeats an axis"):
        fl.logsumexp(a, axis=(1, -1))
    with pytest.raises(TypeError, match=r"axis must be an integer"):
        fl.logsumexp(a, axis=1.0)
    for f in (fl.softmax, fl.log_softmax):
        with pytest.raises(ValueError, match=r"axis=-3 is out of bounds for x with 2 dimension"):
            f(a, axis=-3)
        with pytest.raises(TypeError, match=r"axis must be an integer"):
            f(a, axis=(0, 1))


# --------------------------------------------------------------------------- dtypes


@pytest.mark.parametrize("key", ALL)
@pytest.mark.parametrize("dtype", [complex, object, "U3", "M8[s]"])
def test_y_pred_with_a_non_real_dtype(key, dtype):
    yp = P.astype(dtype) if dtype != "M8[s]" else np.zeros(P.shape, dtype)
    with pytest.raises(TypeError, match=r"y_pred must be a real numeric array, got dtype"):
        call(key, y_pred=yp)


@pytest.mark.parametrize("key", ["categorical", "binary", "kl", "mse"])
@pytest.mark.parametrize("dtype", [complex, object])
def test_y_true_with_a_non_real_dtype(key, dtype):
    with pytest.raises(TypeError, match=r"y_true must be a real numeric array, got dtype"):
        call(key, y_true=T.astype(dtype))


def test_complex_message_says_complex():
    with pytest.raises(TypeError, match=r"complex numbers have no loss"):
        BCE(T, P.astype(complex))


def test_logsumexp_softmax_non_real():
    for bad in (np.ones(3, complex), np.ones(3, object)):
        with pytest.raises(TypeError, match=r"a must be a real numeric array"):
            fl.logsumexp(bad)
        for f in (fl.softmax, fl.log_softmax):
            with pytest.raises(TypeError, match=r"x must be a real numeric array"):
                f(bad)
    with pytest.raises(TypeError, match=r"b must be a real numeric array"):
        fl.logsumexp(np.ones(3), b=np.ones(3, complex))
    with pytest.raises(ValueError, match=r"b has shape \(4,\), which does not broadcast to a's "
                                         r"shape \(3,\)"):
        fl.logsumexp(np.ones(3), b=np.ones(4))


@pytest.mark.skipif(np.dtype(np.longdouble).itemsize <= 8, reason="long double is double here")
def test_long_double_is_refused():
    with pytest.raises(TypeError, match=r"y_pred has dtype float128.*long double"):
        BCE(T, P.astype(np.longdouble))


# --------------------------------------------------------------------------- options


@pytest.mark.parametrize("key", ALL)
@pytest.mark.parametrize("bad", ["avg", "Mean", "batchmean", "sum_over_batch_size", None, 1])
def test_unknown_reduction(key, bad):
    with pytest.raises(ValueError, match=rf"reduction={re.escape(repr(bad))} is not one of "
                                         r"'none', 'sum', 'mean'"):
        call(key, reduction=bad)


@pytest.mark.parametrize("key", ALL)
@pytest.mark.parametrize("bad", ["drop", "Omit", None])
def test_unknown_nan_policy(key, bad):
    with pytest.raises(ValueError, match=rf"nan_policy={re.escape(repr(bad))} is not one of "
                                         r"'propagate', 'raise', 'omit'"):
        call(key, nan_policy=bad)


@pytest.mark.parametrize("key", ["sparse", "categorical", "binary"])
def test_unknown_clip(key):
    with pytest.raises(ValueError, match=r"clip='tf' is not a preset"):
        call(key, clip="tf")
    for bad in (0.0, 0.5, 1, -1e-7, np.nan):
        with pytest.raises(ValueError, match=rf"clip={re.escape(repr(bad))} must lie in "
                                             r"\(0, 0\.5\)"):
            call(key, clip=bad)
    for bad in (True, [1e-7], object()):
        with pytest.raises(TypeError, match=r"clip must be None, a float or a preset name"):
            call(key, clip=bad)


@pytest.mark.parametrize("key", ["sparse", "categorical", "binary"])
def test_clip_with_logits(key):
    with pytest.raises(ValueError, match=r"clip='keras' applies to probabilities only"):
        call(key, clip="keras", from_logits=True)


def test_kl_clip_options():
    for bad in ("torch", "keras2", "sklearn"):
        with pytest.raises(ValueError, match=rf"clip='{bad}': kl_divergence supports None, "
                                             r"'keras' or a float eps"):
            KL(T, P, clip=bad)
    with pytest.raises(ValueError, match=r"clip applies to probabilities; .*log_input=True"):
        KL(T, np.log(P), clip="keras", log_input=True)
    with pytest.raises(ValueError, match=r"clip applies to probabilities"):
        KL(np.log(P), P, clip=1e-7, log_target=True)


@pytest.mark.parametrize("key", ALL)
def test_unknown_backend(key):
    with pytest.raises(ValueError, match=r"backend='jax' is not a fastloss backend; choose one "
                                         r"of 'cython', 'numba', 'numpy'"):
        call(key, backend="jax")


def test_unknown_backend_logsumexp_family():
    a = np.zeros((2, 3))
    for f in (fl.softmax, fl.log_softmax, fl.logsumexp):
        with pytest.raises(ValueError, match=r"backend='jax' is not a fastloss backend"):
            f(a, backend="jax")


@pytest.mark.parametrize("via", ["argument", "environment"])
def test_unknown_backend_logsumexp_with_b(monkeypatch, via):
    # the b= path must validate backend= / FASTLOSS_BACKEND like every other call
    kw = {"backend": "jax"} if via == "argument" else {}
    if via == "environment":
        monkeypatch.setenv("FASTLOSS_BACKEND", "jax")
        fl.refresh_config()  # the environment is read once
    source = "backend" if via == "argument" else "FASTLOSS_BACKEND"
    with pytest.raises(ValueError, match=rf"^{source}='jax' is not a fastloss backend"):
        fl.logsumexp(np.zeros(3), b=np.ones(3), **kw)


def test_unknown_backend_from_the_environment(monkeypatch):
    monkeypatch.setenv("FASTLOSS_BACKEND", "jax")
    fl.refresh_config()  # the environment is read once
    for key in ALL:
        with pytest.raises(ValueError, match=r"FASTLOSS_BACKEND='jax' is not a fastloss backend"):
            call(key)
    a = np.zeros((2, 3))
    for f in (fl.softmax, fl.log_softmax, fl.logsumexp):
        with pytest.raises(ValueError, match=r"FASTLOSS_BACKEND='jax'"):
            f(a)
    # an explicit backend= wins over the environment
    assert np.isfinite(call("sparse", backend="numpy"))


def test_backend_from_the_environment_is_used(monkeypatch):
    monkeypatch.setenv("FASTLOSS_BACKEND", "numpy")
    fl.refresh_config()  # the environment is read once
    assert call("sparse") == call("sparse", backend="numpy")


def test_unavailable_backend():
    missing = [name for name, (ok, _) in fl.available_backends().items() if not ok]
    if not missing:
        pytest.skip("every backend is available here")
    with pytest.raises(RuntimeError, match=rf"backend '{missing[0]}' is not available here"):
        call("sparse", backend=missing[0])


@pytest.mark.parametrize("key", ALL)
@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_bad_n_threads(key, bad):
    with pytest.raises(ValueError, match=rf"n_threads must be a positive integer or None, got "
                                         rf"{re.escape(repr(bad))}"):
        call(key, n_threads=bad)


def test_bad_n_threads_logsumexp_family():
    for f in (fl.softmax, fl.log_softmax, fl.logsumexp):
        with pytest.raises(ValueError, match=r"n_threads must be a positive integer"):
            f(np.zeros(3), n_threads=0)


def test_z_loss_needs_logits():
    with pytest.raises(ValueError, match=r"z_loss needs logits \(from_logits=True\)"):
        SCE(Y, P, z_loss=1e-4)
    for bad in (-1e-4, np.nan, np.inf):
        with pytest.raises(ValueError, match=rf"z_loss={re.escape(repr(bad))} must be finite and "
                                             r"non-negative"):
            SCE(Y, P, z_loss=bad, from_logits=True)


@pytest.mark.parametrize("key", ["sparse", "categorical", "binary"])
@pytest.mark.parametrize("bad", [-0.1, 1.5, np.nan, np.inf])
def test_label_smoothing_outside_unit_interval(key, bad):
    with pytest.raises(ValueError, match=rf"label_smoothing={re.escape(repr(bad))} must lie in "
                                         r"\[0, 1\]"):
        call(key, label_smoothing=bad)


@pytest.mark.parametrize("key", ["sparse", "categorical", "binary"])
def test_label_smoothing_edges_are_allowed(key):
    assert np.isfinite(call(key, label_smoothing=0.0))
    assert np.isfinite(call(key, label_smoothing=1.0))


# --------------------------------------------------------------------------- NaN policy raise


def test_nan_policy_raise_names_first_nan_for_every_loss():
    for key in ALL:
        f, yt, yp, extra = VALID[key]
        bad = yp.copy()
        bad[1, 2] = np.nan
        bad[1, 0] = np.nan  # (1, 0) comes first in C order
        with pytest.raises(ValueError, match=r"y_pred\[1, 0\] is NaN and nan_policy='raise'"):
            f(yt, bad, nan_policy="raise")


def test_errors_are_the_same_on_every_backend(backend):
    # validation happens before dispatch: every backend refuses the same input
    with pytest.raises(ValueError, match=r"y_true\[1\]=3 is out of range"):
        SCE([0, 3], P, backend=backend)
    with pytest.raises(ValueError, match=r"y_pred must hold probabilities"):
        BCE(T, P + 1, backend=backend)
    with pytest.raises(ValueError, match=r"y_pred\[0, 1\] is NaN"):
        MSE(T, np.array([[0, np.nan, 0], [0, 0, 0]]), nan_policy="raise", backend=backend)


# --------------------------------------------------------------------------- issue #19 (API part)


@pytest.mark.parametrize("key", ALL)
def test_numpy_integer_n_threads_are_accepted(key):
    """n_threads from a config or an array is often np.int64: it is an integer."""
    assert np.array_equal(call(key, n_threads=np.int64(2)), call(key, n_threads=2))
    with pytest.raises(ValueError, match=r"n_threads must be a positive integer or None, got "
                                         r"np\.True_|n_threads must be a positive integer or None, "
                                         r"got True"):
        call(key, n_threads=np.bool_(True))


@pytest.mark.parametrize("case,name,advice", [
    ("binary", "y_true", r"Targets are probabilities: 0 or 1"),
    ("categorical", "y_true", r"Targets are probabilities: 0 or 1"),
    ("kl", "y_true", r"Then use log_target=True\."),
    ("kl", "y_pred", r"Then use log_input=True\."),
    ("binary", "y_pred", r"Then use from_logits=True\."),
])
def test_unit_interval_messages_give_the_advice_of_that_argument(case, name, advice):
    f, yt, yp, extra = VALID[case]
    bad = np.array(yt if name == "y_true" else yp, dtype=float, copy=True)
    bad.flat[1] = 2.5
    with pytest.raises(ValueError, match=rf"{name}\[.*\]=2\.5 is the first value outside\. "
                                         rf"[^\n]*{advice}") as info:
        call(case, **{name: bad})
    if name == "y_true" or case == "kl":
        assert "from_logits" not in str(info.value)


def test_ignore_index_beyond_int64_is_a_clear_error():
    with pytest.raises(ValueError, match=r"ignore_index=1180591620717411303424 does not fit "
                                         r"in int64"):
        SCE(Y, P, ignore_index=2**70)


@pytest.mark.parametrize("key", ["sparse", "categorical", "binary"])
@pytest.mark.parametrize("bad", ["0.1", None, [0.1], True])
def test_non_numeric_label_smoothing_names_the_argument(key, bad):
    with pytest.raises(TypeError, match=rf"label_smoothing must be a real number in \[0, 1\], "
                                        rf"got {re.escape(repr(bad))}"):
        call(key, label_smoothing=bad)


@pytest.mark.parametrize("bad", ["1e-4", None, False])
def test_non_numeric_z_loss_names_the_argument(bad):
    with pytest.raises(TypeError, match=rf"z_loss must be a real number >= 0, got "
                                        rf"{re.escape(repr(bad))}"):
        SCE(Y, P, z_loss=bad, from_logits=True)


@pytest.mark.parametrize("label", [3e19, -3e19, 1e300])
def test_float_labels_beyond_int64_are_reported_as_given(label):
    with pytest.raises(ValueError, match=rf"y_true\[1\]={re.escape(repr(np.float64(label)))} is "
                                         r"out of range \[0, 3\)"):
        SCE(np.array([0.0, label]), P)
