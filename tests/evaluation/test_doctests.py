"""The ``>>>`` examples of the evaluation, dask and CLI modules run in the default test
run (a changed result or message fails here, not only in the rendered docs)."""

import doctest
import importlib

import pytest

MODULES = ["fastloss.evaluation.driver", "fastloss.evaluation.result",
           "fastloss.evaluation.state", "fastloss.cli.eval"]
DASK_MODULES = ["fastloss.dask", "fastloss.dask._graph", "fastloss.dask._threads",
                "fastloss.dask._files"]


@pytest.mark.parametrize("name", MODULES + DASK_MODULES)
def test_examples_run(name):
    if name in DASK_MODULES:
        pytest.importorskip("distributed")
    mod = importlib.import_module(name)
    res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS, raise_on_error=False)
    assert res.attempted > 0, f"{name} has no examples"
    assert res.failed == 0, f"{res.failed} of {res.attempted} examples of {name} failed"
