"""NumPy reference kernels: the fallback backend and the test oracle.

Everything is computed in float64 with the stable formulas, rounded once to the
input dtype per sample, and processed in chunks of whole blocks so that no
temporary is larger than ``REFERENCE_TEMP_ELEMS`` elements whatever the input size.
"""

import numpy as np

from .._blocks import (CLIP_EPS, CLIP_KERAS2, CLIP_NONE, CLIP_TORCH, EW_KL_DIV, EW_REL_ENTR,
                       EW_XLOGY, block_sums)

AVAILABLE = True
WHY_UNAVAILABLE = ""
REFERENCE_TEMP_ELEMS = 1 << 20  # temporaries stay near 8 MB of float64


def _chunks(n_rows, n_cols, block_rows):
    rows = max(1, REFERENCE_TEMP_ELEMS // max(n_cols, 1) // block_rows) * block_rows
    for start in range(0, n_rows, rows):
        yield start, min(n_rows, start + rows)


def _lse_parts(x):
    """Row max ``m`` (0 where not finite) and ``L = log1p(sum_{j != argmax} exp(x_j - m))``.

    ``lse = m + L``; rows with a +inf give L = +inf, rows of all -inf give L = -inf,
    NaN propagates.
    """
    m = np.max(x, axis=1)
    shift = np.where(np.isfinite(m), m, 0.0)
    e = np.exp(x - shift[:, None])
    if x.shape[1]:
        am = np.argmax(x, axis=1)
        top = e[np.arange(x.shape[0]), am].copy()
        e[np.arange(x.shape[0]), am] = 0.0
        s = np.sum(e, axis=1)
        # finite max: top == 1 exactly, so lse - m = log1p(s)
        fin = np.isfinite(m)
        L = np.where(fin, np.log1p(s), np.log(s + top))
    else:
        L = np.full(x.shape[0], -np.inf)
    return shift, L


def _lse(x):
    shift, L = _lse_parts(x)
    return shift + L


def _clip_bounds(dtype, eps):
    lo = dtype.type(eps)
    hi = dtype.type(1) - lo
    return lo, hi


def _neglog(p, clip_mode, clip_eps):
    """-log(p) under a clip mode; ``p`` in the input dtype, result float64."""
    dt = p.dtype
    if clip_mode == CLIP_NONE:
        return -np.log(p.astype(np.float64))
    if clip_mode == CLIP_TORCH:
        return -np.maximum(np.log(p.astype(np.float64)), -100.0)
    lo, hi = _clip_bounds(dt, clip_eps)
    pc = np.clip(p, lo, hi)
    if clip_mode == CLIP_KERAS2:
        pc = pc + lo  # addition in the input dtype, as tf.keras 2.x does
    return -np.log(pc.astype(np.float64))


def _neglog1m(p, clip_mode, clip_eps):
    """-log(1 - p) under a clip mode; ``p`` in the input dtype, result float64."""
    dt = p.dtype
    if clip_mode == CLIP_NONE:
        return -np.log1p(-p.astype(np.float64))
    if clip_mode == CLIP_TORCH:
        return -np.maximum(np.log1p(-p.astype(np.float64)), -100.0)
    lo, hi = _clip_bounds(dt, clip_eps)
    q = dt.type(1) - np.clip(p, lo, hi)  # the frameworks form 1 - p in the input dtype
    if clip_mode == CLIP_KERAS2:
        q = q + lo
    return -np.log(q.astype(np.float64))


def _xmul(coef, term):
    """coef * term with 0 * anything = 0 (a zero coefficient removes the term)."""
    return np.where(coef == 0, 0.0, coef * np.where(coef == 0, 0.0, term))


def _finish(v64, w, dtype, nan_omit, start, stop, block_rows, out, lp, wp):
    """Round per-sample values, form contributions, write out / block partials."""
    v = v64.astype(dtype)
    if w is None:
        w = np.ones(v.shape[0])
    with np.errstate(invalid="ignore"):  # inf * 0 is masked just below
        c = np.where(w == 0, 0.0, v.astype(np.float64) * w)
    if out.shape[0]:
        out[start:stop] = c.astype(dtype)
    if lp.shape[0]:
        keep = ~np.isnan(v) if nan_omit else np.ones(v.shape[0], bool)
        b0 = start // block_rows
        pl = block_sums(np.where(keep, c, 0.0), block_rows)
        pw = block_sums(np.where(keep, w, 0.0), block_rows)
        lp[b0:b0 + pl.shape[0]] = pl
        wp[b0:b0 + pw.shape[0]] = pw


def _row_weights(sw, start, stop):
    return sw[start:stop].astype(np.float64) if sw.shape[0] else None


def logsumexp_rows(x, out, n_threads):
    for a, b in _chunks(x.shape[0], x.shape[1], 1):
        with np.errstate(all="ignore"):
            out[a:b] = _lse(x[a:b].astype(np.float64))


def softmax_rows(x, out, log, n_threads):
    for a, b in _chunks(x.shape[0], x.shape[1], 1):
        xc = x[a:b].astype(np.float64)
        with np.errstate(all="ignore"):
            shift, L = _lse_parts(xc)
            d = xc - shift[:, None]
            res = (d - L[:, None]) if log else np.exp(d - L[:, None])
            if not log:  # a row with +inf has no finite softmax: all NaN, like SciPy
                res[np.isposinf(np.max(xc, axis=1))] = np.nan
            out[a:b] = res


def sparse_ce(x, y, sw, cw, from_logits, ignore_index, has_ignore, label_smoothing,
              z_loss, clip_mode, clip_eps, nan_omit, block_rows, out, lp, wp, n_threads):
    n, C = x.shape
    ls = float(label_smoothing)
    for a, b in _chunks(n, C, block_rows):
        xc, yc = x[a:b], y[a:b]
        r = np.arange(b - a)
        ign = (yc == ignore_index) if has_ignore else np.zeros(b - a, bool)
        ys = np.where(ign, 0, yc)
        with np.errstate(all="ignore"):
            if from_logits:
                x64 = xc.astype(np.float64)
                shift, L = _lse_parts(x64)
                v = (shift - x64[r, ys]) + L
                if ls:
                    v = (1.0 - ls) * v + ls * ((shift - x64.mean(axis=1)) + L)
                if z_loss:
                    lse = shift + L
                    v = v + z_loss * lse * lse
            else:
                v = _neglog(xc[r, ys], clip_mode, clip_eps)
                if ls:
                    v = (1.0 - ls) * v + ls * _neglog(xc, clip_mode, clip_eps).mean(axis=1)
        w = _row_weights(sw, a, b)
        if cw.shape[0]:
            w = (np.ones(b - a) if w is None else w) * cw[ys]
        if has_ignore:
            w = (np.ones(b - a) if w is None else w) * np.where(ign, 0.0, 1.0)
        _finish(v, w, x.dtype, nan_omit, a, b, block_rows, out, lp, wp)


def categorical_ce(x, t, sw, cw, from_logits, label_smoothing, clip_mode, clip_eps,
                   nan_omit, block_rows, out, lp, wp, n_threads):
    n, C = x.shape
    ls = float(label_smoothing)
    for a, b in _chunks(n, C, block_rows):
        tc = t[a:b].astype(np.float64)
        if ls:
            tc = (1.0 - ls) * tc + ls / C
        if cw.shape[0]:
            tc = tc * cw[None, :]
        with np.errstate(all="ignore"):
            if from_logits:
                x64 = x[a:b].astype(np.float64)
                shift, L = _lse_parts(x64)
                nll = (shift[:, None] - x64) + L[:, None]
            else:
                nll = _neglog(x[a:b], clip_mode, clip_eps)
            v = _xmul(tc, nll).sum(axis=1)
        _finish(v, _row_weights(sw, a, b), x.dtype, nan_omit, a, b, block_rows, out, lp, wp)


def bce(x, z, sw, sw_div, pw, from_logits, label_smoothing, clip_mode, clip_eps,
        nan_omit, block_rows, out, lp, wp, n_threads):
    m = x.shape[0]
    ls = float(label_smoothing)
    K = pw.shape[0]
    for a, b in _chunks(m, 1, block_rows):
        zc = z[a:b].astype(np.float64)
        if ls:
            zc = zc * (1.0 - ls) + 0.5 * ls
        idx = np.arange(a, b)
        p_w = pw[idx % K] if K else 1.0
        with np.errstate(all="ignore"):
            if from_logits:
                x64 = x[a:b].astype(np.float64)
                g = np.log1p(np.exp(-np.abs(x64)))
                c = p_w * zc + (1.0 - zc)  # = 1 + (pw-1)*z without cancellation
                # each linear term is 0 when its coefficient is (x = +-inf, z' = 1 / 0)
                v = np.where(x64 >= 0, _xmul(1.0 - zc, x64), _xmul(-p_w * zc, x64)) + c * g
                v = np.where(np.isnan(x64), np.nan, v)
            else:
                xc = x[a:b]
                v = _xmul(p_w * zc, _neglog(xc, clip_mode, clip_eps)) + _xmul(
                    1.0 - zc, _neglog1m(xc, clip_mode, clip_eps))
                v = np.where(np.isnan(xc), np.nan, v)
        w = sw[idx // sw_div].astype(np.float64) if sw.shape[0] else None
        _finish(v, w, x.dtype, nan_omit, a, b, block_rows, out, lp, wp)


def kl(x, t, sw, log_input, log_target, clip_mode, clip_eps, nan_omit, block_rows,
       out, lp, wp, n_threads):
    n, C = x.shape
    for a, b in _chunks(n, C, block_rows):
        xc, tc = x[a:b], t[a:b]
        with np.errstate(all="ignore"):
            if clip_mode == CLIP_EPS:
                lo = x.dtype.type(clip_eps)
                xc = np.clip(xc, lo, x.dtype.type(1))
                tc = np.clip(tc, t.dtype.type(clip_eps), t.dtype.type(1))
            lp_ = xc.astype(np.float64) if log_input else np.log(xc.astype(np.float64))
            if log_target:
                lt = tc.astype(np.float64)
                tt = np.exp(lt)
            else:
                tt = tc.astype(np.float64)
                lt = np.log(tt)
            v = _xmul(tt, lt - lp_).sum(axis=1)
        _finish(v, _row_weights(sw, a, b), x.dtype, nan_omit, a, b, block_rows, out, lp, wp)


def mse(x, t, ow, sw, nan_omit, block_rows, out, lp, wp, n_threads):
    n, C = x.shape
    for a, b in _chunks(n, C, block_rows):
        d = x[a:b].astype(np.float64) - t[a:b].astype(np.float64)
        with np.errstate(all="ignore"):
            if ow.shape[0]:
                v = (d * d * ow[None, :]).sum(axis=1) / ow.sum()
            else:
                v = (d * d).mean(axis=1)
        _finish(v, _row_weights(sw, a, b), x.dtype, nan_omit, a, b, block_rows, out, lp, wp)


def first_outside_unit_interval(x):
    step = REFERENCE_TEMP_ELEMS
    for a in range(0, x.shape[0], step):
        xc = x[a:a + step]
        bad = (xc < 0) | (xc > 1)
        if bad.any():
            return a + int(np.argmax(bad))
    return -1


def argmax_rows(x, out, n_threads):
    for a, b in _chunks(x.shape[0], x.shape[1], 1):
        out[a:b] = np.argmax(x[a:b], axis=1)


def elementwise(op, x, y, out, n_threads):
    step = REFERENCE_TEMP_ELEMS
    for a in range(0, x.shape[0], step):
        x64 = x[a:a + step].astype(np.float64)
        y64 = y[a:a + step].astype(np.float64)
        with np.errstate(all="ignore"):
            if op == EW_XLOGY:
                r = np.where((x64 == 0) & ~np.isnan(y64), 0.0, x64 * np.log(y64))
            else:
                pos = (x64 > 0) & (y64 > 0)
                zero = (x64 == 0) & (y64 >= 0)
                if op == EW_REL_ENTR:
                    r = np.where(pos, _rel_entr_pos(x64, y64), np.where(zero, 0.0, np.inf))
                elif op == EW_KL_DIV:
                    r = np.where(pos, x64 * np.log(x64 / y64) - x64 + y64,
                                 np.where(zero, y64, np.inf))
                else:
                    raise ValueError(f"unknown element-wise op {op}")
                r = np.where(np.isnan(x64) | np.isnan(y64), np.nan, r)
        out[a:a + step] = r


def _rel_entr_pos(x, y):
    """x*log(x/y) for x, y > 0 as SciPy >= 1.15 computes it: log1p((x-y)/y) when x/y is
    in (0.5, 2), log(x/y) when x/y is a normal number, else log(x) - log(y)."""
    r = x / y
    near = (r > 0.5) & (r < 2.0)
    normal = (r > np.finfo(np.float64).tiny) & (r < np.inf)
    return np.where(near, x * np.log1p((x - y) / y),
                    np.where(normal, x * np.log(r), x * (np.log(x) - np.log(y))))
