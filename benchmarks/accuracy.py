"""Accuracy of every library in float32 ulps (see :mod:`fastloss.bench.accuracy`).

Run alone: ``python benchmarks/accuracy.py [--identical-n 1e8] [--ops ...] [--libs ...]``
prints a table; ``fastloss bench`` runs it as part of the report.
"""

import json
import sys
import tempfile

from fastloss.bench.accuracy import (
    adversarial,
    elementwise_stats,
    identical,
    mean_stats,
    random_inputs,
    reference_f64,
    reference_mp,
    run,
    ulp32,
    ulp_errors,
)
from fastloss.bench.accuracy import main as _main

__all__ = ["adversarial", "elementwise_stats", "identical", "main", "mean_stats",
           "random_inputs", "reference_f64", "reference_mp", "run", "ulp32", "ulp_errors"]

def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--out" not in argv:
        out = tempfile.NamedTemporaryFile(suffix=".json", delete=False).name
        argv += ["--out", out]
        _main(argv)
        from fastloss.bench.tables import accuracy_section

        print(accuracy_section({"accuracy": json.load(open(out))}))
        return 0
    return _main(argv)


if __name__ == "__main__":
    sys.exit(main())
