"""NumPy reference of the fused loss + gradient (+ diagonal Hessian) kernels.

Gradients are with respect to ``x`` (logits, or ``y_pred`` for KL / MSE) of the
reduced loss ``sum_i s_i * l_i`` with ``s_i = w_i * scale`` (``scale`` is 1 for
``reduction="sum"`` and ``1 / sum(w)`` for ``"mean"``). Computed in float64, rounded
once to x's dtype. The loss partials ``lp``/``wp`` are the forward kernels' own.
"""

import numpy as np

from .._blocks import CLIP_NONE
from . import _kernels as fwd
from ._kernels import _chunks, _lse_parts


def _probs(x64):
    shift, L = _lse_parts(x64)
    with np.errstate(all="ignore"):
        lse = shift + L
        p = np.exp((x64 - shift[:, None]) - L[:, None])
    return p, lse


def _rows_scale(sw, cw_of_row, ign, a, b, scale):
    s = np.full(b - a, float(scale))
    if sw.shape[0]:
        s = s * sw[a:b]
    if cw_of_row is not None:
        s = s * cw_of_row
    if ign is not None:
        s = np.where(ign, 0.0, s)
    return s


def _store(g, h, a, b, grad, hess, s):
    g[a:b] = (s[:, None] * grad).astype(g.dtype) if grad.ndim == 2 else (s * grad).astype(g.dtype)
    if h.shape[0]:
        h[a:b] = (s[:, None] * hess).astype(h.dtype) if hess.ndim == 2 else (s * hess).astype(h.dtype)


def sparse_ce_grad(x, y, sw, cw, ignore_index, has_ignore, label_smoothing, z_loss, scale,
                   block_rows, lp, wp, g, h, n_threads):
    n, C = x.shape
    fwd.sparse_ce(x, y, sw, cw, True, ignore_index, has_ignore, label_smoothing, z_loss,
                  CLIP_NONE, 0.0, False, block_rows, np.zeros(0, x.dtype), lp, wp, n_threads)
    ls = float(label_smoothing)
    for a, b in _chunks(n, C, block_rows):
        yc = y[a:b]
        ign = (yc == ignore_index) if has_ignore else None
        ys = np.where(ign, 0, yc) if has_ignore else yc
        p, lse = _probs(x[a:b].astype(np.float64))
        k = 1.0 + 2.0 * z_loss * lse
        grad = p * k[:, None] - ls / C
        grad[np.arange(b - a), ys] -= 1.0 - ls
        hess = p * (1.0 - p) * k[:, None] + 2.0 * z_loss * p * p
        s = _rows_scale(sw, cw[ys] if cw.shape[0] else None, ign, a, b, scale)
        _store(g, h, a, b, grad, hess, s)


def categorical_ce_grad(x, t, sw, cw, label_smoothing, scale, block_rows, lp, wp, g, h,
                        n_threads):
    n, C = x.shape
    fwd.categorical_ce(x, t, sw, cw, True, label_smoothing, CLIP_NONE, 0.0, False, block_rows,
                       np.zeros(0, x.dtype), lp, wp, n_threads)
    ls = float(label_smoothing)
    for a, b in _chunks(n, C, block_rows):
        coef = t[a:b].astype(np.float64)
        if ls:
            coef = (1.0 - ls) * coef + ls / C
        if cw.shape[0]:
            coef = coef * cw[None, :]
        A = coef.sum(axis=1)
        p, _ = _probs(x[a:b].astype(np.float64))
        grad = A[:, None] * p - coef
        hess = A[:, None] * p * (1.0 - p)
        _store(g, h, a, b, grad, hess, _rows_scale(sw, None, None, a, b, scale))


def bce_grad(x, z, sw, sw_div, pw, label_smoothing, scale, block_rows, lp, wp, g, h, n_threads):
    m = x.shape[0]
    fwd.bce(x, z, sw, sw_div, pw, True, label_smoothing, CLIP_NONE, 0.0, False, block_rows,
            np.zeros(0, x.dtype), lp, wp, n_threads)
    ls = float(label_smoothing)
    K = pw.shape[0]
    for a, b in _chunks(m, 1, block_rows):
        idx = np.arange(a, b)
        zc = z[a:b].astype(np.float64)
        if ls:
            zc = zc * (1.0 - ls) + 0.5 * ls
        p_w = pw[idx % K] if K else 1.0
        x64 = x[a:b].astype(np.float64)
        with np.errstate(over="ignore"):
            e = np.exp(-np.abs(x64))
            sig = np.where(x64 >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
        c = p_w * zc + (1.0 - zc)
        grad = c * sig - p_w * zc
        hess = c * sig * (1.0 - sig)
        s = np.full(b - a, float(scale))
        if sw.shape[0]:
            s = s * sw[idx // sw_div]
        _store(g, h, a, b, grad, hess, s)


def kl_grad(x, t, sw, log_input, log_target, scale, block_rows, lp, wp, g, h, n_threads):
    n, C = x.shape
    fwd.kl(x, t, sw, log_input, log_target, CLIP_NONE, 0.0, False, block_rows,
           np.zeros(0, x.dtype), lp, wp, n_threads)
    for a, b in _chunks(n, C, block_rows):
        tt = t[a:b].astype(np.float64)
        if log_target:
            tt = np.exp(tt)
        x64 = x[a:b].astype(np.float64)
        with np.errstate(all="ignore"):
            if log_input:
                grad = -tt
                hess = np.zeros_like(tt)
            else:
                grad = np.where(tt == 0, 0.0, -tt / x64)
                hess = np.where(tt == 0, 0.0, tt / (x64 * x64))
        _store(g, h, a, b, grad, hess, _rows_scale(sw, None, None, a, b, scale))


def mse_grad(x, t, ow, sw, scale, block_rows, lp, wp, g, h, n_threads):
    n, C = x.shape
    fwd.mse(x, t, ow, sw, False, block_rows, np.zeros(0, x.dtype), lp, wp, n_threads)
    wts = ow if ow.shape[0] else np.ones(C)
    S = wts.sum()
    for a, b in _chunks(n, C, block_rows):
        d = x[a:b].astype(np.float64) - t[a:b].astype(np.float64)
        grad = 2.0 * wts[None, :] * d / S
        hess = np.broadcast_to(2.0 * wts[None, :] / S, d.shape)
        _store(g, h, a, b, grad, hess, _rows_scale(sw, None, None, a, b, scale))
