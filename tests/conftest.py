"""Shared fixtures.

Framework comparisons: import PyTorch / TensorFlow / Keras through the fixtures
``torch``, ``tf`` and ``keras`` (or :func:`require`). They skip when the library is
missing, except when ``FASTLOSS_REQUIRE_FRAMEWORKS=1`` (set by ``.ci/run``): then a
missing framework is a failure, so CI can never pass by skipping them.
"""

import os

import numpy as np
import pytest
from testutil import REQUIRE, require, ulp_diff  # noqa: F401

import fastloss


@pytest.fixture(autouse=True)
def _fresh_config():
    """fastloss reads its environment variables once (``refresh_config``): every test starts
    from a fresh read, after monkeypatch has undone the previous test's changes."""
    fastloss.refresh_config()


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
