"""One registry of losses: it drives the API docs table, the tests and the benchmarks.

Adding a loss is adding one row here (plus its kernel in each backend and its
reference in ``kernels/reference``).
"""

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from fastloss.losses import functions as _api


@dataclass(frozen=True)
class Loss:
    name: str
    func: Callable
    kernel: str  # name in the kernel contract
    has_class_axis: bool  # False: element-wise (reduction "none" keeps y_pred's shape)
    make: Callable  # make(rng, n, c, dtype, variant) -> (y_true, y_pred, kwargs)
    variants: tuple  # option sets the tests and benchmarks sweep
    equivalents: dict = field(default_factory=dict)  # framework -> name, for the docs table


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
        Loss("sparse_categorical_cross_entropy", _api.sparse_categorical_cross_entropy, "sparse_ce",
             True, _make_sparse,
             ({"from_logits": True}, {"from_logits": True, "weighted": True},
              {"from_logits": True, "ignore_index": -100, "label_smoothing": 0.1, "z_loss": 1e-4},
              {"from_logits": False}, {"from_logits": False, "clip": "keras"},
              {"from_logits": False, "clip": "torch", "label_smoothing": 0.2}),
             {"keras": "SparseCategoricalCrossentropy", "torch": "F.cross_entropy (index targets)",
              "scipy": "-log_softmax[label]", "sklearn": "log_loss (probabilities)"}),
        Loss("categorical_cross_entropy", _api.categorical_cross_entropy, "categorical_ce", True,
             _make_categorical,
             ({"from_logits": True}, {"from_logits": True, "weighted": True, "label_smoothing": 0.1},
              {"from_logits": False}, {"from_logits": False, "clip": "keras"}),
             {"keras": "CategoricalCrossentropy", "torch": "F.cross_entropy (probability targets)",
              "scipy": "-(t * log_softmax).sum", "sklearn": "log_loss"}),
        Loss("binary_cross_entropy", _api.binary_cross_entropy, "bce", False, _make_bce,
             ({"from_logits": True}, {"from_logits": True, "weighted": True, "label_smoothing": 0.1},
              {"from_logits": False}, {"from_logits": False, "clip": "keras2"},
              {"from_logits": False, "clip": "torch"}),
             {"keras": "BinaryCrossentropy", "torch": "F.binary_cross_entropy(_with_logits)",
              "scipy": "-(z*log_expit(x) + (1-z)*log_expit(-x))", "sklearn": "log_loss (binary)"}),
        Loss("kl_divergence", _api.kl_divergence, "kl", True, _make_kl,
             ({}, {"weighted": True}, {"log_input": True}, {"clip": "keras"}),
             {"keras": "KLDivergence", "torch": "F.kl_div (log input)",
              "scipy": "rel_entr(...).sum", "sklearn": "-"}),
        Loss("mean_squared_error", _api.mean_squared_error, "mse", True, _make_mse,
             ({}, {"weighted": True}),
             {"keras": "MeanSquaredError", "torch": "F.mse_loss", "scipy": "-", "sklearn":
              "mean_squared_error"}),
    ]
}
