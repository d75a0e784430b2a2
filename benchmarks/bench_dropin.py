"""Drop-in modules vs the functions they replace: same inputs, same thread count.

    python benchmarks/bench_dropin.py [--threads 1] [--scale 1.0] [--repeat 5]

Prints, per function, the best wall time of ``--repeat`` runs (after one warm-up
call, so JIT compilation and first-call imports are not timed) of the original
and of the fastloss drop-in, and the speed-up ``original / fastloss``. PyTorch
gets ``torch.set_num_threads``, TensorFlow its intra/inter-op pools and
fastloss ``FASTLOSS_NUM_THREADS``; NumPy/SciPy/scikit-learn are single-threaded
here (BLAS threads are limited through the environment before NumPy loads).
A library that is not installed is skipped.
"""

import argparse
import os
import sys
import time


def _args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--scale", type=float, default=1.0, help="multiplies every problem size")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--only", default="", help="comma-separated groups: scipy,sklearn,torch,keras")
    return p.parse_args()


ARGS = _args()
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)
os.environ["FASTLOSS_NUM_THREADS"] = str(ARGS.threads)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402

import fastloss  # noqa: E402

ROWS = []


def best(fn, repeat):
    fn()  # warm-up: JIT compile, lazy imports, caches
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def compare(group, name, shape, original, ours):
    t0 = best(original, ARGS.repeat)
    t1 = best(ours, ARGS.repeat)
    ROWS.append((group, name, shape, t0, t1))
    print(f"{group:8s} {name:44s} {shape:>14s} {t0 * 1e3:10.2f} ms {t1 * 1e3:10.2f} ms "
          f"{t0 / t1:8.1f}x", flush=True)


def n(x):
    return max(1, int(x * ARGS.scale))


def want(group):
    return not ARGS.only or group in ARGS.only.split(",")


def bench_scipy(r):
    try:
        import scipy.special as sp
    except ImportError:
        print("scipy not installed: skipped")
        return
    import fastloss.scipy as fs

    for dt in (np.float64, np.float32):
        a = r.standard_normal((n(2000), 1000)).astype(dt) * 5
        tag = f"{a.shape[0]}x{a.shape[1]} {np.dtype(dt).name[5:]}"
        compare("scipy", "logsumexp(a, axis=1)", tag, lambda: sp.logsumexp(a, axis=1),
                lambda: fs.logsumexp(a, axis=1))
        compare("scipy", "logsumexp(a) (axis=None)", tag, lambda: sp.logsumexp(a),
                lambda: fs.logsumexp(a))
        compare("scipy", "log_softmax(a, axis=1)", tag, lambda: sp.log_softmax(a, axis=1),
                lambda: fs.log_softmax(a, axis=1))
        compare("scipy", "softmax(a, axis=1)", tag, lambda: sp.softmax(a, axis=1),
                lambda: fs.softmax(a, axis=1))
    x = r.standard_normal(n(2_000_000)) * 5
    y = np.abs(r.standard_normal(x.size))
    tag = f"{x.size}"
    for name in ("expit", "log_expit"):
        compare("scipy", f"{name}(x)", tag, lambda f=getattr(sp, name): f(x),
                lambda f=getattr(fs, name): f(x))
    for name in ("xlogy", "rel_entr", "kl_div"):
        compare("scipy", f"{name}(x, y)", tag, lambda f=getattr(sp, name): f(np.abs(x), y),
                lambda f=getattr(fs, name): f(np.abs(x), y))


def bench_sklearn(r):
    try:
        from sklearn.metrics import log_loss
    except ImportError:
        print("scikit-learn not installed: skipped")
        return
    from fastloss.sklearn import log_loss as fl_log_loss

    for dt in (np.float64, np.float32):
        N, C = n(200_000), 20
        e = np.exp(r.standard_normal((N, C)))
        P = (e / e.sum(axis=1, keepdims=True)).astype(dt)
        y = r.integers(0, C, N)
        tag = f"{N}x{C} {np.dtype(dt).name[5:]}"
        compare("sklearn", "log_loss(y, P)", tag, lambda: log_loss(y, P),
                lambda: fl_log_loss(y, P))
        w = r.random(N)
        compare("sklearn", "log_loss(y, P, sample_weight=w)", tag,
                lambda: log_loss(y, P, sample_weight=w), lambda: fl_log_loss(y, P, sample_weight=w))
        labels = np.array([f"class_{i:02d}" for i in range(C)])[y]
        compare("sklearn", "log_loss(str labels, P)", tag, lambda: log_loss(labels, P),
                lambda: fl_log_loss(labels, P))
        p = P[:, 0] / (P[:, 0] + P[:, 1])
        compare("sklearn", "log_loss(y, p) binary 1-D", f"{N} {np.dtype(dt).name[5:]}",
                lambda: log_loss(y % 2, p), lambda: fl_log_loss(y % 2, p))


def bench_torch(r):
    try:
        import torch
    except ImportError:
        print("torch not installed: skipped")
        return
    import fastloss.torch as ft

    torch.set_num_threads(ARGS.threads)
    F = torch.nn.functional
    N, C = n(100_000), 100
    x = (r.standard_normal((N, C)) * 3).astype(np.float32)
    y = r.integers(0, C, N)
    w = r.uniform(0.5, 2, C).astype(np.float32)
    tx, ty, tw = torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(w)
    tag = f"{N}x{C} float32"
    with torch.no_grad():
        compare("torch", "cross_entropy(x, y)", tag, lambda: F.cross_entropy(tx, ty),
                lambda: ft.cross_entropy(x, y))
        compare("torch", "cross_entropy(x, y, weight, ls=0.1)", tag,
                lambda: F.cross_entropy(tx, ty, weight=tw, label_smoothing=0.1),
                lambda: ft.cross_entropy(x, y, weight=w, label_smoothing=0.1))
        compare("torch", "cross_entropy(..., reduction='none')", tag,
                lambda: F.cross_entropy(tx, ty, reduction="none"),
                lambda: ft.cross_entropy(x, y, reduction="none"))
        lp = ft.log_softmax(x, 1)
        tlp = torch.from_numpy(lp)
        compare("torch", "nll_loss(logp, y)", tag, lambda: F.nll_loss(tlp, ty),
                lambda: ft.nll_loss(lp, y))
        z = (r.random((N, C)) < 0.3).astype(np.float32)
        tz = torch.from_numpy(z)
        compare("torch", "binary_cross_entropy_with_logits", tag,
                lambda: F.binary_cross_entropy_with_logits(tx, tz),
                lambda: ft.binary_cross_entropy_with_logits(x, z))
        p = ft.softmax(x, 1)
        tp = torch.from_numpy(p)
        compare("torch", "binary_cross_entropy(p, z)", tag, lambda: F.binary_cross_entropy(tp, tz),
                lambda: ft.binary_cross_entropy(p, z))
        compare("torch", "kl_div(logp, p, 'batchmean')", tag,
                lambda: F.kl_div(tlp, tp, reduction="batchmean"),
                lambda: ft.kl_div(lp, p, reduction="batchmean"))
        compare("torch", "mse_loss(x, p)", tag, lambda: F.mse_loss(tx, tp),
                lambda: ft.mse_loss(x, p))
        compare("torch", "logsumexp(x, 1)", tag, lambda: torch.logsumexp(tx, 1),
                lambda: ft.logsumexp(x, 1))
        compare("torch", "log_softmax(x, 1)", tag, lambda: F.log_softmax(tx, 1),
                lambda: ft.log_softmax(x, 1))
        compare("torch", "softmax(x, 1)", tag, lambda: F.softmax(tx, 1),
                lambda: ft.softmax(x, 1))
        compare("torch", "cross_entropy(x, probs)", tag, lambda: F.cross_entropy(tx, tp),
                lambda: ft.cross_entropy(x, p))
        loss, tloss = ft.CrossEntropyLoss(), torch.nn.CrossEntropyLoss()
        compare("torch", "CrossEntropyLoss()(x, y)", tag, lambda: tloss(tx, ty),
                lambda: loss(x, y))
        # tall-skinny: many short rows
        N2, C2 = n(1_000_000), 10
        x2 = (r.standard_normal((N2, C2)) * 3).astype(np.float32)
        y2 = r.integers(0, C2, N2)
        tx2, ty2 = torch.from_numpy(x2), torch.from_numpy(y2)
        tag2 = f"{N2}x{C2} float32"
        compare("torch", "cross_entropy(x, y)", tag2, lambda: F.cross_entropy(tx2, ty2),
                lambda: ft.cross_entropy(x2, y2))
        compare("torch", "log_softmax(x, 1)", tag2, lambda: F.log_softmax(tx2, 1),
                lambda: ft.log_softmax(x2, 1))
        compare("torch", "softmax(x, 1)", tag2, lambda: F.softmax(tx2, 1),
                lambda: ft.softmax(x2, 1))


def bench_keras(r):
    try:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(ARGS.threads)
        tf.config.threading.set_inter_op_parallelism_threads(ARGS.threads)
        import keras
    except Exception as exc:  # missing or broken TensorFlow/Keras
        print(f"keras not available ({type(exc).__name__}): skipped")
        return
    import fastloss.keras as fk

    N, C = n(100_000), 100
    x = (r.standard_normal((N, C)) * 3).astype(np.float32)
    y = r.integers(0, C, N)
    p = np.asarray(fastloss.softmax(x, axis=1))
    onehot = np.eye(C, dtype=np.float32)[y]
    z = (r.random((N, C)) < 0.3).astype(np.float32)
    tag = f"{N}x{C} float32"
    L = keras.losses
    cases = [
        ("SparseCategoricalCrossentropy(from_logits)", "SparseCategoricalCrossentropy",
         dict(from_logits=True), y, x),
        ("SparseCategoricalCrossentropy(probs)", "SparseCategoricalCrossentropy", {}, y, p),
        ("CategoricalCrossentropy(probs)", "CategoricalCrossentropy", {}, onehot, p),
        ("CategoricalCrossentropy(from_logits)", "CategoricalCrossentropy",
         dict(from_logits=True), onehot, x),
        ("BinaryCrossentropy(probs)", "BinaryCrossentropy", {}, z, p),
        ("BinaryCrossentropy(from_logits)", "BinaryCrossentropy", dict(from_logits=True), z, x),
        ("BinaryFocalCrossentropy(probs)", "BinaryFocalCrossentropy", {}, z, p),
        ("KLDivergence", "KLDivergence", {}, onehot, p),
        ("MeanSquaredError", "MeanSquaredError", {}, p, x),
    ]
    for label, cls, kw, a, b in cases:
        theirs = getattr(L, cls)(**kw)
        ours = getattr(fk, cls)(**kw)
        compare("keras", label, tag, lambda t=theirs, a=a, b=b: t(a, b),
                lambda o=ours, a=a, b=b: o(a, b))


def main():
    r = np.random.default_rng(0)
    backend = fastloss._dispatch.resolve_backend(None)[0]
    print(f"fastloss backend: {backend}, threads: {ARGS.threads}, scale: {ARGS.scale}, "
          f"best of {ARGS.repeat}; python {sys.version.split()[0]}, numpy {np.__version__}")
    print(f"{'group':8s} {'function':44s} {'input':>14s} {'original':>13s} {'fastloss':>13s} "
          f"{'speed-up':>9s}")
    for group, fn in (("scipy", bench_scipy), ("sklearn", bench_sklearn), ("torch", bench_torch),
                      ("keras", bench_keras)):
        if want(group):
            fn(r)


if __name__ == "__main__":
    main()
