"""``fastloss.torch`` on float16/bfloat16 tensors read through zero-copy views (issue #18).

The half tensor is handed to the kernels as a NumPy float16/bfloat16 view that they widen
block by block. Before, it was copied to float32 first; since widening is exact, the
results must be bit for bit those of the copy path, errors included. For the functions
computed in float32 and rounded once (kl_div, logsumexp, softmax, binary_cross_entropy) the
reference is the same call on ``t.float()`` rounded once to the half dtype. cross_entropy,
nll_loss, binary_cross_entropy_with_logits, mse_loss and log_softmax follow PyTorch's
half-precision rounding steps (``fastloss/torch/_half_steps.py``, whose agreement with torch
is tested in ``test_torch_half_steps.py`` and ``test_torch_upstream.py``); their reference
is the same call with the view disabled (the ``.float()`` copy path). These tests pin
"view == copy", not accuracy against PyTorch.
"""

import tracemalloc
import warnings

import numpy as np
import pytest

import fastloss.torch as FT

pytestmark = pytest.mark.frameworks

torch = pytest.importorskip("torch")
HALVES = [torch.float16, torch.bfloat16]


def adversarial(dt):
    """Values that stress the widening: NaN, infinities, the float16 extremes (+-65504),
    float16 and bfloat16 subnormals, bfloat16's large finite values and signed zeros."""
    v = [np.nan, np.inf, -np.inf, 65504.0, -65504.0, 6e-8, -6e-8, 1e-40, -1e-40, 0.0, -0.0,
         3e38, -3e38, 88.7, -104.0]
    return torch.tensor(v, dtype=torch.float64).to(dt)


def logits(dt, n=97, C=13, seed=0, special=True):
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(n, C, generator=g, dtype=torch.float64) * 4).to(dt)
    if special:
        sv = adversarial(dt)
        x[torch.arange(len(sv)), torch.arange(len(sv)) % C] = sv  # one special per row
    return x


def probs(dt, shape, seed=1, special=True):
    g = torch.Generator().manual_seed(seed)
    p = torch.rand(shape, generator=g, dtype=torch.float64).to(dt)
    if special:
        flat = p.view(-1)
        sv = torch.tensor([0.0, 1.0, 6e-8, 1e-40, 1.0 - 2 ** -11, -0.0], dtype=torch.float64)
        flat[:len(sv)] = sv.to(dt)
    return p


def as_float(a):
    if isinstance(a, torch.Tensor) and a.dtype in (torch.float16, torch.bfloat16):
        return a.float()
    return a


def outcome(fn, args, kw):
    """The result tensor, or the exception's type and message."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return fn(*args, **kw)
        except Exception as e:  # the copy path's error must be the view path's too
            return (type(e), str(e))


STEPS = (FT.cross_entropy, FT.nll_loss, FT.binary_cross_entropy_with_logits, FT.mse_loss,
         FT.log_softmax)  # PyTorch's half rounding steps: the copy path is the reference


def copy_path_outcome(fn, args, kw):
    """``outcome`` with the half views disabled: ``.float()`` copies, as before the views."""
    saved = FT.torch_half_view

    def no_view(t):
        raise ImportError("view disabled by the test")

    FT.torch_half_view = no_view
    try:
        return outcome(fn, args, kw)
    finally:
        FT.torch_half_view = saved


def assert_same_as_copy(fn, args, kw, want_dtype):
    got = outcome(fn, args, kw)
    if fn in STEPS:
        ref = copy_path_outcome(fn, args, kw)
    else:
        ref = outcome(fn, [as_float(a) for a in args], {k: as_float(v) for k, v in kw.items()})
    if isinstance(ref, tuple):
        assert got == ref
        return
    assert not isinstance(got, tuple), got
    ref = ref.to(want_dtype) if ref.is_floating_point() else ref
    assert got.dtype == want_dtype and got.shape == ref.shape, (got.dtype, got.shape, ref.shape)
    bits = {2: torch.int16, 4: torch.int32, 8: torch.int64}[got.element_size()]
    gb, rb = got.contiguous().view(bits), ref.contiguous().view(bits)
    nan = torch.isnan(got)
    assert torch.equal(nan, torch.isnan(ref))
    # NaN payloads may differ between kernels and NumPy fallbacks: compare the rest bitwise
    bad = (gb != rb) & ~nan
    assert not bad.any(), (f"{int(bad.sum())} of {got.numel()} differ; first: "
                           f"{got.reshape(-1)[bad.reshape(-1)][0]!r} vs "
                           f"{ref.reshape(-1)[bad.reshape(-1)][0]!r}")


def labels(n, C, seed=2, ignore=False):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, C, (n,), generator=g)
    if ignore:
        y[::7] = -100
    return y


REDUCTIONS = ("none", "mean", "sum")


@pytest.mark.parametrize("special", [False, True], ids=["random", "adversarial"])
@pytest.mark.parametrize("dt", HALVES, ids=str)
class TestSameAsFloat32Copy:
    def test_cross_entropy_index(self, dt, special):
        x = logits(dt, special=special)
        n, C = x.shape
        w = probs(dt, (C,), special=False) + 0.5
        for red in REDUCTIONS:
            for kw in ({}, {"weight": w}, {"ignore_index": -100}, {"label_smoothing": 0.1},
                       {"weight": w, "label_smoothing": 0.2}):
                y = labels(n, C, ignore="ignore_index" in kw)
                assert_same_as_copy(FT.cross_entropy, [x, y], dict(kw, reduction=red), dt)
        x3 = logits(dt, n=12 * 5, C=7, special=special).reshape(12, 5, 7).transpose(1, 2)
        y3 = labels(12 * 5, 7).reshape(12, 5)
        assert_same_as_copy(FT.cross_entropy, [x3, y3], {}, dt)  # (N, C, d): strided view

    def test_cross_entropy_probabilities(self, dt, special):
        x = logits(dt, special=special)
        t = probs(dt, x.shape, special=False)
        for red in REDUCTIONS:
            assert_same_as_copy(FT.cross_entropy, [x, t], {"reduction": red}, dt)
            # a float32 target: PyTorch's products and result are float32
            assert_same_as_copy(FT.cross_entropy, [x, t.float()], {"reduction": red},
                                torch.float32)

    def test_nll_loss(self, dt, special):
        x = logits(dt, special=special)
        n, C = x.shape
        w = probs(dt, (C,), special=False)
        for red in REDUCTIONS:
            for kw in ({}, {"weight": w}, {"ignore_index": -100}):
                y = labels(n, C, ignore=True)
                assert_same_as_copy(FT.nll_loss, [x, y], dict(kw, reduction=red), dt)

    def test_binary_cross_entropy(self, dt, special):
        p, t = probs(dt, (41, 9), special=special), probs(dt, (41, 9), seed=5, special=False)
        w = probs(dt, (9,), seed=6, special=False)
        for red in REDUCTIONS:
            assert_same_as_copy(FT.binary_cross_entropy, [p, t], {"reduction": red}, dt)
            assert_same_as_copy(FT.binary_cross_entropy, [p, t], {"reduction": red,
                                                                   "weight": w}, dt)
        bad = p.clone()
        bad[0, 0] = float("nan")
        assert_same_as_copy(FT.binary_cross_entropy, [bad, t], {}, dt)  # same error

    def test_bce_with_logits(self, dt, special):
        x = logits(dt, n=41, C=9, special=special)
        t = probs(dt, x.shape, special=False)
        pw = probs(dt, (9,), seed=7, special=False) + 1
        w = probs(dt, (41, 1), seed=8, special=False)
        for red in REDUCTIONS:
            for kw in ({}, {"pos_weight": pw}, {"weight": w}, {"weight": w, "pos_weight": pw}):
                assert_same_as_copy(FT.binary_cross_entropy_with_logits, [x, t],
                                    dict(kw, reduction=red), dt)
            # PyTorch's result has the target's dtype (its ops work in place on 1 - target)
            assert_same_as_copy(FT.binary_cross_entropy_with_logits, [x, t.float()],
                                {"reduction": red}, torch.float32)

    def test_kl_div(self, dt, special):
        x = logits(dt, n=41, C=9, special=special)
        t = probs(dt, x.shape, special=False)
        for red in ("none", "mean", "sum", "batchmean"):
            for lt in (False, True):
                assert_same_as_copy(FT.kl_div, [x, t], {"reduction": red, "log_target": lt}, dt)

    def test_mse_loss(self, dt, special):
        x = logits(dt, n=41, C=9, special=special)
        t = logits(dt, n=41, C=9, seed=3, special=False)
        w = probs(dt, x.shape, special=False)
        for red in REDUCTIONS:
            assert_same_as_copy(FT.mse_loss, [x, t], {"reduction": red}, dt)
            assert_same_as_copy(FT.mse_loss, [x, t], {"reduction": red, "weight": w}, dt)

    def test_logsumexp(self, dt, special):
        x = logits(dt, special=special)
        for dim, keep in ((1, False), (0, True), ((0, 1), False), (-1, True)):
            assert_same_as_copy(FT.logsumexp, [x, dim], {"keepdim": keep}, dt)

    @pytest.mark.parametrize("fn", [FT.softmax, FT.log_softmax], ids=["softmax", "log_softmax"])
    def test_softmax(self, dt, special, fn):
        x = logits(dt, special=special)
        for dim in (0, 1, -1):
            assert_same_as_copy(fn, [x], {"dim": dim}, dt)
        for want in (torch.float32, torch.float64, torch.float16, torch.bfloat16):
            assert_same_as_copy(fn, [x], {"dim": 1, "dtype": want}, want)
        assert_same_as_copy(fn, [x[:, :0]], {"dim": 1}, dt)  # empty


# --------------------------------------------------------------------------- no float32 copy

N, C = 1 << 11, 1 << 9  # 1M logits: a float32 copy would be 4 MiB
CHUNK = 1 << 16  # widening chunk for the test (the default, 4M elements, exceeds the input)


def _calls(dt, N=N, C=C):
    x = logits(dt, n=N, C=C, special=False)
    y = labels(N, C)
    t = probs(dt, (N, C), special=False)
    return {
        "cross_entropy": lambda: FT.cross_entropy(x, y),
        "cross_entropy_none": lambda: FT.cross_entropy(x, y, reduction="none"),
        "nll_loss": lambda: FT.nll_loss(x, y),
        "bce_with_logits": lambda: FT.binary_cross_entropy_with_logits(x, t),
        "mse_loss": lambda: FT.mse_loss(x, t),
        "kl_div": lambda: FT.kl_div(x, t, reduction="batchmean", log_target=True),
        "logsumexp": lambda: FT.logsumexp(x, 1),
    }


def _forbid_full_float(monkeypatch):
    """torch's allocations are not traced by tracemalloc: fail on a full-size ``.float()``."""
    real_float = torch.Tensor.float

    def no_float(self, *a, **k):
        assert self.numel() < N * C, "full-size float32 copy of a half tensor"
        return real_float(self, *a, **k)

    monkeypatch.setattr(torch.Tensor, "float", no_float)


@pytest.mark.parametrize("dt", HALVES, ids=str)
def test_no_float32_copy_of_the_input(dt, monkeypatch):
    """Neither torch's ``.float()`` nor a NumPy float32 copy of the whole input: NumPy's
    traced peak stays under half the size of a float32 copy (the widening works in chunks
    of ``HALF_CHUNK_ELEMS``, made small here so that a small input has many)."""
    import fastloss.losses._run as run

    monkeypatch.setattr(run, "HALF_CHUNK_ELEMS", CHUNK)
    for call in _calls(dt, 64, 16).values():
        call()  # first calls compile kernels and import modules: not what is measured
    calls = _calls(dt)
    copy_bytes = 4 * N * C
    _forbid_full_float(monkeypatch)
    for name, call in calls.items():
        tracemalloc.start()
        try:
            call()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < copy_bytes / 2, (name, peak / 2**20)


def test_float_copy_detector_fires(monkeypatch):
    """The patched ``.float()`` above does catch the old copy path (a test that can fail)."""
    x = logits(torch.bfloat16, n=8, C=4, special=False)
    calls = []
    real_float = torch.Tensor.float
    monkeypatch.setattr(torch.Tensor, "float",
                        lambda self, *a, **k: calls.append(self.numel()) or real_float(self))
    FT.cross_entropy(x, labels(8, 4))
    assert calls == []  # the view path
    FT.cross_entropy(x, labels(8, 4), weight=torch.ones(4, dtype=torch.bfloat16))
    assert calls == [4]  # a half weight is still copied (C values)


# --------------------------------------------------------------------------- autograd


def _copy_path(monkeypatch):
    """Make ``fastloss.torch`` copy half tensors to float32 as it did before the views
    (its fallback when the view cannot be made): the reference for the gradients."""
    def no_view(t):
        raise ImportError("view disabled by the test")

    monkeypatch.setattr(FT, "torch_half_view", no_view)


def _value_and_grad(fn, x, args, kw):
    x = x.detach().clone().requires_grad_(True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = fn(x, *args, **kw)
        out.backward(torch.ones_like(out))
    return out.detach(), x.grad


def _same_bits(a, b):
    bits = {2: torch.int16, 4: torch.int32, 8: torch.int64}[a.element_size()]
    assert a.dtype == b.dtype and a.shape == b.shape
    nan = torch.isnan(a)
    assert torch.equal(nan, torch.isnan(b))
    bad = (a.contiguous().view(bits) != b.contiguous().view(bits)) & ~nan
    assert not bad.any(), f"{int(bad.sum())} of {a.numel()} differ"


def _grad_cases(dt, special):
    x = logits(dt, n=41, C=9, special=special)
    n, C = x.shape
    t = probs(dt, x.shape, special=False)
    w = probs(dt, (C,), special=False) + 0.5
    y = labels(n, C, ignore=True)
    out = []
    for red in REDUCTIONS:
        out += [
            ("ce", FT.cross_entropy, x, (y,), {"reduction": red}),
            ("ce_w_ls", FT.cross_entropy, x, (y,), {"reduction": red, "weight": w,
                                                     "label_smoothing": 0.1}),
            ("ce_probs", FT.cross_entropy, x, (t,), {"reduction": red}),
            ("nll", FT.nll_loss, x, (y,), {"reduction": red, "weight": w}),
            ("bcel", FT.binary_cross_entropy_with_logits, x, (t,), {"reduction": red}),
            ("kl", FT.kl_div, x, (t,), {"reduction": red}),
            ("mse", FT.mse_loss, x, (t,), {"reduction": red}),
        ]
    out += [("lse", FT.logsumexp, x, (1,), {}), ("softmax", FT.softmax, x, (), {"dim": 1}),
            ("log_softmax", FT.log_softmax, x, (), {"dim": 1})]
    return out


@pytest.mark.parametrize("special", [False, True], ids=["random", "adversarial"])
@pytest.mark.parametrize("dt", HALVES, ids=str)
def test_autograd_same_as_float32_copy(dt, special, monkeypatch):
    """Values and input gradients (float32 from the kernels, cast to the input dtype) of
    the view path equal those of the copy path bit for bit."""
    got = [(name, _value_and_grad(fn, x, a, kw)) for name, fn, x, a, kw in _grad_cases(dt, special)]
    _copy_path(monkeypatch)
    for (name, (v, g)), (_, fn, x, a, kw) in zip(got, _grad_cases(dt, special)):
        rv, rg = _value_and_grad(fn, x, a, kw)
        assert g.dtype == dt, name
        _same_bits(v, rv)
        _same_bits(g, rg)


def test_copy_path_reference_is_the_copy_path(monkeypatch):
    """The reference above really takes ``.float()`` (so the comparison is not vacuous)."""
    x = logits(torch.bfloat16, n=8, C=4, special=False)
    seen = []
    real_float = torch.Tensor.float
    _copy_path(monkeypatch)
    monkeypatch.setattr(torch.Tensor, "float",
                        lambda self, *a, **k: seen.append(self.numel()) or real_float(self))
    FT.cross_entropy(x, labels(8, 4))
    assert seen == [32]


@pytest.mark.parametrize("dt", HALVES, ids=str)
def test_backward_no_float32_copy_of_the_input(dt, monkeypatch):
    """The fused cross-entropy forward+gradient reads the half view in chunks: NumPy's peak
    is the float32 gradient it returns plus well under a float32 copy of the input."""
    import fastloss.losses._run as run

    monkeypatch.setattr(run, "HALF_CHUNK_ELEMS", CHUNK)
    small = logits(dt, n=64, C=16, special=False).requires_grad_(True)
    FT.cross_entropy(small, labels(64, 16)).backward()  # compile first
    x = logits(dt, n=N, C=C, special=False).requires_grad_(True)
    y = labels(N, C)
    _forbid_full_float(monkeypatch)
    tracemalloc.start()
    try:
        FT.cross_entropy(x, y).backward()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert x.grad.dtype == dt
    copy_bytes = 4 * N * C
    assert peak < copy_bytes * 1.5, peak / 2**20  # gradient (1x) + chunks, not + a copy (2x)


@pytest.mark.parametrize("fn", [FT.softmax, FT.log_softmax], ids=["softmax", "log_softmax"])
def test_softmax_half_result_not_copied_twice(fn, monkeypatch):
    """A half result is rounded straight from the kernels' float32 output: NumPy's peak is
    that output (1x float32), not a second float32 copy of it (2x)."""
    import fastloss.losses._run as run

    monkeypatch.setattr(run, "HALF_CHUNK_ELEMS", CHUNK)
    fn(logits(torch.bfloat16, n=64, C=16, special=False), dim=1)
    x = logits(torch.bfloat16, n=N, C=C, special=False)
    _forbid_full_float(monkeypatch)
    tracemalloc.start()
    try:
        out = fn(x, dim=1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert out.dtype == torch.bfloat16
    assert peak < 4 * N * C * 1.5, peak / 2**20


def test_float32_result_does_not_alias_the_input():
    """Where no cast happens the result is still a copy (a float32 input's empty softmax is
    returned as it is computed: it must not share the caller's memory)."""
    x = torch.zeros(3, 0)
    out = FT.softmax(x, dim=1)
    out2 = FT.softmax(torch.zeros(4, 3), dim=1, dtype=torch.float32)
    assert out.shape == (3, 0) and torch.equal(out2, torch.full((4, 3), 1 / 3))
    y = torch.randn(5, 3)
    got = FT.log_softmax(y, dim=1)
    assert got.data_ptr() != y.data_ptr()


def test_numpy_half_arrays_compute_in_float32():
    """NumPy float16 and (now accepted) ml_dtypes bfloat16 arrays: NumPy in, float32 out,
    the values of the float32 call on the widened array (bfloat16 used to be refused as
    'not implemented')."""
    from _zoo import half_dtypes

    rng = np.random.default_rng(4)
    x32 = rng.standard_normal((23, 7)).astype(np.float32) * 5
    y = rng.integers(0, 7, 23)
    for dt in half_dtypes():
        x = x32.astype(dt)
        xw = x.astype(np.float32)
        for fn, args, kw in ((FT.cross_entropy, (y,), {}),
                             (FT.cross_entropy, (y,), {"reduction": "none"}),
                             (FT.nll_loss, (y,), {"reduction": "sum"}),
                             (FT.softmax, (), {"dim": 1}), (FT.logsumexp, (1,), {}),
                             (FT.binary_cross_entropy_with_logits, (np.ones_like(x32),), {})):
            got, ref = np.asarray(fn(x, *args, **kw)), np.asarray(fn(xw, *args, **kw))
            assert got.dtype == np.float32 and np.array_equal(got, ref, equal_nan=True)
