"""Shared fixtures.

Framework comparisons: import PyTorch / TensorFlow / Keras through the fixtures
``torch``, ``tf`` and ``keras`` (or :func:`require`). They skip when the library is
missing, except when ``FASTLOSS_REQUIRE_FRAMEWORKS=1`` (set by ``.ci/run``): then a
missing framework is a failure, so CI can never pass by skipping them.
"""

import importlib
import os

import numpy as np
import pytest

import fastloss

REQUIRE = os.environ.get("FASTLOSS_REQUIRE_FRAMEWORKS") == "1"


def require(module):
    """Import ``module`` or skip (fail under FASTLOSS_REQUIRE_FRAMEWORKS=1)."""
    try:
        return importlib.import_module(module)
    except Exception as exc:  # ImportError, or a broken install
        msg = f"{module} is not importable: {type(exc).__name__}: {exc}"
        if REQUIRE:
            pytest.fail(msg + " (FASTLOSS_REQUIRE_FRAMEWORKS=1)")
        pytest.skip(msg)


@pytest.fixture(scope="session")
def torch():
    t = require("torch")
    t.set_num_threads(2)
    return t


@pytest.fixture(scope="session")
def tf():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return require("tensorflow")


@pytest.fixture(scope="session")
def keras():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    return require("keras")


def available_backends():
    return [name for name, (ok, _) in fastloss.available_backends().items() if ok]


@pytest.fixture(params=available_backends())
def backend(request):
    """Every backend available here (numpy always; numba and cython when built)."""
    return request.param


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def ulp_diff(a, b):
    """Distance in units in the last place between same-dtype float arrays (NaN==NaN: 0)."""
    a = np.asarray(a)
    b = np.asarray(b).astype(a.dtype)
    it = np.int32 if a.dtype == np.float32 else np.int64
    ai = a.view(it).astype(np.int64)
    bi = b.view(it).astype(np.int64)
    # map sign-magnitude to a monotone integer line
    top = np.int64(0x80000000 if a.dtype == np.float32 else 0x7FFFFFFFFFFFFFFF)
    ai = np.where(ai < 0, -(ai & (top - 1 if a.dtype == np.float32 else top)), ai)
    bi = np.where(bi < 0, -(bi & (top - 1 if a.dtype == np.float32 else top)), bi)
    d = np.abs(ai - bi)
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    return np.where(same, 0, d)
