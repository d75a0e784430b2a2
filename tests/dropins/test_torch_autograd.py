"""Autograd through ``fastloss.torch`` (issue #17).

``torch.autograd.gradcheck`` (float64, central differences against the analytic backward)
for every loss, every reduction and the main options; float32 gradients against PyTorch's
(``assert_close`` at float32's default tolerances); the fused forward's value equal to the
no-grad value; the gradient the same for 1 and 2 fastloss threads; the no-grad path
untouched; clear errors where no gradient is provided. Gradients with respect to
``weight``/``pos_weight``: gradcheck for every weighted loss and reduction, and equal to
torch's autograd (its function, or PyTorch's formula in torch ops where its function refuses
a weight requiring grad).
"""

import warnings

import numpy as np
import pytest

import fastloss.torch as FT

pytestmark = pytest.mark.frameworks

REDUCTIONS = ["mean", "sum", "none"]


@pytest.fixture(scope="module")
def case(torch):
    """Fixed float64 inputs (gradcheck needs the function deterministic in its arguments)."""
    g = torch.Generator().manual_seed(17)
    D = torch.float64

    def rnd(*shape, lo=None):
        r = torch.randn(*shape, generator=g, dtype=D) if lo is None else (
            torch.rand(*shape, generator=g, dtype=D) * (1 - 2 * lo) + lo)
        return r

    return dict(
        x=rnd(6, 4), x3=rnd(3, 4, 2), y=torch.tensor([0, 3, 1, -100, 2, 3]),
        y3=torch.tensor([[0, 3], [1, 2], [-100, 0]]), w=rnd(4, lo=0.1), p=rnd(6, 4, lo=0.05),
        probs=torch.softmax(rnd(6, 4), 1), ew=rnd(6, 4, lo=0.1), t=rnd(6, 4, lo=0.0),
    )


def _check(torch, fn, *inputs):
    leaves = [a.detach().clone().requires_grad_(True) for a in inputs]
    assert torch.autograd.gradcheck(fn, leaves, eps=1e-6, atol=1e-6, rtol=1e-5)


def _loss_cases(c, F=FT):
    """name -> (fn(leaves...), leaves): every loss with its main options, called on ``F``
    (fastloss.torch, or torch.nn.functional for the reference)."""
    x, y, w = c["x"], c["y"], c["w"]
    return {
        "cross_entropy": (lambda r: lambda a: F.cross_entropy(a, y, reduction=r), [x]),
        "cross_entropy weight": (lambda r: lambda a: F.cross_entropy(a, y, w, reduction=r), [x]),
        "cross_entropy ignore_index=1": (
            lambda r: lambda a: F.cross_entropy(a, y.clamp(min=0), ignore_index=1, reduction=r),
            [x]),
        "cross_entropy label_smoothing": (
            lambda r: lambda a: F.cross_entropy(a, y, label_smoothing=0.2, reduction=r), [x]),
        "cross_entropy weight label_smoothing": (
            lambda r: lambda a: F.cross_entropy(a, y, w, label_smoothing=0.2, reduction=r), [x]),
        "cross_entropy (N, C, d)": (
            lambda r: lambda a: F.cross_entropy(a, c["y3"], w, reduction=r), [c["x3"]]),
        "cross_entropy probabilities": (
            lambda r: lambda a, t: F.cross_entropy(a, t, w, label_smoothing=0.1, reduction=r),
            [x, c["probs"]]),
        "nll_loss": (lambda r: lambda a: F.nll_loss(a, y, w, reduction=r), [x]),
        "binary_cross_entropy": (
            lambda r: lambda a, t: F.binary_cross_entropy(a, t, c["ew"], reduction=r),
            [c["p"], c["t"]]),
        "binary_cross_entropy_with_logits": (
            lambda r: lambda a, t: F.binary_cross_entropy_with_logits(
                a, t, w, reduction=r, pos_weight=2 * w), [x, c["t"]]),
        "kl_div": (lambda r: lambda a, t: F.kl_div(a, t, reduction=r), [x, c["p"]]),
        "kl_div log_target": (
            lambda r: lambda a, t: F.kl_div(a, t, reduction=r, log_target=True), [x, x.flip(0)]),
        "mse_loss": (lambda r: lambda a, t: F.mse_loss(a, t, reduction=r), [x, c["t"]]),
        "mse_loss weight": (
            lambda r: lambda a, t: F.mse_loss(a, t, reduction=r, weight=c["ew"]), [x, c["t"]]),
        "mse_loss broadcast": (lambda r: lambda a, t: F.mse_loss(a, t, reduction=r),
                               [x[:, :1], c["t"]]),
    }


LOSSES = ["cross_entropy", "cross_entropy weight", "cross_entropy ignore_index=1",
          "cross_entropy label_smoothing", "cross_entropy weight label_smoothing",
          "cross_entropy (N, C, d)", "cross_entropy probabilities", "nll_loss",
          "binary_cross_entropy", "binary_cross_entropy_with_logits", "kl_div",
          "kl_div log_target", "mse_loss", "mse_loss weight", "mse_loss broadcast"]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", LOSSES)
def test_gradcheck_losses(torch, case, name, reduction):
    make, leaves = _loss_cases(case)[name]
    _check(torch, make(reduction), *leaves)


def test_gradcheck_kl_batchmean(torch, case):
    _check(torch, lambda a, t: FT.kl_div(a, t, reduction="batchmean"), case["x"], case["p"])


@pytest.mark.parametrize("fn", [
    lambda a: FT.softmax(a, 1), lambda a: FT.log_softmax(a, 0),
    lambda a: FT.logsumexp(a, 1), lambda a: FT.logsumexp(a, (0, 1), keepdim=True),
    lambda a: FT.softmax(a, 1, dtype=a.dtype)], ids=["softmax", "log_softmax", "logsumexp",
                                                     "logsumexp keepdim", "softmax dtype"])
def test_gradcheck_normalisations(torch, case, fn):
    _check(torch, fn, case["x"])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", LOSSES)
def test_float32_gradients_match_torch(torch, case, name, reduction):
    """The same call through torch.nn.functional: gradients within float32's tolerances."""
    import torch.nn.functional as TF

    c32 = {k: v.float() if v.is_floating_point() else v for k, v in case.items()}
    make, leaves = _loss_cases(c32)[name]
    ours = [a.detach().clone().requires_grad_(True) for a in leaves]
    ref = [a.detach().clone().requires_grad_(True) for a in leaves]
    out = make(reduction)(*ours)
    rout = _loss_cases(c32, TF)[name][0](reduction)(*ref)
    assert rout.grad_fn is not None and out.grad_fn is not None
    v = torch.linspace(-1, 2, out.numel()).reshape(out.shape)
    gi = torch.autograd.grad((out * v).sum(), ours)
    gr = torch.autograd.grad((rout * v).sum(), ref)
    torch.testing.assert_close(out.detach(), rout.detach())
    for a, b in zip(gi, gr):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_fused_forward_value_is_the_no_grad_value(torch, reduction):
    rng = np.random.default_rng(3)
    x = torch.from_numpy(rng.normal(size=(300, 50)).astype(np.float32) * 4)
    y = torch.from_numpy(rng.integers(0, 50, 300))
    t = torch.from_numpy(rng.random((300, 50)).astype(np.float32))
    w = torch.from_numpy(rng.random(50).astype(np.float32))
    for fn in (lambda a: FT.cross_entropy(a, y, w, reduction=reduction),
               lambda a: FT.cross_entropy(a, y, reduction=reduction, label_smoothing=0.1),
               lambda a: FT.binary_cross_entropy_with_logits(a, t, reduction=reduction)):
        fused = fn(x.clone().requires_grad_(True))
        assert fused.grad_fn is not None
        plain = fn(x)
        assert plain.grad_fn is None and plain.dtype == fused.dtype
        assert fused.item() == plain.item()  # bitwise: one kernel, one rounding


def test_gradient_same_for_any_thread_count(torch, monkeypatch):
    rng = np.random.default_rng(4)
    x = torch.from_numpy(rng.normal(size=(5000, 37)).astype(np.float32))
    y = torch.from_numpy(rng.integers(0, 37, 5000))
    grads = []
    for n in ("1", "2"):
        monkeypatch.setenv("FASTLOSS_NUM_THREADS", n)
        a = x.clone().requires_grad_(True)
        FT.cross_entropy(a, y).backward()
        grads.append(a.grad)
    assert torch.equal(grads[0], grads[1])


def test_no_grad_calls_stay_plain(torch):
    x = torch.randn(4, 3, requires_grad=True)
    y = torch.tensor([0, 1, 2, 1])
    with torch.no_grad():
        assert FT.cross_entropy(x, y).grad_fn is None
    assert FT.cross_entropy(x.detach(), y).grad_fn is None
    out = FT.cross_entropy(x, y)
    out.backward()
    assert x.grad is not None and x.grad.shape == x.shape


def test_half_input_gradient_is_half(torch):
    x = torch.randn(4, 3).half().requires_grad_(True)
    out = FT.cross_entropy(x, torch.tensor([0, 1, 2, 1]))
    assert out.dtype == torch.float16
    out.backward()
    assert x.grad.dtype == torch.float16


def test_target_gradient_is_torchs(torch, case):
    x = case["x"].float().requires_grad_(True)
    t = case["probs"].float().requires_grad_(True)
    FT.cross_entropy(x, t, label_smoothing=0.1).backward()
    x2, t2 = x.detach().clone().requires_grad_(True), t.detach().clone().requires_grad_(True)
    torch.nn.functional.cross_entropy(x2, t2, label_smoothing=0.1).backward()
    torch.testing.assert_close(t.grad, t2.grad)
    torch.testing.assert_close(x.grad, x2.grad)


# --------------------------------------------------------------------------- weight gradients
#
# PyTorch differentiates ``weight`` only where its loss is a composite of differentiable ops
# (cross_entropy with probability targets, mse_loss); nll_loss, cross_entropy with index
# targets, binary_cross_entropy and binary_cross_entropy_with_logits raise "not
# differentiable with respect to argument 'weight'". fastloss.torch gives the gradient for
# all of them (documented in its module docstring); the reference for those is torch's
# autograd through PyTorch's formula written with differentiable torch ops, whose value is
# checked against torch's own function first.


def _ce_formula(torch, x, y, w, reduction, ls=0.0, ignore_index=-100, log_probs=False):
    """PyTorch's cross_entropy (index targets, class weights, label smoothing), or nll_loss
    (``log_probs``), in differentiable torch ops."""
    cdim = 1 if x.ndim >= 2 else 0
    C = x.shape[cdim]
    lp = x if log_probs else torch.log_softmax(x, cdim)
    lp = lp.movedim(cdim, -1).reshape(-1, C)
    yy = y.reshape(-1)
    valid = yy != ignore_index
    ys = torch.where(valid, yy, 0)
    v = (1 - ls) * w[ys] * -lp.gather(1, ys[:, None])[:, 0]
    if ls:
        v = v + ls / C * -(lp * w).sum(1)
    v = torch.where(valid, v, 0.0)
    if reduction == "none":
        return v.reshape(y.shape)
    return v.sum() if reduction == "sum" else v.sum() / torch.where(valid, w[ys], 0.0).sum()


def _elementwise_formula(torch, v, reduction):
    return v if reduction == "none" else (v.sum() if reduction == "sum" else v.mean())


def _weight_cases(torch, c, F):
    """name -> (fn(leaves...), leaves, torch_formula or None): losses with weights, every
    weight requiring grad (the input too, or not); ``torch_formula``: the reference where
    PyTorch's function refuses a weight requiring grad (None: PyTorch's function is it)."""
    import torch.nn.functional as TF

    x, y, w, ew, t, p = c["x"], c["y"], c["w"], c["ew"], c["t"], c["p"]
    y3, x3, probs = c["y3"], c["x3"], c["probs"]

    def bcel(a, t, wt, pw, r):
        lw = 1 if pw is None else 1 + (pw - 1) * t
        v = (1 - t) * a - lw * torch.nn.functional.logsigmoid(a)
        return _elementwise_formula(torch, v if wt is None else v * wt, r)

    def bce(a, t, wt, r):
        v = -(t * a.log().clamp(min=-100) + (1 - t) * (-a).log1p().clamp(min=-100))
        return _elementwise_formula(torch, v * wt, r)

    return {
        "cross_entropy": (lambda r, F=F: lambda a, wt: F.cross_entropy(a, y, wt, reduction=r),
                          [x, w], lambda r: lambda a, wt: _ce_formula(torch, a, y, wt, r)),
        "cross_entropy weight only": (
            lambda r, F=F: lambda wt: F.cross_entropy(x, y, wt, reduction=r), [w],
            lambda r: lambda wt: _ce_formula(torch, x, y, wt, r)),
        "cross_entropy ignore_index=1 label_smoothing": (
            lambda r, F=F: lambda a, wt: F.cross_entropy(
                a, y.clamp(min=0), wt, ignore_index=1, reduction=r, label_smoothing=0.2),
            [x, w], lambda r: lambda a, wt: _ce_formula(torch, a, y.clamp(min=0), wt, r, 0.2, 1)),
        "cross_entropy (N, C, d) label_smoothing": (
            lambda r, F=F: lambda a, wt: F.cross_entropy(a, y3, wt, reduction=r,
                                                         label_smoothing=0.3),
            [x3, w], lambda r: lambda a, wt: _ce_formula(torch, a, y3, wt, r, 0.3)),
        "cross_entropy probabilities": (
            lambda r, F=F: lambda a, tt, wt: F.cross_entropy(a, tt, wt, reduction=r,
                                                             label_smoothing=0.1),
            [x, probs, w], None),
        "cross_entropy probabilities weight only": (
            lambda r, F=F: lambda wt: F.cross_entropy(x, probs, wt, reduction=r), [w], None),
        "nll_loss": (lambda r, F=F: lambda a, wt: F.nll_loss(a, y, wt, reduction=r), [x, w],
                     lambda r: lambda a, wt: _ce_formula(torch, a, y, wt, r, log_probs=True)),
        "binary_cross_entropy": (
            lambda r, F=F: lambda a, wt: F.binary_cross_entropy(a, t, wt, reduction=r),
            [p, ew], lambda r: lambda a, wt: bce(a, t, wt, r)),
        "binary_cross_entropy broadcast weight": (
            lambda r, F=F: lambda a, wt: F.binary_cross_entropy(a, t, wt, reduction=r),
            [p, w], lambda r: lambda a, wt: bce(a, t, wt, r)),
        "binary_cross_entropy_with_logits weight": (
            lambda r, F=F: lambda a, wt: F.binary_cross_entropy_with_logits(
                a, t, wt, reduction=r), [x, ew], lambda r: lambda a, wt: bcel(a, t, wt, None, r)),
        "binary_cross_entropy_with_logits pos_weight": (
            lambda r, F=F: lambda a, pw: F.binary_cross_entropy_with_logits(
                a, t, reduction=r, pos_weight=pw), [x, 2 * w],
            lambda r: lambda a, pw: bcel(a, t, None, pw, r)),
        "binary_cross_entropy_with_logits weight pos_weight": (
            lambda r, F=F: lambda a, wt, pw: F.binary_cross_entropy_with_logits(
                a, t, wt, reduction=r, pos_weight=pw), [x, w[:, None].expand(4, 6).T, 2 * w],
            lambda r: lambda a, wt, pw: bcel(a, t, wt, pw, r)),
        "binary_cross_entropy_with_logits weight pos_weight only": (
            lambda r, F=F: lambda wt, pw: F.binary_cross_entropy_with_logits(
                x, t, wt, reduction=r, pos_weight=pw), [w, w[:1] * 3],
            lambda r: lambda wt, pw: bcel(x, t, wt, pw, r)),
        "mse_loss": (lambda r, F=F: lambda a, wt: F.mse_loss(a, t, reduction=r, weight=wt),
                     [x, ew], None),
        "mse_loss broadcast target": (
            lambda r, F=F: lambda a, wt: F.mse_loss(a, t, reduction=r, weight=wt),
            [x[:1], ew[:1]], None),
    }


WEIGHT_LOSSES = [
    "cross_entropy", "cross_entropy weight only", "cross_entropy ignore_index=1 label_smoothing",
    "cross_entropy (N, C, d) label_smoothing", "cross_entropy probabilities",
    "cross_entropy probabilities weight only", "nll_loss", "binary_cross_entropy",
    "binary_cross_entropy broadcast weight", "binary_cross_entropy_with_logits weight",
    "binary_cross_entropy_with_logits pos_weight",
    "binary_cross_entropy_with_logits weight pos_weight",
    "binary_cross_entropy_with_logits weight pos_weight only", "mse_loss",
    "mse_loss broadcast target"]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", WEIGHT_LOSSES)
def test_gradcheck_weights(torch, case, name, reduction):
    make, leaves, _ = _weight_cases(torch, case, FT)[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mse_loss's broadcast target warning
        _check(torch, make(reduction), *leaves)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", WEIGHT_LOSSES)
def test_weight_gradients_match_torch(torch, case, name, reduction, dtype):
    """Value and every gradient (input, weight, pos_weight) as torch's autograd gives them."""
    import torch.nn.functional as TF

    dt = getattr(torch, dtype)
    c = {k: v.to(dt) if v.is_floating_point() else v for k, v in case.items()}
    make, leaves, formula = _weight_cases(torch, c, FT)[name]
    ref_make = _weight_cases(torch, c, TF)[name][0]
    ours = [a.detach().clone().requires_grad_(True) for a in leaves]
    ref = [a.detach().clone().requires_grad_(True) for a in leaves]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = make(reduction)(*ours)
        if formula is None:
            rout = ref_make(reduction)(*ref)
        else:
            with pytest.raises(RuntimeError, match="not differentiable with respect to"):
                ref_make(reduction)(*ref)  # PyTorch's function refuses: its formula
            rout = formula(reduction)(*ref)
            torch.testing.assert_close(rout.detach(), ref_make(reduction)(
                *[a.detach() for a in ref]))  # ... is PyTorch's function
    torch.testing.assert_close(out.detach(), rout.detach())
    v = torch.linspace(-1, 2, out.numel(), dtype=dt).reshape(out.shape)
    gi = torch.autograd.grad((out * v).sum(), ours)
    gr = torch.autograd.grad((rout * v).sum(), ref)
    for a, b, leaf in zip(gi, gr, ours):
        assert a.dtype == leaf.dtype and a.shape == leaf.shape
        torch.testing.assert_close(a, b)


def test_half_weight_gradient_is_half(torch):
    x = torch.randn(4, 3).half()
    w = torch.rand(3).half().requires_grad_(True)
    t = torch.softmax(torch.randn(4, 3), 1).half()
    FT.cross_entropy(x, t, w).backward()
    assert w.grad.dtype == torch.float16 and torch.isfinite(w.grad).all()


def test_nn_class_backward(torch):
    x = torch.randn(8, 5, requires_grad=True)
    FT.CrossEntropyLoss(label_smoothing=0.1)(x, torch.randint(0, 5, (8,))).backward()
    assert torch.isfinite(x.grad).all()


def test_retained_graph_backward_twice(torch):
    """The saved fused gradient is scaled in place once; a second backward recomputes it."""
    x = torch.randn(5, 3, requires_grad=True)
    y = torch.tensor([0, 1, 2, 0, 1])
    loss = FT.cross_entropy(x, y) * 3
    loss.backward(retain_graph=True)
    first = x.grad.clone()
    x.grad = None
    loss.backward()
    assert torch.equal(first, x.grad)
    x2 = x.detach().clone().requires_grad_(True)
    (torch.nn.functional.cross_entropy(x2, y) * 3).backward()
    torch.testing.assert_close(first, x2.grad)


def test_grad_path_same_value_dtype_and_errors_as_no_grad(torch):
    """An input requiring grad changes nothing but the graph: same dtype, shape and value
    (assert_close), or the same exception type, as the detached call."""
    g = torch.Generator().manual_seed(5)
    x = torch.randn(3, 4, generator=g)
    probs = torch.softmax(torch.randn(3, 4, generator=g), 1)
    y = torch.tensor([0, 1, 2])
    w64 = torch.rand(4, dtype=torch.float64, generator=g)
    calls = [
        lambda a: FT.cross_entropy(a, probs, w64),
        lambda a: FT.cross_entropy(a, probs.double()),
        lambda a: FT.cross_entropy(a, torch.zeros(3, 4, dtype=torch.long)),
        lambda a: FT.cross_entropy(a, probs, ignore_index=1),
        lambda a: FT.cross_entropy(a, y, torch.ones(4, dtype=torch.float16)),
        lambda a: FT.cross_entropy(a, torch.tensor([0, 1, 4])),
        lambda a: FT.cross_entropy(a, y, reduction="avg"),
        lambda a: FT.nll_loss(a, y.int()),
        lambda a: FT.binary_cross_entropy(a, probs),
        lambda a: FT.binary_cross_entropy_with_logits(a, probs[:2]),
        lambda a: FT.kl_div(a, probs.double(), reduction="batchmean"),
        lambda a: FT.mse_loss(a, probs, reduction="sum"),
        lambda a: FT.log_softmax(a.half(), 1, dtype=torch.float32),
        lambda a: FT.logsumexp(a, 2),
    ]
    for call in calls:
        results = []
        for a in (x.clone().requires_grad_(True), x.clone()):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    results.append(call(a))
            except Exception as exc:
                results.append(exc)
        grad_res, plain = results
        if isinstance(plain, Exception):
            assert type(grad_res) is type(plain), results
        else:
            assert grad_res.requires_grad
            torch.testing.assert_close(grad_res.detach(), plain, equal_nan=True)
