"""The ``fastloss`` command: ``info``, ``demo``, ``eval`` and ``bench``, one module each."""

import argparse
import sys

from fastloss.cli import bench as bench_cmd
from fastloss.cli import eval as eval_cmd
from fastloss.cli import info as info_cmd


def build_parser():
    p = argparse.ArgumentParser(prog="fastloss", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    for mod in (info_cmd, eval_cmd, bench_cmd):
        mod.register(sub)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError, OSError) as exc:
        print(f"fastloss: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
