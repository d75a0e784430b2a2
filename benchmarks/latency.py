"""First-call latency of every library in fresh processes (see :mod:`fastloss.bench.latency`).

Run alone: ``python benchmarks/latency.py [--repeat 3] [--libs ...]`` prints the table.
"""

import json
import sys
import tempfile

from fastloss.bench.latency import main as _main
from fastloss.bench.latency import run, run_one

__all__ = ["main", "run", "run_one"]


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--out" not in argv and "--child" not in argv:
        out = tempfile.NamedTemporaryFile(suffix=".json", delete=False).name
        _main(argv + ["--out", out])
        from fastloss.bench.tables import latency_section

        print(latency_section({"latency": json.load(open(out))}))
        return 0
    return _main(argv)


if __name__ == "__main__":
    sys.exit(main())
