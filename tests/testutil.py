"""Helpers shared by the test modules (import as ``from testutil import ...``).

A uniquely named module: ``from conftest import ...`` is ambiguous when pytest
collects tests/ and benchmarks/ together, each with its own conftest.py.
"""

import importlib
import os

import numpy as np
import pytest
from _zoo import ulp_distance

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
    """Distance in units in the last place between float arrays of ``a``'s dtype (``b`` is
    cast to it; NaN vs NaN: 0, NaN vs a number: 2**62)."""
    a = np.asarray(a)
    return ulp_distance(a, np.asarray(b).astype(a.dtype))
