"""Streaming evaluation (``fastloss.evaluate``) vs the in-memory kernel, file in page cache.

Run: ``python benchmarks/bench_eval.py [--rows N] [--classes C] [--threads T] [--repeat R]``.

Makes (or reuses) a ``.npy`` dump of float32 logits and int64 labels in ``--dir``, reads
it once so it sits in the page cache, then times, interleaved, the best of ``--repeat``:

* ``in-memory loss``: ``fastloss.sparse_categorical_cross_entropy`` on arrays already in
  memory (the baseline of the throughput requirement);
* ``in-memory loss + argmax``: the same plus NumPy's top-1 pass (``x.argmax(axis=1)``);
* ``in-memory loss + argmax_rows``: the same plus the backend's multi-threaded top-1 kernel
  (``argmax_rows``), the pass the default evaluation adds;
* ``evaluate, loss only``: streamed from the file, accuracy / per-class / diagnostics off;
* ``evaluate, no top-1``: streamed with the per-class losses and diagnostics, no accuracy;
* ``evaluate, default``: streamed with accuracy, per-class table and diagnostics;
* ``evaluate in memory, default``: the same figures from arrays already in memory, so the
  last line isolates what streaming from the file costs.

Results are checked bitwise equal first (the loss, and the accuracy against NumPy's argmax).
Narrow dumps: ``--rows 5000000 --classes 10``. Then one streamed run in a subprocess reports
its peak RSS (VmHWM). Timings on a shared machine vary: compare runs of one invocation.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

import fastloss
from fastloss import evaluate

SCE = "sparse_categorical_cross_entropy"


def make_dump(d, rows, classes, seed=0):
    xp, yp = os.path.join(d, f"x_{rows}x{classes}.npy"), os.path.join(d, f"y_{rows}.npy")
    if not (os.path.exists(xp) and np.load(xp, mmap_mode="r").shape == (rows, classes)):
        r = np.random.default_rng(seed)
        x = np.lib.format.open_memmap(xp, mode="w+", dtype=np.float32, shape=(rows, classes))
        step = max(1, (1 << 24) // classes)
        for a in range(0, rows, step):
            x[a:a + step] = r.standard_normal((min(step, rows - a), classes), dtype=np.float32) * 3
        x.flush()
        del x
        np.save(yp, r.integers(0, classes, rows))
    return xp, yp


def warm_page_cache(path, reread=True):
    """Put ``path`` in the page cache. ``reread``: first drop this file's cached pages
    (clean pages of this one file only) and read it sequentially, as a dump read once from
    disk would be cached: readahead then fills the cache with large folios, which map as
    2 MiB pages. Pages cached by the writer (small folios) cost more to map."""
    if reread and hasattr(os, "posix_fadvise"):
        fd = os.open(path, os.O_RDONLY)
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)
    with open(path, "rb", buffering=0) as f:
        while f.read(1 << 24):
            pass


def huge_mapped_fraction(path):
    """Fraction of the file that maps as 2 MiB pages (Linux smaps FilePmdMapped)."""
    import mmap
    import re

    try:
        with open(path, "rb") as f:
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        mm.madvise(22)  # MADV_POPULATE_READ
        addr = np.frombuffer(mm, np.uint8, 1).ctypes.data
        lines = open("/proc/self/smaps").read().splitlines()
        for i, line in enumerate(lines):
            m = re.match(r"([0-9a-f]+)-([0-9a-f]+) ", line)
            if m and int(m.group(1), 16) <= addr < int(m.group(2), 16):
                kb = {x.split(":")[0]: int(x.split()[1]) for x in lines[i + 1:i + 25]
                      if x.split(":")[0] in ("Rss", "FilePmdMapped")}
                return kb["FilePmdMapped"] / max(kb["Rss"], 1)
    except (OSError, ValueError, KeyError, AttributeError):
        return float("nan")
    finally:
        try:
            mm.close()
        except (BufferError, UnboundLocalError):
            pass
    return float("nan")


def peak_rss_mb(xp, yp, threads, backend):
    script = ("import sys\nfrom fastloss.cli import main\nrc = main(sys.argv[1:])\n"
              "print([l.split()[1] for l in open('/proc/self/status') "
              "if l.startswith('VmHWM')][0], file=sys.stderr)\nsys.exit(rc)\n")
    args = [sys.executable, "-c", script, "eval", xp, "--labels", yp, "--loss", SCE,
            "--from-logits", "--quiet", "--no-progress"]
    if threads:
        args += ["--threads", str(threads)]
    if backend:
        args += ["--backend", backend]
    p = subprocess.run(args, capture_output=True, text=True, check=True)
    return int(p.stderr.strip().splitlines()[-1]) / 1024


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=500_000)
    ap.add_argument("--classes", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--backend", default=None, help="cython, numba or numpy (default: best)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--chunk-rows", type=int, default=None)
    ap.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "fastloss_bench_eval"))
    ap.add_argument("--cache", choices=("reread", "asis"), default="reread",
                    help="reread: drop the dump's cached pages and read it once sequentially "
                         "(default); asis: time with the page cache as it is")
    args = ap.parse_args(argv)
    os.makedirs(args.dir, exist_ok=True)
    xp, yp = make_dump(args.dir, args.rows, args.classes)
    warm_page_cache(xp, args.cache == "reread")
    huge = huge_mapped_fraction(xp)
    x, y = np.load(xp), np.load(yp)  # the in-memory copy (not timed)
    gb = x.nbytes / 1e9
    kw = dict(from_logits=True, n_threads=args.threads, backend=args.backend)
    from fastloss._dispatch import resolve_backend, resolve_threads

    kern, nt = resolve_backend(args.backend)[1], resolve_threads(args.threads)
    top = np.empty(x.shape[0], np.int64)
    ev = dict(labels=yp, loss=SCE, progress=False, chunk_rows=args.chunk_rows, **kw)
    cases = {
        "in-memory loss": lambda: fastloss.sparse_categorical_cross_entropy(y, x, **kw),
        "in-memory loss + argmax": lambda: (fastloss.sparse_categorical_cross_entropy(y, x, **kw),
                                            x.argmax(axis=1)),
        "in-memory loss + argmax_rows": lambda: (
            fastloss.sparse_categorical_cross_entropy(y, x, **kw), kern.argmax_rows(x, top, nt)),
        "evaluate, loss only": lambda: evaluate(xp, per_class=False, accuracy=False,
                                                diagnostics=False, **ev),
        "evaluate, no top-1": lambda: evaluate(xp, accuracy=False, **ev),
        "evaluate, default": lambda: evaluate(xp, **ev),
        "evaluate in memory, default": lambda: evaluate(x, **dict(ev, labels=y)),
    }
    want = fastloss.sparse_categorical_cross_entropy(y, x, **kw)  # also the JIT warm-up
    got = evaluate(xp, **ev)
    assert got[SCE].tobytes() == want.tobytes()
    assert got.accuracy == float(np.count_nonzero(x.argmax(axis=1) == y)) / x.shape[0]
    assert evaluate(xp, per_class=False, accuracy=False, diagnostics=False,
                    **ev)[SCE].tobytes() == want.tobytes()
    load0 = os.getloadavg()
    times = {k: [] for k in cases}
    cpu = {k: [] for k in cases}
    for _ in range(args.repeat):
        for k, f in cases.items():
            c0, t0 = time.process_time(), time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
            cpu[k].append(time.process_time() - c0)
    base, cbase = min(times["in-memory loss"]), min(cpu["in-memory loss"])
    print(f"{args.rows} x {args.classes} float32 logits ({gb:.2f} GB) in the page cache, "
          f"backend {args.backend or fastloss.info()['default_backend']}, threads "
          f"{args.threads or 'default'} ({nt}), best of {args.repeat}, load average "
          f"{load0[0]:.1f} before / {os.getloadavg()[0]:.1f} after on {os.cpu_count()} CPUs, "
          f"{huge:.0%} of the cached dump maps as 2 MiB pages")
    print(f"{'':30s} {'wall s':>7s} {'GB/s':>6s} {'ratio':>6s} {'CPU s':>7s} {'ratio':>6s}"
          "   wall times of all runs")
    for k, v in times.items():
        c = min(cpu[k])
        print(f"{k:30s} {min(v):7.3f} {gb / min(v):6.2f} {base / min(v):6.0%} {c:7.3f} "
              f"{cbase / c:6.0%}   " + " ".join(f"{t:.3f}" for t in v))
    print("ratio: throughput relative to the in-memory loss (wall clock, and CPU time = "
          "user + sys of this process, which other users' load disturbs much less)")
    same = min(times["evaluate in memory, default"]) / min(times["evaluate, default"])
    print(f"streamed from the file vs the same figures on in-memory arrays (default figures): "
          f"{same:.0%}")
    print(f"peak RSS of `fastloss eval` on this dump: {peak_rss_mb(xp, yp, args.threads, args.backend):.0f} MB")


if __name__ == "__main__":
    main()
