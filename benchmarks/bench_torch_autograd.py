"""fastloss.torch forward+backward against PyTorch's, side by side in one process.

    python benchmarks/bench_torch_autograd.py [--threads 1,2] [--repeat 5] [--scale 1.0]

Per case and thread count: the best wall time of ``--repeat`` runs (after one
warm-up) of ``loss(x, t).backward()`` with ``torch.nn.functional`` and with
``fastloss.torch`` on the same tensors, and the speed-up ``torch / fastloss``.
Both get the same thread count (``torch.set_num_threads`` and
``FASTLOSS_NUM_THREADS``); ``x.grad`` is reset before each run. Prints the CPU
model, fastloss's SIMD variant and the load average (the machine may be shared).
Cases: cross-entropy on 1e5 x 1000 float32 logits with int64 labels (mean), and
BCE with logits on 2e7 float32 elements (mean).
"""

import argparse
import os

from bench_grad import _best as best  # best of N after one warm-up


def _args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--scale", type=float, default=1.0, help="multiplies the problem sizes")
    return p.parse_args()


def forward_backward(loss, x, t):
    def run():
        x.grad = None
        loss(x, t).backward()
    return run


def main():
    args = _args()
    import numpy as np
    import torch
    import torch.nn.functional as TF

    import fastloss
    import fastloss.torch as FT

    info = fastloss.info()
    build = info["backends"].get("cython", {}).get("build", {})
    print(f"CPU: {info['cpu']}; fastloss backend {info['default_backend']}, SIMD variant "
          f"{build.get('variant')}; torch {torch.__version__}; load average "
          f"{os.getloadavg()[0]:.2f} (1 min); best of {args.repeat}")
    rng = np.random.default_rng(0)
    n_ce, n_bce = int(1e5 * args.scale), int(2e7 * args.scale)
    x_ce = torch.from_numpy(rng.standard_normal((n_ce, 1000), dtype=np.float32) * 3)
    y_ce = torch.from_numpy(rng.integers(0, 1000, n_ce))
    x_bce = torch.from_numpy(rng.standard_normal(n_bce, dtype=np.float32) * 3)
    t_bce = torch.from_numpy((rng.random(n_bce) < 0.3).astype(np.float32))
    cases = [("cross_entropy mean", f"{n_ce}x1000 f32", x_ce, y_ce, "cross_entropy"),
             ("bce_with_logits mean", f"{n_bce} f32", x_bce, t_bce,
              "binary_cross_entropy_with_logits")]
    print(f"{'case':24s} {'shape':>14s} {'threads':>7s} {'torch':>11s} {'fastloss':>11s} "
          f"{'speed-up':>9s}")
    for threads in (int(s) for s in args.threads.split(",")):
        torch.set_num_threads(threads)
        os.environ["FASTLOSS_NUM_THREADS"] = str(threads)
        for name, shape, x, t, fn in cases:
            x = x.clone().requires_grad_(True)
            t_torch = best(forward_backward(getattr(TF, fn), x, t), args.repeat)
            g_torch = x.grad.clone()
            t_fl = best(forward_backward(getattr(FT, fn), x, t), args.repeat)
            # same gradient, or the timing compares different things
            torch.testing.assert_close(x.grad, g_torch)
            print(f"{name:24s} {shape:>14s} {threads:7d} {t_torch * 1e3:8.1f} ms "
                  f"{t_fl * 1e3:8.1f} ms {t_torch / t_fl:8.2f}x", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
