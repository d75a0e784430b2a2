"""The docstrings: every ``>>>`` example in ``fastloss`` runs, and the public API has numpydoc.

The examples are collected here rather than with ``--doctest-modules`` in pyproject:
that option would also import the benchmark scripts (which parse ``sys.argv`` at import)
and both ``conftest.py`` files as plain modules.
"""

import doctest
import importlib
import inspect
import pkgutil
import re

import pytest

import fastloss


def _modules():
    names = ["fastloss"]
    for m in pkgutil.walk_packages(fastloss.__path__, "fastloss."):
        # the kernels are another helper's (and have no examples); __main__ runs the CLI
        if m.name.startswith("fastloss.kernels") or m.name.endswith("__main__"):
            continue
        names.append(m.name)
    return sorted(names)


MODULES = _modules()
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _doctests(name):
    mod = importlib.import_module(name)
    return [t for t in doctest.DocTestFinder().find(mod, name) if t.examples]


@pytest.mark.parametrize("name", MODULES)
def test_examples_run(name):
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    report = []
    for t in _doctests(name):
        runner.run(t, out=report.append)
    assert runner.failures == 0, "".join(report)


# Every public name: its numpydoc sections. Functions return something and list
# Parameters (when they take any), Returns, See Also, Notes and Examples; classes
# Parameters (when constructed with any), See Also and Examples.
DOCUMENTED = ("fastloss", "fastloss.torch", "fastloss.scipy", "fastloss.sklearn",
              "fastloss.objectives", "fastloss.keras", "fastloss.keras.legacy", "fastloss.losses",
              "fastloss.evaluation")
PUBLIC = [(m, n) for m in DOCUMENTED for n in importlib.import_module(m).__all__
          if callable(getattr(importlib.import_module(m), n))]
SECTIONS = ("Parameters", "Other Parameters", "Attributes", "Methods", "Returns", "Yields",
            "Raises", "Warns", "See Also", "Notes", "References", "Examples")  # numpydoc's


def _sections(doc):
    return {m.group(1) for m in re.finditer(r"^\s*([A-Z][A-Za-z ]+)\n\s*-{3,}\s*$", doc or "",
                                              re.M)}


@pytest.mark.parametrize("mod,name", PUBLIC, ids=[f"{m}.{n}" for m, n in PUBLIC])
def test_public_names_have_numpydoc(mod, name):
    obj = getattr(importlib.import_module(mod), name)
    have = _sections(inspect.getdoc(obj))
    want = {"See Also", "Notes", "Examples"}
    if inspect.isclass(obj):
        if obj.__init__ is not object.__init__:  # constant holders take no parameters
            want.add("Parameters")
    else:
        want.add("Returns")
        if inspect.signature(obj).parameters:
            want.add("Parameters")
    assert want <= have, f"{mod}.{name} lacks {sorted(want - have)}"
    assert have <= set(SECTIONS), f"{mod}.{name}: unknown sections {sorted(have - set(SECTIONS))}"


def test_the_examples_are_counted():
    """Not vacuous: the public functions' examples are found and run above."""
    n = sum(len(t.examples) for name in ("fastloss.losses.functions",
                                         "fastloss.losses.gradients",
                                         "fastloss.losses.log_sum_exp")
            for t in _doctests(name))
    assert n >= 30
