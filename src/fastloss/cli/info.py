"""``fastloss info`` (what is built) and ``fastloss demo`` (a sample dump scored and timed
next to plain NumPy)."""

import json
import tempfile
import time
from pathlib import Path


def _cmd_info(args):
    from fastloss._info import format_info, info

    d = info()
    print(json.dumps(d, indent=2) if args.json else format_info(d))
    return 0


def _numpy_sparse_ce(y, x):
    """Sparse CE on logits as people write it in NumPy (stable, with temporaries)."""
    import numpy as np

    m = x.max(axis=1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(x - m).sum(axis=1))
    return float(np.mean(lse - x[np.arange(x.shape[0]), y]))


def _numpy_bce_logits(z, x):
    import numpy as np

    return float(np.mean(np.maximum(x, 0) - x * z + np.log1p(np.exp(-np.abs(x)))))


def _cmd_demo(args):
    """Make a sample prediction dump, score it with fastloss, and time plain NumPy next to it."""
    import numpy as np

    import fastloss

    rng = np.random.default_rng(args.seed)
    n, c = args.rows, args.classes
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        logits = (rng.standard_normal((n, c), dtype=np.float32) * 3).astype(np.float32)
        labels = rng.integers(0, c, n)
        np.save(tmp / "logits.npy", logits)
        np.save(tmp / "labels.npy", labels)
        del logits
        x = np.load(tmp / "logits.npy", mmap_mode="r")
        y = np.load(tmp / "labels.npy")
        print(f"sample dump: {n} rows x {c} classes float32 logits "
              f"({x.nbytes / 1e6:.0f} MB, memory-mapped), backend {fastloss.info()['default_backend']}")
        rows = []
        fastloss.sparse_categorical_cross_entropy(y[:64], x[:64], from_logits=True)  # JIT warm-up
        t0 = time.perf_counter()
        ce = fastloss.sparse_categorical_cross_entropy(y, x, from_logits=True)
        t_fl = time.perf_counter() - t0
        xa = np.asarray(x)
        t0 = time.perf_counter()
        ce_np = _numpy_sparse_ce(y, xa)
        t_np = time.perf_counter() - t0
        rows.append(("sparse_categorical_cross_entropy", float(ce), t_fl, ce_np, t_np))
        z = (rng.random(xa.shape) < 0.1).astype(np.float32)
        fastloss.binary_cross_entropy(z[:64], xa[:64], from_logits=True)
        t0 = time.perf_counter()
        bce = fastloss.binary_cross_entropy(z, xa, from_logits=True)
        t_fl = time.perf_counter() - t0
        t0 = time.perf_counter()
        bce_np = _numpy_bce_logits(z, xa)
        t_np = time.perf_counter() - t0
        rows.append(("binary_cross_entropy (logits)", float(bce), t_fl, bce_np, t_np))
    print(f"{'loss':34s} {'fastloss':>14s} {'time':>8s} {'numpy':>14s} {'time':>8s} {'speed-up':>8s}")
    for name, v, t, vn, tn in rows:
        print(f"{name:34s} {v:14.8f} {t:7.3f}s {vn:14.8f} {tn:7.3f}s {tn / t:7.1f}x")
    return 0


def register(sub):
    pi = sub.add_parser("info", help="what is built: backends, OpenMP, SIMD, threads, versions")
    pi.add_argument("--json", action="store_true")
    pi.set_defaults(func=_cmd_info)
    pd = sub.add_parser("demo", help="score an embedded sample dump and time NumPy next to it")
    pd.add_argument("--rows", type=int, default=200_000)
    pd.add_argument("--classes", type=int, default=1000)
    pd.add_argument("--seed", type=int, default=0)
    pd.set_defaults(func=_cmd_demo)
