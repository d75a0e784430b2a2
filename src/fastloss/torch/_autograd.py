"""Autograd for ``fastloss.torch``: the losses as ``torch.autograd.Function`` objects.

Imported (with torch) only when an argument requires grad; other calls keep the plain
``_<name>_nograd`` path. The input's gradient comes from fastloss's fused loss+gradient
kernels (those of ``fastloss.sparse_categorical_cross_entropy_grad``,
``categorical_cross_entropy_grad``, ``binary_cross_entropy_grad``, ``kl_divergence_grad``,
``mean_squared_error_grad``, built here through ``fastloss.losses._calls``):

* reduction ``"mean"``/``"sum"``: for ``cross_entropy`` and
  ``binary_cross_entropy_with_logits`` the forward pass runs the fused kernel once, returns
  its loss and saves the gradient of the reduced loss (backward multiplies it by the
  incoming scalar); the other losses run it in backward. A half input's value is PyTorch's
  half-precision steps (the no-grad path), its gradient still the fused kernel's;
* ``"none"``: backward runs the kernel with the incoming gradient as per-row weights.

``nll_loss`` and ``binary_cross_entropy`` on probabilities have no gradient kernel: their
input gradient is NumPy (float64, rounded once). Gradients with respect to a target are
PyTorch's own (its functional differentiated on the detached input: a rare need, no
kernel). ``softmax``/``log_softmax``/``logsumexp`` differentiate with torch ops.

A ``weight`` or ``pos_weight`` requiring grad is an input of the Function too. Every
weighted loss is linear in its weight per output element, ``v_i = sum_k A_ik w_k``
(``A`` from the unweighted per-sample losses, or ``t * softplus(-x)`` for ``pos_weight``),
so ``d sum / dw_k = sum_i A_ik``; PyTorch's weighted mean ``N / D`` with
``D = sum_i w_{y_i}`` (or ``sum(weight)`` for ``mse_loss``) gives
``(sum_i A_ik - out * n_k) / D``, ``n_k`` counting the terms weighed by ``w_k``
(``_weight_grad``).
"""

import warnings

import numpy as np
import torch
import torch.nn.functional as TF

import fastloss.torch as F
from fastloss._half import compute_dtype, is_half
from fastloss.kernels._blocks import combine, n_blocks
from fastloss.losses._run import run_chunks
from fastloss.losses._calls import (
    EMPTY,
    bce_call,
    categorical_ce_call,
    kl_call,
    mse_call,
    sparse_ce_call,
)


def _kernel_grad(call, shape, scale):
    """One pass of a KernelCall's fused kernel: (float64 weighted loss sum, gradient).

    The gradient is in the computing dtype (float32 for half input); half-precision rows
    are widened chunk by chunk (one call for C-contiguous float rows)."""
    nb = n_blocks(call.n_rows, call.block_rows)
    lp, wp = np.zeros(nb), np.zeros(nb)
    g = np.empty(shape, call.dtype) if call.n_rows else np.zeros(shape, call.dtype)

    def run(a, b, g_, h_, lp_, wp_):
        call.gradient(a, b, g_, h_, lp_, wp_, float(scale))

    run_chunks(run, call.n_rows, call.row_width, call.block_rows, call.contiguous,
               [g, np.zeros((0,) * len(shape), call.dtype)], lp, wp, call.half)
    return combine(lp), g


def _np(a):
    """A tensor's values as NumPy (half precision as float32); other values as arrays."""
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu()
        return (a.float() if a.dtype in (torch.float16, torch.bfloat16) else a).numpy()
    return None if a is None else np.asarray(a)


def _like(arr, ref):
    """``arr`` as a tensor of ``ref``'s dtype and device (a gradient of ``ref``)."""
    return torch.from_numpy(np.ascontiguousarray(arr)).to(dtype=ref.dtype, device=ref.device)


def _reduction(size_average, reduce, reduction, legacy_default=None):
    """The reduction the value uses, silently: the no-grad call that computes the value
    gives PyTorch's deprecation warnings once. kl_div keeps "batchmean" and reads the
    legacy arguments against "mean"."""
    if size_average is None and reduce is None:
        return reduction if reduction in ("batchmean", "none", "sum") else (
            "mean" if reduction == "elementwise_mean" else reduction)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return F._reduction(size_average, reduce, legacy_default or reduction)


def _scale(reduction, divisor):
    if reduction == "sum":
        return 1.0
    return 1.0 / divisor if divisor else np.nan  # mean over nothing: NaN, as the loss


class _LossFunction(torch.autograd.Function):
    """A loss whose ``rule`` computes the value and the gradients; ``weights`` are the
    rule's weight arguments (``rule.weight_names``), passed so that autograd sees them."""

    @staticmethod
    def forward(ctx, rule, input, target, *weights):
        ctx.rule = rule
        return rule.forward(ctx.needs_input_grad[1])

    @staticmethod
    def backward(ctx, g):
        rule, need = ctx.rule, ctx.needs_input_grad
        gi = rule.input_grad(g) if need[1] else None
        gt = rule.target_grad(g) if need[2] else None
        gw = [rule.weight_grad(name, g) if wanted else None
              for name, wanted in zip(rule.weight_names, need[3:])]
        return (None, gi, gt, *gw)


def _apply(rule, input, target, *weights):
    return _LossFunction.apply(rule, input, target, *weights)


def _sum_to(a, shape):
    """``a`` summed over the axes that broadcasting ``shape`` to ``a.shape`` expanded."""
    lead = a.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape)
                                      if n == 1 and a.shape[lead + i] != 1)
    return a.sum(axis=axes, keepdims=True).reshape(shape) if axes else a.reshape(shape)


def _weight_grad(coef, reduction, g, divisor=None, weighted=None):
    """d loss / d weight for a loss linear in the weight, ``v_i = sum_k A_ik w_k`` per
    output element ``i`` (float64, the weight's shape).

    ``coef(gv)`` gives ``sum_i gv_i A_ik`` (``gv`` None: all ones). ``"mean"`` divides the
    sum by the constant ``divisor``, or with ``weighted=(n, w)`` by PyTorch's weighted
    ``D = sum_k n_k w_k`` (``n_k``: the output elements weighed by ``w_k``); then
    ``d(N/D)/dw_k = (sum_i A_ik - out * n_k) / D`` with ``out = N/D``.
    """
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        if reduction == "none":
            return coef(_np(g).astype(np.float64))
        s, g0 = coef(None), float(g)
        if reduction == "sum":
            return g0 * s
        if weighted is None:
            return g0 * s / divisor
        n, w = weighted
        D = np.dot(n.ravel(), w.ravel())  # a NumPy scalar: 0/0 is NaN, as PyTorch's
        out = np.dot(s.ravel(), w.ravel()) / D
        return g0 * (s - out * n) / D


class _Rule:
    """Value and gradients of one call; ``torch_loss(input, target)`` gives the target's,
    ``weight_grad(name, g)`` that of the weight argument ``name`` (``weight_names``)."""

    weight_names = ()

    def __init__(self, input, target, reduction, torch_loss):
        self.input, self.target, self.reduction = input, target, reduction
        self.torch_loss = torch_loss
        self.saved = None  # gradient of the reduced loss from a fused forward pass

    def forward(self, need_input_grad):
        return self.value()

    def input_grad(self, g):
        if self.reduction == "none":
            return _like(self.weighted_grad(_np(g).astype(np.float64)), self.input)
        grad = self.saved if self.saved is not None else self.reduced_grad()
        self.saved = None  # scaled in place below: a retained graph's next backward recomputes
        out = _like(grad, self.input)
        # .backward() of the loss itself passes 1: skip a pass over the gradient
        return out if bool(g == 1) else out.mul_(g)

    def target_grad(self, g):
        if not isinstance(self.input, torch.Tensor):
            raise RuntimeError("fastloss.torch: a target gradient needs a tensor input")
        with torch.enable_grad():
            t = self.target.detach().requires_grad_(True)
            return torch.autograd.grad(self.torch_loss(self.input.detach(), t), t, g)[0]

    def weight_grad(self, name, g):
        w = getattr(self, name + "_arg")
        return _like(self.weight_coef_grad(name, g), w)


# --------------------------------------------------------------------------- cross-entropy


class _CrossEntropy(_Rule):
    weight_names = ("weight",)

    def __init__(self, input, target, weight, size_average, ignore_index, reduce, reduction,
                 label_smoothing):
        self.weight_arg = weight
        self.p = p = F._ce_parse(input, target, weight, size_average, ignore_index, reduce,
                                 reduction, label_smoothing)
        self.args = (weight, size_average, ignore_index, reduce, reduction, label_smoothing)
        self.ii = ignore_index

        def torch_loss(x, t):
            return TF.cross_entropy(x, t, _detach(weight), ignore_index=ignore_index,
                                    reduction=p.reduction, label_smoothing=label_smoothing)

        super().__init__(input, target, p.reduction, torch_loss)
        if p.probs:
            self.x2, self.t2, self.cw = F._probs_rows(p.x2, p.t, p.w, p.cdim, p.C)
            self.divisor = self.x2.shape[0]
        else:
            self.x2, self.cw = p.x2, p.cw
            self.valid = p.y != ignore_index
            self.divisor = (float(np.count_nonzero(self.valid)) if self.cw is None
                            else float(np.sum(self.cw[p.y[self.valid]])))

    def call(self, sw):
        """The fused kernel with per-row weights ``sw`` (EMPTY: all 1)."""
        p, (kern, nt) = self.p, F._backend()
        cw = EMPTY if self.cw is None else self.cw
        if p.probs:
            return categorical_ce_call(self.x2, self.t2, kern=kern, n_threads=nt,
                                       from_logits=True, sample_weight=sw, class_weight=cw,
                                       label_smoothing=p.ls)
        if p.ls and self.cw is not None:
            # PyTorch's weighted smoothing sum_c w_c t'_c nll_c: the categorical kernel on
            # one-hot rows (ignored rows weigh 0)
            t2 = np.zeros(self.x2.shape, compute_dtype(self.x2.dtype))
            rows = np.nonzero(self.valid)[0]
            t2[rows, p.y[rows]] = 1
            base = np.ones(len(p.y)) if not sw.size else sw
            return categorical_ce_call(self.x2, t2, kern=kern, n_threads=nt, from_logits=True,
                                       sample_weight=base * self.valid, class_weight=cw,
                                       label_smoothing=p.ls)
        return sparse_ce_call(self.x2, p.y, kern=kern, n_threads=nt, from_logits=True,
                              sample_weight=sw, class_weight=cw, ignore_index=int(self.ii),
                              label_smoothing=p.ls)

    def layout(self, g2):
        p = self.p
        return np.moveaxis(g2.reshape(tuple(p.batch) + (p.C,)), -1, p.cdim)

    def forward(self, need_input_grad):
        p = self.p
        # fusable unless a zero class weight could hide a non-finite row (PyTorch: NaN)
        fuse = need_input_grad and self.reduction != "none" and p.x2.size and (
            self.cw is None or self.cw.all() or F._all_finite(p.x2))
        if fuse:
            total, g2 = _kernel_grad(self.call(EMPTY), self.x2.shape,
                                     _scale(self.reduction, self.divisor))
            if np.isfinite(total):
                self.saved = self.layout(g2)
                if p.io.half is None:  # half tensors: PyTorch's rounding steps, below
                    dt = compute_dtype(self.x2.dtype)
                    return p.io.out(F._mean_or_sum(total, self.divisor, self.reduction, dt))
        return F._cross_entropy_nograd(_detach(self.input), _detach(self.target), *self.args)

    def reduced_grad(self):
        return self.layout(_kernel_grad(self.call(EMPTY), self.x2.shape,
                                        _scale(self.reduction, self.divisor))[1])

    def weighted_grad(self, g):
        return self.layout(_kernel_grad(self.call(g.reshape(-1)), self.x2.shape, 1.0)[1])

    def weight_coef_grad(self, name, g):
        # the per-row loss is linear in the class weights: v_i = sum_c A_ic w_c
        if self.p.probs:  # A_ic = -t'_ic lp_ic, mean over the rows
            return _weight_grad(self.probs_coef, self.reduction, g, divisor=self.divisor)
        ys = self.p.y[self.valid]
        n = np.bincount(ys, minlength=self.p.C).astype(np.float64)
        return _weight_grad(self.index_coef, self.reduction, g, weighted=(n, self.cw))

    def index_coef(self, gv):
        """``sum_i gv_i A_ic`` for index targets: PyTorch's
        ``A_ic = (1 - ls) [c = y_i] nll_iy + ls/C nll_ic`` on rows not ignored."""
        p, valid = self.p, self.valid
        gv = valid.astype(np.float64) if gv is None else np.where(valid, gv.reshape(-1), 0.0)
        # the unweighted per-row loss of the kernel (PyTorch's IEEE values if not finite)
        nll_y = F._ce_index(self.x2, p.y, None, self.ii, 0.0, "none", (len(p.y),))
        picked = np.where(valid, gv * nll_y.astype(np.float64), 0.0)
        out = np.bincount(np.where(valid, p.y, 0), weights=picked, minlength=p.C)
        if not p.ls:
            return out
        smooth = _row_sums(self.x2, lambda lp, rows: gv[rows] @ -lp)
        return (1 - p.ls) * out + p.ls / p.C * smooth

    def probs_coef(self, gv):
        p = self.p
        gv = np.ones(self.x2.shape[0]) if gv is None else gv.reshape(-1)
        t2 = self.t2

        def part(lp, rows):
            t = t2[rows].astype(np.float64)
            if p.ls:
                t = t * (1 - p.ls) + p.ls / p.C
            return gv[rows] @ -(t * lp)

        return _row_sums(self.x2, part)


def _row_sums(x2, part, chunk=4096):
    """``sum`` over row chunks of ``part(log_softmax(rows), rows)`` (float64, PyTorch's
    non-finite rows), without a float64 copy of the whole input."""
    total = np.zeros(x2.shape[1])
    with np.errstate(invalid="ignore", over="ignore"):
        for a in range(0, x2.shape[0], chunk):
            rows = slice(a, a + chunk)
            total += part(F._torch_log_softmax(x2[rows].astype(np.float64), 1), rows)
    return total


def _detach(a):
    return a.detach() if isinstance(a, torch.Tensor) else a


def cross_entropy(input, target, weight, size_average, ignore_index, reduce, reduction,
                  label_smoothing):
    rule = _CrossEntropy(input, target, weight, size_average, ignore_index, reduce, reduction,
                         label_smoothing)
    return _apply(rule, input, target, weight)


# --------------------------------------------------------------------------- BCE


def _elementwise_coef(a, shape):
    """``coef`` for ``_weight_grad`` of an element-wise loss ``v = w * a`` (``a`` float64,
    the broadcast shape; ``w`` of ``shape``, broadcast against it)."""
    return lambda gv: _sum_to(a if gv is None else a * gv, shape)


class _BCEWithLogits(_Rule):
    weight_names = ("weight", "pos_weight")

    def __init__(self, input, target, weight, size_average, reduce, reduction, pos_weight):
        self.weight_arg, self.pos_weight_arg = weight, pos_weight
        self.io, self.x, self.t, self.w, self.pwa, red = F._bcel_parse(
            input, target, weight, size_average, reduce, reduction, pos_weight)
        self.args = (weight, size_average, reduce, reduction, pos_weight)
        super().__init__(input, target, red, lambda x, t: TF.binary_cross_entropy_with_logits(
            x, t, _detach(weight), reduction=red, pos_weight=_detach(pos_weight)))
        self.xf = np.ascontiguousarray(self.x).reshape(-1)
        self.dt = dt = compute_dtype(self.x.dtype)
        zdt = self.t.dtype if is_half(self.t.dtype) else dt  # as F._bce_kernel
        self.zf = np.ascontiguousarray(self.t, dtype=zdt).reshape(-1)

    def call(self, sw, div):
        kern, nt = F._backend()
        return bce_call(self.xf, self.zf, kern=kern, n_threads=nt, from_logits=True,
                        sample_weight=sw, weight_div=div, pos_weight=self.pwa)

    def reduced_run(self):
        sw, div = (EMPTY, 1) if self.w is None else F._weights_for(self.w, self.x.shape,
                                                                     self.dt)
        return _kernel_grad(self.call(sw, div), self.xf.shape,
                            _scale(self.reduction, self.x.size))

    def forward(self, need_input_grad):
        x, w = self.x, self.w
        if (need_input_grad and self.reduction != "none" and x.size and F._all_finite(x)
                and (w is None or F._all_finite(w))):
            total, g = self.reduced_run()
            self.saved = g.reshape(x.shape)
            if not self.io.halves:  # a half tensor anywhere: PyTorch's rounding steps, below
                return self.io.out(F._finish_elementwise((total, None), self.reduction,
                                                         x.size, self.dt, x.shape))
        return F._bce_with_logits_nograd(_detach(self.input), _detach(self.target), *self.args)

    def reduced_grad(self):
        return self.reduced_run()[1].reshape(self.x.shape)

    def weighted_grad(self, g):
        sw = np.broadcast_to(g, self.x.shape)
        if self.w is not None:
            sw = sw * np.broadcast_to(self.w.astype(self.dt).astype(np.float64),
                                      self.x.shape)
        sw = np.ascontiguousarray(sw, dtype=np.float64).reshape(-1)
        return _kernel_grad(self.call(sw, 1), self.xf.shape, 1.0)[1].reshape(self.x.shape)

    def weight_coef_grad(self, name, g):
        # v = w * ((1 - t) x + (1 + (pw - 1) t) softplus(-x)): d/dw is the unweighted loss,
        # d/dpw = w t softplus(-x)
        if name == "weight":
            a = _np(F._bce_with_logits_nograd(_detach(self.input), _detach(self.target), None,
                                              None, None, "none", _detach(self.pos_weight_arg)))
        else:
            x, t = self.x.astype(np.float64), self.t.astype(np.float64)
            a = t * np.logaddexp(0.0, -x)
            if self.w is not None:
                a = a * self.w.astype(np.float64)
        a = np.broadcast_to(np.asarray(a, dtype=np.float64), self.x.shape)
        shape = tuple(getattr(self, name + "_arg").shape)
        return _weight_grad(_elementwise_coef(a, shape), self.reduction, g,
                            divisor=self.x.size)


def binary_cross_entropy_with_logits(input, target, weight, size_average, reduce, reduction,
                                     pos_weight):
    rule = _BCEWithLogits(input, target, weight, size_average, reduce, reduction, pos_weight)
    return _apply(rule, input, target, weight, pos_weight)


class _BCE(_Rule):
    """BCE on probabilities: PyTorch's gradient ``w (x - t) / max((1 - x) x, 1e-12)``."""

    weight_names = ("weight",)

    def __init__(self, input, target, weight, size_average, reduce, reduction):
        red = _reduction(size_average, reduce, reduction)
        self.args = (weight, size_average, reduce, reduction)
        self.weight = self.weight_arg = weight
        super().__init__(input, target, red, lambda x, t: TF.binary_cross_entropy(
            x, t, _detach(weight), reduction=red))

    def value(self):
        return F._binary_cross_entropy_nograd(_detach(self.input), _detach(self.target),
                                              *self.args)

    def weighted_grad(self, coef):
        x = _np(self.input).astype(np.float64)
        t = _np(self.target).astype(np.float64)
        g = coef * (x - t) / np.maximum((1 - x) * x, 1e-12)  # PyTorch's EPSILON (Loss.cpp)
        if self.weight is not None:
            g = g * _np(self.weight).astype(np.float64)
        return g

    def reduced_grad(self):
        n = np.prod(self.input.shape)
        return self.weighted_grad(np.float64(_scale(self.reduction, n)))

    def weight_coef_grad(self, name, g):
        a = _np(F._binary_cross_entropy_nograd(_detach(self.input), _detach(self.target), None,
                                               None, None, "none"))  # d v / d w
        a = np.asarray(a, dtype=np.float64)
        return _weight_grad(_elementwise_coef(a, tuple(self.weight.shape)), self.reduction, g,
                            divisor=a.size)


def binary_cross_entropy(input, target, weight, size_average, reduce, reduction):
    return _apply(_BCE(input, target, weight, size_average, reduce, reduction), input, target,
                  weight)


# --------------------------------------------------------------------------- NLL


class _NLL(_Rule):
    """``-w_y * coef`` scattered at the targets (no kernel: a gather's gradient)."""

    weight_names = ("weight",)

    def __init__(self, input, target, weight, size_average, ignore_index, reduce, reduction):
        self.weight_arg = weight
        red = _reduction(size_average, reduce, reduction)
        self.args = (weight, size_average, ignore_index, reduce, reduction)
        self.ii = ignore_index
        self.w = _np(weight)
        super().__init__(input, target, red, None)

    def value(self):
        return F._nll_loss_nograd(_detach(self.input), _detach(self.target), *self.args)

    def rows(self):
        x = self.input  # only its shape is read: no copy of the values
        cdim = 1 if x.ndim >= 2 else 0
        y = _np(self.target).astype(np.int64).reshape(-1)
        valid = y != self.ii
        ys = np.where(valid, y, 0)
        wy = np.where(valid, 1.0 if self.w is None else self.w.astype(np.float64)[ys], 0.0)
        return x, cdim, ys, wy

    def scatter(self, coef):
        x, cdim, ys, wy = self.rows()
        shape = tuple(x.shape)
        moved = shape[:cdim] + shape[cdim + 1:] + shape[cdim:cdim + 1]
        g2 = np.zeros((ys.size, shape[cdim]))
        g2[np.arange(ys.size), ys] = -wy * coef
        return np.moveaxis(g2.reshape(moved), -1, cdim)

    def weighted_grad(self, g):
        return self.scatter(g.reshape(-1))

    def reduced_grad(self):
        return self.scatter(_scale(self.reduction, float(np.sum(self.rows()[3]))))

    def target_grad(self, g):
        raise RuntimeError("nll_loss has no gradient with respect to its (integer) target")

    def weight_coef_grad(self, name, g):
        # v_i = -w_y x_iy: A_ic = -[c = y_i] x_iy on rows not ignored
        x, cdim, ys, _ = self.rows()
        valid = self.valid()
        C = x.shape[cdim]
        x2 = np.moveaxis(_np(x), cdim, -1).reshape(-1, C)
        picked = np.where(valid, -x2[np.arange(ys.size), ys].astype(np.float64), 0.0)

        def coef(gv):
            v = picked if gv is None else np.where(valid, gv.reshape(-1) * picked, 0.0)
            return np.bincount(ys, weights=v, minlength=C)

        n = np.bincount(ys[valid], minlength=C).astype(np.float64)
        return _weight_grad(coef, self.reduction, g, weighted=(n, self.w.astype(np.float64)))

    def valid(self):
        return _np(self.target).astype(np.int64).reshape(-1) != self.ii


def nll_loss(input, target, weight, size_average, ignore_index, reduce, reduction):
    rule = _NLL(input, target, weight, size_average, ignore_index, reduce, reduction)
    return _apply(rule, input, target, weight)


# --------------------------------------------------------------------------- KL, MSE


class _Elementwise(_Rule):
    """KL / MSE as width-1 kernel rows (one element each), broadcast inputs expanded; the
    gradient is summed back to the input's shape."""

    def rows(self):
        io = F._IO()  # half tensors as zero-copy views: the kernels widen them
        x = F._float_input(io(self.input, view=True), self.name, keep_half=True)
        x, t = F._promote(x, io(self.target, view=True))
        x, t = np.broadcast_arrays(x, t)
        self.full_shape = x.shape
        return np.ascontiguousarray(x).reshape(-1, 1), np.ascontiguousarray(t).reshape(-1, 1)

    def run(self, sw, scale):
        x2, t2 = self.rows()
        grad = _kernel_grad(self.call(x2, t2, sw), x2.shape, scale)[1]
        return grad.reshape(self.full_shape)

    def input_grad(self, g):
        grad = super().input_grad(g)
        return grad.sum_to_size(self.input.shape) if grad.shape != self.input.shape else grad


class _KL(_Elementwise):
    name = "kl_div"

    def __init__(self, input, target, size_average, reduce, reduction, log_target):
        self.args = (size_average, reduce, reduction, log_target)
        self.log_target = log_target
        red = _reduction(size_average, reduce, reduction, legacy_default="mean")
        super().__init__(input, target, red, lambda x, t: TF.kl_div(
            x, t, reduction=red, log_target=log_target))

    def value(self):
        return F._kl_div_nograd(_detach(self.input), _detach(self.target), *self.args)

    def call(self, x2, t2, sw):
        kern, nt = F._backend()
        return kl_call(x2, t2, kern=kern, n_threads=nt, log_input=True,
                       log_target=self.log_target, sample_weight=sw)

    def reduced_grad(self):
        n = np.prod(np.broadcast_shapes(self.input.shape, self.target.shape))
        if self.reduction == "batchmean" and self.input.ndim:
            return self.run(EMPTY, 1.0 / self.input.shape[0])
        return self.run(EMPTY, _scale("sum" if self.reduction == "batchmean" else
                                      self.reduction, n))

    def weighted_grad(self, g):
        shape = np.broadcast_shapes(self.input.shape, self.target.shape)
        return self.run(np.ascontiguousarray(np.broadcast_to(g, shape)).reshape(-1), 1.0)


class _MSE(_Elementwise):
    name = "mse"

    weight_names = ("weight",)

    def __init__(self, input, target, size_average, reduce, reduction, weight):
        self.weight_arg = weight
        self.args = (size_average, reduce, reduction, weight)
        self.w = _np(weight)
        red = _reduction(size_average, reduce, reduction)
        super().__init__(input, target, red, lambda x, t: TF.mse_loss(
            x, t, reduction=red, weight=_detach(weight)))

    def value(self):
        return F._mse_loss_nograd(_detach(self.input), _detach(self.target), *self.args)

    def call(self, x2, t2, sw):
        kern, nt = F._backend()
        return mse_call(x2, t2, kern=kern, n_threads=nt, sample_weight=sw)

    def element_weights(self, shape, g=None):
        w = np.ones(shape) if self.w is None else np.broadcast_to(
            self.w.astype(np.float64), shape)
        if g is not None:
            w = w * np.broadcast_to(g, shape)
        return np.ascontiguousarray(w, dtype=np.float64).reshape(-1)

    def reduced_grad(self):
        shape = np.broadcast_shapes(self.input.shape, self.target.shape)
        if self.w is None:
            return self.run(EMPTY, _scale(self.reduction, np.prod(shape)))
        # PyTorch's divisor is sum(weight), the weight having the input's shape (a target
        # broadcasting beyond it repeats terms, not weights)
        return self.run(self.element_weights(shape),
                        _scale(self.reduction, float(np.sum(self.w, dtype=np.float64))))

    def weighted_grad(self, g):
        shape = np.broadcast_shapes(self.input.shape, self.target.shape)
        return self.run(self.element_weights(shape, g), 1.0)

    def weight_coef_grad(self, name, g):
        x, t = _np(self.input).astype(np.float64), _np(self.target).astype(np.float64)
        with np.errstate(invalid="ignore", over="ignore"):
            a = (x - t) ** 2  # v = w d**2, mean sum(v) / sum(w)
        w = self.w.astype(np.float64)
        return _weight_grad(_elementwise_coef(a, w.shape), self.reduction, g,
                            weighted=(np.ones(w.shape), w))


def kl_div(input, target, size_average, reduce, reduction, log_target):
    rule = _KL(input, target, size_average, reduce, reduction, log_target)
    return _apply(rule, input, target)


def mse_loss(input, target, size_average, reduce, reduction, weight):
    rule = _MSE(input, target, size_average, reduce, reduction, weight)
    return _apply(rule, input, target, weight)


# --------------------------------------------------------------------------- normalisations


class _Normalise(torch.autograd.Function):
    """softmax / log_softmax / logsumexp: fastloss's values, torch ops for the backward."""

    @staticmethod
    def forward(ctx, input, kind, dim, keepdim, dtype):
        if kind == "logsumexp":
            out = F._logsumexp_nograd(input, dim, keepdim)
        else:
            out = F._softmax_nograd(input, dim, 3, dtype, log=kind == "log_softmax")
        ctx.kind, ctx.dim, ctx.keepdim = kind, dim, keepdim
        ctx.save_for_backward(input, out)
        return out

    @staticmethod
    def backward(ctx, g):
        x, out = ctx.saved_tensors
        if x.ndim == 0 and ctx.kind != "logsumexp":
            return torch.zeros_like(x), None, None, None, None
        g64, y = g.double(), out.double()
        if ctx.kind == "softmax":
            gi = y * (g64 - (g64 * y).sum(ctx.dim, keepdim=True))
        elif ctx.kind == "log_softmax":
            gi = g64 - y.exp() * g64.sum(ctx.dim, keepdim=True)
        else:
            dims = ctx.dim if isinstance(ctx.dim, (tuple, list)) else (ctx.dim,)
            if not ctx.keepdim and x.ndim:
                for d in sorted(dd % x.ndim for dd in dims):
                    g64, y = g64.unsqueeze(d), y.unsqueeze(d)
            gi = g64 * (x.double() - y).exp()
        return gi.to(x.dtype), None, None, None, None


def _implicit_dim(name, input, dim, stacklevel):
    return F._softmax_dim(name, input.ndim, stacklevel + 2) if dim is None else dim


def softmax(input, dim, _stacklevel, dtype):
    return _Normalise.apply(input, "softmax", _implicit_dim("softmax", input, dim, _stacklevel),
                            False, dtype)


def log_softmax(input, dim, _stacklevel, dtype):
    return _Normalise.apply(input, "log_softmax",
                            _implicit_dim("log_softmax", input, dim, _stacklevel), False, dtype)


def logsumexp(input, dim, keepdim):
    return _Normalise.apply(input, "logsumexp", dim, keepdim, None)
