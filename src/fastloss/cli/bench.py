"""The ``fastloss bench`` subcommand (registered by ``fastloss.cli``)."""

import sys
import time

from fastloss.bench.report import PARTS


def _csv(text):
    return [t for t in text.split(",") if t] if text else None


def _cmd_bench(args):
    from fastloss.bench import report as _bench_report

    if args.render:
        print(_bench_report.render(args.render))
        if args.readme:
            _write_readme(args.readme, args.render)
        return 0
    argv = sys.argv[1:]
    args_line = ("fastloss " + " ".join(argv) if "bench" in argv else
                 "fastloss bench" + (" --full" if args.full else ""))
    parts = _csv(args.parts) or list(PARTS)
    bad = [p for p in parts if p not in PARTS]
    if bad:
        raise ValueError(f"--parts: unknown part(s) {bad}; choose from {', '.join(PARTS)}")
    threads = [int(t) for t in _csv(args.threads)] if args.threads else None
    t0 = time.perf_counter()

    def echo(msg):
        print(msg, file=sys.stderr, flush=True)

    out_dir, results = _bench_report.run(
        profile="full" if args.full else "quick", output=args.output, parts=parts,
        ops=_csv(args.ops), libs=_csv(args.libs), threads=threads,
        keep_openblas_env=args.keep_openblas_env, args_line=args_line, echo=echo)
    print((out_dir / "report.md").read_text())
    if args.readme:
        _write_readme(args.readme, out_dir)
    print(f"wrote {out_dir}/results.json, report.md and "
          f"{len(list(out_dir.glob('*.png')))} PNG files in "
          f"{_bench_report.fmt_seconds(time.perf_counter() - t0)}")
    return 0


def _write_readme(readme, out_dir):
    """Rewrite the README's generated benchmark summary from ``out_dir/results.json``."""
    import json
    import os
    from pathlib import Path

    from fastloss.bench import tables as _bench_tables

    out_dir, readme = Path(out_dir), Path(readme)
    results = json.loads((out_dir / "results.json").read_text())
    link = os.path.relpath(out_dir / "report.md", readme.resolve().parent)
    text = _bench_tables.update_readme(readme.read_text(), _bench_tables.summary_table(results),
                                       link)
    tmp = readme.with_name(readme.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, readme)
    print(f"updated the benchmark summary in {readme}", file=sys.stderr)


def register(subparsers):
    p = subparsers.add_parser(
        "bench", help="benchmark fastloss against NumPy, SciPy, scikit-learn, PyTorch and "
                      "TensorFlow: speed, accuracy, first-call latency, memory",
        description="Run every library on the same data and thread counts; write "
                    "results.json, report.md and PNG plots into benchmarks/results/"
                    "<date>-<cpu>/ (or --output) and print the report. The quick profile "
                    "takes a few minutes; --full runs every shape and dtype.")
    p.add_argument("--full", action="store_true", help="every case (takes much longer)")
    p.add_argument("--output", "-o", help="output directory")
    p.add_argument("--parts", help=f"comma-separated subset of {','.join(PARTS)}")
    p.add_argument("--ops", help="comma-separated operations, e.g. sparse_ce,bce_logits")
    p.add_argument("--libs", help="comma-separated libraries, e.g. fastloss-numba,torch")
    p.add_argument("--threads", help="comma-separated thread counts (default: 1 and all cores)")
    p.add_argument("--keep-openblas-env", action="store_true",
                   help="keep OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE in the benchmark processes")
    p.add_argument("--render", metavar="DIR",
                   help="only rewrite DIR/report.md and its PNGs from DIR/results.json")
    p.add_argument("--readme", metavar="FILE",
                   help="also rewrite the generated summary table between the "
                        "fastloss-bench-summary markers of FILE (e.g. README.md)")
    p.set_defaults(func=_cmd_bench)
    return p
