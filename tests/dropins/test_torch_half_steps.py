"""``fastloss.torch`` on float16/bfloat16 tensors gives PyTorch's half results (issue #17).

PyTorch rounds the intermediates of its half-precision losses to half; fastloss.torch repeats
those steps (``fastloss/torch/_half_steps.py``). The reference is torch's own function on the
same half tensors, compared bit for bit: the steps are the same float32 operations, so only
a float32 exp/log that differs by an ulp from PyTorch's vectorised one can move a result
across a half rounding boundary. Where that can happen (the log-sum-exp of a row) the test
allows a few elements one half ulp apart; everything else must be identical.
"""

import warnings

import numpy as np
import pytest

import fastloss.torch as FT

pytestmark = pytest.mark.frameworks

torch = pytest.importorskip("torch")
TF = torch.nn.functional
HALVES = [torch.float16, torch.bfloat16]
REDUCTIONS = ["none", "sum", "mean"]


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def logits(dt, *shape, seed=0):
    return (torch.randn(*shape, generator=_gen(seed)) * 4).to(dt)


def probs(dt, *shape, seed=1):
    return torch.softmax(torch.randn(*shape, generator=_gen(seed)) * 2, -1).to(dt)


def labels(n, C, seed=2, ignore=0.2, shape=None):
    g = _gen(seed)
    y = torch.randint(0, C, (n,), generator=g)
    y[torch.rand(n, generator=g) < ignore] = -100
    return y if shape is None else y.reshape(shape)


def assert_same(got, exp, max_ulp_off=0):
    """Same dtype and shape, bitwise equal; ``max_ulp_off``: how many elements may be one
    half ulp apart (a float32 exp/log ulp at a rounding boundary)."""
    assert got.dtype == exp.dtype and got.shape == exp.shape, (got.dtype, got.shape, exp.shape)
    g, e = got.reshape(-1), exp.reshape(-1)
    nan = torch.isnan(e)
    assert torch.equal(torch.isnan(g), nan)
    diff = (g != e) & ~nan
    assert int(diff.sum()) <= max_ulp_off, (int(diff.sum()), g[diff][:4], e[diff][:4])
    if diff.any():
        ulp = torch.abs(g[diff].float() - e[diff].float())
        spacing = torch.abs(torch.nextafter(e[diff], torch.full_like(e[diff], np.inf)).float()
                            - e[diff].float())
        assert bool((ulp <= spacing).all()), (g[diff], e[diff])


def both(fn_name, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return getattr(FT, fn_name)(*args, **kw), getattr(TF, fn_name)(*args, **kw)


@pytest.mark.parametrize("dt", HALVES, ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(1, 3), (37, 11), (300, 5), (64, 1000)], ids=str)
def test_cross_entropy_index(dt, reduction, shape):
    n, C = shape
    x, y, w = logits(dt, n, C), labels(n, C), (torch.rand(C, generator=_gen(4)) * 3).to(dt)
    for kw in ({}, {"weight": w}, {"label_smoothing": 0.15},
               {"weight": w, "label_smoothing": 0.3}, {"ignore_index": 1}):
        assert_same(*both("cross_entropy", x, y.clamp(min=0) if "ignore_index" in kw else y,
                          reduction=reduction, **kw))


@pytest.mark.parametrize("dt", HALVES, ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_index_nd(dt, reduction):
    """(N, C, d1, d2): PyTorch's log_softmax is not along the last dim there (float32 inside,
    rounded once) and the nll is nll_loss2d's cascade over the flat target positions."""
    x = logits(dt, 40, 7, 3, 5)
    y = labels(40 * 15, 7, shape=(40, 3, 5))
    w = (torch.rand(7, generator=_gen(4)) * 3).to(dt)
    got, exp = both("cross_entropy", x, y, w, reduction=reduction)
    assert_same(got, exp, max_ulp_off=max(1, exp.numel() // 200))


@pytest.mark.parametrize("dt", HALVES, ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_probabilities(dt, reduction):
    x, t = logits(dt, 53, 9), probs(dt, 53, 9)
    w = (torch.rand(9, generator=_gen(4)) * 3).to(dt)
    for kw in ({}, {"weight": w}, {"label_smoothing": 0.2}, {"weight": w, "label_smoothing": 0.1}):
        assert_same(*both("cross_entropy", x, t, reduction=reduction, **kw))


@pytest.mark.parametrize("dt", HALVES, ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("n", [1, 17, 4097, 70000])
def test_nll_loss_cascade(dt, reduction, n):
    """nll_loss's half partial sums flush every 16, 256, 4096, 65536 target positions (an
    ignored position skips its flush)."""
    C = 3
    x = logits(dt, n, C)
    y = labels(n, C, ignore=0.1)
    w = (torch.rand(C, generator=_gen(4)) * 2).to(dt)
    assert_same(*both("nll_loss", x, y, reduction=reduction))
    assert_same(*both("nll_loss", x, y, w, reduction=reduction))


@pytest.mark.parametrize("dt", HALVES, ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_with_logits(dt, reduction):
    x, t = logits(dt, 41, 9), probs(dt, 41, 9)
    w = torch.rand(41, 1, generator=_gen(5)).to(dt)
    pw = (torch.rand(9, generator=_gen(6)) * 3).to(dt)
    for kw in ({}, {"weight": w}, {"pos_weight": pw}, {"weight": w, "pos_weight": pw}):
        assert_same(*both("binary_cross_entropy_with_logits", x, t, reduction=reduction, **kw))


@pytest.mark.parametrize("dt", HALVES, ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_loss(dt, reduction):
    x, t = logits(dt, 41, 9), logits(dt, 41, 9, seed=7)
    w = torch.rand(41, 9, generator=_gen(5)).to(dt)
    assert_same(*both("mse_loss", x, t, reduction=reduction))
    assert_same(*both("mse_loss", x, t, reduction=reduction, weight=w))
    assert_same(*both("mse_loss", x[:1], t, reduction=reduction))  # broadcast target


@pytest.mark.parametrize("dt", HALVES, ids=str)
@pytest.mark.parametrize("shape,dim", [((5, 5), -1), ((64, 1000), 1), ((1000, 3), -1),
                                       ((7,), 0), ((5, 10, 5), -1), ((5, 10, 5), 1),
                                       ((300, 7), 0)], ids=str)
def test_log_softmax(dt, shape, dim):
    x = logits(dt, *shape)
    got, exp = FT.log_softmax(x, dim), torch.log_softmax(x, dim)
    lastdim = dim % len(shape) == len(shape) - 1
    assert_same(got, exp, max_ulp_off=0 if lastdim else max(1, exp.numel() // 200))


@pytest.mark.parametrize("dt", HALVES, ids=str)
def test_non_finite_rows(dt):
    """NaN, +-inf logits go through the same steps: PyTorch's NaN pattern."""
    x = logits(dt, 6, 4)
    x[0, 1], x[1, 2], x[2, :] = np.inf, np.nan, -np.inf
    x[3, 0] = -np.inf
    y = torch.tensor([1, 2, 0, 0, 3, -100])
    for red in REDUCTIONS:
        assert_same(*both("cross_entropy", x, y, reduction=red))
        assert_same(*both("binary_cross_entropy_with_logits", x, probs(dt, 6, 4),
                          reduction=red))
    assert_same(FT.log_softmax(x, 1), torch.log_softmax(x, 1))


EDGE = {
    "1-D": lambda F, dt: F.cross_entropy(logits(dt, 5), torch.tensor(2)),
    "1-D none": lambda F, dt: F.cross_entropy(logits(dt, 5), torch.tensor(2), reduction="none"),
    "1-D probabilities": lambda F, dt: F.cross_entropy(logits(dt, 5), probs(dt, 5)),
    "all ignored": lambda F, dt: F.cross_entropy(logits(dt, 3, 4), torch.full((3,), -100)),
    "all ignored, weight": lambda F, dt: F.cross_entropy(
        logits(dt, 3, 4), torch.full((3,), -100), torch.rand(4, generator=_gen(3)).to(dt)),
    "empty": lambda F, dt: F.cross_entropy(logits(dt, 0, 4), torch.zeros(0, dtype=torch.long)),
    "one class": lambda F, dt: F.cross_entropy(logits(dt, 3, 1), torch.zeros(3, dtype=torch.long)),
    "uint8 targets": lambda F, dt: F.cross_entropy(logits(dt, 6, 4),
                                                   labels(6, 4, ignore=0).to(torch.uint8)),
    "(N, C, d1, d2, d3) smoothing": lambda F, dt: F.cross_entropy(
        logits(dt, 2, 3, 2, 2, 2), labels(16, 3, ignore=0, shape=(2, 2, 2, 2)),
        label_smoothing=0.1, reduction="sum"),
    "(N, C, d) probabilities": lambda F, dt: F.cross_entropy(
        logits(dt, 2, 3, 4), probs(dt, 2, 4, 3).transpose(1, 2)),
    "huge logits": lambda F, dt: F.cross_entropy(
        torch.tensor([[60000.0, -60000.0], [1e4, 0.0]]).to(dt), torch.tensor([1, 0])),
    "nll 1-D": lambda F, dt: F.nll_loss(logits(dt, 5), torch.tensor(2)),
    "nll empty": lambda F, dt: F.nll_loss(logits(dt, 0, 4), torch.zeros(0, dtype=torch.long)),
    "bce 0-d": lambda F, dt: F.binary_cross_entropy_with_logits(logits(dt), probs(dt, 1)[0]),
    "bce empty": lambda F, dt: F.binary_cross_entropy_with_logits(logits(dt, 0, 3),
                                                                 probs(dt, 0, 3)),
    "bce 0-d pos_weight": lambda F, dt: F.binary_cross_entropy_with_logits(
        logits(dt, 4, 3), probs(dt, 4, 3), pos_weight=torch.tensor(2.0).to(dt)),
    "mse 0-d": lambda F, dt: F.mse_loss(logits(dt), logits(dt, seed=3)),
    "mse empty": lambda F, dt: F.mse_loss(logits(dt, 0), logits(dt, 0)),
    "mse overflow": lambda F, dt: F.mse_loss(torch.tensor([300.0, -300.0]).to(dt),
                                             torch.zeros(2).to(dt), reduction="none"),
    "log_softmax 0-d": lambda F, dt: F.log_softmax(logits(dt), 0),
    "log_softmax dtype=": lambda F, dt: F.log_softmax(logits(dt, 4, 5), 1, dtype=dt),
    "log_softmax strided": lambda F, dt: F.log_softmax(logits(dt, 6, 5)[::2, 1:], 1),
}


@pytest.mark.parametrize("dt", HALVES, ids=str)
@pytest.mark.parametrize("name", list(EDGE))
def test_edge_cases(dt, name):
    """Shapes and values at the edges: PyTorch's value, dtype and shape (or its exception)."""
    call = EDGE[name]
    try:
        exp = call(TF, dt)
    except Exception as exc:  # noqa: BLE001 - the same type must come out of fastloss
        with pytest.raises(type(exc)):
            call(FT, dt)
        return
    assert_same(call(FT, dt), exp, max_ulp_off=1 if "(N, C" in name else 0)


def test_same_result_for_any_thread_count(monkeypatch):
    """The chunks run on fastloss's threads; each writes its own rows or partial sum."""
    x = logits(torch.bfloat16, 3000, 50)
    y = labels(3000, 50)
    out = []
    for n in ("1", "2", "3"):
        monkeypatch.setenv("FASTLOSS_NUM_THREADS", n)
        out.append((FT.cross_entropy(x, y, label_smoothing=0.1, reduction="none"),
                    FT.binary_cross_entropy_with_logits(x, probs(torch.bfloat16, 3000, 50)),
                    FT.log_softmax(x, 1)))
    for other in out[1:]:
        for a, b in zip(out[0], other):
            assert torch.equal(a, b)


MIXED = {
    "mse_loss half, float32": lambda F: F.mse_loss(logits(torch.float16, 4, 3),
                                                   probs(torch.float32, 4, 3)),
    "mse_loss half, float64 none": lambda F: F.mse_loss(
        logits(torch.bfloat16, 4, 3), probs(torch.float64, 4, 3), reduction="none"),
    "mse_loss float32, half": lambda F: F.mse_loss(logits(torch.float32, 4, 3),
                                                   probs(torch.float16, 4, 3)),
    "kl_div half, float32": lambda F: F.kl_div(logits(torch.float16, 4, 3),
                                               probs(torch.float32, 4, 3), reduction="sum"),
    "kl_div half, float32 none": lambda F: F.kl_div(
        logits(torch.bfloat16, 4, 3), probs(torch.float32, 4, 3), reduction="none"),
    "binary_cross_entropy half, float32": lambda F: F.binary_cross_entropy(
        probs(torch.float16, 4, 3), probs(torch.float32, 4, 3, seed=5)),
    "binary_cross_entropy bfloat16, float16": lambda F: F.binary_cross_entropy(
        probs(torch.bfloat16, 4, 3), probs(torch.float16, 4, 3, seed=5)),
    "binary_cross_entropy float32, half": lambda F: F.binary_cross_entropy(
        probs(torch.float32, 4, 3), probs(torch.float16, 4, 3, seed=5)),
}


@pytest.mark.parametrize("name", list(MIXED))
def test_mixed_dtypes_promote_or_raise_as_torch(name):
    """A half tensor with a float32/float64 one: PyTorch's promoted result dtype (mse_loss,
    kl_div compute in it), or its error (binary_cross_entropy wants equal dtypes)."""
    call = MIXED[name]
    try:
        exp = call(TF)
    except RuntimeError as exc:
        with pytest.raises(RuntimeError, match=f"^{exc}$"):
            call(FT)
        return
    got = call(FT)
    assert got.dtype == exp.dtype
    torch.testing.assert_close(got, exp)


@pytest.mark.parametrize("dt", HALVES, ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_with_logits_mixed_dtypes(dt, reduction):
    """Every half/float32 mix of input, target, weight and pos_weight: PyTorch rounds where
    an op's result is half (in place on the input or the target) and returns the target's
    dtype. Half results bit for bit, float32 ones at float32's tolerance."""
    import itertools

    for xd, td, wd, pwd in itertools.product((dt, torch.float32), repeat=4):
        x, t = logits(xd, 37, 5), probs(td, 37, 5)
        w = torch.rand(37, 1, generator=_gen(5)).to(wd)
        pw = (torch.rand(5, generator=_gen(6)) * 3).to(pwd)
        for kw in ({}, {"weight": w}, {"pos_weight": pw}, {"weight": w, "pos_weight": pw}):
            got, exp = both("binary_cross_entropy_with_logits", x, t, reduction=reduction, **kw)
            if exp.dtype == torch.float32:
                assert got.dtype == exp.dtype
                torch.testing.assert_close(got, exp)
            else:
                assert_same(got, exp)


@pytest.mark.parametrize("dt", HALVES, ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_probabilities_mixed_dtypes(dt, reduction):
    """A half input with half or float32 probability targets and weights: the log_softmax
    is half, a product is half only if both factors are, so is the result."""
    import itertools

    for td, wd in itertools.product((dt, torch.float32), repeat=2):
        for shape in ((23, 6), (4, 6, 3)):
            x = logits(dt, *shape)
            t = probs(td, shape[0], *shape[2:], shape[1]).movedim(-1, 1)  # over the classes
            w = (torch.rand(6, generator=_gen(4)) * 2).to(wd)
            for kw in ({}, {"weight": w}, {"label_smoothing": 0.2},
                       {"weight": w, "label_smoothing": 0.2}):
                got, exp = both("cross_entropy", x, t, reduction=reduction, **kw)
                if exp.dtype == torch.float32:
                    assert got.dtype == exp.dtype
                    torch.testing.assert_close(got, exp)
                else:
                    assert_same(got, exp, max_ulp_off=1 if len(shape) > 2 else 0)


@pytest.mark.parametrize("half", ["float16", "bfloat16"])
def test_rounding_is_round_to_nearest_even(half):
    """``rnd``'s bit arithmetic against NumPy's (float16) and ml_dtypes' (bfloat16) casts on
    random float32 bit patterns and the edges: ties, overflow to inf, subnormals, NaN."""
    from fastloss.torch._half_steps import rnd

    dt = np.float16 if half == "float16" else pytest.importorskip("ml_dtypes").bfloat16
    rng = np.random.default_rng(7)
    a = np.concatenate([
        rng.integers(0, 2**32, 200_000, dtype=np.uint64).astype(np.uint32).view(np.float32),
        np.float32([0, -0.0, 65504, 65519.99, 65520, 65536, 1e-8, 6.1e-5, 2**-14, -2**-24,
                    1 + 2**-11, 1 + 3 * 2**-11, 1 + 2**-8, 3.4e38, np.inf, -np.inf, np.nan]),
        (rng.standard_normal(20_000) * 10).astype(np.float32)])
    with np.errstate(over="ignore", invalid="ignore"):
        ref = a.astype(dt).astype(np.float32)
    got = rnd(a, half)
    same = (got.view(np.uint32) == ref.view(np.uint32)) | (np.isnan(got) & np.isnan(ref))
    assert same.all(), (a[~same][:4], got[~same][:4], ref[~same][:4])
