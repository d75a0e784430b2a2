"""Run the frameworks' own test files against fastloss's drop-ins, assertions unchanged.

Each suite copies the upstream test files to a temporary directory, rewrites only their
imports (``from scipy.special import logsumexp`` -> ``from _ov_scipy_special import
logsumexp``: the ``_ov_*`` modules here resolve the names the drop-in provides to
fastloss and every other name to the framework), runs the tests of the functions
fastloss provides in a fresh ``python -m pytest`` (so SciPy's ``SCIPY_ARRAY_API`` and
its pytest plugin apply as upstream) and sorts the outcome:

* passed / skipped (by the upstream file's own skips);
* out of scope: tests listed in ``OUT_OF_SCOPE`` with the reason class (also listed
  in the drop-in's module docstring);
* failed: anything else; the script exits 1.

Usage::

    python tests/dropins/upstream/run_upstream.py [suite ...] [-- pytest args]

(a ``-k`` among the pytest args replaces the suite's selection, so it may pick tests of
functions fastloss does not provide, which then test the framework itself).

Suites: scipy, scipy-array-api (``SCIPY_ARRAY_API='["torch", "array_api_strict"]'``),
sklearn (with ``SCIPY_ARRAY_API=1``, which its array-API tests need), keras, tf-keras.
``tests/dropins/test_upstream.py`` runs them all in the test command (tf-keras without its
graph-mode copies, which are all out of scope) and asserts their counts.
The tf-keras file is not installed with tf_keras: it is vendored here
(``tf_keras_losses_vendored.py``, Apache-2.0, with its source URL and commit; named so
that pytest does not collect it from this tree).
"""

import os
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _site(mod, rel):
    import importlib.util

    spec = importlib.util.find_spec(mod)
    return Path(spec.origin).parent / rel


# (pattern, replacement); every pattern must match at least once, so a changed upstream
# file fails loudly instead of silently testing the framework itself
SCIPY_REWRITES = [
    (r"^from scipy\.special import (.*)$", r"from _ov_scipy_special import \1"),
    (r"^from scipy import special$", "import _ov_scipy_special as special"),
]

SUITES = {
    "scipy": dict(
        files=[("scipy", "special/tests/test_logsumexp.py"),
               ("scipy", "special/tests/test_logit.py"),
               ("scipy", "special/tests/test_basic.py")],
        rewrites=SCIPY_REWRITES,
        plugin="scipy.conftest",
        # tests of the functions fastloss.scipy provides; _wrap_radians is a SciPy helper
        select="TestLogSumExp or TestSoftmax or TestLogSoftmax or TestExpit or TestLogExpit "
               "or test_xlogy or test_entr or test_kl_div or test_rel_entr",
        env={},
    ),
    "scipy-array-api": dict(
        files=[("scipy", "special/tests/test_logsumexp.py")],
        rewrites=SCIPY_REWRITES,
        plugin="scipy.conftest",
        select="TestLogSumExp or TestSoftmax or TestLogSoftmax",
        # SciPy's conftest reads a JSON list of backends here (numpy is the suite above)
        env={"SCIPY_ARRAY_API": '["torch", "array_api_strict"]'},
    ),
    "sklearn": dict(
        files=[("sklearn", "metrics/tests/test_classification.py"),
               ("sklearn", "metrics/tests/test_common.py")],
        rewrites=[(r"^from sklearn\.metrics import \(", "from _ov_sklearn_metrics import (")],
        plugin=None,
        # the log_loss tests, and the array-API ones (torch CPU; array_api_strict if installed)
        select="log_loss and not d2_log_loss",
        env={"SCIPY_ARRAY_API": "1"},  # scikit-learn's array-API tests need it
    ),
    "keras": dict(
        files=[("keras", "src/losses/losses_test.py")],
        rewrites=[(r"^from keras\.src\.losses import losses$",
                   "import _ov_keras_losses as losses")],
        plugin=None,
        select="MeanSquaredErrorTest or KLDivergenceTest or BinaryCrossentropyTest "
               "or CategoricalCrossentropyTest or SparseCategoricalCrossentropyTest "
               "or BinaryFocalCrossentropyTest",
        env={"KERAS_BACKEND": "tensorflow"},
    ),
    "tf-keras": dict(
        files=[(None, str(HERE / "tf_keras_losses_vendored.py"))],
        quick_skip="test_mode_graph",
        rewrites=[(r"^from tf_keras import losses$", "import _ov_tf_keras_losses as losses"),
                  # the repository's tf_keras/ is the wheel's tf_keras/src/
                  (r"^from tf_keras import (activations|backend)$", r"from tf_keras.src import \1"),
                  (r"^from tf_keras\.(testing_infra|utils) import",
                   r"from tf_keras.src.\1 import")],
        plugin=None,
        select="MeanSquaredErrorTest or KLDivergenceTest or BinaryCrossentropyTest "
               "or CategoricalCrossentropyTest or SparseCategoricalCrossentropyTest "
               "or BinaryFocalCrossentropyTest",
        env={},
    ),
}

# suite -> [(test id regex, failure message regex, reason class)]; a failure counts as out
# of scope only if both match. The classes are listed in the drop-ins' module docstrings.
_SERIALIZATION = (r"::test_config", r"Could not locate class", "serialization registry "
                  "(keras.saving looks the class up in Keras's own registry)")
OUT_OF_SCOPE = {
    "scipy": [],
    "scipy-array-api": [],
    "sklearn": [],
    "keras": [_SERIALIZATION],
    "tf-keras": [(r"_test_mode_graph$", r"", "symbolic tensors (tf.compat.v1 graph mode)")],
}


def rewrite(text, rewrites, name):
    """Apply the import rewrites; a file where no import of the drop-in was rewritten fails
    loudly (a changed upstream file must not silently test the framework itself)."""
    to_dropin = 0
    for pat, rep in rewrites:
        text, n = re.subn(pat, rep, text, flags=re.M)
        to_dropin += n if "_ov_" in rep else 0
    if not to_dropin:
        raise RuntimeError(f"{name}: no import of the drop-in was rewritten; update the rewrites")
    return text


def run(suite, extra=(), quick=False):
    """Run one suite; return ``{"passed": [...], "failed": [...], "skipped": [...],
    "out_of_scope": [(id, reason)], "output": str}``. ``quick`` leaves out the tests
    that are wholly out of scope (tf-keras's graph-mode copies), for the test run."""
    cfg = dict(SUITES[suite])
    if quick and cfg.get("quick_skip"):
        cfg["select"] = f"({cfg['select']}) and not {cfg['quick_skip']}"
    with tempfile.TemporaryDirectory(prefix=f"fastloss-upstream-{suite}-") as tmp:
        tmp = Path(tmp)
        paths = []
        for mod, rel in cfg["files"]:
            src = Path(rel) if mod is None else _site(mod, rel)
            text = rewrite(src.read_text(), cfg["rewrites"], src.name)
            dst = tmp / ("test_" + src.name.replace("test_", "").replace("_vendored", ""))
            dst.write_text(text)
            paths.append(str(dst))
        (tmp / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")
        junit = tmp / "junit.xml"
        cmd = [sys.executable, "-m", "pytest", "-q", "-n0" if _has_xdist() else "-q",
               "-c", str(tmp / "pytest.ini"), "--rootdir", str(tmp), f"--junitxml={junit}",
               "-k", cfg["select"], "-W", "ignore::DeprecationWarning"]
        if cfg["plugin"]:
            cmd += ["-p", cfg["plugin"]]
        cmd += cfg.get("args", []) + list(extra) + paths
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [str(HERE)] + os.environ.get("PYTHONPATH", "").split(os.pathsep)),
            TF_CPP_MIN_LOG_LEVEL="3", **cfg["env"])
        proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True)
        if not junit.exists():
            raise RuntimeError(f"pytest did not run:\n{proc.stdout}\n{proc.stderr}")
        res = _parse(junit, OUT_OF_SCOPE[suite])
        res["output"] = proc.stdout
        return res


def _has_xdist():
    import importlib.util

    return importlib.util.find_spec("xdist") is not None


def _parse(junit, known):
    res = {"passed": [], "failed": [], "skipped": [], "out_of_scope": []}
    for case in ET.parse(junit).getroot().iter("testcase"):
        tid = f"{case.get('classname')}::{case.get('name')}"
        bad = case.find("failure") if case.find("failure") is not None else case.find("error")
        if case.find("skipped") is not None:
            res["skipped"].append(tid)
        elif bad is None:
            res["passed"].append(tid)
        else:
            msg = bad.get("message") or ""
            reason = next((r for pat, mpat, r in known
                           if re.search(pat, tid) and re.search(mpat, msg)), None)
            if reason:
                res["out_of_scope"].append((tid, reason))
            else:
                res["failed"].append((tid, msg[:300]))
    return res


def summary(suite, res):
    lines = [f"{suite}: run {sum(len(res[k]) for k in ('passed', 'failed', 'out_of_scope'))}, "
             f"passed {len(res['passed'])}, out of scope {len(res['out_of_scope'])}, "
             f"failed {len(res['failed'])}, skipped upstream {len(res['skipped'])}"]
    classes = {}
    for _, r in res["out_of_scope"]:
        classes[r] = classes.get(r, 0) + 1
    lines += [f"    out of scope ({n}): {r}" for r, n in sorted(classes.items())]
    lines += [f"    FAILED {t}: {m}" for t, m in res["failed"]]
    return "\n".join(lines)


def main(argv):
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    names = (argv[:argv.index("--")] if "--" in argv else argv) or list(SUITES)
    ok = True
    for name in names:
        res = run(name, extra)
        print(summary(name, res), flush=True)
        ok &= not res["failed"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
