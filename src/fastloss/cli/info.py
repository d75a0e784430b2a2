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


NUMPY_BLOCK_ROWS = 10_000  # NumPy's temporaries stay near 40 MB a block (1000 classes)


def _blocks(n):
    return ((a, min(n, a + NUMPY_BLOCK_ROWS)) for a in range(0, n, NUMPY_BLOCK_ROWS))


def _numpy_sparse_ce(y, x):
    """Sparse CE on logits as people write it in NumPy (stable, with temporaries), a block
    of rows at a time so that the demo's memory stays bounded; summed in float64."""
    import numpy as np

    total = 0.0
    for a, b in _blocks(x.shape[0]):
        xb = np.asarray(x[a:b])
        m = xb.max(axis=1, keepdims=True)
        lse = m[:, 0] + np.log(np.exp(xb - m).sum(axis=1))
        total += float((lse - xb[np.arange(b - a), y[a:b]]).sum(dtype=np.float64))
    return total / x.shape[0]


def _numpy_bce_logits(z, x):
    import numpy as np

    total = 0.0
    for a, b in _blocks(x.shape[0]):
        xb, zb = np.asarray(x[a:b]), np.asarray(z[a:b])
        v = np.maximum(xb, 0) - xb * zb + np.log1p(np.exp(-np.abs(xb)))
        total += float(v.sum(dtype=np.float64))
    return total / x.size


def _say(msg):
    print(msg, flush=True)


def _cmd_demo(args):
    """Make a sample prediction dump, score it with fastloss, and time plain NumPy next to it.

    The dump and the binary targets are written a block of rows at a time into
    memory-mapped .npy files and NumPy runs a block at a time, so the peak memory is about
    the two mapped files (640 MB at the default size), not NumPy's temporaries."""
    import numpy as np

    import fastloss

    rng = np.random.default_rng(args.seed)
    n, c = args.rows, args.classes
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        _say(f"making a sample dump: {n} rows x {c} classes of float32 logits "
             f"({n * c * 4 / 1e6:.0f} MB) and 0/1 targets of the same shape ...")
        x = np.lib.format.open_memmap(tmp / "logits.npy", mode="w+", dtype=np.float32,
                                      shape=(n, c))
        z = np.lib.format.open_memmap(tmp / "targets.npy", mode="w+", dtype=np.float32,
                                      shape=(n, c))
        for a, b in _blocks(n):
            x[a:b] = rng.standard_normal((b - a, c), dtype=np.float32) * 3
            z[a:b] = rng.random((b - a, c), dtype=np.float32) < 0.1
        x.flush()
        z.flush()
        y = rng.integers(0, c, n)
        backend = fastloss.info()["default_backend"]
        rows = []
        _say(f"scoring it with fastloss (backend {backend}) and with NumPy, "
             f"{NUMPY_BLOCK_ROWS} rows at a time ...")
        fastloss.sparse_categorical_cross_entropy(y[:64], x[:64], from_logits=True)  # JIT warm-up
        t0 = time.perf_counter()
        ce = fastloss.sparse_categorical_cross_entropy(y, x, from_logits=True)
        t_fl = time.perf_counter() - t0
        t0 = time.perf_counter()
        ce_np = _numpy_sparse_ce(y, x)
        t_np = time.perf_counter() - t0
        rows.append(("sparse_categorical_cross_entropy", float(ce), t_fl, ce_np, t_np))
        fastloss.binary_cross_entropy(z[:64], x[:64], from_logits=True)
        t0 = time.perf_counter()
        bce = fastloss.binary_cross_entropy(z, x, from_logits=True)
        t_fl = time.perf_counter() - t0
        t0 = time.perf_counter()
        bce_np = _numpy_bce_logits(z, x)
        t_np = time.perf_counter() - t0
        rows.append(("binary_cross_entropy (logits)", float(bce), t_fl, bce_np, t_np))
        del x, z
    print(f"{'loss':34s} {'fastloss':>14s} {'time':>8s} {'numpy':>14s} {'time':>8s} {'speed-up':>8s}")
    for name, v, t, vn, tn in rows:
        print(f"{name:34s} {v:14.8f} {t:7.3f}s {vn:14.8f} {tn:7.3f}s {tn / t:7.1f}x")
    return 0


def register(sub):
    pi = sub.add_parser("info", help="what is built: backends, OpenMP, SIMD, threads, versions")
    pi.add_argument("--json", action="store_true")
    pi.set_defaults(func=_cmd_info)
    pd = sub.add_parser("demo", help="score an embedded sample dump and time NumPy next to it")
    pd.add_argument("--rows", type=int, default=80_000)
    pd.add_argument("--classes", type=int, default=1000)
    pd.add_argument("--seed", type=int, default=0)
    pd.set_defaults(func=_cmd_demo)
