"""Same-bits check for refactorings of the Python layer (issue #15).

Runs every public function, gradient, accumulator, ``evaluate`` and drop-in on a
seeded zoo and records one SHA-256 per call: the dtype, shape and bytes of every
returned array, or the exception's type and message. Run it before a change
(``--write before.json``) and after (``--check before.json``): any differing call
is listed. Only public import paths are used, so it survives moves of the
private modules.

    python tests/_bits_snapshot.py --write /tmp/bits.json
    python tests/_bits_snapshot.py --check /tmp/bits.json
"""

import argparse
import hashlib
import json
import os
import sys
import tempfile
import warnings
import zlib

import numpy as np

import fastloss

DTYPES = (np.float16, np.float32, np.float64)


def _digest(value, h):
    if isinstance(value, dict):
        for k in sorted(value, key=str):
            h.update(repr(k).encode())
            _digest(value[k], h)
    elif isinstance(value, (tuple, list)):
        h.update(f"seq{len(value)}".encode())
        for v in value:
            _digest(v, h)
    elif hasattr(value, "detach"):  # torch tensor
        _digest(value.detach().numpy(), h)
        h.update(str(value.dtype).encode())
    elif isinstance(value, (np.ndarray, np.generic)):
        a = np.asarray(value)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    else:
        h.update(repr(value).encode())


class Recorder:
    def __init__(self):
        self.out = {}
        self.errors = {}

    def __call__(self, key, fn, *args, **kw):
        h = hashlib.sha256()
        try:
            with warnings.catch_warnings(record=True) as w:
                warnings.simplefilter("always")
                val = fn(*args, **kw)
            _digest(val, h)
            for x in w:
                h.update(f"W:{x.category.__name__}:{x.message}".encode())
        except Exception as e:  # noqa: BLE001 - the error is part of the behaviour
            h.update(f"E:{type(e).__name__}:{e}".encode())
            self.errors[key] = f"{type(e).__name__}: {e}"[:150]
        assert key not in self.out, key
        self.out[key] = h.hexdigest()[:24]


def core(rec, backends):
    for name, row in fastloss.LOSSES.items():
        grad = getattr(fastloss, name + "_grad")
        for vi, variant in enumerate(row.variants):
            for dt in DTYPES:
                for n, c in ((300, 7), (1, 1), (0, 3)):
                    rng = np.random.default_rng(zlib.crc32(f"{name}{vi}{n}{c}".encode()))
                    y, x, kw = row.make(rng, n, c, dt, variant)
                    for be in backends:
                        for nt in (1, 2):
                            for red in ("mean", "sum", "none"):
                                k = f"{name}|{vi}|{np.dtype(dt).name}|{n}x{c}|{be}|{nt}|{red}"
                                rec("f:" + k, row.func, y, x, reduction=red, backend=be,
                                    n_threads=nt, **kw)
                                if red == "none" or kw.get("from_logits") is False:
                                    continue  # gradients take logits and a scalar loss
                                gkw = {a: b for a, b in kw.items()
                                       if a not in ("clip", "from_logits")}
                                rec("g:" + k, grad, y, x, reduction=red, backend=be,
                                    n_threads=nt, hessian=True, **gkw)
                    if n == 300:  # class axis first, a batch axis, a NaN, and odd options
                        for be in backends:
                            if row.has_class_axis:
                                yt = y if name.startswith("sparse") else np.moveaxis(y, -1, 0)
                                rec(f"ax:{name}|{vi}|{dt.__name__}|{be}", row.func, yt,
                                    np.moveaxis(x, -1, 0), axis=0, backend=be, **kw)
                            xn = x.copy()
                            xn.flat[5] = np.nan
                            rec(f"nan:{name}|{vi}|{dt.__name__}|{be}", row.func, y, xn,
                                backend=be, **kw)
                            rec(f"omit:{name}|{vi}|{dt.__name__}|{be}", row.func, y, xn,
                                backend=be, nan_policy="omit", **kw)
                            rec(f"raise:{name}|{vi}|{dt.__name__}|{be}", row.func, y, xn,
                                backend=be, nan_policy="raise", **kw)
                            y3 = y.reshape((20, 15) + y.shape[1:])
                            x3 = x.reshape(20, 15, c)
                            rec(f"3d:{name}|{vi}|{dt.__name__}|{be}", row.func, y3, x3,
                                backend=be, **{a: b for a, b in kw.items() if a != "sample_weight"})
    rng = np.random.default_rng(1)
    for dt in DTYPES:
        a = (rng.standard_normal((40, 9, 5)) * 4).astype(dt)
        a[0, 0, 0] = np.inf
        a[1, :, 1] = -np.inf
        for be in backends:
            for axis in (None, -1, 0, (0, 2), 1):
                for keep in (False, True):
                    rec(f"lse|{dt.__name__}|{be}|{axis}|{keep}", fastloss.logsumexp, a, axis=axis,
                        keepdims=keep, backend=be)
                rec(f"lseb|{dt.__name__}|{be}|{axis}", fastloss.logsumexp, a, axis=axis,
                    b=np.linspace(-1, 2, 5), return_sign=True, backend=be)
            for axis in (-1, 0, 1):
                rec(f"sm|{dt.__name__}|{be}|{axis}", fastloss.softmax, a, axis=axis, backend=be)
                rec(f"lsm|{dt.__name__}|{be}|{axis}", fastloss.log_softmax, a, axis=axis,
                    backend=be)
    # argument errors are part of the behaviour too
    x = np.zeros((3, 4))
    y = np.array([0, 1, 3])
    rec("err:sce|range", fastloss.sparse_categorical_cross_entropy, np.array([0, 1, 5]), x)
    for args in [dict(), dict(n_threads=0), dict(n_threads=-1), dict(n_threads=1.5),
                 dict(reduction="avg"), dict(clip="nope"), dict(ignore_index=5),
                 dict(label_smoothing=2.0), dict(sample_weight=np.ones(2)),
                 dict(class_weight=np.ones(3)), dict(backend="nope"), dict(axis=3)]:
        rec(f"err:sce|{sorted(args.items(), key=str)}", fastloss.sparse_categorical_cross_entropy, y, x, **args)
    rec("err:bce", fastloss.binary_cross_entropy, np.ones((2, 2)), np.full((2, 2), 2.0))
    rec("err:kl", fastloss.kl_divergence, np.ones((2, 2)), -np.ones((2, 2)))
    rec("err:mse", fastloss.mean_squared_error, np.ones((2, 2)), np.ones((2, 3)))


def custom(rec, backends):
    @fastloss.elementwise_loss
    def huber(t, p, d):
        r = abs(t - p)
        return 0.5 * r * r if r <= d else d * (r - 0.5 * d)

    rng = np.random.default_rng(3)
    for dt in DTYPES:
        t = rng.standard_normal((123, 4)).astype(dt)
        p = rng.standard_normal((123, 4)).astype(dt)
        for red in ("mean", "sum", "none"):
            for orr in ("mean", "sum"):
                rec(f"custom|{dt.__name__}|{red}|{orr}", huber, t, p, 1.0, reduction=red,
                    output_reduction=orr, output_weight=np.arange(1, 5.0),
                    sample_weight=np.linspace(0, 1, 123))
            rec(f"custom1|{dt.__name__}|{red}", huber, t[:, 0], p[:, 0], 0.5, reduction=red)


def accumulate(rec):
    for name, row in fastloss.LOSSES.items():
        for vi, variant in enumerate(row.variants):
            for dt in (np.float32, np.float64):
                rng = np.random.default_rng(vi + 10)
                y, x, kw = row.make(rng, 3000, 6, dt, variant)
                sw = kw.pop("sample_weight", None)
                for red in ("mean", "sum"):
                    def run(kw=kw, y=y, x=x, sw=sw, red=red):
                        a = fastloss.LossAccumulator(name, reduction=red, **kw)
                        b = fastloss.LossAccumulator(name, reduction=red, start_row=1700, **kw)
                        for lo, hi in ((0, 700), (700, 1700)):
                            a.update(y[lo:hi], x[lo:hi], None if sw is None else sw[lo:hi])
                        b.update(y[1700:], x[1700:], None if sw is None else sw[1700:])
                        st = json.loads(json.dumps(a.state_dict()))
                        a2 = fastloss.LossAccumulator.from_state_dict(st)
                        a2.merge(b)
                        return a2.result(), a2.sum_and_weight(), a2.n_rows, st
                    rec(f"acc|{name}|{vi}|{dt.__name__}|{red}", run)


def evaluation(rec, tmp):
    rng = np.random.default_rng(5)
    n, c = 5000, 6
    x = (rng.standard_normal((n, c)) * 3).astype(np.float32)
    e = np.exp(x - x.max(1, keepdims=True))
    p = (e / e.sum(1, keepdims=True)).astype(np.float32)
    y = rng.integers(0, c, n)
    w = rng.uniform(0, 2, n)
    g = rng.integers(0, 4, n)
    x[7, 2] = np.nan
    for nm, a in dict(x=x, p=p, y=y, w=w, g=g).items():
        np.save(os.path.join(tmp, nm + ".npy"), a)
    j = lambda nm: os.path.join(tmp, nm + ".npy")  # noqa: E731
    SCE = "sparse_categorical_cross_entropy"

    def doc(*a, **k):
        d = fastloss.evaluate(*a, **k).to_dict()
        d.pop("inputs", None)
        d.pop("elapsed_s", None)
        d.pop("timing", None)
        return d

    for cr in (None, 777):
        rec(f"eval:logits|{cr}", doc, j("x"), labels=j("y"), loss=SCE, from_logits=True,
            chunk_rows=cr, weights=j("w"), groups=j("g"), on_bad_row="skip")
        rec(f"eval:probs|{cr}", doc, j("p"), labels=j("y"),
            loss=[SCE, "categorical_cross_entropy", "mean_squared_error", "kl_divergence",
                  "binary_cross_entropy"], clip="keras", chunk_rows=cr)
        rec(f"eval:raise|{cr}", doc, j("x"), labels=j("y"), loss=SCE, from_logits=True,
            chunk_rows=cr)


def dropins(rec):
    rng = np.random.default_rng(9)
    x = (rng.standard_normal((64, 5)) * 3).astype(np.float32)
    e = np.exp(x - x.max(1, keepdims=True))
    p = (e / e.sum(1, keepdims=True)).astype(np.float32)
    y = rng.integers(0, 5, 64)
    yo = np.eye(5, dtype=np.float32)[y]
    z = (rng.random((64, 5)) < 0.4).astype(np.float32)
    w = rng.uniform(0, 2, 64).astype(np.float32)
    u = rng.random((64, 5)).astype(np.float32)
    # scipy
    import fastloss.scipy as FS
    for dt in (np.float32, np.float64):
        a = x.astype(dt)
        for fn in ("expit", "log_expit"):
            rec(f"scipy:{fn}|{dt.__name__}", getattr(FS, fn), a)
        for fn in ("xlogy", "rel_entr", "kl_div"):
            rec(f"scipy:{fn}|{dt.__name__}", getattr(FS, fn), u.astype(dt), p.astype(dt))
        for axis in (None, 0, -1):
            rec(f"scipy:lse|{dt.__name__}|{axis}", FS.logsumexp, a, axis=axis)
            rec(f"scipy:lseb|{dt.__name__}|{axis}", FS.logsumexp, a, axis=axis, b=u.astype(dt),
                return_sign=True)
            rec(f"scipy:sm|{dt.__name__}|{axis}", FS.softmax, a, axis=axis)
            rec(f"scipy:lsm|{dt.__name__}|{axis}", FS.log_softmax, a, axis=axis)
    # sklearn
    import fastloss.sklearn as FSK
    for dt in (np.float32, np.float64):
        rec(f"sk:multi|{dt.__name__}", FSK.log_loss, y, p.astype(dt))
        rec(f"sk:multiw|{dt.__name__}", FSK.log_loss, y, p.astype(dt), sample_weight=w,
            normalize=False)
        rec(f"sk:bin|{dt.__name__}", FSK.log_loss, z[:, 0], u[:, 0].astype(dt))
        rec(f"sk:str|{dt.__name__}", FSK.log_loss, np.array(list("abcab") * 4),
            p[:20, :3].astype(dt) / p[:20, :3].sum(1, keepdims=True))
        rec(f"sk:labels|{dt.__name__}", FSK.log_loss, y[:10], p[:10].astype(dt),
            labels=[0, 1, 2, 3, 4, 5])
    rec("sk:err", FSK.log_loss, y, p[:, :3])
    # objectives
    from fastloss import objectives as O
    for fn in ("lightgbm_binary_logistic", "xgboost_binary_logistic"):
        f = getattr(O, fn, None)
        if f is not None:
            rec(f"obj:{fn}", f, z[:, 0].astype(float), x[:, 0].astype(float))
    for fn in ("lightgbm_multiclass_softmax", "xgboost_multiclass_softmax"):
        f = getattr(O, fn, None)
        if f is not None:
            rec(f"obj:{fn}", f, y.astype(float), x.astype(float))
    # keras (NumPy in, no TensorFlow)
    import fastloss.keras as FK
    import fastloss.keras.legacy as FKL
    for mod, tag in ((FK, "k3"), (FKL, "k2")):
        for dt in (np.float32, np.float64):
            P, X, Z, U, YO = (a.astype(dt) for a in (p, x, z, u, yo))
            rec(f"{tag}:bce|{dt.__name__}", mod.binary_crossentropy, Z, U)
            rec(f"{tag}:bcel|{dt.__name__}", mod.binary_crossentropy, Z, X, from_logits=True,
                label_smoothing=0.1)
            rec(f"{tag}:cce|{dt.__name__}", mod.categorical_crossentropy, YO, P)
            rec(f"{tag}:ccel|{dt.__name__}", mod.categorical_crossentropy, YO, X,
                from_logits=True, label_smoothing=0.2)
            rec(f"{tag}:sce|{dt.__name__}", mod.sparse_categorical_crossentropy, y, P)
            rec(f"{tag}:scel|{dt.__name__}", mod.sparse_categorical_crossentropy, y, X,
                from_logits=True)
            rec(f"{tag}:kl|{dt.__name__}", mod.kl_divergence, P, U)
            rec(f"{tag}:mse|{dt.__name__}", mod.mean_squared_error, P, U)
            if hasattr(mod, "binary_focal_crossentropy"):
                rec(f"{tag}:focal|{dt.__name__}", mod.binary_focal_crossentropy, Z, X,
                    from_logits=True)
        red = ("sum_over_batch_size", "sum", "none") if tag == "k3" else ("auto", "sum", "none")
        for r in red:
            for cls, a, b, ckw in (
                    ("BinaryCrossentropy", z, u, {}),
                    ("BinaryCrossentropy", z, x, {"from_logits": True}),
                    ("CategoricalCrossentropy", yo, p, {}),
                    ("CategoricalCrossentropy", yo, x, {"from_logits": True}),
                    ("SparseCategoricalCrossentropy", y, p, {}),
                    ("SparseCategoricalCrossentropy", y, x, {"from_logits": True}),
                    ("KLDivergence", p, u, {}), ("MeanSquaredError", p, u, {})):
                L = getattr(mod, cls)(reduction=r, **ckw)
                rec(f"{tag}:{cls}|{r}|{sorted(ckw)}", L, a, b)
                rec(f"{tag}:{cls}|{r}|{sorted(ckw)}|w", L, a, b, sample_weight=w)
        if tag == "k3":
            rec("k3:ignore", FK.SparseCategoricalCrossentropy(from_logits=True, ignore_class=2),
                y, x)
    # torch
    try:
        import torch
    except ImportError:
        return
    import fastloss.torch as FT
    T = torch.from_numpy
    for dt in (np.float32, np.float64):
        X, P, Z, U, YO = (T(a.astype(dt)) for a in (x, p, z, u, yo))
        Y = T(y)
        W = T(rng.uniform(0.5, 2, 5).astype(dt))
        for r in ("mean", "sum", "none"):
            s = f"{dt.__name__}|{r}"
            rec("t:ce|" + s, FT.cross_entropy, X, Y, reduction=r)
            rec("t:cew|" + s, FT.cross_entropy, X, Y, weight=W, reduction=r, ignore_index=1,
                label_smoothing=0.1)
            rec("t:cep|" + s, FT.cross_entropy, X, P, reduction=r, label_smoothing=0.05)
            rec("t:ce3|" + s, FT.cross_entropy, X.reshape(8, 8, 5).permute(0, 2, 1),
                Y.reshape(8, 8), reduction=r)
            rec("t:nll|" + s, FT.nll_loss, torch.log(P), Y, weight=W, reduction=r)
            rec("t:bce|" + s, FT.binary_cross_entropy, U, Z, reduction=r)
            rec("t:bcew|" + s, FT.binary_cross_entropy, U, Z, weight=W, reduction=r)
            rec("t:bcel|" + s, FT.binary_cross_entropy_with_logits, X, Z, reduction=r,
                pos_weight=W)
            rec("t:kl|" + s, FT.kl_div, torch.log(P), U, reduction=r)
            rec("t:klt|" + s, FT.kl_div, torch.log(P), torch.log(U), reduction=r,
                log_target=True)
            rec("t:mse|" + s, FT.mse_loss, P, U, reduction=r)
        rec(f"t:bm|{dt.__name__}", FT.kl_div, torch.log(P), U, reduction="batchmean")
        for d in (0, 1, -1):
            rec(f"t:lse|{dt.__name__}|{d}", FT.logsumexp, X, d)
            rec(f"t:sm|{dt.__name__}|{d}", FT.softmax, X, dim=d)
            rec(f"t:lsm|{dt.__name__}|{d}", FT.log_softmax, X, dim=d)
        for cls, a, b, ckw in (("CrossEntropyLoss", X, Y, {}), ("NLLLoss", torch.log(P), Y, {}),
                               ("BCELoss", U, Z, {}), ("BCEWithLogitsLoss", X, Z, {}),
                               ("KLDivLoss", torch.log(P), U, {}), ("MSELoss", P, U, {})):
            rec(f"t:{cls}|{dt.__name__}", getattr(FT, cls)(**ckw), a, b)
    rec("t:err", FT.cross_entropy, T(x), T(np.full(64, 7)))


def snapshot():
    rec = Recorder()
    backends = [b for b in fastloss.available_backends()]
    import time
    for part in (lambda: core(rec, backends), lambda: custom(rec, backends),
                 lambda: accumulate(rec), lambda: evaluation(rec, tempfile.mkdtemp()),
                 lambda: dropins(rec)):
        t = time.perf_counter()
        part()
        print(f"{time.perf_counter() - t:.1f}s", len(rec.out), file=sys.stderr)
    if os.environ.get("BITS_SHOW_ERRORS"):
        for k, v in rec.errors.items():
            print("ERR", k, v, file=sys.stderr)
    print(f"{len(rec.errors)} calls raised", file=sys.stderr)
    return rec.out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--write")
    g.add_argument("--check")
    a = ap.parse_args(argv)
    got = snapshot()
    if a.write:
        with open(a.write, "w") as f:
            json.dump(got, f, indent=0, sort_keys=True)
        print(f"{len(got)} calls written to {a.write}")
        return 0
    with open(a.check) as f:
        want = json.load(f)
    bad = sorted(k for k in set(want) | set(got) if want.get(k) != got.get(k))
    for k in bad[:50]:
        print("DIFF", k, want.get(k), got.get(k))
    print(f"{len(got)} calls, {len(bad)} differ")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
