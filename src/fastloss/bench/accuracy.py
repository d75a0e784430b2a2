"""Accuracy: every library's error, in float32 ulps, against a high-precision reference.

For each operation and library, on float32 inputs:

* ``random``: the benchmark data; reference in float64 with stable formulas
  (``(m - x_y) + log1p(sum_{j != argmax} exp(x_j - m))``, ``log1p(-p)``, ...), whose
  own error is ~2^-29 float32 ulps;
* ``adversarial``: hand-made rows and elements (large and huge logits, logits past
  float32's ``exp`` overflow, ``-inf`` entries, a dominant label whose loss is
  ``~1e-17``, probabilities 0, 1, ``1 - 2^-24`` and subnormal); reference with mpmath
  at 60 digits, one element at a time;
* ``identical``: ``N`` (1e8 by default) identical losses; the true mean is the one
  loss (mpmath), so any error is the library's summation.

An error is ``|got - ref| / ulp32(ref)`` where ``ulp32(r)`` is the spacing of float32
numbers at ``|r|`` (2^-149 below the normal range), computed in float64. Reported:
max and median ulp of the per-element values and the ulp error of the mean, the
count of non-finite results where the true loss is finite, and the count of finite
(clipped) results where the true loss is infinite (only inputs with a zero
probability have one; the mean is taken over the finite-loss inputs).

``python -m fastloss.bench.accuracy --out FILE [--identical-n N]``.
"""

import argparse
import json
import math
import sys
import time

import numpy as np

from fastloss.bench import registry as R

F32 = np.float32


def ulp32(ref):
    """Spacing of float32 numbers at ``|ref|`` (float64 array in, float64 out)."""
    ref = np.abs(np.asarray(ref, dtype=np.float64))
    _, e = np.frexp(ref)  # ref = m * 2**e, m in [0.5, 1); frexp(0) gives e = 0
    return np.where(ref == 0, 2.0 ** -149, np.ldexp(1.0, np.maximum(e - 24, -149)))


def ulp_errors(got, ref):
    got = np.asarray(got, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        return np.abs(got - ref) / ulp32(ref)


# --------------------------------------------------------------------------- references


def reference_f64(op, d):
    """Per-element reference in float64 with stable formulas (random inputs)."""
    if op in ("sparse_ce", "logsumexp"):
        x = d["x"].astype(np.float64)
        am = np.argmax(x, axis=1)
        rows = np.arange(x.shape[0])
        m = x[rows, am]
        e = np.exp(x - m[:, None])
        e[rows, am] = 0.0
        tail = np.log1p(e.sum(axis=1))
        if op == "logsumexp":
            return m + tail
        return (m - x[rows, d["y"]]) + tail
    if op == "sparse_ce_probs":
        p = d["p"].astype(np.float64)
        return -np.log(p[np.arange(p.shape[0]), d["y"]])
    z = d["z"].astype(np.float64)
    if op == "bce_logits":
        x = d["x"].astype(np.float64)
        return np.maximum(x, 0) - x * z + np.log1p(np.exp(-np.abs(x)))
    p = d["p"].astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return -(np.where(z > 0, z * np.log(p), 0.0) + np.where(z < 1, (1 - z) * np.log1p(-p), 0.0))


def _mp():
    import mpmath

    mpmath.mp.dps = 60
    return mpmath


def _mp_lse(mp, row, shift=0.0):
    """``log(sum(exp(row - shift)))``: the shift keeps ``lse - x_y`` free of cancellation."""
    if any(v == np.inf for v in row):
        return mp.inf
    s = mp.mpf(float(shift))
    terms = [mp.exp(mp.mpf(float(v)) - s) for v in row if v != -np.inf]
    return mp.log(mp.fsum(terms)) if terms else -mp.inf


def _softplus(mp, t):
    if t == np.inf:
        return mp.inf
    if t == -np.inf:
        return mp.mpf(0)
    return mp.log1p(mp.exp(mp.mpf(float(t))))


def reference_mp(op, d):
    """Per-element reference with mpmath (adversarial inputs), as float64."""
    mp = _mp()
    out = []
    if op in ("sparse_ce", "logsumexp"):
        for row, y in zip(d["x"], d["y"]):
            if op == "logsumexp":
                out.append(_mp_lse(mp, row))
            else:
                out.append(_mp_lse(mp, row, shift=row[y]))
    elif op == "sparse_ce_probs":
        for row, y in zip(d["p"], d["y"]):
            p = mp.mpf(float(row[y]))
            out.append(mp.inf if p == 0 else -mp.log(p))
    elif op == "bce_logits":
        for x, z in zip(d["x"], d["z"]):
            z = mp.mpf(float(z))
            v = mp.mpf(0)
            if z != 0:
                v += z * _softplus(mp, -x)
            if z != 1:
                v += (1 - z) * _softplus(mp, x)
            out.append(v)
    else:
        for p, z in zip(d["p"], d["z"]):
            p, z = mp.mpf(float(p)), mp.mpf(float(z))
            v = mp.mpf(0)
            if z != 0:
                v += mp.inf if p == 0 else -z * mp.log(p)
            if z != 1:
                v += mp.inf if p == 1 else -(1 - z) * mp.log1p(-p)
            out.append(v)
    return np.array([float(v) for v in out], dtype=np.float64)


# --------------------------------------------------------------------------- inputs

C_ADV = 16


def _adv_logit_rows(rng):
    """(x, y, description) rows of hand-made logits; every true loss is finite."""
    rows = []

    def add(desc, x, y, k=8):
        for _ in range(k):
            xx = np.asarray(x() if callable(x) else x, dtype=np.float64)
            rows.append((xx.astype(F32), int(y() if callable(y) else y), desc))

    c = C_ADV
    g = lambda s=3.0: rng.standard_normal(c) * s  # noqa: E731
    add("logits around +1e4", lambda: g() + 1e4, lambda: rng.integers(c))
    add("logits around -1e4", lambda: g() - 1e4, lambda: rng.integers(c))
    add("logits in [80, 100] (exp overflows float32)", lambda: rng.uniform(80, 100, c),
        lambda: rng.integers(c))
    add("label 200 below the max", lambda: np.r_[g()[:-1], -200.0] + 0.0, c - 1)
    add("label 1e4 below the max", lambda: np.r_[g()[:-1], -1e4], c - 1)
    add("dominant label (+40): loss ~1e-17", lambda: np.r_[40.0 + g(0.1)[:1], g(1.0)[1:]], 0)
    add("dominant label (+12): loss ~1e-5", lambda: np.r_[12.0, g(1.0)[1:]], 0)
    add("-inf entries (masked classes)",
        lambda: np.where(np.arange(c) % 2 == 1, -np.inf, g()), lambda: 2 * rng.integers(c // 2))
    add("all equal", np.full(c, 7.25), lambda: rng.integers(c))
    add("huge logits +-3e38", lambda: rng.choice([-3e38, 3e38], c), lambda: rng.integers(c))
    x = np.stack([r[0] for r in rows])
    y = np.array([r[1] for r in rows], dtype=np.int64)
    # keep the huge-logit rows' labels on a +3e38 entry: the loss then stays finite
    huge = np.array([r[2].startswith("huge") for r in rows])
    for i in np.flatnonzero(huge):
        y[i] = int(np.argmax(x[i]))
    return {"x": x, "y": y}, [r[2] for r in rows]


def _adv_prob_rows():
    c = C_ADV
    rows, descs = [], []

    def add(desc, p_y, rest, y=3):
        p = np.zeros(c, dtype=np.float64)
        p[:] = rest
        p[y] = p_y
        rows.append((p.astype(F32), y))
        descs.append(desc)

    tiny = 2.0 ** -24
    add("p_y = 1, others 0", 1.0, 0.0)
    add("p_y = 1 - 2^-24", 1 - tiny, tiny / (c - 1))
    add("p_y = 2^-24", tiny, (1 - tiny) / (c - 1))
    add("p_y = 1e-30", 1e-30, 1.0 / (c - 1))
    add("p_y = 1e-40 (float32 subnormal)", 1e-40, 1.0 / (c - 1))
    add("p_y = 1e-7", 1e-7, (1 - 1e-7) / (c - 1))
    add("p_y = 0.5, half the others 0", 0.5, np.where(np.arange(c) % 2, 1.0 / 8, 0.0), y=2)
    add("p_y = 0.25, others 0 or 0.75", 0.25, np.where(np.arange(c) == 0, 0.75, 0.0))
    add("p_y = 0 (infinite loss)", 0.0, 1.0 / (c - 1))
    x = np.stack([r[0] for r in rows])
    y = np.array([r[1] for r in rows], dtype=np.int64)
    return {"p": x, "y": y}, descs


def _adv_bce_logits():
    mags = [0.0, 1e-30, 1e-3, 1.0, 15.0, 17.0, 20.0, 30.0, 88.7, 89.0, 100.0, 1e3, 1e4, 3e38]
    xs, zs, descs = [], [], []
    for z in (0.0, 1.0, 0.25):
        for m in mags:
            for s in (1.0, -1.0):
                if m == 0 and s < 0:
                    continue
                xs.append(s * m)
                zs.append(z)
                descs.append(f"x = {str(F32(s * m))}, z = {z:g}")
        for x in (np.inf, -np.inf):
            xs.append(x)
            zs.append(z)
            descs.append(f"x = {x}, z = {z:g}" + (" (infinite loss)" if (x > 0 and z < 1) or
                                                    (x < 0 and z > 0) else ""))
    return {"x": np.array(xs, dtype=F32), "z": np.array(zs, dtype=F32)}, descs


def _adv_bce_probs():
    tiny = 2.0 ** -24
    ps = [0.0, 1.0, tiny, 1 - tiny, 1e-30, 1e-40, 2.0 ** -126, 1e-7, float(F32(1 - 1e-7)), 0.5, 0.9]
    xs, zs, descs = [], [], []
    for z in (0.0, 1.0):
        for p in ps:
            xs.append(p)
            zs.append(z)
            inf = (p == 0 and z == 1) or (p == 1 and z == 0)
            descs.append(f"p = {str(F32(p))}, z = {z:g}" + (" (infinite loss)" if inf else ""))
    return {"p": np.array(xs, dtype=F32), "z": np.array(zs, dtype=F32)}, descs


def adversarial(op, seed=7):
    """``(data, descriptions, reference)`` for ``op``."""
    rng = np.random.default_rng(seed)
    if op in ("sparse_ce", "logsumexp"):
        d, descs = _adv_logit_rows(rng)
    elif op == "sparse_ce_probs":
        d, descs = _adv_prob_rows()
    elif op == "bce_logits":
        d, descs = _adv_bce_logits()
    else:
        d, descs = _adv_bce_probs()
    return d, descs, reference_mp(op, d)


RANDOM_SHAPES = {"sparse_ce": (2000, 100), "logsumexp": (2000, 100),
                 "sparse_ce_probs": (2000, 100), "bce_logits": (200_000,),
                 "bce_probs": (200_000,)}


def random_inputs(op, seed=11):
    d = R.make_data(op, RANDOM_SHAPES[op], "float32", seed=seed)
    return d, reference_f64(op, d)


def identical(op, n):
    """``n`` identical losses: ``(data, true per-element loss)``; None for logsumexp."""
    if op == "bce_logits":
        d = {"x": np.full(n, 0.3, dtype=F32), "z": np.ones(n, dtype=F32)}
    elif op == "bce_probs":
        d = {"p": np.full(n, 0.3, dtype=F32), "z": np.ones(n, dtype=F32)}
    elif op == "sparse_ce":
        row = np.array([0.5, -1.0], dtype=F32)
        d = {"x": np.broadcast_to(row, (n, 2)).copy(), "y": np.zeros(n, dtype=np.int64)}
    elif op == "sparse_ce_probs":
        row = np.array([0.3, 0.7], dtype=F32)
        d = {"p": np.broadcast_to(row, (n, 2)).copy(), "y": np.zeros(n, dtype=np.int64)}
    else:
        return None, None
    one = {k: v[:1] for k, v in d.items()}
    return d, float(reference_mp(op, one)[0])


# --------------------------------------------------------------------------- measuring


def elementwise_stats(got, ref, descs=None):
    got = np.asarray(got, dtype=np.float64).reshape(-1)
    ref = np.asarray(ref, dtype=np.float64).reshape(-1)
    fin = np.isfinite(ref)
    gfin = np.isfinite(got)
    both = fin & gfin
    err = ulp_errors(got[both], ref[both])
    out = {"n": int(ref.size), "n_true_finite": int(fin.sum()),
           "max_ulp": float(err.max()) if err.size else None,
           "median_ulp": float(np.median(err)) if err.size else None,
           "nonfinite_where_finite": int((fin & ~gfin).sum()),
           "finite_where_infinite": int((~fin & gfin).sum()),
           "wrong_where_infinite": int((~fin & ~(got == ref)).sum())}
    if descs is not None:
        descs = np.asarray(descs)
        if err.size:
            out["worst"] = str(descs[both][int(np.argmax(err))])
        bad = sorted(set(descs[fin & ~gfin]))
        if bad:
            out["nonfinite_inputs"] = bad[:6]
    return out


def mean_stats(got, ref_mean):
    g = float(np.asarray(got, dtype=np.float64).reshape(()))
    finite = math.isfinite(g)
    return {"value": g, "ref": ref_mean,
            "ulp": float(ulp_errors(g, ref_mean)) if finite else None,
            "nonfinite": not finite}


def _call(op, lib, data, threads, reduction):
    with np.errstate(all="ignore"):  # NumPy's log(0) and 0 * inf are what is measured
        return R.to_numpy(R.make(op, lib, data, threads, reduction)())


def measure(op, lib, kind, data, ref, threads, descs=None, ref_mean=None):
    rec = {"op": op, "input": kind, "library": lib, "threads": threads,
           "n": int(ref.size) if ref is not None else int(R.pred(data).shape[0])}
    impl = R.COMPARISONS[op][lib]
    try:
        if ref is not None and impl.per_element:
            got = _call(op, lib, data, threads, "none")
            rec["elementwise"] = elementwise_stats(got, ref, descs)
        if op != "logsumexp":
            if ref is not None:
                fin = np.isfinite(ref)
                sub = data if fin.all() else {k: v[fin] for k, v in data.items()}
                ref_mean = float(np.sum(ref[fin]) / fin.sum())
            else:
                sub = data
            rec["mean"] = mean_stats(_call(op, lib, sub, threads, "mean"), ref_mean)
    except (R.Unsupported, R.ThreadMismatch) as exc:
        rec["skipped"] = str(exc)
    except Exception as exc:
        rec["error"] = f"{type(exc).__name__}: {exc}"[:500]
    return rec


IDENTICAL_LIMITS = {"sklearn": 20_000_000}  # log_loss's temporaries at 1e8: several GB


def run(threads=None, identical_n=100_000_000, identical_rows_n=None, ops=None, libs=None,
        log=None):
    threads = threads or R.ALL_CORES
    if libs is None or "tensorflow" in libs:
        if R.library_available("tensorflow")[0]:
            R.configure_tensorflow(threads)
    records = []
    t0 = time.perf_counter()
    for op in ops or R.OPS:
        todo = [lib for lib in (libs or R.LIBRARIES) if lib in R.COMPARISONS[op]]
        avail = {lib: R.library_available(lib) for lib in todo}
        d, ref = random_inputs(op)
        da, descs, refa = adversarial(op)
        n_id = identical_n if op in R.FLAT_OPS else (identical_rows_n or identical_n)
        did, ref_one = identical(op, n_id) if n_id else (None, None)
        for lib in todo:
            ok, why = avail[lib]
            if not ok:
                records.append({"op": op, "library": lib, "input": "all",
                                "skipped": f"not available: {why}"})
                continue
            records.append(measure(op, lib, "random", d, ref, threads))
            records.append(measure(op, lib, "adversarial", da, refa, threads, descs))
            if did is not None:
                lim = IDENTICAL_LIMITS.get(lib)
                if lim and n_id > lim:
                    records.append({"op": op, "input": "identical", "library": lib, "n": n_id,
                                    "skipped": f"{lib} skipped above {lim:.0e} elements "
                                               f"(memory)"})
                else:
                    records.append(measure(op, lib, "identical", did, None, threads,
                                           ref_mean=ref_one))
            if log:
                log(f"  accuracy {op:16s} {lib}")
        del did
    return {"threads": threads, "identical_n": identical_n,
            "identical_rows_n": identical_rows_n or identical_n,
            "seconds": time.perf_counter() - t0, "records": records}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--identical-n", type=float, default=1e8)
    ap.add_argument("--identical-rows-n", type=float, default=None)
    ap.add_argument("--ops", nargs="*")
    ap.add_argument("--libs", nargs="*")
    ap.add_argument("--out", help="write the JSON there (default: print the Markdown table)")
    a = ap.parse_args(argv)
    res = run(a.threads, int(a.identical_n),
              int(a.identical_rows_n) if a.identical_rows_n else None, a.ops, a.libs,
              log=lambda m: print(m, file=sys.stderr, flush=True))
    if a.out:
        with open(a.out, "w") as f:
            json.dump(res, f)
    else:
        from fastloss.bench.tables import accuracy_section

        print(accuracy_section({"accuracy": res}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
