"""A user's compiled custom loss vs the same expression in NumPy and in PyTorch.

Run: ``python benchmarks/bench_custom.py [--threads N] [--rows N]``. Same data, same
thread count, one run; values checked equal before timing; compile never timed.
"""

import argparse
import time

import numpy as np

import fastloss


@fastloss.elementwise_loss
def weighted_square(t, p):
    return (p - t) * (p - t)


@fastloss.elementwise_loss
def huber(t, p, delta):
    d = abs(p - t)
    return 0.5 * d * d if d <= delta else delta * (d - 0.5 * delta)


def _best(fn, repeat):
    fn()
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--rows", type=int, default=5_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)
    import torch

    nt = args.threads or fastloss.info()["threads"]
    torch.set_num_threads(nt)
    rng = np.random.default_rng(0)
    n = args.rows
    t = rng.standard_normal((n, 2)).astype(np.float32)
    p = rng.standard_normal((n, 2)).astype(np.float32)
    w = np.array([0.3, 0.7], dtype=np.float32)
    tt, pt, wt = torch.from_numpy(t), torch.from_numpy(p), torch.from_numpy(w)
    cases = {
        "weighted MSE (seed example)": {
            "fastloss": lambda: weighted_square(t, p, output_weight=[0.3, 0.7],
                                                output_reduction="sum", n_threads=nt),
            "numpy": lambda: np.mean(np.sum(np.square(p - t) * w, axis=1)),
            "torch": lambda: torch.mean(torch.sum(torch.square(pt - tt) * wt, dim=1)),
        },
        "Huber (delta=1)": {
            "fastloss": lambda: huber(t, p, 1.0, n_threads=nt),
            "numpy": lambda: np.mean(np.where(np.abs(p - t) <= 1, 0.5 * (p - t) ** 2,
                                              np.abs(p - t) - 0.5)),
            "torch": lambda: torch.nn.functional.huber_loss(pt, tt, delta=1.0),
        },
    }
    print(f"threads={nt}  rows={n}  (2 outputs, float32)")
    print(f"{'case':30s} {'library':10s} {'value':>12s} {'time':>9s} {'vs numpy':>9s}")
    for case, libs in cases.items():
        vals = {k: float(f()) for k, f in libs.items()}
        for k, v in vals.items():
            assert abs(v - vals["numpy"]) <= 1e-4 * abs(vals["numpy"]), (case, k, vals)
        t_np = _best(libs["numpy"], args.repeat)
        for k, f in libs.items():
            tk = t_np if k == "numpy" else _best(f, args.repeat)
            print(f"{case:30s} {k:10s} {vals[k]:12.7f} {tk * 1e3:8.1f}ms {t_np / tk:8.2f}x")


if __name__ == "__main__":
    main()
