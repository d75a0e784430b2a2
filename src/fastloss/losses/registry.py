"""One row per loss: every fact about a loss that the code outside its kernel needs.

The public functions, the gradients, :class:`fastloss.LossAccumulator`, ``fastloss.evaluate``,
``fastloss.dask``, the CLI and the benchmarks read these rows instead of comparing loss
names. Adding a loss is adding one row here (plus its kernel in each backend, its
reference in ``kernels/reference``, its ``*_call`` builder and its public function).
"""

import functools
import inspect
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from fastloss._dispatch import resolve_threads
from fastloss._validation import check_nan_policy
from fastloss.losses import functions as _api
from fastloss.losses import gradients as _grad

__all__ = ["LOSSES", "STREAMING", "LossSpec", "loss_name", "loss_options", "loss_specs",
           "options_json"]

# keywords given per chunk to a LossAccumulator, not fixed as options
_PER_CHUNK = ("y_true", "y_pred", "sample_weight")


@dataclass(frozen=True)
class LossSpec:
    r"""Every fact about one loss, in one row of :data:`LOSSES`.

    Parameters
    ----------
    name, func, kernel : str, callable, str
        Public name, public function, name in the kernel contract (``"sparse_ce"``).
    has_class_axis : bool
        False for element-wise losses (BCE): ``reduction="none"`` keeps ``y_pred``'s shape.
    make, variants, equivalents
        Example data maker ``make(rng, n, c, dtype, variant)``, the option sets the tests and
        benchmarks sweep, and the frameworks' names for the docs table.
    gradient, prepare : callable
        ``fastloss.<name>_grad``, and ``prepare(y_true, y_pred, **options, trusted=False)``
        returning the validated ``KernelCall`` that the function, gradient and accumulator run.
    label_kind : {'index', 'dense'}
        One class index per row, or targets of ``y_pred``'s shape.
    classification, multilabel : bool
        Accuracy and per-class tables apply; dense 0/1 targets of independent columns apply.
    logits_option : str or None
        The option saying ``y_pred`` holds logits (``'from_logits'``, ``'log_input'``).
    target_domain : str
        ``'indices'``, ``'unit_interval'``, ``'unit_interval_unless_log_target'`` or ``'real'``.
    complement_log : bool
        The loss also takes ``log(1 - p)``, so a clip acts at both ends.
    streaming : bool
        ``LossAccumulator`` (and ``fastloss.evaluate``) support it.

    See Also
    --------
    loss_specs : the losses and options of an evaluation.

    Notes
    -----
    The evaluation, dask and bench code read these fields instead of comparing loss names.

    Examples
    --------
    >>> import fastloss
    >>> spec = fastloss.LOSSES["kl_divergence"]
    >>> spec.reads_probabilities({"log_input": False}), spec.unit_targets({"log_target": True})
    (True, False)
    """

    name: str  # public name: fastloss.<name>
    func: Callable  # the public function
    kernel: str  # name in the kernel contract ("sparse_ce")
    has_class_axis: bool  # False: element-wise (reduction "none" keeps y_pred's shape)
    make: Callable  # make(rng, n, c, dtype, variant) -> (y_true, y_pred, kwargs)
    variants: tuple  # option sets the tests and benchmarks sweep
    equivalents: dict = field(default_factory=dict)  # framework -> name, for the docs table
    gradient: Callable | None = None  # fastloss.<name>_grad
    prepare: Callable | None = None  # (y_true, y_pred, **options, trusted=False) -> the
    # validated KernelCall that the function, its gradient and the accumulator all run
    label_kind: str = "dense"  # "index": one class index per row; "dense": y_pred's shape
    classification: bool = True  # y_pred scores classes: accuracy and per-class tables apply
    multilabel: bool = False  # dense 0/1 targets of independent columns make sense (BCE, MSE)
    logits_option: str | None = None  # the option saying y_pred is not probabilities
    target_domain: str = "real"  # "indices", "unit_interval", "unit_interval_unless_log_target"
    complement_log: bool = False  # also takes log(1 - p): a clip acts at both ends (BCE)
    streaming: bool = True  # LossAccumulator / fastloss.evaluate support it

    @property
    def defaults(self):
        """The public function's options and their defaults (``sample_weight`` excluded)."""
        return dict(_defaults(self.func))

    def reads_probabilities(self, options):
        """Does ``y_pred`` hold probabilities (to lie in [0, 1]) under these options?"""
        return self.logits_option is not None and not options.get(self.logits_option, False)

    def unit_targets(self, options):
        """Must ``y_true`` lie in [0, 1] under these options?"""
        if self.target_domain == "unit_interval_unless_log_target":
            return not options.get("log_target", False)
        return self.target_domain == "unit_interval"


@functools.lru_cache(maxsize=None)
def _defaults(func):
    sig = inspect.signature(func)
    return {p.name: p.default for p in sig.parameters.values() if p.name not in _PER_CHUNK}


def _logits(rng, n, c, dtype, scale=3.0):
    return (rng.standard_normal((n, c)) * scale).astype(dtype)


def _probs(rng, n, c, dtype):
    e = np.exp(rng.standard_normal((n, c)) * 2.0)
    return (e / e.sum(axis=1, keepdims=True)).astype(dtype)


def _make_sparse(rng, n, c, dtype, variant):
    y = rng.integers(0, c, n)
    kw = dict(variant)
    x = _logits(rng, n, c, dtype) if kw.get("from_logits") else _probs(rng, n, c, dtype)
    if kw.pop("weighted", False):
        kw["sample_weight"] = rng.uniform(0, 2, n)
        kw["class_weight"] = rng.uniform(0.5, 2, c)
    if "ignore_index" in kw:
        y[rng.random(n) < 0.2] = kw["ignore_index"]
    return y, x, kw


def _make_categorical(rng, n, c, dtype, variant):
    kw = dict(variant)
    t = _probs(rng, n, c, dtype)
    x = _logits(rng, n, c, dtype) if kw.get("from_logits") else _probs(rng, n, c, dtype)
    if kw.pop("weighted", False):
        kw["sample_weight"] = rng.uniform(0, 2, n)
        kw["class_weight"] = rng.uniform(0.5, 2, c)
    return t, x, kw


def _make_bce(rng, n, c, dtype, variant):
    kw = dict(variant)
    z = (rng.random((n, c)) < 0.3).astype(dtype)
    x = _logits(rng, n, c, dtype) if kw.get("from_logits") else rng.random((n, c)).astype(dtype)
    if kw.pop("weighted", False):
        kw["sample_weight"] = rng.uniform(0, 2, n)
        kw["pos_weight"] = rng.uniform(0.5, 3, c)
    return z, x, kw


def _make_kl(rng, n, c, dtype, variant):
    kw = dict(variant)
    t = _probs(rng, n, c, dtype)
    t[t < 0.01] = 0
    x = _probs(rng, n, c, dtype)
    if kw.get("log_input"):
        x = np.log(x)
    if kw.pop("weighted", False):
        kw["sample_weight"] = rng.uniform(0, 2, n)
    return t, x, kw


def _make_mse(rng, n, c, dtype, variant):
    kw = dict(variant)
    t = rng.standard_normal((n, c)).astype(dtype)
    x = rng.standard_normal((n, c)).astype(dtype)
    if kw.pop("weighted", False):
        kw["sample_weight"] = rng.uniform(0, 2, n)
        kw["output_weight"] = rng.uniform(0.1, 1, c)
    return t, x, kw


LOSSES = {
    row.name: row
    for row in [
        LossSpec("sparse_categorical_cross_entropy", _api.sparse_categorical_cross_entropy,
                 "sparse_ce", True, _make_sparse,
                 ({"from_logits": True}, {"from_logits": True, "weighted": True},
                  {"from_logits": True, "ignore_index": -100, "label_smoothing": 0.1,
                   "z_loss": 1e-4},
                  {"from_logits": False}, {"from_logits": False, "clip": "keras"},
                  {"from_logits": False, "clip": "torch", "label_smoothing": 0.2}),
                 {"keras": "SparseCategoricalCrossentropy",
                  "torch": "F.cross_entropy (index targets)",
                  "scipy": "-log_softmax[label]", "sklearn": "log_loss (probabilities)"},
                 gradient=_grad.sparse_categorical_cross_entropy_grad,
                 prepare=_api.prepare_sparse, label_kind="index", logits_option="from_logits",
                 target_domain="indices"),
        LossSpec("categorical_cross_entropy", _api.categorical_cross_entropy, "categorical_ce",
                 True, _make_categorical,
                 ({"from_logits": True},
                  {"from_logits": True, "weighted": True, "label_smoothing": 0.1},
                  {"from_logits": False}, {"from_logits": False, "clip": "keras"}),
                 {"keras": "CategoricalCrossentropy",
                  "torch": "F.cross_entropy (probability targets)",
                  "scipy": "-(t * log_softmax).sum", "sklearn": "log_loss"},
                 gradient=_grad.categorical_cross_entropy_grad, prepare=_api.prepare_categorical,
                 logits_option="from_logits", target_domain="unit_interval"),
        LossSpec("binary_cross_entropy", _api.binary_cross_entropy, "bce", False, _make_bce,
                 ({"from_logits": True},
                  {"from_logits": True, "weighted": True, "label_smoothing": 0.1},
                  {"from_logits": False}, {"from_logits": False, "clip": "keras2"},
                  {"from_logits": False, "clip": "torch"}),
                 {"keras": "BinaryCrossentropy", "torch": "F.binary_cross_entropy(_with_logits)",
                  "scipy": "-(z*log_expit(x) + (1-z)*log_expit(-x))",
                  "sklearn": "log_loss (binary)"},
                 gradient=_grad.binary_cross_entropy_grad, prepare=_api.prepare_bce,
                 multilabel=True, logits_option="from_logits", target_domain="unit_interval",
                 complement_log=True),
        LossSpec("kl_divergence", _api.kl_divergence, "kl", True, _make_kl,
                 ({}, {"weighted": True}, {"log_input": True}, {"clip": "keras"}),
                 {"keras": "KLDivergence", "torch": "F.kl_div (log input)",
                  "scipy": "rel_entr(...).sum", "sklearn": "-"},
                 gradient=_grad.kl_divergence_grad, prepare=_api.prepare_kl,
                 logits_option="log_input", target_domain="unit_interval_unless_log_target"),
        LossSpec("mean_squared_error", _api.mean_squared_error, "mse", True, _make_mse,
                 ({}, {"weighted": True}),
                 {"keras": "MeanSquaredError", "torch": "F.mse_loss", "scipy": "-",
                  "sklearn": "mean_squared_error"},
                 gradient=_grad.mean_squared_error_grad, prepare=_api.prepare_mse,
                 classification=False, multilabel=True),
    ]
}

# the losses a LossAccumulator (and so fastloss.evaluate and fastloss.dask) can stream
STREAMING = tuple(name for name, spec in LOSSES.items() if spec.streaming)


def loss_name(loss):
    """The public name of ``loss`` (a name, or the public function itself)."""
    name = getattr(loss, "__name__", loss)
    if not isinstance(name, str) or name not in STREAMING:
        raise ValueError(f"loss={loss!r} is not a fastloss loss with a streaming reduction; "
                         f"choose one of {', '.join(STREAMING)}")
    return name


def loss_options(name, options):
    """Check ``options`` against the public function's keywords; return them all."""
    d = LOSSES[name].defaults
    unknown = sorted(set(options) - set(d))
    if unknown:
        raise TypeError(f"{name}() has no option {', '.join(map(repr, unknown))}; its options are "
                        f"{', '.join(sorted(d))} (sample_weight is given per chunk)")
    opts = dict(d)
    opts.update(options)
    if opts["reduction"] not in ("mean", "sum"):
        raise ValueError(f"reduction={opts['reduction']!r}: a LossAccumulator reduces to 'mean' "
                         "or 'sum' (per-sample values need no accumulator)")
    check_nan_policy(opts["nan_policy"])
    resolve_threads(opts["n_threads"])  # validated now, resolved when the chunks come
    return opts


def loss_specs(loss, options):
    """``[(name, options)]`` from a name, a list of names or ``{name: {options}}``.

    ``options`` are shared keywords: each loss takes those its function has; a keyword
    no requested loss takes is an error.
    """
    if isinstance(loss, str) or callable(loss):
        items = [(loss, {})]
    elif isinstance(loss, Mapping):
        items = list(loss.items())
    else:
        items = [(x, {}) if not isinstance(x, tuple) else x for x in loss]
    if not items:
        raise ValueError("loss: name at least one loss")
    specs, used, seen = [], set(), set()
    for item, own in items:
        name = loss_name(item)
        if name in seen:
            raise ValueError(f"loss {name!r} is named twice")
        seen.add(name)
        defaults = LOSSES[name].defaults
        opts = {k: v for k, v in options.items() if k in defaults}
        used |= set(opts)
        opts.update(own or {})
        specs.append((name, loss_options(name, opts)))
    unused = sorted(set(options) - used)
    if unused:
        raise TypeError(f"no requested loss takes the option {', '.join(map(repr, unused))}")
    return specs


def options_json(opts):
    """``opts`` with arrays and NumPy scalars as plain JSON values (floats round-trip)."""
    def conv(v):
        if isinstance(v, np.ndarray):
            return v.tolist()
        if isinstance(v, np.generic):
            return v.item()
        if isinstance(v, (list, tuple)):
            return [conv(u) for u in v]
        return v

    out = {k: conv(v) for k, v in opts.items()}
    json.dumps(out)  # raises TypeError for an option that cannot be saved
    return out
