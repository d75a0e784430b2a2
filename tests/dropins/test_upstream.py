"""The frameworks' own test files against the drop-ins (tests/dropins/upstream/run_upstream.py).

Each suite runs in a subprocess (SciPy's pytest plugin and ``SCIPY_ARRAY_API`` must be
set before SciPy is imported). A failure outside the suite's documented out-of-scope
classes fails here with the test ids.
"""

import importlib.util
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "upstream"))
import run_upstream  # noqa: E402

NEEDS = {"scipy": ["scipy"], "scipy-array-api": ["scipy", "torch", "array_api_strict"],
         "sklearn": ["sklearn"],
         "keras": ["keras", "tensorflow"], "tf-keras-tf-out": ["tf_keras", "tensorflow"]}


# "tf-keras" itself is left to the script: "tf-keras-tf-out" runs the same tests and also
# checks the numbers of the ones that fail there only for fastloss's NumPy-out rule
@pytest.mark.parametrize("suite", list(NEEDS))
def test_upstream_suite(suite):
    from testutil import require

    for mod in NEEDS[suite]:
        if importlib.util.find_spec(mod) is None:  # no import here: TensorFlow's takes seconds
            require(mod)
    res = run_upstream.run(suite, quick=True)
    print(run_upstream.summary(suite, res))
    assert res["passed"], res["output"][-3000:]  # an empty selection would pass vacuously
    assert not res["failed"], run_upstream.summary(suite, res)
