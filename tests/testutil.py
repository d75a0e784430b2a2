"""Helpers shared by the test modules (import as ``from testutil import ...``).

A uniquely named module: ``from conftest import ...`` is ambiguous when pytest
collects tests/ and benchmarks/ together, each with its own conftest.py.
"""

import importlib
import os

import numpy as np
import pytest

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
