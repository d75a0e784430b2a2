"""Fused loss + gradient (+ Hessian) kernels (issue 9)."""

import numpy as np
import pytest

import fastloss
from fastloss.kernels._blocks import block_rows_for, block_sums, combine


def _cases(rng, n=40, c=5):
    """(name, grad_fn, loss_fn, y_true, logits, options): every loss with its options."""
    y = rng.integers(0, c, n)
    y[::7] = -100
    t = rng.dirichlet(np.ones(c), n)
    z = (rng.random((n, c)) < 0.4).astype(float)
    x = rng.standard_normal((n, c)) * 2
    p = rng.dirichlet(np.ones(c), n)
    sw = rng.uniform(0.1, 2, n)
    return [
        ("sparse", fastloss.sparse_categorical_cross_entropy_grad,
         lambda yy, xx, **k: fastloss.sparse_categorical_cross_entropy(yy, xx, from_logits=True,
                                                                       **k),
         np.where(y < 0, 0, y), x, {}),
        ("sparse+options", fastloss.sparse_categorical_cross_entropy_grad,
         lambda yy, xx, **k: fastloss.sparse_categorical_cross_entropy(yy, xx, from_logits=True,
                                                                       **k),
         y, x, dict(ignore_index=-100, class_weight=rng.uniform(0.5, 2, c), label_smoothing=0.1,
                    z_loss=1e-2, sample_weight=sw)),
        ("categorical", fastloss.categorical_cross_entropy_grad,
         lambda yy, xx, **k: fastloss.categorical_cross_entropy(yy, xx, from_logits=True, **k),
         t, x, dict(class_weight=rng.uniform(0.5, 2, c), label_smoothing=0.2, sample_weight=sw)),
        ("bce", fastloss.binary_cross_entropy_grad,
         lambda yy, xx, **k: fastloss.binary_cross_entropy(yy, xx, from_logits=True, **k),
         z, x, dict(pos_weight=rng.uniform(0.5, 3, c), sample_weight=sw, label_smoothing=0.1)),
        ("kl", fastloss.kl_divergence_grad, fastloss.kl_divergence, t, p, dict(sample_weight=sw)),
        ("kl-log", fastloss.kl_divergence_grad,
         lambda yy, xx, **k: fastloss.kl_divergence(yy, xx, log_input=True, **k), t, np.log(p),
         dict(log_input=True)),
        ("mse", fastloss.mean_squared_error_grad, fastloss.mean_squared_error, t, x,
         dict(output_weight=rng.uniform(0.1, 1, c), sample_weight=sw)),
    ]


def _fwd_kwargs(opts):
    return {k: v for k, v in opts.items() if k != "log_input"}


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_gradient_matches_fourth_order_central_differences(rng, reduction, backend):
    for name, gfn, lfn, yt, x, opts in _cases(rng):
        loss, g, h = gfn(yt, x, reduction=reduction, hessian=True, backend=backend, **opts)
        f = lambda xx: float(lfn(yt, xx, reduction=reduction, backend="numpy",  # noqa: E731
                                 **_fwd_kwargs(opts)))
        assert loss == f(x), name  # fused loss == the forward call, bitwise
        eps = 1e-4
        for idx in [(0, 0), (3, 2), (10, 4), (22, 1)]:
            def at(d, idx=idx):
                xx = x.copy()
                xx[idx] += d
                return f(xx)
            fd = (-at(2 * eps) + 8 * at(eps) - 8 * at(-eps) + at(-2 * eps)) / (12 * eps)
            assert g[idx] == pytest.approx(fd, rel=1e-6, abs=1e-9), (name, idx)
            e2 = 1e-3  # second differences need a larger step: round-off grows as 1/e2**2
            hd = (-at(2 * e2) + 16 * at(e2) - 30 * f(x) + 16 * at(-e2) - at(-2 * e2)) / (
                12 * e2 * e2)
            assert h[idx] == pytest.approx(hd, rel=1e-4, abs=1e-5), (name, idx, "hessian")


def test_gradients_match_torch_autograd(rng, torch):
    F = torch.nn.functional
    n, c = 64, 6
    x = rng.standard_normal((n, c)) * 3
    y = rng.integers(0, c, n)
    y[::5] = -100
    w = rng.uniform(0.5, 2, c)
    for ls in (0.0, 0.15):
        # PyTorch's weighted label smoothing differs from fastloss's (documented), so
        # compare weight with ls=0 and ls without weight.
        kw = dict(weight=torch.tensor(w)) if ls == 0 else {}
        xt = torch.tensor(x, requires_grad=True)
        lt = F.cross_entropy(xt, torch.tensor(y), ignore_index=-100, label_smoothing=ls, **kw)
        lt.backward()
        fkw = dict(class_weight=w) if ls == 0 else {}
        loss, g = fastloss.sparse_categorical_cross_entropy_grad(
            y, x, ignore_index=-100, label_smoothing=ls, **fkw)
        assert loss == pytest.approx(lt.item(), rel=1e-13)
        np.testing.assert_allclose(g, xt.grad.numpy(), rtol=1e-12, atol=1e-16)

    z = (rng.random((n, c)) < 0.3).astype(float)
    pw = rng.uniform(0.5, 3, c)
    xt = torch.tensor(x, requires_grad=True)
    lt = F.binary_cross_entropy_with_logits(xt, torch.tensor(z), pos_weight=torch.tensor(pw))
    lt.backward()
    loss, g = fastloss.binary_cross_entropy_grad(z, x, pos_weight=pw)
    assert loss == pytest.approx(lt.item(), rel=1e-13)
    np.testing.assert_allclose(g, xt.grad.numpy(), rtol=1e-12, atol=1e-18)

    t = rng.dirichlet(np.ones(c), n)
    xt = torch.tensor(x, requires_grad=True)
    lt = F.cross_entropy(xt, torch.tensor(t))
    lt.backward()
    loss, g = fastloss.categorical_cross_entropy_grad(t, x)
    assert loss == pytest.approx(lt.item(), rel=1e-13)
    np.testing.assert_allclose(g, xt.grad.numpy(), rtol=1e-12, atol=1e-18)

    lp = np.log(rng.dirichlet(np.ones(c), n))
    xt = torch.tensor(lp, requires_grad=True)
    lt = F.kl_div(xt, torch.tensor(t), reduction="batchmean")
    lt.backward()
    loss, g = fastloss.kl_divergence_grad(t, lp, log_input=True)
    assert loss == pytest.approx(lt.item(), rel=1e-12)
    np.testing.assert_allclose(g, xt.grad.numpy(), rtol=1e-12, atol=1e-18)

    t2 = rng.standard_normal((n, c))
    xt = torch.tensor(x, requires_grad=True)
    lt = F.mse_loss(xt, torch.tensor(t2))
    lt.backward()
    loss, g = fastloss.mean_squared_error_grad(t2, x)
    assert loss == pytest.approx(lt.item(), rel=1e-13)
    np.testing.assert_allclose(g, xt.grad.numpy(), rtol=1e-12, atol=1e-18)


def test_sum_gives_per_sample_weighted_gradients(rng):
    x = rng.standard_normal((30, 4))
    y = rng.integers(0, 4, 30)
    w = rng.uniform(0, 2, 30)
    _, g_sum = fastloss.sparse_categorical_cross_entropy_grad(y, x, sample_weight=w,
                                                              reduction="sum")
    _, g_mean = fastloss.sparse_categorical_cross_entropy_grad(y, x, sample_weight=w)
    p = np.exp(x - x.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    onehot = np.eye(4)[y]
    np.testing.assert_allclose(g_sum, w[:, None] * (p - onehot), rtol=1e-13, atol=1e-16)
    wsum = combine(block_sums(w, block_rows_for(4)))
    np.testing.assert_allclose(g_mean, g_sum / wsum, rtol=1e-13, atol=1e-17)


def test_float32_dtype_axis_and_out_buffers(rng):
    x = rng.standard_normal((5, 8, 3)).astype(np.float32)  # class axis 1, as in PyTorch
    y = rng.integers(0, 8, (5, 3))
    loss, g = fastloss.sparse_categorical_cross_entropy_grad(y, x, axis=1)
    assert g.shape == x.shape and g.dtype == np.float32 and loss.dtype == np.float32
    moved = np.moveaxis(x, 1, -1).reshape(-1, 8)
    _, g2 = fastloss.sparse_categorical_cross_entropy_grad(y.reshape(-1), moved)
    np.testing.assert_array_equal(np.moveaxis(g, 1, -1).reshape(-1, 8), g2)
    gb, hb = np.empty_like(x), np.empty_like(x)
    res = fastloss.sparse_categorical_cross_entropy_grad(y, x, axis=1, hessian=True, out=(gb, hb))
    assert res[1] is gb and res[2] is hb
    np.testing.assert_array_equal(gb, g)
    with pytest.raises(ValueError, match=r"out has shape \(5, 8\)"):
        fastloss.sparse_categorical_cross_entropy_grad(y, x, axis=1, out=np.empty((5, 8),
                                                                                  np.float32))
    with pytest.raises(TypeError, match="out must be a \\(grad, hess\\) tuple"):
        fastloss.sparse_categorical_cross_entropy_grad(y, x, axis=1, hessian=True, out=gb)
    with pytest.raises(ValueError, match="reduction='none'"):
        fastloss.sparse_categorical_cross_entropy_grad(y, x, axis=1, reduction="none")


def test_gradient_is_finite_for_extreme_logits():
    x = np.array([[1e4, -1e4, 0.0], [-np.inf, 0.0, 1.0]])
    loss, g = fastloss.sparse_categorical_cross_entropy_grad([1, 0], x, reduction="sum")
    assert np.isinf(loss)  # the label has probability 0 in both rows: loss +inf
    np.testing.assert_allclose(g, [[1.0, -1.0, 0.0], [-1.0, 0.268941421369995, 0.731058578630005]],
                               rtol=1e-12)
    z = np.array([1.0, 0.0])
    loss, g = fastloss.binary_cross_entropy_grad(z, np.array([-800.0, 800.0]), reduction="sum")
    assert loss == 1600.0
    np.testing.assert_array_equal(g, [-1.0, 1.0])


@pytest.mark.parametrize("n_threads", [1, 2, 3])
def test_thread_count_does_not_change_bits(rng, backend, n_threads):
    x = rng.standard_normal((3000, 37)).astype(np.float32)
    y = rng.integers(0, 37, 3000)
    ref = fastloss.sparse_categorical_cross_entropy_grad(y, x, backend=backend, n_threads=1,
                                                         hessian=True)
    got = fastloss.sparse_categorical_cross_entropy_grad(y, x, backend=backend,
                                                         n_threads=n_threads, hessian=True)
    assert ref[0] == got[0]
    np.testing.assert_array_equal(ref[1], got[1])
    np.testing.assert_array_equal(ref[2], got[2])
