"""The frameworks' own test files against the drop-ins (tests/dropins/upstream/run_upstream.py).

Each suite runs in a subprocess (SciPy's pytest plugin and ``SCIPY_ARRAY_API`` must be
set before SciPy is imported). A failure outside the suite's documented out-of-scope
classes fails here with the test ids; with the framework versions the counts were taken
on, the counts must match too (a test that silently stops running is a change to look at).
"""

import importlib.metadata
import importlib.util
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "upstream"))
import run_upstream  # noqa: E402

NEEDS = {"scipy": ["scipy"], "scipy-array-api": ["scipy", "torch", "array_api_strict"],
         "sklearn": ["sklearn"],
         "keras": ["keras", "tensorflow"], "tf-keras": ["tf_keras", "tensorflow"]}

# suite -> ({distribution: version}, passed, out of scope) of the quick run (tf-keras
# without its graph-mode copies: run_upstream.py tf-keras runs them, 48 of them out of scope)
COUNTS = {
    "scipy": ({"scipy": "1.17.1"}, 419, 0),
    "scipy-array-api": ({"scipy": "1.17.1", "torch": "2.13.0+cpu",
                         "array_api_strict": "2.6.1"}, 803, 0),
    "sklearn": ({"scikit-learn": "1.9.1"}, 61, 0),
    "keras": ({"keras": "3.15.1"}, 52, 5),
    "tf-keras": ({"tf_keras": "2.21.0"}, 58, 0),
}


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
    versions, passed, out = COUNTS[suite]
    if all(importlib.metadata.version(d) == v for d, v in versions.items()):
        assert (len(res["passed"]), len(res["out_of_scope"])) == (passed, out), \
            run_upstream.summary(suite, res)
