"""Loss + gradient: fastloss's fused kernels vs PyTorch forward + backward vs NumPy.

Run: ``python benchmarks/bench_grad.py [--threads N] [--repeat R]``. Every library
gets the same data and thread count in the same run; results are checked equal
before timing; the first (JIT) call is never timed. Prints elements/s and ratios.
"""

import argparse
import time

import numpy as np

import fastloss


def _best(fn, repeat):
    fn()  # warm-up (JIT compile, allocator)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def numpy_sparse_ce_grad(y, x):
    """Loss + gradient of the mean sparse CE as people write it in NumPy."""
    m = x.max(axis=1, keepdims=True)
    e = np.exp(x - m)
    s = e.sum(axis=1, keepdims=True)
    loss = np.mean(np.log(s[:, 0]) + m[:, 0] - x[np.arange(x.shape[0]), y])
    g = e / s
    g[np.arange(x.shape[0]), y] -= 1
    g /= x.shape[0]
    return loss, g


def numpy_binary_objective(y, x):
    """The hand-written LightGBM/XGBoost binary objective."""
    p = 1.0 / (1.0 + np.exp(-x))
    return p - y, p * (1.0 - p)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--backend", default=None)
    args = ap.parse_args(argv)
    import torch

    nt = args.threads or fastloss.info()["threads"]
    torch.set_num_threads(nt)
    rng = np.random.default_rng(0)
    backend = args.backend or fastloss.info()["default_backend"]
    print(f"threads={nt}  fastloss backend={backend}  torch {torch.__version__}")
    print(f"{'case':34s} {'library':22s} {'time':>9s} {'elem/s':>10s} {'vs torch':>9s}")

    for n, c in [(100_000, 1000), (1_000_000, 10)]:
        x = rng.standard_normal((n, c), dtype=np.float32) * 3
        y = rng.integers(0, c, n)
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)

        def fl():
            return fastloss.sparse_categorical_cross_entropy_grad(y, x, backend=backend,
                                                                  n_threads=nt)

        def tc():
            xr = xt.detach().requires_grad_(True)
            loss = torch.nn.functional.cross_entropy(xr, yt)
            loss.backward()
            return loss, xr.grad

        def npy():
            return numpy_sparse_ce_grad(y, x)

        lf, gf = fl()
        lt, gt = tc()
        np.testing.assert_allclose(float(lf), float(lt.detach()), rtol=1e-5)
        np.testing.assert_allclose(gf, gt.numpy(), rtol=1e-4, atol=1e-9)
        ref = None
        for name, fn in [("torch fwd+bwd", tc), (f"fastloss[{backend}]", fl), ("numpy", npy)]:
            t = _best(fn, args.repeat)
            ref = ref or t
            print(f"{f'sparse CE grad {n}x{c}':34s} {name:22s} {t * 1e3:8.1f}ms "
                  f"{n * c / t / 1e9:9.2f}G {ref / t:8.2f}x")

    m = 10_000_000
    x = rng.standard_normal(m).astype(np.float64) * 3
    z = (rng.random(m) < 0.3).astype(np.float64)

    def fl_obj():
        return fastloss.objectives.lightgbm_binary_logistic(z, x)

    def np_obj():
        return numpy_binary_objective(z, x)

    g1, h1 = fl_obj()
    g2, h2 = np_obj()
    np.testing.assert_allclose(g1, g2, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(h1, h2, rtol=1e-10, atol=1e-300)
    ref = None
    for name, fn in [("numpy objective", np_obj), (f"fastloss[{backend}]", fl_obj)]:
        t = _best(fn, args.repeat)
        ref = ref or t
        print(f"{f'binary objective {m} (float64)':34s} {name:22s} {t * 1e3:8.1f}ms "
              f"{m / t / 1e9:9.2f}G {ref / t:8.2f}x (vs numpy)")


if __name__ == "__main__":
    import fastloss.objectives  # noqa: F401

    main()
