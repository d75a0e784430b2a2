"""Half-precision predictions (issue #18): fastloss on float16 / bfloat16 against fastloss on
float32 and PyTorch on the same half-precision tensors, side by side in one process.

Plain script (not collected by pytest)::

    python benchmarks/bench_half.py                        # 1 and 2 threads, best of 5
    python benchmarks/bench_half.py --threads 2 --repeat 9 --backend numba   # + generic path
    FASTLOSS_CYTHON_VARIANT=avx2 python benchmarks/bench_half.py
    python benchmarks/bench_half.py --dropin --no-tf      # fastloss.torch on a bf16 tensor
    python benchmarks/bench_half.py --backend numba --threads 2 --kinds categorical_ce kl mse \
        sparse_ce_grad softmax --no-tf                     # the other function families

Cases (the issue's targets): sparse CE on bfloat16 logits 1e5 x 1000 and 2048 x 50257, BCE
on float16 logits 2e7; ``--kinds`` adds categorical CE on logits, KL (log input), MSE,
the sparse CE gradient and softmax on bfloat16 1e5 x 1000 (their targets float32: the
kernels read half x only). Engines run one after the other inside every repeat with the same
thread count (``torch.set_num_threads``), so a busy neighbour slows them alike; printed are
elements per second of the best repeat and the ratios of the best times. Accuracy rows: the
mean loss and the per-sample values of fastloss, PyTorch and TensorFlow on the same
half-precision input, in float32 ulps against the float64 reference of the widened input
(``fastloss`` numpy backend on float64: a separate implementation, the test oracle).
"""

import argparse
import os
import time

import numpy as np

import fastloss
from fastloss._dispatch import resolve_backend
from fastloss._info import cpu_model

CASES = (("sparse_ce", "bfloat16", (100_000, 1000)), ("sparse_ce", "bfloat16", (2048, 50257)),
         ("bce", "float16", (20_000_000,)),
         ("categorical_ce", "bfloat16", (100_000, 1000)), ("kl", "bfloat16", (100_000, 1000)),
         ("mse", "bfloat16", (100_000, 1000)), ("sparse_ce_grad", "bfloat16", (100_000, 1000)),
         ("softmax", "bfloat16", (100_000, 1000)))
ISSUE_KINDS = ("sparse_ce", "bce")  # the issue's targets: the default --kinds

# kind -> fastloss call (targets, predictions, **backend and threads)
CALLS = {
    "sparse_ce": lambda y, x, **kw: fastloss.sparse_categorical_cross_entropy(
        y, x, from_logits=True, **kw),
    "bce": lambda y, x, **kw: fastloss.binary_cross_entropy(y, x, from_logits=True, **kw),
    "categorical_ce": lambda t, x, **kw: fastloss.categorical_cross_entropy(
        t, x, from_logits=True, **kw),
    "kl": lambda t, x, **kw: fastloss.kl_divergence(t, x, log_input=True, **kw),
    "mse": lambda t, x, **kw: fastloss.mean_squared_error(t, x, **kw),
    "sparse_ce_grad": lambda y, x, **kw: fastloss.sparse_categorical_cross_entropy_grad(
        y, x, **kw),
    "softmax": lambda _, x, **kw: fastloss.softmax(x, axis=1, **kw),
}


def _dtype(name):
    if name == "bfloat16":
        import ml_dtypes
        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def make(kind, dtype, shape, seed=0):
    rng = np.random.default_rng(seed)
    x32 = (rng.standard_normal(shape, dtype=np.float32) * 3)
    x = x32.astype(dtype)
    if kind in ("sparse_ce", "sparse_ce_grad", "softmax"):
        y = rng.integers(0, shape[1], shape[0])
    elif kind == "bce":
        y = (rng.random(shape, dtype=np.float32) < 0.3).astype(np.float32)
    else:  # class probabilities
        y = rng.random(shape, dtype=np.float32)
        y /= y.sum(axis=1, keepdims=True)
    return x, y


def torch_tensor(torch, x):
    """A zero-copy torch tensor of a float16 / bfloat16 NumPy array."""
    if x.dtype == np.float16:
        return torch.from_numpy(x)
    return torch.from_numpy(x.view(np.int16)).view(torch.bfloat16)


def engines(kind, x, y, x32, nt, backend, torch):
    f, kw = CALLS[kind], {"backend": backend, "n_threads": nt}
    out = {
        "fastloss half": lambda: f(y, x, **kw),
        "fastloss f32": lambda: f(y, x32, **kw),
    }
    kern = resolve_backend(backend)[1]
    if getattr(kern, "HALF_NATIVE", ()):  # the same backend through the generic path
        def generic():
            saved, kern.HALF_NATIVE = kern.HALF_NATIVE, frozenset()
            try:
                return f(y, x, **kw)
            finally:
                kern.HALF_NATIVE = saved
        out["half generic"] = generic
    if torch is not None and kind != "sparse_ce_grad":  # torch's is autograd: not alike
        F = torch.nn.functional
        xt = torch_tensor(torch, x)
        yt = torch.from_numpy(y)
        yh = yt if yt.dtype == torch.int64 else yt.to(xt.dtype)
        out["torch half"] = {
            "sparse_ce": lambda: F.cross_entropy(xt, yt),
            "bce": lambda: F.binary_cross_entropy_with_logits(xt, yh),
            "categorical_ce": lambda: F.cross_entropy(xt, yh),
            "kl": lambda: F.kl_div(xt, yh, reduction="batchmean"),
            "mse": lambda: F.mse_loss(xt, yh),
            "softmax": lambda: torch.softmax(xt, 1),
        }[kind]
    return out


def timeit(fns, repeat, nt, torch):
    best = {k: np.inf for k in fns}
    if torch is not None:
        torch.set_num_threads(nt)
    for _ in range(repeat):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            best[k] = min(best[k], time.perf_counter() - t0)
    return best


def ulps32(a, ref):
    """|a - ref| in units of the float32 spacing at ref (a float32 or wider, ref float64)."""
    a = np.asarray(a, np.float64)
    ref = np.asarray(ref, np.float64)
    sp = np.spacing(np.abs(ref).astype(np.float32)).astype(np.float64)
    return np.abs(a - ref) / sp


def accuracy(kind, x, y, torch, tf, n_rows=4096):
    """Per-sample and mean errors in float32 ulps against float64 on the widened input."""
    xs = x[:n_rows] if kind == "sparse_ce" else x[:n_rows * 64]
    ys = y[:xs.shape[0]]
    f = (fastloss.sparse_categorical_cross_entropy if kind == "sparse_ce"
         else fastloss.binary_cross_entropy)
    ref = f(ys, xs.astype(np.float32).astype(np.float64), from_logits=True, reduction="none",
            backend="numpy")
    rows = {"fastloss": f(ys, xs, from_logits=True, reduction="none")}
    if torch is not None:
        F = torch.nn.functional
        xt = torch_tensor(torch, np.ascontiguousarray(xs))
        if kind == "sparse_ce":
            v = F.cross_entropy(xt, torch.from_numpy(ys), reduction="none")
        else:
            v = F.binary_cross_entropy_with_logits(xt, torch.from_numpy(ys).to(xt.dtype),
                                                   reduction="none")
        rows["torch"] = v.float().numpy()
    if tf is not None:
        try:
            xtf = tf.constant(xs, dtype=tf.bfloat16 if xs.dtype.name == "bfloat16"
                              else tf.float16)
            if kind == "sparse_ce":
                v = tf.nn.sparse_softmax_cross_entropy_with_logits(ys, xtf)
            else:
                v = tf.nn.sigmoid_cross_entropy_with_logits(tf.cast(ys, xtf.dtype), xtf)
            rows["tensorflow"] = tf.cast(v, tf.float32).numpy()
        except Exception as exc:  # an op without a half kernel on this CPU build
            print(f"    tensorflow: {type(exc).__name__}: {str(exc).splitlines()[0][:80]}")
    for k, v in rows.items():
        u = ulps32(v, ref)
        m = ulps32(np.mean(v, dtype=np.float64).astype(np.float32), np.mean(ref))
        print(f"    accuracy {k:<11} per-sample ulps: median {np.median(u):10.1f}  "
              f"max {u.max():12.1f}   mean loss: {float(m):10.1f} ulps")


def peak_extra(fn):
    """``(peak RSS above the RSS before, NumPy's traced peak)`` of one call of ``fn``, bytes
    (RSS sees torch's allocations, which tracemalloc does not)."""
    import tracemalloc

    from fastloss.bench.memory import peak_extra as rss_peak

    tracemalloc.start()
    try:
        rss, _ = rss_peak(fn)
        traced = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return rss, traced


def dropin(torch, threads, repeat):
    """``fastloss.torch.cross_entropy`` on a bfloat16 tensor (zero-copy view) against the same
    call through the float32 copy it made before, on a float32 tensor, and torch's bfloat16
    ``F.cross_entropy``: Ge/s of the best repeat and peak extra memory of one call."""
    import fastloss.torch as FT

    def copy_path(fn):  # the drop-in's fallback when no view can be made: the old copy
        def run():
            saved = FT.torch_half_view

            def no_view(t):
                raise ImportError

            FT.torch_half_view = no_view
            try:
                return fn()
            finally:
                FT.torch_half_view = saved
        return run

    x, y = make("sparse_ce", _dtype("bfloat16"), (100_000, 1000))
    xt, yt = torch_tensor(torch, x), torch.from_numpy(y)
    x32t = xt.float()
    n = x.size
    fns = {
        "fl.torch bf16 view": lambda: FT.cross_entropy(xt, yt),
        "fl.torch bf16 copy (before)": copy_path(lambda: FT.cross_entropy(xt, yt)),
        "fl.torch f32": lambda: FT.cross_entropy(x32t, yt),
        "torch bf16": lambda: torch.nn.functional.cross_entropy(xt, yt),
    }
    a, b = fns["fl.torch bf16 view"](), fns["fl.torch bf16 copy (before)"]()
    assert a.dtype == torch.bfloat16 and a.view(torch.int16) == b.view(torch.int16)
    print(f"\nfastloss.torch.cross_entropy, bfloat16 tensor 100000x1000 ({n / 1e6:.0f}M "
          f"elements; a float32 copy is {4 * n / 2**20:.0f} MiB)")
    for nt in threads:
        os.environ["FASTLOSS_NUM_THREADS"] = str(nt)
        fastloss.refresh_config()
        best = timeit(fns, repeat, nt, torch)
        load = os.getloadavg()[0]
        print(f"  drop-in backend: {resolve_backend(None)[0]}, cython variant "
              f"{fastloss.refresh_config()['cython_variant']}")
        for k, t in best.items():
            print(f"  {nt} thread(s) {k:<28} {n / t / 1e9:6.3f} Ge/s  {t * 1e3:8.1f} ms")
        v = best["fl.torch bf16 view"]
        print(f"    view / copy {best['fl.torch bf16 copy (before)'] / v:.2f}x   "
              f"view / f32 {best['fl.torch f32'] / v:.2f}x   "
              f"view / torch bf16 {best['torch bf16'] / v:.2f}x   (load {load:.2f})")
    for k, fn in fns.items():
        rss, traced = peak_extra(fn)
        print(f"  peak extra memory {k:<28} RSS {rss / 2**20:8.1f} MiB   "
              f"NumPy traced {traced / 2**20:8.1f} MiB")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--backend", default="cython")
    ap.add_argument("--kinds", nargs="+", default=list(ISSUE_KINDS), choices=sorted(CALLS),
                    help="function families to time (default: the issue's sparse CE and BCE)")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--no-tf", action="store_true")
    ap.add_argument("--dropin", action="store_true",
                    help="only fastloss.torch.cross_entropy on a bfloat16 tensor (1e5 x 1000)")
    args = ap.parse_args()
    torch = tf = None
    if not args.no_torch:
        import torch
    if not args.no_tf:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        try:
            import tensorflow as tf
        except ImportError:
            tf = None
    variant = os.environ.get("FASTLOSS_CYTHON_VARIANT", "auto")
    print(f"CPU: {cpu_model()}   backend: {args.backend}   cython variant: {variant}   "
          f"load: {os.getloadavg()[0]:.2f}")
    if args.dropin:
        if torch is None:
            raise SystemExit("--dropin compares with PyTorch: drop --no-torch")
        dropin(torch, args.threads, args.repeat)
        return
    for kind, dname, shape in CASES:
        if kind not in args.kinds:
            continue
        x, y = make(kind, _dtype(dname), shape)
        x32 = x.astype(np.float32)
        n = x.size
        print(f"\n{kind} {dname} {'x'.join(map(str, shape))} ({n / 1e6:.0f}M elements)")
        for nt in args.threads:
            best = timeit(engines(kind, x, y, x32, nt, args.backend, torch), args.repeat, nt,
                          torch)
            line = "  ".join(f"{k} {n / t / 1e9:6.3f} Ge/s" for k, t in best.items())
            print(f"  {nt} thread(s): {line}")
            r = f"    half / f32 speed {best['fastloss f32'] / best['fastloss half']:.2f}x"
            if "half generic" in best:
                r += f"   native / generic {best['half generic'] / best['fastloss half']:.2f}x"
            if "torch half" in best:
                r += f"   half / torch half {best['torch half'] / best['fastloss half']:.2f}x"
            print(r + f"   (load {os.getloadavg()[0]:.2f})")
        if kind in ISSUE_KINDS:
            accuracy(kind, x, y, torch, tf)
        del x, x32, y


if __name__ == "__main__":
    main()
