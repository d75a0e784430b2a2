"""PyTorch's own OpInfo and ModuleInfo samples against ``fastloss.torch`` (issue #17).

The samples are PyTorch's (``torch.testing._internal``: ``op_db`` reference inputs, and
``module_db`` module inputs and error inputs) for the functions and classes fastloss.torch
mirrors; the comparison is PyTorch's: ``torch.testing.assert_close`` with its default
tolerances for the dtype (values, dtype, shape, device), and where PyTorch raises,
fastloss must raise an exception of the same type. float32/float64 samples are also run
with ``requires_grad=True``: the gradients of ``sum(out * v)`` (``v`` fixed random) with
respect to every input requiring grad must match PyTorch's the same way.

float16/bfloat16 samples are compared with PyTorch's native half result the same way (its
half tolerances): fastloss.torch follows PyTorch's half-precision rounding steps
(``fastloss/torch/_half_steps.py``) where PyTorch rounds intermediates. No exclusion class
exists: on torch 2.13 all 1182 samples pass (466 float16/bfloat16, 716 float32/float64,
OpInfo reference inputs and ModuleInfo inputs and error inputs together), and the 372
float32/float64 gradient samples (counts: ``PYTHONPATH=tests python
tests/dropins/test_torch_upstream.py``).

Run as a script for the counts: ``PYTHONPATH=tests python tests/dropins/test_torch_upstream.py``.
Needs ``expecttest`` (imported by ``torch.testing._internal``; in the ``compare`` extra).
"""

import collections
import warnings

import numpy as np
import pytest
from testutil import require

pytestmark = pytest.mark.frameworks

OPS = {
    "nn.functional.cross_entropy": "cross_entropy",
    "nn.functional.nll_loss": "nll_loss",
    "nn.functional.binary_cross_entropy": "binary_cross_entropy",
    "nn.functional.binary_cross_entropy_with_logits": "binary_cross_entropy_with_logits",
    "nn.functional.kl_div": "kl_div",
    "nn.functional.mse_loss": "mse_loss",
    "softmax": "softmax",
    "log_softmax": "log_softmax",
    "logsumexp": "logsumexp",
}
MODULES = ["CrossEntropyLoss", "NLLLoss", "BCELoss", "BCEWithLogitsLoss", "KLDivLoss", "MSELoss"]
DTYPES = ["float32", "float64", "float16", "bfloat16"]


def _upstream():
    torch = require("torch")
    require("expecttest")
    from torch.testing._internal.common_methods_invocations import op_db
    from torch.testing._internal.common_modules import module_db

    return torch, op_db, module_db


def _call(fn):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn(), None
    except Exception as exc:  # compared by type with PyTorch's
        return None, exc


def _map(torch, obj, fn):
    """``obj`` with every tensor in it (nested in tuples, lists, dicts) replaced by fn(t)."""
    if isinstance(obj, torch.Tensor):
        return fn(obj)
    if isinstance(obj, (list, tuple)):
        return type(obj)(_map(torch, o, fn) for o in obj)
    if isinstance(obj, dict):
        return {k: _map(torch, v, fn) for k, v in obj.items()}
    return obj


def compare(torch, run_torch, run_fastloss):
    """One sample: ``"pass"``, or AssertionError on any difference."""
    exp, exp_exc = _call(run_torch)
    got, got_exc = _call(run_fastloss)
    if exp_exc is not None or got_exc is not None:
        assert exp_exc is not None and got_exc is not None, (
            f"PyTorch: {exp_exc!r}; fastloss: {got_exc!r}")
        assert type(got_exc) is type(exp_exc), f"PyTorch: {exp_exc!r}; fastloss: {got_exc!r}"
        return "pass"
    torch.testing.assert_close(got, exp, equal_nan=True)
    return "pass"


def _grads(torch, fn, leaves, v_seed=0):
    """Gradients of sum(fn() * v) with respect to ``leaves`` (None where unused)."""
    out = fn()
    gen = torch.Generator().manual_seed(v_seed)
    v = torch.randn(out.shape, generator=gen, dtype=torch.float64).to(out.dtype)
    return torch.autograd.grad((out * v).sum(), leaves, allow_unused=True)


def op_samples(torch, op, dtype, grad):
    """(label, run_torch, run_fastloss) for the reference inputs of one OpInfo."""
    import fastloss.torch as FT

    fl = getattr(FT, OPS[op.name])
    for s in op.reference_inputs("cpu", dtype, requires_grad=grad):
        label = f"{op.name}{'.' + op.variant_test_name if op.variant_test_name else ''}: {s}"
        if grad:
            leaves = [t for t in _leaves(torch, (s.input, s.args, s.kwargs)) if t.requires_grad]
            if not leaves:
                continue
            yield (label,
                   lambda s=s, leaves=leaves: _grads(
                       torch, lambda: op.op(s.input, *s.args, **s.kwargs), leaves),
                   lambda s=s, leaves=leaves: _grads(
                       torch, lambda: fl(s.input, *s.args, **s.kwargs), leaves))
            continue
        yield (label, lambda s=s: op.op(s.input, *s.args, **s.kwargs),
               lambda s=s: fl(s.input, *s.args, **s.kwargs))


def _leaves(torch, obj):
    found = []
    _map(torch, obj, lambda t: found.append(t) or t)
    return found


def module_samples(torch, m, dtype):
    """(label, run_torch, run_fastloss) for one ModuleInfo's inputs and error inputs."""
    import fastloss.torch as FT

    cls = getattr(FT, m.module_cls.__name__)
    name = m.module_cls.__name__
    for mi in m.module_inputs_func(m, device="cpu", dtype=dtype, requires_grad=False,
                                   training=True):
        ci, fi = mi.constructor_input, mi.forward_input
        if fi is None:
            continue

        def run(mod_cls, ci=ci, fi=fi):
            return mod_cls(*ci.args, **ci.kwargs)(*fi.args, **fi.kwargs)

        yield (f"{name}({ci.kwargs}): {fi.args}", lambda run=run: run(m.module_cls),
               lambda run=run: run(cls))
    if m.module_error_inputs_func is None:
        return
    for ei in m.module_error_inputs_func(m, device="cpu", dtype=dtype, requires_grad=False,
                                         training=True):
        ci, fi = ei.module_error_input.constructor_input, ei.module_error_input.forward_input

        def run(mod_cls, ci=ci, fi=fi):
            return mod_cls(*ci.args, **ci.kwargs)(*fi.args, **fi.kwargs)

        yield (f"{name} error input ({ei.error_type.__name__}): {ci.kwargs}",
               lambda run=run: run(m.module_cls), lambda run=run: run(cls))


def run_cases(torch, cases):
    """Counts of outcomes; every failure listed in the AssertionError."""
    counts, failures = collections.Counter(), []
    for label, run_torch, run_fastloss in cases:
        try:
            counts[compare(torch, run_torch, run_fastloss)] += 1
        except AssertionError as exc:
            counts["fail"] += 1
            failures.append(f"{label[:300]}\n    {str(exc)[:400]}")
    return counts, failures


def _op(op_db, name, variant=""):
    return next(o for o in op_db if o.name == name and o.variant_test_name == variant)


OP_IDS = [(name, variant) for name in OPS for variant in
          (("", "with_dtype") if name in ("softmax", "log_softmax") else ("",))]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,variant", OP_IDS)
def test_opinfo_samples(name, variant, dtype):
    torch, op_db, _ = _upstream()
    op = _op(op_db, name, variant)
    dt = getattr(torch, dtype)
    if dt not in op.supported_dtypes("cpu"):
        pytest.skip(f"PyTorch's OpInfo has no {dtype} for {name}")
    counts, failures = run_cases(torch, op_samples(torch, op, dt, grad=False))
    assert counts["pass"] > 0
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name,variant", OP_IDS)
def test_opinfo_gradients(name, variant, dtype):
    torch, op_db, _ = _upstream()
    op = _op(op_db, name, variant)
    counts, failures = run_cases(torch, op_samples(torch, op, getattr(torch, dtype), grad=True))
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", MODULES)
def test_moduleinfo_samples(name, dtype):
    torch, _, module_db = _upstream()
    m = next(m for m in module_db if m.module_cls.__name__ == name)
    dt = getattr(torch, dtype)
    if dt not in m.dtypes:
        pytest.skip(f"PyTorch's ModuleInfo has no {dtype} for {name}")
    counts, failures = run_cases(torch, module_samples(torch, m, dt))
    assert counts["pass"] > 0
    assert not failures, "\n".join(failures)


def main():
    """Print the counts of every (op or module, dtype): samples, passed, by class."""
    import torch

    _, op_db, module_db = _upstream()
    total = collections.Counter()
    for name, variant in OP_IDS:
        op = _op(op_db, name, variant)
        for dtype in DTYPES:
            dt = getattr(torch, dtype)
            if dt in op.supported_dtypes("cpu"):
                c, _ = run_cases(torch, op_samples(torch, op, dt, grad=False))
                print(f"{name:48s} {variant:10s} {dtype:9s} {dict(c)}")
                total.update(c)
            if dtype in ("float32", "float64"):
                c, _ = run_cases(torch, op_samples(torch, op, dt, grad=True))
                print(f"{name:48s} {variant:10s} {dtype:9s} gradients {dict(c)}")
                total.update({f"grad {k}": v for k, v in c.items()})
    for name in MODULES:
        m = next(m for m in module_db if m.module_cls.__name__ == name)
        for dtype in DTYPES:
            dt = getattr(torch, dtype)
            if dt in m.dtypes:
                c, _ = run_cases(torch, module_samples(torch, m, dt))
                print(f"nn.{name:45s} {'':10s} {dtype:9s} {dict(c)}")
                total.update(c)
    print("total", dict(total))


if __name__ == "__main__":
    main()
