"""The array zoo shared by the kernel tests (bottleneck's ``tests/util.py`` is the model).

Adversarial inputs for the kernel contract (``fastloss.kernels``): denormals, signed
zeros, +-inf, NaN, +-88.7 (where float32 exp overflows / underflows), huge logits,
constant rows and ties, one-element rows, and the row widths where vector code changes
path (C = 1, 2, 3, 7, 8, 9 around the 8- and 16-lane widths, 1000, and 50257, a
vocabulary-sized row).

:func:`contract_cases` turns them into calls of every contract function with every
option family, runnable on any backend module, so that two backends (or two SIMD builds of
one backend) can be compared output by output, bit by bit.
"""

import numpy as np

from fastloss.kernels import (CLIP_EPS, CLIP_KERAS2, CLIP_NONE, CLIP_TORCH, CONTRACT, EW_KL_DIV,
                              EW_REL_ENTR, EW_XLOGY, n_blocks)

ROW_WIDTHS = (1, 2, 3, 7, 8, 9, 1000, 50257)
DTYPES = (np.float32, np.float64)
E = np.zeros(0)  # "absent" in the contract


def special_values(dtype):
    """Values where exp/log/log1p and their vector forms are most likely to part ways."""
    f = np.finfo(dtype)
    return np.array([0.0, -0.0, 1.0, -1.0, f.tiny, -f.tiny, f.smallest_subnormal,
                     -f.smallest_subnormal, 88.7, -88.7, 88.73, -103.97, 709.8, -745.2,
                     f.max, -f.max, np.inf, -np.inf, np.nan, -np.nan, 1e-30, 30.0, -30.0,
                     0.5, 16.0, -16.0], dtype=dtype)


def logit_rows(rng, n, C, dtype):
    """``n`` ordinary rows, then rows salted with the special values and degenerate rows."""
    x = (rng.standard_normal((n, C)) * 4).astype(dtype)
    sv = special_values(dtype)
    rows = [x]
    salted = (rng.standard_normal((len(sv), C)) * 3).astype(dtype)
    salted[np.arange(len(sv)), rng.integers(0, C, len(sv))] = sv  # one special value a row
    rows.append(salted)
    big = np.full((1, C), 1e30 if dtype == np.float32 else 1e300, dtype)  # huge, all tied
    rows += [big, -big, np.zeros((1, C), dtype), np.full((1, C), -np.inf, dtype),
             np.full((1, C), np.inf, dtype), np.full((1, C), np.nan, dtype)]
    near = np.linspace(-88.7, 88.7, C, dtype=dtype)[None, :]
    rows.append(near)
    if C > 1:
        mixed = np.full((1, C), -np.inf, dtype)
        mixed[0, C // 2] = 3.0                      # one finite entry among -inf
        rows.append(mixed)
        ties = np.zeros((1, C), dtype)
        ties[0, ::2] = 5.0                           # many entries equal to the max
        rows.append(ties)
    return np.ascontiguousarray(np.concatenate(rows))


def probability_rows(rng, x):
    """Probabilities of the shape of ``x``: softmax rows with 0, 1, denormals and NaN mixed in."""
    dtype = x.dtype.type
    n, C = x.shape
    p = rng.random((n, C))
    p /= p.sum(axis=1, keepdims=True)
    p = p.astype(dtype)
    f = np.finfo(dtype)
    # in the domain and out of it (kernels assume valid input, but must not differ by build)
    edges = np.array([0.0, 1.0, f.smallest_subnormal, f.tiny, 1 - f.eps, np.nan, 0.5, 1e-7,
                      -np.nan, -0.0, 1.5, -0.5, np.inf, -np.inf], dtype=dtype)
    k = min(n, len(edges))
    p[np.arange(k), rng.integers(0, C, k)] = edges[:k]
    return np.ascontiguousarray(p)


def soft_targets(rng, shape, dtype):
    """Soft targets: mostly one-hot rows, some smooth rows, exact zeros everywhere else."""
    n, C = shape
    t = np.zeros(shape, dtype)
    t[np.arange(n), rng.integers(0, C, n)] = 1
    smooth = rng.random((n // 2, C)).astype(dtype)
    t[: n // 2] = smooth / smooth.sum(axis=1, keepdims=True)
    t[-1, 0], t[-2, 0] = np.nan, -np.nan   # NaN targets of both signs
    t[-3, :] = -0.0
    return t


def flat_values(rng, dtype, n=300):
    """1-D logits for BCE and the element-wise functions, special values included."""
    sv = special_values(dtype)
    x = (rng.standard_normal(n) * 10).astype(dtype)
    x[: len(sv)] = sv
    return x


def _hessian_out(x, wanted):
    """The Hessian output: x-shaped, or zero-length (not requested) of x's rank."""
    return np.zeros_like(x) if wanted else np.zeros((0,) * x.ndim, x.dtype)


def _outs(dtype, n, nblocks, want_out=True):
    out = np.zeros(n if want_out else 0, dtype)
    return out, np.zeros(nblocks), np.zeros(nblocks)


def contract_cases(dtype, C, seed=0):
    """[(case id, function name, run(module, n_threads) -> tuple of output arrays)].

    Every function of the contract appears for every row width (the element-wise and flat
    ones once per width, on flat data of their own)."""
    rng = np.random.default_rng([seed, C, np.dtype(dtype).itemsize])
    n_plain = 3 if C > 1000 else 9
    x = logit_rows(rng, n_plain, C, dtype)
    N = x.shape[0]
    p = probability_rows(rng, x)
    t = soft_targets(rng, x.shape, dtype)
    y = rng.integers(0, C, N).astype(np.int64)
    y[::5] = -100                                   # ignored rows (with has_ignore)
    y_valid = np.where(y < 0, 0, y)
    sw = rng.random(N) * 2
    sw[1] = 0.0                                     # a zero weight removes the sample
    cw = rng.random(C) + 0.5
    ow = rng.random(C) + 0.1
    br = 5
    nb = -(-N // br)
    cases = []

    def add(case, name, fn):
        cases.append((f"{name}[{case}]", name, fn))

    def rows_out(fn_name, *extra):
        def run(m, nt):
            out = np.zeros(N, dtype)
            getattr(m, fn_name)(x, out, *extra, nt)
            return (out,)
        return run

    add("rows", "logsumexp_rows", rows_out("logsumexp_rows"))
    for log in (False, True):
        def run(m, nt, log=log):
            out = np.zeros_like(x)
            m.softmax_rows(x, out, log, nt)
            return (out,)
        add(f"log={log}", "softmax_rows", run)

    def run_argmax(m, nt):
        out = np.zeros(N, np.int64)
        m.argmax_rows(x, out, nt)
        return (out,)
    add("rows", "argmax_rows", run_argmax)

    # sparse_ce: logits with every option family, probabilities with every clip mode
    for logits, ls, zl, ign, clip, omit in [(True, 0.0, 0.0, False, 0, False),
                                            (True, 0.1, 1e-3, True, 0, True),
                                            (False, 0.0, 0.0, False, 0, False),
                                            (False, 0.2, 0.0, True, 1, True),
                                            (False, 0.0, 0.0, False, 2, False),
                                            (False, 0.0, 0.0, False, 3, False)]:
        def run(m, nt, logits=logits, ls=ls, zl=zl, ign=ign, clip=clip, omit=omit):
            out, lp, wp = _outs(dtype, N, nb)
            m.sparse_ce(x if logits else p, y if ign else y_valid, sw, cw, logits, -100, ign,
                        ls, zl, clip, 1e-7, omit, br, out, lp, wp, nt)
            return out, lp, wp
        add(f"logits={logits},ls={ls},z={zl},ign={ign},clip={clip}", "sparse_ce", run)

    for ls, zl, hess in [(0.0, 0.0, True), (0.1, 1e-3, True), (0.1, 1e-3, False)]:
        def run(m, nt, ls=ls, zl=zl, hess=hess):
            lp, wp = np.zeros(nb), np.zeros(nb)
            g, h = np.zeros_like(x), _hessian_out(x, hess)
            m.sparse_ce_grad(x, y, sw, cw, -100, True, ls, zl, 0.5, br, lp, wp, g, h, nt)
            return lp, wp, g, h
        add(f"ls={ls},z={zl},hessian={hess}", "sparse_ce_grad", run)

    for logits, ls, clip, omit in [(True, 0.0, 0, False), (True, 0.1, 0, True),
                                   (False, 0.0, 0, False), (False, 0.1, 1, True),
                                   (False, 0.0, 2, False), (False, 0.0, 3, False)]:
        def run(m, nt, logits=logits, ls=ls, clip=clip, omit=omit):
            out, lp, wp = _outs(dtype, N, nb)
            m.categorical_ce(x if logits else p, t, sw, cw, logits, ls, clip, 1e-7, omit, br,
                             out, lp, wp, nt)
            return out, lp, wp
        add(f"logits={logits},ls={ls},clip={clip}", "categorical_ce", run)

    for hess in (True, False):
        def run_cat_grad(m, nt, hess=hess):
            lp, wp = np.zeros(nb), np.zeros(nb)
            g, h = np.zeros_like(x), _hessian_out(x, hess)
            m.categorical_ce_grad(x, t, sw, cw, 0.1, 0.5, br, lp, wp, g, h, nt)
            return lp, wp, g, h
        add(f"ls=0.1,hessian={hess}", "categorical_ce_grad", run_cat_grad)

    for log_input, log_target, clip, omit in [(False, False, 0, False), (False, False, 1, True),
                                              (True, False, 0, False), (True, True, 0, False)]:
        def run(m, nt, li=log_input, lt=log_target, clip=clip, omit=omit):
            out, lp, wp = _outs(dtype, N, nb)
            m.kl(x if li else p, x if lt else t, sw, li, lt, clip, 1e-7, omit, br, out, lp, wp, nt)
            return out, lp, wp
        add(f"log_input={log_input},log_target={log_target},clip={clip}", "kl", run)

        def run_g(m, nt, li=log_input, lt=log_target):
            lp, wp = np.zeros(nb), np.zeros(nb)
            g, h = np.zeros_like(x), np.zeros_like(x)
            m.kl_grad(x if li else p, x if lt else t, sw, li, lt, 0.5, br, lp, wp, g, h, nt)
            return lp, wp, g, h
        if clip == 0:
            add(f"log_input={log_input},log_target={log_target}", "kl_grad", run_g)

    for use_ow, omit in [(False, False), (True, True)]:
        def run(m, nt, use_ow=use_ow, omit=omit):
            out, lp, wp = _outs(dtype, N, nb)
            m.mse(x, p, ow if use_ow else E, sw, omit, br, out, lp, wp, nt)
            return out, lp, wp
        add(f"ow={use_ow}", "mse", run)

    def run_mse_grad(m, nt):
        lp, wp = np.zeros(nb), np.zeros(nb)
        g, h = np.zeros_like(x), np.zeros_like(x)
        m.mse_grad(x, p, ow, sw, 0.5, br, lp, wp, g, h, nt)
        return lp, wp, g, h
    add("ow", "mse_grad", run_mse_grad)

    # flat functions: BCE, its gradient, the element-wise ops, the unit-interval check
    xf = flat_values(rng, dtype)
    M = xf.size
    zf = rng.random(M).astype(dtype)
    zf[::3] = np.round(zf[::3])
    pf = np.clip(np.abs(xf) / 40, 0, 1).astype(dtype)
    pf[:8] = np.array([0, 1, 0, 1, np.finfo(dtype).smallest_subnormal, 1 - np.finfo(dtype).eps,
                       np.nan, 0.5], dtype)
    swf = rng.random(M // 3) + 0.5
    pw = rng.random(3) * 2 + 0.1
    nbf = -(-M // 64)
    for logits, ls, clip, use_pw, omit in [(True, 0.0, 0, False, False), (True, 0.1, 0, True, True),
                                           (False, 0.0, 0, False, False), (False, 0.1, 1, True, True),
                                           (False, 0.0, 2, False, False), (False, 0.0, 3, True, False)]:
        def run(m, nt, logits=logits, ls=ls, clip=clip, use_pw=use_pw, omit=omit):
            out, lp, wp = _outs(dtype, M, nbf)
            m.bce(xf if logits else pf, zf, swf, 3, pw if use_pw else E, logits, ls, clip, 1e-7,
                  omit, 64, out, lp, wp, nt)
            return out, lp, wp
        add(f"logits={logits},ls={ls},clip={clip},pw={use_pw}", "bce", run)

    for hess in (True, False):
        def run_bce_grad(m, nt, hess=hess):
            lp, wp = np.zeros(nbf), np.zeros(nbf)
            g, h = np.zeros_like(xf), _hessian_out(xf, hess)
            m.bce_grad(xf, zf, swf, 3, pw, 0.1, 0.5, 64, lp, wp, g, h, nt)
            return lp, wp, g, h
        add(f"pw,hessian={hess}", "bce_grad", run_bce_grad)

    yf = np.abs(flat_values(rng, dtype))[::-1].copy()
    xa = np.concatenate([np.abs(xf[: M // 2]), xf[M // 2:]]).astype(dtype)
    for op, opname in [(EW_XLOGY, "xlogy"), (EW_REL_ENTR, "rel_entr"), (EW_KL_DIV, "kl_div")]:
        def run(m, nt, op=op):
            out = np.zeros(M, dtype)
            m.elementwise(op, xa, yf, out, nt)
            return (out,)
        add(opname, "elementwise", run)

    def run_first_outside(m, nt):
        # a compiled module takes n_threads; the package-level and reference ones do not
        f = m.first_outside_unit_interval
        call = (lambda a: f(a, nt)) if hasattr(m, "build_info") else f
        return (np.array([call(pf), call(xf)]),)
    add("flat", "first_outside_unit_interval", run_first_outside)

    assert {name for _, name, _ in cases} == set(CONTRACT)
    return cases


def bits(a):
    """The bytes of an array, so that NaN payloads and signs and -0.0 compare too."""
    a = np.ascontiguousarray(a)
    return a.dtype.str, a.shape, a.view(np.uint8).tobytes()


def first_bit_difference(a, b):
    """A readable description of where two equal-shaped arrays first differ bitwise."""
    a, b = np.ascontiguousarray(a).ravel(), np.ascontiguousarray(b).ravel()
    ua = a.view(f"u{a.dtype.itemsize}") if a.dtype.kind == "f" else a
    ub = b.view(f"u{b.dtype.itemsize}") if b.dtype.kind == "f" else b
    idx = np.flatnonzero(ua != ub)
    if idx.size == 0:
        return "no difference"
    i = idx[0]
    return f"{idx.size} of {a.size} differ; first at flat index {i}: {a[i]!r} vs {b[i]!r}"


# --------------------------------------------------------------------------- the backend tests' zoo
#
# Used by the per-backend tests (test_cython_backend.py, test_numba_backend.py): one
# generator per kind of input, with the adversarial values of both former copies.

CLIP_MODES = (CLIP_NONE, CLIP_EPS, CLIP_KERAS2, CLIP_TORCH)
CLIPS = ((CLIP_NONE, 0.0), (CLIP_EPS, 1e-7), (CLIP_KERAS2, 1e-7), (CLIP_TORCH, 0.0))
LOGIT_SPECIALS = (1e4, -1e4, 88.7, -88.7, -104.0, 1e-40, -1e-40, -1e-42, 0.0, -0.0, -np.inf,
                  np.inf, np.nan, 3e38, -3e38)


def logits_zoo(rng, n, C, dtype, adversarial=True):
    """(n, C) logits of mixed scales per row; when adversarial (and n allows) special rows
    first, then one special value per row, then specials scattered over the rest:

    rows 0-11: all -inf; all tied (7.0); -1e4 with one 1e4 (huge spread); alternating 88.7
    / -104; denormals; a lone +inf; all -0.0; -inf every third entry; ties below a unique
    max; all -104; a loss of ~50 on the last class; all 1e4. Rows 12-26: one special
    value each (LOGIT_SPECIALS) at column r % C."""
    x = rng.standard_normal((n, C)) * rng.choice([0.01, 1.0, 3.0, 5.0, 40.0], size=(n, 1))
    if not adversarial:
        return np.ascontiguousarray(x.astype(dtype))
    j = np.arange(C)
    rows = [np.full(C, -np.inf), np.full(C, 7.0), np.where(j == C - 1, 1e4, -1e4),
            np.where(j % 2 == 0, 88.7, -104.0), np.full(C, 1e-40),
            np.where(j == 0, np.inf, x[min(5, n - 1)]), np.full(C, -0.0),
            np.where(j % 3 == 0, -np.inf, 2.0), np.where(j == C // 2, 7.5, 7.0),
            np.full(C, -104.0), np.where(j == C - 1, -30.0, 20.0), np.full(C, 1e4)]
    for r, row in enumerate(rows[:n]):
        x[r] = row
    for k, v in enumerate(LOGIT_SPECIALS):
        r = len(rows) + k
        if r < n:
            x[r, r % C] = v
    rest = len(rows) + len(LOGIT_SPECIALS)
    if n > rest:
        tail = x[rest:].reshape(-1)
        k = max(1, tail.size // 25)
        tail[rng.integers(0, tail.size, k)] = rng.choice(LOGIT_SPECIALS, size=k)
    return np.ascontiguousarray(x.astype(dtype))


PROB_SPECIALS = (0.0, 1.0, 1e-45, 1e-40, 1e-30, 1e-8, 1e-7, 1 - 1e-7, 1 - 1e-12, 0.5, np.nan,
                 1e-300)


def probs_zoo(rng, shape, dtype, adversarial=True, normalized=False):
    """Probabilities of ``shape``. ``normalized`` (2-D): rows of a softmax, with one
    special value in each of rows 2-13 and an all-0 and an all-1 row; else uniform in
    [0, 1) with the special values (0, 1, denormals, 1 -+ eps, NaN) scattered over an
    eighth of the entries."""
    shape = (shape,) if np.isscalar(shape) else tuple(shape)
    if normalized:
        n, C = shape
        e = rng.random(shape) + 1e-3
        p = e / e.sum(axis=1, keepdims=True)
        if adversarial:
            for k, v in enumerate(PROB_SPECIALS):
                if 2 + k < n:
                    p[2 + k, k % C] = v
            if n > 15:
                p[14] = 0.0
                p[15] = 1.0
        return np.ascontiguousarray(p.astype(dtype))
    p = rng.random(shape)
    if adversarial:
        f = p.reshape(-1)
        k = max(1, f.size // 8)
        f[rng.integers(0, f.size, k)] = rng.choice(PROB_SPECIALS, size=k)
    return np.ascontiguousarray(p.astype(dtype))


def targets(rng, shape, dtype, zeros=True, normalized=False):
    """Soft targets of ``shape``. ``normalized`` (2-D): Dirichlet rows summing to 1, and
    with ``zeros`` a zero first entry every third row and one-hot rows; else uniform in
    [0, 1) with 30% exact zeros. Zero targets must add exactly 0."""
    shape = tuple(shape)
    if normalized:
        n, C = shape
        t = rng.dirichlet(np.ones(C), n)
        if zeros and C > 1:
            t[::3, 0] = 0.0
            t[1::4] = 0.0
            t[1::4, -1] = 1.0
        return t.astype(dtype)
    t = rng.random(shape)
    if zeros:
        t[rng.random(shape) < 0.3] = 0.0
    return np.ascontiguousarray(t.astype(dtype))


def labels(rng, n, C, ignore=None):
    """int64 class indices in [0, C); every fifth row ``ignore`` when given."""
    y = rng.integers(0, C, n).astype(np.int64)
    if ignore is not None:
        y[::5] = ignore
    return y


def ulp_distance(a, b):
    """Distance in units in the last place (0 for NaN vs NaN, 2**62 for NaN vs a number)."""
    a = np.asarray(a)
    b = np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape, (a.dtype, b.dtype, a.shape, b.shape)
    it, big = (np.int32, 0x7FFFFFFF) if a.dtype == np.float32 else (np.int64, 0x7FFFFFFFFFFFFFFF)
    ia = a.view(it).astype(np.int64)
    ib = b.view(it).astype(np.int64)
    ia = np.where(ia < 0, -(ia & big), ia)  # monotonic integer image of the float order
    ib = np.where(ib < 0, -(ib & big), ib)
    na, nb_ = np.isnan(a), np.isnan(b)
    return np.where(na & nb_, 0, np.where(na | nb_, 1 << 62, np.abs(ia - ib)))


def same_bits(a, b):
    """Bitwise equality, except that any NaN equals any NaN."""
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    na, nb_ = np.isnan(a), np.isnan(b)
    it = np.int32 if a.dtype == np.float32 else np.int64
    return bool(np.array_equal(na, nb_) and np.array_equal(a[~na].view(it), b[~nb_].view(it)))


def run_forward(mod, fn, args, n_rows, block_rows, dtype, n_threads=2, want_out=True,
                want_partials=True):
    """Call forward kernel ``fn`` of backend ``mod`` with fresh outputs (filled with a
    sentinel, so that an entry the kernel fails to write shows): (out, lp, wp)."""
    nb = n_blocks(n_rows, block_rows)
    out = np.full(n_rows, 12345.0, dtype) if want_out else np.zeros(0, dtype)
    lp = np.full(nb, np.nan) if want_partials else E
    wp = np.full(nb, np.nan) if want_partials else E
    with np.errstate(all="ignore"):
        getattr(mod, fn)(*args, block_rows, out, lp, wp, n_threads)
    return out, lp, wp


# --------------------------------------------------------------------------- half precision
# float16 / bfloat16 predictions (issue #18): every loss and option family of the registry,
# with half-precision special values, in layouts that make run_chunks chunk them.

HALF_SPECIALS = (0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, 88.7, -88.7, -104.0, 1e4, -1e4,
                 6.0e4, -6.0e4, 6.0e-8, -6.0e-8, 1e-5, 1e-40, 3e38, -3e38)


def half_dtypes():
    """float16, and ml_dtypes' bfloat16 when ml_dtypes is installed."""
    try:
        import ml_dtypes
    except ImportError:
        return (np.dtype(np.float16),)
    return (np.dtype(np.float16), np.dtype(ml_dtypes.bfloat16))


def half_specials(dtype):
    """HALF_SPECIALS rounded to ``dtype`` (float16 overflows 3e38 to inf, flushes 1e-40 to 0)."""
    with np.errstate(over="ignore", under="ignore"):
        return np.array(HALF_SPECIALS).astype(dtype)


def half_loss_cases(dtype, n=203, C=37, seed=0):
    """``[(case id, LossSpec, y_true, y_pred, options)]``: every loss of the registry with
    every option family of its ``variants``, ``y_pred`` (and dense targets) in ``dtype``;
    logits get one special value in each of their first rows."""
    from fastloss.losses.registry import LOSSES

    out = []
    for name, spec in LOSSES.items():
        for k, variant in enumerate(spec.variants):
            rng = np.random.default_rng([seed, k, len(name)])
            yt, yp, kw = spec.make(rng, n, C, dtype, variant)
            if spec.reads_probabilities(kw):
                pass  # probabilities keep their [0, 1] values
            elif name != "kl_divergence" or kw.get("log_input"):
                sv = half_specials(dtype)
                sv = sv[~np.isnan(sv.astype(np.float32))] if kw.get("nan_policy") else sv
                yp[np.arange(len(sv)), np.arange(len(sv)) % C] = sv
            out.append((f"{name}[{k}]", spec, yt, yp, kw))
    return out


def half_layouts(a):
    """``a`` (2-D) and the same values C-contiguous, Fortran-ordered and strided (views)."""
    f = np.asfortranarray(a)
    s = np.repeat(a, 2, axis=0)[::2]
    assert np.array_equal(f.view(np.uint16), a.view(np.uint16))
    return {"C": a, "F": f, "strided": s}


def cython_variants():
    """Every SIMD build (module) of the Cython backend that this CPU can run and that
    belongs to the build in use (the dispatch build compiles the kernels for several
    SIMD levels; each must be right on its own); [] without the backend."""
    import importlib

    cy = importlib.import_module("fastloss.kernels.cython")
    if not cy.AVAILABLE:
        return []
    core, mods = cy._core, []
    for name, need in (("_core", 0), ("_core_avx2", 3), ("_core_avx512", 4)):
        try:
            mod = importlib.import_module(f"fastloss.kernels.cython.{name}")
        except ImportError:
            continue
        if (mod.build_info()["build_id"] == core.build_info()["build_id"]
                and core.cpu_level() >= need):
            mods.append(mod)
    return mods
