"""Peak extra memory of one call per library on the large cases (see :mod:`fastloss.bench.memory`).

Run alone: ``python benchmarks/memory.py [--profile full] [--libs ...]`` prints the table.
"""

import json
import sys
import tempfile

from fastloss.bench.memory import main as _main
from fastloss.bench.memory import peak_extra, run, run_child

__all__ = ["main", "peak_extra", "run", "run_child"]


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--out" not in argv and "--child" not in argv:
        out = tempfile.NamedTemporaryFile(suffix=".json", delete=False).name
        _main(argv + ["--out", out])
        from fastloss.bench.tables import memory_section

        print(memory_section({"memory": json.load(open(out))}))
        return 0
    return _main(argv)


if __name__ == "__main__":
    sys.exit(main())
